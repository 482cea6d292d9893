"""Recompute every committed evaluation from its committed outputs and check its numbers.

    python scripts/rescore.py [--runs-dir runs] [SUMMARY.json ...]

For each summary.json (default: runs/*/eval*/summary.json and runs/baselines/*/summary.json)
that kept its outputs (outputs.jsonl.gz, sha256 checked) or is a no-model baselines table,
the scores are recomputed the way they were written (olelo/evaluation.py, the same bootstrap
samples and seed) from those outputs and the split's files (sha256 checked against the
record), and every number is compared exactly with the committed one (semantic similarity,
a float32 model's, within 1e-5). Summaries written
before outputs were kept are listed as not recomputable. Rescoring a sealed test's table
reads sealed.jsonl to recompute numbers already recorded, so it is not a new look. Exit status 1 when a number
differs or an evaluation cannot be checked (its data is missing: make data SPLIT=...).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import olelo
from olelo import evaluation
from olelo.summary_diff import count_numbers, differences


def _plain(x):
    return json.loads(json.dumps(x))


def inputs(summary_path: Path, summary: dict):
    """(test pairs, train pairs, model systems) of a summary, each file checked against its record."""
    test_file = Path(summary["test_data"])
    if "run" in summary:
        manifest = olelo.run_manifest(olelo.resolve_run(str(summary_path.parent.parent)))
        data_dir, train_sha = Path(manifest["data_dir"]), (manifest.get("data") or {}).get("train_sha256")
    else:
        data_dir, train_sha = Path(summary["data_dir"]), summary.get("train_sha256")
    for f, want in ((test_file, summary.get("test_sha256")), (data_dir / "train.jsonl", train_sha)):
        if not f.is_file():
            raise olelo.UserError(f"{f} is missing: build the split it was scored on (make data, "
                                  f"SPLIT=stories or SPLIT=paragraphs; a rag-k<K> folder: make data-rag "
                                  f"SPLIT=stories RAG_K=<K>; make rescore builds them all)")
        if want and olelo.sha256_file(f) != want:
            raise olelo.UserError(f"{f} is not the file this evaluation scored (sha256 differs)")
    systems = {}
    if "outputs" in summary:
        systems = {n: rows for n, rows in evaluation.read_outputs(summary_path.parent, summary["outputs"]).items()}
    if systems:  # the outputs name the test records they translate (LIMIT: the first N)
        test_records = evaluation.test_records(test_file, [r["id"] for r in next(iter(systems.values()))])
    else:
        test_records = olelo.read_jsonl(test_file)
    return (evaluation.pairs_of(test_records), evaluation.pairs_of(olelo.read_jsonl(data_dir / "train.jsonl")),
            {n: [r["hypothesis"] for r in rows] for n, rows in systems.items()})


def rescore(summary_path: Path) -> tuple[str, list[str], int]:
    """(status, problems, numbers checked): status 'ok', 'differs' or 'not recomputable'."""
    summary = olelo.read_json(summary_path, "evaluation summary")
    if "outputs" not in summary and "kind" not in summary:
        return "not recomputable", ["written before outputs were kept"], 0
    test, train, systems = inputs(summary_path, summary)
    from olelo import semsim

    semsim_ok = semsim.unavailable_reason() is None
    scored = evaluation.score_systems(test, train, systems, bootstrap=summary["bootstrap"]["samples"],
                                      seed=summary["bootstrap"]["seed"], semsim_ok=semsim_ok,
                                      progress=lambda m: print(f"  {m}", file=sys.stderr))
    committed_rows = {**summary.get("baselines", {}), **summary.get("checkpoints", {})}
    problems = differences(committed_rows, _plain(scored["rows"]), "rows")
    problems += differences(summary.get("reference_baselines"), _plain(scored["reference_baselines"]),
                            "reference_baselines")
    problems += differences(summary.get("reference"), _plain(scored["reference"]), "reference")
    checked = count_numbers(_plain(scored["rows"])) + count_numbers(_plain(scored["reference_baselines"]))
    return ("differs" if problems else "ok"), problems, checked


def default_summaries(runs_dir: Path) -> list[Path]:
    return sorted(runs_dir.glob("*/eval*/summary.json")) + sorted((runs_dir / "baselines").glob("*/summary.json"))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("summaries", nargs="*", type=Path, help="summary.json files (default: every committed one)")
    p.add_argument("--runs-dir", type=Path, default=Path("runs"))
    a = p.parse_args(argv)
    paths = a.summaries or default_summaries(a.runs_dir)
    if not paths:
        raise olelo.UserError(f"no summary.json under {a.runs_dir}: nothing to rescore")
    failed = 0
    for path in paths:
        print(f"{path}:", file=sys.stderr)
        try:
            status, problems, checked = rescore(path)
        except olelo.UserError as e:
            status, problems, checked = "cannot check", [str(e)], 0
        failed += status in ("differs", "cannot check")
        print(f"{path}: {status}" + (f" ({checked} numbers equal)" if status == "ok" else ""))
        for line in problems[:20]:
            print(f"  {line}")
    print(f"rescore: {len(paths)} summaries, {failed} differ or cannot be checked", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    olelo.run_main(main)
