"""Tests of scripts/build_tiny_model.py: the tiny random Gemma-3 model loads in
mlx-lm with the exact parameter count, chats in Gemma-3 format, stops at
<end_of_turn>, is reproducible from its seed, and quantizes for QLoRA."""

import json
import subprocess
import sys
from pathlib import Path

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest
from mlx.utils import tree_flatten
from mlx_lm import generate, load, stream_generate
from mlx_lm.utils import get_total_parameters

import olelo
from olelo import tiny_tokenizer

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "build_tiny_model.py"
TINY_VOCAB = 300  # as the tiny_model fixture in conftest.py


@pytest.fixture(scope="module")
def float_model(tiny_model):
    return load(str(tiny_model), return_config=True)


def expected_parameters(c: dict) -> int:
    h, i, d = c["hidden_size"], c["intermediate_size"], c["head_dim"]
    q, kv = c["num_attention_heads"] * d, c["num_key_value_heads"] * d
    attention = h * q + 2 * h * kv + q * h + 2 * d  # q, k, v, o + q/k norms
    mlp = 3 * h * i
    layer = attention + mlp + 4 * h  # four norms around attention and MLP
    return c["vocab_size"] * h + c["num_hidden_layers"] * layer + h  # tied head


def test_loads_with_exact_parameter_count(float_model):
    model, tokenizer, config = float_model
    assert config["model_type"] == "gemma3_text"
    assert config["num_hidden_layers"] >= 6
    assert config["vocab_size"] == len(tokenizer) <= TINY_VOCAB
    assert "lm_head" not in model  # tied to the embeddings, as in Gemma
    n = sum(v.size for _, v in tree_flatten(model.parameters()))
    assert n == get_total_parameters(model) == expected_parameters(config)
    # the defaults: 6 x 64 wide, 2 heads of 32, MLP 256
    assert expected_parameters(config) == config["vocab_size"] * 64 + 6 * 61760 + 64


def test_special_tokens_and_stop_ids(float_model):
    _, tokenizer, config = float_model
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in tiny_tokenizer.SPECIAL_TOKENS}
    assert list(ids.values()) == list(range(6))
    assert (tokenizer.bos_token, tokenizer.eos_token, tokenizer.pad_token) == ("<bos>", "<eos>", "<pad>")
    assert config["eos_token_id"] == [ids["<eos>"], ids["<end_of_turn>"]]
    assert tokenizer.eos_token_ids == {ids["<eos>"], ids["<end_of_turn>"]}
    assert tokenizer.encode("Aloha")[0] == ids["<bos>"]
    assert tokenizer.decode(tokenizer.encode("Aloha ʻāina\n\nkāua")[1:]) == "Aloha ʻāina\n\nkāua"


def chat_prompt(tokenizer, source="Aloha"):
    return tokenizer.apply_chat_template(
        olelo.prompt_messages(source, "haw-en"), add_generation_prompt=True, tokenize=False)


def test_generate_returns_text_within_max_tokens(float_model):
    model, tokenizer, _ = float_model
    text = generate(model, tokenizer, chat_prompt(tokenizer), max_tokens=8)
    assert isinstance(text, str) and text
    last = list(stream_generate(model, tokenizer, chat_prompt(tokenizer), max_tokens=8))[-1]
    assert last.generation_tokens <= 8


def test_generation_stops_at_end_of_turn(float_model):
    model, tokenizer, _ = float_model
    end_of_turn = tokenizer.convert_tokens_to_ids("<end_of_turn>")

    def end_turn_at_third_token(tokens, logits):
        # tokens holds the prompt followed by what has been generated
        if len(tokens) - prompt_len == 2:
            return mx.where(mx.arange(logits.shape[-1]) == end_of_turn, 1e9, -1e9)[None]
        return logits

    prompt = tokenizer.apply_chat_template(
        olelo.prompt_messages("Aloha", "haw-en"), add_generation_prompt=True)
    prompt_len = len(prompt)
    last = list(stream_generate(model, tokenizer, prompt, max_tokens=8,
                                logits_processors=[end_turn_at_third_token]))[-1]
    assert (last.finish_reason, last.token, last.generation_tokens) == ("stop", end_of_turn, 3)


