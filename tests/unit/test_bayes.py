"""Full posteriors with NUTS (issue 16): the conjugate normal posterior in closed form, a population model, the
diagnostics against ArviZ, bad input. (Simulation-based calibration and the comparison with a long reference run:
benchmarks/bayes.py.)"""

import math

import numpy as np
import pandas as pd
import pytest

import pkpd
from pkpd.errors import FitError
from pkpd.mcmc import ess_bulk, ess_tail, rhat
from pkpd.priors import HalfNormalPrior, InverseWishart, LogNormalPrior, NormalPrior

pytest.importorskip("numpyro")


def _line():
    return pkpd.Model(
        name="line", time_unit="h",
        parameters=(pkpd.Parameter("a", 0.0, "mg/L", (-100.0, 100.0), prior=NormalPrior(4.0, 0.5)),
                    pkpd.Parameter("b", 0.0, "mg/L/h", (-100.0, 100.0), prior=NormalPrior(1.0, 0.2)),
                    pkpd.Parameter("t0", 5.5, "h", (0.0, 24.0))),
        states=(pkpd.State("A", "mg/L", "0", "0 * b"),),
        # time centred on the design's mean: a and b are a posteriori independent, so NUTS needs few leapfrog steps
        outputs=(pkpd.Output("y", "A + a + b * (t - t0)", "mg/L"),))


def _line_posterior(y, **kwargs):
    """NUTS draws of the straight line on data y at t = 1..10 (8 times) and its closed-form posterior."""
    t = np.linspace(1.0, 10.0, 8)
    sd = 0.4
    data = pd.DataFrame({"ID": 1, "TIME": t, "EVID": 0, "AMT": 0.0, "DV": y})
    kwargs = {"seed": 1, **kwargs}
    post = pkpd.sample(_line(), data, estimate=["a", "b"], error={"y": pkpd.Additive(sd=sd, fixed=True)},
                       n_warmup=150, n_draws=150, **kwargs)
    Xd = np.column_stack([np.ones_like(t), t - 5.5])
    precision = Xd.T @ Xd / sd ** 2 + np.diag([1 / 0.25, 1 / 0.04])
    cov = np.linalg.inv(precision)
    mean = cov @ (Xd.T @ y / sd ** 2 + np.array([4.0 / 0.25, 1.0 / 0.04]))
    return post, mean, cov


def _assert_closed_form(post, mean, cov):
    s = post.summary.set_index("name")
    for k, name in enumerate(("a", "b")):
        mc_error = math.sqrt(cov[k, k] / s.loc[name, "ess_bulk"])
        assert s.loc[name, "mean"] == pytest.approx(mean[k], abs=4 * mc_error)
        assert s.loc[name, "sd"] == pytest.approx(math.sqrt(cov[k, k]), rel=0.15)
        assert s.loc[name, "rhat"] < 1.02


@pytest.mark.parametrize("sampler", ["pkpd", "numpyro"])
def test_the_posterior_of_a_conjugate_normal_model_is_the_closed_form(sampler):
    t = np.linspace(1.0, 10.0, 8)
    y = 4.75 + 0.5 * (t - 5.5) + np.random.default_rng(3).normal(0, 0.4, t.size)
    post, mean, cov = _line_posterior(y, sampler=sampler)
    _assert_closed_form(post, mean, cov)
    assert post.divergences == 0
    assert post.draws["a"].shape == (4, 150)
    assert post.derivatives == "forward sensitivities"


def test_a_second_call_reuses_the_compiled_program_with_its_own_data():
    """numpyro's sampler: calls with the same structure share one compiled program (no second trace), and the data
    reach it afresh each time: the posterior of other data (other slope) is again the closed form. (pkpd's sampler
    compiles nothing: its prior part is numpy.)"""
    import pkpd._nuts as nuts

    sampler = "numpyro"
    cache = nuts._PROGRAMS
    t = np.linspace(1.0, 10.0, 8)
    rng = np.random.default_rng(7)
    first = _line_posterior(4.0 + 1.3 * (t - 5.5) + rng.normal(0, 0.4, t.size), sampler=sampler)
    programs = dict(cache)
    assert programs
    second = _line_posterior(4.0 + 0.7 * (t - 5.5) + rng.normal(0, 0.4, t.size), sampler=sampler)
    assert dict(cache).keys() == programs.keys()
    assert all(cache[k] is v for k, v in programs.items())
    for post, mean, cov in (first, second):
        _assert_closed_form(post, mean, cov)


