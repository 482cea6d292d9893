# Served NOTES.md: 2026-11-26 (GPU) "Issue 15 on the H100".
"""Diagnostic: how much memory does the chunked loss's custom function need, forward
alone and with its backward, compared with one chunk's logits? On a random gemma3_text
model with Gemma 3's vocabulary (262,144) and a tiny body (hidden 64, 6 layers), so
almost all memory above the weights is the loss's.

    python bench/campaigns/lean_loss_forward_probe.py --chunk-tokens 128 --batch 4 --seq 256

Prints the peak above the memory in use before the call (mx.get_peak_memory), for the
forward (`fwd`) and for the vector-Jacobian product (`vjp`), beside the size of one
chunk's and of the whole batch's float32 logits. If the chunks ran one at a time the
peak would be a small multiple of one chunk's logits, whatever the batch.
"""

from __future__ import annotations

import argparse
import json

import mlx.core as mx
import numpy as np

import olelo
from olelo import lean_loss

VOCAB = 262144


def peak_mb(ce_sum, hidden, mode: str) -> float:
    """ce_sum(grad) is lean_loss._ce_sum's function: the loss alone, or (loss, its gradient)."""
    mx.reset_peak_memory()
    before = mx.get_active_memory()
    if mode == "fwd":
        out = ce_sum(False)(hidden)
    else:
        out = mx.vjp(lambda h: ce_sum(True)(h)[0], [hidden], [mx.array(1.0)])[1][0]
    mx.eval(out)
    return round((mx.get_peak_memory() - before) / 1e6, 1)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--chunk-tokens", type=int, default=lean_loss.CHUNK_TOKENS)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--seq", type=int, default=256)
    a = p.parse_args(argv)
    from mlx_lm.models.gemma3_text import Model, ModelArgs

    mx.random.seed(0)
    cfg = dict(model_type="gemma3_text", hidden_size=64, intermediate_size=128, num_hidden_layers=6,
               num_attention_heads=2, num_key_value_heads=1, head_dim=32, query_pre_attn_scalar=32,
               sliding_window=512, vocab_size=VOCAB, rms_norm_eps=1e-6, rope_theta=1e6, rope_local_base_freq=1e4,
               sliding_window_pattern=6, max_position_embeddings=4096)
    model = Model(ModelArgs.from_dict(cfg))
    model.tie_word_embeddings = True
    model.pop("lm_head")
    model.freeze()
    mx.eval(model.parameters())
    batch = mx.array(np.random.default_rng(0).integers(1, VOCAB, size=(a.batch, a.seq + 1)))
    body, _, head_fn = lean_loss.split_head(model)
    targets = batch[:, 1:]
    hidden = body(batch[:, :-1])
    mx.eval(hidden)
    width = max(1, a.chunk_tokens // a.batch)

    def f(grad):
        return lean_loss._ce_sum(head_fn, targets, mx.ones(targets.shape), width, grad)
    print(json.dumps({"chunk_tokens": a.chunk_tokens, "batch": a.batch, "seq": a.seq,
                      "chunk_logits_mb": round(a.batch * min(width, a.seq) * VOCAB * 4 / 1e6, 1),
                      "batch_logits_mb": round(a.batch * a.seq * VOCAB * 4 / 1e6, 1),
                      "fwd_peak_mb": peak_mb(f, hidden, "fwd"), "vjp_peak_mb": peak_mb(f, hidden, "vjp")}))
    return 0


if __name__ == "__main__":
    olelo.run_main(main)
