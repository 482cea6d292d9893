#!/usr/bin/env bash
# Issue 15, fifth GPU pass. Each step writes under /root/lab/out/p5 as soon as it ends (a
# lease that ends early keeps what finished), in order of need:
#   1. the 4-bit path's speed: gemma-3-4b's text shape with random 4-bit weights (the real
#      vocabulary, the real tokenizer's batches), chunked loss, checkpointing, batch 1/8/16:
#      quantized_matmul (pass 3 measured 0.65 / 0.49 / 0.35x bf16's tok/s) against
#      --dequant-matmul (olelo/dequant.py), then bf16 on the same machine for the ratios;
#   2. a limit above the need through the trainer: gemma-3-4b-it-4bit's shape, the longest
#      1,024-token batches, checkpointing, batch 4 and 8, with --memory-limit-gb 12 (the need
#      was 7.96 / 9.73 GB) and under MLX's own limit: how far past the limit the peak goes,
#      and at what tok/s;
#   3. the need (limit 0.001) at batch 1/2/4/8 x 1,024 with MLX_MAX_OPS_PER_BUFFER=1 (one
#      operation per CUDA graph, so little is queued): is the checkpointed need's
#      less-than-linear growth queued work?
#
#   bash bench/campaigns/gpu_perf_pass5.sh TOKENIZER_DIR    # in a copy of the repo with data/finetuning built
# On a lent machine start it detached (setsid nohup bash ... < /dev/null &).
set -u
cd "$(dirname "$0")/../.."
source bench/campaigns/gpu_venv.sh
TOK=$1
O=/root/lab/out/p5; mkdir -p "$O"
LOG=/root/lab/out/p5.log
Q4=/root/m4b B4=/root/m4b16
mlx() { run python3 bench/campaigns/gpu_train_mlx.py --data data/finetuning/large/train.jsonl \
  --configs pad32:1,pad32:8,pad32:16 --n-batches 6 --grad-checkpoint --loss chunked "$@"; }
prof() { run python3 scripts/mem_profile.py --model $Q4 --data data/finetuning/large --max-seqs 1024 \
  --iters 6 --warmup 2 --longest-only --no-longest-check --grad-checkpoint on --out $O/mem-profile "$@"; }

run python3 bench/campaigns/gpu_build_model.py --tokenizer "$TOK" --out $Q4 --bits 4
mlx --model $Q4 -o $O/mlx4b_4bit_qmm.json
mlx --model $Q4 --dequant-matmul -o $O/mlx4b_4bit_dequant.json
run python3 bench/campaigns/gpu_build_model.py --tokenizer "$TOK" --out $B4 --bits 16
mlx --model $B4 -o $O/mlx4b_bf16.json
prof --batch-sizes 4,8 --memory-limit-gb 12
prof --batch-sizes 4,8
MLX_MAX_OPS_PER_BUFFER=1 prof --batch-sizes 1,2,4,8 --memory-limit-gb 0.001 --iters 3 --warmup 1
touch /root/lab/out/p5.done
