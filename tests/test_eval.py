"""make eval: translations per checkpoint, perplexity, summary with signatures and
p-values, A/B, plots, reuse of finished outputs. Real MLX on a tiny model."""

import json

import pytest

import olelo
from olelo import evaluation, generate
from olelo.defaults import DEFAULTS


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory, tiny_model, tiny_data, tiny_train, run_make):
    root = tmp_path_factory.mktemp("evallab")
    data = tiny_data
    runs, adapters = root / "runs", root / "adapters"
    tiny_train(root)

    def make_eval(*extra):
        return run_make("eval", f"RUNS_DIR={runs}", f"ADAPTERS_DIR={adapters}", "LIMIT=4", "MAX_TOKENS=8",
                        "BOOTSTRAP=50", *extra)

    first = make_eval()
    eval_dir = (runs / "latest").resolve() / "eval-n4-mt8"
    return {"eval_dir": eval_dir, "make_eval": make_eval, "first": first, "tiny_model": tiny_model, "data": data,
            "adapters": adapters}


def test_eval_writes_every_output(evaluated):
    d = evaluated["eval_dir"]
    for name in ("summary.json", "summary.md", "ab.md", "ab.csv", "loss.png", "scores.png"):
        assert (d / name).is_file(), name
    for ckpt in ("base", "final", "best"):
        rows = olelo.read_jsonl(d / ckpt / "hyps.jsonl")
        assert [r["id"] for r in rows] == [f"p{i}" for i in range(4)]
        assert all(0 < r["tokens"] <= 8 for r in rows)
        ppl = json.loads((d / ckpt / "ppl.json").read_text())
        assert ppl["command"][:2] == ["mlx_lm.lora", "--model"] and "--test" in ppl["command"]
        assert ppl["test_ppl"] > 1


def test_summary_has_signatures_and_p_values(evaluated):
    s = json.loads((evaluated["eval_dir"] / "summary.json").read_text())
    assert set(s["checkpoints"]) == {"final", "best"}
    assert list(s["baselines"]) == ["base", "base-completion", "copy-source", "translation-memory", "length-matched",
                                    "empty"]
    final = s["checkpoints"]["final"]
    assert final["signatures"]["chrf"].startswith("nrefs:1|case:mixed|eff:yes|nc:6|nw:2")
    assert final["iteration"] == 4
    for metric in ("bleu", "chrf", "ter"):
        m = final["vs_base"]["metrics"][metric]
        # Identical scores get no p-value (nothing to test); different ones a real one.
        assert (m["p_value"] is None) == (m["delta"] == 0)
        assert m["p_value"] is None or 0 < m["p_value"] <= 1
    # Against copy-source and translation memory: chrF++ and BLEU only (TER is slow on long segments).
    assert set(final["vs_baselines"]) == {"copy-source", "translation-memory", "base-completion"}
    assert set(final["vs_baselines"]["copy-source"]["metrics"]) == {"chrf", "bleu"}
    assert set(s["test_posthoc"]["by_metric"]) >= {"bleu", "chrf", "ter", "test_ppl"}
    assert set(s["test_posthoc"]["by_metric"].values()) <= {"final", "best"}
    md = (evaluated["eval_dir"] / "summary.md").read_text()
    assert "nrefs:1" in md  # (p= only beside scores that differ: test_integrity checks that)
    assert "post-hoc view" in md and "copy-source" in md


def test_headline_is_the_checkpoint_chosen_on_validation(evaluated, tmp_path):
    d = evaluated["eval_dir"]
    s = json.loads((d / "summary.json").read_text())
    stamp = d.parent.name
    chosen = json.loads((evaluated["adapters"] / stamp / "best" / "best.json").read_text())
    assert s["headline"]["checkpoint"] == "best"
    assert s["headline"]["selected_on"] == f"validation ({chosen.get('criterion', 'val_loss')})"
    assert s["headline"]["iteration"] == chosen["iteration"] == s["checkpoints"]["best"]["iteration"]
    md = (d / "summary.md").read_text()
    assert "Headline: **best**" in md and "| **best** (chosen on validation) |" in md
    assert (d / "ab.md").read_text().startswith("# A/B: base vs best (the headline checkpoint)")


