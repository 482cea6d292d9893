"""The per-sequence loop stop in batched generation (olelo.generate.generate_batch): a sequence
whose own output starts to loop leaves the batch, cut where olelo.scores.cut_loop cuts it; the
others decode on, unchanged; with the stop off, the tokens are mlx-lm batch_generate's."""

import random

import pytest

from olelo import generate, scores

# ------------------------------------------------------------------ the incremental loop test


def fed(text: str, step: int = 1):
    """The first prefix (fed `step` characters at a time) at which LoopWatch fires, or None."""
    watch = generate.LoopWatch()
    for end in range(step, len(text) + step, step):
        if watch.feed(text[:end]):
            return text[:end]
    return None


TEXTS = ["the ka the ka the ka the ka", "a a a", "a a a.", "One two. one two! ONE TWO and on", "he said he said",
         "nui nui, nui", "ka hale ka hale ka hale", "Heʻā,Heʻā,Heʻā,Heʻā", "the there the there the then",
         "1 2 3 4 5 6 7 8 9 10 11 1 2 3 4 5 6 7 8 9 10 11 1 2 3 4 5 6 7 8 9 10 11 end", "", "   ", "no loop here"]


@pytest.mark.parametrize("text", TEXTS)
@pytest.mark.parametrize("step", [1, 3])
def test_the_watch_fires_where_the_labs_loop_test_first_holds(text, step):
    prefix = fed(text, step)
    # a word is known complete only when something follows it: the text with a space after
    assert (prefix is not None) == scores.loops(text) or (prefix is None and scores.loops(text)
                                                           and fed(text + " ") is not None)
    if prefix is not None:
        assert scores.loops(prefix)
        assert scores.cut_loop(prefix) == scores.cut_loop(text)  # stopping there changes no output


def test_the_watch_agrees_with_cut_loop_on_random_texts():
    rng = random.Random(0)
    vocab = ["ka", "the", "Ka", "a", "ʻo", "hale", "nui", "and", ",", "."]
    for _ in range(300):
        text = " ".join(rng.choice(vocab) for _ in range(rng.randint(0, 40)))
        prefix = fed(text + " ", rng.choice([1, 2, 5]))
        assert (prefix is not None) == scores.loops(text)
        if prefix is not None:
            assert scores.cut_loop(prefix) == scores.cut_loop(text)


def test_a_rewritten_text_is_read_again():
    watch = generate.LoopWatch()
    assert not watch.feed("a a b ")
    assert watch.feed("a a a ")  # not an extension of what it read: read from the start


# ------------------------------------------------------------------ generation


