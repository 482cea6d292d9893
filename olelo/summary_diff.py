"""Where a recomputed evaluation summary differs from the committed one (scripts/rescore.py,
`make rescore`): every number must be equal to the last bit, semantic similarity within
SEMSIM_TOLERANCE.

    summary_diff.differences(committed_rows, recomputed_rows, "rows")   # ["rows.best.chrf: committed ..."]
    summary_diff.count_numbers(recomputed_rows)                          # how many numbers were checked
"""

from __future__ import annotations

# Per-sentence scores are not compared one by one (the totals they make are).
SKIP_KEYS = {"chrf_sentences"}
# Facts a comparison has recorded since (the sample size and why it was too small to call a
# difference): a summary written before them lacks them, which is no difference in a number.
# What they change (a "significant" no longer called) is still compared and reported.
LATER_KEYS = {"n_sentences", "too_small"}
# Semantic similarity runs a float32 model: another BLAS (OpenBLAS preloaded or not) changes
# its last digits (1e-7 seen). Every other number must be equal to the last bit.
SEMSIM_TOLERANCE = 1e-5


def differences(committed, recomputed, where: str) -> list[str]:
    """Every place where recomputed differs from committed (keys recomputed only)."""
    if isinstance(recomputed, dict) and isinstance(committed, dict):
        out = []
        for k, v in recomputed.items():
            if k in SKIP_KEYS:
                continue
            if k not in committed and k in LATER_KEYS:
                continue
            if k not in committed:
                out.append(f"{where}.{k}: not in the committed summary")
            else:
                out += differences(committed[k], v, f"{where}.{k}")
        return out
    if where.endswith(".semsim") and isinstance(committed, float) and isinstance(recomputed, float):
        if abs(committed - recomputed) <= SEMSIM_TOLERANCE:
            return []
    if committed != recomputed:
        return [f"{where}: committed {committed!r}, recomputed {recomputed!r}"]
    return []


def count_numbers(x) -> int:
    if isinstance(x, dict):
        return sum(count_numbers(v) for k, v in x.items() if k not in SKIP_KEYS)
    if isinstance(x, list):
        return sum(count_numbers(v) for v in x)
    return int(isinstance(x, (int, float)) and not isinstance(x, bool))
