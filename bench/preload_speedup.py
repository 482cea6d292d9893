"""tok/s of the same short LoRA run with and without LD_PRELOAD of OpenBLAS.

mlx[cpu] on Linux bundles a slow reference BLAS; preloading Debian's OpenBLAS
replaces its matmuls (the Makefile does it for every MLX command). Each case is
one subprocess of scripts/mem_profile.py's point runner (same model, data,
batch, seed), with LD_PRELOAD set or removed; tok/s leaves out the warm-up.
Cases alternate (--repeats) so a change of machine load hits both.

The speedup depends on how much of a step is matrix products: tiny-gemma3
(hidden 64) spends most of its time elsewhere. Pass a wider random model too
to see the matmul-bound case, e.g. one built with
    scripts/build_tiny_model.py --text ... --out /tmp/wide-gemma3 --hidden-size 512 --layers 6 \
        --heads 8 --kv-heads 4 --head-dim 64 --intermediate-size 2048

Run:
    .venv/bin/python bench/preload_speedup.py --data data/finetuning/large \
        [--models models/tiny-gemma3,/tmp/wide-gemma3]
"""

import argparse
import json
import os
import statistics
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from olelo import header
import olelo
from olelo import memory

OPENBLAS = "/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="models/tiny-gemma3", help="comma-separated model folders")
    p.add_argument("--data", default="data/finetuning/large", help="folder with train.jsonl")
    p.add_argument("--openblas", default=OPENBLAS)
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--max-seq", type=int, default=128)
    p.add_argument("--iters", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--out", default=str(ROOT / "bench/results/preload_speedup.json"))
    a = p.parse_args()
    if not Path(a.openblas).is_file():
        raise olelo.UserError(f"{a.openblas} not found (apt-get install libopenblas0-pthread)")

    env = dict(os.environ)
    head = header.start(f"make bench-preload MODEL={a.models}")
    results = {
        "what": "tok/s after warm-up of one LoRA setting, OpenBLAS preloaded vs not",
        "openblas": a.openblas, "environment": {**olelo.runs.environment_info(), "cpu_count": os.cpu_count()},
        "goal": ">= 5x", "models": [],
    }
    with tempfile.TemporaryDirectory() as tmp:
        for model in a.models.split(","):
            point = {"model": model, "data": a.data, "batch": a.batch, "grad_checkpoint": False,
                     "max_seq": a.max_seq, "iters": a.iters, "warmup": a.warmup, "num_layers": 16, "seed": 0}
            cases = []
            for rep in range(a.repeats):
                for preload in (True, False):
                    os.environ.pop("LD_PRELOAD", None)
                    if preload:
                        os.environ["LD_PRELOAD"] = a.openblas
                    r = memory.measure(point, Path(tmp) / f"{rep}-{preload}.log", timeout=3600)
                    if r["status"] != "ok":
                        raise olelo.UserError(f"{model} with preload={preload} failed: {r['status']}")
                    case = {"ld_preload": preload, **{k: r[k] for k in ("tok_s", "it_s", "warmup_s", "steady_tokens",
                                                                         "steady_s", "loadavg_start", "loadavg_end")}}
                    print(model, case, flush=True)
                    cases.append(case)
            os.environ.clear()
            os.environ.update(env)
            with_, without = ([c["tok_s"] for c in cases if c["ld_preload"] is flag] for flag in (True, False))
            speedup = statistics.median(with_) / statistics.median(without)
            config = json.loads((Path(model) / "config.json").read_text())
            results["models"].append({
                "model": model, "setting": point,
                "dims": {k: config.get(k) for k in ("hidden_size", "intermediate_size", "num_hidden_layers",
                                                    "num_attention_heads", "head_dim", "vocab_size")},
                "cases": cases,
                "median_tok_s": {"preload": statistics.median(with_), "no_preload": statistics.median(without)},
                "speedup": round(speedup, 2), "goal_met": speedup >= 5})
            print(f"{model}: speedup {speedup:.1f}x (median tok/s {statistics.median(with_):.0f} vs "
                  f"{statistics.median(without):.0f})", flush=True)
    header.write(a.out, head, results)
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    olelo.run_main(main)
