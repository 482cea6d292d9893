"""Benchmark: olelo/fast_ter.py's TER statistics against sacrebleu's on every committed output, and
the time of each.

    python bench/ter_exact.py [--runs-dir runs] [--reference-cache runs/.segment-stats]
        [--sample 40] [--no-compute-missing] [--out bench/results/ter_exact.json]

For each committed evaluation (RUNS/*/eval*/summary.json with outputs.jsonl.gz, whose test set
is built here with the recorded sha256) and each of its systems plus copy-source (the source
sentences as outputs), the per-segment TER statistics of fast_ter are compared, value and type,
with sacrebleu 2.6.0's: read from a statistics cache written by olelo/segment_stats.py before it
had the compiled path (--reference-cache: entries keyed by the texts' sha256, so an entry is
sacrebleu's statistics of exactly these texts), or else computed with sacrebleu here. Timed:
sacrebleu and fast_ter on a fixed sample of segments (--sample, the same segments for both),
fast_ter on everything (warm), and the kernel's compilation in a fresh process with an empty
numba cache (cold) and again with that cache filled (warm start).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import olelo
from olelo import evaluation, fast_ter, header, segment_stats

REPO = Path(__file__).resolve().parent.parent


def committed(runs_dir: Path):
    """(eval dir, {system: hyps}, refs) of each committed evaluation whose test set is here."""
    for summary_path in sorted(runs_dir.glob("*/eval*/summary.json")):
        summary = json.loads(summary_path.read_text())
        outputs = summary_path.parent / "outputs.jsonl.gz"
        test_file = REPO / summary.get("test_data", "")
        if not outputs.is_file() or not test_file.is_file() or \
                olelo.sha256_file(test_file) != summary.get("test_sha256"):
            print(f"  skipped {summary_path.parent} (no outputs kept, or its test set is not built here)",
                  file=sys.stderr)
            continue
        rows: dict[str, list[dict]] = {}
        for line in gzip.decompress(outputs.read_bytes()).decode("utf-8").splitlines():
            row = json.loads(line)
            rows.setdefault(row["system"], []).append(row)
        pairs = evaluation.pairs_of(evaluation.test_records(test_file, [r["id"] for r in next(iter(rows.values()))]))
        systems = {n: [r["hypothesis"] for r in rs] for n, rs in rows.items()}
        systems["copy-source"] = [p["source"] for p in pairs]
        yield summary_path.parent, systems, [p["target"] for p in pairs]


def compile_seconds(cache_dir: str) -> float:
    """Seconds to import fast_ter and have its kernel ready, in a fresh process."""
    code = ("import time; t = time.perf_counter(); from olelo import fast_ter; fast_ter._build(); "
            "print(time.perf_counter() - t)")
    env = {**os.environ, "NUMBA_CACHE_DIR": cache_dir, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs-dir", type=Path, default=REPO / "runs")
    ap.add_argument("--reference-cache", type=Path, default=None,
                    help="a segment_stats cache folder written with sacrebleu's own TER")
    ap.add_argument("--sample", type=int, default=40, help="segments timed with both (default 40)")
    ap.add_argument("--no-compute-missing", action="store_true",
                    help="skip systems whose sacrebleu statistics are not in --reference-cache")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "ter_exact.json")
    a = ap.parse_args(argv)
    if not fast_ter.available():
        raise SystemExit(f"bench/ter_exact.py: {fast_ter.why_not()}")
    head = header.start("python bench/ter_exact.py" + "".join(
        f" {x}" for x in (argv if argv is not None else sys.argv[1:])))

    with tempfile.TemporaryDirectory() as numba_cache:
        cold, warm_start = compile_seconds(numba_cache), compile_seconds(numba_cache)

    store = segment_stats.Store(jobs=1)
    evals, segments, mismatches, examples = [], 0, 0, []
    fast_seconds, from_cache, computed_here, sacrebleu_seconds_missing = 0.0, 0, 0, 0.0
    sample_pool = []
    for eval_dir, systems, refs in committed(a.runs_dir):
        rec = {"eval": str(eval_dir.relative_to(REPO)), "systems": {}}
        for name, hyps in systems.items():
            key = store.key("ter", hyps, refs)
            want = None
            path = a.reference_cache / f"{key}.json" if a.reference_cache else None
            if path is not None and path.is_file():
                entry = json.loads(path.read_text())
                if entry.get("key") == key and entry.get("sacrebleu") in fast_ter.TESTED_SACREBLEU:
                    want, source = entry["stats"], "reference cache"
            if want is None:
                if a.no_compute_missing:
                    rec["systems"][name] = {"skipped": "not in the reference cache"}
                    continue
                print(f"  {eval_dir.name} {name}: sacrebleu ({len(hyps)} segments)...", file=sys.stderr, flush=True)
                t = time.perf_counter()
                want = segment_stats.new_metric("ter")._extract_corpus_statistics(list(hyps), [list(refs)])
                sacrebleu_seconds_missing += time.perf_counter() - t
                source = "sacrebleu here"
            t = time.perf_counter()
            got = fast_ter.extract(hyps, refs)
            fast_seconds += time.perf_counter() - t
            bad = [i for i, (w, g) in enumerate(zip(want, got))
                   if w != g or [type(x) for x in w] != [type(x) for x in g]]
            bad += list(range(min(len(want), len(got)), max(len(want), len(got))))
            segments += len(hyps)
            mismatches += len(bad)
            examples += [{"eval": rec["eval"], "system": name, "segment": i} for i in bad[:3]]
            from_cache += source == "reference cache"
            computed_here += source == "sacrebleu here"
            rec["systems"][name] = {"segments": len(hyps), "mismatches": len(bad), "sacrebleu_from": source}
            sample_pool += list(zip(hyps, refs))
            print(f"  {rec['eval']} {name}: {len(hyps)} segments, {len(bad)} mismatches ({source})", file=sys.stderr)
        evals.append(rec)

    # the timed sample: every k-th distinct pair, the longest first so loops are in it
    distinct = sorted(set(sample_pool), key=lambda p: -len(p[0].split()) * len(p[1].split()))
    step = max(1, len(distinct) // max(1, a.sample))
    sample = distinct[::step][:a.sample]
    t = time.perf_counter()
    want = segment_stats.new_metric("ter")._extract_corpus_statistics([h for h, _ in sample], [[r for _, r in sample]])
    sacrebleu_sample = time.perf_counter() - t
    t = time.perf_counter()
    got = fast_ter.extract([h for h, _ in sample], [r for _, r in sample])
    fast_sample = time.perf_counter() - t
    sample_mismatches = sum(w != g for w, g in zip(want, got))

    results = {
        "segments_compared": segments, "mismatches": mismatches, "mismatch_examples": examples,
        "systems_from_reference_cache": from_cache, "systems_computed_with_sacrebleu_here": computed_here,
        "fast_ter_seconds_all_warm": round(fast_seconds, 2),
        "sacrebleu_seconds_for_systems_computed_here": round(sacrebleu_seconds_missing, 2),
        "sample": {"segments": len(sample), "distinct_pairs_in_pool": len(distinct),
                   "sacrebleu_seconds": round(sacrebleu_sample, 2), "fast_ter_seconds_warm": round(fast_sample, 3),
                   "speedup": round(sacrebleu_sample / fast_sample, 1) if fast_sample else None,
                   "mismatches": sample_mismatches},
        "kernel_ready_seconds": {"cold_empty_numba_cache": round(cold, 2), "warm_numba_cache": round(warm_start, 2)},
        "evaluations": evals,
    }
    header.write(a.out, head, {"what": "olelo/fast_ter.py's TER per-segment statistics vs sacrebleu 2.6.0's "
                                       "on committed outputs: equality and time", "results": results})
    print(json.dumps({k: v for k, v in results.items() if k != "evaluations"}, indent=1))
    print(f"wrote {a.out}")
    return 1 if mismatches or sample_mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
