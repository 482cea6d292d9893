"""The lab's training loop: mlx-lm's train(), step for step, with checkpoints a run
resumes from exactly, and validation by translation quality.

Not a command: scripts/train.py runs it. mlx-lm 0.32.2 resumes only adapter weights
(its optimizer state, schedule step and data order restart). Here checkpoint N is
three files, side by side:

    NNNNNNN_adapters.safetensors   adapter weights (mlx-lm's name and format)
    NNNNNNN_state.safetensors      optimizer state (moments, step, learning rate) and
                                   each rank's unfinished sums (gradient accumulation,
                                   losses, tokens and gradient norms since the last report)
    NNNNNNN_state.json             iteration, numpy and mx.random RNG states (the data
                                   order), report counters, the recorder's state

Each file is written to a temporary name and renamed; the JSON comes last, so a
checkpoint without it (a kill mid-save) is ignored and the one before is used. The JSON
records the size and sha256 of the two safetensors files: a checkpoint counts only once
verify() finds them, and the JSON, intact (a file truncated or damaged since, by a full
disk or a copy, is found before it is resumed from). The training state of the two
newest checkpoints is kept, so a damaged newest one leaves the one before to resume from.
Reused from mlx-lm: datasets, iterate_batches, default_loss, evaluate, LoRA
conversion, the optimizers, the console UI, adapter_config.json.
"""

from __future__ import annotations

import os
import re
import time
from functools import partial
from pathlib import Path

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import numpy as np
from mlx.nn.utils import average_gradients
from mlx.utils import tree_flatten, tree_map, tree_map_with_path, tree_reduce
from mlx_lm.tuner.trainer import TrainingArgs, default_loss, evaluate, grad_checkpoint, iterate_batches

import olelo
from olelo.files import safetensors_problem
from olelo.runs import checkpoint_files

STATE_RE = re.compile(r"^(\d{7})_state\.json$")
ADAPTERS_RE = re.compile(r"^(\d{7})_adapters\.safetensors$")
OPTIMIZERS = {"adam": optim.Adam, "adamw": optim.AdamW, "muon": optim.Muon, "sgd": optim.SGD,
              "adafactor": optim.Adafactor}


# ---------------------------------------------------------------- setup (as mlx_lm.lora.train_model)

def prepare_model(args, model) -> None:
    """Seed mx.random, freeze the model, add LoRA/DoRA layers (or unfreeze the last
    layers for full fine-tuning): what mlx_lm.lora.train_model does before training."""
    from mlx_lm.tuner.utils import linear_to_lora_layers

    mx.random.seed(args.seed)
    model.freeze()
    if args.num_layers > len(model.layers):
        raise olelo.UserError(f"--num-layers {args.num_layers}: the model has only {len(model.layers)} layers")
    if args.fine_tune_type == "full":
        for layer in model.layers[-max(args.num_layers, 0):]:
            layer.unfreeze()
        args.lora_parameters = None
    elif args.fine_tune_type in ("lora", "dora"):
        linear_to_lora_layers(model, args.num_layers, args.lora_parameters, use_dora=args.fine_tune_type == "dora")
    else:
        raise olelo.UserError(f"unknown --fine-tune-type {args.fine_tune_type!r}")


def make_optimizer(args):
    """The optimizer mlx_lm.lora.train_model builds (learning rate or schedule)."""
    from mlx_lm.tuner.utils import build_schedule

    name = args.optimizer.lower()
    if name not in OPTIMIZERS:
        raise olelo.UserError(f"unknown optimizer {args.optimizer!r}; use one of {', '.join(OPTIMIZERS)}")
    lr = build_schedule(args.lr_schedule) if args.lr_schedule else args.learning_rate
    return OPTIMIZERS[name](learning_rate=lr, **args.optimizer_config.get(name, {}))


def training_args(args, adapter_dir: Path) -> TrainingArgs:
    return TrainingArgs(batch_size=args.batch_size, iters=args.iters, val_batches=args.val_batches,
                        steps_per_report=args.steps_per_report, steps_per_eval=args.steps_per_eval,
                        steps_per_save=args.save_every, adapter_file=adapter_dir / "adapters.safetensors",
                        max_seq_length=args.max_seq_length, grad_checkpoint=args.grad_checkpoint,
                        grad_accumulation_steps=args.grad_accumulation_steps,
                        clear_cache_threshold=args.clear_cache_threshold)


