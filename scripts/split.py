"""Split converted datasets into train/valid/test (and, by stories, a sealed test), with the
held-out sets common to all of them.

    python scripts/split.py --out data/finetuning/stories --by stories [--block-size 50]
        [--seed 0] [--valid-fraction 0.1] [--test-fraction 0.1] [--sealed-fraction F]
        large=fornander.jsonl small=koa.jsonl
    python scripts/split.py --out data/finetuning [--by paragraphs] large=fornander.jsonl small=koa.jsonl
    python scripts/split.py --check data/finetuning/stories

Inputs are chat JSONL files written by convert_fornander.py. Writes OUT/<name>/train.jsonl,
valid.jsonl, test.jsonl (--by stories: and sealed.jsonl) and manifest.json for every
NAME=IN.jsonl, each folder whole (a temporary sibling renamed into place: a killed split
leaves the old folder or the new, never a mix), and only after the leakage check and the
text checks (mojibake, U+FFFD, lost diacritics, a swapped language column; olelo/checks.py)
have passed. An input inside a folder it would replace is refused. `make data` splits by
stories into data/finetuning/stories; SPLIT=paragraphs gives data/finetuning, as before.

Design (so models trained on different datasets are scored on the same examples):
- Pairs are compared by content (convert_fornander.match_key of the Hawaiian and the English),
  never by the ids stored in the files. Pairs that share their Hawaiian or their English text
  form one group, and a group always lands in one split: both directions of a pair, and a
  reference translation used for two near-identical Hawaiian texts, stay together.
- The held-out sets come from the largest dataset (most pairs; the first named wins a tie),
  from pairs whose group touches no other dataset (that dataset trains on them). Every
  dataset's test.jsonl (and sealed.jsonl) is that same set, so no dataset trains on it.
- --by paragraphs: test is test_fraction x the largest's pair count, rounded, drawn (seeded)
  one group at a time. Fornander's rows are consecutive paragraphs of a few long stories, so
  a random paragraph nearly always sits between two training paragraphs of its own story:
  at seed 0, 275 of the 283 test pairs have a train pair right before or after them.
- --by stories: the largest's pairs, in input order (a pair at its first record), are cut
  into blocks of --block-size consecutive pairs, and whole blocks (seeded) go to test
  (test_fraction of the pairs, the dev test that every eval reads), sealed (sealed_fraction,
  default test_fraction: a second test, never used to choose anything, opened once at the
  end) and valid (valid_fraction of the pairs not in test or sealed), each as close to its
  size as whole blocks allow; the rest trains. A block holding a pair of another dataset's
  groups (the Koa pairs) never goes to test or sealed. A group still split across splits
  goes whole to the one nearest training (train < valid < test < sealed; the manifest lists
  these group_moves). Blocks are never larger than the smallest held-out split, so small data
  (the 42-pair sample) gets smaller blocks; the manifest records the size used.
  Block size, measured on the real data (2,831 Fornander pairs, fractions 0.1): the
  within-story share (held-out pairs with a train pair right before or after them) of test
  / sealed / valid at seed 0, and the largest over seeds 0-9:
      block   seed 0                  max, seeds 0-9
       10     13.5 / 12.9 / 13.0 %    16.0 / 16.4 / 16.5 %
       15      8.8 / 10.5 / 10.2 %    11.9 / 11.6 / 11.1 %
       16      8.7 /  8.3 /  8.9 %    10.4 /  9.4 /  9.8 %
       20      9.3 /  6.1 /  5.2 %     9.3 /  8.9 /  8.7 %
       25      6.4 /  5.1 /  6.7 %     6.8 /  7.3 /  7.1 %
       30      5.0 /  5.6 /  5.8 %     6.4 /  5.6 /  6.7 %
       50      2.3 /  3.3 /  2.6 %
  (paragraphs: test 97.2 %, valid 97.6 %). The share counts only the pairs at a block's
  edges, and Fornander's stories are longer than 20 pairs: the translation-memory baseline
  (the training pair whose source is nearest by chrF++) found its pair within 20 rows of the
  test pair for 49 % of the paragraph split's test pairs, 28 % with blocks of 20, 11 % with
  50, 9 % with 100 and 4 % with 140 (within 50 rows: 62 / 47 / 19 / 23 / 8 %; NOTES.md, "What
  does each test set give away?"). The default is 50: the smallest of these that keeps the
  nearest training pair out of its story's neighbourhood for ~9 in 10 test pairs, with each
  test set still drawn from 6 places in the collection (50: 300 pairs for 283).
- Each other dataset's pairs outside the held-out sets are split into train and valid by
  valid_fraction of those pairs, rounded, at least one pair in valid, one group at a time.
  Orders are seeded shuffles (test and sealed too: LIMIT=N reads their first N, which must not
  be one story), except that train.jsonl is then stably sorted by text length (characters):
  mlx-lm 0.32.2 cuts batches from chat data in file order (its length sort keys on
  len(record dict)), so this order is what makes its batches hold similar lengths. It still
  shuffles the order of the batches. Measured with the tiny model's tokenizer, padded tokens
  at batch 4 / 8: file order 41 % / 52 %, character order 10 % / 13 %, exact token order
  5 % / 5 % (scripts/sort_by_length.py does that for one model).
- Every manifest records "split", "within_story" (the shares above for this split) and, by
  stories, block_size and each held-out split's blocks as pair-index ranges.
- find_leaks() then checks that no test or sealed Hawaiian or English text appears in any
  train or valid split; --check DIR runs the same check on splits already written.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import sys
from pathlib import Path

import olelo
from olelo.defaults import DEFAULTS
from olelo.data import (find_leaks, haw_en, jsonl_bytes, load_dataset, read_splits, record_pair_id, report_leaks,
                        text_length)
from olelo.splits import make_splits, make_story_splits, pair_order, within_story
from olelo import UserError

from olelo import checks

DEFAULT_BLOCK_SIZE = DEFAULTS["BLOCK_SIZE"]  # pairs; measured in the module docstring


def parse_dataset_arg(text: str) -> tuple[str, Path]:
    name, sep, path = text.partition("=")
    if not sep or not re.fullmatch(r"[A-Za-z0-9_.-]+", name) or name.startswith(".") or not path:
        raise argparse.ArgumentTypeError(f"{text!r}: expected NAME=IN.jsonl with NAME of letters, digits, _ . -")
    return name, Path(path)


def fraction(text: str) -> float:
    value = float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"{text}: must be in [0, 1)")
    return value


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text}: must be at least 1")
    return value


def parse_args(argv):
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="The design (common test set, groups, leak check) is in the module docstring.",
    )
    ap.add_argument("datasets", nargs="*", type=parse_dataset_arg, metavar="NAME=IN.jsonl",
                    help="a dataset name and its chat JSONL from convert_fornander.py")
    ap.add_argument("--out", type=Path, help="folder to write <name>/{train,valid,test}.jsonl into")
    ap.add_argument("--seed", type=int, default=DEFAULTS["SPLIT_SEED"],
                    help="seed for every random choice (default: %(default)s)")
    ap.add_argument("--valid-fraction", type=fraction, default=0.1,
                    help="share of each dataset's pairs outside test (and sealed) that go to valid (default 0.1)")
    ap.add_argument("--test-fraction", type=fraction, default=0.1,
                    help="common test set size as a share of the largest dataset (default 0.1)")
    ap.add_argument("--by", choices=("stories", "paragraphs"), default="paragraphs",
                    help="paragraphs (default): test pairs drawn one group at a time; stories: whole blocks "
                         "of consecutive pairs held out, as a dev test and a sealed test")
    ap.add_argument("--block-size", type=positive, metavar="N",
                    help=f"--by stories: consecutive pairs per block (default: {DEFAULT_BLOCK_SIZE})")
    ap.add_argument("--sealed-fraction", type=fraction,
                    help="--by stories: sealed test size as a share of the largest dataset (default: --test-fraction)")
    ap.add_argument("--check", type=Path, metavar="DIR",
                    help="only check the splits already in DIR for leaks; exit 1 if any")
    args = ap.parse_args(argv)
    if args.check:
        if args.datasets or args.out:
            ap.error("--check DIR takes no datasets and no --out")
    elif not args.out or not args.datasets:
        ap.error("give --out DIR and at least one NAME=IN.jsonl (or --check DIR)")
    if args.by == "paragraphs" and (args.block_size is not None or args.sealed_fraction is not None):
        ap.error("--block-size and --sealed-fraction are for --by stories")
    if args.block_size is None:
        args.block_size = DEFAULT_BLOCK_SIZE
    if args.sealed_fraction is None:
        args.sealed_fraction = args.test_fraction
    names = [name for name, _ in args.datasets]
    if len(set(names)) != len(names):
        ap.error(f"dataset names must differ: {' '.join(names)}")
    return args


def check(root: Path) -> int:
    splits = read_splits(root)
    leaks = find_leaks(splits)
    report_leaks(leaks)
    counts = "; ".join(f"{n}: " + ", ".join(f"{s} {len(r)}" for s, r in sp.items()) for n, sp in splits.items())
    verdict = f"{len(leaks)} LEAK(S)" if leaks else "no leaks"
    print(f"split --check {root}: {verdict} ({counts} records)", file=sys.stderr)
    return 1 if leaks else 0


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.check:
        return check(args.check)
    paths = dict(args.datasets)
    for name, path in paths.items():
        if (args.out / name).resolve() in path.resolve().parents:
            raise UserError(f"input {path} is inside {args.out / name}, which this split replaces; "
                            f"copy it elsewhere first or pick another --out")
    datasets = {name: load_dataset(path) for name, path in paths.items()}
    for name, records in datasets.items():
        damaged, _ = checks.check_pairs(
            [(f"{paths[name]} record {n}", *haw_en(r)) for n, r in enumerate(records, 1)], str(paths[name]))
        checks.refuse_damaged(damaged, str(paths[name]))
    if args.by == "stories":
        splits, largest, story = make_story_splits(datasets, args.seed, args.valid_fraction, args.test_fraction,
                                                   args.sealed_fraction, args.block_size)
        order, split_of = story.pop("order"), story.pop("split_of")
        held = ("valid", "test", "sealed")
    else:
        splits, largest = make_splits(datasets, args.seed, args.valid_fraction, args.test_fraction)
        story = None
        order = pair_order(datasets[largest])
        split_of = {record_pair_id(r): s for s, recs in splits[largest].items() for r in recs}
        held = ("valid", "test")
    leaks = find_leaks(splits)
    if leaks:
        report_leaks(leaks)
        print(f"error: {len(leaks)} leak(s) between test/sealed and train/valid; nothing written", file=sys.stderr)
        return 1
    near = within_story(order, split_of, held)

    inputs = {name: {"path": str(p), "sha256": olelo.sha256_file(p)} for name, p in paths.items()}
    outputs = {}
    for name, by_split in splits.items():
        by_split["train"] = sorted(by_split["train"], key=text_length)
        for split, records in by_split.items():
            outputs[name, split] = hashlib.sha256(jsonl_bytes(records)).hexdigest()
    if story:
        how = {"split": "stories", "block_size": story["block_size"],
               **({"block_size_asked": args.block_size} if story["block_size"] != args.block_size else {}),
               "sealed_fraction": args.sealed_fraction}
    else:
        how = {"split": "paragraphs"}
    for name, by_split in splits.items():
        with olelo.atomic_dir(args.out / name) as tmp:
            for split, records in by_split.items():
                olelo.atomic_write_bytes(tmp / f"{split}.jsonl", jsonl_bytes(records))
            olelo.atomic_write_json(tmp / "manifest.json", {
                "name": name,
                **how,
                "seed": args.seed,
                "valid_fraction": args.valid_fraction,
                "test_fraction": args.test_fraction,
                "input": inputs[name],
                "directions": sorted({r["direction"] for r in datasets[name]}),
                "counts": {s: {"records": len(r), "pairs": len({record_pair_id(x) for x in r})}
                           for s, r in by_split.items()},
                "outputs": {f"{s}.jsonl": outputs[name, s] for s in by_split},
                "train_order": "by text length (characters), for mlx-lm's batching",
                "common_test_from": largest,
                "common_test_sha256": outputs[largest, "test"],
                **({"common_sealed_sha256": outputs[largest, "sealed"]} if story else {}),
                "within_story": near,
                "within_story_of": f"{largest}: held-out pairs with a train pair right before or after them "
                                   f"in {paths[largest]}",
                **({"blocks": story["blocks"], "blocks_not_for_test": story["blocks_not_for_test"],
                    "blocks_are": f"[first, last + 1) pair indices in {paths[largest]} (pairs in order of "
                                  f"first record)", "group_moves": story["group_moves"]} if story else {}),
                "all_inputs": inputs,
            })

    summary = "; ".join(
        f"{name}: " + " / ".join(
            f"{s} {len({record_pair_id(r) for r in by_split[s]})}" for s in by_split)
        for name, by_split in splits.items()
    )
    if story and story["block_size"] != args.block_size:
        print(f"split: note: blocks of {story['block_size']} pairs, not {args.block_size}: a held-out split "
              f"of {largest!r} is smaller than {args.block_size} pairs", file=sys.stderr)
    if story and story["group_moves"]:
        print(f"split: note: {len(story['group_moves'])} pair(s) moved out of their block's split to keep "
              f"pairs sharing a text together (manifest: group_moves)", file=sys.stderr)
    print(f"split --by {args.by}: pairs per split: {summary}; common test drawn from {largest!r} "
          f"(seed {args.seed}); no leaks; wrote {args.out}/", file=sys.stderr)
    shares = ", ".join(f"{s} {near[s]['share']:.1%} ({near[s]['with_train_neighbour']}/{near[s]['pairs']})"
                       for s in held if s != "valid")
    print(f"split: within-story share (held-out pairs beside a train pair): {shares}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    olelo.run_main(main)
