# Served NOTES.md: 2026-11-27 (GPU) "Issue 15, seventh pass".
"""Where does multiplying through a dequantized weight start to pay? One 4-bit layer's
forward and backward (the cotangent with respect to its input, what LoRA training asks of
a frozen layer), timed for each of gemma-3-4b's linear shapes and its tied output head,
at a range of rows (batch x tokens per call), three ways:

    quantized  nn.QuantizedLinear: mx.quantized_matmul forward and backward
    dense      olelo/dequant.py's _dense_matmul: dequantize, matmul; the backward dequantizes again
    bf16       a plain matmul on a bf16 weight made beforehand (the floor: no dequantization)

    python bench/campaigns/dequant_rows.py [--rows 64,256,1024,4096] [--shapes q,down,head] -o $OUT/dequant_rows.json

Random weights (group 64, 4 bits, as mlx-community's 4-bit models), bf16 activations, no
mx.compile (each way is the same kernels with or without it). Each point: 3 warm-up calls,
then the median of 5 windows of calls, each window at least --window-s seconds. The JSON is
rewritten after every shape.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

from olelo import files

# gemma-3-4b-it's text shape: hidden 2560, intermediate 10240, 8 query heads and 4
# key/value heads of 256, and Gemma 3's vocabulary (the tied head is vocab x hidden).
SHAPES = {
    "q": (2560, 2048), "kv": (2560, 1024), "o": (2048, 2560),
    "gate_up": (2560, 10240), "down": (10240, 2560), "head": (2560, 262144),
}


def time_call(fn, window_s: float) -> float:
    """Median seconds per call of fn() (which returns arrays to evaluate)."""
    import mlx.core as mx

    for _ in range(3):
        mx.eval(fn())
    n, windows = 1, []
    while True:  # calls per window: enough to fill window_s
        t = time.perf_counter()
        for _ in range(n):
            mx.eval(fn())
        if time.perf_counter() - t >= window_s or n >= 4096:
            break
        n *= 2
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(n):
            mx.eval(fn())
        windows.append((time.perf_counter() - t) / n)
    return statistics.median(windows)


def measure(shape, rows, window_s):
    import mlx.core as mx
    import mlx.nn as nn

    from olelo import dequant

    d_in, d_out = shape
    dense = nn.Linear(d_in, d_out, bias=False)
    dense.weight = (mx.random.normal((d_out, d_in)) * d_in ** -0.5).astype(mx.bfloat16)
    q = nn.QuantizedLinear.from_linear(dense, group_size=64, bits=4)
    dense.weight = mx.dequantize(q.weight, q.scales, q.biases, group_size=64, bits=4)
    x = (mx.random.normal((rows, d_in))).astype(mx.bfloat16)
    ct = (mx.random.normal((rows, d_out)) * 0.01).astype(mx.bfloat16)
    mx.eval(q.parameters(), dense.parameters(), x, ct)
    ways = {
        "quantized": lambda x: q(x),
        "dense": lambda x: dequant._dense_matmul(q, x),
        "bf16": lambda x: dense(x),
    }
    out = {}
    for name, f in ways.items():
        out[f"{name}_ms"] = round(1e3 * time_call(lambda: mx.vjp(f, [x], [ct]), window_s), 4)
    out["dense_over_quantized"] = round(out["quantized_ms"] / out["dense_ms"], 3)  # > 1: dense faster
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", default="64,128,256,512,1024,2048,4096,8192,16384")
    p.add_argument("--shapes", default=",".join(SHAPES), help=f"comma list of {', '.join(SHAPES)}")
    p.add_argument("--window-s", type=float, default=0.2)
    p.add_argument("-o", "--output", required=True)
    a = p.parse_args(argv)
    import mlx.core as mx

    try:
        rows = [int(r) for r in a.rows.split(",")]
    except ValueError:
        rows = []
    if not rows or min(rows) < 1:
        p.error(f"--rows {a.rows!r}: give a comma list of positive whole numbers, e.g. 64,256,1024")
    shapes = a.shapes.split(",")
    unknown = [s for s in shapes if s not in SHAPES]
    if unknown:
        p.error(f"unknown shape(s) {unknown}; choose from {', '.join(SHAPES)}")
    result = {"what": "one 4-bit layer's forward + input cotangent, ms per call",
              "device": str(mx.default_device()), "cuda": mx.cuda.is_available(), "mlx": mx.__version__,
              "command": " ".join(["python", *sys.argv]), "points": []}
    for s in shapes:
        for r in rows:
            point = {"shape": s, "in": SHAPES[s][0], "out": SHAPES[s][1], "rows": r,
                     **measure(SHAPES[s], r, a.window_s)}
            result["points"].append(point)
            print(json.dumps(point), flush=True)
            mx.clear_cache()
        files.atomic_write_json(a.output, result)  # atomic: a killed run keeps the shapes before
    return 0


if __name__ == "__main__":
    sys.exit(main())