def test_chains_driven_from_two_threads_give_the_same_draws():
    """pkpd's sampler with its chains in two threads (the host shared, the engine on one thread per group) draws
    exactly what one thread draws: each chain sees only its own evaluations."""
    t = np.linspace(1.0, 10.0, 8)
    y = 4.75 + 0.5 * (t - 5.5) + np.random.default_rng(3).normal(0, 0.4, t.size)
    one, mean, cov = _line_posterior(y)
    two, _, _ = _line_posterior(y, threads=2)
    for name in ("a", "b"):
        np.testing.assert_array_equal(two.draws[name], one.draws[name])
    assert two.warmup_leapfrog_steps == one.warmup_leapfrog_steps > 0


def test_chains_in_worker_processes_give_the_same_draws():
    """pkpd's sampler with its chains in 2 or 3 forked worker processes draws exactly what one process draws (the
    draws depend on the seed only), and the CPU time of the workers is counted."""
    t = np.linspace(1.0, 10.0, 8)
    y = 4.75 + 0.5 * (t - 5.5) + np.random.default_rng(3).normal(0, 0.4, t.size)
    one, mean, cov = _line_posterior(y)
    for workers in (2, 3):
        many, _, _ = _line_posterior(y, workers=workers)
        for name in ("a", "b"):
            np.testing.assert_array_equal(many.draws[name], one.draws[name])
        np.testing.assert_array_equal(many._diverging, one._diverging)
        assert many.warmup_leapfrog_steps == one.warmup_leapfrog_steps > 0
        assert many.leapfrog_steps == one.leapfrog_steps
    _assert_closed_form(many, mean, cov)
    other, _, _ = _line_posterior(y, workers=2, seed=2)
    assert not np.array_equal(other.draws["a"], one.draws["a"])


def test_a_population_posterior_with_predictions():
    data = "tests/data/wang2007/wang2007.csv"
    model = pkpd.load_model("wang2007").with_priors(ke=LogNormalPrior(0.5, 0.5))
    post = pkpd.sample(model, data, estimate=["ke"], iiv={"ke": 0.04}, error=pkpd.Additive(sd=0.3),
                       omega_prior=InverseWishart({"ke": 0.05}, df=3), seed=2, n_chains=2, n_warmup=100, n_draws=100)
    assert post.names == ("ke", "omega2_ke", "f.sd")
    assert isinstance(post.priors["f.sd"], HalfNormalPrior)     # the documented default
    assert post.eta.shape[:2] == (2, 100) and post.eta.shape[3] == 1
    fit = pkpd.fit_population("wang2007", data, iiv={"ke": 0.04}, error=pkpd.Additive(sd=0.3), covariance=None)
    s = post.summary.set_index("name")
    # the posterior mean of the typical value lies near the maximum-likelihood estimate (weak prior, 10 subjects)
    assert abs(math.log(s.loc["ke", "mean"] / fit.theta["ke"])) < 3 * s.loc["ke", "sd"] / s.loc["ke", "mean"]
    sim = post.predict(None, [0.0, 1.0, 2.0], n_samples=20, seed=1)
    assert sim.outputs[model.output_names[0]].shape == (20, 3)
    az = pytest.importorskip("arviz")
    idata = post.to_inference_data()
    assert isinstance(idata, az.InferenceData) and "diverging" in idata.sample_stats


def test_diagnostics_equal_arviz():
    az = pytest.importorskip("arviz")
    rng = np.random.default_rng(1)
    x = np.cumsum(rng.standard_normal((4, 300)), axis=1) * 0.05 + rng.standard_normal((4, 300))
    x[1] += 0.3
    assert rhat(x) == pytest.approx(float(az.rhat(x)), rel=1e-12)
    assert ess_bulk(x) == pytest.approx(float(az.ess(x, method="bulk")), rel=1e-10)
    assert ess_tail(x) == pytest.approx(float(az.ess(x, method="tail")), rel=1e-10)
    iid = rng.standard_normal((4, 1000))
    assert rhat(iid) < 1.01 and 3000 < ess_bulk(iid) < 5000


def test_bad_input_to_sample():
    data = "tests/data/wang2007/wang2007.csv"
    model = pkpd.load_model("wang2007")
    with pytest.raises(FitError, match="proper prior"):
        pkpd.sample(model, data, estimate=["ke"], error=pkpd.Additive(sd=0.3))
    with pytest.raises(FitError, match="proper prior on Omega"):
        pkpd.sample(model.with_priors(ke=LogNormalPrior(0.5, 0.5)), data, estimate=["ke"], iiv={"ke": 0.04},
                    error=pkpd.Additive(sd=0.3))
    with pytest.raises(FitError, match="not a parameter"):
        pkpd.sample(model, data, estimate=["ke"], error=pkpd.Additive(sd=0.3), priors={"kee": NormalPrior(0, 1)})


