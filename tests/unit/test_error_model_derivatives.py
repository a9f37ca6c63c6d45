"""The derivatives of each error model's standard deviation, which the fitter's gradients use (issue 20 audit).

``_scale(f)`` returns the standard deviation at predictions ``f``, its derivative in ``f`` and its derivative in
each error parameter; they must equal central differences of ``standard_deviation`` (public). A wrong one gives the
fitter a wrong gradient (a fit that stops away from its optimum, see tests/reference/test_censored_fits.py).
"""

import dataclasses

import numpy as np
import pytest

import pkpd

MODELS = [pkpd.Additive(sd=0.7), pkpd.Proportional(cv=0.15), pkpd.LogNormal(sigma=0.3),
          pkpd.Combined(sd=0.5, cv=0.2, convention="variance"), pkpd.Combined(sd=0.5, cv=0.2, convention="sd")]
F = np.array([0.3, 1.0, 4.0, 25.0])


@pytest.mark.parametrize("model", MODELS, ids=lambda m: f"{type(m).__name__}-{getattr(m, 'convention', '')}")
def test_sd_derivatives_equal_central_differences(model):
    sd, dsdf, dsdp = model._scale(F)
    np.testing.assert_allclose(sd, model.standard_deviation(F), rtol=1e-15)
    h = 1e-6 * F
    fd = (model.standard_deviation(F + h) - model.standard_deviation(F - h)) / (2 * h)
    np.testing.assert_allclose(dsdf, fd, rtol=1e-6, atol=1e-12)
    assert set(dsdp) == set(model.parameter_names)
    for name in model.parameter_names:
        p = getattr(model, name)
        up = dataclasses.replace(model, **{name: p * (1 + 1e-6)}).standard_deviation(F)
        down = dataclasses.replace(model, **{name: p * (1 - 1e-6)}).standard_deviation(F)
        np.testing.assert_allclose(dsdp[name], (up - down) / (2e-6 * p), rtol=1e-6, err_msg=name)


@pytest.mark.parametrize("model", MODELS, ids=lambda m: f"{type(m).__name__}-{getattr(m, 'convention', '')}")
def test_the_sd_is_the_documented_formula(model):
    a, b = getattr(model, "sd", None), getattr(model, "cv", None)
    expected = {"Additive": lambda: np.full(F.shape, a), "Proportional": lambda: b * F,
                "LogNormal": lambda: np.full(F.shape, model.sigma),
                "Combined": lambda: np.sqrt(a**2 + (b * F) ** 2) if model.convention == "variance" else a + b * F}
    np.testing.assert_allclose(model.standard_deviation(F), expected[type(model).__name__](), rtol=1e-15)


def test_values_and_fixed_parameters():
    model = pkpd.Combined(sd=0.5, cv=0.2, convention="sd", fixed=("cv",))
    assert model.values() == {"sd": 0.5, "cv": 0.2}
    assert model.fixed == ("cv",)
    assert pkpd.Combined(sd=0.5, cv=0.2, convention="sd", fixed=True).fixed == ("sd", "cv")
    assert pkpd.Additive(sd=1.0).fixed == ()
    assert pkpd.LogNormal(sigma=0.1).log_scale and not pkpd.Proportional(cv=0.1).log_scale
