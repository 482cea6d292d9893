"""Say what this machine offers the lab: platform, MLX backend and device, the
BLAS MLX uses, free memory, and the command-line tools the Makefile wants.

    python scripts/doctor.py

It changes nothing. The BLAS line times one float32 1024x1024 matmul, which is
how a missing OpenBLAS preload on Linux shows (a few GFLOP/s instead of ~100+).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import time
from importlib import metadata

import olelo


def matmul_gflops(n: int = 1024, reps: int = 5) -> float:
    import mlx.core as mx

    a = mx.random.normal((n, n))
    b = mx.random.normal((n, n))
    mx.eval(a @ b)  # warm-up
    t = time.perf_counter()
    for _ in range(reps):
        mx.eval(a @ b)
    return 2 * n**3 * reps / (time.perf_counter() - t) / 1e9


def available_memory_gb() -> float | None:
    try:
        with open("/proc/meminfo") as f:
            info = dict(line.split(":", 1) for line in f)
        return int(info["MemAvailable"].split()[0]) / 2**20
    except OSError:
        pass
    try:  # macOS: no /proc; total memory is the best cheap answer
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        return None


def main():
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    import mlx.core as mx

    rows = [("platform", f"{platform.system()} {platform.machine()}, Python {platform.python_version()}")]
    versions = []
    for pkg in ("mlx", "mlx-metal", "mlx-cpu", "mlx-cuda-12", "mlx-cuda-13", "mlx-lm"):
        try:
            versions.append(f"{pkg} {metadata.version(pkg)}")
        except metadata.PackageNotFoundError:
            pass
    rows.append(("packages", ", ".join(versions)))
    backend = "metal" if mx.metal.is_available() else "cuda" if mx.cuda.is_available() else "cpu"
    rows.append(("mlx backend", f"{backend} (default device {mx.default_device()})"))
    preload = os.environ.get("LD_PRELOAD", "")
    blas = "OpenBLAS (preloaded)" if "openblas" in preload else "Accelerate" if platform.system() == "Darwin" else "bundled"
    gflops = matmul_gflops()
    rows.append(("blas", f"{blas}: {gflops:.1f} GFLOP/s fp32 matmul 1024x1024 on {mx.default_device()}"))
    if platform.system() == "Linux" and backend == "cpu" and "openblas" not in preload:
        rows.append(("", "slow: sudo apt-get install libopenblas0-pthread (the Makefile then preloads it)"))
    mem = available_memory_gb()
    rows.append(("memory", f"{mem:.1f} GiB available" if mem else "unknown"))
    for tool, why in (("jq", "quick looks at JSONL (apt-get install jq / brew install jq)"),
                      ("csvlook", "the `make runs` table (pip: csvkit, in requirements.txt)")):
        where = shutil.which(tool) or (shutil.which(tool, path=os.path.dirname(os.sys.executable)))
        rows.append((tool, where or f"missing: {why}"))
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k.ljust(width)}  {v}")
    return 0


if __name__ == "__main__":
    olelo.run_main(main)
