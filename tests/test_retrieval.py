"""DATA=rag (scripts/retrieval_data.py, olelo/retrieval.py): every prompt carries its k
nearest training pairs by translation memory's match, never its own pair, only training
pairs; the plain sentence stays what pair identity, references and the yardstick read;
the augmented prompt is what training (train.jsonl's messages) and evaluation
(olelo.generate, which scripts/translate.py and VAL_GEN run) give the model."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

import olelo
from olelo import data, evaluation, generate, identity, retrieval, yardstick
from olelo.prompt import retrieval_content

REPO = Path(__file__).resolve().parents[1]
SPLITS = ("train", "valid", "test", "sealed")


def run(*args):
    return subprocess.run([sys.executable, *map(str, args)], cwd=REPO, capture_output=True, text=True)


def read(folder: Path) -> dict:
    return {s: olelo.read_jsonl(folder / f"{s}.jsonl") for s in SPLITS}


@pytest.fixture(scope="module")
def story_split(tmp_path_factory):
    """The committed sample (42 pairs) split by stories (33 train, 3 valid, 3 test, 3 sealed)."""
    tmp = tmp_path_factory.mktemp("rag")
    out = run("scripts/convert_fornander.py", "data/sample/sample_pairs.csv", "-o", tmp / "l.jsonl")
    assert out.returncode == 0, out.stderr
    out = run("scripts/split.py", "--out", tmp / "ft", "--by", "stories", "--block-size", "4", f"large={tmp / 'l.jsonl'}")
    assert out.returncode == 0, out.stderr
    return tmp / "ft"


def build(root: Path, k: int, name: str | None = None) -> Path:
    out = root / (name or f"rag-k{k}")
    proc = run("scripts/retrieval_data.py", "--src", root / "large", "--k", k, "--out", out)
    assert proc.returncode == 0, proc.stderr
    return out


def test_k1_examples_are_translation_memorys_choice(story_split):
    plain, rag = read(story_split / "large"), read(build(story_split, 1))
    train = evaluation.pairs_of(plain["train"])
    for split in ("valid", "test", "sealed"):
        tm = yardstick.translation_memory([p["source"] for p in evaluation.pairs_of(plain[split])],
                                          [p["source"] for p in train], [p["target"] for p in train])
        assert [r["retrieved"] for r in rag[split]] == [[train[i]["id"]] for i in tm["index"]]
        # the example in the prompt is that pair's text
        for r, i, hyp in zip(rag[split], tm["index"], tm["hypotheses"]):
            assert f"\n{train[i]['source']}\n=> {hyp}\nTranslate:\n" in r["messages"][1]["content"]


def test_k2_never_retrieves_its_own_pair_and_only_training_pairs(story_split):
    plain, rag = read(story_split / "large"), read(build(story_split, 2))
    train_ids = [r["id"] for r in plain["train"]]
    for split in SPLITS:
        for r in rag[split]:
            assert len(r["retrieved"]) == 2 and len(set(r["retrieved"])) == 2
            assert set(r["retrieved"]) <= set(train_ids)
            assert r["id"] not in r["retrieved"]
    # Without the exclusion every training record's best match is itself (chrF++ 100).
    scores = yardstick.pairwise_chrf(*[[olelo.record_source_target(r)[0] for r in plain["train"]]] * 2)
    assert (scores.argmax(axis=0) == range(len(train_ids))).all()


def test_both_directions_never_retrieve_the_other_direction_of_their_pair():
    pairs = [("Ua hele ke aliʻi i ka moku.", "The chief went to the ship."),
             ("Ua hele ke aliʻi i ka hale.", "The chief went to the house."),
             ("Noho ana ka makuakāne ma ka hale.", "The father was living at the house."),
             ("Ua uwē ka poʻe a pau loa.", "All the people wept.")]
    train = []
    for h, e in pairs:
        train += [olelo.chat_record(h, e, "haw-en", data.pair_id(h, e) + "-haw-en"),
                  olelo.chat_record(e, h, "en-haw", data.pair_id(h, e) + "-en-haw")]
    nearest = retrieval.nearest_training_pairs(train, train, 3)
    for r, idx in zip(train, nearest):
        assert idx and all(train[j]["direction"] == r["direction"] for j in idx)  # same direction only
        assert data.record_pair_id(r) not in {data.record_pair_id(train[j]) for j in idx}
        assert len(idx) == 3  # the other three pairs of its direction


def test_a_pair_sharing_a_text_is_never_retrieved():
    """Two versions of one chant (Hawaiian spelled apart, one English), as the Fornander
    training split has: each was the other's nearest and handed over the answer verbatim.
    Same for a shared Hawaiian with another English. The leak check's rule: a text by match key."""
    pairs = [("E Kaulu-e, awa ia, E Kaulu-e, kikoo-lia.", "Say, Kaulu, turn down; Say, Kaulu, stretch out."),
             ("E Kaulu e, awaa ia. E Kaulu-e, kikoo-lia.", "Say, Kaulu, turn down. Say, Kaulu, stretch out."),
             ("Ua hele ke aliʻi i ka moku.", "The chief went to the ship."),
             ("Ua hele ke aliʻi i ka moku!", "The chief had gone to the ship."),
             ("Noho ana ka makuakāne ma ka hale.", "The father was living at the house."),
             ("Ua uwē ka poʻe a pau loa.", "All the people wept.")]
    train = [olelo.chat_record(h, e, "haw-en", data.pair_id(h, e) + "-haw-en") for h, e in pairs]
    nearest = retrieval.nearest_training_pairs(train, train, 5)
    shares = {0: 1, 1: 0, 2: 3, 3: 2}
    for i, idx in enumerate(nearest):
        assert shares.get(i) not in idx and i not in idx
        assert len(idx) == (4 if i in shares else 5)
    # By chrF++ alone each of them is the other's nearest: only the exclusion keeps it out.
    scores = yardstick.pairwise_chrf(*[[h for h, _ in pairs]] * 2)
    for i, other in shares.items():
        assert max((j for j in range(6) if j != i), key=lambda j: scores[j, i]) == other


