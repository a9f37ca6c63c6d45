r"""Population (nonlinear mixed-effects) estimation: FO, FOCE, FOCE with interaction (FOCE-I) and Laplace.

Model: subject *i* has random effects :math:`\eta_i \sim N(0, \Omega)` on some parameters (:class:`pkpd.IIV`),
individual parameters :math:`P_i = g(\theta, \eta_i)` (log-normal by default), predictions
:math:`f_{ij}(\eta_i)` from the ODE model, and observations :math:`y_{ij} \sim N(f_{ij}, R_{ij})` with the
residual variance :math:`R_{ij} = \sigma(f_{ij})^2` of an error model (:mod:`pkpd.error_models`; for
:class:`~pkpd.LogNormal` the same on :math:`\log y`).

The objective function value (OFV) is NONMEM's: :math:`-2\log L` **without** the constant
:math:`N_{obs}\log 2\pi` (so the numbers equal NONMEM's "OBJECTIVE FUNCTION VALUE"). ``FitResult``-style
results also give ``minus2ll = ofv + N log 2π`` (N quantified observations: a censored one has no density and no
log 2π), used for AIC and BIC (as :func:`pkpd.fit` does). With
the individual objective

.. math:: O_i(\eta) = \sum_j \left[\frac{(y_{ij}-f_{ij})^2}{R_{ij}} + \log R_{ij}\right]
          + \eta^\top\Omega^{-1}\eta,

the conditional estimate (empirical Bayes estimate, EBE) is :math:`\hat\eta_i = \arg\min O_i`, and

* **FOCE-I** (NONMEM ``METHOD=1 INTER``):
  :math:`\mathrm{OFV}_i = O_i(\hat\eta_i) + \log|\Omega| + \log|H_i|`, with the expected-information
  (first-derivative) approximation of the Hessian of :math:`O_i/2`,
  :math:`H_i = \Omega^{-1} + \sum_j \left[g_{ij} g_{ij}^\top / R_{ij}
  + \tfrac12\, r_{ij} r_{ij}^\top / R_{ij}^2\right]`, :math:`g_{ij} = \partial f_{ij}/\partial\eta`,
  :math:`r_{ij} = \partial R_{ij}/\partial\eta`, all at :math:`\hat\eta_i` (Wang 2007). The
  :math:`\tfrac12 r r^\top/R^2` term is what makes the proportional-error example give NONMEM's 39.458 (without it,
  39.273);
* **FOCE** (``METHOD=1``): the same, but :math:`R` is evaluated at the population prediction
  :math:`f(\eta = 0)` both in :math:`O_i` and in :math:`H_i` (so :math:`r = 0`: no η–ε interaction);
* **Laplace** (``METHOD=1 LAPLACIAN INTER``): :math:`\log|\tfrac12\nabla^2 O_i(\hat\eta_i)|` with the exact
  (finite-difference) Hessian; this is also the method for data below the limit of quantification (M3), whose
  likelihood term :math:`-2\log\Phi((\mathrm{LLOQ}-f)/\sqrt R)` enters :math:`O_i`, as NONMEM requires;
* **FO** (``METHOD=0``): :math:`\mathrm{OFV}_i = \log|C_i| + r_i^\top C_i^{-1} r_i`, :math:`r_i = y_i - f_i(0)`,
  :math:`C_i = G_i\Omega G_i^\top + R_i`, everything at :math:`\eta = 0`.

Covariate effects on typical values (:class:`pkpd.CovariateEffect`: power, linear or categorical) can be estimated
with the other parameters: subject *i*'s typical value is :math:`\theta\,(c_i/\mathrm{ref})^{\beta}`,
:math:`\theta\,(1 + \beta(c_i - \mathrm{ref}))`, or :math:`\theta\,\beta_k` for a subject in category *k*
(:math:`\beta = 1` for the reference category), with :math:`\beta` estimated on the natural scale.
Diagnostics: PRED/IPRED/IWRES/CWRES in the fit's table, :func:`npde` (normalised prediction distribution
errors) and :func:`vpc`; :func:`pkpd.plots.plot_gof` draws the goodness-of-fit panel.

Numerics (documented choices):

* :math:`\partial f/\partial\eta` by central finite differences (step 1e-4 in η); every subject, every
  perturbation and every parameter set needed by one step of the estimation is solved in **one** compiled batch
  call (:func:`pkpd.simulation.run_batch`).
* :math:`\hat\eta_i` by a damped Gauss–Newton iteration on :math:`O_i` using the expected-information Hessian
  (:math:`G^\top R^{-1} G + \tfrac12 R'^\top R^{-2} R' + \Omega^{-1}`), with step halving, to a step
  below 1e-7 (or a decrease below 1e-10).
* Outer problem: L-BFGS-B over log typical values (natural scale for parameters whose lower bound is negative),
  the Cholesky factor of Ω (log diagonal; off-diagonal elements only where the initial Ω has a covariance) and
  the log of the residual-error parameters; central-difference gradients, every perturbed parameter set solved in
  the same batch call; η warm-started from the previous solution.
* Covariance step: :math:`R` = Hessian of the OFV and :math:`S = \sum_i \nabla\mathrm{OFV}_i\nabla\mathrm{OFV}_i^\top`
  (central differences); covariance :math:`R^{-1}SR^{-1}` (NONMEM's default sandwich), :math:`2R^{-1}` or
  :math:`4S^{-1}`; standard errors of the natural-scale parameters by the delta method. If the requested matrix
  cannot be formed, the result falls back (sandwich → R → S) and says so; if none can, it shows no standard errors.

References
----------
Wang Y (2007) Derivation of various NONMEM estimation methods. J Pharmacokinet Pharmacodyn 34:575-593.
Beal SL, Sheiner LB, Boeckmann AJ, Bauer RJ (1989-2011) NONMEM Users Guides. Icon, Ellicott City.
Hooker AC, Staatz CE, Karlsson MO (2007) Conditional weighted residuals (CWRES). Pharm Res 24:2187-2197.
Savic RM, Karlsson MO (2009) Importance of shrinkage in empirical Bayes estimates. AAPS J 11:558-569.
Brendel K, Comets E, Laffont C, Laveille C, Mentre F (2006) Metrics for external model evaluation with an application to
the population pharmacokinetics of gliclazide. Pharm Res 23:2036-2049.
Comets E, Brendel K, Mentre F (2008) Computing normalised prediction distribution errors to evaluate nonlinear
mixed-effect models: the npde add-on package for R. Comput Methods Programs Biomed 90:154-166.
Nguyen TH, Comets E, Mentre F (2012) Extension of NPDE for evaluation of nonlinear mixed effect models in presence
of data below the quantification limit. J Pharmacokinet Pharmacodyn 39:499-518.
"""

from __future__ import annotations

import dataclasses
import html
import math
import time as _time
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from .compile import compile_model
from .error_models import ERROR_MODELS, M3
from .errors import DataError, FitError, did_you_mean
from .model import Model
from .population import IIV, IOV, transform
from .settings import SolverSettings

__all__ = ["METHODS", "VPC", "PopulationFit", "bootstrap_population", "fit_population", "npde", "population_objective",
           "vpc"]

METHODS = ("focei", "foce", "fo", "laplace")
_LOG_2PI = math.log(2.0 * math.pi)
_H_ETA = 1e-4       # finite-difference step in eta for df/deta
_H_OUTER = 1e-4     # finite-difference step of the outer gradient (internal scale)
_H_HESS = 2e-3      # finite-difference step of the covariance-step Hessian (internal scale)
_PENALTY = 1e10     # OFV of a parameter set whose model cannot be solved
_ETA_TOL = 1e-7     # EBE convergence: Newton step below this (the OFV is stationary in eta: error ~ 1e-14)


