"""Benchmark: sentences/s of the lab's eval path vs the notes' way.

    python bench/eval_speed.py --model models/tiny-gemma3 --data data/finetuning/large/test.jsonl \
        [--n 16] [--n-processes K] [--max-tokens 32] [--out bench/results/eval_speed.json]

The notes' way: one `mlx_lm.generate --model M --prompt … --max-tokens T` process
per sentence (model loaded every time). The lab's way: scripts/translate.py's
translate(), model loaded once, prompts batched through batch_generate. Both
greedy, same prompts (the lab's system prompt + source, via the chat template,
which mlx_lm.generate applies to --prompt by default), same max tokens. Wall
time of each whole path, loading included. Also records the load average, since
this machine may be shared.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

from olelo import header
import olelo
from olelo.defaults import DEFAULTS
from olelo import generate


def mean_source_chars(records: list) -> float:
    return round(sum(len(olelo.record_source_target(r)[0]) for r in records) / len(records), 1)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--n", type=int, default=DEFAULTS["BENCH_N"],
                   help="sentences the lab's way translates (the first N of --data; default: %(default)s)")
    p.add_argument("--n-processes", type=int, help="sentences the notes' way runs, one process each, "
                   "spread evenly over the N (default: all N)")
    p.add_argument("--max-tokens", type=int, default=32)
    p.add_argument("--batch-size", type=int, default=DEFAULTS["EVAL_BATCH"], help="(default: %(default)s)")
    p.add_argument("--out", default="bench/results/eval_speed.json")
    a = p.parse_args()
    records = generate.first_records(a.data, a.n)
    sample = generate.spread(records, a.n_processes or len(records))
    head = header.start(f"make bench-eval MODEL={a.model} BENCH_N={a.n} BENCH_PROCESSES={len(sample)}")

    exe = str(Path(sys.executable).with_name("mlx_lm.generate"))
    t = time.perf_counter()
    for r in sample:
        source, _ = olelo.record_source_target(r)
        system = olelo.system_prompt(r.get("direction", "haw-en"))
        subprocess.run([exe, "--model", a.model, "--system-prompt", system, "--prompt", source,
                        "--max-tokens", str(a.max_tokens), "--temp", "0"], check=True, capture_output=True)
    per_process = time.perf_counter() - t

    t = time.perf_counter()
    model, tokenizer = olelo.load_model(a.model)
    generate.translate(model, tokenizer, records, a.max_tokens, a.batch_size, progress=False)
    batched = time.perf_counter() - t

    notes_rate, lab_rate = len(sample) / per_process, len(records) / batched
    result = {
        "model": a.model, "sentences": len(records), "max_tokens": a.max_tokens, "batch_size": a.batch_size,
        "notes_way_sentences": len(sample), "notes_way_mean_source_chars": mean_source_chars(sample),
        "lab_way_mean_source_chars": mean_source_chars(records),
        "notes_way_seconds": round(per_process, 2), "notes_way_sent_per_s": round(notes_rate, 3),
        "lab_way_seconds": round(batched, 2), "lab_way_sent_per_s": round(lab_rate, 3),
        "speedup": round(lab_rate / notes_rate, 1),
        "mlx": metadata.version("mlx"), "mlx_lm": metadata.version("mlx-lm"),
        "ld_preload": os.environ.get("LD_PRELOAD", ""),
    }
    header.write(a.out, head, result)
    print(f"notes' way {result['notes_way_sent_per_s']} sent/s, lab's way {result['lab_way_sent_per_s']} sent/s: "
          f"{result['speedup']}x  -> {a.out}")
    return 0


if __name__ == "__main__":
    olelo.run_main(main)
