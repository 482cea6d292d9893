"""make compare (olelo/compare.py): Student's t and Holm's correction against known values,
recipes grouped by seed, and paired tests from kept outputs."""

import json
import math

import pytest

import olelo
from olelo import compare, evaluation, prompt, scores

from conftest import REPO, script


@pytest.mark.parametrize("t,df,p", [(2.0, 5, 0.10194), (2.776445, 4, 0.05), (1.0, 1, 0.5), (0.0, 3, 1.0),
                                    (12.706205, 1, 0.05), (1.959964, 10**6, 0.05)])
def test_t_two_sided_p_matches_known_values(t, df, p):
    assert compare.t_two_sided_p(t, df) == pytest.approx(p, abs=2e-5)


@pytest.mark.parametrize("df,q", [(1, 12.7062), (2, 4.3027), (4, 2.7764), (30, 2.0423)])
def test_t_quantile_matches_the_tables(df, q):
    assert compare.t_quantile(0.05, df) == pytest.approx(q, abs=1e-4)


def test_holm_steps_down_and_keeps_untested_members():
    adjusted = compare.holm({"a": 0.01, "b": 0.04, "c": 0.03, "d": None})
    assert adjusted == {"a": pytest.approx(0.03), "b": pytest.approx(0.06), "c": pytest.approx(0.06), "d": None}
    assert compare.holm({"a": 0.6, "b": 0.5}) == {"a": 1.0, "b": 1.0}


def test_recipes_are_stamps_without_their_seed():
    assert compare.recipe_of("large-gemma-3-270m-it600-bs8-lr0.0001-r8-gc-s2-a2") == (
        "large-gemma-3-270m-it600-bs8-lr0.0001-r8-gc", 2)
    assert compare.recipe_of("large-x-s10") == ("large-x", 10)
    assert compare.recipe_of("no-seed-here") == ("no-seed-here", None)
    s = compare.seed_stats([24.5, 25.27, 24.63])
    assert s["mean"] == pytest.approx(24.8) and s["sd"] == pytest.approx(math.sqrt((0.3**2 + 0.47**2 + 0.17**2) / 2))
    half = 4.302653 * s["sd"] / math.sqrt(3)
    assert s["ci95"] == pytest.approx([24.8 - half, 24.8 + half], abs=1e-5)


REFS = ["The chief went to the ship.", "All the people wept.", "They will sail to Tahiti.", "Hello everyone.",
        "The father lived at the house.", "Many were the days."]


def fake_run(root, stamp, hyps, test_file):
    """A run folder with an evaluation whose headline row `final` kept these outputs."""
    eval_dir = root / "runs" / stamp / "eval"
    rows = [{"id": f"p{i}", "hypothesis": h, "tokens": 3} for i, h in enumerate(hyps)]
    s = scores.score_corpus(hyps, REFS)
    olelo.atomic_write_json(root / "runs" / stamp / "manifest.json", {"stamp": stamp})
    olelo.atomic_write_json(eval_dir / "summary.json", {
        "run": stamp, "test_data": str(test_file), "test_sha256": olelo.sha256_file(test_file), "test_set": "test",
        "headline": {"checkpoint": "final"}, "checkpoints": {"final": {"chrf": s["chrf"]["score"],
                                                                      "bleu": s["bleu"]["score"]}},
        "outputs": evaluation.write_outputs(eval_dir, {"base": rows, "final": rows})})


@pytest.fixture
def three_runs(tmp_path):
    test_file = tmp_path / "test.jsonl"
    olelo.atomic_write_jsonl(test_file, [olelo.chat_record(f"haw {i}", r, "haw-en", f"p{i}") for i, r in enumerate(REFS)])
    systems = {"rec-s0": REFS[:3] + ["Hello all.", "The father lived there.", "Many days."],
               "rec-s1": REFS[:2] + ["They sail.", "Hello everyone.", "A father.", "Many were the days."],
               "other-s0": ["A dog."] * 6}
    for stamp, hyps in systems.items():
        fake_run(tmp_path, stamp, hyps, test_file)
    return tmp_path, systems


