"""make rescore on the committed record: every committed no-model baselines table is
recomputed from the real data and its numbers must be equal (the tiny-model evaluation's
outputs are rescored in tests/test_eval.py)."""

import subprocess

import pytest

import olelo

from conftest import MAKE, REPO, script

COMMITTED = sorted((REPO / "runs" / "baselines").glob("*/summary.json"))


@pytest.mark.slow  # scores ~300 paragraphs per table (semantic similarity included): minutes
def test_committed_baselines_tables_are_reproduced_exactly(shared_data):
    assert COMMITTED, "no committed runs/baselines/*/summary.json"
    for split in ("paragraphs", "stories"):  # the splits the tables were scored on, rebuilt from the real data
        built = subprocess.run([MAKE, "--no-print-directory", "data", f"SPLIT={split}"], cwd=REPO,
                               capture_output=True, text=True)
        assert built.returncode == 0, built.stderr[-2000:]
    out = script("rescore.py", *COMMITTED)
    assert out.returncode == 0, out.stdout + out.stderr[-3000:]
    assert out.stdout.count(": ok (") == len(COMMITTED)
    looks = [olelo.read_json(p, "summary").get("sealed_looks") for p in COMMITTED]
    assert any(looks), "the sealed test's baselines were scored through the ledger"
