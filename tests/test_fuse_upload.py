"""Tests of scripts/fuse.py and scripts/upload.py on real runs of the tiny random
models: fusing best and numbered checkpoints, the fuse check against base + adapter,
the no-op re-fuse, the model card, the upload allow-list, and every refusal. Offline:
uploads go to a closed local port or stop before the network."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import mlx.core as mx
import pytest
import yaml
from mlx_lm import generate, load

import olelo
from conftest import REPO, TINY_PAIRS
from olelo import upload

FUSE = str(REPO / "scripts" / "fuse.py")
UPLOAD = str(REPO / "scripts" / "upload.py")
FAKE_TOKEN = "hf_FakeTokenForTests0123456789abcdef"


def cli(script, *args, cwd, env=None, check=True):
    r = subprocess.run([sys.executable, script, *map(str, args)], cwd=cwd, env=env,
                       capture_output=True, text=True, timeout=300)
    if check and r.returncode != 0:
        raise AssertionError(f"{script} exited {r.returncode}\n{r.stdout}\n{r.stderr}")
    return r


def hf_env(tmp_path, token=None, **extra):
    """An environment with no Hugging Face login, or with `token`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING_FACE"))}
    (tmp_path / "hf_home").mkdir(exist_ok=True)
    env["HF_HOME"] = str(tmp_path / "hf_home")
    if token:
        env["HF_TOKEN"] = token
    return {**env, **extra}


def make_run(root: Path, model: Path, tiny_train) -> dict:
    """A 6-iteration LoRA run of `model` (checkpoints at 3 and 6) under root/."""
    data = root / "data" / "tiny"
    records = [olelo.chat_record(h, e, "haw-en", f"p{i}") for i, (h, e) in enumerate(TINY_PAIRS)]
    records += [olelo.chat_record(e, h, "en-haw", f"p{i}r") for i, (h, e) in enumerate(TINY_PAIRS)]
    olelo.atomic_write_jsonl(data / "train.jsonl", records[0::2])
    olelo.atomic_write_jsonl(data / "valid.jsonl", records[1::4])
    olelo.atomic_write_jsonl(data / "test.jsonl", records[3::4])
    layers = json.loads((model / "config.json").read_text())["num_hidden_layers"]
    # best/ by val loss: the tiny model's chrF++ is noise, and best/ must differ from the base.
    tiny_train(root, "--learning-rate", "1e-3", model=model, data=data, iters=6, every=3, layers=layers,
               lab_opts=["--val-gen", "0"])
    stamp = os.readlink(root / "runs" / "latest")
    return {"root": root, "stamp": stamp, "model": model, "run_dir": root / "runs" / stamp,
            "adapters": root / "adapters" / stamp}


@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny_model, tiny_train):
    r = make_run(tmp_path_factory.mktemp("lab"), tiny_model, tiny_train)
    r["fuse_best"] = cli(FUSE, "--run", "latest", cwd=r["root"])  # default: --ckpt best
    return r


@pytest.fixture(scope="module")
def fused(run) -> Path:
    return run["root"] / "fused" / f"{run['stamp']}-best"


def record(folder: Path) -> dict:
    return json.loads((folder / "olelo_fuse.json").read_text())


def card_of(stdout: str) -> str:
    return stdout.split("--- README.md ---\n", 1)[1]


# ---------------------------------------------------------------- fuse


def test_fuse_best_writes_a_model_that_loads(run, fused):
    assert fused.is_dir() and os.readlink(run["root"] / "fused" / "latest") == fused.name
    assert not [p for p in fused.parent.iterdir() if p.name.startswith(".")], "temporary folders left behind"
    model, tokenizer = load(str(fused))
    assert isinstance(generate(model, tokenizer, "Aloha", max_tokens=4), str)
    # The LoRA update is in the weights: a fused projection differs from the base's.
    base = mx.load(str(run["model"] / "model.safetensors"))
    fused_w = mx.load(str(fused / "model.safetensors"))
    key = "model.layers.0.self_attn.q_proj.weight"
    assert base[key].shape == fused_w[key].shape and not mx.array_equal(base[key], fused_w[key])


