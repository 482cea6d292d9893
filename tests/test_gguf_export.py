"""make gguf / scripts/export_gguf.py: a fused model written as GGUF and checked by llama.cpp
(scripts/install_llama_runtime.py). The tiny model's numbers are plumbing, not quality."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import olelo

from conftest import REPO, one_line_error, script
from olelo import gguf_arch, gguf_export


def llama_runtime() -> Path:
    """The llama.cpp runtime folder; skipped when absent, unless OLELO_REQUIRE_LLAMA_CPP=1."""
    folder = Path(os.environ.get("OLELO_LLAMA_RUNTIME") or REPO / ".llama-runtime")
    if not (folder / "olelo_runtime.json").is_file():
        if os.environ.get("OLELO_REQUIRE_LLAMA_CPP") == "1":
            pytest.fail(f"OLELO_REQUIRE_LLAMA_CPP=1 but {folder} has no llama.cpp (make llama-runtime)")
        pytest.skip(f"no llama.cpp runtime in {folder} (make llama-runtime)")
    return folder


def export(*args, runtime=None):
    env = {**os.environ, "OLELO_LLAMA_RUNTIME": str(runtime or "/nonexistent-llama-runtime")}
    return script("export_gguf.py", *args, env=env)


def ok(out):
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out


def weights(folder):
    import mlx.core as mx

    return {k: np.array(v.astype(mx.float32)) for f in sorted(Path(folder).glob("model*.safetensors"))
            for k, v in mx.load(str(f)).items()}


def test_llama_rope_permutation_is_the_inverse_of_the_readers():
    w = np.arange(6 * 8 * 3, dtype=np.float32).reshape(6 * 8, 3)
    for heads in (1, 2, 3, 6):
        p = gguf_export.permute_rope(w, heads)
        assert not np.array_equal(p, w)
        assert np.array_equal(gguf_arch.unpermute_rope(p, heads), w)


def test_names_are_the_readers_names_backwards():
    for arch, table in (("gemma3", gguf_arch.GEMMA3_NAMES), ("llama", gguf_arch.LLAMA_NAMES)):
        for gg, hf in table.items():
            assert gguf_export.gguf_name(hf.format(n=7), arch) == gg.format(n=7)
    with pytest.raises(gguf_export.UserError, match="no llama.cpp name"):
        gguf_export.gguf_name("model.layers.0.self_attn.q_proj.lora_a", "gemma3")


@pytest.mark.parametrize("change, needle", [
    ({"quantization": {"bits": 4, "group_size": 64}}, "DEQUANTIZE=1"),
    ({"model_type": "qwen2"}, "model_type 'qwen2'"),
    ({"sliding_window_pattern": 4}, "llama.cpp's Gemma 3 uses 6"),
    ({"query_pre_attn_scalar": 168}, "query_pre_attn_scalar"),
    ({"rope_scaling": {"type": "linear", "factor": 8.0}}, "RoPE scaling"),
])
def test_settings_llama_cpp_would_not_compute_are_refused(change, needle):
    config = {"model_type": "gemma3_text", "head_dim": 32, "query_pre_attn_scalar": 32, **change}
    with pytest.raises(gguf_export.UserError, match=needle):
        gguf_export.architecture(config, Path("m"))


def test_the_tiny_fused_model_reads_back_as_it_was_written(fused_final, tmp_path):
    """Reading the GGUF the way convert_gguf.py reads a base model's (llama.cpp names back to
    Hugging Face's, the norm offset undone) gives the fused weights back: exactly for the
    float32 norms, to f16 rounding for the matrices; the metadata names the run."""
    import gguf

    out = tmp_path / "tiny model.f16.gguf"
    done = ok(export("--fused", fused_final, "-o", out, "--no-check"))
    assert "NOT checked" in done.stdout
    reader = gguf.GGUFReader(out)
    field = lambda k: gguf_arch.field(reader, k)  # noqa: E731
    fuse = json.loads((fused_final / "olelo_fuse.json").read_text())
    assert field("general.architecture") == "gemma3"
    assert field("olelo.run") == fuse["run"] and field("olelo.checkpoint") == "final"
    assert field("olelo.adapter_sha256") == fuse["adapter_sha256"]
    config = json.loads((fused_final / "config.json").read_text())
    assert field("gemma3.block_count") == config["num_hidden_layers"]
    assert field("gemma3.attention.key_length") == config["head_dim"]
    assert len(field("tokenizer.ggml.tokens")) == config["vocab_size"]
    # mlx_lm.fuse saves the template as chat_template.jinja, not in tokenizer_config.json
    template = (fused_final / "chat_template.jinja").read_text(encoding="utf-8")
    assert "<start_of_turn>" in template and field("tokenizer.chat_template") == template

    want = weights(fused_final)
    got = {}
    for t in reader.tensors:
        hf = gguf_arch.hf_name(t.name, gguf_arch.GEMMA3_NAMES)
        data = np.array(t.data, dtype=np.float32).reshape([int(d) for d in reversed(t.shape)])
        got[hf] = gguf_arch.gemma3_fix(hf, data, config)
    assert set(got) == set(want)
    for name, w in want.items():
        if w.ndim == 1:
            assert got[name].dtype == np.float32 and np.array_equal(got[name], w), name
        else:
            assert np.allclose(got[name], w.astype(np.float16).astype(np.float32), atol=0, rtol=0), name
    record = json.loads(out.with_name(out.name + ".json").read_text())
    assert record["check"].startswith("not checked") and record["tensors"]["F32"] > 0

    # q8_0 and bf16 are written too (q8_0 only where rows come in blocks of 32)
    for kind in ("bf16", "q8_0"):
        ok(export("--fused", fused_final, "-o", tmp_path / f"t.{kind}.gguf", "--type", kind, "--no-check"))
        types = {t.tensor_type.name for t in gguf.GGUFReader(tmp_path / f"t.{kind}.gguf").tensors}
        assert kind.upper() in types and "F32" in types


def test_refusals_are_one_line(fused_final, tiny_model_4bit, tmp_path):
    one_line_error(export("--fused", tiny_model_4bit, "-o", tmp_path / "q.gguf", "--no-check"), "DEQUANTIZE=1")
    one_line_error(export("--fused", fused_final, "-o", tmp_path / "x.bin", "--no-check"), "ending in .gguf")
    one_line_error(export("--fused", tmp_path, "-o", tmp_path / "x.gguf", "--no-check"), "no config.json")
    # without llama.cpp the check cannot run: refused before anything is written
    one_line_error(export("--fused", fused_final, "-o", tmp_path / "c.gguf"), "make llama-runtime", "GGUF_CHECK=0")
    assert not (tmp_path / "c.gguf").exists()
    assert not list(tmp_path.glob(".*.tmp"))


def test_llama_cpp_computes_the_tiny_fused_model(fused_final, tmp_path):
    runtime = llama_runtime()
    out = tmp_path / "tiny.f16.gguf"
    done = ok(export("--fused", fused_final, "-o", out, "--check-prompts", "2", "--max-tokens", "4",
                     runtime=runtime))
    assert "checked by llama.cpp" in done.stderr
    check = json.loads(out.with_name(out.name + ".json").read_text())["check"]
    assert check["top_token_agreement"] == 1.0 and check["max_abs_logprob_diff"] < check["tolerance"]
    assert len(check["prompts"]) == 2 and all("llama_cpp" in p and "mlx" in p for p in check["prompts"])


# export_gguf.py run as `python scripts/export_gguf.py ARGS`, with an export that forgets
# Gemma's norm offset (norm weights written as they are).
NORMS_UNCONVERTED = """
import runpy, sys
from olelo import gguf_export

