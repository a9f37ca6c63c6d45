"""Compiled loops of the closed-form solver of linear models (numba, cached on disk). Private.

Between two events a linear model ``dy/dt = A y + c`` (``c``: the model's constant input plus the infusion rates
running) has the exact solution

.. math:: y(t + h) = \\Phi(h)\\,y(t) + g(h), \\qquad \\Phi(h) = e^{Ah},\\quad
          g(h) = \\int_0^h e^{As}\\,ds\\;c,

both read off one matrix exponential of the bordered matrix :math:`h\\,[[A, c], [0, 0]]` (Van Loan 1978, IEEE
Trans Autom Control 23:395; of :math:`Ah` alone when :math:`c = 0`), which needs no inverse of :math:`A` (a state
without elimination makes it singular). The
exponential is the scaling-and-squaring Padé [13/13] approximant of Higham (2005, SIAM J Matrix Anal Appl 26:1179),
backward stable to double precision. Each subject keeps its last few exponentials (keyed by step, coefficients and
infusion rates), so a regular output grid costs one exponential per distinct step.

:func:`solve_batch` walks every subject's events exactly as the ODE integrator does (:mod:`pkpd._integrator`: the
same event kinds, the same order of records and events at equal times), in parallel over subjects.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

# Higham (2005), table 2.3: Padé [13/13] coefficients and the largest 1-norm it is used for without scaling
_B13 = np.array([64764752532480000.0, 32382376266240000.0, 7771770303897600.0, 1187353796428800.0,
                 129060195264000.0, 10559470521600.0, 670442572800.0, 33522128640.0, 1323241920.0, 40840800.0,
                 960960.0, 16380.0, 182.0, 1.0])
_THETA13 = 5.371920351148152
_CACHE = 8  # exponentials kept per subject


@njit(cache=True)
def _matmul(a, b, out):
    n = a.shape[0]
    for i in range(n):
        for j in range(n):
            acc = 0.0
            for k in range(n):
                acc += a[i, k] * b[k, j]
            out[i, j] = acc


@njit(cache=True)
def _solve_in_place(a, b):
    """b <- a^-1 b by Gaussian elimination with partial pivoting (a is overwritten); False when a is singular."""
    n = a.shape[0]
    m = b.shape[1]
    for k in range(n):
        p = k
        big = abs(a[k, k])
        for i in range(k + 1, n):
            if abs(a[i, k]) > big:
                big = abs(a[i, k])
                p = i
        if big == 0.0 or not math.isfinite(big):
            return False
        if p != k:
            for j in range(n):
                a[k, j], a[p, j] = a[p, j], a[k, j]
            for j in range(m):
                b[k, j], b[p, j] = b[p, j], b[k, j]
        for i in range(k + 1, n):
            f = a[i, k] / a[k, k]
            if f != 0.0:
                for j in range(k + 1, n):
                    a[i, j] -= f * a[k, j]
                for j in range(m):
                    b[i, j] -= f * b[k, j]
    for k in range(n - 1, -1, -1):
        for j in range(m):
            acc = b[k, j]
            for i in range(k + 1, n):
                acc -= a[k, i] * b[i, j]
            b[k, j] = acc / a[k, k]
    return True


@njit(cache=True)
def expm(m):
    """The matrix exponential of a square matrix (scaling and squaring with the Padé [13/13] approximant).

    Non-finite input gives a NaN matrix (reported by the caller as a non-finite state).
    """
    n = m.shape[0]
    out = np.empty((n, n))
    norm = 0.0
    for j in range(n):
        col = 0.0
        for i in range(n):
            col += abs(m[i, j])
        norm = max(norm, col)
    if not math.isfinite(norm):
        out[:] = np.nan
        return out
    s = 0
    if norm > _THETA13:
        s = max(0, int(math.ceil(math.log2(norm / _THETA13))))
    scale = 2.0 ** (-s)
    a = m * scale
    a2 = np.empty((n, n))
    a4 = np.empty((n, n))
    a6 = np.empty((n, n))
    _matmul(a, a, a2)
    _matmul(a2, a2, a4)
    _matmul(a4, a2, a6)
    b = _B13
    inner = b[13] * a6 + b[11] * a4 + b[9] * a2
    tmp = np.empty((n, n))
    _matmul(a6, inner, tmp)
    tmp += b[7] * a6 + b[5] * a4 + b[3] * a2
    for i in range(n):
        tmp[i, i] += b[1]
    u = np.empty((n, n))
    _matmul(a, tmp, u)
    inner = b[12] * a6 + b[10] * a4 + b[8] * a2
    v = np.empty((n, n))
    _matmul(a6, inner, v)
    v += b[6] * a6 + b[4] * a4 + b[2] * a2
    for i in range(n):
        v[i, i] += b[0]
    lhs = v - u
    out[:, :] = v + u
    if not _solve_in_place(lhs, out):
        out[:] = np.nan
        return out
    for _ in range(s):
        _matmul(out, out, tmp)
        out[:, :] = tmp
    return out


@njit(cache=True)
def _propagators(a, c, h, phi, g):
    """phi <- exp(A h) and g <- int_0^h exp(A s) ds c: one exponential of A h when c = 0, else of the bordered
    matrix h [[A, c], [0, 0]] (Van Loan), whose last column holds g."""
    n = a.shape[0]
    zero = True
    for i in range(n):
        if c[i] != 0.0:
            zero = False
    m = n if zero else n + 1
    big = np.zeros((m, m))
    for i in range(n):
        for j in range(n):
            big[i, j] = a[i, j] * h
        if not zero:
            big[i, n] = c[i] * h
    e = expm(big)
    for i in range(n):
        for j in range(n):
            phi[i, j] = e[i, j]
        g[i] = 0.0 if zero else e[i, n]


@njit(cache=True)
def _advance(y, c, h, a, key, cache_h, cache_key, cache_phi, cache_g, slot, ynew, counters):
    """y <- y(t + h) for dy/dt = A y + c (``key`` names A and c); returns the next cache slot to overwrite."""
    n = y.shape[0]
    k = -1
    for i in range(cache_h.shape[0]):
        if cache_h[i] == h and cache_key[i] == key:
            k = i
            break
    if k < 0:
        k = slot
        _propagators(a, c, h, cache_phi[k], cache_g[k])
        cache_h[k] = h
        cache_key[k] = key
        slot = (slot + 1) % cache_h.shape[0]
        counters[1] += 1
    phi = cache_phi[k]
    g = cache_g[k]
    for i in range(n):
        acc = g[i]
        for j in range(n):
            acc += phi[i, j] * y[j]
        ynew[i] = acc
    for i in range(n):
        y[i] = ynew[i]
    counters[0] += 1
    return slot


@njit(cache=True, inline="always")
def _record_rows(t, y, epoch, tt, pre, io, n_out, want_pre, states_out, epoch_out):
    # as pkpd._integrator._record_rows: every output time equal to t (reached) whose pre-flag matches want_pre (or
    # any when want_pre < 0); outputs are evaluated later from the states and the coefficient epoch
    n = y.shape[0]
    while io < n_out:
        to = tt[io]
        if to > t:
            break
        if want_pre >= 0 and pre[io] != want_pre:
            break
        for i in range(n):
            states_out[io, i] = y[i]
        epoch_out[io] = epoch
        io += 1
    return io


@njit(cache=True, inline="always")
def _finite(y):
    for i in range(y.shape[0]):
        if not math.isfinite(y[i]):
            return False
    return True


@njit(cache=True)
def _solve_one(A, C, y, y_init, ev_t, ev_kind, ev_idx, ev_val, n_ev, tt, pre, n_out, t0, states_out, epoch_out,
               counters):
    n = y.shape[0]
    u = np.zeros(n)
    c = np.empty(n)
    ynew = np.empty(n)
    cache_h = np.full(_CACHE, np.nan)
    cache_key = np.full(_CACHE, -1, dtype=np.int64)
    cache_phi = np.empty((_CACHE, n, n))
    cache_g = np.empty((_CACHE, n))
    slot = 0
    epoch = 0
    key = 0  # changes with the coefficients or the infusion rates: the propagators of one key can be reused
    t = t0
    io = 0
    ie = 0
    t_final = tt[n_out - 1] if n_out > 0 else t0
    while True:
        io = _record_rows(t, y, epoch, tt, pre, io, n_out, 1, states_out, epoch_out)
        while ie < n_ev and ev_t[ie] <= t:
            k = ev_kind[ie]
            j = ev_idx[ie]
            if k == 0:
                y[j] += ev_val[ie]
            elif k == 1:
                u[j] += ev_val[ie]
                if abs(u[j]) < 1e-12 * abs(ev_val[ie]):
                    u[j] = 0.0  # rounding left over when an infusion stops
                key += 1
            elif k == 2:
                for i in range(n):
                    y[i] = y_init[i]
                    u[i] = 0.0
                key += 1
            elif k == 3:
                epoch += 1  # a parameter or covariate changed: the next coefficients (evaluated by the caller)
                key += 1
            elif k == 5:
                io = _record_rows(t, y, epoch, tt, pre, io, io + 1, -1, states_out, epoch_out)
            else:
                y[j] = ev_val[ie]
            ie += 1
        if not _finite(y):
            counters[3] = t
            return 3
        io = _record_rows(t, y, epoch, tt, pre, io, n_out, -1, states_out, epoch_out)
        if io >= n_out:
            return 0
        t_next = t_final
        last = True
        if ie < n_ev and ev_t[ie] <= t_final:
            t_next = ev_t[ie]
            last = False
        a = A[epoch]
        for i in range(n):
            c[i] = C[epoch, i] + u[i]
        while io < n_out and (tt[io] < t_next or (last and tt[io] <= t_next)):
            if tt[io] > t:
                slot = _advance(y, c, tt[io] - t, a, key, cache_h, cache_key, cache_phi, cache_g, slot, ynew,
                                counters)
                if not _finite(y):
                    counters[3] = t
                    return 3
                t = tt[io]
            io = _record_rows(t, y, epoch, tt, pre, io, io + 1, -1, states_out, epoch_out)
        if t_next > t:
            slot = _advance(y, c, t_next - t, a, key, cache_h, cache_key, cache_phi, cache_g, slot, ynew,
                            counters)
            if not _finite(y):
                counters[3] = t
                return 3
        t = t_next
        counters[3] = t
        if last and io >= n_out:
            return 0


@njit(cache=True, parallel=True)
def solve_batch(A, C, Y0, ev_t, ev_kind, ev_idx, ev_val, n_ev, TT, PRE, n_out, row, t0, states_out, epoch_out,
                status, counters):
    """Every subject's states at its output times (``states_out`` (n, n_times, n_states)) and the coefficient epoch
    in force there (``epoch_out``), from ``A`` (n, n_epochs, n_states, n_states) and ``C`` (n, n_epochs,
    n_states); the other arguments as ``solve_batch`` of :mod:`pkpd._integrator`."""
    n_subj = Y0.shape[0]
    for s in prange(n_subj):
        si = row[s]
        y = Y0[s].copy()
        status[s] = _solve_one(A[s], C[s], y, Y0[s], ev_t[s], ev_kind[s], ev_idx[s], ev_val[s], n_ev[s], TT[si],
                               PRE[si], n_out[si], t0[s], states_out[s], epoch_out[s], counters[s])
