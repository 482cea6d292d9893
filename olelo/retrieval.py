"""Retrieval of training pairs for retrieval-augmented prompts (DATA=rag,
scripts/retrieval_data.py): each record's k nearest training pairs by the fuzzy match of
the translation-memory baseline (olelo.yardstick.translation_memory): sentence chrF++ with
the training source as hypothesis and the record's source as reference, best first, ties
to the lowest training index, same direction only. So for k = 1 a test record's example
is exactly the pair translation memory answers it with.

A record never retrieves its own pair, nor any pair that shares a text with it: training
pairs with the record's pair id (olelo.data.record_pair_id, from the texts) or with its
Hawaiian or its English (by match key, as the leak check compares them) are left out. That
leaves out the pair's other direction when DIRECTION=both (same pair id, the source and
target swapped), and a second version of the pair (the same chant written twice, one
English): either would hand the model its answer. Held-out records share no text with
training (the leak check), so this changes nothing for them."""

from __future__ import annotations

import numpy as np

import olelo
from olelo.data import haw_en, match_key, record_pair_id
from olelo.prompt import retrieval_record
from olelo.yardstick import pairwise_chrf


def text_keys(record: dict) -> tuple[str, str]:
    """(Hawaiian, English) of a record by match key: what "shares a text" compares."""
    return tuple(match_key(text) for text in haw_en(record))


def nearest_training_pairs(queries: list[dict], train: list[dict], k: int) -> list[list[int]]:
    """For each query record, the indices into `train` of its k nearest training records
    (fewer when fewer are eligible), best first."""
    if k < 1:
        raise olelo.UserError(f"k = {k}: retrieve at least 1 training pair")
    out: list[list[int]] = [[] for _ in queries]
    train_ids = np.array([record_pair_id(r) for r in train])
    train_haw, train_en = (np.array(side, dtype=object) for side in zip(*map(text_keys, train)))
    for direction in sorted({q.get("direction", "haw-en") for q in queries}):
        qpos = [i for i, q in enumerate(queries) if q.get("direction", "haw-en") == direction]
        tpos = np.array([j for j, r in enumerate(train) if r.get("direction", "haw-en") == direction], dtype=int)
        if not len(tpos):
            raise olelo.UserError(f"the training split has no {direction} pair to retrieve")
        scores = pairwise_chrf([olelo.record_source_target(train[j])[0] for j in tpos],
                               [olelo.record_source_target(queries[i])[0] for i in qpos])
        for col, i in enumerate(qpos):
            haw, en = text_keys(queries[i])
            # An empty key (a text of punctuation only) is shared with nothing, as in find_leaks.
            eligible = ((train_ids[tpos] != record_pair_id(queries[i]))
                        & ((train_haw[tpos] != haw) | (haw == "")) & ((train_en[tpos] != en) | (en == "")))
            # A stable sort of the negated scores: best first, equal scores by the lower index.
            order = np.argsort(-scores[:, col], kind="stable")
            out[i] = [int(tpos[j]) for j in order[eligible[order]][:k]]
    return out


def augment(queries: list[dict], train: list[dict], k: int) -> list[dict]:
    """The query records with their k nearest training pairs in the prompt
    (olelo.prompt.retrieval_record)."""
    nearest = nearest_training_pairs(queries, train, k)
    return [retrieval_record(q, [olelo.record_source_target(train[j]) for j in idx],
                             [train[j].get("id", str(j)) for j in idx])
            for q, idx in zip(queries, nearest)]
