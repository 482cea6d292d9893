"""Build a tiny, random-weight Gemma-3 text model that `mlx_lm.load` reads, so the
whole lab (LoRA, QLoRA, generate, evaluate, fuse) runs offline in seconds.

The tokenizer is a byte-level BPE trained here on the given text files (CSV with
columns `L1 Hawaiian_Text`, `Reference_Translation`, and/or mlx-lm chat JSONL),
with Gemma's special tokens and a Gemma-3 chat template. The model is
`gemma3_text` with small dims and seeded random weights: it produces gibberish.
With --quantized-out the same weights are also written 4-bit quantized (the
QLoRA path), the way `mlx_lm.convert -q` does it.

Run:
    LD_PRELOAD=/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0 \\
    .venv/bin/python scripts/build_tiny_model.py \\
        --text ../shared/data/fornander/fornander_pairs.csv \\
        --out models/tiny-gemma3 --quantized-out models/tiny-gemma3-4bit

Each output folder is built in a temporary folder beside it and renamed into
place at the end, replacing an older build; a failed build leaves nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import sys
import tempfile
import time
from pathlib import Path

import olelo
from olelo.defaults import DEFAULTS
from olelo.tiny_tokenizer import SPECIAL_TOKENS, read_texts, token_ids, train_tokenizer

# The Gemma 3 chat template, shared with the real model's conversion.
CHAT_TEMPLATE = olelo.GEMMA3_CHAT_TEMPLATE


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--text", nargs="+", required=True, metavar="FILE",
                   help="CSV (columns 'L1 Hawaiian_Text', 'Reference_Translation') or "
                        "chat JSONL files whose text trains the tokenizer")
    p.add_argument("--out", required=True, help="folder for the float model")
    p.add_argument("--quantized-out", help="also write the model quantized into this folder")
    p.add_argument("--vocab-size", type=int, default=4096,
                   help="BPE vocabulary size, special tokens included (less if the text is small)")
    p.add_argument("--hidden-size", type=int, default=64, help="model width")
    p.add_argument("--layers", type=int, default=6,
                   help="transformer layers (at least --sliding-window-pattern)")
    p.add_argument("--heads", type=int, default=2, help="attention heads")
    p.add_argument("--kv-heads", type=int, default=1, help="key/value heads (divides --heads)")
    p.add_argument("--head-dim", type=int, default=32, help="width of one attention head")
    p.add_argument("--intermediate-size", type=int, help="MLP width [default: 4 x hidden size]")
    p.add_argument("--sliding-window", type=int, default=512, help="local attention window")
    p.add_argument("--sliding-window-pattern", type=int, default=6,
                   help="every Nth layer attends globally, as in Gemma 3")
    p.add_argument("--max-position", type=int, default=8192, help="max_position_embeddings")
    p.add_argument("--seed", type=int, default=DEFAULTS["TINY_SEED"], help="seed of the random weights (default: %(default)s)")
    p.add_argument("--q-bits", type=int, default=4, help="bits per weight of --quantized-out")
    p.add_argument("--q-group-size", type=int, default=64,
                   help="quantization group size; must divide the layers' input widths")
    args = p.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if args.intermediate_size is None:
        args.intermediate_size = 4 * args.hidden_size
    return args


def check_args(args) -> None:
    if args.layers < args.sliding_window_pattern:
        # gemma3_text indexes layer sliding_window_pattern-1 for the global mask.
        raise olelo.UserError(
            f"--layers {args.layers} must be at least --sliding-window-pattern "
            f"{args.sliding_window_pattern}")
    if args.heads % args.kv_heads:
        raise olelo.UserError(f"--kv-heads {args.kv_heads} must divide --heads {args.heads}")
    min_vocab = 256 + len(SPECIAL_TOKENS)
    if args.vocab_size < min_vocab:
        raise olelo.UserError(f"--vocab-size must be at least {min_vocab} (bytes + special tokens)")
    if args.quantized_out:
        widths = {"--hidden-size": args.hidden_size, "--intermediate-size": args.intermediate_size,
                  "--heads x --head-dim": args.heads * args.head_dim}
        for name, width in widths.items():
            if width % args.q_group_size:
                raise olelo.UserError(
                    f"{name} = {width} is not a multiple of --q-group-size {args.q_group_size}")
        if Path(args.out).resolve() == Path(args.quantized_out).resolve():
            raise olelo.UserError("--out and --quantized-out must differ")


def write_json(path: Path, obj) -> None:
    # Plain writes: files go into a temporary folder that is renamed into place.
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def write_tokenizer(tok, folder: Path) -> None:
    tok.save(str(folder / "tokenizer.json"))
    special = {"bos_token": "<bos>", "eos_token": "<eos>", "pad_token": "<pad>", "unk_token": "<unk>"}
    write_json(folder / "special_tokens_map.json", special)
    write_json(folder / "tokenizer_config.json", {
        # The generic class reads tokenizer.json as is; a Gemma class would
        # rebuild the pre-tokenizer for SentencePiece.
        "tokenizer_class": "PreTrainedTokenizerFast",
        **special,
        "add_bos_token": True,
        "add_eos_token": False,
        "clean_up_tokenization_spaces": False,
        "model_max_length": 1_000_000,
        "chat_template": CHAT_TEMPLATE,
    })


def model_config(args, tok) -> dict:
    ids = token_ids(tok)
    return {
        "architectures": ["Gemma3ForCausalLM"],
        "model_type": "gemma3_text",
        "vocab_size": tok.get_vocab_size(),
        "hidden_size": args.hidden_size,
        "num_hidden_layers": args.layers,
        "intermediate_size": args.intermediate_size,
        "num_attention_heads": args.heads,
        "num_key_value_heads": args.kv_heads,
        "head_dim": args.head_dim,
        "query_pre_attn_scalar": args.head_dim,
        "hidden_activation": "gelu_pytorch_tanh",
        "rms_norm_eps": 1e-6,
        "rope_theta": 1_000_000.0,
        "rope_local_base_freq": 10_000.0,
        "sliding_window": args.sliding_window,
        "sliding_window_pattern": args.sliding_window_pattern,
        "max_position_embeddings": args.max_position,
        "tie_word_embeddings": True,
        "torch_dtype": "float32",
        "bos_token_id": ids["<bos>"],
        "pad_token_id": ids["<pad>"],
        # mlx-lm stops at any of these: Gemma's chat turns end in <end_of_turn>.
        "eos_token_id": [ids["<eos>"], ids["<end_of_turn>"]],
    }


def build_model(config: dict, seed: int):
    import mlx.core as mx
    from mlx_lm.models.gemma3_text import Model, ModelArgs, RMSNorm

    mx.random.seed(seed)
    model = Model(ModelArgs.from_dict(config))
    # Gemma's norms scale by (1 + weight) and Gemma initialises weight to 0;
    # mlx-lm's 1s double every norm, which makes the random network chaotic
    # enough that 4-bit rounding changes its logits beyond recognition.
    for module in model.modules():
        if isinstance(module, RMSNorm):
            module.weight = mx.zeros_like(module.weight)
    # Gemma ties the output head to the embeddings. mlx-lm ties them when the
    # saved weights have no lm_head, so drop it before saving.
    model.tie_word_embeddings = True
    model.pop("lm_head")
    mx.eval(model.parameters())
    return model


def save_model_folder(folder: Path, model, config: dict, tok, readme: str) -> None:
    from mlx_lm.utils import save_config, save_model

    save_model(folder, model)
    save_config(dict(config), folder / "config.json")
    ids = token_ids(tok)
    write_json(folder / "generation_config.json", {
        "bos_token_id": ids["<bos>"], "pad_token_id": ids["<pad>"],
        "eos_token_id": config["eos_token_id"],
    })
    write_tokenizer(tok, folder)
    (folder / "README.md").write_text(readme, encoding="utf-8")


def readme_text(title: str, args, config: dict, n_params: int, quantization: str) -> str:
    import mlx.core as mx
    import mlx_lm
    import tokenizers

    inputs = "\n".join(f"- `{p}` sha256 `{olelo.sha256_file(p)}`" for p in args.text)
    command = shlex.join(["python", "scripts/build_tiny_model.py", *args.argv])
    return f"""# {title}

