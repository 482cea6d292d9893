"""mlx.launch with the ring backend on this host: a 2-rank run writes its run
folder once and matches a 1-rank run at the same global batch."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LAUNCH = Path(sys.executable).with_name("mlx.launch")


def metrics(root):
    path = root / "runs" / "latest" / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_model, tiny_data):
    root = tmp_path_factory.mktemp("dist")
    data = tiny_data

    def train(out, launcher=(), batch=2):
        cmd = [*launcher, sys.executable, "scripts/train.py", "--runs-dir", str(out / "runs"),
               "--adapters-dir", str(out / "adapters"), "--", "mlx_lm.lora", "--model", str(tiny_model), "--train",
               "--data", str(data), "--iters", "4", "--batch-size", str(batch), "--num-layers", "6",
               "--steps-per-eval", "2", "--steps-per-report", "2", "--save-every", "2"]
        return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)

    one = train(root / "one")
    assert one.returncode == 0, one.stderr[-3000:]
    two = train(root / "two", (str(LAUNCH), "-n", "2", "--backend", "ring"))
    assert two.returncode == 0, two.stdout[-3000:] + two.stderr[-3000:]
    return {"root": root, "train": train}


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
    out = runs["train"](runs["root"] / "three", (str(LAUNCH), "-n", "2", "--backend", "ring"), batch=3)
    assert "does not divide by 2 ranks" in out.stdout + out.stderr
    assert not (runs["root"] / "three").exists()


def test_make_refuses_a_batch_that_does_not_divide_before_launching(run_make):
    out = run_make("train-large", "NPROC=2", "BATCH=3", "MODEL=models/x", "DATA=nonexistent-but-unused", check=False)
    assert out.returncode != 0
