r"""C source of the per-subject assembly of the population objective and its derivatives (private).

Appended to every estimation library (:mod:`pkpd.estimation._codegen`) after :data:`~pkpd.estimation.
_inner_template.INNER_TEMPLATE`; it holds fixed text only (it does not depend on the model). Its entry point
``pkpd_assemble`` takes the recorded outputs of ``pkpd_predict`` (predictions and their scaled derivatives by the
parameters in ``pi``) and, for every subject on parallel threads (an atomic counter hands out the subjects, as in
the batch solver), carries out what :class:`pkpd.estimation._objective.PopulationObjective` otherwise does in numpy
with :mod:`pkpd.estimation._jets`, in the same coordinates ``phi = (eta, theta over pi, residual-error
parameters)`` (``d`` of them, ``q`` random effects) and with the same operations in the same order, so that the
results agree to rounding:

1. the jets of the subject's parameters in ``phi`` (random-effect transformation: 0 ``t exp(eta)``, 1 ``t + eta``,
   2 ``expit(logit(t) + eta)``);
2. per observation, the jet of the prediction in ``phi`` (chain rule from the P-space derivatives), of its
   transform ``m`` (log for log-normal errors) and of the residual variance ``R`` (error kinds as in the inner
   template);
3. ``mode`` 0 (FOCE-I, Laplace) and 1 (FOCE, ``R`` from the predictions at ``eta = 0`` in ``outputs0``): the sum
   ``ell`` over observations of ``(u - m)^2 / R + log R`` (``-2 log Phi((L - m)/sqrt R)`` when censored) with its
   derivatives; ``O = ell + eta' W eta``; the Hessian approximation ``A`` (FOCE: ``W + sum g g'/R + 1/2 r r'/R^2``,
   Laplace: half the exact Hessian) and its derivatives by ``phi``; then the subject's objective
   ``O + log|A|`` (without ``log|Omega|``) with the log-determinant corrected to first order to the exact mode, its
   gradient by ``phi`` (implicit function theorem at the EBEs) and by ``Omega``, and the exact Hessian of ``O`` in
   ``eta`` (the next EBEs' predicted start), as ``PopulationObjective._conditional_tail`` does in numpy;
   ``mode`` 2 (FO): the whole per-subject objective ``log|C| + r' C^-1 r`` (``C = G Omega G' + diag R``), its
   gradient by ``phi`` and by ``Omega``, and on request its expected information in ``(phi, Omega)`` (Fisher
   scoring, FO's covariance step), ``2 dmu' C^-1 dmu + tr(C^-1 dC C^-1 dC)`` as
   :func:`pkpd.estimation._fo_information.fo_information` computes it in numpy.

Jets are *restricted*: a value, its first derivatives by every coordinate, its second derivatives with a first
index among the random effects (``d2[a][c]``, ``a < q``) and, at order 3, its third derivatives with two
(``d3[a][b][c]``, ``a, b < q``). These are all the objective and its gradient need, and the rules of sums, products
and smooth functions close on them: an entry depends only on entries whose indices are sub-multisets of its own.
"""

