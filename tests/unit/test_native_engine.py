"""The native engine (generated C, issue 8's start-up targets) agrees with the numba engine: every shipped model, every
function of the expression language, NONMEM event records, the stiffness switch, failures, and any thread count.

Both engines run the same algorithm in IEEE double arithmetic (no fast-math, no fused multiply-add on either), so
they agree to rounding; the comparison allows 1e-9 relative (plus 1e-12 of each series' largest value) so that a
compiler's reordering of a sum cannot fail it, while any difference in the method, step control or events would.
"""

from __future__ import annotations

import dataclasses
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import pkpd
from pkpd import _native
from pkpd.compile import compile_model, default_engine
from pkpd.errors import PkpdError, SimulationError
from pkpd.model import DoseTarget, Model, Output, Parameter, State
from pkpd.nonmem import read_nonmem, simulate_nonmem

pytestmark = pytest.mark.skipif(_native.compiler() is None, reason="no C compiler")

ROOT = Path(__file__).resolve().parents[2]
MODELS = [*pkpd.models(), str(ROOT / "benchmarks/models/msc_reference.toml"),
          str(ROOT / "tests/data/models/every_function.toml"), str(ROOT / "tests/data/models/iv_allometric.toml")]


def assert_agree(a, b, what: str, rtol: float = 1e-9, floor: float = 1e-12) -> None:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    assert a.shape == b.shape, what
    assert np.array_equal(np.isnan(a), np.isnan(b)), f"{what}: NaNs differ"
    scale = np.max(np.where(np.isnan(a), 0.0, np.abs(a)), axis=-1, keepdims=True) if a.size else 0.0
    bad = ~(np.abs(a - b) <= rtol * np.abs(a) + floor * scale) & ~np.isnan(a)
    assert not bad.any(), f"{what}: {int(bad.sum())} values differ, e.g. numba {a[bad][0]!r} vs native {b[bad][0]!r}"


def both(model, *args, **kwargs):
    """The same simulation on both engines' ODE solvers: (numba, native). (The closed form of linear models, which
    ``method="auto"`` would take, has its own engine comparison in test_closed_form.py.)"""
    import dataclasses

    settings = kwargs.pop("settings", None) or pkpd.SolverSettings()
    kwargs["settings"] = dataclasses.replace(settings, method="ode") if settings.method == "auto" else settings
    return (pkpd.simulate(model, *args, backend="numba", **kwargs),
            pkpd.simulate(model, *args, backend="native", **kwargs))


def assert_same(a: pkpd.Simulation, b: pkpd.Simulation) -> None:
    assert a.status.tolist() == b.status.tolist()
    assert a.n_steps.tolist() == b.n_steps.tolist(), "the engines took different steps"
    for group in ("states", "outputs"):
        ga, gb = getattr(a, group), getattr(b, group)
        assert ga.keys() == gb.keys()
        for name in ga:
            assert_agree(ga[name], gb[name], f"{group[:-1]} {name}")


@pytest.mark.parametrize("name", MODELS, ids=[Path(m).stem for m in MODELS])
def test_every_model_agrees_with_the_numba_engine(name, representative_case):
    model, regimen, params, covariates = representative_case(name)
    a, b = both(model, regimen, np.linspace(0.0, 96.0, 97), params=params, covariates=covariates)
    assert b.status.tolist() == [0, 0, 0]
    assert_same(a, b)


def test_rodas4_and_the_stiffness_switch_agree():
    model = pkpd.load_model("tmdd")
    regimen = pkpd.Regimen.single(pkpd.Dose(700, "mg"))
    times = np.arange(0.0, 673.0, 2.0)
    params = {"kon": np.array([1.8, 3.0])}
    for method in ("rodas4", "auto", "tsit5"):
        # explicit Tsit5 on a stiff model runs out of steps: both engines must fail alike
        settings = pkpd.SolverSettings(method=method, rtol=1e-6, atol=1e-9, max_steps=20_000, on_failure="mark")
        a, b = both(model, regimen, times, params=params, settings=settings)
        assert_same(a, b)
    # the non-autonomous probe under Rodas4 (its df/dt term)
    model = pkpd.load_model(str(ROOT / "tests/data/models/every_function.toml"))
    a, b = both(model, pkpd.Regimen.single(pkpd.Dose(1, "1")), np.linspace(0, 48, 49),
                settings=pkpd.SolverSettings(method="rodas4"))
    assert_same(a, b)


def test_rodas4_lands_on_doses_between_output_times_in_both_engines():
    # a dose at a time that is no output time ends an integration segment there: Rodas4 must clip its last step to
    # the segment's end in both engines (the state at the dose), and agree with Tsit5's solution to its tolerance
    model = pkpd.load_model("tmdd")
    regimen = pkpd.Regimen.at([0.0, 100.5, 301.3], pkpd.Dose(700, "mg"))
    times = np.arange(0.0, 481.0, 4.0)
    settings = pkpd.SolverSettings(method="rodas4", rtol=1e-8, atol=1e-10)
    a, b = both(model, regimen, times, settings=settings)
    assert_same(a, b)
    ref = pkpd.simulate(model, regimen, times, settings=pkpd.SolverSettings(method="tsit5", rtol=1e-10,
                                                                           atol=1e-12, max_steps=10**6))
    for name in a.outputs:
        assert_agree(a.outputs[name], ref.outputs[name], f"output {name} against Tsit5", rtol=1e-4, floor=1e-6)


def test_a_large_model_with_a_finite_difference_jacobian_agrees():
    # 16 states (> 12): the Jacobian is taken by finite differences, in both engines
    n = 16
    states = [State(f"A{i}", "mg", "0" if i else "10", f"-k * A{i}" + (f" + k * A{i - 1}" if i else ""))
              for i in range(n)]
    model = Model("chain16", "h", (Parameter("k", 0.5, "1/h", (0.01, 10.0)),), tuple(states),
                  outputs=(Output("last", f"A{n - 1}", "mg"),))
    for method in ("rodas4", "auto"):
        a, b = both(model, None, np.linspace(0, 48, 25), settings=pkpd.SolverSettings(method=method),
                    params={"k": np.array([0.5, 2.0])})
        assert_same(a, b)


def test_nonmem_records_agree():
    # the NONMEM 7.5 golden scenarios: ADDL, lag, F, modelled rate/duration, steady state, resets (EVID 3, 4)
    model = pkpd.load_model("nmtest_1cmt_oral")
    ds = read_nonmem(ROOT / "tests/data/nonmem_dosing/dosing_scenarios.csv", model, dose_unit="target")
    ode = pkpd.SolverSettings(method="ode")
    a = simulate_nonmem(model, ds, backend="numba", settings=ode)
    b = simulate_nonmem(model, ds, backend="native", settings=ode)
    pd.testing.assert_frame_equal(a[["ID", "TIME", "EVID"]], b[["ID", "TIME", "EVID"]])
    assert_agree(a["CP"].to_numpy()[None], b["CP"].to_numpy()[None], "CP")


def test_time_varying_parameters_and_per_subject_output_rows_agree():
    model = pkpd.load_model("pk_1cmt_iv")
    frame = pd.DataFrame({"ID": [1, 1, 1, 2, 2], "TIME": [0, 10, 20, 0, 5], "EVID": [1, 0, 0, 1, 0],
                          "AMT": [100, 0, 0, 50, 0], "CMT": [1, ".", ".", 1, "."], "CL": [2.8, 5.0, 1.0, 3.0, 4.0]})
    ds = read_nonmem(frame, model, dose_unit="target")
    ode = pkpd.SolverSettings(method="ode")
    a = simulate_nonmem(model, ds, interpolation={"CL": "linear"}, backend="numba", settings=ode)
    b = simulate_nonmem(model, ds, interpolation={"CL": "linear"}, backend="native", settings=ode)
    assert_agree(a["conc"].to_numpy()[None], b["conc"].to_numpy()[None], "conc")
    # parameter changes during a run (event kind 3) through simulate(changes=)
    changes = {"CL": (np.array([12.0, 30.0]), np.array([5.0, 1.0]))}
    a, b = both(model, pkpd.Regimen.single(pkpd.Dose(100, "mg")), np.linspace(0, 48, 49), changes=changes)
    assert_same(a, b)


