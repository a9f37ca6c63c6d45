"""Source template of the compiled integrator (private).

:mod:`pkpd.compile` writes a module per model: the generated ``_rhs``/``_jac``/``_record``/``_static`` functions
followed by this template, which every model shares. numba compiles the module once and caches the machine code
on disk next to it, so a model is compiled once per version of its file and of this template.

Methods
-------
* ``tsit5``: Tsitouras' 5(4) explicit Runge-Kutta pair (Tsitouras 2011, Comput Math Appl 62:770) with its free
  4th-order dense output, FSAL, PI-free standard step control (Hairer, Norsett & Wanner 1993, II.4).
* ``rodas4``: Hairer & Wanner's 6-stage, order 4(3), stiffly accurate L-stable Rosenbrock method (Hairer & Wanner
  1996, Solving ODEs II, IV.7; coefficients of RODAS, METH=1, in the KPP form of Sandu et al. 1997 Atmos Environ
  31:3459) with the analytic Jacobian from the model's symbolic derivative, and cubic Hermite dense output.
* ``auto``: starts with tsit5 and switches a subject to rodas4 for the rest of its run when the step size is held
  at Tsit5's stability boundary (``h * |lambda_max| > 2.8``, the boundary being 3.5 on the real axis, with
  ``lambda_max`` from a power iteration on the analytic Jacobian, checked every 5 accepted steps, 3 times in a
  row) while the next output is more than 5 steps away, as LSODA-type codes do, so non-stiff models never pay for
  the implicit method. Rodas4 steps land exactly on output times (its error control covers step ends; a cubic
  interpolant between long implicit steps would not meet the tolerance).

Events (per subject, sorted by time; applied in order, then integration restarts):
kind 0: ``y[state] += value`` (bolus); kind 1: ``u[state] += value`` (infusion rate change);
kind 2: reset (states to their initial values, infusions off); kind 3: ``q[index] = value`` (a covariate changes;
static derived quantities are recomputed); kind 4: ``y[state] = value``; kind 5: record the next output row now
(its time must equal the event's), so outputs can sit between events at one time, in the order of the table.
A segment between two times closer than the smallest step, 16 eps max(|t|, |tend|, 1) (doses at 0.3 and at
0.1 + 0.2 h, as two regimens added together give), is covered by one explicit Euler step, whose error is below
rounding and which is not counted as a step (the C template and the JAX backend do the same).

Status codes: 0 ok, 1 too many steps, 2 step size underflow, 3 non-finite values, 4 singular iteration matrix.
"""

from ._tableaus import dense_lines, numba_constants

