"""olelo.yardstick: vectorised sentence chrF++ against sacrebleu itself, the two baselines and
the adequacy probes on hand-made tables of known values."""

import builtins
from pathlib import Path

import numpy as np
import pytest
from sacrebleu.metrics import CHRF

import olelo
from olelo import yardstick as Y


TRICKY = [
    "",
    "   ",
    "a",
    "b",
    ".",
    "!?",
    "?",
    "(hi)",
    "hi.",
    "hi",
    "...hi...",
    "Aloha",
    "aloha",
    "ka ka ka ka ka ka",
    "ka",
    "ʻO Kamehameha ka mōʻī o Hawaiʻi.",
    "ʻO Kamehameha ka mōʻi o Hawaii.",
    "mo\u0304\u02bbi\u0304",  # combining macrons
    "the king’s son said: “Ae.”",
    "the king's son said: \"Ae.\"",
    "  a\tb\n c \u00a0d\u2009e  ",
    "a b c d e",
    "1 2 3 4 5 6 7",
    "1234567",
    "𝒜𝒜 b 🌺",
    "abcdefgh",
    "abc",
    "he aha kēia? He aha? — he aha!",
    "the man went to the sea and " * 200,
    "the man went to the sea",
]


def sacrebleu_matrix(hyps, refs):
    metric = CHRF(word_order=2)
    return np.array([[metric.sentence_score(h, [r]).score for r in refs] for h in hyps])


def real_pairs(shared_data, tmp_path):
    """The real Fornander pairs, converted as `make data` converts them: the first 283 as
    'test', the rest as 'train' (shared_data skips without ../shared/data, or fails in CI)."""
    from test_split import convert_real

    pairs = [olelo.record_source_target(r) for r in olelo.read_jsonl(convert_real(shared_data, tmp_path)["large"])]
    return pairs[:283], pairs[283:]


# ---------------------------------------------------------------- chrF++


def test_chrf_words_split_punctuation_as_sacrebleu_does():
    metric = CHRF(word_order=2)
    for text in TRICKY:
        assert Y.chrf_words(text) == metric._remove_punctuation(text), text


def test_pairwise_chrf_equals_sacrebleu_on_the_tricky_table():
    got = Y.pairwise_chrf(TRICKY, TRICKY)
    want = sacrebleu_matrix(TRICKY, TRICKY)
    assert got.shape == (len(TRICKY), len(TRICKY))
    assert np.abs(got - want).max() <= 1e-9
    # the table exercises the edges: empty sides score 0, a text against itself 100
    assert got[0].max() == 0 and got[:, 0].max() == 0
    assert got[2, 2] == 100 and 0 < got[15, 16] < 100


@pytest.mark.parametrize("path", ["sparse", "dense", "elementwise"])
def test_every_counting_path_is_exact(monkeypatch, path):
    # force each way of counting matches in turn, with tiny chunks and blocks
    monkeypatch.setattr(Y, "_PAIRS_PER_CHUNK", 7)
    monkeypatch.setattr(Y, "_COLUMNS_PER_BLOCK", 5)
    if path == "sparse":
        monkeypatch.setattr(Y, "_COST_SPARSE_PAIR", 0.0)
    elif path == "dense":
        monkeypatch.setattr(Y, "_COST_DENSE_CELL", 0.0)
        monkeypatch.setattr(Y, "_COST_DENSE_BUILD", 0.0)
    else:
        monkeypatch.setattr(Y, "_COST_MIN_CELL", 0.0)
        monkeypatch.setattr(Y, "_COST_DENSE_BUILD", 0.0)
    hyps = TRICKY[:-2] + ["ka ka ka wai", "wai wai ka"]
    got = Y.pairwise_chrf(hyps, TRICKY)
    assert np.abs(got - sacrebleu_matrix(hyps, TRICKY)).max() <= 1e-9


def test_chrf_sentence_scores_is_the_diagonal():
    refs = TRICKY[::-1]
    want = [CHRF(word_order=2).sentence_score(h, [r]).score for h, r in zip(TRICKY, refs)]
    assert np.abs(Y.chrf_sentence_scores(TRICKY, refs) - want).max() <= 1e-9
    with pytest.raises(ValueError, match="2 hypotheses but 1 references"):
        Y.chrf_sentence_scores(["a", "b"], ["a"])


