"""olelo/segment_stats.py: per-segment statistics extracted once (over processes, cached by the
texts' sha256) give sacrebleu's own corpus scores and paired bootstrap, to the last digit."""

import json
import random

import pytest
from sacrebleu.significance import PairedTest

from olelo import scores, segment_stats

WORDS = ("ka mea nui o ke aliʻi the king went to Honolulu and said that he would come back ʻae "
         "aloha Hawaiʻi ka ʻāina o nā kūpuna").split()


def corpus(n=40, seed=0):
    """References, and two systems with loops, empties, punctuation and Hawaiian letters."""
    rng = random.Random(seed)
    refs, a, b = [], [], []
    for i in range(n):
        ref = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 30))) + rng.choice([".", "!", ""])
        words = ref.split()
        hyp_a = " ".join(w for k, w in enumerate(words) if k % 4)
        if i % 5 == 0:  # a loop to a cap
            hyp_a += " " + " ".join(words[:3] * 20)
        hyp_b = "" if i % 7 == 0 else " ".join(reversed(words))
        refs.append(ref)
        a.append(hyp_a)
        b.append(hyp_b)
    return refs, a, b


def sacrebleu_corpus(key, hyps, refs):
    metric = scores.new_metrics()[key]
    s = metric.corpus_score(hyps, [refs])
    return s, metric.get_signature().format()


@pytest.mark.parametrize("jobs", [1, 2])
def test_corpus_scores_equal_sacrebleus_own(jobs):
    refs, a, _ = corpus()
    store = segment_stats.Store(jobs=jobs)
    store_min = segment_stats.MIN_PARALLEL_SEGMENTS
    segment_stats.MIN_PARALLEL_SEGMENTS = 1  # processes even for a small corpus
    try:
        with segment_stats.using(store):
            got = scores.score_corpus(a, refs)
    finally:
        segment_stats.MIN_PARALLEL_SEGMENTS = store_min
    assert store.counts["computed"] == 3
    for key in scores.METRICS:
        want, signature = sacrebleu_corpus(key, a, refs)
        assert got[key]["score"] == want.score, key  # exactly, not approximately
        assert got[key]["signature"] == signature
    assert got["bleu"]["verbose"] == sacrebleu_corpus("bleu", a, refs)[0]._verbose


def test_paired_bootstrap_equals_sacrebleus_own_on_the_texts():
    refs, a, b = corpus(30, seed=1)
    with segment_stats.using(segment_stats.Store(jobs=1)):
        got = scores.compare(a, b, refs, n_samples=200, seed=7)
    with scores._sacrebleu_seed(7):
        test = PairedTest([("base", a), ("system", b)],
                          {scores.METRICS[k][1]: m for k, m in scores.new_metrics().items()},
                          references=[refs], test_type="bs", n_samples=200)
    signatures, results = test()
    for key, (_, name, _) in scores.METRICS.items():
        base, system = results[name]
        m = got["metrics"][key]
        assert m["signature"] == signatures[name].format()
        assert (m["base"]["score"], m["base"]["mean"], m["base"]["ci"]) == (base.score, base.mean, base.ci)
        assert (m["system"]["score"], m["system"]["mean"], m["system"]["ci"]) == \
            (system.score, system.mean, system.ci)
        assert m["p_value"] == float(system.p_value)


def test_each_systems_statistics_are_extracted_once():
    refs, a, b = corpus(20, seed=2)
    store = segment_stats.Store(jobs=1)
    with segment_stats.using(store):
        scores.score_corpus(a, refs)
        scores.compare(a, b, refs, n_samples=50)
        scores.compare(b, a, refs, n_samples=50)
    assert store.counts["computed"] == 6  # 3 metrics x 2 systems, whatever reads them


def test_the_disk_cache_is_read_back_and_never_stale(tmp_path):
    refs, a, b = corpus(15, seed=3)
    first = segment_stats.Store(tmp_path, jobs=1)
    want = first.stats("ter", a, refs)
    assert first.counts["computed"] == 1 and len(list(tmp_path.glob("ter-*.json"))) == 1

    again = segment_stats.Store(tmp_path, jobs=1)
    assert again.stats("ter", a, refs) == want and again.counts == {"computed": 0, "read": 1, "memory": 0}

    changed = list(a)
    changed[4] += " x"  # one output changed: another key, computed afresh
    other = segment_stats.Store(tmp_path, jobs=1)
    assert other.stats("ter", changed, refs) == scores.new_metrics()["ter"]._extract_corpus_statistics(
        changed, [refs])
    assert other.counts["computed"] == 1
    # a reference changed, not an output: another key too
    assert segment_stats.Store(jobs=1).key("ter", a, refs) != segment_stats.Store(jobs=1).key("ter", a, refs[:-1] + ["z"])
    # the boundary between outputs and references cannot be moved without changing the key
    k = segment_stats.Store(jobs=1)
    assert k.key("bleu", ["a b", "c"], ["d", "e"]) != k.key("bleu", ["a", "b c"], ["d", "e"])


def test_a_damaged_cache_entry_is_computed_again(tmp_path):
    refs, a, _ = corpus(10, seed=4)
    want = segment_stats.Store(tmp_path, jobs=1).stats("chrf", a, refs)
    (path,) = tmp_path.glob("chrf-*.json")
    path.write_text('{"key": "chrf-0", "stats": [[1, 2]]')  # cut short
    store = segment_stats.Store(tmp_path, jobs=1)
    assert store.stats("chrf", a, refs) == want and store.counts["computed"] == 1
    assert json.loads(path.read_text())["stats"] == want  # rewritten whole


def test_bad_arguments_are_refused():
    with pytest.raises(Exception, match="jobs=0"):
        segment_stats.Store(jobs=0)
    with pytest.raises(ValueError, match="2 hypotheses but 1 references"):
        segment_stats.Store(jobs=1).stats("bleu", ["a", "b"], ["a"])


def test_a_segment_two_systems_share_is_extracted_once(monkeypatch):
    refs, a, b = corpus(12, seed=5)
    shared = a[:6] + b[6:]  # half of it is a's
    calls = []
    real = segment_stats.extract
    monkeypatch.setattr(segment_stats, "extract", lambda m, h, r: calls.append(len(h)) or real(m, h, r))
    store = segment_stats.Store(jobs=1)
    got = store.prefetch([("ter", a), ("ter", shared)], refs)
    assert sum(calls) == 12 + 6
    assert got[1] == scores.new_metrics()["ter"]._extract_corpus_statistics(shared, [refs])