def test_compare_groups_seeds_tests_runs_and_corrects_over_the_family(three_runs):
    root, systems = three_runs
    runs = [str(root / "runs" / s) for s in systems]
    r = compare.compare(runs, "eval", "fam", bootstrap=200, seed=7, progress=lambda m: None)
    assert list(r["recipes"]) == ["rec"] and r["recipes"]["rec"]["runs"] == ["rec-s0", "rec-s1"]
    assert [(v["run"], v["recipe"]) for v in r["vs_seeds"]] == [("other-s0", "rec")]
    assert len(r["pairs"]) == 3 and r["family_size"] == 1 + 3 * 2
    one = next(p for p in r["pairs"] if (p["a"], p["b"]) == ("rec-s0", "other-s0"))
    want = scores.compare(systems["rec-s0"], systems["other-s0"], REFS, n_samples=200, seed=7)["metrics"]["chrf"]
    assert one["chrf"]["delta"] == want["delta"] and one["chrf"]["p"] == want["p_value"]
    assert one["chrf"]["p_holm"] >= one["chrf"]["p"]
    md = compare.markdown(r)
    assert "| rec | 2 |" in md and "family of 7 tests" in md
    # 6 sentences: no pair's p is starred, and the table says why
    pairs = md[md.index("Run against run"):]
    assert "No * here: no difference is called significant: 6 test sentences" in pairs
    assert "*" not in pairs.replace("No * here", "") and one["chrf"]["p"] < 0.05


def test_compare_refuses_runs_scored_on_other_sentences(three_runs):
    root, systems = three_runs
    other = root / "other-test.jsonl"
    olelo.atomic_write_jsonl(other, [olelo.chat_record("x", "y", "haw-en", f"p{i}") for i in range(6)])
    fake_run(root, "elsewhere-s0", ["A dog."] * 6, other)
    with pytest.raises(olelo.UserError, match="not scored on the same test sentences"):
        compare.compare([str(root / "runs" / "rec-s0"), str(root / "runs" / "elsewhere-s0")], "eval", "f", 50, 1,
                        progress=lambda m: None)


def test_compare_pairs_by_sentence_across_test_files_that_differ_in_their_prompts_only(three_runs):
    """DATA=rag's test file carries retrieved pairs in each prompt: its runs pair with plain runs
    on the same sentences; a file whose references differ is refused."""
    root, systems = three_runs
    rag = root / "rag-test.jsonl"
    olelo.atomic_write_jsonl(rag, [prompt.retrieval_record(olelo.chat_record(f"haw {i}", r, "haw-en", f"p{i}"),
                                                           [("haw x", "eng x")], ["t0"])
                                   for i, r in enumerate(REFS)])
    fake_run(root, "rag-s0", ["A dog."] * 6, rag)
    runs = [str(root / "runs" / s) for s in ("rec-s0", "rag-s0")]
    r = compare.compare(runs, "eval", "f", 50, 1, progress=lambda m: None)
    assert r["test_files"] == sorted([str(root / "test.jsonl"), str(rag)]) and r["n"] == 6
    want = scores.compare(systems["rec-s0"], ["A dog."] * 6, REFS, n_samples=50, seed=1)["metrics"]["chrf"]
    assert r["pairs"][0]["chrf"]["delta"] == pytest.approx(want["delta"])
    assert "other prompts" in compare.markdown(r)
    wrong = root / "wrong-refs.jsonl"
    olelo.atomic_write_jsonl(wrong, [olelo.chat_record(f"haw {i}", r + " Yes.", "haw-en", f"p{i}")
                                     for i, r in enumerate(REFS)])
    fake_run(root, "wrong-s0", ["A dog."] * 6, wrong)
    with pytest.raises(olelo.UserError, match="not scored on the same test sentences"):
        compare.compare([runs[0], str(root / "runs" / "wrong-s0")], "eval", "f", 50, 1, progress=lambda m: None)


def test_compare_script_writes_the_table_with_its_header(three_runs):
    root, systems = three_runs
    out = script("compare.py", "--family", "fam", "--out-dir", root / "cmp", *[root / "runs" / s for s in systems],
                 "--bootstrap", "50")
    assert out.returncode == 0, out.stderr
    data = json.loads((root / "cmp" / "fam.json").read_text())
    assert data["header"]["reproduce"].startswith("make compare FAMILY=fam") and data["family"] == "fam"
    assert (root / "cmp" / "fam.md").read_text() == out.stdout
    bad = script("compare.py", "--family", "a b", root / "runs" / "rec-s0", root / "runs" / "rec-s1")
    assert bad.returncode == 2 and "--family 'a b'" in bad.stderr
