r"""Fisher scoring with bounds: Newton's method with the expected information in place of the Hessian (private).

Used for FO fits (:func:`pkpd.fit_population` with ``method="fo"``), whose objective comes with its expected
Hessian :math:`\mathcal{H}` in closed form (:mod:`pkpd.estimation._fo_information`). Each iteration:

* solves :math:`B s = -g` on the parameters that are free (not held at a bound by a gradient pushing outward), with
  :math:`B` the information corrected by BFGS updates from the last two full steps (their change of the gradient):
  pure scoring converges only linearly, at the rate :math:`\|\mathcal{H}^{-1}(\nabla^2 f - \mathcal{H})\|`, which
  is 0.6 for the FO theophylline fit (its observed Hessian is down to 0.37 x the information along one direction);
  the secant correction restores the missing curvature along the directions the iterates travel;
* a parameter whose step would leave the box goes to its bound, and the others are solved again with it held there;
* for the log standard deviation :math:`x = \tfrac12\log v` of a variance, a decrease (or a large increase) is
  taken in :math:`v`, :math:`v (1 + 2s)` (the same step to first order): the objective is smooth in the variance,
  not in its logarithm, as the variance goes to 0, where the information in :math:`x` vanishes like :math:`v^2` and
  steps in :math:`x` would creep towards the bound by a constant amount per iteration;
* caps the other components at a trust radius and backtracks (first to the plain step in :math:`x`, capped) until
  the objective decreases enough (Armijo).

Each evaluation gives the objective, gradient and information together; an FO fit takes 9-15 of them instead of
L-BFGS-B's 25-80. The iteration stops when the Newton decrement :math:`g^\top B^{-1}g` (twice the predicted
decrease) is below ``tol``, or when neither the objective nor the parameters move any more; it reports a stall
(and the caller continues with L-BFGS-B) when no step decreases the objective or after ``max_iter`` iterations.

References
----------
Jennrich RI, Sampson PF (1976) Newton-Raphson and related algorithms for maximum likelihood variance component
estimation. Technometrics 18:11-17.
Bertsekas DP (1982) Projected Newton methods for optimization problems with simple constraints. SIAM J Control
Optim 20:221-246.
Dennis JE, Gay DM, Welsch RE (1981) An adaptive nonlinear least-squares algorithm. ACM Trans Math Softw
7:348-368 (a secant correction of a Gauss-Newton-type Hessian).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

_ARMIJO = 1e-4        # sufficient decrease: f_new <= f + _ARMIJO g.(x_new - x)
_BACKTRACK = 0.25     # step shrink factor when a trial point is rejected
_MAX_BACKTRACKS = 12
_MIN_RADIUS = 0.1
_MEMORY = 2          # (step, gradient change) pairs that correct the information (BFGS)


@dataclass(frozen=True, eq=False)
class ScoringResult:
    """The outcome of :func:`fisher_scoring` (private)."""

    x: np.ndarray
    f: float
    gradient: np.ndarray
    information: np.ndarray
    n_iter: int
    converged: bool
    message: str


def fisher_scoring(fun: Callable, x0: np.ndarray, lower: np.ndarray, upper: np.ndarray, *,
                   log_variance: np.ndarray | None = None, max_iter: int = 100, tol: float = 1e-5,
                   xtol: float = 1e-7, max_step: float = 2.0) -> ScoringResult:
    r"""Minimise ``fun`` within the box ``[lower, upper]`` by projected Fisher scoring.

    Parameters
    ----------
    fun : callable
        ``fun(x)`` returns ``(f, g, H)``: the objective, its gradient (n entries for the n parameters) and its
        expected Hessian (n x n, symmetric, positive semi-definite), or None where the objective cannot be evaluated
        (the step is then shortened). Other shapes of g or H are refused (ValueError).
    x0 : ndarray
        Starting point (moved into the box).
    lower, upper : ndarray
        Bounds (``-inf``/``inf`` where there are none).
    max_iter : int
        Most iterations (each one evaluation, plus one per rejected trial point).
    tol : float
        Newton decrement at or below which the point is optimal [units of f].
    xtol : float
        Largest parameter change of an accepted step at or below which the iteration has converged, when the
        objective changed by at most ``tol`` too.
    log_variance : ndarray of bool, optional
        Which parameters are half the logarithm of a variance (steps towards 0 taken in the variance).
    max_step : float
        Initial trust radius: the largest change of a parameter in one step, other than a move to a bound (it
        doubles after a capped step that worked and shrinks to the step taken after backtracking, at least
        0.1).

    Returns
    -------
    ScoringResult

    Examples
    --------
    A quadratic is minimised in one step when the information is its Hessian:

    >>> import numpy as np
    >>> A = np.array([[2.0, 0.5], [0.5, 1.0]])
    >>> res = fisher_scoring(lambda x: (0.5 * x @ A @ x - x.sum(), A @ x - 1.0, A), np.zeros(2),
    ...                      np.full(2, -np.inf), np.full(2, np.inf))
    >>> res.converged, np.allclose(res.x, np.linalg.solve(A, [1.0, 1.0]))
    (True, True)
    """
    lower = np.asarray(lower, dtype=float)
    upper = np.asarray(upper, dtype=float)
    x = np.clip(np.asarray(x0, dtype=float), lower, upper)
    log_variance = np.zeros(x.size, dtype=bool) if log_variance is None else np.asarray(log_variance, dtype=bool)
    current = _shapes_checked(fun(x), x.size)
    if current is None:
        raise ValueError("fisher_scoring: the objective cannot be evaluated at the starting point")
    f, g, H = current
    pairs: list = []              # (step, change of the gradient) of the last full steps near the optimum
    radius = float(max_step)
    for it in range(max_iter):
        free = ~(((x <= lower) & (g > 0)) | ((x >= upper) & (g < 0)))
        B = _bfgs(H, pairs[-_MEMORY:])
        s, model = _bounded_step(B, g, x, lower, upper, free, log_variance)
        decrement = float(-g @ model)
        if decrement <= tol:
            return ScoringResult(x, f, g, H, it, True, f"Fisher scoring: Newton decrement {max(decrement, 0.0):.2g} "
                                 f"below {tol:g} after {it} iterations")
        # the trust radius caps the components that stay inside the box; those whose step reaches a bound (the log
        # standard deviation of a variance heading for 0, whose information vanishes with it) go there at once
        at_bound = (s <= lower - x) | (~log_variance & (s >= upper - x))
        inner = float(np.max(np.abs(s[~at_bound]))) if (~at_bound).any() else 0.0
        t_first = min(1.0, radius / inner) if inner > 0 else 1.0
        def trials(B=B, g=g, x=x, free=free, s=s, at_bound=at_bound, t_first=t_first, radius=radius):
            yield np.where(at_bound, s, t_first * s)
            # if that fails: the plain Newton step in x (no jumps), capped and shortened (built only then)
            plain = _bounded_step(B, g, x, lower, upper, free, np.zeros_like(log_variance))[0] if at_bound.any() else s
            t_all = min(1.0, radius / float(np.max(np.abs(plain))))
            for j in range(int(not at_bound.any()), _MAX_BACKTRACKS):
                yield t_all * _BACKTRACK ** j * plain

        for k, step in enumerate(trials()):  # noqa: B007  (k: which trial worked)
            x_new = np.clip(x + step, lower, upper)
            trial = _shapes_checked(fun(x_new), x.size)
            if trial is not None and np.isfinite(trial[0]) and trial[0] <= f + _ARMIJO * float(g @ (x_new - x)):
                break
        else:
            return ScoringResult(x, f, g, H, it, False, "Fisher scoring stalled: no step along the scoring direction "
                                 "decreases the objective")
        moved = float(np.max(np.abs(x_new - x)))
        if k > 0:                           # shortened: trust no longer steps than the one that worked
            radius = max(moved, _MIN_RADIUS)
        elif t_first < 1.0:                 # a capped step worked as it was: allow longer ones
            radius *= 2.0
        if k == 0 and t_first == 1.0:       # a full step: the secant information is worth gathering
            pairs.append((x_new - x, trial[1] - g))
        else:
            pairs = []
        f_old = f
        x = x_new
        f, g, H = trial
        if moved <= xtol and abs(f_old - f) <= tol:
            return ScoringResult(x, f, g, H, it + 1, True, f"Fisher scoring: parameters and objective stationary "
                                 f"after {it + 1} iterations")
    return ScoringResult(x, f, g, H, max_iter, False, f"Fisher scoring: {max_iter} iterations without convergence")


def _shapes_checked(result, n: int):
    """``fun``'s (f, g, H) as returned, or None; a ValueError naming the shapes unless g is the vector of the n
    parameters' entries and H is n x n (numpy's own errors name neither, a wider H could be solved on its leading
    block, and a gradient of n entries in a row, a column or a 0-d array failed later in numpy)."""
    if result is not None:
        _, g, H = result
        if np.shape(g) != (n,) or np.shape(H) != (n, n):
            raise ValueError(f"fisher_scoring: fun(x) must return a gradient of n = {n} entries and an n x n "
                             f"information; it returned a gradient of shape {np.shape(g)} and an information of shape "
                             f"{np.shape(H)}")
    return result


def _bounded_step(B: np.ndarray, g: np.ndarray, x: np.ndarray, lower: np.ndarray, upper: np.ndarray,
                  free: np.ndarray, log_variance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""The Newton step with the model Hessian B on the free parameters, as the change of x.

    A parameter whose step would leave the box is set to its bound and the others' step solved again with it held
    there (a few rounds). For a ``log_variance`` parameter :math:`x = \tfrac12\log v` the objective is smooth in
    :math:`v`, not in :math:`x`, as the variance goes to 0 (its information vanishes like :math:`v^2` in x): a
    decrease is taken as the Newton step in :math:`v` (the same to first order), :math:`v(1 + 2s)`, which reaches
    the bound (a variance of ~0) in one step instead of creeping towards it by a constant amount in x.

    Returns the change of x and the step of the linear model (the same except for those parameters).
    """
    model = np.zeros_like(x)          # the step in the linear model (x scale)
    fixed = np.zeros_like(free)
    zeroed = np.zeros_like(free)      # sent to the floor of their variance
    v_floor = np.exp(2.0 * (lower - x))
    for _ in range(4):
        rest = free & ~fixed
        if rest.all():                # the usual case: nothing held (plain arrays, no fancy indexing)
            model = _solve_psd(B, -g)
        else:
            model[rest] = _solve_psd(B[np.ix_(rest, rest)], -(g[rest] + B[np.ix_(rest, fixed)] @ model[fixed]))
        to_zero = rest & log_variance & (1.0 + 2.0 * model <= v_floor)
        leave = rest & ~log_variance & ((x + model < lower) | (x + model > upper))
        if not (leave.any() or to_zero.any()):
            break
        model[leave] = np.clip(x + model, lower, upper)[leave] - x[leave]
        model[to_zero] = 0.5 * (v_floor[to_zero] - 1.0)
        fixed |= leave | to_zero
        zeroed |= to_zero
    # ... and so is a large increase (from a variance near 0, where the information in x vanishes and the step in x
    # would reach the upper bound)
    in_v = log_variance & ((model < 0) | (model > 1.0) | (x <= lower))
    s = model
    if in_v.any():
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            s = np.where(in_v, 0.5 * np.log(np.maximum(1.0 + 2.0 * model, v_floor)), model)
    # exactly to the bound: 1 + 2 model = 1 + (v_floor - 1) cancels, and its rounding (relative 1e-16 / v_floor)
    # would leave the step a hair short of the bound, where the trust radius then caps it and every other step
    s = np.where(zeroed, lower - x, s)
    return np.clip(s, lower - x, upper - x), model


