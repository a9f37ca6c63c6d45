"""Unit tests for the ``pkpd`` command line (pkpd.cli.main, called in-process; one behaviour per test)."""

from __future__ import annotations

import re
import subprocess
import sys

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

import pkpd  # noqa: E402
from pkpd.cli import main  # noqa: E402

# pk_1cmt_iv typical values: CL 2.8 L/h, V 32 L; bolus into the central compartment, conc = A / V.
CL, V = 2.8, 32.0
PK = ["simulate", "pk_1cmt_iv", "--until", "24"]


def _bolus_conc(t, dose_mg, cl=CL, v=V):
    """Closed-form 1-compartment IV bolus concentration [mg/L]."""
    return dose_mg / v * np.exp(-cl / v * np.asarray(t))


def _conc(csv_path) -> pd.DataFrame:
    table = pd.read_csv(csv_path)
    return table[table["name"] == "conc"].reset_index(drop=True)


def _assert_error(capsys, pattern: str) -> None:
    """stderr holds exactly one line, ``pkpd: error: ...``, matching ``pattern``, and no traceback."""
    line = _error_line(capsys)
    assert re.search(pattern, line), line


def _error_line(capsys) -> str:
    """The single stderr line of a failed command (asserting there is exactly one, and no traceback)."""
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("pkpd: error: ")
    assert "Traceback" not in err
    return lines[0]


# --- models and show -----------------------------------------------------------------------------------------------


