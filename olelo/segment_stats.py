"""Per-segment statistics of the scores, computed once and resampled by every test.

sacrebleu scores a corpus from per-segment sufficient statistics (BLEU's n-gram matches and
lengths, chrF++'s character and word n-gram matches, TER's edits and reference length), and its
paired bootstrap (sacrebleu.significance.PairedTest) resamples those statistics. Today's cost is
in extracting them: TER's shift search takes seconds on a long looping paragraph, and each
paired test used to extract both systems' statistics again. Here they are extracted once per
(metric, outputs, references), spread over the machine's cores, kept in memory and, with a
cache folder, on disk, keyed by the sha256 of the metric's signature, the sacrebleu version and
the texts themselves: changed outputs (or references) have another key, so a stale entry is
never read. Every corpus score and paired bootstrap then runs sacrebleu's own code
(`Metric._aggregate_and_compute`, `PairedTest`) on those statistics, so the numbers are the
ones sacrebleu computes from the texts, to the last digit (tests/test_segment_stats.py).

    store = segment_stats.Store(cache_dir, jobs=None)   # jobs: processes (default: the cores)
    # (make eval: segment_stats.runs_store(RUNS_DIR), shared by the evaluations there)
    with segment_stats.using(store):                    # olelo.scores reads the active store
        evaluation.score_systems(...)

Without `using`, olelo.scores uses a process-wide store in memory only (no disk, one process).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import multiprocessing
import os
import sys
from importlib import metadata
from pathlib import Path

import olelo
from olelo import fast_ter

# Bump when what a cache file holds changes: older files are then never read.
STATS_VERSION = 1
# Below this many segments to extract, processes cost more than they save.
MIN_PARALLEL_SEGMENTS = 64


def new_metric(key: str):
    """A fresh sacrebleu metric of the lab's: bleu (BLEU), chrf (chrF++: CHRF(word_order=2)) or ter
    (TER). Fresh, since sacrebleu metrics cache references."""
    from sacrebleu.metrics import BLEU, CHRF, TER

    return {"bleu": BLEU, "chrf": lambda: CHRF(word_order=2), "ter": TER}[key]()


_new_metric = new_metric


def _references_arg(refs: list[str]) -> list[list[str]]:
    return [list(refs)]


def extract(key: str, hyps: list[str], refs: list[str]) -> list[list]:
    """sacrebleu's per-segment statistics of metric `key` (bleu, chrf, ter), as it extracts them
    for a corpus score: a fresh metric, the references passed in (never its reference cache).
    TER's come from olelo/fast_ter.py's compiled copy of sacrebleu's algorithm (the same
    numbers) when numba imports and sacrebleu is a version it was compared with."""
    if key == "ter" and fast_ter_ready():
        return fast_ter.extract(hyps, refs)
    return _new_metric(key)._extract_corpus_statistics(list(hyps), _references_arg(refs))


_fast_ter_said = [False]


def fast_ter_ready() -> bool:
    """Whether TER's statistics take the compiled path; the first time it cannot, says why on
    stderr (once a process)."""
    reason = fast_ter.why_not()
    if reason is not None and not _fast_ter_said[0]:
        _fast_ter_said[0] = True
        print(f"segment_stats: TER uses sacrebleu's own code (slow on long outputs): {reason}",
              file=sys.stderr)
    return reason is None


def digest(header: list, texts) -> str:
    """sha256 (hex) of a JSON header and texts: the header first (it holds the counts), then
    each text with its length, so that no two inputs share a digest by moving a boundary."""
    h = hashlib.sha256()
    h.update(json.dumps(header).encode())
    for text in texts:
        data = text.encode("utf-8", "surrogatepass")
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.hexdigest()


def _extract_chunk(task):
    key, metric, hyps, refs, positions = task
    return key, positions, extract(metric, hyps, refs)


def _sacrebleu_version() -> str:
    try:
        return metadata.version("sacrebleu")
    except metadata.PackageNotFoundError:  # pragma: no cover
        import sacrebleu

        return sacrebleu.__version__


class Store:
    """Per-segment statistics by (metric, outputs, references): in memory, and in `cache_dir`
    when given (one JSON file per entry, written atomically). `jobs` processes extract what is
    missing (default: os.cpu_count())."""

    def __init__(self, cache_dir=None, jobs: int | None = None):
        if jobs is not None and jobs < 1:
            raise olelo.UserError(f"jobs={jobs}: give 1 or more processes")
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.jobs = jobs or os.cpu_count() or 1
        self._memory: dict[str, list] = {}
        self._version = _sacrebleu_version()
        self.counts = {"computed": 0, "read": 0, "memory": 0}

    def key(self, metric: str, hyps, refs) -> str:
        m = _new_metric(metric)
        m.num_refs = 1  # one reference a segment, as every caller gives (the signature needs it)
        signature = m.get_signature().format()
        return f"{metric}-{digest([STATS_VERSION, self._version, metric, signature, len(hyps), len(refs)], list(hyps) + list(refs))}"

    def _path(self, key: str) -> Path | None:
        return self.cache_dir / f"{key}.json" if self.cache_dir else None

    def _lookup(self, key: str, n: int):
        if key in self._memory:
            self.counts["memory"] += 1
            return self._memory[key]
        path = self._path(key)
        if path is not None and path.is_file():
            try:
                record = json.loads(path.read_text(encoding="utf-8"))
                stats = record["stats"]
                if record.get("key") == key and isinstance(stats, list) and len(stats) == n:
                    self._memory[key] = stats
                    self.counts["read"] += 1
                    return stats
            except (OSError, ValueError, KeyError, TypeError):
                pass  # a damaged entry is computed again and rewritten
        return None

    def _keep(self, key: str, metric: str, stats: list) -> None:
        self._memory[key] = stats
        self.counts["computed"] += 1
        path = self._path(key)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            olelo.atomic_write_text(path, json.dumps({"key": key, "metric": metric, "sacrebleu": self._version,
                                                      "n": len(stats), "stats": stats}))

    def cached(self, key: str, n: int):
        """The n values kept under `key` (memory or the cache folder), or None."""
        return self._lookup(key, n)

    def values(self, key: str, n: int, kind: str, compute) -> list:
        """n per-segment values of another kind than sacrebleu's (semsim's cosines) under a key the
        caller made (its kind first, e.g. semsim-<sha256>, with all that changes the values in the
        hash): read back from memory or the cache folder, else compute() and kept like statistics."""
        found = self._lookup(key, n)
        if found is None:
            found = list(compute())
            if len(found) != n:
                raise ValueError(f"{kind}: {len(found)} values for {n} segments")
            self._keep(key, kind, found)
        return found

    def stats(self, metric: str, hyps, refs) -> list[list]:
        """The per-segment statistics of `metric` for these outputs against these references."""
        return self.prefetch([(metric, hyps)], refs)[0]

    def prefetch(self, requests, refs) -> list[list[list]]:
        """Statistics for each (metric, hyps) of `requests` against `refs`, the missing ones
        extracted together over `jobs` processes (TER's long segments first)."""
        refs = list(refs)
        out, missing = [], {}
        for metric, hyps in requests:
            hyps = list(hyps)
            if len(hyps) != len(refs):
                raise ValueError(f"{len(hyps)} hypotheses but {len(refs)} references")
            key = self.key(metric, hyps, refs)
            found = self._lookup(key, len(hyps))
            out.append(key)
            if found is None and key not in missing:
                missing[key] = (metric, hyps)
        if missing:
            for key, stats in self._extract(missing, refs).items():
                self._keep(key, missing[key][0], stats)
        return [self._memory[key] for key in out]

    def _extract(self, missing: dict, refs: list[str]) -> dict:
        # Each distinct (metric, output, reference) once: systems share outputs (best is often final,
        # a stopped output its unstopped twin up to the loop) and a segment's statistics are its own.
        unique: dict[tuple, int] = {}
        where = {key: [unique.setdefault((metric, h, r), len(unique)) for h, r in zip(hyps, refs)]
                 for key, (metric, hyps) in missing.items()}
        items = list(unique)
        stats = self._extract_items(items)
        return {key: [stats[i] for i in idx] for key, idx in where.items()}

    def _extract_items(self, items: list[tuple]) -> list:
        """Statistics of each (metric, hypothesis, reference), over `jobs` processes."""
        out = [None] * len(items)
        by_metric: dict[str, list[int]] = {}
        for i, (metric, _, _) in enumerate(items):
            by_metric.setdefault(metric, []).append(i)
        if self.jobs == 1 or len(items) < MIN_PARALLEL_SEGMENTS:
            for metric, pos in by_metric.items():
                for i, st in zip(pos, extract(metric, [items[i][1] for i in pos], [items[i][2] for i in pos])):
                    out[i] = st
            return out
        # Tasks of a few segments each, the costliest first (TER: ~ hypothesis x reference words),
        # so that no process is left with the one long paragraph at the end.
        tasks = []
        for metric, pos in by_metric.items():
            if metric == "ter":
                cost = {i: (len(items[i][1].split()) + 1) * (len(items[i][2].split()) + 1) * 1000 for i in pos}
            else:
                cost = {i: len(items[i][1]) + len(items[i][2]) for i in pos}
            order = sorted(pos, key=lambda i: -cost[i])
            size = 2 if metric == "ter" else 64
            for a in range(0, len(order), size):
                chunk = order[a:a + size]
                tasks.append((cost[chunk[0]], (None, metric, [items[i][1] for i in chunk],
                                               [items[i][2] for i in chunk], chunk)))
        tasks = [t for _, t in sorted(tasks, key=lambda t: -t[0])]
        if "ter" in by_metric:
            fast_ter_ready()  # compiled (or loaded) once here, before the processes fork
        # fork where it is safe and fast (Linux); a Mac starts fresh interpreters (spawn)
        method = "fork" if sys.platform.startswith("linux") else "spawn"
        with multiprocessing.get_context(method).Pool(min(self.jobs, len(tasks))) as pool:
            for _, positions, stats in pool.imap_unordered(_extract_chunk, tasks):
                for i, st in zip(positions, stats):
                    out[i] = st
        return out


# ---------------------------------------------------------------- the active store

_DEFAULT = Store()
_active = [_DEFAULT]


def active() -> Store:
    return _active[-1]


@contextlib.contextmanager
def using(store: Store):
    """Make `store` the one olelo.scores reads while the block runs."""
    _active.append(store)
    try:
        yield store
    finally:
        _active.pop()


def runs_store(runs_dir, jobs: int | None = None) -> Store:
    """The store of a runs folder, RUNS_DIR/.segment-stats/, shared by its evaluations: what one
    evaluation extracted (copy-source and the other reference baselines, the base model's outputs,
    a checkpoint scored again) another of the same test set reads back. Entries are small (a few
    numbers a segment); deleting the folder only costs the time to extract them again."""
    return Store(Path(runs_dir) / CACHE_NAME, jobs=jobs)


CACHE_NAME = ".segment-stats"


# ---------------------------------------------------------------- sacrebleu on stored statistics

class CachedMetric:
    """A sacrebleu metric whose per-segment statistics come from a Store: everything else
    (aggregation, scores from statistics, signature) is the metric's own code."""

    def __init__(self, key: str, store: Store | None = None):
        self._key = key
        self._metric = _new_metric(key)
        self._store = store or active()

    def _extract_corpus_statistics(self, hypotheses, references):
        refs = list(references[0])
        # what sacrebleu's reference cache would have recorded: the signature's nrefs
        counts = {sum(x is not None for x in r) for r in zip(*references)}
        self._metric.num_refs = counts.pop() if len(counts) == 1 else -1
        return self._store.stats(self._key, hypotheses, refs)

    def corpus_score(self, hypotheses, references):
        self._metric._check_corpus_score_args(hypotheses, references)
        return self._metric._aggregate_and_compute(self._extract_corpus_statistics(hypotheses, references))

    def __getattr__(self, name):
        return getattr(self._metric, name)
