"""The lab record never lies (issue 11), tried as an adversary would: stale runs, leaked
tests, bogus runs, races, wrong models published, unsafe make variables, well-formed but
wrong data, tracebacks, and p-values beside identical scores. Each section is one class
of the issue; real MLX on the tiny model, real make."""

import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import build_tiny_model
from olelo import checks
import notes_tables
import olelo
from olelo import identity
from olelo import records
from olelo import scores
from conftest import TINY_PAIRS

REPO = Path(__file__).resolve().parents[1]
PY = sys.executable
SCRIPTS = REPO / "scripts"


def script(name, *args, cwd=REPO, check=False, env=None):
    out = subprocess.run([PY, str(SCRIPTS / name), *map(str, args)], cwd=cwd, capture_output=True,
                         text=True, env=env)
    if check:
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out


def one_line_error(out, *needles):
    """Exit status 2, exactly one `error:` line holding every needle, no traceback."""
    assert out.returncode == 2, out.stdout[-2000:] + out.stderr[-2000:]
    assert "Traceback" not in out.stderr + out.stdout
    errors = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, out.stderr
    for needle in needles:
        assert needle in errors[0], (needle, errors[0])
    return errors[0]


def write_csv(path: Path, rows, header=("L1 Hawaiian_Text", "Reference_Translation")):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


# ---------------------------------------------------------------- a small lab in tmp

@pytest.fixture(scope="module")
def lab(tmp_path_factory, tiny_model):
    """A model folder of its own (so tests may rebuild it), a split made by split.py (with
    its manifest) and a function that trains on them with train.py."""
    root = tmp_path_factory.mktemp("integrity")
    model = root / "models" / "tiny"
    shutil.copytree(tiny_model, model)
    pairs = [olelo.chat_record(h, e, "haw-en", f"p{i}") for i, (h, e) in enumerate(TINY_PAIRS)]
    olelo.atomic_write_jsonl(root / "pairs.jsonl", [{**r, "pair_id": r["id"]} for r in pairs])
    script("split.py", "--out", root / "ft", "--test-fraction", "0.25", "--valid-fraction", "0.2",
           f"tiny={root / 'pairs.jsonl'}", check=True)
    data = root / "ft" / "tiny"

    def command(*extra, iters=4, lab_opts=(), data_dir=None, model_dir=None):
        return [PY, str(SCRIPTS / "train.py"), "--runs-dir", str(root / "runs"), "--adapters-dir",
                str(root / "adapters"), *lab_opts, "--", "mlx_lm.lora", "--model", str(model_dir or model),
                "--train", "--data", str(data_dir or data), "--iters", str(iters), "--batch-size", "1",
                "--num-layers", "2", "--steps-per-report", "2", "--steps-per-eval", "2", "--save-every", "2",
                *map(str, extra)]

    def train(*extra, check=True, **kw):
        out = subprocess.run(command(*extra, **kw), cwd=REPO, capture_output=True, text=True)
        if check:
            assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
        return out

    return {"root": root, "model": model, "data": data, "command": command, "train": train}


def latest(lab) -> Path:
    return (lab["root"] / "runs" / "latest").resolve()


@pytest.fixture(scope="module")
def trained(lab):
    """One finished run (4 iterations) and its folders."""
    lab["train"]()
    run_dir = latest(lab)
    return {"run_dir": run_dir, "stamp": run_dir.name, "adapters": lab["root"] / "adapters" / run_dir.name}


@pytest.fixture
def scratch_copy(lab, tmp_path):
    """A copy of the split folder and of the model, free to damage."""
    data = tmp_path / "ft" / "tiny"
    shutil.copytree(lab["data"], data)
    model = tmp_path / "model"
    shutil.copytree(lab["model"], model)
    return data, model


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
    build_tiny_model.main(["--text", str(tiny_text), "--out", str(model), "--vocab-size", "300", "--seed", "7"])
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