def test_copy_source_and_output_health_are_scored_like_a_checkpoint(evaluated):
    from olelo import scores

    d = evaluated["eval_dir"]
    s = json.loads((d / "summary.json").read_text())
    rows = olelo.read_jsonl(d / "base" / "hyps.jsonl")
    sources, refs = [r["source"] for r in rows], [r["reference"] for r in rows]
    copy = s["baselines"]["copy-source"]
    expected = scores.score_corpus(sources, refs)
    assert (copy["chrf"], copy["bleu"], copy["ter"]) == (expected["chrf"]["score"], expected["bleu"]["score"],
                                                          expected["ter"]["score"])
    assert copy["iteration"] is None and set(copy["vs_base"]["metrics"]) == {"chrf", "bleu"}
    assert copy["length_ratio"] == sum(map(len, sources)) / sum(map(len, refs))
    for name in ("final", "best"):
        hyps = [r["hypothesis"] for r in olelo.read_jsonl(d / name / "hyps.jsonl")]
        assert s["checkpoints"][name]["loop_rate"] == sum(map(scores.loops, hyps)) / len(hyps)
    assert s["definitions"]["loop_rate"] == scores.LOOP_DEFINITION


def test_every_evaluation_has_the_reference_baselines_and_the_probes(evaluated):
    d = evaluated["eval_dir"]
    s = json.loads((d / "summary.json").read_text())
    rows = {**s["baselines"], **s["checkpoints"]}
    for name, row in rows.items():
        assert 0 <= row["own_reference"]["accuracy"] <= 1 and row["own_reference"]["n"] == 4, name
        assert row["own_reference"]["chance_accuracy"] == 0.25
        assert set(row["names"]) >= {"recall", "precision", "recall_ci", "names"} and 0 <= row["repeat8"] <= 1
    empty = s["baselines"]["empty"]
    assert (empty["chrf"], empty["bleu"], empty["ter"], empty["length_ratio"]) == (0, 0, 100, 0)
    assert empty["own_reference"]["accuracy"] == empty["own_reference"]["chance_accuracy"]  # ties sit at chance
    lm = s["reference_baselines"]["length-matched"]
    assert len(lm["draws"]) == 5 and s["baselines"]["length-matched"]["chrf"] == lm["draws"][0]["chrf"]
    for name in ("base", "final", "best"):
        verdict = rows[name]["beyond_translation_memory"]
        tm = rows[name]["vs_baselines"]["translation-memory"]["metrics"]["chrf"]
        assert verdict["answer"] == ("yes" if tm["significant"] and tm["delta"] > 0 else "no")
    assert s["lengths"]["max_tokens"] == 8 and s["lengths"]["set_by"] == "MAX_TOKENS"
    assert 0 <= s["lengths"]["references_over_cap"] <= s["lengths"]["references"] == 4
    md = (d / "summary.md").read_text()
    assert "## Does it translate?" in md and "- best: translates beyond translation memory: **" in md
    assert f"Generation cap 8 tokens (MAX_TOKENS): {s['lengths']['references_over_cap']} of 4 references" in md


def test_a_pretrained_base_gets_a_plain_completion_row_by_the_documented_rule(evaluated):
    from olelo import prompt

    d = evaluated["eval_dir"]
    record = json.loads((d / "base-completion" / "prompt.json").read_text())
    assert record["prompt"] == "completion" and record["rule"] == prompt.COMPLETION_RULE
    assert record["instruction_tuned"] is False and record["evaluated"] is True  # tiny-gemma3: no -it in its name
    s = json.loads((d / "summary.json").read_text())
    assert s["baselines"]["base-completion"]["prompt"] == record
    assert all("\n" not in r["hypothesis"] for r in olelo.read_jsonl(d / "base-completion" / "hyps.jsonl"))
    assert prompt.completion_prompt("Aloha  kākou.", "haw-en") == "Hawaiian: Aloha kākou.\nEnglish:"
    assert prompt.completion_answer("\n  The chief.\nHawaiian: next") == "The chief."
    for name, tuned in (("mlx-community/gemma-3-4b-it-4bit", True), ("models/smollm2-135m-instruct-f32", True),
                        ("models/gemma-3-270m-f32", False), ("models/tiny-gemma3/", False)):
        assert prompt.is_instruction_tuned(name) is tuned, name


