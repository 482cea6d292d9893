"""Training runs: the notes' commands, run folders, no-op reruns, resume after
kill -9, early stopping, new attempts. Real mlx-lm training on a tiny model."""

import json
import os
import re
import shlex
import signal
import subprocess
import time
from pathlib import Path

import mlx.core as mx
import pytest

import olelo
from olelo import records
from olelo.config import mlx_lora_args
from olelo import trainer

REPO = Path(__file__).resolve().parents[1]
NOTES = REPO.parent / "shared" / "notes" / "prior-findings.md"
NOTES_SMALL = "mlx_lm.lora --model mlx-community/gemma-3-4b-it-4bit --train --data finetuning --iters 200 --batch-size 2"
NOTES_LARGE = ("mlx_lm.lora --model mlx-community/gemma-3-4b-it-4bit --train --data finetuning --iters 200 "
               "--batch-size 1 --grad-checkpoint")


@pytest.fixture
def make_n(run_make):
    """make -n's output: the commands a target would run."""
    return lambda *args: run_make("-n", *args).stdout


def lora_line(make_output: str) -> str:
    return next(line for line in make_output.splitlines() if "mlx_lm.lora" in line)


def test_notes_commands_are_the_ones_quoted_here():
    if not NOTES.is_file():
        pytest.skip(f"{NOTES} not found")
    text = " ".join(NOTES.read_text().split())
    assert NOTES_SMALL in text and NOTES_LARGE in text


@pytest.mark.parametrize("target,notes,data", [("train-small", NOTES_SMALL, "small"), ("train-large", NOTES_LARGE, "large")])
def test_make_n_shows_the_notes_command_verbatim(make_n, target, notes, data):
    line = lora_line(make_n(target))
    # (the notes' data folder is the lab's split; by default the story-held-out one)
    assert notes.replace("--data finetuning", f"--data data/finetuning/stories/{data}") in line


def test_notes_recommendations_are_one_variable_each(make_n):
    # Each recommendation, parsed by mlx-lm's own parser, equals what make runs.
    recs = {
        "--iters 2000 --batch-size 1 --grad-checkpoint --steps-per-eval 200 --save-every 400":
            ["ITERS=2000", "STEPS_PER_EVAL=200", "SAVE_EVERY=400"],
        "--iters 1000 --batch-size 1 --grad-checkpoint --learning-rate 5e-05": ["ITERS=1000", "LR=5e-05"],
        "--iters 1000 --batch-size 1 --grad-accumulation-steps 4 --grad-checkpoint": ["ITERS=1000", "GRAD_ACCUM=4"],
    }
    for flags, variables in recs.items():
        ours = "mlx_lm.lora" + lora_line(make_n("train-large", *variables)).split(" -- mlx_lm.lora", 1)[1]
        notes = f"mlx_lm.lora --model mlx-community/gemma-3-4b-it-4bit --train --data data/finetuning/stories/large {flags}"
        assert vars(mlx_lora_args(shlex.split(ours))) == vars(mlx_lora_args(shlex.split(notes)))
    # Rank is not an mlx-lm flag: it goes to the per-run config.yaml via the lab's --rank.
    launcher, lab, mlx = lora_line(make_n("train-large", "RANK=16")).split(" -- ")
    assert "--rank 16" in lab and "--rank" not in mlx


def test_stamp_is_readable_and_deterministic():
    args = {"model": "mlx-community/gemma-3-4b-it-4bit", "iters": 2000, "batch_size": 1, "learning_rate": 1e-5,
            "lora_parameters": {"rank": 8, "scale": 20.0, "dropout": 0.0}, "grad_checkpoint": True, "seed": 0}
    assert olelo.run_stamp("large", args) == "large-gemma-3-4b-it-4bit-it2000-bs1-lr1e-5-r8-gc-s0"
    more = {**args, "learning_rate": 5e-5, "lora_parameters": {"rank": 16, "scale": 20.0, "dropout": 0.0},
            "grad_accumulation_steps": 4, "patience": 3,
            "lr_schedule": {"name": "cosine_decay", "warmup": 100, "arguments": [5e-5, 1900, 5e-6]}}
    assert olelo.run_stamp("large", more) == "large-gemma-3-4b-it-4bit-it2000-bs1-lr5e-5-r16-gc-ga4-cosinew100-p3-s0"
    # GRAD_CLIP: a part of its own when set; unset (None, or absent as in runs before it): none
    assert olelo.run_stamp("large", {**more, "grad_clip": None}) == olelo.run_stamp("large", more)
    assert olelo.run_stamp("large", {**args, "grad_clip": None}) == "large-gemma-3-4b-it-4bit-it2000-bs1-lr1e-5-r8-gc-s0"
    assert olelo.run_stamp("large", {**more, "grad_clip": 1.0}) == \
        "large-gemma-3-4b-it-4bit-it2000-bs1-lr5e-5-r16-gc-ga4-cosinew100-clip1-p3-s0"
    assert olelo.run_stamp("large", {**args, "grad_clip": 0.5}).endswith("-gc-clip0.5-s0")
    assert olelo.run_stamp("large", {**args, "grad_clip": 1e-4}).endswith("-gc-clip0.0001-s0")


