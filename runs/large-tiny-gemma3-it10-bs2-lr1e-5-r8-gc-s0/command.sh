#!/usr/bin/env bash
# Run from the repository root.
mlx_lm.lora --model models/tiny-gemma3 --train --data data/finetuning/large --iters 10 --batch-size 2 --grad-checkpoint --seed 0 -c runs/large-tiny-gemma3-it10-bs2-lr1e-5-r8-gc-s0/config.yaml --adapter-path adapters/large-tiny-gemma3-it10-bs2-lr1e-5-r8-gc-s0
