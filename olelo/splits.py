"""Splitting chat datasets into train/valid/test (and sealed): the common test set, pair
groups, story blocks, the within-story share. scripts/split.py is the front door; its
docstring says why the splits are made this way.

    out, largest = splits.make_splits({"large": records}, seed, 0.1, 0.1)
    out, largest, info = splits.make_story_splits({"large": records}, seed, 0.1, 0.1, 0.1, 50)
    splits.within_story(order, split_of, ("valid", "test"))   # held-out pairs beside a train pair
"""

from __future__ import annotations

import math
import random
from collections import defaultdict

from olelo.cli import UserError
from olelo.data import haw_en, match_key, record_pair_id

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


def train_and_valid(name: str, recs: list[tuple[str, dict]], rest_pids: set[str], group: dict[str, str],
                    valid_fraction: float, seed: int, held_out: str) -> tuple[list[dict], list[dict]]:
    """A dataset's pairs outside the held-out sets, split into train and valid by whole groups
    (valid_fraction of them, rounded, at least one), in the dataset's order."""
    rest = defaultdict(set)
    for pid in rest_pids:
        rest[group[pid]].add(pid)
    n_rest = sum(map(len, rest.values()))
    valid_pids = pick(rest, max(1, round_half_up(valid_fraction * n_rest)), random.Random(f"{seed}:valid:{name}"))
    if not valid_pids or len(valid_pids) == n_rest:
        raise UserError(
            f"dataset {name!r} has {n_rest} pair(s) outside {held_out} in {len(rest)} "
            f"group(s); that is too few to give both train and valid at least one"
        )
    train = [r for pid, r in recs if pid in rest_pids and pid not in valid_pids]
    valid = [r for pid, r in recs if pid in valid_pids]
    return train, valid


def keyed_datasets(datasets: dict[str, list[dict]]):
    """(keyed, group, pairs, largest, blocked_groups): each dataset's (pair id, record)s,
    every pair's group, each dataset's pair ids, the largest dataset's name, and the groups
    another dataset holds (none of them may be tested on)."""
    keyed = {name: [(record_pair_id(r), r) for r in recs] for name, recs in datasets.items()}
    group = groups_of({pid: haw_en(r) for recs in keyed.values() for pid, r in recs})
    pairs = {name: {pid for pid, _ in recs} for name, recs in keyed.items()}
    largest = max(datasets, key=lambda name: len(pairs[name]))
    in_others = set().union(*(pairs[n] for n in datasets if n != largest))
    return keyed, group, pairs, largest, {group[pid] for pid in in_others}


def make_splits(datasets: dict[str, list[dict]], seed: int, valid_fraction: float,
                test_fraction: float) -> tuple[dict[str, dict[str, list[dict]]], str]:
    """({name: {split: records}}, name of the dataset the test set was drawn from)."""
    keyed, group, pairs, largest, blocked_groups = keyed_datasets(datasets)

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
        train, valid = train_and_valid(name, recs, pairs[name] - test_pids, group, valid_fraction, seed,
                                       "the test set")
        random.Random(f"{seed}:train:order:{name}").shuffle(train)
        random.Random(f"{seed}:valid:order:{name}").shuffle(valid)
        out[name] = {"train": train, "valid": valid, "test": list(test)}
    return out, largest


RANK = {"train": 0, "valid": 1, "test": 2, "sealed": 3}  # how far from training a split is


def pair_order(records: list[dict]) -> list[str]:
    """Pair ids in input order, each at its first record (direction both: two records a pair)."""
    return list(dict.fromkeys(record_pair_id(r) for r in records))


def within_story(order: list[str], split_of: dict[str, str], held: tuple[str, ...]) -> dict:
    """For each split in `held`: its pairs, how many have a train pair right before or after
    them in the input order (pair index +-1: the same story, seen in training), and the share."""
    out = {}
    for split in held:
        at = [i for i, pid in enumerate(order) if split_of.get(pid) == split]
        near = sum(any(0 <= j < len(order) and split_of.get(order[j]) == "train" for j in (i - 1, i + 1))
                   for i in at)
        out[split] = {"pairs": len(at), "with_train_neighbour": near,
                      "share": round(near / len(at), 4) if at else 0.0}
    return out


def take_blocks(blocks: list[range], candidates: list[int], n: int) -> list[int]:
    """Whole blocks from `candidates` (already in a seeded order) whose pairs come closest to n."""
    chosen, total = [], 0
    for b in candidates:
        if total >= n:
            break
        if abs(total + len(blocks[b]) - n) < abs(total - n):
            chosen.append(b)
            total += len(blocks[b])
    return sorted(chosen)