def test_fuse_record(run, fused):
    rec = record(fused)
    best = json.loads((run["adapters"] / "best" / "best.json").read_text())
    assert (rec["run"], rec["checkpoint"], rec["iteration"], rec["val_loss"]) == (
        run["stamp"], "best", best["iteration"], best["val_loss"])
    assert rec["adapter_sha256"] == olelo.sha256_file(run["adapters"] / "best" / "adapters.safetensors")
    assert rec["command"] == ["mlx_lm.fuse", "--model", str(run["model"]), "--adapter-path",
                              f"adapters/{run['stamp']}/best", "--save-path", f"fused/{fused.name}"]
    assert rec["base_model_sha256"]["model.safetensors"] == olelo.sha256_file(run["model"] / "model.safetensors")
    assert f"+ {' '.join(rec['command'])}" in run["fuse_best"].stdout


def test_fused_float_model_generates_what_base_plus_adapter_does(fused):
    v = record(fused)["verification"]
    assert (v["status"], v["identical"], v["base_quantization"]) == ("identical", True, None)
    assert len(v["prompts"]) == 3 and "explanation" not in v and v["max_first_step_logprob_diff"] < 1e-4
    for p in v["prompts"]:
        assert p["first_difference"] is None and p["base_adapter_tokens"] == p["fused_tokens"]
        assert p["first_step_max_abs_logprob_diff"] < 1e-3


def test_fuse_records_every_file_it_wrote(fused):
    files = record(fused)["files"]
    on_disk = {p.name for p in fused.iterdir() if p.name not in ("olelo_fuse.json", "README.md")}
    assert set(files) == on_disk and "model.safetensors" in files and "config.json" in files
    for name, f in files.items():
        assert (f["bytes"], f["sha256"]) == ((fused / name).stat().st_size, olelo.sha256_file(fused / name)), name


def test_refuse_fuses_again_when_a_file_is_not_what_fuse_wrote(run, tmp_path):
    out = tmp_path / "fused-x"
    cli(FUSE, "--run", "latest", "--out", out, "--verify-prompts", "0", cwd=run["root"])
    weights = out / "model.safetensors"
    whole = weights.read_bytes()
    weights.write_bytes(whole[:1000])  # truncated: "up to date" no more
    r = cli(FUSE, "--run", "latest", "--out", out, "--verify-prompts", "0", cwd=run["root"])
    assert "up to date" not in r.stdout and "1000 bytes, fuse wrote" in r.stderr and "fusing again" in r.stderr
    assert weights.read_bytes() == whole
    r = cli(FUSE, "--run", "latest", "--out", out, "--verify-prompts", "0", cwd=run["root"])
    assert "up to date" in r.stdout


def test_refuse_is_up_to_date(run, fused):
    before = (fused / "model.safetensors").stat().st_mtime_ns
    r = cli(FUSE, "--run", run["run_dir"], "--ckpt", "best", cwd=run["root"])
    assert "up to date" in r.stdout
    assert (fused / "model.safetensors").stat().st_mtime_ns == before


def test_fuse_numbered_checkpoint(run):
    r = cli(FUSE, "--run", run["stamp"], "--ckpt", "3", "--verify-prompts", 1, cwd=run["root"])
    out = run["root"] / "fused" / f"{run['stamp']}-ckpt-0000003"
    rec = record(out)
    folder = run["adapters"] / "ckpt-0000003"
    assert os.path.samefile(folder / "adapters.safetensors", run["adapters"] / "0000003_adapters.safetensors")
    assert rec["adapter_path"] == f"adapters/{run['stamp']}/ckpt-0000003" and rec["iteration"] == 3
    vals = [json.loads(line) for line in (run["run_dir"] / "metrics.jsonl").read_text().splitlines()]
    assert rec["val_loss"] == next((m["val_loss"] for m in vals if m["type"] == "val" and m["iteration"] == 3), None)
    assert rec["verification"]["identical"] and len(rec["verification"]["prompts"]) == 1
    assert os.readlink(run["root"] / "fused" / "latest") == out.name
    assert "checkpoint ckpt-0000003 (iteration 3)" in r.stdout
    load(str(out))


def test_fuse_refusals(run):
    r = cli(FUSE, "--run", run["stamp"], "--ckpt", "4", cwd=run["root"], check=False)
    assert r.returncode == 2 and "no checkpoint at iteration 4" in r.stderr
    r = cli(FUSE, "--run", run["stamp"], "--ckpt", "newest", cwd=run["root"], check=False)
    assert r.returncode == 2 and "use best, final or an iteration number" in r.stderr
    r = cli(FUSE, "--run", "no-such-run", cwd=run["root"], check=False)
    assert r.returncode == 2 and "no run 'no-such-run'" in r.stderr and "Traceback" not in r.stderr


