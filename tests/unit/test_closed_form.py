"""Closed-form solutions of linear models (issue 15 item 3) against tight-tolerance ODE solves.

The closed form (matrix exponentials) and the ODE solver share nothing but the event table; at rtol 1e-12 the ODE
solution is a reference to ~1e-10, so the two must agree to 1e-8, relative to each value (and to 1e-12 of the
largest value of the trajectory, where a value has decayed below 1e-4 of it: there the ODE solver's absolute
tolerance, not the closed form, limits the agreement).
"""

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import pkpd
from pkpd import Bolus, Dose, DoseTarget, Infusion, Model, Output, Parameter, Regimen, SolverSettings, State
from pkpd.closed_form import uses_closed_form
from pkpd.errors import DosingError, PkpdError
from pkpd.linear_system import linearity
from pkpd.nonmem import read_nonmem, simulate_nonmem

REL = 1e-8
ODE = SolverSettings(method="ode", rtol=1e-12, atol=1e-16)
EXACT = SolverSettings(method="closed-form")
LINEAR = {"msc_biodistribution", "nmtest_1cmt_oral", "pk_1cmt_iv", "pk_1cmt_oral", "pk_2cmt_iv", "pk_2cmt_oral",
          "wang2007"}
NONLINEAR = {"msc_salvadori": "R", "msc_sepsis": "P", "tmdd": "L", "msc_gvhd": "R"}


def assert_close(got, ref, rel=REL):
    got, ref = np.asarray(got), np.asarray(ref)
    assert got.shape == ref.shape
    scale = np.nanmax(np.abs(ref), axis=-1, keepdims=True)
    err = np.abs(got - ref) / np.maximum(np.abs(ref), 1e-4 * np.maximum(scale, 1e-300))
    assert np.all(np.isfinite(got)) and float(np.max(err)) < rel, float(np.max(err))


def compare(model, regimen, times, **kwargs):
    exact = pkpd.simulate(model, regimen, times, settings=EXACT, **kwargs)
    ode = pkpd.simulate(model, regimen, times, settings=ODE, **kwargs)
    for name in list(model.output_names) + list(model.state_names):
        assert_close(exact[name], ode[name])
    return exact, ode


# ------------------------------------------------------------------------------------------------ detection
def shipped():
    from pathlib import Path

    return sorted(p.stem for p in (Path(pkpd.__file__).resolve().parents[1] / "models").glob("*.toml"))


def test_every_shipped_model_is_classified():
    names = set(shipped())
    assert LINEAR | set(NONLINEAR) == names
    for name in LINEAR:
        assert linearity(pkpd.load_model(name)).is_linear, name
    for name, state in NONLINEAR.items():
        verdict = linearity(pkpd.load_model(name))
        assert not verdict.is_linear and verdict.reason.startswith(f"d/dt {state} is not linear"), verdict.reason


def test_detected_matrix_is_the_jacobian():
    m = pkpd.load_model("pk_2cmt_oral")
    p = {x.name: x.value for x in m.parameters}
    k10, k12, k21 = p["CL"] / p["V1"], p["Q"] / p["V1"], p["Q"] / p["V2"]
    env = p | {"k10": k10, "k12": k12, "k21": k21}
    from pkpd import expressions as ex

    A = np.array([[ex.evaluate(e, env) for e in row] for row in linearity(m).system.matrix], dtype=float)
    ref = np.array([[-p["ka"], 0, 0], [p["ka"], -k10 - k12, k21], [0, k12, -k21]])
    assert np.allclose(A, ref, rtol=1e-15)


def nonlinear_variant(ddt, outputs=("x / V",)):
    return Model(name="variant", time_unit="h",
                 parameters=(Parameter("k", 0.3, "1/h"), Parameter("V", 10.0, "L"), Parameter("Km", 5.0, "mg"),
                             Parameter("T1", 24.0, "h")),
                 states=(State("x", "mg", "0", ddt),),
                 outputs=tuple(Output(f"o{i}", e, "mg/L") for i, e in enumerate(outputs)),
                 doses=(DoseTarget("iv", "x", "mg"),))


@pytest.mark.parametrize("ddt, reason", [
    ("-k * x * Km / (Km + x)", "derivative by x depends on x"),          # Michaelis-Menten
    ("-k * x * ifelse(t < T1, 1, 2)", "depends on the time t"),           # time-varying coefficient
    ("-k * ifelse(x > Km, x, Km)", "derivative by x depends on x"),       # a switch on a state
])
def test_nonlinear_or_time_dependent_equations_fall_back_with_a_reason(ddt, reason):
    m = nonlinear_variant(ddt)
    verdict = linearity(m)
    assert not verdict.is_linear and reason in verdict.reason
    assert not uses_closed_form(m, SolverSettings())
    with pytest.raises(PkpdError, match="not a linear system"):
        pkpd.simulate(m, Regimen.single(Dose(100, "mg")), [0.0, 1.0], settings=EXACT)
    sim = pkpd.simulate(m, Regimen.single(Dose(100, "mg")), [0.0, 1.0])  # the ODE solver
    assert np.all(np.isfinite(sim["o0"]))


def test_a_coefficient_switching_on_parameters_only_is_linear():
    m = nonlinear_variant("-ifelse(T1 > 2 / k, k, 2 * k) * x")
    assert linearity(m).is_linear
    compare(m, Regimen.single(Dose(100, "mg")), np.linspace(0, 10, 11))


# ------------------------------------------------------------------------------------------------ shipped models
def random_regimen(rng, model, time_unit="h"):
    """Boluses and infusions (given by duration and by rate) into every dose target, some repeated."""
    items = []
    for target in model.doses:
        if target.rate is not None or target.duration is not None:
            continue
        unit = target.unit
        for _ in range(int(rng.integers(1, 4))):
            t = float(rng.choice([0.0, rng.uniform(0, 30)]))
            amount = float(rng.uniform(10, 200))
            kind = rng.integers(0, 3)
            if kind == 0:
                items.append(Bolus(t, Dose(amount, unit), target=target.name))
            elif kind == 1:
                items.append(Infusion(t, Dose(amount, unit), duration=float(rng.uniform(0.2, 6)), target=target.name))
            else:
                items.append(Infusion(t, Dose(amount, unit), rate=float(rng.uniform(5, 50)), target=target.name))
    return Regimen(tuple(items), time_unit=time_unit)


@pytest.mark.parametrize("name", sorted(LINEAR))
def test_shipped_linear_models_equal_the_ode_solution(name):
    m = pkpd.load_model(name)
    rng = np.random.default_rng(sum(map(ord, name)))
    times = np.unique(np.concatenate([np.linspace(0, 72, 37), rng.uniform(0, 72, 10)]))
    covariates = {c.name: c.value for c in m.covariates} or None
    regs = [random_regimen(rng, m) for _ in range(3)]
    # parameters drawn inside their bounds, one set per subject
    params = {p.name: np.exp(rng.uniform(np.log(max(p.bounds[0], p.value / 3)), np.log(min(p.bounds[1], p.value * 3)),
                                         3)) if p.value > 0 else np.full(3, p.value) for p in m.parameters}
    compare(m, regs, times, params=params, covariates=covariates)


def test_every_default_solve_of_a_linear_model_takes_the_closed_form():
    m = pkpd.load_model("pk_1cmt_oral")
    assert uses_closed_form(m, SolverSettings())
    for method in ("ode", "tsit5", "rodas4"):
        assert not uses_closed_form(m, SolverSettings(method=method))
    sim = pkpd.simulate(m, Regimen.single(Dose(100, "mg")), np.linspace(0, 24, 25))
    ode = pkpd.simulate(m, Regimen.single(Dose(100, "mg")), np.linspace(0, 24, 25), settings=SolverSettings(
        method="ode"))
    # the ODE solver takes hundreds of steps; the closed form one exact step per output interval
    assert sim.n_steps[0] == 24 and ode.n_steps[0] > 24


def test_analytic_two_compartment_bolus():
    # an independent reference: the bi-exponential of a 2-cmt IV bolus (Gibaldi & Perrier), not the ODE solver
    m = pkpd.load_model("pk_2cmt_iv")
    p = {x.name: x.value for x in m.parameters}
    k10, k12, k21 = p["CL"] / p["V1"], p["Q"] / p["V1"], p["Q"] / p["V2"]
    s, d = k10 + k12 + k21, np.sqrt((k10 + k12 + k21) ** 2 - 4 * k10 * k21)
    alpha, beta = (s + d) / 2, (s - d) / 2
    t = np.linspace(0, 48, 49)
    ref = 100 / p["V1"] * ((alpha - k21) * np.exp(-alpha * t) + (k21 - beta) * np.exp(-beta * t)) / (alpha - beta)
    sim = pkpd.simulate(m, Regimen.single(Dose(100, "mg")), t, settings=EXACT)
    assert np.max(np.abs(sim["conc"][0] - ref) / ref) < 1e-12


def test_equal_rates_absorption_and_elimination():
    # ka = ke makes A defective (no eigenvector basis): C = D ka t exp(-k t) / V, where eigen-solutions break down
    m = pkpd.load_model("pk_1cmt_oral")
    V, CL = m.parameter("V").value, m.parameter("CL").value
    k = CL / V
    t = np.linspace(0, 24, 25)
    sim = pkpd.simulate(m, Regimen.single(Dose(100, "mg")), t, params={"ka": k}, settings=EXACT)
    F = m.parameter("F").value if "F" in m.parameter_names else 1.0
    ref = F * 100 * k * t * np.exp(-k * t) / V
    assert np.max(np.abs(sim["conc"][0] - ref) / np.maximum(ref, 1e-300)) < 1e-12


# ------------------------------------------------------------------------------------------------ random models
def random_linear_model(rng, n):
    """A random compartmental model: transfers j -> i, elimination from every state, an optional zero-order input,
    a depot-style dose target with bioavailability and lag, and a second target without."""
    params = [Parameter("V", float(rng.uniform(1, 50)), "L", (1e-3, 1e4))]
    terms = {i: [] for i in range(n)}
    for j in range(n):
        params.append(Parameter(f"ke{j}", float(rng.uniform(0.02, 1.5)), "1/h", (1e-6, 1e3)))
        terms[j].append(f"- ke{j} * x{j}")
        for i in range(n):
            if i != j and rng.random() < 0.6:
                params.append(Parameter(f"k{j}to{i}", float(rng.uniform(0.05, 4)), "1/h", (1e-6, 1e3)))
                terms[j].append(f"- k{j}to{i} * x{j}")
                terms[i].append(f"+ k{j}to{i} * x{j}")
    if rng.random() < 0.5:
        params.append(Parameter("R0", float(rng.uniform(0.5, 5)), "mg/h", (0, 1e3)))
        terms[int(rng.integers(0, n))].append("+ R0")
    params += [Parameter("F", float(rng.uniform(0.3, 1)), "1", (0, 1)),
               Parameter("lag", float(rng.uniform(0, 1.5)), "h", (0, 10))]
    states = tuple(State(f"x{i}", "mg", "0" if i else "x0_init", " ".join(terms[i])) for i in range(n))
    params.append(Parameter("x0_init", float(rng.uniform(0, 20)), "mg", (0, 1e3)))
    outputs = (Output("conc", f"x{n - 1} / V", "mg/L"), Output("total", " + ".join(f"x{i}" for i in range(n)), "mg"))
    doses = (DoseTarget("depot", "x0", "mg", factor="F", lag="lag"),
             DoseTarget("direct", f"x{int(rng.integers(0, n))}", "mg"))
    return Model(name=f"random{n}", time_unit="h", parameters=tuple(params), states=states, outputs=outputs,
                 doses=doses)


