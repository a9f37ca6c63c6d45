"""SAEM and the importance-sampling likelihood (issue 16), lean versions of the issue's checks (full-size studies:
benchmarks/saem_sse.py)."""

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import pkpd
from pkpd.errors import FitError
from pkpd.nonmem import read_nonmem
from pkpd.saem import SaemSettings

DATA = Path(__file__).resolve().parents[1] / "data"
THEOPH_CSV = DATA / "theoph.csv"
THEOPH = read_nonmem(THEOPH_CSV, dose_unit="mg")
IIV = {"ka": 0.6, "CL": 0.3, "V": 0.1}
SHORT = SaemSettings(exploratory=120, smoothing=80, n_chains=2)

# FOCE-I on theophylline (nlmixr2's reference fit, tests/reference/test_theophylline_nlme.py): estimates and
# standard errors (log scale for the typical values; pkpd's sandwich SEs for the variances and sd)
FOCEI = {"ka": (1.593, 0.1954), "CL": (2.752, 0.07555), "V": (31.81, 0.04289)}
FOCEI_VAR = {"omega2_ka": (math.log1p(0.7052 ** 2), 0.21), "omega2_CL": (math.log1p(0.2675 ** 2), 0.029),
             "omega2_V": (math.log1p(0.1390 ** 2), 0.0081), "sd": (0.6947, 0.095)}


@pytest.fixture(scope="module")
def saem_fit():
    return pkpd.fit_population("pk_1cmt_oral", THEOPH, iiv=IIV, error=pkpd.Additive(sd=0.7), method="saem", seed=3,
                               saem=SHORT, is_samples=2000, covariance=None)


def test_saem_reaches_the_focei_estimates_within_their_standard_errors(saem_fit):
    for name, (value, se_log) in FOCEI.items():
        assert abs(math.log(saem_fit.theta[name] / value)) < se_log, name
    p = saem_fit.parameters.set_index("name")["estimate"]
    for name, (value, se) in FOCEI_VAR.items():
        assert abs(p[name] - value) < se, name
    assert saem_fit.method == "saem" and saem_fit.objective_method == "is"
    assert saem_fit.trace.shape == (SHORT.exploratory + SHORT.smoothing + 1, 8)
    assert list(saem_fit.trace.columns[:2]) == ["iteration", "ka"]


def test_importance_sampling_agrees_with_laplace_and_with_itself(saem_fit):
    kw = dict(iiv=saem_fit.iiv, error=saem_fit.error, init=saem_fit.theta, maxeval=0)
    laplace = pkpd.fit_population("pk_1cmt_oral", THEOPH, method="laplace", **kw)
    runs = [pkpd.fit_population("pk_1cmt_oral", THEOPH, method="laplace", objective="is", seed=s, is_samples=1500,
                                **kw) for s in (1, 2)]
    assert abs(runs[0].objective - laplace.objective) < 1.0
    a, b = runs
    assert 0 < a.objective_se < 0.5
    assert abs(a.objective - b.objective) < 3 * math.hypot(a.objective_se, b.objective_se)
    assert a.objective != b.objective
    # the same seed gives the same value
    again = pkpd.fit_population("pk_1cmt_oral", THEOPH, method="laplace", objective="is", seed=1, is_samples=1500,
                                **kw)
    assert again.objective == a.objective


def test_saem_is_reproducible_with_its_seed_and_has_a_convergence_plot():
    data = DATA / "wang2007" / "wang2007.csv"
    kw = dict(iiv={"ke": 0.04}, error=pkpd.Additive(sd=0.3), method="saem", covariance=None, is_samples=200,
              saem=SaemSettings(exploratory=30, smoothing=20))
    a = pkpd.fit_population("wang2007", data, seed=7, **kw)
    b = pkpd.fit_population("wang2007", data, seed=7, **kw)
    c = pkpd.fit_population("wang2007", data, seed=8, **kw)
    assert a.theta == b.theta and a.objective == b.objective
    assert a.theta != c.theta
    fig = a.plot_convergence()
    assert len([ax for ax in fig.axes if ax.get_visible()]) == 3


def _censored_theoph(lloq: float) -> pd.DataFrame:
    df = pd.read_csv(THEOPH_CSV, na_values=".").assign(AMTU="mg")
    obs = df["EVID"] == 0
    df["LLOQ"] = np.where(obs, lloq, np.nan)
    df["BLQ"] = np.where(obs & (df["DV"] < lloq), 1, 0)
    df.loc[df["BLQ"] == 1, "DV"] = lloq
    return df


