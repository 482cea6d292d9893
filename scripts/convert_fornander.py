"""Convert a Hawaiian-English pairs CSV (the Fornander/Koa layout) into mlx-lm chat JSONL.

    python scripts/convert_fornander.py IN.csv -o OUT.jsonl [--direction haw-en|en-haw|both]
        [--report REPORT.json] [--drop-misaligned] [--min-ratio 0.4] [--max-ratio 3.0]
        [--modern-orthography]

Input: a CSV with the columns `L1 Hawaiian_Text` and `Reference_Translation` (others are
ignored), UTF-8 with or without a BOM, LF or CRLF line ends, newlines allowed inside quoted cells.
Bad input stops with one line naming the file (and line) and nothing is written.

Cleanup of every cell: Unicode NFC (so a vowel + combining macron becomes the precomposed
kahako vowel), any run of whitespace (newlines and tabs included) becomes one space, ends
stripped. Apostrophes are left alone: in this old orthography ’ marks an elided vowel
(he ’lii), it is not the ʻokina.

--modern-orthography (Hawaiian cells only; English apostrophes are real apostrophes):
' ` ‘ ’ ʼ (U+0027 U+0060 U+2018 U+2019 U+02BC) directly followed by a vowel (a e i o u, with or
without kahako, either case) become the ʻokina U+02BB, because the ʻokina is a consonant that
always precedes a vowel. Before anything else (he ’lii, a closing quote) they stay. Kahako
combining forms become precomposed by the NFC above, with or without this flag.

Text that is well-formed but wrong is caught before anything is written (olelo/checks.py):
mojibake (UTF-8 read as cp1252, e.g. `Ê»` for ʻ), U+FFFD, and `?` where an ʻokina or a kahakō
was lost refuse the file with their line numbers (fix the encoding at the source); a Hawaiian
column that is mostly not Hawaiian (share of letters outside a e i o u h k l m n p w ʻ and the
kahakō vowels) is refused as swapped; single Hawaiian cells that read as another language are
flagged (`not_hawaiian` in the report, line numbers on the console) and kept. An output or
report path that is the input is refused.

Rows are dropped, each with a reason, the first occurrence kept:
  empty           the Hawaiian or the English cell is empty after cleanup
  duplicate       same cleaned Hawaiian and English as an earlier row
  near_duplicate  same match key (below) for both Hawaiian and English as an earlier row
  misaligned      only with --drop-misaligned: length ratio outside [--min-ratio, --max-ratio]
Length ratio = characters of the cleaned English / characters of the cleaned Hawaiian.
Characters, not words: on the Fornander file this flags exactly the rows that the data README
names (ratio > 3: 1072, 1108, 1384; < 0.4: 396); a word ratio flags a different set.
Rows outside the range are always listed in the report as flagged.

Match key: NFKD, case-folded, only letters and digits kept (so punctuation, spaces, kahako and
ʻokina are ignored). Pair id: "p" + 12 hex digits of sha256(key(haw) + TAB + key(en)): the same
pair has the same id in every file, whatever its quotes, spacing or orthography.

One repair: a row of 3 fields whose middle field holds one straight double quote is two rows
whose line break was lost (`…wept.""Maanei…` reads as an escaped quote and glues one row's
English to the next row's Hawaiian). It is split back into two pairs and listed under
`repaired`. Fornander line 21 is such a row.

Output records: {"id": "<pair_id>-<direction>", "pair_id", "direction", "messages"}; with
--direction both each pair gives two records that share pair_id.

Report (JSON): input path and sha256, options, counts {rows, pairs, kept, records,
dropped_by_reason, flagged_misaligned, repaired, blank_lines}, and the dropped, flagged and
repaired rows. Rows are numbered twice: `line` is the 1-based file line where the row starts
(what an editor and the error messages show); `index` is the 0-based position among the data
rows (pandas' DataFrame index), the numbering the data README uses.
"""

from __future__ import annotations

import argparse
import csv
import io
import re
import sys
import unicodedata
from pathlib import Path

from olelo import checks
import olelo
from olelo.defaults import DEFAULTS
from olelo.data import chat_records, excerpt, modern_orthography, pair_id
from olelo import UserError

HAW_COL = "L1 Hawaiian_Text"
EN_COL = "Reference_Translation"
REASONS = ("empty", "duplicate", "near_duplicate", "misaligned")
BOM = b"\xef\xbb\xbf"

_WHITESPACE = re.compile(r"\s+")


def clean(text: str) -> str:
    return _WHITESPACE.sub(" ", unicodedata.normalize("NFC", text)).strip()


