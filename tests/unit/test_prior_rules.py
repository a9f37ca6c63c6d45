"""Rules of the priors code (pkpd/priors.py, pkpd/_prior_part.py) that the mutation sample of seed 23 found untested:
validated values stored as floats, the uniform prior's centre, the MAP fit's prior terms (residual form, gradient,
outside the support), the sampler's prior part for several subjects, and the engine's threads while sampling.
Each value is checked against scipy.stats, a documented rule or central differences, never the code's own output."""

import json
import math

import numpy as np
import pytest
from scipy import stats

from pkpd.priors import (
    HalfNormalPrior,
    IndividualPriorTerms,
    LogitNormalPrior,
    LogNormalPrior,
    NormalPrior,
    UniformPrior,
    prior_to_dict,
)

# --------------------------------------------------------------------------------------------------- seed 23


def test_a_normal_prior_stores_its_sd_as_a_float():
    """``_positive`` returns ``float(value)``: an int or numpy sd is stored as a Python float (repr, JSON)."""
    p = NormalPrior(0, 2)
    assert type(p.sd) is float and p.sd == 2.0
    assert repr(p) == "NormalPrior(mean=0.0, sd=2.0, source='', grade=None)"
    q = NormalPrior(1.5, np.int64(3))
    assert type(q.sd) is float
    assert json.dumps(prior_to_dict(q)) == '{"dist": "normal", "mean": 1.5, "sd": 3.0}'


def test_a_half_normal_prior_stores_its_scale_as_a_float():
    """The half-normal prior's scale, validated by ``_positive``, is stored as a Python float."""
    p = HalfNormalPrior(2)
    assert type(p.scale_parameter) is float and p.scale_parameter == 2.0
    assert repr(p) == "HalfNormalPrior(scale_parameter=2.0, source='', grade=None)"
    q = HalfNormalPrior(np.int64(4))
    assert type(q.scale_parameter) is float
    assert json.dumps(prior_to_dict(q)) == '{"dist": "halfnormal", "scale": 4.0}'


@pytest.mark.parametrize("lower, upper", [(1.0, 3.0), (-5.0, 1.0), (0.0, 4.0), (10.0, 10.5)])
def test_the_location_of_a_uniform_prior_is_the_midpoint_of_its_bounds(lower, upper):
    """``location`` is "a central value inside the support": for a uniform prior the midpoint (lower + upper)/2."""
    p = UniformPrior(lower, upper)
    assert p.location == pytest.approx((lower + upper) / 2.0, rel=1e-15, abs=1e-15)
    assert lower < p.location < upper


_MARGIN = 2.0 * math.log(1e3)     # documented: e + K starts at this value after a reset


@pytest.mark.parametrize("prior, v", [(LogNormalPrior(2.0, 0.5), 10.0), (LogNormalPrior(2.0, 0.5), 0.2),
                                      (LogitNormalPrior(0.3, 0.8), 0.7)])
def test_after_a_reset_the_jacobian_residual_starts_at_the_margin(prior, v):
    """After ``reset(x)`` the Jacobian residual at x is sqrt(e + K) = sqrt(2 log 1000), whatever e(x) is (K is
    re-centred on the point); the residuals' squares less K still sum to -2 log p (scipy) less the constant."""
    terms = IndividualPriorTerms(("a", "b"), {"a": prior}, np.array([False, False]))
    x = np.array([v, 0.0])
    terms.reset(x)
    total, r, J, g, clipped, valid = terms.evaluate(x, 2)
    assert r.shape == (2,)
    assert r[1] == pytest.approx(math.sqrt(_MARGIN), rel=1e-12)
    assert clipped is False and valid is True
    if isinstance(prior, LogNormalPrior):
        ref = -2.0 * stats.lognorm(s=prior.sigma, scale=prior.median).logpdf(v)
    else:
        ref = -2.0 * (stats.norm(math.log(prior.median / (1 - prior.median)), prior.sigma).logpdf(math.log(v / (1 - v)))
                      - math.log(v * (1 - v)))
    assert total == pytest.approx(ref, rel=1e-12)
    assert r[0] ** 2 + r[1] ** 2 - terms.K[0] + terms.const == pytest.approx(ref, rel=1e-12)


@pytest.mark.parametrize("log", [False, True])
def test_the_gradient_of_the_prior_terms_equals_central_differences(log):
    """The gradient of -2 log prior (log-normal, logit-normal, normal, half-normal and uniform priors; natural or
    log-scale coordinates) equals central differences of its value."""
    priors = {"a": LogNormalPrior(2.0, 0.5), "b": LogitNormalPrior(0.3, 0.8), "c": NormalPrior(1.0, 2.0),
              "d": HalfNormalPrior(1.5), "e": UniformPrior(0.1, 5.0)}
    names = tuple(priors)
    v = np.array([3.0, 0.6, 2.5, 0.8, 1.2])
    flags = np.array([log, False, False, log, log])
    x = np.where(flags, np.log(v), v)
    terms = IndividualPriorTerms(names, priors, flags)
    terms.reset(x)
    total, r, J, g, clipped, valid = terms.evaluate(x, len(names))
    assert valid
    h = 1e-6
    for i in range(len(names)):
        up, down = x.copy(), x.copy()
        up[i] += h
        down[i] -= h
        fd = (terms.evaluate(up, len(names))[0] - terms.evaluate(down, len(names))[0]) / (2 * h)
        assert g[i] == pytest.approx(fd, rel=1e-6, abs=1e-8), names[i]


