"""The lab record never lies (issue 11), tried as an adversary would: stale runs, leaked
tests, bogus runs, races, wrong models published, unsafe make variables, well-formed but
wrong data, tracebacks, and p-values beside identical scores. Each section is one class
of the issue; real MLX on the tiny model, real make. Sections 6-10 (make variables, data
sanity, one-line errors, score tables) are in test_integrity_inputs.py; the lab fixtures
are in conftest.py."""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import olelo
from olelo import identity
from olelo import records
from olelo import results_tables
from conftest import PY, REPO, latest, one_line_error, script, upload_env


# ================================================================ 1. run identity

def test_changed_training_data_is_never_up_to_date(lab, tmp_path, scratch_copy):
    data, _ = scratch_copy
    lab["train"](data_dir=data, iters=2)
    run_dir = latest(lab)
    before = (run_dir / "manifest.json").read_bytes()
    records = olelo.read_jsonl(data / "train.jsonl")
    olelo.atomic_write_jsonl(data / "train.jsonl", records[:-1])  # one pair fewer; stamp unchanged
    manifest = json.loads((data / "manifest.json").read_text())
    manifest["outputs"]["train.jsonl"] = olelo.sha256_file(data / "train.jsonl")
    olelo.atomic_write_json(data / "manifest.json", manifest)  # a consistent, different split
    out = lab["train"](data_dir=data, iters=2, check=False)
    line = one_line_error(out, "train.jsonl", "FORCE=1")
    assert "up to date" not in out.stdout
    assert olelo.sha256_file(data / "train.jsonl")[:12] in line
    assert (run_dir / "manifest.json").read_bytes() == before
    forced = lab["train"](data_dir=data, iters=2, lab_opts=["--force"])
    assert "-a2" in forced.stdout and latest(lab).name == run_dir.name + "-a2"


def test_another_model_under_the_same_folder_name_is_refused(lab, tmp_path, scratch_copy, tiny_text):
    _, model = scratch_copy
    lab["train"](model_dir=model, iters=2)
    run_dir = latest(lab)
    # Rebuild the model in place with another seed: same name, same config, other weights.
    script("build_tiny_model.py", "--text", tiny_text, "--out", model, "--vocab-size", "300", "--seed", "7", check=True)
    out = lab["train"](model_dir=model, iters=2, check=False)
    one_line_error(out, f"the model {model}", "weights", "FORCE=1")
    for tool in ("translate.py", "perplexity.py"):
        out = script(tool, "--run", run_dir, "--ckpt", "final", "-o", tmp_path / tool / "out.json")
        one_line_error(out, "cannot be evaluated", "model")
        assert not (tmp_path / tool).exists()
    out = script("fuse.py", "--run", run_dir, "--out", tmp_path / "fused" / "x", cwd=tmp_path)
    one_line_error(out, "cannot be fused", "model")
    assert not (tmp_path / "fused" / "x").exists()


def test_eval_refuses_a_test_set_other_than_the_runs(lab, trained, tmp_path):
    test = lab["data"] / "test.jsonl"
    original = test.read_bytes()
    recorded = json.loads((trained["run_dir"] / "manifest.json").read_text())["data"]["test_sha256"]
    try:
        # A test set that now holds a training pair: scoring it would reward memorising.
        train_rec = olelo.read_jsonl(lab["data"] / "train.jsonl")[0]
        olelo.atomic_write_jsonl(test, olelo.read_jsonl(test) + [train_rec])
        now = olelo.sha256_file(test)
        out = script("translate.py", "--run", trained["run_dir"], "--ckpt", "base", "-o", tmp_path / "h.jsonl")
        one_line_error(out, str(test), now[:12], recorded[:12])
        out = script("eval_report.py", "--run", trained["run_dir"], "--eval-dir", tmp_path)
        one_line_error(out, "cannot be scored", now[:12], recorded[:12])
    finally:
        test.write_bytes(original)


