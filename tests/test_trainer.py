"""olelo/trainer.py: the same run as mlx-lm's own train(); validation chrF++ is
translate.py's translations scored by sacrebleu; --select picks best/ and
drives patience. Real training on the tiny model."""

import json
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

import olelo
from olelo import run
from olelo.config import mlx_lora_args, run_config
from olelo import trainer

REPO = Path(__file__).resolve().parents[1]


class Collect:
    def __init__(self):
        self.rows = []

    def on_train_loss_report(self, info):
        self.rows.append(("train", info["iteration"], info["train_loss"], info["learning_rate"], info["trained_tokens"]))

    def on_val_loss_report(self, info):
        self.rows.append(("val", info["iteration"], info["val_loss"]))


@pytest.mark.slow
def test_same_losses_and_weights_as_mlx_lm_train(tmp_path, tiny_model, tiny_data):
    # Dropout (mx.random), gradient accumulation, a cosine schedule and a masked prompt, 7 steps.
    import mlx.core as mx
    from mlx.utils import tree_flatten
    from mlx_lm import load
    from mlx_lm.lora import train_model
    from mlx_lm.tuner.datasets import CacheDataset, load_dataset

    cmd = ["mlx_lm.lora", "--model", str(tiny_model), "--train", "--data", str(tiny_data), "--iters", "7",
           "--batch-size", "2", "--num-layers", "4", "--steps-per-report", "2", "--steps-per-eval", "3",
           "--save-every", "100", "--grad-accumulation-steps", "2", "--learning-rate", "1e-3", "--mask-prompt"]
    lab = types.SimpleNamespace(rank=None, scale=None, dropout=0.1, lr_schedule="cosine", warmup=2)
    config = run_config(lab, vars(mlx_lora_args(cmd)))

    def run(ours: bool):
        out = tmp_path / ("ours" if ours else "mlx")
        args = mlx_lora_args(cmd + ["-c", "unused", "--adapter-path", str(out)], config)
        model, tokenizer = load(args.model)
        np.random.seed(args.seed)  # as mlx_lm.lora.run does
        train_set, valid_set, _ = load_dataset(args, tokenizer)
        seen = Collect()
        if ours:
            trainer.prepare_model(args, model)
            out.mkdir()
            trainer.train(model, trainer.make_optimizer(args), CacheDataset(train_set), CacheDataset(valid_set),
                          trainer.training_args(args, out), callback=seen)
        else:
            train_model(args, model, train_set, valid_set, training_callback=seen)
        return seen.rows, {k: np.array(v) for k, v in tree_flatten(model.trainable_parameters())}

    theirs, their_weights = run(ours=False)
    ours, our_weights = run(ours=True)
    assert [r[:2] for r in ours] == [("val", 0), ("train", 2), ("val", 2), ("train", 4), ("val", 5), ("train", 6),
                                     ("val", 6), ("train", 7)]
    assert ours == theirs
    assert our_weights.keys() == their_weights.keys()
    assert all(np.array_equal(our_weights[k], their_weights[k]) for k in our_weights)
    final = {k: np.array(v) for k, v in mx.load(str(tmp_path / "ours" / "adapters.safetensors")).items()}
    assert all(np.array_equal(final[k], our_weights[k]) for k in final)


def test_validation_sample_is_fixed_by_the_seed_and_takes_all_when_fewer():
    records = [olelo.chat_record(f"s{i}", f"t{i}", "haw-en", f"p{i}") for i in range(10)]
    tok = types.SimpleNamespace(encode=lambda s: list(s))
    world = types.SimpleNamespace(rank=lambda: 0, size=lambda: 1)
    a = trainer.ValChrf(records, 4, 0, tok, 32, world)
    assert [r["id"] for r in a.records] == [r["id"] for r in trainer.ValChrf(records, 4, 0, tok, 32, world).records]
    assert len(a.records) == 4 and [r["id"] for r in a.records] != [r["id"] for r in
                                                                    trainer.ValChrf(records, 4, 1, tok, 32, world).records]
    assert len(trainer.ValChrf(records, 64, 0, tok, 32, world).records) == 10
    # Ranks split the sample between them.
    two = [trainer.ValChrf(records, 5, 0, tok, 32, types.SimpleNamespace(rank=lambda r=r: r, size=lambda: 2)).mine
           for r in (0, 1)]
    assert sorted(two[0] + two[1]) == list(range(5)) and not set(two[0]) & set(two[1])
    with pytest.raises(olelo.UserError, match="VAL_GEN needs chat records"):
        trainer.ValChrf([{"text": "plain"}], 4, 0, tok, 32, world)