# ---------------------------------------------------------------- real runs

@pytest.fixture(scope="module")
def lab(tmp_path_factory, tiny_train):
    """Runs/adapters folders in tmp, and a function to train on tiny_data."""
    root = tmp_path_factory.mktemp("lab")

    def command(*extra, iters=6, lab_opts=()):
        return tiny_train.command(root, *extra, iters=iters, lab_opts=lab_opts)

    def run(*extra, check=True, iters=6, lab_opts=()):
        return tiny_train(root, *extra, check=check, iters=iters, lab_opts=lab_opts)

    return {"root": root, "command": command, "run": run}


@pytest.fixture(scope="module")
def finished(lab):
    lab["run"]()
    run_dir = (lab["root"] / "runs" / "latest").resolve()
    return run_dir, lab["root"] / "adapters" / run_dir.name


def read_metrics(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_run_folder_is_complete(finished):
    run_dir, adapters = finished
    for name in ("command.sh", "config.yaml", "manifest.json", "train.log", "metrics.jsonl"):
        assert (run_dir / name).is_file(), name
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "finished"
    assert manifest["environment"]["packages"]["mlx-lm"] == "0.32.2"
    assert manifest["git"]["commit"] and "dirty" in manifest["git"]
    assert manifest["data"]["train_sha256"] == olelo.sha256_file(Path(manifest["data_dir"]) / "train.jsonl")
    assert sorted(olelo.runs.checkpoints(adapters)) == [2, 4, 6]
    assert (adapters / "adapters.safetensors").is_file()
    assert manifest["best"]["iteration"] == json.loads((adapters / "best" / "best.json").read_text())["iteration"]


def test_command_sh_is_what_mlx_lm_ran(finished):
    # mlx-lm writes the arguments it trained with to adapter_config.json itself.
    run_dir, adapters = finished
    line = [l for l in (run_dir / "command.sh").read_text().splitlines() if l.startswith("mlx_lm.lora")]
    assert len(line) == 1
    recorded = vars(mlx_lora_args(shlex.split(line[0])))
    ran = json.loads((adapters / "adapter_config.json").read_text())
    for key, value in recorded.items():
        if key in ran:
            assert ran[key] == value, key


def test_metrics_match_what_training_reported(finished):
    # The console (train.log) and the callback (metrics.jsonl) are two records of one run.
    run_dir, _ = finished
    metrics = read_metrics(run_dir)
    log = (run_dir / "train.log").read_text()
    console_train = [(int(i), float(l)) for i, l in re.findall(r"^\s+(\d+)\s+(\d+\.\d+) [▼▲]", log, re.M)]
    console_val = [float(v) for v in re.findall(r"val (\d+\.\d+)", log)]
    train_rows = [m for m in metrics if m["type"] == "train"]
    val_rows = [m for m in metrics if m["type"] == "val"]
    assert [(m["iteration"], round(m["train_loss"], 3)) for m in train_rows] == console_train
    assert [round(m["val_loss"], 3) for m in val_rows] == console_val
    assert [m["iteration"] for m in val_rows] == [0, 1, 3, 5]  # mlx-lm validates before steps 1, 2, 4, 6
    assert all(m["tokens_per_second"] > 0 and m["peak_memory"] > 0 for m in train_rows)
    console_norms = [(int(i), float(a), float(b)) for i, a, b in
                     re.findall(r"^\s+(\d+)\s+grad norm (\S+) mean, (\S+) max over", log, re.M)]
    assert [(m["iteration"], float(f"{m['grad_norm']:.4g}"), float(f"{m['grad_norm_max']:.4g}")) for m in train_rows] \
        == console_norms


def test_second_identical_call_is_a_noop(lab, finished):
    run_dir, _ = finished
    before = (run_dir / "manifest.json").read_bytes()
    out = lab["run"]()
    assert "up to date" in out.stdout
    assert (run_dir / "manifest.json").read_bytes() == before


def test_force_trains_a_new_attempt_and_keeps_the_old(lab, finished):
    run_dir, _ = finished
    before = (run_dir / "manifest.json").read_bytes()
    lab["run"](lab_opts=["--force"])
    attempt = run_dir.with_name(run_dir.name + "-a2")
    assert json.loads((attempt / "manifest.json").read_text())["status"] == "finished"
    assert (run_dir / "manifest.json").read_bytes() == before


def test_runs_table_reads_every_run(finished):
    run_dir, _ = finished
    rows = {r["stamp"]: r for r in records.rows(run_dir.parent)}
    assert rows[run_dir.name]["status"] == "finished"
    assert rows[run_dir.name]["iters"] == "6/6"


def test_killed_run_resumes_from_its_last_checkpoint(lab):
    cmd = lab["command"](iters=10)
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    stamp_glob = lab["root"] / "adapters"
    deadline = time.time() + 300
    while not list(stamp_glob.glob("*it10*/0000004_state.json")):
        assert proc.poll() is None and time.time() < deadline, "run ended before its checkpoint"
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    adapters = next(stamp_glob.glob("*it10*"))
    run_dir = lab["root"] / "runs" / adapters.name
    assert json.loads((run_dir / "manifest.json").read_text())["status"] == "running"
    done_before = trainer.states(adapters)[-1]

    # Asked to resume with validation chrF++ off, it goes on with what it started with.
    out = lab["run"](iters=10, lab_opts=["--val-gen", "0"])
    assert "with its recorded select val_chrf" in out.stderr and "recorded val_gen 64" in out.stderr
    assert all("val_chrf" in m for m in read_metrics(run_dir) if m["type"] == "val")
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "finished"
    assert [s["offset"] for s in manifest["segments"]] == [0, done_before]
    assert sorted(olelo.runs.checkpoints(adapters)) == [2, 4, 6, 8, 10]
    assert f"# resumed from iteration {done_before}" in (run_dir / "command.sh").read_text()
    iters = [m["iteration"] for m in read_metrics(run_dir) if m["type"] == "train"]
    assert iters == [2, 4, 6, 8, 10]
    tokens = [m["trained_tokens"] for m in read_metrics(run_dir) if m["type"] == "train"]
    assert tokens == sorted(tokens) and len(set(tokens)) == len(tokens)
    assert trainer.states(adapters) == [8, 10]  # training state of the two newest checkpoints only


def test_memory_limit_is_set_and_recorded_but_not_part_of_the_stamp(lab, finished):
    # MEM_LIMIT changes when MLX waits, not what is computed: the same run under a limit is
    # up to date; a new run records the limit of each segment and says it in train.log.
    out = lab["run"](lab_opts=("--memory-limit-gb", "2"))
    assert "up to date" in out.stdout
    lab["run"](iters=4, lab_opts=("--memory-limit-gb", "2.5"))
    run_dir = (lab["root"] / "runs" / "latest").resolve()
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "finished" and "-it4-" in run_dir.name
    assert [s["memory_limit_gb"] for s in manifest["segments"]] == [2.5]
    assert "[olelo] memory limit 2.5 GB" in (run_dir / "train.log").read_text()
    for bad in ("0", "-1", "inf"):
        out = lab["run"](iters=3, lab_opts=("--memory-limit-gb", bad), check=False)
        assert out.returncode == 2 and "positive number of GB" in out.stderr and "Traceback" not in out.stderr
    assert not list((lab["root"] / "runs").glob("*-it3-*"))


def test_quantized_matmul_dense_trains_the_same_run_with_its_layers_switched(tmp_path, tiny_train, tiny_model,
                                                                             tiny_model_4bit):
    # QMATMUL changes how a 4-bit model multiplies, not what: the same stamp ("up to date"),
    # the same losses up to rounding; each segment records the choice and the layers switched.
    def run(*lab_opts, model=tiny_model_4bit, check=True):
        return tiny_train(tmp_path, iters=4, model=model, lab_opts=lab_opts, check=check)

    def train_losses(run_dir):
        return [m["train_loss"] for m in read_metrics(run_dir) if m["type"] == "train"]

    def latest_segment():
        return json.loads(((tmp_path / "runs" / "latest").resolve() / "manifest.json").read_text())["segments"][0]

    run("--quantized-matmul", "quantized")
    first = (tmp_path / "runs" / "latest").resolve()
    assert "up to date" in run("--quantized-matmul", "dense").stdout
    run("--quantized-matmul", "dense", "--force")
    second = (tmp_path / "runs" / "latest").resolve()
    assert second.name == first.name + "-a2"
    segments = [json.loads((d / "manifest.json").read_text())["segments"] for d in (first, second)]
    assert [s["quantized_matmul"] for s in segments[0]] == ["quantized"]
    assert [s["quantized_matmul"] for s in segments[1]] == ["dense"]
    assert segments[0][0]["dense_matmul_layers"] == 0 < segments[1][0]["dense_matmul_layers"]
    assert "multiply through dequantized weights" in (second / "train.log").read_text()
    assert train_losses(second) == pytest.approx(train_losses(first), rel=1e-4) and train_losses(first)
    # auto is quantized off CUDA; dense on a model without quantized layers switches nothing
    run("--force")
    assert latest_segment()["quantized_matmul"] == ("dense" if mx.cuda.is_available() else "quantized")
    run("--quantized-matmul", "dense", model=tiny_model)
    plain = latest_segment()
    assert plain["quantized_matmul"] == "dense" and plain["dense_matmul_layers"] == 0
    out = run("--quantized-matmul", "fast", check=False)
    assert out.returncode == 2 and "invalid choice: 'fast'" in out.stderr


def test_patience_stops_early_and_keeps_the_best(lab):
    # With a negligible learning rate the val loss never improves after iteration 0.
    # (LR must be > 0; 1e-30 moves no weight by a representable amount, as 0 would.)
    out = lab["run"]("--learning-rate", "1e-30", iters=20, lab_opts=["--patience", "2"])
    assert "early stop" in out.stdout and "no better val_chrf in 2 validations" in out.stdout  # SELECT's default
    run_dir = (lab["root"] / "runs" / "latest").resolve()
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "stopped-early"
    assert manifest["best"]["iteration"] == 0
    vals = [m["iteration"] for m in read_metrics(run_dir) if m["type"] == "val"]
    assert vals == [0, 1, 3]
    from mlx_lm import load

    load(json.loads((run_dir / "manifest.json").read_text())["model"], adapter_path=manifest["best"]["path"])


def test_hub_model_offline_says_what_to_do(lab):
    cmd = lab["command"]()
    cmd[cmd.index("--model") + 1] = "mlx-community/gemma-3-4b-it-4bit"
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert out.returncode == 2
    assert "MODEL=models/tiny-gemma3" in out.stderr
    assert "Traceback" not in out.stderr


def test_command_without_train_or_with_managed_flags_is_refused(lab):
    cmd = lab["command"]()
    bad = cmd[: cmd.index("--") + 1] + ["mlx_lm.lora", "--model", "m", "--data", "d", "--adapter-path", "x"]
    out = subprocess.run(bad, cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 2 and "--adapter-path is set by the lab" in out.stderr


def test_a_run_being_trained_is_not_started_twice(lab, tmp_path):
    # Another process holds the run folder's lock (here: this test, as a trainer would).
    first = lab["run"](iters=3)
    run_dir = (lab["root"] / "runs" / "latest").resolve()
    manifest = json.loads((run_dir / "manifest.json").read_text())
    olelo.atomic_write_json(run_dir / "manifest.json", {**manifest, "status": "running"})
    holder = olelo.runs.RunLock(run_dir)
    assert holder.acquire()
    try:
        out = lab["run"](iters=3, check=False)
    finally:
        holder.release()
    assert out.returncode == 2 and "being trained right now" in out.stderr
    assert f"pid {os.getpid()}" in out.stderr
    assert first.returncode == 0
