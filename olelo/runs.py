"""Runs: the stamp (a run's name), its folder and manifest, checkpoints, the
`latest` links, and the environment/git record every run and result carries."""

from __future__ import annotations

import datetime
import fcntl
import os
import platform
import shutil
import re
import subprocess
from importlib import metadata
from pathlib import Path

from olelo.cli import UserError
from olelo.defaults import DEFAULTS
from olelo.files import read_json, safetensors_problem

REPO = Path(__file__).resolve().parents[1]  # the lab's checkout: git records
# Where runs are recorded and their adapters written (make's RUNS_DIR, ADAPTERS_DIR), relative to the working folder
RUNS_DIR, ADAPTERS_DIR = DEFAULTS["RUNS_DIR"], DEFAULTS["ADAPTERS_DIR"]

# mlx-lm's checkpoint files in an adapter folder, and the lab's names for checkpoints
CKPT_RE = re.compile(r"^(\d{7})_adapters\.safetensors$")


def run_stamp(dataset: str, args: dict) -> str:
    """The one place a run's name is built, from what defines the trained weights.

    `args` is the merged mlx_lm.lora configuration (flags > YAML > defaults) plus
    the lab's own `patience`, `select`, `val_gen` and `grad_clip`. Settings at mlx-lm's defaults are left out, except
    the ones every reader wants to see (iterations, batch, learning rate, rank, seed).
    """
    def num(x) -> str:  # 1e-05 -> 1e-5, 0.1 -> 0.1
        return re.sub(r"e([+-])0*(\d)", lambda m: "e" + ("-" if m[1] == "-" else "") + m[2], f"{x:g}")

    lora = args.get("lora_parameters") or {}
    parts = [
        dataset,
        Path(str(args["model"]).rstrip("/")).name,
        f"it{args['iters']}",
        f"bs{args['batch_size']}",
        f"lr{num(args['learning_rate'])}",
    ]
    if args.get("fine_tune_type", "lora") != "lora":
        parts.append(args["fine_tune_type"])
    if args.get("fine_tune_type", "lora") != "full":
        parts.append(f"r{lora.get('rank', 8)}")
        if lora.get("scale", 20.0) != 20.0:
            parts.append(f"sc{num(lora['scale'])}")
        if lora.get("dropout", 0.0):
            parts.append(f"do{num(lora['dropout'])}")
    if args.get("num_layers", 16) != 16:
        parts.append(f"L{args['num_layers']}")
    if args.get("grad_checkpoint"):
        parts.append("gc")
    if args.get("grad_accumulation_steps", 1) != 1:
        parts.append(f"ga{args['grad_accumulation_steps']}")
    if args.get("max_seq_length", 2048) != 2048:
        parts.append(f"ms{args['max_seq_length']}")
    if args.get("mask_prompt"):
        parts.append("mp")
    if args.get("optimizer", "adam") != "adam":
        parts.append(args["optimizer"])
    schedule = args.get("lr_schedule")
    if schedule:
        parts.append(f"{schedule['name'].replace('_decay', '')}w{schedule.get('warmup', 0)}")
    if args.get("grad_clip") is not None:  # GRAD_CLIP; unset: no part (the names of runs before it)
        parts.append(f"clip{num(args['grad_clip'])}")
    if args.get("patience"):  # early stopping by validation chrF++ ends elsewhere than by val loss
        chrf = f"chrf{args['val_gen']}" if args.get("select") == "val_chrf" else ""
        if chrf and args.get("val_gen_loop_stop"):  # another val chrF++, another stopping point
            chrf += "ls"
        if chrf and args.get("val_gen_cap", "longest") != "longest":
            chrf += "ce"
        parts.append(f"p{args['patience']}{chrf}")
    if args.get("world_size", 1) > 1:  # ranks average per-rank means: not the same weights as 1 process
        parts.append(f"np{args['world_size']}")
    parts.append(f"s{args['seed']}")
    return re.sub(r"[^A-Za-z0-9._-]+", "_", "-".join(parts))


def resolve_run(run: str, runs_dir=RUNS_DIR) -> Path:
    """A run folder from a stamp, a path, or 'latest'."""
    given = Path(run)
    candidates = [given]
    # A bare name is a stamp under runs_dir; a path (runs/x, ./x, /abs) is taken as it is.
    if len(given.parts) == 1 and not run.startswith("."):
        candidates.append(Path(runs_dir) / run)
    for p in candidates:
        if (p / "manifest.json").is_file():
            return p.resolve() if p.is_symlink() else p
    where = " or ".join(f"{p}/manifest.json" for p in candidates[::-1])
    raise UserError(f"no run {run!r}: found no {where} (see `make runs`)")


