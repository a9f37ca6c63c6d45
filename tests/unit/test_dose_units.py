"""A dose unit is never guessed (issue 19): data with doses but no stated unit of AMT are refused, with a message
saying how to state it (dose_unit=, --dose-unit, an AMTU column, or 'target'), in read_nonmem, fit, fit_population,
nca and the command line; with the unit stated, the per-kg MSC example gives cells/kg x WT x f_lung at t = 0."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import pkpd
from pkpd.cli import main
from pkpd.errors import DataError
from pkpd.metrics import nca
from pkpd.nonmem import read_nonmem, simulate_nonmem

ROOT = Path(__file__).resolve().parents[2]
MSC_EXAMPLE = ROOT / "notebooks" / "data" / "msc_example.csv"  # AMT in cell/kg; subject 1: 1e6 cell/kg, WT 58 kg
F_LUNG = 0.85  # models/msc_salvadori.toml
HOW = ("dose_unit='cell/kg'", "--dose-unit cell/kg", "AMTU column", "dose_unit='target'")


def _refusal(err) -> str:
    text = str(err)
    for words in HOW:
        assert words in text, text
    return text


def test_read_nonmem_refuses_doses_without_a_unit():
    model = pkpd.load_model("msc_salvadori")
    with pytest.raises(DataError) as info:
        read_nonmem(MSC_EXAMPLE, model)
    text = _refusal(info.value)
    assert info.value.row == 2 and info.value.column == "AMT"  # row 1 of the file is a comment row
    assert "model 'msc_salvadori' doses: iv [cell]" in text


def test_data_without_doses_need_no_unit():
    ds = read_nonmem(pd.DataFrame({"ID": [1, 1], "TIME": [0, 1], "DV": [3.0, 2.0]}))
    assert ds.dose_unit is None


def test_the_per_kg_example_gives_cells_per_kg_times_weight_times_f_lung_through_the_api():
    model = pkpd.load_model("msc_salvadori")
    ds = read_nonmem(MSC_EXAMPLE, model, dose_unit="cell/kg")
    out = simulate_nonmem(model, ds)
    first = out.iloc[0]
    assert (first["ID"], first["TIME"], first["EVID"]) == (1, 0.0, 1)
    assert first["cells"] == pytest.approx(1e6 * 58.0 * F_LUNG, rel=1e-12)  # 49.3 million cells
    assert first["cells"] == pytest.approx(49.3e6, rel=1e-12)


def test_the_per_kg_example_through_the_cli(tmp_path, capsys):
    out = tmp_path / "r.csv"
    assert main(["simulate", "msc_salvadori", "--data", str(MSC_EXAMPLE), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "pkpd: error:" in err and "--dose-unit cell/kg" in err and not out.exists()
    assert main(["simulate", "msc_salvadori", "--data", str(MSC_EXAMPLE), "--dose-unit", "cell/kg",
                 "--out", str(out)]) == 0
    table = pd.read_csv(out)
    assert table.loc[0, "cells"] == pytest.approx(49.3e6, rel=1e-9)


def test_simulate_data_refuses_regimen_options_instead_of_ignoring_them(tmp_path, capsys):
    assert main(["simulate", "msc_salvadori", "--data", str(MSC_EXAMPLE), "--dose-unit", "cell/kg", "--dose", "2e6",
                 "--weight", "70", "--out", str(tmp_path / "r.csv")]) == 2
    err = capsys.readouterr().err
    assert "--dose, --weight cannot be used with --data" in err


def test_an_amtu_column_states_the_unit():
    frame = pd.read_csv(MSC_EXAMPLE, dtype=str).assign(AMTU="cell/kg")
    model = pkpd.load_model("msc_salvadori")
    ds = read_nonmem(frame, model)
    assert ds.dose_unit == "cell/kg"
    assert simulate_nonmem(model, ds)["cells"].iloc[0] == pytest.approx(49.3e6, rel=1e-12)


@pytest.mark.parametrize("cells, given, words", [
    (["cell/kg", "cell"], None, "AMTU names several units (cell/kg, cell)"),
    (["cell/kg", "."], None, "AMTU (the unit of AMT) is missing on a dose record"),
    (["cell/kg", "cell/kg"], "cell", "dose_unit='cell' contradicts column AMTU ('cell/kg')"),
    (["zorkmid", "zorkmid"], None, "AMTU 'zorkmid'"),
])
def test_a_bad_amtu_column_is_a_clear_error(cells, given, words):
    frame = pd.DataFrame({"ID": [1, 2], "TIME": [0, 0], "AMT": [1e6, 1e6], "AMTU": cells, "WT": [70, 70]})
    with pytest.raises(DataError, match=words.replace("(", r"\(").replace(")", r"\)")):
        read_nonmem(frame, dose_unit=given)


def test_target_states_that_amt_is_in_each_dose_targets_unit():
    model = pkpd.load_model("msc_salvadori")
    ds = read_nonmem(MSC_EXAMPLE, model, dose_unit="target")
    # AMT (1e6) taken as cells, the model's dose unit, as the user said: 1e6 x f_lung
    assert simulate_nonmem(model, ds)["cells"].iloc[0] == pytest.approx(1e6 * F_LUNG, rel=1e-12)


def test_fit_refuses_a_table_without_a_dose_unit():
    model = pkpd.load_model("pk_1cmt_iv")
    data = pd.DataFrame({"ID": 1, "TIME": [0.0, 1.0, 2.0], "EVID": [1, 0, 0], "AMT": [100.0, 0, 0],
                         "DV": [np.nan, 3.0, 2.9]})
    with pytest.raises(DataError) as info:
        pkpd.fit(model, data, estimate=["CL"], error={"conc": pkpd.Additive(sd=0.1)})
    _refusal(info.value)


def test_fit_population_refuses_a_file_without_a_dose_unit():
    with pytest.raises(DataError) as info:
        pkpd.fit_population("pk_1cmt_oral", ROOT / "tests" / "data" / "theoph.csv", iiv={"CL": 0.1},
                            error=pkpd.Additive(sd=0.7), maxeval=0)
    _refusal(info.value)


def test_nca_refuses_doses_without_a_unit(tmp_path, capsys):
    data = pd.DataFrame({"ID": 1, "TIME": [0.0, 1, 2, 4], "EVID": [1, 0, 0, 0], "AMT": [100, 0, 0, 0],
                         "DV": [np.nan, 3.0, 2.0, 1.0]})
    with pytest.raises(DataError) as info:
        nca(data)
    _refusal(info.value)
    path = tmp_path / "d.csv"
    data.to_csv(path, index=False)
    assert main(["nca", str(path), "--out", str(tmp_path / "n.csv")]) == 2
    assert "--dose-unit" in capsys.readouterr().err
    assert nca(data, dose_unit="mg", conc_unit="mg/L").attrs["units"]["cl"] == "L / h"


@pytest.mark.parametrize("command", [
    ["fit", "pk_1cmt_oral", "THEOPH", "--estimate", "CL", "--error", "conc=additive", "--out", "OUT"],
    ["fit-population", "pk_1cmt_oral", "THEOPH", "--iiv", "CL=0.1", "--error", "additive=0.7", "--maxeval", "0",
     "--out", "OUT"],
])
def test_cli_fits_refuse_data_without_a_dose_unit(command, tmp_path, capsys):
    argv = [str(ROOT / "tests" / "data" / "theoph.csv") if a == "THEOPH" else str(tmp_path / "o") if a == "OUT"
            else a for a in command]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "the unit of AMT is not stated" in err and "--dose-unit" in err
