#!/usr/bin/env bash
# Issue 15, eighth GPU pass. Each step writes under /root/lab/out/p8 as soon as it ends.
#   bash bench/campaigns/gpu_perf_pass8.sh TOKENIZER_DIR
# In order of need:
#   1. QMATMUL=dense's extra need: the 4-bit 4B shape through mlx-lm's train() (mlx-lm's
#      loss, checkpointing, batch 1/2/4/8, 12 batches each) with each dense copy waiting for
#      its operand (--dequant-ordered), without the wait (as in the seventh pass), and with
#      quantized_matmul; the ordered way twice, for the spread between processes;
#   2. where a step's time goes without checkpointing on the bf16 4B shape, MLX against
#      transformers + PEFT at batch 8 and 16: the whole step, and the body alone (--loss body:
#      no head, no cross-entropy), so the difference is the head's and the loss's;
#   3. where Nsight Systems is on the machine: one kernel summary of each at batch 8.
#   4. after reading 1 (the second machine): batch 4 and 8 alone, without and with the wait,
#      two processes each after one that compiles the kernels.
# It ran from commit f3d6d0d, where the wait was the default and the flag was its opposite
# (--dequant-unordered); the commands below are today's equivalents.
# On a lent machine start it detached (setsid nohup bash ... < /dev/null &).
set -u
cd "$(dirname "$0")/../.."
source bench/campaigns/gpu_venv.sh
TOK=$1
O=/root/lab/out/p8; mkdir -p "$O"
LOG=/root/lab/out/p8.log
Q4=/root/m4b B4=/root/m4b16
DATA=data/finetuning/large/train.jsonl
mlx() { run python3 bench/campaigns/gpu_train_mlx.py --data $DATA --n-batches 12 "$@"; }
peft() { PYTHONPATH= run python3 bench/campaigns/gpu_train_peft.py --model "$TOK" --data $DATA --n-batches 12 "$@"; }
q4() { mlx --model $Q4 --configs pad32:1,pad32:2,pad32:4,pad32:8 --grad-checkpoint "$@"; }

[ -f $Q4/config.json ] || run python3 bench/campaigns/gpu_build_model.py --tokenizer "$TOK" --out $Q4 --bits 4
[ -f $B4/config.json ] || run python3 bench/campaigns/gpu_build_model.py --tokenizer "$TOK" --out $B4 --bits 16
q4 --dequant-matmul --dequant-head -o $O/q4_dense_unordered.json
q4 --dequant-matmul --dequant-head --dequant-ordered -o $O/q4_dense_ordered.json
q4 -o $O/q4_quantized.json
q4 --dequant-matmul --dequant-head --dequant-ordered -o $O/q4_dense_ordered_2.json
mlx --model $B4 --configs pad32:8,pad32:16 -o $O/mlx4b_default.json
mlx --model $B4 --configs pad32:8,pad32:16 --loss body -o $O/mlx4b_body.json
peft --configs pad32:8,pad32:16 -o $O/peft4b_default.json
peft --configs pad32:8,pad32:16 --loss body -o $O/peft4b_body.json
NSYS=$(command -v nsys || ls /opt/nvidia/nsight-systems/*/bin/nsys /usr/local/cuda*/bin/nsys 2>/dev/null | head -1)
echo "nsys: ${NSYS:-none}" >>"$LOG"
if [ -n "$NSYS" ]; then
  run "$NSYS" profile -t cuda -o $O/mlx_b8 --force-overwrite true python3 bench/campaigns/gpu_train_mlx.py \
    --data $DATA --n-batches 4 --model $B4 --configs pad32:8 -o $O/nsys_mlx_b8.json
  PYTHONPATH= run "$NSYS" profile -t cuda -o $O/peft_b8 --force-overwrite true python3 bench/campaigns/gpu_train_peft.py \
    --model "$TOK" --data $DATA --n-batches 4 --configs pad32:8 -o $O/nsys_peft_b8.json
  for r in mlx_b8 peft_b8; do
    run "$NSYS" stats -q -r cuda_gpu_kern_sum -f csv -o $O/$r $O/$r.nsys-rep
  done
  rm -f $O/*.nsys-rep $O/*.sqlite
fi
# The repeats, run after reading the above on the same machine: step 2 again with the
# seventh pass's 6 batches, once more with 12, then 6 batches three times more.
mlx --model $B4 --configs pad32:8,pad32:16 --n-batches 6 -o $O/mlx4b_default_n6.json
peft --configs pad32:8,pad32:16 --n-batches 6 -o $O/peft4b_default_n6.json
mlx --model $B4 --configs pad32:8,pad32:16 -o $O/mlx4b_default_2.json
for i in 2 3 4; do
  mlx --model $B4 --configs pad32:8,pad32:16 --n-batches 6 -o $O/mlx4b_default_n6_$i.json
  peft --configs pad32:8,pad32:16 --n-batches 6 -o $O/peft4b_default_n6_$i.json
done
b48() { mlx --model $Q4 --configs pad32:4,pad32:8 --grad-checkpoint --dequant-matmul --dequant-head "$@"; }
b48 --dequant-ordered -o $O/warm.json
for i in 2 3; do
  b48 -o $O/q4_dense_unordered_b48_$i.json
  b48 --dequant-ordered -o $O/q4_dense_ordered_b48_$i.json
done
touch /root/lab/out/p8.done
