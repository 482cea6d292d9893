"""Write the "Memory guidelines" section of the generated results (RESULTS.md) from a mem-profile.

    .venv/bin/python scripts/memory_guidelines.py runs/mem-profile/<stamp> --notes RESULTS.md [--margin 0.2]
    .venv/bin/python scripts/memory_guidelines.py runs/mem-profile/<stamp>        # print the section
    .venv/bin/python scripts/memory_guidelines.py --model M --notes RESULTS.md    # newest profile of model M

Reads results.csv of a mem_profile.py run (and results.json beside it for the
command, environment and the dataset's longest sequence), fits peak memory as
olelo/memory.py does and, for each tier of available RAM the notes used (~100 GB,
~50 GB, <32 GB, 16 GB), gives the largest batch size with and without gradient
checkpointing whose predicted peak stays under the RAM less --margin, with the
measured points and the command behind the numbers.

The section replaces whatever is between the lines
    <!-- memory-guidelines:begin -->
    <!-- memory-guidelines:end -->
of --notes (written atomically; the same results give the same text, so a rerun
changes nothing). Without both markers the file is left alone and it is an error.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
from pathlib import Path

from olelo import memory
import olelo
from olelo.config import LOSSES, QUANTIZED_MATMULS
from olelo.defaults import DEFAULTS
from olelo.notes import MEMORY_BEGIN, MEMORY_END

BEGIN, END = MEMORY_BEGIN, MEMORY_END
TIERS = [("~100 GB available", 100e9), ("~50 GB available", 50e9),
         ("<32 GB available (figures for 32 GB)", 32e9), ("16 GB available", 16e9)]
CANDIDATES = (1, 2, 4, 8, 16, 32, 64)
MAX_SEQS = (2048, 1024, 512)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("results", nargs="?", help="a mem-profile folder or its results.csv")
    p.add_argument("--model", help="instead of RESULTS: the newest profile of this model in --results-dir")
    p.add_argument("--results-dir", default="runs/mem-profile", help="for --model (default: %(default)s)")
    p.add_argument("--loss", choices=LOSSES, default=DEFAULTS["LOSS"],
                   help="for --model: the newest profile measured with this training loss (auto: chunked on a CPU, default on a GPU, as train.py; default: %(default)s)")
    p.add_argument("--memory-limit-gb", type=float,
                   help="for --model: the newest profile measured under this MEM_LIMIT (default: under MLX's own limit)")
    p.add_argument("--quantized-matmul", choices=QUANTIZED_MATMULS, default=DEFAULTS["QMATMUL"],
                   help="for --model: the newest profile measured with this QMATMUL (auto: dense on CUDA, as "
                        "train.py; default: %(default)s)")
    p.add_argument("--notes", help="markdown file to write the section into (default: print it)")
    p.add_argument("--margin", type=float, default=0.2,
                   help="fraction of available RAM kept free (default: %(default)s)")
    a = p.parse_args(argv)
    from olelo.lean_loss import resolve
    a.loss = resolve(a.loss)  # auto: as train.py on this machine
    from olelo import dequant
    a.quantized_matmul = dequant.resolve(a.quantized_matmul)
    return a


def load_results(path: str) -> tuple[list[dict], dict]:
    """The rows of results.csv (numbers as numbers) and results.json beside it ({} if absent)."""
    p = Path(path)
    csv_path = p / "results.csv" if p.is_dir() else p
    if not csv_path.is_file():
        raise olelo.UserError(f"{csv_path}: no such file (run scripts/mem_profile.py first)")
    with open(csv_path, newline="") as f:
        rows = [{k: num(v) for k, v in r.items()} for r in csv.DictReader(f)]
    meta_path = csv_path.with_name("results.json")
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    meta.setdefault("stamp", csv_path.parent.name)
    meta["source"] = str(csv_path.parent)
    return rows, meta


def num(v: str):
    for cast in (int, float):
        try:
            return cast(v)
        except ValueError:
            pass
    return v


def largest_batch(fit: dict, width: int, budget: float, gc: bool) -> tuple[int, float]:
    """(largest candidate batch whose predicted peak fits the budget or 0, its predicted peak)."""
    best = (0, memory.predict_peak(fit, 1, width, gc))
    for b in CANDIDATES:
        peak = memory.predict_peak(fit, b, width, gc)
        if peak <= budget:
            best = (b, peak)
    return best


def section(rows: list[dict], meta: dict, margin: float, source: str) -> str:
    ok = [r for r in rows if r["status"] == "ok"]
    fit = memory.fit_peak(ok)
    longest = meta.get("dataset_longest") or max(r["longest_seq"] for r in ok)
    model = meta.get("model") or ok[0]["model"]
    name = memory.model_name(model)
    env = meta.get("environment", {})
    check = meta.get("heldout_check")
    loads = [r["load1_start"] for r in ok] + [r["load1_end"] for r in ok]
    modes = [m == "on" for m in fit["per_token_bytes"]]

    # The heading says whose numbers these are: a stand-in's must not pass for a real model's.
    heading = (f"## Memory guidelines: `{name}`, a random-weight stand-in (not for a real model)" if "tiny" in name
               else f"## Memory guidelines: `{name}`")
    out = [BEGIN, heading, ""]
    out.append(f"_Generated by `scripts/memory_guidelines.py` from `{source}` "
               f"({meta.get('created', 'date unknown')}); `make mem-profile MODEL=...` regenerates it. "
               "Do not edit by hand._")
    out.append("")
    qmatmul = ", QMATMUL=dense" if meta.get("quantized_matmul") == "dense" else ""
    out.append(f"**These numbers are for `{name}`** ({model}), LOSS={meta.get('loss', 'default')}{qmatmul}, "
               f"LoRA rank {meta.get('lora', {}).get('rank', 8)} on "
               f"{meta.get('lora', {}).get('num_layers', '?')} layers, on {env.get('mlx_device', '?')} "
               f"(mlx {env.get('packages', {}).get('mlx', '?')}, mlx-lm {env.get('packages', {}).get('mlx-lm', '?')}, "
               f"{env.get('platform', '?')}).")
    if "tiny" in name:
        out.append("They are a random-init stand-in's and **do not transfer to gemma-3-4b-it-4bit**, whose "
                   "weights, width and 262k vocabulary are far larger; what transfers is the structure of the fit. "
                   "Profile the real model with `make mem-profile MODEL=mlx-community/gemma-3-4b-it-4bit` "
                   "on the machine that will train it.")
    out += ["", "Peak memory fitted by least squares over the measured points:", "",
            "    peak ≈ static + batch × padded_len × (per_token[gc] + per_token_width[gc] × padded_len)", ""]
    out.append(f"{memory.describe(fit)}; largest in-sample error {fit['max_abs_error_pct']:.1f} % over "
               f"{fit['n_points']} points. (gc: gradient checkpointing; the width term is attention, "
               "whose scores grow with the square of the sequence.)")
    widths = sorted({r["width"] for r in ok if not r.get("heldout")})
    if not fit["per_token_width_bytes"]:
        out.append(f"All points of the fit are {', '.join(map(str, widths))} wide: it has no width term, so its "
                   "predictions for wider batches (below) are straight-line extrapolations in tokens that no "
                   "measurement checked; profile two --max-seqs to fit the attention's share.")
    if check:
        errs = ", ".join(f"{e:+.1f} %" for e in check["errors_pct"])
        and_longest = " and the longest-example" if check.get("holdout_longest") else ""
        out.append(f"Check: fitted without the batch-{check['holdout_batch']}{and_longest} points, the fit predicted them "
                   f"with errors {errs} (goal ±10 %: {'met' if check['within_10pct'] else 'NOT met'}).")
    speed = "; ".join(
        f"checkpointing {'on' if gc else 'off'}: median {statistics.median(r['tok_s'] for r in ok if bool(r['grad_checkpoint']) == gc):.0f} tok/s"
        for gc in modes)
    out.append(f"Speed after warm-up over the measured points: {speed}.")
    out.append(f"The longest training sequence has {longest} tokens, so mlx-lm pads the widest batch to "
               f"{memory.padded_width(longest, 2048)} at the default `--max-seq-length 2048`; the guidelines use that "
               f"worst case and keep {margin:.0%} of available RAM free.")
    limit = meta.get("memory_limit_gb")
    if limit is not None:
        out.append(f"Measured under a memory limit of {limit:g} GB (`MEM_LIMIT`): past it MLX stops queueing work "
                   "ahead of the device, so these peaks are what each setting needs with nothing queued ahead. "
                   "Train with `MEM_LIMIT` set to the budget of your tier: the peak then stays near it (it can pass it by what "
                   f"the ops under way allocate: 0.9 GB at 9 GB on a CPU, 3.05 GB at 12 GB on CUDA; the {margin:.0%} kept free "
                   "is for that too). Under "
                   "MLX's own limit, queued work adds to the peak (on CUDA up to three times the need, NOTES.md).")
    out += ["", "Measured with:", "", f"    {meta.get('command', '(command not recorded)')}", ""]
    out.append(f"(load average {min(loads):.2f}–{max(loads):.2f} on {env.get('cpu_count', '?')} cores while it ran; "
               "the tok/s move with it.)")

    for label, ram in TIERS:
        budget = ram * (1 - margin)
        train_with = "" if limit is None else f"; train with `MEM_LIMIT={budget / 1e9:g}`"
        out += ["", f"### {label}", f"Budget {memory.gb(budget)} ({margin:.0%} kept free{train_with}):"]
        fitted = False
        for max_seq in MAX_SEQS:
            width = memory.padded_width(longest, max_seq)
            seq_flag = "" if max_seq == 2048 else f" --max-seq-length {max_seq}"
            for gc in modes:
                b, peak = largest_batch(fit, width, budget, gc)
                if b:
                    fitted = True
                    flags = f"--batch-size {b}{' --grad-checkpoint' if gc else ''}{seq_flag}"
                    out.append(f"- `{flags}`: predicted peak {memory.gb(peak)} (batches {width} wide)"
                               f"{f'; {b} is the largest batch considered' if b == CANDIDATES[-1] else ''}")
            if fitted:
                break
            out.append(f"- nothing fits at `--max-seq-length {max_seq}` (batch 1 predicted "
                       f"{memory.gb(memory.predict_peak(fit, 1, width, modes[-1]))}); shorter sequences:")
        if not fitted:
            out.append("- use a smaller model or split long examples")

    out += ["", "Measured points behind the fit (held-out points were predicted by a fit made without them):", "",
            "| batch | grad ckpt | max-seq | widest batch | peak | predicted | error | padded | tok/s | warm-up s | load |",
            "|---:|:---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in ok:
        out.append(f"| {r['batch']}{(' (longest example' + ('s)' if r['batch'] > 1 else ')')) if r.get('longest_only') else ''} | {'on' if r['grad_checkpoint'] else 'off'} | {r['max_seq']} | {r['width']} | "
                   f"{memory.gb(r['peak_bytes'])} | {memory.gb(r['predicted_bytes'])}{'*' if r['heldout'] else ''} | "
                   f"{r['error_pct']:+.1f} % | {r['padded_fraction']:.0%} | {r['tok_s']:.0f} | {r['warmup_s']:.1f} | "
                   f"{r['load1_start']:.1f} |")
    failed = [r for r in rows if r["status"] != "ok"]
    if failed:
        out += ["", "Points that did not finish: " + "; ".join(
            f"batch {r['batch']} gc {r['grad_checkpoint']} max-seq {r['max_seq']}: {r['status']}" for r in failed)]
    out.append(END)
    return "\n".join(out)


def main(argv=None) -> int:
    a = parse_args(argv)
    if bool(a.results) == bool(a.model):
        raise olelo.UserError("give a results folder or --model (not both)")
    if a.model:
        profile = memory.newest_profile(a.results_dir, a.model, a.loss, a.memory_limit_gb, a.quantized_matmul)
        if not profile:
            limit = "" if a.memory_limit_gb is None else f" under --memory-limit-gb {a.memory_limit_gb:g}"
            raise olelo.UserError(f"no mem-profile results for {memory.model_name(a.model)} with --loss {a.loss}"
                                  f"{limit} and --quantized-matmul {a.quantized_matmul} in {a.results_dir}")
        a.results = str(Path(profile["path"]).parent)
    rows, meta = load_results(a.results)
    if not [r for r in rows if r["status"] == "ok"]:
        raise olelo.UserError(f"{a.results}: no point finished; nothing to fit")
    text = section(rows, meta, a.margin, meta["source"])
    if not a.notes:
        print(text)
        return 0
    notes = Path(a.notes)
    if not notes.is_file():
        raise olelo.UserError(f"{notes}: no such file")
    old = notes.read_text(encoding="utf-8")
    new = olelo.notes.replace_section(old, text, str(notes))
    if new != old:
        olelo.atomic_write_text(notes, new)
    print(f"{notes}: memory guidelines {'updated' if new != old else 'unchanged'} from {meta['stamp']}")
    return 0


if __name__ == "__main__":
    olelo.run_main(main)