def test_failures_give_the_same_status_and_message():
    model = pkpd.load_model("pk_1cmt_iv")
    regimen = pkpd.Regimen.single(pkpd.Dose(100, "mg"))
    times = np.linspace(0, 24, 5)
    for settings, params in ((pkpd.SolverSettings(max_steps=3, on_failure="mark"), {}),
                             (pkpd.SolverSettings(on_failure="mark"), {"CL": -1000.0})):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", pkpd.BoundsWarning)  # a negative clearance, on purpose
            a, b = both(model, regimen, times, settings=settings, params=params)
        assert a.status.tolist() == b.status.tolist() != [0]
        assert np.all(np.isnan(b.outputs["conc"]))
    messages = []
    for backend in ("numba", "native"):
        with pytest.raises(SimulationError) as err:
            pkpd.simulate(model, regimen, times, settings=pkpd.SolverSettings(method="ode", max_steps=3),
                          backend=backend)
        messages.append(str(err.value))
    assert messages[0] == messages[1] and "too many steps" in messages[0]


def test_division_by_zero_in_the_model_is_a_solver_failure_not_a_crash():
    model = Model("div0", "h", (Parameter("k", 1.0, "1/h", (0.0, 10.0)), Parameter("t1", 1.0, "h", (0.0, 10.0))),
                  (State("A", "1", "1", "-k * A / (t / t1 - 1)"),))
    for backend in ("numba", "native"):
        sim = pkpd.simulate(model, None, np.linspace(0, 2, 5), backend=backend,
                            settings=pkpd.SolverSettings(on_failure="mark"))
        assert sim.status.tolist() != [0]


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_results_do_not_depend_on_the_number_of_threads(threads, monkeypatch):
    model = pkpd.load_model("msc_salvadori")
    rng = np.random.default_rng(1)
    params = {"k_c": 0.03 * np.exp(0.3 * rng.standard_normal(50))}
    reg = pkpd.Regimen.every(72, "h", count=3, dose=pkpd.Dose(2e6, "cell/kg"))
    times = np.linspace(0, 240, 61)
    one = pkpd.simulate(model, reg, times, params=params, covariates={"WT": 70}, backend="native")
    monkeypatch.setattr(_native, "_THREADS", [threads])
    many = pkpd.simulate(model, reg, times, params=params, covariates={"WT": 70}, backend="native")
    for name in one.outputs:
        np.testing.assert_array_equal(one.outputs[name], many.outputs[name])


def test_engines_are_chosen_and_named():
    model = pkpd.load_model("pk_1cmt_iv")
    assert default_engine() == "native"  # a C compiler is there (the module skips otherwise)
    assert compile_model(model).engine == "native"
    numba_cm = compile_model(model, "numba")
    assert numba_cm.engine == "numba"
    # a compiled model given with backend="cpu" runs on its own engine; naming the other engine recompiles
    from pkpd.simulation import compiled_for

    assert compiled_for(numba_cm, "cpu") is numba_cm
    assert compiled_for(numba_cm, "native").engine == "native"
    with pytest.raises(PkpdError, match="unknown engine 'gcc'"):
        compile_model(model, "gcc")


def test_environment_selects_the_engine(monkeypatch):
    monkeypatch.setenv("PKPD_ENGINE", "numba")
    assert default_engine() == "numba"
    monkeypatch.setenv("PKPD_ENGINE", "fortran")
    with pytest.raises(PkpdError, match="PKPD_ENGINE='fortran'"):
        default_engine()


def test_without_a_compiler_the_numba_engine_is_used(monkeypatch):
    monkeypatch.setenv("CC", "no-such-compiler-xyz")
    assert _native.compiler() is None
    assert default_engine() == "numba"
    with pytest.raises(PkpdError, match="needs a C compiler"):
        _native.build(pkpd.load_model("pk_1cmt_iv"), None, Path("/nonexistent"))


def test_a_compiler_error_is_reported_with_its_message(tmp_path, monkeypatch):
    from pkpd.compile import plan

    monkeypatch.setattr(_native, "C_TEMPLATE", _native.C_TEMPLATE + "\nthis is not C;\n")
    model = pkpd.load_model("pk_1cmt_iv")
    with pytest.raises(PkpdError, match="C compiler failed on model 'pk_1cmt_iv'"):
        _native.build(model, plan(model), tmp_path)
    assert not list(tmp_path.glob("*.so"))  # nothing half-built is left to be loaded later


def test_inconsistent_arrays_are_refused_before_reaching_c():
    cm = compile_model(pkpd.load_model("pk_1cmt_iv"), "native")
    n = 2
    q = np.ones((n, len(cm.q_names)))
    bad_index = np.full((n, 1), 7, dtype=np.int64)  # state 7 of a one-state model
    with pytest.raises(PkpdError, match="internal: inconsistent arrays"):
        cm.module.solve_batch(q, np.zeros((n, 1)), np.zeros((n, 1)), np.zeros((n, 1), dtype=np.int64), bad_index,
                              np.ones((n, 1)), np.ones(n, dtype=np.int64), np.array([[0.0, 1.0]]),
                              np.zeros((1, 2), dtype=np.int64), np.array([2]), np.zeros(n, dtype=np.int64),
                              np.zeros(n), 1e-6, 1e-9, np.inf, 1000, 0, np.empty((n, 2, 1)), np.empty((n, 2, 1)),
                              True, True, np.zeros(n, dtype=np.int64), np.zeros((n, 4)))


def test_the_native_engine_does_not_import_numba():
    import subprocess

    code = ("import sys, numpy as np, pkpd; m = pkpd.load_model('pk_1cmt_iv'); "
            "pkpd.simulate(m, pkpd.Regimen.single(pkpd.Dose(1, 'mg')), [0, 1]); print('numba' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


# ------------------------------------------------------------------------------------------------ summary kernels
@pytest.mark.parametrize("wide", [False, True])
def test_summary_kernels_equal_the_numba_kernels_bit_for_bit(wide):
    from pkpd import _summary_kernels as numba_kernels
    from pkpd._native_summaries import kernels

    c_kernels = kernels("native")
    rng = np.random.default_rng(3)
    n, n_times, n_out, cap = 37, 11, 3, 40
    buffer = rng.lognormal(0.0, 2.0, size=(n, n_times, n_out)) * rng.choice([-1.0, 1.0], size=(n, n_times, n_out))
    buffer[rng.random(buffer.shape) < 0.05] = np.nan  # failed subjects
    buffer[rng.random(buffer.shape) < 0.05] = 0.0
    values = tuple(buffer[:, :, o] for o in range(n_out))  # strided views, as the solver's buffer gives
    shift = 52 - 7
    results = []
    for k in (numba_kernels, c_kernels):
        rows = np.full((n_out, n_times, cap), -1.0)
        k.transpose(values, rows)
        shape = (n_out, n_times)
        count, klo, khi = (np.empty(shape, dtype=np.int64) for _ in range(3))
        total, lower, upper, sq_dev = (np.empty(shape) for _ in range(4))
        k.scan(rows, n, shift, count, total, lower, upper, klo, khi)
        width = np.where(count > 0, khi - klo + 1, 0).reshape(-1)
        offset = np.concatenate([[0], np.cumsum(width)]).astype(np.int64)
        counts = np.zeros(int(offset[-1]), dtype=np.int64 if wide else np.int32)
        mean = np.divide(total, count, out=np.zeros(shape), where=count > 0)
        k.accumulate(rows, n, shift, mean, sq_dev, counts, klo.reshape(-1).copy(), offset, True)
        results.append((rows, count, total, lower, upper, klo, khi, sq_dev, counts))
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)
    assert results[0][-1].sum() == np.isfinite(buffer).sum()  # every value in one bucket


def test_simulate_summary_is_the_same_on_both_engines():
    model = pkpd.load_model("msc_salvadori")
    rng = np.random.default_rng(5)
    params = {"k_c": 0.03 * np.exp(0.3 * rng.standard_normal(300))}
    reg = pkpd.Regimen.single(pkpd.Dose(2e6, "cell/kg"))
    kw = dict(params=params, covariates={"WT": 70}, chunk_size=128, metrics=[pkpd.AUC("IL10")], progress=False)
    a, b = (pkpd.simulate_summary(compile_model(model, e), reg, np.arange(0.0, 97.0, 4.0), **kw)
            for e in ("numba", "native"))
    assert a.n_chunks == 3
    np.testing.assert_array_equal(a.percentiles, b.percentiles)
    np.testing.assert_array_equal(a.mean, b.mean)
    np.testing.assert_array_equal(a.sd, b.sd)
    np.testing.assert_array_equal(a.metrics["AUC(IL10)"], b.metrics["AUC(IL10)"])


