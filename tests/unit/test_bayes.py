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


def test_the_posterior_of_a_conjugate_normal_model_is_the_closed_form():
    t = np.linspace(1.0, 10.0, 8)
    sd = 0.4
    y = 4.75 + 0.5 * (t - 5.5) + np.random.default_rng(3).normal(0, sd, t.size)
    data = pd.DataFrame({"ID": 1, "TIME": t, "EVID": 0, "AMT": 0.0, "DV": y})
    post = pkpd.sample(_line(), data, estimate=["a", "b"], error={"y": pkpd.Additive(sd=sd, fixed=True)}, seed=1,
                       n_warmup=150, n_draws=150)
    Xd = np.column_stack([np.ones_like(t), t - 5.5])
    precision = Xd.T @ Xd / sd ** 2 + np.diag([1 / 0.25, 1 / 0.04])
    cov = np.linalg.inv(precision)
    mean = cov @ (Xd.T @ y / sd ** 2 + np.array([4.0 / 0.25, 1.0 / 0.04]))
    s = post.summary.set_index("name")
    for k, name in enumerate(("a", "b")):
        mc_error = math.sqrt(cov[k, k] / s.loc[name, "ess_bulk"])
        assert s.loc[name, "mean"] == pytest.approx(mean[k], abs=4 * mc_error)
        assert s.loc[name, "sd"] == pytest.approx(math.sqrt(cov[k, k]), rel=0.15)
        assert s.loc[name, "rhat"] < 1.02
    assert post.divergences == 0
    assert post.draws["a"].shape == (4, 150)


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
