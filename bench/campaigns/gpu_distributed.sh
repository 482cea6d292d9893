#!/usr/bin/env bash
# Served NOTES.md: 2026-11-26 (2 GPUs) "Does NCCL training scale on two H100s?".
# 1 GPU vs 2 GPUs (MLX NCCL backend through mlx.launch), the lab's own `make train-large`,
# on the lent 2-GPU machine (kind nvidia-h100-x2). Two device calls, back to back:
#   1. carry [".gpu-a"]:                 mkdir -p $GPU_HOME/stash && cp .gpu-a/part.aa $GPU_HOME/stash/
#   2. carry [".gpu-b", ".gpu-c"]:       source .gpu-b/install.sh && bash bench/campaigns/gpu_distributed.sh
# Model: random-init gemma-3-4b-it text shape, bf16 (the fastest MLX setting of
# bench/results/gpu_train_mlx_vs_peft.md), built on the machine by bench/campaigns/gpu_build_model.py.
# Both runs: global batch 8 (NPROC=2: 4 per GPU), no grad checkpointing, ITERS iterations,
# a report every 5 steps, validation only at the start and end (2 batches).
# MLX_FLAGS is overridden on make's command line (a plain make feature) because the
# Makefile has no knob for --steps-per-report; this drops train-large's default
# --grad-checkpoint, which is meant (bf16 batch 8 fits easily in 80 GB).
# Results: $OUT/dist.json (+ logs, nvidia-smi samples).
set -u
# The lent machine's conventions, in one place (override from the environment): its home (the
# built model), and a scratch folder for the runs, the shim venv and the per-run exit codes.
GPU_HOME=${GPU_HOME:-/root}
SCRATCH=${SCRATCH:-/tmp}
B4=${B4:-$GPU_HOME/m4b16}
OUTD=${OUT:-$SCRATCH/dist-out}; mkdir -p "$OUTD"; rm -rf "$SCRATCH/lab" "$SCRATCH/rc.txt"
ITERS=${ITERS:-60}
export NCCL_NVLS_ENABLE=0 PYTHONUNBUFFERED=1
nvidia-smi -L | tee "$OUTD/smi_apps.txt"
T0=$SECONDS
python3 bench/campaigns/gpu_build_model.py --tokenizer .gpu-c/tok --out "$B4" --bits 16 || exit 5
echo "model built in $((SECONDS - T0)) s"

# Stand-in .venv for the Makefile, with mlx.launch beside its python.
source "$(dirname "$0")/gpu_venv.sh"
# Shim venv $SCRATCH/vs: same python, plus a sitecustomize that makes
# mx.distributed.all_sum/all_gather(..., stream=mx.cpu) run on the default (GPU) stream.
# Without it the NCCL run dies in scripts/train.py agree() (all_sum(stream=mx.cpu)):
# "RuntimeError: There is no Stream(gpu, 0) in current thread" (attempt 1, 06:08 UTC).
VS=$SCRATCH/vs; mkdir -p $VS/bin "$SCRATCH/shim"; cp $V/bin/mlx.launch $VS/bin/; touch $VS/.installed
printf '#!/bin/sh\nPYTHONPATH=%s:$PYTHONPATH exec %s "$@"\n' "$SCRATCH/shim" "$PY3" > $VS/bin/python; chmod +x $VS/bin/python
cat > "$SCRATCH/shim/sitecustomize.py" <<'PY'
import sys
import mlx.core as mx
def _wrap(f):
    def w(x, *a, **k):
        s = k.get("stream")
        if s is not None and (s == mx.cpu or getattr(s, "device", None) == mx.cpu):
            k.pop("stream")
        return f(x, *a, **k)
    return w
for _n in ("all_sum", "all_gather", "all_max", "all_min"):
    if hasattr(mx.distributed, _n):
        setattr(mx.distributed, _n, _wrap(getattr(mx.distributed, _n)))
print("[shim] mx.distributed collectives: stream=mx.cpu -> default stream", file=sys.stderr)
PY
make --no-print-directory data VENV=$V DATA_SRC=.gpu-c/raw > "$OUTD/data.log" 2>&1 || { tail "$OUTD/data.log"; exit 6; }

# GPU memory / process placement, sampled every 0.5 s for the whole benchmark.
nvidia-smi --query-gpu=timestamp,index,memory.used,utilization.gpu --format=csv,noheader -lms 500 > "$OUTD/smi_gpu.csv" 2>&1 &
SMI=$!
( while sleep 2; do date -u +%T; nvidia-smi --query-compute-apps=pid,gpu_uuid,used_memory --format=csv,noheader; done ) >> "$OUTD/smi_apps.txt" 2>&1 &
APPS=$!