def make_story_splits(datasets: dict[str, list[dict]], seed: int, valid_fraction: float, test_fraction: float,
                      sealed_fraction: float, block_size: int) -> tuple[dict[str, dict[str, list[dict]]], str, dict]:
    """({name: {split: records}}, the largest dataset's name, what the manifest records about
    the blocks). The largest dataset's pairs, in input order, are cut into blocks of
    block_size consecutive pairs; whole blocks go to test, sealed, valid (in that order of
    choice), the rest to train. See the module docstring."""
    keyed, group, pairs, largest, blocked_groups = keyed_datasets(datasets)

    order = pair_order(datasets[largest])
    n_pairs = len(order)
    n_test = round_half_up(test_fraction * n_pairs)
    n_sealed = round_half_up(sealed_fraction * n_pairs)
    n_valid = max(1, round_half_up(valid_fraction * (n_pairs - n_test - n_sealed)))
    # A block larger than a held-out split could not give that split its size: small data
    # (the 42-pair sample) gets smaller blocks, and the manifest says which size was used.
    size = min([block_size] + [n for n in (n_test, n_sealed, n_valid) if n > 0])
    blocks = [range(start, min(start + size, n_pairs)) for start in range(0, n_pairs, size)]
    # A pair that another dataset holds (or shares a text with) must not be tested on:
    # that dataset trains on it. Its whole block stays out of test and sealed.
    eligible = [b for b, r in enumerate(blocks) if not any(group[order[i]] in blocked_groups for i in r)]
    n_eligible = sum(len(blocks[b]) for b in eligible)
    if n_eligible < n_test + n_sealed:
        raise UserError(
            f"test and sealed need {n_test} + {n_sealed} pairs of {largest!r} in blocks that hold no pair of "
            f"another dataset, but only {n_eligible} are; lower --test-fraction, --sealed-fraction or --block-size"
        )
    block_split: dict[int, str] = {}
    for split, n, pool in (("test", n_test, eligible), ("sealed", n_sealed, eligible),
                           ("valid", n_valid, range(len(blocks)))):
        candidates = [b for b in pool if b not in block_split]
        random.Random(f"{seed}:blocks:{split}").shuffle(candidates)
        for b in take_blocks(blocks, candidates, n):
            block_split[b] = split
    split_of = {order[i]: block_split.get(b, "train") for b, r in enumerate(blocks) for i in r}

    # Pairs sharing a text (one group) must not straddle held-out and training splits:
    # the whole group goes to the split among its members nearest to training.
    members = defaultdict(list)
    for pid in order:
        members[group[pid]].append(pid)
    index = {pid: i for i, pid in enumerate(order)}
    moved = []
    for pids in members.values():
        to = min((split_of[pid] for pid in pids), key=RANK.__getitem__)
        for pid in pids:
            if split_of[pid] != to:
                moved.append({"pair": index[pid], "pair_id": pid, "from": split_of[pid], "to": to})
                split_of[pid] = to
    counts = {s: sum(1 for v in split_of.values() if v == s) for s in RANK}
    for split, n in (("test", n_test), ("sealed", n_sealed), ("valid", n_valid)):
        if n and not counts[split]:
            raise UserError(f"{largest!r}: no block of {size} pairs could go to {split} ({n} pairs wanted); "
                            f"lower --block-size or give more data")
    if not counts["train"]:
        raise UserError(f"{largest!r}: {n_pairs} pairs in {len(blocks)} block(s) leave nothing to train on; "
                        f"lower --block-size or the fractions")

    held = {}
    for split in ("test", "sealed"):
        held[split] = [r for pid, r in keyed[largest] if split_of[pid] == split]
        random.Random(f"{seed}:{split}:order").shuffle(held[split])
    held_pids = {pid for pid, s in split_of.items() if s in held}
    out = {}
    for name, recs in keyed.items():
        if name == largest:
            train = [r for pid, r in recs if split_of[pid] == "train"]
            valid = [r for pid, r in recs if split_of[pid] == "valid"]
        else:  # the other datasets split their own pairs into train and valid, as --by paragraphs does
            train, valid = train_and_valid(name, recs, pairs[name] - held_pids, group, valid_fraction, seed,
                                           "test and sealed")
        random.Random(f"{seed}:train:order:{name}").shuffle(train)
        random.Random(f"{seed}:valid:order:{name}").shuffle(valid)
        out[name] = {"train": train, "valid": valid, "test": list(held["test"]), "sealed": list(held["sealed"])}

    info = {
        "block_size": size,
        "blocks": {split: [[blocks[b].start, blocks[b].stop] for b in sorted(block_split) if block_split[b] == split]
                   for split in ("valid", "test", "sealed")},
        "blocks_not_for_test": len(blocks) - len(eligible),
        "group_moves": moved,
        "order": order,
        "split_of": split_of,
    }
    return out, largest, info
