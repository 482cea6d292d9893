#!/usr/bin/env bash
# Run from the repository root.
mlx_lm.lora --model models/tiny-gemma3 --train --data data/finetuning/large --iters 20 --batch-size 1 --grad-checkpoint --steps-per-eval 5 --save-every 5 --seed 0 -c runs/large-tiny-gemma3-it20-bs1-lr1e-5-r8-gc-p2-s0/config.yaml --adapter-path adapters/large-tiny-gemma3-it20-bs1-lr1e-5-r8-gc-p2-s0
