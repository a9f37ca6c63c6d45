"""Rules of scenario files that the mutation audit (issue 20) found unguarded, each against an answer written out
in the test.
Section "seed 39" (the independent sample of seed 39, 40 of 3309, issue 20): the dose-response table keeps its
documented columns when no schedule has 3 dose levels (one arm; 2 levels), and its "converged" column is the fit's
own boolean flag (True for exact Emax data, ED50 10 and ED90 90 mg).
Section "seed 40" (the independent sample of seed 40, 40 of 3309, issue 20): dose levels take a power of ten from a
largest level of 1e4 on (3e3, 10e3 mg), several covariate effects are listed separated by commas, a plain Emax fit's
ED90 interval is 9 times its ED50 interval even where the half-width is capped, the bootstrap of a median time to
event resamples every subject (2 subjects: the interval spans their own medians) and the clinical table holds each
arm's dose, and a scenario file without [uncertainty] may simulate up to the limit of 10,000,000 subject-arms (a
defect: it was refused from 5,000,001, as if a replicate trial ran).
Section "seed 41" (the independent sample of seed 41, 40 of 3309, issue 20): without a covariance (a response of
exactly 2 at every dose) the ED50 and ED90 intervals are (NaN, NaN) and shown so, and the band of an Emax curve is
the limit of the delta method, quietly, with an ED50 of -0.0 (the step of an ED50 of 0, also for a Hill coefficient
of 0.5: a defect, it was NaN) and where D / ED50 overflows to infinity (ED50 5e-324; 1e300 against ED50 1e-300: a
defect, numpy warned of an overflow).
Section "seed 42" (the independent sample of seed 42, 40 of 3316, issue 20): fixed covariates are listed separated
by commas, the flatness F-test uses RSS0 - RSS1 (exact p = 1 / (1 + F) on (2, 2) degrees of freedom), the notebook
view shows endpoint summaries to 4 significant digits (100 / 3 = 33.33), a cluster run's bar counts subjects (12/12,
not 3 chunks) and the errors of the [scenario.times] keys name that section.
Section "seed 44" (the independent sample of seed 44, 40 of 3316, issue 20): an ED50 at the highest or lowest dose
tested (to rounding) is not called an extrapolation (a defect: exact data with ED50 100 mg, fitted as
100.00000000000004, were), the doses tested are a closed range with a 1e-9 tolerance, an arm's table row keeps its dose
unit, a response that dips and recovers is fitted at its least-squares optimum (a grid of ED50s with E0 and Emax
solved linearly) and an arm whose subjects all failed has an attainment of NaN.
Section "seed 45" (the independent sample of seed 45, 40 of 3330, issue 20): dose-ranging arms keep the dose target
asked for (IV boluses of 32 and 64 mg into V = 32 L: Cmax 1 and 2 mg/L), a scenario takes seed 0, and the flatness
F-test rejects only for a p-value below alpha (F = 1 on (2, 2) degrees of freedom, p = 1 / (1 + F) = 0.5).
Section "seed 46" (the independent sample of seed 46, 40 of 3330, issue 20): the clinical table holds a clinical
endpoint listed after a non-clinical one (Cmax, then flares at 0.2/h counted to 2 h: 0.4).
Section "seed 48" (the independent sample of seed 48, 40 of 3330, issue 20): an arm given both dose and doses is
refused with the whole message, and the lowest-dose tables (of a run and of its replicate trials) give a NaN row for a
schedule whose simulations all failed (a defect: pandas' "Encountered all NA values").
Section "seed 49" (the independent sample of seed 49, 40 of 3336, issue 20): trial_success given to run_scenario
overrides the scenario's (a PTA of 0.5 in each of 2 trials: p_success 1 at 0.5, 0 at the scenario's 0.8).
Section "seed 50" (the independent sample of seed 50, 40 of 3336, issue 20): a dose-response fit refuses a negative
dose with the whole message (-0.0 is a control), and the lowest dose is the first whose PTA is at least the
probability asked, equal included (PTA exactly 0.5 at 100 mg, 1 at 300 mg)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pkpd.scenarios import scenario_from_dict

BASE = {"arms": {"a": {"dose": 100, "unit": "mg"}}, "endpoints": {"c": {"output": "conc", "metric": "cmax", "end": 24}}}


@pytest.mark.parametrize(
    ("times", "expected"),
    [
        ({"stop": 24, "step": 6}, [0.0, 6.0, 12.0, 18.0, 24.0]),
        ({"start": 0, "stop": 0.3, "step": 0.1}, [0.0, 0.1, 0.2, 0.3]),  # 0.3 / 0.1 = 2.9999999999999996 steps
        ({"start": 0, "stop": 10, "step": 4}, [0.0, 4.0, 8.0]),  # the last step would pass stop
        ({"stop": 3}, [0.0, 1.0, 2.0, 3.0]),  # step 1 by default
    ],
)
def test_the_time_grid_runs_from_start_to_stop_in_steps(times, expected):
    sc = scenario_from_dict({"scenario": {"model": "pk_1cmt_iv", "times": times}, **BASE})
    np.testing.assert_allclose(sc.times, expected, rtol=1e-12, atol=1e-12)


def test_a_dose_response_fit_predicts_its_emax_curve():
    """Exact sigmoid-Emax data (E0 2, Emax 10, ED50 30, h 2): the fit recovers them and predict is the formula
    E0 + Emax D^h / (ED50^h + D^h), 0 dose included."""
    from pkpd.scenarios import fit_dose_response

    doses = np.array([0.0, 5.0, 10.0, 20.0, 30.0, 50.0, 100.0, 300.0])
    curve = 2.0 + 10.0 * doses**2 / (30.0**2 + doses**2)
    fit = fit_dose_response(np.repeat(doses, 2), np.repeat(curve, 2), sigmoid=True)
    for got, want in ((fit.e0, 2.0), (fit.emax, 10.0), (fit.ed50, 30.0), (fit.hill, 2.0)):
        assert got == pytest.approx(want, rel=1e-5)
    d = np.array([0.0, 15.0, 45.0, 1000.0])
    np.testing.assert_allclose(
        fit.predict(d), fit.e0 + fit.emax * d**fit.hill / (fit.ed50**fit.hill + d**fit.hill), rtol=1e-12
    )


def test_a_time_grid_of_exactly_the_largest_size_is_accepted_and_one_more_is_refused():
    from pkpd.errors import PkpdError
    from pkpd.scenarios import MAX_SCENARIO_TIMES

    ok = scenario_from_dict({"scenario": {"model": "pk_1cmt_iv", "times": {"stop": MAX_SCENARIO_TIMES - 1}}, **BASE})
    assert ok.times.size == MAX_SCENARIO_TIMES
    with pytest.raises(PkpdError, match="output times"):
        scenario_from_dict({"scenario": {"model": "pk_1cmt_iv", "times": {"stop": MAX_SCENARIO_TIMES}}, **BASE})


def test_the_interval_of_an_expected_count_is_clipped_at_zero_not_above_it():
    """Flares at a constant hazard r0 = 0.2/h, counted to 2 h: 0.4 for each of 5 identical subjects, so the mean is
    0.4 with a zero-width interval (0.4, 0.4); a count's interval is clipped at 0 only (not at 1, as probabilities
    are), so it keeps 0.4."""
    from pathlib import Path

    import pkpd
    from pkpd.metrics import Endpoint
    from pkpd.scenarios import Arm, LogNormalPopulation, Scenario, run_scenario

    model = pkpd.load_model(Path(__file__).resolve().parents[1] / "data" / "models" / "endpoints_exposure.toml")
    sc = Scenario(
        model,
        arms=[Arm("control", control=True)],
        times=np.linspace(0, 4, 5),
        population=LogNormalPopulation(5),
        endpoints=[Endpoint("flares", "expected_count", time=2)],
    )
    row = run_scenario(sc, seed=1).clinical.set_index("endpoint").loc["flares_count_2"]
    assert row["n"] == 5
    for key in ("value", "ci_low", "ci_high"):
        assert row[key] == pytest.approx(0.2 * 2, rel=1e-7), key


# ------------------------------------------------------------------------------------------------ round 2 (issue 20)
def _flares_result():
    from pathlib import Path

    import pkpd
    from pkpd.metrics import Endpoint
    from pkpd.scenarios import Arm, LogNormalPopulation, Scenario, run_scenario

    model = pkpd.load_model(Path(__file__).resolve().parents[1] / "data" / "models" / "endpoints_exposure.toml")
    sc = Scenario(
        model,
        arms=[Arm("control", control=True), Arm("high", dose=pkpd.Dose(50, "mg"))],
        times=np.linspace(0, 4, 5),
        population=LogNormalPopulation(3),
        endpoints=[Endpoint("flares", "expected_count", time=2), Endpoint("conc", "cmax", end=4)],
    )
    return run_scenario(sc, seed=1)


def test_the_clinical_table_has_its_documented_columns_and_one_row_per_arm_and_clinical_endpoint():
    """ScenarioResult.clinical is documented as ``arm, group, dose, dose_unit, endpoint, unit, description, value,
    ci_low, ci_high, n``; 2 arms x 1 clinical endpoint (cmax is not clinical) = 2 rows, each with its endpoint's
    unit (an expected count is a number: "1")."""
    res = _flares_result()
    documented = "arm, group, dose, dose_unit, endpoint, unit, description, value, ci_low, ci_high, n".split(", ")
    assert list(res.clinical.columns) == documented
    assert len(res.clinical) == 2
    assert list(res.clinical["arm"]) == ["control", "high"]
    assert list(res.clinical["group"]) == ["untreated", "1 dose at 0 h, bolus"]  # Arm.schedule, in words
    assert list(res.clinical["unit"]) == ["1", "1"]
    assert res.units["flares_count_2"] == "1"


def test_the_dose_response_table_reports_each_fit_and_its_flags_under_the_documented_columns():
    """Documented columns; one row for the one schedule with 3 dose levels (1, 3, 10 mg), n = 3 levels x 8 subjects.
    Cmax of a bolus is D/V, linear in dose, so an Emax curve has no ED50 among (or near) the doses: the interval of
    each ED is unbounded and both flags must read "ill-determined", as the fit's own flags do."""
    import pkpd
    from pkpd.metrics import Endpoint

    sc = pkpd.Scenario(
        pkpd.load_model("pk_1cmt_iv"),
        arms=pkpd.dose_ranging_arms("d", [1, 3, 10], "mg"),
        endpoints=[Endpoint("conc", "cmax", end=24)],
        population=pkpd.LogNormalPopulation(8, omega={"V": 0.2}),
        times=np.linspace(0, 24, 25),
        seed=2,
    )
    res = pkpd.run_scenario(sc)
    documented = (
        "group, endpoint, unit, dose_unit, model, E0, Emax, ED50, ED50_low, ED50_high, ED90, ED90_low, ED90_high, "
        "hill, n, converged, ED50_flag, ED90_flag, note"
    ).split(", ")
    assert list(res.dose_response.columns) == documented
    assert len(res.dose_response) == 1 and len(res.fits) == 1
    row = res.dose_response.iloc[0]
    fit = next(iter(res.fits.values()))
    assert row["n"] == 3 * 8
    assert row["model"] == "Emax"  # sigmoid is False
    assert row["ED90"] == pytest.approx(9 * row["ED50"], rel=1e-12)  # ED90 = ED50 9^(1/h), h = 1
    for col, flag in (("ED50_flag", fit.ed50_flag), ("ED90_flag", fit.ed90_flag)):
        assert row[col] == flag == "ill-determined", col


def test_the_sensitivity_is_taken_at_the_typical_subject_with_its_covariates():
    """iv_allometric: CL = TVCL (WT/70)^0.75; the patients weigh 20, 35 and 100 kg, so the typical subject (median)
    weighs 35 kg: k = 3 * 0.5^0.75 / 30 per h. AUC(0-24) of a bolus is D/V (1 - e^{-kT})/k, so its normalised
    sensitivity to TVCL (the same as to k) is -1 + kT e^{-kT} / (1 - e^{-kT}) (-0.549 at 35 kg; -0.761 at the
    model's default 70 kg)."""
    from pathlib import Path

    import pandas as pd

    import pkpd
    from pkpd.metrics import Endpoint
    from pkpd.scenarios import Arm, Scenario, VirtualPatients, run_scenario

    model = pkpd.load_model(Path(__file__).resolve().parents[1] / "data" / "models" / "iv_allometric.toml")
    sc = Scenario(
        model,
        arms=[Arm("d", dose=pkpd.Dose(100, "mg"))],
        endpoints=[Endpoint("conc", "auc", end=24)],
        population=VirtualPatients(pd.DataFrame({"WT": [20.0, 35.0, 100.0]})),
        times=np.linspace(0, 24, 2401),
        sensitivity_arm="d",
        sensitivity_parameters=["TVCL"],
    )
    assert sc.sensitivity_parameters == ("TVCL",)
    res = run_scenario(sc, seed=1)
    table = res.sensitivity.table
    assert list(table["parameter"]) == ["TVCL"]
    kt = 3.0 * 0.5**0.75 / 30.0 * 24.0
    expected = -1.0 + kt * math.exp(-kt) / (1.0 - math.exp(-kt))
    assert table["sensitivity"].iloc[0] == pytest.approx(expected, rel=1e-4)


def test_virtual_patients_apply_covariate_effects_given_as_any_iterable():
    """The effects are stored as a tuple, so a generator is not used up by the check before the sampling: CL of each
    patient is 2.8 (WT/70)^0.75."""
    from pathlib import Path

    import pandas as pd

    import pkpd
    from pkpd.scenarios import VirtualPatients

    model = pkpd.load_model(Path(__file__).resolve().parents[1] / "data" / "models" / "pk_1cmt_iv_covariates.toml")
    wt = np.array([35.0, 70.0, 140.0])
    effects = (e for e in [pkpd.CovariateEffect("CL", "WT", "power", 0.75, ref=70)])
    patients = VirtualPatients(pd.DataFrame({"WT": wt}), effects=effects)
    assert isinstance(patients.effects, tuple) and len(patients.effects) == 1
    for _ in range(2):
        params, covs = patients.sample(model, np.random.default_rng(0))
        np.testing.assert_allclose(params["CL"], 2.8 * (wt / 70.0) ** 0.75, rtol=1e-12)
        np.testing.assert_array_equal(covs["WT"], wt)


def test_the_ed_flags_name_an_interval_wider_than_100_fold_and_keep_an_ed_at_the_lowest_dose():
    """The documented flag values: an interval spanning more than ILL_DETERMINED_RATIO (100)-fold is
    "ill-determined"; an ED at the lowest dose within the 1e-9 rounding tolerance is not extrapolated, one just below
    it is."""
    from pkpd.scenarios import ILL_DETERMINED_RATIO, _ed_flag

    assert ILL_DETERMINED_RATIO == 100.0
    assert _ed_flag(10.0, (1.0, 101.0), 1.0, 100.0, False) == "ill-determined"
    assert _ed_flag(10.0, (1.0, 99.0), 1.0, 100.0, False) == ""
    assert _ed_flag(10.0, (math.nan, 20.0), 1.0, 100.0, False) == "ill-determined"
    edge = 2.0 * (1 - 1e-9)
    assert _ed_flag(edge, (1.0, 4.0), 2.0, 8.0, False) == ""
    assert _ed_flag(edge * (1 - 1e-9), (1.0, 4.0), 2.0, 8.0, False) == "extrapolated"
    assert _ed_flag(8.0 * (1 + 1e-9), (4.0, 16.0), 2.0, 8.0, False) == ""
    assert _ed_flag(5.0, (1.0, 4.0), 2.0, 8.0, True) == "flat"


def test_the_hill_coefficient_stays_at_its_lower_bound_of_0_1():
    """Exact sigmoid-Emax data with h = 0.05 (E0 0, Emax 10, ED50 30): fit_dose_response bounds h to [0.1, 10]
    (documented), so the fit stops at the bound h = 0.1 rather than the data's 0.05."""
    from pkpd.scenarios import fit_dose_response

    doses = np.array([0.0, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0])
    resp = 10.0 * doses**0.05 / (30.0**0.05 + doses**0.05)
    fit = fit_dose_response(np.repeat(doses, 2), np.repeat(resp, 2), sigmoid=True)
    assert fit.hill == pytest.approx(0.1, abs=1e-9)


def test_a_scenario_file_without_n_trials_counts_the_default_200_trials_against_the_size_limit(tmp_path):
    """[uncertainty] without n_trials means 200 trials (documented). 50,000 subjects in 1 arm are 50,000
    subject-arms, under MAX_SCENARIO_RUNS (10,000,000), but 201 runs of them (the nominal trial and 200 replicates)
    are 10,050,000: the file is refused, naming the 200 trials; with n_trials = 49 (50 runs, 2,500,000) it loads."""
    import pandas as pd

    import pkpd
    from pkpd.errors import PkpdError
    from pkpd.scenarios import MAX_SCENARIO_RUNS, load_scenario

    assert MAX_SCENARIO_RUNS == 10_000_000
    t = np.array([0.5, 1, 2, 4, 8, 12, 24])
    rows = []
    for sid in (1, 2):
        rows += [{"ID": sid, "TIME": 0.0, "EVID": 1, "AMT": 100.0, "AMTU": "mg", "DV": np.nan}]
        conc = 100 / 32 * np.exp(-2.8 / 32 * t) * (1 + 0.05 * (-1) ** np.arange(t.size) * sid)
        rows += [{"ID": sid, "TIME": x, "EVID": 0, "AMT": 0.0, "DV": c} for x, c in zip(t, conc)]
    fit = pkpd.fit(
        pkpd.load_model("pk_1cmt_iv"),
        pd.DataFrame(rows),
        estimate=["CL", "V"],
        error={"conc": pkpd.Proportional(cv=0.1)},
    )
    fit.save(tmp_path / "fit.json")
    text = """
[scenario]
model = "pk_1cmt_iv"
times = {start = 0, stop = 24, step = 1}
[population]
n = 50000
[arms.d]
dose = 100
unit = "mg"
[endpoints.cmax]
output = "conc"
metric = "cmax"
end = 24
[uncertainty]
from = "fit.json"
"""
    (tmp_path / "default.toml").write_text(text)
    with pytest.raises(PkpdError, match=r"\[uncertainty\]: 200 trials x 50,000 subject-arms, more than"):
        load_scenario(tmp_path / "default.toml")
    (tmp_path / "fewer.toml").write_text(text + "n_trials = 49\n")
    assert load_scenario(tmp_path / "fewer.toml").n_trials == 49


def test_a_cluster_run_passes_its_progress_choice_to_the_task_runner(monkeypatch):
    """run_scenario(client=..., progress=False) must not show a bar: the choice reaches pkpd._parallel.map_tasks.
    The spy runs the tasks locally, so the tables equal those of the local run."""
    import pkpd
    import pkpd._parallel as parallel
    from pkpd.metrics import Endpoint

    real = parallel.map_tasks
    seen = []

    def spy(fn, payloads, **kwargs):
        seen.append(kwargs.get("progress", "not given"))
        return real(fn, payloads, **(kwargs | {"client": None, "progress": False}))

    monkeypatch.setattr(parallel, "map_tasks", spy)
    monkeypatch.setattr(parallel, "check_client", lambda client: None)
    sc = pkpd.Scenario(
        pkpd.load_model("pk_1cmt_iv"),
        arms=pkpd.dose_ranging_arms("d", [10, 30], "mg"),
        endpoints=[Endpoint("conc", "cmax", end=24)],
        population=pkpd.LogNormalPopulation(6, omega={"V": 0.2}),
        times=np.linspace(0, 24, 25),
        seed=3,
    )
    local = pkpd.run_scenario(sc)
    for choice in (False, True):
        remote = pkpd.run_scenario(sc, client=object(), progress=choice, chunk_size=4)
        assert seen[-1] is choice
        np.testing.assert_array_equal(remote.table["value"], local.table["value"])


def test_a_log_normal_population_describes_its_variability_and_covariates_in_one_line():
    """The line reports print: subjects, the SD of log of each varying parameter, fixed and uniform covariates."""
    from pkpd.scenarios import LogNormalPopulation

    pop = LogNormalPopulation(
        100, omega={"CL": 0.3, "V": 0.25}, covariates={"WT": 70}, covariate_ranges={"AGE": (20, 60)}
    )
    assert pop.describe() == (
        "100 virtual subjects; log-normal IIV (omega): CL 0.3, V 0.25; covariates WT = 70; uniform AGE in [20, 60]"
    )
    assert LogNormalPopulation(1).describe() == "1 virtual subject; no inter-individual variability"


@pytest.mark.parametrize(
    ("times", "message"),
    [
        ("{stop = 24, step = 0}", "step must be a finite number > 0; got 0"),
        ("{stop = 24, step = -2.5}", "step must be a finite number > 0; got -2.5"),
        ('{start = "0", stop = 24}', "start must be a finite number; got '0'"),
        ("{stop = inf}", "stop must be a finite number; got inf"),
    ],
)
def test_a_bad_time_grid_is_refused_naming_the_file_the_section_and_the_key(tmp_path, times, message):
    """A scenario file's error says where the problem is: the file, the [scenario.times] table and the key."""
    from pkpd.errors import PkpdError
    from pkpd.scenarios import load_scenario

    path = tmp_path / "grid.toml"
    path.write_text(
        f'[scenario]\nmodel = "pk_1cmt_iv"\ntimes = {times}\n[arms.a]\ndose = 100\nunit = "mg"\n'
        '[endpoints.c]\noutput = "conc"\nmetric = "cmax"\nend = 24\n'
    )
    with pytest.raises(PkpdError) as err:
        load_scenario(path)
    assert str(err.value) == f"{path} [scenario.times]: {message}"


def test_output_times_with_a_missing_entry_are_refused_as_a_scenario_error():
    """A time given as None is not a number: the scenario's own error (not numpy's TypeError) names it."""
    from pkpd.errors import PkpdError

    with pytest.raises(PkpdError) as err:
        scenario_from_dict({"scenario": {"model": "pk_1cmt_iv", "times": [0, None, 24]}, **BASE}, file="s.toml")
    assert str(err.value) == (
        "s.toml: scenario 'scenario': times must be finite and strictly increasing; got [0, None, 24]"
    )


def test_a_bad_time_grid_in_a_scenario_given_as_a_dict_is_placed_in_the_scenario_not_in_a_file_named_none():
    from pkpd.errors import PkpdError

    with pytest.raises(PkpdError) as err:
        scenario_from_dict({"scenario": {"model": "pk_1cmt_iv", "times": {"stop": 24, "step": 0}}, **BASE})
    assert str(err.value) == "scenario [scenario.times]: step must be a finite number > 0; got 0"


@pytest.mark.parametrize(("times", "shown"), [([0, "1h", 24], "[0, '1h', 24]"), ([[0, 1], [2]], "[[0, 1], [2]]")])
def test_output_times_that_are_not_numbers_are_refused_naming_the_file(times, shown):
    """A time written with its unit, or a ragged list, is the file's error (not numpy's ValueError)."""
    from pkpd.errors import PkpdError

    with pytest.raises(PkpdError) as err:
        scenario_from_dict({"scenario": {"model": "pk_1cmt_iv", "times": times}, **BASE}, file="s.toml")
    assert str(err.value) == f"s.toml: scenario 'scenario': times must be numbers [h]; got {shown}"


def _one_arm(**extra):
    return {"scenario": {"model": "pk_1cmt_iv"}, **BASE, **extra}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"scenario": {"model": "pk_1cmt_iv"}, "endpoints": BASE["endpoints"]},
            "s.toml: scenario 'scenario': no arms; give at least one Arm (a dose level and schedule)",
        ),
        (_one_arm(uncertainty={"n_trials": 5}), "s.toml [uncertainty]: missing key 'from'"),
        (_one_arm(sensitivity={"arms": "a"}), "s.toml [sensitivity]: unknown key 'arms'. Did you mean 'arm'?"),
    ],
)
def test_a_scenario_file_missing_a_section_or_key_says_which(data, message):
    """No [arms] at all is the scenario's 'no arms' error; [uncertainty] needs `from`; a misspelt key of
    [sensitivity] is named with its section."""
    from pkpd.errors import PkpdError

    with pytest.raises(PkpdError) as err:
        scenario_from_dict(data, file="s.toml")
    assert str(err.value) == message


def test_a_scenario_file_without_description_or_population_size_takes_the_defaults():
    """No description: empty; [population] without n: one virtual subject (with its omega)."""
    sc = scenario_from_dict(_one_arm(population={"omega": {"CL": 0.3}}))
    assert sc.description == ""
    assert sc.population.n == 1
    assert sc.population.describe() == "1 virtual subject; log-normal IIV (omega): CL 0.3"


def _pta_result():
    """The typical subject (CL 2.8 L/h, V 32 L) given 10, 30 or 100 mg as a bolus: Cmax = dose / V = 0.3125, 0.9375,
    3.125 mg/L. Targets, declared in this order: zeta Cmax >= 0.5 (first met at 30 mg), alpha >= 2 (100 mg), beta
    >= 10 (never: dose NaN, best PTA 0)."""
    import pkpd
    from pkpd.metrics import Endpoint
    from pkpd.scenarios import Target

    ep = Endpoint("conc", "cmax", end=24)
    targets = [Target(ep.name, ">=", v, "mg/L", name=n) for n, v in (("zeta", 0.5), ("alpha", 2.0), ("beta", 10.0))]
    sc = pkpd.Scenario(
        pkpd.load_model("pk_1cmt_iv"),
        arms=pkpd.dose_ranging_arms("d", [10, 30, 100], "mg"),
        endpoints=[ep],
        targets=targets,
        times=np.linspace(0, 24, 25),
        seed=1,
    )
    return pkpd.run_scenario(sc)


def test_the_lowest_dose_table_keeps_the_targets_in_their_declared_order():
    res = _pta_result()
    low = res.lowest_dose(0.8)
    assert low["target"].tolist() == ["zeta", "alpha", "beta"]
    np.testing.assert_array_equal(low["dose"], [30.0, 100.0, np.nan])
    assert low["probability"].tolist() == [1.0, 1.0, 0.0]
    assert low["dose_unit"].tolist() == ["mg"] * 3


def test_the_html_summary_of_a_scenario_result_shows_the_attainment_with_its_interval():
    res = _pta_result()
    html = res._repr_html_()
    pta = html.split("<p>Probability of target attainment</p>")[1].split("</table>")[0]
    for column in ("arm", "target", "probability", "ci_low", "ci_high"):
        assert f"<th>{column}</th>" in pta
    assert pta.count("</tr>") == 1 + 9  # the header, 3 arms x 3 targets


def test_a_cluster_run_hands_over_its_client_and_counts_the_failed_simulations(monkeypatch):
    """V = 0 for subject 2 makes conc = A/V non-finite: one failed simulation in each of the 2 arms, n_failed = 2,
    locally and on a cluster. The spy checks that the client given reaches pkpd._parallel.map_tasks, then runs the
    tasks locally."""
    import pkpd
    import pkpd._parallel as parallel
    from pkpd.metrics import Endpoint
    from pkpd.scenarios import GivenPopulation

    real = parallel.map_tasks
    client = object()
    seen = []

    def spy(fn, payloads, **kwargs):
        seen.append(kwargs.get("client"))
        return real(fn, payloads, **(kwargs | {"client": None, "progress": False}))

    monkeypatch.setattr(parallel, "map_tasks", spy)
    monkeypatch.setattr(parallel, "check_client", lambda client: None)
    sc = pkpd.Scenario(
        pkpd.load_model("pk_1cmt_iv"),
        arms=pkpd.dose_ranging_arms("d", [10, 30], "mg"),
        endpoints=[Endpoint("conc", "cmax", end=24)],
        population=GivenPopulation(params={"V": [32.0, 0.0, 32.0]}),
        times=np.linspace(0, 24, 25),
        settings=pkpd.SolverSettings(on_failure="mark"),
        seed=1,
    )
    assert pkpd.run_scenario(sc).n_failed == 2
    remote = pkpd.run_scenario(sc, client=client, chunk_size=2)
    assert seen == [client]
    assert remote.n_failed == 2
    np.testing.assert_allclose(remote.table["value"], [10 / 32, np.nan, 10 / 32, 30 / 32, np.nan, 30 / 32])


