"""Run one mlx_lm.lora training command as a recorded, resumable lab run.

    python scripts/train.py [lab options] -- mlx_lm.lora --model M --train --data D ...

Everything after `--` is an ordinary mlx_lm.lora command line. It is parsed by
mlx-lm's own parser and merged with the run's config.yaml exactly as mlx_lm.lora
does (flag > YAML > default); olelo/trainer.py trains it with mlx-lm's pieces in
mlx-lm's order (same losses as mlx-lm's train) and checkpoints that resume exactly.
The lab's Recorder writes every report, scores validation translations (chrF++ of
--val-gen sentences), keeps the best checkpoint (--select) and stops early.
--loss chunked (make's LOSS=chunked) swaps mlx-lm's loss for olelo/lean_loss.py's:
the same losses, with much less memory for the logits of a large vocabulary; --loss
auto (the default) takes it on a CPU, mlx-lm's on a GPU. What gets written:

    runs/<stamp>/command.sh     the exact mlx_lm.lora invocation
    runs/<stamp>/config.yaml    LoRA parameters and LR schedule (mlx-lm reads them only from YAML)
    runs/<stamp>/manifest.json  git, packages, platform, data checksums, times, status
    runs/<stamp>/train.log      the console output
    runs/<stamp>/metrics.jsonl  every train and validation report
    adapters/<stamp>/           adapters, numbered checkpoints with their training state, best/

Run the same command again: a finished run is "up to date"; an interrupted one
(Ctrl-C, kill -9, out of memory) resumes from its last checkpoint as if it had
never stopped (optimizer state, schedule, data order, RNG); --force starts a new
attempt (<stamp>-a2, ...) and keeps the old one.
"""

from __future__ import annotations

import sys

import olelo
from olelo import run


def parse_lab_args(argv):
    """(train.py's options, the mlx_lm.lora command after `--`)."""
    return run.parse_lab_args(argv, __doc__)


def main(argv=None):
    """One segment of a run (olelo/run.py: resolve the frozen spec, load, record, train, record)."""
    argv = sys.argv[1:] if argv is None else argv
    return run.life(["--help", "--"] if argv in (["-h"], ["--help"]) else argv, __doc__)


if __name__ == "__main__":
    olelo.run_main(main)