SYSTEM = olelo.system_prompt("haw-en")
TEMPLATE_CASES = [
    # (messages, add_generation_prompt, expected string)
    (olelo.prompt_messages("Aloha", "haw-en"), True,
     f"<bos><start_of_turn>user\n{SYSTEM}\n\nAloha<end_of_turn>\n<start_of_turn>model\n"),
    (olelo.chat_record("Aloha", "Hello", "haw-en", "x")["messages"], False,
     f"<bos><start_of_turn>user\n{SYSTEM}\n\nAloha<end_of_turn>\n"
     "<start_of_turn>model\nHello<end_of_turn>\n"),
    ([{"role": "user", "content": " hi \n"}], False,
     "<bos><start_of_turn>user\nhi<end_of_turn>\n"),
    ([{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
      {"role": "user", "content": "c"}], True,
     "<bos><start_of_turn>user\na<end_of_turn>\n<start_of_turn>model\nb<end_of_turn>\n"
     "<start_of_turn>user\nc<end_of_turn>\n<start_of_turn>model\n"),
]


@pytest.mark.parametrize("messages,add_generation_prompt,expected", TEMPLATE_CASES)
def test_chat_template_is_gemma3(float_model, messages, add_generation_prompt, expected):
    _, tokenizer, _ = float_model
    text = tokenizer.apply_chat_template(
        messages, add_generation_prompt=add_generation_prompt, tokenize=False)
    assert text == expected


@pytest.mark.parametrize("source,target", [
    ("Aloha", "Hello"),
    ("Ua hele ke aliʻi i ka moku.", " The chief went\n\nto the ship. "),
    ("  leading spaces", "\nnewline first"),
    ("kāua 🌺", "model\nmodel"),
    ("x", "<eos> is text here"),
])
def test_prompt_tokens_are_a_prefix_of_the_conversation(float_model, source, target):
    # What mlx_lm.lora --mask-prompt computes (tuner/datasets.py ChatDataset).
    _, tokenizer, _ = float_model
    messages = olelo.chat_record(source, target, "haw-en", "x")["messages"]
    full = tokenizer.apply_chat_template(messages, return_dict=False)
    prompt = tokenizer.apply_chat_template(messages[:-1], add_generation_prompt=True,
                                           return_dict=False)
    assert full[:len(prompt)] == prompt
    assert len(full) > len(prompt)


def test_newlines_never_merge():
    # Keeps the prefix property even for text the template does not trim.
    tok = tiny_tokenizer.train_tokenizer(["a\n\n\n\nb\n\nc"] * 50, TINY_VOCAB)
    newline = tok.encode("\n", add_special_tokens=False).ids
    assert len(newline) == 1
    assert tok.encode("\n\n\n\n", add_special_tokens=False).ids == newline * 4


def build(tmp_path, name, seed, text):
    out = tmp_path / name
    result = run_script("--text", text, "--out", out, "--seed", seed, "--vocab-size", TINY_VOCAB)
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def test_same_seed_same_weights_other_seed_other_weights(tmp_path, tiny_text):
    a = mx.load(str(build(tmp_path, "a", 0, tiny_text) / "model.safetensors"))
    b_dir = build(tmp_path, "b", 0, tiny_text)
    b = mx.load(str(b_dir / "model.safetensors"))
    assert a.keys() == b.keys()
    assert all(mx.array_equal(a[k], b[k]) for k in a)
    assert (tmp_path / "a" / "tokenizer.json").read_bytes() == (b_dir / "tokenizer.json").read_bytes()

    build(tmp_path, "b", 1, tiny_text)  # also replaces an existing build
    c = mx.load(str(b_dir / "model.safetensors"))
    random_weights = [k for k in a if "norm" not in k]  # norms start at 0
    assert random_weights and not any(mx.array_equal(a[k], c[k]) for k in random_weights)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]  # no temp folders left


