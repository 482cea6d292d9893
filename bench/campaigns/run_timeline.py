# Served NOTES.md: 2026-12-07 (GPU) "Does the recipe translate held-out stories, and what does a 4-bit base cost?";
#   2026-12-08 (GPU) "Does retrieval-augmented LoRA train stably with the loss on the translation only, …".
"""Where a run's wall time went, from its own records: training, validation loss,
validation translation (VAL_GEN), and the rest; its speed and peak memory.

    python bench/campaigns/run_timeline.py runs/<stamp> [runs/<stamp> ...] [--json OUT]

Reads each run's manifest.json (start and end of every segment) and metrics.jsonl
(val_time, val_gen_time, tokens_per_second, peak_memory of each report). Training's
share is what is left of the wall time after validation; the first train report is
left out of the median speed (it includes compiling the step).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
from pathlib import Path

import olelo
from olelo import header


def seconds(a: str, b: str) -> float:
    return (dt.datetime.fromisoformat(b) - dt.datetime.fromisoformat(a)).total_seconds()


def timeline(run: Path) -> dict:
    manifest = olelo.read_json(run / "manifest.json", "run manifest")
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    segments = manifest.get("segments") or []
    if not segments or any("ended" not in s for s in segments):
        raise olelo.UserError(f"{run}: a segment has no end in manifest.json (a run still going, or killed)")
    wall = sum(seconds(s["started"], s["ended"]) for s in segments)
    val = [r for r in rows if r.get("type") == "val"]
    train = [r for r in rows if r.get("type") == "train"]
    val_loss_s = sum(r.get("val_time", 0.0) for r in val)
    val_gen_s = sum(r.get("val_gen_time", 0.0) for r in val)
    return {
        "run": run.name,
        "model": manifest.get("model"),
        "status": manifest.get("status"),
        "wall_s": round(wall, 1),
        "val_loss_s": round(val_loss_s, 1),
        "val_gen_s": round(val_gen_s, 1),
        "val_gen_share": round(val_gen_s / wall, 3) if wall else None,
        "val_gen_stopped": [r.get("val_gen_stopped") for r in val],
        "val_gen_tokens": [r.get("val_gen_tokens") for r in val],
        "val_chrf": {r["iteration"]: r.get("val_chrf") for r in val},
        "val_loss": {r["iteration"]: round(r["val_loss"], 4) for r in val if "val_loss" in r},
        "median_tok_s": round(statistics.median(r["tokens_per_second"] for r in train[1:]), 1) if len(train) > 1 else None,
        "peak_gb": round(max(r.get("peak_memory", 0.0) for r in train), 2) if train else None,
        "best": {k: manifest.get("best", {}).get(k) for k in ("iteration", "criterion", "val_chrf", "val_loss")},
        "quantized_matmul": [s.get("quantized_matmul") for s in segments],
        "loss": (manifest.get("lab_options") or {}).get("loss"),
        "backend": (manifest.get("environment") or {}).get("mlx_backend"),
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", help="run folders (runs/<stamp>)")
    p.add_argument("--json", help="write the rows here too, with the provenance header")
    a = p.parse_args(argv)
    try:
        rows = [timeline(Path(r)) for r in a.runs]
    except (olelo.UserError, FileNotFoundError, KeyError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for r in rows:
        print(f"{r['run']}: wall {r['wall_s']:.0f} s, val loss {r['val_loss_s']:.0f} s, val translation "
              f"{r['val_gen_s']:.0f} s ({100 * (r['val_gen_share'] or 0):.1f} %), {r['median_tok_s']} tok/s, "
              f"peak {r['peak_gb']} GB, best it {r['best']['iteration']}")
    if a.json:
        head = header.start(" ".join(["python", "bench/campaigns/run_timeline.py", *sys.argv[1:]]))
        header.write(Path(a.json), head, {"runs": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