def test_fuse_4bit_model(tmp_path_factory, tiny_model_4bit, tiny_train):
    """QLoRA: fusing requantizes the updated weights, so greedy outputs may differ from base + adapter."""
    r = make_run(tmp_path_factory.mktemp("lab4"), tiny_model_4bit, tiny_train)
    cli(FUSE, "--run", "latest", "--ckpt", "final", cwd=r["root"])
    out = r["root"] / "fused" / f"{r['stamp']}-final"
    rec = record(out)
    assert json.loads((out / "config.json").read_text())["quantization"]["bits"] == 4
    v = rec["verification"]
    assert v["base_quantization"] == {"bits": 4, "group_size": 64}
    # Requantizing moves the numbers far beyond float rounding (~1e-6), whether or
    # not a greedy pick flips on these three prompts (measured: it does not here).
    assert v["max_first_step_logprob_diff"] > 1e-2 and "quantized" in v["explanation"]
    assert v["identical"] == all(p["first_difference"] is None for p in v["prompts"])
    load(str(out))


# ---------------------------------------------------------------- the card


def front_matter_and_body(card: str):
    _, meta, body = card.split("---\n", 2)
    return yaml.safe_load(meta), body


def test_card_front_matter_and_provenance(run, fused, tmp_path):
    r = cli(UPLOAD, "--fused", "fused/latest", "--repo", "someone/olelo-tiny", "--dry-run",
            cwd=run["root"], env=hf_env(tmp_path))
    meta, body = front_matter_and_body(card_of(r.stdout))
    assert meta == {"language": ["haw", "en"], "library_name": "mlx", "pipeline_tag": "text-generation",
                    "license": "other", "tags": ["mlx", "lora", "hawaiian", "translation"]}  # local base: no base_model
    manifest = json.loads((run["run_dir"] / "manifest.json").read_text())
    for text in (upload.SOURCE_REPO, upload.SOURCE_COMMIT, "Fornander Collection", manifest["data"]["train_sha256"],
                 manifest["data"]["test_sha256"], " ".join(manifest["mlx_lm_command"][:3]), "lora_parameters",
                 "Not evaluated yet", "**identical**", "Random weights", "old orthography", "mlx_lm.fuse --model"):
        assert text in body, text


def test_card_of_a_hub_base(run, fused, tmp_path, monkeypatch):
    monkeypatch.chdir(run["root"])  # the record's paths are relative to where fuse ran
    folder = tmp_path / "fused-copy"
    shutil.copytree(fused, folder)
    rec = record(folder)
    olelo.atomic_write_json(folder / "olelo_fuse.json", {**rec, "base_model": "mlx-community/gemma-3-4b-it-4bit"})
    meta, body = front_matter_and_body(upload.model_card(folder, "someone/olelo-gemma"))
    assert (meta["base_model"], meta["license"]) == ("mlx-community/gemma-3-4b-it-4bit", "gemma")
    assert "Random weights" not in body and "Gemma Terms of Use" in body


def test_card_license_of_hub_bases():
    assert upload.license_of("mlx-community/gemma-3-4b-it-4bit", {})[0] == "gemma"
    assert upload.license_of("someone/other-model", {})[0] == "other"
    assert upload.license_of("someone/other-model", {"license": "apache-2.0"})[0] == "apache-2.0"


def fake_summary(stamp: str, bits: str) -> dict:
    sig = {"bleu": f"nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:{bits}",
           "chrf": f"nrefs:1|case:mixed|eff:yes|nc:6|nw:2|space:no|version:{bits}",
           "ter": f"nrefs:1|case:lc|tok:tercom|norm:no|punct:yes|asian:no|version:{bits}"}

    def vs(p):
        return {"metrics": {k: {"p_value": p, "significant": p < 0.05, "delta": 1.0} for k in ("bleu", "chrf", "ter")},
                "verdicts": [f"system beats base on BLEU (p={p:.4f})"]}

    entry = {"bleu": 3.21, "chrf": 21.5, "ter": 95.0, "signatures": sig, "n": 4, "test_ppl": 123.4}
    return {"run": stamp, "bootstrap": {"samples": 1000, "seed": 12345},
            "checkpoints": {"base": {**entry, "iteration": 0, "bleu": 1.0},
                            "best": {**entry, "iteration": 5, "vs_base": vs(0.0123)},
                            "final": {**entry, "iteration": 6, "vs_base": vs(0.5)}}}


