"""The prior part of :func:`pkpd.sample`'s log posterior in numpy, with its gradient in closed form, and the driver of
pkpd's own NUTS on the whole log posterior (private; only :mod:`pkpd.bayes` imports this module).

The prior part: the priors of the typical values on their natural scale, the transforms to the sampler's
unconstrained scale and their log-Jacobians, the error parameters (log scale), and for a population model the
Cholesky factor of :math:`\\Omega` (its inverse-Wishart or, diagonal, inverse-gamma prior and the Jacobian of
:math:`L \\mapsto LL^T`) and the non-centred random effects (:math:`\\eta_i = L z_i`). :class:`PriorPart` evaluates it
for a batch of chains and hands over the individual parameters psi and error parameters e the likelihood needs;
:meth:`PriorPart.backward` turns the likelihood's gradients by psi and e into the gradient by the sampler's
coordinates (the chain rule written out). It is the same density as the JAX one of :mod:`pkpd._nuts` (which
numpyro's sampler differentiates; ``tests/unit/test_bayes.py`` checks value and gradient against it), without JAX's
per-call dispatch in pkpd's sampler's hot path, and safe to use in forked worker processes.

For a pooled model the forward pass runs as one compiled loop (:func:`_individual_forward`), and the uncensored
likelihood of :class:`pkpd.bayes._Likelihood` as another (:func:`_normal_likelihood`): the sampler calls them once
per leapfrog step with a few chains, where numpy's per-operation cost (~1 us for each of ~50 operations) would
exceed the arithmetic; the numpy formulas stay for population models and censored data, and tests hold the two
equal (1e-12).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

_LOG_2PI = math.log(2.0 * math.pi)
_SMALL_BATCH = 16       # rows (chains x subjects) per batch solve below which the engine uses one thread


def unconstrain(v, lo: float, hi: float) -> float:
    """The sampler's unconstrained value of a natural value v with bounds (lo, hi) (logit, log or identity)."""
    if math.isfinite(lo) and math.isfinite(hi):
        p = (v - lo) / (hi - lo)
        return math.log(p / (1 - p))
    if math.isfinite(lo):
        return math.log(v - lo)
    if math.isfinite(hi):
        return math.log(hi - v)
    return float(v)


class _Bounds:
    """Natural values of a block of unconstrained coordinates (B, k), the log-Jacobian and derivatives."""

    def __init__(self, bounds):
        lo = np.array([b[0] for b in bounds], dtype=float)
        hi = np.array([b[1] for b in bounds], dtype=float)
        flo, fhi = np.isfinite(lo), np.isfinite(hi)
        self.both = np.flatnonzero(flo & fhi)
        self.lower = np.flatnonzero(flo & ~fhi)
        self.upper = np.flatnonzero(~flo & fhi)
        self.free = np.flatnonzero(~flo & ~fhi)
        self.lo, self.hi = lo, hi
        self.width = (hi - lo)[self.both]
        self.log_width = np.log(self.width)
        self.sum_log_width = float(np.sum(self.log_width))

    def __call__(self, u):
        """v, dv/du, the log-Jacobian summed over the block (B,), and its derivative by u."""
        if self.both.size == u.shape[1]:        # every parameter bounded on both sides (the usual case): no indexing
            s = 1.0 / (1.0 + np.exp(-u))
            t = self.width * s
            return self.lo + t, t * (1.0 - s), np.add.reduce(np.log(s) + np.log1p(-s), axis=1) + self.sum_log_width, \
                1.0 - 2.0 * s
        v = np.empty_like(u)
        dv = np.empty_like(u)
        dlj = np.zeros_like(u)
        lj = np.zeros(u.shape[0])
        if self.both.size:
            b = self.both
            s = 1.0 / (1.0 + np.exp(-u[:, b]))
            v[:, b] = self.lo[b] + self.width * s
            dv[:, b] = self.width * s * (1.0 - s)
            lj = lj + np.sum(self.log_width + np.log(s) + np.log1p(-s), axis=1)
            dlj[:, b] = 1.0 - 2.0 * s
        if self.lower.size:
            b = self.lower
            w = np.exp(u[:, b])
            v[:, b] = self.lo[b] + w
            dv[:, b] = w
            lj = lj + np.sum(u[:, b], axis=1)
            dlj[:, b] = 1.0
        if self.upper.size:
            b = self.upper
            w = np.exp(u[:, b])
            v[:, b] = self.hi[b] - w
            dv[:, b] = -w
            lj = lj + np.sum(u[:, b], axis=1)
            dlj[:, b] = 1.0
        if self.free.size:
            v[:, self.free] = u[:, self.free]
            dv[:, self.free] = 1.0
        return v, dv, lj, dlj