def test_the_folder_is_deterministic_and_keeps_the_plain_pairs(story_split):
    a, b = build(story_split, 2), build(story_split, 2, "rag-again")
    for split in SPLITS:
        assert (a / f"{split}.jsonl").read_bytes() == (b / f"{split}.jsonl").read_bytes()
    plain, rag = read(story_split / "large"), read(a)
    train = {r["id"]: olelo.record_source_target(r) for r in plain["train"]}
    for split in SPLITS:
        assert [r["id"] for r in rag[split]] == [r["id"] for r in plain[split]]
        for p, r in zip(plain[split], rag[split]):
            # what pair identity, references, leak checks and the yardstick read: the plain pair
            assert olelo.record_source_target(r) == olelo.record_source_target(p)
            assert data.record_pair_id(r) == data.record_pair_id(p)
            # what the model reads: the examples, then the sentence; the system prompt unchanged
            assert r["messages"][0] == p["messages"][0]
            assert r["messages"][1]["content"] == retrieval_content(r["source"], [train[i] for i in r["retrieved"]])
            assert r["messages"][1]["content"].startswith("Examples from the same collection:\n")
            assert r["messages"][1]["content"].endswith("\nTranslate:\n" + r["source"])
            assert r["messages"][2] == p["messages"][2]
    manifest = json.loads((a / "manifest.json").read_text())
    assert manifest["split"] == "stories" and manifest["k"] == 2 and manifest["counts"]["train"] == len(rag["train"])
    assert set(manifest["prompt_chars"]) == {"max_chars", *SPLITS}
    assert data.dataset_label(a) == "rag-k2-stories"  # never a plain run's stamp
    assert identity.verify_split(a) is None
    assert run("scripts/split.py", "--check", story_split).returncode == 0  # no leaks across the folders


