"""Compare runs from their kept outputs: recipes' seeds, runs against seeds, run against
run, with Holm's correction over the family (olelo/compare.py says how each is computed).

    python scripts/compare.py --family NAME [--eval eval] RUN RUN ... [--out-dir docs/comparisons]

Writes <out-dir>/NAME.md and NAME.json (with the bench header: command, commit, date,
machine) and prints the table. Every run must have an evaluation folder --eval (default
`eval`) with kept outputs, all on the same test sentences.
"""

from __future__ import annotations

import argparse
import re
import shlex
import sys
from pathlib import Path

import olelo
from olelo.defaults import DEFAULTS
from olelo import compare, header


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", help="run stamps or run folders (two or more)")
    p.add_argument("--family", required=True, help="name of the family of tests (the file name of the result)")
    p.add_argument("--eval", default=DEFAULTS["EVAL_NAME"], help="the evaluation folder of each run (default: %(default)s)")
    p.add_argument("--out-dir", type=Path, default=Path("docs/comparisons"))
    p.add_argument("--bootstrap", type=int, default=DEFAULTS["BOOTSTRAP"], help="paired bootstrap resamples (default: %(default)s)")
    p.add_argument("--seed", type=int, default=12345, help="bootstrap seed (default: %(default)s)")
    a = p.parse_args(argv)
    if len(a.runs) < 2:
        raise olelo.UserError("give two or more runs to compare")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", a.family):
        raise olelo.UserError(f"--family {a.family!r}: letters, digits, . _ - only (it names the result files)")
    if a.bootstrap < 1 or a.seed < 1:
        raise olelo.UserError(f"--bootstrap {a.bootstrap} / --seed {a.seed}: both must be whole numbers >= 1")
    head = header.start(f"make compare FAMILY={a.family} EVAL_NAME={a.eval} RUNS={shlex.quote(' '.join(a.runs))}")
    report = compare.compare(a.runs, a.eval, a.family, a.bootstrap, a.seed,
                             progress=lambda m: print(m, file=sys.stderr))
    text = compare.markdown(report)
    olelo.atomic_write_text(a.out_dir / f"{a.family}.md", text)
    header.write(a.out_dir / f"{a.family}.json", head, report)
    sys.stdout.write(text)
    print(f"wrote {a.out_dir / a.family}.md and .json", file=sys.stderr)
    return 0


if __name__ == "__main__":
    olelo.run_main(main)
