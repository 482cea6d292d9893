# Served NOTES.md: 2026-11-27 (GPU) "Issue 15, third pass".
"""Where the batched eval's time goes: prompt processing (prefill) vs decoding, as
mlx-lm's batch_generate counts them, for the first N sentences of a test set.

    python bench/campaigns/eval_time_split.py --model models/gemma-3-270m-f32 \\
        --data data/finetuning/large/test.jsonl [--n 64] [--max-tokens 32] [--batch-size 32]

It runs olelo.generate.translate, the lab's eval path, and prints one JSON line: prompt
tokens and seconds, generated tokens and seconds, wall seconds and sentences/s. The model's
load time is left out.
"""

from __future__ import annotations

import argparse
import json
import time

import olelo
from olelo import generate


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--n", type=int, default=64)
    p.add_argument("--max-tokens", type=int, default=32)
    p.add_argument("--batch-size", type=int, default=32)
    a = p.parse_args()
    records = generate.first_records(a.data, a.n)
    model, tokenizer = olelo.load_model(a.model)
    stats = {}
    t = time.perf_counter()
    generate.translate(model, tokenizer, records, a.max_tokens, a.batch_size, progress=False, stats=stats)
    wall = time.perf_counter() - t
    print(json.dumps({"model": a.model, "sentences": len(records), **{k: round(v, 2) for k, v in stats.items()},
                      "wall_s": round(wall, 2), "sent_per_s": round(len(records) / wall, 3)}))
    return 0


if __name__ == "__main__":
    olelo.run_main(main)