def run_manifest(run_dir) -> dict:
    return read_json(Path(run_dir) / "manifest.json", "run record")


def checkpoint_adapter(adapter_dir, ckpt: str) -> Path | None:
    """The adapter folder mlx-lm loads for a checkpoint: 'base' (None: no adapter),
    'final', 'best', or an iteration number. A numbered checkpoint gets a folder
    ckpt-NNNNNNN/ with hard links, so no one copies weights by hand."""
    adapter_dir = Path(adapter_dir)
    if ckpt == "base":
        return None
    if ckpt == "final":
        folder = adapter_dir
    elif ckpt == "best":
        folder = adapter_dir / "best"
    elif ckpt.removeprefix("ckpt-").isdigit():
        n = int(ckpt.removeprefix("ckpt-"))
        weights = checkpoint_files(adapter_dir, n)["adapters"]
        if not weights.is_file():
            raise UserError(f"{weights}: no checkpoint at iteration {n}")
        refuse_damaged(weights)
        folder = adapter_dir / ckpt_name(str(n))
        if not (folder / "adapters.safetensors").is_file():
            tmp = adapter_dir / f".ckpt-{n:07d}.tmp"
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir()
            for src, name in ((weights, "adapters.safetensors"), (adapter_dir / "adapter_config.json", "adapter_config.json")):
                try:
                    os.link(src, tmp / name)
                except OSError:
                    shutil.copy(src, tmp / name)
            shutil.rmtree(folder, ignore_errors=True)
            os.replace(tmp, folder)
    else:
        raise UserError(f"unknown checkpoint {ckpt!r}: use base, final, best or an iteration number")
    weights = folder / "adapters.safetensors"
    if not weights.is_file():
        raise UserError(f"{weights} not found (did the run finish? see `make runs`)")
    refuse_damaged(weights)
    return folder


def refuse_damaged(weights: Path) -> None:
    problem = safetensors_problem(weights)
    if problem:
        raise UserError(f"{weights}: damaged ({problem}); evaluate another checkpoint (EVAL_CKPTS= or "
                        f"FUSE_CKPT=: best, final or an iteration), or FORCE=1 trains a new attempt")


def checkpoint_files(adapter_dir, n: int) -> dict[str, Path]:
    """Checkpoint n's files: mlx-lm's weights, and the lab's optimizer state and JSON beside them."""
    d = Path(adapter_dir)
    return {"adapters": d / f"{n:07d}_adapters.safetensors", "state": d / f"{n:07d}_state.safetensors",
            "json": d / f"{n:07d}_state.json"}


def checkpoints(folder: Path) -> dict[int, Path]:
    """Iteration -> weights file of the numbered checkpoints in an adapter folder."""
    out = {}
    if folder.is_dir():
        for f in folder.iterdir():
            m = CKPT_RE.match(f.name)
            if m:
                out[int(m[1])] = f
    return out


def ckpt_name(ckpt: str) -> str:
    """best, final, or ckpt-NNNNNNN (the names eval uses) from what the user typed."""
    if ckpt in ("best", "final"):
        return ckpt
    if ckpt.removeprefix("ckpt-").isdigit():
        return f"ckpt-{int(ckpt.removeprefix('ckpt-')):07d}"
    raise UserError(f"--ckpt {ckpt!r}: use best, final or an iteration number (400, 0000400, ckpt-0000400)")


def fused_folder(stamp: str, ckpt: str, dequantize: bool) -> str:
    """Where a run's checkpoint is fused by default (upload.py finds it there too)."""
    return f"fused/{stamp}-{ckpt_name(ckpt)}{'-dq' if dequantize else ''}"


def point_latest(link: Path, target: str, made_by_us=None) -> bool:
    """`link` (a `latest` beside its target) -> target. An existing `latest` is replaced,
    unless made_by_us(link) says it is not one of ours: then it is kept (False)."""
    if (link.is_symlink() or link.exists()) and made_by_us is not None and not made_by_us(link):
        return False
    if link.is_dir() and not link.is_symlink():
        raise UserError(f"{link} is a folder, not the lab's link to the newest run; move it away")
    # A new link under a name of this process's own, renamed over the old one: two runs
    # started together each replace the link whole (the later stays), neither fails.
    tmp = link.parent / f".{link.name}.{os.getpid()}.new"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(target)
    os.replace(tmp, link)
    return True


