"""New text to translate with a run (scripts/translate_text.py): what a user gives
(a text, a file of lines, a JSONL file, standard input), which model and prompt a run
stands for, and the output in the input's shape. Decoding itself is olelo.generate's
`translate`, the function `make eval` uses, so both decode alike."""

from __future__ import annotations

import json
import math
from pathlib import Path

from olelo.cli import UserError
from olelo.files import decode_utf8
from olelo.prompt import DIRECTIONS, is_instruction_tuned

# Fields a JSONL line may carry its text in (the first one present is used).
TEXT_FIELDS = ("text", "source")


def parse_input(name: str, data: bytes, jsonl: bool | None = None) -> tuple[str, list[dict]]:
    """('lines' or 'jsonl', items) from a file's bytes. Each item: {"text", "line"} (plain
    lines: a blank line is kept, untranslated, as a blank line out) or the JSONL object with
    "text" set. `jsonl`: None takes a name ending in .jsonl as JSONL (standard input: when
    every non-blank line is a JSON object). An empty file, a binary file and a JSONL line
    without text are refused."""
    if b"\x00" in data[:8192] and not _utf16(data):
        raise UserError(f"{name}: a binary file (it holds NUL bytes); give a UTF-8 text file, one sentence a line, "
                        f"or a .jsonl file with a \"text\" field per line")
    text = decode_utf8(name, data)
    lines = text.splitlines()
    if not any(line.strip() for line in lines):
        raise UserError(f"{name}: the file is empty (no text to translate); give one sentence a line")
    if jsonl is None:
        jsonl = name.endswith(".jsonl") or (name == "standard input" and all(
            _is_object(line) for line in lines if line.strip()))
    if jsonl:
        return "jsonl", _jsonl_items(name, lines)
    return "lines", [{"text": line.strip(), "line": n} for n, line in enumerate(lines, 1)]


def _is_object(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except json.JSONDecodeError:
        return False


def _utf16(data: bytes) -> bool:
    from olelo.files import utf16_kind

    return utf16_kind(data) is not None


def _jsonl_items(name: str, lines: list[str]) -> list[dict]:
    items = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise UserError(f"{name}:{n}: not valid JSON ({e.msg}); a .jsonl file has one JSON object a line") from None
        if not isinstance(obj, dict):
            raise UserError(f"{name}:{n}: a JSON {type(obj).__name__}, not an object with a \"text\" field")
        field = next((f for f in TEXT_FIELDS if isinstance(obj.get(f), str) and obj[f].strip()), None)
        if field is None:
            raise UserError(f"{name}:{n}: no text: give the sentence as \"text\" (or \"source\"), a non-empty string")
        if "direction" in obj and obj["direction"] not in DIRECTIONS:
            raise UserError(f"{name}:{n}: direction {obj['direction']!r}: use one of {', '.join(DIRECTIONS)}")
        items.append({"text": obj[field].strip(), "line": n, "direction": obj.get("direction"), "obj": obj})
    return items


def default_output(input_path: str, label: str, direction: str) -> Path:
    """Beside the input: notes.txt -> notes.<label>.<direction>.txt (label: the run and
    checkpoint, or base), so two runs or directions never overwrite each other."""
    p = Path(input_path)
    suffix = p.suffix if p.suffix in (".jsonl", ".txt") else ".txt"
    return p.with_name(f"{p.stem}.{label}.{direction}{suffix}")


def run_directions(manifest: dict) -> list[str]:
    """The directions a run was trained on: its data folder's manifest, else its test split."""
    data_dir = Path(manifest.get("data_dir") or (manifest.get("data") or {}).get("path", ""))
    record = data_dir / "manifest.json"
    if record.is_file():
        try:
            found = json.loads(record.read_text(encoding="utf-8")).get("directions")
        except (json.JSONDecodeError, UnicodeDecodeError):
            found = None
        if isinstance(found, list) and found:
            return [d for d in DIRECTIONS if d in found]
    for split in ("test", "train"):
        f = data_dir / f"{split}.jsonl"
        if f.is_file():
            seen = set()
            for line in f.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    seen.add(json.loads(line).get("direction", "haw-en"))
            return [d for d in DIRECTIONS if d in seen]
    return []


def choose_direction(given: str | None, trained: list[str], who: str) -> str:
    """DIRECTION when given (one the run was trained on), else the run's only direction."""
    if given is not None:
        if given not in DIRECTIONS:
            raise UserError(f"DIRECTION={given!r}: use one of {', '.join(DIRECTIONS)} (a translation goes one way)")
        if trained and given not in trained:
            raise UserError(f"{who} was trained on {', '.join(trained)} only, not {given}; "
                            f"use DIRECTION={trained[0]} or a run trained on {given}")
        return given
    if len(trained) == 1:
        return trained[0]
    if not trained:
        return "haw-en"
    raise UserError(f"{who} was trained on both directions; say which one: DIRECTION=haw-en or DIRECTION=en-haw")


def choose_prompt(prompt: str, model: str, adapter) -> str:
    """'chat' (the training prompt) or 'completion'. auto: a run's checkpoint gets the prompt
    it was trained with; a base model that the lab's rule takes as pretrained (not
    instruction-tuned) gets the plain completion prompt, as in make eval's base rows."""
    if prompt != "auto":
        return prompt
    if adapter is None and not is_instruction_tuned(model):
        return "completion"
    return "chat"


def default_cap(tokenizer, texts: list[str]) -> int:
    """Tokens generated at most per sentence when MAX_TOKENS is not given: twice the
    longest source in tokens + 16 (there is no reference to measure, as make eval does)."""
    return math.ceil(2 * max(len(tokenizer.encode(t)) for t in texts)) + 16


def one_line(text: str) -> str:
    """A translation as one output line: its own line breaks become spaces."""
    return " ".join(text.split())


def render(kind: str, items: list[dict], translations: dict, directions: dict) -> str:
    """The output text: one line per input line (blank stays blank), or one JSONL object per
    input object with "translation" and "direction" added."""
    out = []
    for i, item in enumerate(items):
        if kind == "jsonl":
            obj = dict(item["obj"])
            obj.update({"direction": directions[i], "translation": translations[i]})
            out.append(json.dumps(obj, ensure_ascii=False))
        else:
            out.append(one_line(translations[i]) if i in translations else "")
    return "".join(line + "\n" for line in out)
