"""The lab on one page: a static HTML file that opens offline in any browser.

    python scripts/report.py [--runs-dir runs] [--data data] [--out runs/report/index.html] [--no-text]

Sections: the runs (a sortable table, failed and stopped runs marked; click a
header, or open the page as index.html#sort=-tok_per_s), each run's loss curves
(and validation chrF++ when metrics.jsonl has it), each evaluation (the headline
row chosen on validation, every row with its 95 % bootstrap interval, the
checkpoint sweep, and base vs fine-tuned examples, largest differences first, when
the local ab.csv is there), and the data-quality findings (data/interim/**/
*.report.json) and split manifests (data/finetuning/**/manifest.json).

Figures: matplotlib (already a dependency) PNGs inlined as data: URIs, because one
self-contained file opens offline anywhere and needs no JavaScript library vendored.
A Content-Security-Policy in the page makes the browser refuse any outside load.

The page quotes the data (examples, excerpts), so runs/report/ is git-ignored;
--no-text leaves every quoted sentence out: a page you may commit or share.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import olelo
from olelo.report_page import build_page


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs-dir", default=olelo.runs.RUNS_DIR, help="run folders (default: %(default)s)")
    p.add_argument("--data", default="data", help="data folder with interim/ and finetuning/ (default: %(default)s)")
    p.add_argument("--out", default="runs/report/index.html", help="the page to write (default: %(default)s)")
    p.add_argument("--no-text", action="store_true", help="leave out quoted sentences (A/B examples, data excerpts)")
    a = p.parse_args(argv)
    runs_dir = Path(a.runs_dir)
    if not runs_dir.is_dir():
        raise olelo.UserError(f"{runs_dir}: no such folder (train a run first, e.g. make demo)")
    page = build_page(runs_dir, Path(a.data), not a.no_text)
    olelo.atomic_write_text(a.out, page)
    print(f"{a.out}: {len(page) // 1024} KiB; open it in a browser (file://{Path(a.out).resolve()})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    olelo.run_main(main)
