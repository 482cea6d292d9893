# Served NOTES.md: 2026-11-26 "Issue 15, CPU half"; 2026-11-26 (GPU) "Issue 15 on the H100"; 2026-11-27 "Issue
#   15: a fused chunked loss".
"""Peak memory and speed of one LoRA training step: mlx-lm's default loss vs the lab's
chunked loss (olelo/lean_loss.py), at several batch sizes, each point in its own process.

    python bench/campaigns/lean_loss_memory.py --model models/gemma-3-270m --batches 1,2,4 --seq 512
    python bench/campaigns/lean_loss_memory.py --shape gemma-3-270m ...   # random weights of that shape

A step is value_and_grad of the loss over LoRA (rank 8, mlx-lm's default 16 layers)
plus an Adam update, on random tokens of the given length (no padding), repeated
--steps times after one warm-up step. Peak memory is MLX's own counter
(mx.get_peak_memory), reset after the warm-up; the warm-up step's own peak is
first_step_peak_gb. --compile runs the step through mx.compile as the trainers do.
Writes JSON to --out.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time


# Random-weight shapes (config.json values of the released models' text part).
SHAPES = {
    "gemma-3-270m": dict(hidden_size=640, intermediate_size=2048, num_hidden_layers=18, num_attention_heads=4,
                         num_key_value_heads=1, head_dim=256, query_pre_attn_scalar=256, sliding_window=512),
    "gemma-3-4b": dict(hidden_size=2560, intermediate_size=10240, num_hidden_layers=34, num_attention_heads=8,
                       num_key_value_heads=4, head_dim=256, query_pre_attn_scalar=256, sliding_window=1024),
}


def build(shape: str, dtype: str):
    import mlx.core as mx
    from mlx_lm.models.gemma3_text import Model, ModelArgs

    cfg = dict(SHAPES[shape], model_type="gemma3_text", vocab_size=262144, rms_norm_eps=1e-6,
               rope_theta=1_000_000.0, rope_local_base_freq=10_000.0, sliding_window_pattern=6,
               max_position_embeddings=32768)
    model = Model(ModelArgs.from_dict(cfg))
    model.tie_word_embeddings = True
    model.pop("lm_head")
    model.set_dtype(getattr(mx, dtype))
    return model


def one_point(args) -> dict:
    import mlx.core as mx
    import mlx.nn as nn
    import mlx.optimizers as optim
    import numpy as np
    from mlx_lm.tuner.trainer import default_loss
    from mlx_lm.tuner.utils import linear_to_lora_layers

    from olelo import lean_loss

    mx.random.seed(0)  # the same weights (shape runs) and LoRA init in every point's process
    if args.model:
        import olelo
        model, _ = olelo.load_model(args.model)
    else:
        model = build(args.shape, args.dtype)
    model.freeze()
    linear_to_lora_layers(model, 16, {"rank": 8, "scale": 20.0, "dropout": 0.0})
    if args.grad_checkpoint:
        from mlx_lm.tuner.trainer import grad_checkpoint
        grad_checkpoint(model.layers[0])
    def loss(m, b, l):
        if args.loss == "default":
            return default_loss(m, b, l)
        return lean_loss.chunked_loss(m, b, l, args.chunk_tokens)
    opt = optim.Adam(learning_rate=1e-5)
    step_fn = nn.value_and_grad(model, loss)
    rng = np.random.default_rng(0)
    vocab = model.args.vocab_size if hasattr(model.args, "vocab_size") else 262144
    batch = mx.array(rng.integers(1, vocab, size=(args.batch, args.seq + 1)))
    lengths = mx.array([[1, args.seq]] * args.batch)

    def update(batch, lengths):
        (lv, ntoks), grads = step_fn(model, batch, lengths)
        opt.update(model, grads)
        return lv, ntoks

    if args.compile:  # as the trainers (mlx-lm's, olelo's) run their step
        state = [model.state, opt.state]
        update = mx.compile(update, inputs=state, outputs=state)

    def step():
        lv, ntoks = update(batch, lengths)
        mx.eval(lv, ntoks, model.trainable_parameters(), opt.state)
        return lv.item()

    margin = args.limit_margin if args.loss == "chunked" else 0  # the default loss runs as it is
    over = args.limit_over_need_gb  # both losses
    mx.reset_peak_memory()
    if margin or over is not None:
        # Memory limit below what is in use: eval waits for each dispatched task, no run-ahead.
        mx.set_memory_limit(mx.get_active_memory())
    step()  # warm-up: first-use allocations and kernel builds (and the compilation)
    first_peak = mx.get_peak_memory()
    if margin:
        # What the step needs without run-ahead, plus the margin: eval waits only where more would be in use.
        mx.set_memory_limit(first_peak + int(margin * args.chunk_tokens * vocab * 4))
    elif over is not None:
        mx.set_memory_limit(first_peak + int(over * 1e9))
    mx.clear_cache()
    mx.reset_peak_memory()
    t0 = time.perf_counter()
    losses = [step() for _ in range(args.steps)]
    dt = (time.perf_counter() - t0) / args.steps
    return {"loss": args.loss, "chunk_tokens": args.chunk_tokens if args.loss == "chunked" else None, "batch": args.batch, "seq": args.seq, "grad_checkpoint": args.grad_checkpoint,
            "compile": args.compile, "limit_margin": margin, "limit_over_need_gb": over, "first_step_peak_gb": round(first_peak / 1e9, 3), "peak_gb": round(mx.get_peak_memory() / 1e9, 3), "step_s": round(dt, 3),
            "tok_per_s": round(args.batch * args.seq / dt, 1), "loss_value": losses[-1]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", help="mlx-lm model folder")
    src.add_argument("--shape", choices=sorted(SHAPES), help="random weights of this shape (vocab 262,144)")
    p.add_argument("--dtype", default="float32", help="with --shape: float32 | bfloat16")
    p.add_argument("--batches", default="1,2,4")
    p.add_argument("--seq", type=int, default=512)
    p.add_argument("--steps", type=int, default=2)
    p.add_argument("--grad-checkpoint", action="store_true")
    p.add_argument("--compile", action="store_true", help="mx.compile the step, as the trainers do")
    p.add_argument("--limit-margin", type=float, default=0,
                   help="chunked loss's memory-limit policy: the warm-up runs without dispatch run-ahead (limit below use), "
                        "then the limit is its peak + this many chunks' float32 logits (0: off)")
    p.add_argument("--limit-over-need-gb", type=float, default=None,
                   help="both losses: the warm-up runs without dispatch run-ahead (its peak is what the step needs), "
                        "then MLX's memory limit is that peak + this many GB (default: MLX's own limit)")
    p.add_argument("--chunk-tokens", type=int, default=None, help="chunked loss: tokens per chunk (default: lean_loss's)")
    p.add_argument("--out", help="JSON file to write (default: print only)")
    p.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one point (loss:batch) and print JSON
    a = p.parse_args(argv)
    if a.chunk_tokens is None:
        from olelo import lean_loss
        a.chunk_tokens = lean_loss.CHUNK_TOKENS
    if a.one:
        a.loss, b = a.one.split(":")
        a.batch = int(b)
        print(json.dumps(one_point(a)))
        return 0
    from olelo import header

    head = header.start("python bench/campaigns/lean_loss_memory.py " + " ".join(sys.argv[1:]))
    points = []
    base = [sys.executable, __file__] + (["--model", a.model] if a.model else ["--shape", a.shape, "--dtype", a.dtype])
    base += ["--seq", str(a.seq), "--steps", str(a.steps), "--chunk-tokens", str(a.chunk_tokens)] + (["--grad-checkpoint"] if a.grad_checkpoint else [])
    base += (["--compile"] if a.compile else []) + ["--limit-margin", str(a.limit_margin)]
    base += [] if a.limit_over_need_gb is None else ["--limit-over-need-gb", str(a.limit_over_need_gb)]
    for b in [int(x) for x in a.batches.split(",")]:
        for loss in ("default", "chunked"):
            r = subprocess.run(base + ["--one", f"{loss}:{b}"], capture_output=True, text=True)
            if r.returncode:
                point = {"loss": loss, "batch": b, "seq": a.seq, "error": r.stderr.strip().splitlines()[-1:]}
            else:
                point = json.loads(r.stdout.strip().splitlines()[-1])
            points.append(point)
            print(json.dumps(point), flush=True)
    if a.out:
        header.write(a.out, head, {"points": points})
    return 0


if __name__ == "__main__":
    sys.exit(main())
