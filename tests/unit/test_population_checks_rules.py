"""The documented rules of the checks of a population fit by simulation (VPC, NPDE), fast.

Section "seed 23": the survivors of the first mutation sample of ``population_checks`` (mutmut, seed 23): the VPC's
run in groups of replicates (on a cluster), its progress bar, the replicates' values where a prediction is not
finite, and the number of simulations behind each NPDE.

Section "seed 25": the survivors of the second, independent sample (seed 25): each output's own residual error in
the replicates of a model with two outputs.
"""

from pathlib import Path

import numpy as np
import pytest

import pkpd
from pkpd.estimation.population_checks import _vpc_replicates
from pkpd.nlme import npde, vpc

WANG = Path(__file__).resolve().parents[1] / "data" / "wang2007" / "wang2007.csv"


@pytest.fixture(scope="module")
def wang_fit():
    return pkpd.fit_population("wang2007", WANG, iiv={"ke": 0.04}, error=pkpd.Additive(sd=0.3), maxeval=0)


# ====================================================================================================== seed 23
def test_a_vpc_in_groups_of_replicates_equals_the_local_one_and_names_its_progress(wang_fit, monkeypatch):
    """With a client the replicates run in groups through pkpd._parallel.map_tasks; a spy runs them locally. The
    result is identical to the local run, every replicate's seed is used once and in order, and the progress bar
    counts replicates under the model's name (vpc _66: no grouping, _74: no result, _89: the default description).
    """
    import pkpd._parallel as parallel

    real = parallel.map_tasks
    calls = []

    def spy(fn, payloads, **kwargs):
        calls.append((list(payloads), kwargs))
        return real(fn, payloads, **(kwargs | {"client": None, "progress": False}))

    monkeypatch.setattr(parallel, "map_tasks", spy)
    n = 130
    local = vpc(wang_fit, "wang2007", WANG, n_replicates=n, n_bins=2, seed=6)
    assert not calls
    remote = vpc(wang_fit, "wang2007", WANG, n_replicates=n, n_bins=2, seed=6, client=object(), progress=False)
    np.testing.assert_array_equal(remote.simulated, local.simulated)
    np.testing.assert_array_equal(remote.blq_simulated, local.blq_simulated)
    np.testing.assert_array_equal(remote.observed, local.observed)
    (groups, kwargs), = calls
    assert len(groups) > 1 and all(len(g) > 0 for g in groups)
    seeds = [s for g in groups for s in g]
    assert [s.spawn_key for s in seeds] == [s.spawn_key for s in np.random.SeedSequence(6).spawn(n)]
    assert kwargs.get("description") == "wang2007: vpc"
    assert kwargs.get("unit") == "replicate"
    assert kwargs.get("weights") == [len(g) for g in groups]
    assert kwargs["progress"] is False


class _TwoSubjects:
    """A problem of two subjects and two records each (the second subject's second record unobserved) whose
    predictions are not finite at the first record: NaN for the first subject, +inf for the second."""

    n, q = 2, 1
    which = np.zeros((2, 2), dtype=int)
    mask = np.array([[True, True], [True, False]])

    def params(self, theta, eta):
        return eta                                       # (1, R, n, q): parameters = random effects

    def predict(self, P):
        F = np.array([[np.nan, 1.0], [np.inf, 2.0]])
        return np.broadcast_to(F, (P.shape[0], 2, 2)).copy()


def test_replicates_of_predictions_that_are_not_finite_are_the_error_around_zero():
    # a prediction that cannot be computed counts as 0 (the replicate's observation is its residual error alone);
    # the replicates are float numbers (_vpc_replicates _28: None, an object array)
    job = (_TwoSubjects(), np.zeros((1, 2, 1)), np.eye(1), [pkpd.Additive(sd=1e-6)])
    seeds = np.random.SeedSequence(3).spawn(4)
    y = _vpc_replicates(job, seeds)
    assert y.dtype == np.float64 and y.shape == (4, 3)
    np.testing.assert_allclose(y, np.tile([0.0, 1.0, 0.0], (4, 1)), atol=1e-4)


def test_each_pde_is_a_fraction_of_all_n_sim_simulations(wang_fit):
    # pde = the fraction of the K = n_sim simulations below the observation (clipped to [1/(2K), 1 - 1/(2K)]): K pde
    # is a whole number, or 1/2 or K - 1/2 where clipped (npde _73 left out a simulation: fractions of K - 1)
    K = 25
    table = npde(wang_fit, "wang2007", WANG, n_sim=K, seed=1)
    counts = table["PDE"].to_numpy() * K
    clipped = np.isclose(counts, 0.5) | np.isclose(counts, K - 0.5)
    whole = np.isclose(counts, np.round(counts), rtol=0, atol=1e-9) & (counts >= 1) & (counts <= K - 1)
    assert np.all(clipped | whole), counts
    assert whole.sum() >= 10                                # most observations are inside the simulations' range


# ====================================================================================================== seed 25
class _TwoOutputs:
    """One subject, 200 records alternating between two outputs, every prediction 5."""

    n, q = 1, 1
    which = np.tile([0, 1], 100)[None]
    mask = np.ones((1, 200), dtype=bool)

    def params(self, theta, eta):
        return eta

    def predict(self, P):
        return np.full((P.shape[0], 1, 200), 5.0)


def test_each_observation_of_a_replicate_gets_the_error_of_its_own_output():
    # output 0 with an additive sd of 0.01, output 1 with 3: the replicates' residuals have those sds on the records
    # of each output (200 records an output over two replicates: the sample sd within 20 %, about 4 standard errors)
    # (_vpc_replicates _40: every record gets the last output's error; _47: every record the first output's)
    job = (_TwoOutputs(), np.zeros((1, 1, 1)), np.eye(1), [pkpd.Additive(sd=0.01), pkpd.Additive(sd=3.0)])
    y = _vpc_replicates(job, np.random.SeedSequence(5).spawn(2))
    assert y.shape == (2, 200)
    res = y - 5.0
    for o, sd in ((0, 0.01), (1, 3.0)):
        assert 0.8 * sd < res[:, _TwoOutputs.which[0] == o].std(ddof=1) < 1.2 * sd
