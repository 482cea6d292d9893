#!/usr/bin/env bash
# Issue 15, seventh GPU pass. Each step writes under /root/lab/out/p7 as soon as it ends.
#   bash bench/campaigns/gpu_perf_pass7.sh TOKENIZER_DIR        # part 1
#   bash bench/campaigns/gpu_perf_pass7.sh TOKENIZER_DIR N ...  # part 2, after reading part 1
# Part 1, in order of need:
#   1. where a dense multiply starts to pay: one 4-bit layer of each of gemma-3-4b's shapes
#      and its tied head, forward + input cotangent, 64 … 16,384 rows (dequant_rows.py);
#   2. the 4-bit 4B shape through mlx-lm's train() with mlx-lm's loss (the CUDA default) and
#      checkpointing, batch 1/2/4/8: quantized_matmul against QMATMUL=dense (from 64 rows),
#      where the sixth pass found dense slower at batch 1;
#   3. MLX against transformers + PEFT without checkpointing on the bf16 4B shape with
#      mlx-lm's loss (the third pass ran only the chunked loss there), batch 1/8/16.
# Part 2: step 2's dense runs again with fewer than N rows per call kept on quantized_matmul,
# for each N given (gpu_train_mlx.py --dequant-min-rows).
# On a lent machine start it detached (setsid nohup bash ... < /dev/null &).
set -u
cd "$(dirname "$0")/../.."
source bench/campaigns/gpu_venv.sh
TOK=$1; shift
O=/root/lab/out/p7; mkdir -p "$O"
LOG=/root/lab/out/p7.log
Q4=/root/m4b B4=/root/m4b16
mlx() { run python3 bench/campaigns/gpu_train_mlx.py --data data/finetuning/large/train.jsonl --n-batches 6 "$@"; }
q4() { mlx --model $Q4 --configs pad32:1,pad32:2,pad32:4,pad32:8 --grad-checkpoint "$@"; }

if [ $# -gt 0 ]; then
  for n in "$@"; do q4 --dequant-matmul --dequant-head --dequant-min-rows "$n" -o $O/q4_dense_min$n.json; done
  touch /root/lab/out/p7b.done
  exit 0
fi
run python3 bench/campaigns/dequant_rows.py --window-s 0.05 --shapes q,kv,o,gate_up,down \
  --rows 64,128,256,384,512,768,1024,1536,2048,4096,8192 -o $O/dequant_rows.json
run python3 bench/campaigns/dequant_rows.py --window-s 0.05 --shapes head --rows 64,256,1024,4096 -o $O/dequant_rows_head.json
[ -f $Q4/config.json ] || run python3 bench/campaigns/gpu_build_model.py --tokenizer "$TOK" --out $Q4 --bits 4
q4 -o $O/q4_quantized.json
q4 --dequant-matmul --dequant-head -o $O/q4_dense_min64.json
[ -f $B4/config.json ] || run python3 bench/campaigns/gpu_build_model.py --tokenizer "$TOK" --out $B4 --bits 16
mlx --model $B4 --configs pad32:1,pad32:8,pad32:16 -o $O/mlx4b_default.json
PYTHONPATH= run python3 bench/campaigns/gpu_train_peft.py --model "$TOK" --data data/finetuning/large/train.jsonl \
  --configs pad32:1,pad32:8,pad32:16 --n-batches 6 --grad-checkpoint off -o $O/peft4b.json
# The first lease's run of step 1 failed here, in the quantized way's first call at 8,192 rows (cudaGraphAddKernelNode
# ... invalid argument): tried last, alone, so that a failure costs nothing else.
run python3 bench/campaigns/dequant_rows.py --window-s 0.05 --shapes head --rows 8192 -o $O/dequant_rows_head8192.json
touch /root/lab/out/p7.done
