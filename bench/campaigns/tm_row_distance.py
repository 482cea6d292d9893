# Served NOTES.md: 2026-12-07 "What does each test set give away with no model?".
"""How far from its test pair does translation memory find its answer? (NOTES.md, "What does
each test set give away with no model?"; it chose make data's default BLOCK_SIZE.)

    python bench/campaigns/tm_row_distance.py [--block-sizes 20 50 100 140] [--json OUT]

For the paragraph split (data/finetuning/large), the story split in data/finetuning/stories/large
and, for each --block-sizes, a story split made afresh in a temporary folder (seed 0): the
translation-memory baseline (olelo.yardstick: the training pair whose source is nearest by
sentence chrF++) on the test set, its corpus chrF++, and the distance in Fornander rows
(data/interim/haw-en/fornander.jsonl order) between each test pair and the training pair it
chose. Stories run over consecutive rows, so a short distance says the answer came from the
test pair's own story.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

import olelo
from olelo import evaluation, header, scores, yardstick

INTERIM = Path("data/interim/haw-en")
WITHIN = (5, 20, 50, 100)


def analyse(split_dir: Path, order: dict) -> dict:
    test, train = olelo.read_jsonl(split_dir / "test.jsonl"), olelo.read_jsonl(split_dir / "train.jsonl")
    tp, rp = evaluation.pairs_of(test), evaluation.pairs_of(train)
    tm = yardstick.translation_memory([t["source"] for t in tp], [r["source"] for r in rp], [r["target"] for r in rp])
    dist = np.array([abs(order[test[i]["pair_id"]] - order[train[j]["pair_id"]]) for i, j in enumerate(tm["index"])])
    chrf = scores.score_corpus(tm["hypotheses"], [t["target"] for t in tp], metrics=("chrf",))["chrf"]["score"]
    return {"test_pairs": len(tp), "tm_chrf": chrf, "median_rows": float(np.median(dist)),
            "share_within": {str(w): float(np.mean(dist <= w)) for w in WITHIN}}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--block-sizes", nargs="*", type=int, default=[20, 50, 100, 140])
    p.add_argument("--json", type=Path, help="also write the results here, with the bench header")
    a = p.parse_args(argv)
    head = header.start("python bench/campaigns/tm_row_distance.py " + " ".join(map(str, a.block_sizes)))
    source = INTERIM / "fornander.jsonl"
    if not source.is_file():
        raise olelo.UserError(f"{source}: no such file; run make data first")
    order = {r["pair_id"]: i for i, r in enumerate(olelo.read_jsonl(source))}
    splits = {"paragraphs": Path("data/finetuning/large"), "stories (make data)": Path("data/finetuning/stories/large")}
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for b in a.block_sizes:
            out = Path(tmp) / f"b{b}"
            subprocess.run([sys.executable, "scripts/split.py", "--out", str(out), "--by", "stories", "--block-size",
                            str(b), "--seed", "0", f"large={source}", f"small={INTERIM / 'koa.jsonl'}"],
                           check=True, capture_output=True)
            splits[f"stories, blocks of {b}"] = out / "large"
        for name, d in splits.items():
            if not (d / "test.jsonl").is_file():
                print(f"{name}: {d} missing, skipped (make data SPLIT=...)", file=sys.stderr)
                continue
            r = results[name] = analyse(d, order)
            within = ", ".join(f"≤{w}: {100 * r['share_within'][str(w)]:.0f} %" for w in WITHIN)
            print(f"{name}: {r['test_pairs']} test pairs, translation memory chrF++ {r['tm_chrf']:.2f}; rows to the "
                  f"chosen pair: median {r['median_rows']:.0f}, {within}")
    if a.json:
        header.write(a.json, head, {"what": "translation memory's row distance by split", "results": results})
    return 0


if __name__ == "__main__":
    olelo.run_main(main)