# ---------------------------------------------------------------- gradient norm and clipping

def global_norm(grads) -> mx.array:
    """The L2 norm of all the arrays of `grads` (a tree) together, summed in float32."""
    return mx.sqrt(tree_reduce(lambda acc, g: acc + mx.sum(mx.square(g.astype(mx.float32))), grads,
                               mx.array(0.0, mx.float32)))


def clip_by_norm(grads, max_norm: float, norm: mx.array):
    """`grads` scaled by min(1, max_norm / norm), `norm` their global_norm (GRAD_CLIP): a
    gradient longer than max_norm is shortened to max_norm, its direction kept; a shorter
    one is left as it is (times exactly 1). Each array keeps its dtype. (As
    mlx.optimizers.clip_grad_norm, without its 1e-6 added to the norm, and summed in
    float32 for bfloat16 too.)"""
    scale = mx.minimum(mx.array(max_norm, mx.float32) / norm, 1.0)  # norm 0: inf -> 1
    return tree_map(lambda g: (g * scale).astype(g.dtype), grads)


# ---------------------------------------------------------------- checkpoint files

def states(adapter_dir: Path) -> list[int]:
    """Iterations whose checkpoint can be resumed from (all three files there), ascending."""
    found = []
    d = Path(adapter_dir)
    if d.is_dir():
        for f in d.iterdir():
            m = STATE_RE.match(f.name)
            if m and all(p.is_file() for p in checkpoint_files(d, int(m[1])).values()):
                found.append(int(m[1]))
    return sorted(found)


def save_arrays(path: Path, arrays: dict) -> dict:
    """mx.save_safetensors, atomically and durably (a kill or power cut leaves the old file
    or the new). Returns the file's size and sha256, as written (verify() checks them)."""
    tmp = path.with_name(f".{path.stem}.tmp.safetensors")  # mx appends .safetensors to other names
    mx.save_safetensors(str(tmp), arrays)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    written = {"size": tmp.stat().st_size, "sha256": olelo.sha256_file(tmp)}
    os.replace(tmp, path)
    return written


STATES_KEPT = 2  # the newest checkpoint's training state, and the one before should it be damaged


def prune(adapter_dir: Path, newest: int, keep: str) -> None:
    """Drop the training state of all checkpoints but `newest` and the one before it (the
    fallback); with keep=N also the adapter weights of all but the N newest checkpoints up
    to `newest` (a fallback's weights stay with its state: they are part of it)."""
    kept = [n for n in states(adapter_dir) if n <= newest][-STATES_KEPT:]
    for n in states(adapter_dir):
        if n not in kept:
            p = checkpoint_files(adapter_dir, n)
            p["json"].unlink(missing_ok=True)  # first: without it the others are not a checkpoint
            p["state"].unlink(missing_ok=True)
    if keep != "all":
        older = sorted(int(m[1]) for f in Path(adapter_dir).iterdir()
                       if (m := ADAPTERS_RE.match(f.name)) and int(m[1]) < newest)
        for n in older[: max(0, len(older) - (int(keep) - 1))]:
            if n not in kept:
                checkpoint_files(adapter_dir, n)["adapters"].unlink()


STATE_KEYS = ("iteration", "world_size", "steps", "trained_tokens", "train_time", "mx_key", "data")


def verify(adapter_dir: Path, n: int) -> str | None:
    """None when checkpoint n can be resumed from, else what is wrong, naming the file: its
    JSON must be whole, and the weights and state the sizes and sha256 it recorded (a
    checkpoint written before these were recorded: their structure is checked)."""
    import json

    p = checkpoint_files(adapter_dir, n)
    try:
        state = json.loads(p["json"].read_bytes())
    except (OSError, ValueError) as e:
        return f"{p['json']}: damaged ({'empty' if not p['json'].stat().st_size else e})"
    missing = [k for k in STATE_KEYS if not isinstance(state, dict) or k not in state]
    if missing or state["iteration"] != n:
        return f"{p['json']}: damaged (not checkpoint {n}'s record: " \
               f"{'no ' + ', '.join(missing) if missing else 'iteration %r' % state['iteration']})"
    recorded = state.get("files") if isinstance(state.get("files"), dict) else {}
    for kind in ("adapters", "state"):
        f = p[kind]
        if not f.is_file():
            return f"{f}: missing"
        want = recorded.get(kind)
        if want is None:
            problem = safetensors_problem(f)
            if problem:
                return f"{f}: {problem}"
            continue
        want = want if isinstance(want, dict) else {}
        if f.stat().st_size != want.get("size"):
            return f"{f}: {f.stat().st_size} bytes, the checkpoint wrote {want.get('size')} (truncated or replaced)"
        if olelo.sha256_file(f) != want.get("sha256"):
            return f"{f}: damaged (its sha256 is not the one the checkpoint recorded)"
    return None


