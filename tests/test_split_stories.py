"""scripts/split.py --by stories: whole blocks of consecutive pairs held out as test and
sealed, Koa-like pairs kept out of both, the within-story share, sealed.jsonl through the
leak checks, short/mix folders and the run identity, dataset_label, and the Makefile's SPLIT."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import olelo
from olelo import data, identity
from olelo.data import chat_records, pair_id
from olelo.splits import make_story_splits, within_story

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = REPO / "scripts"
HELD = ("test", "sealed")
ALL = ("train", "valid", "test", "sealed")


def make_pairs(n):
    return [(f"Olelo helu {i}.", f"Sentence number {i}.") for i in range(n)]


def records(pairs, direction="both"):
    return chat_records([{"pair_id": pair_id(h, e), "haw": h, "en": e} for h, e in pairs], direction)


def run(script, *args):
    return subprocess.run([sys.executable, str(SCRIPTS / script), *map(str, args)], capture_output=True, text=True)


def pids(recs):
    return {r["pair_id"] for r in recs}


@pytest.fixture
def story_split(tmp_path):
    """200 made-up pairs (both directions) as the large set, 5 of them, scattered, as the
    small one; split --by stories with blocks of 10. Returns (root, pairs, small pairs)."""
    pairs = make_pairs(200)
    small = [pairs[i] for i in (3, 47, 48, 121, 199)]
    olelo.atomic_write_jsonl(tmp_path / "large.jsonl", records(pairs))
    olelo.atomic_write_jsonl(tmp_path / "small.jsonl", records(small, "haw-en"))
    root = tmp_path / "out"
    proc = run("split.py", "--out", root, "--by", "stories", "--block-size", "10",
               f"large={tmp_path / 'large.jsonl'}", f"small={tmp_path / 'small.jsonl'}")
    assert proc.returncode == 0, proc.stderr
    return root, pairs, small


def read(root, name):
    return {s: olelo.read_jsonl(root / name / f"{s}.jsonl") for s in ALL}


def test_held_out_blocks_are_whole_and_contiguous(story_split):
    root, pairs, _ = story_split
    out = read(root, "large")
    manifest = json.loads((root / "large" / "manifest.json").read_text())
    assert manifest["split"] == "stories" and manifest["block_size"] == 10 and manifest["group_moves"] == []
    index = {pair_id(*p): i for i, p in enumerate(pairs)}
    # 20 pairs each of test and sealed (2 blocks), valid 0.1 x 160 = 16 -> 2 blocks (20 pairs)
    assert {s: len(pids(out[s])) for s in ALL} == {"train": 140, "valid": 20, "test": 20, "sealed": 20}
    for s in ("valid", *HELD):
        blocks = manifest["blocks"][s]
        assert all(stop - start == 10 and start % 10 == 0 for start, stop in blocks)
        # exactly the pairs of its blocks, every pair of a block
        assert sorted(index[p] for p in pids(out[s])) == [i for start, stop in blocks for i in range(start, stop)]
    assert sorted(index[p] for p in pids(out["train"])) == sorted(
        set(range(200)) - {index[p] for s in ("valid", *HELD) for p in pids(out[s])})
    assert len(out["train"]) == 280  # both directions of every train pair


def test_test_and_sealed_are_shuffled_so_limit_is_not_one_story(story_split):
    root, pairs, _ = story_split
    index = {pair_id(*p): i for i, p in enumerate(pairs)}
    for s in HELD:
        order = [index[r["pair_id"]] for r in read(root, "large")[s]]
        first_pairs = list(dict.fromkeys(order))[:10]
        assert len({i // 10 for i in first_pairs}) == 2  # LIMIT=10 reads from both blocks


def test_no_pair_of_another_dataset_is_tested_on(story_split):
    root, pairs, small = story_split
    small_ids = {pair_id(*p) for p in small}
    manifest = json.loads((root / "large" / "manifest.json").read_text())
    assert manifest["blocks_not_for_test"] == 4  # blocks 0, 4, 12, 19 (47 and 48 share one)
    for name in ("large", "small"):
        out = read(root, name)
        for s in HELD:
            assert not small_ids & pids(out[s])
    small_out = read(root, "small")
    assert pids(small_out["train"]) | pids(small_out["valid"]) == small_ids
    assert small_out["test"] == read(root, "large")["test"] and small_out["sealed"] == read(root, "large")["sealed"]


def test_blocks_with_another_datasets_pairs_never_go_to_test_or_sealed_at_any_seed():
    pairs = make_pairs(60)
    # The small set's pair 25 shares its English with the large set's pair 5: that block too.
    small = [pairs[25], ("Olelo hou.", pairs[5][1])]
    datasets = {"large": records(pairs, "haw-en"), "small": records(small, "haw-en")}
    kept_out = {0, 2}  # blocks 0-9 and 20-29
    for seed in range(30):
        out, largest, info = make_story_splits(datasets, seed, 0.3, 0.2, 0.2, 10)
        assert info["block_size"] == 10
        assert largest == "large"
        for s in HELD:
            assert {start // 10 for start, _ in info["blocks"][s]}.isdisjoint(kept_out)
            assert len(info["blocks"][s]) == 1
        assert not data.find_leaks(out)


def test_test_and_sealed_are_disjoint_and_leak_free(story_split):
    root, _, _ = story_split
    for name in ("large", "small"):
        out = read(root, name)
        assert not pids(out["test"]) & pids(out["sealed"])
        texts = {s: {data.match_key(t) for r in out[s] for t in data.haw_en(r)} for s in ALL}
        for held in HELD:
            assert not texts[held] & (texts["train"] | texts["valid"])
        assert not texts["test"] & texts["sealed"]
    assert not data.find_leaks({n: read(root, n) for n in ("large", "small")})
    assert run("split.py", "--check", root).returncode == 0
    # and at other seeds, with held-out sets large enough to meet
    datasets = {"large": records(make_pairs(60), "haw-en")}
    for seed in range(20):
        out, _, info = make_story_splits(datasets, seed, 0.2, 0.3, 0.3, 5)
        assert not pids(out["large"]["test"]) & pids(out["large"]["sealed"])
        ranges = [tuple(b) for s in ("valid", *HELD) for b in info["blocks"][s]]
        assert len(ranges) == len(set(ranges))
        assert not data.find_leaks(out)


def test_a_group_across_blocks_goes_whole_to_the_split_nearest_training():
    pairs = make_pairs(100)
    pairs[73] = ("Olelo helu kahiko.", pairs[12][1])  # shares its English with pair 12
    twins = {pair_id(*pairs[12]), pair_id(*pairs[73])}
    datasets = {"large": records(pairs, "haw-en")}
    rank = {s: i for i, s in enumerate(ALL)}

    def block_split(info, i):
        return next((s for s in ("valid", *HELD) if any(a <= i < b for a, b in info["blocks"][s])), "train")

    moves = 0
    for seed in range(40):
        out, _, info = make_story_splits(datasets, seed, 0.2, 0.2, 0.2, 10)
        before = {i: block_split(info, i) for i in (12, 73)}
        to = min(before.values(), key=rank.get)
        assert {s for s in ALL if twins & pids(out["large"][s])} == {to}
        assert [(m["pair"], m["from"], m["to"]) for m in info["group_moves"]] == [
            (i, before[i], to) for i in (12, 73) if before[i] != to]
        moves += before[12] != before[73]
        assert not data.find_leaks(out)
    assert moves  # the case was met


@pytest.mark.parametrize("splits,want", [
    # index:  0        1        2       3        4       5        6        7
    (["train", "test", "test", "test", "train", "sealed", "test", "valid"],
     {"test": (4, 2), "sealed": (1, 1), "valid": (1, 0)}),
    (["test", "test", "sealed", "sealed", "valid", "valid", "train", "train"],
     {"test": (2, 0), "sealed": (2, 0), "valid": (2, 1)}),
    # the ends have one neighbour each: index 0 is not beside index 7
    (["sealed", "test", "valid", "train", "train", "train", "test", "train"],
     {"test": (2, 1), "sealed": (1, 0), "valid": (1, 1)}),
])
def test_within_story_share_by_hand(splits, want):
    order = [f"p{i}" for i in range(len(splits))]
    got = within_story(order, dict(zip(order, splits)), ("valid", "test", "sealed"))
    for s, (n, k) in want.items():
        assert got[s] == {"pairs": n, "with_train_neighbour": k, "share": round(k / n, 4) if n else 0.0}, s


def test_manifest_and_last_line_report_the_within_story_share(tmp_path):
    pairs = make_pairs(100)
    olelo.atomic_write_jsonl(tmp_path / "l.jsonl", records(pairs, "haw-en"))
    proc = run("split.py", "--out", tmp_path / "out", "--by", "stories", "--block-size", "5",
               f"large={tmp_path / 'l.jsonl'}")
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((tmp_path / "out" / "large" / "manifest.json").read_text())
    index = {pair_id(*p): i for i, p in enumerate(pairs)}
    split_of = {index[r["pair_id"]]: s for s in ALL for r in olelo.read_jsonl(tmp_path / "out" / "large" / f"{s}.jsonl")}
    for s in ("valid", *HELD):
        at = [i for i in range(100) if split_of[i] == s]
        near = sum(split_of.get(i - 1) == "train" or split_of.get(i + 1) == "train" for i in at)
        assert manifest["within_story"][s] == {"pairs": len(at), "with_train_neighbour": near,
                                               "share": round(near / len(at), 4)}
    last = proc.stderr.strip().splitlines()[-1]
    ws = manifest["within_story"]
    assert f"test {ws['test']['share']:.1%} ({ws['test']['with_train_neighbour']}/{ws['test']['pairs']})" in last
    assert f"sealed {ws['sealed']['share']:.1%}" in last


def test_small_data_gets_blocks_no_larger_than_a_held_out_split(tmp_path):
    # split.py's default --block-size, as its --help states it
    usage = " ".join(run("split.py", "--help").stdout.split())
    DEFAULT_BLOCK_SIZE = int(re.search(r"consecutive pairs per block \(default:? (\d+)\)", usage).group(1))
    olelo.atomic_write_jsonl(tmp_path / "l.jsonl", records(make_pairs(42), "haw-en"))
    proc = run("split.py", "--out", tmp_path / "out", "--by", "stories", f"large={tmp_path / 'l.jsonl'}")
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((tmp_path / "out" / "large" / "manifest.json").read_text())
    # test and sealed want 4 pairs each, valid round(0.1 x 34) = 3: blocks of 3, not the default
    assert manifest["block_size"] == 3 and manifest["block_size_asked"] == DEFAULT_BLOCK_SIZE
    assert f"blocks of 3 pairs, not {DEFAULT_BLOCK_SIZE}" in proc.stderr
    assert all(manifest["counts"][s]["pairs"] == 3 for s in ("valid", *HELD))


def test_too_few_blocks_is_one_clear_error(tmp_path):
    olelo.atomic_write_jsonl(tmp_path / "l.jsonl", records(make_pairs(30), "haw-en"))
    olelo.atomic_write_jsonl(tmp_path / "s.jsonl", records(make_pairs(30)[::2], "haw-en"))  # one in every block
    proc = run("split.py", "--out", tmp_path / "out", "--by", "stories", f"large={tmp_path / 'l.jsonl'}",
               f"small={tmp_path / 's.jsonl'}")
    assert proc.returncode == 2 and "error:" in proc.stderr and "lower --test-fraction" in proc.stderr, proc.stderr
    assert not (tmp_path / "out").exists()


def test_stories_options_are_refused_for_paragraphs(tmp_path):
    proc = run("split.py", "--out", tmp_path / "o", "--block-size", "5", "a=x.jsonl")
    assert proc.returncode == 2 and "for --by stories" in proc.stderr


# ---------------------------------------------------------------- sealed.jsonl downstream

def test_sealed_text_planted_in_train_is_a_leak(story_split, tmp_path):
    root, _, _ = story_split
    splits = {n: read(root, n) for n in ("large", "small")}
    planted = splits["large"]["sealed"][0]
    splits["small"]["train"].append(planted)
    leaks = data.find_leaks(splits)
    assert {(leak["pair_id"], leak["held_out"], leak["trained_in"]) for leak in leaks} == {
        (planted["pair_id"], "sealed", "small/train")}
    assert sorted(leaks[0]["test_in"]) == ["large", "small"]

    olelo.atomic_write_jsonl(root / "small" / "train.jsonl", splits["small"]["train"])
    proc = run("split.py", "--check", root)
    assert proc.returncode == 1 and planted["pair_id"] in proc.stderr and "is in sealed of" in proc.stderr
    # verify_split (training's check) sees it too, once the manifest's hash is made to agree
    manifest = json.loads((root / "small" / "manifest.json").read_text())
    manifest["outputs"]["train.jsonl"] = olelo.sha256_file(root / "small" / "train.jsonl")
    olelo.atomic_write_json(root / "small" / "manifest.json", manifest)
    with pytest.raises(olelo.UserError, match=r"1 sealed pair\(s\) also in train/valid"):
        identity.verify_split(root / "small")
    assert identity.verify_split(root / "large") is None


def test_identity_records_sealed_and_old_records_stay_valid(story_split):
    root, _, _ = story_split
    folder = root / "large"
    now = identity.data_identity(folder)
    assert now["sealed_sha256"] == olelo.sha256_file(folder / "sealed.jsonl")
    assert identity.data_changes(now, folder) == []
    old = {k: v for k, v in now.items() if k != "sealed_sha256"}  # a run recorded before sealed.jsonl
    (folder / "sealed.jsonl").write_text("")
    assert identity.data_changes(old, folder) == []
    changed = identity.data_changes(now, folder)
    assert len(changed) == 1 and "sealed.jsonl" in changed[0]
    (folder / "sealed.jsonl").unlink()
    assert "is gone" in identity.data_changes(now, folder)[0]
    assert identity.data_changes(old, folder) == []


def test_read_splits_reads_sealed_when_present(story_split, tmp_path):
    root, _, _ = story_split
    assert set(data.read_splits(root)["large"]) == set(ALL)
    (root / "small" / "sealed.jsonl").unlink()
    assert set(data.read_splits(root)["small"]) == {"train", "valid", "test"}


def test_short_and_mix_carry_sealed_and_the_split_kind(story_split):
    root, _, _ = story_split
    proc = run("short_data.py", "--src", root / "large", "--train", "4", "--valid", "2", "--out", root / "short-n4")
    assert proc.returncode == 0, proc.stderr
    proc = run("mix_data.py", "--large", root / "large", "--small", root / "small", "--out", root / "mix-k3")
    assert proc.returncode == 0, proc.stderr
    large = read(root, "large")
    for name in ("short-n4", "mix-k3"):
        out = read(root, name)
        assert out["test"] == large["test"] and out["sealed"] == large["sealed"]
        manifest = json.loads((root / name / "manifest.json").read_text())
        assert manifest["split"] == "stories" and manifest["files"]["sealed"]["records"] == len(large["sealed"])
        assert data.dataset_label(root / name) == f"{name}-stories"
        assert identity.verify_split(root / name) is None


def test_short_of_a_paragraph_split_has_no_sealed(tmp_path):
    olelo.atomic_write_jsonl(tmp_path / "l.jsonl", records(make_pairs(40), "haw-en"))
    assert run("split.py", "--out", tmp_path / "out", f"large={tmp_path / 'l.jsonl'}").returncode == 0
    proc = run("short_data.py", "--src", tmp_path / "out" / "large", "--train", "4", "--valid", "2",
               "--out", tmp_path / "out" / "short")
    assert proc.returncode == 0, proc.stderr
    assert not (tmp_path / "out" / "short" / "sealed.jsonl").exists()
    assert json.loads((tmp_path / "out" / "short" / "manifest.json").read_text())["split"] == "paragraphs"
    assert data.dataset_label(tmp_path / "out" / "short") == "short"


@pytest.mark.parametrize("manifest,label", [
    ({"split": "stories"}, "large-stories"),
    ({"split": "paragraphs"}, "large"),
    ({"counts": {}}, "large"),  # made before --by, or by hand
    (None, "large"),  # no manifest at all
])
def test_dataset_label(tmp_path, manifest, label):
    folder = tmp_path / "large"
    folder.mkdir()
    if manifest is not None:
        olelo.atomic_write_json(folder / "manifest.json", manifest)
    assert data.dataset_label(folder) == label
    assert data.dataset_label(f"{folder}/") == label
    assert identity.dataset_label is data.dataset_label  # what train.py's stamp calls


def test_real_data_stories(shared_data, tmp_path):
    from test_split import convert_real

    converted = convert_real(shared_data, tmp_path)
    proc = run("split.py", "--out", tmp_path / "out", "--by", "stories", "--seed", "0",
               f"large={converted['large']}", f"small={converted['small']}")
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((tmp_path / "out" / "large" / "manifest.json").read_text())
    assert manifest["block_size"] == 50 and "block_size_asked" not in manifest
    assert {s: c["pairs"] for s, c in manifest["counts"].items()} == {
        "train": 2000, "valid": 231, "test": 300, "sealed": 300}
    # the docstring's measurement: at most 10 % of test and sealed sit beside a train pair
    assert {s: (w["with_train_neighbour"], w["pairs"]) for s, w in manifest["within_story"].items()} == {
        "valid": (6, 231), "test": (7, 300), "sealed": (10, 300)}
    koa = pids(olelo.read_jsonl(converted["small"]))
    for name in ("large", "small"):
        out = read(tmp_path / "out", name)
        assert not koa & (pids(out["test"]) | pids(out["sealed"]))
    assert not data.find_leaks({n: read(tmp_path / "out", n) for n in ("large", "small")})


# ---------------------------------------------------------------- the Makefile

def split_line(out):
    return next(line for line in out.splitlines() if "scripts/split.py" in line)


def test_makefile_passes_the_split_kind(run_make, tmp_path):
    line = split_line(run_make("-n", "data", f"INTERIM={tmp_path}/i").stdout)
    assert "--out data/finetuning/stories --by stories --block-size 50 " in line
    line = split_line(run_make("-n", "data", f"INTERIM={tmp_path}/i", "SPLIT=paragraphs").stdout)
    assert "--out data/finetuning --by paragraphs " in line and "--block-size" not in line
    line = split_line(run_make("-n", "data", f"INTERIM={tmp_path}/i", "BLOCK_SIZE=7").stdout)
    assert "--by stories --block-size 7 " in line
    for bad in ("SPLIT=story", "BLOCK_SIZE=0", "BLOCK_SIZE=x"):
        out = run_make("-n", "data", bad, check=False)
        assert out.returncode != 0 and bad.split("=")[0] + "=" in out.stderr and "Traceback" not in out.stderr


def test_make_data_resplits_when_the_split_kind_changes(run_make, tmp_path):
    base = ["data", f"SPLITS={tmp_path}/ft", f"INTERIM={tmp_path}/interim",
            "RAW_FORNANDER=data/sample/sample_pairs.csv", "RAW_KOA=data/sample/sample_small_pairs.csv"]
    manifest = tmp_path / "ft" / "large" / "manifest.json"
    run_make(*base)
    assert json.loads(manifest.read_text())["split"] == "stories"
    assert (tmp_path / "ft" / "large" / "sealed.jsonl").is_file()
    assert "split.py" not in run_make(*base).stdout
    assert "split.py" in run_make(*base, "BLOCK_SIZE=2").stdout
    assert json.loads(manifest.read_text())["block_size"] == 2
    run_make(*base, "SPLIT=paragraphs")
    assert json.loads(manifest.read_text())["split"] == "paragraphs"
    assert not (tmp_path / "ft" / "large" / "sealed.jsonl").exists()
    assert "split.py" not in run_make(*base, "SPLIT=paragraphs", "BLOCK_SIZE=5").stdout  # not the paragraphs' business
