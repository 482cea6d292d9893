"""Run one mlx_lm.lora training command as a recorded, resumable lab run.

    python scripts/train.py [lab options] -- mlx_lm.lora --model M --train --data D ...

Everything after `--` is an ordinary mlx_lm.lora command line. It is parsed by
mlx-lm's own parser and merged with the run's config.yaml exactly as mlx_lm.lora
does (flag > YAML > default); olelo/trainer.py trains it with mlx-lm's pieces in
mlx-lm's order (same losses as mlx-lm's train) and checkpoints that resume exactly.
The lab's Recorder writes every report, scores validation translations (chrF++ of
--val-gen sentences), keeps the best checkpoint (--select) and stops early.
--loss chunked (make's LOSS=chunked) swaps mlx-lm's loss for olelo/lean_loss.py's:
the same losses, with much less memory for the logits of a large vocabulary. What
gets written:

    runs/<stamp>/command.sh     the exact mlx_lm.lora invocation
    runs/<stamp>/config.yaml    LoRA parameters and LR schedule (mlx-lm reads them only from YAML)
    runs/<stamp>/manifest.json  git, packages, platform, data checksums, times, status
    runs/<stamp>/train.log      the console output
    runs/<stamp>/metrics.jsonl  every train and validation report
    adapters/<stamp>/           adapters, numbered checkpoints with their training state, best/

Run the same command again: a finished run is "up to date"; an interrupted one
(Ctrl-C, kill -9, out of memory) resumes from its last checkpoint as if it had
never stopped (optimizer state, schedule, data order, RNG); --force starts a new
attempt (<stamp>-a2, ...) and keeps the old one.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import shutil
import sys
import types
from pathlib import Path

from olelo import checks
import olelo
from olelo import runs as runs_lib
from olelo import identity



class EarlyStop(Exception):
    pass


def parse_lab_args(argv):
    if "--" not in argv:
        raise olelo.UserError("usage: train.py [options] -- mlx_lm.lora --model ... (see --help)")
    cut = argv.index("--")
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs-dir", default="runs")
    p.add_argument("--adapters-dir", default="adapters")
    p.add_argument("--rank", type=int, help="LoRA rank (config.yaml lora_parameters.rank; mlx-lm default 8)")
    p.add_argument("--scale", type=float, help="LoRA scale (mlx-lm default 20.0)")
    p.add_argument("--dropout", type=float, help="LoRA dropout (mlx-lm default 0.0)")
    p.add_argument("--lr-schedule", choices=["none", "cosine"], default="none",
                   help="cosine: linear warmup then cosine decay to 10%% of the learning rate")
    p.add_argument("--warmup", type=int, help="warmup iterations for --lr-schedule cosine (default: 5%% of iters)")
    p.add_argument("--patience", type=int, default=0,
                   help="stop after N validations without a new best (by --select) (0: never)")
    p.add_argument("--val-gen", type=int, default=64,
                   help="at each validation, translate this many validation sentences (a fixed seeded sample; "
                        "all when fewer) greedily and record their chrF++ (0: off; default 64)")
    p.add_argument("--val-gen-batch", type=int, default=32, help="generation batch size for --val-gen")
    p.add_argument("--select", choices=["val_loss", "val_chrf"],
                   help="what picks best/ and drives --patience (default: val_chrf when --val-gen > 0, else val_loss)")
    p.add_argument("--keep", default="all",
                   help="adapter checkpoints to keep: all, or N (the N newest); the training state "
                        "(optimizer, RNG, data order) is kept for the newest only")
    p.add_argument("--loss", choices=LOSSES, default="default",
                   help="training and validation loss: default (mlx-lm's) or chunked (olelo/lean_loss.py: "
                        "the same values, computed in sequence chunks so the full logits never exist at once)")
    p.add_argument("--force", action="store_true", help="train again into a new attempt folder")
    p.add_argument("--auto-batch-record", help="JSON written by auto_batch.py (BATCH=auto): kept in the manifest")
    lab = p.parse_args(argv[:cut])
    if lab.select is None:
        lab.select = "val_chrf" if lab.val_gen > 0 else "val_loss"
    if lab.select == "val_chrf" and lab.val_gen <= 0:
        raise olelo.UserError("--select val_chrf needs --val-gen > 0 (VAL_GEN=64, say)")
    if lab.keep != "all" and not (lab.keep.isdigit() and int(lab.keep) > 0):
        raise olelo.UserError(f"--keep {lab.keep}: use all or a positive number of checkpoints")
    cmd = argv[cut + 1:]
    if not cmd or cmd[0] != "mlx_lm.lora":
        raise olelo.UserError("after `--` give an mlx_lm.lora command line, e.g. -- mlx_lm.lora --model M --train --data D")
    for managed in ("-c", "--config", "--adapter-path", "--resume-adapter-file"):
        if managed in cmd:
            raise olelo.UserError(f"{managed} is set by the lab (per-run config and folders); leave it out")
    return lab, cmd


def mlx_lora_args(cmd: list[str], config: dict | None = None) -> types.SimpleNamespace:
    """The arguments mlx_lm.lora's main() would run `cmd` with (same parser, same
    merge). `config` stands for the content of the -c file when given."""
    import yaml
    from mlx_lm import lora

    parser = lora.build_parser()

    def refuse(message):  # one line, not argparse's usage block
        raise olelo.UserError(f"mlx_lm.lora command: {message}")

    parser.error = refuse
    args = vars(parser.parse_args(cmd[1:]))
    if args.get("config"):
        if config is None:
            with open(args["config"]) as f:
                config = yaml.load(f, lora.yaml_loader)
        for k, v in config.items():
            if args.get(k) is None:
                args[k] = v
    for k, v in lora.CONFIG_DEFAULTS.items():
        if args.get(k) is None:
            args[k] = v
    return types.SimpleNamespace(**args)


def run_config(lab, merged: dict) -> dict:
    """config.yaml content: what mlx-lm takes only from YAML."""
    lora = dict(merged["lora_parameters"])
    for key in ("rank", "scale", "dropout"):
        if getattr(lab, key) is not None:
            lora[key] = getattr(lab, key)
    config = {"lora_parameters": lora}
    if lab.lr_schedule == "cosine":
        iters, lr = merged["iters"], merged["learning_rate"]
        warmup = lab.warmup if lab.warmup is not None else max(1, iters // 20)
        config["lr_schedule"] = {
            "name": "cosine_decay",
            "warmup": warmup,
            "warmup_init": 0.0,
            "arguments": [lr, max(1, iters - warmup), lr * 0.1],
        }
    return config


# ---------------------------------------------------------------- records

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


# ---------------------------------------------------------------- checkpoints

class Recorder:
    """The trainer's callback: metrics.jsonl, best checkpoint by `select`, early stopping.

    Its state (rows written, best so far) is saved in each checkpoint; on resume,
    metrics.jsonl is cut back to the rows it had then, and what follows is redone."""

    def __init__(self, model, run_dir: Path, adapter_dir: Path, patience: int, select: str, writer: bool,
                 restored: dict | None = None):
        self.model, self.run_dir, self.adapter_dir = model, run_dir, adapter_dir
        self.patience, self.select, self.writer = patience, select, writer
        self.metrics = run_dir / "metrics.jsonl"
        restored = restored or {"metrics_rows": 0, "best": None, "since_best": 0}
        kept = read_metrics(self.metrics)[: restored["metrics_rows"]]
        if writer:
            olelo.atomic_write_jsonl(self.metrics, kept)
        self.rows, self.best, self.since_best = len(kept), restored["best"], restored["since_best"]

    def checkpoint_state(self) -> dict:
        return {"metrics_rows": self.rows, "best": self.best, "since_best": self.since_best}

    def _append(self, record):
        self.rows += 1
        if not self.writer:  # distributed: every rank decides alike, rank 0 writes
            return
        with open(self.metrics, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")

    def on_train_loss_report(self, info):
        record = {"type": "train", **{k: float(v) if k != "iteration" else int(v) for k, v in info.items()}}
        record["trained_tokens"] = int(record["trained_tokens"])
        record["time"] = runs_lib.now()
        self._append(record)

    def better(self, record) -> bool:
        if self.best is None:
            return True
        if self.select == "val_chrf":
            return record["val_chrf"] > self.best["val_chrf"]
        return record["val_loss"] < self.best["val_loss"]

    def on_val_loss_report(self, info):
        record = {"type": "val", "iteration": int(info["iteration"]), "val_loss": float(info["val_loss"]),
                  "val_time": float(info["val_time"]),
                  **{k: info[k] for k in ("val_chrf", "val_gen_n", "val_gen_tokens", "val_gen_time") if k in info}, "time": runs_lib.now()}
        self._append(record)
        if self.better(record):
            self.best, self.since_best = record, 0
            if self.writer:
                self.save_best()
        else:
            self.since_best += 1
            if self.patience and self.since_best >= self.patience:
                raise EarlyStop(record["iteration"])

    def save_best(self):
        import mlx.core as mx
        from mlx.utils import tree_flatten

        best_dir = self.adapter_dir / "best"
        tmp = self.adapter_dir / ".best.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        mx.save_safetensors(str(tmp / "adapters.safetensors"), dict(tree_flatten(self.model.trainable_parameters())))
        shutil.copy(self.adapter_dir / "adapter_config.json", tmp / "adapter_config.json")
        olelo.atomic_write_json(tmp / "best.json", {"iteration": self.best["iteration"], "criterion": self.select,
                                                    **{k: self.best[k] for k in ("val_loss", "val_chrf")
                                                       if k in self.best}})
        shutil.rmtree(best_dir, ignore_errors=True)
        os.replace(tmp, best_dir)


def read_metrics(path: Path) -> list[dict]:
    rows = []
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                pass  # a line cut short by a kill: that report is redone on resume
    return rows


# ---------------------------------------------------------------- the run

STATES = ("new", "done", "resume", "busy", "refused")
LOSSES = ("default", "chunked")


def loss_function(name: str, model):
    """The loss trainer.train uses for training and validation. chunked first checks
    that the model's logits are its head applied to its body (lean_loss.check_split)."""
    if name == "default":
        from mlx_lm.tuner.trainer import default_loss

        return default_loss
    from olelo import lean_loss

    lean_loss.check_split(model)
    return lean_loss.chunked_loss


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


