"""Unit tests for pkpd.nonmem: reading, validation rules, conversions and NONMEM event semantics (issue 3)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import pkpd
from pkpd.dosing import Bolus, Dose, Infusion, Regimen
from pkpd.errors import DataError, SimulationError
from pkpd.model import Covariate, Derived, DoseTarget, Model, Output, Parameter, State
from pkpd.nonmem import NonmemDataset, from_regimen, simulate_nonmem, simulate_nonmem_file
from pkpd.nonmem import read_nonmem as _read_nonmem

CL, V, KA = 1.1, 20.0, 1.5  # models/nmtest_1cmt_oral.toml
K = CL / V


@pytest.fixture(scope="module")
def oral():
    return pkpd.load_model("nmtest_1cmt_oral")


@pytest.fixture(scope="module")
def weight_model():
    """One compartment whose elimination scales with body weight; outputs the concentration and WT itself."""
    return Model(
        name="wt_decay", time_unit="h",
        parameters=(Parameter("k70", 0.1, "1/h", (0.001, 10.0)), Parameter("WTREF", 70.0, "kg", (1.0, 200.0)),
                    Parameter("V", 10.0, "L", (1.0, 100.0))),
        covariates=(Covariate("WT", "kg", 70.0),),
        derived=(Derived("k", "k70 * WT / WTREF", "1/h"),),
        states=(State("A", "mg", initial="0", ddt="-k * A"),),
        outputs=(Output("conc", "A / V", "mg/L"), Output("weight", "WT", "kg")),
        doses=(DoseTarget("iv", target="A", unit="mg"),),
    )


def read_nonmem(data, model=None, **options) -> NonmemDataset:
    """pkpd.nonmem.read_nonmem with AMT in each dose target's own unit unless a test says otherwise: these records
    follow NONMEM's unitless convention (the rule that a dose unit must be stated is tested in test_dose_units.py)."""
    options.setdefault("dose_unit", "target")
    return _read_nonmem(data, model, **options)


def table(rows: list[dict]) -> pd.DataFrame:
    """Records as a table; items a record does not give are '.' (missing)."""
    columns = list(dict.fromkeys(k for row in rows for k in row))
    return pd.DataFrame([[row.get(c, ".") for c in columns] for row in rows], columns=columns, dtype=object)


def expect_error(frame: pd.DataFrame, row: int, column: str, words: str, model=None):
    with pytest.raises(DataError) as info:
        read_nonmem(frame, model)
    err = info.value
    assert (err.row, err.column) == (row, column), str(err)
    assert f"row {row}" in str(err) and f"column {column}" in str(err)
    assert words in str(err)


# --- validation rules: each names the row (1-based, header excluded), the column and the rule ------------------


def test_time_decreasing_within_an_id_is_an_error():
    frame = table([dict(ID=1, TIME=0, AMT=10), dict(ID=1, TIME=5), dict(ID=1, TIME=3)])
    expect_error(frame, 3, "TIME", "TIME decreases within ID 1")


def test_time_may_restart_at_a_reset_record():
    frame = table([dict(ID=1, TIME=0, EVID=1, AMT=10), dict(ID=1, TIME=5, EVID=0),
                   dict(ID=1, TIME=0, EVID=4, AMT=10), dict(ID=1, TIME=5, EVID=0)])
    assert read_nonmem(frame).n_records == 4


def test_non_contiguous_ids_are_an_error():
    frame = table([dict(ID=1, TIME=0, AMT=10), dict(ID=2, TIME=0, AMT=10), dict(ID=1, TIME=4)])
    expect_error(frame, 3, "ID", "must be contiguous")


def test_ii_without_addl_outside_steady_state_is_an_error():
    expect_error(table([dict(ID=1, TIME=0, AMT=10, II=12, ADDL=0)]), 1, "II", "II > 0 needs ADDL > 0")


def test_addl_without_ii_is_an_error():
    expect_error(table([dict(ID=1, TIME=0, AMT=10, II=0, ADDL=3)]), 1, "ADDL", "ADDL > 0 needs II > 0")


def test_rate_and_dur_both_set_is_an_error():
    expect_error(table([dict(ID=1, TIME=0, AMT=10, RATE=5, DUR=2)]), 1, "DUR", "RATE and DUR are both set")


def test_rate_on_an_observation_record_is_an_error():
    frame = table([dict(ID=1, TIME=0, EVID=1, AMT=10, RATE=0), dict(ID=1, TIME=1, EVID=0, AMT=0, RATE=5)])
    expect_error(frame, 2, "RATE", "observation record (EVID=0) must have RATE = 0")