def test_long_prompts_are_counted(story_split):
    proc = run("scripts/retrieval_data.py", "--src", story_split / "large", "--k", 2, "--max-chars", 300,
               "--out", story_split / "rag-long")
    assert proc.returncode == 0, proc.stderr
    rag = read(story_split / "rag-long")
    counts = json.loads((story_split / "rag-long" / "manifest.json").read_text())["prompt_chars"]
    for split in SPLITS:
        assert counts[split]["over_max_chars"] == sum(data.text_length(r) > 300 for r in rag[split]) > 0
    assert f"{sum(counts[s]['over_max_chars'] for s in SPLITS)} record(s) longer than 300 characters" in proc.stderr


def test_records_with_fewer_than_k_examples_are_counted_and_said(story_split):
    """33 training pairs, k = 40: no record can carry 40 examples; each split says how many fell short."""
    proc = run("scripts/retrieval_data.py", "--src", story_split / "large", "--k", 40, "--out", story_split / "rag-k40")
    assert proc.returncode == 0, proc.stderr
    rag = read(story_split / "rag-k40")
    short = json.loads((story_split / "rag-k40" / "manifest.json").read_text())["fewer_than_k"]
    assert short == {s: sum(len(r["retrieved"]) < 40 for r in rag[s]) for s in SPLITS}
    assert short["train"] == len(rag["train"]) > 0
    assert f"warning: {sum(short.values())} record(s) carry fewer than 40 examples" in proc.stderr
    assert json.loads((build(story_split, 2) / "manifest.json").read_text())["fewer_than_k"] == dict.fromkeys(SPLITS, 0)


@pytest.mark.parametrize("args,needle", [(("--k", "0"), "--k 0"), (("--max-chars", "0"), "--max-chars 0")])
def test_bad_values_are_refused_in_one_line(story_split, args, needle):
    proc = run("scripts/retrieval_data.py", "--src", story_split / "large", *args, "--out", story_split / "bad")
    assert proc.returncode == 2 and needle in proc.stderr and "Traceback" not in proc.stderr
    assert not (story_split / "bad").exists()


class Recorder:
    """A tokenizer that records the messages it is given."""

    def __init__(self):
        self.seen = []

    def apply_chat_template(self, messages, **kw):
        self.seen.append(messages)
        return [1, 2, 3]


def test_evaluation_and_training_see_the_augmented_prompt(story_split):
    rag = read(build(story_split, 2))
    tok = Recorder()
    generate.build_prompts(tok, rag["test"])  # what translate.py, make eval and VAL_GEN translate
    assert tok.seen == [r["messages"][:2] for r in rag["test"]]
    assert all("Examples from the same collection:" in m[1]["content"] for m in tok.seen)
    plain = read(story_split / "large")
    tok = Recorder()
    generate.build_prompts(tok, plain["test"])  # plain records: the prompt as before
    assert tok.seen == [olelo.prompt_messages(olelo.record_source_target(r)[0], "haw-en") for r in plain["test"]]
    with pytest.raises(olelo.UserError, match="--shots"):
        generate.build_prompts(Recorder(), rag["test"], shots={"haw-en": [("a", "b")]})
    from mlx_lm.tuner.datasets import ChatDataset  # what mlx_lm.lora trains on: train.jsonl's messages

    tok = Recorder()
    ChatDataset(rag["train"], tok).process(rag["train"][0])
    assert tok.seen[0] == rag["train"][0]["messages"] and "\n=> " in tok.seen[0][1]["content"]


