"""Translate a test split with one model (+ optional adapter), loaded once, in batches.

    python scripts/translate.py --model M [--adapter-path DIR] --data test.jsonl -o hyps.jsonl
        [--max-tokens N] [--batch-size 32] [--limit N] [--prompt fewshot --shots 4 --shots-seed 0]
        [--prompt completion [--completion-rule auto]]
        [--loop-stop] [--repetition-penalty 1.2 [--repetition-context-size 20]]

Prompts are built exactly as in training (olelo.prompt_messages + the model's chat
template, generation prompt added) and decoded greedily with mlx-lm's
batch_generate. `--prompt fewshot` (a second baseline for a base model that is
not instruction-tuned and echoes the zero-shot prompt) puts --shots example pairs
from the TRAIN split before the sentence as earlier chat turns: drawn with
--shots-seed from the shorter half of the train pairs (short prompts), the
same examples for every sentence, recorded in prompt.json beside the output.
`--prompt completion` is the fair zero-shot row of a pretrained model, which has never seen
a chat turn: "Hawaiian: <source>\nEnglish:" as plain text, the answer cut at the end of its
first line; with --completion-rule auto only for a model that the lab's rule takes as not
instruction-tuned (olelo.prompt.COMPLETION_RULE), else prompt.json says why there is no row.
Without --max-tokens the cap is 1.25x the longest reference in tokens (+8). Output rows: id, source, reference, hypothesis, tokens (generated),
time (seconds: the batch's wall time shared evenly among its sentences). Beside the output,
decode.json records the cap and how many references are longer than it in the model's
tokens (a cap below a reference's length cuts the output, not the reference: the scores
pay for it), and the decoding settings. --loop-stop (make eval LOOP_STOP=1): a sentence
whose own output starts to loop (the lab's loop test, olelo.scores.loops) stops at once and
leaves the batch, its output cut at the end of the loop's first copy; rows then say
loop_stopped. --repetition-penalty / --repetition-context-size: mlx-lm's logits processor. A sealed test set (sealed.jsonl) is read only with --sealed (make eval SEALED=1).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import olelo
from olelo.defaults import DEFAULTS
from olelo import ledger
from olelo.prompt import COMPLETION_RULE, COMPLETION_TEMPLATE, is_instruction_tuned
from olelo.generate import (add_decoding_arguments, cap_record, decoding_options, decoding_record, default_max_tokens,
                            pick_shots, run_eval_inputs, translate)

def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model")
    p.add_argument("--adapter-path", help="adapter folder (adapter_config.json + adapters.safetensors)")
    p.add_argument("--data", help="test.jsonl of chat records")
    p.add_argument("--run", help="a run folder: takes --model, --data (its test.jsonl) and the adapter from it")
    p.add_argument("--sealed", action="store_true",
                   help="translate the SEALED test set (with --run: its sealed.jsonl); make eval SEALED=1 passes it")
    p.add_argument("--ckpt", default="final", help="with --run: base, final, best or an iteration number")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--max-tokens", type=int)
    p.add_argument("--batch-size", type=int, default=DEFAULTS["EVAL_BATCH"],
                   help="sentences per batch (make: EVAL_BATCH; default: %(default)s)")
    p.add_argument("--limit", type=int, help="only the first N test records")
    p.add_argument("--prompt", choices=["zero-shot", "fewshot", "completion"], default="zero-shot",
                   help="zero-shot: the training prompt; fewshot: --shots train pairs first; completion: a plain "
                        "'Hawaiian: <source>\\nEnglish:' completion, its first line (default: %(default)s)")
    p.add_argument("--completion-rule", choices=["auto", "always"], default="always",
                   help="with --prompt completion: auto translates only when the model is not instruction-tuned "
                        "by the lab's rule (olelo.prompt.COMPLETION_RULE), else records why not (default: %(default)s)")
    p.add_argument("--shots", type=int, default=DEFAULTS["SHOTS"], help="examples in a fewshot prompt (default: %(default)s)")
    p.add_argument("--shots-seed", type=int, default=DEFAULTS["SEED"], help="seed of the examples' draw (default: %(default)s)")
    p.add_argument("--shots-from", help="train.jsonl to draw examples from (default: beside --data)")
    add_decoding_arguments(p)
    a = p.parse_args()
    controls = decoding_options(a)
    for flag, value in (("--batch-size (EVAL_BATCH)", a.batch_size), ("--limit (LIMIT)", a.limit),
                        ("--max-tokens (MAX_TOKENS)", a.max_tokens)):
        if value is not None and value < 1:
            raise olelo.UserError(f"{flag}={value}: must be a whole number >= 1")
    if a.run:
        a.model, a.data, a.adapter_path = run_eval_inputs(a.run, a.ckpt, "sealed" if a.sealed else "test")
    if not (a.model and a.data):
        raise olelo.UserError("give --model and --data, or --run")
    ledger.require_consent(a.data, a.sealed)
    records = olelo.read_jsonl(a.data)[: a.limit]
    if not records:
        raise olelo.UserError(f"{a.data}: no records")
    shots = None
    if a.prompt == "fewshot":
        if a.shots < 1:
            raise olelo.UserError(f"--shots must be at least 1, got {a.shots}")
        train_file = Path(a.shots_from or Path(a.data).with_name("train.jsonl"))
        picked = pick_shots(olelo.read_jsonl(train_file), {r.get("direction", "haw-en") for r in records},
                            a.shots, a.shots_seed)
        shots = {d: [olelo.record_source_target(r) for r in rs] for d, rs in picked.items()}
        # Ids only, no text: this record may be committed.
        olelo.atomic_write_json(Path(a.output).with_name("prompt.json"), {
            "prompt": "fewshot", "shots": a.shots, "seed": a.shots_seed, "examples_from": str(train_file),
            "example_ids": {d: [r.get("id") for r in rs] for d, rs in picked.items()}})
    if a.prompt == "completion":
        record = {"prompt": "completion", "template": COMPLETION_TEMPLATE, "answer": "its first line",
                  "rule": COMPLETION_RULE, "completion_rule": a.completion_rule,
                  "instruction_tuned": is_instruction_tuned(a.model)}
        record["evaluated"] = a.completion_rule == "always" or not record["instruction_tuned"]
        if not record["evaluated"]:
            Path(a.output).unlink(missing_ok=True)
            olelo.atomic_write_json(Path(a.output).with_name("prompt.json"), record)
            print(f"{a.model}: instruction-tuned by the lab's rule: no completion row", file=sys.stderr)
            return 0
    import mlx.core as mx

    model, tokenizer = olelo.load_model(a.model, adapter_path=a.adapter_path)
    max_tokens = a.max_tokens or default_max_tokens(tokenizer, records)
    decoding = decoding_record(a.loop_stop, a.repetition_penalty, a.repetition_context_size)
    # The batch and the device too: on CUDA in bfloat16 the greedy outputs depend on which sentences
    # share a batch (NOTES.md, "How long does make eval take on CUDA …?").
    olelo.atomic_write_json(Path(a.output).with_name("decode.json"),
                            {**cap_record(tokenizer, records, max_tokens, a.max_tokens), "decoding": decoding,
                             "batch_size": a.batch_size, "device": str(mx.default_device())})
    t = time.perf_counter()
    stats = {}
    rows = translate(model, tokenizer, records, max_tokens, a.batch_size, shots=shots,
                     completion=a.prompt == "completion", stats=stats, **controls)
    elapsed = time.perf_counter() - t
    olelo.atomic_write_jsonl(a.output, rows)
    if a.prompt == "completion":  # written last: make's target
        olelo.atomic_write_json(Path(a.output).with_name("prompt.json"), record)
    print(f"{a.output}: {len(rows)} sentences in {elapsed:.1f} s ({len(rows) / elapsed:.2f} sent/s, "
          f"max_tokens {max_tokens}" + (f", {stats['loop_stopped']} stopped looping" if a.loop_stop else "") + ")",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    olelo.run_main(main)
