"""simulate_summary: chunked population summaries in bounded memory, and progress bars (issue 8, items 3 and 4).

The references are independent: one all-in-memory ``pkpd.simulate`` of the same subjects, summarised with numpy
(np.percentile, mean, std) and with hand-written metric loops, plus closed forms for a one-compartment model.
"""

import math

import numpy as np
import pytest

import pkpd
from pkpd import summaries
from pkpd.errors import PkpdError, SimulationError

T_MSC = np.arange(0.0, 97.0, 2.0)  # h
LEVELS = (0, 5, 50, 95, 100)

SIGNED = """
[model]
name = "signed"
time_unit = "h"
description = "test model whose output changes sign: the amount above or below a per-subject reference level"

[parameters.k]
value = 0.2
unit = "1/h"
bounds = [0.001, 10.0]

[parameters.V]
value = 10.0
unit = "L"
bounds = [1.0, 100.0]

[parameters.ref]
value = 2.0
unit = "mg/L"
bounds = [0.0, 100.0]

[states.A]
unit = "mg"
initial = "0"
ddt = "-k * A"

[outputs.excess]
expression = "A / V - ref"
unit = "mg/L"

[doses.iv]
target = "A"
unit = "mg"
"""


@pytest.fixture(scope="module")
def msc():
    return pkpd.load_model("msc_salvadori")


@pytest.fixture(scope="module")
def pk():
    return pkpd.load_model("pk_1cmt_iv")


def msc_population(model, n, seed=7):
    rng = np.random.default_rng(seed)
    return {k: model.parameter(k).value * np.exp(0.3 * rng.standard_normal(n)) for k in ("k_c", "s_p", "EC50", "k_i")}


def msc_run(model, n, **kwargs):
    params = msc_population(model, n)
    common = dict(params=params, covariates={"WT": 70.0},
                  settings=pkpd.SolverSettings(rtol=1e-6, atol=1e-9))
    summary = pkpd.simulate_summary(model, pkpd.Regimen.single(pkpd.Dose(2e6, "cell/kg")), T_MSC, progress=False,
                                    **common, **kwargs)
    return summary, common


def full_simulation(model, regimen, times, common):
    return pkpd.simulate(model, regimen, times, states=False, **common)


def hand_auc(t, y):
    total = 0.0
    for j in range(len(t) - 1):
        total += (t[j + 1] - t[j]) * (y[j] + y[j + 1]) / 2
    return total


def hand_time_above(t, y, thr):
    total = 0.0
    for j in range(len(t) - 1):
        a, b, dt = y[j], y[j + 1], t[j + 1] - t[j]
        if a > thr and b > thr:
            total += dt
        elif a > thr or b > thr:
            total += dt * (max(a, b) - thr) / abs(b - a)
    return total


METRICS = [pkpd.AUC("IL10"), pkpd.Cmax("IL10"), pkpd.Tmax("IL10"), pkpd.TimeAbove("IL10", 10.0),
           pkpd.AUC("cells")]


# ---------------------------------------------------------------------------------------------- exactness
def test_one_chunk_equals_in_memory_simulation_exactly(msc):
    n = 120
    s, common = msc_run(msc, n, percentiles=LEVELS, metrics=METRICS, chunk_size=n)
    sim = full_simulation(msc, pkpd.Regimen.single(pkpd.Dose(2e6, "cell/kg")), T_MSC, common)
    assert s.n_chunks == 1 and s.percentile_error == 0.0 and s.n_subjects == n and s.n_failed == 0
    for i, name in enumerate(s.outputs):
        values = sim.outputs[name]
        np.testing.assert_array_equal(s.percentiles[i], np.percentile(values, LEVELS, axis=0))
        np.testing.assert_allclose(s.mean[i], values.mean(axis=0), rtol=1e-13)
        np.testing.assert_allclose(s.sd[i], values.std(axis=0, ddof=1), rtol=1e-10, atol=1e-12 * np.abs(values).max())


