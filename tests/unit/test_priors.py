"""Priors (issue 16): densities against scipy.stats, model-file syntax and errors, the shipped MSC priors re-derived
by the documented rule, and maximum a posteriori fits (flat prior = ML; conjugate normal = closed form)."""

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tomllib
from scipy import stats

import pkpd
from pkpd.errors import FitError, ModelFileError, PkpdError
from pkpd.load import dump_model, model_from_dict
from pkpd.priors import (
    HalfNormalPrior,
    InverseWishart,
    LogitNormalPrior,
    LogNormalPrior,
    NormalPrior,
    UniformPrior,
    prior_from_range,
)

MODELS = Path(__file__).resolve().parents[2] / "models"
X = np.array([0.05, 0.3, 0.7, 1.0, 2.5, 9.0])


def test_log_densities_equal_scipy():
    assert LogNormalPrior(2.0, 0.4).log_density(X) == pytest.approx(stats.lognorm(0.4, scale=2.0).logpdf(X))
    assert NormalPrior(1.0, 0.5).log_density(X) == pytest.approx(stats.norm(1.0, 0.5).logpdf(X))
    assert UniformPrior(0.1, 4.0).log_density(X[1:5]) == pytest.approx(stats.uniform(0.1, 3.9).logpdf(X[1:5]))
    assert HalfNormalPrior(1.5).log_density(X) == pytest.approx(stats.halfnorm(scale=1.5).logpdf(X))
    # logit-normal: the normal density of logit(x) times |d logit / dx| = 1 / (x (1 - x))
    p = np.array([0.05, 0.3, 0.7, 0.95])
    expected = stats.norm(np.log(0.2 / 0.8), 0.7).logpdf(np.log(p / (1 - p))) - np.log(p * (1 - p))
    assert LogitNormalPrior(0.2, 0.7).log_density(p) == pytest.approx(expected)
    om = np.array([[0.2, 0.05], [0.05, 0.1]])
    iw = InverseWishart([[0.1, 0.02], [0.02, 0.3]], df=6)
    assert float(iw.log_density(om)) == pytest.approx(stats.invwishart(6, 6 * iw.matrix).logpdf(om))
    assert LogNormalPrior.from_cv(2.0, 0.5).sigma == pytest.approx(math.sqrt(math.log(1.25)))
    assert float(LogNormalPrior(1.0, 1.0).log_density(-1.0)) == -math.inf


def test_prior_table_in_a_model_file_round_trips(tmp_path):
    text = (MODELS / "pk_1cmt_iv.toml").read_text()
    text = text.replace('[parameters.V]', 'prior = { dist = "lognormal", median = 2.5, cv = 0.4, source = "Smith", '
                        'grade = "B" }\n\n[parameters.V]', 1)
    path = tmp_path / "m.toml"
    path.write_text(text)
    m = pkpd.load_model(path)
    p = m.parameter("CL").prior
    assert isinstance(p, LogNormalPrior) and p.median == 2.5 and p.source == "Smith" and p.grade == "B"
    assert model_from_dict(tomllib.loads(dump_model(m))) == m


@pytest.mark.parametrize("table, message", [
    ('{ dist = "lognormal", median = 500.0, cv = 0.4 }', "outside the parameter's bounds"),
    ('{ dist = "gamma", shape = 2.0 }', "dist must be one of"),
    ('{ dist = "normal", mean = 2.0 }', "needs the key 'sd'"),
    ('{ dist = "lognormal", median = 2.0, cv = 0.4, sigma = 0.3 }', "exactly one of"),
    ('{ dist = "normal", mean = 2.0, sd = 1.0, spread = 3 }', "unknown key"),
    ('{ dist = "lognormal", median = "2", cv = 0.4 }', "must be a number"),
])
def test_bad_priors_in_a_model_file_are_clear_errors(tmp_path, table, message):
    text = (MODELS / "pk_1cmt_iv.toml").read_text()
    text = text.replace('[parameters.V]', f'prior = {table}\n\n[parameters.V]', 1)
    path = tmp_path / "m.toml"
    path.write_text(text)
    with pytest.raises(ModelFileError, match=re.escape(message)) as err:
        pkpd.load_model(path)
    assert "parameters.CL" in str(err.value)


