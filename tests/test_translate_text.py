"""make translate / scripts/translate_text.py: new text through a run, on the tiny model
(random weights: these check plumbing, never translation quality)."""

import json
import subprocess
import sys

import pytest

import olelo
from conftest import PY, REPO, SCRIPTS, one_line_error
from olelo import new_text


def translate(*args, cwd=REPO, stdin=None):
    return subprocess.run([PY, str(SCRIPTS / "translate_text.py"), "--no-progress", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, input=stdin)


def ok(out):
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    return out


# ---------------------------------------------------------------- input and output, no model

def test_plain_lines_keep_blank_lines_and_jsonl_keeps_fields():
    kind, items = new_text.parse_input("a.txt", "Aloha.\n\n  Pehea ʻoe?  \n".encode())
    assert kind == "lines" and [i["text"] for i in items] == ["Aloha.", "", "Pehea ʻoe?"]
    text = new_text.render(kind, items, {0: "Hello.", 2: "How\nare you?"}, {0: "haw-en", 1: "haw-en", 2: "haw-en"})
    assert text == "Hello.\n\nHow are you?\n"

    kind, items = new_text.parse_input("a.jsonl", b'{"id": 7, "source": "Aloha.", "note": "x"}\n\n'
                                                  b'{"text": "Hello.", "direction": "en-haw"}\n')
    assert kind == "jsonl" and [i["text"] for i in items] == ["Aloha.", "Hello."]
    assert items[1]["direction"] == "en-haw"
    rows = [json.loads(line) for line in new_text.render(kind, items, {0: "Hi.", 1: "Aloha."},
                                                         {0: "haw-en", 1: "en-haw"}).splitlines()]
    assert rows == [{"id": 7, "source": "Aloha.", "note": "x", "direction": "haw-en", "translation": "Hi."},
                    {"text": "Hello.", "direction": "en-haw", "translation": "Aloha."}]


@pytest.mark.parametrize("name, data, needle", [
    ("e.txt", b"", "empty"),
    ("e.txt", b"\n  \n\t\n", "empty"),
    ("b.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary"),
    ("l.txt", "Aloha ".encode("cp1252") + b"k\xe2kou\n", "not UTF-8"),
    ("u.txt", "Aloha\n".encode("utf-16"), "UTF-16"),
    ("j.jsonl", b'{"text": "ok"}\n{"id": 2}\n', "j.jsonl:2: no text"),
    ("j.jsonl", b'{"text": "ok"}\n[1, 2]\n', "j.jsonl:2: a JSON list"),
    ("j.jsonl", b'{"text": "ok"}\n{"text": \n', "j.jsonl:2: not valid JSON"),
    ("j.jsonl", b'{"text": "ok", "direction": "haw-fr"}\n', "direction 'haw-fr'"),
])
def test_bad_inputs_are_refused(name, data, needle):
    with pytest.raises(olelo.UserError, match=needle):
        new_text.parse_input(name, data)


def test_output_beside_the_input_names_the_model_and_direction():
    assert str(new_text.default_output("in/notes.txt", "s-best", "haw-en")) == "in/notes.s-best.haw-en.txt"
    assert str(new_text.default_output("my notes.jsonl", "base", "en-haw")) == "my notes.base.en-haw.jsonl"
    assert str(new_text.default_output("story", "base", "en-haw")) == "story.base.en-haw.txt"


def test_direction_is_the_runs_unless_given():
    assert new_text.choose_direction(None, ["en-haw"], "run r") == "en-haw"
    assert new_text.choose_direction(None, [], "the base model") == "haw-en"
    assert new_text.choose_direction("en-haw", ["haw-en", "en-haw"], "run r") == "en-haw"
    with pytest.raises(olelo.UserError, match="both directions; say which one"):
        new_text.choose_direction(None, ["haw-en", "en-haw"], "run r")
    with pytest.raises(olelo.UserError, match="trained on haw-en only, not en-haw"):
        new_text.choose_direction("en-haw", ["haw-en"], "run r")
    with pytest.raises(olelo.UserError, match="a translation goes one way"):
        new_text.choose_direction("both", [], "the base model")


def test_prompt_auto_is_the_training_prompt_for_a_run_and_completion_for_a_pretrained_base():
    assert new_text.choose_prompt("auto", "models/gemma-3-270m", "adapters/x/best") == "chat"
    assert new_text.choose_prompt("auto", "models/gemma-3-270m", None) == "completion"
    assert new_text.choose_prompt("auto", "mlx-community/gemma-3-4b-it-4bit", None) == "chat"
    assert new_text.choose_prompt("chat", "models/gemma-3-270m", None) == "chat"


# ---------------------------------------------------------------- with a trained tiny run

def test_a_file_is_translated_beside_itself_as_make_eval_decodes(trained, tmp_path):
    """The translations are those of olelo.generate.translate (make eval's decoder) with the
    run's prompt, one line out per line in, blank lines kept."""
    from olelo.generate import translate as eval_translate

    src = tmp_path / "my notes.txt"
    src.write_text("Aloha kākou.\n\nPehea ʻoe?\nUa hele ke aliʻi i ka moku.\n", encoding="utf-8")
    out = ok(translate("--run", trained["run_dir"], "--ckpt", "final", "--file", src, "--max-tokens", 6))
    dest = tmp_path / f"my notes.{trained['stamp']}-final.haw-en.txt"
    assert dest.is_file(), out.stderr
    lines = dest.read_text(encoding="utf-8").split("\n")
    assert len(lines) == 5 and lines[1] == "" and lines[4] == ""

    manifest = olelo.run_manifest(trained["run_dir"])
    model, tok = olelo.load_model(manifest["model"], str(olelo.checkpoint_adapter(manifest["adapter_dir"], "final")))
    sources = ["Aloha kākou.", "Pehea ʻoe?", "Ua hele ke aliʻi i ka moku."]
    records = [olelo.chat_record(s, "", "haw-en", str(i)) for i, s in enumerate(sources)]
    want = [new_text.one_line(r["hypothesis"]) for r in eval_translate(model, tok, records, 6, 32, progress=False)]
    assert [lines[0], lines[2], lines[3]] == want
    assert "3 sentences" in out.stderr and "chat prompt" in out.stderr

    # JSONL in and out, through standard input to standard output; the batch size changes nothing
    rows = ok(translate("--run", trained["run_dir"], "--ckpt", "final", "--file", "-", "--max-tokens", 6,
                        "--batch-size", 1, stdin="".join(json.dumps({"id": i, "text": s}) + "\n"
                                                         for i, s in enumerate(sources))))
    got = [json.loads(line) for line in rows.stdout.splitlines()]
    assert [g["translation"] for g in got] == [r["hypothesis"] for r in eval_translate(
        model, tok, records, 6, 32, progress=False)]
    assert [g["id"] for g in got] == [0, 1, 2] and {g["direction"] for g in got} == {"haw-en"}


def test_loop_stop_cuts_each_sentence_where_make_eval_would(trained, tmp_path):
    """--loop-stop (make translate LOOP_STOP=1): each output is the unstopped one cut at its
    first loop (olelo.scores.cut_loop), as make eval's stop makes it."""
    from olelo.scores import cut_loop

    src = tmp_path / "long.txt"
    src.write_text("Aloha kākou.\nUa hele ke aliʻi i ka moku.\n", encoding="utf-8")
    args = ("--run", trained["run_dir"], "--ckpt", "final", "--file", src, "--max-tokens", 120, "--stdout")
    plain = ok(translate(*args))
    stopped = ok(translate(*args, "--loop-stop"))
    assert stopped.stdout.splitlines() == [cut_loop(line) for line in plain.stdout.splitlines()]
    # the stop was on (the tiny model's outputs are one long word: nothing to stop here)
    assert "stopped looping" in stopped.stderr and "stopped looping" not in plain.stderr
    bad = translate(*args, "--repetition-context-size", 5)
    assert bad.returncode != 0 and "needs --repetition-penalty" in bad.stderr


def test_text_goes_to_standard_output_and_the_base_model_needs_no_run(trained, lab):
    out = ok(translate("--run", trained["run_dir"], "--text", "Aloha kākou.", "--max-tokens", 4))
    assert len(out.stdout.splitlines()) == 1
    base = ok(translate("--run", "base", "--model", lab["model"], "--text", "Aloha kākou.", "--max-tokens", 4))
    assert len(base.stdout.splitlines()) == 1 and "the base model" in base.stderr
    # the tiny model's folder name has no -it/instruct/chat: a pretrained base, completion prompt
    assert "completion prompt" in base.stderr


def test_refusals_are_one_line(trained, tmp_path):
    run = trained["run_dir"]
    one_line_error(translate("--run", tmp_path / "nope", "--text", "x"), "no run")
    one_line_error(translate("--run", "no-such-stamp", "--runs-dir", tmp_path, "--text", "x"), "no run 'no-such-stamp'")
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    one_line_error(translate("--run", run, "--file", empty), "empty.txt", "empty")
    binary = tmp_path / "x.txt"
    binary.write_bytes(b"\x7fELF\x02\x01\x01\x00\x00\x00")
    one_line_error(translate("--run", run, "--file", binary), "x.txt", "binary file")
    one_line_error(translate("--run", run, "--file", tmp_path / "missing.txt"), "missing.txt", "no such file")
    one_line_error(translate("--run", run, "--text", "x", "--direction", "en-haw"), "trained on haw-en only")
    one_line_error(translate("--run", run, "--text", "   "), "--text is empty")
    one_line_error(translate("--run", run, "--ckpt", "77", "--text", "x"), "no checkpoint at iteration 77")
    one_line_error(translate("--run", "base", "--text", "x"), "--model")
    one_line_error(translate("--run", run, "--model", "m", "--text", "x"), "--model is for --run base only")
    same = tmp_path / "same.txt"
    same.write_text("Aloha.\n")
    one_line_error(translate("--run", run, "--file", same, "-o", same), "is the input")
    assert same.read_text() == "Aloha.\n"


def test_standard_input_is_jsonl_only_when_every_line_is_an_object():
    assert new_text.parse_input("standard input", b'{"text": "a"}\n\n{"text": "b"}\n')[0] == "jsonl"
    assert new_text.parse_input("standard input", b'{"text": "a"}\nAloha.\n')[0] == "lines"
    assert new_text.parse_input("notes.txt", b'{"text": "a"}\n')[0] == "lines"


# ---------------------------------------------------------------- make translate

def make_translate(run_make, lab, *args):
    root = lab["root"]
    return run_make("translate", f"RUNS_DIR={root / 'runs'}", f"ADAPTERS_DIR={root / 'adapters'}", *args, check=False)


def test_make_translate_writes_beside_the_file_and_prints_text(run_make, lab, trained, tmp_path):
    src = tmp_path / "new notes.txt"
    src.write_text("Aloha kākou.\nPehea ʻoe?\n", encoding="utf-8")
    out = ok(make_translate(run_make, lab, f"RUN={trained['stamp']}", "FUSE_CKPT=final", f"FILE={src}",
                            "MAX_TOKENS=4"))
    dest = tmp_path / f"new notes.{trained['stamp']}-final.haw-en.txt"
    assert len(dest.read_text(encoding="utf-8").splitlines()) == 2, out.stderr
    assert "2 sentences" in out.stderr and "max_tokens 4" in out.stderr

    # OUT=- prints instead; the same translations as the file (greedy decoding)
    printed = ok(make_translate(run_make, lab, f"RUN={trained['stamp']}", "FUSE_CKPT=final", f"FILE={src}",
                                "MAX_TOKENS=4", "OUT=-"))
    assert printed.stdout.splitlines()[-2:] == dest.read_text(encoding="utf-8").splitlines()

    # a sentence with quotes, a $ and a backtick reaches the script as it was typed
    text = "Ua ʻōlelo ʻo ia: \"aloha\" 'oe $HOME `x`"
    shown = run_make("-n", "translate", f"RUNS_DIR={lab['root'] / 'runs'}", f"RUN={trained['stamp']}",
                     f"TEXT={text}")
    assert "--text 'Ua ʻōlelo ʻo ia: \"aloha\" '\\''oe $HOME `x`'" in shown.stdout
    said = ok(make_translate(run_make, lab, f"RUN={trained['stamp']}", "FUSE_CKPT=final", f"TEXT={text}",
                             "MAX_TOKENS=3"))
    assert "1 sentences" in said.stderr and "standard output" in said.stderr

    # RUN=base: MODEL alone, no run folder
    base = ok(make_translate(run_make, lab, "RUN=base", f"MODEL={lab['model']}", "TEXT=Aloha.", "MAX_TOKENS=3"))
    assert "the base model" in base.stderr and "completion prompt" in base.stderr


def test_make_translate_refuses_without_text_or_with_both(run_make, lab, trained, tmp_path):
    one_line_error(make_translate(run_make, lab, f"RUN={trained['stamp']}"), "nothing to translate")
    one_line_error(make_translate(run_make, lab, f"RUN={trained['stamp']}", "TEXT=x", f"FILE={tmp_path}/a.txt"),
                   "not both")
    one_line_error(make_translate(run_make, lab, "RUN=no-such-run", "TEXT=x"), "no run", "no-such-run/manifest.json")
