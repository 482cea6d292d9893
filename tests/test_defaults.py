"""Each default in one place: olelo/defaults.py. The Makefile keeps its `VAR ?= value`
lines (Make 3.81 reads them without Python); these tests fail when the Makefile's line,
`make help` or a script's --help says another default than the table."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from olelo.defaults import DEFAULTS, OPTIONS

REPO = Path(__file__).resolve().parents[1]


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


@pytest.fixture(scope="module")
def script_help():
    """Each script's --help, as a user runs it (one line per entry: a wide terminal)."""
    env = {**os.environ, "COLUMNS": "1000"}
    out = {}
    for name in sorted({s for uses in OPTIONS.values() for s, _ in uses}):
        r = subprocess.run([sys.executable, str(REPO / "scripts" / name), "--help"], cwd=REPO, env=env,
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr[-2000:]
        out[name] = help_entries(r.stdout)
    return out


@pytest.mark.parametrize("knob", sorted(DEFAULTS))
def test_the_scripts_help_shows_the_tables_default(knob, script_help):
    for name, option in OPTIONS[knob]:
        entry = script_help[name].get(option)
        assert entry, f"{name} --help has no {option}"
        assert shown_default(entry) == str(DEFAULTS[knob]), \
            f"{name} --help: {option} shows default {shown_default(entry)}, olelo/defaults.py: {DEFAULTS[knob]!r}"