def test_improper_and_unsuitable_priors_are_refused():
    with pytest.raises(ModelFileError, match="improper"):
        pkpd.priors.prior_from_dict({"dist": "uniform"}, (0.0, math.inf))
    with pytest.raises(ModelFileError, match="on its bounds"):
        pkpd.load_model("pk_1cmt_iv").with_priors(CL=UniformPrior(1.0, 2.0))
    with pytest.raises(ModelFileError, match="positive parameters"):
        pkpd.priors.prior_from_dict({"dist": "lognormal", "median": 1.0, "cv": 0.3}, (-1.0, 5.0))
    with pytest.raises(ModelFileError, match="fractions"):
        pkpd.priors.prior_from_dict({"dist": "logitnormal", "median": 0.5, "sigma": 1.0}, (0.0, 2.0))
    with pytest.raises(PkpdError, match="df must be"):
        InverseWishart([[0.1, 0.0], [0.0, 0.1]], df=0.5)


def test_shipped_msc_priors_follow_the_documented_rule():
    for name in ("msc_salvadori", "msc_sepsis", "msc_biodistribution"):
        m = pkpd.load_model(name)
        for p in m.parameters:
            assert p.prior is not None, f"{name}.{p.name} has no prior"
            grade = p.prior.grade
            # assumptions are grade D; otherwise the weakest grade the source names
            letters = sum((g.split("/") for g in re.findall(r"grade ([A-D](?:/[A-D])*)", p.source)), [])
            assert grade == ("D" if p.assumption else max(letters)), (name, p.name)
            fraction = p.unit == "1" and p.bounds[0] >= 0 and p.bounds[1] <= 1
            expected = prior_from_range(p.value, p.bounds, grade, fraction=fraction)
            assert p.prior == expected, (name, p.name)


# ---------------------------------------------------------------------------------------------------- MAP
def _pk_data():
    t = np.array([0.5, 1, 2, 4, 8, 12, 24])
    conc = pkpd.Proportional(cv=0.1).sample(100 / 32 * np.exp(-2.8 / 32 * t), np.random.default_rng(0))
    return pd.DataFrame({"ID": 1, "TIME": np.r_[0, t], "EVID": [1] + [0] * 7, "AMT": [100] + [0] * 7,
                         "AMTU": "mg", "DV": np.r_[np.nan, conc]})


def test_map_with_a_flat_prior_is_the_maximum_likelihood_fit():
    m = pkpd.load_model("pk_1cmt_iv").with_bounds(CL=(0.1, 50.0), V=(1.0, 500.0))
    err = {"conc": pkpd.Proportional(cv=0.2)}
    ml = pkpd.fit(m, _pk_data(), estimate=["CL", "V"], error=err)
    flat = pkpd.fit(m, _pk_data(), estimate=["CL", "V"], error=err,
                    priors={"CL": UniformPrior(0.1, 50.0), "V": UniformPrior(1.0, 500.0)})
    for n in ("CL", "V", "conc.cv"):
        assert flat.estimates[n] == pytest.approx(ml.estimates[n], rel=1e-5)
    # the objective differs by the constant -2 log prior = 2 log(range widths)
    assert flat.objective - ml.objective == pytest.approx(2 * math.log(49.9 * 499.0), abs=1e-4)
    # which is the prior's part of the objective; a fit without priors has none
    assert flat.prior_objective == pytest.approx(2 * math.log(49.9 * 499.0), rel=1e-12)
    assert ml.prior_objective == 0.0


def _linear_model():
    return pkpd.Model(
        name="line", time_unit="h",
        parameters=(pkpd.Parameter("a", 0.0, "mg/L", (-100.0, 100.0)),
                    pkpd.Parameter("b", 0.0, "mg/L/h", (-100.0, 100.0))),
        states=(pkpd.State("A", "mg/L", "0", "0 * b"),),
        outputs=(pkpd.Output("y", "A + a + b * t", "mg/L"),))