@pytest.mark.parametrize("seed", range(8))
def test_random_linear_models_and_regimens(seed):
    rng = np.random.default_rng(seed)
    m = random_linear_model(rng, int(rng.integers(1, 5)))
    assert linearity(m).is_linear
    regs = [random_regimen(rng, m) for _ in range(2)]
    regs.append(Regimen.every(float(rng.uniform(6, 24)), "h", count=int(rng.integers(2, 6)), dose=Dose(50, "mg"),
                              target="depot"))
    times = np.unique(np.round(rng.uniform(0, 96, 30), 3))
    compare(m, regs, times)


def test_parameter_changes_during_the_run_start_new_coefficients():
    # a time-varying parameter (occasions, a covariate changing) keeps the system linear between events
    m = pkpd.load_model("pk_2cmt_oral")
    t = np.linspace(0, 72, 73)
    reg = Regimen.every(12, "h", count=6, dose=Dose(100, "mg"))
    exact, _ = compare(m, reg, t, changes={"CL": ([10.0, 30.0], [2.0, 9.0]), "V1": ([20.0], [25.0])})
    plain = pkpd.simulate(m, reg, t, settings=EXACT)
    assert not np.allclose(exact["conc"][0, 12:], plain["conc"][0, 12:])  # the changes took effect


def test_dose_unit_mismatch_still_errors():
    m = pkpd.load_model("pk_1cmt_iv")
    with pytest.raises(DosingError, match="unit"):
        pkpd.simulate(m, Regimen.single(Dose(100, "cell")), [0.0, 1.0])


def test_non_finite_coefficients_are_a_solver_failure():
    m = nonlinear_variant("-k * (Km / Km) * x")  # linear; Km = 0 makes its coefficient NaN
    assert linearity(m).is_linear
    sim = pkpd.simulate(m, Regimen.single(Dose(100, "mg")), [0.0, 1.0], params={"Km": np.array([1.0, 0.0])},
                        settings=SolverSettings(on_failure="mark"))
    assert list(sim.status) == [0, 3] and np.all(np.isnan(sim["o0"][1])) and np.all(np.isfinite(sim["o0"][0]))
    with pytest.raises(pkpd.SimulationError, match="non-finite"):
        pkpd.simulate(m, Regimen.single(Dose(100, "mg")), [0.0, 1.0], params={"Km": 0.0})


# ------------------------------------------------------------------------------------------------ NONMEM records
def nonmem_records():
    """SS=1 and SS=2 doses (bolus and infusion), a steady-state constant infusion, ADDL, a reset and an EVID 4."""
    rows = []
    # subject 1: SS=1 oral bolus, then SS=2 IV infusion on top, then observations
    rows += [dict(ID=1, TIME=0, EVID=1, AMT=100, CMT=1, SS=1, II=12, RATE=0, ADDL=0),
             dict(ID=1, TIME=2, EVID=1, AMT=60, CMT=2, SS=2, II=8, RATE=20, ADDL=0)]
    rows += [dict(ID=1, TIME=t, EVID=0, AMT=0, CMT=2, SS=0, II=0, RATE=0, ADDL=0) for t in (0.5, 1, 3, 6, 10, 24)]
    # subject 2: steady-state constant infusion, then repeated oral doses (ADDL) and a reset with a new dose
    rows += [dict(ID=2, TIME=0, EVID=1, AMT=0, CMT=2, SS=1, II=0, RATE=15, ADDL=0),
             dict(ID=2, TIME=4, EVID=1, AMT=80, CMT=1, SS=0, II=6, RATE=0, ADDL=3)]
    rows += [dict(ID=2, TIME=t, EVID=0, AMT=0, CMT=2, SS=0, II=0, RATE=0, ADDL=0) for t in (1, 5, 9, 20, 30)]
    rows += [dict(ID=2, TIME=31, EVID=4, AMT=50, CMT=2, SS=1, II=24, RATE=0, ADDL=0),
             dict(ID=2, TIME=40, EVID=0, AMT=0, CMT=2, SS=0, II=0, RATE=0, ADDL=0)]
    return pd.DataFrame(rows).sort_values(["ID", "TIME"], kind="stable")


def test_steady_state_records_equal_the_ode_solution():
    m = pkpd.load_model("nmtest_1cmt_oral")
    ds = read_nonmem(nonmem_records(), dose_unit="target")
    exact = simulate_nonmem(m, ds, settings=EXACT)
    ode = simulate_nonmem(m, ds, settings=ODE)
    assert_close(exact["CP"].to_numpy()[None], ode["CP"].to_numpy()[None])


def test_steady_state_bolus_equals_the_geometric_series():
    # an independent reference: at steady state the 1-cmt IV bolus is D/V exp(-k t) / (1 - exp(-k tau))
    m = pkpd.load_model("pk_1cmt_iv")
    CL, V = m.parameter("CL").value, m.parameter("V").value
    k, tau = CL / V, 12.0
    ds = read_nonmem(pd.DataFrame({"ID": [1] * 4, "TIME": [0, 1, 6, 11.5], "EVID": [1, 0, 0, 0],
                                        "AMT": [100, 0, 0, 0], "SS": [1, 0, 0, 0], "II": [tau, 0, 0, 0]}),
                     dose_unit="target")
    out = simulate_nonmem(m, ds, settings=EXACT)
    t = np.array([0, 1, 6, 11.5])
    ref = 100 / V * np.exp(-k * t) / (1 - np.exp(-k * tau))
    assert np.max(np.abs(out["conc"].to_numpy() - ref) / ref) < 1e-12


# ------------------------------------------------------------------------------------------------ engines
def test_numba_kernel_equals_the_c_kernel_and_scipy_expm():
    # the numba kernel run as plain Python (NUMBA_DISABLE_JIT: no compile) on the inputs the C kernel gets
    code = r"""
import numpy as np
from pkpd import _linear_kernels, _native_linear
rng = np.random.default_rng(3)
n, ns, T, E = 3, 3, 12, 6
A = -np.abs(rng.normal(size=(n, 2, ns, ns))) * np.eye(ns) + 0.3 * np.abs(rng.normal(size=(n, 2, ns, ns)))
C = rng.uniform(0, 1, (n, 2, ns))
Y0 = rng.uniform(0, 5, (n, ns))
ev_t = np.sort(rng.uniform(0, 20, (n, E)), axis=1); ev_t[:, 2] = ev_t[:, 1]
ev_kind = np.array([[0, 1, 3, 1, 0, 2], [1, 1, 0, 4, 5, 0], [0, 0, 0, 0, 1, 1]], dtype=np.int64)
ev_idx = rng.integers(0, ns, (n, E)).astype(np.int64)
ev_val = rng.uniform(1, 10, (n, E)); ev_val[:, 3] *= -1
n_ev = np.array([E, E, 4], dtype=np.int64)
TT = np.sort(rng.uniform(0, 25, (n, T)), axis=1); TT[1, 5] = ev_t[1, 4]
PRE = np.zeros((n, T), dtype=np.int64); PRE[0, 3] = 1
n_out = np.array([T, T, T - 2], dtype=np.int64)
row = np.arange(n, dtype=np.int64)
t0 = np.minimum(TT[:, 0], ev_t[:, 0])
res = []
for k in (_linear_kernels, _native_linear._build(__import__("pkpd._cache", fromlist=["x"]).cache_root().as_posix())):
    so = np.zeros((n, T, ns)); eo = np.zeros((n, T), dtype=np.int64)
    st = np.zeros(n, dtype=np.int64); co = np.zeros((n, 4))
    k.solve_batch(A, C, Y0, ev_t, ev_kind, ev_idx, ev_val, n_ev, TT, PRE, n_out, row, t0, so, eo, st, co)
    res.append((so, eo, st, co))
(a, b) = res
assert np.array_equal(a[1], b[1]) and np.array_equal(a[2], b[2]) and np.array_equal(a[3], b[3])
assert np.max(np.abs(a[0] - b[0]) / np.maximum(np.abs(b[0]), 1e-12)) < 1e-13, np.max(np.abs(a[0] - b[0]))
from scipy.linalg import expm as scipy_expm
for scale in (1e-3, 1.0, 30.0, 1e3):  # the Pade [13/13] exponential, with and without scaling and squaring
    M = rng.normal(size=(5, 5)) * scale / 5 - np.eye(5) * scale
    ref = scipy_expm(M)
    assert np.max(np.abs(_linear_kernels.expm(M) - ref)) <= 1e-13 * max(1.0, np.max(np.abs(ref))), scale
print("ok")
"""
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-3000:]


def test_large_batches_run_in_chunks_with_the_same_result(monkeypatch):
    import pkpd.simulation as simulation

    m = pkpd.load_model("pk_2cmt_oral")
    params = {"CL": np.linspace(2, 8, 11)}
    reg = Regimen.every(12, "h", count=3, dose=Dose(100, "mg"))
    whole = pkpd.simulate(m, reg, np.linspace(0, 48, 25), params=params)
    monkeypatch.setattr(simulation, "_BATCH_CHUNK", 3)
    chunked = pkpd.simulate(m, reg, np.linspace(0, 48, 25), params=params, progress=False)
    np.testing.assert_array_equal(whole["conc"], chunked["conc"])
    np.testing.assert_array_equal(whole.n_steps, chunked.n_steps)


def test_show_and_the_model_say_which_solver_runs(capsys):
    from pkpd.cli import main

    assert pkpd.load_model("pk_1cmt_iv").is_linear and not pkpd.load_model("tmdd").is_linear
    assert main(["show", "pk_1cmt_iv"]) == 0
    assert "solver: closed form" in capsys.readouterr().out
    assert main(["show", "tmdd"]) == 0
    assert "solver: ODE (d/dt L is not linear in the states" in capsys.readouterr().out


