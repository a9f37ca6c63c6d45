"""C source of the native engine's integrator (private).

:mod:`pkpd._native` writes one C file per model: the generated ``rhs``/``jac``/``record``/``static_q`` functions
(``#define N`` states, a compile-time constant so that the per-state loops unroll) followed by :data:`C_TEMPLATE`,
which every model shares. It is a line-for-line port of the numba template in :mod:`pkpd._integrator` (same
methods, step control, stiffness switch, event kinds, output rules and status codes; read that module's docstring
for the methods and their references), so the two engines agree to rounding.

Subjects run in parallel on POSIX threads that take the next subject from an atomic counter (a subject's cost
varies with its parameters, so a static split would leave a core idle).
"""

from ._tableaus import c_constants, dense_lines

C_TEMPLATE = r"""
/* ------------------------------------------------------------------------------------------ shared template */
/*@CONSTANTS@*/
#define EPS 2.220446049250313e-16


/* Output layout of one subject (shared by the segment functions). */
typedef struct {
    const double *tt;
    const int64_t *pre;
    int64_t n_out;
    double *so;   /* states out (n_times, N) */
    double *oo;   /* outputs out (n_times, n_o) */
    int64_t n_o;
    int ws, wo;
    double *obuf;
} Out;

static inline void f_u(double t, const double *restrict y, const double *restrict q, const double *restrict u,
                       double *restrict dy) {
    rhs(t, y, q, dy);
    for (int i = 0; i < N; i++) dy[i] += u[i];
}

static double wnorm(const double *e, const double *y0, const double *y1, double rtol, double atol) {
    double acc = 0.0;
    for (int i = 0; i < N; i++) {
        double sc = atol + rtol * fmax(fabs(y0[i]), fabs(y1[i]));
        double r = e[i] / sc;
        acc += r * r;
    }
    return sqrt(acc / N);
}

static double initial_step(double t, double tend, const double *y, const double *f0, const double *q,
                           const double *u, double rtol, double atol, double order, double *tmp, double *f1) {
    /* Hairer, Norsett & Wanner (1993) II.4, algorithm for the starting step size. */
    double d0 = 0.0, d1 = 0.0, d2 = 0.0, h0, h1;
    for (int i = 0; i < N; i++) {
        double sc = atol + rtol * fabs(y[i]);
        d0 += (y[i] / sc) * (y[i] / sc);
        d1 += (f0[i] / sc) * (f0[i] / sc);
    }
    d0 = sqrt(d0 / N);
    d1 = sqrt(d1 / N);
    h0 = (d0 < 1e-5 || d1 < 1e-5) ? 1e-6 : 0.01 * d0 / d1;
    h0 = fmin(h0, tend - t);
    for (int i = 0; i < N; i++) tmp[i] = y[i] + h0 * f0[i];
    f_u(t + h0, tmp, q, u, f1);
    for (int i = 0; i < N; i++) {
        double sc = atol + rtol * fabs(y[i]);
        double r = (f1[i] - f0[i]) / sc;
        d2 += r * r;
    }
    d2 = sqrt(d2 / N) / h0;
    double dm = d1 > d2 ? d1 : d2;
    if (dm <= 1e-15)
        h1 = fmax(1e-6, h0 * 1e-3);
    else
        h1 = pow(0.01 / dm, 1.0 / (order + 1.0));
    double h = 100.0 * h0;
    if (h1 < h) h = h1;
    if (tend - t < h) h = tend - t;
    return h;
}

/* Writes every output time equal to t (already reached) whose pre-flag matches want_pre (or any when
   want_pre < 0) and returns the new output index; stops at row `stop`. */
static int64_t record_rows(double t, const double *y, const double *q, const Out *o, int64_t io, int64_t stop,
                           int64_t want_pre) {
    while (io < stop) {
        double to = o->tt[io];
        if (to > t) break;
        if (want_pre >= 0 && o->pre[io] != want_pre) break;
        if (o->ws)
            for (int i = 0; i < N; i++) o->so[io * N + i] = y[i];
        if (o->wo) {
            record(to, y, q, o->obuf);
            for (int64_t i = 0; i < o->n_o; i++) o->oo[io * o->n_o + i] = o->obuf[i];
        }
        io++;
    }
    return io;
}

/* Estimate of the largest |eigenvalue| of J by a few power iterations (v, w: work vectors). */
static double spectral_radius(const double *J, double *v, double *w) {
    double lam = 0.0;
    for (int i = 0; i < N; i++) v[i] = 1.0 + 0.1 * i;
    for (int it = 0; it < 8; it++) {
        double norm = 0.0, vn = 0.0;
        for (int i = 0; i < N; i++) {
            double acc = 0.0;
            for (int j = 0; j < N; j++) acc += J[i * N + j] * v[j];
            w[i] = acc;
            norm += acc * acc;
        }
        norm = sqrt(norm);
        for (int i = 0; i < N; i++) vn += v[i] * v[i];
        vn = sqrt(vn);
        if (norm == 0.0 || vn == 0.0 || !isfinite(norm)) return isfinite(norm) ? lam : 1e300;
        lam = norm / vn;
        for (int i = 0; i < N; i++) v[i] = w[i] / norm;
    }
    return lam;
}

/* O3 (as seg_tsit5): unrolled for the model's N, Rodas4 runs ~25 % faster on the stiff TMDD job */
__attribute__((optimize("O3")))
static int lu(double *a, int64_t *piv) {
    for (int k = 0; k < N; k++) {
        int p = k;
        double m = fabs(a[k * N + k]);
        for (int i = k + 1; i < N; i++)
            if (fabs(a[i * N + k]) > m) {
                m = fabs(a[i * N + k]);
                p = i;
            }
        piv[k] = p;
        if (m == 0.0) return 0;
        if (p != k)
            for (int j = 0; j < N; j++) {
                double tmp = a[k * N + j];
                a[k * N + j] = a[p * N + j];
                a[p * N + j] = tmp;
            }
        for (int i = k + 1; i < N; i++) {
            a[i * N + k] /= a[k * N + k];
            for (int j = k + 1; j < N; j++) a[i * N + j] -= a[i * N + k] * a[k * N + j];
        }
    }
    return 1;
}

__attribute__((optimize("O3")))
static void lu_solve(const double *a, const int64_t *piv, double *b) {
    for (int k = 0; k < N; k++) {
        int64_t p = piv[k];
        if (p != k) {
            double tmp = b[k];
            b[k] = b[p];
            b[p] = tmp;
        }
    }
    for (int i = 0; i < N; i++) {
        double s = b[i];
        for (int j = 0; j < i; j++) s -= a[i * N + j] * b[j];
        b[i] = s;
    }
    for (int i = N - 1; i >= 0; i--) {
        double s = b[i];
        for (int j = i + 1; j < N; j++) s -= a[i * N + j] * b[j];
        b[i] = s / a[i * N + i];
    }
}

/* Before each step: 1 when the step budget is spent, 2 when the step size underflowed (the time is recorded for the
   error message), else 0. */
static inline int step_guard(double t, double h, double hmin, int64_t max_steps, double *counters) {
    int status = counters[0] >= max_steps ? 1 : (h < hmin ? 2 : 0);
    if (status != 0) counters[3] = t;
    return status;
}

/* Work arrays of one subject. */
typedef struct {
    double k1[N], k2[N], k3[N], k4[N], k5[N], k6[N], k7[N], tmp[N], ynew[N], err[N], yout[N], u[N], fy[N],
        dfdt[N];
    double K[6][N];
    double *J, *A; /* N x N */
    int64_t piv[N];
} Work;

/* Start of a segment (either method, ``order`` its error order): k1 = f(t, y), status 3 if it is not finite, else
   the starting step *h and the smallest step *hmin. */
static int segment_start(double t, double tend, const double *y, const double *q, Work *w, double rtol, double atol,
                         double hmax, double order, double *h, double *hmin) {
    f_u(t, y, q, w->u, w->k1);
    for (int i = 0; i < N; i++)
        if (!isfinite(w->k1[i])) return 3;
    *h = initial_step(t, tend, y, w->k1, q, w->u, rtol, atol, order, w->tmp, w->k2);
    *hmin = 16.0 * EPS * fmax(fmax(fabs(t), fabs(tend)), 1.0);
    /* A tiny atol on states that start at zero with large derivatives (cells, after a dose) makes the starting-step
       estimate underflow; start just above the resolution of t and let the controller grow the step. */
    *h = fmin(fmin(fmax(*h, 10.0 * *hmin), hmax), tend - t);
    return 0;
}

/* Tsit5 from *t to tend; output rows with time < tend (<= tend when last). Returns the status; 5 means stiffness
   was detected at *t (y holds the state there) and the caller continues with Rodas4.
   The hot loop of non-stiff models: built at O3 (the rest of the file at O2, which compiles faster), it runs
   ~15 % faster on the shared peers job. */
__attribute__((optimize("O3")))
static int seg_tsit5(double *tp, double tend, int last, double *restrict y, const double *restrict q,
                     Work *restrict w, double rtol, double atol, double hmax, int64_t max_steps, int64_t method,
                     const Out *o, int64_t *iop, double *counters) {
    double t = *tp;
    int64_t io = *iop;
    double *k1 = w->k1, *k2 = w->k2, *k3 = w->k3, *k4 = w->k4, *k5 = w->k5, *k6 = w->k6, *k7 = w->k7;
    double *tmp = w->tmp, *ynew = w->ynew, *err = w->err, *yout = w->yout, *u = w->u;
    double h, hmin;
    int status = segment_start(t, tend, y, q, w, rtol, atol, hmax, 4.0, &h, &hmin);
    if (status != 0) goto done;
    int n_stiff = 0, not_finite = 0, stiff = 0;
    int64_t n_acc = 0;
    double e_prev = 1e-4;
    while (t < tend) {
        status = step_guard(t, h, hmin, max_steps, counters);
        /* a step shrunk below the smallest while its stages were not finite: NaN or inf derivatives beyond t */
        if (status == 2 && not_finite) status = 3;
        if (status != 0) goto done;
        int hit_end = t + 1.01 * h >= tend;
        if (hit_end) h = tend - t;
        for (int i = 0; i < N; i++) tmp[i] = y[i] + h * T_A21 * k1[i];
        f_u(t + T_C2 * h, tmp, q, u, k2);
        for (int i = 0; i < N; i++) tmp[i] = y[i] + h * (T_A31 * k1[i] + T_A32 * k2[i]);
        f_u(t + T_C3 * h, tmp, q, u, k3);
        for (int i = 0; i < N; i++) tmp[i] = y[i] + h * (T_A41 * k1[i] + T_A42 * k2[i] + T_A43 * k3[i]);
        f_u(t + T_C4 * h, tmp, q, u, k4);
        for (int i = 0; i < N; i++)
            tmp[i] = y[i] + h * (T_A51 * k1[i] + T_A52 * k2[i] + T_A53 * k3[i] + T_A54 * k4[i]);
        f_u(t + T_C5 * h, tmp, q, u, k5);
        for (int i = 0; i < N; i++)
            tmp[i] = y[i] + h * (T_A61 * k1[i] + T_A62 * k2[i] + T_A63 * k3[i] + T_A64 * k4[i] + T_A65 * k5[i]);
        f_u(t + h, tmp, q, u, k6);
        for (int i = 0; i < N; i++)
            ynew[i] = y[i] + h * (T_A71 * k1[i] + T_A72 * k2[i] + T_A73 * k3[i] + T_A74 * k4[i] + T_A75 * k5[i] +
                                  T_A76 * k6[i]);
        f_u(t + h, ynew, q, u, k7);
        counters[1] += 6;
        for (int i = 0; i < N; i++)
            err[i] = h * (T_E1 * k1[i] + T_E2 * k2[i] + T_E3 * k3[i] + T_E4 * k4[i] + T_E5 * k5[i] + T_E6 * k6[i] +
                          T_E7 * k7[i]);
        double e = wnorm(err, y, ynew, rtol, atol);
        /* a NaN/inf anywhere in the stages makes the norm non-finite: reject (the step shrinks) and remember it */
        not_finite = !isfinite(e);
        if (not_finite) e = 1e10;
        counters[0] += 1;
        if (e <= 1.0) {
            double tn = hit_end ? tend : t + h;
            /* dense output (Tsitouras' free interpolant) for output times inside the step */
            while (io < o->n_out && (o->tt[io] < tn || (last && o->tt[io] <= tn))) {
                double th = (o->tt[io] - t) / h;
/*@DENSE@*/
                for (int i = 0; i < N; i++)
                    yout[i] = y[i] + h * (b1 * k1[i] + b2 * k2[i] + b3 * k3[i] + b4 * k4[i] + b5 * k5[i] +
                                          b6 * k6[i] + b7 * k7[i]);
                io = record_rows(o->tt[io], yout, q, o, io, io + 1, -1);
            }
            /* Stiffness test every 5 accepted steps (see pkpd._integrator): h * lambda_max held above 2.8 on 3
               checks in a row while the next output is more than 5 steps away. */
            n_acc++;
            if (method == 0 && n_acc % 5 == 0) {
                double gap = (io < o->n_out ? o->tt[io] : tend) - tn;
                double lam = 0.0;
                if (gap > 5.0 * h) {
                    jac(tn, ynew, q, w->J);
                    counters[1] += 1;
                    lam = spectral_radius(w->J, tmp, err);
                }
                if (h * lam > 2.8) {
                    n_stiff++;
                    if (n_stiff >= 3) {
                        counters[2] = 1.0;
                        stiff = 1;
                    }
                } else {
                    n_stiff = 0;
                }
            }
            t = tn;
            for (int i = 0; i < N; i++) {
                y[i] = ynew[i];
                k1[i] = k7[i];
            }
            if (stiff) {
                status = 5;
                goto done;
            }
            /* PI step-size control with Lund stabilisation, as DOPRI5 (alpha = 0.2 - 0.75 beta, beta = 0.04) */
            e = fmax(e, 1e-10);
            double fac = 0.9 * pow(e, -0.17) * pow(e_prev, 0.04);
            e_prev = fmax(e, 1e-4);
            h = fmin(h * fmin(10.0, fmax(0.2, fac)), hmax);
        } else {
            h = h * fmax(0.2, 0.9 * pow(e, -0.2));
        }
    }
done:
    *tp = t;
    *iop = io;
    return status;
}

/* Rodas4 from t to tend; output rows with time < tend (<= tend when last). Returns the status. */
__attribute__((optimize("O3")))
static int seg_rodas4(double t, double tend, int last, double *restrict y, const double *restrict q,
                      Work *restrict w, double rtol, double atol, double hmax, int64_t max_steps, const Out *o,
                      int64_t *iop, double *counters) {
    int64_t io = *iop;
    double *k1 = w->k1, *k2 = w->k2, *tmp = w->tmp, *ynew = w->ynew, *err = w->err, *yout = w->yout, *u = w->u;
    double *fy = w->fy, *dfdt = w->dfdt, *J = w->J, *A = w->A;
    double h, hmin;
    int status = segment_start(t, tend, y, q, w, rtol, atol, hmax, 3.0, &h, &hmin);
    if (status != 0) goto done;
    for (int i = 0; i < N; i++) dfdt[i] = 0.0;
    while (t < tend) {
        status = step_guard(t, h, hmin, max_steps, counters);
        if (status != 0) goto done;
        int hit_end = t + 1.01 * h >= tend;
        if (hit_end) h = tend - t;
        jac(t, y, q, J);
        counters[1] += 1;
        if (NONAUTONOMOUS) {
            double delta = sqrt(EPS) * fmax(1e-5, fabs(t));
            f_u(t + delta, y, q, u, fy);
            for (int i = 0; i < N; i++) dfdt[i] = (fy[i] - k1[i]) / delta;
        }
        double e, h_proposed;
        int hit_out, not_finite = 0;
        for (;;) {
            if (h < hmin) {
                counters[3] = t;
                /* shrunk below the smallest step while the new state was not finite: NaN or inf beyond t */
                status = not_finite ? 3 : 2;
                goto done;
            }
            hit_end = t + 1.01 * h >= tend;
            if (hit_end) h = tend - t;
            /* Land exactly on the next output time: Rodas4's error control covers step ends, whereas a cubic
               interpolant between long implicit steps would not meet the tolerance. Not on one closer to the
               segment's end than the smallest step (0.3 before a dose at 0.1 + 0.2): the rest could not be
               stepped; the step that reaches the end interpolates it. */
            h_proposed = h;
            hit_out = 0;
            if (io < o->n_out && o->tt[io] > t && o->tt[io] < t + h && (o->tt[io] < tend || last) &&
                tend - o->tt[io] >= hmin) {
                h = o->tt[io] - t;
                hit_out = 1;
                hit_end = 0;
            }
            double fac = 1.0 / (h * R_GAMMA);
            for (int i = 0; i < N; i++) {
                for (int j = 0; j < N; j++) A[i * N + j] = -J[i * N + j];
                A[i * N + i] += fac;
            }
            if (!lu(A, w->piv)) {
                not_finite = 0;
                h *= 0.5;
                counters[0] += 1;
                if (counters[0] >= max_steps) {
                    counters[3] = t;
                    status = 4;
                    goto done;
                }
                continue;
            }
            for (int s = 0; s < 6; s++) {
                if (s == 0) {
                    for (int i = 0; i < N; i++) fy[i] = k1[i];
                } else {
                    for (int i = 0; i < N; i++) {
                        double acc = y[i];
                        for (int j = 0; j < s; j++) acc += R_A[s][j] * w->K[j][i];
                        tmp[i] = acc;
                    }
                    f_u(t + R_ALPHA[s] * h, tmp, q, u, fy);
                    counters[1] += 1;
                }
                for (int i = 0; i < N; i++) {
                    double acc = fy[i];
                    for (int j = 0; j < s; j++) acc += R_C[s][j] / h * w->K[j][i];
                    if (NONAUTONOMOUS) acc += h * R_GAMMAS[s] * dfdt[i];
                    w->K[s][i] = acc;
                }
                lu_solve(A, w->piv, w->K[s]);
            }
            int ok = 1;
            for (int i = 0; i < N; i++) {
                double acc = y[i];
                for (int j = 0; j < 6; j++) acc += R_M[j] * w->K[j][i];
                ynew[i] = acc;
                err[i] = w->K[5][i];
                if (!isfinite(acc)) ok = 0;
            }
            not_finite = !ok;
            e = ok ? wnorm(err, y, ynew, rtol, atol) : 1e10;
            counters[0] += 1;
            if (e <= 1.0) break;
            h = h * fmax(0.2, 0.9 * pow(e, -0.25));
            if (counters[0] >= max_steps) {
                counters[3] = t;
                status = 1;
                goto done;
            }
        }
        double tn = hit_end ? tend : (hit_out ? o->tt[io] : t + h);
        f_u(tn, ynew, q, u, k2);
        counters[1] += 1;
        /* cubic Hermite dense output between (t, y, k1) and (tn, ynew, k2) */
        while (io < o->n_out && (o->tt[io] < tn || (last && o->tt[io] <= tn))) {
            double th = (o->tt[io] - t) / h;
            for (int i = 0; i < N; i++)
                yout[i] = ((1.0 - th) * y[i] + th * ynew[i] +
                           th * (th - 1.0) * ((1.0 - 2.0 * th) * (ynew[i] - y[i]) + (th - 1.0) * h * k1[i] +
                                              th * h * k2[i]));
            io = record_rows(o->tt[io], yout, q, o, io, io + 1, -1);
        }
        t = tn;
        for (int i = 0; i < N; i++) {
            y[i] = ynew[i];
            k1[i] = k2[i];
        }
        double fac = e > 0.0 ? 0.9 * pow(e, -0.25) : 6.0;
        h = fmin(h * fmin(6.0, fmax(0.2, fac)), hmax);
        /* a step shortened to hit an output does not shrink the next */
        if (hit_out) h = fmax(h, fmin(h_proposed, hmax));
    }
done:
    *iop = io;
    return status;
}

#ifdef N_BASE_STATES
/* The exact solution of a linear system (method 3: pkpd.estimation._linear_template, appended after this template
   in the estimation libraries of linear models only). */
static int seg_linear(double t, double tend, int last, double *y, const double *q, Work *w, int64_t max_steps,
                      const Out *o, int64_t *iop, double *counters);
#endif

/* Integrate from t to tend with the method chosen (or switched to). */
static int segment(double t, double tend, int last, double *y, const double *q, Work *w, double rtol, double atol,
                   double hmax, int64_t max_steps, int64_t method, const Out *o, int64_t *iop, double *counters) {
#ifdef N_BASE_STATES
    if (method == 3) return seg_linear(t, tend, last, y, q, w, max_steps, o, iop, counters);
#endif
    if (method != 2 && counters[2] == 0.0) {
        int status = seg_tsit5(&t, tend, last, y, q, w, rtol, atol, hmax, max_steps, method, o, iop, counters);
        if (status != 5) return status;
    }
    return seg_rodas4(t, tend, last, y, q, w, rtol, atol, hmax, max_steps, o, iop, counters);
}

/* A segment shorter than the smallest step (event times a few units of rounding apart, as 0.3 and 0.1 + 0.2): one
   explicit Euler step, whose error (h^2 |y''| / 2 with h < 16 eps max(|t|, 1)) is below rounding, then the output
   rows inside it. */
static int short_segment(double t, double tend, int last, double *y, const double *q, Work *w, const Out *o,
                         int64_t *iop, double *counters) {
    f_u(t, y, q, w->u, w->fy);
    counters[1] += 1;
    for (int i = 0; i < N; i++) {
        if (!isfinite(w->fy[i])) {
            counters[3] = t;
            return 3;
        }
    }
    for (int i = 0; i < N; i++) y[i] += (tend - t) * w->fy[i];
    *iop = record_rows(last ? tend : nextafter(tend, -INFINITY), y, q, o, *iop, o->n_out, -1);
    return 0;
}

static int solve_one(double *y, double *q, const double *y_init, const double *ev_t, const int64_t *ev_kind,
                     const int64_t *ev_idx, const double *ev_val, int64_t n_ev, const Out *o, double t0, double rtol,
                     double atol, double hmax, int64_t max_steps, int64_t method, Work *w, double *counters) {
    double *u = w->u;
    for (int i = 0; i < N; i++) u[i] = 0.0;
    double t = t0;
    int64_t io = 0, ie = 0, n_out = o->n_out;
    double t_final = n_out > 0 ? o->tt[n_out - 1] : t0;
    for (;;) {
        /* outputs flagged "before events" at this time, then the events, then the remaining outputs here */
        io = record_rows(t, y, q, o, io, n_out, 1);
        while (ie < n_ev && ev_t[ie] <= t) {
            int64_t k = ev_kind[ie], j = ev_idx[ie];
            if (k == 0) {
                y[j] += ev_val[ie];
            } else if (k == 1) {
                u[j] += ev_val[ie];
                if (fabs(u[j]) < 1e-12 * fabs(ev_val[ie])) u[j] = 0.0; /* rounding left when an infusion stops */
            } else if (k == 2) {
                for (int i = 0; i < N; i++) {
                    y[i] = y_init[i];
                    u[i] = 0.0;
                }
            } else if (k == 3) {
                q[j] = ev_val[ie];
                static_q(q);
            } else if (k == 5) {
                /* record the next output row here, between the events at this time (NONMEM record order) */
                io = record_rows(t, y, q, o, io, io + 1, -1);
            } else {
                y[j] = ev_val[ie];
            }
            ie++;
        }
        io = record_rows(t, y, q, o, io, n_out, -1);
        if (io >= n_out) return 0;
        double t_next = t_final;
        int last = 1;
        if (ie < n_ev && ev_t[ie] <= t_final) {
            t_next = ev_t[ie];
            last = 0;
        }
        int status = t_next - t < 16.0 * EPS * fmax(fmax(fabs(t), fabs(t_next)), 1.0)
                         ? short_segment(t, t_next, last, y, q, w, o, &io, counters)
                         : segment(t, t_next, last, y, q, w, rtol, atol, hmax, max_steps, method, o, &io, counters);
        if (status != 0) return status;
        t = t_next;
        if (last && io >= n_out) return 0;
    }
}

typedef struct {
    int64_t n_subj, n_q, max_ev, max_out, n_times, n_o;
    const double *Q, *Y0, *ev_t, *ev_val, *TT, *t0;
    const int64_t *ev_kind, *ev_idx, *n_ev, *PRE, *n_out, *row;
    double rtol, atol, hmax;
    int64_t max_steps, method, ws, wo;
    double *states_out, *outputs_out, *counters;
    int64_t *status;
    atomic_long next;
} Batch;

static void *worker(void *arg) {
    Batch *b = (Batch *)arg;
    Work *w = (Work *)malloc(sizeof(Work));
    double *JA = (double *)malloc(sizeof(double) * 2 * N * N);
    double *q = (double *)malloc(sizeof(double) * (b->n_q > 0 ? b->n_q : 1));
    double *obuf = (double *)malloc(sizeof(double) * (b->n_o > 0 ? b->n_o : 1));
    double y[N];
    if (!w || !JA || !q || !obuf) {
        free(w); free(JA); free(q); free(obuf);
        return NULL;
    }
    w->J = JA;
    w->A = JA + N * N;
    for (;;) {
        long s = atomic_fetch_add(&b->next, 1);
        if (s >= b->n_subj) break;
        int64_t si = b->row[s];
        for (int i = 0; i < N; i++) y[i] = b->Y0[s * N + i];
        for (int64_t i = 0; i < b->n_q; i++) q[i] = b->Q[s * b->n_q + i];
        Out o;
        o.tt = b->TT + si * b->max_out;
        o.pre = b->PRE + si * b->max_out;
        o.n_out = b->n_out[si];
        o.so = b->states_out + (b->ws ? s * b->n_times * N : 0);
        o.oo = b->outputs_out + (b->wo ? s * b->n_times * b->n_o : 0);
        o.n_o = b->n_o;
        o.ws = (int)b->ws;
        o.wo = (int)b->wo;
        o.obuf = obuf;
        /* counters live on this thread's stack while the subject runs: they change at every step, and the
           neighbouring subjects' counters (same cache line) belong to other threads (false sharing cost ~15 %) */
        double counters[4];
        for (int i = 0; i < 4; i++) counters[i] = b->counters[4 * s + i];
        b->status[s] = solve_one(y, q, b->Y0 + s * N, b->ev_t + s * b->max_ev, b->ev_kind + s * b->max_ev,
                                 b->ev_idx + s * b->max_ev, b->ev_val + s * b->max_ev, b->n_ev[s], &o, b->t0[s],
                                 b->rtol, b->atol, b->hmax, b->max_steps, b->method, w, counters);
        for (int i = 0; i < 4; i++) b->counters[4 * s + i] = counters[i];
    }
    free(w); free(JA); free(q); free(obuf);
    return NULL;
}

/* The batch: subjects on n_threads threads (the calling thread is one of them). Returns 0, or -1 when no thread
   could obtain its work memory (the caller raises). */
int pkpd_solve_batch(int64_t n_subj, int64_t n_q, const double *Q, const double *Y0, int64_t max_ev,
                     const double *ev_t, const int64_t *ev_kind, const int64_t *ev_idx, const double *ev_val,
                     const int64_t *n_ev, int64_t max_out, const double *TT, const int64_t *PRE,
                     const int64_t *n_out, const int64_t *row, const double *t0, double rtol, double atol,
                     double hmax, int64_t max_steps, int64_t method, double *states_out, double *outputs_out,
                     int64_t n_times, int64_t n_o, int64_t ws, int64_t wo, int64_t *status, double *counters,
                     int64_t n_threads) {
    Batch b = {n_subj, n_q, max_ev, max_out, n_times, n_o, Q, Y0, ev_t, ev_val, TT, t0, ev_kind, ev_idx, n_ev,
               PRE, n_out, row, rtol, atol, hmax, max_steps, method, ws, wo, states_out, outputs_out, counters,
               status};
    atomic_init(&b.next, 0);
    if (n_threads > n_subj) n_threads = n_subj;
    if (n_threads < 1) n_threads = 1;
    pthread_t th[256];
    if (n_threads > 256) n_threads = 256;
    int started = 0;
    for (int i = 1; i < n_threads; i++) {
        if (pthread_create(&th[started], NULL, worker, &b) != 0) break; /* fewer threads: still correct */
        started++;
    }
    worker(&b);
    for (int i = 0; i < started; i++) pthread_join(th[i], NULL);
    /* a thread that could not get its memory left its subjects to the others; fail only if some were left over */
    if (atomic_load(&b.next) < n_subj) return -1;
    return 0;
}
"""

# the coefficients, from the one table every engine uses
C_TEMPLATE = C_TEMPLATE.replace("/*@CONSTANTS@*/", c_constants()).replace(
    "/*@DENSE@*/", dense_lines(" " * 16, declare="double ", end=";"))
