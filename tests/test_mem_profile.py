"""Tests of the memory tools: olelo/memory.py (padding rule, the peak-memory fit),
memory_guidelines.py (section between markers), sort_by_length.py and
auto_batch.py. Hermetic: synthetic measurements, and the session's tiny model
where a tokenizer is needed."""

import json
import os

import pytest

import olelo
from conftest import mem_profile_options, script
from olelo import auto_batch, mem_profile, memory, memory_guidelines

STATIC, PER_TOKEN, PER_TOKEN_WIDTH = 2.0e8, {"off": 3.0e5, "on": 1.2e5}, {"off": 150.0, "on": 10.0}


def pick(argv) -> dict:
    """What auto_batch.py --json prints: olelo.auto_batch's pick for these options (launch.py's call)."""
    return json.loads(json.dumps(auto_batch.pick(auto_batch.parse_args(argv))))


@pytest.fixture
def model(request):
    """The session's tiny model (tests/conftest.py), or skip when there is none."""
    try:
        return request.getfixturevalue("tiny_model")
    except pytest.FixtureLookupError:
        pytest.skip("no tiny_model fixture in tests/conftest.py")


def synthetic_points():
    """Exact measurements of peak = 2e8 + batch * width * (per_token[gc] + per_token_width[gc] * width)."""
    points = []
    for gc in (False, True):
        mode = memory.GC_MODES[gc]
        for batch, width in ((1, 129), (2, 129), (4, 513), (8, 257), (2, 1025)):
            peak = STATIC + batch * width * (PER_TOKEN[mode] + PER_TOKEN_WIDTH[mode] * width)
            points.append({"batch": batch, "width": width, "grad_checkpoint": gc, "peak_bytes": peak})
    return points


# ---------------------------------------------------------------- padding and fit

@pytest.mark.parametrize("longest,max_seq,width", [
    (1, 2048, 33), (32, 2048, 33), (33, 2048, 65), (1715, 2048, 1729), (1715, 512, 512), (128, 128, 128),
])
def test_padded_width_is_mlx_lm_rule(longest, max_seq, width):
    assert memory.padded_width(longest, max_seq) == width


def test_batch_padding_counts_chunks_in_file_order_and_drops_the_rest():
    # chunks [10, 40] -> width 65, [50, 5] -> 65; the trailing 7 is dropped as mlx-lm drops it
    assert memory.batch_padding([10, 40, 50, 5, 7], 2, 2048) == (105, 260)
    assert memory.batch_padding([10, 5, 50, 40], 2, 2048) == (105, 2 * 33 + 2 * 65)  # sorted: less padding
    assert memory.batch_padding([100, 3000], 2, 2048) == (2148, 4096)  # truncated to max_seq


def test_fit_recovers_known_static_and_per_token():
    fit = memory.fit_peak(synthetic_points())
    assert fit["static_bytes"] == pytest.approx(STATIC, rel=1e-9)
    for mode in ("off", "on"):
        assert fit["per_token_bytes"][mode] == pytest.approx(PER_TOKEN[mode], rel=1e-9)
        assert fit["per_token_width_bytes"][mode] == pytest.approx(PER_TOKEN_WIDTH[mode], rel=1e-7)
    assert fit["max_abs_error_pct"] < 1e-9
    assert memory.predict_peak(fit, 16, 2049, True) == pytest.approx(2.0e8 + 16 * 2049 * (1.2e5 + 10 * 2049), rel=1e-9)


def test_fit_without_width_term_when_one_width_was_measured():
    points = [{"batch": b, "width": 129, "grad_checkpoint": 0, "peak_bytes": 5e7 + 2e5 * b * 129} for b in (1, 2, 4)]
    fit = memory.fit_peak(points)
    assert fit["per_token_width_bytes"] == {}
    assert (fit["static_bytes"], fit["per_token_bytes"]["off"]) == (pytest.approx(5e7), pytest.approx(2e5))
    assert memory.predict_peak(fit, 8, 1025, False) == pytest.approx(5e7 + 2e5 * 8 * 1025)