def _line_at(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def read_text(path: Path) -> str:
    if path.is_dir():
        raise UserError(f"{path}: is a directory; give the path of a CSV file")
    if not path.exists():
        raise UserError(f"{path}: no such file")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise UserError(f"{path}: cannot read ({e.strerror})") from None
    if olelo.utf16_kind(data):
        olelo.decode_utf8(path, data)  # says which UTF-16 and how to convert it
    if b"\0" in data:
        at = data.index(b"\0")
        raise UserError(
            f"{path}:{_line_at(data, at)}: NUL byte at byte offset {at}: "
            f"this looks like a binary file; give a UTF-8 CSV file"
        )
    skip = len(BOM) if data.startswith(BOM) else 0
    try:
        text = data[skip:].decode("utf-8")
    except UnicodeDecodeError as e:
        at = skip + e.start
        raise UserError(
            f"{path}:{_line_at(data, at)}: not UTF-8 (byte 0x{data[at]:02x} at byte "
            f"offset {at}); re-save the file as UTF-8 (e.g. iconv -f cp1252 -t utf-8)"
        ) from None
    if not text.strip():
        raise UserError(f"{path}: empty file; expected a header line `{HAW_COL},{EN_COL}` and rows")
    return text


def read_pairs(path: Path) -> tuple[list[dict], dict]:
    """The raw (haw, en) cells of every data row, with where they came from."""
    reader = csv.reader(io.StringIO(read_text(path), newline=""))
    header = [h.strip() for h in next(reader)]
    missing = [c for c in (HAW_COL, EN_COL) if c not in header]
    if missing:
        raise UserError(
            f"{path}:1: missing column(s) {', '.join(map(repr, missing))}; the header has "
            f"{', '.join(map(repr, header))} but must name {HAW_COL!r} and {EN_COL!r}"
        )
    hi, ei = header.index(HAW_COL), header.index(EN_COL)
    can_unglue = (hi, ei) == (0, 1) and len(header) == 2
    pairs, repaired = [], []
    rows = blank_lines = 0
    while True:
        line = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as e:
            raise UserError(f"{path}:{line}: cannot parse CSV ({e}); check the quoting") from None
        if not row:
            blank_lines += 1
            continue
        index, rows = rows, rows + 1
        if len(row) == len(header):
            pairs.append({"line": line, "index": index, "haw": row[hi], "en": row[ei]})
        elif can_unglue and len(row) == 3 and row[1].count('"') == 1:
            en, next_haw = row[1].split('"')
            pairs.append({"line": line, "index": index, "haw": row[0], "en": en})
            pairs.append({"line": line, "index": index, "haw": next_haw, "en": row[2]})
            repaired.append({
                "line": line,
                "index": index,
                "note": "3 fields: a lost line break had joined two rows; split into two pairs",
                "excerpt": excerpt(clean(en)[-30:] + '"' + clean(next_haw)),
            })
        else:
            raise UserError(
                f"{path}:{line}: row has {len(row)} field(s) but the header has {len(header)}; "
                f"quote cells that contain commas, and check for an unbalanced quote here"
            )
    if not rows:
        raise UserError(f"{path}: no data rows after the header")
    return pairs, {"rows": rows, "blank_lines": blank_lines, "repaired": repaired}


def convert(pairs, *, min_ratio, max_ratio, drop_misaligned, modern):
    """(kept pairs, dropped rows, flagged rows); every pair lands in kept or dropped."""
    kept, dropped, flagged = [], [], []
    first_exact, first_key = {}, {}
    for p in pairs:
        haw, en = clean(p["haw"]), clean(p["en"])
        if modern:
            haw = modern_orthography(haw)
        where = {"line": p["line"], "index": p["index"]}
        if not haw or not en:
            empty = "Hawaiian and English" if not (haw or en) else "Hawaiian" if not haw else "English"
            dropped.append({**where, "reason": "empty", "detail": f"{empty} empty",
                            "excerpt": excerpt(haw or en)})
            continue
        pid = pair_id(haw, en)
        info = {**where, "pair_id": pid}
        first = first_exact.get((haw, en))
        reason = "duplicate"
        if first is None:
            first, reason = first_key.get(pid), "near_duplicate"
        if first is not None:
            dropped.append({**info, "reason": reason, "duplicate_of": first, "excerpt": excerpt(haw)})
            continue
        first_exact[(haw, en)] = first_key[pid] = info
        ratio = len(en) / len(haw)
        if not min_ratio <= ratio <= max_ratio:
            flagged.append({**info, "ratio": round(ratio, 3), "dropped": drop_misaligned,
                            "haw_chars": len(haw), "en_chars": len(en), "excerpt": excerpt(haw)})
            if drop_misaligned:
                dropped.append({**info, "reason": "misaligned", "ratio": round(ratio, 3),
                                "excerpt": excerpt(haw)})
                continue
        kept.append({"pair_id": pid, "haw": haw, "en": en})
    return kept, dropped, flagged


def parse_args(argv):
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Details (cleanup, drop reasons, ids, report) are in the module docstring.",
    )
    ap.add_argument("input", type=Path, help="CSV with columns `L1 Hawaiian_Text`, `Reference_Translation`")
    ap.add_argument("-o", "--output", type=Path, required=True, help="chat JSONL to write")
    ap.add_argument("--direction", choices=(*olelo.DIRECTIONS, "both"), default=DEFAULTS["DIRECTION"],
                    help="translation direction(s) to emit (default: %(default)s)")
    ap.add_argument("--report", type=Path, help="write a JSON report of kept, dropped and flagged rows")
    ap.add_argument("--drop-misaligned", action="store_true",
                    help="drop rows whose English/Hawaiian character ratio is outside the range")
    ap.add_argument("--min-ratio", type=float, default=0.4, help="lowest plausible ratio (default 0.4)")
    ap.add_argument("--max-ratio", type=float, default=3.0, help="highest plausible ratio (default 3.0)")
    ap.add_argument("--modern-orthography", action="store_true",
                    help="Hawaiian cells: ʻokina look-alikes before a vowel become U+02BB")
    args = ap.parse_args(argv)
    if not 0 <= args.min_ratio <= args.max_ratio:
        ap.error("need 0 <= --min-ratio <= --max-ratio")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    checks.refuse_overwriting_inputs([args.input], [args.output, args.report])
    if args.report is not None and args.report.resolve() == args.output.resolve():
        raise UserError(f"--report {args.report} is the output file; give the report its own path")
    pairs, read_info = read_pairs(args.input)
    damaged, not_hawaiian = checks.check_pairs(
        [(f"{args.input}:{p['line']}", clean(p["haw"]), clean(p["en"])) for p in pairs], str(args.input))
    checks.refuse_damaged(damaged, str(args.input))
    kept, dropped, flagged = convert(
        pairs, min_ratio=args.min_ratio, max_ratio=args.max_ratio,
        drop_misaligned=args.drop_misaligned, modern=args.modern_orthography,
    )
    if not kept:
        raise UserError(f"{args.input}: no pairs left after cleanup ({len(dropped)} dropped); nothing written")
    by_reason = {r: sum(d["reason"] == r for d in dropped) for r in REASONS}
    assert len(kept) + len(dropped) == len(pairs), "a row was neither kept nor dropped"
    records = chat_records(kept, args.direction)
    olelo.atomic_write_jsonl(args.output, records)

    counts = {
        "rows": read_info["rows"],
        "pairs": len(pairs),
        "kept": len(kept),
        "records": len(records),
        "dropped_by_reason": by_reason,
        "flagged_misaligned": len(flagged),
        "repaired": len(read_info["repaired"]),
        "blank_lines": read_info["blank_lines"],
        "flagged_not_hawaiian": len(not_hawaiian),
    }
    if args.report:
        olelo.atomic_write_json(args.report, {
            "input": str(args.input),
            "sha256": olelo.sha256_file(args.input),
            "output": str(args.output),
            "output_sha256": olelo.sha256_file(args.output),
            "direction": args.direction,
            "options": {"min_ratio": args.min_ratio, "max_ratio": args.max_ratio,
                        "drop_misaligned": args.drop_misaligned,
                        "modern_orthography": args.modern_orthography},
            "ratio": "characters of cleaned English / characters of cleaned Hawaiian",
            "row_numbers": "line: 1-based file line where the row starts; index: 0-based data row",
            "counts": counts,
            "dropped": dropped,
            "flagged": flagged,
            "repaired": read_info["repaired"],
            "not_hawaiian": not_hawaiian,
        })

    reasons = ", ".join(f"{r} {n}" for r, n in by_reason.items() if n) or "none"
    unglued = f" ({counts['repaired']} glued row(s) split in two)" if counts["repaired"] else ""
    flag_lines = ", ".join(f"line {f['line']} ({f['ratio']})" for f in flagged[:10])
    print(
        f"convert_fornander: {args.input}: {counts['rows']} rows -> {len(pairs)} pairs{unglued}; "
        f"kept {len(kept)}, dropped {len(dropped)} ({reasons}); {len(flagged)} misaligned "
        f"candidate(s) outside [{args.min_ratio}, {args.max_ratio}] "
        f"{'dropped' if args.drop_misaligned else 'kept'}{': ' + flag_lines if flagged else ''}"
        f"{' …' if len(flagged) > 10 else ''}; wrote {len(records)} {args.direction} records "
        f"to {args.output}{f', report {args.report}' if args.report else ''}.",
        file=sys.stderr,
    )
    if not_hawaiian:
        where = ", ".join(d["where"].rsplit(":", 1)[1] for d in not_hawaiian[:10])
        print(f"convert_fornander: warning: {len(not_hawaiian)} Hawaiian cell(s) read as another language "
              f"(over {checks.NOT_HAWAIIAN_LIMIT:.0%} letters outside the Hawaiian alphabet), kept: "
              f"line(s) {where}{' …' if len(not_hawaiian) > 10 else ''}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    olelo.run_main(main)
