"""Mix the small, hand-picked set into the large one: the notes' "use
high-quality examples more frequently".

    python scripts/mix_data.py --large data/finetuning/large --small data/finetuning/small \
        --repeat 3 --out data/finetuning/mix-k3 [--seed 0]

train.jsonl = large train + small train repeated K times, shuffled (seeded) and
then stably sorted by length, as split.py writes it (mlx-lm batches in file order);
valid.jsonl = large valid; test.jsonl = the common test set, untouched, and
sealed.jsonl likewise where the split has one (split.py --by stories). The manifest
records the split's "split". The leakage check of split.py runs on the result before
anything is written.
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

import olelo
from olelo.defaults import DEFAULTS
from olelo.data import inputs_sha256, read_splits, text_length, write_split_folder


def mix(large: dict, small: dict, repeat: int, seed: int) -> dict:
    if large["test"] != small["test"] or large.get("sealed") != small.get("sealed"):
        raise olelo.UserError("large and small have different test sets; build both with one split.py call")
    train = large["train"] + small["train"] * repeat
    random.Random(seed).shuffle(train)
    train.sort(key=text_length)
    return {"train": train, "valid": large["valid"], "test": large["test"],
            **({"sealed": large["sealed"]} if "sealed" in large else {})}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--large", required=True)
    p.add_argument("--small", required=True)
    p.add_argument("--repeat", type=int, default=DEFAULTS["MIX_K"],
                   help="K: how many extra copies of the small train set (default: %(default)s)")
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=DEFAULTS["SPLIT_SEED"], help="seed of the shuffle (default: %(default)s)")
    a = p.parse_args()
    if a.repeat < 1:
        raise olelo.UserError("--repeat must be at least 1")
    large, small = Path(a.large), Path(a.small)
    splits = read_splits(large.parent)
    mixed = mix(splits[large.name], splits[small.name], a.repeat, a.seed)
    out = Path(a.out)
    write_split_folder(out, mixed, {
        "made_by": "scripts/mix_data.py", "large": str(large), "small": str(small),
        "split": olelo.read_json(large / "manifest.json", "split manifest").get("split"), "repeat": a.repeat,
        "seed": a.seed, "inputs_sha256": inputs_sha256(large, small)}, beside=splits)
    print(f"{out}: train {len(mixed['train'])} (large {len(splits[large.name]['train'])} + small "
          f"{len(splits[small.name]['train'])} x {a.repeat}), valid {len(mixed['valid'])}, test {len(mixed['test'])}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    olelo.run_main(main)
