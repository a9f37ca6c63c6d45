"""Unit tests for pkpd.error_models (issue 4): densities against scipy.stats, sampling moments, censoring rules.

Each error model is checked against an independent implementation (scipy.stats distributions), one behaviour per
test; the BLQ rules against their definitions in Beal (2001).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

import pkpd
from pkpd.errors import FitError

F = np.array([0.5, 2.0, 10.0, 150.0])
Y = np.array([0.7, 1.5, 12.0, 140.0])


@pytest.mark.parametrize("model, sd", [
    (pkpd.Additive(sd=0.8), lambda f: 0.8 + 0 * f),
    (pkpd.Proportional(cv=0.15), lambda f: 0.15 * f),
    (pkpd.Combined(sd=0.8, cv=0.15, convention="variance"), lambda f: np.sqrt(0.8**2 + (0.15 * f) ** 2)),
    (pkpd.Combined(sd=0.8, cv=0.15, convention="sd"), lambda f: 0.8 + 0.15 * f),
], ids=["additive", "proportional", "combined-variance", "combined-sd"])
def test_normal_error_models_match_scipy_normal_density(model, sd):
    expected = stats.norm.logpdf(Y, loc=F, scale=sd(F))
    np.testing.assert_allclose(model.log_likelihood(Y, F), expected, rtol=1e-13)
    np.testing.assert_allclose(model.standard_deviation(F), sd(F), rtol=1e-14)


def test_lognormal_density_is_scipys_lognorm_on_the_natural_scale():
    model = pkpd.LogNormal(sigma=0.3)
    expected = stats.lognorm.logpdf(Y, s=0.3, scale=F)
    np.testing.assert_allclose(model.log_likelihood(Y, F), expected, rtol=1e-12)


@pytest.mark.parametrize("model", [pkpd.Additive(sd=0.8), pkpd.Combined(sd=0.8, cv=0.15, convention="variance"),
                                   pkpd.LogNormal(sigma=0.3)])
def test_log_cdf_matches_scipy(model):
    limit = np.full(F.size, 1.0)
    if model.log_scale:
        expected = stats.lognorm.logcdf(limit, s=0.3, scale=F)
    else:
        expected = stats.norm.logcdf(limit, loc=F, scale=model.standard_deviation(F))
    np.testing.assert_allclose(model.log_cdf(limit, F), expected, rtol=1e-12)


def test_combined_sd_convention_gives_a_larger_sd_than_the_variance_convention():
    f = np.array([1.0, 10.0, 100.0])
    var = pkpd.Combined(sd=1.0, cv=0.1, convention="variance").standard_deviation(f)
    sd = pkpd.Combined(sd=1.0, cv=0.1, convention="sd").standard_deviation(f)
    assert np.all(sd > var)


@pytest.mark.parametrize("model", [pkpd.Proportional(cv=0.2), pkpd.Combined(sd=2.0, cv=0.1, convention="variance"),
                                   pkpd.LogNormal(sigma=0.25)])
def test_samples_have_the_stated_standard_deviation(model):
    rng = np.random.default_rng(7)
    f = np.full(200_000, 40.0)
    y = model.sample(f, rng)
    if model.log_scale:
        spread = np.std(np.log(y) - np.log(f))
    else:
        spread = np.std(y - f)
    # 200,000 draws: the sample SD is within 1 % of the truth (its own relative SE is 0.16 %)
    assert spread == pytest.approx(float(model.standard_deviation(f[:1])[0]), rel=0.01)


def test_sample_requires_a_generator():
    with pytest.raises(FitError, match="default_rng"):
        pkpd.Additive(sd=1.0).sample(F, 42)


def test_m3_gives_a_censored_observation_the_probability_of_being_below_the_limit():
    err = pkpd.Additive(sd=2.0)
    ll = pkpd.M3().log_likelihood(err, [3.0, 7.0], [5.0, 5.0], [3.0, np.nan], [True, False])
    assert ll[0] == pytest.approx(stats.norm.logcdf(3.0, 5.0, 2.0), rel=1e-13)
    assert ll[1] == pytest.approx(stats.norm.logpdf(7.0, 5.0, 2.0), rel=1e-13)


def test_m4_conditions_on_positive_values():
    err = pkpd.Additive(sd=2.0)
    ll = pkpd.M4().log_likelihood(err, [3.0, 7.0], [1.0, 1.0], [3.0, np.nan], [True, False])
    positive = stats.norm.sf(0.0, 1.0, 2.0)
    assert ll[0] == pytest.approx(np.log((stats.norm.cdf(3.0, 1, 2) - stats.norm.cdf(0.0, 1, 2)) / positive))
    assert ll[1] == pytest.approx(stats.norm.logpdf(7.0, 1.0, 2.0) - np.log(positive))


def test_m4_is_m3_for_lognormal_errors():
    err = pkpd.LogNormal(sigma=0.4)
    args = ([0.5, 3.0], [1.0, 2.0], [0.5, np.nan], [True, False])
    np.testing.assert_allclose(pkpd.M4().log_likelihood(err, *args), pkpd.M3().log_likelihood(err, *args))


def test_m1_drops_censored_observations():
    ll = pkpd.M1().log_likelihood(pkpd.Additive(sd=1.0), [0.2, 2.0], [1.0, 2.0], [0.5, np.nan], [True, False])
    assert ll[0] == 0.0 and pkpd.M1.counts_censored is False


def test_m4_censored_likelihood_is_accurate_far_in_the_upper_tail():
    # 0 and the limit both 40 SD above the prediction: a naive Phi(a) - Phi(b) cancels to 0 and log gives -inf;
    # given Y > 0, Y is then almost surely within (0, 1), so the likelihood is 1
    err = pkpd.Additive(sd=1.0)
    ll = pkpd.M4().log_likelihood(err, [0.5], [-40.0], [1.0], [True])
    assert ll[0] == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("make, message", [
    (lambda: pkpd.Additive(sd=-1.0), "finite and >= 0"),
    (lambda: pkpd.Proportional(cv=0.0), "cannot be estimated"),
    (lambda: pkpd.Combined(sd=1.0, cv=0.1, convention="sum"), "convention must be 'variance'"),
    (lambda: pkpd.Combined(sd=0.0, cv=0.0, convention="sd", fixed=True), "both 0"),
    (lambda: pkpd.LogNormal(sigma=0.2, fixed=("sd",)), "unknown parameter 'sd'"),
    (lambda: pkpd.Additive(sd="1"), "must be a number"),
])
def test_bad_error_model_values_are_rejected_with_the_fix(make, message):
    with pytest.raises(FitError, match=message):
        make()


def test_fixed_accepts_true_and_names():
    assert pkpd.Combined(sd=0.0, cv=0.1, convention="variance", fixed=("sd",)).fixed == ("sd",)
    assert pkpd.Proportional(cv=0.1, fixed=True).fixed == ("cv",)


def test_error_models_are_frozen():
    err = pkpd.Additive(sd=1.0)
    with pytest.raises(AttributeError):
        err.sd = 2.0
