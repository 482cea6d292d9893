"""Shared pieces of the memory tools (mem_profile.py, memory_guidelines.py,
auto_batch.py, sort_by_length.py): how mlx-lm pads a batch, the linear model of
peak training memory and its least-squares fit, token lengths of a dataset as
mlx-lm computes them, and the memory this machine has available.

The model of peak memory (bytes) for one LoRA run:

    peak ~= static + batch * padded_len * (per_token[gc] + per_token_width[gc] * padded_len)

static is the weights, LoRA and optimizer state and the allocator's fixed costs;
per_token[gc] is what one padded token of a batch costs, with and without
gradient checkpointing; padded_len is the width mlx-lm pads the longest
sequence of a batch to. per_token_width is the part that grows with the width
(attention scores are batch x heads x width x width): without it, a fit made at
widths 128 and 512 under-predicted a 1729-wide batch by ~40 % (tiny-gemma3, CPU).
The numbers belong to one model, LoRA setting and backend; the structure
carries over, the coefficients do not.
"""

from __future__ import annotations

import json
import math
import os
import platform
import re
import subprocess
import sys
import types
from pathlib import Path

import olelo
from olelo.runs import REPO

# mlx-lm 0.32.2 tuner/trainer.py iterate_batches pads each batch to
# 1 + a multiple of 32, capped at max_seq_length.
PAD_TO = 32
GC_MODES = {False: "off", True: "on"}  # keys of per_token_bytes


