"""Padding and speed of mlx-lm LoRA batches with train.jsonl in shuffled order vs
written in token-length order (scripts/sort_by_length.py), at batch 4 and 8.

mlx-lm 0.32.2 cuts chat data into batches in file order (its length sort key is
constant), so the order of train.jsonl decides the padding. Two measures:
  - epoch padded fraction: exact, over every batch of one pass, from the token
    lengths and mlx-lm's batching rule (no training);
  - a short real training per case (scripts/mem_profile.py's point runner): the
    padded fraction of the batches it met, tok/s after the warm-up, and tok/s over
    only the iterations whose padded width had been seen before (each new width
    makes mx.compile trace the step again, which a short run pays for often).

Run:
    LD_PRELOAD=/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0 \\
      .venv/bin/python bench/length_bucketing.py --data data/finetuning/large [--model models/tiny-gemma3]
"""

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from olelo import header
from olelo import memory
import olelo


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="models/tiny-gemma3")
    p.add_argument("--data", default="data/finetuning/large", help="folder with train.jsonl")
    p.add_argument("--batch-sizes", default="4,8")
    p.add_argument("--max-seq", type=int, default=2048)
    p.add_argument("--iters", type=int, default=20)
    p.add_argument("--warmup", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(ROOT / "bench/results/length_bucketing.json"))
    a = p.parse_args()

    rows, lengths = memory.token_lengths(a.model, Path(a.data) / "train.jsonl")
    head = header.start(f"make bench-bucketing MODEL={a.model}")
    results = {"what": __doc__.split("\n\n")[0].replace("\n", " "),
               "model": a.model, "data": a.data, "data_sha256": olelo.sha256_file(Path(a.data) / "train.jsonl"),
               "examples": len(rows), "max_seq": a.max_seq, "iters": a.iters, "warmup": a.warmup,
               "environment": {**olelo.runs.environment_info(), "cpu_count": os.cpu_count()}, "cases": []}
    with tempfile.TemporaryDirectory() as tmp:
        shuffled, ordered = Path(tmp) / "shuffled", Path(tmp) / "sorted"
        order = list(range(len(rows)))
        random.Random(a.seed).shuffle(order)
        olelo.atomic_write_jsonl(shuffled / "train.jsonl", [rows[i] for i in order])
        sort_cmd = [sys.executable, str(ROOT / "scripts/sort_by_length.py"), str(shuffled / "train.jsonl"),
                    "-o", str(ordered / "train.jsonl"), "--model", a.model]
        subprocess.run(sort_cmd, check=True)
        results["sort_command"] = "python scripts/sort_by_length.py train.jsonl -o sorted/train.jsonl --model " + a.model
        for d in (shuffled, ordered):
            if (Path(a.data) / "valid.jsonl").is_file():
                shutil.copy(Path(a.data) / "valid.jsonl", d / "valid.jsonl")
        for name, folder in (("shuffled", shuffled), ("sorted", ordered)):
            _, lens = memory.token_lengths(a.model, folder / "train.jsonl")
            for batch in (int(b) for b in a.batch_sizes.split(",")):
                real, slots = memory.batch_padding(lens, batch, a.max_seq)
                point = {"model": a.model, "data": str(folder), "batch": batch, "grad_checkpoint": False,
                         "max_seq": a.max_seq, "iters": a.iters, "warmup": a.warmup, "num_layers": 16, "seed": a.seed}
                r = memory.measure(point, Path(tmp) / f"{name}-{batch}.log", timeout=3600)
                case = {"order": name, "batch": batch, "epoch_padded_fraction": round(1 - real / slots, 4),
                        "status": r["status"]}
                if r["status"] == "ok":
                    its = r["per_iteration"][a.warmup:]
                    seen = {i["width"] for i in r["per_iteration"][:a.warmup]}
                    repeat = []
                    for i in its:
                        if i["width"] in seen:
                            repeat.append(i)
                        seen.add(i["width"])
                    case.update({k: r[k] for k in ("padded_fraction", "tok_s", "it_s", "warmup_s", "distinct_widths",
                                                   "width", "peak_bytes", "loadavg_start", "loadavg_end")})
                    case["run_padded_fraction"] = case.pop("padded_fraction")
                    case["tok_s_repeated_widths"] = (round(sum(i["tokens"] for i in repeat) / sum(i["s"] for i in repeat), 1)
                                                     if repeat else None)
                    case["repeated_width_iterations"] = len(repeat)
                print(case, flush=True)
                results["cases"].append(case)
    header.write(a.out, head, results)
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    olelo.run_main(main)