@pytest.fixture(scope="module")
def chrf_run(tmp_path_factory, tiny_model, tiny_data):
    """A run that selects best/ by validation chrF++ (4 sentences: 2 validation pairs twice)."""
    root = tmp_path_factory.mktemp("chrf")
    data = root / "data"
    records = olelo.read_jsonl(tiny_data / "valid.jsonl") + olelo.read_jsonl(tiny_data / "train.jsonl")[:2]
    olelo.atomic_write_jsonl(data / "valid.jsonl", records)
    for split in ("train", "test"):
        (data / f"{split}.jsonl").write_bytes((tiny_data / f"{split}.jsonl").read_bytes())
    cmd = [sys.executable, "scripts/train.py", "--runs-dir", str(root / "runs"), "--adapters-dir",
           str(root / "adapters"), "--val-gen", "3", "--", "mlx_lm.lora", "--model", str(tiny_model), "--train",
           "--data", str(data), "--iters", "6", "--batch-size", "2", "--num-layers", "4", "--learning-rate", "1e-2",
           "--steps-per-eval", "2", "--steps-per-report", "2", "--save-every", "2"]
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    run_dir = (root / "runs" / "latest").resolve()
    return {"run_dir": run_dir, "adapters": root / "adapters" / run_dir.name, "data": data, "model": tiny_model,
            "cmd": cmd, "stdout": out.stdout}


@pytest.mark.slow
def test_val_chrf_is_translate_py_scored_by_sacrebleu(chrf_run):
    # Each validation scores the weights of its iteration; best/ holds the best one's.
    from olelo import scores
    from olelo import generate

    vals = [m for m in map(json.loads, (chrf_run["run_dir"] / "metrics.jsonl").read_text().splitlines())
            if m["type"] == "val"]
    assert all(m["val_gen_n"] == 3 and m["val_gen_time"] > 0 for m in vals)
    best = json.loads((chrf_run["adapters"] / "best" / "best.json").read_text())
    assert best["criterion"] == "val_chrf"
    assert best["val_chrf"] == max(m["val_chrf"] for m in vals)
    assert best["iteration"] == next(m["iteration"] for m in vals if m["val_chrf"] == best["val_chrf"])

    records = olelo.read_jsonl(chrf_run["data"] / "valid.jsonl")
    picked = trainer.ValChrf(records, 3, 0, types.SimpleNamespace(encode=lambda s: [0] * len(s)), 32,
                             types.SimpleNamespace(rank=lambda: 0, size=lambda: 1)).records
    model, tokenizer = olelo.load_model(str(chrf_run["model"]), adapter_path=str(chrf_run["adapters"] / "best"))
    rows = generate.translate(model, tokenizer, picked, generate.default_max_tokens(tokenizer, picked), 32,
                               progress=False)
    chrf = scores.new_metrics()["chrf"].corpus_score([r["hypothesis"] for r in rows], [[r["reference"] for r in rows]])
    assert round(chrf.score, 4) == best["val_chrf"]
    manifest = json.loads((chrf_run["run_dir"] / "manifest.json").read_text())
    assert manifest["lab_options"]["select"] == "val_chrf" and manifest["best"]["criterion"] == "val_chrf"
    assert "val chrF++" in (chrf_run["run_dir"] / "train.log").read_text()


@pytest.mark.slow
def test_select_val_loss_picks_the_lowest_val_loss(chrf_run):
    cmd = list(chrf_run["cmd"])
    cmd[cmd.index("--val-gen")] = "--select"
    cmd[cmd.index("--select") + 1] = "val_loss"
    cmd.insert(cmd.index("--select"), "--force")
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    run_dir = chrf_run["run_dir"].with_name(chrf_run["run_dir"].name + "-a2")
    vals = [m for m in map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines()) if m["type"] == "val"]
    best = json.loads((run_dir / "manifest.json").read_text())["best"]
    assert best["criterion"] == "val_loss" and best["val_loss"] == min(m["val_loss"] for m in vals)
    assert all("val_chrf" in m for m in vals)  # --val-gen is still on (64 by default): recorded, not selecting


