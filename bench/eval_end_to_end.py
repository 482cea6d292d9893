"""Benchmark: an evaluation end to end, translation and scoring, with the loop stop off and on.

    python bench/eval_end_to_end.py --model models/tiny-gemma3 --data data/finetuning/large \
        [--adapter-path DIR] [--n 16] [--max-tokens N] [--batch-size 32] [--bootstrap 1000] \
        [--loop-stop both|off|on] [--jobs N] [--out bench/results/eval_end_to_end_<model>_<device>.json]

`make bench-eval` runs it (MODEL, BENCH_N, MAX_TOKENS, EVAL_BATCH, BOOTSTRAP). The first N test
paragraphs are translated as `make eval` translates them (olelo.generate.translate: the
training prompt, greedy, batched, the cap 1.25 x the longest reference + 8 unless
--max-tokens), model loaded once, then scored as `make eval` scores them
(olelo.evaluation.score_systems: the model row, the four reference baselines, the probes and
every paired bootstrap, no semantic similarity) with a fresh statistics cache (a first
`make eval` pays this), then once more with the cache warm (a report written again). Each
setting records its seconds, sentences/s, generated tokens, outputs at the cap, outputs the
stop cut, and the scores (chrF++, BLEU, TER, loop rate, length ratio). A tiny random model's
scores are plumbing, never quality. The load average is in the header: the CPU may be shared.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import olelo
from olelo.defaults import DEFAULTS
from olelo import evaluation, generate, header, segment_stats


def device_name() -> str:
    import mlx.core as mx

    return "gpu" if mx.default_device() == mx.gpu else "cpu"


def measure(model, tokenizer, records, test, train, a, max_tokens: int, loop_stop: bool) -> dict:
    stats = {}
    t = time.perf_counter()
    rows = generate.translate(model, tokenizer, records, max_tokens, a.batch_size, progress=False, stats=stats,
                              loop_stop=loop_stop)
    translate_s = time.perf_counter() - t
    hyps = [r["hypothesis"] for r in rows]
    timings = {}
    with tempfile.TemporaryDirectory() as tmp:
        store = segment_stats.Store(Path(tmp), jobs=a.jobs)
        with segment_stats.using(store):
            for label in ("cold", "warm"):
                t = time.perf_counter()
                scored = evaluation.score_systems(test, train, {"model": hyps}, bootstrap=a.bootstrap, seed=12345,
                                                  semsim_ok=False, progress=lambda m: None)
                timings[label] = time.perf_counter() - t
    row = scored["rows"]["model"]
    return {
        "loop_stop": loop_stop,
        "translate_seconds": round(translate_s, 2),
        "sentences_per_second": round(len(rows) / translate_s, 3),
        "generated_tokens": stats["generated_tokens"],
        "decode_seconds": round(stats["decode_s"], 2),
        "at_cap": sum(r["tokens"] >= max_tokens for r in rows),
        "loop_stopped": stats.get("loop_stopped"),
        "score_seconds_cold": round(timings["cold"], 2),
        "score_seconds_warm": round(timings["warm"], 2),
        "end_to_end_seconds": round(translate_s + timings["cold"], 2),
        "scores": {k: row[k] for k in ("chrf", "bleu", "ter", "loop_rate", "repeat8", "length_ratio")},
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--adapter-path", help="an adapter folder to evaluate (default: the model alone)")
    p.add_argument("--data", required=True, help="a split folder with test.jsonl and train.jsonl")
    p.add_argument("--n", type=int, default=DEFAULTS["BENCH_N"], help="the first N test paragraphs (default: %(default)s)")
    p.add_argument("--max-tokens", type=int, help="generation cap (default: make eval's, from the references)")
    p.add_argument("--batch-size", type=int, default=DEFAULTS["EVAL_BATCH"], help="(default: %(default)s)")
    p.add_argument("--bootstrap", type=int, default=DEFAULTS["BOOTSTRAP"], help="(default: %(default)s)")
    p.add_argument("--loop-stop", choices=["both", "off", "on"], default="both")
    p.add_argument("--jobs", type=int, help="processes for the score statistics (default: the cores)")
    p.add_argument("--out", help="result file (default: bench/results/eval_end_to_end_<model>_<device>.json)")
    a = p.parse_args(argv)
    for flag, value in (("--n", a.n), ("--max-tokens", a.max_tokens), ("--batch-size", a.batch_size),
                        ("--bootstrap", a.bootstrap), ("--jobs", a.jobs)):
        if value is not None and value < 1:
            raise olelo.UserError(f"{flag} {value}: give a whole number >= 1")
    data = Path(a.data)
    for name in ("test.jsonl", "train.jsonl"):
        if not (data / name).is_file():
            raise olelo.UserError(f"{data / name}: no such file (make data builds the split)")
    records = generate.first_records(data / "test.jsonl", a.n)
    test = evaluation.pairs_of(records)
    train = evaluation.pairs_of(olelo.read_jsonl(data / "train.jsonl"))
    split = " SPLIT=paragraphs" if data.parent.name == "finetuning" else ""
    head = header.start(f"make bench-eval{split} MODEL={a.model} BENCH_N={a.n}"
                        + (f" MAX_TOKENS={a.max_tokens}" if a.max_tokens else ""))
    t = time.perf_counter()
    model, tokenizer = olelo.load_model(a.model, adapter_path=a.adapter_path)
    load_s = time.perf_counter() - t
    max_tokens = a.max_tokens or generate.default_max_tokens(tokenizer, records)
    settings = {"off": [False], "on": [True], "both": [False, True]}[a.loop_stop]
    results = {}
    for loop_stop in settings:
        key = "loop_stop_on" if loop_stop else "loop_stop_off"
        print(f"{key}: translating {len(records)} paragraphs (cap {max_tokens} tokens) and scoring them",
              file=sys.stderr)
        results[key] = measure(model, tokenizer, records, test, train, a, max_tokens, loop_stop)
        r = results[key]
        print(f"  translate {r['translate_seconds']} s ({r['at_cap']} at the cap, {r['loop_stopped']} stopped), "
              f"score {r['score_seconds_cold']} s cold / {r['score_seconds_warm']} s warm", file=sys.stderr)
    device = device_name()
    out = Path(a.out or f"bench/results/eval_end_to_end_{Path(a.model.rstrip('/')).name}_{device}.json")
    header.write(out, head, {
        "what": "an evaluation end to end: translating the first N test paragraphs (make eval's path) and scoring "
                "them (make eval's scores: model row, reference baselines, probes, paired bootstraps), loop stop "
                "off and on",
        "model": a.model, "adapter": a.adapter_path, "device": device, "paragraphs": len(records),
        "max_tokens": max_tokens, "batch_size": a.batch_size, "bootstrap": a.bootstrap,
        "score_jobs": a.jobs or segment_stats.Store().jobs, "load_seconds": round(load_s, 2), "results": results})
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    olelo.run_main(main)
