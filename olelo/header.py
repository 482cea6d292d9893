"""The header every result file in bench/results/ opens with, written in one place:
the command that ran, how to reproduce it with this repo, the commit, the date, the
machine and its load. Not a script: the benchmarks import it.

    from olelo import header
    h = header.start("make bench-eval MODEL=models/tiny-gemma3 BENCH_N=64")
    ... measure ...
    header.write(path, h, {"what": ..., "results": ...})   # {"header": {...}, ...}, atomically

The load average matters because this lab's CPU numbers come from shared machines:
a result taken at load 6 on 2 cores is not one taken at load 1.
"""

from __future__ import annotations

import datetime
import os
import platform
import shlex
import subprocess
import sys

import olelo
from olelo.runs import git_info

FIELDS = ("command", "reproduce", "commit", "dirty", "date", "machine", "load")


def git_commit() -> tuple[str | None, bool | None]:
    git = git_info()
    return git["commit"], git["dirty"]

def machine() -> str:
    """One line: OS, CPU architecture and count, memory, MLX device when MLX is there."""
    memory = ""
    try:
        with open("/proc/meminfo") as f:
            kib = int(next(line for line in f if line.startswith("MemTotal")).split()[1])
        memory = f", {kib / 2**20:.0f} GiB"
    except (OSError, StopIteration, ValueError):
        try:
            out = subprocess.run(["sysctl", "-n", "hw.memsize"], capture_output=True, text=True).stdout
            memory = f", {int(out) / 2**30:.0f} GiB"
        except (OSError, ValueError):
            pass
    device = ""
    try:
        import mlx.core as mx

        device = f", MLX {mx.default_device()}"
    except ImportError:
        pass
    return f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores{memory}{device}"


def start(reproduce: str, argv: list[str] | None = None) -> dict:
    """The header of a result about to be measured (load: the 1-minute average now)."""
    argv = sys.argv if argv is None else argv
    commit, dirty = git_commit()
    return {
        "command": shlex.join([os.path.relpath(sys.executable), os.path.relpath(argv[0]), *argv[1:]]),
        "reproduce": reproduce,
        "commit": commit,
        "dirty": dirty,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(),
        "load": {"start": round(os.getloadavg()[0], 2)},
    }


def write(path, head: dict, body: dict) -> None:
    """Write {"header": head (with the load at the end), **body} atomically."""
    head = {**head, "load": {**head.get("load", {}), "end": round(os.getloadavg()[0], 2)}}
    olelo.atomic_write_json(path, {"header": head, **body})
