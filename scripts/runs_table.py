"""Summarize every run folder as one table row, from its manifest and metrics.

    python scripts/runs_table.py [--runs-dir runs] [--format csv|markdown]

Columns: stamp, status, iterations done / planned, best val loss and the
iteration it came at, median train tok/s over the run's reports, peak memory (GB),
git commit. CSV goes well with csvkit (`make runs` pipes it to csvlook); the
markdown form is what `make notes` puts into RESULTS.md.

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

REPO = Path(__file__).resolve().parents[1]
COLUMNS = ["stamp", "status", "iters", "best_val_loss", "best_iter", "tok_per_s", "peak_mem_gb", "commit"]


def run_row(run_dir: Path) -> dict:
    manifest = json.loads((run_dir / "manifest.json").read_text())
    metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()
               if line.strip()] if (run_dir / "metrics.jsonl").is_file() else []
    train = [m for m in metrics if m["type"] == "train"]
    vals = [m for m in metrics if m["type"] == "val"]
    best = min(vals, key=lambda m: m["val_loss"], default=None)
    commit = commit_label(manifest.get("git") or {})
    return {
        "stamp": manifest["stamp"],
        "status": manifest.get("status", "?"),
        "iters": f"{max((m['iteration'] for m in train), default=0)}/{manifest.get('iters', '?')}",
        "best_val_loss": f"{best['val_loss']:.4f}" if best else "",
        "best_iter": best["iteration"] if best else "",
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
    found = sorted(p.parent for p in runs_dir.glob("*/manifest.json") if not p.parent.is_symlink())
    return [run_row(d) for d in found]


def markdown(table: list[dict]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(str(r[c]) for c in COLUMNS) + " |" for r in table]
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
