"""Helpers shared by the olelo-mlx scripts: the translation prompt, atomic writes,
JSONL reading with clear errors, checksums, and loading a model with a useful
message when it cannot be had.

Import it from a script in scripts/ with `import olelo` (scripts/ is on sys.path
when a script there runs).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path

# The one definition of the prompt. Training data (convert_fornander.py) and
# evaluation both build their messages here, so train and eval never differ.
LANGUAGES = {"haw": "Hawaiian", "en": "English"}
DIRECTIONS = ("haw-en", "en-haw")


# Gemma 3's chat template (the instruction-tuned models' format): a system message is
# folded into the first user turn, the assistant is called "model", contents are
# trimmed; a content given as a list of parts contributes its text parts.
GEMMA3_CHAT_TEMPLATE = """{{ bos_token }}
{%- if messages[0]['role'] == 'system' -%}
{%- set sys = messages[0]['content'] -%}
{%- if sys is not string -%}{%- set sys = sys[0]['text'] -%}{%- endif -%}
{%- set first_user_prefix = sys + '\\n\\n' -%}
{%- set loop_messages = messages[1:] -%}
{%- else -%}
{%- set first_user_prefix = '' -%}
{%- set loop_messages = messages -%}
{%- endif -%}
{%- for message in loop_messages -%}
{%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}
{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}
{%- endif -%}
{%- set role = 'model' if message['role'] == 'assistant' else message['role'] -%}
{{ '<start_of_turn>' + role + '\\n' + (first_user_prefix if loop.first else '') }}
{%- if message['content'] is string -%}
{{ message['content'] | trim }}
{%- else -%}
{%- for part in message['content'] -%}
{%- if part['type'] == 'image' -%}{{ '<start_of_image>' }}
{%- elif part['type'] == 'text' -%}{{ part['text'] | trim }}
{%- endif -%}
{%- endfor -%}
{%- endif -%}
{{ '<end_of_turn>\\n' }}
{%- endfor -%}
{%- if add_generation_prompt -%}
{{ '<start_of_turn>model\\n' }}
{%- endif -%}
"""


def system_prompt(direction: str) -> str:
    src, tgt = _langs(direction)
    return (
        f"You are a careful translator. Translate the {LANGUAGES[src]} text the user "
        f"gives you into {LANGUAGES[tgt]}. Reply with the translation only."
    )


def prompt_messages(source: str, direction: str) -> list[dict]:
    """The messages a model sees before it translates `source`."""
    return [
        {"role": "system", "content": system_prompt(direction)},
        {"role": "user", "content": source},
    ]


def fewshot_messages(source: str, direction: str, examples: list[tuple[str, str]]) -> list[dict]:
    """The training prompt with worked examples as earlier turns: a base model that
    is not instruction-tuned sees the pattern instead of only an instruction."""
    messages = [{"role": "system", "content": system_prompt(direction)}]
    for example_source, example_target in examples:
        messages += [{"role": "user", "content": example_source}, {"role": "assistant", "content": example_target}]
    messages.append({"role": "user", "content": source})
    return messages


def chat_record(source: str, target: str, direction: str, pair_id: str) -> dict:
    """One mlx-lm chat training example: system + user turn + assistant turn."""
    messages = prompt_messages(source, direction)
    messages.append({"role": "assistant", "content": target})
    return {"id": pair_id, "direction": direction, "messages": messages}


def record_source_target(record: dict) -> tuple[str, str]:
    """The (source, reference) of a chat record written by chat_record."""
    by_role = {m["role"]: m["content"] for m in record["messages"]}
    return by_role["user"], by_role["assistant"]


def _langs(direction: str) -> tuple[str, str]:
    if direction not in DIRECTIONS:
        raise UserError(f"unknown direction {direction!r}; use one of {', '.join(DIRECTIONS)}")
    src, tgt = direction.split("-")
    return src, tgt


class UserError(Exception):
    """A problem with the user's input: printed as one line, no traceback."""


# OS errors a user can cause and fix (disk, permissions, a folder where a file goes):
# one line, no traceback. Others are bugs and keep their traceback.
EXPECTED_OS_ERRORS = {
    errno.ENOSPC: "the disk is full; free some space and run the same command again",
    errno.EDQUOT: "the disk quota is exceeded; free some space and run the same command again",
    errno.EROFS: "the file system is read-only; work in a writable folder",
    errno.EACCES: "permission denied; check the folder's permissions or pick another folder",
    errno.EPERM: "operation not permitted; check the folder's permissions or pick another folder",
    errno.EISDIR: "it is a folder; give the path of a file",
    errno.ENOTDIR: "a part of the path is a file, not a folder; fix the path",
    errno.ENOENT: "no such file or folder",
}


