"""Translation with a model: prompts as in training, greedy batched decoding, few-shot
examples, and a run's evaluation inputs. scripts/translate.py is its command line.
"""

from __future__ import annotations

import math
import random
import sys
import time

import olelo
from olelo import identity, records
from olelo.prompt import completion_answer, completion_prompt


def build_prompts(tokenizer, records, shots=None, completion: bool = False):
    """Token prompts; `shots` maps a direction to its (source, target) examples; `completion`:
    the plain completion prompt (olelo.prompt.completion_prompt) instead of the chat template."""
    prompts = []
    for r in records:
        source, _ = olelo.record_source_target(r)
        direction = r.get("direction", "haw-en")
        if completion:
            prompts.append(tokenizer.encode(completion_prompt(source, direction)))
            continue
        if shots is None:
            messages = olelo.prompt_messages(source, direction)
        else:
            messages = olelo.fewshot_messages(source, direction, shots[direction])
        prompts.append(tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_dict=False))
    return prompts


def pick_shots(train_records, directions, k: int, seed: int) -> dict:
    """{direction: [record, ...]}: k train records per direction, drawn with `seed`
    from the shorter half (source + target characters; at least k records)."""
    shots = {}
    for direction in sorted(directions):
        pool = [r for r in train_records if r.get("direction", "haw-en") == direction]
        if len(pool) < k:
            raise olelo.UserError(f"--shots {k}: the train split has only {len(pool)} {direction} pairs")
        # Sorted by (length, id) and then by id: the draw does not depend on the order of train.jsonl.
        by_size = sorted(pool, key=lambda r: (sum(map(len, olelo.record_source_target(r))), str(r.get("id"))))
        short = sorted(by_size[:max(k, (len(pool) + 1) // 2)], key=lambda r: str(r.get("id")))
        shots[direction] = random.Random(seed).sample(short, k)
    return shots


def first_records(path, n: int) -> list[dict]:
    """The first n records of a JSONL file, for a benchmark to translate; refuses n < 1 and a
    file without records."""
    if n < 1:
        raise olelo.UserError(f"--n {n}: give the number of sentences to translate (1 or more)")
    records = olelo.read_jsonl(path)[:n]
    if not records:
        raise olelo.UserError(f"{path}: no records to translate")
    return records


def default_max_tokens(tokenizer, records) -> int:
    longest = max(len(tokenizer.encode(olelo.record_source_target(r)[1])) for r in records)
    return math.ceil(1.25 * longest) + 8


def cap_record(tokenizer, records, max_tokens: int, given: int | None) -> dict:
    """The generation cap and how many references are longer than it (in this model's tokens)."""
    lengths = sorted(len(tokenizer.encode(olelo.record_source_target(r)[1])) for r in records)
    return {"max_tokens": max_tokens, "set_by": "MAX_TOKENS" if given else "1.25 x the longest reference + 8",
            "references": len(lengths), "references_over_cap": sum(n > max_tokens for n in lengths),
            "reference_tokens": {"median": lengths[len(lengths) // 2], "p99": lengths[min(len(lengths) - 1,
                                 math.ceil(0.99 * len(lengths)) - 1)], "max": lengths[-1]}}


def translate(model, tokenizer, records, max_tokens: int, batch_size: int, progress=True, shots=None,
              stats: dict | None = None, completion: bool = False) -> list[dict]:
    """One row per record. `stats`, when given, gathers batch_generate's counts over the batches:
    prompt_tokens, prompt_s (prefill), generated_tokens, decode_s. `completion`: the plain
    completion prompt, its answer cut at the end of the first line."""
    from mlx_lm.generate import batch_generate
    from tqdm import tqdm

    prompts = build_prompts(tokenizer, records, shots, completion)
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
        if stats is not None:
            for key, value in (("prompt_tokens", resp.stats.prompt_tokens), ("prompt_s", resp.stats.prompt_time),
                               ("generated_tokens", resp.stats.generation_tokens), ("decode_s", resp.stats.decode_time)):
                stats[key] = stats.get(key, 0) + value
        for i, text, ids in zip(chunk, resp.texts, resp.token_ids):
            source, reference = olelo.record_source_target(records[i])
            out[i] = {"id": records[i].get("id", str(i)), "source": source, "reference": reference,
                      "hypothesis": completion_answer(text) if completion else text.strip(), "tokens": len(ids),
                      "time": round(share, 4)}
        bar.update(len(chunk))
    bar.close()
    return out


def eval_remedy(manifest: dict) -> str:
    return (f"Evaluate a run on the test set and model it was trained with (rebuild them as they were: "
            f"{identity.rebuild_hint(manifest)}), or train a new run on what is there now (FORCE=1)")


def run_eval_inputs(run: str, ckpt: str, split: str = "test"):
    """(model, test file, adapter folder or None) of a run's checkpoint; refused when the
    test set (split "test", or "sealed") or the model is no longer the one the run recorded."""
    run_dir = olelo.resolve_run(run)
    manifest = olelo.run_manifest(run_dir)
    records.require_finished(run_dir, manifest, "evaluate")
    if split == "sealed" and not (manifest.get("data") or {}).get("sealed_sha256"):
        raise olelo.UserError(f"run {manifest.get('stamp')} recorded no sealed test set: its data "
                              f"{manifest.get('data_dir')} has none (make data SPLIT=stories makes one)")
    identity.require_unchanged(manifest, "be evaluated", splits=(split,), remedy=eval_remedy(manifest))
    adapter = olelo.checkpoint_adapter(manifest["adapter_dir"], ckpt)
    return manifest["model"], f"{manifest['data_dir']}/{split}.jsonl", str(adapter) if adapter else None
