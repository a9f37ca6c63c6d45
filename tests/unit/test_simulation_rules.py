"""Rules of pkpd.simulate that the mutation audit (issue 20) found unguarded, each against an answer worked out in
the test: the memory needed by a result, a single output time, the wording of a covariate error. The seed-29 tests
check that change values that are not numbers are a DataError, that an unknown parameter's error names its model, and
that subjects whose infusions differ only in what is modelled (the rate or the duration) each get their own. The
seed-30 tests check that the error of a single failed subject gives no count of failures, that subjects whose
infusions differ only in amount and rate are each infused at their own rate, and that the duration error shows the
bad duration. The seed-32 tests check that a small batch shows no progress bar with progress False or None, that an
infusion rate in another unit than its target's is converted, and that run_batch converts integer parameters to
float. The seed-33 tests check that progress=True shows no bar for a batch of one chunk either, and that run_batch
allocates no outputs it does not keep; the seed-34 test, that it allocates no states it does not keep either;
the seed-35 test, that a regimen's dose events at equal times keep the regimen's order; the seed-36 test, that a
result needing exactly the memory limit is not refused; the seed-37 tests, that run_batch converts integer initial
states to float, that set_events stores its indexes as int64, and that subjects whose infusions differ only in their
duration are each infused over their own; the seed-38 tests, that run_batch converts the output times' before-event
flags to int64, and that a modelled duration that divides by zero or overflows is refused as such, not as a
floating-point error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
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


def test_a_compiled_model_is_used_as_is_unless_another_engine_is_named(monkeypatch):
    """compiled_for: a CompiledModel runs as compiled for backend "cpu" or its own engine; naming the other engine
    compiles the model for that one (the compiler is replaced by a recorder: no numba compile in this test)."""
    from pkpd import simulation
    from pkpd.compile import compile_model

    native = compile_model(IV, "native")
    calls = []
    monkeypatch.setattr(simulation, "compile_model", lambda model, engine=None: calls.append((model, engine)) or engine)
    assert simulation.compiled_for(native, "cpu") is native
    assert simulation.compiled_for(native, "native") is native
    assert calls == []
    assert simulation.compiled_for(native, "numba") == "numba"
    assert calls == [(native.declared or native.model, "numba")]


def test_outputs_that_are_not_finite_mark_only_their_subjects_and_name_only_their_outputs():
    """y = log(A/a - c) is NaN for every time of the subject with c = 20 (A/a = 10 exp(-0.1 t) < 20); its status
    becomes 5, the warning names it (subject 2, output y, first at t = 0) and not the finite output, and the other
    subjects keep status 0 and their closed forms."""
    from pkpd.errors import OutputWarning
    from pkpd.model import Model, Output, Parameter, State

    model = Model(
        name="log_output",
        time_unit="h",
        parameters=(
            Parameter("k", 0.1, "1/h", (0.0, 1.0)),
            Parameter("a", 1.0, "mg", (0.1, 10.0)),
            Parameter("c", 0.0, "1", (-100.0, 100.0)),
        ),
        states=(State("A", "mg", initial="10 * a", ddt="-k * A"),),
        outputs=(Output("amount", "A", "mg"), Output("y", "log(A / a - c)", "1")),
    )
    times = np.array([0.0, 1.0, 5.0])
    with pytest.warns(
        OutputWarning,
        match=r"^1 subject\(s\) have NaN or infinite values in output\(s\) y "
        r"\(first: subject 2, y at t = 0\); their status is 5",
    ):
        sim = pkpd.simulate(model, None, times, params={"c": [0.0, 20.0, 0.0]})
    assert sim.status.tolist() == [0, 5, 0]
    assert np.isnan(sim["y"][1]).all()
    np.testing.assert_allclose(sim["y"][[0, 2]], np.log(10 * np.exp(-0.1 * times))[None, :].repeat(2, 0), rtol=1e-6)
    np.testing.assert_allclose(sim["amount"][1], 10 * np.exp(-0.1 * times), rtol=1e-6)


def test_outcomes_drawn_without_a_seed_record_the_seed_that_reproduces_them():
    model = pkpd.load_model(Path(__file__).resolve().parents[1] / "data" / "models" / "endpoints_exposure.toml")
    args = dict(params={"h0": np.full(3, 0.01)}, outcomes=["event"])
    first = pkpd.simulate(model, None, [0.0, 3000.0], **args)
    assert isinstance(first.seed, int) and len(first.outcomes) == 3
    again = pkpd.simulate(model, None, [0.0, 3000.0], seed=first.seed, **args)
    pd.testing.assert_frame_equal(first.outcomes, again.outcomes)


def test_the_repr_gives_the_first_and_last_time():
    sim = pkpd.simulate(IV, Regimen.single(Dose(100, "mg")), [0.5, 1.0, 2.0, 24.0], params={"CL": [1.0, 2.0]})
    assert repr(sim) == "Simulation of 'pk_1cmt_iv': 2 subject(s) x 4 times (0.5-24 h); outputs: conc [mg/L]"


def test_a_change_at_infinity_is_unused_and_one_at_minus_infinity_is_refused():
    """changes={"CL": (times, values)}: inf marks an unused slot (the bolus closed form with the model's CL), -inf
    is no time at all."""
    regimen, times = Regimen.single(Dose(100, "mg")), np.array([1.0, 4.0])
    sim = pkpd.simulate(IV, regimen, times, changes={"CL": ([np.inf], [5.0])})
    cl, v = (p.value for p in IV.parameters)
    np.testing.assert_allclose(sim["conc"][0], 100 / v * np.exp(-cl / v * times), rtol=1e-6)
    with pytest.raises(PkpdError, match=r"changes\['CL'\]: times must be numbers \(inf for unused\)"):
        pkpd.simulate(IV, regimen, times, changes={"CL": ([-np.inf], [5.0])})


def test_a_subject_whose_solve_failed_gets_no_outcomes():
    """V = 0 makes subject 2's dAUC/dt = A/V = 0/0 (status 3, on_failure="mark"): no event is drawn for it, while the
    others get one each (a constant hazard of 0.01/h followed for 3000 h: S = 1e-13)."""
    model = pkpd.load_model(Path(__file__).resolve().parents[1] / "data" / "models" / "endpoints_exposure.toml")
    sim = pkpd.simulate(
        model,
        None,
        [0.0, 3000.0],
        params={"h0": np.full(3, 0.01), "V": [10.0, 0.0, 10.0]},
        outcomes=["event"],
        seed=4,
        settings=pkpd.SolverSettings(on_failure="mark"),
    )
    assert sim.status[1] != 0 and sim.status[[0, 2]].tolist() == [0, 0]
    assert sim.outcomes["ID"].tolist() == [1, 3] and (sim.outcomes["DV"] == 1).all()


def test_changes_of_one_parameter_at_one_time_keep_their_given_order_in_a_long_row():
    """20 changes of CL (more than the 16 entries below which numpy's default sort happens to keep ties in order),
    alternately at 2 h and 1 h with values 1.0, 1.1, ... 2.9: at each time the one given last wins, so CL is the
    model's value before 1 h, 2.9 (entry 19) from 1 h and 2.8 (entry 18) from 2 h. The bolus closed form, piecewise:
    C = dose / V exp(-(CL0 min(t, 1) + 2.9 clip(t - 1, 0, 1) + 2.8 max(t - 2, 0)) / V)."""
    regimen, times = Regimen.single(Dose(100, "mg")), np.array([0.5, 1.5, 3.0])
    change_times = np.array([2.0, 1.0] * 10)
    values = 1.0 + 0.1 * np.arange(20)
    sim = pkpd.simulate(IV, regimen, times, changes={"CL": (change_times, values)})
    cl, v = (p.value for p in IV.parameters)
    exposure = cl * np.minimum(times, 1.0) + 2.9 * np.clip(times - 1.0, 0.0, 1.0) + 2.8 * np.maximum(times - 2.0, 0)
    expected = 100 / v * np.exp(-exposure / v) * pkpd.units.convert("mg/L", sim.units["conc"])
    np.testing.assert_allclose(sim["conc"][0], expected, rtol=1e-6)


def test_the_html_summary_gives_each_outputs_median_at_the_first_time_its_peak_and_at_the_last_time():
    """Three oral subjects (ka 4, 0.5, 1.5 1/h; CL 8, 1, 2.8 L/h; V 32 L; 100 mg): the closed form
    C = D ka / (V (ka - k)) (exp(-k t) - exp(-ka t)), k = CL/V; the table's cells are numpy's median over the
    subjects at the first time, the largest of those medians over the times, and the median at the last time.
    The median of the subjects' own peaks, 2.535 mg/L, is another number: the column says "peak of the median"
    (it said "median peak", which reads as the median of the peaks), and the others give their times."""
    oral = pkpd.load_model("pk_1cmt_oral")
    times = np.array([0.5, 1.0, 2.0, 4.0, 8.0, 24.0])
    ka, cl = np.array([4.0, 0.5, 1.5]), np.array([8.0, 1.0, 2.8])
    sim = pkpd.simulate(oral, Regimen.single(Dose(100, "mg")), times, params={"ka": ka, "CL": cl})
    k = (cl / 32.0)[:, None]
    conc = 100 * ka[:, None] / (32.0 * (ka[:, None] - k)) * (np.exp(-k * times) - np.exp(-ka[:, None] * times))
    np.testing.assert_allclose(sim["conc"], conc, rtol=1e-9)
    median = np.median(conc, axis=0)
    cells = "".join(f"<td>{x:.4g}</td>" for x in (median[0], median.max(), median[-1]))
    row = f"<tr><td>conc</td><td>mg/L</td>{cells}</tr>"
    assert row == "<tr><td>conc</td><td>mg/L</td><td>1.609</td><td>2.33</td><td>0.4064</td></tr>"
    html = sim._repr_html_()
    assert html == (
        "<div><b>Simulation</b> of pk_1cmt_oral v1.0: 3 subject(s), 6 times from 0.5 to 24 h<table><tr><th>output</th>"
        "<th>unit</th><th>median at 0.5 h</th><th>peak of the median</th><th>median at 24 h</th></tr>"
        f"{row}</table></div>"
    )


def test_a_result_over_the_limit_is_refused_before_the_doses_are_laid_out(monkeypatch):
    """simulate refuses a too-large result before building anything per subject and dose (documented: "before
    anything is allocated"), not only when the solver allocates its arrays: with 2 columns (1 state, 1 output) of
    3 x 10 doubles and the 10 times twice, 640 bytes, a limit of 500 bytes stops it before the event table."""
    from pkpd import simulation

    def no_events(*args, **kwargs):
        raise AssertionError("the event table was built for a result that is refused")

    monkeypatch.setattr(simulation, "build_events", no_events)
    with pytest.raises(PkpdError) as err:
        pkpd.simulate(
            IV, Regimen.single(Dose(100, "mg")), np.arange(10.0), params={"CL": [1.0, 2.0, 3.0]}, max_memory_gb=500e-9
        )
    assert str(err.value).startswith(
        "this simulation would need 6.4e-07 GB for its results (3 subject(s) x 10 times "
        "x 2 states/outputs), more than the limit of 5e-07 GB"
    )


def test_the_default_memory_limit_is_consulted_from_256_mib_on(monkeypatch):
    """Without a limit, results under 2**28 bytes (256 MiB) are not checked; from 2**28 on the default limit (half
    the available memory) applies. 6 subjects x 2**22 times x 1 column: 8 * 6 * 2**22 + 16 * 2**22 = 2**28 bytes
    exactly; one time fewer is 64 bytes under. Available memory set to 400 MB: limit 200 MB."""
    from pkpd import simulation

    monkeypatch.delenv("PKPD_MAX_MEMORY_GB", raising=False)
    monkeypatch.setattr(simulation, "_available_bytes", lambda: 4e8)
    simulation.check_result_size(6, 2**22 - 1, 1)
    with pytest.raises(PkpdError, match=r"^this simulation would need 0\.268 GB .* more than the limit of 0\.2 GB"):
        simulation.check_result_size(6, 2**22, 1)


def test_without_proc_meminfo_the_available_memory_is_the_physical_memory(monkeypatch):
    """Where /proc/meminfo cannot be read (not Linux), the memory is page size x number of pages (POSIX sysconf):
    4096 bytes x 1000 pages here."""
    import builtins
    import os

    from pkpd import simulation

    real_open = builtins.open

    def no_meminfo(path, *args, **kwargs):
        if str(path) == "/proc/meminfo":
            raise FileNotFoundError(path)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", no_meminfo)
    monkeypatch.setattr(os, "sysconf", lambda name: {"SC_PAGE_SIZE": 4096, "SC_PHYS_PAGES": 1000}[name])
    assert simulation._available_bytes() == 4096.0 * 1000


def test_a_change_time_that_is_missing_is_refused_with_the_changes_error():
    """None is not a time: the error of changes= (not numpy's TypeError) names the parameter."""
    with pytest.raises(PkpdError) as err:
        pkpd.simulate(IV, Regimen.single(Dose(100, "mg")), [1.0, 4.0], changes={"CL": ([2.0, None], [5.0, 6.0])})
    assert str(err.value) == "changes['CL']: times must be numbers (inf for unused) and values finite"


# ---- from the independent seed-22 sample of the mutation audit (issue 20) ----------------------------------------
def test_a_table_of_exactly_the_large_table_limit_does_not_warn(monkeypatch):
    """to_dataframe warns *above* LARGE_TABLE_ROWS rows: 2 subjects x 3 times x 1 output = 6 rows is quiet at a
    limit of 6 and warns at 5."""
    import warnings

    from pkpd import simulation
    from pkpd.errors import LargeTableWarning

    sim = pkpd.simulate(IV, Regimen.single(Dose(100, "mg")), [1.0, 2.0, 4.0], params={"CL": np.array([1.0, 2.0])})
    monkeypatch.setattr(simulation, "LARGE_TABLE_ROWS", 6)
    with warnings.catch_warnings():
        warnings.simplefilter("error", LargeTableWarning)
        assert len(sim.to_dataframe()) == 6
    monkeypatch.setattr(simulation, "LARGE_TABLE_ROWS", 5)
    with pytest.warns(LargeTableWarning, match=r"^to_dataframe: the table will have 6 rows \(2 subjects x 3 times"):
        sim.to_dataframe()


def _ratio_model():
    """A(0) = B0 / D, decaying at k: D = 0 gives a start that is not finite while every parameter is."""
    from pkpd.model import Model, Output, Parameter, State

    return Model(name="ratio", time_unit="h",
                 parameters=(Parameter("B0", 10.0, "mg", (0.0, 100.0)), Parameter("D", 1.0, "1", (0.0, 10.0)),
                             Parameter("k", 0.1, "1/h", (0.0, 10.0))),
                 states=(State("A", "mg", initial="B0 / D", ddt="-k * A"),), outputs=(Output("amount", "A", "mg"),))


def test_an_initial_state_that_is_not_finite_names_the_subject():
    """initial = B0 / D with D = 0 for the second subject only: a SimulationError naming subject 2 (not numpy's)."""
    from pkpd.errors import SimulationError

    with pytest.raises(SimulationError) as info:
        pkpd.simulate(_ratio_model(), None, [1.0], params={"D": np.array([1.0, 0.0, 2.0])})
    assert str(info.value).startswith("subject 2")
    assert "initial values are not finite; check the parameters of this subject" in str(info.value)


def test_a_simulation_keeps_the_outputs_labels_for_its_plots():
    """Outputs with a label (msc_biodistribution) keep it in Simulation.labels; outputs without one are absent."""
    model = pkpd.load_model("msc_biodistribution")
    sim = pkpd.simulate(model, Regimen.single(Dose(1e6, "cell")), [1.0])
    expected = {o.name: o.label for o in model.outputs if o.label}
    assert expected and sim.labels == expected
    assert sim.labels[next(o.name for o in model.outputs if o.label == "Viable MSCs, lung")] == "Viable MSCs, lung"


def test_inconsistent_numbers_of_subjects_name_each_source():
    with pytest.raises(PkpdError) as info:
        pkpd.simulate(IV, [Regimen.single(Dose(100, "mg"))] * 3, [1.0], params={"CL": np.array([1.0, 2.0])})
    assert str(info.value) == "inconsistent number of subjects: params give 2, regimens give 3"


def test_a_modelled_duration_that_is_not_positive_names_its_value():
    """MODE 2 with DUR2 = 0 for one subject of three: the error gives the bad duration (0), not an IndexError."""
    from pkpd.dosing import Infusion
    from pkpd.errors import DosingError

    regimen = Regimen([Infusion(0, Dose(50, "mg"), modelled="duration", target="central")])
    with pytest.raises(DosingError) as info:
        pkpd.simulate(ORAL, regimen, [1.0], covariates={"MODE": 2.0, "DUR2": np.array([2.0, 0.0, 3.0])})
    assert str(info.value).endswith("duration must be > 0 and finite; got 0")


# ---- from the independent seed-23 sample of the mutation audit (issue 27) ----------------------------------------
ENDPOINTS = Path(__file__).resolve().parents[1] / "data" / "models" / "endpoints_exposure.toml"


def test_the_nonmem_table_keeps_only_the_endpoints_asked_for():
    """layout="nonmem" with outputs="resp": the doses (one bolus per subject) and the binary response only, assessed
    at every output time (the default of observe=): 2 subjects x 3 times = 6 records, DVID "resp", none of the other
    endpoints (event, grade, counts...) that were drawn."""
    model = pkpd.load_model(ENDPOINTS)
    sim = pkpd.simulate(model, Regimen.single(Dose(10, "mg")), [0.0, 10.0, 20.0], params={"h0": np.full(2, 0.01)},
                        seed=3)
    assert set(sim.outcomes["output"]) > {"resp", "event", "grade"}
    table = sim.to_dataframe(layout="nonmem", outputs="resp")
    doses, records = table[table["EVID"] == 1], table[table["EVID"] == 0]
    assert doses["ID"].tolist() == [1, 2] and doses["AMT"].tolist() == [10.0, 10.0]
    assert records["DVID"].tolist() == ["resp"] * 6
    assert records["ID"].tolist() == [1, 1, 1, 2, 2, 2] and records["TIME"].tolist() == [0.0, 10.0, 20.0] * 2
    assert set(records["DV"]) <= {0.0, 1.0}


def test_the_large_table_warning_of_the_wide_layout_counts_subjects_and_times_only(monkeypatch):
    """The wide layout has one row per subject and time (the outputs are columns): 2 subjects x 3 times = 6 rows,
    above a limit of 5; the message gives the two factors, not a number of outputs."""
    from pkpd import simulation
    from pkpd.errors import LargeTableWarning

    sim = pkpd.simulate(IV, Regimen.single(Dose(100, "mg")), [1.0, 2.0, 4.0], params={"CL": np.array([1.0, 2.0])})
    monkeypatch.setattr(simulation, "LARGE_TABLE_ROWS", 5)
    with pytest.warns(LargeTableWarning) as record:
        sim.to_dataframe(layout="wide")
    assert str(record[0].message) == (
        "to_dataframe: the table will have 6 rows (2 subjects x 3 times); select outputs=[...] and/or times=[...], "
        "use layout='wide' (one column per output), or summarise first (Simulation.percentiles, "
        "pkpd.simulate_summary)"
    )


def _not_simulated(want: str, nearest: str) -> str:
    return (f"^to_dataframe: time {want} is not one of the simulated times \\(nearest {nearest}\\); simulate at the "
            "times you want in the table$")


def test_a_table_time_matches_a_simulated_one_to_1e_9_of_the_time_scale():
    """The time scale is the largest |time|, but at least 1: with times up to 1 (scale 1) 0.5 + 0.5e-9 is 0.5 and
    0.5 + 1.5e-9 is not; with times up to 500 (scale 500) 250 + 1e-10 x 500 is 250 and 250 + 1e-8 x 500 is not.
    The row kept is the simulated one: the bolus closed form 100 / V exp(-CL / V t)."""
    cl, v = (p.value for p in IV.parameters)
    small = pkpd.simulate(IV, Regimen.single(Dose(100, "mg")), [0.25, 0.5, 1.0])
    row = small.to_dataframe(times=[0.5 + 0.5e-9])
    assert row["TIME"].tolist() == [0.5]
    np.testing.assert_allclose(row["value"], 100 / v * np.exp(-cl / v * 0.5), rtol=1e-9)
    with pytest.raises(PkpdError, match=_not_simulated("0.5", "0.5")):
        small.to_dataframe(times=[0.5 + 1.5e-9])
    large = pkpd.simulate(IV, Regimen.single(Dose(100, "mg")), [1.0, 250.0, 500.0])
    row = large.to_dataframe(times=[250.0 + 1e-10 * 500])
    assert row["TIME"].tolist() == [250.0]
    np.testing.assert_allclose(row["value"], 100 / v * np.exp(-cl / v * 250.0), rtol=1e-9)
    with pytest.raises(PkpdError, match=_not_simulated("250", "250")):
        large.to_dataframe(times=[250.0 + 1e-8 * 500])


def test_table_times_are_the_numbers_simulate_accepted():
    """simulate takes times as numbers of any kind (here Decimal, as from a database); to_dataframe(times=...) takes
    the same values: the row at 12 h is the bolus closed form 100 / V exp(-CL / V 12)."""
    from decimal import Decimal

    cl, v = (p.value for p in IV.parameters)
    times = [Decimal("0.5"), Decimal("12")]
    sim = pkpd.simulate(IV, Regimen.single(Dose(100, "mg")), times)
    row = sim.to_dataframe(times=[Decimal("12")])
    assert row["TIME"].tolist() == [12.0]
    np.testing.assert_allclose(row["value"], 100 / v * np.exp(-cl / v * 12.0), rtol=1e-9)


def test_backend_numba_compiles_the_model_for_numba(monkeypatch):
    """backend="numba" names that engine (documented): simulate compiles the model for it. The compiler is replaced
    by a recorder that returns the model compiled for the native engine, so no numba compile runs here."""
    from pkpd import simulation
    from pkpd.compile import compile_model

    native = compile_model(IV, "native")
    calls = []
    monkeypatch.setattr(simulation, "compile_model", lambda model, engine=None: calls.append(engine) or native)
    sim = pkpd.simulate(IV, Regimen.single(Dose(100, "mg")), [2.0], backend="numba")
    assert calls == ["numba"]
    cl, v = (p.value for p in IV.parameters)
    np.testing.assert_allclose(sim["conc"], [[100 / v * np.exp(-cl / v * 2.0)]], rtol=1e-6)


def test_a_simulation_records_each_subjects_parameters():
    """Simulation.params: per parameter, one value per subject: CL as given, V the model's value (32 L)."""
    sim = pkpd.simulate(IV, Regimen.single(Dose(100, "mg")), [1.0], params={"CL": [1.0, 2.0, 4.0]})
    assert set(sim.params) == {"CL", "V"}
    np.testing.assert_array_equal(sim.params["CL"], [1.0, 2.0, 4.0])
    np.testing.assert_array_equal(sim.params["V"], [32.0, 32.0, 32.0])


def test_a_simulation_keeps_the_axis_scale_its_outputs_declare():
    """Output.scale "log" is kept in Simulation.scales for the figures; an output without one is absent. (The run
    starts at the first time, 0: A = 10 exp(-0.1 t).)"""
    from pkpd.model import Model, Output, Parameter, State

    model = Model(name="scales", time_unit="h", parameters=(Parameter("k", 0.1, "1/h", (0.0, 1.0)),),
                  states=(State("A", "mg", initial="10", ddt="-k * A"),),
                  outputs=(Output("amount", "A", "mg", scale="log"), Output("half", "A / 2", "mg")))
    sim = pkpd.simulate(model, None, [0.0, 1.0])
    assert sim.scales == {"amount": "log"}
    np.testing.assert_allclose(sim["amount"], [[10.0, 10 * np.exp(-0.1)]], rtol=1e-6)


def test_the_available_memory_is_read_from_proc_meminfo_in_kib(monkeypatch):
    """/proc/meminfo gives MemAvailable in kB (KiB): 1000 kB are 1,024,000 bytes."""
    import builtins
    import io

    from pkpd import simulation

    real_open = builtins.open
    text = "MemTotal:        4000 kB\nMemFree:          500 kB\nMemAvailable:     1000 kB\n"

    def fake_meminfo(path, *args, **kwargs):
        if str(path) == "/proc/meminfo":
            return io.StringIO(text)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", fake_meminfo)
    assert simulation._available_bytes() == 1000.0 * 1024


def test_progress_true_shows_a_bar_for_a_batch_run_in_chunks(monkeypatch, capsys):
    """progress=True always shows the bar of a batch run in chunks (the chunk size is set to 2 here: 5 subjects in 3
    chunks on the ODE solver); it ends at 5/5 subjects and the values are the bolus closed form."""
    from pkpd import simulation

    monkeypatch.setattr(simulation, "_BATCH_CHUNK", 2)
    cl = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    sim = pkpd.simulate(IV, Regimen.single(Dose(100, "mg")), [2.0], params={"CL": cl}, progress=True,
                        settings=pkpd.SolverSettings(method="ode", rtol=1e-10, atol=1e-12))
    err = capsys.readouterr().err
    assert "pk_1cmt_iv: simulate" in err and "5/5" in err
    np.testing.assert_allclose(sim["conc"][:, 0], 100 / 32.0 * np.exp(-cl / 32.0 * 2.0), rtol=1e-6)


def test_backend_jax_runs_the_jax_batch_solver(monkeypatch):
    """backend="jax" is routed to pkpd.jax_backend.run_batch_jax (a stand-in module here, so that neither JAX nor a
    GPU is needed to check the routing)."""
    import sys
    import types

    from pkpd import simulation

    stand_in = types.ModuleType("pkpd.jax_backend")
    stand_in.run_batch_jax = object()
    monkeypatch.setitem(sys.modules, "pkpd.jax_backend", stand_in)
    assert simulation.batch_runner("jax") is stand_in.run_batch_jax


def test_a_single_administration_is_a_regimen_of_one():
    """A Bolus given as the regimen is the regimen of that one dose: the bolus closed form at 1 and 4 h."""
    from pkpd.dosing import Bolus

    times = np.array([1.0, 4.0])
    sim = pkpd.simulate(IV, Bolus(0.0, Dose(100, "mg")), times)
    cl, v = (p.value for p in IV.parameters)
    np.testing.assert_allclose(sim["conc"][0], 100 / v * np.exp(-cl / v * times), rtol=1e-6)


def test_inconsistent_numbers_of_subjects_name_the_covariates():
    with pytest.raises(PkpdError) as info:
        pkpd.simulate(IV, [Regimen.single(Dose(100, "mg"))] * 3, [1.0], covariates={"WT": np.array([60.0, 80.0])})
    assert str(info.value) == "inconsistent number of subjects: covariates give 2, regimens give 3"


# ---- from the independent seed-24 sample of the mutation audit (issue 27) ----------------------------------------
def _two_outputs() -> pkpd.Model:
    """A = 10 exp(-0.1 t) [mg] from t = 0; outputs amount = A and half = A / 2."""
    from pkpd.model import Model, Output, Parameter, State

    return Model(name="two_outputs", time_unit="h", parameters=(Parameter("k", 0.1, "1/h", (0.0, 1.0)),),
                 states=(State("A", "mg", initial="10", ddt="-k * A"),),
                 outputs=(Output("amount", "A", "mg"), Output("half", "A / 2", "mg")))


@pytest.mark.parametrize("kind", [list, tuple])
def test_outputs_named_in_a_list_or_tuple_give_those_outputs_in_that_order(kind):
    """to_dataframe(outputs=[...]) (documented: "sequence of str ... in this order"): half then amount, each the
    closed form (amount 10 exp(-0.1 t), half 5 exp(-0.1 t)); a list of one name is that output alone."""
    times = np.array([0.0, 1.0, 3.0])
    sim = pkpd.simulate(_two_outputs(), None, times)
    table = sim.to_dataframe(outputs=kind(["half", "amount"]))
    assert table["name"].tolist() == ["half"] * 3 + ["amount"] * 3
    assert table["TIME"].tolist() == times.tolist() * 2 and table["unit"].tolist() == ["mg"] * 6
    np.testing.assert_allclose(table["value"], np.concatenate([5 * np.exp(-0.1 * times), 10 * np.exp(-0.1 * times)]),
                               rtol=1e-6)
    assert sim.to_dataframe(outputs=kind(["half"]))["name"].tolist() == ["half"] * 3
    wide = sim.to_dataframe(outputs=kind(["half"]), layout="wide")
    assert list(wide.columns) == ["ID", "TIME", "half [mg]"]


def test_a_seed_drawn_for_the_outcomes_fits_an_int64_and_reproduces_them(monkeypatch):
    """Without a seed one is drawn from fresh entropy (128 bits) and recorded: it must be a non-negative int64
    (0 <= seed < 2**63, as the seed a scenario run draws) and give the same outcomes when passed back. The entropy
    is set to 2**127 - 1 here, the largest numpy draws."""
    from pkpd import simulation

    class Entropy:
        entropy = 2**127 - 1

    model = pkpd.load_model(ENDPOINTS)
    args = dict(params={"h0": np.full(3, 0.01)}, outcomes=["event"])
    monkeypatch.setattr(simulation.np.random, "SeedSequence", lambda *a, **k: Entropy())
    first = pkpd.simulate(model, None, [0.0, 3000.0], **args)
    monkeypatch.undo()
    assert isinstance(first.seed, int) and 0 <= first.seed < 2**63
    assert int(np.int64(first.seed)) == first.seed
    again = pkpd.simulate(model, None, [0.0, 3000.0], seed=first.seed, **args)
    pd.testing.assert_frame_equal(first.outcomes, again.outcomes)


def test_the_memory_limit_is_read_from_pkpd_max_memory_gb(monkeypatch):
    """Documented: without max_memory_gb= the limit is $PKPD_MAX_MEMORY_GB [GB] (spaces ignored): 2.5 GB is
    2.5e9 bytes; 5e-7 GB (500 bytes) refuses the 640 bytes of 3 subjects x 10 times x 2 columns (+ 16 x 10)."""
    from pkpd import simulation

    monkeypatch.setenv("PKPD_MAX_MEMORY_GB", " 2.5 ")
    assert simulation.memory_limit() == 2.5e9
    assert simulation.memory_limit(1.0) == 1e9
    monkeypatch.setenv("PKPD_MAX_MEMORY_GB", "5e-7")
    with pytest.raises(PkpdError) as err:
        pkpd.simulate(IV, Regimen.single(Dose(100, "mg")), np.arange(10.0), params={"CL": [1.0, 2.0, 3.0]})
    assert str(err.value).startswith("this simulation would need 6.4e-07 GB for its results (3 subject(s) x 10 times "
                                     "x 2 states/outputs), more than the limit of 5e-07 GB")


def test_a_batch_run_without_a_description_describes_its_progress_as_simulate(monkeypatch):
    """run_batch, shared with the NONMEM runner and the outcome draws (which give no desc=), describes its progress
    bar as "simulate" by default. simulate is made to call it without desc=; a spy records the bar's description."""
    from pkpd import _progress, simulation

    descriptions = []

    class Spy(_progress.ChunkProgress):
        def __init__(self, total, *, progress, desc, **kwargs):
            descriptions.append(desc)
            super().__init__(total, progress=progress, desc=desc, **kwargs)

    run_batch = simulation.run_batch
    monkeypatch.setattr(_progress, "ChunkProgress", Spy)
    monkeypatch.setattr(simulation, "batch_runner", lambda backend: lambda *a, desc, **k: run_batch(*a, **k))
    sim = pkpd.simulate(IV, Regimen.single(Dose(100, "mg")), [2.0], params={"CL": [1.0, 2.0]},
                        settings=pkpd.SolverSettings(method="ode", rtol=1e-10, atol=1e-12))
    assert descriptions == ["simulate"]
    np.testing.assert_allclose(sim["conc"][:, 0], 100 / 32.0 * np.exp(-np.array([1.0, 2.0]) / 32.0 * 2.0), rtol=1e-6)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_a_change_to_a_value_that_is_not_finite_at_a_finite_time_is_refused(value):
    """Documented rule of changes=: values finite, except at an unused (inf) start, where any value is ignored
    (there the bolus closed form with the model's CL holds)."""
    regimen, times = Regimen.single(Dose(100, "mg")), np.array([1.0, 4.0])
    with pytest.raises(PkpdError) as err:
        pkpd.simulate(IV, regimen, times, changes={"CL": ([2.0], [value])})
    assert str(err.value) == "changes['CL']: times must be numbers (inf for unused) and values finite"
    sim = pkpd.simulate(IV, regimen, times, changes={"CL": ([np.inf], [value])})
    cl, v = (p.value for p in IV.parameters)
    np.testing.assert_allclose(sim["conc"][0], 100 / v * np.exp(-cl / v * times), rtol=1e-6)


def test_an_initial_state_that_is_not_finite_names_the_subject_by_its_given_id():
    """subject_ids=["A1", "A7", "A9"]: the second subject (D = 0, initial B0 / D) is named "A7", not 2."""
    from pkpd.errors import SimulationError

    with pytest.raises(SimulationError) as info:
        pkpd.simulate(_ratio_model(), None, [1.0], params={"D": np.array([1.0, 0.0, 2.0])},
                      subject_ids=["A1", "A7", "A9"])
    assert str(info.value) == "subject A7: initial values are not finite; check the parameters of this subject"
    assert info.value.subject == "A7"


# ---- from the independent seed-25 sample of the mutation audit (issue 20) ----------------------------------------
@pytest.mark.parametrize("method", ["closed form", "ode"])
def test_the_step_counts_of_a_simulation_are_integers(method):
    """Simulation.n_steps counts steps (a work count): integers, whatever the solver keeps them in. The closed form
    takes one exact step per output interval (documented): a bolus at 0 and outputs at 0, 1, ..., 24 h give 24; the
    ODE solver takes more. Integers can index: the count is the last index of an array of its length + 1."""
    settings = pkpd.SolverSettings() if method == "closed form" else pkpd.SolverSettings(method="ode")
    sim = pkpd.simulate(IV, Regimen.single(Dose(100, "mg")), np.linspace(0, 24, 25), settings=settings)
    assert sim.n_steps.dtype == np.int64 and sim.n_steps.shape == (1,)
    steps = int(sim.n_steps[0])
    assert steps == 24 if method == "closed form" else steps > 24
    assert np.arange(steps + 1)[sim.n_steps[0]] == steps


def test_changes_at_a_dose_time_keep_their_given_order_when_merged_with_the_doses():
    """Five doses (100 mg at 0, 1, 2, 3, 4 h) and 16 changes of CL, 8 at 1 h then 8 at 2 h with the values 1.0, 1.1,
    ... 2.5: merged with the doses (21 events in a row, where numpy's default sort does not keep ties in order), the
    one given last at each time still wins: CL is the model's value before 1 h, 1.7 from 1 h, 2.5 from 2 h. The
    bolus closed form, by superposition: C(t) = sum over doses at s <= t of 100 / V exp(-int_s^t CL / V)."""
    from pkpd.dosing import Bolus

    times = np.array([0.5, 1.5, 2.5, 3.5, 5.0])
    regimen = Regimen([Bolus(float(s), Dose(100, "mg")) for s in range(5)])
    change_times = np.array([1.0] * 8 + [2.0] * 8)
    sim = pkpd.simulate(IV, regimen, times, changes={"CL": (change_times, 1.0 + 0.1 * np.arange(16))})
    cl, v = (p.value for p in IV.parameters)

    def exposure(t):  # int_0^t CL(u) du
        return cl * np.minimum(t, 1.0) + 1.7 * np.clip(t - 1.0, 0.0, 1.0) + 2.5 * np.maximum(t - 2.0, 0.0)

    expected = sum(np.where(times >= s, 100 / v * np.exp(-(exposure(times) - exposure(s)) / v), 0.0)
                   for s in range(5))
    np.testing.assert_allclose(sim["conc"][0], expected * pkpd.units.convert("mg/L", sim.units["conc"]), rtol=1e-6)


@pytest.mark.parametrize(("times", "shape"), [(2.0, "()"), ([[[2.0]]], "(1, 1, 1)")])
def test_change_times_that_are_not_a_row_or_a_table_are_refused_with_their_shapes(times, shape):
    """changes= takes times of shape (k,) or (n, k): a single number (0-d) or a 3-d array is refused with the shape
    error of changes=, whole message, also when the values have the right shape (k,) (not an IndexError, nor the
    broadcasting error)."""
    from pkpd.errors import DataError

    with pytest.raises(DataError) as err:
        pkpd.simulate(IV, Regimen.single(Dose(100, "mg")), [1.0, 4.0], changes={"CL": (times, [5.0])})
    assert str(err.value) == (f"changes['CL']: times {shape} and values (1,) must have the same length: one value per "
                              "start time, as shape (k,) or (1, k)")


# ---- from the independent seed-26 sample of the mutation audit (issue 20) ----------------------------------------
def _mapping_of(a: np.ndarray):
    """The mmap a result array is a view of, or None for an array that owns its memory."""
    base = a.base
    while isinstance(base, np.ndarray):
        base = base.base
    return base.obj if isinstance(base, memoryview) else base


@pytest.mark.parametrize(("shape", "mapped"), [((3,), False), ((2**17 - 1,), False), ((0,), False),
                                               ((2**17,), True), ((2, 2**16), True)])
def test_only_result_arrays_of_1_mib_or_more_are_memory_mapped_in_at_once(shape, mapped):
    """Documented (docs/performance.md, "Result memory mapped in at once", and the comment of the threshold): result
    arrays of 1 MiB (2**20 bytes, 2**17 doubles) or more are allocated with MAP_POPULATE, a mapping of their own;
    smaller ones are ordinary numpy arrays, which own their memory (a mapping each would cost a system call and a
    whole page per small batch). 2**17 - 1 doubles are 8 bytes short of the threshold. Where the OS has no
    MAP_POPULATE (not Linux), every result array is an ordinary one."""
    import mmap

    from pkpd.simulation import result_array

    a = result_array(shape)
    assert a.shape == shape and a.dtype == np.float64 and a.flags.writeable
    a[...] = 2.5
    assert np.all(a == 2.5)
    mapped = mapped and hasattr(mmap, "MAP_POPULATE")
    assert a.flags.owndata is not mapped
    assert isinstance(_mapping_of(a), mmap.mmap) is mapped


# ---- dose events of subjects whose regimens differ only in their amounts (evaluated together, issue 15)


def test_regimens_differing_only_in_amounts_give_each_subject_its_own_doses():
    """Three subjects: 10 mg and 20 mg boluses at 0 and 12 h (one shape, two amounts), and a 30 mg infusion at 2 mg/h
    from 1 h (another shape). Each subject's events carry its own amounts: boluses of 10, 10 / 20, 20 mg, and for
    the infusion a rate of 2 mg/h from 1 h to 1 + 30 / 2 = 16 h; the concentrations are the one-compartment
    solutions of each regimen (CL 2.8 L/h, V 32 L)."""
    from pkpd.compile import compile_model
    from pkpd.dosing import Bolus, Infusion
    from pkpd.simulation import build_events

    regimens = [
        Regimen([Bolus(0.0, Dose(10, "mg")), Bolus(12.0, Dose(10, "mg"))]),
        Regimen([Bolus(0.0, Dose(20, "mg")), Bolus(12.0, Dose(20, "mg"))]),
        Regimen([Infusion(1.0, Dose(30, "mg"), rate=2.0)]),
    ]
    cm = compile_model(IV)
    q = cm.build_q(np.tile([2.8, 32.0], (3, 1)), np.full((3, 1), 70.0))
    ev = build_events(cm, regimens, q)
    np.testing.assert_array_equal(ev.count, [2, 2, 2])
    np.testing.assert_allclose(ev.time, [[0.0, 12.0], [0.0, 12.0], [1.0, 16.0]])
    np.testing.assert_array_equal(ev.kind, [[0, 0], [0, 0], [1, 1]])
    np.testing.assert_allclose(ev.value, [[10.0, 10.0], [20.0, 20.0], [2.0, -2.0]])

    k = 2.8 / 32.0
    t = np.array([6.0, 14.0, 20.0])
    sim = pkpd.simulate(IV, regimens, t, settings=pkpd.SolverSettings(method="ode", rtol=1e-10, atol=1e-12))

    def bolus(amount):
        return amount / 32.0 * (np.exp(-k * t) + np.where(t >= 12.0, np.exp(-k * (t - 12.0)), 0.0))

    s = np.clip(t - 1.0, 0.0, 15.0)                      # infusion time elapsed, at most 15 h
    infusion = 2.0 / 2.8 * (1 - np.exp(-k * s)) * np.exp(-k * np.clip(t - 16.0, 0.0, None))
    np.testing.assert_allclose(sim["conc"], [bolus(10.0), bolus(20.0), infusion], rtol=1e-7)


# ---- from the independent seed-27 sample of the mutation audit (issue 20) ----------------------------------------
def test_failed_subjects_are_marked_in_a_copy_of_read_only_backend_buffers(monkeypatch):
    """The JAX backend hands over its results as read-only host buffers (``jax.device_get``). With
    on_failure="mark", a subject the solver failed is set to NaN in a writable copy of them, never in the backend's
    own buffers, and the other subjects keep their solutions. A stand-in ``pkpd.jax_backend`` runs the CPU ODE solver
    and returns its arrays read-only, so neither JAX nor a GPU is needed. Subject 1 (CL 2.8 L/h, V 32 L) is the bolus
    closed form 100 / V exp(-CL / V t); subject 2 (CL -1000 L/h: exponential growth, exp(1000 / 32 * 24) overflows)
    fails, all NaN."""
    import sys
    import types

    from pkpd import simulation

    handed = []

    def run_batch_jax(*args, **kwargs):
        sol = simulation.run_batch(*args, **kwargs)
        for key in ("states", "outputs"):
            sol[key] = np.array(sol[key])
            sol[key].setflags(write=False)
            handed.append(sol[key])
        return sol

    stand_in = types.ModuleType("pkpd.jax_backend")
    stand_in.run_batch_jax = run_batch_jax
    monkeypatch.setitem(sys.modules, "pkpd.jax_backend", stand_in)
    times = np.array([0.0, 6.0, 24.0])
    settings = pkpd.SolverSettings(method="ode", rtol=1e-10, atol=1e-12, on_failure="mark")
    with pytest.warns(pkpd.BoundsWarning):
        sim = pkpd.simulate(IV, Regimen.single(Dose(100, "mg")), times, params={"CL": [2.8, -1000.0], "V": 32.0},
                            settings=settings, backend="jax")
    assert sim.status[0] == 0 and sim.status[1] != 0
    expected = 100 / 32.0 * np.exp(-2.8 / 32.0 * times) * pkpd.units.convert("mg/L", sim.units["conc"])
    np.testing.assert_allclose(sim["conc"][0], expected, rtol=1e-7)
    np.testing.assert_allclose(sim.states["central"][0], 100 * np.exp(-2.8 / 32.0 * times), rtol=1e-7)
    assert np.all(np.isnan(sim["conc"][1])) and np.all(np.isnan(sim.states["central"][1]))
    assert len(handed) == 2 and not np.shares_memory(sim["conc"], handed[1])
    assert not np.shares_memory(sim.states["central"], handed[0])


# ---- from the independent seed-28 sample of the mutation audit (issue 20) ----------------------------------------
def test_the_html_summary_counts_the_failed_subjects():
    """With on_failure="mark", the notebook summary of a simulation says how many subjects failed, in red, after the
    header. Subjects 1 and 3 (CL -1000 L/h: exponential growth, exp(1000 / 32 * 24) overflows) fail and are NaN;
    subject 2 (CL 2.8 L/h, V 32 L) is the bolus closed form 100 / 32 exp(-2.8 / 32 t) mg/L, so the medians over the
    subjects (NaN ignored) are its values: 3.125 at 0 h, its peak, and 3.125 exp(-2.1) = 0.3827 at 24 h."""
    settings = pkpd.SolverSettings(method="ode", rtol=1e-10, atol=1e-12, on_failure="mark")
    with pytest.warns(pkpd.BoundsWarning):
        sim = pkpd.simulate(IV, Regimen.single(Dose(100, "mg")), [0.0, 6.0, 24.0],
                            params={"CL": [-1000.0, 2.8, -1000.0], "V": 32.0}, settings=settings)
    assert sim.status.tolist()[1] == 0 and sim.status[0] != 0 and sim.status[2] != 0
    last = 100 / 32 * np.exp(-2.8 / 32 * 24)
    assert sim._repr_html_() == (
        "<div><b>Simulation</b> of pk_1cmt_iv v1.0: 3 subject(s), 3 times from 0 to 24 h"
        "<p style='color:#b00'><b>2 subject(s) failed</b> (see .status)</p>"
        "<table><tr><th>output</th><th>unit</th><th>median at 0 h</th><th>peak of the median</th>"
        "<th>median at 24 h</th></tr>"
        f"<tr><td>conc</td><td>mg/L</td><td>3.125</td><td>3.125</td><td>{last:.4g}</td></tr></table></div>")
    assert f"{last:.4g}" == "0.3827"


@pytest.mark.parametrize(("backend", "default"), [("native", "numba"), ("numba", "native")],
                         ids=["C-engine-named-over-a-JIT-default", "JIT-engine-named-over-a-C-default"])
def test_a_named_cpu_engine_is_compiled_for_even_where_another_is_the_default(monkeypatch, backend, default):
    """backend="native" or "numba" names that engine (documented), whatever ``$PKPD_ENGINE`` makes the default:
    simulate compiles the model for the engine named. The compiler is replaced by a recorder that returns the model
    compiled for the C engine, so no JIT compile runs; the result is the bolus closed form 100 / V exp(-CL / V t).
    (The test's name avoids the word the mutation tool deselects JIT-engine tests by.)"""
    from pkpd import simulation
    from pkpd.compile import compile_model

    c_engine = compile_model(IV, "native")
    calls = []
    monkeypatch.setenv("PKPD_ENGINE", default)
    monkeypatch.setattr(simulation, "compile_model", lambda model, engine=None: calls.append(engine) or c_engine)
    sim = pkpd.simulate(IV, Regimen.single(Dose(100, "mg")), [2.0], backend=backend)
    assert calls == [backend]
    cl, v = (p.value for p in IV.parameters)
    np.testing.assert_allclose(sim["conc"], [[100 / v * np.exp(-cl / v * 2.0)]], rtol=1e-6)


# ---- from the independent seed-29 sample of the mutation audit (issue 20) ----------------------------------------
def test_a_change_to_values_that_are_not_numbers_is_refused_as_a_data_error():
    """changes={"CL": (times, values)} with values that are not numbers ("fast", "slow") is refused as a DataError
    naming the change and what it got, as times that are not numbers are: not a TypeError from numpy."""
    from pkpd.errors import DataError

    spec = ([0.0, 12.0], ["fast", "slow"])
    with pytest.raises(DataError) as info:
        pkpd.simulate(IV, Regimen.single(Dose(100, "mg")), [1.0, 24.0], changes={"CL": spec})
    assert str(info.value) == "changes['CL']: expected (times, values) arrays; got ([0.0, 12.0], ['fast', 'slow'])"


def test_an_unknown_parameter_is_named_with_its_model():
    """params={"Cl": ...} (a misspelt CL) is refused naming the parameter, the model and the close match, as an unknown
    covariate is."""
    with pytest.raises(PkpdError) as info:
        pkpd.simulate(IV, Regimen.single(Dose(100, "mg")), [1.0], params={"Cl": 2.0})
    assert str(info.value) == "unknown parameter 'Cl' for model 'pk_1cmt_iv'. Did you mean 'CL'?"


@pytest.mark.parametrize("rate_first", [True, False], ids=["modelled-rate-first", "modelled-duration-first"])
def test_subjects_whose_infusions_differ_only_in_what_is_modelled_get_each_their_own(rate_first):
    """Two subjects, each 50 mg into central at 0 h (nmtest_1cmt_oral: CL 1.1 L/h, V 20 L, F = BIOAV = 1): one an
    Infusion(modelled="rate") with MODE 1, RAT2 10 mg/h (NONMEM RATE=-1: 50 mg over 5 h), the other an
    Infusion(modelled="duration") with MODE 2, DUR2 2.5 h (RATE=-2: 20 mg/h over 2.5 h). Their regimens differ in
    nothing but ``modelled``, and each subject follows its own: the closed form of a one-compartment infusion,
    R / k (1 - exp(-k min(t, T))) exp(-k max(t - T, 0)) / V, in ng/mL."""
    from pkpd.dosing import Infusion

    by_rate = (Regimen([Infusion(0, Dose(50, "mg"), modelled="rate", target="central")]), 1.0, 10.0, 1.0, 10.0, 5.0)
    by_duration = (Regimen([Infusion(0, Dose(50, "mg"), modelled="duration", target="central")]), 2.0, 0.0, 2.5,
                   20.0, 2.5)
    subjects = [by_rate, by_duration] if rate_first else [by_duration, by_rate]
    times = np.array([1.0, 2.5, 5.0, 12.0])
    covariates = {name: np.array([s[j] for s in subjects]) for j, name in ((1, "MODE"), (2, "RAT2"), (3, "DUR2"))}
    sim = pkpd.simulate(ORAL, [s[0] for s in subjects], times, covariates={**covariates, "BIOAV": 1.0})
    k = 1.1 / 20
    for i, (_, _, _, _, rate, duration) in enumerate(subjects):
        amount = rate / k * (1 - np.exp(-k * np.minimum(times, duration)))
        amount = amount * np.exp(-k * np.maximum(times - duration, 0))
        np.testing.assert_allclose(sim["CP"][i], amount / 20 * 1000, rtol=1e-6)  # mg/L -> ng/mL


# ---- from the independent seed-30 sample of the mutation audit (issue 20) ----------------------------------------
# (simulate__mutmut_189: `if (bad.size > 1) or True`, the count of failed subjects given for one failure too)
def test_a_single_failed_subject_is_named_without_a_count_of_failures():
    """With on_failure="raise", a run where only subject 2 fails (CL -1000 L/h: exponential growth, exp(1000 / 32 t)
    overflows before 24 h) names that subject and the solver's reason, without "(1 subjects failed in all)"; where
    subjects 1 and 3 fail, the first is named and the count of failed subjects is given."""
    from pkpd.errors import SimulationError

    settings = pkpd.SolverSettings(method="ode", rtol=1e-10, atol=1e-12)
    reason = "non-finite values (NaN or inf) in the states or their derivatives"  # exp overflows
    remedy = ("Check the parameters (negative or huge rates make the solution overflow), the initial values, and "
              "expressions that give NaN or inf: log(0), x/0, or sqrt, log or a non-integer power of a state that "
              "turned negative.")
    for cl, subject, more in (([2.8, -1000.0], 2, ""), ([-1000.0, 2.8, -1000.0], 1, " (2 subjects failed in all)")):
        with pytest.warns(pkpd.BoundsWarning), pytest.raises(SimulationError) as info:
            pkpd.simulate(IV, Regimen.single(Dose(100, "mg")), [0.0, 6.0, 24.0], params={"CL": cl, "V": 32.0},
                          settings=settings)
        err = info.value
        assert err.subject == subject and 0 < err.time < 24
        assert str(err) == f"subject {subject}, t = {err.time:g}: the solver failed: {reason}{more}. {remedy}"


# (_administration_shape__mutmut_14: `getattr(adm, "XXrateXX", None)`, the infusion rate left out of the shape)
@pytest.mark.parametrize("slow_first", [True, False], ids=["50-mg/h-first", "100-mg/h-first"])
def test_subjects_whose_infusions_differ_only_in_amount_and_rate_get_each_their_own_rate(slow_first):
    """Two subjects, each an infusion at 0 h lasting 2 h: 100 mg at 50 mg/h and 200 mg at 100 mg/h. Their
    administrations have the same time, target, unit and duration and differ in the amount and the rate; each
    subject is infused at its own rate for 2 h (not 200 mg at 50 mg/h over 4 h): the closed form of a
    one-compartment infusion, R / k (1 - exp(-k min(t, 2))) exp(-k max(t - 2, 0)) / V (CL 2.8 L/h, V 32 L)."""
    from pkpd.dosing import Infusion

    subjects = [(100.0, 50.0), (200.0, 100.0)]
    if not slow_first:
        subjects.reverse()
    regimens = [Regimen([Infusion(0.0, Dose(amount, "mg"), rate=rate)]) for amount, rate in subjects]
    assert [r.administrations[0].duration for r in regimens] == [2.0, 2.0]
    t = np.array([1.0, 2.0, 3.0, 6.0])
    sim = pkpd.simulate(IV, regimens, t, params={"CL": 2.8, "V": 32.0},
                        settings=pkpd.SolverSettings(method="ode", rtol=1e-10, atol=1e-12))
    k = 2.8 / 32.0
    expected = [rate / k * (1 - np.exp(-k * np.minimum(t, 2.0))) * np.exp(-k * np.maximum(t - 2.0, 0.0)) / 32.0
                for _, rate in subjects]
    np.testing.assert_allclose(sim["conc"], np.array(expected) * pkpd.units.convert("mg/L", sim.units["conc"]),
                               rtol=1e-7)


# (_administration_events__mutmut_154: `duration > 1` for `duration > 0` in picking the duration the error shows)
def test_the_duration_error_shows_the_bad_duration_not_an_earlier_short_valid_one():
    """Two subjects with a modelled infusion duration (nmtest_1cmt_oral, MODE 2: the duration is DUR2): 0.5 h, valid,
    and -1 h. The error shows the bad one, -1, not the first duration under 1 h."""
    from pkpd.dosing import Infusion
    from pkpd.errors import DosingError

    regimen = Regimen([Infusion(0, Dose(50, "mg"), modelled="duration", target="central")])
    with pytest.raises(DosingError) as info:
        pkpd.simulate(ORAL, regimen, [1.0], covariates={"MODE": 2.0, "DUR2": [0.5, -1.0], "BIOAV": 1.0})
    assert str(info.value) == "infusion at t=0 into 'central': duration must be > 0 and finite; got -1"


# ---- from the independent seed-31 sample of the mutation audit (issue 20) ----------------------------------------
# (xǁSimulationǁto_dataframe__mutmut_112: the empty long table's last column named "XXunitXX" for "unit")
def test_an_empty_long_table_has_the_documented_columns():
    """to_dataframe(outputs=[]) selects nothing: no rows, and the columns of the long layout as documented (and as a
    non-empty long table has them): ID, TIME, name, value, unit."""
    sim = pkpd.simulate(IV, Regimen.single(Dose(100, "mg")), [0.0, 12.0])
    empty = sim.to_dataframe(outputs=[])
    assert len(empty) == 0
    assert list(empty.columns) == ["ID", "TIME", "name", "value", "unit"]
    assert list(empty.columns) == list(sim.to_dataframe().columns)


# (_time_columns__mutmut_12: the index of a time after the last simulated one not clipped to the last one)
def test_a_table_time_after_the_last_simulated_time_is_refused_or_matched_to_the_last():
    """Simulated at 0..24 h: times=[25] is not one of them, a PkpdError naming the nearest, 24 (not an IndexError);
    24 + 1e-12 h is the last time within the relative tolerance 1e-9: its row is the bolus closed form at 24 h,
    100 / 32 exp(-2.8 / 32 x 24) mg/L."""
    sim = pkpd.simulate(IV, Regimen.single(Dose(100, "mg")), np.arange(0, 25.0))
    with pytest.raises(PkpdError) as info:
        sim.to_dataframe(times=[25.0])
    assert str(info.value) == ("to_dataframe: time 25 is not one of the simulated times (nearest 24); simulate at the "
                               "times you want in the table")
    table = sim.to_dataframe(times=[24.0 + 1e-12])
    assert table["TIME"].tolist() == [24.0]
    expected = 100 / 32 * np.exp(-2.8 / 32 * 24) * pkpd.units.convert("mg/L", sim.units["conc"])
    np.testing.assert_allclose(table["value"].to_numpy(), [expected], rtol=1e-6)


# (_administration_events__mutmut_121: `rate > 1` for `rate > 0`, a modelled rate of 1 mg/h or less refused)
def test_a_modelled_rate_of_one_or_less_is_valid():
    """Two subjects, 2 mg into central at 0 h with a modelled rate (nmtest_1cmt_oral, MODE 1: the rate is RAT2) of
    0.5 and 1 mg/h (NONMEM RATE=-1, F = BIOAV = 1): infusions of 4 h and 2 h, the closed form of a one-compartment
    infusion R / k (1 - exp(-k min(t, T))) exp(-k max(t - T, 0)) / V (CL 1.1 L/h, V 20 L), in ng/mL."""
    from pkpd.dosing import Infusion

    regimen = Regimen([Infusion(0, Dose(2, "mg"), modelled="rate", target="central")])
    times = np.array([1.0, 2.0, 4.0, 8.0])
    sim = pkpd.simulate(ORAL, regimen, times, covariates={"MODE": 1.0, "RAT2": [0.5, 1.0], "BIOAV": 1.0})
    k = 1.1 / 20
    for i, (rate, duration) in enumerate(((0.5, 4.0), (1.0, 2.0))):
        amount = rate / k * (1 - np.exp(-k * np.minimum(times, duration)))
        amount = amount * np.exp(-k * np.maximum(times - duration, 0))
        np.testing.assert_allclose(sim["CP"][i], amount / 20 * 1000, rtol=1e-6)  # mg/L -> ng/mL


# ---- a bioavailability or lag time that overflows or is NaN is refused naming it (found beside fitting seed 46) ------
def test_a_dose_factor_or_lag_that_is_not_finite_is_refused_naming_it_and_the_subject_without_a_warning(tmp_path):
    # exp(G) overflows to inf at G = 800 and TL log(G) is NaN at G = -1: refused as a DosingError naming the dose
    # target, what is not finite, its value and the subject's number, quietly (numpy's overflow and invalid-value
    # warnings, errors under this suite's settings, were raised before the check); a finite G is simulated as the
    # closed form F D / V exp(-CL t / V) after the lag TL log(G)
    import math

    from pkpd.errors import DosingError

    model = _factor_lag_iv(tmp_path)
    regimen = Regimen.single(Dose(100, "mg"))
    times = [0.0, 2.0, 6.0]
    for g, message in (([1.0, 800.0], "the bioavailability (factor) is not finite (inf) for subject number 2 of 2"),
                       ([2.0, -1.0], "the lag time is not finite (nan) for subject number 2 of 2")):
        with pytest.raises(DosingError) as exc:
            pkpd.simulate(model, regimen, times, covariates={"G": g})
        assert str(exc.value) == (f"dose target 'iv': {message}; check the parameter values and covariates it uses")
    sim = pkpd.simulate(model, regimen, times, covariates={"G": [2.0]})
    lag = math.log(2.0)
    expected = [0.0] + [math.exp(2.0) * 100 / 32 * math.exp(-2.8 / 32 * (t - lag)) for t in times[1:]]
    np.testing.assert_allclose(sim.outputs["conc"][0], expected, rtol=1e-6)


# ---- from the independent seed-32 sample of the mutation audit (issue 20) ----------------------------------------
# (run_batch__mutmut_135: `else True` for `else False`, a bar for every batch of one chunk whatever `progress` says)
def test_progress_false_or_none_shows_no_bar_for_a_batch_of_one_chunk(capsys):
    """Three subjects on the ODE solver are one chunk (20,000 or fewer): progress=False never shows a bar, and None
    (the default) shows none for such a short run, so nothing is written to stderr; the values are the bolus closed
    form 100 / 32 exp(-CL / 32 x 2) mg/L."""
    cl = np.array([1.0, 2.0, 3.0])
    settings = pkpd.SolverSettings(method="ode", rtol=1e-10, atol=1e-12)
    pkpd.simulate(IV, Regimen.single(Dose(100, "mg")), [2.0], settings=settings)  # compiled before capturing
    capsys.readouterr()
    for progress in (False, None):
        sim = pkpd.simulate(IV, Regimen.single(Dose(100, "mg")), [2.0], params={"CL": cl}, progress=progress,
                            settings=settings)
        assert capsys.readouterr().err == ""
        expected = 100 / 32.0 * np.exp(-cl / 32.0 * 2.0) * pkpd.units.convert("mg/L", sim.units["conc"])
        np.testing.assert_allclose(sim["conc"][:, 0], expected, rtol=1e-6)


# (_administration_events__mutmut_143: the infusion rate divided by the dose-to-target factor instead of multiplied)
def test_an_infusion_rate_in_another_unit_than_the_target_is_converted_to_it():
    """0.1 g infused at 0.05 g/h into central (which takes mg) is 100 mg at 50 mg/h for 2 h: the one-compartment
    infusion closed form R / CL (1 - exp(-k min(t, T))) exp(-k max(t - T, 0)) with R 50 mg/h, T 2 h, CL 2.8 L/h,
    V 32 L, k = CL / V, in mg/L; the same as the dose given in mg at 50 mg/h."""
    from pkpd.dosing import Infusion

    times = np.array([1.0, 2.0, 4.0, 8.0])
    k, rate, duration = 2.8 / 32, 50.0, 2.0
    expected = rate / 2.8 * (1 - np.exp(-k * np.minimum(times, duration)))
    expected = expected * np.exp(-k * np.maximum(times - duration, 0))
    for dose, rate_given in ((Dose(0.1, "g"), 0.05), (Dose(100_000, "ug"), 50_000.0), (Dose(100, "mg"), 50.0)):
        sim = pkpd.simulate(IV, Regimen([Infusion(0, dose, rate=rate_given)]), times)
        np.testing.assert_allclose(sim["conc"][0], expected * pkpd.units.convert("mg/L", sim.units["conc"]),
                                   rtol=1e-6)


def _cpu_engines():
    from pkpd._native import compiler

    return [e if e == "numba" or compiler() else pytest.param(e, marks=pytest.mark.skip("no C compiler"))
            for e in ("native", "numba")]


# (run_batch__mutmut_90: q converted without `dtype=float`, so integer parameters reached the engines as int64)
@pytest.mark.parametrize("engine", _cpu_engines())
def test_run_batch_on_the_ode_solver_converts_integer_parameters_to_float(engine):
    """run_batch (private API, every batch solve) converts what it is given: q of pk_1cmt_iv given as integers
    (CL 20 L/h, V 20 L, WT 70 kg and the derived ke = 1/h), 100 mg in central at 0 h, and a change of CL to 10.5 L/h at
    1 h (a kind-3 event writing into q) is solved by the ODE solver as 100 exp(-t) up to 1 h, then
    100 exp(-1) exp(-10.5 / 20 (t - 1)), conc = amount / 20 (not refused by the C engine, nor the change truncated
    to 10 L/h by the other one)."""
    from pkpd.simulation import EventTable, compiled_for, run_batch

    cm = compiled_for(IV, engine)
    assert cm.engine == engine
    q = cm.build_q(np.array([[20.0, 20.0]]), np.full((1, 1), 70.0)).astype(np.int64)
    change = EventTable(np.array([[1.0]]), np.array([[3]]), np.array([[cm.q_names.index("CL")]]), np.array([[10.5]]),
                        np.ones(1, dtype=np.int64))
    t = np.array([[0.0, 1.0, 3.0]])
    sol = run_batch(cm, q, np.array([[100.0]]), change, t, np.zeros((1, 3), dtype=np.int64), np.array([3]),
                    np.zeros(1), pkpd.SolverSettings(method="ode", rtol=1e-12, atol=1e-16))
    assert list(sol["status"]) == [0]
    amount = np.where(t[0] <= 1.0, 100 * np.exp(-t[0]), 100 * np.exp(-1.0) * np.exp(-10.5 / 20 * (t[0] - 1.0)))
    np.testing.assert_allclose(sol["states"][0, :, 0], amount, rtol=1e-8)
    np.testing.assert_allclose(sol["outputs"][0, :, 0], amount / 20, rtol=1e-8)


# ---- from the independent seed-33 sample of the mutation audit (issue 20) ----------------------------------------
# (run_batch__mutmut_133: `(n > _BATCH_CHUNK) or True`, so `progress=True` showed a bar for a batch of one chunk)
def test_progress_true_shows_no_bar_for_a_batch_of_one_chunk(capsys):
    """simulate's progress bar is for batches of more than 20,000 subjects, run in chunks; three subjects on the ODE
    solver are one chunk, so even progress=True writes nothing to stderr (nor stdout); the values are the bolus closed
    form 100 / 32 exp(-CL / 32 x 2) mg/L."""
    cl = np.array([1.0, 2.0, 3.0])
    settings = pkpd.SolverSettings(method="ode", rtol=1e-10, atol=1e-12)
    pkpd.simulate(IV, Regimen.single(Dose(100, "mg")), [2.0], settings=settings)  # compiled before capturing
    capsys.readouterr()
    sim = pkpd.simulate(IV, Regimen.single(Dose(100, "mg")), [2.0], params={"CL": cl}, progress=True,
                        settings=settings)
    captured = capsys.readouterr()
    assert captured.err == ""
    assert captured.out == ""
    expected = 100 / 32.0 * np.exp(-cl / 32.0 * 2.0) * pkpd.units.convert("mg/L", sim.units["conc"])
    np.testing.assert_allclose(sim["conc"][:, 0], expected, rtol=1e-6)


def _traced_peaks(keyword: str) -> tuple[dict, int, np.ndarray, dict]:
    """run_batch of 2 subjects x 40,000 times of pk_1cmt_iv on the ODE solver (one state, one output: 640,000 bytes
    each), with ``keyword`` (keep_states or keep_outputs) True then False: the peaks traced by tracemalloc, the bytes
    of one array, the times and the results. (numpy's allocations are traced below 1 MiB, where no memory map is
    used.)"""
    import tracemalloc

    from pkpd.simulation import EventTable, compiled_for, run_batch

    cm = compiled_for(IV)
    n, n_times = 2, 40_000
    q = cm.build_q(np.array([[2.0, 32.0], [4.0, 32.0]]), np.full((n, 1), 70.0))
    t = np.linspace(0.0, 48.0, n_times)[None, :]
    none = EventTable(np.full((n, 1), np.inf), np.zeros((n, 1), dtype=np.int64), np.zeros((n, 1), dtype=np.int64),
                      np.zeros((n, 1)), np.zeros(n, dtype=np.int64))
    args = (cm, q, np.full((n, 1), 100.0), none, t, np.zeros((1, n_times), dtype=np.int64),
            np.array([n_times]), np.zeros(n), pkpd.SolverSettings(method="ode", rtol=1e-10, atol=1e-12))
    run_batch(*args, **{keyword: False})  # compiled before measuring
    peaks, results = {}, {}
    tracing = tracemalloc.is_tracing()  # (PYTHONTRACEMALLOC may have started it: then it is left running)
    for keep in (True, False):
        if not tracing:
            tracemalloc.start()
        try:
            tracemalloc.reset_peak()
            base = tracemalloc.get_traced_memory()[0]
            results[keep] = run_batch(*args, **{keyword: keep})
            peaks[keep] = tracemalloc.get_traced_memory()[1] - base
        finally:
            if not tracing:
                tracemalloc.stop()
    return peaks, 8 * n * n_times, t, results


# (run_batch__mutmut_63: `keep_outputs or True`, so the outputs array was allocated also when they are not kept)
def test_run_batch_allocates_no_outputs_it_does_not_keep():
    """The size check counts only the columns kept (``max_memory_gb``: the largest result a call may allocate), so
    run_batch on the ODE solver must allocate only those: 2 subjects x 40,000 times of pk_1cmt_iv's one state are
    8 x 2 x 40,000 = 640,000 bytes. Keeping the output too takes at least twice that (measured, so the measurement
    is seen to work); without it the peak stays below 1.5 times the states (an unused output array would add
    another 640,000 bytes). The states are the bolus closed form 100 exp(-CL / V t), and the outputs are None."""
    peaks, states_bytes, t, results = _traced_peaks("keep_outputs")
    expected = 100 * np.exp(-np.array([[2.0], [4.0]]) / 32.0 * t)
    for keep_outputs, sol in results.items():
        assert list(sol["status"]) == [0, 0]
        np.testing.assert_allclose(sol["states"][:, :, 0], expected, rtol=1e-6, atol=1e-9)
        if keep_outputs:
            np.testing.assert_allclose(sol["outputs"][:, :, 0], expected / 32.0, rtol=1e-6, atol=1e-9)
        else:
            assert sol["outputs"] is None
    assert peaks[True] >= 2 * states_bytes
    assert states_bytes <= peaks[False] < 1.5 * states_bytes


# ---- from the independent seed-34 sample of the mutation audit (issue 20) ----------------------------------------
# (run_batch__mutmut_56: `keep_states or True`, so the states array was allocated also when they are not kept)
def test_run_batch_allocates_no_states_it_does_not_keep():
    """The states' twin of the seed-33 test: the size check counts only the columns kept (``simulate(states=False)``
    is the remedy its message offers), so run_batch on the ODE solver must allocate only those: 2 subjects x 40,000
    times of pk_1cmt_iv's one output are 8 x 2 x 40,000 = 640,000 bytes. Keeping the state too takes at least twice
    that (measured, so the measurement is seen to work); without it the peak stays below 1.5 times the outputs (an
    unused states array would add another 640,000 bytes). The outputs are the bolus closed form 100 / V
    exp(-CL / V t), and the states are None."""
    peaks, outputs_bytes, t, results = _traced_peaks("keep_states")
    amounts = 100 * np.exp(-np.array([[2.0], [4.0]]) / 32.0 * t)
    for keep_states, sol in results.items():
        assert list(sol["status"]) == [0, 0]
        np.testing.assert_allclose(sol["outputs"][:, :, 0], amounts / 32.0, rtol=1e-6, atol=1e-9)
        if keep_states:
            np.testing.assert_allclose(sol["states"][:, :, 0], amounts, rtol=1e-6, atol=1e-9)
        else:
            assert sol["states"] is None
    assert peaks[True] >= 2 * outputs_bytes
    assert outputs_bytes <= peaks[False] < 1.5 * outputs_bytes


# ---- from the independent seed-35 sample of the mutation audit (issue 20) ----------------------------------------
# (build_events__mutmut_91: the events of a regimen sorted by time with numpy's default argsort, not a stable one)
def test_a_regimens_events_at_equal_times_keep_the_regimens_order():
    """Three infusions into central started together each day (0, 24 and 48 h): 20 mg over 2 h, 10 mg over 2 h and
    30 mg over 1 h, in that order. Each day's six rate changes are, in time order and at equal times in the
    regimen's order (build_events' stated rule): +10, +5, +30 mg/h at the start, -30 mg/h one hour later, then -10
    and -5 mg/h at two hours (the first infusion's end before the second's). Eighteen events, so that numpy's
    default (unstable) sort reorders the ties both with its SIMD argsort and with its generic introsort (stable
    below 17 elements only)."""
    from pkpd.compile import compile_model
    from pkpd.dosing import Infusion
    from pkpd.simulation import build_events

    regimen = Regimen([Infusion(24.0 * day, Dose(amount, "mg"), duration=hours)
                       for day in range(3) for amount, hours in ((20, 2.0), (10, 2.0), (30, 1.0))])
    cm = compile_model(IV)
    ev = build_events(cm, [regimen], cm.build_q(np.array([[2.8, 32.0]]), np.array([[70.0]])))
    np.testing.assert_array_equal(ev.count, [18])
    np.testing.assert_array_equal(ev.time[0], np.concatenate([[d, d, d, d + 1, d + 2, d + 2] for d in (0, 24, 48)]))
    np.testing.assert_array_equal(ev.kind[0], np.ones(18, dtype=np.int64))
    np.testing.assert_array_equal(ev.index[0], np.zeros(18, dtype=np.int64))
    np.testing.assert_allclose(ev.value[0], np.tile([10.0, 5.0, 30.0, -30.0, -10.0, -5.0], 3), rtol=1e-15)


# ---- from the independent seed-36 sample of the mutation audit (issue 20) ----------------------------------------
# (check_result_size__mutmut_20: a result needing exactly the limit refused, `>=` for `>`)
def test_a_result_needing_exactly_the_limit_is_not_refused():
    """The limit is the largest result allowed: a result is refused only above it. 3 subjects x 10 times x (1 state
    + 1 output) doubles and the 10 times twice: 8 * 3 * 10 * 2 + 16 * 10 = 640 bytes, and max_memory_gb=6.4e-7 is
    a limit of exactly 640 bytes (6.4e-7 * 1e9 rounds to 640.0). It runs, and its concentrations are the bolus closed
    form 100 / V exp(-CL / V t) with V = 32 L. One byte less is refused, naming both."""
    from pkpd import simulation

    need = 8.0 * 3 * 10 * 2 + 16.0 * 10
    assert simulation.memory_limit(6.4e-7) == need == 640.0
    simulation.check_result_size(3, 10, 2, need)
    message = r"^this simulation would need 6\.4e-07 GB .* more than the limit of 6\.39e-07 GB"
    with pytest.raises(PkpdError, match=message):
        simulation.check_result_size(3, 10, 2, need - 1)
    t = np.arange(10.0)
    sim = pkpd.simulate(IV, Regimen.single(Dose(100, "mg")), t, params={"CL": [1.0, 2.0, 3.0]},
                        settings=pkpd.SolverSettings(method="ode"), max_memory_gb=6.4e-7)
    expected = 100 / 32.0 * np.exp(-np.array([[1.0], [2.0], [3.0]]) / 32.0 * t)
    np.testing.assert_allclose(sim["conc"], expected, rtol=1e-5, atol=1e-9)


# ---- from the independent seed-37 sample of the mutation audit (issue 20) ----------------------------------------
# (run_batch__mutmut_93: y0 converted without `dtype=float`, so integer initial states reached the engines as int64)
@pytest.mark.parametrize("engine", _cpu_engines())
def test_run_batch_on_the_ode_solver_converts_integer_initial_states_to_float(engine):
    """run_batch (private API, every batch solve) converts what it is given: an initial state of 100 mg in
    pk_1cmt_iv's central given as an integer array (CL 20 L/h, V 20 L: k = 1/h), no doses, is solved by the ODE
    solver as 100 exp(-t), conc = amount / 20 (not refused by the C engine, nor integrated in integers by the
    other one)."""
    from pkpd.simulation import EventTable, compiled_for, run_batch

    cm = compiled_for(IV, engine)
    assert cm.engine == engine
    q = cm.build_q(np.array([[20.0, 20.0]]), np.full((1, 1), 70.0))
    no_events = EventTable(np.full((1, 1), np.inf), np.zeros((1, 1), dtype=np.int64),
                           np.zeros((1, 1), dtype=np.int64), np.zeros((1, 1)), np.zeros(1, dtype=np.int64))
    t = np.array([[0.0, 0.5, 1.0, 3.0]])
    y0 = np.array([[100]])
    assert y0.dtype == np.int64
    sol = run_batch(cm, q, y0, no_events, t, np.zeros((1, 4), dtype=np.int64), np.array([4]), np.zeros(1),
                    pkpd.SolverSettings(method="ode", rtol=1e-12, atol=1e-16))
    assert list(sol["status"]) == [0]
    np.testing.assert_allclose(sol["states"][0, :, 0], 100 * np.exp(-t[0]), rtol=1e-8)
    np.testing.assert_allclose(sol["outputs"][0, :, 0], 100 * np.exp(-t[0]) / 20, rtol=1e-8)


# (set_events__mutmut_39: the changed entries' indexes kept in the dtype given instead of `dtype=np.int64`)
@pytest.mark.parametrize("index_dtype", [np.int32, np.float64])
def test_set_events_stores_its_indexes_as_int64_whatever_they_are_given_as(index_dtype):
    """set_events (private API: time-varying covariates, occasions, simulate's changes) builds the EventTable whose
    index is documented int64: given as int32 or as a float table (times, indexes and values read from one float
    array), a change of CL to 10.5 L/h at 1 h in pk_1cmt_iv (CL 20 L/h, V 20 L, 100 mg in central at 0 h) is stored
    with index int64, and solved, by the closed form and the ODE solver, as 100 exp(-t) up to 1 h, then
    100 exp(-1) exp(-10.5 / 20 (t - 1)) (not an IndexError of the closed form, nor a float index to the engine)."""
    from pkpd.simulation import compiled_for, run_batch, set_events

    cm = compiled_for(IV)
    k = cm.q_names.index("CL")
    ev = set_events(np.array([[np.inf, 1.0]]), np.array([[k, k]], dtype=index_dtype), np.array([[99.0, 10.5]]))
    np.testing.assert_array_equal(ev.time, [[1.0, np.inf]])
    np.testing.assert_array_equal(ev.index, [[k, k]])
    np.testing.assert_array_equal(ev.value, [[10.5, 0.0]])
    np.testing.assert_array_equal(ev.count, [1])
    q = cm.build_q(np.array([[20.0, 20.0]]), np.full((1, 1), 70.0))
    t = np.array([[0.0, 1.0, 3.0]])
    amount = np.where(t[0] <= 1.0, 100 * np.exp(-t[0]), 100 * np.exp(-1.0) * np.exp(-10.5 / 20 * (t[0] - 1.0)))
    for method in ("closed-form", "ode"):
        sol = run_batch(cm, q, np.array([[100.0]]), ev, t, np.zeros((1, 3), dtype=np.int64), np.array([3]),
                        np.zeros(1), pkpd.SolverSettings(method=method, rtol=1e-12, atol=1e-16))
        assert list(sol["status"]) == [0]
        np.testing.assert_allclose(sol["states"][0, :, 0], amount, rtol=1e-8)
    assert ev.index.dtype == np.int64 and ev.kind.dtype == np.int64 and ev.count.dtype == np.int64


# (_administration_shape__mutmut_2: `getattr(None, "duration", None)`, the infusion duration left out of the shape)
@pytest.mark.parametrize("short_first", [True, False], ids=["1-h-first", "4-h-first"])
def test_subjects_whose_infusions_differ_only_in_duration_get_each_their_own_duration(short_first):
    """Two subjects, each 100 mg infused into central from 0 h, one over 1 h and one over 4 h (given by duration,
    so with no rate): the administrations have the same time, target, unit and amount, and each subject is infused
    over its own duration (not both over the first one's): the closed form of a one-compartment infusion,
    R / k (1 - exp(-k min(t, T))) exp(-k max(t - T, 0)) / V with R = 100 / T (CL 2.8 L/h, V 32 L)."""
    from pkpd.dosing import Infusion

    durations = [1.0, 4.0] if short_first else [4.0, 1.0]
    regimens = [Regimen([Infusion(0.0, Dose(100, "mg"), duration=d)]) for d in durations]
    assert [r.administrations[0].rate for r in regimens] == [None, None]
    t = np.array([0.5, 1.0, 2.0, 4.0, 6.0])
    k = 2.8 / 32.0
    expected = [100 / d / k * (1 - np.exp(-k * np.minimum(t, d))) * np.exp(-k * np.maximum(t - d, 0.0)) / 32.0
                for d in durations]
    for method in ("closed-form", "ode"):
        sim = pkpd.simulate(IV, regimens, t, params={"CL": 2.8, "V": 32.0},
                            settings=pkpd.SolverSettings(method=method, rtol=1e-10, atol=1e-12))
        np.testing.assert_allclose(sim["conc"], np.array(expected) * pkpd.units.convert("mg/L", sim.units["conc"]),
                                   rtol=1e-7)


# ---- from the independent seed-38 sample of the mutation audit (issue 20) ----------------------------------------
# (run_batch__mutmut_103: the output times' before-event flags `pre` kept in the dtype given, not `dtype=np.int64`)
@pytest.mark.parametrize("engine", _cpu_engines())
@pytest.mark.parametrize("pre_dtype", [np.int32, np.bool_])
def test_run_batch_on_the_ode_solver_converts_the_before_event_flags_to_int64(engine, pre_dtype):
    """run_batch (private API, every batch solve) converts what it is given: pk_1cmt_iv (CL 20 L/h, V 20 L: k = 1/h),
    empty at 0 h, 100 mg into central at 1 h, output times 0.5, 1, 1 and 2 h with the first 1 h flagged "before the
    events at its time" (pre 1) and given as int32 or bool: the amounts are 0, 0 (before the dose), 100 (after it)
    and 100 exp(-1) (not refused by the C engine as a PRE that is not int64)."""
    from pkpd.simulation import EventTable, compiled_for, run_batch

    cm = compiled_for(IV, engine)
    assert cm.engine == engine
    q = cm.build_q(np.array([[20.0, 20.0]]), np.full((1, 1), 70.0))
    bolus = EventTable(np.array([[1.0]]), np.zeros((1, 1), dtype=np.int64), np.zeros((1, 1), dtype=np.int64),
                       np.array([[100.0]]), np.ones(1, dtype=np.int64))
    t = np.array([[0.5, 1.0, 1.0, 2.0]])
    pre = np.array([[0, 1, 0, 0]], dtype=pre_dtype)
    sol = run_batch(cm, q, np.zeros((1, 1)), bolus, t, pre, np.array([4]), np.zeros(1),
                    pkpd.SolverSettings(method="ode", rtol=1e-12, atol=1e-16))
    assert list(sol["status"]) == [0]
    amount = np.array([0.0, 0.0, 100.0, 100 * np.exp(-1.0)])
    np.testing.assert_allclose(sol["states"][0, :, 0], amount, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(sol["outputs"][0, :, 0], amount / 20, rtol=1e-8, atol=1e-12)


# (_administration_events__mutmut_96: a modelled duration evaluated under `np.errstate(all=None)`, not "ignore")
@pytest.mark.parametrize("x", [0.0, 1e-310], ids=["divides-by-zero", "overflows"])
def test_a_modelled_duration_that_divides_by_zero_or_overflows_is_refused_without_a_floating_point_error(x):
    """A dose target whose modelled duration is tinf / X (tinf 2 h; k 0.1/h): with X = 0 (a division by zero) or
    X = 1e-310 (2 / 1e-310 overflows) for the second of two subjects, simulate refuses the infusion naming the
    duration, inf, whole message, even where numpy raises on floating-point errors (not a FloatingPointError from
    the division); with X = 1 for both, 5 mg over 2 h gives A(1 h) = 2.5 / 0.1 (1 - exp(-0.1)) mg."""
    from pkpd.dosing import Infusion
    from pkpd.errors import DosingError
    from pkpd.model import Covariate, DoseTarget, Model, Output, Parameter, State

    model = Model(name="duration_of_x", time_unit="h",
                  parameters=(Parameter("k", 0.1, "1/h", (0.0, 10.0)), Parameter("tinf", 2.0, "h", (0.0, 10.0))),
                  covariates=(Covariate("X", "1", 1.0),), states=(State("A", "mg", initial="0", ddt="-k * A"),),
                  outputs=(Output("a", "A", "mg"),),
                  doses=(DoseTarget("iv", target="A", unit="mg", duration="tinf / X"),))
    regimen = Regimen([Infusion(0, Dose(5, "mg"), modelled="duration", target="iv")])
    with np.errstate(all="raise"):
        sim = pkpd.simulate(model, regimen, [1.0], covariates={"X": np.array([1.0, 1.0])})
        np.testing.assert_allclose(sim["a"], np.full((2, 1), 25 * (1 - np.exp(-0.1))), rtol=1e-6)
        with pytest.raises(DosingError) as info:
            pkpd.simulate(model, regimen, [1.0], covariates={"X": np.array([1.0, x])})
    assert str(info.value) == "infusion at t=0 into 'iv': duration must be > 0 and finite; got inf"


# ---- from the independent seed-39 sample of the mutation audit (issue 20) ----------------------------------------
# (_administration_events__mutmut_76: `if np.any(None):` for `if np.any(lag < 0):`, a negative lag time not refused)
def test_a_negative_lag_time_is_refused_and_a_lag_of_zero_or_more_delays_the_dose():
    """nmtest_1cmt_oral (CL 1.1 L/h, V 20 L; dose target central with the lag ALAG2 = LAGT): 100 mg into central at
    5 h with LAGT 0 h and 2 h for two subjects arrives at 5 h and 7 h, the closed form of a bolus,
    CP = 100 mg / 20 L exp(-CL/V (t - 5 - lag)) after it and 0 before (in ng/mL, x 1000); with LAGT -1 h for the
    second subject, simulate refuses the dose naming the lag, whole message (not the dose given at 4 h)."""
    from pkpd.dosing import Bolus
    from pkpd.errors import DosingError

    regimen = Regimen([Bolus(5.0, Dose(100, "mg"), target="central")])
    t = np.array([4.5, 5.0, 6.0, 8.0])
    sim = pkpd.simulate(ORAL, regimen, t, covariates={"LAGT": np.array([0.0, 2.0])})
    k = 1.1 / 20.0
    expected = [np.where(t >= 5.0 + lag, 5000.0 * np.exp(-k * (t - 5.0 - lag)), 0.0) for lag in (0.0, 2.0)]
    np.testing.assert_allclose(sim["CP"], np.array(expected), rtol=1e-5, atol=1e-6)
    with pytest.raises(DosingError) as info:
        pkpd.simulate(ORAL, regimen, t, covariates={"LAGT": np.array([2.0, -1.0])})
    assert str(info.value) == "dose target 'central': lag time must be >= 0; got -1"


# (_readonly__mutmut_6: `a.setflags(write=None)`, which leaves the copy of the output times writable)
def test_the_times_of_a_simulation_are_a_read_only_copy_of_the_callers_times():
    """A Simulation's times are read-only (docs/testing.md: "a `Simulation`'s times are read-only"), so they stay
    those its arrays were computed at: writing into them raises numpy's "assignment destination is read-only"; they
    are a copy, so the caller's array stays writable and a later write into it leaves them alone (100 mg into
    pk_1cmt_iv, CL 2.8 L/h, V 32 L: conc(t) = 100 / 32 exp(-2.8/32 t) mg/L at the times given)."""
    times = np.array([0.0, 1.0, 2.0, 4.0])
    sim = pkpd.simulate(IV, Regimen.single(Dose(100, "mg")), times, params={"CL": 2.8, "V": 32.0})
    assert not sim.times.flags.writeable and times.flags.writeable
    with pytest.raises(ValueError, match="assignment destination is read-only"):
        sim.times[0] = 1.0
    times[0] = 1.0
    np.testing.assert_array_equal(sim.times, [0.0, 1.0, 2.0, 4.0])
    expected = 100 / 32 * np.exp(-2.8 / 32 * sim.times) * pkpd.units.convert("mg/L", sim.units["conc"])
    np.testing.assert_allclose(sim["conc"][0], expected, rtol=1e-5)


# ---- stop 39/40: a derivative that stops being finite within a segment --------------------------------------------
def _one_state_model(name: str, rate: str, parameters: tuple):
    from pkpd.model import DoseTarget, Model, Output, State

    return Model(name=name, time_unit="h", parameters=parameters, states=(State("x", "mg", "0", rate),),
                 outputs=(Output("amount", "x", "mg"),), doses=(DoseTarget("iv", "x", "mg"),))


@pytest.mark.parametrize("method", ["tsit5", "rodas4"])
@pytest.mark.parametrize("backend", ["native", "numba"])
def test_a_derivative_that_turns_nan_is_reported_as_non_finite_at_the_time_it_happens(backend, method):
    """dx/dt = -k sqrt(Km x) (k 0.3 /h, Km 5 mg) from x = 1 mg reaches x = 0 at t* = 2 sqrt(1 / 5) / 0.3 = 2.98 h
    (x = (1 - 0.3 sqrt(5) t / 2)^2 before), and sqrt of the negative x past it is NaN: each step across t* is
    rejected and shrunk until it is below the smallest step. The engines report status 3 (non-finite values) at t*,
    with the expressions to check, not status 2 ("step size became too small", a blow-up or a discontinuity, which
    this solution does neither: stop 39 reported that, Tsit5's give-up after 40 non-finite steps in a row never being
    reached, templates seed 31's :250). The values before t* are the closed form."""
    import math

    from pkpd.errors import SimulationError
    from pkpd.model import Parameter

    m = _one_state_model("sqrt_decay", "-k * sqrt(Km * x)", (Parameter("k", 0.3, "1/h"), Parameter("Km", 5.0, "mg")))
    t_star = 2.0 * math.sqrt(1.0 / 5.0) / 0.3
    t = np.array([0.0, 1.0, 2.0, 2.5])
    settings = pkpd.SolverSettings(method=method)
    sim = pkpd.simulate(m, Regimen.single(Dose(1, "mg")), t, backend=backend, settings=settings)
    np.testing.assert_allclose(sim["x"][0], (1.0 - 0.3 * math.sqrt(5.0) * t / 2.0) ** 2, rtol=1e-5)
    with pytest.raises(SimulationError) as info:
        pkpd.simulate(m, Regimen.single(Dose(1, "mg")), [0.0, 1.0, 10.0], backend=backend, settings=settings)
    err = info.value
    assert err.subject == 1 and err.time == pytest.approx(t_star, rel=1e-3)
    assert str(err) == (f"subject 1, t = {err.time:g}: the solver failed: non-finite values (NaN or inf) in the states "
                        "or their derivatives. Check the parameters (negative or huge rates make the solution "
                        "overflow), the initial values, and expressions that give NaN or inf: log(0), x/0, or sqrt, "
                        "log or a non-integer power of a state that turned negative.")


@pytest.mark.parametrize("method", ["tsit5", "rodas4"])
@pytest.mark.parametrize("backend", ["native", "numba"])
def test_a_solution_that_blows_up_in_finite_time_is_reported_as_a_step_size_that_became_too_small(backend, method):
    """dx/dt = k x^2 (k 0.5 /(mg h)) from x = 1 mg is x = 1 / (1 - k t), which blows up at t* = 1 / k = 2 h with
    finite derivatives all the way (x ~ 1e14 mg when the step reaches its floor): status 2 at t*, "step size became
    too small", not "non-finite values" (the rule that tells the two apart is "the last rejected step was not
    finite"). The values before t* are the closed form."""
    from pkpd.errors import SimulationError
    from pkpd.model import Parameter

    m = _one_state_model("blow_up", "k * x * x", (Parameter("k", 0.5, "1/(mg*h)"),))
    t = np.array([0.0, 1.0, 1.5, 1.9])
    settings = pkpd.SolverSettings(method=method)
    sim = pkpd.simulate(m, Regimen.single(Dose(1, "mg")), t, backend=backend, settings=settings)
    np.testing.assert_allclose(sim["x"][0], 1.0 / (1.0 - 0.5 * t), rtol=1e-5)
    with pytest.raises(SimulationError) as info:
        pkpd.simulate(m, Regimen.single(Dose(1, "mg")), [0.0, 1.0, 10.0], backend=backend, settings=settings)
    err = info.value
    assert err.subject == 1 and err.time == pytest.approx(2.0, rel=1e-6)
    assert str(err) == (f"subject 1, t = {err.time:g}: the solver failed: step size became too small (the solution "
                        "may blow up or be discontinuous). Check the parameters (negative or huge rates?), or try "
                        "SolverSettings(method='rodas4').")


# ---- stop 40: an amount or a rate into a state that overflows, and which subject a dose error names ---------------
def test_an_amount_or_a_rate_that_overflows_is_refused_naming_the_dose_and_the_subject_in_the_batch():
    """Dose target 'iv' with factor exp(L) into x (dx/dt = -k x, k 0.1 /h). Three subjects, the first given one
    bolus and the others two (12 h apart), so that the second and third are evaluated apart from the first: a factor
    that overflows (L = 1000 for the third) names subject 3 of 3, not its place in its group (2 of 2, before); a
    bolus of 1e308 mg x e overflows: refused naming the amount, the factor and the subject, quietly (it warned of an
    overflow in multiply and then failed the solver on a non-finite state); 32 mg infused over 1e-310 h (a rate
    that is not a float) is refused naming the duration, while over 1e-300 h it is the bolus closed form
    32 e^(-0.1 t) mg. The other subjects are the closed form e^L e^(-k t) (+ e^L e^(-k (t - 12)) after 12 h)."""
    import warnings

    from pkpd.dosing import Infusion
    from pkpd.errors import DosingError
    from pkpd.model import DoseTarget, Model, Output, Parameter, State

    m = Model(name="factor_exp", time_unit="h", parameters=(Parameter("L", 0.0, "1"), Parameter("k", 0.1, "1/h")),
              states=(State("x", "mg", "0", "-k * x"),), outputs=(Output("amount", "x", "mg"),),
              doses=(DoseTarget("iv", "x", "mg", factor="exp(L)"),))
    once = Regimen.single(Dose(1, "mg"))
    twice = Regimen.every(12, count=2, dose=Dose(1, "mg"))
    t = np.array([1.0, 13.0])
    cases = (
        ([once, twice, twice], [0.0, 0.5, 1000.0], "dose target 'iv': the bioavailability (factor) is not finite "
         "(inf) for subject number 3 of 3; check the parameter values and covariates it uses"),
        ([once, once, Regimen.single(Dose(1e308, "mg"))], [0.0, 0.0, 1.0], "dose of 1e+308 mg at t=0 into 'iv': the "
         "amount entering the model (amount x bioavailability factor 2.71828) overflows for subject number 3 of 3; "
         "check the dose and the parameter values and covariates of the factor"),
        ([once, Regimen([Infusion(0.0, Dose(32, "mg"), duration=1e-310)])], [0.0, 0.0], "infusion of 32 mg at t=0 "
         "into 'iv': its rate (the amount entering the model over a duration of 1e-310 h) overflows for subject "
         "number 2 of 2; give a longer infusion, or a bolus"),
    )
    for regimens, L, message in cases:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with pytest.raises(DosingError) as info:
                pkpd.simulate(m, regimens, t, params={"L": np.array(L)})
        assert str(info.value) == message
    sim = pkpd.simulate(m, [once, twice, Regimen([Infusion(0.0, Dose(32, "mg"), duration=1e-300)])], t,
                        params={"L": np.array([0.0, 0.5, 0.0])})
    expected = [np.exp(-0.1 * t), np.exp(0.5) * (np.exp(-0.1 * t) + np.where(t >= 12, np.exp(-0.1 * (t - 12)), 0.0)),
                32 * np.exp(-0.1 * t)]
    np.testing.assert_allclose(sim["amount"], np.array(expected), rtol=1e-6)


# (set_events__mutmut_17 of seed 29: `np.take_along_axis` without `axis=1`, a TypeError before numpy 2.3)
def test_parameter_changes_are_sorted_per_subject_where_take_along_axis_has_no_default_axis(numpy_before_2_3):
    """set_events sorts each subject's changes by time, passing take_along_axis its axis, as numpy before 2.3
    requires (emulated for pkpd.simulation's numpy). pk_1cmt_iv, 100 mg at 0 h, CL 1 L/h, V 20 L, the changes given
    out of time order: V to 10 L at 6 h, CL to 2 L/h at 2 h (ODE solver): x = 100 e^(-0.05 t) until 2 h,
    100 e^(-0.1) e^(-0.1 (t - 2)) until 6 h, then 100 e^(-0.5) e^(-0.2 (t - 6)); conc = x / V of the epoch."""
    from pkpd import simulation

    numpy_before_2_3(simulation)
    t = np.array([0.0, 1.0, 2.0, 4.0, 7.0, 9.0])
    sim = pkpd.simulate(IV, Regimen.single(Dose(100, "mg")), t, params={"CL": 1.0, "V": 20.0},
                        changes={"V": ([6.0], [10.0]), "CL": ([2.0], [2.0])},
                        settings=pkpd.SolverSettings(method="ode", rtol=1e-10, atol=1e-12))
    x = np.where(t <= 2.0, 100.0 * np.exp(-0.05 * t),
                 np.where(t < 6.0, 100.0 * np.exp(-0.1 - 0.1 * (t - 2.0)), 100.0 * np.exp(-0.5 - 0.2 * (t - 6.0))))
    np.testing.assert_allclose(sim["central"][0], x, rtol=1e-8)
    np.testing.assert_allclose(sim["conc"][0], x / np.where(t < 6.0, 20.0, 10.0), rtol=1e-8)


# ---- from the independent seed-40 sample of the mutation audit (issue 20) ----------------------------------------
# (run_batch__mutmut_125: `done = 1` for `done = 0`, an interrupt before the first chunk said "1 of 5" were solved)
@pytest.mark.parametrize("stop", [1, 2, 3])
def test_ctrl_c_says_how_many_subjects_had_been_solved_before_it_even_in_the_first_chunk(monkeypatch, stop):
    """pk_1cmt_iv on the ODE solver (native engine), 5 subjects in chunks of 2 (subjects 1-2, 3-4, 5): a
    KeyboardInterrupt raised by the engine's call number ``stop`` gives the whole message with the number of subjects
    that the calls before it solved, counted by the spy itself (0 when the first call is interrupted, then 2, 4);
    without the interrupt the same run is the bolus closed form 100 / V exp(-CL/V t) (mg/L, V 50 L, CL 1-5 L/h)."""
    import pkpd.simulation as simulation
    from pkpd.compile import compile_model

    cm = compile_model(IV, "native")
    monkeypatch.setattr(simulation, "_BATCH_CHUNK", 2)
    original = cm.module.solve_batch
    solved, calls = [], []

    def spy(*args):
        calls.append(1)
        if len(calls) == stop:
            raise KeyboardInterrupt
        original(*args)
        solved.append(args[0].shape[0])

    monkeypatch.setattr(cm.module, "solve_batch", spy)
    cl = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    run = dict(params={"CL": cl, "V": 50.0}, settings=pkpd.SolverSettings(method="ode"))
    t = np.array([0.0, 1.0, 4.0])
    with pytest.raises(KeyboardInterrupt) as info:
        pkpd.simulate(cm, Regimen.single(Dose(100, "mg")), t, **run)
    assert sum(solved) == 2 * (stop - 1)
    assert str(info.value) == (f"pk_1cmt_iv: simulate interrupted: {sum(solved)} of 5 subjects had been solved; no "
                               "result was returned. Run again (fewer subjects, or simulate_summary for large "
                               "populations).")
    calls.clear()
    stop = 0  # the spy reads it: no interrupt now
    sim = pkpd.simulate(cm, Regimen.single(Dose(100, "mg")), t, **run)
    expected = 100 / 50 * np.exp(-cl[:, None] / 50 * t) * pkpd.units.convert("mg/L", sim.units["conc"])
    np.testing.assert_allclose(sim["conc"], expected, rtol=1e-5)


# ---- from the independent seed-41 sample of the mutation audit (issue 20) ----------------------------------------
# (xǁSimulationǁto_dataframe__mutmut_101: `pd.concat(frames)` without `ignore_index=True`, the long table of two
# outputs indexed 0, 1, 2, 0, 1, 2)
def test_a_long_table_of_several_outputs_is_indexed_by_row_number_across_the_outputs():
    """pk_1cmt_iv, 100 mg at 0 h, CL 2 L/h, V 40 L, two subjects (IDs 1, 2) at 0, 6 and 12 h, the output conc and the
    state central: 2 x 3 x 2 = 12 rows, indexed 0..11 like any table, so ``.loc[i]`` is the i-th row: rows 0-5 are
    conc, subject by subject, rows 6-11 central. Bolus closed form: central = 100 exp(-t / 20) mg, conc = central / 40
    mg/L."""
    t = np.array([0.0, 6.0, 12.0])
    sim = pkpd.simulate(IV, Regimen.single(Dose(100, "mg")), t, params={"CL": 2.0, "V": 40.0},
                        covariates={"WT": [70.0, 70.0]})
    df = sim.to_dataframe(include_states=True)
    assert df.shape == (12, 5)
    assert df.index.equals(pd.RangeIndex(12))
    amount = 100.0 * np.exp(-t / 20.0)
    assert df.loc[3, "ID"] == 2 and df.loc[3, "name"] == "conc" and df.loc[3, "TIME"] == 0.0
    assert df.loc[8, "ID"] == 1 and df.loc[8, "name"] == "central" and df.loc[8, "unit"] == "mg"
    np.testing.assert_allclose(df.loc[3, "value"], 2.5, rtol=1e-6)
    np.testing.assert_allclose(df.loc[8, "value"], amount[2], rtol=1e-6)
    np.testing.assert_allclose(df.loc[6:11, "value"].to_numpy(), np.tile(amount, 2), rtol=1e-6)
    np.testing.assert_allclose(df.loc[0:5, "value"].to_numpy(), np.tile(amount / 40.0, 2), rtol=1e-6)


# (xǁSimulationǁplot__mutmut_2: `plot_simulation(self, None, ...)`, the names given to Simulation.plot ignored)
def test_simulation_plot_draws_the_outputs_and_states_it_is_given_in_that_order():
    """pk_1cmt_iv, 100 mg at 0 h, CL 2 L/h, V 40 L, at 0, 6 and 12 h: ``sim.plot(["central", "conc"])`` draws two
    panels, the state central (mg) then the output conc (mg/L), each line the bolus closed form 100 exp(-t / 20) mg
    and that / 40 mg/L; ``sim.plot()`` draws the output alone."""
    import matplotlib.pyplot as plt

    t = np.array([0.0, 6.0, 12.0])
    sim = pkpd.simulate(IV, Regimen.single(Dose(100, "mg")), t, params={"CL": 2.0, "V": 40.0})
    amount = 100.0 * np.exp(-t / 20.0)
    fig = sim.plot(["central", "conc"])
    try:
        assert [ax.get_ylabel() for ax in fig.axes] == ["central [mg]", "conc [mg/L]"]
        for ax, expected in zip(fig.axes, (amount, amount / 40.0), strict=True):
            np.testing.assert_allclose(ax.get_lines()[0].get_xdata(), t)
            np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), expected, rtol=1e-6)
    finally:
        plt.close(fig)
    fig = sim.plot()
    try:
        assert [ax.get_ylabel() for ax in fig.axes] == ["conc [mg/L]"]
    finally:
        plt.close(fig)


# ---- seed 41, part 2 ---------------------------------------------------------------------------------------------
# (_times__mutmut_20: `np.diff(t) < 0` for `<= 0`, a repeated output time, with no step back, was let through)
@pytest.mark.parametrize(("times", "i", "at"), [([0.0, 1.0, 1.0, 2.0], 1, "1"), ([0.0, 0.5, 0.5], 1, "0.5"),
                                                ([3.0, 3.0], 0, "3")])
def test_a_repeated_output_time_is_refused_naming_it(times, i, at):
    """Output times must be strictly increasing: a time given twice (no time going back) is refused like a step
    back, the whole message naming the first repeat, found by hand: times[i] = at is followed by times[i + 1] = at."""
    with pytest.raises(PkpdError) as err:
        pkpd.simulate(IV, Regimen.single(Dose(100, "mg")), times)
    assert str(err.value) == (f"times: must be strictly increasing; times[{i}] = {at} is followed by "
                              f"times[{i + 1}] = {at}. Sort them and remove duplicates (np.unique)")


# (_administration_events__mutmut_28: `if np.any(None):` for `if np.any(wt <= 0):`, a per-kg dose given to a subject
# weighing 0 kg or less was let through: no drug, or a negative amount and negative concentrations)
@pytest.mark.parametrize(("weights", "got"), [([70.0, 0.0], "0"), ([-5.0], "-5"), ([70.0, 60.0, -2.5], "-2.5")])
def test_a_per_kg_dose_to_a_subject_weighing_zero_or_less_is_refused_naming_the_weight(weights, got):
    """2 mg/kg to subjects with a body weight WT <= 0 is a DosingError, the whole message naming the first bad weight;
    with each bad weight made positive (10 kg) the same run is the bolus closed form 2 WT / V exp(-CL/V t)."""
    regimen = Regimen.single(Dose(2, "mg/kg"))
    with pytest.raises(pkpd.DosingError) as err:
        pkpd.simulate(IV, regimen, [0.0, 1.0], covariates={"WT": weights})
    assert str(err.value) == f"dose 2 mg/kg: body weight WT must be > 0 kg; got {got}"
    wt = np.where(np.array(weights) > 0, weights, 10.0)
    sim = pkpd.simulate(IV, regimen, [0.0, 1.0], covariates={"WT": wt})
    cl, v = (p.value for p in IV.parameters)
    expected = 2 * wt[:, None] / v * np.exp(-cl / v * np.array([0.0, 1.0]))  # mg/L
    np.testing.assert_allclose(sim["conc"], expected * pkpd.units.convert("mg/L", sim.units["conc"]), rtol=1e-6)


# ---- from the independent seed-42 sample of the mutation audit (issue 20) --------------------------------------------
@pytest.mark.parametrize("method", ["auto", "ode"])
def test_where_the_os_has_no_map_populate_results_are_ordinary_arrays_and_simulate_runs(monkeypatch, method):
    """Guards result_array (seed 42's survivor _11: `getattr(mmap, "MAP_POPULATE", )` without its default None, so
    that where Python's mmap has no MAP_POPULATE (it has it on Linux only) every result array, and with it every
    simulate, raised "AttributeError: module 'mmap' has no attribute 'MAP_POPULATE'"). Documented (its docstring):
    results are mapped in at once "where the OS allows it"; elsewhere they are ordinary numpy arrays. With
    MAP_POPULATE taken out of the mmap module: arrays below and above the 1 MiB threshold (2**17 doubles) are
    float64, writable, own their memory and have no mmap behind them; and simulate of pk_1cmt_iv (the closed form
    for "auto", the ODE solver for "ode"), 100 mg at 0 h, CL 1-4 L/h, V 50 L, 128 subjects x 1025 times (1 MiB of
    conc), is the bolus closed form 100 / 50 exp(-CL/50 t) mg/L."""
    import mmap

    from pkpd.simulation import result_array

    monkeypatch.delattr(mmap, "MAP_POPULATE", raising=False)
    for shape in [(3,), (2**17,), (2, 2**16)]:
        a = result_array(shape)
        assert a.shape == shape and a.dtype == np.float64 and a.flags.writeable and a.flags.owndata
        assert _mapping_of(a) is None
        a[...] = 2.5
        assert np.all(a == 2.5)
    cl = np.linspace(1.0, 4.0, 128)
    t = np.linspace(0.0, 24.0, 1025)
    sim = pkpd.simulate(IV, Regimen.single(Dose(100, "mg")), t, params={"CL": cl, "V": 50.0}, states=False,
                        settings=pkpd.SolverSettings(method=method))
    assert sim["conc"].shape == (128, 1025) and np.all(sim.status == 0)
    expected = 100 / 50 * np.exp(-cl[:, None] / 50 * t) * pkpd.units.convert("mg/L", sim.units["conc"])
    np.testing.assert_allclose(sim["conc"], expected, rtol=1e-5)


# ---- from the independent seed-43 sample of the mutation audit (issue 20) --------------------------------------------
@pytest.mark.parametrize("output", ["event", "relapse"])
def test_time_to_event_outputs_are_followed_until_the_follow_up_given_to_simulate(output):
    """Guards simulate (seed 43's survivor _250: `follow_up=None` for `follow_up=follow_up` in its call of
    draw_outcomes, so that the follow_up given to simulate was ignored: events followed until the last output time,
    and a bad follow_up let through). Documented: follow_up is the end of follow-up of time-to-event outputs
    (default: the last output time). endpoints_exposure without a dose and with h0 = 0 has a hazard of 0 for the
    single event (h0 exp(hx X) + h1 A / A50, A = 0) and the repeated one (h0): no event ever, so each of 3 subjects is
    censored (DV 0) exactly at the end of follow-up, worked out by hand: 30 h with follow_up=30 and output times 0,
    10, 100 h, 100 h without it, and 30 h with a dropout at 50 h (whichever comes first). A follow_up of -1 h is
    refused with the whole message."""
    model = pkpd.load_model(ENDPOINTS)
    times = [0.0, 10.0, 100.0]
    args = dict(params={"h0": np.zeros(3)}, outcomes=[output], seed=1)
    for follow_up, dropout, end in [(30.0, None, 30.0), (None, None, 100.0), (30.0, 50.0, 30.0), (80.0, 50.0, 50.0)]:
        sim = pkpd.simulate(model, None, times, follow_up=follow_up, dropout=dropout, **args)
        assert sim.outcomes["ID"].tolist() == [1, 2, 3] and (sim.outcomes["output"] == output).all()
        assert sim.outcomes["TIME"].tolist() == [end] * 3 and sim.outcomes["DV"].tolist() == [0.0] * 3
    with pytest.raises(PkpdError) as err:
        pkpd.simulate(model, None, times, follow_up=-1.0, **args)
    assert str(err.value) == "follow_up: the end of follow-up must be a finite time > 0 [model time unit]; got -1.0"


@pytest.mark.parametrize(("limit", "shown"), [(0, "0"), (-1.0, "-1.0"), (-np.inf, "-inf"), (np.nan, "nan"),
                                              ("2", "'2'"), ([2.0], "[2.0]")])
def test_a_memory_limit_that_is_not_a_number_above_zero_is_refused_with_the_whole_message(limit, shown):
    """Guards memory_limit (seed 43's survivor _13: `not isinstance(max_memory_gb, int | float) and not
    max_memory_gb > 0` for `... or not ...`, so that a number <= 0 or NaN was taken as a limit (0 or -1 GB refused
    every simulation as needing "more than the limit", NaN refused none: `need > nan` is False) and a string or a
    list raised Python's TypeError ('>' not supported) instead of the message). Documented: max_memory_gb is the
    largest result [GB], a number > 0. Each bad limit is refused, by memory_limit and by simulate before anything
    is solved, with the whole message naming it as repr shows it; 2 and 0.5 GB are 2e9 and 5e8 bytes."""
    from pkpd import simulation

    message = f"max_memory_gb must be a number > 0; got {shown}"
    with pytest.raises(PkpdError) as err:
        simulation.memory_limit(limit)
    assert str(err.value) == message
    with pytest.raises(PkpdError) as err:
        pkpd.simulate(IV, Regimen.single(Dose(100, "mg")), [1.0, 2.0], max_memory_gb=limit)
    assert str(err.value) == message
    assert simulation.memory_limit(2) == 2e9 and simulation.memory_limit(0.5) == 5e8


@pytest.mark.parametrize("text", ["0", " -1 ", "nan", "-inf", "lots"])
def test_a_pkpd_max_memory_gb_that_is_not_a_number_above_zero_is_refused_naming_the_variable(monkeypatch, text):
    """Without max_memory_gb= the limit is $PKPD_MAX_MEMORY_GB [GB], a number > 0 (defect found while judging seed
    43's survivor memory_limit _13: a variable of 0, -1, nan or -inf was refused as "max_memory_gb must be a number
    > 0; got 0.0", naming an argument the caller never gave, as a float the variable never held). Each is refused, by
    memory_limit and by simulate, with the whole message naming the variable and its text as set (spaces removed);
    an argument given wins over the variable (1.5 GB is 1.5e9 bytes)."""
    from pkpd import simulation

    monkeypatch.setenv("PKPD_MAX_MEMORY_GB", text)
    message = f"PKPD_MAX_MEMORY_GB must be a number of gigabytes > 0; got {text.strip()!r}"
    with pytest.raises(PkpdError) as err:
        simulation.memory_limit()
    assert str(err.value) == message
    with pytest.raises(PkpdError) as err:
        pkpd.simulate(IV, Regimen.single(Dose(100, "mg")), [1.0, 2.0])
    assert str(err.value) == message
    assert simulation.memory_limit(1.5) == 1.5e9


@pytest.mark.parametrize("limit", [np.int64(2), np.int32(2), np.float32(2.0), np.float64(2.0)])
def test_a_memory_limit_given_as_a_numpy_number_is_a_number(limit):
    """max_memory_gb is "a number > 0" [GB] (defect found while judging seed 43's survivor memory_limit _13: a numpy
    integer or float32, e.g. a value read from an array, was refused as "max_memory_gb must be a number > 0; got
    np.int64(2)"). 2 GB of any numpy type is 2e9 bytes, and simulate runs under it: pk_1cmt_iv, 100 mg at 0 h, is
    the bolus closed form 100 / V exp(-CL/V t)."""
    from pkpd import simulation

    assert simulation.memory_limit(limit) == 2e9
    t = np.array([1.0, 2.0])
    sim = pkpd.simulate(IV, Regimen.single(Dose(100, "mg")), t, max_memory_gb=limit)
    cl, v = (p.value for p in IV.parameters)
    expected = 100 / v * np.exp(-cl / v * t) * pkpd.units.convert("mg/L", sim.units["conc"])
    np.testing.assert_allclose(sim["conc"][0], expected, rtol=1e-6)


def test_an_infinite_memory_limit_means_no_limit(monkeypatch):
    """memory_limit's documented rule: a limit is a number of gigabytes > 0, inf meaning no limit, given as
    ``max_memory_gb`` or as ``$PKPD_MAX_MEMORY_GB`` ("inf"): the limit is inf bytes, and a simulation whose result is
    larger than a tiny finite limit (1e-12 GB, 1,000 bytes, which it exceeds) runs under it."""
    from pkpd import simulation

    assert simulation.memory_limit(float("inf")) == float("inf")
    monkeypatch.setenv("PKPD_MAX_MEMORY_GB", "inf")
    assert simulation.memory_limit() == float("inf")
    t = np.linspace(0.0, 24.0, 200)
    with pytest.raises(PkpdError, match="GB"):
        pkpd.simulate(IV, Regimen.single(Dose(100, "mg")), t, max_memory_gb=1e-12)
    sim = pkpd.simulate(IV, Regimen.single(Dose(100, "mg")), t)
    assert sim["conc"].shape == (1, t.size)


# ---- from the independent seed-45 sample of the mutation audit (issue 20) --------------------------------------------
def test_changes_given_for_several_subjects_apply_to_each_of_them():
    """Guards _change_events (seed 45's survivor _91: `np.concatenate(cols_i, axis=None)` for `axis=1`, the indexes
    of the changed entries of q flattened to one row of n * k, which set_events could not lay over the (n, k) times:
    every simulate of two or more subjects with changes= raised numpy's broadcasting ValueError; the selected tests
    gave changes to one subject only). pk_1cmt_iv, 100 mg at 0 h, two subjects with CL 1 and 2 L/h, V 32 L; CL
    changed per subject (shape (2, 1)): to 5 L/h from 2 h for the first, to 0.5 L/h from 3 h for the second; V
    changed for both (shape (1,)) to 16 L from 6 h (the amount stays, the concentration doubles). The closed form,
    worked out by hand: A(t) = 100 exp(-int_0^t CL(u) / V(u) du), C = A / V(t), with the piecewise integral
    CL0 / 32 min(t, s) + CL1 / 32 clip(t - s, 0, 6 - s) + CL1 / 16 max(t - 6, 0) (s the subject's change time)."""
    regimen, times = Regimen.single(Dose(100, "mg")), np.array([1.0, 2.5, 4.0, 8.0])
    changes = {"CL": ([[2.0], [3.0]], [[5.0], [0.5]]), "V": ([6.0], [16.0])}
    sim = pkpd.simulate(IV, regimen, times, params={"CL": [1.0, 2.0], "V": 32.0}, changes=changes)
    expected = []
    for cl0, s, cl1 in [(1.0, 2.0, 5.0), (2.0, 3.0, 0.5)]:
        exponent = (cl0 / 32 * np.minimum(times, s) + cl1 / 32 * np.clip(times - s, 0.0, 6.0 - s)
                    + cl1 / 16 * np.maximum(times - 6.0, 0.0))
        expected.append(100 * np.exp(-exponent) / np.where(times >= 6.0, 16.0, 32.0))
    assert sim.units["conc"] == "mg/L" and sim["conc"].shape == (2, 4)
    np.testing.assert_allclose(sim["conc"], expected, rtol=1e-6)


def _factor_lag_iv(tmp_path):
    """pk_1cmt_iv with the dose factor exp(G) and the lag TL log(G) (TL 1 h, G a covariate), for the tests of a
    factor or lag that is not finite."""
    text = (Path(__file__).resolve().parents[2] / "models" / "pk_1cmt_iv.toml").read_text()
    text = (text.replace('name = "pk_1cmt_iv"', 'name = "factor_lag_iv"')
            .replace("[covariates.WT]", '[parameters.TL]\nvalue = 1.0\nunit = "h"\nbounds = [0.0, 10.0]\n'
                     'description = "lag scale"\n\n[covariates.G]\nunit = "1"\nvalue = 1.0\ndescription = "log F"\n\n'
                     "[covariates.WT]")
            + 'factor = "exp(G)"\nlag = "TL * log(G)"\n')
    path = tmp_path / "factor_lag_iv.toml"
    path.write_text(text)
    return pkpd.load_model(path)


@pytest.mark.parametrize(("g", "message"), [
    ([800.0, 1.0], "the bioavailability (factor) is not finite (inf) for subject number 1 of 2"),
    ([800.0], "the bioavailability (factor) is not finite (inf) for subject number 1 of 1"),
    ([-1.0, 2.0], "the lag time is not finite (nan) for subject number 1 of 2"),
    ([-1.0], "the lag time is not finite (nan) for subject number 1 of 1"),
])
def test_a_dose_factor_or_lag_that_is_not_finite_for_the_first_subject_is_refused_naming_it(tmp_path, g, message):
    """Guards _administration_events (seed 45's survivor _69: `_first_not_finite(value) >= 1` for `>= 0`, so a
    bioavailability factor or lag time that is not finite for the first subject of a dose, index 0, passed the check:
    an infinite factor was then refused as an amount entering the model that "overflows", blaming the dose, and a NaN
    lag was let through into a dose at time NaN; the selected tests had the bad value at the second subject only).
    Documented: a factor or lag that is not finite is refused as a DosingError naming the dose target, what is not
    finite, its value and the subject's number. exp(800) is inf and 1 h x log(-1) NaN (worked out by hand), for
    subject 1 of 2 and for a single subject; the whole message."""
    from pkpd.errors import DosingError

    model = _factor_lag_iv(tmp_path)
    with pytest.raises(DosingError) as exc:
        pkpd.simulate(model, Regimen.single(Dose(100, "mg")), [0.0, 2.0, 6.0], covariates={"G": g})
    assert str(exc.value) == f"dose target 'iv': {message}; check the parameter values and covariates it uses"