right = gguf_export.convert_tensor
gguf_export.convert_tensor = lambda hf, w, arch, config: w if hf.endswith("norm.weight") else right(hf, w, arch, config)
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def test_a_gguf_that_llama_cpp_computes_differently_is_refused_and_removed(fused_final, tmp_path):
    """The check is not a formality: an export that forgot Gemma's norm offset loads in
    llama.cpp but computes another model; the file is refused and removed."""
    env = {**os.environ, "OLELO_LLAMA_RUNTIME": str(llama_runtime())}
    out = tmp_path / "wrong.gguf"
    args = ["--fused", str(fused_final), "-o", str(out), "--check-prompts", "1", "--max-tokens", "2"]

    def wrong_export():
        return subprocess.run([sys.executable, "-c", NORMS_UNCONVERTED, str(REPO / "scripts" / "export_gguf.py"),
                               *args], capture_output=True, text=True, env=env)

    refused = wrong_export()
    assert refused.returncode == 2 and "does not compute the fused model" in refused.stderr, refused.stderr[-3000:]
    assert not out.exists() and not list(tmp_path.glob(".*"))
    check = json.loads(out.with_name(out.name + ".refused.json").read_text())["check"]
    assert check["max_abs_logprob_diff"] > check["tolerance"] and check["passed"] is False

    # a file that passed before stays, with its record, when a later export is refused
    ok(script("export_gguf.py", *args, env=env))
    before = (out.read_bytes(), out.with_name(out.name + ".json").read_text())
    assert json.loads(before[1])["check"]["passed"] is True
    refused = wrong_export()
    assert refused.returncode == 2 and "from before is left as it was" in refused.stderr, refused.stderr[-3000:]
    assert (out.read_bytes(), out.with_name(out.name + ".json").read_text()) == before


