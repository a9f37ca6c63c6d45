"""The JAX backend (issue 9) agrees with the numba engine on every shipped model, events and failures included.

Both engines run at tight tolerances (rtol 1e-10, atol 1e-14), so each is far more accurate than the 1e-6 they must
agree to; the comparison is relative, with an absolute floor of 1e-9 of each series' largest value (states that pass
through zero). Each model is compiled by XLA once (one batch shape per model), which keeps the file fast.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

jax = pytest.importorskip("jax")

import pkpd  # noqa: E402
from pkpd.errors import PkpdError, SimulationError  # noqa: E402
from pkpd.nonmem import read_nonmem, simulate_nonmem  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
TIGHT = pkpd.SolverSettings(rtol=1e-10, atol=1e-14)
RTOL = 1e-6
FLOOR = 1e-9
MODELS = [*pkpd.models(), str(ROOT / "benchmarks/models/msc_reference.toml")]


def assert_agree(a: np.ndarray, b: np.ndarray, what: str) -> None:
    """|a - b| <= 1e-6 |a| + 1e-9 max|a| along time, for every subject (a: numba, b: jax)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    scale = np.max(np.abs(a), axis=-1, keepdims=True)
    bad = ~(np.abs(a - b) <= RTOL * np.abs(a) + FLOOR * scale)
    if bad.any():
        i = np.argwhere(bad)[0]
        rel = float(np.max(np.abs(a - b)[bad] / np.maximum(np.abs(a)[bad], 1e-300)))
        pytest.fail(f"{what}: {int(bad.sum())} values differ (first at {tuple(i)}: numba {a[tuple(i)]:.10g}, jax "
                    f"{b[tuple(i)]:.10g}; max rel {rel:.3g})")


def assert_same_simulation(a: pkpd.Simulation, b: pkpd.Simulation) -> None:
    for name in a.states:
        assert_agree(a.states[name], b.states[name], f"state {name}")
    for name in a.outputs:
        assert_agree(a.outputs[name], b.outputs[name], f"output {name}")


@pytest.mark.parametrize("name", MODELS, ids=[Path(m).stem for m in MODELS])
def test_every_shipped_model_agrees_with_the_numba_engine(name, representative_case):
    model, regimen, params, covariates = representative_case(name)
    times = np.linspace(0.0, 96.0, 97)
    kw = dict(params=params, covariates=covariates, settings=TIGHT)
    a = pkpd.simulate(model, regimen, times, **kw)
    b = pkpd.simulate(model, regimen, times, backend="jax", **kw)
    assert b.status.tolist() == [0, 0, 0]
    assert b.states.keys() == a.states.keys() and b.outputs.keys() == a.outputs.keys()
    assert_same_simulation(a, b)
    for arr in (*b.states.values(), *b.outputs.values()):
        assert isinstance(arr, np.ndarray) and arr.shape == (3, times.size)


def test_per_subject_regimens_and_dropped_outputs():
    model = pkpd.load_model("pk_1cmt_oral")
    regimens = [pkpd.Regimen.every(12, "h", count=4, dose=pkpd.Dose(100, "mg")),
                pkpd.Regimen.single(pkpd.Dose(50, "mg"), at=3, duration=4, target="iv"),
                pkpd.Regimen.none()]
    times = np.arange(0.0, 60.0, 0.5)
    a = pkpd.simulate(model, regimens, times, settings=TIGHT, outputs=False)
    b = pkpd.simulate(model, regimens, times, settings=TIGHT, outputs=False, backend="jax")
    assert b.outputs == {}
    assert_same_simulation(a, b)


@pytest.mark.parametrize("method", ["ode", "tsit5", "rodas4"])
def test_events_closer_together_than_the_smallest_step_agree_with_the_numba_engine(method):
    # A segment shorter than the smallest step, 16 eps max(|t|, |tend|, 1), takes one explicit Euler step (not a
    # solver step) on every engine; the numba engine's results are checked against the closed form in
    # test_native_engine.py. Doses one unit of rounding apart (0.3 and 0.1 + 0.2 h), 40 units apart, 2^-40 h apart
    # near 1000 h, and a last output one unit after a dose; outputs between the doses of a pair: the same values and
    # (for one method) the same step counts as the numba engine.
    model = pkpd.load_model("pk_1cmt_iv")
    dose = pkpd.Dose(1.0, "mg")
    ulp = np.spacing(0.3)
    pairs = [(0.3, 0.1 + 0.2), (0.3, 0.3 + 40 * ulp), (1000.0, 1000.0 + 2.0**-40), (0.0, np.nextafter(1001.0, 0.0))]
    regimens = [pkpd.Regimen.at([a], dose) + pkpd.Regimen.at([b], dose) for a, b in pairs]
    times = np.array([0.3 + 20 * ulp, 1.0, 1000.0 + 2.0**-41, 1001.0])
    runs = [pkpd.simulate(model, regimens, times, params={"CL": 1.0, "V": 1.0}, backend=backend,
                          settings=pkpd.SolverSettings(method=method)) for backend in ("numba", "jax")]
    assert runs[1].status.tolist() == [0, 0, 0, 0]
    if method != "ode":  # (the automatic method switches to Rodas4 by its own rule on JAX, see jax_backend)
        assert runs[1].n_steps.tolist() == runs[0].n_steps.tolist()
    np.testing.assert_allclose(runs[1].outputs["conc"], runs[0].outputs["conc"], rtol=RTOL, atol=1e-10)