def test_val_gen_translates_the_augmented_prompt_against_the_plain_reference(story_split, monkeypatch):
    import mlx.core as mx
    from olelo import trainer

    rag = read(build(story_split, 2))["valid"]
    tok = Recorder()
    tok.encode = lambda text: text.split()

    def translate(model, tokenizer, records, caps, batch_size, **kw):  # generate.translate's prompts, no model
        generate.build_prompts(tokenizer, records)
        return [{"hypothesis": olelo.record_source_target(r)[1], "tokens": 1} for r in records]

    monkeypatch.setattr(generate, "translate", translate)
    val = trainer.ValChrf(rag, len(rag), 0, tok, 2, mx.distributed.init())
    assert val.refs == [r["messages"][2]["content"] for r in rag]
    assert val(type("Model", (), {"eval": lambda self: None})())["val_chrf"] == 100.0
    assert sorted(map(str, tok.seen)) == sorted(str(r["messages"][:2]) for r in rag)


def test_yardstick_rows_equal_the_plain_runs(story_split):
    plain, rag = read(story_split / "large"), read(build(story_split, 2))
    hyps = {"model": [olelo.record_source_target(r)[1][::-1] for r in plain["test"]]}
    quiet = dict(bootstrap=50, seed=12345, semsim_ok=False, progress=lambda *a: None)
    want = evaluation.score_systems(evaluation.pairs_of(plain["test"]), evaluation.pairs_of(plain["train"]), hyps, **quiet)
    got = evaluation.score_systems(evaluation.pairs_of(rag["test"]), evaluation.pairs_of(rag["train"]), hyps, **quiet)
    assert set(got["rows"]) >= {"copy-source", "translation-memory", "model"}
    assert got == want


def test_translate_feeds_the_augmented_prompt_to_a_model(story_split, tiny_model):
    """A real (tiny) model: the prompt tokens it reads grow by exactly the augmented prompts' extra tokens."""
    rag = read(build(story_split, 2))["test"][:2]
    plain = read(story_split / "large")["test"][:2]
    model, tok = olelo.load_model(str(tiny_model))

    def prompt_tokens(records):
        stats = {}
        generate.translate(model, tok, records, 4, 2, progress=False, stats=stats)
        return stats["prompt_tokens"]

    def template_tokens(records):
        return sum(len(tok.apply_chat_template(olelo.prompt.prompt_for_record(r), add_generation_prompt=True,
                                               return_dict=False)) for r in records)

    extra = template_tokens(rag) - template_tokens(plain)
    assert extra > 50
    assert prompt_tokens(rag) - prompt_tokens(plain) == extra


def test_make_builds_rag_for_training(run_make, tmp_path):
    out = run_make("-n", "train-large", "DATA=rag", "RAG_K=3", f"SPLITS={tmp_path}").stdout
    assert f"scripts/retrieval_data.py --src {tmp_path}/large --k 3 --out {tmp_path}/rag-k3" in out
    lora = next(line for line in out.splitlines() if "mlx_lm.lora" in line)
    assert f"--data {tmp_path}/rag-k3 " in lora
    bad = run_make("-n", "train-large", "DATA=rag", "RAG_K=0", check=False)
    assert bad.returncode == 2 and "RAG_K='0'" in bad.stderr


@pytest.mark.parametrize("changed", ["scripts/retrieval_data.py", "olelo/retrieval.py", "olelo/prompt.py",
                                     "olelo/yardstick.py"])
def test_make_rebuilds_rag_when_its_code_changes(run_make, tmp_path, changed):
    """A folder newer than everything is up to date; the same folder once the code that
    decides its prompts has changed (make -W: as if just edited) is rebuilt. The similarity
    lives in olelo/yardstick.py, which the rule did not list: a new similarity left the old
    prompts in place without a word."""
    for f in ("large/manifest.json", ".split-vars", "rag-k2/manifest.json"):
        (tmp_path / f).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / f).write_text("{}")
    fixed = ["-o", f"{tmp_path}/large/manifest.json", "-o", f"{tmp_path}/.split-vars"]
    target = [f"SPLITS={tmp_path}", f"{tmp_path}/rag-k2/manifest.json"]
    assert "retrieval_data.py" not in run_make("-n", *fixed, *target).stdout
    assert "scripts/retrieval_data.py --src" in run_make("-n", *fixed, "-W", changed, *target).stdout