def test_fit_with_one_mode_and_too_few_points():
    only_off = [p for p in synthetic_points() if not p["grad_checkpoint"]]
    assert set(memory.fit_peak(only_off)["per_token_bytes"]) == {"off"}
    with pytest.raises(olelo.UserError, match="no measured point"):
        memory.fit_peak([])  # every point of a sweep failed
    with pytest.raises(olelo.UserError, match="need at least two"):
        memory.fit_peak(only_off[:1])
    with pytest.raises(olelo.UserError, match="need at least two"):  # one batch x width only
        memory.fit_peak([only_off[0], {**only_off[0]}])


def test_longest_only_sweep_holds_out_the_largest_batch_not_every_point():
    # --longest-only marks every point longest_only; only the 2048 check points
    # (longest_check) and the hold-out batch are left out of the first fit.
    a = mem_profile_options(longest_only=True, batch_sizes=[1, 2, 4], max_seqs=[512], loss="default")
    assert a.longest_only and mem_profile.sweep_stamp(a).endswith("-longest")
    assert not mem_profile.sweep_stamp(mem_profile_options(loss="default")).endswith("-longest")
    rows = [{**p, "status": "ok", "longest_only": True} for p in synthetic_points() if p["batch"] in (1, 2, 4)]
    rows.append({"batch": 1, "width": 1729, "grad_checkpoint": False, "status": "ok", "longest_only": True,
                 "longest_check": True, "peak_bytes": STATIC + 1729 * (PER_TOKEN["off"] + PER_TOKEN_WIDTH["off"] * 1729)})
    _, check = mem_profile.fit_and_check(rows, holdout_batch=4)
    assert [r["heldout"] for r in rows] == [int(r["batch"] == 4 or "longest_check" in r) for r in rows]
    assert check["holdout_longest"] and check["max_abs_error_pct"] < 1e-6


# ---------------------------------------------------------------- guidelines

def write_results(folder, model="models/tiny-gemma3"):
    """A results.csv/results.json pair as mem_profile.py writes them, from synthetic points."""
    rows = []
    for p in synthetic_points():
        rows.append({**p, "model": model, "data": "data/finetuning/large", "max_seq": 2048, "iters": 8, "warmup": 2,
                     "num_layers": 6, "status": "ok", "max_rss_bytes": 1, "tokens_in_batch": p["batch"] * p["width"],
                     "longest_seq": p["width"] - 1, "padded_fraction": 0.25, "distinct_widths": 1, "warmup_s": 1.5,
                     "steady_s": 2.0, "steady_tokens": 1000, "tok_s": 500.0, "it_s": 3.0, "load1_start": 1.0,
                     "load1_end": 1.5, "wall_s": 4.0})
    fit, check = mem_profile.fit_and_check(rows, holdout_batch=8)
    mem_profile.write_csv(rows, folder / "results.csv")
    olelo.atomic_write_json(folder / "results.json", {
        "stamp": folder.name, "created": "2025-01-01T00:00:00+00:00", "command": "python scripts/mem_profile.py",
        "model": model, "dataset_longest": 1715, "lora": {"rank": 8, "num_layers": 6},
        "environment": {"mlx_device": "Device(cpu, 0)", "cpu_count": 2}, "fit": fit, "heldout_check": check})
    return fit


def write_profiles(results, model, **edits):
    """One synthetic profile of MODEL per name under RESULTS; edits[name](results.json) -> its new content."""
    for name, edit in edits.items():
        (results / name).mkdir(parents=True)
        write_results(results / name, model=str(model))
        if edit:
            path = results / name / "results.json"
            olelo.atomic_write_json(path, edit(json.loads(path.read_text())))


def eighth_per_token(r):
    """results.json r with its fit's per-token costs divided by 8 (the static part kept)."""
    fit = r["fit"]
    return {**r, "fit": {**fit, "per_token_bytes": {m: v / 8 for m, v in fit["per_token_bytes"].items()},
                         "per_token_width_bytes": {m: v / 8 for m, v in fit["per_token_width_bytes"].items()}}}


