"""bench/campaigns/loop_stop_replay.py: recorded outputs cut where the loop test first fires."""

import json
import subprocess
import sys
from pathlib import Path

from olelo import scores

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "bench/campaigns/loop_stop_replay.py"


def write_hyps(path: Path, hyps):
    path.parent.mkdir(parents=True)
    path.write_text("".join(json.dumps({"id": f"p{i}", "source": "s", "reference": "r", "hypothesis": h}) + "\n"
                            for i, h in enumerate(hyps)))


def run(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True, cwd=REPO)


def test_cuts_base_and_checkpoint_into_their_own_folder(tmp_path):
    ev = tmp_path / "run's eval" / "eval-mt256"
    write_hyps(ev / "base" / "hyps.jsonl", ["a fine sentence", "ha ha ha ha"])
    looping = "the king of the island, the king of the island, the king of the island, the king"
    write_hyps(ev / "final" / "hyps.jsonl", [looping, "no loop here"])
    p = run(ev)
    assert p.returncode == 0, p.stderr
    out = ev.with_name("eval-mt256-loopstop")
    final = [json.loads(x) for x in (out / "final" / "hyps.jsonl").read_text().splitlines()]
    assert [r["hypothesis"] for r in final] == ["the king of the island", "no loop here"]
    assert final[0]["loop_cut"] is True and "loop_cut" not in final[1] and final[0]["reference"] == "r"
    summary = json.loads((out / "loop_stop.json").read_text())
    assert summary["base"]["cut"] == 1 and summary["final"] == {
        "outputs": 2, "cut": 1, "chars_before": len(looping) + 12, "chars_after": 22 + 12}
    assert scores.LOOP_DEFINITION in summary["rule"]
    # the originals are untouched
    assert json.loads((ev / "final" / "hyps.jsonl").read_text().splitlines()[0])["hypothesis"] == looping


def test_refuses_missing_outputs_bad_lines_and_writing_over_its_input(tmp_path):
    ev = tmp_path / "eval"
    write_hyps(ev / "base" / "hyps.jsonl", ["x"])
    p = run(ev, "--ckpt", "best")
    assert p.returncode == 2 and "best/hyps.jsonl not found" in p.stderr
    (ev / "best").mkdir()
    (ev / "best" / "hyps.jsonl").write_text('{"hypothesis": "x"}\nnot json\n')
    p = run(ev, "--ckpt", "best")
    assert p.returncode == 2 and "hyps.jsonl:2: not JSON" in p.stderr
    p = run(ev, "--out", ev)
    assert p.returncode == 2 and "own folder" in p.stderr
    assert not ev.with_name("eval-loopstop").exists()


def test_replays_every_row_into_the_folder_make_eval_loop_stop_writes(tmp_path):
    ev = tmp_path / "run" / "eval-mt256"
    loop = "one two, one two, one two, one two"
    write_hyps(ev / "base" / "hyps.jsonl", ["fine", loop])
    write_hyps(ev / "best" / "hyps.jsonl", [loop, "fine"])
    write_hyps(ev / "final" / "hyps.jsonl", ["fine", "fine"])
    write_hyps(ev / "base-completion" / "hyps.jsonl", ["la la la la", "fine"])
    decode = {"max_tokens": 256, "set_by": "MAX_TOKENS", "decoding": {"sampler": "greedy", "loop_stop": False}}
    for row in ("base", "best", "final", "base-completion"):
        (ev / row / "decode.json").write_text(json.dumps(decode))
    (ev / "best" / "ppl.json").write_text('{"test_ppl": 13.3}')
    (ev / "base-completion" / "prompt.json").write_text('{"prompt": "completion"}')
    p = run(ev, "--ckpt", "best", "--ckpt", "final")
    assert p.returncode == 0, p.stderr
    out = ev.with_name("eval-mt256-loopstop")
    summary = json.loads((out / "loop_stop.json").read_text())
    assert summary["rows"] == ["base", "best", "final", "base-completion"]
    assert [summary[r]["cut"] for r in summary["rows"]] == [1, 1, 0, 1]
    assert "not decoded again" in summary["replay"] and "completion_note" in summary
    assert summary["reproduce"][0].endswith("--ckpt best --ckpt final")
    best = [json.loads(x) for x in (out / "best" / "hyps.jsonl").read_text().splitlines()]
    assert [r["hypothesis"] for r in best] == ["one two", "fine"]
    assert [r["loop_stopped"] for r in best] == [True, False]  # as a live run's rows say it
    assert best[0]["tokens"] is None and "tokens" not in best[1]
    completion = [json.loads(x) for x in (out / "base-completion" / "hyps.jsonl").read_text().splitlines()]
    assert completion[0]["hypothesis"] == "la"
    written = json.loads((out / "best" / "decode.json").read_text())
    assert written["max_tokens"] == 256 and written["decoding"]["loop_stop"] is True
    assert "loop_stop_rule" in written["decoding"] and "not decoded again" in written["decoding"]["replay"]
    assert json.loads((out / "best" / "ppl.json").read_text()) == {"test_ppl": 13.3}
    assert json.loads((out / "base-completion" / "prompt.json").read_text()) == {"prompt": "completion"}
    # replaying the replay is refused: its outputs were already stopped
    p = run(out, "--ckpt", "best")
    assert p.returncode == 2 and "already decoded with the loop stop" in p.stderr


def test_refuses_a_checkpoint_name_that_is_not_a_checkpoint_folder(tmp_path):
    ev = tmp_path / "eval"
    write_hyps(ev / "base" / "hyps.jsonl", ["x"])
    for bad in ("base", "base-completion", "../final", ""):
        p = run(ev, "--ckpt", bad)
        assert p.returncode == 2 and "give a checkpoint folder" in p.stderr, (bad, p.stderr)