class _Priors:
    """Log densities of a block of priors at natural values v (B, k), summed (B,), and their derivatives by v."""

    def __init__(self, priors):
        from .priors import HalfNormalPrior, LogitNormalPrior, LogNormalPrior, NormalPrior, UniformPrior

        groups = {"normal": [], "lognormal": [], "logitnormal": [], "halfnormal": []}
        centre, spread = np.zeros(len(priors)), np.ones(len(priors))
        const = 0.0
        for k, p in enumerate(priors):
            if isinstance(p, NormalPrior):
                groups["normal"].append(k)
                centre[k], spread[k] = p.mean, p.sd
                const += -math.log(p.sd) - 0.5 * _LOG_2PI
            elif isinstance(p, LogNormalPrior):
                groups["lognormal"].append(k)
                centre[k], spread[k] = math.log(p.median), p.sigma
                const += -math.log(p.sigma) - 0.5 * _LOG_2PI
            elif isinstance(p, LogitNormalPrior):
                groups["logitnormal"].append(k)
                centre[k], spread[k] = math.log(p.median / (1 - p.median)), p.sigma
                const += -math.log(p.sigma) - 0.5 * _LOG_2PI
            elif isinstance(p, HalfNormalPrior):
                groups["halfnormal"].append(k)
                centre[k], spread[k] = 0.0, p.scale_parameter
                const += -math.log(p.scale_parameter) - 0.5 * _LOG_2PI + math.log(2.0)
            elif isinstance(p, UniformPrior):
                const += -math.log(p.upper - p.lower)
            else:
                raise TypeError(type(p).__name__)
        self.groups = [(name, np.array(idx, dtype=np.int64), centre[idx], spread[idx])
                       for name, idx in groups.items() if idx]
        self.const = const
        self.simple = None
        if not groups["logitnormal"]:
            is_log = np.zeros(len(priors))
            is_log[groups["lognormal"]] = 1.0
            informative = np.zeros(len(priors))
            for name in ("normal", "lognormal", "halfnormal"):
                informative[groups[name]] = 1.0
            # a uniform prior's column: z held at 0 (no density term, no gradient)
            self.simple = (is_log, centre, spread, None if informative.all() else informative)

    def __call__(self, v):
        if self.simple is not None:
            # normal, half-normal and log-normal priors only: one pass over the block without indexing
            is_log, centre, spread, none = self.simple
            lv = np.log(np.where(is_log, v, 1.0))
            z = (np.where(is_log, lv, v) - centre) / spread
            if none is not None:
                z = z * none
            lp = self.const - np.add.reduce(0.5 * z * z + lv, axis=1)
            return lp, (-z / spread - is_log) / np.where(is_log, v, 1.0)
        lp = np.full(v.shape[0], self.const)
        d = np.zeros_like(v)
        for name, idx, c, s in self.groups:
            x = v[:, idx]
            if name == "normal" or name == "halfnormal":
                z = (x - c) / s
                lp = lp - 0.5 * np.sum(z * z, axis=1)
                d[:, idx] = -z / s
            elif name == "lognormal":
                lx = np.log(x)
                z = (lx - c) / s
                lp = lp - np.sum(0.5 * z * z + lx, axis=1)
                d[:, idx] = (-z / s - 1.0) / x
            else:
                w = x * (1 - x)
                z = (np.log(x / (1 - x)) - c) / s
                lp = lp - np.sum(0.5 * z * z + np.log(w), axis=1)
                d[:, idx] = (-z / s - (1.0 - 2.0 * x)) / w
        return lp, d


def _prior_arrays(priors):
    """Per prior: the kernels' family code, centre and spread, and the sum of the priors' constants (from the
    grouping of :class:`_Priors`; a uniform prior keeps the code of no density term)."""
    grouped = _Priors(priors)
    codes = {"normal": _NORMAL, "halfnormal": _NORMAL, "lognormal": _LOGNORMAL, "logitnormal": _LOGITNORMAL}
    family, centre, spread = np.full(len(priors), _UNIFORM, dtype=np.int64), np.zeros(len(priors)), np.ones(len(priors))
    for name, idx, c, sp in grouped.groups:
        family[idx], centre[idx], spread[idx] = codes[name], c, sp
    return family, centre, spread, grouped.const