def test_pairwise_chrf_equals_sacrebleu_on_real_pairs(shared_data, tmp_path):
    test, train = real_pairs(shared_data, tmp_path)
    rng = np.random.default_rng(7)
    texts = [s for pair in test for s in pair] + [s for pair in train for s in pair]
    hyps = [texts[i] for i in rng.choice(len(texts), 15, replace=False)]
    refs = [texts[i] for i in rng.choice(len(texts), 14, replace=False)]
    assert np.abs(Y.pairwise_chrf(hyps, refs) - sacrebleu_matrix(hyps, refs)).max() <= 1e-9
    # aligned: each test reference against its own source and against another's reference
    hyps = [s for s, _ in test[:100]] + [r for _, r in test[100:200]]
    refs = [r for _, r in test[:100]] + [r for _, r in test[101:201]]
    want = [CHRF(word_order=2).sentence_score(h, [r]).score for h, r in zip(hyps, refs)]
    assert np.abs(Y.chrf_sentence_scores(hyps, refs) - want).max() <= 1e-9


# ---------------------------------------------------------------- baselines

TRAIN_SOURCES = ["ka hale", "ka wai nui", "aloha kakou", "ka wai nui", "aloha kakou e na hoa a pau loa ma keia la"]
TRAIN_TARGETS = ["the house", "the big water", "greetings all", "the big water again", "hello friends, all"]


def test_translation_memory_picks_the_nearest_source_lowest_index_first(monkeypatch):
    def no_reading(*args, **kwargs):
        raise AssertionError("translation_memory read a file")

    monkeypatch.setattr(builtins, "open", no_reading)
    monkeypatch.setattr(olelo, "read_jsonl", no_reading)
    monkeypatch.setattr(Path, "read_text", no_reading)
    tm = Y.translation_memory(["ka wai nui loa", "ka hale"], TRAIN_SOURCES, TRAIN_TARGETS)
    monkeypatch.undo()
    assert tm["index"] == [1, 0]  # sources 1 and 3 tie: the lower index
    assert tm["hypotheses"] == ["the big water", "the house"]
    assert tm["similarity"][1] == 100
    metric = CHRF(word_order=2)
    assert tm["similarity"][0] == pytest.approx(metric.sentence_score("ka wai nui", ["ka wai nui loa"]).score, abs=1e-9)


def test_translation_memory_scores_the_training_source_against_the_test_source():
    metric = CHRF(word_order=2)
    test = "aloha kakou e na hoa"
    as_hyp = [metric.sentence_score(s, [test]).score for s in TRAIN_SOURCES]
    as_ref = [metric.sentence_score(test, [s]).score for s in TRAIN_SOURCES]
    assert np.argmax(as_hyp) != np.argmax(as_ref)  # the orientation matters here
    assert "training source as hypothesis" in Y.TM_SIMILARITY
    assert Y.translation_memory([test], TRAIN_SOURCES, TRAIN_TARGETS)["index"] == [int(np.argmax(as_hyp))]


def test_length_matched_draws_among_the_k_nearest_and_repeats():
    rng = np.random.default_rng(0)
    train = ["x" * int(n) for n in rng.integers(1, 60, 200)]
    targets = [f"t{i}" for i in range(200)]
    test = ["y" * int(n) for n in rng.integers(1, 70, 50)]
    k = 10
    a = Y.length_matched(test, train, targets, seed=3, draw=0, k=k)
    assert a == Y.length_matched(test, train, targets, seed=3, draw=0, k=k)
    assert a != Y.length_matched(test, train, targets, seed=3, draw=1, k=k)
    assert a["hypotheses"] == [targets[i] for i in a["index"]]
    lengths = np.array([len(s) for s in train])
    for t, i in zip(test, a["index"]):
        dist = np.abs(lengths - len(t))
        assert (dist < dist[i]).sum() < k, (t, i)
    # k = 1: the nearest, the lower index among equals
    one = Y.length_matched(["abc", "a" * 9], ["ab", "abcd", "abcdefghij", "abcdefgh"], ["p", "q", "r", "s"], 0, 0, k=1)
    assert one["index"] == [0, 2]


# ---------------------------------------------------------------- probes

REFS = ["The chief went to the sea at dawn.", "Rain fell on the mountain for three days.",
        "Umi built a temple at Waipio.", "They ate fish and poi in the evening.",
        "The canoe was lost in the storm near Kauai."]


