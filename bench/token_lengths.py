"""Tokens per training pair with a real tokenizer, in the lab's chat format: what
MAX_SEQ truncates and what memory must hold. Gemma 3 270M shares its tokenizer with
gemma-3-4b-it, so these are the production model's numbers too.

    make bench-tokens MODEL=models/gemma-3-270m

which builds the data of both directions, then writes
bench/results/token_lengths_gemma-3-270m.json (the header records the command).

A pair's length is that of its whole record as mlx-lm's chat dataset tokenizes it
(apply_chat_template of system + user + assistant). Reads the converted records of
data/interim/<direction>/{fornander,koa}.jsonl (all pairs, before the split).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from olelo import header
import olelo


def stats(lengths: list[int]) -> dict:
    a = np.array(lengths)
    return {"pairs": len(a), "mean": round(float(a.mean()), 1), "median": float(np.median(a)),
            "p95": float(np.percentile(a, 95)), "max": int(a.max()),
            "over_256": round(float((a > 256).mean()), 3), "over_512": round(float((a > 512).mean()), 3),
            "over_1024": round(float((a > 1024).mean()), 3)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="models/gemma-3-270m", help="model folder whose tokenizer counts")
    p.add_argument("--interim", default="data/interim", help="folder of <direction>/<dataset>.jsonl")
    p.add_argument("--out", help="write the result JSON here (bench/results/...)")
    args = p.parse_args(argv)
    from transformers import AutoTokenizer

    head = header.start(f"make bench-tokens MODEL={args.model}")
    tok = AutoTokenizer.from_pretrained(args.model)
    results = {}
    for direction in olelo.DIRECTIONS:
        for dataset in ("fornander", "koa"):
            path = Path(args.interim) / direction / f"{dataset}.jsonl"
            lengths = [len(tok.apply_chat_template(r["messages"], return_dict=False))
                       for r in olelo.read_jsonl(path)]
            results[f"{dataset} {direction}"] = stats(lengths)
            s = results[f"{dataset} {direction}"]
            print(f"{dataset:9} {direction}: {s['pairs']} pairs, mean {s['mean']}, median {s['median']:.0f}, "
                  f"p95 {s['p95']:.0f}, max {s['max']}, >512 {s['over_512']:.1%}")
    if args.out:
        header.write(args.out, head, {"what": "tokens per pair, lab chat format (system + user + assistant)",
                                      "tokenizer": args.model, "results": results})
    return 0


if __name__ == "__main__":
    olelo.run_main(main)
