"""Start a training run as `make train-small` / `make train-large` do: one process,
or NPROC ranks on this host / the hosts of a HOSTFILE through mlx.launch.

    .venv/bin/python scripts/launch.py [--nproc 2 | --hostfile hosts.json] [--backend ring|mpi|nccl|jaccl|jaccl-ring] \\
        [--dry-run] -- <scripts/train.py options> -- mlx_lm.lora --model M --train --data D --batch-size 4 ...

Before it starts anything:
- `--batch-size auto` (make's BATCH=auto) is replaced by what olelo/auto_batch.py
  (the library of scripts/auto_batch.py) picks for this model, data and the memory
  available now (and `--grad-checkpoint` when it chooses it, unless the command
  already has it); the choice is recorded in the run's manifest. One process only: the pick is for one process's memory.
- The batch is global: it must divide by the number of ranks.
- jaccl and jaccl-ring (MLX's RDMA over Thunderbolt 5 between Macs) need a --hostfile with
  each host's "rdma" devices, as `mlx.distributed_config --backend jaccl` writes it:
  checked here as mlx.launch checks it (one entry per host, null for itself, a device
  towards every other host, or towards both ring neighbours for jaccl-ring, and an IP for
  rank 0), so a bad file is one line before anything starts.
After a distributed run it checks that the run finished, because mlx.launch exits 0
even when a rank fails.

--dry-run prints the command that would run (and, for auto, the auto_batch.py
command that would pick the batch) and starts nothing.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import olelo
from olelo.defaults import DEFAULTS
from olelo.launch import BACKENDS, check_finished, option, pick_batch, plan, short

SCRIPTS = Path(__file__).resolve().parent


def parse_args(argv):
    split = argv.index("--") if "--" in argv else len(argv)
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--nproc", type=int, default=DEFAULTS["NPROC"], help="ranks on this host (make's NPROC; default: %(default)s)")
    p.add_argument("--hostfile", help="mlx.launch's JSON host list (make's HOSTFILE); overrides --nproc")
    p.add_argument("--backend", default=DEFAULTS["DIST_BACKEND"], choices=list(BACKENDS),
                   help="mlx.launch backend (make's DIST_BACKEND; default: %(default)s)")
    p.add_argument("--dry-run", action="store_true", help="print the command and start nothing")
    args = p.parse_args(argv[:split])
    args.train_argv = argv[split + 1:]
    if split == len(argv) or "--" not in args.train_argv or args.train_argv[args.train_argv.index("--") + 1:][:1] != ["mlx_lm.lora"]:
        raise olelo.UserError("after the first --: train.py's options, then -- mlx_lm.lora ...")
    if args.nproc < 1:
        raise olelo.UserError(f"NPROC={args.nproc}: the number of ranks is 1 or more")
    return args


def command(p: dict, lab=None, mlx=None) -> list[str]:
    return [*p["launcher"], short(sys.executable), short(SCRIPTS / "train.py"), *(lab or p["lab"]), "--",
            *(mlx or p["mlx"])]


def shown(p: dict, cmd: list[str]) -> str:
    return " ".join([*(f"{k}={v}" for k, v in p["env"].items()), *map(shlex.quote, cmd)])


def run_trainer(cmd: list[str], env: dict) -> int:
    """Run the trainer to its end and return its exit status. Ctrl-C in a terminal reaches
    the trainer itself (the whole process group gets it), which then records how the run
    ended: this process waits for it, where subprocess.run would kill it 0.25 s later."""
    proc = subprocess.Popen(cmd, env=env)
    interrupted = []
    previous = signal.signal(signal.SIGINT, lambda *_: interrupted.append(True))
    try:
        status = proc.wait()  # a signal handled here does not end the wait (PEP 475)
    finally:
        signal.signal(signal.SIGINT, previous)
    if interrupted:
        print("interrupted: the trainer recorded how the run ended (see make runs); the same command resumes it",
              file=sys.stderr)
    return status


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else list(argv))
    p = plan(args)
    if args.dry_run:
        if p["auto"]:
            print("# BATCH=auto: the batch size comes from",
                  shlex.join([short(sys.executable), short(SCRIPTS / "auto_batch.py"), *p["auto_batch_argv"]]))
        print(shown(p, command(p)))
        return 0
    lab, mlx = pick_batch(p["lab"], p["mlx"]) if p["auto"] else (p["lab"], p["mlx"])
    cmd = command(p, lab, mlx)
    if p["auto"]:
        print(shown(p, cmd), flush=True)
    started = time.time()
    status = run_trainer(cmd, {**os.environ, **p["env"]})
    if status:
        return status
    if p["launcher"]:
        check_finished(Path(option(lab, "--runs-dir") or olelo.runs.RUNS_DIR), started)
    return 0


if __name__ == "__main__":
    olelo.run_main(main)