# ------------------------------------------------------------------------------------------------ seed 21 (issue 20)
def test_a_target_with_an_unknown_operator_names_its_endpoint():
    from pkpd.errors import PkpdError
    from pkpd.scenarios import Target

    with pytest.raises(PkpdError) as err:
        Target("conc_Cmax_to_24", "=>", 3.0)
    assert str(err.value) == "target on 'conc_Cmax_to_24': op must be one of >=, >, <=, <; got '=>'. Did you mean '>='?"


def test_the_result_table_is_tidy_with_one_row_per_arm_subject_and_endpoint():
    """Documented columns ``arm, ID, endpoint, value, unit``; IDs 1..n in each arm; Cmax = dose / V (V 32 L)."""
    import pkpd
    from pkpd.metrics import Endpoint

    sc = pkpd.Scenario(
        pkpd.load_model("pk_1cmt_iv"),
        arms=pkpd.dose_ranging_arms("d", [10, 30], "mg"),
        endpoints=[Endpoint("conc", "cmax", end=24)],
        population=pkpd.LogNormalPopulation(2),
        times=np.linspace(0, 24, 25),
        seed=1,
    )
    table = pkpd.run_scenario(sc).table
    assert table.columns.tolist() == ["arm", "ID", "endpoint", "value", "unit"]
    assert table["ID"].tolist() == [1, 2, 1, 2]
    assert table["arm"].tolist() == ["d: 10 mg", "d: 10 mg", "d: 30 mg", "d: 30 mg"]
    np.testing.assert_allclose(table["value"], [10 / 32, 10 / 32, 30 / 32, 30 / 32], rtol=1e-9)


def test_a_run_under_parameter_uncertainty_uses_the_seed_it_is_given():
    """Draws of CL all at its model value (2.8 L/h): no uncertainty, so the nominal run equals the run without
    uncertainty at the same seed (the population's draws depend on it: omega V 0.2)."""
    import pkpd
    from pkpd.metrics import Endpoint

    sc = pkpd.Scenario(
        pkpd.load_model("pk_1cmt_iv"),
        arms=pkpd.dose_ranging_arms("d", [10, 30], "mg"),
        endpoints=[Endpoint("conc", "cmax", end=24)],
        population=pkpd.LogNormalPopulation(4, omega={"V": 0.2}),
        times=np.linspace(0, 24, 25),
    )
    res = pkpd.run_scenario(sc, seed=7, uncertainty={"CL": np.full(3, 2.8)}, n_trials=2)
    plain = pkpd.run_scenario(sc, seed=7)
    assert res.table.equals(plain.table)
    assert not res.table.equals(pkpd.run_scenario(sc, seed=8).table)


def test_the_time_course_of_an_arm_whose_simulations_all_failed_is_nan_without_a_numpy_warning():
    """V = 0 for both subjects: every simulation fails (on_failure="mark"); the arm's percentile curves are NaN and
    no 'All-NaN slice' RuntimeWarning reaches the user."""
    import warnings

    import pkpd
    from pkpd.metrics import Endpoint
    from pkpd.scenarios import GivenPopulation

    sc = pkpd.Scenario(
        pkpd.load_model("pk_1cmt_iv"),
        arms=pkpd.dose_ranging_arms("d", [10, 30], "mg"),
        endpoints=[Endpoint("conc", "cmax", end=24)],
        population=GivenPopulation(params={"V": [0.0, 0.0]}),
        times=np.linspace(0, 24, 5),
        settings=pkpd.SolverSettings(on_failure="mark"),
        seed=1,
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = pkpd.run_scenario(sc)
    assert [w for w in caught if issubclass(w.category, RuntimeWarning)] == []
    assert res.n_failed == 4
    for arm in ("d: 10 mg", "d: 30 mg"):
        assert res.time_course[arm]["conc"].shape == (3, 5) and np.isnan(res.time_course[arm]["conc"]).all()


def test_each_arms_median_time_to_event_is_taken_from_its_own_subjects():
    """Hazard h0 + h1 A / A50 (h0 0.1/h, h1 0.05/h, A50 10 mg, A = D exp(-0.1 t)): untreated, S = exp(-0.1 t) and the
    median is ln 2 / 0.1 = 6.93 h; after 50 mg, H(t) = 0.1 t + 2.5 (1 - exp(-0.1 t)) = ln 2 (solved by brentq)."""
    from pathlib import Path

    from scipy.optimize import brentq

    import pkpd
    from pkpd.metrics import Endpoint
    from pkpd.scenarios import Arm, LogNormalPopulation, Scenario, run_scenario

    model = pkpd.load_model(Path(__file__).resolve().parents[1] / "data" / "models" / "endpoints_exposure.toml")
    sc = Scenario(
        model,
        arms=[Arm("control", control=True), Arm("high", dose=pkpd.Dose(50, "mg"))],
        times=np.linspace(0, 24, 2401),
        params={"h0": 0.1, "h1": 0.05},
        population=LogNormalPopulation(3),
        endpoints=[Endpoint("event", "median_time_to_event", end=24)],
    )
    clinical = run_scenario(sc, seed=1).clinical.set_index("arm")["value"]
    dosed = brentq(lambda t: 0.1 * t + 2.5 * (1 - np.exp(-0.1 * t)) - np.log(2), 0.0, 24.0)
    assert clinical["control"] == pytest.approx(np.log(2) / 0.1, rel=1e-5)
    assert clinical["high"] == pytest.approx(dosed, rel=1e-5)


def test_a_median_time_not_reached_counts_as_inf_in_the_summary_and_the_targets():
    """Untreated (A = 0), S = exp(-h0 t): each subject's median time is ln 2 / h0, and inf where that is beyond the
    24 h window (h0 0.02 and 0.01/h: 34.7 and 69.3 h). The summary and the targets keep those two subjects, ordered
    beyond every finite value (they were dropped: the median of the 3 others, 13.9 h, was reported for 5 subjects,
    of whom 2 never reach it, and the target "> 20 h" was met by 0 of 3 instead of 2 of 5)."""
    from pathlib import Path

    import pkpd
    from pkpd.metrics import Endpoint
    from pkpd.scenarios import Arm, GivenPopulation, Scenario, Target, run_scenario

    model = pkpd.load_model(Path(__file__).resolve().parents[1] / "data" / "models" / "endpoints_exposure.toml")
    h0 = np.array([0.1, 0.05, 0.04, 0.02, 0.01])
    sc = Scenario(model, arms=[Arm("control", control=True)],
                  endpoints=[Endpoint("event", "median_time_to_event", end=24, name="tmed")],
                  targets=[Target("tmed", ">", 20), Target("tmed", "<=", 15)],
                  population=GivenPopulation(params={"h0": h0}), times=np.linspace(0, 24, 24001))
    res = run_scenario(sc)
    reached = np.log(2) / h0[:3]                                   # 6.93, 13.86, 17.33 h
    row = res.summary.iloc[0]
    assert row["n"] == 5
    assert row["median"] == pytest.approx(reached[2], rel=1e-6)    # the 3rd of 5 ordered values
    # numpy's linear rule: the 5th percentile lies 0.2 of the way from the 1st to the 2nd value; the 95th between
    # the 4th and the 5th (both inf); the mean of values including inf is inf
    assert row["p5"] == pytest.approx(reached[0] + 0.2 * (reached[1] - reached[0]), rel=1e-6)
    assert row["p95"] == np.inf and row["mean"] == np.inf
    att = res.attainment.set_index("target")
    assert (att.loc["tmed > 20", "n"], att.loc["tmed > 20", "n_met"]) == (5, 2)     # the two not reached
    assert (att.loc["tmed <= 15", "n"], att.loc["tmed <= 15", "n_met"]) == (5, 2)   # 6.93 and 13.86 h


def test_a_dose_response_plot_with_a_median_time_not_reached_draws_without_a_numpy_warning():
    """A 95th percentile of inf at an arm whose median is inf too (every subject but one beyond the window): the
    error bar's upper length, inf - inf, is left out of the plot instead of raising numpy's 'invalid value'."""
    import warnings
    from pathlib import Path

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import pkpd
    from pkpd.metrics import Endpoint
    from pkpd.plots import plot_dose_response
    from pkpd.scenarios import Arm, GivenPopulation, Scenario, run_scenario

    model = pkpd.load_model(Path(__file__).resolve().parents[1] / "data" / "models" / "endpoints_exposure.toml")
    sc = Scenario(model, arms=[Arm("control", control=True), *pkpd.dose_ranging_arms("d", [1, 10, 100], "mg")],
                  endpoints=[Endpoint("event", "median_time_to_event", end=24, name="tmed")],
                  population=GivenPopulation(params={"h0": np.array([0.001, 0.002, 0.1])}),
                  times=np.linspace(0, 24, 241))
    res = run_scenario(sc)
    assert np.isinf(res.summary.set_index("arm").loc["d: 1 mg", ["median", "p95"]].to_numpy(dtype=float)).all()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig = plot_dose_response(res, "tmed")
    plt.close(fig)


@pytest.mark.parametrize("as_array", [False, True])
def test_a_scenario_keeps_its_own_read_only_copy_of_the_output_times(as_array):
    """Times given as a list or a float array: the scenario holds its own read-only float array, so changing the
    caller's list or array afterwards does not change the scenario's grid (an array was kept as a view of the
    caller's, which then moved the checked grid: [0, -5, 24])."""
    import pkpd
    from pkpd.metrics import Endpoint

    times = np.array([0.0, 12.0, 24.0]) if as_array else [0, 12, 24]
    sc = pkpd.Scenario(
        pkpd.load_model("pk_1cmt_iv"),
        arms=pkpd.dose_ranging_arms("d", [10], "mg"),
        endpoints=[Endpoint("conc", "cmax", end=24)],
        times=times,
    )
    times[1] = -5.0
    assert isinstance(sc.times, np.ndarray) and sc.times.dtype == float and not sc.times.flags.writeable
    assert sc.times.tolist() == [0.0, 12.0, 24.0]


def test_an_emax_curve_at_an_enormous_dose_is_its_plateau_without_a_numpy_warning():
    """(D / ED50)^h overflows to inf at D = 1e300 (h 2): the fraction is 1 (inf / (1 + inf) is read as 1), so the
    prediction is E0 + Emax, without an 'invalid value' RuntimeWarning."""
    import warnings

    from pkpd.scenarios import fit_dose_response

    doses = np.array([0.0, 5.0, 10.0, 20.0, 30.0, 50.0, 100.0, 300.0])
    fit = fit_dose_response(doses, 2.0 + 10.0 * doses**2 / (30.0**2 + doses**2), sigmoid=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        plateau = fit.predict(np.array([1e300]))
    assert plateau[0] == pytest.approx(fit.e0 + fit.emax, rel=1e-12)


def test_a_schedule_with_too_few_dose_levels_does_not_stop_the_fits_of_the_others():
    """A single-dose schedule with 2 levels (fewer than MIN_DOSE_LEVELS = 3: no fit), then a 3-dose schedule with
    3 levels: the table has the second schedule's fit."""
    import pkpd
    from pkpd.metrics import Endpoint
    from pkpd.scenarios import MIN_DOSE_LEVELS

    assert MIN_DOSE_LEVELS == 3
    once = pkpd.dose_ranging_arms("once", [10, 30], "mg")
    thrice = pkpd.dose_ranging_arms("thrice", [10, 30, 100], "mg", count=3, interval=24)
    sc = pkpd.Scenario(
        pkpd.load_model("pk_1cmt_iv"),
        arms=once + thrice,
        endpoints=[Endpoint("conc", "auc", end=72)],
        times=np.linspace(0, 72, 73),
        seed=1,
    )
    res = pkpd.run_scenario(sc)
    assert res.dose_response["group"].tolist() == [res.groups[thrice[0].name]]
    assert res.groups[once[0].name] != res.groups[thrice[0].name]


# ------------------------------------------------------------------------------------------------ seed 23 (issue 27)
def test_a_log_normal_population_keeps_its_own_float_copy_of_omega():
    """omega is checked (finite, >= 0) when the population is made, so it keeps its own copy as floats: setting the
    caller's dict to -5 afterwards (which the check would refuse) does not reach the population."""
    from pkpd.scenarios import LogNormalPopulation

    omega = {"V": 1}
    pop = LogNormalPopulation(2, omega=omega)
    omega["V"] = -5.0
    assert pop.omega == {"V": 1.0}
    assert type(pop.omega["V"]) is float


def test_the_band_of_a_sigmoid_emax_curve_is_the_delta_method_with_the_curves_own_derivatives():
    """E(D) = E0 + Emax D^h / (ED50^h + D^h) with a covariance of (E0, Emax, log ED50, h): the band is
    E -+ z sqrt(g' C g), g the gradient of E in those four parameters, here taken by central finite differences of
    the formula written out (z = 1.959964 at 95 %). At D = ED50 (30) the derivative in h is 0, at D = 0 only E0
    varies."""
    from pkpd.scenarios import DoseResponseFit

    theta = np.array([2.0, 10.0, math.log(30.0), 2.0])
    cov = np.array(
        [[0.30, 0.05, 0.01, 0.02], [0.05, 0.80, 0.03, -0.04], [0.01, 0.03, 0.02, 0.005], [0.02, -0.04, 0.005, 0.09]]
    )
    nan2 = (math.nan, math.nan)
    fit = DoseResponseFit(
        e0=2.0,
        emax=10.0,
        ed50=30.0,
        hill=2.0,
        ed50_ci=nan2,
        ed90=90.0,
        ed90_ci=nan2,
        se={},
        covariance=cov,
        sigmoid=True,
    )
    d = np.array([0.0, 3.0, 10.0, 30.0, 100.0, 1000.0])

    def curve(p):
        e0, emax, log_ed50, h = p
        return e0 + emax * d**h / (math.exp(log_ed50) ** h + d**h)

    step = 1e-6
    grad = np.stack([(curve(theta + step * e) - curve(theta - step * e)) / (2 * step) for e in np.eye(4)], axis=-1)
    half = 1.959963984540054 * np.sqrt(np.einsum("ki,ij,kj->k", grad, cov, grad))
    low, high = fit.band(d)
    np.testing.assert_allclose(high, curve(theta) + half, rtol=1e-7)
    np.testing.assert_allclose(low, curve(theta) - half, rtol=1e-7)


def test_the_time_course_of_each_arm_is_taken_from_its_own_subjects():
    """One subject (CL 2.8 L/h, V 32 L), 10 and 30 mg as a bolus: every percentile of each arm's concentration is
    D / V exp(-CL / V t) of its own dose."""
    import pkpd
    from pkpd.metrics import Endpoint

    t = np.linspace(0, 24, 7)
    sc = pkpd.Scenario(
        pkpd.load_model("pk_1cmt_iv"),
        arms=pkpd.dose_ranging_arms("d", [10, 30], "mg"),
        endpoints=[Endpoint("conc", "cmax", end=24)],
        population=pkpd.LogNormalPopulation(1),
        times=t,
        seed=1,
    )
    res = pkpd.run_scenario(sc)
    for dose in (10, 30):
        curves = res.time_course[f"d: {dose} mg"]["conc"]
        assert curves.shape == (3, t.size)
        for row in curves:
            np.testing.assert_allclose(row, dose / 32 * np.exp(-2.8 / 32 * t), rtol=1e-5)


@pytest.mark.parametrize(("b0", "clipped"), [([8.0, 8.0, 0.0], "ci_high"), ([-8.0, -8.0, 0.0], "ci_low")])
def test_the_interval_of_a_response_rate_is_the_normal_approximation_clipped_to_0_and_1(b0, clipped):
    """P(response) = 1 / (1 + exp(-b0)) without exposure (bA = 0): subjects at b0 = 8, 8, 0 (or -8, -8, 0) give an
    arm rate equal to the mean of their probabilities, with the interval mean -+ z s / sqrt(3) (s the sample SD),
    which passes 1 (or 0) and is clipped there: a probability is documented to be in [0, 1]."""
    import statistics
    from pathlib import Path

    import pkpd
    from pkpd.metrics import Endpoint
    from pkpd.scenarios import Arm, GivenPopulation, Scenario, run_scenario

    model = pkpd.load_model(Path(__file__).resolve().parents[1] / "data" / "models" / "endpoints_exposure.toml")
    sc = Scenario(
        model,
        arms=[Arm("control", control=True)],
        times=np.linspace(0, 4, 5),
        population=GivenPopulation(params={"b0": b0}),
        endpoints=[Endpoint("resp", "probability_at", time=2)],
    )
    row = run_scenario(sc, seed=1).clinical.iloc[0]
    p = [1.0 / (1.0 + math.exp(-b)) for b in b0]
    mean = statistics.fmean(p)
    half = statistics.NormalDist().inv_cdf(0.975) * statistics.stdev(p) / math.sqrt(3)
    expected = {"ci_low": mean - half, "ci_high": mean + half}
    expected[clipped] = 1.0 if clipped == "ci_high" else 0.0
    assert row["n"] == 3
    assert row["value"] == pytest.approx(mean, rel=1e-7)
    for key, want in expected.items():
        assert row[key] == pytest.approx(want, rel=1e-7, abs=1e-12), key


def test_a_scenario_without_clinical_endpoints_has_an_empty_clinical_table_with_its_documented_columns():
    """ScenarioResult.clinical is documented as ``arm, group, dose, dose_unit, endpoint, unit, description, value,
    ci_low, ci_high, n``; with only Cmax (not clinical) it has no rows but still those columns."""
    import pkpd
    from pkpd.metrics import Endpoint

    sc = pkpd.Scenario(
        pkpd.load_model("pk_1cmt_iv"),
        arms=pkpd.dose_ranging_arms("d", [10], "mg"),
        endpoints=[Endpoint("conc", "cmax", end=24)],
        times=np.linspace(0, 24, 5),
        seed=1,
    )
    clinical = pkpd.run_scenario(sc).clinical
    assert len(clinical) == 0
    assert clinical.columns.tolist() == (
        "arm, group, dose, dose_unit, endpoint, unit, description, value, ci_low, ci_high, n".split(", ")
    )


@pytest.mark.parametrize("covariates", [[["WT", 70]], 70, "WT = 70"])
def test_population_covariates_that_are_not_a_table_are_refused_naming_the_section(covariates):
    """[population] covariates must be a table of name = value, like omega and covariate_ranges: a list of pairs
    (which dict() would take) or a bare value is refused, naming the file and [population.covariates]."""
    from pathlib import Path

    from pkpd.errors import PkpdError

    model = Path(__file__).resolve().parents[1] / "data" / "models" / "pk_1cmt_iv_covariates.toml"
    data = {"scenario": {"model": str(model)}, **BASE, "population": {"n": 2, "covariates": covariates}}
    with pytest.raises(PkpdError) as err:
        scenario_from_dict(data, file="s.toml")
    assert str(err.value) == "s.toml [population.covariates]: must be a table of name = value"


@pytest.mark.parametrize("key", ["dose", "doses", "unit"])
def test_a_control_arm_with_a_dose_doses_or_unit_is_refused_naming_the_key(key):
    """A control arm is untreated: a dose, doses or unit in it is refused with the whole message."""
    from pkpd.errors import DosingError

    value = {"dose": 100, "doses": [10, 30], "unit": "mg"}[key]
    data = {**_one_arm(), "arms": {"c": {"control": True, key: value}}}
    with pytest.raises(DosingError) as err:
        scenario_from_dict(data, file="s.toml")
    assert str(err.value) == f"s.toml [arms.c]: a control arm takes no {key}; remove it, or set control = false"


def test_a_scenario_file_without_sigmoid_fits_plain_emax_and_says_so_with_a_bool():
    """[scenario] sigmoid is documented as a bool, False by default (as for a Scenario built in Python); a file
    that leaves it out gets False itself, and sigmoid = true gives True."""
    import pkpd

    assert pkpd.Scenario.sigmoid is False
    assert scenario_from_dict(_one_arm()).sigmoid is False
    data = _one_arm()
    data["scenario"] = {**data["scenario"], "sigmoid": True}
    assert scenario_from_dict(data).sigmoid is True


@pytest.mark.parametrize("value", ["no", 0, 1])
def test_a_control_flag_that_is_not_true_or_false_is_refused(value):
    """control is a TOML boolean: "no" (a non-empty string, so truthy) must not silently make a control arm, nor
    0/1 stand in for false/true; the whole message names the file, the arm and the value."""
    from pkpd.errors import DosingError

    data = {**_one_arm(), "arms": {"c": {"control": value}}}
    with pytest.raises(DosingError) as err:
        scenario_from_dict(data, file="s.toml")
    assert str(err.value) == f"s.toml [arms.c]: control must be true or false; got {value!r}"


def test_a_sigmoid_flag_that_is_not_true_or_false_is_refused():
    """sigmoid is a boolean in a file and in Python alike: "yes" is refused instead of fitting sigmoid Emax because
    a string is truthy."""
    import pkpd
    from pkpd.errors import PkpdError
    from pkpd.metrics import Endpoint

    data = _one_arm()
    data["scenario"] = {**data["scenario"], "sigmoid": "yes", "name": "s"}
    with pytest.raises(PkpdError) as err:
        scenario_from_dict(data, file="s.toml")
    assert str(err.value) == "s.toml: scenario 's': sigmoid must be true or false; got 'yes'"
    with pytest.raises(PkpdError) as err:
        pkpd.Scenario(pkpd.load_model("pk_1cmt_iv"), arms=pkpd.dose_ranging_arms("d", [10], "mg"),
                      endpoints=[Endpoint("conc", "cmax", end=24)], name="t", sigmoid=1)
    assert str(err.value) == "scenario 't': sigmoid must be true or false; got 1"


# ------------------------------------------------------------------------------------- independent sample, seed 24
def test_a_scenario_file_names_its_model_file_relative_to_itself(tmp_path, monkeypatch):
    """load_scenario documents ``model`` as "a shipped model name or a path to a model file, relative to the
    scenario file": a scenario in tmp/study/ naming models/iv.toml loads tmp/study/models/iv.toml whatever the
    working directory. Cmax of 100 mg given as a bolus into V = 30 L is 100 / 30 mg/L."""
    import shutil
    from pathlib import Path

    import pkpd

    study = tmp_path / "study"
    (study / "models").mkdir(parents=True)
    shutil.copy(Path(__file__).resolve().parents[1] / "data" / "models" / "iv_allometric.toml",
                study / "models" / "iv.toml")
    (study / "s.toml").write_text('[scenario]\nmodel = "models/iv.toml"\ntimes = {stop = 2}\n'
                                  '[arms.a]\ndose = 100\nunit = "mg"\n'
                                  '[endpoints.c]\noutput = "conc"\nmetric = "cmax"\nend = 2\n')
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    sc = pkpd.load_scenario(study / "s.toml")
    assert sc.model.name == "iv_allometric"
    value = pkpd.run_scenario(sc, seed=1).table["value"].iloc[0]
    assert value == pytest.approx(100 / 30, rel=1e-6)


def test_a_scenario_file_without_endpoints_gets_the_scenarios_no_endpoints_message():
    """No [endpoints] table at all is the scenario's own 'no endpoints' error (as no [arms] is its 'no arms'), not
    a complaint about the shape of a table the file does not have."""
    from pkpd.errors import PkpdError

    with pytest.raises(PkpdError) as err:
        scenario_from_dict({"scenario": {"model": "pk_1cmt_iv"}, "arms": BASE["arms"]}, file="s.toml")
    assert str(err.value) == ("s.toml: scenario 'scenario': no endpoints; give at least one Endpoint, e.g. "
                              "Endpoint('IL10', 'auc')")


def _population_fit_file(path):
    """A saved population fit of wang2007 (ke 0.5 1/h, omega^2 ke 0.04, 10 subjects) with a covariance matrix."""
    import json

    doc = {
        "format": "pkpd-fit", "version": 1, "kind": "population", "model_name": "wang2007", "method": "focei",
        "objective": 1.0, "minus2ll": 1.0, "aic": 7.0, "bic": 8.0, "theta": {"ke": 0.5},
        "iiv": {"names": ["ke"], "omega": [[0.04]], "distributions": ["lognormal"]},
        "error": {"f": {"kind": "Additive", "sd": 0.3, "fixed": []}},
        "parameters": {"columns": ["name", "estimate", "se", "rse_percent"],
                       "data": {"name": ["ke", "omega2_ke", "sd"], "estimate": [0.5, 0.04, 0.3],
                                "se": [0.01, 0.01, 0.01], "rse_percent": [2.0, 25.0, 3.3]}},
        "covariance": [[1e-4, 0.0, 0.0], [0.0, 1e-4, 0.0], [0.0, 0.0, 1e-4]], "covariance_message": "",
        "eta": [[0.0]] * 10, "shrinkage": {"ke": 0.0},
        "table": {"columns": ["ID", "TIME", "DV"], "data": {"ID": [1], "TIME": [0.0], "DV": [10.0]}},
        "n_subjects": 10, "n_obs": 20, "converged": True, "message": "", "n_evaluations": 1, "seconds": 0.1,
        "output_units": {"f": "mg/L"}, "time_unit": "h", "covariate_effects": [], "iov": None, "kappa": None,
    }
    path.write_text(json.dumps(doc))


def test_the_omega_of_a_scenario_files_uncertainty_is_used_and_checked(tmp_path):
    """[uncertainty] omega (documented in pkpd.uncertainty: "covariance", the default, or "inverse-wishart") chooses
    how each trial redraws the population fit's Omega: the file's choice is the scenario's, and a misspelt one is
    refused with the choices and the close match."""
    from pkpd.errors import PkpdError

    _population_fit_file(tmp_path / "fit.json")
    data = {"scenario": {"model": "wang2007"}, "arms": {"c": {"control": True}},
            "endpoints": {"f": {"output": "f", "metric": "cmax", "end": 1}}}
    file = str(tmp_path / "s.toml")
    sc = scenario_from_dict({**data, "uncertainty": {"from": "fit.json"}}, file=file)
    assert sc.uncertainty.omega == "covariance"
    sc = scenario_from_dict({**data, "uncertainty": {"from": "fit.json", "omega": "inverse-wishart"}}, file=file)
    assert sc.uncertainty.omega == "inverse-wishart"
    with pytest.raises(PkpdError) as err:
        scenario_from_dict({**data, "uncertainty": {"from": "fit.json", "omega": "wishart"}}, file=file)
    assert str(err.value) == (f"{file} [uncertainty]: uncertainty: omega must be one of ('covariance', "
                              "'inverse-wishart'); got 'wishart'. Did you mean 'inverse-wishart'?")


def _iv_scenario(**kw):
    import pkpd
    from pkpd.metrics import Endpoint

    return pkpd.Scenario(pkpd.load_model("pk_1cmt_iv"), arms=[pkpd.Arm("a", pkpd.Dose(100, "mg"))],
                         endpoints=[Endpoint("conc", "auc", end=24)], **kw)


def test_a_population_naming_a_parameter_the_model_lacks_is_refused_when_the_scenario_is_built():
    """Scenario validates at construction (documented), the population included: omega on 'CLL' of pk_1cmt_iv
    (parameters CL, V) is refused by the population's own check, with its message and the close match."""
    from pkpd.errors import PkpdError
    from pkpd.scenarios import LogNormalPopulation

    with pytest.raises(PkpdError) as err:
        _iv_scenario(population=LogNormalPopulation(3, omega={"CLL": 0.3}))
    assert str(err.value) == "population omega: model 'pk_1cmt_iv' has no parameter 'CLL'. Did you mean 'CL'?"


@pytest.mark.parametrize("times", [[0.0, 2.0, 1.0], [0.0, 1.0, 1.0]])
def test_output_times_that_do_not_increase_are_refused(times):
    """Documented: times must be finite and strictly increasing; a step back or a repeated time is refused with
    the whole message."""
    from pkpd.errors import PkpdError

    with pytest.raises(PkpdError) as err:
        _iv_scenario(times=times)
    assert str(err.value) == f"scenario 'scenario': times must be finite and strictly increasing; got {times!r}"


def test_a_scenario_keeps_its_own_copy_of_its_parameters_and_its_trials_use_them():
    """params={"CL": 5} (None means none). The scenario keeps its own dict: a later change to the caller's dict
    changes neither the typical model nor the replicate trials. AUC(0-24) of 100 mg as a bolus, V 32 L, is
    D/CL (1 - exp(-CL/V 24)) = 19.53 mg*h/L at CL 5 (52.76 at CL 1), so a target AUC <= 30 is met in every trial
    (draws of V only, all at 32 L)."""
    import pkpd

    assert _iv_scenario(params=None).params == {}
    given = {"CL": 5.0}
    sc = _iv_scenario(params=given, targets=[pkpd.Target("conc_AUC_to_24", "<=", 30)], times=np.linspace(0, 24, 97))
    given["CL"] = 1.0
    assert sc.params == {"CL": 5.0}
    res = pkpd.run_scenario(sc, seed=1, uncertainty={"V": np.full(2, 32.0)}, n_trials=2)
    auc = 100 / 5.0 * (1 - math.exp(-5.0 / 32 * 24))
    assert res.table["value"].iloc[0] == pytest.approx(auc, rel=2e-3)
    assert res.trials.attainment["probability"].tolist() == [1.0, 1.0]


def test_parameter_uncertainty_runs_200_trials_by_default_and_keeps_the_success_level_as_a_float():
    """Documented: n_trials defaults to 200 with uncertainty; trial_success is a float (a fraction 4/5 is 0.8, a
    file's integer 1 is 1.0)."""
    from fractions import Fraction

    draws = {"CL": np.full(3, 2.8)}
    sc = _iv_scenario(uncertainty=draws, trial_success=Fraction(4, 5))
    assert sc.n_trials == 200
    assert sc.trial_success == 0.8 and type(sc.trial_success) is float
    sc = _iv_scenario(uncertainty=draws, trial_success=1)
    assert sc.trial_success == 1.0 and type(sc.trial_success) is float


def test_a_target_written_with_the_sign_le_suggests_the_ascii_operator():
    """'≤' is not an operator; the message suggests '<=' (as '≥' suggests '>=')."""
    from pkpd.errors import PkpdError
    from pkpd.scenarios import Target

    with pytest.raises(PkpdError) as err:
        Target("c", "≤", 1)
    assert str(err.value) == "target on 'c': op must be one of >=, >, <=, <; got '≤'. Did you mean '<='?"


def test_a_dose_response_fit_drops_points_with_a_missing_dose_or_response():
    """Documented: NaN points are dropped. Exact Emax data (E0 2, Emax 10, ED50 30) with one NaN response and one
    NaN dose added: the fit recovers the curve from the 16 finite points and counts n = 16."""
    from pkpd.scenarios import fit_dose_response

    doses = np.array([0.0, 5.0, 10.0, 20.0, 30.0, 50.0, 100.0, 300.0])
    curve = 2.0 + 10.0 * doses / (30.0 + doses)
    d = np.concatenate([np.repeat(doses, 2), [50.0, np.nan]])
    y = np.concatenate([np.repeat(curve, 2), [np.nan, 5.0]])
    fit = fit_dose_response(d, y)
    assert fit.n == 16
    for got, want in ((fit.e0, 2.0), (fit.emax, 10.0), (fit.ed50, 30.0)):
        assert got == pytest.approx(want, rel=1e-5)


def test_a_dose_response_fit_says_how_many_infinite_responses_it_left_out():
    """The exact Emax data above with two responses of inf (median times to event not reached): the curve is fitted
    to the 16 finite points (n = 16, E0 2, Emax 10, ED50 30 recovered) and the message counts the two left out
    (they were dropped without a word, the fit looking like one of every subject)."""
    from pkpd.scenarios import fit_dose_response

    doses = np.array([0.0, 5.0, 10.0, 20.0, 30.0, 50.0, 100.0, 300.0])
    curve = 2.0 + 10.0 * doses / (30.0 + doses)
    d = np.concatenate([np.repeat(doses, 2), [0.0, 5.0]])
    y = np.concatenate([np.repeat(curve, 2), [np.inf, np.inf]])
    fit = fit_dose_response(d, y)
    assert fit.n == 16 and fit.ed50 == pytest.approx(30.0, rel=1e-5)
    assert fit.message == "2 infinite responses (e.g. a median time to event not reached) left out of the fit"
    assert fit_dose_response(d[:-1], y[:-1]).message.startswith("1 infinite response (e.g.")


def test_an_ed50_at_the_lower_end_of_its_search_range_is_said_to_be_unbracketed():
    """Every dose 1-4 gives the plateau (10) and the controls 0: the best ED50 is as small as its search range
    allows (1000-fold below the lowest dose), so the fit says the doses do not bracket it."""
    from pkpd.scenarios import fit_dose_response

    fit = fit_dose_response(np.array([0, 0, 1, 1, 2, 2, 4, 4.0]), np.array([0, 0, 10, 10, 10, 10, 10, 10.0]))
    assert fit.ed50 == pytest.approx(1e-3, rel=1e-5)
    assert fit.message == "ED50 at the edge of its search range: the doses do not bracket it"


# ------------------------------------------------------------------------------------- independent sample, seed 25
def test_a_covariate_both_fixed_and_ranged_is_refused():
    """A covariate is either fixed (covariates) or drawn uniformly (covariate_ranges), not both: WT = 70 and WT in
    [50, 90] is refused with the whole message (else the range silently wins in the draws)."""
    from pkpd.errors import PkpdError
    from pkpd.scenarios import LogNormalPopulation

    with pytest.raises(PkpdError) as err:
        LogNormalPopulation(3, covariates={"WT": 70}, covariate_ranges={"WT": (50, 90)})
    assert str(err.value) == "population: covariate 'WT' is both fixed and ranged; give one of them"


def test_a_target_converted_to_the_endpoints_unit_carries_that_unit():
    """Target.in_unit gives the target with its value converted to the unit asked for, and that unit: 2 ng*h/mL is
    2000 pg*h/mL; -50 % is -0.5 in "1" (documented). The name keeps the unit it was written in."""
    from pkpd.scenarios import Target

    t = Target("IL10_AUC", ">=", 2, "ng*h/mL").in_unit("pg*h/mL")
    assert (t.value, t.unit) == (pytest.approx(2000.0, rel=1e-12), "pg*h/mL")
    assert t.name == "IL10_AUC >= 2 ng*h/mL"
    t = Target("TNF_vs_untreated_48", "<=", -50, "%").in_unit("1")
    assert (t.value, t.unit) == (pytest.approx(-0.5, rel=1e-12), "1")


@pytest.mark.parametrize(
    ("dose", "message"),
    [
        (100, "arm 'a': pk_1cmt_oral [doses]: unknown dose target 'ivv'. Did you mean 'iv'?"),
        (None, "arm 'a': dose unit 'cell' does not match dose target 'iv' of model 'pk_1cmt_oral', which takes 'mg'."),
    ],
)
def test_an_arms_dose_is_checked_against_its_own_dose_target(dose, message):
    """pk_1cmt_oral has two dose targets, oral (its first) and iv. An arm into 'ivv' is refused at construction
    naming the close match; cells given into 'iv' are refused naming 'iv', the arm's target, not the first one."""
    import pkpd
    from pkpd.errors import DosingError
    from pkpd.metrics import Endpoint

    arm = pkpd.Arm("a", pkpd.Dose(100, "mg"), target="ivv") if dose else pkpd.Arm("a", pkpd.Dose(1e6, "cell"),
                                                                                  target="iv")
    with pytest.raises(DosingError) as err:
        pkpd.Scenario(pkpd.load_model("pk_1cmt_oral"), arms=[arm], endpoints=[Endpoint("conc", "cmax", end=24)])
    assert str(err.value) == message


def test_an_emax_curve_with_an_ed50_of_0_is_a_step_without_a_numpy_warning():
    """ED50 -> 0 is the limit of an ED50 far below every dose: D^h / (ED50^h + D^h) -> 1 for every D > 0, so the
    curve is E0 at dose 0 and E0 + Emax at every positive dose, without numpy's divide-by-zero warning (an error under
    tests/conftest.py)."""
    from pkpd.scenarios import DoseResponseFit

    nan2 = (math.nan, math.nan)
    fit = DoseResponseFit(e0=1.0, emax=2.0, ed50=0.0, hill=1.0, ed50_ci=nan2, ed90=0.0, ed90_ci=nan2, se={},
                          covariance=None)
    np.testing.assert_array_equal(fit.predict([0.0, 1e-3, 1.0, 1e6]), [1.0, 3.0, 3.0, 3.0])


def test_a_dose_response_fit_keeps_its_covariance_and_its_band_is_the_delta_method():
    """Noisy Emax data (E0 5, Emax 40, ED50 8). The covariance of (E0, Emax, log ED50) is the least-squares one,
    s^2 (J'J)^-1 with s^2 = RSS / (n - 3) and J the derivatives of the curve written out, taken here by central
    finite differences at the estimates; the band is the curve -+ z sqrt(g' C g), g those derivatives at each
    dose."""
    from pkpd.scenarios import fit_dose_response

    d = np.repeat([0.0, 1, 3, 10, 30, 100], 10)
    y = 5 + 40 * d / (8 + d) + np.random.default_rng(0).normal(0, 2, d.size)
    fit = fit_dose_response(d, y)
    theta = np.array([fit.e0, fit.emax, math.log(fit.ed50)])

    def curve(p, x):
        return p[0] + p[1] * x / (math.exp(p[2]) + x)

    def jac(x):
        return np.stack([(curve(theta + 1e-6 * e, x) - curve(theta - 1e-6 * e, x)) / 2e-6 for e in np.eye(3)], axis=-1)

    j = jac(d)
    s2 = float(np.sum((y - curve(theta, d)) ** 2)) / (d.size - 3)
    assert fit.covariance is not None
    np.testing.assert_allclose(fit.covariance, s2 * np.linalg.inv(j.T @ j), rtol=1e-3)
    x = np.array([0.0, 4.0, 8.0, 50.0])
    g = jac(x)
    half = 1.959963984540054 * np.sqrt(np.einsum("ki,ij,kj->k", g, s2 * np.linalg.inv(j.T @ j), g))
    low, high = fit.band(x)
    np.testing.assert_allclose(high, curve(theta, x) + half, rtol=1e-5)
    np.testing.assert_allclose(low, curve(theta, x) - half, rtol=1e-5)


def _emax_of_dose():
    from pathlib import Path

    import pkpd

    return pkpd.load_model(Path(__file__).resolve().parents[1] / "data" / "models" / "emax_of_dose.toml")


def test_a_sigmoid_scenario_fits_the_hill_coefficient():
    """emax_of_dose: the response is exactly EMAX (D/A50)^H / (1 + (D/A50)^H) (100, 10 mg, H = 3). A scenario with
    sigmoid=True fits a sigmoid Emax curve to the control and 5 dose levels and recovers E0 0, Emax 100, ED50 10 mg,
    hill 3 and ED90 = ED50 9^(1/3); a plain Emax fit (hill 1) could not."""
    import pkpd
    from pkpd.metrics import Endpoint

    arms = [pkpd.Arm("c", control=True), *pkpd.dose_ranging_arms("d", [2.5, 5, 10, 20, 40], "mg")]
    sc = pkpd.Scenario(_emax_of_dose(), arms=arms, endpoints=[Endpoint("E", "value_at", time=1)], times=[0.0, 1.0],
                       sigmoid=True)
    res = pkpd.run_scenario(sc, seed=1)
    row = res.dose_response.iloc[0]
    assert row["model"] == "sigmoid Emax"
    assert res.fits[("1 dose at 0 h, bolus", "E_at_1")].sigmoid is True
    for col, want in (("Emax", 100.0), ("ED50", 10.0), ("hill", 3.0), ("ED90", 10.0 * 9 ** (1 / 3))):
        assert row[col] == pytest.approx(want, rel=1e-5), col
    assert row["E0"] == pytest.approx(0.0, abs=1e-4)


def test_the_dose_response_table_of_a_plain_emax_fit_has_hill_1_and_ed90_bounds_9_times_those_of_ed50():
    """emax_of_dose with H = 1 and a log-normal A50 (omega 0.3): a plain Emax fit. Its table shows hill 1
    (documented for Emax) and, h being fixed, log ED90 = log ED50 + ln 9 has the SE of log ED50, so each bound of
    ED90 is 9 times that of ED50 (and the bounds are finite: the doses bracket ED50)."""
    import pkpd
    from pkpd.metrics import Endpoint

    arms = [pkpd.Arm("c", control=True), *pkpd.dose_ranging_arms("d", [3, 10, 30, 100], "mg")]
    sc = pkpd.Scenario(_emax_of_dose(), arms=arms, endpoints=[Endpoint("E", "value_at", time=1)], times=[0.0, 1.0],
                       params={"H": 1.0}, population=pkpd.LogNormalPopulation(10, omega={"A50": 0.3}))
    row = pkpd.run_scenario(sc, seed=1).dose_response.iloc[0]
    assert row["model"] == "Emax"
    assert row["hill"] == 1.0
    assert 3 < row["ED50_low"] < row["ED50"] < row["ED50_high"] < 100
    assert row["ED90_low"] == pytest.approx(9 * row["ED50_low"], rel=1e-12)
    assert row["ED90_high"] == pytest.approx(9 * row["ED50_high"], rel=1e-12)


def test_a_cluster_run_simulates_each_subject_with_its_own_covariates(monkeypatch):
    """iv_allometric: CL = 3 (WT/70)^0.75 L/h, V 30 L; the subjects weigh 35, 70 and 140 kg. On a cluster (the spy
    runs the tasks locally, 2 subjects per task) as locally, C(12 h) after 100 mg is 100/30 exp(-CL/30 12) with
    each subject's own weight (the model's default is 70 kg)."""
    from pathlib import Path

    import pkpd
    import pkpd._parallel as parallel
    from pkpd.metrics import Endpoint
    from pkpd.scenarios import GivenPopulation

    real = parallel.map_tasks
    monkeypatch.setattr(parallel, "map_tasks",
                        lambda fn, payloads, **kw: real(fn, payloads, **(kw | {"client": None, "progress": False})))
    monkeypatch.setattr(parallel, "check_client", lambda client: None)
    model = pkpd.load_model(Path(__file__).resolve().parents[1] / "data" / "models" / "iv_allometric.toml")
    wt = np.array([35.0, 70.0, 140.0])
    sc = pkpd.Scenario(model, arms=[pkpd.Arm("a", pkpd.Dose(100, "mg"))],
                       endpoints=[Endpoint("conc", "value_at", time=12)], times=[0.0, 12.0],
                       population=GivenPopulation(covariates={"WT": wt}))
    want = 100 / 30 * np.exp(-3 * (wt / 70) ** 0.75 / 30 * 12)
    np.testing.assert_allclose(pkpd.run_scenario(sc, seed=1).table["value"], want, rtol=1e-5)
    np.testing.assert_allclose(pkpd.run_scenario(sc, seed=1, client=object(), chunk_size=2).table["value"], want,
                               rtol=1e-5)


# ------------------------------------------------------------------------------------- independent sample, seed 26
def test_virtual_patients_describe_themselves_in_one_line_of_parts_joined_by_semicolons():
    """VirtualPatients.describe ("one line for reports", as LogNormalPopulation's): the number of patients, the IIV
    and the covariate effects, parameter ~ covariate (kind), joined by "; "."""
    import pandas as pd

    import pkpd
    from pkpd.scenarios import VirtualPatients

    table = pd.DataFrame({"WT": [35.0, 70.0, 140.0]})
    assert VirtualPatients(table).describe() == "3 virtual patients"
    patients = VirtualPatients(table, iiv=pkpd.IIV({"CL": 0.09}),
                               effects=[pkpd.CovariateEffect("CL", "WT", "power", 0.75, ref=70)])
    assert patients.describe() == ("3 virtual patients; IIV(CL: lognormal omega^2=0.09); "
                                   "covariate effects: CL ~ WT (power)")


def test_a_scenario_with_its_own_uncertainty_runs_its_trials_without_arguments():
    """A Scenario given `uncertainty` (draws of V all at 32 L: no uncertainty) and n_trials runs its replicate trials
    from run_scenario(sc, seed=...) alone, no override: 2 trials, the nominal run at the estimates, AUC(0-24) of
    100 mg as a bolus = D/CL (1 - exp(-CL/V 24)) with CL 2.8 L/h, V 32 L, so a target AUC >= 30 is met in every
    trial."""
    import pkpd

    sc = _iv_scenario(uncertainty={"V": np.full(2, 32.0)}, n_trials=2, times=np.linspace(0, 24, 97),
                      targets=[pkpd.Target("conc_AUC_to_24", ">=", 30)])
    res = pkpd.run_scenario(sc, seed=1)
    auc = 100 / 2.8 * (1 - math.exp(-2.8 / 32 * 24))
    assert res.table["value"].iloc[0] == pytest.approx(auc, rel=2e-3)
    assert res.trials is not None
    assert res.trials.attainment["probability"].tolist() == [1.0, 1.0]


def test_the_times_of_a_scenario_result_are_read_only():
    """ScenarioResult is frozen and its times read-only (as a Simulation's): writing into them raises numpy's
    ValueError instead of silently changing the grid the tables were computed on."""
    import pkpd

    res = pkpd.run_scenario(_iv_scenario(times=[0.0, 12.0, 24.0]), seed=1)
    np.testing.assert_array_equal(res.times, [0.0, 12.0, 24.0])
    assert not res.times.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        res.times[0] = 5.0
    np.testing.assert_array_equal(res.times, [0.0, 12.0, 24.0])


def test_a_cluster_run_does_not_draw_clinical_outcomes(monkeypatch):
    """A scenario's tables are expected values: its simulations draw no outcomes, on a cluster as locally (the
    result is documented identical). endpoints_exposure with the intercepts of its ordinal 'grade' increasing
    (a1 -2 < a2 -0.5 < a3 1), which drawing grades refuses: the run still gives Cmax = 100 mg / 10 L = 10 mg/L, on a
    cluster (the spy runs the tasks locally, 2 subjects per task) as locally."""
    from pathlib import Path

    import pkpd
    import pkpd._parallel as parallel
    from pkpd.metrics import Endpoint

    real = parallel.map_tasks
    monkeypatch.setattr(parallel, "map_tasks",
                        lambda fn, payloads, **kw: real(fn, payloads, **(kw | {"client": None, "progress": False})))
    monkeypatch.setattr(parallel, "check_client", lambda client: None)
    model = pkpd.load_model(Path(__file__).resolve().parents[1] / "data" / "models" / "endpoints_exposure.toml")
    sc = pkpd.Scenario(model, arms=[pkpd.Arm("a", pkpd.Dose(100, "mg"))], endpoints=[Endpoint("conc", "cmax", end=24)],
                       times=[0.0, 12.0, 24.0], params={"a1": -2.0, "a3": 1.0},
                       population=pkpd.LogNormalPopulation(3, omega={"V": 0.0}))
    for kw in ({}, {"client": object(), "chunk_size": 2}):
        np.testing.assert_allclose(pkpd.run_scenario(sc, seed=1, **kw).table["value"], np.full(3, 10.0), rtol=1e-9)


# ------------------------------------------------------------------------------------- independent sample, seed 27
def test_a_population_omega_that_is_not_a_finite_number_is_refused_naming_omega():
    """Each omega is an SD of log values, a finite number: NaN on CL is refused with the whole message, which names
    the entry and the quantity (omega)."""
    from pkpd.errors import PkpdError
    from pkpd.scenarios import LogNormalPopulation

    with pytest.raises(PkpdError) as err:
        LogNormalPopulation(3, omega={"CL": math.nan})
    assert str(err.value) == "population omega['CL']: omega must be a finite number; got nan"


def test_the_typical_subject_of_a_population_takes_the_middle_of_each_covariate_range():
    """Documented: the typical subject's covariates are the fixed values and the middle of each range: WT drawn in
    [50, 90] kg gives a typical WT of (50 + 90) / 2 = 70 kg."""
    from pathlib import Path

    import pkpd
    from pkpd.scenarios import LogNormalPopulation

    model = pkpd.load_model(Path(__file__).resolve().parents[1] / "data" / "models" / "iv_allometric.toml")
    pop = LogNormalPopulation(3, covariate_ranges={"WT": (50, 90)})
    assert pop.typical_covariates(model) == {"WT": 70.0}


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("arms", "scenario 'scenario': arm names must be unique; 'a' is used twice. Rename one of them."),
        ("endpoints", "scenario 'scenario': endpoint names must be unique; 'conc_AUC_to_24' is used twice. "
                      "Rename one of them."),
        ("targets", "scenario 'scenario': target names must be unique; 'conc_AUC_to_24 >= 30' is used twice. "
                    "Rename one of them."),
    ],
)
def test_a_name_used_twice_in_a_scenario_is_refused_with_the_whole_message(kind, message):
    """Arms, endpoints and targets are named in every table, so each name is unique within its kind: two arms 'a'
    (100 and 200 mg), the endpoint AUC(0-24) of conc twice, or the target AUC >= 30 twice, are refused naming the
    kind and the name."""
    import pkpd
    from pkpd.errors import PkpdError
    from pkpd.metrics import Endpoint

    kw = {
        "arms": {"arms": [pkpd.Arm("a", pkpd.Dose(100, "mg")), pkpd.Arm("a", pkpd.Dose(200, "mg"))]},
        "endpoints": {"endpoints": [Endpoint("conc", "auc", end=24), Endpoint("conc", "auc", end=24)]},
        "targets": {"targets": [pkpd.Target("conc_AUC_to_24", ">=", 30), pkpd.Target("conc_AUC_to_24", ">=", 30)]},
    }[kind]
    with pytest.raises(PkpdError) as err:
        pkpd.Scenario(pkpd.load_model("pk_1cmt_iv"), **({"arms": [pkpd.Arm("a", pkpd.Dose(100, "mg"))],
                                                         "endpoints": [Endpoint("conc", "auc", end=24)]} | kw))
    assert str(err.value) == message


