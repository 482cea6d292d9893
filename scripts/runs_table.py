"""Summarize every run folder as one table row, from its manifest and metrics.

    python scripts/runs_table.py [--runs-dir runs] [--format csv|markdown]

Columns: stamp, status, iterations done / planned, the lowest val loss and the
iteration it came at, the checkpoint kept as best/ (its iteration and the validation
criterion that chose it: not always the lowest val loss), median train tok/s over the
run's reports, peak memory (GB), git commit. CSV goes well with csvkit (`make runs` pipes it to csvlook); the
markdown form is what `make notes` puts into RESULTS.md.

Finished runs (finished, stopped-early) come first; the others follow with what they
are: failed, stopped (killed or interrupted: the same command resumes it) or training
(its lock is held now). A run folder whose manifest.json is damaged is skipped with a
warning on stderr, never breaking the table.

The commit column never claims more than the record shows: a commit that is not in
this repository, or none recorded, reads "unknown (...)"; a run trained from a tree
with uncommitted changes reads "<commit> + uncommitted changes".
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import subprocess
import sys
from pathlib import Path

import olelo
from olelo import identity

DONE = ("finished", "stopped-early")
REPO = Path(__file__).resolve().parents[1]
COLUMNS = ["stamp", "status", "iters", "min_val_loss", "min_val_at", "best", "tok_per_s", "peak_mem_gb", "commit"]


def status_of(run_dir: Path, manifest: dict) -> str:
    """The recorded status, except that a 'running' run nobody holds the lock of stopped."""
    status = manifest.get("status", "?")
    if status == "running":
        lock = run_dir / ".lock"
        if not lock.is_file():
            return "stopped"
        probe = identity.RunLock(run_dir)
        if probe.acquire():
            probe.release()
            return "stopped"
        return "training"
    return status


def read_metrics(run_dir: Path) -> list[dict]:
    rows = []
    path = run_dir / "metrics.jsonl"
    if path.is_file():
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                pass  # a line cut short by a kill
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


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs-dir", default="runs")
    p.add_argument("--format", choices=["csv", "markdown"], default="csv")
    a = p.parse_args()
    table = rows(Path(a.runs_dir))
    if a.format == "markdown":
        sys.stdout.write(markdown(table))
    else:
        w = csv.DictWriter(sys.stdout, fieldnames=COLUMNS, extrasaction="ignore")
        w.writeheader()
        w.writerows(table)
    return 0


if __name__ == "__main__":
    olelo.run_main(main)
