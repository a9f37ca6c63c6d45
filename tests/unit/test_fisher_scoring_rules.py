"""The rules of FO's Fisher scoring (:mod:`pkpd.estimation.fisher_scoring`), each on a small synthetic problem whose
answer is known in closed form (a quadratic, or a one-dimensional objective with a deliberately wrong information).

Section "seed 23": the survivors of the first mutation sample of ``fo_scoring`` (mutmut, seed 23, 40 of 688
mutants, 2026-12-06); each test names the mutants it kills, each seen to fail with the mutant applied by hand.
Section "seed 25": the survivors of the second, independent sample (seed 25, 40 of 688), the same way.
Section "seed 26": the survivors of the third, independent sample (seed 26, 40 of 700, issue 20), the same way.
Section "seed 27": the survivors of the fourth, independent sample (seed 27, 40 of 700, issue 20), the same way.
Section "seed 28": the survivors of the fifth, independent sample (seed 28, 40 of 700, issue 20), the same way.
Section "seed 31": the survivor of the eighth, independent sample (seed 31, 40 of 714, issue 20), the same way,
with the twin boundary of its rule (the stationary stop's ``moved <= xtol``).
Section "seed 32": the survivors of the ninth, independent sample (seed 32, 40 of 714, issue 20), the same way.
Section "seed 33": the survivors of the tenth, independent sample (seed 33, 40 of 714, issue 20), the same way.
Section "seed 34": two of the survivors of the eleventh, independent sample (seed 34, 40 of 714, issue 20), the same
way (the third, in ``_solve_psd``, is equivalent: docs/testing.md).
Section "seed 35": the survivors of the twelfth, independent sample (seed 35, 40 of 714, issue 20), the same way.
Section "seed 36": two of the survivors of the thirteenth, independent sample (seed 36, 40 of 714, issue 20), the
same way (the other two, in ``_bounded_step`` and ``_fo_information.x_jacobian``, are equivalent: docs/testing.md).
Section "seed 37": two of the survivors of the fourteenth, independent sample (seed 37, 40 of 714, issue 20), the
same way (the other two, in ``_solve_psd`` and ``_fo_information.information_from_psi``, are equivalent:
docs/testing.md).
Section "seed 38": the survivor of the fifteenth, independent sample (seed 38, 40 of 714, issue 20), the same way
(the default ``xtol``).
Section "seed 39": three of the survivors of the sixteenth, independent sample (seed 39, 40 of 714, issue 20), the
same way (the other two, in ``_fo_information.fo_information`` and ``information_from_psi``, are equivalent:
docs/testing.md).
Section "seed 41": the survivor of the eighteenth, independent sample (seed 41, 40 of 714, issue 20), the same way
(a typical value on its natural scale with no covariate effect).
Section "seed 43": the defect that the survivor of the twentieth, independent sample (seed 43, 40 of 714, issue 20),
in ``_solve_psd``, showed (an information that is not n x n is refused by name); the survivor itself is equivalent
once it is: docs/testing.md.
Section "seed 45": the defect that a survivor of the twenty-second, independent sample (seed 45, 40 of 730, issue 20),
in ``_solve_psd``, showed (a gradient of n entries that is not a vector is refused by name); the survivor itself is
equivalent once it is, and so is the sample's other survivor: docs/testing.md.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from pkpd.estimation._fo_information import fo_information, information_from_psi
from pkpd.estimation.fisher_scoring import _bfgs, _solve_psd, fisher_scoring

INF = np.inf
A2 = np.array([[2.0, 1.0], [1.0, 2.0]])      # a coupled quadratic's Hessian (and its exact information)


def _quadratic(A: np.ndarray, b: np.ndarray, points: list | None = None):
    """``0.5 x'Ax - b'x`` with its gradient and (exact) information; records the points evaluated."""
    def fun(x):
        if points is not None:
            points.append(np.array(x, dtype=float))
        return 0.5 * x @ A @ x - b @ x, A @ x - b, A
    return fun


# ------------------------------------------------------------------------------------------------------ seed 23
def test_a_parameter_at_its_lower_bound_with_zero_gradient_is_free_to_move_inwards():
    """Held at a bound is only a parameter whose gradient pushes outward (strictly): with g = 0 at the lower bound
    the coupled Newton step moves it inside, straight to the optimum (1, 0) of
    0.5 x'Ax - (2, 1)'x from (0, 2). Kills ``x_fisher_scoring__mutmut_51`` (g >= 0 holds it there: two
    iterations)."""
    fun = _quadratic(A2, np.array([2.0, 1.0]))
    x0 = np.array([0.0, 2.0])
    assert fun(x0)[1][0] == 0.0                                          # on the bound, no outward push
    res = fisher_scoring(fun, x0, np.array([0.0, -INF]), np.full(2, INF))
    assert res.converged is True
    assert res.n_iter == 1
    np.testing.assert_allclose(res.x, [1.0, 0.0], atol=1e-14)


def test_the_trust_radius_caps_a_step_shorter_than_one():
    """``max_step`` is the largest change of a parameter in one step: the Newton step 0.8 of 0.5 (x - 0.8)^2 is cut
    to 0.5 with ``max_step=0.5``. Kills ``x_fisher_scoring__mutmut_129`` (steps below 1 uncapped)."""
    fun = _quadratic(np.eye(1), np.array([0.8]))
    res = fisher_scoring(fun, np.zeros(1), np.full(1, -INF), np.full(1, INF), max_step=0.5, max_iter=1)
    np.testing.assert_allclose(res.x, [0.5], rtol=1e-14)
    assert res.converged is False
    assert res.n_iter == 1
    assert res.message == "Fisher scoring: 1 iterations without convergence"


def test_a_full_step_to_a_bound_feeds_the_secant_correction():
    """f = (x - 1)^2 on x >= 0 from x = 3, with a wrong information 0.5 (the true curvature is 2): the scoring step
    -8 goes to the bound 0 (a full, uncapped step), whose gradient change (-6 over -3) gives the BFGS model the
    true curvature 2, so the next step lands on the optimum 1 exactly and the decrement vanishes at iteration 2.
    Kills ``x_fisher_scoring__mutmut_130`` (the step to the bound counted as capped: no secant pair, the next
    step -g/0.5 = 4 overshoots and backtracks)."""
    def fun(x):
        return float((x[0] - 1.0) ** 2), np.array([2.0 * (x[0] - 1.0)]), np.array([[0.5]])
    res = fisher_scoring(fun, np.array([3.0]), np.zeros(1), np.full(1, INF))
    assert res.converged is True
    assert res.n_iter == 2
    np.testing.assert_allclose(res.x, [1.0], atol=1e-14)


def test_a_stall_returns_the_start_with_its_information():
    """No trial point can be evaluated (None): the iteration stops at once and reports a stall, returning the
    starting point with its objective, gradient and information. Kills ``x_fisher_scoring__mutmut_212`` (the
    information dropped from the result: a TypeError, or shifted fields)."""
    H = np.array([[3.0]])

    def fun(x):
        return (1.5 * x[0] ** 2, 3.0 * x, H) if x[0] == 1.0 else None
    res = fisher_scoring(fun, np.array([1.0]), np.full(1, -INF), np.full(1, INF))
    assert res.converged is False
    assert res.n_iter == 0
    assert res.message == ("Fisher scoring stalled: no step along the scoring direction decreases the "
                           "objective")
    assert res.x.tolist() == [1.0] and res.f == 1.5 and res.gradient.tolist() == [3.0]
    assert res.information is H


def test_the_stationary_stop_is_a_convergence():
    """From x = 0.004 on 0.5 x^2 the decrement (1.6e-5) is above ``tol`` = 1e-5, but the step (0.004 <= xtol =
    0.01) and the objective's change (8e-6 <= tol) are not: the iteration stops as stationary after one iteration,
    converged. Kills ``x_fisher_scoring__mutmut_262`` (converged None) and ``_268`` (the iteration count dropped:
    shifted fields)."""
    fun = _quadratic(np.eye(1), np.zeros(1))
    res = fisher_scoring(fun, np.array([0.004]), np.full(1, -INF), np.full(1, INF), xtol=0.01)
    assert res.converged is True
    assert res.n_iter == 1
    assert res.message == "Fisher scoring: parameters and objective stationary after 1 iterations"
    np.testing.assert_allclose(res.x, [0.0], atol=1e-15)
    assert res.information.tolist() == [[1.0]]


def test_a_log_standard_deviation_stepping_up_is_not_sent_to_its_bound():
    """Only a decrease of the variance v = exp(2x) to below its floor sends it to the lower bound: the step +0.6
    (v(1 + 2s) = 2.2 v) of 0.5 (x - 0.6)^2 is taken as it is, the only point evaluated after the start. Kills
    ``x__bounded_step__mutmut_33`` (1 - 2s <= floor: a trial at the bound -10 first)."""
    points: list = []
    fun = _quadratic(np.eye(1), np.array([0.6]), points)
    res = fisher_scoring(fun, np.zeros(1), np.full(1, -10.0), np.full(1, INF), log_variance=np.array([True]))
    assert res.converged is True and res.n_iter == 1
    np.testing.assert_allclose(np.concatenate(points), [0.0, 0.6], rtol=1e-15)


def test_a_step_past_the_upper_bound_holds_it_there_and_solves_the_rest_again():
    """0.5 x'Ax - (3, 0)'x from 0 with x1 <= 0.5: the Newton step (2, -1) leaves the box, so x1 goes to 0.5 and
    x2 is solved again with it held there: x2 = -x1/2 = -0.25 (the constrained optimum, reached in one
    iteration). Kills ``x__bounded_step__mutmut_47`` (no re-solve: x2 = -1) and ``_54`` (the held x1 unclipped in
    the re-solve: x2 = -1)."""
    fun = _quadratic(A2, np.array([3.0, 0.0]))
    res = fisher_scoring(fun, np.zeros(2), np.full(2, -INF), np.array([0.5, INF]), max_iter=1)
    np.testing.assert_allclose(res.x, [0.5, -0.25], rtol=1e-14)
    res = fisher_scoring(fun, np.zeros(2), np.full(2, -INF), np.array([0.5, INF]))
    assert res.converged is True and res.n_iter == 1
    np.testing.assert_allclose(res.x, [0.5, -0.25], rtol=1e-14)


def test_a_step_past_the_lower_bound_holds_it_there_and_solves_the_rest_again():
    """The mirror image: 0.5 x'Ax + (3, 0)'x with x1 >= -0.5 gives (-0.5, 0.25) in one iteration. Kills
    ``x__bounded_step__mutmut_47``."""
    fun = _quadratic(A2, np.array([-3.0, 0.0]))
    res = fisher_scoring(fun, np.zeros(2), np.array([-0.5, -INF]), np.full(2, INF), max_iter=1)
    np.testing.assert_allclose(res.x, [-0.5, 0.25], rtol=1e-14)


def test_bfgs_skips_a_pair_along_a_direction_of_zero_model_curvature():
    """A step s with s'Ms = 0 (M singular along it) carries no usable secant pair: the model stays M (not 0/0).
    Kills ``x__bfgs__mutmut_15`` (sMs >= 0: a NaN model)."""
    H = np.diag([1.0, 0.0])
    pairs = [(np.array([0.0, 1.0]), np.array([0.0, 1.0]))]              # y's = 1 > 0: only s'Ms rules it out
    with np.errstate(divide="ignore", invalid="ignore"):
        M = _bfgs(H, pairs)
    assert np.array_equal(M, H)


def test_bfgs_gives_the_secant_curvature_along_the_step():
    """The BFGS update of a positive definite model satisfies the secant equation M s = y."""
    s, y = np.array([1.0, -2.0]), np.array([0.5, -3.0])
    M = _bfgs(A2, [(s, y)])
    np.testing.assert_allclose(M @ s, y, rtol=1e-13)


def test_solve_psd_gives_no_step_along_a_direction_of_numerically_zero_information():
    """Two almost perfectly correlated parameters, H = [[1, 1 - e], [1 - e, 1]] with e = 1.5e-10 (eigenvalues
    2 - e and e, below 1e-10 of the largest): the solution of H s = (1, 0) keeps only the well-determined
    direction (1, 1)/sqrt(2), s = (1, 1) / (2 (2 - e)), instead of a component ~1/e along (1, -1). Kills
    ``x__solve_psd__mutmut_38`` (a threshold 1e-10 / 2 keeps the direction of e)."""
    e = 1.5e-10
    H = np.array([[1.0, 1.0 - e], [1.0 - e, 1.0]])
    s = _solve_psd(H, np.array([1.0, 0.0]))
    np.testing.assert_allclose(s, np.full(2, 1.0 / (2.0 * (2.0 - e))), rtol=1e-6)


def _linear_gaussian(q: int):
    """One subject, two observations of mean a (1, 2) and covariance s2 I + w G G' (G = (1, 1)', with q = 1; no
    random effect with q = 0), in the internal parameters x = (log a, log(s2)/2, log(w)/2): the FO inputs of
    ``fo_information`` and the expected Hessian of -2 log L written out (2 dmu' C^-1 dmu + tr(C^-1 dC C^-1 dC)
    by psi = (a, s2, w), then J' H J with J = diag(a, 2 s2, 2 w))."""
    a, s2, w = 1.5, 0.4, 0.7
    t, G = np.array([1.0, 2.0]), np.ones((2, q))
    C = s2 * np.eye(2) + w * G @ G.T
    Ci = np.linalg.inv(C)
    dmu = np.stack([t, np.zeros(2)], axis=1)                                  # (J, d): by a and s2
    dC = np.stack([np.zeros((2, 2)), np.eye(2)], axis=2)                      # (J, J, d)
    dmu_psi = [t, np.zeros(2)] + [np.zeros(2)] * q
    dC_psi = [np.zeros((2, 2)), np.eye(2)] + [G @ G.T] * q
    H_psi = np.array([[2.0 * u @ Ci @ v + np.trace(Ci @ P @ Ci @ Q) for v, Q in zip(dmu_psi, dC_psi)]
                      for u, P in zip(dmu_psi, dC_psi)])
    jac = np.array([a, 2.0 * s2, 2.0 * w])[:2 + q]
    A = np.zeros((1, 2, 2 + q))
    A[0, 0, 0], A[0, 1, 1] = jac[0], jac[1]
    B = np.zeros((2 + q, q, q))
    if q:
        B[2, 0, 0] = jac[2]
    inputs = dict(G=G[None], dmu=dmu[None], dC=dC[None], Ci=Ci[None], A=A, B=B)
    return inputs, H_psi, H_psi * np.outer(jac, jac)


def test_fo_information_of_a_linear_gaussian_model():
    """The expected Hessian of -2 log L of a linear Gaussian model, with and without a random effect (an empty
    Omega block), from ``fo_information`` and from ``information_from_psi`` (the compiled assembly's route), equals
    the closed form. (The sample's ``x_fo_information__mutmut_23``, ``B.shape[2]`` for ``B.shape[1]``, and
    ``x_information_from_psi__mutmut_16``, ``reshape(nx, -2)``, are equivalent: B is (n_x, q, q), and numpy reads
    any negative size as the unknown one; both pass this test.)"""
    for q in (1, 0):
        inputs, H_psi, expected = _linear_gaussian(q)
        np.testing.assert_allclose(fo_information(**inputs), expected, rtol=1e-12)
        np.testing.assert_allclose(information_from_psi(H_psi[None], inputs["A"], inputs["B"]), expected,
                                   rtol=1e-12)


# ------------------------------------------------------------------------------------------------------ seed 25
def test_a_parameter_at_its_upper_bound_with_zero_gradient_is_free_to_move_inwards():
    """The mirror image of the lower bound's rule: 0.5 x'Ax + (2, 1)'x from (0, -2) with x1 <= 0, where g = (0, -3):
    x1 on its bound without an outward push moves with the coupled Newton step, straight to the optimum (-1, 0).
    Kills ``x_fisher_scoring__mutmut_55`` (g <= 0 holds it at the upper bound: two iterations)."""
    fun = _quadratic(A2, np.array([-2.0, -1.0]))
    x0 = np.array([0.0, -2.0])
    assert fun(x0)[1][0] == 0.0
    res = fisher_scoring(fun, x0, np.full(2, -INF), np.array([0.0, INF]))
    assert res.converged is True
    assert res.n_iter == 1
    np.testing.assert_allclose(res.x, [-1.0, 0.0], atol=1e-14)


def test_the_result_after_max_iter_carries_the_last_point_with_its_objective_gradient_and_information():
    """Stopped by ``max_iter``: the result is the last point, with f, g = Ax - b and H there (0.5 (x - 0.8)^2 from 0
    with steps capped at 0.5: x = 0.5, f = 0.045, g = -0.3). Kills ``x_fisher_scoring__mutmut_278`` (the gradient
    None)."""
    fun = _quadratic(np.eye(1), np.array([0.8]))
    res = fisher_scoring(fun, np.zeros(1), np.full(1, -INF), np.full(1, INF), max_step=0.5, max_iter=1)
    assert res.converged is False and res.n_iter == 1
    np.testing.assert_allclose(res.x, [0.5], rtol=1e-14)
    assert res.f == pytest.approx(0.5 * 0.5 ** 2 - 0.8 * 0.5, rel=1e-14)
    np.testing.assert_allclose(res.gradient, [0.5 - 0.8], rtol=1e-14)
    assert res.information.tolist() == [[1.0]]


def test_a_large_increase_of_a_log_standard_deviation_is_taken_in_the_variance():
    """A log standard deviation x = log(v)/2 whose Newton step s is above 1 moves as the variance's Newton step,
    v (1 + 2s): from 0, the step 2 of 0.5 (x - 2)^2 is taken as 0.5 log(1 + 4) = 0.805 (the first point evaluated
    after the start). Kills ``x__bounded_step__mutmut_69`` (``model > 1 & x <= lower``: the step 2 in x)."""
    points: list = []
    fun = _quadratic(np.eye(1), np.array([2.0]), points)
    fisher_scoring(fun, np.zeros(1), np.full(1, -10.0), np.full(1, INF), log_variance=np.array([True]), max_iter=1)
    np.testing.assert_allclose(points[1], [0.5 * np.log(5.0)], rtol=1e-14)


def test_solve_psd_gives_no_step_to_a_parameter_without_information():
    """A parameter with zero information (its row and column of H zero) gets no step; the others solve their own
    block: H = [[2, 0, 1], [0, 0, 0], [1, 0, 2]], b = (3, 5, 0) gives (2, 0, -1). Kills ``x__solve_psd__mutmut_26``
    (``np.ix_(ok)``: the rows of the informative parameters with every column, a shape error)."""
    H = np.array([[2.0, 0.0, 1.0], [0.0, 0.0, 0.0], [1.0, 0.0, 2.0]])
    s = _solve_psd(H, np.array([3.0, 5.0, 0.0]))
    np.testing.assert_allclose(s, [2.0, 0.0, -1.0], rtol=1e-14, atol=1e-15)


# --- found from the nlme seed-26 sample --------------------------------------------------------------------------
def test_a_variance_heading_for_zero_reaches_its_bound_in_the_first_step():
    """3 exp(2 x0) + (x1 - 1)^2, x0 half the log of a variance bounded below by -12: the Newton step in x0 is -1/2
    at any x0 (its information vanishes with the variance), i.e. v (1 + 2 (-1/2)) = 0 in the variance, so the first
    step puts x0 at its bound -12 exactly and x1 at its minimum 1, as documented ("go there at once"). The rounding
    of 1 + 2 (v_floor - 1) / 2 used to leave the step a hair short of the bound (-12 + 1.5e-6), so the trust radius
    (2) capped it and x1's step with it: the first trial was (-2, 1/6)."""
    points: list = []

    def fun(x):
        points.append(np.array(x, dtype=float))
        v = np.exp(2 * x[0])
        return 3 * v + (x[1] - 1) ** 2, np.array([6 * v, 2 * (x[1] - 1)]), np.diag([12 * v, 2.0])

    res = fisher_scoring(fun, np.zeros(2), np.array([-12.0, -INF]), np.array([5.0, INF]),
                         log_variance=np.array([True, False]))
    np.testing.assert_allclose(points[1], [-12.0, 1.0], rtol=1e-15, atol=0)
    assert res.converged
    np.testing.assert_allclose(res.x, [-12.0, 1.0], rtol=1e-12)


# ------------------------------------------------------------------------------------------------------ seed 26
def test_a_start_outside_the_box_is_moved_into_it_before_the_first_evaluation():
    """``x0`` is "moved into the box": 0.5 (x - 1)^2, defined only for x >= 0 (None below), from x0 = -3 with the
    bound x >= 0 is first evaluated at 0, then at the optimum 1 (one iteration); a start above the upper bound 2 is
    moved down to 2 the same way. Kills ``x_fisher_scoring__mutmut_17`` (the lower bound dropped from the clip: the
    start -3 is evaluated, None, a ValueError)."""
    points: list = []

    def fun(x):
        points.append(float(x[0]))
        return None if x[0] < 0.0 else (0.5 * (x[0] - 1.0) ** 2, np.array([x[0] - 1.0]), np.array([[1.0]]))
    for x0, lower, upper, first in ((-3.0, 0.0, INF, 0.0), (5.0, 0.0, 2.0, 2.0)):
        points.clear()
        res = fisher_scoring(fun, np.array([x0]), np.full(1, lower), np.full(1, upper))
        assert points == [first, 1.0]
        assert res.converged is True and res.n_iter == 1
        assert res.x.tolist() == [1.0]


def test_a_parameter_on_its_upper_bound_pushed_outward_is_held_there_although_the_coupled_step_moves_it_in():
    """Held at a bound is a parameter whose gradient pushes outward, whatever the coupled Newton step would do:
    0.5 x'Ax - (1, 3)'x from 0 with x1 <= 0, where g = (-1, -3) pushes x1 up; the joint step would go straight to
    the optimum (-1/3, 5/3) (x1 inward), but x1 is held at 0 and x2 solved alone, 2 x2 = 3: the first trial is
    (0, 3/2). There g1 = 3/2 - 1 > 0 frees x1 and the next step reaches (-1/3, 5/3), converged after 2
    iterations. Kills ``x_fisher_scoring__mutmut_54`` (x > upper for x >= upper: x1 free on its bound, the joint
    step taken, 1 iteration)."""
    points: list = []
    fun = _quadratic(A2, np.array([1.0, 3.0]), points)
    res = fisher_scoring(fun, np.zeros(2), np.full(2, -INF), np.array([0.0, INF]))
    np.testing.assert_allclose(points[1], [0.0, 1.5], rtol=1e-15, atol=0)
    assert res.converged is True and res.n_iter == 2
    np.testing.assert_allclose(res.x, [-1.0 / 3.0, 5.0 / 3.0], rtol=1e-14)


def test_a_result_converged_by_the_newton_decrement_carries_the_objective():
    """Stopped by the Newton decrement: the result carries x, f, g and H there and the whole message. 0.5 (x - 1)^2
    from 0 has the decrement g^2/H = 1: with ``tol=2`` it converges at once (x = 0, f = 0.5, g = -1, "Newton
    decrement 1 below 2 after 0 iterations"); with the default tol after one iteration at x = 1, f = 0. Kills
    ``x_fisher_scoring__mutmut_83`` (the objective None in that result)."""
    def fun(x):
        return float(0.5 * (x[0] - 1.0) ** 2), np.array([x[0] - 1.0]), np.array([[1.0]])
    res = fisher_scoring(fun, np.zeros(1), np.full(1, -INF), np.full(1, INF), tol=2.0)
    assert res.converged is True and res.n_iter == 0
    assert res.message == "Fisher scoring: Newton decrement 1 below 2 after 0 iterations"
    assert res.x.tolist() == [0.0] and res.f == 0.5 and res.gradient.tolist() == [-1.0]
    assert res.information.tolist() == [[1.0]]
    res = fisher_scoring(fun, np.zeros(1), np.full(1, -INF), np.full(1, INF))
    assert res.converged is True and res.n_iter == 1
    assert res.x.tolist() == [1.0] and res.f == 0.0


def test_a_rejected_step_is_followed_by_the_shortened_one_not_evaluated_again():
    """Each iteration costs one evaluation plus one per rejected trial point, each point once: (x - 1)^2 from 0
    with a wrong information 0.1 (the curvature is 2) gives the Newton step 20, capped at the trust radius 2;
    f(2) = 1 = f(0) fails the Armijo test, so the next point is that step times 1/4, x = 0.5 (f = 1/4, accepted),
    then 0.5 + 0.5 = 1 (radius max(0.5, 0.1)), the optimum: the points evaluated are 0, 2, 0.5, 1. Kills
    ``x_fisher_scoring__mutmut_175`` (the backtracking started at k = 0 without a bound in reach: the rejected
    point 2 evaluated twice)."""
    points: list = []

    def fun(x):
        points.append(float(x[0]))
        return float((x[0] - 1.0) ** 2), np.array([2.0 * (x[0] - 1.0)]), np.array([[0.1]])
    res = fisher_scoring(fun, np.zeros(1), np.full(1, -INF), np.full(1, INF))
    assert points == [0.0, 2.0, 0.5, 1.0]
    assert res.converged is True and res.n_iter == 2


def test_bfgs_takes_or_skips_a_pair_by_its_angle_not_by_the_length_of_the_step():
    """The curvature condition y's > 1e-12 |y| |s| is the cosine of the angle between y and s, free of the
    parameters' scale: a pair (c s, c y) of a short step (c = 1e-7, the size of ``xtol``) is used like any other,
    giving the secant equation M s = y; a pair with y almost perpendicular to s (cos 1e-13) is skipped, M = H, at
    any length (c = 10 here). Kills ``x__bfgs__mutmut_12`` (1e-12 |y| / |s|: the short pair skipped, M s = A s;
    the long perpendicular one used, M of size 1e13)."""
    s0, y0 = np.array([1.0, -2.0]), np.array([0.5, -3.0])
    for c in (1e-7, 1.0, 1e3):
        s, y = c * s0, c * y0
        np.testing.assert_allclose(_bfgs(A2, [(s, y)]) @ s, y, rtol=1e-12)
    s, y = 10.0 * np.array([1.0, 0.0]), 10.0 * np.array([1e-13, 1.0])
    assert np.array_equal(_bfgs(A2, [(s, y)]), A2)


# ------------------------------------------------------------------------------------------------------ seed 27
def test_a_step_to_the_lower_bound_is_evaluated_on_the_bound_not_a_rounding_below_it():
    """Every point evaluated lies in the box ``[lower, upper]``: 0.5 (x + 1)^2 on x >= 1e-20 from x = 1 has the
    Newton step -2, which leaves the box, so x goes to its bound 1e-20; in floating point 1 + (1e-20 - 1) = 0, below
    the bound, and the trial point is clipped back onto it. There g = 1 + 1e-20 pushes outward: converged after one
    iteration at 1e-20. Kills ``x_fisher_scoring__mutmut_182`` (the trial points clipped to the upper bound only:
    x = 0 evaluated and returned)."""
    points: list = []
    fun = _quadratic(np.eye(1), np.array([-1.0]), points)
    res = fisher_scoring(fun, np.ones(1), np.full(1, 1e-20), np.full(1, INF))
    assert [float(p[0]) for p in points] == [1.0, 1e-20]
    assert res.converged is True and res.n_iter == 1
    assert res.x.tolist() == [1e-20]


def test_the_trust_radius_doubles_after_a_capped_step_that_worked():
    """``max_step`` "doubles after a capped step that worked": 0.5 (x - 10)^2 from 0 with ``max_step=2`` steps 2
    (capped, radius 4), then 4 (capped, radius 8), then the full Newton step 4 to the optimum: the points evaluated
    are 0, 2, 6, 10, converged after 3 iterations. Kills ``x_fisher_scoring__mutmut_227`` (every accepted step, the
    first trial's too, sets the radius to the step taken: it stays 2, the points 0, 2, 4, 6, 8, 10)."""
    points: list = []
    fun = _quadratic(np.eye(1), np.array([10.0]), points)
    res = fisher_scoring(fun, np.zeros(1), np.full(1, -INF), np.full(1, INF), max_step=2.0)
    assert [float(p[0]) for p in points] == [0.0, 2.0, 6.0, 10.0]
    assert res.converged is True and res.n_iter == 3
    assert res.x.tolist() == [10.0]


def test_a_result_converged_as_stationary_carries_the_objective_gradient_and_information():
    """Stopped as stationary (see ``test_the_stationary_stop_is_a_convergence``): the result carries x, f, g and H
    of the last point. 0.5 x^2 + 3 from 0.004 with ``xtol=0.01`` steps to 0 (f = 3, g = 0, H = 1) and stops there.
    Kills ``x_fisher_scoring__mutmut_258`` (the objective None in that result)."""
    def fun(x):
        return float(0.5 * x[0] ** 2 + 3.0), x.copy(), np.eye(1)
    res = fisher_scoring(fun, np.array([0.004]), np.full(1, -INF), np.full(1, INF), xtol=0.01)
    assert res.message == "Fisher scoring: parameters and objective stationary after 1 iterations"
    assert res.converged is True and res.n_iter == 1
    assert res.x.tolist() == [0.0] and res.f == 3.0 and res.gradient.tolist() == [0.0]
    assert res.information.tolist() == [[1.0]]


def test_a_log_standard_deviation_is_sent_to_its_bound_only_below_the_variance_floor():
    """A decrease of a log standard deviation x = log(v)/2 goes to the bound only when the variance's Newton step,
    v (1 + 2s), falls to the floor exp(2 lower) or below, i.e. 1 + 2s <= exp(2 (lower - x)). From x = 1 with
    lower = -3, the step s = -0.495 of 0.5 (x - 0.505)^2 gives 1 + 2s = 0.01 > exp(-8) (a variance 0.01 e^2 = 0.074
    above the floor exp(-6) = 0.0025): it is taken in the variance, x = 1 + log(0.01)/2 = -1.303 (the first point
    evaluated, the trust radius ``max_step=5`` not reached). Kills ``x__bounded_step__mutmut_11`` (the floor
    exp(2 (lower + x)) = exp(-4) = 0.018 > 0.01: the step sent to the bound -3)."""
    points: list = []
    fun = _quadratic(np.eye(1), np.array([0.505]), points)
    fisher_scoring(fun, np.ones(1), np.full(1, -3.0), np.full(1, INF), log_variance=np.array([True]), max_step=5.0,
                   max_iter=1)
    np.testing.assert_allclose(points[1], [1.0 + 0.5 * np.log(0.01)], rtol=1e-13)


def test_a_variance_heading_for_zero_from_a_start_off_zero_reaches_its_bound_in_the_first_step():
    """The rule of ``test_a_variance_heading_for_zero_reaches_its_bound_in_the_first_step`` from x0 = 1 instead of 0
    (so that lower - x0 and lower + x0 differ): 3 exp(2 x0) + (x1 - 1)^2 with x0 >= -12 has the Newton step -1/2 in
    x0, a variance of 0, so the first step puts x0 at its bound -12 exactly (a step of -13) and x1 at its minimum 1;
    converged after one iteration. Kills ``x__bounded_step__mutmut_117`` (the step lower + x0 = -11, not at the bound,
    capped by the trust radius 2 with x1's: the first trial (-1, 2/11))."""
    points: list = []

    def fun(x):
        points.append(np.array(x, dtype=float))
        v = np.exp(2 * x[0])
        return 3 * v + (x[1] - 1) ** 2, np.array([6 * v, 2 * (x[1] - 1)]), np.diag([12 * v, 2.0])

    res = fisher_scoring(fun, np.array([1.0, 0.0]), np.array([-12.0, -INF]), np.array([5.0, INF]),
                         log_variance=np.array([True, False]))
    np.testing.assert_allclose(points[1], [-12.0, 1.0], rtol=1e-15, atol=0)
    assert res.converged is True and res.n_iter == 1
    np.testing.assert_allclose(res.x, [-12.0, 1.0], rtol=1e-15)


# ------------------------------------------------------------------------------------------------------ seed 28
def test_a_parameter_on_its_lower_bound_pushed_outward_by_a_small_gradient_is_held_there():
    """Held at its lower bound is a parameter whose gradient pushes outward (g > 0), however small, whatever the
    coupled Newton step would do: 0.5 x'Ax + (1/2, 3)'x from 0 with x1 >= 0 has g = (1/2, 3); the joint step would go
    straight to the optimum (2/3, -11/6) (x1 inward), but x1 is held at 0 and x2 solved alone, 2 x2 = -3: the first
    trial is (0, -3/2). There g1 = -3/2 + 1/2 < 0 frees x1 and the next step reaches (2/3, -11/6), converged after 2
    iterations. Kills ``x_fisher_scoring__mutmut_52`` (g > 1 for g > 0: x1 free on its bound, the joint step taken,
    1 iteration)."""
    points: list = []
    fun = _quadratic(A2, np.array([-0.5, -3.0]), points)
    res = fisher_scoring(fun, np.zeros(2), np.array([0.0, -INF]), np.full(2, INF))
    np.testing.assert_allclose(points[1], [0.0, -1.5], rtol=1e-15, atol=0)
    assert res.converged is True and res.n_iter == 2
    np.testing.assert_allclose(res.x, [2.0 / 3.0, -11.0 / 6.0], rtol=1e-14)


def test_a_variance_whose_newton_step_lands_exactly_on_its_floor_goes_to_its_bound_with_the_others():
    """The floor rule of ``test_a_log_standard_deviation_is_sent_to_its_bound_only_below_the_variance_floor`` holds
    with equality: a log standard deviation whose variance step 1 + 2s is exactly the floor exp(2 (lower - x)) is
    sent to its bound like one below it, in the same round as a parameter leaving the box (both held, nothing left
    to solve). 0.5 x'Ax + g'x from 0 with g = (-0.7759..., -5/2) (g1 chosen, in floating point, so that the joint
    step's 1 + 2 s1 equals exp(-1) exactly) and x1 >= -1/2 (log-variance), x2 <= 1/2: the joint step
    (-0.316, 1.408) takes x1's variance to its floor and x2 out of the box, so the first trial is (-1/2, 1/2), both
    bounds. Kills ``x__bounded_step__mutmut_39`` (< for <=: x1 not held, solved again with x2 held at 1/2,
    s1 = -(g1 + 1/2)/2 = 0.138 > 0, the first trial (0.138, 1/2))."""
    g = np.array([-0.7759095808785814, -2.5])
    lower, upper = np.array([-0.5, -INF]), np.array([5.0, 0.5])
    model = _solve_psd(A2, -g)
    assert 1.0 + 2.0 * model[0] == np.exp(2.0 * lower[0]) and model[1] > upper[1]      # the case holds
    points: list = []

    def fun(x):
        points.append(np.array(x, dtype=float))
        return 0.5 * x @ A2 @ x + g @ x, A2 @ x + g, A2
    fisher_scoring(fun, np.zeros(2), lower, upper, log_variance=np.array([True, False]), max_iter=1)
    assert points[1].tolist() == [-0.5, 0.5]


def test_bfgs_skips_a_pair_whose_gradient_did_not_change():
    """A pair whose gradient change y is 0 has no curvature along its step (y's = 0, not > 1e-12 |y| |s| = 0): it is
    skipped, M = H exactly (a BFGS update would divide by y's = 0). Kills ``x__bfgs__mutmut_8`` (>= for >: the pair
    used, 0/0 in M)."""
    s = np.array([1.0, -2.0])
    M = _bfgs(A2, [(s, np.zeros(2))])
    assert np.array_equal(M, A2)
    assert np.array_equal(_bfgs(A2, [(s, np.zeros(2)), (s, np.zeros(2))]), A2)


def test_a_variance_sent_to_its_floor_is_not_capped_by_the_trust_radius_when_x_plus_s_rounds_above_it():
    """3 exp(2x) from x = 1 with x >= -3.2913 (a log standard deviation whose variance heads for 0): the step to the
    bound is s = lower - x, but 1 + (-3.2913 - 1) rounds to -3.2912999999999997, a hair above the bound, so the test
    x + s <= lower missed it and the trust radius (2) capped the step: 1, -1, then the bound, 2 iterations. A step
    to the bound is recognised as s <= lower - x: one step, as with lower = -3.25 where the sum is exact (found by
    the fo_scoring seed-28 helper)."""
    points: list[float] = []

    def fun(x):
        points.append(float(x[0]))
        e = np.exp(2 * x[0])
        return 3 * e, np.array([6 * e]), np.array([[12 * e]])

    for lower in (-3.2913, -3.25):
        points.clear()
        res = fisher_scoring(fun, np.array([1.0]), np.array([lower]), np.array([np.inf]),
                             log_variance=np.array([True]))
        assert res.converged and res.n_iter == 1
        assert points[0] == 1.0 and points[1] == pytest.approx(lower, abs=1e-12) and len(points) == 2


# ------------------------------------------------------------------------------------------------------ seed 31
def _shifted_square_with_information_4(points: list):
    """0.5 (x - 4)^2 with a wrong information 4 (the curvature is 1), recording the points evaluated: from 0 the
    scoring step is -g/4 = 1, to x = 1, where f = 4.5 after 8 (a change of 3.5, a parameter change of 1, both exact in
    floating point); the decrement at 0 is g^2/4 = 4; at 1 the secant pair of that full step corrects the information
    to the true curvature 1 (exactly: 4 - 16/4 + 1/1), so the decrement there is 9 and the next step, 3, reaches the
    optimum 4 (uncapped with ``max_step=4``), where the decrement is 0."""
    def fun(x):
        points.append(float(x[0]))
        return 0.5 * (x[0] - 4.0) ** 2, np.array([x[0] - 4.0]), np.array([[4.0]])
    return fun


def test_the_stationary_stop_accepts_an_objective_change_equal_to_tol():
    """The stationary stop holds when the objective changed by at most ``tol`` (``abs(f_old - f) <= tol``, with the
    parameters moved by at most ``xtol``), the boundary included: on 0.5 (x - 4)^2 with information 4 from 0
    (``max_step=4``) the first step (1 <= xtol = 2) changes f by 3.5 = tol exactly (the decrement at 0, 4, is above
    tol), so the iteration stops there, at x = 1, stationary, after one iteration; with tol one ulp below 3.5 it goes
    on to the optimum 4 (the decrement at 1 is 9), converged there after two iterations. Kills
    ``x_fisher_scoring__mutmut_253`` (``< tol``: no stop at 1 with tol = 3.5 either, the points 0, 1, 4)."""
    points: list = []
    res = fisher_scoring(_shifted_square_with_information_4(points), np.zeros(1), np.full(1, -INF),
                         np.full(1, INF), tol=3.5, xtol=2.0, max_step=4.0)
    assert points == [0.0, 1.0] and 8.0 - 4.5 == 3.5                   # the case holds: one step, f changed by tol
    assert res.converged is True and res.n_iter == 1
    assert res.message == "Fisher scoring: parameters and objective stationary after 1 iterations"
    assert res.x.tolist() == [1.0] and res.f == 4.5
    points.clear()
    res = fisher_scoring(_shifted_square_with_information_4(points), np.zeros(1), np.full(1, -INF),
                         np.full(1, INF), tol=np.nextafter(3.5, 0.0), xtol=2.0, max_step=4.0)
    assert points == [0.0, 1.0, 4.0]
    assert res.converged is True and res.n_iter == 2 and res.x.tolist() == [4.0]


def test_the_stationary_stop_accepts_a_parameter_change_equal_to_xtol():
    """The twin boundary of the same rule: the parameters moved by at most ``xtol`` (``moved <= xtol``): on the
    same problem (``max_step=4``) with tol = 3.75 (between the objective's change 3.5 and the decrement 4 at 0) the
    first step moves x by 1 = xtol exactly, so the iteration stops at x = 1, stationary; with xtol one ulp below 1
    it goes on to the optimum 4 (the decrement at 1, 9, is above tol), converged there after two iterations
    (``moved < xtol`` would do that with xtol = 1 too)."""
    points: list = []
    res = fisher_scoring(_shifted_square_with_information_4(points), np.zeros(1), np.full(1, -INF),
                         np.full(1, INF), tol=3.75, xtol=1.0, max_step=4.0)
    assert points == [0.0, 1.0]
    assert res.converged is True and res.n_iter == 1
    assert res.message == "Fisher scoring: parameters and objective stationary after 1 iterations"
    assert res.x.tolist() == [1.0] and res.f == 4.5
    points.clear()
    res = fisher_scoring(_shifted_square_with_information_4(points), np.zeros(1), np.full(1, -INF),
                         np.full(1, INF), tol=3.75, xtol=np.nextafter(1.0, 0.0), max_step=4.0)
    assert points == [0.0, 1.0, 4.0]
    assert res.converged is True and res.n_iter == 2 and res.x.tolist() == [4.0]


# ------------------------------------------------------------------------------------------------------ seed 32
def _square_about(c: float, information: float, points: list):
    """0.5 (x - c)^2 with the information ``information`` (the curvature is 1), recording the points evaluated."""
    def fun(x):
        points.append(float(x[0]))
        return 0.5 * (x[0] - c) ** 2, np.array([x[0] - c]), np.array([[information]])
    return fun


def test_a_descent_step_far_from_the_origin_is_accepted():
    """Armijo's sufficient decrease compares the objective with f + 1e-4 g'(x_new - x), the change of x, wherever x
    lies: 0.5 (x - 10000.5)^2 with its exact information from 10000 (f = 1/8, g = -1/2) takes the Newton step 1/2,
    f = 0 <= 1/8 - 1/40000, straight to the optimum 10000.5, converged after one iteration (every number exact in
    floating point). Kills ``x_fisher_scoring__mutmut_197`` (``g'(x_new + x)``: the bound 1/8 - 1.000025 < 0, no
    trial point accepted, a stall at the start after 13 evaluations)."""
    points: list = []
    res = fisher_scoring(_square_about(10000.5, 1.0, points), np.array([10000.0]), np.full(1, -INF),
                         np.full(1, INF))
    assert points == [10000.0, 10000.5]
    assert res.converged is True and res.n_iter == 1
    assert res.x.tolist() == [10000.5] and res.f == 0.0
    assert res.message == "Fisher scoring: Newton decrement 0 below 1e-05 after 1 iterations"


def test_a_step_that_increases_the_objective_is_rejected_far_from_the_origin():
    """The other side of the same rule: a trial point where the objective increases is never accepted. 0.5 (x -
    c)^2, c = -19999.5, with a wrong information 1/8 from -20000 (f = 1/8, g = -1/2): the scoring step 4 is capped
    at the trust radius 2, to -19998, where f = 9/8 > 1/8 - 1e-4 (rejected); the plain step shortened by 1/4,
    4 x 1/2 x 1/4 = 1/2, reaches c, where f = 0 and g = 0: converged after one iteration, the objective never
    increased. Kills ``x_fisher_scoring__mutmut_197`` (``g'(x_new + x)``: the bound 1/8 + 1.9999 accepts f = 9/8
    at -19998, an increase, and the iteration stalls there)."""
    points: list = []
    res = fisher_scoring(_square_about(-19999.5, 0.125, points), np.array([-20000.0]), np.full(1, -INF),
                         np.full(1, INF))
    assert points == [-20000.0, -19998.0, -19999.5]
    assert res.converged is True and res.n_iter == 1
    assert res.x.tolist() == [-19999.5] and res.f == 0.0


def test_a_variance_sent_to_its_floor_moves_in_the_linear_model_by_half_the_relative_change_of_the_variance():
    """The step of the linear model for a log standard deviation x = log(v)/2 sent to its floor v_lower is the
    first-order change dv / (2 v) = (v_lower / v - 1) / 2 = (exp(2 (lower - x)) - 1) / 2, and a parameter coupled to
    it is solved again with it held there: B = [[1, 1/2], [1/2, 1]], g = (2, 0) at x = 0, x1 >= -3 a log standard
    deviation, x2 free: the joint step (-8/3, 4/3) takes the variance below 0 (1 + 2 s1 < 0), so x1 goes to its bound
    (the step -3) with the model step m1 = (exp(-6) - 1)/2, and x2 = -(g2 + B21 m1) / B22 = (1 - exp(-6))/4.
    Kills ``x__bounded_step__mutmut_69`` (1.5 for 0.5: m1 = 1.5 (exp(-6) - 1), x2's step three times as long)."""
    from pkpd.estimation.fisher_scoring import _bounded_step
    B = np.array([[1.0, 0.5], [0.5, 1.0]])
    g = np.array([2.0, 0.0])
    s, model = _bounded_step(B, g, np.zeros(2), np.array([-3.0, -INF]), np.full(2, INF), np.ones(2, dtype=bool),
                             np.array([True, False]))
    m1 = 0.5 * (np.exp(-6.0) - 1.0)
    assert model[0] == pytest.approx(m1, rel=1e-14)
    assert model[1] == pytest.approx(-(0.0 + 0.5 * m1) / 1.0, rel=1e-14)
    assert s[0] == -3.0
    assert s[1] == pytest.approx(0.25 * (1.0 - np.exp(-6.0)), rel=1e-14)


def test_the_newton_decrement_of_a_variance_sent_to_its_floor_is_that_of_its_linear_model_step():
    """The Newton decrement -g'm of a step that sends a variance to its floor uses the linear model's step m =
    (exp(2 (lower - x)) - 1) / 2: a log standard deviation at 0 (>= -1) with 0.5 (x + 1)^2 (f = 1/2, g = 1,
    information 1) has the Newton step -1, 1 + 2 (-1) < exp(-2), so m = (exp(-2) - 1)/2 and the decrement is
    (1 - exp(-2))/2 = 0.432: with tol = 0.5 the start is optimal, converged after 0 iterations, nothing but the
    start evaluated. Kills ``x__bounded_step__mutmut_69`` (1.5 for 0.5: the decrement 1.297 > tol, a step taken)."""
    points: list = []
    res = fisher_scoring(_square_about(-1.0, 1.0, points), np.zeros(1), np.array([-1.0]), np.full(1, INF),
                         log_variance=np.array([True]), tol=0.5)
    assert points == [0.0]
    assert res.converged is True and res.n_iter == 0 and res.x.tolist() == [0.0]
    assert res.message == "Fisher scoring: Newton decrement %.2g below 0.5 after 0 iterations" % (
        0.5 * (1.0 - np.exp(-2.0)))


# ------------------------------------------------------------------------------------------------------ seed 33
def test_a_step_to_the_upper_bound_beyond_the_trust_radius_goes_there_at_once():
    """A parameter whose step reaches its bound goes there at once, the upper bound as well as the lower one: the
    trust radius caps only the others ("the largest change of a parameter in one step, other than a move to a
    bound"). 0.5 (x - 5)^2 from 0 with x <= 3 and the trust radius 2: the Newton step 5 leaves the box, so the first
    trial is the bound 3 (not 2), accepted; there the gradient -2 pushes outward, the decrement is 0: converged after
    one iteration, the points 0 and 3 alone evaluated. Kills ``x_fisher_scoring__mutmut_107`` (``log_variance &``
    for ``~log_variance &`` in the upper test of ``at_bound``: the step capped at 2, the points 0, 2, 3, two
    iterations)."""
    points: list = []
    res = fisher_scoring(_square_about(5.0, 1.0, points), np.zeros(1), np.full(1, -INF), np.full(1, 3.0),
                         max_step=2.0)
    assert points == [0.0, 3.0]
    assert res.converged is True and res.n_iter == 1
    assert res.x.tolist() == [3.0] and res.f == 2.0 and res.gradient.tolist() == [-2.0]


def test_the_shortened_plain_step_towards_a_bound_is_a_quarter_of_the_distance_to_it():
    """The plain step that replaces a rejected first trial is the Newton step in x held in the box (the change of x
    that ``_bounded_step`` returns), shortened by quarters: from x0 = -1/4 - 2^-52 with x >= -1, the gradient
    g = 3/4 - 2^-53 and information 1, the Newton step -g overshoots the bound by 2^-53 (the distance to it is
    3/4 - 2^-52), although x0 - g rounds to -1 exactly (not below the bound, so not held there). The objective
    cannot be evaluated at the bound (None), so after the first trial and the full plain step (both at -1) the
    next point is a quarter of the way to the bound, x0 + (-1 - x0)/4 = -7/16 - 3 2^-54 (exact in floating point,
    checked with fractions), accepted (the objective, g (x - x0), decreases). Kills ``x_fisher_scoring__mutmut_156``
    (the step of the linear model, ``[1]``, for the change of x, ``[0]``: x0 - g/4 rounds to the even neighbour
    -7/16 - 4 2^-54, one ulp past a quarter of the way)."""
    from fractions import Fraction
    x0 = -0.25 - 2.0 ** -52
    g0 = np.nextafter(0.75, 0.0)
    quarter = x0 + (-1.0 - x0) / 4.0
    assert Fraction(g0) == Fraction(3, 4) - Fraction(1, 2 ** 53) and x0 - g0 == -1.0    # the case holds
    assert Fraction(quarter) == Fraction(x0) + (-1 - Fraction(x0)) / 4 == Fraction(-7, 16) - Fraction(3, 2 ** 54)
    points: list = []

    def fun(x):
        points.append(float(x[0]))
        return None if x[0] <= -1.0 else (g0 * (x[0] - x0), np.array([g0]), np.array([[1.0]]))
    res = fisher_scoring(fun, np.array([x0]), np.full(1, -1.0), np.full(1, INF), max_iter=1)
    assert points == [x0, -1.0, -1.0, quarter]
    assert res.x.tolist() == [quarter] and res.n_iter == 1 and res.converged is False


def test_a_step_landing_on_the_upper_bound_is_solved_again_when_a_coupled_parameter_is_held():
    """Only a step past a bound holds a parameter there: one that lands exactly on its upper bound stays free and is
    solved again when another parameter is held. 0.5 x'Ax - (0, -3)'x from 0, A = [[2, 1], [1, 2]]: the joint
    Newton step is (1, -2) (computed as u1 ~ 1, taken as x1's upper bound, so the step lands on it) and x2 >= -1; x2
    goes past its bound and is held at -1, and x1 solved again, 2 x1 = 1: x1 = 1/2, the constrained optimum (the
    gradient there, (0, 3/2), pushes x2 outward), reached in one iteration. Kills ``x__bounded_step__mutmut_54``
    (``x + model >= upper``: x1 held at u1 too, the first trial (u1, -1), two iterations)."""
    b = np.array([0.0, -3.0])
    u1 = float(_solve_psd(A2, b)[0])
    assert u1 == pytest.approx(1.0, rel=1e-14)
    points: list = []
    res = fisher_scoring(_quadratic(A2, b, points), np.zeros(2), np.array([-INF, -1.0]), np.array([u1, INF]))
    assert len(points) == 2
    np.testing.assert_allclose(points[1], [0.5, -1.0], rtol=1e-15, atol=0)
    assert res.converged is True and res.n_iter == 1
    np.testing.assert_allclose(res.gradient, [0.0, 1.5], rtol=1e-15, atol=1e-15)


# ------------------------------------------------------------------------------------------------------ seed 34
def test_a_step_to_the_lower_bound_is_taken_whole_while_the_other_parameters_are_capped():
    """The trust radius caps only the components whose step stays inside the box; one whose step reaches its bound
    goes there at once, in the same trial, even when the others are capped. 0.5 (x1 + 5)^2 + 0.5 (x2 - 10)^2 with
    its exact information, x1 >= -1, from (0, 0) and the trust radius 2: the Newton step (-5, 10) takes x1 past its
    bound (held at -1, the step -1) and x2's 10 is capped at 2, so the first trial is (-1, 2); x1 then stays there
    (its gradient 4 pushes outward) while x2 moves 4 (the radius doubled after a capped step that worked) and then
    its whole remaining step 4: the points (0, 0), (-1, 2), (-1, 6), (-1, 10), converged after three iterations;
    with ``max_iter=1`` the iteration ends at (-1, 2). Kills ``x_fisher_scoring__mutmut_131`` (``np.where(None, s,
    t_first * s)``: the capped factor 1/5 on x1's step too, the points (-0.2, 2), (-0.6, 6), (-1, 10))."""
    c = np.array([-5.0, 10.0])
    points: list = []

    def fun(x):
        points.append(x.tolist())
        return 0.5 * float((x - c) @ (x - c)), x - c, np.eye(2)
    lower, upper = np.array([-1.0, -INF]), np.full(2, INF)
    res = fisher_scoring(fun, np.zeros(2), lower, upper, max_step=2.0)
    assert points == [[0.0, 0.0], [-1.0, 2.0], [-1.0, 6.0], [-1.0, 10.0]]
    assert res.converged is True and res.n_iter == 3 and res.x.tolist() == [-1.0, 10.0]
    points.clear()
    res = fisher_scoring(fun, np.zeros(2), lower, upper, max_step=2.0, max_iter=1)
    assert res.x.tolist() == [-1.0, 2.0] and res.f == 0.5 * (16.0 + 64.0) and res.converged is False


def test_the_trust_radius_shrinks_to_the_step_taken_after_backtracking_far_from_the_origin():
    """After a shortened step worked, the trust radius is the length of that step, |x_new - x|, wherever x lies:
    0.5 (x - 11)^2 with a wrong information 1/4 from 10 (g = -1): the scoring step 4 capped at the radius 2 reaches
    12, where f = 1/2 is not below f(10) = 1/2 (rejected); the plain step shortened, 4 x 1/2 x 1/4 = 1/2, reaches
    10.5 (accepted): the radius becomes 1/2. At 10.5 the scoring step 2 is capped at 1/2, to 11, the optimum: the
    points 10, 12, 10.5, 11, converged after two iterations. Kills ``x_fisher_scoring__mutmut_223``
    (``|x_new + x|``: the radius 20.5, the full step to 12.5 tried and rejected before 11)."""
    points: list = []
    res = fisher_scoring(_square_about(11.0, 0.25, points), np.array([10.0]), np.full(1, -INF), np.full(1, INF))
    assert points == [10.0, 12.0, 10.5, 11.0]
    assert res.converged is True and res.n_iter == 2 and res.x.tolist() == [11.0] and res.f == 0.0


def test_the_stationary_stop_measures_the_change_of_the_parameters_far_from_the_origin():
    """The stationary stop compares the parameters' change |x_new - x| with ``xtol``, wherever x lies (the seed-31
    case moved by 10): 0.5 (x - 14)^2 with a wrong information 4 from 10 (f = 8, g = -4, the decrement 4 > tol =
    3.5) takes the step 1 to 11, f = 4.5: the parameter moved by 1 <= xtol = 2 and the objective by 3.5 <= tol, so
    it stops there, stationary after one iteration, the points 10 and 11 alone. Kills
    ``x_fisher_scoring__mutmut_223`` (``|x_new + x|`` = 21 > xtol: it goes on, the secant pair correcting the
    information to 1, to the optimum 14, converged by the decrement after two iterations)."""
    points: list = []
    res = fisher_scoring(_square_about(14.0, 4.0, points), np.array([10.0]), np.full(1, -INF), np.full(1, INF),
                         max_step=4.0, tol=3.5, xtol=2.0)
    assert points == [10.0, 11.0]
    assert res.converged is True and res.n_iter == 1 and res.x.tolist() == [11.0] and res.f == 4.5
    assert res.message == "Fisher scoring: parameters and objective stationary after 1 iterations"


# ------------------------------------------------------------------------------------------------------ seed 35
def test_a_rejected_step_to_the_upper_bound_is_followed_by_the_plain_step_held_there_shortened():
    """When the first trial, a step to a bound, is rejected, the plain Newton step in x (no variance parameters)
    replaces it, held in the box and shortened: 0.5 (x - 1)^2 with a wrong information 1/8 and x <= 4, from 0
    (f = 1/2, g = -1): the Newton step 8 goes past the bound, held at 4, where f = 9/2 (rejected); the plain step is
    4 (held at the bound too), capped at the trust radius 2 (the point 2, f = 1/2, not below 1/2 - 2e-4: rejected)
    and shortened by a quarter, 1/2 (f = 1/8, accepted). From 1/2 the step 4 is again held at the bound (4,
    rejected), the plain step 7/2 capped at the radius 1/2 (the step last taken) reaches the optimum 1. The points
    0, 4, 2, 1/2, 4, 1, converged after two iterations. Kills ``x_fisher_scoring__mutmut_155``
    (``np.zeros_like(None)`` for the plain step's variance flags: a 0-d object array 0, whose ``~`` is -1, so
    ``_bounded_step``'s flags of the parameters held at a bound become the integers 0 and 1, read as indices: here
    an IndexError, index 1 of one parameter)."""
    points: list = []
    upper = np.full(1, 4.0)
    res = fisher_scoring(_square_about(1.0, 0.125, points), np.zeros(1), np.full(1, -INF), upper, max_iter=1)
    assert points == [0.0, 4.0, 2.0, 0.5]
    assert res.x.tolist() == [0.5] and res.f == 0.125 and res.n_iter == 1 and res.converged is False
    points.clear()
    res = fisher_scoring(_square_about(1.0, 0.125, points), np.zeros(1), np.full(1, -INF), upper)
    assert points == [0.0, 4.0, 2.0, 0.5, 4.0, 1.0]
    assert res.x.tolist() == [1.0] and res.f == 0.0 and res.n_iter == 2 and res.converged is True


def test_an_increase_of_a_log_standard_deviation_by_exactly_one_is_taken_in_x():
    """Only a Newton step of a log standard deviation x = log(v)/2 above 1 (strictly) is taken in the variance; a
    step of exactly 1 (from x > lower) is taken in x as it is: 0.5 (x - 1)^2 with its exact information from 0,
    x >= -10, has the Newton step 1 (exact), which reaches the optimum 1 in one step, converged after one
    iteration (the points 0 and 1); ``_bounded_step`` gives the change 1 and the model step 1. Kills
    ``x__bounded_step__mutmut_83`` (``model >= 1.0``: the step 0.5 log(1 + 2) = 0.549 in x, a second iteration)."""
    from pkpd.estimation.fisher_scoring import _bounded_step
    points: list = []
    res = fisher_scoring(_square_about(1.0, 1.0, points), np.zeros(1), np.full(1, -10.0), np.full(1, INF),
                         log_variance=np.array([True]))
    assert points == [0.0, 1.0]
    assert res.x.tolist() == [1.0] and res.f == 0.0 and res.n_iter == 1 and res.converged is True
    s, model = _bounded_step(np.eye(1), np.array([-1.0]), np.zeros(1), np.full(1, -10.0), np.full(1, INF),
                             np.ones(1, dtype=bool), np.array([True]))
    assert s.tolist() == [1.0] and model.tolist() == [1.0]


# ------------------------------------------------------------------------------------------------------ seed 36
A3 = np.array([[2.0, 0.0, 2.0], [0.0, 6.0, -5.0], [2.0, -5.0, 15.0]])   # positive definite (eigenvalues 1.5-17.4)


def test_parameters_held_at_their_bounds_stay_held_while_a_third_is_solved_again():
    """Each round of ``_bounded_step`` adds the parameters whose step leaves the box to those already held: for
    0.5 x'Ax - (6, 5, 2)'x with |x1|, |x2| <= 1, |x3| <= 2 from 0, the joint Newton step (2.98, 0.85, 0.02) takes x1
    past 1 (held there), then (x2, x3) = (15/13, 5/13) takes x2 past 1 (held too), then x3 = (2 - 2 + 5)/15 = 1/3:
    the box optimum (1, 1, 1/3), whose gradient there (-10/3, -2/3, 0) points out of the box at both upper bounds
    (the KKT conditions of a convex quadratic). Fisher scoring with the exact information reaches it in one step,
    converged after one iteration. Kills ``x__bounded_step__mutmut_72`` (``fixed = leave | to_zero`` for
    ``fixed |= ...``: each round forgets the parameters held before, x1 is solved again (38/13, past 1 again), then
    x2 (15/13), and the four rounds end at (1, 1, 5/13); the scoring takes a second step to reach 1/3)."""
    from pkpd.estimation.fisher_scoring import _bounded_step
    b = np.array([6.0, 5.0, 2.0])
    lower, upper = np.array([-1.0, -1.0, -2.0]), np.array([1.0, 1.0, 2.0])
    s, model = _bounded_step(A3, -b, np.zeros(3), lower, upper, np.ones(3, dtype=bool), np.zeros(3, dtype=bool))
    optimum = np.array([1.0, 1.0, 1.0 / 3.0])
    gradient = A3 @ optimum - b
    assert gradient[:2] == pytest.approx([-10.0 / 3.0, -2.0 / 3.0], rel=1e-12) and abs(gradient[2]) < 1e-14
    assert s == pytest.approx(optimum, rel=1e-12) and model == pytest.approx(optimum, rel=1e-12)
    points: list = []
    res = fisher_scoring(_quadratic(A3, b, points), np.zeros(3), lower, upper)
    assert len(points) == 2 and points[1] == pytest.approx(optimum, rel=1e-12)
    assert res.x == pytest.approx(optimum, rel=1e-12) and res.n_iter == 1 and res.converged is True


def test_a_problem_without_parameters_is_optimal_at_once():
    """The system of no equations has the empty solution, and an objective of no parameters is at its minimum: the
    Newton decrement of the empty step is 0, so Fisher scoring converges at the start (no step, one evaluation),
    the objective and the empty point as given. Kills ``x__solve_psd__mutmut_4`` (``np.zeros(1)`` for the empty
    information's solution: a step of one component for no parameters, and the decrement g'(step) a ValueError,
    operands of 0 and 1 entries)."""
    from pkpd.estimation.fisher_scoring import _bounded_step
    assert _solve_psd(np.zeros((0, 0)), np.zeros(0)).shape == (0,)
    empty = np.zeros(0)
    s, model = _bounded_step(np.zeros((0, 0)), empty, empty, empty, empty, np.zeros(0, dtype=bool),
                             np.zeros(0, dtype=bool))
    assert s.shape == (0,) and model.shape == (0,)
    calls: list = []
    def fun(x):
        calls.append(x.shape)
        return 3.0, np.zeros(0), np.zeros((0, 0))
    res = fisher_scoring(fun, empty, empty, empty)
    assert calls == [(0,)] and res.x.shape == (0,) and res.f == 3.0
    assert res.converged is True and res.n_iter == 0
    assert res.message == "Fisher scoring: Newton decrement 0 below 1e-05 after 0 iterations"


# ------------------------------------------------------------------------------------------------------ seed 37
def test_a_step_taking_every_parameter_to_its_bound_is_a_full_step():
    """A step in which every parameter goes to its bound is not capped (no component stays inside the box), so it
    counts as a full step: its secant pair is kept and the trust radius is not doubled. 0.5 (x - 3)^2 with a wrong
    information 1/8, x <= 4, max_step=1/2, from 0 (g = -3): the Newton step 24 is held at the bound 4 (f = 1/2,
    accepted). The pair (s, y) = (4, g(4) - g(0) = 4) corrects the information by BFGS to 1/8 - (4/8)^2 / 2 + 16/16
    = 1, the true curvature, whose Newton step -1 from 4 is capped at the radius 1/2: the point 7/2. The whole run
    visits 0, 4, 7/2, then (the capped step worked: radius 1, pair dropped) 5/2, 13/4 and the optimum 3, converged
    after four iterations. Kills ``x_fisher_scoring__mutmut_118`` (1.0 for 0.0 as the largest inner component when
    every component is at its bound: the bound step counts as capped at 1/2, the radius doubles to 1 and the pair
    is dropped; the step -8 of the information 1/8 capped at 1 lands on 3 in the second iteration)."""
    from pkpd.estimation.fisher_scoring import _bfgs
    assert _bfgs(np.array([[0.125]]), [(np.array([4.0]), np.array([4.0]))]).tolist() == [[1.0]]
    points: list = []
    upper = np.full(1, 4.0)
    res = fisher_scoring(_square_about(3.0, 0.125, points), np.zeros(1), np.full(1, -INF), upper, max_step=0.5,
                         max_iter=2)
    assert points == [0.0, 4.0, 3.5]
    assert res.x.tolist() == [3.5] and res.n_iter == 2 and res.converged is False
    points.clear()
    res = fisher_scoring(_square_about(3.0, 0.125, points), np.zeros(1), np.full(1, -INF), upper, max_step=0.5)
    assert points == [0.0, 4.0, 3.5, 2.5, 3.25, 3.0]
    assert res.x.tolist() == [3.0] and res.f == 0.0 and res.n_iter == 4 and res.converged is True


def test_a_step_to_the_upper_bound_lands_on_it_exactly():
    """A point never leaves the box, not even by rounding: 0.5 (x - 2)^2 with its exact information from 0.3,
    x <= 0.9, has its box optimum at the bound 0.9 (the unconstrained one, 2, lies beyond it; the gradient -1.1
    there points out of the box). The step to the bound is 0.9 - 0.3 = 0.6000000000000001 in floating point, and
    0.3 + 0.6000000000000001 = 0.9000000000000001, one unit of rounding past the bound: the trial point is clipped
    to 0.9 exactly, where f = 0.5 x 1.1^2, converged after one iteration. Kills ``x_fisher_scoring__mutmut_180``
    (trial points clipped only at the lower bound: the result 0.9000000000000001, outside the box)."""
    assert 0.3 + (0.9 - 0.3) > 0.9                                      # the rounding the clip undoes
    points: list = []
    upper = np.full(1, 0.9)
    res = fisher_scoring(_square_about(2.0, 1.0, points), np.array([0.3]), np.full(1, -INF), upper)
    assert points == [0.3, 0.9]
    assert res.x.tolist() == [0.9] and res.x[0] <= upper[0]
    assert res.f == 0.5 * 1.1 ** 2 and res.gradient.tolist() == [0.9 - 2.0]
    assert res.converged is True and res.n_iter == 1


# ------------------------------------------------------------------------------------------------------ seed 38
def test_the_default_xtol_does_not_stop_a_step_of_thousandths_short_of_the_optimum():
    """The stationary stop's default ``xtol`` is 1e-7 (the one FO fits run with: ``_fo_scoring`` passes none): a
    step of a few thousandths whose objective changed by less than ``tol`` does not end the iteration while the
    Newton decrement is above ``tol``. 0.875 x^2 (curvature 7/4) with a wrong information 1 from x = 1/256 (every
    number below exact in floating point): the decrement (7/4 x)^2 = 4.7e-5 is above tol = 1e-5, the step -7/1024
    overshoots to -3/1024, f falls by 0.875 (16 - 9) 2^-20 = 5.8e-6 <= tol, but the parameter moved by 7/1024 > 1e-7,
    so the iteration goes on. The pair (s, y = 7/4 s) corrects the information by BFGS to the true curvature 7/4,
    whose decrement at -3/1024, 7/4 x 9 x 2^-20 = 1.5e-5, is still above tol; its Newton step lands on the optimum 0
    (the minimum of 0.875 x^2, f = 0), where the decrement is 0: converged after two iterations. Guards the default
    ``xtol`` of ``fisher_scoring``; kills ``x_fisher_scoring__mutmut_3`` (``xtol: float = 1.0000001`` for
    ``1e-7``: the move 7/1024 <= 1.0000001 stops the iteration at -3/1024, f = 7.5e-6, "parameters and objective
    stationary after 1 iterations", short of the optimum)."""
    assert 0.875 * (2.0 ** -16 - 9.0 * 2.0 ** -20) <= 1e-5 < 1.75 * 9.0 * 2.0 ** -20    # df <= tol < next decrement
    points: list = []

    def fun(x):
        points.append(float(x[0]))
        return 0.875 * x[0] ** 2, np.array([1.75 * x[0]]), np.array([[1.0]])
    res = fisher_scoring(fun, np.array([2.0 ** -8]), np.full(1, -INF), np.full(1, INF))
    assert points == [2.0 ** -8, -3.0 / 1024.0, 0.0]
    assert res.x.tolist() == [0.0] and res.f == 0.0 and res.gradient.tolist() == [0.0]
    assert res.converged is True and res.n_iter == 2
    assert res.message == "Fisher scoring: Newton decrement 0 below 1e-05 after 2 iterations"


# ------------------------------------------------------------------------------------------------------ seed 39
def test_a_rejected_jump_of_a_variance_to_its_floor_is_followed_by_the_plain_newton_step_in_x():
    """When the first trial, a log standard deviation x = log(v)/2 sent to its floor, is rejected, the next trial is
    the plain Newton step in x (no jump), not the jump shortened: 0.5 (x + 1)^2 with its exact information from 0,
    x >= -10 (flagged ``log_variance``), has the Newton step -1, a decrease of the variance to v (1 - 2) < 0, below
    its floor exp(-20): the jump to the bound -10 (f = 81/2, rejected); the plain step in x is -1, within the trust
    radius 2, and lands on the optimum -1 (f = 0), where the decrement is 0: the points 0, -10, -1, converged after
    one iteration. Kills ``x_fisher_scoring__mutmut_139`` (``... if (at_bound.any()) and False else s``: the jump
    itself is shortened instead, capped at 2/10 of it: the points 0, -10, -2 (f = 1/2, rejected), -1/2, then the
    jump -10 again and -1, two iterations)."""
    points: list = []
    res = fisher_scoring(_square_about(-1.0, 1.0, points), np.zeros(1), np.full(1, -10.0), np.full(1, INF),
                         log_variance=np.array([True]))
    assert points == [0.0, -10.0, -1.0]
    assert res.x.tolist() == [-1.0] and res.f == 0.0 and res.gradient.tolist() == [0.0]
    assert res.converged is True and res.n_iter == 1


def test_the_step_of_a_log_standard_deviation_past_its_upper_bound_is_held_at_the_bound():
    """A log standard deviation is not held at its upper bound in the rounds of ``_bounded_step`` (only a decrease
    below its floor sends it to a bound), but the change of x it returns stays in the box all the same: 0.5 |x -
    (3/4, 1/4)|^2 with its exact information, x1 (flagged ``log_variance``) in [-10, 1/2], x2 free, from 0 has the
    Newton step (3/4, 1/4), held at (1/2, 1/4), the box optimum (the gradient (-1/4, 0) there points out of the box
    at x1's upper bound); its model step stays (3/4, 1/4). With a trust radius 5/8 the largest component 1/2 is not
    capped: the points (0, 0) and (1/2, 1/4), f = -9/32, converged after one iteration. Kills
    ``x__bounded_step__mutmut_127`` (``np.clip(s, lower - x, None)``: the change (3/4, 1/4), past the bound, so the
    trust radius caps the step at 5/6 of it: the second point (1/2, 5/24), short of the optimum, which a second
    iteration reaches)."""
    from pkpd.estimation.fisher_scoring import _bounded_step
    lower, upper = np.array([-10.0, -INF]), np.array([0.5, INF])
    log_variance = np.array([True, False])
    s, model = _bounded_step(np.eye(2), np.array([-0.75, -0.25]), np.zeros(2), lower, upper, np.ones(2, dtype=bool),
                             log_variance)
    assert s.tolist() == [0.5, 0.25] and model.tolist() == [0.75, 0.25]
    points: list = []
    res = fisher_scoring(_quadratic(np.eye(2), np.array([0.75, 0.25]), points), np.zeros(2), lower, upper,
                         log_variance=log_variance, max_step=0.625)
    assert [p.tolist() for p in points] == [[0.0, 0.0], [0.5, 0.25]]
    assert res.x.tolist() == [0.5, 0.25] and res.f == -9.0 / 32.0 and res.gradient.tolist() == [-0.25, 0.0]
    assert res.converged is True and res.n_iter == 1


def test_the_jacobian_of_the_fo_coordinates_by_x_with_two_covariate_effects_is_its_closed_form():
    """``x_jacobian`` carries the FO derivatives to x = (log ka, log CL, log V, log sqrt(omega_CL), log
    sqrt(omega_V), log sd, b_WT_on_CL, b_WT_on_V) for theophylline with CL_i = CL (WT_i/70)^b1 and V_i = V (1 + b2
    (WT_i - 70)), a diagonal Omega and an additive error: per subject, dka/dlog ka = ka, dCL_i/dlog CL = CL_i,
    dV_i/dlog V = V_i, dsd/dlog sd = sd, dCL_i/db1 = CL_i log(WT_i/70), dV_i/db2 = V (WT_i - 70), and nothing
    else (the rows of the random effects are empty); dOmega/dlog sqrt(omega_k) = 2 omega_k at (k, k). Kills
    ``_fo_information.x_jacobian__mutmut_68`` (``off - e`` for ``off + e``: the second effect's derivative is
    written into the column of sd, and b2 gets none, so the information, the R matrix of the FO covariance step,
    has no entry for it; only two or more effects show it)."""
    from pathlib import Path

    import pandas as pd

    import pkpd
    from pkpd import nlme
    from pkpd.estimation._fo_information import x_jacobian
    from pkpd.nonmem import read_nonmem

    path = Path(__file__).resolve().parents[1] / "data" / "theoph.csv"
    theo = read_nonmem(path, dose_unit="mg")
    effects = [pkpd.CovariateEffect("CL", "WT", "power", 0.75, ref=70.0),
               pkpd.CovariateEffect("V", "WT", "linear", 0.01, ref=70.0)]
    *_, layout, prob = nlme._setup("pk_1cmt_oral", theo, {"CL": 0.1, "V": 0.05}, pkpd.Additive(sd=0.7), "fo",
                                   ["ka", "CL", "V"], None, None, None, effects)
    engine = nlme._objective_engine(prob, layout)
    if engine is None:
        pytest.skip("needs the compiled objective")
    assert layout.names() == ["ka", "CL", "V", "omega(0,0)", "omega(1,1)", "conc.sd", "WT_on_CL", "WT_on_V"]
    x = np.array([0.4, 1.0, 3.5, -1.2, -1.5, -0.3, 0.75, 0.01])
    ka, CL, V, sd = np.exp(x[[0, 1, 2, 5]])
    omega = np.exp(2.0 * x[[3, 4]])
    b1, b2 = x[6], x[7]
    first = pd.read_csv(path).groupby("ID", sort=False)["WT"].first()              # each subject's weight
    assert [int(i) for i in prob.data.ids] == first.index.tolist() == list(range(1, 13))
    wt = first.to_numpy()
    CL_i, V_i = CL * (wt / 70.0) ** b1, V * (1.0 + b2 * (wt - 70.0))
    theta, Om, errs = layout.unpack(x[None, :])
    A, B = x_jacobian(engine, x, engine._subject_typicals(x, theta), np.linalg.cholesky(Om[0]), errs[0])
    # rows of A: the random effects (2), then ka, CL, V (engine.pi = the model's first three), then sd
    assert engine.q == 2 and engine.pi == (0, 1, 2) and A.shape == (12, 6, 8) and B.shape == (8, 2, 2)
    expected = np.zeros((12, 6, 8))
    expected[:, 2, 0] = ka
    expected[:, 3, 1] = CL_i
    expected[:, 4, 2] = V_i
    expected[:, 5, 5] = sd
    expected[:, 3, 6] = CL_i * np.log(wt / 70.0)
    expected[:, 4, 7] = V * (wt - 70.0)
    np.testing.assert_allclose(A, expected, rtol=1e-12, atol=0.0)
    expected_B = np.zeros((8, 2, 2))
    expected_B[3, 0, 0], expected_B[4, 1, 1] = 2.0 * omega
    np.testing.assert_allclose(B, expected_B, rtol=1e-12, atol=0.0)


# ------------------------------------------------------------------------------------------------------ seed 41
def test_the_information_of_a_natural_scale_typical_value_without_covariate_effects_is_its_closed_form():
    """A typical value estimated on its natural scale (BASE, no bounds) with no covariate effect on it has
    dBASE/dx = 1, so ``x_jacobian`` puts 1 in its row of every subject. With y_ij = central/V + BASE_i, BASE_i = BASE
    + eta_i (normal IIV, omega), an additive error sd and only BASE estimated, FO's mean is linear in BASE and its
    covariance C_i = omega 1 1' + sd^2 I does not depend on BASE, so the expected Hessian of the FO OFV by BASE is
    2 sum_i 1'C_i^-1 1 = 2 sum_i J_i / (sd^2 + J_i omega) (Sherman-Morrison), with nothing between BASE and omega or
    sd: J = 5, 5, 3 observations, omega 0.04, sd 0.1 give 2 (5/0.21 + 5/0.21 + 3/0.13). Guards
    ``_fo_information.x_jacobian__mutmut_26`` (``factors.get(p, None)`` for ``factors.get(p, 1.0)``: the row is NaN,
    and so is the information, the R matrix of the FO covariance step and Fisher scoring's Newton step)."""
    import pandas as pd

    import pkpd
    from pkpd.estimation._fo_information import x_jacobian
    from pkpd.estimation.population_fit import _objective_engine, _setup
    from pkpd.model import DoseTarget, Model, Output, Parameter, State
    from pkpd.population import IIV

    # test_nlme_rules' BASELINE model (no bounds: BASE is estimated on its natural scale)
    model = Model(name="iv_with_baseline", time_unit="h",
                  parameters=(Parameter("CL", 2.8, "L/h"), Parameter("V", 32.0, "L"), Parameter("BASE", 0.0, "mg/L")),
                  states=(State("central", "mg", "0", "-CL / V * central"),),
                  outputs=(Output("conc", "central / V + BASE", "mg/L"),), doses=(DoseTarget("iv", "central", "mg"),))
    rows = []
    for i, times in enumerate([(1.0, 2.0, 4.0, 8.0, 12.0), (1.0, 2.0, 4.0, 8.0, 12.0), (1.0, 4.0, 12.0)], start=1):
        rows.append(dict(ID=i, TIME=0.0, DV=np.nan, AMT=100.0, EVID=1, AMTU="mg"))
        rows += [dict(ID=i, TIME=t, DV=0.5 + 0.1 * i, AMT=0.0, EVID=0, AMTU="mg") for t in times]
    iiv = IIV({"BASE": 0.04}, distribution={"BASE": "normal"})
    *_, layout, prob = _setup(model, pd.DataFrame(rows), iiv, pkpd.Additive(sd=0.1), "fo", ["BASE"], None,
                              pkpd.SolverSettings(rtol=1e-10, atol=1e-12), {"BASE": 0.5})
    engine = _objective_engine(prob, layout)
    if engine is None:
        pytest.skip("needs the compiled objective")
    assert layout.names() == ["BASE", "omega(0,0)", "conc.sd"] and not layout.theta_log[0]
    x = layout.x0
    theta, Om, errs = layout.unpack(x[None, :])
    A, _ = x_jacobian(engine, x, engine._subject_typicals(x, theta), np.linalg.cholesky(Om[0]), errs[0])
    assert A[:, engine.q + engine.pi.index(2), 0].tolist() == [1.0, 1.0, 1.0]
    info = engine.evaluate(x, None, information=True).information
    expected = 2.0 * (5.0 / 0.21 + 5.0 / 0.21 + 3.0 / 0.13)
    assert info[0, 0] == pytest.approx(expected, rel=1e-9)
    np.testing.assert_allclose(info[0, 1:], 0.0, atol=1e-9 * expected)


# ------------------------------------------------------------------------------------------------------ seed 43
def _malformed(info_at, grad_at=None):
    """f = (x0 - 1)^2 + (x1 + 2)^2 (the optimum (1, -2), its exact information 2 I), except that the information is
    ``info_at(x)`` and the gradient ``grad_at(x)`` where given."""
    def fun(x):
        g = np.array([2.0 * (x[0] - 1.0), 2.0 * (x[1] + 2.0)])
        return (x[0] - 1.0) ** 2 + (x[1] + 2.0) ** 2, g if grad_at is None else grad_at(x), info_at(x)
    return fun


@pytest.mark.parametrize("fun, x0, got", [
    # a column too many, with a zero diagonal entry, at the optimum: main returned it as converged (decrement 0)
    (_malformed(lambda x: np.array([[2.0, 0.0, 0.0], [0.0, 0.0, 0.0]])), [1.0, -2.0], "(2,) and an information of "
     "shape (2, 3)"),
    # ... with both diagonal entries > 0 (main: numpy's "operands could not be broadcast together")
    (_malformed(lambda x: np.array([[2.0, 0.0, 5.0], [0.0, 2.0, 7.0]])), [0.0, 0.0], "(2,) and an information of "
     "shape (2, 3)"),
    # a row too many (main: the same broadcasting error)
    (_malformed(lambda x: np.eye(3, 2) * 2.0), [0.0, 0.0], "(2,) and an information of shape (3, 2)"),
    # a gradient of three entries for two parameters
    (_malformed(lambda x: 2.0 * np.eye(2), lambda x: np.array([2.0 * x[0] - 2.0, 2.0 * x[1] + 4.0, 0.0])),
     [0.0, 0.0], "(3,) and an information of shape (2, 2)"),
    # well formed at the start, a 3 x 3 information at the trial point (1, -2)
    (_malformed(lambda x: 2.0 * np.eye(2) if x[0] == 0.0 else 2.0 * np.eye(3)), [0.0, 0.0],
     "(2,) and an information of shape (3, 3)"),
], ids=["wider-zero-diagonal-at-optimum", "wider", "taller", "long-gradient", "square-too-big-at-trial"])
def test_an_information_that_is_not_the_square_matrix_of_the_parameters_is_refused_by_name(fun, x0, got):
    """The information is the n x n expected Hessian of the n parameters and the gradient has n entries: fun(x)
    returning anything else (at the start or at a trial point) is refused with a ValueError that says which shapes
    it returned, before a step is solved. Guards ``fisher_scoring`` and ``_solve_psd`` (seed 43's survivor
    ``x__solve_psd__mutmut_20``: ``every = bool(None)``, the fast path never taken, turned a 2 x 3 information with
    both diagonal entries > 0, which numpy's broadcasting refused on the fast path, into a silently solved leading
    2 x 2 block, as main's general path already did for one with a zero diagonal entry: defect found and fixed, the
    check now precedes both paths; main returned the first case as converged with the 2 x 3 information, and raised
    numpy's broadcasting or matmul errors, naming neither fun nor the information, for the others)."""
    with pytest.raises(ValueError) as err:
        fisher_scoring(fun, np.array(x0), np.full(2, -INF), np.full(2, INF))
    assert str(err.value) == ("fisher_scoring: fun(x) must return a gradient of n = 2 entries and an n x n "
                              f"information; it returned a gradient of shape {got}")


def test_the_information_of_one_parameter_is_a_one_by_one_matrix():
    """A one-parameter problem's information is the 1 x 1 matrix [[2]] of f = (x - 1)^2 (one Newton step to 1); the
    bare vector [2] is refused by name (main: numpy's "too many indices for array" from the step's solve). Guards
    ``fisher_scoring`` (seed 43, with ``x__solve_psd__mutmut_20``: the defect it showed)."""
    def fun(H):
        return lambda x: (float((x[0] - 1.0) ** 2), np.array([2.0 * (x[0] - 1.0)]), H)

    res = fisher_scoring(fun(np.array([[2.0]])), np.zeros(1), np.full(1, -INF), np.full(1, INF))
    assert res.converged and res.x.tolist() == [1.0]
    with pytest.raises(ValueError, match=r"^fisher_scoring: fun\(x\) must return a gradient of n = 1 entries and an "
                                         r"n x n information; it returned a gradient of shape \(1,\) and an "
                                         r"information of shape \(1,\)$"):
        fisher_scoring(fun(np.array([2.0])), np.zeros(1), np.full(1, -INF), np.full(1, INF))


@pytest.mark.parametrize("H, b", [
    (np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]]), np.ones(2)),   # main: solved on its leading block, (1, 0)
    (np.array([[1.0, 0.0, 3.0], [0.0, 2.0, 4.0]]), np.ones(2)),   # main: a broadcasting error (the fast path)
    (np.eye(3), np.ones(2)),                                      # main: a broadcasting error
    (np.array([2.0]), np.ones(1)),                                # main: "too many indices for array"
], ids=["wider-zero-diagonal", "wider", "square-too-big", "vector"])
def test_solve_psd_refuses_a_matrix_that_is_not_square_of_the_right_hand_sides_size(H, b):
    """H s = b is solved for the n x n H of an n-vector b only: any other H is refused by name, whichever diagonal
    entries are > 0. Guards ``_solve_psd`` (seed 43's survivor ``x__solve_psd__mutmut_20``: ``every = bool(None)``
    sent every H down the general path, whose ``H[np.ix_(ok, ok)]`` (integer indices from the boolean mask, no
    length check) silently cut a 2 x 3 H to its leading 2 x 2 block where the fast path's broadcasting refused it:
    defect found and fixed, the general path did it on main already for an H with a zero diagonal entry)."""
    with pytest.raises(ValueError, match=r"^_solve_psd: H of shape \(\d+(, \d+)?,?\) is not the n x n matrix of "
                                         r"b's n = \d+ entries$"):
        _solve_psd(H, b)


