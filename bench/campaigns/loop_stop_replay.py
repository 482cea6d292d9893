# Served NOTES.md: 2026-11-27 "Would stopping at the first loop fix TER?";
# 2026-12-07 "Does stopping at the first loop change the held-out scores?".
"""What would a loop stop have made of these translations? Cuts recorded greedy outputs where
the lab's loop test first fires, into the folder `make eval LOOP_STOP=1` would write.

    python bench/campaigns/loop_stop_replay.py runs/<stamp>/eval-mt256 [--ckpt best --ckpt final] \
        [--out runs/<stamp>/eval-mt256-loopstop]
    python scripts/eval_report.py --run runs/<stamp> --eval-dir runs/<stamp>/eval-mt256-loopstop --bootstrap 1000

For base/, each --ckpt's folder (default: final; repeat it for more) and base-completion/ when
the evaluation has its outputs, each hypothesis is cut by olelo.scores.cut_loop: at the first
word where some span of 1-10 words has occurred 3 times in a row (the loop rate's own
definition, fixed before any of this was scored), back to the end of that span's first copy.
The rule reads only the words generated so far, so a greedy decoder that stopped there would
have made exactly these outputs (tests/test_loop_stop.py: the live stop equals cut_loop of the
unstopped output): the replay measures such a stop without translating again. One exception:
a completion row keeps only its first line, and the live stop watches the whole completion, so
a loop that starts in the first line and closes on a later one is cut shorter live than here.

OUT (default: EVAL_DIR-loopstop, where `make eval LOOP_STOP=1` with the same MAX_TOKENS puts
its folder) gets each row's hyps.jsonl (local: it quotes the data), with loop_stopped on every
output as a live run writes it (true where the replay cut; a cut output's token count is
unknown, so tokens is null there), the row's ppl.json and prompt.json copied (the stop does not
change them), its decode.json with the loop stop's decoding record and a `replay` note, and
loop_stop.json (what was cut, from where, how to reproduce it). OUT is replaced whole, so a new
cut drops the old folder's scores; score OUT as any evaluation folder (eval_report.py, above).
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
from pathlib import Path

import olelo
from olelo.generate import decoding_record
from olelo.scores import LOOP_DEFINITION, cut_loop

COMPLETION = "base-completion"
SIDECARS = ("ppl.json", "prompt.json")  # what the stop does not change: copied as they are


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
    if any(r.get("loop_stopped") for r in rows):
        raise olelo.UserError(f"{src}: already decoded with the loop stop (rows say loop_stopped): replay the "
                              "outputs of an evaluation with the stop off")
    cut, before, after = 0, 0, 0
    for r in rows:
        text = cut_loop(r["hypothesis"])
        before, after = before + len(r["hypothesis"]), after + len(text)
        r["loop_stopped"] = text != r["hypothesis"]
        if r["loop_stopped"]:
            cut += 1
            r["hypothesis"], r["loop_cut"] = text, True
            r["tokens_before_cut"], r["tokens"] = r.get("tokens"), None
    olelo.atomic_write_jsonl(dst, rows)
    return {"outputs": len(rows), "cut": cut, "chars_before": before, "chars_after": after}


def replay_note(src: Path) -> str:
    return (f"not decoded again: the outputs of {src} (stop off), cut where the live stop would have stopped "
            f"(bench/campaigns/loop_stop_replay.py; loop_stop.json)")


def write_decode(src_row: Path, dst_row: Path, src: Path) -> None:
    """The row's decode.json (cap and reference lengths) with the loop stop's decoding record."""
    path = src_row / "decode.json"
    if not path.is_file():
        return
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as e:
        raise olelo.UserError(f"{path}: not JSON ({e}); translate.py writes it beside hyps.jsonl")
    decoding = record.get("decoding") or {}
    if decoding.get("loop_stop") or decoding.get("repetition_penalty") is not None:
        raise olelo.UserError(f"{path}: decoded with {decoding}; the replay needs plain greedy outputs (stop off)")
    olelo.atomic_write_json(dst_row / "decode.json",
                            {**record, "decoding": {**decoding_record(loop_stop=True), "replay": replay_note(src)}})


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("eval_dir", help="an evaluation folder with base/hyps.jsonl and CKPT/hyps.jsonl")
    p.add_argument("--ckpt", action="append",
                   help="a fine-tuned checkpoint's folder (default: final); repeat it: --ckpt best --ckpt final")
    p.add_argument("--out", help="folder to write (default: EVAL_DIR-loopstop)")
    a = p.parse_args(argv)
    src = Path(a.eval_dir)
    out = Path(a.out) if a.out else src.with_name(src.name + "-loopstop")
    if out.resolve() == src.resolve():
        raise olelo.UserError("--out is the evaluation folder itself: the cut outputs need their own folder")
    ckpts = list(dict.fromkeys(a.ckpt or ["final"]))
    for name in ckpts:
        if not name or name in ("base", COMPLETION) or "/" in name or name.startswith("."):
            raise olelo.UserError(f"--ckpt {name!r}: give a checkpoint folder of {src} (final, best, ckpt-0000400)")
    rows = ["base"] + ckpts + ([COMPLETION] if (src / COMPLETION / "hyps.jsonl").is_file() else [])
    for name in ["base"] + ckpts:
        if not (src / name / "hyps.jsonl").is_file():
            raise olelo.UserError(f"{src / name / 'hyps.jsonl'} not found (translated outputs stay on the machine "
                                  "that made them)")
    q = shlex.quote
    command = "python bench/campaigns/loop_stop_replay.py " + " ".join(
        [q(str(src))] + [f"--ckpt {q(c)}" for c in ckpts] + ([f"--out {q(str(out))}"] if a.out else []))
    summary = {"replay": replay_note(src), "rule": LOOP_DEFINITION + "; cut after the span's first copy",
               "from": str(src), "rows": rows,
               "reproduce": [command, f"python scripts/eval_report.py --run {q(str(src.parent))} --eval-dir "
                                      f"{q(str(out))} --bootstrap 1000"]}
    if COMPLETION in rows:
        summary["completion_note"] = ("base-completion's recorded output is its first line only; the live stop "
                                      "watches the whole completion, so a loop that starts in the first line and "
                                      "closes on a later one would be cut shorter live than here")
    with olelo.atomic_dir(out) as tmp:  # whole or not at all; a new cut drops the old folder's scores
        for name in rows:
            s = summary[name] = cut_file(src / name / "hyps.jsonl", tmp / name / "hyps.jsonl")
            write_decode(src / name, tmp / name, src)
            for extra in SIDECARS:
                if (src / name / extra).is_file():
                    shutil.copyfile(src / name / extra, tmp / name / extra)
            print(f"{name}: {s['cut']} of {s['outputs']} outputs cut, {s['chars_before']:,} -> "
                  f"{s['chars_after']:,} chars")
        olelo.atomic_write_json(tmp / "loop_stop.json", summary)
    return 0


if __name__ == "__main__":
    olelo.run_main(main)
