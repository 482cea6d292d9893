"""Score translations against references: corpus BLEU, chrF++ and TER, each with its
sacrebleu signature, per-sentence chrF++, semantic similarity (semsim.py), and two
health checks of the outputs themselves:
  loop rate     share of outputs that loop: some span of 1 to 10 words occurs 3 or
                more times in a row (words: lowercased runs of letters/digits, so
                punctuation and case do not hide a repeat). A loop, not a style.
  length ratio  characters of all outputs / characters of all references.
With --base, also a paired bootstrap test (sacrebleu's own) of system vs base.

Run:
    .venv/bin/python scripts/score.py --hyp runs/X/hyps.jsonl            # refs from the same JSONL
    .venv/bin/python scripts/score.py --hyp hyp.txt --ref ref.txt --json
    .venv/bin/python scripts/score.py --hyp new/hyps.jsonl --base old/hyps.jsonl --bootstrap 1000 --seed 12345

Inputs are plain text (one segment a line) or JSONL (by the .jsonl extension): from
--hyp and --base the `hypothesis` key is read (--field to change it), from --ref the
`reference` key (--ref-field). Lines are right-stripped, as the sacrebleu CLI does,
so the numbers equal `sacrebleu REF -i HYP -m bleu chrf ter --chrf-word-order 2`.

From Python: `score_corpus(hyps, refs)` and `compare(base_hyps, sys_hyps, refs)`.
"""

from __future__ import annotations

import argparse
import json

import olelo
from olelo.defaults import DEFAULTS
from olelo.scores import (check_lengths, compare, format_comparison, format_single, read_pair, read_segments,
                        score_report)

def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hyp", required=True, help="system output: text (one segment a line) or .jsonl")
    parser.add_argument("--ref", help="references: text or .jsonl (default: the --hyp file, when it is JSONL)")
    parser.add_argument("--base", help="baseline output to compare against with a paired bootstrap test")
    parser.add_argument("--field", default="hypothesis", help="JSONL key read from --hyp and --base (default: %(default)s)")
    parser.add_argument("--ref-field", default="reference", help="JSONL key read from --ref (default: %(default)s)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--bootstrap", type=int, default=DEFAULTS["BOOTSTRAP"], metavar="N", help="bootstrap resamples for --base (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=12345, help="bootstrap seed, > 0; sacrebleu's default is 12345 (default: %(default)s)")
    parser.add_argument("--no-semsim", action="store_true", help="skip semantic similarity (all-MiniLM-L6-v2)")
    args = parser.parse_args(argv)
    if args.seed <= 0:
        raise olelo.UserError(f"--seed must be > 0 (sacrebleu runs unseeded with 0), got {args.seed}")
    if args.bootstrap < 1:
        raise olelo.UserError(f"--bootstrap must be >= 1, got {args.bootstrap}")

    hyps, refs = read_pair(args.hyp, args.ref, args.field, args.ref_field)
    system = score_report(hyps, refs, args.hyp, not args.no_semsim)
    if args.base is None:
        print(json.dumps(system, indent=2, ensure_ascii=False) if args.json else format_single(system))
        return 0

    base_hyps = read_segments(args.base, args.field)
    check_lengths(args.base, base_hyps, args.ref or args.hyp, refs)
    out = {
        "system": system,
        "base": score_report(base_hyps, refs, args.base, not args.no_semsim),
        "comparison": compare(base_hyps, hyps, refs, n_samples=args.bootstrap, seed=args.seed),
    }
    print(json.dumps(out, indent=2, ensure_ascii=False) if args.json else format_comparison(out))
    return 0


if __name__ == "__main__":
    olelo.run_main(main)
