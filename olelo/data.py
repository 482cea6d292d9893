"""Pairs and splits: a pair's identity (match key, pair id), chat records read as
(Hawaiian, English), split folders (reading them; writing one made from another, with
its manifest), leaks of held-out text (test, sealed) into train/valid, and a split
folder's label in run stamps.
Conversion (scripts/convert_fornander.py), splitting (split.py), mixing (mix_data.py,
short_data.py, retrieval_data.py) and the run identity all use these definitions."""

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


# An apostrophe or quote before a vowel is an ʻokina written with a look-alike.
_VOWELS = "aeiouāēīōūAEIOUĀĒĪŌŪ"
_OKINA_LOOKALIKE = re.compile(f"['`\u2018\u2019\u02bc](?=[{_VOWELS}])")


def modern_orthography(haw: str) -> str:
    """Hawaiian with the ʻokina (U+02BB) where a look-alike stands before a vowel."""
    return _OKINA_LOOKALIKE.sub("\u02bb", haw)


def chat_records(kept: list[dict], direction: str) -> list[dict]:
    """Kept pairs ({pair_id, haw, en}) as chat records, one per direction asked ("both": each)."""
    directions = olelo.DIRECTIONS if direction == "both" else (direction,)
    records = []
    for p in kept:
        for d in directions:
            source, target = (p["haw"], p["en"]) if d == "haw-en" else (p["en"], p["haw"])
            rec = olelo.chat_record(source, target, d, f"{p['pair_id']}-{d}")
            records.append({"id": rec.pop("id"), "pair_id": p["pair_id"], **rec})
    return records


SPLITS = ("train", "valid", "test")
# Held out from training: test (the dev test every eval reads) and sealed (split.py --by
# stories: a second test never used to choose anything). A folder may lack sealed.jsonl.
HELD_OUT = ("test", "sealed")
ALL_SPLITS = ("train", "valid", "test", "sealed")


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
            ok = rec["direction"] in olelo.DIRECTIONS and all(text.strip() for text in haw_en(rec))
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
    """Held-out records (test or sealed) whose Hawaiian or English text (by match key) is also
    in a train or valid split of any dataset. An empty list means no leaks. This is stricter
    than comparing whole pairs: a test source seen in training with another translation counts
    as a leak. A leak's "held_out" names the split, "test_in" the datasets holding it there."""
    trained = {}
    for name, splits in datasets.items():
        for split in ("train", "valid"):
            for rec in splits.get(split, []):
                haw, en = haw_en(rec)
                for side, text in (("haw", haw), ("en", en)):
                    trained.setdefault((side, match_key(text)), (f"{name}/{split}", pair_id(haw, en)))
    leaks = {}
    for held in HELD_OUT:
        for name, splits in datasets.items():
            for rec in splits.get(held, []):
                haw, en = haw_en(rec)
                for side, text in (("haw", haw), ("en", en)):
                    key = match_key(text)
                    if not key or (side, key) not in trained:
                        continue
                    where, train_pair = trained[(side, key)]
                    leak = leaks.setdefault((pair_id(haw, en), side, held), {
                        "pair_id": pair_id(haw, en), "side": side, "held_out": held, "test_in": [],
                        "trained_in": where, "trained_pair_id": train_pair, "excerpt": excerpt(text),
                    })
                    if name not in leak["test_in"]:
                        leak["test_in"].append(name)
    return list(leaks.values())


def report_leaks(leaks: list[dict]) -> None:
    for leak in leaks:
        print(
            f"leak: pair {leak['pair_id']} ({leak['side']} text) is in {leak.get('held_out', 'test')} of "
            f"{', '.join(leak['test_in'])} and in {leak['trained_in']} (pair "
            f"{leak['trained_pair_id']}): {leak['excerpt']}",
            file=sys.stderr,
        )


def read_splits(root: Path) -> dict[str, dict[str, list[dict]]]:
    if not root.is_dir():
        raise UserError(f"{root}: no such directory; run split.py --out {root} first")
    found = {}
    for sub in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = {s: sub / f"{s}.jsonl" for s in ALL_SPLITS if (sub / f"{s}.jsonl").is_file()}
        if files:
            # An empty split is fine here: --test-fraction 0 writes an empty test.jsonl.
            found[sub.name] = {s: load_dataset(f, allow_empty=True) for s, f in files.items()}
    if not found:
        raise UserError(f"{root}: no <name>/{{train,valid,test}}.jsonl found; run split.py --out {root} first")
    return found


def inputs_sha256(*folders: Path) -> dict[str, str]:
    """A derived folder's record of the split folders it was made from: each one's
    manifest.json path and sha256 (write_split_folder never writes over one of them)."""
    return {str(Path(d) / "manifest.json"): olelo.sha256_file(Path(d) / "manifest.json") for d in folders}


def write_split_folder(out: Path, splits: dict[str, list[dict]], manifest: dict,
                       beside: dict[str, dict[str, list[dict]]], pairs: bool = False) -> dict:
    """Write a split folder made from others (mix, short, rag): <split>.jsonl for each of
    `splits` and manifest.json, which is `manifest` followed by "counts" and "files" (each
    file's records, with pairs=True its distinct pairs too, as split.py counts them, and
    its sha256). split.py's leakage check runs first, on `splits` together with the folders
    `beside` it (read_splits of its parent): a leak writes nothing. The folder appears whole
    or not at all (olelo.atomic_dir). A folder named in the manifest's inputs_sha256 is an
    input: refused as `out`. Returns "files"."""
    out = Path(out)
    for listed in manifest.get("inputs_sha256", {}):
        if Path(listed).parent.resolve() == out.resolve():
            raise UserError(f"--out {out} is an input dataset; write the new one to a folder of its own")
    leaks = find_leaks({**beside, out.name: splits})
    if leaks:
        report_leaks(leaks)
        raise UserError(f"{len(leaks)} test pair(s) leak into training data; nothing written")
    files = {}
    with olelo.atomic_dir(out) as tmp:
        for split, records in splits.items():
            olelo.atomic_write_bytes(tmp / f"{split}.jsonl", jsonl_bytes(records))
            files[split] = {"records": len(records),
                            **({"pairs": len({record_pair_id(r) for r in records})} if pairs else {}),
                            "sha256": olelo.sha256_file(tmp / f"{split}.jsonl")}
        counts = {s: {"records": f["records"], "pairs": f["pairs"]} if pairs else f["records"]
                  for s, f in files.items()}
        olelo.atomic_write_json(tmp / "manifest.json", {**manifest, "counts": counts, "files": files})
    return files


def dataset_label(data_dir) -> str:
    """A split folder's name in run stamps: the folder name, plus "-stories" when its
    manifest says split.py held out whole stories (--by stories), so such runs never share
    a stamp with runs of the same settings on the paragraph split. Paragraph folders and
    folders without a manifest keep the bare name, as every stamp made before had it."""
    folder = Path(data_dir)
    manifest = folder / "manifest.json"
    record = olelo.read_json(manifest, "split manifest") if manifest.is_file() else {}
    split = record.get("split") if isinstance(record, dict) else None
    return f"{folder.name}-stories" if split == "stories" else folder.name
