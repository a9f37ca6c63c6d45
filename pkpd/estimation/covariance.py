"""The covariance step of a population fit: NONMEM's R (Hessian of the OFV), S (cross-product of the per-subject
gradients), the sandwich R^-1 S R^-1 and its fallbacks, naming the parameters responsible when R is not positive
definite (private).
"""

from __future__ import annotations

import numpy as np

from .population_model import _Layout


def _covariance_step(layout: _Layout, x: np.ndarray, run, which: str, names: list[str]):
    """Covariance of the natural-scale estimates: sandwich R^-1 S R^-1, 2 R^-1 or 4 S^-1 (with fallbacks; the last
    one gives standard errors of the parameters the data inform, conditional on those they do not)."""
    p = x.size
    Rm, Sm = run.matrices(x)
    notes = []
    cov = None
    r_ok = _is_pd(Rm)
    # S = sum of n_subjects outer products has rank <= n_subjects: a rank test, as Cholesky may pass a singular S by
    # rounding
    s_ok = _is_pd(Sm) and int(np.linalg.matrix_rank(Sm)) == p
    order = {"sandwich": ["sandwich", "R", "S"], "R": ["R", "S"], "S": ["S", "R"]}[which]
    for kind in order:
        # the sandwich needs S positive definite too (as NONMEM's): with a singular S (fewer subjects than
        # parameters...) it is singular, with standard errors of 0 along its null space
        if kind == "sandwich" and r_ok and s_ok:
            Ri = np.linalg.inv(Rm)
            cov = Ri @ Sm @ Ri
        elif kind == "R" and r_ok:
            cov = 2 * np.linalg.inv(Rm)
        elif kind == "S" and s_ok:
            cov = 4 * np.linalg.inv(Sm)
        if cov is not None:
            used = {"sandwich": "sandwich R^-1 S R^-1", "R": "2 R^-1 (Hessian)", "S": "4 S^-1 (cross-product)"}[kind]
            break
        notes.append(f"{kind} unavailable")
    if cov is None:
        kept = _informative(Rm)
        if kept is None:
            culprits = _responsible(Rm if np.all(np.isfinite(Rm)) else Sm, names)
            return None, ("covariance step failed: the R matrix (Hessian of the OFV) is not positive definite and "
                          "the S matrix is singular, so no standard errors are shown" + culprits + "; the model may "
                          "be over-parameterised (fix a parameter or remove a random effect) or the fit has not "
                          "converged")
        # The objective is flat (or curved the wrong way) along some parameters: the data do not inform them. The
        # others get 2 R^-1 of their own block, i.e. standard errors conditional on the flat ones staying at their
        # estimates (as when they are fixed), and the flat ones get none.
        J = _natural_jacobian(layout, x)
        dropped = np.setdiff1d(np.arange(p), kept)
        cov_nat = J[:, kept] @ (2 * np.linalg.inv(Rm[np.ix_(kept, kept)])) @ J[:, kept].T
        touched = np.any(J[:, dropped] != 0, axis=1)
        cov_nat[touched, :] = np.nan
        cov_nat[:, touched] = np.nan
        flat = [names[i] for i in np.flatnonzero(touched)]
        return cov_nat, ("2 R^-1 of the parameters the data inform: the R matrix is not positive definite and the "
                         f"S matrix is singular; no standard error for {', '.join(flat)} (the objective is flat "
                         "there: the data do not inform it; consider fixing it or removing it), and the other "
                         "standard errors are conditional on its estimate")
    msg = used
    if notes:
        why = []
        if not r_ok:
            why.append("the R matrix is not positive definite - the estimates may not be at a minimum or a "
                       "parameter is not identifiable" + _responsible(Rm, names))
        if not s_ok:
            why.append("the S matrix (cross-product of the per-subject gradients) is singular - fewer subjects than "
                       "parameters, or a parameter no subject's data inform")
        msg += " (fallback: " + "; ".join(why + notes) + ")"
    # delta method to the natural scale
    J = _natural_jacobian(layout, x)
    return J @ cov @ J.T, msg


def _natural_jacobian(layout: _Layout, x: np.ndarray) -> np.ndarray:
    """d natural(x) / dx by central differences (p, p)."""
    step = 1e-6 * np.eye(x.size)
    return ((layout.natural(x + step) - layout.natural(x - step)) / 2e-6).T


def _informative(R: np.ndarray) -> np.ndarray | None:
    """Indices of the largest set of parameters whose block of R is positive definite, found by dropping, one at a
    time, the parameter that dominates the direction of least curvature; None when more than half must go."""
    kept = np.arange(R.shape[0])
    while kept.size > R.shape[0] / 2:
        block = R[np.ix_(kept, kept)]
        if _is_pd(block):
            return kept if kept.size < R.shape[0] else None
        if not np.all(np.isfinite(block)):
            return None
        _, vectors = np.linalg.eigh(0.5 * (block + block.T))
        kept = np.delete(kept, int(np.argmax(np.abs(vectors[:, 0]))))
    return None


def _responsible(M: np.ndarray, names) -> str:
    """Which parameters make a symmetric matrix fail to be positive definite: those loading on the eigenvectors of
    its non-positive (or, failing those, smallest) eigenvalues, e.g. " (responsible: V, omega2_V)"."""
    if not np.all(np.isfinite(M)):
        bad = sorted({names[i] for i in np.argwhere(~np.isfinite(M)).ravel()})
        return f" (not finite for: {', '.join(bad)})"
    d = np.sqrt(np.abs(np.diag(M)))
    d = np.where(d > 0, d, 1.0)
    w, v = np.linalg.eigh(0.5 * (M + M.T) / np.outer(d, d))
    small = w <= 1e-10 * max(abs(w[-1]), 1.0)
    if not small.any():
        small[0] = True
    load = np.abs(v[:, small]).max(axis=1)
    out = [names[i] for i in np.argsort(-load) if load[i] > 0.3]
    return f" (responsible: {', '.join(out)})" if out else ""


def _is_pd(M: np.ndarray) -> bool:
    if not np.all(np.isfinite(M)):
        return False
    try:
        np.linalg.cholesky(0.5 * (M + M.T))
    except np.linalg.LinAlgError:
        return False
    return True
