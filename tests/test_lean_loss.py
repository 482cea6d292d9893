"""The chunked cross-entropy equals mlx-lm's default loss: value, token count and
gradients, for LoRA and full fine-tuning, with and without prompt masking."""

import re

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest
from mlx.utils import tree_flatten, tree_map
from mlx_lm import load
from mlx_lm.tuner.trainer import default_loss
from mlx_lm.tuner.utils import linear_to_lora_layers

from olelo import lean_loss
import olelo


def _batch(vocab, seed=0):
    rng = np.random.default_rng(seed)
    batch = mx.array(rng.integers(1, vocab, size=(3, 23)))
    # (prompt offset, length) per row: whole sequence, masked prompt, short padded row
    lengths = mx.array([[1, 22], [7, 22], [4, 12]])
    return batch, lengths


def _loss_and_grads(model, loss_fn, batch, lengths):
    (loss, ntoks), grads = nn.value_and_grad(model, loss_fn)(model, batch, lengths)
    mx.eval(loss, ntoks, grads)
    return loss.item(), ntoks.item(), dict(tree_flatten(grads))


def _assert_same(model, batch, lengths, chunk_tokens):
    want = _loss_and_grads(model, default_loss, batch, lengths)
    got = _loss_and_grads(model, lambda m, b, l: lean_loss.chunked_loss(m, b, l, chunk_tokens), batch, lengths)
    assert got[1] == want[1]
    assert got[0] == pytest.approx(want[0], rel=1e-5)
    assert got[2].keys() == want[2].keys() and want[2]
    for name, g in want[2].items():
        scale = max(mx.abs(g).max().item(), 1e-12)
        assert mx.abs(got[2][name] - g).max().item() / scale < 1e-5, name


def _lora(model_dir, dtype=None):
    model, _ = load(str(model_dir))
    if dtype is not None:
        model.set_dtype(dtype)
    model.freeze()
    linear_to_lora_layers(model, 4, {"rank": 4, "scale": 20.0, "dropout": 0.0})
    # LoRA's B starts at zero: move every adapter weight so the adapters change the logits.
    mx.random.seed(1)
    model.update(tree_map(lambda p: mx.random.normal(p.shape, dtype=p.dtype) * 0.05,
                          model.trainable_parameters()))
    return model


@pytest.mark.parametrize("chunk_tokens", [3, 16, 10_000])
def test_lora_loss_and_gradients_equal_default(tiny_model, chunk_tokens):
    model = _lora(tiny_model)
    batch, lengths = _batch(model.args.vocab_size)
    _assert_same(model, batch, lengths, chunk_tokens)


def test_real_gemma_loss_and_gradients_equal_default(real_model):
    model = _lora(real_model["fast"])  # the float32 copy on Linux: Gemma 3 270M's 262,144-token head
    vocab = lean_loss.split_head(model)[1].weight.shape[0]
    batch, lengths = _batch(vocab, seed=6)
    _assert_same(model, batch, lengths, chunk_tokens=12)


def test_a_bfloat16_model_gets_bfloat16_gradients_close_to_default(tiny_model):
    """Gemma 3 270M converts to bfloat16 (the GPU trains it so): the gradient flowing back into
    the body keeps the body's dtype, as the default loss's does (a float32 one stops MLX's
    astype backward with a type error on the CPU), and the numbers agree to bfloat16's precision."""
    model = _lora(tiny_model, mx.bfloat16)
    batch, lengths = _batch(model.args.vocab_size, seed=3)
    want = _loss_and_grads(model, default_loss, batch, lengths)
    got = _loss_and_grads(model, lambda m, b, l: lean_loss.chunked_loss(m, b, l, 5), batch, lengths)
    assert got[0] == pytest.approx(want[0], rel=1e-2)
    for name, g in want[2].items():
        assert got[2][name].dtype == g.dtype, name
        scale = max(mx.abs(g).max().item(), 1e-12)
        assert mx.abs(got[2][name] - g).max().item() / scale < 5e-2, name


def test_qlora_on_a_quantized_tied_head(tiny_model_4bit):
    model = _lora(tiny_model_4bit)
    assert isinstance(lean_loss.split_head(model)[1], nn.QuantizedEmbedding)
    batch, lengths = _batch(model.args.vocab_size, seed=4)
    _assert_same(model, batch, lengths, chunk_tokens=5)


def test_full_fine_tuning_is_refused(tiny_model):
    model, _ = load(str(tiny_model))  # nothing frozen: the tied head would need a gradient
    batch, lengths = _batch(model.args.vocab_size)
    with pytest.raises(olelo.UserError, match="LOSS=default"):
        lean_loss.chunked_loss(model, batch, lengths)


def test_untied_head_is_used(tiny_model):
    model, _ = load(str(tiny_model))
    lm = model
    lm.lm_head = nn.Linear(lm.args.hidden_size, lm.args.vocab_size, bias=False)
    lm.tie_word_embeddings = False
    lean_loss.check_split(model)
    _, head, _ = lean_loss.split_head(model)
    assert head is lm.lm_head
    lm.lm_head.freeze()
    batch, lengths = _batch(model.args.vocab_size, seed=3)
    _assert_same(model, batch, lengths, chunk_tokens=8)


def test_check_split_refuses_a_model_that_rescales_its_logits(tiny_model):
    model, _ = load(str(tiny_model))
    lean_loss.check_split(model)  # the plain model passes

    class Capped(type(model)):
        def __call__(self, inputs, *a, **k):
            return mx.tanh(super().__call__(inputs, *a, **k) / 30.0) * 30.0

    model.__class__ = Capped
    with pytest.raises(olelo.UserError, match="LOSS=default"):
        lean_loss.check_split(model)


def _matmuls(model, loss_fn, batch, lengths, tmp_path) -> int:
    """Matrix products in the graph of the loss and its gradients (not evaluated)."""
    (loss, _), grads = nn.value_and_grad(model, loss_fn)(model, batch, lengths)
    dot = tmp_path / "graph.dot"
    mx.export_to_dot(str(dot), loss, *[g for _, g in tree_flatten(grads)])
    return len(re.findall(r'label ?= ?"\w*Matmul"', dot.read_text()))


@pytest.mark.parametrize("fixture", ["tiny_model", "tiny_model_4bit"])
def test_the_head_runs_twice_per_chunk_as_in_the_default_loss(fixture, request, tmp_path):
    """The default loss runs the head twice (logits, their gradient); the chunked loss
    the same per chunk: the gradient comes from the forward's logits, not recomputed ones."""
    model = _lora(request.getfixturevalue(fixture))
    batch, lengths = _batch(model.args.vocab_size)
    chunk_tokens = 12  # 3 rows: 4 positions a chunk, 22 positions: 6 chunks
    chunks = -(-(batch.shape[1] - 1) // (chunk_tokens // batch.shape[0]))
    default = _matmuls(model, default_loss, batch, lengths, tmp_path)
    chunked = _matmuls(model, lambda m, b, l: lean_loss.chunked_loss(m, b, l, chunk_tokens), batch, lengths, tmp_path)
    assert chunked - default == 2 * (chunks - 1)


def test_validation_variant_gives_the_same_loss(tiny_model):
    model = _lora(tiny_model)
    batch, lengths = _batch(model.args.vocab_size, seed=5)
    want, want_n = default_loss(model, batch, lengths)
    got, got_n = lean_loss.chunked_loss.validation(model, batch, lengths, 7)
    assert got_n.item() == want_n.item()
    assert got.item() == pytest.approx(want.item(), rel=1e-5)