def test_sensitivities_of_a_linear_model_are_solved_in_closed_form_too():
    # the forward-sensitivity system of a linear model (used by fit(gradient="sensitivity")) is itself linear, so it
    # is solved exactly; its sensitivities equal central differences of the closed-form outputs
    from pkpd._sensitivity import sensitivity_model

    m = pkpd.load_model("pk_2cmt_oral")
    names = ("ka", "CL", "V1")
    sens = sensitivity_model(m, names, ("conc",))
    assert sens.model.is_linear
    reg = Regimen.every(12, "h", count=3, dose=Dose(100, "mg"))
    t = np.linspace(0.5, 48, 20)
    from pkpd.compile import compile_model
    from pkpd.simulation import build_events, run_batch

    base, cm = compile_model(m), compile_model(sens.model)
    values = np.array([[p.value for p in m.parameters]])
    events = build_events(base, [reg], base.build_q(values, np.zeros((1, 0))))  # doses into the base states
    q = cm.build_q(values, np.array([[sens.model.covariates[0].value]]))
    sol = run_batch(cm, q, cm.initial_state(q), events, t[None], np.zeros((1, t.size), dtype=np.int64),
                    np.array([t.size]), np.array([0.0]), EXACT)
    sim = {name: sol["outputs"][:, :, k] for k, name in enumerate(sens.model.output_names)}
    outputs = sens.model.output_names
    for j, p in enumerate(names):
        got = sim[outputs[sens.output_index[0, j]]][0]
        v = m.parameter(p).value
        h = 1e-6 * v
        up, down = (pkpd.simulate(m, reg, t, params={p: v + s}, settings=EXACT)["conc"][0] for s in (h, -h))
        assert np.max(np.abs(got - (up - down) / (2 * h)) / np.max(np.abs(got))) < 1e-7, p


def test_population_objective_with_the_closed_form_equals_the_compiled_ode_one(monkeypatch):
    # the finite-difference population engine (machines without a C compiler), whose predictions are batch solves,
    # takes the closed form as simulate does; the compiled library solves the same linear system exactly in its own
    # C code (tests/unit/test_closed_form_estimation.py): the same OFV from both, and from the ODE solver
    from pathlib import Path

    import pkpd.estimation._compiled as compiled_library
    from pkpd.nlme import population_objective

    data = read_nonmem(Path(__file__).resolve().parents[1] / "data" / "theoph.csv", pkpd.load_model("pk_1cmt_oral"),
                       dose_unit="mg")
    kw = dict(iiv={"ka": 0.6, "CL": 0.3, "V": 0.1}, error=pkpd.Additive(sd=0.7), method="focei")
    compiled = population_objective("pk_1cmt_oral", data, settings=SolverSettings(method="closed-form"), **kw)
    with monkeypatch.context() as patch:
        patch.setattr(compiled_library, "available", lambda: False)
        exact = population_objective("pk_1cmt_oral", data, settings=SolverSettings(method="closed-form"), **kw)
    ode = population_objective("pk_1cmt_oral", data, settings=SolverSettings(method="ode", rtol=1e-10, atol=1e-12),
                               **kw)
    assert abs(exact - ode) < 1e-4, (exact, ode)
    assert abs(compiled - ode) < 1e-6, (compiled, ode)


@pytest.mark.parametrize("mode", ["nocb", "locf", "linear"])
def test_time_varying_data_columns_equal_the_ode_solution(mode):
    # a parameter given record by record (NONMEM data column): constant between records, or interpolated in steps
    m = pkpd.load_model("pk_1cmt_iv")
    frame = pd.DataFrame({"ID": [1, 1, 1, 1, 2, 2, 2], "TIME": [0, 4, 10, 20, 0, 5, 9],
                          "EVID": [1, 0, 1, 0, 1, 0, 0], "AMT": [100, 0, 50, 0, 50, 0, 0],
                          "CMT": [1, ".", 1, ".", 1, ".", "."], "CL": [2.8, 5.0, 1.0, 3.0, 3.0, 4.0, 1.5]})
    ds = read_nonmem(frame, m, dose_unit="target")
    exact = simulate_nonmem(m, ds, interpolation={"CL": mode}, settings=EXACT)
    ode = simulate_nonmem(m, ds, interpolation={"CL": mode}, settings=ODE)
    assert_close(exact["conc"].to_numpy()[None], ode["conc"].to_numpy()[None])


# ------------------------------------------------------------------------------- mutation sample (seed 25)
def test_an_output_that_reads_the_time_is_exact_with_shared_and_per_subject_times():
    # o1 = x/V * t/T1 reads t itself: closed form against the analytic solution (D/V) exp(-k t) t/T1, on times shared
    # by every subject (simulate) and on each subject's own record times (simulate_nonmem)
    m = nonlinear_variant("-k * x", outputs=("x / V", "x / V * (t / T1)"))
    assert uses_closed_form(m, EXACT)
    t = np.array([0.0, 0.5, 3.0, 10.0])
    sim = pkpd.simulate(m, Regimen.single(Dose(100, "mg")), t)
    np.testing.assert_allclose(sim["o1"][0], 10.0 * np.exp(-0.3 * t) * t / 24.0, rtol=1e-12)
    rows = []
    for sid, times in ((1, (1.0, 2.0)), (2, (4.0, 8.0, 16.0))):
        rows.append(dict(ID=sid, TIME=0.0, AMT=100.0, EVID=1, DV=np.nan, MDV=1))
        rows += [dict(ID=sid, TIME=tj, AMT=0.0, EVID=0, DV=np.nan, MDV=1) for tj in times]
    out = simulate_nonmem(m, read_nonmem(pd.DataFrame(rows), m, dose_unit="mg"))
    tj = out["TIME"].to_numpy()
    np.testing.assert_allclose(out["o1"].to_numpy(), 10.0 * np.exp(-0.3 * tj) * tj / 24.0, rtol=1e-12)


def test_the_memory_guard_counts_the_states_the_closed_form_keeps_without_states():
    # states=False: simulate counts the 2 outputs (321,600 bytes for 200 subjects x 100 times), but the closed form
    # computes the outputs from the states it holds, 3 columns (481,600 bytes): a limit of 400,000 bytes refuses it
    m = nonlinear_variant("-k * x", outputs=("x / V", "2 * x / V"))
    params = {"V": np.linspace(5.0, 15.0, 200)}
    t = np.linspace(0.0, 24.0, 100)
    with pytest.raises(PkpdError, match=r"^this simulation would need 0\.000482 GB for its results \(200 subject\(s\) "
                                        r"x 100 times x 3 states/outputs\), more than the limit of 0\.0004 GB"):
        pkpd.simulate(m, Regimen.single(Dose(100, "mg")), t, params=params, states=False, max_memory_gb=4e-4)
    kept = pkpd.simulate(m, Regimen.single(Dose(100, "mg")), t, params=params, states=False, max_memory_gb=5e-4)
    np.testing.assert_allclose(kept["o1"][:, 0], 200.0 / params["V"], rtol=1e-12)


def test_a_failed_subject_without_outputs_is_marked_and_the_others_kept():
    # outputs=False with on_failure="mark": the closed form returns no outputs (None, as the ODE solver does), the
    # subject whose coefficient is not finite is marked (status 3), the other's states are exact
    m = nonlinear_variant("-k * (Km / Km) * x")
    sim = pkpd.simulate(m, Regimen.single(Dose(100, "mg")), [0.0, 1.0], params={"Km": np.array([1.0, 0.0])},
                        outputs=False, settings=SolverSettings(on_failure="mark"))
    assert list(sim.status) == [0, 3] and sim.outputs == {}
    np.testing.assert_allclose(sim["x"][0], 100.0 * np.exp(-0.3 * np.array([0.0, 1.0])), rtol=1e-12)


# ------------------------------------------------------------------------------- mutation sample (seed 26)
def test_a_function_call_in_the_constant_input_is_kept():
    # dx/dt = k Km exp(-k T1 / 24) - k x: the constant input (the right-hand side at zero states, folded) keeps the
    # call and its argument; closed form against x(t) = 100 exp(-k t) + c / k (1 - exp(-k t)) with
    # c / k = Km exp(-0.3) (k = 0.3, T1 = 24, Km = 5), o0 = x / V
    m = nonlinear_variant("k * Km * exp(-k * T1 / 24) - k * x")
    assert uses_closed_form(m, EXACT)
    t = np.array([0.0, 0.5, 3.0, 10.0, 48.0])
    sim = pkpd.simulate(m, Regimen.single(Dose(100, "mg")), t)
    decay = np.exp(-0.3 * t)
    x = 100.0 * decay + 5.0 * np.exp(-0.3) * (1.0 - decay)
    np.testing.assert_allclose(sim["x"][0], x, rtol=1e-12)
    np.testing.assert_allclose(sim["o0"][0], x / 10.0, rtol=1e-12)


def test_an_output_of_the_only_parameter_follows_its_change():
    # a model whose only parameter is k and nothing else in q (dx/dt = k x: no hoisted constant either), k given
    # record by record (locf): 0.3 before t = 2, 0.1 from t = 2 on; the output k x uses the k in force at each time:
    # k(t) x(t) with x = 100 exp(0.3 t) before t = 2 and 100 exp(0.6 + 0.1 (t - 2)) after
    m = Model(name="one_parameter", time_unit="h", parameters=(Parameter("k", 0.3, "1/h"),),
              states=(State("x", "mg", "0", "k * x"),), outputs=(Output("rate", "k * x", "mg/h"),),
              doses=(DoseTarget("iv", "x", "mg"),))
    frame = pd.DataFrame({"ID": [1] * 5, "TIME": [0.0, 1.0, 2.0, 3.0, 5.0], "EVID": [1, 0, 2, 0, 0],
                          "AMT": [100.0, 0, 0, 0, 0], "CMT": [1, ".", ".", ".", "."], "k": [0.3, 0.3, 0.1, 0.1, 0.1]})
    out = simulate_nonmem(m, read_nonmem(frame, m, dose_unit="mg"), interpolation={"k": "locf"}, settings=EXACT)
    t = out["TIME"].to_numpy()
    np.testing.assert_allclose(t, [0.0, 1.0, 2.0, 3.0, 5.0])
    k = np.where(t < 2.0, 0.3, 0.1)
    x = np.where(t < 2.0, 100.0 * np.exp(0.3 * t), 100.0 * np.exp(0.6 + 0.1 * (t - 2.0)))
    np.testing.assert_allclose(out["rate"].to_numpy(), k * x, rtol=1e-12)


