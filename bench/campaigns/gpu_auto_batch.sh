#!/usr/bin/env bash
# Served NOTES.md: 2026-11-27 (GPU) "Does `BATCH=auto` work on CUDA, with and without …".
# BATCH=auto on CUDA, for real: what memory does the lab read there, which batch does
# auto_batch.py pick for gemma-3-4b-it-4bit's shape (random 4-bit weights, the real tokenizer)
# with and without MEM_LIMIT, and does a real `make train-large BATCH=auto MEM_LIMIT=12` run
# stay near its limit? Uses the committed runs/mem-profile/large-m4b-* profiles (model $GPU_HOME/m4b;
# GPU_HOME's default below).
#
#   bash bench/campaigns/gpu_auto_batch.sh TOKENIZER_DIR    # in a copy of the repo with data/finetuning built
# On a lent machine start it detached (setsid nohup bash ... < /dev/null &).
set -u
cd "$(dirname "$0")/../.."
source bench/campaigns/gpu_venv.sh
TOK=$1
# The lent machine's conventions, in one place (override from the environment).
GPU_HOME=${GPU_HOME:-/root}
LAB_ROOT=${LAB_ROOT:-$GPU_HOME/lab}
LOG=$LAB_ROOT/out/auto.log
M=${Q4:-$GPU_HOME/m4b}
mkdir -p "$LAB_ROOT/out"
run python3 -c "import mlx.core as mx; print(mx.device_info())"
run nvidia-smi --query-gpu=memory.free,memory.total --format=csv
run python3 -c "from olelo import memory; print('available (lab):', memory.available_memory_bytes())"
[ -f $M/config.json ] || run python3 bench/campaigns/gpu_build_model.py --tokenizer "$TOK" --out $M --bits 4
run python3 scripts/auto_batch.py --model $M --data data/finetuning/large --max-seq 1024 --grad-checkpoint on --json
run python3 scripts/auto_batch.py --model $M --data data/finetuning/large --max-seq 1024 --memory-limit-gb 12 --json
# The data was built elsewhere and carried: -o keeps make from rebuilding it from data/raw.
run make --no-print-directory -o data/finetuning/large/manifest.json train-large VENV=$V MODEL=$M \
  BATCH=auto MEM_LIMIT=12 MAX_SEQ=1024 ITERS=12 STEPS_PER_EVAL=12 VAL_BATCHES=2 VAL_GEN=0 SAVE_EVERY=12
d=$(ls -td runs/large-m4b-* 2>/dev/null | head -1)
[ -n "$d" ] && cp -r "$d" "$LAB_ROOT/out/" && tail -3 "$d/metrics.jsonl" >>"$LOG"
touch "$LAB_ROOT/out/auto.done"
