"""Bad input gets a clear error naming the problem, and nothing runs (issue 2)."""

import math
from pathlib import Path

import numpy as np
import pytest

import pkpd
from pkpd.errors import DosingError, ModelFileError, PkpdError, UnitError

GOOD = """
[model]
name = "decay"
time_unit = "h"
description = "test model"

[parameters.k]
value = 0.1
unit = "1/h"
bounds = [0.001, 10.0]

[parameters.V]
value = 10.0
unit = "L"
bounds = [1.0, 100.0]

[covariates.WT]
unit = "kg"
value = 70

[states.A]
unit = "mg"
initial = "0"
ddt = "-k * A"

[outputs.conc]
expression = "A / V"
unit = "mg/L"

[doses.iv]
target = "A"
unit = "mg"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "m.toml"
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def model():
    return pkpd.load_model("pk_1cmt_iv")


def test_good_file_loads(tmp_path):
    m = pkpd.load_model(write(tmp_path, GOOD))
    assert m.state_names == ("A",)


def test_unknown_parameter_in_simulate(model):
    with pytest.raises(PkpdError, match=r"unknown parameter 'Cl'.*Did you mean 'CL'"):
        pkpd.simulate(model, None, [0, 1], params={"Cl": 1.0})


def test_unknown_parameter_in_with_parameters(model):
    with pytest.raises(ModelFileError, match="unknown parameter 'VV'"):
        model.with_parameters(VV=3.0)


def test_with_parameters_outside_bounds_warns(model):
    # bounds are plausible ranges: used with one warning, enforced by fitting only (issue 19, tests/unit/test_bounds.py)
    with pytest.warns(pkpd.errors.BoundsWarning, match=r"CL = -1 L/h is outside its plausible range"):
        assert model.with_parameters(CL=-1.0).parameter("CL").value == -1.0


@pytest.mark.parametrize("amount", [-1.0, math.nan, math.inf])
def test_negative_or_nan_dose(amount):
    with pytest.raises(DosingError, match="amount"):
        pkpd.Dose(amount, "mg")


@pytest.mark.parametrize("duration", [0.0, -1.0])
def test_infusion_with_non_positive_duration(duration):
    with pytest.raises(DosingError, match="duration"):
        pkpd.Regimen.single(pkpd.Dose(10, "mg"), duration=duration)


def test_times_not_increasing(model):
    with pytest.raises(PkpdError, match="strictly increasing"):
        pkpd.simulate(model, None, [0, 2, 1])


def test_weight_missing_for_per_kg_dose(model):
    with pytest.raises(DosingError, match="weight"):
        pkpd.simulate(model, pkpd.Regimen.single(pkpd.Dose(1, "mg/kg")), [0, 1])


def test_dose_unit_incompatible_with_target(model):
    with pytest.raises(DosingError, match="unit"):
        pkpd.simulate(model, pkpd.Regimen.single(pkpd.Dose(1, "cell")), [0, 1])


def test_unknown_dose_target(model):
    with pytest.raises(DosingError, match="unknown dose target 'oral'"):
        pkpd.simulate(model, pkpd.Regimen.single(pkpd.Dose(1, "mg"), target="oral"), [0, 1])


def test_model_with_unknown_name():
    with pytest.raises(ModelFileError, match="no model called 'msc_salvadory'.*msc_salvadori"):
        pkpd.load_model("msc_salvadory")


def test_unit_mismatch_names_file_section_and_key(tmp_path):
    path = write(tmp_path, GOOD.replace('ddt = "-k * A"', 'ddt = "-k * A / V"'))
    with pytest.raises(UnitError) as err:
        pkpd.load_model(path)
    msg = str(err.value)
    assert str(path) in msg and "[states.A]" in msg and "ddt" in msg and "mg / h / L" in msg


def test_unknown_unit(tmp_path):
    with pytest.raises(UnitError, match=r"\[parameters.k\] unit: unit '1/hx' is not recognised"):
        pkpd.load_model(write(tmp_path, GOOD.replace('unit = "1/h"', 'unit = "1/hx"')))


def test_syntax_error(tmp_path):
    with pytest.raises(ModelFileError, match=r"\[states.A\] ddt: syntax error"):
        pkpd.load_model(write(tmp_path, GOOD.replace('"-k * A"', '"-k * (A"')))


@pytest.mark.parametrize("code", ["__import__('os').system('echo pwned')", "A.__class__", "open('x')",
                                  "(lambda: 1)()", "A[0]", "'text'", "exec('1')"])
def test_python_code_is_rejected_before_anything_runs(tmp_path, code):
    path = write(tmp_path, GOOD.replace('"-k * A"', repr(code).replace("'", '"') if '"' not in code else "x"))
    text = GOOD.replace('ddt = "-k * A"', "ddt = " + _toml_str(code))
    path.write_text(text)
    with pytest.raises(ModelFileError, match=r"\[states.A\] ddt"):
        pkpd.load_model(path)


def _toml_str(s: str) -> str:
    return "'" + s.replace("'", "\u2019") + "'" if "'" in s and '"' in s else ('"' + s + '"' if '"' not in s else
                                                                              "'" + s + "'")


def test_unknown_name_in_expression(tmp_path):
    with pytest.raises(ModelFileError, match="unknown name 'kk'.*Did you mean 'k'"):
        pkpd.load_model(write(tmp_path, GOOD.replace('"-k * A"', '"-kk * A"')))


def test_unknown_section_and_key(tmp_path):
    with pytest.raises(ModelFileError, match="unknown section"):
        pkpd.load_model(write(tmp_path, GOOD + "\n[paramters.x]\nvalue = 1\n"))
    with pytest.raises(ModelFileError, match="unknown key 'valu'"):
        pkpd.load_model(write(tmp_path, GOOD.replace("value = 0.1", "valu = 0.1")))


def test_value_outside_bounds_in_file(tmp_path):
    with pytest.raises(ModelFileError, match=r"\[parameters.k\] value"):
        pkpd.load_model(write(tmp_path, GOOD.replace("value = 0.1", "value = 20.0")))


def test_initial_value_may_not_use_states(tmp_path):
    text = GOOD.replace('[states.A]\nunit = "mg"\ninitial = "0"', '[states.A]\nunit = "mg"\ninitial = "A"')
    with pytest.raises(ModelFileError, match="cannot be used here"):
        pkpd.load_model(write(tmp_path, text))


def test_non_finite_parameter_values_in_batch(model):
    with pytest.raises(PkpdError, match="CL"):
        pkpd.simulate(model, None, [0, 1], params={"CL": np.array([1.0, np.nan])})


def test_inconsistent_batch_sizes(model):
    with pytest.raises(PkpdError, match="inconsistent number of subjects"):
        pkpd.simulate(model, [pkpd.Regimen.none()] * 3, [0, 1], params={"CL": np.array([1.0, 2.0])})


def test_solver_failure_names_subject_and_time(model):
    settings = pkpd.SolverSettings(method="ode", max_steps=3)  # the ODE solver (the closed form takes no steps)
    with pytest.raises(pkpd.SimulationError, match=r"subject 1, t = .*too many steps"):
        pkpd.simulate(model, pkpd.Regimen.single(pkpd.Dose(100, "mg")), np.linspace(0, 100, 5), settings=settings)


def test_overflowing_parameters_are_a_solver_failure_not_a_crash(model):
    # CL = -1e300 overflows to inf and divides by zero inside the compiled batch: reported like any failure, as a
    # non-finite derivative (each step across it was rejected until the step underflowed)
    with pytest.raises(pkpd.SimulationError, match="subject 2, t = 0: .*non-finite values.*overflow"), \
            pytest.warns(pkpd.errors.BoundsWarning):
        pkpd.simulate(model, pkpd.Regimen.single(pkpd.Dose(100, "mg")), [1.0, 2.0],
                      params={"CL": np.array([1.0, -1e300])}, settings=pkpd.SolverSettings(method="ode"))
    # the closed form of this linear model overflows in its matrix exponential: a non-finite state
    with pytest.raises(pkpd.SimulationError, match="subject 2, t = .*non-finite values"), \
            pytest.warns(pkpd.errors.BoundsWarning):
        pkpd.simulate(model, pkpd.Regimen.single(pkpd.Dose(100, "mg")), [1.0, 2.0],
                      params={"CL": np.array([1.0, -1e300])})


def test_solver_failure_can_be_marked_instead(model):
    settings = pkpd.SolverSettings(method="ode", max_steps=3, on_failure="mark")
    sim = pkpd.simulate(model, pkpd.Regimen.single(pkpd.Dose(100, "mg")), np.linspace(0, 100, 5), settings=settings)
    assert sim.status[0] == 1 and np.all(np.isnan(sim.outputs["conc"]))
    assert "FAILED" in repr(sim)


def test_bad_solver_settings():
    with pytest.raises(PkpdError, match="unknown method 'rk45'"):
        pkpd.SolverSettings(method="rk45")
    with pytest.raises(PkpdError, match="rtol"):
        pkpd.SolverSettings(rtol=0)


def test_params_that_are_not_a_mapping(model):
    with pytest.raises(PkpdError, match="must be a mapping"):
        pkpd.simulate(model, None, [0, 1], params=[1.0, 2.0])


@pytest.mark.parametrize("flag", ['"no"', "0", '"false"'])
def test_an_assumption_flag_that_is_not_true_or_false_is_refused(tmp_path, flag):
    """assumption is a TOML boolean: "no" (truthy as a string) must not mark a measured value as an assumption."""
    path = write(tmp_path, GOOD.replace('bounds = [0.001, 10.0]', f'bounds = [0.001, 10.0]\nassumption = {flag}'))
    with pytest.raises(ModelFileError) as err:
        pkpd.load_model(path)
    value = {'"no"': "'no'", "0": "0", '"false"': "'false'"}[flag]
    assert str(err.value) == f"{path} [parameters.k] assumption: assumption must be true or false; got {value}"
    good = pkpd.load_model(write(tmp_path, GOOD.replace('bounds = [0.001, 10.0]',
                                                        'bounds = [0.001, 10.0]\nassumption = true')))
    assert good.parameter("k").assumption is True


@pytest.mark.parametrize("build", [
    lambda m, z: m.with_parameters(CL=z),
    lambda m, z: pkpd.Proportional(z),
    lambda m, z: pkpd.IIV({"CL": z}),
    lambda m, z: pkpd.NormalPrior(mean=z, sd=1.0),
], ids=["with_parameters", "Proportional", "IIV", "NormalPrior"])
def test_a_complex_numpy_number_is_not_a_real_number(model, build):
    """A numpy complex scalar is refused where a real number is asked for, naming the value: ``float()`` of one drops
    the imaginary part (with only a ComplexWarning), so ``(2+3j)`` silently became 2.0. The same value as a real
    numpy scalar is accepted and kept (``np.float64(2.0)``)."""
    with pytest.raises(PkpdError, match=r"must be a (positive )?number; got np\.complex128\(2\+3j\)"):
        build(model, np.complex128(2 + 3j))
    build(model, np.float64(2.0))
