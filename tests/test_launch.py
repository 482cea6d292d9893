"""scripts/launch.py, what the training targets run: the ranks check, BATCH=auto,
the mlx.launch command, the dry run, and the check after a distributed run."""

import json
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

import olelo
from olelo import launch

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"

LAB = ["--runs-dir", "runs", "--adapters-dir", "adapters", "--patience", "0"]
MLX = ["mlx_lm.lora", "--model", "models/tiny-gemma3", "--train", "--data", "data/finetuning/large", "--iters", "20"]


def argv(*launch_opts, batch="4", mlx_extra=(), lab=LAB):
    return [*launch_opts, "--", *lab, "--", *MLX, "--batch-size", batch, *mlx_extra]


def run_launch(*args) -> subprocess.CompletedProcess:
    """scripts/launch.py as make runs it (from this working folder, as the paths it shows are)."""
    return subprocess.run([sys.executable, str(SCRIPTS / "launch.py"), *args], capture_output=True, text=True)


def dry_run(*launch_opts, **kw):
    out = run_launch("--dry-run", *argv(*launch_opts, **kw))
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout.strip().splitlines()


def refused(args, match):
    """launch.py refuses: a UserError, one `error:` line (exit status 2) that matches."""
    out = run_launch(*args)
    assert out.returncode == 2 and re.search(match, out.stderr), out.stderr[-3000:]


@pytest.mark.parametrize("opts,batch,world", [(("--nproc", "2"), "3", 2), (("--nproc", "4"), "6", 4),
                                              (("--nproc", "3"), "4", 3)])
def test_a_batch_that_does_not_divide_by_the_ranks_is_refused(opts, batch, world):
    refused(["--dry-run", *argv(*opts, batch=batch)], f"BATCH={batch} does not divide by {world} ranks")


@pytest.mark.parametrize("nproc,batch", [("1", "3"), ("2", "4"), ("4", "8")])
def test_a_batch_that_divides_is_launched(nproc, batch):
    lines = dry_run("--nproc", nproc, batch=batch)
    cmd = shlex.split(lines[-1])
    if nproc == "1":
        assert Path(cmd[0]).name.startswith("python") and "mlx.launch" not in lines[-1]
    else:
        assert cmd[:5] == [launch.short(Path(sys.executable).with_name("mlx.launch")), "-n", nproc, "--backend",
                           "ring"]
    # What follows the launcher is train.py with the lab and mlx-lm arguments unchanged.
    tail = cmd[cmd.index(launch.short(SCRIPTS / "train.py")) + 1:]
    assert tail == [*LAB, "--", *MLX, "--batch-size", batch]


def test_nccl_turns_nvlink_multicast_off():
    line = dry_run("--nproc", "2", "--backend", "nccl")[-1]
    assert line.startswith("NCCL_NVLS_ENABLE=0 ") and "--backend nccl" in line


def test_hostfile_sets_the_world_size(tmp_path):
    hosts = tmp_path / "hosts.json"
    hosts.write_text(json.dumps({"backend": "ring", "hosts": [{"ssh": "a"}, {"ssh": "b"}, {"ssh": "c"}]}))
    line = dry_run("--hostfile", str(hosts), batch="6")[-1]
    assert f"--hostfile {hosts} --backend ring" in line
    refused(["--dry-run", *argv("--hostfile", str(hosts), batch="4")], "does not divide by 3 ranks")
    hosts.write_text(json.dumps([{"ssh": "a"}, {"ssh": "b"}]))
    assert launch.hostfile_size(str(hosts)) == 2


@pytest.mark.parametrize("content,message", [(None, "no such file"), ("{", "not a JSON host list"),
                                             ("{\"hosts\": []}", "no hosts")])
def test_a_bad_hostfile_is_a_clear_error(tmp_path, content, message):
    hosts = tmp_path / "hosts.json"
    if content is not None:
        hosts.write_text(content)
    with pytest.raises(olelo.UserError, match=message):
        launch.hostfile_size(str(hosts))


@pytest.mark.parametrize("bad", ["0", "-2", "two"])
def test_a_batch_that_is_not_a_positive_number_is_refused(bad):
    refused(["--dry-run", *argv(batch=bad)], f"BATCH={bad}: a positive whole number")


