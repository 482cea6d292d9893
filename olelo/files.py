"""Files: atomic writes, JSON/JSONL reading with clear file/line errors, checksums."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import tempfile
from pathlib import Path

from olelo.cli import UserError


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write a file so that readers see the old content or the new, never a half."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{path}: is a folder; give the path of a file to write")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def atomic_write_jsonl(path, rows) -> None:
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def utf16_kind(data: bytes) -> str | None:
    """'UTF-16 LE'/'UTF-16 BE' when bytes look like UTF-16 text (BOM, or NULs in every
    other byte of the start), else None: such files are text, just not UTF-8."""
    if data.startswith(b"\xff\xfe"):
        return "UTF-16 LE"
    if data.startswith(b"\xfe\xff"):
        return "UTF-16 BE"
    head = data[:200]
    if len(head) >= 4:
        even, odd = head[0::2], head[1::2]
        if odd.count(0) > 0.8 * len(odd) and even.count(0) < 0.2 * len(even):
            return "UTF-16 LE"
        if even.count(0) > 0.8 * len(even) and odd.count(0) < 0.2 * len(odd):
            return "UTF-16 BE"
    return None


def decode_utf8(path, data: bytes) -> str:
    """The text of a file's bytes, or one line saying which encoding it has instead."""
    kind = utf16_kind(data)
    if kind:
        raise UserError(f"{path}: the file is {kind} text, not UTF-8; convert it: "
                        f"iconv -f UTF-16 -t UTF-8 {path} > {Path(path).stem}-utf8{Path(path).suffix}")
    skip = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    try:
        return data[skip:].decode("utf-8")
    except UnicodeDecodeError as e:
        at = skip + e.start
        line = data.count(b"\n", 0, at) + 1
        raise UserError(f"{path}:{line}: not UTF-8 (byte 0x{data[at]:02x} at byte offset {at}); "
                        f"re-save the file as UTF-8 (e.g. iconv -f cp1252 -t utf-8)") from None


def read_jsonl(path) -> list[dict]:
    """Read a JSONL file; a bad line is reported with file and line number."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{path}: is a folder; give the path of a .jsonl file")
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    rows = []
    for lineno, line in enumerate(decode_utf8(path, path.read_bytes()).splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as e:
            raise UserError(f"{path}:{lineno}: not valid JSON ({e.msg})") from None
    return rows


def read_json(path, what: str = "record"):
    """A JSON file, or one line naming the file when it is missing or damaged."""
    path = Path(path)
    try:
        return json.loads(decode_utf8(path, path.read_bytes()))
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except json.JSONDecodeError as e:
        raise UserError(f"{path}: damaged {what} (not valid JSON: {e.msg} at line {e.lineno}); "
                        f"restore it from git (git checkout -- {path}) or remove that folder") from None


class atomic_dir:
    """A folder that appears whole or not at all: write into the yielded temporary
    sibling; on success it replaces `path` (the old folder is removed only then).

        with olelo.atomic_dir(out) as tmp:
            write files into tmp
    """

    def __init__(self, path):
        self.path = Path(path)
        self.tmp = self.path.parent / f".{self.path.name}.tmp-{os.getpid()}"

    def __enter__(self) -> Path:
        import shutil

        try:  # one stat: another process may move the folder aside between two
            is_file = not stat.S_ISDIR(os.stat(self.path).st_mode)
        except FileNotFoundError:
            is_file = False
        if is_file:
            raise UserError(f"{self.path}: is a file, not a folder; remove it or pick another path")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.tmp.mkdir()
        return self.tmp

    def __exit__(self, kind, value, tb):
        import shutil

        if kind is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            return False
        replace_folder(self.tmp, self.path)
        return False


def replace_folder(new, dest) -> None:
    """Rename the finished folder `new` to `dest`, replacing a folder there. Two processes
    doing this at once (two makes building the same folder) both succeed, the later one's
    folder stays: one that finds `dest` taken again between its two renames moves it aside
    and tries again."""
    import errno
    import shutil
    import tempfile

    new, dest = Path(new), Path(dest)
    olds = []
    try:
        for _ in range(100):
            if dest.is_dir() and not dest.is_symlink():
                old = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.old-"))
                try:
                    os.replace(dest, old / dest.name)
                except FileNotFoundError:  # another process moved it first
                    pass
                olds.append(old)
            try:
                os.replace(new, dest)
                return
            except OSError as e:
                if e.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                    raise
        raise OSError(errno.EBUSY, f"{dest} kept being replaced by another process")
    finally:
        for old in olds:
            shutil.rmtree(old, ignore_errors=True)


def safetensors_problem(path: Path) -> str | None:
    """What is wrong with a safetensors file's structure (truncated, empty, not one), or None:
    its header parses and its tensors end where the file ends."""
    import struct

    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            return f"{size} bytes, too short for a safetensors file"
        (n,) = struct.unpack("<Q", head)
        if n > size - 8:
            return f"truncated ({size} bytes; its header alone says {n + 8})"
        try:
            header = json.loads(f.read(n))
            end = max([0] + [int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"])
        except (ValueError, TypeError, KeyError, IndexError, AttributeError):
            return "its header is not a safetensors header"
    if 8 + n + end != size:
        return f"{'truncated' if 8 + n + end > size else 'longer than its tensors'} ({size} bytes, its header " \
               f"says {8 + n + end})"
    return None


def sha256_file(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()

