"""FOCE-I on the classic theophylline data against established mixed-effects software (issue 5).

Model: one-compartment oral (models/pk_1cmt_oral.toml; F fixed at 1), log-normal IIV on ka, CL and V (diagonal
Omega), additive residual error. Reference: nlmixr2's FOCEi fit of the same model to the same data (R's
``theo_sd``, identical to tests/data/theoph.csv), the "one.compartment" example of the nlmixr2 documentation
(nlmixr2.org, README / "Getting started"), with the initial values used here (ka 1.57 -> tka 0.45, eta variances
0.6, 0.3, 0.1, add.sd 0.7):

    OBJF 116.8035 (no n log 2pi), log-likelihood -179.7016, AIC 373.4033, BIC 393.5829
    tka 0.464 (ka 1.59 1/h), tcl 1.01 (CL 2.75 L/h), tv 3.46 (V 31.8 L), add.sd 0.695 mg/L
    BSV CV% 70.5 (ka), 26.8 (CL), 14.0 (V) -> omega^2 = log(1 + CV^2) = 0.4035, 0.0694, 0.0194
    eta shrinkage (SD) 1.81 % (ka), 3.87 % (CL), 10.3 % (V)

(The values are quoted from the nlmixr2 documentation from memory of its printed output; NONMEM 7 FOCE-I gives the
same OFV to within 0.01 for this model.)
"""

import math
from pathlib import Path

import numpy as np
import pytest

import pkpd

DATA = Path(__file__).resolve().parents[1] / "data" / "theoph.csv"


@pytest.fixture(scope="module")
def fit():
    return pkpd.fit_population("pk_1cmt_oral", DATA, iiv={"ka": 0.6, "CL": 0.3, "V": 0.1},
                               error=pkpd.Additive(sd=0.7), method="focei")


def test_objective_and_information_criteria(fit):
    assert fit.converged
    assert fit.objective == pytest.approx(116.8035, abs=0.02)
    assert -fit.minus2ll / 2 == pytest.approx(-179.7016, abs=0.01)
    assert fit.aic == pytest.approx(373.4033, abs=0.02)
    assert fit.bic == pytest.approx(393.5829, abs=0.02)


def test_typical_values(fit):
    assert fit.theta["ka"] == pytest.approx(math.exp(0.464), rel=0.01)
    assert fit.theta["CL"] == pytest.approx(2.75, rel=0.01)
    assert fit.theta["V"] == pytest.approx(31.8, rel=0.01)
    assert fit.theta["F"] == 1.0
    assert fit.error["conc"].sd == pytest.approx(0.695, rel=0.01)


def test_variances_and_shrinkage(fit):
    cv = np.array([0.705, 0.268, 0.140])
    assert np.diag(fit.omega) == pytest.approx(np.log1p(cv ** 2), rel=0.03)
    assert fit.shrinkage["ka"] == pytest.approx(0.0181, abs=0.003)
    assert fit.shrinkage["CL"] == pytest.approx(0.0387, abs=0.003)
    assert fit.shrinkage["V"] == pytest.approx(0.103, abs=0.005)


def test_standard_errors_and_tables(fit):
    p = fit.parameters.set_index("name")
    # nlmixr2's sandwich SEs on the log scale: tka 0.195, tcl 0.0751, tv 0.0437 (delta method to natural scale)
    assert p.loc["ka", "se"] / p.loc["ka", "estimate"] == pytest.approx(0.195, rel=0.1)
    assert p.loc["CL", "se"] / p.loc["CL", "estimate"] == pytest.approx(0.0751, rel=0.1)
    assert p.loc["V", "se"] / p.loc["V", "estimate"] == pytest.approx(0.0437, rel=0.1)
    assert "sandwich" in fit.covariance_message
    t = fit.table
    assert len(t) == 132 and {"PRED", "IPRED", "CWRES", "ETA_ka"} <= set(t.columns)
    assert abs(t["CWRES"].mean()) < 0.3 and 0.7 < t["CWRES"].std() < 1.3
