#!/usr/bin/env bash
# Run from the repository root.
mlx_lm.lora --model models/gemma-3-270m --train --data data/finetuning/stories/rag-k1 --iters 600 --batch-size 8 --grad-checkpoint --steps-per-eval 300 --save-every 300 --learning-rate 2e-5 --max-seq-length 4864 --mask-prompt --seed 0 -c runs/rag-k1-stories-gemma-3-270m-it600-bs8-lr2e-5-r8-gc-ms4864-mp-s0/config.yaml --adapter-path adapters/rag-k1-stories-gemma-3-270m-it600-bs8-lr2e-5-r8-gc-ms4864-mp-s0
