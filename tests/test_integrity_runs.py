"""The record never lies, round two (issue 33): the model given now against the one a run
recorded, damaged checkpoints, several runs started together in one checkout, evaluations
of unfinished runs (the smaller cases: test_integrity_small.py). Real MLX on the tiny model
where a run is needed; the lab fixtures are in conftest.py."""

import json
import multiprocessing
import os
import shutil
from pathlib import Path

import pytest

import olelo
from conftest import one_line_error, script


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
    assert [(s["iteration"], s["problem"].split(":")[0]) for s in manifest["segments"][-1]["set_aside"]] == [
        (6, str(newest["state"]))]
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

    from olelo import results_tables

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
    assert f"| {run.name} | eval |" in results_tables.build(runs)

    # Resumed and ended again (a run evaluated while unfinished): the summary is not its result.
    moved = {**manifest, "ended": "2026-12-02T09:00:00+00:00", "segments": [{"offset": 0}, {"offset": 4}]}
    olelo.atomic_write_json(run / "manifest.json", moved)
    reason = records.stale_reason(run, moved, summary)
    assert "1 segment(s)" in reason and "2 segment(s)" in reason
    assert f"| {run.name} | eval |" not in results_tables.build(runs)
    from olelo import report_page

    assert "2 segment(s)" in report_page.stale_note(run, summary) and "make eval RUN=" in report_page.stale_note(run, summary)
    # A summary from before the record: its final row must hold the run's final iteration.
    old = {k: v for k, v in summary.items() if k != "run_record"}
    assert records.stale_reason(run, moved, old) is None
    old["checkpoints"]["final"]["iteration"] = 6  # scored at the newest report of a run still training
    assert "final row is iteration 6" in records.stale_reason(run, moved, old)
    early = {**moved, "status": "stopped-early"}
    assert records.final_iteration(early, records.read_metrics(run)) == 8
    assert records.final_iteration({**moved, "status": "running"}, []) is None
