"""A memory-lean cross-entropy for LoRA training with large vocabularies.

mlx-lm's default loss computes the logits of the whole batch at once:
batch x length x vocabulary values (262,144 for Gemma 3), plus their gradient.
This loss computes the same number in sequence chunks: the model's body gives the
final hidden states, and each chunk goes through the output head; from that chunk's
logits come both its cross-entropy and the gradient with respect to its hidden
states (a fused forward-backward: the head runs two matmuls per chunk, as the
default loss's two, and the backward recomputes nothing). Only a few chunks'
logits exist at a time (see CHUNK_TOKENS), not the whole batch's. The result equals mlx-lm's
`default_loss` up to the order of the floating-point sum (tests/test_lean_loss.py).

    from lean_loss import chunked_loss        # same signature as mlx-lm's default_loss
    loss, ntoks = chunked_loss(model, batch, lengths)

`python -m olelo.lean_loss --model M` checks that a model's body and head
reproduce its logits (the condition for using this loss) and prints the answer.
"""

from __future__ import annotations

import argparse
from functools import partial

import mlx.core as mx
import mlx.nn as nn
from mlx.utils import tree_flatten

import olelo

# Tokens (batch x sequence positions) whose logits are computed together. At
# Gemma 3's vocabulary, 64 tokens of float32 logits are 67 MB. MLX dispatches
# operations ahead of their completion (allocating their outputs), so about seven
# chunk-sized arrays (logits and their gradient, of ~3.5 chunks) are alive at once
# whatever the graph's order: the loss's own memory is ~7 x this, whatever the batch.
# Real Gemma 3 270M on the CPU, batch 2 x 512, compiled step: peak 3.17 / 3.78 / 4.58 GB
# for 64 / 128 / 256 (default loss 7.06 GB), all faster than the default loss, 64 as fast
# as 128 within noise (the head alone: 64 is 12 % slower than 128, 32 35 % slower, as
# its weights are read once per chunk).
CHUNK_TOKENS = 64


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


def _chunk(head_fn, h, targets, mask, grad: bool):
    """(sum of cross-entropy * mask, its gradient with respect to h, or None) for one
    chunk, from one computation of the chunk's logits. The cross-entropy is the default
    loss's: logsumexp(logits) - logits[target]; its gradient with respect to the logits
    is softmax - one_hot(target) = exp(logits - logsumexp) - one_hot, on unmasked tokens."""
    logits = head_fn(h)
    t = targets[..., None]
    lse = mx.logsumexp(logits, axis=-1, keepdims=True)
    picked = mx.take_along_axis(logits, t, axis=-1)
    ce = ((lse - picked)[..., 0] * mask).astype(mx.float32).sum()
    if not grad:
        return ce, None
    w = mask[..., None].astype(logits.dtype)
    dlogits = mx.exp(logits - lse) * w
    # The target's entry: p_t - 1 (p_t from the (B, w, 1) values, no second pass over the vocabulary).
    dlogits = mx.put_along_axis(dlogits, t, (mx.exp(picked - lse) - 1) * w, axis=-1)
    _, (dh,) = mx.vjp(head_fn, [h], [dlogits])  # the head's backward: one matmul, as the default loss's
    return ce, dh


def _ce_sum(head_fn, targets, mask, width, grad: bool = True):
    """sum(cross-entropy * mask) as a function of the hidden states.

    With grad, a custom function whose forward computes, chunk by chunk, the loss and
    its gradient with respect to the hidden states from the same logits, and returns
    both; its vjp only scales that gradient by the cotangent, so the head runs two
    matmuls per chunk (logits, gradient), as in the default loss, and the backward
    recomputes nothing. Without grad (validation), the plain forward.

    Each chunk's slice of the hidden states waits (mx.depends) for the previous chunk's
    results, so the graph's evaluation order is chunk by chunk. That does not bound the
    memory alone: MLX dispatches operations (allocating their outputs) ahead of their
    completion, so several chunks' logits can be alive at once; CHUNK_TOKENS is sized
    with that in mind (see there)."""
    bounds = [(s, s + width) for s in range(0, targets.shape[1], width)]

    def chunks(hidden):
        total, dhs, after = mx.array(0.0, dtype=mx.float32), [], []
        for s, e in bounds:
            h = mx.depends([hidden[:, s:e]], after)[0] if after else hidden[:, s:e]
            ce, dh = _chunk(head_fn, h, targets[:, s:e], mask[:, s:e], grad)
            total = total + ce
            after = [total] + ([dh] if grad else [])
            dhs.append(dh)
        return (total, mx.concatenate(dhs, axis=1)) if grad else total

    if not grad:
        return chunks

    @mx.custom_function
    def ce_sum(hidden):
        return chunks(hidden)

    @ce_sum.vjp
    def ce_sum_vjp(primals, cotangents, outputs):
        # d total / d hidden was computed in the forward (outputs[1]); nothing uses the
        # gradient output itself, so its cotangent is ignored.
        # The cotangent of the float32 total would make a bfloat16 model's gradient float32.
        return outputs[1] * cotangents[0].astype(outputs[1].dtype)

    return ce_sum


def counted_positions(lengths, n: int):
    """(mask, count) of the n target positions mlx-lm's default_loss counts: those from
    each row's lengths[:, 0] (the prompt's end, when masked) to lengths[:, 1]."""
    steps = mx.arange(1, n + 1)
    mask = mx.logical_and(steps >= lengths[:, 0:1], steps <= lengths[:, 1:])
    return mask, mask.sum()


def chunked_loss(model, batch, lengths, chunk_tokens: int = CHUNK_TOKENS, *, grad: bool = True):
    """mlx-lm's default_loss(model, batch, lengths), computed chunk by chunk. The
    output head must be frozen (LoRA, DoRA, QLoRA): its weights get no gradient here.
    grad=False (chunked_loss.validation) leaves out the gradient's work, for evaluation
    only: differentiating it would keep every chunk's logits for the backward."""
    body, head_module, head_fn = split_head(model)
    if tree_flatten(head_module.trainable_parameters()):
        raise olelo.UserError("LOSS=chunked needs a frozen output head (LoRA/DoRA); "
                              "use LOSS=default for full fine-tuning")
    inputs, targets = batch[:, :-1], batch[:, 1:]
    hidden = body(inputs)
    mask, ntoks = counted_positions(lengths, targets.shape[1])
    width = max(1, chunk_tokens // targets.shape[0])
    out = _ce_sum(head_fn, targets, mask, width, grad)(hidden)
    total = out[0] if grad else out
    return total / ntoks, ntoks


# The trainer validates with this (no gradient is taken there).
chunked_loss.validation = partial(chunked_loss, grad=False)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="mlx-lm model folder or hub id")
    args = p.parse_args(argv)
    model, _ = olelo.load_model(args.model)
    check_split(model)
    print(f"{args.model}: logits == head(body(x)); LOSS=chunked can be used")


def resolve(name: str, fine_tune_type: str = "lora") -> str:
    """LOSS=auto's choice, made on the machine that trains: the chunked loss on the CPU,
    where it was measured to win (real Gemma 3 270M, float32, batch 2-4: peak -55 ... -63 %,
    and faster), for adapters only (a full fine-tune trains the head, which this loss
    leaves frozen); mlx-lm's default loss on a GPU (CUDA: the chunked one was slower at
    270M and saved at most 11 % on the 4B shape; Metal: not measured). NOTES.md, issue 15."""
    if name != "auto":
        return name
    on_cpu = mx.default_device().type == mx.DeviceType.cpu
    return "chunked" if on_cpu and fine_tune_type != "full" else "default"


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
