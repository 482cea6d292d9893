"""Measure peak memory and speed of short mlx-lm LoRA trainings over a sweep of
batch size x gradient checkpointing x max sequence length, and fit a model of
peak memory that predicts the settings not measured.

    LD_PRELOAD=/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0 \\
    .venv/bin/python scripts/mem_profile.py --model models/tiny-gemma3 --data data/finetuning/large \\
        [--batch-sizes 1,2,4] [--grad-checkpoint off,on] [--max-seqs 128,512] [--iters 6 --warmup 2] \\
        [--loss default|chunked] [--longest-only]

Each point of the sweep runs in its own subprocess, so its peak memory is its
own (and mlx-lm's grad-checkpoint patch of the layer class does not leak into
the next point). A point is a real training on the real data through mlx-lm's
own trainer (mlx_lm.tuner.trainer.train, LoRA layers as mlx_lm.lora sets them
up, rank 8, Adam, with --loss: mlx-lm's default loss or olelo/lean_loss.py's
chunked one, passed to that trainer), reporting every iteration to a TrainingCallback. Recorded per
point: mx.get_peak_memory(), the process's max RSS, steady-state tok/s and it/s
over the iterations after the first --warmup ones (those include MLX's
compilation; their seconds are reported apart), the padded-token fraction of
the batches seen, the widest padded batch and the longest sequence.

Then the fit, by least squares weighted to relative error (see olelo/memory.py):

    peak ~= static + batch * padded_len * (per_token[gc] + per_token_width[gc] * padded_len)

(gc: gradient checkpointing on/off; the width term needs two --max-seqs)

checked on held-out points, predicted by a fit made without them: the largest
batch size of the sweep, and (unless --no-longest-check) batch 1 of the longest
training example at --max-seq-length 2048, the widest batch a real run meets.
Both are extrapolations, as auto_batch.py makes them. Then the fit is refitted
on all points and predicts unmeasured settings at the dataset's longest sequence.

Writes runs/mem-profile/<stamp>/ (the stamp is built from the sweep settings):
    results.csv   one row per point
    results.json  rows, fit, held-out check, predictions, command, environment
    memory.png    peak memory (measured and predicted) and tok/s per setting
    logs/         each point's console output

Timings on a shared machine move with its load: every row carries
os.getloadavg() from before and after the point.
"""

from __future__ import annotations

import argparse
import datetime
import io
import json
import os
import resource
import shlex
import sys
import time
from pathlib import Path

from olelo import memory
import olelo
from olelo.config import LOSSES, QUANTIZED_MATMULS
from olelo.defaults import DEFAULTS
from olelo.mem_profile import fit_and_check, sweep_stamp, write_csv


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="models/tiny-gemma3", help="model folder or Hub id (default: %(default)s)")
    p.add_argument("--data", default="data/finetuning/large", help="folder with train.jsonl (default: %(default)s)")
    p.add_argument("--batch-sizes", default=DEFAULTS["PROFILE_BATCHES"], help="comma-separated (default: %(default)s)")
    p.add_argument("--grad-checkpoint", default="off,on", help="off, on or off,on (default: %(default)s)")
    p.add_argument("--max-seqs", default=DEFAULTS["PROFILE_MAX_SEQS"], help="comma-separated --max-seq-length values (default: %(default)s)")
    p.add_argument("--iters", type=int, default=DEFAULTS["PROFILE_ITERS"], help="training iterations per point (default: %(default)s)")
    p.add_argument("--warmup", type=int, default=2,
                   help="first iterations left out of tok/s and it/s; they include compilation (default: %(default)s)")
    p.add_argument("--num-layers", type=int, default=16,
                   help="layers with LoRA, as mlx_lm.lora --num-layers; capped at the model's depth (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--loss", choices=LOSSES, default=DEFAULTS["LOSS"],
                   help="training loss: mlx-lm's default or lean_loss.py's chunked one (auto: chunked on a CPU, default on a GPU, as train.py; default: %(default)s)")
    p.add_argument("--quantized-matmul", choices=QUANTIZED_MATMULS, default=DEFAULTS["QMATMUL"],
                   help="a quantized model's layers, as train.py --quantized-matmul: quantized, dense or auto "
                        "(dense on CUDA); profiles are picked by it (default: %(default)s)")
    p.add_argument("--longest-only", action="store_true",
                   help="every batch is the `batch` longest training examples (the worst case, same batches "
                        "whatever the loss) instead of mlx-lm's shuffled batches")
    p.add_argument("--holdout-batch", type=int,
                   help="batch size whose points check the fit without being in it (default: the largest; 0: none)")
    p.add_argument("--no-longest-check", dest="longest_check", action="store_false",
                   help="skip the held-out batch-1 runs of the longest example at --max-seq-length 2048")
    p.add_argument("--memory-limit-gb", type=float,
                   help="MLX's memory limit in each point (olelo.memory.set_memory_limit): past it eval stops "
                        "queueing work ahead of the device; far below the need (0.001) the peak is what the "
                        "setting needs, nothing queued ahead (default: MLX's own limit)")
    p.add_argument("--point-timeout", type=int, default=900, help="seconds before a point is given up (default: %(default)s)")
    p.add_argument("--out", default="runs/mem-profile", help="parent folder of the stamped result folder (default: %(default)s)")
    p.add_argument("--point", help=argparse.SUPPRESS)  # internal: run one point (JSON) in this process
    a = p.parse_args(argv)
    from olelo.lean_loss import resolve
    a.loss = resolve(a.loss)  # auto: as train.py on this machine
    from olelo import dequant
    a.quantized_matmul = dequant.resolve(a.quantized_matmul)
    if a.point is None:
        memory.check_memory_limit(a.memory_limit_gb)
        a.batch_sizes = ints(a.batch_sizes, "--batch-sizes")
        a.max_seqs = ints(a.max_seqs, "--max-seqs")
        modes = {"off": False, "on": True}
        try:
            a.grad_checkpoint = [modes[m.strip()] for m in a.grad_checkpoint.split(",")]
        except KeyError:
            raise olelo.UserError("--grad-checkpoint takes off, on or off,on") from None
        if not 0 <= a.warmup < a.iters:
            raise olelo.UserError("--warmup must be smaller than --iters (steady state needs iterations)")
        if a.holdout_batch is None:
            a.holdout_batch = max(a.batch_sizes) if len(a.batch_sizes) > 2 else 0
    return a


