"""Translate a test split with one model (+ optional adapter), loaded once, in batches.

    python scripts/translate.py --model M [--adapter-path DIR] --data test.jsonl -o hyps.jsonl
        [--max-tokens N] [--batch-size 32] [--limit N]

Prompts are built exactly as in training (olelo.prompt_messages + the model's chat
template, generation prompt added) and decoded greedily with mlx-lm's
batch_generate. Without --max-tokens the cap is 1.25x the longest reference in
tokens (+8). Output rows: id, source, reference, hypothesis, tokens (generated),
time (seconds: the batch's wall time shared evenly among its sentences).
"""

from __future__ import annotations

import argparse
import math
import sys
import time

import olelo


def build_prompts(tokenizer, records):
    prompts = []
    for r in records:
        source, _ = olelo.record_source_target(r)
        messages = olelo.prompt_messages(source, r.get("direction", "haw-en"))
        prompts.append(tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_dict=False))
    return prompts


def default_max_tokens(tokenizer, records) -> int:
    longest = max(len(tokenizer.encode(olelo.record_source_target(r)[1])) for r in records)
    return math.ceil(1.25 * longest) + 8


def translate(model, tokenizer, records, max_tokens: int, batch_size: int, progress=True) -> list[dict]:
    from mlx_lm.generate import batch_generate
    from tqdm import tqdm

    prompts = build_prompts(tokenizer, records)
    # Batch prompts of similar length together: less padding in prefill.
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    out = [None] * len(records)
    bar = tqdm(total=len(records), desc="translating", unit="sent", disable=not progress, file=sys.stderr)
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        t = time.perf_counter()
        resp = batch_generate(model, tokenizer, [prompts[i] for i in chunk], max_tokens=max_tokens,
                              return_token_ids=True)
        share = (time.perf_counter() - t) / len(chunk)
        for i, text, ids in zip(chunk, resp.texts, resp.token_ids):
            source, reference = olelo.record_source_target(records[i])
            out[i] = {"id": records[i].get("id", str(i)), "source": source, "reference": reference,
                      "hypothesis": text.strip(), "tokens": len(ids), "time": round(share, 4)}
        bar.update(len(chunk))
    bar.close()
    return out


def run_eval_inputs(run: str, ckpt: str):
    """(model, test.jsonl, adapter folder or None) of a run's checkpoint."""
    manifest = olelo.run_manifest(olelo.resolve_run(run))
    adapter = olelo.checkpoint_adapter(manifest["adapter_dir"], ckpt)
    return manifest["model"], f"{manifest['data_dir']}/test.jsonl", str(adapter) if adapter else None


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model")
    p.add_argument("--adapter-path", help="adapter folder (adapter_config.json + adapters.safetensors)")
    p.add_argument("--data", help="test.jsonl of chat records")
    p.add_argument("--run", help="a run folder: takes --model, --data (its test.jsonl) and the adapter from it")
    p.add_argument("--ckpt", default="final", help="with --run: base, final, best or an iteration number")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--max-tokens", type=int)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--limit", type=int, help="only the first N test records")
    a = p.parse_args()
    if a.run:
        a.model, a.data, a.adapter_path = run_eval_inputs(a.run, a.ckpt)
    if not (a.model and a.data):
        raise olelo.UserError("give --model and --data, or --run")
    records = olelo.read_jsonl(a.data)[: a.limit]
    if not records:
        raise olelo.UserError(f"{a.data}: no records")
    model, tokenizer = olelo.load_model(a.model, adapter_path=a.adapter_path)
    max_tokens = a.max_tokens or default_max_tokens(tokenizer, records)
    t = time.perf_counter()
    rows = translate(model, tokenizer, records, max_tokens, a.batch_size)
    elapsed = time.perf_counter() - t
    olelo.atomic_write_jsonl(a.output, rows)
    print(f"{a.output}: {len(rows)} sentences in {elapsed:.1f} s ({len(rows) / elapsed:.2f} sent/s, "
          f"max_tokens {max_tokens})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    olelo.run_main(main)
