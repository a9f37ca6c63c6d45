r"""The expected (Fisher) information of the FO objective, in the internal parameters (private).

FO's likelihood is exactly Gaussian: subject *i*'s observations have mean :math:`\mu_i = f_i(\theta, 0)` and
covariance :math:`C_i = G_i\Omega G_i^\top + R_i` (:math:`G_i = \partial f_i/\partial\eta` at :math:`\eta = 0`), so
the expected Hessian of :math:`\mathrm{OFV} = -2\log L` (+ constant) is, for internal parameters :math:`x_j, x_k`,

.. math:: \mathcal{H}_{jk} = \sum_i \left[2\,\frac{\partial\mu_i}{\partial x_j}^{\!\top} C_i^{-1}
          \frac{\partial\mu_i}{\partial x_k} + \mathrm{tr}\!\left(C_i^{-1}\frac{\partial C_i}{\partial x_j}
          C_i^{-1}\frac{\partial C_i}{\partial x_k}\right)\right]

(twice the Fisher information of :math:`\log L`). It needs only the first derivatives of :math:`\mu_i` and
:math:`C_i`, which FO's analytic gradient computes anyway: :mod:`pkpd.estimation.fisher_scoring` steers the FO fit
with it, and the FO covariance step takes it as its R matrix.

The derivatives come from :meth:`pkpd.estimation._objective.PopulationObjective._fo` in the objective's coordinates
:math:`\phi` (random effects, the typical values involved, residual-error parameters) and :math:`\Omega`;
:func:`x_jacobian` carries them to the internal vector ``x`` by the same chain rule as the objective's ``_chain``.
"""

from __future__ import annotations

import numpy as np


def x_jacobian(obj, x: np.ndarray, theta_i: np.ndarray, Lo: np.ndarray, errs) -> tuple[np.ndarray, np.ndarray]:
    r"""The derivatives of the objective's coordinates by the internal parameters.

    Returns ``A`` (n, d, n_x): :math:`\partial\phi_{ic}/\partial x_k` per subject, and ``B`` (n_x, q, q):
    :math:`\partial\Omega/\partial x_k`; the gradient of a per-subject function with partial derivatives ``g_phi``
    (n, d) and ``g_omega`` (n, q, q) is ``einsum("nc,nck->nk", g_phi, A) + einsum("nab,kab->nk", g_omega, B)``,
    which is what ``obj._chain`` computes.
    """
    layout = obj.layout
    names = layout.model.parameter_names
    n = theta_i.shape[0]
    q, k_pi = obj.q, len(obj.pi)
    nx = x.size
    A = np.zeros((n, obj.d, nx))
    B = np.zeros((nx, q, q))
    nt = len(layout.theta_names)
    factors = obj._effect_factors(x)
    for k, name in enumerate(layout.theta_names):
        p = names.index(name)
        c = q + obj.pi.index(p)
        A[:, c, k] = theta_i[:, p] if layout.theta_log[k] else factors.get(p, 1.0)
    for j, (a, b) in enumerate(layout.chol_index):
        E = np.zeros_like(Lo)
        E[a, b] = Lo[a, b] if a == b else 1.0
        B[nt + j] = E @ Lo.T + Lo @ E.T
    off = nt + len(layout.chol_index)
    for j, (o, pname) in enumerate(layout.error_slots):
        c = q + k_pi + obj.sigma_slots.index((o, pname))
        A[:, c, off + j] = float(getattr(errs[o], pname))
    off += len(layout.error_slots) + len(layout.iov_names)
    for e, dlog in enumerate(obj._effect_dlog(x)):
        p = names.index(layout.effects[e].parameter)
        A[:, q + obj.pi.index(p), off + e] = theta_i[:, p] * dlog
    return A, B


def fo_information(G: np.ndarray, dmu: np.ndarray, dC: np.ndarray, Ci: np.ndarray, A: np.ndarray,
                   B: np.ndarray) -> np.ndarray:
    r"""The expected Hessian of the FO OFV by the internal parameters (n_x, n_x), summed over subjects.

    ``G`` (n, J, q): :math:`\partial f/\partial\eta`; ``dmu`` (n, J, d) and ``dC`` (n, J, J, d): the derivatives of
    the mean and the covariance by :math:`\phi` (zero where an observation is absent); ``Ci`` (n, J, J):
    :math:`C^{-1}` (absent observations have a unit variance and no derivatives, so they add nothing); ``A``,
    ``B``: :func:`x_jacobian`.
    """
    n, J, _ = dmu.shape
    nx = A.shape[2]
    Dmu = dmu @ A                                                               # (n, J, n_x)
    DC = (dC.reshape(n, J * J, -1) @ A).reshape(n, J, J, nx)                    # (n, J, J, n_x)
    if B.shape[1]:
        GB = np.tensordot(G, B, axes=([2], [1]))                                # (n, J, n_x, q)
        DC = DC + np.einsum("njkb,nlb->njlk", GB, G)
    M = Ci[:, None] @ np.moveaxis(DC, 3, 1)                                     # (n, n_x, J, J): C^-1 dC/dx_k
    Mt = np.swapaxes(M, 2, 3).reshape(n, nx, J * J)
    H = (2.0 * np.tensordot(Dmu, Ci @ Dmu, axes=([0, 1], [0, 1]))
         + np.tensordot(M.reshape(n, nx, J * J), Mt, axes=([0, 2], [0, 2])))
    return 0.5 * (H + H.T)


def information_from_psi(info_psi: np.ndarray, A: np.ndarray, B: np.ndarray) -> np.ndarray:
    r"""The expected Hessian of the FO OFV by the internal parameters (n_x, n_x), from each subject's expected
    Hessian in :math:`\psi = (\phi, \Omega_{ab})` (``info_psi``, (n, d + q q, d + q q), from the compiled
    assembly): :math:`\sum_i J_i^\top I_i J_i` with :math:`J_i` = ``A[i]`` over ``B`` (the Jacobian of
    :math:`\psi` by ``x``; ``A``, ``B``: :func:`x_jacobian`). Equal to :func:`fo_information` to rounding.
    """
    n, d, nx = A.shape
    Jx = np.concatenate([A, np.broadcast_to(B.reshape(nx, -1).T, (n, B.shape[1] * B.shape[2], nx))], axis=1)
    H = np.tensordot(Jx, info_psi @ Jx, axes=([0, 1], [0, 1]))
    return 0.5 * (H + H.T)
