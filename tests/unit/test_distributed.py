"""Scale-out on Dask (issue 9): a real LocalCluster (2 worker processes) gives the local run's result, bit for bit.

Every distributed entry point (simulate_summary, run_scenario, bootstrap, simulation_estimation, vpc, sobol_indices,
morris_screening) is run locally and on the cluster with the same seed, and compared for exact equality; one test
kills a worker process mid-run and still gets the complete, identical result; failing replicates are reported.
Also the local process pool (workers=2) against the serial run.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import pkpd
from pkpd._parallel import map_tasks, spawn_seeds

distributed = pytest.importorskip("distributed")

DATA = Path(__file__).resolve().parents[1] / "data"
THEOPH = pd.read_csv(DATA / "theoph.csv").assign(AMTU="mg")  # AMT in mg, stated by an AMTU column


@pytest.fixture(scope="module")
def client():
    # ":0": the scheduler's HTTP server on a free port. dashboard_address=None still binds 8787, and a second cluster
    # (the test suite runs on several processes) then warns that the port is in use, an error under pytest
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0")
    c = distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()


@pytest.fixture(scope="module")
def theoph_fit():
    return pkpd.fit(pkpd.load_model("pk_1cmt_oral"), THEOPH[THEOPH.ID == 1], estimate=["ka", "CL", "V"],
                    error={"conc": pkpd.Additive(sd=1.0)})


def _same_summary(a, b):
    for name in ("percentiles", "mean", "sd", "status"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert a.metrics.keys() == b.metrics.keys()
    for k in a.metrics:
        np.testing.assert_array_equal(a.metrics[k], b.metrics[k], err_msg=k)
    for k in a.kept:
        np.testing.assert_array_equal(a.kept[k], b.kept[k], err_msg=k)
    assert a.percentile_error == b.percentile_error


def test_seeds_depend_only_on_the_seed_and_the_replicate():
    a = [np.random.default_rng(s).random() for s in spawn_seeds(3, 4)]
    assert a == [np.random.default_rng(s).random() for s in spawn_seeds(3, 10)[:4]]
    assert len(set(a)) == 4


def test_a_20000_subject_summary_on_the_cluster_is_the_local_one(client):
    m = pkpd.load_model("pk_1cmt_iv")
    rng = np.random.default_rng(9)
    n = 20_000
    params = {"CL": 2.8 * np.exp(0.3 * rng.standard_normal(n)), "V": 32 * np.exp(0.2 * rng.standard_normal(n))}
    kw = dict(params=params, metrics=[pkpd.AUC("conc"), pkpd.Cmax("conc")], keep={"conc": [12.0]},
              chunk_size=2_500, progress=False)
    regimen = pkpd.Regimen.single(pkpd.Dose(100, "mg"))
    times = np.linspace(0, 24, 49)
    local = pkpd.simulate_summary(m, regimen, times, **kw)
    remote = pkpd.simulate_summary(m, regimen, times, client=client, **kw)
    assert remote.n_chunks == 8 and remote.n_subjects == n
    _same_summary(local, remote)


def test_a_50_replicate_bootstrap_on_the_cluster_is_the_local_one(client, theoph_fit):
    local = pkpd.bootstrap(theoph_fit, 50, seed=4, workers=1, progress=False)
    remote = pkpd.bootstrap(theoph_fit, 50, seed=4, client=client, progress=False)
    assert local.samples.shape[0] + local.n_failed == 50
    np.testing.assert_array_equal(local.samples, remote.samples)
    np.testing.assert_array_equal(local.replicates, remote.replicates)
    assert local.failed == remote.failed
    assert local.ci_low == remote.ci_low


def test_the_first_replicates_of_a_larger_bootstrap_are_those_of_a_smaller_one(theoph_fit):
    small = pkpd.bootstrap(theoph_fit, 5, seed=8, workers=1, progress=False)
    large = pkpd.bootstrap(theoph_fit, 8, seed=8, workers=1, progress=False)
    np.testing.assert_array_equal(small.samples, large.samples[:small.samples.shape[0]])


def test_a_local_process_pool_gives_the_serial_result(theoph_fit):
    serial = pkpd.bootstrap(theoph_fit, 6, seed=2, workers=1, progress=False)
    pool = pkpd.bootstrap(theoph_fit, 6, seed=2, workers=2, progress=False)
    np.testing.assert_array_equal(serial.samples, pool.samples)


def _sse_design() -> pd.DataFrame:
    t = [0.5, 1, 2, 4, 6, 8, 12, 24]
    return pd.DataFrame({"ID": 1, "TIME": [0.0] + t, "EVID": [1] + [0] * 8, "AMT": [100] + [0] * 8, "AMTU": "mg",
                         "DV": [np.nan] + [0.0] * 8})


def test_a_small_simulation_estimation_on_the_cluster_is_the_local_one(client):
    kw = dict(error=pkpd.Proportional(cv=0.1), estimate=["CL", "V"], n=6, seed=3, progress=False)
    local = pkpd.simulation_estimation("pk_1cmt_iv", _sse_design(), workers=1, **kw)
    remote = pkpd.simulation_estimation("pk_1cmt_iv", _sse_design(), client=client, **kw)
    assert local.names == ("CL", "V", "conc.cv")
    assert local.truth == {"CL": 2.8, "V": 32.0, "conc.cv": 0.1}
    assert local.n_ok == 6 and local.failed == ()
    for name in ("estimates", "se", "ci_low", "ci_high"):
        np.testing.assert_array_equal(getattr(local, name), getattr(remote, name), err_msg=name)
    pd.testing.assert_frame_equal(local.summary, remote.summary)


def test_simulation_estimation_summary_matches_its_definitions():
    sse = pkpd.simulation_estimation("pk_1cmt_iv", _sse_design(), error=pkpd.Proportional(cv=0.1),
                                     estimate=["CL", "V"], truth={"CL": 3.0}, n=5, seed=1, workers=1,
                                     progress=False)
    row = sse.summary.set_index("name").loc["CL"]
    est = sse.estimates[:, 0]
    assert row["truth"] == 3.0
    assert row["bias"] == pytest.approx(est.mean() - 3.0)
    assert row["rmse"] == pytest.approx(np.sqrt(np.mean((est - 3.0) ** 2)))
    assert row["empirical_se"] == pytest.approx(est.std(ddof=1))
    inside = (sse.ci_low[:, 0] <= 3.0) & (3.0 <= sse.ci_high[:, 0])
    assert row["coverage"] == pytest.approx(inside.mean())
    assert len(sse.to_dataframe()) == 5 * 3


def test_vpc_on_the_cluster_is_the_local_one(client):
    from pkpd.nlme import vpc

    data = DATA / "wang2007" / "wang2007.csv"
    fit = pkpd.fit_population("wang2007", data, iiv={"ke": 0.04}, error=pkpd.Additive(sd=0.3), maxeval=0)
    local = vpc(fit, "wang2007", data, n_replicates=40, n_bins=2, seed=6)
    remote = vpc(fit, "wang2007", data, n_replicates=40, n_bins=2, seed=6, client=client, progress=False)
    np.testing.assert_array_equal(local.simulated, remote.simulated)
    np.testing.assert_array_equal(local.blq_simulated, remote.blq_simulated)


def test_a_population_bootstrap_on_the_cluster_is_the_local_one(client):
    from pkpd.nlme import bootstrap_population

    data = DATA / "wang2007" / "wang2007.csv"
    fit = pkpd.fit_population("wang2007", data, iiv={"ke": 0.04}, error=pkpd.Additive(sd=0.3), covariance=None)
    local = bootstrap_population(fit, "wang2007", data, n=8, seed=3, workers=1, progress=False)
    remote = bootstrap_population(fit, "wang2007", data, n=8, seed=3, client=client, progress=False)
    np.testing.assert_array_equal(local.samples, remote.samples)
    assert local.failed == remote.failed


def test_sobol_and_morris_of_a_model_on_the_cluster_are_the_local_ones(client):
    from pkpd.metrics import Endpoint
    from pkpd.sensitivity import endpoint_function, morris_screening, sobol_indices

    m = pkpd.load_model("pk_1cmt_iv")
    f = endpoint_function(m, pkpd.Regimen.single(pkpd.Dose(100, "mg")), [Endpoint("conc", "auc", start=0, end=24)],
                          times=np.linspace(0, 24, 25))
    ranges = {"CL": (1.0, 5.0), "V": (20.0, 40.0)}
    local = sobol_indices(f, ranges, n=64, seed=2, n_bootstrap=20)
    remote = sobol_indices(f, ranges, n=64, seed=2, n_bootstrap=20, client=client, chunk_size=50, progress=False)
    pd.testing.assert_frame_equal(local.table, remote.table)
    # a scheduler address works too (a client is opened on it, and closed after)
    local_m = morris_screening(f, ranges, trajectories=6, seed=1)
    remote_m = morris_screening(f, ranges, trajectories=6, seed=1, client=client.scheduler.address, progress=False)
    pd.testing.assert_frame_equal(local_m.table, remote_m.table)


def test_a_scenario_on_the_cluster_is_the_local_one(client):
    from pkpd.scenarios import LogNormalPopulation, Scenario, dose_ranging_arms, run_scenario

    sc = Scenario(pkpd.load_model("msc_sepsis"), arms=dose_ranging_arms("single", [1e6, 1e7], "cell/kg"),
                  endpoints=[pkpd.Endpoint("TNF", "change_from_untreated", time=48, relative=True)],
                  population=LogNormalPopulation(30, omega={"e_max": 0.3}, covariates={"WT": 70}), seed=7)
    local = run_scenario(sc)
    remote = run_scenario(sc, client=client, chunk_size=25, progress=False)
    pd.testing.assert_frame_equal(local.table, remote.table)
    pd.testing.assert_frame_equal(local.summary, remote.summary)


def test_failing_replicates_are_reported_with_their_reason_not_dropped(client, theoph_fit):
    # a budget of 3 objective evaluations: no replicate fit can converge
    starved = pkpd.fit(pkpd.load_model("pk_1cmt_oral"), THEOPH[THEOPH.ID == 1], estimate=["ka", "CL", "V"],
                       error={"conc": pkpd.Additive(sd=1.0)}, max_evaluations=3, covariance=False)
    local = pkpd.bootstrap(starved, 4, seed=1, workers=1, progress=False)
    remote = pkpd.bootstrap(starved, 4, seed=1, client=client, progress=False)
    assert local.n_failed == 4 and local.samples.shape == (0, 4)
    assert [i for i, _ in local.failed] == [0, 1, 2, 3]
    assert all("converge" in reason for _, reason in local.failed)
    assert local.failed == remote.failed


def test_a_bad_client_is_named_in_the_error(theoph_fit):
    with pytest.raises(pkpd.PkpdError, match="client: expected a dask.distributed Client.*got int"):
        pkpd.bootstrap(theoph_fit, 3, client=42)
    with pytest.raises(pkpd.PkpdError, match="workers"):
        pkpd.bootstrap(theoph_fit, 3, workers=0)


# distributed logs (and may warn) about the killed worker and the tasks it had; nothing else may warn
@pytest.mark.filterwarnings("ignore::RuntimeWarning:distributed")
@pytest.mark.filterwarnings("ignore::UserWarning:distributed")
@pytest.mark.filterwarnings("ignore::ResourceWarning")
def test_a_worker_killed_mid_run_loses_nothing(client):
    def slow(shared, seed):  # a pure task: its value depends only on its seed
        time.sleep(0.25)
        return float(np.random.default_rng(seed).standard_normal(1000).sum() * shared)

    seeds = spawn_seeds(11, 24)
    expected = map_tasks(slow, seeds, shared=2.0, workers=1, progress=False)
    before = client.run(os.getpid)
    victim = sorted(before.values())[0]
    killer = threading.Timer(1.0, os.kill, (victim, signal.SIGKILL))
    killer.start()
    try:
        got = map_tasks(slow, seeds, shared=2.0, client=client, progress=False)
    finally:
        killer.cancel()
    assert got == expected
    client.wait_for_workers(2, timeout=60)
    assert victim not in client.run(os.getpid).values()  # the nanny restarted the killed worker
