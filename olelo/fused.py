"""What fuse wrote into a fused model's folder, and whether the folder still holds it.

scripts/fuse.py records every file it wrote (name, bytes, sha256) in the folder's
olelo_fuse.json under "files"; scripts/upload.py sends a file only when it is one of
them, unchanged, and fuse's "up to date" holds only while all of them are. Not recorded:
olelo_fuse.json itself, and README.md (the model card upload writes there).
"""

from __future__ import annotations

from pathlib import Path

import olelo

RECORD = "olelo_fuse.json"
NOT_RECORDED = (RECORD, "README.md")


def _plain(path: Path) -> bool:
    return path.is_file() and not path.is_symlink()


def inventory(folder) -> dict:
    """{name: {"bytes", "sha256"}} of the folder's own plain files (no subfolders, no links)."""
    folder = Path(folder)
    return {f.name: {"bytes": f.stat().st_size, "sha256": olelo.sha256_file(f)}
            for f in sorted(folder.iterdir()) if _plain(f) and f.name not in NOT_RECORDED}


def problems(folder, recorded: dict, names=None) -> list[str]:
    """Why files of `folder` are not what fuse wrote, one line each ([] when they are).
    names: the files to check (default: every recorded one); a name fuse did not write
    is a problem, and so is a recorded one that is gone, a link, or changed (the size is
    compared first, so a truncated file costs no hashing)."""
    folder = Path(folder)
    out = []
    for name in (sorted(recorded) if names is None else names):
        path, want = folder / name, recorded.get(name)
        if want is None:
            out.append(f"{path}: not a file fuse wrote (not in {RECORD}); remove it, or fuse again")
        elif not _plain(path):
            out.append(f"{path}: fuse wrote it and it is {'a link now' if path.is_symlink() else 'gone'}")
        elif path.stat().st_size != want.get("bytes"):
            out.append(f"{path}: {path.stat().st_size} bytes, fuse wrote {want.get('bytes')} (damaged)")
        elif olelo.sha256_file(path) != want.get("sha256"):
            out.append(f"{path}: not the bytes fuse wrote (sha256 differs)")
    return out
