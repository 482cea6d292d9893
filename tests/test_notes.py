"""RESULTS.md (make notes): the commit column says when the code of a run is unknown
or was uncommitted; the tiny stand-in's numbers sit in their own section; the
post-hoc "top on test" checkpoint is named as such; every committed run record
names a commit that exists here, or says it does not."""

import json
import subprocess
from pathlib import Path

import pytest

import olelo
from conftest import script
from olelo import records
from olelo import results_tables

REPO = Path(__file__).resolve().parents[1]
HEAD = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
MISSING = "0123456789abcdef0123456789abcdef01234567"


def make_run(runs: Path, stamp: str, model: str, git: dict, evaluation: dict | None = None):
    run = runs / stamp
    olelo.atomic_write_json(run / "manifest.json", {"stamp": stamp, "status": "finished", "iters": 80,
                                                    "model": model, "git": git})
    (run / "metrics.jsonl").write_text(json.dumps({"type": "val", "iteration": 0, "val_loss": 2.5}) + "\n")
    if evaluation:
        olelo.atomic_write_json(run / "eval-n4" / "summary.json", {"run": stamp, "checkpoints": evaluation})


def ckpt(iteration, chrf, delta=None, p=None):
    c = {"n": 4, "iteration": iteration, "bleu": 1.0, "chrf": chrf, "ter": 90.0, "semsim": 0.5}
    if delta is not None:
        c["vs_base"] = {"metrics": {"chrf": {"delta": delta, "p_value": p}}}
    return c


@pytest.mark.parametrize("git,label", [
    ({"commit": HEAD, "dirty": False}, HEAD[:8]),
    ({"commit": HEAD, "dirty": True}, f"{HEAD[:8]} + uncommitted changes"),
    ({"commit": MISSING, "dirty": False}, "unknown (recorded 01234567, not in this repository)"),
    ({"commit": None, "recorded_commit": MISSING, "dirty": True, "note": "why"},
     "unknown (recorded 01234567, not in this repository) + uncommitted changes"),
    ({}, "unknown (not recorded)"),
])
def test_commit_label_never_claims_more_than_the_record(git, label):
    assert records.commit_label(git) == label


def test_results_separate_the_stand_in_and_name_the_post_hoc_view(tmp_path):
    runs = tmp_path / "runs"
    evaluation = {"base": ckpt(0, 10.0), "best": ckpt(40, 12.0, 2.0, 0.03), "final": ckpt(80, 11.0, 1.0, 0.2),
                  "ckpt-0000060": ckpt(60, 14.0, 4.0, 0.001)}
    make_run(runs, "large-gemma-3-270m-it80", "models/gemma-3-270m", {"commit": HEAD, "dirty": False}, evaluation)
    make_run(runs, "small-tiny-gemma3-it4", "models/tiny-gemma3", {"commit": MISSING, "dirty": True})
    text = results_tables.build(runs)
    real, tiny = text.split("## Tiny random-weight model")
    assert "large-gemma-3-270m-it80" in real and "tiny-gemma3" not in real.split("## Real models")[1]
    assert "small-tiny-gemma3-it4" in tiny and "large-gemma-3-270m" not in tiny
    assert "unknown (recorded 01234567, not in this repository) + uncommitted changes" in tiny
    rows = [line for line in real.splitlines() if line.startswith("| large-gemma-3-270m-it80 | eval-n4")]
    assert [r.split(" | ")[3] for r in rows] == ["base", "best (chosen on validation)",
                                                  "ckpt-0000060: top chrF++ on test (post hoc)"]
    assert "+2.00 (p=0.030)" in rows[1] and "+4.00 (p=0.001)" in rows[2]
    assert "post-hoc view" in real


def notes_tables(*args):
    """scripts/notes_tables.py run as `make notes` runs it: (exit status, its output)."""
    out = script("notes_tables.py", *args)
    return out.returncode, out.stdout + out.stderr


def test_rebuild_keeps_the_memory_guidelines_and_is_idempotent(tmp_path):
    runs = tmp_path / "runs"
    make_run(runs, "small-tiny-gemma3-it4", "models/tiny-gemma3", {"commit": HEAD, "dirty": False})
    out = tmp_path / "RESULTS.md"
    assert notes_tables("--out", out, "--runs-dir", runs)[0] == 0
    first = out.read_text()
    assert "<!-- memory-guidelines:begin -->" in first and "No profile yet" in first
    guidelines = "<!-- memory-guidelines:begin -->\n## Memory guidelines: measured\n<!-- memory-guidelines:end -->"
    out.write_text(first.replace(first[first.index("<!-- memory-guidelines:begin -->"):
                                      first.index("<!-- memory-guidelines:end -->") + 30], guidelines))
    assert notes_tables("--out", out, "--runs-dir", runs)[0] == 0
    assert guidelines in out.read_text()
    status, output = notes_tables("--out", out, "--runs-dir", runs)
    assert status == 0
    assert "unchanged" in output.splitlines()[-1]


def test_memory_guidelines_sit_with_the_model_they_were_measured_on(tmp_path):
    runs = tmp_path / "runs"
    make_run(runs, "small-tiny-gemma3-it4", "models/tiny-gemma3", {"commit": HEAD, "dirty": False})
    for heading, real in (("## Memory guidelines: `gemma-3-270m-f32`", True),
                          ("## Memory guidelines: `tiny-gemma3`, a random-weight stand-in (not for a real model)", False)):
        old = f"<!-- memory-guidelines:begin -->\n{heading}\n\nbody\n<!-- memory-guidelines:end -->"
        real_part, tiny_part = results_tables.build(runs, old).split("## Tiny random-weight model")
        assert (heading in real_part, heading in tiny_part) == (real, not real)


def test_missing_runs_folder_is_a_clear_error(tmp_path):
    status, output = notes_tables("--out", tmp_path / "R.md", "--runs-dir", tmp_path / "nope")
    assert status == 2 and "error: " in output and "no such folder" in output  # a UserError


def test_every_committed_run_names_a_commit_that_exists_or_says_why_not():
    shallow = subprocess.run(["git", "rev-parse", "--is-shallow-repository"], cwd=REPO, capture_output=True,
                             text=True).stdout.strip()
    if shallow == "true":
        pytest.skip("a shallow clone lacks old commits")
    tracked = subprocess.run(["git", "ls-files", "runs/*/manifest.json"], cwd=REPO, capture_output=True,
                             text=True).stdout.split()
    assert tracked
    for path in tracked:
        git = json.loads((REPO / path).read_text()).get("git") or {}
        if git.get("commit"):
            assert records.commit_exists(git["commit"]), f"{path}: commit {git['commit']} is not in the repository"
        else:
            assert git.get("note"), f"{path}: no commit and no note saying why"


def test_committed_results_are_what_make_notes_writes():
    # RESULTS.md is generated: the committed file equals a rebuild from the committed runs.
    tracked = set(subprocess.run(["git", "ls-files", "runs/*/manifest.json"], cwd=REPO, capture_output=True,
                                 text=True).stdout.split())
    local = {str(p.relative_to(REPO)) for p in (REPO / "runs").glob("*/manifest.json") if not p.parent.is_symlink()}
    if local - tracked:
        pytest.skip(f"runs/ has records that are not committed: {sorted(local - tracked)}")
    text = (REPO / "RESULTS.md").read_text()
    assert results_tables.build(REPO / "runs", text) == text
