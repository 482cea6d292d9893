"""`make demo` on the committed sample alone: a clone without ../shared/data must run
the whole demo (data from data/sample/, a LoRA run, its evaluation, the report).
The tiny model (6 layers: LAYERS=4) stands in for the real one to keep this fast; the real-model demo runs
in CI (.ci/run)."""

import json
import shutil

import pytest
from conftest import REPO


@pytest.mark.slow  # trains and evaluates (the demo): not in make test-fast
def test_demo_runs_on_the_committed_sample_alone(tmp_path, tiny_model, run_make):
    runs = tmp_path / "runs"
    # A copy: the demo's `<folder>/tiny-gemma3/config.json` rule may rebuild the model from
    # the sample text, which must not change the session's shared tiny model under other tests.
    model = tmp_path / "models" / "tiny-gemma3"
    shutil.copytree(tiny_model, model)
    r = run_make("demo", f"DATA_SRC={tmp_path / 'no-shared-data'}", f"DEMO_MODEL={model}",
                 "DEMO_ITERS=4", "DEMO_LIMIT=3", "LAYERS=4", f"DEMO_RUNS={runs}", f"DEMO_ADAPTERS={tmp_path / 'adapters'}")
    run = (runs / "latest").resolve()
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "finished" and manifest["model"] == str(model)
    # the sample's large set (42 pairs): its shortest training pairs, 4 validation pairs
    assert manifest["data_dir"] == "data/finetuning/sample/short-n64"
    counts = json.loads((REPO / manifest["data_dir"] / "manifest.json").read_text())["counts"]
    assert {s: c["records"] for s, c in counts.items()} == {"train": 34, "valid": 4, "test": 4}
    summary = (run / "eval-n3-mt40" / "summary.md").read_text()
    assert "base" in summary and "final" in summary
    assert (runs / "report" / "index.html").is_file()
    assert "demo done" in r.stdout
