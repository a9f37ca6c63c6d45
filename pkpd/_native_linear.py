"""The loop of the closed-form solver of linear models as C, built once per pkpd version (private).

Same function, arguments and results (the same operations in the same order) as ``solve_batch`` of the numba
kernels in :mod:`pkpd._linear_kernels`, whose docstring gives the method. With the native engine this spares the
closed form numba's import and its first compile (tens of seconds).
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
#include <stdlib.h>
#include <string.h>

#define CACHE 8
#define THETA13 5.371920351148152
static const double B13[14] = {64764752532480000.0, 32382376266240000.0, 7771770303897600.0, 1187353796428800.0,
                               129060195264000.0, 10559470521600.0, 670442572800.0, 33522128640.0, 1323241920.0,
                               40840800.0, 960960.0, 16380.0, 182.0, 1.0};

static void matmul(int n, const double *a, const double *b, double *out) {
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            double acc = 0.0;
            for (int k = 0; k < n; k++) acc += a[i * n + k] * b[k * n + j];
            out[i * n + j] = acc;
        }
}

/* b <- a^-1 b (n x n, n x n) by Gaussian elimination with partial pivoting; 0 when a is singular */
static int solve_in_place(int n, double *a, double *b) {
    for (int k = 0; k < n; k++) {
        int p = k;
        double big = fabs(a[k * n + k]);
        for (int i = k + 1; i < n; i++)
            if (fabs(a[i * n + k]) > big) {
                big = fabs(a[i * n + k]);
                p = i;
            }
        if (big == 0.0 || !isfinite(big)) return 0;
        if (p != k) {
            for (int j = 0; j < n; j++) {
                double x = a[k * n + j];
                a[k * n + j] = a[p * n + j];
                a[p * n + j] = x;
                x = b[k * n + j];
                b[k * n + j] = b[p * n + j];
                b[p * n + j] = x;
            }
        }
        for (int i = k + 1; i < n; i++) {
            double f = a[i * n + k] / a[k * n + k];
            if (f != 0.0) {
                for (int j = k + 1; j < n; j++) a[i * n + j] -= f * a[k * n + j];
                for (int j = 0; j < n; j++) b[i * n + j] -= f * b[k * n + j];
            }
        }
    }
    for (int k = n - 1; k >= 0; k--)
        for (int j = 0; j < n; j++) {
            double acc = b[k * n + j];
            for (int i = k + 1; i < n; i++) acc -= a[k * n + i] * b[i * n + j];
            b[k * n + j] = acc / a[k * n + k];
        }
    return 1;
}

/* out <- expm(m) (n x n); work: 7 n x n */
static void expm(int n, const double *m, double *out, double *work) {
    const int nn = n * n;
    double *a = work, *a2 = work + nn, *a4 = work + 2 * nn, *a6 = work + 3 * nn, *inner = work + 4 * nn,
           *tmp = work + 5 * nn, *u = work + 6 * nn;
    double norm = 0.0;
    for (int j = 0; j < n; j++) {
        double col = 0.0;
        for (int i = 0; i < n; i++) col += fabs(m[i * n + j]);
        norm = col > norm ? col : norm;
    }
    if (!isfinite(norm)) {
        for (int i = 0; i < nn; i++) out[i] = NAN;
        return;
    }
    int s = 0;
    if (norm > THETA13) {
        s = (int)ceil(log2(norm / THETA13));
        if (s < 0) s = 0;
    }
    double scale = pow(2.0, (double)(-s));
    for (int i = 0; i < nn; i++) a[i] = m[i] * scale;
    matmul(n, a, a, a2);
    matmul(n, a2, a2, a4);
    matmul(n, a4, a2, a6);
    const double *b = B13;
    for (int i = 0; i < nn; i++) inner[i] = b[13] * a6[i] + b[11] * a4[i] + b[9] * a2[i];
    matmul(n, a6, inner, tmp);
    for (int i = 0; i < nn; i++) tmp[i] += b[7] * a6[i] + b[5] * a4[i] + b[3] * a2[i];
    for (int i = 0; i < n; i++) tmp[i * n + i] += b[1];
    matmul(n, a, tmp, u);
    for (int i = 0; i < nn; i++) inner[i] = b[12] * a6[i] + b[10] * a4[i] + b[8] * a2[i];
    matmul(n, a6, inner, tmp); /* tmp = v */
    for (int i = 0; i < nn; i++) tmp[i] += b[6] * a6[i] + b[4] * a4[i] + b[2] * a2[i];
    for (int i = 0; i < n; i++) tmp[i * n + i] += b[0];
    for (int i = 0; i < nn; i++) {
        double v = tmp[i];
        a[i] = v - u[i]; /* lhs */
        out[i] = v + u[i];
    }
    if (!solve_in_place(n, a, out)) {
        for (int i = 0; i < nn; i++) out[i] = NAN;
        return;
    }
    for (int k = 0; k < s; k++) {
        matmul(n, out, out, tmp);
        memcpy(out, tmp, sizeof(double) * nn);
    }
}

typedef struct {
    int n;
    double *big, *e, *work, *cache_h, *cache_phi, *cache_g, *u, *c, *ynew, *y;
    int64_t *cache_key;
    int slot;
} Work;

/* phi <- exp(A h) and g <- int_0^h exp(A s) ds c: one exponential of A h when c = 0, else of the bordered matrix
   h [[A, c], [0, 0]] (Van Loan), whose last column holds g */
static void propagators(Work *w, const double *A, double h, double *phi, double *g) {
    const int n = w->n;
    int zero = 1;
    for (int i = 0; i < n; i++)
        if (w->c[i] != 0.0) zero = 0;
    const int m = zero ? n : n + 1;
    memset(w->big, 0, sizeof(double) * m * m);
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < n; j++) w->big[i * m + j] = A[i * n + j] * h;
        if (!zero) w->big[i * m + n] = w->c[i] * h;
    }
    expm(m, w->big, w->e, w->work);
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < n; j++) phi[i * n + j] = w->e[i * m + j];
        g[i] = zero ? 0.0 : w->e[i * m + n];
    }
}

static void advance(Work *w, const double *A, double h, int64_t key, double *counters) {
    const int n = w->n;
    int k = -1;
    for (int i = 0; i < CACHE; i++)
        if (w->cache_h[i] == h && w->cache_key[i] == key) {
            k = i;
            break;
        }
    if (k < 0) {
        k = w->slot;
        propagators(w, A, h, w->cache_phi + k * n * n, w->cache_g + k * n);
        w->cache_h[k] = h;
        w->cache_key[k] = key;
        w->slot = (w->slot + 1) % CACHE;
        counters[1] += 1.0;
    }
    const double *phi = w->cache_phi + k * n * n, *g = w->cache_g + k * n;
    for (int i = 0; i < n; i++) {
        double acc = g[i];
        for (int j = 0; j < n; j++) acc += phi[i * n + j] * w->y[j];
        w->ynew[i] = acc;
    }
    memcpy(w->y, w->ynew, sizeof(double) * n);
    counters[0] += 1.0;
}

static int64_t record_rows(const Work *w, double t, int64_t epoch, const double *tt, const int64_t *pre, int64_t io,
                           int64_t n_out, int want_pre, double *so, int64_t *eo) {
    const int n = w->n;
    while (io < n_out) {
        double to = tt[io];
        if (to > t) break;
        if (want_pre >= 0 && pre[io] != want_pre) break;
        for (int i = 0; i < n; i++) so[io * n + i] = w->y[i];
        eo[io] = epoch;
        io++;
    }
    return io;
}

static int all_finite(const Work *w) {
    for (int i = 0; i < w->n; i++)
        if (!isfinite(w->y[i])) return 0;
    return 1;
}

static int solve_one(Work *w, const double *A, const double *C, const double *y_init, const double *ev_t,
                     const int64_t *ev_kind, const int64_t *ev_idx, const double *ev_val, int64_t n_ev,
                     const double *tt, const int64_t *pre, int64_t n_out, double t0, double *so, int64_t *eo,
                     double *counters) {
    const int n = w->n;
    double *y = w->y, *u = w->u;
    for (int i = 0; i < n; i++) {
        y[i] = y_init[i];
        u[i] = 0.0;
    }
    for (int i = 0; i < CACHE; i++) {
        w->cache_h[i] = NAN;
        w->cache_key[i] = -1;
    }
    w->slot = 0;
    int64_t epoch = 0, io = 0, ie = 0;
    int64_t key = 0; /* changes with the coefficients or the infusion rates: propagators of one key are reused */
    double t = t0;
    double t_final = n_out > 0 ? tt[n_out - 1] : t0;
    for (;;) {
        io = record_rows(w, t, epoch, tt, pre, io, n_out, 1, so, eo);
        while (ie < n_ev && ev_t[ie] <= t) {
            int64_t k = ev_kind[ie], j = ev_idx[ie];
            if (k == 0) {
                y[j] += ev_val[ie];
            } else if (k == 1) {
                u[j] += ev_val[ie];
                if (fabs(u[j]) < 1e-12 * fabs(ev_val[ie])) u[j] = 0.0; /* rounding left when an infusion stops */
                key++;
            } else if (k == 2) {
                for (int i = 0; i < n; i++) {
                    y[i] = y_init[i];
                    u[i] = 0.0;
                }
                key++;
            } else if (k == 3) {
                epoch++; /* a parameter or covariate changed: the next coefficients */
                key++;
            } else if (k == 5) {
                io = record_rows(w, t, epoch, tt, pre, io, io + 1, -1, so, eo);
            } else {
                y[j] = ev_val[ie];
            }
            ie++;
        }
        if (!all_finite(w)) {
            counters[3] = t;
            return 3;
        }
        io = record_rows(w, t, epoch, tt, pre, io, n_out, -1, so, eo);
        if (io >= n_out) return 0;
        double t_next = t_final;
        int last = 1;
        if (ie < n_ev && ev_t[ie] <= t_final) {
            t_next = ev_t[ie];
            last = 0;
        }
        const double *a = A + epoch * n * n;
        for (int i = 0; i < n; i++) w->c[i] = C[epoch * n + i] + u[i];
        while (io < n_out && (tt[io] < t_next || (last && tt[io] <= t_next))) {
            if (tt[io] > t) {
                advance(w, a, tt[io] - t, key, counters);
                if (!all_finite(w)) {
                    counters[3] = t;
                    return 3;
                }
                t = tt[io];
            }
            io = record_rows(w, t, epoch, tt, pre, io, io + 1, -1, so, eo);
        }
        if (t_next > t) {
            advance(w, a, t_next - t, key, counters);
            if (!all_finite(w)) {
                counters[3] = t;
                return 3;
            }
        }
        t = t_next;
        counters[3] = t;
        if (last && io >= n_out) return 0;
    }
}

typedef struct {
    atomic_long next;
    int64_t n_subj, n, n_ep, max_ev, n_times;
    const double *A, *C, *Y0, *ev_t, *ev_val, *TT, *t0;
    const int64_t *ev_kind, *ev_idx, *n_ev, *PRE, *n_out, *row;
    double *states_out, *counters;
    int64_t *epoch_out, *status;
} Job;

static void *worker(void *arg) {
    Job *b = (Job *)arg;
    const int n = (int)b->n;
    Work w;
    w.n = n;
    const int m1 = n + 1;
    double *mem = malloc(sizeof(double) * (size_t)(9 * m1 * m1 + CACHE + CACHE * n * n + CACHE * n + 4 * n));
    int64_t *keys = malloc(sizeof(int64_t) * CACHE);
    if (mem == NULL || keys == NULL) {
        free(mem);
        free(keys);
        for (;;) { /* no memory for the work arrays: mark the subjects left to this thread as failed */
            int64_t s = atomic_fetch_add(&b->next, 1);
            if (s >= b->n_subj) return NULL;
            b->status[s] = 3;
        }
    }
    w.big = mem;
    w.e = w.big + m1 * m1;
    w.work = w.e + m1 * m1;
    w.cache_h = w.work + 7 * m1 * m1;
    w.cache_phi = w.cache_h + CACHE;
    w.cache_g = w.cache_phi + CACHE * n * n;
    w.u = w.cache_g + CACHE * n;
    w.c = w.u + n;
    w.ynew = w.c + n;
    w.y = w.ynew + n;
    w.cache_key = keys;
    for (;;) {
        int64_t s = atomic_fetch_add(&b->next, 1);
        if (s >= b->n_subj) break;
        int64_t si = b->row[s];
        b->status[s] = solve_one(&w, b->A + s * b->n_ep * n * n, b->C + s * b->n_ep * n, b->Y0 + s * n,
                                 b->ev_t + s * b->max_ev, b->ev_kind + s * b->max_ev, b->ev_idx + s * b->max_ev,
                                 b->ev_val + s * b->max_ev, b->n_ev[s], b->TT + si * b->n_times,
                                 b->PRE + si * b->n_times, b->n_out[si], b->t0[s],
                                 b->states_out + s * b->n_times * n, b->epoch_out + s * b->n_times,
                                 b->counters + s * 4);
    }
    free(mem);
    free(keys);
    return NULL;
}

void pkpd_linear_solve_batch(int64_t n_subj, int64_t n, int64_t n_ep, int64_t max_ev, int64_t n_times,
                             const double *A, const double *C, const double *Y0, const double *ev_t,
                             const int64_t *ev_kind, const int64_t *ev_idx, const double *ev_val, const int64_t *n_ev,
                             const double *TT, const int64_t *PRE, const int64_t *n_out, const int64_t *row,
                             const double *t0, double *states_out, int64_t *epoch_out, int64_t *status,
                             double *counters, int64_t n_threads) {
    Job b;
    atomic_init(&b.next, 0);
    b.n_subj = n_subj;
    b.n = n;
    b.n_ep = n_ep;
    b.max_ev = max_ev;
    b.n_times = n_times;
    b.A = A;
    b.C = C;
    b.Y0 = Y0;
    b.ev_t = ev_t;
    b.ev_kind = ev_kind;
    b.ev_idx = ev_idx;
    b.ev_val = ev_val;
    b.n_ev = n_ev;
    b.TT = TT;
    b.PRE = PRE;
    b.n_out = n_out;
    b.row = row;
    b.t0 = t0;
    b.states_out = states_out;
    b.epoch_out = epoch_out;
    b.status = status;
    b.counters = counters;
    if (n_threads > 64) n_threads = 64;
    if (n_threads > n_subj) n_threads = n_subj;
    pthread_t th[64];
    int started = 0;
    for (int64_t i = 1; i < n_threads; i++) {
        if (pthread_create(&th[started], NULL, worker, &b) != 0) break;
        started++;
    }
    worker(&b);
    for (int i = 0; i < started; i++) pthread_join(th[i], NULL);
}
"""

