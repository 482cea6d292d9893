"""sacrebleu's TER per-segment statistics, computed by a numba-compiled copy of its algorithm.

sacrebleu's TER (sacrebleu/metrics/lib_ter.py) greedily applies word shifts that lower the
edit distance between the hypothesis and the reference, and every candidate shift costs one
banded Levenshtein distance computed cell by cell in Python: seconds on one looping paragraph.
Here the same search runs compiled, on word ids:

- the band: row i (hypothesis word i) covers columns [floor(i*r) - w, floor(i*r) + w) of the
  reference, r = |ref| / |hyp| (1 for an empty hypothesis), w = 25, or ceil(r/2 + 25) when
  r/2 > 25; the last row covers every column; cells outside stay "infinite" (1e16);
- each cell keeps the first strict minimum of (diagonal: match 0 / substitution 1, from the row
  above: deletion 1, from the left: insertion 1), starting from infinity, so a cell whose options
  are all infinite stays infinite with no operation; column 0 is always a deletion;
- the trace back from the last cell gives the alignment (reference position -> hypothesis
  position) and the error flags of each hypothesis and reference word;
- the candidates: for each hypothesis start, reference start within 50 positions, and each
  common run length 1..10 of words there (in that order), unless the hypothesis words are all
  right, the reference words are all right, or the reference start is aligned inside the run;
  the targets are before the reference start (0 at the beginning) and after each aligned
  position of the run, each distinct one once in a row; a candidate's rank is (edit distance
  gained, length, -start, -target), the first highest kept;
- the search stops at 1000 candidates over all rounds (the round that reaches it applies no
  shift), or when the best gain is not positive; edits = shifts + the final edit distance.

sacrebleu's row cache (rows by hypothesis prefix) is a memo: a row depends only on the words up
to it and the hypothesis length, which shifts keep, so reusing the rows of the longest common
prefix with the current hypothesis gives the same numbers. The tokenisation is sacrebleu's own
(the TER metric's `_preprocess_segment`), the statistics are the pair it extracts per segment
([edits, reference length / 1]); tests/test_fast_ter.py compares them with sacrebleu's on
hand-made cases and real outputs, bench/ter_exact.py on every committed output.

    stats = fast_ter.extract(hyps, refs)      # == TER()._extract_corpus_statistics(hyps, [refs])

Only for the sacrebleu versions compared (TESTED_SACREBLEU); `available()` says whether numba
imports and the version is one of them. Compiled functions are cached on disk (numba cache=True,
next to this file or in numba's user cache folder when that is read-only).
"""

from __future__ import annotations

import numpy as np

TESTED_SACREBLEU = ("2.6.0",)

# Above this many cells (hypothesis x reference words) the matrix is not worth its memory:
# sacrebleu's own code scores the segment.
MAX_CELLS = 25_000_000

_kernel = None
_why_not: str | None = None


def _sacrebleu_version() -> str:
    import sacrebleu

    return sacrebleu.__version__


def available() -> bool:
    """Whether the compiled path can be used: numba imports and sacrebleu is a compared version."""
    return why_not() is None


def why_not() -> str | None:
    """None when available(), else the reason in a sentence."""
    global _why_not
    if _kernel is not None:
        return None
    if _why_not is None:
        version = _sacrebleu_version()
        if version not in TESTED_SACREBLEU:
            _why_not = (f"sacrebleu {version} is not a version olelo/fast_ter.py was compared with "
                        f"({', '.join(TESTED_SACREBLEU)})")
        else:
            try:
                _build()
            except ImportError as e:
                _why_not = f"numba does not import ({e})"
    return _why_not


def _build():
    """The compiled kernel (compiled now, or loaded from numba's disk cache); ImportError without
    numba."""
    global _kernel
    if _kernel is None:
        from olelo import _fast_ter_kernel as k

        k.edits(np.zeros(1, np.int64), np.zeros(1, np.int64))  # compile (or load) now, not mid-run
        _kernel = k.edits
    return _kernel


def words(metric, text: str) -> list[str]:
    """A text's words as sacrebleu's TER metric `metric` splits them (its own tokeniser)."""
    return metric._preprocess_segment(text).split()


def edits(words_hyp: list[str], words_ref: list[str]) -> int:
    """sacrebleu's translation_edit_rate(words_hyp, words_ref)[0], compiled."""
    if not words_ref:
        return len(words_hyp)
    if (len(words_hyp) + 1) * (len(words_ref) + 1) <= MAX_CELLS:
        ids: dict[str, int] = {}
        r = np.array([ids.setdefault(w, len(ids)) for w in words_ref], dtype=np.int64)
        h = np.array([ids.setdefault(w, len(ids)) for w in words_hyp], dtype=np.int64)
        value, status = _build()(h, r)
        if status == 0:
            return int(value)
    # too large, or a cell with no operation on the way (sacrebleu raises there): its own code
    from sacrebleu.metrics.lib_ter import translation_edit_rate

    return translation_edit_rate(words_hyp, words_ref)[0]


def extract(hyps, refs) -> list[list]:
    """TER's per-segment statistics of `hyps` against one reference each, as sacrebleu's
    TER()._extract_corpus_statistics(hyps, [refs]) gives them: [edits, reference length]."""
    from sacrebleu.metrics import TER

    hyps, refs = list(hyps), list(refs)
    if len(hyps) != len(refs):
        raise ValueError(f"{len(hyps)} hypotheses but {len(refs)} references")
    metric = TER()
    out = []
    for hyp, ref in zip(hyps, refs):
        words_ref = words(metric, ref)
        out.append([edits(words(metric, hyp), words_ref), len(words_ref) / 1])
    return out
