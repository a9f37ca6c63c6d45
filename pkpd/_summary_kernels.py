"""Compiled loops of :mod:`pkpd.summaries` (numba, cached on disk). Private.

A chunk of simulated outputs arrives as one (n_subjects, n_times) array per output, all strided views of the
solver's (n_subjects, n_times, n_outputs) buffer. :func:`transpose` copies it, in cache-sized tiles of subjects,
into *rows*: an (n_outputs, n_times, n_subjects) array in which the values of one output at one time are
contiguous. Every later pass runs in parallel over rows, so each row's statistics and histogram belong to one
thread and no count is ever shared between threads.

A value's histogram key at resolution level ``m`` (``shift = 52 - m``) is its IEEE-754 bit pattern with the sign
bit removed, shifted right by ``shift`` (2**m buckets per power of two), and bit-inverted for negative values.
Keys are therefore monotone in the value, and ``key >> 1`` is the key one level coarser, for either sign. Zero,
of either sign, has key 0.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

_ABS_MASK = np.int64(0x7FFFFFFFFFFFFFFF)
_TILE = 8  # subjects per tile of the transpose: 8 doubles = one 64-byte cache line of each output row


@njit(cache=True, inline="always")
def _key(x, bits, shift):
    if x == 0.0:
        return np.int64(0)
    k = (bits & _ABS_MASK) >> shift
    return k if bits >= 0 else ~k


@njit(cache=True, parallel=True)
def transpose(values, rows):
    """rows[o, t, i] = values[o][i, t] for i < n, in tiles of subjects (values: tuple of (n, n_times) arrays).

    ``rows`` may have room for more subjects than ``n``: one buffer serves every chunk, so that its pages are
    touched (faulted in) once per run, not once per chunk.
    """
    n_outputs = len(values)
    n, n_times = values[0].shape
    for b in prange((n + _TILE - 1) // _TILE):
        i0 = b * _TILE
        i1 = min(i0 + _TILE, n)
        for t in range(n_times):
            for o in range(n_outputs):
                a = values[o]
                for i in range(i0, i1):
                    rows[o, t, i] = a[i, t]


@njit(cache=True, parallel=True)
def scan(rows, n, shift, count, total, lower, upper, key_lower, key_upper):
    """Per row (first ``n`` subjects): count of non-NaN values, their sum, min and max, min and max key."""
    n_outputs, n_times = rows.shape[0], rows.shape[1]
    for r in prange(n_outputs * n_times):
        o, t = r // n_times, r % n_times
        row = rows[o, t, :n]
        bits = row.view(np.int64)
        c = 0
        s = 0.0
        lo = np.inf
        hi = -np.inf
        klo = np.iinfo(np.int64).max
        khi = np.iinfo(np.int64).min
        for i in range(n):
            x = row[i]
            if x != x:  # NaN: a failed subject (on_failure="mark")
                continue
            c += 1
            s += x
            lo = min(lo, x)
            hi = max(hi, x)
            k = _key(x, bits[i], shift)
            klo = min(klo, k)
            khi = max(khi, k)
        count[o, t] = c
        total[o, t] = s
        lower[o, t] = lo
        upper[o, t] = hi
        key_lower[o, t] = klo
        key_upper[o, t] = khi


@njit(cache=True, parallel=True)
def accumulate(rows, n, shift, mean, sq_dev, counts, base, offset, histogram):
    """Per row (first ``n`` subjects): sum of squared deviations from ``mean``; with ``histogram``, add each value
    to its bucket.

    Row ``r = o * n_times + t`` owns ``counts[offset[r]:offset[r + 1]]``, which counts keys ``base[r]`` onwards;
    the caller has made every key of this chunk (from :func:`scan`) fall inside that window.
    """
    n_outputs, n_times = rows.shape[0], rows.shape[1]
    for r in prange(n_outputs * n_times):
        o, t = r // n_times, r % n_times
        row = rows[o, t, :n]
        bits = row.view(np.int64)
        centre = mean[o, t]
        start = offset[r] - base[r]
        m2 = 0.0
        for i in range(n):
            x = row[i]
            if x != x:
                continue
            d = x - centre
            m2 += d * d
            if histogram:
                counts[start + _key(x, bits[i], shift)] += 1
        sq_dev[o, t] = m2
