"""A run's records: the metrics it writes while training (the Recorder: every report,
best/ by the validation criterion, early stopping), how they are read back, and the
runs table made from every run's manifest and metrics (scripts/runs_table.py,
make runs, make notes, make report)."""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import olelo
from olelo.runs import REPO, now

DONE = ("finished", "stopped-early")
COLUMNS = ["stamp", "status", "iters", "min_val_loss", "min_val_at", "best", "tok_per_s", "peak_mem_gb", "commit"]


def status_of(run_dir: Path, manifest: dict) -> str:
    """The recorded status, except that a 'running' run nobody holds the lock of stopped."""
    status = manifest.get("status", "?")
    if status == "running":
        lock = run_dir / ".lock"
        if not lock.is_file():
            return "stopped"
        probe = olelo.runs.RunLock(run_dir)
        if probe.acquire():
            probe.release()
            return "stopped"
        return "training"
    return status


def require_finished(run_dir: Path, manifest: dict, action: str) -> None:
    """An evaluation or a fused model is of a finished run that nobody is training: the
    weights of a run in progress (or stopped) are not its result, and would be replaced."""
    status, stamp = status_of(run_dir, manifest), manifest.get("stamp", Path(run_dir).name)
    if status == "training":
        raise olelo.UserError(f"run {stamp} is being trained right now (its lock {Path(run_dir) / '.lock'} is "
                              f"held): {action} it once it has finished")
    if status not in DONE:
        raise olelo.UserError(f"run {stamp} has not finished (status {status}): its checkpoints are not its "
                              f"result. Finish it first (run the same make train-... command again: it resumes), "
                              f"then {action} it")


def run_record(manifest: dict) -> dict:
    """What an evaluation records of its run: a run that moves on (resumed, ended again)
    no longer matches it, and the evaluation is stale."""
    return {"status": manifest.get("status"), "ended": manifest.get("ended"),
            "segments": len(manifest.get("segments") or [])}


def final_iteration(manifest: dict, metrics: list[dict]) -> int | None:
    """The iteration of a run's final weights: `iters` when it finished, its last validation
    when it stopped early; None while it has not finished (its final weights are not final)."""
    if manifest.get("status") == "finished":
        return manifest.get("iters")
    if manifest.get("status") == "stopped-early":
        vals = [m["iteration"] for m in metrics if m.get("type") == "val"]
        return vals[-1] if vals else None
    return None


def stale_reason(run_dir: Path, manifest: dict, summary: dict) -> str | None:
    """Why an evaluation summary no longer describes its run, or None: the run moved on since
    it was scored (recorded in the summary), or, for a summary from before that record, its
    final row holds another iteration than the run's final weights now."""
    then = summary.get("run_record")
    if then is not None:
        now = run_record(manifest)
        if then != now:
            return (f"scored when run {manifest.get('stamp')} was {then.get('status')} (ended {then.get('ended')}, "
                    f"{then.get('segments')} segment(s)); it is {now['status']} now (ended {now['ended']}, "
                    f"{now['segments']} segment(s))")
        return None
    final = (summary.get("checkpoints") or {}).get("final")
    if isinstance(final, dict) and final.get("iteration") is not None:
        want = final_iteration(manifest, read_metrics(run_dir))
        if want is not None and final["iteration"] != want:
            return (f"its final row is iteration {final['iteration']}, the run's final weights are iteration "
                    f"{want}: it was scored before the run ended")
    return None


def read_metrics(run_dir: Path) -> list[dict]:
    """A run's metrics.jsonl (train and validation reports), [] when there is none yet."""
    rows = []
    path = Path(run_dir) / "metrics.jsonl"
    if path.is_file():
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                pass  # a line cut short by a kill: that report is redone on resume
    return rows


def run_row(run_dir: Path) -> dict:
    manifest = olelo.run_manifest(run_dir)
    metrics = read_metrics(run_dir)
    train = [m for m in metrics if m["type"] == "train"]
    vals = [m for m in metrics if m["type"] == "val"]
    lowest = min(vals, key=lambda m: m["val_loss"], default=None)
    best = manifest.get("best") or {}
    commit = commit_label(manifest.get("git") or {})
    return {
        "stamp": manifest["stamp"],
        "status": status_of(run_dir, manifest),
        "iters": f"{max((m['iteration'] for m in train), default=0)}/{manifest.get('iters', '?')}",
        "min_val_loss": f"{lowest['val_loss']:.4f}" if lowest else "",
        "min_val_at": lowest["iteration"] if lowest else "",
        "best": f"it {best['iteration']} ({best.get('criterion', 'val_loss')})" if "iteration" in best else "",
        "tok_per_s": f"{statistics.median(m['tokens_per_second'] for m in train):.0f}" if train else "",
        "peak_mem_gb": f"{max(m['peak_memory'] for m in train):.3f}" if train else "",
        "commit": commit,
        "model": manifest.get("model", ""),
    }


def commit_exists(commit: str, repo: Path = REPO) -> bool:
    r = subprocess.run(["git", "cat-file", "-e", f"{commit}^{{commit}}"], cwd=repo, capture_output=True)
    return r.returncode == 0


def commit_label(git: dict, repo: Path = REPO) -> str:
    """What a run record says about the code it ran, in words a table can hold."""
    commit = git.get("commit")
    recorded = commit or git.get("recorded_commit")
    if not commit:
        label = f"unknown (recorded {recorded[:8]}, not in this repository)" if recorded else "unknown (not recorded)"
    elif not commit_exists(commit, repo):
        label = f"unknown (recorded {commit[:8]}, not in this repository)"
    else:
        label = commit[:8]
    if git.get("dirty"):
        label += " + uncommitted changes"
    return label


