"""The likelihood of individual and pooled fits: residual error models and censoring, per observation group (private).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from ..error_models import M4, Combined, Proportional
from ..errors import DataError
from ..model import Model
from .data import _Data

if TYPE_CHECKING:
    from .individual import _ErrorSlot, _Layout

_LOG_2PI = math.log(2.0 * math.pi)
_B_MARGIN = 2.0 * math.log(1e3)  # see _Likelihood: the log-normaliser residuals start at this squared value


# ====================================================================================================== likelihood
def _log_phi(x):
    return -0.5 * x * x - 0.5 * _LOG_2PI


class _Group:
    """The observations of one output (private)."""

    def __init__(self, data: _Data, k: int, slot: _ErrorSlot, blq, model: Model):
        em = slot.template
        self.slot = slot
        self.idx = np.flatnonzero(data.output == k)
        cens = data.censored[self.idx]
        self.unc = np.flatnonzero(~cens)
        self.cen = np.flatnonzero(cens)
        self.log_scale = bool(em.log_scale)
        self.m4 = isinstance(blq, M4) and not self.log_scale
        y = data.dv[self.idx][self.unc]
        lim = data.limit[self.idx][self.cen]
        name = slot.output
        if self.log_scale:
            bad = ~(y > 0)
            if bad.any():
                row = int(data.row[self.idx][self.unc][bad][0])
                raise DataError(f"output {name!r} has a log-normal error model, so quantified observations must be "
                                f"> 0; got DV = {y[bad][0]:g}. Mark values below the limit of quantification with "
                                "LLOQ/BLQ, or use an additive or combined error model", row=row, column="DV")
            bad = ~(lim > 0)
            if bad.any():
                row = int(data.row[self.idx][self.cen][bad][0])
                raise DataError(f"output {name!r} has a log-normal error model, so the LLOQ must be > 0; got "
                                f"{lim[bad][0]:g}", row=row, column="LLOQ")
            self.u = np.log(y)
            self.u_limit = np.log(lim)
            self.const = float(np.sum(2.0 * np.log(y)))
        else:
            self.u = y
            self.u_limit = lim
            self.const = 0.0
        self.const += self.unc.size * _LOG_2PI
        self.varying = bool(slot.slots) or isinstance(em, Proportional | Combined) or self.m4
        self.K = np.zeros(self.unc.size)


class _Evaluation:
    """The likelihood at one point (private): OFV, residuals, Jacobian, gradient."""

    __slots__ = ("ofv", "r", "J", "grad", "valid", "clipped", "problem")

    def __init__(self):
        self.ofv = math.inf
        self.r = self.J = self.grad = None
        self.valid = False
        self.clipped = False
        self.problem = ""


class _Likelihood:
    """-2 log-likelihood of the observations given predictions, in scalar and sum-of-squares form (private).

    The sum-of-squares form has, per quantified observation, the weighted residual ``z = (y - f) / sd`` (on the log
    scale for log-normal errors) and, when the standard deviation varies with the parameters, a "log-normaliser"
    residual ``b`` with ``b**2 = 2 log sd + K`` (``K`` a constant chosen so that ``b**2`` starts at 2 log 1000 and
    stays positive); per censored observation ``sqrt(-2 log P)``. The sum of squares is then the OFV up to a
    constant, and its Jacobian gives Gauss-Newton steps for the structural and the error parameters together.
    """

    def __init__(self, data: _Data, layout: _Layout, blq):
        self.data, self.layout, self.blq = data, layout, blq
        self.groups = [_Group(data, data.outputs.index(s.output), s, blq, layout.model) for s in layout.errors]
        self.const = float(sum(g.const for g in self.groups))
        self.n_x = len(layout.names)
        self.p_s = layout.n_struct
        sizes = [g.unc.size + (g.unc.size if g.varying else 0) + g.cen.size for g in self.groups]
        self.n_r = int(sum(sizes))

    def reset_constants(self, F: np.ndarray, x: np.ndarray) -> None:
        """Choose K so that every log-normaliser residual squared is 2 log 1000 at ``(F, x)``."""
        with np.errstate(all="ignore"):
            for g in self.groups:
                if not g.varying:
                    continue
                f = F[g.idx][g.unc]
                s = g.slot.model_at(x)._scale(f)[0]
                raw = 2.0 * np.log(s)
                if g.m4:
                    raw += 2.0 * _ndtr_log(f / s)
                g.K = np.where(np.isfinite(raw), _B_MARGIN - raw, 0.0)

    def evaluate(self, F: np.ndarray, dF: np.ndarray | None, x: np.ndarray, *, residuals: bool = True,
                 fisher: bool = False) -> _Evaluation:
        """Everything at predictions ``F`` (n_obs,) with derivatives ``dF`` (n_obs, n_struct) or None.

        With ``fisher``, the Jacobian rows of the log-normaliser residuals are ``d sd / sd`` instead, so that
        ``2 J'J`` estimates the expected (Fisher) information of the OFV.
        """
        out = _Evaluation()
        with np.errstate(all="ignore"):
            return self._evaluate(out, F, dF, x, residuals, fisher)

    def _evaluate(self, out, F, dF, x, residuals, fisher):
        jac = dF is not None
        n_x, p_s = self.n_x, self.p_s
        ofv = self.const
        r_parts, j_parts = [], []
        grad = np.zeros(n_x)
        clipped = False
        for g in self.groups:
            f = F[g.idx]
            em = g.slot.model_at(x)
            s, dsdf, dsdp = em._scale(f)
            if g.log_scale:
                m = np.log(f)
                dmdf = 1.0 / f
            else:
                m = f
                dmdf = np.ones_like(f)
            ok = np.isfinite(f) & np.isfinite(s) & (s > 0) & np.isfinite(m)
            if not ok.all():
                i = int(np.flatnonzero(~ok)[0])
                out.problem = _invalid_message(self.data, g, i, f[i], s[i], em)
                return out
            if jac:
                dm = np.zeros((f.size, n_x))
                ds = np.zeros((f.size, n_x))
                dm[:, :p_s] = dmdf[:, None] * dF[g.idx]
                ds[:, :p_s] = dsdf[:, None] * dF[g.idx]
                for pname, i in g.slot.slots:
                    ds[:, i] = dsdp[pname] * getattr(em, pname)
            U, C = g.unc, g.cen
            gm = np.zeros(f.size)
            gs = np.zeros(f.size)
            # quantified observations
            su, mu = s[U], m[U]
            z = (g.u - mu) / su
            ofv += float(np.sum(z * z) + 2.0 * np.sum(np.log(su)))
            gm[U] = -2.0 * z / su
            gs[U] = (2.0 - 2.0 * z * z) / su
            lam_w = w = None
            if g.m4:
                w = mu / su
                lw = _ndtr_log(w)
                lam_w = np.exp(_log_phi(w) - lw)
                ofv += float(2.0 * np.sum(lw))
                gm[U] += 2.0 * lam_w / su
                gs[U] -= 2.0 * lam_w * w / su
            if residuals:
                r_parts.append(z)
                if jac:
                    j_parts.append((-1.0 / su)[:, None] * dm[U] + (-z / su)[:, None] * ds[U])
                if g.varying:
                    b2 = 2.0 * np.log(su) + g.K
                    b2_m = np.zeros(U.size)
                    b2_s = 2.0 / su
                    if g.m4:
                        b2 = b2 + 2.0 * lw
                        b2_m = 2.0 * lam_w / su
                        b2_s = b2_s - 2.0 * lam_w * w / su
                    clipped |= bool(np.any(b2 < 1.0))
                    b = np.sqrt(np.maximum(b2, 0.0))
                    r_parts.append(b)
                    if jac and fisher:
                        j_parts.append((1.0 / su)[:, None] * ds[U])
                    elif jac:
                        bb = 2.0 * np.maximum(b, 1e-8)
                        j_parts.append((b2_m / bb)[:, None] * dm[U] + (b2_s / bb)[:, None] * ds[U])
            # censored observations
            if C.size:
                sc, mc = s[C], m[C]
                a = (g.u_limit - mc) / sc
                if g.m4:
                    b0 = -mc / sc
                    D = _log_diff_ndtr(a, b0)
                    wc = mc / sc
                    lwc = _ndtr_log(wc)
                    lamc = np.exp(_log_phi(wc) - lwc)
                    dD_da = np.exp(_log_phi(a) - D)
                    dD_db = -np.exp(_log_phi(b0) - D)
                    c = -2.0 * (D - lwc)
                    c_m = -2.0 * (-(dD_da + dD_db) / sc - lamc / sc)
                    c_s = -2.0 * ((-dD_da * a - dD_db * b0) / sc + lamc * wc / sc)
                else:
                    la = _ndtr_log(a)
                    lam_a = np.exp(_log_phi(a) - la)
                    c = -2.0 * la
                    c_m = 2.0 * lam_a / sc
                    c_s = 2.0 * lam_a * a / sc
                if not np.all(np.isfinite(c)):
                    i = int(C[np.flatnonzero(~np.isfinite(c))[0]])
                    out.problem = _invalid_message(self.data, g, i, f[i], s[i], em)
                    return out
                ofv += float(np.sum(c))
                gm[C] = c_m
                gs[C] = c_s
                if residuals:
                    rc = np.sqrt(np.maximum(c, 0.0))
                    r_parts.append(rc)
                    if jac:
                        den = np.where(rc > 0, 2.0 * rc, np.inf)
                        j_parts.append((c_m / den)[:, None] * dm[C] + (c_s / den)[:, None] * ds[C])
            if jac:
                grad += gm @ dm + gs @ ds
        if not math.isfinite(ofv):
            out.problem = "the -2 log-likelihood is not finite"
            return out
        out.ofv = ofv
        out.valid = True
        out.clipped = clipped
        if residuals:
            out.r = np.concatenate(r_parts) if r_parts else np.zeros(0)
            if jac:
                out.J = np.vstack(j_parts) if j_parts else np.zeros((0, n_x))
        if jac:
            out.grad = grad
        return out


def _ndtr_log(x):
    from scipy.special import log_ndtr

    return log_ndtr(x)


def _log_diff_ndtr(a, b):
    from ..error_models import _log_diff_ndtr as impl

    return impl(a, b)


def _invalid_message(data: _Data, g: _Group, i: int, f: float, s: float, em) -> str:
    j = int(g.idx[i])
    where = (f"subject {data.ids[data.subject[j]]}, t = {data.time[j]:g} {data.model.time_unit} (row {data.row[j]})")
    name = type(em).__name__
    if not np.isfinite(f):
        return f"output {g.slot.output!r}: the prediction is not finite at {where}"
    if g.log_scale and not f > 0:
        return (f"output {g.slot.output!r}: the {name} error model needs positive predictions, but the prediction is "
                f"{f:g} at {where}; use a Combined or Additive error model, or censor/remove that observation")
    return (f"output {g.slot.output!r}: the {name} error model cannot be evaluated at {where}: the prediction is "
            f"{f:g}, so the standard deviation is {s:g}; use Combined(sd=..., cv=..., convention=...) (an additive "
            "part keeps it positive) or remove that observation")