@pytest.mark.parametrize("prior, v", [(LogNormalPrior(2.0, 0.5), -1.0), (LogNormalPrior(2.0, 0.5), 0.0),
                                      (LogitNormalPrior(0.3, 0.8), 1.3), (LogitNormalPrior(0.3, 0.8), -0.2),
                                      (LogitNormalPrior(0.3, 0.8), 1.0), (LogitNormalPrior(0.3, 0.8), 0.0)])
def test_a_value_outside_the_support_is_infinite_and_not_valid(prior, v):
    """A value outside the prior's support (log of a value <= 0): -2 log prior = inf, not clipped, not valid."""
    terms = IndividualPriorTerms(("a",), {"a": prior}, np.array([False]))
    out = terms.evaluate(np.array([v]), 1)
    assert len(out) == 6
    total, r, J, g, clipped, valid = out
    assert total == math.inf
    assert clipped is False
    assert valid is False


def test_a_uniform_prior_outside_its_bounds_is_infinite_and_not_valid():
    terms = IndividualPriorTerms(("a",), {"a": UniformPrior(0.0, 1.0)}, np.array([False]))
    total, r, J, g, clipped, valid = terms.evaluate(np.array([1.5]), 1)
    assert (total, clipped, valid) == (math.inf, False, False)


def _pooled_structure(n):
    from pkpd.bayes import _Structure

    struct = ((0.0, math.inf, LogNormalPrior(3.0, 0.5), True), (-100.0, 100.0, NormalPrior(4.0, 0.5), False))
    return _Structure(n=n, error_priors=(HalfNormalPrior(0.3),), struct=struct, centre=(0.0, 0.0, 0.0),
                      scale=(1.0, 1.0, 1.0))


@pytest.mark.parametrize("kernel", [True, False])
@pytest.mark.parametrize("n", [1, 2, 3])
def test_the_pooled_prior_part_hands_psi_to_every_subject(n, kernel):
    """``forward(z)`` of a pooled model: the log density (scipy's densities of the natural values plus the
    log-Jacobians of the transforms log and scaled logit, the same for any number of subjects), psi of shape
    (B, n, k) with every subject's row the typical values (log V for a log-scale parameter), e = exp(u)."""
    from pkpd._prior_part import PriorPart

    part = PriorPart(_pooled_structure(n), False)
    part.use_kernel = kernel
    z = np.array([[0.4, -0.3, -1.2], [1.1, 0.2, -0.5]])
    lp, psi, e, tape = part.forward(z)
    v0 = np.exp(z[:, 0])
    s = 1.0 / (1.0 + np.exp(-z[:, 1]))
    v1 = -100.0 + 200.0 * s
    err = np.exp(z[:, 2])
    ref = (stats.lognorm(s=0.5, scale=3.0).logpdf(v0) + z[:, 0]
           + stats.norm(4.0, 0.5).logpdf(v1) + np.log(200.0 * s * (1.0 - s))
           + stats.halfnorm(scale=0.3).logpdf(err) + z[:, 2])
    np.testing.assert_allclose(lp, ref, rtol=1e-12)
    assert psi.shape == (2, n, 2)
    for i in range(n):
        np.testing.assert_allclose(psi[:, i, 0], np.log(v0), rtol=1e-12)
        np.testing.assert_allclose(psi[:, i, 1], v1, rtol=1e-12)
    np.testing.assert_allclose(e[:, 0], err, rtol=1e-12)


class _Gauss:
    """A standard normal log density as the prior part (psi = z for one subject) for run_pkpd_nuts."""

    def forward(self, z):
        return -0.5 * np.sum(z * z, axis=1), z[:, None, :], np.zeros((z.shape[0], 0)), z

    def backward(self, tape, g_psi, g_e):
        return -tape + g_psi[:, 0, :]


class _Likelihood:
    """No data; records the engine's thread count at each call; ``host.n`` subjects."""

    def __init__(self, subjects):
        self.host = type("Host", (), {"n": subjects})()
        self.seen = set()

    def __call__(self, psi, e):
        from pkpd import _native

        self.seen.add(_native.threads())
        return np.zeros(psi.shape[0]), np.zeros_like(psi), np.zeros_like(e)


@pytest.mark.parametrize("chains, subjects, expected", [(1, 16, 3), (2, 8, 3), (4, 1, 1), (1, 15, 1)])
def test_the_engine_threads_while_sampling(monkeypatch, chains, subjects, expected):
    """With one sampler thread and one worker, the engine keeps its threads for a batch of at least 16 rows
    (chains x subjects) and solves a smaller batch on one thread; the setting is restored afterwards."""
    from pkpd import _native
    from pkpd._prior_part import run_pkpd_nuts

    monkeypatch.setattr(_native, "_THREADS", [3])
    likelihood = _Likelihood(subjects)
    run_pkpd_nuts(_Gauss(), likelihood, np.zeros((chains, 2)), 1, n_warmup=3, n_draws=3, target_accept=0.8,
                  max_tree_depth=3)
    assert likelihood.seen == {expected}
    assert _native._THREADS == [3]
