"""Scores of translations: chrF++, BLEU and TER (sacrebleu), a paired bootstrap
comparison, output health (loops, length), and readers of hypothesis/reference files.
scripts/score.py is its command line.
"""

from __future__ import annotations

import os
import re
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from sacrebleu.significance import PairedTest

import olelo
from olelo import segment_stats, yardstick

# key -> (label, sacrebleu score name, higher is better)
METRICS = {
    "bleu": ("BLEU", "BLEU", True),
    "chrf": ("chrF++", "chrF2++", True),
    "ter": ("TER", "TER", False),
}
ALPHA = 0.05
# A p-value below ALPHA is called "significant" only on a sample that can carry the call.
# Sentences: the paired bootstrap resamples the test sentences themselves, so it can only
# know the spread of sentences it was shown; on a handful it cannot (4 sentences allow 35
# distinct resamples, and one sentence is a quarter of the corpus score; a model answering
# one fixed sentence to 4 test sentences "beat" the base at p=0.001). 30 is the usual floor
# for a mean of a sample to be read as roughly normal, a rule of thumb, not a theorem.
MIN_SENTENCES = 30
# Resamples: the smallest p sacrebleu can give is 1/(B+1) (20 resamples: 0.048 "beats"
# anything). At 200 that floor is 0.005, a tenth of ALPHA, and the resampling error of a p
# near 0.05 is about ±0.015.
MIN_RESAMPLES = 200
# A loop: a span of 1..LOOP_MAX_WORDS words repeated LOOP_COPIES or more times in a row.
LOOP_MAX_WORDS = 10
LOOP_COPIES = 3
LOOP_DEFINITION = (f"share of outputs in which some span of 1 to {LOOP_MAX_WORDS} words occurs {LOOP_COPIES} or more "
                   "times in a row (lowercased words, punctuation ignored)")
LENGTH_DEFINITION = "characters of all outputs / characters of all references"


def new_metrics() -> dict:
    """Fresh metric objects keyed like METRICS (sacrebleu metrics cache references)."""
    return {k: segment_stats.new_metric(k) for k in METRICS}


# ---------------------------------------------------------------- reading


def read_segments(path, field: str | None = None) -> list[str]:
    """Segments of a text file (one a line) or of one key of a .jsonl file."""
    path = Path(path)
    if not path.is_file():
        raise olelo.UserError(f"{path}: no such file")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise olelo.UserError(f"{path}:{line}: not UTF-8 (byte 0x{data[e.start]:02x})") from None
    if not text:
        raise olelo.UserError(f"{path}: empty file")

    if path.suffix == ".jsonl":
        rows = olelo.read_jsonl(path)
        if not rows:
            raise olelo.UserError(f"{path}: empty file (no JSONL rows)")
        # read_jsonl skips blank lines; map row index back to a line number.
        linenos = [n for n, line in enumerate(text.split("\n"), 1) if line.strip()]
        segments = []
        for row, lineno in zip(rows, linenos):
            value = row.get(field) if isinstance(row, dict) else None
            if not isinstance(value, str):
                what = "has no" if not isinstance(row, dict) or field not in row else "has a non-string"
                raise olelo.UserError(f"{path}:{lineno}: row {what} {field!r} field")
            segments.append(value.rstrip())
        return segments

    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line.rstrip() for line in lines]


def read_pair(hyp, ref=None, field="hypothesis", ref_field="reference") -> tuple[list[str], list[str]]:
    """Hypotheses and references, checked to be the same length. Without `ref`,
    a JSONL `hyp` file supplies its own references."""
    if ref is None:
        if Path(hyp).suffix != ".jsonl":
            raise olelo.UserError(f"{hyp}: a plain-text --hyp needs --ref")
        ref = hyp
    hyps, refs = read_segments(hyp, field), read_segments(ref, ref_field)
    check_lengths(hyp, hyps, ref, refs)
    return hyps, refs


def check_lengths(hyp_path, hyps, ref_path, refs) -> None:
    if len(hyps) != len(refs):
        raise olelo.UserError(
            f"{hyp_path} has {len(hyps)} segments but {ref_path} has {len(refs)}; they must pair line by line"
        )


# ---------------------------------------------------------------- scoring