def aloha_data(tmp_path, model):
    """(data folder with a train.jsonl of 19 growing records, the width its longest pads to at 2048)."""
    data = tmp_path / "data"
    olelo.atomic_write_jsonl(data / "train.jsonl", [olelo.chat_record("Aloha " * n, "Hello", "haw-en", str(n))
                                                    for n in range(1, 20)])
    _, lengths = memory.token_lengths(str(model), data / "train.jsonl")
    return data, memory.padded_width(max(lengths), 2048)


NOTES = "# Notes\n\nbefore\n\n<!-- memory-guidelines:begin -->\nold text\n<!-- memory-guidelines:end -->\n\nafter\n"


def test_guidelines_written_between_markers_and_idempotent(tmp_path):
    folder = tmp_path / "stamp"
    folder.mkdir()
    write_results(folder)
    notes = tmp_path / "NOTES.md"
    notes.write_text(NOTES)
    assert script("memory_guidelines.py", folder, "--notes", notes).returncode == 0
    first = notes.read_text()
    assert first.startswith("# Notes\n\nbefore\n\n<!-- memory-guidelines:begin -->\n## Memory guidelines")
    assert first.endswith("<!-- memory-guidelines:end -->\n\nafter\n")
    assert "old text" not in first
    assert "`tiny-gemma3`" in first and "do not transfer to gemma-3-4b" in first
    assert "python scripts/mem_profile.py" in first  # the command behind the numbers
    assert "### ~100 GB available" in first and "### 16 GB available\nBudget 12.80 GB" in first
    # 16 GB less 20 % = 12.8 GB; at width 1729 without checkpointing a sequence costs
    # 1729 * (3e5 + 150 * 1729) = 967.1 MB: batch 8 fits (2e8 + 8 * 967.1 MB = 7.94 GB), 16 does not (15.7 GB)
    assert "`--batch-size 8`: predicted peak 7.94 GB (batches 1729 wide)" in first
    again = script("memory_guidelines.py", folder, "--notes", notes)
    assert again.returncode == 0
    assert notes.read_text() == first
    assert "unchanged" in again.stdout


def test_guidelines_say_when_the_fit_has_no_width_term():
    rows = [{**p, "status": "ok", "max_seq": 512, "longest_only": True, "padded_fraction": 0.0, "tok_s": 50.0,
             "warmup_s": 1.0, "load1_start": 1.0, "load1_end": 1.0, "longest_seq": 900}
            for p in synthetic_points() if p["width"] == 129]
    mem_profile.fit_and_check(rows, holdout_batch=0)
    text = memory_guidelines.section(rows, {"model": "models/gemma-3-270m-f32", "dataset_longest": 1782}, 0.2, "x")
    assert "All points of the fit are 129 wide: it has no width term" in text
    assert "| 2 (longest examples) |" in text and "| 1 (longest example) |" in text
    wide = [{**r, **p} for r, p in zip(rows * 5, synthetic_points())]  # five widths: a width term
    mem_profile.fit_and_check(wide, holdout_batch=0)
    assert "no width term" not in memory_guidelines.section(wide, {"model": "m", "dataset_longest": 1782}, 0.2, "x")


def test_guidelines_without_markers_is_a_clear_error(tmp_path):
    folder = tmp_path / "stamp"
    folder.mkdir()
    write_results(folder)
    notes = tmp_path / "NOTES.md"
    notes.write_text("# Notes\n\nno markers here\n")
    out = script("memory_guidelines.py", folder, "--notes", notes)
    assert out.returncode == 2 and "memory-guidelines:begin" in out.stderr  # a UserError
    assert notes.read_text() == "# Notes\n\nno markers here\n"


# ---------------------------------------------------------------- sort_by_length

