#!/usr/bin/env bash
# Run from the repository root.
mlx_lm.lora --model models/gemma-3-270m-4bit --train --data data/finetuning/stories/large --iters 600 --batch-size 8 --grad-checkpoint --steps-per-eval 150 --save-every 150 --learning-rate 1e-4 --seed 1 -c runs/large-stories-gemma-3-270m-4bit-it600-bs8-lr0.0001-r8-gc-s1/config.yaml --adapter-path adapters/large-stories-gemma-3-270m-4bit-it600-bs8-lr0.0001-r8-gc-s1
