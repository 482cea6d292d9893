"""Retrieval of training pairs for retrieval-augmented prompts (DATA=rag,
scripts/retrieval_data.py): each record's k nearest training pairs by the fuzzy match of
the translation-memory baseline (olelo.yardstick.translation_memory): sentence chrF++ with
the training source as hypothesis and the record's source as reference, best first, ties
to the lowest training index, same direction only. So for k = 1 a test record's example
is exactly the pair translation memory answers it with.

A record never retrieves its own pair: training pairs with the record's pair id (olelo.data
.record_pair_id, from the texts) are left out. That also leaves out the pair's other
direction when DIRECTION=both (same pair id, the source and target swapped), which would
hand the model its answer."""

from __future__ import annotations

import numpy as np

import olelo
from olelo.data import record_pair_id
from olelo.prompt import retrieval_record
from olelo.yardstick import pairwise_chrf


def nearest_training_pairs(queries: list[dict], train: list[dict], k: int) -> list[list[int]]:
    """For each query record, the indices into `train` of its k nearest training records
    (fewer when fewer are eligible), best first."""
    if k < 1:
        raise olelo.UserError(f"k = {k}: retrieve at least 1 training pair")
    out: list[list[int]] = [[] for _ in queries]
    train_ids = np.array([record_pair_id(r) for r in train])
    for direction in sorted({q.get("direction", "haw-en") for q in queries}):
        qpos = [i for i, q in enumerate(queries) if q.get("direction", "haw-en") == direction]
        tpos = np.array([j for j, r in enumerate(train) if r.get("direction", "haw-en") == direction], dtype=int)
        if not len(tpos):
            raise olelo.UserError(f"the training split has no {direction} pair to retrieve")
        scores = pairwise_chrf([olelo.record_source_target(train[j])[0] for j in tpos],
                               [olelo.record_source_target(queries[i])[0] for i in qpos])
        for col, i in enumerate(qpos):
            eligible = train_ids[tpos] != record_pair_id(queries[i])
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