class PriorPart:
    """The prior part of the log posterior of a :class:`pkpd.bayes._Structure` at the sampler's standardised
    coordinates z (B, d) (u = centre + scale z), vectorised over chains.

    ``forward(z)`` -> (log density without the likelihood (B,), psi (B, n, p), e (B, n_e), tape);
    ``backward(tape, g_psi, g_e)`` -> the gradient by z of that log density plus <g_psi, psi(z)> + <g_e, e(z)>.
    """

    use_kernel = True       # False: the numpy formulas (a test compares the two)

    def __init__(self, structure, population: bool):
        self.population = population
        self.n = structure.n
        self.centre = np.asarray(structure.centre, dtype=float)
        self.scale = np.asarray(structure.scale, dtype=float)
        self.n_e = len(structure.error_priors)
        self.error_priors = _Priors(structure.error_priors)
        if not population:
            self.k = len(structure.struct)
            self.bounds = _Bounds([(lo, hi) for lo, hi, _, _ in structure.struct])
            self.priors = _Priors([pr for _, _, pr, _ in structure.struct])
            self.log_cols = np.flatnonzero([bool(log) for *_, log in structure.struct])
            lo = np.array([lo for lo, _, _, _ in structure.struct], dtype=float)
            hi = np.array([hi for _, hi, _, _ in structure.struct], dtype=float)
            kinds = np.where(np.isfinite(lo) & np.isfinite(hi), _BOTH,
                             np.where(np.isfinite(lo), _LOWER, np.where(np.isfinite(hi), _UPPER, _FREE)))
            family, pc, ps, const = _prior_arrays([pr for _, _, pr, _ in structure.struct]
                                                  + list(structure.error_priors))
            log_col = np.zeros(self.k, dtype=np.bool_)
            log_col[self.log_cols] = True
            self.kernel = (self.k, kinds.astype(np.int64), lo, hi, family, pc, ps, float(const), log_col)
            return
        self.k = len(structure.thetas)
        self.bounds = _Bounds([(lo, hi) for _, lo, hi, _ in structure.thetas])
        self.priors = _Priors([pr for *_, pr in structure.thetas])
        self.q, self.full = structure.q, bool(structure.full_omega)
        self.nu = float(structure.iw_df)
        self.psi_iw = self.nu * np.asarray(structure.iw_omega, dtype=float).reshape(self.q, self.q)
        self.n_omega = self.q * (self.q + 1) // 2 if self.full else self.q
        self.tril = np.tril_indices(self.q)     # row-major lower triangle: the order of the coordinates
        theta_index = {name: j for j, (name, *_) in enumerate(structure.thetas)}
        fixed = dict(structure.fixed_theta)
        # per column of psi: its random effect (or -1), distribution, log flag, and typical value's source
        self.columns = [(j if j < self.q else -1, dist, bool(log), theta_index.get(name, -1),
                         float(fixed.get(name, math.nan)))
                        for j, (name, dist, log) in enumerate(structure.individual)]

    # ----------------------------------------------------------------------------------------------------------
    def forward(self, z):
        if not self.population and self.use_kernel:
            B = z.shape[0]
            k, n_e = self.k, self.n_e
            lp, psi_row, dpsi, g_theta = np.empty(B), np.empty((B, k)), np.empty((B, k)), np.empty((B, k))
            e, g_lp_e = np.empty((B, n_e)), np.empty((B, n_e))
            _individual_forward(np.ascontiguousarray(z, dtype=float), self.centre, self.scale, *self.kernel,
                                lp, psi_row, dpsi, g_theta, e, g_lp_e)
            psi = psi_row[:, None, :] if self.n == 1 else np.broadcast_to(psi_row[:, None, :], (B, self.n, k))
            return lp, psi, e, (g_theta, dpsi, e, g_lp_e)
        u = self.centre + self.scale * z
        B = u.shape[0]
        k = self.k
        v, dv, lj, dlj = self.bounds(u[:, :k])
        lpp, dpp = self.priors(v)
        lp = lj + lpp
        g_theta = dlj + dpp * dv        # d(log density)/du of the typical values' block so far
        if not self.population:
            if self.log_cols.size == k:
                psi_row, dpsi = np.log(v), dv / v
            else:
                psi_row = v.copy()
                dpsi = dv.copy()
                if self.log_cols.size:
                    c = self.log_cols
                    psi_row[:, c] = np.log(v[:, c])
                    dpsi[:, c] = dv[:, c] / v[:, c]
            ue = u[:, k:k + self.n_e]
            e = np.exp(ue)
            lpe, dpe = self.error_priors(e)
            lp = lp + np.add.reduce(ue, axis=1) + lpe
            psi = psi_row[:, None, :] if self.n == 1 else np.broadcast_to(psi_row[:, None, :], (B, self.n, k))
            return lp, psi, e, (g_theta, dpsi, e, 1.0 + dpe * e)
        q, n = self.q, self.n
        off = k
        w = u[:, off:off + self.n_omega]
        nu1 = self.nu + q + 1
        if self.full:
            L = np.zeros((B, q, q))
            L[:, self.tril[0], self.tril[1]] = w
            diag = np.arange(q)
            d = w[:, [a * (a + 1) // 2 + a for a in range(q)]]
            L[:, diag, diag] = np.exp(d)
            coef = (q + 1.0 - np.arange(q)) - nu1
            lp = lp + q * math.log(2.0) + d @ coef
            Linv = np.linalg.inv(L)
            omega_inv = np.swapaxes(Linv, 1, 2) @ Linv
            lp = lp - 0.5 * np.einsum("ab,zba->z", self.psi_iw, omega_inv)
            gL = omega_inv @ self.psi_iw @ omega_inv @ L           # d(-tr(Psi Omega^-1)/2)/dL
            g_omega = gL[:, self.tril[0], self.tril[1]]
            g_omega[:, [a * (a + 1) // 2 + a for a in range(q)]] = (
                gL[:, diag, diag] * np.exp(d) + coef)
        else:
            L = np.exp(w)                                             # the diagonal of L
            inv_w = np.exp(-2.0 * w)
            lp = lp + q * math.log(2.0) + (2.0 - nu1) * np.sum(w, axis=1) - 0.5 * inv_w @ np.diag(self.psi_iw)
            g_omega = (2.0 - nu1) + np.diag(self.psi_iw) * inv_w
        off += self.n_omega
        ue = u[:, off:off + self.n_e]
        e = np.exp(ue)
        lpe, dpe = self.error_priors(e)
        lp = lp + np.sum(ue, axis=1) + lpe
        off += self.n_e
        zz = u[:, off:off + n * q].reshape(B, n, q)
        lp = lp - 0.5 * np.sum(zz * zz, axis=(1, 2))
        eta = np.einsum("bnr,bqr->bnq", zz, L) if self.full else zz * L[:, None, :]
        p = len(self.columns)
        psi = np.empty((B, n, p))
        dpsi_de = np.zeros((B, n, q))
        dpsi_dt = np.zeros((B, n, p))
        for j, (r, dist, log, ti, fixed) in enumerate(self.columns):
            t = v[:, ti][:, None] if ti >= 0 else np.full((B, 1), fixed)
            if r < 0:
                psi[:, :, j] = np.log(t) if log else t
                dpsi_dt[:, :, j] = 1.0 / t if log else 1.0
                continue
            h = eta[:, :, r]
            if dist == "lognormal":
                x = np.exp(h)
                val = t * x
                dv_dh, dv_dt = val, x
            elif dist == "logitnormal":
                val = 1.0 / (1.0 + np.exp(-(np.log(t / (1 - t)) + h)))
                dv_dh = val * (1.0 - val)
                dv_dt = dv_dh / (t * (1.0 - t))
            else:
                val = t + h
                dv_dh, dv_dt = 1.0, 1.0
            if log:
                psi[:, :, j] = np.log(val)
                dpsi_de[:, :, r] = dv_dh / val
                dpsi_dt[:, :, j] = dv_dt / val
            else:
                psi[:, :, j] = val
                dpsi_de[:, :, r] = dv_dh
                dpsi_dt[:, :, j] = dv_dt
        return lp, psi, e, (g_theta, dv, g_omega, L, zz, dpsi_de, dpsi_dt, e, 1.0 + dpe * e)

    def backward(self, tape, g_psi, g_e):
        k = self.k
        if not self.population:
            g_theta, dpsi, e, g_lp_e = tape
            g = np.empty((g_theta.shape[0], k + self.n_e))
            g[:, :k] = g_theta + (g_psi[:, 0, :] if self.n == 1 else np.add.reduce(g_psi, axis=1)) * dpsi
            g[:, k:] = g_lp_e + g_e * e
            return g * self.scale
        g_theta, dv, g_omega, L, zz, dpsi_de, dpsi_dt, e, g_lp_e = tape
        q = self.q
        B = g_theta.shape[0]
        g_typ = np.zeros((B, k))
        for j, (_, _, _, ti, _) in enumerate(self.columns):
            if ti >= 0:
                g_typ[:, ti] += np.sum(g_psi[:, :, j] * dpsi_dt[:, :, j], axis=1)
        g_eta = np.zeros_like(dpsi_de)
        for j, (r, *_) in enumerate(self.columns):
            if r >= 0:
                g_eta[:, :, r] = g_psi[:, :, j] * dpsi_de[:, :, r]
        if self.full:
            g_z = np.einsum("bnq,bqr->bnr", g_eta, L)
            gL = np.einsum("bnq,bnr->bqr", g_eta, zz)
            g_w = gL[:, self.tril[0], self.tril[1]]
            diag_pos = [a * (a + 1) // 2 + a for a in range(q)]
            g_w[:, diag_pos] *= L[:, np.arange(q), np.arange(q)]
        else:
            g_z = g_eta * L[:, None, :]
            g_w = np.sum(g_eta * zz, axis=1) * L
        g = np.concatenate([g_theta + g_typ * dv, g_omega + g_w, g_lp_e + g_e * e,
                            (g_z - zz).reshape(B, -1)], axis=1)
        return g * self.scale


def run_pkpd_nuts(prior, likelihood, init: np.ndarray, seed: int, *, n_warmup: int, n_draws: int,
                  target_accept: float, max_tree_depth: int, threads: int = 1, workers: int = 1):
    """pkpd's NUTS (:func:`pkpd.hmc.nuts`) on the log posterior: the prior part from ``prior``
    (:class:`PriorPart`), the likelihood and its gradient from the host; draws (n_chains, n_draws, d),
    divergences and leapfrog steps per iteration (n_chains, n_draws), and the :class:`pkpd.hmc.NutsRun`."""
    from .hmc import nuts

    def log_density(z):
        # far out on a diverging trajectory the transforms overflow (a bound reached: log(0)); the move is rejected
        with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
            lp, psi, e, tape = prior.forward(z)
            ll, g_psi, g_e = likelihood(psi, e)
            total = lp + ll
            grad = prior.backward(tape, g_psi, g_e)
        ok = np.isfinite(total + np.add.reduce(grad, axis=1))
        if not ok.all():
            total = np.where(ok, total, -np.inf)
            grad = np.where(ok[:, None], grad, 0.0)
        return total, grad

    from . import _native

    saved = list(_native._THREADS)
    # the cores go to the chain groups (each group's batch solve on one thread); and a batch of a few subjects is
    # solved on one thread: starting threads for ~0.5 ms of work cost more than they save (one MSC subject, 4
    # chains: 25 % more CPU and twice the wall time with 2 engine threads on a busy 2-core machine)
    subjects = getattr(getattr(likelihood, "host", None), "n", 1)
    if threads > 1 or workers > 1 or init.shape[0] * subjects < _SMALL_BATCH:
        _native.set_threads(1)
    try:
        run = nuts(log_density, init, n_warmup=n_warmup, n_draws=n_draws, seed=seed, target_accept=target_accept,
                   max_tree_depth=max_tree_depth, threads=threads, workers=workers)
    except FloatingPointError as err:
        from .errors import FitError

        raise FitError(f"{err}: the log posterior (priors and likelihood) is not finite at the starting values; "
                       "check the parameters' values against their bounds and the data") from None
    finally:
        _native._THREADS[:] = saved
    return run.draws, run.diverging, run.num_steps, run


# ============================================================================================ compiled kernels
# The hot path of pkpd's sampler calls the prior part and the likelihood once per leapfrog step with a few chains:
# in numpy that is ~50 small-array operations each (~1 us apiece); these loops do the same arithmetic in one call.

_BOTH, _LOWER, _UPPER, _FREE = 0, 1, 2, 3
_NORMAL, _LOGNORMAL, _LOGITNORMAL, _UNIFORM = 0, 1, 2, 3


@njit(cache=True, error_model="numpy")
def _prior_term(family, c, s, v):
    """log density (without its constant) and its derivative by v of one prior at v."""
    if family == _NORMAL:
        z = (v - c) / s
        return -0.5 * z * z, -z / s
    if family == _LOGNORMAL:
        lx = math.log(v)
        z = (lx - c) / s
        return -(0.5 * z * z + lx), (-z / s - 1.0) / v
    if family == _LOGITNORMAL:
        w = v * (1.0 - v)
        z = (math.log(v / (1.0 - v)) - c) / s
        return -(0.5 * z * z + math.log(w)), (-z / s - (1.0 - 2.0 * v)) / w
    return 0.0, 0.0


@njit(cache=True, error_model="numpy")
def _individual_forward(z, centre, scale, k, kinds, lo, hi, family, pc, ps, const, log_col,
                        lp, psi, dpsi, g_theta, e, g_e):
    """The pooled model's prior part at z (B, d): lp (B,), psi (B, k), dpsi/du (B, k), d lp/du of the typical
    values (B, k), e (B, n_e), d lp/du of the error block (B, n_e), written into the given arrays."""
    B, d = z.shape
    for b in range(B):
        total = const
        for j in range(k):
            u = centre[j] + scale[j] * z[b, j]
            kind = kinds[j]
            if kind == _BOTH:
                sg = 1.0 / (1.0 + math.exp(-u))
                width = hi[j] - lo[j]
                t = width * sg
                v = lo[j] + t
                dv = t * (1.0 - sg)
                total += math.log(width) + math.log(sg) + math.log1p(-sg)
                dlj = 1.0 - 2.0 * sg
            elif kind == _LOWER:
                w = math.exp(u)
                v, dv, dlj = lo[j] + w, w, 1.0
                total += u
            elif kind == _UPPER:
                w = math.exp(u)
                v, dv, dlj = hi[j] - w, -w, 1.0
                total += u
            else:
                v, dv, dlj = u, 1.0, 0.0
            term, dterm = _prior_term(family[j], pc[j], ps[j], v)
            total += term
            g_theta[b, j] = dlj + dterm * dv
            if log_col[j]:
                psi[b, j] = math.log(v)
                dpsi[b, j] = dv / v
            else:
                psi[b, j] = v
                dpsi[b, j] = dv
        for j in range(k, d):
            u = centre[j] + scale[j] * z[b, j]
            v = math.exp(u)
            term, dterm = _prior_term(family[j], pc[j], ps[j], v)
            total += u + term
            e[b, j - k] = v
            g_e[b, j - k] = 1.0 + dterm * v
        lp[b] = total


@njit(cache=True, error_model="numpy")
def _normal_likelihood(f, df, e, constants, a_src, b_src, root, logs, u, const, subject, ll, g_psi, g_e):
    """The uncensored residual likelihood of every chain (see pkpd.bayes._Likelihood) and its gradients by psi and
    e, from the predictions f (B, n_obs) and their derivatives df (B, n_obs, p); non-finite: -inf, zero gradient."""
    B, n_obs = f.shape
    p = df.shape[2]
    n_e = e.shape[1]
    for b in range(B):
        total = const
        for o in range(n_obs):
            ia, ib = a_src[o], b_src[o]
            a = e[b, ia] if ia < n_e else constants[ia - n_e]
            c = e[b, ib] if ib < n_e else constants[ib - n_e]
            fo = f[b, o]
            if root[o]:
                s = math.sqrt(a * a + (c * fo) ** 2)
                ds_df, ds_da, ds_db = c * c * fo / s, a / s, c * fo * fo / s
            else:
                s = a + c * fo
                ds_df, ds_da, ds_db = c, 1.0, fo
            if logs[o]:
                m, dm_df = math.log(fo), 1.0 / fo
            else:
                m, dm_df = fo, 1.0
            zz = (u[o] - m) / s
            total += -0.5 * zz * zz - math.log(s)
            dll_ds = (zz * zz - 1.0) / s
            g_f = zz / s * dm_df + dll_ds * ds_df
            i = subject[o]
            for q in range(p):
                g_psi[b, i, q] += g_f * df[b, o, q]
            if ia < n_e:
                g_e[b, ia] += dll_ds * ds_da
            if ib < n_e:
                g_e[b, ib] += dll_ds * ds_db
        check = total
        for i in range(g_psi.shape[1]):
            for q in range(p):
                check += g_psi[b, i, q]
        for q in range(n_e):
            check += g_e[b, q]
        if math.isfinite(check):
            ll[b] = total
        else:
            ll[b] = -math.inf
            g_psi[b, :, :] = 0.0
            g_e[b, :] = 0.0