def os_error_message(e: OSError) -> str | None:
    why = EXPECTED_OS_ERRORS.get(e.errno)
    if why is None:
        return None
    where = e.filename if e.filename is not None else ""
    where = f"{where}: " if where != "" else ""
    return f"{where}{e.strerror or type(e).__name__}: {why}"


def write_failure(e: BaseException, folder) -> str | None:
    """One line for a failed write (MLX raises RuntimeError "[write] Unable to write ...",
    Python an OSError) when the disk where `folder` lies is full or not writable."""
    if isinstance(e, OSError):
        return os_error_message(e)
    if not (isinstance(e, RuntimeError) and "write" in str(e).lower()):
        return None
    import shutil

    probe = Path(folder)
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if free < 64 << 20:
        return f"{folder}: the disk is full ({free // 1024} KiB free); free some space and run the same command again"
    return f"{folder}: {e}; check that the folder is writable and has space, then run the same command again"


def run_main(main) -> None:
    """Run a script's main(); a UserError (or an OSError a user can fix: full disk,
    read-only folder, permissions) becomes `error: ...` and exit status 2."""
    try:
        sys.exit(main())
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except OSError as e:
        message = os_error_message(e)
        if message is None:
            raise
        print(f"error: {message}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)


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

        if self.path.exists() and not self.path.is_dir():
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
        old = self.path.parent / f".{self.path.name}.old-{os.getpid()}"
        if self.path.exists():
            os.replace(self.path, old)
        os.replace(self.tmp, self.path)
        shutil.rmtree(old, ignore_errors=True)
        return False


def sha256_file(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load_model(model: str, adapter_path: str | None = None):
    """mlx_lm.load, but a model that is neither a local folder nor downloadable
    gives a message that says what to do instead of a traceback."""
    from mlx_lm import load

    check_model_folder(model)
    if adapter_path is not None and not (Path(adapter_path) / "adapters.safetensors").is_file():
        raise UserError(f"{adapter_path}/adapters.safetensors not found: the adapters were deleted or never "
                        f"written; retrain the run (FORCE=1) or pick another checkpoint")
    try:
        return load(model, adapter_path=adapter_path)
    except Exception as e:  # mlx-lm raises several types for "not available"
        if Path(model).exists():
            first = str(e).splitlines()[0] if str(e) else ""
            raise UserError(f"cannot load the model folder {model} ({type(e).__name__}: {first}); "
                            f"rebuild or re-download it") from None
        raise UserError(model_unavailable_message(model, e)) from None


def check_model_folder(model: str) -> None:
    """A local model path must be a folder with config.json (what mlx-lm reads first)."""
    p = Path(model)
    if p.exists() and not p.is_dir():
        raise UserError(f"MODEL={model}: is a file; give a model folder or a Hugging Face id")
    if p.is_dir() and not (p / "config.json").is_file():
        raise UserError(f"MODEL={model}: the folder has no config.json, so it is not an mlx-lm model "
                        f"(a build or download that did not finish?); rebuild it (make tiny-model) or "
                        f"download it again")


def model_unavailable_message(model: str, err: Exception | None = None) -> str:
    why = f" ({type(err).__name__}: {err})" if err else ""
    return (
        f"cannot load model {model!r}: it is not a local folder and could not be "
        f"downloaded from the Hugging Face Hub{why}. Offline, pass a local model: "
        f"MODEL=models/tiny-gemma3 (built by `make tiny-model`) or the path of a "
        f"model you downloaded earlier (`hf download {model}` on a "
        f"machine with internet)."
    )


def run_stamp(dataset: str, args: dict) -> str:
    """The one place a run's name is built, from what defines the trained weights.

    `args` is the merged mlx_lm.lora configuration (flags > YAML > defaults) plus
    the lab's own `patience`, `select` and `val_gen`. Settings at mlx-lm's defaults are left out, except
    the ones every reader wants to see (iterations, batch, learning rate, rank, seed).
    """
    import re

    def num(x) -> str:  # 1e-05 -> 1e-5, 0.1 -> 0.1
        return re.sub(r"e([+-])0*(\d)", lambda m: "e" + ("-" if m[1] == "-" else "") + m[2], f"{x:g}")

    lora = args.get("lora_parameters") or {}
    parts = [
        dataset,
        Path(str(args["model"]).rstrip("/")).name,
        f"it{args['iters']}",
        f"bs{args['batch_size']}",
        f"lr{num(args['learning_rate'])}",
    ]
    if args.get("fine_tune_type", "lora") != "lora":
        parts.append(args["fine_tune_type"])
    if args.get("fine_tune_type", "lora") != "full":
        parts.append(f"r{lora.get('rank', 8)}")
        if lora.get("scale", 20.0) != 20.0:
            parts.append(f"sc{num(lora['scale'])}")
        if lora.get("dropout", 0.0):
            parts.append(f"do{num(lora['dropout'])}")
    if args.get("num_layers", 16) != 16:
        parts.append(f"L{args['num_layers']}")
    if args.get("grad_checkpoint"):
        parts.append("gc")
    if args.get("grad_accumulation_steps", 1) != 1:
        parts.append(f"ga{args['grad_accumulation_steps']}")
    if args.get("max_seq_length", 2048) != 2048:
        parts.append(f"ms{args['max_seq_length']}")
    if args.get("mask_prompt"):
        parts.append("mp")
    if args.get("optimizer", "adam") != "adam":
        parts.append(args["optimizer"])
    schedule = args.get("lr_schedule")
    if schedule:
        parts.append(f"{schedule['name'].replace('_decay', '')}w{schedule.get('warmup', 0)}")
    if args.get("patience"):  # early stopping by validation chrF++ ends elsewhere than by val loss
        chrf = f"chrf{args['val_gen']}" if args.get("select") == "val_chrf" else ""
        parts.append(f"p{args['patience']}{chrf}")
    if args.get("world_size", 1) > 1:  # ranks average per-rank means: not the same weights as 1 process
        parts.append(f"np{args['world_size']}")
    parts.append(f"s{args['seed']}")
    return re.sub(r"[^A-Za-z0-9._-]+", "_", "-".join(parts))


def resolve_run(run: str, runs_dir="runs") -> Path:
    """A run folder from a stamp, a path, or 'latest'."""
    given = Path(run)
    candidates = [given]
    # A bare name is a stamp under runs_dir; a path (runs/x, ./x, /abs) is taken as it is.
    if len(given.parts) == 1 and not run.startswith("."):
        candidates.append(Path(runs_dir) / run)
    for p in candidates:
        if (p / "manifest.json").is_file():
            return p.resolve() if p.is_symlink() else p
    where = " or ".join(f"{p}/manifest.json" for p in candidates[::-1])
    raise UserError(f"no run {run!r}: found no {where} (see `make runs`)")


def run_manifest(run_dir) -> dict:
    return read_json(Path(run_dir) / "manifest.json", "run record")


def checkpoint_adapter(adapter_dir, ckpt: str) -> Path | None:
    """The adapter folder mlx-lm loads for a checkpoint: 'base' (None: no adapter),
    'final', 'best', or an iteration number. A numbered checkpoint gets a folder
    ckpt-NNNNNNN/ with hard links, so no one copies weights by hand."""
    adapter_dir = Path(adapter_dir)
    if ckpt == "base":
        return None
    if ckpt == "final":
        folder = adapter_dir
    elif ckpt == "best":
        folder = adapter_dir / "best"
    elif ckpt.removeprefix("ckpt-").isdigit():
        n = int(ckpt.removeprefix("ckpt-"))
        weights = adapter_dir / f"{n:07d}_adapters.safetensors"
        if not weights.is_file():
            raise UserError(f"{weights}: no checkpoint at iteration {n}")
        folder = adapter_dir / f"ckpt-{n:07d}"
        if not (folder / "adapters.safetensors").is_file():
            tmp = adapter_dir / f".ckpt-{n:07d}.tmp"
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir()
            for src, name in ((weights, "adapters.safetensors"), (adapter_dir / "adapter_config.json", "adapter_config.json")):
                try:
                    os.link(src, tmp / name)
                except OSError:
                    shutil.copy(src, tmp / name)
            shutil.rmtree(folder, ignore_errors=True)
            os.replace(tmp, folder)
    else:
        raise UserError(f"unknown checkpoint {ckpt!r}: use base, final, best or an iteration number")
    if not (folder / "adapters.safetensors").is_file():
        raise UserError(f"{folder}/adapters.safetensors not found (did the run finish? see `make runs`)")
    return folder