def test_own_reference_perfect_system_is_top_everywhere():
    r = Y.own_reference(REFS, REFS, n_boot=50)
    assert r["accuracy"] == 1 and r["mrr"] == 1 and r["ranks"] == [1.0] * 5
    assert r["accuracy_ci"] == [1.0, 1.0]


def test_own_reference_deranged_system_never_finds_its_own():
    r = Y.own_reference(REFS[1:] + REFS[:1], REFS, n_boot=50)
    assert r["accuracy"] == 0 and r["mrr"] < 1 and min(r["ranks"]) > 1


@pytest.mark.parametrize("hyp", ["", "completely unrelated words"])
def test_own_reference_empty_or_constant_output_sits_at_chance(hyp):
    n = len(REFS)
    r = Y.own_reference([hyp] * n, REFS, n_boot=50)
    assert r["chance_accuracy"] == 1 / n and r["chance_mean_rank"] == 3
    assert r["chance_mrr"] == pytest.approx(sum(1 / k for k in range(1, n + 1)) / n, abs=1e-15)
    assert r["accuracy"] == pytest.approx(r["chance_accuracy"], abs=1e-15)
    assert r["mrr"] == pytest.approx(r["chance_mrr"], abs=1e-15)
    assert r["mean_rank"] == r["chance_mean_rank"]
    if hyp == "":
        assert r["ranks"] == [3.0] * n


def test_own_reference_splits_a_tie_for_best():
    # references 0 and 1 are the same text: outputs 0 and 1 tie them, output 1 below reference 2
    refs = ["ka wai nui", "ka wai nui", "he hale"]
    r = Y.own_reference(["ka wai nui", "he hale", "he hale"], refs, n_boot=10)
    assert r["ranks"] == [1.5, 2.5, 1.0]
    assert r["accuracy"] == pytest.approx((0.5 + 0 + 1) / 3)
    assert r["mrr"] == pytest.approx(((1 + 1 / 2) / 2 + (1 / 2 + 1 / 3) / 2 + 1) / 3)


NAME_SOURCES = ["He aliʻi nui ʻo Kamehameha, a he koa ʻo ia no Hawaiʻi.", "Hele ʻo ʻUmi i Waipiʻo."]
NAME_REFS = ["He was a great chief, Kamehameha, and he was a warrior of Hawaiʻi.", "ʻUmi went to Waipiʻo."]


def test_sentence_names_leave_out_common_words_at_the_start():
    assert Y.sentence_names(NAME_SOURCES[0], NAME_REFS[0]) == {"Kamehameha", "Hawaiʻi"}
    assert Y.sentence_names(NAME_SOURCES[1], NAME_REFS[1]) == {"ʻUmi", "Waipiʻo"}
    assert Y.sentence_names("He kanaka ʻo ia.", "He is a man, he is.") == set()
    assert Y.name_words("Kamehameha’s son, ko’u hale") == ["Kamehameha", "son", "ko’u", "hale"]


@pytest.mark.parametrize("hyps, recall, precision", [
    (NAME_SOURCES, 1.0, 4 / 6),      # copying the source: every name, and He, Hele besides
    (NAME_REFS, 1.0, 4 / 5),         # the reference: every name, and He
    (["", ""], 0.0, None),           # nothing
    (["He saw Kamehameha’s men.", "Hele, he went."], 0.25, 1 / 3),  # a possessive counts; He, Hele are no names
])
def test_name_transfer_counts_names_carried_into_the_output(hyps, recall, precision):
    r = Y.name_transfer(NAME_SOURCES, NAME_REFS, hyps, n_boot=50)
    assert r["names"] == 4
    assert r["recall"] == pytest.approx(recall)
    if precision is None:
        assert r["precision"] is None and r["precision_ci"] is None
    else:
        assert r["precision"] == pytest.approx(precision)
    assert r["recall_ci"][0] <= recall <= r["recall_ci"][1]


def test_repetition_rate():
    texts = ["a b c d e f g h a b c d e f g h",      # an 8-word sequence twice
             "one two three four five six seven eight nine",
             "ka " * 9,                              # overlapping copies of ka x 8
             "ka " * 8,                              # one copy only
             "The cat, the CAT!"]
    r = Y.repetition_rate(texts)
    assert (r["count"], r["rate"]) == (2, 2 / 5)
    assert Y.repetition_rate(texts, n=2)["count"] == 4
    with pytest.raises(ValueError):
        Y.repetition_rate([])