# ====================================================================================================== problem
class _Problem:
    """Data + model + variability: OFVs of many parameter sets in one batch call per inner iteration (private)."""

    def __init__(self, model: Model, data, iiv: IIV, error: dict, method: str, blq, settings: SolverSettings,
                 iov: IOV | None = None):
        from ._sensitivity import dose_dependence
        from .fitting import _observations
        from .simulation import build_events, merge_events

        self.model, self.iiv, self.method = model, iiv, method
        self.settings = dataclasses.replace(settings, on_failure="mark")
        self.cm = compile_model(model)
        self.outputs = tuple(error)
        self.errors = [error[o] for o in self.outputs]
        self.data = d = _observations(model, data, self.outputs, blq)
        self.blq = blq
        if d.censored.any() and method != "laplace":
            raise FitError(f"data: {int(d.censored.sum())} observations are below the limit of quantification; "
                           f"M3 needs method='laplace' (as NONMEM needs LAPLACIAN for M3); got method={method!r}")
        self.out_index = np.array([model.output_names.index(o) for o in self.outputs], dtype=np.int64)
        self.eta_index = np.array([model.parameter_names.index(n) for n in iiv.names], dtype=np.int64)
        n = d.n_subjects
        counts = np.bincount(d.subject, minlength=n)
        if np.any(counts == 0):
            raise FitError("data: a subject has no observations")
        J = int(counts.max())
        self.obs = np.zeros((n, J), dtype=np.int64)
        self.mask = np.zeros((n, J), dtype=bool)
        for i in range(n):
            k = np.flatnonzero(d.subject == i)
            self.obs[i, :k.size] = k
            self.mask[i, :k.size] = True
        self.n, self.J = n, J
        self.q_iiv = iiv.n_eta
        self.iov = iov
        self.n_params = len(model.parameters)
        if iov is not None:
            for name in iov.names:
                if name not in model.parameter_names:
                    raise FitError(f"iov: model {model.name!r} has no parameter {name!r}."
                                   + did_you_mean(name, model.parameter_names))
            self.occ_start = _occasion_starts(model, data, d)             # (n, n_occ), inf where absent
            self.n_occ = self.occ_start.shape[1]
            self.iov_index = np.array([model.parameter_names.index(x) for x in iov.names], dtype=np.int64)
            # the transformation of each IOV parameter: the IIV's when it has one (kappa adds to eta)
            self.iov_dist = tuple(iiv.distribution_of(x) if x in iiv.names else iov.distribution_of(x)
                                  for x in iov.names)
            self.iov_eta = tuple(iiv.names.index(x) if x in iiv.names else -1 for x in iov.names)
        else:
            self.n_occ = 0
        self.q = self.q_iiv + (iov.n_eta * self.n_occ if iov is not None else 0)
        self.y = np.where(self.mask, d.dv[self.obs], 1.0)
        self.cens = self.mask & d.censored[self.obs]
        self.limit = np.where(self.cens, d.limit[self.obs], 1.0)
        self.which = d.output[self.obs]                       # (n, J) index into outputs
        self.base = np.array([p.value for p in model.parameters], dtype=float)
        dep = dose_dependence(model, tuple(sorted(model.parameter_names)))
        self.events_depend = any(a or b for a, b in dep.values())
        q0 = self.cm.build_q(np.tile(self.base, (n, 1)), d.covariates)
        self.events0 = merge_events(build_events(self.cm, d.regimens, q0, d.explicit), d.covariate_events)
        self.n_solves = 0

    # -- predictions -------------------------------------------------------------------------------------------
    def predict(self, P: np.ndarray) -> np.ndarray:
        """Predictions (c, n, J) for parameter rows P (c, n, n_params) (c copies of the n subjects)."""
        from .simulation import EventTable, build_events, merge_events, run_batch

        c = P.shape[0]
        d = self.data
        changes = P[..., self.n_params:].reshape(c * self.n, -1)
        P = P[..., :self.n_params]
        flat = P.reshape(c * self.n, -1)
        cov = np.tile(d.covariates, (c, 1))
        with np.errstate(all="ignore"):
            q = self.cm.build_q(flat, cov)
        good = np.all(np.isfinite(q), axis=1)
        if not good.all():
            q0 = self.cm.build_q(np.tile(self.base, (self.n, 1)), d.covariates)
            q = np.where(good[:, None], q, np.tile(q0, (c, 1)))
        with np.errstate(all="ignore"):
            y0 = self.cm.initial_state(q)
        good &= np.all(np.isfinite(y0), axis=1)
        y0 = np.where(np.isfinite(y0), y0, 0.0)
        if self.events_depend:
            with np.errstate(all="ignore"):
                ev = merge_events(build_events(self.cm, d.regimens * c, q, d.explicit), d.covariate_events)
        else:
            e = self.events0
            ev = EventTable(np.tile(e.time, (c, 1)), np.tile(e.kind, (c, 1)), np.tile(e.index, (c, 1)),
                            np.tile(e.value, (c, 1)), np.tile(e.count, c))
        if self.n_occ > 1:
            ev = merge_events(ev, self._occasion_events(changes, c))
        tt = np.tile(d.times, (c, 1))
        first = np.where(ev.count > 0, ev.time[:, 0], np.inf)
        t0 = np.minimum(tt[:, 0], first)
        self.n_solves += c * self.n
        with np.errstate(all="ignore"):
            sol = run_batch(self.cm, q, y0, ev, tt, np.tile(d.pre, (c, 1)), np.tile(d.n_times, c), t0,
                            self.settings, keep_states=False)
        good &= sol["status"] == 0
        out = sol["outputs"].reshape(c, self.n, d.times.shape[1], -1)
        ti = d.time_index[self.obs]
        oi = self.out_index[self.which]
        F = out[:, np.arange(self.n)[:, None], ti, oi]
        F = np.where(good.reshape(c, self.n)[:, :, None], F, np.nan)
        return F

    def params(self, theta: np.ndarray, eta: np.ndarray) -> np.ndarray:
        """Parameter rows (K, m, n, n_params) from typical rows theta (K, n_params), or per-subject typical rows
        (K, n, n_params) with covariate effects, and eta (K, m, n, q)."""
        K, m, n, _ = eta.shape
        if theta.ndim == 2:
            theta = theta[:, None, :]
        theta = np.broadcast_to(theta, (K, n, theta.shape[-1]))
        P = np.broadcast_to(theta[:, None], (K, m, n, theta.shape[-1])).copy()
        typ = theta[:, None][..., self.eta_index]
        e_iiv = eta[..., :self.q_iiv]
        with np.errstate(all="ignore"):
            P[..., self.eta_index] = self.iiv.individual(np.broadcast_to(typ, e_iiv.shape), e_iiv)
        if self.iov is None:
            return P
        # IOV: the value at each occasion; occasion 0 goes into the parameter, later ones into extra columns
        # that predict() turns into parameter changes at the occasions' start times
        p = self.iov.n_eta
        kappa = eta[..., self.q_iiv:].reshape(K, m, n, self.n_occ, p)
        occ = np.empty((K, m, n, self.n_occ, p))
        for j, (pj, dist, ej) in enumerate(zip(self.iov_index, self.iov_dist, self.iov_eta)):
            base = 0.0 if ej < 0 else e_iiv[..., ej][..., None]
            occ[..., j] = transform(dist, theta[:, None, :, pj][..., None], base + kappa[..., j])
        P[..., self.iov_index] = occ[..., 0, :]
        return np.concatenate([P, occ[..., 1:, :].reshape(K, m, n, -1)], axis=-1)

    def _occasion_events(self, values: np.ndarray, c: int):
        """Kind-3 events setting the IOV parameters at the start of occasions 2, 3... ((c n, w) tables)."""
        from .simulation import set_events

        starts = np.tile(np.repeat(self.occ_start[:, 1:], self.iov.n_eta, axis=1), (c, 1))  # (c n, (n_occ-1) p)
        return set_events(starts, np.tile(self.iov_index, self.n_occ - 1)[None, :], values)

    def predict_grad(self, theta, eta, grad: bool = True):
        """f (K, n, J) and G = df/deta (K, n, J, q) by central differences (one batch call)."""
        K, n, q = eta.shape
        if grad:
            steps = np.concatenate([np.zeros((1, q)), _H_ETA * np.eye(q), -_H_ETA * np.eye(q)])
        else:
            steps = np.zeros((1, q))
        E = eta[:, None, :, :] + steps[None, :, None, :]                    # (K, m, n, q)
        P = self.params(theta, E)
        F = self.predict(P.reshape(-1, n, P.shape[-1])).reshape(K, steps.shape[0], n, self.J)
        f = F[:, 0]
        if not grad:
            return f, None
        G = (F[:, 1:q + 1] - F[:, q + 1:]) / (2 * _H_ETA)                   # (K, q, n, J)
        return f, np.moveaxis(G, 1, -1)

    # -- residual error ----------------------------------------------------------------------------------------
    def residual(self, errs, f):
        """Transformed observation u, prediction m, dm/df, sd s, ds/df and log-Jacobian term; shape (K, n, J)."""
        K = f.shape[0]
        u = np.empty_like(f)
        m = np.empty_like(f)
        dm = np.empty_like(f)
        s = np.empty_like(f)
        ds = np.empty_like(f)
        jac = np.zeros_like(f)
        with np.errstate(all="ignore"):
            for k in range(K):
                for o, em in enumerate(errs[k]):
                    sel = self.which == o
                    fk = f[k][sel]
                    yk = self.y[sel]
                    sk, dsk, _ = em._scale(fk)
                    s[k][sel] = sk
                    ds[k][sel] = dsk
                    if em.log_scale:
                        u[k][sel], m[k][sel], dm[k][sel] = np.log(yk), np.log(fk), 1.0 / fk
                        jac[k][sel] = np.where(self.cens[sel], 0.0, -np.log(yk))
                    else:
                        u[k][sel], m[k][sel], dm[k][sel] = yk, fk, 1.0
        return u, m, dm, s, ds, jac

    # -- objective ---------------------------------------------------------------------------------------------
    def ofv(self, theta, omega, errs, eta0=None, *, laplace_hessian=None):
        """Per-subject OFV (K, n), EBEs (K, n, q) and diagnostics for K parameter sets.

        theta (K, n_params) natural values; omega (K, q, q); errs: list (K) of lists of error models.
        """
        method = self.method
        K, n, q = theta.shape[0], self.n, self.q
        lap = method == "laplace" if laplace_hessian is None else laplace_hessian
        try:
            Lo = np.linalg.cholesky(omega)
        except np.linalg.LinAlgError:
            return np.full((K, n), _PENALTY / n), np.zeros((K, n, q)), None
        om_inv = np.linalg.inv(omega)
        logdet_om = 2 * np.log(np.diagonal(Lo, axis1=1, axis2=2)).sum(axis=1)          # (K,)
        mask = self.mask
        if method in ("fo", "foce"):
            f0, G0 = self.predict_grad(theta, np.zeros((K, n, q)))
            u0, m0, dm0, s0, _, jac0 = self.residual(errs, f0)
            R0 = np.where(mask, s0 ** 2, 1.0)
        if method == "fo":
            Gm = np.where(mask[..., None], G0 * dm0[..., None], 0.0)
            C = np.einsum("knjq,kqr,knlr->knjl", Gm, omega, Gm) + R0[..., None] * np.eye(self.J)
            r = np.where(mask, u0 - m0, 0.0)
            ok = np.all(np.isfinite(C), axis=(2, 3)) & np.all(np.isfinite(r), axis=2)
            C = np.where(ok[..., None, None], C, np.eye(self.J))
            sign, logdet = np.linalg.slogdet(C)
            quad = np.einsum("knj,knj->kn", r, np.linalg.solve(C, r[..., None])[..., 0])
            out = logdet + quad - 2 * np.where(mask, jac0, 0.0).sum(axis=2)
            out = np.where(ok & (sign > 0), out, _PENALTY / n)
            diag = dict(f=f0, G=G0, eta=np.zeros((K, n, q)), f0=f0, G0=G0, R=R0)
            return out, np.zeros((K, n, q)), diag
        eta = np.zeros((K, n, q)) if eta0 is None else np.array(eta0, dtype=float)
        interaction = method in ("focei", "laplace")

        def evaluate(eta):
            f, G = self.predict_grad(theta, eta)
            u, m, dm, s, ds, jac = self.residual(errs, f)
            Gm = G * dm[..., None]
            if interaction:
                R = s ** 2
                Rp = (2 * s * ds)[..., None] * G           # dR/deta (K, n, J, q)
            else:
                R, Rp = R0, np.zeros_like(G)
            quant = mask & ~self.cens
            r = u - m
            with np.errstate(all="ignore"):
                term = np.where(quant, r * r / R + np.log(R) - 2 * jac, 0.0)
                gq = np.where(quant[..., None], -Gm * (r / R)[..., None] + 0.5 * Rp * ((1 / R - r * r / R ** 2)
                                                                                      [..., None]), 0.0)
                Hq = (np.einsum("knjq,knjr,knj->knqr", np.where(quant[..., None], Gm, 0.0), Gm, 1 / R)
                      + 0.5 * np.einsum("knjq,knjr,knj->knqr", np.where(quant[..., None], Rp, 0.0), Rp,
                                        1 / R ** 2))
                if self.cens.any():
                    from scipy.special import log_ndtr

                    lim = self.limit
                    sd = np.sqrt(R)
                    z = (np.where(self.cens, _transform_limit(self, errs, lim), 0.0) - m) / sd
                    lphi = log_ndtr(z)
                    term = term + np.where(self.cens, -2 * lphi, 0.0)
                    lam = np.exp(-0.5 * z * z - 0.5 * _LOG_2PI - lphi)
                    dz = -(Gm + (z / (2 * R))[..., None] * Rp) / sd[..., None]
                    gq = gq + np.where(self.cens[..., None], -lam[..., None] * dz, 0.0)
                    Hq = Hq + np.einsum("knjq,knjr,knj->knqr", np.where(self.cens[..., None], dz, 0.0), dz,
                                        np.where(self.cens, lam * (lam + z), 0.0))
            obj = term.sum(axis=2) + np.einsum("knq,kqr,knr->kn", eta, om_inv, eta)
            grad = gq.sum(axis=2) + np.einsum("kqr,knr->knq", om_inv, eta)
            H = Hq + om_inv[:, None]
            obj = np.where(np.isfinite(obj) & np.all(np.isfinite(H), axis=(2, 3)), obj, np.inf)
            return obj, grad, H, dict(f=f, G=G, R=R, Gm=Gm, u=u, m=m, s=s)

        obj, grad, H, info = evaluate(eta)
        bad0 = ~np.isfinite(obj)
        if bad0.any() and eta0 is not None:   # a warm start that cannot be solved: restart those at 0
            eta = np.where(bad0[..., None], 0.0, eta)
            obj, grad, H, info = evaluate(eta)
        step = _newton(H, grad)
        alpha = np.ones((K, n))
        done = np.zeros((K, n), dtype=bool) | ~np.isfinite(obj)
        for _ in range(100):
            active = ~done
            if not active.any():
                break
            trial = eta + np.where(active[..., None], alpha[..., None] * step, 0.0)
            o2, g2, H2, info2 = evaluate(trial)
            better = active & (o2 <= obj + 1e-12 * np.abs(obj))
            tiny = better & (obj - o2 < 1e-10)
            eta = np.where(better[..., None], trial, eta)
            obj = np.where(better, o2, obj)
            grad = np.where(better[..., None], g2, grad)
            H = np.where(better[..., None, None], H2, H)
            for key in info:
                info[key] = np.where(_expand(better, info[key]), info2[key], info[key])
            small = np.max(np.abs(alpha[..., None] * step), axis=2) < _ETA_TOL
            new_step = _newton(H, grad)
            done |= better & ((np.max(np.abs(new_step), axis=2) < _ETA_TOL) | tiny)
            done |= active & ~better & small
            step = np.where(better[..., None], new_step, step)
            alpha = np.where(better, 1.0, alpha * 0.5)
        if lap:
            Hdet = self.exact_hessian(theta, eta, errs, omega) if method == "laplace" else H
        elif interaction:
            Hdet = H   # expected information incl. the 1/2 R'R'/R^2 term (NONMEM FOCE-I; reproduces Wang 2007)
        else:
            Gm = info["Gm"]
            Hdet = np.einsum("knjq,knjr,knj->knqr", np.where(mask[..., None], Gm, 0.0), Gm, 1 / R0) + om_inv[:, None]
        sign, logdet_h = np.linalg.slogdet(Hdet)
        out = obj + logdet_om[:, None] + logdet_h
        out = np.where(np.isfinite(out) & (sign > 0), out, _PENALTY / n)
        info["eta"] = eta
        if method == "foce":
            info["f0"], info["G0"], info["R"] = f0, G0, R0
        return out, eta, info

    def exact_hessian(self, theta, eta, errs, omega):
        """½ ∇² O_i(η̂) by central differences of O_i (Laplace), (K, n, q, q)."""
        K, n, q = eta.shape
        h = 1e-3
        S = _hessian_stencil(q, h)
        E = eta[:, None] + S[None, :, None, :]                               # (K, m, n, q)
        m_ = S.shape[0]
        P = self.params(theta, E)
        F = self.predict(P.reshape(-1, n, P.shape[-1])).reshape(K, m_, n, self.J)
        om_inv = np.linalg.inv(omega)
        vals = np.empty((K, m_, n))
        for j in range(m_):
            vals[:, j] = self._objective_at(F[:, j], E[:, j], errs, om_inv)
        return 0.5 * _hessian_from_stencil(np.moveaxis(vals, 1, -1), q, h)

    def _objective_at(self, f, eta, errs, om_inv):
        """O_i(η) (K, n) from predictions f (K, n, J) (interaction: R at f)."""
        u, m, dm, s, ds, jac = self.residual(errs, f)
        R = s ** 2
        quant = self.mask & ~self.cens
        with np.errstate(all="ignore"):
            term = np.where(quant, (u - m) ** 2 / R + np.log(R) - 2 * jac, 0.0)
            if self.cens.any():
                from scipy.special import log_ndtr

                z = (np.where(self.cens, _transform_limit(self, errs, self.limit), 0.0) - m) / np.sqrt(R)
                term = term + np.where(self.cens, -2 * log_ndtr(z), 0.0)
        return term.sum(axis=2) + np.einsum("knq,kqr,knr->kn", eta, om_inv, eta)


