"""The finite-difference population objective (private): FO, FOCE, FOCE-I and Laplace for many parameter sets in
one batch call per inner iteration, with df/deta by central differences and the EBEs by a vectorised Gauss-Newton
iteration in numpy. It serves what the compiled inner problem (:mod:`pkpd.estimation._objective`) cannot:
machines without a C compiler, inter-occasion variability, doses that depend on a varying parameter, steady-state
doses and resets. Both compute the same objective function (tests/unit/test_nlme_engines.py).
"""

from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np

from ..compile import compile_model
from ..errors import FitError, did_you_mean
from ..model import Model
from ..population import IIV, IOV, transform
from ..settings import SolverSettings
from .population_model import _occasion_starts

_LOG_2PI = math.log(2.0 * math.pi)
_H_ETA = 1e-4       # finite-difference step in eta for df/deta
_PENALTY = 1e10     # OFV of a parameter set whose model cannot be solved
_ETA_TOL = 1e-7     # EBE convergence: Newton step below this (the OFV is stationary in eta: error ~ 1e-14)


# ====================================================================================================== problem
class _Problem:
    """Data + model + variability: OFVs of many parameter sets in one batch call per inner iteration (private)."""

    def __init__(self, model: Model, data, iiv: IIV, error: dict, method: str, blq, settings: SolverSettings,
                 iov: IOV | None = None):
        from .._sensitivity import dose_dependence
        from .data import _observations

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
        rec = d.endpoint_records
        if rec is not None and method != "laplace":
            raise FitError(f"data: {rec.size} records of clinical endpoints ({', '.join(rec.names)}) have a "
                           "non-normal likelihood, which needs method='laplace' or 'saem' (as NONMEM needs LAPLACIAN "
                           f"with LIKELIHOOD data); got method={method!r}")
        self.endpoint_records = rec
        # every row the fitter predicts: the observations of continuous outputs, then (for endpoint records) the
        # engine outputs they need (pkpd._endpoint_data)
        engine_outputs = self.cm.model.output_names
        self.out_index = np.array([engine_outputs.index(o) for o in d.outputs], dtype=np.int64)
        self.eta_index = np.array([model.parameter_names.index(n) for n in iiv.names], dtype=np.int64)
        n = d.n_subjects
        counts = np.bincount(d.subject, minlength=n)
        if np.any(counts == 0):
            raise FitError("data: a subject has no observations")
        J = int(counts.max())
        self.obs = np.zeros((n, J), dtype=np.int64)
        self.mask = np.zeros((n, J), dtype=bool)
        self.present = np.zeros((n, J), dtype=bool)             # a row of the data (not padding)
        continuous = d.continuous
        self.flat_j = np.zeros(d.subject.size, dtype=np.int64)   # column of each row in the (n, J) layout
        order = np.argsort(d.subject, kind="stable")            # rows subject by subject, in data order
        subject = d.subject[order]
        j = np.arange(order.size) - np.concatenate([[0], np.cumsum(counts)])[subject]
        self.obs[subject, j] = order
        self.mask[subject, j] = continuous[order]
        self.present[subject, j] = True
        self.flat_j[order] = j
        self.n, self.J = n, J
        self.q_iiv = iiv.n_eta
        self.iov = iov
        self.n_params = len(model.parameters)
        if iov is not None and d.records is not None:
            raise FitError("iov: inter-occasion variability with steady-state doses or resets is not supported")
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
        self.n_solves = 0

    @functools.cached_property
    def events0(self):
        """The dose events at the model's parameter values (those of every solve when the doses do not depend on
        the parameters); built when first needed: the compiled objective builds its own."""
        return self.events_at(self.base)

    def events_at(self, base: np.ndarray):
        """Every subject's dose events (and covariate changes) with the parameter values ``base`` (n_params,)."""
        from ..simulation import build_events, merge_events

        d = self.data
        q0 = self.cm.build_q(np.tile(base, (self.n, 1)), d.covariates)
        return merge_events(build_events(self.cm, d.regimens, q0, d.explicit), d.covariate_events)

    # -- predictions -------------------------------------------------------------------------------------------
    def predict(self, P: np.ndarray) -> np.ndarray:
        """Predictions (c, n, J) for parameter rows P (c, n, n_params) (c copies of the n subjects)."""
        from ..simulation import EventTable, build_events, merge_events, run_batch

        c = P.shape[0]
        d = self.data
        changes = P[..., self.n_params:].reshape(c * self.n, -1)
        P = P[..., :self.n_params]
        flat = P.reshape(c * self.n, -1)
        if d.records is not None:    # steady-state doses or resets: simulated record by record
            self.n_solves += c * self.n
            out, ok = d.records.predictions(self.cm, flat, np.tile(np.arange(self.n), c), self.settings)
            out = out.reshape(c, self.n, out.shape[1], -1)
            pos = d.records.position[self.obs]
            F = out[:, np.arange(self.n)[:, None], pos, self.out_index[self.which]]
            # every row of the data gets its prediction (the endpoint records' engine outputs too, not only the
            # continuous observations), NaN where the subject was not solved; the padding 0
            solved = ok.reshape(c, self.n)[:, :, None]
            return np.where(self.present, np.where(solved, F, np.nan), 0.0)
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
            with np.errstate(all="ignore"):             # as the IIV's above (logit 1 = log(1 / 0), quietly +inf)
                occ[..., j] = transform(dist, theta[:, None, :, pj][..., None], base + kappa[..., j])
        P[..., self.iov_index] = occ[..., 0, :]
        return np.concatenate([P, occ[..., 1:, :].reshape(K, m, n, -1)], axis=-1)

    def _occasion_events(self, values: np.ndarray, c: int):
        """Kind-3 events setting the IOV parameters at the start of occasions 2, 3... ((c n, w) tables)."""
        from ..simulation import set_events

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
        # rows of no error model (endpoint predictions) keep harmless values: the likelihood masks them out
        u = np.zeros_like(f)
        m = np.zeros_like(f)
        dm = np.ones_like(f)
        s = np.ones_like(f)
        ds = np.zeros_like(f)
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
        """Per-subject OFV (K, n), EBEs (K, n, q) and ``{"eta": EBEs}`` (or None where Omega is not positive
        definite) for K parameter sets.

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
            # a singular C (e.g. a proportional error's SD of 0 where the prediction is 0) would make the stacked
            # solve raise for every subject: such a subject gets the penalty below, the others their objective
            C = np.where((sign > 0)[..., None, None], C, np.eye(self.J))
            quad = np.einsum("knj,knj->kn", r, np.linalg.solve(C, r[..., None])[..., 0])
            out = logdet + quad - 2 * np.where(mask, jac0, 0.0).sum(axis=2)
            out = np.where(ok & (sign > 0), out, _PENALTY / n)
            return out, np.zeros((K, n, q)), {"eta": np.zeros((K, n, q))}
        eta = np.zeros((K, n, q)) if eta0 is None else np.array(eta0, dtype=float)
        interaction = method in ("focei", "laplace")

        def evaluate(eta):
            f, G = self.predict_grad(theta, eta)
            u, m, dm, s, ds, jac = self.residual(errs, f)
            # absent observations (the padding of subjects with fewer) are kept out of every term: their placeholder
            # predictions (0 on the record-by-record path) give s = 0 or dm = inf there, and 0 * inf would make the
            # Hessian NaN
            with np.errstate(all="ignore"):
                Gm = np.where(mask[..., None], G * dm[..., None], 0.0)
                if interaction:
                    R = np.where(mask, s ** 2, 1.0)
                    Rp = np.where(mask[..., None], (2 * s * ds)[..., None] * G, 0.0)   # dR/deta (K, n, J, q)
            if not interaction:
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
                    from ..error_models import _ndtr_log as log_ndtr

                    lim = self.limit
                    sd = np.sqrt(R)
                    z = (np.where(self.cens, _transform_limit(self, errs, lim), 0.0) - m) / sd
                    lphi = log_ndtr(z)
                    term = term + np.where(self.cens, -2 * lphi, 0.0)
                    lam = np.exp(-0.5 * z * z - 0.5 * _LOG_2PI - lphi)
                    # dz/deta = -(dm/deta)/sd - z (dR/deta) / (2 R)
                    dz = -Gm / sd[..., None] - (z / (2 * R))[..., None] * Rp
                    gq = gq + np.where(self.cens[..., None], -lam[..., None] * dz, 0.0)
                    Hq = Hq + np.einsum("knjq,knjr,knj->knqr", np.where(self.cens[..., None], dz, 0.0), dz,
                                        np.where(self.cens, lam * (lam + z), 0.0))
            obj = term.sum(axis=2) + np.einsum("knq,kqr,knr->kn", eta, om_inv, eta)
            grad = gq.sum(axis=2) + np.einsum("kqr,knr->knq", om_inv, eta)
            H = Hq + om_inv[:, None]
            if self.endpoint_records is not None:
                c_ep, g_ep, H_ep = self.endpoint_terms(f, G)
                obj, grad, H = obj + c_ep, grad + g_ep, H + H_ep
            obj = np.where(np.isfinite(obj) & np.all(np.isfinite(H), axis=(2, 3)), obj, np.inf)
            return obj, grad, H, {"Gm": Gm}    # FOCE's determinant needs Gm at the EBEs

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
        return out, eta, {"eta": eta}

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
                from ..error_models import _ndtr_log as log_ndtr

                z = (np.where(self.cens, _transform_limit(self, errs, self.limit), 0.0) - m) / np.sqrt(R)
                # 0 at the quantified records, whose term is thrown away: log_ndtr of their (0 - m) / s (46 for f =
                # 0.01 on the log scale with sigma 0.1) could signal under a caller's scipy.special.seterr
                z = np.where(self.cens, z, 0.0)
                term = term + np.where(self.cens, -2 * log_ndtr(z), 0.0)
        out = term.sum(axis=2) + np.einsum("knq,kqr,knr->kn", eta, om_inv, eta)
        if self.endpoint_records is not None:
            out = out + self.endpoint_terms(f)[0]
        return out

    def endpoint_terms(self, f, G=None):
        """-2 log L of the endpoint records summed per subject (K, n) from predictions f (K, n, J); with G
        (K, n, J, q), also half its gradient in eta (K, n, q) and the expected information (K, n, q, q) (the
        parts of the Newton iteration on O_i / 2)."""
        rec = self.endpoint_records
        d = self.data
        F = f[:, d.subject, self.flat_j]                                   # (K, n_rows)
        K, n = f.shape[0], self.n
        with np.errstate(all="ignore"):
            c = rec.minus2ll(F, gradient=G is not None)
        if G is not None:
            c, gc = c
        c = np.where(np.isfinite(c), c, np.inf)
        per = np.zeros((K, n))
        np.add.at(per, (slice(None), rec.subject), c)
        per = np.where(np.isfinite(per), per, np.inf)
        if G is None:
            return per, None, None
        q = G.shape[-1]
        Gf = G[:, d.subject, self.flat_j]                                  # (K, n_rows, q)
        Gf = np.concatenate([Gf, np.zeros((K, 1, q))], axis=1)
        dP = Gf[:, np.where(rec.components >= 0, rec.components, F.shape[1])]   # (K, n_rec, C, q)
        with np.errstate(all="ignore"):
            score = np.einsum("krc,krcq->krq", np.where(np.isfinite(gc), gc, 0.0), dP)
            W = rec.information_weights(F)                                 # (K, n_rec, M, C)
            V = np.einsum("krmc,krcq->krmq", W, dP)
            info = np.einsum("krmq,krms->krqs", V, V)
        grad = np.zeros((K, n, q))
        H = np.zeros((K, n, q, q))
        np.add.at(grad, (slice(None), rec.subject), 0.5 * score)
        np.add.at(H, (slice(None), rec.subject), info)
        return per, grad, H


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