def test_make_data_seed_is_part_of_the_splits_identity(run_make, tmp_path):
    base = ["data", f"SPLITS={tmp_path}/ft", f"INTERIM={tmp_path}/interim",
            "RAW_FORNANDER=data/sample/sample_pairs.csv", "RAW_KOA=data/sample/sample_small_pairs.csv"]
    manifest = tmp_path / "ft" / "large" / "manifest.json"
    run_make(*base)
    assert json.loads(manifest.read_text())["seed"] == 0
    again = run_make(*base)
    assert "split.py" not in again.stdout  # nothing changed: nothing done
    run_make(*base, "SEED=1")
    assert json.loads(manifest.read_text())["seed"] == 1
    assert "split.py" not in run_make(*base, "SEED=1").stdout
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
    assert out.stdout.count("translate.py") == 2


# ================================================================ 2. atomic multi-file outputs

def test_a_split_that_dies_midway_leaves_the_old_folder_whole(lab, tmp_path, monkeypatch):
    import split

    out = tmp_path / "ft"
    shutil.copytree(lab["data"], out / "tiny")
    before = {p.name: p.read_bytes() for p in (out / "tiny").iterdir()}
    real_write, calls = olelo.atomic_write_bytes, []

    def dying_write(path, data):
        calls.append(path)
        if len(calls) == 2:  # train.jsonl written, valid.jsonl not: the moment of a kill
            raise KeyboardInterrupt
        real_write(path, data)

    monkeypatch.setattr(olelo, "atomic_write_bytes", dying_write)
    with pytest.raises(KeyboardInterrupt):
        split.main(["--out", str(out), "--seed", "5", "--test-fraction", "0.25", "--valid-fraction", "0.2",
                    f"tiny={lab['root'] / 'pairs.jsonl'}"])
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
    table = "\n".join(notes_tables.evaluation_rows(runs, stand_in=False))
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

@pytest.fixture(scope="module")
def fused_final(lab, trained):
    root = lab["root"]
    script("fuse.py", "--run", trained["run_dir"], "--ckpt", "final", "--runs-dir", root / "runs",
           "--verify-prompts", "1", "--max-tokens", "2", cwd=root, check=True)
    return root / "fused" / f"{trained['stamp']}-final"


def upload_env(tmp_path):
    return {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}


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


# ================================================================ 6. make variables reach the shell safely

@pytest.mark.parametrize("run", ["a;touch {pwn}", "a b", "x:y", "$(shell touch {pwn})", "a'b", "a|b", "`touch {pwn}`"])
def test_a_run_name_with_shell_characters_is_one_clear_error(run_make, tmp_path, run):
    pwn = tmp_path / "pwned"
    out = run_make("eval", f"RUN={run.format(pwn=pwn)}", check=False)
    assert out.returncode != 0 and not pwn.exists()
    assert "RUN=" in out.stderr and "no spaces, quotes or shell characters" in out.stderr
    assert "target pattern" not in out.stderr and "No rule" not in out.stderr


@pytest.mark.parametrize("repo", ["x'; touch {pwn}; '", 'x"; touch {pwn}; "', "a/b' --dry-run '", "a/b$(touch {pwn})"])
def test_hf_repo_with_a_quote_never_runs_commands_nor_uploads(run_make, fused_final, tmp_path, repo):
    pwn = tmp_path / "pwned"
    out = run_make("upload", f"HF_REPO={repo.format(pwn=pwn)}", "DRY_RUN=1", f"FUSED={fused_final}", check=False)
    assert not pwn.exists()
    assert out.returncode != 0 and "is not a Hugging Face repo id" in out.stderr
    assert "uploaded" not in out.stdout


def test_make_quotes_paths_with_spaces_and_unicode(run_make, tmp_path):
    out = run_make("-n", "train-large", "MODEL=/tmp/my models/ʻōlelo 'x'", "HOSTFILE=", check=True)
    line = next(l for l in out.stdout.splitlines() if "mlx_lm.lora" in l)
    import shlex

    words = shlex.split(line)
    assert words[words.index("--model") + 1] == "/tmp/my models/ʻōlelo 'x'"


