"""Dose-response scenarios (issue 6): reproducibility, TOML == Python, ED50 recovery, target attainment, bad input."""

from __future__ import annotations

import math
import textwrap

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

import pkpd  # noqa: E402
from pkpd.errors import DosingError, PkpdError, UnitError  # noqa: E402
from pkpd.metrics import Endpoint  # noqa: E402
from pkpd.scenarios import (  # noqa: E402
    Arm,
    GivenPopulation,
    LogNormalPopulation,
    Scenario,
    Target,
    dose_ranging_arms,
    fit_dose_response,
    load_scenario,
    run_scenario,
)

SEPSIS_TOML = """
[scenario]
name = "sepsis test"
model = "msc_sepsis"
seed = 42
times = {start = 0, stop = 72, step = 1}

[parameters]
k_d = 0.3

[population]
n = 12
omega = {e_max = 0.4, k_c = 0.3}
covariate_ranges = {WT = [50, 100]}

[arms.control]
control = true

[arms.single]
doses = [0.3e6, 1e6, 3e6, 10e6]
unit = "cell/kg"
start = 6
duration = 1

[arms.twice]
dose = 3e6
unit = "cell/kg"
count = 2
interval = 24

[endpoints.TNF_48]
output = "TNF"
metric = "change_from_untreated"
time = 48
relative = true

[endpoints.IL10_AUC]
output = "IL10"
metric = "auc"
start = 0
end = 72

[[targets]]
endpoint = "TNF_48"
op = "<="
value = -25
unit = "%"

[[targets]]
endpoint = "IL10_AUC"
op = ">="
value = 5
unit = "ng*h/mL"
"""


def sepsis_python() -> Scenario:
    return Scenario(
        pkpd.load_model("msc_sepsis"),
        arms=[Arm("control", control=True),
              *dose_ranging_arms("single", [0.3e6, 1e6, 3e6, 10e6], "cell/kg", start=6, duration=1),
              Arm("twice", pkpd.Dose(3e6, "cell/kg"), count=2, interval=24)],
        endpoints=[Endpoint("TNF", "change_from_untreated", time=48, relative=True, name="TNF_48"),
                   Endpoint("IL10", "auc", start=0, end=72, name="IL10_AUC")],
        targets=[Target("TNF_48", "<=", -25, "%"), Target("IL10_AUC", ">=", 5, "ng*h/mL")],
        population=LogNormalPopulation(12, omega={"e_max": 0.4, "k_c": 0.3}, covariate_ranges={"WT": (50, 100)}),
        params={"k_d": 0.3}, times=np.arange(0, 73.0), seed=42, name="sepsis test")


@pytest.fixture(scope="module")
def sepsis_result():
    return run_scenario(sepsis_python())


