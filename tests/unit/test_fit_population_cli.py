"""pkpd fit-population fits an MSC model (issue 19): one error model per output (--error OUTPUT=MODEL[:VALUES],
repeatable), --dose-unit, --estimate; it writes the parameters with units, confidence intervals, the CV % of each
variability and the shrinkage, a goodness-of-fit figure and one VPC per output. The data are simulated from the
model's typical values (benchmarks/make_msc_example_dataset.py: no between-subject variability, 15 % log-normal
noise), so the estimates must bracket the truth and the IIV must come out small."""

import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

import pkpd
from pkpd.cli import main

ROOT = Path(__file__).resolve().parents[2]
# the command of the issue, with a lean VPC (20 replicates instead of 200)
COMMAND = ["fit-population", "msc_salvadori", str(ROOT / "notebooks" / "data" / "msc_example.csv"), "--dose-unit",
           "cell/kg", "--estimate", "k_c,s_p", "--iiv", "k_c=0.1", "--error", "IL10=proportional", "--error",
           "PGE2=proportional", "--error", "cells=proportional", "--vpc-replicates", "20"]


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    out = tmp_path_factory.mktemp("pop")
    assert main([*COMMAND, "--out", str(out)]) == 0
    return out


def test_parameters_have_units_confidence_intervals_and_cv(fitted):
    table = pd.read_csv(fitted / "parameters.csv").set_index("name")
    model = pkpd.load_model("msc_salvadori")
    assert list(table.columns) == ["estimate", "unit", "se", "rse_percent", "ci_low", "ci_high", "cv_percent",
                                   "shrinkage_percent"]
    assert table.loc["k_c", "unit"] == "1/h" and table.loc["s_p", "unit"] == "pg/cell/h"
    assert table.loc["omega2_k_c", "unit"] == "1" and table.loc["IL10_cv", "unit"] == "1"
    for name in ("k_c", "s_p"):  # the truth (the model's value) inside the 95 % CI
        truth = model.parameter(name).value
        assert table.loc[name, "ci_low"] < truth < table.loc[name, "ci_high"], table.loc[name]
    for output in ("cells", "PGE2", "IL10"):  # 15 % log-normal noise is about a 15 % proportional error
        assert 0.08 < table.loc[f"{output}_cv", "estimate"] < 0.25
        assert table.loc[f"{output}_cv", "ci_low"] < table.loc[f"{output}_cv", "ci_high"]
    omega2 = table.loc["omega2_k_c"]
    assert omega2["cv_percent"] == pytest.approx(100 * np.sqrt(np.expm1(omega2["estimate"])), rel=1e-9)
    assert omega2["cv_percent"] < 10  # no IIV in the data
    assert 0 <= omega2["shrinkage_percent"] <= 100


def test_summary_and_individual_table(fitted):
    summary = json.loads((fitted / "summary.json").read_text())
    assert summary["n_subjects"] == 4 and summary["n_obs"] == 96 and summary["method"] == "focei"
    assert "covariance" in summary and set(summary["shrinkage_percent"]) == {"k_c"}
    ind = pd.read_csv(fitted / "individual.csv")
    assert len(ind) == 96 and {"PRED", "IPRED", "CWRES", "ETA_k_c"} <= set(ind.columns)


@pytest.mark.parametrize("name", ["gof.png", "vpc_cells.png", "vpc_PGE2.png", "vpc_IL10.png"])
def test_figures_are_written(fitted, name):
    image = plt.imread(fitted / name)
    assert image.shape[0] > 500 and image.shape[1] > 500


def test_the_one_output_form_still_works(tmp_path):
    assert main(["fit-population", "wang2007", str(ROOT / "tests" / "data" / "wang2007" / "wang2007.csv"), "--iiv",
                 "ke=0.04", "--error", "additive=0.3", "--maxeval", "0", "--vpc-replicates", "0", "--out",
                 str(tmp_path)]) == 0
    assert (tmp_path / "gof.png").is_file() and not list(tmp_path.glob("vpc_*"))


@pytest.mark.parametrize("error, words", [
    (["--error", "proportional=0.2"], "model 'msc_salvadori' has 5 outputs"),
    (["--error", "IL10=proportional", "--error", "IL10=additive"], "output 'IL10' is given twice"),
    (["--error", "IL-10=proportional"], "neither an output of model 'msc_salvadori'"),
])
def test_bad_error_options_are_one_line_errors(error, words, tmp_path, capsys):
    argv = COMMAND[:COMMAND.index("--error")] + error + ["--out", str(tmp_path)]
    assert main(argv) == 2
    assert words in capsys.readouterr().err


def test_repeated_iiv_options_are_all_kept_and_a_repeated_name_is_an_error(tmp_path, capsys):
    theo = ["fit-population", "pk_1cmt_oral", str(ROOT / "tests" / "data" / "theoph.csv"), "--dose-unit", "mg",
            "--error", "additive=0.7", "--maxeval", "0", "--vpc-replicates", "0"]
    assert main([*theo, "--iiv", "ka=0.6", "--iiv", "CL=0.3", "--out", str(tmp_path / "a")]) == 0
    table = pd.read_csv(tmp_path / "a" / "parameters.csv").set_index("name")
    assert table.loc["omega2_ka", "estimate"] == pytest.approx(0.6)
    assert table.loc["omega2_CL", "estimate"] == pytest.approx(0.3)
    assert main([*theo, "--iiv", "ka=0.6", "--iiv", "ka=0.1", "--out", str(tmp_path / "b")]) == 2
    assert "'ka' is given twice" in capsys.readouterr().err