A tiny Gemma-3-shaped model with **random weights**, for testing the olelo-mlx
pipeline offline (LoRA, QLoRA, generate, evaluate, fuse). Its output is
gibberish; loss going down during LoRA is all it can show.

- architecture: `gemma3_text`, {config['num_hidden_layers']} layers, hidden size {config['hidden_size']},
  {config['num_attention_heads']} heads x {config['head_dim']} ({config['num_key_value_heads']} kv), MLP {config['intermediate_size']}, tied embeddings
- vocabulary: {config['vocab_size']} tokens, byte-level BPE trained on the inputs below,
  Gemma special tokens and Gemma-3 chat template
- parameters: {n_params:,} (seed {args.seed}); weights: {quantization}
- built with mlx {mx.__version__}, mlx-lm {mlx_lm.__version__}, tokenizers {tokenizers.__version__}

Inputs:
{inputs}

Rebuild (from the repository root):

```
{command}
```
"""


def replace_dir(new: Path, dest: Path) -> None:
    """Move a finished build into place, replacing an older build at dest (two builds at once: the later stays)."""
    olelo.replace_folder(new, dest)


def main(argv=None) -> int:
    args = parse_args(argv)
    check_args(args)
    start = time.perf_counter()
    texts = read_texts(args.text)

    from mlx_lm.utils import get_total_parameters, quantize_model

    tok = train_tokenizer(texts, args.vocab_size)
    config = model_config(args, tok)
    model = build_model(config, args.seed)
    n_params = get_total_parameters(model)

    outs = [Path(args.out)] + ([Path(args.quantized_out)] if args.quantized_out else [])
    temps = []
    umask = os.umask(0)
    os.umask(umask)
    try:
        for out in outs:
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp."))
            temps.append(tmp)
            tmp.chmod(0o777 & ~umask)  # mkdtemp makes it private
        save_model_folder(temps[0], model, config, tok,
                          readme_text(outs[0].name, args, config, n_params, "float32"))
        if args.quantized_out:
            qmodel, qconfig = quantize_model(model, config, args.q_group_size, args.q_bits)
            quantization = f"{args.q_bits}-bit affine, group size {args.q_group_size}"
            save_model_folder(temps[1], qmodel, qconfig, tok,
                              readme_text(outs[1].name, args, qconfig, n_params, quantization))
        for tmp, out in zip(temps, outs):
            replace_dir(tmp, out)
    finally:
        for tmp in temps:
            shutil.rmtree(tmp, ignore_errors=True)

    print(f"vocab {config['vocab_size']}, {n_params:,} parameters, "
          f"wrote {', '.join(map(str, outs))} in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    olelo.run_main(main)
