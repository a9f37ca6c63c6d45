"""Indicator covariate effects in population fits (issue 15, item 6): NONMEM's IF (APGR.LT.5) TVV=TVV*(1+THETA(3)).

A one-compartment IV study (pk_1cmt_iv with an APGR covariate declared) in which V is 1.5 times larger in the
subjects with APGR < 5 is simulated with the analytic solution; the shared coefficient is estimated as one fixed
effect and recovered within its standard error, and the objective equals that of the same model written as a
categorical effect on a 0/1 column.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import pkpd
from pkpd.errors import FitError, PkpdError


def _model(tmp_path):
    text = (Path(pkpd.__file__).parent.parent / "models" / "pk_1cmt_iv.toml").read_text()
    text = text.replace('name = "pk_1cmt_iv"', 'name = "pk_1cmt_iv_apgr"')
    text += ('\n[covariates.APGR]\nunit = "1"\nvalue = 8\ndescription = "Apgar score"\n'
             '\n[covariates.LOW]\nunit = "1"\nvalue = 0\ndescription = "1 when APGR < 5"\n')
    path = tmp_path / "pk_1cmt_iv_apgr.toml"
    path.write_text(text)
    return pkpd.load_model(path)


def _study(n=40, seed=7):
    rng = np.random.default_rng(seed)
    apgr = rng.integers(1, 11, n).astype(float)
    times = np.array([0.5, 2, 6, 12, 24.0])
    rows = []
    for i in range(n):
        cl = 2.8 * np.exp(rng.normal(0, 0.2))
        v = 32.0 * (1.5 if apgr[i] < 5 else 1.0) * np.exp(rng.normal(0, 0.1))
        conc = 100.0 / v * np.exp(-cl / v * times)
        dv = conc * (1 + 0.08 * rng.standard_normal(times.size))
        common = dict(ID=i + 1, APGR=apgr[i], LOW=float(apgr[i] < 5), AMTU="mg")
        rows.append(dict(common, TIME=0.0, DV=".", AMT=100.0, EVID=1, CMT=1, MDV=1))
        rows += [dict(common, TIME=t, DV=y, AMT=0, EVID=0, CMT=1, MDV=0) for t, y in zip(times, dv)]
    return pd.DataFrame(rows)


def test_indicator_effect_is_estimated_as_one_fixed_effect(tmp_path):
    model = _model(tmp_path)
    data = _study()
    effect = pkpd.CovariateEffect(parameter="V", kind="indicator", condition="APGR < 5")
    assert effect.covariate == "APGR" and effect.value == 0.0
    fit = pkpd.fit_population(model, data, iiv={"CL": 0.1, "V": 0.05}, error=pkpd.Proportional(cv=0.1),
                              estimate=["CL", "V"], covariates=[effect],
                              settings=pkpd.SolverSettings(rtol=1e-6, atol=1e-8))
    assert fit.converged, fit.message
    p = fit.parameters.set_index("name")
    b, se = p.loc["[APGR < 5]_on_V", "estimate"], p.loc["[APGR < 5]_on_V", "se"]
    assert 0 < se < 0.2 and abs(b - 0.5) < 3 * se, (b, se)
    assert fit.theta["V"] == pytest.approx(32.0, rel=0.1)
    assert fit.covariate_effects[0].value == pytest.approx(b)
    assert list(p.index).count("[APGR < 5]_on_V") == 1


def test_indicator_equals_a_categorical_effect_on_a_0_1_column(tmp_path):
    model = _model(tmp_path)
    data = _study(n=12)
    kw = dict(iiv={"CL": 0.1, "V": 0.05}, error=pkpd.Proportional(cv=0.1), estimate=["CL", "V"], maxeval=0)
    a = pkpd.fit_population(model, data, covariates=[pkpd.CovariateEffect(parameter="V", kind="indicator",
                                                                           condition="APGR < 5", value=0.4)], **kw)
    b = pkpd.fit_population(model, data, covariates=[pkpd.CovariateEffect("V", "LOW", "categorical", {1: 1.4})],
                            **kw)
    assert a.objective == pytest.approx(b.objective, abs=1e-8)
    c = pkpd.fit_population(model, data, covariates=[pkpd.CovariateEffect(parameter="V", kind="indicator",
                                                                           condition="APGR >= 5", value=0.4)], **kw)
    assert abs(c.objective - a.objective) > 1.0


def test_bad_indicator_conditions_are_clear_errors(tmp_path):
    with pytest.raises(PkpdError, match="needs condition="):
        pkpd.CovariateEffect(parameter="V", kind="indicator")
    with pytest.raises(PkpdError, match="not one comparison"):
        pkpd.CovariateEffect(parameter="V", kind="indicator", condition="__import__('os').system('true')")
    with pytest.raises(PkpdError, match="must compare one covariate"):
        pkpd.CovariateEffect(parameter="V", kind="indicator", condition="APGR < WT")
    with pytest.raises(PkpdError, match="condition= is for kind='indicator'"):
        pkpd.CovariateEffect("V", "WT", "power", 1.0, condition="WT > 3")
    model = _model(tmp_path)
    data = _study(n=6)
    data["APGR"] = 9.0
    with pytest.raises(FitError, match="no subject has APGR < 5"):
        pkpd.fit_population(model, data, iiv={"CL": 0.1}, error=pkpd.Proportional(cv=0.1), maxeval=0,
                            covariates=[pkpd.CovariateEffect(parameter="V", kind="indicator", condition="APGR < 5")])


def _saved_indicator_fit(tmp_path):
    """A population fit (maxeval=0) with the indicator effect 0.4 on V where APGR < 5, saved: (fit, effect, path)."""
    effect = pkpd.CovariateEffect(parameter="V", kind="indicator", condition="APGR < 5", value=0.4)
    fit = pkpd.fit_population(_model(tmp_path), _study(n=12), iiv={"CL": 0.1, "V": 0.05},
                              error=pkpd.Proportional(cv=0.1), estimate=["CL", "V"], covariates=[effect], maxeval=0)
    path = tmp_path / "fit.json"
    fit.save(path)
    return fit, effect, path


def test_a_saved_fit_with_an_indicator_effect_loads_back_with_its_condition(tmp_path):
    """save_fit / load_fit keep an indicator effect: its condition, covariate and coefficient come back equal, and
    the loaded effect applies the same factor (1 + 0.4 where APGR < 5, 1 elsewhere). The file stored no condition
    and load_fit refused the kind ('must be one of power, linear, categorical')."""
    fit, effect, path = _saved_indicator_fit(tmp_path)
    back = pkpd.load_fit(path)
    assert back.covariate_effects == fit.covariate_effects == (effect,)
    assert back.covariate_effects[0].apply(np.array([2.0, 2.0]), {"APGR": np.array([3.0, 5.0])}).tolist() == [2.8, 2.0]
    pd.testing.assert_frame_equal(back.parameters, fit.parameters)


@pytest.mark.parametrize("condition", ["__import__('os').system('touch {s}') < 5", "APGR < 5 and CL > 1", ""])
def test_a_fit_file_whose_indicator_condition_is_not_one_comparison_is_refused_and_runs_nothing(tmp_path, condition):
    """An indicator condition read from a fit file goes through the expression language's allow-list: code, two
    covariates or nothing at all is refused naming the field, and the payload's sentinel file is never created."""
    import json

    _, _, path = _saved_indicator_fit(tmp_path)
    sentinel = tmp_path / "ran"
    doc = json.loads(path.read_text())
    doc["covariate_effects"][0]["condition"] = condition.format(s=sentinel)
    path.write_text(json.dumps(doc))
    with pytest.raises(FitError, match=r"field 'covariate_effects\[0\]\.condition': CovariateEffect on 'V'"):
        pkpd.load_fit(path)
    assert not sentinel.exists()