def test_sort_by_length_is_a_stable_sorted_permutation(tmp_path, model):
    texts = ["Aloha kākou, e nā hoa a pau o kēia ʻāina nani.", "Aloha.", "Pehea ʻoe?", "Aloha.",
             "Ua hele ke aliʻi i ka moku a holo i Kahiki.", "Pehea ʻoe?"]
    rows = [olelo.chat_record(t, t, "haw-en", f"id{i}") for i, t in enumerate(texts)]
    src, out = tmp_path / "train.jsonl", tmp_path / "sorted.jsonl"
    olelo.atomic_write_jsonl(src, rows)
    assert script("sort_by_length.py", src, "-o", out, "--model", model).returncode == 0
    _, lengths = memory.token_lengths(str(model), out)
    assert lengths == sorted(lengths)
    assert sorted(src.read_text().splitlines()) == sorted(out.read_text().splitlines())
    ids = [r["id"] for r in olelo.read_jsonl(out)]
    assert ids.index("id1") < ids.index("id3") and ids.index("id2") < ids.index("id5")  # ties keep file order


# ---------------------------------------------------------------- auto_batch

def test_choose_largest_batch_from_a_fit():
    fit = {"static_bytes": 1e9, "per_token_bytes": {"off": 1e5, "on": 4e4}}
    # width 1025: off 1e9 + 1.025e8*b <= 2e9 -> b <= 9.7 -> 8; on 1e9 + 4.1e7*b -> b <= 24.4 -> 16
    pick = auto_batch.choose(fit, 1025, 2e9, [False, True])
    assert (pick["batch_size"], pick["grad_checkpoint"]) == (16, True)
    assert pick["per_mode"]["off"]["largest"] == 8 and pick["per_mode"]["off"]["next"] == 16
    assert pick["predicted_peak_bytes"] == pytest.approx(1e9 + 4e4 * 1025 * 16)
    pick = auto_batch.choose(fit, 1025, 2e9, [False])
    assert (pick["batch_size"], pick["grad_checkpoint"]) == (8, False)
    # same batch either way (1): no checkpointing (faster) wins
    close = {"static_bytes": 1e9, "per_token_bytes": {"off": 1e5, "on": 0.9e5}}
    assert auto_batch.choose(close, 1025, 1.15e9, [False, True])["grad_checkpoint"] is False
    assert auto_batch.choose(fit, 1025, 0.9e9, [False, True])["batch_size"] == 0


def test_preflight_warning_names_the_numbers():
    fit = {"static_bytes": 1e9, "per_token_bytes": {"off": 1e5}}
    assert memory.preflight_warning(fit, 1000, 4, False, 2048, 2e9) is None  # 1e9 + 1e5*4*1025 = 1.41 GB
    msg = memory.preflight_warning(fit, 1000, 16, False, 2048, 2e9)  # 2.64 GB
    assert "2.64 GB" in msg and "2.00 GB" in msg and "1000 tokens, padded to 1025" in msg
    assert memory.preflight_warning(fit, 1000, 16, True, 2048, 2e9) is None  # no checkpointed points: no claim


def test_auto_batch_uses_newest_profile_for_the_model(tmp_path, model):
    # Profiles without a "loss" were made with mlx-lm's default loss: so is the run here.
    data, width = aloha_data(tmp_path, model)
    results = tmp_path / "mem-profile"
    write_profiles(results, model, new=None,
                   old=lambda r: {**r, "created": "2024-01-01", "fit": {**r["fit"], "static_bytes": 5e9}})
    budget = 2.0e8 + 4 * width * (3.0e5 + 150 * width) + 1  # off: exactly batch 4; on: batch 8 fits too
    assert 2.0e8 + 8 * width * (1.2e5 + 10 * width) < budget
    out = pick(["--model", str(model), "--data", str(data), "--results-dir", str(results),
                "--available", str(budget / 0.8), "--loss", "default", "--json"])
    assert (out["batch_size"], out["grad_checkpoint"]) == (8, True)
    assert out["source"].endswith("new/results.json") and out["width"] == width
    flags = script("auto_batch.py", "--model", model, "--data", data, "--results-dir", results,
                   "--available", budget / 0.8, "--loss", "default", "--grad-checkpoint", "off", "--flags")
    assert flags.returncode == 0
    assert flags.stdout == "--batch-size 4\n"
    # A validation split of 3 examples caps the batch: mlx-lm refuses a batch larger than a split.
    olelo.atomic_write_jsonl(data / "valid.jsonl", olelo.read_jsonl(data / "train.jsonl")[:3])
    assert pick(["--model", str(model), "--data", str(data), "--results-dir", str(results),
                 "--available", str(budget / 0.8), "--loss", "default", "--json"])["batch_size"] == 2