def test_data_src_with_a_space_works_end_to_end(run_make, shared_data, tmp_path):
    src = tmp_path / "my data ʻōlelo"
    for name in ("fornander/fornander_pairs.csv", "koa/koa_pairs.csv"):
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(shared_data / name, src / name)
    raw = tmp_path / "raw"
    run_make("data", f"DATA_SRC={src}", f"RAW_FORNANDER={raw}/fornander/fornander_pairs.csv",
             f"RAW_KOA={raw}/koa/koa_pairs.csv", f"INTERIM={tmp_path}/interim", f"SPLITS={tmp_path}/ft")
    assert json.loads((tmp_path / "ft" / "large" / "manifest.json").read_text())["counts"]["test"]["records"] > 0


@pytest.mark.parametrize("var,value", [("RUNS_DIR", "my runs"), ("DATA", "x;y"), ("SEED", "1;id"), ("DIRECTION", "haw;en"),
                                       ("EVAL_CKPTS", "final 4;id"), ("BOOTSTRAP", "-1")])
def test_other_variables_make_uses_in_names_are_checked(run_make, var, value):
    out = run_make("-n", "eval", f"{var}={value}", check=False)
    assert out.returncode != 0 and f"{var}=" in out.stderr and "Traceback" not in out.stderr


# ================================================================ 7. data sanity beyond syntax

def mojibake(text: str) -> str:
    return text.encode("utf-8").decode("cp1252", errors="replace")


@pytest.mark.parametrize("bad,needle", [
    (mojibake("Ua hele ke aliʻi i ka moku."), "mojibake"),
    ("Ua hele ke ali\ufffdi i ka moku.", "U+FFFD"),
    ("Ua hele ke ali?i i ka moku.", "'?' in place of an ʻokina"),
    ("Noho ana ka makuak?ne ma ka hale.", "'?' in place"),
])
def test_convert_refuses_damaged_text_with_its_line(tmp_path, bad, needle):
    rows = list(TINY_PAIRS)
    rows[3] = (bad, rows[3][1])
    src = write_csv(tmp_path / "in.csv", rows)
    out = script("convert_fornander.py", src, "-o", tmp_path / "out.jsonl")
    one_line_error(out, f"{src}:5", needle)
    assert not (tmp_path / "out.jsonl").exists()


def test_convert_refuses_mojibake_in_the_english_column_too(tmp_path):
    rows = list(TINY_PAIRS)
    rows[0] = (rows[0][0], "The chiefâ€™s house.")
    out = script("convert_fornander.py", write_csv(tmp_path / "in.csv", rows), "-o", tmp_path / "o.jsonl")
    one_line_error(out, ":2", "English: mojibake")


def test_convert_refuses_swapped_language_columns(tmp_path):
    rows = [(en, haw) for haw, en in TINY_PAIRS]
    out = script("convert_fornander.py", write_csv(tmp_path / "in.csv", rows), "-o", tmp_path / "o.jsonl")
    one_line_error(out, "does not read as Hawaiian", "swapped")


def test_convert_flags_an_english_cell_in_the_hawaiian_column(tmp_path):
    rows = list(TINY_PAIRS)
    rows[5] = ("All the people wept bitterly that night.", rows[5][1])
    out = script("convert_fornander.py", write_csv(tmp_path / "in.csv", rows), "-o", tmp_path / "o.jsonl",
                 "--report", tmp_path / "r.json", check=True)
    assert "read as another language" in out.stderr and "line(s) 7" in out.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert [d["where"].rsplit(":", 1)[1] for d in report["not_hawaiian"]] == ["7"]
    assert report["counts"]["flagged_not_hawaiian"] == 1


def test_real_and_sample_data_pass_the_text_checks(shared_data):
    for path in (shared_data / "fornander" / "fornander_pairs.csv", shared_data / "koa" / "koa_pairs.csv",
                 REPO / "data" / "sample" / "sample_pairs.csv"):
        rows = list(csv.DictReader(open(path, encoding="utf-8-sig")))
        pairs = [(str(i), r["L1 Hawaiian_Text"], r["Reference_Translation"]) for i, r in enumerate(rows)]
        damaged, odd = checks.check_pairs(pairs, str(path))
        assert damaged == [] and odd == [], path


