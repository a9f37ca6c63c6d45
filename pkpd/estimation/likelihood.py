"""The likelihood of individual and pooled fits: residual error models and censoring, per observation group (private).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from ..error_models import M4, Combined, Proportional, _log_diff_ndtr, _ndtr_log
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
        # clinical endpoint records: one residual each, b**2 = -2 log L + K. -2 log L of a probability (binary,
        # ordinal, count, a censoring or an interval-censored event) is >= 0, so K = 0 (b = sqrt(-2 log L), whose
        # Gauss-Newton model has the curvature of the likelihood); only an exact event's density can exceed 1, and
        # its record gets K > 0 where -2 log L starts below 2 (re-centred like the log-normaliser, see _optimise)
        self.records = data.endpoint_records if data.endpoint_records is not None and data.endpoint_records.size \
            else None
        if self.records is not None:
            rec = self.records
            tte = np.array([rec.specs[k].kind == "time-to-event" for k in rec.output], dtype=bool)
            self.density_records = tte & (rec.dv == 1) & ~rec.interval
            self.K_records = np.zeros(rec.size)
        self.n_r = int(sum(sizes)) + (self.records.size if self.records is not None else 0)
        self.prior = None

    def set_prior(self, prior) -> None:
        """Add the -2 log prior of a MAP fit (pkpd.priors.IndividualPriorTerms) to the OFV and its residuals."""
        self.prior = prior
        self.n_r += prior.n_rows

    def reset_constants(self, F: np.ndarray, x: np.ndarray) -> None:
        """Choose K so that every log-normaliser residual squared is 2 log 1000 at ``(F, x)``."""
        if self.prior is not None:
            self.prior.reset(x)
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
            if self.records is not None:
                c = self.records.minus2ll(F)
                self.K_records = np.where(self.density_records & np.isfinite(c), np.maximum(2.0 - c, 0.0), 0.0)

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
        if self.records is not None:
            ok, part, clip = _endpoint_terms(self, out, F, dF, r_parts, j_parts, grad, residuals, fisher)
            if not ok:
                return out
            ofv += part
            clipped |= clip
        if self.prior is not None:
            p_ofv, p_r, p_J, p_g, p_clip, p_ok = self.prior.evaluate(x, n_x, fisher)
            if not p_ok:
                out.problem = "the parameters are outside the support of their prior"
                return out
            ofv += p_ofv
            clipped |= p_clip
            grad += p_g
            if residuals:
                r_parts.append(p_r)
                if jac:
                    j_parts.append(p_J)
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


def _endpoint_terms(lik: _Likelihood, out: _Evaluation, F, dF, r_parts, j_parts, grad, residuals: bool,
                    fisher: bool):
    """Add the endpoint records to an evaluation: (valid, their -2 log L, clipped)."""
    rec = lik.records
    jac = dF is not None
    if jac:
        c, gc = rec.minus2ll(F, gradient=True)
    else:
        c = rec.minus2ll(F)
    bad = ~np.isfinite(c)
    if bad.any():
        out.problem = _endpoint_problem(lik.data, rec, F, int(np.flatnonzero(bad)[0]))
        return False, 0.0, False
    p_s, n_x = lik.p_s, lik.n_x
    if jac:
        pad = np.vstack([dF, np.zeros((1, dF.shape[1]))])
        dP = pad[np.where(rec.components >= 0, rec.components, dF.shape[0])]           # (n_rec, C, p_s)
        dc = np.einsum("rc,rcp->rp", gc, dP)
        grad[:p_s] += dc.sum(axis=0)
    clipped = False
    if residuals:
        b2 = c + lik.K_records
        clipped = bool(np.any(lik.density_records & (b2 < 0.25)))
        b = np.sqrt(np.maximum(b2, 0.0))
        r_parts.append(b)
        if jac:
            rows = np.zeros((c.size, n_x))
            if fisher:   # expected information: rows whose J'J is it (see EndpointRecords.information_weights)
                W = rec.information_weights(F)
                info = np.einsum("rmc,rcp->rmp", W, dP).reshape(-1, p_s)
                rows = np.zeros((info.shape[0], n_x))
                rows[:, :p_s] = info
            else:
                rows[:, :p_s] = dc / (2.0 * np.maximum(b, 1e-8))[:, None]
            j_parts.append(rows)
    return True, float(np.sum(c)), clipped


def _endpoint_problem(data: _Data, rec, F, i: int) -> str:
    """Why an endpoint record's likelihood cannot be evaluated (for messages)."""
    spec = rec.specs[rec.output[i]]
    where = (f"subject {data.ids[rec.subject[i]]}, t = {rec.time[i]:g} {data.model.time_unit} (row {rec.row[i]})")
    P = rec._gather(np.asarray(F, dtype=float))[i]
    if not np.all(np.isfinite(P[rec.components[i] >= 0])):
        return f"output {spec.name!r}: the prediction is not finite at {where}"
    why = {"time-to-event": "the hazard at an event must be > 0 and the cumulative hazard must not decrease (a "
                            "hazard < 0)",
           "binary": f"the probability must lie in [0, 1]; got {P[0]:g}",
           "ordinal": "the cumulative logits must decrease from one category to the next (intercepts in "
                      "decreasing order)",
           "count": "the expected count must be >= 0 (and the dispersion > 0)"}[spec.kind]
    if spec.kind == "binary" and 0.0 <= P[0] <= 1.0:   # a valid probability: the observed value cannot happen
        why = f"the predicted probability of a 1 is {P[0]:g}, so the observed {rec.dv[i]:g} has probability 0"
    return f"{spec.kind} output {spec.name!r} at {where}: {why}"


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
