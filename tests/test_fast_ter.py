"""olelo/fast_ter.py: TER's per-segment statistics from the numba kernel equal sacrebleu's own,
value and type, on hand-made tricky cases, seeded random ones and real committed outputs
(the full comparison over every committed output is bench/ter_exact.py)."""

import gzip
import json
import random
from pathlib import Path

import pytest
from sacrebleu.metrics import TER, lib_ter

from olelo import _fast_ter_kernel as kernel
from olelo import fast_ter, segment_stats

REPO = Path(__file__).resolve().parent.parent


def sacrebleu_stats(hyps, refs):
    return TER()._extract_corpus_statistics(list(hyps), [list(refs)])


def assert_same(hyps, refs):
    want = sacrebleu_stats(hyps, refs)
    got = fast_ter.extract(hyps, refs)
    for i, (w, g) in enumerate(zip(want, got)):
        assert g == w and [type(x) for x in g] == [type(x) for x in w], (i, hyps[i][:80], refs[i][:80], w, g)
    assert len(got) == len(want)


def test_the_kernel_uses_sacrebleus_limits():
    assert fast_ter.available(), fast_ter.why_not()
    assert (kernel.MAX_SHIFT_SIZE, kernel.MAX_SHIFT_DIST, kernel.BEAM_WIDTH, kernel.MAX_SHIFT_CANDIDATES,
            int(kernel.INF)) == (lib_ter._MAX_SHIFT_SIZE, lib_ter._MAX_SHIFT_DIST, lib_ter._BEAM_WIDTH,
                                 lib_ter._MAX_SHIFT_CANDIDATES, lib_ter._INT_INFINITY)
    assert (lib_ter._COST_INS, lib_ter._COST_DEL, lib_ter._COST_SUB) == (1, 1, 1)


def words(n, prefix="w"):
    return [f"{prefix}{i}" for i in range(n)]


def tricky_cases():
    ref60 = words(60)
    cases = [
        ("", ""), ("", "a b c"), ("a b c", ""), ("a", "a"), ("a", "b"), ("   ", "a"),
        ("a a a a a a", "a"), ("a", "a a a a a a"), ("the the the cat", "the cat the the"),
        ("c d a b", "a b c d"), ("b a", "a b"), ("e f g a b c d", "a b c d e f g"),
        # a block of 10 and of 11 words moved (the longest shift is 10 words)
        (" ".join(words(10, "x") + words(20)), " ".join(words(20) + words(10, "x"))),
        (" ".join(words(11, "x") + words(20)), " ".join(words(20) + words(11, "x"))),
        # a block moved 50 and 51 positions (the farthest shift start is 50 away)
        (" ".join(ref60[50:55] + ref60[:50] + ref60[55:]), " ".join(ref60)),
        (" ".join(ref60[51:56] + ref60[:51] + ref60[56:]), " ".join(ref60)),
        # lengths far apart: the beam widens (ref/hyp / 2 > 25) and narrows
        ("a b", " ".join(words(200))), (" ".join(words(300)), "w1 w2 w3"),
        (" ".join(words(3) * 90), " ".join(words(120))),
        # loops to a cap; the first reaches the 1000-candidate limit
        (" ".join("a b c d".split() * 15), " ".join("d c b a".split() * 10)),
        (" ".join(("ka mea nui o ke aliʻi".split()) * 40), "ka mea nui o ke aliʻi i hele i Honolulu"),
        (" ".join(("he said that he would come".split()) * 35),
         "he said that he would come back , and he came back the next day ."),
        # Hawaiian letters, punctuation, case (TER's tokeniser: case-insensitive, punctuation kept)
        ("Aloha ʻoe , e ka ʻāina o nā kūpuna !", "aloha ʻOe, e ka ʻāina o na kupuna!"),
        ("Hawaiʻi nei. “Pehea?” wahi a Kamehameha", "“Pehea?” wahi a Kamehameha. Hawaiʻi nei"),
        ("ʻaʻole ʻaʻole ʻaʻole", "ʻAʻole, ʻaʻole."), ("... --- !!!", "?"), ("a\tb\nc", "a b c"),
    ]
    return [h for h, _ in cases], [r for _, r in cases]


def test_hand_made_cases_equal_sacrebleus():
    hyps, refs = tricky_cases()
    assert_same(hyps, refs)


def test_the_loop_cases_reach_the_candidate_limit(monkeypatch):
    """The loop cases above do exercise the 1000-candidate limit in sacrebleu's own search."""
    calls = []
    original = lib_ter.BeamEditDistance

    class Counting(original):
        def __call__(self, words_hyp):
            calls.append(1)
            return super().__call__(words_hyp)

    monkeypatch.setattr(lib_ter, "BeamEditDistance", Counting)
    hyps, refs = tricky_cases()
    i = next(k for k, h in enumerate(hyps) if h.startswith("a b c d a b c d"))
    sacrebleu_stats([hyps[i]], [refs[i]])
    assert len(calls) > lib_ter._MAX_SHIFT_CANDIDATES


def test_seeded_random_cases_equal_sacrebleus():
    rng = random.Random(28)
    vocab = "a b c d ka mea ʻāina nui , . !".split()
    hyps, refs = [], []
    for i in range(150):
        ref = [rng.choice(vocab[:rng.randint(2, len(vocab))]) for _ in range(rng.randint(0, 25))]
        hyp = [rng.choice(vocab[:rng.randint(2, len(vocab))]) for _ in range(rng.randint(0, 30))]
        if i % 3 == 0:  # the reference's words in another order: shifts pay
            hyp = ref[:]
            rng.shuffle(hyp)
        if i % 10 == 0:  # a loop
            hyp += hyp[:3] * rng.randint(1, 8)
        hyps.append(" ".join(hyp))
        refs.append(" ".join(ref))
    assert_same(hyps, refs)


