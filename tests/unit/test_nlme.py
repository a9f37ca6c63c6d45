"""Population estimation: CLI, bad input and EBE properties (issue 5)."""

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import pkpd
from pkpd.cli import main
from pkpd.errors import FitError, PkpdError
from pkpd.nonmem import read_nonmem

DATA = Path(__file__).resolve().parents[1] / "data"
WANG = DATA / "wang2007" / "wang2007.csv"


def test_cli_maxeval_0_writes_nonmem_objective(tmp_path, capsys):
    status = main(["fit-population", "wang2007", str(WANG), "--method", "focei", "--iiv", "ke=0.04",
                   "--error", "proportional=0.316228", "--maxeval", "0", "--out", str(tmp_path)])
    assert status == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    # the engine's default tolerances (rtol 1e-8) already give NONMEM's 39.458 to 3 decimals
    assert round(summary["objective"], 3) == 39.458
    assert summary["n_subjects"] == 10 and summary["n_obs"] == 20
    params = pd.read_csv(tmp_path / "parameters.csv")
    assert list(params.columns) == ["name", "estimate", "unit", "se", "rse_percent", "ci_low", "ci_high", "cv_percent",
                                    "shrinkage_percent"]
    assert list(params["name"]) == ["ke", "omega2_ke", "cv"]
    ind = pd.read_csv(tmp_path / "individual.csv")
    assert list(ind.columns) == ["ID", "TIME", "DV", "PRED", "IPRED", "CWRES", "ETA_ke"]


def test_cli_rejects_a_malformed_error_option(tmp_path, capsys):
    status = main(["fit-population", "wang2007", str(WANG), "--iiv", "ke=0.04", "--error", "poisson=1",
                   "--out", str(tmp_path)])
    assert status == 2
    err = capsys.readouterr().err
    assert "OUTPUT=MODEL[:VALUES]" in err and "proportional=CV" in err


def test_iiv_on_an_unknown_parameter_is_an_error():
    with pytest.raises(FitError, match="no parameter 'kel'.*ke"):
        pkpd.fit_population("wang2007", WANG, iiv={"kel": 0.04}, error=pkpd.Additive(sd=0.3), maxeval=0)


def test_non_positive_definite_omega_is_an_error():
    with pytest.raises(PkpdError, match="not positive definite"):
        pkpd.IIV({"CL": 0.1, "V": 0.1}, covariances={("CL", "V"): 0.2})


def test_censored_data_need_laplace(tmp_path):
    d = pd.read_csv(WANG)
    d["LLOQ"] = 4.0
    d.loc[d["DV"] < 4.0, "BLQ"] = 1
    d["BLQ"] = d["BLQ"].fillna(0)
    with pytest.raises(FitError, match="laplace"):
        pkpd.fit_population("wang2007", d, iiv={"ke": 0.04}, error=pkpd.Additive(sd=0.3), blq=pkpd.M3(),
                            maxeval=0)
    fit = pkpd.fit_population("wang2007", d, iiv={"ke": 0.04}, error=pkpd.Additive(sd=0.3), blq=pkpd.M3(),
                              method="laplace", maxeval=0)
    assert fit.table["CENS"].sum() == 1 and np.isfinite(fit.objective)


def test_ebes_are_the_conditional_modes():
    # for the Wang example the individual objective can be minimised on a fine grid: the EBE must match
    fit = pkpd.fit_population("wang2007", WANG, iiv={"ke": 0.04}, error=pkpd.Additive(sd=0.316228), maxeval=0,
                              settings=pkpd.SolverSettings(rtol=1e-10, atol=1e-12))
    d = pd.read_csv(WANG)
    grid = np.linspace(-1, 1, 200001)
    for i, (_, sub) in enumerate(d.groupby("ID")):
        t, y = sub["TIME"].to_numpy(), sub["DV"].to_numpy()
        f = 10 * np.exp(-0.5 * np.exp(grid)[:, None] * t[None, :])
        obj = ((y - f) ** 2).sum(axis=1) / 0.1 + grid ** 2 / 0.04
        assert fit.eta[i, 0] == pytest.approx(grid[np.argmin(obj)], abs=2e-5)


