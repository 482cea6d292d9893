"""Yardsticks for the scores: model-free reference baselines and adequacy probes, exact
and fast enough to run in every evaluation (numpy only).

A corpus chrF++ on its own cannot tell a model that translates from one that writes
fluent in-domain text: a translation-memory lookup, or an unrelated training target of
the right length, can score like a fine-tuned model. These measure that gap.

pairwise_chrf(hyps, refs)
    sacrebleu's sentence chrF++ (CHRF(word_order=2).sentence_score(h, [r]).score) for
    every hypothesis against every reference, as an array [len(hyps), len(refs)]; equal
    to sacrebleu 2.6.0 to floating-point rounding (the tests hold it to 1e-9).
    chrf_sentence_scores(hyps, refs) is its diagonal: aligned pairs only, cheaply.
translation_memory(test_sources, train_sources, train_targets)
    a baseline: for each test source, the target of the training pair whose source is
    most like it, by sentence chrF++ with the *training source as hypothesis* and the
    *test source as reference* (so, with beta = 2, mostly: how much of the test source
    the training source covers). Ties go to the lowest index. A system that does not
    beat this is retrieving, not translating.
length_matched(test_sources, train_sources, train_targets, seed, draw, k=10)
    a baseline: for each test source, a training target drawn at random among the k
    training pairs whose source length in characters is nearest. Fluent, in-domain,
    the right length, and unrelated: what length and style alone score.
own_reference(hyps, refs)
    an adequacy probe: does an output pick out its own reference among all the test
    references? For output i, every reference j is scored by sentence chrF++
    (pairwise_chrf(hyps, refs)[i, j]) and its own reference's rank taken. Ties are
    counted as the expectation of breaking them at random: the rank is the mid rank,
    top-1 counts 1/k for a k-way tie for best, the reciprocal rank is the mean of
    1/r over the tied ranks. An empty or constant output therefore sits exactly at
    chance (accuracy 1/N, MRR H_N / N, mean rank (N + 1) / 2), fluent unrelated text
    near it, and a translation well above it.
name_transfer(sources, refs, hyps)
    an adequacy probe: are the proper names of the source carried into the output?
    Words are runs of letters (Unicode letters, so the ʻokina U+02BB is one) joined by
    ’ or ' inside a word (ko’u, Hawai’i); an English possessive ’s/'s ending is cut
    off (Kamehameha’s -> Kamehameha). A word is capitalised when its first letter
    after any ʻ is uppercase. The names of a sentence are the capitalised words found
    in both its source and its reference, less any word whose lowercased form also
    occurs as a word in the source or the reference (sentence-initial He, Ua, The).
    recall = names found as a word (exact case) in the output / names (distinct per
    sentence, summed over the corpus); precision = names in the output / the output's
    distinct capitalised words that also occur in the source. Copying the source gets
    recall 1 but low precision; a fluent unrelated output gets recall near 0.
repetition_rate(texts, n=8)
    output health: the share of texts in which some sequence of n words (lowercased
    \\w+ words, as olelo.scores' loop test reads them) occurs twice or more.

Intervals are 95 % percentile bootstraps over sentences (seeded, so they repeat).
"""

from __future__ import annotations

import re

import numpy as np

CHAR_ORDER = 6
WORD_ORDER = 2
BETA = 2
# chrF++'s word tokeniser splits one of these off a word's end (else its start): string.punctuation.
_PUNCT = frozenset("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")

# Relative costs (measured once on a 2-core Xeon; they only steer speed, never the result) pick how each
# n-gram's matches are counted: per sentence pair sharing it (sparse), as threshold columns
# of one matrix product (dense), or as one elementwise minimum over all pairs.
_COST_SPARSE_PAIR = 15.0   # ns per (hyp, ref) pair sharing the n-gram
_COST_DENSE_CELL = 0.012   # ns per output cell per threshold column (sgemm)
_COST_DENSE_BUILD = 1.0    # ns per sentence per threshold column (building the 0/1 columns)
_COST_MIN_CELL = 0.9       # ns per output cell (np.minimum + add)
_PAIRS_PER_CHUNK = 1 << 18
_COLUMNS_PER_BLOCK = 2048

# translation_memory's nearness, in words, for reports
TM_SIMILARITY = ("sentence chrF++ (sacrebleu CHRF(word_order=2)) of the training source as hypothesis against "
                 "the test source as reference; ties to the lowest training index")


# ---------------------------------------------------------------- chrF++ n-grams