# ------------------------------------------------------------------------------- mutation sample (seed 27)
def test_an_output_reads_a_derived_volume_scaled_by_a_covariate():
    # V = V0 WT / WTREF is a static derived quantity that follows the covariate WT (q holds CL, V0, WTREF, WT, V, then
    # the hoisted CL / V); the output x / V reads it: (D/V) exp(-CL/V t) with V = 10 L at WT = 70 kg and 5 L at 35 kg
    m = Model(name="wt_scaled", time_unit="h",
              parameters=(Parameter("CL", 2.0, "L/h"), Parameter("V0", 10.0, "L"), Parameter("WTREF", 70.0, "kg")),
              covariates=(pkpd.Covariate("WT", "kg", 70.0),), derived=(pkpd.Derived("V", "V0 * (WT / WTREF)", "L"),),
              states=(State("x", "mg", "0", "-CL / V * x"),), outputs=(Output("conc", "x / V", "mg/L"),),
              doses=(DoseTarget("iv", "x", "mg"),))
    assert uses_closed_form(m, EXACT)
    t = np.array([0.0, 1.0, 6.0, 24.0])
    sim = pkpd.simulate(m, Regimen.single(Dose(100, "mg")), t, covariates={"WT": np.array([70.0, 35.0])})
    V = np.array([[10.0], [5.0]])
    np.testing.assert_allclose(sim["conc"], 100.0 / V * np.exp(-2.0 / V * t), rtol=1e-12)


def test_ctrl_c_in_the_first_chunk_of_a_closed_form_batch_says_none_was_solved(monkeypatch):
    # the closed-form batch interrupted before its first chunk is solved: "0 of 10 subjects", message whole (simulate
    # prefixes the model's name)
    import types

    import pkpd._native_linear as native_linear

    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(native_linear, "kernels", lambda engine: types.SimpleNamespace(solve_batch=interrupted))
    with pytest.raises(KeyboardInterrupt) as caught:
        pkpd.simulate(pkpd.load_model("pk_1cmt_iv"), Regimen.single(Dose(100, "mg")), [0.0, 1.0],
                      params={"CL": np.linspace(1.0, 3.0, 10)}, settings=EXACT)
    assert str(caught.value) == ("pk_1cmt_iv: simulate interrupted: 0 of 10 subjects had been solved; no result was "
                                 "returned. Run again (fewer subjects, or simulate_summary for large populations).")


# ------------------------------------------------------------------------------- mutation sample (seed 28)
@pytest.mark.parametrize("progress", [False, None, True])
def test_a_closed_form_batch_in_one_chunk_prints_no_progress_bar(capsys, progress):
    # simulate's progress: a bar only for batches of more than 20,000 subjects (run in chunks); False never shows
    # one. Five subjects of the one-compartment bolus closed form print nothing on stderr, whatever progress says,
    # and their concentrations are (D/V) exp(-CL/V t) (CL 1..3 L/h, V = 20 L)
    m = pkpd.load_model("pk_1cmt_iv")
    assert uses_closed_form(m, SolverSettings())
    cl = np.linspace(1.0, 3.0, 5)
    t = np.array([0.0, 1.0, 12.0])
    sim = pkpd.simulate(m, Regimen.single(Dose(100, "mg")), t, params={"CL": cl, "V": 20.0}, progress=progress)
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""
    np.testing.assert_allclose(sim["conc"], 5.0 * np.exp(-cl[:, None] / 20.0 * t), rtol=1e-12)


# ------------------------------------------------------------------------------- mutation sample (seed 29)
def test_a_closed_form_batch_of_more_than_one_chunk_shows_the_progress_bar_asked_for(capsys):
    # simulate's progress=True shows a bar for a batch of more than 20,000 subjects (run in chunks): 20,001 subjects
    # of the one-compartment bolus closed form write a tqdm bar named after the model on stderr, counting
    # "20.0k/20.0k" subjects (unit_scale from 10,000 on), nothing on stdout; the concentrations are
    # (D/V) exp(-CL/V t) (CL 1..3 L/h, V = 20 L)
    m = pkpd.load_model("pk_1cmt_iv")
    assert uses_closed_form(m, SolverSettings())
    cl = np.linspace(1.0, 3.0, 20_001)
    t = np.array([0.0, 1.0])
    sim = pkpd.simulate(m, Regimen.single(Dose(100, "mg")), t, params={"CL": cl, "V": 20.0}, progress=True)
    captured = capsys.readouterr()
    assert captured.out == ""
    final = captured.err.rstrip("\n").split("\r")[-1]
    assert final.startswith("pk_1cmt_iv: simulate: 100%|") and "| 20.0k/20.0k [" in final and "subject/s]" in final
    np.testing.assert_allclose(sim["conc"], 5.0 * np.exp(-cl[:, None] / 20.0 * t), rtol=1e-12)


def test_the_epochs_of_a_closed_form_batch_are_one_plus_the_most_changes_of_a_subject():
    # _epochs' rule: q of every subject after each of its parameter changes, (n, 1 + most changes of a subject, n_q),
    # padded with the last one, derived quantities recomputed. pk_1cmt_iv (q: CL, V, WT, ke = CL/V, then the hoisted
    # constant): subject 0 changes CL to 1 at t = 1 and V to 10 at t = 2, subject 1 CL to 4 at t = 3, subject 2
    # nothing (one dose event only). By hand: three epochs, ke 0.1, 0.05, 0.1 / 0.1, 0.2, 0.2 / 0.1 throughout;
    # without any change a single epoch, q itself
    from pkpd.closed_form import _epochs
    from pkpd.simulation import EventTable, compiled_for

    cm = compiled_for(pkpd.load_model("pk_1cmt_iv"))
    assert cm.q_names[:4] == ("CL", "V", "WT", "ke")
    q = cm.build_q(np.tile([2.0, 20.0], (3, 1)), np.full((3, 1), 70.0))
    events = EventTable(time=np.array([[0.0, 1.0, 2.0], [0.0, 3.0, np.inf], [0.0, np.inf, np.inf]]),
                        kind=np.array([[0, 3, 3], [0, 3, 0], [0, 0, 0]]),
                        index=np.array([[0, 0, 1], [0, 0, 0], [0, 0, 0]]),
                        value=np.array([[100.0, 1.0, 10.0], [100.0, 4.0, 0.0], [100.0, 0.0, 0.0]]),
                        count=np.array([3, 2, 1]))
    out = _epochs(cm, q, events)
    assert out.shape == (3, 3, q.shape[1])
    np.testing.assert_allclose(out[:, :, 0], [[2.0, 1.0, 1.0], [2.0, 4.0, 4.0], [2.0, 2.0, 2.0]])
    np.testing.assert_allclose(out[:, :, 1], [[20.0, 20.0, 10.0], [20.0, 20.0, 20.0], [20.0, 20.0, 20.0]])
    np.testing.assert_allclose(out[:, :, 3], [[0.1, 0.05, 0.1], [0.1, 0.2, 0.2], [0.1, 0.1, 0.1]], rtol=1e-15)
    none = EventTable(time=np.zeros((3, 1)), kind=np.zeros((3, 1), dtype=np.int64),
                      index=np.zeros((3, 1), dtype=np.int64), value=np.full((3, 1), 100.0),
                      count=np.ones(3, dtype=np.int64))
    single = _epochs(cm, q, none)
    assert single.shape == (3, 1, q.shape[1])
    np.testing.assert_array_equal(single[:, 0], q)


def test_a_closed_form_batch_of_no_subjects_gives_empty_results_as_the_ode_solver():
    # run_batch (private; every batch solve) of zero subjects: the closed form returns, as the ODE solver does,
    # states and outputs (0, n_times, 1), no status and no counters, rather than failing
    from pkpd.simulation import EventTable, compiled_for, run_batch

    cm = compiled_for(pkpd.load_model("pk_1cmt_iv"))
    q = cm.build_q(np.zeros((0, 2)), np.zeros((0, 1)))
    events = EventTable(np.zeros((0, 1)), np.zeros((0, 1), dtype=np.int64), np.zeros((0, 1), dtype=np.int64),
                        np.zeros((0, 1)), np.zeros(0, dtype=np.int64))
    for settings in (EXACT, ODE):
        sol = run_batch(cm, q, np.zeros((0, 1)), events, np.array([[0.0, 1.0, 2.0]]), np.zeros((1, 3), dtype=np.int64),
                        np.array([3]), np.zeros(0), settings)
        assert sol["states"].shape == (0, 3, 1) and sol["outputs"].shape == (0, 3, 1)
        assert sol["status"].shape == (0,) and sol["counters"].shape == (0, 4)


# ------------------------------------------------------------------------------- mutation sample (seed 30)
def test_a_closed_form_batch_of_exactly_one_chunk_shows_no_progress_bar(capsys):
    # simulate's progress: a bar for batches of *more than* 20,000 subjects (run in chunks); exactly 20,000 subjects
    # are one chunk, so even progress=True shows none: stderr and stdout empty, and the concentrations of the
    # one-compartment bolus closed form are (D/V) exp(-CL/V t) (CL 1..3 L/h, V = 20 L)
    import pkpd.simulation as simulation

    assert simulation._BATCH_CHUNK == 20_000
    m = pkpd.load_model("pk_1cmt_iv")
    assert uses_closed_form(m, SolverSettings())
    cl = np.linspace(1.0, 3.0, 20_000)
    t = np.array([0.0, 1.0])
    sim = pkpd.simulate(m, Regimen.single(Dose(100, "mg")), t, params={"CL": cl, "V": 20.0}, progress=True)
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""
    np.testing.assert_allclose(sim["conc"], 5.0 * np.exp(-cl[:, None] / 20.0 * t), rtol=1e-12)



def test_run_batch_without_states_returns_none_for_them_with_the_closed_form_as_with_the_ode_solver():
    # run_batch's result (private API; run_closed_form is documented to give the same result): keep_states=False
    # gives states None, with the closed form as with the ODE solver, and the outputs still (D/V) exp(-CL/V t)
    # (pk_1cmt_iv, 100 mg bolus, CL 1 and 2 L/h, V = 20 L)
    from pkpd.simulation import build_events, compiled_for, run_batch

    cm = compiled_for(pkpd.load_model("pk_1cmt_iv"))
    cl = np.array([1.0, 2.0])
    q = cm.build_q(np.column_stack([cl, [20.0, 20.0]]), np.full((2, 1), 70.0))
    events = build_events(cm, [Regimen.single(Dose(100, "mg"))] * 2, q, set())
    t = np.array([[0.0, 1.0, 12.0]])
    for settings in (EXACT, ODE):
        sol = run_batch(cm, q, cm.initial_state(q), events, t, np.zeros((1, 3), dtype=np.int64), np.array([3]),
                        np.zeros(2), settings, keep_states=False)
        assert sol["states"] is None
        np.testing.assert_allclose(sol["outputs"][:, :, 0], 5.0 * np.exp(-cl[:, None] / 20.0 * t), rtol=1e-9)


