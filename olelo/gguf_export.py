"""A fused MLX model folder written as a GGUF file for llama.cpp (and so Ollama and LM
Studio), with the `gguf` package's writer. scripts/export_gguf.py is its command line.

The reverse of olelo.gguf_arch (which reads the lab's base models out of GGUF files):
Hugging Face / mlx-lm tensor names -> llama.cpp's, llama.cpp's per-tensor conventions
redone (Gemma's RMSNorm stores 1 + w; Llama's q/k rows are permuted for its RoPE), the
architecture's metadata from config.json, the tokenizer, the chat template, and the run's
identity under `olelo.*` keys. Only Gemma 3 (text) and Llama are handled; a setting that
llama.cpp's Gemma 3 code does not read from the file (it hard-codes them) is checked
against those values and refused when it differs, never written and hoped for.

The tokenizer: a base that the lab converted from a GGUF (its conversion.json names the
file's sha256, the file is in models/.cache) gets that file's vocabulary back verbatim,
so llama.cpp tokenizes as it did for the original. A byte-level BPE tokenizer.json (the
tiny test model's) is written as llama.cpp's "gpt2" vocabulary. Anything else (a
SentencePiece-style tokenizer with no GGUF to take it from) is refused.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

import numpy as np

from olelo.cli import UserError
from olelo.gguf_arch import BASES, GEMMA3_NAMES, LLAMA_NAMES

TYPES = ("f16", "bf16", "q8_0")
MODEL_TYPES = {"gemma3_text": "gemma3", "gemma3": "gemma3", "llama": "llama"}
# What llama.cpp's Gemma 3 code assumes instead of reading it from the file.
GEMMA3_FIXED = {"sliding_window_pattern": 6, "rope_local_base_freq": 10000.0}
CACHE = Path("models/.cache")


def _inverse(table: dict) -> dict:
    return {hf: gg for gg, hf in table.items()}


NAMES = {"gemma3": _inverse(GEMMA3_NAMES), "llama": _inverse(LLAMA_NAMES)}


def gguf_name(hf: str, arch: str) -> str:
    m = re.match(r"model\.layers\.(\d+)\.(.+)$", hf)
    table = NAMES[arch]
    key = f"model.layers.{{n}}.{m[2]}" if m else hf
    if key not in table:
        raise UserError(f"tensor {hf}: no llama.cpp name for it in a {arch} model (export_gguf.py knows "
                        f"{len(table)} kinds); is this a LoRA-fused {arch} model?")
    return table[key].format(n=m[1]) if m else table[key]


def permute_rope(w: np.ndarray, heads: int) -> np.ndarray:
    """llama.cpp's permutation of q/k rows (olelo.gguf_arch.unpermute_rope undoes it)."""
    half = w.shape[0] // heads // 2
    return w.reshape(heads, 2, half, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def convert_tensor(hf: str, w: np.ndarray, arch: str, config: dict) -> np.ndarray:
    if arch == "gemma3" and hf.endswith("norm.weight"):
        return w + 1.0  # Gemma's RMSNorm multiplies by (1 + w); llama.cpp stores the sum
    if arch == "llama" and hf.endswith("self_attn.q_proj.weight"):
        return permute_rope(w, config["num_attention_heads"])
    if arch == "llama" and hf.endswith("self_attn.k_proj.weight"):
        return permute_rope(w, config["num_key_value_heads"])
    return w


# ---------------------------------------------------------------- metadata
def architecture(config: dict, folder: Path) -> str:
    if config.get("quantization") or config.get("quantization_config"):
        raise UserError(f"{folder}: a quantized model; GGUF export needs float weights: fuse with "
                        f"DEQUANTIZE=1 (make gguf RUN=... DEQUANTIZE=1)")
    arch = MODEL_TYPES.get(config.get("model_type"))
    if arch is None:
        raise UserError(f"{folder}: model_type {config.get('model_type')!r}; export_gguf.py writes "
                        f"{', '.join(sorted(MODEL_TYPES))} only")
    if config.get("rope_scaling"):
        raise UserError(f"{folder}: RoPE scaling {config['rope_scaling']!r} is not handled; plain RoPE only")
    if arch == "gemma3":
        for key, want in GEMMA3_FIXED.items():
            if config.get(key, want) != want:
                raise UserError(f"{folder}: config {key}={config[key]!r}, but llama.cpp's Gemma 3 uses {want} "
                                f"whatever the file says: the GGUF would compute another model")
        if config.get("query_pre_attn_scalar", config["head_dim"]) != config["head_dim"]:
            raise UserError(f"{folder}: query_pre_attn_scalar {config['query_pre_attn_scalar']} != head_dim "
                            f"{config['head_dim']}: llama.cpp scales queries by head_dim**-0.5 (but for 27B)")
        for key in ("attn_logit_softcapping", "final_logit_softcapping"):
            if config.get(key):
                raise UserError(f"{folder}: {key}={config[key]} is not handled")
    return arch


def arch_metadata(arch: str, config: dict) -> dict:
    """(key -> value) of the architecture, typed as llama.cpp reads them (uint32 / float32)."""
    heads = config["num_attention_heads"]
    head_dim = config.get("head_dim") or config["hidden_size"] // heads
    u32 = {
        "context_length": config["max_position_embeddings"],
        "embedding_length": config["hidden_size"],
        "block_count": config["num_hidden_layers"],
        "feed_forward_length": config["intermediate_size"],
        "attention.head_count": heads,
        "attention.head_count_kv": config["num_key_value_heads"],
    }
    f32 = {"attention.layer_norm_rms_epsilon": config["rms_norm_eps"], "rope.freq_base": config["rope_theta"]}
    if arch == "gemma3":
        u32.update({"attention.key_length": head_dim, "attention.value_length": head_dim,
                    "attention.sliding_window": config["sliding_window"]})
    else:
        u32.update({"rope.dimension_count": head_dim, "vocab_size": config["vocab_size"]})
    return {f"{arch}.{k}": ("u32", int(v)) for k, v in u32.items()} | \
           {f"{arch}.{k}": ("f32", float(v)) for k, v in f32.items()}


# ---------------------------------------------------------------- tokenizer
def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def source_gguf(folder: Path, base_model: str | None, cache: Path = CACHE) -> Path | None:
    """The GGUF the lab converted the model's base from, when it is there and the fused
    folder's tokenizer.json is the base's own."""
    for candidate in (folder, Path(base_model) if base_model else None):
        if candidate is None or not (candidate / "conversion.json").is_file():
            continue
        conv = json.loads((candidate / "conversion.json").read_text(encoding="utf-8"))
        base = BASES.get(conv.get("base"))
        if base is None:
            continue
        gguf = cache / base["gguf"]
        if not gguf.is_file() or base["sha256"] != conv.get("gguf_sha256"):
            return None
        if candidate != folder and sha256(candidate / "tokenizer.json") != sha256(folder / "tokenizer.json"):
            return None
        return gguf
    return None


def tokenizer_from_gguf(path: Path) -> dict:
    """tokenizer.ggml.* of a GGUF, as (type, value) for the writer."""
    import gguf

    reader = gguf.GGUFReader(path)
    out = {}
    for key, f in reader.fields.items():
        if key.startswith("tokenizer.ggml."):
            out[key] = ("raw", (f.contents(), f.types))
    return out


def tokenizer_from_json(folder: Path, config: dict) -> dict:
    """llama.cpp's "gpt2" vocabulary from a byte-level BPE tokenizer.json."""
    tok = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
    model = tok.get("model") or {}
    pre = json.dumps(tok.get("pre_tokenizer"))
    if model.get("type") != "BPE" or "ByteLevel" not in pre or model.get("byte_fallback"):
        raise UserError(f"{folder}/tokenizer.json: not a byte-level BPE tokenizer, and no GGUF of the base "
                        f"to take the vocabulary from (conversion.json + models/.cache); export_gguf.py "
                        f"does not build a SentencePiece vocabulary")
    n = int(config["vocab_size"])
    tokens = [f"[PAD{i}]" for i in range(n)]
    types = [5] * n  # UNUSED until a token takes the id
    for text, i in model["vocab"].items():
        if i < n:
            tokens[i], types[i] = text, 1
    for added in tok.get("added_tokens", []):
        if added["id"] < n:
            tokens[added["id"]] = added["content"]
            types[added["id"]] = 3 if added.get("special") else 4
    merges = [m if isinstance(m, str) else " ".join(m) for m in model.get("merges", [])]
    tconf = _read_json(folder / "tokenizer_config.json")
    ids = {t["content"]: t["id"] for t in tok.get("added_tokens", [])}
    out = {"tokenizer.ggml.model": ("str", "gpt2"), "tokenizer.ggml.pre": ("str", "gpt-2"),
           "tokenizer.ggml.tokens": ("strs", tokens), "tokenizer.ggml.token_type": ("i32s", types),
           "tokenizer.ggml.merges": ("strs", merges),
           "tokenizer.ggml.add_bos_token": ("bool", bool(tconf.get("add_bos_token", False))),
           "tokenizer.ggml.add_eos_token": ("bool", bool(tconf.get("add_eos_token", False)))}
    for key, name in (("bos", "bos_token"), ("eos", "eos_token"), ("unknown", "unk_token"), ("padding", "pad_token")):
        text = tconf.get(name)
        text = text.get("content") if isinstance(text, dict) else text
        if text in ids or text in model["vocab"]:
            out[f"tokenizer.ggml.{key}_token_id"] = ("u32", ids.get(text, model["vocab"].get(text)))
    return out


def chat_template(folder: Path) -> str | None:
    """The folder's chat template: chat_template.jinja (where transformers now saves it, as
    mlx_lm.fuse does) or tokenizer_config.json's chat_template."""
    jinja = folder / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text(encoding="utf-8")
    return _read_json(folder / "tokenizer_config.json").get("chat_template")


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


# ---------------------------------------------------------------- the file
def ggml_type(name: str, w: np.ndarray, kind: str):
    """The ggml type of one tensor: 1-D tensors (norms) stay F32, as llama.cpp's converter
    keeps them; q8_0 needs rows in blocks of 32 (else f16)."""
    from gguf import GGMLQuantizationType as T

    if w.ndim < 2:
        return T.F32
    if kind == "q8_0":
        return T.Q8_0 if w.shape[-1] % 32 == 0 else T.F16
    return T.BF16 if kind == "bf16" else T.F16


def as_written(w: np.ndarray, kind: str) -> np.ndarray:
    """`w` (a Hugging Face-layout float32 tensor) with the rounding the GGUF gives it: what
    llama.cpp reads back. Row permutations and the norm offset commute with it."""
    import gguf

    qtype = ggml_type("", w, kind)
    return gguf.quants.dequantize(gguf.quants.quantize(w.astype(np.float32), qtype), qtype).reshape(w.shape)


def load_weights(folder: Path) -> dict[str, np.ndarray]:
    import mlx.core as mx

    files = sorted(folder.glob("model*.safetensors"))
    if not files:
        raise UserError(f"{folder}: no model*.safetensors (is it a fused model folder?)")
    weights = {}
    for f in files:
        for k, v in mx.load(str(f)).items():
            weights[k] = np.array(v.astype(mx.float32))
    return weights


def write_gguf(folder: Path, out: Path, kind: str, identity: dict, cache: Path = CACHE,
               log=print) -> dict:
    """Write `folder` (a float MLX model folder) to the GGUF `out` (its writer writes into
    out's temporary sibling, renamed at the end). Returns what was written, for the record."""
    import gguf

    if kind not in TYPES:
        raise UserError(f"GGUF_TYPE={kind!r}: use one of {', '.join(TYPES)}")
    config = _read_json(folder / "config.json")
    if not config:
        raise UserError(f"{folder}/config.json: missing or empty; give a fused model folder")
    arch = architecture(config, folder)
    src = source_gguf(folder, identity.get("base_model"), cache)
    tokenizer = tokenizer_from_gguf(src) if src else tokenizer_from_json(folder, config)
    template = chat_template(folder)
    weights = load_weights(folder)

    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    tmp.unlink(missing_ok=True)
    w = gguf.GGUFWriter(str(tmp), arch)
    w.add_type("model")
    w.add_name(identity.get("name") or folder.name)
    ftype = {"f16": gguf.LlamaFileType.MOSTLY_F16, "bf16": gguf.LlamaFileType.MOSTLY_BF16,
             "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0}[kind]
    w.add_file_type(int(ftype))
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    if identity.get("license"):
        w.add_license(identity["license"])
    for key, (typ, value) in arch_metadata(arch, config).items():
        (w.add_uint32 if typ == "u32" else w.add_float32)(key, value)
    for key, (typ, value) in tokenizer.items():
        _add(w, key, typ, value)
    if template:
        w.add_chat_template(template)
    for key, value in identity.items():
        if key not in ("name", "license") and value is not None:
            w.add_string(f"olelo.{key}", str(value))

    counts: dict[str, int] = {}
    tied = "lm_head.weight" not in weights
    for hf in sorted(weights):
        if hf == "lm_head.weight" and config.get("tie_word_embeddings", True) and tied:
            continue
        data = convert_tensor(hf, weights[hf], arch, config)
        name = gguf_name(hf, arch)
        qtype = ggml_type(name, data, kind)
        raw = gguf.quants.quantize(data.astype(np.float32), qtype)
        w.add_tensor(name, raw, raw_dtype=qtype)  # the writer turns a quantized byte shape into the tensor's
        counts[qtype.name] = counts.get(qtype.name, 0) + 1
    log(f"writing {out} ({arch}, {sum(counts.values())} tensors: "
        f"{', '.join(f'{n} {k}' for k, n in sorted(counts.items()))}; tokenizer from {src or 'tokenizer.json'})")
    try:
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file(progress=False)
        w.close()
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    return {"architecture": arch, "type": kind, "tensors": counts,
            "tokenizer": str(src) if src else "tokenizer.json (byte-level BPE as llama.cpp's gpt2)"}


def _add(w, key: str, typ: str, value) -> None:
    from gguf import GGUFValueType as V

    if typ == "raw":  # a field copied from another GGUF, with its own types
        value, types = value
        if types[0] == V.ARRAY:
            w.add_key_value(key, list(value), V.ARRAY, sub_type=types[1])
        else:
            w.add_key_value(key, value, types[0])
    elif typ == "str":
        w.add_string(key, value)
    elif typ == "u32":
        w.add_uint32(key, int(value))
    elif typ == "bool":
        w.add_bool(key, bool(value))
    elif typ == "strs":
        w.add_array(key, list(value))
    elif typ == "i32s":
        w.add_key_value(key, list(value), V.ARRAY, sub_type=V.INT32)


# ---------------------------------------------------------------- Ollama
# Ollama renders its own Go template, not the GGUF's Jinja one: these say, in Ollama's
# words, what the lab's chat template gives for one system message and one user turn
# (tests/test_gguf_export.py renders both and compares). Ollama adds BOS itself.
OLLAMA_TEMPLATES = {
    "gemma": ('<start_of_turn>user\n{{ if .System }}{{ .System }}\n\n{{ end }}{{ .Prompt }}<end_of_turn>\n'
              '<start_of_turn>model\n', ["<end_of_turn>", "<eos>"]),
    "chatml": ('{{ if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}<|im_start|>user\n'
               '{{ .Prompt }}<|im_end|>\n<|im_start|>assistant\n', ["<|im_end|>"]),
}


def template_kind(template: str | None) -> str | None:
    if template and "<start_of_turn>" in template:
        return "gemma"
    if template and "<|im_start|>" in template:
        return "chatml"
    return None


def ollama_modelfile(gguf_file: str, template: str | None, system: str, note: str = "") -> str:
    """An Ollama Modelfile for the GGUF: its chat template in Ollama's words, the run's
    system prompt, greedy decoding as make eval decodes."""
    kind = template_kind(template)
    if kind is None:
        raise UserError("the model's chat template is neither Gemma's nor ChatML: no Ollama template for it")
    go, stops = OLLAMA_TEMPLATES[kind]
    lines = [f"# Ollama: ollama create <name> -f Modelfile, then ollama run <name> \"<text>\"{note}",
             f"FROM ./{gguf_file}", f'TEMPLATE """{go}"""', f'SYSTEM """{system}"""',
             "PARAMETER temperature 0"]
    lines += [f'PARAMETER stop "{s}"' for s in stops]
    return "\n".join(lines) + "\n"
