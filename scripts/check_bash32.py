"""Check that the Makefile and the shell scripts run on a stock Mac: GNU Make 3.81
and /bin/bash 3.2 (what macOS ships; most users never install others).

    .venv/bin/python scripts/check_bash32.py                 # the repo's Makefile, *.sh, .ci/run
    .venv/bin/python scripts/check_bash32.py Makefile x.sh   # given files

Prints one line per finding (`file:line: what; instead: ...`) and exits 1 when
there is any, 0 when clean. Three kinds of findings:

- bash-4-only syntax, in recipes, in Make variables that end up in recipes and in
  shell scripts: associative arrays, case conversion `${x,,}` `${x^^}`,
  `mapfile`/`readarray`, `|&`, `;&`/`;;&`, `coproc`, globstar `**`, negative array
  indices, namerefs, `${x@Q}`, `&>>`, `{1..9..2}`, `wait -n`, `[[ -v`, `{fd}>`, ...
- Make features newer than 3.81: grouped targets `&:`, `.ONESHELL`, `$(file ...)`,
  `!=`, `::=`, `undefine`, `private`, `define X =`, `.RECIPEPREFIX`, `load`, ...
- recipe lines that would hide a failure under 3.81, which ignores `.SHELLFLAGS`
  and runs each line with plain `bash -c`: a line that pipes must set `pipefail`
  and a line that chains commands with `;` must start with `set -e`.

A grep, not a parser: a line may opt out with a trailing `# bash32: ok` comment
that says why.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from olelo.bash32 import check, default_files

REPO = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("files", nargs="*", type=Path,
                        help="Makefile(s) (*.mk or named Makefile) and shell scripts; default: the repo's")
    args = parser.parse_args(argv)
    files = args.files or default_files(REPO)
    for path in files:
        if not path.is_file():
            print(f"error: {path}: no such file", file=sys.stderr)
            return 2
    findings = check(files)
    for line in findings:
        print(line)
    if findings:
        print(f"{len(findings)} finding(s): this would break or hide failures under Make 3.81 / bash 3.2 (macOS)",
              file=sys.stderr)
        return 1
    print(f"ok: {len(files)} file(s) use nothing newer than GNU Make 3.81 and bash 3.2", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
