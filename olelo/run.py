"""The life of one training run, scripts/train.py's front door behind it.

    lab, cmd = parse_lab_args(argv)          # the lab's options and the mlx_lm.lora command
    world = distributed.init()
    spec = resolve(lab, cmd, world)          # frozen: every choice made, agreed by every rank
    loaded = load_model_checked(spec, world) # the model as it trains (compute dtype, dense layers)
    manifest, full_cmd = record_start(spec, loaded, world)
    train_and_record(spec, loaded, manifest, full_cmd, world)

resolve() is the one place an option gets its value: the command line (train.py's
options, the mlx_lm.lora command merged with config.yaml as mlx_lm.lora merges them),
the auto values resolved on this machine (LOSS, QMATMUL), the run folder decided under
its lock (new, up to date, resume, busy), what a resumed run started with (its select,
val_gen, loss) and rank 0's decision, agreed by every rank. Nothing changes the Spec
afterwards; the lock, the identity checks, the resume, the records and the training
read it. What only the loaded model can say (COMPUTE_DTYPE=auto, how many layers
multiply dense) is in Loaded.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping, NamedTuple

import olelo
from olelo import checks, distributed, identity, memory
from olelo import defaults as lab_defaults
from olelo.config import COMPUTE_DTYPES, LOSSES, QUANTIZED_MATMULS, mlx_lora_args, run_config
from olelo.records import EarlyStop, Recorder

STATES = ("new", "done", "resume", "busy", "refused")
SELECTS = ("val_loss", "val_chrf")
VAL_GEN_CAPS = ("longest", "each")
# VAL_GEN's sample of the validation split is the same for every run of that split,
# whatever its training SEED: seeds are then compared on the same sentences.
VAL_GEN_SAMPLE_SEED = 0
# What a resumed run keeps from its start (best/ and patience go on by the criterion and
# sample they started with), whatever the command gives now.
KEPT_ON_RESUME = ("select", "val_gen", "val_gen_loop_stop", "val_gen_cap")


def lab_parser(description: str | None = None) -> argparse.ArgumentParser:
    """train.py's own options (before `--`); defaults from olelo/defaults.py."""
    d = lab_defaults.DEFAULTS
    p = argparse.ArgumentParser(prog="train.py", description=description,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs-dir", default=olelo.runs.RUNS_DIR, help="where run records are written (default: %(default)s)")
    p.add_argument("--adapters-dir", default=olelo.runs.ADAPTERS_DIR,
                   help="where adapter weights are written (default: %(default)s)")
    p.add_argument("--rank", type=int, help="LoRA rank (config.yaml lora_parameters.rank; mlx-lm default 8)")
    p.add_argument("--scale", type=float, help="LoRA scale (mlx-lm default 20.0)")
    p.add_argument("--dropout", type=float, help="LoRA dropout (mlx-lm default 0.0)")
    p.add_argument("--lr-schedule", choices=["none", "cosine"], default=d["LR_SCHEDULE"],
                   help="cosine: linear warmup then cosine decay to 10%% of the learning rate (default: %(default)s)")
    p.add_argument("--warmup", type=int, help="warmup iterations for --lr-schedule cosine (default: 5%% of iters)")
    p.add_argument("--grad-clip", type=float, metavar="MAX_NORM",
                   help="scale each update's gradient by min(1, MAX_NORM / its norm) before the optimizer takes "
                        "it (the global L2 norm over all trained parameters, after averaging over ranks and "
                        "gradient accumulation; make: GRAD_CLIP). The grad_norm and grad_norm_max of the train "
                        "reports are the norms before clipping. Names the run (-clipN) (default: no clipping)")
    p.add_argument("--patience", type=int, default=d["PATIENCE"],
                   help="stop after N validations without a new best (by --select) (0: never; default: %(default)s)")
    p.add_argument("--val-gen", type=int, default=d["VAL_GEN"],
                   help="at each validation, translate this many validation sentences (a fixed seeded sample; "
                        "all when fewer) greedily and record their chrF++ (0: off; default: %(default)s)")
    p.add_argument("--val-gen-batch", type=int, default=32, help="generation batch size for --val-gen")
    p.add_argument("--val-gen-loop-stop", action="store_true",
                   help="in --val-gen, a sentence whose own output starts to loop stops there (cut at the loop's "
                        "first copy) and leaves the batch, as make eval LOOP_STOP=1 (make: VAL_LOOP_STOP=1)")
    p.add_argument("--val-gen-cap", choices=list(VAL_GEN_CAPS), default=d["VAL_GEN_CAP"],
                   help="--val-gen's generation cap: longest (1.25 x the sample's longest reference + 8 tokens, "
                        "for every sentence) or each (that rule with each sentence's own reference: a run-on "
                        "output stops sooner; make: VAL_GEN_CAP) (default: %(default)s)")
    p.add_argument("--select", choices=list(SELECTS),
                   help="what picks best/ and drives --patience (default: val_chrf when --val-gen > 0, else val_loss)")
    p.add_argument("--keep", default=d["KEEP"],
                   help="adapter checkpoints to keep: all, or N (the N newest); the training state "
                        "(optimizer, RNG, data order) is kept for the two newest (the older one is resumed "
                        "from should the newest be damaged) (default: %(default)s)")
    p.add_argument("--loss", choices=LOSSES, default=d["LOSS"],
                   help="training and validation loss: default (mlx-lm's), chunked (olelo/lean_loss.py: "
                        "the same values, computed in sequence chunks so the full logits never exist at once) "
                        "or auto (chunked on a CPU, default on a GPU; the manifest records the choice) "
                        "(default: %(default)s)")
    p.add_argument("--memory-limit-gb", type=float,
                   help="MLX's memory limit (make's MEM_LIMIT): past this many GB in use, MLX stops queueing work "
                        "ahead of the device and waits, so the peak stays near it unless a step needs more "
                        "(on CUDA most of the peak at batch >= 2 was queued work). Recorded per segment; "
                        "default: MLX's own limit")
    p.add_argument("--quantized-matmul", choices=QUANTIZED_MATMULS, default=d["QMATMUL"],
                   help="a quantized model's layers (and tied head) in training: quantized (quantized_matmul, "
                        "mlx-lm's), dense (multiply through weights dequantized for the occasion: the same "
                        "numbers up to rounding, faster on CUDA, a few GB more memory) or auto (dense on CUDA, "
                        "quantized elsewhere). Recorded per segment, not in the stamp (default: %(default)s)")
    p.add_argument("--compute-dtype", choices=COMPUTE_DTYPES, default=d["COMPUTE_DTYPE"],
                   help="the dtype the model's floating parameters (for a 4-bit model: scales, biases, norms) "
                        "and so its activations train in: model (as loaded), float32, or auto (float32 for a "
                        "quantized model on a CPU, where bfloat16 quantized matmuls were ~9x as slow; the model's "
                        "own elsewhere). Recorded per segment, not in the stamp (default: %(default)s)")
    p.add_argument("--force", action="store_true", help="train again into a new attempt folder")
    p.add_argument("--auto-batch-record", help="JSON written by auto_batch.py (BATCH=auto): kept in the manifest")
    return p


def parse_lab_args(argv, description: str | None = None) -> tuple[argparse.Namespace, list[str]]:
    """(train.py's options, the mlx_lm.lora command after `--`), each checked on its own."""
    if "--" not in argv:
        raise olelo.UserError("usage: train.py [options] -- mlx_lm.lora --model ... (see --help)")
    cut = argv.index("--")
    lab = lab_parser(description).parse_args(argv[:cut])
    if lab.select is None:
        lab.select = "val_chrf" if lab.val_gen > 0 else "val_loss"
    if lab.select == "val_chrf" and lab.val_gen <= 0:
        raise olelo.UserError("--select val_chrf needs --val-gen > 0 (VAL_GEN=64, say)")
    memory.check_memory_limit(lab.memory_limit_gb)
    if lab.keep != "all" and not (lab.keep.isdigit() and int(lab.keep) > 0):
        raise olelo.UserError(f"--keep {lab.keep}: use all or a positive number of checkpoints")
    cmd = argv[cut + 1:]
    if not cmd or cmd[0] != "mlx_lm.lora":
        raise olelo.UserError("after `--` give an mlx_lm.lora command line, e.g. -- mlx_lm.lora --model M --train --data D")
    for managed in ("-c", "--config", "--adapter-path", "--resume-adapter-file"):
        if managed in cmd:
            raise olelo.UserError(f"{managed} is set by the lab (per-run config and folders); leave it out")
    return lab, cmd


def freeze(value):
    """A read-only copy: mappings become MappingProxyType, lists tuples, all the way down."""
    if isinstance(value, Mapping):
        return MappingProxyType({k: freeze(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(freeze(v) for v in value)
    return value


def thaw(value):
    """freeze()'s inverse: plain dicts and lists (for YAML, JSON and mlx-lm)."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [thaw(v) for v in value]
    return value


@dataclass(frozen=True)
class Spec:
    """One segment of a run, every choice made: read by everything after resolve()."""
    cmd: tuple                 # the mlx_lm.lora command line given
    base: Mapping[str, Any]    # mlx_lm.lora's merged arguments (flag > YAML > default)
    config: Mapping[str, Any]  # config.yaml: what mlx-lm reads only from YAML
    runs: Path
    adapters: Path
    stamp: str                 # the run's folder name (with -aN for a later attempt)
    state: str                 # new, done or resume
    offset: int                # the iteration it starts from (0: new)
    # the lab's options, auto values resolved and a resumed run's kept ones in place
    patience: int
    lr_schedule: str
    warmup: int | None
    grad_clip: float | None    # GRAD_CLIP: the largest gradient norm an update takes (None: no clipping)
    select: str
    val_gen: int
    val_gen_batch: int
    val_gen_loop_stop: bool
    val_gen_cap: str
    keep: str
    loss: str
    loss_asked: str
    memory_limit_gb: float | None
    quantized_matmul: str
    compute_dtype: str         # as asked: auto is the loaded model's to resolve (Loaded)
    force: bool
    auto_batch_record: str | None
    set_aside: tuple = ()      # damaged checkpoints moved aside by this segment
    lock: Any = field(default=None, compare=False)  # the run folder's lock (rank 0)

    @property
    def run_dir(self) -> Path:
        return self.runs / self.stamp

    @property
    def adapter_dir(self) -> Path:
        return self.adapters / self.stamp

    def lab_options(self) -> dict:
        """The manifest's lab_options (what a resume keeps and checks)."""
        return {"patience": self.patience, "lr_schedule": self.lr_schedule, "select": self.select,
                "val_gen": self.val_gen, "keep": self.keep, "loss": self.loss,
                "val_gen_loop_stop": self.val_gen_loop_stop, "val_gen_cap": self.val_gen_cap,
                "grad_clip": self.grad_clip}


class Loaded(NamedTuple):
    """The model as it trains, and what loading it decided."""
    model: Any
    tokenizer: Any
    loss: Any                  # the loss function (olelo.lean_loss.loss_function)
    compute_dtype: str         # COMPUTE_DTYPE resolved for this model
    cast_arrays: int           # floating arrays cast to float32
    dense_layers: int          # quantized layers that multiply dense


def resolve(lab: argparse.Namespace, cmd: list[str], world) -> Spec:
    """The run's Spec: the command checked, auto values resolved, the run folder decided by
    rank 0 under its lock (resuming: with what the run started with) and agreed by every
    rank. `lab` is read, not changed."""
    from olelo import dequant, lean_loss

    base, config = check_command(lab, cmd, world)
    options = {key: getattr(lab, key) for key in KEPT_ON_RESUME}
    options["loss"] = lean_loss.resolve(lab.loss, base["fine_tune_type"])  # auto: per backend, recorded resolved
    # --loss stays out of the stamp: both losses give the same numbers (within float
    # rounding; tests/test_lean_loss.py), only the peak memory differs, so a run is
    # the same experiment under either. The manifest records which one it used.
    stamp = olelo.run_stamp(identity.dataset_label(base["data"]),
                            {**base, **config, "patience": lab.patience, "select": lab.select, "val_gen": lab.val_gen,
                             "val_gen_loop_stop": lab.val_gen_loop_stop, "val_gen_cap": lab.val_gen_cap,
                             "grad_clip": lab.grad_clip, "world_size": world.size()})
    runs, adapters = Path(lab.runs_dir), Path(lab.adapters_dir)
    state, attempt, offset, lock, refusal, set_aside = "new", 0, 0, None, "", []
    if world.rank() == 0:
        try:
            decided, state, lock = olelo.runs.choose_run_dir(runs, stamp, lab.force)
            if state in ("done", "resume"):  # the same stamp must also mean the same data and model
                # The model given now, not the path the run recorded: another folder of the same
                # name (the stamp holds only the name) is another model.
                action = "be up to date" if state == "done" else "resume"
                require_same_inputs(olelo.run_manifest(runs / decided), base["model"], action)
                require_same_config(runs / decided, config, action)
        except olelo.UserError as e:
            state, refusal, decided = "refused", str(e), stamp
        attempt = int(decided.rsplit("-a", 1)[1]) if decided != stamp else 0
        if state == "resume":
            offset, refusal, set_aside, options = resume_point(options, lab.loss, runs / decided, adapters / decided)
            state = "refused" if refusal else state
    # Rank 0 decided: every rank takes its decision (offset sent + 1: agree() sums, and -1 must survive).
    state_code, attempt, offset, select, val_gen, loss, loop_stop, cap = distributed.agree(
        world, [STATES.index(state), attempt, offset + 1, SELECTS.index(options["select"]), options["val_gen"],
                LOSSES.index(options["loss"]), int(bool(options["val_gen_loop_stop"])),
                VAL_GEN_CAPS.index(options["val_gen_cap"])])
    offset -= 1
    state = STATES[state_code]
    stamp = f"{stamp}-a{attempt}" if attempt else stamp
    if state == "busy":
        holder = lock.holder() if lock else "another process"
        raise olelo.UserError(f"run {stamp} is being trained right now ({holder} holds {runs / stamp}/.lock); "
                              f"wait for it or stop it")
    if state == "refused":
        raise olelo.UserError(refusal or "rank 0 refused this run (see its message)")
    if offset < 0:
        raise olelo.UserError(f"{adapters / stamp} has checkpoints without training state (written before exact "
                              f"resume); FORCE=1 trains a new attempt")
    return Spec(cmd=tuple(cmd), base=freeze(base), config=freeze(config), runs=runs, adapters=adapters, stamp=stamp,
                state=state, offset=offset, patience=lab.patience, lr_schedule=lab.lr_schedule, warmup=lab.warmup,
                grad_clip=lab.grad_clip,
                select=SELECTS[select], val_gen=val_gen, val_gen_batch=lab.val_gen_batch,
                val_gen_loop_stop=bool(loop_stop), val_gen_cap=VAL_GEN_CAPS[cap], keep=lab.keep,
                loss=LOSSES[loss], loss_asked=lab.loss, memory_limit_gb=lab.memory_limit_gb,
                quantized_matmul=dequant.resolve(lab.quantized_matmul), compute_dtype=lab.compute_dtype,
                force=lab.force, auto_batch_record=lab.auto_batch_record, set_aside=freeze(set_aside), lock=lock)


def check_command(lab, cmd: list[str], world) -> tuple[dict, dict]:
    """(mlx_lm.lora's merged arguments, config.yaml): every knob and the data checked
    before any folder is made."""
    base = vars(mlx_lora_args(cmd))
    config = run_config(lab, base)
    if not base["train"]:
        raise olelo.UserError("the mlx_lm.lora command must include --train")
    checks.training_knobs(base, lab, world.size())
    data = Path(base["data"])
    if not (data / "train.jsonl").is_file():
        raise olelo.UserError(f"{data}/train.jsonl not found; build the data first (make data)")
    note = identity.verify_split(data)
    if note and world.rank() == 0:
        print(note, file=sys.stderr)
    return base, config


def require_same_inputs(manifest: dict, model: str, action: str) -> None:
    """The run's recorded data and model are the ones there now and the ones given now."""
    found = identity.changes(manifest, model=model)
    if found:
        model_too = any(f.startswith(f"the model {model} ") for f in found)
        raise olelo.UserError(f"run {manifest.get('stamp')}: cannot {action}: {'; '.join(found)}. "
                              f"{identity.WHAT_TO_DO}" + (", or give the model folder a name of its own (the "
                                                          "run's name comes from it)" if model_too else ""))


def require_same_config(run_dir: Path, config: dict, action: str) -> None:
    """The run's config.yaml is what this command gives (a run goes on with the settings it
    started with, and its record must say what trained it): an edit is refused, not ignored.
    A missing config.yaml is written again from the command (when the run resumes)."""
    import yaml

    path = run_dir / "config.yaml"
    if not path.is_file():
        return
    try:
        recorded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        recorded = f"not valid YAML ({str(e).splitlines()[0]})"
    given = yaml.safe_load(yaml.safe_dump(thaw(config), sort_keys=False))
    if recorded != given:
        if isinstance(recorded, dict):
            keys = sorted(k for k in set(recorded) | set(given) if recorded.get(k) != given.get(k))
            what = f"{', '.join(keys)} differ from what this command gives: {json.dumps({k: given.get(k) for k in keys})}"
        else:
            what = str(recorded)
        raise olelo.UserError(f"run {run_dir.name}: cannot {action}: {path} was edited since the run started ({what}). "
                              f"A run goes on with the settings it started with: restore the file, or remove it "
                              f"(it is written again from the command), or give the changed settings as options "
                              f"(RANK=, SCALE=, DROPOUT=, LR_SCHEDULE=, WARMUP=) for a run of its own")


def resume_point(options: dict, loss_asked: str, run_dir: Path, adapter_dir: Path) -> tuple[int, str, list, dict]:
    """(iteration to resume from, refusal or "", checkpoints set aside, the options it goes
    on with): the newest checkpoint with its training state (-1: weights only). best/ and
    patience go on by the criterion and sample they started with; a loss asked for by name
    is refused, not swapped (LOSS=chunked is asked for to fit in memory); LOSS=auto takes
    the run's. `options` (select, val_gen, val_gen_loop_stop, val_gen_cap, loss) is not changed."""
    options = dict(options)
    resumable, refusal, set_aside = verified_states(run_dir.name, adapter_dir)
    if refusal:
        return 0, refusal, set_aside, options
    offset = resumable[-1] if resumable else -1 if olelo.runs.checkpoints(adapter_dir) else 0
    recorded = json.loads((run_dir / "manifest.json").read_text()).get("lab_options", {})
    for key in KEPT_ON_RESUME:
        if key in recorded and recorded[key] != options[key]:
            print(f"note: resuming {run_dir.name} with its recorded {key} {recorded[key]}, not {options[key]}",
                  file=sys.stderr)
            options[key] = recorded[key]
    started = recorded.get("loss", "default")  # runs from before --loss used mlx-lm's
    if started != options["loss"] and loss_asked == "auto":
        print(f"note: resuming {run_dir.name} with the loss it started with, LOSS={started}", file=sys.stderr)
        options["loss"] = started
    if started != options["loss"]:
        return offset, (f"run {run_dir.name} was started with LOSS={started}; resume it with "
                        f"LOSS={started}, or FORCE=1 trains a new attempt with LOSS={options['loss']}"), set_aside, options
    return offset, "", set_aside, options


def verified_states(stamp: str, adapter_dir: Path) -> tuple[list[int], str, list[dict]]:
    """(checkpoints with training state that verify, refusal or "", those set aside): a
    damaged newest one is moved aside into damaged/ (so it counts nowhere, eval included)
    and the one before is resumed from; when none is left intact, the refusal names each
    damaged file. What was set aside goes into the segment's record."""
    from olelo import trainer

    resumable = trainer.states(adapter_dir)
    damaged = []
    while resumable:
        problem = trainer.verify(adapter_dir, resumable[-1])
        if problem is None:
            break
        damaged.append((resumable.pop(), problem))
    if damaged and not resumable:
        return [], (f"run {stamp}: cannot resume: no intact checkpoint to resume from ("
                    f"{'; '.join(problem for _, problem in damaged)}). FORCE=1 trains a new attempt "
                    f"(this run's folders are kept)"), []
    aside = adapter_dir / "damaged"
    for n, problem in damaged:
        aside.mkdir(exist_ok=True)
        for f in olelo.runs.checkpoint_files(adapter_dir, n).values():
            if f.is_file():
                os.replace(f, aside / f.name)
        print(f"note: checkpoint {n} of {stamp} is damaged: {problem}; its files are moved to {aside}/, "
              f"and the run resumes from checkpoint {resumable[-1]}", file=sys.stderr)
    return resumable, "", [{"iteration": n, "problem": problem, "moved_to": str(aside)} for n, problem in damaged]


def load_model_checked(spec: Spec, world) -> Loaded:
    """The model as it trains, checked against the command first: an invalid run
    leaves no run folder behind."""
    base = spec.base
    try:
        model, tokenizer = olelo.load_model(base["model"])
        checks.layers_vs_model(base["num_layers"], model)
        from olelo import dequant, lean_loss

        compute_dtype = dequant.resolve_compute_dtype(spec.compute_dtype, model)
        cast_arrays = dequant.apply_compute_dtype(model, compute_dtype)
        loss = lean_loss.loss_function(spec.loss, model)
        dense_layers = dequant.apply(model, spec.quantized_matmul)
        warning = checks.max_seq_vs_data(base["max_seq_length"], tokenizer, Path(base["data"]) / "train.jsonl")
    except BaseException:
        if world.rank() == 0:
            olelo.runs.forget_new_folder(spec.runs, spec.stamp, spec.lock)
        raise
    if world.rank() == 0:
        for w in (warning, olelo.models.blas_warning()):
            if w:
                print(f"warning: {w}", file=sys.stderr)
    return Loaded(model, tokenizer, loss, compute_dtype, cast_arrays, dense_layers)


def record_start(spec: Spec, loaded: Loaded, world) -> tuple[dict, list[str]]:
    """Rank 0 writes config.yaml, command.sh, runs/latest and the manifest (status
    running, code, environment, data and model identity); returns (the manifest, the
    full mlx_lm.lora command it trains with)."""
    import mlx.core as mx

    base, cmd = spec.base, list(spec.cmd)
    run_dir, adapter_dir = spec.run_dir, spec.adapter_dir
    config_path = run_dir / "config.yaml"
    manifest = {"stamp": spec.stamp, "dataset": Path(base["data"]).name, "model": base["model"],
                "data_dir": base["data"], "adapter_dir": str(adapter_dir), "iters": base["iters"], "segments": [],
                "lab_options": spec.lab_options(), "mlx_lm_command": cmd}
    if spec.state == "resume" and world.rank() == 0:
        manifest = json.loads((run_dir / "manifest.json").read_text())
        if cmd != manifest["mlx_lm_command"]:
            print(f"note: resuming {spec.stamp} with its recorded command, not this one", file=sys.stderr)
    full_cmd = manifest["mlx_lm_command"] + ["-c", str(config_path), "--adapter-path", str(adapter_dir)]
    if world.rank() != 0:
        distributed.all_hosts(world)  # a collective: every rank takes part
        return manifest, full_cmd
    run_dir.mkdir(parents=True, exist_ok=True)
    if spec.state == "new" or not config_path.is_file():  # (removed by hand: written again, as it was)
        import yaml
        olelo.atomic_write_text(config_path, yaml.safe_dump(thaw(spec.config), sort_keys=False))
    if spec.state == "new":
        olelo.atomic_write_text(run_dir / "command.sh", "#!/usr/bin/env bash\n# Run from the repository root.\n")
        (run_dir / "metrics.jsonl").unlink(missing_ok=True)
    with open(run_dir / "command.sh", "a") as f:
        if spec.state == "resume":  # same command: the checkpoint holds everything else
            f.write(f"# resumed from iteration {spec.offset} (weights, optimizer, schedule, data order, RNG)\n")
        else:
            f.write(shlex.join(full_cmd) + "\n")
    olelo.runs.point_latest(spec.runs / "latest", spec.stamp)
    manifest.update({
        "status": "running", "pid": os.getpid(), "host": platform.node(),
        "git": olelo.runs.git_info(), "environment": olelo.runs.environment_info(),
        "data": identity.data_identity(base["data"]), "model_identity": identity.model_identity(base["model"]),
        "world_size": world.size(), "hosts": sorted(set(distributed.all_hosts(world))),
        "workarounds": ["collectives on the GPU stream (NCCL)"] if world.size() > 1 and mx.cuda.is_available() else [],
    })
    if spec.auto_batch_record:
        manifest["auto_batch"] = json.loads(Path(spec.auto_batch_record).read_text())
    manifest.setdefault("started", olelo.runs.now())
    manifest["segments"].append({"started": olelo.runs.now(), "offset": spec.offset, "command": full_cmd,
                                 **({"set_aside": thaw(spec.set_aside)} if spec.set_aside else {}),
                                 "memory_limit_gb": spec.memory_limit_gb,
                                 "quantized_matmul": spec.quantized_matmul, "dense_matmul_layers": loaded.dense_layers,
                                 "compute_dtype": loaded.compute_dtype, "cast_to_float32": loaded.cast_arrays})
    olelo.atomic_write_json(run_dir / "manifest.json", manifest)
    return manifest, full_cmd


def train_and_record(spec: Spec, loaded: Loaded, manifest: dict, full_cmd: list[str], world) -> None:
    """Train from spec.offset to the end (console mirrored into train.log), then record
    the status (finished, stopped-early, failed) and best/ in the manifest, whatever happened."""
    rank = world.rank()
    run_dir, adapter_dir, offset = spec.run_dir, spec.adapter_dir, spec.offset
    # The config is passed in, not read back: on other hosts the run folder does not exist.
    args = mlx_lora_args(full_cmd, thaw(spec.config))
    log = open(run_dir / "train.log", "a", encoding="utf-8") if rank == 0 else open(os.devnull, "w")
    sys.stdout, sys.stderr = olelo.runs.Tee(sys.__stdout__, log), olelo.runs.Tee(sys.__stderr__, log)
    status, error = "failed", None
    try:
        if offset >= manifest["iters"]:
            status = "finished"
            if rank == 0:
                shutil.copy(olelo.runs.checkpoint_files(adapter_dir, offset)["adapters"],
                            adapter_dir / "adapters.safetensors")
        else:
            if rank == 0:
                print(f"[olelo] run {spec.stamp}: {'resuming at iteration %d' % offset if offset else 'starting'}")
            if spec.memory_limit_gb is not None:
                memory.set_memory_limit(spec.memory_limit_gb)
                if rank == 0:
                    print(f"[olelo] memory limit {spec.memory_limit_gb:g} GB: past it MLX waits for the device "
                          f"instead of queueing more work")
            if rank == 0 and loaded.cast_arrays:
                print(f"[olelo] {loaded.cast_arrays} floating arrays of the model train in float32 "
                      f"(COMPUTE_DTYPE={loaded.compute_dtype})")
            if rank == 0 and loaded.dense_layers:
                print(f"[olelo] {loaded.dense_layers} quantized layers multiply through dequantized weights "
                      f"(QMATMUL=dense)")
            status = train(args, spec, loaded)
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
            # A second Ctrl-C must not cut the record short.
            previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
            try:
                record_end(manifest, run_dir / "manifest.json", adapter_dir, status, error)
            finally:
                signal.signal(signal.SIGINT, previous)
            print(f"[olelo] {status}: {run_dir} (adapters in {adapter_dir})")
        sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
        log.close()


def record_end(manifest: dict, manifest_path: Path, adapter_dir: Path, status: str, error: str | None) -> None:
    manifest["status"] = status
    manifest["ended"] = manifest["segments"][-1]["ended"] = olelo.runs.now()
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


def train(args, spec: Spec, loaded: Loaded) -> str:
    """Set up as mlx_lm.lora does, then the lab's loop (olelo/trainer.py) from spec.offset,
    with the loaded loss (olelo.lean_loss.loss_function) for training and validation."""
    import mlx.core as mx
    import numpy as np
    from mlx.utils import tree_flatten
    from mlx_lm.cli_ui import make_console, print_lora_run_header
    from mlx_lm.tuner.datasets import CacheDataset, load_dataset
    from mlx_lm.tuner.utils import print_trainable_parameters
    from mlx_lm.utils import save_config

    from olelo import trainer

    model, tokenizer = loaded.model, loaded.tokenizer
    run_dir, adapter_dir, offset = spec.run_dir, spec.adapter_dir, spec.offset
    np.random.seed(args.seed)  # as mlx_lm.lora.run does
    train_set, valid_set, _ = load_dataset(args, tokenizer)
    memory.preflight(args, train_set, Path(run_dir).parent / "mem-profile", spec.loss, spec.quantized_matmul,
                     at_need=spec.memory_limit_gb is not None)
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
    recorder = Recorder(model, run_dir, adapter_dir, spec.patience, spec.select, writer=rank == 0,
                        restored=resume and resume["callback"])
    val_gen = None
    if spec.val_gen > 0 and len(valid_set):
        records = olelo.read_jsonl(Path(args.data) / "valid.jsonl")
        val_gen = trainer.ValChrf(records, spec.val_gen, VAL_GEN_SAMPLE_SEED, tokenizer, spec.val_gen_batch, world,
                                  loop_stop=spec.val_gen_loop_stop, cap=spec.val_gen_cap)
    try:
        trainer.train(model, trainer.make_optimizer(args), CacheDataset(train_set), CacheDataset(valid_set),
                      trainer.training_args(args, adapter_dir), loss=loaded.loss, callback=recorder, val_gen=val_gen,
                      resume=resume, keep=spec.keep, grad_clip=spec.grad_clip)
    except EarlyStop as stop:
        best = recorder.best
        print(f"[olelo] early stop at iteration {stop}: no better {spec.select} in {spec.patience} validations "
              f"(best {best[spec.select]:.4f} at iteration {best['iteration']})")
        if rank == 0:
            final = adapter_dir / "adapters.safetensors"
            mx.save_safetensors(str(final), dict(tree_flatten(model.trainable_parameters())))
        return "stopped-early"
    return "finished"


def life(argv, description: str | None = None) -> int:
    """One segment of a run, step by step: check the command and resolve the Spec (run
    folder: new, resume, up to date, busy), load and check the model, record the start,
    train, record how it ended."""
    lab, cmd = parse_lab_args(argv, description)
    world = distributed.init()
    spec = resolve(lab, cmd, world)
    if spec.state == "done":
        if world.rank() == 0:
            olelo.runs.point_latest(spec.runs / "latest", spec.stamp)
            print(f"{spec.run_dir}: up to date (status finished; FORCE=1 trains a new attempt)")
        return 0
    loaded = load_model_checked(spec, world)
    manifest, full_cmd = record_start(spec, loaded, world)
    train_and_record(spec, loaded, manifest, full_cmd, world)
    return 0