class _Captured(Exception):
    pass


def _likelihood_of(monkeypatch, *args, exact=True, **kwargs):
    """The likelihood object pkpd.sample would hand to the sampler (captured before any sampling)."""
    import pkpd._nuts as nuts
    import pkpd._prior_part as prior_part
    from pkpd import bayes

    seen = {}

    def spy(slot, mcmc, likelihood, init, seed):
        seen["likelihood"], seen["init"] = likelihood, init
        raise _Captured

    monkeypatch.setattr(nuts, "run_nuts", spy)
    monkeypatch.setattr(prior_part, "run_pkpd_nuts",
                        lambda prior, likelihood, init, seed, **k: spy(None, None, likelihood, init, seed))
    if not exact:
        monkeypatch.setattr(bayes, "_exact_derivatives_unsupported", lambda prob, names: "forced in a test")
    with pytest.raises(_Captured):
        pkpd.sample(*args, **kwargs)
    return seen["likelihood"]


def _censored_population_data():
    rng = np.random.default_rng(4)
    t = np.array([0.5, 1.0, 2.0, 4.0, 8.0, 12.0, 24.0])
    rows = []
    for i, cl in enumerate(3.0 * np.exp(0.3 * rng.standard_normal(4)), start=1):
        f = 100 / 30 * np.exp(-cl / 30 * t)
        y = f * (1 + 0.1 * rng.standard_normal(t.size)) + 0.05 * rng.standard_normal(t.size)
        rows.append({"ID": i, "TIME": 0.0, "EVID": 1, "AMT": 100.0, "DV": np.nan, "LLOQ": np.nan, "BLQ": 0})
        for tk, yk in zip(t, y):
            blq = int(yk < 0.6)
            rows.append({"ID": i, "TIME": tk, "EVID": 0, "AMT": 0.0, "DV": 0.6 if blq else yk, "LLOQ": 0.6,
                         "BLQ": blq})
    df = pd.DataFrame(rows)
    df["AMTU"] = "mg"
    assert df["BLQ"].sum() >= 2
    return df