def score_corpus(hyps: list[str], refs: list[str], metrics=tuple(METRICS)) -> dict:
    """Corpus BLEU, chrF++, TER (or the `metrics` named) with signatures, and per-sentence chrF++."""
    if len(hyps) != len(refs):
        raise ValueError(f"{len(hyps)} hypotheses but {len(refs)} references")
    if not hyps:
        raise ValueError("nothing to score")
    report = {"n_segments": len(hyps)}
    chosen = [k for k in METRICS if k in metrics]
    # every metric's per-segment statistics at once (over the cores; cached: olelo/segment_stats.py)
    segment_stats.active().prefetch([(k, hyps) for k in chosen], refs)
    for key in chosen:
        metric = segment_stats.CachedMetric(key)
        s = metric.corpus_score(hyps, [refs])
        report[key] = {"name": s.name, "score": s.score, "signature": metric.get_signature().format()}
        if key == "bleu":
            report[key]["verbose"] = s._verbose  # n-gram precisions, BP, lengths, as the CLI prints them
    # sacrebleu's sentence chrF++, computed at once (equal to the last bit: tests/test_yardstick.py)
    report["chrf_sentences"] = yardstick.chrf_sentence_scores(hyps, refs).tolist()
    report.update(output_health(hyps, refs))
    return report


def _first_loop(words: list[str], max_words: int, copies: int) -> tuple[int, int] | None:
    """(start, n) of the loop that completes first reading left to right: words[start:start + n]
    `copies` times in a row, n <= max_words; None when there is no loop."""
    for j in range(1, len(words) + 1):  # after the j-th word
        n = loop_ending_at(words, j, max_words, copies)
        if n is not None:
            return j - copies * n, n
    return None


def loop_ending_at(words: list[str], j: int, max_words: int = LOOP_MAX_WORDS, copies: int = LOOP_COPIES):
    """n when words[j - copies * n:j] is one span of n <= max_words words `copies` times in a row
    (the shortest such n), else None: the loop test for the words up to the j-th."""
    for n in range(1, max_words + 1):
        start = j - copies * n
        if start < 0:
            return None
        unit = words[start:start + n]
        if all(words[start + k * n:start + (k + 1) * n] == unit for k in range(1, copies)):
            return n
    return None


def loops(text: str, max_words: int = LOOP_MAX_WORDS, copies: int = LOOP_COPIES) -> bool:
    """True when some span of 1..max_words words occurs `copies` times in a row: for some n,
    word i equals word i + n for (copies - 1) * n positions i in a row (the answer of
    _first_loop, found by whole arrays: tests/test_score.py compares the two)."""
    words = re.findall(r"\w+", text.lower())
    if copies < 2:
        return _first_loop(words, max_words, copies) is not None
    if len(words) < copies:
        return False
    ids: dict[str, int] = {}
    a = np.array([ids.setdefault(w, len(ids)) for w in words])
    for n in range(1, max_words + 1):
        run = (copies - 1) * n
        if copies * n > len(a):
            break
        same = np.concatenate([[0], np.cumsum(a[:-n] == a[n:])])  # positions i with word i == word i + n so far
        if (same[run:] - same[:-run] == run).any():  # `run` of them in a row
            return True
    return False


def cut_loop(text: str, max_words: int = LOOP_MAX_WORDS, copies: int = LOOP_COPIES) -> str:
    """`text` up to the end of a loop's first copy, at the first word where loops() would
    become true (unchanged when it never does). It reads only the words so far, so a decoder
    stopping there makes exactly this output from the same greedy run. Words are lowercased
    one by one (loops() lowercases the whole text), so that the cut can index `text`."""
    spans = [(m.start(), m.end()) for m in re.finditer(r"\w+", text)]
    found = _first_loop([text[a:b].lower() for a, b in spans], max_words, copies)
    return text if found is None else text[:spans[found[0] + found[1] - 1][1]]


def output_health(hyps: list[str], refs: list[str]) -> dict:
    """Loop rate and length ratio (definitions in the module docstring)."""
    looping = sum(loops(h) for h in hyps)
    ref_chars = sum(len(r) for r in refs)
    return {"loop_rate": looping / len(hyps), "loops": looping,
            "length_ratio": sum(len(h) for h in hyps) / ref_chars if ref_chars else None}


@contextmanager
def _sacrebleu_seed(seed: int):
    # PairedTest reads its seed from this variable when it is built, not from an argument.
    old = os.environ.get("SACREBLEU_SEED")
    os.environ["SACREBLEU_SEED"] = str(seed)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("SACREBLEU_SEED", None)
        else:
            os.environ["SACREBLEU_SEED"] = old