def _write(tmp_path, text, name="scenario.toml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


# --- reproducibility and TOML == Python -----------------------------------------------------------------------------
def test_a_run_is_reproducible_with_a_seed(sepsis_result):
    again = run_scenario(sepsis_python())
    pd.testing.assert_frame_equal(sepsis_result.table, again.table)
    pd.testing.assert_frame_equal(sepsis_result.population, again.population)
    other = run_scenario(sepsis_python(), seed=43)
    assert not np.allclose(other.population["e_max"], sepsis_result.population["e_max"])


def test_a_run_without_seed_records_the_seed_it_drew():
    sc = Scenario(pkpd.load_model("pk_1cmt_iv"), [Arm("a", pkpd.Dose(100, "mg"))], [Endpoint("conc", "cmax", end=24)],
                  population=LogNormalPopulation(5, omega={"CL": 0.3}))
    first = run_scenario(sc)
    pd.testing.assert_frame_equal(first.table, run_scenario(sc, seed=first.seed).table)


def test_the_same_scenario_from_toml_and_from_python_gives_identical_tables(tmp_path, sepsis_result):
    from_file = run_scenario(load_scenario(_write(tmp_path, SEPSIS_TOML)))
    for name in ("table", "summary", "attainment", "dose_response", "arms", "population"):
        pd.testing.assert_frame_equal(getattr(from_file, name), getattr(sepsis_result, name), obj=name)


def test_tidy_table_has_one_row_per_arm_subject_and_endpoint(sepsis_result):
    t = sepsis_result.table
    assert list(t.columns) == ["arm", "ID", "endpoint", "value", "unit"]
    assert len(t) == 6 * 12 * 2
    assert not t.duplicated(["arm", "ID", "endpoint"]).any()
    assert set(t.loc[t["endpoint"] == "IL10_AUC", "unit"]) == {"pg/mL*h"}


# --- endpoints, summaries, PTA --------------------------------------------------------------------------------------
def test_change_from_untreated_is_the_counterfactual_of_the_same_subject(sepsis_result):
    m = pkpd.load_model("msc_sepsis")
    pop = sepsis_result.population
    arm = next(a for a in sepsis_result.scenario.arms if a.name == "single: 3e6 cell/kg")
    params = {"k_d": 0.3, "e_max": pop["e_max"].to_numpy() * 1.0, "k_c": pop["k_c"].to_numpy()}
    t = np.arange(0, 73.0)
    cov = {"WT": pop["WT"].to_numpy()}
    treated = pkpd.simulate(m, arm.regimen, t, params=params, covariates=cov)["TNF"][:, 48]
    untreated = pkpd.simulate(m, None, t, params=params, covariates=cov)["TNF"][:, 48]
    got = sepsis_result.table.query("arm == 'single: 3e6 cell/kg' and endpoint == 'TNF_48'")["value"].to_numpy()
    np.testing.assert_allclose(got, 100 * (treated - untreated) / untreated, rtol=1e-9)
    control = sepsis_result.table.query("arm == 'control' and endpoint == 'TNF_48'")["value"]
    assert np.all(control == 0.0)


def test_summary_gives_median_and_5_95_percentiles_per_arm(sepsis_result):
    row = sepsis_result.summary.query("arm == 'single: 10e6 cell/kg' and endpoint == 'IL10_AUC'").iloc[0]
    v = sepsis_result.table.query("arm == 'single: 10e6 cell/kg' and endpoint == 'IL10_AUC'")["value"]
    assert row["median"] == pytest.approx(np.median(v))
    assert row["p5"] == pytest.approx(np.percentile(v, 5)) and row["p95"] == pytest.approx(np.percentile(v, 95))
    assert row["n"] == 12


def test_probability_of_target_attainment_counts_subjects_in_the_target_unit(sepsis_result):
    att = sepsis_result.attainment.set_index(["arm", "target"])
    for arm in ("single: 1e6 cell/kg", "twice"):
        v = sepsis_result.table.query(f"arm == '{arm}' and endpoint == 'IL10_AUC'")["value"].to_numpy()
        row = att.loc[(arm, "IL10_AUC >= 5 ng*h/mL")]
        assert row["n_met"] == np.count_nonzero(v >= 5000.0)  # 5 ng*h/mL = 5000 pg/mL*h
        assert row["ci_low"] <= row["probability"] <= row["ci_high"]


def test_pta_is_exact_for_given_subjects():
    # AUC of a 1-compartment bolus = dose / CL: with CL = 1..10 L/h and 100 mg, AUC >= 25 mg*h/L for CL <= 4
    sc = Scenario(pkpd.load_model("pk_1cmt_iv"), [Arm("100 mg", pkpd.Dose(100, "mg"))],
                  [Endpoint("conc", "auc", end=2000, method="log-down", name="AUC")],
                  [Target("AUC", ">=", 24.99, "mg*h/L")], population=GivenPopulation(params={"CL": np.arange(1.0, 11)}))
    row = run_scenario(sc).attainment.iloc[0]
    assert row["n_met"] == 4 and row["probability"] == 0.4


def test_lowest_dose_reaching_a_probability(sepsis_result):
    low = sepsis_result.lowest_dose(0.5)
    assert set(low.columns) == {"group", "target", "dose", "dose_unit", "probability"}
    row = low.query("target == 'IL10_AUC >= 5 ng*h/mL' and group == '1 dose at 6 h, 1-h infusion'").iloc[0]
    att = sepsis_result.attainment.query("target == 'IL10_AUC >= 5 ng*h/mL' and group == '1 dose at 6 h, 1-h "
                                         "infusion' and probability >= 0.5")
    assert row["dose"] == (att["dose"].min() if len(att) else row["dose"])


# --- dose-response ----------------------------------------------------------------------------------------------------
def test_dose_response_fit_recovers_ed50_within_its_ci():
    rng = np.random.default_rng(2024)
    d = np.repeat([0.0, 0.3, 1, 3, 10, 30], 15)
    y = 2.0 + 30.0 * d / (2.5 + d) + rng.normal(0, 1.5, d.size)
    fit = fit_dose_response(d, y)
    assert fit.ed50_ci[0] < 2.5 < fit.ed50_ci[1]
    assert fit.ed50_ci[1] / fit.ed50_ci[0] < 2.0  # and the interval is informative
    assert fit.ed90 == pytest.approx(9 * fit.ed50)
    assert fit.ed90_ci[0] < 22.5 < fit.ed90_ci[1]
    assert fit.converged and fit.message == ""


def test_sigmoid_dose_response_recovers_ed50_and_hill():
    rng = np.random.default_rng(7)
    d = np.repeat([0.0, 0.5, 1, 2, 4, 8, 16], 12)
    y = 10 - 8 * d**2 / (3.0**2 + d**2) + rng.normal(0, 0.4, d.size)
    fit = fit_dose_response(d, y, sigmoid=True)
    assert fit.ed50_ci[0] < 3.0 < fit.ed50_ci[1]
    assert abs(fit.hill - 2.0) < 3 * fit.se["hill"]
    assert fit.ed90 == pytest.approx(fit.ed50 * 9 ** (1 / fit.hill))


def test_ed50_interval_has_nominal_coverage():
    d = np.repeat([0.0, 1, 3, 10, 30, 100], 8)
    hits = 0
    for seed in range(100):
        y = 5 + 40 * d / (8 + d) + np.random.default_rng(seed).normal(0, 3, d.size)
        lo, hi = fit_dose_response(d, y).ed50_ci
        hits += lo < 8 < hi
    assert 88 <= hits <= 100  # 95 % nominal; binomial 99 % range for 100 replicates


def test_scenario_dose_response_is_fitted_per_schedule_with_controls_at_dose_zero(sepsis_result):
    dr = sepsis_result.dose_response
    assert set(dr["group"]) == {"1 dose at 6 h, 1-h infusion"}  # "twice" has one dose level only
    fit = sepsis_result.fits[("1 dose at 6 h, 1-h infusion", "IL10_AUC")]
    assert fit.n == 5 * 12 and fit.dose_range == (0.3e6, 10e6)
    assert fit.ed50_ci[0] < fit.ed50 < fit.ed50_ci[1]


def test_flat_response_is_reported_not_raised():
    d = np.repeat([1.0, 2, 4, 8], 5)
    fit = fit_dose_response(d, np.full(d.size, 3.0))
    assert fit.message  # says why the intervals are not available or not to be trusted


# --- bad input ------------------------------------------------------------------------------------------------------
def _pk(**kw):
    base = dict(model=pkpd.load_model("pk_1cmt_iv"), arms=[Arm("a", pkpd.Dose(100, "mg"))],
                endpoints=[Endpoint("conc", "auc", end=24)])
    return Scenario(**(base | kw))


def test_endpoint_on_an_unknown_output_is_an_error():
    with pytest.raises(PkpdError, match="model 'pk_1cmt_iv' has no output 'cnc'. Did you mean 'conc'"):
        _pk(endpoints=[Endpoint("cnc", "cmax")])


def test_target_on_an_unknown_endpoint_is_an_error():
    with pytest.raises(PkpdError, match="no endpoint 'conc_AUC' in scenario .* Did you mean 'conc_AUC_to_24'"):
        _pk(targets=[Target("conc_AUC", ">=", 10)])


def test_arm_with_no_doses_is_an_error():
    with pytest.raises(DosingError, match="arm 'a': has no dose; give dose=Dose"):
        Arm("a")
    with pytest.raises(DosingError, match=r"arm 'a': has no doses \(count=0\)"):
        Arm("a", pkpd.Dose(1, "mg"), count=0)
    with pytest.raises(DosingError, match="arm 'a': the dose is 0 mg, so the arm has no doses"):
        Arm("a", pkpd.Dose(0, "mg"))
    with pytest.raises(DosingError, match="count 3 needs interval"):
        Arm("a", pkpd.Dose(1, "mg"), count=3)


def test_arm_without_dose_in_a_scenario_file_names_file_and_section(tmp_path):
    path = _write(tmp_path, """
        [scenario]
        model = "pk_1cmt_iv"
        [arms.high]
        unit = "mg"
        [endpoints.c]
        output = "conc"
        metric = "cmax"
        end = 24
        """)
    with pytest.raises(DosingError, match=r"scenario.toml \[arms.high\]: has no dose; give dose = AMOUNT"):
        load_scenario(path)


def test_threshold_in_the_wrong_unit_is_a_unit_error():
    with pytest.raises(UnitError, match="threshold 2 h cannot be compared with output 'conc' in mg/L"):
        _pk(endpoints=[Endpoint("conc", "time_above", threshold=2, threshold_unit="h", end=24)])
    with pytest.raises(UnitError, match=r"value 5 h cannot be compared with endpoint 'conc_AUC_to_24' in mg/L\*h"):
        _pk(targets=[Target("conc_AUC_to_24", ">=", 5, "h")])


def test_threshold_in_a_convertible_unit_is_converted():
    sc = _pk(endpoints=[Endpoint("conc", "time_above", threshold=1000, threshold_unit="ng/mL", end=24, name="T")],
             targets=[Target("T", ">=", 60, "min")])
    res = run_scenario(sc)
    t_above = res.table["value"].iloc[0]
    assert t_above == pytest.approx(math.log(100 / 32) / (2.8 / 32), abs=0.2)
    assert res.attainment["n_met"].iloc[0] == 1


def test_empty_population_is_an_error():
    with pytest.raises(PkpdError, match="empty population cannot be simulated"):
        LogNormalPopulation(0)
    with pytest.raises(PkpdError, match="empty population cannot be simulated"):
        GivenPopulation(params={"CL": np.array([])})


def test_empty_population_in_a_scenario_file_names_file_and_section(tmp_path):
    path = _write(tmp_path, """
        [scenario]
        model = "pk_1cmt_iv"
        [population]
        n = 0
        [arms.a]
        dose = 1
        unit = "mg"
        [endpoints.c]
        output = "conc"
        metric = "cmax"
        end = 24
        """)
    with pytest.raises(PkpdError, match=r"\[population\]: population: n must be an integer >= 1"):
        load_scenario(path)


def test_per_kg_arm_needs_weights_in_the_population():
    with pytest.raises(DosingError, match="per kg, but the population gives no body weight"):
        Scenario(pkpd.load_model("msc_salvadori"), [Arm("a", pkpd.Dose(1e6, "cell/kg"))],
                 [Endpoint("IL10", "cmax", end=24)], population=LogNormalPopulation(3))


def test_dose_in_a_unit_the_model_cannot_take_is_an_error():
    with pytest.raises(DosingError, match="dose unit 'mg' does not match dose target 'iv' of model 'msc_salvadori'"):
        Scenario(pkpd.load_model("msc_salvadori"), [Arm("a", pkpd.Dose(1, "mg"))], [Endpoint("IL10", "cmax", end=24)])


def test_unknown_key_in_a_scenario_file_suggests_the_right_one(tmp_path):
    path = _write(tmp_path, """
        [scenario]
        model = "pk_1cmt_iv"
        [arms.a]
        dose = 1
        unit = "mg"
        intervall = 12
        [endpoints.c]
        output = "conc"
        metric = "cmax"
        """)
    with pytest.raises(PkpdError, match=r"\[arms.a\]: unknown key 'intervall'. Did you mean 'interval'"):
        load_scenario(path)


def test_a_scenario_file_cannot_execute_code(tmp_path):
    path = _write(tmp_path, """
        [scenario]
        model = "pk_1cmt_iv"
        [arms.a]
        dose = "__import__('os').system('echo hacked')"
        unit = "mg"
        [endpoints.c]
        output = "conc"
        metric = "cmax"
        end = 1
        """)
    with pytest.raises(DosingError, match="amount must be a finite number"):
        load_scenario(path)


def test_unknown_scenario_parameter_is_an_error():
    with pytest.raises(PkpdError, match="has no parameter 'cl'. Did you mean 'CL'"):
        _pk(params={"cl": 3.0})


# --- figures: every axis labelled, numeric axes with units ------------------------------------------------------
def test_every_scenario_figure_labels_its_axes_with_units(sepsis_result):
    import matplotlib.pyplot as plt

    from pkpd import plots

    figures = [plots.plot_time_course(sepsis_result), plots.plot_exposure(sepsis_result),
               plots.plot_dose_response(sepsis_result), plots.plot_target_attainment(sepsis_result)]
    try:
        for fig in figures:
            for ax in fig.axes:
                for label in (ax.get_xlabel(), ax.get_ylabel()):
                    assert label, f"unlabelled axis in {fig}"
                    if label not in ("Arm", "Parameter"):  # categorical axes have names, not units
                        assert label.endswith("]") and "[" in label, label
    finally:
        for fig in figures:
            plt.close(fig)


def test_arm_colours_are_the_same_in_every_figure(sepsis_result):
    import matplotlib.pyplot as plt
    from matplotlib.colors import to_hex

    from pkpd import plots

    colours = plots.scenario_colors(sepsis_result)
    fig = plots.plot_time_course(sepsis_result)
    try:
        drawn = {line.get_label(): to_hex(line.get_color()) for line in fig.axes[0].get_lines()}
        for arm, colour in colours.items():
            assert drawn[arm] == colour
    finally:
        plt.close(fig)


def test_virtual_patients_from_a_virtual_population_plug_into_a_scenario():
    from pkpd.scenarios import VirtualPatients

    table = pkpd.virtual_population(30, {"WT": pkpd.Uniform(50, 100)}, seed=3)
    patients = VirtualPatients(table, iiv=pkpd.IIV({"k_c": 0.09}),
                               effects=[pkpd.CovariateEffect("V_p", "WT", "power", 1.0, ref=70)])
    sc = Scenario(pkpd.load_model("msc_salvadori"), [Arm("2e6/kg", pkpd.Dose(2e6, "cell/kg"))],
                  [Endpoint("IL10", "cmax", end=168)], population=patients, seed=1)
    first, again = run_scenario(sc), run_scenario(sc)
    pd.testing.assert_frame_equal(first.table, again.table)
    pop = first.population
    np.testing.assert_allclose(pop["WT"], table["WT"])
    np.testing.assert_allclose(pop["V_p"], 1000.0 * table["WT"] / 70)
    assert pop["k_c"].std() > 0