@pytest.mark.parametrize("flag", ["-o", "--report"])
def test_convert_refuses_to_write_over_its_input(tmp_path, flag):
    src = write_csv(tmp_path / "in.csv", TINY_PAIRS)
    before = src.read_bytes()
    args = [src, "-o", tmp_path / "o.jsonl", "--report", tmp_path / "r.json"]
    args[args.index(flag) + 1] = tmp_path / "." / "in.csv"  # the same file by another spelling
    one_line_error(script("convert_fornander.py", *args), "is the input")
    assert src.read_bytes() == before


def test_split_refuses_damaged_records_and_an_input_it_would_replace(lab, tmp_path):
    records = olelo.read_jsonl(lab["root"] / "pairs.jsonl")
    records[2]["messages"][1]["content"] = mojibake("Maikaʻi nō au, mahalo.")
    olelo.atomic_write_jsonl(tmp_path / "bad.jsonl", records)
    out = script("split.py", "--out", tmp_path / "ft", f"x={tmp_path / 'bad.jsonl'}")
    one_line_error(out, "record 3", "mojibake")
    inside = tmp_path / "ft" / "x" / "in.jsonl"
    olelo.atomic_write_jsonl(inside, olelo.read_jsonl(lab["root"] / "pairs.jsonl"))
    out = script("split.py", "--out", tmp_path / "ft", f"x={inside}")
    one_line_error(out, "inside", "which this split replaces")
    assert inside.is_file()


# ================================================================ 8. no traceback for an expected failure

