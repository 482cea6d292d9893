"""bench/campaigns/compare_runs.py: a run against the seed spread, and two recipes' seeds."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from olelo import compare

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "bench/campaigns/compare_runs.py"


@pytest.mark.parametrize("df,t,p", [(1, 12.706, 0.05), (2, 4.303, 0.05), (3, 3.182, 0.05), (4, 2.776, 0.05),
                                    (4, 4.604, 0.01), (10, 2.228, 0.05), (30, 2.750, 0.01)])
def test_t_sf_matches_tables(df, t, p):
    assert compare.t_two_sided_p(t, df) == pytest.approx(p, abs=5e-4)
    assert compare.t_two_sided_p(-t, df) == compare.t_two_sided_p(t, df)


def test_two_recipes_is_the_pooled_t_test():
    a, b = np.array([24.63, 25.27, 24.50]), np.array([26.06, 25.80, 25.40])
    sp = ((2 * a.var(ddof=1) + 2 * b.var(ddof=1)) / 4) ** 0.5
    got = compare.two_recipes(a, b)
    assert got["df"] == 4 and got["t"] == pytest.approx((b.mean() - a.mean()) / (sp * (2 / 3) ** 0.5))
    assert got["delta_of_means"] == pytest.approx(b.mean() - a.mean()) and 0 < got["p"] < 0.05


def write_scores(eval_dir: Path, ckpt: str, sentences: list, base_chrf: float = 17.7):
    eval_dir.mkdir(parents=True)
    scores = {"base": {"chrf": {"score": base_chrf}},
              ckpt: {"chrf": {"score": float(np.mean(sentences))}, "chrf_sentences": sentences}}
    (eval_dir / f"campaign_scores-{ckpt}.json").write_text(json.dumps({"scores": scores}))


def test_cli_runs_ckpt_two_recipes_and_a_test_set_mismatch(tmp_path):
    rng = np.random.default_rng(0)
    base = rng.uniform(10, 40, 50)
    seeds = [tmp_path / f"runs/seed {i}/eval-mt256" for i in range(3)]
    for i, d in enumerate(seeds):
        write_scores(d, "final", list(base + 0.3 * i))
    others = [tmp_path / f"runs/other's {i}/eval-mt256" for i in range(2)]
    for i, d in enumerate(others):
        write_scores(d, "best", list(base + 3 + 0.2 * i))
    out = tmp_path / "cmp.json"
    cmd = [sys.executable, str(SCRIPT), "--seeds", *map(str, seeds), "--runs", *map(str, others)]
    p = subprocess.run(cmd + ["--runs-ckpt", "best", "--runs-are-seeds", "--out", str(out)],
                       capture_output=True, text=True, cwd=REPO)
    assert p.returncode == 0, p.stderr
    got = json.loads(out.read_text())
    assert got["runs_ckpt"] == "best" and got["two_recipes"]["df"] == 3
    assert got["runs"][0]["run"] == "other's 0" and got["runs"][0]["delta_vs_seed_mean"] == pytest.approx(2.7)
    assert all(v["p"] <= 0.002 for v in got["runs"][0]["sentence_tests"].values())
    # without --runs-ckpt the runs' final scores are looked for, and their absence is said
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    assert p.returncode == 2 and "campaign_scores-final.json not found" in p.stderr
    write_scores(tmp_path / "runs/elsewhere/eval-mt256", "final", list(base[:40]))
    p = subprocess.run(cmd[:-2] + [str(tmp_path / "runs/elsewhere/eval-mt256")], capture_output=True, text=True,
                       cwd=REPO)
    assert p.returncode == 2 and "not scored on one test set" in p.stderr
