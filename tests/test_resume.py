"""Exact resume: a run killed with kill -9 after a checkpoint and run again ends
with the weights and metrics of the same run uninterrupted (1 rank, 2 ranks over
the ring backend, gradient accumulation). Real training on the tiny model."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY_PAIRS

import olelo
from olelo import trainer

REPO = Path(__file__).resolve().parents[1]
LAUNCH = Path(sys.executable).with_name("mlx.launch")
# What must match; the rest (times, speeds, peak memory) is the machine's.
SAME = ("type", "iteration", "train_loss", "learning_rate", "trained_tokens", "grad_norm", "grad_norm_max",
        "val_loss", "val_chrf", "val_gen_n")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """6 training pairs (3 batches of 2: checkpoints fall mid-epoch) and 4 validation
    pairs (2 batches: validation draws from numpy's RNG, as on real data)."""
    records = [olelo.chat_record(h, e, "haw-en", f"p{i}") for i, (h, e) in enumerate(TINY_PAIRS)]
    d = tmp_path_factory.mktemp("resume-data") / "tiny"
    olelo.atomic_write_jsonl(d / "train.jsonl", records[:6])
    olelo.atomic_write_jsonl(d / "valid.jsonl", records[6:] + records[:2])
    olelo.atomic_write_jsonl(d / "test.jsonl", records[:5])
    return d


CASES = {
    # Dropout draws from mx.random; --val-gen scores 2 validation sentences (best/ by chrF++).
    # Reports every 3, checkpoints every 4: each checkpoint falls inside a report window,
    # after 1 or 2 of its updates (their gradient norms' sum and max are in the checkpoint).
    "1rank": dict(ranks=1, flags=["--grad-accumulation-steps", "1", "--steps-per-report", "3"],
                  lab=["--val-gen", "2", "--dropout", "0.1"]),
    # Each rank translates one of the 2 sentences; ranks average gradients; gradient checkpointing.
    "2ranks": dict(ranks=2, flags=["--grad-checkpoint"], lab=["--val-gen", "2"]),
    # Checkpoints every 4 with updates every 3 and reports every 3: each checkpoint
    # holds a partial gradient sum and partial loss sums. KEEP=2 prunes. Loss on the answer only.
    "grad_accum": dict(ranks=1, flags=["--grad-accumulation-steps", "3", "--steps-per-report", "3", "--mask-prompt"],
                       lab=["--val-gen", "0", "--keep", "2", "--lr-schedule", "cosine", "--warmup", "2"]),
}


def command(root, tiny_train, data, case):
    c = CASES[case]
    launcher = [str(LAUNCH), "-n", str(c["ranks"]), "--backend", "ring"] if c["ranks"] > 1 else []
    flags = list(c["flags"])
    report = 2
    if "--steps-per-report" in flags:
        i = flags.index("--steps-per-report")
        report = int(flags[i + 1])
        del flags[i:i + 2]
    return tiny_train.command(root, "--learning-rate", "1e-3", *flags, iters=12, batch=2, layers=4, data=data,
                              every=2, report_every=report, save_every=4, launcher=launcher, lab_opts=c["lab"])


def run_dir_of(root):
    return (root / "runs" / "latest").resolve()


def metrics(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def weights(path):
    import mlx.core as mx

    return {k: np.array(v) for k, v in mx.load(str(path)).items()}


def max_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float(np.abs(a[k].astype(np.float64) - b[k].astype(np.float64)).max()) for k in a)


def train_killed_after_first_checkpoint(cmd, root):
    """Start the run, kill -9 its whole process group once a checkpoint is complete."""
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + 600
    while not list((root / "adapters").glob("*/0000004_state.json")):
        assert proc.poll() is None and time.time() < deadline, "run ended before its first checkpoint"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_killed_and_resumed_run_is_the_uninterrupted_run(case, tmp_path, tiny_train, data):
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    out = subprocess.run(command(whole, tiny_train, data, case), cwd=REPO, capture_output=True, text=True,
                         timeout=900)
    assert out.returncode == 0 and run_dir_of(whole).is_dir(), out.stdout[-3000:] + out.stderr[-3000:]

    train_killed_after_first_checkpoint(command(cut, tiny_train, data, case), cut)
    killed = json.loads((run_dir_of(cut) / "manifest.json").read_text())
    assert killed["status"] == "running"  # it did not get to finish
    out = subprocess.run(command(cut, tiny_train, data, case), cwd=REPO, capture_output=True, text=True,
                         timeout=900)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]

    a_run, b_run = run_dir_of(whole), run_dir_of(cut)
    assert a_run.name == b_run.name
    manifest = json.loads((b_run / "manifest.json").read_text())
    assert manifest["status"] == "finished"
    offsets = [s["offset"] for s in manifest["segments"]]
    assert offsets[0] == 0 and len(offsets) == 2 and 4 <= offsets[1] < 12 and offsets[1] % 4 == 0

    a_ad, b_ad = whole / "adapters" / a_run.name, cut / "adapters" / b_run.name
    weight_diff = max_diff(weights(a_ad / "adapters.safetensors"), weights(b_ad / "adapters.safetensors"))
    assert sorted(olelo.runs.checkpoints(a_ad)) == sorted(olelo.runs.checkpoints(b_ad))
    for n, f in olelo.runs.checkpoints(a_ad).items():  # every checkpoint, not only the end
        weight_diff = max(weight_diff, max_diff(weights(f), weights(b_ad / f.name)))
    a_rows, b_rows = metrics(a_run), metrics(b_run)
    assert [(r["type"], r["iteration"]) for r in a_rows] == [(r["type"], r["iteration"]) for r in b_rows]
    loss_diff = max(abs(a.get(k, 0) - b.get(k, 0)) for a, b in zip(a_rows, b_rows)
                    for k in ("train_loss", "val_loss", "val_chrf"))
    print(f"\n[{case}] resumed at {offsets[1]}: max |Δ| weights {weight_diff:g}, losses/chrF {loss_diff:g}")
    assert weight_diff == 0 and loss_diff == 0
    assert [{k: r.get(k) for k in SAME} for r in a_rows] == [{k: r.get(k) for k in SAME} for r in b_rows]
    trains = [r for r in a_rows if r["type"] == "train"]
    assert all(0 < r["grad_norm"] <= r["grad_norm_max"] for r in trains if "grad_norm" in r)
    assert all("grad_norm" in r for r in trains)  # every report window of these cases holds an update
    assert json.loads((a_ad / "best" / "best.json").read_text()) == json.loads((b_ad / "best" / "best.json").read_text())
    # Training state is kept for the two newest checkpoints (the older one: a fallback).
    assert trainer.states(a_ad) == trainer.states(b_ad) == [8, 12]
    if "--keep" in CASES[case]["lab"]:
        assert sorted(olelo.runs.checkpoints(a_ad)) == [8, 12]


def test_a_checkpoint_cut_short_is_not_resumed_from_and_pruning_keeps_the_newest(tmp_path):
    # The JSON is written last: without it (or without its arrays) a checkpoint is skipped.
    for n in (2, 4, 8, 12, 16):
        for f in olelo.runs.checkpoint_files(tmp_path, n).values():
            f.write_text("x")
    olelo.runs.checkpoint_files(tmp_path, 16)["json"].unlink()
    olelo.runs.checkpoint_files(tmp_path, 12)["state"].unlink()
    assert trainer.states(tmp_path) == [2, 4, 8]
    trainer.prune(tmp_path, 8, "1")  # keep=1: the newest checkpoint's weights, and the fallback (4) whole
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "0000004_adapters.safetensors", "0000004_state.json", "0000004_state.safetensors",
        "0000008_adapters.safetensors", "0000008_state.json", "0000008_state.safetensors",
        "0000012_adapters.safetensors", "0000012_state.json",  # after the newest: left to be overwritten
        "0000016_adapters.safetensors", "0000016_state.safetensors"]