def test_auto_batch_uses_the_profile_of_the_runs_loss(tmp_path, model):
    # BATCH=auto with LOSS=chunked: a (newer) default-loss profile says nothing about
    # the chunked loss's memory; only a profile made with the chunked loss counts.
    data, width = aloha_data(tmp_path, model)
    results = tmp_path / "mem-profile"
    # The lean profile is older and its per-token cost is 1/8: batch 8 where the default fits 1.
    write_profiles(results, model, default=None,
                   lean=lambda r: {**eighth_per_token(r), "created": "2024-01-01", "loss": "chunked"})
    available = (2.0e8 + width * (3.0e5 + 150 * width) + 1) / 0.8  # default loss, no checkpoint: batch 1 exactly
    args = ["--model", str(model), "--data", str(data), "--results-dir", str(results), "--available", str(available),
            "--grad-checkpoint", "off", "--json", "--loss", "default"]
    out = pick(args)
    assert out["batch_size"] == 1 and out["source"].startswith(f"fit of {results / 'default' / 'results.json'}")
    out = pick(args + ["--loss", "chunked"])
    assert out["batch_size"] == 8 and out["loss"] == "chunked" and "lean/results.json" in out["source"]
    # No profile with that loss: no silent fallback to the other loss's profile.
    (results / "lean" / "results.json").unlink()
    with pytest.raises(olelo.UserError, match="LOSS=chunked"):
        pick(args + ["--loss", "chunked", "--no-probe"])


def test_auto_batch_takes_the_newest_profile_that_measured_the_runs_checkpoint_mode(tmp_path, model):
    # A newer profile made without checkpointing says nothing of a checkpointed run: the older
    # one that measured it is used, not a probe.
    data, _ = aloha_data(tmp_path, model)
    results = tmp_path / "mem-profile"

    def off_only(r):
        fit = r["fit"]
        return {**r, "created": "2999-01-01", "fit": {**fit, "per_token_bytes": {"off": fit["per_token_bytes"]["off"]},
                                                      "per_token_width_bytes": {"off": fit["per_token_width_bytes"]["off"]}}}

    write_profiles(results, model, both=None, off=off_only)
    args = ["--model", str(model), "--data", str(data), "--results-dir", str(results), "--available", "1e12",
            "--loss", "default", "--no-probe", "--json"]
    assert "both/results.json" in pick(args + ["--grad-checkpoint", "on"])["source"]
    assert "off/results.json" in pick(args + ["--grad-checkpoint", "off"])["source"]


