"""pkpd.design (issue 18): the FIM's structure, optimisation under constraints, errors, and predicted SEs against
simulation and re-estimation. PopED's published numbers are in tests/reference/test_design_poped.py."""

import math

import numpy as np
import pandas as pd
import pytest

import pkpd
from pkpd.design import Design, DesignSpace, Group, evaluate_design, optimize_design
from pkpd.errors import PkpdError

ORAL = pkpd.load_model("pk_1cmt_oral").with_parameters(CL=0.15, V=8.0, ka=1.0)
POP = dict(iiv={"CL": 0.07, "V": 0.02, "ka": 0.6}, estimate=["CL", "V", "ka"])


def _dose(amount=70.0):
    return pkpd.Regimen.single(pkpd.Dose(amount, "mg"), target="oral")


def test_groups_add_up_and_size_scales_the_fim():
    err = pkpd.Proportional(cv=0.1)
    a = Group(_dose(), [0.5, 2, 24, 72], 10)
    b = Group(_dose(35), [1, 6, 36, 120], 30)
    both = evaluate_design(ORAL, Design([a, b]), error=err, **POP).fim
    one = evaluate_design(ORAL, Design([a]), error=err, **POP).fim
    other = evaluate_design(ORAL, Design([b]), error=err, **POP).fim
    np.testing.assert_allclose(both, one + other, rtol=1e-12)
    np.testing.assert_allclose(evaluate_design(ORAL, Group(_dose(), [0.5, 2, 24, 72], 20), error=err, **POP).fim,
                               2 * one, rtol=1e-12)


def _linear_model(tmp_path):
    text = """
[model]
name = "linear_shift"
version = "1"
time_unit = "h"
description = "A mono-exponential decline on a baseline: the output is linear in the baseline."
[parameters.k]
value = 0.2
unit = "1/h"
bounds = [0.001, 10]
description = "rate"
source = "test"
[parameters.base]
value = 2.0
unit = "mg/L"
bounds = [-100, 100]
description = "baseline"
source = "test"
[states.A]
unit = "mg/L"
initial = "0"
ddt = "-k * A"
description = "amount"
[outputs.y]
expression = "A + base"
unit = "mg/L"
description = "observation"
[doses.iv]
target = "A"
unit = "mg/L"
description = "bolus"
"""
    path = tmp_path / "linear_shift.toml"
    path.write_text(text)
    return pkpd.load_model(path)


def test_foce_equals_fo_when_the_model_is_linear_in_eta(tmp_path):
    m = _linear_model(tmp_path)
    g = Group(pkpd.Regimen.single(pkpd.Dose(10, "mg/L"), target="iv"), [0.5, 2, 6, 12], 20)
    iiv = pkpd.IIV({"base": 0.5}, distribution="normal")
    kw = dict(iiv=iiv, estimate=["k", "base"], error=pkpd.Additive(sd=0.3))
    fo = evaluate_design(m, g, **kw)
    foce = evaluate_design(m, g, approximation="foce", n_draws=7, **kw)
    np.testing.assert_allclose(foce.fim, fo.fim, rtol=1e-5)
    # ...and differs for the non-linear warfarin model
    war = Group(_dose(), [0.5, 2, 24, 72], 32)
    assert not np.allclose(evaluate_design(ORAL, war, error=pkpd.Proportional(cv=0.1), approximation="foce",
                                           n_draws=20, **POP).fim,
                           evaluate_design(ORAL, war, error=pkpd.Proportional(cv=0.1), **POP).fim, rtol=0.05)


def test_several_outputs_and_per_kg_doses():
    m = pkpd.load_model("msc_salvadori")
    g = Group(pkpd.Regimen.single(pkpd.Dose(2e6, "cell/kg")), {"PGE2": [1, 12, 48], "IL10": [4, 24, 72]}, 20,
              covariates={"WT": 70})
    ev = evaluate_design(m, g, iiv={"k_c": 0.09, "s_p": 0.09}, estimate=["k_c", "s_p"],
                         error={"PGE2": pkpd.Proportional(cv=0.15), "IL10": pkpd.Proportional(cv=0.15)})
    assert ev.names == ("k_c", "s_p", "omega2_k_c", "omega2_s_p", "PGE2_cv", "IL10_cv")
    assert all(math.isfinite(v) and v > 0 for v in ev.rse_percent.values())
    with pytest.raises(PkpdError, match="per output"):
        evaluate_design(m, Group(pkpd.Regimen.single(pkpd.Dose(2e6, "cell/kg")), [1, 4], 20, covariates={"WT": 70}),
                        iiv={"k_c": 0.09}, error={"PGE2": pkpd.Proportional(cv=0.1),
                                                  "IL10": pkpd.Proportional(cv=0.1)})


def test_bad_designs_give_clear_errors():
    err = pkpd.Proportional(cv=0.1)
    g = Group(_dose(), [0.5, 1, 2, 6, 24], 32)
    with pytest.raises(PkpdError, match="5 samples per subject, more than the 4 allowed"):
        optimize_design(ORAL, g, error=err, space=DesignSpace(max_samples=4), **POP)
    with pytest.raises(PkpdError, match="sample at 0.5 is outside its window"):
        optimize_design(ORAL, g, error=err, space=DesignSpace(windows=(1, 120)), **POP)
    with pytest.raises(PkpdError, match="0.5 apart, closer than min_spacing = 1"):
        optimize_design(ORAL, g, error=err, space=DesignSpace(min_spacing=1.0), **POP)
    with pytest.raises(PkpdError, match="no output 'conc2'"):
        evaluate_design(ORAL, g, error={"conc2": err}, **POP)
    with pytest.raises(PkpdError, match="residual variance is 0"):
        evaluate_design(ORAL, Group(_dose(), [0, 1, 2, 6], 10), error=err, **POP)
    with pytest.raises(PkpdError, match="has no parameter 'Cl'. Did you mean 'CL'"):
        evaluate_design(ORAL, g, error=err, iiv={"Cl": 0.1})
    with pytest.raises(PkpdError, match="ED criterion needs prior"):
        optimize_design(ORAL, Group(_dose(), [1, 2, 24, 72], 32), error=err, criterion="ED", **POP)


