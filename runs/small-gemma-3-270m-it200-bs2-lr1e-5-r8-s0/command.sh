#!/usr/bin/env bash
# Run from the repository root.
mlx_lm.lora --model models/gemma-3-270m --train --data data/finetuning/small --iters 200 --batch-size 2 --seed 0 -c runs/small-gemma-3-270m-it200-bs2-lr1e-5-r8-s0/config.yaml --adapter-path adapters/small-gemma-3-270m-it200-bs2-lr1e-5-r8-s0
