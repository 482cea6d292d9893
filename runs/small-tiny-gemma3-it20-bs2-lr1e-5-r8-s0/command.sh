#!/usr/bin/env bash
# Run from the repository root.
mlx_lm.lora --model models/tiny-gemma3 --train --data data/finetuning/small --iters 20 --batch-size 2 --seed 0 -c runs/small-tiny-gemma3-it20-bs2-lr1e-5-r8-s0/config.yaml --adapter-path adapters/small-tiny-gemma3-it20-bs2-lr1e-5-r8-s0
