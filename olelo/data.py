"""Pairs and splits: a pair's identity (match key, pair id), chat records read as
(Hawaiian, English), split folders, and leaks of test text into train/valid.
Conversion (scripts/convert_fornander.py), splitting (split.py), mixing (mix_data.py,
short_data.py) and the run identity all use these definitions."""

from __future__ import annotations

import functools
import hashlib
import json
import re
import sys
import unicodedata
from pathlib import Path

import olelo
from olelo.cli import UserError

# \W drops punctuation, spaces and combining marks (kahako after NFKD); U+02B0-U+02FF are
# modifier letters, which \w would keep, among them the ʻokina and its look-alike U+02BC.
_NOT_LETTER_OR_DIGIT = re.compile(r"[\W_\u02b0-\u02ff]+")

# Cached: leak checks ask again for the same texts, and the regex is the slow part.
@functools.lru_cache(maxsize=None)
def match_key(text: str) -> str:
    """Case-folded letters and digits only: what duplicate and leak checks compare."""
    return _NOT_LETTER_OR_DIGIT.sub("", unicodedata.normalize("NFKD", text).casefold())


def pair_id(haw: str, en: str) -> str:
    digest = hashlib.sha256(f"{match_key(haw)}\t{match_key(en)}".encode("utf-8")).hexdigest()
    return "p" + digest[:12]


def excerpt(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[:width] + "…"


SPLITS = ("train", "valid", "test")


def haw_en(record: dict) -> tuple[str, str]:
    source, target = olelo.record_source_target(record)
    return (source, target) if record["direction"] == "haw-en" else (target, source)


def record_pair_id(record: dict) -> str:
    return pair_id(*haw_en(record))


def load_dataset(path: Path, allow_empty: bool = False) -> list[dict]:
    records = olelo.read_jsonl(path)
    if not records and not allow_empty:
        raise UserError(f"{path}: no records; convert a CSV with convert_fornander.py first")
    for n, rec in enumerate(records, 1):
        try:
            ok = rec["direction"] in olelo.DIRECTIONS and all(haw_en(rec))
        except (KeyError, TypeError, AttributeError):
            ok = False
        if not ok:
            raise UserError(
                f"{path}: record {n} is not a chat record from convert_fornander.py "
                f"(needs a direction and messages with non-empty user and assistant turns)"
            )
    return records


def jsonl_bytes(records: list[dict]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode("utf-8")


def text_length(record: dict) -> int:
    return sum(len(m["content"]) for m in record["messages"])


def find_leaks(datasets: dict[str, dict[str, list[dict]]]) -> list[dict]:
    """Test records whose Hawaiian or English text (by match key) is also in a train or valid
    split of any dataset. An empty list means no leaks. This is stricter than comparing
    whole pairs: a test source seen in training with another translation counts as a leak."""
    trained = {}
    for name, splits in datasets.items():
        for split in ("train", "valid"):
            for rec in splits.get(split, []):
                haw, en = haw_en(rec)
                for side, text in (("haw", haw), ("en", en)):
                    trained.setdefault((side, match_key(text)), (f"{name}/{split}", pair_id(haw, en)))
    leaks = {}
    for name, splits in datasets.items():
        for rec in splits.get("test", []):
            haw, en = haw_en(rec)
            for side, text in (("haw", haw), ("en", en)):
                key = match_key(text)
                if not key or (side, key) not in trained:
                    continue
                where, train_pair = trained[(side, key)]
                leak = leaks.setdefault((pair_id(haw, en), side), {
                    "pair_id": pair_id(haw, en), "side": side, "test_in": [],
                    "trained_in": where, "trained_pair_id": train_pair, "excerpt": excerpt(text),
                })
                if name not in leak["test_in"]:
                    leak["test_in"].append(name)
    return list(leaks.values())


def report_leaks(leaks: list[dict]) -> None:
    for leak in leaks:
        print(
            f"leak: pair {leak['pair_id']} ({leak['side']} text) is in test of "
            f"{', '.join(leak['test_in'])} and in {leak['trained_in']} (pair "
            f"{leak['trained_pair_id']}): {leak['excerpt']}",
            file=sys.stderr,
        )


def read_splits(root: Path) -> dict[str, dict[str, list[dict]]]:
    if not root.is_dir():
        raise UserError(f"{root}: no such directory; run split.py --out {root} first")
    found = {}
    for sub in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = {s: sub / f"{s}.jsonl" for s in SPLITS if (sub / f"{s}.jsonl").is_file()}
        if files:
            # An empty split is fine here: --test-fraction 0 writes an empty test.jsonl.
            found[sub.name] = {s: load_dataset(f, allow_empty=True) for s, f in files.items()}
    if not found:
        raise UserError(f"{root}: no <name>/{{train,valid,test}}.jsonl found; run split.py --out {root} first")
    return found
