"""LOSS=auto|default|chunked (train.py --loss, mem_profile.py --loss): the chunked loss
trains to the same recorded losses, the choice (auto's resolved) is recorded and kept
on resume, and a wrong value is refused before anything is written."""

import json
import subprocess
import sys
from pathlib import Path

import mlx.core as mx
import pytest

from conftest import mem_profile_options, script
from olelo import auto_batch, lean_loss, mem_profile, memory
import olelo

REPO = Path(__file__).resolve().parents[1]


def metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def both_losses(tmp_path_factory, tiny_train):
    """The same short run (same seed) trained with each loss, in its own root. The
    chunked one runs in this process with 3-token chunks, so that the tiny data's
    sequences (under 100 tokens) are cut into many chunks inside the compiled step."""
    from olelo import run

    runs = {}
    for loss in ("default", "chunked"):
        root = tmp_path_factory.mktemp(loss)
        if loss == "default":
            tiny_train(root, iters=4, lab_opts=["--loss", loss, "--val-gen", "0"])
        else:
            original, calls = lean_loss.chunked_loss, []

            def chunked_loss(model, batch, lengths):
                calls.append(batch.shape)
                return original(model, batch, lengths, chunk_tokens=3)

            # validation (trainer.train uses loss.validation): the gradient-free path, also in 3-token chunks
            chunked_loss.validation = lambda model, batch, lengths: original.validation(model, batch, lengths, 3)

            mp = pytest.MonkeyPatch()
            mp.setattr(lean_loss, "chunked_loss", chunked_loss)
            mp.setattr(sys, "stdout", sys.stdout)  # run.life (train.py's main) tees the console and resets it to sys.__stdout__
            mp.setattr(sys, "stderr", sys.stderr)
            try:
                argv = tiny_train.command(root, iters=4, lab_opts=["--loss", loss, "--val-gen", "0"])
                assert run.life(argv[argv.index("--runs-dir"):]) == 0
            finally:
                mp.undo()
            assert calls, "train.py --loss chunked did not use lean_loss.chunked_loss"
        runs[loss] = (root, (root / "runs" / "latest").resolve())
    return runs


@pytest.mark.slow
def test_chunked_loss_trains_to_the_same_metrics(both_losses):
    (_, want_dir), (_, got_dir) = both_losses["default"], both_losses["chunked"]
    assert got_dir.name == want_dir.name  # the loss is not part of the stamp
    want, got = metrics(want_dir), metrics(got_dir)
    assert [(m["type"], m["iteration"]) for m in got] == [(m["type"], m["iteration"]) for m in want]
    assert [m["type"] for m in want].count("train") == 2 and [m["type"] for m in want].count("val") == 3
    for w, g in zip(want, got):
        key = "train_loss" if w["type"] == "train" else "val_loss"
        assert g[key] == pytest.approx(w[key], rel=1e-5), (w["type"], w["iteration"])
        if w["type"] == "train":
            assert g["trained_tokens"] == w["trained_tokens"]
    for loss, (_, run_dir) in both_losses.items():
        manifest = json.loads((run_dir / "manifest.json").read_text())
        assert manifest["status"] == "finished"
        assert manifest["lab_options"]["loss"] == loss


@pytest.mark.slow
def test_a_run_resumes_only_with_the_loss_it_started_with(both_losses, tiny_train):
    root, run_dir = both_losses["chunked"]
    # Make the finished run look interrupted after its last checkpoint.
    manifest_path = run_dir / "manifest.json"
    olelo.atomic_write_json(manifest_path, {**json.loads(manifest_path.read_text()), "status": "failed"})
    before = manifest_path.read_bytes()
    out = tiny_train(root, iters=4, lab_opts=["--loss", "default", "--val-gen", "0"], check=False)
    assert out.returncode == 2, out.stderr
    assert out.stderr.strip().splitlines()[-1] == (f"error: run {run_dir.name} was started with LOSS=chunked; resume it with "
                                  "LOSS=chunked, or FORCE=1 trains a new attempt with LOSS=default")
    assert manifest_path.read_bytes() == before
    tiny_train(root, iters=4, lab_opts=["--loss", "chunked", "--val-gen", "0"])
    assert json.loads(manifest_path.read_text())["status"] == "finished"


@pytest.mark.slow
def test_auto_resumes_a_run_with_the_loss_it_started_with(both_losses, tiny_train):
    root, run_dir = both_losses["default"]
    manifest_path = run_dir / "manifest.json"
    olelo.atomic_write_json(manifest_path, {**json.loads(manifest_path.read_text()), "status": "failed"})
    out = tiny_train(root, iters=4, lab_opts=["--loss", "auto", "--val-gen", "0"])
    assert f"note: resuming {run_dir.name} with the loss it started with, LOSS=default" in out.stderr
    manifest = json.loads(manifest_path.read_text())
    assert manifest["status"] == "finished" and manifest["lab_options"]["loss"] == "default"