_P, _I = ctypes.c_void_p, ctypes.c_int64


def _check(a: np.ndarray, dtype, name: str, shape) -> int:
    if a.dtype != dtype or not a.flags.c_contiguous or a.shape != shape:
        raise PkpdError(f"internal: closed-form kernel argument {name} must be C-contiguous {np.dtype(dtype)} of "
                        f"shape {shape}; got {a.dtype} {a.shape}")
    return a.ctypes.data


class NativeLinearKernels:
    """``solve_batch`` with the numba kernel's signature, run by the C library."""

    def __init__(self, path: Path, image: bytes):
        from ._native import load_library

        self.path = path
        self._fn = load_library(path, image).pkpd_linear_solve_batch
        self._fn.argtypes = [_I] * 5 + [_P] * 17 + [_I]
        self._fn.restype = None

    def solve_batch(self, A, C, Y0, ev_t, ev_kind, ev_idx, ev_val, n_ev, TT, PRE, n_out, row, t0, states_out,
                    epoch_out, status, counters):
        """As :func:`pkpd._linear_kernels.solve_batch` (results written in place)."""
        from ._native import threads

        n_subj, n = Y0.shape
        n_ep = A.shape[1]
        max_ev = ev_t.shape[1]
        n_rows, n_times = TT.shape
        if n_subj == 0:
            return
        if int(row.max()) >= n_rows or int(row.min()) < 0:
            raise PkpdError("internal: closed-form kernel row index outside the output-time table")
        ev = (n_subj, max_ev)
        self._fn(n_subj, n, n_ep, max_ev, n_times, _check(A, float, "A", (n_subj, n_ep, n, n)),
                 _check(C, float, "C", (n_subj, n_ep, n)), _check(Y0, float, "Y0", (n_subj, n)),
                 _check(ev_t, float, "ev_t", ev), _check(ev_kind, np.int64, "ev_kind", ev),
                 _check(ev_idx, np.int64, "ev_idx", ev), _check(ev_val, float, "ev_val", ev),
                 _check(n_ev, np.int64, "n_ev", (n_subj,)), _check(TT, float, "TT", (n_rows, n_times)),
                 _check(PRE, np.int64, "PRE", (n_rows, n_times)), _check(n_out, np.int64, "n_out", (n_rows,)),
                 _check(row, np.int64, "row", (n_subj,)), _check(t0, float, "t0", (n_subj,)),
                 _check(states_out, float, "states_out", (n_subj, n_times, n)),
                 _check(epoch_out, np.int64, "epoch_out", (n_subj, n_times)),
                 _check(status, np.int64, "status", (n_subj,)), _check(counters, float, "counters", (n_subj, 4)),
                 threads())


@functools.lru_cache(maxsize=2)
def _build(cache: str) -> NativeLinearKernels:
    from ._native import compile_c, compiler

    if compiler() is None:
        raise PkpdError("no C compiler")
    digest = hashlib.sha256(C_SOURCE.encode()).hexdigest()[:20]
    return NativeLinearKernels(*compile_c(C_SOURCE, Path(cache), f"pkpd_c_linear_{digest}", "closed-form kernels"))


def kernels(engine: str):
    """The closed-form kernels for a CPU engine: C for ``"native"``, the numba module for ``"numba"``."""
    if engine == "native":
        from ._cache import cache_root

        return _build(str(cache_root()))
    from . import _linear_kernels

    return _linear_kernels
