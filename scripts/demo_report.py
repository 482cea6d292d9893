"""The end of `make demo`: what its numbers mean, what the recipe gives on a real run (read
from the lab's committed record), and what the demo cost: its time, its downloads and what
it leaves on disk (measured now, not quoted).

    python scripts/demo_report.py --eval-dir runs/demo/latest/eval-n8-mt40
        [--started-file runs/demo/.demo-started] [--cache models/.cache] [--disk PATH ...]

--started-file holds "<epoch seconds> <built|reused>" (make demo writes it first): the
time since, and whether the model was built in this demo. --disk: the folders the demo
wrote (each counted once, hard links once, symbolic links not followed inside them).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import olelo
from olelo.demo import cost_section, demo_section, recipe_section


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--eval-dir", required=True, help="the demo's evaluation folder (its summary.json)")
    p.add_argument("--started-file", type=Path, help="'<epoch seconds> <built|reused>', written as the demo began")
    p.add_argument("--cache", type=Path, default=Path("models/.cache"), help="where base-model keeps its wheels")
    p.add_argument("--disk", type=Path, nargs="*", default=[], help="folders the demo wrote, to measure")
    p.add_argument("--root", type=Path, default=Path("."), help="the checkout holding runs/ (default: .)")
    a = p.parse_args(argv)
    summary_path = Path(a.eval_dir) / "summary.json"
    summary = olelo.read_json(summary_path, "evaluation summary")
    out = demo_section(summary) + [""] + recipe_section(a.root) + [""] + cost_section(a.started_file, a.cache, a.disk)
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    olelo.run_main(main)
