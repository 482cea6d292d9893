"""The OpenBLAS preload the Makefile adds on Linux gives the same numbers as
numpy, and is really the library MLX runs with."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

OPENBLAS = Path("/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0")
REPO = Path(__file__).resolve().parents[1]

CHECK = """
import numpy as np, mlx.core as mx
rng = np.random.default_rng(0)
a = rng.standard_normal((257, 513)).astype(np.float32)
b = rng.standard_normal((513, 129)).astype(np.float32)
got = np.array(mx.array(a) @ mx.array(b))
want = a.astype(np.float64) @ b.astype(np.float64)
print(float(np.max(np.abs(got - want)) / np.max(np.abs(want))))
print(any("openblas-pthread/libopenblas" in line for line in open("/proc/self/maps")))  # not numpy's own copy
"""


@pytest.fixture
def openblas():
    if not OPENBLAS.is_file():
        if os.environ.get("OLELO_REQUIRE_OPENBLAS") == "1":
            pytest.fail(f"OLELO_REQUIRE_OPENBLAS=1 but {OPENBLAS} is missing (apt-get install libopenblas0-pthread)")
        pytest.skip(f"{OPENBLAS} not installed")
    return OPENBLAS


def run_check(env):
    out = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    err, loaded = out.stdout.split()
    return float(err), loaded == "True"


def test_preloaded_openblas_matmul_equals_numpy(openblas):
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    err, loaded = run_check({**env, "LD_PRELOAD": str(openblas)})
    assert loaded
    assert err < 1e-5  # float32 accumulation over 513 terms, relative to the largest entry


def test_without_preload_mlx_uses_its_bundled_blas(openblas):
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    err, loaded = run_check(env)
    assert not loaded and err < 1e-5


def test_makefile_preloads_openblas_into_mlx_commands(openblas, run_make):
    out = run_make("-n", "doctor", check=False)
    assert f"LD_PRELOAD={openblas}" in out.stdout
