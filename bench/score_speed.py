"""Benchmark: seconds to score an evaluation (olelo.evaluation.score_systems: the four reference
baselines, the probes, every paired bootstrap) of four systems over a test set.

    python bench/score_speed.py --data data/finetuning/large [--eval-dir runs/<stamp>/eval-mt256]
        [--n N] [--loop-stop] [--bootstrap 1000] [--jobs N] [--cache-dir DIR] [--label after]
        [--out bench/results/score_speed.json]

The systems are base, copy-source (a reference baseline, always scored), final and best. With
--eval-dir they are that evaluation's own outputs (its */hyps.jsonl, or its kept
outputs.jsonl.gz); without it they are synthetic, made from the test set so that the benchmark
runs anywhere: "final" and "best" are the reference with every 7th word dropped (every 5th for
best), and LOOP_SHARE of them end in a loop (their last four words repeated up to about 190
words, the length of a 256-token cap); "base" is the source followed by its first words
repeated, as a pretrained model's echo. Seeded: the same outputs on every run.

The scoring runs once cold (no cached statistics) and, when the code has the statistics cache
(olelo/segment_stats.py), once warm (every statistic read back): the cold time is what a first
`make eval` pays. Run it with PYTHONPATH=<an older checkout> to time that checkout's code
(the --label names the result). The load average is recorded: this CPU may be shared.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import olelo
from olelo.defaults import DEFAULTS
from olelo import evaluation, header

LOOP_SHARE = 0.17  # haw->en final outputs that looped in the recipe's runs: 47 of 283 (NOTES.md)


def synthetic_systems(test: list[dict], seed: int = 0) -> dict[str, list[str]]:
    rng = random.Random(seed)

    def degrade(text: str, every: int, loop: bool) -> str:
        words = [w for k, w in enumerate(text.split(), 1) if k % every]
        if loop and len(words) >= 4:
            tail = words[-4:]
            while len(words) < 190:
                words += tail
        return " ".join(words)

    base = []
    for t in test:
        words = t["source"].split()
        out = list(words)
        if rng.random() < 0.3:  # an echo that loops
            while len(out) < 190 and words:
                out += words[:5]
        base.append(" ".join(out))
    final = [degrade(t["target"], 7, rng.random() < LOOP_SHARE) for t in test]
    best = [degrade(t["target"], 5, rng.random() < LOOP_SHARE) for t in test]
    return {"base": base, "final": final, "best": best}


def eval_systems(eval_dir: Path, n: int) -> dict[str, list[str]]:
    names = [d.name for d in sorted(eval_dir.iterdir()) if (d / "hyps.jsonl").is_file()]
    if names:
        return {k: [r["hypothesis"] for r in olelo.read_jsonl(eval_dir / k / "hyps.jsonl")][:n]
                for k in names if k in ("base", "final", "best")}
    summary = olelo.read_json(eval_dir / "summary.json", "evaluation summary")
    rows = evaluation.read_outputs(eval_dir, summary["outputs"])
    return {k: [r["hypothesis"] for r in v][:n] for k, v in rows.items() if k in ("base", "final", "best")}


def split_var(data: Path) -> str:
    """' SPLIT=paragraphs' for make's paragraph split (data/finetuning/large), '' for its default."""
    return " SPLIT=paragraphs" if data.parent.name == "finetuning" else ""