def test_amt_on_an_observation_record_is_an_error():
    frame = table([dict(ID=1, TIME=0, EVID=0, AMT=10, DV=1.0)])
    expect_error(frame, 1, "AMT", "observation record (EVID=0) must have AMT = 0")


def test_steady_state_with_zero_interval_must_be_an_infusion():
    frame = table([dict(ID=1, TIME=0, EVID=1, AMT=100, SS=1, II=0)])
    expect_error(frame, 1, "II", "SS with II = 0 must be a steady-state infusion")


def test_unknown_cmt_name_is_an_error_with_close_matches(oral):
    frame = table([dict(ID=1, TIME=0, AMT=10, CMT="centrl")])
    expect_error(frame, 1, "CMT", "Did you mean 'central'", model=oral)


def test_cmt_number_outside_the_states_is_an_error(oral):
    expect_error(table([dict(ID=1, TIME=0, AMT=10, CMT=3)]), 1, "CMT", "state number from 1 to 2", model=oral)


def test_non_numeric_value_is_an_error():
    frame = table([dict(ID=1, TIME=0, AMT=10), dict(ID=1, TIME="2h")])
    expect_error(frame, 2, "TIME", "must be a finite number")


def test_non_finite_value_is_an_error():
    expect_error(table([dict(ID=1, TIME=0, AMT=math.inf)]), 1, "AMT", "must be a finite number")


def test_unknown_evid_is_an_error():
    expect_error(table([dict(ID=1, TIME=0, EVID=7)]), 1, "EVID", "EVID must be 0")


def test_mdv_zero_on_a_dose_record_is_an_error():
    expect_error(table([dict(ID=1, TIME=0, EVID=1, AMT=5, MDV=0)]), 1, "MDV", "MDV must be 1")


def test_negative_rate_other_than_minus_one_or_two_is_an_error():
    expect_error(table([dict(ID=1, TIME=0, AMT=5, RATE=-3)]), 1, "RATE", "RATE must be > 0")


def test_missing_required_column_is_named():
    with pytest.raises(DataError, match="required column TIME is missing"):
        read_nonmem(pd.DataFrame({"ID": [1], "AMT": [1]}))


def test_headers_differing_only_in_case_are_an_error():
    with pytest.raises(DataError, match="appears twice"):
        read_nonmem(pd.DataFrame([[1, 0, 0]], columns=["ID", "TIME", "time"]))


def test_row_numbers_count_comment_rows_as_in_the_file():
    frame = table([dict(C="C", ID=1, TIME=0), dict(C=".", ID=1, TIME=0, AMT=5), dict(C=".", ID=1, TIME="x")])
    expect_error(frame, 3, "TIME", "must be a finite number")


