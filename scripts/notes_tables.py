"""Rebuild RESULTS.md, the generated tables beside the lab notebook, from the run folders.

    python scripts/notes_tables.py [--out RESULTS.md] [--runs-dir runs]

RESULTS.md holds, for real models first and then, in a section of its own, for the
tiny random-weight stand-in (models/tiny-*: numbers about the pipeline, never about
translation):
  - every run (scripts/runs_table.py), with the commit it ran from, "unknown (...)"
    where the record names none that exists here, "+ uncommitted changes" where the
    tree was dirty;
  - the reference baselines of each test set with no model (runs/baselines, make baselines);
  - every evaluation: its baselines (base, copy-source, base-fewshot), the checkpoint
    chosen on validation ("best", the headline) and, as a post-hoc view, the checkpoint
    with the highest chrF++ on the test set when it is another one (chosen on test: an
    upper bound, not a result), with CIs and p-values from the paired bootstrap.
The memory guidelines between `<!-- memory-guidelines:begin/end -->` are written by
scripts/memory_guidelines.py (`make mem-profile`) and kept as they are here.
The file is rewritten whole: never edit it by hand (NOTES.md is where words go).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import olelo
from olelo.results_tables import build


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="RESULTS.md", help="the generated file (default: %(default)s)")
    p.add_argument("--runs-dir", default=olelo.runs.RUNS_DIR, help="folder of the run records (default: %(default)s)")
    a = p.parse_args(argv)
    out, runs_dir = Path(a.out), Path(a.runs_dir)
    if not runs_dir.is_dir():
        raise olelo.UserError(f"{runs_dir}: no such folder (RUNS_DIR)")
    old = out.read_text(encoding="utf-8") if out.is_file() else ""
    new = build(runs_dir, old)
    if new != old:
        olelo.atomic_write_text(out, new)
    print(f"{out}: {'rebuilt' if new != old else 'unchanged'} from {runs_dir}/")
    return 0


if __name__ == "__main__":
    olelo.run_main(main)
