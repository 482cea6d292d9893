"""The record never lies, round two (issue 33): the model given now against the one a run
recorded, damaged checkpoints, several runs started together in one checkout, evaluations
of unfinished runs, and the smaller cases (Ctrl-C, an edited config.yaml, damaged wheels,
stale temporary folders, messages that name the right thing). Real MLX on the tiny model
where a run is needed; the lab fixtures are in conftest.py."""

import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

import olelo
from conftest import PY, REPO, latest, one_line_error, script


# ================================================================ several runs at once

def _build_folder(dest: str, tag: int, start) -> None:
    start.wait()
    for _ in range(20):
        with olelo.atomic_dir(dest) as tmp:
            (tmp / "who").write_text(str(tag))


def test_one_folder_built_by_several_processes_at_once(tmp_path):
    # Two makes building the same model or split folder: each rename into place succeeds
    # (the later build stays), none fails because the other's folder arrived in between.
    dest = tmp_path / "model"
    ctx = multiprocessing.get_context("fork")
    start = ctx.Event()
    procs = [ctx.Process(target=_build_folder, args=(str(dest), i, start)) for i in range(6)]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0] * 6
    assert [p.name for p in dest.iterdir()] == ["who"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no temporary or old folder left


def _point_latest(root: str, tag: int, start) -> None:
    start.wait()
    for _ in range(50):
        olelo.runs.point_latest(Path(root) / "latest", f"run-{tag}")


def test_latest_link_pointed_by_several_runs_at_once(tmp_path):
    # Two runs started together both point runs/latest at themselves: neither fails.
    ctx = multiprocessing.get_context("fork")
    start = ctx.Event()
    procs = [ctx.Process(target=_point_latest, args=(str(tmp_path), i, start)) for i in range(6)]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0] * 6
    assert os.readlink(tmp_path / "latest").startswith("run-")
    assert [p.name for p in tmp_path.iterdir()] == ["latest"]  # no temporary link left


# ================================================================ the model given now

def other_weights(src: Path, dest: Path) -> Path:
    """A copy of model folder src at dest with other weights: the same names, shapes and sizes
    (a low bit flipped in 64 bytes spread over the tensor data, as other weights differ
    throughout)."""
    shutil.copytree(src, dest)
    f = next(dest.glob("*.safetensors"))
    data = bytearray(f.read_bytes())
    start = 8 + int.from_bytes(data[:8], "little")  # past the header
    for i in range(64):
        data[start + (len(data) - start - 1) * i // 63] ^= 1
    f.write_bytes(bytes(data))
    return dest


def test_another_model_in_a_folder_of_the_same_name_is_not_up_to_date(lab, trained, tmp_path):
    stamp = trained["stamp"]
    same = tmp_path / "same" / lab["model"].name
    shutil.copytree(lab["model"], same)
    out = lab["train"](model_dir=same)  # moved, same content: the same model
    assert "up to date" in out.stdout
    other = other_weights(lab["model"], tmp_path / "other" / lab["model"].name)
    out = lab["train"](model_dir=other, check=False)
    err = one_line_error(out, f"run {stamp}: cannot be up to date", f"the model {other} is not the one trained from",
                         "weights", "FORCE=1")
    assert "name of its own" in err
    assert json.loads((trained["run_dir"] / "manifest.json").read_text())["status"] == "finished"


def test_large_weights_are_told_apart_by_a_sample(lab, tmp_path, monkeypatch):
    from olelo import identity

    monkeypatch.setattr(identity, "HASH_WEIGHTS_UP_TO", 0)  # as if the weights were too large to hash whole
    monkeypatch.setattr(identity, "SAMPLE_BYTES", 64)
    a = identity.model_identity(str(lab["model"]))
    assert "weights_sha256" not in a and a["weights_sample_sha256"]
    b = identity.model_identity(str(other_weights(lab["model"], tmp_path / "tiny")))
    assert a["weights"] == b["weights"]  # the same sizes
    assert "weights changed" in identity.model_changes(a, b, "m")[0]
    # A record without any weight content (an older run): the model must be where it was.
    old = {k: v for k, v in a.items() if k != "weights_sample_sha256"}
    assert identity.model_changes(old, a, "m") == []
    assert "trained from" in identity.model_changes(old, b, "m")[0]
