"""The loops of :mod:`pkpd.summaries` as C, built once per pkpd version by the system C compiler (private).

Same functions, arguments and results (bit for bit: the same operations in the same order) as the numba kernels in
:mod:`pkpd._summary_kernels`, whose docstring explains the row layout and the histogram keys. With the native
engine this spares a summarising run the numba import (0.2 s) and the kernels' first compile (seconds).
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
from pathlib import Path

import numpy as np

from .errors import PkpdError

C_SOURCE = r"""
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#define TILE 8
#define ABS_MASK 0x7FFFFFFFFFFFFFFFLL

static inline int64_t key(double x, int shift) {
    if (x == 0.0) return 0;
    int64_t bits;
    memcpy(&bits, &x, sizeof bits);
    int64_t k = (bits & ABS_MASK) >> shift;
    return bits >= 0 ? k : ~k;
}

/* parallel for over [0, n) in chunks taken from an atomic counter */
typedef void (*body_fn)(void *ctx, int64_t start, int64_t stop);
typedef struct {
    atomic_long next;
    int64_t n, chunk;
    body_fn body;
    void *ctx;
} Loop;

static void *loop_worker(void *arg) {
    Loop *l = (Loop *)arg;
    for (;;) {
        int64_t s = atomic_fetch_add(&l->next, l->chunk);
        if (s >= l->n) break;
        int64_t e = s + l->chunk < l->n ? s + l->chunk : l->n;
        l->body(l->ctx, s, e);
    }
    return NULL;
}

static void parallel_for(int64_t n, int64_t chunk, int64_t n_threads, body_fn body, void *ctx) {
    Loop l;
    atomic_init(&l.next, 0);
    l.n = n;
    l.chunk = chunk;
    l.body = body;
    l.ctx = ctx;
    if (n_threads > 64) n_threads = 64;
    pthread_t th[64];
    int started = 0;
    for (int64_t i = 1; i < n_threads && (i - 1) * chunk < n; i++) {
        if (pthread_create(&th[started], NULL, loop_worker, &l) != 0) break;
        started++;
    }
    loop_worker(&l);
    for (int i = 0; i < started; i++) pthread_join(th[i], NULL);
}

/* ---------------------------------------------------------------- transpose */
typedef struct {
    int64_t n_outputs, n, n_times, cap;
    const int64_t *ptr, *stride_i, *stride_t; /* per output: address and element strides of values[o] */
    double *rows;
} TCtx;

static void transpose_body(void *arg, int64_t b0, int64_t b1) {
    TCtx *c = (TCtx *)arg;
    for (int64_t b = b0; b < b1; b++) {
        int64_t i0 = b * TILE, i1 = i0 + TILE < c->n ? i0 + TILE : c->n;
        for (int64_t t = 0; t < c->n_times; t++)
            for (int64_t o = 0; o < c->n_outputs; o++) {
                const double *a = (const double *)(intptr_t)c->ptr[o];
                double *dst = c->rows + (o * c->n_times + t) * c->cap;
                for (int64_t i = i0; i < i1; i++) dst[i] = a[i * c->stride_i[o] + t * c->stride_t[o]];
            }
    }
}

void pkpd_transpose(int64_t n_outputs, int64_t n, int64_t n_times, const int64_t *ptr, const int64_t *stride_i,
                    const int64_t *stride_t, double *rows, int64_t cap, int64_t n_threads) {
    TCtx c = {n_outputs, n, n_times, cap, ptr, stride_i, stride_t, rows};
    parallel_for((n + TILE - 1) / TILE, 16, n_threads, transpose_body, &c);
}

/* ---------------------------------------------------------------- scan */
typedef struct {
    const double *rows;
    int64_t n, cap;
    int shift;
    int64_t *count, *key_lower, *key_upper;
    double *total, *lower, *upper;
} SCtx;

