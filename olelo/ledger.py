"""The ledger of looks at the sealed test set.

A story split (scripts/split.py --by stories) holds a second test set, sealed.jsonl, that
nothing may be chosen on. Every evaluation that scores it is one look, and each look is
one line of a committed ledger, <runs>/sealed-ledger.tsv:

    date  commit  run  eval_folder  checkpoints  test_file  test_sha256

A look is recorded once its summary is written: a refused or failed evaluation leaves
no line. Reading sealed.jsonl anywhere else needs the same explicit consent
(`require_consent`), so a sealed number cannot appear without its line. Every table
that shows sealed numbers prints `looks()` for that file's sha256: the more looks, the
less a sealed number is a clean estimate.
"""

from __future__ import annotations

import fcntl
import os
from datetime import datetime, timezone
from pathlib import Path

from olelo.cli import UserError
from olelo.runs import git_info

SEALED_FILE = "sealed.jsonl"
LEDGER_NAME = "sealed-ledger.tsv"
COLUMNS = ("date", "commit", "run", "eval_folder", "checkpoints", "test_file", "test_sha256")


def ledger_path(runs_dir) -> Path:
    return Path(runs_dir) / LEDGER_NAME


def is_sealed(path) -> bool:
    return Path(path).name == SEALED_FILE


def require_consent(path, consent: bool) -> None:
    """Refuse to read a sealed test set unless the caller was told to (SEALED=1)."""
    if is_sealed(path) and not consent:
        raise UserError(f"{path} is the sealed test set: scoring it is a look that the ledger records. "
                        f"Use make eval RUN=<stamp> SEALED=1 (or pass --sealed), once a run is chosen on the dev test")


def _rows(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if n == 1 or not line.strip():
            continue  # the header
        cells = line.split("\t")
        if len(cells) != len(COLUMNS):
            raise UserError(f"{path}:{n}: {len(cells)} tab-separated fields, the ledger has {len(COLUMNS)}; "
                            f"repair the line by hand (git diff {path} shows what changed)")
        rows.append(dict(zip(COLUMNS, cells)))
    return rows


def looks(runs_dir, test_sha256: str) -> int:
    """How many looks the sealed test with this sha256 has had."""
    return sum(r["test_sha256"] == test_sha256 for r in _rows(ledger_path(runs_dir)))


def looks_phrase(runs_dir, test_sha256: str) -> str:
    n = looks(runs_dir, test_sha256)
    return f"{n} look" + ("" if n == 1 else "s")


def _clean(value) -> str:
    return " ".join(str(value).split())  # no tab or line break can split a record


def record_look(runs_dir, run: str, eval_folder, checkpoints, test_file, test_sha256: str) -> int:
    """Append one look under an exclusive lock; returns the looks of that test set so far."""
    path = ledger_path(runs_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    git = git_info()
    commit = (git.get("commit") or "unknown") + ("-dirty" if git.get("dirty") else "")
    line = "\t".join(_clean(v) for v in (
        datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), commit, run, eval_folder,
        ",".join(checkpoints), test_file, test_sha256)) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        if os.fstat(fd).st_size == 0:
            os.write(fd, ("\t".join(COLUMNS) + "\n").encode("utf-8"))
        os.write(fd, line.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)  # (closing releases the lock)
    return looks(runs_dir, test_sha256)