# N=1 runs with CUDA_VISIBLE_DEVICES=0: with both GPUs visible, attempt 1 died in the first
# validation batch (mx.array(batch) -> "cudaMemcpy(...) failed: invalid argument").
# NCCL smoke test: which GPU does each rank use?
cat > "$SCRATCH/nccl_smoke.py" <<'PY'
import os, time, mlx.core as mx
g = mx.distributed.init(backend="nccl")
x = mx.distributed.all_sum(mx.ones(4) * (g.rank() + 1)); mx.eval(x)
print(f"rank {g.rank()}/{g.size()} device {mx.default_device()} CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES')} all_sum {x.tolist()}", flush=True)
big = mx.zeros((1024, 1024, 256)); mx.eval(big)  # 1 GiB, to see it in nvidia-smi
time.sleep(5)
PY
timeout 60 $V/bin/mlx.launch -n 2 --backend nccl -- python3 "$SCRATCH/nccl_smoke.py" > "$OUTD/smoke.log" 2>&1
echo "smoke rc $?"; cat "$OUTD/smoke.log" | tail -5
nvidia-smi --query-gpu=index,uuid --format=csv,noheader | tee -a "$OUTD/smoke.log"

for N in 1 2; do
  t=$SECONDS
  if [ $N = 1 ]; then VV=$V; export CUDA_VISIBLE_DEVICES=0; else VV=$VS; unset CUDA_VISIBLE_DEVICES; fi
  echo "=== NPROC=$N start $(date -u +%T)" | tee -a "$OUTD/smi_apps.txt"
  timeout $([ $N = 1 ] && echo 330 || echo 200) make --no-print-directory train-large VENV=$VV RUNS_DIR=$SCRATCH/lab/n$N/runs ADAPTERS_DIR=$SCRATCH/lab/n$N/adapters \
    MODEL=$B4 ITERS=$ITERS NPROC=$N DIST_BACKEND=nccl BATCH=8 \
    MLX_FLAGS="--steps-per-eval 1000 --val-batches 2 --steps-per-report 5" > "$OUTD/train_n$N.log" 2>&1
  rc=$?
  echo "=== NPROC=$N rc $rc in $((SECONDS - t)) s" | tee -a "$OUTD/smi_apps.txt"
  echo "$N $rc $((SECONDS - t))" >> "$SCRATCH/rc.txt"
  tail -n 3 "$OUTD/train_n$N.log" | cut -c1-300
done
kill $SMI $APPS 2>/dev/null

python3 - "$OUTD" "$SCRATCH" <<'PY'
import json, os, sys
out, scratch = sys.argv[1], sys.argv[2]
res = {"runs": []}
for line in open(os.path.join(scratch, "rc.txt")):
    n, rc, s = map(int, line.split())
    run = os.path.realpath(os.path.join(scratch, f"lab/n{n}/runs/latest"))
    r = {"nproc": n, "make_rc": rc, "wall_s": s, "run": os.path.basename(run)}
    p = os.path.join(run, "manifest.json")
    if os.path.isfile(p):
        m = json.load(open(p))
        r["manifest"] = {k: m.get(k) for k in ("status", "world_size", "hosts", "iters", "mlx_lm_command", "error")}
    p = os.path.join(run, "metrics.jsonl")
    if os.path.isfile(p):
        r["metrics"] = [json.loads(l) for l in open(p) if l.strip()]
        tr = [x for x in r["metrics"] if x["type"] == "train"]
        steady = [x for x in tr if x["iteration"] > 10]
        if steady:
            r["steady_tok_s_mean"] = round(sum(x["tokens_per_second"] for x in steady) / len(steady), 1)
            r["steady_tok_s_median"] = sorted(x["tokens_per_second"] for x in steady)[len(steady) // 2]
            r["steady_reports"] = [x["iteration"] for x in steady]
            r["peak_memory_gb_rank0"] = max(x.get("peak_memory", 0) for x in tr)
    res["runs"].append(r)
json.dump(res, open(os.path.join(out, "dist.json"), "w"), indent=2, default=str)
for r in res["runs"]:
    print(r["nproc"], r["make_rc"], r["wall_s"], r.get("manifest", {}).get("world_size"), r.get("steady_tok_s_mean"),
          r.get("steady_tok_s_median"), r.get("peak_memory_gb_rank0"),
          [(x["iteration"], round(x["tokens_per_second"])) for x in r.get("metrics", []) if x["type"] == "train"])
PY
# per-GPU peak memory.used from the samples, per phase is in smi_gpu.csv / smi_apps.txt
python3 - "$OUTD" <<'PY'
import sys, collections
pk = collections.defaultdict(int)
for l in open(sys.argv[1] + "/smi_gpu.csv"):
    f = [x.strip() for x in l.split(",")]
    if len(f) >= 3 and f[2].endswith("MiB"):
        pk[f[1]] = max(pk[f[1]], int(f[2].split()[0]))
print("peak memory.used per GPU over the whole script (MiB):", dict(pk))
PY
