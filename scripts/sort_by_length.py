"""Write a training JSONL sorted by token length, so mlx-lm's batches hold
examples of similar length and carry little padding.

    .venv/bin/python scripts/sort_by_length.py data/finetuning/large/train.jsonl \\
        -o data/finetuning/large/train.jsonl --model models/tiny-gemma3

Why: mlx-lm 0.32.2 means to sort examples by length before cutting batches, but
for JSONL data its sort key is len(record dict), a constant, so batches are
consecutive chunks of the file in file order. Written in length order, the file
gives length-bucketed batches; mlx-lm still shuffles the order of the batches.

Lengths are counted in tokens with the model's tokenizer and chat template,
exactly as mlx-lm tokenizes training rows. The sort is stable (equal lengths
keep their order) and the output is a permutation of the input; -o may be the
input file (written atomically).
"""

from __future__ import annotations

import argparse
import statistics

from olelo import memory
import olelo


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", help="JSONL in mlx-lm's chat, completions or text format")
    p.add_argument("-o", "--output", required=True, help="sorted JSONL to write (may be the input)")
    p.add_argument("--model", required=True, help="model folder or Hub id whose tokenizer counts the tokens")
    p.add_argument("--max-seq", type=int, default=2048,
                   help="for the padding report only: mlx_lm.lora --max-seq-length (default: %(default)s)")
    return p.parse_args(argv)


def sort_rows(rows: list[dict], lengths: list[int]) -> tuple[list[dict], list[int]]:
    order = sorted(range(len(rows)), key=lambda i: lengths[i])  # sorted() is stable
    return [rows[i] for i in order], [lengths[i] for i in order]


def padded_fraction(lengths: list[int], batch: int, max_seq: int) -> float:
    real, slots = memory.batch_padding(lengths, batch, max_seq)
    return 1 - real / slots if slots else 0.0


def main(argv=None) -> int:
    a = parse_args(argv)
    rows, lengths = memory.token_lengths(a.model, a.input)
    sorted_rows, sorted_lengths = sort_rows(rows, lengths)
    olelo.atomic_write_jsonl(a.output, sorted_rows)
    padding = ", ".join(f"batch {b}: {padded_fraction(lengths, b, a.max_seq):.0%} -> "
                        f"{padded_fraction(sorted_lengths, b, a.max_seq):.0%}" for b in (4, 8))
    print(f"{a.output}: {len(rows)} rows by token length ({min(lengths)}..{max(lengths)}, median "
          f"{statistics.median(lengths):g}); padded fraction {padding}")
    return 0


if __name__ == "__main__":
    olelo.run_main(main)
