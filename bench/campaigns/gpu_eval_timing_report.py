# Served NOTES.md: 2026-12-07 (GPU) "How long does `make eval` take on CUDA, and do the greedy translations depend on the batch?".
"""What bench/campaigns/gpu_eval_timing.sh measured on the lent GPU, as one result file.

    python bench/campaigns/gpu_eval_timing_report.py FETCHED --run runs/<stamp> \
        --json bench/results/gpu_eval_timing.json

FETCHED is the unpacked gpu_eval_timing.tgz (root/lab/eval_timing.tsv and eval-*.log, and
runs/<stamp>/eval-mt256{,-loopstop}/ with hyps.jsonl and summary.json). Reads the wall time of
each `make eval` case, each translation's time from its log, the scores of base and best/ with
the stop off and on, and compares outputs: the live loop stop against the replay of the
stop-off outputs (olelo.scores.cut_loop), and these stop-off outputs against the run's committed
evaluation (translated in the campaign at another EVAL_BATCH; its hyps.jsonl are local files).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import olelo
from olelo import header
from olelo.scores import cut_loop

COLUMNS = ("chrf", "bleu", "ter", "loop_rate", "length_ratio")


def hyps(folder: Path, row: str) -> list[str]:
    return [r["hypothesis"] for r in olelo.read_jsonl(folder / row / "hyps.jsonl")]


def scores(summary: Path) -> dict:
    d = json.loads(summary.read_text())
    rows = {**d.get("baselines", {}), **d.get("checkpoints", {})}
    return {n: {k: rows[n].get(k) for k in COLUMNS} for n in ("base", "best")}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("fetched", type=Path)
    p.add_argument("--run", type=Path, required=True, help="the run's committed folder here (runs/<stamp>)")
    p.add_argument("--json", type=Path, required=True)
    a = p.parse_args()
    lab, there = a.fetched / "root" / "lab", a.fetched / "runs" / a.run.name
    cases = {}
    for line in (lab / "eval_timing.tsv").read_text().splitlines():
        name, ms, rc = line.split("\t")
        log = (lab / f"eval-{name}.log").read_text().replace("\r", "\n")
        steps = {m.group(1): float(m.group(2)) for m in re.finditer(
            r"/\.?([a-z-]+?)(?:\.tmp)?/hyps\.jsonl: \d+ sentences in ([\d.]+) s", log)}
        cases[name] = {"wall_s": int(ms.split()[0]) / 1000, "rc": rc, "translation_s": steps}
    off, on = there / "eval-mt256", there / "eval-mt256-loopstop"
    compared = {}
    for row in ("base", "best"):
        a_off, a_on, here = hyps(off, row), hyps(on, row), hyps(a.run / "eval-mt256", row)
        compared[row] = {
            "sentences": len(a_off),
            "live_stop_equals_replay": sum(cut_loop(x) == y for x, y in zip(a_off, a_on)),
            "live_differs_where_replay_keeps_whole": sum(cut_loop(x) != y and cut_loop(x) == x
                                                         for x, y in zip(a_off, a_on)),
            "stop_off_identical_to_committed": sum(x == y for x, y in zip(a_off, here)),
        }
    body = {"run": a.run.name, "cases": cases, "scores_stop_off": scores(off / "summary.json"),
            "scores_stop_on": scores(on / "summary.json"),
            "scores_committed": scores(a.run / "eval-mt256" / "summary.json"), "outputs": compared}
    reproduce = f"python bench/campaigns/gpu_eval_timing_report.py FETCHED --run {a.run} --json {a.json}"
    header.write(a.json, header.start(reproduce), body)
    print(json.dumps(body, indent=1))


if __name__ == "__main__":
    olelo.run_main(main)
