"""NUTS through numpyro (``pkpd.sample(sampler="numpyro")``), with the likelihood and its gradient from pkpd's
compiled engine (private; the optional extra ``pkpd[bayes]``; only :func:`pkpd.sample` imports this module).

The log posterior's prior part is written in JAX (priors, transforms and their Jacobians, Omega, non-centred random
effects; the same density as :class:`pkpd._prior_part.PriorPart`, which pkpd's own sampler uses in numpy, and a
unit test holds the two equal), so numpyro differentiates it; the log-likelihood of the data and its gradient by
the individual parameters and the residual-error parameters come from one ``jax.pure_callback`` per gradient
evaluation (every chain at once: :class:`pkpd.bayes._Likelihood`, which solves the model with its forward
sensitivity equations in one batch call of the compiled engine), wrapped in a ``jax.custom_vjp``.

The compiled program is cached (:func:`program`): the JAX code depends only on the *structure* of the problem
(priors, bounds, transforms, sizes, sampler settings), never on the data, which the callback reads from a mutable
:class:`Slot`; a second :func:`pkpd.sample` call with the same structure (another data set, seed or starting
point: simulation-based calibration, repeated fits) reuses the numpyro kernel and its XLA executables instead of
tracing and compiling them again.
"""

from __future__ import annotations

import math
from collections import OrderedDict

import jax
import jax.numpy as jnp
import numpy as np

jax.config.update("jax_enable_x64", True)

_LOG_2PI = math.log(2.0 * math.pi)
_MAX_PROGRAMS = 16


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


class Slot:
    """The likelihood a cached program evaluates now (set by :func:`pkpd.sample` for the length of one run)."""

    current = None

    def __call__(self, psi, e):
        if self.current is None:
            raise RuntimeError("internal: a cached NUTS program ran without a likelihood")
        return self.current(np.asarray(psi, dtype=float), np.asarray(e, dtype=float))


def _loglik(slot: Slot):
    """log p(y | psi, e) as a differentiable JAX function of the individual parameters psi (n, p) and the sampled
    residual-error parameters e (n_e,): value and gradient from the host in one callback."""

    def call(psi, e):
        shape = jnp.broadcast_shapes(psi.shape[:-2], e.shape[:-1])
        out = (jax.ShapeDtypeStruct(shape, jnp.float64), jax.ShapeDtypeStruct(shape + psi.shape[-2:], jnp.float64),
               jax.ShapeDtypeStruct(shape + e.shape[-1:], jnp.float64))
        return jax.pure_callback(slot, out, psi, e, vmap_method="expand_dims")

    @jax.custom_vjp
    def loglik(psi, e):
        return call(psi, e)[0]

    def fwd(psi, e):
        ll, g_psi, g_e = call(psi, e)
        return ll, (g_psi, g_e)

    def bwd(res, g):
        g_psi, g_e = res
        return g[..., None, None] * g_psi, g[..., None] * g_e

    loglik.defvjp(fwd, bwd)
    return loglik


def program(key: str, build, *, n_chains: int, n_warmup: int, n_draws: int, target_accept: float,
            max_tree_depth: int):
    """The cached (Slot, numpyro MCMC) of a problem structure ``key``; ``build(loglik)`` returns the log density
    (a JAX function of the standardised unconstrained vector) given the likelihood function."""
    from numpyro.infer import MCMC, NUTS

    hit = _PROGRAMS.get(key)
    if hit is not None:
        _PROGRAMS.move_to_end(key)
        return hit
    slot = Slot()
    log_density = build(_loglik(slot))
    kernel = NUTS(potential_fn=lambda u: -log_density(u), target_accept_prob=target_accept,
                  max_tree_depth=max_tree_depth, dense_mass=False)
    mcmc = MCMC(kernel, num_warmup=n_warmup, num_samples=n_draws, num_chains=n_chains,
                chain_method="vectorized", progress_bar=False)
    _PROGRAMS[key] = (slot, mcmc)
    while len(_PROGRAMS) > _MAX_PROGRAMS:
        _PROGRAMS.popitem(last=False)
    return slot, mcmc


_PROGRAMS: OrderedDict = OrderedDict()


def run_nuts(slot: Slot, mcmc, likelihood, init: np.ndarray, seed: int):
    """Run a cached program on ``likelihood`` from ``init`` (n_chains, d): draws (n_chains, n_draws, d),
    divergences (n_chains, n_draws) and leapfrog steps per iteration (n_chains, n_draws)."""
    slot.current = likelihood
    try:
        mcmc.run(jax.random.PRNGKey(seed), init_params=jnp.asarray(init), extra_fields=("diverging", "num_steps"))
        draws = np.asarray(mcmc.get_samples(group_by_chain=True))
        extra = mcmc.get_extra_fields(group_by_chain=True)
    finally:
        slot.current = None
    return draws, np.asarray(extra["diverging"]), np.asarray(extra["num_steps"])


def _error_values(structure, u, off, lp):
    """The sampled residual-error parameters (natural scale) and their log prior + log Jacobian."""
    values = []
    for k, prior in enumerate(structure.error_priors):
        v = jnp.exp(u[off + k])
        lp = lp + u[off + k] + _prior_logpdf(prior, v)
        values.append(v)
    return (jnp.stack(values) if values else u[off:off]), lp


def individual_log_density(structure, loglik):
    """The log posterior of a pooled model (one parameter set for every subject) as a JAX function."""
    n = structure.n

    def log_density(u):
        lp = 0.0
        psi = []
        for k, (lo, hi, prior, log) in enumerate(structure.struct):
            v, lj = _constrain(u[k], lo, hi)
            lp = lp + lj + _prior_logpdf(prior, v)
            psi.append(jnp.log(v) if log else v)
        psi = jnp.broadcast_to(jnp.stack(psi), (n, len(psi)))
        errs, lp = _error_values(structure, u, len(structure.struct), lp)
        return lp + loglik(psi, errs)

    return log_density


def population_log_density(structure, loglik):
    """The log posterior of a population model (typical values, Omega, errors, non-centred random effects)."""
    n, q = structure.n, structure.q
    fixed = dict(structure.fixed_theta)

    def log_density(u):
        lp = 0.0
        theta = {}
        for k, (name, lo, hi, prior) in enumerate(structure.thetas):
            v, lj = _constrain(u[k], lo, hi)
            lp = lp + lj + _prior_logpdf(prior, v)
            theta[name] = v
        k = len(structure.thetas)
        # Omega = L L', L lower triangular with log diagonal (only the diagonal for a diagonal Omega)
        if structure.full_omega:
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
        nu = structure.iw_df
        psi = nu * np.asarray(structure.iw_omega)
        if structure.full_omega:
            lp = lp - 0.5 * (nu + q + 1) * jnp.linalg.slogdet(omega)[1] - 0.5 * jnp.trace(psi @ jnp.linalg.inv(omega))
        else:
            w = jnp.diagonal(omega)
            lp = lp - 0.5 * (nu + q + 1) * jnp.sum(jnp.log(w)) - 0.5 * jnp.sum(jnp.diagonal(psi) / w)
        errs, lp = _error_values(structure, u, k, lp)
        k += len(structure.error_priors)
        z = u[k:k + n * q].reshape(n, q)
        lp = lp - 0.5 * jnp.sum(z * z)
        eta = z @ L.T
        cols = []
        for j, (name, dist, log) in enumerate(structure.individual):
            typical = theta[name] if name in theta else fixed[name]
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
        return lp + loglik(jnp.stack(cols, axis=1), errs)

    return log_density