# ---------------------------------------------------------------- what every record carries

def git_info() -> dict:
    def git(*a):
        r = subprocess.run(["git", *a], cwd=REPO, capture_output=True, text=True)
        return r.stdout.strip() if r.returncode == 0 else None

    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": git("rev-parse", "HEAD"), "dirty": None if status is None else bool(status)}


def environment_info() -> dict:
    import mlx.core as mx

    versions = {}
    for pkg in ("mlx", "mlx-metal", "mlx-cpu", "mlx-cuda-12", "mlx-cuda-13", "mlx-lm", "transformers", "numpy"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    backend = "metal" if mx.metal.is_available() else "cuda" if mx.cuda.is_available() else "cpu"
    return {
        "packages": versions,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "mlx_backend": backend,
        "mlx_device": str(mx.default_device()),
        "ld_preload": os.environ.get("LD_PRELOAD", ""),
        # MLX's own tuning variables (e.g. MLX_MAX_OPS_PER_BUFFER) change its speed and peak
        "mlx_env": {k: v for k, v in sorted(os.environ.items()) if k.startswith("MLX_")},
    }


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


# ---------------------------------------------------------------- a run's folder and its lock

class RunLock:
    """An exclusive fcntl.flock on <folder>/.lock, released when the process ends (even
    by kill -9), so a stale lock cannot outlive its holder. The file names the holder."""

    def __init__(self, folder):
        self.path = Path(folder) / ".lock"
        self.file = None
        self.created = False  # set by the caller that made the folder (and may remove it)

    def acquire(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        f = open(self.path, "a+", encoding="utf-8")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.close()
            return False
        f.seek(0)
        f.truncate()
        f.write(f"pid {os.getpid()} on {platform.node()}\n")
        f.flush()
        self.file = f
        return True

    def holder(self) -> str:
        try:
            return self.path.read_text(encoding="utf-8").strip() or "another process"
        except OSError:
            return "another process"

    def release(self) -> None:
        if self.file:
            fcntl.flock(self.file, fcntl.LOCK_UN)
            self.file.close()
            self.file = None



def choose_run_dir(runs: Path, stamp: str, force: bool):
    """(stamp, state, lock): state is 'new', 'done', 'resume' or 'busy'. Decided under
    the run folder's lock (RunLock), which the caller keeps while training:
    of two identical commands started together, one trains and the other is refused."""
    if force:  # a new attempt folder: mkdir is atomic, so two --force runs get two folders
        n = 2
        while True:
            attempt = f"{stamp}-a{n}"
            try:
                (runs / attempt).mkdir(parents=True)
            except FileExistsError:
                n += 1
                continue
            lock = RunLock(runs / attempt)
            lock.acquire()
            lock.created = True
            return attempt, "new", lock
    created = not (runs / stamp).exists()
    lock = RunLock(runs / stamp)
    if not lock.acquire():
        return stamp, "busy", lock
    if created:
        lock.created = True
    m = runs / stamp / "manifest.json"
    if not m.is_file():
        return stamp, "new", lock
    status = read_json(m, f"record of run {stamp} (FORCE=1 trains a new attempt)").get("status")
    return stamp, ("done" if status in ("finished", "stopped-early") else "resume"), lock


def forget_new_folder(runs: Path, stamp: str, lock) -> None:
    """An invalid or refused run leaves no folder: remove the one this process made (empty
    but for its lock)."""
    if lock is not None and getattr(lock, "created", False):
        folder = runs / stamp
        if {p.name for p in folder.iterdir()} <= {".lock"}:
            shutil.rmtree(folder, ignore_errors=True)
        lock.release()


class Tee:
    """Write to the console and (without colour codes) to train.log."""

    ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")

    def __init__(self, stream, log):
        self.stream, self.log = stream, log

    def write(self, s):
        self.stream.write(s)
        self.log.write(self.ANSI.sub("", s))
        return len(s)

    def flush(self):
        self.stream.flush()
        self.log.flush()

    def __getattr__(self, name):
        return getattr(self.stream, name)