# ------------------------------------------------------------------------------------------------ chunked batches
@pytest.mark.parametrize("engine", ["native", "numba"])
def test_large_batches_run_in_chunks_with_the_same_result(monkeypatch, engine):
    import pkpd.simulation as simulation

    model = pkpd.load_model("msc_salvadori")
    rng = np.random.default_rng(7)
    params = {"k_c": 0.03 * np.exp(0.3 * rng.standard_normal(23))}
    regimens = [pkpd.Regimen.single(pkpd.Dose(2e6 * (1 + i % 3), "cell/kg")) for i in range(23)]
    kw = dict(params=params, covariates={"WT": 70}, backend=engine)
    times = np.linspace(0, 96, 25)
    whole = pkpd.simulate(model, regimens, times, **kw)
    monkeypatch.setattr(simulation, "_BATCH_CHUNK", 5)
    calls = []
    cm = compile_model(model, engine)
    original = cm.module.solve_batch
    monkeypatch.setattr(cm.module, "solve_batch", lambda *a: calls.append(a[0].shape[0]) or original(*a))
    chunked = pkpd.simulate(cm, regimens, times, progress=False, **kw)
    assert calls == [5, 5, 5, 5, 3]
    for name in whole.outputs:
        np.testing.assert_array_equal(whole.outputs[name], chunked.outputs[name])
    np.testing.assert_array_equal(whole.n_steps, chunked.n_steps)
    # per-subject output rows (NONMEM records) chunk too
    frame = pd.DataFrame({"ID": np.repeat(np.arange(1, 8), 3), "TIME": np.tile([0.0, 2.0, 5.0], 7),
                          "EVID": np.tile([1, 0, 0], 7), "AMT": np.tile([100.0, 0, 0], 7),
                          "CMT": np.tile([1, ".", "."], 7)})
    iv = pkpd.load_model("pk_1cmt_iv")
    ds = read_nonmem(frame, iv, dose_unit="mg")
    a = simulate_nonmem(iv, ds, backend=engine)
    monkeypatch.setattr(simulation, "_BATCH_CHUNK", 2)
    b = simulate_nonmem(iv, ds, backend=engine)
    pd.testing.assert_frame_equal(a, b)


def test_ctrl_c_between_chunks_gives_a_clear_message_and_no_result(monkeypatch):
    import pkpd.simulation as simulation

    model = pkpd.load_model("pk_1cmt_iv")
    cm = compile_model(model, "native")
    monkeypatch.setattr(simulation, "_BATCH_CHUNK", 4)
    original = cm.module.solve_batch
    calls = []

    def interrupted(*args):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return original(*args)

    monkeypatch.setattr(cm.module, "solve_batch", interrupted)
    with pytest.raises(KeyboardInterrupt, match="simulate interrupted: 8 of 10 subjects had been solved; no result"):
        pkpd.simulate(cm, pkpd.Regimen.single(pkpd.Dose(100, "mg")), [0, 1, 2], params={"CL": np.linspace(1, 3, 10)},
                      settings=pkpd.SolverSettings(method="ode"))


def test_progress_must_be_none_or_a_bool():
    with pytest.raises(PkpdError, match="progress: must be None"):
        pkpd.simulate(pkpd.load_model("pk_1cmt_iv"), None, [0, 1], progress="yes")


def test_a_pickled_compiled_model_keeps_its_engine_or_falls_back_without_a_compiler(monkeypatch):
    import pickle

    model = pkpd.load_model("pk_1cmt_iv")
    blob = pickle.dumps(compile_model(model, "native"))
    assert pickle.loads(blob).engine == "native"
    assert pickle.loads(pickle.dumps(compile_model(model, "numba"))).engine == "numba"
    monkeypatch.setenv("CC", "no-such-compiler-xyz")  # a worker machine without a C compiler
    assert pickle.loads(blob).engine == "numba"


# ------------------------------------------------------------------------------------------- templates, seed 24
@pytest.mark.parametrize("backend", ["native", "numba"])
def test_a_small_infusion_outlives_a_large_one_that_stops(backend):
    # Two infusions into the central compartment of a one-compartment model (CL = V = 1, so k = 1/h): 1e12 mg over
    # 1 h and 90 mg at 1.5 mg/h over 60 h. When the large one stops, the rate left is exactly 1.5 mg/h, 1.5e-12 of
    # the stopping event's value: a real rate, not the rounding the engines zero (below 1e-12 of that value), so it
    # must keep running. The concentration is the sum of the two closed forms R/CL (1 - e^{-k min(t, T)})
    # e^{-k max(t - T, 0)}; by 30 h the large dose has decayed to 0.16 mg/L, and by 50 h the small infusion's
    # plateau R/CL = 1.5 mg/L is all that is left.
    model = pkpd.load_model("pk_1cmt_iv")
    regimen = pkpd.Regimen([pkpd.Infusion(0.0, pkpd.Dose(1e12, "mg"), duration=1.0),
                            pkpd.Infusion(0.0, pkpd.Dose(90.0, "mg"), duration=60.0)])
    times = np.array([30.0, 40.0, 50.0, 59.0])
    sim = pkpd.simulate(model, regimen, times, params={"CL": 1.0, "V": 1.0}, backend=backend,
                        settings=pkpd.SolverSettings(method="ode"))

    def infusion(rate: float, duration: float) -> np.ndarray:
        return rate * (1 - np.exp(-np.minimum(times, duration))) * np.exp(-np.maximum(times - duration, 0.0))

    expected = infusion(1e12, 1.0) + infusion(1.5, 60.0)
    np.testing.assert_allclose(sim.outputs["conc"][0], expected, rtol=1e-6)


# ------------------------------------------------------------------------------------------- templates, seed 25
def _test_model(name: str, parameters: dict, states: dict, output: str, dose_target: str) -> Model:
    """A test model in h and mg: parameters {name: (value, unit)}, states {name: (initial, ddt)}, the output named
    after its state in lower case, and one bolus target 'iv' into dose_target."""
    return Model(name=name, time_unit="h", parameters=tuple(Parameter(k, v, u) for k, (v, u) in parameters.items()),
                 states=tuple(State(k, "mg", initial, ddt) for k, (initial, ddt) in states.items()),
                 outputs=(Output(output.lower(), output, "mg"),), doses=(DoseTarget("iv", dose_target, "mg"),))


# a dose held in A feeds B at K A: Jacobian [[0, 0], [K, 0]], spectral radius 0
_NILPOTENT = _test_model("nilpotent", {"K": (1.0, "1/h")}, {"A": ("0", "0"), "B": ("0", "K * A")}, "B", "A")


@pytest.mark.parametrize("backend", ["native", "numba"])
@pytest.mark.parametrize("max_step", [2.0, 2.5])
def test_the_stiffness_estimate_never_exceeds_the_jacobians_norm(backend, max_step):
    # The stiffness switch fires when h * lambda held above 2.8 (pkpd._integrator), lambda the power iteration's
    # ratio |J v| / |v|, which can never exceed the operator norm |J|_2. Here J = [[0, 0], [K, 0]] (|J|_2 = K = 1/h,
    # spectral radius 0) and every step is at most max_step, so h * lambda <= max_step * K < 2.8: the automatic
    # method must never leave Tsit5, taking exactly the steps of method="tsit5", and B = K * dose * t exactly.
    model = _NILPOTENT
    regimen = pkpd.Regimen.single(pkpd.Dose(1.0, "mg"))
    times = np.array([0.0, 150.0, 300.0])
    runs = {method: pkpd.simulate(model, regimen, times, params={"K": 1.0}, backend=backend,
                                  settings=pkpd.SolverSettings(method=method, max_step=max_step))
            for method in ("ode", "tsit5")}
    np.testing.assert_allclose(runs["ode"].outputs["b"][0], times, rtol=1e-9, atol=1e-9)
    assert runs["ode"].n_steps.tolist() == runs["tsit5"].n_steps.tolist()


