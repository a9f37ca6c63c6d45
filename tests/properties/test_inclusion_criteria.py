"""Inclusion criteria of virtual populations over random categorical covariates (issue 20, rule 12).

A range criterion ``(lower, upper)`` is inclusive at both ends, and ``None`` leaves an end open: a subject whose
covariate equals a bound is included. The properties hold for every categorical distribution and every pair of bounds
drawn from its categories.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pkpd.population import Categorical, virtual_population

categories = st.lists(st.integers(min_value=0, max_value=100), min_size=2, max_size=5, unique=True).map(sorted)


def uniform(values) -> Categorical:
    return Categorical({v: 1 / len(values) for v in values})


@settings(max_examples=25, deadline=None)
@given(categories, st.integers(min_value=0, max_value=2**32 - 1))
def test_bounds_equal_to_the_extreme_categories_reject_nobody(values, seed):
    # every category is inside [min, max], the extremes included: nobody may be rejected (with >= 256 candidates
    # and each category drawn with probability >= 1/5, both extremes are drawn)
    pop = virtual_population(20, {"AGE": uniform(values)}, criteria={"AGE": (values[0], values[-1])}, seed=seed)
    assert pop.n_rejected == 0
    assert set(pop["AGE"]) <= set(values)


@settings(max_examples=25, deadline=None)
@given(categories, st.data())
def test_kept_subjects_lie_within_the_inclusive_range(values, data):
    lower = data.draw(st.sampled_from([None, *values]), label="lower")
    upper = data.draw(st.sampled_from([None, *[v for v in values if lower is None or v >= lower]]), label="upper")
    pop = virtual_population(200, {"AGE": uniform(values)}, criteria={"AGE": (lower, upper)},
                             seed=data.draw(st.integers(0, 2**32 - 1), label="seed"))
    allowed = {v for v in values if (lower is None or v >= lower) and (upper is None or v <= upper)}
    assert set(pop["AGE"]) <= allowed
    assert pop.n_drawn - pop.n_rejected == len(pop)
    # every allowed category has probability >= 1/5 among 200 kept subjects (missing one: < 0.8^200 = 4e-20); the
    # bounds themselves (when they are categories) are therefore seen
    for bound in (lower, upper):
        if bound is not None:
            assert bound in set(pop["AGE"])


def test_an_age_of_exactly_18_passes_18_to_65():
    pop = virtual_population(100, {"AGE": Categorical({18: 0.5, 40: 0.5})}, criteria={"AGE": (18, 65)}, seed=1)
    assert pop.n_rejected == 0 and 18 in set(pop["AGE"])
    pop = virtual_population(100, {"AGE": Categorical({65: 0.5, 70: 0.5})}, criteria={"AGE": (18, 65)}, seed=1)
    assert set(pop["AGE"]) == {65} and pop.n_rejected > 0
