"""The compiled-model cache: reused by a new process, never stale when the model file changes."""

import json
import os
import subprocess
import sys
from pathlib import Path

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
cm = pkpd.compile_model(m)
sim = pkpd.simulate(cm, pkpd.Regimen.single(pkpd.Dose(100, "mg")), np.array([0.0, 1.0]))
print(json.dumps({"path": str(cm.source_path), "value": float(sim.outputs["amount"][0, 1])}))
"""


def run(model_path: Path, cache: Path) -> dict:
    env = dict(os.environ, PKPD_CACHE_DIR=str(cache))
    out = subprocess.run([sys.executable, "-c", PROBE, str(model_path)], capture_output=True, text=True, env=env,
                         check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_cache_survives_a_new_process_and_follows_file_changes(tmp_path):
    cache = tmp_path / "cache"
    path = tmp_path / "cache_probe.toml"
    path.write_text(MODEL.format(k=0.1, ddt="-k * A"))
    first = run(path, cache)
    machine_code = sorted(p.name for p in cache.rglob("*.nbi"))
    assert machine_code, "numba wrote no cache index"
    second = run(path, cache)
    assert second == first
    assert sorted(p.name for p in cache.rglob("*.nbi")) == machine_code  # reused, nothing new compiled
    # parameter values live in the per-subject vector, not in the code: a new value reuses the machine code
    path.write_text(MODEL.format(k=0.2, ddt="-k * A"))
    new_value = run(path, cache)
    assert new_value["path"] == first["path"]
    assert abs(new_value["value"] - 100 * 2.718281828459045 ** -0.2) < 1e-6
    # a changed equation is new code: a new module, never the stale one
    path.write_text(MODEL.format(k=0.1, ddt="-3 * k * A"))
    changed = run(path, cache)
    assert changed["path"] != first["path"]
    assert abs(changed["value"] - 100 * 2.718281828459045 ** -0.3) < 1e-6