# ------------------------------------------------------------------------------------------- templates, seed 26
@pytest.mark.parametrize("backend", ["native", "numba"])
@pytest.mark.parametrize("method", ["tsit5", "rodas4"])
def test_a_segment_as_short_as_the_smallest_step_is_integrated(backend, method):
    # (_integrator.py:202: Tsit5's smallest step 16 eps max(|t|, |tend|, 2.0) for 1.0; _integrator.py:341: Rodas4's
    # retry loop giving up at h <= hmin for h < hmin.) A second bolus 2^-48 h = 16 eps after the first makes a
    # segment [0, 2^-48] exactly as long as the smallest step allowed there (hmin = 16 eps max(|t|, |tend|, 1) =
    # 2^-48): the step that covers it is allowed (only a step below hmin is an underflow), so both doses count and
    # the one-compartment concentration (CL = V = 1, k = 1/h) is the closed form 2 dose e^{-k t} / V.
    model = pkpd.load_model("pk_1cmt_iv")
    regimen = pkpd.Regimen([pkpd.Bolus(0.0, pkpd.Dose(1.0, "mg")), pkpd.Bolus(2.0**-48, pkpd.Dose(1.0, "mg"))])
    times = np.array([1.0, 2.0])
    sim = pkpd.simulate(model, regimen, times, params={"CL": 1.0, "V": 1.0}, backend=backend,
                        settings=pkpd.SolverSettings(method=method))
    np.testing.assert_allclose(sim.outputs["conc"][0], 2.0 * np.exp(-times), rtol=1e-6)


# a fast state never dosed beside a slow one: Jacobian diag(-KA, -KB)
_IDLE_STIFF = _test_model("idle_stiff", {"KA": (12.0, "1/h"), "KB": (1e-7, "1/h")},
                           {"A": ("0", "-KA * A"), "B": ("0", "-KB * B")}, "B", "B")


@pytest.mark.parametrize("backend", ["native", "numba"])
def test_an_output_exactly_five_steps_away_does_not_count_towards_the_switch(backend):
    # (_integrator.py:274: the stiffness check's `gap >= 5.0 * h` for `>`.) The switch to Rodas4 counts a check
    # only while the next output is MORE than 5 steps away (pkpd._integrator). J = diag(-12, -1e-7) (A stays 0), so
    # Tsit5 keeps the step at max_step = 0.25 (exact binary fractions: steps end on the grid k/4) with h lambda =
    # 3 > 2.8 at every check (every 5 accepted steps: t = 1.25, 2.5, 3.75, ...). With outputs every 2.5 h the next
    # output is 2.5 h away at t = 2.5, 5, 7.5 (counted) and exactly 1.25 h = 5 steps away at 1.25, 3.75, 6.25
    # (not counted: the count restarts), so it never reaches 3 in a row: the automatic method takes exactly
    # method="tsit5"'s 10 / 0.25 = 40 steps and its numbers, and B = dose e^{-KB t}.
    model = _IDLE_STIFF
    regimen = pkpd.Regimen.single(pkpd.Dose(1.0, "mg"))
    times = np.array([2.5, 5.0, 7.5, 10.0])
    runs = {method: pkpd.simulate(model, regimen, times, backend=backend,
                                  settings=pkpd.SolverSettings(method=method, max_step=0.25))
            for method in ("ode", "tsit5")}
    assert runs["tsit5"].n_steps.tolist() == [40]
    assert runs["ode"].n_steps.tolist() == [40]
    np.testing.assert_array_equal(runs["ode"].outputs["b"], runs["tsit5"].outputs["b"])
    np.testing.assert_allclose(runs["ode"].outputs["b"][0], np.exp(-1e-7 * times), rtol=1e-12)


@pytest.mark.parametrize("backend", ["native", "numba"])
@pytest.mark.parametrize("end", [44.4, 44.6, 45.1])
def test_rodas4s_last_step_lands_exactly_on_the_segments_end(backend, end):
    # (_integrator.py:344: Rodas4's `hit_end = t - 1.01 * h >= tend` in its retry loop, never true: the last step
    # then ends at t + (tend - t) instead of tend.) With K = 0 nothing moves (f = 0, J = 0): every Rodas4 step has
    # error 0 and grows the next sixfold from 1e-6, so the step after the dose at 0.2 h that reaches the output at
    # `end` starts at t = 12.293235 h, where t + (end - t) rounds one unit below `end` (a tie of the subtraction
    # rounded to even). The step must still land on `end`: the simulation succeeds with the held amount A = dose
    # and B = K A t = 0, exactly.
    model = _NILPOTENT
    t = 12.293235
    assert t + (end - t) < end  # the rounding the step must not leave behind
    sim = pkpd.simulate(model, pkpd.Regimen.single(pkpd.Dose(1.0, "mg"), at=0.2), np.array([end]),
                        params={"K": 0.0}, backend=backend, settings=pkpd.SolverSettings(method="rodas4"))
    assert sim.status.tolist() == [0]
    assert sim.states["A"][0].tolist() == [1.0]
    assert sim.outputs["b"][0].tolist() == [0.0]


# ------------------------------------------------------------------------------------- events closer than a step
@pytest.mark.parametrize("backend", ["native", "numba"])
@pytest.mark.parametrize("method", ["ode", "tsit5", "rodas4"])
def test_events_closer_together_than_the_smallest_step_are_integrated(backend, method):
    # The solver's smallest step is 16 eps max(|t|, |tend|, 1) (3.6e-15 h near t = 1, 3.6e-12 h near t = 1000), so a
    # segment between two event times closer than that cannot be taken by a step: it was refused as "step size
    # became too small" although nothing is wrong (two regimens added together put doses at 0.3 and 0.1 + 0.2 h).
    # Such a segment is advanced by one explicit step. One-compartment bolus, CL = V = 1 (k = 1/h): the closed
    # form of each subject's doses, at outputs after both doses of a pair and between the two (only the first).
    # (The JAX backend's agreement with these runs is in test_jax_backend.py.)
    model = pkpd.load_model("pk_1cmt_iv")
    dose = pkpd.Dose(1.0, "mg")
    ulp = np.spacing(0.3)  # 2^-54 h
    pairs = [(0.3, 0.1 + 0.2), (0.3, 0.3 + 40 * ulp), (1000.0, 1000.0 + 2.0**-40), (0.0, np.nextafter(1001.0, 0.0))]
    regimens = [pkpd.Regimen.at([a], dose) + pkpd.Regimen.at([b], dose) for a, b in pairs]
    # between subject 2's doses, after both of subjects 1's, then between subject 3's doses, and the last output one
    # unit after subject 4's second dose (the final segment is then shorter than a step)
    times = np.array([0.3 + 20 * ulp, 1.0, 1000.0 + 2.0**-41, 1001.0])
    sim = pkpd.simulate(model, regimens, times, params={"CL": 1.0, "V": 1.0}, backend=backend,
                        settings=pkpd.SolverSettings(method=method))
    assert sim.status.tolist() == [0, 0, 0, 0]
    starts = np.array(pairs)
    assert starts[0, 1] < times[0] and starts[1, 0] < times[0] < starts[1, 1] and starts[2, 0] < times[2] < starts[2, 1]
    assert starts[3, 1] < times[3] and times[3] - starts[3, 1] < 16 * np.finfo(float).eps * times[3]
    expected = sum(np.where(times >= starts[:, [j]], np.exp(-np.abs(times - starts[:, [j]])), 0.0) for j in (0, 1))
    np.testing.assert_allclose(sim.outputs["conc"], expected, rtol=1e-6, atol=1e-10)
    # The explicit step is no solver step: two doses one unit of rounding apart take the steps of one double dose,
    # while doses exactly a smallest step apart (2^-48 h after t = 0) take one step more than a double dose.
    double = pkpd.Dose(2.0, "mg")
    regimens = [regimens[0], pkpd.Regimen.at([0.3], double),
                pkpd.Regimen.at([0.0], dose) + pkpd.Regimen.at([2.0**-48], dose), pkpd.Regimen.at([0.0], double)]
    steps = pkpd.simulate(model, regimens, np.array([1.0, 2.0]), params={"CL": 1.0, "V": 1.0}, backend=backend,
                          settings=pkpd.SolverSettings(method=method)).n_steps
    assert steps[0] == steps[1] and steps[2] == steps[3] + 1