def test_card_with_evaluation(run, fused, tmp_path):
    summary = run["run_dir"] / "eval" / "summary.json"
    olelo.atomic_write_json(summary, fake_summary(run["stamp"], "2.5.1"))
    try:
        r = cli(UPLOAD, "--fused", fused, "--repo", "someone/olelo-tiny", "--dry-run", cwd=run["root"],
                env=hf_env(tmp_path))
    finally:
        shutil.rmtree(summary.parent)
    body = card_of(r.stdout)
    assert "Not evaluated yet" not in body
    assert "| **best (this model)** | 5 | 3.21 (p=0.012*) | 21.50 (p=0.012*) | 95.00 (p=0.012*) | – | 123.4 |" in body
    assert "| base | 0 | 1.00 | 21.50 | 95.00 | – | 123.4 |" in body
    assert "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.5.1" in body
    assert "tok:tercom" in body and "1000 samples, seed 12345" in body
    assert "system beats base on BLEU (p=0.0123)" in body


# ---------------------------------------------------------------- upload


def snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.stat().st_size)
            for p in folder.rglob("*") if not p.is_symlink()}


def test_dry_run_lists_only_allowed_files_and_writes_nothing(fused, tmp_path):
    folder = tmp_path / "fused-copy"
    shutil.copytree(fused, folder)
    (folder / ".env").write_text(f"HF_TOKEN={FAKE_TOKEN}\n")
    (folder / "notes.txt").write_text("private notes\n")
    (folder / "train.jsonl").write_text("{}\n")
    for sub in ("data/raw", "runs/x"):
        (folder / sub).mkdir(parents=True)
        (folder / sub / "manifest.json").write_text("{}")
    (folder / "extra.safetensors").symlink_to("/etc/hostname")
    before = snapshot(folder)
    r = cli(UPLOAD, "--fused", folder, "--repo", "someone/olelo-tiny", "--dry-run", cwd=tmp_path,
            env=hf_env(tmp_path, token=FAKE_TOKEN))
    assert snapshot(folder) == before
    listing = r.stdout.split("\n--- README.md ---", 1)[0].splitlines()
    assert listing[0].startswith("dry run: would upload") and "private repo someone/olelo-tiny" in listing[0]
    names = [line.split()[1] for line in listing[1:]]
    expected = sorted(p.name for p in fused.iterdir() if p.name != "README.md") + ["README.md"]
    assert sorted(names) == sorted(expected)
    assert all(any(Path(n).match(pat) for pat in upload.ALLOWED) for n in names)
    for line in listing[1:]:
        size, name = line.split()[:2]
        if name != "README.md":
            assert int(size.replace(",", "")) == (folder / name).stat().st_size
    assert FAKE_TOKEN not in r.stdout + r.stderr


@pytest.mark.parametrize("repo", ["", "noslash", "a/b/c", "-a/b", "a/b-", "a--b/c", "a/..b", "../etc", "a b/c"])
def test_upload_refuses_a_bad_repo_id(fused, tmp_path, repo):
    r = cli(UPLOAD, "--fused", fused, f"--repo={repo}", cwd=tmp_path, env=hf_env(tmp_path, token=FAKE_TOKEN), check=False)
    assert r.returncode == 2 and ("not a Hugging Face repo id" in r.stderr or "give the repository" in r.stderr)


def test_upload_refuses_without_repo_or_fused_model(fused, tmp_path):
    r = cli(UPLOAD, "--fused", fused, cwd=tmp_path, env=hf_env(tmp_path, token=FAKE_TOKEN), check=False)
    assert r.returncode == 2 and "--repo <user>/<name>" in r.stderr
    r = cli(UPLOAD, "--fused", tmp_path / "missing", "--repo", "someone/x", "--dry-run", cwd=tmp_path,
            env=hf_env(tmp_path), check=False)
    assert r.returncode == 2 and "no fused model here" in r.stderr


def test_upload_refuses_without_token(fused, tmp_path):
    folder = tmp_path / "fused-copy"
    shutil.copytree(fused, folder)
    before = snapshot(folder)
    r = cli(UPLOAD, "--fused", folder, "--repo", "someone/olelo-tiny", cwd=tmp_path, env=hf_env(tmp_path), check=False)
    assert r.returncode == 2 and "no Hugging Face token" in r.stderr
    assert snapshot(folder) == before


