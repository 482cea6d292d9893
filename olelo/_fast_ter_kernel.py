"""The numba kernel of olelo/fast_ter.py (imported only through it: importing this module needs
numba). The algorithm, its limits and its tie rules are described in fast_ter's docstring; the
constants are sacrebleu 2.6.0's (tests/test_fast_ter.py checks them against lib_ter)."""

from __future__ import annotations

import math

import numba
import numpy as np

MAX_SHIFT_SIZE = 10
MAX_SHIFT_DIST = 50
BEAM_WIDTH = 25
MAX_SHIFT_CANDIDATES = 1000
INF = np.int64(10 ** 16)

UNDEF, NOP, SUB, DEL, INS = 0, 1, 2, 3, 4

jit = numba.njit(cache=True, nogil=True)


@jit
def bands(n, m):
    """Row i's band of reference columns: [lo[i], hi[i]); row 0 and row n are whole."""
    lo = np.empty(n + 1, np.int64)
    hi = np.empty(n + 1, np.int64)
    lo[0] = 0
    hi[0] = m + 1
    ratio = m / n if n > 0 else 1.0
    width = BEAM_WIDTH
    if BEAM_WIDTH < ratio / 2:
        width = math.ceil(ratio / 2 + BEAM_WIDTH)
    for i in range(1, n + 1):
        diag = math.floor(i * ratio)
        lo[i] = max(0, diag - width)
        hi[i] = min(m + 1, diag + width)
        if i == n:
            hi[i] = m + 1
    return lo, hi


@jit
def row(prev, plo, phi, cur, ops, lo, hi, word, ref):
    """The row of hypothesis word `word` from the row above (valid in [plo, phi)): the first
    strict minimum of diagonal, up (deletion), left (insertion), from infinity."""
    for j in range(lo, hi):
        up = prev[j] if plo <= j < phi else INF
        if j == 0:
            cur[0] = up + 1
            ops[0] = DEL
            continue
        best = INF
        op = UNDEF
        diag = prev[j - 1] if plo <= j - 1 < phi else INF
        if word == ref[j - 1]:
            if best > diag:
                best = diag
                op = NOP
        elif best > diag + 1:
            best = diag + 1
            op = SUB
        if best > up + 1:
            best = up + 1
            op = DEL
        left = cur[j - 1] if j - 1 >= lo else INF
        if best > left + 1:
            best = left + 1
            op = INS
        cur[j] = best
        ops[j] = op


@jit
def fill(V, O, h, ref, lo, hi, first):
    """Rows first..n of hypothesis h's matrix (the rows before `first` are known)."""
    for i in range(first, len(h) + 1):
        row(V[i - 1], lo[i - 1], hi[i - 1], V[i], O[i], lo[i], hi[i], h[i - 1], ref)


@jit
def distance_from(V, h, ref, lo, hi, p, buf, ops):
    """Edit distance of hypothesis h whose rows 0..p are V's, the rest in two rolling rows."""
    n, m = len(h), len(ref)
    if p == n:
        return V[n, m]
    row(V[p], lo[p], hi[p], buf[(p + 1) & 1], ops, lo[p + 1], hi[p + 1], h[p], ref)
    for i in range(p + 2, n + 1):
        row(buf[(i - 1) & 1], lo[i - 1], hi[i - 1], buf[i & 1], ops, lo[i], hi[i], h[i - 1], ref)
    return buf[n & 1][m]


@jit
def alignment(O, lo, hi, n, m, align, hyp_err, ref_err, trace):
    """From the trace back from (n, m): each reference position's aligned hypothesis position
    and each word's error flag. False where the trace meets a cell with no operation."""
    i, j, k = n, m, 0
    while i > 0 or j > 0:
        if i == 0:
            op = INS
        elif lo[i] <= j < hi[i]:
            op = O[i, j]
        else:
            op = UNDEF
        trace[k] = op
        k += 1
        if op == NOP or op == SUB:
            i -= 1
            j -= 1
        elif op == INS:
            j -= 1
        elif op == DEL:
            i -= 1
        else:
            return False
    ph, pr = -1, -1
    for t in range(k - 1, -1, -1):
        op = trace[t]
        if op == NOP or op == SUB:
            ph += 1
            pr += 1
            align[pr] = ph
            err = 0 if op == NOP else 1
            hyp_err[ph] = err
            ref_err[pr] = err
        elif op == DEL:  # a hypothesis word left out of the alignment
            ph += 1
            hyp_err[ph] = 1
        else:  # a reference word missing from the hypothesis
            pr += 1
            align[pr] = ph
            ref_err[pr] = 1
    return True


