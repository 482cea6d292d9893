# Served NOTES.md: 2026-11-26 (GPU) "Issue 14, first pass"; 2026-11-27 "Would stopping at the first loop fix
#   TER?".
"""Score one evaluation's distinct outputs, as NOTES.md's first issue-14 entry did:
base, copy-source (the source as the translation) and a fine-tuned checkpoint, each with
BLEU, chrF++, TER, loop rate and length ratio, and paired bootstraps (chrF++ and BLEU)
of each pair of them.

    python bench/campaigns/score_campaign_outputs.py runs/<stamp>/eval-mt256 [--ckpt best] [--out scores.json]

It exists because the campaign's other runs chose the base model as best/, so the
campaign had one fine-tuned output set to score, and `make eval`'s full report (TER
bootstraps for every row) took ~5 minutes a run on a loaded 2-core machine.
"""

import argparse
import json
import sys
from pathlib import Path

import olelo
from olelo import scores


def load(path):
    rows = olelo.read_jsonl(path)
    return [r["source"] for r in rows], [r["reference"] for r in rows], [r["hypothesis"] for r in rows]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("eval_dir", help="an evaluation folder with base/hyps.jsonl and CKPT/hyps.jsonl")
    p.add_argument("--ckpt", default="best")
    p.add_argument("--out", help="JSON file to write (default: print)")
    p.add_argument("--metrics", default="bleu,chrf,ter",
                   help="comma list of bleu, chrf, ter (TER takes minutes on looping 256-token outputs)")
    a = p.parse_args(argv)
    src, refs, base = load(Path(a.eval_dir) / "base" / "hyps.jsonl")
    _, refs2, tuned = load(Path(a.eval_dir) / a.ckpt / "hyps.jsonl")
    if refs != refs2:
        sys.exit(f"error: base and {a.ckpt} were not translated from the same test pairs")
    systems = {"base": base, "copy-source": src, a.ckpt: tuned}
    metrics = tuple(a.metrics.split(","))
    if not metrics or set(metrics) - {"bleu", "chrf", "ter"}:
        raise olelo.UserError(f"--metrics {a.metrics!r}: use a comma list of bleu, chrf, ter")
    out = {"scores": {n: {**scores.score_corpus(h, refs, metrics), **scores.output_health(h, refs)}
                      for n, h in systems.items()}, "comparisons": {}}
    for x, y in (("base", a.ckpt), ("copy-source", a.ckpt), ("copy-source", "base")):
        out["comparisons"][f"{x} vs {y}"] = scores.compare(systems[x], systems[y], refs, n_samples=1000,
                                                          metrics=tuple(m for m in ("bleu", "chrf") if m in metrics))
    text = json.dumps(out, indent=1, default=str)
    if a.out:
        olelo.atomic_write_text(a.out, text + "\n")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    olelo.run_main(main)
