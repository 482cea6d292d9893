# Served NOTES.md: 2026-11-26 (GPU) "Is MLX (CUDA) LoRA training as fast as transformers + …".
"""Collect the GPU benchmark outputs (issue 5) into bench/results/*.json, and write the
markdown tables for NOTES.md from them.

    python bench/campaigns/gpu_report.py collect --lease 1=DIR,... --lease 2=DIR,...  # fetched $OUT folders -> results JSON
    python bench/campaigns/gpu_report.py tables                                           # results JSON -> .md

`collect` reads what bench/campaigns/gpu_train_mlx.py, gpu_train_peft.py, gpu_generation.py,
gpu_build_model.py and gpu_lab_targets.sh wrote under $OUT on the device machine
(fetched folders, one or more per lease) and writes
bench/results/gpu_train_mlx_vs_peft.json, gpu_generation.json and
gpu_lab_targets.json. `tables` needs only those committed files and writes
bench/results/gpu_train_mlx_vs_peft.md; rerun it after editing nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
import gpu_common  # beside this file

RESULTS = HERE.parent / "results"
TRAIN_JSON = RESULTS / "gpu_train_mlx_vs_peft.json"
GEN_JSON = RESULTS / "gpu_generation.json"
LAB_JSON = RESULTS / "gpu_lab_targets.json"
TABLE_MD = RESULTS / "gpu_train_mlx_vs_peft.md"


def sha256(path) -> str | None:
    p = Path(path)
    return hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else None


def training_rows(runs: list[dict]) -> list[dict]:
    """One flat row per measured config, both frameworks."""
    rows = []
    for run in runs:
        framework = "peft" if "peft" in run["what"].lower() else "mlx"
        for c in run["configs"]:
            if c.get("status") != "ok":
                rows.append({"lease": run["lease"], "framework": framework, "policy": c["policy"],
                             "batch": c["batch_size"], "status": c["status"]})
                continue
            weights = "bf16" if framework == "peft" or (run.get("label") or "").startswith("bf16") else "4-bit g64"
            gc = c.get("grad_checkpoint") if framework == "peft" else run["grad_checkpoint"]
            variant = []
            if framework == "mlx" and not run["compile"]:
                variant.append("no mx.compile")
            variant += [f"{k}={v}" for k, v in run.get("env", {}).items()]
            first = c.get("first_step_s", (c.get("warmup_steps") or [{}])[0].get("s"))
            rows.append({
                "lease": run["lease"], "framework": framework, "weights": weights, "policy": c["policy"],
                "batch": c["batch_size"], "grad_checkpoint": bool(gc), "variant": ", ".join(variant) or "-",
                "tok_s": c["steady_tok_s"], "step_s_median": c["steady_step_s_median"],
                "peak_gb": c["peak_memory_gb"], "warmup_s": c["warmup_s"], "first_step_s": round(first, 2),
                "widths": c["distinct_widths"], "padded_fraction": c["padded_fraction"],
                "ptx_kernels_compiled": c.get("ptx_kernels_compiled"), "real_tokens": c["real_tokens"],
                "status": "ok"})
    return rows


# Written by hand after the runs; `collect` keeps them when it rewrites a file.
# "header" is the common header of bench/results files (olelo/header.py's fields).
KEPT_KEYS = ("header", "findings", "device_calls", "device_time", "not_run", "as_run_on_the_lent_machine")


def write_keeping(path: Path, obj: dict) -> None:
    if path.is_file():
        old = json.loads(path.read_text())
        obj.update({k: old[k] for k in KEPT_KEYS if k in old})
    gpu_common.write_json(path, obj)


def collect(leases: list[tuple[int, Path]]) -> None:
    train_runs, gen_runs, lab_runs, builds = [], [], [], []
    for lease, folder in leases:
        for f in sorted(folder.glob("*.json")):
            if f.name.endswith(".calls.json"):
                continue
            d = json.loads(f.read_text())
            d["lease"] = lease
            d["source_file"] = f"{folder.name}/{f.name}"
            if f.name == "build.json":
                builds.append(d)
            elif f.name.startswith("lab_targets"):
                lab_runs.append(d)
            elif f.name.startswith("generation"):
                calls = folder / f.name.replace(".json", ".calls.json")
                if calls.is_file():  # the first calls of each run: where the time went
                    d["first_calls"] = {k: v[:12] for k, v in json.loads(calls.read_text()).items()}
                gen_runs.append(d)
            elif "configs" in d:
                train_runs.append(d)
    tok = Path(".gpu-c/tok/tokenizer.json")
    setup = {
        "model_shape": "text model of google/gemma-3-4b-it (bench/campaigns/gpu_common.py GEMMA3_4B_TEXT), random init",
        "config": gpu_common.model_config(tok.parent) if tok.is_file() else None,
        "parameters": builds[0]["parameters"] if builds else None,
        "mlx_weights": "random bf16, then mlx_lm.utils.quantize_model 4-bit group 64 (1.84 GB); "
                       "'bf16' rows: the same weights unquantized (6.55 GB, bench/campaigns/gpu_build_model.py --bits 16)",
        "peft_weights": "transformers Gemma3ForCausalLM, random init in bf16, SDPA attention, tied embeddings",
        "tokenizer": "byte-level BPE trained on the Fornander pairs with scripts/build_tiny_model.py "
                     "--vocab-size 32768 (the corpus gives 26,090 tokens; the model's vocab is padded to 26,112)",
        "tokenizer_json_sha256": sha256(tok),
        "data": "data/finetuning/large/train.jsonl (2,293 Fornander pairs, chat records), carried as .gpu-c/train.jsonl",
        "data_sha256": sha256(".gpu-c/train.jsonl"),
        "lora": {**gpu_common.LORA, "targets": gpu_common.LORA_TARGETS, "peft_lora_alpha": 160,
                 "trainable_parameters": 7012352, "optimizer": "Adam lr 1e-5"},
        "batches": "bench/campaigns/gpu_common.plan(): examples sorted by token length, cut into batches, batch order "
                   "shuffled (seed 0) as mlx-lm's iterate_batches means to; the first N batches measured "
                   "(N = 48 / 24 / 16 / 8 for batch 1 / 4 / 8 / 16); identical on both sides",
        "padding": {"pad32": "mlx-lm's own rule: width 1 + 32*ceil(longest/32)",
                    "exact": "longest + 1 (no rounding)",
                    "b8": "fixed widths 1 + {128,192,256,384,512,768,1024,1536}"},
        "timing": "warm-up = one step of each distinct padded width (all shapes compiled), timed apart; "
                  "steady tok/s = real (unpadded) tokens of the N measured batches / their summed step times; "
                  "MLX step time from mlx-lm train()'s own report (steps_per_report 1), PyTorch step time "
                  "host-timed around a synchronised step",
        "peak_memory": "MLX: mx.get_peak_memory(); PyTorch: torch.cuda.max_memory_allocated()",
    }
    train = {
        "what": "LoRA training speed on one H100: MLX (CUDA) vs transformers + PEFT, same shape, data, batches",
        "issue": 5, "setup": setup, "builds": builds,
        "summary": training_rows(train_runs), "runs": train_runs,
    }
    write_keeping(TRAIN_JSON, train)
    write_keeping(GEN_JSON, {"what": "mlx-lm generate vs batch_generate on CUDA (issue 4)", "runs": gen_runs})
    write_keeping(LAB_JSON, {"what": "the lab's Make targets on the GPU machine (issue 5)", "runs": lab_runs})
    print(f"wrote {TRAIN_JSON}, {GEN_JSON}, {LAB_JSON}")


def fmt(x, nd=0):
    return "-" if x is None else f"{x:,.{nd}f}"


def tables() -> None:
    train = json.loads(TRAIN_JSON.read_text())
    rows = [r for r in train["summary"] if r["status"] == "ok"]
    out = ["| lease | framework | weights | padding | batch | grad ckpt | variant | tok/s | peak GB | "
           "warm-up s (widths) | first step s |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    key = lambda r: (r["lease"], r["grad_checkpoint"], r["batch"], r["framework"], r["weights"], r["policy"])
    for r in sorted(rows, key=key):
        out.append(f"| {r['lease']} | {r['framework']} | {r['weights']} | {r['policy']} | {r['batch']} | "
                   f"{'yes' if r['grad_checkpoint'] else 'no'} | {r['variant']} | {fmt(r['tok_s'])} | "
                   f"{fmt(r['peak_gb'], 1)} | {fmt(r['warmup_s'], 1)} ({r['widths']}) | {fmt(r['first_step_s'], 1)} |")
    best = {}
    for r in rows:
        k = (r["framework"], r["weights"], r["grad_checkpoint"])
        if r["variant"] == "-" and (k not in best or r["tok_s"] > best[k]["tok_s"]):
            best[k] = r
    summ = ["| framework | weights | grad ckpt | best tok/s | at | peak GB | lease |", "|---|---|---|---|---|---|---|"]
    for k, r in sorted(best.items(), key=lambda kv: -kv[1]["tok_s"]):
        summ.append(f"| {k[0]} | {k[1]} | {'yes' if k[2] else 'no'} | {fmt(r['tok_s'])} | {r['policy']} batch "
                    f"{r['batch']} | {fmt(r['peak_gb'], 1)} | {r['lease']} |")
    gen = json.loads(GEN_JSON.read_text()) if GEN_JSON.is_file() else {"runs": []}
    gtab = ["| lease | kernel cache at start | run | tokens | seconds | tok/s | kernels compiled |",
            "|---|---|---|---|---|---|---|"]
    for run in gen["runs"]:
        cold = "empty" if run.get("ptx_cache_files_at_start") == 0 else "warm (after training)"
        for g in run.get("generate", []):
            gtab.append(f"| {run['lease']} | {cold} | {g['name']} | {g['generated']} | {g['total_s']} | "
                        f"{g['decode_tok_s']} (decode) | {g.get('ptx_kernels_compiled', '-')} |")
        for b in run.get("batch", []):
            if "tokens" in b:
                gtab.append(f"| {run['lease']} | {cold} | {b['name']} | {b['tokens']} | {b['total_s']} | "
                            f"{b['tok_s']} | {b.get('ptx_kernels_compiled', '-')} |")
    bullets = lambda d: [f"- {x}" for x in d.get("findings", [])]
    text = "\n".join([
        "<!-- generated by `python bench/campaigns/gpu_report.py tables` from bench/results/gpu_*.json; command, "
        "commit, date, machine, load and how to reproduce: the \"header\" of gpu_train_mlx_vs_peft.json and "
        "gpu_generation.json -->",
        "LoRA training, one H100 80GB, random-init gemma-3-4b-it text shape, Fornander pairs, same batches "
        "both sides. Best steady-state throughput per framework (real tokens/s; warm-up excluded):", "", *summ, "",
        *bullets(train), "", "Every measured setting (lease 1 = machine A, lease 2 = machine B):", "", *out, "",
        "Generation (mlx-lm 0.32.2 on CUDA, 128 new tokens per prompt, greedy):", "", *gtab, "", *bullets(gen), ""])
    TABLE_MD.write_text(text, encoding="utf-8")
    print(text)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd")
    c = sub.add_parser("collect", help="raw device outputs -> bench/results/*.json")
    c.add_argument("--lease", action="append", required=True, metavar="N=DIR[,DIR...]")
    sub.add_parser("tables", help="bench/results JSON -> markdown")
    a = p.parse_args(argv)
    if a.cmd == "collect":
        leases = []
        for spec in a.lease:
            n, dirs = spec.split("=", 1)
            leases += [(int(n), Path(d)) for d in dirs.split(",")]
        collect(leases)
    tables()
    return 0


if __name__ == "__main__":
    sys.exit(main())
