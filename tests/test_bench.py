"""bench/: Make-driven benchmarks at its top, one-off campaigns in bench/campaigns/,
fixture generators beside their fixtures; every result file opens with the same
header, and its "how to reproduce" uses this repo, not one borrowed machine."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
import olelo
from olelo import header

RESULTS = sorted((REPO / "bench" / "results").glob("*.json"))
BORROWED = re.compile(r"/root/|/work/\.device|\.gpu-[a-z]|/tmp/olelo")


def bench(name, *args) -> int:
    """bench/NAME run as make runs it: its exit status (its output shown when it fails)."""
    proc = subprocess.run([sys.executable, str(REPO / "bench" / name), *map(str, args)], cwd=REPO,
                          capture_output=True, text=True)
    if proc.returncode:
        print(proc.stdout[-3000:], proc.stderr[-3000:])
    return proc.returncode


def test_top_level_bench_scripts_are_the_make_driven_ones():
    makefile = (REPO / "Makefile").read_text()
    top = {p.name for p in (REPO / "bench").glob("*.py")} - {"header.py"}
    assert top, "no benchmark at bench/'s top"
    for name in top:
        assert f"bench/{name}" in makefile, f"bench/{name} has no make target: move it to bench/campaigns/"
    for p in (REPO / "bench" / "campaigns").iterdir():
        assert f"bench/campaigns/{p.name}" not in makefile, f"{p.name} is run by make: move it to bench/"


@pytest.mark.parametrize("path", RESULTS, ids=lambda p: p.name)
def test_every_result_file_has_the_common_header(path):
    head = json.loads(path.read_text())["header"]
    assert set(header.FIELDS) <= set(head), sorted(set(header.FIELDS) - set(head))
    assert head["command"] and head["reproduce"] and head["machine"]
    if head["commit"] is None or head["date"] is None or head["load"] is None:
        assert "not recorded" in head.get("note", "") or "not measured" in head.get("note", ""), \
            "a missing field needs a note saying why"
    assert not BORROWED.search(head["reproduce"]), f"reproduce names a borrowed machine's path: {head['reproduce']}"


def test_header_records_what_ran_where_and_under_what_load(tmp_path):
    head = header.start("make bench-eval MODEL=m", argv=["bench/eval_speed.py", "--n", "2"])
    assert head["command"].endswith("bench/eval_speed.py --n 2")
    assert re.fullmatch(r"[0-9a-f]{40}", head["commit"]) and isinstance(head["dirty"], bool)
    assert re.match(r"\d{4}-\d\d-\d\dT", head["date"]) and "cores" in head["machine"]
    header.write(tmp_path / "r.json", head, {"speedup": 2.0})
    written = json.loads((tmp_path / "r.json").read_text())
    assert list(written) == ["header", "speedup"]
    assert set(written["header"]["load"]) == {"start", "end"}


def test_eval_speed_spreads_its_per_process_sample_over_the_batched_set():
    from olelo.generate import spread

    records = list(range(283))
    sample = spread(records, 16)
    assert len(sample) == 16 and sample[0] == 0 and sample == sorted(set(sample))
    assert max(b - a for a, b in zip(sample, sample[1:])) <= 18 and sample[-1] >= 283 - 18
    assert spread(records, 283) == records and spread([7], 1) == [7]
    for k in (0, 284):
        with pytest.raises(olelo.UserError, match="--n-processes"):
            spread(records, k)


def test_checkpoint_after_cotangent_gives_the_gradients_of_no_checkpoint(tiny_model):
    import mlx.core as mx
    import mlx.nn as nn
    from mlx.utils import tree_flatten
    from mlx_lm import load
    from mlx_lm.tuner.trainer import default_loss
    from mlx_lm.tuner.utils import linear_to_lora_layers

    from olelo.grad_checkpoint import checkpoint_after_cotangent as patch

    model, _ = load(str(tiny_model))
    model.freeze()
    linear_to_lora_layers(model, 2, {"rank": 4, "scale": 20.0, "dropout": 0.0})
    for _, m in model.named_modules():  # LoRA's B starts at zero (and A's gradient with it)
        if hasattr(m, "lora_b"):
            m.lora_b = 0.05 * mx.random.normal(m.lora_b.shape, key=mx.random.key(1))
    batch = mx.random.randint(0, 200, (2, 17), key=mx.random.key(0))
    lengths = mx.array([[0, 16], [3, 12]])

    def grads():
        (loss, _), g = nn.value_and_grad(model, default_loss)(model, batch, lengths)
        mx.eval(loss, g)
        return loss.item(), dict(tree_flatten(g))

    loss0, g0 = grads()
    block = type(model.layers[0])
    call = block.__call__
    try:
        patch(model.layers[0])
        assert block.__call__ is not call
        loss1, g1 = grads()
    finally:
        block.__call__ = call
    assert loss1 == pytest.approx(loss0, rel=1e-6)
    assert set(g1) == set(g0) and len(g0) > 0
    for k in g0:
        scale = float(mx.abs(g0[k]).max())
        assert scale > 0, k
        assert float(mx.abs(g1[k] - g0[k]).max()) <= 1e-5 * scale, k


def test_the_benchmarks_refuse_no_sentences(tmp_path):
    from olelo.generate import first_records

    data = tmp_path / "test.jsonl"
    olelo.atomic_write_jsonl(data, [{"i": i} for i in range(3)])
    assert first_records(data, 2) == [{"i": 0}, {"i": 1}] and len(first_records(data, 9)) == 3
    for n in (0, -1):  # a negative N would slice all but the last records
        with pytest.raises(olelo.UserError, match=f"--n {n}:"):
            first_records(data, n)
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(olelo.UserError, match="no records"):
        first_records(tmp_path / "empty.jsonl", 5)


def test_score_speed_times_cold_and_warm_scoring_with_equal_scores(tiny_data, tmp_path):
    out = tmp_path / "score_speed.json"
    assert bench("score_speed.py", "--data", tiny_data, "--bootstrap", "20", "--jobs", "1", "--out", out) == 0
    assert bench("score_speed.py", "--data", tiny_data, "--n", "3", "--bootstrap", "20", "--jobs", "1",
                 "--label", "small", "--out", out) == 0
    result = json.loads(out.read_text())
    assert set(header.FIELDS) <= set(result["header"])
    after, small = result["measurements"]["after"], result["measurements"]["small"]  # the second run kept the first
    assert after["segments"] == 5 and small["segments"] == 3
    assert after["cold_seconds"] > 0 and after["warm_seconds"] > 0
    assert set(after["chrf"]) == {"base", "copy-source", "translation-memory", "length-matched", "empty", "final",
                                  "best"}


def test_eval_end_to_end_translates_and_scores_with_the_stop_off_and_on(tiny_model, tiny_data, tmp_path):
    out = tmp_path / "e2e.json"
    assert bench("eval_end_to_end.py", "--model", tiny_model, "--data", tiny_data, "--n", "3", "--max-tokens", "8",
                 "--bootstrap", "20", "--jobs", "1", "--out", out) == 0
    result = json.loads(out.read_text())
    assert set(header.FIELDS) <= set(result["header"]) and result["paragraphs"] == 3
    off, on = result["results"]["loop_stop_off"], result["results"]["loop_stop_on"]
    assert off["loop_stopped"] is None and isinstance(on["loop_stopped"], int)
    for r in (off, on):
        assert r["translate_seconds"] > 0 and r["score_seconds_cold"] > 0 and r["generated_tokens"] > 0
        assert abs(r["end_to_end_seconds"] - r["translate_seconds"] - r["score_seconds_cold"]) <= 0.02