def load_state(adapter_dir: Path, n: int) -> dict:
    """Checkpoint n's JSON, with its arrays under "arrays" and the weights' path under "adapters"."""
    import json

    p = checkpoint_files(adapter_dir, n)
    state = json.loads(p["json"].read_text())
    try:
        state["arrays"] = mx.load(str(p["state"]))
    except (RuntimeError, ValueError, OSError) as e:
        raise olelo.UserError(f"{p['state']}: cannot be read ({e}); remove it and run the same command again "
                              f"to resume from the checkpoint before it") from None
    state["adapters"] = p["adapters"]
    return state


def rank_local(world, x) -> mx.array:
    """x of every rank, stacked: shape (world size, *x.shape), on every rank."""
    x = mx.array(x)[None]
    return x if world.size() == 1 else mx.distributed.all_gather(x, stream=mx.cpu)


def mx_key() -> list[int]:
    return [int(v) for v in mx.random.state[0].tolist()]


def set_mx_key(key: list[int]) -> None:
    # mx.random.seed(s) sets the key to [s >> 32, s & 0xffffffff]: any key can be restored.
    mx.random.seed((int(key[0]) << 32) | int(key[1]))


def numpy_state() -> dict:
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    return {"name": name, "keys": keys.tolist(), "pos": int(pos), "has_gauss": int(has_gauss), "gauss": float(gauss)}


def set_numpy_state(s: dict) -> None:
    np.random.set_state((s["name"], np.array(s["keys"], dtype=np.uint32), s["pos"], s["has_gauss"], s["gauss"]))


class BatchStream:
    """mlx-lm's iterate_batches(loop=True), with the position it can be restored to.

    iterate_batches draws each epoch's batch order from numpy's global RNG, which
    validation draws from too. A position is (batches served, the global RNG state
    when the current epoch's order was drawn, the global RNG state now)."""

    def __init__(self, iterate, dataset, batch_size, max_seq_length, world, served=0, epoch_rng=None, rng=None):
        self.per_epoch = len(dataset) // batch_size  # = len(batch_idx) in iterate_batches
        self.batches = iterate(dataset=dataset, batch_size=batch_size, max_seq_length=max_seq_length,
                               loop=True, comm_group=world)
        self.served, self.epoch_rng = 0, None
        if served % max(self.per_epoch, 1):
            set_numpy_state(epoch_rng)  # replay the current epoch's order up to where it was
            for _ in range(served % self.per_epoch):
                next(self)
        self.served = served
        if rng is not None:
            set_numpy_state(rng)

    def __next__(self):
        if self.per_epoch and self.served % self.per_epoch == 0:
            self.epoch_rng = numpy_state()
        self.served += 1
        return next(self.batches)

    def position(self) -> dict:
        return {"served": self.served, "epoch_rng": self.epoch_rng, "rng": numpy_state()}


# ---------------------------------------------------------------- validation by translation

