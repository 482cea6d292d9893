"""Checks that refuse bad input before anything is written: training knobs, text that
is well-formed but wrong (mojibake, lost diacritics, a swapped language column), and
output paths that are inputs. (Names that reach the shell are checked by the Makefile.)

A library (no command line). train.py calls training_knobs() and max_seq_vs_data(); convert_fornander.py
and split.py call text_problems() and language_problems(); every script that writes calls
refuse_overwriting_inputs().
"""

from __future__ import annotations

import math
import re
import unicodedata
from pathlib import Path

import olelo
from olelo import UserError

# ---------------------------------------------------------------- training knobs


def _bad(knob: str, value, allowed: str) -> UserError:
    return UserError(f"{knob}={value}: must be {allowed}")


def training_knobs(args: dict, lab, world_size: int = 1) -> None:
    """Every knob of a training run against its allowed range; the first bad one is
    refused with one line (make variable, value, range). `args` is the merged
    mlx_lm.lora configuration, `lab` train.py's own options."""
    def positive_int(knob, value, extra=""):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise _bad(knob, value, f"a whole number >= 1{extra}")

    positive_int("ITERS", args["iters"])
    positive_int("BATCH", args["batch_size"])
    if args["batch_size"] % world_size:
        raise UserError(f"BATCH={args['batch_size']}: does not divide by {world_size} ranks; use a batch "
                        f"size that is a multiple of the number of processes (NPROC)")
    lr = args["learning_rate"]
    if not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr <= 0:
        raise _bad("LR", lr, "a number > 0 (e.g. 1e-5)")
    positive_int("STEPS_PER_EVAL", args["steps_per_eval"])
    positive_int("SAVE_EVERY", args["save_every"])
    positive_int("steps_per_report (--steps-per-report)", args["steps_per_report"])
    positive_int("GRAD_ACCUM", args.get("grad_accumulation_steps", 1))
    positive_int("MAX_SEQ", args["max_seq_length"])
    if args["max_seq_length"] < 2:
        raise _bad("MAX_SEQ", args["max_seq_length"], "at least 2 tokens")
    if args["val_batches"] != -1:
        positive_int("VAL_BATCHES", args["val_batches"], " or -1 (the whole validation set)")
    if args["num_layers"] != -1:
        positive_int("LAYERS", args["num_layers"], " or -1 (every layer)")
    if not isinstance(args["seed"], int) or args["seed"] < 0:
        raise _bad("SEED", args["seed"], "a whole number >= 0")
    lora = {**(args.get("lora_parameters") or {})}
    for key in ("rank", "scale", "dropout"):
        if getattr(lab, key, None) is not None:
            lora[key] = getattr(lab, key)
    if args.get("fine_tune_type", "lora") != "full":
        positive_int("RANK", lora.get("rank", 8))
        scale = lora.get("scale", 20.0)
        if not isinstance(scale, (int, float)) or not math.isfinite(scale) or scale <= 0:
            raise _bad("SCALE", scale, "a number > 0")
        dropout = lora.get("dropout", 0.0)
        if not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
            raise _bad("DROPOUT", dropout, "a number in [0, 1)")
    if getattr(lab, "val_gen", 0) < 0:
        raise _bad("VAL_GEN", lab.val_gen, "a whole number >= 0 (0: no generation at validation)")
    if getattr(lab, "val_gen_batch", 1) < 1:
        raise _bad("val_gen_batch (--val-gen-batch)", lab.val_gen_batch, "a whole number >= 1")
    if lab.patience < 0:
        raise _bad("PATIENCE", lab.patience, "a whole number >= 0 (0: never stop early)")
    if lab.grad_clip is not None and not (math.isfinite(lab.grad_clip) and lab.grad_clip > 0):
        raise _bad("GRAD_CLIP", f"{lab.grad_clip:g}", "a number > 0 (the largest gradient norm an update takes, e.g. 1), "
                                           "or unset for no clipping")
    if lab.warmup is not None:
        if lab.lr_schedule != "cosine":
            raise UserError(f"WARMUP={lab.warmup}: warmup only applies to LR_SCHEDULE=cosine "
                            f"(LR_SCHEDULE={lab.lr_schedule}); set LR_SCHEDULE=cosine or drop WARMUP")
        if not 0 <= lab.warmup < args["iters"]:
            raise _bad("WARMUP", lab.warmup, f"a whole number in [0, ITERS={args['iters']})")


def layers_vs_model(num_layers: int, model) -> None:
    have = len(getattr(model, "layers", []) or [])
    if have and num_layers > have:
        raise _bad("LAYERS", num_layers, f"at most the model's {have} layers, or -1 (every layer)")


