#!/usr/bin/env bash
# Issue 15, sixth GPU pass: memory profiles of gemma-3-4b-it-4bit's shape (random 4-bit weights,
# the real tokenizer's lengths) through the trainer with QMATMUL=dense (--quantized-matmul dense,
# the default on CUDA), for its memory guidelines and BATCH=auto; the same settings as the fourth
# pass's quantized_matmul profiles (gpu_runahead.sh), so the two compare point by point:
#   1. the need (limit 0.001 GB), checkpointing;
#   2. MLX's own limit, checkpointing;
#   3. the need without checkpointing.
# Each profile lands under /root/lab/out/p6/mem-profile as soon as it ends.
#
#   bash bench/campaigns/gpu_perf_pass6.sh TOKENIZER_DIR    # in a copy of the repo with data/finetuning built
# On a lent machine start it detached (setsid nohup bash ... < /dev/null &).
set -u
cd "$(dirname "$0")/../.."
source bench/campaigns/gpu_venv.sh
TOK=$1
O=/root/lab/out/p6; mkdir -p "$O"
LOG=/root/lab/out/p6.log
Q4=/root/m4b
prof() { run python3 scripts/mem_profile.py --model $Q4 --data data/finetuning/large --batch-sizes 1,2,4,8 \
  --max-seqs 512,1024 --iters 3 --warmup 1 --longest-only --quantized-matmul dense --out $O/mem-profile "$@"; }

run python3 bench/campaigns/gpu_build_model.py --tokenizer "$TOK" --out $Q4 --bits 4
prof --grad-checkpoint on --memory-limit-gb 0.001
prof --grad-checkpoint on
prof --grad-checkpoint off --memory-limit-gb 0.001
touch /root/lab/out/p6.done
