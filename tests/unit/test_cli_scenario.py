"""The ``pkpd nca`` and ``pkpd scenario`` commands (issue 6), called in-process."""

from __future__ import annotations

import math
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from pkpd.cli import main  # noqa: E402

CL, V = 2.8, 32.0
SHIPPED_SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "msc_sepsis_dose_ranging.toml"


def _error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pkpd: error: ") and "Traceback" not in err, err
    return lines[0]


def _nonmem_csv(path: Path) -> Path:
    rows = []
    for sid, cl in ((1, CL), (2, 2 * CL)):
        rows.append({"ID": sid, "TIME": 0, "EVID": 1, "AMT": 100, "DV": ".", "DVID": "."})
        for t in np.arange(0.5, 48.5, 0.5):
            rows.append({"ID": sid, "TIME": t, "EVID": 0, "AMT": 0, "DV": 100 / V * math.exp(-cl / V * t),
                         "DVID": "conc"})
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


# --- pkpd nca -----------------------------------------------------------------------------------------------------
def test_nca_writes_one_row_per_subject_and_output_with_units_in_the_header(tmp_path, capsys):
    data = _nonmem_csv(tmp_path / "data.csv")
    out = tmp_path / "nca.csv"
    assert main(["nca", str(data), "--out", str(out), "--route", "iv-bolus", "--dose-unit", "mg",
                 "--conc-unit", "mg/L"]) == 0
    assert "wrote" in capsys.readouterr().out
    table = pd.read_csv(out)
    assert list(table["ID"]) == [1, 2]
    assert "cl [L / h]" in table.columns and "half_life [h]" in table.columns and "vz [L]" in table.columns
    np.testing.assert_allclose(table["cl [L / h]"], [CL, 2 * CL], rtol=1e-6)
    np.testing.assert_allclose(table["half_life [h]"], [math.log(2) * V / CL, math.log(2) * V / (2 * CL)], rtol=1e-6)


def test_nca_of_a_missing_file_is_a_one_line_error(tmp_path, capsys):
    assert main(["nca", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "x.csv")]) == 2
    assert "data file" in _error_line(capsys)


def test_nca_of_a_multiple_dose_subject_names_it(tmp_path, capsys):
    path = tmp_path / "d.csv"
    pd.DataFrame({"ID": [1, 1, 1, 1], "TIME": [0, 1, 12, 13], "EVID": [1, 0, 1, 0], "AMT": [5, 0, 5, 0],
                  "DV": [".", 1.0, ".", 1.2]}).to_csv(path, index=False)
    assert main(["nca", str(path), "--out", str(tmp_path / "x.csv"), "--dose-unit", "mg"]) == 2
    assert re.search(r"ID 1: NCA here is single-dose", _error_line(capsys))


# --- pkpd scenario --------------------------------------------------------------------------------------------------
SMALL = """
[scenario]
name = "1-cmt dose ranging"
model = "pk_1cmt_iv"
seed = 3
times = {start = 0, stop = 48, step = 0.5}

[population]
n = 30
omega = {CL = 0.3, V = 0.2}

[arms.iv]
doses = [25, 50, 100, 200]
unit = "mg"
duration = 0.5

[endpoints.AUC]
output = "conc"
metric = "auc"
start = 0
end = 48
method = "log-down"

[endpoints.above_1]
output = "conc"
metric = "time_above"
threshold = 1000
threshold_unit = "ng/mL"
end = 48

[[targets]]
endpoint = "AUC"
op = ">="
value = 20
unit = "mg*h/L"

[sensitivity]
arm = "iv: 100 mg"
"""


def test_scenario_writes_the_report_figures_and_tables(tmp_path, capsys):
    path = tmp_path / "s.toml"
    path.write_text(SMALL)
    out = tmp_path / "report"
    assert main(["scenario", str(path), "--out", str(out)]) == 0
    assert "report.html" in capsys.readouterr().out
    page = (out / "report.html").read_text()
    for stem in ("time_course", "exposure", "dose_response", "target_attainment", "tornado"):
        assert (out / "figures" / f"{stem}.png").read_bytes()[:4] == b"\x89PNG"
        assert b"<svg" in (out / "figures" / f"{stem}.svg").read_bytes()[:2000]
        assert f"id='fig-{stem}'><img src='data:image/png;base64," in page  # embedded: the page is complete
    for name in ("summary", "attainment", "dose_response", "parameters", "arms", "endpoints", "population"):
        assert (out / "tables" / f"{name}.csv").is_file() and (out / "tables" / f"{name}.md").is_file()
    assert "pk_1cmt_iv" in page and "v1.0" in page and "textbook theophylline value" in page
    att = pd.read_csv(out / "tables" / "attainment.csv")
    assert len(att) == 4 and att["probability"].is_monotonic_increasing


def test_scenario_seed_option_changes_the_population(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(SMALL)
    assert main(["scenario", str(path), "--out", str(tmp_path / "a")]) == 0
    assert main(["scenario", str(path), "--out", str(tmp_path / "b"), "--seed", "4"]) == 0
    a = pd.read_csv(tmp_path / "a" / "tables" / "population.csv")
    b = pd.read_csv(tmp_path / "b" / "tables" / "population.csv")
    assert not np.allclose(a["CL"], b["CL"])


def test_scenario_with_a_bad_target_unit_is_a_one_line_error(tmp_path, capsys):
    path = tmp_path / "s.toml"
    path.write_text(SMALL.replace('unit = "mg*h/L"', 'unit = "h"'))
    assert main(["scenario", str(path), "--out", str(tmp_path / "r")]) == 2
    assert "cannot be compared with endpoint 'AUC'" in _error_line(capsys)


def test_shipped_example_scenario_loads():
    from pkpd.scenarios import load_scenario

    sc = load_scenario(SHIPPED_SCENARIO)
    assert sc.model.name == "msc_sepsis" and len(sc.arms) == 13 and sc.population.n == 200


@pytest.mark.parametrize("command", ["nca", "scenario"])
def test_help_of_the_new_commands(command, capsys):
    assert main([command, "--help"]) == 0
    assert "example" in capsys.readouterr().out
