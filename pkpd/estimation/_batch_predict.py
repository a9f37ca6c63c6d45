"""Predictions of many copies of a population problem's subjects through the compiled estimation library
(private; SAEM's chains and the importance-sampling likelihood).

The finite-difference engine's :meth:`pkpd.estimation.finite_difference._Problem.predict` rebuilds the batch
(covariates, initial states, dose events) on every call and solves with the simulation engine; for SAEM, which
calls it thousands of times with nothing changed but the parameters, that set-up is most of the cost. A
:class:`CompiledPredictor` builds the design once (:func:`pkpd.estimation._objective.design_of`) and solves every
row in one parallel call of the generated library (:mod:`pkpd.estimation._compiled`): the model's own outputs only
(:meth:`predict`) or with their first-order forward sensitivities by a few parameters
(:meth:`predict_sensitivities`). Both return the same (c, n, J) layout as ``_Problem.predict``, NaN where a
subject could not be solved.

It serves the problems the compiled objective serves (:func:`compiled_predictor` returns None otherwise:
no C compiler, IOV, steady-state doses or resets, clinical endpoint records, doses depending on an estimated
parameter), and the callers keep ``_Problem.predict`` for the others.
"""

from __future__ import annotations

import numpy as np

from ._compiled import compiled_system
from ._derivative_system import ROOT
from ._objective import derivative_scales, design_of, initial_methods


def compiled_predictor(prob, layout, sensitivity_parameters: tuple[int, ...] = ()):
    """A :class:`CompiledPredictor` for this problem, or None where only ``prob.predict`` can serve it."""
    from .population_fit import _compiled_unsupported

    if _compiled_unsupported(prob, layout):
        return None
    return CompiledPredictor(prob, layout, tuple(int(i) for i in sensitivity_parameters))


class CompiledPredictor:
    """Predictions (c, n, J) of parameter rows P (c, n, n_params) in one compiled parallel call (private)."""

    def __init__(self, prob, layout, sensitivity_parameters: tuple[int, ...] = ()):
        self.prob = prob
        self.design = d = design_of(prob, layout.base)
        self.settings = prob.settings
        fitted = tuple(int(i) for i in prob.out_index)
        self.n_fit = len(fitted)
        self.lib = compiled_system(prob.model, (), (ROOT,), fitted)
        self.methods = initial_methods(d.n, self.settings, self.lib.linear)
        self.parameters = sensitivity_parameters
        self.lib_s = None
        if sensitivity_parameters:
            multisets = (ROOT,) + tuple((k,) for k in range(len(sensitivity_parameters)))
            self.lib_s = compiled_system(prob.model, sensitivity_parameters, multisets, fitted)
            self.methods_s = initial_methods(d.n, self.settings, self.lib_s.linear)
        self.n_solves = 0
        self._indices = None
        self._tiled = None

    def _rows(self, P: np.ndarray):
        c, n, _ = P.shape
        flat = P.reshape(c * n, -1)[:, :self.prob.n_params]
        good = np.all(np.isfinite(flat), axis=1)
        if not good.all():   # a row the library must not see: solved at the base values, then marked NaN
            flat = np.where(good[:, None], flat, np.tile(self.prob.base, (c * n, 1)))
        return c, flat, good

    def _index(self, c: int):
        """Row, time and output indices of the observations of c copies (kept for the last c)."""
        if self._indices is None or self._indices[0] != c:
            d = self.design
            self._indices = (c, np.arange(c * d.n)[:, None], np.tile(d.ti, (c, 1)), np.tile(d.which, (c, 1)))
        return self._indices[1:]

    def _covariates(self, c: int) -> np.ndarray:
        """The design's covariate rows repeated for c copies (kept for the last c)."""
        if self._tiled is None or self._tiled[0] != c:
            self._tiled = (c, np.tile(self.design.covariates, (c, 1)))
        return self._tiled[1]

    def _gather(self, out, status, good, c, block=0):
        d = self.design
        rows, ti, which = self._index(c)
        F = out[rows, ti, block * self.n_fit + which]
        ok = good & (status == 0)
        return np.where(ok[:, None], F, np.nan).reshape(c, d.n, -1), ok

    def predict(self, P: np.ndarray) -> np.ndarray:
        """Predictions (c, n, J) for parameter rows P (c, n, n_params); NaN where a subject was not solved."""
        c, flat, good = self._rows(P)
        base = np.hstack([flat, self._covariates(c)])
        self.n_solves += base.shape[0]
        with np.errstate(all="ignore"):
            out, status = self.lib.predict(base, self.design, self.settings, self.methods)
        return self._gather(out, status, good, c)[0]

    def predict_sensitivities(self, P: np.ndarray):
        """Predictions (c, n, J) and their derivatives (c, n, J, k) by the model parameters
        ``sensitivity_parameters`` (natural scale), from the forward sensitivity equations."""
        c, flat, good = self._rows(P)
        k = len(self.parameters)
        scales = derivative_scales(flat[:, list(self.parameters)])
        base = np.hstack([flat, self._covariates(c), scales])
        self.n_solves += base.shape[0]
        with np.errstate(all="ignore"):
            out, status = self.lib_s.predict(base, self.design, self.settings, self.methods_s)
        F, ok = self._gather(out, status, good, c)
        dF = np.empty(F.shape + (k,))
        sc = scales.reshape(c, self.design.n, k)
        for a in range(k):
            dF[..., a] = self._gather(out, status, good, c, block=1 + a)[0] / sc[:, :, None, a]
        return F, dF
