"""The on-disk caches: compiled models (both engines) and unit checks are reused by a new process, never stale when
the model file changes, and a damaged or tampered unit-check entry is ignored, never trusted."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import pkpd
from pkpd import _check_cache
from pkpd.compile import default_engine
from pkpd.model import _validate

MODEL = """
[model]
name = "cache_probe"
time_unit = "h"
description = "one-state decay used to test the compile cache"

[parameters.k]
value = {k}
unit = "1/h"
bounds = [0.001, 10.0]
source = "test"

[states.A]
unit = "mg"
initial = "0"
ddt = "{ddt}"

[outputs.amount]
expression = "A"
unit = "mg"

[doses.iv]
target = "A"
unit = "mg"
"""

PROBE = """
import json, sys, time
import numpy as np
import pkpd
m = pkpd.load_model(sys.argv[1])
cm = pkpd.compile_model(m, sys.argv[2])
# the ODE solver: the model is linear, and the closed form would not run the compiled model code this test is about
sim = pkpd.simulate(cm, pkpd.Regimen.single(pkpd.Dose(100, "mg")), np.array([0.0, 1.0]),
                    settings=pkpd.SolverSettings(method="ode"))
print(json.dumps({"path": str(cm.source_path), "value": float(sim.outputs["amount"][0, 1]),
                  "pint": "pint" in sys.modules, "numba": "numba" in sys.modules}))
"""
# what each engine leaves in the cache: numba's index of machine code, or the native shared library
ARTIFACT = {"numba": "*.nbi", "native": "*.so"}


def run(model_path: Path, cache: Path, engine: str) -> dict:
    env = dict(os.environ, PKPD_CACHE_DIR=str(cache))
    out = subprocess.run([sys.executable, "-c", PROBE, str(model_path), engine], capture_output=True, text=True,
                         env=env, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def artifacts(cache: Path, engine: str) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in cache.rglob(ARTIFACT[engine])}


@pytest.mark.parametrize("engine", ["native", "numba"])
def test_cache_survives_a_new_process_and_follows_file_changes(tmp_path, engine):
    if engine == "native" and default_engine() != "native":
        pytest.skip("no C compiler")
    cache = tmp_path / "cache"
    path = tmp_path / "cache_probe.toml"
    path.write_text(MODEL.format(k=0.1, ddt="-k * A"))
    first = run(path, cache, engine)
    assert first["pint"]  # the first process checks the units with pint
    assert first["numba"] == (engine == "numba")  # the native engine never imports numba
    machine_code = artifacts(cache, engine)
    assert machine_code, f"the {engine} engine left no compiled code in the cache"
    second = run(path, cache, engine)
    assert second.pop("pint") is False  # the unit check was read back from the cache
    first.pop("pint")
    assert second == first
    assert artifacts(cache, engine) == machine_code  # reused (not even rewritten), nothing new compiled
    # parameter values live in the per-subject vector, not in the code: a new value reuses the machine code
    path.write_text(MODEL.format(k=0.2, ddt="-k * A"))
    new_value = run(path, cache, engine)
    assert new_value["path"] == first["path"]
    assert abs(new_value["value"] - 100 * 2.718281828459045 ** -0.2) < 1e-6
    # a changed equation is new code: a new module, never the stale one
    path.write_text(MODEL.format(k=0.1, ddt="-3 * k * A"))
    changed = run(path, cache, engine)
    assert changed["path"] != first["path"]
    assert abs(changed["value"] - 100 * 2.718281828459045 ** -0.3) < 1e-6


@pytest.mark.parametrize("name", pkpd.models())
def test_a_cached_unit_check_equals_a_fresh_one(tmp_path, monkeypatch, name):
    monkeypatch.setenv("PKPD_CACHE_DIR", str(tmp_path))
    _check_cache._MEMORY.clear()
    first = pkpd.load_model(name)  # checks with pint, stores the answers
    assert list((tmp_path / "checked").glob("*.json"))
    _check_cache._MEMORY.clear()
    again = pkpd.load_model(name)  # the same check, replayed from the stored answers
    assert again._checked == first._checked == _validate(first)


@pytest.mark.parametrize("content", [
    b"",
    b"not json",
    b"[]",
    json.dumps({"format": _check_cache._FORMAT, "key": "x", "transcript": [True]}).encode(),
    json.dumps({"ddt": [["f", "__import__", [["v", "os"]]]]}).encode(),
])
@pytest.mark.parametrize("checksum", ["kept", "matching"])
def test_a_damaged_or_tampered_unit_check_entry_is_ignored(tmp_path, monkeypatch, content, checksum):
    from pkpd import _cache

    monkeypatch.setenv("PKPD_CACHE_DIR", str(tmp_path))
    _check_cache._MEMORY.clear()
    model = pkpd.load_model("pk_1cmt_iv")
    (entry,) = (tmp_path / "checked").glob("*.json")
    if checksum == "matching":
        _cache.write_entry(entry, content)
    else:
        entry.write_bytes(content)
    _check_cache._MEMORY.clear()
    again = pkpd.load_model("pk_1cmt_iv")  # the entry is discarded; the check is done again (and stored again)
    assert again._checked == _validate(model)
    assert _check_cache.load(entry.stem) is not None
