# Served NOTES.md: 2026-11-26 (GPU) "Is MLX (CUDA) LoRA training as fast as transformers + …".
"""Shared pieces of the GPU benchmarks (issue 5): the gemma-3-4b-it text shape, and
the training batches that MLX and transformers+PEFT both get.

Not a script. bench/campaigns/gpu_build_model.py, bench/campaigns/gpu_train_mlx.py and
bench/campaigns/gpu_train_peft.py import it; it needs only numpy and transformers'
tokenizer (no MLX, no torch), so both sides build the very same batches.

Batches follow mlx-lm 0.32.2's iterate_batches as it is meant to work: examples
sorted by token length, cut into consecutive groups of batch_size (the remainder
dropped), the order of the groups shuffled with np.random.seed(seed). That is what
mlx_lm.lora does when train.jsonl is written in token-length order (its own sort
key is constant for chat data). Tokens are the chat template of each record's
messages, exactly as mlx-lm's ChatDataset makes them.
"""

from __future__ import annotations

import bisect
import json
from pathlib import Path

import numpy as np

# The text model of google/gemma-3-4b-it (its config.json, text_config part).
# Checked against public copies of that config: hidden 2560, MLP 10240, 34 layers,
# 8 query / 4 key-value heads of 256, query_pre_attn_scalar 256, sliding window 1024
# on 5 of every 6 layers, RoPE 1e6 (linear x8 on global layers) / 1e4 local,
# RMSNorm eps 1e-6, tied embeddings. Only the vocabulary differs (262,208 there):
# here it is the BPE tokenizer trained on the Fornander pairs.
GEMMA3_4B_TEXT = {
    "hidden_size": 2560,
    "num_hidden_layers": 34,
    "intermediate_size": 10240,
    "num_attention_heads": 8,
    "num_key_value_heads": 4,
    "head_dim": 256,
    "query_pre_attn_scalar": 256,
    "sliding_window": 1024,
    "sliding_window_pattern": 6,
    "rope_theta": 1_000_000.0,
    "rope_local_base_freq": 10_000.0,
    "rope_scaling": {"rope_type": "linear", "factor": 8.0},
    "rms_norm_eps": 1e-6,
    "max_position_embeddings": 131072,
    "hidden_activation": "gelu_pytorch_tanh",
    "tie_word_embeddings": True,
}