static void scan_body(void *arg, int64_t r0, int64_t r1) {
    SCtx *c = (SCtx *)arg;
    for (int64_t r = r0; r < r1; r++) {
        const double *row = c->rows + r * c->cap;
        int64_t cnt = 0, klo = INT64_MAX, khi = INT64_MIN;
        double s = 0.0, lo = INFINITY, hi = -INFINITY;
        for (int64_t i = 0; i < c->n; i++) {
            double x = row[i];
            if (x != x) continue; /* NaN: a failed subject (on_failure="mark") */
            cnt++;
            s += x;
            lo = x < lo ? x : lo;
            hi = x > hi ? x : hi;
            int64_t k = key(x, c->shift);
            klo = k < klo ? k : klo;
            khi = k > khi ? k : khi;
        }
        c->count[r] = cnt;
        c->total[r] = s;
        c->lower[r] = lo;
        c->upper[r] = hi;
        c->key_lower[r] = klo;
        c->key_upper[r] = khi;
    }
}

void pkpd_scan(const double *rows, int64_t n_rows, int64_t cap, int64_t n, int64_t shift, int64_t *count,
               double *total, double *lower, double *upper, int64_t *key_lower, int64_t *key_upper,
               int64_t n_threads) {
    SCtx c = {rows, n, cap, (int)shift, count, key_lower, key_upper, total, lower, upper};
    parallel_for(n_rows, 4, n_threads, scan_body, &c);
}

/* ---------------------------------------------------------------- accumulate */
typedef struct {
    const double *rows;
    int64_t n, cap;
    int shift;
    const double *mean;
    double *sq_dev;
    void *counts;
    int wide; /* counts are int64 (else int32) */
    const int64_t *base, *offset;
    int histogram;
} ACtx;

static void accumulate_body(void *arg, int64_t r0, int64_t r1) {
    ACtx *c = (ACtx *)arg;
    for (int64_t r = r0; r < r1; r++) {
        const double *row = c->rows + r * c->cap;
        double centre = c->mean[r], m2 = 0.0;
        int64_t start = c->offset[r] - c->base[r];
        for (int64_t i = 0; i < c->n; i++) {
            double x = row[i];
            if (x != x) continue;
            double d = x - centre;
            m2 += d * d;
            if (c->histogram) {
                int64_t j = start + key(x, c->shift);
                if (c->wide)
                    ((int64_t *)c->counts)[j] += 1;
                else
                    ((int32_t *)c->counts)[j] += 1;
            }
        }
        c->sq_dev[r] = m2;
    }
}

