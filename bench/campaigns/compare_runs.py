#!/usr/bin/env python3
# Served NOTES.md: 2026-11-27 (GPU) "Issue 14, third pass"; 2026-11-27 (2 GPUs) "Issue 14, fourth pass".
"""Is a recipe's change bigger than the seed spread? (Campaign-era: it reads the
campaign_scores-*.json of score_campaign_outputs.py. New comparisons: `make compare`, from
the outputs every evaluation now keeps.) Compares runs scored on the same
test set by score_campaign_outputs.py (their campaign_scores-CKPT.json), two ways:

1. Against the seeds: the seed runs' corpus chrF++ give a mean and a standard deviation;
   a run of another recipe is tested as one new draw (t with n-1 degrees of freedom,
   prediction interval: t = (x - mean) / (sd * sqrt(1 + 1/n))). This counts the
   training's randomness, which a test of one run against the base does not.
2. Sentence by sentence against each seed run: paired bootstrap of the mean
   sentence-level chrF++ difference (the sentence scores are stored; the corpus chrF++
   of a resample needs the outputs, which are not kept for every run).

    python bench/campaigns/compare_runs.py --seeds runs/A/eval-mt256 runs/B/eval-mt256 ... \\
        --runs runs/C/eval-mt256 ... [--ckpt final] [--runs-ckpt best] [--out comparison.json]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

import olelo
from olelo import compare


def load(eval_dir: str, ckpt: str) -> dict:
    path = Path(eval_dir) / f"campaign_scores-{ckpt}.json"
    if not path.is_file():
        raise olelo.UserError(f"{path} not found: score the run first "
                              f"(python bench/campaigns/score_campaign_outputs.py {eval_dir} --ckpt {ckpt} --out {path})")
    s = json.loads(path.read_text())["scores"]
    return {"run": Path(eval_dir).parent.name, "chrf": s[ckpt]["chrf"]["score"],
            "sentences": np.array(s[ckpt]["chrf_sentences"]), "base_chrf": s["base"]["chrf"]["score"]}


def paired_bootstrap(a: np.ndarray, b: np.ndarray, samples: int, seed: int) -> tuple[float, float]:
    """(mean of b - a, two-sided p that the difference is 0) over resampled sentences."""
    d = b - a
    idx = np.random.default_rng(seed).integers(0, len(d), size=(samples, len(d)))
    means = d[idx].mean(axis=1)
    tail = min((means <= 0).mean(), (means >= 0).mean())
    return float(d.mean()), float(min(1.0, 2 * tail + 1 / samples))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", nargs="+", required=True, help="eval folders of one recipe's seed runs (two or more)")
    p.add_argument("--runs", nargs="+", required=True, help="eval folders of the runs to compare with them")
    p.add_argument("--ckpt", default="final", help="checkpoint scored (default: final)")
    p.add_argument("--runs-ckpt", help="another checkpoint for --runs (e.g. best where final was not translated)")
    p.add_argument("--runs-are-seeds", action="store_true",
                   help="the --runs are seeds of one other recipe: also test the two recipes' means (two-sample t)")
    p.add_argument("--samples", type=int, default=1000)
    p.add_argument("--seed", type=int, default=12345)
    p.add_argument("--out", help="JSON file to write (default: print only)")
    a = p.parse_args(argv)
    if len(a.seeds) < 2:
        raise olelo.UserError("--seeds needs two or more runs: one run has no spread")
    seeds = [load(d, a.ckpt) for d in a.seeds]
    runs_ckpt = a.runs_ckpt or a.ckpt
    runs = [load(d, runs_ckpt) for d in a.runs]
    n = {len(r["sentences"]) for r in seeds + runs}
    bases = {round(r["base_chrf"], 6) for r in seeds + runs}
    if len(n) != 1 or len(bases) != 1:
        raise olelo.UserError("the runs were not scored on one test set (their sentence counts or base chrF++ differ)")
    chrfs = np.array([s["chrf"] for s in seeds])
    mean, sd = float(chrfs.mean()), float(chrfs.std(ddof=1))
    result = {"ckpt": a.ckpt, "runs_ckpt": runs_ckpt, "seeds": {s["run"]: s["chrf"] for s in seeds},
              "seed_mean": mean, "seed_sd": sd, "runs": []}
    print(f"seeds ({len(seeds)}): chrF++ {', '.join(f'{c:.2f}' for c in chrfs)}; mean {mean:.2f}, sd {sd:.2f}")
    for r in runs:
        t = (r["chrf"] - mean) / (sd * math.sqrt(1 + 1 / len(seeds)))
        row = {"run": r["run"], "chrf": r["chrf"], "delta_vs_seed_mean": r["chrf"] - mean,
               "t": t, "p_vs_seeds": compare.t_two_sided_p(t, len(seeds) - 1), "sentence_tests": {}}
        for s in seeds:
            d, pv = paired_bootstrap(s["sentences"], r["sentences"], a.samples, a.seed)
            row["sentence_tests"][s["run"]] = {"mean_sentence_delta": d, "p": pv}
        result["runs"].append(row)
        tests = "; ".join(f"{v['mean_sentence_delta']:+.2f} (p {v['p']:.3f})" for v in row["sentence_tests"].values())
        print(f"{r['run']}: chrF++ {r['chrf']:.2f}, {row['delta_vs_seed_mean']:+.2f} vs the seeds' mean "
              f"(t {t:.2f}, p {row['p_vs_seeds']:.3f}); sentence chrF++ vs each seed: {tests}")
    if a.runs_are_seeds:
        if len(runs) < 2:
            raise olelo.UserError("--runs-are-seeds needs two or more --runs")
        run_chrfs = np.array([r["chrf"] for r in runs])
        tr = result["two_recipes"] = compare.two_recipes(chrfs, run_chrfs)
        print(f"the --runs as one recipe: mean {run_chrfs.mean():.2f}, "
              f"{tr['delta_of_means']:+.2f} vs the seeds' mean (t {tr['t']:.2f}, {tr['df']} df, p {tr['p']:.3f})")
    if a.out:
        olelo.atomic_write_json(a.out, result)
    return 0


if __name__ == "__main__":
    olelo.run_main(main)