# A shape small enough for a CPU smoke test of every script (same code paths).
TINY_TEXT = {**GEMMA3_4B_TEXT, "hidden_size": 128, "num_hidden_layers": 18, "intermediate_size": 256,
             "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 64, "query_pre_attn_scalar": 64}

# mlx-lm's LoRA defaults (mlx_lm/lora.py CONFIG_DEFAULTS, tuner/utils.py
# linear_to_lora_layers): rank 8, scale 20, dropout 0, every Linear of the last 16
# layers. PEFT's equivalent: r 8, lora_alpha = scale * r = 160.
LORA = {"rank": 8, "scale": 20.0, "dropout": 0.0, "num_layers": 16}
LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
LEARNING_RATE = 1e-5  # mlx-lm's default; Adam on both sides

# Padded widths (array width = model input + 1, as in mlx-lm).
BUCKETS = {
    "b8": [128, 192, 256, 384, 512, 768, 1024, 1536],
    "b5": [128, 256, 512, 1024, 1536],
}
PAD_POLICIES = ["pad32", "pad64", "pad128", "exact", *BUCKETS]


def model_config(tokenizer_dir: str | Path, shape: dict = GEMMA3_4B_TEXT, vocab_multiple: int = 128) -> dict:
    """config.json of the benchmark model: the shape plus the tokenizer's vocabulary,
    rounded up to a multiple of vocab_multiple (unused rows; kernels like round sizes)."""
    tok = json.loads((Path(tokenizer_dir) / "tokenizer.json").read_text(encoding="utf-8"))
    vocab = len(tok["model"]["vocab"])
    for added in tok.get("added_tokens", []):
        vocab = max(vocab, added["id"] + 1)
    ids = {t["content"]: t["id"] for t in tok.get("added_tokens", [])}
    padded = -(-vocab // vocab_multiple) * vocab_multiple
    return {
        "architectures": ["Gemma3ForCausalLM"],
        "model_type": "gemma3_text",
        **shape,
        "vocab_size": padded,
        "tokenizer_vocab_size": vocab,
        "attn_logit_softcapping": None,
        "final_logit_softcapping": None,
        "torch_dtype": "bfloat16",
        "bos_token_id": ids["<bos>"],
        "pad_token_id": ids["<pad>"],
        "eos_token_id": [ids["<eos>"], ids["<end_of_turn>"]],
    }


def tokenize_chat(tokenizer_dir: str | Path, jsonl: str | Path) -> list[list[int]]:
    """Token ids of each record, as mlx-lm's ChatDataset makes them."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    rows = [json.loads(line) for line in Path(jsonl).read_text(encoding="utf-8").splitlines() if line.strip()]
    return [list(tok.apply_chat_template(r["messages"], return_dict=False)) for r in rows]


def batch_order(lengths: list[int], batch_size: int, seed: int = 0) -> list[list[int]]:
    """Example indices of each batch, in the order training visits them (one epoch)."""
    idx = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches = [idx[i:i + batch_size] for i in range(0, len(idx) - batch_size + 1, batch_size)]
    rng = np.random.RandomState(seed)
    return [batches[i] for i in rng.permutation(len(batches))]


def padded_width(longest: int, policy: str, max_seq: int = 2048) -> int:
    """Width of the batch array for a batch whose longest example has `longest` tokens."""
    if policy.startswith("pad"):  # mlx-lm's rule with pad_to = 32 (64, 128)
        pad_to = int(policy[3:])
        return min(1 + pad_to * ((longest + pad_to - 1) // pad_to), max_seq)
    if policy == "exact":  # no rounding; +1 so that, as with mlx-lm's rule, every token is a target
        return longest + 1
    buckets = BUCKETS[policy]
    i = bisect.bisect_left(buckets, longest)  # model input >= longest: no token dropped
    if i == len(buckets):
        raise ValueError(f"an example of {longest} tokens exceeds the largest bucket {buckets[-1]}")
    return 1 + buckets[i]


def batch_array(tokens: list[list[int]], idxs: list[int], width: int):
    """(int32 array [B, width], lengths [B]) with zeros as padding, like mlx-lm."""
    arr = np.zeros((len(idxs), width), np.int32)
    lengths = []
    for row, i in enumerate(idxs):
        t = tokens[i][:width]
        arr[row, :len(t)] = t
        lengths.append(len(t))
    return arr, np.array(lengths, np.int32)


def plan(tokens: list[list[int]], batch_size: int, n_batches: int, policy: str, seed: int = 0) -> dict:
    """The measured batches (the first n_batches of the epoch) and the warm-up batches
    (the first measured batch of each distinct padded width, in order of appearance)."""
    lengths = [len(t) for t in tokens]
    order = batch_order(lengths, batch_size, seed)[:n_batches]
    widths = [padded_width(max(lengths[i] for i in b), policy) for b in order]
    warm, seen = [], set()
    for k, w in enumerate(widths):
        if w not in seen:
            seen.add(w)
            warm.append(k)
    real = sum(lengths[i] for b in order for i in b)
    slots = sum(w * len(b) for w, b in zip(widths, order))
    return {
        "batch_size": batch_size, "policy": policy, "seed": seed, "batches": order, "widths": widths,
        "warmup": warm, "distinct_widths": len(seen), "real_tokens": real,
        "padded_fraction": round(1 - real / slots, 4),
    }


def device_summary() -> dict:
    """GPU name and memory from nvidia-smi, when there is one."""
    import subprocess

    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        out = ""
    return {"nvidia_smi": out or None}


def write_json(path: str | Path, obj) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)