def test_models_lists_every_shipped_model_with_a_one_line_description(capsys):
    assert main(["models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == pkpd.models()
    salvadori = next(line for line in lines if line.startswith("msc_salvadori "))
    assert "Two-functional-compartment PK-PD model" in salvadori
    assert all(len(line) <= 140 for line in lines)


def test_show_prints_the_model_with_parameter_units_and_sources(capsys):
    assert main(["show", "msc_salvadori"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(repr(pkpd.load_model("msc_salvadori")))
    for text in ("states: C [cell]", "outputs: cells [cell]", "doses: iv -> C [cell]", "k_c", "1/h", "Lee 2009"):
        assert text in out


def test_show_accepts_a_path_to_a_model_file(capsys):
    path = pkpd.load_model("pk_1cmt_iv").file
    assert main(["show", path]) == 0
    assert capsys.readouterr().out.startswith("Model 'pk_1cmt_iv'")


# --- simulate ------------------------------------------------------------------------------------------------------


def test_simulate_writes_the_tidy_csv_and_a_png(tmp_path, capsys):
    out, fig = tmp_path / "sim.csv", tmp_path / "sim.png"
    argv = ["simulate", "msc_salvadori", "--dose", "2e6", "--dose-unit", "cell/kg", "--weight", "70", "--every", "72",
            "--count", "4", "--until", "336", "--out", str(out), "--plot", str(fig)]
    assert main(argv) == 0
    table = pd.read_csv(out)
    assert list(table.columns) == ["ID", "TIME", "name", "value", "unit"]
    model = pkpd.load_model("msc_salvadori")
    assert list(table["name"].unique()) == list(model.output_names)
    assert dict(zip(table["name"], table["unit"])) == {o.name: o.unit for o in model.outputs}
    np.testing.assert_array_equal(table["TIME"].unique(), np.arange(0, 337.0))
    assert fig.read_bytes()[:4] == b"\x89PNG"
    assert f"wrote {out}" in capsys.readouterr().out


def test_simulated_bolus_matches_the_closed_form(tmp_path):
    assert main([*PK, "--dose", "100", "--dose-unit", "mg", "--out", str(tmp_path / "a.csv")]) == 0
    conc = _conc(tmp_path / "a.csv")
    np.testing.assert_allclose(conc["value"], _bolus_conc(conc["TIME"], 100.0), rtol=1e-6)


def test_per_kg_dose_is_multiplied_by_the_weight(tmp_path):
    assert main([*PK, "--dose", "2", "--dose-unit", "mg/kg", "--weight", "50", "--out", str(tmp_path / "a.csv")]) == 0
    conc = _conc(tmp_path / "a.csv")
    np.testing.assert_allclose(conc["value"], _bolus_conc(conc["TIME"], 100.0), rtol=1e-6)


def test_repeated_doses_superpose(tmp_path):
    argv = [*PK, "--dose", "100", "--dose-unit", "mg", "--every", "12", "--count", "2",
            "--out", str(tmp_path / "a.csv")]
    assert main(argv) == 0
    conc = _conc(tmp_path / "a.csv")
    t = conc["TIME"].to_numpy()
    expected = _bolus_conc(t, 100.0) + np.where(t >= 12, _bolus_conc(np.maximum(t - 12, 0), 100.0), 0.0)
    np.testing.assert_allclose(conc["value"], expected, rtol=1e-6)


def test_param_overrides_a_parameter(tmp_path):
    argv = [*PK, "--dose", "100", "--dose-unit", "mg", "--param", "CL=5", "--param", "V=20",
            "--out", str(tmp_path / "a.csv")]
    assert main(argv) == 0
    conc = _conc(tmp_path / "a.csv")
    np.testing.assert_allclose(conc["value"], _bolus_conc(conc["TIME"], 100.0, cl=5.0, v=20.0), rtol=1e-6)


def test_infusion_hours_gives_each_dose_as_an_infusion(tmp_path):
    argv = [*PK, "--dose", "100", "--dose-unit", "mg", "--infusion-hours", "2", "--out", str(tmp_path / "a.csv")]
    assert main(argv) == 0
    conc = _conc(tmp_path / "a.csv")
    k, rate = CL / V, 100.0 / 2.0
    t = conc["TIME"].to_numpy()
    during = rate / CL * (1 - np.exp(-k * np.minimum(t, 2.0)))
    expected = np.where(t <= 2.0, during, during * np.exp(-k * (t - 2.0)))
    np.testing.assert_allclose(conc["value"], expected, rtol=1e-6, atol=1e-12)


def test_output_times_step_from_zero_and_end_at_until(tmp_path):
    argv = ["simulate", "pk_1cmt_iv", "--dose", "1", "--dose-unit", "mg", "--until", "10", "--step", "4", "--out",
            str(tmp_path / "a.csv")]
    assert main(argv) == 0
    assert _conc(tmp_path / "a.csv")["TIME"].tolist() == [0.0, 4.0, 8.0, 10.0]


def test_include_states_adds_the_states_to_the_csv(tmp_path):
    argv = [*PK, "--dose", "1", "--dose-unit", "mg", "--include-states", "--out", str(tmp_path / "a.csv")]
    assert main(argv) == 0
    assert set(pd.read_csv(tmp_path / "a.csv")["name"]) == {"conc", "central"}


def test_plot_alone_writes_only_the_figure(tmp_path):
    assert main([*PK, "--dose", "1", "--dose-unit", "mg", "--plot", str(tmp_path / "a.svg")]) == 0
    assert [p.name for p in tmp_path.iterdir()] == ["a.svg"]


# --- errors: one line, exit status 2, nothing written ----------------------------------------------------------------


@pytest.mark.parametrize(("extra", "message"), [
    (["--param", "Cl=3"], r"unknown parameter 'Cl'.*Did you mean 'CL'"),
    (["--param", "CL"], r"--param 'CL' is not NAME=VALUE"),
    (["--param", "CL=fast"], r"'fast' is not a number"),
    (["--dose-unit", "mg/kg"], r"per kg of body weight; give the weight with --weight"),
    (["--dose-unit", "cell"], r"unit does not match dose target 'iv', which takes 'mg'"),
    (["--count", "3"], r"--count 3 needs --every"),
    (["--every", "12"], r"--every 12 has no effect with a single dose"),
    (["--target", "oral"], r"unknown dose target 'oral'"),
    (["--until", "-5"], r"--until must be a finite number > 0"),
    (["--rtol", "2"], r"rtol"),
])
def test_bad_simulate_options_give_one_line_and_exit_2(tmp_path, capsys, extra, message):
    out = tmp_path / "a.csv"
    argv = [*PK, "--dose", "1", "--dose-unit", "mg", "--out", str(out)]
    # later options win in argparse, so `extra` replaces the defaults above
    assert main(argv + extra) == 2
    assert not any(tmp_path.iterdir())
    _assert_error(capsys, message)


def test_unknown_model_is_named_with_close_matches(tmp_path, capsys):
    assert main(["simulate", "msc_salvador", "--dose", "1", "--dose-unit", "cell", "--until", "1", "--out",
                 str(tmp_path / "a.csv")]) == 2
    _assert_error(capsys, r"no model called 'msc_salvador'.*Did you mean 'msc_salvadori'")


def test_negative_dose_is_an_error(tmp_path, capsys):
    assert main([*PK, "--dose", "-1", "--dose-unit", "mg", "--out", str(tmp_path / "a.csv")]) == 2
    _assert_error(capsys, r"amount must be a finite number >= 0; got -1")


def test_missing_weight_for_a_per_kg_dose_is_an_error(tmp_path, capsys):
    argv = ["simulate", "msc_salvadori", "--dose", "2e6", "--dose-unit", "cell/kg", "--until", "24", "--out",
            str(tmp_path / "a.csv")]
    assert main(argv) == 2
    _assert_error(capsys, r"--dose-unit 'cell/kg' is per kg of body weight.*--weight KG")


def test_weight_for_a_model_without_weight_covariate_is_an_error(tmp_path, capsys):
    argv = ["simulate", "pk_2cmt_iv", "--dose", "1", "--dose-unit", "mg", "--weight", "70", "--until", "1", "--out",
            str(tmp_path / "a.csv")]
    assert main(argv) == 2
    _assert_error(capsys, r"no body-weight covariate WT")


def test_missing_dose_is_an_error(tmp_path, capsys):
    assert main([*PK, "--out", str(tmp_path / "a.csv")]) == 2
    _assert_error(capsys, r"--dose and --dose-unit missing")


def test_nothing_to_write_is_an_error(capsys):
    assert main([*PK, "--dose", "1", "--dose-unit", "mg"]) == 2
    _assert_error(capsys, r"nothing to write; give --out")


def test_a_missing_output_folder_is_named(tmp_path, capsys):
    assert main([*PK, "--dose", "1", "--dose-unit", "mg", "--out", str(tmp_path / "no" / "a.csv")]) == 2
    _assert_error(capsys, r"folder .*no' does not exist")


def test_usage_errors_are_one_line_with_exit_2(capsys):
    assert main([*PK, "--dose", "lots"]) == 2
    _assert_error(capsys, r"argument --dose: invalid float value: 'lots' \(see 'pkpd simulate --help'\)")


def test_a_missing_command_is_a_usage_error(capsys):
    assert main([]) == 2
    _assert_error(capsys, "COMMAND")


# --- help and entry points -----------------------------------------------------------------------------------------


def test_simulate_help_states_the_units(capsys):
    assert main(["simulate", "--help"]) == 0
    out = capsys.readouterr().out
    for text in ("--every HOURS", "[h]", "cell/kg", "--weight KG", "[kg]", "ID, TIME", "300 dpi"):
        assert text in out


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"pkpd {pkpd.__version__}"


def test_python_dash_m_pkpd_runs_the_command_line():
    result = subprocess.run([sys.executable, "-m", "pkpd", "show", "no_such_model"], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.startswith("pkpd: error: no model called 'no_such_model'")
    assert result.stdout == ""


def test_simulate_nonmem_dataset_writes_one_row_per_record(tmp_path, capsys):
    import pandas as pd

    from pkpd.cli import main

    data = tmp_path / "data.csv"
    data.write_text("ID,TIME,EVID,AMT,CMT,DV\n1,0,1,100,1,.\n1,1,0,0,2,.\n1,2,0,0,2,.\n2,0,1,50,1,.\n2,4,0,0,2,.\n")
    out = tmp_path / "out.csv"
    assert main(["simulate", "nmtest_1cmt_oral", "--data", str(data), "--dose-unit", "mg", "--out", str(out)]) == 0
    table = pd.read_csv(out)
    assert list(table["ID"]) == [1, 1, 1, 2, 2] and {"ID", "TIME", "EVID", "CP"} <= set(table.columns)
    # one-compartment oral closed form (CL 1.1 L/h, V 20 L, KA 1.5 1/h), CP in ng/mL
    import numpy as np

    ka, k, V = 1.5, 1.1 / 20, 20.0
    cp = lambda amt, t: amt * ka / (V * (ka - k)) * (np.exp(-k * t) - np.exp(-ka * t)) * 1000  # noqa: E731
    np.testing.assert_allclose(table["CP"].to_numpy()[[1, 2, 4]], [cp(100, 1), cp(100, 2), cp(50, 4)], rtol=1e-6)