def test_the_hill_coefficient_of_a_sigmoid_fit_stays_within_its_documented_bound_of_10():
    """Documented: a sigmoid fit bounds h to [0.1, 10]. Exact data of a switch much steeper than that (E = 100
    D^30 / (10^30 + D^30), doses 0 and 5-20) give h = 10, the bound, not the steeper slope of the data."""
    from pkpd.scenarios import fit_dose_response

    d = np.array([0.0, 5, 8, 9, 10, 11, 12, 20])
    fit = fit_dose_response(d, 100 * d**30 / (10.0**30 + d**30), sigmoid=True)
    assert fit.hill == pytest.approx(10.0, rel=1e-6)


@pytest.mark.parametrize("spread", [1.0, 0.01])
def test_a_flat_dose_response_is_flagged_flat_whatever_the_unit_of_the_response(spread):
    """Responses 5 -+ spread at each of the doses 0, 1, 10 and 100: every dose has the same mean, so the curve does
    no better than a constant (F statistic 0) and the fit is flat: message and both flags say so (documented: no
    ED50 or ED90 is determined). The F-test does not depend on the unit of the response, so a spread of 0.01
    (residual sum of squares 8e-4) is as flat as a spread of 1."""
    from pkpd.scenarios import fit_dose_response

    d = np.repeat([0.0, 1, 10, 100], 2)
    fit = fit_dose_response(d, 5 + spread * np.tile([-1.0, 1.0], 4))
    assert (fit.ed50_flag, fit.ed90_flag) == ("flat", "flat")
    assert ("flat dose-response: the fit is no better than a constant (F-test), so no ED50 or ED90 is determined"
            in fit.message.split("; "))


def test_the_html_summary_of_a_scenario_result_shows_the_clinical_endpoints_and_the_endpoints_by_arm():
    """Flares at a constant hazard of 0.2/h counted to 2 h: 0.4 for each of 5 identical subjects of the control arm
    (unit 1). The HTML summary has two headed tables: the clinical endpoints (arm, endpoint, unit, value, ci_low,
    ci_high) and the endpoints by arm (arm, endpoint, unit, median, p5, p95), each with the row of 0.4."""
    import re
    from pathlib import Path

    import pkpd
    from pkpd.metrics import Endpoint
    from pkpd.scenarios import Arm, LogNormalPopulation, Scenario, run_scenario

    model = pkpd.load_model(Path(__file__).resolve().parents[1] / "data" / "models" / "endpoints_exposure.toml")
    sc = Scenario(model, arms=[Arm("control", control=True)], times=np.linspace(0, 4, 5),
                  population=LogNormalPopulation(5), endpoints=[Endpoint("flares", "expected_count", time=2)])
    page = run_scenario(sc, seed=1)._repr_html_()
    assert re.findall(r"<p>(.*?)</p>", page) == [
        "Clinical endpoints by arm (expected value for the arm, 95 % Monte-Carlo interval)",
        "Endpoints by arm (median, 5-95 %)",
    ]
    clinical, by_arm = page.split("</table>")[:2]
    row = ["control", "flares_count_2", "1", "0.4", "0.4", "0.4"]
    assert re.findall(r"<th>(.*?)</th>", clinical) == ["arm", "endpoint", "unit", "value", "ci_low", "ci_high"]
    assert re.findall(r"<td>(.*?)</td>", clinical) == row
    assert re.findall(r"<th>(.*?)</th>", by_arm) == ["arm", "endpoint", "unit", "median", "p5", "p95"]
    assert re.findall(r"<td>(.*?)</td>", by_arm) == row


# ------------------------------------------------------------------------------------- independent sample, seed 28
def test_dose_ranging_arms_all_take_the_infusion_duration_given():
    """One arm per dose level, all on the same schedule: duration=2 makes every arm a 2-h infusion, which its
    schedule says in words."""
    from pkpd.scenarios import dose_ranging_arms

    arms = dose_ranging_arms("inf", [10, 30], "mg", duration=2)
    assert [a.duration for a in arms] == [2, 2]
    assert [a.schedule for a in arms] == ["1 dose at 0 h, 2-h infusion"] * 2