def ints(text: str, flag: str) -> list[int]:
    try:
        values = sorted({int(x) for x in text.split(",") if x.strip()})
    except ValueError:
        raise olelo.UserError(f"{flag} takes comma-separated integers, not {text!r}") from None
    if not values or min(values) < 1:
        raise olelo.UserError(f"{flag} needs positive integers")
    return values


# ---------------------------------------------------------------- one point (subprocess)

def run_point(point: dict) -> dict:
    """Train one setting for point["iters"] iterations in this process and measure it.

    point["longest_only"]: every batch is the `batch` longest examples (the worst
    case; auto_batch.py's probe) instead of mlx-lm's shuffled batches."""
    import tempfile
    import types

    import mlx.core as mx
    import mlx.optimizers as optim
    import numpy as np
    from mlx_lm.tuner.callbacks import TrainingCallback
    from mlx_lm.tuner.datasets import CacheDataset, create_dataset, load_dataset
    from mlx_lm.tuner.trainer import TrainingArgs, default_loss, iterate_batches, train
    from mlx_lm.tuner.utils import linear_to_lora_layers

    load_start = os.getloadavg()
    np.random.seed(point["seed"])  # as mlx_lm.lora.run and train_model seed
    mx.random.seed(point["seed"])
    model, tokenizer = olelo.load_model(point["model"])
    config = types.SimpleNamespace(data=point["data"], train=True, test=False, mask_prompt=False)
    train_set, _, _ = load_dataset(config, tokenizer)
    if point.get("longest_only"):
        lengths = [len(train_set.process(train_set[i])[0]) for i in range(len(train_set))]
        longest = sorted(range(len(lengths)), key=lambda i: -lengths[i])[:point["batch"]]
        train_set = create_dataset([train_set[i] for i in longest], tokenizer, config)

    loss = default_loss
    if point.get("loss", "default") == "chunked":
        from olelo import lean_loss

        lean_loss.check_split(model)
        loss = lean_loss.chunked_loss
    num_layers = len(model.layers) if point["num_layers"] < 0 else min(point["num_layers"], len(model.layers))
    model.freeze()
    linear_to_lora_layers(model, num_layers, {"rank": 8, "dropout": 0.0, "scale": 20.0})
    from olelo import dequant

    dense_layers = dequant.apply(model, point.get("quantized_matmul", "quantized"))
    memory.set_memory_limit(point.get("memory_limit_gb"))

    class Reports(TrainingCallback):
        def __init__(self):
            self.rows = []

        def on_train_loss_report(self, info):
            self.rows.append(info)

    seen = []  # (width, real tokens, longest) of every batch the trainer takes

    def recording_batches(**kwargs):
        for batch, lengths in iterate_batches(**kwargs):
            n = np.array(lengths)[:, 1]
            seen.append((batch.shape[1], int(n.sum()), int(n.max())))
            yield batch, lengths

    reports = Reports()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        args = TrainingArgs(
            batch_size=point["batch"], iters=point["iters"], steps_per_report=1,
            steps_per_eval=10**9, steps_per_save=10**9, adapter_file=str(Path(tmp) / "adapters.safetensors"),
            max_seq_length=point["max_seq"], grad_checkpoint=point["grad_checkpoint"])
        # No validation set: validation would add uncompiled forward passes to the timings.
        train(model, optim.Adam(learning_rate=1e-5), CacheDataset(train_set), None, args, loss=loss,
              iterate_batches=recording_batches, training_callback=reports)
    wall = time.perf_counter() - t0

    # steps_per_report=1: each report is one iteration; its time is 1 / it/s.
    secs = [1.0 / r["iterations_per_second"] for r in reports.rows]
    toks = [b - a for a, b in zip([0] + [r["trained_tokens"] for r in reports.rows], [r["trained_tokens"] for r in reports.rows])]
    w = point["warmup"]
    steady_s, steady_tokens = sum(secs[w:]), sum(toks[w:])
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    width = max(s[0] for s in seen)
    return {
        "num_layers": num_layers,
        "status": "ok",
        "dense_matmul_layers": dense_layers,
        "peak_bytes": int(mx.get_peak_memory()),
        "memory_limit_bytes": int(mx.get_memory_limit()),
        "max_rss_bytes": int(maxrss if sys.platform == "darwin" else maxrss * 1024),  # macOS: bytes, Linux: KiB
        "width": width,
        "tokens_in_batch": point["batch"] * width,
        "longest_seq": max(s[2] for s in seen),
        "padded_fraction": round(1 - sum(s[1] for s in seen) / sum(point["batch"] * s[0] for s in seen), 4),
        "distinct_widths": len({s[0] for s in seen}),
        "warmup_s": round(sum(secs[:w]), 3),
        "steady_s": round(steady_s, 3),
        "steady_tokens": steady_tokens,
        "tok_s": round(steady_tokens / steady_s, 1),
        "it_s": round((len(secs) - w) / steady_s, 3),
        "load1_start": round(load_start[0], 2),
        "load1_end": round(os.getloadavg()[0], 2),
        "loadavg_start": load_start,
        "loadavg_end": os.getloadavg(),
        "wall_s": round(wall, 2),
        "per_iteration": [{"s": round(s, 4), "tokens": t, "width": sw[0]} for s, t, sw in zip(secs, toks, seen)],
    }