def _cpu_engines():
    from pkpd._native import compiler

    return [e if e == "numba" or compiler() else pytest.param(e, marks=pytest.mark.skip("no C compiler"))
            for e in ("native", "numba")]


def _pk_1cmt_on(engine, clearances=(1.0,)):
    # pk_1cmt_iv compiled for one CPU engine, and q for the given clearances [L/h] at V = 20 L (WT 70 kg)
    from pkpd.simulation import compiled_for

    cm = compiled_for(pkpd.load_model("pk_1cmt_iv"), engine)
    assert cm.engine == engine
    cl = np.asarray(clearances, dtype=float)
    return cm, cm.build_q(np.column_stack([cl, np.full(cl.size, 20.0)]), np.full((cl.size, 1), 70.0))


def _assert_exact_and_ode_give(cm, q, y0, events, t, x):
    # run_batch for one subject at the output times t (1, n) under the closed form (to 1e-12) and the ODE solver (to
    # 1e-9): status 0, the state x [mg] and conc = x / 20 [mg/L] (V 20 L)
    from pkpd.simulation import run_batch

    for settings, rtol in ((EXACT, 1e-12), (ODE, 1e-9)):
        sol = run_batch(cm, q, y0, events, t, np.zeros(t.shape, dtype=np.int64), np.array([t.shape[1]]), np.zeros(1),
                        settings)
        assert list(sol["status"]) == [0]
        np.testing.assert_allclose(sol["states"][0, :, 0], x, rtol=rtol, atol=0.0)
        np.testing.assert_allclose(sol["outputs"][0, :, 0], x / 20.0, rtol=rtol, atol=0.0)


@pytest.mark.parametrize("engine", _cpu_engines())
def test_run_batch_with_integer_initial_states_gives_the_exact_decay_on_either_engine(engine):
    # run_batch (private API) converts what it is given: initial states given as integers (100 mg in x, no dose) are
    # solved as 100.0, (A0/V) exp(-CL/V t) = 5 exp(-0.05 t) (pk_1cmt_iv, CL 1 L/h, V 20 L), by the closed form of
    # either CPU engine (not refused by the C kernel, not truncated to integers by the numba one)
    from pkpd.simulation import EventTable, run_batch

    cm, q = _pk_1cmt_on(engine)
    none = EventTable(np.full((1, 1), np.inf), np.zeros((1, 1), dtype=np.int64), np.zeros((1, 1), dtype=np.int64),
                      np.zeros((1, 1)), np.zeros(1, dtype=np.int64))
    t = np.array([[0.0, 1.0, 12.0]])
    sol = run_batch(cm, q, np.array([[100]]), none, t, np.zeros((1, 3), dtype=np.int64), np.array([3]), np.zeros(1),
                    EXACT)
    assert list(sol["status"]) == [0]
    np.testing.assert_allclose(sol["states"][0, :, 0], 100.0 * np.exp(-0.05 * t[0]), rtol=1e-12)
    np.testing.assert_allclose(sol["outputs"][0, :, 0], 5.0 * np.exp(-0.05 * t[0]), rtol=1e-12)


# ------------------------------------------------------------------------------- mutation sample (seed 31)
def _one_compartment_batch(cl):
    # pk_1cmt_iv (V = 20 L) compiled, q for clearances cl, a 100 mg bolus at t = 0 for each subject
    from pkpd.simulation import build_events, compiled_for

    cm = compiled_for(pkpd.load_model("pk_1cmt_iv"))
    q = cm.build_q(np.column_stack([cl, np.full(cl.size, 20.0)]), np.full((cl.size, 1), 70.0))
    events = build_events(cm, [Regimen.single(Dose(100, "mg"))] * cl.size, q, set())
    return cm, q, events


def test_run_closed_form_called_with_its_defaults_shows_no_progress_bar(capsys):
    # run_closed_form is run_batch's counterpart with the same arguments (private API): its progress defaults to
    # False, as run_batch's, so a direct call on 20,001 subjects (more than one chunk of 20,000) shows no bar, stderr
    # and stdout empty, and the concentrations are (D/V) exp(-CL/V t) (CL 1..3 L/h, V = 20 L)
    # (run_closed_form__mutmut_3: progress defaulting to True, a tqdm bar on stderr)
    import inspect

    from pkpd.closed_form import run_closed_form
    from pkpd.simulation import run_batch

    assert inspect.signature(run_batch).parameters["progress"].default is False
    cl = np.linspace(1.0, 3.0, 20_001)
    cm, q, events = _one_compartment_batch(cl)
    t = np.array([[0.0, 1.0]])
    sol = run_closed_form(cm, q, cm.initial_state(q), events, t, np.zeros((1, 2), dtype=np.int64), np.array([2]),
                          np.zeros(cl.size))
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""
    np.testing.assert_allclose(sol["outputs"][:, :, 0], 5.0 * np.exp(-cl[:, None] / 20.0 * t), rtol=1e-12)


def test_run_closed_form_interrupted_with_its_default_description_says_simulate_interrupted(monkeypatch):
    # run_closed_form's desc defaults to "simulate", as run_batch's: a Ctrl-C during the kernel call (a stand-in
    # kernel raising KeyboardInterrupt) of a direct call without desc gives the exact message
    # "simulate interrupted: 0 of 2 subjects had been solved; ..." (run_closed_form__mutmut_4: "XXsimulateXX")
    import inspect

    import pkpd._native_linear as native_linear
    from pkpd.closed_form import run_closed_form
    from pkpd.simulation import run_batch

    assert inspect.signature(run_batch).parameters["desc"].default == "simulate"
    cm, q, events = _one_compartment_batch(np.array([1.0, 2.0]))

    class Interrupted:
        @staticmethod
        def solve_batch(*args):
            raise KeyboardInterrupt

    monkeypatch.setattr(native_linear, "kernels", lambda engine: Interrupted)
    with pytest.raises(KeyboardInterrupt) as info:
        run_closed_form(cm, q, cm.initial_state(q), events, np.array([[0.0, 1.0]]), np.zeros((1, 2), dtype=np.int64),
                        np.array([2]), np.zeros(2))
    assert str(info.value) == ("simulate interrupted: 0 of 2 subjects had been solved; no result was returned. "
                               "Run again (fewer subjects, or simulate_summary for large populations).")


@pytest.mark.parametrize("engine", _cpu_engines())
def test_run_batch_with_an_integer_start_time_gives_the_exact_decay_on_either_engine(engine):
    # run_batch (private API) converts what it is given: a start time given as an integer (t0 = 2 h, 100 mg already
    # in x then, no dose) is solved as 2.0 by the closed form of either CPU engine: x = 100 exp(-CL/V (t - 2)) and
    # conc = 5 exp(-0.05 (t - 2)) (pk_1cmt_iv, CL 1 L/h, V 20 L) at t = 2, 3 and 14 h
    # (run_closed_form__mutmut_52: t0 converted without dtype=float, refused by the C kernel as int64)
    from pkpd.simulation import EventTable, run_batch

    cm, q = _pk_1cmt_on(engine)
    none = EventTable(np.full((1, 1), np.inf), np.zeros((1, 1), dtype=np.int64), np.zeros((1, 1), dtype=np.int64),
                      np.zeros((1, 1)), np.zeros(1, dtype=np.int64))
    t = np.array([[2.0, 3.0, 14.0]])
    sol = run_batch(cm, q, np.array([[100.0]]), none, t, np.zeros((1, 3), dtype=np.int64), np.array([3]),
                    np.array([2]), EXACT)
    assert list(sol["status"]) == [0]
    np.testing.assert_allclose(sol["states"][0, :, 0], 100.0 * np.exp(-0.05 * (t[0] - 2.0)), rtol=1e-12)
    np.testing.assert_allclose(sol["outputs"][0, :, 0], 5.0 * np.exp(-0.05 * (t[0] - 2.0)), rtol=1e-12)


# ------------------------------------------------------------------------------- mutation sample (seed 32)
def test_run_closed_form_called_with_its_defaults_returns_the_states():
    # run_closed_form is run_batch's counterpart with the same arguments (private API): keep_states defaults to True,
    # as run_batch's, so a direct call without it returns the states, x = 100 exp(-CL/V t) (pk_1cmt_iv, 100 mg bolus,
    # CL 1 and 2 L/h, V = 20 L), beside the outputs 5 exp(-CL/V t)
    # (run_closed_form__mutmut_1: keep_states defaulting to False, states None)
    import inspect

    from pkpd.closed_form import run_closed_form
    from pkpd.simulation import run_batch

    assert inspect.signature(run_batch).parameters["keep_states"].default is True
    cl = np.array([1.0, 2.0])
    cm, q, events = _one_compartment_batch(cl)
    t = np.array([[0.0, 1.0, 12.0]])
    sol = run_closed_form(cm, q, cm.initial_state(q), events, t, np.zeros((1, 3), dtype=np.int64), np.array([3]),
                          np.zeros(2))
    assert sol["states"] is not None and sol["states"].shape == (2, 3, 1)
    np.testing.assert_allclose(sol["states"][:, :, 0], 100.0 * np.exp(-cl[:, None] / 20.0 * t), rtol=1e-12)
    np.testing.assert_allclose(sol["outputs"][:, :, 0], 5.0 * np.exp(-cl[:, None] / 20.0 * t), rtol=1e-12)


@pytest.mark.parametrize("engine", _cpu_engines())
def test_run_batch_with_boolean_before_event_flags_gives_the_troughs_and_peaks_on_either_engine(engine):
    # run_batch (private API) converts what it is given: "before events" flags given as booleans are read as 1 and 0
    # by the closed form of either CPU engine: 100 mg boluses at 0 and 12 h (pk_1cmt_iv, CL 1 L/h, V 20 L,
    # k = 0.05 /h), output times 0, 0, 12, 12, 24 flagged True, False, True, False, False give x = 0 (before the
    # first dose), 100, 100 e^(-0.6) (the trough before the second), 100 e^(-0.6) + 100, (100 e^(-0.6) + 100) e^(-0.6)
    # (run_closed_form__mutmut_42: the flags converted without dtype=np.int64, refused by the C kernel as bool)
    from pkpd.simulation import build_events, run_batch

    cm, q = _pk_1cmt_on(engine)
    regimen = Regimen.every(12, "h", count=2, dose=Dose(100, "mg"))
    events = build_events(cm, [regimen], q, set())
    t = np.array([[0.0, 0.0, 12.0, 12.0, 24.0]])
    pre = np.array([[True, False, True, False, False]])
    sol = run_batch(cm, q, cm.initial_state(q), events, t, pre, np.array([5]), np.zeros(1), EXACT)
    assert list(sol["status"]) == [0]
    e = np.exp(-0.6)
    x = np.array([0.0, 100.0, 100.0 * e, 100.0 * e + 100.0, (100.0 * e + 100.0) * e])
    np.testing.assert_allclose(sol["states"][0, :, 0], x, rtol=1e-12, atol=0.0)
    np.testing.assert_allclose(sol["outputs"][0, :, 0], x / 20.0, rtol=1e-12, atol=0.0)


