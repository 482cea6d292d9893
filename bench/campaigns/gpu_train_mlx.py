# Served NOTES.md: 2026-11-26 (GPU) "Is MLX (CUDA) LoRA training as fast as transformers + …"; 2026-11-26
#   (GPU) "Issue 15 on the H100".
"""MLX LoRA training speed on one model for several batch sizes and padding policies,
with mlx-lm's own train() loop: warm-up (compilation) timed apart from the steady state.

    python bench/campaigns/gpu_train_mlx.py --model /root/m4b --data .gpu-c/train.jsonl \\
        --configs b8:8,b8:4,b8:1,pad32:4 [--grad-checkpoint] [--no-compile] \\
        [--budget-s 420] [--loss chunked|body] [--dequant-matmul [--dequant-head] [--dequant-ordered]] \\
        -o $OUT/mlx_a.json

Each config `POLICY:BATCH` trains on the batches of bench/campaigns/gpu_common.plan(): the
first N batches of mlx-lm's (length-sorted, shuffled) epoch, padded by POLICY
(pad32 is mlx-lm's own rule; b8/b5 pad to a fixed set of widths). Warm-up runs
one batch of each distinct padded width first, in order of appearance, so every
shape is compiled before the measured pass over all N batches. LoRA as mlx-lm
defaults (rank 8, scale 20, dropout 0, last 16 layers), Adam lr 1e-5; tokens
counted are real (unpadded) tokens. --grad-checkpoint patches the layers once as
mlx-lm does; --no-compile makes train()'s mx.compile a no-op (the step runs
eagerly); --dequant-matmul makes a quantized model's linear layers multiply through
dequantized weights (olelo/dequant.py) instead of quantized_matmul, and with
--dequant-head the tied output head too (--dequant-ordered: each dense copy waits for
its operand, olelo.dequant.ORDERED). --loss body trains the body alone, with a cheap
loss on its final hidden states (their mean) instead of the head and cross-entropy: a
step's time minus this one's is the head's and the loss's (gpu_train_peft.py has the
same). Configs run in the order given; one that would not finish within --budget-s
(judged from the configs before it) is skipped and recorded as such.
The JSON is rewritten after every config.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

import gpu_common  # beside this file

N_BATCHES = {1: 48, 2: 32, 4: 24, 8: 16, 16: 8, 32: 8}


def ptx_cache_files() -> int:
    import mlx.core as mx

    d = Path(os.environ.get("MLX_PTX_CACHE_DIR") or Path("/tmp/mlx") / mx.__version__ / "ptx")
    return len(list(d.glob("*.ptx"))) if d.is_dir() else 0


class Recorder:
    """mlx-lm TrainingCallback: the time and tokens of every step (steps_per_report=1)."""

    def __init__(self):
        self.steps = []
        self.last_tokens = 0

    def on_train_loss_report(self, info):
        tokens = int(info["trained_tokens"]) - self.last_tokens
        self.last_tokens = int(info["trained_tokens"])
        self.steps.append({"tokens": tokens, "s": tokens / info["tokens_per_second"],
                           "loss": float(info["train_loss"]), "peak_gb": float(info["peak_memory"])})

    def on_val_loss_report(self, info):
        pass


def body_loss(model, batch, lengths):
    """The body's forward and backward without the head: the mean of the final
    hidden states over the positions mlx-lm's default_loss counts."""
    import mlx.core as mx
    from olelo import lean_loss

    body, _, _ = lean_loss.split_head(model)
    inputs = batch[:, :-1]
    hidden = body(inputs).astype(mx.float32)
    mask, ntoks = lean_loss.counted_positions(lengths, inputs.shape[1])
    return (hidden.mean(-1) * mask).sum() / ntoks, ntoks