def _simulated_study(rng, *, n_subjects, times, theta, omega, cv, dose=320.0, wt=None, exponent=0.75):
    """A NONMEM table of a one-compartment oral study simulated with the analytic solution (independent of the
    engine): log-normal IIV on CL and V (variances ``omega``), proportional error ``cv``; with weights ``wt``
    (one per subject), CL = theta_CL (WT/70)^exponent and a WT column."""
    rows = []
    for i in range(1, n_subjects + 1):
        cl = theta["CL"] * np.exp(rng.normal(0, np.sqrt(omega["CL"])))
        if wt is not None:
            cl *= (wt[i - 1] / 70.0) ** exponent
        v = theta["V"] * np.exp(rng.normal(0, np.sqrt(omega["V"])))
        ka, ke = theta["ka"], cl / v
        conc = dose * ka / (v * (ka - ke)) * (np.exp(-ke * times) - np.exp(-ka * times))
        dv = conc * (1 + cv * rng.standard_normal(times.size))
        rows.append(dict(ID=i, TIME=0.0, DV=".", AMT=dose, AMTU="mg", EVID=1, CMT=1, MDV=1))
        rows += [dict(ID=i, TIME=t, DV=y, AMT=0, EVID=0, CMT=2, MDV=0) for t, y in zip(times, dv)]
    table = pd.DataFrame(rows)
    if wt is not None:
        table["WT"] = np.asarray(wt)[table["ID"].to_numpy() - 1]
    return table


def test_npde_of_data_from_the_true_model_are_standard_normal():
    from scipy import stats

    from pkpd.nlme import npde

    theta = {"ka": 1.5, "CL": 2.8, "V": 32.0}
    omega = {"CL": 0.09, "V": 0.04}
    data = _simulated_study(np.random.default_rng(5), n_subjects=60, times=np.array([0.5, 1, 2, 4, 8, 12, 24.0]),
                            theta=theta, omega=omega, cv=0.15)
    fit = pkpd.fit_population("pk_1cmt_oral", data, iiv=omega, error=pkpd.Proportional(cv=0.15), init=theta,
                              maxeval=0)
    table = npde(fit, "pk_1cmt_oral", data, n_sim=1000, seed=11)
    assert list(table.columns[:len(fit.table.columns)]) == list(fit.table.columns)
    x = table["NPDE"].to_numpy()
    assert x.size == 420 and np.isfinite(x).all()
    assert ((table["PDE"] >= 1 / 2000) & (table["PDE"] <= 1 - 1 / 2000)).all()
    print(f"\nNPDE: mean {x.mean():.3f}, variance {x.var(ddof=1):.3f}, KS p {stats.kstest(x, 'norm').pvalue:.3f}")
    assert abs(x.mean()) < 0.15            # 3 standard errors of the mean of 420 N(0, 1) values: 0.146
    assert 0.8 < x.var(ddof=1) < 1.2
    assert stats.kstest(x, "norm").pvalue > 0.01
    # reproducible with the seed
    again = npde(fit, "pk_1cmt_oral", data, n_sim=1000, seed=11)
    assert np.array_equal(again["NPDE"].to_numpy(), x)


def test_npde_detect_a_misspecified_model():
    from pkpd.nlme import npde

    theta = {"ka": 1.5, "CL": 2.8, "V": 32.0}
    omega = {"CL": 0.09, "V": 0.04}
    data = _simulated_study(np.random.default_rng(5), n_subjects=30, times=np.array([0.5, 1, 2, 4, 8, 12, 24.0]),
                            theta=theta, omega=omega, cv=0.15)
    # clearance 40 % too low: the late observations fall below the predictions -> NPDE shifted negative
    fit = pkpd.fit_population("pk_1cmt_oral", data, iiv=omega, error=pkpd.Proportional(cv=0.15),
                              init=theta | {"CL": 1.7}, maxeval=0)
    x = npde(fit, "pk_1cmt_oral", data, n_sim=500, seed=1)["NPDE"].to_numpy()
    assert x.mean() < -0.3