def _bfgs(H: np.ndarray, pairs) -> np.ndarray:
    """The information H updated by BFGS with the (step, gradient change) pairs: a model Hessian that also has the
    curvature the information misses along the last steps (positive definite when H is)."""
    M = H.copy()
    for s, y in pairs:
        ys = float(y @ s)
        Ms = M @ s
        sMs = float(s @ Ms)
        if ys > 1e-12 * (math.sqrt(float(y @ y)) * math.sqrt(float(s @ s))) and sMs > 0:
            M = M - np.outer(Ms, Ms) / sMs + np.outer(y, y) / ys
    return M


def _solve_psd(H: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The solution of H s = b for a symmetric positive semi-definite H; directions of (numerically) zero
    information get no step."""
    if b.ndim != 1:
        raise ValueError(f"_solve_psd: b of shape {b.shape} is not a vector")
    if H.shape != (b.size, b.size):
        raise ValueError(f"_solve_psd: H of shape {H.shape} is not the n x n matrix of b's n = {b.size} entries")
    if H.size == 0:
        return np.zeros(0)
    d = np.sqrt(np.clip(np.diag(H), 0.0, None))
    ok = d > 0
    out = np.zeros_like(b)
    every = bool(ok.all())
    if not (every or ok.any()):
        return out
    scale = d if every else d[ok]
    Hs = (H if every else H[np.ix_(ok, ok)]) / np.outer(scale, scale)       # unit diagonal
    w, V = np.linalg.eigh(0.5 * (Hs + Hs.T))
    keep = w > 1e-10 * max(float(w[-1]), 1e-300)
    coef = (V[:, keep].T @ ((b if every else b[ok]) / scale)) / w[keep]
    out[ok] = (V[:, keep] @ coef) / scale
    return out