def test_given_subjects_describe_themselves_with_the_median_of_each_array():
    """CL given as 2, 3 and 5 L/h for three subjects of WT 70 kg: "3 given subjects", then each name with its
    value, the median (3) for an array, marked so; a single subject is "typical subject"."""
    from pkpd.scenarios import GivenPopulation

    assert (GivenPopulation(params={"CL": [2, 3, 5]}, covariates={"WT": 70}).describe()
            == "3 given subjects (CL = 3 (median), WT = 70)")
    assert GivenPopulation(covariates={"WT": 70}).describe() == "typical subject (WT = 70)"


@pytest.mark.parametrize("table", [[1, 2, 3], "empty"])
def test_virtual_patients_refuse_an_empty_table_and_what_is_not_a_table(table):
    """Documented: VirtualPatients needs a VirtualPopulation or a non-empty table. An empty DataFrame and a plain
    list (no columns) are each refused with the whole message."""
    import pandas as pd

    from pkpd.errors import PkpdError
    from pkpd.scenarios import VirtualPatients

    with pytest.raises(PkpdError) as err:
        VirtualPatients(pd.DataFrame({"WT": []}) if table == "empty" else table)
    assert str(err.value) == ("population: VirtualPatients needs a VirtualPopulation or a non-empty table (one row "
                              "per patient); an empty population cannot be simulated.")


def test_a_target_written_with_the_reversed_sign_le_suggests_the_ascii_operator():
    """'=<' is not an operator; the message lists the four and suggests '<='."""
    from pkpd.errors import PkpdError
    from pkpd.scenarios import Target

    with pytest.raises(PkpdError) as err:
        Target("x", "=<", 1)
    assert str(err.value) == "target on 'x': op must be one of >=, >, <=, <; got '=<'. Did you mean '<='?"


def _dose_ranging_run():
    """emax_of_dose (response E, unit 1, of a bolus in mg): a control arm and single boluses of 3, 10 and 30 mg."""
    from pathlib import Path

    import pkpd
    from pkpd.metrics import Endpoint
    from pkpd.scenarios import Arm, Scenario, dose_ranging_arms, run_scenario

    model = pkpd.load_model(Path(__file__).resolve().parents[1] / "data" / "models" / "emax_of_dose.toml")
    arms = [Arm("control", control=True), *dose_ranging_arms("single", [3, 10, 30], "mg")]
    return run_scenario(Scenario(model, arms=arms, endpoints=[Endpoint("E", "cmax", end=24)]), seed=1)


def test_the_arms_table_of_a_result_names_the_schedule_group_of_each_arm():
    """Documented: the arms table has the dose, unit, schedule and group of each arm; the group of a treated arm is
    its schedule (here one bolus at 0 h) and that of a control arm "untreated"."""
    arms = _dose_ranging_run().arms
    assert list(arms["arm"]) == ["control", "single: 3 mg", "single: 10 mg", "single: 30 mg"]
    assert list(arms["group"]) == ["untreated"] + ["1 dose at 0 h, bolus"] * 3


def test_the_dose_response_table_gives_the_unit_of_the_endpoint_and_of_the_dose():
    """Cmax of E (unit 1 in the model file) against doses in mg: the row of the one dose-response group carries
    both units."""
    dr = _dose_ranging_run().dose_response
    assert dr[["group", "endpoint", "unit", "dose_unit"]].values.tolist() == [
        ["1 dose at 0 h, bolus", "E_Cmax_to_24", "1", "mg"]]


def test_the_sensitivity_analysis_of_a_scenario_solves_with_the_scenarios_settings():
    """Cmax of a 1-compartment IV bolus is Dose / V: its sensitivity is 0 to CL and -1 to V (central differences
    of step 1e-3: within h^2 = 1e-6; solved in closed form by default). With the scenario's settings of an ODE
    solve limited to 2 steps, failures marked, every simulation fails, the sensitivity analysis's included: its
    sensitivities are NaN, not 0 and -1."""
    import pkpd
    from pkpd.metrics import Endpoint
    from pkpd.scenarios import Arm, Scenario, run_scenario
    from pkpd.settings import SolverSettings

    def sensitivities(settings):
        sc = Scenario(pkpd.load_model("pk_1cmt_iv"), arms=[Arm("a", pkpd.Dose(100, "mg"))],
                      endpoints=[Endpoint("conc", "cmax", end=24)], sensitivity_arm="a", settings=settings)
        table = run_scenario(sc, seed=1).sensitivity.table
        return dict(zip(table["parameter"], table["sensitivity"]))

    exact = sensitivities(None)
    assert exact["CL"] == pytest.approx(0.0, abs=1e-6) and exact["V"] == pytest.approx(-1.0, rel=1e-5)
    failing = sensitivities(SolverSettings(method="ode", max_steps=2, on_failure="mark"))
    assert math.isnan(failing["CL"]) and math.isnan(failing["V"])


# ------------------------------------------------------------------------------------- independent sample, seed 29
def test_a_control_arm_gives_no_doses_in_the_arms_table():
    """A control arm is untreated: its row in the arms table (and its as_dict) has dose 0 and count 0, whatever the
    count field holds (1 by default); the treated arms keep their count (2 doses 12 h apart)."""
    from pathlib import Path

    import pkpd
    from pkpd.metrics import Endpoint
    from pkpd.scenarios import Arm, Scenario, dose_ranging_arms, run_scenario

    assert Arm("placebo", control=True).as_dict()["count"] == 0
    model = pkpd.load_model(Path(__file__).resolve().parents[1] / "data" / "models" / "emax_of_dose.toml")
    arms = [Arm("control", control=True), *dose_ranging_arms("bid", [3, 10], "mg", count=2, interval=12)]
    table = run_scenario(Scenario(model, arms=arms, endpoints=[Endpoint("E", "cmax", end=24)]), seed=1).arms
    assert table["count"].tolist() == [0, 2, 2]
    assert table["dose"].tolist() == [0.0, 3.0, 10.0]


def test_virtual_patients_draw_iiv_around_the_covariate_adjusted_typical_value():
    """Documented order: typical values are adjusted by each CovariateEffect, then the IIV is drawn around them.
    CL of pk_1cmt_iv (2.8 L/h) scaled by (WT/70)^0.75 for WT 35, 70 and 140 kg, with IIV on CL: each patient's CL is
    2.8 (WT/70)^0.75 exp(eta), where exp(eta) is CL/2.8 of the same draws (same generator seed) without the
    effect."""
    import pandas as pd

    import pkpd
    from pkpd.population import IIV, CovariateEffect
    from pkpd.scenarios import VirtualPatients

    model = pkpd.load_model("pk_1cmt_iv")
    table = pd.DataFrame({"WT": [35.0, 70.0, 140.0]})
    iiv = IIV({"CL": 0.09})
    effect = CovariateEffect(parameter="CL", covariate="WT", kind="power", value=0.75, ref=70)
    adjusted, _ = VirtualPatients(table, iiv=iiv, effects=[effect]).sample(model, np.random.default_rng(3))
    plain, _ = VirtualPatients(table, iiv=iiv).sample(model, np.random.default_rng(3))
    exp_eta = plain["CL"] / 2.8
    assert not np.allclose(exp_eta, 1.0)
    np.testing.assert_allclose(adjusted["CL"], 2.8 * (np.array([35.0, 70.0, 140.0]) / 70) ** 0.75 * exp_eta,
                               rtol=1e-12)


def test_n_trials_given_to_run_scenario_keeps_the_scenarios_own_uncertainty():
    """Documented: n_trials (and trial_success, same_population) given to run_scenario override the scenario's;
    the uncertainty stays the scenario's own (draws of V, all 32 L): 3 replicate trials are run under it."""
    import pkpd
    from pkpd.metrics import Endpoint

    sc = pkpd.Scenario(pkpd.load_model("pk_1cmt_iv"), arms=[pkpd.Arm("a", pkpd.Dose(100, "mg"))],
                       endpoints=[Endpoint("conc", "auc", end=24)], uncertainty={"V": np.full(2, 32.0)})
    res = pkpd.run_scenario(sc, seed=1, n_trials=3)
    assert res.trials is not None
    assert res.trials.n_trials == 3


def test_the_interval_of_a_median_time_to_event_is_fixed_by_the_seed():
    """The run's seed fixes everything (documented: any run can be reproduced), the bootstrap interval of a median
    time to event included: two runs at seed 4 give the same clinical table, to the bit."""
    from pathlib import Path

    import pkpd
    from pkpd.metrics import Endpoint
    from pkpd.scenarios import Arm, LogNormalPopulation, Scenario, run_scenario

    model = pkpd.load_model(Path(__file__).resolve().parents[1] / "data" / "models" / "endpoints_exposure.toml")
    sc = Scenario(model, arms=[Arm("d", pkpd.Dose(100, "mg"))], times=np.linspace(0, 48, 97),
                  population=LogNormalPopulation(10, omega={"h0": 1.0}),
                  endpoints=[Endpoint("event", "median_time_to_event")])
    first = run_scenario(sc, seed=4).clinical
    row = first.iloc[0]
    assert row["n"] == 10 and row["ci_low"] < row["value"] < row["ci_high"]
    assert first.equals(run_scenario(sc, seed=4).clinical)


@pytest.mark.parametrize("case", ["one subject", "every simulation failed"])
def test_a_clinical_value_of_fewer_than_two_subjects_has_no_interval(case):
    """Flares at a constant rate r0 = 0.2/h, counted to 2 h: one subject gives the value 0.4 with no interval (NaN,
    no standard deviation of one value, no numpy warning); three subjects whose simulations all fail (ODE limited
    to 2 steps, failures marked) give n 0 and NaN throughout."""
    from pathlib import Path

    import pkpd
    from pkpd.metrics import Endpoint
    from pkpd.scenarios import Arm, LogNormalPopulation, Scenario, run_scenario
    from pkpd.settings import SolverSettings

    model = pkpd.load_model(Path(__file__).resolve().parents[1] / "data" / "models" / "endpoints_exposure.toml")
    one = case == "one subject"
    kw = {} if one else {"settings": SolverSettings(method="ode", max_steps=2, on_failure="mark")}
    sc = Scenario(model, arms=[Arm("control", control=True)], times=np.linspace(0, 4, 5),
                  population=LogNormalPopulation(1 if one else 3),
                  endpoints=[Endpoint("flares", "expected_count", time=2)], **kw)
    row = run_scenario(sc, seed=1).clinical.iloc[0]
    assert row["n"] == (1 if one else 0)
    if one:
        assert row["value"] == pytest.approx(0.4, rel=1e-7)
    else:
        assert math.isnan(row["value"])
    assert math.isnan(row["ci_low"]) and math.isnan(row["ci_high"])


def test_a_clinical_endpoint_is_described_in_the_models_time_unit(tmp_path):
    """A model in days (time_unit "d", constant hazard 0.05/d): survival to 7 is described as "probability of no
    event by 7 d" (not h), and its value is exp(-0.05 x 7)."""
    import pkpd
    from pkpd.metrics import Endpoint
    from pkpd.scenarios import Arm, Scenario, run_scenario

    path = tmp_path / "daily.toml"
    path.write_text('[model]\nname = "daily"\nversion = "1.0"\ntime_unit = "d"\n\n'
                    '[parameters.k]\nvalue = 0.1\nunit = "1/d"\n\n[parameters.h0]\nvalue = 0.05\nunit = "1/d"\n\n'
                    '[states.A]\nunit = "mg"\ninitial = "0"\nddt = "-k * A"\n\n'
                    '[outputs.event]\ntype = "time-to-event"\nhazard = "h0"\n\n[doses.iv]\ntarget = "A"\nunit = "mg"\n')
    sc = Scenario(pkpd.load_model(path), arms=[Arm("control", control=True)], times=np.linspace(0, 14, 15),
                  endpoints=[Endpoint("event", "survival_at", time=7)])
    row = run_scenario(sc, seed=1).clinical.iloc[0]
    assert row["description"] == "probability of no event by 7 d"
    assert row["value"] == pytest.approx(math.exp(-0.05 * 7), rel=1e-6)


def test_an_unknown_key_of_the_population_section_names_the_section():
    """[population] allows n, omega, covariates and covariate_ranges: 'nn' is refused with the whole message, which
    names the section and suggests 'n'."""
    from pkpd.errors import PkpdError

    with pytest.raises(PkpdError) as err:
        scenario_from_dict({"scenario": {"model": "pk_1cmt_iv"}, "population": {"nn": 5}, **BASE})
    assert str(err.value) == "scenario [population]: unknown key 'nn'. Did you mean 'n'?"


# ---- a defect found with the seed-29 sample (issue 20): a median time not reached in some bootstrap resamples
def test_percentiles_of_values_with_inf_follow_the_order_statistics():
    """The linear percentile at position p = q/100 (n - 1) of the sorted values a: a[i] + (p - i)(a[i+1] - a[i]);
    towards an infinite a[i+1] that is inf, between two infinite ones inf, and exactly on a finite a[i] that value
    (numpy gives NaN for the last two: inf - inf, 0 * inf). Finite values give numpy's own percentiles, to the bit."""
    from pkpd.scenarios import _percentiles_with_inf as _percentiles

    inf = np.inf
    a = np.array([5.0, 1.0, inf, 3.0, inf])                     # sorted: 1, 3, 5, inf, inf
    assert _percentiles(a, (0.0, 25.0, 50.0, 62.5, 75.0, 90.0, 100.0)) == (1.0, 3.0, 5.0, inf, inf, inf, inf)
    assert _percentiles(np.array([1.0, 2.0, inf]), (25.0,)) == (1.5,)
    finite = np.random.default_rng(1).normal(size=37)
    assert _percentiles(finite, (2.5, 97.5)) == tuple(np.percentile(finite, [2.5, 97.5]))


def test_the_interval_of_a_median_time_not_reached_in_most_resamples_is_open_ended():
    """Ten subjects with a hazard of 0.01/h times exp(eta), omega 1, followed 48 h: the median time to event is not
    reached in the pooled curve (value inf) nor in most bootstrap resamples, so the upper end of its interval is
    inf. It was NaN, with numpy's "invalid value encountered in subtract" warning reaching the user."""
    import warnings
    from pathlib import Path

    import pkpd
    from pkpd.metrics import Endpoint
    from pkpd.scenarios import Arm, LogNormalPopulation, Scenario, run_scenario

    model = pkpd.load_model(Path(__file__).resolve().parents[1] / "data" / "models" / "endpoints_exposure.toml")
    sc = Scenario(model, arms=[Arm("control", control=True)], times=np.linspace(0, 48, 49),
                  population=LogNormalPopulation(10, omega={"h0": 1.0}),
                  endpoints=[Endpoint("event", "median_time_to_event")])
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        row = run_scenario(sc, seed=4).clinical.iloc[0]
    assert row["value"] == np.inf and row["ci_high"] == np.inf
    assert 0.0 < row["ci_low"] <= 48.0


# ------------------------------------------------------------------------------------- independent sample, seed 30
def _attainment_run():
    """emax_of_dose: one single 10-mg bolus to 5 subjects, with a target on E (so the result has attainment)."""
    from pathlib import Path

    import pkpd
    from pkpd.metrics import Endpoint
    from pkpd.scenarios import Arm, LogNormalPopulation, Scenario, Target, run_scenario

    model = pkpd.load_model(Path(__file__).resolve().parents[1] / "data" / "models" / "emax_of_dose.toml")
    sc = Scenario(model, arms=[Arm("d", pkpd.Dose(10, "mg"))], endpoints=[Endpoint("E", "cmax", end=24)],
                  targets=[Target("E_Cmax_to_24", ">=", 0.0)], population=LogNormalPopulation(5), name="s30")
    return model, run_scenario(sc, seed=1)


def test_a_scenario_result_without_failures_says_so_by_saying_nothing_in_its_repr():
    """The one-line repr is written out whole: no "FAILED simulations" part when none failed, and the pointers to
    .summary, .attainment and .dose_response in lower case, as the attributes are spelled."""
    _, res = _attainment_run()
    assert res.n_failed == 0
    assert repr(res) == ("ScenarioResult('s30': 1 arms x 5 subjects x 1 endpoints, seed 1; see .summary, "
                         ".attainment, .dose_response)")


def test_the_html_summary_of_a_result_with_targets_opens_with_the_attainment_table():
    """With a target the HTML summary is the header line, then the headed attainment table, clinical-free, then the
    endpoints by arm, the parts joined with nothing between them and closed by </div>."""
    model, res = _attainment_run()
    page = res._repr_html_()
    head = (f"<div><b>Scenario</b> s30: model {model.name} v{model.version}, 1 arms, 5 subjects, seed 1"
            "<p>Probability of target attainment</p><table")
    assert page.startswith(head)
    assert "</table><p>Endpoints by arm (median, 5-95 %)</p><table" in page
    assert page.endswith("</table></div>")


def test_a_dose_response_fit_without_a_note_ends_its_repr_with_n():
    """Exact plain-Emax data (E0 1, Emax 4, ED50 10, 2 replicates of 6 doses) fit without any note: the repr closes
    with "n 12)" and nothing after it."""
    from pkpd.scenarios import fit_dose_response

    doses = np.repeat([0.0, 3.0, 10.0, 30.0, 100.0, 300.0], 2)
    fit = fit_dose_response(doses, 1.0 + 4.0 * doses / (10.0 + doses) + np.tile([0.01, -0.01], 6))
    assert fit.message == ""
    assert repr(fit).endswith(", n 12)")


@pytest.mark.parametrize("seed", [True, 1.5])
def test_run_scenario_refuses_a_seed_that_is_a_bool_or_not_an_integer(seed):
    """Documented: the seed is a non-negative integer; True (a bool) and 1.5 are refused with the whole message."""
    from pkpd.errors import PkpdError
    from pkpd.scenarios import run_scenario

    sc = scenario_from_dict({"scenario": {"model": "pk_1cmt_iv"}, **BASE})
    with pytest.raises(PkpdError) as err:
        run_scenario(sc, seed=seed)
    assert str(err.value) == f"run_scenario: seed must be a non-negative integer; got {seed!r}"


def test_the_median_time_to_event_of_two_identical_subjects_has_an_interval_of_that_value():
    """Two subjects without variability (identical curves): every bootstrap resample is the same curve, so the
    interval of the median time to event is [value, value], a finite number, not NaN (two subjects suffice)."""
    from pathlib import Path

    import pkpd
    from pkpd.metrics import Endpoint
    from pkpd.scenarios import Arm, LogNormalPopulation, Scenario, run_scenario

    model = pkpd.load_model(Path(__file__).resolve().parents[1] / "data" / "models" / "endpoints_exposure.toml")
    sc = Scenario(model, arms=[Arm("control", control=True)], times=np.linspace(0, 200, 201),
                  population=LogNormalPopulation(2), endpoints=[Endpoint("event", "median_time_to_event")])
    row = run_scenario(sc, seed=1).clinical.iloc[0]
    assert row["n"] == 2 and 0.0 < row["value"] < 200.0
    assert row["ci_low"] == row["value"] == row["ci_high"]


def test_the_summary_gives_the_5th_50th_and_95th_percentiles():
    """21 values 0, 1, ..., 20: the linear 5th percentile sits at position 0.05 x 20 = 1, so p5 1, median 10,
    p95 19, mean 10."""
    from types import SimpleNamespace

    from pkpd.scenarios import _summary

    arm, ep = SimpleNamespace(name="a"), SimpleNamespace(name="e")
    row = _summary([arm], [ep], {"e": "mg"}, {("a", "e"): np.arange(21.0)}).iloc[0]
    assert (row["p5"], row["median"], row["p95"], row["mean"], row["n"]) == (1.0, 10.0, 19.0, 10.0, 21)


def test_a_control_arm_in_a_scenario_file_keeps_its_colour():
    """[arms.x] control = true, color = "#777777": the arm is drawn in that colour."""
    sc = scenario_from_dict({"scenario": {"model": "pk_1cmt_iv"}, "arms": {"x": {"control": True, "color": "#777777"}},
                             "endpoints": BASE["endpoints"]})
    assert sc.arms[0].color == "#777777"


def test_the_sensitivity_parameters_of_a_scenario_file_are_kept():
    """[sensitivity] arm = "a", parameters = ["V"]: the scenario's sensitivity is to V alone."""
    sc = scenario_from_dict({"scenario": {"model": "pk_1cmt_iv"}, "sensitivity": {"arm": "a", "parameters": ["V"]},
                             **BASE})
    assert sc.sensitivity_parameters == ("V",)


# ------------------------------------------------------------------------------------- independent sample, seed 31
@pytest.mark.parametrize(("value", "shown"), [(["a", "b"], "['a', 'b']"), (None, "None")])
def test_a_given_population_of_values_that_are_not_numbers_is_refused_naming_the_key(value, shown):
    """params = {"CL": ["a", "b"]} cannot be read as numbers (the whole message); None reads as NaN and is refused
    as not finite. Neither reaches numpy as a TypeError."""
    from pkpd.errors import PkpdError
    from pkpd.scenarios import GivenPopulation

    with pytest.raises(PkpdError) as err:
        GivenPopulation(params={"CL": value})
    want = ("population: params['CL'] must be numbers; got ['a', 'b']" if shown != "None"
            else "population: params['CL'] must be finite")
    assert str(err.value) == want


def test_a_target_value_that_is_not_finite_is_refused_naming_the_value():
    """Target("AUC", ">=", inf): the whole message names the target's endpoint and its value."""
    from pkpd.errors import PkpdError
    from pkpd.scenarios import Target

    with pytest.raises(PkpdError) as err:
        Target("AUC", ">=", math.inf)
    assert str(err.value) == "target on 'AUC': value must be a finite number; got inf"


def _turnover_run():
    """turnover (A(0) = kin/k = 20 mg, k 0.2/h): one 10-mg bolus at 0 h to two given subjects (kin 4 and 6 mg/h),
    with an endpoint against the same subjects untreated (so the run simulates them untreated too)."""
    from pathlib import Path

    import pkpd
    from pkpd.metrics import Endpoint
    from pkpd.scenarios import Arm, GivenPopulation, Scenario, run_scenario

    model = pkpd.load_model(Path(__file__).resolve().parents[1] / "data" / "models" / "turnover.toml")
    sc = Scenario(model, arms=[Arm("10 mg", pkpd.Dose(10, "mg"))], times=np.linspace(0, 10, 11),
                  endpoints=[Endpoint("amount", "change_from_untreated", time=5)],
                  population=GivenPopulation(params={"kin": [4.0, 6.0]}))
    return run_scenario(sc, seed=1)


def test_the_population_table_of_a_result_starts_with_the_subject_id_from_1():
    """Documented: result.population holds ``ID`` and the varying parameters of each subject; IDs count from 1."""
    pop = _turnover_run().population
    assert list(pop.columns) == ["ID", "kin"]
    assert list(pop["ID"]) == [1, 2] and list(pop["kin"]) == [4.0, 6.0]


def test_a_result_without_a_sensitivity_arm_has_no_sensitivity():
    """Documented: result.sensitivity is a LocalSensitivity or None; a scenario without sensitivity_arm gets None."""
    assert _turnover_run().sensitivity is None


def test_the_time_course_plot_draws_the_untreated_reference_dashed():
    """Documented: the untreated reference is drawn dashed when the scenario simulated it (here for the endpoint
    against untreated, with no control arm). Untreated, A stays at its baseline kin/k: 20 and 30 mg, whose median
    is 25 mg at every time."""
    import matplotlib.pyplot as plt

    from pkpd.plots import plot_time_course

    fig = plot_time_course(_turnover_run())
    try:
        lines = [ln for ln in fig.axes[0].get_lines() if ln.get_label() == "untreated (median)"]
        assert len(lines) == 1 and lines[0].get_linestyle() == "--"
        np.testing.assert_allclose(lines[0].get_ydata(), np.full(11, 25.0), rtol=1e-6)
    finally:
        plt.close(fig)


def test_the_interval_of_a_mean_count_of_two_subjects_is_the_normal_approximation():
    """Flares at constant rates r0 = 0.1 and 0.3 /h, counted to 2 h: 0.2 and 0.6, mean 0.4, sample SD 0.2 sqrt(2),
    so the 95 % interval is 0.4 -+ z 0.2 sqrt(2) / sqrt(2) = 0.4 -+ 0.2 z (two subjects suffice for an SD)."""
    import statistics
    from pathlib import Path

    import pkpd
    from pkpd.metrics import Endpoint
    from pkpd.scenarios import Arm, GivenPopulation, Scenario, run_scenario

    model = pkpd.load_model(Path(__file__).resolve().parents[1] / "data" / "models" / "endpoints_exposure.toml")
    sc = Scenario(model, arms=[Arm("control", control=True)], times=np.linspace(0, 4, 5),
                  population=GivenPopulation(params={"r0": [0.1, 0.3]}),
                  endpoints=[Endpoint("flares", "expected_count", time=2)])
    row = run_scenario(sc, seed=1).clinical.iloc[0]
    half = statistics.NormalDist().inv_cdf(0.975) * 0.2
    assert row["n"] == 2
    assert row["value"] == pytest.approx(0.4, rel=1e-7)
    assert row["ci_low"] == pytest.approx(0.4 - half, rel=1e-7)
    assert row["ci_high"] == pytest.approx(0.4 + half, rel=1e-7)


def test_a_scenario_file_without_a_name_is_named_after_the_file(tmp_path):
    """A scenario file without [scenario] name takes the file's name without its suffix."""
    from pkpd.scenarios import load_scenario

    path = tmp_path / "dose_finding.toml"
    path.write_text('[scenario]\nmodel = "pk_1cmt_iv"\n[arms.a]\ndose = 100\nunit = "mg"\n'
                    '[endpoints.c]\noutput = "conc"\nmetric = "cmax"\nend = 24\n')
    assert load_scenario(path).name == "dose_finding"


# ------------------------------------------------------------------------------------- independent sample, seed 32
def test_an_ed_interval_from_zero_is_ill_determined_not_a_division_by_zero():
    """Documented: an ED is "ill-determined" when its CI spans more than ILL_DETERMINED_RATIO-fold; one from 0 spans
    infinitely many fold. A sigmoid fit of a step (0 at dose 0, 10 -+ 1 at every dose 1e-17 to 8e-17): the ED50 sits
    at its search bound 1000-fold below the lowest dose, 1e-20, with an SE of log ED50 so large that the half-width is
    capped at 700, and 1e-20 exp(-700), about 1e-324, underflows to 0 (below the smallest subnormal, 4.9e-324)."""
    from pkpd.scenarios import _ed_flag, fit_dose_response

    d = np.repeat([0.0, 1.0, 2.0, 4.0, 8.0], 2) * 1e-17
    y = np.where(d > 0, 10.0, 0.0) + np.tile([1.0, -1.0], 5)
    fit = fit_dose_response(d, y, sigmoid=True)
    assert fit.ed50 == pytest.approx(1e-20, rel=1e-6)
    assert fit.ed50_ci[0] == 0.0 and math.isfinite(fit.ed50_ci[1])
    assert fit.ed50_flag == "ill-determined"
    assert _ed_flag(5.0, (0.0, 10.0), 1.0, 10.0, False) == "ill-determined"


def test_the_lowest_dose_table_names_the_schedule_group_of_a_target_no_dose_attains():
    """Documented: lowest_dose gives ``group, target, dose, dose_unit, probability`` per schedule group and target,
    dose NaN when no dose attains it. The three arms of dose_ranging_arms are boluses at 0 h, so every row,
    the unattained target beta (Cmax >= 10 mg/L, at most 100 mg / 32 L) included, names the group
    "1 dose at 0 h, bolus"."""
    low = _pta_result().lowest_dose(0.8)
    assert list(low.columns) == ["group", "target", "dose", "dose_unit", "probability"]
    assert low["group"].tolist() == ["1 dose at 0 h, bolus"] * 3
    assert low.iloc[2]["target"] == "beta" and math.isnan(low.iloc[2]["dose"])