def test_errors_name_the_file(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("ID,TIME,AMT\n1,0,10\n1,abc,0\n")
    with pytest.raises(DataError, match=r"bad.csv, row 2, column TIME"):
        read_nonmem(path)


# --- reading ----------------------------------------------------------------------------------------------------


def test_headers_are_case_insensitive():
    lower = read_nonmem(pd.DataFrame({"id": [1, 1], "time": [0, 1], "amt": [10, 0], "evid": [1, 0]}))
    upper = read_nonmem(pd.DataFrame({"ID": [1, 1], "TIME": [0, 1], "AMT": [10, 0], "EVID": [1, 0]}))
    pd.testing.assert_frame_equal(lower.data, upper.data)


def test_dot_is_missing_and_zero_in_dose_items(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("ID,TIME,AMT,RATE,II,ADDL,DV\n1,0,100,.,.,.,.\n1,1,.,.,.,.,4.5\n")
    data = read_nonmem(path).data
    assert data["AMT"].tolist() == [100.0, 0.0] and data["RATE"].tolist() == [0.0, 0.0]
    assert math.isnan(data["DV"][0]) and data["DV"][1] == 4.5
    assert data["EVID"].tolist() == [1, 0] and data["MDV"].tolist() == [1, 0]


def test_comment_rows_are_skipped_and_reported(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("C,ID,TIME,AMT,DV\n.,1,0,100,.\nC,1,0.5,0,99\n.,1,1,.,4.5\n")
    ds = read_nonmem(path)
    assert ds.data["ROW"].tolist() == [1, 3]
    assert [(r.row, r.reason) for r in ds.ignored] == [(2, "comment row (C column set)")]
    assert "C" not in ds.data.columns


def test_ignored_observations_are_listed_in_the_summary():
    frame = table([dict(ID=1, TIME=0, EVID=1, AMT=10, MDV=1), dict(ID=1, TIME=1, EVID=0, MDV=1, DV=3.0),
                   dict(ID=1, TIME=2, EVID=0, MDV=0, DV=2.0)])
    ds = read_nonmem(frame)
    assert [(r.row, r.reason) for r in ds.ignored] == [(2, "observation with MDV=1")]
    assert "1 observation with MDV=1 (row 2)" in ds.summary()
    assert ds.observations()["TIME"].tolist() == [2.0]


def test_missing_covariate_values_are_carried_within_a_subject():
    frame = table([dict(ID=1, TIME=0, AMT=10, WT="."), dict(ID=1, TIME=1, WT=70), dict(ID=1, TIME=2, WT="."),
                   dict(ID=2, TIME=0, AMT=10, WT=80)])
    assert read_nonmem(frame).data["WT"].tolist() == [70.0, 70.0, 70.0, 80.0]


def test_text_columns_are_kept_but_cannot_feed_the_model(weight_model):
    frame = table([dict(ID=1, TIME=0, AMT=10, WT="heavy")])
    ds = read_nonmem(frame)
    assert ds.text_columns == ("WT",)
    with pytest.raises(DataError, match=r"uses 'WT', so each value must be a finite number \(or '\.' for missing\); "
                                        r"got 'heavy'") as info:
        simulate_nonmem(weight_model, ds)
    assert (info.value.row, info.value.column) == (1, "WT")


def test_dataset_is_immutable():
    ds = read_nonmem(table([dict(ID=1, TIME=0, AMT=10)]))
    copy = ds.data
    copy.loc[0, "AMT"] = 99.0
    assert ds.data["AMT"][0] == 10.0
    with pytest.raises(AttributeError):
        ds.time_unit = "day"  # type: ignore[misc]


# --- conversions ------------------------------------------------------------------------------------------------


def test_round_trip_regimen_dataset_regimen_preserves_every_dose():
    regimens = {
        1: Regimen([Bolus(0, Dose(100, "mg"), "depot"), Infusion(12, Dose(50, "mg"), rate=25, target="central"),
                    Infusion(30, Dose(20, "mg"), duration=3), Infusion(48, Dose(10, "mg"), modelled="duration",
                                                                       target="central")]),
        7: Regimen.every(24, "h", count=3, dose=Dose(5.5, "mg")),
    }
    ds = from_regimen(regimens, times=[1, 2, 72])
    assert ds.to_regimens() == regimens


def test_addl_records_become_explicit_doses():
    ds = read_nonmem(table([dict(ID=1, TIME=2, AMT=10, II=12, ADDL=2, RATE=5, CMT="central")]), dose_unit="mg")
    reg = ds.to_regimens()[1]
    assert reg.times.tolist() == [2.0, 14.0, 26.0]
    assert all(a.rate == 5.0 and a.target == "central" for a in reg)


def test_cmt_numbers_map_to_dose_targets_with_the_model(oral):
    ds = read_nonmem(table([dict(ID=1, TIME=0, AMT=10, CMT=2)]), oral)
    assert ds.to_regimens(oral)[1].administrations[0].target == "central"


def test_steady_state_cannot_become_a_regimen():
    ds = read_nonmem(table([dict(ID=1, TIME=0, AMT=10, SS=1, II=12)]), dose_unit="mg")
    with pytest.raises(DataError, match="steady-state doses") as info:
        ds.to_regimens()
    assert (info.value.row, info.value.column) == (1, "SS")


def test_observations_resolve_dvid_to_output_names(weight_model):
    frame = table([dict(ID=1, TIME=0, AMT=10), dict(ID=1, TIME=1, DV=0.5, DVID=1),
                   dict(ID=1, TIME=1, DV=70, DVID="weight")])
    obs = read_nonmem(frame).observations(weight_model)
    assert obs["output"].tolist() == ["conc", "weight"]


# --- simulation semantics ---------------------------------------------------------------------------------------


def test_dose_record_reports_the_value_after_the_dose(oral):
    frame = table([dict(ID=1, TIME=0, EVID=0), dict(ID=1, TIME=0, EVID=1, AMT=100, CMT=2),
                   dict(ID=1, TIME=0, EVID=0)])
    cp = simulate_nonmem(oral, read_nonmem(frame, oral))["CP"].tolist()
    assert cp[0] == 0.0 and cp[1] == pytest.approx(5000.0) and cp[2] == pytest.approx(5000.0)


def test_cmt_number_state_name_and_dose_target_name_agree(oral):
    def cp(cmt):
        frame = table([dict(ID=1, TIME=0, AMT=100, CMT=cmt), dict(ID=1, TIME=3)])
        return simulate_nonmem(oral, read_nonmem(frame, oral))["CP"].to_numpy()

    np.testing.assert_allclose(cp(1), cp("depot"))
    np.testing.assert_allclose(cp(2), cp("central"))
    assert not np.allclose(cp(1), cp(2))


def test_reset_cancels_pending_additional_doses(oral):
    frame = table([dict(ID=1, TIME=0, EVID=1, AMT=100, CMT=2, II=10, ADDL=5), dict(ID=1, TIME=25, EVID=3),
                   dict(ID=1, TIME=45, EVID=0)])
    assert simulate_nonmem(oral, read_nonmem(frame, oral))["CP"].tolist()[1:] == [0.0, 0.0]


def test_clock_restart_at_reset_and_dose_repeats_the_first_occasion(oral):
    frame = table([dict(ID=1, TIME=0, EVID=1, AMT=100, CMT=1), dict(ID=1, TIME=6),
                   dict(ID=1, TIME=0, EVID=4, AMT=100, CMT=1), dict(ID=1, TIME=6)])
    cp = simulate_nonmem(oral, read_nonmem(frame, oral))["CP"].to_numpy()
    assert cp[3] == pytest.approx(cp[1], rel=1e-9)


def test_other_event_records_get_a_value_without_changing_anything(oral):
    base = [dict(ID=1, TIME=0, EVID=1, AMT=100, CMT=2), dict(ID=1, TIME=8, EVID=0)]
    with_evid2 = [base[0], dict(ID=1, TIME=3, EVID=2), base[1]]
    a = simulate_nonmem(oral, read_nonmem(table(base), oral))["CP"].to_numpy()
    b = simulate_nonmem(oral, read_nonmem(table(with_evid2), oral))["CP"].to_numpy()
    assert b[1] == pytest.approx(5000 * math.exp(-K * 3), rel=1e-6) and b[2] == pytest.approx(a[1], rel=1e-9)


def test_infusion_with_rate_bioavailability_scales_the_duration(oral):
    # RATE given: amount x F enters at RATE, so the infusion lasts AMT*F/RATE = 5 h, not 10 h
    frame = table([dict(ID=1, TIME=0, AMT=100, RATE=10, CMT=2, BIOAV=0.5), dict(ID=1, TIME=5, BIOAV=0.5),
                   dict(ID=1, TIME=10, BIOAV=0.5)])
    cp = simulate_nonmem(oral, read_nonmem(frame, oral))["CP"].to_numpy()
    at5 = 10 / K * (1 - math.exp(-K * 5)) / V * 1000
    assert cp[1] == pytest.approx(at5, rel=1e-6) and cp[2] == pytest.approx(at5 * math.exp(-K * 5), rel=1e-6)


def test_infusion_with_duration_bioavailability_scales_the_rate(oral):
    frame = table([dict(ID=1, TIME=0, AMT=100, DUR=10, CMT=2, BIOAV=0.5), dict(ID=1, TIME=10, BIOAV=0.5)])
    cp = simulate_nonmem(oral, read_nonmem(frame, oral))["CP"].to_numpy()
    assert cp[1] == pytest.approx(5 / K * (1 - math.exp(-K * 10)) / V * 1000, rel=1e-6)


def test_modelled_rate_comes_from_the_dose_target(oral):
    frame = table([dict(ID=1, TIME=0, AMT=100, RATE=-1, CMT=2, MODE=1, RAT2=20), dict(ID=1, TIME=5, MODE=1)])
    cp = simulate_nonmem(oral, read_nonmem(frame, oral))["CP"].to_numpy()
    assert cp[1] == pytest.approx(20 / K * (1 - math.exp(-K * 5)) / V * 1000, rel=1e-6)


def test_modelled_duration_of_zero_is_a_data_error(oral):
    frame = table([dict(ID=1, TIME=0, AMT=100, RATE=-2, CMT=2, MODE=0)])
    with pytest.raises(DataError, match="duration must be > 0") as info:
        simulate_nonmem(oral, read_nonmem(frame, oral))
    assert (info.value.row, info.value.column) == (1, "RATE")


def test_steady_state_bolus_trough_matches_the_geometric_series(oral):
    frame = table([dict(ID=1, TIME=0, EVID=1, AMT=100, CMT=2, SS=1, II=12), dict(ID=1, TIME=12)])
    cp = simulate_nonmem(oral, read_nonmem(frame, oral))["CP"].to_numpy()
    r = math.exp(-K * 12)
    assert cp[0] == pytest.approx(5000 / (1 - r), rel=1e-8) and cp[1] == pytest.approx(5000 * r / (1 - r), rel=1e-8)


def test_steady_state_constant_infusion_ends_at_the_record(oral):
    frame = table([dict(ID=1, TIME=0, EVID=1, AMT=0, RATE=11, CMT=2, SS=1), dict(ID=1, TIME=10)])
    cp = simulate_nonmem(oral, read_nonmem(frame, oral))["CP"].to_numpy()
    assert cp[0] == pytest.approx(11 / CL * 1000, rel=1e-8)
    assert cp[1] == pytest.approx(11 / CL * 1000 * math.exp(-K * 10), rel=1e-7)


def test_steady_state_without_elimination_does_not_converge():
    model = Model(name="accumulate", time_unit="h",
                  parameters=(Parameter("k", 0.0, "1/h", (0.0, 1.0)),),
                  states=(State("A", "mg", initial="0", ddt="-k * A"),),
                  outputs=(Output("amount", "A", "mg"),), doses=(DoseTarget("iv", target="A", unit="mg"),))
    frame = table([dict(ID=3, TIME=5, AMT=10, SS=1, II=12)])
    with pytest.raises(SimulationError, match="steady state of the dose on row 1") as info:
        simulate_nonmem(model, read_nonmem(frame))
    assert info.value.subject == 3


def test_per_kg_doses_use_the_weight_column(weight_model):
    frame = table([dict(ID=1, TIME=0, AMT=2, WT=50)])
    out = simulate_nonmem(weight_model, read_nonmem(frame, dose_unit="mg/kg"))
    assert out["conc"][0] == pytest.approx(100 / 10.0)


def test_time_units_are_converted(oral):
    frame = table([dict(ID=1, TIME=0, AMT=100, CMT=2), dict(ID=1, TIME=120)])
    cp = simulate_nonmem(oral, read_nonmem(frame, time_unit="min"))["CP"].to_numpy()
    assert cp[1] == pytest.approx(5000 * math.exp(-K * 2), rel=1e-7)


# --- time-varying covariates --------------------------------------------------------------------------------------


def _weights(model, interpolation=None):
    frame = table([dict(ID=1, TIME=0, AMT=100, WT=70), dict(ID=1, TIME=10, WT=35)])
    return simulate_nonmem(model, read_nonmem(frame, model), interpolation=interpolation)


def test_covariates_apply_backward_from_their_record_by_default(weight_model):
    out = _weights(weight_model)
    assert out["conc"][1] == pytest.approx(10 * math.exp(-0.05 * 10), rel=1e-7)
    assert out["weight"].tolist() == [70.0, 35.0]  # each record reports its own value


def test_locf_applies_a_covariate_from_its_record_on(weight_model):
    out = _weights(weight_model, {"WT": "locf"})
    assert out["conc"][1] == pytest.approx(10 * math.exp(-0.1 * 10), rel=1e-7)


def test_linear_interpolation_integrates_the_interpolated_covariate(weight_model):
    # k is linear in WT, so 16 midpoint steps integrate it exactly: mean k over the interval is 0.075/h
    out = _weights(weight_model, {"WT": "linear"})
    assert out["conc"][1] == pytest.approx(10 * math.exp(-0.075 * 10), rel=1e-7)


def test_unknown_interpolation_name_is_an_error(weight_model):
    with pytest.raises(pkpd.PkpdError, match="Did you mean 'WT'"):
        _weights(weight_model, {"Wt": "linear"})


# --- files --------------------------------------------------------------------------------------------------------


def test_simulate_nonmem_file_writes_one_row_per_record(tmp_path):
    data = tmp_path / "d.csv"
    data.write_text("ID,TIME,EVID,AMT,CMT,DV\n1,0,1,100,2,.\n1,12,0,.,.,.\n2,0,1,50,central,.\n")
    out_path = tmp_path / "out.csv"
    simulate_nonmem_file("nmtest_1cmt_oral", data, out_path, dose_unit="target")
    out = pd.read_csv(out_path)
    assert list(out.columns) == ["ID", "TIME", "EVID", "CP"]
    assert out["CP"].tolist() == pytest.approx([5000.0, 5000 * math.exp(-K * 12), 2500.0], rel=1e-7)


def test_read_nonmem_rejects_other_inputs():
    with pytest.raises(DataError, match="expected a file path or a pandas DataFrame"):
        read_nonmem([1, 2, 3])  # type: ignore[arg-type]
    assert isinstance(read_nonmem(pd.DataFrame({"ID": [1], "TIME": [0]})), NonmemDataset)
