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
    (lambda: pkpd.Additive(sd=-1.0), "Additive: sd must be finite and >= 0"),
    (lambda: pkpd.Proportional(cv=0.0), "Proportional: cv = 0 cannot be estimated"),
    (lambda: pkpd.Combined(sd=1.0, cv=np.inf, convention="sd"), "Combined: cv must be finite"),
    (lambda: pkpd.Combined(sd=1.0, cv=0.1, convention="sum"), "convention must be 'variance'"),
    (lambda: pkpd.Combined(sd=0.0, cv=0.0, convention="sd", fixed=True), "both 0"),
    (lambda: pkpd.LogNormal(sigma=0.2, fixed=("sd",)), "unknown parameter 'sd'"),
    (lambda: pkpd.Additive(sd="1"), "Additive: sd must be a number"),
])
def test_bad_error_model_values_are_rejected_with_the_fix(make, message):
    with pytest.raises(FitError, match=message):
        make()


def test_fixed_accepts_true_and_names():
    assert pkpd.Combined(sd=0.0, cv=0.1, convention="variance", fixed=("sd",)).fixed == ("sd",)
    assert pkpd.Proportional(cv=0.1, fixed=True).fixed == ("cv",)
    # one name as a plain string, and names given in any order come back in the model's order
    assert pkpd.Combined(sd=0.0, cv=0.1, convention="variance", fixed="sd").fixed == ("sd",)
    assert pkpd.Combined(sd=0.5, cv=0.1, convention="sd", fixed=["cv", "sd"]).fixed == ("sd", "cv")


def test_error_models_are_frozen():
    err = pkpd.Additive(sd=1.0)
    with pytest.raises(AttributeError):
        err.sd = 2.0


# ---- found by the mutation audit of error_models.py (issue 20): each test below fails on a one-line change
ALL_MODELS = [pkpd.Additive(sd=0.8), pkpd.Proportional(cv=0.15), pkpd.LogNormal(sigma=0.3),
              pkpd.Combined(sd=0.8, cv=0.15, convention="variance"), pkpd.Combined(sd=0.8, cv=0.15, convention="sd")]
MODEL_IDS = ["additive", "proportional", "lognormal", "combined-variance", "combined-sd"]


def _scipy_logpdf(model, y, f):
    y, f = np.asarray(y, dtype=float), np.asarray(f, dtype=float)
    if model.log_scale:
        return stats.lognorm.logpdf(y, s=model.sigma, scale=f)
    return stats.norm.logpdf(y, loc=f, scale=model.standard_deviation(f))


def _scipy_logcdf(model, limit, f):
    limit, f = np.asarray(limit, dtype=float), np.asarray(f, dtype=float)
    if model.log_scale:
        return stats.lognorm.logcdf(limit, s=model.sigma, scale=f)
    return stats.norm.logcdf(limit, loc=f, scale=model.standard_deviation(f))


# Observations below their predictions on purpose: unsigned integers would wrap round in y - f.
Y_INT, F_INT, LIMIT_INT = [3, 12, 40], [5, 10, 60], [4, 4, 50]


@pytest.mark.parametrize("convert", [
    lambda v: v,                                             # a list of Python ints
    lambda v: np.array(v, dtype=np.uint16),                  # unsigned counts
    lambda v: np.array(v, dtype=object),                     # an object column
    lambda v: __import__("pandas").Series(v, dtype=object),  # a DV column that held "BLQ" text before
], ids=["int-list", "uint16", "object-array", "object-series"])
@pytest.mark.parametrize("model", ALL_MODELS, ids=MODEL_IDS)
def test_any_numeric_input_gives_the_values_of_float_input(model, convert):
    y, f, limit = convert(Y_INT), convert(F_INT), convert(LIMIT_INT)
    f_float = np.asarray(F_INT, dtype=float)
    sd = model.standard_deviation(f)
    assert sd.dtype == float and np.array_equal(sd, model.standard_deviation(f_float))
    draws = model.sample(f, np.random.default_rng(3))
    assert draws.dtype == float and np.array_equal(draws, model.sample(f_float, np.random.default_rng(3)))
    expected_ll = _scipy_logpdf(model, Y_INT, F_INT)
    expected_cdf = _scipy_logcdf(model, LIMIT_INT, F_INT)
    np.testing.assert_allclose(np.asarray(model.log_likelihood(y, f), dtype=float), expected_ll, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(model.log_cdf(limit, f), dtype=float), expected_cdf, rtol=1e-12)
    censored = [True, False, True]
    m3 = np.where(censored, expected_cdf, expected_ll)
    np.testing.assert_allclose(np.asarray(pkpd.M3().log_likelihood(model, y, f, limit, censored), dtype=float), m3,
                               rtol=1e-12)
    if not model.log_scale:  # M4 of a normal error: everything conditioned on Y > 0
        s = model.standard_deviation(np.asarray(F_INT, dtype=float))
        positive = stats.norm.logsf(0.0, loc=F_INT, scale=s)
        below = np.log(stats.norm.cdf(LIMIT_INT, loc=F_INT, scale=s) - stats.norm.cdf(0.0, loc=F_INT, scale=s))
        np.testing.assert_allclose(
            np.asarray(pkpd.M4().log_likelihood(model, y, f, limit, censored), dtype=float),
            np.where(censored, below, expected_ll) - positive, rtol=1e-12)


