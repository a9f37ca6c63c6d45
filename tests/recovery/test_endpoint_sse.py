"""Simulation-re-estimation of clinical endpoints (issue 17), lean: the benchmark's studies, a few replicates.

``benchmarks/endpoints_sse.py`` runs >= 100 replicates of a study with a state-driven Weibull time to event, a logistic
response on the AUC and a proportional-odds grade (model ``benchmarks/models/endpoints_sse.toml``) and reports bias
and CI coverage of all nine endpoint parameters. Here the same code runs 3 studies of 200 subjects re-estimating one
parameter of each kind of endpoint (the drug effect on each), from the benchmark's seeds: every fit converges, the
estimates lie near the truth, and most 95 % intervals contain it.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "endpoints_sse.py"


def _benchmark():
    spec = importlib.util.spec_from_file_location("endpoints_sse", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_drug_effects_on_each_endpoint_are_recovered_with_their_intervals():
    sse = _benchmark()
    outcomes, truth = sse.run(3, 200, 17, workers=1, estimate=("beta", "b1", "g"))
    assert all(ok for ok, _ in outcomes), [x for ok, x in outcomes if not ok]
    rows = {r["parameter"]: r for r in sse.summarise(outcomes, truth)}
    for row in rows.values():
        # 3 studies: the mean estimate within 3 of its own empirical standard errors of the truth (no gross bias)
        assert abs(row["mean"] - row["truth"]) < 3 * max(row["empirical_se"], row["mean_model_se"]) / np.sqrt(3), row
        assert 0.3 < row["mean_model_se"] / max(row["empirical_se"], 1e-12) < 5, row
    covered = sum(round(r["coverage_95"] * r["n"]) for r in rows.values())
    assert covered >= 7   # of 9 intervals; 95 % each
