"""scripts/score.py: scores equal the sacrebleu CLI's, bootstrap is seeded and sane,
bad input fails with one clear line."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from olelo import scores

SCORE = Path(__file__).resolve().parents[1] / "scripts" / "score.py"

REFS = [
    "Aloha kākou.",
    "Ua hele ke aliʻi i ka moku.",
    "The chief went to the ship.",
    "All the people wept.",
    "He nui nā lā o kēia kaʻawale ʻana.",
]
# Known-value tables: (name, hypotheses), each scored against REFS.
CASES = [
    ("close", ["Aloha kakou.", "Ua hele ke alii i ka moku.", "The chief went to the ship .",
               "All the people cried.", "He nui nā lā o kēia kaʻawale ana."]),
    ("okina-kahako", ["Aloha kākou!", "Ua hele ke aliʻi i ka waʻa.", "The chief went to a ship.",
                      "All of the people wept.", "Nui nā lā o kēia kaʻawale ʻana."]),
    ("poor", ["Hello.", "The chief went to the ship.", "Ua hele ke aliʻi.", "wept", ""]),
    ("perfect", list(REFS)),
]


def write_lines(path: Path, lines) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def run_sacrebleu(*args) -> str:
    proc = subprocess.run([sys.executable, "-m", "sacrebleu", *args], capture_output=True, text=True,
                          env={**os.environ, "SACREBLEU_SEED": "12345"}, check=True)
    return proc.stdout


def run_score(*args):
    return subprocess.run([sys.executable, str(SCORE), *args], capture_output=True, text=True)


@pytest.mark.parametrize("name,hyps", CASES, ids=[c[0] for c in CASES])
def test_corpus_scores_and_signatures_equal_sacrebleu_cli(tmp_path, name, hyps):
    ref, hyp = write_lines(tmp_path / "ref.txt", REFS), write_lines(tmp_path / "hyp.txt", hyps)
    cli = json.loads(run_sacrebleu(str(ref), "-i", str(hyp), "-m", "bleu", "chrf", "ter",
                                   "--chrf-word-order", "2", "-w", "4", "-f", "json"))
    ours = scores.score_corpus(hyps, REFS)
    assert [c["name"] for c in cli] == ["BLEU", "chrF2++", "TER"]
    for key, c in zip(("bleu", "chrf", "ter"), cli):
        assert float(f"{ours[key]['score']:.4f}") == c["score"], key
        assert ours[key]["signature"] == c["signature"], key


def test_sentence_chrf_equals_sacrebleu_cli(tmp_path):
    hyps = CASES[1][1]
    ref, hyp = write_lines(tmp_path / "ref.txt", REFS), write_lines(tmp_path / "hyp.txt", hyps)
    cli = run_sacrebleu(str(ref), "-i", str(hyp), "-m", "chrf", "--chrf-word-order", "2", "-sl", "-b", "-w", "4")
    ours = scores.score_corpus(hyps, REFS)["chrf_sentences"]
    assert [f"{x:.4f}" for x in ours] == cli.split()


def test_cli_reads_jsonl_and_text_alike(tmp_path):
    hyps = CASES[0][1]
    rows = [{"id": str(i), "source": "s", "reference": r, "hypothesis": h} for i, (r, h) in enumerate(zip(REFS, hyps))]
    jsonl = tmp_path / "hyps.jsonl"
    jsonl.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    write_lines(tmp_path / "hyp.txt", hyps)
    write_lines(tmp_path / "ref.txt", REFS)
    from_jsonl = json.loads(run_score("--hyp", str(jsonl), "--json", "--no-semsim").stdout)
    from_text = json.loads(run_score("--hyp", str(tmp_path / "hyp.txt"), "--ref", str(tmp_path / "ref.txt"),
                                     "--json", "--no-semsim").stdout)
    for key in ("bleu", "chrf", "ter", "chrf_sentences", "n_segments"):
        assert from_jsonl[key] == from_text[key]


# ---------------------------------------------------------------- bootstrap

MANY_REFS = [f"{a} {b} i ka hale." for a in ("Ua hele", "Ua noho", "Ua ʻike", "Ua uwē", "Ua holo", "Ua hoʻi")
             for b in ("ke aliʻi", "ka wahine", "ke keiki", "ka poʻe", "ka makuakāne")]
BAD = ["he mea ʻē aʻe"] * len(MANY_REFS)


def test_paired_bootstrap_equals_sacrebleu_cli(tmp_path):
    base, system = CASES[2][1], CASES[0][1]
    ref = write_lines(tmp_path / "ref.txt", REFS)
    b, s = write_lines(tmp_path / "base.txt", base), write_lines(tmp_path / "sys.txt", system)
    table = run_sacrebleu(str(ref), "-i", str(b), str(s), "-m", "bleu", "chrf", "ter",
                          "--chrf-word-order", "2", "--paired-bs", "-f", "text", "-w", "4")
    cli_p = [float(p) for p in re.findall(r"p = ([0-9.]+)", table)]
    cli_ci = re.findall(r"([0-9.]+) \(([0-9.]+) ± ([0-9.]+)\)", table)  # base row, then system row
    ours = scores.compare(base, system, REFS, n_samples=1000, seed=12345)["metrics"]
    assert [f"{ours[k]['p_value']:.4f}" for k in ("bleu", "chrf", "ter")] == [f"{p:.4f}" for p in cli_p]
    ours_ci = [tuple(f"{ours[k][who][f]:.4f}" for f in ("score", "mean", "ci"))
               for who in ("base", "system") for k in ("bleu", "chrf", "ter")]
    assert ours_ci == cli_ci
    assert ours["bleu"]["signature"].startswith("nrefs:1|bs:1000|seed:12345|")


def test_same_seed_same_result_and_seed_is_used():
    a = scores.compare(BAD, MANY_REFS[:15] + BAD[15:], MANY_REFS, n_samples=200, seed=7)
    b = scores.compare(BAD, MANY_REFS[:15] + BAD[15:], MANY_REFS, n_samples=200, seed=7)
    c = scores.compare(BAD, MANY_REFS[:15] + BAD[15:], MANY_REFS, n_samples=200, seed=8)
    assert a == b
    assert a["metrics"]["chrf"]["signature"].split("|")[2] == "seed:7"
    assert [a["metrics"][k]["system"]["mean"] for k in scores.METRICS] != \
           [c["metrics"][k]["system"]["mean"] for k in scores.METRICS]


def test_perfect_system_beats_bad_base():
    result = scores.compare(BAD, MANY_REFS, MANY_REFS, n_samples=1000, seed=12345)
    for key, (label, _, _) in scores.METRICS.items():
        m = result["metrics"][key]
        assert m["p_value"] < 0.05 and m["significant"] and m["winner"] == "system", key
        assert f"system beats base on {label} (p=" in "\n".join(result["verdicts"])
    assert result["metrics"]["ter"]["delta"] < 0  # lower TER is the better one


def test_bad_system_loses_to_perfect_base():
    result = scores.compare(MANY_REFS, BAD, MANY_REFS, n_samples=200, seed=12345)
    assert {m["winner"] for m in result["metrics"].values()} == {"base"}


def test_identical_systems_get_no_p_value():
    # sacrebleu would give identical systems p = 1/(n+1), which reads as "significant"
    # beside two equal scores: there is nothing to test, so no p-value at all.
    result = scores.compare(CASES[0][1], CASES[0][1], REFS, n_samples=1000, seed=12345)
    for key, m in result["metrics"].items():
        assert m["delta"] == 0
        assert m["p_value"] is None
        assert not m["significant"] and m["winner"] is None
        assert scores.p_note(m) == ""
    assert all(v.startswith("identical ") and "p=" not in v for v in result["verdicts"])


def test_seed_zero_is_refused():
    with pytest.raises(ValueError, match="seed"):
        scores.compare(REFS, REFS, REFS, seed=0)


def test_cli_comparison_table(tmp_path):
    ref = write_lines(tmp_path / "ref.txt", MANY_REFS)
    base, system = write_lines(tmp_path / "base.txt", BAD), write_lines(tmp_path / "sys.txt", MANY_REFS)
    proc = run_score("--hyp", str(system), "--ref", str(ref), "--base", str(base), "--bootstrap", "200", "--no-semsim")
    assert proc.returncode == 0, proc.stderr
    assert "system beats base on chrF++ (p=0.0050)" in proc.stdout  # 1/201: no resample reversed it
    assert "nrefs:1|bs:200|seed:12345|" in proc.stdout


# ---------------------------------------------------------------- bad input


@pytest.fixture
def ref3(tmp_path):
    return write_lines(tmp_path / "ref.txt", ["a", "b", "c"])


def assert_error(proc, *fragments):
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_error_line_count_mismatch(tmp_path, ref3):
    hyp = write_lines(tmp_path / "hyp.txt", ["a", "b"])
    assert_error(run_score("--hyp", str(hyp), "--ref", str(ref3)), f"{hyp} has 2 segments", f"{ref3} has 3")


def test_error_base_line_count_mismatch(tmp_path, ref3):
    hyp, base = write_lines(tmp_path / "hyp.txt", ["a", "b", "c"]), write_lines(tmp_path / "base.txt", ["a"])
    assert_error(run_score("--hyp", str(hyp), "--ref", str(ref3), "--base", str(base)), f"{base} has 1 segments")


def test_error_empty_file(tmp_path, ref3):
    hyp = tmp_path / "hyp.txt"
    hyp.write_bytes(b"")
    assert_error(run_score("--hyp", str(hyp), "--ref", str(ref3)), f"{hyp}: empty file")


def test_error_not_utf8(tmp_path, ref3):
    hyp = tmp_path / "hyp.txt"
    hyp.write_bytes("a\nʻb\n".encode() + b"caf\xe9\n")  # latin-1 é on line 3
    assert_error(run_score("--hyp", str(hyp), "--ref", str(ref3)), f"{hyp}:3: not UTF-8")


def test_error_missing_file(tmp_path, ref3):
    hyp = tmp_path / "nope.txt"
    assert_error(run_score("--hyp", str(hyp), "--ref", str(ref3)), f"{hyp}: no such file")


def test_error_jsonl_row_missing_field(tmp_path):
    rows = [{"reference": "a", "hypothesis": "a"}, {"reference": "b", "hypothesis": "b"}, {"reference": "c"}]
    jsonl = tmp_path / "hyps.jsonl"
    jsonl.write_text(json.dumps(rows[0]) + "\n\n" + json.dumps(rows[1]) + "\n" + json.dumps(rows[2]) + "\n")
    assert_error(run_score("--hyp", str(jsonl)), f"{jsonl}:4:", "'hypothesis'")
    assert_error(run_score("--hyp", str(jsonl), "--field", "translation"), f"{jsonl}:1:", "'translation'")


def test_error_bad_seed(tmp_path, ref3):
    assert_error(run_score("--hyp", str(ref3), "--ref", str(ref3), "--base", str(ref3), "--seed", "0"), "--seed")


def test_help():
    proc = run_score("--help")
    assert proc.returncode == 0 and "--bootstrap" in proc.stdout and "Run:" in proc.stdout


# ---------------------------------------------------------------- loops and length

LOOPS = [
    ("the king of the island, the king of the island, the king of the island", True),  # 5 words x 3
    ("the king of the island, the king of the island", False),  # twice is not a loop
    ("ha ha ha", True),
    ("The King, the king. THE KING!", True),  # case and punctuation do not hide it
    ("aliʻi aliʻi aliʻi", True),  # ʻokina is part of a word
    ("ali ʻi ali ʻi ali", False),
    ("wiki wiki", False),
    ("a b a b a b", True),
    (" ".join([" ".join(f"w{i}" for i in range(10))] * 3), True),  # a span of 10 words, 3 times
    (" ".join([" ".join(f"w{i}" for i in range(11))] * 3), False),  # a span of 11 words is past the limit
    ("", False),
]


@pytest.mark.parametrize("text,expected", LOOPS)
def test_loops_table(text, expected):
    assert scores.loops(text) is expected


@pytest.mark.parametrize("text,expected", LOOPS)
def test_cut_loop_cuts_exactly_the_loops_and_leaves_none(text, expected):
    cut = scores.cut_loop(text)
    assert (cut != text) is expected and text.startswith(cut) and not scores.loops(cut)


@pytest.mark.parametrize("text,cut", [
    ("the king of the island, the king of the island, the king of the island, the", "the king of the island"),
    ("Aloha. He hale no ka hale i ka hale i ka hale i ka wa", "Aloha. He hale no ka hale i"),
    ("The King, the king. THE KING! and more", "The King"),
    ("a b a b a c a b a b a b", "a b a b a c a b"),  # the first place a loop completes, not the first unit
])
def test_cut_loop_keeps_one_copy_of_the_first_completed_loop(text, cut):
    assert scores.cut_loop(text) == cut


def test_cut_loop_reads_only_the_words_so_far():
    # the cut of a text is the cut of every longer text with the same start: a decoder stopping
    # at the first loop would have made it from the same greedy run
    import random
    rng = random.Random(0)
    for _ in range(300):
        words = [rng.choice("ka i ke a o la".split()) for _ in range(rng.randint(1, 30))]
        text = " ".join(words)
        cut = scores.cut_loop(text)
        assert scores.loops(text) is (cut != text)
        if cut != text:  # a loop completed within text: what follows cannot move the cut
            tail = " ".join(rng.choice("he me ua ka".split()) for _ in range(5))
            assert scores.cut_loop(text + " " + tail) == cut


def test_output_health_is_in_every_score():
    hyps = ["ha ha ha", "The chief went to the ship.", "a", "All the people wept."]
    refs = ["Aloha.", "The chief went to the ship.", "abc", "All the people wept."]
    s = scores.score_corpus(hyps, refs)
    assert (s["loops"], s["loop_rate"]) == (1, 0.25)
    assert s["length_ratio"] == sum(map(len, hyps)) / sum(map(len, refs))


def test_compare_on_some_metrics_only_matches_all():
    some = scores.compare(BAD, MANY_REFS[:15] + BAD[15:], MANY_REFS, n_samples=200, seed=3, metrics=("chrf", "bleu"))
    full = scores.compare(BAD, MANY_REFS[:15] + BAD[15:], MANY_REFS, n_samples=200, seed=3)
    assert set(some["metrics"]) == {"chrf", "bleu"} and len(some["verdicts"]) == 2
    for key in ("chrf", "bleu"):
        assert some["metrics"][key]["p_value"] == full["metrics"][key]["p_value"]
        assert some["metrics"][key]["system"] == full["metrics"][key]["system"]
    with pytest.raises(ValueError, match="subset"):
        scores.compare(BAD, BAD, MANY_REFS, metrics=("meteor",))


def test_cli_prints_loops_and_length(tmp_path):
    ref, hyp = write_lines(tmp_path / "ref.txt", REFS), write_lines(tmp_path / "hyp.txt", ["ha ha ha"] * 5)
    proc = run_score("--hyp", str(hyp), "--ref", str(ref), "--no-semsim")
    assert proc.returncode == 0, proc.stderr
    assert "loops    1.000  (5 of 5:" in proc.stdout and "length " in proc.stdout


# ---------------------------------------------------------------- too small a sample

FOUR_REFS = ["The chief went to the ship.", "All the people wept.", "They will sail to Tahiti.", "Hello everyone."]
FOUR_BASE = ["Ua hele ke aliʻi i ka moku.", "Ua uwē ka poʻe a pau loa.", "E holo ana lākou i Kahiki.", "Aloha kākou."]


def test_a_handful_of_sentences_is_never_called_significant():
    # A model answering one fixed sentence to 4 test sentences: sacrebleu's p is tiny, but
    # 4 sentences cannot carry a significance call.
    result = scores.compare(FOUR_BASE, ["I saw the house."] * 4, FOUR_REFS, n_samples=1000, seed=12345)
    assert result["metrics"]["bleu"]["p_value"] < 0.05  # kept as measured
    for key, (label, _, _) in scores.METRICS.items():
        m = result["metrics"][key]
        assert not m["significant"] and m["winner"] is None, key
    assert result["too_small"].startswith("no difference is called significant: 4 test sentences, fewer than the 30")
    text = "\n".join(result["verdicts"])
    assert " beats " not in text and "not called on BLEU" in text and result["verdicts"][-1] == result["too_small"]
    assert scores.p_note(result["metrics"]["bleu"]).endswith(")") and "*" not in scores.p_note(result["metrics"]["bleu"])


def test_too_few_resamples_are_never_called_significant():
    # LIMIT=2 BOOTSTRAP=20 printed "p=0.048, significant": 1/21 is the smallest p 20 resamples give.
    assert scores.too_small(2, 20) == (
        "no difference is called significant: 2 test sentences, fewer than the 30 a paired bootstrap needs to know "
        "the spread of sentences; 20 bootstrap resamples, fewer than 200 (the smallest p they can give is 1/21 = "
        "0.048) (olelo/scores.py MIN_SENTENCES, MIN_RESAMPLES)")
    result = scores.compare(BAD, MANY_REFS, MANY_REFS, n_samples=20, seed=12345)  # 30 sentences, enough
    m = result["metrics"]["chrf"]
    assert m["p_value"] < 0.05 and not m["significant"]
    assert "20 bootstrap resamples" in result["too_small"] and "sentences" not in result["too_small"].split(":")[1]


def test_the_floor_is_inclusive():
    assert scores.too_small(scores.MIN_SENTENCES, scores.MIN_RESAMPLES) is None
    assert scores.too_small(scores.MIN_SENTENCES - 1, scores.MIN_RESAMPLES)
    assert scores.too_small(scores.MIN_SENTENCES, scores.MIN_RESAMPLES - 1)
    result = scores.compare(BAD, MANY_REFS, MANY_REFS, n_samples=scores.MIN_RESAMPLES, seed=12345)
    assert len(MANY_REFS) == scores.MIN_SENTENCES and result["too_small"] is None
    assert all(m["significant"] for m in result["metrics"].values())


def test_loops_by_arrays_answers_as_the_word_by_word_search():
    # scores.loops finds a loop with whole arrays; _first_loop (cut_loop's) reads word by word
    import random
    rng = random.Random(1)
    for _ in range(3000):
        vocab = "ka i ke a o la he ua".split()[:rng.randint(1, 8)]
        words = [rng.choice(vocab) for _ in range(rng.randint(0, 60))]
        text = " ".join(w.upper() if rng.random() < 0.1 else w for w in words)
        max_words, copies = rng.randint(1, 12), rng.randint(1, 4)
        want = scores._first_loop(re.findall(r"\w+", text.lower()), max_words, copies) is not None
        assert scores.loops(text, max_words, copies) is want, (text, max_words, copies)
