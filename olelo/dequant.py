"""Quantized layers that multiply through a dequantized copy of their weight.

A QuantizedLinear multiplies with mx.quantized_matmul, which reads the packed weight
directly. That is what decoding wants (a few rows at a time), but training multiplies
hundreds to thousands of rows per layer, forward and backward, and there a plain
matmul on the weight dequantized for the occasion can be faster (on CUDA it was: NOTES,
issue 15 fifth pass). This module swaps a model's QuantizedLinear
layers for a subclass that, from MIN_ROWS rows up, dequantizes the weight and uses a
dense matmul. Its backward dequantizes again instead of keeping the dense copy. Yet a
compiled step makes the copies ahead of their multiplies, so several are alive at once:
on the 4B shape the step needs 4.3 GB more than with quantized_matmul at batch 1-2.
With ORDERED each copy waits for the array it multiplies (mx.depends on the layer's
input, or on the cotangent in the backward): on CUDA that needed 1.4 GB less at batch
1-2 but cost 6-20 % of the tok/s at batch 4-8, where dense is worth using (NOTES, issue 15
eighth pass), so it is off; quantized_matmul needs 2.9 GB less again at batch 1-2.

    from olelo import dequant
    n = dequant.use_dequantized_matmul(model)     # after loading, before LoRA or after

use_dequantized_matmul(model, head=True) also switches the tied output head
(QuantizedEmbedding.as_linear): the lab's chunked loss calls it once per 64-token chunk,
so Gemma 3's 262,144 x hidden head is dequantized for every chunk (1.3 GB dense for the
4B shape in bf16). On CUDA that was still faster than quantized_matmul, and switching
the head alone gained more than switching the body alone.
The results equal quantized_matmul's up to the dense matmul's rounding
(tests/test_dequant.py).
"""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn

# Fewer rows than this (decoding, tiny batches) keep quantized_matmul.
MIN_ROWS = 64

# True: each dense copy waits for the input (or cotangent) it multiplies (less memory,
# slower on CUDA at batch 4-8; see above). Benchmarks: gpu_train_mlx.py --dequant-ordered.
ORDERED = False

# make's QMATMUL / train.py's --quantized-matmul (olelo.config.QUANTIZED_MATMULS).
# auto: dense on CUDA, where it made a LoRA step of gemma-3-4b's 4-bit shape 1.7x (batch 8)
# and 2.7x (batch 16) as fast as quantized_matmul (NOTES, issue 15 fifth pass);
# quantized elsewhere: Metal is not measured, and the dense path costs memory a Mac
# may not have.

def resolve(name: str) -> str:
    """quantized or dense for a --quantized-matmul choice, on this machine's backend."""
    if name == "auto":
        return "dense" if mx.cuda.is_available() else "quantized"
    return name


def is_quantized(model: nn.Module) -> bool:
    return any(isinstance(m, (nn.QuantizedLinear, nn.QuantizedEmbedding)) for _, m in model.named_modules())


def resolve_compute_dtype(name: str, model: nn.Module) -> str:
    """model or float32 for a --compute-dtype choice (make's COMPUTE_DTYPE).

    auto: float32 for a quantized model on a CPU, the model's own dtype elsewhere. On
    this lab's CPU, mlx's quantized_matmul with bfloat16 scales (and activations) made a
    LoRA step of the 4-bit Gemma 3 270M about 9x as slow as with float32 ones (NOTES,
    "Does the 4-bit model train on a CPU?"); the packed 4-bit weights stay as they are."""
    if name == "auto":
        return "float32" if is_quantized(model) and mx.default_device().type == mx.cpu else "model"
    return name


def apply_compute_dtype(model: nn.Module, choice: str) -> int:
    """With choice float32, cast the model's floating parameters that are not float32
    (scales, biases, norms, ...) to float32, so activations follow; returns how many
    arrays were cast."""
    if choice != "float32":
        return 0
    from mlx.utils import tree_flatten

    n = sum(1 for _, v in tree_flatten(model.parameters())
            if mx.issubdtype(v.dtype, mx.floating) and v.dtype != mx.float32)
    model.set_dtype(mx.float32)
    return n


def _dense_weight(layer, operand):
    """layer's weight, dequantized in operand's dtype; with ORDERED, only once operand is there."""
    weight = mx.depends([layer["weight"]], [operand])[0] if ORDERED else layer["weight"]
    return mx.dequantize(weight, layer["scales"], layer.get("biases"), group_size=layer.group_size,
                         bits=layer.bits, mode=layer.mode).astype(operand.dtype)


def _dense_matmul(layer, x):
    """x @ dequantize(layer's weight).T, with a backward (cotangent @ dense) that
    dequantizes again; layer has weight/scales/biases/group_size/bits/mode as
    nn.QuantizedLinear does."""

    @mx.custom_function
    def matmul(x):
        return x @ _dense_weight(layer, x).T

    @matmul.vjp
    def matmul_vjp(primals, cotangent, output):
        cotangent = cotangent[0] if isinstance(cotangent, (list, tuple)) else cotangent
        return (cotangent @ _dense_weight(layer, cotangent),)

    return matmul(x)


class DequantizedMatmulLinear(nn.QuantizedLinear):
    """nn.QuantizedLinear whose forward, from MIN_ROWS rows up, is x @ dequantize(W).T,
    with a backward that dequantizes W again (the dense copy is not kept for it)."""

    def __call__(self, x):
        if x.size // x.shape[-1] < MIN_ROWS:
            return super().__call__(x)
        y = _dense_matmul(self, x)
        if "bias" in self:
            y = y + self["bias"]
        return y


class DequantizedMatmulEmbedding(nn.QuantizedEmbedding):
    """nn.QuantizedEmbedding whose as_linear (the tied output head), from MIN_ROWS rows
    up, multiplies through the dequantized weight as DequantizedMatmulLinear does."""

    def as_linear(self, x):
        if x.size // x.shape[-1] < MIN_ROWS:
            return super().as_linear(x)
        return _dense_matmul(self, x)


def apply(model: nn.Module, choice: str) -> int:
    """The lab's --quantized-matmul, resolved (quantized or dense), applied to model: dense
    switches the linear layers and the tied head; returns how many layers were switched."""
    return use_dequantized_matmul(model, head=True) if choice == "dense" else 0


def use_dequantized_matmul(model: nn.Module, head: bool = False) -> int:
    """Switch every nn.QuantizedLinear in model (LoRA's wrapped ones included) to
    DequantizedMatmulLinear, in place, and with head=True every nn.QuantizedEmbedding
    to DequantizedMatmulEmbedding (the tied output head); returns how many were switched."""
    n = 0
    for _, module in model.named_modules():
        if type(module) is nn.QuantizedLinear:
            module.__class__ = DequantizedMatmulLinear
            n += 1
        elif head and type(module) is nn.QuantizedEmbedding:
            module.__class__ = DequantizedMatmulEmbedding
            n += 1
    return n