@jit
def copy_range(h, a, b, out, k):
    for x in range(a, min(b, len(h))):
        out[k] = h[x]
        k += 1
    return k


@jit
def shift(h, start, length, target, out):
    """h with its words [start, start+length) moved before position `target` (slices clamped)."""
    n = len(h)
    k = 0
    if target < start:
        k = copy_range(h, 0, target, out, k)
        k = copy_range(h, start, start + length, out, k)
        k = copy_range(h, target, start, out, k)
        k = copy_range(h, start + length, n, out, k)
    elif target > start + length:
        k = copy_range(h, 0, start, out, k)
        k = copy_range(h, start + length, target, out, k)
        k = copy_range(h, start, start + length, out, k)
        k = copy_range(h, target, n, out, k)
    else:
        k = copy_range(h, 0, start, out, k)
        k = copy_range(h, start + length, length + target, out, k)
        k = copy_range(h, start, start + length, out, k)
        k = copy_range(h, length + target, n, out, k)
    return k


@jit
def common_prefix(a, b):
    p = 0
    while p < len(a) and a[p] == b[p]:
        p += 1
    return p


@jit
def edits(h0, ref):
    """(number of edits, 0) of hypothesis ids h0 against reference ids ref (not empty);
    (-1, 1) where sacrebleu's own code would meet a cell with no operation (it raises)."""
    n, m = len(h0), len(ref)
    lo, hi = bands(n, m)
    V = np.empty((n + 1, m + 1), np.int64)
    O = np.empty((n + 1, m + 1), np.uint8)
    for j in range(m + 1):
        V[0, j] = j
        O[0, j] = INS
    h = h0.copy()
    cand = np.empty(n, np.int64)
    buf = np.empty((2, m + 1), np.int64)
    ops = np.empty(m + 1, np.uint8)
    align = np.empty(m, np.int64)
    hyp_err = np.zeros(n, np.int64)
    ref_err = np.zeros(m, np.int64)
    hyp_sum = np.zeros(n + 1, np.int64)
    ref_sum = np.zeros(m + 1, np.int64)
    trace = np.empty(n + m, np.uint8)
    fill(V, O, h, ref, lo, hi, 1)
    checked = 0
    shifts = 0
    while True:
        pre = V[n, m]
        if pre >= INF or not alignment(O, lo, hi, n, m, align, hyp_err, ref_err, trace):
            return -1, 1
        for x in range(n):
            hyp_sum[x + 1] = hyp_sum[x] + hyp_err[x]
        for x in range(m):
            ref_sum[x + 1] = ref_sum[x] + ref_err[x]
        found = False
        b_gain, b_len, b_start, b_target = 0, 0, 0, 0
        stop = False
        for sh in range(n):
            for sr in range(max(0, sh - MAX_SHIFT_DIST), min(m, sh + MAX_SHIFT_DIST + 1)):
                length = 0
                while length < MAX_SHIFT_SIZE and h[sh + length] == ref[sr + length]:
                    length += 1
                    # the pair (sh, sr, length); sacrebleu checks the candidate limit only
                    # after a pair that passed these three filters
                    if (hyp_sum[sh + length] - hyp_sum[sh] != 0
                            and ref_sum[sr + length] - ref_sum[sr] != 0
                            and not (sh <= align[sr] < sh + length)):
                        last = -1
                        for offset in range(-1, length):
                            pos = sr + offset
                            if pos == -1:
                                target = 0
                            elif pos < m:
                                target = align[pos] + 1
                            else:
                                break
                            if target == last:
                                continue
                            last = target
                            shift(h, sh, length, target, cand)
                            d = distance_from(V, cand, ref, lo, hi, common_prefix(cand, h), buf, ops)
                            if d >= INF:
                                return -1, 1
                            gain = pre - d
                            checked += 1
                            # rank: (gain, length, -start, -target), the first highest kept
                            better = not found
                            if not better:
                                if gain != b_gain:
                                    better = gain > b_gain
                                elif length != b_len:
                                    better = length > b_len
                                elif sh != b_start:
                                    better = sh < b_start
                                else:
                                    better = target < b_target
                            if better:
                                found = True
                                b_gain, b_len, b_start, b_target = gain, length, sh, target
                        if checked >= MAX_SHIFT_CANDIDATES:
                            stop = True
                            break
                    if n == sh + length or m == sr + length:
                        break
                if stop:
                    break
            if stop:
                break
        if checked >= MAX_SHIFT_CANDIDATES:
            break
        if not found or b_gain <= 0:
            break
        shifts += 1
        shift(h, b_start, b_len, b_target, cand)
        p = common_prefix(cand, h)
        h[:] = cand
        fill(V, O, h, ref, lo, hi, p + 1)
    return shifts + V[n, m], 0