def test_select_and_keep_are_checked_and_select_names_the_run_only_with_patience():
    with pytest.raises(olelo.UserError, match="needs --val-gen > 0"):
        run.parse_lab_args(["--val-gen", "0", "--select", "val_chrf", "--", "mlx_lm.lora"])
    with pytest.raises(olelo.UserError, match="--keep 0"):
        run.parse_lab_args(["--keep", "0", "--", "mlx_lm.lora"])
    assert run.parse_lab_args(["--", "mlx_lm.lora"])[0].select == "val_chrf"
    assert run.parse_lab_args(["--val-gen", "0", "--", "mlx_lm.lora"])[0].select == "val_loss"
    args = {"model": "m", "iters": 10, "batch_size": 1, "learning_rate": 1e-5, "seed": 0, "val_gen": 64}
    assert olelo.run_stamp("d", {**args, "select": "val_chrf"}) == olelo.run_stamp("d", {**args, "select": "val_loss"})
    assert olelo.run_stamp("d", {**args, "patience": 3, "select": "val_chrf"}).endswith("-p3chrf64-s0")
    assert olelo.run_stamp("d", {**args, "patience": 3, "select": "val_loss"}).endswith("-p3-s0")


@pytest.mark.slow
def test_generating_for_validation_changes_nothing_in_training(tmp_path, tiny_train):
    # Same run with and without VAL_GEN (dropout on: mx.random is in play): same weights and losses.
    import mlx.core as mx

    def run(root, val_gen):
        tiny_train(root, "--learning-rate", "1e-3", iters=6, lab_opts=["--val-gen", val_gen, "--select", "val_loss",
                                                                         "--dropout", "0.1"])
        run_dir = (root / "runs" / "latest").resolve()
        rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
        weights = mx.load(str(root / "adapters" / run_dir.name / "adapters.safetensors"))
        return [(r["iteration"], r.get("train_loss"), r.get("val_loss")) for r in rows], weights, rows

    with_gen, w1, rows = run(tmp_path / "gen", "2")
    without, w2, _ = run(tmp_path / "nogen", "0")
    assert any("val_chrf" in r for r in rows)
    assert with_gen == without
    assert all(np.array_equal(np.array(w1[k]), np.array(w2[k])) for k in w1)


@pytest.mark.slow
def test_val_gen_loop_stop_is_recorded_and_counted(chrf_run, tmp_path):
    # the same run with the stop and per-sentence caps in VAL_GEN: another run folder only when patience reads val chrF++
    cmd = list(chrf_run["cmd"])
    at = cmd.index("--")
    cmd[cmd.index("--runs-dir") + 1], cmd[cmd.index("--adapters-dir") + 1] = str(tmp_path / "r"), str(tmp_path / "a")
    cmd[at:at] = ["--val-gen-loop-stop", "--val-gen-cap", "each"]
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    run_dir = (tmp_path / "r" / "latest").resolve()
    assert run_dir.name == chrf_run["run_dir"].name
    options = json.loads((run_dir / "manifest.json").read_text())["lab_options"]
    assert options["val_gen_loop_stop"] is True and options["val_gen_cap"] == "each"
    vals = [m for m in map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines()) if m["type"] == "val"]
    assert vals and all(isinstance(m["val_gen_stopped"], int) and 0 <= m["val_gen_stopped"] <= 3 for m in vals)


