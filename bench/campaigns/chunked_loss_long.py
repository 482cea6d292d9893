# Served NOTES.md: 2026-12-07 (GPU) "Does retrieval-augmented LoRA (the nearest training pair in every prompt) beat …".
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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="models/gemma-3-270m-f32", help="mlx-lm model folder (default: %(default)s)")
    ap.add_argument("--data", type=Path, default=Path("data/finetuning/stories/rag-k1/train.jsonl"),
                    help="chat-format training rows (default: %(default)s)")
    ap.add_argument("--rank", type=int, default=300, help="first row by length, longest = 0 (default: %(default)s)")
    ap.add_argument("--rows", type=int, default=2, help="rows in the batch (default: %(default)s)")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "chunked_loss_long.json")
    a = ap.parse_args(argv)
    if not a.data.is_file():
        raise SystemExit(f"{a.data}: no such file (make data DATA=rag RAG_K=1 builds it)")
    if a.rank < 0 or a.rows < 1:
        raise SystemExit("--rank must be >= 0 and --rows >= 1")
    head = header.start("python bench/campaigns/chunked_loss_long.py" + "".join(
        f" {x}" for x in (argv if argv is not None else sys.argv[1:])))
    model, tokenizer = load(a.model)
    model.freeze()
    linear_to_lora_layers(model, 16, {"rank": 8, "scale": 20.0, "dropout": 0.0})
    mx.random.seed(1)
    model.update(tree_map(lambda p: mx.random.normal(p.shape, dtype=p.dtype) * 0.02,
                          model.trainable_parameters()))
    batch, lengths, tokens = batch_of(tokenizer, a.data, a.rank, a.rows)
    print(f"rows of {tokens} tokens")
    want = loss_and_grads(model, default_loss, batch, lengths)
    got = loss_and_grads(model, lean_loss.chunked_loss, batch, lengths)
    worst = max(mx.abs(got[2][name] - g).max().item() / max(mx.abs(g).max().item(), 1e-12)
                for name, g in want[2].items())
    same = got[1] == want[1] and abs(got[0] - want[0]) <= 1e-5 * abs(want[0]) and worst < TOLERANCE
    results = {"model": a.model, "data": str(a.data), "rank": a.rank, "row_tokens": tokens,
               "loss": {"default": want[0], "chunked": got[0]}, "ntoks": {"default": want[1], "chunked": got[1]},
               "worst_relative_gradient_difference": worst, "tolerance": TOLERANCE, "same": same,
               "seconds": {"default": round(want[3], 1), "chunked": round(got[3], 1)}}
    header.write(a.out, head, {"what": "LOSS=chunked vs mlx-lm's default_loss on long retrieval-augmented "
                                       "training rows: loss, token count, LoRA gradients", "results": results})
    print(json.dumps(results, indent=1))
    print(f"wrote {a.out}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