TEMPLATE = r'''
# ----------------------------------------------------------------------------------------------- shared template
#@CONSTANTS@


@njit(cache=True, inline="always")
def _f(t, y, q, u, dy):
    _rhs(t, y, q, dy)
    for i in range(_N):
        dy[i] += u[i]


@njit(cache=True)
def _wnorm(e, y0, y1, rtol, atol):
    n = _N
    acc = 0.0
    for i in range(n):
        sc = atol + rtol * max(abs(y0[i]), abs(y1[i]))
        acc += (e[i] / sc) ** 2
    return math.sqrt(acc / n)


@njit(cache=True)
def _initial_step(t, tend, y, f0, q, u, rtol, atol, order, tmp, f1):
    # Hairer, Norsett & Wanner (1993) II.4, algorithm for the starting step size.
    n = _N
    d0 = 0.0
    d1 = 0.0
    for i in range(n):
        sc = atol + rtol * abs(y[i])
        d0 += (y[i] / sc) ** 2
        d1 += (f0[i] / sc) ** 2
    d0 = math.sqrt(d0 / n)
    d1 = math.sqrt(d1 / n)
    if d0 < 1e-5 or d1 < 1e-5:
        h0 = 1e-6
    else:
        h0 = 0.01 * d0 / d1
    h0 = min(h0, tend - t)
    for i in range(n):
        tmp[i] = y[i] + h0 * f0[i]
    _f(t + h0, tmp, q, u, f1)
    d2 = 0.0
    for i in range(n):
        sc = atol + rtol * abs(y[i])
        d2 += ((f1[i] - f0[i]) / sc) ** 2
    d2 = math.sqrt(d2 / n) / h0
    if max(d1, d2) <= 1e-15:
        h1 = max(1e-6, h0 * 1e-3)
    else:
        h1 = (0.01 / max(d1, d2)) ** (1.0 / (order + 1.0))
    return min(100.0 * h0, h1, tend - t)


@njit(cache=True, inline="always")
def _record_rows(t, y, q, tt, pre, io, n_out, want_pre, states_out, outputs_out, ws, wo, obuf):
    # Writes every output time equal to t (already reached) whose pre-flag matches want_pre (or any when
    # want_pre < 0), and returns the new output index.
    while io < n_out:
        to = tt[io]
        if to > t:
            break
        if want_pre >= 0 and pre[io] != want_pre:
            break
        if ws:
            for i in range(_N):
                states_out[io, i] = y[i]
        if wo:
            _record(to, y, q, obuf)
            for i in range(obuf.shape[0]):
                outputs_out[io, i] = obuf[i]
        io += 1
    return io


@njit(cache=True)
def _spectral_radius(J, v, w):
    """Estimate of the largest |eigenvalue| of J by a few power iterations (v, w: work vectors)."""
    n = _N
    for i in range(n):
        v[i] = 1.0 + 0.1 * i
    lam = 0.0
    for _ in range(8):
        norm = 0.0
        for i in range(n):
            acc = 0.0
            for j in range(n):
                acc += J[i, j] * v[j]
            w[i] = acc
            norm += acc * acc
        norm = math.sqrt(norm)
        vn = 0.0
        for i in range(n):
            vn += v[i] * v[i]
        vn = math.sqrt(vn)
        if norm == 0.0 or vn == 0.0 or not math.isfinite(norm):
            return lam if math.isfinite(norm) else 1e300
        lam = norm / vn
        for i in range(n):
            v[i] = w[i] / norm
    return lam


@njit(cache=True)
def _lu(a, piv):
    n = _N
    for k in range(n):
        p = k
        m = abs(a[k, k])
        for i in range(k + 1, n):
            if abs(a[i, k]) > m:
                m = abs(a[i, k])
                p = i
        piv[k] = p
        if m == 0.0:
            return False
        if p != k:
            for j in range(n):
                tmp = a[k, j]
                a[k, j] = a[p, j]
                a[p, j] = tmp
        for i in range(k + 1, n):
            a[i, k] /= a[k, k]
            for j in range(k + 1, n):
                a[i, j] -= a[i, k] * a[k, j]
    return True


@njit(cache=True)
def _lu_solve(a, piv, b):
    n = _N
    for k in range(n):
        p = piv[k]
        if p != k:
            tmp = b[k]
            b[k] = b[p]
            b[p] = tmp
    for i in range(n):
        s = b[i]
        for j in range(i):
            s -= a[i, j] * b[j]
        b[i] = s
    for i in range(n - 1, -1, -1):
        s = b[i]
        for j in range(i + 1, n):
            s -= a[i, j] * b[j]
        b[i] = s / a[i, i]


@njit(cache=True)
def _segment_tsit5(t, tend, last, y, q, u, rtol, atol, hmax, max_steps, method, tt, pre, io, n_out,
                   states_out, outputs_out, ws, wo, obuf, counters):
    """Tsit5 from t to tend; output rows with time < tend (<= tend when last).

    Returns (status, io, t); status 5 means stiffness was detected at t (y holds the state there) and the caller
    continues with Rodas4."""
    n = _N
    k1 = np.empty(n); k2 = np.empty(n); k3 = np.empty(n); k4 = np.empty(n)
    k5 = np.empty(n); k6 = np.empty(n); k7 = np.empty(n); tmp = np.empty(n); ynew = np.empty(n)
    err = np.empty(n); yout = np.empty(n)
    _f(t, y, q, u, k1)
    for i in range(n):
        if not math.isfinite(k1[i]):
            return 3, io, t
    h = _initial_step(t, tend, y, k1, q, u, rtol, atol, 4.0, tmp, k2)
    n_stiff = 0
    n_acc = 0
    not_finite = False
    e_prev = 1e-4
    stiff = False
    hmin = 16.0 * 2.220446049250313e-16 * max(abs(t), abs(tend), 1.0)
    # A tiny atol on states that start at zero with large derivatives (cells, after a dose) makes the starting-step
    # estimate underflow; start just above the resolution of t and let the controller grow the step.
    h = min(max(h, 10.0 * hmin), hmax, tend - t)
    J = np.empty((n, n))
    while t < tend:
        if counters[0] >= max_steps:
            counters[3] = t
            return 1, io, t
        if h < hmin:
            counters[3] = t
            # a step shrunk below the smallest while its stages were not finite: NaN or inf derivatives beyond t
            return (3 if not_finite else 2), io, t
        hit_end = t + 1.01 * h >= tend
        if hit_end:
            h = tend - t
        if True:
            # ---------------------------------------------------------------- Tsit5
            for i in range(n):
                tmp[i] = y[i] + h * _T_A21 * k1[i]
            _f(t + _T_C2 * h, tmp, q, u, k2)
            for i in range(n):
                tmp[i] = y[i] + h * (_T_A31 * k1[i] + _T_A32 * k2[i])
            _f(t + _T_C3 * h, tmp, q, u, k3)
            for i in range(n):
                tmp[i] = y[i] + h * (_T_A41 * k1[i] + _T_A42 * k2[i] + _T_A43 * k3[i])
            _f(t + _T_C4 * h, tmp, q, u, k4)
            for i in range(n):
                tmp[i] = y[i] + h * (_T_A51 * k1[i] + _T_A52 * k2[i] + _T_A53 * k3[i] + _T_A54 * k4[i])
            _f(t + _T_C5 * h, tmp, q, u, k5)
            for i in range(n):
                tmp[i] = y[i] + h * (_T_A61 * k1[i] + _T_A62 * k2[i] + _T_A63 * k3[i] + _T_A64 * k4[i]
                                     + _T_A65 * k5[i])
            _f(t + h, tmp, q, u, k6)
            for i in range(n):
                ynew[i] = y[i] + h * (_T_A71 * k1[i] + _T_A72 * k2[i] + _T_A73 * k3[i] + _T_A74 * k4[i]
                                      + _T_A75 * k5[i] + _T_A76 * k6[i])
            _f(t + h, ynew, q, u, k7)
            counters[1] += 6
            for i in range(n):
                err[i] = h * (_T_E1 * k1[i] + _T_E2 * k2[i] + _T_E3 * k3[i] + _T_E4 * k4[i] + _T_E5 * k5[i]
                              + _T_E6 * k6[i] + _T_E7 * k7[i])
            e = _wnorm(err, y, ynew, rtol, atol)
            # a NaN/inf anywhere in the stages makes the norm non-finite: reject (the step shrinks) and remember it
            not_finite = not math.isfinite(e)
            if not_finite:
                e = 1e10
            counters[0] += 1
            if e <= 1.0:
                tn = tend if hit_end else t + h
                # dense output (Tsitouras' free interpolant) for output times inside the step
                while io < n_out and (tt[io] < tn or (last and tt[io] <= tn)):
                    th = (tt[io] - t) / h
#@DENSE@
                    for i in range(n):
                        yout[i] = y[i] + h * (b1 * k1[i] + b2 * k2[i] + b3 * k3[i] + b4 * k4[i] + b5 * k5[i]
                                              + b6 * k6[i] + b7 * k7[i])
                    io = _record_rows(tt[io], yout, q, tt, pre, io, io + 1, -1, states_out, outputs_out, ws, wo, obuf)
                # Stiffness test every 5 accepted steps: if the step is held near Tsit5's stability boundary
                # (|h * lambda_max| ~ 3.5, lambda_max by power iteration on the analytic Jacobian) on 3 checks in
                # a row, the problem is stiff here and Rodas4 takes over for the rest of this subject.
                n_acc += 1
                if method == 0 and n_acc % 5 == 0:
                    # Rodas4 lands on every output time, so it only pays when stability holds the explicit step
                    # well below the spacing of the outputs still to come (or of the segment's end); checking
                    # that first spares the Jacobian on dense output grids.
                    gap = (tt[io] if io < n_out else tend) - tn
                    lam = 0.0
                    if gap > 5.0 * h:
                        _jac(tn, ynew, q, J)
                        counters[1] += 1
                        lam = _spectral_radius(J, tmp, err)
                    if h * lam > 2.8:
                        n_stiff += 1
                        if n_stiff >= 3:
                            counters[2] = 1.0
                            stiff = True
                    else:
                        n_stiff = 0
                t = tn
                for i in range(n):
                    y[i] = ynew[i]
                    k1[i] = k7[i]
                if stiff:
                    return 5, io, t
                # PI step-size control with Lund stabilisation (Hairer, Norsett & Wanner 1993, II.4; as DOPRI5:
                # alpha = 0.2 - 0.75 beta, beta = 0.04): fewer rejected steps than the plain controller.
                e = max(e, 1e-10)
                fac = 0.9 * e ** (-0.17) * e_prev ** 0.04
                e_prev = max(e, 1e-4)
                h = min(h * min(10.0, max(0.2, fac)), hmax)
            else:
                h = h * max(0.2, 0.9 * e ** (-0.2))
    return 0, io, t


@njit(cache=True)
def _segment_rodas4(t, tend, last, y, q, u, rtol, atol, hmax, max_steps, method, tt, pre, io, n_out,
                    states_out, outputs_out, ws, wo, obuf, counters):
    """Rodas4 from t to tend; output rows with time < tend (<= tend when last). Returns (status, io)."""
    n = _N
    k1 = np.empty(n); k2 = np.empty(n); tmp = np.empty(n); ynew = np.empty(n)
    err = np.empty(n); yout = np.empty(n)
    _f(t, y, q, u, k1)
    for i in range(n):
        if not math.isfinite(k1[i]):
            return 3, io
    h = _initial_step(t, tend, y, k1, q, u, rtol, atol, 3.0, tmp, k2)
    hmin = 16.0 * 2.220446049250313e-16 * max(abs(t), abs(tend), 1.0)
    # A tiny atol on states that start at zero with large derivatives (cells, after a dose) makes the starting-step
    # estimate underflow; start just above the resolution of t and let the controller grow the step.
    h = min(max(h, 10.0 * hmin), hmax, tend - t)
    # Rosenbrock work arrays
    J = np.empty((n, n)); A = np.empty((n, n)); piv = np.empty(n, np.int64)
    K = np.empty((6, n)); dfdt = np.zeros(n); fy = np.empty(n)
    while t < tend:
        if counters[0] >= max_steps:
            counters[3] = t
            return 1, io
        if h < hmin:
            counters[3] = t
            return 2, io
        hit_end = t + 1.01 * h >= tend
        if hit_end:
            h = tend - t
        if True:
            # ---------------------------------------------------------------- Rodas4
            _jac(t, y, q, J)
            counters[1] += 1
            if _nonautonomous:
                delta = math.sqrt(2.220446049250313e-16) * max(1e-5, abs(t))
                _f(t + delta, y, q, u, fy)
                for i in range(n):
                    dfdt[i] = (fy[i] - k1[i]) / delta
            not_finite = False
            while True:
                if h < hmin:
                    counters[3] = t
                    # shrunk below the smallest step while the new state was not finite: NaN or inf beyond t
                    return (3 if not_finite else 2), io
                hit_end = t + 1.01 * h >= tend
                if hit_end:
                    h = tend - t
                # Land exactly on the next output time: Rodas4's error control covers step ends, whereas a cubic
                # interpolant between long implicit steps would not meet the tolerance. Not on one closer to the
                # segment's end than the smallest step (0.3 before a dose at 0.1 + 0.2): the rest could not be
                # stepped; the step that reaches the end interpolates it.
                h_proposed = h
                hit_out = False
                if (io < n_out and tt[io] > t and tt[io] < t + h and (tt[io] < tend or last)
                        and tend - tt[io] >= hmin):
                    h = tt[io] - t
                    hit_out = True
                    hit_end = False
                fac = 1.0 / (h * _R_GAMMA)
                for i in range(n):
                    for j in range(n):
                        A[i, j] = -J[i, j]
                    A[i, i] += fac
                if not _lu(A, piv):
                    not_finite = False
                    h *= 0.5
                    counters[0] += 1
                    if counters[0] >= max_steps:
                        counters[3] = t
                        return 4, io
                    continue
                for s in range(6):
                    if s == 0:
                        for i in range(n):
                            fy[i] = k1[i]
                    else:
                        for i in range(n):
                            acc = y[i]
                            for j in range(s):
                                acc += _R_A[s, j] * K[j, i]
                            tmp[i] = acc
                        _f(t + _R_ALPHA[s] * h, tmp, q, u, fy)
                        counters[1] += 1
                    for i in range(n):
                        acc = fy[i]
                        for j in range(s):
                            acc += _R_C[s, j] / h * K[j, i]
                        if _nonautonomous:
                            acc += h * _R_GAMMAS[s] * dfdt[i]
                        K[s, i] = acc
                    _lu_solve(A, piv, K[s])
                ok = True
                for i in range(n):
                    acc = y[i]
                    for j in range(6):
                        acc += _R_M[j] * K[j, i]
                    ynew[i] = acc
                    err[i] = K[5, i]
                    if not math.isfinite(acc):
                        ok = False
                not_finite = not ok
                e = _wnorm(err, y, ynew, rtol, atol) if ok else 1e10
                counters[0] += 1
                if e <= 1.0:
                    break
                h = h * max(0.2, 0.9 * e ** (-0.25))
                if counters[0] >= max_steps:
                    counters[3] = t
                    return 1, io
            tn = tend if hit_end else (tt[io] if hit_out else t + h)
            _f(tn, ynew, q, u, k2)
            counters[1] += 1
            # cubic Hermite dense output between (t, y, k1) and (tn, ynew, k2)
            while io < n_out and (tt[io] < tn or (last and tt[io] <= tn)):
                th = (tt[io] - t) / h
                for i in range(n):
                    yout[i] = ((1.0 - th) * y[i] + th * ynew[i] + th * (th - 1.0) * (
                        (1.0 - 2.0 * th) * (ynew[i] - y[i]) + (th - 1.0) * h * k1[i] + th * h * k2[i]))
                io = _record_rows(tt[io], yout, q, tt, pre, io, io + 1, -1, states_out, outputs_out, ws, wo, obuf)
            t = tn
            for i in range(n):
                y[i] = ynew[i]
                k1[i] = k2[i]
            fac = 0.9 * e ** (-0.25) if e > 0.0 else 6.0
            h = min(h * min(6.0, max(0.2, fac)), hmax)
            if hit_out:
                h = max(h, min(h_proposed, hmax))  # a step shortened to hit an output does not shrink the next
    return 0, io


@njit(cache=True)
def _segment(t, tend, last, y, q, u, rtol, atol, hmax, max_steps, method, tt, pre, io, n_out,
             states_out, outputs_out, ws, wo, obuf, counters):
    """Integrate from t to tend with the method chosen (or switched to); returns (status, io)."""
    if method != 2 and counters[2] == 0.0:
        status, io, t = _segment_tsit5(t, tend, last, y, q, u, rtol, atol, hmax, max_steps, method, tt, pre, io,
                                       n_out, states_out, outputs_out, ws, wo, obuf, counters)
        if status != 5:
            return status, io
    return _segment_rodas4(t, tend, last, y, q, u, rtol, atol, hmax, max_steps, method, tt, pre, io, n_out,
                           states_out, outputs_out, ws, wo, obuf, counters)


@njit(cache=True, inline="always")
def _short_segment(t, tend, last, y, q, u, tt, pre, io, n_out, states_out, outputs_out, ws, wo, obuf, dy,
                   counters):
    """A segment shorter than the smallest step (event times a few units of rounding apart, as 0.3 and 0.1 + 0.2):
    one explicit Euler step, whose error (h^2 |y''| / 2 with h < 16 eps max(|t|, 1)) is below rounding, then the
    output rows inside it; returns (status, io)."""
    _f(t, y, q, u, dy)
    counters[1] += 1
    for i in range(_N):
        if not math.isfinite(dy[i]):
            counters[3] = t
            return 3, io
    for i in range(_N):
        y[i] += (tend - t) * dy[i]
    t_rows = tend if last else np.nextafter(tend, -np.inf)
    io = _record_rows(t_rows, y, q, tt, pre, io, n_out, -1, states_out, outputs_out, ws, wo, obuf)
    return 0, io


@njit(cache=True)
def _solve_one(y, q, y_init, ev_t, ev_kind, ev_idx, ev_val, n_ev, tt, pre, n_out, t0, rtol, atol, hmax,
               max_steps, method, states_out, outputs_out, ws, wo, counters):
    n = _N
    u = np.zeros(n)
    obuf = np.empty(max(outputs_out.shape[1], 1))
    dy = np.empty(n)
    t = t0
    io = 0
    ie = 0
    t_final = tt[n_out - 1] if n_out > 0 else t0
    while True:
        # outputs flagged "before events" at this time, then the events, then the remaining outputs at this time
        io = _record_rows(t, y, q, tt, pre, io, n_out, 1, states_out, outputs_out, ws, wo, obuf)
        while ie < n_ev and ev_t[ie] <= t:
            k = ev_kind[ie]
            j = ev_idx[ie]
            if k == 0:
                y[j] += ev_val[ie]
            elif k == 1:
                u[j] += ev_val[ie]
                if abs(u[j]) < 1e-12 * abs(ev_val[ie]):
                    u[j] = 0.0  # rounding left over when an infusion stops
            elif k == 2:
                for i in range(n):
                    y[i] = y_init[i]
                    u[i] = 0.0
            elif k == 3:
                q[j] = ev_val[ie]
                _static(q)
            elif k == 5:
                # record the next output row here, between the events at this time (NONMEM record order)
                io = _record_rows(t, y, q, tt, pre, io, io + 1, -1, states_out, outputs_out, ws, wo, obuf)
            else:
                y[j] = ev_val[ie]
            ie += 1
        io = _record_rows(t, y, q, tt, pre, io, n_out, -1, states_out, outputs_out, ws, wo, obuf)
        if io >= n_out:
            return 0
        t_next = t_final
        last = True
        if ie < n_ev and ev_t[ie] <= t_final:
            t_next = ev_t[ie]
            last = False
        if t_next - t < 16.0 * 2.220446049250313e-16 * max(abs(t), abs(t_next), 1.0):
            status, io = _short_segment(t, t_next, last, y, q, u, tt, pre, io, n_out, states_out, outputs_out, ws,
                                        wo, obuf, dy, counters)
        else:
            status, io = _segment(t, t_next, last, y, q, u, rtol, atol, hmax, max_steps, method, tt, pre, io,
                                  n_out, states_out, outputs_out, ws, wo, obuf, counters)
        if status != 0:
            return status
        t = t_next
        if last and io >= n_out:
            return 0


@njit(cache=True, parallel=True)
def solve_batch(Q, Y0, ev_t, ev_kind, ev_idx, ev_val, n_ev, TT, PRE, n_out, row, t0, rtol, atol, hmax, max_steps,
                method, states_out, outputs_out, ws, wo, status, counters):
    # row[s]: which row of TT/PRE/n_out subject s uses (all 0 when the output times are shared)
    n_subj = Q.shape[0]
    for s in prange(n_subj):
        si = row[s]
        y = Y0[s].copy()
        q = Q[s].copy()
        so = states_out[s] if ws else states_out[0]
        oo = outputs_out[s] if wo else outputs_out[0]
        status[s] = _solve_one(y, q, Y0[s], ev_t[s], ev_kind[s], ev_idx[s], ev_val[s], n_ev[s], TT[si], PRE[si],
                               n_out[si], t0[s], rtol, atol, hmax, max_steps, method, so, oo, ws, wo, counters[s])
'''

# the coefficients, from the one table every engine uses
TEMPLATE = TEMPLATE.replace("#@CONSTANTS@", numba_constants()).replace("#@DENSE@", dense_lines(" " * 20))