class ValChrf:
    """chrF++ of greedy translations of a fixed, seeded sample of the validation split.

    Prompts, batching and decoding are olelo/generate.py's, the code scripts/translate.py
    runs (the training prompt, mlx-lm's batch_generate); the score is olelo/scores.py's
    chrF++, the one scripts/score.py reports. With several
    ranks each translates its share and the hypotheses are gathered. RNG states are
    put back afterwards, so generating changes nothing in training."""

    def __init__(self, records: list[dict], n: int, seed: int, tokenizer, batch_size: int, world,
                 loop_stop: bool = False, cap: str = "longest"):
        from olelo import generate

        if n < len(records):
            pick = np.random.RandomState(seed).choice(len(records), size=n, replace=False)
            records = [records[i] for i in sorted(pick)]
        try:
            self.refs = [olelo.record_source_target(r)[1] for r in records]
        except (KeyError, TypeError):
            raise olelo.UserError("VAL_GEN needs chat records (system/user/assistant messages) in valid.jsonl; "
                                  "use VAL_GEN=0 for other formats") from None
        self.records, self.tokenizer, self.batch_size, self.world = records, tokenizer, batch_size, world
        self.loop_stop = loop_stop
        if cap not in ("longest", "each"):
            raise olelo.UserError(f"VAL_GEN_CAP={cap}: use longest or each")
        # longest: one cap, 1.25 x the sample's longest reference + 8; each: that rule per sentence
        self.max_tokens = (generate.default_max_tokens(tokenizer, records) if cap == "longest"
                           else generate.own_max_tokens(tokenizer, records))
        self.cap = cap
        self.mine = list(range(world.rank(), len(records), world.size()))

    def __call__(self, model) -> dict:
        from olelo import scores
        from olelo import generate

        np_state, key = np.random.get_state(), mx_key()
        tic = time.perf_counter()
        model.eval()
        caps = self.max_tokens if self.cap == "longest" else [self.max_tokens[i] for i in self.mine]
        rows = generate.translate(model, self.tokenizer, [self.records[i] for i in self.mine],
                                   caps, self.batch_size, progress=False, loop_stop=self.loop_stop)
        hyps = dict(zip(self.mine, (r["hypothesis"] for r in rows)))
        tokens = sum(r["tokens"] for r in rows)
        stopped = sum(bool(r.get("loop_stopped")) for r in rows)
        if self.world.size() > 1:
            hyps = gather_texts(self.world, hyps)
            tokens = int(rank_local(self.world, tokens).sum().item())
            stopped = int(rank_local(self.world, stopped).sum().item())
        order = sorted(hyps)
        chrf = scores.new_metrics()["chrf"].corpus_score([hyps[i] for i in order], [[self.refs[i] for i in order]])
        np.random.set_state(np_state)
        set_mx_key(key)
        out = {"val_chrf": round(chrf.score, 4), "val_gen_n": len(order), "val_gen_tokens": tokens,
               "val_gen_time": round(time.perf_counter() - tic, 3)}
        if self.loop_stop:
            out["val_gen_stopped"] = stopped
        return out


def gather_texts(world, texts: dict[int, str]) -> dict[int, str]:
    """Every rank's {index: text}, merged, on every rank (JSON bytes padded to the longest)."""
    import json

    data = json.dumps(texts).encode()
    sizes = rank_local(world, len(data)).tolist()
    padded = np.zeros(max(sizes), np.uint8)
    padded[: len(data)] = np.frombuffer(data, np.uint8)
    gathered = np.array(rank_local(world, mx.array(padded)))
    merged = {}
    for row, size in zip(gathered, sizes):
        merged.update({int(k): v for k, v in json.loads(bytes(row[:size])).items()})
    return merged


# ---------------------------------------------------------------- the loop

