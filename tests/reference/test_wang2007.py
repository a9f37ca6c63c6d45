"""Population objective functions against NONMEM 7.5.1: the Wang (2007) mono-exponential example (issue 5).

Data and reference values: tests/data/wang2007/ (copied from the project's shared/data/wang2007/). All parameters
fixed (NONMEM MAXEVAL=0): tke = 0.5 1/h, omega^2 = 0.04, residual SD 0.316228. The engine integrates
dA/dt = -ke*A at rtol 1e-10 so that the OFV is exact to 3 decimals.
"""

from pathlib import Path

import pytest

import pkpd
from pkpd.nlme import population_objective

DATA = Path(__file__).resolve().parents[1] / "data" / "wang2007" / "wang2007.csv"
TIGHT = pkpd.SolverSettings(rtol=1e-10, atol=1e-12)

# (error model, method) -> NONMEM 7.5.1 OFV (tests/data/wang2007/README.md)
CASES = [
    (pkpd.Proportional(cv=0.316228), "focei", 39.458),
    (pkpd.Proportional(cv=0.316228), "foce", 39.207),
    (pkpd.Additive(sd=0.316228), "focei", -2.059),
    (pkpd.Additive(sd=0.316228), "foce", -2.059),
]


@pytest.mark.parametrize(("error", "method", "nonmem"), CASES,
                         ids=[f"{type(e).__name__}-{m}" for e, m, _ in CASES])
def test_objective_equals_nonmem_to_3_decimals(error, method, nonmem):
    ofv = population_objective("wang2007", DATA, iiv={"ke": 0.04}, error=error, method=method, settings=TIGHT)
    assert round(ofv, 3) == nonmem


def test_fit_population_maxeval_0_reports_the_same_objective():
    fit = pkpd.fit_population("wang2007", DATA, iiv={"ke": 0.04}, error=pkpd.Proportional(cv=0.316228),
                              maxeval=0, settings=TIGHT)
    assert round(fit.objective, 3) == 39.458
    assert fit.minus2ll == pytest.approx(39.458 + 20 * 1.8378770664093453, abs=1e-3)
    assert "maxeval=0" in fit.message


def test_additive_error_has_no_interaction():
    # with an additive error R does not depend on eta, so FOCE and FOCE-I are the same objective
    a = population_objective("wang2007", DATA, iiv={"ke": 0.04}, error=pkpd.Additive(sd=0.316228),
                             method="focei", settings=TIGHT)
    b = population_objective("wang2007", DATA, iiv={"ke": 0.04}, error=pkpd.Additive(sd=0.316228),
                             method="foce", settings=TIGHT)
    assert a == pytest.approx(b, abs=1e-6)


def test_fo_equals_its_closed_form():
    # FO linearises at eta = 0: f = 10 exp(-0.5 t), df/deta = -ke t f; C = G omega G' + R, OFV = sum log|C| + r'C^-1 r
    import numpy as np
    import pandas as pd

    d = pd.read_csv(DATA)
    total = 0.0
    for _, sub in d.groupby("ID"):
        t, y = sub["TIME"].to_numpy(), sub["DV"].to_numpy()
        f = 10 * np.exp(-0.5 * t)
        g = -0.5 * t * f
        C = 0.04 * np.outer(g, g) + 0.1 * np.eye(t.size)
        r = y - f
        total += np.linalg.slogdet(C)[1] + r @ np.linalg.solve(C, r)
    ofv = population_objective("wang2007", DATA, iiv={"ke": 0.04}, error=pkpd.Additive(sd=0.316228), method="fo",
                               settings=TIGHT)
    assert ofv == pytest.approx(total, abs=1e-5)


def _censored_wang():
    import pandas as pd

    d = pd.read_csv(DATA)
    d["LLOQ"] = 4.0            # one record (subject 1 at t = 1 h, DV 3.68) is below it
    return d


