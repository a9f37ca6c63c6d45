"""Rules of the population fit (pkpd/estimation) that the mutation audit (issue 20) left unguarded, one test per
rule, each against an answer computed independently of the path under test (the other path of the same code, a
plain simulation, central differences). Each was seen to fail with its mutant applied by hand (commit messages)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import pkpd

DATA = Path(__file__).resolve().parents[1] / "data"
WANG = DATA / "wang2007" / "wang2007.csv"


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
