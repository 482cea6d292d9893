"""The runs table tells the lowest val loss apart from the checkpoint kept as best/."""

import json

from olelo import records


def test_best_is_the_recorded_choice_not_the_lowest_val_loss(tmp_path):
    run = tmp_path / "large-x-it300-s0"
    run.mkdir()
    (run / "manifest.json").write_text(json.dumps({
        "stamp": run.name, "status": "finished", "iters": 300, "git": {},
        "best": {"iteration": 0, "criterion": "val_chrf", "val_loss": 4.46, "val_chrf": 19.41}}))
    rows = [{"type": "val", "iteration": 0, "val_loss": 4.46, "val_chrf": 19.41},
            {"type": "train", "iteration": 10, "train_loss": 3.0, "tokens_per_second": 100.0, "peak_memory": 1.5},
            {"type": "val", "iteration": 299, "val_loss": 2.56, "val_chrf": 16.65}]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    row = records.run_row(run)
    assert (row["min_val_loss"], row["min_val_at"]) == ("2.5600", 299)
    assert row["best"] == "it 0 (val_chrf)"
