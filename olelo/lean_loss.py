"""A memory-lean cross-entropy for LoRA training with large vocabularies.

mlx-lm's default loss computes the logits of the whole batch at once:
batch x length x vocabulary values (262,144 for Gemma 3), plus what their
gradient needs. This loss computes the same number in sequence chunks: the
model's body gives the final hidden states, and each chunk goes through the output
head and the cross-entropy in turn, forward and backward (the backward pass
recomputes a chunk's logits), so at most one chunk's logits exist at a time. The result equals mlx-lm's
`default_loss` up to the order of the floating-point sum (tests/test_lean_loss.py).

    from lean_loss import chunked_loss        # same signature as mlx-lm's default_loss
    loss, ntoks = chunked_loss(model, batch, lengths)

`python -m olelo.lean_loss --model M` checks that a model's body and head
reproduce its logits (the condition for using this loss) and prints the answer.
"""

from __future__ import annotations

import argparse

import mlx.core as mx
import mlx.nn as nn
from mlx.utils import tree_flatten

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


def _ce_sum(head_fn, targets, mask, width):
    """sum(cross-entropy * mask) as a function of the hidden states, with its own
    gradient. Each chunk's work waits (mx.depends) for the previous chunk's result,
    forward and backward, so one chunk's logits exist at a time: left alone, the
    scheduler may run every chunk's recomputation at once and keep all their logits."""
    bounds = [(s, s + width) for s in range(0, targets.shape[1], width)]

    @mx.custom_function
    def ce_sum(hidden):
        total = mx.array(0.0, dtype=mx.float32)
        for s, e in bounds:
            h = mx.depends([hidden[:, s:e]], [total])[0] if s else hidden[:, s:e]
            total = total + _chunk_ce(head_fn, h, targets[:, s:e], mask[:, s:e])
        return total

    @ce_sum.vjp
    def ce_sum_vjp(primals, cotangent, output):
        hidden = primals  # a one-argument custom function gets its argument itself
        grads, prev = [], cotangent
        for s, e in bounds:
            h = mx.depends([hidden[:, s:e]], [prev])[0]
            logits = head_fn(h)
            # d ce / d logits = softmax - one_hot(target), on the unmasked positions
            grad = mx.softmax(logits.astype(mx.float32), axis=-1)
            t = targets[:, s:e, None]
            grad = mx.put_along_axis(grad, t, mx.take_along_axis(grad, t, axis=-1) - 1.0, axis=-1)
            grad = grad * (mask[:, s:e, None] * cotangent)
            _, (dh,) = mx.vjp(head_fn, [h], [grad.astype(logits.dtype)])
            grads.append(dh)
            prev = dh
        return mx.concatenate(grads, axis=1)

    return ce_sum


def chunked_loss(model, batch, lengths, chunk_tokens: int = CHUNK_TOKENS):
    """mlx-lm's default_loss(model, batch, lengths), computed chunk by chunk. The
    output head must be frozen (LoRA, DoRA, QLoRA): its weights get no gradient here."""
    body, head_module, head_fn = split_head(model)
    if tree_flatten(head_module.trainable_parameters()):
        raise olelo.UserError("LOSS=chunked needs a frozen output head (LoRA/DoRA); "
                              "use LOSS=default for full fine-tuning")
    inputs, targets = batch[:, :-1], batch[:, 1:]
    hidden = body(inputs)
    steps = mx.arange(1, targets.shape[1] + 1)
    mask = mx.logical_and(steps >= lengths[:, 0:1], steps <= lengths[:, 1:])
    ntoks = mask.sum()
    width = max(1, chunk_tokens // targets.shape[0])
    total = _ce_sum(head_fn, targets, mask, width)(hidden)
    return total / ntoks, ntoks


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="mlx-lm model folder or hub id")
    args = p.parse_args(argv)
    model, _ = olelo.load_model(args.model)
    check_split(model)
    print(f"{args.model}: logits == head(body(x)); LOSS=chunked can be used")


def loss_function(name: str, model):
    """The loss trainer.train uses for training and validation. chunked first checks
    that the model's logits are its head applied to its body (check_split)."""
    if name == "default":
        from mlx_lm.tuner.trainer import default_loss

        return default_loss
    check_split(model)
    return chunked_loss

if __name__ == "__main__":
    olelo.run_main(main)
