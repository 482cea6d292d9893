"""Score the reference baselines of a split with no model at all: what a test set gives away.

    python scripts/baselines.py --data data/finetuning/stories/large [--sealed] [--out DIR]

On the split's test.jsonl (the sealed.jsonl with --sealed, a look the ledger records), scores
copy-source, translation memory, length-matched in-domain text and an empty output exactly as
`make eval` scores them (olelo/evaluation.py), with the adequacy probes, and writes
OUT/summary.json and summary.md (default OUT: runs/baselines/<split>-<dataset>[-sealed]).
No output text is written: the baselines' choices are recorded as training-pair ids, which
`make rescore` replays. The split's within-story share (held-out pairs with a training pair
next to them in the source file) is quoted from its manifest.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import olelo
from olelo.defaults import DEFAULTS
from olelo import evaluation, ledger, yardstick
from olelo.identity import dataset_label


def default_out(data_dir: Path, sealed: bool, runs_dir: Path) -> Path:
    return runs_dir / "baselines" / (dataset_label(data_dir) + ("-sealed" if sealed else ""))


def split_facts(data_dir: Path) -> dict:
    manifest = data_dir / "manifest.json"
    m = olelo.read_json(manifest, "split manifest") if manifest.is_file() else {}
    return {"by": m.get("split", "paragraphs"), "within_story": m.get("within_story"),
            "counts": m.get("counts")}


def summarize(data_dir: Path, sealed: bool, bootstrap: int, seed: int) -> dict:
    split = "sealed" if sealed else "test"
    test_file, train_file = data_dir / f"{split}.jsonl", data_dir / "train.jsonl"
    for f in (test_file, train_file):
        if not f.is_file():
            raise olelo.UserError(f"{f}: no such file; build the split first (make data"
                                  f"{' SPLIT=stories' if sealed else ''})")
    test = evaluation.pairs_of(olelo.read_jsonl(test_file))
    train = evaluation.pairs_of(olelo.read_jsonl(train_file))
    from olelo import semsim

    scored = evaluation.score_systems(test, train, {}, bootstrap=bootstrap, seed=seed,
                                      semsim_ok=semsim.unavailable_reason() is None,
                                      progress=lambda m: print(m, file=sys.stderr))
    rows = {n: {k: v for k, v in r.items() if k != "chrf_sentences"} for n, r in scored["rows"].items()}
    return {"kind": "reference baselines (no model)", "data_dir": str(data_dir), "test_data": str(test_file),
            "test_set": split, "test_sha256": olelo.sha256_file(test_file),
            "train_sha256": olelo.sha256_file(train_file), "split": split_facts(data_dir),
            "bootstrap": {"samples": bootstrap, "seed": seed}, "definitions": evaluation.DEFINITIONS,
            "reference": scored["reference"], "reference_baselines": scored["reference_baselines"],
            "semsim_unavailable": semsim.unavailable_reason(), "baselines": rows}


def markdown(summary: dict) -> str:
    within = (summary["split"].get("within_story") or {}).get(summary["test_set"])
    share = (f"{within['with_train_neighbour']} of {within['pairs']} ({100 * within['share']:.1f} %)"
             if within else "not recorded")
    lines = [f"# Reference baselines: {summary['test_data']}", "",
             f"Split by {summary['split']['by']}; {summary['baselines']['empty']['n']} test pairs; "
             f"with a training pair next to them in the source file: {share}."]
    if "sealed_looks" in summary:
        lines.append(f"Sealed test: look {summary['sealed_looks']} (runs/{ledger.LEDGER_NAME}).")
    lines += [""] + evaluation.rows_markdown(summary, list(summary["baselines"]))
    lm = summary["reference_baselines"]["length-matched"]
    lines += ["", f"length-matched over {len(lm['draws'])} draws: chrF++ {lm['chrf_mean']:.2f} ± {lm['chrf_sd']:.2f} "
              f"(sd); translation memory: mean similarity {summary['reference_baselines']['translation-memory']['mean_similarity']:.2f} "
              f"({yardstick.TM_SIMILARITY})."]
    lines += [""] + [f"- {k}: {v}" for k, v in summary["definitions"].items()]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, type=Path, help="a split folder (train.jsonl and test.jsonl)")
    p.add_argument("--sealed", action="store_true", help="score its sealed.jsonl: one look, recorded in the ledger")
    p.add_argument("--out", type=Path, help="where summary.json/.md go (default: runs/baselines/<label>)")
    p.add_argument("--runs-dir", type=Path, default=Path("runs"), help="where the ledger is (default: runs)")
    p.add_argument("--bootstrap", type=int, default=DEFAULTS["BOOTSTRAP"], help="bootstrap resamples (default: %(default)s)")
    p.add_argument("--seed", type=int, default=12345, help="bootstrap seed (default: %(default)s)")
    a = p.parse_args(argv)
    if a.bootstrap < 1 or a.seed < 1:
        raise olelo.UserError(f"--bootstrap {a.bootstrap} / --seed {a.seed}: both must be whole numbers >= 1")
    out = a.out or default_out(a.data, a.sealed, a.runs_dir)
    summary = summarize(a.data, a.sealed, a.bootstrap, a.seed)
    if a.sealed:
        summary["sealed_looks"] = ledger.record_look(
            a.runs_dir, f"baselines:{dataset_label(a.data)}", str(out), evaluation.REFERENCE_BASELINES,
            summary["test_data"], summary["test_sha256"])
    olelo.atomic_write_text(out / "summary.md", markdown(summary))
    olelo.atomic_write_json(out / "summary.json", summary)
    sys.stdout.write(markdown(summary))
    print(f"wrote {out}/summary.json, summary.md", file=sys.stderr)
    return 0


if __name__ == "__main__":
    olelo.run_main(main)
