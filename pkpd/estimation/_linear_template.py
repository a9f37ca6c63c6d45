"""C source of the exact solution of a linear augmented system, for the compiled estimation library (private).

When :func:`pkpd.linear_system.linearity` finds a model's equations linear with coefficients constant between
events (the one- to three-compartment models with bolus, infusion or first-order absorption, NONMEM's ADVAN1-4 and
11-12, and any other linear compartmental model), its forward-sensitivity system is linear with constant
coefficients too: the equation of the derivative of a state by a multiset of parameters is the model's matrix
:math:`A` times that derivative plus terms in lower-order derivatives whose coefficients depend on the parameters
only. Between two events the augmented state :math:`y` (the model's states and all their derivatives) then obeys
:math:`dy/dt = M y + c` with :math:`M` and :math:`c` constant, whose exact solution over a step :math:`h` is

.. math:: y(t + h) = e^{hM} y(t) + h\\,\\varphi_1(hM)\\,c
          = y + \\sum_{k \\ge 1} \\frac{h^k}{k!} M^{k-1} (M y + c).

:data:`LINEAR_TEMPLATE` sums that series as Al-Mohy & Higham's ``expmv`` sums the action of the matrix exponential
(SIAM J Sci Comput 2011, 33:488-511): the step is cut into ``s`` pieces of length ``h/s`` with ``alpha h / s`` at
most ``theta_55 = 9.9`` (their bound for 55 terms in double precision, as in ``scipy.sparse.linalg.expm_multiply``),
and each piece's series stops once two consecutive terms are below the unit round-off relative to the sum (after 55
terms at most). Each product :math:`M v` is one evaluation of the generated right-hand side (``rhs(v) - rhs(0)``), so
no matrix is formed. ``alpha`` is the smaller of the 1- and infinity-norms (either bounds the powers) of the model's
own matrix :math:`A` (the diagonal blocks of :math:`M`; its columns are ``rhs(e_j) - rhs(0)`` over the model's
states): the powers of :math:`M` grow like those of :math:`A` up to a polynomial factor from the triangular coupling
(the norm of the whole :math:`M` would cut the steps ~1.5 times finer for theophylline, for nothing). A piece whose
series has not settled after 55 terms is done again with twice as many pieces. The result is the exact solution to
rounding (checked against the ODE solver at tight tolerances in ``tests/unit/test_closed_form_estimation.py``), with
no step-size control and no tolerance.

The cost grows with ``alpha`` times the time span: steps end at every output time and event, as the ODE solver's
segments do, and a subject that would need more than 2,000 pieces (or the settings' ``max_steps``), a very stiff one,
is handed to the ODE solver, whose Rodas4 costs less there. The inner problem's driver
(:mod:`pkpd.estimation._inner_template`) uses this method (code 3) for every subject of a linear model unless the
settings ask for an ODE method.
"""

