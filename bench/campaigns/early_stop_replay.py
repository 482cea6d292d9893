# Served NOTES.md: 2026-11-27 (2 GPUs) "Issue 14, fourth pass".
"""Where would early stopping have stopped these runs? Replays PATIENCE on recorded curves.

    python bench/campaigns/early_stop_replay.py runs/<stamp> [runs/<stamp> ...] \
        [--patience 1,2,3] [--out replay.json]

A run stopped early by the lab (`make train-large PATIENCE=N`) is the same run as one
that was not, up to the validation where it stops: same seed, same batches, and the
stop rule (olelo.records.replay_early_stop, counted as the trainer counts it) reads only
validations already made. So a finished run's metrics.jsonl tells, for each PATIENCE and
each criterion (val_chrf, val_loss), where that run would have stopped, which validation
best/ would hold, and how many training iterations the stop would have saved. It says
nothing about checkpoints' test scores, which only best/ and final have.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import olelo
from olelo.records import read_metrics, replay_early_stop


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", help="run folders (runs/<stamp>) with metrics.jsonl")
    p.add_argument("--patience", default="1,2,3", help="comma list of PATIENCE values to replay")
    p.add_argument("--out", help="JSON file to write (default: print only)")
    a = p.parse_args()
    try:
        patiences = [int(x) for x in a.patience.split(",")]
    except ValueError:
        raise olelo.UserError(f"--patience {a.patience!r}: a comma list of whole numbers, e.g. 1,2,3")
    if any(n < 1 for n in patiences):
        raise olelo.UserError("--patience values must be at least 1")
    result = {}
    for run in map(Path, a.runs):
        if not (run / "metrics.jsonl").is_file():
            raise olelo.UserError(f"{run}: no metrics.jsonl; give run folders (runs/<stamp>)")
        rows = read_metrics(run)
        vals = [r for r in rows if r.get("type") == "val"]
        train = [r["iteration"] for r in rows if r.get("type") == "train"]
        if not vals:
            raise olelo.UserError(f"{run}: no validation rows in metrics.jsonl")
        last = max(train + [v["iteration"] for v in vals])
        row = {"iterations": last, "validations": [v["iteration"] for v in vals], "replays": []}
        for select in ("val_chrf", "val_loss"):
            if any(select not in v for v in vals):
                continue
            row[select] = [v[select] for v in vals]
            for n in patiences:
                r = replay_early_stop(vals, select, n)
                saved = 0 if r["stop"] is None else last - r["stop"]
                row["replays"].append({"select": select, "patience": n, **r, "iterations_saved": saved})
                stop = "runs to the end" if r["stop"] is None else f"stops at {r['stop']} (saves {saved})"
                print(f"{run.name}  {select} PATIENCE={n}: {stop}; best/ = iteration {r['best']} "
                      f"({select} {r['best_value']:.4g})")
        result[run.name] = row
    if a.out:
        olelo.atomic_write_json(Path(a.out), {"made_by": "bench/campaigns/early_stop_replay.py",
                                               "command": " ".join(["python", *sys.argv]), "runs": result})


if __name__ == "__main__":
    olelo.run_main(main)