def test_model_identity_of_a_local_folder(lab, tmp_path):
    a = identity.model_identity(str(lab["model"]))
    assert a["kind"] == "local" and a["config_sha256"] == olelo.sha256_file(lab["model"] / "config.json")
    assert a["weights_sha256"]  # the tiny model is small enough to hash whole
    copy = tmp_path / "copy"
    shutil.copytree(lab["model"], copy)
    b = identity.model_identity(str(copy))
    assert identity.model_changes(a, b, "m") == []  # moved, same content: the same model
    cfg = json.loads((copy / "config.json").read_text())
    cfg["rms_norm_eps"] = 1e-5
    (copy / "config.json").write_text(json.dumps(cfg))
    assert "config.json" in identity.model_changes(a, identity.model_identity(str(copy)), "m")[0]


def test_make_data_split_seed_is_part_of_the_splits_identity_and_seed_is_not(run_make, tmp_path):
    base = ["data", f"SPLITS={tmp_path}/ft", f"INTERIM={tmp_path}/interim",
            "RAW_FORNANDER=data/sample/sample_pairs.csv", "RAW_KOA=data/sample/sample_small_pairs.csv"]
    manifest = tmp_path / "ft" / "large" / "manifest.json"
    run_make(*base)
    assert json.loads(manifest.read_text())["seed"] == 0
    again = run_make(*base)
    assert "split.py" not in again.stdout  # nothing changed: nothing done
    # SEED is training's: three seeds of a run share one test and validation set
    assert "split.py" not in run_make(*base, "SEED=1").stdout
    assert json.loads(manifest.read_text())["seed"] == 0
    run_make(*base, "SPLIT_SEED=1")
    assert json.loads(manifest.read_text())["seed"] == 1
    assert "split.py" not in run_make(*base, "SPLIT_SEED=1").stdout
    run_make(*base)
    assert json.loads(manifest.read_text())["seed"] == 0


def test_bootstrap_is_part_of_the_summarys_identity(run_make, lab, trained):
    common = ["eval", f"RUNS_DIR={lab['root'] / 'runs'}", f"ADAPTERS_DIR={lab['root'] / 'adapters'}",
              f"RUN={trained['stamp']}", "EVAL_CKPTS=final", "LIMIT=2", "MAX_TOKENS=4"]
    run_make(*common, "BOOTSTRAP=20")
    summary = trained["run_dir"] / "eval-n2-mt4" / "summary.json"
    assert json.loads(summary.read_text())["bootstrap"]["samples"] == 20
    out = run_make(*common, "BOOTSTRAP=30")
    assert "eval_report.py" in out.stdout and "translate.py" not in out.stdout
    assert json.loads(summary.read_text())["bootstrap"]["samples"] == 30
    assert "eval_report.py" not in run_make(*common, "BOOTSTRAP=30").stdout
    out = run_make(*common, "BOOTSTRAP=30", "EVAL_BATCH=1")  # the batch shapes the translations
    assert out.stdout.count("translate.py") == 3  # base, final and the pretrained base's completion row


# ================================================================ 2. atomic multi-file outputs

