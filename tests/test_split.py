"""scripts/split.py --by paragraphs (the script's default): common test set, determinism,
fractions, groups, leak check, and bytes unchanged since the committed runs were trained.
--by stories is tests/test_split_stories.py."""

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

import olelo
from olelo import data
from olelo import splits
from olelo.data import chat_records, pair_id

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "split.py"
CONVERT = REPO / "scripts" / "convert_fornander.py"
SPLITS = ("train", "valid", "test")


def make_pairs(n, offset=0):
    return [(f"Olelo helu {i}.", f"Sentence number {i}.") for i in range(offset, offset + n)]


def write_dataset(path, pairs, direction="both"):
    kept = [{"pair_id": pair_id(h, e), "haw": h, "en": e} for h, e in pairs]
    olelo.atomic_write_jsonl(path, chat_records(kept, direction))
    return path


def run_split(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True)


def read_out(root):
    return {name: {s: olelo.read_jsonl(root / name / f"{s}.jsonl") for s in SPLITS} for name in ("large", "small")}


def pair_ids(records):
    return {r["pair_id"] for r in records}


@pytest.fixture
def inputs(tmp_path):
    large = write_dataset(tmp_path / "large.jsonl", make_pairs(50))
    small = write_dataset(tmp_path / "small.jsonl", make_pairs(10), direction="haw-en")
    return large, small


def split_to(out, inputs, *extra):
    large, small = inputs
    proc = run_split("--out", out, *extra, f"large={large}", f"small={small}")
    assert proc.returncode == 0, proc.stderr
    return read_out(out)


def test_counts_common_test_and_manifest(tmp_path, inputs):
    out = split_to(tmp_path / "out", inputs)
    # test: round(0.1 * 50) = 5 pairs; large valid: round(0.1 * 45) = 5 (half up); small: 1 of 10.
    assert {s: len(pair_ids(out["large"][s])) for s in SPLITS} == {"train": 40, "valid": 5, "test": 5}
    assert {s: len(pair_ids(out["small"][s])) for s in SPLITS} == {"train": 9, "valid": 1, "test": 5}
    assert len(out["large"]["train"]) == 80  # both directions
    assert out["small"]["test"] == out["large"]["test"]
    assert not pair_ids(out["large"]["test"]) & {pair_id(h, e) for h, e in make_pairs(10)}
    for name in out:
        assert pair_ids(out[name]["test"]).isdisjoint(pair_ids(out[name]["train"]) | pair_ids(out[name]["valid"]))
        assert pair_ids(out[name]["train"]).isdisjoint(pair_ids(out[name]["valid"]))

    manifest = json.loads((tmp_path / "out" / "small" / "manifest.json").read_text())
    assert manifest["counts"]["train"] == {"records": 9, "pairs": 9}
    assert manifest["directions"] == ["haw-en"]
    assert manifest["input"]["sha256"] == olelo.sha256_file(inputs[1])
    assert manifest["common_test_from"] == "large"
    assert manifest["common_test_sha256"] == olelo.sha256_file(tmp_path / "out" / "large" / "test.jsonl")
    for s in SPLITS:
        assert manifest["outputs"][f"{s}.jsonl"] == olelo.sha256_file(tmp_path / "out" / "small" / f"{s}.jsonl")


def test_both_directions_of_a_pair_stay_together(tmp_path, inputs):
    out = split_to(tmp_path / "out", inputs)
    for s in SPLITS:
        directions = {}
        for r in out["large"][s]:
            directions.setdefault(r["pair_id"], set()).add(r["direction"])
        assert all(d == {"haw-en", "en-haw"} for d in directions.values())


def test_same_seed_same_bytes_other_seed_differs(tmp_path, inputs):
    split_to(tmp_path / "a", inputs)
    split_to(tmp_path / "b", inputs)
    split_to(tmp_path / "c", inputs, "--seed", "1")
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert len(files) == 8
    for f in files:
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes()
    assert (tmp_path / "a/large/test.jsonl").read_bytes() != (tmp_path / "c/large/test.jsonl").read_bytes()


def test_fractions(tmp_path, inputs):
    out = split_to(tmp_path / "out", inputs, "--test-fraction", "0.2", "--valid-fraction", "0.25")
    assert {s: len(pair_ids(out["large"][s])) for s in SPLITS} == {"train": 30, "valid": 10, "test": 10}
    assert {s: len(pair_ids(out["small"][s])) for s in SPLITS} == {"train": 7, "valid": 3, "test": 10}
    out = split_to(tmp_path / "zero", inputs, "--valid-fraction", "0")
    assert len(pair_ids(out["small"]["valid"])) == 1  # never an empty valid set