def _transform_limit(prob, errs, lim):
    out = np.array(lim, dtype=float)
    for o, em in enumerate(errs[0]):
        if em.log_scale:
            sel = prob.which == o
            with np.errstate(all="ignore"):
                out[sel] = np.log(out[sel])
    return out


def _expand(mask, arr):
    return mask.reshape(mask.shape + (1,) * (arr.ndim - mask.ndim))


def _newton(H, g):
    with np.errstate(all="ignore"):
        try:
            step = -np.linalg.solve(H, g[..., None])[..., 0]
        except np.linalg.LinAlgError:
            step = -g
    step = np.where(np.isfinite(step), step, 0.0)
    # keep a single step within a plausible range of eta (|step| <= 2)
    big = np.max(np.abs(step), axis=-1, keepdims=True)
    return np.where(big > 2.0, step * 2.0 / np.maximum(big, 1e-300), step)


# ====================================================================================================== layout
@dataclass(frozen=True, eq=False)
class _Layout:
    """The internal vector: typical values, Cholesky factor of Omega, error parameters (private)."""

    model: Model
    theta_names: tuple[str, ...]
    theta_log: np.ndarray
    theta_lower: np.ndarray
    theta_upper: np.ndarray
    chol_index: tuple[tuple[int, int], ...]       # estimated (row, col) of L
    outputs: tuple[str, ...]
    error_slots: tuple[tuple[int, str], ...]       # (output index, parameter name)
    base: np.ndarray
    L0: np.ndarray
    errors0: tuple
    x0: np.ndarray
    iov_names: tuple = ()                          # parameters with inter-occasion variability (diagonal Pi)
    n_occ: int = 0                                 # occasions (most of any subject)
    effects: tuple = ()                            # _Coefficient (initial values), estimated
    user_effects: tuple = ()                       # the CovariateEffect objects they come from
    effect_columns: np.ndarray | None = None       # (n_effects, n_subjects) covariate values

    @property
    def n(self) -> int:
        return self.x0.size

    def coefficients(self, X: np.ndarray) -> np.ndarray:
        """Covariate-effect coefficients (K, n_effects) from internal rows X (K, n) (natural scale, last)."""
        X = np.atleast_2d(X)
        return X[:, X.shape[1] - len(self.effects):]

    def subject_theta(self, X: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """Typical rows theta (K, n_params) adjusted per subject by the covariate effects: (K, n, n_params)
        (theta itself when there are none)."""
        if not self.effects:
            return theta
        coef = self.coefficients(X)
        return _apply_effects(self.model, theta, self.effects, coef, self.effect_columns)

    def names(self) -> list[str]:
        iiv_names = [f"omega({a},{b})" for a, b in self.chol_index]
        return (list(self.theta_names) + iiv_names + [f"{self.outputs[o]}.{p}" for o, p in self.error_slots]
                + [f"pi({n})" for n in self.iov_names] + [c.name for c in self.effects])

    def unpack(self, X: np.ndarray):
        """theta (K, n_params), omega (K, q, q), errs (K lists) from internal rows X (K, n)."""
        X = np.atleast_2d(X)
        K = X.shape[0]
        nt = len(self.theta_names)
        theta = np.tile(self.base, (K, 1))
        idx = [self.model.parameter_names.index(n) for n in self.theta_names]
        with np.errstate(over="ignore"):
            theta[:, idx] = np.where(self.theta_log, np.exp(X[:, :nt]), X[:, :nt])
        L = np.tile(self.L0, (K, 1, 1))
        for j, (a, b) in enumerate(self.chol_index):
            v = X[:, nt + j]
            L[:, a, b] = np.exp(v) if a == b else v
        omega = L @ np.swapaxes(L, 1, 2)
        off = nt + len(self.chol_index)
        errs = []
        for k in range(K):
            ems = list(self.errors0)
            for j, (o, p) in enumerate(self.error_slots):
                ems[o] = dataclasses.replace(ems[o], **{p: float(np.exp(X[k, off + j]))})
            errs.append(ems)
        if self.iov_names:
            pi = np.exp(2 * X[:, off + len(self.error_slots):off + len(self.error_slots) + len(self.iov_names)])
            omega = _all_random_effects(omega, pi, self.n_occ)
        return theta, omega, errs

    def natural(self, x: np.ndarray) -> np.ndarray:
        """The reported parameters: typical values, Omega elements, error parameters."""
        theta, omega, errs = self.unpack(x[None, :])
        idx = [self.model.parameter_names.index(n) for n in self.theta_names]
        om = [omega[0, a, b] for a, b in self.chol_index]
        er = [getattr(errs[0][o], p) for o, p in self.error_slots]
        q = len(self.L0)
        pi = [omega[0, q + j, q + j] for j in range(len(self.iov_names))]
        return np.concatenate([theta[0, idx], om, er, pi, self.coefficients(x[None, :])[0]])


def _apply_effects(model: Model, theta: np.ndarray, effects, coef: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """Per-subject typical values (K, n, n_params): theta (K, n_params) times each effect's factor, with
    coefficients coef (K, n_effects) and covariate columns (n_effects, n)."""
    out = np.repeat(theta[:, None, :], columns.shape[1], axis=1)
    for e, (eff, c) in enumerate(zip(effects, columns)):
        j = model.parameter_names.index(eff.parameter)
        b = coef[:, e][:, None]
        with np.errstate(all="ignore"):
            if eff.kind == "power":
                out[:, :, j] *= (c[None, :] / eff.ref) ** b
            elif eff.kind == "factor":
                out[:, :, j] *= 1.0 + (b - 1.0) * c[None, :]
            else:
                out[:, :, j] *= 1.0 + b * (c[None, :] - eff.ref)
    return out


def _effect_columns(model: Model, prob, effects, data) -> np.ndarray | None:
    """Checked covariate columns (n_effects, n_subjects) of the effects, from the data."""
    from .fitting import _read
    from .population import CovariateEffect

    if not effects:
        return None
    table = _read(model, data).table
    by_upper = {str(c).upper(): c for c in table.columns}
    cols = []
    for eff in effects:
        if not isinstance(eff, CovariateEffect):
            raise FitError(f"covariates: expected pkpd.CovariateEffect objects; got {type(eff).__name__}")
        if eff.parameter not in model.parameter_names:
            raise FitError(f"covariates: model {model.name!r} has no parameter {eff.parameter!r}."
                           + did_you_mean(eff.parameter, model.parameter_names))
        if eff.kind == "categorical" and (not isinstance(eff.value, Mapping) or not eff.value):
            raise FitError(f"covariates: the categorical effect of {eff.covariate!r} on {eff.parameter!r} needs "
                           "value = a dict category -> initial factor for every non-reference category, e.g. "
                           "{1: 0.8} (the reference category, factor 1, is left out)")
        if eff.covariate not in model.covariate_names:
            raise FitError(f"covariates: model {model.name!r} declares no covariate {eff.covariate!r} (declare it "
                           "in the model file's [covariates])." + did_you_mean(eff.covariate, model.covariate_names))
        if eff.covariate not in prob.data.explicit:
            raise FitError(f"covariates: the data have no column {eff.covariate!r} for the effect on "
                           f"{eff.parameter!r}")
        j_cov = model.covariate_names.index(eff.covariate)
        ce = prob.data.covariate_events
        if ce is not None and np.any(ce.index == len(model.parameters) + j_cov):
            raise FitError(f"covariates: {eff.covariate!r} changes within a subject; an estimated CovariateEffect "
                           "takes one value per subject. For a time-varying covariate, write the covariate model "
                           f"in the model file (e.g. {eff.parameter} = TV{eff.parameter} * ({eff.covariate}/70)**"
                           "BETA) and estimate its coefficient as a parameter")
        c = prob.data.covariates[:, j_cov].astype(float)
        column = eff.covariate if eff.covariate in table else by_upper[eff.covariate.upper()]
        given = table.groupby("ID", sort=False)[column].apply(lambda v: bool(np.isfinite(
            np.asarray(v, dtype=float)).any()))
        # the reader gives a subject without a value the model file's default: an error for an estimated effect
        bad = ~np.array([bool(given.get(sid, False)) for sid in prob.data.ids])
        bad |= ~np.isfinite(c) | ((c <= 0) if eff.kind == "power" else np.zeros(c.shape, dtype=bool))
        if bad.any():
            sid = prob.data.ids[int(np.flatnonzero(bad)[0])]
            raise FitError(f"covariates: covariate {eff.covariate!r} is missing (or not positive, for a power "
                           f"effect) for subject {sid!r}")
        if eff.kind == "categorical":
            for category in eff.value:
                indicator = c == float(category)
                if not indicator.any():
                    raise FitError(f"covariates: no subject has {eff.covariate} = {category!r}, so its factor on "
                                   f"{eff.parameter!r} cannot be estimated (categories in the data: "
                                   f"{sorted(set(c.tolist()))})")
                cols.append(indicator.astype(float))
        else:
            cols.append(c)
    return np.array(cols)


def _occasion_starts(model: Model, data, d) -> np.ndarray:
    """Start time [model time unit] of each subject's occasions from the data's OCC column: (n_subjects, n_occ),
    the first column unused (occasion 1 holds from the start), inf where a subject has fewer occasions."""
    from . import units as un
    from .fitting import _plain, _read

    ds = _read(model, data)
    table = ds.table
    column = next((c for c in table.columns if str(c).upper() == "OCC"), None)
    if column is None:
        raise FitError("iov: the data have no OCC column; number each subject's occasions (1, 2, ...) in an OCC "
                       "column (an occasion starts at its first record)")
    tf = un.convert(ds.time_unit, model.time_unit)
    groups = dict(tuple(table.groupby("ID", sort=False)))
    starts = []
    for sid in d.ids:
        sub = groups[sid]
        occ = sub[column].to_numpy(dtype=float)
        rows = sub["ROW"].to_numpy()
        if not np.all(np.isfinite(occ)):
            raise DataError("OCC must be given on every record of a subject with inter-occasion variability",
                            row=int(rows[~np.isfinite(occ)][0]), column=column, file=ds.source)
        change = np.flatnonzero(occ[1:] != occ[:-1]) + 1
        seen = [occ[0]] + list(occ[change])
        if len(set(seen)) != len(seen):
            k = change[[i for i in range(len(change)) if occ[change[i]] in seen[:i + 1]][0]]
            raise DataError(f"OCC {_plain(occ[k])} of subject {sid!r} comes back after another occasion; occasions "
                            "must follow each other in time", row=int(rows[k]), column=column, file=ds.source)
        t = sub["TIME"].to_numpy(dtype=float) * tf
        starts.append([-np.inf] + list(t[change]))
    width = max(len(s) for s in starts)
    out = np.full((len(starts), width), np.inf)
    for i, st in enumerate(starts):
        out[i, :len(st)] = st
    return out


@dataclass(frozen=True)
class _Coefficient:
    """One estimated covariate coefficient (private): a power or linear effect, or the factor of one category of
    a categorical effect (``category`` set; its column is the 0/1 indicator of that category)."""

    parameter: str
    covariate: str
    kind: str
    value: float
    ref: float = 1.0
    category: object = None
    source: int = 0      # index of the user's CovariateEffect

    @property
    def name(self) -> str:
        if self.category is not None:
            from .fitting import _plain

            return f"{self.covariate}[{_plain(self.category)}]_on_{self.parameter}"
        return f"{self.covariate}_on_{self.parameter}"


def _coefficients(effects) -> tuple[_Coefficient, ...]:
    """The estimated coefficients of the user's effects, categorical effects expanded per category."""
    out = []
    for k, eff in enumerate(effects):
        if eff.kind == "categorical":
            out += [_Coefficient(eff.parameter, eff.covariate, "factor", float(v), category=cat, source=k)
                    for cat, v in eff.value.items()]
        else:
            out.append(_Coefficient(eff.parameter, eff.covariate, eff.kind, float(eff.value), float(eff.ref),
                                    source=k))
    return tuple(out)


def _estimated_effects(effects, coefficients: tuple[_Coefficient, ...], values) -> tuple:
    """The user's effects with their estimated values (categorical: dict category -> factor)."""
    out = list(effects)
    for c, v in zip(coefficients, values):
        eff = out[c.source]
        if c.category is None:
            out[c.source] = dataclasses.replace(eff, value=float(v))
        else:
            out[c.source] = dataclasses.replace(eff, value={**dict(eff.value), c.category: float(v)})
    return tuple(out)


def _layout(model: Model, iiv: IIV, estimate, error: dict, init: Mapping | None) -> _Layout:
    names = model.parameter_names
    for n in iiv.names:
        if n not in names:
            raise FitError(f"iiv: model {model.name!r} has no parameter {n!r}." + did_you_mean(n, names))
    est = tuple(iiv.names) if estimate is None else tuple(estimate)
    for n in est:
        if n not in names:
            raise FitError(f"estimate: model {model.name!r} has no parameter {n!r}." + did_you_mean(n, names))
    base = np.array([p.value for p in model.parameters], dtype=float)
    for k, v in dict(init or {}).items():
        if k not in names:
            raise FitError(f"init: model {model.name!r} has no parameter {k!r}." + did_you_mean(k, names))
        base[names.index(k)] = float(v)
    bounds = {p.name: p.bounds for p in model.parameters}
    lower = np.array([bounds[n][0] if bounds[n] is not None else -np.inf for n in est], dtype=float)
    upper = np.array([bounds[n][1] if bounds[n] is not None else np.inf for n in est], dtype=float)
    log = lower >= 0
    tv = np.array([base[names.index(n)] for n in est])
    outside = (tv < lower) | (tv > upper)
    if outside.any():  # bounds are plausible ranges; fitting is where they are enforced
        k = int(np.flatnonzero(outside)[0])
        raise FitError(f"estimate: the initial value {tv[k]:g} of {est[k]!r} is outside its bounds [{lower[k]:g}, "
                       f"{upper[k]:g}], and estimates stay within the bounds; start inside them (init=) or widen "
                       f"them (model.with_bounds({est[k]}=(low, high)))")
    if np.any(log & (tv <= 0)):
        bad = est[int(np.flatnonzero(log & (tv <= 0))[0])]
        raise FitError(f"estimate: the initial value of {bad!r} must be > 0 (it is estimated on the log scale)")
    L0 = np.linalg.cholesky(iiv.omega)
    pattern = iiv.omega != 0
    chol_index = tuple((a, b) for a in range(iiv.n_eta) for b in range(a + 1) if a == b or pattern[a, b])
    x_theta = np.where(log, np.log(np.where(log, tv, 1.0)), tv)
    x_chol = [np.log(L0[a, b]) if a == b else L0[a, b] for a, b in chol_index]
    slots, x_err = [], []
    outputs = tuple(error)
    for o, name in enumerate(outputs):
        em = error[name]
        for p in em.parameter_names:
            if p not in em.fixed:
                slots.append((o, p))
                x_err.append(math.log(getattr(em, p)))
    x0 = np.concatenate([x_theta, x_chol, x_err]).astype(float)
    return _Layout(model=model, theta_names=est, theta_log=log, theta_lower=lower, theta_upper=upper,
                   chol_index=chol_index, outputs=outputs, error_slots=tuple(slots), base=base, L0=L0,
                   errors0=tuple(error[o] for o in outputs), x0=x0)


# ====================================================================================================== result
@dataclass(frozen=True, eq=False)
class PopulationFit:
    r"""The result of :func:`fit_population`.

    Attributes
    ----------
    method : str
        ``"focei"``, ``"foce"``, ``"fo"`` or ``"laplace"``.
    objective : float
        NONMEM's objective function value: -2 log L without :math:`N_{obs}\log 2\pi`.
    minus2ll : float
        -2 log L including the constant (``objective + log 2π`` per quantified observation: a censored (M3) one
        has none); AIC and BIC use it.
    aic, bic : float
        ``minus2ll + 2k`` and ``minus2ll + k log n_obs`` (k estimated parameters).
    theta : dict[str, float]
        Typical values [parameter unit] (estimated and fixed).
    omega : ndarray, shape (q, q)
        Estimated :math:`\Omega` of the random effects named by ``iiv.names``.
    iiv : IIV
        The variability model at the estimates.
    error : dict[str, error model]
        Residual error models at the estimates, by output.
    parameters : pandas.DataFrame
        name, estimate, se, rse_percent (NaN when the covariance step failed); :meth:`parameter_table` adds
        units, confidence intervals and the CV % of the variabilities.
    covariance : ndarray or None
        Covariance matrix of the estimates in ``parameters`` order (natural scale).
    covariance_message : str
        Which matrix was used (sandwich, R or S) or why no standard errors are shown.
    eta : ndarray, shape (n_subjects, q)
        Empirical Bayes estimates (conditional modes; zero for FO).
    shrinkage : dict[str, float]
        η shrinkage per random effect, :math:`1 - \mathrm{SD}(\hat\eta)/\omega` [fraction].
    table : pandas.DataFrame
        ID, TIME, DV, PRED (:math:`f(\eta=0)`), IPRED (:math:`f(\hat\eta)`), RES, IWRES, CWRES, CENS, OUTPUT
        (the observed output) and one ETA column per random effect.
    n_subjects, n_obs : int
    converged : bool
    message : str
    n_evaluations : int
        Objective evaluations (parameter sets) of the outer optimiser.
    seconds : float
        Wall time of the fit [s].
    model_name : str
    output_units : dict[str, str]
        Unit of each observed output (of DV, PRED and IPRED); ``time_unit`` the model's time unit (of TIME).
    covariate_effects : tuple of CovariateEffect
        The estimated covariate effects (``value`` = estimate); ``theta`` holds the typical values at the
        effects' reference covariate values.
    iov : IOV or None
        Estimated inter-occasion variances :math:`\Pi` (with ``iov=`` in :func:`fit_population`).
    kappa : ndarray (n_subjects, n_occasions, n_iov) or None
        Empirical Bayes estimates of the occasion effects (NaN for occasions a subject does not have).
    units : dict[str, str]
        Unit of each row of ``parameters``, by name (``"1"`` for variances of log-normal effects and for
        proportional errors).

    Examples
    --------
    >>> import pkpd
    >>> fit = pkpd.fit_population("wang2007", "tests/data/wang2007/wang2007.csv", iiv={"ke": 0.04},
    ...                           error=pkpd.Proportional(cv=0.316228), maxeval=0,
    ...                           settings=pkpd.SolverSettings(rtol=1e-10, atol=1e-12))
    >>> round(fit.objective, 3)
    39.458
    """

    method: str
    objective: float
    minus2ll: float
    aic: float
    bic: float
    theta: dict
    omega: np.ndarray
    iiv: IIV
    error: dict
    parameters: object
    covariance: np.ndarray | None
    covariance_message: str
    eta: np.ndarray
    shrinkage: dict
    table: object
    n_subjects: int
    n_obs: int
    converged: bool
    message: str
    n_evaluations: int
    seconds: float
    model_name: str
    output_units: dict = field(default_factory=dict)
    time_unit: str = ""
    covariate_effects: tuple = ()
    iov: IOV | None = None
    kappa: np.ndarray | None = None
    units: dict = field(default_factory=dict)

    def parameter_table(self, level: float = 0.95):
        r"""The estimates as a report table: unit, SE, RSE, confidence interval, CV % of the variabilities.

        Parameters
        ----------
        level : float
            Coverage of the Wald confidence intervals (estimate +/- z SE on the natural scale).

        Returns
        -------
        pandas.DataFrame
            ``name, estimate, unit, se, rse_percent, ci_low, ci_high, cv_percent, shrinkage_percent``. ``cv_percent``
            is the between-subject (or between-occasion) coefficient of variation of a variance :math:`\omega^2`:
            :math:`100\sqrt{e^{\omega^2}-1}` for a log-normal effect, :math:`100\,\omega/	heta` for a normal one
            (NaN otherwise); ``shrinkage_percent`` is the η shrinkage of that random effect.

        Examples
        --------
        >>> import pkpd
        >>> fit = pkpd.fit_population("wang2007", "tests/data/wang2007/wang2007.csv", iiv={"ke": 0.04},
        ...                           error=pkpd.Additive(sd=0.3), maxeval=0)
        >>> table = fit.parameter_table()
        >>> table.loc[table["name"] == "omega2_ke", ["unit", "cv_percent"]].round(2).values.tolist()
        [['1', 20.2]]
        """
        import pandas as pd
        from scipy.stats import norm

        if not 0 < level < 1:
            raise FitError(f"parameter_table: level must be in (0, 1); got {level!r}")
        z = float(norm.ppf(0.5 + level / 2))
        p = self.parameters
        est, se = p["estimate"].to_numpy(dtype=float), p["se"].to_numpy(dtype=float)
        cv = np.full(len(p), np.nan)
        shrink = np.full(len(p), np.nan)
        kinds = dict(zip(self.iiv.names, self.iiv.distributions))
        if self.iov is not None:
            iov_kinds = dict(zip(self.iov.names, self.iov.distributions))
        for i, name in enumerate(p["name"]):
            for prefix, dist in (("omega2_", kinds), ("iov2_", iov_kinds if self.iov is not None else {})):
                if name.startswith(prefix) and name[len(prefix):] in dist:
                    target = name[len(prefix):]
                    with np.errstate(all="ignore"):
                        if dist[target] == "lognormal":
                            cv[i] = 100 * math.sqrt(math.expm1(est[i])) if est[i] >= 0 else np.nan
                        elif dist[target] == "normal" and self.theta.get(target):
                            cv[i] = 100 * math.sqrt(max(est[i], 0.0)) / abs(self.theta[target])
                    if prefix == "omega2_":
                        shrink[i] = 100 * self.shrinkage.get(target, np.nan)
        return pd.DataFrame({"name": p["name"], "estimate": est,
                             "unit": [self.units.get(n, "") for n in p["name"]], "se": se,
                             "rse_percent": p["rse_percent"].to_numpy(dtype=float),
                             "ci_low": est - z * se, "ci_high": est + z * se, "cv_percent": cv,
                             "shrinkage_percent": shrink})

    def save(self, path):
        """Write the fit to a JSON file (estimates, covariance, Omega, EBEs, diagnostics; see
        :mod:`pkpd.fit_files`)."""
        from .fit_files import save_fit

        return save_fit(self, path)

    @classmethod
    def load(cls, path) -> PopulationFit:
        """Read a fit written by :meth:`save` (validated field by field; nothing in the file is executed)."""
        from .fit_files import load_fit

        out = load_fit(path)
        if not isinstance(out, cls):
            raise FitError(f"{path}: holds a {type(out).__name__}, not a PopulationFit; use pkpd.fit_files.load_fit")
        return out

    def __repr__(self) -> str:
        lines = [f"PopulationFit({self.model_name}, {self.method.upper()}): OFV {self.objective:.3f} "
                 f"(-2LL {self.minus2ll:.3f}, AIC {self.aic:.2f}, BIC {self.bic:.2f}); {self.n_subjects} subjects, "
                 f"{self.n_obs} observations; {'converged' if self.converged else 'NOT CONVERGED'}: {self.message}"]
        p = self.parameters
        for _, row in p.iterrows():
            se = "" if not np.isfinite(row["se"]) else f"  SE {row['se']:.4g} (RSE {row['rse_percent']:.1f} %)"
            lines.append(f"  {row['name']:<22} {row['estimate']:.5g}{se}")
        lines.append("  shrinkage: " + ", ".join(f"{k} {100 * v:.1f} %" for k, v in self.shrinkage.items()))
        lines.append(f"  covariance: {self.covariance_message}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td>{html.escape(str(r['name']))}</td><td>{r['estimate']:.5g}</td>"
            f"<td>{'' if not np.isfinite(r['se']) else f'{r.se:.3g}'}</td>"
            f"<td>{'' if not np.isfinite(r['rse_percent']) else f'{r.rse_percent:.1f}'}</td></tr>"
            for _, r in self.parameters.iterrows())
        head = html.escape(f"{self.model_name} {self.method.upper()}: OFV {self.objective:.3f}, AIC {self.aic:.2f}; "
                           f"{'converged' if self.converged else 'NOT CONVERGED'} ({self.message})")
        shr = html.escape(", ".join(f"{k} {100 * v:.1f} %" for k, v in self.shrinkage.items()))
        return (f"<p><b>{head}</b></p><table><tr><th>parameter</th><th>estimate</th><th>SE</th><th>RSE %</th></tr>"
                f"{rows}</table><p>η shrinkage: {shr}. Covariance: {html.escape(self.covariance_message)}</p>")


# ====================================================================================================== API
def _error_dict(model: Model, error) -> dict:
    if isinstance(error, ERROR_MODELS):
        if len(model.outputs) != 1:
            raise FitError(f"error: model {model.name!r} has {len(model.outputs)} outputs; give a dict output -> "
                           "error model")
        return {model.output_names[0]: error}
    if isinstance(error, Mapping) and error:
        from .fitting import _check_error_models

        _check_error_models(model, error)
        return {o: error[o] for o in model.output_names if o in error}
    raise FitError(f"error: expected an error model or a dict output -> error model; got {error!r}")


def _setup(model, data, iiv, error, method, estimate, blq, settings, init, effects=(), iov=None):
    from .fitting import _read
    from .load import load_model

    if isinstance(model, str):
        model = load_model(model)
    if not isinstance(model, Model):
        raise FitError(f"model: expected a pkpd Model or a model name; got {type(model).__name__}")
    if method not in METHODS:
        raise FitError(f"method: must be one of {METHODS}; got {method!r}")
    if isinstance(iiv, Mapping):
        iiv = IIV(dict(iiv))
    if not isinstance(iiv, IIV):
        raise FitError(f"iiv: expected a dict name -> variance or a pkpd.IIV; got {type(iiv).__name__}")
    if blq is not None and not isinstance(blq, M3):
        raise FitError(f"blq: fit_population supports M3 (or None); got {type(blq).__name__}")
    error = _error_dict(model, error)
    settings = settings or SolverSettings(rtol=1e-8, atol=1e-10)
    data = _read(model, data)   # parsed once: the problem, covariate effects and occasions all read this
    if isinstance(iov, Mapping):
        iov = IOV(dict(iov))
    if iov is not None and not isinstance(iov, IOV):
        raise FitError(f"iov: expected a dict name -> variance or a pkpd.IOV; got {type(iov).__name__}")
    if iov is not None and np.any(iov.omega != np.diag(np.diag(iov.omega))):
        raise FitError("iov: covariances between occasion effects are not estimated; give variances only")
    layout = _layout(model, iiv, estimate, error, init)
    prob = _Problem(model, data, iiv, error, method, blq, settings, iov)
    if iov is not None:
        x_iov = 0.5 * np.log(np.diag(iov.omega))
        layout = dataclasses.replace(layout, iov_names=iov.names, n_occ=prob.n_occ,
                                     x0=np.concatenate([layout.x0, x_iov]))
    effects = tuple(effects or ())
    if effects:
        columns = _effect_columns(model, prob, effects, data)
        coefs = _coefficients(effects)
        x0 = np.concatenate([layout.x0, [c.value for c in coefs]])
        layout = dataclasses.replace(layout, effects=coefs, user_effects=effects, effect_columns=columns, x0=x0)
    return model, iiv, error, layout, prob


def population_objective(model, data, *, iiv, error, method: str = "focei", blq=None,
                         settings: SolverSettings | None = None, init: Mapping | None = None, iov=None) -> float:
    """NONMEM's objective function value at fixed parameters (``MAXEVAL=0``).

    Arguments as :func:`fit_population`. Returns the OFV, -2 log L without :math:`N_{obs}\\log 2\\pi`.

    Examples
    --------
    >>> import pkpd
    >>> from pkpd.nlme import population_objective
    >>> round(population_objective("wang2007", "tests/data/wang2007/wang2007.csv", iiv={"ke": 0.04},
    ...       error=pkpd.Additive(sd=0.316228), method="foce",
    ...       settings=pkpd.SolverSettings(rtol=1e-10, atol=1e-12)), 3)
    -2.059
    """
    _, _, _, layout, prob = _setup(model, data, iiv, error, method, None, blq, settings, init, iov=iov)
    theta, omega, errs = layout.unpack(layout.x0)
    with np.errstate(all="ignore"):
        out, _, _ = prob.ofv(theta, omega, errs)
    return float(out.sum())


def fit_population(model, data, *, iiv, error, method: str = "focei", estimate=None, blq=None,
                   settings: SolverSettings | None = None, init: Mapping | None = None, maxeval: int | None = None,
                   covariance: str | None = "sandwich", covariates=(), iov=None) -> PopulationFit:
    r"""Estimate a population model: typical values, :math:`\Omega` and residual error (mixed effects).

    Main arguments
    --------------
    model : Model or str
        E.g. ``pkpd.load_model("pk_1cmt_oral")``; initial typical values from the model file (or ``init``).
    data : NonmemDataset, DataFrame or CSV path
        NONMEM layout (``ID, TIME, DV, AMT, EVID, CMT, MDV``, covariates such as ``WT``; ``LLOQ``/``BLQ``).
        Covariates may change within a subject (next observation carried backward, as NONMEM): covariate models
        written in the model file follow them; an estimated ``CovariateEffect`` needs one value per subject.
    iiv : dict[str, float] or IIV
        Random effects and their initial variances, e.g. ``{"ka": 0.6, "CL": 0.3, "V": 0.1}`` (log-normal);
        an :class:`~pkpd.IIV` for block :math:`\Omega` or other distributions.
    error : error model or dict[str, error model]
        Residual error (initial values; parameters in ``fixed`` stay fixed).
    method : {"focei", "foce", "fo", "laplace"}
        The objective (see the module docstring); FOCE-I by default.

    Other arguments
    ---------------
    estimate : sequence of str, optional
        Typical values to estimate (default: those with IIV); the other parameters stay at their values.
    blq : M3, optional
        Likelihood of censored observations (needs ``method="laplace"``).
    settings : SolverSettings, optional
        Default ``rtol=1e-8, atol=1e-10``.
    init : dict[str, float], optional
        Initial typical values overriding the model file's.
    maxeval : int, optional
        Maximum outer iterations; ``0`` evaluates the objective at the initial values without estimating
        (NONMEM's ``MAXEVAL=0``), and skips the covariance step.
    covariance : {"sandwich", "R", "S"} or None
        Covariance step matrix (``None`` skips it).
    covariates : sequence of CovariateEffect, optional
        Covariate effects on typical values to estimate, e.g. ``[pkpd.CovariateEffect("CL", "WT", "power", 0.75,
        ref=70)]`` (``value`` is the initial coefficient; ``"power"``, ``"linear"`` and ``"categorical"``, e.g.
        ``CovariateEffect("CL", "SEX", "categorical", {1: 0.8})``). The covariate must be declared in the model
        file and given by the data (one value per subject).
    iov : dict[str, float] or IOV, optional
        Inter-occasion variability and initial variances, e.g. ``{"CL": 0.04}``: a random effect
        :math:`\kappa \sim N(0, \Pi)` per occasion, added to :math:`\eta`. The data need an ``OCC`` column (an
        occasion starts at its first record's time); estimated :math:`\Pi` is diagonal and the same at every
        occasion (NONMEM's ``$OMEGA BLOCK(1) SAME``).

    Returns
    -------
    PopulationFit

    Raises
    ------
    FitError
        Unknown parameter in ``iiv``/``estimate``/``init``, a non-positive-definite :math:`\Omega`, censored data
        with a method other than Laplace, bad data.

    Examples
    --------
    >>> import pkpd
    >>> fit = pkpd.fit_population("wang2007", "tests/data/wang2007/wang2007.csv", iiv={"ke": 0.04},
    ...                           error=pkpd.Additive(sd=0.3), method="focei", covariance=None)
    >>> fit.converged, 0.3 < fit.theta["ke"] < 0.6
    (True, True)

    A covariate effect to estimate (here only evaluated at its initial exponent, ``maxeval=0``):

    >>> wt = pkpd.CovariateEffect("CL", "WT", "power", 0.75, ref=70.0)
    >>> from pkpd.nonmem import read_nonmem
    >>> theoph = read_nonmem("tests/data/theoph.csv", dose_unit="mg")
    >>> f = pkpd.fit_population("pk_1cmt_oral", theoph, iiv={"CL": 0.1}, estimate=["ka", "CL", "V"],
    ...                         error=pkpd.Additive(sd=0.7), covariates=[wt], maxeval=0)
    >>> list(f.parameters["name"])
    ['ka', 'CL', 'V', 'omega2_CL', 'sd', 'WT_on_CL']
    """
    from scipy.optimize import minimize

    t_start = _time.perf_counter()
    if covariance not in (None, "sandwich", "R", "S"):
        raise FitError(f"covariance: must be 'sandwich', 'R', 'S' or None; got {covariance!r}")
    model, iiv, error, layout, prob = _setup(model, data, iiv, error, method, estimate, blq, settings, init,
                                             covariates, iov)
    state = {"eta": None, "n": 0}

    def evaluate(X, *, keep=False):
        theta, omega, errs = layout.unpack(X)
        theta = layout.subject_theta(X, theta)
        eta0 = None if state["eta"] is None else np.broadcast_to(state["eta"], (X.shape[0],) + state["eta"].shape)
        with np.errstate(all="ignore"):   # unsolvable parameter sets are penalised, not raised
            out, eta, info = prob.ofv(theta, omega, errs, eta0)
        state["n"] += X.shape[0]
        if keep and np.isfinite(out[0]).all() and out[0].sum() < _PENALTY / 2:
            state["eta"] = eta[0].copy()
        return out, eta, info

    x = layout.x0.copy()
    lo = np.where(layout.theta_log, np.log(np.maximum(layout.theta_lower, 1e-300)), layout.theta_lower)
    hi = np.where(layout.theta_log, np.log(layout.theta_upper), layout.theta_upper)
    bounds = [(a if np.isfinite(a) else None, b if np.isfinite(b) else None) for a, b in zip(lo, hi)]
    bounds += [(-12.0, 5.0) if a == b else (None, None) for a, b in layout.chol_index]
    bounds += [(-20.0, 10.0)] * len(layout.error_slots)
    bounds += [(-12.0, 5.0)] * len(layout.iov_names)
    bounds += [(1e-6, None) if c.kind == "factor" else (None, None) for c in layout.effects]
    out0, _, _ = evaluate(x[None, :], keep=True)
    if not np.all(np.isfinite(out0)) or np.any(out0 == _PENALTY / prob.n):   # a subject's OFV is penalised
        raise FitError("fit_population: the objective cannot be evaluated at the initial values: "
                       + _initial_problem(prob, layout, x))
    converged, message, nit = True, "objective evaluated at the initial values (maxeval=0)", 0
    if maxeval != 0 and layout.n:
        def fun(x):
            steps = np.concatenate([np.zeros((1, x.size)), _H_OUTER * np.eye(x.size), -_H_OUTER * np.eye(x.size)])
            X = x[None, :] + steps
            out, _, _ = evaluate(X, keep=True)   # row 0 (the centre) gives the next warm start
            tot = out.sum(axis=1)
            g = (tot[1:x.size + 1] - tot[x.size + 1:]) / (2 * _H_OUTER)
            return float(tot[0]) * scale, g * scale

        # L-BFGS-B's first step moves x by the whole gradient (its first Hessian guess is the identity): far from
        # the optimum (gradients of 10-100 on the log scale) that jumps to the bounds, where the OFV is ~1e50, and
        # the line search can then stop at the initial values reporting convergence. Scaling the objective so that
        # the initial gradient is at most 1 keeps the first step within a factor e of the initial values.
        # Covariate coefficients are on the natural scale, where a step of 1 is no "factor e": a factor 0.98 -> 0,
        # or a linear coefficient times an age span of 30, gives an unusable model and the same early stop (issue
        # 18: every candidate of a stepwise covariate search warm-started at the current optimum stopped there). Each
        # coefficient's gradient is weighted by the inverse of the step that changes its typical value by 10 %.
        scale = 1.0
        _, g0 = fun(x)
        g_weighted = np.abs(g0).copy()
        n_coef = len(layout.effects)
        if n_coef:
            g_weighted[x.size - n_coef:] /= _coefficient_steps(layout)
        scale = 1.0 / max(1.0, float(np.max(g_weighted)))
        res = minimize(fun, x, jac=True, method="L-BFGS-B", bounds=bounds,
                       options={"maxiter": maxeval or 500, "ftol": 1e-10, "gtol": 1e-4 * scale})
        x = res.x
        nit = res.nit
        converged = bool(res.success)
        message = str(res.message)
    out, eta_all, info = evaluate(x[None, :], keep=True)
    ofv_i = out[0]
    ofv = float(ofv_i.sum())
    eta = info["eta"][0] if info is not None else np.zeros((prob.n, prob.q))

    # covariance step
    est_nat = layout.natural(x)
    cov_nat, cov_msg = None, "not requested"
    if maxeval == 0:
        cov_msg = "skipped (maxeval=0)"
    elif covariance is not None and layout.n:
        cov_nat, cov_msg = _covariance_step(layout, x, evaluate, covariance, _pretty_names(layout, iiv))
    se = np.sqrt(np.diag(cov_nat)) if cov_nat is not None else np.full(est_nat.size, np.nan)
    theta, omega, errs = layout.unpack(x)
    n_obs = int(prob.mask.sum())
    k = layout.n
    # only a quantified record has a density (with its log 2π); a censored (M3) one is a probability (as in fit)
    minus2ll = ofv + int((prob.mask & ~prob.cens).sum()) * _LOG_2PI
    import pandas as pd

    with np.errstate(all="ignore"):
        rse = 100 * se / np.abs(est_nat)
    params = pd.DataFrame({"name": _pretty_names(layout, iiv), "estimate": est_nat, "se": se, "rse_percent": rse})
    q = prob.q_iiv
    omega_full = omega[0]
    omega_hat = omega_full[:q, :q]
    sd_eta = np.sqrt(np.diag(omega_hat))
    shrink = {n: float(1 - np.std(eta[:, j], ddof=1) / sd_eta[j]) if prob.n > 1 else float("nan")
              for j, n in enumerate(iiv.names)}
    with np.errstate(all="ignore"):
        table = _diagnostics(prob, layout, x, eta)
    iiv_hat = IIV.from_matrix(iiv.names, omega_hat, distribution=dict(zip(iiv.names, iiv.distributions)))
    iov_hat, kappa = None, None
    if prob.iov is not None:
        p_iov = prob.iov.n_eta
        iov_hat = IOV({n: float(omega_full[q + j, q + j]) for j, n in enumerate(prob.iov.names)},
                      distribution=dict(zip(prob.iov.names, prob.iov.distributions)))
        kappa = eta[:, q:].reshape(prob.n, prob.n_occ, p_iov).copy()
        kappa[prob.occ_start == np.inf] = np.nan                         # occasions a subject does not have
        eta = eta[:, :q]
    return PopulationFit(
        method=method, objective=ofv, minus2ll=minus2ll, aic=minus2ll + 2 * k, bic=minus2ll + k * math.log(n_obs),
        theta=dict(zip(model.parameter_names, theta[0].tolist())), omega=omega_hat, iiv=iiv_hat,
        error=dict(zip(layout.outputs, errs[0])), parameters=params, covariance=cov_nat,
        covariance_message=cov_msg, eta=eta, shrinkage=shrink, table=table, n_subjects=prob.n, n_obs=n_obs,
        converged=converged, message=message if nit or maxeval == 0 else message, n_evaluations=state["n"],
        seconds=_time.perf_counter() - t_start, model_name=model.name,
        output_units={o.name: o.unit for o in model.outputs if o.name in layout.outputs}, time_unit=model.time_unit,
        covariate_effects=_estimated_effects(layout.user_effects, layout.effects,
                                             layout.coefficients(x[None, :])[0]),
        iov=iov_hat, kappa=kappa, units=_parameter_units(model, layout, iiv))


def _coefficient_steps(layout: _Layout) -> np.ndarray:
    """Per covariate coefficient, the change that moves a subject's typical value by about 10 %."""
    steps = []
    for c, col in zip(layout.effects, layout.effect_columns):
        if c.kind == "power":
            spread = float(np.max(np.abs(np.log(col / c.ref))))
        elif c.kind == "linear":
            spread = float(np.max(np.abs(col - c.ref)))
        else:                                   # a category's factor multiplies the typical value directly
            spread = 1.0
        steps.append(0.1 / spread if spread > 0 else 0.1)
    return np.array(steps)


def _initial_problem(prob: _Problem, layout: _Layout, x: np.ndarray) -> str:
    """Why the OFV at x is penalised: the first observation whose prediction or residual SD is unusable."""
    theta, _, errs = layout.unpack(x)
    theta = layout.subject_theta(x[None, :], theta)
    with np.errstate(all="ignore"):
        f, _ = prob.predict_grad(theta, np.zeros((1, prob.n, prob.q)), grad=False)
        _, m, _, s, _, _ = prob.residual(errs, f)
    f, m, s = f[0], m[0], s[0]
    d = prob.data
    bad_solve = prob.mask & ~np.isfinite(f)
    bad_sd = prob.mask & ~bad_solve & ~(np.isfinite(s) & (s > 0) & np.isfinite(m))
    for bad, kind in ((bad_solve, "solve"), (bad_sd, "sd")):
        if bad.any():
            i, j = (int(v[0]) for v in np.nonzero(bad))
            k = prob.obs[i, j]
            out = layout.outputs[prob.which[i, j]]
            where = f"subject {d.ids[i]!r}, t = {d.time[k]:g} {layout.model.time_unit} (row {d.row[k]})"
            if kind == "solve":
                return (f"the model cannot be solved for {where} (typical values); check the initial values and "
                        "the solver settings")
            em = type(errs[0][prob.which[i, j]]).__name__
            return (f"output {out!r} at {where} is predicted {f[i, j]:g}, so its {em} error has standard deviation "
                    f"{s[i, j]:g}; use pkpd.Combined (an additive part keeps it positive), or remove that "
                    "observation (e.g. a pre-dose sample at t = 0)")
    return "check the initial values, Omega and the error model"


def _parameter_units(model: Model, layout: _Layout, iiv: IIV) -> dict[str, str]:
    """Unit of every row of ``PopulationFit.parameters``, by name."""
    names = _pretty_names(layout, iiv)
    units = [model.unit_of(n) for n in layout.theta_names]
    for a, b in layout.chol_index:
        pa, pb = iiv.names[a], iiv.names[b]
        normal = [iiv.distributions[k] == "normal" for k in (a, b)]
        units.append("*".join(f"({model.unit_of(n)})" for n, nm in zip((pa, pb), normal) if nm) or "1")
    for o, p in layout.error_slots:
        units.append(model.unit_of(layout.outputs[o]) if p == "sd" else "1")
    units += ["1"] * (len(layout.iov_names) + len(layout.effects))
    return dict(zip(names, units))


def _pretty_names(layout: _Layout, iiv: IIV) -> list[str]:
    out = list(layout.theta_names)
    for a, b in layout.chol_index:
        out.append(f"omega2_{iiv.names[a]}" if a == b else f"omega_{iiv.names[b]}_{iiv.names[a]}")
    out += [f"{layout.outputs[o]}_{p}" if len(layout.outputs) > 1 else p for o, p in layout.error_slots]
    out += [f"iov2_{n}" for n in layout.iov_names]
    out += [c.name for c in layout.effects]
    return out


def _hessian_stencil(q: int, h: float) -> np.ndarray:
    """Offsets (m, q) for a central-difference Hessian: 0, then +-h e_a for each a, then the four (+-h, +-h)
    corners of each pair a > b (the order :func:`_hessian_from_stencil` reads them in)."""
    pts = [np.zeros(q)]
    for a in range(q):
        e = np.zeros(q)
        e[a] = h
        pts += [e, -e]
    for a in range(q):
        for b in range(a):
            for sa in (1, -1):
                for sb in (1, -1):
                    e = np.zeros(q)
                    e[a], e[b] = sa * h, sb * h
                    pts.append(e)
    return np.array(pts)


def _hessian_from_stencil(vals: np.ndarray, q: int, h: float) -> np.ndarray:
    """Hessian (..., q, q) from values (..., m) of a function at the points of :func:`_hessian_stencil`."""
    H = np.empty(vals.shape[:-1] + (q, q))
    for a in range(q):
        H[..., a, a] = (vals[..., 1 + 2 * a] - 2 * vals[..., 0] + vals[..., 2 + 2 * a]) / h ** 2
    k = 1 + 2 * q
    for a in range(q):
        for b in range(a):
            pp, pm, mp, mm = (vals[..., k + i] for i in range(4))
            H[..., a, b] = H[..., b, a] = (pp - pm - mp + mm) / (4 * h * h)
            k += 4
    return H


def _covariance_step(layout: _Layout, x: np.ndarray, evaluate, which: str, names=None):
    """Covariance of the natural-scale estimates: sandwich R^-1 S R^-1, 2 R^-1 or 4 S^-1 (with fallbacks; the last
    one gives standard errors of the parameters the data inform, conditional on those they do not)."""
    p = x.size
    h = _H_HESS
    X = x[None, :] + _hessian_stencil(p, h)
    out, _, _ = evaluate(X)
    Rm = _hessian_from_stencil(out.sum(axis=1), p, h)
    gi = np.stack([(out[1 + 2 * a] - out[2 + 2 * a]) / (2 * h) for a in range(p)], axis=1)   # (n, p)
    Sm = gi.T @ gi
    notes = []
    cov = None
    r_ok = _is_pd(Rm)
    s_ok = _is_pd(Sm)
    order = {"sandwich": ["sandwich", "R", "S"], "R": ["R", "S"], "S": ["S", "R"]}[which]
    for kind in order:
        if kind == "sandwich" and r_ok:
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
            return None, ("covariance step failed: the R matrix (Hessian of the OFV) is not positive definite and "
                          "the S matrix is singular, so no standard errors are shown; the model may be "
                          "over-parameterised (fix a parameter or remove a random effect) or the fit has not "
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
        flat = [names[i] if names is not None else f"#{i + 1}" for i in np.flatnonzero(touched)]
        return cov_nat, ("2 R^-1 of the parameters the data inform: the R matrix is not positive definite and the "
                         f"S matrix is singular; no standard error for {', '.join(flat)} (the objective is flat "
                         "there: the data do not inform it; consider fixing it or removing it), and the other "
                         "standard errors are conditional on its estimate")
    msg = used
    if notes:
        msg += (" (fallback: the R matrix is not positive definite - the estimates may not be at a minimum or a "
                "parameter is not identifiable; " + "; ".join(notes) + ")")
    # delta method to the natural scale
    J = _natural_jacobian(layout, x)
    return J @ cov @ J.T, msg


def _natural_jacobian(layout: _Layout, x: np.ndarray) -> np.ndarray:
    """d natural(x) / dx by central differences (p, p)."""
    p = x.size
    J = np.empty((p, p))
    for a in range(p):
        e = np.zeros(p)
        e[a] = 1e-6
        J[:, a] = (layout.natural(x + e) - layout.natural(x - e)) / 2e-6
    return J


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


def _is_pd(M: np.ndarray) -> bool:
    if not np.all(np.isfinite(M)):
        return False
    try:
        np.linalg.cholesky(0.5 * (M + M.T))
    except np.linalg.LinAlgError:
        return False
    return True


def _diagnostics(prob: _Problem, layout: _Layout, x: np.ndarray, eta: np.ndarray):
    """Per-observation table: PRED, IPRED, RES, IWRES, CWRES (FOCE-type, Hooker 2007) and the EBEs."""
    import pandas as pd

    theta, omega, errs = layout.unpack(x)
    theta = layout.subject_theta(x[None, :], theta)
    q, n = prob.q, prob.n
    f0, _ = prob.predict_grad(theta, np.zeros((1, n, q)), grad=False)
    f, G = prob.predict_grad(theta, eta[None])
    u, m, dm, s, _, _ = prob.residual(errs, f)
    Gm = np.where(prob.mask[..., None], G * dm[..., None], 0.0)[0]
    R = np.where(prob.mask, s ** 2, 1.0)[0]
    if prob.method == "foce":
        _, _, _, s0, _, _ = prob.residual(errs, f0)
        R = np.where(prob.mask, s0 ** 2, 1.0)[0]
    C = np.einsum("njq,qr,nlr->njl", Gm, omega[0], Gm) + R[..., None] * np.eye(prob.J)
    r = np.where(prob.mask, u[0] - m[0] + np.einsum("njq,nq->nj", Gm, eta), 0.0)
    cw = np.full((n, prob.J), np.nan)
    for i in range(n):
        k = prob.mask[i]
        try:
            L = np.linalg.cholesky(C[i][np.ix_(k, k)])
            cw[i, k] = np.linalg.solve(L, r[i, k])
        except np.linalg.LinAlgError:
            pass
    d = prob.data
    with np.errstate(all="ignore"):
        iwres = (u[0] - m[0]) / s[0]
    sel = prob.mask
    ids = np.array(d.ids, dtype=object)
    table = pd.DataFrame({
        "ID": np.repeat(ids, sel.sum(axis=1)),
        "TIME": d.time[prob.obs[sel]] / 1.0,
        "DV": prob.y[sel], "PRED": f0[0][sel], "IPRED": f[0][sel], "RES": (prob.y - f0[0])[sel],
        "IWRES": iwres[sel], "CWRES": cw[sel], "CENS": prob.cens[sel].astype(int),
        "OUTPUT": np.asarray(layout.outputs, dtype=object)[prob.which[sel]],
    })
    for j, name in enumerate(prob.iiv.names):
        table[f"ETA_{name}"] = np.repeat(eta[:, j], sel.sum(axis=1))
    return table


# ====================================================================================================== VPC
@dataclass(frozen=True, eq=False)
class VPC:
    """Visual predictive check data (result of :func:`vpc`; drawn by :func:`pkpd.plots.plot_vpc`).

    Attributes
    ----------
    bins : ndarray, shape (n_bins + 1,)
        Time-bin edges [model time unit]; ``centres`` (n_bins,) the median observation time in each bin.
    percentiles : tuple of float
        Percentiles of the observations per bin (default 5, 50, 95) [%].
    observed : ndarray, shape (n_percentiles, n_bins)
        Observed percentiles (censored values count as the LLOQ) [output unit].
    simulated : ndarray, shape (n_percentiles, 3, n_bins)
        For each observed percentile, the (lower, median, upper) of its 90 % prediction interval across replicates.
    blq_observed : ndarray (n_bins,) and blq_simulated : ndarray (3, n_bins)
        Fraction below the LLOQ, observed and simulated (lower, median, upper) [1].
    unit, time_unit, output : str
    prediction_corrected : bool
        Observed and simulated values are prediction-corrected (pcVPC, Bergstrand 2011).
    stratum : object
        The value of the stratification column (None when not stratified).
    n_outside : int
        Observations outside user-given bin edges (left out).
    """

    bins: np.ndarray
    centres: np.ndarray
    percentiles: tuple
    observed: np.ndarray
    simulated: np.ndarray
    blq_observed: np.ndarray
    blq_simulated: np.ndarray
    output: str
    unit: str
    time_unit: str
    prediction_corrected: bool = False
    stratum: object = None
    n_outside: int = 0

    def plot(self, **kwargs):
        """Draw the VPC; see :func:`pkpd.plots.plot_vpc`."""
        from .plots import plot_vpc

        fig = plot_vpc(self, **kwargs)
        if self.prediction_corrected:
            ax = fig.axes[0]
            ax.set_ylabel(f"prediction-corrected {ax.get_ylabel()}")
            ax.set_title(f"pcVPC of {self.output}")
        return fig


def vpc(fit: PopulationFit, model, data, *, n_replicates: int = 200, n_bins: int = 8, seed: int | None = None,
        percentiles=(5, 50, 95), blq=None, settings: SolverSettings | None = None, client=None,
        progress: bool | None = None, output: str | None = None, bins="quantile", prediction_corrected: bool = False,
        stratify: str | None = None):
    """Simulate ``n_replicates`` copies of the study design with the fitted model and bin the percentiles.

    Random effects are drawn from the estimated Ω and residual errors from the estimated error model, replicate
    ``r`` from ``numpy.random.SeedSequence(seed).spawn(n_replicates)[r]``; observations of the replicates below
    the data's LLOQ count as BLQ. Bins hold about equal numbers of observations (quantiles of the observation
    times). With ``client`` (a Dask client, cluster or scheduler address; ``pkpd[distributed]``) the replicates
    are simulated on the cluster in groups, with a result identical to the local run; ``progress`` shows a bar
    over replicates there. A fit of several outputs (e.g. PGE2 and IL-10) is checked one ``output`` at a time.

    Options (:mod:`pkpd.predictive_checks`): ``bins="quantile"`` (``n_bins`` bins of about equal counts) or a list
    of bin edges; ``prediction_corrected=True`` for a prediction-corrected VPC (Bergstrand 2011: every value scaled
    by the median population prediction of its bin over its own); ``stratify="COLUMN"`` (a covariate, a dose
    group: any column of the data, at most 12 distinct values) returns a
    :class:`~pkpd.predictive_checks.StratifiedVPC`, one VPC per value, each binned on its own.

    Examples
    --------
    >>> import pkpd
    >>> from pkpd.nlme import vpc
    >>> f = pkpd.fit_population("wang2007", "tests/data/wang2007/wang2007.csv", iiv={"ke": 0.04},
    ...                         error=pkpd.Additive(sd=0.3), maxeval=0)
    >>> v = vpc(f, "wang2007", "tests/data/wang2007/wang2007.csv", n_replicates=50, n_bins=2, seed=1)
    >>> v.simulated.shape
    (3, 3, 2)
    """
    model, iiv, error, layout, prob = _setup(model, data, fit.iiv, fit.error, "laplace", None, blq, settings,
                                             {k: v for k, v in fit.theta.items()}, fit.covariate_effects, fit.iov)
    if output is None:
        if len(error) != 1:
            raise FitError(f"vpc: the fit has {len(error)} observed outputs ({', '.join(error)}); choose one with "
                           f"output=, e.g. output={next(iter(error))!r}")
        output = next(iter(error))
    if output not in layout.outputs:
        raise FitError(f"vpc: output {output!r} was not fitted; the fit's outputs are {list(layout.outputs)}")
    from ._parallel import chunk_bounds, map_tasks, spawn_seeds

    seeds = spawn_seeds(seed, n_replicates)
    theta = np.array([fit.theta[p] for p in model.parameter_names])[None, :]
    theta = layout.subject_theta(layout.x0[None, :], theta)
    job = (prob, theta, _omega_for(fit, prob), [fit.error[o] for o in layout.outputs])
    if client is None:
        y_sim = _vpc_replicates(job, seeds)                               # (R, n_obs)
    else:
        groups = [seeds[a:b] for a, b in chunk_bounds(n_replicates, max(1, -(-n_replicates // 64)))]
        y_sim = np.concatenate(map_tasks(_vpc_replicates, groups, shared=job, client=client, progress=progress,
                                         description=f"{model.name}: vpc", unit="replicate",
                                         weights=[len(g) for g in groups]))
    from .predictive_checks import StratifiedVPC, strata_of, vpc_summary

    mask = prob.mask & (prob.which == layout.outputs.index(output))
    y_sim = y_sim[:, mask[prob.mask]]
    t_obs = prob.data.time[prob.obs][mask]
    lloq_all = prob.data.limit[prob.obs][mask]
    pred = None
    if prediction_corrected:
        with np.errstate(all="ignore"):
            f0, _ = prob.predict_grad(theta, np.zeros((1, prob.n, prob.q)), grad=False)
        pred = f0[0][mask]
    unit = next(o.unit for o in model.outputs if o.name == output)
    common = dict(percentiles=tuple(percentiles), output=output, unit=unit, time_unit=model.time_unit,
                  prediction_corrected=bool(prediction_corrected))

    def one(keep, stratum=None):
        parts = vpc_summary(t_obs[keep], prob.y[mask][keep], y_sim[:, keep], lloq_all[keep], prob.cens[mask][keep],
                            percentiles=percentiles, bins=bins, n_bins=n_bins,
                            pred=None if pred is None else pred[keep])
        return VPC(**parts, **common, stratum=stratum)

    if stratify is None:
        return one(np.ones(t_obs.size, dtype=bool))
    from .fitting import _read

    table = _read(model, data).data
    if stratify not in table.columns:
        raise FitError(f"vpc: stratify={stratify!r} is not a column of the data."
                       + did_you_mean(str(stratify), [str(c) for c in table.columns]))
    by_row = dict(zip(table["ROW"].to_numpy(), table[stratify].to_numpy()))
    values = np.array([by_row[r] for r in prob.data.row[prob.obs][mask]], dtype=object)
    strata = {}
    for level in strata_of(values, stratify):
        keep = values == level
        strata[level] = one(keep, level)
    return StratifiedVPC(by=stratify, strata=strata)


def _impute_censored(y, cens, limit, mean, L, sim_dec, rng, lo) -> np.ndarray:
    r"""Decorrelated observations of one subject with its BLQ values imputed (Nguyen et al. 2012).

    The Cholesky decorrelation is sequential in time: :math:`y^*_j = (y_j - E_j - \sum_{k<j} L_{jk} y^*_k)/L_{jj}`.
    For a censored :math:`y_j < \mathrm{LLOQ}` this bounds :math:`y^*_j` by :math:`c_j` (the same formula at the
    LLOQ); its pd is drawn uniformly in :math:`(0, \hat P(y^{sim*}_j < c_j))` and :math:`y^*_j` set to that quantile
    of the decorrelated simulations, so the imputation is conditional on the subject's earlier observations.
    """
    out = np.empty(y.size)
    for j in range(y.size):
        base = mean[j] + L[j, :j] @ out[:j]
        if cens[j]:
            c = (limit[j] - base) / L[j, j]
            p_loq = float(np.mean(sim_dec[:, j] < c))
            out[j] = np.quantile(sim_dec[:, j], rng.uniform(0.0, max(p_loq, lo)))
        else:
            out[j] = (y[j] - base) / L[j, j]
    return out


def _omega_for(fit: PopulationFit, prob: _Problem) -> np.ndarray:
    """Covariance of all random effects of the fit, with as many occasions as these data have."""
    if fit.iov is None:
        return fit.omega
    return _all_random_effects(fit.omega[None], np.diag(fit.iov.omega)[None], prob.n_occ)[0]


def _all_random_effects(omega: np.ndarray, pi: np.ndarray, n_occ: int) -> np.ndarray:
    """Covariance (K, Q, Q) of all random effects: blockdiag(Omega, Pi, Pi, ...) with one diagonal Pi per occasion
    (NONMEM's BLOCK SAME), from Omega (K, q, q) and the IOV variances (K, p)."""
    K, q = omega.shape[0], omega.shape[1]
    size = q + pi.shape[1] * n_occ
    full = np.zeros((K, size, size))
    full[:, :q, :q] = omega
    idx = np.arange(q, size)
    full[:, idx, idx] = np.tile(pi, (1, n_occ))
    return full


def _vpc_replicates(job, seeds) -> np.ndarray:
    """Simulated observations (R, n_obs) of the replicates with these seeds (a pure task)."""
    prob, theta, omega, ems = job
    rngs = [np.random.default_rng(s) for s in seeds]
    eta = np.stack([r.multivariate_normal(np.zeros(omega.shape[0]), omega, size=prob.n) for r in rngs])
    P = prob.params(theta, eta[None])[0]                                 # (R, n, n_params)
    with np.errstate(all="ignore"):
        F = prob.predict(P)                                              # (R, n, J)
    F = np.where(np.isfinite(F), F, 0.0)
    Y = np.empty_like(F)
    for r, rng in enumerate(rngs):
        for o, em in enumerate(ems):
            # one error model per output: each observation gets the error of its own output
            Y[r] = em.sample(F[r], rng) if o == 0 else np.where(prob.which == o, em.sample(F[r], rng), Y[r])
    return Y[:, prob.mask]


# ====================================================================================================== NPDE
def npde(fit: PopulationFit, model, data, *, n_sim: int = 1000, seed: int | None = None, blq=None,
         settings: SolverSettings | None = None):
    r"""Normalised prediction distribution errors (NPDE) of every observation (Brendel 2006; Comets 2008).

    ``n_sim`` replicates of each subject's design (doses, sampling times, covariates) are simulated from the
    fitted population model, with random effects drawn from the estimated :math:`\Omega` and residual errors
    from the estimated error models (``numpy.random.SeedSequence(seed)``). For subject *i* with observations
    :math:`y_i` and simulations :math:`y^{sim}_{ik}` (mean :math:`E_i`, empirical covariance :math:`V_i = L_i
    L_i^\top`), both are decorrelated with the Cholesky factor, :math:`y^*_i = L_i^{-1}(y_i - E_i)` and
    :math:`y^{sim*}_{ik} = L_i^{-1}(y^{sim}_{ik} - E_i)`; the prediction discrepancy
    :math:`\mathrm{pde}_{ij}` is the fraction of the :math:`y^{sim*}_{ikj}` below :math:`y^*_{ij}`, clipped to
    :math:`[1/(2K), 1 - 1/(2K)]` (:math:`K` = ``n_sim``), and :math:`\mathrm{npde}_{ij} =
    \Phi^{-1}(\mathrm{pde}_{ij})`. Under the model the NPDE are independent N(0, 1).

    Observations below the limit of quantification are imputed (Nguyen, Comets & Mentré 2012): the pd of a
    censored observation is drawn uniformly in :math:`(0, p_{LOQ})`, :math:`p_{LOQ}` being the fraction of its
    (decorrelated) simulations below the (decorrelated) LLOQ given the subject's earlier observations, and the
    observation takes that quantile. Their NPDE are then N(0, 1) under the model like the others, so BLQ data
    neither vanish from the diagnostic nor distort it (a model that predicts too few BLQ values shows it).

    Main arguments
    --------------
    fit : PopulationFit
        From :func:`fit_population`.
    model, data
        The model and the data the fit used (as :func:`vpc`).
    n_sim : int
        Replicates :math:`K` per subject (at least twice the largest number of observations of a subject, so that
        the simulated covariance matrices are nonsingular; 1000 is the usual choice).
    seed : int, optional
        Seed of the random draws (the same seed gives the same NPDE).

    Other arguments
    ---------------
    blq : M3, optional
        As in the fit (marks the censored observations).
    settings : SolverSettings, optional
        Solver settings of the simulations.

    Returns
    -------
    pandas.DataFrame
        ``fit.table`` with two more columns, ``PDE`` and ``NPDE`` [1]; ``dataclasses.replace(fit, table=...)``
        gives a fit that carries them.

    Raises
    ------
    FitError
        ``n_sim`` too small, data that do not match the fit, or simulations that cannot be solved.

    Examples
    --------
    >>> import pkpd
    >>> from pkpd.nlme import npde
    >>> f = pkpd.fit_population("wang2007", "tests/data/wang2007/wang2007.csv", iiv={"ke": 0.04},
    ...                         error=pkpd.Additive(sd=0.3), maxeval=0)
    >>> t = npde(f, "wang2007", "tests/data/wang2007/wang2007.csv", n_sim=200, seed=1)
    >>> list(t.columns[-2:]), len(t), bool(t["NPDE"].abs().max() < 3.0)
    (['PDE', 'NPDE'], 20, True)
    """
    from scipy.linalg import solve_triangular
    from scipy.special import ndtri

    n_sim = int(n_sim)
    model, iiv, error, layout, prob = _setup(model, data, fit.iiv, fit.error, "laplace", None, blq, settings,
                                             dict(fit.theta), fit.covariate_effects, fit.iov)
    n_obs = int(prob.mask.sum())
    if prob.n != fit.n_subjects or n_obs != fit.n_obs or len(fit.table) != n_obs:
        raise FitError(f"npde: the data ({prob.n} subjects, {n_obs} observations) do not match the fit "
                       f"({fit.n_subjects} subjects, {fit.n_obs} observations); give the data the fit used")
    counts = prob.mask.sum(axis=1)
    if n_sim < max(20, 2 * int(counts.max())):
        raise FitError(f"npde: n_sim={n_sim} is too small; give at least {max(20, 2 * int(counts.max()))} "
                       f"(twice the largest number of observations of a subject) - 1000 is usual")
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    theta = np.array([fit.theta[p] for p in model.parameter_names])[None, :]
    theta = layout.subject_theta(layout.x0[None, :], theta)                # covariate effects: (1, n, n_params)
    chunk = max(1, 20000 // prob.n)                 # replicates per batch call (bounds the memory of one call)
    sims = []
    for start in range(0, n_sim, chunk):
        k = min(chunk, n_sim - start)
        omega_all = _omega_for(fit, prob)
        eta = rng.multivariate_normal(np.zeros(omega_all.shape[0]), omega_all, size=(k, prob.n), method="cholesky")
        with np.errstate(all="ignore"):
            F = prob.predict(prob.params(theta, eta[None])[0])            # (k, n, J)
        if not np.all(np.isfinite(F[:, prob.mask])):
            raise FitError("npde: some simulated subjects could not be solved at the fitted parameters (the "
                           "random effects drawn from Omega reach parameter values the model cannot solve); "
                           "check the fit, or loosen the solver settings")
        Y = np.zeros_like(F)
        for o, name in enumerate(layout.outputs):
            sel = prob.mask & (prob.which == o)
            Y[:, sel] = fit.error[name].sample(F[:, sel], rng)
        sims.append(Y)
    Y = np.concatenate(sims)                                              # (K, n, J)
    pde = np.full((prob.n, prob.J), np.nan)
    lo, hi = 1.0 / (2 * n_sim), 1.0 - 1.0 / (2 * n_sim)
    for i in range(prob.n):
        k = prob.mask[i]
        if not k.any():
            continue
        ys = Y[:, i, k]                                                   # (K, n_i)
        mean = ys.mean(axis=0)
        cov = np.atleast_2d(np.cov(ys, rowvar=False))
        try:
            L = np.linalg.cholesky(cov)
        except np.linalg.LinAlgError as exc:
            raise FitError(f"npde: the simulated covariance of subject {prob.data.ids[i]!r} is not positive "
                           "definite (observations that the model predicts without variability?)") from exc
        sim_dec = solve_triangular(L, (ys - mean).T, lower=True).T        # (K, n_i)
        if prob.cens[i].any():
            y_dec = _impute_censored(prob.y[i, k], prob.cens[i, k], prob.limit[i, k], mean, L, sim_dec, rng, lo)
        else:
            y_dec = solve_triangular(L, prob.y[i, k] - mean, lower=True)
        pde[i, k] = np.clip(np.mean(sim_dec < y_dec, axis=0), lo, hi)
    table = fit.table.copy()
    p = pde[prob.mask]
    table["PDE"] = p
    out = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    out[ok] = ndtri(p[ok])
    table["NPDE"] = out
    return table


# ====================================================================================================== bootstrap
def bootstrap_population(fit: PopulationFit, model, data, *, n: int = 200, seed=None, blq=None,
                         settings: SolverSettings | None = None, client=None, workers: int | None = None,
                         progress: bool | None = None):
    """Nonparametric (case-resampling) bootstrap of a population fit, as PsN's ``bootstrap``.

    Replicate ``i`` draws as many subjects as the data have, with replacement, from
    ``numpy.random.SeedSequence(seed).spawn(n)[i]`` (a subject drawn twice enters twice, as two subjects), and
    re-estimates the model with :func:`fit_population`, the same method, random effects, error models, covariate
    effects and IOV, starting from the original estimates (no covariance step). Replicates run on all local cores
    or on a Dask cluster (``client=``) with an identical result.

    Main arguments
    --------------
    fit : PopulationFit
        From :func:`fit_population`.
    model, data
        The model and the data the fit used (NONMEM layout: DataFrame, CSV path or NonmemDataset).
    n : int
        Replicates (PsN's default is 200; 1000+ for 95 % CIs of variances).
    seed : int, optional

    Other arguments
    ---------------
    blq : M3, optional
        As in the fit.
    settings : SolverSettings, optional
        As in the fit.
    client, workers, progress
        Where the replicates run, as :func:`pkpd.bootstrap`.

    Returns
    -------
    pkpd.fitting.Bootstrap
        ``names`` are the rows of ``fit.parameters`` (typical values, variances, residual error, IOV, covariate
        effects); replicates that fail or do not converge are listed in ``failed`` with the reason, not dropped
        silently.

    Examples
    --------
    >>> import pkpd
    >>> from pkpd.nlme import bootstrap_population
    >>> f = pkpd.fit_population("wang2007", "tests/data/wang2007/wang2007.csv", iiv={"ke": 0.04},
    ...                         error=pkpd.Additive(sd=0.3), covariance=None)
    >>> b = bootstrap_population(f, "wang2007", "tests/data/wang2007/wang2007.csv", n=5, seed=1, workers=1,
    ...                          progress=False)
    >>> b.names, b.n_requested
    (('ke', 'omega2_ke', 'sd'), 5)
    """
    import pandas as pd

    from ._parallel import check_client, check_workers, map_tasks, spawn_seeds
    from .fitting import _bootstrap_summary
    from .load import load_model
    from .nonmem import NonmemDataset

    if not isinstance(fit, PopulationFit):
        raise FitError(f"bootstrap_population: expected a PopulationFit (from fit_population); got "
                       f"{type(fit).__name__}")
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise FitError(f"n: must be a positive integer; got {n!r}")
    check_client(client)
    check_workers(workers)
    model = load_model(model) if isinstance(model, str) else model
    units = {}
    if isinstance(data, NonmemDataset):
        units = {"time_unit": data.time_unit, "dose_unit": data.dose_unit}
        table = data.data.drop(columns=["ROW"], errors="ignore")
    elif isinstance(data, pd.DataFrame):
        table = data.copy()
    else:
        table = pd.read_csv(data)
    if "ID" not in table:
        raise FitError("bootstrap_population: the data have no ID column")
    subjects = dict(tuple(table.groupby("ID", sort=False)))
    names = list(fit.parameters["name"])
    estimate = [x for x in names if x in model.parameter_names]
    kwargs = dict(iiv=fit.iiv, error=fit.error, method=fit.method, estimate=estimate, init=dict(fit.theta),
                  blq=blq, settings=settings, covariance=None, covariates=fit.covariate_effects, iov=fit.iov)
    job = (model, tuple(subjects.values()), units, kwargs)
    outcomes = map_tasks(_population_bootstrap_replicate, spawn_seeds(seed, int(n)), shared=job, client=client,
                         workers=workers, progress=progress, description=f"{model.name}: population bootstrap",
                         unit="replicate")
    est = dict(zip(names, fit.parameters["estimate"].astype(float).tolist()))
    return _bootstrap_summary(tuple(names), est, outcomes, int(n), seed)


def _population_bootstrap_replicate(job, seed) -> tuple[bool, object]:
    """One replicate (a pure task): (True, estimates in fit.parameters order) or (False, the reason)."""
    import pandas as pd

    from .errors import PkpdError
    from .nonmem import read_nonmem

    model, subjects, units, kwargs = job
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(subjects), size=len(subjects))
    table = pd.concat([subjects[k].assign(ID=j + 1) for j, k in enumerate(pick)], ignore_index=True)
    try:
        fit = fit_population(model, read_nonmem(table, model, **units), **kwargs)
    except (PkpdError, np.linalg.LinAlgError, ValueError, FloatingPointError) as err:
        return False, f"{type(err).__name__}: {err}"
    if not fit.converged:
        return False, f"did not converge: {fit.message}"
    return True, fit.parameters["estimate"].to_numpy(dtype=float)
