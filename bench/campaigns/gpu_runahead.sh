#!/usr/bin/env bash
# Issue 15, fourth GPU pass: how much of MLX's CUDA peak is work queued ahead of the GPU?
# Each step writes its JSON under /root/lab/out/ra as soon as it ends (a lease that ends
# early keeps what finished), in order of need:
#   1. gemma-3-4b text shape (random bf16, vocabulary 262,144), 1,024 tokens, compiled step,
#      checkpointing, batch 1/2/8, both losses: MLX's own memory limit, then the limit at
#      what the warm-up needed without run-ahead (lean_loss_memory.py --limit-over-need-gb 0);
#   2. gemma-3-4b-it-4bit's shape (random 4-bit weights, the real tokenizer's lengths) through
#      the trainer, with checkpointing, under a limit far below the need (mem_profile.py
#      --memory-limit-gb 0.001): what each setting needs, for the memory guidelines;
#   3. step 1 without checkpointing (limit at the need);
#   4. step 2 without checkpointing;
#   5. step 2 under MLX's own limit (the before of the guidelines' after).
#
#   bash bench/campaigns/gpu_runahead.sh TOKENIZER_DIR    # in a copy of the repo with data/finetuning built
# On a lent machine start it detached (setsid nohup bash ... < /dev/null &).
set -u
cd "$(dirname "$0")/../.."
source bench/campaigns/gpu_venv.sh
TOK=$1
O=/root/lab/out/ra; mkdir -p "$O"
LOG=/root/lab/out/ra.log
Q4=/root/m4b
lean() { run python3 bench/campaigns/lean_loss_memory.py --shape gemma-3-4b --dtype bfloat16 --seq 1024 --steps 2 \
  --compile --batches 1,2,8 "$@"; }
prof() { run python3 scripts/mem_profile.py --model $Q4 --data data/finetuning/large --batch-sizes 1,2,4,8 \
  --max-seqs 512,1024 --iters 3 --warmup 1 --longest-only --memory-limit-gb 0.001 --out $O/mem-profile "$@"; }

lean --grad-checkpoint --out $O/lean4b_gc.json
lean --grad-checkpoint --limit-over-need-gb 0 --out $O/lean4b_gc_need.json
run python3 bench/campaigns/gpu_build_model.py --tokenizer "$TOK" --out $Q4 --bits 4
prof --grad-checkpoint on
lean --limit-over-need-gb 0 --out $O/lean4b_need.json
prof --grad-checkpoint off
run python3 scripts/mem_profile.py --model $Q4 --data data/finetuning/large --batch-sizes 1,2,4,8 \
  --max-seqs 512,1024 --iters 3 --warmup 1 --longest-only --out $O/mem-profile --grad-checkpoint on
touch /root/lab/out/ra.done