def padded_width(longest: int, max_seq: int) -> int:
    """The width of the batch mlx-lm builds when its longest sequence has `longest` tokens."""
    return min(1 + PAD_TO * ((longest + PAD_TO - 1) // PAD_TO), max_seq)


def batch_padding(lengths: list[int], batch: int, max_seq: int) -> tuple[int, int]:
    """(real tokens, padded slots) over all batches mlx-lm makes of `lengths` in this
    order: consecutive chunks of `batch`, the last partial chunk dropped, as
    iterate_batches does when its sort key is constant (chat data in 0.32.2)."""
    real = slots = 0
    for i in range(0, len(lengths) - batch + 1, batch):
        chunk = lengths[i:i + batch]
        width = padded_width(max(chunk), max_seq)
        real += sum(min(n, max_seq) for n in chunk)
        slots += batch * width
    return real, slots


# ---------------------------------------------------------------- the fit

def _columns(points: list[dict]) -> list[tuple[str, bool]]:
    """The fit's terms: (per_token or per_token_width, checkpoint mode). The width
    term needs two different widths in a mode to be told apart from per_token."""
    cols = []
    for m in sorted({bool(int(p["grad_checkpoint"])) for p in points}):
        cols.append(("per_token", m))
        if len({p["width"] for p in points if bool(int(p["grad_checkpoint"])) == m}) > 1:
            cols.append(("per_token_width", m))
    return cols


def _feature(term: str, mode: bool, batch: int, width: int, gc) -> float:
    if bool(int(gc)) != mode:
        return 0.0
    return float(batch * width) * (width if term == "per_token_width" else 1)


def fit_peak(points: list[dict]) -> dict:
    """Least-squares fit of peak_bytes ~ static + batch*width*(per_token[gc] + per_token_width[gc]*width).

    `points` are dicts with batch, width, grad_checkpoint (bool-ish) and peak_bytes.
    One shared static term; per checkpoint mode present, a per-token slope and, when
    the mode was measured at two or more widths, a per-token-per-width slope (memory
    that grows with the square of the sequence: attention scores). Each point is
    weighted by 1/peak, so the fit minimizes relative errors, small points count."""
    import numpy as np

    if not points:
        raise olelo.UserError("cannot fit peak memory: no measured point (every batch x width of the sweep "
                              "failed: read the sweep's errors, e.g. out of memory, and try smaller batches or "
                              "widths, or MEM_LIMIT)")
    cols = _columns(points)
    X = np.array([[1.0] + [_feature(t, m, p["batch"], p["width"], p["grad_checkpoint"]) for t, m in cols]
                  for p in points])
    y = np.array([float(p["peak_bytes"]) for p in points])
    if len(points) < X.shape[1] or np.linalg.matrix_rank(X) < X.shape[1]:
        modes = sorted({m for _, m in cols})
        raise olelo.UserError(
            f"cannot fit peak memory from {len(points)} points: need at least two different "
            f"batch x width values for each checkpoint mode ({', '.join(GC_MODES[m] for m in modes)})")
    coef, *_ = np.linalg.lstsq(X / y[:, None], np.ones_like(y), rcond=None)
    fit = {
        "formula": "peak_bytes = static_bytes + batch * padded_len * "
                   "(per_token_bytes[gc] + per_token_width_bytes[gc] * padded_len)",
        "static_bytes": float(coef[0]),
        "per_token_bytes": {},
        "per_token_width_bytes": {},
        "n_points": len(points),
    }
    for (term, m), c in zip(cols, coef[1:]):
        fit[f"{term}_bytes"][GC_MODES[m]] = float(c)
    errors = [prediction_error(fit, p) for p in points]
    fit["max_abs_error_pct"] = max(abs(e) for e in errors)
    return fit


def predict_peak(fit: dict, batch: int, width: int, grad_checkpoint: bool) -> float:
    mode = GC_MODES[bool(int(grad_checkpoint))]
    if mode not in fit["per_token_bytes"]:
        raise olelo.UserError(f"the fit has no points with grad checkpoint {mode}")
    per_token = fit["per_token_bytes"][mode] + fit.get("per_token_width_bytes", {}).get(mode, 0.0) * width
    static = fit["static_bytes_per_mode"][mode] if "static_bytes_per_mode" in fit else fit["static_bytes"]
    return static + per_token * batch * width


def combine_fits(fits: dict[str, dict]) -> dict:
    """One fit from fits of single checkpoint modes ({"off": fit, "on": fit}, each from its
    own profile): each mode keeps its own static term (static_bytes_per_mode, in place of
    static_bytes), its coefficients and error."""
    combined = {"formula": next(iter(fits.values())).get("formula"), "static_bytes_per_mode": {},
                "per_token_bytes": {}, "per_token_width_bytes": {}, "n_points": 0, "max_abs_error_pct": 0.0}
    for mode, fit in fits.items():
        combined["static_bytes_per_mode"][mode] = fit["static_bytes"]
        combined["per_token_bytes"][mode] = fit["per_token_bytes"][mode]
        if mode in fit.get("per_token_width_bytes", {}):
            combined["per_token_width_bytes"][mode] = fit["per_token_width_bytes"][mode]
        combined["n_points"] += fit.get("n_points", 0)
        combined["max_abs_error_pct"] = max(combined["max_abs_error_pct"], fit.get("max_abs_error_pct", 0.0))
    return combined


def prediction_error(fit: dict, point: dict) -> float:
    """(predicted - measured) / measured, in percent."""
    pred = predict_peak(fit, point["batch"], point["width"], point["grad_checkpoint"])
    return 100.0 * (pred - point["peak_bytes"]) / point["peak_bytes"]


def describe(fit: dict) -> str:
    """The fitted coefficients in one line."""
    parts = [f"static {gb(fit['static_bytes'])}"]
    for mode, a in fit["per_token_bytes"].items():
        q = fit.get("per_token_width_bytes", {}).get(mode)
        parts.append(f"checkpointing {mode}: {a / 1e3:.1f} kB per padded token"
                     + (f" + {q:.1f} B per token per unit of width" if q is not None else ""))
    return "; ".join(parts)


def model_name(model: str) -> str:
    """How results name a model: the last part of its path or Hub id (as run stamps do)."""
    return Path(str(model).rstrip("/")).name


def measured_at_need(profile: dict) -> bool:
    """Whether every measured point of a mem-profile results.json ran past its memory limit:
    then eval queued nothing ahead, and each peak is what that setting needs."""
    limit = profile.get("memory_limit_gb")
    peaks = [row["peak_bytes"] for row in profile.get("rows", []) if row.get("status") == "ok"]
    return limit is not None and bool(peaks) and limit * 1e9 < min(peaks)


def newest_profile(results_dir: str | os.PathLike, model: str, loss: str = "default",
                   memory_limit_gb: float | None = None, quantized_matmul: str = "quantized",
                   at_need: bool = False, gc_modes: tuple[str, ...] = ()) -> dict | None:
    """The newest mem-profile results.json (by its `created` time) measured on `model`
    with `loss` (profiles from before --loss used mlx-lm's default), under
    `memory_limit_gb` (None: MLX's own limit, as training runs by default; with at_need,
    any limit every point ran past: measured_at_need) and with `quantized_matmul`
    (resolved; profiles from before QMATMUL used quantized_matmul) that has a fit, with
    points in every checkpoint mode of gc_modes ("off", "on"), or None."""
    best = None
    for f in Path(results_dir).glob("*/results.json"):
        try:
            r = json.loads(f.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if model_name(r.get("model", "")) != model_name(model) or not r.get("fit") or r.get("loss", "default") != loss:
            continue
        limit_fits = measured_at_need(r) if at_need else r.get("memory_limit_gb") == memory_limit_gb
        if not limit_fits:
            continue
        if r.get("quantized_matmul", "quantized") != quantized_matmul:
            continue
        if not all(m in r["fit"].get("per_token_bytes", {}) for m in gc_modes):
            continue
        if best is None or r.get("created", "") > best.get("created", ""):
            best = {**r, "path": str(f)}
    return best


# ---------------------------------------------------------------- data

def token_lengths(model: str, jsonl: str | os.PathLike) -> tuple[list[dict], list[int]]:
    """The rows of a training JSONL and their lengths in tokens, tokenized exactly
    as mlx-lm's datasets do (chat template for {"messages": ...} rows)."""
    from mlx_lm.tuner.datasets import create_dataset
    from mlx_lm.utils import load_tokenizer

    rows = olelo.read_jsonl(jsonl)
    if not rows:
        raise olelo.UserError(f"{jsonl}: no rows")
    try:
        tokenizer = load_tokenizer(model)
    except Exception as e:
        raise olelo.UserError(olelo.model_unavailable_message(model, e)) from None
    dataset = create_dataset(rows, tokenizer, types.SimpleNamespace(mask_prompt=False))
    return rows, [len(dataset.process(r)[0]) for r in rows]


# ---------------------------------------------------------------- this machine

def available_memory_bytes() -> int:
    """Memory a new process can use without swapping. With MLX's CUDA backend that is the
    GPU's free memory, not the host's (cuda_free_memory_bytes); otherwise MemAvailable on
    Linux, and on macOS free + inactive + speculative pages, capped by Metal's recommended
    working set."""
    gpu = cuda_free_memory_bytes()
    if gpu is not None:
        return gpu
    system = platform.system()
    if system == "Linux":
        text = Path("/proc/meminfo").read_text()
        m = re.search(r"^MemAvailable:\s+(\d+) kB", text, re.M)
        if not m:
            raise olelo.UserError("/proc/meminfo has no MemAvailable line")
        return int(m[1]) * 1024
    if system == "Darwin":
        out = subprocess.run(["vm_stat"], capture_output=True, text=True, check=True).stdout
        page = int(re.search(r"page size of (\d+) bytes", out)[1])
        pages = {k.strip().lower(): int(v.strip().rstrip(".")) for k, v in re.findall(r"^([^:\n]+):\s+(\d+)\.?$", out, re.M)}
        free = page * sum(pages.get(k, 0) for k in ("pages free", "pages inactive", "pages speculative"))
        try:
            import mlx.core as mx

            if mx.metal.is_available():  # the GPU may not wire more than this
                free = min(free, int(mx.metal.device_info()["max_recommended_working_set_size"]))
        except Exception:
            pass
        return free
    raise olelo.UserError(f"do not know how to read available memory on {system}; pass --available")


def cuda_free_memory_bytes() -> int | None:
    """The free memory of the GPU MLX trains on, when MLX runs on CUDA (None otherwise):
    mx.device_info()'s free_memory, or else nvidia-smi's memory.free for that GPU. Training
    memory there is the GPU's; the host's MemAvailable (128 GB beside an 80 GB card, say)
    would let BATCH=auto pick a batch the card cannot hold."""
    try:
        import mlx.core as mx

        if not mx.cuda.is_available():
            return None
    except (ImportError, AttributeError):
        return None
    try:
        free = mx.device_info().get("free_memory")
    except (AttributeError, RuntimeError):  # an MLX without device_info
        free = None
    if isinstance(free, int) and free > 0:
        return free
    # MLX uses the first visible GPU; nvidia-smi numbers GPUs ignoring CUDA_VISIBLE_DEVICES.
    gpu = (os.environ.get("CUDA_VISIBLE_DEVICES") or "0").split(",")[0].strip()
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=memory.free", "--format=csv,noheader,nounits", "-i", gpu],
                             capture_output=True, text=True, timeout=30)
        return int(out.stdout.split()[0]) * 2**20  # MiB
    except (OSError, subprocess.TimeoutExpired, ValueError, IndexError):
        raise olelo.UserError("MLX runs on CUDA, but neither mlx.core.device_info() nor nvidia-smi says how much "
                              "of the GPU's memory is free: give BATCH a number instead of auto") from None


def check_memory_limit(gb_limit: float | None, flag: str = "--memory-limit-gb") -> None:
    """A UserError unless gb_limit is None or a finite number of GB above 0."""
    if gb_limit is not None and not (math.isfinite(gb_limit) and gb_limit > 0):
        raise olelo.UserError(f"{flag} {gb_limit:g}: give a positive number of GB (MEM_LIMIT=12, say)")


def set_memory_limit(gb_limit: float | None) -> None:
    """MLX's memory limit (mx.set_memory_limit), in GB; None keeps MLX's own (80.8 GB
    on an H100 80GB, measured; Metal: 1.5x the recommended working set, per MLX's docs).

    MLX's eval queues work ahead of the device, and what queued work allocates, or
    will free only when it has run, stays in use meanwhile. Past the limit eval stops
    queueing and waits for the device, so a step's peak stays near the limit (over it
    by what the ops under way allocate) unless
    the step itself needs more. A limit far below the need measures the need (nothing
    queued ahead), slowly: on CUDA the allocator also empties its cache past the limit."""
    check_memory_limit(gb_limit)
    if gb_limit is None:
        return
    import mlx.core as mx

    mx.set_memory_limit(int(gb_limit * 1e9))


def gb(n: float) -> str:
    """Bytes as a short human string (decimal units, as mlx-lm reports peak memory)."""
    return f"{n / 1e9:.2f} GB" if abs(n) >= 1e9 else f"{n / 1e6:.1f} MB"


def preflight_warning(fit: dict, longest_tokens: int, batch: int, grad_checkpoint: bool, max_seq: int,
                      available_bytes: float) -> str | None:
    """A warning, with the numbers, when the batch holding the longest sequence is
    predicted to need more memory than is available; None when it fits, or when
    the fit has no points in this checkpoint mode (it cannot tell)."""
    if GC_MODES[bool(grad_checkpoint)] not in fit["per_token_bytes"]:
        return None
    width = padded_width(longest_tokens, max_seq)
    peak = predict_peak(fit, batch, width, grad_checkpoint)
    if peak <= available_bytes:
        return None
    return (f"warning: batch {batch}{' with grad checkpoint' if grad_checkpoint else ''} is predicted to need "
            f"{gb(peak)} when it holds the longest sequence ({longest_tokens} tokens, padded to {width}), "
            f"but only {gb(available_bytes)} is available: expect an out-of-memory failure or swapping. "
            f"Try a smaller batch, --grad-checkpoint, or a shorter --max-seq-length (BATCH=auto picks one).")


def preflight(args, train_set, profiles: Path, loss: str, quantized_matmul: str = "quantized",
              at_need: bool = False) -> None:
    """Warn before training when the newest mem-profile of this model (measured with
    this run's --loss and --quantized-matmul; at_need, for a run under MEM_LIMIT: one
    measured at the need) predicts that the batch holding the longest example will not
    fit in the memory available now."""
    profile = newest_profile(profiles, args.model, loss, quantized_matmul=quantized_matmul, at_need=at_need)
    if not profile:
        return
    longest = max(len(train_set.process(train_set[i])[0]) for i in range(len(train_set)))
    warning = preflight_warning(profile["fit"], longest, args.batch_size, bool(args.grad_checkpoint),
                                           args.max_seq_length, available_memory_bytes())
    if warning:
        print(f"[olelo] {warning} (fit: {profile['path']})")


# ---------------------------------------------------------------- measuring one point

# scripts/mem_profile.py --point prints its result on one line after this mark.
RESULT_MARK = "MEM_PROFILE_RESULT "


def measure(point: dict, log_path: Path, timeout: int) -> dict:
    """Run one point in a fresh Python process; a crash or OOM kill becomes a row with its status."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, str(REPO / "scripts" / "mem_profile.py"), "--point", json.dumps(point)]
    with open(log_path, "w") as log:
        try:
            proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=log, text=True, timeout=timeout)
            out, status = proc.stdout, "ok" if proc.returncode == 0 else f"failed (exit {proc.returncode})"
        except subprocess.TimeoutExpired as e:
            out, status = e.stdout or "", f"timeout ({timeout} s)"
            out = out.decode() if isinstance(out, bytes) else out
        log.write(out)
    for line in reversed(out.splitlines()):
        if line.startswith(RESULT_MARK):
            return {**point, **json.loads(line[len(RESULT_MARK):])}
    return {**point, "status": status}
