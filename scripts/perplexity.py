"""Test loss and perplexity of a run's checkpoint, by the notes' own command.

    python scripts/perplexity.py --run runs/<stamp> --ckpt best -o ppl.json

It runs `mlx_lm.lora --model M --adapter-path A --data D --test` (for the base
model `--adapter-path ""`, which mlx-lm reads as "no adapter") with
`--batch-size 1 --test-batches -1` added, so that every test pair counts (mlx-lm
otherwise drops the last partial batch of 4 and stops at 500), shows its output,
and records the command, test loss and ppl as JSON. The one line read from the
output, "Test loss X, Test ppl Y.", is pinned by a test against mlx-lm 0.32.2.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import sys
from pathlib import Path

import olelo
from olelo.evaluation import parse_test_loss
from olelo.generate import run_eval_inputs

def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", required=True)
    p.add_argument("--ckpt", default="final")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--limit", type=int, help="only the first N test records (as translate.py --limit)")
    p.add_argument("--sealed", action="store_true", help="the run's SEALED test set (make eval SEALED=1)")
    a = p.parse_args()
    if a.limit is not None and a.limit < 1:
        raise olelo.UserError(f"--limit (LIMIT)={a.limit}: must be a whole number >= 1")
    model, test_file, adapter = run_eval_inputs(a.run, a.ckpt, "sealed" if a.sealed else "test")
    with tempfile.TemporaryDirectory(prefix="olelo-sealed-") as tmp:
        if a.sealed:
            # mlx-lm reads <folder>/test.jsonl; a copy in a temporary folder leaves no sealed text behind.
            olelo.atomic_write_jsonl(Path(tmp) / "test.jsonl", olelo.read_jsonl(test_file)[: a.limit])
            test_file = str(Path(tmp) / "test.jsonl")
        return measure(a, model, test_file, adapter)


def measure(a, model: str, test_file: str, adapter) -> int:
    if a.limit and not a.sealed:
        # Beside the checkpoint folders (eval*/test-first-N/), shared by all of them.
        subset = Path(a.output).resolve().parent.parent / f"test-first-{a.limit}" / "test.jsonl"
        olelo.atomic_write_jsonl(subset, olelo.read_jsonl(test_file)[: a.limit])
        test_file = str(subset)
    cmd = ["mlx_lm.lora", "--model", model, "--adapter-path", adapter or "", "--data", str(Path(test_file).parent), "--test",
           "--batch-size", "1", "--test-batches", "-1"]
    # The console script of this venv, the same program as on the notes' PATH; where
    # the packages are installed without scripts (e.g. pip --target), its module.
    exe = Path(sys.executable).with_name("mlx_lm.lora")
    exe = [str(exe)] if exe.is_file() else [sys.executable, "-m", "mlx_lm", "lora"]
    proc = subprocess.run(exe + cmd[1:], capture_output=True, text=True)
    sys.stderr.write(proc.stdout[-2000:] + proc.stderr[-2000:])
    if proc.returncode != 0:
        raise olelo.UserError(f"{' '.join(cmd)} failed with exit status {proc.returncode}")
    loss, ppl = parse_test_loss(proc.stdout + proc.stderr)
    olelo.atomic_write_json(a.output, {"command": cmd, "test_loss": loss, "test_ppl": ppl})
    print(f"{a.ckpt}: test loss {loss:.4f}, ppl {ppl:.2f}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    olelo.run_main(main)