def run_config(model, tokens, policy, batch_size, n_batches, seed, log, loss=None) -> dict:
    import mlx.core as mx
    import mlx.optimizers as optim
    from mlx_lm.tuner.trainer import TrainingArgs, train

    pl = gpu_common.plan(tokens, batch_size, n_batches, policy, seed)
    seq = [(pl["batches"][k], pl["widths"][k]) for k in pl["warmup"]]
    seq += list(zip(pl["batches"], pl["widths"]))

    def iterate_batches(dataset=None, batch_size=None, max_seq_length=None, loop=False, seed=None, comm_group=None):
        for idxs, width in seq:
            arr, lengths = gpu_common.batch_array(tokens, idxs, width)
            yield mx.array(arr), mx.array(np.stack([np.zeros_like(lengths), lengths], 1))

    rec = Recorder()
    args = TrainingArgs(batch_size=batch_size, iters=len(seq), steps_per_report=1, steps_per_eval=10**9,
                        steps_per_save=10**9, max_seq_length=4096, grad_checkpoint=False,
                        adapter_file="/tmp/gpu_train_mlx_adapters.safetensors")
    mx.clear_cache()
    mx.reset_peak_memory()
    ptx_before = ptx_cache_files()
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(log):
        train(model, optim.Adam(learning_rate=gpu_common.LEARNING_RATE), seq, None, args=args,
              iterate_batches=iterate_batches, training_callback=rec, **({"loss": loss} if loss else {}))
    wall = time.perf_counter() - t0
    n_warm = len(pl["warmup"])
    warm, meas = rec.steps[:n_warm], rec.steps[n_warm:]
    steady_s = sum(s["s"] for s in meas)
    steady_tokens = sum(s["tokens"] for s in meas)
    assert steady_tokens == pl["real_tokens"], (steady_tokens, pl["real_tokens"])
    losses = [s["loss"] for s in rec.steps]
    return {
        "policy": policy, "batch_size": batch_size, "n_batches": n_batches,
        "distinct_widths": pl["distinct_widths"], "padded_fraction": pl["padded_fraction"],
        "real_tokens": steady_tokens,
        "warmup_s": round(sum(s["s"] for s in warm), 2),
        "warmup_steps": [{"width": pl["widths"][k], "s": round(s["s"], 3)} for k, s in zip(pl["warmup"], warm)],
        "steady_s": round(steady_s, 3),
        "steady_tok_s": round(steady_tokens / steady_s, 1),
        "steady_step_s_median": round(float(np.median([s["s"] for s in meas])), 4),
        "peak_memory_gb": round(max(s["peak_gb"] for s in rec.steps), 2),
        "wall_s": round(wall, 1),
        "ptx_kernels_compiled": ptx_cache_files() - ptx_before,
        "loss_first_last": [round(losses[0], 3), round(losses[-1], 3)],
        "loss_finite": all(math.isfinite(x) for x in losses),
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--data", required=True, help="train.jsonl of chat records")
    p.add_argument("--configs", default="b8:8,b8:4,b8:1", help="comma list of POLICY:BATCH")
    p.add_argument("--n-batches", help="override N for every config")
    p.add_argument("--grad-checkpoint", action="store_true")
    p.add_argument("--checkpoint-after-cotangent", action="store_true",
                   help="with --grad-checkpoint: recompute each layer only once its cotangent exists")
    p.add_argument("--no-compile", action="store_true")
    p.add_argument("--loss", choices=["default", "chunked", "body"], default="default",
                   help="mlx-lm's default loss, olelo/lean_loss.py's chunked one, or the body alone (no head)")
    p.add_argument("--dequant-matmul", action="store_true",
                   help="quantized linear layers multiply through dequantized weights (olelo/dequant.py)")
    p.add_argument("--dequant-head", action="store_true",
                   help="with --dequant-matmul: the tied output head too")
    p.add_argument("--dequant-min-rows", type=int,
                   help="with --dequant-matmul: fewer rows per call keep quantized_matmul (olelo.dequant.MIN_ROWS)")
    p.add_argument("--dequant-ordered", action="store_true",
                   help="with --dequant-matmul: each dense copy waits for its operand (olelo.dequant.ORDERED)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--budget-s", type=float, default=1e9, help="skip configs that would end after this")
    p.add_argument("--label", default="", help="free text stored with the results (e.g. env vars set)")
    p.add_argument("-o", "--output", required=True)
    a = p.parse_args(argv)
    start = time.perf_counter()

    import mlx.core as mx
    import mlx_lm
    from mlx_lm import load
    from mlx_lm.tuner import trainer
    from mlx_lm.tuner.utils import linear_to_lora_layers

    tokens = gpu_common.tokenize_chat(a.model, a.data)
    t = time.perf_counter()
    model, _ = load(a.model)
    load_s = time.perf_counter() - t
    model.freeze()
    linear_to_lora_layers(model, gpu_common.LORA["num_layers"],
                          {k: gpu_common.LORA[k] for k in ("rank", "scale", "dropout")})
    dequantized = 0
    if a.dequant_matmul:
        from olelo import dequant

        if a.dequant_min_rows is not None:
            dequant.MIN_ROWS = a.dequant_min_rows
        dequant.ORDERED = a.dequant_ordered
        dequantized = dequant.use_dequantized_matmul(model, head=a.dequant_head)
    from mlx.utils import tree_flatten

    trainable = sum(v.size for _, v in tree_flatten(model.trainable_parameters()))
    if a.grad_checkpoint and a.checkpoint_after_cotangent:
        from olelo.grad_checkpoint import checkpoint_after_cotangent

        checkpoint_after_cotangent(model.layers[0])
    elif a.grad_checkpoint:
        trainer.grad_checkpoint(model.layers[0])  # patches the layer class once, as train() would
    if a.no_compile:
        mx.compile = lambda fun=None, **kw: fun if fun is not None else (lambda f: f)

    loss_fn = None
    if a.loss == "chunked":
        from olelo import lean_loss

        loss_fn = lean_loss.chunked_loss
    elif a.loss == "body":
        loss_fn = body_loss
    log_path = Path(a.output).with_suffix(".log")
    result = {
        "what": "MLX LoRA training, mlx-lm train() loop",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "label": a.label,
        "env": {k: v for k, v in os.environ.items() if k.startswith("MLX_")},
        "mlx": mx.__version__, "mlx_lm": mlx_lm.__version__, "device": str(mx.default_device()),
        **gpu_common.device_summary(),
        "model": a.model, "model_load_s": round(load_s, 1), "lora": gpu_common.LORA,
        "trainable_parameters": int(trainable), "grad_checkpoint": a.grad_checkpoint,
        "checkpoint_after_cotangent": a.checkpoint_after_cotangent, "compile": not a.no_compile, "loss": a.loss,
        "dequantized_matmul_layers": dequantized, "dequant_head": a.dequant_head,
        "dequant_min_rows": dequant.MIN_ROWS if a.dequant_matmul else None,
        "dequant_ordered": dequant.ORDERED if a.dequant_matmul else None,
        "examples": len(tokens), "configs": [],
    }
    per_width_s, tok_s = [], []
    with open(log_path, "w") as log:
        for spec in a.configs.split(","):
            policy, bs = spec.split(":")
            bs = int(bs)
            n = int(a.n_batches) if a.n_batches else N_BATCHES[bs]
            pl = gpu_common.plan(tokens, bs, n, policy, a.seed)
            if per_width_s and tok_s:
                est = pl["distinct_widths"] * float(np.mean(per_width_s)) + pl["real_tokens"] / float(np.mean(tok_s))
                if time.perf_counter() - start + est > a.budget_s:
                    result["configs"].append({"policy": policy, "batch_size": bs, "status": "skipped (time budget)",
                                              "estimated_s": round(est)})
                    gpu_common.write_json(a.output, result)
                    continue
            try:
                r = run_config(model, tokens, policy, bs, n, a.seed, log, loss_fn)
                r["status"] = "ok"
                per_width_s.append(r["warmup_s"] / max(1, r["distinct_widths"]))
                tok_s.append(r["steady_tok_s"])
            except Exception as e:  # out of memory and the like: record and go on
                r = {"policy": policy, "batch_size": bs, "status": f"failed: {type(e).__name__}: {e}"[:500]}
            result["configs"].append(r)
            gpu_common.write_json(a.output, result)
            print(f"[mlx] {spec}: " + (f"warm-up {r['warmup_s']} s over {r['distinct_widths']} widths, "
                  f"steady {r['steady_tok_s']} tok/s, peak {r['peak_memory_gb']} GB, "
                  f"pad {r['padded_fraction']}" if r["status"] == "ok" else r["status"]), flush=True)
    result["total_s"] = round(time.perf_counter() - start, 1)
    gpu_common.write_json(a.output, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
