"""DATA=mix (scripts/mix_data.py) and LR_SCHEDULE (train.run_config)."""

import json
import subprocess
import sys
import types
from pathlib import Path

import olelo
from olelo.config import run_config

REPO = Path(__file__).resolve().parents[1]


def run(*args):
    return subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True)


def test_mix_repeats_the_small_train_set_and_keeps_the_common_test(tmp_path):
    out = run("scripts/convert_fornander.py", "data/sample/sample_pairs.csv", "-o", str(tmp_path / "l.jsonl"))
    assert out.returncode == 0, out.stderr
    out = run("scripts/convert_fornander.py", "data/sample/sample_small_pairs.csv", "-o", str(tmp_path / "s.jsonl"))
    assert out.returncode == 0, out.stderr
    splits = tmp_path / "splits"
    out = run("scripts/split.py", "--out", str(splits), f"large={tmp_path / 'l.jsonl'}", f"small={tmp_path / 's.jsonl'}")
    assert out.returncode == 0, out.stderr
    out = run("scripts/mix_data.py", "--large", str(splits / "large"), "--small", str(splits / "small"),
              "--repeat", "3", "--out", str(splits / "mix-k3"))
    assert out.returncode == 0, out.stderr
    large = {s: olelo.read_jsonl(splits / "large" / f"{s}.jsonl") for s in ("train", "valid", "test")}
    small_train = olelo.read_jsonl(splits / "small" / "train.jsonl")
    mixed = {s: olelo.read_jsonl(splits / "mix-k3" / f"{s}.jsonl") for s in ("train", "valid", "test")}
    assert len(mixed["train"]) == len(large["train"]) + 3 * len(small_train)
    ids = [r["id"] for r in mixed["train"]]
    for r in small_train:
        in_large = sum(x["id"] == r["id"] for x in large["train"])
        assert ids.count(r["id"]) == 3 + in_large
    assert mixed["valid"] == large["valid"] and mixed["test"] == large["test"]
    manifest = json.loads((splits / "mix-k3" / "manifest.json").read_text())
    assert manifest["counts"]["train"] == len(mixed["train"])
    assert run("scripts/split.py", "--check", str(splits)).returncode == 0


def test_cosine_schedule_goes_to_the_yaml_with_warmup():
    lab = types.SimpleNamespace(rank=16, scale=None, dropout=None, lr_schedule="cosine", warmup=None)
    merged = {"lora_parameters": {"rank": 8, "scale": 20.0, "dropout": 0.0}, "iters": 1000, "learning_rate": 5e-5}
    config = run_config(lab, merged)
    assert config["lora_parameters"] == {"rank": 16, "scale": 20.0, "dropout": 0.0}
    assert config["lr_schedule"] == {"name": "cosine_decay", "warmup": 50, "warmup_init": 0.0,
                                     "arguments": [5e-5, 950, 5e-6]}
    # mlx-lm builds a working schedule from it: 0 at the start, the peak after warmup, 10 % at the end.
    from mlx_lm.tuner.utils import build_schedule

    schedule = build_schedule(config["lr_schedule"])
    assert float(schedule(0)) == 0.0
    assert abs(float(schedule(50)) - 5e-5) < 1e-9
    assert abs(float(schedule(1000)) - 5e-6) < 1e-9
