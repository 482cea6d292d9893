"""The ledger of looks at the sealed test set (olelo/ledger.py): one line per look, counted
per test file, and no sealed file read without consent."""

import threading

import pytest

import olelo
from olelo import ledger

from conftest import one_line_error, script


def test_each_look_is_one_line_counted_per_test_set(tmp_path):
    assert ledger.looks(tmp_path, "a" * 64) == 0
    assert ledger.record_look(tmp_path, "run1", "eval-sealed", ["base", "best"], "d/sealed.jsonl", "a" * 64) == 1
    assert ledger.record_look(tmp_path, "run2", "eval-sealed", ["best"], "d/sealed.jsonl", "a" * 64) == 2
    assert ledger.record_look(tmp_path, "run1", "eval-sealed", ["best"], "e/sealed.jsonl", "b" * 64) == 1
    lines = ledger.ledger_path(tmp_path).read_text().splitlines()
    assert lines[0].split("\t") == list(ledger.COLUMNS)
    assert len(lines) == 4
    assert [line.split("\t")[2] for line in lines[1:]] == ["run1", "run2", "run1"]
    assert lines[1].split("\t")[4] == "base,best"


def test_a_field_with_a_tab_or_newline_cannot_split_a_record(tmp_path):
    ledger.record_look(tmp_path, "odd\trun\nname", "eval", ["best"], "x/sealed.jsonl", "c" * 64)
    lines = ledger.ledger_path(tmp_path).read_text().splitlines()
    assert len(lines) == 2 and len(lines[1].split("\t")) == len(ledger.COLUMNS)
    assert ledger.looks(tmp_path, "c" * 64) == 1


def test_looks_at_once_are_all_recorded(tmp_path):
    threads = [threading.Thread(target=ledger.record_look,
                                args=(tmp_path, f"r{i}", "eval", ["best"], "s/sealed.jsonl", "d" * 64))
               for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert ledger.looks(tmp_path, "d" * 64) == 8
    assert ledger.ledger_path(tmp_path).read_text().count("\n") == 9  # the header once


def test_a_damaged_ledger_line_is_named(tmp_path):
    path = ledger.ledger_path(tmp_path)
    path.write_text("\t".join(ledger.COLUMNS) + "\nonly\ttwo\n")
    with pytest.raises(olelo.UserError, match=r"sealed-ledger.tsv:2: 2 tab-separated fields"):
        ledger.looks(tmp_path, "e" * 64)


def test_reading_a_sealed_file_needs_consent(tmp_path):
    with pytest.raises(olelo.UserError, match="sealed test set"):
        ledger.require_consent(tmp_path / "sealed.jsonl", consent=False)
    ledger.require_consent(tmp_path / "sealed.jsonl", consent=True)
    ledger.require_consent(tmp_path / "test.jsonl", consent=False)


def test_translate_refuses_a_sealed_file_without_consent(tmp_path):
    sealed = tmp_path / "sealed.jsonl"
    olelo.atomic_write_jsonl(sealed, [olelo.chat_record("Aloha", "Hello", "haw-en", "p0")])
    out = script("translate.py", "--model", tmp_path / "no-model", "--data", sealed, "-o", tmp_path / "h.jsonl")
    one_line_error(out, "sealed test set", "SEALED=1")
    assert not (tmp_path / "h.jsonl").exists() and not (tmp_path / "decode.json").exists()
