# Served NOTES.md: 2026-12-07 "Can an evaluation be scored in a minute on two cores?".
"""Benchmark: seconds for scripts/eval_report.py to score one real evaluation cold (no cached
per-segment statistics: the run is copied into an empty runs folder first).

    python bench/campaigns/eval_cold.py --run runs/<stamp> --eval-dir eval-mt256 [--from <another checkout>/runs/<stamp>]
        [--bootstrap 1000] [--code DIR] [--numba-cache DIR] [--label after] [--warm]
        [--out bench/results/eval_cold.json]

--from: where the evaluation's hyps.jsonl files are (they are git-ignored: a run's own checkout
may not have them); the run is copied from there. --code: the checkout whose olelo and
eval_report.py run (default: this one; an older checkout gives the "before" time).
--numba-cache: numba's cache folder for the run (default: a fresh empty one, so the kernel's
compilation is counted). The result is appended to --out under --label, with the load average:
this CPU may be shared. The copied summary.json is kept beside the result's label in
--keep-summaries (optional) so two labels' summaries can be compared.
--warm: then score the same copy again, its cache as the cold run left it (per-segment
statistics and semantic similarity's cosines read back: a report written again), timed as
"warm", and say whether every file the two runs wrote is byte for byte the same.
Run it with OpenBLAS preloaded as make does (LD_PRELOAD, see the Makefile's MLX_ENV): MLX's
CPU matrix products (semantic similarity) are far slower without; the result records it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from olelo import header

REPO = Path(__file__).resolve().parents[2]  # bench/campaigns/ -> the checkout


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path, required=True)
    ap.add_argument("--eval-dir", default="eval-mt256")
    ap.add_argument("--from", dest="source", type=Path, default=None)
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument("--code", type=Path, default=REPO)
    ap.add_argument("--numba-cache", default=None)
    ap.add_argument("--label", default="after")
    ap.add_argument("--keep-summaries", type=Path, default=None)
    ap.add_argument("--warm", action="store_true", help="then time a second run with the cache full")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "eval_cold.json")
    a = ap.parse_args(argv)
    source = a.source or a.run
    if not (source / a.eval_dir).is_dir():
        raise SystemExit(f"bench/campaigns/eval_cold.py: {source / a.eval_dir} is not a folder")
    head = header.start(f"python bench/campaigns/eval_cold.py --run {a.run} --eval-dir {a.eval_dir} --label {a.label}"
                        + (" --warm" if a.warm else ""))
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "runs" / a.run.name
        shutil.copytree(source, run)
        for stale in ("summary.json", "summary.md"):
            (run / a.eval_dir / stale).unlink(missing_ok=True)
        numba_cache = a.numba_cache or str(Path(tmp) / "numba-cache")
        env = {**os.environ, "PYTHONPATH": str(a.code.resolve()), "NUMBA_CACHE_DIR": numba_cache}
        cmd = [sys.executable, str(a.code.resolve() / "scripts" / "eval_report.py"), "--run", str(run),
               "--eval-dir", str(run / a.eval_dir), "--bootstrap", str(a.bootstrap)]
        seconds, cpu, load_start, load_end = timed(cmd, env)
        warm = None
        if a.warm:
            written = {p.name: p.read_bytes() for p in (run / a.eval_dir).iterdir() if p.name in WRITTEN}
            for stale in ("summary.json", "summary.md"):
                (run / a.eval_dir / stale).unlink()
            w_seconds, w_cpu, w_start, w_end = timed(cmd, env)
            again = {p.name: p.read_bytes() for p in (run / a.eval_dir).iterdir() if p.name in WRITTEN}
            warm = {"seconds": round(w_seconds, 1), "user_cpu_seconds": round(w_cpu, 1),
                    "load_1min": {"start": round(w_start, 2), "end": round(w_end, 2)},
                    "what": "the same copy scored again: its runs/.segment-stats as the cold run left it",
                    "files_identical_to_cold": sorted(written) if again == written else
                    f"DIFFER: {sorted(k for k in written.keys() | again.keys() if written.get(k) != again.get(k))}"}
            load_end = w_end
        if a.keep_summaries:
            a.keep_summaries.mkdir(parents=True, exist_ok=True)
            shutil.copy(run / a.eval_dir / "summary.json", a.keep_summaries / f"summary-{a.label}.json")
    old = json.loads(a.out.read_text()) if a.out.is_file() else {}
    measurements = old.get("measurements", {})
    measurements[a.label] = {"seconds": round(seconds, 1), "user_cpu_seconds": round(cpu, 1),
                             "code": str(a.code), "bootstrap": a.bootstrap,
                             "run": str(a.run), "eval_dir": a.eval_dir,
                             "numba_cache": "fresh, empty" if a.numba_cache is None else a.numba_cache,
                             "blas_preload": os.environ.get("LD_PRELOAD") or "none",
                             "load_1min": {"start": round(load_start, 2), "end": round(load_end, 2)},
                             "header": {**head, "load": {**head.get("load", {}), "end": round(load_end, 2)}}}
    if warm:
        measurements[a.label]["warm"] = warm
    header.write(a.out, head, {"what": "seconds for scripts/eval_report.py to score one real evaluation with "
                                       "an empty per-segment statistics cache (the runs folder holds the run alone; since 2026-12-07 "
                                       "that cache holds semantic similarity's cosines too); under 'warm': "
                                       "the same copy scored again with that cache full",
                               "measurements": measurements})
    print(f"{a.label}: {seconds:.1f} s (load {load_start:.2f} -> {load_end:.2f})"
          + (f"; warm {warm['seconds']} s, files identical: {warm['files_identical_to_cold']}" if warm else "")
          + f"; wrote {a.out}")
    return 0


# what scripts/eval_report.py writes into the evaluation folder
WRITTEN = ("summary.json", "summary.md", "ab.md", "ab.csv", "loss.png", "scores.png", "outputs.jsonl.gz")


def timed(cmd, env) -> tuple[float, float, float, float]:
    """(seconds, user CPU seconds of the command and its processes, 1-minute load before, after)."""
    load_start, cpu_start = os.getloadavg()[0], resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime
    t = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, cwd=REPO)
    seconds = time.perf_counter() - t
    return seconds, resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime - cpu_start, load_start, os.getloadavg()[0]


if __name__ == "__main__":
    sys.exit(main())