# ------------------------------------------------------------------------------------------------------ seed 45
def _one_parameter(grad):
    """f = (x - 1)^2 (the optimum 1, its exact information [[2]]), with the gradient 2 (x - 1) given as ``grad``."""
    return lambda x: ((x[0] - 1.0) ** 2, grad(2.0 * (x[0] - 1.0)), np.array([[2.0]]))


@pytest.mark.parametrize("fun, n, got", [
    (_malformed(lambda x: 2.0 * np.eye(2), lambda x: np.array([[2.0 * x[0] - 2.0, 2.0 * x[1] + 4.0]])), 2, "(1, 2)"),
    (_malformed(lambda x: 2.0 * np.eye(2), lambda x: np.array([[2.0 * x[0] - 2.0], [2.0 * x[1] + 4.0]])), 2, "(2, 1)"),
    (_one_parameter(lambda d: np.float64(d)), 1, "()"),
    (_one_parameter(lambda d: np.array(d)), 1, "()"),
    (_one_parameter(lambda d: np.array([[d]])), 1, "(1, 1)"),
], ids=["row", "column", "numpy-scalar", "0-d", "1-by-1"])
def test_a_gradient_of_n_entries_that_is_not_a_vector_is_refused_by_name(fun, n, got):
    """The gradient is the vector of the n parameters' n entries: n entries in a row, a column, a 0-d array or a numpy
    scalar are refused with the ValueError that names its shape, before a step is solved (the rule of the
    docstring: other shapes of g are refused). Guards ``fisher_scoring`` (seed 45's survivor
    ``x__solve_psd__mutmut_59``: ``b if (every) and False else b[ok]``, b always cut by the mask, changed the
    numpy error that a gradient of shape (1, 2) ended in from matmul's ValueError to an IndexError: defect found and
    fixed, the check counted the gradient's entries only, and main ended in numpy's matmul, broadcasting, indexing or
    conversion errors, naming neither fun nor the gradient). The same problems with the gradient as a vector reach
    the optimum, (1, -2) and 1, in one Newton step (the information is exact)."""
    with pytest.raises(ValueError) as err:
        fisher_scoring(fun, np.zeros(n), np.full(n, -INF), np.full(n, INF))
    assert str(err.value) == (f"fisher_scoring: fun(x) must return a gradient of n = {n} entries and an n x n "
                              f"information; it returned a gradient of shape {got} and an information of shape "
                              f"({n}, {n})")
    vector = _malformed(lambda x: 2.0 * np.eye(2)) if n == 2 else _one_parameter(lambda d: np.array([d]))
    res = fisher_scoring(vector, np.zeros(n), np.full(n, -INF), np.full(n, INF))
    assert res.converged and res.x.tolist() == ([1.0, -2.0] if n == 2 else [1.0])


@pytest.mark.parametrize("b", [np.ones((1, 2)), np.ones((2, 1)), np.array(1.0), np.float64(1.0), np.ones((1, 1))],
                         ids=["row", "column", "0-d", "numpy-scalar", "1-by-1"])
def test_solve_psd_refuses_a_right_hand_side_that_is_not_a_vector(b):
    """H s = b is solved for an n-vector b only: b of b.size entries in any other shape is refused by name, before
    the mask of the parameters with information cuts it (2 I s = (2, 4) gives (1, 2)). Guards ``_solve_psd`` (seed
    45's survivor ``x__solve_psd__mutmut_59``: ``b if (every) and False else b[ok]``: on main a row b ended in
    matmul's ValueError, with the mutant in the mask's IndexError, a column b in a broadcasting error and a 0-d b in
    an IndexError: defect found and fixed)."""
    with pytest.raises(ValueError, match=rf"^_solve_psd: b of shape {re.escape(str(np.shape(b)))} is not a vector$"):
        _solve_psd(np.eye(b.size), b)
    assert _solve_psd(2.0 * np.eye(2), np.array([2.0, 4.0])).tolist() == [1.0, 2.0]