# ---------------------------------------------------------------- the sweep

def predictions(fit: dict, longest: int, max_seqs: list[int]) -> list[dict]:
    """Predicted peaks for a grid of settings at the dataset's longest sequence (the
    widest batch a long run meets)."""
    out = []
    for max_seq in sorted(set(max_seqs) | {2048}):
        width = memory.padded_width(longest, max_seq)
        for mode in fit["per_token_bytes"]:
            for batch in (1, 2, 4, 8, 16, 32, 64):
                peak = memory.predict_peak(fit, batch, width, mode == "on")
                out.append({"batch": batch, "grad_checkpoint": mode == "on", "max_seq": max_seq,
                            "width": width, "predicted_bytes": round(peak)})
    return out


def plot(rows: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in rows if r["status"] == "ok"]
    labels = [f"bs{r['batch']} gc{'+' if r['grad_checkpoint'] else '-'} ms{r['max_seq']}"
              f"{' longest' if r.get('longest_only') else ''}" for r in ok]
    x = range(len(ok))
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(max(8, 0.55 * len(ok)), 7), sharex=True)
    colors = ["tab:orange" if r["grad_checkpoint"] else "tab:blue" for r in ok]
    ax1.bar(x, [r["peak_bytes"] / 1e6 for r in ok], color=colors)
    ax1.bar([0], [0], color="tab:blue", label="measured, no grad checkpoint")
    ax1.bar([0], [0], color="tab:orange", label="measured, grad checkpoint")
    ax1.scatter(x, [r.get("predicted_bytes", float("nan")) / 1e6 for r in ok], color="black", marker="_", s=200,
                label="fit (held-out points: fit made without them)")
    for i, r in zip(x, ok):
        if r.get("heldout"):
            ax1.annotate(f"{r['error_pct']:+.0f}%", (i, r["peak_bytes"] / 1e6), ha="center", va="bottom", fontsize=7)
    ax1.set_ylabel("peak memory (MB)")
    ax1.legend(fontsize=8)
    ax1.set_title(title, fontsize=9)
    ax2.bar(x, [r["tok_s"] for r in ok], color=colors)
    ax2.set_ylabel("tok/s after warm-up")
    ax2.set_xticks(list(x), labels, rotation=60, ha="right", fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    olelo.atomic_write_bytes(path, buf.getvalue())


def main(argv=None) -> int:
    a = parse_args(argv)
    if a.point is not None:
        print(memory.RESULT_MARK + json.dumps(run_point(json.loads(a.point))), flush=True)
        return 0
    if not (Path(a.data) / "train.jsonl").is_file():
        raise olelo.UserError(f"{a.data}/train.jsonl not found (make data, or pass --data)")
    _, lengths = memory.token_lengths(a.model, Path(a.data) / "train.jsonl")
    stamp = sweep_stamp(a)
    out = Path(a.out) / stamp
    preload = [f"LD_PRELOAD={os.environ['LD_PRELOAD']}"] if os.environ.get("LD_PRELOAD") else []
    command = shlex.join([*preload, os.path.relpath(sys.executable), "scripts/mem_profile.py",
                          *(sys.argv[1:] if argv is None else argv)])
    points = [{"model": a.model, "data": a.data, "batch": b, "grad_checkpoint": g, "max_seq": m,
               "iters": a.iters, "warmup": a.warmup, "num_layers": a.num_layers, "seed": a.seed, "loss": a.loss,
               "longest_only": a.longest_only, "memory_limit_gb": a.memory_limit_gb,
               "quantized_matmul": a.quantized_matmul}
              for m in a.max_seqs for g in a.grad_checkpoint for b in a.batch_sizes]
    if a.longest_check:
        points += [{**points[0], "batch": 1, "grad_checkpoint": g, "max_seq": 2048, "longest_only": True,
                    "longest_check": True,
                    "iters": min(a.iters, 3), "warmup": 1} for g in a.grad_checkpoint]
    print(f"{len(points)} points -> {out}  (longest training sequence: {max(lengths)} tokens)")
    rows, started = [], time.time()
    for i, p in enumerate(points, 1):
        name = f"bs{p['batch']}-gc{int(p['grad_checkpoint'])}-ms{p['max_seq']}{'-longest' if p.get('longest_check') else ''}"
        r = memory.measure(p, out / "logs" / f"{name}.log", a.point_timeout)
        rows.append(r)
        if r["status"] == "ok":
            print(f"[{i}/{len(points)}] {name}: peak {memory.gb(r['peak_bytes'])}, rss {memory.gb(r['max_rss_bytes'])}, "
                  f"width {r['width']}, padded {r['padded_fraction']:.0%}, {r['tok_s']:.0f} tok/s "
                  f"(warm-up {r['warmup_s']:.1f} s), load {r['load1_start']}->{r['load1_end']}", flush=True)
        else:
            print(f"[{i}/{len(points)}] {name}: {r['status']} (see {out / 'logs' / (name + '.log')})", flush=True)

    try:
        fit, check = fit_and_check(rows, a.holdout_batch)
    except olelo.UserError as e:  # too few points survived: keep the measurements anyway
        print(f"no fit: {e}")
        fit, check = None, None
    write_csv(rows, out / "results.csv")
    results = {
        "stamp": stamp, "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": command, "model": a.model, "data": a.data, "loss": a.loss, "memory_limit_gb": a.memory_limit_gb,
        "quantized_matmul": a.quantized_matmul,
        "data_sha256": olelo.sha256_file(Path(a.data) / "train.jsonl"),
        "model_config": json.loads((Path(a.model) / "config.json").read_text())
        if (Path(a.model) / "config.json").is_file() else None,
        "dataset_longest": max(lengths), "dataset_examples": len(lengths),
        "lora": {"rank": 8, "scale": 20.0, "dropout": 0.0, "num_layers": rows[0].get("num_layers", a.num_layers)},
        "sweep_seconds": round(time.time() - started, 1), "loadavg_end": os.getloadavg(),
        "environment": {**olelo.runs.environment_info(), "cpu_count": os.cpu_count(),
                        "available_bytes": memory.available_memory_bytes()},
        "git": olelo.runs.git_info(), "fit": fit, "heldout_check": check,
        "predictions": predictions(fit, max(lengths), a.max_seqs) if fit else [], "rows": rows,
    }
    olelo.atomic_write_json(out / "results.json", results)
    plot(rows, out / "memory.png", f"{stamp}\n{results['environment']['mlx_device']}, "
         f"load {rows[0].get('load1_start')}..{results['loadavg_end'][0]:.2f}")
    if not fit:
        return 1
    print(f"fit: {memory.describe(fit)}; in-sample max error {fit['max_abs_error_pct']:.1f}%")
    if check:
        print(f"held-out (batch {check['holdout_batch']}{', longest example' if check['holdout_longest'] else ''}) errors: "
              f"{', '.join(f'{e:+.1f}%' for e in check['errors_pct'])} "
              f"({'within' if check['within_10pct'] else 'NOT within'} +-10%)")
    print(f"wrote {out}/results.csv, results.json, memory.png")
    return 0


if __name__ == "__main__":
    olelo.run_main(main)
