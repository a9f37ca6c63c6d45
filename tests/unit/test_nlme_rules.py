"""Rules of the population fit (pkpd/estimation) that the mutation audit (issue 20) left unguarded, one test per
rule, each against an answer computed independently of the path under test (the other path of the same code, a
plain simulation, central differences). Each was seen to fail with its mutant applied by hand (commit messages)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

import pkpd
from pkpd.estimation.population_fit import _setup
from pkpd.load import model_from_dict, tomllib

DATA = Path(__file__).resolve().parents[1] / "data"
WANG = DATA / "wang2007" / "wang2007.csv"

# no dose: A starts at B0 / D and decays at rate K, so A(t) = B0 / D exp(-K t); D = 0 gives a start of inf while every
# parameter itself is finite
DECAY = model_from_dict(
    tomllib.loads("""
[model]
name = "decay_from_a_ratio"
time_unit = "h"
[parameters.B0]
value = 10.0
unit = "mg"
[parameters.D]
value = 2.0
unit = "1"
[parameters.K]
value = 0.3
unit = "1/h"
[states.A]
unit = "mg"
initial = "B0 / D"
ddt = "-K * A"
[outputs.amount]
expression = "A"
unit = "mg"
""")
)


def test_cwres_subject_by_subject_equal_the_batched_ones(monkeypatch):
    """When the batched Cholesky factor of the CWRES covariances fails, each subject is factored alone: the same
    conditional weighted residuals as the batch on the same fit (Wang 2007, FOCE-I at NONMEM's estimates)."""
    kw = dict(iiv={"ke": 0.04}, error=pkpd.Proportional(cv=0.316228), maxeval=0, covariance=None)
    batched = pkpd.fit_population("wang2007", WANG, **kw)
    cholesky = np.linalg.cholesky

    def no_batches(a, *args, **kwargs):
        if np.ndim(a) > 2:
            raise np.linalg.LinAlgError("batched factor refused by the test")
        return cholesky(a, *args, **kwargs)

    monkeypatch.setattr(np.linalg, "cholesky", no_batches)
    single = pkpd.fit_population("wang2007", WANG, **kw)
    assert single.objective == batched.objective
    assert np.all(np.isfinite(batched.table["CWRES"]))
    np.testing.assert_allclose(single.table["CWRES"], batched.table["CWRES"], rtol=1e-12, atol=1e-14)


def test_finite_difference_predictions_flag_only_the_subjects_whose_initial_state_is_not_finite():
    """The finite-difference engine's batch of 4 subjects: subjects 2 and 4 have D = 0 (initial state inf), 1 and 3
    finite ones. The bad rows are NaN; the good ones are the closed form B0 / D exp(-K t) of their own parameters."""
    times = np.array([0.0, 2.0, 6.0])  # the state starts at the first record (NONMEM too)
    data = pd.DataFrame({"ID": np.repeat([1, 2, 3, 4], 3), "TIME": np.tile(times, 4), "DV": 1.0, "EVID": 0, "AMT": 0.0})
    *_, prob = _setup(
        DECAY,
        data,
        {"K": 0.1},
        {"amount": pkpd.Additive(sd=0.1)},
        "foce",
        None,
        None,
        pkpd.SolverSettings(rtol=1e-10, atol=1e-12),
        None,
    )
    assert type(prob).__name__ == "_Problem" and DECAY.parameter_names == ("B0", "D", "K")
    P = np.array([[[10.0, 2.0, 0.3], [10.0, 0.0, 0.3], [6.0, 4.0, 0.5], [8.0, 0.0, 0.2]]])
    F = prob.predict(P)
    assert F.shape == (1, 4, 3)
    assert np.all(np.isnan(F[0, [1, 3]]))
    for i in (0, 2):
        b0, d, k = P[0, i]
        np.testing.assert_allclose(F[0, i], b0 / d * np.exp(-k * times), rtol=1e-7)