def is_stand_in(model: str) -> bool:
    """A random-weight model of this repo (scripts/build_tiny_model.py): its numbers
    are about the pipeline, never about translation."""
    return Path(str(model).rstrip("/")).name.startswith("tiny-")


def rows(runs_dir: Path) -> list[dict]:
    """Every run's row, finished ones first; a damaged record is skipped with a warning."""
    found = sorted(p.parent for p in runs_dir.glob("*/manifest.json")
                   if not p.parent.is_symlink() and not p.parent.name.startswith("."))
    table = []
    for d in found:
        try:
            table.append(run_row(d))
        except (olelo.UserError, KeyError, TypeError, ValueError, AttributeError) as e:
            print(f"warning: skipped {d}: {e}", file=sys.stderr)
    return sorted(table, key=lambda r: r["status"] not in DONE)


def markdown(table: list[dict]) -> str:
    """Finished runs in one table, the others (failed, stopped, training) in a second."""
    def block(rows):
        lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
        return lines + ["| " + " | ".join(str(r[c]) for c in COLUMNS) + " |" for r in rows]

    done = [r for r in table if r["status"] in DONE]
    other = [r for r in table if r["status"] not in DONE]
    lines = block(done)
    if other:
        lines += ["", "Not finished (failed, stopped or still training; not results):", "", *block(other)]
    return "\n".join(lines) + "\n"




# ---------------------------------------------------------------- written while training

class EarlyStop(Exception):
    pass


def is_better(record: dict, best: dict | None, select: str) -> bool:
    """Whether a validation record is a new best by `select` (val_chrf: higher, val_loss: lower)."""
    if best is None:
        return True
    if select == "val_chrf":
        return record["val_chrf"] > best["val_chrf"]
    return record["val_loss"] < best["val_loss"]


def replay_early_stop(vals: list[dict], select: str, patience: int) -> dict:
    """Where Recorder's early stopping would stop on these validation records: the validation
    it stops at (None: never) and the best one by then (bench/campaigns/early_stop_replay.py)."""
    best, since = None, 0
    for v in vals:
        if is_better(v, best, select):
            best, since = v, 0
        else:
            since += 1
            if since >= patience:
                return {"stop": v["iteration"], "best": best["iteration"], "best_value": best[select]}
    return {"stop": None, "best": best["iteration"], "best_value": best[select]}


class Recorder:
    """The trainer's callback: metrics.jsonl, best checkpoint by `select`, early stopping.

    Its state (rows written, best so far) is saved in each checkpoint; on resume,
    metrics.jsonl is cut back to the rows it had then, and what follows is redone."""

    def __init__(self, model, run_dir: Path, adapter_dir: Path, patience: int, select: str, writer: bool,
                 restored: dict | None = None):
        self.model, self.run_dir, self.adapter_dir = model, run_dir, adapter_dir
        self.patience, self.select, self.writer = patience, select, writer
        self.metrics = run_dir / "metrics.jsonl"
        restored = restored or {"metrics_rows": 0, "best": None, "since_best": 0}
        kept = read_metrics(run_dir)[: restored["metrics_rows"]]
        if writer:
            olelo.atomic_write_jsonl(self.metrics, kept)
        self.rows, self.best, self.since_best = len(kept), restored["best"], restored["since_best"]

    def checkpoint_state(self) -> dict:
        return {"metrics_rows": self.rows, "best": self.best, "since_best": self.since_best}

    def _append(self, record):
        self.rows += 1
        if not self.writer:  # distributed: every rank decides alike, rank 0 writes
            return
        with open(self.metrics, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")

    def on_train_loss_report(self, info):
        record = {"type": "train", **{k: float(v) if k != "iteration" else int(v) for k, v in info.items()}}
        record["trained_tokens"] = int(record["trained_tokens"])
        record["time"] = now()
        self._append(record)

    def better(self, record) -> bool:
        return is_better(record, self.best, self.select)

    def on_val_loss_report(self, info):
        record = {"type": "val", "iteration": int(info["iteration"]), "val_loss": float(info["val_loss"]),
                  "val_time": float(info["val_time"]),
                  **{k: info[k] for k in ("val_chrf", "val_gen_n", "val_gen_tokens", "val_gen_time", "val_gen_stopped") if k in info}, "time": now()}
        self._append(record)
        if self.better(record):
            self.best, self.since_best = record, 0
            if self.writer:
                self.save_best()
        else:
            self.since_best += 1
            if self.patience and self.since_best >= self.patience:
                raise EarlyStop(record["iteration"])

    def save_best(self):
        import mlx.core as mx
        from mlx.utils import tree_flatten

        best_dir = self.adapter_dir / "best"
        tmp = self.adapter_dir / ".best.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        mx.save_safetensors(str(tmp / "adapters.safetensors"), dict(tree_flatten(self.model.trainable_parameters())))
        shutil.copy(self.adapter_dir / "adapter_config.json", tmp / "adapter_config.json")
        olelo.atomic_write_json(tmp / "best.json", {"iteration": self.best["iteration"], "criterion": self.select,
                                                    **{k: self.best[k] for k in ("val_loss", "val_chrf")
                                                       if k in self.best}})
        shutil.rmtree(best_dir, ignore_errors=True)
        os.replace(tmp, best_dir)
