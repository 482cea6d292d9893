"""What does one LoRA step of the 4-bit Gemma 3 270M cost on a CPU, by how it multiplies?

    python bench/qlora_cpu_step.py -o bench/results/qlora_cpu_step.json [--tokens 48] [--steps 2]

One batch of random token ids (1 x --tokens), LoRA (rank 8, scale 20) on the last 4
layers, the lab's chunked loss, forward and backward, timed per step, each setting in its
own process, in this order:
  q4-quantized-bf16  models/gemma-3-270m-4bit as loaded: quantized_matmul, bfloat16 scales
  q4-dense-bf16      + every quantized layer and the tied head through dequantized weights
  q4-quantized-f32   quantized_matmul with the scales, biases and norms cast to float32
                     (train.py's COMPUTE_DTYPE=auto on a CPU)
  q4-dense-f32       both
  f32                models/gemma-3-270m-f32, the float32 copy (the control)
The first step includes one-time work; compare the later ones. Run with OpenBLAS preloaded
(the Makefile's RUN_PY): MLX's bundled BLAS is ~50x slower here.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

SETTINGS = {  # name: (model folder, multiply dense, float32 compute)
    "q4-quantized-bf16": ("models/gemma-3-270m-4bit", False, False),
    "q4-dense-bf16": ("models/gemma-3-270m-4bit", True, False),
    "q4-quantized-f32": ("models/gemma-3-270m-4bit", False, True),
    "q4-dense-f32": ("models/gemma-3-270m-4bit", True, True),
    "f32": ("models/gemma-3-270m-f32", False, False),
}


def measure(name: str, tokens: int, steps: int) -> dict:
    import mlx.core as mx
    import mlx.nn as nn
    from mlx_lm import load
    from mlx_lm.tuner.utils import linear_to_lora_layers

    from olelo import dequant, lean_loss

    folder, dense, float32 = SETTINGS[name]
    model, _ = load(folder)
    dequant.apply_compute_dtype(model, "float32" if float32 else "model")
    model.freeze()
    linear_to_lora_layers(model, 4, {"rank": 8, "scale": 20.0, "dropout": 0.0})
    if dense:
        dequant.MIN_ROWS = 1  # every multiply dense, the head's 64-token chunks included
        dequant.apply(model, "dense")
    mx.random.seed(1)
    x = mx.random.randint(2, 1000, (1, tokens))
    lengths = mx.array([[1, tokens - 1]])
    value_and_grad = nn.value_and_grad(model, lambda m, b, n: lean_loss.chunked_loss(m, b, n))
    seconds, loss = [], None
    for _ in range(steps):
        t0 = time.perf_counter()
        (loss, _), grad = value_and_grad(model, x, lengths)
        mx.eval(loss, grad)
        seconds.append(round(time.perf_counter() - t0, 2))
    return {"seconds_per_step": seconds, "loss": loss.item(), "peak_gb": round(mx.get_peak_memory() / 1e9, 3)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-o", "--output", help="JSON to write (rewritten after each setting)")
    p.add_argument("--tokens", type=int, default=48, help="tokens in the one sequence (default 48)")
    p.add_argument("--steps", type=int, default=2, help="steps per setting (default 2)")
    p.add_argument("--settings", default=",".join(SETTINGS), help="comma-separated (default: all)")
    p.add_argument("--one", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.tokens < 2 or a.steps < 1:
        p.error("--tokens must be >= 2 and --steps >= 1")
    if a.one:
        print("RESULT " + json.dumps(measure(a.one, a.tokens, a.steps)), flush=True)
        return 0
    if not a.output:
        p.error("-o/--output is required")
    names = [n.strip() for n in a.settings.split(",") if n.strip()]
    unknown = [n for n in names if n not in SETTINGS]
    if unknown:
        p.error(f"unknown setting(s) {', '.join(unknown)}; choose from {', '.join(SETTINGS)}")
    missing = sorted({SETTINGS[n][0] for n in names if not (Path(SETTINGS[n][0]) / "config.json").is_file()})
    if missing:
        p.error(f"{', '.join(missing)} missing: make base-model builds them")
    from olelo import header

    h = header.start(" ".join(["python", "bench/qlora_cpu_step.py", *sys.argv[1:]]))
    body = {"tokens": a.tokens, "steps": a.steps, "lora_layers": 4, "loss": "chunked", "settings": {}}
    for name in names:
        print(f"{name} ...", flush=True)
        proc = subprocess.run([sys.executable, __file__, "--one", name, "--tokens", str(a.tokens),
                               "--steps", str(a.steps)], capture_output=True, text=True)
        found = [line[7:] for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
        body["settings"][name] = json.loads(found[0]) if found else {"rc": proc.returncode,
                                                                     "tail": proc.stderr.splitlines()[-5:]}
        print(f"  {body['settings'][name]}", flush=True)
        header.write(Path(a.output), h, body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