def test_chunked_equals_in_memory_for_means_sds_metrics_and_kept_values(msc):
    n, chunk = 300, 100
    keep = {"IL10": [0, 24, 48], "cells": None}
    chunked, common = msc_run(msc, n, metrics=METRICS, keep=keep, chunk_size=chunk)
    whole, _ = msc_run(msc, n, metrics=METRICS, keep=keep, chunk_size=n)
    assert chunked.n_chunks == 3 and whole.n_chunks == 1
    np.testing.assert_allclose(chunked.mean, whole.mean, rtol=1e-12)
    np.testing.assert_allclose(chunked.sd, whole.sd, rtol=1e-10, atol=1e-10 * np.abs(whole.mean).max())
    assert chunked.metrics.keys() == whole.metrics.keys()
    for name in whole.metrics:
        np.testing.assert_array_equal(chunked.metrics[name], whole.metrics[name])
    for name in keep:
        np.testing.assert_array_equal(chunked.kept[name], whole.kept[name])
        np.testing.assert_array_equal(chunked.kept_times[name], whole.kept_times[name])
    # and both against numpy on one simulate of all subjects
    sim = full_simulation(msc, pkpd.Regimen.single(pkpd.Dose(2e6, "cell/kg")), T_MSC, common)
    for i, name in enumerate(chunked.outputs):
        np.testing.assert_allclose(chunked.mean[i], sim.outputs[name].mean(axis=0), rtol=1e-12)
        np.testing.assert_allclose(chunked.sd[i], sim.outputs[name].std(axis=0, ddof=1), rtol=1e-10,
                                   atol=1e-12 * np.abs(sim.outputs[name]).max())
    np.testing.assert_array_equal(chunked.kept["IL10"], sim.outputs["IL10"][:, [0, 12, 24]])
    np.testing.assert_array_equal(chunked.kept["cells"], sim.outputs["cells"])


def order_statistic_bound(values, level, delta):
    """delta * max(|x_(k)|, |x_(k+1)|) around numpy's linear rank (n - 1) q / 100, per time."""
    x = np.sort(values, axis=0)
    n = x.shape[0]
    h = (n - 1) * level / 100
    lo = int(math.floor(h))
    hi = min(lo + 1, n - 1)
    return delta * np.maximum(np.abs(x[lo]), np.abs(x[hi]))


def assert_within_bound(summary, sim, levels):
    delta = summary.percentile_error
    assert delta > 0
    for i, name in enumerate(summary.outputs):
        values = sim.outputs[name]
        exact = np.percentile(values, levels, axis=0)
        for j, q in enumerate(levels):
            err = np.abs(summary.percentiles[i, j] - exact[j])
            bound = order_statistic_bound(values, q, delta)
            # the bound is on exact arithmetic; allow for the rounding of the interpolation itself
            assert np.all(err <= bound + 4e-16 * np.abs(exact[j])), (name, q, float(np.max(err - bound)))


def test_chunked_percentiles_are_within_the_stated_relative_error(msc):
    n, chunk = 600, 200
    s, common = msc_run(msc, n, percentiles=(0, 2.5, 5, 25, 50, 75, 95, 97.5, 100), chunk_size=chunk)
    assert s.percentile_error == pytest.approx(summaries.relative_error(summaries.RESOLUTION))
    assert s.percentile_error < 0.001  # the documented 0.098 %
    sim = full_simulation(msc, pkpd.Regimen.single(pkpd.Dose(2e6, "cell/kg")), T_MSC, common)
    assert_within_bound(s, sim, s.percentile_levels)
    # the extremes are tracked exactly
    for i, name in enumerate(s.outputs):
        np.testing.assert_array_equal(s.percentile(name, 0), sim.outputs[name].min(axis=0))
        np.testing.assert_array_equal(s.percentile(name, 100), sim.outputs[name].max(axis=0))
        assert i == s.outputs.index(name)


def test_percentiles_of_values_that_change_sign_and_are_zero(tmp_path):
    path = tmp_path / "signed.toml"
    path.write_text(SIGNED)
    model = pkpd.load_model(path)
    rng = np.random.default_rng(3)
    n = 500
    params = {"k": 0.2 * np.exp(0.5 * rng.standard_normal(n)), "ref": rng.uniform(0.0, 4.0, n)}
    params["ref"][:50] = 0.0  # before the dose these subjects are exactly zero
    reg = pkpd.Regimen.single(pkpd.Dose(50, "mg"), at=1.0)
    times = np.linspace(0.0, 30.0, 31)
    s = pkpd.simulate_summary(model, reg, times, params=params, percentiles=(0, 1, 10, 50, 90, 99, 100),
                              chunk_size=150, progress=False)
    sim = pkpd.simulate(model, reg, times, params=params, states=False)
    values = sim.outputs["excess"]
    assert (values < 0).any() and (values > 0).any() and (values == 0).any()
    assert_within_bound(s, sim, s.percentile_levels)


def test_coarser_histograms_when_over_the_bucket_budget_keep_their_stated_bound(msc, monkeypatch):
    monkeypatch.setattr(summaries, "_MAX_BUCKETS", 20_000)
    n, chunk = 400, 100
    s, common = msc_run(msc, n, chunk_size=chunk)
    assert s.percentile_error > summaries.relative_error(summaries.RESOLUTION)  # the resolution was lowered
    sim = full_simulation(msc, pkpd.Regimen.single(pkpd.Dose(2e6, "cell/kg")), T_MSC, common)
    assert_within_bound(s, sim, s.percentile_levels)


