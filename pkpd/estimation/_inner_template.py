"""C source of the compiled inner problem: empirical Bayes estimates of every subject, in parallel (private).

:mod:`pkpd.estimation._codegen` writes one C file per model and set of random effects: the generated functions of
the model augmented with its first-order sensitivities to the random-effect parameters, the native engine's
integrator (:data:`pkpd._native_template.C_TEMPLATE`), and :data:`INNER_TEMPLATE`, whose entry points are

* ``pkpd_predict``: the recorded outputs (predictions and their derivatives of every order the system carries) of
  every subject at its output times, from its parameters and covariates;
* ``pkpd_inner``: for every subject (POSIX threads taking the next subject from an atomic counter, as the batch
  solver), the mode of the individual objective

  .. math:: O_i(\\eta) = \\sum_j \\left[\\frac{(u_{ij}-m_{ij})^2}{R_{ij}} + \\log R_{ij}\\right]
            - 2\\sum_{j\\,\\mathrm{censored}} \\log\\Phi\\!\\left(\\frac{L_{ij}-m_{ij}}{\\sqrt{R_{ij}}}\\right)
            + \\eta^\\top\\Omega^{-1}\\eta

  by the damped Gauss-Newton iteration of :mod:`pkpd.estimation.finite_difference` (expected-information Hessian
  :math:`\\Omega^{-1} + \\sum_j g g^\\top/R + \\tfrac12 r r^\\top/R^2`, step halving, steps capped at 2, stop when
  a step is below ``tol``: the analytic gradient of the outer problem assumes a stationary point), from the
  caller's starting values (the previous outer iteration's estimates; a start that cannot be solved is retried
  from 0). The gradient
  :math:`g = \\partial m/\\partial\\eta` comes from the forward sensitivity equations solved with the model.

The prediction of a subject (``predict_subject``: parameters in, predictions and their derivatives at the output
times out) is the one place that knows how they are solved: by the ODE solver, or for a linear model by the exact
solution of its linear augmented system (:mod:`pkpd.estimation._linear_template`).

Error models (kind): 0 additive ``a``; 1 proportional ``b f``; 2 combined ``sqrt(a^2 + (b f)^2)``; 3 combined
``a + b f``; 4 log-normal (``a`` the SD of log y; predictions on the log scale). With ``interaction == 0`` (FOCE)
the residual variances are the caller's (at the population predictions) and do not depend on eta.
Random-effect transformations (kind): 0 ``t exp(eta)``, 1 ``t + eta``, 2 ``expit(logit(t) + eta)``.
Status per subject: 0 solved; otherwise 100 + the solver's status at the starting point (100: solved, but the
objective is not finite there, e.g. a zero residual variance).

Solver method per subject (``methods``, updated in place): 1 Tsit5, 2 Rodas4, 0 "auto": Tsit5 (at most 5,000 steps),
and Rodas4 if that fails, in which case the subject's entry becomes 2 for the later calls; 3 (libraries of linear
models only) the exact solution, and "auto" for a subject whose step budget it spends (its entry becomes 0). (The
engine's stiffness test evaluates the Jacobian every few steps, which costs a solve of the whole system by finite
differences here.)
"""

