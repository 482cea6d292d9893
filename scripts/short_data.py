"""A quick dataset for a real model on a CPU: the shortest pairs of a split folder.

    python scripts/short_data.py --src data/finetuning/large --train 64 --valid 8 \
        --out data/finetuning/short-n64

train.jsonl = the --train shortest records of SRC's train split (by characters, as
split.py measures them; kept in that order, which is how mlx-lm batches them);
valid.jsonl = the --valid shortest of SRC's valid split; test.jsonl = SRC's test set,
untouched (the common test set, so scores compare with every other run), and sealed.jsonl
likewise where SRC has one (split.py --by stories); the manifest records SRC's "split". With
real Gemma 3 tokens a Fornander pair is 368 tokens on average but its shortest are 66-100,
so a few dozen iterations take minutes, not hours, on two CPU cores. split.py's leakage
check runs on the result before anything is written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import olelo
from olelo.defaults import DEFAULTS
from olelo.data import inputs_sha256, read_splits, text_length, write_split_folder


def shortest(records: list[dict], n: int) -> list[dict]:
    return sorted(records, key=text_length)[:n]  # sorted() is stable: ties keep SRC's order


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--src", required=True, help="a split folder (train/valid/test.jsonl), e.g. data/finetuning/large")
    p.add_argument("--train", type=int, default=DEFAULTS["SHORT_N"],
                   help="how many of the shortest training records (default: %(default)s)")
    p.add_argument("--valid", type=int, default=8, help="how many of the shortest validation records")
    p.add_argument("--out", required=True)
    a = p.parse_args()
    if a.train < 1 or a.valid < 1:
        raise olelo.UserError(f"--train {a.train} / --valid {a.valid}: both must be at least 1")
    src = Path(a.src)
    splits = read_splits(src.parent)
    if src.name not in splits:
        raise olelo.UserError(f"{src}: no train/valid/test.jsonl there; run `make data` first")
    s = splits[src.name]
    src_manifest = olelo.read_json(src / "manifest.json", "split manifest")
    short = {"train": shortest(s["train"], a.train), "valid": shortest(s["valid"], a.valid), "test": s["test"],
             **({"sealed": s["sealed"]} if "sealed" in s else {})}
    out = Path(a.out)
    write_split_folder(out, short, {
        "made_by": "scripts/short_data.py", "src": str(src), "split": src_manifest.get("split"),
        "train": a.train, "valid": a.valid, "inputs_sha256": inputs_sha256(src)},
        beside=splits, pairs=True)  # counts pairs too, as split.py
    sealed = f", sealed {len(short['sealed'])}" if "sealed" in short else ""
    print(f"{out}: train {len(short['train'])}, valid {len(short['valid'])} (the shortest of {src}), "
          f"test {len(short['test'])}{sealed}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    olelo.run_main(main)
