# Served NOTES.md: 2026-11-26 (GPU) "Is MLX (CUDA) LoRA training as fast as transformers + …".
"""Why is mlx-lm's batch_generate slow on CUDA? Times generate (one prompt) against
batch_generate's engine (BatchGenerator) at several batch sizes, first call against
later calls, step by step, plus micro-benchmarks of the pieces whose shapes change
from step to step.

    python bench/campaigns/gpu_generation.py --model MODEL_DIR --data .gpu-c/test.jsonl \\
        [--max-tokens 128] [--budget-s 420] -o $OUT/generation.json

MODEL_DIR: a model folder, e.g. what gpu_build_model.py --out wrote.

Prompts are the test split's, built as scripts/translate.py builds them (the lab's
prompt + the chat template, generation prompt added), greedy decoding. The batch
runs drive mlx-lm's BatchGenerator with the arguments batch_generate gives it
(stop tokens = the tokenizer's eos ids) and call its next() in a loop, as
batch_generate does, recording every call's time, how many tokens it produced,
whether it prefilled prompts, and the size of the decoding batch. A run is cut
off at its own time limit and recorded as unfinished. The random-init model seldom
emits an end token, so nearly every sequence runs to --max-tokens.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
import gpu_common  # beside this file
import olelo


def build_prompts(tokenizer, records):
    out = []
    for r in records:
        source, _ = olelo.record_source_target(r)
        messages = olelo.prompt_messages(source, r.get("direction", "haw-en"))
        out.append(list(tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_dict=False)))
    return out


def ptx_cache_files() -> int:
    """Kernels MLX's CUDA backend has compiled with NVRTC and cached on disk so far."""
    import mlx.core as mx

    d = Path(os.environ.get("MLX_PTX_CACHE_DIR") or Path("/tmp/mlx") / mx.__version__ / "ptx")
    return len(list(d.glob("*.ptx"))) if d.is_dir() else 0


def run_generate(model, tokenizer, prompt, max_tokens):
    """mlx_lm.stream_generate on one prompt: time to first token, per-token times."""
    from mlx_lm import stream_generate

    ptx0 = ptx_cache_files()
    t0 = time.perf_counter()
    times, last = [], None
    for resp in stream_generate(model, tokenizer, prompt, max_tokens=max_tokens):
        times.append(time.perf_counter() - t0)
        last = resp
    total = time.perf_counter() - t0
    gaps = np.diff(times) if len(times) > 1 else np.array([0.0])
    return {"prompt_tokens": len(prompt), "generated": len(times), "total_s": round(total, 3),
            "first_token_s": round(times[0], 3), "decode_tok_s": round((len(times) - 1) / (times[-1] - times[0]), 1)
            if len(times) > 1 else None, "step_ms_median": round(1000 * float(np.median(gaps)), 2),
            "step_ms_max": round(1000 * float(np.max(gaps)), 1),
            "mlx_generation_tps": round(last.generation_tps, 1) if last else None,
            "ptx_kernels_compiled": ptx_cache_files() - ptx0}