def test_a_scenario_file_keeps_its_description():
    """[scenario] description is the scenario's description, as written."""
    sc = scenario_from_dict({"scenario": {"model": "pk_1cmt_iv", "description": "Phase I single ascending dose"},
                             **BASE})
    assert sc.description == "Phase I single ascending dose"


# ------------------------------------------------------------------------------------- independent sample, seed 33
def test_the_repr_of_a_plain_emax_fit_names_it_emax_not_sigmoid():
    """A fit with sigmoid False is an Emax fit and says so; with sigmoid True, "sigmoid Emax". The whole line, by
    hand: E0 1, Emax 4, ED50 10 [5, 20], ED90 = 9 x ED50 = 90 for hill 1, n 12, no note."""
    from pkpd.scenarios import DoseResponseFit

    def fit(sigmoid: bool) -> DoseResponseFit:
        return DoseResponseFit(e0=1.0, emax=4.0, ed50=10.0, hill=1.0, ed50_ci=(5.0, 20.0), ed90=90.0,
                               ed90_ci=(45.0, 180.0), se={}, covariance=None, sigmoid=sigmoid, n=12)

    assert repr(fit(False)) == "DoseResponseFit(Emax: E0 1, Emax 4, ED50 10 [5, 20], ED90 90, hill 1, n 12)"
    assert repr(fit(True)) == "DoseResponseFit(sigmoid Emax: E0 1, Emax 4, ED50 10 [5, 20], ED90 90, hill 1, n 12)"


def test_a_dose_arm_in_a_scenario_file_keeps_its_colour():
    """[arms.a] dose = 100, unit = "mg", color = "#1f77b4": the arm is drawn in that colour (documented for Arm)."""
    sc = scenario_from_dict({"scenario": {"model": "pk_1cmt_iv"},
                             "arms": {"a": {"dose": 100, "unit": "mg", "color": "#1f77b4"}},
                             "endpoints": BASE["endpoints"]})
    assert sc.arms[0].color == "#1f77b4"


# ------------------------------------------------------------------------------------- independent sample, seed 34
def test_a_target_is_met_by_the_numbers_of_an_object_array_and_never_by_its_nan():
    """Target.met takes any array_like of numbers: an object-dtype column (numbers and NaN, as a pandas column of
    mixed origin holds them) is compared as floats, 2500 >= 2000 met, 1500 not, and the NaN (a failed subject)
    never meets it (documented)."""
    import pandas as pd

    from pkpd.scenarios import Target

    met = Target("x", ">=", 2000).met(pd.Series([2500, np.nan, 1500], dtype=object))
    assert met.tolist() == [True, False, False]


def test_a_dose_response_fit_takes_its_doses_as_a_column():
    """Doses given as an (n, 1) column (e.g. a one-column table) are the n doses: exact Emax data (E0 2, Emax 10,
    ED50 30, h 1) at 0-300 mg give back ED50 30 rather than a length mismatch."""
    from pkpd.scenarios import fit_dose_response

    doses = np.array([0.0, 5.0, 10.0, 30.0, 100.0, 300.0])
    curve = 2.0 + 10.0 * doses / (30.0 + doses)
    fit = fit_dose_response(doses.reshape(-1, 1), curve)
    assert fit.ed50 == pytest.approx(30.0, rel=1e-5)
    assert fit.n == 6


def test_an_ed50_above_the_doses_stops_at_the_search_bound_1000_fold_above_the_highest_dose():
    """A response proportional to dose (y = d at 1, 3, 10) never saturates: the Emax curve fits it best with the
    ED50 as high as it may go, the upper search bound 1000 x the highest dose = 1e4 (the lower one is 1000-fold
    below the lowest dose, see the seed-32 test), and the fit says the doses do not bracket it."""
    from pkpd.scenarios import fit_dose_response

    d = np.array([1.0, 3.0, 10.0] * 2)
    fit = fit_dose_response(d, d.copy())
    assert fit.ed50 == pytest.approx(1e4, rel=1e-5)
    assert "ED50 at the edge of its search range: the doses do not bracket it" in fit.message.split("; ")


def test_a_dose_response_fit_of_huge_doses_warns_of_no_floating_point_error():
    """Documented: fit_dose_response never raises for a poor fit, its message says what went wrong. A step at doses
    1e100-1e300 (0 -+ 1 at dose 0, 10 -+ 1 above) drives the sigmoid curve's powers to overflow and its covariance
    to NaN: with numpy's default error handling (warn; underflow ignored) and warnings made errors, the fit still
    returns, its ED50 below the lowest positive dose."""
    import warnings

    from pkpd.scenarios import fit_dose_response

    d = np.repeat([0.0, 1e100, 1e200, 1e300], 2)
    y = np.where(d > 0, 10.0, 0.0) + np.tile([1.0, -1.0], 4)
    with warnings.catch_warnings(), np.errstate(all="warn", under="ignore"):
        warnings.simplefilter("error")
        fit = fit_dose_response(d, y, sigmoid=True)
    assert 0 < fit.ed50 < 1e100


def test_the_ed90_interval_of_a_sigmoid_fit_is_the_delta_method_on_log_ed90():
    """Documented: the ED90 interval is ED90 exp(-+ z s), s the delta-method SE of log ED90 = log ED50 + ln 9 / h,
    i.e. s^2 = g C g with g = (d/d log ED50, d/dh) = (1, -ln 9 / h^2) and C the fit's covariance of (log ED50, h).
    g here by central differences of ln 9 / h, z = 1.959964 (95 %)."""
    from pkpd.scenarios import fit_dose_response

    doses = np.repeat([0.0, 5.0, 10.0, 20.0, 30.0, 50.0, 100.0, 300.0], 2)
    y = 2.0 + 10.0 * doses**2 / (30.0**2 + doses**2) + np.tile([0.3, -0.3, -0.2, 0.2], 4)
    fit = fit_dose_response(doses, y, sigmoid=True)
    h, step = fit.hill, 1e-6
    assert abs(h - 0.5) > 0.5  # away from h = 0.5, where ln 9 / h^2 = 2 ln 9 / h
    g = np.array([1.0, (math.log(9.0) / (h + step) - math.log(9.0) / (h - step)) / (2 * step)])
    s90 = math.sqrt(g @ fit.covariance[2:, 2:] @ g)
    assert fit.ed90 == pytest.approx(fit.ed50 * 9.0 ** (1 / h), rel=1e-12)
    assert fit.ed90_ci[0] == pytest.approx(fit.ed90 * math.exp(-1.959964 * s90), rel=1e-5)
    assert fit.ed90_ci[1] == pytest.approx(fit.ed90 * math.exp(1.959964 * s90), rel=1e-5)


def test_the_clinical_table_gives_a_control_arm_no_dose_unit():
    """A control arm has no dose: in the clinical table, as in the arms table, its dose unit is empty, the dosed
    arm's is its dose's, "mg"."""
    res = _flares_result()
    assert list(res.clinical["dose_unit"]) == ["", "mg"]


def test_the_success_level_of_a_scenario_files_uncertainty_is_the_scenarios(tmp_path):
    """[uncertainty] success (documented in docs/uncertainty.md: a trial succeeds when its PTA reaches it, default
    0.8) is the scenario's trial_success: 0.9 as written, 0.8 when left out."""
    _population_fit_file(tmp_path / "fit.json")
    data = {"scenario": {"model": "wang2007"}, "arms": {"c": {"control": True}},
            "endpoints": {"f": {"output": "f", "metric": "cmax", "end": 1}}}
    file = str(tmp_path / "s.toml")
    assert scenario_from_dict({**data, "uncertainty": {"from": "fit.json", "success": 0.9}},
                              file=file).trial_success == 0.9
    assert scenario_from_dict({**data, "uncertainty": {"from": "fit.json"}}, file=file).trial_success == 0.8


# ------------------------------------------------------------------------------------- independent sample, seed 35
def test_a_stand_in_population_without_given_covariates_gives_no_body_weight_to_a_per_kg_arm():
    """Documented: any object with n, sample, typical_covariates and describe can stand in for a population, and
    per-kg doses without weights are a DosingError. A stand-in that does not say which covariates it gives (no
    given_covariates) gives no body weight: 1 mg/kg of pk_1cmt_iv is refused with the whole message, not with an
    AttributeError."""
    import pkpd
    from pkpd.errors import DosingError
    from pkpd.metrics import Endpoint
    from pkpd.scenarios import Arm, Scenario

    class TwoSubjects:
        n = 2

        def sample(self, model, rng):
            return {}, {}

        def typical_covariates(self, model):
            return {}

        def describe(self):
            return "two subjects"

    with pytest.raises(DosingError) as err:
        Scenario(pkpd.load_model("pk_1cmt_iv"), [Arm("a", pkpd.Dose(1, "mg/kg"))],
                 [Endpoint("conc", "cmax", end=24)], population=TwoSubjects())
    assert str(err.value) == ("arm 'a': doses mg/kg are per kg, but the population gives no body weight; add "
                              "covariates={'WT': 70} (or covariate_ranges) to the population.")


def test_targets_given_as_a_generator_are_kept_and_attained():
    """targets is any sequence of Target: a generator is read once by the checks, so the scenario keeps them as a
    tuple and the run attains both. The typical subject of pk_1cmt_iv (V 32 L) after 100 mg as a bolus has Cmax
    100/32 = 3.125 mg/L: Cmax >= 3 mg/L is met (probability 1), Cmax >= 4 mg/L is not (0)."""
    import pkpd
    from pkpd.metrics import Endpoint
    from pkpd.scenarios import Arm, Scenario, Target, run_scenario

    wanted = [Target("cmax", ">=", 3, "mg/L", name="three"), Target("cmax", ">=", 4, "mg/L", name="four")]
    sc = Scenario(pkpd.load_model("pk_1cmt_iv"), [Arm("a", pkpd.Dose(100, "mg"))],
                  [Endpoint("conc", "cmax", end=24, name="cmax")], targets=(t for t in wanted))
    assert isinstance(sc.targets, tuple) and [t.name for t in sc.targets] == ["three", "four"]
    att = run_scenario(sc).attainment
    assert att["target"].tolist() == ["three", "four"]
    assert att["probability"].tolist() == [1.0, 0.0]


def test_same_population_of_a_scenario_files_uncertainty_is_the_scenarios(tmp_path):
    """[uncertainty] same_population (documented in docs/uncertainty.md: every trial simulates the same virtual
    subjects, default false) is the scenario's same_population: true as written, false when left out."""
    _population_fit_file(tmp_path / "fit.json")
    data = {"scenario": {"model": "wang2007"}, "arms": {"c": {"control": True}},
            "endpoints": {"f": {"output": "f", "metric": "cmax", "end": 1}}}
    file = str(tmp_path / "s.toml")
    assert scenario_from_dict({**data, "uncertainty": {"from": "fit.json", "same_population": True}},
                              file=file).same_population is True
    assert scenario_from_dict({**data, "uncertainty": {"from": "fit.json"}}, file=file).same_population is False


# ------------------------------------------------------------------------------------- independent sample, seed 36
_Z975 = 1.959963984540054  # the standard normal's 0.975 quantile (tables: 1.95996)
_COV3 = [[0.04, 0.01, 0.02], [0.01, 0.09, 0.03], [0.02, 0.03, 0.25]]  # of (E0, Emax, log ED50)


def test_the_band_of_an_emax_curve_at_its_limits_is_quiet_and_is_the_limit_of_the_delta_method():
    """The delta-method band is E -+ z sqrt(g' C g), g = (1, f, -Emax h f (1 - f)) with f = D^h / (ED50^h + D^h).
    Where f is 0 or 1 the log-ED50 derivative vanishes: at dose 0 (and at a positive dose so small that D / ED50 is
    0 in floating point, 5e-324 against ED50 10) g = (1, 0, 0), the band E0 -+ z sqrt(C_E0); with ED50 0 (the limit
    of an ED50 far below every dose) every positive dose has g = (1, 1, 0), the band E0 + Emax -+ z sqrt(C_E0 +
    2 C_E0,Emax + C_Emax). With E0 1, Emax 2, C_E0 0.04, C_E0,Emax 0.01, C_Emax 0.09: 1 -+ 0.2 z and 3 -+ z sqrt(0.15),
    and no floating-point warning under numpy's default error handling with warnings as errors."""
    import warnings

    from pkpd.scenarios import DoseResponseFit

    nan2 = (math.nan, math.nan)
    at0 = (1 - 0.2 * _Z975, 1 + 0.2 * _Z975)
    above = (3 - math.sqrt(0.15) * _Z975, 3 + math.sqrt(0.15) * _Z975)
    for ed50, doses, expected in ((0.0, [0.0, 1.0, 10.0], [at0, above, above]),
                                  (10.0, [0.0, 5e-324], [at0, at0])):
        fit = DoseResponseFit(e0=1.0, emax=2.0, ed50=ed50, hill=1.0, ed50_ci=nan2, ed90=0.0, ed90_ci=nan2, se={},
                              covariance=np.array(_COV3))
        with np.errstate(divide="warn", over="warn", invalid="warn"), warnings.catch_warnings():
            warnings.simplefilter("error")
            low, high = fit.band(doses)
        np.testing.assert_allclose(low, [e[0] for e in expected], rtol=1e-12)
        np.testing.assert_allclose(high, [e[1] for e in expected], rtol=1e-12)


# ---- a defect found beside the seed-36 survivor (issue 20): the sigmoid band where D / ED50 is 0 or infinite
def test_the_band_of_a_sigmoid_emax_curve_at_its_limits_is_the_limit_of_the_delta_method():
    """For a sigmoid Emax curve g has a fourth entry, the Hill derivative Emax f (1 - f) ln(D / ED50), whose limit is
    0 where f is 0 or 1 (x^h ln x -> 0 as x -> 0, for D -> 0 and for ED50 -> 0), so the band is that of the plain
    Emax curve with the same (E0, Emax, log ED50) covariance, whatever the Hill variance: 1 -+ 0.2 z at dose 0 and
    at 5e-324 against ED50 10, 3 -+ z sqrt(0.15) at every positive dose with ED50 0. It was NaN there, with numpy's
    'invalid value encountered in multiply' (0 times an infinite logarithm)."""
    import warnings

    from pkpd.scenarios import DoseResponseFit

    nan2 = (math.nan, math.nan)
    cov = np.zeros((4, 4))
    cov[:3, :3] = _COV3
    cov[3, 3], cov[0, 3], cov[3, 0] = 0.16, 0.01, 0.01
    at0 = (1 - 0.2 * _Z975, 1 + 0.2 * _Z975)
    above = (3 - math.sqrt(0.15) * _Z975, 3 + math.sqrt(0.15) * _Z975)
    for ed50, doses, expected in ((0.0, [0.0, 1.0, 10.0], [at0, above, above]),
                                  (10.0, [0.0, 5e-324], [at0, at0])):
        fit = DoseResponseFit(e0=1.0, emax=2.0, ed50=ed50, hill=2.0, ed50_ci=nan2, ed90=0.0, ed90_ci=nan2, se={},
                              covariance=cov, sigmoid=True)
        with np.errstate(divide="warn", over="warn", invalid="warn"), warnings.catch_warnings():
            warnings.simplefilter("error")
            low, high = fit.band(doses)
        np.testing.assert_allclose(low, [e[0] for e in expected], rtol=1e-12)
        np.testing.assert_allclose(high, [e[1] for e in expected], rtol=1e-12)


# ------------------------------------------------------------------------------------- independent sample, seed 37
def test_the_replicate_trials_of_a_run_with_progress_true_show_their_bar_on_stderr(capsys):
    """Documented (pkpd._progress): progress=True always shows a bar, on stderr; progress=False never does. A run
    with parameter uncertainty passes the choice to its replicate trials: 'iv: trials' counts 2 of 2 trials with
    True, and nothing is written with False (a run this short never shows a bar by default, so the choice must
    reach the trials' bar)."""
    import pkpd

    sc = _iv_scenario(name="iv")
    for choice, shown in ((True, True), (False, False)):
        pkpd.run_scenario(sc, seed=1, uncertainty={"V": np.full(2, 32.0)}, n_trials=2, progress=choice)
        err = capsys.readouterr().err
        assert ("iv: trials: 100%" in err and "| 2/2 [" in err) is shown
        assert (err != "") is shown


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({**_one_arm(), "arm": {}}, "s.toml: unknown key 'arm'. Did you mean 'arms'?"),
        (
            {**BASE, "scenario": {"model": "pk_1cmt_iv", "seeds": 3}},
            "s.toml [scenario]: unknown key 'seeds'. Did you mean 'seed'?",
        ),
        ({**BASE, "scenario": {"name": "x"}}, "s.toml [scenario]: missing key 'model'"),
    ],
)
def test_a_misspelt_top_level_table_or_scenario_key_is_refused_naming_the_file(data, message):
    """Every problem of a scenario file names the file and section (load_scenario's documented errors): a misspelt
    table at the top ([arm] for [arms]) is placed in the file without a section, a misspelt or missing key of
    [scenario] in 's.toml [scenario]', each with the whole message and its close match."""
    from pkpd.errors import PkpdError

    with pytest.raises(PkpdError) as err:
        scenario_from_dict(data, file="s.toml")
    assert str(err.value) == message


@pytest.mark.parametrize("omega", [[["CL", 0.3]], 0.3, "CL = 0.3"])
def test_population_omega_that_is_not_a_table_is_refused_naming_the_section(omega):
    """[population] omega must be a table of name = value, like covariates and covariate_ranges: a list of pairs
    (which dict() would take), a bare number or a string is refused, naming the file and [population.omega]."""
    from pkpd.errors import PkpdError

    with pytest.raises(PkpdError) as err:
        scenario_from_dict(_one_arm(population={"n": 2, "omega": omega}), file="s.toml")
    assert str(err.value) == "s.toml [population.omega]: must be a table of name = value"


# ---- a defect found beside the seed-37 survivor (issue 20): the replicate trials' bar counted trials as subjects
def test_the_bar_of_the_replicate_trials_counts_trials_not_subjects(capsys):
    """The trials' bar advances once per replicate trial, so its rate is in trials (as the bar of
    simulation_estimation's trials is): '2/2 [..., 83.16trial/s]' or, for slow trials, '[..., 1.20s/trial]'. It
    said 'subject/s'."""
    import re

    import pkpd

    pkpd.run_scenario(_iv_scenario(name="iv"), seed=1, uncertainty={"V": np.full(2, 32.0)}, n_trials=2,
                      progress=True)
    err = capsys.readouterr().err
    # tqdm pads a rate below 10 to five characters ('2/2 [00:00<00:00,  2.54trial/s]' on a slow machine)
    assert re.search(r"iv: trials: 100%\|[^|]+\| 2/2 \[[^\]]*, +[0-9.?]+(trial/s|s/trial)\]\n$", err), err
    assert "subject" not in err


# ------------------------------------------------------------------------------------- independent sample, seed 38
@pytest.mark.parametrize(("kw", "message"), [
    ({"n_trials": 0}, "n_trials must be an integer >= 1; got 0"),
    ({"trial_success": 1.5}, "trial_success must be a probability in (0, 1] (the PTA a trial must reach); got 1.5"),
])
def test_bad_replicate_trial_settings_are_refused_naming_the_scenario(kw, message):
    """A Scenario's errors are placed in the scenario ("scenario 'iv': ...", as its times and seed are): with
    parameter uncertainty, n_trials 0 and a trial success of 1.5 are refused with the whole message."""
    from pkpd.errors import PkpdError

    with pytest.raises(PkpdError) as err:
        _iv_scenario(name="iv", uncertainty={"V": np.full(2, 32.0)}, **kw)
    assert str(err.value) == f"scenario 'iv': {message}"


@pytest.mark.parametrize("level", [1.0, 0.0, 1.5])
def test_a_dose_response_fit_refuses_a_confidence_level_outside_0_to_1(level):
    """A confidence level is a probability strictly between 0 and 1 (a level of 1 would give intervals from 0 to
    infinity): exact Emax data (E0 2, Emax 10, ED50 30) with level 1, 0 or 1.5 is refused with the whole message;
    0.95 fits."""
    from pkpd.errors import PkpdError
    from pkpd.scenarios import fit_dose_response

    doses = np.array([0.0, 5.0, 10.0, 20.0, 30.0, 50.0, 100.0, 300.0])
    curve = 2.0 + 10.0 * doses / (30.0 + doses)
    assert fit_dose_response(doses, curve, level=0.95).ed50 == pytest.approx(30.0, rel=1e-5)
    with pytest.raises(PkpdError) as err:
        fit_dose_response(doses, curve, level=level)
    assert str(err.value) == f"fit_dose_response: level must be a number in (0, 1), e.g. 0.95; got {level!r}"


def test_a_seed_drawn_for_a_scenario_run_fits_an_int64_and_reproduces_the_run(monkeypatch):
    """Without a seed one is drawn from fresh entropy (128 bits) and recorded in result.seed: a non-negative int64
    (0 <= seed < 2**63, as the seeds simulate and the replicate trials draw, so it fits an int64 column and a TOML
    integer, which is 64-bit signed) that gives the same run when passed back. The entropy is set to 2**127 - 1
    here, the largest numpy draws; three subjects with CL varying, so the seed matters."""
    import pandas as pd

    import pkpd
    from pkpd.scenarios import LogNormalPopulation

    class Entropy:
        entropy = 2**127 - 1

    sc = _iv_scenario(population=LogNormalPopulation(3, omega={"CL": 0.3}))
    monkeypatch.setattr(np.random, "SeedSequence", lambda *a, **k: Entropy())
    first = pkpd.run_scenario(sc)
    monkeypatch.undo()
    assert isinstance(first.seed, int) and 0 <= first.seed < 2**63
    assert int(np.int64(first.seed)) == first.seed
    again = pkpd.run_scenario(sc, seed=first.seed)
    pd.testing.assert_frame_equal(first.table, again.table)
    assert first.table["value"].nunique() == 3


# ------------------------------------------------------------------------------------- independent sample, seed 39
_DOSE_RESPONSE_COLUMNS = (
    "group, endpoint, unit, dose_unit, model, E0, Emax, ED50, ED50_low, ED50_high, ED90, ED90_low, ED90_high, hill, "
    "n, converged, ED50_flag, ED90_flag, note"
).split(", ")


@pytest.mark.parametrize("doses", [[100], [10, 30]])
def test_a_run_with_no_schedule_to_fit_still_has_the_documented_dose_response_columns(doses):
    """ScenarioResult.dose_response has the documented columns, with a row for each schedule with >= 3 dose levels:
    a single arm, or one schedule of 2 dose levels (10, 30 mg), gives no fit, so the table is empty (and .fits
    too), yet keeps every documented column, so code selecting result.dose_response["ED50"] works on any run."""
    import pkpd
    from pkpd.metrics import Endpoint

    sc = pkpd.Scenario(pkpd.load_model("pk_1cmt_iv"), arms=pkpd.dose_ranging_arms("d", doses, "mg"),
                       endpoints=[Endpoint("conc", "cmax", end=24)], times=np.linspace(0, 24, 5),
                       population=pkpd.LogNormalPopulation(2))
    res = pkpd.run_scenario(sc, seed=1)
    assert len(res.dose_response) == 0 and res.fits == {}
    assert list(res.dose_response.columns) == _DOSE_RESPONSE_COLUMNS
    assert res.dose_response["ED50"].tolist() == []


def test_the_converged_column_of_the_dose_response_table_is_the_fits_own_flag():
    """emax_of_dose with H = 1: the response is exactly 100 D / (10 + D) (Emax 100, ED50 10 mg), so a plain Emax fit
    of the control and 4 dose levels meets its data and converges: the table's "converged" column (documented) is
    the boolean True, the fit's own flag, beside ED50 10 and ED90 = 9 ED50 = 90."""
    import pkpd
    from pkpd.metrics import Endpoint

    arms = [pkpd.Arm("c", control=True), *pkpd.dose_ranging_arms("d", [3, 10, 30, 100], "mg")]
    sc = pkpd.Scenario(_emax_of_dose(), arms=arms, endpoints=[Endpoint("E", "value_at", time=1)], times=[0.0, 1.0],
                       params={"H": 1.0})
    res = pkpd.run_scenario(sc, seed=1)
    assert list(res.dose_response.columns) == _DOSE_RESPONSE_COLUMNS
    row = res.dose_response.iloc[0]
    fit = res.fits[("1 dose at 0 h, bolus", "E_at_1")]
    assert row["ED50"] == pytest.approx(10.0, rel=1e-5)
    assert row["ED90"] == pytest.approx(90.0, rel=1e-5)
    assert fit.converged is True
    assert res.dose_response["converged"].dtype == bool
    assert res.dose_response["converged"].tolist() == [True]


# ------------------------------------------------------------------------------------- independent sample, seed 40
def test_a_scenario_file_without_uncertainty_may_simulate_up_to_the_limit_of_subject_arms():
    """Documented (docs/security.md): a scenario file may ask for at most 10,000,000 subjects x arms
    (MAX_SCENARIO_RUNS), "more than" that is refused naming [population]. Without [uncertainty] there are no
    replicate trials, only the one run: 5,000,001 and 10,000,000 subjects in 1 arm load (5,000,001 was refused,
    counted as if 1 replicate trial ran beside the run, by a message naming an [uncertainty] the file does not
    have: "1 trials x 5,000,001 subject-arms, more than 10,000,000"), 10,000,001 are refused."""
    from pkpd.errors import PkpdError
    from pkpd.scenarios import MAX_SCENARIO_RUNS

    assert MAX_SCENARIO_RUNS == 10_000_000
    for n in (5_000_001, 10_000_000):
        sc = scenario_from_dict({"scenario": {"model": "pk_1cmt_iv"}, "population": {"n": n}, **BASE})
        assert sc.population.n == n
    with pytest.raises(PkpdError, match=r"\[population\].*10,000,001 simulated subject-arms"):
        scenario_from_dict({"scenario": {"model": "pk_1cmt_iv"}, "population": {"n": 10_000_001}, **BASE})


def test_dose_labels_take_a_power_of_ten_from_a_largest_level_of_ten_thousand():
    """Documented (_dose_labels): from a largest level of 1e4 on, dose levels are written with one power of ten, that
    of the largest in steps of 3 (10^4 -> e3): 3000 and 10000 mg read "3e3" and "10e3"; below 1e4 they are written
    plainly (3000 and 9999 mg)."""
    import pkpd

    assert [a.name for a in pkpd.dose_ranging_arms("d", [3e3, 1e4], "mg")] == ["d: 3e3 mg", "d: 10e3 mg"]
    assert [a.name for a in pkpd.dose_ranging_arms("d", [3e3, 9999], "mg")] == ["d: 3000 mg", "d: 9999 mg"]


def test_virtual_patients_list_several_covariate_effects_separated_by_commas():
    """VirtualPatients.describe: the covariate effects, parameter ~ covariate (kind), are one part of the line,
    separated by ", " (two effects of WT, on CL and V, both power)."""
    import pandas as pd

    import pkpd
    from pkpd.scenarios import VirtualPatients

    patients = VirtualPatients(pd.DataFrame({"WT": [35.0, 70.0, 140.0]}),
                               effects=[pkpd.CovariateEffect("CL", "WT", "power", 0.75, ref=70),
                                        pkpd.CovariateEffect("V", "WT", "power", 1.0, ref=70)])
    assert patients.describe() == "3 virtual patients; covariate effects: CL ~ WT (power), V ~ WT (power)"