LINEAR_TEMPLATE = r"""
/* ------------------------------------------------------------------------------------------ exact linear steps */
#define LIN_M_MAX 55
#define LIN_TOL 1.1102230246251565e-16
/* pieces per subject before a (very stiff) subject is handed to the ODE solver, whose Rodas4 then costs less */
#define LIN_MAX_PIECES 2000
/* theta_55 of Al-Mohy & Higham (2011) for the unit round-off 2^-53: the largest norm of h M / s for 55 terms */
#define LIN_THETA 9.9

static inline double lin_inf_norm(const double *v) {
    double r = 0.0;
    for (int i = 0; i < N; i++) r = fmax(r, fabs(v[i]));
    return r;
}

/* The smaller of the 1- and infinity-norms of the model's own matrix A (the first N_BASE_STATES states) and the
   constant part c = f_u(t, 0). */
static double lin_setup(double t, const double *q, Work *w, double *c) {
    double *e = w->tmp, *col = w->err, rows[N_BASE_STATES];
    for (int i = 0; i < N; i++) e[i] = 0.0;
    for (int i = 0; i < N_BASE_STATES; i++) rows[i] = 0.0;
    f_u(t, e, q, w->u, c);
    double norm1 = 0.0, norm_inf = 0.0;
    for (int j = 0; j < N_BASE_STATES; j++) {
        e[j] = 1.0;
        f_u(t, e, q, w->u, col);
        e[j] = 0.0;
        double sum = 0.0;
        for (int i = 0; i < N_BASE_STATES; i++) {
            double a = fabs(col[i] - c[i]);
            sum += a;
            rows[i] += a;
        }
        norm1 = fmax(norm1, sum);
    }
    for (int i = 0; i < N_BASE_STATES; i++) norm_inf = fmax(norm_inf, rows[i]);
    return fmin(norm1, norm_inf);
}

/* y <- the exact solution over h from t of dy/dt = M y + c. Returns 0, 1 (step budget spent, counters[0] counting
   the pieces, or a series that never settled) or 3 (not finite). */
static int lin_step(double t, double h, double *restrict y, const double *restrict q, Work *restrict w,
                    const double *restrict c, double alpha, int64_t max_steps, double *counters) {
    double *y0 = w->ynew, *F = w->yout, *v = w->k2, *fv = w->k3;
    const int64_t m = LIN_M_MAX;
    const double budget = (double)(max_steps < LIN_MAX_PIECES ? max_steps : LIN_MAX_PIECES);
    /* the number of pieces as a double until it is known to fit the budget (a huge alpha h must not overflow) */
    double pieces = fmax(1.0, ceil(alpha * h / LIN_THETA));
    for (int i = 0; i < N; i++) y0[i] = y[i];
    for (int attempt = 0; attempt < 6; attempt++, pieces *= 2.0) {
        if (!(counters[0] + pieces <= budget)) {
            counters[3] = t;
            return 1;
        }
        const int64_t s = (int64_t)pieces;
        double hs = h / (double)s;
        int settled = 1;
        for (int i = 0; i < N; i++) y[i] = y0[i];
        for (int64_t piece = 0; piece < s && settled; piece++) {
            double c1 = lin_inf_norm(y), c2 = 0.0;
            f_u(t, y, q, w->u, fv);
            for (int i = 0; i < N; i++) {
                v[i] = hs * fv[i];
                F[i] = y[i] + v[i];
                c2 = fmax(c2, fabs(v[i]));
            }
            /* bound >= the largest |F_i| (triangle inequality): the sum's norm is taken only near the end */
            double bound = c1 + c2;
            counters[1] += 1;
            int done = 0;
            for (int64_t k = 2; k <= m; k++) {
                if (c1 + c2 <= LIN_TOL * bound && c1 + c2 <= LIN_TOL * lin_inf_norm(F)) {
                    done = 1;
                    break;
                }
                c1 = c2;
                c2 = 0.0;
                f_u(t, v, q, w->u, fv);
                double f = hs / (double)k;
                for (int i = 0; i < N; i++) {
                    v[i] = f * (fv[i] - c[i]);
                    F[i] += v[i];
                    c2 = fmax(c2, fabs(v[i]));
                }
                bound += c2;
                counters[1] += 1;
            }
            if (!done) {
                /* the last two terms must be negligible; else cut the step into more pieces (see the docstring) */
                if (!(c1 + c2 <= 1e3 * LIN_TOL * lin_inf_norm(F))) settled = 0;
            }
            for (int i = 0; i < N; i++) y[i] = F[i];
            counters[0] += 1;
        }
        if (!settled) continue;
        for (int i = 0; i < N; i++)
            if (!isfinite(y[i])) {
                counters[3] = t;
                return 3;
            }
        return 0;
    }
    counters[3] = t; /* never settled: the ODE solver takes the subject, as for a spent budget */
    return 1;
}

/* The exact solution from t to tend; output rows with time < tend (<= tend when last), as seg_tsit5. */
static int seg_linear(double t, double tend, int last, double *y, const double *q, Work *w, int64_t max_steps,
                      const Out *o, int64_t *iop, double *counters) {
    double *c = w->dfdt;
    double alpha = lin_setup(t, q, w, c);
    counters[1] += 1 + N_BASE_STATES;
    if (!isfinite(alpha)) {
        counters[3] = t;
        return 3;
    }
    for (int i = 0; i < N; i++)
        if (!isfinite(c[i])) {
            counters[3] = t;
            return 3;
        }
    int64_t io = *iop;
    while (io < o->n_out && (o->tt[io] < tend || (last && o->tt[io] <= tend))) {
        double to = o->tt[io];
        if (to > t) {
            int status = lin_step(t, to - t, y, q, w, c, alpha, max_steps, counters);
            if (status != 0) {
                *iop = io;
                return status;
            }
            t = to;
        }
        io = record_rows(to, y, q, o, io, io + 1, -1);
    }
    *iop = io;
    if (tend > t) return lin_step(t, tend - t, y, q, w, c, alpha, max_steps, counters);
    return 0;
}
"""
