# Served NOTES.md: 2026-12-07 (GPU) "Does retrieval-augmented LoRA (the nearest training pair in every prompt) beat …";
#   2026-12-08 (GPU) "Does retrieval-augmented LoRA train stably with the loss on the translation only, …".
"""Check: does LOSS=chunked give mlx-lm's loss and gradients on long retrieval-augmented rows?

    python bench/campaigns/chunked_loss_long.py [--model models/gemma-3-270m-f32]
        [--data data/finetuning/stories/rag-k1/train.jsonl] [--rank 300] [--rows 2]
        [--out bench/results/chunked_loss_long.json]

tests/test_lean_loss.py checks the chunked loss against mlx-lm's default_loss on 23-token rows.
The retrieval-augmented runs (DATA=rag) train on rows of 1,000-3,300 tokens, and their training
loss rose after iteration 60; this check rules the lab's loss in or out at those lengths. It
takes the training rows ranked --rank.. by token count (longest first: rank 0 is the longest),
puts LoRA (rank 8, scale 20, 16 layers, as the runs) with seeded random weights on the model so
the adapters change the logits, and compares loss, token count and every LoRA gradient of the
two losses. The longest rows need more memory than 24 GiB for the default loss (its full
logits): on such a machine pick a rank further down. Exits 1 when they differ.

The GPU runs train the bfloat16 model, where no two ways of summing agree to 1e-5. With
--reference models/gemma-3-270m-f32 (and --model models/gemma-3-270m) the check is made where
the two losses differ, after the body: the reference's body (float32, with the LoRA weights)
gives the hidden states; mlx-lm's cross-entropy and the chunked one are computed on them in the
model's dtype with its head, and each loss and its gradient with respect to the hidden states
(all that the body's backward receives) is measured against mlx-lm's in float32. The chunked
loss passes when it is no further from that reference than mlx-lm's own loss in the model's
dtype (--slack times its distance, default 2). (The whole model in bfloat16 takes hours on a
CPU, whose bfloat16 matrix products do not go through BLAS.)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import mlx.core as mx
import mlx.nn as nn
import numpy as np
from mlx.utils import tree_flatten, tree_map
from mlx_lm import load
from mlx_lm.tuner.trainer import default_loss
from mlx_lm.tuner.utils import linear_to_lora_layers

from olelo import header, lean_loss

REPO = Path(__file__).resolve().parents[2]
TOLERANCE = 1e-5  # largest gradient difference relative to the gradient's largest entry


def batch_of(tokenizer, data: Path, rank: int, rows: int):
    records = [json.loads(line) for line in data.open(encoding="utf-8")]
    ids = [tokenizer.encode(tokenizer.apply_chat_template(r["messages"], tokenize=False),
                            add_special_tokens=False) for r in records]
    order = sorted(range(len(ids)), key=lambda i: (-len(ids[i]), i))[rank:rank + rows]
    width = max(len(ids[i]) for i in order)
    tokens = np.zeros((len(order), width), dtype=np.int32)
    for row, i in enumerate(order):
        tokens[row, :len(ids[i])] = ids[i]
    lengths = mx.array([[0, len(ids[i])] for i in order])  # the whole row, as without MASK_PROMPT
    return mx.array(tokens), lengths, [len(ids[i]) for i in order]


def loss_and_grads(model, loss_fn, batch, lengths):
    t0 = time.time()
    (loss, ntoks), grads = nn.value_and_grad(model, loss_fn)(model, batch, lengths)
    mx.eval(loss, ntoks, grads)
    return loss.item(), ntoks.item(), dict(tree_flatten(grads)), time.time() - t0


def with_lora(model_dir: str, adapters: Path | None = None):
    """The model with LoRA as the runs put it (rank 8, scale 20, 16 layers) and seeded random
    LoRA weights, drawn in float32 and cast to each parameter's dtype (same values in any dtype),
    or a run's trained LoRA weights (an adapters.safetensors), cast the same way."""
    model, tokenizer = load(model_dir)
    model.freeze()
    linear_to_lora_layers(model, 16, {"rank": 8, "scale": 20.0, "dropout": 0.0})
    if adapters is None:
        mx.random.seed(1)
        model.update(tree_map(lambda p: (mx.random.normal(p.shape) * 0.02).astype(p.dtype),
                              model.trainable_parameters()))
    else:
        trained, mine = mx.load(str(adapters)), dict(tree_flatten(model.trainable_parameters()))
        if set(trained) != set(mine):
            raise SystemExit(f"{adapters}: its LoRA matrices are not the rank-8, 16-layer ones of {model_dir}")
        model.load_weights([(k, v.astype(mine[k].dtype)) for k, v in trained.items()], strict=False)
    return model, tokenizer


def worst_difference(got: dict, want: dict) -> float:
    """Largest gradient difference relative to the reference gradient's largest entry, over all LoRA matrices."""
    return max(mx.abs(got[name].astype(mx.float32) - g.astype(mx.float32)).max().item()
               / max(mx.abs(g).max().item(), 1e-12) for name, g in want.items())