def test_map_with_a_conjugate_normal_prior_is_the_closed_form_posterior_mode():
    t = np.linspace(1.0, 10.0, 8)
    y = 2.0 + 0.5 * t + np.random.default_rng(3).normal(0, 0.4, t.size)
    data = pd.DataFrame({"ID": 1, "TIME": t, "EVID": 0, "AMT": 0.0, "DV": y})
    sd = 0.4
    prior_mean, prior_sd = np.array([1.0, 1.0]), np.array([0.5, 0.2])
    res = pkpd.fit(_linear_model(), data, estimate=["a", "b"], error={"y": pkpd.Additive(sd=sd, fixed=True)},
                   priors={"a": NormalPrior(1.0, 0.5), "b": NormalPrior(1.0, 0.2)})
    Xd = np.column_stack([np.ones_like(t), t])
    precision = Xd.T @ Xd / sd ** 2 + np.diag(1 / prior_sd ** 2)
    mode = np.linalg.solve(precision, Xd.T @ y / sd ** 2 + prior_mean / prior_sd ** 2)
    assert [res.estimates["a"], res.estimates["b"]] == pytest.approx(mode, rel=1e-6)
    # the covariance of a MAP fit is the posterior's (exact here: the posterior is normal)
    post_sd = np.sqrt(np.diag(np.linalg.inv(precision)))
    assert [res.se["a"], res.se["b"]] == pytest.approx(post_sd, rel=1e-3)
    assert res.prior_sd_ratio["a"] == pytest.approx(post_sd[0] / 0.5, rel=1e-3)


def test_prior_sd_ratio_tells_what_the_data_informed():
    m = pkpd.load_model("pk_1cmt_iv")
    res = pkpd.fit(m, _pk_data(), estimate=["CL", "V"], error={"conc": pkpd.Proportional(cv=0.2)},
                   priors={"CL": LogNormalPrior(2.0, 0.05), "V": LogNormalPrior(30.0, 2.0)})
    assert res.prior_sd_ratio["CL"] > 0.7 > 0.1 > res.prior_sd_ratio["V"]
    assert "informed mainly by the prior" in res.message and "CL" in res.message


def test_bad_prior_arguments_of_fits():
    m = pkpd.load_model("pk_1cmt_iv")
    err = {"conc": pkpd.Proportional(cv=0.2)}
    with pytest.raises(FitError, match="not a parameter of model"):
        pkpd.fit(m, _pk_data(), estimate=["CL"], error=err, priors={"Cl": NormalPrior(1.0, 1.0)})
    with pytest.raises(FitError, match="not estimated"):
        pkpd.fit(m, _pk_data(), estimate=["CL"], error=err, priors={"V": LogNormalPrior(30.0, 1.0)})
    with pytest.raises(FitError, match="outside the parameter's bounds"):
        pkpd.fit(m, _pk_data(), estimate=["CL"], error=err, priors={"CL": LogNormalPrior(500.0, 1.0)})


def test_population_map_with_theta_and_omega_priors():
    data = Path(__file__).resolve().parents[1] / "data" / "wang2007" / "wang2007.csv"
    base = pkpd.fit_population("wang2007", data, iiv={"ke": 0.04}, error=pkpd.Additive(sd=0.3), covariance=None)
    model = pkpd.load_model("wang2007").with_priors(ke=LogNormalPrior(0.3, 0.05))
    strong = pkpd.fit_population(model, data, iiv={"ke": 0.04}, error=pkpd.Additive(sd=0.3), priors=True,
                                 omega_prior=InverseWishart({"ke": 0.5}, df=50))
    # a tight prior pulls the typical value and Omega towards the prior
    assert abs(math.log(strong.theta["ke"] / 0.3)) < abs(math.log(base.theta["ke"] / 0.3))
    assert strong.omega[0, 0] > base.omega[0, 0]
    assert math.isfinite(strong.prior_objective)
    assert "posterior" in strong.covariance_message
    assert strong.parameters.set_index("name").loc["ke", "prior_sd_ratio"] > 0.5


def test_the_prior_term_of_a_population_map_fit_adds_its_own_gradient():
    """_PriorRun (a MAP population fit) adds -2 log prior and its gradient to the run's: for a quadratic prior
    sum((x - c)^2 / s^2) the gradient is 2 (x - c) / s^2, analytic; the run's own value and gradient pass through."""
    from pkpd.estimation.population_fit import _PriorRun

    c, s = np.array([1.0, -2.0, 0.5]), np.array([0.5, 2.0, 1.0])

    class Run:
        def value_and_gradient(self, x):
            return 3.0, np.array([1.0, 1.0, 1.0])

    prior = _PriorRun(Run(), lambda X: np.sum((X - c) ** 2 / s**2, axis=1))
    x = np.array([0.3, 0.1, -0.4])
    f, g = prior.value_and_gradient(x)
    assert f == pytest.approx(3.0 + np.sum((x - c) ** 2 / s**2), rel=1e-12)
    np.testing.assert_allclose(g, 1.0 + 2 * (x - c) / s**2, rtol=1e-7)
