# Served NOTES.md: 2026-11-26 (GPU) "Is MLX (CUDA) LoRA training as fast as transformers + …"; 2026-11-26
#   (GPU) "Issue 15 on the H100".
"""transformers + PEFT LoRA training speed on the same model shape, tokenizer, batches
and LoRA settings as bench/campaigns/gpu_train_mlx.py: the baseline MLX is compared with.

    python bench/campaigns/gpu_train_peft.py --model .gpu-c/tok --data .gpu-c/train.jsonl \\
        --configs pad32:1,pad32:4,pad32:8 [--grad-checkpoint both] [--budget-s 480] \\
        [--loss body] -o $OUT/peft.json

The model is Gemma3ForCausalLM with bench/campaigns/gpu_common.model_config() (the text shape
of gemma-3-4b-it, the vocabulary of the tokenizer in --model), random-init in bfloat16 on the GPU, SDPA attention.
LoRA: r 8, lora_alpha 160 (= mlx-lm's scale 20 x r), dropout 0, on q/k/v/o and
gate/up/down of the last 16 layers, as mlx-lm's default; Adam lr 1e-5. The loss is
mlx-lm's default_loss computed the same way (inputs batch[:, :-1], targets batch[:, 1:],
positions up to each example's length, mean over those tokens). Batches, warm-up
and token counting come from bench/campaigns/gpu_common.plan(), as on the MLX side.
--grad-checkpoint off|on|both: non-reentrant activation checkpointing of every
decoder layer. --loss body trains the body alone, with the mean of its final hidden
states as the loss (no head, no cross-entropy), as gpu_train_mlx.py --loss body. Peak
memory is torch.cuda.max_memory_allocated (reserved beside it).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

import gpu_common  # beside this file

N_BATCHES = {1: 48, 2: 32, 4: 24, 8: 16, 16: 8, 32: 8}


def build_model(model_dir: str, seed: int, device: str, tiny: bool = False, weights: bool = False):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    if weights:  # the folder's own weights (a Hugging Face folder, e.g. make base-model's bf16 Gemma 3 270M)
        torch.manual_seed(seed)
        model = Gemma3ForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16, attn_implementation="sdpa").to(device)
        model.config.use_cache = False
        return add_lora(model, model.config), model.config
    cfg = gpu_common.model_config(model_dir, gpu_common.TINY_TEXT if tiny else gpu_common.GEMMA3_4B_TEXT)  # the config bench/campaigns/gpu_build_model.py gives the MLX model
    keep = {k: v for k, v in cfg.items() if k not in ("quantization", "quantization_config", "architectures",
                                                          "model_type", "tokenizer_vocab_size", "torch_dtype")}
    keep["eos_token_id"] = cfg["eos_token_id"]
    config = Gemma3TextConfig(**keep, attn_implementation="sdpa", use_cache=False)
    torch.manual_seed(seed)
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        with torch.device(device):
            model = Gemma3ForCausalLM(config)
    finally:
        torch.set_default_dtype(old)
    return add_lora(model, config), config


def add_lora(model, config):
    from peft import LoraConfig, get_peft_model

    n_layers = config.num_hidden_layers
    lora = LoraConfig(r=gpu_common.LORA["rank"], lora_alpha=gpu_common.LORA["scale"] * gpu_common.LORA["rank"],
                      lora_dropout=gpu_common.LORA["dropout"], target_modules=gpu_common.LORA_TARGETS,
                      layers_to_transform=list(range(n_layers - gpu_common.LORA["num_layers"], n_layers)),
                      layers_pattern="layers", bias="none", task_type="CAUSAL_LM")
    return get_peft_model(model, lora)


def run_config(model, tokens, policy, batch_size, n_batches, seed, grad_ckpt, device, body_only=False) -> dict:
    import torch
    import torch.nn.functional as F

    base = model.get_base_model()
    if grad_ckpt:
        base.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    else:
        base.gradient_checkpointing_disable()
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=gpu_common.LEARNING_RATE)

    pl = gpu_common.plan(tokens, batch_size, n_batches, policy, seed)
    seq = [(pl["batches"][k], pl["widths"][k]) for k in pl["warmup"]]
    seq += list(zip(pl["batches"], pl["widths"]))
    cuda = device == "cuda"
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    steps = []
    t_all = time.perf_counter()
    for idxs, width in seq:
        arr, lengths = gpu_common.batch_array(tokens, idxs, width)
        if cuda:
            torch.cuda.synchronize()
        t = time.perf_counter()
        batch = torch.from_numpy(arr.astype(np.int64)).to(device, non_blocking=True)
        lens = torch.from_numpy(lengths.astype(np.int64)).to(device)
        inputs, targets = batch[:, :-1], batch[:, 1:]
        steps_ = torch.arange(1, targets.shape[1] + 1, device=device)
        mask = (steps_[None, :] <= lens[:, None]).float()
        ntoks = mask.sum()
        if body_only:  # the mean of the final hidden states, as gpu_train_mlx.py's body_loss
            logits = base.model(input_ids=inputs, use_cache=False).last_hidden_state
            ce = logits.float().mean(-1).reshape(-1)
        else:
            logits = model(input_ids=inputs, use_cache=False).logits
            ce = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="none")
        loss = (ce * mask.reshape(-1)).sum() / ntoks
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        loss_v = loss.item()  # synchronizes
        steps.append({"tokens": int(ntoks.item()), "s": time.perf_counter() - t, "loss": loss_v})
        del logits, ce, loss, batch
    wall = time.perf_counter() - t_all
    n_warm = len(pl["warmup"])
    warm, meas = steps[:n_warm], steps[n_warm:]
    steady_s = sum(s["s"] for s in meas)
    steady_tokens = sum(s["tokens"] for s in meas)
    assert steady_tokens == pl["real_tokens"], (steady_tokens, pl["real_tokens"])
    losses = [s["loss"] for s in steps]
    return {
        "policy": policy, "batch_size": batch_size, "grad_checkpoint": grad_ckpt, "n_batches": n_batches,
        "distinct_widths": pl["distinct_widths"], "padded_fraction": pl["padded_fraction"],
        "real_tokens": steady_tokens,
        "warmup_s": round(sum(s["s"] for s in warm), 2),
        "first_step_s": round(steps[0]["s"], 3),
        "steady_s": round(steady_s, 3),
        "steady_tok_s": round(steady_tokens / steady_s, 1),
        "steady_step_s_median": round(float(np.median([s["s"] for s in meas])), 4),
        "peak_memory_gb": round(torch.cuda.max_memory_allocated() / 1e9, 2) if cuda else None,
        "peak_reserved_gb": round(torch.cuda.max_memory_reserved() / 1e9, 2) if cuda else None,
        "wall_s": round(wall, 1),
        "loss_first_last": [round(losses[0], 3), round(losses[-1], 3)],
        "loss_finite": all(math.isfinite(x) for x in losses),
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="tokenizer folder (or the MLX model folder, which holds it)")
    p.add_argument("--data", required=True, help="train.jsonl of chat records")
    p.add_argument("--configs", default="pad32:1,pad32:4,pad32:8", help="comma list of POLICY:BATCH")
    p.add_argument("--grad-checkpoint", choices=["off", "on", "both"], default="off")
    p.add_argument("--n-batches", help="override N for every config")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cuda")
    p.add_argument("--tiny", action="store_true", help="small dims (CPU smoke test)")
    p.add_argument("--weights", action="store_true",
                   help="load --model's own weights (Hugging Face folder) instead of the random gemma-3-4b shape")
    p.add_argument("--budget-s", type=float, default=1e9)
    p.add_argument("--loss", choices=["default", "body"], default="default",
                   help="mlx-lm's default loss, or the body alone (no head): gpu_train_mlx.py --loss body")
    p.add_argument("-o", "--output", required=True)
    a = p.parse_args(argv)
    start = time.perf_counter()

    import peft
    import torch
    import transformers

    tokens = gpu_common.tokenize_chat(a.model, a.data)
    t = time.perf_counter()
    model, config = build_model(a.model, a.seed, a.device, a.tiny, a.weights)
    if a.device == "cuda":
        torch.cuda.synchronize()
    build_s = time.perf_counter() - t
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    base = model.get_base_model()
    tied = base.lm_head.weight.data_ptr() == base.model.embed_tokens.weight.data_ptr()
    total = sum(p.numel() for p in model.parameters())
    result = {
        "what": "transformers + PEFT LoRA training, plain PyTorch loop",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__,
        "device": torch.cuda.get_device_name() if a.device == "cuda" else a.device,
        **gpu_common.device_summary(),
        "attn_implementation": config._attn_implementation, "dtype": "bfloat16",
        "model": a.model, "weights": "loaded" if a.weights else "random", "model_build_s": round(build_s, 1), "parameters": int(total), "trainable_parameters": int(trainable),
        "tied_embeddings": tied, "loss": a.loss, "lora_dtype": str(next(p.dtype for p in model.parameters() if p.requires_grad)),
        "lora": {**gpu_common.LORA, "lora_alpha": gpu_common.LORA["scale"] * gpu_common.LORA["rank"]},
        "examples": len(tokens), "configs": [],
    }
    ckpts = {"off": [False], "on": [True], "both": [False, True]}[a.grad_checkpoint]
    per_width_s, tok_s = [], []
    for gc in ckpts:
        for spec in a.configs.split(","):
            policy, bs = spec.split(":")
            bs = int(bs)
            n = int(a.n_batches) if a.n_batches else N_BATCHES[bs]
            pl = gpu_common.plan(tokens, bs, n, policy, a.seed)
            if tok_s:
                est = pl["distinct_widths"] * float(np.mean(per_width_s)) + pl["real_tokens"] / float(np.mean(tok_s))
                if time.perf_counter() - start + est * (1.4 if gc else 1.0) > a.budget_s:
                    result["configs"].append({"policy": policy, "batch_size": bs, "grad_checkpoint": gc,
                                              "status": "skipped (time budget)", "estimated_s": round(est)})
                    gpu_common.write_json(a.output, result)
                    continue
            try:
                r = run_config(model, tokens, policy, bs, n, a.seed, gc, a.device, a.loss == "body")
                r["status"] = "ok"
                per_width_s.append(r["warmup_s"] / max(1, r["distinct_widths"]))
                tok_s.append(r["steady_tok_s"])
            except Exception as e:  # out of memory above all: record it and go on
                r = {"policy": policy, "batch_size": bs, "grad_checkpoint": gc,
                     "status": f"failed: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:300]}
                model.zero_grad(set_to_none=True)
                if a.device == "cuda":
                    torch.cuda.empty_cache()
            result["configs"].append(r)
            gpu_common.write_json(a.output, result)
            print(f"[peft] {spec} gc={gc}: " + (f"warm-up {r['warmup_s']} s, steady {r['steady_tok_s']} tok/s, "
                  f"peak {r['peak_memory_gb']} GB" if r["status"] == "ok" else r["status"]), flush=True)
    result["total_s"] = round(time.perf_counter() - start, 1)
    gpu_common.write_json(a.output, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
