"""Where the batched eval's time goes: prompt processing (prefill) vs decoding, as
mlx-lm's batch_generate counts them, for the first N sentences of a test set.

    python bench/campaigns/eval_time_split.py --model models/gemma-3-270m-f32 \\
        --data data/finetuning/large/test.jsonl [--n 64] [--max-tokens 32] [--batch-size 32]

Same prompts and batching as olelo.generate.translate (sorted by length, chunks of
--batch-size). Prints one JSON line: prompt tokens and seconds, generated tokens and
seconds, wall seconds and sentences/s. The model's load time is left out.
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
    from mlx_lm.generate import batch_generate

    records = olelo.read_jsonl(a.data)[: a.n]
    model, tokenizer = olelo.load_model(a.model)
    prompts = sorted(generate.build_prompts(tokenizer, records), key=len)
    total = {"prompt_tokens": 0, "prompt_s": 0.0, "generated_tokens": 0, "decode_s": 0.0}
    t = time.perf_counter()
    for start in range(0, len(prompts), a.batch_size):
        stats = batch_generate(model, tokenizer, prompts[start:start + a.batch_size], max_tokens=a.max_tokens).stats
        total["prompt_tokens"] += stats.prompt_tokens
        total["prompt_s"] += stats.prompt_time
        total["generated_tokens"] += stats.generation_tokens
        total["decode_s"] += stats.decode_time
    wall = time.perf_counter() - t
    print(json.dumps({"model": a.model, "sentences": len(prompts), **{k: round(v, 2) for k, v in total.items()},
                      "wall_s": round(wall, 2), "sent_per_s": round(len(prompts) / wall, 3)}))
    return 0


if __name__ == "__main__":
    olelo.run_main(main)
