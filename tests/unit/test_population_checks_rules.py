"""The documented rules of the checks of a population fit by simulation (VPC, NPDE), fast.

Section "seed 23": the survivors of the first mutation sample of ``population_checks`` (mutmut, seed 23): the VPC's
run in groups of replicates (on a cluster), its progress bar, the replicates' values where a prediction is not
finite, and the number of simulations behind each NPDE.

Section "seed 25": the survivors of the second, independent sample (seed 25): each output's own residual error in
the replicates of a model with two outputs.

Section "seed 26": the survivors of the third, independent sample (seed 26): the occasion effects of a fit with
inter-occasion variability in the VPC replicates, the smallest n_sim the NPDE accept, and the clipping of a PDE below
all simulations to 1/(2 n_sim).

Section "seed 27": the survivors of the fourth, independent sample (seed 27): the occasion effects of a fit with
inter-occasion variability in the NPDE simulations, and the smallest n_sim for a subject of many observations (twice
its number of observations).

Section "seed 28": the survivors of the fifth, independent sample (seed 28): the imputation of a censored observation
below its limit, the number of replicates in one batch call of the NPDE simulations, and the keys of the strata of
a text column.

Section "seed 29": the survivors of the sixth, independent sample (seed 29): the time unit of a VPC and the label of
its time axis, the label of a prediction-corrected VPC's value axis, and the column named in the refusal of a
stratification of too many values.

Section "seed 30": the survivors of the seventh, independent sample (seed 30): the floating-point warnings silenced in
the population predictions of a prediction-corrected VPC (with a test double of those predictions), and the division
by the Cholesky diagonal of the limit of a censored observation in its imputation.

Section "seed 31": the survivor of the eighth, independent sample (seed 31): the default number of NPDE simulations
(1000).

Section "seed 32": the survivors of the ninth, independent sample (seed 32): the default number of VPC replicates
(200), the client handed on to the task runner, one solve of each subject for a pcVPC's population predictions, the
refusal of data of another number of subjects, the number of NPDE simulations over several batches, and the
covariate effects of a fit in the NPDE simulations.

Section "seed 33": the survivors of the tenth, independent sample (seed 33): the options of ``VPC.plot`` handed to
``plot_vpc``, the VPC of a fit started with ``init=`` inside bounds that exclude the model's default, and the groups
of replicates a VPC sends to a cluster. Section "seed 33, part 2": the number of replicates in one NPDE batch call
where one more makes 20001 subjects, and each output's own residual error in the NPDE simulations.

Section "seed 34": the survivors of the eleventh, independent sample (seed 34): the percentiles a user asks of a VPC,
the refusal of an NPDE's blq= that is not M3, and (with the corrected docstring of npde's blq=) the censored
observations the data mark, the same with or without blq=M3().

Section "seed 36": the survivor of the thirteenth, independent sample (seed 36): a simulation exactly at the limit of a
censored observation is not below it, so it does not count in the fraction p_LOQ its imputation draws from.

Section "seed 38": the survivors of the fifteenth, independent sample (seed 38): the default number of VPC bins (8),
and the floating-point warnings silenced in the predictions of the NPDE simulations (with a test double of those
predictions).

Section "seed 39": the sixteenth, independent sample (seed 39), whose three survivors are equivalent: a defect found
while judging them, the refusal of a number of VPC replicates that is not a positive integer (and 1 replicate or a
NumPy integer accepted).

Section "seed 43": the survivor of the twentieth, independent sample (seed 43): the stratification column of a VPC
of a ``NonmemDataset`` with doses, read with the model (whose dose targets its dose records are checked against).

Section "seed 44": the survivor of the twenty-first, independent sample (seed 44): the refusal of a VPC's blq= that is
not M3, as the fit's and the NPDE's.

Section "seed 45": the survivor of the twenty-second, independent sample (seed 45): the clipping of a PDE above all
simulations to 1 - 1/(2 n_sim).
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

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


# ====================================================================================================== seed 26
def _two_occasions(n: int, cl: float, v: float, pi: float):
    """pk_1cmt_iv data of n subjects, 100 mg at 0 and at 1000 h (occasions 1 and 2), one observation per occasion at
    t = V/CL after its dose, 100/V exp(-exp(kappa)) with kappa ~ N(0, pi) (seed 0); and its fit at CL, V with IIV on
    CL 1e-4 and IOV on CL pi (maxeval=0)."""
    rng = np.random.default_rng(0)
    t = v / cl
    rows = []
    for i in range(1, n + 1):
        for occ, start in ((1, 0.0), (2, 1000.0)):
            rows.append(dict(ID=i, TIME=start, DV=".", AMT=100.0, AMTU="mg", EVID=1, CMT=1, MDV=1, OCC=occ))
            c = 100 / v * np.exp(-np.exp(rng.normal(0, np.sqrt(pi))))
            rows.append(dict(ID=i, TIME=start + t, DV=c, AMT=0, EVID=0, CMT=1, MDV=0, OCC=occ))
    data = pd.DataFrame(rows)
    fit = pkpd.fit_population("pk_1cmt_iv", data, iiv={"CL": 1e-4}, iov={"CL": pi}, error=pkpd.Additive(sd=1e-3),
                              init={"CL": cl, "V": v}, maxeval=0, covariance=None)
    return data, fit


def test_a_vpc_of_a_fit_with_inter_occasion_variability_draws_the_occasion_effects():
    # pk_1cmt_iv (CL 2.8, V 32), 200 subjects, 100 mg at 0 and at 1000 h (occasions 1 and 2, no carry-over), one
    # observation per occasion at t = V/CL after its dose; IIV on CL 1e-4, IOV on CL 0.25, additive error 1e-3. The
    # concentration 100/V exp(-exp(eta + kappa)) falls as CL rises, so its p-th percentile is the (100-p)-th of CL:
    # 100/V exp(-exp(z_(1-p) sqrt(0.25 + 1e-4))), 0.321, 1.150 and 2.014 mg/L. The median over replicates of each
    # simulated percentile lies within 10 % of it in both bins (vpc _27: the fit's IOV not passed on, the replicates
    # drew no occasion effects and every percentile was about 1.15)
    cl, v, pi = 2.8, 32.0, 0.25
    t = v / cl
    data, fit = _two_occasions(200, cl, v, pi)
    result = vpc(fit, "pk_1cmt_iv", data, n_replicates=40, n_bins=2, seed=3)
    np.testing.assert_allclose(result.centres, [t, 1000 + t])
    sd = np.sqrt(pi + 1e-4)
    expected = [100 / v * np.exp(-np.exp(norm.ppf(1 - p / 100) * sd)) for p in (5, 50, 95)]
    np.testing.assert_allclose(result.simulated[:, 1, :], np.tile(np.array(expected)[:, None], (1, 2)), rtol=0.1)


def _refuses_one_less_and_accepts(fit, model, data, *, least, n_rows):
    """npde refuses n_sim = least - 1 with its whole message and accepts least: n_rows finite NPDE, every PDE k/least
    or clipped to 1/(2 least) or 1 - 1/(2 least), so 2 least x PDE is whole."""
    with pytest.raises(pkpd.FitError) as err:
        npde(fit, model, data, n_sim=least - 1, seed=1)
    assert str(err.value) == (f"npde: n_sim={least - 1} is too small; give at least {least} (twice the largest "
                              "number of observations of a subject) - 1000 is usual")
    table = npde(fit, model, data, n_sim=least, seed=1)
    assert len(table) == n_rows and np.all(np.isfinite(table["NPDE"]))
    counts = table["PDE"].to_numpy() * 2 * least
    np.testing.assert_allclose(counts, np.round(counts), rtol=0, atol=1e-9)


def test_npde_accepts_twenty_simulations_and_refuses_fewer_with_the_whole_message(wang_fit):
    # at most 2 observations a subject: the least n_sim is max(20, 2 x 2) = 20, as the message of 19 says; 20 is
    # accepted, every PDE k/20 or clipped to 1/40 or 39/40, so 40 PDE is whole (npde _44: max(21, ...) refused 20)
    _refuses_one_less_and_accepts(wang_fit, "wang2007", WANG, least=20, n_rows=20)


def test_a_pde_below_all_simulations_is_clipped_to_one_over_twice_n_sim():
    # Wang 2007 with subject 1's observation at 1 h set to -50 (additive sd 0.3: far below every simulation): its PDE
    # is the documented lower clip 1/(2K), 1/50 for K = 25, and its NPDE the normal quantile of 0.02, -2.054
    # (npde _132: the clip at 2/(2K) = 0.04)
    data = pd.read_csv(WANG)
    data.loc[(data["ID"] == 1) & (data["TIME"] == 1), "DV"] = -50.0
    fit = pkpd.fit_population("wang2007", data, iiv={"ke": 0.04}, error=pkpd.Additive(sd=0.3), maxeval=0)
    K = 25
    table = npde(fit, "wang2007", data, n_sim=K, seed=2)
    row = (table["ID"].astype(int) == 1).to_numpy() & np.isclose(table["TIME"].to_numpy(float), 1.0)
    assert row.sum() == 1
    assert table["PDE"].to_numpy()[row][0] == pytest.approx(1 / (2 * K), rel=1e-12)
    assert table["NPDE"].to_numpy()[row][0] == pytest.approx(norm.ppf(1 / 50), rel=1e-9)


# ====================================================================================================== seed 27
def test_the_npde_of_a_fit_with_inter_occasion_variability_simulate_the_occasion_effects():
    # pk_1cmt_iv (CL 2.8, V 32), 40 subjects, 100 mg at 0 and at 1000 h (occasions 1 and 2), one observation per
    # occasion at t = V/CL after its dose; IIV on CL 1e-4, IOV on CL 0.25, additive error 1e-3. Under the model the
    # concentration is 100/V exp(-exp(kappa)), kappa ~ N(0, 0.25 + 1e-4), the two of a subject nearly independent, so
    # the PDE of an observation y is P(C < y) = 1 - Phi(log(-log(y V/100)) / sd), within 0.08 (5 Monte Carlo standard
    # errors of 1000 simulations) (npde _14: the fit's IOV not passed on, the simulations drew no occasion effects,
    # all about 1.15 mg/L, and 78 of the 80 PDE were clipped to 1/2000 or 1999/2000)
    cl, v, pi = 2.8, 32.0, 0.25
    data, fit = _two_occasions(40, cl, v, pi)
    table = npde(fit, "pk_1cmt_iv", data, n_sim=1000, seed=4)
    assert len(table) == 80
    y = table["DV"].to_numpy(float)
    expected = norm.sf(np.log(-np.log(y * v / 100)) / np.sqrt(pi + 1e-4))
    np.testing.assert_allclose(table["PDE"].to_numpy(), expected, rtol=0, atol=0.08)


def test_npde_asks_for_twice_the_largest_number_of_observations_of_a_subject():
    # pk_1cmt_iv, three subjects with 12, 5 and 5 observations: the least n_sim is max(20, 2 x 12) = 24 (the
    # documented rule), as the message of 23 says; 24 is accepted, every PDE k/24 or clipped to 1/48 or 47/48, so 48
    # PDE is whole (npde _46: the check at 3 x 12 = 36 refused 24 with a message asking for 24)
    rng = np.random.default_rng(1)
    rows = []
    for i, n in ((1, 12), (2, 5), (3, 5)):
        rows.append(dict(ID=i, TIME=0.0, DV=".", AMT=100.0, AMTU="mg", EVID=1, CMT=1, MDV=1))
        for t in np.arange(1.0, n + 1.0):
            c = 100 / 32 * np.exp(-2.8 / 32 * t) + rng.normal(0, 0.1)
            rows.append(dict(ID=i, TIME=t, DV=c, AMT=0, EVID=0, CMT=1, MDV=0))
    data = pd.DataFrame(rows)
    fit = pkpd.fit_population("pk_1cmt_iv", data, iiv={"CL": 0.1}, error=pkpd.Additive(sd=0.1),
                              init={"CL": 2.8, "V": 32.0}, maxeval=0, covariance=None)
    _refuses_one_less_and_accepts(fit, "pk_1cmt_iv", data, least=24, n_rows=22)


# ====================================================================================================== seed 28
def test_an_imputed_censored_observation_takes_a_quantile_below_its_limit():
    # one censored observation, mean 0, L = [[1]], 1000 decorrelated simulations at the normal quantiles
    # Phi^-1((k + 1/2)/1000) and the LLOQ at Phi^-1(0.1): p_LOQ = 100/1000 = 0.1 exactly, so the documented imputation
    # draws its pd uniformly in (0, 0.1) and takes that quantile of the simulations, never above the LLOQ's quantile
    # 0.1 (np.quantile of the simulations at 0.1); 200 draws spread over that range, the mean pd about 0.05
    # (_impute_censored _21: the pd drawn in (0, 1), about nine draws in ten above the LLOQ)
    from pkpd.estimation.population_checks import _impute_censored

    K = 1000
    sim = norm.ppf((np.arange(K) + 0.5) / K)[:, None]
    limit = norm.ppf(0.1)
    rng = np.random.default_rng(28)
    out = np.array([_impute_censored(np.array([-5.0]), np.array([True]), np.array([limit]), np.zeros(1),
                                     np.eye(1), sim, rng, 1 / (2 * K))[0] for _ in range(200)])
    assert np.all(out <= np.quantile(sim[:, 0], 0.1)) and np.all(out >= sim[0, 0])
    pd_ = norm.cdf(out)
    assert 0.04 < pd_.mean() < 0.06


class _ManySubjects:
    """n subjects of one observation each, every prediction 1; ``predict`` records how many replicates it was given
    and stops the NPDE after its first call."""

    J, q = 1, 1

    class Stop(Exception):
        pass

    def __init__(self, n: int):
        self.n = n
        self.mask = np.ones((n, 1), dtype=bool)
        self.which = np.zeros((n, 1), dtype=int)
        self.calls = []

    def params(self, theta, eta):
        return eta

    def predict(self, P):
        self.calls.append(P.shape[:2])
        raise self.Stop


@pytest.mark.parametrize(("n", "per_call"), [(10001, 1), (10000, 2), (6000, 3), (20001, 1)])
def test_one_npde_batch_call_simulates_at_most_20000_subjects_or_one_replicate(monkeypatch, n, per_call):
    # the NPDE simulate their replicates in batch calls of as many replicates as fit in 20000 simulated subjects (the
    # memory of one call), at least one: floor(20000 / n) for n <= 20000, else 1 (a test double of the problem with n
    # subjects; npde _63: max(2, ...) put 2 replicates of 10001 subjects, 20002 subjects, in one call)
    import types

    import pkpd.estimation.population_checks as checks

    prob = _ManySubjects(n)
    layout = types.SimpleNamespace(x0=np.zeros(0), subject_theta=lambda x0, theta: theta, outputs=["C"])
    model = types.SimpleNamespace(parameter_names=["a"])
    monkeypatch.setattr(checks, "_setup", lambda *args: (model, None, {"C": None}, layout, prob))
    fit = types.SimpleNamespace(iiv=None, error=None, theta={"a": 1.0}, covariate_effects=None, iov=None,
                                n_subjects=n, n_obs=n, table=range(n), omega=np.eye(1))
    with pytest.raises(_ManySubjects.Stop):
        npde(fit, None, None, n_sim=20, seed=1)
    assert prob.calls == [(per_call, n)]


def test_the_strata_of_a_text_column_are_its_own_text_values(wang_fit):
    # Wang 2007 with a text column GROUP, "A" for subjects 1-5 and "B" for 6-10: the strata are keyed by the column's
    # values as the data hold them (plain str, as read_nonmem reads a text column), so they print as ['A', 'B'] and
    # each VPC's stratum is that str (vpc _189: dtype=object dropped, numpy text keys printed as np.str_('A'))
    from pkpd.nonmem import read_nonmem

    data = pd.read_csv(WANG)
    data["GROUP"] = np.where(data["ID"] <= 5, "A", "B")
    assert {type(v) for v in read_nonmem(data, pkpd.load_model("wang2007")).table["GROUP"]} == {str}
    res = vpc(wang_fit, "wang2007", data, n_replicates=10, n_bins=1, seed=2, stratify="GROUP")
    assert repr(list(res.strata)) == "['A', 'B']"
    assert [type(k) for k in res.strata] == [str, str]
    assert type(res["A"].stratum) is str and res["B"].stratum == "B"


@pytest.mark.parametrize("column", ["text", "number"])
def test_observations_without_a_stratification_value_make_a_stratum_of_their_own(wang_fit, column):
    # Wang 2007 (10 subjects, 2 observations each) stratified by a column that is "A"/1.0 for subjects 1-5,
    # "B"/2.0 for 6-9 and empty for subject 10: a text column's empty cell reads as '', a numeric one's as NaN.
    # Either way subject 10's observations are one more stratum, keyed None and shown "missing", last; before, the
    # text case made a stratum '' (printed as nothing) and the numeric case left them out of every stratum silently.
    # Each stratum's observed median (one bin) is the median of its own subjects' DV.
    data = pd.read_csv(WANG)
    first = data["ID"] <= 5
    values = np.where(first, "A", "B") if column == "text" else np.where(first, 1.0, 2.0)
    data["GROUP"] = pd.Series(values, dtype=object).where(data["ID"] != 10, np.nan)
    res = vpc(wang_fit, "wang2007", data, n_replicates=5, n_bins=1, seed=2, stratify="GROUP")
    a, b = ("A", "B") if column == "text" else (1.0, 2.0)
    assert list(res.strata) == [a, b, None]
    assert repr(res) == f"StratifiedVPC(by 'GROUP': {'A, B' if column == 'text' else '1, 2'}, missing)"
    for key, ids in ((a, range(1, 6)), (b, range(6, 10)), (None, [10])):   # every record is an observation
        expected = np.median(data.loc[data["ID"].isin(ids), "DV"])
        np.testing.assert_allclose(res[key].observed[1, 0], expected, rtol=1e-12)
    assert res[None].stratum is None


# ====================================================================================================== seed 29
def test_a_vpc_keeps_the_time_unit_of_its_model_and_labels_its_time_axis_with_it(wang_fit):
    # models/wang2007.toml declares time_unit = "h": the VPC's time_unit is "h" and its figure's time axis reads
    # "Time [h]" (the one axis label format "NAME [unit]") (vpc _130: time_unit=None, the axis read "Time [None]")
    import matplotlib.pyplot as plt

    v = vpc(wang_fit, "wang2007", WANG, n_replicates=10, n_bins=2, seed=1)
    assert v.time_unit == "h"
    fig = v.plot()
    try:
        assert fig.axes[-1].get_xlabel() == "Time [h]"
    finally:
        plt.close(fig)


def test_the_value_axis_of_a_prediction_corrected_vpc_says_so(wang_fit):
    # output f of wang2007 in mg/L: a plain VPC's value axis reads "f [mg/L]" (plot_vpc's doctest), a
    # prediction-corrected one's "prediction-corrected f [mg/L]", titled "pcVPC of f" (VPC.plot _7: the label
    # dropped, an empty value axis)
    import matplotlib.pyplot as plt

    v = vpc(wang_fit, "wang2007", WANG, n_replicates=10, n_bins=2, seed=1, prediction_corrected=True)
    assert v.prediction_corrected is True
    fig = v.plot()
    try:
        assert fig.axes[0].get_ylabel() == "prediction-corrected f [mg/L]"
        assert fig.axes[0].get_title() == "pcVPC of f"
    finally:
        plt.close(fig)


def test_a_stratification_of_too_many_values_names_its_column_in_the_refusal(wang_fit):
    # Wang 2007 (20 observations) with a column K numbering them 0-19: 20 distinct values, more than the 12 a VPC
    # stratifies by; the refusal names the column K, its whole message compared (vpc _192: the column's name not
    # passed on, the message said stratify=None)
    data = pd.read_csv(WANG)
    data["K"] = np.arange(len(data))
    with pytest.raises(pkpd.PkpdError) as err:
        vpc(wang_fit, "wang2007", data, n_replicates=5, n_bins=1, seed=1, stratify="K")
    assert str(err.value) == ("vpc: stratify='K' has 20 distinct values, more than 12; stratify by a grouped column "
                              "(e.g. a dose group or a binned covariate)")


# ====================================================================================================== seed 30
def test_a_prediction_corrected_vpc_silences_an_overflow_in_its_population_predictions(wang_fit, monkeypatch):
    # _Problem.predict of Wang 2007 wrapped (a test double, like those of seeds 23 and 28) so that it computes a
    # capped term min(1, exp(1000)) outside the problem's own np.errstate guards: exp overflows to inf (numpy's default
    # error state warns "overflow encountered in exp"), the cap gives 1, the predictions are unchanged. vpc computes
    # the pcVPC's population predictions, like the replicates, with floating-point warnings silenced: no warning, and
    # the pcVPC equals the one without the term (vpc _103: np.errstate(all=None) left the caller's error state in
    # force, the overflow warned; under tests/conftest.py's over="raise" a FloatingPointError). Every real model's
    # arithmetic is already guarded inside _Problem (build_q, the initial states, the events, run_batch), which is
    # why seed 28 found this mutant equivalent; this pins vpc's own guard should one of those go
    import warnings

    plain = vpc(wang_fit, "wang2007", WANG, n_replicates=10, n_bins=2, seed=3, prediction_corrected=True)
    _predictions_that_overflow_on_the_way(monkeypatch)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        v = vpc(wang_fit, "wang2007", WANG, n_replicates=10, n_bins=2, seed=3, prediction_corrected=True)
    np.testing.assert_array_equal(v.simulated, plain.simulated)
    np.testing.assert_array_equal(v.observed, plain.observed)


def test_the_limit_of_a_censored_observation_is_decorrelated_by_the_cholesky_diagonal():
    # two observations, mean E = (1, 2), Cholesky factor L = [[2, 0], [1.5, 3]] (L_jj not 1), the first observed at
    # y_0 = 2 and the second censored; the decorrelated first value is y*_0 = (L^-1 (y - E))_0 = 0.5 (scipy's
    # triangular solve), and y_1 < LLOQ <=> y*_1 < c_1 = (LLOQ - E_1 - L_10 y*_0) / L_11 (y = E + L y*). With the LLOQ
    # at E_1 + L_10 y*_0 + L_11 Phi^-1(0.2), c_1 = Phi^-1(0.2), so with 1000 decorrelated simulations at the normal
    # quantiles p_LOQ = 0.2: the pd drawn uniformly in (0, 0.2), its mean about 0.1, and every imputed y_1 = E_1 +
    # L_10 y*_0 + L_11 y*_1 below the LLOQ (to within one step of the simulations' grid, np.quantile interpolating
    # between them) (_impute_censored _7: (LLOQ - base) * L_11, c_1 = 9 Phi^-1(0.2), no simulation below it, every
    # pd the smallest 1/(2K))
    from scipy.linalg import solve_triangular

    from pkpd.estimation.population_checks import _impute_censored

    K = 1000
    q = norm.ppf((np.arange(K) + 0.5) / K)
    sim = np.column_stack([q, q])
    mean = np.array([1.0, 2.0])
    L = np.array([[2.0, 0.0], [1.5, 3.0]])
    y = np.array([2.0, -10.0])
    y0_star = solve_triangular(L, y - mean, lower=True)[0]
    assert y0_star == pytest.approx(0.5)
    lloq = mean[1] + L[1, 0] * y0_star + L[1, 1] * norm.ppf(0.2)
    rng = np.random.default_rng(30)
    out = np.array([_impute_censored(y, np.array([False, True]), np.array([0.0, lloq]), mean, L, sim, rng,
                                     1 / (2 * K)) for _ in range(200)])
    np.testing.assert_allclose(out[:, 0], y0_star, rtol=1e-12)
    assert np.all(out[:, 1] <= np.quantile(q, 0.2))
    imputed_y = mean[1] + L[1, 0] * out[:, 0] + L[1, 1] * out[:, 1]
    assert np.all(imputed_y < lloq + L[1, 1] * (q[200] - q[199]))
    assert imputed_y.max() > lloq - 0.5
    assert 0.08 < norm.cdf(out[:, 1]).mean() < 0.12


# ====================================================================================================== seed 31
def test_npde_simulate_1000_replicates_by_default(wang_fit):
    # the documented default n_sim = 1000 ("1000 is the usual choice"): without n_sim every PDE is a fraction k/1000
    # of the simulations, or clipped to 1/2000 or 1999/2000, so 1000 PDE is a whole number or 0.5 / 999.5, and the
    # table is the one of n_sim=1000 given explicitly (npde _1: the default 1001, fractions k/1001 and the clip
    # 1/2002, none of them whole in thousandths)
    K = 1000
    table = npde(wang_fit, "wang2007", WANG, seed=7)
    counts = table["PDE"].to_numpy() * K
    clipped = np.isclose(counts, 0.5, rtol=0, atol=1e-9) | np.isclose(counts, K - 0.5, rtol=0, atol=1e-9)
    whole = np.isclose(counts, np.round(counts), rtol=0, atol=1e-9) & (counts >= 1) & (counts <= K - 1)
    assert np.all(clipped | whole), counts
    assert whole.sum() >= 10                                # most observations are inside the simulations' range
    explicit = npde(wang_fit, "wang2007", WANG, n_sim=K, seed=7)
    pd.testing.assert_frame_equal(table, explicit)


# ====================================================================================================== seed 32
def test_a_vpc_simulates_200_replicates_by_default(wang_fit, monkeypatch):
    # the documented default n_replicates = 200: without it vpc simulates the seeds SeedSequence(seed).spawn(200), one
    # replicate each, in order (a spy on _vpc_replicates that runs the real one), and the VPC equals the one of
    # n_replicates=200 given explicitly (vpc _1: the default 201)
    import pkpd.estimation.population_checks as checks

    real = checks._vpc_replicates
    seen = []

    def spy(job, seeds):
        seen.append([s.spawn_key for s in seeds])
        return real(job, seeds)

    monkeypatch.setattr(checks, "_vpc_replicates", spy)
    v = vpc(wang_fit, "wang2007", WANG, n_bins=2, seed=4)
    assert seen == [[s.spawn_key for s in np.random.SeedSequence(4).spawn(200)]]
    explicit = vpc(wang_fit, "wang2007", WANG, n_replicates=200, n_bins=2, seed=4)
    np.testing.assert_array_equal(v.simulated, explicit.simulated)
    np.testing.assert_array_equal(v.blq_simulated, explicit.blq_simulated)


def test_a_vpc_with_a_client_hands_that_client_to_the_task_runner(wang_fit, monkeypatch):
    # "with client ... the replicates are simulated on the cluster": vpc passes the client it was given to
    # pkpd._parallel.map_tasks (a spy that records it and runs the groups locally), which is what sends the groups
    # there (vpc _87: the client dropped, map_tasks ran every group in the calling process)
    import pkpd._parallel as parallel

    real = parallel.map_tasks
    clients = []

    def spy(fn, payloads, **kwargs):
        clients.append(kwargs.get("client"))
        return real(fn, payloads, **(kwargs | {"client": None, "progress": False}))

    monkeypatch.setattr(parallel, "map_tasks", spy)
    client = object()
    vpc(wang_fit, "wang2007", WANG, n_replicates=10, n_bins=2, seed=1, client=client, progress=False)
    assert len(clients) == 1 and clients[0] is client


def test_npde_refuses_data_of_another_number_of_subjects_with_as_many_observations(wang_fit):
    # Wang 2007 (10 subjects, 20 observations) with subject 1's observation at 1 h moved to a new subject 11: 11
    # subjects, still 20 observations, not the data of the fit; refused with the whole message (npde _32: `and` for
    # the first `or`, a wrong number of subjects refused only with a wrong number of observations too)
    data = pd.read_csv(WANG)
    data.loc[(data["ID"] == 1) & (data["TIME"] == 1), "ID"] = 11
    with pytest.raises(pkpd.FitError) as err:
        npde(wang_fit, "wang2007", data, n_sim=20, seed=1)
    assert str(err.value) == ("npde: the data (11 subjects, 20 observations) do not match the fit (10 subjects, 20 "
                              "observations); give the data the fit used")


class _Batches(_ManySubjects):
    """As ``_ManySubjects``, but ``predict`` returns the predictions (every one 1) for the first ``stop_after - 1``
    calls and stops the NPDE at call ``stop_after``."""

    def __init__(self, n: int, stop_after: int):
        super().__init__(n)
        self.stop_after = stop_after

    def predict(self, P):
        self.calls.append(P.shape[:2])
        if len(self.calls) == self.stop_after:
            raise self.Stop
        return np.ones((P.shape[0], self.n, 1))


def test_the_npde_batches_simulate_n_sim_replicates_in_all(monkeypatch):
    # 1000 subjects: batches of floor(20000 / 1000) = 20 replicates; n_sim = 30 is one batch of 20 and a last one of
    # the 30 - 20 = 10 left, 30 in all (a test double of the problem stops the NPDE at its second call) (npde _79:
    # min(chunk, n_sim + start), a last batch of 20, 40 replicates)
    import types

    import pkpd.estimation.population_checks as checks

    n = 1000
    prob = _Batches(n, stop_after=2)
    layout = types.SimpleNamespace(x0=np.zeros(0), subject_theta=lambda x0, theta: theta, outputs=["C"])
    model = types.SimpleNamespace(parameter_names=["a"])
    monkeypatch.setattr(checks, "_setup", lambda *args: (model, None, {"C": None}, layout, prob))
    fit = types.SimpleNamespace(iiv=None, error={"C": pkpd.Additive(sd=1.0)}, theta={"a": 1.0},
                                covariate_effects=None, iov=None, n_subjects=n, n_obs=n, table=range(n),
                                omega=np.eye(1))
    with pytest.raises(_Batches.Stop):
        npde(fit, None, None, n_sim=30, seed=1)
    assert prob.calls == [(20, n), (10, n)]


def test_the_npde_of_a_fit_with_a_covariate_effect_simulate_each_subject_at_its_covariate():
    # pk_1cmt_iv (CL 2.8, V 32), 40 subjects of WT 70 or 140 kg, CL = 2.8 (WT/70) exp(eta) (a power effect of exponent
    # 1, reference 70; IIV on CL 0.09), 100 mg at 0 and one observation at t = V/2.8, additive error 1e-3. Under the
    # model the concentration is 100/V exp(-(WT/70) exp(eta)), so the PDE of an observation y is P(C < y) = 1 -
    # Phi(log(-log(y V/100) 70/WT) / 0.3), within 0.08 (5 Monte Carlo standard errors of 1000 simulations) (npde _13:
    # the fit's covariate effects not passed on, every subject simulated at WT 70, the heavy subjects' PDE near 0)
    cl, v, om = 2.8, 32.0, 0.09
    t = v / cl
    rng = np.random.default_rng(5)
    rows = []
    for i in range(1, 41):
        wt = 70.0 if i % 2 else 140.0
        c = 100 / v * np.exp(-(wt / 70) * np.exp(rng.normal(0, np.sqrt(om))))
        rows.append(dict(ID=i, TIME=0.0, DV=".", AMT=100.0, AMTU="mg", EVID=1, CMT=1, MDV=1, WT=wt))
        rows.append(dict(ID=i, TIME=t, DV=c, AMT=0, EVID=0, CMT=1, MDV=0, WT=wt))
    data = pd.DataFrame(rows)
    wt_effect = pkpd.CovariateEffect("CL", "WT", "power", 1.0, ref=70.0)
    fit = pkpd.fit_population("pk_1cmt_iv", data, iiv={"CL": om}, error=pkpd.Additive(sd=1e-3),
                              init={"CL": cl, "V": v}, covariates=[wt_effect], maxeval=0, covariance=None)
    table = npde(fit, "pk_1cmt_iv", data, n_sim=1000, seed=4)
    assert len(table) == 40
    y = table["DV"].to_numpy(float)
    wt = np.where(table["ID"].astype(int).to_numpy() % 2, 70.0, 140.0)
    expected = norm.sf(np.log(-np.log(y * v / 100) * 70 / wt) / np.sqrt(om))
    np.testing.assert_allclose(table["PDE"].to_numpy(), expected, rtol=0, atol=0.08)


def test_the_population_predictions_of_a_pcvpc_solve_each_subject_once(wang_fit, monkeypatch):
    # a pcVPC scales by the population predictions (eta = 0), which need one solve of each subject and no gradient:
    # with _Problem.predict wrapped to record how many copies of the subjects each call solves (a test double that
    # returns the real predictions), a pcVPC of 10 replicates of Wang 2007 makes two calls, the replicates (10 copies)
    # and the population predictions (1 copy), and equals the pcVPC without the spy (vpc _112: grad=False dropped,
    # predict_grad's central differences solved 1 + 2q = 3 copies, q = 1 random effect - the same predictions at 3
    # times the solves and the memory, so the result-size check refuses data a third as large)
    from pkpd.estimation import finite_difference

    plain = vpc(wang_fit, "wang2007", WANG, n_replicates=10, n_bins=2, seed=3, prediction_corrected=True)
    real = finite_difference._Problem.predict
    copies = []

    def spy(self, P):
        copies.append(P.shape[0])
        return real(self, P)

    monkeypatch.setattr(finite_difference._Problem, "predict", spy)
    v = vpc(wang_fit, "wang2007", WANG, n_replicates=10, n_bins=2, seed=3, prediction_corrected=True)
    assert copies == [10, 1]
    np.testing.assert_array_equal(v.simulated, plain.simulated)
    np.testing.assert_array_equal(v.observed, plain.observed)


# ====================================================================================================== seed 33
def test_vpc_plot_hands_its_options_to_plot_vpc(wang_fit):
    # VPC.plot(**kwargs) draws "see pkpd.plots.plot_vpc": its documented option log= sets the value axis's scale,
    # "log" for log=True and "linear" for log=False, whatever the default for these values; an option plot_vpc does
    # not have is refused with a TypeError naming it (VPC.plot _4: plot_vpc(self, ) - every option silently dropped)
    import matplotlib.pyplot as plt

    v = vpc(wang_fit, "wang2007", WANG, n_replicates=10, n_bins=2, seed=1)
    for log, scale in ((True, "log"), (False, "linear")):
        fig = v.plot(log=log)
        try:
            assert fig.axes[0].get_yscale() == scale
        finally:
            plt.close(fig)
    with pytest.raises(TypeError, match="colour"):
        v.plot(colour="red")


def test_a_vpc_of_a_fit_started_inside_narrowed_bounds_simulates_its_estimates():
    # a fit whose model's default lies outside the bounds starts inside them with init= (the remedy the refusal of
    # fit_population names); its VPC simulates the fit's estimates, ke = 0.7, so it runs and equals the VPC of the
    # same fit of a model whose default is 0.7, and the median of the simulated medians at t = 1 h is near
    # 10 exp(-0.7) = 4.97 (not the default's 10 exp(-0.5) = 6.07) (vpc _14: init=None given to _setup, which
    # checked the model's default 0.5 against the bounds [0.6, 10] and refused the VPC with a FitError)
    model = pkpd.load_model("wang2007").with_bounds(ke=(0.6, 10.0))
    fit = pkpd.fit_population(model, WANG, iiv={"ke": 0.04}, error=pkpd.Additive(sd=0.3), init={"ke": 0.7},
                              maxeval=0)
    assert fit.theta == {"ke": 0.7}
    at = model.with_parameters(ke=0.7)
    ref = pkpd.fit_population(at, WANG, iiv={"ke": 0.04}, error=pkpd.Additive(sd=0.3), maxeval=0)
    v = vpc(fit, model, WANG, n_replicates=20, n_bins=2, seed=5)
    expected = vpc(ref, at, WANG, n_replicates=20, n_bins=2, seed=5)
    np.testing.assert_array_equal(v.simulated, expected.simulated)
    np.testing.assert_array_equal(v.observed, expected.observed)
    np.testing.assert_array_equal(v.centres, [0.0, 1.0])
    assert v.simulated[1, 1, 1] == pytest.approx(10 * np.exp(-0.7), rel=0.05)


def test_a_vpc_on_a_cluster_sends_at_most_64_groups_of_consecutive_replicates(wang_fit, monkeypatch):
    # "with client ... the replicates are simulated on the cluster in groups": 1000 replicates go to the task runner
    # as at most 64 groups (tasks) of consecutive replicates, here 62 groups of ceil(1000 / 64) = 16 and one of 8,
    # every seed of SeedSequence(2).spawn(1000) once and in order; a spy records the groups and stops the VPC
    # (vpc _70: `+(-n // 64)`, and _72: `-(+n // 64)`, both a group size of 1 - 1000 tasks of one replicate each,
    # the same VPC but 11-15 times the time on a local Dask cluster for 2000 replicates, 13-17 s for 1.2 s)
    import pkpd._parallel as parallel

    class _Stop(Exception):
        pass

    calls = []

    def spy(fn, payloads, **kwargs):
        calls.append((list(payloads), kwargs))
        raise _Stop

    monkeypatch.setattr(parallel, "map_tasks", spy)
    with pytest.raises(_Stop):
        vpc(wang_fit, "wang2007", WANG, n_replicates=1000, n_bins=2, seed=2, client=object(), progress=False)
    (groups, kwargs), = calls
    assert [len(g) for g in groups] == [16] * 62 + [8]
    assert kwargs["weights"] == [16] * 62 + [8]
    seeds = [s for g in groups for s in g]
    assert [s.spawn_key for s in seeds] == [s.spawn_key for s in np.random.SeedSequence(2).spawn(1000)]


# ============================================================================================== seed 33, part 2
@pytest.mark.parametrize(("n", "n_sim", "per_call"), [(6667, 20, 2), (339, 100, 58)])
def test_one_npde_batch_call_never_exceeds_20000_subjects_where_one_more_replicate_makes_20001(monkeypatch, n,
                                                                                                n_sim, per_call):
    # as many replicates as fit in 20000 simulated subjects: floor(20000 / n). For n = 6667 and n = 339, divisors of
    # 20001 = 3 x 59 x 113, one more replicate makes exactly 20001 subjects (3 x 6667, 59 x 339), one past the bound:
    # 2 and 58 replicates a call (a test double of the problem with n subjects stops the NPDE at its first call)
    # (npde _65: 20001 // n, 3 and 59 replicates, 20001 subjects in one call)
    import types

    import pkpd.estimation.population_checks as checks

    assert per_call * n <= 20000 < (per_call + 1) * n == 20001
    prob = _ManySubjects(n)
    layout = types.SimpleNamespace(x0=np.zeros(0), subject_theta=lambda x0, theta: theta, outputs=["C"])
    model = types.SimpleNamespace(parameter_names=["a"])
    monkeypatch.setattr(checks, "_setup", lambda *args: (model, None, {"C": None}, layout, prob))
    fit = types.SimpleNamespace(iiv=None, error=None, theta={"a": 1.0}, covariate_effects=None, iov=None,
                                n_subjects=n, n_obs=n, table=range(n), omega=np.eye(1))
    with pytest.raises(_ManySubjects.Stop):
        npde(fit, None, None, n_sim=n_sim, seed=1)
    assert prob.calls == [(per_call, n)]


class _TwoOutputsOneSubject:
    """One subject of four records, outputs 0, 1, 0, 1, every prediction 5, observed at 5 + sd z (the sd of each
    record's own output); nothing censored."""

    n, J, q = 1, 4, 1
    which = np.array([[0, 1, 0, 1]])
    mask = np.ones((1, 4), dtype=bool)
    cens = np.zeros((1, 4), dtype=bool)
    limit = np.full((1, 4), -np.inf)

    def __init__(self, z, sds):
        self.y = 5.0 + np.array(sds)[self.which] * np.array(z)[None]
        self.data = type("Data", (), {"ids": (1,)})()

    def params(self, theta, eta):
        return eta

    def predict(self, P):
        return np.full((P.shape[0], 1, 4), 5.0)


def test_the_npde_simulate_each_observation_with_the_error_of_its_own_output(monkeypatch):
    # output A with an additive sd of 0.01, output B with 3, one prediction 5 everywhere; observations z sds of their
    # own output away from it: the simulations of each record are N(5, sd^2), independent, so the PDE is Phi(z) and
    # the NPDE is z, within 0.3 (4000 simulations; a test double of the problem) (npde _114: sel = None, every record
    # simulated with the last output's error, sd 3: the A records' NPDE near 0.01 z / 3 = 0)
    import types

    import pkpd.estimation.population_checks as checks

    z, sds = [1.5, -1.2, -1.5, 1.0], [0.01, 3.0]
    prob = _TwoOutputsOneSubject(z, sds)
    layout = types.SimpleNamespace(x0=np.zeros(0), subject_theta=lambda x0, theta: theta, outputs=["A", "B"])
    model = types.SimpleNamespace(parameter_names=["a"])
    error = {"A": pkpd.Additive(sd=sds[0]), "B": pkpd.Additive(sd=sds[1])}
    monkeypatch.setattr(checks, "_setup", lambda *args: (model, None, error, layout, prob))
    fit = types.SimpleNamespace(iiv=None, error=error, theta={"a": 1.0}, covariate_effects=None, iov=None,
                                n_subjects=1, n_obs=4, table=pd.DataFrame({"ID": [1] * 4, "DV": prob.y[0]}),
                                omega=np.eye(1))
    table = npde(fit, None, None, n_sim=4000, seed=3)
    np.testing.assert_allclose(table["PDE"].to_numpy(), norm.cdf(z), rtol=0, atol=0.03)
    np.testing.assert_allclose(table["NPDE"].to_numpy(), z, rtol=0, atol=0.3)


# ====================================================================================================== seed 34
def test_a_vpc_bins_the_percentiles_the_user_asks_for(wang_fit):
    # percentiles=(25, 75): the observed rows are numpy's 25th and 75th percentiles of the DV of each bin, computed
    # here from the CSV (Wang 2007: times 0 and 1 h, one bin each), one (lower, median, upper) interval per asked
    # percentile, and at t = 0 (prediction 10 whatever ke, additive sd 0.3) the median simulated percentiles are near
    # the normal quantiles 10 -+ 0.6745 x 0.3 (vpc _154: percentiles= not handed to vpc_summary, so the default
    # 5, 50, 95 were binned under the label (25, 75): three rows of other values)
    v = vpc(wang_fit, "wang2007", WANG, n_replicates=20, n_bins=2, seed=1, percentiles=(25, 75))
    data = pd.read_csv(WANG)
    expected = np.array([np.percentile(data["DV"][data["TIME"] == t], (25, 75)) for t in (0, 1)]).T
    assert v.percentiles == (25, 75)
    np.testing.assert_allclose(v.observed, expected, rtol=1e-12)
    assert v.simulated.shape == (2, 3, 2)
    np.testing.assert_allclose(v.simulated[:, 1, 0], 10 + 0.3 * norm.ppf([0.25, 0.75]), rtol=0, atol=0.15)


@pytest.mark.parametrize(("blq", "name"), [(pkpd.M1(), "M1"), ("M3", "str")])
def test_the_npde_refuse_a_blq_that_is_not_m3(wang_fit, blq, name):
    # "blq : M3, optional - as in the fit": a fit_population fit supports M3 or None only, so the NPDE refuse Beal's
    # M1 (which would drop the censored observations) and a name for M3, with the whole message of fit_population's
    # refusal (npde _10: blq=None handed to _setup, so any blq= was accepted and silently ignored)
    with pytest.raises(pkpd.FitError) as err:
        npde(wang_fit, "wang2007", WANG, n_sim=20, seed=1, blq=blq)
    assert str(err.value) == f"blq: fit_population supports M3 (or None); got {name}"


def test_the_data_mark_the_censored_observations_of_the_npde_with_or_without_blq():
    # "blq : M3, optional - as in the fit: M3 or None, the same NPDE either way ... the data mark the censored
    # observations": Wang 2007 with an LLOQ column of 6 (the 1 h values 3.68, 5.86 and 5.62 below it): CENS marks
    # exactly the DV < 6, and the NPDE with blq=M3() equal those without it, bit for bit (the docstring said blq=
    # marks the censored observations; it marks none. This test pins the corrected docstring and kills no mutant: it
    # passes with npde _10 applied too, whose only effect is the refusal the test above checks)
    data = pd.read_csv(WANG).assign(LLOQ=6.0)
    fit = pkpd.fit_population("wang2007", data, iiv={"ke": 0.04}, error=pkpd.Additive(sd=0.3), method="laplace",
                              maxeval=0)
    with_m3 = npde(fit, "wang2007", data, n_sim=40, seed=1, blq=pkpd.M3())
    without = npde(fit, "wang2007", data, n_sim=40, seed=1)
    np.testing.assert_array_equal(with_m3["CENS"].to_numpy() == 1, data["DV"].to_numpy() < 6.0)
    assert (data["DV"] < 6.0).sum() == 3
    pd.testing.assert_frame_equal(with_m3, without)


# ====================================================================================================== seed 36
def test_a_simulation_at_the_limit_is_not_below_it_in_the_imputation_of_a_censored_observation():
    # the data censor a DV strictly below its LLOQ (DV < LLOQ; a DV at the limit is quantified), and p_LOQ is "the
    # fraction of its (decorrelated) simulations below the (decorrelated) LLOQ": one censored observation, mean 0,
    # L = [[1]], the LLOQ 0, and 1000 simulations of which 100 are below it (-3 ... -1), 300 exactly at it and 600
    # above it (1 ... 3): p_LOQ = 100/1000 = 0.1, so the pd is drawn uniformly in (0, 0.1) and every imputed value is
    # a quantile of the simulations below 0.1, strictly below the limit (at most -1 + 0.9 = -0.1, np.quantile
    # interpolating between the 100th value -1 and the 101st 0), its mean about that of the 100 values below, -2, and
    # its pd (the fraction of the simulations below it, as npde counts) uniform in (0, 0.1), mean about 0.05
    # (_impute_censored _12: `<=` for `<`, the 300 at the limit counted too: p_LOQ 0.4, three draws in four at the
    # limit 0, whose pd is 0.1)
    from pkpd.estimation.population_checks import _impute_censored

    K = 1000
    sim = np.concatenate([np.linspace(-3.0, -1.0, 100), np.zeros(300), np.linspace(1.0, 3.0, 600)])[:, None]
    rng = np.random.default_rng(36)
    out = np.array([_impute_censored(np.array([-5.0]), np.array([True]), np.array([0.0]), np.zeros(1), np.eye(1),
                                     sim, rng, 1 / (2 * K))[0] for _ in range(200)])
    assert np.all(out <= -0.1 + 1e-12) and np.all(out >= -3.0)
    assert -2.1 < out.mean() < -1.9
    pd_ = np.mean(sim < out[None, :], axis=0)
    assert np.all(pd_ <= 0.1) and 0.04 < pd_.mean() < 0.06


# ====================================================================================================== seed 38
def test_a_vpc_has_8_bins_of_observation_time_by_default():
    # the default n_bins = 8 of vpc's signature: pk_1cmt_iv, 4 subjects of 100 mg at 0 h observed at 1, 2, ..., 17 h
    # (17 distinct times, each 4 times): the quantile edges at k/8 fall on positions 16 k/8 = 2k of the sorted
    # distinct times, so they are 1, 3, 5, ..., 17 exactly, the bins [1, 3), ..., [13, 15) hold two times each
    # (median 1.5, ..., 13.5) and the last [15, 17] three (median 16); each bin's observed median is numpy's median
    # of its DV, computed here, and the VPC equals the one of n_bins=8 given explicitly (vpc _2: the default 9, edges
    # 1 + 16 k/9 and 9 bins - every earlier test passed n_bins)
    cl, v = 2.8, 32.0
    times = np.arange(1.0, 18.0)
    rows = []
    for i in range(1, 5):
        rows.append(dict(ID=i, TIME=0.0, DV=".", AMT=100.0, AMTU="mg", EVID=1, CMT=1, MDV=1))
        scale = 1.0 + 0.05 * (i - 2.5)
        rows += [dict(ID=i, TIME=t, DV=scale * 100 / v * np.exp(-cl / v * t), AMT=0, EVID=0, CMT=1, MDV=0)
                 for t in times]
    data = pd.DataFrame(rows)
    fit = pkpd.fit_population("pk_1cmt_iv", data, iiv={"CL": 0.04}, error=pkpd.Proportional(cv=0.1),
                              init={"CL": cl, "V": v}, maxeval=0, covariance=None)
    res = vpc(fit, "pk_1cmt_iv", data, n_replicates=20, seed=2)
    np.testing.assert_array_equal(res.bins, np.arange(1.0, 18.0, 2.0))
    np.testing.assert_array_equal(res.centres, [1.5, 3.5, 5.5, 7.5, 9.5, 11.5, 13.5, 16.0])
    obs = data[data["EVID"] == 0]
    t_obs, dv = obs["TIME"].to_numpy(float), obs["DV"].to_numpy(float)
    bounds = [(1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 17)]
    np.testing.assert_allclose(res.observed[1], [np.median(dv[(t_obs >= a) & (t_obs <= b)]) for a, b in bounds],
                               rtol=1e-12)
    explicit = vpc(fit, "pk_1cmt_iv", data, n_replicates=20, n_bins=8, seed=2)
    np.testing.assert_array_equal(res.simulated, explicit.simulated)
    np.testing.assert_array_equal(res.blq_simulated, explicit.blq_simulated)


def test_the_npde_silence_an_overflow_in_the_predictions_of_their_simulations(wang_fit, monkeypatch):
    # _Problem.predict of Wang 2007 wrapped (a test double, as in the seed-30 test of the pcVPC) so that it computes a
    # capped term min(1, exp(1000)) outside the problem's own np.errstate guards: exp overflows to inf (numpy's default
    # error state warns "overflow encountered in exp"), the cap gives 1, the predictions are unchanged. npde simulates
    # with floating-point warnings silenced (a prediction that is not finite is refused by its own check): no
    # warning, and the NPDE table equals the one without the term (npde _98: np.errstate(all=None) left the caller's
    # error state in force, the overflow warned; under tests/conftest.py's over="raise" a FloatingPointError). Every
    # real model's arithmetic is already guarded inside _Problem (build_q, the initial states, the events, run_batch,
    # simulate_rows); this pins npde's own guard should one of those go
    import warnings

    plain = npde(wang_fit, "wang2007", WANG, n_sim=40, seed=3)
    _predictions_that_overflow_on_the_way(monkeypatch)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        table = npde(wang_fit, "wang2007", WANG, n_sim=40, seed=3)
    pd.testing.assert_frame_equal(table, plain)


def _predictions_that_overflow_on_the_way(monkeypatch):
    """_Problem.predict times min(1, exp(1000)): the same predictions, with an overflow outside pkpd's own guards."""
    from pkpd.estimation import finite_difference

    real = finite_difference._Problem.predict

    def capped(self, P):
        F = real(self, P)
        return F * np.minimum(1.0, np.exp(np.full(F.shape, 1000.0)))

    monkeypatch.setattr(finite_difference._Problem, "predict", capped)


# ====================================================================================================== seed 39
@pytest.mark.parametrize("n", [0, -1, 1.5, True, "200"])
def test_a_vpc_refuses_a_number_of_replicates_that_is_not_a_positive_integer(wang_fit, n):
    # a defect found while judging seed 39's survivors (none of which it kills): vpc did not check n_replicates, so
    # 0 failed inside NumPy ("need at least one array to stack"; "... to concatenate" with a client), -1 with
    # OverflowError "can't convert negative value to uint32_t", and 1.5, True and "200" ran int(n) replicates
    # without a word (1, 1 and 200). Now each is refused with the whole message, as the VPC's n_bins is
    with pytest.raises(pkpd.FitError) as err:
        vpc(wang_fit, "wang2007", WANG, n_replicates=n, n_bins=2, seed=1)
    assert str(err.value) == f"vpc: n_replicates must be a positive integer; got {n!r}"
    with pytest.raises(pkpd.FitError) as err:
        vpc(wang_fit, "wang2007", WANG, n_replicates=n, n_bins=2, seed=1, client=object(), progress=False)
    assert str(err.value) == f"vpc: n_replicates must be a positive integer; got {n!r}"


def test_a_vpc_of_one_replicate_or_a_numpy_integer_of_replicates_is_accepted(wang_fit):
    # the smallest valid n_replicates, 1: every simulated percentile's 90 % interval is that one replicate's value
    # (lower = median = upper); and a NumPy integer counts as the integer it holds (the same VPC, bit for bit)
    one = vpc(wang_fit, "wang2007", WANG, n_replicates=1, n_bins=2, seed=1)
    assert one.simulated.shape == (3, 3, 2)
    np.testing.assert_array_equal(one.simulated[:, 0], one.simulated[:, 1])
    np.testing.assert_array_equal(one.simulated[:, 2], one.simulated[:, 1])
    plain = vpc(wang_fit, "wang2007", WANG, n_replicates=7, n_bins=2, seed=1)
    numpy_int = vpc(wang_fit, "wang2007", WANG, n_replicates=np.int64(7), n_bins=2, seed=1)
    np.testing.assert_array_equal(numpy_int.simulated, plain.simulated)


# ====================================================================================================== seed 43
def test_a_vpc_of_a_dataset_read_with_read_nonmem_stratifies_like_the_vpc_of_its_table():
    """Guards vpc (seed 43's survivor _177: `_read(model, data)` -> `_read(None, data)` for the stratification
    column, which checked a NonmemDataset's dose targets against no model and failed with AttributeError "'NoneType'
    object has no attribute 'doses'").

    pk_1cmt_iv, 4 subjects dosed at 0 h (100 mg for subjects 1-2, dose group DOSE "low"; 200 mg for 3-4, "high"), DV
    at 4 and 12 h; the data given as the NonmemDataset read_nonmem(data, model) returns, stratified by DOSE, one bin.
    The data are the same as the DataFrame's, so the VPC is the DataFrame's, bit for bit (an exact equivalence), and
    each stratum's observed 5th, 50th and 95th percentiles are those of its own DV (numpy's linear interpolation, by
    hand): "low" of 1, 1.5, 2, 3: 1 + 0.15 * 0.5 = 1.075, (1.5 + 2) / 2 = 1.75, 2 + 0.85 * 1 = 2.85; "high" of 2.5,
    3.5, 5, 6: 2.5 + 0.15 = 2.65, 4.25, 5 + 0.85 = 5.85.
    """
    from pkpd.nonmem import read_nonmem

    rows = []
    for i, (c4, c12) in {1: (2.0, 1.0), 2: (3.0, 1.5), 3: (6.0, 2.5), 4: (5.0, 3.5)}.items():
        amt, group = (100.0, "low") if i <= 2 else (200.0, "high")
        rows.append(dict(ID=i, TIME=0.0, DV=".", AMT=amt, AMTU="mg", EVID=1, CMT=1, MDV=1, DOSE=group))
        rows.append(dict(ID=i, TIME=4.0, DV=c4, AMT=0, EVID=0, CMT=1, MDV=0, DOSE=group))
        rows.append(dict(ID=i, TIME=12.0, DV=c12, AMT=0, EVID=0, CMT=1, MDV=0, DOSE=group))
    data = pd.DataFrame(rows)
    model = pkpd.load_model("pk_1cmt_iv")
    fit = pkpd.fit_population(model, data, iiv={"CL": 0.09}, error=pkpd.Additive(sd=0.1), maxeval=0,
                              covariance=None)
    res = vpc(fit, model, read_nonmem(data, model), n_replicates=5, n_bins=1, seed=1, stratify="DOSE")
    ref = vpc(fit, model, data, n_replicates=5, n_bins=1, seed=1, stratify="DOSE")
    assert sorted(res.strata) == ["high", "low"]
    for level, expected in (("low", [1.075, 1.75, 2.85]), ("high", [2.65, 4.25, 5.85])):
        np.testing.assert_allclose(res[level].observed[:, 0], expected, rtol=1e-12)
        np.testing.assert_array_equal(res[level].observed, ref[level].observed)
        np.testing.assert_array_equal(res[level].simulated, ref[level].simulated)


# ====================================================================================================== seed 44
@pytest.mark.parametrize(("blq", "name"), [(pkpd.M1(), "M1"), ("M3", "str")])
def test_a_vpc_refuses_a_blq_that_is_not_m3(wang_fit, blq, name):
    """Guards vpc (seed 44's survivor _17: `blq` -> `None` handed to `_setup`, so any blq= was accepted and silently
    ignored).

    A fit_population fit supports M3 or None only, so a VPC of it refuses Beal's M1 (which would drop the censored
    observations) and a name for M3, with the whole message of fit_population's refusal, "blq: fit_population
    supports M3 (or None); got M1" / "got str" (the message written out by hand, as the npde test of seed 34); and
    blq=M3() is accepted: the data mark the censored observations, so the VPC with it equals the VPC without it.
    """
    with pytest.raises(pkpd.FitError) as err:
        vpc(wang_fit, "wang2007", WANG, n_replicates=2, n_bins=1, seed=1, blq=blq)
    assert str(err.value) == f"blq: fit_population supports M3 (or None); got {name}"
    with_m3 = vpc(wang_fit, "wang2007", WANG, n_replicates=2, n_bins=1, seed=1, blq=pkpd.M3())
    without = vpc(wang_fit, "wang2007", WANG, n_replicates=2, n_bins=1, seed=1)
    np.testing.assert_array_equal(with_m3.simulated, without.simulated)
    np.testing.assert_array_equal(with_m3.observed, without.observed)


# ====================================================================================================== seed 45
def test_a_pde_above_all_simulations_is_clipped_to_one_less_one_over_twice_n_sim():
    """Guards npde (seed 45's survivor _138: the upper clip `1 - 1/(2K)` -> `1 - 2/(2K)`, so a PDE above all the
    simulations became 1 - 1/K, 0.96 for K = 25, and its NPDE 1.751 instead of 2.054).

    Wang 2007 with subject 1's observation at 1 h set to +50 (additive sd 0.3, observations of at most 10.7: far
    above every simulation, decorrelated too): every one of the K = 25 simulations is below it, the fraction is 1,
    and the PDE is the documented upper clip 1 - 1/(2K) = 49/50 = 0.98, its NPDE the normal quantile of 0.98, 2.054
    (scipy's norm.ppf), the mirror of the lower clip of seed 26 (-50 gives 1/50 and -2.054).
    """
    data = pd.read_csv(WANG)
    data.loc[(data["ID"] == 1) & (data["TIME"] == 1), "DV"] = 50.0
    fit = pkpd.fit_population("wang2007", data, iiv={"ke": 0.04}, error=pkpd.Additive(sd=0.3), maxeval=0)
    K = 25
    table = npde(fit, "wang2007", data, n_sim=K, seed=2)
    row = (table["ID"].astype(int) == 1).to_numpy() & np.isclose(table["TIME"].to_numpy(float), 1.0)
    assert row.sum() == 1
    assert table["PDE"].to_numpy()[row][0] == pytest.approx(49 / 50, rel=1e-12)
    assert table["NPDE"].to_numpy()[row][0] == pytest.approx(norm.ppf(0.98), rel=1e-9)
    assert table["NPDE"].to_numpy()[row][0] == pytest.approx(-norm.ppf(1 / 50), rel=1e-9)