def test_npde_needs_enough_replicates_and_the_fitted_data():
    from pkpd.nlme import npde

    fit = pkpd.fit_population("wang2007", WANG, iiv={"ke": 0.04}, error=pkpd.Additive(sd=0.3), maxeval=0)
    with pytest.raises(FitError, match="n_sim=3 is too small"):
        npde(fit, "wang2007", WANG, n_sim=3)
    d = pd.read_csv(WANG)
    with pytest.raises(FitError, match="do not match the fit"):
        npde(fit, "wang2007", d[d["ID"] != 1], n_sim=100)


def test_plot_gof_draws_four_labelled_panels():
    import matplotlib.pyplot as plt

    from pkpd.plots import plot_gof

    theoph = read_nonmem(DATA / "theoph.csv", dose_unit="mg")
    fit = pkpd.fit_population("pk_1cmt_oral", theoph, iiv={"ka": 0.4, "CL": 0.07, "V": 0.02},
                              error=pkpd.Additive(sd=0.7), maxeval=0)
    assert fit.output_units == {"conc": "mg/L"} and fit.time_unit == "h"
    fig = plot_gof(fit)
    assert len(fig.axes) == 4
    labels = [(ax.get_xlabel(), ax.get_ylabel()) for ax in fig.axes]
    assert labels == [("PRED [mg/L]", "DV [mg/L]"), ("IPRED [mg/L]", "DV [mg/L]"), ("TIME [h]", "CWRES"),
                      ("PRED [mg/L]", "CWRES")]
    assert all(ax.get_title() for ax in fig.axes)
    # every observation drawn in every panel (theophylline: 132 observations, none censored)
    assert all(ax.collections[0].get_offsets().shape[0] == 132 for ax in fig.axes)
    # identity lines on the first two panels, 0 and +/-1.96 on the residual panels
    assert all(len(ax.lines) == 1 for ax in fig.axes[:2])
    assert all(len(ax.lines) == 3 for ax in fig.axes[2:])
    plt.close(fig)


def test_fit_population_estimates_an_allometric_exponent():
    from pkpd.nlme import npde

    rng = np.random.default_rng(3)
    wt = rng.uniform(45.0, 120.0, 40)
    theta = {"ka": 1.5, "CL": 2.8, "V": 32.0}
    data = _simulated_study(rng, n_subjects=40, times=np.array([0.5, 1, 2, 4, 8, 24.0]), theta=theta,
                            omega={"CL": 0.04, "V": 0.04}, cv=0.1, wt=wt, exponent=0.75)
    effect = pkpd.CovariateEffect("CL", "WT", "power", 0.3, ref=70.0)
    fit = pkpd.fit_population("pk_1cmt_oral", data, iiv={"CL": 0.1, "V": 0.1}, error=pkpd.Proportional(cv=0.2),
                              estimate=["ka", "CL", "V"], covariates=[effect],
                              settings=pkpd.SolverSettings(rtol=1e-6, atol=1e-8))
    assert fit.converged, fit.message
    p = fit.parameters.set_index("name")
    b, se = p.loc["WT_on_CL", "estimate"], p.loc["WT_on_CL", "se"]
    assert 0.0 < se < 0.3 and abs(b - 0.75) < 3 * se, (b, se)
    assert fit.covariate_effects == (pkpd.CovariateEffect("CL", "WT", "power", b, ref=70.0),)
    assert fit.theta["CL"] == pytest.approx(2.8, rel=0.15)
    # the weight explains clearance: the IIV left on CL is much smaller than the total variability of CL
    assert fit.omega[0, 0] < 0.1
    # the diagnostics use each subject's typical value
    assert abs(fit.table["CWRES"].mean()) < 0.3
    table = npde(fit, "pk_1cmt_oral", data, n_sim=300, seed=2)
    assert abs(table["NPDE"].mean()) < 0.3


