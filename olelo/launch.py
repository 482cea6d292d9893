"""What scripts/launch.py checks and plans before it starts a training run (`make train-*`):
the ranks (NPROC or a HOSTFILE, jaccl's RDMA devices checked as mlx.launch checks them),
the global batch against them, BATCH=auto's pick (olelo.auto_batch), the launcher and its
environment, and after a distributed run, whether it finished.

    p = launch.plan(args)        # {"world", "auto", "launcher", "env", "lab", "mlx", "auto_batch_argv"}
    lab, mlx = launch.pick_batch(lab, mlx)     # --batch-size auto replaced by the pick
    launch.check_finished(Path("runs"), started)
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import olelo
from olelo import auto_batch

BACKENDS = ("ring", "mpi", "nccl", "jaccl", "jaccl-ring")
FINISHED = ("finished", "stopped-early")


def hostfile_size(path: str) -> int:
    """Number of hosts in an mlx.launch hostfile (a JSON list, or {"hosts": [...]})."""
    return len(hostfile_hosts(path))


def check_jaccl_hosts(path: str, hosts: list, backend: str) -> None:
    """The RDMA devices jaccl needs, as mlx.launch's launch_jaccl checks them."""
    n = len(hosts)
    where = f"HOSTFILE={path} (DIST_BACKEND={backend})"
    if n < 2:
        raise olelo.UserError(f"{where}: jaccl joins Macs over Thunderbolt; list 2 or more hosts")
    for i, h in enumerate(hosts):
        rdma = h.get("rdma") if isinstance(h, dict) else None
        name = h.get("ssh", f"host {i}") if isinstance(h, dict) else f"host {i}"
        if not isinstance(rdma, list) or len(rdma) != n:
            raise olelo.UserError(f"{where}: {name} needs \"rdma\": a list of {n} devices, one per host "
                                  f"(mlx.distributed_config --backend {backend} --over thunderbolt writes it)")
        if rdma[i] is not None:
            raise olelo.UserError(f"{where}: {name}'s own rdma entry (position {i}) must be null")
        peers = {(i - 1) % n, (i + 1) % n} if backend == "jaccl-ring" else set(range(n))
        missing = [hosts[j].get("ssh", f"host {j}") for j in sorted(peers - {i}) if rdma[j] is None]
        if missing:
            raise olelo.UserError(f"{where}: {name} lists no RDMA device towards {', '.join(missing)}")
    if not (isinstance(hosts[0], dict) and hosts[0].get("ips")):
        raise olelo.UserError(f"{where}: the first host (rank 0) needs \"ips\": an address the others reach")


def hostfile_hosts(path: str) -> list:
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise olelo.UserError(f"HOSTFILE={path}: no such file") from None
    except (OSError, ValueError) as e:
        raise olelo.UserError(f"HOSTFILE={path}: not a JSON host list ({e})") from None
    hosts = data.get("hosts") if isinstance(data, dict) else data
    if not isinstance(hosts, list) or not hosts:
        raise olelo.UserError(f"HOSTFILE={path}: no hosts (expected a list, or {{\"hosts\": [...]}})")
    return hosts


def option(args: list[str], name: str) -> str | None:
    """The value of `name VALUE` in an argument list (the last one wins, as in argparse)."""
    value = None
    for i, a in enumerate(args[:-1]):
        if a == name:
            value = args[i + 1]
    return value


def without(args: list[str], name: str) -> list[str]:
    """args with every `name VALUE` pair removed."""
    out, i = [], 0
    while i < len(args):
        if args[i] == name and i + 1 < len(args):
            i += 2
        else:
            out.append(args[i])
            i += 1
    return out


def auto_batch_argv(lab: list[str], mlx: list[str]) -> list[str]:
    """The scripts/auto_batch.py arguments that pick --batch-size for this command."""
    argv = ["--model", option(mlx, "--model") or "", "--data", option(mlx, "--data") or "",
            "--grad-checkpoint", "on" if "--grad-checkpoint" in mlx else "auto",
            "--record", str(Path(option(lab, "--runs-dir") or olelo.runs.RUNS_DIR) / "auto-batch.json"), "--flags"]
    for ours, theirs in (("--max-seq-length", "--max-seq"), ("--num-layers", "--num-layers")):
        if option(mlx, ours):
            argv += [theirs, option(mlx, ours)]
    # train.py's LOSS: the profile must be one made with it; auto_batch.py resolves auto as
    # train.py does (olelo.lean_loss.resolve), so it needs the fine-tune type too.
    return argv + ["--loss", option(lab, "--loss") or "auto",
                   "--quantized-matmul", option(lab, "--quantized-matmul") or "auto",
                   *(["--memory-limit-gb", option(lab, "--memory-limit-gb")] if option(lab, "--memory-limit-gb") else []),
                   "--fine-tune-type", option(mlx, "--fine-tune-type") or "lora"]