def test_m3_minus2ll_is_the_censored_likelihood_with_omega_to_zero():
    # issue 20: a censored record has a probability, not a density, so no log 2π. Independent value:
    # -2 [sum log N(y; f, 0.3²) over quantified + log Phi((4 - f)/0.3) over censored], f = 10 exp(-0.5 t) = 86.935
    import numpy as np
    from scipy import stats

    d = _censored_wang()
    f, y = 10 * np.exp(-0.5 * d["TIME"].to_numpy()), d["DV"].to_numpy()
    cens = y < 4.0
    expected = -2 * (stats.norm.logpdf(y[~cens], f[~cens], 0.3).sum() + stats.norm.logcdf(4.0, f[cens], 0.3).sum())
    assert cens.sum() == 1 and round(expected, 3) == 86.935
    fit = pkpd.fit_population("wang2007", d, iiv={"ke": 1e-8}, error=pkpd.Additive(sd=0.3), blq=pkpd.M3(),
                              method="laplace", maxeval=0, settings=TIGHT)
    assert fit.minus2ll == pytest.approx(expected, abs=1e-3)
    # the objective (NONMEM's, without the constant) takes log 2π off the 19 quantified records only
    assert fit.objective == pytest.approx(expected - 19 * np.log(2 * np.pi), abs=1e-3)
    k = 3                      # ke, omega, sd
    assert fit.aic == pytest.approx(fit.minus2ll + 2 * k)
    assert fit.bic == pytest.approx(fit.minus2ll + k * np.log(20))


def test_m3_minus2ll_agrees_with_the_individual_fitter():
    # the two fitters count the same likelihood: pkpd.fit at its optimum ke, and fit_population there with Omega -> 0
    d = _censored_wang()
    error = pkpd.Additive(sd=0.3, fixed=True)
    single = pkpd.fit(pkpd.load_model("wang2007"), d, estimate=["ke"], error={"f": error}, blq="M3", settings=TIGHT)
    assert single.n_censored == 1
    pop = pkpd.fit_population("wang2007", d, iiv={"ke": 1e-8}, error=error, blq=pkpd.M3(), method="laplace",
                              init={"ke": single.estimates["ke"]}, maxeval=0, settings=TIGHT)
    assert pop.minus2ll == pytest.approx(single.objective, abs=1e-3)
    assert pop.bic - pop.minus2ll == pytest.approx((single.bic - single.objective) * 2, rel=1e-12)  # k = 2 vs 1


def test_m3_laplace_objective_equals_an_independent_laplace_approximation():
    # issue 20, rule 7 with a real Omega (0.04): for each subject, O_i(eta) = sum of the censored/quantified -2 log
    # terms (without log 2π) + eta²/omega², minimised here with scipy, and OFV_i = O_i(eta_hat) + log omega²
    # + log(O_i''(eta_hat)/2) (second derivative by central differences of the closed form f = 10 exp(-0.5 e^eta t))
    import numpy as np
    from scipy import optimize, special

    d = _censored_wang()
    omega2, sd = 0.04, 0.3

    def objective_i(eta, t, y):
        f = 10 * np.exp(-0.5 * np.exp(eta) * t)
        cens = y < 4.0
        quant = ((y - f) ** 2 / sd**2 + np.log(sd**2))[~cens].sum()
        below = -2 * special.log_ndtr((4.0 - f[cens]) / sd).sum()
        return quant + below + eta**2 / omega2

    total = 0.0
    for _, sub in d.groupby("ID"):
        t, y = sub["TIME"].to_numpy(float), sub["DV"].to_numpy(float)
        best = optimize.minimize_scalar(lambda e, t=t, y=y: objective_i(e, t, y), bounds=(-2, 2), method="bounded",
                                        options={"xatol": 1e-12})
        h = 1e-4
        second = (objective_i(best.x + h, t, y) - 2 * objective_i(best.x, t, y) + objective_i(best.x - h, t, y)) / h**2
        total += best.fun + np.log(omega2) + np.log(second / 2)
    fit = pkpd.fit_population("wang2007", d, iiv={"ke": omega2}, error=pkpd.Additive(sd=sd), blq=pkpd.M3(),
                              method="laplace", maxeval=0, settings=TIGHT)
    assert fit.objective == pytest.approx(total, abs=1e-4)