def too_small(n_sentences: int, n_samples: int) -> str | None:
    """Why no difference on this sample is called significant, or None where one may be."""
    why = []
    if n_sentences < MIN_SENTENCES:
        why.append(f"{n_sentences} test sentence{'s' if n_sentences != 1 else ''}, fewer than the {MIN_SENTENCES} "
                   "a paired bootstrap needs to know the spread of sentences")
    if n_samples < MIN_RESAMPLES:
        why.append(f"{n_samples} bootstrap resample{'s' if n_samples != 1 else ''}, fewer than {MIN_RESAMPLES} "
                   f"(the smallest p they can give is 1/{n_samples + 1} = {1 / (n_samples + 1):.3f})")
    return None if not why else ("no difference is called significant: " + "; ".join(why)
                                 + " (olelo/scores.py MIN_SENTENCES, MIN_RESAMPLES)")


def compare(base_hyps: list[str], sys_hyps: list[str], refs: list[str], n_samples: int = 1000, seed: int = 12345,
            metrics=tuple(METRICS)) -> dict:
    """Paired bootstrap resampling (sacrebleu --paired-bs) of system vs base on
    `metrics` (default BLEU, chrF++ and TER): scores, bootstrap mean ± 95% CI,
    delta, p-value, verdict. TER is by far the slowest on long segments (minutes for
    a few hundred paragraphs), so secondary comparisons may leave it out.

    sacrebleu's p-value is two-sided (|delta|); the direction comes from delta.
    Where the two scores are identical there is nothing to test: sacrebleu would still
    give p = 1/(n+1) (no resample beats a zero delta), which reads as "significant"
    beside equal numbers, so p_value is None there and the verdict says "identical".

    On too small a sample (too_small(): fewer than MIN_SENTENCES sentences or
    MIN_RESAMPLES resamples) the p-value is kept but nothing is called significant:
    "too_small" says why, and each verdict says "not called".
    """
    if not (len(base_hyps) == len(sys_hyps) == len(refs)):
        raise ValueError(f"lengths differ: base {len(base_hyps)}, system {len(sys_hyps)}, refs {len(refs)}")
    if not isinstance(seed, int) or seed <= 0:
        # sacrebleu runs unseeded when the seed is 0 ("if self._seed"), so results would not repeat.
        raise ValueError(f"seed must be a positive integer, got {seed!r}")
    if n_samples < 1:
        raise ValueError(f"n_samples must be at least 1, got {n_samples}")
    unknown = set(metrics) - set(METRICS)
    if unknown or not metrics:
        raise ValueError(f"metrics must be a non-empty subset of {list(METRICS)}, got {list(metrics)}")
    chosen = {k: segment_stats.CachedMetric(k) for k in METRICS if k in metrics}
    # sacrebleu's own paired test, on the statistics extracted once per system (olelo/segment_stats.py)
    segment_stats.active().prefetch([(k, h) for k in chosen for h in (base_hyps, sys_hyps)], refs)
    with _sacrebleu_seed(seed):
        test = PairedTest(
            [("base", base_hyps), ("system", sys_hyps)],
            {METRICS[k][1]: m for k, m in chosen.items()},
            references=[refs],
            test_type="bs",
            n_samples=n_samples,
        )
    signatures, results = test()

    small = too_small(len(refs), n_samples)
    report = {"test": "paired bootstrap resampling (sacrebleu)", "n_samples": n_samples, "seed": seed,
              "n_sentences": len(refs), "too_small": small, "metrics": {}}
    verdicts = []
    for key, (label, name, higher_better) in METRICS.items():
        if key not in chosen:
            continue
        base, system = results[name]
        delta = system.score - base.score
        p = None if delta == 0 else float(system.p_value)
        significant = p is not None and p < ALPHA and small is None
        winner = None
        if p is None:
            verdicts.append(f"identical {label} scores ({system.score:.2f}): nothing to test")
        elif small:
            verdicts.append(f"not called on {label} (Δ {delta:+.2f}, p={p:.4f}): too small a sample")
        elif significant:
            winner = "system" if (delta > 0) == higher_better else "base"
            loser = "base" if winner == "system" else "system"
            verdicts.append(f"{winner} beats {loser} on {label} (p={p:.4f})")
        else:
            verdicts.append(f"no significant difference on {label} (p={p:.4f})")
        report["metrics"][key] = {
            "name": name,
            "signature": signatures[name].format(),
            "base": {"score": base.score, "mean": float(base.mean), "ci": float(base.ci)},
            "system": {"score": system.score, "mean": float(system.mean), "ci": float(system.ci)},
            "delta": delta,
            "p_value": p,
            "significant": significant,
            "winner": winner,
        }
    if small and any(m["p_value"] is not None for m in report["metrics"].values()):
        verdicts.append(small)
    report["verdicts"] = verdicts
    return report