def chrf_words(text: str) -> list[str]:
    """chrF++'s word tokens: whitespace-split words, one punctuation mark split off the end
    of a word of two or more characters, else off its start ('(hi)' -> '(hi', ')')."""
    words = []
    for w in text.split():
        if len(w) > 1 and w[-1] in _PUNCT:
            words += [w[:-1], w[-1]]
        elif len(w) > 1 and w[0] in _PUNCT:
            words += [w[0], w[1:]]
        else:
            words.append(w)
    return words


def _group(keys: np.ndarray, sents: np.ndarray):
    """Occurrences (n-gram key, sentence; sentences non-decreasing) grouped: a dense feature id
    per occurrence, and (feature, sentence, count) per distinct pair sorted by feature then
    sentence, and the number of features."""
    if len(keys) == 0:
        empty = np.zeros(0, np.int64)
        return empty, empty, empty, empty, 0
    order = np.argsort(keys, kind="stable")  # stable: sentences stay sorted within a feature
    ks, ss = keys[order], sents[order]
    new_feat = np.empty(len(ks), bool)
    new_feat[0] = True
    np.not_equal(ks[1:], ks[:-1], out=new_feat[1:])
    fid = np.cumsum(new_feat) - 1
    inv = np.empty_like(fid)
    inv[order] = fid
    new_pair = new_feat.copy()
    new_pair[1:] |= ss[1:] != ss[:-1]
    starts = np.flatnonzero(new_pair)
    counts = np.diff(np.append(starts, len(ks)))
    return inv, fid[starts], ss[starts], counts, int(fid[-1]) + 1


def _ngram_counts(texts: list[str]) -> list[tuple]:
    """For each of chrF++'s orders (characters 1-6 without whitespace, then words 1-2):
    (feature, sentence, count) of every n-gram in every text with features shared by all
    texts, the number of features, and each text's total n-grams of that order."""
    n = len(texts)
    orders = []

    stripped = ["".join(t.split()) for t in texts]
    lens = np.array([len(s) for s in stripped], np.int64)
    codes = np.frombuffer("".join(stripped).encode("utf-32-le", "surrogatepass"), np.uint32)
    sent = np.repeat(np.arange(n, dtype=np.int64), lens)
    left = lens[sent] - (np.arange(len(codes)) - np.repeat(np.cumsum(lens) - lens, lens))  # chars from here to the end
    _, unigram = np.unique(codes, return_inverse=True)
    unigram = unigram.astype(np.int64).ravel()
    alphabet = int(unigram.max()) + 1 if len(unigram) else 1
    prev = unigram
    for order in range(1, CHAR_ORDER + 1):
        at = np.flatnonzero(left >= order)
        keys = unigram[at] if order == 1 else prev[at] * alphabet + unigram[at + order - 1]
        inv, feat, s, c, n_feat = _group(keys, sent[at])
        prev = np.zeros(len(codes), np.int64)
        prev[at] = inv
        orders.append((feat, s, c, n_feat, np.maximum(lens - order + 1, 0)))

    vocab: dict[str, int] = {}
    tokens = [[vocab.setdefault(w, len(vocab)) for w in chrf_words(t)] for t in texts]
    wlens = np.array([len(t) for t in tokens], np.int64)
    ids = np.array([i for t in tokens for i in t], np.int64)
    wsent = np.repeat(np.arange(n, dtype=np.int64), wlens)
    wleft = wlens[wsent] - (np.arange(len(ids)) - np.repeat(np.cumsum(wlens) - wlens, wlens))
    for order in range(1, WORD_ORDER + 1):
        at = np.flatnonzero(wleft >= order)
        keys = ids[at]
        for k in range(1, order):
            keys = keys * max(len(vocab), 1) + ids[at + k]
        _, feat, s, c, n_feat = _group(keys, wsent[at])
        orders.append((feat, s, c, n_feat, np.maximum(wlens - order + 1, 0)))
    return orders


# ---------------------------------------------------------------- all-pairs matches


