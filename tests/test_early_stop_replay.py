"""bench/campaigns/early_stop_replay.py: a replay stops where the trainer's Recorder stops."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from olelo.records import EarlyStop, Recorder, replay_early_stop

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "bench/campaigns/early_stop_replay.py"

# A first-epoch dip in chrF++ (the looping phase) while the loss falls, then a plateau.
CHRF = [15.7, 13.6, 13.3, 17.6, 20.4, 20.1, 19.0, 20.3]
LOSS = [4.46, 2.82, 2.52, 2.47, 2.46, 2.48, 2.45, 2.50]
VALS = [{"iteration": 150 * i, "val_loss": l, "val_chrf": c, "val_time": 1.0} for i, (c, l) in enumerate(zip(CHRF, LOSS))]


def trainer_stop(tmp_path, select, patience):
    """Where olelo.records.Recorder (the trainer's callback) raises EarlyStop on VALS."""
    rec = Recorder(None, tmp_path / "run", tmp_path / "adapters", patience, select, writer=False)
    for v in VALS:
        try:
            rec.on_val_loss_report(v)
        except EarlyStop as stop:
            return stop.args[0], rec.best["iteration"]
    return None, rec.best["iteration"]


@pytest.mark.parametrize("select", ["val_chrf", "val_loss"])
@pytest.mark.parametrize("patience", [1, 2, 3, 4])
def test_replay_stops_where_the_trainer_stops(tmp_path, select, patience):
    r = replay_early_stop(VALS, select, patience)
    assert (r["stop"], r["best"]) == trainer_stop(tmp_path, select, patience)


def test_known_stops():
    assert replay_early_stop(VALS, "val_chrf", 2) == {"stop": 300, "best": 0, "best_value": 15.7}
    assert replay_early_stop(VALS, "val_chrf", 3)["stop"] == 1050  # 20.4 at 600, then 750, 900, 1050 lower
    assert replay_early_stop(VALS, "val_loss", 2) == {"stop": None, "best": 900, "best_value": 2.45}


def test_cli_writes_json_and_refuses_a_folder_without_metrics(tmp_path):
    run = tmp_path / "runs" / "a b's run"
    run.mkdir(parents=True)
    rows = [{"type": "train", "iteration": 1050 + 10, "train_loss": 2.0}] + [{"type": "val", **v} for v in VALS]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "replay.json"
    p = subprocess.run([sys.executable, str(SCRIPT), str(run), "--patience", "2", "--out", str(out)],
                       capture_output=True, text=True, cwd=REPO)
    assert p.returncode == 0, p.stderr
    assert "val_chrf PATIENCE=2: stops at 300 (saves 760)" in p.stdout
    got = json.loads(out.read_text())["runs"]["a b's run"]
    assert got["iterations"] == 1060 and [r["patience"] for r in got["replays"]] == [2, 2]
    bad = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path)], capture_output=True, text=True, cwd=REPO)
    assert bad.returncode == 2 and "no metrics.jsonl" in bad.stderr
    bad = subprocess.run([sys.executable, str(SCRIPT), str(run), "--patience", "0"], capture_output=True, text=True,
                         cwd=REPO)
    assert bad.returncode == 2 and "at least 1" in bad.stderr