EVAL = REPO / "runs" / "large-stories-gemma-3-270m-it600-bs8-lr0.0001-r8-gc-s0" / "eval-mt256"


def committed_pairs(eval_dir: Path):
    """{system: [(hypothesis, reference)]} of a committed evaluation; skipped when its test set
    is not built here (or is not the file it scored)."""
    from olelo import evaluation
    import olelo

    summary = json.loads((eval_dir / "summary.json").read_text())
    test_file = REPO / summary["test_data"]
    if not test_file.is_file() or olelo.sha256_file(test_file) != summary.get("test_sha256"):
        pytest.skip(f"{test_file} is not built here (or differs from the scored one): make data SPLIT=stories")
    rows: dict[str, list[dict]] = {}
    for line in gzip.decompress((eval_dir / "outputs.jsonl.gz").read_bytes()).decode("utf-8").splitlines():
        row = json.loads(line)
        rows.setdefault(row["system"], []).append(row)
    first = next(iter(rows.values()))
    pairs = evaluation.pairs_of(evaluation.test_records(test_file, [r["id"] for r in first]))
    return {n: [(r["hypothesis"], p["target"]) for r, p in zip(rs, pairs)] for n, rs in rows.items()}


def test_real_outputs_equal_sacrebleus():
    """A fixed subset of a committed evaluation: its first segments, and the looping ones."""
    pairs = committed_pairs(EVAL)
    chosen = pairs["final"][:4] + pairs["base"][:2]
    # a looping output against a paragraph (not the costliest for sacrebleu)
    loops = sorted(pairs["final"], key=lambda p: -len(p[0].split()) * len(p[1].split()))
    chosen += [loops[45]]
    assert_same([h for h, _ in chosen], [r for _, r in chosen])


def test_segment_stats_takes_the_compiled_path(monkeypatch):
    hyps, refs = tricky_cases()
    seen = []
    real = fast_ter.extract
    monkeypatch.setattr(fast_ter, "extract", lambda h, r: seen.append(len(h)) or real(h, r))
    got = segment_stats.extract("ter", hyps, refs)
    assert seen == [len(hyps)]
    assert got == sacrebleu_stats(hyps, refs)


def test_an_untested_sacrebleu_keeps_its_own_code_and_says_so_once(monkeypatch, capsys):
    monkeypatch.setattr(fast_ter, "_kernel", None)
    monkeypatch.setattr(fast_ter, "_why_not", None)
    monkeypatch.setattr(fast_ter, "TESTED_SACREBLEU", ("0.0.0",))
    monkeypatch.setattr(segment_stats, "_fast_ter_said", [False])
    monkeypatch.setattr(fast_ter, "extract", lambda h, r: pytest.fail("the compiled path was taken"))
    hyps, refs = ["c d a b", "a"], ["a b c d", "a b"]
    assert segment_stats.extract("ter", hyps, refs) == sacrebleu_stats(hyps, refs)
    segment_stats.extract("ter", hyps, refs)
    err = capsys.readouterr().err
    assert err.count("TER uses sacrebleu's own code") == 1 and "0.0.0" in err


def kernel_alignment(words_hyp, words_ref):
    """(distance, alignment, hypothesis errors, reference errors) of the kernel's edit distance."""
    import numpy as np

    ids: dict[str, int] = {}
    r = np.array([ids.setdefault(w, len(ids)) for w in words_ref], dtype=np.int64)
    h = np.array([ids.setdefault(w, len(ids)) for w in words_hyp], dtype=np.int64)
    n, m = len(h), len(r)
    lo, hi = kernel.bands(n, m)
    V, O = np.empty((n + 1, m + 1), np.int64), np.empty((n + 1, m + 1), np.uint8)
    V[0, :], O[0, :] = np.arange(m + 1), kernel.INS
    kernel.fill(V, O, h, r, lo, hi, 1)
    align, hyp_err, ref_err = np.empty(m, np.int64), np.zeros(n, np.int64), np.zeros(m, np.int64)
    assert kernel.alignment(O, lo, hi, n, m, align, hyp_err, ref_err, np.empty(n + m, np.uint8))
    return int(V[n, m]), align.tolist(), hyp_err.tolist(), ref_err.tolist()


def test_the_edit_distance_and_its_alignment_equal_sacrebleus():
    """The trace's tie rules matter only through the alignment the shift search reads: compare
    it, for every case above, with sacrebleu's (its trace, flipped, as _shift reads it)."""
    hyps, refs = tricky_cases()
    rng = random.Random(7)
    vocab = "a b c d e".split()
    for _ in range(300):
        hyps.append(" ".join(rng.choice(vocab) for _ in range(rng.randint(0, 40))))
        refs.append(" ".join(rng.choice(vocab) for _ in range(rng.randint(1, 40))))
    metric = TER()
    for hyp, ref in zip(hyps, refs):
        wh, wr = fast_ter.words(metric, hyp), fast_ter.words(metric, ref)
        if not wr:
            continue
        distance, trace = lib_ter.BeamEditDistance(wr)(wh)
        align, ref_err, hyp_err = lib_ter.trace_to_alignment(lib_ter._flip_trace(trace))
        want = (distance, [align[k] for k in range(len(wr))], hyp_err, ref_err)
        assert kernel_alignment(wh, wr) == want, (hyp[:60], ref[:60])
