"""Quantized layers that multiply through a dequantized copy of their weight.

A QuantizedLinear multiplies with mx.quantized_matmul, which reads the packed weight
directly. That is what decoding wants (a few rows at a time), but training multiplies
hundreds to thousands of rows per layer, forward and backward, and there a plain
matmul on the weight dequantized for the occasion may be faster (on CUDA, MLX's
quantized kernels are tuned for few rows). This module swaps a model's QuantizedLinear
layers for a subclass that, from MIN_ROWS rows up, dequantizes the weight and uses a
dense matmul. Its backward dequantizes again instead of keeping the dense copy, so no
dense weight outlives its layer's forward or backward: memory stays that of 4-bit
weights plus one layer's dense weight at a time.

    from olelo import dequant
    n = dequant.use_dequantized_matmul(model)     # after loading, before LoRA or after

The tied output head (QuantizedEmbedding.as_linear) is left alone: dequantizing
Gemma 3's 262,144 x hidden head would cost more than it saves per loss chunk.
The results equal quantized_matmul's up to the dense matmul's rounding
(tests/test_dequant.py).
"""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn

# Fewer rows than this (decoding, tiny batches) keep quantized_matmul.
MIN_ROWS = 64


def _dense_weight(layer, dtype):
    return mx.dequantize(layer["weight"], layer["scales"], layer.get("biases"), group_size=layer.group_size,
                         bits=layer.bits, mode=layer.mode).astype(dtype)


class DequantizedMatmulLinear(nn.QuantizedLinear):
    """nn.QuantizedLinear whose forward, from MIN_ROWS rows up, is x @ dequantize(W).T,
    with a backward that dequantizes W again (the dense copy is not kept for it)."""

    def __call__(self, x):
        if x.size // x.shape[-1] < MIN_ROWS:
            return super().__call__(x)

        @mx.custom_function
        def matmul(x):
            return x @ _dense_weight(self, x.dtype).T

        @matmul.vjp
        def matmul_vjp(primals, cotangent, output):
            cotangent = cotangent[0] if isinstance(cotangent, (list, tuple)) else cotangent
            return (cotangent @ _dense_weight(self, cotangent.dtype),)

        y = matmul(x)
        if "bias" in self:
            y = y + self["bias"]
        return y


def use_dequantized_matmul(model: nn.Module) -> int:
    """Switch every nn.QuantizedLinear in model (LoRA's wrapped ones included) to
    DequantizedMatmulLinear, in place; returns how many were switched."""
    n = 0
    for _, module in model.named_modules():
        if type(module) is nn.QuantizedLinear:
            module.__class__ = DequantizedMatmulLinear
            n += 1
    return n
