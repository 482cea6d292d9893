"""Write the "Memory guidelines" section of the generated results (RESULTS.md) from a mem-profile.

    .venv/bin/python scripts/memory_guidelines.py runs/mem-profile/<stamp> --notes RESULTS.md [--margin 0.2]
    .venv/bin/python scripts/memory_guidelines.py runs/mem-profile/<stamp>        # print the section
    .venv/bin/python scripts/memory_guidelines.py --model M --notes RESULTS.md    # newest profile of model M

Reads results.csv of a mem_profile.py run (and results.json beside it for the
command, environment and the dataset's longest sequence), fits peak memory as
olelo/memory.py does and, for each tier of available RAM the notes used (~100 GB,
~50 GB, <32 GB, 16 GB), gives the largest batch size with and without gradient
checkpointing whose predicted peak stays under the RAM less --margin, with the
measured points and the command behind the numbers.

The section replaces whatever is between the lines
    <!-- memory-guidelines:begin -->
    <!-- memory-guidelines:end -->
of --notes (written atomically; the same results give the same text, so a rerun
changes nothing). Without both markers the file is left alone and it is an error.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from olelo import memory
import olelo
from olelo.config import LOSSES, QUANTIZED_MATMULS
from olelo.defaults import DEFAULTS
from olelo.memory_guidelines import load_results, section


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("results", nargs="?", help="a mem-profile folder or its results.csv")
    p.add_argument("--model", help="instead of RESULTS: the newest profile of this model in --results-dir")
    p.add_argument("--results-dir", default="runs/mem-profile", help="for --model (default: %(default)s)")
    p.add_argument("--loss", choices=LOSSES, default=DEFAULTS["LOSS"],
                   help="for --model: the newest profile measured with this training loss (auto: chunked on a CPU, default on a GPU, as train.py; default: %(default)s)")
    p.add_argument("--memory-limit-gb", type=float,
                   help="for --model: the newest profile measured under this MEM_LIMIT (default: under MLX's own limit)")
    p.add_argument("--quantized-matmul", choices=QUANTIZED_MATMULS, default=DEFAULTS["QMATMUL"],
                   help="for --model: the newest profile measured with this QMATMUL (auto: dense on CUDA, as "
                        "train.py; default: %(default)s)")
    p.add_argument("--notes", help="markdown file to write the section into (default: print it)")
    p.add_argument("--margin", type=float, default=0.2,
                   help="fraction of available RAM kept free (default: %(default)s)")
    a = p.parse_args(argv)
    from olelo.lean_loss import resolve
    a.loss = resolve(a.loss)  # auto: as train.py on this machine
    from olelo import dequant
    a.quantized_matmul = dequant.resolve(a.quantized_matmul)
    return a


def main(argv=None) -> int:
    a = parse_args(argv)
    if bool(a.results) == bool(a.model):
        raise olelo.UserError("give a results folder or --model (not both)")
    if a.model:
        profile = memory.newest_profile(a.results_dir, a.model, a.loss, a.memory_limit_gb, a.quantized_matmul)
        if not profile:
            limit = "" if a.memory_limit_gb is None else f" under --memory-limit-gb {a.memory_limit_gb:g}"
            raise olelo.UserError(f"no mem-profile results for {memory.model_name(a.model)} with --loss {a.loss}"
                                  f"{limit} and --quantized-matmul {a.quantized_matmul} in {a.results_dir}")
        a.results = str(Path(profile["path"]).parent)
    rows, meta = load_results(a.results)
    if not [r for r in rows if r["status"] == "ok"]:
        raise olelo.UserError(f"{a.results}: no point finished; nothing to fit")
    text = section(rows, meta, a.margin, meta["source"])
    if not a.notes:
        print(text)
        return 0
    notes = Path(a.notes)
    if not notes.is_file():
        raise olelo.UserError(f"{notes}: no such file")
    old = notes.read_text(encoding="utf-8")
    new = olelo.notes.replace_section(old, text, str(notes))
    if new != old:
        olelo.atomic_write_text(notes, new)
    print(f"{notes}: memory guidelines {'updated' if new != old else 'unchanged'} from {meta['stamp']}")
    return 0


if __name__ == "__main__":
    olelo.run_main(main)