def table_model(tokenizer, chains, second=None):
    """A model whose greedy next token is table[current token] (chains: start token, tokens,
    index the last one returns to, or None for end of sequence); `second` gives every step a
    runner-up token of logit 5 (the winner has 10)."""
    import mlx.core as mx
    import mlx.nn as nn

    vocab = len(tokenizer)
    eos = sorted(tokenizer.eos_token_ids)[0]
    table = [eos] * vocab
    for start, seq, back in chains:
        prev = start
        for t in seq:
            table[prev] = t
            prev = t
        table[prev] = seq[back] if back is not None else eos

    class TableModel(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = [nn.Identity()]  # one KV cache
            self.table = mx.array(table)

        def __call__(self, x, cache=None, **kwargs):
            b, n = x.shape
            if cache:
                kv = mx.zeros((b, 1, n, 4))
                cache[0].update_and_fetch(kv, kv)
            ids = mx.arange(vocab)[None, None, :]
            logits = 10.0 * (ids == self.table[x][..., None])
            if second is not None:
                logits = logits + 5.0 * (ids == second)
            return logits.astype(mx.float32)

    return TableModel()


@pytest.fixture(scope="module")
def tokenizer(tiny_model):
    from mlx_lm.utils import load_tokenizer

    return load_tokenizer(tiny_model)


def ids(tokenizer, *pieces):
    out = [tokenizer.encode(p, add_special_tokens=False) for p in pieces]
    assert all(len(t) == 1 for t in out), out  # each piece one token of the tiny vocabulary
    return [t[0] for t in out]


@pytest.fixture(scope="module")
def four(tokenizer):
    """Four prompts: A loops on two words, B ends by itself, C cycles through 11 words (no
    loop: a span longer than 10 words) to the cap, D loops on one word glued by commas."""
    A, B, C, D = ids(tokenizer, "A", "B", "C", "D")
    chains = [(A, ids(tokenizer, " the", " ka"), 0),
              (B, ids(tokenizer, " we", " ma", "you", "."), None),
              (C, ids(tokenizer, " a", " k", " t", " w", " m", " l", " n", " p", " s", " f", " i"), 0),
              (D, ids(tokenizer, "He", "ʻ", "ā", ","), 0)]
    bos = tokenizer.bos_token_id
    return chains, [[bos, A], [bos, B], [bos, C], [bos, D]]


def test_with_the_stop_off_the_tokens_are_batch_generates(tokenizer, four, tiny_model):
    import olelo
    from mlx_lm.generate import batch_generate

    chains, prompts = four
    model = table_model(tokenizer, chains)
    texts, tokens, stopped, _ = generate.generate_batch(model, tokenizer, prompts, 40)
    want = batch_generate(model, tokenizer, prompts, max_tokens=40, return_token_ids=True)
    assert tokens == want.token_ids and texts == want.texts and not any(stopped)
    # and on a real transformer (the tiny Gemma 3, random weights), prompts of unequal length
    real, tok = olelo.load_model(str(tiny_model))
    records = [olelo.chat_record(s, "x", "haw-en", f"p{i}") for i, s in
               enumerate(["Aloha kākou.", "Pehea ʻoe?", "Ua hele ke aliʻi i ka moku.", "He nui nā lā."])]
    real_prompts = generate.build_prompts(tok, records)
    got = generate.generate_batch(real, tok, real_prompts, 24)
    want = batch_generate(real, tok, real_prompts, max_tokens=24, return_token_ids=True)
    assert got[1] == want.token_ids and got[0] == want.texts


def test_a_looping_sequence_stops_by_itself_and_the_others_go_on(tokenizer, four):
    chains, prompts = four
    model = table_model(tokenizer, chains)
    off_texts, off_tokens, _, off_stats = generate.generate_batch(model, tokenizer, prompts, 40)
    texts, tokens, stopped, stats = generate.generate_batch(model, tokenizer, prompts, 40, loop_stop=True)
    assert stopped == [True, False, False, True]
    assert [len(t) for t in off_tokens] == [40, 4, 40, 40]
    # the looping ones stop a few words after the loop began, not at the cap
    assert len(tokens[0]) < 10 and len(tokens[3]) < 16
    assert texts[0].strip() == "the ka" and texts[3] == "Heʻā"
    for a, b, ta, tb in zip(off_texts, texts, off_tokens, tokens):
        assert b == scores.cut_loop(a)  # exactly the offline cut of the same greedy run
        assert ta[:len(tb)] == tb
    assert tokens[1] == off_tokens[1] and tokens[2] == off_tokens[2]  # the others: unchanged
    assert stats.generation_tokens < off_stats.generation_tokens


def test_translate_rows_say_which_stopped_and_the_stats_count_them(tokenizer, four, monkeypatch):
    chains, prompts = four
    model = table_model(tokenizer, chains)
    monkeypatch.setattr(generate, "build_prompts", lambda tok, records, shots, completion: prompts)
    import olelo

    records = [olelo.chat_record(f"s{i}", f"t{i}", "haw-en", f"r{i}") for i in range(4)]
    stats = {}
    rows = generate.translate(model, tokenizer, records, 40, 3, progress=False, stats=stats, loop_stop=True)
    assert [r["loop_stopped"] for r in rows] == [True, False, False, True]
    assert stats["loop_stopped"] == 2
    assert rows[0]["hypothesis"] == "the ka"
    rows = generate.translate(model, tokenizer, records, 40, 3, progress=False)
    assert "loop_stopped" not in rows[0] and rows[0]["tokens"] == 40


def test_a_repetition_penalty_goes_through_mlx_lms_logits_processor(tokenizer, four):
    chains, prompts = four
    eos = sorted(tokenizer.eos_token_ids)[0]
    model = table_model(tokenizer, chains, second=eos)  # end of sequence, always the runner-up
    plain = generate.generate_batch(model, tokenizer, prompts[:1], 40)
    assert len(plain[1][0]) == 40
    # a repeated token's logit 10 / 4 falls below the runner-up's 5: the sequence ends there
    texts, tokens, _, _ = generate.generate_batch(model, tokenizer, prompts[:1], 40, repetition_penalty=4.0,
                                                  repetition_context_size=8)
    assert texts[0].strip() == "the ka" and len(tokens[0]) == 2
    assert generate.decoding_record(True, 4.0, 8) == {
        "sampler": "greedy", "loop_stop": True, "loop_stop_rule": generate.decoding_record(True)["loop_stop_rule"],
        "repetition_penalty": 4.0, "repetition_context_size": 8}
    with pytest.raises(Exception, match="REP_PENALTY=0"):
        generate.translate(model, tokenizer, [], 40, 3, progress=False, repetition_penalty=0)


def test_val_gen_stops_loops_too_and_counts_them(tokenizer, four, monkeypatch):
    import types

    import olelo
    from olelo import trainer

    chains, prompts = four
    model = table_model(tokenizer, chains)
    monkeypatch.setattr(generate, "build_prompts", lambda tok, records, shots, completion: prompts)
    records = [olelo.chat_record(f"s{i}", "the ka", "haw-en", f"r{i}") for i in range(4)]
    world = types.SimpleNamespace(rank=lambda: 0, size=lambda: 1)
    off = trainer.ValChrf(records, 4, 0, tokenizer, 4, world)
    on = trainer.ValChrf(records, 4, 0, tokenizer, 4, world, loop_stop=True)
    off.max_tokens = on.max_tokens = 40
    a, b = off(model), on(model)
    assert "val_gen_stopped" not in a and b["val_gen_stopped"] == 2
    assert b["val_gen_tokens"] < a["val_gen_tokens"]
    # the stop off scores what generate_batch makes without it (mlx-lm's batch_generate's tokens)
    texts = generate.generate_batch(model, tokenizer, prompts, 40)[0]
    want = scores.new_metrics()["chrf"].corpus_score([t.strip() for t in texts], [["the ka"] * 4]).score
    assert a["val_chrf"] == round(want, 4)
    assert b["val_chrf"] > a["val_chrf"]  # "the ka" cut from its loop is its reference here


def test_val_gen_caps_each_sentence_by_its_own_reference(tokenizer, four, monkeypatch):
    import types

    import olelo
    from olelo import trainer

    chains, prompts = four
    model = table_model(tokenizer, chains)
    monkeypatch.setattr(generate, "build_prompts", lambda tok, records, shots, completion: prompts)
    refs = ["the ka", "we ma you.", "a k t w m l n p s f i " * 3, "He"]
    records = [olelo.chat_record(f"s{i}", r, "haw-en", f"r{i}") for i, r in enumerate(refs)]
    world = types.SimpleNamespace(rank=lambda: 0, size=lambda: 1)
    caps = generate.own_max_tokens(tokenizer, records)
    assert caps == [int(-(-1.25 * len(tokenizer.encode(r)) // 1)) + 8 for r in refs]
    longest = trainer.ValChrf(records, 4, 0, tokenizer, 4, world)
    each = trainer.ValChrf(records, 4, 0, tokenizer, 4, world, cap="each")
    assert longest.max_tokens == max(caps) and each.max_tokens == caps
    a, b = longest(model), each(model)
    # A and D loop to the cap: their own (short) caps stop them sooner; B ends by itself either way
    assert b["val_gen_tokens"] < a["val_gen_tokens"]
    rows = generate.translate(model, tokenizer, records, caps, 4, progress=False)
    assert [r["tokens"] for r in rows] == [caps[0], 4, caps[2], caps[3]]
    with pytest.raises(olelo.UserError, match="VAL_GEN_CAP=most"):
        trainer.ValChrf(records, 4, 0, tokenizer, 4, world, cap="most")