# split.py run as `python scripts/split.py ARGS`, killed (KeyboardInterrupt) after its first file.
DYING_SPLIT = """
import runpy, sys
import olelo

real_write, calls = olelo.atomic_write_bytes, []

def dying_write(path, data):
    calls.append(path)
    if len(calls) == 2:  # train.jsonl written, valid.jsonl not: the moment of a kill
        raise KeyboardInterrupt
    real_write(path, data)

olelo.atomic_write_bytes = dying_write
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def test_a_split_that_dies_midway_leaves_the_old_folder_whole(lab, tmp_path):
    out = tmp_path / "ft"
    shutil.copytree(lab["data"], out / "tiny")
    before = {p.name: p.read_bytes() for p in (out / "tiny").iterdir()}
    killed = subprocess.run([PY, "-c", DYING_SPLIT, str(REPO / "scripts" / "split.py"), "--out", str(out),
                             "--seed", "5", "--test-fraction", "0.25", "--valid-fraction", "0.2",
                             f"tiny={lab['root'] / 'pairs.jsonl'}"], capture_output=True, text=True)
    assert killed.returncode == 130 and "interrupted" in killed.stderr, killed.stderr[-3000:]  # the interrupt
    assert {p.name: p.read_bytes() for p in (out / "tiny").iterdir()} == before
    assert [p.name for p in out.iterdir()] == ["tiny"]  # no temporary folder left either


def test_training_verifies_the_split_before_starting(lab, tmp_path, scratch_copy):
    data, _ = scratch_copy
    runs_before = sorted(p.name for p in (lab["root"] / "runs").iterdir()) if (lab["root"] / "runs").exists() else []
    # A train.jsonl that no longer matches its manifest (a half-written or edited split).
    test_rec = olelo.read_jsonl(data / "test.jsonl")[0]
    olelo.atomic_write_jsonl(data / "train.jsonl", olelo.read_jsonl(data / "train.jsonl") + [test_rec])
    one_line_error(lab["train"](data_dir=data, check=False), "train.jsonl", "make data")
    # The same leak with a manifest rewritten to match: refused for the leak itself.
    manifest = json.loads((data / "manifest.json").read_text())
    manifest["outputs"]["train.jsonl"] = olelo.sha256_file(data / "train.jsonl")
    olelo.atomic_write_json(data / "manifest.json", manifest)
    one_line_error(lab["train"](data_dir=data, check=False), "test pair(s) also in train/valid")
    runs_after = sorted(p.name for p in (lab["root"] / "runs").iterdir()) if (lab["root"] / "runs").exists() else []
    assert runs_after == runs_before


def test_atomic_dir_replaces_whole_or_not_at_all(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with pytest.raises(RuntimeError):
        with olelo.atomic_dir(target) as tmp:
            (tmp / "new.txt").write_text("new")
            raise RuntimeError("killed")
    assert [p.name for p in tmp_path.iterdir()] == ["out"] and (target / "old.txt").is_file()
    with olelo.atomic_dir(target) as tmp:
        (tmp / "new.txt").write_text("new")
    assert [p.name for p in target.iterdir()] == ["new.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_an_invalid_eval_setting_leaves_no_eval_folder(run_make, lab, trained):
    out = run_make("eval", f"RUNS_DIR={lab['root'] / 'runs'}", f"ADAPTERS_DIR={lab['root'] / 'adapters'}",
                   f"RUN={trained['stamp']}", "LIMIT=3", "EVAL_BATCH=0", check=False)
    assert out.returncode != 0 and "EVAL_BATCH='0': must be a whole number >= 1" in out.stderr
    assert not list(trained["run_dir"].glob("eval-n3*"))
    # A run that does not exist: one line, and no run folder made for it.
    out = run_make("eval", f"RUNS_DIR={lab['root'] / 'runs'}", "RUN=no-such-run", check=False)
    assert out.returncode != 0 and "no run" in out.stderr and "Traceback" not in out.stderr
    assert not (lab["root"] / "runs" / "no-such-run").exists()


# ================================================================ 3. validate before anything is created

BAD_KNOBS = [
    (("--iters", "0"), (), "ITERS=0"),
    (("--iters", "-1"), (), "ITERS=-1"),
    (("--iters", "ten"), (), "--iters: invalid int value"),
    (("--batch-size", "0"), (), "BATCH=0"),
    (("--learning-rate", "-1e-5"), (), "LR=-1e-05"),
    (("--learning-rate", "0"), (), "LR=0"),
    ((), ("--rank", "0"), "RANK=0"),
    ((), ("--rank", "-4"), "RANK=-4"),
    ((), ("--dropout", "1.5"), "DROPOUT=1.5"),
    ((), ("--lr-schedule", "cosine", "--warmup", "9"), "WARMUP=9"),
    ((), ("--warmup", "2"), "WARMUP=2"),
    ((), ("--patience", "-1"), "PATIENCE=-1"),
    ((), ("--val-gen=-3",), "VAL_GEN=-3"),
    (("--steps-per-eval", "0"), (), "STEPS_PER_EVAL=0"),
    (("--save-every", "0"), (), "SAVE_EVERY=0"),
    (("--grad-accumulation-steps", "0"), (), "GRAD_ACCUM=0"),
    (("--max-seq-length", "8"), (), "MAX_SEQ=8"),
    (("--num-layers", "0"), (), "LAYERS=0"),
    (("--num-layers", "99"), (), "LAYERS=99"),
]


@pytest.mark.parametrize("flags,lab_opts,knob", BAD_KNOBS, ids=[k for _, _, k in BAD_KNOBS])
def test_an_invalid_knob_is_refused_before_any_folder(lab, trained, flags, lab_opts, knob):
    runs = lab["root"] / "runs"
    before = sorted(p.name for p in runs.iterdir())
    latest_before = os.readlink(runs / "latest")
    cmd = lab["command"](lab_opts=lab_opts)
    for flag, value in zip(flags[::2], flags[1::2]):  # replace the fixture's value, or add the flag
        if flag in cmd:
            del cmd[cmd.index(flag):cmd.index(flag) + 2]
        cmd += [f"{flag}={value}"]  # (= lets argparse take a negative value)
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    line = one_line_error(out, knob)
    if "=" in knob:
        assert "must be" in line or "only applies" in line  # the allowed range or the rule
    assert sorted(p.name for p in runs.iterdir()) == before
    assert os.readlink(runs / "latest") == latest_before
    assert not any(p.name.endswith(".tmp") for p in runs.iterdir())


def test_max_seq_error_names_the_shortest_prompt(lab, trained):
    cmd = lab["command"]("--max-seq-length", "20")
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    line = one_line_error(out, "MAX_SEQ=20", "shortest prompt")
    shortest = int(re.search(r"\((\d+) tokens", line)[1])
    assert shortest > 20


def test_failed_and_stopped_runs_never_show_as_finished(tmp_path):
    runs = tmp_path / "runs"

    def run(stamp, status, lock=False):
        d = runs / stamp
        d.mkdir(parents=True)
        olelo.atomic_write_json(d / "manifest.json", {"stamp": stamp, "status": status, "iters": 4})
        if lock:
            (d / ".lock").write_text("pid 1\n")
        return d

    run("a-finished", "finished")
    run("b-failed", "failed")
    run("c-killed", "running", lock=True)   # killed -9: its lock file stayed, nobody holds it
    holder_dir = run("d-training", "running")
    holder = olelo.runs.RunLock(holder_dir)
    assert holder.acquire()
    try:
        table = records.rows(runs)
        md = records.markdown(table)
    finally:
        holder.release()
    status = {r["stamp"]: r["status"] for r in table}
    assert status == {"a-finished": "finished", "b-failed": "failed", "c-killed": "stopped", "d-training": "training"}
    assert [r["stamp"] for r in table][0] == "a-finished"
    done, other = md.split("Not finished")
    assert "a-finished" in done and not any(s in done for s in ("b-failed", "c-killed", "d-training"))
    assert all(s in other for s in ("b-failed", "c-killed", "d-training"))


def test_notes_leave_out_evaluations_of_runs_that_did_not_finish(tmp_path):
    runs = tmp_path / "runs"
    entry = {"bleu": 1.0, "chrf": 2.0, "ter": 99.0, "n": 3, "iteration": 4}
    for stamp, status in (("ok-run", "finished"), ("bad-run", "failed")):
        d = runs / stamp
        olelo.atomic_write_json(d / "manifest.json", {"stamp": stamp, "status": status})
        olelo.atomic_write_json(d / "eval" / "summary.json", {"run": stamp, "checkpoints": {
            "base": {**entry, "iteration": 0}, "final": entry}})
    table = "\n".join(results_tables.evaluation_rows(runs, stand_in=False))
    assert "ok-run" in table and "bad-run" not in table


# ================================================================ 4. one run per stamp at a time

def test_two_identical_trainings_started_at_once(lab, tmp_path, scratch_copy):
    data, _ = scratch_copy
    cmd = lab["command"](data_dir=data, iters=12)
    procs = [subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 2], outs
    loser = outs[[p.returncode for p in procs].index(2)]
    errors = [line for line in loser[1].splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "being trained right now" in errors[0] and "Traceback" not in loser[1]
    run_dir = latest(lab)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "finished" and len(manifest["segments"]) == 1
    iters = [json.loads(line)["iteration"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()
             if json.loads(line)["type"] == "train"]
    assert iters == [2, 4, 6, 8, 10, 12]  # one writer: no doubled reports


def test_every_rank_of_a_distributed_run_respects_the_lock(lab, trained):
    launch = Path(PY).with_name("mlx.launch")
    if not launch.is_file():
        pytest.skip("mlx.launch not installed")
    run_dir = trained["run_dir"]
    manifest = json.loads((run_dir / "manifest.json").read_text())
    stamp2 = run_dir.name.replace("-s0", "-np2-s0").replace("bs1", "bs2")
    holder = olelo.runs.RunLock(lab["root"] / "runs" / stamp2)
    assert holder.acquire()
    try:
        cmd = lab["command"]()
        cmd[cmd.index("--batch-size") + 1] = "2"
        out = subprocess.run([str(launch), "-n", "2", "--backend", "ring", *cmd], cwd=REPO,
                             capture_output=True, text=True, timeout=300)
    finally:
        holder.release()
    text = out.stdout + out.stderr
    assert text.count("being trained right now") == 2, text  # both ranks refuse, alike
    assert "starting" not in text and not (lab["root"] / "runs" / stamp2 / "manifest.json").exists()
    assert json.loads((run_dir / "manifest.json").read_text()) == manifest


# ================================================================ 5. fuse/upload publish what was named


def test_upload_without_a_run_uploads_what_was_fused_last(lab, trained, fused_final, tmp_path):
    out = script("upload.py", "--repo", "someone/x", "--dry-run", cwd=lab["root"], env=upload_env(tmp_path))
    assert out.returncode == 0, out.stderr
    assert f"from {fused_final.relative_to(lab['root'])} " in out.stdout
    assert "checkpoint `final`" in out.stdout


def test_upload_never_fuses_and_refuses_a_checkpoint_not_fused(lab, trained, fused_final, tmp_path):
    before = sorted(p.name for p in (lab["root"] / "fused").iterdir())
    out = script("upload.py", "--repo", "someone/x", "--dry-run", "--run", trained["run_dir"], "--ckpt", "best",
                 "--runs-dir", lab["root"] / "runs", cwd=lab["root"], env=upload_env(tmp_path))
    one_line_error(out, "not fused yet", "make fuse")
    assert sorted(p.name for p in (lab["root"] / "fused").iterdir()) == before


def test_upload_refuses_a_fused_folder_that_is_not_the_checkpoint_named(lab, trained, fused_final, tmp_path):
    # A folder named for `best` that holds the final checkpoint (renamed by hand).
    fake = lab["root"] / "fused" / f"{trained['stamp']}-best"
    shutil.copytree(fused_final, fake)
    try:
        out = script("upload.py", "--repo", "someone/x", "--dry-run", "--run", trained["run_dir"], "--ckpt", "best",
                     "--runs-dir", lab["root"] / "runs", cwd=lab["root"], env=upload_env(tmp_path))
        one_line_error(out, "checkpoint final", "not run")
    finally:
        shutil.rmtree(fake)


def test_fuse_touches_nothing_it_did_not_create(lab, trained, fused_final, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "latest").write_text("a file of mine\n")
    (mine / "keep").mkdir()
    (mine / "keep" / "notes.txt").write_text("mine\n")
    args = ["--run", trained["run_dir"], "--ckpt", "final", "--verify-prompts", "0"]
    out = script("fuse.py", *args, "--out", mine / "name", cwd=lab["root"])
    assert out.returncode == 0, out.stderr
    assert (mine / "latest").read_text() == "a file of mine\n" and "left" in out.stderr
    assert (mine / "name" / "olelo_fuse.json").is_file()
    out = script("fuse.py", *args, "--out", mine / "keep", cwd=lab["root"])
    one_line_error(out, "not a model made by fuse")
    assert [p.name for p in (mine / "keep").iterdir()] == ["notes.txt"]