def test_quantized_model_is_close_to_float(float_model, tiny_model_4bit):
    model, tokenizer, config = float_model
    qmodel, _, qconfig = load(str(tiny_model_4bit), return_config=True)
    assert qconfig["quantization"] == {"group_size": 64, "bits": 4, "mode": "affine"}
    assert isinstance(qmodel.layers[0].self_attn.q_proj, nn.QuantizedLinear)
    assert isinstance(qmodel.layers[-1].mlp.down_proj, nn.QuantizedLinear)
    assert isinstance(qmodel.model.embed_tokens, nn.QuantizedEmbedding)
    assert get_total_parameters(qmodel) == expected_parameters(config)

    ids = mx.array([tokenizer.apply_chat_template(
        olelo.prompt_messages("Ua hele ke aliʻi i ka moku.", "haw-en"), add_generation_prompt=True)])
    logits, qlogits = np.array(model(ids)[0]), np.array(qmodel(ids)[0])
    # Measured 0.94-0.96 over seeds 0-2 (with Gemma's zero-initialised norms;
    # mlx-lm's default of ones gave ~0.65). Unrelated logits give ~0.
    assert np.corrcoef(logits.ravel(), qlogits.ravel())[0, 1] > 0.9
    assert not np.array_equal(logits, qlogits)


def run_script(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)],
                          capture_output=True, text=True)


def test_help():
    result = run_script("--help")
    assert result.returncode == 0 and "--quantized-out" in result.stdout


@pytest.mark.parametrize("content,message", [
    (None, "no such file"),
    ("", "empty file"),
    ("L1 Hawaiian_Text,Reference_Translation\n", "no text in it"),
    ("hawaiian,english\nAloha,Hello\n", "missing CSV column(s) 'L1 Hawaiian_Text'"),
])
def test_bad_input_is_a_clean_error(tmp_path, content, message):
    text = tmp_path / "pairs.csv"
    if content is not None:
        text.write_text(content, encoding="utf-8")
    result = run_script("--text", text, "--out", tmp_path / "model")
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "model").exists()


def test_jsonl_input(tmp_path):
    records = [olelo.chat_record("Aloha", "Hello", "haw-en", "1")]
    olelo.atomic_write_jsonl(tmp_path / "train.jsonl", records)
    out = build(tmp_path, "model", 0, tmp_path / "train.jsonl")
    assert json.loads((out / "config.json").read_text())["vocab_size"] > 256


# The script run as `python scripts/build_tiny_model.py ARGS`, with mlx-lm's quantization broken.
BROKEN_QUANTIZATION = """
import runpy, sys
import mlx_lm.utils

def broken(*args, **kwargs):
    raise RuntimeError("quantization failed")

mlx_lm.utils.quantize_model = broken
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def test_failed_build_leaves_nothing(tmp_path, tiny_text):
    out = build(tmp_path, "model", 0, tiny_text)
    before = (out / "model.safetensors").read_bytes()
    result = subprocess.run([sys.executable, "-c", BROKEN_QUANTIZATION, str(SCRIPT), "--text", str(tiny_text),
                             "--out", str(out), "--seed", "1", "--quantized-out", str(tmp_path / "q")],
                            capture_output=True, text=True)
    assert result.returncode != 0 and "RuntimeError: quantization failed" in result.stderr, result.stderr[-3000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
    assert (out / "model.safetensors").read_bytes() == before  # old build untouched


def test_csv_text_is_both_columns(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text('L1 Hawaiian_Text,Reference_Translation,x\n"a, b",c,d\n', encoding="utf-8")
    assert tiny_tokenizer.read_texts([path]) == ["a, b", "c"]
