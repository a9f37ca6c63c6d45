"""pkpd's NUTS (pkpd.hmc, issue 16) on posteriors known in closed form: a correlated normal (both metrics), a skewed
log-gamma distribution, a truncated normal (moves outside the support rejected and reported); reproducibility and
the batched evaluation of the chains. The pkpd.sample tests (tests/unit/test_bayes.py) run it on ODE models."""

import math

import numpy as np
import pytest
from scipy.special import digamma, polygamma

from pkpd.hmc import nuts
from pkpd.mcmc import ess_bulk, rhat

_SD = np.array([1.0, 2.0, 0.5, 0.1])
_CORR = np.array([[1.0, 0.9, 0.0, 0.0],
                  [0.9, 1.0, 0.3, 0.0],
                  [0.0, 0.3, 1.0, -0.2],
                  [0.0, 0.0, -0.2, 1.0]])
_COV = np.outer(_SD, _SD) * _CORR              # correlation 0.9 between the first two, scales 0.1 to 2
_MEAN = np.array([1.0, -2.0, 0.5, 3.0])
_PREC = np.linalg.inv(_COV)


def _normal(x):
    r = x - _MEAN
    g = -r @ _PREC
    return 0.5 * np.sum(g * r, axis=1), g


def _assert_moments(draws, mean, var, *, rel_var=0.1):
    """Each coordinate's mean within 4 Monte-Carlo SEs (SD / sqrt(bulk ESS)), its variance within rel_var."""
    for k in range(draws.shape[-1]):
        x = draws[..., k]
        assert rhat(x) < 1.01
        se = math.sqrt(var[k] / ess_bulk(x))
        assert abs(x.mean() - mean[k]) < 4 * se, (k, x.mean(), mean[k], se)
        assert x.var() == pytest.approx(var[k], rel=rel_var), k


@pytest.mark.parametrize("dense", [False, True])
def test_a_correlated_normal(dense):
    run = nuts(_normal, np.zeros((4, 4)), n_warmup=400, n_draws=1500, seed=3, dense_metric=dense)
    assert run.draws.shape == (4, 1500, 4) and not run.diverging.any()
    _assert_moments(run.draws, _MEAN, np.diag(_COV))
    corr = np.corrcoef(run.draws.reshape(-1, 4).T)[0, 1]
    assert corr == pytest.approx(0.9, abs=0.02)
    # the adapted metric is the posterior's (co)variance
    metric = run.inv_metric.mean(axis=0)
    np.testing.assert_allclose(np.diag(metric) if dense else metric, np.diag(_COV), rtol=0.35)
    if dense:
        assert metric[0, 1] == pytest.approx(1.8, rel=0.35)
        assert run.num_steps.mean() < 8       # whitened: short trajectories


def test_a_skewed_posterior_log_gamma():
    """x = log(g), g ~ Gamma(a): density exp(a x - e^x), mean digamma(a), variance trigamma(a), skewness < 0."""
    a = np.array([0.7, 3.0])

    def log_gamma(x):
        return np.sum(a * x - np.exp(x), axis=1), a - np.exp(x)

    run = nuts(log_gamma, np.zeros((4, 2)), n_warmup=400, n_draws=2000, seed=5)
    _assert_moments(run.draws, digamma(a), polygamma(1, a))
    x = run.draws[..., 0].reshape(-1)
    # a quantile in the long left tail: P(x < log q) = P(g < q) for g ~ Gamma(0.7)
    from scipy.stats import gamma

    q = gamma(0.7).ppf(0.05)
    assert np.mean(x < math.log(q)) == pytest.approx(0.05, abs=0.015)


def test_moves_outside_the_support_are_rejected_and_reported():
    """A standard normal truncated to x > 0 (log density -inf below): draws stay inside, the mean is sqrt(2/pi),
    and the trajectories that leave the support are counted as divergent."""

    def half_normal(x):
        inside = x[:, 0] > 0
        return np.where(inside, -0.5 * x[:, 0] ** 2, -np.inf), np.where(inside[:, None], -x, 0.0)

    run = nuts(half_normal, np.full((4, 1), 0.5), n_warmup=300, n_draws=2000, seed=2)
    x = run.draws[..., 0]
    assert x.min() > 0
    se = math.sqrt((1 - 2 / math.pi) / ess_bulk(x))
    assert abs(x.mean() - math.sqrt(2 / math.pi)) < 4 * se
    assert run.diverging.any()