# ------------------------------------------------------------------------------- mutation sample (seed 33)
@pytest.mark.parametrize("engine", _cpu_engines())
def test_run_batch_with_32_bit_event_counts_gives_the_exact_doses_on_either_engine(engine):
    # run_batch (private API) converts what it is given: event counts given as int32 (two 100 mg boluses at 0 and
    # 12 h, pk_1cmt_iv, CL 1 L/h, V 20 L, k = 0.05 /h) are read as 2 by the closed form of either CPU engine, as by
    # the ODE path: x = 100 e^(-kt) until 12 h, then 100 e^(-kt) + 100 e^(-k(t - 12)), and conc = x / 20, at 0, 6,
    # 12 and 24 h (run_closed_form__mutmut_156: the counts converted without dtype=np.int64, refused by the C kernel
    # as int32)
    from pkpd.simulation import EventTable, build_events, run_batch

    cm, q = _pk_1cmt_on(engine)
    ev = build_events(cm, [Regimen.every(12, "h", count=2, dose=Dose(100, "mg"))], q, set())
    events = EventTable(ev.time, ev.kind, ev.index, ev.value, ev.count.astype(np.int32))
    t = np.array([[0.0, 6.0, 12.0, 24.0]])
    sol = run_batch(cm, q, cm.initial_state(q), events, t, np.zeros((1, 4), dtype=np.int64), np.array([4]),
                    np.zeros(1), EXACT)
    assert list(sol["status"]) == [0]
    x = 100.0 * np.exp(-0.05 * t[0]) + np.where(t[0] >= 12.0, 100.0 * np.exp(-0.05 * (t[0] - 12.0)), 0.0)
    np.testing.assert_allclose(sol["states"][0, :, 0], x, rtol=1e-12, atol=0.0)
    np.testing.assert_allclose(sol["outputs"][0, :, 0], x / 20.0, rtol=1e-12, atol=0.0)


# ------------------------------------------------------------------------------- mutation sample (seed 34)
@pytest.mark.parametrize("engine", _cpu_engines())
def test_run_batch_with_32_bit_output_counts_gives_the_exact_decay_on_either_engine(engine):
    # run_batch (private API) converts what it is given: the number of output times given as int32 (3, shared times
    # 0, 1 and 12 h) is read as 3 by the closed form of either CPU engine, as by the ODE path: after a 100 mg bolus
    # (pk_1cmt_iv, CL 1 L/h, V 20 L, k = 0.05 /h) x = 100 e^(-kt) and conc = x / 20 at every time, none padded to 0
    # (run_closed_form__mutmut_49: n_out converted without dtype=np.int64, refused by the C kernel as int32)
    from pkpd.simulation import build_events, run_batch

    cm, q = _pk_1cmt_on(engine)
    events = build_events(cm, [Regimen.single(Dose(100, "mg"))], q, set())
    t = np.array([[0.0, 1.0, 12.0]])
    sol = run_batch(cm, q, cm.initial_state(q), events, t, np.zeros((1, 3), dtype=np.int64),
                    np.array([3], dtype=np.int32), np.zeros(1), EXACT)
    assert list(sol["status"]) == [0]
    x = 100.0 * np.exp(-0.05 * t[0])
    np.testing.assert_allclose(sol["states"][0, :, 0], x, rtol=1e-12, atol=0.0)
    np.testing.assert_allclose(sol["outputs"][0, :, 0], x / 20.0, rtol=1e-12, atol=0.0)


@pytest.mark.parametrize("engine", _cpu_engines())
def test_run_batch_with_integer_event_times_gives_the_exact_doses_on_either_engine(engine):
    # run_batch (private API) converts what it is given: event times given as integers (100 mg boluses at 0 and 12 h,
    # pk_1cmt_iv, CL 1 L/h, V 20 L, k = 0.05 /h) are read as 0.0 and 12.0 by the closed form of either CPU engine, as
    # by the ODE path: x = 100 e^(-kt) until 12 h, then 100 e^(-kt) + 100 e^(-k(t - 12)), and conc = x / 20, at 0, 6,
    # 12 and 24 h (run_closed_form__mutmut_138: the event times converted without dtype=float, refused by the C kernel
    # as int64)
    from pkpd.simulation import EventTable, build_events, run_batch

    cm, q = _pk_1cmt_on(engine)
    ev = build_events(cm, [Regimen.every(12, "h", count=2, dose=Dose(100, "mg"))], q, set())
    assert ev.count.tolist() == [2] and ev.time[0, :2].tolist() == [0.0, 12.0]
    events = EventTable(ev.time.astype(np.int64), ev.kind, ev.index, ev.value, ev.count)
    t = np.array([[0.0, 6.0, 12.0, 24.0]])
    sol = run_batch(cm, q, cm.initial_state(q), events, t, np.zeros((1, 4), dtype=np.int64), np.array([4]),
                    np.zeros(1), EXACT)
    assert list(sol["status"]) == [0]
    x = 100.0 * np.exp(-0.05 * t[0]) + np.where(t[0] >= 12.0, 100.0 * np.exp(-0.05 * (t[0] - 12.0)), 0.0)
    np.testing.assert_allclose(sol["states"][0, :, 0], x, rtol=1e-12, atol=0.0)
    np.testing.assert_allclose(sol["outputs"][0, :, 0], x / 20.0, rtol=1e-12, atol=0.0)


def test_run_batch_reads_a_subjects_own_row_of_a_longer_time_table_for_an_output_of_the_time():
    # run_batch (private API) reads subject i's output times from row i of a per-subject time table; rows past the
    # last subject are not read (the C kernel only checks that each row index lies inside the table, the ODE path
    # slices the subjects' rows). One subject given the two-row table of a batch, times 0, 1, 3 h (row 0) and 0, 2,
    # 4 h (row 1): the output o1 = x/V * t/T1 is, by hand, (D/V) e^(-kt) t/T1 = 10 e^(-0.3 t) t/24 at 0, 1 and 3 h,
    # with the closed form as with the ODE solver (_outputs__mutmut_44: t is the whole table unless it has more than
    # two rows, a (2, 3) t against one subject's (1, 3) states, and a ValueError from broadcasting)
    from pkpd.simulation import build_events, compiled_for, run_batch

    m = nonlinear_variant("-k * x", outputs=("x / V", "x / V * (t / T1)"))
    cm = compiled_for(m)
    q = cm.build_q(np.array([[0.3, 10.0, 5.0, 24.0]]), np.zeros((1, 0)))
    events = build_events(cm, [Regimen.single(Dose(100, "mg"))], q, set())
    tt = np.array([[0.0, 1.0, 3.0], [0.0, 2.0, 4.0]])
    t = tt[0]
    for settings, rtol in ((EXACT, 1e-12), (ODE, 1e-8)):
        sol = run_batch(cm, q, cm.initial_state(q), events, tt, np.zeros((2, 3), dtype=np.int64), np.array([3, 3]),
                        np.zeros(1), settings)
        assert list(sol["status"]) == [0] and sol["outputs"].shape == (1, 3, 2)
        np.testing.assert_allclose(sol["outputs"][0, :, 0], 10.0 * np.exp(-0.3 * t), rtol=rtol)
        np.testing.assert_allclose(sol["outputs"][0, :, 1], 10.0 * np.exp(-0.3 * t) * t / 24.0, rtol=rtol)


# ------------------------------------------------------------------------------- mutation sample (seed 35)
def test_a_comparison_in_the_constant_input_keeps_both_of_its_sides():
    # dx/dt = ifelse(k * T1 > 2, k * Km, Km / T1) - k x: a switch on parameters only is linear, and the constant input
    # (the right-hand side at zero states, folded) keeps the comparison with both of its sides. With k = 0.3 /h and
    # Km = 5 mg, T1 = 24 h gives k T1 = 7.2 > 2 and the input c = k Km = 1.5 mg/h, T1 = 5 h gives k T1 = 1.5 and
    # c = Km / T1 = 1 mg/h; closed form against x(t) = 100 exp(-k t) + c / k (1 - exp(-k t)), o0 = x / V (V = 10 L)
    # (linear_system._folded__mutmut_21 and _22: the comparison rebuilt with its left or its right side None, an
    # AttributeError when the constant is evaluated)
    m = nonlinear_variant("ifelse(k * T1 > 2, k * Km, Km / T1) - k * x")
    assert uses_closed_form(m, EXACT)
    t = np.array([0.0, 0.5, 3.0, 10.0, 48.0])
    sim = pkpd.simulate(m, Regimen.single(Dose(100, "mg")), t, params={"T1": np.array([24.0, 5.0])}, settings=EXACT)
    decay = np.exp(-0.3 * t)
    c = np.array([[1.5], [1.0]])
    x = 100.0 * decay + c / 0.3 * (1.0 - decay)
    np.testing.assert_allclose(sim["x"], x, rtol=1e-12)
    np.testing.assert_allclose(sim["o0"], x / 10.0, rtol=1e-12)


# ------------------------------------------------------------------------------- mutation sample (seed 36)
@pytest.mark.parametrize("engine", _cpu_engines())
def test_run_batch_with_32_bit_event_kinds_gives_the_exact_doses_on_either_engine(engine):
    # run_batch (private API) converts what it is given: event kinds given as int32 (two 100 mg boluses at 0 and
    # 12 h, pk_1cmt_iv, CL 1 L/h, V 20 L, k = 0.05 /h) are read as doses by the closed form of either CPU engine, as
    # by the ODE path: x = 100 e^(-kt) until 12 h, then 100 e^(-kt) + 100 e^(-k(t - 12)), and conc = x / 20, at 0, 6,
    # 12 and 24 h (run_closed_form__mutmut_141: the event kinds converted without dtype=np.int64, refused by the C
    # kernel as int32)
    from pkpd.simulation import EventTable, build_events

    cm, q = _pk_1cmt_on(engine)
    ev = build_events(cm, [Regimen.every(12, "h", count=2, dose=Dose(100, "mg"))], q, set())
    assert ev.count.tolist() == [2] and ev.time[0, :2].tolist() == [0.0, 12.0]
    events = EventTable(ev.time, ev.kind.astype(np.int32), ev.index, ev.value, ev.count)
    t = np.array([[0.0, 6.0, 12.0, 24.0]])
    x = 100.0 * np.exp(-0.05 * t[0]) + np.where(t[0] >= 12.0, 100.0 * np.exp(-0.05 * (t[0] - 12.0)), 0.0)
    _assert_exact_and_ode_give(cm, q, cm.initial_state(q), events, t, x)


