"""Every shipped model loads, passes its unit check, round-trips through TOML and simulates (issue 2)."""

import sys
from pathlib import Path

import numpy as np
import pytest

import pkpd
from pkpd.load import dump_model, model_from_dict

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

MODELS_DIR = Path(__file__).resolve().parents[2] / "models"
NAMES = sorted(p.stem for p in MODELS_DIR.glob("*.toml"))


def test_shipped_models_are_listed():
    assert set(NAMES) <= set(pkpd.models())
    assert {"msc_salvadori", "msc_sepsis", "msc_biodistribution", "pk_1cmt_iv", "pk_1cmt_oral"} <= set(NAMES)


def test_every_model_is_indexed_in_readme():
    readme = (MODELS_DIR / "README.md").read_text()
    missing = [n for n in NAMES if n not in readme]
    assert not missing, f"models/README.md does not list {missing}"


@pytest.mark.parametrize("name", NAMES)
def test_model_loads_with_units_sources_and_descriptions(name):
    m = pkpd.load_model(name)
    assert m.name == name
    assert m.description, "every model explains its assumptions"
    for p in m.parameters:
        assert p.unit and p.source, f"{name}: parameter {p.name} needs a unit and a source"
        assert p.bounds[0] <= p.value <= p.bounds[1]
    for s in m.states:
        assert s.unit
    for o in m.outputs:
        assert o.unit


@pytest.mark.parametrize("name", NAMES)
def test_model_round_trips_through_toml(name):
    m = pkpd.load_model(name)
    again = model_from_dict(tomllib.loads(dump_model(m)))
    assert again == m


@pytest.mark.parametrize("name", NAMES)
def test_model_simulates_a_dose(name):
    m = pkpd.load_model(name)
    t = np.linspace(0, 72, 73)
    regimen = None
    if m.doses:
        target = m.doses[0]
        regimen = pkpd.Regimen.single(pkpd.Dose(1.0 if target.unit != "cell" else 1e8, target.unit))
    sim = pkpd.simulate(m, regimen, t, settings=pkpd.SolverSettings(rtol=1e-6, atol=1e-9))
    for name_, values in {**sim.states, **sim.outputs}.items():
        assert np.all(np.isfinite(values)), f"{name}: {name_} is not finite"
