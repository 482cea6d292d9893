"""An mlx_lm.lora command as mlx_lm.lora itself reads it (its parser, flag > YAML >
default), and the run's config.yaml: what mlx-lm takes only from YAML (LoRA
parameters, learning-rate schedule)."""

from __future__ import annotations

import types

import olelo

LOSSES = ("auto", "default", "chunked")  # train.py --loss (make LOSS=): olelo.lean_loss.loss_function
# --quantized-matmul (make's QMATMUL): how a quantized model's layers multiply in training
# (olelo/dequant.py resolves auto).
QUANTIZED_MATMULS = ("auto", "quantized", "dense")
# --compute-dtype (make's COMPUTE_DTYPE): the dtype a model's floating parameters train in
# (olelo/dequant.py resolves auto: float32 for a quantized model on a CPU).
COMPUTE_DTYPES = ("auto", "model", "float32")


def mlx_lora_args(cmd: list[str], config: dict | None = None) -> types.SimpleNamespace:
    """The arguments mlx_lm.lora's main() would run `cmd` with (same parser, same
    merge). `config` stands for the content of the -c file when given."""
    import yaml
    from mlx_lm import lora

    parser = lora.build_parser()

    def refuse(message):  # one line, not argparse's usage block
        raise olelo.UserError(f"mlx_lm.lora command: {message}")

    parser.error = refuse
    args = vars(parser.parse_args(cmd[1:]))
    if args.get("config"):
        if config is None:
            with open(args["config"]) as f:
                config = yaml.load(f, lora.yaml_loader)
        for k, v in config.items():
            if args.get(k) is None:
                args[k] = v
    for k, v in lora.CONFIG_DEFAULTS.items():
        if args.get(k) is None:
            args[k] = v
    return types.SimpleNamespace(**args)


def run_config(lab, merged: dict) -> dict:
    """config.yaml content: what mlx-lm takes only from YAML."""
    lora = dict(merged["lora_parameters"])
    for key in ("rank", "scale", "dropout"):
        if getattr(lab, key) is not None:
            lora[key] = getattr(lab, key)
    config = {"lora_parameters": lora}
    if lab.lr_schedule == "cosine":
        iters, lr = merged["iters"], merged["learning_rate"]
        warmup = lab.warmup if lab.warmup is not None else max(1, iters // 20)
        config["lr_schedule"] = {
            "name": "cosine_decay",
            "warmup": warmup,
            "warmup_init": 0.0,
            "arguments": [lr, max(1, iters - warmup), lr * 0.1],
        }
    return config