@pytest.mark.parametrize("model", [pkpd.Proportional(cv=0.2), pkpd.Combined(sd=0.0, cv=0.2, convention="sd",
                                                                            fixed=("sd",))],
                         ids=["proportional", "combined-sd-0"])
def test_a_zero_standard_deviation_gives_nan_without_a_warning(model):
    # a zero prediction under a proportional error: the density and the censoring probabilities are undefined
    # (the fitter treats NaN as "cannot be evaluated here"), and no division warning escapes (pytest turns
    # warnings into errors)
    f = np.array([0.0, 2.0])
    ll = model.log_likelihood([0.0, 2.5], f)
    assert np.isnan(ll[0]) and ll[1] == pytest.approx(_scipy_logpdf(model, [2.5], [2.0])[0], rel=1e-13)
    cdf = model.log_cdf([1.0, 1.0], f)
    assert np.isnan(cdf[0]) and cdf[1] == pytest.approx(_scipy_logcdf(model, [1.0], [2.0])[0], rel=1e-13)
    for rule in (pkpd.M3(), pkpd.M4()):
        out = rule.log_likelihood(model, [0.5, 2.5], f, [1.0, np.nan], [True, False])
        assert np.isnan(out[0]) and np.isfinite(out[1])


def test_m1_keeps_the_density_of_the_quantified_observations():
    err = pkpd.Combined(sd=0.5, cv=0.1, convention="variance")
    ll = pkpd.M1().log_likelihood(err, [0.2, 2.0, 9.0], [1.0, 2.5, 8.0], [0.5, np.nan, np.nan], [True, False, False])
    assert ll.dtype == float
    np.testing.assert_allclose(ll, [0.0, *_scipy_logpdf(err, [2.0, 9.0], [2.5, 8.0])], rtol=1e-13)


@pytest.mark.parametrize("model", [m for m in ALL_MODELS if not m.log_scale],
                         ids=[i for i, m in zip(MODEL_IDS, ALL_MODELS) if not m.log_scale])
def test_m4_with_a_prediction_dependent_sd_is_the_truncated_normal(model):
    # the SD is taken at each prediction (not one SD for all): P(0 < Y < L) / P(Y > 0) and f(y) / P(Y > 0)
    f = np.array([0.5, 3.0, 20.0])
    limit = np.array([0.6, 0.6, 0.6])
    y = np.array([0.4, 2.0, 25.0])
    censored = np.array([True, False, False])
    s = model.standard_deviation(f)
    positive = stats.norm.logsf(0.0, loc=f, scale=s)
    below = np.log(stats.norm.cdf(limit, loc=f, scale=s) - stats.norm.cdf(0.0, loc=f, scale=s))
    expected = np.where(censored, below, stats.norm.logpdf(y, loc=f, scale=s)) - positive
    np.testing.assert_allclose(pkpd.M4().log_likelihood(model, y, f, limit, censored), expected, rtol=1e-12)


@pytest.mark.parametrize("model", ALL_MODELS, ids=MODEL_IDS)
def test_a_sample_is_the_prediction_moved_by_the_generators_standard_normals(model):
    # y = f + sd * eps (normal models) or f * exp(sigma * eps) (log-normal), eps the generator's standard normal
    # draws: the same seed gives the same study, and a positive eps puts the observation above the prediction in
    # every model
    f = np.array([0.5, 4.0, 30.0, 30.0])
    eps = np.random.default_rng(11).standard_normal(f.size)
    y = model.sample(f, np.random.default_rng(11))
    if model.log_scale:
        np.testing.assert_allclose(y, f * np.exp(model.sigma * eps), rtol=1e-15)
    else:
        np.testing.assert_allclose(y, f + model.standard_deviation(f) * eps, rtol=1e-15)
    assert np.array_equal(y > f, eps > 0)


def test_a_combined_error_with_no_additive_part_has_sd_0_at_a_zero_prediction():
    model = pkpd.Combined(sd=0.0, cv=0.2, convention="variance", fixed=("sd",))
    np.testing.assert_array_equal(model.standard_deviation([0.0, 2.0]), [0.0, 0.4])  # and no 0/0 warning


def test_log_of_a_normal_probability_between_two_bounds_is_accurate_in_both_tails():
    from pkpd.error_models import _log_diff_ndtr

    # log(Phi(a) - Phi(b)), references written with scipy where they do not cancel: the lower tail from cdf, the
    # upper tail from the survival function (cdf would round 1 - 1e-186 to 1)
    a = np.array([1.0, -5.0, 6.0, 30.0, 0.5])
    b = np.array([-1.0, -6.0, 5.0, 29.0, 0.5])
    reference = np.array([
        np.log(stats.norm.cdf(1.0) - stats.norm.cdf(-1.0)),
        np.log(stats.norm.cdf(-5.0) - stats.norm.cdf(-6.0)),
        np.log(stats.norm.sf(5.0) - stats.norm.sf(6.0)),
        np.log(stats.norm.sf(29.0) - stats.norm.sf(30.0)),
        -np.inf,                                    # an empty interval: probability 0, and no warning
    ])
    np.testing.assert_allclose(_log_diff_ndtr(a, b), reference, rtol=1e-13)
