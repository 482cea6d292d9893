#!/usr/bin/env bash
# Run from the repository root.
mlx_lm.lora --model models/gemma-3-270m --train --data data/finetuning/large --iters 2000 --batch-size 1 --grad-checkpoint --steps-per-eval 400 --save-every 400 --learning-rate 5e-5 --seed 0 -c runs/large-gemma-3-270m-it2000-bs1-lr5e-5-r16-gc-s0/config.yaml --adapter-path adapters/large-gemma-3-270m-it2000-bs1-lr5e-5-r16-gc-s0
