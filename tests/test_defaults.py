"""Each default in one place: olelo/defaults.py. The Makefile keeps its `VAR ?= value`
lines (Make 3.81 reads them without Python); these tests fail when the Makefile's line,
`make help` or a script's --help says another default than the table, or when a script's
--help does not follow the table when it changes (a default written twice)."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from olelo.defaults import DEFAULTS, OPTIONS, SWITCHES

REPO = Path(__file__).resolve().parents[1]
VALUED = sorted(set(DEFAULTS) - set(SWITCHES))


def script_path(name: str) -> Path:
    return REPO / (name if "/" in name else f"scripts/{name}")


def makefile_defaults() -> dict:
    return dict(re.findall(r"^([A-Z][A-Z0-9_]*) \?= *(.*?) *$", (REPO / "Makefile").read_text(), re.M))


def help_entries(text: str) -> dict:
    """--help's options, each entry (its invocation and help) joined into one line, by option string."""
    blocks = []
    for line in text.splitlines():
        if re.match(r"^  -", line):
            blocks.append(line.strip())
        elif blocks and line.startswith("    ") and line.strip():
            blocks[-1] += " " + line.strip()
    return {name: block for block in blocks for name in re.findall(r"(?:^|, )(--?[\w-]+)", block.split("  ")[0])}


def shown_default(entry: str) -> str | None:
    found = re.findall(r"default: ([^\s;)]+)", entry)
    return found[-1] if found else None


def test_every_knob_of_the_table_has_its_makefile_line_and_a_script_option():
    assert set(OPTIONS) == set(DEFAULTS)
    assert set(DEFAULTS) <= set(makefile_defaults()), set(DEFAULTS) - set(makefile_defaults())


@pytest.mark.parametrize("knob", sorted(DEFAULTS))
def test_the_makefile_default_is_the_tables(knob):
    assert makefile_defaults()[knob] == str(DEFAULTS[knob]), \
        f"Makefile: {knob} ?= {makefile_defaults()[knob]}, olelo/defaults.py: {DEFAULTS[knob]!r}; change both"


@pytest.mark.make
def test_make_help_shows_the_tables_defaults(run_make):
    shown = dict(re.findall(r"^  ([A-Z][A-Z0-9_]*) +.*\(default: ([^()]*)\)$", run_make("help").stdout, re.M))
    for knob, value in DEFAULTS.items():
        assert shown.get(knob) == str(value), f"make help: {knob} (default: {shown.get(knob)}), table: {value!r}"


def helps(pythonpath: str) -> dict:
    """Each script's --help, as a user runs it (one line per entry: a wide terminal), with
    olelo imported from `pythonpath`."""
    env = {**os.environ, "COLUMNS": "1000", "PYTHONPATH": pythonpath}
    out = {}
    for name in sorted({s for uses in OPTIONS.values() for s, _ in uses}):
        r = subprocess.run([sys.executable, str(script_path(name)), "--help"], cwd=REPO, env=env,
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr[-2000:]
        out[name] = help_entries(r.stdout)
    return out


@pytest.fixture(scope="module")
def script_help():
    return helps(str(REPO))


# A value no default has: where a script's --help shows it, the script read the table.
SENTINELS = {knob: (7100 + i if isinstance(DEFAULTS[knob], int) else f"t{i}x") for i, knob in enumerate(VALUED)}


@pytest.fixture(scope="module")
def sentinel_help(tmp_path_factory):
    """The scripts' --help with a copy of olelo whose table holds SENTINELS."""
    root = tmp_path_factory.mktemp("sentinel")
    shutil.copytree(REPO / "olelo", root / "olelo", ignore=shutil.ignore_patterns("__pycache__"))
    with open(root / "olelo" / "defaults.py", "a", encoding="utf-8") as f:
        f.write(f"\nDEFAULTS.update({SENTINELS!r})\n")
    return helps(str(root))


@pytest.mark.parametrize("knob", VALUED)
def test_the_scripts_help_shows_the_tables_default(knob, script_help):
    for name, option in OPTIONS[knob]:
        entry = script_help[name].get(option)
        assert entry, f"{name} --help has no {option}"
        assert shown_default(entry) == str(DEFAULTS[knob]), \
            f"{name} --help: {option} shows default {shown_default(entry)}, olelo/defaults.py: {DEFAULTS[knob]!r}"


@pytest.mark.parametrize("knob", VALUED)
def test_the_scripts_take_their_default_from_the_table(knob, sentinel_help):
    for name, option in OPTIONS[knob]:
        shown = shown_default(sentinel_help[name].get(option, ""))
        assert shown == str(SENTINELS[knob]), \
            f"{name} {option}: its default is written in the script ({shown}), not read from olelo/defaults.py"


@pytest.mark.parametrize("knob", SWITCHES)
def test_a_switch_is_off_by_default_everywhere(knob, script_help):
    assert DEFAULTS[knob] == 0, f"{knob}: a switch on by default needs a --no-... option that make passes for 0"
    for name, option in OPTIONS[knob]:
        entry = script_help[name].get(option)
        assert entry, f"{name} --help has no {option}"
        assert entry.split("  ")[0] == option, f"{name} {option}: takes a value; a switch's option is a flag (off)"
