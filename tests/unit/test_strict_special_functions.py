"""The censored (M3/M4) likelihoods give the same numbers whatever the caller's ``scipy.special`` error settings.

``scipy.special.log_ndtr(z)`` signals erfc's underflow for z above about 20 (on the way to its exact value, 0 to
rounding) and a domain error for NaN. A record below the LLOQ whose prediction is far below the limit (a late sample
with a proportional error: z = (LLOQ - f) / (cv f) runs into the thousands) has such a z, so under
``scipy.special.errstate(all="raise")`` (or ``seterr``) every censored likelihood of pkpd raised SpecialFunctionError
for a value it should have returned.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.special

import pkpd
from pkpd.error_models import M3, M4, Additive

DATA = Path(__file__).resolve().parents[1] / "data"


def _log_phi_upper(z: float) -> float:
    """log Phi(z) for large z by hand: log(1 - Q) = -Q to rounding, Q = erfc(z / sqrt 2) / 2."""
    return -0.5 * math.erfc(z / math.sqrt(2.0))


@pytest.mark.parametrize("z", [21.6, 30.0, 37.0, 40.0, 1e3])
def test_m3_of_a_limit_far_above_the_prediction_is_log_phi_under_strict_special_functions(z):
    """M3: a censored record with limit z SDs above its prediction has log-likelihood log Phi(z), -Q(z) to rounding
    (4.9e-198 at z = 30, exactly 0 in double precision from z = 38.5), under strict settings as under the default."""
    with scipy.special.errstate(all="raise"):
        got = M3().log_likelihood(Additive(sd=1.0), np.array([np.nan]), np.array([0.0]), np.array([z]),
                                  np.array([True]))
    assert got.shape == (1,) and got[0] <= 0.0
    assert got[0] == pytest.approx(_log_phi_upper(z), rel=1e-9, abs=1e-300)


def test_m4_of_quantified_and_censored_records_is_the_same_under_strict_special_functions():
    """M4 (additive sd 1): a quantified record (DV 2, f 1.5: the normal log density minus log Phi(1.5)) and a
    censored one at limit 25 with f 0.5: log(Phi(24.5) - Phi(-0.5)) - log Phi(0.5), by hand; its below-the-limit
    term is evaluated at every record and thrown away at the quantified one (limit NaN there)."""
    f = np.array([1.5, 0.5])
    args = (Additive(sd=1.0), np.array([2.0, np.nan]), f, np.array([np.nan, 25.0]), np.array([False, True]))
    with scipy.special.errstate(all="raise"):
        got = M4().log_likelihood(*args)
    phi = lambda x: 0.5 * math.erfc(-x / math.sqrt(2.0))    # noqa: E731
    quantified = -0.5 * math.log(2 * math.pi) - 0.5 * 0.5 ** 2 - math.log(phi(1.5))
    censored = math.log(phi(24.5) - phi(-0.5)) - math.log(phi(0.5))
    np.testing.assert_allclose(got, [quantified, censored], rtol=1e-12, atol=1e-15)   # censored: log 1 = 0
    np.testing.assert_array_equal(got, M4().log_likelihood(*args))


def _late_blq_study(n_subjects: int) -> pd.DataFrame:
    """pk_1cmt_iv, 100 mg bolus, samples at 1, 2, 4 and 8 h (conc = 5 exp(-0.05 t) x a fixed spread) and one at
    200 h below its LLOQ of 0.05 mg/L, predicted about 2e-4 mg/L: with a proportional error of CV 0.1 its z is
    (0.05 - 2e-4) / 2e-5, some 2,500."""
    rows = []
    for i in range(1, n_subjects + 1):
        rows.append(dict(ID=i, TIME=0.0, EVID=1, AMT=100.0, DV=np.nan, LLOQ=np.nan))
        for k, t in enumerate((1.0, 2.0, 4.0, 8.0)):
            spread = 1 + 0.05 * ((i + k) % 3 - 1)
            rows.append(dict(ID=i, TIME=t, EVID=0, AMT=0.0, DV=5.0 * math.exp(-0.05 * t) * spread, LLOQ=0.05))
        rows.append(dict(ID=i, TIME=200.0, EVID=0, AMT=0.0, DV=0.01, LLOQ=0.05))
    return pd.DataFrame(rows).assign(AMTU="mg")


def test_an_individual_m3_fit_with_a_late_blq_sample_is_the_same_under_strict_special_functions():
    """pkpd.fit with M3 of one subject with a late sample below the LLOQ (z in the thousands at every trial value):
    the same estimates and objective under ``scipy.special.errstate(all="raise")`` as under the default settings,
    to the last bit (it raised SpecialFunctionError)."""
    model = pkpd.load_model("pk_1cmt_iv")
    kw = dict(estimate=["CL", "V"], error={"conc": pkpd.Proportional(cv=0.1)}, blq="M3")
    data = _late_blq_study(1)
    plain = pkpd.fit(model, data, **kw)
    with scipy.special.errstate(all="raise"):
        strict = pkpd.fit(model, data, **kw)
    assert plain.converged and strict.objective == plain.objective and np.isfinite(plain.objective)
    assert strict.estimates == plain.estimates


@pytest.mark.parametrize("method, engine", [("laplace", "compiled"), ("laplace", "finite differences"),
                                            ("saem", "compiled")])
def test_a_population_m3_fit_with_late_blq_samples_is_the_same_under_strict_special_functions(method, engine,
                                                                                              monkeypatch):
    """fit_population with M3 of four subjects with a late sample below the LLOQ (Laplace on the compiled objective
    and on the finite-difference one, as where no C compiler is found, and SAEM's imputation of the censored
    records): the same estimates and objective under strict ``scipy.special`` settings as under the
    default, to the last bit (the finite-difference objective and SAEM raised SpecialFunctionError)."""
    from pkpd.estimation import _compiled

    if engine == "finite differences":
        monkeypatch.setattr(_compiled, "available", lambda: False)
    model = pkpd.load_model("pk_1cmt_iv")
    kw = dict(estimate=["CL", "V"], iiv={"CL": 0.1}, error={"conc": pkpd.Proportional(cv=0.1)}, blq=pkpd.M3(),
              method=method, covariance=None)
    if method == "saem":
        kw.update(seed=1, saem=pkpd.SaemSettings(exploratory=5, smoothing=5), is_samples=200)
    else:
        kw.update(maxeval=3)
    data = _late_blq_study(4)
    plain = pkpd.fit_population(model, data, **kw)
    with scipy.special.errstate(all="raise"):
        strict = pkpd.fit_population(model, data, **kw)
    assert plain.engine.startswith(engine)
    assert strict.minus2ll == plain.minus2ll and np.isfinite(plain.minus2ll)
    assert strict.parameters.equals(plain.parameters)
