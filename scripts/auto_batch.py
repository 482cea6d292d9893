"""Pick the largest batch size (and whether to checkpoint gradients) that fits the
memory this machine has available, for one model and dataset.

    .venv/bin/python scripts/auto_batch.py --model M --data D [--max-seq 2048] [--margin 0.2] [--loss chunked] [--json]
    .venv/bin/python scripts/auto_batch.py --model M --data D --flags          # mlx_lm.lora flags on stdout
    .venv/bin/python scripts/auto_batch.py --model M --data D --check-batch 2 [--grad-checkpoint on]
                                                         # pre-flight OOM warning only (needs a profile)

The worst batch a run meets is the one holding the longest training sequence
(tokenized with the model's tokenizer and chat template, as mlx-lm does), padded
as mlx-lm pads it. Its peak memory is predicted with the fit of the newest
mem_profile.py results for this model and training loss (--loss: a profile made
with mlx-lm's default loss says nothing about the chunked one's memory, and the
other way round; runs/mem-profile/*/results.json); without
one, a quick probe measures batches of the longest examples at batch 1 and 2 in
subprocesses (two iterations each, per checkpoint mode) and fits those. The
largest candidate batch whose prediction stays under available memory less
--margin wins; at equal batch, no checkpointing (it is faster).

With --memory-limit-gb (make's MEM_LIMIT) MLX keeps the peak near the limit unless a
step needs more, so the batch is chosen by each setting's need: only a profile measured
at the need counts (every point past its limit: make mem-profile MEM_LIMIT=0.001), or
the probe runs so, and the budget is at most the limit.

With both checkpoint modes in play (--grad-checkpoint auto), the newest profile of each
mode serves when no profile measured both.

Available memory: with MLX on CUDA, the GPU's free memory (mx.device_info(), else
nvidia-smi); MemAvailable of /proc/meminfo on a Linux CPU; vm_stat free + inactive +
speculative on macOS (capped by Metal's recommended working set).
Prints what it picked and why as one line (stderr with --flags), or --json.
"""

from __future__ import annotations

import json
import sys

import olelo
from olelo import auto_batch
from olelo.auto_batch import CANDIDATES, choose, probe  # noqa: F401 (the library's, named here for readers)


def parse_args(argv=None):
    return auto_batch.parse_args(argv, description=__doc__)


def main(argv=None) -> int:
    a = parse_args(argv)
    if a.check_batch:
        print(auto_batch.check(a), file=sys.stderr)
        return 0
    choice = auto_batch.pick(a)
    if a.json:
        print(json.dumps(choice, indent=2))
    elif a.flags:
        print(choice["reason"], file=sys.stderr)
        if not choice["batch_size"]:
            return 1
        print(" ".join(auto_batch.flags(choice)))
    else:
        print(choice["reason"])
    return 0 if choice["batch_size"] else 1


if __name__ == "__main__":
    olelo.run_main(main)
