"""olelo.data.write_split_folder: the one writer of the split folders made from others
(mix_data.py, short_data.py, retrieval_data.py): files, manifest, leak check, inputs and
the folder replaced whole."""

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

import olelo
from olelo import data

REPO = Path(__file__).resolve().parents[1]


def rec(i, direction="haw-en"):
    haw, en = f"Olelo helu {i}.", f"Sentence number {i}."
    source, target = (haw, en) if direction == "haw-en" else (en, haw)
    return {**olelo.chat_record(source, target, direction, f"p{i}-{direction}"), "pair_id": data.pair_id(haw, en)}


def folder(root: Path, name: str, splits: dict) -> Path:
    """A split folder as split.py leaves it (its manifest only needs to exist here)."""
    for split, records in splits.items():
        olelo.atomic_write_jsonl(root / name / f"{split}.jsonl", records)
    olelo.atomic_write_json(root / name / "manifest.json", {"split": "paragraphs"})
    return root / name


@pytest.fixture
def src(tmp_path):
    return folder(tmp_path, "large", {"train": [rec(i) for i in range(6)], "valid": [rec(6)], "test": [rec(7)]})


def test_files_and_manifest(src):
    new = {"train": [rec(0), rec(0, "en-haw"), rec(1)], "valid": [rec(6)], "test": [rec(7)]}
    out = src.parent / "new"
    files = data.write_split_folder(out, new, {"made_by": "a test", "inputs_sha256": data.inputs_sha256(src)},
                                    beside=data.read_splits(src.parent), pairs=True)
    for split, records in new.items():
        body = (out / f"{split}.jsonl").read_bytes()
        assert body == "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode()
        assert files[split]["sha256"] == hashlib.sha256(body).hexdigest()
    manifest = json.loads((out / "manifest.json").read_text())
    assert list(manifest) == ["made_by", "inputs_sha256", "counts", "files"]  # the caller's keys first
    assert manifest["inputs_sha256"] == {str(src / "manifest.json"): olelo.sha256_file(src / "manifest.json")}
    assert manifest["counts"]["train"] == {"records": 3, "pairs": 2}  # both directions of pair 0: one pair
    assert manifest["files"] == files
    data.write_split_folder(out, new, {"made_by": "a test"}, beside={})
    assert json.loads((out / "manifest.json").read_text())["counts"]["train"] == 3  # without pairs: records


def test_a_leak_writes_nothing(src, capsys):
    out = src.parent / "new"
    folder(src.parent, "new", {"train": [rec(0)], "valid": [rec(6)], "test": [rec(7)]})
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(olelo.UserError, match=r"2 test pair\(s\) leak"):
        data.write_split_folder(out, {"train": [rec(0), rec(7)], "valid": [rec(6)], "test": [rec(7)]}, {},
                                beside=data.read_splits(src.parent))
    assert "in test of large, new and in new/train" in capsys.readouterr().err  # both sides of pair 7
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in src.parent.iterdir()) == ["large", "new"]  # no temporary left


def test_an_input_folder_is_never_the_output(src):
    before = {p.name: p.read_bytes() for p in src.iterdir()}
    for out in (src, src.parent / "x" / ".." / "large"):
        with pytest.raises(olelo.UserError, match="is an input dataset"):
            data.write_split_folder(out, {"train": [rec(0)], "test": [rec(7)]},
                                    {"inputs_sha256": data.inputs_sha256(src)}, beside={})
    assert {p.name: p.read_bytes() for p in src.iterdir()} == before


def run(script, *args):
    return subprocess.run([sys.executable, str(REPO / "scripts" / script), *map(str, args)], cwd=REPO,
                          capture_output=True, text=True)


def test_short_data_replaces_its_folder_whole(src):
    """short_data.py wrote file by file into --out: a sealed.jsonl left from an earlier
    story split stayed beside a new paragraph split's files (and verify_split, reading the
    manifest, never saw it); and --out = --src overwrote the source's own splits."""
    out = src.parent / "short"
    folder(src.parent, "short", {"sealed": [rec(9)]})
    proc = run("short_data.py", "--src", src, "--train", 2, "--valid", 1, "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "test.jsonl", "train.jsonl", "valid.jsonl"]
    before = {p.name: p.read_bytes() for p in src.iterdir()}
    proc = run("short_data.py", "--src", src, "--train", 2, "--valid", 1, "--out", src)
    assert proc.returncode == 2 and "is an input dataset" in proc.stderr
    assert {p.name: p.read_bytes() for p in src.iterdir()} == before
