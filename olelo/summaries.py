"""Reading an evaluation's summary.json (scripts/eval_report.py writes it), for the
readers of it: plots.py, report.py, notes_tables.py.

    baselines, ckpts, headline, posthoc = summaries.normalize(summary)

Summaries written before baselines and headlines existed kept `base` among the
checkpoints and named the test-set maxima `best_by`; their `best` row was already
adapters/<stamp>/best, the checkpoint chosen on validation loss, so it is their headline.
"""

from __future__ import annotations


def normalize(summary: dict) -> tuple[dict, dict, dict | None, dict]:
    """(baselines, fine-tuned checkpoints, headline or None, post-hoc test maxima by metric)."""
    baselines = summary.get("baselines") or {"base": summary["checkpoints"]["base"]}
    ckpts = {n: c for n, c in summary["checkpoints"].items() if n not in baselines}
    headline = summary.get("headline")
    if headline is None and "baselines" not in summary and "best" in ckpts:
        headline = {"checkpoint": "best", "iteration": ckpts["best"]["iteration"],
                    "selected_on": "validation (val_loss)"}
    posthoc = (summary.get("test_posthoc") or {}).get("by_metric") or summary.get("best_by") or {}
    posthoc = {m: n for m, n in posthoc.items() if n in ckpts}  # old best_by could name base
    return baselines, ckpts, headline, posthoc


def chrf_vs(row: dict, against: str = "base") -> dict | None:
    """The chrF++ block of a row's paired bootstrap against `against`, if tested."""
    vs = row.get("vs_base") if against == "base" else (row.get("vs_baselines") or {}).get(against)
    return (vs or {}).get("metrics", {}).get("chrf")


def chrf_ci(row: dict) -> float | None:
    """Half-width of the 95 % bootstrap interval of a row's chrF++ (None if not tested)."""
    m = chrf_vs(row)
    return (m.get("system") or {}).get("ci") if m else None


def base_ci(summary: dict) -> float | None:
    """The base row's chrF++ interval, from any comparison against it."""
    for row in list(summary.get("checkpoints", {}).values()) + list(summary.get("baselines", {}).values()):
        m = chrf_vs(row)
        if m and "base" in m:
            return m["base"]["ci"]
    return None
