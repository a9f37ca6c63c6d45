r"""The population Fisher information matrix (FIM) of a design: linearisation of the model (FO or FOCE) and the
reduced (block-diagonal) or full FIM, with the conventions of PopED and PFIM.

For one subject with observations :math:`y` (transformed to the log scale for a :class:`~pkpd.LogNormal` error
model), the linearised model gives a normal distribution with mean :math:`E(\beta)` and variance
:math:`V = G \Omega G^\top + R`, where :math:`G = \partial f/\partial\eta` and :math:`R` is the diagonal residual
variance of the error models. With :math:`\lambda` the variance parameters (elements of :math:`\Omega`, residual
error parameters) the FIM of the subject has blocks

.. math::

    A_{kl} = \frac{\partial E}{\partial\beta_k}^\top V^{-1} \frac{\partial E}{\partial\beta_l}
             \;\Big[+\; \tfrac12 \mathrm{tr}\big(V^{-1}\tfrac{\partial V}{\partial\beta_k}V^{-1}
             \tfrac{\partial V}{\partial\beta_l}\big)\Big],\qquad
    B_{ab} = \tfrac12 \mathrm{tr}\big(V^{-1}\tfrac{\partial V}{\partial\lambda_a}V^{-1}
             \tfrac{\partial V}{\partial\lambda_b}\big),\qquad
    C_{ka} = \Big[\tfrac12 \mathrm{tr}\big(V^{-1}\tfrac{\partial V}{\partial\beta_k}V^{-1}
             \tfrac{\partial V}{\partial\lambda_a}\big)\Big]

(Retout, Mentré & Bruno 2002; Foracchia et al. 2004). The **full** FIM keeps the bracketed terms; the **reduced**
FIM (PopED's default, ``fim.calc.type = 1``; PFIM's "block-diagonal") drops them, so fixed effects and variances
are uncorrelated. A group of ``size`` identical subjects contributes ``size`` times its subject's FIM, and groups
add up.

Linearisation (``approximation``):

* ``"fo"``: around :math:`\eta = 0`: :math:`E = f(\beta, 0)`, :math:`G` and :math:`R` at the population prediction;
* ``"foce"``: PopED's FOCE: around draws :math:`\eta_k \sim N(0, \Omega)` (``n_draws``, fixed ``seed``):
  :math:`E_k = f(\beta, \eta_k) - G_k \eta_k`, :math:`V_k = G_k \Omega G_k^\top + R(f(\beta, \eta_k))`; the FIM is
  the mean of the draws' FIMs.

Parameters are those :func:`pkpd.fit_population` estimates, on its scales: typical values (natural scale), the
variances (and estimated covariances) of :math:`\Omega`, and the residual error model parameters (``sd``, ``cv``,
``sigma``: standard deviations, as pkpd estimates them; PopED reports the variances :math:`\sigma^2`, whose RSE is
exactly twice that of :math:`\sigma`). Derivatives are central finite differences (steps 1e-4 relative in
:math:`\beta`, 1e-4 in :math:`\eta`; 1e-3 for the mixed second derivatives of the full FIM and FOCE), every
perturbed parameter set of a group solved in one batched call, at tight tolerances (``rtol=1e-10``).

References
----------
Retout S, Mentré F, Bruno R (2002) Fisher information matrix for non-linear mixed-effects models: evaluation and
application for optimal design of enoxaparin population pharmacokinetics. Stat Med 21:2623-2639.
Foracchia M, Hooker A, Vicini P, Ruggeri A (2004) POPED, a software for optimal experiment design in population
kinetics. Comput Methods Programs Biomed 74:29-46.
Nyberg J, Bazzoli C, Ogungbenro K, et al. (2015) Methods and software tools for design evaluation in population
pharmacokinetics-pharmacodynamics studies. Br J Clin Pharmacol 79:6-17.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..errors import PkpdError, did_you_mean
from .designs import Design, Group

__all__ = ["APPROXIMATIONS", "FIM_TYPES", "DesignEvaluation", "evaluate_design"]

APPROXIMATIONS = ("fo", "foce")
FIM_TYPES = ("reduced", "full")
_H_BETA = 1e-4      # relative step in the typical values (first derivatives)
_H_ETA = 1e-4       # step in eta (first derivatives)
_H_MIXED = 1e-3     # steps of the nested differences (d/d beta of d/d eta)


# ------------------------------------------------------------------------------------------------ the model side
@dataclass(frozen=True, eq=False)
class _Spec:
    """The population model as the design sees it (private): compiled model, estimated parameters, IIV, errors."""

    model: object
    cm: object
    beta_names: tuple[str, ...]
    beta: np.ndarray                 # typical values of the estimated parameters
    iiv: object                      # IIV or None
    omega_index: tuple               # (a, b) of the estimated Omega elements
    errors: dict                     # output -> error model
    error_slots: tuple               # (output, parameter) estimated
    settings: object

    @property
    def n_beta(self) -> int:
        return len(self.beta_names)

    @property
    def q(self) -> int:
        return 0 if self.iiv is None else self.iiv.n_eta

    @property
    def names(self) -> list[str]:
        out = list(self.beta_names)
        if self.iiv is not None:
            nm = self.iiv.names
            out += [f"omega2_{nm[a]}" if a == b else f"omega_{nm[b]}_{nm[a]}" for a, b in self.omega_index]
        many = len(self.errors) > 1
        out += [f"{o}_{p}" if many else p for o, p in self.error_slots]
        return out

    @property
    def values(self) -> np.ndarray:
        vals = list(self.beta)
        if self.iiv is not None:
            vals += [self.iiv.omega[a, b] for a, b in self.omega_index]
        vals += [getattr(self.errors[o], p) for o, p in self.error_slots]
        return np.array(vals, dtype=float)

    def with_beta(self, beta) -> _Spec:
        from dataclasses import replace

        return replace(self, beta=np.asarray(beta, dtype=float))

    def parameter_rows(self, beta: np.ndarray, eta: np.ndarray) -> np.ndarray:
        """Model parameter vectors (K, n_params) for typical values beta (K, n_beta) and random effects eta (K, q)."""
        names = self.model.parameter_names
        base = np.array([p.value for p in self.model.parameters], dtype=float)
        rows = np.tile(base, (beta.shape[0], 1))
        for j, n in enumerate(self.beta_names):
            rows[:, names.index(n)] = beta[:, j]
        if self.iiv is not None:
            for j, n in enumerate(self.iiv.names):
                k = names.index(n)
                rows[:, k] = _transform(self.iiv.distributions[j], rows[:, k], eta[:, j])
        return rows


def _transform(dist, typical, eta):
    from ..population import transform

    return transform(dist, typical, eta)


def _spec(model, *, iiv, error, estimate, settings) -> _Spec:
    from ..compile import compile_model
    from ..error_models import ERROR_MODELS
    from ..load import load_model
    from ..model import Model
    from ..population import IIV, IOV
    from ..settings import SolverSettings

    if isinstance(model, str):
        model = load_model(model)
    if not isinstance(model, Model):
        raise PkpdError(f"design: model must be a pkpd Model or a model name; got {type(model).__name__}")
    names = model.parameter_names
    if iiv is not None:
        if isinstance(iiv, IOV):
            raise PkpdError("design: inter-occasion variability is not part of the design FIM; give the IIV only")
        if isinstance(iiv, Mapping):
            iiv = IIV(dict(iiv))
        if not isinstance(iiv, IIV):
            raise PkpdError(f"design: iiv must be a dict name -> variance or a pkpd.IIV; got {type(iiv).__name__}")
        for n in iiv.names:
            if n not in names:
                raise PkpdError(f"design iiv: model {model.name!r} has no parameter {n!r}." + did_you_mean(n, names))
    if isinstance(error, ERROR_MODELS):
        if len(model.outputs) != 1:
            raise PkpdError(f"design: model {model.name!r} has {len(model.outputs)} outputs; give error as a dict "
                            "output -> error model (one per sampled output)")
        error = {model.output_names[0]: error}
    if isinstance(error, Mapping) and not error:
        raise PkpdError(f"design: error is empty; give an error model for each sampled output of model {model.name!r} "
                        f"(its outputs: {', '.join(model.output_names) or 'none'}), e.g. "
                        f"error={{{(model.output_names or ('OUTPUT',))[0]!r}: pkpd.Proportional(cv=0.2)}}")
    if not isinstance(error, Mapping):
        raise PkpdError(f"design: error must be an error model or a dict output -> error model; got {error!r}")
    errors = {}
    for o, em in error.items():
        if o not in model.output_names:
            raise PkpdError(f"design error: model {model.name!r} has no output {o!r}."
                            + did_you_mean(str(o), model.output_names))
        if not isinstance(em, ERROR_MODELS):
            raise PkpdError(f"design error[{o!r}]: expected an error model (Additive, Proportional, Combined, "
                            f"LogNormal); got {em!r}")
        errors[o] = em
    if estimate is None:
        if iiv is None:
            raise PkpdError("design: estimate=[...] names the typical values to estimate (required without iiv)")
        estimate = iiv.names
    estimate = (estimate,) if isinstance(estimate, str) else tuple(estimate)
    for n in estimate:
        if n not in names:
            raise PkpdError(f"design estimate: model {model.name!r} has no parameter {n!r}." + did_you_mean(n, names))
    if len(set(estimate)) != len(estimate):
        raise PkpdError(f"design estimate: a parameter is named twice in {list(estimate)}")
    beta = np.array([model.parameter(n).value for n in estimate], dtype=float)
    if iiv is not None:
        pattern = iiv.omega != 0
        omega_index = tuple((a, b) for a in range(iiv.n_eta) for b in range(a + 1) if a == b or pattern[a, b])
    else:
        omega_index = ()
    slots = tuple((o, p) for o, em in errors.items() for p in em.parameter_names if p not in em.fixed)
    settings = settings or SolverSettings(rtol=1e-10, atol=1e-12)
    return _Spec(model=model, cm=compile_model(model), beta_names=estimate, beta=beta, iiv=iiv,
                 omega_index=omega_index, errors=errors, error_slots=slots, settings=settings)


# ------------------------------------------------------------------------------------------------ linearisation
@dataclass(frozen=True, eq=False)
class _Linearisation:
    """Predictions and derivatives of one group on a time grid, per draw (private).

    Arrays per output ``o`` (K draws, n_beta, n_times, q): ``m`` transformed mean prediction, ``f`` natural one,
    ``E`` linearised mean, ``dE`` its derivatives in beta, ``df`` those of f, ``G`` d m/d eta, ``dG`` d G/d beta
    (None unless needed).
    """

    times: np.ndarray
    f: dict
    E: dict
    dE: dict
    df: dict
    G: dict
    dG: dict | None


def _draws(spec: _Spec, approximation: str, n_draws: int, seed) -> np.ndarray:
    if approximation == "fo" or spec.q == 0:
        return np.zeros((1, spec.q))
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    return rng.multivariate_normal(np.zeros(spec.q), spec.iiv.omega, size=int(n_draws), method="cholesky")


def linearise(spec: _Spec, group: Group, times: np.ndarray, regimen, eta_draws: np.ndarray,
              need_mixed: bool) -> _Linearisation:
    """Simulate every perturbed parameter set of a group in one batched call and difference them (private)."""
    from ..simulation import simulate

    K, q, nb = eta_draws.shape[0], spec.q, spec.n_beta
    beta0 = spec.beta
    hb = _H_BETA * np.where(beta0 != 0, np.abs(beta0), 1.0)
    hm_b = _H_MIXED * np.where(beta0 != 0, np.abs(beta0), 1.0)
    B, H = [], []       # rows of beta and eta, built per block

    def block(db: np.ndarray, de: np.ndarray):
        # db (m, nb) offsets of beta, de (m, q) offsets of eta: all combined with every draw
        B.append(np.repeat(beta0[None, :] + db, K, axis=0))
        H.append(np.tile(eta_draws, (db.shape[0], 1)) + np.repeat(de, K, axis=0))
        return db.shape[0]

    zero_b, zero_e = np.zeros((1, nb)), np.zeros((1, q))
    sizes = [block(zero_b, zero_e)]
    eye_e, eye_b = np.eye(q), np.eye(nb)
    sizes.append(block(np.zeros((2 * q, nb)), np.concatenate([_H_ETA * eye_e, -_H_ETA * eye_e]) if q else
                       np.zeros((0, q))))
    sizes.append(block(np.concatenate([eye_b * hb, -eye_b * hb]), np.zeros((2 * nb, q))))
    mixed = need_mixed and q > 0 and nb > 0
    if mixed:
        db, de = [], []
        for sb in (1, -1):
            for i in range(nb):
                for se in (1, -1):
                    for j in range(q):
                        db.append(sb * hm_b[i] * eye_b[i])
                        de.append(se * _H_MIXED * eye_e[j])
        sizes.append(block(np.array(db), np.array(de)))
    beta_rows = np.concatenate(B)
    eta_rows = np.concatenate(H)
    P = spec.parameter_rows(beta_rows, eta_rows)
    params = {n: P[:, k] for k, n in enumerate(spec.model.parameter_names)}
    outputs = list(spec.errors)
    sim = simulate(spec.cm, regimen, times, params=params, covariates=group.covariates or None,
                   settings=spec.settings, states=False)
    f, E, dE, df, G, dG = {}, {}, {}, {}, {}, ({} if need_mixed else None)
    for o in outputs:
        em = spec.errors[o]
        y = np.asarray(sim[o], dtype=float)                     # (rows, n_times)
        if not np.all(np.isfinite(y)):
            raise PkpdError(f"design {group.name!r}: the model gives non-finite {o!r} for some parameter sets; "
                            "check the parameter values and the sampling times")
        if em.log_scale and np.any(y <= 0):
            raise PkpdError(f"design {group.name!r}: {o!r} is not positive at some sampling time, so its log-normal "
                            "error is undefined there; sample later or use another error model")
        m = np.log(y) if em.log_scale else y
        nt = y.shape[1]
        start = np.cumsum([0] + [s * K for s in sizes])
        base = m[start[0]:start[1]]                              # (K, nt)
        base_f = y[start[0]:start[1]]
        ep = m[start[1]:start[2]].reshape(2 * q, K, nt) if q else np.zeros((0, K, nt))
        Gk = ((ep[:q] - ep[q:]) / (2 * _H_ETA)).transpose(1, 2, 0) if q else np.zeros((K, nt, 0))
        bp = m[start[2]:start[3]].reshape(2 * nb, K, nt)
        bpf = y[start[2]:start[3]].reshape(2 * nb, K, nt)
        dm = ((bp[:nb] - bp[nb:]) / (2 * hb[:, None, None])).transpose(1, 0, 2)     # (K, nb, nt)
        dfk = ((bpf[:nb] - bpf[nb:]) / (2 * hb[:, None, None])).transpose(1, 0, 2)
        if mixed:
            mx = m[start[3]:start[4]].reshape(2, nb, 2, q, K, nt)
            g_plus = (mx[0, :, 0] - mx[0, :, 1]) / (2 * _H_MIXED)                    # (nb, q, K, nt)
            g_minus = (mx[1, :, 0] - mx[1, :, 1]) / (2 * _H_MIXED)
            dGk = ((g_plus - g_minus) / (2 * hm_b[:, None, None, None])).transpose(2, 0, 3, 1)  # (K, nb, nt, q)
            dG[o] = dGk
        else:
            dGk = None
        if dGk is not None and np.any(eta_draws != 0):
            Ek = base - np.einsum("ktq,kq->kt", Gk, eta_draws)
            dEk = dm - np.einsum("kbtq,kq->kbt", dGk, eta_draws)
        else:
            Ek, dEk = base, dm
        f[o], E[o], dE[o], df[o], G[o] = base_f, Ek, dEk, dfk, Gk
    return _Linearisation(times=np.asarray(times), f=f, E=E, dE=dE, df=df, G=G, dG=dG)


# ------------------------------------------------------------------------------------------------ FIM assembly
def _residual(spec: _Spec, out_names, f):
    """Residual variances (K, n), their derivative in f (K, n) and in the error slots (n_slots, K, n)."""
    R = np.empty_like(f)
    dR_df = np.empty_like(f)
    dR_dp = np.zeros((len(spec.error_slots),) + f.shape)
    for o, em in spec.errors.items():
        cols = out_names == o
        if not cols.any():
            continue
        s, ds_df, ds_dp = em._scale(f[:, cols])
        R[:, cols] = s * s
        dR_df[:, cols] = 2 * s * ds_df
        for k, (oo, p) in enumerate(spec.error_slots):
            if oo == o:
                dR_dp[k][:, cols] = 2 * s * ds_dp[p]
    if np.any(~(R > 0)):
        raise PkpdError("design: a residual variance is 0 at some sample (e.g. a proportional error where the "
                        "prediction is 0, such as a pre-dose sample); use a Combined error model or move the sample")
    return R, dR_df, dR_dp


def subject_fim(spec: _Spec, lin: _Linearisation, samples: Sequence[tuple[str, int]], fim_type: str) -> np.ndarray:
    """FIM of one subject sampled at ``samples`` = (output, grid index), averaged over the draws (private)."""
    outs = [o for o, _ in samples]
    idx = np.array([[i for _, i in samples]], dtype=np.intp)
    return subject_fims(spec, lin, outs, idx, fim_type)[0]


def subject_fims(spec: _Spec, lin: _Linearisation, outputs: Sequence[str], idx: np.ndarray,
                 fim_type: str) -> np.ndarray:
    """FIMs (C, p, p) of C candidate subjects, each sampled at grid indices ``idx[c]`` of ``outputs`` (private)."""
    C, n = idx.shape
    K = lin.f[outputs[0]].shape[0]
    q, nb = spec.q, spec.n_beta
    cols = range(n)
    f = np.stack([lin.f[outputs[s]][:, idx[:, s]] for s in cols], axis=-1).transpose(1, 0, 2).reshape(C * K, n)
    dE = np.stack([lin.dE[outputs[s]][:, :, idx[:, s]] for s in cols], axis=-1)           # (K, nb, C, n)
    dE = dE.transpose(2, 0, 1, 3).reshape(C * K, nb, n)
    df = np.stack([lin.df[outputs[s]][:, :, idx[:, s]] for s in cols], axis=-1)
    df = df.transpose(2, 0, 1, 3).reshape(C * K, nb, n)
    G = np.stack([lin.G[outputs[s]][:, idx[:, s], :] for s in cols], axis=2)              # (K, C, n, q)
    G = G.transpose(1, 0, 2, 3).reshape(C * K, n, q)
    R, dR_df, dR_dp = _residual(spec, np.array(outputs), f)
    omega = spec.iiv.omega if spec.iiv is not None else np.zeros((0, 0))
    V = np.einsum("knq,qr,kmr->knm", G, omega, G) + R[:, :, None] * np.eye(n)
    Vi = np.linalg.inv(V)
    # derivatives of V in the variance parameters: Omega elements, then error parameters
    dV_lam = []
    for a, b in spec.omega_index:
        Ga, Gb = G[:, :, a], G[:, :, b]
        d = Ga[:, :, None] * Gb[:, None, :]
        dV_lam.append(d if a == b else d + d.transpose(0, 2, 1))
    for k in range(len(spec.error_slots)):
        dV_lam.append(dR_dp[k][:, :, None] * np.eye(n))
    n_lam = len(dV_lam)
    p = nb + n_lam
    F = np.zeros((C * K, p, p))
    F[:, :nb, :nb] = np.einsum("kbn,knm,kcm->kbc", dE, Vi, dE)
    M_lam = [Vi @ d for d in dV_lam]
    for a in range(n_lam):
        for b in range(a + 1):
            F[:, nb + a, nb + b] = F[:, nb + b, nb + a] = 0.5 * np.einsum("kij,kji->k", M_lam[a], M_lam[b])
    if fim_type == "full":
        if lin.dG is not None and q:
            dG = np.stack([lin.dG[outputs[s]][:, :, idx[:, s], :] for s in cols], axis=3)   # (K, nb, C, n, q)
            dG = dG.transpose(2, 0, 1, 3, 4).reshape(C * K, nb, n, q)
        M_beta = []
        for k in range(nb):
            d = dR_df * df[:, k]
            dV = d[:, :, None] * np.eye(n)
            if lin.dG is not None and q:
                t = np.einsum("knq,qr,kmr->knm", dG[:, k], omega, G)
                dV = dV + t + t.transpose(0, 2, 1)
            M_beta.append(Vi @ dV)
        for a in range(nb):
            for b in range(a + 1):
                F[:, a, b] += 0.5 * np.einsum("kij,kji->k", M_beta[a], M_beta[b])
                if a != b:
                    F[:, b, a] = F[:, a, b]
            for c in range(n_lam):
                F[:, a, nb + c] = F[:, nb + c, a] = 0.5 * np.einsum("kij,kji->k", M_beta[a], M_lam[c])
    return F.reshape(C, K, p, p).mean(axis=1)


# ------------------------------------------------------------------------------------------------ evaluation
@dataclass(frozen=True, eq=False)
class DesignEvaluation:
    """The Fisher information of a design and the precision it predicts (result of :func:`evaluate_design`).

    Attributes
    ----------
    design : Design
    names : tuple[str, ...]
        Parameters in FIM order: typical values, ``omega2_<name>`` (and ``omega_<a>_<b>``), error parameters
        (``sd``, ``cv``, ``sigma``; ``<output>_<parameter>`` with several outputs), as :func:`pkpd.fit_population`
        names its estimates.
    values : dict[str, float]
        The parameter values the FIM was computed at.
    fim : ndarray (p, p)
        The population FIM (sum over groups of size x subject FIM).
    covariance : ndarray (p, p)
        Its inverse, the predicted covariance of the estimates (NaN when the FIM is singular).
    se, rse_percent : dict[str, float]
        Predicted standard errors and relative standard errors 100 SE/|value| [%].
    log_det : float
        ln det FIM (PopED's "lnD" objective; -inf when singular).
    d_criterion : float
        det(FIM)^(1/p), comparable between designs of the same parameters.
    approximation, fim_type : str
    message : str
        Why the FIM cannot be inverted, or "".
    """

    design: Design
    names: tuple
    values: dict
    fim: np.ndarray = field(repr=False)
    covariance: np.ndarray = field(repr=False)
    se: dict = field(repr=False)
    rse_percent: dict = field(repr=False)
    log_det: float = -math.inf
    d_criterion: float = 0.0
    approximation: str = "fo"
    fim_type: str = "reduced"
    message: str = ""
    model_name: str = ""
    model: object = field(default=None, repr=False)
    outputs: tuple = ()

    def table(self):
        """``name, value, se, rse_percent`` per parameter (pandas DataFrame)."""
        import pandas as pd

        return pd.DataFrame({"name": list(self.names), "value": [self.values[n] for n in self.names],
                             "se": [self.se[n] for n in self.names],
                             "rse_percent": [self.rse_percent[n] for n in self.names]})

    def plot(self, **kwargs):
        """Predicted typical profiles with the sampling times; see :func:`pkpd.decision_plots.plot_design`."""
        from ..decision_plots import plot_design

        return plot_design(self, **kwargs)

    def __repr__(self) -> str:
        rse = ", ".join(f"{n} {self.rse_percent[n]:.1f} %" for n in self.names)
        note = f"; {self.message}" if self.message else ""
        return (f"DesignEvaluation({self.model_name}, {self.approximation.upper()} {self.fim_type} FIM, "
                f"{self.design.n_subjects} subjects: ln det {self.log_det:.4f}; RSE {rse}{note})")


def _check_options(approximation, fim_type, n_draws):
    if approximation not in APPROXIMATIONS:
        raise PkpdError(f"design: approximation must be one of {APPROXIMATIONS}; got {approximation!r}."
                        + did_you_mean(str(approximation), APPROXIMATIONS))
    if fim_type not in FIM_TYPES:
        raise PkpdError(f"design: fim must be one of {FIM_TYPES}; got {fim_type!r}."
                        + did_you_mean(str(fim_type), FIM_TYPES))
    if isinstance(n_draws, bool) or not isinstance(n_draws, numbers.Integral) or n_draws < 1:
        raise PkpdError(f"design: n_draws must be a positive integer; got {n_draws!r}")


def _sample_indices(spec: _Spec, group: Group, grid: np.ndarray) -> list[tuple[str, int]]:
    out = []
    single = next(iter(spec.errors)) if len(spec.errors) == 1 else None
    for o, t in group.samples:
        name = single if o == "*" else o
        if name is None:
            raise PkpdError(f"design {group.name!r}: the error model covers {len(spec.errors)} outputs; give the "
                            "group's times per output, e.g. times={'PGE2': [...], 'IL10': [...]}")
        if name not in spec.errors:
            raise PkpdError(f"design {group.name!r}: samples of {name!r}, which has no error model."
                            + did_you_mean(name, list(spec.errors)))
        out.append((name, int(np.searchsorted(grid, t))))
    return out


def _check_outputs_sampled(spec: _Spec, design: Design) -> None:
    sampled = set()
    for g in design.groups:
        sampled |= {o for o, _ in _sample_indices(spec, g, np.unique([t for _, t in g.samples]))}
    for o in spec.errors:
        if o not in sampled:
            raise PkpdError(f"design: output {o!r} has an error model but no samples in any group, so its error "
                            "parameters cannot be estimated; sample it or drop it from error")


def design_fim(spec: _Spec, design: Design, approximation: str, fim_type: str, draws: np.ndarray,
               regimens: Mapping | None = None) -> np.ndarray:
    """The population FIM of a design (private)."""
    total = None
    need_mixed = fim_type == "full" or approximation == "foce"
    for g in design.groups:
        grid = np.unique([t for _, t in g.samples])
        lin = linearise(spec, g, grid, (regimens or {}).get(g.name, g.regimen), draws, need_mixed)
        F = g.size * subject_fim(spec, lin, _sample_indices(spec, g, grid), fim_type)
        total = F if total is None else total + F
    return total


def summarise(spec: _Spec, design: Design, F: np.ndarray, approximation: str, fim_type: str) -> DesignEvaluation:
    """A DesignEvaluation from a FIM (private)."""
    names = tuple(spec.names)
    values = spec.values
    sign, logdet = np.linalg.slogdet(F)
    message = ""
    if sign <= 0 or not np.isfinite(logdet):
        cov = np.full(F.shape, np.nan)
        logdet = -math.inf
        message = ("the FIM is singular: some parameters cannot be estimated from this design (too few samples, "
                   "or samples where the model does not depend on them)")
    else:
        cov = np.linalg.inv(F)
    se = np.sqrt(np.where(np.diag(cov) >= 0, np.diag(cov), np.nan))
    with np.errstate(divide="ignore", invalid="ignore"):
        rse = 100 * se / np.abs(values)
    p = len(names)
    for a in (F, cov):
        a.setflags(write=False)
    return DesignEvaluation(design=design, names=names, values=dict(zip(names, values.tolist())), fim=F,
                            covariance=cov, se=dict(zip(names, se.tolist())),
                            rse_percent=dict(zip(names, rse.tolist())), log_det=float(logdet),
                            d_criterion=float(math.exp(logdet / p)) if math.isfinite(logdet) else 0.0,
                            approximation=approximation, fim_type=fim_type, message=message,
                            model_name=spec.model.name, model=spec.model, outputs=tuple(spec.errors))


def evaluate_design(model, design: Design | Group, *, error, iiv=None, estimate=None, approximation: str = "fo",
                    fim: str = "reduced", n_draws: int = 100, seed: int | None = 0,
                    settings=None) -> DesignEvaluation:
    r"""The population Fisher information of a design and the parameter precision it predicts.

    Main arguments
    --------------
    model : Model or str
        Its parameter values are the typical values the design is evaluated at.
    design : Design or Group
        Groups x sampling times (per output) x doses x sizes.
    error : error model or dict[str, error model]
        Residual error of each sampled output (parameters not in ``fixed`` are estimated).
    iiv : dict[str, float] or IIV, optional
        Between-subject variability (variances; block :math:`\Omega` through an IIV). Without it the FIM is that of
        individual (or pooled) data.
    estimate : sequence of str, optional
        Typical values estimated (default: those with IIV).

    Other arguments
    ---------------
    approximation : {"fo", "foce"}
        Linearisation around :math:`\eta = 0` (FO) or around ``n_draws`` draws of :math:`\eta` (PopED's FOCE).
    fim : {"reduced", "full"}
        Block-diagonal FIM (PopED's default) or the full one.
    n_draws : int
        Draws of :math:`\eta` for FOCE (seeded by ``seed``: the same design gives the same FIM).
    settings : SolverSettings, optional
        Default ``rtol=1e-10, atol=1e-12`` (the FIM uses finite differences).

    Returns
    -------
    DesignEvaluation

    Raises
    ------
    PkpdError
        Unknown parameter or output, an output with an error model but no samples, samples of an output without
        one, a zero residual variance at a sample, non-finite predictions.

    Examples
    --------
    PopED's warfarin example (Nyberg et al. 2015): 32 subjects, 70 mg oral, 8 samples, proportional error:

    >>> import pkpd
    >>> from pkpd.design import Design, Group, evaluate_design
    >>> m = pkpd.load_model("pk_1cmt_oral").with_parameters(CL=0.15, V=8.0, ka=1.0)
    >>> g = Group(pkpd.Regimen.single(pkpd.Dose(70, "mg"), target="oral"), [0.5, 1, 2, 6, 24, 36, 72, 120], 32)
    >>> ev = evaluate_design(m, Design([g]), iiv={"CL": 0.07, "V": 0.02, "ka": 0.6}, estimate=["CL", "V", "ka"],
    ...                      error=pkpd.Proportional(cv=0.1))
    >>> [round(ev.rse_percent[n], 2) for n in ("CL", "V", "ka", "omega2_CL")]
    [4.74, 2.76, 13.93, 25.63]
    """
    _check_options(approximation, fim, n_draws)
    if isinstance(design, Group):
        design = Design([design])
    if not isinstance(design, Design):
        raise PkpdError(f"design: expected a Design or a Group; got {type(design).__name__}")
    spec = _spec(model, iiv=iiv, error=error, estimate=estimate, settings=settings)
    _check_outputs_sampled(spec, design)
    draws = _draws(spec, approximation, n_draws, seed)
    F = design_fim(spec, design, approximation, fim, draws)
    return summarise(spec, design, F, approximation, fim)
