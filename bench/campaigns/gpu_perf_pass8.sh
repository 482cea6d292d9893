#!/usr/bin/env bash
# Issue 15, eighth GPU pass. Each step writes under /root/lab/out/p8 as soon as it ends.
#   bash bench/campaigns/gpu_perf_pass8.sh TOKENIZER_DIR
# In order of need:
#   1. QMATMUL=dense's extra need: the 4-bit 4B shape through mlx-lm's train() (mlx-lm's
#      loss, checkpointing, batch 1/2/4/8, 12 batches each) with each dense copy waiting for
#      its operand (olelo.dequant.ORDERED, new), without the wait (as in the seventh pass),
#      and with quantized_matmul; the ordered way twice, for the spread between processes;
#   2. where a step's time goes without checkpointing on the bf16 4B shape, MLX against
#      transformers + PEFT at batch 8 and 16: the whole step, and the body alone (--loss body:
#      no head, no cross-entropy), so the difference is the head's and the loss's;
#   3. where Nsight Systems is on the machine: one kernel summary of each at batch 8.
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
q4 --dequant-matmul --dequant-head --dequant-unordered -o $O/q4_dense_unordered.json
q4 --dequant-matmul --dequant-head -o $O/q4_dense_ordered.json
q4 -o $O/q4_quantized.json
q4 --dequant-matmul --dequant-head -o $O/q4_dense_ordered_2.json
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
touch /root/lab/out/p8.done