def test_the_ed90_interval_of_a_plain_emax_fit_is_nine_times_its_ed50_interval_even_when_capped():
    """A plain Emax fit has hill 1, so log ED90 = log ED50 + ln 9 exactly: ED90 = 9 ED50 and its interval (delta
    method, the same SE on the log scale) is the ED50 interval times 9. A flat response (+1 and -1 alternating at
    doses 0-30) has an SE of log ED50 so large that z SE is far above the cap of the half-width (700, which keeps
    exp from overflowing): both intervals are capped alike, and the ratio stays 9 at both ends."""
    from pkpd.scenarios import fit_dose_response

    d = np.repeat([0.0, 1.0, 3.0, 10.0, 30.0], 2)
    fit = fit_dose_response(d, np.tile([1.0, -1.0], 5), sigmoid=False)
    assert 1.96 * fit.se["log_ed50"] > 700
    assert fit.ed90 == pytest.approx(9.0 * fit.ed50, rel=1e-12)
    assert fit.ed90_ci[0] == pytest.approx(9.0 * fit.ed50_ci[0], rel=1e-9)
    assert fit.ed90_ci[1] == pytest.approx(9.0 * fit.ed50_ci[1], rel=1e-9)


def test_the_bootstrap_of_a_median_time_to_event_resamples_every_subject_and_the_table_names_the_doses():
    """Untreated (A = 0), S = exp(-h0 t) with h0 0.1 and 0.05/h: subject medians ln 2 / h0 = 6.93 and 13.86 h. The
    bootstrap over the 2 subjects (200 resamples, seed 1) draws both subjects once each, or one of them twice
    (probability 1/4 each: never drawn in 200 resamples has probability (3/4)^200, 1e-25), so its 2.5th and 97.5th
    percentiles are the two subjects' own medians. The clinical table's documented "dose" and "dose_unit" columns
    hold each arm's dose: 0 and "" for the control, 50 and "mg" for the dosed arm."""
    from pathlib import Path

    import pkpd
    from pkpd.metrics import Endpoint
    from pkpd.scenarios import Arm, GivenPopulation, Scenario, run_scenario

    model = pkpd.load_model(Path(__file__).resolve().parents[1] / "data" / "models" / "endpoints_exposure.toml")
    sc = Scenario(model, arms=[Arm("control", control=True), *pkpd.dose_ranging_arms("d", [50], "mg")],
                  endpoints=[Endpoint("event", "median_time_to_event", end=24, name="tmed")],
                  population=GivenPopulation(params={"h0": np.array([0.1, 0.05])}), times=np.linspace(0, 24, 2401))
    clinical = run_scenario(sc, seed=1).clinical
    assert clinical["dose"].tolist() == [0.0, 50.0]
    assert clinical["dose_unit"].tolist() == ["", "mg"]
    row = clinical.iloc[0]
    assert row["n"] == 2
    assert row["ci_low"] == pytest.approx(np.log(2) / 0.1, rel=1e-5)
    assert row["ci_high"] == pytest.approx(np.log(2) / 0.05, rel=1e-5)
    assert row["ci_low"] < row["value"] < row["ci_high"]


# ------------------------------------------------------------------------------------- independent sample, seed 41
# ---- a defect found beside the seed-41 survivors (issue 20): the band warned where D / ED50 overflows to infinity
def test_the_band_of_an_emax_curve_whose_dose_to_ed50_ratio_overflows_is_quiet_and_is_its_limit():
    """An ED50 of 5e-324 is the limit ED50 -> 0 as much as 0 is (1 / 5e-324 overflows to infinity), and so is a dose
    of 1e300 against ED50 1e-300: f = D^h / (ED50^h + D^h) is 1 at every positive dose and 0 at dose 0, so the band
    is 1 -+ 0.2 z at dose 0 and 3 -+ z sqrt(0.15) above it (E0 1, Emax 2, C_E0 0.04, C_E0,Emax 0.01, C_Emax 0.09), for
    the plain and the sigmoid curve alike. Numpy's 'overflow encountered in divide' (a warning under numpy's default
    error handling) was shown at every dose with ED50 5e-324, and at 1e300 with ED50 1e-300."""
    import warnings

    from pkpd.scenarios import DoseResponseFit

    nan2 = (math.nan, math.nan)
    cov = np.zeros((4, 4))
    cov[:3, :3] = _COV3
    cov[3, 3] = 0.16
    at0 = (1 - 0.2 * _Z975, 1 + 0.2 * _Z975)
    above = (3 - math.sqrt(0.15) * _Z975, 3 + math.sqrt(0.15) * _Z975)
    for sigmoid, hill, c in ((False, 1.0, np.array(_COV3)), (True, 2.0, cov)):
        for ed50, doses, expected in ((5e-324, [0.0, 1.0, 10.0], [at0, above, above]),
                                      (1e-300, [0.0, 1e300], [at0, above])):
            fit = DoseResponseFit(e0=1.0, emax=2.0, ed50=ed50, hill=hill, ed50_ci=nan2, ed90=0.0, ed90_ci=nan2, se={},
                                  covariance=c, sigmoid=sigmoid)
            with np.errstate(divide="warn", over="warn", invalid="warn"), warnings.catch_warnings():
                warnings.simplefilter("error")
                low, high = fit.band(doses)
            np.testing.assert_allclose(low, [e[0] for e in expected], rtol=1e-12)
            np.testing.assert_allclose(high, [e[1] for e in expected], rtol=1e-12)


# ---- a defect found beside the seed-41 survivors (issue 20): an ED50 of -0.0 with a non-integer Hill coefficient
def test_an_emax_curve_with_an_ed50_of_minus_0_is_the_step_of_an_ed50_of_0_whatever_its_hill_coefficient():
    """-0.0 == 0.0, so an ED50 of -0.0 is the ED50 of 0 (the limit of an ED50 far below every dose): the curve is E0
    at dose 0 and E0 + Emax at every positive dose (1 and 3 with E0 1, Emax 2), for a Hill coefficient of 0.5 as for
    1 and 2, and the sigmoid band is 1 -+ 0.2 z at dose 0 and 3 -+ z sqrt(0.15) above it. With h = 0.5 the curve was
    NaN at every positive dose: D / -0.0 is -inf, and a non-integer power of a negative number is NaN."""
    from pkpd.scenarios import DoseResponseFit

    nan2 = (math.nan, math.nan)
    cov = np.zeros((4, 4))
    cov[:3, :3] = _COV3
    cov[3, 3] = 0.16
    at0 = (1 - 0.2 * _Z975, 1 + 0.2 * _Z975)
    above = (3 - math.sqrt(0.15) * _Z975, 3 + math.sqrt(0.15) * _Z975)
    for hill in (0.5, 1.0, 2.0):
        fit = DoseResponseFit(e0=1.0, emax=2.0, ed50=-0.0, hill=hill, ed50_ci=nan2, ed90=0.0, ed90_ci=nan2, se={},
                              covariance=cov, sigmoid=True)
        np.testing.assert_array_equal(fit.predict([0.0, 1e-3, 1.0, 1e6]), [1.0, 3.0, 3.0, 3.0])
        low, high = fit.band([0.0, 1.0, 10.0])
        np.testing.assert_allclose(low, [at0[0], above[0], above[0]], rtol=1e-12)
        np.testing.assert_allclose(high, [at0[1], above[1], above[1]], rtol=1e-12)


def test_the_band_of_an_emax_curve_with_an_ed50_of_minus_0_is_quiet():
    """(DoseResponseFit.band__mutmut_27: numpy's invalid-value warnings no longer ignored around ln(D / ED50)) With
    ED50 -0.0, ln(D / ED50) = ln(-inf) is NaN (numpy: 'invalid value encountered in log'), but f = 1 at every positive
    dose, so the Hill derivative Emax f (1 - f) ln(D / ED50) is taken as its limit 0 and the band is that of an ED50
    of 0 (1 -+ 0.2 z at dose 0, 3 -+ z sqrt(0.15) above it), without a floating-point warning under numpy's default
    error handling, with warnings as errors, for the plain (h = 1) and the sigmoid (h = 2) curve."""
    import warnings

    from pkpd.scenarios import DoseResponseFit

    nan2 = (math.nan, math.nan)
    cov = np.zeros((4, 4))
    cov[:3, :3] = _COV3
    cov[3, 3] = 0.16
    at0 = (1 - 0.2 * _Z975, 1 + 0.2 * _Z975)
    above = (3 - math.sqrt(0.15) * _Z975, 3 + math.sqrt(0.15) * _Z975)
    for sigmoid, hill, c in ((False, 1.0, np.array(_COV3)), (True, 2.0, cov)):
        fit = DoseResponseFit(e0=1.0, emax=2.0, ed50=-0.0, hill=hill, ed50_ci=nan2, ed90=0.0, ed90_ci=nan2, se={},
                              covariance=c, sigmoid=sigmoid)
        with np.errstate(divide="warn", over="warn", invalid="warn"), warnings.catch_warnings():
            warnings.simplefilter("error")
            low, high = fit.band([0.0, 1.0, 10.0])
        np.testing.assert_allclose(low, [at0[0], above[0], above[0]], rtol=1e-12)
        np.testing.assert_allclose(high, [at0[1], above[1], above[1]], rtol=1e-12)


def test_a_dose_response_fit_without_a_covariance_has_nan_intervals_and_shows_them():
    """(fit_dose_response__mutmut_262: the intervals None, not (NaN, NaN), when there is no covariance) A response of
    exactly 2 at every dose (0, 1, 3, 10 mg, twice each) is flat: lmfit gives no covariance, so, as documented, the
    ED50 and ED90 intervals are (NaN, NaN), the fit's repr shows them as [nan, nan], and the message says why."""
    from pkpd.scenarios import fit_dose_response

    fit = fit_dose_response(np.repeat([0.0, 1.0, 3.0, 10.0], 2), np.full(8, 2.0))
    assert fit.covariance is None
    for ci in (fit.ed50_ci, fit.ed90_ci):
        assert isinstance(ci, tuple) and len(ci) == 2 and all(math.isnan(x) for x in ci)
    assert (fit.ed50_flag, fit.ed90_flag) == ("flat", "flat")
    assert "[nan, nan]" in repr(fit)
    assert fit.message.startswith("no covariance (flat or over-parameterised response): intervals not available")


# ------------------------------------------------------------------------------------- independent sample, seed 42
def test_a_log_normal_population_separates_its_fixed_covariates_by_commas():
    """(LogNormalPopulation.describe__mutmut_25: the fixed covariates joined by "XX, XX") Two fixed covariates, WT 70
    and AGE 40.5, are listed in the one-line description as "WT = 70, AGE = 40.5", in the order given."""
    from pkpd.scenarios import LogNormalPopulation

    assert LogNormalPopulation(10, covariates={"WT": 70, "AGE": 40.5}).describe() == (
        "10 virtual subjects; no inter-individual variability; covariates WT = 70, AGE = 40.5"
    )


def test_the_flatness_f_test_compares_the_explained_sum_of_squares_with_the_residual_one():
    """(_is_flat__mutmut_39: rss0 + rss1 for rss0 - rss1 in the F statistic) The F-test of a k = 3 parameter curve
    against a constant, n = 5 responses 0..4 (RSS0 = 10): F = ((RSS0 - RSS1) / 2) / (RSS1 / 2) = RSS0 / RSS1 - 1 on
    (2, 2) degrees of freedom, whose survival function is exactly 1 / (1 + F). RSS1 = RSS0 / 19 gives F = 18, p =
    1/19 = 0.0526 >= 0.05: flat; RSS1 = RSS0 / 21 gives F = 20, p = 1/21 = 0.0476 < 0.05: not flat. A fit no better
    than the constant (residuals y - mean, F = 0, p = 1) is flat."""
    from pkpd.scenarios import _is_flat

    y = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
    shape = np.array([1.0, -1.0, 0.0, 0.0, 0.0])  # sum of squares 2
    assert _is_flat(y, shape * math.sqrt(10.0 / 19 / 2), 3, 0.05) is True
    assert _is_flat(y, shape * math.sqrt(10.0 / 21 / 2), 3, 0.05) is False
    assert _is_flat(y, y - y.mean(), 3, 0.05) is True
    assert _is_flat(np.arange(20.0), np.arange(20.0) - 9.5, 2, 0.05) is True


def test_the_html_view_shows_endpoint_summaries_to_4_significant_digits():
    """(ScenarioResult._repr_html___mutmut_58: the summary table without its float format) 100 mg as a bolus into
    V = 3 L (no variability): Cmax = 100 / 3 = 33.333... mg/L, so the median, 5 and 95 % columns of the notebook view
    read 33.33 (4 significant digits), not pandas' 33.333333."""
    import pkpd
    from pkpd.metrics import Endpoint

    sc = pkpd.Scenario(pkpd.load_model("pk_1cmt_iv"), arms=pkpd.dose_ranging_arms("d", [100], "mg"),
                       endpoints=[Endpoint("conc", "cmax", end=24)], times=np.linspace(0, 24, 5), params={"V": 3.0})
    page = pkpd.run_scenario(sc, seed=1)._repr_html_()
    assert page.count("<td>33.33</td>") == 3
    assert "33.333" not in page


def test_a_cluster_run_counts_its_progress_in_subjects(monkeypatch, capsys):
    """(_simulate_on_cluster__mutmut_24: the chunk weights not given to the task runner) 2 arms x 6 subjects on a
    cluster in chunks of 4: the bar's unit is "subject", so with progress=True it ends at 12/12 (2 x 6 simulations),
    not at 3/3 (the chunks). The spy runs the tasks locally, keeping every other argument."""
    import pkpd
    import pkpd._parallel as parallel
    from pkpd.metrics import Endpoint

    real = parallel.map_tasks
    monkeypatch.setattr(parallel, "map_tasks",
                        lambda fn, payloads, **kw: real(fn, payloads, **(kw | {"client": None})))
    monkeypatch.setattr(parallel, "check_client", lambda client: None)
    sc = pkpd.Scenario(pkpd.load_model("pk_1cmt_iv"), arms=pkpd.dose_ranging_arms("d", [10, 30], "mg"),
                       endpoints=[Endpoint("conc", "cmax", end=24)],
                       population=pkpd.LogNormalPopulation(6, omega={"V": 0.2}), times=np.linspace(0, 24, 5), seed=3)
    capsys.readouterr()
    pkpd.run_scenario(sc, client=object(), progress=True, chunk_size=4)
    err = capsys.readouterr().err
    assert "12/12" in err and "subject" in err
    assert "3/3" not in err


@pytest.mark.parametrize(
    ("times", "message"),
    [
        ({"stpo": 24}, "s.toml [scenario.times]: unknown key 'stpo'. Did you mean 'stop' or 'step'?"),
        ({"start": 0}, "s.toml [scenario.times]: missing key 'stop'"),
    ],
)
def test_a_bad_key_of_the_time_grid_names_the_scenario_times_section(times, message):
    """(scenario_from_dict__mutmut_56: the section None when the keys of [scenario.times] are checked) An unknown
    key of [scenario.times] (with its close matches) and a missing stop name the file and the [scenario.times]
    section, as every other error of that table does."""
    from pkpd.errors import PkpdError

    with pytest.raises(PkpdError) as err:
        scenario_from_dict({"scenario": {"model": "pk_1cmt_iv", "times": times}, **BASE}, file="s.toml")
    assert str(err.value) == message


# ------------------------------------------------------------------------------------- independent sample, seed 43
def test_a_given_population_keeps_its_values_read_only():
    """(GivenPopulation.__post_init__ mutmut_34: the cleaned arrays left writable) The values of a GivenPopulation
    are a read-only copy: writing into them raises ValueError and leaves the value given (0.02) unchanged."""
    from pkpd.scenarios import GivenPopulation

    k = [0.02, 0.03]
    pop = GivenPopulation(params={"k_c": k}, covariates={"WT": 70})
    for arr in (pop.params["k_c"], pop.covariates["WT"]):
        assert not arr.flags.writeable
    with pytest.raises(ValueError):
        pop.params["k_c"][0] = 1.0
    with pytest.raises(ValueError):
        pop.covariates["WT"][...] = 80.0
    assert pop.params["k_c"].tolist() == [0.02, 0.03] and k == [0.02, 0.03]
    assert pop.covariates["WT"].tolist() == 70.0


@pytest.mark.parametrize(("endpoint", "shown"), [("", "''"), (5, "5"), (None, "None")])
def test_a_target_without_an_endpoint_name_is_refused(endpoint, shown):
    """(Target.__post_init__ mutmut_2: `and` for `or` in the endpoint check) An empty name and a non-string are
    each refused with the exact message naming what was given."""
    from pkpd.errors import PkpdError
    from pkpd.scenarios import Target

    with pytest.raises(PkpdError) as err:
        Target(endpoint, ">=", 1)
    assert str(err.value) == f"target: endpoint must be an endpoint name; got {shown}"


def test_a_dose_response_band_without_covariance_is_nan_of_the_doses_shape():
    """(DoseResponseFit.band mutmut_15: np.full_like(np.nan) for the upper band) With no covariance the band is
    (NaN, NaN) with the shape of the doses, while the curve itself is e0 + emax D / (ED50 + D) (at D = ED50 = 10:
    1 + 4 / 2 = 3)."""
    from pkpd.scenarios import DoseResponseFit

    fit = DoseResponseFit(e0=1.0, emax=4.0, ed50=10.0, hill=1.0, ed50_ci=(math.nan, math.nan), ed90=90.0,
                          ed90_ci=(math.nan, math.nan), se={}, covariance=None)
    doses = np.array([[0.0, 10.0], [30.0, 90.0]])
    lo, hi = fit.band(doses)
    assert lo.shape == hi.shape == (2, 2)
    assert np.isnan(lo).all() and np.isnan(hi).all()
    np.testing.assert_allclose(fit.predict(doses), [[1.0, 3.0], [4.0, 4.6]], rtol=1e-12)


# ------------------------------------------------------------------------------------- independent sample, seed 44
@pytest.mark.parametrize("sigmoid", [False, True])
@pytest.mark.parametrize(("ed50", "doses"), [(100.0, [0, 1, 10, 30, 100]), (1.0, [0, 1, 10, 30, 100])])
def test_an_ed50_at_a_dose_tested_is_not_called_an_extrapolation(ed50, doses, sigmoid):
    """(a defect found beside fit_dose_response__mutmut_356, `ed50 < hi_d` for `ed50 <= hi_d`) Exact Emax data
    (E0 5, Emax 40, h 1 or 2) with the ED50 at the highest (100 mg) or the lowest (1 mg) positive dose tested: the
    fit returns that dose up to rounding (100.00000000000004), inside the doses tested, so its flag is "" and its
    message says nothing of an extrapolation, as the flag's 1e-9 rounding tolerance has it. It said "ED50 outside
    the doses tested (1-100): an extrapolation"."""
    from pkpd.scenarios import fit_dose_response

    d = np.array(doses, dtype=float)
    h = 2.0 if sigmoid else 1.0
    fit = fit_dose_response(d, 5 + 40 * d**h / (ed50**h + d**h), sigmoid=sigmoid)
    assert fit.ed50 == pytest.approx(ed50, rel=1e-9)
    assert fit.ed50_flag == ""
    assert "ED50 outside" not in fit.message


def test_the_doses_tested_are_a_closed_range_with_a_rounding_tolerance_of_1e_9():
    """(fit_dose_response__mutmut_356: `ed50 < hi_d` for `ed50 <= hi_d`, the line now `_within_doses`) The range
    the flags and the messages share is closed at both ends, 1e-9 relative tolerance included: 2 * (1 - 1e-9) and
    8 * (1 + 1e-9) are within the doses 2-8 tested, the next float beyond either is not."""
    from pkpd.scenarios import _within_doses

    lo, hi = 2.0 * (1 - 1e-9), 8.0 * (1 + 1e-9)
    assert _within_doses(lo, 2.0, 8.0) and _within_doses(hi, 2.0, 8.0)
    assert _within_doses(2.0, 2.0, 8.0) and _within_doses(8.0, 2.0, 8.0)
    assert not _within_doses(math.nextafter(lo, 0.0), 2.0, 8.0)
    assert not _within_doses(math.nextafter(hi, math.inf), 2.0, 8.0)


def test_an_arm_as_a_table_row_keeps_its_dose_unit():
    """(Arm.as_dict__mutmut_7: `dose_unit and ""` for `dose_unit or ""`) A dosed arm's row names its dose unit,
    "mg"; a control arm's row has "" (it has no dose), in the arms table of a run as well."""
    import pkpd
    from pkpd.metrics import Endpoint
    from pkpd.scenarios import Arm

    assert Arm("a", dose=pkpd.Dose(100.0, "mg")).as_dict()["unit"] == "mg"
    assert Arm("placebo", control=True).as_dict()["unit"] == ""
    sc = pkpd.Scenario(pkpd.load_model("pk_1cmt_iv"),
                       arms=(Arm("placebo", control=True), *pkpd.dose_ranging_arms("d", [100], "mg")),
                       endpoints=[Endpoint("conc", "cmax", end=24)], times=np.linspace(0, 24, 5), params={"V": 3.0})
    assert pkpd.run_scenario(sc, seed=1).arms["unit"].tolist() == ["", "mg"]


def test_a_dose_response_fit_finds_the_least_squares_optimum_of_a_response_that_dips_and_recovers():
    """(fit_dose_response__mutmut_102: Emax started at the response's scale, positive, instead of the observed
    span) A response that falls from 2 to -11 and recovers to -4 (means at 0, 1, 10, 100 and 1000 mg, 3 points each
    at -1, 0, +1): for each ED50 on a grid of 4001 from 1e-3 to 1e6 (the search range) E0 and Emax are linear, and
    their least-squares fit gives the smallest residual sum of squares, 96.98, at ED50 0.0101, Emax -8.52. The fit
    finds that optimum (and it is not flat by the F-test); started with Emax positive it stopped at the edge of its
    search range, ED50 1e6, RSS 268.4, flat."""
    from pkpd.scenarios import fit_dose_response

    d = np.repeat([0.0, 1.0, 10.0, 100.0, 1000.0], 3)
    y = np.repeat([2.0, -6.0, -11.0, -5.0, -4.0], 3) + np.tile([-1.0, 0.0, 1.0], 5)
    best = (math.inf, math.nan, math.nan)
    for ed in np.exp(np.linspace(math.log(1e-3), math.log(1e6), 4001)):
        x = np.column_stack([np.ones_like(d), d / (ed + d)])
        coef = np.linalg.lstsq(x, y, rcond=None)[0]
        best = min(best, (float(np.sum((x @ coef - y) ** 2)), ed, coef[1]))
    rss, ed50, emax = best
    assert rss == pytest.approx(96.98, abs=0.01) and ed50 == pytest.approx(0.0101, rel=0.01)
    fit = fit_dose_response(d, y)
    assert float(np.sum((fit.predict(d) - y) ** 2)) <= rss + 1e-6
    assert fit.ed50 == pytest.approx(ed50, rel=0.01) and fit.emax == pytest.approx(emax, rel=1e-3)
    assert "flat" not in fit.message and "edge of its search range" not in fit.message


def test_the_attainment_of_an_arm_whose_subjects_all_failed_is_nan():
    """(_attainment__mutmut_42: k / n even when n is 0) An arm whose 3 subjects all failed (NaN endpoint) has n 0,
    n_met 0 and a probability of attaining the target, and its interval, of NaN (there is nothing to count); the
    other arm, 2 of 3 values of at least 10 mg/L, has 2/3 and the Wilson interval (p + z^2/2n -+ z sqrt(p (1 - p) / n
    + z^2/4n^2)) / (1 + z^2/n), 0.2077-0.9385. With the mutant, a ZeroDivisionError."""
    import pkpd
    from pkpd.scenarios import Arm, Target, _attainment

    arms = (Arm("failed", dose=pkpd.Dose(1.0, "mg")), Arm("ok", dose=pkpd.Dose(2.0, "mg")))
    values = {("failed", "c"): np.full(3, np.nan), ("ok", "c"): np.array([5.0, 10.0, 20.0])}
    table = _attainment(arms, [Target("c", ">=", 10)], {"c": "mg/L"}, values, {"failed": "g", "ok": "g"})
    assert table["n"].tolist() == [0, 3] and table["n_met"].tolist() == [0, 2]
    assert math.isnan(table["probability"][0]) and table["probability"][1] == 2 / 3
    assert math.isnan(table["ci_low"][0]) and math.isnan(table["ci_high"][0])
    z, n, p = 1.959963984540054, 3, 2 / 3
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / (1 + z**2 / n)
    assert table["ci_low"][1] == pytest.approx(centre - half, rel=1e-12)
    assert table["ci_high"][1] == pytest.approx(centre + half, rel=1e-12)
    assert (round(centre - half, 4), round(centre + half, 4)) == (0.2077, 0.9385)


# ------------------------------------------------------------------------------------- independent sample, seed 45
def test_dose_ranging_arms_give_every_arm_the_dose_target_asked_for():
    """(dose_ranging_arms__mutmut_17: `target=None` for `target=target`) Dose-ranging arms of 32 and 64 mg as IV
    boluses (target "iv", the central compartment of pk_1cmt_oral, V = 32 L) each carry that target, and their Cmax
    is the concentration just after the bolus, D / V = 1 and 2 mg/L. With the mutant the doses went to the default
    target, the oral depot, with a lower, later peak."""
    import pkpd
    from pkpd.metrics import Endpoint

    arms = pkpd.dose_ranging_arms("iv", [32, 64], "mg", target="iv")
    assert [a.target for a in arms] == ["iv", "iv"]
    sc = pkpd.Scenario(pkpd.load_model("pk_1cmt_oral"), arms=arms, endpoints=[Endpoint("conc", "cmax", end=24)],
                       times=np.linspace(0, 24, 25))
    cmax = pkpd.run_scenario(sc, seed=1).summary["median"].tolist()
    np.testing.assert_allclose(cmax, [1.0, 2.0], rtol=1e-9)


def test_a_scenario_takes_a_seed_of_zero_and_refuses_a_negative_one():
    """(Scenario.__post_init__ mutmut_145: `seed <= 0` for `seed < 0`) A seed must be a non-negative integer, so 0
    is accepted and a run of the scenario uses it (result seed 0); -1 is refused with the exact message."""
    import pkpd
    from pkpd.errors import PkpdError
    from pkpd.metrics import Endpoint

    def scenario(seed):
        return pkpd.Scenario(pkpd.load_model("pk_1cmt_iv"), arms=pkpd.dose_ranging_arms("d", [100], "mg"),
                             endpoints=[Endpoint("conc", "cmax", end=24)], times=np.linspace(0, 24, 5),
                             params={"V": 3.0}, seed=seed)

    assert scenario(0).seed == 0
    assert pkpd.run_scenario(scenario(0)).seed == 0
    with pytest.raises(PkpdError) as err:
        scenario(-1)
    assert str(err.value) == "scenario 'scenario': seed must be a non-negative integer; got -1"


