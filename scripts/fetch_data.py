"""Lay down the raw parallel data in data/raw, verified by sha256.

    python scripts/fetch_data.py --download --out data/raw      # from the pinned public URLs
    python scripts/fetch_data.py --src ../shared/data --out data/raw   # copy a local folder

The source folder is laid out like data/raw: fornander/fornander_pairs.csv and
koa/koa_pairs.csv. Raw data is immutable: a file is written only after its
checksum matches, and never committed.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
import urllib.error
import urllib.request
from pathlib import Path

import olelo

UPSTREAM = "https://raw.githubusercontent.com/PurpleMaia/KumuBot-L1-Translation/f07f14542a7e88898f8614536ff8edbb0319cce7"
FILES = {
    "fornander/fornander_pairs.csv": (
        "finetuning/finetuning_dataset.csv",
        "fc04a8ed82993c9f7d2e13708f8c3ef3bc45b323bc35359c1236c081820a20f5",
    ),
    "koa/koa_pairs.csv": (
        "finetuning/backup_jun25-2025_koa_original_finetuning_dataset.csv",
        "171adf4571c1d37b527394cd6185a949342008b6635ffae3a5472711b23bc1e3",
    ),
}


def verified_write(data: bytes, dest: Path, expected: str, origin: str) -> None:
    got = hashlib.sha256(data).hexdigest()
    if got != expected:
        raise olelo.UserError(f"{origin}: sha256 {got} does not match the pinned {expected}; not written")
    olelo.atomic_write_bytes(dest, data)
    print(f"{dest}: ok (sha256 {expected[:12]}…, from {origin})", file=sys.stderr)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--src", help="a local folder laid out like data/raw (e.g. ../shared/data)")
    src.add_argument("--download", action="store_true", help="download from the commit-pinned public URLs")
    p.add_argument("--out", default="data/raw")
    a = p.parse_args()
    out = Path(a.out)
    for rel, (upstream_path, sha) in FILES.items():
        dest = out / rel
        if dest.is_file() and olelo.sha256_file(dest) == sha:
            print(f"{dest}: ok (already there)", file=sys.stderr)
            continue
        if a.src:
            f = Path(a.src) / rel
            if not f.is_file():
                raise olelo.UserError(f"{f}: not found; DATA_SRC must be laid out like data/raw ({', '.join(FILES)})")
            verified_write(f.read_bytes(), dest, sha, str(f))
        else:
            url = f"{UPSTREAM}/{upstream_path}"
            try:
                with urllib.request.urlopen(url, timeout=30) as r:
                    data = r.read()
            except (urllib.error.URLError, OSError) as e:
                raise olelo.UserError(
                    f"cannot download {url} ({e}). Offline? Copy the files from a folder laid out like "
                    f"data/raw instead: make data DATA_SRC=<folder> (e.g. ../shared/data)") from None
            verified_write(data, dest, sha, url)
    return 0


if __name__ == "__main__":
    olelo.run_main(main)