def test_pairs_sharing_a_text_land_in_one_split():
    # Two Hawaiian versions with one English reference: in different splits the English
    # of a test example would be a training target.
    pairs = make_pairs(30) + [("Olelo helu 0 hou.", "Sentence number 0.")]
    kept = [{"pair_id": pair_id(h, e), "haw": h, "en": e} for h, e in pairs]
    twins = {pair_id(*pairs[0]), pair_id(*pairs[-1])}
    for seed in range(20):
        out, _ = splits.make_splits({"large": chat_records(kept, "haw-en")}, seed, 0.1, 0.1)
        where = {s for s in SPLITS if twins & pair_ids(out["large"][s])}
        assert len(where) == 1
        assert not data.find_leaks(out)


def test_planted_leak_is_caught(tmp_path, inputs):
    root = tmp_path / "out"
    out = split_to(root, inputs)
    assert not data.find_leaks(out)
    assert run_split("--check", root).returncode == 0

    planted = out["large"]["test"][0]
    flipped = next(r for r in out["large"]["test"] if r["pair_id"] == planted["pair_id"] and r is not planted)
    out["small"]["train"].append(flipped)  # the other direction of a test pair is still that pair
    leaks = data.find_leaks(out)
    assert {leak["pair_id"] for leak in leaks} == {planted["pair_id"]}
    assert {leak["trained_in"] for leak in leaks} == {"small/train"}
    assert sorted(leaks[0]["test_in"]) == ["large", "small"]

    olelo.atomic_write_jsonl(root / "small" / "train.jsonl", out["small"]["train"])
    proc = run_split("--check", root)
    assert proc.returncode == 1
    assert planted["pair_id"] in proc.stderr and "small/train" in proc.stderr and "LEAK" in proc.stderr