def test_rodas4_takes_an_output_just_before_a_dose_as_the_numba_engine():
    # Rodas4 does not land on an output closer to the segment's end than the smallest step (an output at 0.3 h
    # before a dose at 0.1 + 0.2 h failed with "step size became too small"): the step that reaches the end
    # interpolates it, on every engine (checked against the closed form in test_native_engine.py). Outputs 1 and
    # 10 units of rounding before the second dose: the same values and step counts as the numba engine.
    model = pkpd.load_model("pk_1cmt_iv")
    dose = pkpd.Dose(1.0, "mg")
    t2 = 0.1 + 0.2
    regimen = pkpd.Regimen.at([0.0], dose) + pkpd.Regimen.at([t2], dose)
    for gap in (1, 10):
        times = np.array([t2 - gap * np.spacing(t2), 1.0])
        runs = [pkpd.simulate(model, regimen, times, params={"CL": 1.0, "V": 1.0}, backend=backend,
                              settings=pkpd.SolverSettings(method="rodas4")) for backend in ("numba", "jax")]
        assert runs[1].status.tolist() == [0]
        assert runs[1].n_steps.tolist() == runs[0].n_steps.tolist()
        np.testing.assert_allclose(runs[1].outputs["conc"], runs[0].outputs["conc"], rtol=RTOL, atol=1e-10)


def test_stiff_tmdd_agrees_with_rodas4_and_auto_switches(monkeypatch):
    import pkpd.simulation as simulation
    from pkpd.jax_backend import run_batch_jax

    model = pkpd.load_model("tmdd")
    regimen = pkpd.Regimen.single(pkpd.Dose(700, "mg"))
    times = np.arange(0.0, 673.0, 2.0)
    params = {"kon": np.array([1.8, 3.0])}
    rodas = pkpd.SolverSettings(method="rodas4", rtol=1e-10, atol=1e-14)
    a = pkpd.simulate(model, regimen, times, params=params, settings=rodas)
    b = pkpd.simulate(model, regimen, times, params=params, settings=rodas, backend="jax")
    assert_same_simulation(a, b)
    # auto at the shared job's tolerances: stiffness is detected and Rodas4 takes over
    seen = {}

    def spy(*args, **kwargs):
        seen["sol"] = run_batch_jax(*args, **kwargs)
        return seen["sol"]

    monkeypatch.setattr(simulation, "batch_runner", lambda backend: spy)
    c = pkpd.simulate(model, regimen, times, params=params, settings=pkpd.SolverSettings(rtol=1e-6, atol=1e-9),
                      backend="jax")
    assert np.all(seen["sol"]["counters"][:, 2] == 1.0), "Rodas4 did not take over on the stiff model"
    for name in a.states:  # at rtol 1e-6, against the tight solve
        ref = a.states[name]
        assert np.max(np.abs(c.states[name] - ref) / (np.abs(ref) + 1e-6 * np.max(np.abs(ref)))) < 1e-4


def test_solver_failure_raises_and_marks_like_the_numba_engine():
    model = pkpd.load_model("pk_1cmt_iv")
    regimen = pkpd.Regimen.single(pkpd.Dose(100, "mg"))
    times = np.linspace(0, 24, 5)
    with pytest.raises(SimulationError, match="too many steps") as err:
        pkpd.simulate(model, regimen, times, settings=pkpd.SolverSettings(max_steps=3), backend="jax")
    assert err.value.subject == 1
    # the CPU engine's ODE solver (a linear model would otherwise be solved in closed form, which takes no steps)
    marked = pkpd.SolverSettings(method="ode", on_failure="mark")
    few = pkpd.SolverSettings(method="ode", max_steps=3, on_failure="mark")
    a = pkpd.simulate(model, regimen, times, settings=few)
    b = pkpd.simulate(model, regimen, times, settings=few, backend="jax")
    assert a.status.tolist() == b.status.tolist() == [1]
    assert np.all(np.isnan(b.outputs["conc"]))
    # exponential growth (a negative clearance) overflows: the same failure code on both engines
    with pytest.warns(pkpd.BoundsWarning):
        a = pkpd.simulate(model, regimen, times, params={"CL": -1000.0}, settings=marked)
    with pytest.warns(pkpd.BoundsWarning):
        b = pkpd.simulate(model, regimen, times, params={"CL": -1000.0}, settings=marked, backend="jax")
    assert b.status.tolist() == a.status.tolist() != [0]


