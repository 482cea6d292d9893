"""A stock Mac has GNU Make 3.81 and bash 3.2: scripts/check_bash32.py catches what
they lack, the repo has none of it, and Make 3.81 reads the Makefile without a warning."""

import os
import subprocess
from pathlib import Path

import pytest

from olelo import bash32

REPO = Path(__file__).resolve().parents[1]
MAKE_381 = Path(os.environ.get("MAKE_381") or REPO.parent / "shared" / "tools" / "make-3.81")

# Each line is bash-4-only and must be caught, in a shell script and in a recipe.
BASH4_LINES = [
    "declare -A colors",
    "local -A seen",
    "typeset -gA map",
    "declare -n ref=x",
    "declare -l lower",
    'echo "${name,,}"',
    "echo ${name^^}",
    "echo ${arr[0],}",
    "echo ${x@Q}",
    "mapfile -t lines < f",
    "readarray lines < f",
    "make 2>&1 |& tee log",
    "case $x in a) echo a ;& b) echo b ;; esac",
    "case $x in a) echo a ;;& b) echo b ;; esac",
    "coproc cat",
    "shopt -s globstar",
    "ls data/**/x.csv",
    "echo ${arr[-1]}",
    "arr[-1]=3",
    "cmd &>> log",
    "for i in {1..10..2}; do :; done",
    "for i in {01..10}; do :; done",
    "wait -n",
    "[[ -v HOME ]] && echo set",
    "exec {fd}>out.txt",
    "printf '%(%F)T' -1",
    "echo $BASHPID",
    "echo $EPOCHSECONDS",
    "read -N 3 x",
]

# bash 3.2 has these: no finding.
BASH32_LINES = [
    "arr=(a b c); echo ${arr[0]} ${#arr[@]} ${!arr[@]}",
    "x+=y; echo ${x:-d} ${x#a} ${x%%b} ${x/a/b} ${x:1:2}",
    "printf -v out %s x",
    "echo $((2**10))",
    "echo '${x,,} is text in single quotes, so is |& and mapfile'",
    'echo "in double quotes too: |& mapfile ;& ${x:-ok}"',
    "cmd >out 2>&1 && echo ok || echo fail",
    "[[ $x == a* ]] && [ -n \"${VAR+set}\" ]",
    "for i in 1 2 3; do echo $i; done",
    "case $x in a) echo a ;; esac",
    "read -r -n 1 x",
    "echo $$ $!",
]

# Make features newer than 3.81.
MAKE4_LINES = [
    "a b &: c\n\ttouch a b",
    ".ONESHELL:",
    "$(file >out,text)",
    "X != date",
    "X ::= 1",
    "undefine X",
    "t: private X := 1",
    "define X =\nfoo\nendef",
    ".RECIPEPREFIX = >",
    "load ext.so",
    "Y := $(let a,1,$(a))",
    "Y := $(intcmp 1,2,lt)",
    ".NOTINTERMEDIATE:",
]

# Recipe lines that hide a failure under 3.81 (no .SHELLFLAGS), and their fixes.
HIDDEN_FAILURES = [
    "\tpython x.py | csvlook",
    "\tfalse; echo done",
    "\t@if true; then false; echo hidden; fi",
    "\tx=$$(a | b) && echo $$x",
    "\tset -e; python x.py | csvlook",
]
SAFE_RECIPES = [
    "\tset -e -o pipefail; python x.py | csvlook",
    "\t@set -eo pipefail; a | b",
    "\tset -e; false; echo never",
    "\ta && b",
    "\ttest -f x || { echo \"error: x; run make\" >&2; exit 2; }",
    "\t@if [ -d x ]; then a; else b; fi",
    "\techo 'a | b; c'",
    "\tcmd || true",
    "\tcmd >log 2>&1",
    "\tpython x.py | csvlook  # bash32: ok (a demonstration)",
]


def findings_for(tmp_path, text, name):
    path = tmp_path / name
    path.write_text(text + "\n")
    return bash32.check([path])


@pytest.mark.parametrize("line", BASH4_LINES)
def test_bash4_syntax_is_caught_in_scripts_and_recipes(tmp_path, line):
    assert findings_for(tmp_path, line, "x.sh"), line
    recipe = "t:\n\tset -e; " + line.replace("$", "$$")
    assert any("bash" in f for f in findings_for(tmp_path, recipe, "Makefile")), line


@pytest.mark.parametrize("line", BASH32_LINES)
def test_bash32_syntax_passes(tmp_path, line):
    assert findings_for(tmp_path, line, "x.sh") == []


@pytest.mark.parametrize("text", MAKE4_LINES)
def test_make_features_newer_than_381_are_caught(tmp_path, text):
    assert findings_for(tmp_path, text, "Makefile"), text


@pytest.mark.parametrize("recipe", HIDDEN_FAILURES)
def test_recipe_lines_that_hide_failures_are_caught(tmp_path, recipe):
    assert findings_for(tmp_path, "t:\n" + recipe, "Makefile"), recipe


@pytest.mark.parametrize("recipe", SAFE_RECIPES)
def test_recipe_lines_that_fail_on_their_own_pass(tmp_path, recipe):
    assert findings_for(tmp_path, "t:\n" + recipe, "Makefile") == [], recipe


def test_the_repo_is_clean():
    out = subprocess.run([str(REPO / ".venv" / "bin" / "python"), "scripts/check_bash32.py"], cwd=REPO,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    files = bash32.default_files(REPO)
    assert REPO / "Makefile" in files and REPO / ".ci" / "run" in files


def test_a_hidden_failure_under_381_is_real():
    # Why the recipe rule exists: bash -c (what 3.81 runs) keeps going after a
    # failed pipe stage; the fixed line does not.
    assert subprocess.run(["bash", "-c", "false | cat"]).returncode == 0
    assert subprocess.run(["bash", "-c", "set -e -o pipefail; false | cat"]).returncode != 0


@pytest.mark.make
def test_make_381_reads_the_makefile_without_warnings():
    if not MAKE_381.is_file():
        if os.environ.get("OLELO_REQUIRE_SHARED_DATA") == "1":
            pytest.fail(f"{MAKE_381} not found")
        pytest.skip(f"{MAKE_381} not found")
    for target in ("help", "setup", "doctor", "data", "tiny-model", "base-model", "train-small", "train-large", "runs",
                   "eval", "mem-profile", "fuse", "upload", "notes", "demo", "test", "test-fast", "bench-eval",
                   "bench-preload", "bench-bucketing"):
        out = subprocess.run([str(MAKE_381), "-n", "--no-print-directory", target, "MODEL=models/tiny-gemma3"],
                             cwd=REPO, capture_output=True, text=True)
        assert "warning" not in out.stderr.lower(), (target, out.stderr)