# ---------------------------------------------------------------- output


def score_report(hyps, refs, path, semsim: bool) -> dict:
    report = {"hyp": str(path), **score_corpus(hyps, refs)}
    if semsim:
        from olelo import semsim as semsim_module

        report.update(semsim_module.semsim_fields(hyps, refs))
    return report


def format_single(report: dict) -> str:
    lines = [f"{report['hyp']}: {report['n_segments']} segments"]
    for key, (label, _, _) in METRICS.items():
        m = report[key]
        lines.append(f"  {label:<7}{m['score']:7.2f}  {m['signature']}")
    lines.append(_format_semsim(report))
    lines.append(_format_health(report))
    return "\n".join(lines)


def _format_health(report: dict) -> str:
    ratio = "–" if report["length_ratio"] is None else f"{report['length_ratio']:.2f}"
    return (f"  loops  {report['loop_rate']:7.3f}  ({report['loops']} of {report['n_segments']}: {LOOP_DEFINITION})\n"
            f"  length {ratio:>7}  ({LENGTH_DEFINITION})")


def _format_semsim(report: dict) -> str:
    if "semsim" not in report:
        return "  semsim    (skipped: --no-semsim)"
    if report["semsim"] is None:
        return f"  semsim    unavailable: {report['semsim_unavailable']}"
    return f"  semsim {report['semsim']:7.4f}  {report['semsim_model']}"


def format_comparison(out: dict) -> str:
    cmp = out["comparison"]
    lines = [
        f"base:   {out['base']['hyp']}",
        f"system: {out['system']['hyp']}",
        f"{out['system']['n_segments']} segments; paired bootstrap, {cmp['n_samples']} resamples, seed {cmp['seed']}",
        "",
        f"{'metric':<8}{'base (mean ± 95% CI)':>24}{'system (mean ± 95% CI)':>26}{'delta':>9}{'p':>9}",
    ]
    for key, (label, _, _) in METRICS.items():
        m = cmp["metrics"][key]
        b, s = m["base"], m["system"]
        lines.append(
            f"{label:<8}{_with_ci(b):>24}{_with_ci(s):>26}{m['delta']:>+9.2f}"
            f"{'–' if m['p_value'] is None else format(m['p_value'], '.4f'):>9}"
        )
    lines.append("")
    lines += cmp["verdicts"]
    lines.append("")
    lines.append("semsim: base " + _format_semsim(out["base"]).split(None, 1)[1])
    lines.append("      system " + _format_semsim(out["system"]).split(None, 1)[1])
    for key, label in (("loop_rate", "loops"), ("length_ratio", "length")):
        b, s = out["base"][key], out["system"][key]
        lines.append(f"{label}: base {b if b is None else round(b, 3)}, system {s if s is None else round(s, 3)}")
    lines.append(f"  (loops: {LOOP_DEFINITION}; length: {LENGTH_DEFINITION})")
    lines.append("signatures:")
    for key, (label, _, _) in METRICS.items():
        lines.append(f"  {label:<7}{cmp['metrics'][key]['signature']}")
    return "\n".join(lines)


def p_note(m: dict | None, digits: int = 2) -> str:
    """' (p=0.012*)' for a metric of compare(), or '' where no p-value belongs: none was
    computed (identical scores) or the scores look identical at the precision shown."""
    if not m or m.get("p_value") is None:
        return ""
    base, system = (m.get("base") or {}).get("score"), (m.get("system") or {}).get("score")
    if base is not None and system is not None and round(base, digits) == round(system, digits):
        return ""
    return f" (p={m['p_value']:.3f}{'*' if m.get('significant') else ''})"


def _with_ci(r: dict) -> str:
    return f"{r['score']:.2f} ({r['mean']:.2f} ± {r['ci']:.2f})"
