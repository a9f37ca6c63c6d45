"""Rules of pkpd.simulate that the mutation audit (issue 20) found unguarded, each against an answer worked out in
the test: the memory needed by a result, a single output time, the wording of a covariate error."""

from __future__ import annotations

import numpy as np
import pytest

import pkpd
from pkpd.dosing import Dose, Regimen
from pkpd.errors import PkpdError

IV = pkpd.load_model("pk_1cmt_iv")  # one state (central), one output (conc), CL and V, covariate WT


@pytest.mark.parametrize(("states", "columns"), [(True, 2), (False, 1)])
def test_a_result_is_refused_exactly_when_its_doubles_exceed_the_limit(states, columns):
    """3 subjects x 10 times x (1 state + 1 output, or the output alone) doubles, and the 10 times themselves twice
    (16 bytes each): 8 * 3 * 10 * columns + 16 * 10 bytes. Just above that limit it runs, just below it is refused.
    (The ODE solver: the closed form keeps the states to compute the outputs, so it counts them always.)"""
    need = 8.0 * 3 * 10 * columns + 16.0 * 10
    regimen = Regimen.single(Dose(100, "mg"))
    args = dict(params={"CL": [1.0, 2.0, 3.0]}, states=states, settings=pkpd.SolverSettings(method="ode"))
    sim = pkpd.simulate(IV, regimen, np.arange(10.0), max_memory_gb=need * (1 + 1e-9) / 1e9, **args)
    assert sim["conc"].shape == (3, 10)
    with pytest.raises(PkpdError, match="would need"):
        pkpd.simulate(IV, regimen, np.arange(10.0), max_memory_gb=need * (1 - 1e-9) / 1e9, **args)


def test_a_single_output_time_may_be_a_number():
    """times=2.0 is the one time 2.0: the bolus closed form dose / V exp(-CL/V t), in the output's unit."""
    sim = pkpd.simulate(IV, Regimen.single(Dose(100, "mg")), 2.0)
    cl, v = (p.value for p in IV.parameters)
    expected = 100 / v * np.exp(-cl / v * 2.0) * pkpd.units.convert("mg/L", sim.units["conc"])
    np.testing.assert_allclose(sim["conc"], [[expected]], rtol=1e-6)
    np.testing.assert_array_equal(sim.times, [2.0])


def test_an_unknown_covariate_is_named_as_a_covariate():
    with pytest.raises(PkpdError, match="unknown covariate 'WTX' for model 'pk_1cmt_iv'"):
        pkpd.simulate(IV, Regimen.single(Dose(100, "mg")), [1.0], covariates={"WTX": [70]})


ORAL = pkpd.load_model("nmtest_1cmt_oral")  # CL 1.1 L/h, V 20 L; dose target central: F = BIOAV, D2 = DUR2 (MODE 2)


def test_a_modelled_infusion_duration_is_the_dose_targets_expression_and_f_scales_the_rate():
    """Infusion(modelled="duration") into central with MODE 2, DUR2 2.5 h, BIOAV 0.5: 50 mg x 0.5 over 2.5 h
    (NONMEM RATE=-2: with the duration given, F scales the rate). Closed form of a one-compartment infusion."""
    from pkpd.dosing import Infusion

    regimen = Regimen([Infusion(0, Dose(50, "mg"), modelled="duration", target="central")])
    times = np.array([0.5, 2.5, 4.0, 10.0])
    sim = pkpd.simulate(ORAL, regimen, times, covariates={"MODE": 2.0, "DUR2": 2.5, "BIOAV": 0.5})
    k, rate = 1.1 / 20, 50 * 0.5 / 2.5
    amount = rate / k * (1 - np.exp(-k * np.minimum(times, 2.5))) * np.exp(-k * np.maximum(times - 2.5, 0))
    np.testing.assert_allclose(sim["CP"][0], amount / 20 * 1000, rtol=1e-6)  # mg/L -> ng/mL


def test_a_modelled_rate_that_is_not_positive_is_refused():
    from pkpd.dosing import Infusion
    from pkpd.errors import DosingError

    regimen = Regimen([Infusion(0, Dose(50, "mg"), modelled="rate", target="central")])
    with pytest.raises(DosingError, match="modelled rate must be > 0; got 0"):
        pkpd.simulate(ORAL, regimen, [1.0], covariates={"MODE": 1.0, "RAT2": 0.0})
