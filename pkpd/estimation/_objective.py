r"""The population objective with its analytic gradient: compiled inner problem, sensitivities, implicit function
theorem (private; used by :func:`pkpd.fit_population` and :func:`pkpd.nlme.population_objective`).

One evaluation at the internal parameter vector ``x`` (typical values, Cholesky factor of :math:`\Omega`, residual
error parameters, covariate coefficients):

1. per-subject typical values :math:`\theta_i` (covariate effects applied), :math:`\Omega^{-1}`, error models;
2. FOCE-I, FOCE, Laplace: the empirical Bayes estimates :math:`\hat\eta_i` of all subjects in one parallel call of
   the compiled inner problem (:mod:`pkpd.estimation._inner_template`), warm-started from the previous ones;
3. one parallel batch solve of the model with its forward sensitivities (first order in every parameter involved,
   second order in pairs with a random-effect parameter; third order with two of them for Laplace) at
   :math:`\hat\eta_i` (and at :math:`\eta = 0` for FO and FOCE);
4. per subject, in the compiled per-subject assembly on the same parallel threads
   (:mod:`pkpd.estimation._assembly_template`): the objective and its exact derivatives with respect to the
   subject's random effects, typical values, residual-error parameters and :math:`\Omega`. At the mode,
   :math:`\partial O_i/\partial\eta = 0`, so :math:`d\,O_i(\hat\eta_i)/dx = \partial O_i/\partial x`; the
   log-determinant term moves with :math:`\hat\eta_i`, whose derivative is :math:`d\hat\eta_i/dx =
   -(\nabla^2_\eta O_i)^{-1}\partial(\nabla_\eta O_i)/\partial x` (implicit function theorem, with the exact
   Hessian of :math:`O_i`). With ``assembly = "numpy"`` this step runs in numpy, vectorised over subjects
   (:mod:`pkpd.estimation._jets` carries every quantity with its derivatives): the reference the tests compare
   the compiled assembly with;
5. the chain rule to ``x`` (log scales, Cholesky parameters, covariate coefficients).

The predictions come from a :class:`Predictor`: given per-subject parameters it returns the predictions at the
observation times and their derivatives by the parameters (P-space jets). :class:`OdePredictor` solves the
sensitivity equations; a closed-form solution of a linear model can stand in for it (same method) and for the
``predict_subject`` function of the inner problem's C template.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import _jets as jets
from ._compiled import compiled_system
from ._derivative_system import ROOT, estimation_multisets

ERROR_KIND = {"Additive": 0, "Proportional": 1, "LogNormal": 4}


def error_kind(em) -> int:
    name = type(em).__name__
    if name == "Combined":
        return 2 if em.convention == "variance" else 3
    return ERROR_KIND[name]


# ====================================================================================================== design
@dataclass(frozen=True, eq=False)
class Observations:
    """Observations in CSR order (subject by subject) for the compiled code."""

    start: np.ndarray   # (n + 1,) int64
    ti: np.ndarray      # time index of each observation (int64)
    out: np.ndarray     # fitted-output index (int64)
    cens: np.ndarray    # int64 0/1
    u: np.ndarray       # observed value, log-transformed for log-scale outputs
    lim: np.ndarray     # limit of quantification, transformed likewise (censored ones)


@dataclass(frozen=True, eq=False)
class Design:
    """What the predictor and the inner problem need of a data set (private)."""

    n: int
    events: object       # EventTable, C-contiguous
    tt: np.ndarray
    pre: np.ndarray
    n_out: np.ndarray
    t0: np.ndarray
    covariates: np.ndarray
    eta_param: np.ndarray   # (q,) model parameter index of each random effect
    eta_kind: np.ndarray    # (q,) 0 lognormal, 1 normal, 2 logitnormal
    obs: Observations
    mask: np.ndarray        # (n, J) observation present
    cens: np.ndarray        # (n, J)
    ti: np.ndarray          # (n, J) time index
    which: np.ndarray       # (n, J) fitted output
    u: np.ndarray           # (n, J) transformed observations (1 where absent)
    lim: np.ndarray         # (n, J) transformed limits
    jac: np.ndarray         # (n,) -2 x sum of the log-Jacobian terms (log-scale data): a constant of the OFV


_KINDS = {"lognormal": 0, "normal": 1, "logitnormal": 2}


def design_of(prob, base: np.ndarray) -> Design:
    """The design of a population problem (:class:`pkpd.estimation.finite_difference._Problem`); dose events from
    the parameter values ``base`` (the doses do not depend on the parameters that vary)."""
    from ..simulation import EventTable

    d = prob.data
    e = prob.events_at(base)
    events = EventTable(np.ascontiguousarray(e.time, dtype=float), np.ascontiguousarray(e.kind, dtype=np.int64),
                        np.ascontiguousarray(e.index, dtype=np.int64), np.ascontiguousarray(e.value, dtype=float),
                        np.ascontiguousarray(e.count, dtype=np.int64))
    tt = np.ascontiguousarray(d.times, dtype=float)
    first = np.where(events.count > 0, events.time[:, 0], np.inf)
    t0 = np.ascontiguousarray(np.minimum(tt[:, 0], first))
    log_out = np.array([em.log_scale for em in prob.errors], dtype=bool)
    mask, cens = prob.mask, prob.cens
    is_log = log_out[prob.which]
    with np.errstate(all="ignore"):
        u = np.where(mask & is_log & ~cens, np.log(prob.y), prob.y)
        lim = np.where(cens & is_log, np.log(prob.limit), prob.limit)
        jac = np.where(mask & is_log & ~cens, 2.0 * np.log(prob.y), 0.0).sum(axis=1)
    ti = d.time_index[prob.obs]
    counts = mask.sum(axis=1)
    start = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    obs = Observations(start=start, ti=np.ascontiguousarray(ti[mask], dtype=np.int64),
                       out=np.ascontiguousarray(prob.which[mask], dtype=np.int64),
                       cens=np.ascontiguousarray(cens[mask], dtype=np.int64),
                       u=np.ascontiguousarray(np.where(cens, 0.0, u)[mask]),
                       lim=np.ascontiguousarray(np.where(cens, lim, 0.0)[mask]))
    return Design(n=prob.n, events=events, tt=tt, pre=np.ascontiguousarray(d.pre, dtype=np.int64),
                  n_out=np.ascontiguousarray(d.n_times, dtype=np.int64), t0=t0,
                  covariates=np.ascontiguousarray(d.covariates, dtype=float),
                  eta_param=np.asarray(prob.eta_index, dtype=np.int64),
                  eta_kind=np.array([_KINDS[k] for k in prob.iiv.distributions], dtype=np.int64), obs=obs,
                  mask=mask, cens=cens, ti=ti, which=prob.which, u=np.where(mask, u, 1.0),
                  lim=np.where(cens, lim, 0.0), jac=jac)


# ====================================================================================================== predictor
class OdePredictor:
    """Predictions at the observation times and their derivatives by the model parameters ``parameters`` (model
    indices), from the forward sensitivity equations, for a batch of subjects (private).

    ``predict(P)`` takes full parameter rows (n, n_params) in the design's subject order (repeated for several
    copies) and returns the jet of the predictions (n, J) in P-space (derivatives over ``parameters``: first order
    in all, second order in pairs with a random-effect parameter, third order with two of them when ``order`` is
    3; other entries 0) and the solver status per row.
    """

    def __init__(self, model, design: Design, parameters: tuple[int, ...], random: tuple[int, ...],
                 fitted: tuple[int, ...], order: int, settings):
        self.design, self.settings, self.order = design, settings, order
        self.parameters = parameters
        multisets = estimation_multisets(len(parameters), random, order)
        self.lib = compiled_system(model, parameters, multisets, fitted)
        self.multisets = multisets
        self.n_fit = len(fitted)
        self.methods = initial_methods(design.n, settings, self.lib.linear)
        self._last = None     # (P, outputs, scales, status) of the last solve

    def outputs(self, P: np.ndarray):
        """The compiled library's recorded outputs (rows, max_out, n_outputs), the derivative scales they carry
        (rows, k) and the solver status per row (read-only arrays).

        The last solve is kept: asked again for the same parameters (the diagnostics table at the estimates an FO
        fit has just evaluated), it is returned without solving again."""
        last = self._last
        if last is not None and last[0].shape == P.shape and np.array_equal(last[0], P):
            return last[1:]
        d = self.design
        reps = P.shape[0] // d.n
        scales = derivative_scales(P[:, list(self.parameters)])
        base = np.hstack([P, np.tile(d.covariates, (reps, 1)), scales])
        out, status = self.lib.predict(base, d, self.settings, self.methods)
        for a in (out, scales, status):
            a.flags.writeable = False
        self._last = (np.array(P, dtype=float), out, scales, status)
        return out, scales, status

    def predict(self, P: np.ndarray):
        d = self.design
        reps = P.shape[0] // d.n
        out, scales, status = self.outputs(P)
        k = len(self.parameters)
        ti = np.tile(d.ti, (reps, 1))
        which = np.tile(d.which, (reps, 1))
        rows = np.arange(P.shape[0])[:, None]
        nf = self.n_fit

        def col(block):
            return out[rows, ti, block * nf + which]

        blocks = {m: b for b, m in enumerate(self.multisets)}
        v = col(0)
        shape = v.shape
        d1 = np.zeros(shape + (k,))
        d2 = np.zeros(shape + (k, k))
        d3 = np.zeros(shape + (k, k, k)) if self.order >= 3 else None
        for m, b in blocks.items():
            if len(m) == 1:
                d1[..., m[0]] = col(b) / scales[:, None, m[0]]
            elif len(m) == 2:
                c = col(b) / (scales[:, None, m[0]] * scales[:, None, m[1]])
                d2[..., m[0], m[1]] = c
                d2[..., m[1], m[0]] = c
            elif len(m) == 3 and d3 is not None:
                c = col(b) / (scales[:, None, m[0]] * scales[:, None, m[1]] * scales[:, None, m[2]])
                for i, j, k3 in set(_permutations(m)):
                    d3[..., i, j, k3] = c
        return jets.Jet(v, d1, d2, d3), status


def derivative_scales(values: np.ndarray) -> np.ndarray:
    """Scales of the derivatives the compiled systems carry: each parameter's magnitude (1 where it is 0)."""
    a = np.abs(np.asarray(values, dtype=float))
    return np.where(np.isfinite(a) & (a > 0), a, 1.0)


