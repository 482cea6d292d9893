"""Retrieval-augmented prompts (DATA=rag): a split folder whose every prompt carries the
k nearest training pairs, for training and evaluation alike.

    python scripts/retrieval_data.py --src data/finetuning/stories/large --k 2 \
        --out data/finetuning/stories/rag-k2 [--max-chars 6000]

Each record of train/valid/test (and sealed, where SRC has one) keeps its pair, order and
id; its user turn becomes "Examples from the same collection:", the k nearest pairs of
SRC's train split (source, then "=> target"), "Translate:" and the sentence
(olelo.prompt.retrieval_content). Nearest is the translation-memory baseline's match
(olelo.retrieval): sentence chrF++ of the training source against the record's source,
ties to the lower index, same direction. A training record never retrieves its own pair
(nor, with DIRECTION=both, its other direction), nor a pair sharing its Hawaiian or English
text. The plain sentence stays in the record's "source" field: pair identity, references and
the yardstick read it, not the prompt.

Prompts grow k+1 times or so, and mlx-lm cuts a training example past MAX_SEQ tokens
(2048 by default). The script counts the records longer than --max-chars characters (all
turns) and writes the counts to the manifest: Gemma 3's tokenizer averages 3.4 characters
a token on the story split's training records (2.6 at the fewest), so 6,000 characters is
roughly 1,800 tokens. split.py's leakage check runs before anything is written.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import olelo
from olelo.defaults import DEFAULTS
from olelo.data import inputs_sha256, read_splits, text_length, write_split_folder
from olelo.retrieval import augment
from olelo.yardstick import TM_SIMILARITY


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--src", required=True, help="a split folder (train/valid/test.jsonl), e.g. data/finetuning/large")
    p.add_argument("--k", type=int, default=DEFAULTS["RAG_K"],
                   help="how many nearest training pairs each prompt carries (default: %(default)s)")
    p.add_argument("--out", required=True)
    p.add_argument("--max-chars", type=int, default=6000,
                   help="count the records longer than this many characters (all turns; default %(default)s)")
    a = p.parse_args()
    if a.k < 1 or a.max_chars < 1:
        raise olelo.UserError(f"--k {a.k} / --max-chars {a.max_chars}: both must be at least 1")
    src, out = Path(a.src), Path(a.out)
    if out.resolve() == src.resolve():
        raise olelo.UserError(f"--out {out} is the input dataset; write the prompts to their own folder")
    splits = read_splits(src.parent)
    if src.name not in splits:
        raise olelo.UserError(f"{src}: no train/valid/test.jsonl there; run `make data` first")
    s = splits[src.name]
    if not s.get("train"):
        raise olelo.UserError(f"{src}/train.jsonl: no training pairs to retrieve from")
    rag = {}
    for split, records in s.items():
        t = time.perf_counter()
        rag[split] = augment(records, s["train"], a.k)
        print(f"{split}: {len(records)} records, {a.k} nearest of {len(s['train'])} training pairs each "
              f"({time.perf_counter() - t:.1f} s)", file=sys.stderr)
    # Fewer than k examples where fewer training pairs are eligible (a small training split,
    # or pairs left out for sharing a text): counted, not hidden.
    short = {split: sum(len(r["retrieved"]) < a.k for r in records) for split, records in rag.items()}
    lengths = {split: [text_length(r) for r in records] for split, records in rag.items()}
    long = {split: {"max": max(n, default=0), "over_max_chars": sum(x > a.max_chars for x in n)}
            for split, n in lengths.items()}
    files = write_split_folder(out, rag, {
        "made_by": "scripts/retrieval_data.py", "src": str(src),
        "split": olelo.read_json(src / "manifest.json", "split manifest").get("split"),
        "k": a.k, "retrieved_from": "train", "similarity": TM_SIMILARITY,
        "excluded": "the record's own pair (same pair id, either direction) and any pair sharing its "
                    "Hawaiian or English text (by match key, as the leak check)",
        "fewer_than_k": short,
        "inputs_sha256": inputs_sha256(src), "prompt_chars": {"max_chars": a.max_chars, **long}}, beside=splits)
    over = sum(x["over_max_chars"] for x in long.values())
    print(f"{out}: " + ", ".join(f"{k} {f['records']}" for k, f in files.items())
          + f"; {over} record(s) longer than {a.max_chars} characters ("
          + ", ".join(f"{k} {x['over_max_chars']}" for k, x in long.items())
          + "): past MAX_SEQ tokens mlx-lm cuts them", file=sys.stderr)
    if any(short.values()):
        print(f"warning: {sum(short.values())} record(s) carry fewer than {a.k} examples, too few eligible "
              "training pairs (" + ", ".join(f"{k} {n}" for k, n in short.items()) + ")", file=sys.stderr)
    return 0


if __name__ == "__main__":
    olelo.run_main(main)
