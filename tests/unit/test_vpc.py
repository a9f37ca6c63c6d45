"""VPC options (issue 18): prediction correction, stratification, binning; coverage at nominal rates."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import pkpd
from pkpd.errors import FitError, PkpdError
from pkpd.nlme import vpc

MODEL = str(Path(__file__).resolve().parents[1] / "data" / "models" / "pk_1cmt_iv_covariates.toml")
WT_CL = pkpd.CovariateEffect("CL", "WT", "power", 0.75, ref=70)


def study(seed: int, n: int = 30, times=(0.5, 1, 2, 4, 8, 12, 24)) -> pd.DataFrame:
    """Linear one-compartment IV data from the truth: CL = 2.8 (WT/70)^0.75 e^eta, V = 32 e^eta (omega2 0.09,
    0.04), 10 % proportional error; doses of 50 and 200 mg in alternate subjects."""
    rng = np.random.default_rng(seed)
    wt = rng.normal(70, 15, n).clip(35, 130)
    dose = np.where(np.arange(n) % 2 == 0, 50.0, 200.0)
    eta = rng.multivariate_normal([0, 0], np.diag([0.09, 0.04]), n)
    cl = 2.8 * (wt / 70) ** 0.75 * np.exp(eta[:, 0])
    v = 32 * np.exp(eta[:, 1])
    rows = []
    for i in range(n):
        rows.append({"ID": i + 1, "TIME": 0.0, "EVID": 1, "AMT": dose[i], "AMTU": "mg", "DV": np.nan, "WT": wt[i],
                     "DOSE": dose[i]})
        for t in times:
            c = dose[i] / v[i] * np.exp(-cl[i] / v[i] * t) * (1 + 0.1 * rng.standard_normal())
            rows.append({"ID": i + 1, "TIME": t, "EVID": 0, "AMT": 0.0, "DV": c, "WT": wt[i], "DOSE": dose[i]})
    return pd.DataFrame(rows)


def _truth(data):
    return pkpd.fit_population(MODEL, data, iiv={"CL": 0.09, "V": 0.04}, error=pkpd.Proportional(cv=0.1),
                               estimate=["CL", "V"], covariates=[WT_CL], maxeval=0)


def test_observed_percentiles_fall_in_the_prediction_intervals_at_the_nominal_rate():
    # data from the true model: each observed percentile is exchangeable with the replicates', so it lies in their
    # 90 % interval in 90 % of the bins on average (for the prediction-corrected VPC and the plain one)
    inside = {True: [], False: []}
    width = {True: [], False: []}
    for k in range(8):
        data = study(k)
        fit = _truth(data)
        for pc in (True, False):
            v = vpc(fit, MODEL, data, n_replicates=100, n_bins=6, seed=100 + k, prediction_corrected=pc)
            inside[pc].append((v.simulated[:, 0] <= v.observed) & (v.observed <= v.simulated[:, 2]))
            width[pc].append((v.simulated[:, 2] - v.simulated[:, 0]) / v.simulated[:, 1])
    for pc in (True, False):
        rate = np.mean(inside[pc], axis=0).mean(axis=1)          # per percentile (5th, 50th, 95th)
        assert np.all((rate > 0.78) & (rate < 0.97)), (pc, rate)
        assert 0.84 < np.mean(inside[pc]) < 0.95
    # pooling the two dose groups widens the plain VPC's intervals; prediction correction removes that
    assert np.mean(width[True]) < 0.9 * np.mean(width[False])


def test_stratified_vpc_bins_each_stratum_on_its_own():
    data = study(1)
    res = vpc(_truth(data), MODEL, data, n_replicates=30, n_bins=3, seed=2, stratify="DOSE")
    assert list(res.strata) == [50.0, 200.0] and len(res) == 2
    low = data[(data["EVID"] == 0) & (data["DOSE"] == 50.0)]
    v = res[50.0]
    first = low[(low["TIME"] >= v.bins[0]) & (low["TIME"] < v.bins[1])]["DV"]
    assert v.observed[1, 0] == pytest.approx(np.median(first))
    assert v.stratum == 50.0 and "DOSE" in repr(res)
    import matplotlib.pyplot as plt

    fig = res.plot()
    try:
        assert len(fig.axes) == 4 and fig.axes[1].get_title() == "DOSE = 200"
    finally:
        plt.close(fig)


def test_user_bin_edges_and_prediction_correction_values():
    data = study(2)
    fit = _truth(data)
    v = vpc(fit, MODEL, data, n_replicates=20, bins=[1, 3, 10, 24], seed=3, prediction_corrected=True)
    assert v.bins.tolist() == [1.0, 3.0, 10.0, 24.0] and v.n_outside == 30     # the 0.5 h samples
    # bin 3 (10-24 h) holds 12 and 24 h: each value times median(PRED in bin) / PRED
    obs = data[(data["EVID"] == 0) & (data["TIME"] >= 10)].reset_index(drop=True)
    pred = fit.table[fit.table["TIME"] >= 10]["PRED"].to_numpy()
    pc = obs["DV"].to_numpy() * np.median(pred) / pred
    assert v.observed[:, 2] == pytest.approx(np.percentile(pc, (5, 50, 95)))
    assert v.plot().axes[0].get_title() == "pcVPC of conc"


def test_bad_vpc_options_are_clear_errors():
    data = study(3, n=6)
    fit = _truth(data)
    with pytest.raises(FitError, match="stratify='DOSES' is not a column of the data. Did you mean 'DOSE'"):
        vpc(fit, MODEL, data, n_replicates=5, stratify="DOSES")
    from pkpd.predictive_checks import strata_of

    with pytest.raises(PkpdError, match="stratify='WT' has 20 distinct values, more than 12"):
        strata_of(np.arange(20.0), "WT")
    with pytest.raises(PkpdError, match="bin edges must be at least 2 finite, increasing times"):
        vpc(fit, MODEL, data, n_replicates=5, bins=[4, 2])