def initial_methods(n: int, settings, linear: bool = False) -> np.ndarray:
    """Solver method per subject for the compiled code: the exact solution (3) when the library's system is
    ``linear`` and the settings' method is "auto" or "closed-form", else the settings' ODE method ("auto" = Tsit5
    with a Rodas4 retry)."""
    code = 3 if linear and settings.method in ("auto", "closed-form") else settings.method_code
    return np.full(n, code, dtype=np.int64)


def _permutations(m):
    import itertools

    return itertools.permutations(m)


# ====================================================================================================== objective
@dataclass(frozen=True, eq=False)
class Evaluation:
    """One evaluation of the objective (private)."""

    ofv: np.ndarray            # (n,) per-subject OFV (NONMEM's: without N log 2 pi)
    gradient: np.ndarray | None  # (n, n_x) per-subject gradient by the internal parameters
    eta: np.ndarray            # (n, q) EBEs (0 for FO)
    status: np.ndarray         # (n,) 0 = fine; otherwise why this subject could not be evaluated
    n_iter: np.ndarray         # Newton iterations per subject
    information: np.ndarray | None = None   # FO: expected Hessian of the OFV by x (n_x, n_x), when asked for


class PopulationObjective:
    """OFV and analytic gradient of a population problem (private): see the module docstring.

    ``prob`` is a :class:`pkpd.estimation.finite_difference._Problem` (its data and model), ``layout`` its
    :class:`pkpd.estimation.population_model._Layout`.
    """

    def __init__(self, prob, layout):
        self.prob, self.layout = prob, layout
        model = prob.model
        self.method = prob.method
        self.design = design_of(prob, layout.base)
        names = model.parameter_names
        eta_params = [int(i) for i in prob.eta_index]
        effect_params = [names.index(c.parameter) for c in layout.effects]
        est = [names.index(n) for n in layout.theta_names]
        self.pi = tuple(sorted(set(est) | set(eta_params) | set(effect_params)))
        self.eta_pos = tuple(self.pi.index(i) for i in eta_params)
        fitted = tuple(int(i) for i in prob.out_index)
        order = 3 if self.method == "laplace" else 2
        self.settings = prob.settings
        self.predictor = OdePredictor(model, self.design, self.pi, self.eta_pos, fitted, order, self.settings)
        if self.method != "fo":
            self.inner_lib = compiled_system(model, tuple(eta_params), estimation_multisets(len(eta_params), (), 1),
                                             fitted)
            self.inner_methods = initial_methods(prob.n, self.settings, self.inner_lib.linear)
        self.q = len(eta_params)
        # coordinates phi = (eta, theta over pi, error parameters of every output)
        self.sigma_slots = [(o, p) for o, em in enumerate(prob.errors) for p in em.parameter_names]
        self.d = self.q + len(self.pi) + len(self.sigma_slots)
        # "compiled": each subject's objective terms from the compiled assembly on the engine's threads
        # (:mod:`pkpd.estimation._assembly_template`); "numpy": the same from jets in numpy (the reference)
        self.assembly = "compiled"
        self._fo_u = np.ascontiguousarray(self.design.u[self.design.mask])
        self._memos: list = []   # recent EBEs and what predicts the next ones from them (_predicted_start)
        self._memo_hessians = None
        # EBEs to a step below this: as close to stationary as the solver tolerance lets the objective resolve
        self.eta_tol = float(min(1e-7, max(1e-10, 10.0 * self.settings.rtol)))

    # -- the pieces --------------------------------------------------------------------------------------------
    def _p_jets(self, theta_i: np.ndarray, eta: np.ndarray, eta_variable: bool):
        """Jets (n, k) of the parameters in pi as functions of phi."""
        q, d = self.q, self.d
        order = self.predictor.order
        n = theta_i.shape[0]
        cols = []
        for i, p in enumerate(self.pi):
            t = jets.variable(theta_i[:, p], d, q + i, order)
            if p in self.design.eta_param:
                k = int(np.flatnonzero(self.design.eta_param == p)[0])
                e = (jets.variable(eta[:, k], d, k, order) if eta_variable
                     else jets.constant(np.zeros(n), d, order))
                kind = int(self.design.eta_kind[k])
                if kind == 0:
                    t = t * jets.exp(e)
                elif kind == 1:
                    t = t + e
                else:
                    L = jets.log(t) - jets.log(1.0 - t) + e
                    t = jets.reciprocal(1.0 + jets.exp(-L))
            cols.append(t)
        stack = lambda attr: None if getattr(cols[0], attr) is None else np.stack([getattr(c, attr) for c in cols],
                                                                                   axis=1)
        return jets.Jet(stack("v"), stack("d1"), stack("d2"), stack("d3"))

    def predictions_at(self, x: np.ndarray, eta: np.ndarray):
        """The predictions f (1, n, J) at the random effects ``eta`` (n, q), their derivatives by eta
        (1, n, J, q) and the predictions at eta = 0 (1, n, J), for the diagnostics table; None where a subject
        cannot be solved."""
        n, q = self.prob.n, self.q
        theta_i = self._subject_typicals(x, self.layout.unpack(x[None, :])[0])
        P = self._individual(theta_i, eta)
        F, status = self.predictor.predict(P)
        if np.any(status != 0):
            return None
        # df/deta = df/dP dP/deta: only the parameter of each random effect depends on it
        dP = np.empty((n, q))
        for k, p in enumerate(self.design.eta_param):
            kind, v = int(self.design.eta_kind[k]), P[:, p]
            dP[:, k] = v if kind == 0 else 1.0 if kind == 1 else v * (1.0 - v)
        G = F.d1[..., list(self.eta_pos)] * dP[:, None, :]
        f0 = F.v
        if np.any(eta):
            F0, status = self.predictor.predict(self._individual(theta_i, np.zeros((n, q))))
            if np.any(status != 0):
                return None
            f0 = F0.v
        return F.v[None], G[None], f0[None]

    def _subject_typicals(self, x: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """Each subject's typical parameter values at ``x`` (n, n_params; covariate effects applied), from the
        typical values ``theta`` that ``layout.unpack`` gives (1, n_params)."""
        return np.broadcast_to(self.layout.subject_theta(x[None, :], theta)[0],
                               (self.prob.n, theta.shape[1])).copy()

    def _individual(self, theta_i, eta):
        P = theta_i.copy()
        from ..population import transform

        for k, p in enumerate(self.design.eta_param):
            kind = ("lognormal", "normal", "logitnormal")[int(self.design.eta_kind[k])]
            P[:, p] = transform(kind, theta_i[:, p], eta[:, k])
        return P

    def _predictions(self, theta_i, eta, eta_variable=True):
        """Prediction jets (n, J) in phi and solver status (n,)."""
        P = self._individual(theta_i, eta)
        F, status = self.predictor.predict(P)
        Pj = self._p_jets(theta_i, eta, eta_variable)
        Pj = jets.Jet(Pj.v[:, None], Pj.d1[:, None], Pj.d2[:, None], None if Pj.d3 is None else Pj.d3[:, None])
        return jets.compose(F, Pj), status

    def _residual(self, f: jets.Jet, errs):
        """Jets (n, J) of the transformed prediction m and the residual variance R."""
        d, order = self.d, self.predictor.order
        which = self.design.which
        m = f
        R = None
        coord = {slot: self.q + len(self.pi) + j for j, slot in enumerate(self.sigma_slots)}
        parts_m, parts_R = [], []
        for o, em in enumerate(errs):
            def par(name, o=o, em=em):
                return jets.variable(np.full(f.v.shape, float(getattr(em, name))), d, coord[(o, name)], order)

            kind = error_kind(em)
            with np.errstate(all="ignore"):
                mo = jets.log(f) if kind == 4 else f
                if kind in (0, 4):
                    s = par("sd" if kind == 0 else "sigma")
                    Ro = s * s
                elif kind == 1:
                    s = par("cv") * f
                    Ro = s * s
                elif kind == 2:
                    a, b = par("sd"), par("cv")
                    bf = b * f
                    Ro = a * a + bf * bf
                else:
                    s = par("sd") + par("cv") * f
                    Ro = s * s
            parts_m.append(mo)
            parts_R.append(Ro)
        m = _select(which, parts_m)
        R = _select(which, parts_R)
        return m, R

    def _ell(self, m: jets.Jet, R: jets.Jet) -> jets.Jet:
        """Sum over observations of the -2 log-likelihood terms (without constants), jets (n,)."""
        dsg = self.design
        quant = dsg.mask & ~dsg.cens
        with np.errstate(all="ignore"):
            r = dsg.u - m
            term = r * r / R + jets.log(R)
            if dsg.cens.any():
                z = (dsg.lim - m) * jets.power(R, -0.5)
                cterm = jets.log_ndtr(z) * -2.0
                term = _select(dsg.cens.astype(np.int64), [term, cterm])
        w = quant | dsg.cens
        return _sum_j(term, w)

    # -- evaluation --------------------------------------------------------------------------------------------
    def evaluate(self, x: np.ndarray, eta0: np.ndarray | None, *, gradient: bool = True,
                 information: bool = False) -> Evaluation:
        """The OFV per subject at ``x`` (and its gradient); with ``information`` (FO only), also the expected
        Hessian of the OFV (:mod:`pkpd.estimation._fo_information`)."""
        prob, layout = self.prob, self.layout
        theta, omega, errs = layout.unpack(x[None, :])
        theta_i = self._subject_typicals(x, theta)
        errs = errs[0]
        omega = omega[0]
        n, q = prob.n, self.q
        try:
            Lo = np.linalg.cholesky(omega)
        except np.linalg.LinAlgError:
            return Evaluation(np.full(n, np.nan), None, np.zeros((n, q)), np.full(n, -1), np.zeros(n, int))
        W = np.linalg.inv(omega)
        logdet_om = 2.0 * np.log(np.diag(Lo)).sum()
        method = self.method
        status = np.zeros(n, dtype=np.int64)
        n_iter = np.zeros(n, dtype=np.int64)
        R0 = None
        compiled = self.assembly == "compiled"
        if method in ("fo", "foce"):
            if compiled:
                out0, sc0, st0 = self.predictor.outputs(self._individual(theta_i, np.zeros((n, q))))
            else:
                f0, st0 = self._predictions(theta_i, np.zeros((n, q)), eta_variable=(method == "fo"))
                m0, R0j = self._residual(f0, errs)
            status = np.where(st0 != 0, 100 + st0, status)
        if method == "fo":
            eta = np.zeros((n, q))
            if compiled:
                r = self._assemble("fo", out0, sc0, theta_i, eta, errs, omega=omega, W=W, information=information)
                ofv, g = r["ofv"], ({"phi": r["grad"], "omega": r["omega"]} if gradient or information else None)
                if information:
                    g["psi_information"] = r["information"]
            else:
                ofv, g = self._fo(m0, R0j, omega, gradient or information)
        else:
            if method == "foce":
                R0 = (self._variances(out0, errs) if compiled
                      else np.where(self.design.mask, R0j.v, 1.0)[self.design.mask])
            kinds = np.array([error_kind(em) for em in errs], dtype=np.int64)
            a = np.array([float(getattr(em, "sd", getattr(em, "sigma", 0.0))) for em in errs])
            b = np.array([float(getattr(em, "cv", 0.0)) for em in errs])
            start = np.zeros((n, q)) if eta0 is None else np.asarray(eta0, dtype=float)
            sigma = np.array([float(getattr(errs[o], p)) for o, p in self.sigma_slots])
            start = self._predicted_start(start, theta_i, sigma, W)
            base = np.hstack([theta_i, self.design.covariates, derivative_scales(theta_i[:, self.design.eta_param])])
            with np.errstate(all="ignore"):
                eta, _, st, n_iter = self.inner_lib.inner(base, start, W, self.design, self.design.obs,
                                                          (kinds, a, b), R0, method != "foce", self.settings,
                                                          self.inner_methods, tol=self.eta_tol)
            status = np.where((status == 0) & (st != 0), st, status)
            if compiled:
                out, sc, st1 = self.predictor.outputs(self._individual(theta_i, eta))
                foce = method == "foce"
                r = self._assemble("foce" if foce else "conditional", out, sc, theta_i, eta, errs, omega=omega, W=W,
                                   outputs0=out0 if foce else None, scales0=sc0 if foce else None)
                d = self.d
                self._memo_hessians = (r["hessian"], r["ell"][:, 1 + d:1 + d + q * d].reshape(n, q, d)[:, :, q:])
                ofv, g = r["ofv"], ({"phi": r["grad"], "omega": r["omega"]} if gradient else None)
            else:
                f, st1 = self._predictions(theta_i, eta)
                m, R = self._residual(f, errs)
                if method == "foce":
                    R = R0j
                ofv, g = self._conditional(m, R, eta, W, gradient)
            status = np.where((status == 0) & (st1 != 0), 100 + st1, status)
            if np.all(status == 0) and np.all(np.isfinite(ofv)):
                self._memos = [(eta, theta_i[:, list(self.pi)], sigma, W, self._memo_hessians)] + self._memos[:3]
            ofv = ofv + logdet_om
            if g is not None:
                g["omega"] = g["omega"] + W[None]
        ofv = ofv + self.design.jac
        bad = ~np.isfinite(ofv)
        status = np.where((status == 0) & bad, 100, status)
        grad = info = None
        if gradient and g is not None:
            grad = self._chain(x, theta_i, Lo, errs, g)
        if information and g is not None and ("fo" in g or "psi_information" in g):
            from ._fo_information import fo_information, information_from_psi, x_jacobian

            jac = x_jacobian(self, x, theta_i, Lo, errs)
            info = (information_from_psi(g["psi_information"], *jac) if "psi_information" in g
                    else fo_information(*g["fo"], *jac))
        return Evaluation(ofv, grad, eta, status, n_iter, info)

    def _predicted_start(self, start, theta_i, sigma, W):
        """The EBEs at the new point to first order (implicit function theorem at the previous ones):
        eta + d eta = eta - H^-1 (d/dphi grad_eta O . d phi + 2 dW eta), when ``start`` is the previous EBEs."""
        k = next((k for k, m in enumerate(self._memos) if m[0].shape == start.shape and np.array_equal(start, m[0])),
                 None)
        if k is None:
            return start
        memo = self._memos.pop(k)            # most recently used first: the covariance step's centre stays
        self._memos.insert(0, memo)
        eta, theta_prev, sigma_prev, W_prev, (Hx, mixed) = memo
        dphi = np.concatenate([theta_i[:, list(self.pi)] - theta_prev,
                               np.broadcast_to(sigma - sigma_prev, (eta.shape[0], sigma.size))], axis=1)
        with np.errstate(all="ignore"):
            rhs = np.einsum("nac,nc->na", mixed, dphi) + 2.0 * eta @ (W - W_prev)
            delta = -np.linalg.solve(Hx, rhs[..., None])[..., 0]
        ok = np.all(np.isfinite(delta), axis=1) & (np.max(np.abs(delta), axis=1) < 1.0)
        return np.where(ok[:, None], eta + delta, start)

    # -- the per-subject assembly -----------------------------------------------------------------------------
    def _error_arrays(self, errs):
        """(kind, a, b, coordinate of a, coordinate of b) per fitted output for the compiled code."""
        coord = {slot: self.q + len(self.pi) + j for j, slot in enumerate(self.sigma_slots)}
        kinds = np.array([error_kind(em) for em in errs], dtype=np.int64)
        a = np.array([float(getattr(em, "sd", getattr(em, "sigma", 0.0))) for em in errs])
        b = np.array([float(getattr(em, "cv", 0.0)) for em in errs])
        ca = np.array([coord.get((o, "sd"), coord.get((o, "sigma"), -1)) for o in range(len(errs))], dtype=np.int64)
        cb = np.array([coord.get((o, "cv"), -1) for o in range(len(errs))], dtype=np.int64)
        return kinds, a, b, ca, cb

    def _assemble(self, mode, outputs, scales, theta_i, eta, errs, **kw):
        """The compiled per-subject assembly (:meth:`pkpd.estimation._compiled.CompiledSystem.assemble`)."""
        pi = list(self.pi)
        u = self._fo_u if mode == "fo" else self.design.obs.u
        return self.predictor.lib.assemble(mode, self.predictor.order, outputs, scales, theta_i[:, pi], eta,
                                           np.asarray(self.eta_pos, dtype=np.int64), self.design.eta_kind,
                                           self.design, u, self._error_arrays(errs), len(self.sigma_slots), **kw)

    def _variances(self, outputs, errs) -> np.ndarray:
        """Residual variances per observation (CSR order) from the predictions in ``outputs`` (FOCE: at eta = 0),
        computed as :meth:`_residual` computes their values."""
        obs = self.design.obs
        rows = np.repeat(np.arange(self.design.n), np.diff(obs.start))
        f = outputs[rows, obs.ti, obs.out]
        kinds, a, b, _, _ = self._error_arrays(errs)
        k, a, b = kinds[obs.out], a[obs.out], b[obs.out]
        with np.errstate(all="ignore"):
            bf = b * f
            s = a + bf
            return np.where((k == 0) | (k == 4), a * a, np.where(k == 1, bf * bf, np.where(k == 2, a * a + bf * bf,
                                                                                             s * s)))

    def _with_prior(self, ell_v, ell_d1, ell_d2, eta, W):
        """O_i = ell_i + eta' W eta with its derivatives in phi (second ones restricted to a random-effect row)."""
        q = self.q
        O_v = ell_v + np.einsum("nq,qr,nr->n", eta, W, eta)
        O_d1 = ell_d1.copy()
        O_d1[:, :q] += 2.0 * eta @ W
        O_d2 = ell_d2.copy()
        O_d2[:, :, :q] += 2.0 * W
        return O_v, O_d1, O_d2

    def _conditional(self, m, R, eta, W, gradient):
        """FOCE-I / FOCE / Laplace: per-subject OFV (without log|Omega|) and gradients by phi and Omega, from the
        jets (n, J) of the transformed predictions and residual variances (numpy reference assembly)."""
        q = self.q
        dsg = self.design
        ell = self._ell(m, R)
        O_v, O_d1, O_d2 = self._with_prior(ell.v, ell.d1, ell.d2[:, :q, :], eta, W)
        quant = (dsg.mask & ~dsg.cens)
        if self.method == "laplace":
            A = 0.5 * O_d2[:, :, :q]
            dA = 0.5 * ell.d3[:, :q, :q, :]                      # (n, q, q, d): prior has no third derivative
        else:
            with np.errstate(all="ignore"):
                wq = np.where(quant, 1.0, 0.0)
                invR = np.where(quant, 1.0 / R.v, 0.0)
                mg, Rg = m.d1[..., :q], R.d1[..., :q]             # (n, J, q)
                mgd, Rgd = m.d2[..., :q, :], R.d2[..., :q, :]     # (n, J, q, d)
                A = (W[None] + np.einsum("nja,njb,nj->nab", mg, mg, invR)
                     + 0.5 * np.einsum("nja,njb,nj->nab", Rg, Rg, invR ** 2))
                Rd = R.d1                                         # (n, J, d)
                t1 = np.einsum("njac,njb,nj->nabc", mgd, mg, invR)
                t2 = np.einsum("njac,njb,nj->nabc", Rgd, Rg, invR ** 2)
                dA = (t1 + np.swapaxes(t1, 1, 2) - np.einsum("nja,njb,njc,nj->nabc", mg, mg, Rd, invR ** 2)
                      + 0.5 * (t2 + np.swapaxes(t2, 1, 2))
                      - np.einsum("nja,njb,njc,nj->nabc", Rg, Rg, Rd, invR ** 3 * wq))
        return self._conditional_tail(O_v, O_d1, O_d2, A, dA, eta, W, gradient)

    def _conditional_tail(self, O_v, O_d1, O_d2, A, dA, eta, W, gradient):
        """The q x q algebra per subject: log-determinant of the Hessian approximation ``A`` (with ``dA``, its
        derivatives by phi), its first-order correction to the exact mode, and the gradients by phi and Omega
        (implicit function theorem). ``O_d2``: second derivatives of O_i with a random-effect row (n, q, d)."""
        q = self.q
        sign, logdet = np.linalg.slogdet(A)
        with np.errstate(all="ignore"):
            Ainv = _safe_inv(A)
            tr = np.einsum("nab,nbac->nc", Ainv, dA)             # (n, d): tr(A^-1 dA/dphi_c)
            Hx = _guard(O_d2[:, :, :q])                           # the exact Hessian of O_i in eta
            self._memo_hessians = (Hx, O_d2[:, :, q:])
            # The EBEs are stationary to the inner tolerance; the last Newton step (exact Hessian) corrects the
            # log-determinant to first order (O_i itself is stationary: its error is second order), so the OFV is
            # a smooth function of x to rounding instead of to the inner tolerance.
            delta = -np.linalg.solve(Hx, O_d1[:, :q, None])[..., 0]
            delta = np.where(np.max(np.abs(delta), axis=1, keepdims=True) < 1e-3, delta, 0.0)
            logdet = logdet + np.einsum("na,na->n", tr[:, :q], delta)
        ofv = np.where(sign > 0, O_v + logdet, np.nan)
        if not gradient:
            return ofv, None
        with np.errstate(all="ignore"):
            w = np.linalg.solve(Hx, tr[:, :q, None])[..., 0]
            g_phi = O_d1 + tr - np.einsum("na,nac->nc", w, O_d2)
            G_W = (np.einsum("na,nb->nab", eta, eta) + Ainv - np.einsum("na,nb->nab", eta, w)
                   - np.einsum("na,nb->nab", w, eta))
            G_omega = -np.einsum("ab,nbc,cd->nad", W, G_W, W)
        return ofv, {"phi": g_phi, "omega": G_omega}

    def _fo(self, m, R, omega, gradient):
        """FO: OFV_i = log|C_i| + r' C_i^-1 r, C = G Omega G' + diag(R), everything at eta = 0."""
        q = self.q
        dsg = self.design
        mask = dsg.mask
        J = mask.shape[1]
        G = np.where(mask[..., None], m.d1[..., :q], 0.0)                       # (n, J, q)
        Rv = np.where(mask, R.v, 1.0)
        C = np.einsum("nja,ab,nkb->njk", G, omega, G) + Rv[..., None] * np.eye(J)
        r = np.where(mask, dsg.u - m.v, 0.0)
        with np.errstate(all="ignore"):
            sign, logdet = np.linalg.slogdet(C)
            Ci = _safe_inv(C)
        Cr = np.einsum("njk,nk->nj", Ci, r)
        ofv = np.where(sign > 0, logdet + np.einsum("nj,nj->n", r, Cr), np.nan)
        if not gradient:
            return ofv, None
        Gd = np.where(mask[..., None, None], m.d2[..., :q, :], 0.0)              # (n, J, q, d)
        Rd = np.where(mask[..., None], R.d1, 0.0)                                # (n, J, d)
        md = np.where(mask[..., None], m.d1, 0.0)
        GO = np.einsum("nja,ab->njb", G, omega)                                  # (n, J, q)
        # dC/dphi_c = Gd_c Omega G' + G Omega Gd_c' + diag(Rd_c)
        dC = np.einsum("njac,nka->njkc", Gd, GO)
        dC = dC + np.swapaxes(dC, 1, 2) + np.einsum("njc,jk->njkc", Rd, np.eye(J))
        P = Ci - np.einsum("nj,nk->njk", Cr, Cr)
        g_phi = np.einsum("njk,nkjc->nc", P, dC) - 2.0 * np.einsum("njc,nj->nc", md, Cr)
        GC = np.einsum("nja,nj->na", G, Cr)
        G_omega = np.einsum("nja,njk,nkb->nab", G, Ci, G) - np.einsum("na,nb->nab", GC, GC)
        # the derivatives of the mean and the covariance, for the expected information (_fo_information)
        return ofv, {"phi": g_phi, "omega": G_omega, "fo": (G, md, dC, Ci)}

    def _chain(self, x, theta_i, Lo, errs, g):
        """Per-subject gradients (n, n_x) by the internal parameters."""
        layout = self.layout
        names = layout.model.parameter_names
        n = theta_i.shape[0]
        q = self.q
        nx = x.size
        out = np.zeros((n, nx))
        g_theta = g["phi"][:, q:q + len(self.pi)]                       # (n, k) by theta_i over pi
        g_sigma = g["phi"][:, q + len(self.pi):]
        nt = len(layout.theta_names)
        # typical values (log or natural scale), times the covariate factors
        factors = self._effect_factors(x)
        for k, name in enumerate(layout.theta_names):
            p = names.index(name)
            i = self.pi.index(p)
            if layout.theta_log[k]:
                out[:, k] = g_theta[:, i] * theta_i[:, p]
            else:
                out[:, k] = g_theta[:, i] * factors.get(p, 1.0)
        # Omega: Cholesky factor entries (log diagonal)
        L = Lo
        for j, (a, b) in enumerate(layout.chol_index):
            E = np.zeros_like(L)
            E[a, b] = L[a, b] if a == b else 1.0
            dOm = E @ L.T + L @ E.T
            out[:, nt + j] = np.einsum("nab,ab->n", g["omega"], dOm)
        off = nt + len(layout.chol_index)
        for j, (o, pname) in enumerate(layout.error_slots):
            c = self.sigma_slots.index((o, pname))
            out[:, off + j] = g_sigma[:, c] * float(getattr(errs[o], pname))
        off += len(layout.error_slots) + len(layout.iov_names)
        for e, dlog in enumerate(self._effect_dlog(x)):
            p = names.index(layout.effects[e].parameter)
            i = self.pi.index(p)
            out[:, off + e] = g_theta[:, i] * theta_i[:, p] * dlog
        return out

    def _effect_factors(self, x) -> dict:
        """Product of the covariate factors per parameter index (n,)."""
        layout = self.layout
        if not layout.effects:
            return {}
        names = layout.model.parameter_names
        coef = layout.coefficients(x[None, :])[0]
        out: dict = {}
        for e, (eff, c) in enumerate(zip(layout.effects, layout.effect_columns)):
            p = names.index(eff.parameter)
            out[p] = out.get(p, 1.0) * _factor(eff.kind, coef[e], c, eff.ref)
        return out

    def _effect_dlog(self, x) -> list[np.ndarray]:
        """d log(factor_e) / d coefficient_e per effect (n,)."""
        layout = self.layout
        if not layout.effects:
            return []
        coef = layout.coefficients(x[None, :])[0]
        out = []
        for e, (eff, c) in enumerate(zip(layout.effects, layout.effect_columns)):
            b = coef[e]
            with np.errstate(all="ignore"):
                if eff.kind == "power":
                    out.append(np.log(c / eff.ref))
                elif eff.kind == "factor":
                    out.append(c / (1.0 + (b - 1.0) * c))
                elif eff.kind == "indicator":
                    out.append(c / (1.0 + b * c))
                else:
                    out.append((c - eff.ref) / (1.0 + b * (c - eff.ref)))
        return out


def _factor(kind, b, c, ref):
    with np.errstate(all="ignore"):
        if kind == "power":
            return (c / ref) ** b
        if kind == "factor":
            return 1.0 + (b - 1.0) * c
        if kind == "indicator":
            return 1.0 + b * c
        return 1.0 + b * (c - ref)


def _select(which: np.ndarray, parts: list) -> jets.Jet:
    """Per entry, the jet of part ``which`` (an int array shaped like the values)."""
    if len(parts) == 1:
        return parts[0]
    out = parts[0]
    for o in range(1, len(parts)):
        sel = which == o
        p = parts[o]
        out = jets.Jet(np.where(sel, p.v, out.v), np.where(sel[..., None], p.d1, out.d1),
                       np.where(sel[..., None, None], p.d2, out.d2),
                       None if out.d3 is None else np.where(sel[..., None, None, None], p.d3, out.d3))
    return out


def _sum_j(term: jets.Jet, w: np.ndarray) -> jets.Jet:
    """Sum over the observation axis of the masked terms."""
    def s(a, k):
        if a is None:
            return None
        m = w.reshape(w.shape + (1,) * k)
        return np.where(m, a, 0.0).sum(axis=1)

    return jets.Jet(s(term.v, 0), s(term.d1, 1), s(term.d2, 2), s(term.d3, 3))


def _safe_inv(A: np.ndarray) -> np.ndarray:
    ok = np.all(np.isfinite(A), axis=(-2, -1))
    A = np.where(ok[..., None, None], A, np.eye(A.shape[-1]))
    try:
        return np.linalg.inv(A)
    except np.linalg.LinAlgError:
        return np.linalg.pinv(A)


def _guard(A: np.ndarray) -> np.ndarray:
    ok = np.all(np.isfinite(A), axis=(-2, -1)) & (np.abs(np.linalg.det(np.where(
        np.all(np.isfinite(A), axis=(-2, -1))[..., None, None], A, np.eye(A.shape[-1])))) > 0)
    return np.where(ok[..., None, None], A, np.eye(A.shape[-1]))


LOG_2PI = math.log(2.0 * math.pi)
__all__ = ["ROOT"]