def choose_run_dir(runs: Path, stamp: str, force: bool):
    """(stamp, state, lock): state is 'new', 'done', 'resume' or 'busy'. Decided under
    the run folder's lock (identity.RunLock), which the caller keeps while training:
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
            lock = identity.RunLock(runs / attempt)
            lock.acquire()
            lock.created = True
            return attempt, "new", lock
    created = not (runs / stamp).exists()
    lock = identity.RunLock(runs / stamp)
    if not lock.acquire():
        return stamp, "busy", lock
    if created:
        lock.created = True
    m = runs / stamp / "manifest.json"
    if not m.is_file():
        return stamp, "new", lock
    status = olelo.read_json(m, f"record of run {stamp} (FORCE=1 trains a new attempt)").get("status")
    return stamp, ("done" if status in ("finished", "stopped-early") else "resume"), lock


def forget_new_folder(runs: Path, stamp: str, lock) -> None:
    """An invalid or refused run leaves no folder: remove the one this process made (empty
    but for its lock)."""
    if lock is not None and getattr(lock, "created", False):
        folder = runs / stamp
        if {p.name for p in folder.iterdir()} <= {".lock"}:
            shutil.rmtree(folder, ignore_errors=True)
        lock.release()


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv in (["-h"], ["--help"]):
        argv = ["--help", "--"]
    lab, cmd = parse_lab_args(argv)
    import mlx.core as mx

    world = mx.distributed.init()
    rank = world.rank()
    if world.size() > 1 and mx.cuda.is_available():
        route_collectives_to_gpu()
    base = vars(mlx_lora_args(cmd))
    config = run_config(lab, base)
    if not base["train"]:
        raise olelo.UserError("the mlx_lm.lora command must include --train")
    checks.training_knobs(base, lab, world.size())
    data = Path(base["data"])
    if not (data / "train.jsonl").is_file():
        raise olelo.UserError(f"{data}/train.jsonl not found; build the data first (make data)")
    note = identity.verify_split(data)
    if note and rank == 0:
        print(note, file=sys.stderr)
    dataset = data.name
    # --loss stays out of the stamp: both losses give the same numbers (within float
    # rounding; tests/test_lean_loss.py), only the peak memory differs, so a run is
    # the same experiment under either. The manifest records which one it used.
    stamp = olelo.run_stamp(dataset, {**base, **config, "patience": lab.patience, "select": lab.select,
                                      "val_gen": lab.val_gen, "world_size": world.size()})
    runs, adapters = Path(lab.runs_dir), Path(lab.adapters_dir)

    # Rank 0 looks at the run folder and decides; every rank follows its decision.
    state, attempt, offset, lock, refusal = "new", 0, 0, None, ""
    if rank == 0:
        try:
            decided, state, lock = choose_run_dir(runs, stamp, lab.force)
            if state in ("done", "resume"):  # the same stamp must also mean the same data and model
                identity.require_unchanged(olelo.run_manifest(runs / decided),
                                               "be up to date" if state == "done" else "resume")
        except olelo.UserError as e:
            state, refusal, decided = "refused", str(e), stamp
        attempt = int(decided.rsplit("-a", 1)[1]) if decided != stamp else 0
        if state == "resume":  # the newest checkpoint with its training state; -1: weights only
            from olelo import trainer

            resumable = trainer.states(adapters / decided)
            offset = resumable[-1] if resumable else -1 if runs_lib.checkpoints(adapters / decided) else 0
            # best/ and patience go on by the criterion and sample they started with.
            recorded = json.loads((runs / decided / "manifest.json").read_text()).get("lab_options", {})
            for key in ("select", "val_gen"):
                if key in recorded and recorded[key] != getattr(lab, key):
                    print(f"note: resuming {decided} with its recorded {key} {recorded[key]}, not {getattr(lab, key)}",
                          file=sys.stderr)
                    setattr(lab, key, recorded[key])
            # Unlike those, the loss is refused, not swapped: LOSS=chunked is asked for to fit in memory.
            started = recorded.get("loss", "default")  # runs from before --loss used mlx-lm's
            if started != lab.loss:
                state, refusal = "refused", (f"run {decided} was started with LOSS={started}; resume it with "
                                             f"LOSS={started}, or FORCE=1 trains a new attempt with LOSS={lab.loss}")
    selects = ("val_loss", "val_chrf")
    state_code, attempt, offset, select, lab.val_gen = agree(
        world, [STATES.index(state), attempt, offset + 1, selects.index(lab.select), lab.val_gen])
    offset -= 1  # sent as offset + 1: agree() sums, and -1 must survive
    lab.select = selects[select]
    state = STATES[state_code]
    stamp = f"{stamp}-a{attempt}" if attempt else stamp
    run_dir, adapter_dir = runs / stamp, adapters / stamp
    if state == "done":
        if rank == 0:
            runs_lib.point_latest(runs / "latest", stamp)
            print(f"{run_dir}: up to date (status finished; FORCE=1 trains a new attempt)")
        return 0
    if state == "busy":
        holder = lock.holder() if lock else "another process"
        raise olelo.UserError(f"run {stamp} is being trained right now ({holder} holds {run_dir}/.lock); "
                              f"wait for it or stop it")
    if state == "refused":
        raise olelo.UserError(refusal or "rank 0 refused this run (see its message)")
    if offset < 0:
        raise olelo.UserError(f"{adapters / stamp} has checkpoints without training state (written before exact "
                              f"resume); FORCE=1 trains a new attempt")

    # Load and check against the model first: an invalid run leaves no run folder behind.
    try:
        model, tokenizer = olelo.load_model(base["model"])
        checks.layers_vs_model(base["num_layers"], model)
        loss = loss_function(lab.loss, model)
        warning = checks.max_seq_vs_data(base["max_seq_length"], tokenizer, data / "train.jsonl")
    except BaseException:
        if rank == 0:
            forget_new_folder(runs, stamp, lock)
        raise
    if warning and rank == 0:
        print(f"warning: {warning}", file=sys.stderr)
    manifest_path = run_dir / "manifest.json"
    config_path = run_dir / "config.yaml"
    manifest = {"stamp": stamp, "dataset": dataset, "model": base["model"], "data_dir": base["data"],
                "adapter_dir": str(adapter_dir), "iters": base["iters"], "segments": [],
                "lab_options": {"patience": lab.patience, "lr_schedule": lab.lr_schedule, "select": lab.select,
                                "val_gen": lab.val_gen, "keep": lab.keep, "loss": lab.loss},
                "mlx_lm_command": cmd}
    if state == "resume" and rank == 0:
        manifest = json.loads(manifest_path.read_text())
        if cmd != manifest["mlx_lm_command"]:
            print(f"note: resuming {stamp} with its recorded command, not this one", file=sys.stderr)

    total = manifest["iters"]
    full_cmd = manifest["mlx_lm_command"] + ["-c", str(config_path), "--adapter-path", str(adapter_dir)]
    if rank == 0:
        run_dir.mkdir(parents=True, exist_ok=True)
        if state == "new":
            import yaml
            olelo.atomic_write_text(config_path, yaml.safe_dump(config, sort_keys=False))
            olelo.atomic_write_text(run_dir / "command.sh", "#!/usr/bin/env bash\n# Run from the repository root.\n")
            (run_dir / "metrics.jsonl").unlink(missing_ok=True)
        with open(run_dir / "command.sh", "a") as f:
            if state == "resume":  # same command: the checkpoint holds everything else
                f.write(f"# resumed from iteration {offset} (weights, optimizer, schedule, data order, RNG)\n")
            else:
                f.write(shlex.join(full_cmd) + "\n")
        runs_lib.point_latest(runs / "latest", stamp)
        manifest.update({
            "status": "running", "pid": os.getpid(), "host": platform.node(),
            "git": runs_lib.git_info(), "environment": runs_lib.environment_info(), "data": identity.data_identity(base["data"]),
            "model_identity": identity.model_identity(base["model"]),
            "world_size": world.size(), "hosts": sorted(set(all_hosts(world))),
            "workarounds": ["collectives on the GPU stream (NCCL)"] if world.size() > 1 and mx.cuda.is_available() else [],
        })
        if lab.auto_batch_record:
            manifest["auto_batch"] = json.loads(Path(lab.auto_batch_record).read_text())
        manifest.setdefault("started", runs_lib.now())
        manifest["segments"].append({"started": runs_lib.now(), "offset": offset, "command": full_cmd})
        olelo.atomic_write_json(manifest_path, manifest)
    else:
        all_hosts(world)

    # The config is passed in, not read back: on other hosts the run folder does not exist.
    args = mlx_lora_args(full_cmd, config)
    log = open(run_dir / "train.log", "a", encoding="utf-8") if rank == 0 else open(os.devnull, "w")
    sys.stdout, sys.stderr = Tee(sys.__stdout__, log), Tee(sys.__stderr__, log)
    status, error = "failed", None
    try:
        if offset >= total:
            status = "finished"
            if rank == 0:
                shutil.copy(runs_lib.checkpoint_files(adapter_dir, offset)["adapters"], adapter_dir / "adapters.safetensors")
        else:
            if rank == 0:
                print(f"[olelo] run {stamp}: {'resuming at iteration %d' % offset if offset else 'starting'}")
            status = train(args, lab, model, tokenizer, run_dir, adapter_dir, offset, loss)
    except KeyboardInterrupt:
        error = "interrupted (Ctrl-C); run the same command again to resume"
        raise
    except Exception as e:
        error = f"{type(e).__name__}: {e}"
        failed_write = olelo.write_failure(e, adapter_dir)
        if failed_write:  # a full disk is the user's to fix: one line, and the rerun resumes
            raise olelo.UserError(failed_write + " (it resumes from the last checkpoint)") from None
        raise
    finally:
        if rank == 0:
            manifest["status"] = status
            manifest["ended"] = manifest["segments"][-1]["ended"] = runs_lib.now()
            if error:
                manifest["error"] = error
            else:
                manifest.pop("error", None)
            best = adapter_dir / "best" / "best.json"
            if best.is_file():
                manifest["best"] = {**json.loads(best.read_text()), "path": str(adapter_dir / "best")}
            try:
                olelo.atomic_write_json(manifest_path, manifest)
            except OSError as e:  # e.g. the disk filled up: say so, and let the first error speak
                print(f"[olelo] could not record the status {status!r} in {manifest_path} ({e.strerror}); "
                      f"the run shows as running until resumed", file=sys.__stderr__)
            print(f"[olelo] {status}: {run_dir} (adapters in {adapter_dir})")
        sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
        log.close()
    return 0


def preflight(args, train_set, profiles: Path, loss: str) -> None:
    """Warn before training when the newest mem-profile of this model (measured with
    this run's --loss) predicts that the batch holding the longest example will not
    fit in the memory available now."""
    import auto_batch
    from olelo import memory

    profile = memory.newest_profile(profiles, args.model, loss)
    if not profile:
        return
    longest = max(len(train_set.process(train_set[i])[0]) for i in range(len(train_set)))
    warning = auto_batch.preflight_warning(profile["fit"], longest, args.batch_size, bool(args.grad_checkpoint),
                                           args.max_seq_length, memory.available_memory_bytes())
    if warning:
        print(f"[olelo] {warning} (fit: {profile['path']})")


def train(args, lab, model, tokenizer, run_dir: Path, adapter_dir: Path, offset: int, loss) -> str:
    """Set up as mlx_lm.lora does, then the lab's loop (olelo/trainer.py) from `offset`,
    with `loss` (see loss_function) for training and validation."""
    import mlx.core as mx
    import numpy as np
    from mlx.utils import tree_flatten
    from mlx_lm.cli_ui import make_console, print_lora_run_header
    from mlx_lm.tuner.datasets import CacheDataset, load_dataset
    from mlx_lm.tuner.utils import print_trainable_parameters
    from mlx_lm.utils import save_config

    from olelo import trainer

    np.random.seed(args.seed)  # as mlx_lm.lora.run does
    train_set, valid_set, _ = load_dataset(args, tokenizer)
    preflight(args, train_set, Path(run_dir).parent / "mem-profile", lab.loss)
    world = mx.distributed.init()
    rank = world.rank()
    trainer.prepare_model(args, model)
    if rank == 0:
        print_lora_run_header(make_console(), args)
    print_trainable_parameters(model)
    if rank == 0:
        adapter_dir.mkdir(parents=True, exist_ok=True)
        save_config(vars(args), adapter_dir / "adapter_config.json")
    resume = trainer.load_state(adapter_dir, offset) if offset else None
    recorder = Recorder(model, run_dir, adapter_dir, lab.patience, lab.select, writer=rank == 0,
                        restored=resume and resume["callback"])
    val_gen = None
    if lab.val_gen > 0 and len(valid_set):
        records = olelo.read_jsonl(Path(args.data) / "valid.jsonl")
        val_gen = trainer.ValChrf(records, lab.val_gen, args.seed, tokenizer, lab.val_gen_batch, world)
    try:
        trainer.train(model, trainer.make_optimizer(args), CacheDataset(train_set), CacheDataset(valid_set),
                      trainer.training_args(args, adapter_dir), loss=loss, callback=recorder, val_gen=val_gen,
                      resume=resume, keep=lab.keep)
    except EarlyStop as stop:
        best = recorder.best
        print(f"[olelo] early stop at iteration {stop}: no better {lab.select} in {lab.patience} validations "
              f"(best {best[lab.select]:.4f} at iteration {best['iteration']})")
        if rank == 0:
            final = adapter_dir / "adapters.safetensors"
            mx.save_safetensors(str(final), dict(tree_flatten(model.trainable_parameters())))
        return "stopped-early"
    return "finished"

if __name__ == "__main__":
    olelo.run_main(main)