def _sparse_matches(out, hf, hs, hc, rf, rs, rc, n_feat, n_ref):
    """out[i * n_ref + j] += sum over shared features of min(count_i, count_j), one (i, j) pair
    per feature both sides share; entries sorted by feature."""
    if len(hf) == 0 or len(rf) == 0:
        return
    df_r = np.bincount(rf, minlength=n_feat)
    r_start = np.searchsorted(rf, np.arange(n_feat))
    reps = df_r[hf]
    keep = reps > 0
    hf, hs, hc, reps = hf[keep], hs[keep], hc[keep], reps[keep]
    ends = np.cumsum(reps)
    cuts = np.searchsorted(ends, np.arange(_PAIRS_PER_CHUNK, int(ends[-1]) if len(ends) else 0,
                                           _PAIRS_PER_CHUNK), side="right")
    for a, b in zip(np.r_[0, cuts], np.r_[cuts, len(hf)]):
        if a == b:
            continue
        r = reps[a:b]
        total = int(r.sum())
        # ref entry of each pair: its feature's first entry + its place within the hyp entry's run
        ridx = np.repeat(r_start[hf[a:b]] - (np.cumsum(r) - r), r) + np.arange(total)
        key = np.repeat(hs[a:b] * n_ref, r) + rs[ridx]
        weight = np.minimum(np.repeat(hc[a:b], r), rc[ridx])
        out += np.bincount(key, weights=weight, minlength=len(out))


def _dense_counts(f, s, c, feats, n_sent, dtype):
    """Dense count matrix [n_sent, len(feats)] of the entries whose feature is in sorted `feats`."""
    m = np.zeros((n_sent, len(feats)), dtype)
    lo, hi = np.searchsorted(f, [feats[0], feats[-1] + 1])
    f, s, c = f[lo:hi], s[lo:hi], c[lo:hi]
    col = np.searchsorted(feats, f)
    hit = feats[np.minimum(col, len(feats) - 1)] == f
    m[s[hit], col[hit]] = c[hit]
    return m


def _order_matches(hyp, ref, n_feat, n_hyp, n_ref):
    """matches[i, j] = sum over n-grams of min(count in hyp i, count in ref j), one order."""
    hf, hs, hc = hyp
    rf, rs, rc = ref
    out = np.zeros(n_hyp * n_ref)
    if len(hf) == 0 or len(rf) == 0:
        return out.reshape(n_hyp, n_ref)
    df_h = np.bincount(hf, minlength=n_feat)
    df_r = np.bincount(rf, minlength=n_feat)
    max_h = np.zeros(n_feat, np.int64)
    np.maximum.at(max_h, hf, hc)
    max_r = np.zeros(n_feat, np.int64)
    np.maximum.at(max_r, rf, rc)
    cap = np.minimum(max_h, max_r)
    shared = (df_h > 0) & (df_r > 0)

    # min(a, b) = sum over the distinct counts v_1 < v_2 < ... of either side (v_0 = 0) of
    # (v_k - v_k-1) [a >= v_k][b >= v_k]: one 0/1 column per (feature, v_k <= cap) in a product.
    vf = np.concatenate([hf, rf])
    vc = np.concatenate([hc, rc])
    below = shared[vf] & (vc <= cap[vf])
    top = int(vc.max()) + 1
    fv = np.unique(vf[below] * top + vc[below])
    col_f, col_v = fv // top, fv % top
    n_cols = np.bincount(col_f, minlength=n_feat)

    cells = n_hyp * n_ref
    cost_sparse = _COST_SPARSE_PAIR * df_h * df_r
    cost_dense = n_cols * (_COST_DENSE_CELL * cells + _COST_DENSE_BUILD * (n_hyp + n_ref))
    cost_min = _COST_MIN_CELL * cells + _COST_DENSE_BUILD * (n_hyp + n_ref)
    dense = shared & (cost_dense < cost_sparse) & (cost_dense <= cost_min)
    elementwise = shared & ~dense & (cost_min < cost_sparse)
    sparse = shared & ~dense & ~elementwise

    h_sp, r_sp = sparse[hf], sparse[rf]
    _sparse_matches(out, hf[h_sp], hs[h_sp], hc[h_sp], rf[r_sp], rs[r_sp], rc[r_sp], n_feat, n_ref)
    out = out.reshape(n_hyp, n_ref)

    # float32 sums of integers are exact below 2**24, and no sum exceeds the shorter side's n-grams
    longest = min(np.bincount(hs, weights=hc).max(), np.bincount(rs, weights=rc).max())
    dtype = np.float32 if longest < 1 << 24 else np.float64
    on = dense[col_f]
    col_f, col_v = col_f[on], col_v[on]
    if len(col_f):
        prev_v = np.r_[0, col_v[:-1]]
        first = np.r_[True, col_f[1:] != col_f[:-1]]
        col_w = np.where(first, col_v, col_v - prev_v).astype(dtype)
        acc = np.zeros((n_hyp, n_ref), dtype)
        for a in range(0, len(col_f), _COLUMNS_PER_BLOCK):
            f, v, w = col_f[a:a + _COLUMNS_PER_BLOCK], col_v[a:a + _COLUMNS_PER_BLOCK], col_w[a:a + _COLUMNS_PER_BLOCK]
            feats, local = np.unique(f, return_inverse=True)
            ch = _dense_counts(hf, hs, hc, feats, n_hyp, np.int32)
            cr = _dense_counts(rf, rs, rc, feats, n_ref, np.int32)
            bh = (ch[:, local] >= v).astype(dtype)
            bh *= w
            br = (cr[:, local] >= v).astype(dtype)
            acc += bh @ br.T
        out += acc

    feats = np.flatnonzero(elementwise)
    if len(feats):
        ch = _dense_counts(hf, hs, hc, feats, n_hyp, dtype).T.copy()
        cr = _dense_counts(rf, rs, rc, feats, n_ref, dtype).T.copy()
        acc = np.zeros((n_hyp, n_ref), dtype)
        tmp = np.empty_like(acc)
        for a, b in zip(ch, cr):
            np.minimum(a[:, None], b[None, :], out=tmp)
            acc += tmp
        out += acc
    return out