def _independent_constraints(design, windows, min_spacing, max_samples):
    for g in design.groups:
        times = [t for _, t in g.samples]
        assert len(times) <= max_samples
        for t, (lo, hi) in zip(times, windows):
            assert lo <= t <= hi
        assert np.all(np.diff(times) >= min_spacing - 1e-9)


def test_optimised_times_raise_the_d_criterion_and_keep_every_constraint():
    start = Design([Group(_dose(), [1, 2, 24, 72], 32), Group(_dose(), [0.5, 6, 36, 110], 16)])
    windows = [(0.25, 2), (0.25, 12), (12, 48), (48, 120)]
    space = DesignSpace(max_samples=4, windows=windows, min_spacing=1.0)
    err = pkpd.Combined(sd=0.3, cv=0.1, convention="variance")
    opt = optimize_design(ORAL, start, error=err, space=space, **POP)
    assert opt.optimal_value > opt.initial_value + 0.5 and opt.efficiency > 1.05
    assert opt.optimal.log_det == pytest.approx(opt.optimal_value, rel=1e-9)
    # the optimised design, evaluated afresh, has the value the search reported
    again = evaluate_design(ORAL, opt.design, error=err, **POP)
    assert again.log_det == pytest.approx(opt.optimal_value, rel=1e-9)
    _independent_constraints(opt.design, windows, 1.0, 4)
    table = opt.table()
    assert list(table.columns[:3]) == ["group", "size", "dose"] and len(table) == 8
    assert (table["optimal_time"] >= table["window_low"]).all()
    assert (table["optimal_time"] <= table["window_high"]).all()


def test_ed_optimal_dose_within_its_range_and_not_worse_than_the_start():
    start = Group(_dose(40), [0.5, 4, 24, 72], 32)
    err = pkpd.Combined(sd=0.5, cv=0.1, convention="variance")
    space = DesignSpace(max_samples=4, windows=(0.25, 120), min_spacing=2.0, doses=(10, 100), grid_step=2.0)
    opt = optimize_design(ORAL, start, error=err, space=space, criterion="ED", prior={"CL": 0.3, "ka": 0.3},
                          n_prior=4, **POP)
    dose = opt.design.groups[0].regimen.administrations[0].dose.amount
    assert 10 <= dose <= 100 and opt.optimal_value > opt.initial_value
    # with an additive error part, a larger dose is more informative: the search goes to the top of the range
    assert dose == pytest.approx(100)
    _independent_constraints(opt.design, [(0.25, 120)] * 4, 2.0, 4)


def test_predicted_se_agree_with_simulation_and_reestimation():
    # individual data (no IIV): 8 subjects x 6 samples after 100 mg IV; pkpd.fit re-estimates each trial
    t = [0.5, 1, 2, 4, 8, 24]
    rows = []
    for i in range(8):
        rows.append({"ID": i + 1, "TIME": 0.0, "EVID": 1, "AMT": 100.0, "AMTU": "mg", "DV": np.nan})
        rows += [{"ID": i + 1, "TIME": x, "EVID": 0, "AMT": 0.0, "DV": 0.0} for x in t]
    err = pkpd.Proportional(cv=0.15)
    sse = pkpd.simulation_estimation("pk_1cmt_iv", pd.DataFrame(rows), error=err, estimate=["CL", "V"], n=60,
                                     seed=3, workers=1, progress=False)
    ev = evaluate_design("pk_1cmt_iv", Group(pkpd.Regimen.single(pkpd.Dose(100, "mg")), t, 8), error=err,
                         estimate=["CL", "V"])
    summary = sse.summary.set_index("name")
    for ours, theirs in (("CL", "CL"), ("V", "V"), ("cv", "conc.cv")):
        assert summary.loc[theirs, "empirical_se"] == pytest.approx(ev.se[ours], rel=0.2), ours
        assert summary.loc[theirs, "mean_se"] == pytest.approx(ev.se[ours], rel=0.1), ours


def test_design_plot_marks_initial_and_optimised_times():
    import matplotlib.pyplot as plt

    opt = optimize_design(ORAL, Group(_dose(), [1, 2, 24, 72], 32), error=pkpd.Proportional(cv=0.1),
                          space=DesignSpace(max_samples=4, windows=(0.25, 120), grid_step=2.0), **POP)
    fig = opt.plot()
    try:
        labels = [line.get_label() for line in fig.axes[0].lines]
        assert "initial times" in labels and "optimised times" in labels
        marked = next(line for line in fig.axes[0].lines if line.get_label() == "optimised times")
        assert list(marked.get_xdata()) == [t for _, t in opt.design.groups[0].samples]
    finally:
        plt.close(fig)


def test_an_empty_error_dict_names_the_outputs_to_give_error_models_for():
    """error={} gives no output an error model: the message says so and names the model's outputs, with an example
    (it said 'error must be an error model or a dict output -> error model; got {}', which an empty dict is)."""
    g = Group(_dose(), [0.5, 1, 2, 6, 24], 32)
    with pytest.raises(PkpdError) as info:
        evaluate_design(ORAL, g, error={}, **POP)
    assert str(info.value) == ("design: error is empty; give an error model for each sampled output of model "
                               "'pk_1cmt_oral' (its outputs: conc), e.g. error={'conc': pkpd.Proportional(cv=0.2)}")