def prompt_lengths(tokenizer, records: list[dict]) -> list[tuple[int, int]]:
    """(prompt tokens, whole example tokens) per chat record, as mlx-lm tokenizes them."""
    out = []
    for r in records:
        messages = r["messages"]
        prompt = tokenizer.apply_chat_template(messages[:-1], add_generation_prompt=True, return_dict=False)
        whole = tokenizer.apply_chat_template(messages, return_dict=False)
        out.append((len(prompt), len(whole)))
    return out


def max_seq_vs_data(max_seq: int, tokenizer, train_file: Path) -> str | None:
    """Refuse a MAX_SEQ that cuts every training example down to (part of) its prompt:
    such a run learns nothing of the translations, yet its val loss looks excellent.
    Returns a warning when only some examples lose part of their answer."""
    records = [r for r in olelo.read_jsonl(train_file) if isinstance(r, dict) and "messages" in r]
    if not records:
        return None
    lengths = prompt_lengths(tokenizer, records)
    shortest_prompt = min(p for p, _ in lengths)
    longest = max(w for _, w in lengths)
    if max_seq <= shortest_prompt:
        raise UserError(
            f"MAX_SEQ={max_seq}: must be above the shortest prompt of {train_file} ({shortest_prompt} tokens "
            f"with the system prompt), or every example is cut before its translation; use MAX_SEQ >= "
            f"{longest} (its longest example) or leave it unset")
    cut = sum(1 for p, w in lengths if w > max_seq)
    if cut:
        return (f"MAX_SEQ={max_seq} truncates {cut} of {len(lengths)} training examples "
                f"(the longest is {longest} tokens)")
    return None


# ---------------------------------------------------------------- text sanity

# A UTF-8 lead byte read as cp1252/Latin-1 (Â..ô) followed by a continuation byte read the
# same way: how "ʻ" (CA BB) becomes "Ê»" and "ā" (C4 81) becomes "Ä" + U+0081. This only
# finds candidates: "Pelé’s" has the same shape (é = E9, ’ = 92 in cp1252), so a candidate
# counts as mojibake only when its characters, turned back into the bytes they stood for,
# are one whole UTF-8 sequence decoding to a character this lab's text uses (see
# _mojibake_at). "é’s" is not (E9 starts a 3-byte sequence; "s" is no continuation), nor
# "CAFÉ’S" (C9 92 is U+0252, an IPA letter), nor "NOËL’S" (CB 92: U+02D2, a phonetic mark).
_CONT = "\u0080-\u00bf\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192\u02c6\u02dc\u2013\u2014" \
        "\u2018-\u201e\u2020-\u2022\u2026\u2030\u2039\u203a\u20ac\u2122"
MOJIBAKE = re.compile(f"[\u00c2-\u00f4][{_CONT}]")
_CONT_CHARS = re.compile(f"[{_CONT}]")
# What a UTF-8 sequence misread as cp1252 stood for, when the text was Hawaiian or English:
# Latin letters (kahakō vowels, accented names), the ʻokina and its look-alikes, combining
# marks (a decomposed kahakō: "Ì„"), typographic punctuation, currency and letterlike signs
# (€, ™), the byte-order mark ("ï»¿"). Phonetic, Greek, Cyrillic, Armenian, Hebrew, CJK...
# are not: a real accented letter before a quote that happens to form such a sequence is text.
_MEANT = re.compile("[\u00a0-\u017f\u02b9-\u02bf\u02c6-\u02c8\u02d8-\u02dd\u0300-\u036f"
                    "\u1e00-\u1eff\u2000-\u206f\u20a0-\u20cf\u2100-\u214f\ufeff]")


def _byte(c: str) -> int | None:
    """The byte a cp1252 (or Latin-1, for 0x80-0x9F) reader turned into c."""
    if ord(c) < 0x100:
        return ord(c)
    try:
        return c.encode("cp1252")[0]
    except UnicodeEncodeError:
        return None


def _mojibake_at(text: str, at: int) -> str | None:
    """The misread sequence starting at text[at] (a candidate lead), or None when the
    characters there are real text."""
    lead = ord(text[at])
    size = 2 if lead < 0xE0 else 3 if lead < 0xF0 else 4
    span = text[at:at + size]
    if len(span) < size or not all(_CONT_CHARS.fullmatch(c) for c in span[1:]):
        return None
    raw = [_byte(c) for c in span]
    if None in raw:
        return None
    try:
        meant = bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        return None
    return span if _MEANT.fullmatch(meant) else None


def find_mojibake(text: str) -> str | None:
    """The first stretch of text that is UTF-8 read as cp1252/Latin-1, or None."""
    for m in MOJIBAKE.finditer(text):
        found = _mojibake_at(text, m.start())
        if found:
            return found
    return None