def test_bad_covariate_effects_are_clear_errors():
    theta = {"ka": 1.5, "CL": 2.8, "V": 32.0}
    data = _simulated_study(np.random.default_rng(1), n_subjects=4, times=np.array([1, 4, 12.0]), theta=theta,
                            omega={"CL": 0.04, "V": 0.04}, cv=0.1, wt=[60.0, 70.0, 80.0, 90.0])
    kw = dict(iiv={"CL": 0.1}, error=pkpd.Proportional(cv=0.2), maxeval=0)
    with pytest.raises(FitError, match="no covariate 'WGT'.*WT"):
        pkpd.fit_population("pk_1cmt_oral", data, covariates=[pkpd.CovariateEffect("CL", "WGT", "power", 0.75)],
                            **kw)
    with pytest.raises(FitError, match="no parameter 'Cl'.*CL"):
        pkpd.fit_population("pk_1cmt_oral", data, covariates=[pkpd.CovariateEffect("Cl", "WT", "power", 0.75)],
                            **kw)
    with pytest.raises(FitError, match="categorical.*dict category -> initial factor"):
        pkpd.fit_population("pk_1cmt_oral", data,
                            covariates=[pkpd.CovariateEffect("CL", "WT", "categorical", 1.2)], **kw)
    with pytest.raises(FitError, match=r"no subject has WT = 65\.0.*categories in the data: \[60\.0, 70\.0"):
        pkpd.fit_population("pk_1cmt_oral", data,
                            covariates=[pkpd.CovariateEffect("CL", "WT", "categorical", {65.0: 1.2})], **kw)
    with pytest.raises(FitError, match="no column 'WT'"):
        pkpd.fit_population("pk_1cmt_oral", data.drop(columns="WT"),
                            covariates=[pkpd.CovariateEffect("CL", "WT", "power", 0.75)], **kw)
    missing = data.copy()
    missing.loc[missing["ID"] == 2, "WT"] = np.nan
    with pytest.raises(FitError, match="'WT' is missing .* subject 2"):
        pkpd.fit_population("pk_1cmt_oral", missing, covariates=[pkpd.CovariateEffect("CL", "WT", "power", 0.75)],
                            **kw)


def test_a_fit_from_initial_values_far_from_the_optimum_moves():
    # regression: L-BFGS-B's first step (the whole gradient, ~50-80 on the log scale here) jumped to the bounds,
    # where the OFV is ~1e54, and the line search stopped at the initial values reporting convergence
    theta = {"ka": 1.5, "CL": 2.8, "V": 32.0}
    data = _simulated_study(np.random.default_rng(2026), n_subjects=12, times=np.array([0.5, 1, 2, 4, 8, 24.0]),
                            theta=theta, omega={"CL": 0.09, "V": 0.04}, cv=0.15)
    fit = pkpd.fit_population("pk_1cmt_oral", data, iiv={"CL": 0.2, "V": 0.1}, error=pkpd.Proportional(cv=0.3),
                              estimate=list(theta), init={"ka": 1.0, "CL": 2.0, "V": 40.0}, covariance=None,
                              settings=pkpd.SolverSettings(rtol=1e-6, atol=1e-8))
    assert fit.converged
    assert fit.objective < 100      # 138.3 at the initial values, 66.4 at the optimum
    assert fit.theta["CL"] == pytest.approx(3.18, rel=0.02) and fit.theta["ka"] == pytest.approx(1.68, rel=0.02)


def _model_with_sex(tmp_path):
    text = (Path(pkpd.__file__).parent.parent / "models" / "pk_1cmt_oral.toml").read_text()
    text = text.replace('name = "pk_1cmt_oral"', 'name = "pk_1cmt_oral_sex"')
    text += '\n[covariates.SEX]\nunit = "1"\nvalue = 0\ndescription = "sex (0 male, 1 female)"\n'
    path = tmp_path / "pk_1cmt_oral_sex.toml"
    path.write_text(text)
    return pkpd.load_model(path)


