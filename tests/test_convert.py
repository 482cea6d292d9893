"""scripts/convert_fornander.py: cleanup, drop reasons, ids, directions, bad input."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

import olelo
from olelo.data import match_key, modern_orthography, pair_id

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "convert_fornander.py"
HEADER = "L1 Hawaiian_Text,Reference_Translation"

# One row per behaviour; the comment gives the file line.
TINY = "\r\n".join([
    "\ufeff" + HEADER,                                        # 1 (BOM, CRLF)
    "Aloha  kakahiaka.,Good\tmorning.",                       # 2 whitespace runs
    '"Ua hele\r\nke keiki i ke kula.","The child went to school."',  # 3-4 quoted newline
    "Ka\u0304ne,Man",                                         # 5 combining macron -> NFC
    "Aloha kakahiaka.,Good morning.",                         # 6 duplicate of line 2
    "aloha KAKAHIAKA,good morning!",                          # 7 near_duplicate of line 2
    " ,  ",                                                   # 8 empty
    "Mahalo,",                                                # 9 English empty
    "Ua holo ke ’lii i Maui.,The chief sailed to Maui.",      # 10 elision mark kept
    'Ae,"Yes. Yes indeed, he said, and then he said it again and again."',  # 11 ratio > 3
]) + "\r\n"


def write(path: Path, content) -> Path:
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    return path


def convert(*args, cwd=None):
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)],
                          capture_output=True, text=True, cwd=cwd)


def run_ok(csv_path, out, *extra):
    report = out.with_suffix(".report.json")
    proc = convert(csv_path, "-o", out, "--report", report, *extra)
    assert proc.returncode == 0, proc.stderr
    return olelo.read_jsonl(out), json.loads(report.read_text(encoding="utf-8")), proc


def pairs_of(records):
    return [olelo.record_source_target(r) for r in records]


def test_tiny_csv_golden(tmp_path):
    records, report, proc = run_ok(write(tmp_path / "in.csv", TINY), tmp_path / "out.jsonl")
    assert pairs_of(records) == [
        ("Aloha kakahiaka.", "Good morning."),
        ("Ua hele ke keiki i ke kula.", "The child went to school."),
        ("K\u0101ne", "Man"),
        ("Ua holo ke ’lii i Maui.", "The chief sailed to Maui."),
        ("Ae", "Yes. Yes indeed, he said, and then he said it again and again."),
    ]
    dropped = [(d["line"], d["reason"], d.get("duplicate_of", {}).get("line")) for d in report["dropped"]]
    assert dropped == [(6, "duplicate", 2), (7, "near_duplicate", 2), (8, "empty", None), (9, "empty", None)]
    assert report["dropped"][3]["detail"] == "English empty"
    counts = report["counts"]
    assert counts["rows"] == counts["pairs"] == 9
    assert counts["kept"] == 5 and counts["records"] == 5
    assert counts["dropped_by_reason"] == {"empty": 2, "duplicate": 1, "near_duplicate": 1, "misaligned": 0}
    assert counts["kept"] + sum(counts["dropped_by_reason"].values()) == counts["pairs"]
    assert [(f["line"], f["index"], f["ratio"], f["dropped"]) for f in report["flagged"]] == [
        (11, 8, 31.0, False)]
    assert report["sha256"] == olelo.sha256_file(tmp_path / "in.csv")
    assert "kept 5, dropped 4" in proc.stderr


def test_drop_misaligned_and_ratio_range(tmp_path):
    csv_path = write(tmp_path / "in.csv", TINY)
    records, report, _ = run_ok(csv_path, tmp_path / "a.jsonl", "--drop-misaligned")
    assert len(records) == 4
    assert report["counts"]["dropped_by_reason"]["misaligned"] == 1
    assert report["dropped"][-1]["line"] == 11 and report["flagged"][0]["dropped"] is True
    # "Ua holo ke ’lii i Maui." (23) / "The chief sailed to Maui." (25) -> 1.087
    _, report, _ = run_ok(csv_path, tmp_path / "b.jsonl", "--min-ratio", "1.09", "--max-ratio", "40")
    assert 10 in [f["line"] for f in report["flagged"]]


def test_ids_stable_and_shared_across_files(tmp_path):
    first, _, _ = run_ok(write(tmp_path / "in.csv", TINY), tmp_path / "1.jsonl")
    again, _, _ = run_ok(tmp_path / "in.csv", tmp_path / "2.jsonl")
    assert (tmp_path / "1.jsonl").read_bytes() == (tmp_path / "2.jsonl").read_bytes()
    other = write(tmp_path / "other.csv", f'{HEADER}\nNew pair,Something else\n"Ka\u0304ne ",Man\n')
    records, _, _ = run_ok(other, tmp_path / "3.jsonl")
    ids = {r["pair_id"] for r in first}
    assert records[1]["pair_id"] in ids and records[0]["pair_id"] not in ids
    assert first[2]["pair_id"] == pair_id("Kāne", "Man") == pair_id("Kane", "man.")
    assert len(ids) == len(first)


@pytest.mark.parametrize("direction,expected", [
    ("haw-en", [("haw-en", "Aloha kakahiaka.", "Good morning.")]),
    ("en-haw", [("en-haw", "Good morning.", "Aloha kakahiaka.")]),
    ("both", [("haw-en", "Aloha kakahiaka.", "Good morning."),
              ("en-haw", "Good morning.", "Aloha kakahiaka.")]),
])
def test_directions(tmp_path, direction, expected):
    csv_path = write(tmp_path / "in.csv", f"{HEADER}\nAloha kakahiaka.,Good morning.\n")
    records, report, _ = run_ok(csv_path, tmp_path / "out.jsonl", "--direction", direction)
    assert [(r["direction"], *olelo.record_source_target(r)) for r in records] == expected
    pid = pair_id("Aloha kakahiaka.", "Good morning.")
    assert [r["id"] for r in records] == [f"{pid}-{d}" for d, _, _ in expected]
    assert {r["pair_id"] for r in records} == {pid}
    for r in records:
        assert r["messages"][:2] == olelo.prompt_messages(r["messages"][1]["content"], r["direction"])
    assert report["counts"]["records"] == len(expected)


def test_modern_orthography():
    assert modern_orthography("Hawai'i Hawai‘i Hawaiʼi Hawai`i Hawai’i") == " ".join(["Hawaiʻi"] * 5)
    assert modern_orthography("‘Ōlelo") == "ʻŌlelo"
    # Before a consonant or at a word's end it is an elision mark or a quote: left alone.
    assert modern_orthography("he ’lii, ‘kapu’ ’") == "he ’lii, ‘kapu’ ’"
    assert match_key("ʻŌlelo  Hawaiʻi!") == match_key("olelo hawaii") == "olelohawaii"


def test_modern_orthography_cli_changes_hawaiian_only(tmp_path):
    csv_path = write(tmp_path / "in.csv", f"{HEADER}\nHawai'i,Hawai'i's chief\n")
    records, report, _ = run_ok(csv_path, tmp_path / "out.jsonl", "--modern-orthography")
    assert olelo.record_source_target(records[0]) == ("Hawaiʻi", "Hawai'i's chief")
    assert report["options"]["modern_orthography"] is True
    plain, _, _ = run_ok(csv_path, tmp_path / "plain.jsonl")
    assert olelo.record_source_target(plain[0])[0] == "Hawai'i"
    assert plain[0]["pair_id"] == records[0]["pair_id"]


def test_glued_row_is_split_back(tmp_path):
    # A lost line break between two quoted rows makes `"` `"` read as an escaped quote.
    csv_path = write(tmp_path / "in.csv", f'{HEADER}\n"Aloha","Hello.""Mahalo","Thanks."\nAe,Yes\n')
    records, report, proc = run_ok(csv_path, tmp_path / "out.jsonl")
    assert pairs_of(records) == [("Aloha", "Hello."), ("Mahalo", "Thanks."), ("Ae", "Yes")]
    assert report["counts"]["rows"] == 2 and report["counts"]["pairs"] == 3
    assert [r["line"] for r in report["repaired"]] == [2]
    assert "split in two" in proc.stderr


BAD_INPUTS = {
    "missing_column": (f"L1 Hawaiian_Text,English\nAloha,Hello\n", ["bad.csv:1:", "Reference_Translation"]),
    "not_utf8": (f"{HEADER}\nAloha,Hello\nMahalo,Thank you \xe9\n".encode("latin-1"),
                 ["bad.csv:3:", "not UTF-8", "offset 68"]),
    "empty_file": (b"", ["bad.csv", "empty file"]),
    "bom_only": ("\ufeff\r\n", ["bad.csv", "empty file"]),
    "header_only": (f"{HEADER}\n", ["bad.csv", "no data rows"]),
    "binary": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", ["bad.csv:3:", "binary"]),
    "one_field": (f"{HEADER}\nAloha,Hello\nMahalo\n", ["bad.csv:3:", "1 field"]),
    "unbalanced_quote": (f'{HEADER}\nAloha,Hello\n"Mahalo,Thanks\nAe,Yes\n', ["bad.csv:3:", "1 field"]),
    "four_fields": (f"{HEADER}\nAloha,Hello,x,y\n", ["bad.csv:2:", "4 field"]),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input(tmp_path, case):
    content, expected = BAD_INPUTS[case]
    bad = write(tmp_path / "bad.csv", content)
    out = tmp_path / "out.jsonl"
    proc = convert(bad, "-o", out, "--report", tmp_path / "r.json")
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1, proc.stderr
    for text in expected:
        assert text in proc.stderr
    assert not out.exists() and not (tmp_path / "r.json").exists()
    assert list(tmp_path.iterdir()) == [bad]  # no temporary files left either


def test_directory_and_missing_file(tmp_path):
    out = tmp_path / "out.jsonl"
    write(out, "keep me\n")  # an earlier good output must survive a failed run
    for path, message in [(tmp_path, "is a directory"), (tmp_path / "nope.csv", "no such file")]:
        proc = convert(path, "-o", out)
        assert proc.returncode == 2 and message in proc.stderr and str(path) in proc.stderr
    assert out.read_text() == "keep me\n"


def test_help():
    proc = convert("--help")
    assert proc.returncode == 0 and "--modern-orthography" in proc.stdout


def test_real_data(shared_data, tmp_path):
    fornander = shared_data / "fornander" / "fornander_pairs.csv"
    koa = shared_data / "koa" / "koa_pairs.csv"
    assert olelo.sha256_file(fornander) == "fc04a8ed82993c9f7d2e13708f8c3ef3bc45b323bc35359c1236c081820a20f5"
    f_records, f_report, _ = run_ok(fornander, tmp_path / "f.jsonl")
    counts = f_report["counts"]
    # Line 21 glues two rows; its second pair is the same as line 31.
    assert (counts["rows"], counts["pairs"], counts["kept"]) == (2831, 2832, 2831)
    assert counts["dropped_by_reason"] == {"empty": 0, "duplicate": 1, "near_duplicate": 0, "misaligned": 0}
    assert [(d["line"], d["duplicate_of"]["line"]) for d in f_report["dropped"]] == [(31, 21)]
    assert [r["line"] for r in f_report["repaired"]] == [21]
    # The data README's misaligned rows 396, 1072, 1108, 1384 are 0-based data-row indexes.
    assert [(f["index"], f["line"], f["ratio"]) for f in f_report["flagged"]] == [
        (396, 398, 0.295), (1072, 1074, 5.433), (1108, 1110, 3.691), (1384, 1386, 3.415)]

    k_records, k_report, _ = run_ok(koa, tmp_path / "k.jsonl")
    assert (k_report["counts"]["rows"], k_report["counts"]["kept"], k_report["dropped"]) == (20, 20, [])
    assert {r["pair_id"] for r in k_records} <= {r["pair_id"] for r in f_records}