def test_an_instruction_tuned_model_gets_no_completion_row_and_says_why(tmp_path, tiny_data):
    from conftest import script

    out = script("translate.py", "--model", "mlx-community/gemma-3-4b-it-4bit", "--data", tiny_data / "test.jsonl",
                 "--prompt", "completion", "--completion-rule", "auto", "-o", tmp_path / "c" / "hyps.jsonl")
    assert out.returncode == 0, out.stderr
    record = json.loads((tmp_path / "c" / "prompt.json").read_text())
    assert record["instruction_tuned"] is True and record["evaluated"] is False
    assert not (tmp_path / "c" / "hyps.jsonl").exists()


def test_translation_memory_answers_from_the_training_split_only(evaluated):
    s = json.loads((evaluated["eval_dir"] / "summary.json").read_text())
    train = {r["id"]: olelo.record_source_target(r)[1] for r in olelo.read_jsonl(evaluated["data"] / "train.jsonl")}
    chosen = s["reference_baselines"]["translation-memory"]["train_ids"]
    assert len(chosen) == 4 and set(chosen) <= set(train)
    for draw in s["reference_baselines"]["length-matched"]["draws"]:
        assert set(draw["train_ids"]) <= set(train)


def test_outputs_are_kept_and_rescore_reproduces_every_number(evaluated, tmp_path):
    import gzip
    import hashlib
    import shutil

    from conftest import script

    d = evaluated["eval_dir"]
    s = json.loads((d / "summary.json").read_text())
    kept = (d / "outputs.jsonl.gz").read_bytes()
    assert s["outputs"]["sha256"] == hashlib.sha256(kept).hexdigest()
    rows = [json.loads(line) for line in gzip.decompress(kept).decode().splitlines()]
    assert {r["system"] for r in rows} == {"base", "base-completion", "final", "best"} and len(rows) == 16
    assert all(set(r) == {"system", "id", "hypothesis", "tokens"} for r in rows)  # no source or reference text
    hyps = olelo.read_jsonl(d / "best" / "hyps.jsonl")
    assert [r["hypothesis"] for r in rows if r["system"] == "best"] == [h["hypothesis"] for h in hyps]

    ok = script("rescore.py", d / "summary.json")
    assert ok.returncode == 0 and ": ok (" in ok.stdout, ok.stdout + ok.stderr[-2000:]
    # A changed number is found ...
    copy = tmp_path / d.parent.name / d.name
    shutil.copytree(d.parent, copy.parent, ignore=shutil.ignore_patterns(".lock"))
    s["checkpoints"]["best"]["chrf"] += 0.01
    (copy / "summary.json").write_text(json.dumps(s))
    out = script("rescore.py", copy / "summary.json")
    assert out.returncode == 1 and "rows.best.chrf: committed" in out.stdout
    # ... and so are changed outputs.
    (copy / "outputs.jsonl.gz").write_bytes(kept[:-1] + bytes([kept[-1] ^ 1]))
    out = script("rescore.py", copy / "summary.json")
    assert out.returncode == 1 and "sha256 differs" in out.stdout


def test_ab_is_sorted_by_size_of_difference(evaluated):
    import csv

    rows = list(csv.DictReader(open(evaluated["eval_dir"] / "ab.csv", encoding="utf-8")))
    deltas = [abs(float(r["delta"])) for r in rows]
    assert deltas == sorted(deltas, reverse=True) and len(rows) == 4


