# Served NOTES.md: 2026-11-27 "Would stopping at the first loop fix TER?".
"""What would a loop stop have made of these translations? Cuts recorded greedy outputs where
the lab's loop test first fires.

    python bench/campaigns/loop_stop_replay.py runs/<stamp>/eval-mt256 [--ckpt final] \
        [--out runs/<stamp>/eval-mt256-loopstop]

For base/ and CKPT/ of an evaluation folder, each hypothesis is cut by
olelo.scores.cut_loop: at the first word where some span of 1-10 words has occurred 3
times in a row (the loop rate's own definition, fixed before any of this was scored),
back to the end of that span's first copy. The rule reads only the words generated so
far, so a greedy decoder that stopped there would have made exactly these outputs: the
replay measures such a stop without translating again. Writes OUT/base/hyps.jsonl and
OUT/CKPT/hyps.jsonl (local files: they quote the data) and OUT/loop_stop.json (what was
cut), replacing OUT whole; score OUT with score_campaign_outputs.py as any evaluation folder.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import olelo
from olelo.scores import LOOP_DEFINITION, cut_loop


def cut_file(src: Path, dst: Path) -> dict:
    rows = []
    with open(src, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise olelo.UserError(f"{src}:{n}: not JSON ({e.msg}); is this a translate.py hyps.jsonl?")
    if any("hypothesis" not in r for r in rows):
        raise olelo.UserError(f"{src}: rows without 'hypothesis'; is this a translate.py hyps.jsonl?")
    cut, before, after = 0, 0, 0
    for r in rows:
        text = cut_loop(r["hypothesis"])
        before, after = before + len(r["hypothesis"]), after + len(text)
        if text != r["hypothesis"]:
            cut += 1
            r["hypothesis"], r["loop_cut"] = text, True
    olelo.atomic_write_jsonl(dst, rows)
    return {"outputs": len(rows), "cut": cut, "chars_before": before, "chars_after": after}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("eval_dir", help="an evaluation folder with base/hyps.jsonl and CKPT/hyps.jsonl")
    p.add_argument("--ckpt", default="final", help="the fine-tuned checkpoint's folder (default: final)")
    p.add_argument("--out", help="folder to write (default: EVAL_DIR-loopstop)")
    a = p.parse_args(argv)
    src = Path(a.eval_dir)
    out = Path(a.out) if a.out else src.with_name(src.name + "-loopstop")
    if out.resolve() == src.resolve():
        raise olelo.UserError("--out is the evaluation folder itself: the cut outputs need their own folder")
    for name in ("base", a.ckpt):
        if not (src / name / "hyps.jsonl").is_file():
            raise olelo.UserError(f"{src / name / 'hyps.jsonl'} not found (translated outputs stay on the machine "
                                  "that made them)")
    summary = {"rule": LOOP_DEFINITION + "; cut after the span's first copy", "from": str(src)}
    with olelo.atomic_dir(out) as tmp:  # whole or not at all; a new cut drops the old folder's scores
        for name in ("base", a.ckpt):
            s = summary[name] = cut_file(src / name / "hyps.jsonl", tmp / name / "hyps.jsonl")
            print(f"{name}: {s['cut']} of {s['outputs']} outputs cut, {s['chars_before']:,} -> "
                  f"{s['chars_after']:,} chars")
        olelo.atomic_write_json(tmp / "loop_stop.json", summary)
    return 0


if __name__ == "__main__":
    olelo.run_main(main)