void pkpd_accumulate(const double *rows, int64_t n_rows, int64_t cap, int64_t n, int64_t shift, const double *mean,
                     double *sq_dev, void *counts, int64_t wide, const int64_t *base, const int64_t *offset,
                     int64_t histogram, int64_t n_threads) {
    ACtx c = {rows, n, cap, (int)shift, mean, sq_dev, counts, (int)wide, base, offset, (int)histogram};
    parallel_for(n_rows, 4, n_threads, accumulate_body, &c);
}
"""

_P, _I = ctypes.c_void_p, ctypes.c_int64


def _check(a: np.ndarray, dtype, name: str, shape=None) -> int:
    if a.dtype != dtype or not a.flags.c_contiguous or (shape is not None and a.shape != shape):
        raise PkpdError(f"internal: summary kernel argument {name} must be C-contiguous {np.dtype(dtype)}"
                        + (f" of shape {shape}" if shape else "") + f"; got {a.dtype} {a.shape}")
    return a.ctypes.data


class NativeKernels:
    """``transpose``, ``scan`` and ``accumulate`` with the numba kernels' signatures, run by the C library."""

    def __init__(self, path: Path, image: bytes):
        from ._native import load_library

        self.path = path
        lib = load_library(path, image)
        self._transpose, self._scan, self._accumulate = lib.pkpd_transpose, lib.pkpd_scan, lib.pkpd_accumulate
        self._transpose.argtypes = [_I, _I, _I, _P, _P, _P, _P, _I, _I]
        self._scan.argtypes = [_P, _I, _I, _I, _I, _P, _P, _P, _P, _P, _P, _I]
        self._accumulate.argtypes = [_P, _I, _I, _I, _I, _P, _P, _P, _I, _P, _P, _I, _I]
        for f in (self._transpose, self._scan, self._accumulate):
            f.restype = None

    @staticmethod
    def _threads() -> int:
        from ._native import threads

        return threads()

    def transpose(self, values, rows):
        """rows[o, t, i] = values[o][i, t] for i < n (values: (n, n_times) float arrays, any strides)."""
        n, n_times = values[0].shape
        n_out = len(values)
        if (rows.dtype != float or not rows.flags.c_contiguous or rows.ndim != 3 or rows.shape[0] < n_out
                or rows.shape[1] != n_times or rows.shape[2] < n
                or any(v.dtype != float or v.shape != (n, n_times) for v in values)):
            raise PkpdError("internal: inconsistent arrays passed to the summary transpose")
        ptr = np.array([v.ctypes.data for v in values], dtype=np.int64)
        stride_i = np.array([v.strides[0] // 8 for v in values], dtype=np.int64)
        stride_t = np.array([v.strides[1] // 8 for v in values], dtype=np.int64)
        if any(s % 8 for v in values for s in v.strides):
            raise PkpdError("internal: summary transpose needs 8-byte aligned strides")
        self._transpose(n_out, n, n_times, ptr.ctypes.data, stride_i.ctypes.data, stride_t.ctypes.data,
                        rows.ctypes.data, rows.shape[2], self._threads())

    def scan(self, rows, n, shift, count, total, lower, upper, key_lower, key_upper):
        """Per row (first ``n`` subjects): count of non-NaN values, their sum, min and max, min and max key."""
        n_out, n_times, cap = rows.shape
        shape = (n_out, n_times)
        if not 0 <= n <= cap:
            raise PkpdError("internal: summary scan beyond the rows")
        self._scan(_check(rows, float, "rows"), n_out * n_times, cap, int(n), int(shift),
                   _check(count, np.int64, "count", shape), _check(total, float, "total", shape),
                   _check(lower, float, "lower", shape), _check(upper, float, "upper", shape),
                   _check(key_lower, np.int64, "key_lower", shape), _check(key_upper, np.int64, "key_upper", shape),
                   self._threads())

    def accumulate(self, rows, n, shift, mean, sq_dev, counts, base, offset, histogram):
        """Per row: sum of squared deviations from ``mean``; with ``histogram``, add each value to its bucket."""
        n_out, n_times, cap = rows.shape
        n_rows = n_out * n_times
        shape = (n_out, n_times)
        if counts.dtype not in (np.int32, np.int64) or not counts.flags.c_contiguous or not 0 <= n <= cap:
            raise PkpdError("internal: inconsistent arrays passed to the summary accumulate")
        if histogram and (counts.size < int(offset[-1]) or offset.shape != (n_rows + 1,)):
            raise PkpdError("internal: summary histogram smaller than its row windows")
        self._accumulate(_check(rows, float, "rows"), n_rows, cap, int(n), int(shift),
                         _check(mean, float, "mean", shape), _check(sq_dev, float, "sq_dev", shape),
                         counts.ctypes.data, int(counts.dtype == np.int64), _check(base, np.int64, "base", (n_rows,)),
                         _check(offset, np.int64, "offset", (n_rows + 1,)), int(bool(histogram)), self._threads())


@functools.lru_cache(maxsize=2)
def _build(cache: str) -> NativeKernels:
    from ._native import compile_c, compiler

    if compiler() is None:
        raise PkpdError("no C compiler")
    digest = hashlib.sha256(C_SOURCE.encode()).hexdigest()[:20]
    return NativeKernels(*compile_c(C_SOURCE, Path(cache), f"pkpd_c_summaries_{digest}", "summary kernels"))


def kernels(engine: str):
    """The summary kernels for a CPU engine: C for ``"native"``, the numba module for ``"numba"``."""
    if engine == "native":
        from ._cache import cache_root

        return _build(str(cache_root()))
    from . import _summary_kernels

    return _summary_kernels

