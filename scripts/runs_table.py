"""Summarize every run folder as one table row, from its manifest and metrics.

    python scripts/runs_table.py [--runs-dir runs] [--format csv|markdown]

Columns: stamp, status, iterations done / planned, the lowest val loss and the
iteration it came at, the checkpoint kept as best/ (its iteration and the validation
criterion that chose it: not always the lowest val loss), median train tok/s over the
run's reports, peak memory (GB), git commit. CSV goes well with csvkit (`make runs` pipes it to csvlook); the
markdown form is what `make notes` puts into RESULTS.md.

Finished runs (finished, stopped-early) come first; the others follow with what they
are: failed, stopped (killed or interrupted: the same command resumes it) or training
(its lock is held now). A run folder whose manifest.json is damaged is skipped with a
warning on stderr, never breaking the table.

The commit column never claims more than the record shows: a commit that is not in
this repository, or none recorded, reads "unknown (...)"; a run trained from a tree
with uncommitted changes reads "<commit> + uncommitted changes".
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import olelo
from olelo.records import COLUMNS, markdown, rows


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs-dir", default=olelo.runs.RUNS_DIR)
    p.add_argument("--format", choices=["csv", "markdown"], default="csv")
    a = p.parse_args()
    table = rows(Path(a.runs_dir))
    if a.format == "markdown":
        sys.stdout.write(markdown(table))
    else:
        w = csv.DictWriter(sys.stdout, fieldnames=COLUMNS, extrasaction="ignore")
        w.writeheader()
        w.writerows(table)
    return 0


if __name__ == "__main__":
    olelo.run_main(main)

