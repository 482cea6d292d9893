"""Loading a model, with a useful message when it cannot be had."""

from __future__ import annotations

from pathlib import Path

from olelo.cli import UserError


def load_model(model: str, adapter_path: str | None = None):
    """mlx_lm.load, but a model that is neither a local folder nor downloadable
    gives a message that says what to do instead of a traceback."""
    from mlx_lm import load

    check_model_folder(model)
    if adapter_path is not None and not (Path(adapter_path) / "adapters.safetensors").is_file():
        raise UserError(f"{adapter_path}/adapters.safetensors not found: the adapters were deleted or never "
                        f"written; retrain the run (FORCE=1) or pick another checkpoint")
    try:
        return load(model, adapter_path=adapter_path)
    except Exception as e:  # mlx-lm raises several types for "not available"
        if Path(model).exists():
            first = str(e).splitlines()[0] if str(e) else ""
            raise UserError(f"cannot load the model folder {model} ({type(e).__name__}: {first}); "
                            f"rebuild or re-download it") from None
        raise UserError(model_unavailable_message(model, e)) from None


def check_model_folder(model: str) -> None:
    """A local model path must be a folder with config.json (what mlx-lm reads first)."""
    p = Path(model)
    if p.exists() and not p.is_dir():
        raise UserError(f"MODEL={model}: is a file; give a model folder or a Hugging Face id")
    if p.is_dir() and not (p / "config.json").is_file():
        raise UserError(f"MODEL={model}: the folder has no config.json, so it is not an mlx-lm model "
                        f"(a build or download that did not finish?); rebuild it (make tiny-model) or "
                        f"download it again")


def model_unavailable_message(model: str, err: Exception | None = None) -> str:
    why = f" ({type(err).__name__}: {err})" if err else ""
    return (
        f"cannot load model {model!r}: it is not a local folder and could not be "
        f"downloaded from the Hugging Face Hub{why}. Offline, pass a local model: "
        f"MODEL=models/tiny-gemma3 (built by `make tiny-model`) or the path of a "
        f"model you downloaded earlier (`hf download {model}` on a "
        f"machine with internet)."
    )



OPENBLAS_HINT = "/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0"


def blas_warning(maps: str = "/proc/self/maps") -> str | None:
    """A warning when MLX computes on a Linux CPU without OpenBLAS in this process: mlx's
    bundled BLAS is ~50x slower at matrix products (a validation ~10x slower). numpy's own
    OpenBLAS copy (symbols of its own) does not count: MLX does not use it."""
    import platform

    if platform.system() != "Linux":
        return None
    import mlx.core as mx

    if mx.metal.is_available() or mx.cuda.is_available():
        return None
    try:
        with open(maps, encoding="utf-8", errors="replace") as f:
            paths = {line.split()[-1] for line in f if "/" in line}
    except OSError:
        return None
    if any("openblas" in p.lower() and not any(own in p for own in ("numpy", "scipy", "64_")) for p in paths):
        return None
    return (f"MLX runs on this Linux CPU without OpenBLAS (its bundled BLAS is ~50x slower at matrix "
            f"products: validation and training crawl). Run through make, which preloads {OPENBLAS_HINT} "
            f"when it is installed (sudo apt-get install libopenblas0-pthread), or set LD_PRELOAD={OPENBLAS_HINT}")