@pytest.fixture
def small_disk(tmp_path):
    """A 64 KiB file system (tmpfs), or skip where mounting is not allowed."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)], capture_output=True).returncode:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    yield mnt
    subprocess.run(["umount", str(mnt)], capture_output=True)


def test_full_disk_is_one_line(small_disk, tmp_path):
    src = write_csv(tmp_path / "in.csv", [(f"{h} {i}", f"{e} {i}") for i in range(200) for h, e in TINY_PAIRS])
    (small_disk / "filler").write_bytes(b"\0" * 60_000)
    out = script("convert_fornander.py", src, "-o", small_disk / "out.jsonl")
    one_line_error(out, "disk is full")
    assert not (small_disk / "out.jsonl").exists()


def test_disk_full_during_training_is_one_line_and_recorded(lab, small_disk):
    cmd = lab["command"]("--save-every", "1", iters=40)
    cmd[cmd.index("--adapters-dir") + 1] = str(small_disk / "adapters")
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    one_line_error(out, "disk is full", "run the same command again")
    manifest = json.loads((latest(lab) / "manifest.json").read_text())
    assert manifest["status"] == "failed" and "write" in manifest["error"]
    assert records.status_of(latest(lab), manifest) == "failed"


def test_read_only_disk_is_one_line(small_disk, tmp_path):
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    src = write_csv(tmp_path / "in.csv", TINY_PAIRS)
    one_line_error(script("convert_fornander.py", src, "-o", small_disk / "out.jsonl"), "read-only")


def test_output_path_that_is_a_folder(tmp_path):
    src = write_csv(tmp_path / "in.csv", TINY_PAIRS)
    (tmp_path / "out").mkdir()
    one_line_error(script("convert_fornander.py", src, "-o", tmp_path / "out"), "is a folder")


@pytest.mark.parametrize("encoding,needle", [("utf-16", "UTF-16 LE"), ("utf-16-be", "UTF-16 BE"),
                                             ("cp1252", "not UTF-8")])
def test_wrong_encodings_are_named(tmp_path, encoding, needle):
    text = "L1 Hawaiian_Text,Reference_Translation\n" + "".join(f"{h},{e}\n" for h, e in TINY_PAIRS[:3] if "," not in h + e)
    text = text.replace("ʻ", "'") if encoding == "cp1252" else text
    (tmp_path / "in.csv").write_bytes(("Aloha kakou é\n" if encoding == "cp1252" else "").encode(encoding) +
                                      text.encode(encoding, errors="replace"))
    out = script("convert_fornander.py", tmp_path / "in.csv", "-o", tmp_path / "o.jsonl")
    line = one_line_error(out, needle)
    assert "binary" not in line
    (tmp_path / "in.jsonl").write_bytes(json.dumps({"a": "kākou é"}, ensure_ascii=False).encode(encoding, errors="replace") + b"\n")
    line = one_line_error(script("split.py", "--out", tmp_path / "ft", f"x={tmp_path / 'in.jsonl'}"), needle)


def test_a_model_folder_without_config_json(lab, tmp_path, scratch_copy):
    _, model = scratch_copy
    (model / "config.json").unlink()
    runs = lab["root"] / "runs"
    before = sorted(p.name for p in runs.iterdir())
    out = lab["train"](model_dir=model, check=False)
    one_line_error(out, "no config.json")
    assert sorted(p.name for p in runs.iterdir()) == before


def test_a_corrupt_manifest_is_skipped_by_listings_and_named_by_the_rest(lab, trained, tmp_path):
    runs = tmp_path / "runs"
    shutil.copytree(trained["run_dir"], runs / trained["stamp"])
    bad = runs / "broken-run"
    bad.mkdir()
    (bad / "manifest.json").write_text('{"stamp": "broken-run", "status": "fini')
    proc = subprocess.run([PY, str(SCRIPTS / "runs_table.py"), "--runs-dir", str(runs)], capture_output=True, text=True)
    assert proc.returncode == 0 and trained["stamp"] in proc.stdout and "broken-run" not in proc.stdout
    assert "warning: skipped" in proc.stderr and "Traceback" not in proc.stderr
    import report

    assert [r["manifest"]["stamp"] for r in report.collect_runs(runs)] == [trained["stamp"]]
    one_line_error(script("translate.py", "--run", bad, "-o", tmp_path / "h.jsonl"), "damaged run record")
    one_line_error(script("fuse.py", "--run", bad), "damaged run record")


def test_a_corrupt_manifest_of_the_same_stamp_says_force(lab, trained):
    path = trained["run_dir"] / "manifest.json"
    good = path.read_bytes()
    path.write_text("{not json")
    try:
        one_line_error(lab["train"](check=False), "FORCE=1")
    finally:
        path.write_bytes(good)


def test_run_paths_are_not_doubled(tmp_path):
    with pytest.raises(olelo.UserError) as e:
        olelo.resolve_run("runs/x", tmp_path / "runs")
    assert "runs/runs" not in str(e.value) and "runs/x/manifest.json" in str(e.value)


def test_missing_checkpoint_and_deleted_adapters_are_one_line(run_make, lab, trained, tmp_path):
    common = [f"RUNS_DIR={lab['root'] / 'runs'}", f"ADAPTERS_DIR={lab['root'] / 'adapters'}", f"RUN={trained['stamp']}",
              "LIMIT=2", "MAX_TOKENS=4"]
    out = run_make("eval", *common, "EVAL_CKPTS=7", check=False)
    assert out.returncode != 0 and "No rule to make target" not in out.stderr
    assert "no checkpoint at iteration 0000007" in out.stderr
    moved = tmp_path / "adapters-away"
    shutil.move(trained["adapters"], moved)
    try:
        out = run_make("eval", *common, "EVAL_CKPTS=final", check=False)
        assert out.returncode != 0 and "No rule to make target" not in out.stderr
        assert "adapters were deleted" in out.stderr
        one_line_error(script("fuse.py", "--run", trained["run_dir"], "--ckpt", "final", cwd=tmp_path), "not found")
    finally:
        shutil.move(moved, trained["adapters"])


def test_unknown_data_is_one_line(run_make):
    out = run_make("train-small", "DATA=no-such-set", check=False)
    assert out.returncode != 0 and "No rule" not in out.stderr
    assert "DATA=no-such-set: no dataset" in out.stderr


# ================================================================ 10. score tables

REFS = ["The chief went to the ship.", "All the people wept.", "They will sail to Tahiti.", "I am fine, thank you."]


def test_identical_scores_show_no_p_value_anywhere(tmp_path):
    # A run whose fine-tuned checkpoint translates exactly as the base does (as a tiny
    # model after a few steps can): the report must not print p-values beside equal scores.
    hyps = ["The chief went to ship.", "The people wept.", "They sail to Tahiti.", "I am fine."]
    test = [olelo.chat_record(f"haw {i}", ref, "haw-en", f"p{i}") for i, ref in enumerate(REFS)]
    olelo.atomic_write_jsonl(tmp_path / "data" / "test.jsonl", test)
    run = tmp_path / "runs" / "r"
    olelo.atomic_write_json(run / "manifest.json", {
        "stamp": "r", "status": "finished", "model": "m", "iters": 4, "data_dir": str(tmp_path / "data"),
        "adapter_dir": str(tmp_path / "adapters" / "r"),
        "data": {"test_sha256": olelo.sha256_file(tmp_path / "data" / "test.jsonl")}})
    (run / "metrics.jsonl").write_text('{"type": "val", "iteration": 4, "val_loss": 1.0}\n')
    for ckpt in ("base", "final"):
        olelo.atomic_write_jsonl(run / "eval" / ckpt / "hyps.jsonl", [
            {"id": t["id"], "source": f"haw {i}", "reference": REFS[i], "hypothesis": h, "tokens": 3, "time": 0.1}
            for i, (t, h) in enumerate(zip(test, hyps))])
    script("eval_report.py", "--run", run, "--eval-dir", run / "eval", "--bootstrap", "50", check=True)
    md = (run / "eval" / "summary.md").read_text()
    row = next(line for line in md.splitlines() if line.startswith("| **final**") or line.startswith("| final"))
    verdict = next(line for line in md.splitlines() if line.startswith("- final vs base:"))
    assert "p=" not in row and "p=" not in verdict and "no significant difference" not in verdict
    assert "identical BLEU scores" in verdict and "identical chrF++ scores" in verdict
    # (against copy-source the scores differ, and there a p-value belongs)
    assert "p=" in next(line for line in md.splitlines() if line.startswith("- final vs copy-source:"))
    final = json.loads((run / "eval" / "summary.json").read_text())["checkpoints"]["final"]
    assert all(m["p_value"] is None for m in final["vs_base"]["metrics"].values())


def test_verdict_words_match_the_numbers():
    systems = [["The chief went to the ship.", "All the people wept.", "They sail to Tahiti.", "I am fine."],
               ["A dog.", "A cat.", "A bird.", "A fish."], REFS]
    base = ["The chief went to ship.", "The people wept.", "They sail to Tahiti.", "I am fine, thanks."]
    for hyps in systems:
        cmp = scores.compare(base, hyps, REFS, n_samples=200, seed=5)
        for verdict, m in zip(cmp["verdicts"], cmp["metrics"].values()):
            p = m["p_value"]
            if verdict.startswith("no significant difference"):
                assert p is not None and p >= 0.05 and m["delta"] != 0
            elif " beats " in verdict:
                assert p < 0.05 and m["delta"] != 0
            else:
                assert verdict.startswith("identical") and m["delta"] == 0 and p is None


def test_notes_table_has_no_p_beside_equal_scores(tmp_path):
    runs = tmp_path / "runs"
    vs = {"chrf": {"delta": 0.0, "p_value": 0.001, "significant": False,
                   "base": {"score": 12.0, "ci": 1.0}, "system": {"score": 12.0, "ci": 1.0}}}
    entry = {"bleu": 1.0, "chrf": 12.0, "ter": 90.0, "n": 3, "iteration": 4}
    olelo.atomic_write_json(runs / "r" / "manifest.json", {"stamp": "r", "status": "finished"})
    olelo.atomic_write_json(runs / "r" / "eval" / "summary.json", {"run": "r", "checkpoints": {
        "base": {**entry, "iteration": 0}, "final": {**entry, "vs_base": {"metrics": vs}}}})
    table = "\n".join(notes_tables.evaluation_rows(runs, stand_in=False))
    assert "+0.00" in table and "p=" not in table