def test_saem_with_censored_data_a_covariate_effect_and_iov(saem_fit):
    df = _censored_theoph(2.0)
    assert df["BLQ"].sum() >= 10
    wt = pkpd.CovariateEffect("CL", "WT", "power", 0.75, ref=70.0)
    f = pkpd.fit_population("pk_1cmt_oral", df, iiv=IIV, error=pkpd.Additive(sd=0.7), method="saem", seed=5,
                            blq=pkpd.M3(), covariates=[wt], covariance=None, is_samples=300,
                            saem=SaemSettings(exploratory=80, smoothing=40, n_chains=2))
    for name in ("ka", "CL", "V"):
        assert f.theta[name] == pytest.approx(saem_fit.theta[name], rel=0.25), name
    assert math.isfinite(f.covariate_effects[0].value) and -3 < f.covariate_effects[0].value < 3
    # inter-occasion variability: the first half of each subject's samples is occasion 1, the rest occasion 2
    df = pd.read_csv(THEOPH_CSV).assign(AMTU="mg")
    df["OCC"] = np.where(df["TIME"] < 5.0, 1, 2)
    g = pkpd.fit_population("pk_1cmt_oral", df, iiv=IIV, error=pkpd.Additive(sd=0.7), method="saem", seed=5,
                            iov={"CL": 0.02}, covariance=None, is_samples=300,
                            saem=SaemSettings(exploratory=60, smoothing=30, n_chains=2))
    assert 0 < g.iov.omega[0, 0] < 0.2 and g.kappa.shape == (12, 2, 1)


def test_bad_input_to_saem():
    with pytest.raises(FitError, match="needs random effects"):
        pkpd.fit_population("pk_1cmt_oral", THEOPH, iiv={}, error=pkpd.Additive(sd=0.7), method="saem")
    with pytest.raises(FitError, match="exploratory"):
        SaemSettings(exploratory=-1)
    with pytest.raises(FitError, match="kernel_steps"):
        SaemSettings(kernel_steps=(0, 0, 0))
    with pytest.raises(FitError, match="method='saem' only"):
        pkpd.fit_population("pk_1cmt_oral", THEOPH, iiv=IIV, error=pkpd.Additive(sd=0.7), saem=SaemSettings())
    with pytest.raises(FitError, match="SAEM estimates by maximum likelihood"):
        pkpd.fit_population("pk_1cmt_oral", THEOPH, iiv=IIV, error=pkpd.Additive(sd=0.7), method="saem",
                            priors=True)
    with pytest.raises(FitError, match="objective"):
        pkpd.fit_population("pk_1cmt_oral", THEOPH, iiv=IIV, error=pkpd.Additive(sd=0.7), objective="exact")


TRUE = {"ka": 1.5, "CL": 2.8, "V": 32.0}


def simulate_study(replicate: int, n_subjects: int) -> pd.DataFrame:
    """A sparse oral design: 320 mg, 3 samples per subject (1, 6, 24 h), log-normal IIV, 15 % proportional error."""
    rng = np.random.default_rng(100 + replicate)
    model = pkpd.load_model("pk_1cmt_oral")
    eta = rng.normal(0.0, np.sqrt([0.3, 0.1, 0.04]), size=(n_subjects, 3))
    params = {k: TRUE[k] * np.exp(eta[:, j]) for j, k in enumerate(("ka", "CL", "V"))}
    times = [1.0, 6.0, 24.0]
    sim = pkpd.simulate(model, pkpd.Regimen.single(pkpd.Dose(320.0, "mg")), times, params=params)
    conc = pkpd.Proportional(cv=0.15).sample(sim.outputs["conc"], rng)
    rows = []
    for i in range(n_subjects):
        rows.append(dict(ID=i + 1, TIME=0.0, DV=np.nan, AMT=320.0, EVID=1, MDV=1, AMTU="mg"))
        rows += [dict(ID=i + 1, TIME=t, DV=float(conc[i, j]), AMT=0.0, EVID=0, MDV=0, AMTU="mg")
                 for j, t in enumerate(times)]
    return pd.DataFrame(rows)


def test_a_lean_simulation_reestimation_study_recovers_the_truth():
    """Three replicates of a sparse design (the full MSC study with 100+ replicates: benchmarks/saem_sse.py)."""
    estimates = []
    for r in range(3):
        data = simulate_study(r, n_subjects=16)
        f = pkpd.fit_population("pk_1cmt_oral", data, iiv={"ka": 0.2, "CL": 0.2, "V": 0.05},
                                error=pkpd.Proportional(cv=0.3), method="saem", seed=r, covariance=None,
                                is_samples=100, init={"ka": 1.0, "CL": 2.0, "V": 25.0},
                                saem=SaemSettings(exploratory=80, smoothing=40, n_chains=2))
        estimates.append([f.theta["ka"], f.theta["CL"], f.theta["V"]])
    mean = np.mean(estimates, axis=0)
    assert mean == pytest.approx([TRUE["ka"], TRUE["CL"], TRUE["V"]], rel=0.3)


def test_cli_fit_population_with_saem(tmp_path, capsys):
    from pkpd.cli import main

    data = str(DATA / "wang2007" / "wang2007.csv")
    assert main(["fit-population", "wang2007", data, "--method", "saem", "--iiv", "ke=0.04", "--error",
                 "additive=0.3", "--seed", "4", "--maxeval", "40", "--vpc-replicates", "0",
                 "--out", str(tmp_path)]) == 0
    import json

    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["method"] == "saem" and summary["objective_method"] == "is" and summary["objective_se"] > 0
    trace = pd.read_csv(tmp_path / "saem_trace.csv")
    assert len(trace) == 41 and "ke" in trace
    assert "SAEM" in capsys.readouterr().out
