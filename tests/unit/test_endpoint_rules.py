"""Rules of pkpd.endpoints and pkpd.outcomes that the first mutation sample of the ``endpoints`` group left unguarded.

They come from the seed-25 sample (``benchmarks/mutation.py endpoints --sample 40 --seed 25``,
``benchmarks/results/mutation/endpoints-seed25.json``; issue 20): each test was seen to fail with its survivor
applied by hand. Answers are independent of the code under test: scipy.stats log-pmfs and central differences of
them, the documented limit on the number of ordinal categories, NONMEM's codes for a modelled rate or duration
(RATE = -1 / -2), a regimen in days read back through :mod:`pkpd.nonmem`, the rule that a subject whose solve failed
gets no outcome record, and messages compared whole. Kept fast: it runs in the mutation audit of the group.
Section "seed 37" (the thirteenth sample): an ordinal intercept that is not valid text is refused naming the key
``intercepts``, and binary draws read probabilities given as numeric text as numbers (U < p, the inverse CDF).
Section "seed 38" (the fourteenth sample): an end of follow-up that is not a number, ordinal categories that are not
a list, refused with their whole messages, and the NONMEM layout's AMT and RATE in the dose target's unit (1 g =
1000 mg = 1e6 ug).
Section "seed 39" (the fifteenth sample): a hazard that is not a rate refused with its whole message, an event drawn
at E = 0 where the cumulative hazard is still 0, the Newton search bisecting when a step lands on the lower bound
(H = sqrt(t), root E^2), and ordinal category indices given as whole floats (the closed-form probabilities).
Section "seed 40" (the sixteenth sample): a count whose expected value is 0, degenerate at 0 (log-pmf 0 and -inf,
as scipy.stats.poisson(0)).
Section "seed 41" (the seventeenth sample): an event where the cumulative hazard wiggles by roundoff (falls the grid
check allows) falls within the follow-up, where H equals the draw up to the roundoff allowance.
Section "seed 42" (the eighteenth sample): the NONMEM layout of doses into two targets of different units states
AMTU "target" and reads back as the same doses, and time-to-event and binary records read event flags and DV given
as numeric text as numbers (math's closed forms).
Section "seed 43" (the nineteenth sample): a count rate whose conversion factor to 1/h no double holds (about 1e327
or 1e-441) refused naming the file and saying why, and ordinal logits that increase in one row make only that row
NaN (the closed-form probabilities of the others).
Section "seed 44" (the twentieth sample): a count's expected value negative by at most the roundoff allowance
(down to -1e-12 included) drawn as a count of mean 0, one ulp beyond refused with its whole message.
Section "seed 45" (the twenty-first sample): ordinal categories with a tie (two equal codes) refused with the whole
message, the categories being strictly increasing.
Section "seed 46" (the twenty-second sample): a count drawn for a scalar mean (a numpy float, as a binary draw), a
small constant hazard's events at the inverse cumulative hazard E / lam, and covariates given as ints written to the
NONMEM layout as the float numbers they are.
Section "seed 47" (the twenty-third sample): outcomes given as ints written to the NONMEM layout as the float
numbers they are (DV float64), with no dose record as with one.
Section "seed 48" (the twenty-fourth sample): dropout times under and at one time unit (0.5 and 1 h) are dropouts,
each subject censored at its own.
Section "seed 49" (the twenty-fifth sample): the Newton search bisecting when a step lands on the upper bound
(H = 1 - sqrt(1 - t), root 1 - (1 - E)^2), an ordinal effect with a unit refused with its whole message, and ordinal
logits given as numeric text read as numbers (the closed-form probabilities and gradient).
Section "seed 50" (the twenty-sixth sample): an event whose grid point already meets the location tolerance located
within it (a cumulative hazard that wiggles by roundoff), and the ordinal gradient 0 for an infinite upper logit (the
closed-form limit); defect fixed: a model whose parameter bounds are given as lists is the model with tuples (hashable)
and simulates (the closed-form concentration).
Section "seed 51" (the twenty-seventh sample): a negative-binomial dispersion given as numeric text or objects read as
a number (scipy's nbinom), a hazard so small that the whole follow-up meets the stopping rule putting events at E / lam
inside the follow-up, and assessment times given as integers recorded as the float times they are.
Section "seed 52" (the twenty-eighth sample): a count mean with an unknown name or bad syntax, and a dimensionless
count mean whose conversion factor no double holds (1e-360), refused naming the key ``mean``; an event where the
cumulative hazard jumps located by bisection to the stopping width (within 5e-14 of the jump); and skip flags
given as integers read as the flags they are.
Section "seed 53" (the twenty-ninth sample): the outcome draws solve only the outputs they read (21 of the engine
model, not its 7 states), so a memory limit that holds those outputs does not refuse them.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from pandas import testing as pd_testing
from scipy import stats

import pkpd
from pkpd import endpoints as ep
from pkpd.dosing import Bolus, Dose, Infusion, Regimen
from pkpd.errors import ModelFileError, UnitError
from pkpd.model import DoseTarget
from pkpd.nonmem import read_nonmem

MODEL_FILE = Path(__file__).resolve().parents[1] / "data" / "models" / "endpoints_exposure.toml"
M = pkpd.load_model(MODEL_FILE)   # time unit h; dose target "iv" (mg) into A; endpoints event, resp, grade, ...


def _central(f, x, h=1e-6):
    return (f(x + h) - f(x - h)) / (2 * h)


# ============================================================================================ endpoints: likelihoods
def test_count_score_with_respect_to_the_mean_is_the_derivative_of_the_scipy_log_pmf_zero_counts_included():
    """d/dmu log Poisson(y; mu) = y/mu - 1: -1 for y = 0 (kills count_log_likelihood__mutmut_47, which gave 0 there);
    the negative binomial's d/dmu and d/dalpha at y = 0 and y > 0 as central differences of scipy's nbinom."""
    y = np.array([0.0, 0.0, 1.0, 4.0])
    mu = np.array([0.3, 2.5, 0.7, 2.5])
    _, g_mu, g_a = ep.count_log_likelihood(y, mu, gradient=True)
    np.testing.assert_allclose(g_mu, _central(lambda m: stats.poisson.logpmf(y, m), mu), rtol=1e-6)
    np.testing.assert_allclose(g_mu[:2], [-1.0, -1.0], rtol=1e-12)
    assert np.all(g_a == 0.0)
    a = np.array([0.5, 2.0, 0.5, 0.8])

    def nb(m, alpha):
        return stats.nbinom.logpmf(y, 1.0 / alpha, 1.0 / (1.0 + alpha * m))

    _, g_mu, g_a = ep.count_log_likelihood(y, mu, a, gradient=True)
    np.testing.assert_allclose(g_mu, _central(lambda m: nb(m, a), mu), rtol=1e-6)
    np.testing.assert_allclose(g_a, _central(lambda alpha: nb(mu, alpha), a), rtol=1e-5)


def test_ordinal_draws_are_the_dv_codes_as_floats_even_for_integer_codes():
    """Logits of +-50 make the draw certain (P = 1 - 2e-22): category codes given as Python ints come back as the
    float DV codes of the documented example (kills draw_ordinal__mutmut_34: an int array without dtype=float)."""
    logits = [[50.0, -50.0], [50.0, 49.0], [-50.0, -51.0]]          # categories 1, 2 and 0 (index)
    got = ep.draw_ordinal(logits, [1, 2, 5], np.random.default_rng(0))
    assert got.dtype == np.float64 and got.tolist() == [2.0, 5.0, 1.0]
    got = ep.draw_ordinal([[50.0, -50.0]], (0, 1, 2), np.random.default_rng(0))
    assert got.dtype == np.float64 and got.tolist() == [1.0]


# ============================================================================================ endpoints: declarations
def _ordinal(n: int):
    cats = tuple(range(n))
    ints = tuple(str(24.0 - i) for i in range(n - 1))
    return dataclasses.replace(M, outputs=(pkpd.Output("score", type="ordinal", categories=cats, intercepts=ints),))


def test_an_ordinal_output_takes_up_to_max_categories_and_refuses_one_more():
    """The documented limit, 2 to MAX_CATEGORIES (50) categories: 50 accepted (49 cumulative logits), 51 refused
    with the whole message (kills check_fields__mutmut_104, ``len(values) < MAX_CATEGORIES``: 50 refused)."""
    assert ep.MAX_CATEGORIES == 50
    spec = ep.endpoint_specs(_ordinal(50))[0]
    assert spec.categories == tuple(float(c) for c in range(50)) and len(spec.logits) == 49
    assert len(ep.endpoint_specs(_ordinal(2))[0].logits) == 1
    with pytest.raises(ModelFileError) as info:
        _ordinal(51)
    assert str(info.value) == (f"{MODEL_FILE} [outputs.score] categories: an ordinal output needs 2 to 50 "
                               "categories; got 51")


def test_a_probability_with_a_unit_is_refused_with_the_whole_message_naming_its_place_once():
    """A binary output whose probability is a volume (V, L): the rule, then the unit check's message, the location
    once (kills check_trees__mutmut_90, the rule's text changed; the location was printed twice before, fixed)."""
    with pytest.raises(UnitError) as info:
        dataclasses.replace(M, outputs=(pkpd.Output("resp2", type="binary", probability="V"),))
    assert str(info.value) == (f"{MODEL_FILE} [outputs.resp2] probability: a probability is dimensionless: "
                               "expression 'V' has unit L but 1 is declared (dimensions [length] ** 3 vs none)")
    assert (info.value.section, info.value.key) == ("outputs.resp2", "probability")


# ============================================================================================ outcomes
def test_subjects_whose_solve_failed_get_no_event_records_even_when_every_subject_failed():
    """``on_failure="mark"`` and a step budget of 1: every subject fails, so no subject gets a time-to-event (or a
    binary) record: an empty table with the documented columns, no error (kills _draw_events__mutmut_14,
    ``np.zeros(None)``: a TypeError when no subject is at risk)."""
    settings = pkpd.SolverSettings(max_steps=1, on_failure="mark")
    sim = pkpd.simulate(M, Regimen.single(Dose(40, "mg")), [0.0, 100.0], params={"h0": np.full(3, 0.01)},
                        settings=settings, seed=1, outcomes=["event", "resp"])
    assert np.all(sim.status != 0)
    o = sim.outcomes
    assert list(o.columns) == ["ID", "TIME", "output", "DV"] and len(o) == 0
    assert o["TIME"].dtype == np.float64 and o["DV"].dtype == np.float64


def test_default_assessments_start_at_time_0_as_given_ones_must():
    """Simulated times before t = 0 (a baseline period) are not default assessment times: assessments, like the
    risk of an event and the first interval of a count, start at t = 0 (`observe` refuses earlier times). A rate
    count simulated over [-24, 0, 24] gave "the expected count is negative" (its first interval ran from 0 back to
    -24). The records equal those of the same simulation from t = 0 with the same seed, and the count at t = 0 is
    that of an empty interval, 0."""
    m = dataclasses.replace(M, outputs=tuple(o for o in M.outputs if o.name != "weibull"))  # NaN hazard at t < 0
    reg = Regimen.single(Dose(40, "mg"))
    outputs = ["resp", "grade", "flares"]
    params = {"k": np.array([0.1, 0.2, 0.3])}
    early = pkpd.simulate(m, reg, [-24.0, 0.0, 24.0], params=params, seed=4, outcomes=outputs).outcomes
    late = pkpd.simulate(m, reg, [0.0, 24.0], params=params, seed=4, outcomes=outputs).outcomes
    assert sorted(set(early["TIME"])) == [0.0, 24.0]
    pd_testing.assert_frame_equal(early, late)
    assert early.loc[(early["output"] == "flares") & (early["TIME"] == 0.0), "DV"].tolist() == [0.0, 0.0, 0.0]


def test_nonmem_layout_of_a_regimen_in_days_is_in_the_model_time_unit_and_reads_back_as_the_regimen():
    """A model in hours, doses at days 1, 2, 3 (a bolus; 0.25 day; 48 mg/day): TIME 24, 48, 72 h, DUR 6 h, RATE
    2 mg/h, the assessments at 30 and 80 h between them, and read_nonmem gives back the regimen in hours (kills
    nonmem_table__mutmut_40, dose TIME divided by the conversion factor)."""
    reg = Regimen([Bolus(1, Dose(40, "mg"), "iv"), Infusion(2, Dose(10, "mg"), duration=0.25, target="iv"),
                   Infusion(3, Dose(12, "mg"), rate=48, target="iv")], "day")
    sim = pkpd.simulate(M, reg, [0.0, 100.0], seed=1, outcomes=["resp"], observe={"resp": [30.0, 80.0]})
    df = sim.to_dataframe(layout="nonmem")
    assert df["TIME"].tolist() == [24.0, 30.0, 48.0, 72.0, 80.0] and df["EVID"].tolist() == [1, 0, 1, 1, 0]
    doses = df[df["EVID"] == 1]
    assert doses["DUR"].tolist() == [0.0, 6.0, 0.0] and doses["RATE"].tolist() == [0.0, 0.0, 2.0]
    assert read_nonmem(df, M).to_regimens(M)[1] == reg.in_time_unit("h")


@pytest.mark.parametrize(("kind", "expression", "code"), [("rate", "A50 * k", -1.0), ("duration", "scale / 25", -2.0)])
def test_nonmem_layout_writes_a_modelled_rate_or_duration_as_rate_minus_one_or_minus_two(kind, expression, code):
    """NONMEM's codes: RATE = -1 (the model sets the rate), -2 (it sets the duration), no DUR column, and the
    records read back as the modelled infusion (kills nonmem_table__mutmut_74, the "duration" test misspelt: the
    modelled duration was taken for a given one)."""
    m = dataclasses.replace(M, doses=(DoseTarget("iv", "A", "mg", **{kind: expression}),))
    reg = Regimen([Infusion(0, Dose(40, "mg"), modelled=kind, target="iv")])
    sim = pkpd.simulate(m, reg, [0.0, 10.0], seed=1, outcomes=["resp"], observe={"resp": [5.0]})
    df = sim.to_dataframe(layout="nonmem")
    assert list(df.columns) == ["ID", "TIME", "EVID", "MDV", "AMT", "AMTU", "CMT", "RATE", "DV", "DVID", "X"]
    assert df["RATE"].tolist() == [code, 0.0] and df["EVID"].tolist() == [1, 0]
    assert read_nonmem(df, m).to_regimens(m)[1] == reg


# ============================================================================================ seed 26
# From the second sample (``benchmarks/mutation.py endpoints --sample 40 --seed 26``,
# ``benchmarks/results/mutation/endpoints-seed26.json``): each test seen to fail with its survivor applied by hand.
def test_interval_censoring_flags_given_as_floats_read_as_booleans():
    """A CENS column read from a table is float: 1.0 marks an interval-censored event, log(1 - exp(-dH)); 0.0 an
    exact event, log h - dH (closed forms; kills tte_log_likelihood__mutmut_29, no dtype=bool: a TypeError)."""
    dH, h = np.array([0.2, 0.2, 0.3]), np.array([0.5, 0.5, 0.5])
    got = ep.tte_log_likelihood([1.0, 1.0, 0.0], dH, h, np.array([1.0, 0.0, 1.0]))
    np.testing.assert_allclose(got, [np.log(1.0 - np.exp(-0.2)), np.log(0.5) - 0.2, -0.3], rtol=1e-12)


def test_an_expression_key_on_an_endpoint_output_is_refused_with_the_whole_message():
    """The key ``expression`` belongs to continuous outputs (kills check_fields__mutmut_27: the message lost
    "(type 'continuous')")."""
    with pytest.raises(ModelFileError) as info:
        dataclasses.replace(M, outputs=(pkpd.Output("r", type="binary", probability="0.5", expression="A"),))
    assert str(info.value) == (f"{MODEL_FILE} [outputs.r] expression: key 'expression' applies to continuous outputs "
                               "(type 'continuous') only; this output has type 'binary'")


@pytest.mark.parametrize("when", [[1.0, np.inf], [np.nan], []])
def test_assessment_times_must_be_finite_and_given(when):
    """observe: increasing, finite times >= 0; an infinite or NaN time, or none, is refused with the whole message
    (kills _check_options__mutmut_22, ``size == 0 and not finite``: inf and NaN accepted, [] an IndexError)."""
    with pytest.raises(pkpd.PkpdError) as info:
        pkpd.simulate(M, Regimen.single(Dose(40, "mg")), [0.0, 10.0], seed=1, outcomes=["resp"],
                      observe={"resp": when})
    assert str(info.value) == ("observe['resp']: give increasing, finite assessment times >= 0 [model time unit]; "
                               f"got {when!r:.80}")


def test_a_negative_hazard_is_refused_naming_the_subject():
    """A hazard must be >= 0: a SimulationError naming the output and the subject (kills _draw_events__mutmut_77,
    ``np.diff(None)`` in the search for the subject: another exception)."""
    m = dataclasses.replace(M, outputs=(pkpd.Output("ev", type="time-to-event", hazard="-h0"),))
    with pytest.raises(pkpd.SimulationError) as info:
        pkpd.simulate(m, Regimen.single(Dose(40, "mg")), [0.0, 100.0], seed=1, outcomes=["ev"])
    assert str(info.value) == ("subject 1: output 'ev': the hazard is negative (the cumulative hazard decreases); a "
                               "hazard must be >= 0")


def test_event_times_count_the_risk_from_time_zero_when_the_simulation_starts_before_it():
    """Every risk starts at t = 0: a constant hazard h0 = 0.02/h simulated from t = -50 h (H(0) = 1 already) gives
    the event times of a simulation from t = 0, E_k / h0 for the seed's standard exponentials E_k (inverse
    cumulative hazard), the subject whose E / h0 > 100 h censored at 100 (kills _locate__mutmut_66, ``+ H0``: the
    times where H(t) - H(0) = E - 2 H(0))."""
    m = dataclasses.replace(M, outputs=tuple(o for o in M.outputs if o.name in ("conc", "event")))
    e = np.random.default_rng(3).standard_exponential(4) / 0.02
    assert e[3] > 100.0 > e[2]
    for times in ([0.0, 100.0], [-50.0, 0.0, 100.0]):
        sim = pkpd.simulate(m, Regimen([]), times, params={"h0": np.full(4, 0.02)}, seed=3, outcomes=["event"],
                            follow_up=100.0)
        o = sim.outcomes
        np.testing.assert_allclose(o["TIME"], [*e[:3], 100.0], rtol=1e-8)
        assert o["DV"].tolist() == [1.0, 1.0, 1.0, 0.0]


def test_a_solver_failure_while_drawing_events_is_a_simulation_error_naming_the_subject():
    """A step budget enough for the simulated times (0 to 0.01 h) but not for a follow-up of 1000 h: the solve that
    locates the event fails, a SimulationError naming the subject (kills _solve__mutmut_61, ``sol["XXstatusXX"]``:
    a KeyError)."""
    settings = pkpd.SolverSettings(max_steps=30)
    with pytest.raises(pkpd.SimulationError) as info:
        pkpd.simulate(M, Regimen.single(Dose(40, "mg")), [0.0, 0.01], seed=1, outcomes=["event"], follow_up=1000.0,
                      settings=settings)
    assert str(info.value) == "subject 1: drawing outcomes: the solver failed while locating an event time"


# ============================================================================================ seed 27
# From the third sample (``benchmarks/mutation.py endpoints --sample 40 --seed 27``,
# ``benchmarks/results/mutation/endpoints-seed27.json``): each test seen to fail with its survivor applied by hand.
@pytest.mark.parametrize(("kind", "keys"), [("binary", {"probability": "0.5"}), ("count", {"mean": "m0"})])
def test_categories_on_an_output_that_is_not_ordinal_are_refused_with_the_whole_message(kind, keys):
    """``categories`` belong to ordinal outputs: given to a binary or a count output they are refused, naming the
    key (kills check_fields__mutmut_19, ``value != ()`` in the exception for empty categories: any non-empty
    categories passed silently)."""
    with pytest.raises(ModelFileError) as info:
        dataclasses.replace(M, outputs=(pkpd.Output("r", type=kind, categories=(0, 1), **keys),))
    assert str(info.value) == (f"{MODEL_FILE} [outputs.r] categories: key 'categories' applies to ordinal outputs "
                               f"only; this output has type '{kind}'")
    assert (info.value.section, info.value.key) == ("outputs.r", "categories")


def test_ordinal_gradient_at_an_infinite_logit_is_its_limit_zero():
    """Logits (1, -inf): P(Y >= c_2) = 0. log P(Y = c_1) = log sigma(1) and log P(Y = c_0) = log sigma(-1); their
    derivatives d/da log(sigma(a) - sigma(b)) = sigma(-a) and d/db = -sigma(b) at a finite logit, and 0 at b = -inf
    (sigma'(b) -> 0) (kills ordinal_log_likelihood__mutmut_123: 1 at an infinite logit)."""
    s = 1.0 / (1.0 + np.exp(-1.0))                           # sigma(1)
    ll, grad = ep.ordinal_log_likelihood([1, 0], [[1.0, -np.inf]] * 2, gradient=True)
    np.testing.assert_allclose(ll, [np.log(s), np.log(1.0 - s)], rtol=1e-14)
    np.testing.assert_allclose(grad, [[1.0 - s, 0.0], [-s, 0.0]], rtol=1e-14, atol=0.0)


def test_negative_binomial_log_pmf_at_a_zero_mean_is_that_of_a_point_mass_at_zero():
    """A mean of 0 is allowed (mu >= 0): NB2 with mu = 0 puts all its mass on 0, log P = 0 for y = 0 and -inf for
    y > 0, as scipy.stats.nbinom(1/alpha, 1) (kills count_log_likelihood__mutmut_92, ``mu > 0``: NaN there)."""
    y, mu, a = np.array([0.0, 2.0, 0.0]), np.zeros(3), np.array([0.5, 0.5, 3.0])
    got = ep.count_log_likelihood(y, mu, a)
    np.testing.assert_array_equal(got, stats.nbinom.logpmf(y, 1.0 / a, 1.0))
    np.testing.assert_array_equal(got, [0.0, -np.inf, 0.0])


@pytest.mark.parametrize(("h0", "refused"), [(1.5e-9, True), (0.5e-9, False)])
def test_a_hazard_negative_beyond_the_roundoff_allowance_is_refused(h0, refused):
    """The cumulative hazard may fall by 1e-9 max(1, |H|) between grid points (roundoff), no more: a hazard of
    -1.5e-9/h over a follow-up of 32 h (33 grid points, 1 h apart: H falls by 1.5e-9 per step) is refused naming the
    subject; -0.5e-9/h passes, no event (kills _draw_events__mutmut_67, ``np.maximum(2.0, ...)``: an allowance of
    1e-9 max(2, |H|), 2e-9 here, -1.5e-9/h accepted)."""
    m = dataclasses.replace(M, outputs=(pkpd.Output("ev", type="time-to-event", hazard="-h0"),))
    args = dict(params={"h0": h0}, seed=1, outcomes=["ev"], follow_up=32.0)
    if refused:
        with pytest.raises(pkpd.SimulationError) as info:
            pkpd.simulate(m, Regimen([]), [0.0, 32.0], **args)
        assert str(info.value) == ("subject 1: output 'ev': the hazard is negative (the cumulative hazard decreases); "
                                   "a hazard must be >= 0")
    else:
        o = pkpd.simulate(m, Regimen([]), [0.0, 32.0], **args).outcomes
        assert o["TIME"].tolist() == [32.0] and o["DV"].tolist() == [0.0]


def test_draw_outcomes_without_skip_draws_for_every_subject(monkeypatch):
    """``skip`` left out (None) skips no subject: the records of simulate's own call, where no solve failed (kills
    draw_outcomes__mutmut_39, ``np.ones(None)``: a TypeError)."""
    import pkpd.outcomes as po

    draw = po.draw_outcomes
    run = dict(params={"h0": np.full(3, 0.02)}, seed=4, outcomes=["event", "resp", "flares"])
    want = pkpd.simulate(M, Regimen.single(Dose(40, "mg")), [0.0, 10.0, 50.0], **run).outcomes

    def without_skip(*args, skip=None, **kwargs):
        assert not np.any(skip)
        return draw(*args, **kwargs)

    monkeypatch.setattr(po, "draw_outcomes", without_skip)
    got = pkpd.simulate(M, Regimen.single(Dose(40, "mg")), [0.0, 10.0, 50.0], **run).outcomes
    assert sorted(set(got["ID"])) == [1, 2, 3]
    assert got.groupby("output").size().to_dict() == {"event": 3, "flares": 9, "resp": 9}
    pd_testing.assert_frame_equal(got, want)


# ============================================================================================ seed 28
# From the fourth sample (``benchmarks/mutation.py endpoints --sample 40 --seed 28``,
# ``benchmarks/results/mutation/endpoints-seed28.json``): each test seen to fail with its survivor applied by hand.
def _refused(output: pkpd.Output):
    with pytest.raises((ModelFileError, UnitError)) as info:
        dataclasses.replace(M, outputs=(output,))
    return info.value


def test_an_ordinal_category_that_is_not_a_number_is_refused_with_the_whole_message():
    """Categories are the DV codes, numbers: a text code is refused naming the key (kills check_fields__mutmut_98,
    the message's "a category" changed)."""
    err = _refused(pkpd.Output("r", type="ordinal", categories=(0, "x"), intercepts=("1.0",)))
    assert isinstance(err, ModelFileError)
    assert str(err) == f"{MODEL_FILE} [outputs.r] categories: a category must be a number; got 'x'"
    assert (err.section, err.key) == ("outputs.r", "categories")


def test_an_ordinal_intercept_with_a_unit_is_refused_when_the_output_is_declared():
    """A cumulative logit is dimensionless: an intercept that is a volume (V, L) is refused with the rule and the unit
    check's whole message, naming the key (kills check_trees__mutmut_94, ``ints = None``: the intercepts were then
    neither parsed nor unit-checked, and the model was accepted)."""
    err = _refused(pkpd.Output("r", type="ordinal", categories=(0, 1, 2), intercepts=("1.0", "V")))
    assert isinstance(err, UnitError)
    assert str(err) == (f"{MODEL_FILE} [outputs.r] intercepts: a cumulative logit is dimensionless: expression 'V' "
                        "has unit L but 1 is declared (dimensions [length] ** 3 vs none)")
    assert (err.section, err.key) == ("outputs.r", "intercepts")


def test_a_count_mean_adding_unlike_units_is_refused_naming_the_key_mean():
    """V + t adds a volume (L) to a time (h): refused where the unit of the mean is first found, naming the key
    ``mean`` (kills check_trees__mutmut_167, the key passed as "XXmeanXX")."""
    err = _refused(pkpd.Output("r", type="count", mean="V + t"))
    assert isinstance(err, UnitError)
    assert str(err) == (f"{MODEL_FILE} [outputs.r] mean: in 'V + t': 'V' is in L but 't' is in h; both sides must "
                        "have the same dimension")
    assert (err.section, err.key) == ("outputs.r", "mean")


def test_a_count_dispersion_with_a_unit_is_refused_naming_the_key_dispersion():
    """The negative-binomial dispersion is dimensionless: "V" (L) is refused with the rule and the unit check's whole
    message, naming the key ``dispersion`` (kills check_trees__mutmut_222, the key passed as None)."""
    err = _refused(pkpd.Output("r", type="count", mean="r0", dispersion="V"))
    assert isinstance(err, UnitError)
    assert str(err) == (f"{MODEL_FILE} [outputs.r] dispersion: the dispersion of a negative binomial is "
                        "dimensionless: expression 'V' has unit L but 1 is declared (dimensions [length] ** 3 vs none)")
    assert (err.section, err.key) == ("outputs.r", "dispersion")


def test_an_exact_event_at_a_zero_hazard_has_no_valid_log_likelihood():
    """The rule the fitters state ("the hazard at an event must be > 0", pkpd.estimation.likelihood): an exact event
    where the hazard is 0 gives NaN; a right-censored record (-dH) and an interval-censored event
    (log(1 - exp(-dH))) do not use the hazard, so 0 is fine there (kills tte_log_likelihood__mutmut_88, ``h >= 0``:
    log 0 - dH = -inf for the exact event)."""
    dH = np.array([0.5, 0.5, 0.5, 0.5])
    got = ep.tte_log_likelihood([1, 0, 1, 1], dH, [0.0, 0.0, 0.0, 2.0], [False, False, True, False])
    assert np.isnan(got[0])
    np.testing.assert_allclose(got[1:], [-0.5, np.log(1.0 - np.exp(-0.5)), np.log(2.0) - 0.5], rtol=1e-14)


# ============================================================================================ seed 29
# From the fifth sample (``benchmarks/mutation.py endpoints --sample 40 --seed 29``,
# ``benchmarks/results/mutation/endpoints-seed29.json``): each test seen to fail with its survivor applied by hand.
def test_a_binary_probability_of_exactly_0_or_1_is_inside_the_documented_range():
    """NaN only "for p outside [0, 1]" (the docstring): p = 0 gives log(1 - 0) = 0 for DV 0 and log 0 = -inf for
    DV 1, p = 1 the mirror image (kills binary_log_likelihood__mutmut_35, ``p > 0``: NaN at p = 0)."""
    got = ep.binary_log_likelihood([0, 1, 0, 1], [0.0, 0.0, 1.0, 1.0])
    np.testing.assert_array_equal(got, [0.0, -np.inf, -np.inf, 0.0])
    ll, g = ep.binary_log_likelihood([0], [0.0], gradient=True)
    assert ll.tolist() == [0.0] and g.tolist() == [-1.0]          # d/dp log(1 - p) = -1/(1 - p)


def test_the_negative_binomial_score_at_a_zero_count_and_a_zero_mean_is_minus_one():
    """log NB(0; mu, alpha) = -(1/alpha) log(1 + alpha mu), so d/dmu = -1/(1 + alpha mu): -1 at mu = 0 whatever alpha
    (kills count_log_likelihood__mutmut_105, ``y >= 0``: 0/0 = NaN for y = 0 at mu = 0)."""
    ll, g_mu, _ = ep.count_log_likelihood([0, 0], [0.0, 0.0], [0.5, 2.0], gradient=True)
    assert ll.tolist() == [0.0, 0.0]
    assert g_mu.tolist() == [-1.0, -1.0]


@pytest.mark.parametrize(("output", "key", "shown"), [
    (pkpd.Output("r", type="time-to-event", hazard=5), "hazard", "int 5"),
    (pkpd.Output("r", type="count", mean="r0", dispersion=1.5), "dispersion", "float 1.5"),
])
def test_an_endpoint_expression_that_is_not_text_is_refused_naming_its_key_in_the_message(output, key, shown):
    """An expression must be text; the message names the key that is wrong, whole (kills check_fields__mutmut_62,
    the name passed as None: "None must be text")."""
    err = _refused(output)
    assert isinstance(err, ModelFileError)
    assert str(err) == f"{MODEL_FILE} [outputs.r] {key}: {key} must be text; got {shown}"
    assert (err.section, err.key) == ("outputs.r", key)


def test_a_dropout_time_given_as_none_is_refused_with_the_rule_inf_for_none():
    """No dropout is inf, not None: [None, 24] is refused with the whole documented message (kills
    _check_options__mutmut_60, no dtype=float: an object array and a TypeError from np.isnan)."""
    with pytest.raises(pkpd.PkpdError) as info:
        pkpd.simulate(M, Regimen.single(Dose(40, "mg")), [0.0, 48.0], params={"k": np.array([0.1, 0.2])}, seed=1,
                      outcomes=["event"], dropout=[None, 24.0])
    assert str(info.value) == "dropout: give one dropout time > 0 per subject (2; inf for none) [model time unit]"


def test_draw_outcomes_with_no_endpoint_output_chosen_returns_the_documented_columns():
    """The docstring's contract, columns ``ID, TIME, output, DV``, holds for an empty selection too (kills
    draw_outcomes__mutmut_142, the empty table's "output" column named "XXoutputXX")."""
    from pkpd.compile import compile_model
    from pkpd.outcomes import draw_outcomes

    cm = compile_model(M)
    got = draw_outcomes(cm, np.zeros((2, len(cm.q_names))), None, None, np.zeros(2), None, [1, 2],
                        times=[0.0, 10.0], rng=np.random.default_rng(0), only=[])
    assert list(got.columns) == ["ID", "TIME", "output", "DV"] and len(got) == 0


def test_no_event_falls_where_the_hazard_is_zero_before_a_late_dose():
    """h0 = 0: the hazard of ``event`` is h1 A / A50, 0 until the bolus at 0.7 h, then 5 x 40 / 10 = 20 /h. Every
    event time is after 0.7 h and solves H(T) = E for the closed form H(T) = 20 (1 - e^(-k (T - 0.7))) / k, so
    -log(S(T)) equals the exposure-free cumulative hazard at T. The first search point (linear in the grid interval
    [0, 1] h) falls in the flat part, where the Newton step divides by h = 0 silently and bisection must move the
    lower bound (kills _locate__mutmut_90, the lower bound never moved: bisection stuck at 0.5 h, before the dose;
    and _locate__mutmut_103, ``np.errstate(all=None)``: the division by h = 0 no longer silenced, a
    FloatingPointError under the suite's np.errstate(divide="raise"), tests/conftest.py)."""
    n, k = 200, 0.1
    sim = pkpd.simulate(M, Regimen([Bolus(0.7, Dose(40, "mg"), "iv")]), [0.0, 32.0],
                        params={"h0": np.zeros(n), "h1": np.full(n, 5.0), "k": np.full(n, k)}, seed=3,
                        outcomes=["event"], follow_up=32.0)
    o = sim.outcomes
    t = o.loc[o["DV"] == 1.0, "TIME"].to_numpy()
    assert t.size == n and np.all(t > 0.7)   # H(32 h) = 191: every subject has its event
    H = 20.0 * (1.0 - np.exp(-k * (t - 0.7))) / k
    assert stats.kstest(H, "expon").pvalue > 0.01   # H(T) = E ~ Exp(1)


# ============================================================================================ seed 30
# From the sixth sample (``benchmarks/mutation.py endpoints --sample 40 --seed 30``,
# ``benchmarks/results/mutation/endpoints-seed30.json``): each test seen to fail with its survivor applied by hand.
@pytest.mark.parametrize("key", ["hazard", "probability"])
def test_an_endpoint_expression_may_be_as_long_as_any_expression_and_no_longer(key):
    """The limit on an endpoint's expression is that of every expression, ``expressions.MAX_LENGTH`` (10 000
    characters, "longest expression accepted"), not the 5 000 of plain text: 10 000 characters (a short expression
    and trailing blanks, which the parser strips) are accepted, 10 001 refused with the whole message (kills
    check_fields__mutmut_72, ``max_len`` dropped: the text limit, 5 000, then applied)."""
    assert pkpd.expressions.MAX_LENGTH == 10_000
    kind, text = {"hazard": ("time-to-event", "h0"), "probability": ("binary", "0.3")}[key]
    for length in (6_000, 10_000):
        m = dataclasses.replace(M, outputs=(pkpd.Output("r", type=kind, **{key: text.ljust(length)}),))
        assert m.endpoint_names == ("r",)
    err = _refused(pkpd.Output("r", type=kind, **{key: text.ljust(10_001)}))
    assert isinstance(err, ModelFileError)
    assert str(err) == f"{MODEL_FILE} [outputs.r] {key}: {key} is longer than 10000 characters (10001)"
    assert (err.section, err.key) == ("outputs.r", key)


def test_count_log_pmf_of_float32_counts_is_computed_in_double_precision():
    """Counts are exact in float32 (integers below 2^24): a DV column in float32 gives the double-precision log-pmf,
    as ``scipy.stats.poisson`` and ``scipy.stats.nbinom(1/alpha, 1/(1 + alpha mu))`` (NB2) of the same counts as
    floats (kills count_log_likelihood__mutmut_4, ``dtype=None``: log y! in float32, off by 4e-6 at y = 100 and 7e-4
    at y = 2500)."""
    y = np.array([0, 7, 100, 2500], dtype=np.float32)
    mu = np.array([3.0, 7.5, 100.0, 2400.0])
    alpha = np.array([0.3, 0.3, 0.05, 0.01])
    y64 = y.astype(float)
    np.testing.assert_allclose(ep.count_log_likelihood(y, mu), stats.poisson.logpmf(y64, mu), rtol=1e-10)
    np.testing.assert_allclose(ep.count_log_likelihood(y, mu, alpha),
                               stats.nbinom.logpmf(y64, 1.0 / alpha, 1.0 / (1.0 + alpha * mu)), rtol=1e-10)


def test_negative_binomial_draws_depend_on_the_dispersion_value_not_its_dtype():
    """A seeded draw is that of the numbers given: a dispersion 0.3 given in float32 draws what its value in float64
    (0.30000001192...) draws, count for count. At a mean of 1e8 a count resolves the gamma rate to about 1e-8
    relative, so a shape 1/alpha rounded to float32 shows (kills draw_count__mutmut_17, ``dtype=None``: 1/alpha
    computed in float32, 38 of the 40 counts different)."""
    mu = np.full(40, 1e8)
    a32 = np.float32(0.3)
    got = ep.draw_count(mu, np.random.default_rng(11), a32)
    want = ep.draw_count(mu, np.random.default_rng(11), float(a32))
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(ep.draw_count(mu, np.random.default_rng(11), np.full(40, a32)), want)


# ============================================================================================ seed 31
# From the seventh sample (``benchmarks/mutation.py endpoints --sample 40 --seed 31``,
# ``benchmarks/results/mutation/endpoints-seed31.json``): each test seen to fail with its survivor applied by hand.
def test_a_negative_hazard_is_refused_naming_the_subject_whose_hazard_is_negative_not_a_zero_one():
    """A hazard of 0 is allowed (H flat), a negative one refused: with h0 = 0, 0, 0.02, 0.01 /h and the hazard -h0,
    subjects 1 and 2 have a zero hazard and subject 3 is the first whose cumulative hazard decreases, the subject
    named; h0 = 0 alone passes, every subject censored at the end of follow-up (kills _draw_events__mutmut_82,
    ``np.diff(H) <= 0`` in the search for the subject: subject 1, whose H is flat, named)."""
    m = dataclasses.replace(M, outputs=(pkpd.Output("ev", type="time-to-event", hazard="-h0"),))
    args = dict(seed=1, outcomes=["ev"], follow_up=32.0)
    with pytest.raises(pkpd.SimulationError) as info:
        pkpd.simulate(m, Regimen([]), [0.0, 32.0], params={"h0": np.array([0.0, 0.0, 0.02, 0.01])}, **args)
    assert str(info.value) == ("subject 3: output 'ev': the hazard is negative (the cumulative hazard decreases); a "
                               "hazard must be >= 0")
    o = pkpd.simulate(m, Regimen([]), [0.0, 32.0], params={"h0": np.zeros(2)}, **args).outcomes
    assert o["ID"].tolist() == [1, 2] and o["TIME"].tolist() == [32.0, 32.0] and o["DV"].tolist() == [0.0, 0.0]


@pytest.mark.parametrize("kind", ["time-to-event", "binary", "ordinal", "count"])
def test_an_endpoint_unit_that_is_not_a_unit_is_refused_naming_the_key_unit(kind):
    """The unit of an endpoint output is read before anything else; a unit that does not parse ("mg/") is refused
    with the whole message and the key ``unit`` (kills check_trees__mutmut_13 and _14, the key passed as
    "XXunitXX" and "UNIT")."""
    keys = {"time-to-event": {"hazard": "h0"}, "binary": {"probability": "0.5"},
            "ordinal": {"categories": (0, 1), "intercepts": ("1.0",)}, "count": {"mean": "m0"}}[kind]
    err = _refused(pkpd.Output("r", type=kind, unit="mg/", **keys))
    assert isinstance(err, UnitError)
    assert str(err) == (f"{MODEL_FILE} [outputs.r] unit: unit 'mg/': expected a unit name, a number or '(' at the "
                        "end")
    assert (err.section, err.key) == ("outputs.r", "unit")


def test_a_binary_probability_above_1_has_no_log_likelihood_whichever_the_record():
    """NaN "for p outside [0, 1]" (the docstring): p = 1.5 or 2 gives NaN for DV 1 as well as DV 0, where log p
    alone would be finite, log 1.5 > 0 (kills binary_log_likelihood__mutmut_38, ``p <= 2``: log 1.5 and log 2
    returned for DV 1)."""
    got = ep.binary_log_likelihood([1, 0, 1, 0, 1], [1.5, 1.5, 2.0, 2.0, 1.0 + 1e-12])
    assert np.isnan(got).all()
    assert ep.binary_log_likelihood([1], [1.0]).tolist() == [0.0]


def test_a_model_with_every_endpoint_kind_loads_again_from_its_cached_unit_check(fresh_cache):
    """The unit check is done once per declaration: a later load replays the recorded answers without pint and must
    give the trees pint gave (``pkpd.model._checked_trees``). ``endpoints_exposure`` has a time-to-event, a binary,
    an ordinal, a count whose mean is a rate (flares, 1/h) and one whose mean is an expected count (episodes, m0,
    dimensionless): loaded, its in-process memory cleared and loaded again from the one cache entry, the same
    checked trees, every count mean the parsed mean (kills check_trees__mutmut_182, the algebra passed as None in
    the second check of a dimensionless mean: pint asked about the replay's opaque units, a TypeError; and
    check_trees__mutmut_194, ``[1]``: the mean's unit stored as its tree, pint's dimensionless then an opaque
    unit)."""
    from pkpd import _check_cache
    from pkpd import expressions as ex

    first = pkpd.load_model(MODEL_FILE)
    assert len(list((fresh_cache / "checked").glob("*.json"))) == 1
    _check_cache._MEMORY.clear()
    again = pkpd.load_model(MODEL_FILE)
    assert again._checked == first._checked
    names = [o.name for o in M.outputs]
    for ck in (first._checked, again._checked):
        assert ck.outputs[names.index("episodes")] == ex.parse("m0")
        assert ck.endpoints[names.index("episodes")].mean == ex.parse("m0")
        assert ck.endpoints[names.index("flares_nb")].rate


def test_the_subject_named_for_a_negative_hazard_is_one_beyond_the_roundoff_allowance():
    """The cumulative hazard may fall by 1e-9 max(1, |H|) between grid points (roundoff) and the run goes on; the
    subject named when it falls further must be one whose fall is beyond that allowance. A hazard -h0 with h0 =
    0.5e-9/h (within it: that subject alone is censored at 32 h, no error) and 0.02/h: subject 2 is named, not
    subject 1 (the defect found with _draw_events__mutmut_82: the search for the subject used ``< 0``, any fall,
    and named subject 1)."""
    m = dataclasses.replace(M, outputs=(pkpd.Output("ev", type="time-to-event", hazard="-h0"),))
    args = dict(seed=1, outcomes=["ev"], follow_up=32.0)
    o = pkpd.simulate(m, Regimen([]), [0.0, 32.0], params={"h0": np.array([0.5e-9])}, **args).outcomes
    assert o["TIME"].tolist() == [32.0] and o["DV"].tolist() == [0.0]
    with pytest.raises(pkpd.SimulationError) as info:
        pkpd.simulate(m, Regimen([]), [0.0, 32.0], params={"h0": np.array([0.5e-9, 0.02])}, **args)
    assert str(info.value) == ("subject 2: output 'ev': the hazard is negative (the cumulative hazard decreases); a "
                               "hazard must be >= 0")


# ============================================================================================ seed 32
# From the eighth sample (``benchmarks/mutation.py endpoints --sample 40 --seed 32``,
# ``benchmarks/results/mutation/endpoints-seed32.json``): each test seen to fail with its survivor applied by hand.
@pytest.mark.parametrize("dropout", [20.0, 20, np.float64(20.0), np.array(20.0)], ids=["float", "int", "np", "0-d"])
def test_one_dropout_time_given_as_a_scalar_is_every_subjects_dropout(dropout):
    """``dropout : float or array (n_subjects,)``: one number (a float, an int, a numpy scalar or a 0-d array) is the
    dropout of every subject. With a zero hazard and a certain response (p = 1) assessed at 0, 8, 16, 24 and 32 h,
    a dropout at 20 h leaves each of the 3 subjects responses at 0, 8 and 16 h and a censoring at 20 h, nothing later
    (kills _check_options__mutmut_58, ``reshape(None)``: a scalar stays 0-d and ``d[0]`` is an IndexError)."""
    m = dataclasses.replace(M, outputs=(pkpd.Output("ev", type="time-to-event", hazard="h0"),
                                        pkpd.Output("r", type="binary", probability="1.0")))
    o = pkpd.simulate(m, Regimen([]), [0.0, 8.0, 16.0, 24.0, 32.0], params={"h0": np.zeros(3)}, seed=1,
                      dropout=dropout).outcomes
    one = [(0.0, "r", 1.0), (8.0, "r", 1.0), (16.0, "r", 1.0), (20.0, "ev", 0.0)]
    want = [(i, *rec) for i in (1, 2, 3) for rec in one]
    assert list(zip(o["ID"], o["TIME"], o["output"], o["DV"], strict=True)) == want


# ============================================================================================ seed 33
# From the ninth sample (``benchmarks/mutation.py endpoints --sample 40 --seed 33``,
# ``benchmarks/results/mutation/endpoints-seed33.json``): each test seen to fail with its survivor applied by hand.
@pytest.mark.parametrize("n", [3, 40])
def test_event_times_are_located_by_newton_steps_a_handful_of_batch_solves_whatever_the_number_of_subjects(
        n, monkeypatch):
    """The documented search ("safeguarded Newton, batched": a handful of batch solves whatever the number of
    events): the Weibull hazard (shape 1.5, scale 50 h) has the smooth cumulative hazard H(t) = (t / 50)^1.5, so
    Newton's quadratic convergence from the grid's linear interpolation reaches |H - E| <= 1e-10 within a few
    steps, where bisection of a grid interval of 1000 / 32 h needs about 30. At most 10 solves in all (the grid's
    and the Newton steps'; 5 and 7 here), for 3 subjects as for 40, and every event time is the inverse cumulative
    hazard T = 50 E^(1 / 1.5) of the seed's standard exponentials E (kills _locate__mutmut_107, ``t + f / h``: every
    Newton step leaves the bracket and the search falls back to bisection, 34 solves)."""
    import pkpd.outcomes as po

    solves = []
    solve = po._solve

    def counting(*args, **kwargs):
        solves.append(1)
        return solve(*args, **kwargs)

    monkeypatch.setattr(po, "_solve", counting)
    m = dataclasses.replace(M, outputs=tuple(o for o in M.outputs if o.name in ("conc", "weibull")))
    sim = pkpd.simulate(m, Regimen([]), [0.0, 1000.0], params={"h0": np.zeros(n)}, seed=5, outcomes=["weibull"],
                        follow_up=1000.0)
    e = np.random.default_rng(5).standard_exponential(n)
    assert (50.0 * e ** (1 / 1.5)).max() < 1000.0   # every subject has its event before the end of follow-up
    o = sim.outcomes
    assert o["ID"].tolist() == list(range(1, n + 1)) and o["DV"].tolist() == [1.0] * n
    np.testing.assert_allclose(o["TIME"], 50.0 * e ** (1 / 1.5), rtol=1e-7)
    assert 2 <= len(solves) <= 10


def test_nonmem_layout_writes_an_endpoint_record_with_nonmems_missing_value_in_the_dose_items():
    """An endpoint record of the NONMEM layout is an observation, EVID 0 and MDV 0, whose dose items are empty: AMT
    and RATE 0, and NONMEM's missing value "." in AMTU and CMT (``.`` is a missing value, :mod:`pkpd.nonmem`'s
    conventions; an observation's CMT "." is NONMEM's default observation compartment); the dose record keeps its
    target's name and unit (kills nonmem_table__mutmut_163, the observations' CMT written "XX.XX": a text, not
    NONMEM's missing value)."""
    sim = pkpd.simulate(M, Regimen([Bolus(0, Dose(40, "mg"), "iv")]), [0.0, 10.0], seed=1,
                        outcomes=["resp", "flares"], observe={"resp": [5.0], "flares": [5.0]})
    df = sim.to_dataframe(layout="nonmem")
    items = ["EVID", "MDV", "AMT", "AMTU", "CMT", "RATE", "DVID"]
    assert df[items].values.tolist() == [[1, 1, 40.0, "mg", "iv", 0.0, "."], [0, 0, 0.0, ".", ".", 0.0, "resp"],
                                         [0, 0, 0.0, ".", ".", 0.0, "flares"]]


# ============================================================================================ seed 34
# From the tenth sample (``benchmarks/mutation.py endpoints --sample 40 --seed 34``,
# ``benchmarks/results/mutation/endpoints-seed34.json``): each test seen to fail with its survivor applied by hand.
@pytest.mark.parametrize(("kind", "key", "text"), [
    ("time-to-event", "hazard", "   "),
    ("binary", "probability", " \t"),
    ("count", "mean", "  "),
])
def test_a_blank_endpoint_expression_is_a_missing_required_key(kind, key, text):
    """Blank text is no expression: a required key given as spaces or a tab is missing, refused with the same whole
    message as a key left out, naming it (kills check_fields__mutmut_35, ``and`` for the second ``or``: blank text
    passed the presence check and was refused later as "expression is empty")."""
    err = _refused(pkpd.Output("r", type=kind, **{key: text}))
    assert isinstance(err, ModelFileError)
    assert str(err) == f"{MODEL_FILE} [outputs.r] {key}: missing required key {key!r} (a {kind} output needs it)"
    assert (err.section, err.key) == ("outputs.r", key)


def test_interval_censored_log_likelihood_of_a_float32_cumulative_hazard_is_computed_in_double_precision():
    """A cumulative hazard given in float32 gives the double-precision closed forms of its value: log(1 - exp(-dH))
    for an event known to lie in the risk interval and d/d(dH) = 1 / (exp(dH) - 1), computed here with ``math`` on
    the float32 numbers widened exactly (kills tte_log_likelihood__mutmut_13, ``dtype=float`` dropped: log(1 -
    exp(-dH)) taken in float32, 8e-4 off in relative terms at dH = 12, and the gradient float32)."""
    import math

    dH = np.array([1e-3, 0.3, 2.5, 12.0], dtype=np.float32)
    h = np.array([0.2, 0.5, 1.5, 3.0], dtype=np.float32)
    ll, g_dH, g_h = ep.tte_log_likelihood([1, 1, 1, 1], dH, h, [True] * 4, gradient=True)
    x = [float(v) for v in dH]
    np.testing.assert_allclose(ll, [math.log(-math.expm1(-v)) for v in x], rtol=1e-13)
    np.testing.assert_allclose(g_dH, [1.0 / math.expm1(v) for v in x], rtol=1e-13)
    assert g_h.tolist() == [0.0] * 4


@pytest.mark.parametrize(("categories", "intercepts", "key"), [
    ((), (), "categories"),
    ([], (), "categories"),
    ((0, 1, 2), (), "intercepts"),
])
def test_an_ordinal_output_without_categories_or_intercepts_is_missing_a_required_key(categories, intercepts, key):
    """``categories`` and ``intercepts`` are the required keys of an ordinal output: an empty list is a key left out,
    refused with the whole message of a missing key (kills check_fields__mutmut_35, ``and`` for the second ``or``, and
    check_fields__mutmut_41, ``key == "expression"``: an empty list then passed the presence check and was refused
    later by the count rules, "needs 2 to 50 categories; got 0", "one expression per category ... got 0")."""
    err = _refused(pkpd.Output("r", type="ordinal", categories=categories, intercepts=intercepts))
    assert isinstance(err, ModelFileError)
    assert str(err) == f"{MODEL_FILE} [outputs.r] {key}: missing required key {key!r} (an ordinal output needs it)"
    assert (err.section, err.key) == ("outputs.r", key)


# ============================================================================================ seed 36
# From the twelfth sample (``benchmarks/mutation.py endpoints --sample 40 --seed 36``,
# ``benchmarks/results/mutation/endpoints-seed36.json``): each test seen to fail with its survivor applied by hand.
@pytest.mark.parametrize(("times", "follow_up", "shown"), [
    ([0.0, 10.0], 0, "0"),
    ([0.0, 10.0], 0.0, "0.0"),
    ([0.0], None, "0.0"),
])
def test_an_end_of_follow_up_at_time_zero_is_refused(times, follow_up, shown):
    """The end of follow-up must be a time > 0 (risk starts at t = 0, so a follow-up ending there observes nothing):
    0 given, or the default (the last output time) at 0, is refused with the whole documented message (kills
    _check_options__mutmut_46, ``follow_up >= 0``: a follow-up of 0 h passed, and the simulation silently had no
    outcome record at all)."""
    with pytest.raises(pkpd.PkpdError) as info:
        pkpd.simulate(M, Regimen.single(Dose(40, "mg")), times, seed=1, outcomes=["event"], follow_up=follow_up)
    assert str(info.value) == ("follow_up: the end of follow-up must be a finite time > 0 [model time unit]; got "
                               f"{shown}")


# ============================================================================================ seed 37
# From the thirteenth sample (``benchmarks/mutation.py endpoints --sample 40 --seed 37``,
# ``benchmarks/results/mutation/endpoints-seed37.json``): each test seen to fail with its survivor applied by hand.
@pytest.mark.parametrize(("intercept", "rest"), [
    (True, "must be text; got bool True"),
    (None, "must be text; got NoneType None"),
    ("a\x07b", "contains the control character U+0007 at position 1; only printable text, tabs and line breaks are "
               "allowed"),
    ("1" * 10001, "is longer than 10000 characters (10001)"),
])
def test_an_ordinal_intercept_that_is_not_valid_text_is_refused_naming_the_key_intercepts(intercept, rest):
    """Each intercept is an expression, printable text of at most ``expressions.MAX_LENGTH`` (10000) characters: one
    that is not text, holds a control character or is too long is refused naming its place ``intercepts[1]`` and the
    file's key ``intercepts`` (lower case, as written in the model file), the whole message compared (kills
    check_fields__mutmut_131, the key passed as "INTERCEPTS": the error pointed to a key the file does not have)."""
    err = _refused(pkpd.Output("r", type="ordinal", categories=(0, 1, 2), intercepts=("1.0", intercept)))
    assert isinstance(err, ModelFileError)
    assert str(err) == f"{MODEL_FILE} [outputs.r] intercepts: intercepts[1] {rest}"
    assert (err.section, err.key) == ("outputs.r", "intercepts")


def test_binary_draws_read_probabilities_given_as_numeric_text_as_numbers():
    """``draw_binary`` takes an array_like of probabilities, converted to float as numpy converts any array_like
    (numeric text included, e.g. a column read as strings): "0" and "1" are the certain outcomes 0 and 1 whatever the
    draw, and "0.25" etc. draw 1 where the seed's uniform U < p, the inverse-CDF definition of a Bernoulli draw
    (kills draw_binary__mutmut_3, ``dtype=None``: the text stayed text and comparing U with it was a TypeError)."""
    got = ep.draw_binary(["0", "1", "0.0", "1.0"], np.random.default_rng(3))
    assert got.dtype == np.float64 and got.tolist() == [0.0, 1.0, 0.0, 1.0]
    p = [0.1, 0.25, 0.5, 0.75, 0.9, 0.3, 0.6, 0.45]
    u = np.random.default_rng(11).random(len(p))
    got = ep.draw_binary([str(x) for x in p], np.random.default_rng(11))
    assert got.tolist() == [1.0 if ui < pi else 0.0 for ui, pi in zip(u.tolist(), p, strict=True)]
    assert 0 < got.sum() < len(p)   # the draws are not all alike


# ============================================================================================ seed 38
# From the fourteenth sample (``benchmarks/mutation.py endpoints --sample 40 --seed 38``,
# ``benchmarks/results/mutation/endpoints-seed38.json``): each test seen to fail with its survivor applied by hand.
@pytest.mark.parametrize(("follow_up", "shown"), [(True, "True"), ("24", "'24'"), ([24.0], "[24.0]")])
def test_an_end_of_follow_up_that_is_not_a_number_is_refused_with_the_whole_message(follow_up, shown):
    """The end of follow-up is a number [model time unit]: a bool (True is not 1 h), text or a list is refused with
    the whole documented message (kills _check_options__mutmut_43, ``and`` for the first ``or``: True passed as a
    follow-up of 1 h, and text or a list failed with a TypeError from ``follow_up > 0``)."""
    with pytest.raises(pkpd.PkpdError) as info:
        pkpd.simulate(M, Regimen.single(Dose(40, "mg")), [0.0, 10.0], seed=1, outcomes=["event"], follow_up=follow_up)
    assert str(info.value) == ("follow_up: the end of follow-up must be a finite time > 0 [model time unit]; got "
                               f"{shown}")


def test_nonmem_layout_writes_a_dose_in_another_unit_as_its_amount_in_the_targets_unit():
    """AMT is the amount in the dose target's unit (mg for ``iv``): a bolus of 0.04 g is 40 mg and an infusion of
    20000 ug at 10000 ug/h is 20 mg at RATE 10 mg/h (1 g = 1000 mg = 1e6 ug); the concentration just after the bolus
    is 40 mg / V (10 L) = 4 mg/L, and read_nonmem gives back the doses in mg (kills nonmem_table__mutmut_34, the
    amount divided by the unit conversion factor: AMT 4e-05 and 2e+07)."""
    reg = Regimen([Bolus(0, Dose(0.04, "g"), "iv"), Infusion(5, Dose(20000, "ug"), rate=10000, target="iv")])
    sim = pkpd.simulate(M, reg, [0.0, 10.0], seed=1, outcomes=["resp"], observe={"resp": [10.0]})
    assert sim.outputs["conc"][0, 0] == pytest.approx(4.0, rel=1e-12)
    df = sim.to_dataframe(layout="nonmem")
    doses = df[df["EVID"] == 1]
    assert doses["AMT"].tolist() == pytest.approx([40.0, 20.0], rel=1e-12)
    assert doses["RATE"].tolist() == pytest.approx([0.0, 10.0], rel=1e-12) and doses["AMTU"].tolist() == ["mg"] * 2
    back = read_nonmem(df, M).to_regimens(M)[1]
    assert [(a.time, a.dose.amount, a.dose.unit) for a in back] == [(0.0, pytest.approx(40.0), "mg"),
                                                                   (5.0, pytest.approx(20.0), "mg")]


@pytest.mark.parametrize(("categories", "shown"), [("0123", "'0123'"), (b"\x00\x01", "b'\\x00\\x01'"), (3, "3")])
def test_ordinal_categories_that_are_not_a_list_are_refused_with_the_whole_message(categories, shown):
    """``categories`` is a list of numbers: text, bytes or a single number is refused with the whole message naming
    the key (kills check_fields__mutmut_78, ``and`` for ``or``: text was read character by character, "a category
    must be a number; got '0'", bytes were taken as the DV codes 0 and 1 and accepted, and a number failed with a
    TypeError)."""
    err = _refused(pkpd.Output("r", type="ordinal", categories=categories, intercepts=("1.0",)))
    assert isinstance(err, ModelFileError)
    assert str(err) == (f"{MODEL_FILE} [outputs.r] categories: categories must be a list of numbers (the DV codes, "
                        f"increasing); got {shown}")
    assert (err.section, err.key) == ("outputs.r", "categories")


# ============================================================================================ seed 39
# From the fifteenth sample (``benchmarks/mutation.py endpoints --sample 40 --seed 39``,
# ``benchmarks/results/mutation/endpoints-seed39.json``): each test seen to fail with its survivor applied by hand.
@pytest.mark.parametrize(("hazard", "got"), [
    ("h0 * V", "has unit L / h but 1 / h is declared (dimensions [length] ** 3 / [time] vs 1 / [time])"),
    ("A", "has unit mg but 1 / h is declared (dimensions [mass] vs 1 / [time])"),
])
def test_a_hazard_that_is_not_a_rate_is_refused_with_the_whole_message(hazard, got):
    """A hazard is a rate [1/time_unit]: one in L/h or mg is refused naming the key ``hazard``, the rule and the unit
    found, the whole message compared (kills check_trees__mutmut_60, the rule's text changed to "XXa hazard is a rate
    [1/time_unit]XX")."""
    err = _refused(pkpd.Output("ev", type="time-to-event", hazard=hazard))
    assert isinstance(err, UnitError)
    assert str(err) == (f"{MODEL_FILE} [outputs.ev] hazard: a hazard is a rate [1/time_unit]: expression {hazard!r} "
                        f"{got}")
    assert (err.section, err.key) == ("outputs.ev", "hazard")


def _first_standard_exponential_zero(seed: int) -> np.random.Generator:
    # a numpy Generator (MT19937) whose next 64-bit word is 0: numpy's ziggurat then returns the standard
    # exponential 0.0 exactly (a draw of probability 2^-53, but a value standard_exponential can return)
    bits = np.random.MT19937(seed)
    state = bits.state
    key = state["state"]["key"].copy()
    key[0] = key[1] = 0
    state["state"]["key"], state["state"]["pos"] = key, 0
    bits.state = state
    return np.random.Generator(bits)


def test_an_event_drawn_at_e_equal_to_zero_falls_where_the_cumulative_hazard_is_still_zero(monkeypatch):
    """Inverse cumulative hazard: the event is at a time T with H(T) - H(0) = E. With h0 = 0 the hazard of ``event``
    is h1 A / A50, exactly 0 until the bolus at 10 h, then H(T) = 20 (1 - e^(-k (T - 10))) / k. A draw E = 0 exactly
    (the first of the Generator below) is reached anywhere in [0, 10] h, where H = 0; the next two subjects' events
    solve the closed form, T = 10 - log(1 - k E / 20) / k (kills _locate__mutmut_11, ``Hhi >= Hlo``: the grid bracket
    [0, 1] h where H(lo) = H(hi) = 0 = E started the search at 0 / 0, and subject 1's event time came back NaN)."""
    import pkpd.outcomes as po

    draw = po.draw_outcomes

    def with_rng(*args, **kwargs):
        kwargs["rng"] = _first_standard_exponential_zero(7)
        return draw(*args, **kwargs)

    monkeypatch.setattr(po, "draw_outcomes", with_rng)
    n, k = 3, 0.1
    e = _first_standard_exponential_zero(7).standard_exponential(n)
    assert e[0] == 0.0 and np.all(e[1:] > 0) and np.all(e < 20.0 / k)   # every subject has its event
    sim = pkpd.simulate(M, Regimen([Bolus(10.0, Dose(40, "mg"), "iv")]), [0.0, 32.0],
                        params={"h0": np.zeros(n), "h1": np.full(n, 5.0), "k": np.full(n, k)}, seed=1,
                        outcomes=["event"], follow_up=32.0)
    o = sim.outcomes
    assert o["ID"].tolist() == [1, 2, 3] and o["DV"].tolist() == [1.0, 1.0, 1.0]
    t = o["TIME"].to_numpy()
    assert 0.0 <= t[0] <= 10.0   # NaN fails this
    np.testing.assert_allclose(t[1:], 10.0 - np.log1p(-k * e[1:] / 20.0) / k, rtol=1e-7)


def test_the_newton_search_bisects_when_a_step_lands_on_the_lower_bound(monkeypatch):
    """The safeguarded Newton search takes a step only strictly inside the bracket (lo, hi), bisecting otherwise.
    The Weibull cumulative hazard of shape 1/2 and scale 1, H(t) = sqrt(t), has the hazard 1 / (2 sqrt(t)), infinite
    at t = 0; for E = 1/4 in the grid bracket [0, 1] (H = 0 and 1) the linear start is t = 1/4, where H - E = 1/4 and
    h = 1, so the Newton step lands exactly on the lower bound 0. The root is the inverse cumulative hazard E^2 =
    1/16 (kills _locate__mutmut_113, ``newton >= lo``: the step to 0 was taken, and there h = inf makes every later
    step 0 again, so the search stopped at t = 0, where H = 0, after its 60 iterations)."""
    import pkpd.outcomes as po

    def weibull_half(cm, q, y0, events, t0, tt, settings, rows, *, states=False):
        t = np.asarray(tt, dtype=float)[:, 0]
        with np.errstate(divide="ignore"):
            return np.stack([np.sqrt(t), 0.5 / np.sqrt(t)], axis=-1)[:, None, :]   # outputs H, h

    monkeypatch.setattr(po, "_solve", weibull_half)
    t = po._locate(None, None, None, None, None, None, np.arange(1), 0, 1, np.zeros(1), np.array([0.25]),
                   np.array([0.0]), np.array([1.0]), np.array([0.0]), np.array([1.0]))
    assert t.tolist() == [pytest.approx(1 / 16, abs=1e-9)]


def test_ordinal_category_indices_given_as_whole_floats_are_read_as_integer_indices():
    """``category_index`` is an array_like of integer indices, converted as numpy converts an array_like to int64:
    the floats 0.0, 1.0, 2.0 (a table's column) index the categories as 0, 1, 2. Under the logits (1, -1), P(Y = c_k)
    = sigma(l_k) - sigma(l_{k+1}) with l_0 = +inf and l_3 = -inf: 1 - sigma(1), sigma(1) - sigma(-1) and sigma(-1)
    (kills ordinal_log_likelihood__mutmut_4, ``dtype=None``: the float array used as an index was an IndexError)."""
    from scipy.special import expit

    want = np.log([1.0 - expit(1.0), expit(1.0) - expit(-1.0), expit(-1.0)])
    for k in (np.array([0.0, 1.0, 2.0]), [0.0, 1.0, 2.0], np.array([0, 1, 2], dtype=np.int32)):
        ll, grad = ep.ordinal_log_likelihood(k, [[1.0, -1.0]] * 3, gradient=True)
        np.testing.assert_allclose(ll, want, rtol=1e-12)
        # d/dl_1 log(1 - sigma(l_1)) = -sigma(l_1) for category 0; d/dl_2 log sigma(l_2) = 1 - sigma(l_2) for 2
        np.testing.assert_allclose([grad[0, 0], grad[0, 1], grad[2, 0], grad[2, 1]],
                                   [-expit(1.0), 0.0, 0.0, 1.0 - expit(-1.0)], rtol=1e-12, atol=1e-15)


# ============================================================================================ seed 40
def test_a_count_whose_expected_value_is_zero_has_all_its_mass_at_zero():
    """A Poisson mean mu = 0 is allowed (mu >= 0): the distribution is degenerate at 0, P(Y = 0) = e^0 = 1 and
    P(Y = y) = 0 for y > 0, so the log-pmf is 0 and -inf (scipy.stats.poisson(0) agrees), with or without the
    gradient; a negative mean stays NaN (kills count_log_likelihood__mutmut_33, ``mu > 0``: a zero mean gave NaN, an
    invalid record, instead of a certain zero count). The negative binomial of mean 0 is degenerate at 0 as well."""
    y, mu = np.array([0.0, 2.0, 0.0]), np.array([0.0, 0.0, -0.5])
    want = [0.0, -np.inf, np.nan]
    np.testing.assert_array_equal(ep.count_log_likelihood(y, mu), want)
    np.testing.assert_array_equal(stats.poisson(0.0).logpmf(y[:2]), want[:2])
    ll, g_mu, _ = ep.count_log_likelihood(y, mu, gradient=True)
    np.testing.assert_array_equal(ll, want)
    assert g_mu[0] == -1.0                                       # d/dmu (-mu) at y = 0
    np.testing.assert_array_equal(ep.count_log_likelihood(y, mu, [0.5, 0.5, 0.5]), want)


# ============================================================================================ seed 41
# From the seventeenth sample (``benchmarks/mutation.py endpoints --sample 40 --seed 41``,
# ``benchmarks/results/mutation/endpoints-seed41.json``): each test seen to fail with its survivor applied by hand.
def test_an_event_where_the_cumulative_hazard_wiggles_by_roundoff_falls_within_the_follow_up(monkeypatch):
    """The grid check grants the cumulative hazard falls of up to 1e-9 max(1, |H|) between grid points (roundoff).
    Here H rises to 1 + 5e-10 at 1 h, falls by 9e-10 (allowed) to 1 - 4e-10 at 2 h, rises by 4 ulps at 3 h and to
    1 + 1e-9 at 4 h, then has the roundoff hazard -1e-12/h (the model's, after the end of follow-up too). The draw
    E = 1 lies in the wiggle: its grid bracket [2, 3] h has H(lo) < H(hi) < E. Whatever time the search picks, the
    event must fall within the follow-up [0, 32] h, where H equals E up to the roundoff allowance (kills
    _locate__mutmut_21, ``np.clip(w, 0.0, None)``: the linear start w = (E - H(lo)) / (H(hi) - H(lo)) = 900720 was
    not clipped to the bracket, t = 900722 h, where H < E, and the inverted bracket returned an event at 450362.5 h;
    3 h unmutated)."""
    knots = np.array([0.0, 1.0 + 5e-10, 1.0 - 4e-10, 1.0 - 4e-10 + 2.0**-51, 1.0 + 1e-9])   # H at 0, 1, 2, 3, 4 h
    t, cumulative = _one_event_on_a_piecewise_linear_cumulative_hazard(monkeypatch, knots)
    assert abs(cumulative(t) - 1.0) <= 1e-9


def _one_event_on_a_piecewise_linear_cumulative_hazard(monkeypatch, knots):
    """``_draw_events`` of one subject followed up for 32 h, with the draw E = 1 and ``_solve`` replaced by a
    cumulative hazard H linear between ``knots`` (its values at 0, 1, 2, ... h) and falling with the roundoff hazard
    -1e-12/h after the last: the event (drawn, within the follow-up) and H as a function of t: (t, H)."""
    import types

    import pkpd.outcomes as po

    last = knots.size - 1
    slopes = np.diff(knots)

    def cumulative(t):
        return np.where(t <= last, np.interp(t, np.arange(last + 1.0), knots), knots[-1] - 1e-12 * (t - last))

    def solve(cm, q, y0, events, t0, tt, settings, rows, *, states=False):
        t = np.asarray(tt, dtype=float)
        h = np.where(t < last, slopes[np.clip(np.floor(t), 0, last - 1).astype(int)], -1e-12)
        out = np.stack([cumulative(t), h], axis=-1)                      # outputs H, h (states: H alone)
        return out[..., :1] if states else out

    monkeypatch.setattr(po, "_solve", solve)
    cm = types.SimpleNamespace(model=types.SimpleNamespace(state_names=("H",)))
    spec = ep.EndpointSpec("ev", "time-to-event", hazard="h", cumulative="H", state="H")
    rng = types.SimpleNamespace(standard_exponential=lambda n: np.ones(n))   # E = 1
    sid, t, dv = po._draw_events(cm, None, None, None, None, None, spec, {"H": 0, "h": 1}, np.array([32.0]),
                                 np.array([True]), rng)
    assert sid.tolist() == [0] and dv.tolist() == [1.0]                 # H(32 h) > E: the event, no censoring
    assert 0.0 <= t[0] <= 32.0
    return t[0], cumulative


# ============================================================================================ seed 42
# From the eighteenth sample (``benchmarks/mutation.py endpoints --sample 40 --seed 42``,
# ``benchmarks/results/mutation/endpoints-seed42.json``): each test seen to fail with its survivor applied by hand.
def test_nonmem_layout_with_doses_into_two_targets_of_different_units_states_amtu_target():
    """Doses into targets of different units (``iv`` in mg, a second target ``iv_ug`` of A in ug): AMT is each
    target's own amount, 40 mg and 20 mg = 20000 ug, so AMTU says "target" on every dose record, the value
    read_nonmem takes for "AMT in each dose target's own unit", and the table reads back as the same two doses. The
    concentration just after both boluses is (40 mg + 20000 ug) / 10 L = 6 mg/L, then 6 e^(-0.1 * 10) at 10 h
    (guards nonmem_table__mutmut_123, ``nunique() > 2``: with exactly two units AMTU said "mg" and "ug", and
    read_nonmem refused the table, "AMTU names several units")."""
    m = dataclasses.replace(M, doses=M.doses + (DoseTarget("iv_ug", "A", "ug"),))
    reg = Regimen([Bolus(0, Dose(40, "mg"), "iv"), Bolus(0, Dose(20, "mg"), "iv_ug")])
    sim = pkpd.simulate(m, reg, [0.0, 10.0], seed=1, outcomes=["resp"], observe={"resp": [10.0]})
    np.testing.assert_allclose(sim.outputs["conc"][0], [6.0, 6.0 * np.exp(-1.0)], rtol=1e-6)
    df = sim.to_dataframe(layout="nonmem")
    doses = df[df["EVID"] == 1]
    assert doses["AMTU"].tolist() == ["target", "target"] and doses["CMT"].tolist() == ["iv", "iv_ug"]
    assert doses["AMT"].tolist() == pytest.approx([40.0, 20000.0], rel=1e-12)
    back = read_nonmem(df, m).to_regimens(m)[1]
    assert [(a.time, a.dose.amount, a.dose.unit, a.target) for a in back] == [
        (0.0, pytest.approx(40.0), "mg", "iv"), (0.0, pytest.approx(20000.0), "ug", "iv_ug")]


@pytest.mark.parametrize("event", [["1", "0", "1"], ["1.0", "0.0", "1.0"], np.array(["1", "0", "1"])])
def test_time_to_event_records_read_event_flags_given_as_numeric_text_as_numbers(event):
    """``event`` is an array_like of {0, 1}, converted to float as numpy converts any array_like (numeric text
    included, e.g. a DV column read as strings): "1" is an event, "0" a censoring. With dH = 0.2 and h = 0.5: an exact
    event has log h - dH = log 0.5 - 0.2, a censored record -dH = -0.2, an interval-censored event log(1 - e^-dH)
    (math's closed forms), and d/dh = 1/h = 2 for the exact event (guards tte_log_likelihood__mutmut_6, ``dtype``
    dropped: the text stayed text, unequal to 1, and every record was taken as censored, -0.2 each)."""
    import math

    dH, h = [0.2] * 3, [0.5] * 3
    ll, g_dH, g_h = ep.tte_log_likelihood(event, dH, h, [False, False, True], gradient=True)
    np.testing.assert_allclose(ll, [math.log(0.5) - 0.2, -0.2, math.log(1.0 - math.exp(-0.2))], rtol=1e-13)
    np.testing.assert_allclose(g_dH, [-1.0, -1.0, 1.0 / math.expm1(0.2)], rtol=1e-13)
    np.testing.assert_allclose(g_h, [2.0, 0.0, 0.0], rtol=1e-13)


@pytest.mark.parametrize("observed", [["1", "0", "1"], ["1.0", "0.0", "1.0"], np.array(["1", "0", "1"])])
def test_binary_records_read_dv_given_as_numeric_text_as_numbers(observed):
    """``observed`` is an array_like of DV 0 / 1, converted to float as numpy converts any array_like (numeric text
    included, e.g. a DV column read as strings): "1" is a response, log p, "0" none, log(1 - p); d/dp is 1/p and
    -1/(1 - p) (guards binary_log_likelihood__mutmut_6, ``dtype`` dropped: the text stayed text, unequal to 1, and
    every record was taken as DV 0, log(1 - p))."""
    import math

    p = [0.2, 0.3, 0.9]
    ll, g = ep.binary_log_likelihood(observed, p, gradient=True)
    np.testing.assert_allclose(ll, [math.log(0.2), math.log(0.7), math.log(0.9)], rtol=1e-13)
    np.testing.assert_allclose(g, [5.0, -1.0 / 0.7, 1.0 / 0.9], rtol=1e-13)


# ============================================================================================ seed 43
# From the nineteenth sample (``benchmarks/mutation.py endpoints --sample 40 --seed 43``,
# ``benchmarks/results/mutation/endpoints-seed43.json``): each test seen to fail with its survivor applied by hand.
@pytest.mark.parametrize(("unit", "shown", "log10_factor"), [("Ys", "Ys", 327.1), ("ys", "ys", -440.9)])
def test_a_count_rate_whose_conversion_factor_no_double_holds_is_refused_naming_the_file(unit, shown, log10_factor):
    """A count's mean in 1/time_unit is a rate, converted to 1/h: r0 (q / scale)^16 with q in Ys (1e24 s) or ys
    (1e-24 s) and scale in h has the factor (1e24 s / 3600 s)^16, about 1e327, more than the largest double
    (1.8e308), or (1e-24 s / 3600 s)^16, about 1e-441, less than the smallest (4.9e-324). The check refuses it and
    says why, the whole message compared: the units have the same dimension and the factor between them is out of
    the range of a double (a real defect, fixed: the message said "cannot convert ... (dimensions 1 / [time] vs 1 /
    [time])" for the overflow, and "invalid conversion factor 0.0" for the underflow). The error names the model
    file, the section and the key like every error of a model's check (kills check_trees__mutmut_205, ``None`` for
    ``file`` in the rate's unit check: the message lost the file)."""
    assert 16 * np.log10({"Ys": 1e24, "ys": 1e-24}[unit] / 3600.0) == pytest.approx(log10_factor, abs=0.05)
    assert not np.log10(np.finfo(float).smallest_subnormal) < log10_factor < np.log10(np.finfo(float).max)
    out = pkpd.Output("n", type="count", mean="r0 * (q / scale) ** 16")
    with pytest.raises(UnitError) as info:
        dataclasses.replace(M, parameters=M.parameters + (pkpd.Parameter("q", 1.0, unit),), outputs=(out,))
    err = info.value
    assert str(err) == (f"{MODEL_FILE} [outputs.n] mean: cannot convert {shown} ** 16 / h ** 17 to 1 / h: the units "
                        "have the same dimension (1 / [time]), but the conversion factor between them is out of the "
                        "range of a floating-point number")
    assert (err.file, err.section, err.key) == (str(MODEL_FILE), "outputs.n", "mean")


def test_ordinal_logits_that_increase_in_one_row_make_only_that_row_nan():
    """NaN marks a row whose logits increase (the model gives a category a negative probability there), that row
    only: under the decreasing logits (1, -1), P(Y = c_k) is 1 - sigma(1), sigma(1) - sigma(-1) and sigma(-1), the
    closed forms, whatever another row holds; the crossed row (-1, 1) is NaN whichever category was observed (kills
    ordinal_log_likelihood__mutmut_76, ``np.any(..., axis=None)``: one crossed row made every record of the batch
    NaN)."""
    from scipy.special import expit

    want = [np.log(1.0 - expit(1.0)), np.nan, np.log(expit(1.0) - expit(-1.0)), np.nan, np.log(expit(-1.0))]
    L = [[1.0, -1.0], [-1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [1.0, -1.0]]
    for gradient in (False, True):
        got = ep.ordinal_log_likelihood([0, 0, 1, 2, 2], L, gradient=gradient)
        np.testing.assert_allclose(got[0] if gradient else got, want, rtol=1e-12)


# ============================================================================================ seed 44
# From the twentieth sample (``benchmarks/mutation.py endpoints --sample 40 --seed 44``,
# ``benchmarks/results/mutation/endpoints-seed44.json``): each test seen to fail with its survivor applied by hand.
@pytest.mark.parametrize("m0", [1e-12, float(np.nextafter(1e-12, 1.0))])
def test_a_count_mean_negative_by_at_most_the_roundoff_allowance_draws_zero_counts(m0):
    """An expected count may be negative by roundoff, down to -1e-12 included, and is then drawn as a count of mean
    0, degenerate at 0; one ulp beyond (-1.0000000000000002e-12) it is refused, the whole message compared. A count
    whose mean is ``-m0`` (negation is exact) at m0 = 1e-12 gives DV 0 at 0, 12 and 24 h (kills
    _draw_assessments__mutmut_114, ``mean > -1e-12`` for ``mean >= -1e-12``: a mean of exactly -1e-12 was refused)."""
    m = dataclasses.replace(M, outputs=(pkpd.Output("n", type="count", mean="-m0"),))
    args = dict(params={"m0": m0}, seed=1, outcomes=["n"])
    if m0 > 1e-12:
        with pytest.raises(pkpd.SimulationError) as info:
            pkpd.simulate(m, Regimen([]), [0.0, 12.0, 24.0], **args)
        assert str(info.value) == "output 'n': the expected count is negative; check its mean"
    else:
        sim = pkpd.simulate(m, Regimen([]), [0.0, 12.0, 24.0], **args)
        assert sim.outputs["n"].tolist() == [[-1e-12, -1e-12, -1e-12]]
        o = sim.outcomes
        assert o["TIME"].tolist() == [0.0, 12.0, 24.0] and o["DV"].tolist() == [0.0, 0.0, 0.0]


# ============================================================================================ seed 45
# From the twenty-first sample (``benchmarks/mutation.py endpoints --sample 40 --seed 45``,
# ``benchmarks/results/mutation/endpoints-seed45.json``): each test seen to fail with its survivor applied by hand.
@pytest.mark.parametrize(("categories", "intercepts", "shown"), [
    ((0, 1, 1), ("1.0", "0.5"), "[0.0, 1.0, 1.0]"),
    ((2, 2), ("1.0",), "[2.0, 2.0]"),
    ((0, 0, 1), ("1.0", "0.5"), "[0.0, 0.0, 1.0]"),
])
def test_ordinal_categories_with_a_tie_are_refused_with_the_whole_message(categories, intercepts, shown):
    """Ordinal categories are ordered grades, *strictly* increasing: two equal codes (a tie at the end, at the start,
    or the only two categories) are refused naming the key, the whole message compared (kills
    check_fields__mutmut_106, ``b < a`` for ``b <= a``: a tie passed the check and the model was accepted, one grade
    code standing for two categories)."""
    err = _refused(pkpd.Output("r", type="ordinal", categories=categories, intercepts=intercepts))
    assert isinstance(err, ModelFileError)
    assert str(err) == (f"{MODEL_FILE} [outputs.r] categories: categories must be strictly increasing (ordered "
                        f"grades); got {shown}")
    assert (err.section, err.key) == ("outputs.r", "categories")


# ============================================================================================ seed 46
# From the twenty-second sample (``benchmarks/mutation.py endpoints --sample 40 --seed 46``,
# ``benchmarks/results/mutation/endpoints-seed46.json``): each test seen to fail with its survivor applied by hand.
@pytest.mark.parametrize("dispersion", [None, 0.5])
def test_a_count_drawn_for_a_scalar_mean_is_a_float_as_a_binary_draw_is(dispersion):
    """``draw_count`` reads its mean as an array_like, a scalar included, as ``draw_binary`` reads its probability:
    a scalar mean gives one count, a numpy float (the DV code), and it is the draw of the same Generator state for the
    mean given as a one-element list. A mean of 0 is degenerate at 0 (P(Y = 0) = e^0 = 1), Poisson and negative
    binomial alike (guards the defect found beside draw_count__mutmut_28: a scalar mean raised AttributeError,
    'int' object has no attribute 'astype', the Generator's Poisson draw of a scalar being a Python int)."""
    got = ep.draw_count(3.0, np.random.default_rng(4), dispersion)
    want = ep.draw_count([3.0], np.random.default_rng(4), None if dispersion is None else [dispersion])
    assert isinstance(got, np.float64) and want.dtype == np.float64 and want.shape == (1,)
    assert got == want[0] and got >= 0.0 and got == int(got)
    assert ep.draw_count(0.0, np.random.default_rng(4), dispersion) == 0.0
    assert isinstance(ep.draw_binary(0.5, np.random.default_rng(4)), np.float64)   # the sibling's scalar


class _GivenExponentials:
    """A stand-in for the Generator of the outcome draws: its standard exponentials are the given targets E."""

    def __init__(self, e):
        self.e = np.asarray(e, dtype=float)

    def standard_exponential(self, size):
        assert size == self.e.size
        return self.e.copy()


def _constant_hazard_outcomes(monkeypatch, lam, targets):
    """The outcome records of ``event`` (no dose: the constant hazard h0 = ``lam`` [1/h]) for one subject per target
    E of the exponential draws, followed up for 32 h (grid intervals of 1 h)."""
    import pkpd.outcomes as po

    e = np.array(targets)
    draw = po.draw_outcomes

    def with_targets(*args, **kwargs):
        kwargs["rng"] = _GivenExponentials(e)
        return draw(*args, **kwargs)

    monkeypatch.setattr(po, "draw_outcomes", with_targets)
    sim = pkpd.simulate(M, Regimen([]), [0.0, 32.0], params={"h0": np.full(e.size, lam)}, seed=1,
                        outcomes=["event"], follow_up=32.0)
    return sim.outcomes


def test_a_small_constant_hazard_puts_each_event_at_the_inverse_cumulative_hazard(monkeypatch):
    """A constant hazard lam has H(t) = lam t, so the event of a target E is at T = E / lam (the exponential's
    inverse CDF) when E <= H(end of follow-up), and the subject is censored at the end otherwise. With lam = 1e-10/h
    (``event`` without a dose: h0) and a follow-up of 32 h (grid intervals of 1 h), H differs from E by at most 1e-10
    anywhere in the grid interval that brackets T, within the stopping rule |H - E| <= 1e-10; the grid's linear
    interpolation of H, exact for a linear H, finds T all the same: 0.1, 12.25 and 30.875 h for E = 1e-11, 1.225e-9
    and 3.0875e-9 (kills _locate__mutmut_5, ``np.where(None, ...)``: every search started at the midpoint of its
    grid interval, which the stopping rule accepted at once: 0.5, 12.5 and 30.5 h)."""
    lam = 1e-10
    o = _constant_hazard_outcomes(monkeypatch, lam, [1e-11, 1.225e-9, 3.0875e-9, 1.0])
    assert o["ID"].tolist() == [1, 2, 3, 4] and o["DV"].tolist() == [1.0, 1.0, 1.0, 0.0]
    np.testing.assert_allclose(o["TIME"], [1e-11 / lam, 1.225e-9 / lam, 3.0875e-9 / lam, 32.0], rtol=1e-9)


def test_the_nonmem_layout_writes_covariates_given_as_integers_as_the_float_numbers_they_are():
    """The NONMEM layout's covariate columns are the covariates' values as numbers (float64, as TIME, AMT and DV),
    whatever array holds them: a Simulation whose covariate X is given as ints, a list or an int array (a
    Simulation is a public dataclass; ``dataclasses.replace`` derives one, as :mod:`pkpd.bayes` does), gives the
    table of the simulation itself, X = 0.0 and 1.0 in float64 (kills nonmem_table__mutmut_6,
    ``np.asarray(v, dtype=None)``: the ints stayed int64, X written 0 and 1, an int64 column)."""
    x = [0.0, 1.0, 1.0]
    sim = pkpd.simulate(M, Regimen([Bolus(0.0, Dose(40, "mg"), "iv")]), [0.0, 12.0], covariates={"X": x}, seed=3,
                        outcomes=["resp"])
    want = sim.to_dataframe(layout="nonmem")
    assert want["X"].dtype == np.float64
    assert want.groupby("ID")["X"].first().tolist() == x
    for given in ([0, 1, 1], np.array([0, 1, 1]), np.array([False, True, True])):
        got = dataclasses.replace(sim, covariates={"X": given}).to_dataframe(layout="nonmem")
        pd_testing.assert_frame_equal(got, want)


# ============================================================================================ seed 47
# From the twenty-third sample (``benchmarks/mutation.py endpoints --sample 40 --seed 47``,
# ``benchmarks/results/mutation/endpoints-seed47.json``): each test seen to fail with its survivor applied by hand.
@pytest.mark.parametrize("regimen", [None, Regimen([Bolus(0.0, Dose(40, "mg"), "iv")])], ids=["no-dose", "bolus"])
def test_the_nonmem_layout_writes_outcomes_given_as_integers_as_the_float_numbers_they_are(regimen):
    """The NONMEM layout's DV is the outcomes' values as numbers (float64, as TIME and AMT), whatever dtype the
    outcomes table holds them in: a Simulation whose binary and ordinal outcomes are given as ints (a Simulation is a
    public dataclass; ``dataclasses.replace`` derives one, as :mod:`pkpd.bayes` does) gives the table of the
    simulation itself, DV 0.0 / 1.0 and grades in float64, with no dose record as with one (kills
    nonmem_table__mutmut_172, ``obs["DV"].to_numpy(dtype=None)``: without a dose record to be concatenated with, the
    ints stayed int64, an int64 DV column)."""
    sim = pkpd.simulate(M, regimen, [0.0, 12.0, 24.0], params={"b0": np.array([-0.5, 0.0, 0.5])}, seed=5,
                        outcomes=["resp", "grade"])
    want = sim.to_dataframe(layout="nonmem")
    assert want["DV"].dtype == np.float64
    dv = sim.outcomes["DV"].to_numpy()
    assert len(dv) == 18 and np.all(dv == np.round(dv))   # whole numbers: responses 0/1 and grades
    obs = want[want["EVID"] == 0]
    assert obs["DV"].tolist() == [float(v) for v in dv]
    for given in (sim.outcomes.astype({"DV": np.int64}), sim.outcomes.assign(DV=[int(v) for v in dv])):
        got = dataclasses.replace(sim, outcomes=given).to_dataframe(layout="nonmem")
        pd_testing.assert_frame_equal(got, want)


# ============================================================================================ seed 48
# From the twenty-fourth sample (``benchmarks/mutation.py endpoints --sample 40 --seed 48``,
# ``benchmarks/results/mutation/endpoints-seed48.json``): each test seen to fail with its survivor applied by hand.
def test_a_dropout_time_under_one_time_unit_is_a_dropout_not_refused():
    """``dropout`` takes any time > 0 [model time unit]: 0.5 h and 1 h, under and at one time unit, are dropout
    times like 2 h. With a zero hazard and a certain response (p = 1) assessed at 0 and 8 h, each subject has its
    response at 0 h and its censoring at its dropout, 0.5, 1 and 2 h, nothing later (guards _check_options__mutmut_80,
    ``d <= 1`` for ``d <= 0``: a dropout within the first time unit refused, 'give one dropout time > 0')."""
    m = dataclasses.replace(M, outputs=(pkpd.Output("ev", type="time-to-event", hazard="h0"),
                                        pkpd.Output("r", type="binary", probability="1.0")))
    o = pkpd.simulate(m, Regimen([]), [0.0, 8.0], params={"h0": np.zeros(3)}, seed=1,
                      dropout=[0.5, 1.0, 2.0]).outcomes
    want = [(i, t, out, dv) for i, d in ((1, 0.5), (2, 1.0), (3, 2.0)) for t, out, dv in ((0.0, "r", 1.0),
                                                                                          (d, "ev", 0.0))]
    assert list(zip(o["ID"], o["TIME"], o["output"], o["DV"], strict=True)) == want


# ============================================================================================ seed 49
# From the twenty-fifth sample (``benchmarks/mutation.py endpoints --sample 40 --seed 49``,
# ``benchmarks/results/mutation/endpoints-seed49.json``): each test seen to fail with its survivor applied by hand.
def test_the_newton_search_bisects_when_a_step_lands_on_the_upper_bound(monkeypatch):
    """The safeguarded Newton search takes a step only strictly inside the bracket (lo, hi), bisecting otherwise
    (the mirror of the seed-39 test at the lower bound). The cumulative hazard H(t) = 1 - sqrt(1 - t) on [0, 1] has
    the hazard 1 / (2 sqrt(1 - t)), infinite at t = 1; for E = 3/4 in the grid bracket [0, 1] (H = 0 and 1) the
    linear start is t = 3/4, where H - E = -1/4 and h = 1, so the Newton step lands exactly on the upper bound 1. The
    root is the inverse cumulative hazard 1 - (1 - E)^2 = 15/16 (kills _locate__mutmut_114, ``newton <= hi``: the
    step to 1 was taken, and there h = inf makes every later step 1 again, so the search stopped at t = 1, where
    H = 1, after its 60 iterations)."""
    import pkpd.outcomes as po

    def one_minus_sqrt(cm, q, y0, events, t0, tt, settings, rows, *, states=False):
        t = np.asarray(tt, dtype=float)[:, 0]
        with np.errstate(divide="ignore"):
            return np.stack([1.0 - np.sqrt(1.0 - t), 0.5 / np.sqrt(1.0 - t)], axis=-1)[:, None, :]   # outputs H, h

    monkeypatch.setattr(po, "_solve", one_minus_sqrt)
    t = po._locate(None, None, None, None, None, None, np.arange(1), 0, 1, np.zeros(1), np.array([0.75]),
                   np.array([0.0]), np.array([1.0]), np.array([0.0]), np.array([1.0]))
    assert t.tolist() == [pytest.approx(15 / 16, abs=1e-9)]


@pytest.mark.parametrize(("effect", "got"), [
    ("V", "has unit L but 1 is declared (dimensions [length] ** 3 vs none)"),
    ("A", "has unit mg but 1 is declared (dimensions [mass] vs none)"),
])
def test_an_ordinal_effect_with_a_unit_is_refused_with_the_whole_message(effect, got):
    """The effect on the cumulative logits is dimensionless: one in L or mg is refused naming the key ``effect``,
    the rule and the unit found, the whole message compared (kills check_trees__mutmut_126, the rule's text changed
    to "the effect on the logits is DIMENSIONLESS")."""
    err = _refused(pkpd.Output("r", type="ordinal", categories=(0, 1, 2), intercepts=("1.0", "-1.0"), effect=effect))
    assert isinstance(err, UnitError)
    assert str(err) == (f"{MODEL_FILE} [outputs.r] effect: the effect on the logits is dimensionless: expression "
                        f"{effect!r} {got}")
    assert (err.section, err.key) == ("outputs.r", "effect")


def test_ordinal_logits_given_as_numeric_text_are_read_as_numbers():
    """``logits`` is an array_like converted as numpy converts an array_like to float64, as the category indices and
    a binary DV are: the logits (1, -1) given as the text "1.0", "-1.0" (a table read as text) give the closed-form
    probabilities, P(Y = c_k) = sigma(l_k) - sigma(l_{k+1}) with l_0 = +inf and l_3 = -inf, and the closed-form
    gradient, d/dl log(sigma(l) - sigma(l')) = sigma(l)(1 - sigma(l)) / (sigma(l) - sigma(l')) and its mirror
    (kills ordinal_log_likelihood__mutmut_10, ``np.asarray(logits, dtype=None)``: the text stayed text, the bounds
    +-inf were joined to it as the text "inf", and the gap a - b raised numpy's UFuncTypeError)."""
    from scipy.special import expit

    s1, s2 = expit(1.0), expit(-1.0)
    want = np.log([1.0 - s1, s1 - s2, s2])
    text = [["1.0", "-1.0"]] * 3
    np.testing.assert_allclose(ep.ordinal_log_likelihood([0, 1, 2], text), want, rtol=1e-12)
    ll, grad = ep.ordinal_log_likelihood([0, 1, 2], text, gradient=True)
    np.testing.assert_allclose(ll, want, rtol=1e-12)
    mid = s1 - s2
    np.testing.assert_allclose(grad, [[-s1, 0.0], [s1 * (1 - s1) / mid, -s2 * (1 - s2) / mid], [0.0, 1 - s2]],
                               rtol=1e-12, atol=1e-15)
    assert ll.dtype == np.float64 and grad.dtype == np.float64


# ============================================================================================ seed 50
# From the twenty-sixth sample (``benchmarks/mutation.py endpoints --sample 40 --seed 50``,
# ``benchmarks/results/mutation/endpoints-seed50.json``): each test seen to fail with its survivor applied by hand.
def test_an_event_whose_grid_point_already_meets_the_location_tolerance_is_located_within_it(monkeypatch):
    """The event time is located where |H(t) - E| <= 1e-10 max(1, E) (the location tolerance). The grid check grants the
    cumulative hazard falls of up to 1e-9 max(1, |H|) between grid points (roundoff), so H may wiggle: here H (piecewise
    linear on the 1-h grid) is 0, 1 + 8e-10, 1 + 4e-11, 1 + 1.2e-10, 1 - 1e-10, 1 - 5e-11 and 2 at 0-6 h, then has the
    roundoff hazard -1e-12/h. For the draw E = 1 three grid points lie below E, so the search bracket is [2, 3] h, where
    H(lo) = 1 + 4e-11 is already within the tolerance of E. By hand, |H(t) - 1| <= 1e-10 holds only at about 1 h (the
    first rise), on [1.921, 2.75] h and on [3.091, 5] h, all within the follow-up [0, 32] h (kills _locate__mutmut_20,
    ``np.clip(w, None, 1.0)``: the linear start w = (E - H(lo)) / (H(hi) - H(lo)) = -0.5 was not clipped to 0, the
    search began at 1.5 h, where H - E = 4.2e-10, inverted the bracket, and returned its midpoint 1.75 h, where H - E =
    2.3e-10; 2 h unmutated)."""
    knots = 1.0 + np.array([-1.0, 8e-10, 4e-11, 1.2e-10, -1e-10, -5e-11, 1.0])   # H at 0, 1, ..., 6 h
    knots[0] = 0.0
    t, cumulative = _one_event_on_a_piecewise_linear_cumulative_hazard(monkeypatch, knots)
    assert abs(cumulative(t) - 1.0) <= 1e-10



def test_the_ordinal_gradient_vanishes_for_an_infinite_upper_logit():
    """d/dl log(sigma(l) - sigma(l')) = sigma(l)(1 - sigma(l)) / (sigma(l) - sigma(l')) tends to 0 as l -> +inf (the
    logistic density vanishes while the probability stays sigma(+inf) - sigma(l') = 1 - sigma(l')): for the logits
    (+inf, 0) and the observed middle category the log-likelihood is log(1 - 1/2) = log 1/2, the gradient (0, -1/2)
    (d/dl' = -sigma(0)(1 - sigma(0)) / (1/2) = -1/2); the top category gives log sigma(0) and d/dl' = 1 - sigma(0) =
    1/2 (kills ordinal_log_likelihood__mutmut_111, ``np.where(np.isfinite(a), ..., 1.0)``: the infinite logit's
    derivative came out 1 instead of 0)."""
    ll, grad = ep.ordinal_log_likelihood([1, 2], [[np.inf, 0.0]] * 2, gradient=True)
    np.testing.assert_allclose(ll, [np.log(0.5), np.log(0.5)], rtol=1e-15)
    np.testing.assert_array_equal(grad, [[0.0, -0.5], [0.0, 0.5]])


def test_a_model_whose_bounds_are_given_as_lists_is_the_model_with_tuples_and_simulates():
    """A declaration is hashable and immutable: lists given in Python become tuples, as the model's own sections and an
    output's categories do, and as the model file's ``bounds = [low, high]`` does. The model of this file with every
    parameter's bounds given as a list is therefore equal to it with the same hash, has no other endpoint outputs,
    and simulates as it does: 40 mg into V = 10 L eliminated at k = 0.1/h gives C = 4 e^(-0.1 t) mg/L (the closed
    form). Defect found by seed 50's survivor endpoint_specs _2 (``(model.endpoint_names) or True``, which hashes
    every model for _engine's cache): such a model was accepted by every check, and then ``simulate`` failed with
    "TypeError: unhashable type: 'list'"."""
    listed = dataclasses.replace(M, parameters=[dataclasses.replace(p, bounds=list(p.bounds)) for p in M.parameters])
    assert all(type(p.bounds) is tuple for p in listed.parameters)
    assert listed == M and hash(listed) == hash(M)
    assert ep.endpoint_specs(listed) == ep.endpoint_specs(M)
    sim = pkpd.simulate(listed, Regimen([Bolus(0.0, Dose(40, "mg"), "iv")]), [0.0, 10.0], seed=1, outcomes=["resp"])
    np.testing.assert_allclose(sim.outputs["conc"][0], [4.0, 4.0 * np.exp(-1.0)], rtol=1e-6)
    no_endpoints = dataclasses.replace(listed, outputs=[o for o in listed.outputs if not o.is_endpoint])
    assert ep.endpoint_specs(no_endpoints) == () and hash(no_endpoints) == hash(no_endpoints)


def test_bounds_given_as_a_numpy_array_are_a_tuple_and_other_containers_are_refused():
    """Beside the lists above: bounds given as a 1-d numpy array become the tuple of its floats (the model equals this
    file's, with the same hash, and simulates); a string, a set, a dict and a generator are refused by the model's
    checks with the message naming the parameter and the key. Before, the check iterated whatever it was given: "12"
    passed as the bounds 1 to 2 (its characters), a generator passed and was consumed, and a set, a dict or an array
    passed the checks and then failed ``simulate`` with "TypeError: unhashable type"."""
    arrays = dataclasses.replace(M, parameters=[dataclasses.replace(p, bounds=np.array(p.bounds))
                                                for p in M.parameters])
    assert all(type(p.bounds) is tuple and all(type(b) is float for b in p.bounds) for p in arrays.parameters)
    assert arrays == M and hash(arrays) == hash(M)
    sim = pkpd.simulate(arrays, Regimen([Bolus(0.0, Dose(40, "mg"), "iv")]), [0.0, 10.0])
    np.testing.assert_allclose(sim.outputs["conc"][0], [4.0, 4.0 * np.exp(-1.0)], rtol=1e-6)
    first = M.parameters[0]
    lo, hi = first.bounds
    for bounds in ("12", {lo, hi}, {lo: 0, hi: 1}, (b for b in (lo, hi)), (lo,), (lo, hi, hi)):
        with pytest.raises(pkpd.errors.ModelFileError) as err:
            dataclasses.replace(M, parameters=[dataclasses.replace(first, bounds=bounds)] + list(M.parameters[1:]))
        assert f"[parameters.{first.name}] bounds: bounds must be two numbers [low, high]; got " in str(err.value)


# ============================================================================================ seed 51
# From the twenty-seventh sample (``benchmarks/mutation.py endpoints --sample 40 --seed 51``,
# ``benchmarks/results/mutation/endpoints-seed51.json``): each test seen to fail with its survivor applied by hand.
def test_a_negative_binomial_dispersion_given_as_numeric_text_or_objects_is_read_as_numbers():
    """``dispersion`` is an array_like converted as numpy converts an array_like to float64, as the counts and the
    means are: alpha = 0.5 given as the text "0.5" (a table read as text) or as an object array (a pandas column of
    mixed origin) is the number 0.5. NB2 with mu = 2 and alpha = 0.5 is scipy's nbinom(n = 1/alpha = 2, p = 1/(1 +
    alpha mu) = 1/2): P(0) = 1/4 and P(3) = C(4, 3) / 32 = 1/8 (the docstring's example), d/dmu = y/mu - (y + 1/alpha)
    alpha / (1 + alpha mu) = -1/2 and 1/4, and d/dalpha the central difference of scipy's log-pmf (kills
    count_log_likelihood__mutmut_52, ``np.asarray(dispersion, dtype=None)``: the text stayed text and 1 / alpha raised
    a TypeError, "ufunc 'divide' not supported"; the objects stayed objects and gammaln raised one)."""
    y, mu = np.array([0.0, 3.0]), np.array([2.0, 2.0])
    want = np.log([0.25, 0.125])
    g_a = _central(lambda a: stats.nbinom.logpmf(y, 1.0 / a, 1.0 / (1.0 + a * mu)), 0.5)
    for alpha in (["0.5", "0.5"], "0.5", np.array([0.5, 0.5], dtype=object)):
        np.testing.assert_allclose(ep.count_log_likelihood(y, mu, alpha), want, rtol=1e-12)
        ll, d_mu, d_a = ep.count_log_likelihood(y, mu, alpha, gradient=True)
        np.testing.assert_allclose(ll, want, rtol=1e-12)
        np.testing.assert_allclose(d_mu, [-0.5, 0.25], rtol=1e-12)
        np.testing.assert_allclose(d_a, g_a, rtol=1e-6)
        assert ll.dtype == d_mu.dtype == d_a.dtype == np.float64


def test_a_hazard_so_small_that_the_whole_follow_up_meets_the_stopping_rule_puts_events_at_e_over_lam(monkeypatch):
    """As in seed 46's test above, a constant hazard lam has H(t) = lam t and the event of a target E is at T = E / lam
    (the exponential's inverse CDF). With lam = 1e-12/h (``event`` without a dose: h0) H stays below 3.2e-11 over the
    whole follow-up [0, 32] h (grid intervals of 1 h), so every time of the follow-up, and beyond it up to 100 h,
    meets the stopping rule |H - E| <= 1e-10 and the search ends at its first point: the grid's linear interpolation
    of H, exact for a linear H, is T itself: 0.1, 12.25 and 30.875 h for E = 1e-13, 1.225e-11 and 3.0875e-11, inside
    the follow-up; a fourth subject (E = 1) censored at 32 h (kills _locate__mutmut_27, ``(hi + lo)`` for the width
    ``(hi - lo)`` of the grid interval in the first search point lo + w (hi - lo): 18.25 h instead of 12.25 h, and
    83.375 h, after the end of follow-up, instead of 30.875 h; the first interval, lo = 0, was unchanged)."""
    lam = 1e-12
    o = _constant_hazard_outcomes(monkeypatch, lam, [1e-13, 1.225e-11, 3.0875e-11, 1.0])
    assert o["ID"].tolist() == [1, 2, 3, 4] and o["DV"].tolist() == [1.0, 1.0, 1.0, 0.0]
    assert np.all(o["TIME"].to_numpy() <= 32.0)
    np.testing.assert_allclose(o["TIME"], [1e-13 / lam, 1.225e-11 / lam, 3.0875e-11 / lam, 32.0], rtol=1e-9)


def test_draw_outcomes_given_whole_number_times_as_integers_records_them_as_the_float_times_they_are(monkeypatch):
    """``draw_outcomes`` (in ``pkpd.outcomes.__all__``) records assessments at the given times in the model's time unit
    as float numbers, the dtype of ``simulate``'s time axis: the times 0, 12 and 24 h given as an int array are the
    times 0.0, 12.0 and 24.0 h, so the response, grade and count records (no time-to-event output, whose float times
    would upcast the column) are those of the float times, same seed, TIME float64 (kills
    draw_outcomes__mutmut_61, ``np.asarray(times, dtype=None)``: the default assessment times kept the ints, a TIME
    column of int64)."""
    import pkpd.outcomes as po

    run = dict(params={"b0": np.array([-0.5, 0.5])}, seed=6, outcomes=["resp", "grade", "flares", "episodes"])
    regimen = Regimen([Bolus(0.0, Dose(40, "mg"), "iv")])
    want = pkpd.simulate(M, regimen, [0.0, 12.0, 24.0], **run).outcomes
    assert want["TIME"].dtype == np.float64 and len(want) == 24
    assert want["TIME"].tolist() == [0.0, 0.0, 0.0, 0.0, 12.0, 12.0, 12.0, 12.0, 24.0, 24.0, 24.0, 24.0] * 2
    draw = po.draw_outcomes

    def with_int_times(*args, times, **kwargs):
        whole = np.asarray(times).astype(np.int64)
        assert np.array_equal(whole, times)
        return draw(*args, times=whole, **kwargs)

    monkeypatch.setattr(po, "draw_outcomes", with_int_times)
    got = pkpd.simulate(M, regimen, [0.0, 12.0, 24.0], **run).outcomes
    pd_testing.assert_frame_equal(got, want)


def test_a_complex_end_of_follow_up_is_refused():
    """follow_up is a real time [model time unit]: a numpy complex scalar is refused naming it (``float()`` of one
    drops the imaginary part with only a ComplexWarning, so ``5+2j`` h was silently a 5 h follow-up)."""
    with pytest.raises(pkpd.PkpdError) as info:
        pkpd.simulate(M, Regimen.single(Dose(40, "mg")), [0.0, 10.0], seed=1, outcomes=["event"],
                      follow_up=np.complex128(5 + 2j))
    assert str(info.value) == ("follow_up: the end of follow-up must be a finite time > 0 [model time unit]; got "
                               "np.complex128(5+2j)")


# ============================================================================================ seed 52
# From the twenty-eighth sample (``benchmarks/mutation.py endpoints --sample 40 --seed 52``,
# ``benchmarks/results/mutation/endpoints-seed52.json``): each test seen to fail with its survivor applied by hand.
@pytest.mark.parametrize(("mean", "shown"), [("r0 * nosuch + 1", "unknown name 'nosuch' in 'r0 * nosuch + 1'."),
                                             ("m0 * t0", "unknown name 't0' in 'm0 * t0'. Did you mean 't'?"),
                                             ("m0 * +", "syntax error in 'm0 * +': invalid syntax (column 0)")])
def test_a_count_mean_with_an_unknown_name_or_bad_syntax_is_refused_naming_the_key_mean(mean, shown):
    """A count's mean is parsed before its unit is found: an unknown name (with the did-you-mean hint) or a syntax
    error is refused with the parser's whole message, naming the file, the section and the key ``mean``, as every
    other expression of a model file (guards check_trees: seed 52's survivor _149, the key passed to the parse of the
    mean as "XXmeanXX", named a key the model has not)."""
    err = _refused(pkpd.Output("n", type="count", mean=mean))
    assert type(err) is ModelFileError
    assert str(err) == f"{MODEL_FILE} [outputs.n] mean: {shown}"
    assert (err.file, err.section, err.key) == (str(MODEL_FILE), "outputs.n", "mean")


@pytest.mark.parametrize(("unit", "power", "log10_factor"), [("mg/kg", 60, -360.0), ("mg/g", 120, -360.0)])
def test_a_dimensionless_count_mean_whose_conversion_factor_no_double_holds_is_refused_naming_the_key(unit, power,
                                                                                                      log10_factor):
    """A count's mean of unit 1 is the expected count of a record, converted to 1: m0 q^60 with q in mg/kg (1e-6) or
    m0 q^120 with q in mg/g (1e-3) has the factor 1e-360 to 1, less than the smallest double (4.9e-324), so the check
    refuses it and says why, as for a rate (seed 43's test): the same dimension (none), a factor out of the range of
    a floating-point number, naming the file, the section and the key ``mean`` (guards check_trees: seed 52's
    survivor _181, the key passed as None to the conversion of a dimensionless mean, the check that finds the factor:
    the message lost "mean" and the error its key)."""
    assert power * np.log10({"mg/kg": 1e-6, "mg/g": 1e-3}[unit]) == pytest.approx(log10_factor)
    assert log10_factor < np.log10(np.finfo(float).smallest_subnormal)
    out = pkpd.Output("n", type="count", mean=f"m0 * q ** {power}")
    with pytest.raises(UnitError) as info:
        dataclasses.replace(M, parameters=M.parameters + (pkpd.Parameter("q", 1.0, unit),), outputs=(out,))
    err = info.value
    num, den = unit.split("/")
    assert str(err) == (f"{MODEL_FILE} [outputs.n] mean: cannot convert {num} ** {power} / {den} ** {power} to 1: the "
                        "units have the same dimension (none), but the conversion factor between them is out of the "
                        "range of a floating-point number")
    assert (err.file, err.section, err.key) == (str(MODEL_FILE), "outputs.n", "mean")


def test_an_event_where_the_cumulative_hazard_jumps_is_located_by_bisection_to_the_stopping_width(monkeypatch):
    """Where H(t) - E cannot come within the location tolerance (H jumps across E, the limit of an ever steeper
    onset of the hazard), the search bisects until its bracket is at most 1e-13 max(1, |t|) wide and returns the
    point it then evaluates, the bracket's midpoint: within 5e-14 of the jump for an event before t = 1. Here H is 0
    before t* and 2 from t* on (h = 0, so every Newton step is infinite and the search bisects), E = 1 in the grid
    bracket [0, 1] h (H = 0 and 2, the linear start 0.5 h, the midpoint). The brackets are the dyadic intervals of
    width 2^-i; the first no wider than 1e-13 is 2^-44 = 5.7e-14 wide. With t* = (m + 0.01) 2^-43, m = round(0.3
    2^43), its midpoint (2 m + 0.5) 2^-44 is 0.48 2^-44 = 2.7e-14 from t* (guards _locate: seed 52's survivor _82,
    ``np.maximum(2.0, np.abs(t))``: the search stopped at the bracket 2^-43 = 1.1e-13 wide, 2e-13 being allowed below
    t = 2, and returned (m + 0.5) 2^-43, 0.49 2^-43 = 5.6e-14 from t*)."""
    import pkpd.outcomes as po

    m = round(0.3 * 2.0**43)
    jump = (m + 0.01) * 2.0**-43

    def step(cm, q, y0, events, t0, tt, settings, rows, *, states=False):
        t = np.asarray(tt, dtype=float)[:, 0]
        return np.stack([np.where(t < jump, 0.0, 2.0), np.zeros_like(t)], axis=-1)[:, None, :]   # outputs H, h

    monkeypatch.setattr(po, "_solve", step)
    t = po._locate(None, None, None, None, None, None, np.arange(1), 0, 1, np.zeros(1), np.array([1.0]),
                   np.array([0.0]), np.array([1.0]), np.array([0.0]), np.array([2.0]))
    assert abs(t[0] - jump) <= 0.5e-13
    assert t.tolist() == [(2 * m + 0.5) * 2.0**-44]


@pytest.mark.parametrize("flags", [np.array([0, 1, 0]), [0, 1, 0], np.array([0, 3, 0], dtype=np.int32)])
def test_draw_outcomes_reads_skip_flags_given_as_integers_as_the_flags_they_are(monkeypatch, flags):
    """``draw_outcomes`` (in ``pkpd.outcomes.__all__``) gives no record to the subjects flagged in ``skip`` (a failed
    solve), an array_like of flags read as numpy reads one as bool: flags given as the integers 0 and 1 (or a
    solver's status codes, nonzero for a failure) are the flags False and True, so subject 2 gets no record and the
    records of the others are those of the boolean flags (the same draws, same seed), the frames compared whole
    (guards draw_outcomes: seed 52's survivor _46, ``~np.asarray(skip, dtype=None)``: the integers were inverted bit
    by bit, ~0 = -1 and ~1 = -2, both true, so the flagged subject got its response and count records, and its
    drawn values took the others' random numbers)."""
    import pkpd.outcomes as po

    draw = po.draw_outcomes
    run = dict(params={"h0": np.full(3, 0.02)}, seed=4, outcomes=["event", "resp", "flares"])
    regimen = Regimen.single(Dose(40, "mg"))

    def with_skip(given):
        def patched(*args, skip=None, **kwargs):
            assert not np.any(skip)
            return draw(*args, skip=given, **kwargs)
        monkeypatch.setattr(po, "draw_outcomes", patched)
        return pkpd.simulate(M, regimen, [0.0, 10.0, 50.0], **run).outcomes

    want = with_skip(np.array([False, True, False]))
    assert sorted(set(want["ID"])) == [1, 3]
    assert want.groupby("output").size().to_dict() == {"event": 2, "flares": 6, "resp": 6}
    got = with_skip(flags)
    pd_testing.assert_frame_equal(got, want)


# ============================================================================================ seed 53
# From the twenty-ninth sample (``benchmarks/mutation.py endpoints --sample 40 --seed 53``,
# ``benchmarks/results/mutation/endpoints-seed53.json``): each test seen to fail with its survivor applied by hand.
def test_the_outcome_draws_solve_only_the_outputs_they_read_within_the_memory_limit(monkeypatch):
    """The binary, ordinal and count draws read the outputs of the engine model at the assessment times, not its
    states: their solve keeps the outputs only, so the result-size check counts those and a memory limit that holds
    them does not refuse the draws. The engine model of this file has 21 outputs (the 9 declared; the hazard and the
    cumulative hazard of each of the 3 time-to-event outputs; the 3 cumulative logits of ``grade``; the rates of
    ``flares`` and ``flares_nb``; the dispersion of ``flares_nb``) and 7 states (A, AUC; 3 cumulative hazards; 2
    expected counts). The real limit ($PKPD_MAX_MEMORY_GB) is consulted only for results of 256 MiB or more, so here
    every size check without a limit of its own gets the limit of 3 subjects x 4 times x 21 outputs: 8 x 3 x 4 x 21
    + 16 x 4 = 2080 bytes. The responses drawn under it are those drawn without it, same seed (guards _solve: seed
    53's survivor _29, ``keep_states=states`` dropped, so the states were kept, allocated and counted too: 28
    columns, 2752 bytes, and the draws were refused "this simulation would need ... GB")."""
    import pkpd.simulation as ps

    run = dict(params={"b0": np.array([-1.0, 0.0, 1.0])}, seed=3, outcomes=["resp"], states=False)
    regimen = Regimen.single(Dose(40, "mg"))
    times = [0.0, 6.0, 12.0, 24.0]
    want = pkpd.simulate(M, regimen, times, **run).outcomes
    assert len(want) == 12
    check = ps.check_result_size
    limited = []

    def with_a_limit(n_subjects, n_times, n_columns, limit=None):
        if limit is None:
            limited.append((n_subjects, n_times))
            limit = 8.0 * 3 * 4 * 21 + 16.0 * 4
        return check(n_subjects, n_times, n_columns, limit)

    monkeypatch.setattr(ps, "check_result_size", with_a_limit)
    got = pkpd.simulate(M, regimen, times, **run).outcomes
    assert limited == [(3, 4)]
    pd_testing.assert_frame_equal(got, want)
