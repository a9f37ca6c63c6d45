"""NUTS through numpyro, with the likelihood's predictions and their derivatives from pkpd's compiled engine
(private; the optional extra ``pkpd[bayes]``; only :func:`pkpd.sample` imports this module).

The log posterior is written in JAX (priors, transforms and their Jacobians, random effects, residual error and M3
censoring), so numpyro differentiates all of it, except the ODE predictions: those come from one
``jax.pure_callback`` per gradient evaluation that solves, for every chain at once, every subject at the
chains' individual parameters and at the central-difference perturbations of them (one batch call of the native
engine), wrapped in a ``jax.custom_vjp`` whose backward pass contracts the cotangent with these derivatives.
HMC stays exact with such derivatives (the Metropolis correction uses the exact log density; the leapfrog map
stays reversible and volume-preserving for any position-dependent force), they only cost a little acceptance.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import log_ndtr

jax.config.update("jax_enable_x64", True)

_LOG_2PI = math.log(2.0 * math.pi)


def _prior_logpdf(prior, v):
    """Log density of a pkpd prior at v (traced)."""
    from .priors import HalfNormalPrior, LogitNormalPrior, LogNormalPrior, NormalPrior, UniformPrior

    if isinstance(prior, NormalPrior):
        z = (v - prior.mean) / prior.sd
        return -0.5 * z * z - math.log(prior.sd) - 0.5 * _LOG_2PI
    if isinstance(prior, LogNormalPrior):
        z = (jnp.log(v) - math.log(prior.median)) / prior.sigma
        return -0.5 * z * z - math.log(prior.sigma) - 0.5 * _LOG_2PI - jnp.log(v)
    if isinstance(prior, LogitNormalPrior):
        z = (jnp.log(v / (1 - v)) - math.log(prior.median / (1 - prior.median))) / prior.sigma
        return -0.5 * z * z - math.log(prior.sigma) - 0.5 * _LOG_2PI - jnp.log(v * (1 - v))
    if isinstance(prior, HalfNormalPrior):
        z = v / prior.scale_parameter
        return -0.5 * z * z - math.log(prior.scale_parameter) - 0.5 * _LOG_2PI + math.log(2.0)
    if isinstance(prior, UniformPrior):
        return -math.log(prior.upper - prior.lower) + 0.0 * v
    raise TypeError(type(prior).__name__)


def _constrain(u, lo: float, hi: float):
    """Natural value and log |dv/du| from an unconstrained u, for bounds (lo, hi)."""
    if math.isfinite(lo) and math.isfinite(hi):
        s = jax.nn.sigmoid(u)
        return lo + (hi - lo) * s, math.log(hi - lo) + jnp.log(s) + jnp.log1p(-s)
    if math.isfinite(lo):
        return lo + jnp.exp(u), u
    if math.isfinite(hi):
        return hi - jnp.exp(u), u
    return u, 0.0 * u


def unconstrain(v, lo: float, hi: float) -> float:
    """Inverse of :func:`_constrain` (numpy, for starting values)."""
    if math.isfinite(lo) and math.isfinite(hi):
        p = (v - lo) / (hi - lo)
        return math.log(p / (1 - p))
    if math.isfinite(lo):
        return math.log(v - lo)
    if math.isfinite(hi):
        return math.log(hi - v)
    return float(v)


def _predictions(host):
    """The ODE predictions as a differentiable JAX function of the individual parameters psi (n, p)."""
    n, J, p = host.n, host.J, host.p

    def both(psi):
        F, dF = host(np.asarray(psi))
        return F, dF

    def call(psi):
        shape = psi.shape[:-2]
        out = (jax.ShapeDtypeStruct(shape + (n, J), jnp.float64), jax.ShapeDtypeStruct(shape + (n, J, p), jnp.float64))
        return jax.pure_callback(both, out, psi, vmap_method="expand_dims")

    @jax.custom_vjp
    def predict(psi):
        return call(psi)[0]

    def fwd(psi):
        F, dF = call(psi)
        return F, dF

    def bwd(dF, g):
        return (jnp.einsum("...nj,...njp->...np", g, dF),)

    predict.defvjp(fwd, bwd)
    return predict


def _loglik(spec, F, err_values):
    """log p(y | F) summed over observations (traced): error models per output, M3 for censored values."""
    total = 0.0
    for o, (kind, convention, log_scale, params) in enumerate(spec.errors):
        sel = spec.sel[o]
        if not sel.any():
            continue
        f = F[sel]
        vals = {name: err_values[o][name] for name in params}
        if kind == "Additive":
            s = vals["sd"] + 0.0 * f
        elif kind == "Proportional":
            s = vals["cv"] * f
        elif kind == "LogNormal":
            s = vals["sigma"] + 0.0 * f
        elif convention == "sd":
            s = vals["sd"] + vals["cv"] * f
        else:
            s = jnp.sqrt(vals["sd"] ** 2 + (vals["cv"] * f) ** 2)
        m = jnp.log(f) if log_scale else f
        u = spec.u[sel]
        cens = spec.cens[sel]
        z = (u - m) / s
        quant = -0.5 * z * z - jnp.log(s) - 0.5 * _LOG_2PI + spec.jac[sel]
        censored = log_ndtr(z)    # u holds the (transformed) limit for a censored value
        total = total + jnp.sum(jnp.where(cens, censored, quant))
    return total


def run_nuts(log_density, init: np.ndarray, *, n_warmup: int, n_draws: int, seed: int, target_accept: float,
             max_tree_depth: int):
    """NUTS (numpyro) on ``log_density`` (a JAX function of the unconstrained vector), chains vectorised.

    Returns draws (n_chains, n_draws, d), divergences (n_chains, n_draws) bool, step sizes and tree depths.
    """
    from numpyro.infer import MCMC, NUTS

    kernel = NUTS(potential_fn=lambda u: -log_density(u), target_accept_prob=target_accept,
                  max_tree_depth=max_tree_depth, dense_mass=False)
    mcmc = MCMC(kernel, num_warmup=n_warmup, num_samples=n_draws, num_chains=init.shape[0],
                chain_method="vectorized", progress_bar=False)
    mcmc.run(jax.random.PRNGKey(seed), init_params=jnp.asarray(init), extra_fields=("diverging", "num_steps"))
    draws = np.asarray(mcmc.get_samples(group_by_chain=True))
    extra = mcmc.get_extra_fields(group_by_chain=True)
    return draws, np.asarray(extra["diverging"]), np.asarray(extra["num_steps"])


def individual_log_density(spec):
    """The log posterior of a pooled model (one parameter set for every subject) as a JAX function."""
    predict = _predictions(spec.host)
    n = spec.host.n

    def log_density(u):
        lp = 0.0
        psi = []
        for k, (lo, hi, prior, log) in enumerate(spec.struct):
            v, lj = _constrain(u[k], lo, hi)
            lp = lp + lj + _prior_logpdf(prior, v)
            psi.append(jnp.log(v) if log else v)
        psi = jnp.broadcast_to(jnp.stack(psi), (n, len(psi)))
        errs, lp = _error_values(spec, u, len(spec.struct), lp)
        return lp + _loglik(spec, predict(psi), errs)

    return log_density


def _error_values(spec, u, off, lp):
    errs = []
    k = off
    for o, (_, _, _, params) in enumerate(spec.errors):
        vals = {}
        for name in params:
            if name in spec.fixed_errors[o]:
                vals[name] = spec.fixed_errors[o][name]
                continue
            v = jnp.exp(u[k])
            lp = lp + u[k] + _prior_logpdf(spec.error_priors[(o, name)], v)
            vals[name] = v
            k += 1
        errs.append(vals)
    return errs, lp


def population_log_density(spec):
    """The log posterior of a population model (typical values, Omega, errors, non-centred random effects)."""
    predict = _predictions(spec.host)
    n, q = spec.host.n, spec.q

    def log_density(u):
        lp = 0.0
        theta = {}
        for k, (name, lo, hi, prior) in enumerate(spec.thetas):
            v, lj = _constrain(u[k], lo, hi)
            lp = lp + lj + _prior_logpdf(prior, v)
            theta[name] = v
        k = len(spec.thetas)
        # Omega = L L', L lower triangular with log diagonal (only the diagonal for a diagonal Omega)
        if spec.full_omega:
            L = jnp.zeros((q, q))
            for a in range(q):
                for b in range(a + 1):
                    L = L.at[a, b].set(jnp.exp(u[k]) if a == b else u[k])
                    k += 1
            d = jnp.log(jnp.diagonal(L))
            lp = lp + q * math.log(2.0) + jnp.sum((q - jnp.arange(q) + 1) * d)
        else:
            d = u[k:k + q]
            L = jnp.diag(jnp.exp(d))
            lp = lp + q * math.log(2.0) + 2.0 * jnp.sum(d)     # d(omega^2)/d(d) = 2 omega^2
            k += q
        omega = L @ L.T
        nu = spec.iw_df
        psi = nu * spec.iw_omega
        if spec.full_omega:
            lp = lp - 0.5 * (nu + q + 1) * jnp.linalg.slogdet(omega)[1] - 0.5 * jnp.trace(psi @ jnp.linalg.inv(omega))
        else:
            w = jnp.diagonal(omega)
            lp = lp - 0.5 * (nu + q + 1) * jnp.sum(jnp.log(w)) - 0.5 * jnp.sum(jnp.diagonal(psi) / w)
        errs, lp = _error_values(spec, u, k, lp)
        k += spec.n_error
        z = u[k:k + n * q].reshape(n, q)
        lp = lp - 0.5 * jnp.sum(z * z)
        eta = z @ L.T
        cols = []
        for j, (name, dist, log) in enumerate(spec.individual):
            typical = theta[name] if name in theta else spec.fixed_theta[name]
            if j < q:
                e = eta[:, j]
                if dist == "lognormal":
                    v = typical * jnp.exp(e)
                elif dist == "logitnormal":
                    v = jax.nn.sigmoid(jnp.log(typical / (1 - typical)) + e)
                else:
                    v = typical + e
            else:
                v = jnp.broadcast_to(typical, (n,))
            cols.append(jnp.log(v) if log else v)
        return lp + _loglik(spec, predict(jnp.stack(cols, axis=1)), errs)

    return log_density