def test_fit_population_estimates_a_categorical_effect(tmp_path):
    """CL of women (SEX=1) is 0.6 x that of men in the simulated study: the factor is recovered within its SE."""
    model = _model_with_sex(tmp_path)
    rng = np.random.default_rng(11)
    n = 40
    sex = np.tile([0.0, 1.0], n // 2)
    theta = {"ka": 1.5, "CL": 2.8, "V": 32.0}
    times = np.array([0.5, 1, 2, 4, 8, 24.0])
    rows = []
    for i in range(n):
        cl = theta["CL"] * (0.6 if sex[i] == 1 else 1.0) * np.exp(rng.normal(0, 0.2))
        v = theta["V"] * np.exp(rng.normal(0, 0.2))
        ka, ke = theta["ka"], cl / v
        conc = 320.0 * ka / (v * (ka - ke)) * (np.exp(-ke * times) - np.exp(-ka * times))
        dv = conc * (1 + 0.1 * rng.standard_normal(times.size))
        rows.append(dict(ID=i + 1, TIME=0.0, DV=".", AMT=320.0, AMTU="mg", EVID=1, CMT=1, MDV=1, SEX=sex[i]))
        rows += [dict(ID=i + 1, TIME=t, DV=y, AMT=0, EVID=0, CMT=2, MDV=0, SEX=sex[i]) for t, y in zip(times, dv)]
    data = pd.DataFrame(rows)
    effect = pkpd.CovariateEffect("CL", "SEX", "categorical", {1: 1.0})
    fit = pkpd.fit_population(model, data, iiv={"CL": 0.1, "V": 0.1}, error=pkpd.Proportional(cv=0.2),
                              estimate=["ka", "CL", "V"], covariates=[effect],
                              settings=pkpd.SolverSettings(rtol=1e-6, atol=1e-8))
    assert fit.converged, fit.message
    p = fit.parameters.set_index("name")
    b, se = p.loc["SEX[1]_on_CL", "estimate"], p.loc["SEX[1]_on_CL", "se"]
    assert 0.0 < se < 0.1 and abs(b - 0.6) < 3 * se, (b, se)
    assert fit.covariate_effects == (pkpd.CovariateEffect("CL", "SEX", "categorical", {1: b}),)
    assert fit.theta["CL"] == pytest.approx(2.8, rel=0.15)
    # sex explains much of the variability of CL: without the effect, the IIV on CL is larger
    assert fit.omega[0, 0] < 0.1


def test_fit_population_with_a_time_varying_covariate():
    """Weight changes within subjects (NOCB); the allometric exponent written in the model file is estimated as a
    fixed effect with IIV on TVCL. An estimated CovariateEffect on a time-varying covariate is a clear error."""
    model = pkpd.load_model(DATA / "models" / "iv_allometric.toml")
    rng = np.random.default_rng(5)
    times = np.array([1.0, 4, 8, 12, 16, 24, 36])
    rows = []
    for i in range(30):
        w0 = rng.uniform(50, 100)
        w1 = w0 * rng.uniform(0.6, 1.6)
        cl_i = 3.0 * np.exp(rng.normal(0, 0.2))
        k1, k2 = cl_i * (w0 / 70) ** 0.75 / 30.0, cl_i * (w1 / 70) ** 0.75 / 30.0
        conc = np.where(times <= 12, 100 / 30.0 * np.exp(-k1 * times),
                        100 / 30.0 * np.exp(-k1 * 12) * np.exp(-k2 * (times - 12)))
        dv = conc * (1 + 0.05 * rng.standard_normal(times.size))
        rows.append(dict(ID=i + 1, TIME=0.0, EVID=1, AMT=100.0, AMTU="mg", DV=np.nan, WT=w0))
        rows += [dict(ID=i + 1, TIME=t, EVID=0, AMT=0.0, DV=y, WT=w0 if t <= 12 else w1) for t, y in zip(times, dv)]
    data = pd.DataFrame(rows)
    fit = pkpd.fit_population(model.with_parameters(BETA=0.3), data, iiv={"TVCL": 0.1},
                              error=pkpd.Proportional(cv=0.1), estimate=["TVCL", "BETA", "V"],
                              settings=pkpd.SolverSettings(rtol=1e-6, atol=1e-8))
    assert fit.converged, fit.message
    p = fit.parameters.set_index("name")
    b, se = p.loc["BETA", "estimate"], p.loc["BETA", "se"]
    assert 0 < se < 0.2 and abs(b - 0.75) < 3 * se, (b, se)
    with pytest.raises(FitError, match="'WT' changes within a subject.*model file"):
        pkpd.fit_population(model, data, iiv={"TVCL": 0.1}, error=pkpd.Proportional(cv=0.1), maxeval=0,
                            covariates=[pkpd.CovariateEffect("V", "WT", "power", 1.0, ref=70.0)])


# --- inter-occasion variability ------------------------------------------------------------------------------------
def test_iov_with_one_occasion_per_subject_equals_iiv_with_the_summed_variance():
    """eta + kappa on the same parameter with a single occasion is one random effect of variance omega + pi: the
    marginal likelihood and every method's OFV (prior term and log-determinant at the mode) are identical."""
    from pkpd.nlme import population_objective

    data = pd.read_csv(WANG)
    data["OCC"] = 1
    kw = dict(error=pkpd.Proportional(cv=0.316228), settings=pkpd.SolverSettings(rtol=1e-10, atol=1e-12))
    for method in ("focei", "foce", "fo", "laplace"):
        single = population_objective("wang2007", data, iiv={"ke": 0.04}, method=method, **kw)
        split = population_objective("wang2007", data, iiv={"ke": 0.03}, iov={"ke": 0.01}, method=method, **kw)
        assert split == pytest.approx(single, abs=1e-5), method
    assert population_objective("wang2007", data, iiv={"ke": 0.04}, method="focei", **kw) == pytest.approx(39.458,
                                                                                                            abs=5e-4)


def _iov_study(rng, n_subjects=40, omega_cl=0.09, pi_cl=0.04):
    """Two occasions per subject (100 mg IV at 0 and 72 h); CL varies between subjects and between occasions.
    Analytic one-compartment solution with CL switching at 72 h."""
    times = np.array([1.0, 4, 8, 12, 24])
    rows, kappas = [], []
    for i in range(1, n_subjects + 1):
        eta = rng.normal(0, np.sqrt(omega_cl))
        kap = rng.normal(0, np.sqrt(pi_cl), 2)
        kappas.append(kap)
        v = 32.0 * np.exp(rng.normal(0, 0.2))
        k1, k2 = 2.8 * np.exp(eta + kap[0]) / v, 2.8 * np.exp(eta + kap[1]) / v
        c1 = 100 / v * np.exp(-k1 * times)
        a72 = 100 * np.exp(-k1 * 72)
        c2 = (a72 + 100) / v * np.exp(-k2 * times)
        for occ, start, conc in ((1, 0.0, c1), (2, 72.0, c2)):
            rows.append(dict(ID=i, TIME=start, DV=".", AMT=100.0, AMTU="mg", EVID=1, CMT=1, MDV=1, OCC=occ))
            dv = conc * (1 + 0.08 * rng.standard_normal(times.size))
            rows += [dict(ID=i, TIME=start + t, DV=y, AMT=0, EVID=0, CMT=1, MDV=0, OCC=occ) for t, y in zip(times, dv)]
    return pd.DataFrame(rows), np.array(kappas)


def test_fit_population_estimates_inter_occasion_variability():
    data, kappas = _iov_study(np.random.default_rng(21))
    fit = pkpd.fit_population("pk_1cmt_iv", data, iiv={"CL": 0.05, "V": 0.05}, iov={"CL": 0.02},
                              error=pkpd.Proportional(cv=0.1), settings=pkpd.SolverSettings(rtol=1e-7, atol=1e-9))
    assert fit.converged, fit.message
    p = fit.parameters.set_index("name")
    for name, true in (("iov2_CL", 0.04), ("omega2_CL", 0.09), ("CL", 2.8)):
        est, se = p.loc[name, "estimate"], p.loc[name, "se"]
        assert abs(est - true) < 3 * se, (name, est, se)
    assert fit.iov.names == ("CL",) and fit.iov.omega[0, 0] == pytest.approx(p.loc["iov2_CL", "estimate"])
    # the occasion EBEs track the simulated occasion effects
    assert fit.kappa.shape == (40, 2, 1)
    r = np.corrcoef(fit.kappa[:, :, 0].ravel(), kappas.ravel())[0, 1]
    assert r > 0.7, r
    # a VPC simulates the occasions too
    from pkpd.nlme import vpc

    v = vpc(fit, "pk_1cmt_iv", data, n_replicates=30, n_bins=4, seed=1)
    assert np.all(np.isfinite(v.simulated))


def test_iov_bad_input_is_a_clear_error():
    data, _ = _iov_study(np.random.default_rng(2), n_subjects=3)
    kw = dict(iiv={"CL": 0.05}, error=pkpd.Proportional(cv=0.1), maxeval=0)
    with pytest.raises(FitError, match="no OCC column"):
        pkpd.fit_population("pk_1cmt_iv", data.drop(columns="OCC"), iov={"CL": 0.02}, **kw)
    with pytest.raises(FitError, match="iov: model 'pk_1cmt_iv' has no parameter 'Cl'.*CL"):
        pkpd.fit_population("pk_1cmt_iv", data, iov={"Cl": 0.02}, **kw)
    back = data.copy()
    back.loc[back.index[-1], "OCC"] = 1
    with pytest.raises(Exception, match="OCC 1 of subject 3 comes back"):
        pkpd.fit_population("pk_1cmt_iv", back, iov={"CL": 0.02}, **kw)
    with pytest.raises(PkpdError, match="variance of eta on 'CL' must be a positive"):
        pkpd.fit_population("pk_1cmt_iv", data, iov={"CL": -0.02}, **kw)


def test_vpc_of_a_fit_with_two_outputs_checks_the_chosen_one():
    from pkpd.nlme import vpc

    model = pkpd.load_model("msc_salvadori")
    times = [4.0, 24, 72, 168]
    rows = []
    rng = np.random.default_rng(3)
    for i in range(1, 7):
        rows.append(dict(ID=i, TIME=0.0, DV=".", AMT=1.4e8, AMTU="cell", EVID=1, CMT=1, MDV=1, DVID="."))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", pkpd.BoundsWarning)  # individual values may leave the plausible range
            sim = pkpd.simulate(model, pkpd.Regimen.single(pkpd.Dose(1.4e8, "cell")), times,
                                params={"k_c": 0.0289 * np.exp(rng.normal(0, 0.3))})
        for out in ("PGE2", "IL10"):
            rows += [dict(ID=i, TIME=t, DV=y * (1 + 0.1 * rng.standard_normal()), AMT=0, EVID=0, CMT=".", MDV=0,
                          DVID=out) for t, y in zip(times, sim.outputs[out][0])]
    data = pd.DataFrame(rows).sort_values(["ID", "TIME"], kind="stable").reset_index(drop=True)
    fit = pkpd.fit_population(model, data, iiv={"k_c": 0.09}, maxeval=0,
                              error={"PGE2": pkpd.Proportional(cv=0.1), "IL10": pkpd.Proportional(cv=0.1)})
    with pytest.raises(FitError, match="2 observed outputs .*output="):
        vpc(fit, model, data, n_replicates=20, n_bins=2, seed=1)
    with pytest.raises(FitError, match="output 'cells' was not fitted"):
        vpc(fit, model, data, n_replicates=20, n_bins=2, seed=1, output="cells")
    v = vpc(fit, model, data, n_replicates=50, n_bins=4, seed=1, output="IL10")
    assert v.output == "IL10" and v.unit == "pg/mL"
    obs = data[data.DVID == "IL10"].astype({"DV": float}).groupby("TIME")["DV"].median().to_numpy()
    np.testing.assert_allclose(v.observed[1], obs)       # one time per bin: the binned median is the data's
    # the simulated medians bracket the observed ones (data from the model itself)
    assert np.all((v.simulated[1, 0] < obs * 1.5) & (v.simulated[1, 2] > obs / 1.5))


def test_npde_with_blq_observations_imputes_them_and_stays_standard_normal():
    """About a fifth of the observations fall below an LLOQ of 1 mg/L: their NPDE come from the imputation of
    Nguyen et al. (2012) and, with the others, are N(0, 1) under the true model."""
    from scipy import stats

    from pkpd.nlme import npde

    theta = {"ka": 1.5, "CL": 2.8, "V": 32.0}
    omega = {"CL": 0.09, "V": 0.04}
    data = _simulated_study(np.random.default_rng(5), n_subjects=60, times=np.array([0.5, 1, 2, 4, 8, 12, 24.0]),
                            theta=theta, omega=omega, cv=0.15)
    obs = data["EVID"] == 0
    data["LLOQ"] = np.where(obs, 3.0, np.nan)
    dv = pd.to_numeric(data["DV"], errors="coerce")
    data["BLQ"] = np.where(obs & (dv < 3.0), 1, 0)
    fit = pkpd.fit_population("pk_1cmt_oral", data, iiv=omega, error=pkpd.Proportional(cv=0.15), init=theta,
                              blq=pkpd.M3(), method="laplace", maxeval=0)
    table = npde(fit, "pk_1cmt_oral", data, n_sim=1000, seed=3, blq=pkpd.M3())
    cens = table["CENS"].to_numpy() == 1
    x = table["NPDE"].to_numpy()
    assert 0.1 < cens.mean() < 0.4 and np.isfinite(x).all()
    # the imputed BLQ values sit in the lower tail, as the censoring says
    assert np.all(x[cens] < stats.norm.ppf(table["PDE"][cens].max() + 1e-9))
    assert abs(x.mean()) < 0.15 and 0.8 < x.var(ddof=1) < 1.2
    assert stats.kstest(x, "norm").pvalue > 0.01
    # a model that predicts far too few BLQ values (clearance too low) shows positive NPDE for them... and overall
    bad = pkpd.fit_population("pk_1cmt_oral", data, iiv=omega, error=pkpd.Proportional(cv=0.15),
                              init=theta | {"CL": 1.7}, blq=pkpd.M3(), method="laplace", maxeval=0)
    y = npde(bad, "pk_1cmt_oral", data, n_sim=500, seed=3, blq=pkpd.M3())["NPDE"].to_numpy()
    assert y.mean() < -0.3


def test_an_observation_with_zero_residual_variance_at_the_start_is_a_clear_error():
    """A sample at t = 0 predicted 0 with a proportional error has variance 0: say so, instead of 'converging'."""
    theta = {"ka": 1.5, "CL": 2.8, "V": 32.0}
    data = _simulated_study(np.random.default_rng(1), n_subjects=4, times=np.array([1, 4, 12.0]), theta=theta,
                            omega={"CL": 0.04, "V": 0.04}, cv=0.1)
    pre = pd.DataFrame([dict(ID=2, TIME=0.0, DV=0.05, AMT=0, EVID=0, CMT=2, MDV=0)])
    data = pd.concat([data, pre]).sort_values(["ID", "TIME", "EVID"], ascending=[True, True, False], kind="stable")
    with pytest.raises(FitError, match=r"output 'conc' at subject 2, t = 0 h .* predicted 0, so its Proportional "
                                       r"error has standard deviation 0; use pkpd.Combined"):
        pkpd.fit_population("pk_1cmt_oral", data, iiv={"CL": 0.1}, error=pkpd.Proportional(cv=0.2))


def test_population_bootstrap_resamples_subjects_and_brackets_the_estimates():
    """Case resampling of a simulated 30-subject study: reproducible with the seed, the first replicates of a larger
    run are those of a smaller one, and the percentile CIs contain the estimates and the truth."""
    from pkpd.nlme import bootstrap_population

    theta = {"ka": 1.5, "CL": 2.8, "V": 32.0}
    data = _simulated_study(np.random.default_rng(4), n_subjects=30, times=np.array([0.5, 2, 6, 12, 24.0]),
                            theta=theta, omega={"CL": 0.09, "V": 0.04}, cv=0.1)
    kw = dict(iiv={"CL": 0.09}, error=pkpd.Proportional(cv=0.1), estimate=["CL", "V"], covariance=None,
              settings=pkpd.SolverSettings(rtol=1e-6, atol=1e-8))
    fit = pkpd.fit_population("pk_1cmt_oral", data, **kw)
    boot = bootstrap_population(fit, "pk_1cmt_oral", data, n=12, seed=5, workers=1, progress=False,
                                settings=kw["settings"])
    assert boot.names == ("CL", "V", "omega2_CL", "cv") and boot.failed == ()
    again = bootstrap_population(fit, "pk_1cmt_oral", data, n=6, seed=5, workers=1, progress=False,
                                 settings=kw["settings"])
    np.testing.assert_array_equal(again.samples, boot.samples[:6])
    for name, true in (("CL", 2.8), ("V", 32.0)):
        assert boot.ci_low[name] < boot.estimate[name] < boot.ci_high[name]
        assert boot.ci_low[name] < true < boot.ci_high[name]
    # resampling subjects moves the estimates: the replicates are not copies of the fit
    assert boot.se["CL"] > 0.01 * boot.estimate["CL"]
    with pytest.raises(FitError, match="expected a PopulationFit"):
        bootstrap_population(object(), "pk_1cmt_oral", data, n=2)
