"""One bounds policy everywhere (issue 19): bounds are plausible ranges. A value outside is used, with one
BoundsWarning naming the parameter and its range (with_parameters, simulate's params, --param, NONMEM simulation);
a model file whose value lies outside its own bounds is an error; only fitting enforces bounds."""

import warnings

import numpy as np
import pandas as pd
import pytest

import pkpd
from pkpd.cli import main
from pkpd.errors import BoundsWarning, FitError, ModelFileError

MSC = "msc_salvadori"  # k_c bounds [0.01444, 0.05776] 1/h


def _one_bounds_warning(record) -> str:
    found = [w for w in record if issubclass(w.category, BoundsWarning)]
    assert len(found) == 1, [str(w.message) for w in record]
    return str(found[0].message)


def test_with_parameters_outside_bounds_is_used_with_one_warning():
    model = pkpd.load_model(MSC)
    with pytest.warns(BoundsWarning) as record:
        changed = model.with_parameters(k_c=5.0, e_max=-3.0)
    message = _one_bounds_warning(record)
    assert changed.parameter("k_c").value == 5.0
    assert "k_c = 5 1/h is outside its plausible range [0.01444, 0.05776] 1/h" in message
    assert "e_max = -3 is outside its plausible range [-1, 100]" in message


def test_with_parameters_inside_bounds_is_silent():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert pkpd.load_model(MSC).with_parameters(k_c=0.02).parameter("k_c").value == 0.02


def test_simulate_params_outside_bounds_warns_and_uses_the_value():
    model = pkpd.load_model(MSC)
    regimen = pkpd.Regimen.single(pkpd.Dose(1e8, "cell"))
    with pytest.warns(BoundsWarning, match=r"k_c = 0\.2 1/h is outside its plausible range"):
        sim = pkpd.simulate(model, regimen, [0.0, 10.0], params={"k_c": 0.2})
    # the value was used: cells = dose x f_lung x exp(-k_c t)
    assert sim["cells"][0, 1] == pytest.approx(1e8 * 0.85 * np.exp(-0.2 * 10), rel=1e-6)


def test_population_values_are_judged_by_their_median():
    model = pkpd.load_model(MSC)
    regimen = pkpd.Regimen.single(pkpd.Dose(1e8, "cell"))
    spread = 0.0289 * np.exp(np.linspace(-2, 2, 41))  # tails outside the range, median inside: no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pkpd.simulate(model, regimen, [0.0, 10.0], params={"k_c": spread})
    with pytest.warns(BoundsWarning, match=r"k_c \(median of 41 values 0\.2\) 1/h is outside"):
        pkpd.simulate(model, regimen, [0.0, 10.0], params={"k_c": spread / 0.0289 * 0.2})


def test_cli_param_outside_bounds_warns_on_stderr(tmp_path, capsys):
    out = tmp_path / "sim.csv"
    assert main(["simulate", MSC, "--dose", "1e8", "--dose-unit", "cell", "--until", "10", "--param", "k_c=0.1",
                 "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "pkpd: warning:" in err and "k_c = 0.1 1/h is outside its plausible range" in err
    assert out.is_file()


def test_fitting_enforces_bounds_on_starting_values():
    model = pkpd.load_model("pk_1cmt_iv")
    observed = pd.DataFrame({"ID": 1, "TIME": [1.0, 2.0, 4.0], "DV": [2.9, 2.6, 2.2]})
    data = pkpd.nonmem.from_regimen(pkpd.Regimen.single(pkpd.Dose(100, "mg")), observations=observed)
    with pytest.warns(BoundsWarning):
        start = model.with_parameters(CL=1000.0)
    with pytest.raises(FitError, match=r"'CL' starts at 1000 L/h, outside its bounds"):
        pkpd.fit(start, data, estimate=["CL"], error={"conc": pkpd.Additive(sd=0.1)})


def test_model_file_value_outside_its_own_bounds_is_an_error(tmp_path):
    text = pkpd.load.dump_model(pkpd.load_model("pk_1cmt_iv")).replace("value = 2.8", "value = 1000.0", 1)
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ModelFileError, match=r"\[parameters.CL\] value: value 1000 is outside the bounds"):
        pkpd.load_model(path)


def test_simulate_summary_checks_the_whole_population_once():
    model = pkpd.load_model("pk_1cmt_iv")
    regimen = pkpd.Regimen.single(pkpd.Dose(100, "mg"))
    cl = np.array([2.8, 1e4, 3.0, 2.0])  # median 2.9: inside, although the chunk [1e4, 3.0]... has a median outside
    with warnings.catch_warnings():
        warnings.simplefilter("error", BoundsWarning)
        pkpd.simulate_summary(model, regimen, np.linspace(0, 24, 5), params={"CL": cl}, chunk_size=2, progress=False,
                              settings=pkpd.SolverSettings(on_failure="mark"))
    with pytest.warns(BoundsWarning, match=r"CL \(median of 4 values 1000\)") as record:
        pkpd.simulate_summary(model, regimen, np.linspace(0, 24, 5), params={"CL": np.full(4, 1000.0)},
                              chunk_size=2, progress=False, settings=pkpd.SolverSettings(on_failure="mark"))
    assert len([w for w in record if issubclass(w.category, BoundsWarning)]) == 1
