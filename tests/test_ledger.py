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


# ---------------------------------------------------------------- make eval SEALED=1, for real

@pytest.fixture(scope="module")
def sealed_lab(tmp_path_factory, tiny_train):
    """A story split of 48 made-up pairs (blocks of 4, so test and sealed hold whole blocks)
    and a tiny run trained on it."""
    from conftest import TINY_PAIRS

    root = tmp_path_factory.mktemp("sealed")
    pairs = [(f"{h} {i}", f"{e} {i}") for i in range(6) for h, e in TINY_PAIRS]
    records = [{**olelo.chat_record(h, e, "haw-en", f"p{i}"), "pair_id": f"p{i}"} for i, (h, e) in enumerate(pairs)]
    olelo.atomic_write_jsonl(root / "pairs.jsonl", records)
    script("split.py", "--out", root / "ft", "--by", "stories", "--block-size", "4", f"tiny={root / 'pairs.jsonl'}",
           check=True)
    data = root / "ft" / "tiny"
    tiny_train(root, data=data, iters=2, every=2)
    return {"root": root, "data": data, "ledger": ledger.ledger_path(root / "runs")}


def make_eval(run_make, lab, *extra, check=True):
    root = lab["root"]
    return run_make("eval", f"RUNS_DIR={root / 'runs'}", f"ADAPTERS_DIR={root / 'adapters'}", "LIMIT=2",
                    "MAX_TOKENS=4", "BOOTSTRAP=20", "EVAL_CKPTS=final", *extra, check=check)


def ledger_lines(lab) -> list[str]:
    path = lab["ledger"]
    return path.read_text().splitlines()[1:] if path.is_file() else []


def test_sealed_looks_are_counted_once_each(sealed_lab, run_make):
    import json

    make_eval(run_make, sealed_lab)  # the dev test: no look
    assert ledger_lines(sealed_lab) == []
    out = make_eval(run_make, sealed_lab, "SEALED=1")
    run_dir = (sealed_lab["root"] / "runs" / "latest").resolve()
    assert "--sealed" in out.stdout
    lines = ledger_lines(sealed_lab)
    assert len(lines) == 1
    date, commit, run, folder, ckpts, test_file, sha = lines[0].split("\t")
    assert (run, folder, ckpts) == (run_dir.name, "eval-sealed-n2-mt4", "base,base-completion,final")
    assert test_file == str(sealed_lab["data"] / "sealed.jsonl") and sha == olelo.sha256_file(test_file)
    summary = json.loads((run_dir / "eval-sealed-n2-mt4" / "summary.json").read_text())
    assert summary["test_set"] == "sealed" and summary["sealed_looks"] == 1
    sealed_ids = [r["id"] for r in olelo.read_jsonl(sealed_lab["data"] / "sealed.jsonl")][:2]
    assert [r["id"] for r in olelo.read_jsonl(run_dir / "eval-sealed-n2-mt4" / "base" / "hyps.jsonl")] == sealed_ids
    assert "the SEALED test: look 1" in (run_dir / "eval-sealed-n2-mt4" / "summary.md").read_text()
    # Nothing redone, nothing recorded; scoring the same outputs again is another look.
    make_eval(run_make, sealed_lab, "SEALED=1")
    assert len(ledger_lines(sealed_lab)) == 1
    make_eval(run_make, sealed_lab, "SEALED=1", "BOOTSTRAP=21")
    assert len(ledger_lines(sealed_lab)) == 2
    summary = json.loads((run_dir / "eval-sealed-n2-mt4" / "summary.json").read_text())
    assert summary["sealed_looks"] == 2


def test_refused_and_failed_looks_leave_no_line(sealed_lab, run_make, tiny_train, tiny_data):
    before = ledger_lines(sealed_lab)
    # a checkpoint that does not exist: the look fails before anything is scored
    out = make_eval(run_make, sealed_lab, "SEALED=1", "EVAL_CKPTS=7", check=False)
    assert out.returncode != 0 and "has no checkpoint at iteration" in out.stderr
    # a run whose data has no sealed test set (a paragraph split) is refused
    tiny_train(sealed_lab["root"], data=tiny_data, iters=2, every=2)
    out = make_eval(run_make, sealed_lab, "SEALED=1", check=False)
    assert out.returncode != 0 and "no sealed test set" in out.stderr
    # a sealed file changed since training is refused
    sealed = sealed_lab["data"] / "sealed.jsonl"
    text = sealed.read_text()
    try:
        sealed.write_text(text.replace("Hello", "Hallo", 1))
        run = [p for p in (sealed_lab["root"] / "runs").iterdir() if p.name.startswith("tiny-")][0]
        out = make_eval(run_make, sealed_lab, "SEALED=1", f"RUN={run}", "EVAL_CKPTS=final", "BOOTSTRAP=22",
                        check=False)
        assert out.returncode != 0 and "sealed.jsonl has sha256" in out.stderr
    finally:
        sealed.write_text(text)
    assert ledger_lines(sealed_lab) == before
