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