def digest(scored: dict) -> str:
    """sha256 of the scores (the chrF++ per sentence left out): equal digests, equal numbers."""
    rows = {n: {k: v for k, v in r.items() if k != "chrf_sentences"} for n, r in scored["rows"].items()}
    text = json.dumps({"rows": rows, "reference_baselines": scored["reference_baselines"],
                       "reference": scored["reference"]}, sort_keys=True, default=float)
    return hashlib.sha256(text.encode()).hexdigest()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="a split folder with test.jsonl and train.jsonl")
    p.add_argument("--eval-dir", type=Path, help="score this evaluation's outputs instead of synthetic ones")
    p.add_argument("--n", type=int, help="the first N test pairs only (default: all)")
    p.add_argument("--bootstrap", type=int, default=DEFAULTS["BOOTSTRAP"], help="(default: %(default)s)")
    p.add_argument("--jobs", type=int, help="processes for the statistics (default: the machine's cores)")
    p.add_argument("--cache-dir", type=Path, help="statistics cache (default: a fresh temporary folder)")
    p.add_argument("--label", default=DEFAULTS["BENCH_LABEL"],
                   help="names this measurement in the result (before/after; default: %(default)s)")
    p.add_argument("--loop-stop", action="store_true",
                   help="score the outputs the loop stop would make of them (olelo.scores.cut_loop: exactly what "
                        "make eval LOOP_STOP=1 writes from the same greedy run)")
    p.add_argument("--out", default="bench/results/score_speed.json",
                   help="result file; an existing one keeps its other labels' measurements")
    a = p.parse_args(argv)
    data = Path(a.data)
    test_records = olelo.read_jsonl(data / "test.jsonl")[: a.n]
    test = evaluation.pairs_of(test_records)
    train = evaluation.pairs_of(olelo.read_jsonl(data / "train.jsonl"))
    systems = eval_systems(a.eval_dir, len(test)) if a.eval_dir else synthetic_systems(test)
    if a.loop_stop:
        from olelo.scores import cut_loop

        systems = {n: [cut_loop(h) for h in hyps] for n, hyps in systems.items()}
    head = header.start(f"make bench-score{split_var(data)} BENCH_LABEL={a.label}"
                        + (f" EVAL_DIR={a.eval_dir}" if a.eval_dir else "")
                        + (" LOOP_STOP=1" if a.loop_stop else "") + (f" LIMIT={a.n}" if a.n else ""))
    try:
        from olelo import segment_stats
    except ImportError:
        segment_stats = None

    def score():
        t = time.perf_counter()
        scored = evaluation.score_systems(test, train, systems, bootstrap=a.bootstrap, seed=12345, semsim_ok=False,
                                          progress=lambda m: print(f"  {m} ({time.perf_counter() - t:.1f} s)",
                                                                   file=sys.stderr))
        return time.perf_counter() - t, scored

    timings = {}
    with tempfile.TemporaryDirectory() as tmp:
        if segment_stats is None:
            cold, scored = score()
        else:
            store = segment_stats.Store(a.cache_dir or Path(tmp), jobs=a.jobs)
            with segment_stats.using(store):
                cold, scored = score()
                warm, again = score()
                timings["warm_seconds"] = round(warm, 2)
                if digest(again) != digest(scored):
                    raise olelo.UserError("the warm scores differ from the cold ones: the statistics cache is wrong")
            timings["jobs"] = store.jobs
    timings["cold_seconds"] = round(cold, 2)
    result = {"label": a.label, "olelo": str(Path(olelo.__file__).parent), "systems": list(systems),
              "segments": len(test), "bootstrap": a.bootstrap,
              "outputs": (str(a.eval_dir) if a.eval_dir else f"synthetic (bench/score_speed.py, loop share {LOOP_SHARE})")
              + (", cut by the loop stop" if a.loop_stop else ""),
              "words": {n: sum(len(h.split()) for h in hyps) for n, hyps in systems.items()},
              "cores": os.cpu_count(), **timings, "scores_sha256": digest(scored),
              "chrf": {n: r["chrf"] for n, r in scored["rows"].items()},
              "ter": {n: r["ter"] for n, r in scored["rows"].items()}}
    old = {}
    if Path(a.out).is_file():
        old = {k: v for k, v in json.loads(Path(a.out).read_text()).get("measurements", {}).items() if k != a.label}
    measurements = {**old, a.label: {"header": head, **result}}
    header.write(a.out, head, {"what": "seconds to score four systems (base, copy-source, final, best) and the "
                                       "reference baselines with every probe and paired bootstrap",
                               "measurements": measurements})
    print(f"{a.label}: cold {timings['cold_seconds']} s"
          + (f", warm {timings['warm_seconds']} s" if "warm_seconds" in timings else "") + f" -> {a.out}")
    return 0


if __name__ == "__main__":
    olelo.run_main(main)