def test_the_flatness_f_test_rejects_only_below_alpha():
    """(_is_flat__mutmut_54: `<=` for `<` against alpha) For k = 3 parameters and n = 5 responses 0..4 (RSS0 =
    10), residuals with RSS1 = 1 + 4 = 5 give F = (RSS0 - RSS1) / 2 / (RSS1 / 2) = 1 on (2, 2) degrees of freedom,
    whose p-value is exactly 1 / (1 + F) = 0.5: F equals the critical value at alpha 0.5, which the test does not
    exceed, so the response is flat at alpha 0.5 (the test rejects only for p < alpha) and not at alpha 0.5 plus
    one ulp."""
    from scipy.stats import f as f_dist

    from pkpd.scenarios import _is_flat

    y = np.arange(5.0)
    residuals = np.array([1.0, 2.0, 0.0, 0.0, 0.0])
    assert f_dist.sf(1.0, 2, 2) == 0.5
    assert _is_flat(y, residuals, 3, 0.5) is True
    assert _is_flat(y, residuals, 3, math.nextafter(0.5, 1.0)) is False


# ------------------------------------------------------------------------------------- independent sample, seed 46
def test_the_clinical_table_holds_a_clinical_endpoint_listed_after_a_non_clinical_one():
    """(_clinical__mutmut_31: `break` for `continue` past a non-clinical endpoint) Cmax (not clinical) listed first,
    then the expected count of flares at a constant hazard r0 = 0.2/h to 2 h: the clinical table still has the
    count's row, 0.2 * 2 = 0.4 for each of 3 identical untreated subjects (a zero-width interval), and no row for
    Cmax. With the mutant the loop stopped at Cmax and the table was empty."""
    from pathlib import Path

    import pkpd
    from pkpd.metrics import Endpoint
    from pkpd.scenarios import Arm, LogNormalPopulation, Scenario, run_scenario

    model = pkpd.load_model(Path(__file__).resolve().parents[1] / "data" / "models" / "endpoints_exposure.toml")
    sc = Scenario(
        model,
        arms=[Arm("control", control=True)],
        times=np.linspace(0, 4, 5),
        population=LogNormalPopulation(3),
        endpoints=[Endpoint("conc", "cmax", end=4), Endpoint("flares", "expected_count", time=2)],
    )
    clinical = run_scenario(sc, seed=1).clinical
    assert clinical["endpoint"].tolist() == ["flares_count_2"]
    row = clinical.iloc[0]
    assert row["n"] == 3
    for key in ("value", "ci_low", "ci_high"):
        assert row[key] == pytest.approx(0.2 * 2, rel=1e-7), key


# ------------------------------------------------------------------------------------- independent sample, seed 47
def test_the_arms_table_of_a_result_names_each_arms_time_unit():
    """(Arm.as_dict__mutmut_29: key "XXtime_unitXX" for "time_unit") The arms table (result.arms, written as
    arms.csv by the report) gives each arm's interval, start and infusion in the arm's own time unit, so it must
    say which: an arm of 2 doses 7 days apart from day 1, each a 0.5-day infusion of 5 mg, is the row of exactly
    these values with time_unit "day", and a run's arms table has that column beside the group."""
    import pkpd
    from pkpd.metrics import Endpoint
    from pkpd.scenarios import Arm, Scenario, run_scenario

    arm = Arm("q7d", pkpd.Dose(5, "mg"), count=2, interval=7, start=1, duration=0.5, time_unit="day")
    assert arm.as_dict() == {"arm": "q7d", "dose": 5.0, "unit": "mg",
                             "schedule": "2 doses 7 day apart from 1 day, 0.5-day infusion", "count": 2,
                             "interval": 7, "start": 1, "infusion": 0.5, "time_unit": "day"}
    sc = Scenario(pkpd.load_model("pk_1cmt_iv"), arms=[Arm("a", pkpd.Dose(100, "mg"))], times=[0.0, 1.0],
                  endpoints=[Endpoint("conc", "cmax", end=1)])
    arms = run_scenario(sc, seed=1).arms
    assert arms.columns.tolist() == ["arm", "dose", "unit", "schedule", "count", "interval", "start", "infusion",
                                     "time_unit", "group"]
    assert arms["time_unit"].tolist() == ["h"]


def test_dose_labels_move_to_the_next_power_of_ten_from_100_times_the_power():
    """(_dose_labels__mutmut_26: 11**exp for 10**exp) Documented: "100e6 reads worse than 0.1e9". Levels up to 1e5
    have the power 3 (3 * floor(log10(1e5) / 3)), and 1e5 / 10**3 = 100 moves them to the power 6: 3e4 and 1e5 read
    0.03e6 and 0.1e6; 100e6 reads 0.1e9. Just below (99e3 / 10**3 = 99) they stay at 10**3. With the mutant
    1e5 / 11**3 = 75 < 100, and the labels were 30e3 and 100e3 (100e6 for 1e8)."""
    from pkpd.scenarios import _dose_labels, dose_ranging_arms

    assert _dose_labels([3e4, 1e5]) == ["0.03e6", "0.1e6"]
    assert _dose_labels([3e4, 99e3]) == ["30e3", "99e3"]
    assert [a.name for a in dose_ranging_arms("single", [10e6, 100e6], "cell/kg")] == [
        "single: 0.01e9 cell/kg", "single: 0.1e9 cell/kg"]


def test_a_scenario_files_uncertainty_takes_the_estimation_scale_from_the_scenarios_model_file(tmp_path):
    """(_scenario_from_dict__mutmut_426: the scenario's model not handed to as_uncertainty) A population fit of the
    model file iv_allometric (not a shipped model, so its name alone cannot be loaded): BETA's bounds [-3, 3] reach
    below 0, so BETA is drawn on the natural scale (documented in pkpd.uncertainty: the log scale only for typical
    values with lower bound >= 0), its variance 1e-4 kept as is; TVCL, V (bounds above 0), omega2_TVCL and sd are on
    the log scale, their variances 1e-4 / estimate^2 (delta method). With the mutant the model file was not
    consulted and the positive BETA = 0.75 was taken for a log-scale parameter (variance 1e-4 / 0.75^2)."""
    import json
    import shutil
    from pathlib import Path

    shutil.copy(Path(__file__).resolve().parents[1] / "data" / "models" / "iv_allometric.toml",
                tmp_path / "iv.toml")
    names = ["TVCL", "BETA", "V", "omega2_TVCL", "sd"]
    est = [3.0, 0.75, 30.0, 0.04, 0.3]
    doc = {
        "format": "pkpd-fit", "version": 1, "kind": "population", "model_name": "iv_allometric", "method": "focei",
        "objective": 1.0, "minus2ll": 1.0, "aic": 11.0, "bic": 12.0, "theta": {"TVCL": 3.0, "BETA": 0.75, "V": 30.0},
        "iiv": {"names": ["TVCL"], "omega": [[0.04]], "distributions": ["lognormal"]},
        "error": {"conc": {"kind": "Additive", "sd": 0.3, "fixed": []}},
        "parameters": {"columns": ["name", "estimate", "se", "rse_percent"],
                       "data": {"name": names, "estimate": est, "se": [0.01] * 5, "rse_percent": [1.0] * 5}},
        "covariance": (1e-4 * np.eye(5)).tolist(), "covariance_message": "",
        "eta": [[0.0]] * 10, "shrinkage": {"TVCL": 0.0},
        "table": {"columns": ["ID", "TIME", "DV"], "data": {"ID": [1], "TIME": [0.0], "DV": [10.0]}},
        "n_subjects": 10, "n_obs": 20, "converged": True, "message": "", "n_evaluations": 1, "seconds": 0.1,
        "output_units": {"conc": "mg/L"}, "time_unit": "h", "covariate_effects": [], "iov": None, "kappa": None,
    }
    (tmp_path / "fit.json").write_text(json.dumps(doc))
    data = {"scenario": {"model": "iv.toml"}, "arms": {"c": {"control": True}},
            "endpoints": {"c": {"output": "conc", "metric": "cmax", "end": 1}}, "uncertainty": {"from": "fit.json"}}
    unc = scenario_from_dict(data, file=str(tmp_path / "s.toml")).uncertainty
    assert list(unc.names) == names
    assert tuple(unc.scales) == ("log", "linear", "log", "log", "log")
    expected = [1e-4 / 3.0**2, 1e-4, 1e-4 / 30.0**2, 1e-4 / 0.04**2, 1e-4 / 0.3**2]
    assert np.diag(unc.covariance) == pytest.approx(expected, rel=1e-12)


# ---- a defect found beside the seed-47 survivors (issue 20): the report's arms table said [h] for arms in days
def test_the_reports_arms_table_gives_interval_first_dose_and_infusion_in_the_arms_time_unit():
    """An arm of 2 doses of 100 mg 1 day apart from day 0.5, each a 0.25-day infusion (pk_1cmt_iv, model in hours):
    the report's arms table shows 1, 0.5 and 0.25 under "interval [day]", "first dose [day]" and "infusion [day]";
    beside an arm in hours (12 h apart) the units differ, so each cell names its own (1 day, 12 h) and the headers
    none, the untreated arm's cells stay empty. The headers said [h] whatever the arm's unit: an interval of 1 day
    read as 1 h."""
    import pkpd
    from pkpd.metrics import Endpoint
    from pkpd.report import _tables
    from pkpd.scenarios import Arm, Scenario, run_scenario

    daily = Arm("daily", pkpd.Dose(100, "mg"), count=2, interval=1, start=0.5, duration=0.25, time_unit="day")
    model = pkpd.load_model("pk_1cmt_iv")
    sc = Scenario(model, arms=[daily], times=[0.0, 48.0], endpoints=[Endpoint("conc", "cmax", end=48)])
    table = _tables(run_scenario(sc, seed=1), 0.8)[0]["arms"]
    assert table.headers[5:] == ["interval [day]", "first dose [day]", "infusion [day]"]
    assert [row[5:] for row in table.rows] == [["1", "0.5", "0.25"]]

    twice = Arm("twice", pkpd.Dose(100, "mg"), count=2, interval=12)
    sc = Scenario(model, arms=[daily, twice, Arm("none", control=True)], times=[0.0, 48.0],
                  endpoints=[Endpoint("conc", "cmax", end=48)])
    table = _tables(run_scenario(sc, seed=1), 0.8)[0]["arms"]
    assert table.headers[5:] == ["interval", "first dose", "infusion"]
    assert [row[5:] for row in table.rows] == [["1 day", "0.5 day", "0.25 day"], ["12 h", "0 h", "–"],
                                               ["–", "0", "–"]]


# ------------------------------------------------------------------------------------- independent sample, seed 48
def test_an_arm_given_both_dose_and_doses_is_refused_with_the_whole_message():
    """(_scenario_from_dict__mutmut_277: `"DOSE" in body` for `"dose" in body`) An arm is one dose (dose = AMOUNT)
    or one arm per level (doses = [...]), not both: dose = 100 beside doses = [10, 30] mg is ambiguous and refused
    with the whole message naming the file and the arm. With the mutant the check never fired (no arm key is
    "DOSE"), dose was dropped silently and the file gave 2 arms of 10 and 30 mg."""
    from pkpd.errors import DosingError

    data = {**_one_arm(), "arms": {"a": {"dose": 100, "doses": [10, 30], "unit": "mg"}}}
    with pytest.raises(DosingError) as err:
        scenario_from_dict(data, file="s.toml")
    assert str(err.value) == "s.toml [arms.a]: give dose (one arm) or doses (one arm per level), not both"
    with pytest.raises(DosingError) as err:
        scenario_from_dict(data)
    assert str(err.value) == "scenario [arms.a]: give dose (one arm) or doses (one arm per level), not both"
    del data["arms"]["a"]["dose"]
    assert [arm.dose.amount for arm in scenario_from_dict(data).arms] == [10.0, 30.0]


# ---- a defect found beside the seed-48 survivors (issue 20): lowest_dose raised pandas' "all NA" error
def test_the_lowest_dose_table_of_a_schedule_whose_simulations_all_failed_has_nan_rows():
    """V = 0 for both subjects makes conc = A/V non-finite, so every simulation of both arms fails (marked, not
    raised): each arm's attainment is NaN with n 0 (nothing to count). lowest_dose documents "dose NaN and the best
    PTA reached when no dose attains it": no PTA was reached, so each schedule group's row has dose NaN,
    probability NaN and keeps its dose unit. It raised pandas' ValueError "Encountered all NA values" (idxmax of
    NaNs only)."""
    import pkpd
    from pkpd.errors import BoundsWarning
    from pkpd.metrics import Endpoint
    from pkpd.scenarios import GivenPopulation, Target

    ep = Endpoint("conc", "cmax", end=24)
    sc = pkpd.Scenario(
        pkpd.load_model("pk_1cmt_iv"),
        arms=[pkpd.Arm("once", pkpd.Dose(10, "mg")), pkpd.Arm("twice", pkpd.Dose(10, "mg"), count=2, interval=12)],
        endpoints=[ep], targets=[Target(ep.name, ">=", 0.2, "mg/L", name="t")],
        population=GivenPopulation(params={"V": [0.0, 0.0]}), times=np.linspace(0, 24, 25),
        settings=pkpd.SolverSettings(on_failure="mark"), seed=1)
    with pytest.warns(BoundsWarning, match="V .median of 4 values 0. L is outside its plausible range"):
        res = pkpd.run_scenario(sc)
    assert res.n_failed == 4 and res.attainment["n"].tolist() == [0, 0]
    low = res.lowest_dose(0.8)
    assert low["group"].tolist() == ["1 dose at 0 h, bolus", "2 doses 12 h apart from 0 h, bolus"]
    assert low["target"].tolist() == ["t", "t"] and low["dose_unit"].tolist() == ["mg", "mg"]
    assert np.isnan(low["dose"]).all() and np.isnan(low["probability"]).all()


def test_the_trials_lowest_dose_table_of_a_schedule_whose_simulations_all_failed_has_nan_rows():
    """The same for replicate trials (ScenarioResult.trials): an arm whose PTA is NaN in both trials (every
    simulation failed) has no probability of trial success (n_trials 0, p_success NaN), so lowest_dose's row for
    its schedule has dose, p_success and PTA NaN and keeps the dose unit; a schedule whose arm has a PTA of 0.5 in
    one trial and NaN in the other reaches 0.5 < 0.8 in 1 of 1 trials counted: p_success 0, dose NaN, PTA 0.5.
    It raised pandas' ValueError "Encountered all NA values"."""
    import pandas as pd

    from pkpd.uncertainty import TrialSummary

    rows = [(trial, arm, group, 10.0, "mg", "t", p) for trial in (0, 1)
            for arm, group, p in (("a", "g", math.nan), ("b", "h", 0.5 if trial == 0 else math.nan))]
    attainment = pd.DataFrame(rows, columns=["trial", "arm", "group", "dose", "dose_unit", "target", "probability"])
    trials = TrialSummary(n_trials=2, seeds=(1, 2), trial_success=0.8, same_population=False, parameters=None,
                          attainment=attainment, summary=None, arms=None)
    assert trials.pta["n_trials"].tolist() == [0, 1]
    low = trials.lowest_dose(0.8)
    assert low["group"].tolist() == ["g", "h"] and low["dose_unit"].tolist() == ["mg", "mg"]
    assert np.isnan(low["dose"]).all() and math.isnan(low["p_success"][0]) and low["p_success"][1] == 0.0
    for column in ("pta_median", "pta_low", "pta_high"):
        assert math.isnan(low[column][0]) and low[column][1] == 0.5


# ------------------------------------------------------------------------------------- independent sample, seed 49
def test_trial_success_given_to_run_scenario_overrides_the_scenarios():
    """(run_scenario__mutmut_41: `(trial_success is not None) and False`: the scenario's trial_success always)
    Documented: trial_success given to run_scenario overrides the scenario's (0.8 by default). A 100 mg IV bolus
    into V = 20 and 50 L gives Cmax = 100 / V = 5 and 2 mg/L, so the target Cmax >= 3 mg/L is met by 1 of 2 subjects
    in every trial (the uncertainty draws only CL): PTA 0.5. At trial_success 0.5 both trials succeed, p_success 1
    with the Wilson interval (n / (n + z^2), 1) for n = 2; at the scenario's 0.8 neither does (p_success 0). With
    the mutant the override was dropped and the trials were judged at 0.8."""
    import pkpd
    from pkpd.metrics import Endpoint
    from pkpd.scenarios import GivenPopulation, Target

    ep = Endpoint("conc", "cmax", end=24)
    sc = pkpd.Scenario(pkpd.load_model("pk_1cmt_iv"), arms=[pkpd.Arm("a", pkpd.Dose(100, "mg"))], endpoints=[ep],
                       targets=[Target(ep.name, ">=", 3.0, "mg/L", name="t")],
                       population=GivenPopulation(params={"V": [20.0, 50.0]}), times=np.linspace(0, 24, 25),
                       uncertainty={"CL": np.array([2.0, 4.0])})
    assert sc.trial_success == 0.8
    z = 1.959963984540054
    res = pkpd.run_scenario(sc, seed=1, n_trials=2, trial_success=0.5)
    assert res.trials.trial_success == 0.5
    row = res.trials.pta.iloc[0]
    assert row["n_trials"] == 2 and row["pta_median"] == 0.5
    assert row["p_success"] == 1.0 and row["p_success_high"] == 1.0
    assert row["p_success_low"] == pytest.approx(2 / (2 + z * z), rel=1e-12)
    row = pkpd.run_scenario(sc, seed=1, n_trials=2).trials.pta.iloc[0]
    assert row["pta_median"] == 0.5 and row["p_success"] == 0.0


# ------------------------------------------------------------------------------------- independent sample, seed 50
def test_a_dose_response_fit_refuses_a_negative_dose_with_the_whole_message():
    """(fit_dose_response__mutmut_31: `np.any(None)` for `np.any(d < 0)`: the check never fires) Documented: doses
    are >= 0 (0 for controls) and a negative one raises PkpdError. A dose of -1 beside 0, 1, 3 and 10 (3 distinct
    positive levels, so nothing else is refused) is refused with the whole message; a dose of -0.0 (not below 0) is a
    control. With the mutant the -1 point was fitted as if a dose."""
    from pkpd.errors import PkpdError
    from pkpd.scenarios import fit_dose_response

    doses = np.array([-1.0, 0.0, 1.0, 3.0, 10.0])
    responses = 2.0 + 10.0 * doses / (3.0 + doses)
    with pytest.raises(PkpdError) as err:
        fit_dose_response(doses, responses)
    assert str(err.value) == "fit_dose_response: doses must be >= 0"
    doses[0] = -0.0
    responses = 2.0 + 10.0 * doses / (3.0 + doses)
    assert fit_dose_response(doses, responses).n == 5


def test_the_lowest_dose_counts_a_pta_equal_to_the_probability_asked_as_reached():
    """(ScenarioResult.lowest_dose__mutmut_25: `>` for `>=`) Documented: the lowest dose whose PTA is at least
    ``probability``. IV boluses of 30, 100 and 300 mg into V = 20 and 50 L give Cmax = dose / V: 1.5 and 0.6, 5 and 2,
    15 and 6 mg/L, so the target Cmax >= 3 mg/L is met by 0, 1 and 2 of 2 subjects (PTA 0, 0.5, 1). At probability
    0.5 the lowest dose is 100 mg (PTA exactly 0.5), at 1.0 it is 300 mg. With the mutant they were 300 mg and none
    (dose NaN, best PTA 1)."""
    import pkpd
    from pkpd.metrics import Endpoint
    from pkpd.scenarios import GivenPopulation, Target

    ep = Endpoint("conc", "cmax", end=24)
    sc = pkpd.Scenario(pkpd.load_model("pk_1cmt_iv"), arms=pkpd.dose_ranging_arms("d", [30, 100, 300], "mg"),
                       endpoints=[ep], targets=[Target(ep.name, ">=", 3.0, "mg/L", name="t")],
                       population=GivenPopulation(params={"V": [20.0, 50.0]}), times=np.linspace(0, 24, 25), seed=1)
    res = pkpd.run_scenario(sc)
    assert res.attainment["probability"].tolist() == [0.0, 0.5, 1.0]
    for probability, dose in ((0.5, 100.0), (1.0, 300.0)):
        row = res.lowest_dose(probability).iloc[0]
        assert (row["target"], row["dose"], row["dose_unit"]) == ("t", dose, "mg")
        assert row["probability"] == probability


# ------------------------------------------------------------------------------------- independent sample, seed 51
def test_a_cluster_run_names_the_model_and_run_scenario_on_its_bar_and_when_interrupted(monkeypatch, capsys):
    """(_simulate_on_cluster__mutmut_22: no description given to the task runner, which then says "tasks") A run on
    a cluster describes its work as "<model>: run_scenario": 2 arms x 3 subjects of pk_1cmt_iv in chunks of 2 show
    the bar "pk_1cmt_iv: run_scenario" ending at 6/6 subjects, and Ctrl-C after the first of the 3 chunks says,
    whole message, "pk_1cmt_iv: run_scenario interrupted: 1 of 3 task(s) had finished; ...". The spy runs the tasks
    locally, keeping every other argument. With the mutant both said "tasks"."""
    import pkpd
    import pkpd._parallel as parallel
    from pkpd.metrics import Endpoint

    real = parallel.map_tasks
    monkeypatch.setattr(parallel, "map_tasks",
                        lambda fn, payloads, **kw: real(fn, payloads, **(kw | {"client": None})))
    monkeypatch.setattr(parallel, "check_client", lambda client: None)
    sc = pkpd.Scenario(pkpd.load_model("pk_1cmt_iv"), arms=pkpd.dose_ranging_arms("d", [10, 30], "mg"),
                       endpoints=[Endpoint("conc", "cmax", end=24)],
                       population=pkpd.LogNormalPopulation(3, omega={"V": 0.2}), times=np.linspace(0, 24, 5), seed=3)
    capsys.readouterr()
    pkpd.run_scenario(sc, client=object(), progress=True, chunk_size=2)
    err = capsys.readouterr().err
    assert "pk_1cmt_iv: run_scenario" in err and "6/6" in err
    assert "tasks" not in err

    def stopped(fn, payloads, **kw):
        def task(shared, bounds):
            if bounds[0] > 0:
                raise KeyboardInterrupt
            return fn(shared, bounds)
        return real(task, payloads, **(kw | {"client": None, "progress": False}))

    monkeypatch.setattr(parallel, "map_tasks", stopped)
    with pytest.raises(KeyboardInterrupt) as info:
        pkpd.run_scenario(sc, client=object(), chunk_size=2)
    assert str(info.value) == ("pk_1cmt_iv: run_scenario interrupted: 1 of 3 task(s) had finished; the others were "
                               "cancelled and no result was returned. Run again (with fewer replicates or subjects "
                               "if needed).")


def test_a_scenario_file_is_read_as_utf_8_whatever_the_locale(tmp_path, run_in_c_locale):
    """(load_scenario__mutmut_7: `encoding=None`: the file read in the locale's encoding) A TOML file is UTF-8 text
    (the TOML spec; others are refused as "not UTF-8 text"). A description with non-ASCII characters ("Cmax ≥ 3
    µg/mL – 2 arms", written as UTF-8 bytes) is read back exactly, here and in a Python whose locale is C with neither
    locale coercion nor UTF-8 mode (its encoding ASCII on Linux; skipped where the C locale is UTF-8). With the mutant
    that run refused the file as "not UTF-8 text" (and a cp1252 locale would have read "Cmax â‰¥ 3 Âµg/mL")."""
    from pkpd.scenarios import load_scenario

    description = "Cmax \u2265 3 \u00b5g/mL \u2013 2 arms"
    path = tmp_path / "s.toml"
    path.write_bytes(("[scenario]\nmodel = \"pk_1cmt_iv\"\ndescription = \"" + description + "\"\n"
                      "[arms.low]\ndose = 100\nunit = \"mg\"\n"
                      "[endpoints.AUC]\noutput = \"conc\"\nmetric = \"auc\"\nend = 24\n").encode("utf-8"))
    assert load_scenario(path).description == description
    code = ("import locale, sys\n"
            "from pkpd.errors import PkpdError\n"
            "from pkpd.scenarios import load_scenario\n"
            "print(locale.getpreferredencoding(False))\n"
            "try:\n"
            "    print(ascii(load_scenario(sys.argv[1]).description))\n"
            "except PkpdError as err:\n"
            "    print(ascii(str(err)))\n")
    said = run_in_c_locale(code, str(path))
    assert said == ascii(description)


# ------------------------------------------------------------------------------------- independent sample, seed 52
@pytest.mark.parametrize(
    ("population", "message"),
    [
        ("[population]\nn = 2\nomgea = {CL = 0.3}\n", "unknown key 'omgea'. Did you mean 'omega'?"),
        ("population = 3\n", "must be a table of keys; got 3"),
    ],
)
def test_a_scenario_files_population_with_an_unknown_key_or_not_a_table_is_refused_naming_the_file(
        tmp_path, population, message):
    """(scenario_from_dict__mutmut_158: the [population] keys checked with file None, so the message began
    "scenario [population]" instead of the file) Every problem in a scenario file names the file and its section
    (load_scenario's documented contract): a misspelt key in [population] ("omgea") and a population that is not a
    table are refused, whole message, as "<path> [population]: ...", like every other section's keys."""
    from pkpd.errors import PkpdError
    from pkpd.scenarios import load_scenario

    path = tmp_path / "trial.toml"
    path.write_text(population + "[scenario]\nmodel = \"pk_1cmt_iv\"\n"
                    "[arms.low]\ndose = 100\nunit = \"mg\"\n"
                    "[endpoints.c]\noutput = \"conc\"\nmetric = \"cmax\"\nend = 24\n", encoding="utf-8")
    with pytest.raises(PkpdError) as err:
        load_scenario(path)
    assert str(err.value) == f"{path} [population]: {message}"


# ------------------------------------------------------------------------------------- independent sample, seed 53
class _OwnPopulation:
    """A population of the user's own (Scenario takes any object with n, sample, typical_covariates and describe)."""

    def __init__(self, n, params=None, covariates=None):
        self.n, self._params, self._covariates = n, params or {}, covariates or {}

    def sample(self, model, rng):
        return dict(self._params), dict(self._covariates)

    def typical_covariates(self, model):
        return {}

    def describe(self):
        return f"{self.n} own subjects"


@pytest.mark.parametrize("n", [0, -2, 2.5])
def test_a_population_of_ones_own_with_no_subjects_or_a_fractional_count_is_refused_whole_message(n):
    """(ǁScenarioǁ__post_init____mutmut_32: `or` for `and` in the check of the population's n, so any integer, 0 and
    -2 included, and any number from 1 up, 2.5 included, passed) A population must count its subjects with an integer
    of at least 1: a population of one's own whose n is 0, -2 or 2.5 is refused when the scenario is built, with the
    whole message; 1 and 3 subjects are accepted."""
    import pkpd
    from pkpd.errors import PkpdError
    from pkpd.metrics import Endpoint
    from pkpd.scenarios import Arm, Scenario

    model = pkpd.load_model("pk_1cmt_iv")
    arms, endpoints = [Arm("a", dose=pkpd.Dose(100, "mg"))], [Endpoint("conc", "cmax", end=24)]
    for ok in (1, 3):
        sc = Scenario(model, arms=arms, endpoints=endpoints, population=_OwnPopulation(ok), name="s")
        assert sc.population.n == ok
    with pytest.raises(PkpdError) as err:
        Scenario(model, arms=arms, endpoints=endpoints, population=_OwnPopulation(n), name="s")
    assert str(err.value) == f"scenario 's': the population is empty (n = {n!r}); give at least one subject"


