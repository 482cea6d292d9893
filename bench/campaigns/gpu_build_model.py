# Served NOTES.md: 2026-11-26 (GPU) "Is MLX (CUDA) LoRA training as fast as transformers + …"; 2026-11-26
#   (GPU) "Issue 15 on the H100"; 2026-11-27 (GPU) "Issue 15, third pass"; 2026-11-27 (GPU) "Issue 15, fourth
#   pass".
"""Build a random-init model of gemma-3-4b-it's text shape, 4-bit quantized (group 64),
in the folder layout `mlx_lm.load` reads, with a tokenizer folder's files.

    python bench/campaigns/gpu_build_model.py --tokenizer .gpu-c/tok --out /root/m4b [--tiny] [--seed 0]

Meant for the GPU machine: the model (3.3 B parameters with this 26k vocabulary)
is too big to carry there, so it is made there in about a minute. --tiny builds
the same thing with small dims for a CPU smoke test. The weights are drawn in
bfloat16 (what mlx-community's 4-bit Gemma 3 keeps unquantized) and quantized
with mlx-lm's own quantize_model. Gemma's norms scale by (1 + weight) and start
at 0; mlx-lm initialises them to 1, so they are zeroed here as in
scripts/build_tiny_model.py. An existing --out with the same config is kept.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import gpu_common  # beside this file

TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tokenizer", required=True, help="folder with tokenizer.json (+ tokenizer_config.json)")
    p.add_argument("--out", required=True, help="model folder to write")
    p.add_argument("--tiny", action="store_true", help="small dims (CPU smoke test)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--bits", type=int, default=4, help="4 or 8; 16 keeps the bfloat16 weights unquantized")
    p.add_argument("--group-size", type=int, default=64)
    a = p.parse_args(argv)

    import mlx.core as mx
    from mlx_lm.models.gemma3_text import Model, ModelArgs, RMSNorm
    from mlx_lm.utils import get_total_parameters, quantize_model, save_config, save_model

    config = gpu_common.model_config(a.tokenizer, gpu_common.TINY_TEXT if a.tiny else gpu_common.GEMMA3_4B_TEXT)
    out = Path(a.out)
    done = out / "build.json"
    if done.is_file() and json.loads(done.read_text()).get("bits") == a.bits \
            and json.loads(done.read_text())["config"] == config:
        print(f"{out}: up to date")
        return 0

    t0 = time.perf_counter()
    mx.random.seed(a.seed)
    model = Model(ModelArgs.from_dict(config))
    for m in model.modules():
        if isinstance(m, RMSNorm):
            m.weight = mx.zeros_like(m.weight)
    model.tie_word_embeddings = True
    model.pop("lm_head")
    model.set_dtype(mx.bfloat16)
    n_params = get_total_parameters(model)
    # Quantize layer by layer so the float weights of all 34 layers never sit in memory together.
    for layer in model.layers:
        mx.eval(layer.parameters())
    mx.eval(model.parameters())
    t_init = time.perf_counter() - t0
    if a.bits == 16:
        qmodel, qconfig = model, config
    else:
        qmodel, qconfig = quantize_model(model, config, a.group_size, a.bits)
        mx.eval(qmodel.parameters())
    t_quant = time.perf_counter() - t0 - t_init

    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_model(tmp, qmodel)
    save_config(dict(qconfig), tmp / "config.json")
    for f in TOKENIZER_FILES:  # special_tokens_map.json is optional (make base-model writes none)
        if f == "special_tokens_map.json" and not (Path(a.tokenizer) / f).exists():
            continue
        shutil.copy(Path(a.tokenizer) / f, tmp / f)
    (tmp / "generation_config.json").write_text(json.dumps({
        "bos_token_id": config["bos_token_id"], "pad_token_id": config["pad_token_id"],
        "eos_token_id": config["eos_token_id"]}) + "\n")
    size = sum(f.stat().st_size for f in tmp.glob("*.safetensors"))
    info = {"config": config, "parameters": n_params, "bits": a.bits, "group_size": a.group_size, "seed": a.seed,
            "weights_bytes": size, "init_s": round(t_init, 1), "quantize_s": round(t_quant, 1),
            "total_s": round(time.perf_counter() - t0, 1), "device": str(mx.default_device()),
            "mlx": mx.__version__}
    (tmp / "build.json").write_text(json.dumps(info, indent=2) + "\n")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    print(f"{out}: {n_params:,} parameters, {size / 1e9:.2f} GB of {a.bits}-bit weights, "
          f"vocab {config['vocab_size']} (tokenizer {config['tokenizer_vocab_size']}), {info['total_s']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