def test_the_likelihood_gradient_from_sensitivities_equals_differences(monkeypatch):
    """The gradient the sampler follows (forward sensitivities, the error model's derivatives, M3) against central
    differences of the log-likelihood itself and against the central-difference host."""
    model = pkpd.load_model("pk_1cmt_iv").with_priors(CL=LogNormalPrior(3.0, 0.5), V=LogNormalPrior(30.0, 0.5))
    kw = dict(estimate=["CL", "V"], iiv={"CL": 0.09}, error={"conc": pkpd.Combined(sd=0.05, cv=0.1,
                                                                                   convention="variance")},
              omega_prior=InverseWishart({"CL": 0.1}, df=4))
    data = _censored_population_data()
    exact = _likelihood_of(monkeypatch, model, data, **kw)
    assert type(exact.host).__name__ == "_SensitivityHost"
    rng = np.random.default_rng(0)
    n = exact.host.n
    psi = np.log([3.0, 30.0]) + 0.2 * rng.standard_normal((2, n, 2))       # two chains
    e = np.array([[0.05, 0.1], [0.08, 0.15]])
    ll, g_psi, g_e = exact(psi, e)
    assert np.all(np.isfinite(ll)) and ll.shape == (2,)
    h = 1e-6
    for c in range(2):
        for i in range(n):
            for k in range(2):
                up, down = psi.copy(), psi.copy()
                up[c, i, k] += h
                down[c, i, k] -= h
                numeric = (exact(up, e)[0][c] - exact(down, e)[0][c]) / (2 * h)
                assert g_psi[c, i, k] == pytest.approx(numeric, rel=1e-5, abs=1e-6)
        for k in range(2):
            up, down = e.copy(), e.copy()
            up[c, k] += h
            down[c, k] -= h
            assert g_e[c, k] == pytest.approx((exact(psi, up)[0][c] - exact(psi, down)[0][c]) / (2 * h), rel=1e-5)
    monkeypatch.undo()
    differences = _likelihood_of(monkeypatch, model, data, exact=False, **kw)
    assert type(differences.host).__name__ == "_DifferenceHost"
    ll_d, g_psi_d, g_e_d = differences(psi, e)
    np.testing.assert_allclose(ll_d, ll, rtol=1e-7)
    np.testing.assert_allclose(g_psi_d, g_psi, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(g_e_d, g_e, rtol=1e-6)


def test_a_log_posterior_not_finite_at_the_start_is_a_clear_error():
    from pkpd._prior_part import run_pkpd_nuts

    class Prior:
        def forward(self, z):
            return np.zeros(z.shape[0]), z[:, None, :], np.zeros((z.shape[0], 0)), None

        def backward(self, tape, g_psi, g_e):
            return g_psi[:, 0, :]

    def likelihood(psi, e):         # e.g. a prediction of 0 under a proportional error model
        return np.full(psi.shape[0], -np.inf), np.zeros_like(psi), np.zeros_like(e)

    with pytest.raises(FitError, match="not finite at the starting values"):
        run_pkpd_nuts(Prior(), likelihood, np.zeros((2, 2)), 1, n_warmup=5, n_draws=5, target_accept=0.8,
                      max_tree_depth=4)


def _prior_part_against_jax(structure, population, d, seed):
    """The numpy prior part of pkpd's sampler (value, psi, e and the gradient through a linear likelihood) against
    the JAX log density that numpyro differentiates, at random points."""
    import jax
    import jax.numpy as jnp

    import pkpd._nuts as nuts
    from pkpd._prior_part import PriorPart

    rng = np.random.default_rng(seed)
    part = PriorPart(structure, population)
    B = 3
    z = 0.7 * rng.standard_normal((B, d))
    lp, psi, e, tape = part.forward(z)
    g_psi = rng.standard_normal(psi.shape)
    g_e = rng.standard_normal(e.shape)
    grad = part.backward(tape, g_psi, g_e)
    if not population:          # the compiled kernel (the sampler's path) and the numpy formulas agree
        part.use_kernel = False
        lp2, psi2, e2, tape2 = part.forward(z)
        np.testing.assert_allclose(lp2, lp, rtol=1e-12)
        np.testing.assert_allclose(psi2, psi, rtol=1e-12)
        np.testing.assert_allclose(part.backward(tape2, g_psi, g_e), grad, rtol=1e-12, atol=1e-14)
    build = nuts.population_log_density if population else nuts.individual_log_density
    c, s = np.asarray(structure.centre), np.asarray(structure.scale)
    for b in range(B):
        seen = {}

        def capture(psi_j, e_j, seen=seen):
            seen["psi"], seen["e"] = np.asarray(psi_j), np.asarray(e_j)
            return 0.0

        value = float(build(structure, capture)(jnp.asarray(c + s * z[b])))       # the prior part alone
        assert lp[b] == pytest.approx(value, rel=1e-10, abs=1e-10)
        np.testing.assert_allclose(psi[b], seen["psi"], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(e[b], seen["e"], rtol=1e-10, atol=1e-12)
        density = build(structure, lambda psi_j, e_j, b=b: jnp.sum(g_psi[b] * psi_j) + jnp.sum(g_e[b] * e_j))
        gradient = jax.grad(lambda zz, density=density: density(c + s * zz))(jnp.asarray(z[b]))
        np.testing.assert_allclose(grad[b], np.asarray(gradient), rtol=1e-10, atol=1e-10)
    return part


def test_the_numpy_prior_part_equals_the_jax_one_for_individual_models():
    """Every prior family, every kind of bounds (both, lower, upper, none), log and natural individual parameters,
    error priors: the log density and its gradient of pkpd's sampler's numpy prior part = the JAX one (rel 1e-10)."""
    from pkpd.bayes import _Structure
    from pkpd.priors import LogitNormalPrior, UniformPrior

    struct = ((0.0, math.inf, LogNormalPrior(3.0, 0.5), True),
              (-100.0, 100.0, NormalPrior(4.0, 0.5), False),
              (0.0, 1.0, LogitNormalPrior(0.3, 0.8), True),
              (0.0, 1.0, UniformPrior(0.0, 1.0), False),
              (-math.inf, 5.0, NormalPrior(2.0, 1.5), False),
              (-math.inf, math.inf, NormalPrior(-1.0, 2.0), False),
              (1e-3, 50.0, HalfNormalPrior(10.0), True))
    errors = (HalfNormalPrior(0.3), LogNormalPrior(0.1, 0.4))
    # the general path (a logit-normal prior, bounds of every kind), the one-pass path (normal, log-normal,
    # half-normal and uniform priors) and the all-bounded path
    no_logit = tuple(row for row in struct if not isinstance(row[2], LogitNormalPrior))
    bounded = ((0.0, 1e3, LogNormalPrior(3.0, 0.5), True), (-100.0, 100.0, NormalPrior(4.0, 0.5), False),
               (0.0, 1.0, UniformPrior(0.0, 1.0), True))
    rng = np.random.default_rng(5)
    for block in (struct, no_logit, bounded):
        d = len(block) + len(errors)
        for seed in range(3):
            structure = _Structure(n=3, error_priors=errors, struct=block,
                                   centre=tuple(rng.normal(0, 0.5, d)), scale=tuple(rng.uniform(0.3, 2.0, d)))
            _prior_part_against_jax(structure, False, d, seed)


@pytest.mark.parametrize("full", [False, True])
def test_the_numpy_prior_part_equals_the_jax_one_for_population_models(full):
    """Population models: inverse-Wishart (full) or inverse-gamma (diagonal) Omega through its Cholesky factor,
    non-centred log-normal, logit-normal and normal random effects, a fixed typical value, a parameter without a
    random effect: value and gradient = the JAX log density (rel 1e-10)."""
    from pkpd.bayes import _Structure
    from pkpd.priors import LogitNormalPrior

    q, n = 3, 4
    thetas = (("CL", 0.0, math.inf, LogNormalPrior(3.0, 0.5)), ("F", 0.0, 1.0, LogitNormalPrior(0.6, 0.7)),
              ("ka", 0.1, 20.0, LogNormalPrior(1.5, 0.6)))
    individual = (("CL", "lognormal", True), ("F", "logitnormal", False), ("V", "normal", True),
                  ("ka", None, True))
    iw = np.array([[0.1, 0.02, 0.0], [0.02, 0.2, 0.01], [0.0, 0.01, 0.05]])
    errors = (HalfNormalPrior(0.3),)
    d = len(thetas) + (q * (q + 1) // 2 if full else q) + len(errors) + n * q
    rng = np.random.default_rng(6)
    for seed in range(3):
        structure = _Structure(n=n, error_priors=errors, thetas=thetas, fixed_theta=(("V", 30.0),),
                               individual=individual, q=q, full_omega=full, iw_df=5.0,
                               iw_omega=tuple(map(tuple, iw.tolist())),
                               centre=tuple(rng.normal(0, 0.3, d)), scale=tuple(rng.uniform(0.3, 1.5, d)))
        _prior_part_against_jax(structure, True, d, seed)


@pytest.mark.parametrize("errors, fixed", [
    ([("Proportional", "", False, ("cv",)), ("Additive", "", False, ("sd",))], [{}, {}]),
    ([("Combined", "variance", False, ("sd", "cv")), ("LogNormal", "", True, ("sigma",))], [{"sd": 0.05}, {}]),
    ([("Combined", "sd", False, ("sd", "cv")), ("Proportional", "", False, ("cv",))], [{}, {"cv": 0.2}]),
])
def test_the_compiled_likelihood_loop_equals_the_numpy_formulas(errors, fixed):
    """pkpd's sampler evaluates the uncensored likelihood in a compiled loop; it equals the vectorised numpy
    formulas (every error model, fixed and sampled error parameters, log-scale outputs, several subjects, a failed
    solve giving -inf and a zero gradient) to 1e-12."""
    from pkpd.bayes import _Likelihood

    rng = np.random.default_rng(8)
    n, J, p, B = 3, 2, 3, 4

    class Host:
        def __init__(self):
            self.n, self.J = n, J

        def select(self, pos):
            self.pos = pos

        def observed(self, psi):
            return self.f, self.df

    host = Host()
    sel = [np.zeros((n, J), dtype=bool) for _ in range(J)]
    for o in range(J):
        sel[o][:, o] = True
    u = rng.normal(0.0, 1.0, (n, J))
    likelihood = _Likelihood(host, errors, fixed, sel, u, np.zeros((n, J)), np.zeros((n, J), dtype=bool))
    n_obs = likelihood.pos.size
    host.f = rng.uniform(0.5, 3.0, (B, n_obs))
    host.f[2, 1] = np.nan
    host.df = rng.standard_normal((B, n_obs, p))
    n_e = likelihood.n_e
    e = rng.uniform(0.1, 0.4, (B, n_e))
    psi = np.zeros((B, n, p))
    got = likelihood(psi, e)
    likelihood.use_kernel = False
    want = likelihood(psi, e)
    assert np.isneginf(got[0][2]) and np.all(got[1][2] == 0) and np.all(got[2][2] == 0)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    assert np.all(np.isfinite(got[0][[0, 1, 3]]))
