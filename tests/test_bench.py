"""bench/: Make-driven benchmarks at its top, one-off campaigns in bench/campaigns/,
fixture generators beside their fixtures; every result file opens with the same
header, and its "how to reproduce" uses this repo, not one borrowed machine."""

import json
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
from olelo import header

RESULTS = sorted((REPO / "bench" / "results").glob("*.json"))
BORROWED = re.compile(r"/root/|/work/\.device|\.gpu-[a-z]|/tmp/olelo")


def test_top_level_bench_scripts_are_the_make_driven_ones():
    makefile = (REPO / "Makefile").read_text()
    top = {p.name for p in (REPO / "bench").glob("*.py")} - {"header.py"}
    assert top, "no benchmark at bench/'s top"
    for name in top:
        assert f"bench/{name}" in makefile, f"bench/{name} has no make target: move it to bench/campaigns/"
    for p in (REPO / "bench" / "campaigns").iterdir():
        assert f"bench/campaigns/{p.name}" not in makefile, f"{p.name} is run by make: move it to bench/"


@pytest.mark.parametrize("path", RESULTS, ids=lambda p: p.name)
def test_every_result_file_has_the_common_header(path):
    head = json.loads(path.read_text())["header"]
    assert set(header.FIELDS) <= set(head), sorted(set(header.FIELDS) - set(head))
    assert head["command"] and head["reproduce"] and head["machine"]
    if head["commit"] is None or head["date"] is None or head["load"] is None:
        assert "not recorded" in head.get("note", "") or "not measured" in head.get("note", ""), \
            "a missing field needs a note saying why"
    assert not BORROWED.search(head["reproduce"]), f"reproduce names a borrowed machine's path: {head['reproduce']}"


def test_header_records_what_ran_where_and_under_what_load(tmp_path):
    head = header.start("make bench-eval MODEL=m", argv=["bench/eval_speed.py", "--n", "2"])
    assert head["command"].endswith("bench/eval_speed.py --n 2")
    assert re.fullmatch(r"[0-9a-f]{40}", head["commit"]) and isinstance(head["dirty"], bool)
    assert re.match(r"\d{4}-\d\d-\d\dT", head["date"]) and "cores" in head["machine"]
    header.write(tmp_path / "r.json", head, {"speedup": 2.0})
    written = json.loads((tmp_path / "r.json").read_text())
    assert list(written) == ["header", "speedup"]
    assert set(written["header"]["load"]) == {"start", "end"}
