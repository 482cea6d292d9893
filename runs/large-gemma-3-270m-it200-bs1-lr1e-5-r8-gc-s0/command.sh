#!/usr/bin/env bash
# Run from the repository root.
mlx_lm.lora --model models/gemma-3-270m --train --data data/finetuning/large --iters 200 --batch-size 1 --grad-checkpoint --seed 0 -c runs/large-gemma-3-270m-it200-bs1-lr1e-5-r8-gc-s0/config.yaml --adapter-path adapters/large-gemma-3-270m-it200-bs1-lr1e-5-r8-gc-s0