def test_llama_cpp_computes_real_gemma3_and_smollm2(real_model, smollm2_model, tmp_path):
    """The real Gemma 3 270M and SmolLM2-135M (Llama) folders, exported as f16 with their
    own GGUF vocabularies: llama.cpp agrees with MLX (float32) within the tolerance, and its
    tokenizer gives the folder's ids (measured: 0.044 and 0.040, NOTES.md)."""
    runtime = llama_runtime()
    for folder in (real_model["bf16"], smollm2_model["bf16"]):
        out = tmp_path / f"{folder.name}.f16.gguf"
        ok(export("--fused", folder, "-o", out, "--check-prompts", "2", "--max-tokens", "4", runtime=runtime))
        check = json.loads(out.with_name(out.name + ".json").read_text())["check"]
        assert check["max_abs_logprob_diff"] < 0.25, (folder, check)
        assert check["top_token_agreement"] == 1.0 and check["tokenizer_agreement"] == 1.0, (folder, check)
        out.unlink()


def test_make_gguf_fuses_then_writes_beside_the_fused_folder(run_make, lab, trained, tmp_path):
    fused = tmp_path / "my fused"
    out = run_make("gguf", f"RUNS_DIR={lab['root'] / 'runs'}", f"RUN={trained['stamp']}", "FUSE_CKPT=final",
                   f"FUSED={fused}", "GGUF_TYPE=q8_0", "GGUF_CHECK=0", check=False)
    ok(out)
    assert (fused / "olelo_fuse.json").is_file()
    gguf_file = tmp_path / "my fused.q8_0.gguf"
    assert gguf_file.is_file() and "NOT checked" in out.stdout
    bad = run_make("gguf", "GGUF_TYPE=q4", check=False)
    assert bad.returncode == 2 and "GGUF_TYPE='q4': use f16, bf16 or q8_0" in bad.stderr


# ---------------------------------------------------------------- Ollama and upload

def render_ollama(go: str, system: str, prompt: str) -> str:
    """Ollama's rendering of the two Go template forms OLLAMA_TEMPLATES uses."""
    import re

    go = re.sub(r"\{\{ if \.System \}\}(.*?)\{\{ end \}\}", lambda m: m[1] if system else "", go, flags=re.S)
    return go.replace("{{ .System }}", system).replace("{{ .Prompt }}", prompt)


def modelfile_template(text: str) -> str:
    return text.split('TEMPLATE """', 1)[1].split('"""', 1)[0]