def test_auto_batch_combines_one_profile_per_checkpoint_mode(tmp_path, model):
    # GRAD_CKPT=auto wants both modes; a profile of each (mem-profile run once per GRAD_CKPT)
    # serves as well as one profile of both, each mode with its own static term, rather than a
    # probe (on CUDA four probe runs took 256 s).
    data, width = aloha_data(tmp_path, model)
    results = tmp_path / "mem-profile"
    budget = 2.0e8 + 4 * width * (3.0e5 + 150 * width) + 1  # off, static 2e8: exactly batch 4
    static_on = budget - 2 * width * (1.2e5 + 10 * width) - 1  # on: exactly batch 2

    def only(mode, static):
        def edit(r):
            fit = r["fit"]
            return {**r, "fit": {**fit, "static_bytes": static, "per_token_bytes": {mode: fit["per_token_bytes"][mode]},
                                 "per_token_width_bytes": {mode: fit["per_token_width_bytes"][mode]}}}
        return edit

    write_profiles(results, model, off=only("off", 2.0e8), on=only("on", static_on))
    args = ["--model", str(model), "--data", str(data), "--results-dir", str(results), "--available", str(budget / 0.8),
            "--loss", "default", "--no-probe", "--json"]
    out = pick(args)
    assert (out["batch_size"], out["grad_checkpoint"]) == (4, False)
    assert out["per_mode"]["on"]["largest"] == 2 and out["per_mode"]["off"]["largest"] == 4
    assert "off/results.json (gc off)" in out["source"] and "on/results.json (gc on)" in out["source"]
    assert out["fit"]["static_bytes_per_mode"] == {"off": 2.0e8, "on": static_on}
    (results / "on" / "results.json").unlink()  # one mode alone does not serve GRAD_CKPT=auto
    with pytest.raises(olelo.UserError, match="no mem-profile results"):
        pick(args)


def test_under_a_memory_limit_auto_batch_takes_a_profile_measured_at_the_need(tmp_path, model):
    # MEM_LIMIT: the peak stays near the limit unless a step needs more, so BATCH=auto goes by
    # the need: only a profile whose every point ran past its limit counts, and the budget is
    # at most the limit.
    data, width = aloha_data(tmp_path, model)
    results = tmp_path / "mem-profile"
    rows = [{"status": "ok", "peak_bytes": 2e8}, {"status": "ok", "peak_bytes": 9e8}]


    write_profiles(results, model, own=lambda r: {**r, "rows": rows},
                   need=lambda r: {**eighth_per_token(r), "created": "2024-01-01", "memory_limit_gb": 0.001, "rows": rows},
                   above=lambda r: {**eighth_per_token(r), "created": "2999-01-01", "memory_limit_gb": 0.5, "rows": rows})
    assert [memory.measured_at_need(json.loads((results / n / "results.json").read_text()))
            for n in ("own", "need", "above")] == [False, True, False]  # 0.5 GB: the first point stayed under it
    available = (2.0e8 + width * (3.0e5 + 150 * width) + 1) / 0.8  # own-limit profile: batch 1 exactly
    args = ["--model", str(model), "--data", str(data), "--results-dir", str(results), "--available", str(available),
            "--grad-checkpoint", "off", "--loss", "default", "--json"]
    out = pick(args)
    assert out["batch_size"] == 1 and "own/results.json" in out["source"] and out["memory_limit_gb"] is None
    out = pick(args + ["--memory-limit-gb", "100"])
    assert out["batch_size"] == 8 and "need/results.json" in out["source"] and out["budget_bytes"] == available * 0.8
    limit = (2.0e8 + 2 * width * (3.0e5 + 150 * width) / 8 + 10) / 1e9  # the need of batch 2, just
    out = pick(args + ["--memory-limit-gb", repr(limit)])  # the limit binds
    assert out["batch_size"] == 2 and out["budget_bytes"] == pytest.approx(limit * 1e9)
    (results / "need" / "results.json").unlink()
    with pytest.raises(olelo.UserError, match="measured at the need.*MEM_LIMIT=0.001"):
        pick(args + ["--memory-limit-gb", "100", "--no-probe"])
    with pytest.raises(olelo.UserError, match="--memory-limit-gb"):
        pick(args + ["--memory-limit-gb", "0"])


def test_set_memory_limit_sets_mlx_limit_and_refuses_non_positive():
    import mlx.core as mx

    before = mx.get_memory_limit()
    try:
        memory.set_memory_limit(1.5)
        assert mx.get_memory_limit() == 1_500_000_000
        memory.set_memory_limit(None)  # MLX's own: left as it is
        assert mx.get_memory_limit() == 1_500_000_000
        for bad in (0, -2.0, float("nan"), float("inf")):
            with pytest.raises(olelo.UserError, match="positive number of GB"):
                memory.set_memory_limit(bad)
        assert mx.get_memory_limit() == 1_500_000_000
    finally:
        mx.set_memory_limit(before)