# ---------------------------------------------------------------------------------------------- metrics
def test_metrics_match_hand_computation_from_a_full_simulation(msc):
    n = 250
    s, common = msc_run(msc, n, metrics=METRICS, chunk_size=90)
    sim = full_simulation(msc, pkpd.Regimen.single(pkpd.Dose(2e6, "cell/kg")), T_MSC, common)
    il10, cells = sim.outputs["IL10"], sim.outputs["cells"]
    for i in range(0, n, 17):
        assert s.metrics["AUC(IL10)"][i] == pytest.approx(hand_auc(T_MSC, il10[i]), rel=1e-13)
        assert s.metrics["AUC(cells)"][i] == pytest.approx(hand_auc(T_MSC, cells[i]), rel=1e-13)
        assert s.metrics["Cmax(IL10)"][i] == max(il10[i])
        assert s.metrics["Tmax(IL10)"][i] == T_MSC[list(il10[i]).index(max(il10[i]))]
        assert s.metrics["TimeAbove(IL10, 10)"][i] == pytest.approx(hand_time_above(T_MSC, il10[i], 10.0),
                                                                   rel=1e-12, abs=1e-12)
    assert s.metric_units == {"AUC(IL10)": "pg/mL*h", "Cmax(IL10)": "pg/mL", "Tmax(IL10)": "h",
                              "TimeAbove(IL10, 10)": "h", "AUC(cells)": "cell*h"}


def test_metrics_against_closed_forms_of_a_one_compartment_bolus(pk):
    # C(t) = D/V exp(-CL/V t): AUC(0-T) = D/CL (1 - exp(-k T)); Cmax = D/V at t = 0; time above c: ln(C0/c)/k
    cl = np.array([1.5, 2.8, 4.0, 6.0])
    dose, v, horizon = 100.0, pk.parameter("V").value, 48.0
    times = np.linspace(0.0, horizon, 4801)
    s = pkpd.simulate_summary(pk, pkpd.Regimen.single(pkpd.Dose(dose, "mg")), times, params={"CL": cl},
                              metrics=[pkpd.AUC("conc"), pkpd.Cmax("conc"), pkpd.Tmax("conc"),
                                       pkpd.TimeAbove("conc", 1.0)], chunk_size=3, progress=False,
                              settings=pkpd.SolverSettings(rtol=1e-10, atol=1e-12))
    k = cl / v
    np.testing.assert_allclose(s.metrics["AUC(conc)"], dose / cl * (1 - np.exp(-k * horizon)), rtol=1e-5)
    np.testing.assert_allclose(s.metrics["Cmax(conc)"], dose / v, rtol=1e-12)
    np.testing.assert_array_equal(s.metrics["Tmax(conc)"], 0.0)
    np.testing.assert_allclose(s.metrics["TimeAbove(conc, 1)"], np.log(dose / v / 1.0) / k, atol=1e-4)


def test_per_subject_regimens_are_split_with_the_subjects(pk):
    doses = [50.0, 100.0, 150.0, 200.0, 250.0]
    regimens = [pkpd.Regimen.single(pkpd.Dose(d, "mg")) for d in doses]
    times = np.linspace(0.0, 24.0, 25)
    s = pkpd.simulate_summary(pk, regimens, times, metrics=[pkpd.Cmax("conc")], chunk_size=2, progress=False)
    assert s.n_chunks == 3
    np.testing.assert_allclose(s.metrics["Cmax(conc)"], np.array(doses) / pk.parameter("V").value, rtol=1e-12)


def test_failed_subjects_are_marked_and_left_out(pk):
    times = np.linspace(0.0, 24.0, 49)
    cl = np.array([2.8, 1e4, 3.0, 2.0, 1e5, 3.5])
    settings = pkpd.SolverSettings(method="tsit5", max_steps=100, on_failure="mark")
    common = dict(params={"CL": cl}, settings=settings)
    reg = pkpd.Regimen.single(pkpd.Dose(100, "mg"))
    one = pkpd.simulate_summary(pk, reg, times, metrics=[pkpd.AUC("conc")], progress=False, **common)
    chunked = pkpd.simulate_summary(pk, reg, times, metrics=[pkpd.AUC("conc")], chunk_size=4, progress=False,
                                    **common)
    sim = pkpd.simulate(pk, reg, times, **common)
    ok = sim.status == 0
    for s in (one, chunked):
        assert s.n_failed == 2 and list(s.status) == list(sim.status)
        assert np.isnan(s.metrics["AUC(conc)"][~ok]).all() and np.isfinite(s.metrics["AUC(conc)"][ok]).all()
        np.testing.assert_allclose(s.mean[0], sim.outputs["conc"][ok].mean(axis=0), rtol=1e-13)
        assert "2 FAILED" in repr(s)
    np.testing.assert_array_equal(one.percentiles[0], sim.percentiles("conc"))


