"""Generated native libraries of augmented systems: building, caching, calling (private).

One library per (model, differentiated parameters, derivative multisets, fitted outputs): the C source from
:mod:`pkpd.estimation._codegen`, compiled by the native engine's compiler (:func:`pkpd._native.compile_c`) into the
verified cache folder (:mod:`pkpd._cache`) under the hash of its source, and loaded from its verified bytes
(:func:`pkpd._native.load_library`), as the engine's own libraries are. Its entry points:

* :meth:`CompiledSystem.predict`: parameters and covariates per subject -> recorded outputs (values and their
  derivatives by every multiset) at each subject's output times, in one parallel batch;
* :meth:`CompiledSystem.inner`: the empirical Bayes estimates of every subject in parallel
  (:mod:`pkpd.estimation._inner_template`);
* :meth:`CompiledSystem.assemble`: from the outputs of ``predict``, each subject's objective terms and their
  derivatives in parallel (:mod:`pkpd.estimation._assembly_template`).

Without a C compiler there is no library: :func:`available` says so and the estimator uses its numpy path.
"""

from __future__ import annotations

import ctypes
import functools
import os
import weakref
from pathlib import Path

import numpy as np

from ..errors import PkpdError
from ..model import Model
from ._assembly_template import ASSEMBLY_TEMPLATE
from ._codegen import Layout, generate, library_stem
from ._derivative_system import DerivativeSystem, derivative_system
from ._inner_template import INNER_TEMPLATE
from ._linear_template import LINEAR_TEMPLATE

_P = ctypes.c_void_p
_I = ctypes.c_int64
_D = ctypes.c_double
_PREDICT_ARGS = [_I, _I, _P, _I, _P, _P, _P, _P, _P, _I, _P, _P, _P, _P, _P, _D, _D, _D, _I, _P, _P, _P, _I]
_INNER_ARGS = [_I, _I, _I, _P, _P, _P, _P, _P, _I, _P, _P, _P, _P, _P, _I, _P, _P, _P, _P, _P, _P, _P, _P, _P, _P,
               _P, _P, _P, _P, _I, _D, _D, _D, _I, _P, _I, _D, _P, _P, _P, _P, _I]
_ASSEMBLE_ARGS = [_I] * 8 + [_P] + [_I] * 3 + [_P] * 27 + [_I]
ASSEMBLE_MODES = {"conditional": 0, "foce": 1, "fo": 2}


def available() -> bool:
    """Whether the compiled inner problem can be built here (a C compiler, and the native engine not refused)."""
    from .._native import compiler

    return compiler() is not None and os.environ.get("PKPD_ENGINE", "").strip().lower() != "numba"


def merged_methods(per_copy: np.ndarray) -> np.ndarray:
    """One method per design subject from the methods its copies (rows of ``per_copy``) ended with: the exact
    linear solution (3) while every copy kept it, else the largest ODE code any copy ended with (2, Rodas4, once
    one needed it), a copy that left the exact solution counting as 0 ("auto")."""
    kept = (per_copy == 3).all(axis=0)
    return np.where(kept, 3, np.where(per_copy == 3, 0, per_copy).max(axis=0))


def _c(a: np.ndarray, dtype=float) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=dtype)


def _ptr(a: np.ndarray) -> int:
    return a.ctypes.data