def test_available_memory_on_cuda_is_the_gpus_free_memory(monkeypatch, tmp_path):
    # On an NVIDIA box the host's MemAvailable (128 GB beside an 80 GB card) is not what a
    # batch can use: BATCH=auto and the pre-flight warning must read the GPU's free memory.
    import mlx.core as mx

    monkeypatch.setattr(mx.cuda, "is_available", lambda: True)
    monkeypatch.setattr(mx, "device_info", lambda: {"device_name": "H100", "free_memory": 79 * 2**30})
    assert memory.available_memory_bytes() == 79 * 2**30
    # No free_memory from MLX: nvidia-smi's MiB for the first visible GPU.
    monkeypatch.setattr(mx, "device_info", lambda: {"device_name": "H100"})
    smi = tmp_path / "nvidia-smi"
    smi.write_text('#!/bin/sh\necho "$@" > "$(dirname "$0")/args"\necho 40000\n')
    smi.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,1")
    assert memory.available_memory_bytes() == 40000 * 2**20
    assert "-i 3" in (tmp_path / "args").read_text()
    # Neither: a clear error, not the host's memory.
    smi.write_text("#!/bin/sh\nexit 9\n")
    with pytest.raises(olelo.UserError, match="give BATCH a number"):
        memory.available_memory_bytes()
    # Without CUDA the host's memory, as before.
    monkeypatch.setattr(mx.cuda, "is_available", lambda: False)
    assert memory.available_memory_bytes() > 0 and memory.cuda_free_memory_bytes() is None


def test_newest_profile_keeps_profiles_under_a_memory_limit_apart(tmp_path, model):
    # A profile measured under a memory limit predicts runs under that limit only: a run
    # with MLX's own limit (auto_batch's case) must not take its (lower) peaks.
    results = tmp_path / "mem-profile"
    write_profiles(results, model, own=None,
                   limited=lambda r: {**r, "created": "2999-01-01", "memory_limit_gb": 0.001})
    assert memory.newest_profile(results, str(model))["path"].endswith("own/results.json")
    assert memory.newest_profile(results, str(model), memory_limit_gb=0.001)["path"].endswith("limited/results.json")
    assert memory.newest_profile(results, str(model), memory_limit_gb=2) is None


def test_newest_profile_keeps_profiles_of_dense_quantized_matmul_apart(tmp_path, model):
    # QMATMUL=dense (the default on CUDA) needs GB more than quantized_matmul on a 4-bit model:
    # each run takes profiles made its way; profiles from before QMATMUL count as quantized.
    results = tmp_path / "mem-profile"
    write_profiles(results, model, old=None,
                   dense=lambda r: {**r, "created": "2999-01-01", "quantized_matmul": "dense"})
    assert memory.newest_profile(results, str(model))["path"].endswith("old/results.json")
    assert memory.newest_profile(results, str(model), quantized_matmul="dense")["path"].endswith("dense/results.json")
    dense = json.loads((results / "dense" / "results.json").read_text())
    text = memory_guidelines.section(*memory_guidelines.load_results(str(results / "dense")), 0.2, "x")
    assert dense["quantized_matmul"] == "dense" and "QMATMUL=dense" in text


def test_guidelines_of_a_profile_under_a_limit_say_to_train_under_it(tmp_path):
    write_results(tmp_path)
    plain = memory_guidelines.section(*memory_guidelines.load_results(str(tmp_path)), 0.2, "x")
    meta = json.loads((tmp_path / "results.json").read_text())
    olelo.atomic_write_json(tmp_path / "results.json", {**meta, "memory_limit_gb": 0.001})
    text = memory_guidelines.section(*memory_guidelines.load_results(str(tmp_path)), 0.2, "x")
    assert "MEM_LIMIT" not in plain
    assert "Measured under a memory limit of 0.001 GB" in text
    assert "Budget 12.80 GB (20% kept free; train with `MEM_LIMIT=12.8`)" in text


