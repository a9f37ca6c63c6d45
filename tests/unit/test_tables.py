"""Simulation.to_dataframe (issue 19): output and time selection, a wide layout, and a warning before a table
larger than LARGE_TABLE_ROWS is built (the README's 5,000 patients x 1009 times x 5 outputs made 25 M rows)."""

import warnings

import numpy as np
import pytest

import pkpd
import pkpd.simulation as simulation
from pkpd.errors import LargeTableWarning, PkpdError


@pytest.fixture(scope="module")
def pop():
    model = pkpd.load_model("pk_1cmt_iv")
    return pkpd.simulate(model, pkpd.Regimen.single(pkpd.Dose(100, "mg")), np.arange(0, 25.0),
                         params={"CL": np.array([2.0, 2.8, 4.0])})


def test_long_table_selects_outputs_and_times(pop):
    table = pop.to_dataframe("conc", times=[1.0, 12.0])
    assert list(table.columns) == ["ID", "TIME", "name", "value", "unit"]
    assert table[["ID", "TIME"]].values.tolist() == [[1, 1.0], [1, 12.0], [2, 1.0], [2, 12.0], [3, 1.0], [3, 12.0]]
    cl = np.repeat([2.0, 2.8, 4.0], 2)
    t = np.tile([1.0, 12.0], 3)
    np.testing.assert_allclose(table["value"], 100 / 32 * np.exp(-cl / 32 * t), rtol=1e-7)  # analytic bolus
    assert set(table["unit"]) == {"mg/L"}


def test_wide_table_is_the_long_table_pivoted(pop):
    long = pop.to_dataframe(include_states=True)
    wide = pop.to_dataframe(include_states=True, layout="wide")
    assert list(wide.columns) == ["ID", "TIME", "conc [mg/L]", "central [mg]"]
    assert len(wide) == 3 * 25 and len(long) == 2 * len(wide)
    pivot = long.pivot_table(index=["ID", "TIME"], columns="name", values="value").reset_index()
    np.testing.assert_array_equal(wide["conc [mg/L]"], pivot["conc"])
    np.testing.assert_array_equal(wide["central [mg]"], pivot["central"])


def test_unknown_time_or_output_or_layout_is_a_clear_error(pop):
    with pytest.raises(PkpdError, match=r"time 1.4 is not one of the simulated times \(nearest 1\)"):
        pop.to_dataframe(times=[1.4])
    with pytest.raises(PkpdError, match="no output or state 'cnoc'.*'conc'"):
        pop.to_dataframe("cnoc")
    with pytest.raises(PkpdError, match="layout must be 'long' or 'wide'"):
        pop.to_dataframe(layout="tall")


def test_a_large_table_warns_before_it_is_built(pop, monkeypatch):
    monkeypatch.setattr(simulation, "LARGE_TABLE_ROWS", 100)
    with pytest.warns(LargeTableWarning, match=r"150 rows \(3 subjects x 25 times x 2 outputs\).*layout='wide'"):
        pop.to_dataframe(include_states=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(pop.to_dataframe(include_states=True, layout="wide")) == 75  # 75 rows: below the limit
        assert len(pop.to_dataframe(times=np.arange(0, 25.0, 2))) == 39


def test_the_readme_population_table_would_warn():
    # 5,000 subjects x 1009 times x 5 outputs, without simulating them: the check runs before anything is built
    n, t = 5000, np.arange(0, 1009.0)
    huge = np.broadcast_to(np.zeros(1), (n, t.size))
    sim = simulation.Simulation(
        times=t, time_unit="h", subject_ids=np.arange(1, n + 1), states={}, units={f"o{k}": "1" for k in range(5)},
        outputs={f"o{k}": huge for k in range(5)}, params={}, covariates={}, regimens=(), status=np.zeros(n, int),
        model_name="m", model_version="1", settings=pkpd.SolverSettings(), n_steps=np.zeros(n, int))
    with warnings.catch_warnings():
        warnings.simplefilter("error", LargeTableWarning)
        with pytest.raises(LargeTableWarning, match="25,225,000 rows"):
            sim.to_dataframe()