def test_second_eval_reuses_everything_and_a_new_checkpoint_costs_one(evaluated):
    d = evaluated["eval_dir"]
    before = {p: p.stat().st_mtime_ns for p in d.glob("*/hyps.jsonl")}
    out = evaluated["make_eval"]()
    assert "translate.py" not in out.stdout and "perplexity.py" not in out.stdout
    out = evaluated["make_eval"]("EVAL_CKPTS=final best 2")
    assert out.stdout.count("scripts/translate.py") == 1
    assert (d / "ckpt-0000002" / "hyps.jsonl").is_file()
    assert all(p.stat().st_mtime_ns == t for p, t in before.items())
    assert "ckpt-0000002" in json.loads((d / "summary.json").read_text())["checkpoints"]


def test_scores_statistics_are_cached_beside_the_runs_and_read_back(evaluated):
    d = evaluated["eval_dir"]
    cache = d.parent.parent / ".segment-stats"  # RUNS_DIR/.segment-stats
    before = {p.name: p.stat().st_mtime_ns for p in cache.glob("*.json")}
    from olelo import semsim

    # semantic similarity's cosines too, where the model is installed
    assert {n.split("-")[0] for n in before} == {"bleu", "chrf", "ter"} | \
        ({"semsim", "embeddings"} if semsim.unavailable_reason() is None else set())
    assert not (d / ".segment-stats").exists()
    summary = d / "summary.json"
    old = json.loads(summary.read_text())
    evaluated["make_eval"]("BOOTSTRAP=60")  # the report again, other resamples: nothing extracted anew
    new = json.loads(summary.read_text())
    assert new["bootstrap"]["samples"] == 60
    assert {p.name: p.stat().st_mtime_ns for p in cache.glob("*.json")} == before
    for n in ("base", "copy-source", "empty"):
        assert new["baselines"][n]["ter"] == old["baselines"][n]["ter"]
    evaluated["make_eval"]()  # back to the fixture's BOOTSTRAP=50 for the tests after this one


def test_the_loop_stop_has_its_own_folder_and_is_recorded(evaluated):
    d = evaluated["eval_dir"]
    out = evaluated["make_eval"]("LOOP_STOP=1", "EVAL_CKPTS=final", "BASE_COMPLETION=0")
    on = d.with_name(d.name + "-loopstop")
    assert out.stdout.count("--loop-stop") == 2  # base and final, into their own folder
    decode = json.loads((on / "final" / "decode.json").read_text())
    assert decode["decoding"]["loop_stop"] is True and "loop_stop_rule" in decode["decoding"]
    assert decode["batch_size"] == DEFAULTS["EVAL_BATCH"] and decode["device"].startswith("Device(")
    rows = olelo.read_jsonl(on / "final" / "hyps.jsonl")
    assert all(isinstance(r["loop_stopped"], bool) for r in rows)
    summary = json.loads((on / "summary.json").read_text())
    assert summary["decoding"]["loop_stopped"] == {n: sum(r["loop_stopped"] for r in olelo.read_jsonl(
        on / n / "hyps.jsonl")) for n in ("base", "final")}
    assert "loop stop on" in (on / "summary.md").read_text()
    # the folder without the stop is untouched, and says its decoding was plain greedy
    assert json.loads((d / "base" / "decode.json").read_text())["decoding"] == {"sampler": "greedy",
                                                                              "loop_stop": False}


def test_bad_decoding_settings_are_refused_before_anything_runs(run_make):
    for setting, says in (("LOOP_STOP=yes", "LOOP_STOP='yes'"), ("REP_CONTEXT=0", "REP_CONTEXT='0'"),
                          ("REP_PENALTY=1;2", "REP_PENALTY='1;2'")):
        out = run_make("-n", "eval", setting, check=False)
        assert out.returncode != 0 and says in out.stderr, (setting, out.stderr[-500:])