def test_the_modelfile_prompts_as_the_chat_template_does(fused_final, smollm2_model):
    """Ollama sees what training saw: the Modelfile's template, rendered, equals the model's
    own chat template for a system message and a user turn (less the BOS Ollama adds)."""
    from transformers import AutoTokenizer

    import olelo

    for folder in (fused_final, smollm2_model["bf16"]):
        text = gguf_export.ollama_modelfile("m.gguf", gguf_export.chat_template(folder), olelo.system_prompt("haw-en"))
        assert "FROM ./m.gguf" in text and "PARAMETER temperature 0" in text
        tok = AutoTokenizer.from_pretrained(str(folder))
        for source in ("Aloha kākou.", 'He "moʻolelo" kēia.\nA laila'):
            messages = olelo.prompt_messages(source, "haw-en")
            want = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
            want = want.removeprefix(tok.bos_token or "") if "<start_of_turn>" in want else want
            assert render_ollama(modelfile_template(text), olelo.system_prompt("haw-en"), source) == want, folder
    with pytest.raises(gguf_export.UserError, match="no Ollama template"):
        gguf_export.ollama_modelfile("m.gguf", "{{ messages }}", "x")


def test_upload_refuses_a_gguf_that_is_missing_or_unchecked(fused_final, tmp_path):
    from test_fuse_upload import hf_env

    out = fused_final.with_name(fused_final.name + ".bf16.gguf")
    ok(export("--fused", fused_final, "--type", "bf16", "--no-check"))
    try:
        args = ("upload.py", "--fused", fused_final, "--repo", "someone/olelo-tiny", "--dry-run")
        one_line_error(script(*args, "--gguf", "bf16", env=hf_env(tmp_path)), "GGUF_CHECK=0")
        one_line_error(script(*args, "--gguf", "q8_0", env=hf_env(tmp_path)), "make gguf", "GGUF_TYPE=q8_0")
    finally:
        out.unlink()
        out.with_name(out.name + ".json").unlink()


def test_upload_carries_a_checked_gguf_and_its_modelfile(fused_final, tmp_path):
    from test_fuse_upload import hf_env

    runtime = llama_runtime()
    out = fused_final.with_name(fused_final.name + ".f16.gguf")
    ok(export("--fused", fused_final, "--check-prompts", "1", "--max-tokens", "2", runtime=runtime))
    try:
        r = ok(script("upload.py", "--fused", fused_final, "--repo", "someone/olelo-tiny", "--dry-run",
                      "--gguf", "f16", env=hf_env(tmp_path)))
        listing = r.stdout.split("\n--- README.md ---", 1)[0]
        assert f"{out.stat().st_size:,}  {out.name}" in listing and "Modelfile" in listing
        card, modelfile = r.stdout.split("\n--- README.md ---", 1)[1].split("\n--- Modelfile ---", 1)
        assert "## GGUF (llama.cpp, Ollama, LM Studio)" in card and "Checked by llama.cpp b11739" in card
        assert f"FROM ./{out.name}" in modelfile and "Translate the Hawaiian text" in modelfile
    finally:
        out.unlink()
        out.with_name(out.name + ".json").unlink()


def test_the_runtime_installer_reads_and_repoints_elf_version_needs(tmp_path):
    """install_llama_runtime.py's ELF edit (what lets glibc 2.36 load llama.cpp's wheel),
    on a copy of a system library: the needs it reads are readelf's, and a repointed need
    takes the other version's name."""
    import shutil
    import subprocess

    from olelo import elf

    lib = Path("/lib/x86_64-linux-gnu/libm.so.6")
    if not lib.is_file() or not shutil.which("readelf"):
        pytest.skip("needs x86_64 Linux's libm and readelf")
    copy = tmp_path / "libm-copy.so"
    shutil.copy(lib, copy)
    names = [n for _, n in elf.version_needs(copy)]
    shown = subprocess.run(["readelf", "-V", str(copy)], capture_output=True, text=True).stdout
    needed = [line.split("Name: ")[1].split()[0] for line in shown.split(".gnu.version_r", 1)[1].splitlines()
              if "Name: " in line]
    assert names == needed and "GLIBC_2.4" in names
    assert elf.repoint_version(copy, "GLIBC_2.4", "GLIBC_2.2.5") == 1
    after = [n for _, n in elf.version_needs(copy)]
    assert "GLIBC_2.4" not in after and after.count("GLIBC_2.2.5") == 2 and len(after) == len(names)