class CompiledSystem:
    """A loaded library of an augmented system (private)."""

    def __init__(self, system: DerivativeSystem, path: Path, image: bytes, layout: Layout, *, linear: bool = False):
        from .._native import load_library

        self.system = system
        self.linear = linear  # offers method 3, the exact solution (pkpd.estimation._linear_template)
        self.layout = layout
        self.path = path
        self._lib = load_library(path, image)
        self._predict = self._lib.pkpd_predict
        self._predict.argtypes = _PREDICT_ARGS
        self._predict.restype = ctypes.c_int
        self._inner = self._lib.pkpd_inner
        self._inner.argtypes = _INNER_ARGS
        self._inner.restype = ctypes.c_int
        self._assemble = self._lib.pkpd_assemble
        self._assemble.argtypes = _ASSEMBLE_ARGS
        self._assemble.restype = ctypes.c_int

    @staticmethod
    def _check_design(design):
        _design_pointers(design)

    # -- predictions ------------------------------------------------------------------------------------------
    def predict(self, base: np.ndarray, design, settings, methods: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Recorded outputs (n, max_out, n_outputs) and solver status (n,) of every row of ``base`` (parameters,
        covariates and the scales of the derivatives, n = copies x design subjects; row ``s`` is subject
        ``s % design.n``). ``methods`` (one per
        design subject, see the template) is updated in place."""
        from .._native import threads

        call = PredictCall(self, _c(base), design, settings)
        reps = call.n // design.n if design.n else 0
        call.methods[:] = np.tile(methods, reps)
        if call.n:
            call.run(threads())
            methods[:] = merged_methods(call.methods.reshape(reps, design.n))
        self.last_counters = call.counters
        return call.outputs, call.status

    # -- the inner problem --------------------------------------------------------------------------------------
    def inner(self, theta: np.ndarray, eta: np.ndarray, W: np.ndarray, design, obs, errors, R0, interaction: bool,
              settings, methods: np.ndarray, *, max_iter: int = 100, tol: float = 1e-7):
        """Empirical Bayes estimates (n, q) from starting values ``eta`` (an updated copy), the objective at them
        (n,), status (n,) and Newton iterations (n,).

        ``theta``: typical parameters, covariates and derivative scales (n, n_params + n_cov + q); ``obs``: the
        design's CSR observation arrays; ``errors``: (kind, a, b) arrays per fitted output; ``R0``: residual
        variances per observation (FOCE) or None; ``methods``: solver method per subject (updated in place).
        """
        from .._native import threads

        n, q = eta.shape
        eta = np.array(eta, dtype=float, order="C")
        theta = _c(theta)
        W = _c(W)
        self._check_design(design)
        ev = design.events
        obj = np.empty(n)
        status = np.zeros(n, dtype=np.int64)
        n_iter = np.zeros(n, dtype=np.int64)
        counters = np.zeros((n, 4))
        R0 = _c(np.full(obs.u.size, np.nan) if R0 is None else R0)
        kind, a, b = (_c(errors[0], np.int64), _c(errors[1]), _c(errors[2]))
        eta_param = _c(design.eta_param, np.int64)
        eta_kind = _c(design.eta_kind, np.int64)
        lay = self.layout
        if (theta.shape != (n, lay.n_params + lay.n_covariates + lay.n_scales) or W.shape != (q, q)
                or tuple(self.system.parameters) != tuple(eta_param.tolist()) or design.n != n
                or obs is not design.obs or R0.shape != obs.u.shape or methods.shape != (n,)
                or _design_pointers(design)["n_fit"] > len(self.system.fitted)
                or methods.dtype != np.int64 or kind.shape != (len(self.system.fitted),)):
            raise PkpdError("internal: inconsistent arrays passed to the compiled inner problem")
        if n:
            p = _design_pointers(design)
            rc = self._inner(n, q, len(self.system.fitted), _ptr(theta), _ptr(eta_param), _ptr(eta_kind), _ptr(W),
                             _ptr(eta), ev.time.shape[1], *p["events"], design.tt.shape[1], *p["times"],
                             _ptr(design.t0), *p["obs"], _ptr(R0), _ptr(kind), _ptr(a), _ptr(b),
                             int(bool(interaction)), float(settings.rtol), float(settings.atol),
                             float(settings.max_step), int(settings.max_steps), _ptr(methods), int(max_iter),
                             float(tol), _ptr(obj), _ptr(status), _ptr(n_iter), _ptr(counters), threads())
            if rc != 0:
                raise MemoryError("the compiled inner problem could not allocate its work memory")
        return eta, obj, status, n_iter

    @functools.cache  # noqa: B019 (one table per library, which lives as long as the process)
    def _multiset_table(self) -> np.ndarray:
        """The multiset of each output block, positions in the parameter list padded with -1 (n_blocks, 3)."""
        ms = np.full((len(self.system.multisets), 3), -1, dtype=np.int64)
        for b, m in enumerate(self.system.multisets):
            ms[b, :len(m)] = m
        return ms

    # -- the per-subject assembly -------------------------------------------------------------------------------
    def assemble(self, mode: str, order: int, outputs: np.ndarray, scales: np.ndarray, theta: np.ndarray,
                 eta: np.ndarray, eta_pos: np.ndarray, eta_kind: np.ndarray, design, u: np.ndarray, errors,
                 n_sigma: int, *, omega: np.ndarray, W: np.ndarray | None = None,
                 outputs0: np.ndarray | None = None, scales0: np.ndarray | None = None,
                 information: bool = False) -> dict:
        """Each subject's objective terms and their derivatives in the coordinates ``phi = (eta, theta over pi,
        residual-error parameters)``, from this library's ``predict`` outputs (:mod:`pkpd.estimation.
        _assembly_template`).

        ``mode``: "conditional" (FOCE-I, Laplace: ``order`` 3), "foce" (residual variances from ``outputs0``, the
        predictions at eta = 0) or "fo"; ``scales``: the derivative scales ``outputs`` were computed with (n, k);
        ``theta``: typical values over pi (n, k); ``eta`` (n, q); ``eta_pos``: position in pi of each random
        effect; ``design``: the data's design (its CSR observations), ``u`` the observations' values; ``errors``:
        (kind, a, b, coordinate of a, coordinate of b) arrays per fitted output; ``omega`` and its inverse ``W``
        (q, q). Returns each subject's objective "ofv" (n,; without log|Omega| and the constant Jacobian terms),
        its gradients "grad" by phi (n, d) and "omega" by Omega (n, q, q), and for the conditional modes
        "hessian", the exact Hessian of the subject's O = ell + eta' W eta in eta (n, q, q; the identity where it
        is singular), and "ell" (n, S: the sum over observations with its first derivatives, second ones with a
        random-effect index first, third ones with two at order 3). FO with ``information``: also "information",
        each subject's expected Hessian of its OFV in ``psi = (phi, the q x q entries of Omega)`` (n, d + q q,
        d + q q; :func:`pkpd.estimation._fo_information.information_from_psi` carries it to the parameters).
        """
        from .._native import threads

        lay = self.layout
        nf = len(self.system.fitted)
        multisets = self.system.multisets
        n, k = theta.shape
        q = eta.shape[1]
        d = q + k + int(n_sigma)
        code = ASSEMBLE_MODES[mode]
        ms = self._multiset_table()
        outputs, scales, theta, eta = _c(outputs), _c(scales), _c(theta), _c(eta)
        eta_pos, eta_kind = _c(eta_pos, np.int64), _c(eta_kind, np.int64)
        kind, a, b, ca, cb = (_c(errors[0], np.int64), _c(errors[1]), _c(errors[2]), _c(errors[3], np.int64),
                              _c(errors[4], np.int64))
        u = _c(u)
        outputs0 = outputs if outputs0 is None else _c(outputs0)
        scales0 = scales if scales0 is None else _c(scales0)
        omega = _c(omega)
        W = _c(np.linalg.inv(omega) if W is None else W)
        obs = design.obs
        p = _design_pointers(design)
        shape = (n, outputs.shape[1] if outputs.ndim == 3 else -1, lay.n_outputs)
        max_order = max((len(m) for m in multisets), default=0)
        ok = (outputs.ndim == 3 and outputs.shape == shape and outputs0.shape == shape and scales.shape == (n, k)
              and scales0.shape == (n, k) and eta.shape == (n, q) and eta_pos.shape == (q,) and eta_kind.shape == (q,)
              and lay.n_outputs == len(multisets) * nf and len(self.system.parameters) == k and order in (2, 3)
              and max_order <= 3 and bool(multisets) and multisets[0] == () and int(ms.max(initial=-1)) < k
              and design.n == n and shape[1] == design.tt.shape[1] and p["n_fit"] <= nf and u.shape == obs.u.shape
              and kind.shape == a.shape == b.shape == ca.shape == cb.shape == (nf,) and omega.shape == (q, q)
              and W.shape == (q, q))
        if ok and n:
            ok = ((q == 0 or (int(eta_pos.min()) >= 0 and int(eta_pos.max()) < k))
                  and int(min(ca.min(), cb.min())) >= -1 and int(max(ca.max(), cb.max())) < d)
        if not ok:
            raise PkpdError("internal: inconsistent arrays passed to the compiled assembly")
        S = 1 + d + q * d + (q * q * d if order >= 3 else 0)
        fo = code == 2
        ell = np.zeros((n, S)) if not fo else np.zeros(1)
        hessian = np.zeros((n, q, q)) if not fo else np.zeros(1)
        ofv, grad, gomega = np.zeros(n), np.zeros((n, d)), np.zeros((n, q, q))
        want_info = fo and information
        info = np.zeros((n, d + q * q, d + q * q)) if want_info else np.zeros(1)
        if n:
            rc = self._assemble(n, code, order, q, k, d, nf, ms.shape[0], _ptr(ms), shape[1], shape[2], p["max_obs"],
                                _ptr(outputs), _ptr(outputs0), _ptr(scales), _ptr(scales0), _ptr(theta), _ptr(eta),
                                _ptr(eta_pos), _ptr(eta_kind), *p["obs"][:4], _ptr(u), p["obs"][5], _ptr(kind),
                                _ptr(ca), _ptr(cb), _ptr(a),
                                _ptr(b), _ptr(omega), _ptr(W), _ptr(ell), _ptr(hessian), _ptr(ofv), _ptr(grad),
                                _ptr(gomega), _ptr(info) if want_info else None, threads())
            if rc != 0:
                raise MemoryError("the compiled assembly could not allocate its work memory")
        out = {"ofv": ofv, "grad": grad, "omega": gomega}
        if want_info:
            out["information"] = info
        if not fo:
            out.update(ell=ell, hessian=hessian)
        return out


_DESIGN_POINTERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _design_pointers(design) -> dict:
    """The addresses of a design's arrays for the compiled calls, checked (shapes, ranges, dtypes, C order) once
    per design: a design is frozen, and an estimator passes the same one thousands of times."""
    got = _DESIGN_POINTERS.get(design)
    if got is not None:
        return got
    ev, obs = design.events, design.obs
    n = design.n
    ok = (ev.time.shape == ev.kind.shape == ev.index.shape == ev.value.shape and ev.time.shape[0] == n
          and ev.count.shape == (n,) and design.tt.shape == design.pre.shape and design.tt.shape[0] == n
          and design.n_out.shape == (n,) and design.t0.shape == (n,) and obs.start.shape == (n + 1,)
          and obs.ti.shape == obs.out.shape == obs.cens.shape == obs.u.shape == obs.lim.shape)
    ints = (ev.kind, ev.index, ev.count, design.pre, design.n_out, obs.start, obs.ti, obs.out, obs.cens)
    floats = (ev.time, ev.value, design.tt, design.t0, obs.u, obs.lim)
    ok = ok and all(a.dtype == np.int64 and a.flags.c_contiguous for a in ints)
    ok = ok and all(a.dtype == np.float64 and a.flags.c_contiguous for a in floats)
    if ok and n:
        ok = (int(design.n_out.max()) <= design.tt.shape[1] and int(design.n_out.min()) >= 0
              and int(ev.count.max()) <= ev.time.shape[1] and int(ev.count.min()) >= 0
              and int(obs.start[0]) == 0 and bool(np.all(np.diff(obs.start) >= 0))
              and int(obs.start[-1]) == obs.ti.size
              and (obs.ti.size == 0 or (int(obs.ti.min()) >= 0 and int(obs.ti.max()) < design.tt.shape[1]
                                        and int(obs.out.min()) >= 0)))
    if not ok:
        raise PkpdError("internal: inconsistent design passed to the compiled estimation library")
    got = {"events": tuple(_ptr(a) for a in (ev.time, ev.kind, ev.index, ev.value, ev.count)),
           "times": tuple(_ptr(a) for a in (design.tt, design.pre, design.n_out)),
           "obs": tuple(_ptr(a) for a in (obs.start, obs.ti, obs.out, obs.cens, obs.u, obs.lim)),
           "n_fit": int(obs.out.max()) + 1 if obs.out.size else 0,      # at least this many fitted outputs
           "max_obs": int(np.diff(obs.start).max()) if n else 0}
    _DESIGN_POINTERS[design] = got
    return got


class PredictCall:
    """The arguments of one call of the library's batch solve and the arrays it writes, bound to the parameter rows
    ``rows`` (n, parameters + covariates + scales; C-contiguous float64, read through its address) on ``design``
    (private). :meth:`CompiledSystem.predict` builds one per call; a caller that solves the same number of rows many
    times (pkpd.sample's host, once per leapfrog step) keeps one and rewrites ``rows`` and ``methods`` in place."""

    def __init__(self, system: CompiledSystem, rows: np.ndarray, design, settings):
        lay = system.layout
        n = rows.shape[0]
        system._check_design(design)
        if rows.shape[1] != lay.n_params + lay.n_covariates + lay.n_scales or n % max(design.n, 1):
            raise PkpdError("internal: parameter rows of the wrong shape for the compiled estimation library")
        if not (rows.dtype == np.float64 and rows.flags.c_contiguous):
            raise PkpdError("internal: parameter rows must be a C-contiguous float64 array")
        reps = n // design.n if design.n else 0
        self.n, self.rows = n, rows
        self.methods = np.zeros(n, dtype=np.int64)      # per row, as the template reads and writes it
        self.outputs = np.empty((n, design.tt.shape[1], lay.n_outputs))
        self.status = np.zeros(n, dtype=np.int64)
        self.counters = np.zeros((n, 4))
        self._t0 = _c(np.tile(design.t0, reps))
        self._function = system._predict
        self._args = ()
        if n:
            p = _design_pointers(design)
            ev = design.events
            self._args = (n, design.n, _ptr(rows), ev.time.shape[1], *p["events"], design.tt.shape[1], *p["times"],
                          _ptr(self._t0), _ptr(self.methods), float(settings.rtol), float(settings.atol),
                          float(settings.max_step), int(settings.max_steps), _ptr(self.outputs), _ptr(self.status),
                          _ptr(self.counters))

    def run(self, threads: int) -> None:
        """Solve every row on ``threads`` engine threads into ``outputs``, ``status`` and ``counters``."""
        self.status[:] = 0
        if self._function(*self._args, int(threads)) != 0:
            raise MemoryError("the compiled estimation library could not allocate its work memory")


@functools.lru_cache(maxsize=32)
def compiled_system(model: Model, parameters: tuple[int, ...], multisets: tuple[tuple[int, ...], ...],
                    fitted: tuple[int, ...]) -> CompiledSystem:
    """The library of the augmented system (built once, then loaded from the cache folder)."""
    from .._cache import cache_root
    from .._native import compile_c

    system = derivative_system(model, parameters, multisets, fitted)
    linear = is_linear(system)
    template = (LINEAR_TEMPLATE if linear else "") + INNER_TEMPLATE + ASSEMBLY_TEMPLATE
    source, layout = generate(system, template, linear=linear)
    path, image = compile_c(source, cache_root(), library_stem(source), "the estimation library of a model")
    return CompiledSystem(system, path, image, layout, linear=linear)


def is_linear(system: DerivativeSystem) -> bool:
    """Whether the augmented system is linear with coefficients constant between events: so is the model
    (:func:`pkpd.linear_system.linearity`, which also refuses a right-hand side that reads ``t``), since each
    derivative's equation is the model's matrix times that derivative plus lower-order derivatives times
    coefficients of the parameters only."""
    from ..linear_system import linearity

    return linearity(system.model).is_linear
