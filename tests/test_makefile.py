"""The Makefile itself: help describes every variable, one rule trains both
experiments, EXTRA reaches mlx-lm, DRY_RUN resolves the launch (and refuses a batch
that does not divide by the ranks), and the renamed variables' old names stop make."""

import re
import shlex
from pathlib import Path

import pytest

import olelo
from olelo.config import mlx_lora_args

REPO = Path(__file__).resolve().parents[1]


def makefile_variables() -> list[str]:
    """Every user knob: the `NAME ?= ...` lines of the Makefile."""
    return re.findall(r"^([A-Z][A-Z0-9_]*) \?=", (REPO / "Makefile").read_text(), re.M)


def mlx_part(line: str) -> list[str]:
    return shlex.split("mlx_lm.lora" + line.split(" -- mlx_lm.lora", 1)[1])


def lora_line(out: str) -> str:
    return next(line for line in out.splitlines() if "mlx_lm.lora" in line)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, tiny_data):
    """SPLITS/DATA for make: a dataset folder with a manifest, so the training
    targets need nothing built."""
    splits = tmp_path_factory.mktemp("splits")
    for name in ("train", "valid", "test"):
        (splits / "tiny").mkdir(exist_ok=True)
        (splits / "tiny" / f"{name}.jsonl").write_text((tiny_data / f"{name}.jsonl").read_text())
    olelo.atomic_write_json(splits / "tiny" / "manifest.json", {"counts": {}})
    return [f"SPLITS={splits}", "DATA=tiny"]


def test_help_describes_every_variable(run_make):
    out = run_make("help").stdout
    variables = makefile_variables()
    assert len(variables) > 40
    for name in variables:
        line = next((l for l in out.splitlines() if l.split()[:1] == [name]), None)
        assert line, f"{name} is not in make help"
        assert len(line.split(None, 1)[1]) > 12, f"{name} has no description in make help: {line!r}"


def test_both_training_targets_are_one_rule_with_their_defaults(run_make):
    small = mlx_part(lora_line(run_make("-n", "train-small").stdout))
    large = mlx_part(lora_line(run_make("-n", "train-large").stdout))
    assert vars(mlx_lora_args(small))["batch_size"] == 2 and "--grad-checkpoint" not in small
    assert vars(mlx_lora_args(large))["batch_size"] == 1 and "--grad-checkpoint" in large
    assert small[small.index("--data") + 1] == "data/finetuning/stories/small"
    assert large[large.index("--data") + 1] == "data/finetuning/stories/large"
    # The paragraph split keeps the folders that the runs before the story split recorded.
    old = mlx_part(lora_line(run_make("-n", "train-large", "SPLIT=paragraphs").stdout))
    assert old[old.index("--data") + 1] == "data/finetuning/large"
    # With ranks, the large batch is one example per rank.
    assert "--batch-size 4" in lora_line(run_make("-n", "train-large", "NPROC=4").stdout)
    # BATCH=auto leaves grad checkpointing to the pick unless GRAD_CKPT says.
    assert "--grad-checkpoint" not in lora_line(run_make("-n", "train-large", "BATCH=auto").stdout)
    assert "--grad-checkpoint" in lora_line(run_make("-n", "train-large", "BATCH=auto", "GRAD_CKPT=1").stdout)


def test_extra_passes_any_mlx_lm_flag_through(run_make):
    line = lora_line(run_make("-n", "train-small", "EXTRA=--steps-per-report 5 --test-batches 7").stdout)
    args = vars(mlx_lora_args(mlx_part(line)))
    assert args["steps_per_report"] == 5 and args["test_batches"] == 7


def test_dry_run_refuses_a_batch_that_does_not_divide_by_the_ranks(run_make, dataset, tmp_path):
    # The replacement of a test that could not fail: the refusal is told apart from
    # a valid batch, which prints the launch and exits 0.
    common = ["train-large", *dataset, "MODEL=models/x", "NPROC=2", "DRY_RUN=1", f"RUNS_DIR={tmp_path / 'runs'}"]
    bad = run_make(*common, "BATCH=3", check=False)
    assert bad.returncode != 0
    assert "error: BATCH=3 does not divide by 2 ranks" in bad.stderr
    good = run_make(*common, "BATCH=4")
    assert "mlx.launch -n 2 --backend ring" in good.stdout and "--batch-size 4" in good.stdout
    assert not (tmp_path / "runs").exists()  # a dry run starts nothing


def test_dry_run_refuses_auto_batch_with_ranks(run_make, dataset):
    out = run_make("train-small", *dataset, "MODEL=models/x", "NPROC=2", "BATCH=auto", "DRY_RUN=1", check=False)
    assert out.returncode != 0 and "BATCH=auto picks a batch for one process" in out.stderr


