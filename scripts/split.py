"""Split converted datasets into train/valid/test, with one test set common to all of them.

    python scripts/split.py --out data/finetuning [--seed 0] [--valid-fraction 0.1]
        [--test-fraction 0.1] large=fornander.jsonl small=koa.jsonl
    python scripts/split.py --check data/finetuning

Inputs are chat JSONL files written by convert_fornander.py. Writes OUT/<name>/train.jsonl,
valid.jsonl, test.jsonl and manifest.json for every NAME=IN.jsonl, each folder whole (a
temporary sibling renamed into place: a killed split leaves the old folder or the new, never
a mix), and only after the leakage check and the text checks (mojibake, U+FFFD, lost
diacritics, a swapped language column; olelo/checks.py) have passed. An input inside a
folder it would replace is refused.

Design (so models trained on different datasets are scored on the same examples):
- Pairs are compared by content (convert_fornander.match_key of the Hawaiian and the English),
  never by the ids stored in the files. Pairs that share their Hawaiian or their English text
  form one group, and a group always lands in one split: both directions of a pair, and a
  reference translation used for two near-identical Hawaiian texts, stay together.
- The test set is drawn (seeded) from the groups of the largest dataset (most pairs; the first
  named wins a tie) that touch no other dataset, test_fraction x its pair count, rounded.
  Every dataset's test.jsonl is that same set, so no dataset trains on it.
- Each dataset's other pairs are split into train and valid by valid_fraction of those pairs,
  rounded, at least one pair in valid. Orders are seeded shuffles, except that train.jsonl is
  then stably sorted by text length (characters): mlx-lm 0.32.2 cuts batches from chat data in
  file order (its length sort keys on len(record dict)), so this order is what makes its
  batches hold similar lengths. It still shuffles the order of the batches. Measured with the
  tiny model's tokenizer, padded tokens at batch 4 / 8: file order 41 % / 52 %, character order
  10 % / 13 %, exact token order 5 % / 5 % (scripts/sort_by_length.py does that for one model).
- find_leaks() then checks that no test Hawaiian or English text appears in any train or valid
  split; --check DIR runs the same check on splits already written.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import random
import re
import sys
from collections import defaultdict
from pathlib import Path

import olelo
from olelo.data import (SPLITS, find_leaks, haw_en, jsonl_bytes, load_dataset, match_key, read_splits, record_pair_id,
                        report_leaks, text_length)
from olelo import UserError

from olelo import checks

def round_half_up(x: float) -> int:
    return math.floor(x + 0.5)


def groups_of(pairs: dict[str, tuple[str, str]]) -> dict[str, str]:
    """pair id -> group id, where pairs sharing a Hawaiian or an English text are one group."""
    parent: dict[str, str] = {}

    def root(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for pid, (haw, en) in pairs.items():
        root(pid)
        for side, text in (("haw", haw), ("en", en)):
            key = match_key(text)
            if key:  # a text without letters or digits must not join everything
                parent[root(pid)] = root(f"{side}:{key}")
    members = defaultdict(list)
    for pid in pairs:
        members[root(pid)].append(pid)
    # The smallest pair id names a group, so group ids do not depend on input order.
    return {pid: min(group) for group in members.values() for pid in group}


def pick(groups: dict[str, set[str]], n: int, rng: random.Random) -> set[str]:
    """Up to n pair ids, taking whole groups in a seeded order."""
    order = sorted(groups)
    rng.shuffle(order)
    chosen: set[str] = set()
    for g in order:
        if len(chosen) == n:
            break
        if len(chosen) + len(groups[g]) <= n:
            chosen |= groups[g]
    return chosen


def make_splits(datasets: dict[str, list[dict]], seed: int, valid_fraction: float,
                test_fraction: float) -> tuple[dict[str, dict[str, list[dict]]], str]:
    """({name: {split: records}}, name of the dataset the test set was drawn from)."""
    keyed = {name: [(record_pair_id(r), r) for r in recs] for name, recs in datasets.items()}
    texts = {pid: haw_en(r) for recs in keyed.values() for pid, r in recs}
    group = groups_of(texts)
    pairs = {name: {pid for pid, _ in recs} for name, recs in keyed.items()}
    largest = max(datasets, key=lambda name: len(pairs[name]))
    in_others = set().union(*(pairs[n] for n in datasets if n != largest))
    blocked_groups = {group[pid] for pid in in_others}

    eligible = defaultdict(set)
    for pid in pairs[largest]:
        if group[pid] not in blocked_groups:
            eligible[group[pid]].add(pid)
    n_test = round_half_up(test_fraction * len(pairs[largest]))
    n_eligible = sum(map(len, eligible.values()))
    if n_eligible < n_test:
        raise UserError(
            f"the test set needs {n_test} pairs of {largest!r} that no other dataset holds, "
            f"but only {n_eligible} are; lower --test-fraction"
        )
    test_pids = pick(eligible, n_test, random.Random(f"{seed}:test"))
    test = [r for pid, r in keyed[largest] if pid in test_pids]
    random.Random(f"{seed}:test:order").shuffle(test)

    out = {}
    for name, recs in keyed.items():
        rest = defaultdict(set)
        for pid in pairs[name] - test_pids:
            rest[group[pid]].add(pid)
        n_rest = sum(map(len, rest.values()))
        n_valid = max(1, round_half_up(valid_fraction * n_rest))
        valid_pids = pick(rest, n_valid, random.Random(f"{seed}:valid:{name}"))
        if not valid_pids or len(valid_pids) == n_rest:
            raise UserError(
                f"dataset {name!r} has {n_rest} pair(s) outside the test set in {len(rest)} "
                f"group(s); that is too few to give both train and valid at least one"
            )
        train = [r for pid, r in recs if pid not in test_pids and pid not in valid_pids]
        valid = [r for pid, r in recs if pid in valid_pids]
        random.Random(f"{seed}:train:order:{name}").shuffle(train)
        random.Random(f"{seed}:valid:order:{name}").shuffle(valid)
        out[name] = {"train": train, "valid": valid, "test": list(test)}
    return out, largest


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


def parse_args(argv):
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="The design (common test set, groups, leak check) is in the module docstring.",
    )
    ap.add_argument("datasets", nargs="*", type=parse_dataset_arg, metavar="NAME=IN.jsonl",
                    help="a dataset name and its chat JSONL from convert_fornander.py")
    ap.add_argument("--out", type=Path, help="folder to write <name>/{train,valid,test}.jsonl into")
    ap.add_argument("--seed", type=int, default=0, help="seed for every random choice (default 0)")
    ap.add_argument("--valid-fraction", type=fraction, default=0.1,
                    help="share of each dataset's non-test pairs that go to valid (default 0.1)")
    ap.add_argument("--test-fraction", type=fraction, default=0.1,
                    help="common test set size as a share of the largest dataset (default 0.1)")
    ap.add_argument("--check", type=Path, metavar="DIR",
                    help="only check the splits already in DIR for leaks; exit 1 if any")
    args = ap.parse_args(argv)
    if args.check:
        if args.datasets or args.out:
            ap.error("--check DIR takes no datasets and no --out")
    elif not args.out or not args.datasets:
        ap.error("give --out DIR and at least one NAME=IN.jsonl (or --check DIR)")
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
    splits, largest = make_splits(datasets, args.seed, args.valid_fraction, args.test_fraction)
    leaks = find_leaks(splits)
    if leaks:
        report_leaks(leaks)
        print(f"error: {len(leaks)} leak(s) between test and train/valid; nothing written", file=sys.stderr)
        return 1

    inputs = {name: {"path": str(p), "sha256": olelo.sha256_file(p)} for name, p in paths.items()}
    outputs = {}
    for name, by_split in splits.items():
        by_split["train"] = sorted(by_split["train"], key=text_length)
        for split, records in by_split.items():
            outputs[name, split] = hashlib.sha256(jsonl_bytes(records)).hexdigest()
    for name, by_split in splits.items():
        with olelo.atomic_dir(args.out / name) as tmp:
            for split, records in by_split.items():
                olelo.atomic_write_bytes(tmp / f"{split}.jsonl", jsonl_bytes(records))
            olelo.atomic_write_json(tmp / "manifest.json", {
                "name": name,
                "seed": args.seed,
                "valid_fraction": args.valid_fraction,
                "test_fraction": args.test_fraction,
                "input": inputs[name],
                "directions": sorted({r["direction"] for r in datasets[name]}),
                "counts": {s: {"records": len(r), "pairs": len({record_pair_id(x) for x in r})}
                           for s, r in by_split.items()},
                "outputs": {f"{s}.jsonl": outputs[name, s] for s in SPLITS},
                "train_order": "by text length (characters), for mlx-lm's batching",
                "common_test_from": largest,
                "common_test_sha256": outputs[largest, "test"],
                "all_inputs": inputs,
            })

    summary = "; ".join(
        f"{name}: " + " / ".join(
            f"{s} {len({record_pair_id(r) for r in by_split[s]})}" for s in SPLITS)
        for name, by_split in splits.items()
    )
    print(f"split: pairs per split: {summary}; common test drawn from {largest!r} "
          f"(seed {args.seed}); no leaks; wrote {args.out}/", file=sys.stderr)
    return 0


if __name__ == "__main__":
    olelo.run_main(main)