# "?" where an ʻokina or a kahakō vowel was lost by a lossy re-encoding: inside a word
# (ali?i) or at the start of a word before a vowel (?o ia).
LOST_DIACRITIC = re.compile(r"(?<=[^\W\d_])\?(?=[^\W\d_])|(?:(?<=\s)|^)\?(?=[aeiouAEIOU])")
HAWAIIAN_LETTERS = set("aeiouhklmnpwāēīōū") | {"\u02bb"}
NOT_HAWAIIAN_LIMIT = 0.2  # Fornander's Hawaiian column: at most 0.078 per row; its English: median 0.33
MIN_LETTERS = 12


def non_hawaiian_share(text: str) -> tuple[float, int]:
    """Share of letters outside the Hawaiian alphabet (ʻokina and kahakō vowels included), and
    the number of letters; 'w' and the vowels are common to both languages, so English shows
    about a third of its letters outside."""
    letters = [c for c in unicodedata.normalize("NFC", text).lower() if c.isalpha() or c == "\u02bb"]
    if not letters:
        return 0.0, 0
    return sum(c not in HAWAIIAN_LETTERS for c in letters) / len(letters), len(letters)


def text_problems(text: str, hawaiian: bool) -> list[str]:
    """Encoding damage in one cell: mojibake, U+FFFD, '?' for a lost ʻokina/kahakō (Hawaiian)."""
    found = []
    bad = find_mojibake(text)
    if bad:
        found.append(f"mojibake {bad!r} (UTF-8 read as cp1252/Latin-1)")
    if "\ufffd" in text:
        found.append("U+FFFD replacement character (bytes lost in decoding)")
    if hawaiian:
        m = LOST_DIACRITIC.search(text)
        if m:
            at = max(0, m.start() - 8)
            found.append(f"'?' in place of an ʻokina or kahakō ({text[at:m.end() + 8]!r})")
    return found


def looks_not_hawaiian(text: str) -> bool:
    share, letters = non_hawaiian_share(text)
    return letters >= MIN_LETTERS and share > NOT_HAWAIIAN_LIMIT


def check_pairs(pairs: list[tuple[str, str, str]], source: str) -> tuple[list[dict], list[dict]]:
    """pairs: (where, haw, en). Returns (damaged, not_hawaiian): encoding damage is refused by
    the caller, rows whose Hawaiian cell reads as another language are flagged. A file whose
    Hawaiian column is mostly not Hawaiian (columns swapped) is refused here."""
    damaged, odd = [], []
    for where, haw, en in pairs:
        problems = [f"Hawaiian: {p}" for p in text_problems(haw, True)]
        problems += [f"English: {p}" for p in text_problems(en, False)]
        if problems:
            damaged.append({"where": where, "problems": problems})
        if looks_not_hawaiian(haw):
            share, _ = non_hawaiian_share(haw)
            odd.append({"where": where, "non_hawaiian_share": round(share, 3)})
    measured = [h for _, h, _ in pairs if non_hawaiian_share(h)[1] >= MIN_LETTERS]
    if measured and len(odd) > len(measured) / 2:
        en_share = sorted(non_hawaiian_share(e)[0] for _, _, e in pairs)[len(pairs) // 2]
        raise UserError(
            f"{source}: the Hawaiian column does not read as Hawaiian: {len(odd)} of {len(measured)} rows have more "
            f"than {NOT_HAWAIIAN_LIMIT:.0%} letters outside the Hawaiian alphabet (the English column's median: "
            f"{en_share:.0%}); are the columns swapped? Check the header and the data")
    return damaged, odd


def refuse_damaged(damaged: list[dict], source: str) -> None:
    if not damaged:
        return
    first = "; ".join(f"{d['where']}: {d['problems'][0]}" for d in damaged[:3])
    more = f" (and {len(damaged) - 3} more)" if len(damaged) > 3 else ""
    raise UserError(f"{source}: {len(damaged)} row(s) with damaged text: {first}{more}; fix the file's "
                    f"encoding at its source (a UTF-8 file re-saved as cp1252/ASCII?) and convert again")


# ---------------------------------------------------------------- paths and names


def refuse_overwriting_inputs(inputs, outputs) -> None:
    """An output that is one of the inputs (the same file by any path) is refused."""
    def same(a: Path, b: Path) -> bool:
        try:
            return a.resolve() == b.resolve() or (a.exists() and b.exists() and a.samefile(b))
        except OSError:
            return False

    for out in outputs:
        if out is None:
            continue
        for inp in inputs:
            if inp is not None and same(Path(out), Path(inp)):
                raise UserError(f"output {out} is the input {inp}; write the output somewhere else")