def test_auto_batch_is_for_one_process():
    refused(["--dry-run", *argv("--nproc", "2", batch="auto")], "BATCH=auto picks a batch for one process")


def test_auto_dry_run_shows_how_the_batch_will_be_picked():
    lines = dry_run(batch="auto", mlx_extra=("--max-seq-length", "512", "--grad-checkpoint"))
    assert lines[0].startswith("# BATCH=auto: the batch size comes from")
    picked = shlex.split(lines[0].split("comes from ", 1)[1])
    assert picked[2:] == ["--model", "models/tiny-gemma3", "--data", "data/finetuning/large", "--grad-checkpoint",
                          "on", "--record", "runs/auto-batch.json", "--flags", "--max-seq", "512", "--loss", "auto",
                          "--quantized-matmul", "auto", "--fine-tune-type", "lora"]


def test_auto_batch_is_picked_with_the_runs_loss_and_quantized_matmul():
    lines = dry_run(batch="auto", lab=(*LAB, "--loss", "chunked", "--quantized-matmul", "dense"))
    picked = shlex.split(lines[0].split("comes from ", 1)[1])
    assert picked[-6:-2] == ["--loss", "chunked", "--quantized-matmul", "dense"]
    # MEM_LIMIT: auto_batch.py goes by the need, within the limit
    lines = dry_run(batch="auto", lab=(*LAB, "--memory-limit-gb", "12"))
    picked = shlex.split(lines[0].split("comes from ", 1)[1])
    assert picked[picked.index("--memory-limit-gb") + 1] == "12"


@pytest.mark.parametrize("chosen,had_gc,expected", [
    ("--batch-size 8", False, ["--batch-size", "8"]),
    ("--batch-size 4 --grad-checkpoint", False, ["--batch-size", "4", "--grad-checkpoint"]),
    ("--batch-size 4 --grad-checkpoint", True, ["--grad-checkpoint", "--batch-size", "4"]),
])
def test_auto_batch_choice_replaces_auto_and_is_recorded(monkeypatch, capsys, chosen, had_gc, expected):
    # olelo.auto_batch.pick's own choice is tested in test_mem_profile.py; here, what
    # launch.py does with the choice it returns (a value, not printed text to parse).
    from olelo import auto_batch

    seen = {}

    def fake_pick(a):
        seen["options"] = a
        words = chosen.split()
        return {"batch_size": int(words[1]), "grad_checkpoint": "--grad-checkpoint" in words,
                "reason": f"auto_batch: {chosen}: because"}

    monkeypatch.setattr(auto_batch, "pick", fake_pick)
    mlx = [*MLX, "--batch-size", "auto", *(["--grad-checkpoint"] if had_gc else [])]
    lab, new_mlx = launch.pick_batch(LAB, mlx)
    assert new_mlx == [*MLX, *expected]
    assert lab == [*LAB, "--auto-batch-record", "runs/auto-batch.json"]
    assert seen["options"].grad_checkpoint == ("on" if had_gc else "auto")
    assert seen["options"].record == "runs/auto-batch.json"
    assert capsys.readouterr().err == f"auto_batch: {chosen}: because\n"  # the reason, as auto_batch.py --flags says it


def test_auto_batch_that_finds_nothing_is_a_clear_error(monkeypatch):
    from olelo import auto_batch

    monkeypatch.setattr(auto_batch, "pick", lambda a: {"batch_size": 0, "grad_checkpoint": False,
                                                       "reason": "auto_batch: nothing fits"})
    with pytest.raises(olelo.UserError, match="no batch size fits"):
        launch.pick_batch(LAB, [*MLX, "--batch-size", "auto"])


def test_a_command_without_mlx_lm_lora_is_refused():
    refused(["--dry-run", "--", *LAB, "--", "python", "x.py"], "then -- mlx_lm.lora")
    refused(["--dry-run"], "then -- mlx_lm.lora")