def test_eval_prompt_is_the_training_prompt(evaluated):
    # mlx-lm trains on apply_chat_template(messages); the prompt part is what it
    # masks with --mask-prompt. Evaluation must feed exactly that prefix.
    from mlx_lm import load

    _, tokenizer = load(str(evaluated["tiny_model"]))
    records = olelo.read_jsonl(evaluated["data"] / "test.jsonl")
    prompts = generate.build_prompts(tokenizer, records)
    for record, prompt in zip(records, prompts):
        full = tokenizer.apply_chat_template(record["messages"], return_dict=False)
        assert full[: len(prompt)] == prompt
        assert tokenizer.decode(full[len(prompt):]).startswith(record["messages"][-1]["content"])


def test_fewshot_base_is_a_second_baseline(evaluated):
    d = evaluated["eval_dir"]
    out = evaluated["make_eval"]("BASE_PROMPT=fewshot", "SHOTS=2")
    assert out.stdout.count("scripts/translate.py") == 1 and "perplexity.py" not in out.stdout
    prompt = json.loads((d / "base-fewshot2-s0" / "prompt.json").read_text())
    train_ids = {r["id"] for r in olelo.read_jsonl(evaluated["data"] / "train.jsonl")}
    assert prompt["prompt"] == "fewshot" and prompt["shots"] == 2 and prompt["seed"] == 0
    assert len(prompt["example_ids"]["haw-en"]) == 2 and set(prompt["example_ids"]["haw-en"]) <= train_ids
    s = json.loads((d / "summary.json").read_text())
    assert list(s["baselines"]) == ["base", "base-completion", "base-fewshot2-s0", "copy-source", "translation-memory",
                                    "length-matched", "empty"]
    assert s["baselines"]["base-fewshot2-s0"]["prompt"] == prompt
    assert "base-fewshot2-s0" in s["checkpoints"]["best"]["vs_baselines"]


def test_fewshot_prompt_holds_the_examples_then_the_sentence(evaluated):
    from mlx_lm import load

    _, tokenizer = load(str(evaluated["tiny_model"]))
    records = olelo.read_jsonl(evaluated["data"] / "test.jsonl")[:2]
    train = olelo.read_jsonl(evaluated["data"] / "train.jsonl")
    shots = generate.pick_shots(train, {"haw-en"}, 2, seed=0)
    assert shots == generate.pick_shots(list(reversed(train)), {"haw-en"}, 2, seed=0)  # order-free draw
    pairs = {"haw-en": [olelo.record_source_target(r) for r in shots["haw-en"]]}
    for record, prompt in zip(records, generate.build_prompts(tokenizer, records, pairs)):
        text = tokenizer.decode(prompt)
        positions = [text.index(part) for pair in pairs["haw-en"] for part in pair]
        source = olelo.record_source_target(record)[0]
        assert positions == sorted(positions) and text.rindex(source) > positions[-1]
    with pytest.raises(olelo.UserError, match="only 6 haw-en pairs"):
        generate.pick_shots(train, {"haw-en"}, 7, seed=0)


def test_perplexity_line_is_parsed_as_mlx_lm_prints_it():
    out = "Loading pretrained model\nTesting\nTest loss 2.910, Test ppl 18.357.\n"
    assert evaluation.parse_test_loss(out) == (2.910, 18.357)
    with pytest.raises(olelo.UserError):
        evaluation.parse_test_loss("Test loss: 2.9")


def test_translate_gathers_mlx_lms_counts_over_its_batches(tiny_model, tiny_data):
    model, tokenizer = olelo.load_model(str(tiny_model))
    records = olelo.read_jsonl(tiny_data / "test.jsonl")
    stats = {}
    rows = generate.translate(model, tokenizer, records, 6, 2, progress=False, stats=stats)  # three batches
    assert set(stats) == {"prompt_tokens", "prompt_s", "generated_tokens", "decode_s"}
    # mlx-lm prefills all but each prompt's last token, which starts the decoding
    assert stats["prompt_tokens"] == sum(len(p) - 1 for p in generate.build_prompts(tokenizer, records))
    # mlx-lm counts a stop token it generated; the rows leave it out
    assert sum(r["tokens"] for r in rows) <= stats["generated_tokens"] <= 6 * len(records)
    assert stats["prompt_s"] > 0 and stats["decode_s"] > 0
