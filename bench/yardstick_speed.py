"""Seconds olelo.yardstick's all-pairs sentence chrF++ takes on the real data: the test set's
references against themselves shuffled (283 x 283, what own_reference runs), and the
translation-memory baseline (283 test sources x the training sources).

    .venv/bin/python bench/yardstick_speed.py [--data data/finetuning/large] [--repeat 3] \
        [--json PATH]

Each timing is the wall time of one whole call, repeated; the best and the median are
printed (the CPU may be shared: the header records the load). Targets on a 2-core CPU:
283 x 283 under 3 s, 283 x 2,293 under 20 s. sacrebleu itself takes about 1 ms a pair.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

from olelo import header
import olelo
from olelo import yardstick

TARGETS_S = {"pairwise_chrf": 3.0, "translation_memory": 20.0}


def pairs(path: Path) -> list[tuple[str, str]]:
    if not path.is_file():
        raise olelo.UserError(f"{path}: no such file (make data builds data/finetuning/large)")
    return [olelo.record_source_target(r) for r in olelo.read_jsonl(path)]


def timed(fn, repeat: int) -> list[float]:
    seconds = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        seconds.append(time.perf_counter() - start)
    return seconds


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="data/finetuning/large", help="split folder with test.jsonl and train.jsonl")
    p.add_argument("--repeat", type=int, default=3, help="timed calls of each (default 3)")
    p.add_argument("--seed", type=int, default=0, help="seed of the shuffle of the references (default 0)")
    p.add_argument("--json", help="also write the timings here, with the bench header")
    args = p.parse_args(argv)
    if args.repeat < 1:
        raise olelo.UserError(f"--repeat {args.repeat}: give 1 or more")

    command = f".venv/bin/python bench/yardstick_speed.py --data {args.data} --repeat {args.repeat}"
    head = header.start(command + (f" --json {args.json}" if args.json else ""))
    test, train = pairs(Path(args.data) / "test.jsonl"), pairs(Path(args.data) / "train.jsonl")
    refs = [r for _, r in test]
    shuffled = [refs[i] for i in np.random.default_rng(args.seed).permutation(len(refs))]
    test_sources = [s for s, _ in test]
    train_sources, train_targets = [s for s, _ in train], [t for _, t in train]

    runs = {
        "pairwise_chrf": (f"{len(refs)} x {len(refs)}", lambda: yardstick.pairwise_chrf(shuffled, refs)),
        "translation_memory": (f"{len(test)} x {len(train)}",
                               lambda: yardstick.translation_memory(test_sources, train_sources, train_targets)),
    }
    results = {}
    for name, (shape, fn) in runs.items():
        seconds = timed(fn, args.repeat)
        best, median = min(seconds), statistics.median(seconds)
        results[name] = {"pairs": shape, "seconds": [round(s, 3) for s in seconds], "best_s": round(best, 3),
                         "median_s": round(median, 3), "target_s": TARGETS_S[name],
                         "within_target": median < TARGETS_S[name]}
        print(f"{name:19} {shape:>11}: best {best:.2f} s, median {median:.2f} s "
              f"(target {TARGETS_S[name]:.0f} s; {args.repeat} calls)")
    if args.json:
        header.write(args.json, head, {"what": "wall seconds of olelo.yardstick's all-pairs sentence chrF++",
                                       "data": args.data, "results": results})
    return 0


if __name__ == "__main__":
    olelo.run_main(main)