def pick_batch(lab: list[str], mlx: list[str]) -> tuple[list[str], list[str]]:
    """(lab, mlx) with --batch-size auto replaced by olelo.auto_batch's choice (its
    one-line reason on stderr, as scripts/auto_batch.py --flags prints it)."""
    argv = auto_batch_argv(lab, mlx)
    choice = auto_batch.pick(auto_batch.parse_args(argv))
    print(choice["reason"], file=sys.stderr)
    if not choice["batch_size"]:
        raise olelo.UserError("BATCH=auto: no batch size fits (auto_batch.py said why above); "
                              "lower MAX_SEQ or use a smaller model")
    flags = auto_batch.flags(choice)
    mlx = without(mlx, "--batch-size") + [f for f in flags if not (f == "--grad-checkpoint" and f in mlx)]
    return lab + ["--auto-batch-record", option(argv, "--record")], mlx


def plan(args) -> dict:
    """What would run: world size, the command and its environment."""
    split = args.train_argv.index("--")
    lab, mlx = args.train_argv[:split], args.train_argv[split + 1:]
    if args.backend.startswith("jaccl"):
        if not args.hostfile:
            raise olelo.UserError(f"DIST_BACKEND={args.backend} joins Macs over Thunderbolt 5 (RDMA): give "
                                  f"HOSTFILE=hosts.json (mlx.distributed_config --backend {args.backend} "
                                  f"--over thunderbolt --hosts mac1,mac2 --output hosts.json writes it)")
        check_jaccl_hosts(args.hostfile, hostfile_hosts(args.hostfile), args.backend)
    world = hostfile_size(args.hostfile) if args.hostfile else args.nproc
    batch = option(mlx, "--batch-size")
    auto = batch == "auto"
    if auto and world > 1:
        raise olelo.UserError(f"BATCH=auto picks a batch for one process; with {world} ranks give BATCH=N "
                              "(a multiple of the ranks)")
    if batch is not None and not auto:
        if not batch.isdigit() or int(batch) < 1:
            raise olelo.UserError(f"BATCH={batch}: a positive whole number, or auto")
        if int(batch) % world:
            raise olelo.UserError(f"BATCH={batch} does not divide by {world} ranks (the batch is global); "
                                  f"use a multiple of {world}")
    launcher, env = [], {}
    if args.hostfile:
        launcher = [short(Path(sys.executable).with_name("mlx.launch")), "--hostfile", args.hostfile]
    elif world > 1:
        launcher = [short(Path(sys.executable).with_name("mlx.launch")), "-n", str(world)]
    if launcher:
        launcher += ["--backend", args.backend]
        if args.backend == "nccl":
            env["NCCL_NVLS_ENABLE"] = "0"  # NVLink multicast fails on the lent GPUs (see README)
    return {"world": world, "auto": auto, "launcher": launcher, "env": env, "lab": lab, "mlx": mlx,
            "auto_batch_argv": auto_batch_argv(lab, mlx) if auto else None}


def short(path) -> str:
    """A path relative to the working folder when it is inside it (readable commands)."""
    rel = os.path.relpath(path)
    return str(path) if rel.startswith("..") else rel


def check_finished(runs_dir: Path, started: float) -> None:
    """A distributed run's ranks may fail while mlx.launch exits 0: the run is done
    only if train.py pointed runs/latest during this launch at a finished run."""
    latest = runs_dir / "latest"
    try:
        touched = latest.lstat().st_mtime >= started - 1
        status = json.loads((latest / "manifest.json").read_text()).get("status")
    except (OSError, ValueError):
        touched, status = False, None
    if not touched or status not in FINISHED:
        raise olelo.UserError(f"the distributed run did not finish (status {status or 'unknown'}); "
                              f"see the output above and {latest}/train.log")