def run_batch(model, tokenizer, prompts, max_tokens, limit_s, **gen_kwargs):
    """batch_generate's loop over BatchGenerator.next(), timed call by call."""
    import mlx.core as mx
    from mlx_lm.generate import BatchGenerator

    mx.reset_peak_memory()
    ptx0 = ptx_cache_files()
    t0 = time.perf_counter()
    gen = BatchGenerator(model, stop_tokens=[[t] for t in tokenizer.eos_token_ids], max_tokens=max_tokens,
                         **gen_kwargs)
    gen.insert(prompts, [max_tokens] * len(prompts))
    calls, produced, finished = [], 0, 0
    done = False
    while True:
        t = time.perf_counter()
        prompt_resps, gen_resps = gen.next()
        dt = time.perf_counter() - t
        if not prompt_resps and not gen_resps:
            done = True
            break
        produced += len(gen_resps)
        finished += sum(1 for r in gen_resps if r.finish_reason is not None)
        calls.append({"s": round(dt, 4), "tokens": len(gen_resps), "prefill": len(prompt_resps),
                      "decoding": len(gen._generation_batch)})
        if time.perf_counter() - t0 > limit_s:
            break
    total = time.perf_counter() - t0
    gen.close()
    dec = [c for c in calls if c["tokens"] and not c["prefill"]]
    pre = [c for c in calls if c["prefill"]]
    out = {"prompts": len(prompts), "max_tokens": max_tokens, "kwargs": gen_kwargs, "finished": done,
           "sequences_done": finished, "tokens": produced, "total_s": round(total, 2),
           "tok_s": round(produced / total, 1), "calls": len(calls),
           "prefill_calls": len(pre), "prefill_s": round(sum(c["s"] for c in pre), 2),
           "decode_calls": len(dec), "decode_s": round(sum(c["s"] for c in dec), 2),
           "decode_step_ms_median": round(1000 * float(np.median([c["s"] for c in dec])), 1) if dec else None,
           "decode_step_ms_first10": [round(1000 * c["s"], 1) for c in dec[:10]],
           "decode_step_ms_last10": [round(1000 * c["s"], 1) for c in dec[-10:]],
           "slowest_calls": sorted(({"i": i, **c} for i, c in enumerate(calls)), key=lambda c: -c["s"])[:8],
           "peak_memory_gb": round(mx.get_peak_memory() / 1e9, 2),
           "ptx_kernels_compiled": ptx_cache_files() - ptx0}
    out["_calls"] = calls
    return out


def time_first_and_repeat(fn, repeats=3):
    import mlx.core as mx

    t = time.perf_counter()
    mx.eval(fn())
    first = time.perf_counter() - t
    rep = []
    for _ in range(repeats):
        t = time.perf_counter()
        mx.eval(fn())
        rep.append(time.perf_counter() - t)
    return round(1000 * first, 2), round(1000 * float(np.median(rep)), 3)


def micro_sdpa(lengths, batch=8):
    """fast.scaled_dot_product_attention for one decoding query against L keys (head
    dim 256 as in Gemma 3), each L new: with no mask and with a boolean array mask
    (what batched decoding passes)."""
    import mlx.core as mx

    rows = []
    for L in lengths:
        q = mx.random.normal((batch, 8, 1, 256)).astype(mx.bfloat16)
        k = mx.random.normal((batch, 4, L, 256)).astype(mx.bfloat16)
        v = mx.random.normal((batch, 4, L, 256)).astype(mx.bfloat16)
        mask = mx.ones((batch, 1, 1, L), dtype=mx.bool_)
        mx.eval(q, k, v, mask)
        for name, m in (("none", None), ("bool_array", mask)):
            first, rep = time_first_and_repeat(
                lambda: mx.fast.scaled_dot_product_attention(q, k, v, scale=1 / 16, mask=m))
            rows.append({"L": L, "mask": name, "first_ms": first, "repeat_ms": rep})
    return rows


