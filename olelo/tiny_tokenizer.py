"""The tiny test model's tokenizer and its input text (scripts/build_tiny_model.py builds
the model): a byte-level BPE trained on the given CSV/JSONL text, with Gemma's special tokens.

    texts = tiny_tokenizer.read_texts([Path("pairs.csv")])   # both CSV columns, every chat message
    tok = tiny_tokenizer.train_tokenizer(texts, 300)          # a tokenizers.Tokenizer
"""

from __future__ import annotations

import csv
from pathlib import Path

import olelo

CSV_COLUMNS = ("L1 Hawaiian_Text", "Reference_Translation")
# Gemma's special tokens, in Gemma's order for the first four.
SPECIAL_TOKENS = ["<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>"]


def read_texts(paths) -> list[str]:
    """All the text in the input files: both CSV columns, every chat message."""
    texts = []
    for path in map(Path, paths):
        if not path.is_file():
            raise olelo.UserError(f"{path}: no such file")
        if path.stat().st_size == 0:
            raise olelo.UserError(f"{path}: empty file")
        if path.suffix == ".csv":
            found = _csv_texts(path)
        elif path.suffix == ".jsonl":
            found = _jsonl_texts(path)
        else:
            raise olelo.UserError(f"{path}: expected a .csv or .jsonl file")
        if not any(t.strip() for t in found):
            raise olelo.UserError(f"{path}: no text in it")
        texts += found
    return texts


def _csv_texts(path: Path) -> list[str]:
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        missing = [c for c in CSV_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise olelo.UserError(f"{path}: missing CSV column(s) {', '.join(map(repr, missing))}")
        return [row[c] or "" for row in reader for c in CSV_COLUMNS]


def _jsonl_texts(path: Path) -> list[str]:
    texts = []
    for lineno, record in enumerate(olelo.read_jsonl(path), 1):
        messages = record.get("messages") if isinstance(record, dict) else None
        if not isinstance(messages, list):
            raise olelo.UserError(f"{path}: record {lineno} has no 'messages' list")
        texts += [str(m.get("content", "")) for m in messages if isinstance(m, dict)]
    return texts


def train_tokenizer(texts: list[str], vocab_size: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    # Every "\n" is its own token, so the template's turn boundaries never merge
    # with the text after them: the tokens of a prompt with the generation
    # prompt are then an exact prefix of the tokens of the whole conversation
    # (what `mlx_lm.lora --mask-prompt` relies on).
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split("\n", "isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # any byte, no <unk>
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    # Like Gemma, plain encode() starts with <bos>.
    tok.post_processor = processors.TemplateProcessing(
        single="<bos> $A", pair="<bos> $A <bos>:1 $B:1",
        special_tokens=[("<bos>", tok.token_to_id("<bos>"))],
    )
    return tok


def token_ids(tok) -> dict:
    return {t: tok.token_to_id(t) for t in SPECIAL_TOKENS}
