"""Population estimation: CLI, bad input and EBE properties (issue 5)."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import pkpd
from pkpd.cli import main
from pkpd.errors import FitError, PkpdError

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
    assert list(params.columns) == ["name", "estimate", "se", "rse_percent"]
    assert list(params["name"]) == ["ke", "omega2_ke", "cv"]
    ind = pd.read_csv(tmp_path / "individual.csv")
    assert list(ind.columns) == ["ID", "TIME", "DV", "PRED", "IPRED", "CWRES", "ETA_ke"]


def test_cli_rejects_a_malformed_error_option(tmp_path, capsys):
    status = main(["fit-population", "wang2007", str(WANG), "--iiv", "ke=0.04", "--error", "poisson=1",
                   "--out", str(tmp_path)])
    assert status == 2
    assert "proportional=SD" in capsys.readouterr().err


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