def test_the_same_seed_gives_the_same_draws_in_one_or_two_threads_and_chains_share_batch_calls():
    calls = []

    def counted(x):
        calls.append(x.shape[0])
        return _normal(x)

    def rowwise(x):         # each row evaluated alone (a matrix product's rounding depends on the batch)
        r = x - _MEAN
        g = -np.sum(r[:, :, None] * _PREC[None], axis=1)
        return 0.5 * np.sum(g * r, axis=1), g

    first = nuts(counted, np.zeros((3, 4)), n_warmup=50, n_draws=50, seed=9)
    again = nuts(_normal, np.zeros((3, 4)), n_warmup=50, n_draws=50, seed=9)
    one = nuts(rowwise, np.zeros((3, 4)), n_warmup=50, n_draws=50, seed=9)
    threaded = nuts(rowwise, np.zeros((3, 4)), n_warmup=50, n_draws=50, seed=9, threads=2)
    other = nuts(_normal, np.zeros((3, 4)), n_warmup=50, n_draws=50, seed=10)
    np.testing.assert_array_equal(first.draws, again.draws)
    np.testing.assert_array_equal(one.draws, threaded.draws)         # chains in two threads: the same chains
    assert threaded.warmup_steps == one.warmup_steps
    assert not np.array_equal(first.draws, other.draws)
    assert max(calls) == 3 and first.batch_calls == len(calls)
    evaluations = first.num_steps.sum() + first.warmup_steps
    assert len(calls) < 0.6 * evaluations      # three chains per call most of the time


def test_bad_input():
    with pytest.raises(ValueError, match="target_accept"):
        nuts(_normal, np.zeros((2, 4)), target_accept=1.5)
    with pytest.raises(FloatingPointError, match="starting position"):
        nuts(lambda x: (np.full(x.shape[0], -np.inf), np.zeros_like(x)), np.zeros((2, 4)), n_warmup=10,
             n_draws=10)


def test_chains_in_worker_processes_draw_what_one_process_draws():
    """nuts(workers=k): each group of chains in a forked process; the draws, divergences, step counts and adapted
    step sizes and metrics equal those of one process (each chain has its own random stream), and an error raised
    by log_density in a worker reaches the caller."""
    cov = np.array([[1.0, 0.8], [0.8, 1.0]])
    prec = np.linalg.inv(cov)

    def log_density(x):
        g = -x @ prec
        return 0.5 * np.sum(g * x, axis=1), g

    init = np.random.default_rng(0).standard_normal((4, 2))
    one = nuts(log_density, init, n_warmup=100, n_draws=100, seed=3)
    for workers in (2, 4):
        many = nuts(log_density, init, n_warmup=100, n_draws=100, seed=3, workers=workers)
        np.testing.assert_array_equal(many.draws, one.draws)
        np.testing.assert_array_equal(many.num_steps, one.num_steps)
        np.testing.assert_array_equal(many.warmup_num_steps, one.warmup_num_steps)
        np.testing.assert_array_equal(many.step_size, one.step_size)
        np.testing.assert_array_equal(many.inv_metric, one.inv_metric)
    assert many.batch_calls > one.batch_calls       # each worker's calls counted (fewer chains per call)

    def failing(x):                 # fails at chain 1's start only, i.e. in the worker that runs chain 1
        if np.any(np.all(x == [2.0, 0.0], axis=1)):
            raise ValueError("a failing solve")
        return log_density(x)

    with pytest.raises(ValueError, match="a failing solve"):
        nuts(failing, np.array([[0.0, 0.0], [2.0, 0.0]]), n_warmup=10, n_draws=10, seed=1, workers=2)
