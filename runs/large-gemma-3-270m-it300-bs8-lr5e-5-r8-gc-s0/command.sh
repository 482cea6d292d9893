#!/usr/bin/env bash
# Run from the repository root.
mlx_lm.lora --model models/gemma-3-270m --train --data data/finetuning/large --iters 300 --batch-size 8 --grad-checkpoint --steps-per-eval 100 --save-every 100 --learning-rate 5e-5 --seed 0 -c runs/large-gemma-3-270m-it300-bs8-lr5e-5-r8-gc-s0/config.yaml --adapter-path adapters/large-gemma-3-270m-it300-bs8-lr5e-5-r8-gc-s0
