# Served NOTES.md: 2026-11-26 (GPU) "Issue 15 on the H100".
"""The GPU's measured bf16 matmul rate (TFLOP/s), the denominator of model FLOPs utilisation
(MFU) in the training benchmarks: square N x N x N matmuls, warm-up apart, in MLX and in torch.

    python bench/campaigns/gpu_matmul_rate.py [--n 8192] [--reps 50] -o $OUT/matmul_rate.json

Each framework runs --reps matmuls back to back after 5 warm-up ones and is timed
around a final synchronisation (mx.eval / torch.cuda.synchronize). A framework that
is not installed is recorded as missing, not guessed.
"""

from __future__ import annotations

import argparse
import sys
import time

import olelo


def mlx_rate(n: int, reps: int) -> float:
    import mlx.core as mx

    a = mx.random.normal((n, n)).astype(mx.bfloat16)
    b = mx.random.normal((n, n)).astype(mx.bfloat16)
    mx.eval(a, b)
    for _ in range(5):
        mx.eval(a @ b)
    t = time.perf_counter()
    outs = [a @ b for _ in range(reps)]
    mx.eval(outs)
    return 2 * n**3 * reps / (time.perf_counter() - t) / 1e12


def torch_rate(n: int, reps: int) -> float:
    import torch

    a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    for _ in range(5):
        a @ b
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(reps):
        a @ b
    torch.cuda.synchronize()
    return 2 * n**3 * reps / (time.perf_counter() - t) / 1e12


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=8192)
    p.add_argument("--reps", type=int, default=50)
    p.add_argument("-o", "--output", required=True)
    a = p.parse_args(argv)
    result = {"what": "bf16 square matmul rate", "n": a.n, "reps": a.reps,
              "command": " ".join(["python", *sys.argv])}
    for name, fn in (("mlx", mlx_rate), ("torch", torch_rate)):
        try:
            result[f"{name}_tflops"] = round(fn(a.n, a.reps), 1)
        except ImportError as e:
            result[f"{name}_tflops"] = None
            result[f"{name}_missing"] = str(e)
        print(f"{name}: {result[f'{name}_tflops']} TFLOP/s", flush=True)
    olelo.atomic_write_json(a.output, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
