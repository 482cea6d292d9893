"""A 4-bit model whose QuantizedLinear layers multiply through dequantized weights gives
mlx-lm's loss and LoRA gradients as quantized_matmul does (float32: to 1e-5)."""

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest
from mlx.utils import tree_flatten, tree_map
from mlx_lm import load
from mlx_lm.tuner.trainer import default_loss
from mlx_lm.tuner.utils import linear_to_lora_layers

from olelo import dequant


def _lora_4bit(folder):
    model, _ = load(str(folder))
    model.freeze()
    linear_to_lora_layers(model, 4, {"rank": 4, "scale": 20.0, "dropout": 0.0})
    mx.random.seed(1)  # LoRA's B starts at zero: move every adapter weight so it matters
    model.update(tree_map(lambda p: mx.random.normal(p.shape, dtype=p.dtype) * 0.05,
                          model.trainable_parameters()))
    return model


def _loss_and_grads(model, batch, lengths):
    (loss, ntoks), grads = nn.value_and_grad(model, default_loss)(model, batch, lengths)
    mx.eval(loss, ntoks, grads)
    return loss.item(), dict(tree_flatten(grads))


def _assert_same(got, want):
    """(loss, gradients) equal: the loss to 1e-5 relative, each gradient to 1e-5 of its largest value."""
    assert got[0] == pytest.approx(want[0], rel=1e-5)
    assert got[1].keys() == want[1].keys() and want[1]
    for name, g in want[1].items():
        scale = max(mx.abs(g).max().item(), 1e-12)
        assert mx.abs(got[1][name] - g).max().item() / scale < 1e-5, name