def test_mem_profile_refuses_a_non_positive_memory_limit(model):
    out = script("mem_profile.py", "--model", model, "--memory-limit-gb", "0")
    assert out.returncode == 2 and "--memory-limit-gb" in out.stderr  # a UserError


# ---------------------------------------------------------------- mem_profile end to end

@pytest.mark.slow
def test_mem_profile_sweep_writes_results_and_fit(tmp_path, model, request):
    """Two real points (batch 1 and 2) in subprocesses on the tiny model: ~10 s."""
    import csv

    try:
        data = request.getfixturevalue("tiny_data")
    except pytest.FixtureLookupError:
        pytest.skip("no tiny_data fixture in tests/conftest.py")
    swept = script("mem_profile.py", "--model", model, "--data", data, "--batch-sizes", "1,2",
                   "--grad-checkpoint", "off", "--max-seqs", "64", "--iters", "2", "--warmup", "1",
                   "--no-longest-check", "--loss", "default", "--out", tmp_path / "runs")
    assert swept.returncode == 0, swept.stderr[-3000:]
    out = tmp_path / "runs" / f"{data.name}-{model.name}-bs1.2-gc0-ms64-it2w1-L16-s0-nolc"
    rows = list(csv.DictReader(open(out / "results.csv")))
    assert [(r["batch"], r["status"]) for r in rows] == [("1", "ok"), ("2", "ok")]
    assert all(int(r["peak_bytes"]) > 0 and float(r["tok_s"]) > 0 for r in rows)
    assert int(rows[1]["peak_bytes"]) > int(rows[0]["peak_bytes"])
    results = json.loads((out / "results.json").read_text())
    assert results["fit"]["n_points"] == 2 and results["heldout_check"] is None
    assert (out / "memory.png").stat().st_size > 0
    assert "fit: static" in swept.stdout
    assert results["memory_limit_gb"] is None and all(r["memory_limit_gb"] is None for r in results["rows"])
    # Under --memory-limit-gb the points' MLX runs with that limit, and the stamp says so.
    assert script("mem_profile.py", "--model", model, "--data", data, "--batch-sizes", "1,2",
                  "--grad-checkpoint", "off", "--max-seqs", "64", "--iters", "2", "--warmup", "1",
                  "--no-longest-check", "--loss", "default", "--memory-limit-gb", "0.001",
                  "--out", tmp_path / "runs").returncode == 0
    results = json.loads((out.with_name(out.name + "-lim0.001") / "results.json").read_text())
    assert results["memory_limit_gb"] == 0.001
    assert [r["memory_limit_bytes"] for r in results["rows"]] == [1_000_000, 1_000_000]
    assert results["quantized_matmul"] == "quantized" and [r["dense_matmul_layers"] for r in results["rows"]] == [0, 0]


@pytest.mark.slow
def test_mem_profile_measures_the_dense_quantized_matmul_apart(tmp_path, tiny_model_4bit, tiny_data):
    """A 4-bit model's point with --quantized-matmul dense switches its layers (recorded) and
    the stamp says -qdense, so BATCH=auto and the guidelines take it for dense runs only."""
    args = ["--model", str(tiny_model_4bit), "--data", str(tiny_data), "--batch-sizes", "2", "--grad-checkpoint",
            "off", "--max-seqs", "64", "--iters", "2", "--warmup", "1", "--no-longest-check", "--loss", "default",
            "--out", str(tmp_path)]
    script("mem_profile.py", *args, "--quantized-matmul", "dense")  # one point: no fit (exit 1), rows kept
    stamp = f"{tiny_data.name}-{tiny_model_4bit.name}-bs2-gc0-ms64-it2w1-L16-s0-nolc-qdense"
    results = json.loads((tmp_path / stamp / "results.json").read_text())
    assert results["quantized_matmul"] == "dense"
    assert results["rows"][0]["status"] == "ok" and results["rows"][0]["dense_matmul_layers"] > 0