# ------------------------------------------------------------------------------- mutation sample (seed 37)
@pytest.mark.parametrize("engine", _cpu_engines())
def test_run_batch_with_integer_output_times_gives_the_exact_decay_on_either_engine(engine):
    # run_batch (private API) converts what it is given: output times given as integers (0, 1, 12 and 24 h, shared)
    # are read as 0.0, 1.0, 12.0 and 24.0 by the closed form of either CPU engine, as by the ODE path, which converts
    # them itself: after a 100 mg bolus (pk_1cmt_iv, CL 1 L/h, V 20 L, k = 0.05 /h) x = 100 e^(-kt) and conc = x / 20
    # (run_closed_form__mutmut_39: the output times converted without dtype=float, refused by the C kernel as int64)
    from pkpd.simulation import build_events

    cm, q = _pk_1cmt_on(engine)
    events = build_events(cm, [Regimen.single(Dose(100, "mg"))], q, set())
    t = np.array([[0, 1, 12, 24]])
    assert t.dtype == np.int64
    x = 100.0 * np.exp(-0.05 * t[0])
    _assert_exact_and_ode_give(cm, q, cm.initial_state(q), events, t, x)


class _Numpy1OnWindows:
    """numpy as closed_form sees it under numpy 1.x on Windows (which pkpd's numpy>=1.24 allows), where the default
    integer is int32: ``arange`` without a dtype gives int32; everything else is numpy itself."""

    def __getattr__(self, name):
        return getattr(np, name)

    @staticmethod
    def arange(*args, dtype=None, **kwargs):
        return np.arange(*args, dtype=np.int32 if dtype is None else dtype, **kwargs)


@pytest.mark.parametrize("engine", _cpu_engines())
def test_the_closed_form_solves_per_subject_times_where_numpys_default_integer_is_int32(engine, monkeypatch):
    # the closed form hands its kernels int64 subject rows whatever numpy's default integer is (int64 on Linux and
    # macOS and with numpy 2 everywhere, int32 with numpy 1.x on Windows, emulated here for closed_form's numpy):
    # two subjects on their own output times (0, 1, 12 h and 0, 2, 24 h), 100 mg bolus each (pk_1cmt_iv, CL 1 and
    # 2 L/h, V 20 L) give x = 100 e^(-CL/V t) and conc = x / 20 on either CPU engine, as simulate_nonmem's per-subject
    # record times need (run_closed_form__mutmut_69: np.arange(n) without dtype=np.int64, an int32 row refused by the
    # C kernel there)
    from pkpd import closed_form
    from pkpd.simulation import build_events, run_batch

    monkeypatch.setattr(closed_form, "np", _Numpy1OnWindows())
    assert closed_form.np.arange(2).dtype == np.int32
    cm, q = _pk_1cmt_on(engine, (1.0, 2.0))
    events = build_events(cm, [Regimen.single(Dose(100, "mg"))] * 2, q, set())
    t = np.array([[0.0, 1.0, 12.0], [0.0, 2.0, 24.0]])
    sol = run_batch(cm, q, cm.initial_state(q), events, t, np.zeros((2, 3), dtype=np.int64), np.array([3, 3]),
                    np.zeros(2), EXACT)
    assert list(sol["status"]) == [0, 0]
    x = 100.0 * np.exp(-np.array([[0.05], [0.1]]) * t)
    np.testing.assert_allclose(sol["states"][:, :, 0], x, rtol=1e-12, atol=0.0)
    np.testing.assert_allclose(sol["outputs"][:, :, 0], x / 20.0, rtol=1e-12, atol=0.0)


@pytest.mark.parametrize("engine", _cpu_engines())
def test_run_batch_reads_no_event_past_a_subjects_count_with_the_closed_form_as_with_the_ode_solver(engine):
    # an event table is padded per subject, and only its first `count` events are read, by the closed form as by the
    # ODE path: a 100 mg bolus at 0 h and CL set from 1 to 2 L/h at 2 h (pk_1cmt_iv, V 20 L), then a padded slot of
    # kind 3 (as set_events pads) naming no column of q (99): x = 100 e^(-0.05 t) until 2 h, then
    # 100 e^(-0.1) e^(-0.1 (t - 2)), and conc = x / 20, at 0, 1, 12 and 24 h
    # (_epochs__mutmut_6: `<=` for `<`, the slot at `count` read as a parameter change: an IndexError)
    from pkpd.simulation import EventTable

    cm, q = _pk_1cmt_on(engine)
    assert cm.q_names[0] == "CL"
    events = EventTable(np.array([[0.0, 2.0, np.inf]]), np.array([[0, 3, 3]]), np.array([[0, 0, 99]]),
                        np.array([[100.0, 2.0, 0.0]]), np.array([2]))
    t = np.array([[0.0, 1.0, 12.0, 24.0]])
    x = np.where(t[0] <= 2.0, 100.0 * np.exp(-0.05 * t[0]), 100.0 * np.exp(-0.1 - 0.1 * (t[0] - 2.0)))
    _assert_exact_and_ode_give(cm, q, cm.initial_state(q), events, t, x)


# ------------------------------------------------------------------------------- mutation sample (seed 38)
@pytest.mark.parametrize("engine", _cpu_engines())
def test_run_batch_with_integer_event_values_gives_the_exact_doses_and_changes_on_either_engine(engine):
    # run_batch (private API) converts what it is given: event values given as integers (a 100 mg bolus at 0 h, CL
    # set from 1 to 2 L/h at 2 h; pk_1cmt_iv, V 20 L) are read as 100.0 and 2.0 by the closed form of either CPU
    # engine, as by the ODE path: x = 100 e^(-0.05 t) until 2 h, then 100 e^(-0.1) e^(-0.1 (t - 2)), conc = x / 20
    # (run_closed_form__mutmut_153: the event values converted without dtype=float, refused by the C kernel as int64)
    from pkpd.simulation import EventTable

    cm, q = _pk_1cmt_on(engine)
    assert cm.q_names[0] == "CL"
    values = np.array([[100, 2]])
    assert values.dtype == np.int64
    events = EventTable(np.array([[0.0, 2.0]]), np.array([[0, 3]]), np.array([[0, 0]]), values, np.array([2]))
    t = np.array([[0.0, 1.0, 12.0, 24.0]])
    x = np.where(t[0] <= 2.0, 100.0 * np.exp(-0.05 * t[0]), 100.0 * np.exp(-0.1 - 0.1 * (t[0] - 2.0)))
    _assert_exact_and_ode_give(cm, q, cm.initial_state(q), events, t, x)


def test_the_native_closed_form_needs_no_numba(monkeypatch):
    # the native engine's closed form runs its C kernel, never numba's (sparing numba's import and first compile):
    # with numba not importable (as where numba does not yet support the Python or numpy installed), a 100 mg bolus
    # of pk_1cmt_iv (CL 1 L/h, V 20 L, k = 0.05 /h) still gives conc = 100 e^(-kt) / 20 at 0, 1, 12 and 24 h
    # (run_closed_form__mutmut_160: kernels(None) for kernels(cm.engine), numba's kernels for every engine: an
    # ImportError)
    import importlib

    from pkpd._native import compiler
    from pkpd.simulation import compiled_for

    if not compiler():
        pytest.skip("no C compiler")
    monkeypatch.setitem(sys.modules, "numba", None)
    monkeypatch.delitem(sys.modules, "pkpd._linear_kernels", raising=False)
    monkeypatch.delattr(pkpd, "_linear_kernels", raising=False)
    with pytest.raises(ImportError):
        importlib.import_module("pkpd._linear_kernels")
    cm = compiled_for(pkpd.load_model("pk_1cmt_iv"), "native")
    assert cm.engine == "native"
    t = np.array([0.0, 1.0, 12.0, 24.0])
    sim = pkpd.simulate(cm, Regimen.single(Dose(100, "mg")), t, params={"CL": 1.0, "V": 20.0}, settings=EXACT)
    assert list(sim.status) == [0]
    np.testing.assert_allclose(sim.outputs["conc"][0], 100.0 * np.exp(-0.05 * t) / 20.0, rtol=1e-12, atol=0.0)


@pytest.mark.parametrize("engine", _cpu_engines())
def test_the_closed_form_sets_every_padding_row_past_a_subjects_last_output_to_zero(engine, monkeypatch):
    # per-subject output times are padded to the longest subject (simulate_nonmem pads with the last time); the
    # closed form sets every row past a subject's n_out to 0, whatever its result memory held before (NaN here):
    # a 100 mg bolus each (pk_1cmt_iv, CL 1 and 2 L/h, V 20 L), subject 1 at 0, 1, 12 and 24 h, subject 2 at 0 and
    # 2 h then two padding rows: x = 100 e^(-CL/V t), conc = x / 20, and exactly 0 in both padding rows
    # (run_closed_form__mutmut_231: `<=` for `<`, the first padding row counted as written and left as it was)
    from pkpd import simulation
    from pkpd.simulation import build_events, run_batch

    monkeypatch.setattr(simulation, "result_array", lambda shape: np.full(shape, np.nan))
    cm, q = _pk_1cmt_on(engine, (1.0, 2.0))
    events = build_events(cm, [Regimen.single(Dose(100, "mg"))] * 2, q, set())
    t = np.array([[0.0, 1.0, 12.0, 24.0], [0.0, 2.0, 2.0, 2.0]])
    sol = run_batch(cm, q, cm.initial_state(q), events, t, np.zeros((2, 4), dtype=np.int64), np.array([4, 2]),
                    np.zeros(2), EXACT)
    assert list(sol["status"]) == [0, 0]
    x = 100.0 * np.exp(-np.array([[0.05], [0.1]]) * t)
    x[1, 2:] = 0.0
    np.testing.assert_allclose(sol["states"][:, :, 0], x, rtol=1e-12, atol=0.0)
    np.testing.assert_allclose(sol["outputs"][:, :, 0], x / 20.0, rtol=1e-12, atol=0.0)
    assert np.all(sol["states"][1, 2:] == 0.0) and np.all(sol["outputs"][1, 2:] == 0.0)