# ------------------------------------------------------------------------------------------- templates, seed 27
@pytest.mark.parametrize("backend", ["native", "numba"])
def test_a_stiffness_estimate_of_exactly_2_8_does_not_count_towards_the_switch(backend):
    # (_native_template.py:282: the stiffness check's `h * lam >= 2.8` for `>`.) The switch to Rodas4 counts a check
    # only while h * lambda is held ABOVE 2.8 (pkpd._integrator). With KA = 4 and KB = 0.05, J = diag(-4, -0.05)
    # (the fast state A is never dosed and stays 0): after 8 power iterations v is e_1 to far below rounding, so the
    # ratio |J v| / |v| is exactly 4 (a power of 2: no rounding), and Tsit5 keeps the step at max_step = 0.7, so
    # h * lambda = 4 fl(0.7) = fl(2.8) exactly at every check, never above it. The automatic method must never leave
    # Tsit5: exactly method="tsit5"'s steps and numbers (59 steps to 40 h; the mutant switches: 62), and
    # B = dose e^{-KB t}.
    assert 4.0 * 0.7 == 2.8
    model = _IDLE_STIFF
    regimen = pkpd.Regimen.single(pkpd.Dose(1.0, "mg"))
    times = np.array([10.0, 40.0])
    runs = {method: pkpd.simulate(model, regimen, times, params={"KA": 4.0, "KB": 0.05}, backend=backend,
                                  settings=pkpd.SolverSettings(method=method, max_step=0.7))
            for method in ("ode", "tsit5")}
    assert runs["ode"].n_steps.tolist() == runs["tsit5"].n_steps.tolist()
    np.testing.assert_array_equal(runs["ode"].outputs["b"], runs["tsit5"].outputs["b"])
    np.testing.assert_allclose(runs["ode"].outputs["b"][0], np.exp(-0.05 * times), rtol=1e-8)


# ------------------------------------------------------------------------------------------- templates, seed 28
@pytest.mark.parametrize("backend", ["native", "numba"])
def test_tsit5s_first_step_is_hairer_norsett_wanners_starting_step(backend):
    # (_native_template.py:60: the starting-step heuristic's `d1 < 2e-5` for `d1 < 1e-5`.) Hairer, Norsett & Wanner
    # (1993) II.4: with the scaled norms d0 = |y0 / sc| and d1 = |f(y0) / sc| (sc = atol + rtol |y0|, an RMS over
    # the states), h0 = 0.01 d0 / d1 unless d0 or d1 < 1e-5 (then 1e-6), and the first step is
    # min(100 h0, (0.01 / max(d1, d2))^(1/5)) for Tsit5 (order 4), d2 the norm of f's change over an Euler step of h0
    # divided by h0. In the idle-stiff model (A never dosed, so 0) a 1 mg bolus into B decaying at KB puts d1 at
    # 1.5e-5, inside the window where the mutant takes 1e-6 for h0. The decay is so slow that every error estimate
    # is at rounding, so each accepted step is ten times the last (the controller's largest growth) until one
    # reaches the output at T: the step count follows from the first step, computed here (3 steps: 3.7, 37 and the
    # rest; the mutant starts at 1e-4 and takes 7), and B = dose e^{-KB t}.
    rtol, atol, T = 1e-6, 1e-9, 100.0
    sc = atol + rtol * 1.0
    kb = 1.5e-5 * np.sqrt(2.0) * sc
    d0, d1 = np.sqrt((1.0 / sc) ** 2 / 2), np.sqrt((kb / sc) ** 2 / 2)
    assert d0 >= 1e-5 and 1e-5 <= d1 < 2e-5
    h0 = min(0.01 * d0 / d1, T)
    d2 = np.sqrt((kb * kb * h0 / sc) ** 2 / 2) / h0  # f(y0 + h0 f0) - f0 = KB^2 h0 (B only)
    h = min(100.0 * h0, (0.01 / max(d1, d2)) ** (1.0 / 5.0), T)
    t, expected = 0.0, 1
    while t + 1.01 * h < T:  # the step that reaches within 1.01 h of T lands on T
        t, h, expected = t + h, 10.0 * h, expected + 1
    assert expected == 3
    model = _IDLE_STIFF
    sim = pkpd.simulate(model, pkpd.Regimen.single(pkpd.Dose(1.0, "mg")), np.array([T]), params={"KB": kb},
                        backend=backend, settings=pkpd.SolverSettings(method="tsit5", rtol=rtol, atol=atol))
    assert sim.status.tolist() == [0]
    assert sim.n_steps.tolist() == [expected]
    np.testing.assert_allclose(sim.outputs["b"][0], np.exp(-kb * T), rtol=1e-12)


# C growing at R (never dosed: 0), a dose held in A feeding B at K A (Jacobian rows (R,0,0), 0, (0,K,0))
_HELD_CHAIN = _test_model("held_chain", {"K": (10.0, "1/h"), "R": (0.0, "1/h"), "B0": (1.0, "mg")},
                           {"C": ("0", "R * C"), "A": ("0", "0"), "B": ("B0", "K * A")}, "B", "A")


@pytest.mark.parametrize("backend", ["native", "numba"])
def test_rodas4_pivots_below_the_first_row_of_its_matrix(backend):
    # (_native_template.py:137: the LU's row swap saving `a[k / N + j]` for `a[k * N + j]`: row 0 instead of row k,
    # alike for k = 0 only.) States C (idle), A (a held dose), B (K A): J = [[0, 0, 0], [0, 0, 0], [0, K, 0]], and
    # Rodas4's matrix I / (h gamma) - J (gamma = 0.25) needs a row swap at its second column when K > 1 / (h gamma),
    # here K = 10 against 4 at max_step = 1. J^2 = 0, so Rodas4 (as any consistent Runge-Kutta or Rosenbrock method
    # on a linear system) is exact, y(t + h) = (I + h J) y, its error estimate at rounding: each step is the largest
    # allowed. The starting-step estimate (Hairer, Norsett & Wanner II.4, order 3: (0.01 / d1)^(1/4), the Euler step
    # changes nothing in f) is above max_step, so the 10 h take exactly 10 steps of max_step, and B = B0 + K A0 t.
    # The mutant's factors are singular whenever the swap is needed and halve the step until it is not (114 steps).
    k, a0, rtol, atol, max_step, T = 10.0, 1e-10, 1e-6, 1e-12, 1.0, 10.0
    assert k > 1.0 / (max_step * 0.25)
    d1 = np.sqrt((k * a0 / (atol + rtol * 1.0)) ** 2 / 3)  # f = (0, 0, K A0), B0 = 1 mg
    assert (0.01 / d1) ** 0.25 > max_step
    model = _HELD_CHAIN
    sim = pkpd.simulate(model, pkpd.Regimen.single(pkpd.Dose(a0, "mg")), np.array([T]), params={"K": k, "B0": 1.0},
                        backend=backend, settings=pkpd.SolverSettings(method="rodas4", rtol=rtol, atol=atol,
                                                                      max_step=max_step))
    assert sim.status.tolist() == [0]
    assert sim.n_steps.tolist() == [10]
    assert sim.states["A"][0].tolist() == [a0]
    np.testing.assert_allclose(sim.outputs["b"][0], 1.0 + k * a0 * T, rtol=1e-14)


# ------------------------------------------------------------------------------------------- templates, seed 29
@pytest.mark.parametrize("backend", ["native", "numba"])
def test_rodas4_halves_a_step_whose_iteration_matrix_is_singular(backend):
    # (_native_template.py:365: the step after a singular iteration matrix `h *= 0.6` for `h *= 0.5`.) Rodas4's
    # matrix is I / (h gamma) - J (gamma = 0.25); the idle state C of _HELD_CHAIN (never dosed, so 0) grows at R = 4,
    # an eigenvalue of J equal to 1 / (h gamma) at h = max_step = 1 exactly, so the matrix is singular at every step
    # of max_step: that attempt counts as a step and the step is halved (at 0.5 the matrix is regular). The A-B part
    # is nilpotent (J^2 = 0 there, C's stages stay 0), so Rodas4 is exact with its error at rounding and each
    # accepted step grows sixfold (capped at max_step); the starting step (checked) is above max_step. The count
    # follows from the rule:
    # 2 per 0.5 h, the last half step of the 10 h (clipped to the segment's end, not singular) 1: 39 steps (the
    # mutant's steps of 0.6: 31), and B = 1 + K A0 t exactly.
    k, a0, rtol, atol, max_step, T = 1.0, 1e-10, 1e-6, 1e-12, 1.0, 10.0
    assert 1.0 / (max_step * 0.25) == 4.0
    d1 = np.sqrt((k * a0 / (atol + rtol * 1.0)) ** 2 / 3)  # f = (0, 0, K A0), B(0) = 1 mg
    assert (0.01 / d1) ** 0.25 > max_step
    t, h, expected = 0.0, max_step, 0
    while t < T:
        if t + 1.01 * h >= T:
            h = T - t
        while 1.0 / (h * 0.25) == 4.0:  # singular: counted, halved
            expected, h = expected + 1, 0.5 * h
            if t + 1.01 * h >= T:
                h = T - t
        t, h, expected = t + h, min(6.0 * h, max_step), expected + 1
    assert expected == 39
    model = _HELD_CHAIN
    sim = pkpd.simulate(model, pkpd.Regimen.single(pkpd.Dose(a0, "mg")), np.array([T]),
                        params={"K": k, "R": 4.0, "B0": 1.0}, backend=backend,
                        settings=pkpd.SolverSettings(method="rodas4", rtol=rtol, atol=atol, max_step=max_step))
    assert sim.status.tolist() == [0]
    assert sim.n_steps.tolist() == [expected]
    assert sim.states["C"][0].tolist() == [0.0]
    np.testing.assert_allclose(sim.outputs["b"][0], 1.0 + k * a0 * T, rtol=1e-14)