def micro_forward(model, lengths, batch=8):
    """One whole-model forward of a [batch, L] block (prefill shape) per new L."""
    import mlx.core as mx

    rows = []
    for L in lengths:
        x = mx.random.randint(10, 1000, (batch, L))
        first, rep = time_first_and_repeat(lambda: model(x), repeats=2)
        rows.append({"L": L, "batch": batch, "first_ms": first, "repeat_ms": rep})
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--data", required=True, help="test.jsonl of chat records")
    p.add_argument("--max-tokens", type=int, default=128)
    p.add_argument("--budget-s", type=float, default=420)
    p.add_argument("--plan", default="all", help="comma list of: generate,batch,big,variants,micro")
    p.add_argument("--big-limit-s", type=float, default=150, help="time limit of each B=64 run")
    p.add_argument("-o", "--output", required=True)
    a = p.parse_args(argv)
    start = time.perf_counter()

    import mlx.core as mx
    import mlx_lm
    from mlx_lm import load

    t = time.perf_counter()
    model, tokenizer = load(a.model)
    load_s = time.perf_counter() - t
    records = olelo.read_jsonl(a.data)[:64]
    prompts = build_prompts(tokenizer, records)
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))  # translate.py batches by length
    by_len = [prompts[i] for i in order]
    res = {"what": __doc__.split("\n\n")[0].replace("\n", " "),
           "command": " ".join([Path(sys.executable).name, *sys.argv]),
           "mlx": mx.__version__, "mlx_lm": mlx_lm.__version__, "device": str(mx.default_device()),
           **gpu_common.device_summary(), "env": {k: v for k, v in os.environ.items() if k.startswith("MLX_")},
           "model": a.model, "model_load_s": round(load_s, 1), "max_tokens": a.max_tokens,
           "ptx_cache_files_at_start": ptx_cache_files(),
           "prompt_tokens": {"min": min(map(len, prompts)), "max": max(map(len, prompts)),
                             "mean": round(float(np.mean([len(x) for x in prompts])), 1)},
           "generate": [], "batch": [], "micro": {}}
    calls_dump = {}
    plan = set(a.plan.split(",")) if a.plan != "all" else {"generate", "batch", "big", "variants", "micro"}

    def left():
        return a.budget_s - (time.perf_counter() - start)

    def save():
        gpu_common.write_json(a.output, res)
        gpu_common.write_json(Path(a.output).with_suffix(".calls.json"), calls_dump)

    def batch(name, ps, limit, **kw):
        if left() < 10:
            res["batch"].append({"name": name, "status": "skipped (time budget)"})
            return None
        r = run_batch(model, tokenizer, ps, a.max_tokens, min(limit, left() - 5), **kw)
        calls_dump[name] = r.pop("_calls")
        r = {"name": name, **r}
        res["batch"].append(r)
        save()
        print(f"[gen] {name}: {r['tokens']} tokens in {r['total_s']} s ({r['tok_s']} tok/s), finished={r['finished']}, "
              f"decode step median {r['decode_step_ms_median']} ms, prefill {r['prefill_s']} s", flush=True)
        return r

    if "generate" in plan:
        for name, pr in (("generate #1 (cold)", by_len[0]), ("generate #2 same prompt", by_len[0]),
                         ("generate #3 other prompt", by_len[-1])):
            r = {"name": name, **run_generate(model, tokenizer, pr, a.max_tokens)}
            res["generate"].append(r)
            save()
            print(f"[gen] {name}: {r}", flush=True)
    if "batch" in plan:
        batch("batch_generate B=1 #1", by_len[:1], 60)
        batch("batch_generate B=1 #2", by_len[:1], 60)
        batch("batch_generate B=8 #1", by_len[:8], 90)
        batch("batch_generate B=8 #2 same prompts", by_len[:8], 90)
        batch("batch_generate B=8 #3 other prompts", by_len[8:16], 90)
    if "big" in plan:
        r = batch("batch_generate B=64 #1 (defaults: completion 32, prefill 8)", by_len, a.big_limit_s)
        if r and r["finished"]:
            batch("batch_generate B=64 #2", by_len, a.big_limit_s)
    if "variants" in plan:
        batch("B=32 as make eval's EVAL_BATCH=32 chunk", by_len[:32], 90)
        batch("B=64 completion_batch_size=64 prefill_batch_size=64", by_len, 90,
              completion_batch_size=64, prefill_batch_size=64)
    if "micro" in plan and left() > 30:
        res["micro"]["sdpa_decode_B8"] = micro_sdpa([300, 301, 302, 303, 556, 557])
        save()
        if left() > 30:
            res["micro"]["forward_prefill_B8"] = micro_forward(model, [37, 38, 39, 64, 65])
    res["total_s"] = round(time.perf_counter() - start, 1)
    save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