def test_after_a_distributed_run_latest_must_be_a_run_this_launch_finished(tmp_path):
    runs = tmp_path / "runs"
    (runs / "a").mkdir(parents=True)
    (runs / "latest").symlink_to("a")
    started = time.time()

    def manifest(status):
        olelo.atomic_write_json(runs / "a" / "manifest.json", {"status": status})

    manifest("finished")
    launch.check_finished(runs, started)  # latest was pointed just now: ok
    manifest("running")
    with pytest.raises(olelo.UserError, match="did not finish \\(status running\\)"):
        launch.check_finished(runs, started)
    manifest("finished")
    old = started - 3600
    os.utime(runs / "latest", (old, old), follow_symlinks=False)
    with pytest.raises(olelo.UserError, match="did not finish"):  # an older run's latest: this one failed early
        launch.check_finished(runs, started)
    (runs / "latest").unlink()
    with pytest.raises(olelo.UserError, match="status unknown"):
        launch.check_finished(runs, started)


@pytest.mark.slow
def test_ranks_that_fail_are_reported_though_mlx_launch_exits_0(tmp_path):
    import subprocess

    cmd = [sys.executable, str(SCRIPTS / "launch.py"), "--nproc", "2", "--",
           "--runs-dir", str(tmp_path / "runs"), "--adapters-dir", str(tmp_path / "adapters"), "--",
           "mlx_lm.lora", "--model", str(tmp_path / "no-such-model"), "--train", "--data", str(tmp_path),
           "--iters", "2", "--batch-size", "2"]
    out = subprocess.run(cmd, cwd=SCRIPTS.parent, capture_output=True, text=True, timeout=300)
    assert out.returncode == 2
    assert out.stderr.splitlines()[-1].startswith("error: the distributed run did not finish (status unknown)")


def jaccl_hosts(n=2, ring=False):
    """A hostfile as mlx.distributed_config --backend jaccl(-ring) writes it."""
    hosts = []
    for i in range(n):
        peers = {(i - 1) % n, (i + 1) % n} if ring else set(range(n)) - {i}
        hosts.append({"ssh": f"mac{i + 1}.local", "ips": [f"10.0.0.{i + 1}"],
                      "rdma": [f"rdma_en{j + 2}" if j in peers and j != i else None for j in range(n)]})
    return {"backend": "jaccl-ring" if ring else "jaccl", "hosts": hosts}


@pytest.mark.parametrize("backend, n", [("jaccl", 2), ("jaccl", 3), ("jaccl-ring", 4)])
def test_jaccl_launches_through_the_hostfile(tmp_path, backend, n):
    hosts = tmp_path / "hosts.json"
    hosts.write_text(json.dumps(jaccl_hosts(n, ring=backend == "jaccl-ring")))
    line = dry_run("--hostfile", str(hosts), "--backend", backend, batch=str(2 * n))[-1]
    assert f"mlx.launch --hostfile {hosts} --backend {backend} " in line and "NCCL" not in line


def test_jaccl_refuses_what_mlx_launch_would_refuse(tmp_path):
    refused(["--dry-run", *argv("--nproc", "2", "--backend", "jaccl")], "give HOSTFILE=hosts.json")
    hosts = tmp_path / "hosts.json"
    cases = [
        (lambda h: h["hosts"][1]["rdma"].pop(), "mac2.local needs \"rdma\": a list of 3 devices"),
        (lambda h: h["hosts"][0]["rdma"].__setitem__(0, "rdma_en9"), "own rdma entry (position 0) must be null"),
        (lambda h: h["hosts"][2]["rdma"].__setitem__(0, None), "mac3.local lists no RDMA device towards mac1.local"),
        (lambda h: h["hosts"][0].pop("ips"), "rank 0) needs \"ips\""),
        (lambda h: h.__setitem__("hosts", h["hosts"][:1]), "list 2 or more hosts"),
    ]
    for damage, message in cases:
        h = jaccl_hosts(3)
        if "list 2" in message:
            h["hosts"][0]["rdma"] = [None]
        damage(h)
        hosts.write_text(json.dumps(h))
        refused(["--dry-run", *argv("--hostfile", str(hosts), "--backend", "jaccl", batch="6")],
                message.replace("(", r"\(").replace(")", r"\)"))
    # a ring needs devices only towards its two neighbours
    ring = jaccl_hosts(4, ring=True)
    assert ring["hosts"][0]["rdma"][2] is None
    hosts.write_text(json.dumps(ring))
    refused(["--dry-run", *argv("--hostfile", str(hosts), "--backend", "jaccl", batch="8")],
            "mac1.local lists no RDMA device towards mac3.local")
