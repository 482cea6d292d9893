"""The memory profile sweep's results (scripts/mem_profile.py runs the sweep, `make
mem-profile`): the stamp of its result folder, the fit checked on held-out points, and
results.csv.

    mem_profile.sweep_stamp(a)        # "large-tiny-gemma3-bs1.2.4-gc0.1-ms128.512-it6w2-L16-s0"
    fit, check = mem_profile.fit_and_check(rows, holdout_batch=4)
    mem_profile.write_csv(rows, Path("results.csv"))
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import olelo
from olelo import memory

CSV_FIELDS = [
    "model", "data", "batch", "grad_checkpoint", "max_seq", "longest_only", "iters", "warmup", "num_layers", "status",
    "peak_bytes", "max_rss_bytes", "width", "tokens_in_batch", "longest_seq", "padded_fraction",
    "distinct_widths", "warmup_s", "steady_s", "steady_tokens", "tok_s", "it_s",
    "load1_start", "load1_end", "wall_s", "heldout", "predicted_bytes", "error_pct",
]


def sweep_stamp(a) -> str:
    """The one place the result folder is named, from the sweep settings."""
    def join(xs):
        return ".".join(str(x) for x in xs)

    gc = join(int(g) for g in a.grad_checkpoint)
    return (f"{Path(a.data.rstrip('/')).name}-{memory.model_name(a.model)}-bs{join(a.batch_sizes)}-gc{gc}"
            f"-ms{join(a.max_seqs)}-it{a.iters}w{a.warmup}-L{a.num_layers}-s{a.seed}"
            f"{'' if a.longest_check else '-nolc'}{'-longest' if a.longest_only else ''}"
            f"{'' if a.loss == 'default' else '-' + a.loss}"
            f"{'' if a.memory_limit_gb is None else f'-lim{a.memory_limit_gb:g}'}"
            f"{'-qdense' if a.quantized_matmul == 'dense' else ''}")


def fit_and_check(rows: list[dict], holdout_batch: int) -> tuple[dict, dict | None]:
    """Fit on the points without the held-out batch size and check those; then refit on all."""
    ok = [r for r in rows if r["status"] == "ok"]
    check = None
    held = [r for r in ok if r["batch"] == holdout_batch or r.get("longest_check")]
    if held and len(held) < len(ok):
        partial = memory.fit_peak([r for r in ok if r not in held])
        errors = []
        for r in held:
            r["heldout"] = 1
            r["predicted_bytes"] = round(memory.predict_peak(partial, r["batch"], r["width"], r["grad_checkpoint"]))
            r["error_pct"] = round(memory.prediction_error(partial, r), 2)
            errors.append(r["error_pct"])
        check = {"holdout_batch": holdout_batch, "holdout_longest": any(r.get("longest_check") for r in held),
                 "fit_without_holdout": partial,
                 "errors_pct": errors, "max_abs_error_pct": max(abs(e) for e in errors),
                 "within_10pct": all(abs(e) <= 10 for e in errors)}
    fit = memory.fit_peak(ok)
    for r in ok:
        if not r.get("heldout"):
            r["heldout"] = 0
            r["predicted_bytes"] = round(memory.predict_peak(fit, r["batch"], r["width"], r["grad_checkpoint"]))
            r["error_pct"] = round(memory.prediction_error(fit, r), 2)
    return fit, check


def write_csv(rows: list[dict], path: Path) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({**r, "grad_checkpoint": int(r["grad_checkpoint"]), "longest_only": int(bool(r.get("longest_only")))})
    olelo.atomic_write_text(path, buf.getvalue())
