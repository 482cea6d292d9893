"""make rescore on the committed record: the committed no-model baselines table of the dev
test is recomputed from the real data and its numbers must be equal (the tiny-model
evaluation's outputs are rescored in tests/test_eval.py; `make rescore` checks every table,
~3 min each on 2 cores, too long to repeat here)."""

import re
import subprocess

import pytest

import olelo

from conftest import MAKE, REPO, script

COMMITTED = sorted((REPO / "runs" / "baselines").glob("*/summary.json"))


@pytest.mark.slow  # scores 300 paragraphs four ways (semantic similarity included): ~3 min
def test_the_committed_dev_test_baselines_are_reproduced_exactly(shared_data):
    dev = REPO / "runs" / "baselines" / "large-stories" / "summary.json"
    assert dev in COMMITTED
    built = subprocess.run([MAKE, "--no-print-directory", "data", "SPLIT=stories"], cwd=REPO,
                           capture_output=True, text=True)  # the split it was scored on, from the real data
    assert built.returncode == 0, built.stderr[-2000:]
    out = script("rescore.py", dev)
    assert out.returncode == 0, out.stdout + out.stderr[-3000:]
    assert out.stdout.startswith(f"{dev}: ok (")


def test_the_sealed_tables_count_their_looks():
    ledger_lines = (REPO / "runs" / "sealed-ledger.tsv").read_text().splitlines()[1:]
    for path in COMMITTED:
        summary = olelo.read_json(path, "summary")
        if summary["test_set"] == "sealed":
            mine = [line for line in ledger_lines if line.split("\t")[6] == summary["test_sha256"]]
            assert 1 <= summary["sealed_looks"] <= len(mine), path


def test_a_summary_from_before_the_sample_floor_differs_only_where_a_claim_changed():
    from olelo import summary_diff

    vs = {"metrics": {"chrf": {"delta": 1.0, "p_value": 0.01, "significant": True}}, "verdicts": ["x"]}
    old = {"final": {"chrf": 10.0, "vs_base": vs}}
    same = {"final": {"chrf": 10.0, "vs_base": {**vs, "n_sentences": 40, "too_small": None}}}
    assert summary_diff.differences(old, same, "rows") == []  # facts it did not record yet are no difference
    called_off = {"final": {"chrf": 10.0, "vs_base": {
        "metrics": {"chrf": {"delta": 1.0, "p_value": 0.01, "significant": False}}, "verdicts": ["x"],
        "n_sentences": 4, "too_small": "no difference is called significant: 4 test sentences"}}}
    assert summary_diff.differences(old, called_off, "rows") == [
        "rows.final.vs_base.metrics.chrf.significant: committed True, recomputed False"]
    assert summary_diff.differences({**old, "final": {**old["final"], "vs_base": {**vs, "too_small": None}}},
                               called_off, "rows")[-1].startswith("rows.final.vs_base.too_small: committed None")


def test_make_rescore_builds_the_prompts_each_retrieval_augmented_run_was_scored_on(tmp_path):
    def built_k(runs_dir):
        dry = subprocess.run([MAKE, "-n", "--no-print-directory", "rescore", f"RUNS_DIR={runs_dir}"], cwd=REPO,
                             capture_output=True, text=True)
        assert dry.returncode == 0, dry.stderr
        return re.findall(r"data-rag SPLIT=stories RAG_K=(\d+)", dry.stdout)

    plain, rag = tmp_path / "plain", tmp_path / "rag"
    (plain / "large-stories-m-it1-s0").mkdir(parents=True)
    for name in ("rag-k3-stories-m-it1-s0", "rag-k1-stories-m-it1-s0", "rag-k1-stories-m-it1-s1", "large-stories-m"):
        (rag / name).mkdir(parents=True)
    assert built_k(rag) == ["1", "3"]  # each K once
    assert built_k(plain) == []