def test_clip_by_norm_scales_a_long_gradient_to_the_max_norm_and_leaves_a_short_one():
    import mlx.core as mx

    grads = {"a": mx.array([3.0, 4.0]), "b": {"c": mx.array([[12.0]])}}
    norm = trainer.global_norm(grads)
    assert norm.dtype == mx.float32 and norm.item() == 13.0  # sqrt(9 + 16 + 144): all arrays together
    for max_norm in (1.0, 0.25, 12.9):  # binds: the norm becomes max_norm, the direction is kept
        clipped = trainer.clip_by_norm(grads, max_norm, norm)
        assert abs(trainer.global_norm(clipped).item() - max_norm) < 1e-6
        for before, after in ((grads["a"], clipped["a"]), (grads["b"]["c"], clipped["b"]["c"])):
            assert np.allclose(np.array(after), np.array(before) * max_norm / 13.0, rtol=1e-6, atol=0)
    for max_norm in (13.0, 100.0, 1e30):  # does not bind: the very same numbers
        clipped = trainer.clip_by_norm(grads, max_norm, norm)
        assert np.array_equal(np.array(clipped["a"]), np.array(grads["a"]))
        assert np.array_equal(np.array(clipped["b"]["c"]), np.array(grads["b"]["c"]))
    zero = {"a": mx.zeros((3,))}  # a zero gradient stays zero (no 0/0)
    assert np.array_equal(np.array(trainer.clip_by_norm(zero, 1.0, trainer.global_norm(zero))["a"]), np.zeros(3))
    # bfloat16 gradients: the norm comes in float32, and clipped arrays keep their dtype.
    half = {"w": mx.full((256,), 4.0, dtype=mx.bfloat16)}
    assert trainer.global_norm(half).dtype == mx.float32 and trainer.global_norm(half).item() == 64.0
    assert trainer.clip_by_norm(half, 1.0, trainer.global_norm(half))["w"].dtype == mx.bfloat16


class CollectAll:
    def __init__(self):
        self.train, self.val = [], []

    def on_train_loss_report(self, info):
        self.train.append(dict(info))

    def on_val_loss_report(self, info):
        self.val.append(dict(info))


@pytest.mark.slow
def test_grad_norm_is_reported_and_a_clip_changes_training_only_when_it_binds(tmp_path, tiny_model, tiny_data):
    # 6 iterations, updates every 2 (gradient accumulation), reports every 3: report windows
    # with 1 and 2 updates. grad_clip=1e30 never binds: bit for bit the unclipped run.
    from mlx.utils import tree_flatten
    from mlx_lm import load
    from mlx_lm.tuner.datasets import CacheDataset, load_dataset

    cmd = ["mlx_lm.lora", "--model", str(tiny_model), "--train", "--data", str(tiny_data), "--iters", "6",
           "--batch-size", "2", "--num-layers", "4", "--steps-per-report", "3", "--steps-per-eval", "100",
           "--save-every", "100", "--grad-accumulation-steps", "2", "--learning-rate", "1e-2"]
    config = run_config(types.SimpleNamespace(rank=None, scale=None, dropout=None, lr_schedule="none", warmup=None),
                        vars(mlx_lora_args(cmd)))

    def train(name, grad_clip):
        out = tmp_path / name
        args = mlx_lora_args(cmd + ["-c", "unused", "--adapter-path", str(out)], config)
        model, tokenizer = load(args.model)
        np.random.seed(args.seed)
        train_set, valid_set, _ = load_dataset(args, tokenizer)
        seen = CollectAll()
        trainer.prepare_model(args, model)
        out.mkdir()
        trainer.train(model, trainer.make_optimizer(args), CacheDataset(train_set), CacheDataset(valid_set),
                      trainer.training_args(args, out), callback=seen, grad_clip=grad_clip)
        return seen.train, {k: np.array(v) for k, v in tree_flatten(model.trainable_parameters())}

    plain, plain_w = train("plain", None)
    loose, loose_w = train("loose", 1e30)
    tight, tight_w = train("tight", 1e-3)
    assert [r["iteration"] for r in plain] == [3, 6]
    for rows in (plain, loose, tight):
        for r in rows:
            assert np.isfinite(r["grad_norm"]) and r["grad_norm"] > 0 and r["grad_norm_max"] >= r["grad_norm"]
    assert plain[0]["grad_norm"] == plain[0]["grad_norm_max"]  # one update (iteration 2) in the first report
    keys = ("iteration", "train_loss", "learning_rate", "trained_tokens", "grad_norm", "grad_norm_max")
    assert [{k: r[k] for k in keys} for r in loose] == [{k: r[k] for k in keys} for r in plain]
    assert all(np.array_equal(loose_w[k], plain_w[k]) for k in plain_w)
    # A binding clip: the first update's gradient (measured before clipping) is the same,
    # everything after it differs.
    assert tight[0]["grad_norm"] == plain[0]["grad_norm"] and tight[0]["grad_norm"] > 1e-3
    assert tight[1]["train_loss"] != plain[1]["train_loss"]
    assert any(not np.array_equal(tight_w[k], plain_w[k]) for k in plain_w)