# ------------------------------------------------------------------------------- mutation sample (seed 40)
def test_ctrl_c_after_the_first_chunks_of_a_closed_form_batch_counts_the_subjects_already_solved(monkeypatch):
    # a closed-form batch of 3 subjects in chunks of 1 (pk_1cmt_iv, CL 1..3 L/h), interrupted by Ctrl-C during its
    # third kernel call (a stand-in kernel that solves the first two chunks with the real one, then raises
    # KeyboardInterrupt): 2 chunks of 1 subject were solved, so "2 of 3 subjects", message whole (simulate prefixes
    # the model's name) (run_closed_form__mutmut_226: `done = None` for `done = b`, "None of 3 subjects")
    import types

    import pkpd._native_linear as native_linear
    import pkpd.simulation as simulation

    real = native_linear.kernels
    calls = []

    def stand_in(engine):
        def solve_batch(*args):
            calls.append(args[0].shape[0])
            if len(calls) == 3:
                raise KeyboardInterrupt
            return real(engine).solve_batch(*args)

        return types.SimpleNamespace(solve_batch=solve_batch)

    monkeypatch.setattr(simulation, "_BATCH_CHUNK", 1)
    monkeypatch.setattr(native_linear, "kernels", stand_in)
    with pytest.raises(KeyboardInterrupt) as caught:
        pkpd.simulate(pkpd.load_model("pk_1cmt_iv"), Regimen.single(Dose(100, "mg")), [0.0, 1.0],
                      params={"CL": np.array([1.0, 2.0, 3.0])}, settings=EXACT, progress=False)
    assert calls == [1, 1, 1]
    assert str(caught.value) == ("pk_1cmt_iv: simulate interrupted: 2 of 3 subjects had been solved; no result was "
                                 "returned. Run again (fewer subjects, or simulate_summary for large populations).")


def test_outputs_follow_parameter_changes_where_take_along_axis_has_no_default_axis(numpy_before_2_3):
    # the closed form's outputs read each parameter of the epoch in force at each output time, passing
    # take_along_axis its axis, as numpy before 2.3 requires (emulated here for closed_form's numpy): pk_1cmt_iv
    # (V 20 L), a 100 mg bolus, CL 1 L/h set to 2 L/h at 2 h and V to 10 L at 6 h: x = 100 e^(-0.05 t) until 2 h,
    # then 100 e^(-0.1) e^(-0.1 (t - 2)), then from 6 h 100 e^(-0.5) e^(-0.2 (t - 6)); conc = x / V of the epoch,
    # 20 L until 6 h, 10 L after it, at 0, 1, 2, 4, 7 and 9 h (_outputs__mutmut_33: take_along_axis without axis=1,
    # a TypeError before numpy 2.3)
    from pkpd import closed_form

    numpy_before_2_3(closed_form)
    t = np.array([0.0, 1.0, 2.0, 4.0, 7.0, 9.0])
    sim = pkpd.simulate(pkpd.load_model("pk_1cmt_iv"), Regimen.single(Dose(100, "mg")), t,
                        params={"CL": 1.0, "V": 20.0}, changes={"CL": ([2.0], [2.0]), "V": ([6.0], [10.0])},
                        settings=EXACT)
    assert list(sim.status) == [0]
    x = np.where(t <= 2.0, 100.0 * np.exp(-0.05 * t),
                 np.where(t < 6.0, 100.0 * np.exp(-0.1 - 0.1 * (t - 2.0)), 100.0 * np.exp(-0.5 - 0.2 * (t - 6.0))))
    np.testing.assert_allclose(sim["central"][0], x, rtol=1e-12, atol=0.0)
    np.testing.assert_allclose(sim["conc"][0], x / np.where(t < 6.0, 20.0, 10.0), rtol=1e-12, atol=0.0)


def test_outputs_that_divide_by_zero_are_flagged_by_pkpd_alone_without_a_numpy_warning():
    # an output that divides by zero (o0 = x / V with V = 0 for subject 2; dx/dt = -k x, k 0.3 /h, 100 mg at 0 h) is
    # evaluated quietly and flagged by simulate (status 5) with its one OutputWarning, message whole, as by the ODE
    # path, whose outputs are computed in compiled code: no numpy RuntimeWarning "divide by zero encountered in
    # divide" beside it, and no FloatingPointError where numpy is set to raise; subject 1's o0 is 10 e^(-0.3 t),
    # subject 2's inf (_outputs__mutmut_54: np.errstate(all=None) for all="ignore", the caller's error state in force)
    import warnings

    from pkpd.errors import OutputWarning

    m = nonlinear_variant("-k * x")
    t = np.array([0.0, 1.0, 5.0])
    for ambient in ("warn", "raise"):
        with warnings.catch_warnings(record=True) as caught, np.errstate(all=ambient):
            warnings.simplefilter("always")
            sim = pkpd.simulate(m, Regimen.single(Dose(100, "mg")), t, params={"V": np.array([10.0, 0.0])},
                                settings=EXACT)
        assert [w.category for w in caught] == [OutputWarning]
        assert str(caught[0].message) == (
            "1 subject(s) have NaN or infinite values in output(s) o0 (first: subject 2, o0 at t = 0); their status "
            "is 5. Check the output expressions for this subject's values (e.g. log() of a value <= 0, or x/0).")
        assert list(sim.status) == [0, 5]
        np.testing.assert_allclose(sim["o0"][0], 10.0 * np.exp(-0.3 * t), rtol=1e-12, atol=0.0)
        assert np.all(sim["o0"][1] == np.inf)


# ------------------------------------------------------------------------------- mutation sample (seed 41)
@pytest.mark.parametrize("engine", _cpu_engines())
def test_run_batch_with_integer_parameters_takes_a_fractional_parameter_change_whole_on_either_engine(engine):
    # run_batch (private API) converts what it is given: q given as integers (pk_1cmt_iv, CL 20 L/h, V 20 L, WT 70
    # kg, so ke = 1 /h and its hoisted -ke = -1, all whole), a 100 mg bolus at 0 h and CL set to 5.5 L/h at 1 h
    # (ke 0.275 /h): the closed form of either CPU engine, as the ODE path, keeps the change's 5.5 whole: x = 100 e^-t
    # until 1 h, then 100 e^-1 e^(-0.275 (t - 1)), conc = x / 20 (run_closed_form__mutmut_29: q converted without
    # dtype=float, the change written into an integer copy of q as CL 5, ke 0.25 /h)
    from pkpd.simulation import EventTable

    cm, q = _pk_1cmt_on(engine, (20.0,))
    assert cm.q_names == ("CL", "V", "WT", "ke", "_k0")
    q_int = q.astype(np.int64)
    assert np.array_equal(q_int, q) and q_int.tolist() == [[20, 20, 70, 1, -1]]
    events = EventTable(np.array([[0.0, 1.0]]), np.array([[0, 3]]), np.array([[0, 0]]), np.array([[100.0, 5.5]]),
                        np.array([2]))
    t = np.array([[0.0, 0.5, 1.0, 2.0, 5.0]])
    x = np.where(t[0] <= 1.0, 100.0 * np.exp(-t[0]), 100.0 * np.exp(-1.0 - 0.275 * (t[0] - 1.0)))
    _assert_exact_and_ode_give(cm, q_int, cm.initial_state(q), events, t, x)


# ------------------------------------------------------------------------------- mutation sample (seed 44)
@pytest.mark.parametrize("engine", _cpu_engines())
def test_run_batch_with_32_bit_event_indices_gives_the_exact_doses_and_change_on_either_engine(engine):
    # run_batch (private API) converts what it is given: event indices given as int32 (100 mg boluses into central,
    # state 0, at 0 and 12 h, and CL, q column 0, set from 1 to 2 L/h at 6 h; pk_1cmt_iv, V 20 L) are read as state 0
    # and q column 0 by the closed form of either CPU engine, as by the ODE path: by hand x = 100 e^(-0.05 t) until 6 h,
    # then 100 e^(-0.3) e^(-0.1 (t - 6)), plus 100 e^(-0.1 (t - 12)) from 12 h, and conc = x / 20, at 0, 3, 6, 9, 12 and
    # 24 h (run_closed_form__mutmut_146 and _148: the event indices converted with dtype=None or without a dtype,
    # refused by the C kernel as int32)
    from pkpd.simulation import EventTable

    cm, q = _pk_1cmt_on(engine)
    assert cm.q_names[0] == "CL" and cm.model.state_names[0] == "central"
    index = np.array([[0, 0, 0]], dtype=np.int32)
    events = EventTable(np.array([[0.0, 6.0, 12.0]]), np.array([[0, 3, 0]]), index, np.array([[100.0, 2.0, 100.0]]),
                        np.array([3]))
    t = np.array([[0.0, 3.0, 6.0, 9.0, 12.0, 24.0]])
    s = t[0]
    x = np.where(s <= 6.0, 100.0 * np.exp(-0.05 * s), 100.0 * np.exp(-0.3 - 0.1 * (s - 6.0)))
    x = x + np.where(s >= 12.0, 100.0 * np.exp(-0.1 * (s - 12.0)), 0.0)
    _assert_exact_and_ode_give(cm, q, cm.initial_state(q), events, t, x)


def test_run_batch_reads_a_subjects_own_row_of_a_longer_table_of_one_output_time_for_an_output_of_the_time():
    # run_batch (private API) reads subject i's output times from row i of a per-subject time table, rows past the
    # last subject unread, also with a single output time per row. One subject given a batch's two-row table, 3 h
    # (row 0) and 5 h (row 1): o1 = x/V * t/T1 is, by hand, (D/V) e^(-kt) t/T1 = 10 e^(-0.9) * 3/24 = 0.50821 mg/L
    # at 3 h, and o0 = 10 e^(-0.9), with the closed form as with the ODE solver (_outputs__mutmut_42: t is the whole
    # (2, 1) table when there is one output time, not the subject's row, a ValueError from broadcasting it against
    # one subject's (1, 1) states)
    from pkpd.simulation import build_events, compiled_for, run_batch

    m = nonlinear_variant("-k * x", outputs=("x / V", "x / V * (t / T1)"))
    cm = compiled_for(m)
    q = cm.build_q(np.array([[0.3, 10.0, 5.0, 24.0]]), np.zeros((1, 0)))
    events = build_events(cm, [Regimen.single(Dose(100, "mg"))], q, set())
    tt = np.array([[3.0], [5.0]])
    for settings, rtol in ((EXACT, 1e-12), (ODE, 1e-8)):
        sol = run_batch(cm, q, cm.initial_state(q), events, tt, np.zeros((2, 1), dtype=np.int64), np.array([1, 1]),
                        np.zeros(1), settings)
        assert list(sol["status"]) == [0] and sol["outputs"].shape == (1, 1, 2)
        np.testing.assert_allclose(sol["outputs"][0, 0, 0], 10.0 * np.exp(-0.9), rtol=rtol)
        np.testing.assert_allclose(sol["outputs"][0, 0, 1], 10.0 * np.exp(-0.9) * 3.0 / 24.0, rtol=rtol)