@pytest.mark.parametrize("method", ["tsit5", "rodas4"])
def test_a_nan_derivative_and_a_blow_up_fail_with_the_numba_engines_codes_and_times(method):
    """dx/dt = -k sqrt(Km x) reaches x = 0 at t* = 2.98 h and is NaN after it: status 3 (non-finite values) at t*;
    dx/dt = k x^2 blows up at 1 / k = 2 h with finite derivatives: status 2 (step size became too small) at 2 h. A
    subject of each in one batch gets the numba engine's codes, and each alone fails at the same time on both."""
    from pkpd.model import DoseTarget, Model, Output, Parameter, State

    m = Model(name="fails_two_ways", time_unit="h",
              parameters=(Parameter("k", 0.3, "1/h"), Parameter("Km", 5.0, "mg"), Parameter("c", 0.5, "1/(mg*h)"),
                          Parameter("GROW", 0.0, "1")),
              states=(State("x", "mg", "0", "GROW * c * x * x - (1 - GROW) * k * sqrt(Km * x)"),),
              outputs=(Output("amount", "x", "mg"),), doses=(DoseTarget("iv", "x", "mg"),))
    settings = pkpd.SolverSettings(method=method, on_failure="mark")
    kw = dict(params={"GROW": np.array([0.0, 1.0])}, settings=settings)
    regimen = pkpd.Regimen.single(pkpd.Dose(1, "mg"))
    a = pkpd.simulate(m, regimen, [0.0, 1.0, 10.0], **kw)
    b = pkpd.simulate(m, regimen, [0.0, 1.0, 10.0], backend="jax", **kw)
    assert a.status.tolist() == b.status.tolist() == [3, 2]
    for grow, reason, t_fail in ((0.0, "non-finite values", 2.0 * np.sqrt(0.2) / 0.3), (1.0, "too small", 2.0)):
        for backend in ("numba", "jax"):
            with pytest.raises(SimulationError, match=reason) as err:
                pkpd.simulate(m, regimen, [0.0, 1.0, 10.0], params={"GROW": grow},
                              settings=pkpd.SolverSettings(method=method), backend=backend)
            assert err.value.time == pytest.approx(t_fail, rel=1e-3)


def test_unknown_backend_is_an_error_naming_the_choices():
    with pytest.raises(PkpdError, match="'numba'.*'jax'"):
        pkpd.simulate(pkpd.load_model("pk_1cmt_iv"), None, [0, 1], backend="cuda")


def test_missing_jax_is_an_error_saying_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "pkpd.jax_backend", None)  # import fails as if jax were absent
    with pytest.raises(PkpdError, match=r'pip install -e "\.\[gpu\]"'):
        pkpd.simulate(pkpd.load_model("pk_1cmt_iv"), None, [0, 1], backend="jax")


def test_nonmem_dataset_agrees_with_the_numba_engine():
    # the NONMEM 7.5 golden scenarios: ADDL, lag, F, modelled rate/duration, steady state, resets (EVID 3, 4)
    model = pkpd.load_model("nmtest_1cmt_oral")
    ds = read_nonmem(ROOT / "tests/data/nonmem_dosing/dosing_scenarios.csv", model, dose_unit="target")
    a = simulate_nonmem(model, ds, settings=TIGHT)
    b = simulate_nonmem(model, ds, settings=TIGHT, backend="jax")
    pd.testing.assert_frame_equal(a[["ID", "TIME", "EVID"]], b[["ID", "TIME", "EVID"]])
    assert_agree(a["CP"].to_numpy()[None], b["CP"].to_numpy()[None], "CP")


def test_time_varying_parameter_recomputes_derived_quantities():
    # a data column named like a parameter changes it record by record (event kind 3); ke = CL / V follows
    model = pkpd.load_model("pk_1cmt_iv")
    frame = pd.DataFrame({"ID": [1, 1, 1, 2, 2], "TIME": [0, 10, 20, 0, 5], "EVID": [1, 0, 0, 1, 0],
                          "AMT": [100, 0, 0, 50, 0], "CMT": [1, ".", ".", 1, "."], "CL": [2.8, 5.0, 1.0, 3.0, 4.0]})
    ds = read_nonmem(frame, model, dose_unit="target")
    a = simulate_nonmem(model, ds, settings=TIGHT, interpolation={"CL": "linear"})
    b = simulate_nonmem(model, ds, settings=TIGHT, interpolation={"CL": "linear"}, backend="jax")
    assert_agree(a["conc"].to_numpy()[None], b["conc"].to_numpy()[None], "conc")
    unchanged = 100 / 32 * np.exp(-2.8 / 32 * 20)  # what CL = 2.8 L/h throughout would give at 20 h
    assert abs(b["conc"].iloc[2] / unchanged - 1) > 0.1