@pytest.mark.parametrize("old,new,value,target,shows", [
    ("CKPT", "FUSE_CKPT", "400", "fuse", "--ckpt 400"),
    ("BACKEND", "DIST_BACKEND", "nccl", "train-large", "--backend nccl"),
    ("CKPTS", "EVAL_CKPTS", "400", "eval", "--ckpt ckpt-0000400"),
])
def test_old_variable_names_stop_make_naming_the_new_one(run_make, tmp_path, old, new, value, target, shows):
    """The old names of renamed variables were read through shims; now one given on the
    command line stops make (status 2) with the new name, before any rule runs: a value
    silently ignored would evaluate, fuse or train the wrong thing. In the environment the
    old name is left alone (BACKEND may be another program's setting)."""
    import os
    import subprocess
    from conftest import MAKE

    where = ["RUN=runs/x", "MODEL=models/x", f"RUNS_DIR={tmp_path / 'runs'}", "BASE_COMPLETION=0"]
    out = run_make("-n", target, *where, f"{old}={value}", check=False)
    assert out.returncode == 2, out.stdout + out.stderr
    assert f"{old}='{value}': {old} is now {new}; give {new}='{value}' instead" in out.stderr
    assert not out.stdout.strip()  # stopped before anything, under make -n too
    env = subprocess.run([MAKE, "--no-print-directory", "-n", target, *where], cwd=REPO, capture_output=True,
                         text=True, env={**os.environ, old: value})
    assert env.returncode == 0 and f"{old} is now {new}" not in env.stderr, env.stderr
    if target == "eval":  # the checkpoint asked for has no adapter: make -n still lists it
        (tmp_path / "adapters" / "x").mkdir(parents=True)
        (tmp_path / "adapters" / "x" / "0000400_adapters.safetensors").write_bytes(b"")
        where.append(f"ADAPTERS_DIR={tmp_path / 'adapters'}")
    assert shows in run_make("-n", target, *where, f"{new}={value}").stdout


def test_eval_checkpoints_by_their_name(run_make, tmp_path):
    # A run whose final and best adapters exist: make -n lists one translation per
    # checkpoint asked for.
    for path in ("adapters/x/adapters.safetensors", "adapters/x/best/adapters.safetensors"):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_bytes(b"")
    (tmp_path / "runs" / "x").mkdir(parents=True)
    where = [f"RUNS_DIR={tmp_path / 'runs'}", f"ADAPTERS_DIR={tmp_path / 'adapters'}", "RUN=x", "BASE_COMPLETION=0"]

    def checkpoints(*args):
        out = run_make("-n", "eval", *where, *args)
        return out, sorted(re.findall(r"translate\.py .*--ckpt (\w+)", out.stdout))

    assert checkpoints()[1] == ["base", "best", "final"]
    assert checkpoints("EVAL_CKPTS=final")[1] == ["base", "final"]


def test_bench_eval_checks_its_counts_and_passes_the_sample(run_make):
    line = [l for l in run_make("-n", "bench-eval", "BENCH_N=40", "BENCH_PROCESSES=8").stdout.splitlines()
            if "bench/eval_speed.py" in l]
    assert len(line) == 1 and "--n 40 --n-processes 8 " in line[0]
    line = [l for l in run_make("-n", "bench-eval", "BENCH_N=40").stdout.splitlines() if "bench/eval_speed.py" in l]
    assert "--n 40 " in line[0] and "--n-processes" not in line[0]  # empty: every one of the N
    for bad in ("BENCH_N=0", "BENCH_PROCESSES=2 3", "BENCH_N=x'y"):
        out = run_make("-n", "bench-eval", bad, check=False)
        assert out.returncode != 0 and "must be a whole number >= 1" in out.stderr, bad


def test_vars_files_written_by_several_makes_at_once(tmp_path):
    # Two runs started together in one checkout both rewrite the split's vars file:
    # each writer has its own temporary name, so none finds its file taken by the other.
    import subprocess
    from conftest import MAKE

    splits = tmp_path / "splits"
    for rnd in range(4):
        procs = [subprocess.Popen([MAKE, "--no-print-directory", f"{splits}/.split-vars", f"SPLITS={splits}"],
                                  cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(8)]
        for p in procs:
            out, err = p.communicate()
            assert p.returncode == 0, err
        assert (splits / ".split-vars").read_text() == "seed=0\nsplit=stories\nblock_size=50\n"
        assert [p.name for p in splits.iterdir()] == [".split-vars"]  # no temporary left behind


def test_grad_clip_goes_to_train_py_and_a_bad_value_is_refused_naming_it(run_make, dataset, tmp_path):
    common = ["train-small", *dataset, "MODEL=models/x", f"RUNS_DIR={tmp_path / 'runs'}",
              f"ADAPTERS_DIR={tmp_path / 'adapters'}"]
    assert "--grad-clip 0.5 " in run_make("-n", *common, "GRAD_CLIP=0.5").stdout
    assert "--grad-clip" not in run_make("-n", *common).stdout  # unset: no flag (no clipping)
    for bad, shown in (("0", "0"), ("-1", "-1"), ("nan", "nan"), ("inf", "inf")):
        out = run_make(*common, f"GRAD_CLIP={bad}", check=False)
        assert out.returncode != 0 and f"error: GRAD_CLIP={shown}: must be a number > 0" in out.stderr, out.stderr
    assert not (tmp_path / "runs").exists()  # refused before any folder