def head_losses(reference: str, model_dir: str, adapters, batch, lengths) -> dict:
    """{name: (loss, ntoks, {"hidden": gradient}, seconds)} of mlx-lm's cross-entropy in float32
    (reference), in model_dir's dtype (default) and the chunked one in that dtype (chunked), on
    the hidden states of the reference model's body."""
    ref_model = with_lora(reference, adapters)[0]
    body, _, head32 = lean_loss.split_head(ref_model)
    hidden = body(batch[:, :-1])
    mx.eval(hidden)
    _, _, head = lean_loss.split_head(load(model_dir)[0])
    targets = batch[:, 1:]
    mask, ntoks = lean_loss.counted_positions(lengths, targets.shape[1])
    width = max(1, lean_loss.CHUNK_TOKENS // targets.shape[0])

    def plain(head_fn):
        return lambda h: (nn.losses.cross_entropy(head_fn(h), targets) * mask).astype(mx.float32).sum()

    chunked = lean_loss._ce_sum(head, targets, mask, width)
    low = hidden.astype(head(hidden[:1, :1]).dtype)
    out = {}
    for name, fn, h in (("reference", plain(head32), hidden), ("default", plain(head), low),
                        ("chunked", lambda x: chunked(x)[0], low)):
        t0 = time.time()
        total, grad = mx.value_and_grad(fn)(h)
        mx.eval(total, grad)
        out[name] = ((total / ntoks).item(), ntoks.item(), {"hidden": grad}, time.time() - t0)
    return out


def relative_error(got: dict, want: dict) -> float:
    """|got - want| / |want| over all arrays together (float32 sums): how far, as a whole, a gradient is from another."""
    diff = sum(mx.sum(mx.square(got[k].astype(mx.float32) - g.astype(mx.float32))).item() for k, g in want.items())
    size = sum(mx.sum(mx.square(g.astype(mx.float32))).item() for g in want.values())
    return (diff / max(size, 1e-30)) ** 0.5


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="models/gemma-3-270m-f32", help="mlx-lm model folder (default: %(default)s)")
    ap.add_argument("--data", type=Path, default=Path("data/finetuning/stories/rag-k1/train.jsonl"),
                    help="chat-format training rows (default: %(default)s)")
    ap.add_argument("--rank", type=int, default=300, help="first row by length, longest = 0 (default: %(default)s)")
    ap.add_argument("--rows", type=int, default=2, help="rows in the batch (default: %(default)s)")
    ap.add_argument("--adapters", type=Path, help="a run's adapters.safetensors instead of random LoRA weights")
    ap.add_argument("--reference", help="a float32 copy of --model: measure both losses against "
                                        "mlx-lm's loss on it (for a bfloat16 --model)")
    ap.add_argument("--slack", type=float, default=2.0,
                    help="with --reference: how many times mlx-lm's own distance the chunked loss may be (default: %(default)s)")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "chunked_loss_long.json")
    a = ap.parse_args(argv)
    if not a.data.is_file():
        raise SystemExit(f"{a.data}: no such file (make data DATA=rag RAG_K=1 builds it)")
    if a.rank < 0 or a.rows < 1:
        raise SystemExit("--rank must be >= 0 and --rows >= 1")
    head = header.start("python bench/campaigns/chunked_loss_long.py" + "".join(
        f" {x}" for x in (argv if argv is not None else sys.argv[1:])))
    if a.reference is None:
        model, tokenizer = with_lora(a.model, a.adapters)
    else:
        tokenizer = load(a.model)[1]
    batch, lengths, tokens = batch_of(tokenizer, a.data, a.rank, a.rows)
    print(f"rows of {tokens} tokens")
    if a.reference is None:
        want = loss_and_grads(model, default_loss, batch, lengths)
        got = loss_and_grads(model, lean_loss.chunked_loss, batch, lengths)
    else:
        losses = head_losses(a.reference, a.model, a.adapters, batch, lengths)
        ref, want, got = losses["reference"], losses["default"], losses["chunked"]
    worst = worst_difference(got[2], want[2])
    results = {"model": a.model, "adapters": str(a.adapters) if a.adapters else "random (seed 1)",
               "data": str(a.data), "rank": a.rank, "row_tokens": tokens,
               "loss": {"default": want[0], "chunked": got[0]}, "ntoks": {"default": want[1], "chunked": got[1]},
               "worst_relative_gradient_difference": worst,
               "seconds": {"default": round(want[3], 1), "chunked": round(got[3], 1)}}
    if a.reference is None:
        same = got[1] == want[1] and abs(got[0] - want[0]) <= 1e-5 * abs(want[0]) and worst < TOLERANCE
        results.update(tolerance=TOLERANCE, same=same)
    else:
        far = {"default": worst_difference(want[2], ref[2]), "chunked": worst_difference(got[2], ref[2])}
        whole = {"default": relative_error(want[2], ref[2]), "chunked": relative_error(got[2], ref[2])}
        same = (got[1] == want[1] == ref[1] and far["chunked"] <= a.slack * far["default"]
                and whole["chunked"] <= a.slack * whole["default"])
        results.update(compared="the loss after the body: value and gradient with respect to the hidden "
                                 "states, which the body's backward (the same code for both losses) receives",
                       reference=a.reference, reference_loss=ref[0], reference_seconds=round(ref[3], 1),
                       worst_relative_gradient_difference_from_reference=far,
                       relative_gradient_error_from_reference=whole, slack=a.slack, same=same)
    compared = "LoRA gradients" if a.reference is None else "gradients with respect to the hidden states"
    header.write(a.out, head, {"what": "LOSS=chunked vs mlx-lm's default_loss on long retrieval-augmented "
                                       f"training rows: loss, token count, {compared}", "results": results})
    print(json.dumps(results, indent=1))
    print(f"wrote {a.out}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