@pytest.mark.parametrize("backend", ["native", "numba"])
def test_rodas4_interpolates_an_output_that_its_last_step_reaches_by_rounding(backend):
    # (_native_template.py:354: Rodas4 lands on an output at `tt <= t + h` for `tt < t + h`.) With K = 0 nothing
    # moves (f = 0, J = 0): after the dose at 0.2 h Rodas4 starts at 1e-6 h (the starting-step rule for f = 0) and,
    # its error 0, grows each step sixfold; the step from the t computed here reaches the last output `end` (hit
    # within 1.01 h) and is clipped to end - t. An output at t + (end - t), one unit of rounding below `end`, is
    # then that step's end as computed, but not the segment's: it is interpolated inside the step (the state there
    # is the step's, 1 mg held). Landing on it instead leaves a last step of one unit of rounding, below the
    # smallest step, and the mutant fails the simulation ("step size became too small").
    end, t, h = 44.4, 0.2, 1e-6
    while t + 1.01 * h < end:
        t, h = t + h, 6.0 * h
    out = t + (end - t)
    assert out == np.nextafter(end, 0.0)
    model = _NILPOTENT
    sim = pkpd.simulate(model, pkpd.Regimen.single(pkpd.Dose(1.0, "mg"), at=0.2), np.array([out, end]),
                        params={"K": 0.0}, backend=backend, settings=pkpd.SolverSettings(method="rodas4"))
    assert sim.status.tolist() == [0]
    assert sim.states["A"][0].tolist() == [1.0, 1.0]
    assert sim.outputs["b"][0].tolist() == [0.0, 0.0]


# a fast state never dosed beside a slow one starting at 1 mg: Jacobian diag(-KA, -KB)
_SLOW_DECAY = _test_model("slow_decay", {"KA": (12.0, "1/h"), "KB": (1e-7, "1/h")},
                           {"A": ("0", "-KA * A"), "B": ("1", "-KB * B")}, "B", "A")


@pytest.mark.parametrize("backend", ["native", "numba"])
def test_a_run_from_a_negative_time_takes_the_steps_of_the_same_run_from_zero(backend):
    # (_integrator.py:86: the starting step's cap `tend + t` for `tend - t`, alike for t = 0.) The model is
    # autonomous, so a run over [-T, 0] is the run over [0, T] moved in time: the same steps. As in
    # test_tsit5s_first_step_is_hairer_norsett_wanners_starting_step, B (1 mg at the start of the output times,
    # -100 h) decays so slowly (KB = 1.5e-5 sqrt(2) sc) that every error estimate is at rounding and each step is
    # ten times the last: the first step is Hairer, Norsett & Wanner's (II.4), computed here, capped by the
    # segment's length T, and the 100 h take 3 steps, B(0) = e^{-KB T}. The mutant caps the first step at
    # tend + t = -100 h, raised to 10 smallest steps (3.6e-13 h), and takes many more.
    rtol, atol, T = 1e-6, 1e-9, 100.0
    sc = atol + rtol * 1.0
    kb = 1.5e-5 * np.sqrt(2.0) * sc
    d0, d1 = np.sqrt((1.0 / sc) ** 2 / 2), np.sqrt((kb / sc) ** 2 / 2)
    h0 = min(0.01 * d0 / d1, T)
    d2 = np.sqrt((kb * kb * h0 / sc) ** 2 / 2) / h0
    h = min(100.0 * h0, (0.01 / max(d1, d2)) ** (1.0 / 5.0), T)
    t, expected = -T, 1
    while t + 1.01 * h < 0.0:
        t, h, expected = t + h, 10.0 * h, expected + 1
    assert expected == 3
    model = _SLOW_DECAY
    runs = [pkpd.simulate(model, pkpd.Regimen.single(pkpd.Dose(1.0, "mg"), at=start + T), np.array([start, start + T]),
                          params={"KB": kb}, backend=backend,
                          settings=pkpd.SolverSettings(method="tsit5", rtol=rtol, atol=atol))
            for start in (0.0, -T)]
    for sim in runs:
        assert sim.status.tolist() == [0]
        assert sim.n_steps.tolist() == [expected]
        np.testing.assert_allclose(sim.outputs["b"][0], [1.0, np.exp(-kb * T)], rtol=1e-12)


@pytest.mark.parametrize("backend", ["native", "numba"])
def test_rodas4_takes_an_output_just_before_a_dose(backend):
    # (A defect found beside _native_template.py:354.) Rodas4 lands its steps on output times, but an output closer
    # to the segment's end than the smallest step (16 eps max(|t|, |tend|, 1)) left a last step below it: an output
    # at 0.3 h before a dose at 0.1 + 0.2 h (one unit of rounding later, as two regimens added together give) failed
    # the simulation with "step size became too small". Such an output is interpolated inside the step that reaches
    # the segment's end. One-compartment bolus, CL = V = 1 (k = 1/h): the closed form of the doses given.
    model = pkpd.load_model("pk_1cmt_iv")
    dose = pkpd.Dose(1.0, "mg")
    t2 = 0.1 + 0.2
    hmin = 16 * np.finfo(float).eps * t2
    gaps = [1, 3, 10, int(hmin / np.spacing(t2))]  # units of rounding between the output and the second dose
    times = np.array([[t2 - g * np.spacing(t2), 1.0] for g in gaps])
    assert np.all(t2 - times[:, 0] < hmin)
    regimen = pkpd.Regimen.at([0.0], dose) + pkpd.Regimen.at([t2], dose)
    for row in times:
        sim = pkpd.simulate(model, regimen, row, params={"CL": 1.0, "V": 1.0}, backend=backend,
                            settings=pkpd.SolverSettings(method="rodas4"))
        assert sim.status.tolist() == [0]
        np.testing.assert_allclose(sim.outputs["conc"][0], [np.exp(-row[0]), np.exp(-1.0) + np.exp(-(1.0 - t2))],
                                   rtol=1e-6)


# ------------------------------------------------------------------------------------------- templates, seed 30
@pytest.mark.parametrize("backend", ["native", "numba"])
def test_a_derivative_norm_of_exactly_1e_5_takes_hairer_norsett_wanners_starting_step(backend):
    # (_integrator.py:69: the starting-step heuristic's `d1 <= 1e-5` for `d1 < 1e-5`.) Hairer, Norsett & Wanner
    # (1993) II.4 take h0 = 1e-6 only when d0 or d1 is *below* 1e-5, d1 = |f(y0) / sc| (sc = atol + rtol |y0|, an
    # RMS over the states). In the idle-stiff model (A never dosed, so 0) a 1 mg bolus into B decaying at KB puts
    # d1 = KB / (sc sqrt 2), exactly 1e-5 in floating point for the KB below (checked): h0 = 0.01 d0 / d1, capped at
    # T, and the first step min(100 h0, (0.01 / max(d1, d2))^(1/5), T) = 3.98 h for Tsit5 (order 4). As in
    # test_tsit5s_first_step_is_hairer_norsett_wanners_starting_step every error estimate is at rounding and each
    # step is ten times the last, so the 100 h take 3 steps (3.98, 39.8 and the rest), B = e^{-KB t}. The mutant takes
    # h0 = 1e-6 there and starts at 100 h0 = 1e-4 h: 7 steps.
    rtol, atol, T = 1e-6, 1e-9, 100.0
    sc = atol + rtol * 1.0
    kb = 1e-5 * np.sqrt(2.0) * sc
    d0, d1 = np.sqrt((1.0 / sc) ** 2 / 2), np.sqrt((kb / sc) ** 2 / 2)
    assert d0 >= 1e-5 and d1 == 1e-5
    h0 = min(0.01 * d0 / d1, T)
    d2 = np.sqrt((kb * kb * h0 / sc) ** 2 / 2) / h0  # f(y0 + h0 f0) - f0 = KB^2 h0 (B only)
    h = min(100.0 * h0, (0.01 / max(d1, d2)) ** (1.0 / 5.0), T)
    t, expected = 0.0, 1
    while t + 1.01 * h < T:  # the step that reaches within 1.01 h of T lands on T
        t, h, expected = t + h, 10.0 * h, expected + 1
    assert expected == 3
    model = _IDLE_STIFF
    sim = pkpd.simulate(model, pkpd.Regimen.single(pkpd.Dose(1.0, "mg")), np.array([T]), params={"KB": kb},
                        backend=backend, settings=pkpd.SolverSettings(method="tsit5", rtol=rtol, atol=atol))
    assert sim.status.tolist() == [0]
    assert sim.n_steps.tolist() == [expected]
    np.testing.assert_allclose(sim.outputs["b"][0], np.exp(-kb * T), rtol=1e-12)


