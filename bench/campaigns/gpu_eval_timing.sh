#!/usr/bin/env bash
# Served NOTES.md: 2026-12-07 (GPU) "How long does `make eval` take on CUDA, and do the greedy translations depend on the batch?".
# Issue 28's CUDA target for make eval: the recipe's run evaluated with the lab's own target, timed end to end
# (translation of base and best/, perplexity, scoring), first on a fresh machine (MLX compiles its CUDA kernels
# then), again with the kernels compiled, and with the loop stop on (LOOP_STOP=1, its own folder).
#
#   bash bench/campaigns/gpu_eval_timing.sh RUN_STAMP    # in a clone with adapters/RUN_STAMP/best laid in
#
# Needs what campaign_gemma270m.sh needs (MLX from the carried wheels, the GGUF chunk wheels in
# $GPU_HOME/stash, .gpu-data/). Writes $GPU_HOME/lab/eval_timing.tsv (case, seconds) and eval-*.log.
set -u
cd "$(dirname "$0")/../.."
source bench/campaigns/gpu_venv.sh
GPU_HOME=${GPU_HOME:-/root}
LAB=$GPU_HOME/lab; mkdir -p "$LAB"
S=$1
A="VENV=$V MODEL=models/gemma-3-270m GGUF_WHEELS=$GPU_HOME/stash DATA_SRC=.gpu-data"
[ -f models/gemma-3-270m/config.json ] || make --no-print-directory base-model $A BASE_F32=0 >"$LAB/model.log" 2>&1
make --no-print-directory data $A >"$LAB/data.log" 2>&1
timed() {  # timed CASE make-args...
  local name=$1 t0; shift
  t0=$(date +%s%N)
  make --no-print-directory eval RUN="$S" EVAL_CKPTS=best MAX_TOKENS=256 $A "$@" >"$LAB/eval-$name.log" 2>&1
  local rc=$?
  printf '%s\t%s ms\trc=%s\n' "$name" "$((($(date +%s%N) - t0) / 1000000))" "$rc" >>"$LAB/eval_timing.tsv"
}
rm -rf "runs/$S/eval-mt256/base" "runs/$S/eval-mt256/best" "runs/$S/eval-mt256/summary.json"
timed cold-kernels
rm -rf "runs/$S/eval-mt256/base" "runs/$S/eval-mt256/best" "runs/$S/eval-mt256/summary.json" runs/.segment-stats
timed warm-kernels
timed loop-stop LOOP_STOP=1
touch "$LAB/eval_timing.done"
