"""Rebuild the generated tables of NOTES.md from the run folders.

    python scripts/notes_tables.py --notes NOTES.md [--runs-dir runs]

Two tables, each between its markers (everything between them is replaced;
nothing outside is touched):
  <!-- runs:begin --> ... <!-- runs:end -->        every run (scripts/runs_table.py)
  <!-- results:begin --> ... <!-- results:end -->  every evaluated run: base vs its
      best checkpoint by chrF++, with p-values from the paired bootstrap
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import olelo
import runs_table


def replace_between(text: str, name: str, body: str, path) -> str:
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    if text.count(begin) != 1 or text.count(end) != 1 or text.index(begin) > text.index(end):
        raise olelo.UserError(f"{path}: needs exactly one '{begin}' followed by one '{end}'")
    pattern = re.compile(re.escape(begin) + ".*?" + re.escape(end), re.S)
    return pattern.sub(lambda _: f"{begin}\n{body}{end}", text)


def results_table(runs_dir: Path) -> str:
    lines = ["| run | eval | n | checkpoint (iter) | BLEU | chrF++ | TER | semsim | Δ chrF++ vs base (p) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for summary_path in sorted(runs_dir.glob("*/eval*/summary.json")):
        if summary_path.parent.parent.is_symlink():  # runs/latest
            continue
        s = json.loads(summary_path.read_text())
        ckpts = s["checkpoints"]
        tuned = {n: c for n, c in ckpts.items() if n != "base"}
        if not tuned:
            continue
        name = max(tuned, key=lambda n: tuned[n]["chrf"])
        for label, c in (("base", ckpts["base"]), (name, tuned[name])):
            vs = c.get("vs_base", {}).get("metrics", {}).get("chrf")
            delta = f"{vs['delta']:+.2f} (p={vs['p_value']:.3f})" if vs else ""
            semsim = f"{c['semsim']:.3f}" if c.get("semsim") is not None else "–"
            lines.append(f"| {s['run']} | {summary_path.parent.name} | {c['n']} | {label} ({c['iteration']}) | "
                         f"{c['bleu']:.2f} | {c['chrf']:.2f} | {c['ter']:.2f} | {semsim} | {delta} |")
    return "\n".join(lines) + "\n"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--notes", default="NOTES.md")
    p.add_argument("--runs-dir", default="runs")
    a = p.parse_args()
    path, runs_dir = Path(a.notes), Path(a.runs_dir)
    if not path.is_file():
        raise olelo.UserError(f"{path}: no such file")
    text = path.read_text(encoding="utf-8")
    text = replace_between(text, "runs", runs_table.markdown(runs_table.rows(runs_dir)), path)
    text = replace_between(text, "results", results_table(runs_dir), path)
    olelo.atomic_write_text(path, text)
    print(f"{path}: tables rebuilt from {runs_dir}/")
    return 0


if __name__ == "__main__":
    olelo.run_main(main)
