# Served NOTES.md: 2026-11-26 (GPU) "Issue 14, second pass"; 2026-11-27 (GPU) "Issue 14, third pass";
#   2026-11-27 (2 GPUs) "Issue 14, fourth pass".
"""The two figures of NOTES.md's issue-14 entries, from the committed run records:

    python bench/campaigns/figures_gemma270m.py [--out docs/figures]

learning_curves.png  validation loss and validation chrF++ against training examples
                     seen, for every large Gemma 3 270M run with validations
                     (runs/{large,large-en-haw,mix-k3}-gemma-3-270m-*/metrics.jsonl)
recipes.png          test chrF++ (95 % bootstrap interval) of the baselines and of each
                     run's evaluated checkpoints, from the campaign scores
                     (runs/*/eval-mt256/campaign_scores-<ckpt>.json, written by
                     score_campaign_outputs.py --out)

Written atomically; reads only committed files, so anyone can redraw them.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
from pathlib import Path

import olelo
from olelo.plots import _figure


def read_metrics(run: Path) -> tuple[list, list]:
    cmd = json.loads((run / "manifest.json").read_text())["mlx_lm_command"]
    batch = int(cmd[cmd.index("--batch-size") + 1])
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if x.strip()]
    val = [r for r in rows if "val_loss" in r]
    return [(r["iteration"] * batch, r["val_loss"]) for r in val], \
        [(r["iteration"] * batch, r["val_chrf"]) for r in val if "val_chrf" in r]


def learning_curves(runs: list[Path]):
    fig = _figure(13, 4.2)
    loss_ax, chrf_ax = fig.subplots(1, 2)
    for i, run in enumerate(runs):
        loss, chrf = read_metrics(run)
        style = dict(marker=".", color=f"C{i % 10}", linestyle=("-", "--", ":")[i // 10 % 3], label=short(run.name))
        loss_ax.plot(*zip(*loss), **style)
        if chrf:
            chrf_ax.plot(*zip(*chrf), **style)
    loss_ax.set(xlabel="training examples seen", ylabel="validation loss", title="Gemma 3 270M, large set")
    chrf_ax.set(xlabel="training examples seen", ylabel="validation chrF++ (VAL_GEN sample)")
    handles, labels = loss_ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="center right", fontsize=6)  # beside the plots, not over them
    fig.tight_layout(rect=(0, 0, 0.76, 1))
    return fig


def chrf_bars(path: Path) -> list[tuple[str, float, float | None]]:
    """(label, chrF++, 95 % half-width) of each system in one campaign_scores-*.json."""
    d = json.loads(path.read_text())
    ckpt = [n for n in d["scores"] if n not in ("base", "copy-source")][0]
    ci = {}
    for pair, c in d["comparisons"].items():
        x, y = pair.split(" vs ")
        m = c["metrics"].get("chrf")
        if m:
            ci.setdefault(x, m["base"]["ci"])
            ci.setdefault(y, m["system"]["ci"])
    stamp = short(path.parent.parent.name)
    return [(f"{stamp} · {n}", d["scores"][n]["chrf"]["score"], ci.get(n))
            for n in ("base", "copy-source", ckpt)]


def short(stamp: str) -> str:
    return stamp.replace("large-gemma-3-270m-", "").replace("-gemma-3-270m-", " ")


def recipes(scored: list[Path]):
    bars, seen = [], set()
    for path in scored:
        for label, value, ci in chrf_bars(path):
            # base and copy-source repeat in each file of a run and in each run of one test set
            key = (label.split(" · ")[1], round(value, 6)) if " · base" in label or " · copy" in label else label
            if key not in seen:
                seen.add(key)
                bars.append((label, value, ci))
    fig = _figure(9, 0.8 + 0.3 * len(bars))
    ax = fig.subplots()
    ys = list(range(len(bars)))
    ax.barh(ys, [b[1] for b in bars], color=["tab:gray" if "base" in b[0] or "copy" in b[0] else "tab:blue"
                                              for b in bars])
    for y, (_, value, ci) in zip(ys, bars):
        if ci:
            ax.plot([value - ci, value + ci], [y, y], color="black", lw=1)
    ax.set_yticks(ys, [b[0] for b in bars], fontsize=7)
    ax.invert_yaxis()
    ax.set(xlabel="test chrF++, 283 pairs of the run's split (whiskers: 95 % bootstrap interval);\n"
                  "base and copy-source once per test set")
    fig.tight_layout()
    return fig


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs-dir", default="runs")
    p.add_argument("--out", default="docs/figures")
    a = p.parse_args(argv)
    runs = sorted(Path(x).parent for prefix in ("large", "large-en-haw", "mix-k3")
                  for x in glob.glob(f"{a.runs_dir}/{prefix}-gemma-3-270m-*/metrics.jsonl"))
    scored = sorted(Path(x) for x in glob.glob(f"{a.runs_dir}/*/eval-mt256/campaign_scores-*.json"))
    if not runs:
        raise olelo.UserError(f"{a.runs_dir}: no large-gemma-3-270m-* runs with metrics.jsonl")
    os.makedirs(a.out, exist_ok=True)
    for name, fig in (("learning_curves.png", learning_curves(runs)), ("recipes.png", recipes(scored) if scored else None)):
        if fig is None:
            continue
        tmp = Path(a.out) / f".{name}.tmp"
        fig.savefig(tmp, format="png", dpi=110)
        os.replace(tmp, Path(a.out) / name)
        print(f"wrote {Path(a.out) / name}")
    return 0


if __name__ == "__main__":
    olelo.run_main(main)