def test_offline_upload_fails_clearly_and_never_shows_the_token(fused, tmp_path):
    folder = tmp_path / "fused-copy"
    shutil.copytree(fused, folder)
    env = hf_env(tmp_path, token=FAKE_TOKEN, HF_ENDPOINT="http://127.0.0.1:9")  # nothing listens there
    r = cli(UPLOAD, "--fused", folder, "--repo", "someone/olelo-tiny", cwd=tmp_path, env=env, check=False)
    assert r.returncode == 2 and "upload to someone/olelo-tiny failed" in r.stderr and "Traceback" not in r.stderr
    assert FAKE_TOKEN not in r.stdout + r.stderr
    assert (folder / "README.md").read_text().startswith("---\nlanguage:")  # the card, written before the network
    for f in folder.rglob("*"):
        assert FAKE_TOKEN.encode() not in f.read_bytes(), f


def tampered(fused: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "fused-copy"
    shutil.copytree(fused, folder)
    return folder


def dry_upload(folder: Path, tmp_path: Path):
    return cli(UPLOAD, "--fused", folder, "--repo", "someone/olelo-tiny", "--dry-run", cwd=tmp_path,
               env=hf_env(tmp_path, token=FAKE_TOKEN), check=False)


def test_upload_refuses_a_truncated_weights_file(fused, tmp_path):
    folder = tampered(fused, tmp_path)
    with open(folder / "model.safetensors", "r+b") as f:
        f.truncate(1000)
    r = dry_upload(folder, tmp_path)
    assert r.returncode == 2 and "would upload" not in r.stdout and "Traceback" not in r.stderr
    assert f"{folder / 'model.safetensors'}: 1000 bytes, fuse wrote" in r.stderr
    assert f"make fuse RUN={record(fused)['run']} FUSE_CKPT=best" in r.stderr


def test_upload_refuses_a_file_fuse_did_not_write(fused, tmp_path):
    folder = tampered(fused, tmp_path)
    (folder / "secrets.json").write_text('{"HF_TOKEN": "%s"}' % FAKE_TOKEN)
    r = dry_upload(folder, tmp_path)
    assert r.returncode == 2 and "would upload" not in r.stdout and FAKE_TOKEN not in r.stdout
    assert f"{folder / 'secrets.json'}: not a file fuse wrote" in r.stderr


def test_upload_refuses_changed_and_missing_files(fused, tmp_path):
    folder = tampered(fused, tmp_path)
    config = folder / "config.json"
    text = config.read_text()
    config.write_text(text.replace('"', "'", 1) if '"' in text else text + " ")  # same size, other bytes
    assert config.stat().st_size == (fused / "config.json").stat().st_size
    tokenizer = next(n for n in record(fused)["files"] if n.startswith("tokenizer"))
    (folder / tokenizer).unlink()
    r = dry_upload(folder, tmp_path)
    assert r.returncode == 2
    assert f"{config}: not the bytes fuse wrote (sha256 differs)" in r.stderr
    assert f"{folder / tokenizer}: fuse wrote it and it is gone" in r.stderr


def test_upload_refuses_a_folder_fused_before_files_were_recorded(fused, tmp_path):
    folder = tampered(fused, tmp_path)
    rec = record(folder)
    del rec["files"]
    (folder / "olelo_fuse.json").write_text(json.dumps(rec))
    r = dry_upload(folder, tmp_path)
    assert r.returncode == 2 and "does not list the files fuse wrote" in r.stderr


@pytest.mark.make
@pytest.mark.parametrize("repo,token,says", [("a b/c", FAKE_TOKEN, "not a Hugging Face repo id"),
                                             ("someone/x", None, "no Hugging Face token")])
def test_make_fuse_upload_refuses_bad_arguments_before_fusing(run, tmp_path, repo, token, says):
    from conftest import MAKE

    out = tmp_path / "never"
    r = subprocess.run([MAKE, "--no-print-directory", "fuse", "upload", f"RUN={run['run_dir']}", f"FUSED={out}",
                        f"HF_REPO={repo}"], cwd=REPO, capture_output=True, text=True, timeout=300,
                       env=hf_env(tmp_path, token=token))
    assert r.returncode != 0 and says in r.stderr
    assert "mlx_lm.fuse" not in r.stdout and not out.exists()