def test_failure_raises_by_default_naming_the_subject_in_the_whole_population(pk):
    cl = np.array([2.8, 3.0, 2.0, 1e5])
    with pytest.raises(SimulationError, match="subject 4"):
        pkpd.simulate_summary(pk, pkpd.Regimen.single(pkpd.Dose(100, "mg")), np.linspace(0, 24, 25),
                              params={"CL": cl}, chunk_size=2, progress=False,
                              settings=pkpd.SolverSettings(method="tsit5", max_steps=100))


# ---------------------------------------------------------------------------------------------- result object
def test_result_is_read_only_and_exports_tidy_tables(msc):
    s, _ = msc_run(msc, 40, outputs=["IL10", "cells"], metrics=[pkpd.AUC("IL10")], keep={"IL10": [24]},
                   chunk_size=15)
    assert s.outputs == ("IL10", "cells") and s.percentiles.shape == (2, 3, T_MSC.size)
    assert s.units == {"IL10": "pg/mL", "cells": "cell"}
    with pytest.raises(ValueError):
        s.percentiles[0, 0, 0] = 1.0
    df = s.to_dataframe()
    assert list(df.columns) == ["output", "unit", "TIME", "mean", "sd", "p5", "p50", "p95"]
    assert len(df) == 2 * T_MSC.size
    np.testing.assert_array_equal(df[df.output == "IL10"]["p50"], s.percentile("IL10", 50))
    per_subject = s.metrics_to_dataframe()
    assert list(per_subject.columns) == ["ID", "status", "AUC(IL10)", "IL10@24"]
    assert len(per_subject) == 40
    text = repr(s)
    assert "40 subject(s)" in text and "IL10 [pg/mL]" in text and "0.098 %" in text
    page = s._repr_html_()
    assert "PopulationSummary" in page and "AUC(IL10)" in page and "pg/mL*h" in page
    with pytest.raises(KeyError, match="PGE2"):
        s.percentile("PGE2", 50)


def test_user_metric_follows_the_protocol(pk):
    class Trough:
        output, name = "conc", "Ctrough(conc)"

        def unit(self, output_unit, time_unit):
            return output_unit

        def compute(self, times, values):
            return values[:, -1]

    times = np.linspace(0.0, 24.0, 25)
    s = pkpd.simulate_summary(pk, pkpd.Regimen.single(pkpd.Dose(100, "mg")), times,
                              params={"CL": [2.0, 3.0, 4.0]}, metrics=[Trough()], chunk_size=2, progress=False)
    sim = pkpd.simulate(pk, pkpd.Regimen.single(pkpd.Dose(100, "mg")), times, params={"CL": [2.0, 3.0, 4.0]})
    np.testing.assert_array_equal(s.metrics["Ctrough(conc)"], sim.outputs["conc"][:, -1])
    assert s.metric_units["Ctrough(conc)"] == "mg/L"


def test_metrics_only_without_per_time_statistics(pk):
    times = np.linspace(0.0, 24.0, 25)
    s = pkpd.simulate_summary(pk, pkpd.Regimen.single(pkpd.Dose(100, "mg")), times, params={"CL": [2.0, 3.0, 4.0]},
                              outputs=[], metrics=[pkpd.Cmax("conc")], chunk_size=2, progress=False)
    assert s.outputs == () and s.percentiles.shape == (0, 3, 25) and s.to_dataframe().empty
    np.testing.assert_allclose(s.metrics["Cmax(conc)"], 100 / pk.parameter("V").value, rtol=1e-12)


def test_a_user_metric_of_the_wrong_shape_is_refused(pk):
    class Broken:
        output, name = "conc", "broken"

        def unit(self, output_unit, time_unit):
            return output_unit

        def compute(self, times, values):
            return values  # (n_subjects, n_times), not one value per subject

    with pytest.raises(PkpdError, match=r"metric broken: .*one value per subject, shape \(2,\)"):
        pkpd.simulate_summary(pk, pkpd.Regimen.single(pkpd.Dose(100, "mg")), [0.0, 1.0, 2.0],
                              params={"CL": [2.0, 3.0, 4.0]}, metrics=[Broken()], chunk_size=2, progress=False)


