"""Training on several processes (mlx.launch): the lab's own small collectives, rank
0's decisions shared with every rank, and the NCCL stream workaround."""

from __future__ import annotations

import platform


def collective_stream():
    """Where the lab's own small collectives run: ring/MPI want the CPU stream (as
    mlx-lm uses), NCCL on CUDA refuses it ("no Stream(gpu, 0) in current thread",
    measured on 2 H100s), so there the default GPU stream."""
    import mlx.core as mx

    return None if mx.cuda.is_available() else mx.cpu


def route_collectives_to_gpu() -> None:
    """mlx-lm 0.32.2 runs its all_sum calls on the CPU stream; under NCCL (mlx 0.32.4,
    CUDA) that fails with "There is no Stream(gpu, N) in current thread" (measured on
    2 H100s). Run them on the default stream instead: same sums, where NCCL has them."""
    import mlx.core as mx

    def on_default_stream(collective):
        def call(x, *args, **kwargs):
            stream = kwargs.get("stream")
            if stream is not None and "cpu" in str(stream):  # mx.cpu, Device(cpu, 0) or a cpu Stream
                kwargs.pop("stream")
            return collective(x, *args, **kwargs)
        return call

    for name in ("all_sum", "all_gather"):
        setattr(mx.distributed, name, on_default_stream(getattr(mx.distributed, name)))


def agree(world, values: list[int]) -> list[int]:
    """Rank 0's values, on every rank (a sum where the other ranks add zeros)."""
    if world.size() == 1:
        return values
    import mlx.core as mx

    mine = mx.array(values if world.rank() == 0 else [0] * len(values))
    return [int(v) for v in mx.distributed.all_sum(mine, stream=collective_stream()).tolist()]


def all_hosts(world) -> list[str]:
    """Every rank's host name, gathered on every rank (names are short: pad to 64 bytes)."""
    name = platform.node().encode()[:64].ljust(64, b"\0")
    if world.size() == 1:
        return [platform.node()]
    import mlx.core as mx

    gathered = mx.distributed.all_gather(mx.array(list(name), dtype=mx.uint8), stream=collective_stream())
    raw = bytes(gathered.tolist())
    return [raw[i:i + 64].rstrip(b"\0").decode(errors="replace") for i in range(0, len(raw), 64)]


def init():
    """mlx's process group (a group of one without mlx.launch), with the NCCL workaround
    in place when several ranks run on CUDA."""
    import mlx.core as mx

    world = mx.distributed.init()
    if world.size() > 1 and mx.cuda.is_available():
        route_collectives_to_gpu()
    return world
