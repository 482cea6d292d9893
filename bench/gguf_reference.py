"""Check scripts/convert_gguf.py against transformers' own GGUF loader (torch), once,
and write the golden file the torch-free tests compare with.

It needs torch, which the lab does not install: run it from a throwaway venv
outside the repo, e.g.

    python3 -m venv /work/torchref
    /work/torchref/bin/pip install torch transformers==5.24.0 gguf==0.19.0
    make base-model
    /work/torchref/bin/python bench/gguf_reference.py --gguf models/.cache/gemma-3-270m-q4_k_m.gguf \\
        --f32 models/gemma-3-270m-f32 --bf16 models/gemma-3-270m --data ../shared/data \\
        -o tests/fixtures/gemma3_270m_reference.json --logits-out /tmp/gemma3_ref_logits.npz

What it compares (and writes into the golden file):
  - every tensor of the converted folders with the tensor transformers' loader makes
    from the GGUF (max |delta|);
  - last-position logits of a few prompts: transformers on the GGUF vs transformers on
    the converted float32 folder (this checks config.json too); the GGUF side's top-k
    ids and logits are the golden values;
  - tokenization: transformers' tokenizer from the GGUF vs AutoTokenizer on the
    converted folder, for every pair of the data (raw Hawaiian, raw English, the lab's
    chat format); the golden file keeps a short hash of each pair's token ids (not the
    text), so the tests can check every pair without the reference.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import olelo  # noqa: E402

PROMPTS = [
    "The capital of France is",
    "ʻŌlelo Hawaiʻi is the language of",
    "Translate into English: Aloha kākou. ->",
    ("chat", "haw-en", "Ua hele ke aliʻi i ka moku."),
    ("chat", "en-haw", "The chief went to the ship."),
]
TOP_K = 20
CSV_COLUMNS = ("L1 Hawaiian_Text", "Reference_Translation")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--gguf", required=True, help="the assembled GGUF (models/.cache/...)")
    p.add_argument("--f32", required=True, help="converted float32 folder")
    p.add_argument("--bf16", required=True, help="converted bf16 folder")
    p.add_argument("--data", required=True, help="folder with fornander/ and koa/ CSVs")
    p.add_argument("-o", "--out", required=True, help="golden JSON to write")
    p.add_argument("--logits-out", help="also save the reference's full logits (npz) here")
    return p.parse_args(argv)


def pair_key(haw: str, en: str) -> str:
    return hashlib.sha256(f"{haw}\t{en}".encode()).hexdigest()[:12]


def ids_hash(ids) -> str:
    return hashlib.sha256(json.dumps([int(i) for i in ids]).encode()).hexdigest()[:10]


def prompt_text(p) -> str:
    if isinstance(p, str):
        return p
    _, direction, source = p
    from jinja2 import Template
    return Template(olelo.GEMMA3_CHAT_TEMPLATE).render(
        messages=olelo.prompt_messages(source, direction), bos_token="<bos>", add_generation_prompt=True)


def read_pairs(data: Path):
    for name in ("fornander/fornander_pairs.csv", "koa/koa_pairs.csv"):
        with open(data / name, newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                yield name.split("/")[0], row[CSV_COLUMNS[0]], row[CSV_COLUMNS[1]]


def chat_text(haw: str, en: str) -> str:
    from jinja2 import Template
    rec = olelo.chat_record(haw, en, "haw-en", "x")
    return Template(olelo.GEMMA3_CHAT_TEMPLATE).render(messages=rec["messages"], bos_token="<bos>",
                                                       add_generation_prompt=False)


def main(argv=None) -> int:
    args = parse_args(argv)
    from safetensors.numpy import load_file
    from transformers import AutoModelForCausalLM, AutoTokenizer
    import transformers

    t0 = time.time()
    gguf = Path(args.gguf)
    ref = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    ref.eval()
    ref_sd = {k: v.float().numpy() for k, v in ref.state_dict().items()}

    weights = {}
    for label, folder in (("float32", args.f32), ("bfloat16", args.bf16)):
        ours = load_file(str(Path(folder) / "model.safetensors")) if label == "float32" else None
        if ours is None:  # numpy cannot hold bf16: read it through torch
            from safetensors.torch import load_file as load_torch
            ours = {k: v.float().numpy() for k, v in load_torch(str(Path(folder) / "model.safetensors")).items()}
        missing = sorted(set(ref_sd) - set(ours) - {"lm_head.weight"})
        extra = sorted(set(ours) - set(ref_sd))
        worst = max(((float(np.abs(ours[k] - ref_sd[k]).max()), k) for k in ours if k in ref_sd))
        weights[label] = {"tensors": len(ours), "missing": missing, "extra": extra,
                          "max_abs_diff": worst[0], "worst_tensor": worst[1]}
        print(f"weights {label}: {len(ours)} tensors, max |delta| {worst[0]:.3g} ({worst[1]}); "
              f"missing {missing} extra {extra}", file=sys.stderr)

    mine = AutoModelForCausalLM.from_pretrained(args.f32, dtype=torch.float32)
    mine.eval()
    ref_tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    our_tok = AutoTokenizer.from_pretrained(args.bf16)

    prompts, full = [], {}
    for i, p in enumerate(PROMPTS):
        text = prompt_text(p)
        # a chat prompt carries <bos> in its text
        ids = ref_tok.encode(text, add_special_tokens=isinstance(p, str))
        with torch.no_grad():
            a = ref(torch.tensor([ids])).logits[0, -1].float().numpy()
            b = mine(torch.tensor([ids])).logits[0, -1].float().numpy()
        top = np.argsort(-a)[:TOP_K]
        prompts.append({"prompt": p if isinstance(p, str) else list(p), "ids": ids,
                        "top_ids": top.tolist(), "top_logits": [round(float(a[j]), 5) for j in top],
                        "top_text": [ref_tok.decode([int(j)]) for j in top[:5]],
                        "converted_f32_torch_max_abs_diff": float(np.abs(a - b).max())})
        full[f"p{i}"] = a
        print(f"logits {i}: top {prompts[-1]['top_text']}, |ref - converted f32 (torch)| max "
              f"{prompts[-1]['converted_f32_torch_max_abs_diff']:.3g}", file=sys.stderr)

    pairs, mismatches, examples = {}, 0, []
    for dataset, haw, en in read_pairs(Path(args.data)):
        joined = []
        for text, special in ((haw, True), (en, True), (chat_text(haw, en), False)):
            r = ref_tok.encode(text, add_special_tokens=special)
            o = our_tok.encode(text, add_special_tokens=special)
            if r != o:
                mismatches += 1
                examples.append(text[:80])
            joined += r + [-1]
        pairs[pair_key(haw, en)] = ids_hash(joined)
    print(f"tokenization: {len(pairs)} pairs x 3 texts, {mismatches} mismatches {examples[:3]}", file=sys.stderr)

    golden = {
        "what": "transformers' GGUF loader (torch, float32) on the GGUF vs scripts/convert_gguf.py's folders",
        "command": "/work/torchref/bin/python " + shlex.join(["bench/gguf_reference.py", *sys.argv[1:]]),
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                     "gguf_sha256": olelo.sha256_file(gguf)},
        "weights": weights,
        "prompts": prompts,
        "tokenization": {"texts_per_pair": ["hawaiian", "english", "chat haw-en"],
                         "pairs": len(pairs), "mismatches": mismatches, "pair_hashes": pairs},
        "seconds": round(time.time() - t0, 1),
    }
    olelo.atomic_write_text(args.out, json.dumps(golden, ensure_ascii=False, separators=(",", ":")) + "\n")
    if args.logits_out:
        np.savez(args.logits_out, **full)
    print(f"wrote {args.out} in {golden['seconds']}s", file=sys.stderr)
    return 0 if mismatches == 0 else 1


if __name__ == "__main__":
    olelo.run_main(main)