def test_the_callers_times_array_is_left_writable(pk):
    times = np.linspace(0.0, 24.0, 25)
    s = pkpd.simulate_summary(pk, pkpd.Regimen.single(pkpd.Dose(100, "mg")), times, progress=False)
    assert times.flags.writeable and not s.times.flags.writeable


# ---------------------------------------------------------------------------------------------- progress, Ctrl-C
def pk_run(pk, **kwargs):
    return pkpd.simulate_summary(pk, pkpd.Regimen.single(pkpd.Dose(100, "mg")), np.linspace(0, 24, 25),
                                 params={"CL": np.linspace(1.0, 5.0, 30)}, chunk_size=10, **kwargs)


def test_progress_false_prints_nothing(pk, capsys):
    pk_run(pk, progress=False)
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""


def test_progress_none_prints_nothing_when_not_interactive(pk, capsys):
    pk_run(pk)  # stderr is captured, not a terminal, and the run is short
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""


def test_progress_true_shows_a_bar_on_stderr(pk, capsys):
    pk_run(pk, progress=True)
    out = capsys.readouterr()
    assert out.out == ""
    assert "30/30" in out.err and "subject" in out.err


def test_ctrl_c_says_how_many_chunks_finished_and_returns_nothing(pk, capsys):
    class InterruptOnThirdChunk:
        output, name = "conc", "interrupt"
        calls = 0

        def unit(self, output_unit, time_unit):
            return output_unit

        def compute(self, times, values):
            self.calls += 1
            if self.calls == 3:
                raise KeyboardInterrupt
            return values[:, 0]

    with pytest.raises(KeyboardInterrupt, match=r"2 of 3 chunk\(s\) had finished \(20 of 30 subjects\)"):
        pk_run(pk, metrics=[InterruptOnThirdChunk()], progress=True)
    assert "subject" in capsys.readouterr().err  # the bar was drawn, then closed


# ---------------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("kwargs, message", [
    (dict(outputs=["IL1O"]), "no output 'IL1O'.*Did you mean 'IL10'"),
    (dict(outputs=["I"]), "'I' is a state"),
    (dict(outputs="IL10"), "list of output names"),
    (dict(outputs=["IL10", "IL10"]), "once"),
    (dict(outputs=[]), "nothing to summarise"),
    (dict(metrics=[pkpd.AUC("IL1O")]), r"metrics\[0\] AUC\(IL1O\).*Did you mean 'IL10'"),
    (dict(metrics=["AUC(IL10)"]), r"metrics\[0\]: expected a metric object.*Did you mean 'AUC'"),
    (dict(metrics=[pkpd.Cmax("IL10"), pkpd.Cmax("IL10")]), "twice"),
    (dict(keep={"IL10": [25.0]}), "time 25 is not one of the output times.*24, 26"),
    (dict(keep={"IL1O": None}), "keep: model 'msc_salvadori' has no output 'IL1O'"),
    (dict(keep=["IL10"]), "mapping output -> times"),
    (dict(percentiles=(5, 101)), r"\[0, 100\]"),
    (dict(percentiles="median"), "levels"),
    (dict(chunk_size=0), "chunk_size: must be a positive integer"),
    (dict(chunk_size=-5), "chunk_size"),
    (dict(chunk_size=2.5), "chunk_size"),
    (dict(chunk_size=True), "chunk_size"),
    (dict(progress="yes"), "progress"),
    (dict(params={"k_cc": 1.0}), "unknown parameter 'k_cc'.*Did you mean 'k_c'"),
    (dict(params={"k_c": []}), "population is empty"),
    (dict(params={"k_c": [0.02, 0.03]}, covariates={"WT": [70.0, 80.0, 90.0]}), "inconsistent number"),
    (dict(params={"k_c": [0.02, np.nan]}), "subject 2"),
])
def test_bad_input_is_refused_with_a_clear_message(msc, kwargs, message):
    args = dict(covariates={"WT": 70.0}, progress=False) | kwargs
    with pytest.raises(PkpdError, match=message):
        pkpd.simulate_summary(msc, pkpd.Regimen.single(pkpd.Dose(2e6, "cell/kg")), T_MSC, **args)


@pytest.mark.parametrize("threshold", ["10", None, True, float("nan"), float("inf")])
def test_threshold_must_be_a_finite_number(threshold):
    with pytest.raises(PkpdError, match="threshold must be a finite number"):
        pkpd.TimeAbove("IL10", threshold)


def test_metric_output_must_be_a_name():
    with pytest.raises(PkpdError, match="output must be the name"):
        pkpd.AUC(3)
