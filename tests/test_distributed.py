"""mlx.launch with the ring backend on this host: a 2-rank run writes its run
folder once and matches a 1-rank run at the same global batch."""

import json
import sys
from pathlib import Path

import pytest

LAUNCH = Path(sys.executable).with_name("mlx.launch")


def metrics(root):
    path = root / "runs" / "latest" / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_train):
    root = tmp_path_factory.mktemp("dist")
    ring = (LAUNCH, "-n", "2", "--backend", "ring")

    def train(out, launcher=(), batch=2):
        return tiny_train(out, batch=batch, launcher=launcher, check=False)

    one = train(root / "one")
    assert one.returncode == 0, one.stderr[-3000:]
    two = train(root / "two", ring)
    assert two.returncode == 0, two.stdout[-3000:] + two.stderr[-3000:]
    return {"root": root, "train": train, "ring": ring}


def test_two_ranks_write_one_complete_run_folder(runs):
    two = runs["root"] / "two"
    run_dirs = [p for p in (two / "runs").iterdir() if not p.is_symlink()]
    assert len(run_dirs) == 1
    manifest = json.loads((run_dirs[0] / "manifest.json").read_text())
    assert manifest["status"] == "finished" and manifest["world_size"] == 2
    assert len(manifest["hosts"]) == 1
    adapters = two / "adapters" / run_dirs[0].name
    assert sorted(p.name for p in adapters.glob("*_adapters.safetensors")) == [
        "0000002_adapters.safetensors", "0000004_adapters.safetensors"]
    # One writer: every report once, not once per rank.
    assert [m["iteration"] for m in metrics(two) if m["type"] == "train"] == [2, 4]


def test_two_ranks_match_one_rank_at_the_same_global_batch(runs):
    # Validation loss is token-weighted over all ranks, so it agrees closely; the
    # train loss is a mean of per-rank means, so it may differ a little more.
    one, two = metrics(runs["root"] / "one"), metrics(runs["root"] / "two")
    assert [m["iteration"] for m in one] == [m["iteration"] for m in two]
    for a, b in zip(one, two):
        key = "val_loss" if a["type"] == "val" else "train_loss"
        tolerance = 1e-3 if key == "val_loss" else 5e-3
        assert abs(a[key] - b[key]) <= tolerance * abs(a[key]), (a, b)
    assert one[0]["val_loss"] == pytest.approx(two[0]["val_loss"], rel=1e-6)  # same weights at iteration 0


def test_batch_that_does_not_divide_by_ranks_fails_before_anything(runs):
    # mlx.launch itself exits 0 when its ranks fail; the message and the absent
    # run folder are what tell. (The Makefile checks the batch before launching.)
    out = runs["train"](runs["root"] / "three", runs["ring"], batch=3)
    assert "does not divide by 2 ranks" in out.stdout + out.stderr
    assert not (runs["root"] / "three").exists()
