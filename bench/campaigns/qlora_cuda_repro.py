# Served NOTES.md: 2026-12-07 "Does the 4-bit model train on a CPU, and what makes it …";
#   2026-12-07 (GPU) "Does the recipe translate held-out stories, and what does a 4-bit base cost?".
"""Where does LoRA over a 4-bit Gemma 3 270M fault on CUDA? A minimal reproduction.

    python bench/campaigns/qlora_cuda_repro.py -o $OUT/qlora_cuda_repro.json [--cases a,b] [--timeout 240]

No download, no tokenizer: the model is Gemma 3 270M's text shape (its config.json,
below) with random weights in bfloat16, quantized as mlx-community's 4-bit copy is
(affine, group 64, 4 bits, embedding included). Batches are random token ids. Each case
runs in its own process (an illegal memory access poisons the CUDA context), so one
fault does not hide the next; the parent records each case's exit code, seconds and the
last lines of its output, and rewrites the JSON after every case.

A case is a path through the lab's training code, one setting changed at a time:
  forward      model(x) alone, no LoRA (ran in the earlier campaign: the control)
  lora-eval    + LoRA on the last 16 layers (rank 8, scale 20), mlx-lm's default_loss
               without gradient: what mlx-lm's evaluate() computes at the first validation
  dense-eval   + the lab's QMATMUL=dense (olelo/dequant.py: body and tied head multiply
               through dequantized weights; QMATMUL=auto picks it on CUDA)
  dense-eval-nolora, lora-step, dense-step, dense-step-ckpt, dense-step-compile, ...
Each case names its batch shape (rows x tokens). `--list` prints them.
With `--case NAME` one case runs in this process (what the parent spawns).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

# google/gemma-3-270m's config.json (text model), as models/gemma-3-270m-4bit records it.
GEMMA3_270M = {
    "model_type": "gemma3_text", "hidden_size": 640, "num_hidden_layers": 18, "intermediate_size": 2048,
    "num_attention_heads": 4, "num_key_value_heads": 1, "head_dim": 256, "query_pre_attn_scalar": 256,
    "sliding_window": 512, "sliding_window_pattern": 6, "rope_theta": 1_000_000.0,
    "rope_local_base_freq": 10000.0, "rms_norm_eps": 1e-6, "vocab_size": 262144,
    "max_position_embeddings": 32768, "tie_word_embeddings": True,
}
QUANT = {"group_size": 64, "bits": 4, "mode": "affine"}

# name: (lora, qmatmul, what, rows, tokens, grad_checkpoint, compile)
CASES = {
    "forward": (False, "quantized", "forward", 8, 129, False, False),
    "lora-eval": (True, "quantized", "eval", 8, 129, False, False),
    "dense-eval-nolora": (False, "dense", "eval", 8, 129, False, False),
    "dense-eval": (True, "dense", "eval", 8, 129, False, False),
    "dense-eval-b1": (True, "dense", "eval", 1, 129, False, False),
    "dense-eval-body": (True, "dense-body", "eval", 8, 129, False, False),
    "lora-step": (True, "quantized", "step", 8, 129, False, False),
    "lora-step-compile": (True, "quantized", "step", 8, 129, False, True),
    "dense-step": (True, "dense", "step", 8, 129, False, False),
    "dense-step-ckpt": (True, "dense", "step", 8, 129, True, False),
    "dense-step-compile": (True, "dense", "step", 8, 129, False, True),
    "lora-step-b32-compile": (True, "quantized", "step", 32, 129, False, True),
    "dense-step-b32-compile": (True, "dense", "step", 32, 129, False, True),
    # The tied head's product has rows x tokens x 262,144 elements: past 2**31 (the
    # validation batch of the first failure held a 1,421-token paragraph; batch 32 x 256
    # tokens is 2**31 exactly). "qmm"/"mm": the head's product alone, rows = M, tokens 1.
    "qmm-head-below-2^31": (False, "quantized", "qmm", 8191, 1, False, False),
    "qmm-head-above-2^31": (False, "quantized", "qmm", 8193, 1, False, False),
    "mm-head-above-2^31": (False, "bf16", "mm", 8193, 1, False, False),
    # Which limit: 2**31 output elements, or M > 8,191 rows (65,535 blocks of 8 rows)? At
    # the head's 262,144 columns the two coincide; "qmm-raw" multiplies M rows by a random
    # 4-bit (N, 640) weight (rows = M, tokens = N) to tell them apart.
    "qmm-raw-rows8193-n2048": (False, "quantized", "qmm-raw", 8193, 2048, False, False),
    "qmm-raw-rows16383-n131072": (False, "quantized", "qmm-raw", 16383, 131072, False, False),
    "qmm-raw-rows16385-n131072": (False, "quantized", "qmm-raw", 16385, 131072, False, False),
    "qmm-raw-rows4097-n524288": (False, "quantized", "qmm-raw", 4097, 524288, False, False),
    "lora-eval-long": (True, "quantized", "eval", 8, 1100, False, False),
    "dense-eval-long": (True, "dense", "eval", 8, 1100, False, False),
    "bf16-eval-long": (True, "bf16", "eval", 8, 1100, False, False),
}


def build(lora: bool, qmatmul: str, seed: int = 0):
    import mlx.core as mx
    import mlx.nn as nn
    from mlx_lm.models.gemma3_text import Model, ModelArgs

    mx.random.seed(seed)
    model = Model(ModelArgs.from_dict(GEMMA3_270M))
    model.set_dtype(mx.bfloat16)
    if qmatmul != "bf16":  # "bf16": the unquantized control
        nn.quantize(model, group_size=QUANT["group_size"], bits=QUANT["bits"], mode=QUANT["mode"])
    model.freeze()
    if lora:
        from mlx_lm.tuner.utils import linear_to_lora_layers

        linear_to_lora_layers(model, 16, {"rank": 8, "scale": 20.0, "dropout": 0.0})
    if qmatmul not in ("quantized", "bf16"):
        from olelo import dequant

        dequant.use_dequantized_matmul(model, head=qmatmul == "dense")
    mx.eval(model.parameters())
    return model


def batch(rows: int, tokens: int, seed: int = 1):
    import mlx.core as mx

    mx.random.seed(seed)
    x = mx.random.randint(2, GEMMA3_270M["vocab_size"], (rows, tokens))
    lengths = mx.array([[1, tokens - 1 - (i % 7)] for i in range(rows)])
    return x, lengths


def run_case(name: str) -> dict:
    import mlx.core as mx
    import mlx.nn as nn
    import mlx.optimizers as optim
    from mlx_lm.tuner.trainer import default_loss, grad_checkpoint

    lora, qmatmul, what, rows, tokens, ckpt, compiled = CASES[name]
    if what == "qmm-raw":  # (rows, 640) @ a random 4-bit (tokens, 640) weight, transposed
        k = GEMMA3_270M["hidden_size"]
        w = mx.random.normal((tokens, k)).astype(mx.bfloat16)
        wq, scales, biases = mx.quantize(w, group_size=QUANT["group_size"], bits=QUANT["bits"])
        x = mx.random.normal((rows, k)).astype(mx.bfloat16)
        y = mx.quantized_matmul(x, wq, scales, biases, transpose=True, group_size=QUANT["group_size"],
                                bits=QUANT["bits"])
        mx.eval(y)
        return {"shape": list(y.shape), "elements": y.size, "last_row_mean": y[-1].astype(mx.float32).mean().item(),
                "peak_gb": round(mx.get_peak_memory() / 1e9, 3)}
    model = build(lora, qmatmul)
    x, lengths = batch(rows, tokens)
    out = {}
    if what in ("qmm", "mm"):  # the tied head's product alone: (rows, 640) @ embedding.T
        h = mx.random.normal((rows, GEMMA3_270M["hidden_size"])).astype(mx.bfloat16)
        logits = model.model.embed_tokens.as_linear(h)
        mx.eval(logits)
        out["shape"], out["elements"] = list(logits.shape), logits.size
        out["last_row_mean"] = logits[-1].astype(mx.float32).mean().item()
        out["first_row_mean"] = logits[0].astype(mx.float32).mean().item()
    elif what == "forward":
        logits = model(x[:, :-1])
        mx.eval(logits)
        out["logits_mean"] = logits.astype(mx.float32).mean().item()
    elif what == "eval":
        model.eval()
        loss, ntoks = default_loss(model, x, lengths)
        mx.eval(loss, ntoks)
        out["loss"] = loss.item()
    else:
        if ckpt:
            grad_checkpoint(model.layers[0])
        model.train()
        opt = optim.Adam(learning_rate=1e-4)
        value_and_grad = nn.value_and_grad(model, default_loss)
        state = [model.state, opt.state, mx.random.state]

        def step(x, lengths):
            (loss, ntoks), grad = value_and_grad(model, x, lengths)
            opt.update(model, grad)
            return loss, ntoks

        if compiled:
            from functools import partial

            step = partial(mx.compile, inputs=state, outputs=state)(step)
        losses = []
        for _ in range(3):
            loss, ntoks = step(x, lengths)
            mx.eval(state, loss)
            losses.append(loss.item())
        model.eval()  # then a validation, as the trainer's first eval after training steps
        vloss, _ = default_loss(model, x, lengths)
        out["train_losses"], out["val_loss"] = losses, vloss.item()
    out["peak_gb"] = round(mx.get_peak_memory() / 1e9, 3)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-o", "--output", help="JSON to write (rewritten after each case)")
    p.add_argument("--cases", default=",".join(CASES), help="comma-separated case names (default: all)")
    p.add_argument("--case", help=argparse.SUPPRESS)
    p.add_argument("--timeout", type=int, default=240, help="seconds per case (default 240)")
    p.add_argument("--list", action="store_true", help="print the cases and exit")
    a = p.parse_args(argv)
    if a.list:
        for name, spec in CASES.items():
            print(name, dict(zip(("lora", "qmatmul", "what", "rows", "tokens", "grad_checkpoint", "compile"), spec)))
        return 0
    if a.case:
        print("RESULT " + json.dumps(run_case(a.case)), flush=True)
        return 0
    if not a.output:
        p.error("-o/--output is required (or --list / --case)")
    names = [n.strip() for n in a.cases.split(",") if n.strip()]
    unknown = [n for n in names if n not in CASES]
    if unknown:
        p.error(f"unknown case(s) {', '.join(unknown)}; --list shows them")
    import mlx.core as mx
    import mlx_lm

    from olelo import header

    h = header.start(" ".join(["python", "bench/campaigns/qlora_cuda_repro.py", *sys.argv[1:]]))
    results = {"versions": {"mlx": mx.__version__, "mlx_lm": mlx_lm.__version__, "python": sys.version.split()[0]},
               "device": str(mx.default_device()), "model": GEMMA3_270M, "quantization": QUANT, "cases": []}
    for name in names:
        t0 = time.time()
        print(f"=== {name} {dict(zip(('lora', 'qmatmul', 'what', 'rows', 'tokens', 'ckpt', 'compile'), CASES[name]))}",
              flush=True)
        try:
            proc = subprocess.run([sys.executable, __file__, "--case", name], capture_output=True, text=True,
                                  timeout=a.timeout, env={**os.environ, "PYTHONUNBUFFERED": "1"})
            rc, text = proc.returncode, proc.stdout + proc.stderr
        except subprocess.TimeoutExpired as e:
            rc, text = "timeout", (e.stdout or b"").decode(errors="replace") + (e.stderr or b"").decode(errors="replace")
        found = [json.loads(line[7:]) for line in text.splitlines() if line.startswith("RESULT ")]
        row = {"case": name, "settings": dict(zip(("lora", "qmatmul", "what", "rows", "tokens", "grad_checkpoint",
                                                   "compile"), CASES[name])),
               "rc": rc, "seconds": round(time.time() - t0, 1), "result": found[0] if found else None,
               "tail": [] if found else text.strip().splitlines()[-8:]}
        print(f"    rc {rc} in {row['seconds']} s {row['result'] or row['tail'][-1:] }", flush=True)
        results["cases"].append(row)
        header.write(Path(a.output), h, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