@pytest.mark.parametrize("backend", ["native", "numba"])
def test_rodas4_gives_up_on_a_singular_matrix_at_the_last_step_allowed(backend):
    # (_integrator.py:369: after a singular iteration matrix Rodas4 gives up at `counters > max_steps` for `>=`.)
    # As in test_rodas4_halves_a_step_whose_iteration_matrix_is_singular, the idle state C of _HELD_CHAIN growing at
    # R = 4 makes Rodas4's matrix I / (h gamma) - J singular at every step of max_step = 1 (gamma = 0.25): that
    # attempt counts as a step and the step is halved; the half step is regular and accepted, and the next is
    # max_step again. So steps 1, 3, 5, ... are the singular attempts (at t = 0, 0.5, 1, ...), and with
    # max_steps = 3 the third step, the last one allowed, is singular at t = 0.5: the simulation fails there with
    # status 4 (singular iteration matrix). The mutant takes the half step (a fourth step) and then fails at
    # t = 1 with status 1 (too many steps).
    k, a0, rtol, atol, max_step, max_steps = 1.0, 1e-10, 1e-6, 1e-12, 1.0, 3
    assert 1.0 / (max_step * 0.25) == 4.0
    d1 = np.sqrt((k * a0 / (atol + rtol * 1.0)) ** 2 / 3)  # f = (0, 0, K A0), B(0) = 1 mg: the first step is max_step
    assert (0.01 / d1) ** 0.25 > max_step
    t, h, count, status = 0.0, max_step, 0, 0
    while not status:
        if count >= max_steps:
            status = 1
            break
        if 1.0 / (h * 0.25) == 4.0:  # singular: counted, halved
            count, h = count + 1, 0.5 * h
            status = 4 if count >= max_steps else 0
            continue
        t, h, count = t + h, min(6.0 * h, max_step), count + 1
    assert (status, t) == (4, 0.5)
    model = _HELD_CHAIN
    args = (model, pkpd.Regimen.single(pkpd.Dose(a0, "mg")), np.array([10.0]))
    kwargs = {"params": {"K": k, "R": 4.0, "B0": 1.0}, "backend": backend}
    settings = pkpd.SolverSettings(method="rodas4", rtol=rtol, atol=atol, max_step=max_step, max_steps=max_steps)
    sim = pkpd.simulate(*args, **kwargs, settings=dataclasses.replace(settings, on_failure="mark"))
    assert sim.status.tolist() == [status]
    with pytest.raises(SimulationError) as err:
        pkpd.simulate(*args, **kwargs, settings=settings)
    assert str(err.value) == ("subject 1, t = 0.5: the solver failed: singular iteration matrix in the stiff solver. "
                              "Check the parameters; try SolverSettings(method='tsit5') or tighter tolerances.")


@pytest.mark.parametrize("backend", ["native", "numba"])
def test_tsit5_starts_at_1e_6_when_nothing_moves(backend):
    # (_native_template.py:72: the starting step for a derivative (and its change) of zero `fmax(2e-6, h0 * 1e-3)`
    # for `fmax(1e-6, h0 * 1e-3)`.) Hairer, Norsett & Wanner (1993) II.4: with d1 = |f(y0) / sc| below 1e-5, h0 =
    # 1e-6, and when max(d1, d2) <= 1e-15 the step is max(1e-6, h0 1e-3) = 1e-6 (below 100 h0). With K = 0 in the
    # nilpotent model nothing moves (f = 0, a 1 mg dose held in A), every error estimate is 0 and each Tsit5 step is
    # ten times the last (the controller's largest growth) until one reaches within 1.01 h of the output at T = 1.5:
    # 8 steps from 1e-6 (the mutant's 2e-6: 7), A = 1 mg and B = 0 exactly.
    T = 1.5
    t, h, expected = 0.0, 1e-6, 1
    while t + 1.01 * h < T:
        t, h, expected = t + h, 10.0 * h, expected + 1
    assert expected == 8
    model = _NILPOTENT
    sim = pkpd.simulate(model, pkpd.Regimen.single(pkpd.Dose(1.0, "mg")), np.array([T]), params={"K": 0.0},
                        backend=backend, settings=pkpd.SolverSettings(method="tsit5"))
    assert sim.status.tolist() == [0]
    assert sim.n_steps.tolist() == [expected]
    assert sim.states["A"][0].tolist() == [1.0]
    assert sim.outputs["b"][0].tolist() == [0.0]


# an amount whose elimination rate has a pole at A = AMAX: dA/dt infinite there
_POLE = _test_model("pole", {"K": (1.0, "1/h"), "AMAX": (2.0, "mg")},
                     {"A": ("0", "-K * A * AMAX / (A - AMAX)")}, "A", "A")


@pytest.mark.parametrize("backend", ["native", "numba"])
def test_a_dose_at_the_last_output_time_is_not_integrated_past_it(backend):
    # (_native_template.py:515: solve_one returns once every output row is written only for `io > n_out` (for
    # `>=`).) A run ends at its last output time: the doses there are applied, the rows written, and nothing is
    # integrated further. With A = 0 until a dose of AMAX at T (dA/dt = 0 there), A is 0 at the earlier outputs
    # and AMAX at T (outputs at a dose's time are taken after it), where dA/dt = -K A AMAX / (A - AMAX) is infinite;
    # the run must succeed. The mutant goes on to an empty last segment at T, whose one explicit step meets the
    # infinite derivative: status 3 (non-finite values).
    model = _POLE
    sim = pkpd.simulate(model, pkpd.Regimen.single(pkpd.Dose(2.0, "mg"), at=1.0), np.array([0.0, 0.5, 1.0]),
                        params={"K": 1.0, "AMAX": 2.0}, backend=backend, settings=pkpd.SolverSettings(method="ode"))
    assert sim.status.tolist() == [0]
    assert sim.outputs["a"][0].tolist() == [0.0, 0.0, 2.0]


def test_a_batch_returns_only_when_every_thread_has_finished(monkeypatch):
    # (_native_template.py:603: the batch stops creating threads when pthread_create *succeeds* (`== 0` for `!= 0`),
    # so the thread it made is never counted nor joined.) Three subjects on two threads (the calling one and the
    # one it starts), one-compartment bolus with k = CL / V = 0.01/h and steps of at most 5e-4 h, each integrated
    # from its dose (a run starts at its first dose or output): the calling thread takes the first subject (60 h),
    # the started thread the second (210 h, far longer), the calling thread the third (10 h), then finds none left.
    # The batch must return only when every subject is solved: the closed form e^{-k (t - t_dose)}, with at least
    # one step per max_step of each subject's span counted. The mutant returns while the second subject is still
    # being solved: its steps (copied out at its end) read 0 and its outputs are unwritten.
    model = pkpd.load_model("pk_1cmt_iv")
    starts = np.array([150.0, 0.0, 200.0])
    times = np.array([201.0, 205.0, 210.0])
    k, max_step = 0.01, 5e-4
    regimens = [pkpd.Regimen.single(pkpd.Dose(1.0, "mg"), at=s) for s in starts]
    expected = np.exp(-k * (times[None, :] - starts[:, None]))
    monkeypatch.setattr(_native, "_THREADS", [2])
    for _ in range(3):
        sim = pkpd.simulate(model, regimens, times, params={"CL": k, "V": 1.0}, backend="native",
                            settings=pkpd.SolverSettings(method="tsit5", max_step=max_step, max_steps=10**7))
        assert sim.status.tolist() == [0, 0, 0]
        assert np.all(sim.n_steps >= (times[-1] - starts) / max_step - 1)
        np.testing.assert_allclose(sim.outputs["conc"], expected, rtol=1e-9)


