"""Covariate modelling for population fits (issue 18): LRT/AIC/BIC on PopulationFit, stepwise covariate search,
EBE-covariate plots. The 50-replicate recovery study is benchmarks/scm_recovery.py."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import chi2

import pkpd
from pkpd.errors import PkpdError
from pkpd.model_selection import compare_fits, eta_covariate_table, stepwise_covariate_search
from pkpd.nonmem import read_nonmem

MODEL = Path(__file__).resolve().parents[1] / "data" / "models" / "pk_1cmt_iv_covariates.toml"
WT_CL = pkpd.CovariateEffect("CL", "WT", "power", 0.5, ref=70)
SEX_V = pkpd.CovariateEffect("V", "SEX", "categorical", {1: 0.9})
AGE_CL = pkpd.CovariateEffect("CL", "AGE", "linear", 0.0, ref=50)


def simulate_study(seed: int, n: int = 60, times=(0.5, 2, 6, 24)) -> pd.DataFrame:
    """Subjects with WT, AGE, CRCL, SEX; true effects WT on CL (power 0.75) and SEX on V (x 0.7 for SEX = 1);
    omega2 CL 0.09, V 0.04; proportional error 10 %; 100 mg IV bolus (closed form)."""
    rng = np.random.default_rng(seed)
    wt = rng.normal(70, 15, n).clip(35, 130)
    age = rng.uniform(20, 80, n)
    crcl = rng.normal(100, 25, n).clip(30, 200)
    sex = rng.integers(0, 2, n)
    eta = rng.multivariate_normal([0, 0], np.diag([0.09, 0.04]), n)
    cl = 2.8 * (wt / 70) ** 0.75 * np.exp(eta[:, 0])
    v = 32 * np.where(sex == 1, 0.7, 1.0) * np.exp(eta[:, 1])
    rows = []
    for i in range(n):
        covs = {"WT": wt[i], "AGE": age[i], "CRCL": crcl[i], "SEX": sex[i]}
        rows.append({"ID": i + 1, "TIME": 0.0, "EVID": 1, "AMT": 100.0, "AMTU": "mg", "DV": np.nan, **covs})
        for t in times:
            c = 100 / v[i] * np.exp(-cl[i] / v[i] * t) * (1 + 0.1 * rng.standard_normal())
            rows.append({"ID": i + 1, "TIME": t, "EVID": 0, "AMT": 0.0, "DV": c, **covs})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def search():
    data = simulate_study(7)
    return data, stepwise_covariate_search(str(MODEL), data, iiv={"CL": 0.1, "V": 0.1},
                                           error=pkpd.Proportional(cv=0.1), method="fo", estimate=["CL", "V"],
                                           candidates=[WT_CL, SEX_V, AGE_CL], workers=1, progress=False)


def test_scm_selects_the_true_effects_and_logs_every_fit(search):
    _, res = search
    assert set(res.selected_names) == {"WT(power)_on_CL", "SEX(categorical)_on_V"}
    log = res.log
    assert list(log.loc[log["phase"] == "forward", "step"].value_counts().sort_index()) == [3, 2, 1]
    first = log[(log["phase"] == "forward") & (log["step"] == 1)]
    assert first.loc[first["chosen"], "p_value"].iloc[0] == first["p_value"].min() < 0.05
    assert (log.loc[log["phase"] == "backward", "p_value"] < 0.01).all() and res.backward == ()
    assert res.n_fits == len(log) == 8
    wt = next(e for e in res.selected if e.covariate == "WT")
    assert 0.5 < wt.value < 1.0


def test_lrt_on_population_fits_is_the_ofv_difference_with_the_added_coefficients(search):
    _, res = search
    lrt = pkpd.likelihood_ratio_test(res.base, res.final)
    assert lrt.statistic == pytest.approx(res.base.objective - res.final.objective, rel=1e-12)
    assert lrt.df == 2 == len(res.final.parameters) - len(res.base.parameters)
    assert lrt.p_value == pytest.approx(chi2.sf(lrt.statistic, 2), rel=1e-12)
    with pytest.raises(pkpd.FitError, match="must estimate more parameters"):
        pkpd.likelihood_ratio_test(res.final, res.base)
    table = compare_fits({"base": res.base, "final": res.final})
    assert list(table["name"]) == ["final", "base"]
    assert table["aic"].iloc[1] - table["aic"].iloc[0] == pytest.approx(lrt.statistic - 2 * 2, rel=1e-9)


def test_scm_fits_are_reproducible(search):
    # candidate fits are deterministic (no random numbers), so a rerun -- serial, on processes or on Dask (the same
    # map_tasks as bootstrap and SSE) -- logs the same objectives
    data, res = search
    again = stepwise_covariate_search(str(MODEL), data, iiv={"CL": 0.1, "V": 0.1}, error=pkpd.Proportional(cv=0.1),
                                      method="fo", estimate=["CL", "V"], candidates=[WT_CL], base=res.base,
                                      workers=1, progress=False)
    first = res.log[(res.log["step"] == 1) & (res.log["effect"] == "WT(power)_on_CL")]
    assert again.log["ofv"].iloc[0] == first["ofv"].iloc[0]


def test_bad_candidates_are_refused_before_any_fit(search):
    data, res = search
    kw = dict(iiv={"CL": 0.1, "V": 0.1}, error=pkpd.Proportional(cv=0.1), method="fo", estimate=["CL", "V"],
              base=res.base)
    with pytest.raises(PkpdError, match="the data have no column 'BMI'"):
        stepwise_covariate_search(str(MODEL), data.drop(columns=["CRCL"]),
                                  candidates=[pkpd.CovariateEffect("CL", "BMI", "linear", 0.0, ref=25)], **kw)
    with pytest.raises(PkpdError, match="model 'pk_1cmt_iv_covariates' has no parameter 'Cl'"):
        stepwise_covariate_search(str(MODEL), data, candidates=[pkpd.CovariateEffect("Cl", "WT", "power", 1.0)],
                                  **kw)
    data2 = data.copy()
    data2.loc[1, "WT"] = 99.0
    with pytest.raises(PkpdError, match="'WT' changes within subject 1"):
        stepwise_covariate_search(str(MODEL), data2, candidates=[WT_CL], **kw)


def test_eta_covariate_table_and_plot_flag_shrinkage(search):
    import matplotlib.pyplot as plt

    data, res = search
    table = eta_covariate_table(res.final, data, ["WT", "SEX"])
    assert list(table.columns) == ["ID", "ETA_CL", "ETA_V", "WT", "SEX"] and len(table) == 60
    from pkpd.decision_plots import plot_eta_covariates

    fig = plot_eta_covariates(res.final, data, ["WT", "SEX"])
    try:
        assert fig.axes[0].get_title() == "FO: no EBEs (η = 0)"
    finally:
        plt.close(fig)
    theoph = read_nonmem(Path(__file__).resolve().parents[1] / "data" / "theoph.csv", dose_unit="mg")
    f = pkpd.fit_population("pk_1cmt_oral", theoph, iiv={"CL": 0.1, "ka": 0.3}, estimate=["ka", "CL", "V"],
                            error=pkpd.Additive(sd=0.7), maxeval=0)
    fig = plot_eta_covariates(f, theoph, ["WT"])
    try:
        for ax, name in zip(fig.axes, ("CL", "ka")):
            flagged = f.shrinkage[name] > 0.3
            assert ax.get_title().startswith(f"shrinkage {100 * f.shrinkage[name]:.0f} %")
            assert ("unreliable" in ax.get_title()) == flagged
    finally:
        plt.close(fig)
    with pytest.raises(PkpdError, match="no column 'HEIGHT'"):
        eta_covariate_table(f, theoph, ["HEIGHT"])