ASSEMBLY_TEMPLATE = r"""
/* ------------------------------------------------------------------------------------------ assembly */
typedef struct {
    int64_t d, q, o3, S;
} Dm;

#define I1(c) (1 + (c))
#define I2(a, c) (1 + D->d + (a) * D->d + (c))
#define I3(a, b, c) (1 + D->d + D->q * D->d + ((a) * D->q + (b)) * D->d + (c))

static void rj_const(const Dm *D, double *x, double v) {
    memset(x, 0, sizeof(double) * D->S);
    x[0] = v;
}

static void rj_var(const Dm *D, double *x, double v, int64_t c) {
    rj_const(D, x, v);
    if (c >= 0) x[I1(c)] = 1.0;
}

static void rj_add(const Dm *D, const double *x, const double *y, double *o) {
    for (int64_t i = 0; i < D->S; i++) o[i] = x[i] + y[i];
}

static void rj_scale(const Dm *D, const double *x, double c, double *o) {
    for (int64_t i = 0; i < D->S; i++) o[i] = x[i] * c;
}

/* a2[a][b] b1[c] + a2[a][c] b1[b] + a2[b][c] b1[a] (a, b < q) */
static inline double sym3(const Dm *D, const double *a2, const double *b1, int64_t a, int64_t b, int64_t c) {
    return a2[I2(a, b)] * b1[I1(c)] + a2[I2(a, c)] * b1[I1(b)] + a2[I2(b, c)] * b1[I1(a)];
}

/* o = x y (Leibniz); o must not alias x or y */
static void rj_product(const Dm *D, const double *x, const double *y, double *o) {
    const int64_t d = D->d, q = D->q;
    const double xv = x[0], yv = y[0];
    o[0] = xv * yv;
    for (int64_t c = 0; c < d; c++) o[I1(c)] = x[I1(c)] * yv + xv * y[I1(c)];
    for (int64_t a = 0; a < q; a++)
        for (int64_t c = 0; c < d; c++)
            o[I2(a, c)] = x[I2(a, c)] * yv + x[I1(a)] * y[I1(c)] + x[I1(c)] * y[I1(a)] + xv * y[I2(a, c)];
    if (D->o3)
        for (int64_t a = 0; a < q; a++)
            for (int64_t b = 0; b < q; b++)
                for (int64_t c = 0; c < d; c++)
                    o[I3(a, b, c)] = x[I3(a, b, c)] * yv + sym3(D, x, y, a, b, c) + sym3(D, y, x, a, b, c)
                                     + xv * y[I3(a, b, c)];
}

/* o = g(x) with g, g', g'', g''' at x[0]; o may alias x (each entry reads its own and lower-order entries, written
   last) */
static void rj_apply(const Dm *D, const double *x, double f0, double f1, double f2, double f3, double *o) {
    const int64_t d = D->d, q = D->q;
    if (D->o3)
        for (int64_t a = 0; a < q; a++)
            for (int64_t b = 0; b < q; b++)
                for (int64_t c = 0; c < d; c++)
                    o[I3(a, b, c)] = f1 * x[I3(a, b, c)] + f2 * sym3(D, x, x, a, b, c)
                                     + f3 * x[I1(a)] * x[I1(b)] * x[I1(c)];
    for (int64_t a = 0; a < q; a++)
        for (int64_t c = 0; c < d; c++) o[I2(a, c)] = f1 * x[I2(a, c)] + f2 * x[I1(a)] * x[I1(c)];
    for (int64_t c = 0; c < d; c++) o[I1(c)] = f1 * x[I1(c)];
    o[0] = f0;
}

static void rj_reciprocal(const Dm *D, const double *x, double *o) {
    double r = 1.0 / x[0];
    rj_apply(D, x, r, -r * r, 2 * pow(r, 3), -6 * pow(r, 4), o);
}

static void rj_log(const Dm *D, const double *x, double *o) {
    double r = 1.0 / x[0];
    rj_apply(D, x, log(x[0]), r, -r * r, 2 * pow(r, 3), o);
}

static void rj_exp(const Dm *D, const double *x, double *o) {
    double e = exp(x[0]);
    rj_apply(D, x, e, e, e, e, o);
}

static void rj_power(const Dm *D, const double *x, double p, double *o) {
    double v = x[0];
    rj_apply(D, x, pow(v, p), p * pow(v, p - 1), p * (p - 1) * pow(v, p - 2), p * (p - 1) * (p - 2) * pow(v, p - 3),
             o);
}

static void rj_log_ndtr(const Dm *D, const double *x, double *o) {
    double z = x[0];
    double lp = log_ndtr(z);
    double lam = exp(-0.5 * z * z - 0.5 * LOG_2PI - lp);
    double lam1 = -lam * (z + lam);
    double lam2 = -lam1 * (z + lam) - lam * (1.0 + lam1);
    rj_apply(D, x, lp, lam, lam1, lam2, o);
}

typedef struct {
    int64_t n, mode, q, k, d, nf, n_blocks, max_out, n_cols, max_obs, S;
    const int64_t *ms;                   /* (n_blocks, 3): multiset of each output block (positions in pi), -1 pad */
    const double *out, *out0;            /* (n, max_out, n_cols): pkpd_predict's outputs (out0: at eta = 0, FOCE) */
    const double *scale, *scale0;        /* (n, k): the derivative scales they were computed with */
    const double *theta;                 /* (n, k): typical values over pi */
    const double *eta;                   /* (n, q) */
    const int64_t *eta_pos, *eta_kind;   /* (q): position in pi, transformation */
    const int64_t *obs_start, *obs_ti, *obs_out, *obs_cens;
    const double *obs_u, *obs_lim;
    const int64_t *err_kind, *err_ca, *err_cb;   /* per fitted output: kind, coordinates of a and b (-1: none) */
    const double *err_a, *err_b;
    const double *omega, *W;             /* (q, q): Omega (FO), its inverse (modes 0, 1) */
    double *ell, *hx;                    /* modes 0, 1: (n, S), (n, q, q) */
    double *ofv, *grad, *gomega;         /* (n), (n, d), (n, q, q) */
    double *info;                        /* FO, or NULL: (n, d + q q, d + q q), see fo_information */
    atomic_long next;
} Asm;

typedef struct {
    Dm D;
    double *P, *P0;      /* k jets of the parameters in phi (P0: eta fixed at 0) */
    double *F;           /* P-space derivatives: F1 (k), F2 (k, k), F3 (k, k, k) */
    double *V, *Y, *X, *Z;
    double *f, *f0, *m, *R, *t1, *t2, *t3, *t4;
    double *Mo, *Ro;     /* FO: per observation m and R */
    /* FO information: C^-1 dC_c per phi coordinate, one dC (and dC H), C^-1 dmu_c, C^-1 G, G' C^-1 G and
       G' C^-1 dC_c C^-1 G */
    double *Mi, *dCt, *Cm, *Hq, *Kq, *Tq;
    double *C, *G, *GO, *Cr, *M, *Pm;
    double *A0, *dA, *LU, *Ai, *tr, *wv, *dl;   /* modes 0, 1: the q x q algebra */
    int64_t *piv;
} Tmp;

/* The jets of the parameters in pi as functions of phi (eta_variable: eta enters; otherwise eta = 0, fixed). */
static void parameter_jets(const Asm *A, int64_t s, const Dm *D, int eta_variable, double *P, Tmp *w) {
    const int64_t q = A->q, k = A->k;
    for (int64_t i = 0; i < k; i++) {
        double *t = P + i * D->S;
        rj_var(D, t, A->theta[s * k + i], q + i);
        for (int64_t a = 0; a < q; a++) {
            if (A->eta_pos[a] != i) continue;
            double *e = w->t1, *u = w->t2, *v = w->t3;
            if (eta_variable) rj_var(D, e, A->eta[s * q + a], a);
            else rj_const(D, e, 0.0);
            const int64_t kind = A->eta_kind[a];
            if (kind == 0) {
                rj_exp(D, e, u);
                rj_product(D, t, u, v);
                memcpy(t, v, sizeof(double) * D->S);
            } else if (kind == 1) {
                rj_add(D, t, e, t);
            } else {
                /* L = log(t) - log(1 - t) + e; expit(L) = 1 / (1 + exp(-L)) */
                rj_scale(D, t, -1.0, u);
                u[0] += 1.0;
                rj_log(D, u, u);
                rj_scale(D, u, -1.0, u);
                rj_log(D, t, v);
                rj_add(D, v, u, v);
                rj_add(D, v, e, v);
                rj_scale(D, v, -1.0, v);
                rj_exp(D, v, v);
                v[0] += 1.0;
                rj_reciprocal(D, v, t);
            }
        }
    }
}

/* The jet f (in phi) of the prediction in row `row` of a subject's outputs, output oi, via the P-space derivatives
   (scaled by `scale`) and the parameter jets P. */
static void prediction_jet(const Asm *A, const Dm *D, const double *row, int64_t oi, const double *scale,
                           const double *P, Tmp *w, double *f) {
    const int64_t q = A->q, k = A->k, d = A->d, S = D->S;
    double *F1 = w->F, *F2 = F1 + k, *F3 = F2 + k * k;
    memset(F1, 0, sizeof(double) * (k + k * k + (D->o3 ? k * k * k : 0)));
    for (int64_t b = 1; b < A->n_blocks; b++) {
        const int64_t *m = A->ms + 3 * b;
        double v = row[b * A->nf + oi];
        if (m[1] < 0) {
            F1[m[0]] = v / scale[m[0]];
        } else if (m[2] < 0) {
            double c = v / (scale[m[0]] * scale[m[1]]);
            F2[m[0] * k + m[1]] = c;
            F2[m[1] * k + m[0]] = c;
        } else if (D->o3) {
            double c = v / (scale[m[0]] * scale[m[1]] * scale[m[2]]);
            const int64_t i0 = m[0], i1 = m[1], i2 = m[2];
            F3[(i0 * k + i1) * k + i2] = c; F3[(i0 * k + i2) * k + i1] = c;
            F3[(i1 * k + i0) * k + i2] = c; F3[(i1 * k + i2) * k + i0] = c;
            F3[(i2 * k + i0) * k + i1] = c; F3[(i2 * k + i1) * k + i0] = c;
        }
    }
#define PJ(i, idx) P[(i) * S + (idx)]
    memset(f, 0, sizeof(double) * S);
    f[0] = row[oi];
    for (int64_t c = 0; c < d; c++) {
        double acc = 0.0;
        for (int64_t i = 0; i < k; i++) acc += F1[i] * PJ(i, I1(c));
        f[I1(c)] = acc;
    }
    /* V[a][j] = sum_i P_i,a F2[i][j] */
    double *V = w->V;
    for (int64_t a = 0; a < q; a++)
        for (int64_t j = 0; j < k; j++) {
            double acc = 0.0;
            for (int64_t i = 0; i < k; i++) acc += PJ(i, I1(a)) * F2[i * k + j];
            V[a * k + j] = acc;
        }
    for (int64_t a = 0; a < q; a++)
        for (int64_t c = 0; c < d; c++) {
            double acc = 0.0;
            for (int64_t j = 0; j < k; j++) acc += V[a * k + j] * PJ(j, I1(c));
            for (int64_t i = 0; i < k; i++) acc += F1[i] * PJ(i, I2(a, c));
            f[I2(a, c)] = acc;
        }
    if (!D->o3) return;
    /* Y[a][j][l] = sum_i P_i,a F3[i][j][l]; X[a][b][l] = sum_j P_j,b Y[a][j][l];
       Z[a][b][j] = sum_i P_i,ab F2[i][j] */
    double *Y = w->Y, *X = w->X, *Z = w->Z;
    for (int64_t a = 0; a < q; a++)
        for (int64_t j = 0; j < k; j++)
            for (int64_t l = 0; l < k; l++) {
                double acc = 0.0;
                for (int64_t i = 0; i < k; i++) acc += PJ(i, I1(a)) * F3[(i * k + j) * k + l];
                Y[(a * k + j) * k + l] = acc;
            }
    for (int64_t a = 0; a < q; a++)
        for (int64_t b = 0; b < q; b++)
            for (int64_t l = 0; l < k; l++) {
                double acc = 0.0, acc2 = 0.0;
                for (int64_t j = 0; j < k; j++) {
                    acc += PJ(j, I1(b)) * Y[(a * k + j) * k + l];
                    acc2 += PJ(j, I2(a, b)) * F2[j * k + l];
                }
                X[(a * q + b) * k + l] = acc;
                Z[(a * q + b) * k + l] = acc2;
            }
    for (int64_t a = 0; a < q; a++)
        for (int64_t b = 0; b < q; b++)
            for (int64_t c = 0; c < d; c++) {
                double acc = 0.0;
                for (int64_t l = 0; l < k; l++)
                    acc += (X[(a * q + b) * k + l] + Z[(a * q + b) * k + l]) * PJ(l, I1(c));
                for (int64_t i = 0; i < k; i++)
                    acc += PJ(i, I2(a, c)) * V[b * k + i] + PJ(i, I2(b, c)) * V[a * k + i]
                           + F1[i] * PJ(i, I3(a, b, c));
                f[I3(a, b, c)] = acc;
            }
#undef PJ
}

/* m (transformed prediction) and R (residual variance) of output oi from the prediction jet f (R from fr). */
static void residual_jets(const Asm *A, const Dm *D, int64_t oi, const double *f, const double *fr, Tmp *w,
                          double *m, double *R) {
    const int64_t kind = A->err_kind[oi];
    double *s = w->t1, *u = w->t2, *v = w->t3;
    if (kind == 4) rj_log(D, f, m);
    else memcpy(m, f, sizeof(double) * D->S);
    if (kind == 0 || kind == 4) {
        rj_var(D, s, A->err_a[oi], A->err_ca[oi]);
        rj_product(D, s, s, R);
    } else if (kind == 1) {
        rj_var(D, u, A->err_b[oi], A->err_cb[oi]);
        rj_product(D, u, fr, s);
        rj_product(D, s, s, R);
    } else if (kind == 2) {
        rj_var(D, s, A->err_a[oi], A->err_ca[oi]);
        rj_var(D, u, A->err_b[oi], A->err_cb[oi]);
        rj_product(D, u, fr, v);                 /* bf */
        rj_product(D, s, s, u);                  /* a a */
        rj_product(D, v, v, s);                  /* bf bf */
        rj_add(D, u, s, R);
    } else {
        rj_var(D, s, A->err_a[oi], A->err_ca[oi]);
        rj_var(D, u, A->err_b[oi], A->err_cb[oi]);
        rj_product(D, u, fr, v);
        rj_add(D, s, v, s);
        rj_product(D, s, s, R);
    }
}

/* LU factorisation with partial pivoting of the n x n matrix M into LU (piv: row order); returns 0 when a pivot is
   zero (singular). sign and log|det| in *sign, *logdet. */
static int small_lu_factor(int64_t n, const double *M, double *LU, int64_t *piv, double *sign, double *logdet) {
    memcpy(LU, M, sizeof(double) * n * n);
    double sg = 1.0, ld = 0.0;
    int ok = 1;
    for (int64_t i = 0; i < n; i++) piv[i] = i;
    for (int64_t k = 0; k < n; k++) {
        int64_t p = k;
        for (int64_t i = k + 1; i < n; i++)
            if (fabs(LU[i * n + k]) > fabs(LU[p * n + k])) p = i;
        if (p != k) {
            for (int64_t j = 0; j < n; j++) {
                double t = LU[k * n + j];
                LU[k * n + j] = LU[p * n + j];
                LU[p * n + j] = t;
            }
            int64_t t = piv[k]; piv[k] = piv[p]; piv[p] = t;
            sg = -sg;
        }
        double u = LU[k * n + k];
        if (u == 0.0) {
            ok = 0;
            continue;
        }
        if (u < 0.0) sg = -sg;
        ld += log(fabs(u));
        for (int64_t i = k + 1; i < n; i++) {
            double f = LU[i * n + k] / u;
            LU[i * n + k] = f;
            for (int64_t j = k + 1; j < n; j++) LU[i * n + j] -= f * LU[k * n + j];
        }
    }
    *sign = ok ? sg : 0.0;
    *logdet = ok ? ld : -INFINITY;
    return ok;
}

/* x = M^-1 b from small_lu_factor's LU and piv */
static void small_lu_solve(int64_t n, const double *LU, const int64_t *piv, const double *b, double *x) {
    for (int64_t i = 0; i < n; i++) {
        double acc = b[piv[i]];
        for (int64_t k = 0; k < i; k++) acc -= LU[i * n + k] * x[k];
        x[i] = acc;
    }
    for (int64_t i = n - 1; i >= 0; i--) {
        double acc = x[i];
        for (int64_t k = i + 1; k < n; k++) acc -= LU[i * n + k] * x[k];
        x[i] = acc / LU[i * n + i];
    }
}

static int all_finite(int64_t n, const double *v) {
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(v[i])) return 0;
    return 1;
}

/* Modes 0 and 1, after the sums: O = ell + eta' W eta, A and dA, log|A| (first-order correction to the exact mode),
   the objective and its gradients by phi and Omega, the exact Hessian of O in eta (see the module docstring). */
static void conditional_tail(const Asm *A, int64_t s, Tmp *w) {
    const Dm *D = &w->D;
    const int64_t q = A->q, d = A->d;
    const double *ell = A->ell + s * D->S, *eta = A->eta + s * q, *W = A->W;
    double *g = A->grad + s * d, *Hx = A->hx + s * q * q, *GOm = A->gomega + s * q * q;
    double *Am = w->LU + q * q, *dA = w->dA, *Ai = w->Ai, *tr = w->tr, *wv = w->wv, *dl = w->dl, *e = w->dl + q;
    /* O and its derivatives: g holds dO/dphi until the gradient replaces it; O_d2[a][c] = ell_d2[a][c] (+ 2 W) */
    double Ov = ell[0];
    for (int64_t a = 0; a < q; a++) {
        double we = 0.0;
        for (int64_t r = 0; r < q; r++) we += eta[r] * W[r * q + a];
        Ov += eta[a] * we;
        e[a] = 2.0 * we;
    }
    for (int64_t c = 0; c < d; c++) g[c] = ell[I1(c)] + (c < q ? e[c] : 0.0);
#define OD2(a, c) (ell[I2(a, c)] + ((c) < q ? 2.0 * W[(a) * q + (c)] : 0.0))
    for (int64_t a = 0; a < q; a++)
        for (int64_t b = 0; b < q; b++) {
            Am[a * q + b] = D->o3 ? 0.5 * OD2(a, b) : W[a * q + b] + w->A0[a * q + b];
            Hx[a * q + b] = OD2(a, b);
        }
    if (D->o3)
        for (int64_t i = 0; i < q * q * d; i++) dA[i] = 0.5 * ell[1 + d + q * d + i];
    double sign, logdet, hs, hl;
    int a_ok = all_finite(q * q, Am) && small_lu_factor(q, Am, w->LU, w->piv, &sign, &logdet);
    if (!all_finite(q * q, Am)) sign = NAN;
    /* A^-1 (NaN when singular or not finite: the objective is NaN then) */
    for (int64_t b = 0; b < q; b++) {
        for (int64_t a = 0; a < q; a++) wv[a] = a == b ? 1.0 : 0.0;
        if (a_ok) small_lu_solve(q, w->LU, w->piv, wv, dl);
        for (int64_t a = 0; a < q; a++) Ai[a * q + b] = a_ok ? dl[a] : NAN;
    }
    for (int64_t c = 0; c < d; c++) {
        double acc = 0.0;
        for (int64_t a = 0; a < q; a++)
            for (int64_t b = 0; b < q; b++) acc += Ai[a * q + b] * dA[(b * q + a) * d + c];
        tr[c] = acc;
    }
    /* the exact Hessian in eta, the identity where it is not finite or singular */
    int h_ok = all_finite(q * q, Hx) && small_lu_factor(q, Hx, w->LU, w->piv, &hs, &hl);
    if (!h_ok) {
        for (int64_t a = 0; a < q; a++)
            for (int64_t b = 0; b < q; b++) Hx[a * q + b] = a == b ? 1.0 : 0.0;
        small_lu_factor(q, Hx, w->LU, w->piv, &hs, &hl);
    }
    /* the last Newton step corrects log|A| to first order (see PopulationObjective._conditional_tail) */
    for (int64_t a = 0; a < q; a++) wv[a] = -g[a];
    small_lu_solve(q, w->LU, w->piv, wv, dl);
    double big = 0.0;
    int finite = 1;
    for (int64_t a = 0; a < q; a++) {
        finite &= isfinite(dl[a]);
        big = fmax(big, fabs(dl[a]));
    }
    if (finite && big < 1e-3)
        for (int64_t a = 0; a < q; a++) logdet += tr[a] * dl[a];
    A->ofv[s] = sign > 0 ? Ov + logdet : NAN;
    /* gradients: w = Hx^-1 tr_eta; g_phi = dO/dphi + tr - w' O_d2; G_W = eta eta' + A^-1 - eta w' - w eta';
       dO/dOmega = -W G_W W */
    small_lu_solve(q, w->LU, w->piv, tr, wv);
    for (int64_t c = 0; c < d; c++) {
        double acc = 0.0;
        for (int64_t a = 0; a < q; a++) acc += wv[a] * OD2(a, c);
        g[c] = g[c] + tr[c] - acc;
    }
#undef OD2
    double *GW = w->LU;
    for (int64_t a = 0; a < q; a++)
        for (int64_t b = 0; b < q; b++)
            GW[a * q + b] = eta[a] * eta[b] + Ai[a * q + b] - eta[a] * wv[b] - wv[a] * eta[b];
    for (int64_t a = 0; a < q; a++)
        for (int64_t b = 0; b < q; b++) {
            double acc = 0.0;
            for (int64_t k = 0; k < q; k++)
                for (int64_t l = 0; l < q; l++) acc += W[a * q + k] * GW[k * q + l] * W[l * q + b];
            GOm[a * q + b] = -acc;
        }
}

/* Modes 0 and 1: the sums over the subject's observations (see the module docstring). */
static void assemble_conditional(const Asm *A, int64_t s, Tmp *w) {
    const Dm *D = &w->D;
    const int64_t q = A->q, d = A->d, S = D->S;
    double *ell = A->ell + s * S;
    memset(ell, 0, sizeof(double) * S);
    double *A0 = D->o3 ? NULL : w->A0, *dA = D->o3 ? NULL : w->dA;
    if (A0) {
        memset(A0, 0, sizeof(double) * q * q);
        memset(dA, 0, sizeof(double) * q * q * d);
    }
    parameter_jets(A, s, D, 1, w->P, w);
    if (A->mode == 1) parameter_jets(A, s, D, 0, w->P0, w);
    const double *orow = A->out + s * A->max_out * A->n_cols;
    const double *orow0 = A->mode == 1 ? A->out0 + s * A->max_out * A->n_cols : NULL;
    double *f = w->f, *f0 = w->f0, *m = w->m, *R = w->R, *t = w->t4;
    for (int64_t j = A->obs_start[s]; j < A->obs_start[s + 1]; j++) {
        const int64_t oi = A->obs_out[j], ti = A->obs_ti[j];
        prediction_jet(A, D, orow + ti * A->n_cols, oi, A->scale + s * A->k, w->P, w, f);
        const double *fr = f;
        if (A->mode == 1) {
            prediction_jet(A, D, orow0 + ti * A->n_cols, oi, A->scale0 + s * A->k, w->P0, w, f0);
            fr = f0;
        }
        /* FOCE: m at the EBEs, R at eta = 0 (its jet has no eta derivatives) */
        residual_jets(A, D, oi, f, fr, w, m, R);
        double *r = w->t1, *rr = w->t2, *ri = w->t3;
        if (!A->obs_cens[j]) {
            /* r = u - m; r r / R + log R */
            rj_scale(D, m, -1.0, r);
            r[0] = A->obs_u[j] - m[0];
            rj_product(D, r, r, rr);
            rj_reciprocal(D, R, ri);
            rj_product(D, rr, ri, t);
            rj_log(D, R, rr);
            rj_add(D, t, rr, t);
        } else {
            /* z = (L - m) R^-1/2; -2 log Phi(z) */
            rj_scale(D, m, -1.0, r);
            r[0] = A->obs_lim[j] - m[0];
            rj_power(D, R, -0.5, ri);
            rj_product(D, r, ri, rr);
            rj_log_ndtr(D, rr, t);
            rj_scale(D, t, -2.0, t);
        }
        rj_add(D, ell, t, ell);
        if (A0 && !A->obs_cens[j]) {
            const double iR = 1.0 / R[0], iR2 = iR * iR, iR3 = iR2 * iR;
            for (int64_t a = 0; a < q; a++)
                for (int64_t b = 0; b < q; b++) {
                    const double mga = m[I1(a)], mgb = m[I1(b)], Rga = R[I1(a)], Rgb = R[I1(b)];
                    A0[a * q + b] += mga * mgb * iR + 0.5 * Rga * Rgb * iR2;
                    double *o = dA + (a * q + b) * d;
                    for (int64_t c = 0; c < d; c++)
                        o[c] += (m[I2(a, c)] * mgb + m[I2(b, c)] * mga) * iR - mga * mgb * R[I1(c)] * iR2
                                + 0.5 * (R[I2(a, c)] * Rgb + R[I2(b, c)] * Rga) * iR2 - Rga * Rgb * R[I1(c)] * iR3;
                }
        }
    }
    conditional_tail(A, s, w);
}

/* Cholesky factor (lower, in place of the lower triangle of a copy); 0 when not positive definite. */
static int cholesky(int64_t n, const double *Ain, double *L) {
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j <= i; j++) {
            double acc = Ain[i * n + j];
            for (int64_t k = 0; k < j; k++) acc -= L[i * n + k] * L[j * n + k];
            if (i == j) {
                if (!(acc > 0.0)) return 0;
                L[i * n + i] = sqrt(acc);
            } else {
                L[i * n + j] = acc / L[j * n + j];
            }
        }
    return 1;
}

/* C = A B (row-major; A: n x k, B: k x m; ta: A given transposed, k x n). */
static void matmul(int64_t n, int64_t k, int64_t m, const double *A, int ta, const double *B, double *C) {
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < m; j++) {
            double acc = 0.0;
            for (int64_t l = 0; l < k; l++) acc += (ta ? A[l * n + i] : A[i * k + l]) * B[l * m + j];
            C[i * m + j] = acc;
        }
}

/* FO's expected information in psi = (phi, the q x q entries of Omega), per subject (D2 = d + q q):
   I[u][v] = 2 dmu_u' C^-1 dmu_v + tr(C^-1 dC_u C^-1 dC_v), with dmu_c = dm/dphi_c (0 for Omega),
   dC_c = Gd_c Omega G' + G Omega Gd_c' + diag(dR_c) and dC/dOmega_ab = g_a g_b' (g_a: column a of G), a rank-one
   matrix: with H = C^-1 G and K = G' C^-1 G, tr(C^-1 dC_c C^-1 g_a g_b') = (H' dC_c H)_ba and
   tr(C^-1 g_a g_b' C^-1 g_e g_f') = K_be K_fa. The caller carries it to its parameters by their Jacobian
   (pkpd.estimation._fo_information.information_from_psi). */
static void fo_information(const Asm *A, int64_t s, Tmp *w, int64_t J, const double *Ci, const double *G,
                           const double *GO) {
    const Dm *D = &w->D;
    const int64_t q = A->q, d = A->d, S = D->S, SR = 1 + d, D2 = d + q * q;
    double *I = A->info + s * D2 * D2, *Mu = w->Mi, *dC = w->dCt, *Cm = w->Cm, *H = w->Hq, *K = w->Kq, *T = w->Tq;
    matmul(J, J, q, Ci, 0, G, H);
    matmul(q, J, q, G, 1, H, K);
    for (int64_t u = 0; u < d; u++) {
        for (int64_t j = 0; j < J; j++)
            for (int64_t l = 0; l < J; l++) {
                double acc = 0.0;
                for (int64_t a = 0; a < q; a++)
                    acc += w->Mo[j * S + I2(a, u)] * GO[l * q + a] + GO[j * q + a] * w->Mo[l * S + I2(a, u)];
                dC[j * J + l] = acc + (j == l ? w->Ro[j * SR + I1(u)] : 0.0);
            }
        matmul(J, J, J, Ci, 0, dC, Mu + u * J * J);
        /* T_u = H' dC_u H (q x q), through dC_u H (J x q, in the first J q entries of the next dC) */
        matmul(J, J, q, dC, 0, H, w->dCt + J * J);
        matmul(q, J, q, H, 1, w->dCt + J * J, T + u * q * q);
        double *c = Cm + u * J;
        for (int64_t j = 0; j < J; j++) {
            double acc = 0.0;
            for (int64_t l = 0; l < J; l++) acc += Ci[j * J + l] * w->Mo[l * S + I1(u)];
            c[j] = acc;
        }
    }
    for (int64_t u = 0; u < d; u++) {
        for (int64_t v = 0; v <= u; v++) {
            const double *Mu_ = Mu + u * J * J, *Mv = Mu + v * J * J;
            double acc = 0.0;
            for (int64_t j = 0; j < J; j++) {
                for (int64_t l = 0; l < J; l++) acc += Mu_[j * J + l] * Mv[l * J + j];
                acc += 2.0 * w->Mo[j * S + I1(u)] * Cm[v * J + j];
            }
            I[u * D2 + v] = acc;
            I[v * D2 + u] = acc;
        }
        for (int64_t a = 0; a < q; a++)
            for (int64_t b = 0; b < q; b++) {
                const double t = T[u * q * q + b * q + a];
                I[u * D2 + d + a * q + b] = t;
                I[(d + a * q + b) * D2 + u] = t;
            }
    }
    for (int64_t a = 0; a < q; a++)
        for (int64_t b = 0; b < q; b++)
            for (int64_t e = 0; e < q; e++)
                for (int64_t f = 0; f < q; f++)
                    I[(d + a * q + b) * D2 + d + e * q + f] = K[b * q + e] * K[f * q + a];
}

/* Mode 2 (FO): OFV_i = log|C| + r' C^-1 r, C = G Omega G' + diag(R), with its gradients by phi and Omega. */
static void assemble_fo(const Asm *A, int64_t s, Tmp *w) {
    const Dm *D = &w->D;
    const int64_t q = A->q, d = A->d, S = D->S;
    const int64_t j0 = A->obs_start[s], J = A->obs_start[s + 1] - j0;
    parameter_jets(A, s, D, 1, w->P, w);
    const double *orow = A->out + s * A->max_out * A->n_cols;
    const int64_t SR = 1 + d;
    for (int64_t j = 0; j < J; j++) {
        const int64_t oi = A->obs_out[j0 + j], ti = A->obs_ti[j0 + j];
        prediction_jet(A, D, orow + ti * A->n_cols, oi, A->scale + s * A->k, w->P, w, w->f);
        residual_jets(A, D, oi, w->f, w->f, w, w->m, w->R);
        memcpy(w->Mo + j * S, w->m, sizeof(double) * S);
        memcpy(w->Ro + j * SR, w->R, sizeof(double) * SR);
    }
    double *C = w->C, *Ci = w->C + J * J, *L = w->C + 2 * J * J;
    double *G = w->G, *GO = w->GO, *Cr = w->Cr, *r = w->Cr + J, *M = w->M, *Pm = w->Pm;
    const double *Om = A->omega;
    for (int64_t j = 0; j < J; j++) {
        for (int64_t a = 0; a < q; a++) G[j * q + a] = w->Mo[j * S + I1(a)];
        r[j] = A->obs_u[j0 + j] - w->Mo[j * S];
    }
    matmul(J, q, q, G, 0, Om, GO);
    for (int64_t j = 0; j < J; j++)
        for (int64_t l = 0; l < J; l++) {
            double acc = 0.0;
            for (int64_t b = 0; b < q; b++) acc += GO[j * q + b] * G[l * q + b];
            C[j * J + l] = acc + (j == l ? w->Ro[j * SR] : 0.0);
        }
    double *g = A->grad + s * d, *GOm = A->gomega + s * q * q;
    memset(L, 0, sizeof(double) * J * J);
    if (!cholesky(J, C, L)) {
        A->ofv[s] = NAN;
        for (int64_t c = 0; c < d; c++) g[c] = NAN;
        for (int64_t a = 0; a < q * q; a++) GOm[a] = NAN;
        return;
    }
    double logdet = 0.0;
    for (int64_t j = 0; j < J; j++) logdet += 2.0 * log(L[j * J + j]);
    /* C^-1 = L^-T L^-1: columns of L^-1 by forward substitution into Ci's lower part, then the product */
    double *Li = M;   /* J x J scratch (M is J x q later; sized J x max(J, q)) */
    for (int64_t c = 0; c < J; c++)
        for (int64_t i = 0; i < J; i++) {
            if (i < c) { Li[i * J + c] = 0.0; continue; }
            double acc = (i == c) ? 1.0 : 0.0;
            for (int64_t k = c; k < i; k++) acc -= L[i * J + k] * Li[k * J + c];
            Li[i * J + c] = acc / L[i * J + i];
        }
    for (int64_t i = 0; i < J; i++)
        for (int64_t l = 0; l <= i; l++) {
            double acc = 0.0;
            for (int64_t k = i; k < J; k++) acc += Li[k * J + i] * Li[k * J + l];
            Ci[i * J + l] = acc;
            Ci[l * J + i] = acc;
        }
    double quad = 0.0;
    for (int64_t j = 0; j < J; j++) {
        double acc = 0.0;
        for (int64_t l = 0; l < J; l++) acc += Ci[j * J + l] * r[l];
        Cr[j] = acc;
        quad += r[j] * acc;
    }
    A->ofv[s] = logdet + quad;
    /* P = C^-1 - Cr Cr'; M[k][a] = sum_j P[k][j] GO[j][a] */
    for (int64_t j = 0; j < J; j++)
        for (int64_t l = 0; l < J; l++) Pm[j * J + l] = Ci[j * J + l] - Cr[j] * Cr[l];
    for (int64_t l = 0; l < J; l++)
        for (int64_t a = 0; a < q; a++) {
            double acc = 0.0;
            for (int64_t j = 0; j < J; j++) acc += Pm[l * J + j] * GO[j * q + a];
            M[l * q + a] = acc;
        }
    /* g_c = sum_jk P_jk dC_kj,c - 2 sum_j dm_j,c Cr_j, dC_c = Gd_c Omega G' + G Omega Gd_c' + diag(dR_c) */
    for (int64_t c = 0; c < d; c++) {
        double acc = 0.0;
        for (int64_t l = 0; l < J; l++) {
            const double *mo = w->Mo + l * S;
            for (int64_t a = 0; a < q; a++) acc += 2.0 * mo[I2(a, c)] * M[l * q + a];
            acc += Pm[l * J + l] * w->Ro[l * SR + I1(c)];
            acc -= 2.0 * mo[I1(c)] * Cr[l];
        }
        g[c] = acc;
    }
    /* dOFV/dOmega = G' C^-1 G - (G' C^-1 r)(G' C^-1 r)' */
    for (int64_t a = 0; a < q; a++) {
        double gca = 0.0;
        for (int64_t j = 0; j < J; j++) gca += G[j * q + a] * Cr[j];
        w->t1[a] = gca;
    }
    for (int64_t a = 0; a < q; a++)
        for (int64_t b = 0; b < q; b++) {
            double acc = 0.0;
            for (int64_t j = 0; j < J; j++) {
                double cg = 0.0;
                for (int64_t l = 0; l < J; l++) cg += Ci[j * J + l] * G[l * q + b];
                acc += G[j * q + a] * cg;
            }
            GOm[a * q + b] = acc - w->t1[a] * w->t1[b];
        }
    if (A->info) fo_information(A, s, w, J, Ci, G, GO);
}

static void *assemble_worker(void *arg) {
    Asm *A = (Asm *)arg;
    const int64_t q = A->q, k = A->k, d = A->d, S = A->S, J = A->max_obs;
    Tmp w;
    w.D.d = d; w.D.q = q; w.D.o3 = A->S > 1 + d + q * d; w.D.S = S;
    const int64_t JM = J > q ? J : q;
    size_t size = 2 * k * S + (k + k * k + k * k * k) + q * k + q * k * k + 2 * q * q * k + 8 * S + 8
                  + q * q + q * q * d + 2 * q * q + q * q + d + q + 2 * q + q;
    if (A->mode == 2) size += J * S + J * (1 + d) + 3 * J * J + J * q + J * q + 2 * J + J * JM + J * J;
    if (A->mode == 2 && A->info) size += d * J * J + J * J + J * q + d * J + J * q + q * q + d * q * q;
    double *buf = (double *)malloc(sizeof(double) * size);
    if (!buf) return NULL;
    double *p = buf;
    w.P = p; p += k * S;
    w.P0 = p; p += k * S;
    w.F = p; p += k + k * k + k * k * k;
    w.V = p; p += q * k;
    w.Y = p; p += q * k * k;
    w.X = p; p += q * q * k;
    w.Z = p; p += q * q * k;
    w.f = p; p += S; w.f0 = p; p += S; w.m = p; p += S; w.R = p; p += S;
    w.t1 = p; p += S; w.t2 = p; p += S; w.t3 = p; p += S; w.t4 = p; p += S;
    w.A0 = p; p += q * q;
    w.dA = p; p += q * q * d;
    w.LU = p; p += 2 * q * q;
    w.Ai = p; p += q * q;
    w.tr = p; p += d;
    w.wv = p; p += q;
    w.dl = p; p += 2 * q;
    w.piv = (int64_t *)p; p += q;
    if (A->mode == 2) {
        w.Mo = p; p += J * S;
        w.Ro = p; p += J * (1 + d);
        w.C = p; p += 3 * J * J;
        w.G = p; p += J * q;
        w.GO = p; p += J * q;
        w.Cr = p; p += 2 * J;
        w.M = p; p += J * JM;
        w.Pm = p; p += J * J;
        if (A->info) {
            w.Mi = p; p += d * J * J;
            w.dCt = p; p += J * J + J * q;
            w.Cm = p; p += d * J;
            w.Hq = p; p += J * q;
            w.Kq = p; p += q * q;
            w.Tq = p; p += d * q * q;
        }
    }
    for (;;) {
        long s = atomic_fetch_add(&A->next, 1);
        if (s >= A->n) break;
        if (A->mode == 2) assemble_fo(A, s, &w);
        else assemble_conditional(A, s, &w);
    }
    free(buf);
    return NULL;
}

int pkpd_assemble(int64_t n, int64_t mode, int64_t order, int64_t q, int64_t k, int64_t d, int64_t nf,
                  int64_t n_blocks, const int64_t *ms, int64_t max_out, int64_t n_cols, int64_t max_obs,
                  const double *out, const double *out0, const double *scale, const double *scale0,
                  const double *theta, const double *eta, const int64_t *eta_pos, const int64_t *eta_kind,
                  const int64_t *obs_start, const int64_t *obs_ti, const int64_t *obs_out, const int64_t *obs_cens,
                  const double *obs_u, const double *obs_lim, const int64_t *err_kind, const int64_t *err_ca,
                  const int64_t *err_cb, const double *err_a, const double *err_b, const double *omega,
                  const double *W, double *ell, double *hx, double *ofv, double *grad, double *gomega,
                  double *info, int64_t n_threads) {
    Asm A;
    memset(&A, 0, sizeof(Asm));
    A.n = n; A.mode = mode; A.q = q; A.k = k; A.d = d; A.nf = nf; A.n_blocks = n_blocks; A.ms = ms;
    A.max_out = max_out; A.n_cols = n_cols; A.max_obs = max_obs;
    A.S = 1 + d + q * d + (order >= 3 ? q * q * d : 0);
    A.out = out; A.out0 = out0; A.scale = scale; A.scale0 = scale0; A.theta = theta; A.eta = eta;
    A.eta_pos = eta_pos; A.eta_kind = eta_kind;
    A.obs_start = obs_start; A.obs_ti = obs_ti; A.obs_out = obs_out; A.obs_cens = obs_cens;
    A.obs_u = obs_u; A.obs_lim = obs_lim;
    A.err_kind = err_kind; A.err_ca = err_ca; A.err_cb = err_cb; A.err_a = err_a; A.err_b = err_b;
    A.omega = omega; A.W = W; A.ell = ell; A.hx = hx; A.ofv = ofv; A.grad = grad; A.gomega = gomega;
    A.info = mode == 2 ? info : NULL;
    atomic_init(&A.next, 0);
    if (n_threads > n) n_threads = n;
    if (n_threads < 1) n_threads = 1;
    if (n_threads > 256) n_threads = 256;
    pthread_t th[256];
    int started = 0;
    for (int i = 1; i < n_threads; i++) {
        if (pthread_create(&th[started], NULL, assemble_worker, &A) != 0) break;
        started++;
    }
    assemble_worker(&A);
    for (int i = 0; i < started; i++) pthread_join(th[i], NULL);
    return atomic_load(&A.next) < n ? -1 : 0;
}
"""
