"""A variant of mlx-lm's gradient checkpointing, measured on the GPU by
bench/campaigns/gpu_train_mlx.py --grad-checkpoint --checkpoint-after-cotangent.

    checkpoint_after_cotangent(model.layers[0])   # patches the layers' class, as mlx-lm's grad_checkpoint
"""

from __future__ import annotations


def checkpoint_after_cotangent(layer):
    """Like mlx-lm's grad_checkpoint (patches type(layer) once), but each layer's recompute
    waits (mx.depends) for the cotangent arriving from above, not only for the forward's
    output, so the backward cannot recompute several layers ahead of need."""
    import mlx.core as mx
    from mlx.utils import tree_flatten, tree_unflatten

    call = type(layer).__call__

    def checkpointed(self, x, *args, **kwargs):
        flat = tree_flatten(self.trainable_parameters())
        names, leaves = [k for k, _ in flat], [v for _, v in flat]

        def inner(x, *leaves):
            self.update(tree_unflatten(list(zip(names, leaves))))
            return call(self, x, *args, **kwargs)

        @mx.custom_function
        def f(x, *leaves):
            return inner(x, *leaves)

        @f.vjp
        def f_vjp(primals, cotangent, output):
            x = mx.depends([primals[0]], [cotangent])[0]
            return tuple(mx.vjp(inner, [x, *primals[1:]], [cotangent])[1])

        return f(x, *leaves)

    type(layer).__call__ = checkpointed
