"""olelo/run.py: one function resolves the run's Spec, which nothing changes afterwards;
a resume's kept options and rank 0's decision are in it before it is frozen."""

import dataclasses
import json

import pytest

import olelo
from olelo import distributed, run


class World:
    def __init__(self, size=1, rank=0):
        self._size, self._rank = size, rank

    def size(self):
        return self._size

    def rank(self):
        return self._rank


def lab_and_cmd(tmp_path, data, *lab_opts):
    return run.parse_lab_args(["--runs-dir", str(tmp_path / "runs"), "--adapters-dir", str(tmp_path / "adapters"),
                               *lab_opts, "--", "mlx_lm.lora", "--model", "models/x", "--train", "--data",
                               str(data), "--iters", "4", "--batch-size", "2"])


def test_the_spec_is_resolved_once_and_frozen(tmp_path, tiny_data):
    lab, cmd = lab_and_cmd(tmp_path, tiny_data, "--lr-schedule", "cosine", "--keep", "2")
    given = dict(vars(lab))
    spec = run.resolve(lab, cmd, World())
    assert vars(lab) == given  # the options are read, not rewritten
    assert (spec.state, spec.offset, spec.val_gen, spec.select, spec.keep) == ("new", 0, 64, "val_chrf", "2")
    assert spec.loss in ("default", "chunked") and spec.loss_asked == "auto"  # auto resolved on this machine
    assert spec.quantized_matmul in ("quantized", "dense")
    assert spec.config["lr_schedule"]["name"] == "cosine_decay"
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.val_gen = 0
    with pytest.raises(TypeError):
        spec.config["lora_parameters"]["rank"] = 4  # read-only all the way down
    with pytest.raises(TypeError):
        spec.base["iters"] = 8
    # what goes to YAML, JSON and mlx-lm is a plain copy
    assert run.thaw(spec.config)["lora_parameters"] == {"rank": 8, "dropout": 0.0, "scale": 20.0}
    assert spec.lab_options() == {"patience": 0, "lr_schedule": "cosine", "select": "val_chrf", "val_gen": 64,
                                  "keep": "2", "loss": spec.loss, "val_gen_loop_stop": False,
                                  "val_gen_cap": "longest", "grad_clip": None}
    olelo.runs.forget_new_folder(spec.runs, spec.stamp, spec.lock)


def test_grad_clip_names_the_run_and_reaches_the_spec_and_manifest_options(tmp_path, tiny_data):
    lab, cmd = lab_and_cmd(tmp_path, tiny_data)
    plain = run.resolve(lab, cmd, World())
    olelo.runs.forget_new_folder(plain.runs, plain.stamp, plain.lock)
    assert plain.grad_clip is None and "clip" not in plain.stamp
    for value, part in (("1", "-clip1-"), ("0.5", "-clip0.5-"), ("2.5e-3", "-clip0.0025-")):
        lab, cmd = lab_and_cmd(tmp_path, tiny_data, "--grad-clip", value)
        spec = run.resolve(lab, cmd, World())
        olelo.runs.forget_new_folder(spec.runs, spec.stamp, spec.lock)
        assert spec.grad_clip == float(value) and spec.lab_options()["grad_clip"] == float(value)
        assert spec.stamp == plain.stamp.replace("-s0", part + "s0")
    for bad in ("0", "-1", "nan", "inf", "-inf"):
        lab, cmd = lab_and_cmd(tmp_path, tiny_data, f"--grad-clip={bad}")
        with pytest.raises(olelo.UserError, match=r"^GRAD_CLIP=\S+: must be a number > 0"):
            run.resolve(lab, cmd, World())
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_every_rank_takes_rank_0s_decision_before_the_spec_is_frozen(tmp_path, tiny_data, monkeypatch):
    # Rank 1 asked for VAL_GEN=64, longest cap, no loop stop; rank 0 (resuming a run) decided
    # val_gen 8, val_loss, the chunked loss, loop stop and the per-sentence cap.
    lab, cmd = lab_and_cmd(tmp_path, tiny_data)
    sent = []

    def agree(world, values):
        sent.append(values)
        return [run.STATES.index("resume"), 2, 6 + 1, run.SELECTS.index("val_loss"), 8,
                run.LOSSES.index("chunked"), 1, run.VAL_GEN_CAPS.index("each")]

    monkeypatch.setattr(distributed, "agree", agree)
    spec = run.resolve(lab, cmd, World(size=2, rank=1))
    assert len(sent[0]) == 8
    assert (spec.state, spec.offset, spec.stamp.endswith("-a2")) == ("resume", 6, True)
    assert (spec.select, spec.val_gen, spec.loss, spec.val_gen_loop_stop, spec.val_gen_cap) == \
        ("val_loss", 8, "chunked", True, "each")


def test_resume_point_returns_the_recorded_options_and_changes_none_given(tmp_path, capsys):
    run_dir, adapter_dir = tmp_path / "runs" / "r", tmp_path / "adapters" / "r"
    run_dir.mkdir(parents=True)
    adapter_dir.mkdir(parents=True)
    recorded = {"select": "val_loss", "val_gen": 3, "val_gen_loop_stop": True, "val_gen_cap": "each",
                "loss": "chunked"}
    (run_dir / "manifest.json").write_text(json.dumps({"lab_options": recorded}))
    given = {"select": "val_chrf", "val_gen": 64, "val_gen_loop_stop": False, "val_gen_cap": "longest",
             "loss": "default"}
    before = dict(given)
    offset, refusal, aside, kept = run.resume_point(given, "auto", run_dir, adapter_dir)
    assert given == before
    assert (offset, refusal, aside, kept) == (0, "", [], recorded)
    assert "with its recorded val_gen 3, not 64" in capsys.readouterr().err
    # a loss asked for by name is refused, not swapped
    _, refusal, _, _ = run.resume_point(given, "default", run_dir, adapter_dir)
    assert "was started with LOSS=chunked" in refusal