def _batch(vocab, rows):
    rng = np.random.default_rng(0)
    batch = mx.array(rng.integers(1, vocab, size=(2, rows // 2 + 1)))
    return batch, mx.array([[3, rows // 2], [0, rows // 2 - 5]])  # a masked prompt, a padded row


@pytest.mark.parametrize("rows", [16, 96])  # below MIN_ROWS: quantized_matmul; above: dense
def test_loss_and_lora_gradients_equal_quantized_matmul(tiny_model_4bit, rows):
    model = _lora_4bit(tiny_model_4bit)
    batch, lengths = _batch(model.args.vocab_size, rows)
    want = _loss_and_grads(model, batch, lengths)
    switched = dequant.use_dequantized_matmul(model)
    quantized = [m for _, m in model.named_modules() if isinstance(m, nn.QuantizedLinear)]
    assert switched == len(quantized) > 0
    assert all(type(m) is dequant.DequantizedMatmulLinear for m in quantized)
    _assert_same(_loss_and_grads(model, batch, lengths), want)


def test_the_dense_path_runs_from_min_rows_and_its_backward_is_its_own(tiny_model_4bit):
    """Above MIN_ROWS no quantized_matmul is left in the forward or the backward: the
    input gradient through one switched layer equals cotangent @ dequantize(W)."""
    model = _lora_4bit(tiny_model_4bit)
    layer = next(m for _, m in model.named_modules() if type(m) is nn.QuantizedLinear)
    dequant.use_dequantized_matmul(model)
    x = mx.random.normal((dequant.MIN_ROWS, layer.weight.shape[1] * 32 // layer.bits))
    dense = mx.dequantize(layer.weight, layer.scales, layer.get("biases"), group_size=layer.group_size,
                          bits=layer.bits)
    cot = mx.random.normal((dequant.MIN_ROWS, dense.shape[0]))
    out, vjp = mx.vjp(layer, [x], [cot])
    assert mx.allclose(out[0], x @ dense.T, rtol=1e-5, atol=1e-5)
    assert mx.allclose(vjp[0], cot @ dense, rtol=1e-5, atol=1e-5)
    # a wrong backward (e.g. scaled) would not pass: compare with quantized_matmul's own vjp
    ref = mx.vjp(lambda v: mx.quantized_matmul(v, layer.weight, layer.scales, layer.get("biases"),
                                                 transpose=True, group_size=layer.group_size,
                                                 bits=layer.bits), [x], [cot])[1][0]
    assert mx.allclose(vjp[0], ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("ordered", [False, True])
def test_grad_checkpoint_and_compile_keep_the_gradients(tiny_model_4bit, monkeypatch, ordered):
    """Through mlx-lm's grad_checkpoint and a compiled step, as the trainer runs it; with
    and without each dense copy waiting for its operand (ORDERED)."""
    from mlx_lm.tuner.trainer import grad_checkpoint

    monkeypatch.setattr(dequant, "ORDERED", ordered)
    model = _lora_4bit(tiny_model_4bit)
    batch, lengths = _batch(model.args.vocab_size, 96)
    want = _loss_and_grads(model, batch, lengths)
    dequant.use_dequantized_matmul(model)
    block = type(model.layers[0])
    call = block.__call__
    grad_checkpoint(model.layers[0])  # patches the class: put it back for the other tests
    try:
        step = mx.compile(lambda b, l: nn.value_and_grad(model, default_loss)(model, b, l), inputs=[model.state])
        (loss, _), grads = step(batch, lengths)
        mx.eval(loss, grads)
    finally:
        block.__call__ = call
    _assert_same((loss.item(), dict(tree_flatten(grads))), want)


def test_the_tied_head_too_keeps_loss_and_gradients(tiny_model_4bit):
    """head=True also switches the tied output head (QuantizedEmbedding.as_linear), which
    then multiplies through its dequantized weight; head=False leaves it alone."""
    model = _lora_4bit(tiny_model_4bit)
    (embed,) = [m for _, m in model.named_modules() if isinstance(m, nn.QuantizedEmbedding)]
    assert type(embed) is nn.QuantizedEmbedding
    batch, lengths = _batch(model.args.vocab_size, 2 * dequant.MIN_ROWS)
    want = _loss_and_grads(model, batch, lengths)
    dequant.use_dequantized_matmul(model, head=False)
    assert type(embed) is nn.QuantizedEmbedding
    plain = _loss_and_grads(model, batch, lengths)
    n = dequant.use_dequantized_matmul(model, head=True)
    assert n == 1  # the linear layers were switched already: only the head is left
    assert type(embed) is dequant.DequantizedMatmulEmbedding
    got = _loss_and_grads(model, batch, lengths)
    # the head's gradient flows into every LoRA adapter: a wrong head backward shows
    assert want[1].keys() == plain[1].keys()
    _assert_same(got, want)


def _compiled_step_extra_peak(n_layers, dense, dim=1024, rows=128):
    """Peak memory above what is in use before, of a compiled forward + input gradient
    through n_layers 4-bit layers (rows x dim), multiplying dense or with quantized_matmul."""
    mx.random.seed(0)
    layers = [nn.QuantizedLinear(dim, dim, bias=False, group_size=64, bits=4) for _ in range(n_layers)]
    if dense:
        for layer in layers:
            layer.__class__ = dequant.DequantizedMatmulLinear

    def f(x):
        for layer in layers:
            x = nn.gelu(layer(x))
        return x.sum()

    step = mx.compile(mx.grad(f))
    x = mx.random.normal((rows, dim))
    mx.eval(x, [layer.parameters() for layer in layers], step(x))
    mx.reset_peak_memory()
    before = mx.get_active_memory()
    mx.eval(step(x))
    return mx.get_peak_memory() - before


def test_ordered_dense_copies_are_not_all_alive_at_once_in_a_compiled_step(monkeypatch):
    # With ORDERED each layer's dense copy (dim x dim float32, 4 MB) waits for its operand,
    # so going from 4 to 16 layers adds about what it adds to quantized_matmul's step
    # (activations), not 12 more copies. Measured (mlx 0.32.4, CPU), in copies: quantized
    # 8.8, dense 6.4; without the wait (ORDERED = False, the default) dense grew by 17.1.
    monkeypatch.setattr(dequant, "ORDERED", True)
    copy = 1024 * 1024 * 4
    grow = {dense: _compiled_step_extra_peak(16, dense) - _compiled_step_extra_peak(4, dense)
            for dense in (False, True)}
    assert grow[True] < grow[False] + 2 * copy, {k: v / copy for k, v in grow.items()}