def train(model, optimizer, train_dataset, val_dataset, args: TrainingArgs, *, loss=default_loss,
          iterate_batches=iterate_batches, callback=None, val_gen=None, resume: dict | None = None,
          keep: str = "all", grad_clip: float | None = None):
    """mlx_lm.tuner.trainer.train, the same steps and reports, plus: global
    iteration numbers, resumable checkpoints (`resume`: load_state's dict),
    val_gen's scores beside each validation, `keep` (see prune), the gradient's norm
    in each train report (grad_norm: the mean over the updates since the last report,
    grad_norm_max: their largest; the gradient the optimizer is given, before any
    clipping) and `grad_clip` (see clip_by_norm; None: off).

    `loss(model, batch, lengths) -> (loss, ntoks)` is used for training and validation
    (validation uses `loss.validation` where the loss has one: the same value, without
    the work for a gradient, as lean_loss.chunked_loss offers).
    The callback may have checkpoint_state() (saved in each checkpoint)."""
    from mlx_lm.cli_ui import TrainUI
    from mlx_lm.utils import maybe_set_recommended_wired_limit

    maybe_set_recommended_wired_limit()
    world = mx.distributed.init()
    rank = world.rank()
    adapter_dir = Path(args.adapter_file).parent
    if args.grad_checkpoint:
        grad_checkpoint(model.layers[0])
    ga_steps = args.grad_accumulation_steps
    if ga_steps < 1:
        raise olelo.UserError("--grad-accumulation-steps must be at least 1")

    # Counters between reports and the gradient sum between updates are rank-local. The
    # gradient norms are summed over the updates since the last report (the same on every
    # rank: the gradient is averaged over the ranks first).
    start, losses, n_tokens, steps, trained_tokens, train_time, grad_accum = 0, 0, 0, 0, 0, 0.0, None
    norm_sum, norm_max, updates = mx.array(0.0, mx.float32), mx.array(0.0, mx.float32), 0
    position = {}
    if resume:
        if resume["world_size"] != world.size():
            raise olelo.UserError(f"checkpoint {resume['iteration']} was written by {resume['world_size']} ranks, "
                                  f"this run has {world.size()}; resume with the same number of processes")
        arrays = resume["arrays"]
        model.load_weights(str(resume["adapters"]), strict=False)
        restore_optimizer(optimizer, model, {k[len("optimizer."):]: v for k, v in arrays.items()
                                             if k.startswith("optimizer.")})
        start, steps = resume["iteration"], resume["steps"]
        trained_tokens, train_time = resume["trained_tokens"], resume["train_time"]
        if steps:
            losses, n_tokens = arrays["local.losses"][rank], arrays["local.n_tokens"][rank]
        updates = resume.get("updates", 0)  # (checkpoints from before grad_norm: the report counts the rest)
        if updates:
            norm_sum, norm_max = arrays["local.norm_sum"][rank], arrays["local.norm_max"][rank]
        grads = {k[len("local.grad."):]: v[rank] for k, v in arrays.items() if k.startswith("local.grad.")}
        if grads:
            grad_accum = tree_map_with_path(lambda path, _: grads[path], model.trainable_parameters())
        set_mx_key(resume["mx_key"])
        position = resume["data"]
    batches = BatchStream(iterate_batches, train_dataset, args.batch_size, args.max_seq_length, world, **position)

    loss_value_and_grad = nn.value_and_grad(model, loss)
    validation_loss = getattr(loss, "validation", loss)
    state = [model.state, optimizer.state, mx.random.state]

    @partial(mx.compile, inputs=state, outputs=state)
    def step(batch, prev_grad, do_update):
        (lvalue, toks), grad = loss_value_and_grad(model, *batch)
        if prev_grad is not None:
            grad = tree_map(lambda x, y: x + y, grad, prev_grad)
        norm = None
        if do_update:
            grad = average_gradients(grad)
            if ga_steps > 1:
                grad = tree_map(lambda x: x / ga_steps, grad)
            norm = global_norm(grad)
            if grad_clip is not None:
                grad = clip_by_norm(grad, grad_clip, norm)
            optimizer.update(model, grad)
            grad = None
        return lvalue, toks, grad, norm

    def checkpoint(it):
        local = {"losses": losses, "n_tokens": n_tokens, "norm_sum": norm_sum, "norm_max": norm_max}
        if grad_accum is not None:
            local.update({f"grad.{k}": v for k, v in tree_flatten(grad_accum)})
        local = {f"local.{k}": rank_local(world, v) for k, v in local.items()}
        mx.eval(local)
        if rank != 0:
            return
        p = checkpoint_files(adapter_dir, it)
        weights = dict(tree_flatten(model.trainable_parameters()))
        save_arrays(args.adapter_file, weights)
        files = {"adapters": save_arrays(p["adapters"], weights),
                 "state": save_arrays(p["state"], {**{f"optimizer.{k}": v for k, v in tree_flatten(optimizer.state)},
                                                   **local})}
        olelo.atomic_write_json(p["json"], {
            "iteration": it, "files": files, "world_size": world.size(), "steps": steps, "updates": updates,
            "trained_tokens": trained_tokens,
            "train_time": train_time, "mx_key": mx_key(), "data": batches.position(),
            "callback": callback.checkpoint_state() if hasattr(callback, "checkpoint_state") else None})
        prune(adapter_dir, it, keep)
        ui.report_save(p["adapters"])

    model.train()
    ui = TrainUI(args.iters, rank=rank)
    with ui:
        for _ in range(start):
            ui.advance()
        for it in range(start + 1, args.iters + 1):
            batch = next(batches)
            tic = time.perf_counter()
            if val_dataset and (it == 1 or it % args.steps_per_eval == 0 or it == args.iters):
                if args.val_batches == -1:
                    val_total = len(val_dataset) // args.batch_size
                else:
                    val_total = min(len(val_dataset) // args.batch_size, args.val_batches)
                tic = time.perf_counter()
                with ui.val_task(val_total) as advance_val:
                    val_loss = evaluate(model=model, dataset=val_dataset, loss=validation_loss,
                                        batch_size=args.batch_size,
                                        num_batches=args.val_batches, max_seq_length=args.max_seq_length,
                                        iterate_batches=iterate_batches, progress_callback=advance_val)
                val_time = time.perf_counter() - tic
                extra = val_gen(model) if val_gen else {}
                model.train()
                ui.report_val(it, val_loss, val_time)
                if extra and rank == 0:
                    print(f"  {it:>4}    val chrF++ {extra['val_chrf']:.2f} on {extra['val_gen_n']} sentences"
                          f"    {extra['val_gen_time']:.2f}s")
                if callback is not None:
                    # mlx-lm validates before the step it names: `iteration` counts updates done.
                    callback.on_val_loss_report({"iteration": it - 1, "val_loss": val_loss, "val_time": val_time,
                                                 **extra})
                tic = time.perf_counter()

            lvalue, toks, grad_accum, norm = step(batch, grad_accum, it % ga_steps == 0)
            losses += lvalue
            n_tokens += toks
            steps += 1
            if norm is not None:
                norm_sum, norm_max, updates = norm_sum + norm, mx.maximum(norm_max, norm), updates + 1
            mx.eval(state, losses, n_tokens, grad_accum, norm_sum, norm_max)
            if mx.get_cache_memory() > args.clear_cache_threshold:
                mx.clear_cache()
            train_time += time.perf_counter() - tic
            ui.advance()

            if it % args.steps_per_report == 0 or it == args.iters:
                train_loss = mx.distributed.all_sum(losses, stream=mx.cpu).item() / (steps * world.size())
                n_tokens = mx.distributed.all_sum(n_tokens, stream=mx.cpu).item()
                trained_tokens += n_tokens
                info = {"iteration": it, "train_loss": train_loss,
                        "learning_rate": optimizer.learning_rate.item(),
                        "iterations_per_second": args.steps_per_report / train_time,
                        "tokens_per_second": float(n_tokens) / train_time, "trained_tokens": trained_tokens,
                        "peak_memory": mx.get_peak_memory() / 1e9}
                if updates:  # (none in a report window shorter than the gradient accumulation)
                    info.update(grad_norm=norm_sum.item() / updates, grad_norm_max=norm_max.item())
                ui.report_train(it, train_loss, info["tokens_per_second"], trained_tokens)
                if updates and rank == 0:
                    print(f"  {it:>4}    grad norm {info['grad_norm']:.4g} mean, {info['grad_norm_max']:.4g} max "
                          f"over {updates} update{'s' if updates > 1 else ''}"
                          f"{' (before clipping to %g)' % grad_clip if grad_clip is not None else ''}")
                if callback is not None:
                    callback.on_train_loss_report(info)
                losses, n_tokens, steps, train_time = 0, 0, 0, 0.0
                norm_sum, norm_max, updates = mx.array(0.0, mx.float32), mx.array(0.0, mx.float32), 0

            if it % args.steps_per_save == 0:
                checkpoint(it)

    if rank == 0:
        save_arrays(args.adapter_file, dict(tree_flatten(model.trainable_parameters())))


def restore_optimizer(optimizer, model, saved: dict) -> None:
    """Put a checkpoint's optimizer state (flattened) back, structure from the model."""
    if any(k not in ("step", "learning_rate") for k in saved):  # moments exist once an update happened
        optimizer.init(model.trainable_parameters())
    expected = {k for k, _ in tree_flatten(optimizer.state)}
    if expected != set(saved):
        raise olelo.UserError("the checkpoint's optimizer state does not fit this model and optimizer "
                              f"({len(set(saved) ^ expected)} entries differ); FORCE=1 trains a new attempt")
    optimizer.state = tree_map_with_path(lambda path, _: saved[path], optimizer.state)