# ----------------------------------------------------------------------------------- templates, seed 30, part 2
@pytest.mark.parametrize("backend", ["native", "numba"])
def test_a_segment_shorter_than_a_step_advances_a_slow_state_by_its_euler_step(backend):
    # (_integrator.py:457: the explicit step over a segment shorter than the smallest step `y += (tend - t) / dy` for
    # `y += (tend - t) * dy`.) Doses of 1 mg into A of _SLOW_DECAY at 0.3 and 0.1 + 0.2 h (one unit of rounding,
    # 2^-54 h, apart) make a segment shorter than a step; B (1 mg at 0, never dosed) decays at KB = 1e-12 /h, so the
    # Euler step over it moves B by 2^-54 KB B = 5.6e-29 mg, nothing at double precision, and B = e^{-KB t} (closed
    # form, t = 0, 1 and 100 h). The mutant moves B by 2^-54 / (-KB B) = -5.6e-5 mg, kept to the end.
    kb, t2 = 1e-12, 0.1 + 0.2
    assert t2 - 0.3 == 2.0**-54
    model = _SLOW_DECAY
    dose = pkpd.Dose(1.0, "mg")
    regimen = pkpd.Regimen.at([0.3], dose) + pkpd.Regimen.at([t2], dose)
    times = np.array([0.0, 1.0, 100.0])
    sim = pkpd.simulate(model, regimen, times, params={"KB": kb}, backend=backend,
                        settings=pkpd.SolverSettings(method="ode"))
    assert sim.status.tolist() == [0]
    np.testing.assert_allclose(sim.outputs["b"][0], np.exp(-kb * times), rtol=1e-12)


# saturable elimination: zero order far above KM, first order (VM / KM) below it
_SATURABLE = _test_model("saturable", {"VM": (1.0, "mg/h"), "KM": (1e-3, "mg")},
                          {"A": ("0", "-VM * A / (KM + A)")}, "A", "A")


@pytest.mark.parametrize("backend", ["native", "numba"])
def test_rodas4_stops_at_its_step_budget_when_a_step_is_rejected(backend):
    # (_integrator.py:407: after a step Rodas4 rejects on its error, the budget check `counters[0] > max_steps` for
    # `counters[0] >= max_steps`.) max_steps is the step budget, every attempt counted (n_steps of a run): a run
    # given m steps fewer than it needs fails (status 1, max_steps reached) having taken exactly m, never m + 1. A
    # 1 mg bolus eliminated at a saturable rate (VM = 1 mg/h, KM = 1e-3 mg) makes Rodas4 reject steps (six among its
    # first 15 attempts, two more later); every budget from 1 to 20 and the run's own count minus one is checked, and
    # the run's own count succeeds. The mutant takes one step more than its budget (n_steps m + 1) when
    # the m-th is a rejected one (m = 4, 6, 8, 10, 12, 15 here).
    model = _SATURABLE
    regimen, times = pkpd.Regimen.single(pkpd.Dose(1.0, "mg")), np.array([2.0])

    def run(budget):
        return pkpd.simulate(model, regimen, times, backend=backend,
                             settings=pkpd.SolverSettings(method="rodas4", max_steps=budget, on_failure="mark"))

    full = run(200_000)
    assert full.status.tolist() == [0]
    need = int(full.n_steps[0])
    assert need > 21
    for budget in [*range(1, 21), need - 1]:
        sim = run(budget)
        assert (sim.status.tolist(), sim.n_steps.tolist()) == ([1], [budget]), budget
    assert (run(need).status.tolist(), run(need).n_steps.tolist()) == ([0], [need])


# one amount decaying at K
_ONE_DECAY = _test_model("one_decay", {"K": (2.0, "1/h")}, {"A": ("0", "-K * A")}, "A", "A")


@pytest.mark.parametrize("backend", ["native", "numba"])
def test_the_starting_step_takes_hairer_norsett_wanners_h0_when_d0_is_exactly_1e_5(backend):
    # (_native_template.py:60: the starting-step heuristic's `d0 <= 1e-5` for `d0 < 1e-5`.) Hairer, Norsett & Wanner
    # (1993) II.4 take h0 = 0.01 d0 / d1 unless d0 or d1 is below 1e-5 (then 1e-6); d0 = |y0 / sc|, d1 = |f(y0) / sc|
    # (sc = atol + rtol |y0|, an RMS over the states). A bolus of 5e-6 mg into one amount decaying at K = 2 /h, with
    # atol = 0.5 mg and rtol = 1e-14 (sc = 0.5 + 5e-20 = 0.5 exactly), puts d0 at exactly 1e-5 (5e-6 / 0.5: halving
    # is exact) and d1 at 2e-5: h0 = 0.005, and the first step min(100 h0, (0.01 / max(d1, d2))^(1/5)) = 0.5 h
    # (d2 = K^2 d0 = 4e-5) is above max_step = 0.05 h, so every step is 0.05 h (errors
    # far below atol) and the run to 1 h takes 20 (counted here by the solver's rule); A = 5e-6 e^{-K t}. The
    # mutant's h0 of 1e-6 starts at 1e-4 h and takes 3 more steps.
    dose, k, rtol, atol, max_step, T = 5e-6, 2.0, 1e-14, 0.5, 0.05, 1.0
    sc = atol + rtol * dose
    assert sc == 0.5
    d0, d1 = np.sqrt((dose / sc) ** 2 / 1), np.sqrt((k * dose / sc) ** 2 / 1)
    assert d0 == 1e-5 and d1 > 1e-5
    h0 = 0.01 * d0 / d1
    d2 = k * k * dose / sc
    assert min(100.0 * h0, (0.01 / max(d1, d2)) ** (1.0 / 5.0)) > max_step
    t, h, expected = 0.0, max_step, 0
    while t < T:
        if t + 1.01 * h >= T:
            h = T - t
        t, expected = t + h, expected + 1
    assert expected == 20
    model = _ONE_DECAY
    sim = pkpd.simulate(model, pkpd.Regimen.single(pkpd.Dose(dose, "mg")), np.array([T]), params={"K": k},
                        backend=backend,
                        settings=pkpd.SolverSettings(method="tsit5", rtol=rtol, atol=atol, max_step=max_step))
    assert sim.status.tolist() == [0]
    assert sim.n_steps.tolist() == [expected]
    np.testing.assert_allclose(sim.outputs["a"][0], dose * np.exp(-k * T), rtol=1e-6)


# ------------------------------------------------------------------------------------------- templates, seed 31
@pytest.mark.parametrize("backend", ["native", "numba"])
def test_rodas4_lands_on_an_output_exactly_the_smallest_step_before_the_segments_end(backend):
    # (_native_template.py:357: Rodas4 lands on an output only at `tend - tt > hmin` for `>= hmin`.) Rodas4 lands
    # its steps on output times, but not on one *closer* to the segment's end than the smallest step hmin = 16 eps
    # max(|t|, |tend|, 1); one exactly hmin before the end is landed on, and the rest, a step of exactly hmin, is
    # taken (only a step below hmin underflows). With K = 0 in the nilpotent model nothing moves (f = 0, J = 0):
    # after the dose at 0 Rodas4 starts at 1e-6 h (the starting-step rule for f = 0) and, its error 0, grows each
    # step sixfold; the step that reaches the last output at 1 h (within 1.01 h) covers the output 1 - 2^-48, which
    # is hmin = 2^-48 before the end (both exact: checked here), so it stops there, and one step of hmin ends the
    # segment: the count replayed here plus 2, the held 1 mg at both outputs. The mutant interpolates that output
    # inside the step to 1 h: one step fewer.
    end, hmin = 1.0, 16.0 * 2.220446049250313e-16
    out = end - 2.0**-48
    assert hmin == 2.0**-48 and end - out == hmin and out < end
    t, h, expected = 0.0, 1e-6, 0
    while t + 1.01 * h < end:
        t, h, expected = t + h, 6.0 * h, expected + 1
    assert t < out
    expected += 2  # landed on `out`, then the step of hmin to `end`
    model = _NILPOTENT
    sim = pkpd.simulate(model, pkpd.Regimen.single(pkpd.Dose(1.0, "mg")), np.array([out, end]), params={"K": 0.0},
                        backend=backend, settings=pkpd.SolverSettings(method="rodas4"))
    assert sim.status.tolist() == [0]
    assert sim.n_steps.tolist() == [expected]
    assert sim.states["A"][0].tolist() == [1.0, 1.0]
    assert sim.outputs["b"][0].tolist() == [0.0, 0.0]
