"""Translation with a model: prompts as in training, greedy batched decoding, few-shot
examples, and a run's evaluation inputs. scripts/translate.py is its command line.
"""

from __future__ import annotations

import math
import random
import re
import sys
import time

import olelo
from olelo import identity, records
from olelo.prompt import completion_answer, completion_prompt, prompt_for_record


def build_prompts(tokenizer, records, shots=None, completion: bool = False):
    """Token prompts; `shots` maps a direction to its (source, target) examples; `completion`:
    the plain completion prompt (olelo.prompt.completion_prompt) instead of the chat template."""
    prompts = []
    for r in records:
        source, _ = olelo.record_source_target(r)
        direction = r.get("direction", "haw-en")
        if completion:
            prompts.append(tokenizer.encode(completion_prompt(source, direction)))
            continue
        if shots is None:
            messages = prompt_for_record(r)  # a retrieval-augmented record's own prompt (DATA=rag)
        elif "source" in r:
            raise olelo.UserError("--shots on a retrieval-augmented test set (DATA=rag): its prompts carry "
                                  "their examples already; leave --shots out")
        else:
            messages = olelo.fewshot_messages(source, direction, shots[direction])
        prompts.append(tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_dict=False))
    return prompts


def pick_shots(train_records, directions, k: int, seed: int) -> dict:
    """{direction: [record, ...]}: k train records per direction, drawn with `seed`
    from the shorter half (source + target characters; at least k records)."""
    shots = {}
    for direction in sorted(directions):
        pool = [r for r in train_records if r.get("direction", "haw-en") == direction]
        if len(pool) < k:
            raise olelo.UserError(f"--shots {k}: the train split has only {len(pool)} {direction} pairs")
        # Sorted by (length, id) and then by id: the draw does not depend on the order of train.jsonl.
        by_size = sorted(pool, key=lambda r: (sum(map(len, olelo.record_source_target(r))), str(r.get("id"))))
        short = sorted(by_size[:max(k, (len(pool) + 1) // 2)], key=lambda r: str(r.get("id")))
        shots[direction] = random.Random(seed).sample(short, k)
    return shots


def first_records(path, n: int) -> list[dict]:
    """The first n records of a JSONL file, for a benchmark to translate; refuses n < 1 and a
    file without records."""
    if n < 1:
        raise olelo.UserError(f"--n {n}: give the number of sentences to translate (1 or more)")
    records = olelo.read_jsonl(path)[:n]
    if not records:
        raise olelo.UserError(f"{path}: no records to translate")
    return records


def spread(records: list, k: int) -> list:
    """k records spread evenly over `records` (the first, then every len/k-th)."""
    if not 1 <= k <= len(records):
        raise olelo.UserError(f"--n-processes {k}: give 1 to {len(records)} (the number of sentences run batched)")
    return [records[i * len(records) // k] for i in range(k)]


def default_max_tokens(tokenizer, records) -> int:
    longest = max(len(tokenizer.encode(olelo.record_source_target(r)[1])) for r in records)
    return math.ceil(1.25 * longest) + 8


def own_max_tokens(tokenizer, records) -> list[int]:
    """A cap for each record from its own reference: 1.25 x its length in tokens + 8 (the rule of
    default_max_tokens, sentence by sentence)."""
    return [math.ceil(1.25 * len(tokenizer.encode(olelo.record_source_target(r)[1]))) + 8 for r in records]


def cap_record(tokenizer, records, max_tokens: int, given: int | None) -> dict:
    """The generation cap and how many references are longer than it (in this model's tokens)."""
    lengths = sorted(len(tokenizer.encode(olelo.record_source_target(r)[1])) for r in records)
    return {"max_tokens": max_tokens, "set_by": "MAX_TOKENS" if given else "1.25 x the longest reference + 8",
            "references": len(lengths), "references_over_cap": sum(n > max_tokens for n in lengths),
            "reference_tokens": {"median": lengths[len(lengths) // 2], "p99": lengths[min(len(lengths) - 1,
                                 math.ceil(0.99 * len(lengths)) - 1)], "max": lengths[-1]}}


class LoopWatch:
    """The lab's loop test (olelo.scores.loops: a span of 1..LOOP_MAX_WORDS words LOOP_COPIES
    times in a row, lowercased \\w+ words) on one sequence's text as it arrives. feed(text so
    far) is True once a loop has completed among the words known to be complete (a word is
    complete when a non-word character follows it; the last word may still grow). Each word
    is read once: the check costs a few comparisons a word, however long the output."""

    def __init__(self, max_words: int | None = None, copies: int | None = None):
        from olelo import scores

        self.max_words = max_words or scores.LOOP_MAX_WORDS
        self.copies = copies or scores.LOOP_COPIES
        self.words: list[str] = []
        self._text = ""  # the text read so far (its words complete)
        self.fired = False

    def feed(self, text: str) -> bool:
        if self.fired:
            return True
        if not text.startswith(self._text):  # a detokenizer rewrote what it had shown: read again
            self.words, self._text = [], ""
        for m in _WORD.finditer(text, len(self._text)):
            if m.end() == len(text):
                break  # the last word may go on
            self.words.append(m.group().lower())  # word by word, as olelo.scores.cut_loop reads them
            self._text = text[:m.end()]
            if self._loop_ends_here():
                self.fired = True
                return True
        return False

    def _loop_ends_here(self) -> bool:
        from olelo import scores

        return scores.loop_ending_at(self.words, len(self.words), self.max_words, self.copies) is not None


_WORD = re.compile(r"\w+")


def decoding_record(loop_stop: bool = False, repetition_penalty: float | None = None,
                    repetition_context_size: int | None = None) -> dict:
    """The decoding settings an evaluation records (decode.json, the VAL_GEN metrics)."""
    from olelo import scores

    record = {"sampler": "greedy", "loop_stop": bool(loop_stop)}
    if loop_stop:
        record["loop_stop_rule"] = ("a sequence stops when " + scores.LOOP_DEFINITION.replace("share of outputs in "
                                    "which ", "") + " in its own output, checked as its words arrive; the output "
                                    "is cut at the end of the loop's first copy (olelo.scores.cut_loop)")
    if repetition_penalty is not None:
        record["repetition_penalty"] = repetition_penalty
        record["repetition_context_size"] = repetition_context_size or 20
    return record


def add_decoding_arguments(p) -> None:
    """The decoding controls make eval and make translate share (LOOP_STOP, REP_PENALTY,
    REP_CONTEXT), on an argparse parser; decoding_options() reads them back checked."""
    p.add_argument("--loop-stop", action="store_true",
                   help="stop a sentence once its own output loops, cut at the loop's first copy (make: LOOP_STOP=1)")
    p.add_argument("--repetition-penalty", type=float,
                   help="mlx-lm's repetition penalty (make: REP_PENALTY; default: none)")
    p.add_argument("--repetition-context-size", type=int,
                   help="tokens the repetition penalty looks back over (make: REP_CONTEXT; mlx-lm: 20)")


def decoding_options(a) -> dict:
    """translate()'s decoding keywords from add_decoding_arguments' parsed arguments, checked."""
    check_decoding(a.repetition_penalty, a.repetition_context_size)
    if a.repetition_context_size is not None and a.repetition_penalty is None:
        raise olelo.UserError("--repetition-context-size (REP_CONTEXT) needs --repetition-penalty (REP_PENALTY)")
    return {"loop_stop": a.loop_stop, "repetition_penalty": a.repetition_penalty,
            "repetition_context_size": a.repetition_context_size}


def check_decoding(repetition_penalty, repetition_context_size) -> None:
    if repetition_penalty is not None and not repetition_penalty > 0:
        raise olelo.UserError(f"REP_PENALTY={repetition_penalty}: give a number > 0 (1 changes nothing; "
                              f"mlx-lm divides positive logits of recent tokens by it)")
    if repetition_context_size is not None and repetition_context_size < 1:
        raise olelo.UserError(f"REP_CONTEXT={repetition_context_size}: give a whole number >= 1")


def generate_batch(model, tokenizer, prompts: list[list[int]], max_tokens, loop_stop: bool = False,
                   repetition_penalty: float | None = None, repetition_context_size: int | None = None):
    """Greedy decoding of `prompts` together (mlx-lm's BatchGenerator, as batch_generate runs
    it): (texts, token ids, stopped, stats). With `loop_stop`, a sequence whose own output
    has started to loop (LoopWatch) leaves the batch at once, so the others decode faster, and
    its text ends where the loop's first copy ends; stopped[i] says which did. The stop
    changes nothing before it fires: greedy decoding, the same tokens up to there."""
    from mlx_lm.generate import BatchGenerator
    from olelo import scores

    processors = None
    if repetition_penalty is not None:
        from mlx_lm.sample_utils import make_logits_processors

        processors = make_logits_processors(repetition_penalty=repetition_penalty,
                                            repetition_context_size=repetition_context_size or 20)
    gen = BatchGenerator(model, stop_tokens=[[t] for t in tokenizer.eos_token_ids], logits_processors=processors)
    try:
        caps = list(max_tokens) if isinstance(max_tokens, (list, tuple)) else [max_tokens] * len(prompts)
        uids = gen.insert(prompts, caps)
        tokens = {u: [] for u in uids}
        watch = {u: (LoopWatch(), tokenizer.detokenizer) for u in uids} if loop_stop else {}
        for _, detok in watch.values():
            detok.reset()
        stopped = set()
        with gen.stats() as stats:
            while responses := gen.next_generated():
                for r in responses:
                    if r.uid in stopped:
                        continue
                    if r.finish_reason != "stop":  # an end-of-sequence token is not part of the text
                        tokens[r.uid].append(r.token)
                    if r.finish_reason is None and loop_stop:
                        looped, detok = watch[r.uid]
                        detok.add_token(r.token)
                        if looped.feed(detok.text):
                            stopped.add(r.uid)
                            gen.remove([r.uid])
    finally:
        gen.close()
    texts = [tokenizer.decode(tokens[u]) for u in uids]
    if loop_stop:  # the cut where the test first fires on the whole text (a loop closed by the last word too)
        texts = [scores.cut_loop(t) for t in texts]
    return texts, [tokens[u] for u in uids], [u in stopped for u in uids], stats


def translate(model, tokenizer, records, max_tokens, batch_size: int, progress=True, shots=None,
              stats: dict | None = None, completion: bool = False, loop_stop: bool = False,
              repetition_penalty: float | None = None, repetition_context_size: int | None = None) -> list[dict]:
    """One row per record. `stats`, when given, gathers the generator's counts over the batches:
    prompt_tokens, prompt_s (prefill), generated_tokens, decode_s (and loop_stopped with the stop).
    `completion`: the plain completion prompt, its answer cut at the end of the first line.
    `loop_stop`, `repetition_penalty`, `repetition_context_size`: generate_batch's decoding
    controls (rows then say loop_stopped). `max_tokens`: one cap, or one per record."""
    from olelo import scores
    from tqdm import tqdm

    check_decoding(repetition_penalty, repetition_context_size)
    prompts = build_prompts(tokenizer, records, shots, completion)
    # Batch prompts of similar length together: less padding in prefill.
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    out = [None] * len(records)
    bar = tqdm(total=len(records), desc="translating", unit="sent", disable=not progress, file=sys.stderr)
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        t = time.perf_counter()
        caps = [max_tokens[i] for i in chunk] if isinstance(max_tokens, (list, tuple)) else max_tokens
        texts, ids, stopped, gstats = generate_batch(model, tokenizer, [prompts[i] for i in chunk], caps,
                                                     loop_stop, repetition_penalty, repetition_context_size)
        share = (time.perf_counter() - t) / len(chunk)
        if stats is not None:
            for key, value in (("prompt_tokens", gstats.prompt_tokens), ("prompt_s", gstats.prompt_time),
                               ("generated_tokens", gstats.generation_tokens), ("decode_s", gstats.decode_time)) \
                    + ((("loop_stopped", sum(stopped)),) if loop_stop else ()):
                stats[key] = stats.get(key, 0) + value
        for i, text, n, stop in zip(chunk, texts, ids, stopped):
            source, reference = olelo.record_source_target(records[i])
            hyp = completion_answer(text) if completion else text.strip()
            if loop_stop and completion:  # the first line, cut where its own loop begins
                hyp = scores.cut_loop(hyp)
            out[i] = {"id": records[i].get("id", str(i)), "source": source, "reference": reference,
                      "hypothesis": hyp, "tokens": len(n), "time": round(share, 4)}
            if loop_stop:
                out[i]["loop_stopped"] = stop
        bar.update(len(chunk))
    bar.close()
    return out


def eval_remedy(manifest: dict) -> str:
    return (f"Evaluate a run on the test set and model it was trained with (rebuild them as they were: "
            f"{identity.rebuild_hint(manifest)}), or train a new run on what is there now (FORCE=1)")


def run_eval_inputs(run: str, ckpt: str, split: str = "test"):
    """(model, test file, adapter folder or None) of a run's checkpoint; refused when the
    test set (split "test", or "sealed") or the model is no longer the one the run recorded."""
    run_dir = olelo.resolve_run(run)
    manifest = olelo.run_manifest(run_dir)
    records.require_finished(run_dir, manifest, "evaluate")
    if split == "sealed" and not (manifest.get("data") or {}).get("sealed_sha256"):
        raise olelo.UserError(f"run {manifest.get('stamp')} recorded no sealed test set: its data "
                              f"{manifest.get('data_dir')} has none (make data SPLIT=stories makes one)")
    identity.require_unchanged(manifest, "be evaluated", splits=(split,), remedy=eval_remedy(manifest))
    adapter = olelo.checkpoint_adapter(manifest["adapter_dir"], ckpt)
    return manifest["model"], f"{manifest['data_dir']}/{split}.jsonl", str(adapter) if adapter else None