def _split(entries, n_hyp):
    feat, sent, count = entries
    h = sent < n_hyp
    return (feat[h], sent[h], count[h]), (feat[~h], sent[~h] - n_hyp, count[~h])


class _FScore:
    """sacrebleu's chrF sentence score (effective order, no epsilon smoothing), accumulated one
    order at a time in sacrebleu's order of operations, so the floats come out the same."""

    def __init__(self, shape):
        self.prec = np.zeros(shape)
        self.rec = np.zeros(shape)
        self.orders = np.zeros(shape, np.int64)

    def add(self, matches, n_hyp, n_ref):
        # an order counts where both sides have n-grams of it (sacrebleu's effective order)
        n_hyp, n_ref = np.asarray(n_hyp, np.float64), np.asarray(n_ref, np.float64)
        both = (n_hyp > 0) & (n_ref > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            self.prec += np.where(both, matches / n_hyp, 0.0)
            self.rec += np.where(both, matches / n_ref, 0.0)
        self.orders += both

    def scores(self):
        factor = BETA ** 2
        with np.errstate(divide="ignore", invalid="ignore"):
            prec = np.where(self.orders > 0, self.prec / self.orders, 0.0)
            rec = np.where(self.orders > 0, self.rec / self.orders, 0.0)
            score = (1 + factor) * prec * rec
            score /= (factor * prec) + rec
            return np.where(prec + rec != 0, 100 * score, 0.0)


def _check_texts(name, texts):
    if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
        raise TypeError(f"{name} must be a sequence of strings")
    return list(texts)


def pairwise_chrf(hyps, refs) -> np.ndarray:
    """Sentence chrF++ of every hypothesis against every reference: an array [len(hyps),
    len(refs)] whose [i, j] is CHRF(word_order=2).sentence_score(hyps[i], [refs[j]]).score."""
    hyps, refs = _check_texts("hyps", hyps), _check_texts("refs", refs)
    n_hyp, n_ref = len(hyps), len(refs)
    f = _FScore((n_hyp, n_ref))
    if n_hyp == 0 or n_ref == 0:
        return f.scores()
    for feat, sent, count, n_feat, totals in _ngram_counts(hyps + refs):
        hyp, ref = _split((feat, sent, count), n_hyp)
        matches = _order_matches(hyp, ref, n_feat, n_hyp, n_ref)
        f.add(matches, totals[:n_hyp, None], totals[None, n_hyp:])
    return f.scores()


def chrf_sentence_scores(hyps, refs) -> np.ndarray:
    """Sentence chrF++ of aligned pairs: the diagonal of pairwise_chrf, without the rest."""
    hyps, refs = _check_texts("hyps", hyps), _check_texts("refs", refs)
    if len(hyps) != len(refs):
        raise ValueError(f"{len(hyps)} hypotheses but {len(refs)} references")
    n = len(hyps)
    f = _FScore((n,))
    if n == 0:
        return f.scores()
    for feat, sent, count, n_feat, totals in _ngram_counts(hyps + refs):
        (hf, hs, hc), (rf, rs, rc) = _split((feat, sent, count), n)
        # (feature, pair) is unique on each side: the matches are the shared keys' smaller counts
        _, a, b = np.intersect1d(hf * n + hs, rf * n + rs, assume_unique=True, return_indices=True)
        matches = np.bincount(hs[a], weights=np.minimum(hc[a], rc[b]), minlength=n)
        f.add(matches, totals[:n], totals[n:])
    return f.scores()


# ---------------------------------------------------------------- baselines


def _check_train(train_sources, train_targets):
    train_sources = _check_texts("train_sources", train_sources)
    train_targets = _check_texts("train_targets", train_targets)
    if len(train_sources) != len(train_targets):
        raise ValueError(f"{len(train_sources)} training sources but {len(train_targets)} targets")
    if not train_sources:
        raise ValueError("no training pairs")
    return train_sources, train_targets


def translation_memory(test_sources, train_sources, train_targets) -> dict:
    """For each test source, the target of the training pair whose source scores best by
    sentence chrF++ with the training source as hypothesis and the test source as reference;
    ties go to the lowest training index. Reads nothing but its arguments: pass the training
    split alone. Returns hypotheses (the targets), index (training indices) and similarity
    (the chrF++ of the chosen source)."""
    test_sources = _check_texts("test_sources", test_sources)
    train_sources, train_targets = _check_train(train_sources, train_targets)
    if not test_sources:
        return {"hypotheses": [], "index": [], "similarity": []}
    scores = pairwise_chrf(train_sources, test_sources)
    best = scores.argmax(axis=0)  # the first of equal maxima: the lowest index
    return {"hypotheses": [train_targets[i] for i in best], "index": best.tolist(),
            "similarity": scores[best, np.arange(len(test_sources))].tolist()}


def length_matched(test_sources, train_sources, train_targets, seed: int, draw: int, k: int = 10) -> dict:
    """For each test source, a training target drawn uniformly among the k training pairs whose
    source length (characters) is nearest to the test source's, nearer first and ties by the
    lower index; numpy's default_rng([seed, draw]) draws, so a (seed, draw) repeats exactly.
    Returns hypotheses and index (training indices)."""
    test_sources = _check_texts("test_sources", test_sources)
    train_sources, train_targets = _check_train(train_sources, train_targets)
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    k = min(k, len(train_sources))
    rng = np.random.default_rng([seed, draw])
    train_len = np.array([len(s) for s in train_sources])
    test_len = np.array([len(s) for s in test_sources]).reshape(-1, 1)
    nearest = np.argsort(np.abs(train_len[None, :] - test_len), axis=1, kind="stable")[:, :k]
    pick = nearest[np.arange(len(test_sources)), rng.integers(0, k, size=len(test_sources))]
    return {"hypotheses": [train_targets[i] for i in pick], "index": pick.tolist()}


# ---------------------------------------------------------------- probes


def _percentile_ci(values: np.ndarray) -> list[float] | None:
    # resamples with nothing counted (0/0) have no ratio; None where none has one
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return None
    return [float(v) for v in np.percentile(values, [2.5, 97.5])]


def own_reference(hyps, refs, n_boot: int = 1000, seed: int = 12345) -> dict:
    """How well each output picks out its own reference among all references (the module
    docstring has the definitions). Returns n, accuracy (top-1), mrr, mean_rank, their chance
    values, 95 % bootstrap intervals over sentences, and ranks (mid ranks, 1 = best)."""
    hyps, refs = _check_texts("hyps", hyps), _check_texts("refs", refs)
    if len(hyps) != len(refs):
        raise ValueError(f"{len(hyps)} hypotheses but {len(refs)} references")
    n = len(hyps)
    if n == 0:
        raise ValueError("nothing to rank")
    scores = pairwise_chrf(hyps, refs)
    own = scores[np.arange(n), np.arange(n)]
    better = (scores > own[:, None]).sum(axis=1)
    tied = (scores == own[:, None]).sum(axis=1)  # own reference included
    ranks = better + (tied + 1) / 2
    top1 = np.where(better == 0, 1 / tied, 0.0)
    harmonic = np.concatenate([[0.0], np.cumsum(1 / np.arange(1, n + 1))])
    reciprocal = (harmonic[better + tied] - harmonic[better]) / tied  # mean of 1/r over the tied ranks

    rng = np.random.default_rng(seed)
    boot_acc, boot_mrr, boot_rank = (np.empty(n_boot) for _ in range(3))
    for b in range(n_boot):
        pick = rng.integers(0, n, size=n)
        boot_acc[b], boot_mrr[b], boot_rank[b] = top1[pick].mean(), reciprocal[pick].mean(), ranks[pick].mean()
    return {
        "n": n,
        "accuracy": float(top1.mean()), "accuracy_ci": _percentile_ci(boot_acc), "chance_accuracy": 1 / n,
        "mrr": float(reciprocal.mean()), "mrr_ci": _percentile_ci(boot_mrr), "chance_mrr": float(harmonic[n] / n),
        "mean_rank": float(ranks.mean()), "mean_rank_ci": _percentile_ci(boot_rank), "chance_mean_rank": (n + 1) / 2,
        "n_boot": n_boot, "seed": seed,
        "ranks": ranks.tolist(),
        "definition": "rank of each output's own reference among all references by sentence chrF++ "
                      "(1 = best; ties at the mid rank, top-1 and 1/rank as the mean over the tied ranks)",
    }


_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*")
_POSSESSIVE = re.compile(r"(?<=[^\W\d_]{2})['’]s$")


def name_words(text: str) -> list[str]:
    """The words name_transfer reads: letters (the ʻokina included) joined by ’ or ' inside a
    word, an English possessive ’s cut off."""
    return [_POSSESSIVE.sub("", w) for w in _WORD.findall(text)]


def _capitalised(word: str) -> bool:
    return word.lstrip("ʻ")[:1].isupper()


def sentence_names(source: str, ref: str) -> set[str]:
    """The names of one sentence (definition in the module docstring)."""
    src, tgt = set(name_words(source)), set(name_words(ref))
    words = src | tgt
    return {w for w in src & tgt if _capitalised(w) and w.lower() not in words}


def name_transfer(sources, refs, hyps, n_boot: int = 1000, seed: int = 12345) -> dict:
    """Whether the source's names reach the output (definitions in the module docstring).
    Returns recall and precision (None, as are their intervals, where nothing is counted), names, names_found,
    output_source_words (the output's capitalised words found in the source), 95 % bootstrap
    intervals over sentences (the ratio of the resampled sums), and per-sentence counts."""
    sources, refs, hyps = (_check_texts(k, v) for k, v in (("sources", sources), ("refs", refs), ("hyps", hyps)))
    if not (len(sources) == len(refs) == len(hyps)):
        raise ValueError(f"lengths differ: sources {len(sources)}, refs {len(refs)}, hyps {len(hyps)}")
    n = len(sources)
    if n == 0:
        raise ValueError("nothing to count")
    names, found, offered = np.zeros(n), np.zeros(n), np.zeros(n)
    for i, (src, ref, hyp) in enumerate(zip(sources, refs, hyps)):
        sentence = sentence_names(src, ref)
        out = set(name_words(hyp))
        src_words = set(name_words(src))
        names[i] = len(sentence)
        found[i] = len(sentence & out)
        offered[i] = sum(1 for w in out if _capitalised(w) and w in src_words)

    def ratio(a, b):
        return float(a.sum() / b.sum()) if b.sum() else None

    rng = np.random.default_rng(seed)
    boot_r, boot_p = np.empty(n_boot), np.empty(n_boot)
    with np.errstate(divide="ignore", invalid="ignore"):
        for b in range(n_boot):
            pick = rng.integers(0, n, size=n)
            boot_r[b] = found[pick].sum() / names[pick].sum()
            boot_p[b] = found[pick].sum() / offered[pick].sum()
    return {
        "n": n, "recall": ratio(found, names), "precision": ratio(found, offered),
        "recall_ci": _percentile_ci(boot_r), "precision_ci": _percentile_ci(boot_p),
        "names": int(names.sum()), "names_found": int(found.sum()), "output_source_words": int(offered.sum()),
        "n_boot": n_boot, "seed": seed,
        "per_sentence": {"names": names.astype(int).tolist(), "found": found.astype(int).tolist(),
                         "output_source_words": offered.astype(int).tolist()},
        "definition": "names: capitalised words in both source and reference whose lowercase form is in "
                      "neither; recall = names found in the output / names; precision = names found / the "
                      "output's capitalised words that occur in the source (distinct words per sentence, "
                      "summed over sentences)",
    }


def repetition_rate(texts, n: int = 8) -> dict:
    """Share (rate) and number (count) of texts in which some sequence of n words (lowercased
    \\w+ words) occurs twice or more, overlapping allowed."""
    texts = _check_texts("texts", texts)
    if not texts:
        raise ValueError("no texts")
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    count = 0
    for text in texts:
        words = re.findall(r"\w+", text.lower())
        grams = [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]
        count += len(set(grams)) < len(grams)
    return {"rate": count / len(texts), "count": count, "texts": len(texts), "n": n,
            "definition": f"share of texts in which some sequence of {n} words (lowercased \\w+) occurs twice or more"}