INNER_TEMPLATE = r"""
/* ------------------------------------------------------------------------------------------ inner problem */
#define LOG_2PI 1.8378770664093453
#define SQRT_HALF 0.7071067811865476
#define N_BASE_Q (N_PARAMS + N_COVARIATES + N_SCALES)
#define AUTO_TSIT5_STEPS 5000

static double log_ndtr(double z) {
    if (z > 0.0) return log1p(-0.5 * erfc(z * SQRT_HALF));
    if (z > -20.0) return log(0.5 * erfc(-z * SQRT_HALF));
    double z2 = z * z;
    return -0.5 * z2 - log(-z) - 0.5 * LOG_2PI + log(1.0 - 1.0 / z2 + 3.0 / (z2 * z2) - 15.0 / (z2 * z2 * z2));
}

typedef struct {
    int64_t n_subj, n_design, max_ev, max_out, max_steps;
    const double *ev_t, *ev_val;
    const int64_t *ev_kind, *ev_idx, *n_ev;
    const double *TT, *t0;
    const int64_t *PRE, *n_out;
    int64_t *methods;
    double rtol, atol, hmax;
    double *counters;
    int64_t *status;
    int inner;                           /* 0: predictions; 1: the inner problem */
    /* predictions */
    const double *base;                  /* (n, N_BASE_Q): parameters, covariates, scales */
    double *outputs;                     /* (n, max_out, N_OUTPUTS) */
    /* inner problem */
    int64_t q, n_fit, interaction, max_iter;
    const double *theta;                 /* (n, N_BASE_Q): typical values, covariates, scales */
    const int64_t *eta_param, *eta_kind; /* (q) */
    const double *W;                     /* (q, q) */
    double *eta;                         /* (n, q) in and out */
    const int64_t *obs_start, *obs_ti, *obs_out, *obs_cens;
    const double *obs_u, *obs_lim, *obs_R0;
    const int64_t *err_kind;
    const double *err_a, *err_b;
    double tol, noise;
    double *obj;
    int64_t *n_iter;
    atomic_long next;
} Job;

/* What one thread needs for one subject. */
typedef struct {
    Work *w;
    double *q, *y, *y0, *oo, *obuf, *row, *dp, *fk, *gm, *rp;
} Ctx;

static inline double transform(int64_t kind, double t, double e, double *dp) {
    if (kind == 0) {
        double p = t * exp(e);
        *dp = p;
        return p;
    }
    if (kind == 1) {
        *dp = 1.0;
        return t + e;
    }
    double p = 1.0 / (1.0 + exp(-(log(t / (1.0 - t)) + e)));
    *dp = p * (1.0 - p);
    return p;
}

static int solve_with(const Job *b, int64_t s, Ctx *c, double *oo, int64_t method, int64_t max_steps,
                      double *counters) {
    const int64_t d = s % b->n_design;
    for (int i = 0; i < N_BASE_Q; i++) c->q[i] = c->row[i];
    static_q(c->q);
    initial_state(c->q, c->y0);
    for (int i = 0; i < N; i++) c->y[i] = c->y0[i];
    for (int i = 0; i < 4; i++) counters[i] = 0.0;
    Out o;
    o.tt = b->TT + d * b->max_out;
    o.pre = b->PRE + d * b->max_out;
    o.n_out = b->n_out[d];
    o.so = NULL;
    o.oo = oo;
    o.n_o = N_OUTPUTS;
    o.ws = 0;
    o.wo = 1;
    o.obuf = c->obuf;
    return solve_one(c->y, c->q, c->y0, b->ev_t + d * b->max_ev, b->ev_kind + d * b->max_ev,
                     b->ev_idx + d * b->max_ev, b->ev_val + d * b->max_ev, b->n_ev[d], &o, b->t0[s], b->rtol,
                     b->atol, b->hmax, max_steps, method, c->w, counters);
}

/* The predictions of row s (parameters and covariates in c->row) at its output times, into oo (n_out x
   N_OUTPUTS): the one place that knows how they are solved (ODE solver or exact linear solution). Returns the
   solver status. */
static int predict_subject(const Job *b, int64_t s, Ctx *c, double *oo, double *counters) {
    int64_t m = b->methods[s];
    if (m == 3) {
        int st = solve_with(b, s, c, oo, 3, b->max_steps, counters);
        if (st == 0) return 0;
        b->methods[s] = 0; /* the exact linear solution spent its step budget: the ODE solver from now on */
        m = 0;
    }
    if (m != 0) return solve_with(b, s, c, oo, m, b->max_steps, counters);
    int64_t cap = b->max_steps < AUTO_TSIT5_STEPS ? b->max_steps : AUTO_TSIT5_STEPS;
    int st = solve_with(b, s, c, oo, 1, cap, counters);
    if (st == 0) return 0;
    b->methods[s] = 2; /* this row belongs to this thread alone */
    return solve_with(b, s, c, oo, 2, b->max_steps, counters);
}

/* O_i(eta) (without the constant Jacobian terms of log-scale data), half its gradient and the expected-information
   half Hessian. Returns the solver status (0: solved; *obj is inf when the objective is not finite). */
static int evaluate(const Job *b, int64_t s, const double *eta, Ctx *c, double *obj, double *grad, double *H,
                    double *counters) {
    const int64_t q = b->q, nf = b->n_fit;
    const double *th = b->theta + s * N_BASE_Q;
    for (int i = 0; i < N_BASE_Q; i++) c->row[i] = th[i];
    for (int64_t k = 0; k < q; k++) {
        int64_t p = b->eta_param[k];
        c->row[p] = transform(b->eta_kind[k], th[p], eta[k], &c->dp[k]);
    }
    int st = predict_subject(b, s, c, c->oo, counters);
    *obj = INFINITY;
    if (st != 0) return st;
    double o = 0.0;
    for (int64_t k = 0; k < q; k++) {
        grad[k] = 0.0;
        for (int64_t l = 0; l < q; l++) H[k * q + l] = 0.0;
    }
    for (int64_t j = b->obs_start[s]; j < b->obs_start[s + 1]; j++) {
        const int64_t oi = b->obs_out[j];
        const double *row = c->oo + b->obs_ti[j] * N_OUTPUTS;
        double f = row[oi];
        for (int64_t k = 0; k < q; k++)
            c->fk[k] = row[(1 + k) * nf + oi] * c->dp[k] / c->row[N_PARAMS + N_COVARIATES + k];
        const int64_t kind = b->err_kind[oi];
        const double a = b->err_a[oi], bb = b->err_b[oi];
        double m, dm, sd, dsd;
        if (kind == 4) {
            if (!(f > 0.0)) return 0;
            m = log(f);
            dm = 1.0 / f;
        } else {
            m = f;
            dm = 1.0;
        }
        if (kind == 0 || kind == 4) {
            sd = a;
            dsd = 0.0;
        } else if (kind == 1) {
            sd = bb * f;
            dsd = bb;
        } else if (kind == 2) {
            sd = sqrt(a * a + bb * bb * f * f);
            dsd = bb * bb * f / sd;
        } else {
            sd = a + bb * f;
            dsd = bb;
        }
        double R;
        if (b->interaction) {
            R = sd * sd;
            for (int64_t k = 0; k < q; k++) c->rp[k] = 2.0 * sd * dsd * c->fk[k];
        } else {
            R = b->obs_R0[j];
            for (int64_t k = 0; k < q; k++) c->rp[k] = 0.0;
        }
        if (!(R > 0.0) || !isfinite(R) || !isfinite(m)) return 0;
        for (int64_t k = 0; k < q; k++) c->gm[k] = dm * c->fk[k];
        if (!b->obs_cens[j]) {
            double r = b->obs_u[j] - m;
            o += r * r / R + log(R);
            double c1 = r / R, c2 = 0.5 * (1.0 / R - r * r / (R * R)), c3 = 0.5 / (R * R);
            for (int64_t k = 0; k < q; k++) {
                grad[k] += -c->gm[k] * c1 + c->rp[k] * c2;
                for (int64_t l = 0; l < q; l++) H[k * q + l] += c->gm[k] * c->gm[l] / R + c->rp[k] * c->rp[l] * c3;
            }
        } else {
            double sdr = sqrt(R);
            double z = (b->obs_lim[j] - m) / sdr;
            double lphi = log_ndtr(z);
            o += -2.0 * lphi;
            double lam = exp(-0.5 * z * z - 0.5 * LOG_2PI - lphi);
            double wgt = lam * (lam + z);
            /* dz/deta = -(dm/deta)/sd - z (dR/deta) / (2 R) */
            for (int64_t k = 0; k < q; k++) c->fk[k] = -c->gm[k] / sdr - z / (2.0 * R) * c->rp[k];
            for (int64_t k = 0; k < q; k++) {
                grad[k] += -lam * c->fk[k];
                for (int64_t l = 0; l < q; l++) H[k * q + l] += wgt * c->fk[k] * c->fk[l];
            }
        }
    }
    for (int64_t k = 0; k < q; k++) {
        double we = 0.0;
        for (int64_t l = 0; l < q; l++) {
            we += b->W[k * q + l] * eta[l];
            H[k * q + l] += b->W[k * q + l];
        }
        o += eta[k] * we;
        grad[k] += we;
    }
    int ok = isfinite(o);
    for (int64_t k = 0; k < q * q; k++) ok &= isfinite(H[k]);
    for (int64_t k = 0; k < q; k++) ok &= isfinite(grad[k]);
    *obj = ok ? o : INFINITY;
    return 0;
}

/* Newton step -H^-1 g by Cholesky (steepest descent if H is not positive definite), capped at 2 in max norm. */
static void newton_step(int64_t q, const double *H, const double *g, double *L, double *step) {
    int ok = 1;
    for (int64_t i = 0; i < q && ok; i++)
        for (int64_t j = 0; j <= i; j++) {
            double acc = H[i * q + j];
            for (int64_t k = 0; k < j; k++) acc -= L[i * q + k] * L[j * q + k];
            if (i == j) {
                if (!(acc > 0.0)) {
                    ok = 0;
                    break;
                }
                L[i * q + i] = sqrt(acc);
            } else {
                L[i * q + j] = acc / L[j * q + j];
            }
        }
    if (ok) {
        for (int64_t i = 0; i < q; i++) {
            double acc = -g[i];
            for (int64_t k = 0; k < i; k++) acc -= L[i * q + k] * step[k];
            step[i] = acc / L[i * q + i];
        }
        for (int64_t i = q - 1; i >= 0; i--) {
            double acc = step[i];
            for (int64_t k = i + 1; k < q; k++) acc -= L[k * q + i] * step[k];
            step[i] = acc / L[i * q + i];
        }
    } else {
        for (int64_t i = 0; i < q; i++) step[i] = -g[i];
    }
    double big = 0.0;
    for (int64_t i = 0; i < q; i++) {
        if (!isfinite(step[i])) step[i] = 0.0;
        big = fmax(big, fabs(step[i]));
    }
    if (big > 2.0)
        for (int64_t i = 0; i < q; i++) step[i] *= 2.0 / big;
}

static double max_abs(int64_t q, const double *v, double scale) {
    double m = 0.0;
    for (int64_t i = 0; i < q; i++) m = fmax(m, fabs(scale * v[i]));
    return m;
}

static void solve_subject(const Job *b, int64_t s, Ctx *c, double *mem, double *counters) {
    const int64_t q = b->q;
    double *eta = b->eta + s * q;
    double *grad = mem, *H = grad + q, *g2 = H + q * q, *H2 = g2 + q, *L = H2 + q * q, *step = L + q * q;
    double *trial = step + q;
    double obj, o2;
    int st = evaluate(b, s, eta, c, &obj, grad, H, counters);
    if (!isfinite(obj)) {
        int warm = 0;
        for (int64_t k = 0; k < q; k++) warm |= eta[k] != 0.0;
        if (warm) {
            for (int64_t k = 0; k < q; k++) eta[k] = 0.0;
            st = evaluate(b, s, eta, c, &obj, grad, H, counters);
        }
    }
    int64_t it = 0;
    if (!isfinite(obj)) {
        b->status[s] = 100 + st;
        b->obj[s] = INFINITY;
    } else {
        newton_step(q, H, grad, L, step);
        double alpha = 1.0;
        for (it = 0; it < b->max_iter; it++) {
            for (int64_t k = 0; k < q; k++) trial[k] = eta[k] + alpha * step[k];
            evaluate(b, s, trial, c, &o2, g2, H2, counters);
            /* accept a step that does not increase O beyond what the solver's tolerance can resolve: a stricter
               test stops the iteration where O no longer resolves the decrease, short of the stationary point */
            if (o2 <= obj + 1e-12 * fabs(obj) + b->noise * (1.0 + fabs(obj))) {
                for (int64_t k = 0; k < q; k++) eta[k] = trial[k];
                for (int64_t k = 0; k < q; k++) grad[k] = g2[k];
                for (int64_t k = 0; k < q * q; k++) H[k] = H2[k];
                obj = o2;
                newton_step(q, H, grad, L, step);
                alpha = 1.0;
                if (max_abs(q, step, 1.0) < b->tol) break;
            } else {
                if (max_abs(q, step, alpha) < b->tol) break;
                alpha *= 0.5;
            }
        }
        b->status[s] = 0;
        b->obj[s] = obj;
    }
    b->n_iter[s] = it;
}

static void *job_worker(void *arg) {
    Job *b = (Job *)arg;
    const int64_t q = b->inner ? b->q : 0;
    Work *w = (Work *)malloc(sizeof(Work));
    double *JA = (double *)malloc(sizeof(double) * 2 * N * N);
    double *buf = (double *)malloc(sizeof(double) * (N_Q + 2 * N + (b->max_out + 1) * N_OUTPUTS + N_BASE_Q +
                                                     4 * q + 3 * q * q + 4 * q + 8));
    if (!w || !JA || !buf) {
        free(w); free(JA); free(buf);
        return NULL;
    }
    w->J = JA;
    w->A = JA + N * N;
    Ctx c;
    c.w = w;
    c.q = buf;
    c.y = c.q + N_Q;
    c.y0 = c.y + N;
    c.oo = c.y0 + N;
    c.obuf = c.oo + b->max_out * N_OUTPUTS;
    c.row = c.obuf + N_OUTPUTS;
    c.dp = c.row + N_BASE_Q;
    c.fk = c.dp + q;
    c.gm = c.fk + q;
    c.rp = c.gm + q;
    double *mem = c.rp + q;
    for (;;) {
        long s = atomic_fetch_add(&b->next, 1);
        if (s >= b->n_subj) break;
        double counters[4];
        if (b->inner) {
            solve_subject(b, s, &c, mem, counters);
        } else {
            for (int i = 0; i < N_BASE_Q; i++) c.row[i] = b->base[s * N_BASE_Q + i];
            b->status[s] = predict_subject(b, s, &c, b->outputs + s * b->max_out * N_OUTPUTS, counters);
        }
        for (int i = 0; i < 4; i++) b->counters[4 * s + i] = counters[i];
    }
    free(w); free(JA); free(buf);
    return NULL;
}

static int run_job(Job *b, int64_t n_threads) {
    atomic_init(&b->next, 0);
    if (n_threads > b->n_subj) n_threads = b->n_subj;
    if (n_threads < 1) n_threads = 1;
    if (n_threads > 256) n_threads = 256;
    pthread_t th[256];
    int started = 0;
    for (int i = 1; i < n_threads; i++) {
        if (pthread_create(&th[started], NULL, job_worker, b) != 0) break; /* fewer threads: still correct */
        started++;
    }
    job_worker(b);
    for (int i = 0; i < started; i++) pthread_join(th[i], NULL);
    return atomic_load(&b->next) < b->n_subj ? -1 : 0;
}

static void set_common(Job *b, int64_t n_subj, int64_t n_design, int64_t max_ev, const double *ev_t,
                       const int64_t *ev_kind, const int64_t *ev_idx, const double *ev_val, const int64_t *n_ev,
                       int64_t max_out, const double *TT, const int64_t *PRE, const int64_t *n_out,
                       const double *t0, int64_t *methods, double rtol, double atol, double hmax, int64_t max_steps,
                       double *counters, int64_t *status) {
    memset(b, 0, sizeof(Job));
    b->n_subj = n_subj; b->n_design = n_design; b->max_ev = max_ev; b->max_out = max_out;
    b->ev_t = ev_t; b->ev_kind = ev_kind; b->ev_idx = ev_idx; b->ev_val = ev_val; b->n_ev = n_ev;
    b->TT = TT; b->PRE = PRE; b->n_out = n_out; b->t0 = t0; b->methods = methods;
    b->rtol = rtol; b->atol = atol; b->hmax = hmax; b->max_steps = max_steps;
    b->counters = counters; b->status = status;
}

/* Recorded outputs of every row (n_subj = copies x n_design; row s is design subject s % n_design). */
int pkpd_predict(int64_t n_subj, int64_t n_design, const double *base, int64_t max_ev, const double *ev_t,
                 const int64_t *ev_kind, const int64_t *ev_idx, const double *ev_val, const int64_t *n_ev,
                 int64_t max_out, const double *TT, const int64_t *PRE, const int64_t *n_out, const double *t0,
                 int64_t *methods, double rtol, double atol, double hmax, int64_t max_steps, double *outputs,
                 int64_t *status, double *counters, int64_t n_threads) {
    Job b;
    set_common(&b, n_subj, n_design, max_ev, ev_t, ev_kind, ev_idx, ev_val, n_ev, max_out, TT, PRE, n_out, t0,
               methods, rtol, atol, hmax, max_steps, counters, status);
    b.base = base;
    b.outputs = outputs;
    return run_job(&b, n_threads);
}

int pkpd_inner(int64_t n_subj, int64_t q, int64_t n_fit, const double *theta, const int64_t *eta_param,
               const int64_t *eta_kind, const double *W, double *eta, int64_t max_ev, const double *ev_t,
               const int64_t *ev_kind, const int64_t *ev_idx, const double *ev_val, const int64_t *n_ev,
               int64_t max_out, const double *TT, const int64_t *PRE, const int64_t *n_out, const double *t0,
               const int64_t *obs_start, const int64_t *obs_ti, const int64_t *obs_out, const int64_t *obs_cens,
               const double *obs_u, const double *obs_lim, const double *obs_R0, const int64_t *err_kind,
               const double *err_a, const double *err_b, int64_t interaction, double rtol, double atol, double hmax,
               int64_t max_steps, int64_t *methods, int64_t max_iter, double tol, double *obj, int64_t *status,
               int64_t *n_iter, double *counters, int64_t n_threads) {
    Job b;
    set_common(&b, n_subj, n_subj, max_ev, ev_t, ev_kind, ev_idx, ev_val, n_ev, max_out, TT, PRE, n_out, t0,
               methods, rtol, atol, hmax, max_steps, counters, status);
    b.inner = 1;
    b.q = q; b.n_fit = n_fit; b.interaction = interaction; b.max_iter = max_iter;
    b.theta = theta; b.eta_param = eta_param; b.eta_kind = eta_kind; b.W = W; b.eta = eta;
    b.obs_start = obs_start; b.obs_ti = obs_ti; b.obs_out = obs_out; b.obs_cens = obs_cens;
    b.obs_u = obs_u; b.obs_lim = obs_lim; b.obs_R0 = obs_R0;
    b.err_kind = err_kind; b.err_a = err_a; b.err_b = err_b;
    b.tol = tol; b.obj = obj; b.n_iter = n_iter;
    b.noise = 10.0 * rtol;
    return run_job(&b, n_threads);
}
"""