# split.py run as `python scripts/split.py ARGS`, with a make_splits that leaks a test pair into train.
LEAKY_SPLIT = """
import runpy, sys
from olelo import splits

real = splits.make_splits

def leaky(*args):
    out, largest = real(*args)
    out["large"]["train"].append(out["large"]["test"][0])
    return out, largest

splits.make_splits = leaky
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def test_nothing_written_when_leaks(tmp_path, inputs):
    large, small = inputs
    proc = subprocess.run([sys.executable, "-c", LEAKY_SPLIT, str(SCRIPT), "--out", str(tmp_path / "out"),
                           f"large={large}", f"small={small}"], capture_output=True, text=True)
    assert proc.returncode == 1, proc.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("args,message", [
    (["--out", "o", "large"], "NAME=IN.jsonl"),
    (["--out", "o", "large=nope.jsonl"], "nope.jsonl: no such file"),
    (["--out", "o", "a=x.jsonl", "a=y.jsonl"], "names must differ"),
    (["--check", "nope"], "nope: no such directory"),
    (["--out", "o", "tiny=TINY"], "too few"),
    (["--out", "o", "--test-fraction", "1", "a=x.jsonl"], "must be in [0, 1)"),
])
def test_bad_arguments(tmp_path, args, message):
    write_dataset(tmp_path / "tiny.jsonl", make_pairs(1))
    args = [a.replace("TINY", str(tmp_path / "tiny.jsonl")) for a in args]
    proc = subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert not (tmp_path / "o").exists()


def test_sample_data_pipeline(tmp_path):
    sample = REPO / "data" / "sample" / "sample_pairs.csv"
    small_csv = tmp_path / "small.csv"
    small_csv.write_text("".join(sample.read_text(encoding="utf-8").splitlines(True)[:11]), encoding="utf-8")
    for csv_path, out in [(sample, "large.jsonl"), (small_csv, "small.jsonl")]:
        proc = subprocess.run([sys.executable, str(CONVERT), str(csv_path), "-o", str(tmp_path / out),
                               "--direction", "both"], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
    out = split_to(tmp_path / "out", (tmp_path / "large.jsonl", tmp_path / "small.jsonl"))
    assert {s: len(pair_ids(out["small"][s])) for s in SPLITS} == {"train": 9, "valid": 1, "test": 4}
    assert not data.find_leaks(out)


def convert_real(shared_data, tmp_path):
    """The real CSVs converted as `make data` converts them (haw-en)."""
    converted = {}
    for name, csv_path in [("large", shared_data / "fornander" / "fornander_pairs.csv"),
                           ("small", shared_data / "koa" / "koa_pairs.csv")]:
        converted[name] = tmp_path / f"{name}.jsonl"
        proc = subprocess.run([sys.executable, str(CONVERT), str(csv_path), "-o", str(converted[name]),
                               "--direction", "haw-en"], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
    return converted


def test_real_data(shared_data, tmp_path):
    converted = convert_real(shared_data, tmp_path)
    out = split_to(tmp_path / "out", (converted["large"], converted["small"]))
    assert {s: len(out["large"][s]) for s in SPLITS} == {"train": 2293, "valid": 255, "test": 283}
    assert {s: len(out["small"][s]) for s in SPLITS} == {"train": 18, "valid": 2, "test": 283}
    koa = pair_ids(olelo.read_jsonl(converted["small"]))
    assert len(koa) == 20 and koa <= pair_ids(olelo.read_jsonl(converted["large"]))
    assert not koa & pair_ids(out["large"]["test"])
    assert not data.find_leaks(out)
    assert run_split("--check", tmp_path / "out").returncode == 0
    # The measurement, and a check of the definition: nearly every test paragraph
    # sits beside a training paragraph of its own story.
    manifest = json.loads((tmp_path / "out" / "large" / "manifest.json").read_text())
    assert manifest["split"] == "paragraphs" and "sealed" not in manifest["within_story"]
    assert manifest["within_story"]["test"] == {"pairs": 283, "with_train_neighbour": 275, "share": 0.9717}


# A committed run trained on data/finetuning/large of seed 0 (before --by existed).
RECORDED_RUN = REPO / "runs" / "large-gemma-3-270m-it300-bs8-lr0.0001-r8-gc-s0" / "manifest.json"


def test_paragraph_split_of_the_real_data_is_the_one_the_runs_were_trained_on(shared_data, tmp_path):
    recorded = json.loads(RECORDED_RUN.read_text())["data"]
    assert recorded["path"] == "data/finetuning/large"
    converted = convert_real(shared_data, tmp_path)
    proc = run_split("--out", tmp_path / "out", "--by", "paragraphs", "--seed", "0",
                     f"large={converted['large']}", f"small={converted['small']}")
    assert proc.returncode == 0, proc.stderr
    for s in SPLITS:
        assert olelo.sha256_file(tmp_path / "out" / "large" / f"{s}.jsonl") == recorded[f"{s}_sha256"], s
    assert not (tmp_path / "out" / "large" / "sealed.jsonl").exists()


# Which records, in which order, each file of the made-up split held before --by existed
# (the ids of each file, one a line, hashed): the prompt text may change, the split may not.
PARAGRAPH_GOLDEN = {
    ("large", "train"): (80, "aaf79783a3c1ff078359"), ("large", "valid"): (10, "683f591ee425c79d2b00"),
    ("large", "test"): (10, "db2f0c6022680f632399"), ("small", "train"): (9, "96fd969885ee83f43d05"),
    ("small", "valid"): (1, "aa784a7512a582852e88"), ("small", "test"): (10, "db2f0c6022680f632399"),
}


@pytest.mark.parametrize("by", [(), ("--by", "paragraphs")])
def test_paragraph_mode_is_unchanged(tmp_path, inputs, by):
    out = split_to(tmp_path / "out", inputs, *by)
    for (name, split_name), (n, digest) in PARAGRAPH_GOLDEN.items():
        ids = [r["id"] for r in out[name][split_name]]
        assert (len(ids), hashlib.sha256("\n".join(ids).encode()).hexdigest()[:20]) == (n, digest), (name, split_name)
    assert sorted(p.name for p in (tmp_path / "out" / "large").iterdir()) == [
        "manifest.json", "test.jsonl", "train.jsonl", "valid.jsonl"]


def test_train_is_written_in_length_order(tmp_path, inputs):
    # mlx-lm cuts its batches from the file order; similar lengths together mean less padding.
    split_to(tmp_path, inputs)
    for name in ("large", "small"):
        train = olelo.read_jsonl(tmp_path / name / "train.jsonl")
        lengths = [data.text_length(r) for r in train]
        assert lengths == sorted(lengths)


@pytest.mark.parametrize("english", ["", "   ", "\n\t"])
def test_a_record_without_text_is_refused_with_its_number(tmp_path, english):
    path = tmp_path / "pairs.jsonl"
    good = olelo.chat_record("Aloha.", "Hello.", "haw-en", "p0")
    olelo.atomic_write_jsonl(path, [good, olelo.chat_record("Mahalo.", english, "haw-en", "p1")])
    with pytest.raises(olelo.UserError, match=r"pairs.jsonl: record 2 is not a chat record"):
        data.load_dataset(path)
    olelo.atomic_write_jsonl(path, [good])
    assert data.load_dataset(path) == [good]