def test_an_unknown_loss_is_refused_before_any_folder(tmp_path):
    cmd = [sys.executable, "scripts/train.py", "--runs-dir", tmp_path / "runs", "--adapters-dir", tmp_path / "adapters",
           "--loss", "fused", "--", "mlx_lm.lora", "--model", "models/tiny-gemma3", "--train", "--data", tmp_path]
    out = subprocess.run(list(map(str, cmd)), cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 2
    assert "--loss: invalid choice: 'fused'" in out.stderr and "Traceback" not in out.stderr
    assert list(tmp_path.iterdir()) == []


def test_make_passes_loss_to_training_and_mem_profile(run_make):
    for target in ("train-small", "train-large"):
        _, lab, _ = next(l for l in run_make("-n", target).stdout.splitlines() if "mlx_lm.lora" in l).split(" -- ")
        assert "--loss auto" in lab  # LOSS's default: train.py resolves it (below)
        _, lab, _ = next(l for l in run_make("-n", target, "LOSS=chunked").stdout.splitlines()
                         if "mlx_lm.lora" in l).split(" -- ")
        assert "--loss chunked" in lab
    profile = run_make("-n", "mem-profile", "LOSS=chunked").stdout
    assert "scripts/mem_profile.py" in profile and profile.count("--loss chunked") == 2  # sweep and guidelines


def test_profiles_are_told_apart_by_loss(tmp_path):
    a = mem_profile_options(loss="chunked")
    assert mem_profile.sweep_stamp(a).endswith("-chunked")
    assert not mem_profile.sweep_stamp(mem_profile_options(loss="default")).endswith("-default")  # old names stay
    fit = {"static_bytes": 1}
    for name, loss, created in (("old", None, "2026-11-01"), ("lean", "chunked", "2026-11-02")):
        record = {"model": "models/tiny-gemma3", "fit": fit, "created": created}
        if loss:
            record["loss"] = loss
        olelo.atomic_write_json(tmp_path / name / "results.json", record)
    # A profile from before --loss was measured with mlx-lm's default loss.
    assert memory.newest_profile(tmp_path, "models/tiny-gemma3")["path"].endswith("old/results.json")
    assert memory.newest_profile(tmp_path, "models/tiny-gemma3", "chunked")["path"].endswith("lean/results.json")


@pytest.mark.slow
def test_mem_profile_sweeps_with_the_chunked_loss(tmp_path, tiny_model, tiny_data):
    assert script("mem_profile.py", "--model", tiny_model, "--data", tiny_data, "--batch-sizes", "1,2",
                  "--grad-checkpoint", "off", "--max-seqs", "64", "--iters", "2", "--warmup", "1",
                  "--no-longest-check", "--loss", "chunked", "--out", tmp_path).returncode == 0
    (out,) = tmp_path.iterdir()
    assert out.name.endswith("-nolc-chunked")
    results = json.loads((out / "results.json").read_text())
    assert results["loss"] == "chunked"
    assert [(r["batch"], r["status"], r["loss"]) for r in results["rows"]] == [(1, "ok", "chunked"),
                                                                               (2, "ok", "chunked")]


def test_auto_is_the_chunked_loss_on_a_cpu_and_the_default_on_a_gpu(monkeypatch):
    assert lean_loss.resolve("default") == "default" and lean_loss.resolve("chunked") == "chunked"
    monkeypatch.setattr(mx, "default_device", lambda: mx.Device(mx.cpu))
    assert lean_loss.resolve("auto") == "chunked"
    assert lean_loss.resolve("auto", "dora") == "chunked"
    assert lean_loss.resolve("auto", "full") == "default"  # the chunked loss needs a frozen head
    monkeypatch.setattr(mx, "default_device", lambda: mx.Device(mx.gpu))
    assert lean_loss.resolve("auto") == "default"


@pytest.mark.slow
def test_a_run_records_what_auto_chose(tmp_path, tiny_train):
    tiny_train(tmp_path, iters=2, lab_opts=["--val-gen", "0"])
    manifest = json.loads(next((tmp_path / "runs").glob("*/manifest.json")).read_text())
    want = "chunked" if mx.default_device().type == mx.DeviceType.cpu else "default"
    assert manifest["status"] == "finished" and manifest["lab_options"]["loss"] == want
    # What each tool resolves its default --loss to. auto_batch: its options, as launch.py takes them.
    assert auto_batch.parse_args(["--model", "m", "--data", "d"]).loss == want, "auto_batch"
    # memory_guidelines.py names the loss it looked for when it finds no profile.
    out = script("memory_guidelines.py", "--model", "m", "--results-dir", tmp_path / "none")
    assert out.returncode == 2 and f"with --loss {want} " in out.stderr, "memory_guidelines"
    # mem_profile.py names its result folder with it (-chunked; mlx-lm's default: no suffix)
    # before it measures: its one point is cut short (1 s).
    script("mem_profile.py", "--model", tiny_train.model, "--data", tiny_train.data, "--batch-sizes", "1",
           "--grad-checkpoint", "off", "--max-seqs", "64", "--iters", "2", "--warmup", "1", "--no-longest-check",
           "--point-timeout", "1", "--out", tmp_path / "profile")
    (folder,) = (tmp_path / "profile").iterdir()
    assert folder.name.endswith("-nolc" if want == "default" else f"-nolc-{want}"), "mem_profile"


def test_batch_auto_asks_for_the_profile_of_the_loss_train_will_use():
    from olelo import launch

    def opts(argv):
        return {k: argv[argv.index(k) + 1] for k in ("--loss", "--fine-tune-type")}

    cmd = ["mlx_lm.lora", "--model", "m", "--data", "d", "--train"]
    assert opts(launch.auto_batch_argv([], cmd)) == {"--loss": "auto", "--fine-tune-type": "lora"}
    assert opts(launch.auto_batch_argv(["--loss", "chunked"], cmd))["--loss"] == "chunked"
    full = launch.auto_batch_argv(["--loss", "auto"], cmd + ["--fine-tune-type", "full"])
    assert opts(full) == {"--loss": "auto", "--fine-tune-type": "full"}
    # auto_batch.py resolves it as train.py would: never the chunked loss for a full fine-tune
    assert auto_batch.parse_args(full).loss == "default"
