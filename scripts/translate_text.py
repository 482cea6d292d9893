"""Translate new text with a run's checkpoint (or the base model): a sentence, a file of
lines, a JSONL file, or standard input. `make translate` is its front door.

    python scripts/translate_text.py --run <stamp|folder|latest|base> [--ckpt best|final|N]
        (--text "Aloha kākou." | --file notes.txt | --file notes.jsonl | --file -)
        [--direction haw-en|en-haw] [-o OUT | --stdout] [--batch-size 32] [--max-tokens N]
        [--model M (with --run base)] [--prompt auto|chat|completion]
        [--loop-stop] [--repetition-penalty 1.2 [--repetition-context-size 20]]

The prompt is the one the run was trained with (olelo.prompt: the system message and the
model's chat template); the direction is the run's own (its data's manifest) unless
--direction picks one of those it was trained on. Decoding is olelo.generate.translate, the
function `make eval` uses (greedy, batched, prompts of similar length together), so the
decoding settings of make eval apply here too: --loop-stop (LOOP_STOP=1) and mlx-lm's
repetition penalty (REP_PENALTY, REP_CONTEXT). --run base translates with the base model
(--model) and no adapter; a base the lab takes as pretrained (its name has no -it, instruct
or chat) gets the plain completion prompt, as make eval's base-completion row does.

Input and output: a plain file is one sentence a line, and the output has one line per input
line (a blank line stays blank; a translation's own line breaks become spaces). A .jsonl file
has one object a line with the sentence in "text" (or "source") and, optionally, its own
"direction"; each object comes back with "direction" and "translation" added. A file's
output goes beside it, notes.txt -> notes.<stamp>-<ckpt>.<direction>.txt (written at once
when all is done: a killed run leaves no half file), or to -o, or with --stdout to standard
output; --text and standard input print to standard output. A progress bar on stderr counts
sentences. An empty file, a binary file, or a run that does not exist is one line of error.

Run (from the repository root):
    LD_PRELOAD=/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0 \\
    .venv/bin/python scripts/translate_text.py --run latest --text "Aloha kākou."
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import olelo
from olelo.defaults import DEFAULTS
from olelo import identity
from olelo import new_text
from olelo.generate import add_decoding_arguments, decoding_options, translate
from olelo.runs import RUNS_DIR, ckpt_name


def model_of(run: str, ckpt: str, base_model: str | None, runs_dir: str):
    """(model, adapter folder or None, label for file names, who for messages, trained directions)."""
    if run == "base":
        if not base_model:
            raise olelo.UserError("--run base: give the base model with --model (make translate passes MODEL)")
        return base_model, None, "base", f"the base model {base_model}", []
    if base_model:
        raise olelo.UserError(f"--model is for --run base only: run {run} translates with the model it was "
                              f"trained on (its manifest's)")
    run_dir = olelo.resolve_run(run, runs_dir)
    manifest = olelo.run_manifest(run_dir)
    stamp = manifest.get("stamp", run_dir.name)
    identity.require_unchanged(manifest, "translate", splits=(),
                               remedy="Rebuild the model the run was trained from, or translate with another run")
    adapter = olelo.checkpoint_adapter(manifest["adapter_dir"], ckpt)
    return (manifest["model"], str(adapter), f"{stamp}-{ckpt_name(ckpt)}", f"run {stamp}",
            new_text.run_directions(manifest))


def read_source(a) -> tuple[str, str, list[dict]]:
    """(name for messages, kind, items) from --text, --file PATH or --file -."""
    if a.text is not None:
        if not a.text.strip():
            raise olelo.UserError("--text is empty: give the sentence to translate (TEXT=\"...\")")
        return "--text", "lines", [{"text": " ".join(a.text.split()), "line": 1}]
    if a.file == "-":
        return ("standard input", *new_text.parse_input("standard input", sys.stdin.buffer.read()))
    path = Path(a.file)
    if path.is_dir():
        raise olelo.UserError(f"{path}: is a folder; give the path of a text file (FILE=...)")
    if not path.is_file():
        raise olelo.UserError(f"{path}: no such file (FILE=...)")
    return str(path), *new_text.parse_input(str(path), path.read_bytes())


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", default="latest", help="a run stamp, run folder, latest, or base (default: %(default)s)")
    p.add_argument("--ckpt", default=DEFAULTS["FUSE_CKPT"], help="best, final or an iteration number (default: %(default)s)")
    p.add_argument("--runs-dir", default=RUNS_DIR, help="where run stamps are looked up (default: %(default)s)")
    p.add_argument("--model", help="with --run base: the base model folder or Hugging Face id")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--text", help="one sentence to translate (printed to standard output)")
    src.add_argument("--file", help="a text file (one sentence a line), a .jsonl file, or - for standard input")
    p.add_argument("--direction", help="haw-en or en-haw (default: the one the run was trained on)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("-o", "--output", help="output file (default: beside the input, or standard output)")
    where.add_argument("--stdout", action="store_true", help="print a file's translations instead of writing a file")
    p.add_argument("--batch-size", type=int, default=DEFAULTS["EVAL_BATCH"], help="sentences per batch (default: %(default)s)")
    p.add_argument("--max-tokens", type=int, help="tokens generated at most per sentence "
                                                  "(default: twice the longest source + 16)")
    p.add_argument("--prompt", choices=["auto", "chat", "completion"], default="auto",
                   help="auto: the run's training prompt; for a pretrained base model the completion prompt "
                        "(default: %(default)s)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_decoding_arguments(p)
    a = p.parse_args(argv)
    controls = decoding_options(a)
    for flag, value in (("--batch-size", a.batch_size), ("--max-tokens", a.max_tokens)):
        if value is not None and value < 1:
            raise olelo.UserError(f"{flag}={value}: must be a whole number >= 1")

    model, adapter, label, who, trained = model_of(a.run, a.ckpt, a.model, a.runs_dir)
    direction = new_text.choose_direction(a.direction, trained, who)
    name, kind, items = read_source(a)
    directions = {i: it.get("direction") or direction for i, it in enumerate(items)}
    for d in sorted({directions[i] for i, it in enumerate(items) if it["text"]}):
        new_text.choose_direction(d, trained, who)  # a JSONL line's own direction must be one the run knows
    if a.output:
        out = Path(a.output)
    elif a.text is None and a.file != "-" and not a.stdout:
        out = new_text.default_output(a.file, label, direction)
    else:
        out = None
    if out is not None and a.file not in (None, "-") and os.path.abspath(out) == os.path.abspath(a.file):
        raise olelo.UserError(f"{out}: is the input; give another output file (-o / OUT=)")

    todo = [i for i, it in enumerate(items) if it["text"]]
    records = [olelo.chat_record(items[i]["text"], "", directions[i], str(i)) for i in todo]
    prompt = new_text.choose_prompt(a.prompt, model, adapter)
    loaded, tokenizer = olelo.load_model(model, adapter_path=adapter)
    max_tokens = a.max_tokens or new_text.default_cap(tokenizer, [items[i]["text"] for i in todo])
    t, stats = time.perf_counter(), {}
    rows = translate(loaded, tokenizer, records, max_tokens, a.batch_size, completion=prompt == "completion",
                     progress=not a.no_progress and a.text is None, stats=stats, **controls)
    elapsed = time.perf_counter() - t
    translations = {i: row["hypothesis"] for i, row in zip(todo, rows)}
    text = new_text.render(kind, items, translations, directions)
    if out is None:
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        olelo.atomic_write_text(out, text)
    print(f"{out or 'standard output'}: {len(todo)} sentences ({direction if len(set(directions.values())) == 1 else 'mixed directions'}, "
          f"{who}{'' if adapter is None else ', checkpoint ' + a.ckpt}, {prompt} prompt, max_tokens {max_tokens}"
          f"{', %d stopped looping' % stats['loop_stopped'] if a.loop_stop else ''}) "
          f"in {elapsed:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    olelo.run_main(main)
