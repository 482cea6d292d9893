"""A memory-lean cross-entropy for LoRA training with large vocabularies.

mlx-lm's default loss computes the logits of the whole batch at once:
batch x length x vocabulary values (262,144 for Gemma 3), plus what their
gradient needs. This loss computes the same number in sequence chunks: the
model's body gives the final hidden states, and each chunk goes through the output
head and the cross-entropy inside a gradient checkpoint, so at most one chunk's
logits exist at a time, forward or backward. The result equals mlx-lm's
`default_loss` up to the order of the floating-point sum (tests/test_lean_loss.py).

    from lean_loss import chunked_loss        # same signature as mlx-lm's default_loss
    loss, ntoks = chunked_loss(model, batch, lengths)

`python scripts/lean_loss.py --model M` checks that a model's body and head
reproduce its logits (the condition for using this loss) and prints the answer.
"""

from __future__ import annotations

import argparse
from functools import partial

import mlx.core as mx
import mlx.nn as nn

import olelo

# Tokens (batch x sequence positions) whose logits are computed together. At
# Gemma 3's vocabulary, 512 tokens of float32 logits are 0.5 GB.
CHUNK_TOKENS = 512


def split_head(model):
    """(body, head_module, head_fn) of an mlx-lm language model: body(inputs) gives the
    final normalised hidden states and head_fn(hidden) the logits, computed by
    head_module's weights (an untied lm_head, or the tied input embedding)."""
    lm = getattr(model, "language_model", model)  # multimodal wrappers (gemma3) hold the text model
    body = getattr(lm, "model", None)
    if body is None or not hasattr(body, "embed_tokens"):
        raise olelo.UserError(f"LOSS=chunked: {type(model).__module__} has no model.model.embed_tokens "
                              "body to split from its head; use LOSS=default")
    tied = getattr(lm, "tie_word_embeddings", None)  # gemma3 keeps it on the model, llama in args
    if tied is None:
        tied = getattr(getattr(lm, "args", None), "tie_word_embeddings", not hasattr(lm, "lm_head"))
    if not tied:
        return body, lm.lm_head, lm.lm_head
    return body, body.embed_tokens, body.embed_tokens.as_linear


def check_split(model, vocab_probe: int = 8) -> None:
    """Refuse models whose logits are not head(body(x)) (e.g. logit soft-capping or
    scaling after the head), by comparing both on a few tokens."""
    body, _, head_fn = split_head(model)
    probe = mx.arange(1, vocab_probe + 1)[None]
    want = model(probe)
    got = head_fn(body(probe))
    if want.shape != got.shape or not mx.allclose(want, got, rtol=1e-4, atol=1e-4).item():
        raise olelo.UserError(f"LOSS=chunked: {type(model).__module__}'s logits are not its head applied "
                              "to its body's output (soft-capping or scaling?); use LOSS=default")


def _chunk_ce(head_fn, hidden, targets, mask):
    ce = nn.losses.cross_entropy(head_fn(hidden), targets) * mask
    return ce.astype(mx.float32).sum()


def chunked_loss(model, batch, lengths, chunk_tokens: int = CHUNK_TOKENS):
    """mlx-lm's default_loss(model, batch, lengths), computed chunk by chunk."""
    body, head_module, head_fn = split_head(model)
    inputs, targets = batch[:, :-1], batch[:, 1:]
    hidden = body(inputs)
    steps = mx.arange(1, targets.shape[1] + 1)
    mask = mx.logical_and(steps >= lengths[:, 0:1], steps <= lengths[:, 1:])
    ntoks = mask.sum()
    width = max(1, chunk_tokens // targets.shape[0])
    total = mx.array(0.0, dtype=mx.float32)
    for start in range(0, targets.shape[1], width):
        end = start + width
        # Targets and mask are closed over: a checkpoint differentiates all its inputs,
        # and integer targets have no gradient. Checkpointed with respect to the head's
        # trainable parameters too, so full fine-tuning of a tied embedding still gets
        # the head's share of the gradient.
        chunk_ce = nn.utils.checkpoint(
            head_module, partial(_chunk_ce, head_fn, targets=targets[:, start:end], mask=mask[:, start:end]))
        total = total + chunk_ce(hidden[:, start:end])
    return total / ntoks, ntoks


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="mlx-lm model folder or hub id")
    args = p.parse_args(argv)
    model, _ = olelo.load_model(args.model)
    check_split(model)
    print(f"{args.model}: logits == head(body(x)); LOSS=chunked can be used")


if __name__ == "__main__":
    olelo.run_main(main)
