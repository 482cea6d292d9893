"""Figures shared by eval_report.py (PNG files beside a summary) and report.py
(inlined into the HTML page), so both show the same picture of the same numbers:

    loss_figure(metrics, title)   train/val loss against iteration, and validation
                                  chrF++ on a second axis when metrics.jsonl has it
    sweep_figure(summary, title)  test chrF++ of every evaluated checkpoint with its
                                  95 % bootstrap interval; base, copy-source and
                                  few-shot baselines as horizontal lines
    png_bytes(fig)                the figure as PNG bytes

matplotlib's object API (no pyplot): no global state, no display needed.
"""

from __future__ import annotations

import io

from olelo.summaries import base_ci, chrf_ci, normalize


def _figure(width=7.0, height=3.6):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height))


def png_bytes(fig, dpi: int = 100) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def loss_figure(metrics: list[dict], title: str):
    fig = _figure()
    ax = fig.subplots()
    for kind, key in (("train", "train_loss"), ("val", "val_loss")):
        pts = [(m["iteration"], m[key]) for m in metrics if m.get("type") == kind and m.get(key) is not None]
        if pts:
            ax.plot(*zip(*pts), marker="o", ms=3, label=f"{kind} loss")
    ax.set(xlabel="iteration", ylabel="loss")
    handles, labels = ax.get_legend_handles_labels()
    chrf = sorted((m["iteration"], m["val_chrf"]) for m in metrics if m.get("val_chrf") is not None)
    if chrf:
        ax2 = ax.twinx()
        ax2.plot(*zip(*chrf), color="tab:green", marker="s", ms=3, ls="--", label="val chrF++")
        ax2.set_ylabel("validation chrF++")
        h2, l2 = ax2.get_legend_handles_labels()
        handles, labels = handles + h2, labels + l2
    if handles:
        ax.legend(handles, labels, loc="best", fontsize=8)
    else:
        ax.text(0.5, 0.5, "no metrics recorded", ha="center", va="center", transform=ax.transAxes)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def sweep_figure(summary: dict, title: str):
    baselines, ckpts, head, _ = normalize(summary)
    headline = head and head["checkpoint"]
    fig = _figure()
    ax = fig.subplots()
    seen, pts = set(), []
    # One point per iteration; a numbered checkpoint stands for best/final at its iteration.
    for name, c in sorted(ckpts.items(), key=lambda kv: (kv[1]["iteration"] is None, kv[1]["iteration"] or 0,
                                                         not kv[0].startswith("ckpt-"))):
        if c["iteration"] is None or c["iteration"] in seen:
            continue
        seen.add(c["iteration"])
        pts.append((c["iteration"], c["chrf"], chrf_ci(c) or 0.0))
    if pts:
        xs, ys, es = zip(*pts)
        ax.errorbar(xs, ys, yerr=es, color="tab:red", marker="o", ms=4, capsize=3, label="test chrF++ (95% CI)")
    if headline in ckpts and ckpts[headline]["iteration"] is not None:
        h = ckpts[headline]
        ax.plot([h["iteration"]], [h["chrf"]], marker="*", ms=14, color="gold", mec="black", ls="none",
                label=f"{headline}: chosen on validation")
    styles = {"base": ("black", "-"), "copy-source": ("tab:gray", "--"), "translation-memory": ("tab:green", "-."),
              "length-matched": ("tab:olive", ":")}
    b_ci = base_ci(summary)
    for name, row in baselines.items():
        if name == "empty":  # chrF++ 0 by definition: a line at the axis says nothing
            continue
        color, ls = styles.get(name, ("tab:purple", ":"))
        ax.axhline(row["chrf"], color=color, ls=ls, lw=1, label=f"{name}: {row['chrf']:.2f}")
        if name == "base" and b_ci:
            ax.axhspan(row["chrf"] - b_ci, row["chrf"] + b_ci, color="black", alpha=0.07)
    ax.set(xlabel="iteration", ylabel="chrF++ (test)")
    ax.legend(loc="best", fontsize=8)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig
