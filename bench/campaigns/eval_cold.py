# Served NOTES.md: 2026-12-07 "Can an evaluation be scored in a minute on two cores?".
"""Benchmark: seconds for scripts/eval_report.py to score one real evaluation cold (no cached
per-segment statistics: the run is copied into an empty runs folder first).

    python bench/campaigns/eval_cold.py --run runs/<stamp> --eval-dir eval-mt256 [--from <another checkout>/runs/<stamp>]
        [--bootstrap 1000] [--code DIR] [--numba-cache DIR] [--label after]
        [--out bench/results/eval_cold.json]

--from: where the evaluation's hyps.jsonl files are (they are git-ignored: a run's own checkout
may not have them); the run is copied from there. --code: the checkout whose olelo and
eval_report.py run (default: this one; an older checkout gives the "before" time).
--numba-cache: numba's cache folder for the run (default: a fresh empty one, so the kernel's
compilation is counted). The result is appended to --out under --label, with the load average:
this CPU may be shared. The copied summary.json is kept beside the result's label in
--keep-summaries (optional) so two labels' summaries can be compared.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from olelo import header

REPO = Path(__file__).resolve().parent.parent


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
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "eval_cold.json")
    a = ap.parse_args(argv)
    source = a.source or a.run
    if not (source / a.eval_dir).is_dir():
        raise SystemExit(f"bench/campaigns/eval_cold.py: {source / a.eval_dir} is not a folder")
    head = header.start(f"python bench/campaigns/eval_cold.py --run {a.run} --eval-dir {a.eval_dir} --label {a.label}")
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "runs" / a.run.name
        shutil.copytree(source, run)
        for stale in ("summary.json", "summary.md"):
            (run / a.eval_dir / stale).unlink(missing_ok=True)
        numba_cache = a.numba_cache or str(Path(tmp) / "numba-cache")
        env = {**os.environ, "PYTHONPATH": str(a.code.resolve()), "NUMBA_CACHE_DIR": numba_cache}
        cmd = [sys.executable, str(a.code.resolve() / "scripts" / "eval_report.py"), "--run", str(run),
               "--eval-dir", str(run / a.eval_dir), "--bootstrap", str(a.bootstrap)]
        load_start = os.getloadavg()[0]
        t = time.perf_counter()
        subprocess.run(cmd, env=env, check=True, cwd=REPO)
        seconds = time.perf_counter() - t
        load_end = os.getloadavg()[0]
        if a.keep_summaries:
            a.keep_summaries.mkdir(parents=True, exist_ok=True)
            shutil.copy(run / a.eval_dir / "summary.json", a.keep_summaries / f"summary-{a.label}.json")
    old = json.loads(a.out.read_text()) if a.out.is_file() else {}
    measurements = old.get("measurements", {})
    measurements[a.label] = {"seconds": round(seconds, 1), "code": str(a.code), "bootstrap": a.bootstrap,
                             "run": str(a.run), "eval_dir": a.eval_dir,
                             "numba_cache": "fresh, empty" if a.numba_cache is None else a.numba_cache,
                             "load_1min": {"start": round(load_start, 2), "end": round(load_end, 2)},
                             "header": {**head, "load": {**head.get("load", {}), "end": round(load_end, 2)}}}
    header.write(a.out, head, {"what": "seconds for scripts/eval_report.py to score one real evaluation with "
                                       "an empty per-segment statistics cache", "measurements": measurements})
    print(f"{a.label}: {seconds:.1f} s (load {load_start:.2f} -> {load_end:.2f}); wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
