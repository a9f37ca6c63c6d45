"""Expressions that combine compatible units of different scale, simulated (issue 20, rule 9).

tests/data/models/mixed_units.toml: dA/dt = kin - k A with kin = 500 ug/h (0.5 mg/h), A in mg, A(0) = 10 mg, V = 1 L,
and the output A/V + base with base = 1000 ng/mL (1 mg/L), declared once in mg/L and once in ng/mL. Closed form:
A(t) = kin/k + (A0 - kin/k) e^{-kt} = 5 + 5 e^{-0.1 t} mg; at t = 0: 10 mg/L + 1000 ng/mL = 11 mg/L = 11000 ng/mL.
"""

from pathlib import Path

import numpy as np

import pkpd

MODEL = Path(__file__).resolve().parents[1] / "data" / "models" / "mixed_units.toml"


def test_a_sum_of_mg_per_l_and_ng_per_ml_is_converted():
    model = pkpd.load_model(MODEL)
    t = np.array([0.0, 1.0, 5.0, 24.0])
    sim = pkpd.simulate(model, pkpd.Regimen.none(), t)
    amount = 5.0 + 5.0 * np.exp(-0.1 * t)                 # mg, in V = 1 L
    np.testing.assert_allclose(sim.outputs["conc"][0], amount + 1.0, rtol=1e-7)
    np.testing.assert_allclose(sim.outputs["conc_ng"][0], (amount + 1.0) * 1000.0, rtol=1e-7)
    assert sim.outputs["conc"][0][0] == 11.0