def test_a_median_time_to_event_of_one_subject_has_a_nan_interval_in_a_float_column():
    """(_clinical__mutmut_91: `lo = hi = None` for NaN when fewer than 2 subjects can be resampled) Untreated, the
    hazard of endpoints_exposure is h0 (0.1/h), so S = exp(-0.1 t) and the median time to event is ln 2 / 0.1 =
    6.93 h. One subject gives no bootstrap: its interval is NaN, NaN, in the clinical table's float columns (with the
    mutant they held None, an object column that arithmetic and NaN checks on the table refuse)."""
    from pathlib import Path

    import pkpd
    from pkpd.metrics import Endpoint
    from pkpd.scenarios import Arm, GivenPopulation, Scenario, run_scenario

    model = pkpd.load_model(Path(__file__).resolve().parents[1] / "data" / "models" / "endpoints_exposure.toml")
    sc = Scenario(model, arms=[Arm("control", control=True)], times=np.linspace(0, 24, 2401),
                  population=GivenPopulation(params={"h0": 0.1}),
                  endpoints=[Endpoint("event", "median_time_to_event", end=24)])
    clinical = run_scenario(sc, seed=1).clinical
    row = clinical.iloc[0]
    assert row["n"] == 1
    assert row["value"] == pytest.approx(math.log(2) / 0.1, rel=1e-5)
    assert clinical["ci_low"].dtype == np.float64 and clinical["ci_high"].dtype == np.float64
    assert math.isnan(row["ci_low"]) and math.isnan(row["ci_high"])


def test_a_scenario_file_of_exactly_the_10_mb_limit_is_read_and_one_byte_more_is_refused(tmp_path):
    """(load_scenario__mutmut_4: `>=` for `>`, so a file of exactly the limit was refused) A scenario file may have
    10 MB (docs/security.md; the message says "larger than the 10 MB"): a valid file padded with a comment to exactly
    10,000,000 bytes is read, and the same file one byte longer is refused with the whole message."""
    from pkpd.errors import PkpdError
    from pkpd.scenarios import load_scenario

    text = ("[scenario]\nmodel = \"pk_1cmt_iv\"\n[arms.low]\ndose = 100\nunit = \"mg\"\n"
            "[endpoints.c]\noutput = \"conc\"\nmetric = \"cmax\"\nend = 24\n# ")
    path = tmp_path / "big.toml"
    path.write_bytes((text + "x" * (10_000_000 - len(text) - 1) + "\n").encode("ascii"))
    assert path.stat().st_size == 10_000_000
    assert [a.name for a in load_scenario(path).arms] == ["low"]
    path.write_bytes((text + "x" * (10_000_000 - len(text)) + "\n").encode("ascii"))
    assert path.stat().st_size == 10_000_001
    with pytest.raises(PkpdError) as err:
        load_scenario(path)
    assert str(err.value) == f"{path}: the file is larger than the 10 MB a scenario file may have"


# ---- a defect found beside the seed-53 survivors (issue 20): a population that drew text raised a bare ValueError
@pytest.mark.parametrize(
    ("params", "covariates", "message"),
    [
        ({}, {"WT": np.array(["heavy", "light"])},
         "covariate 'WT' must be numbers; got array(['heavy', 'light'], dtype='<U5')"),
        ({"V": ["large", "small"]}, {}, "parameter 'V' must be numbers; got ['large', 'small']"),
    ],
)
def test_a_population_of_ones_own_that_draws_values_that_are_not_numbers_is_refused_naming_them(
        params, covariates, message):
    """(_run_scenario__mutmut_59: the covariates tiled without dtype=float, which then left the refusal to simulate,
    its message naming neither the scenario nor the population and listing every value once per arm) A population of
    one's own draws numbers: integer draws are simulated as numbers (IV boluses of 100 mg into V = 20 and 50 L: Cmax 5
    and 2 mg/L), and a covariate or parameter drawn as text is refused as a PkpdError naming the scenario, the
    population and the name, with the values drawn (it was numpy's bare ValueError "could not convert string to float:
    np.str_('heavy')", naming neither, a defect; with the mutant the covariate's refusal came from simulate)."""
    import pkpd
    from pkpd.errors import PkpdError
    from pkpd.metrics import Endpoint
    from pkpd.scenarios import Arm, Scenario, run_scenario

    model = pkpd.load_model("pk_1cmt_iv")
    arms = [Arm("a", dose=pkpd.Dose(100, "mg")), Arm("b", dose=pkpd.Dose(100, "mg"))]
    endpoints = [Endpoint("conc", "cmax", end=24)]

    def scenario(population):
        return Scenario(model, arms=arms, endpoints=endpoints, population=population, name="s",
                        times=np.linspace(0, 24, 5))

    whole = run_scenario(scenario(_OwnPopulation(2, {"V": np.array([20, 50])}, {"WT": [70, 80]})), seed=1)
    assert whole.table["value"].tolist() == pytest.approx([5.0, 2.0, 5.0, 2.0], rel=1e-12)
    with pytest.raises(PkpdError) as err:
        run_scenario(scenario(_OwnPopulation(2, params, covariates)), seed=1)
    assert str(err.value) == "scenario 's': the population's " + message


# ------------------------------------------------------------------------------------- independent sample, seed 54
def test_a_scenario_read_from_a_file_remembers_the_file_and_its_report_names_it(tmp_path):
    """(scenario_from_dict__mutmut_521: `source=None` for `source=file`, so a scenario read from a file forgot it)
    Scenario.source is documented as "File the scenario was read from": load_scenario(path) keeps str(path),
    scenario_from_dict keeps the file it is given (None without one), and the report's first line names the scenario
    file ("scenario file s.toml"), which a scenario built in code does not."""
    from pkpd.report import write_report
    from pkpd.scenarios import load_scenario, run_scenario, scenario_from_dict

    data = {"scenario": {"model": "pk_1cmt_iv"}, "arms": {"a": {"dose": 100, "unit": "mg"}},
            "endpoints": {"c": {"output": "conc", "metric": "cmax", "end": 24}}}
    assert scenario_from_dict(data, file="study/s.toml").source == "study/s.toml"
    assert scenario_from_dict(data).source is None
    path = tmp_path / "s.toml"
    path.write_text('[scenario]\nmodel = "pk_1cmt_iv"\n[arms.a]\ndose = 100\nunit = "mg"\n'
                    '[endpoints.c]\noutput = "conc"\nmetric = "cmax"\nend = 24\n', encoding="utf-8")
    sc = load_scenario(path)
    assert sc.source == str(path)
    page = write_report(run_scenario(sc, seed=1), tmp_path / "report").read_text(encoding="utf-8")
    assert "&middot; seed 1 &middot; scenario file s.toml</p>" in page


# ------------------------------------------------------------------------------------- independent sample, seed 55
def test_a_dose_response_fit_keeps_the_range_of_positive_doses_it_fitted_and_the_report_names_its_ends():
    """(fit_dose_response__mutmut_438: `dose_range=(lo_d, hi_d)` left out, so every fit kept the default (NaN, NaN))
    DoseResponseFit.dose_range is documented as the "Smallest and largest positive dose fitted": for exact Emax data
    (E0 2, Emax 10, ED50 10 mg) at 0 (controls), 1, 3, 10 and 30 mg, with 100 mg given a NaN response and 300 mg an
    infinite one (both dropped), it is (1, 30) mg. The ED90, 9 x ED50 = 90 mg, lies above the highest dose fitted: the
    report's cell says so and names 30 mg (with the mutant, NaN is not below 90, so it read "below the lowest dose
    tested (– mg)")."""
    from pkpd.report import _ed_cell
    from pkpd.scenarios import fit_dose_response

    d = np.array([0.0, 0, 1, 1, 3, 3, 10, 10, 30, 30, 100, 300])
    y = 2.0 + 10.0 * d / (10.0 + d)
    y[-2], y[-1] = np.nan, np.inf
    fit = fit_dose_response(d, y)
    assert fit.dose_range == (1.0, 30.0)
    assert fit.n == 10
    assert fit.ed50 == pytest.approx(10.0, rel=1e-6) and fit.ed90 == pytest.approx(90.0, rel=1e-6)
    assert fit.ed90_flag == "extrapolated"
    cell = _ed_cell(fit.ed90, math.nan, math.nan, fit.ed90_flag, "mg", fit.dose_range)
    assert cell.endswith(" <span class='flag'>extrapolated: above the highest dose tested (30 mg)</span>")


# ------------------------------------------------------------------------------------- independent sample, seed 56
def test_a_covariate_range_whose_ends_are_equal_is_accepted_and_draws_that_value():
    """(xǁLogNormalPopulationǁ__post_init____mutmut_39: `lo < hi` for `lo <= hi`, so a range [70, 70] was refused)
    covariate_ranges need "finite low <= high", as the refusal itself says: a range whose ends are equal is a fixed
    covariate drawn uniformly from one point, so WT = [70, 70] kg gives every subject 70 kg, and 1 mg/kg of
    pk_1cmt_iv (V 32 L, CL 2.8 L/h) is a 70 mg bolus in each: Cmax = 70 / 32 mg/L at t = 0 and
    C(24) = 70 / 32 exp(-2.8 / 32 x 24). A range [80, 70] is still refused with the whole message."""
    import pkpd
    from pkpd.errors import PkpdError
    from pkpd.metrics import Endpoint
    from pkpd.scenarios import Arm, LogNormalPopulation, Scenario, run_scenario

    pop = LogNormalPopulation(3, covariate_ranges={"WT": (70, 70)})
    assert pop.covariate_ranges == {"WT": (70.0, 70.0)}
    model = pkpd.load_model("pk_1cmt_iv")
    _, covs = pop.sample(model, np.random.default_rng(1))
    assert covs["WT"].tolist() == [70.0, 70.0, 70.0]
    sc = Scenario(model, [Arm("a", pkpd.Dose(1, "mg/kg"))],
                  [Endpoint("conc", "cmax", end=24), Endpoint("conc", "value_at", time=24)], population=pop,
                  times=np.linspace(0, 24, 25))
    table = run_scenario(sc, seed=1).table
    cmax = table[table["endpoint"] == "conc_Cmax_to_24"]["value"].to_numpy()
    at24 = table[table["endpoint"] == "conc_at_24"]["value"].to_numpy()
    np.testing.assert_allclose(cmax, np.full(3, 70 / 32), rtol=1e-9)
    np.testing.assert_allclose(at24, np.full(3, 70 / 32 * math.exp(-2.8 / 32 * 24)), rtol=1e-5)
    with pytest.raises(PkpdError) as err:
        LogNormalPopulation(3, covariate_ranges={"WT": (80, 70)})
    assert str(err.value) == "population covariate_ranges['WT']: need finite low <= high; got [80, 70]"


def test_a_dose_response_fit_whose_ed90_lies_above_the_doses_says_so_in_its_message():
    """(fit_dose_response__mutmut_399: `flags[1] == "EXTRAPOLATED"`, never true, so the message left out the ED90's
    extrapolation) Exact Emax data (E0 2, Emax 10, ED50 10 mg) at 0 (controls), 1, 3, 10 and 30 mg: the ED50, 10 mg,
    lies within the doses fitted, the ED90 = 9 x ED50 = 90 mg above the highest (30 mg), so the fit's message is
    exactly "ED90 outside the doses tested (1-30): an extrapolation" and nothing else."""
    from pkpd.scenarios import fit_dose_response

    d = np.array([0.0, 0, 1, 1, 3, 3, 10, 10, 30, 30])
    fit = fit_dose_response(d, 2.0 + 10.0 * d / (10.0 + d))
    assert fit.ed50 == pytest.approx(10.0, rel=1e-6) and fit.ed90 == pytest.approx(90.0, rel=1e-6)
    assert (fit.ed50_flag, fit.ed90_flag) == ("", "extrapolated")
    assert fit.message == "ED90 outside the doses tested (1-30): an extrapolation"


def test_same_population_of_a_run_with_uncertainty_gives_every_trial_the_runs_own_subjects():
    """(run_scenario__mutmut_54: `same_population=None` passed on, so the scenario's and the caller's
    same_population=True were both ignored) Documented (pkpd.uncertainty): with same_population=True every trial
    simulates the same virtual subjects, and a trial equals the run at its estimates with the trial's population seed
    (result.trials.seeds). The uncertainty here is two draws of V, both 32 L (the nominal value): every trial then
    has the nominal run's parameters and, on the same subjects (seed 7 each), its median AUC to the bit; without
    same_population each trial draws its own 3 subjects (CL varies, omega 0.5) and the medians differ."""
    import dataclasses

    import pkpd
    from pkpd.metrics import Endpoint
    from pkpd.scenarios import LogNormalPopulation

    sc = pkpd.Scenario(pkpd.load_model("pk_1cmt_iv"), arms=[pkpd.Arm("a", pkpd.Dose(100, "mg"))],
                       endpoints=[Endpoint("conc", "auc", end=24)],
                       population=LogNormalPopulation(3, omega={"CL": 0.5}), uncertainty={"V": np.full(2, 32.0)})
    for res in (pkpd.run_scenario(sc, seed=7, n_trials=3, same_population=True),
                pkpd.run_scenario(dataclasses.replace(sc, same_population=True), seed=7, n_trials=3)):
        assert res.trials.same_population is True
        assert res.trials.seeds == (7, 7, 7)
        assert res.trials.summary["median"].tolist() == res.summary["median"].tolist() * 3
        assert "(3 trials (same virtual subjects) from 2 draws;" in repr(res.trials)
    other = pkpd.run_scenario(sc, seed=7, n_trials=3)
    assert other.trials.same_population is False
    assert len(set(other.trials.seeds)) == 3
    assert len(set(other.trials.summary["median"].tolist())) == 3


def test_the_interval_of_an_expected_count_above_one_is_not_clipped_at_one():
    """(_clinical__mutmut_115: `ep.metric != "EXPECTED_COUNT"`, always true, so a count's interval was clipped to
    [0, 1] like a probability's) Flares at a constant hazard r0 = 0.2/h, counted to 10 h: 0.2 x 10 = 2 for each of 5
    identical subjects, so the mean is 2 with a zero-width interval (2, 2); clipped at 1, the interval would lie below
    its own value."""
    from pathlib import Path

    import pkpd
    from pkpd.metrics import Endpoint
    from pkpd.scenarios import Arm, LogNormalPopulation, Scenario, run_scenario

    model = pkpd.load_model(Path(__file__).resolve().parents[1] / "data" / "models" / "endpoints_exposure.toml")
    sc = Scenario(model, arms=[Arm("control", control=True)], times=np.linspace(0, 10, 11),
                  population=LogNormalPopulation(5), endpoints=[Endpoint("flares", "expected_count", time=10)])
    row = run_scenario(sc, seed=1).clinical.set_index("endpoint").loc["flares_count_10"]
    assert row["n"] == 5
    for key in ("value", "ci_low", "ci_high"):
        assert row[key] == pytest.approx(0.2 * 10, rel=1e-7), key


# ------------------------------------------------------------------------------------- independent sample, seed 57
def test_an_arm_of_exactly_the_most_dose_levels_is_accepted_and_one_more_is_refused():
    """(scenario_from_dict__mutmut_283: `>=` for `>`, so an arm of exactly MAX_SCENARIO_DOSE_LEVELS = 1,000 levels
    was refused) The limit is the most dose levels an arm may list, as its own refusal says ("more than 1,000"):
    doses = [1, 2, ..., 1000] mg gives 1,000 arms, "a: 1 mg" to "a: 1000 mg", each its own dose; 1,001 levels are
    refused with the whole message."""
    from pkpd.errors import DosingError
    from pkpd.scenarios import MAX_SCENARIO_DOSE_LEVELS

    assert MAX_SCENARIO_DOSE_LEVELS == 1000
    data = {"scenario": {"model": "pk_1cmt_iv"}, "arms": {"a": {"doses": list(range(1, 1001)), "unit": "mg"}},
            "endpoints": BASE["endpoints"]}
    sc = scenario_from_dict(data, file="s.toml")
    assert len(sc.arms) == 1000
    assert [a.name for a in sc.arms] == [f"a: {k} mg" for k in range(1, 1001)]
    assert [(a.dose.amount, a.dose.unit) for a in sc.arms] == [(float(k), "mg") for k in range(1, 1001)]
    data["arms"]["a"]["doses"] = list(range(1, 1002))
    with pytest.raises(DosingError) as err:
        scenario_from_dict(data, file="s.toml")
    assert str(err.value) == "s.toml [arms.a]: 1,001 dose levels (more than 1,000)"


# ------------------------------------------------------------------------------------------ independent sample, seed 58
def test_the_fixed_covariates_of_a_scenario_file_reach_its_population_and_its_per_kg_doses():
    """(scenario_from_dict__mutmut_182: `covariates=` left out of the LogNormalPopulation a [population] table builds,
    so a scenario file's fixed covariates were dropped) [population] covariates = {WT = 80} gives every subject 80 kg:
    the population keeps {"WT": 80.0} and says so, and 1 mg/kg of pk_1cmt_iv (V 32 L, CL 2.8 L/h, no covariate
    effect) is an 80 mg bolus in each of the 2 subjects, Cmax = 80 / 32 = 2.5 mg/L at t = 0 and
    C(24) = 2.5 exp(-2.8 / 32 x 24) = 2.5 exp(-2.1) mg/L (not the model's typical 70 kg: 70 / 32 mg/L)."""
    from pkpd.scenarios import run_scenario

    data = {"scenario": {"model": "pk_1cmt_iv", "times": {"stop": 24, "step": 6}},
            "population": {"n": 2, "covariates": {"WT": 80}}, "arms": {"a": {"dose": 1, "unit": "mg/kg"}},
            "endpoints": {"cmax": {"output": "conc", "metric": "cmax", "end": 24},
                          "c24": {"output": "conc", "metric": "value_at", "time": 24}}}
    sc = scenario_from_dict(data, file="s.toml")
    assert sc.population.covariates == {"WT": 80.0}
    assert sc.population.describe() == "2 virtual subjects; no inter-individual variability; covariates WT = 80"
    table = run_scenario(sc, seed=1).table
    np.testing.assert_allclose(table[table["endpoint"] == "cmax"]["value"].to_numpy(), [2.5, 2.5], rtol=1e-9)
    np.testing.assert_allclose(table[table["endpoint"] == "c24"]["value"].to_numpy(),
                               np.full(2, 2.5 * math.exp(-2.1)), rtol=1e-5)


def test_responses_whose_spread_is_exactly_1e_12_of_their_size_are_flat():
    """(_is_flat__mutmut_19: `rss0 >= 1e-12 x sum y^2` for `>`, so responses whose spread is exactly at the limit went
    on to the F-test) Responses that do not vary, to 1e-12 of their sum of squares (RSS0 <= 1e-12 sum y^2), are
    flat. Here c = 0x1.e847fffffef39p+9 (976.56249999951...) and y = c -+ 2^-10 alternately at doses 0 (controls) and
    10, 30, 100 mg: the mean is c exactly, so RSS0 = 6 x 2^-20 exactly, and 1e-12 x sum y^2 (exactly summed, math.fsum)
    rounds to 6 x 2^-20 too: the limit itself, so the fit is "flat" (the F-test would find a step from c - 2^-10 to
    c + 2^-10 far better than a constant), for _is_flat whatever the residuals, a perfect fit included."""
    from pkpd.scenarios import _is_flat, fit_dose_response

    c, step = float.fromhex("0x1.e847fffffef39p+9"), 2.0**-10
    d = np.array([0.0, 10, 0, 30, 0, 100])
    y = np.array([c - step, c + step] * 3)
    assert float(np.mean(y)) == c
    assert 1e-12 * math.fsum(v * v for v in y) == 6 * step**2
    assert _is_flat(y, np.zeros(6), 3, 0.05) is True
    assert _is_flat(y, np.zeros(6), 4, 0.05) is True
    fit = fit_dose_response(d, y)
    assert (fit.ed50_flag, fit.ed90_flag) == ("flat", "flat")
    assert fit.message.endswith("; flat dose-response: the fit is no better than a constant (F-test), so no ED50 or "
                                "ED90 is determined")


# ------------------------------------------------------------------------------------------ independent sample, seed 59
def test_a_scenario_file_without_a_population_counts_one_typical_subject_per_arm_against_the_trial_limit(tmp_path):
    """Guards scenario_from_dict (seed 59's survivor _461: `else 2` for `else 1` in the count of subject-arms, so a
    file without [population] was counted as 2 subjects per arm). Without [population] a scenario simulates the
    typical subject, one subject per arm (population.n == 1); with [uncertainty] it runs the nominal trial and
    n_trials replicates, n_trials + 1 runs, and refuses "more than" MAX_SCENARIO_RUNS = 10,000,000 subject-arms. By
    hand: 1 arm and n_trials = 9,999,999 are 1 x 10,000,000 = 10,000,000, at the limit: it loads (counted as 2
    subjects, 20,000,000, it was refused); 2 arms and 4,999,999 trials are 2 x 5,000,000 = 10,000,000 and load too;
    1 arm and 10,000,000 trials are 10,000,001, refused with the whole message, "x 1 subject-arms"."""
    from pkpd.errors import PkpdError
    from pkpd.scenarios import MAX_SCENARIO_RUNS

    assert MAX_SCENARIO_RUNS == 10_000_000
    _population_fit_file(tmp_path / "fit.json")
    file = str(tmp_path / "s.toml")
    data = {"scenario": {"model": "wang2007"}, "arms": {"c": {"control": True}},
            "endpoints": {"f": {"output": "f", "metric": "cmax", "end": 1}}}
    sc = scenario_from_dict({**data, "uncertainty": {"from": "fit.json", "n_trials": 9_999_999}}, file=file)
    assert (sc.population.n, len(sc.arms), sc.n_trials) == (1, 1, 9_999_999)
    two = {**data, "arms": {"c": {"control": True}, "c2": {"control": True}}}
    sc = scenario_from_dict({**two, "uncertainty": {"from": "fit.json", "n_trials": 4_999_999}}, file=file)
    assert (sc.population.n, len(sc.arms), sc.n_trials) == (1, 2, 4_999_999)
    with pytest.raises(PkpdError) as err:
        scenario_from_dict({**data, "uncertainty": {"from": "fit.json", "n_trials": 10_000_000}}, file=file)
    assert str(err.value) == (f"{file} [uncertainty]: 10,000,000 trials x 1 subject-arms, more than 10,000,000 "
                              "simulated subject-arms; use fewer trials, subjects or arms")


# ------------------------------------------------------------------------------------------ independent sample, seed 61
def test_a_given_population_takes_its_typical_subject_at_the_median_of_each_covariate():
    """Guards GivenPopulation.typical_covariates (seed 61's survivor _1: `float(None)` for the median of each given
    covariate, so a given population with covariates raised TypeError where its typical subject was asked for).
    Documented: the typical covariates of a GivenPopulation are the median of each given covariate. By hand: WT of
    20, 35 and 100 kg has the median 35 kg; 20, 35, 55 and 100 kg the median (35 + 55) / 2 = 45 kg; one WT of 80 kg
    is 80 kg; no covariates, none. A scenario's sensitivity is taken at that typical subject: iv_allometric has
    CL = TVCL (WT/70)^0.75, so C(24 h) = D/V e^{-kT} with k = CL/V, and its normalised sensitivity to TVCL is
    -kT = -3 x 0.5^0.75 / 30 x 24 = -1.4270 at 35 kg (-2.4 at the model's default 70 kg, -1.911 at the mean 51.7 kg)."""
    from pathlib import Path

    import pkpd
    from pkpd.metrics import Endpoint
    from pkpd.scenarios import Arm, GivenPopulation, Scenario, run_scenario

    model = pkpd.load_model(Path(__file__).resolve().parents[1] / "data" / "models" / "iv_allometric.toml")
    assert GivenPopulation(covariates={"WT": [20.0, 35.0, 100.0]}).typical_covariates(model) == {"WT": 35.0}
    assert GivenPopulation(covariates={"WT": [100.0, 20.0, 55.0, 35.0]}).typical_covariates(model) == {"WT": 45.0}
    typical = GivenPopulation(params={"V": [30.0, 30.0]}, covariates={"WT": 80}).typical_covariates(model)
    assert typical == {"WT": 80.0} and type(typical["WT"]) is float
    assert GivenPopulation(params={"V": [30.0, 30.0]}).typical_covariates(model) == {}
    sc = Scenario(model, arms=[Arm("d", dose=pkpd.Dose(100, "mg"))], endpoints=[Endpoint("conc", "value_at", time=24)],
                  population=GivenPopulation(covariates={"WT": [20.0, 35.0, 100.0]}), times=np.linspace(0, 24, 25),
                  sensitivity_arm="d", sensitivity_parameters=["TVCL"])
    table = run_scenario(sc, seed=1).sensitivity.table
    assert list(table["parameter"]) == ["TVCL"]
    assert table["sensitivity"].iloc[0] == pytest.approx(-3.0 * 0.5**0.75 / 30.0 * 24.0, rel=1e-4)


# ------------------------------------------------------------------------------------------ independent sample, seed 62
def test_a_dose_response_fit_takes_missing_responses_as_none_and_integer_responses_as_numbers():
    """Guards fit_dose_response (seed 62's survivor _16: `np.asarray(responses, )` for `np.asarray(responses,
    dtype=float)`, so responses were no longer made floats: a list with None for a missing response, or an object
    column, raised numpy's TypeError "ufunc 'isfinite' not supported", and huge integer responses overflowed int64
    in the flatness test). Documented: missing (NaN) responses are dropped, and None is NaN as a float. Exact Emax
    data (E0 2, Emax 10, ED50 30) at 0-300 mg, twice each, with one more point at 50 mg whose response is None (as a
    list, and as an object pandas column): the fit recovers E0 2, Emax 10 and ED50 30 from the 16 other points
    (n = 16) with no message. Integer responses are the same numbers as floats: 4,000,000,000 at 0-20 mg and
    4,000,000,001 at 30-300 mg (twice each) lie 0.5 either side of their mean, RSS0 = 16 x 0.25 = 4, far below
    1e-12 x sum y^2 = 1e-12 x 16 x 1.6e19 = 2.56e8, so they are flat, as the same values as floats are (squared in
    int64, 1.6e19 > 2^63 wrapped round, and the flat message was lost)."""
    import pandas as pd

    from pkpd.scenarios import fit_dose_response

    doses = np.array([0.0, 5.0, 10.0, 20.0, 30.0, 50.0, 100.0, 300.0])
    curve = 2.0 + 10.0 * doses / (30.0 + doses)
    d = np.append(np.repeat(doses, 2), 50.0)
    y = [float(v) for v in np.repeat(curve, 2)] + [None]
    for responses in (y, pd.Series(y, dtype=object)):
        fit = fit_dose_response(d, responses)
        assert fit.n == 16 and fit.message == ""
        for got, want in ((fit.e0, 2.0), (fit.emax, 10.0), (fit.ed50, 30.0)):
            assert got == pytest.approx(want, rel=1e-5)
    big = [4_000_000_000 + (dose >= 30) for dose in np.repeat(doses, 2)]
    flat = "flat dose-response: the fit is no better than a constant (F-test), so no ED50 or ED90 is determined"
    as_ints, as_floats = fit_dose_response(d[:-1], big), fit_dose_response(d[:-1], [float(v) for v in big])
    assert (as_ints.ed50_flag, as_ints.ed90_flag) == ("flat", "flat")
    assert as_ints.message == as_floats.message and as_ints.message.endswith(flat)
