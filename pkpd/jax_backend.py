"""Optional JAX backend of the simulator: ``pkpd.simulate(..., backend="jax")`` (extra ``pkpd[gpu]``).

The model's validated expression trees (the same ones :mod:`pkpd.compile` turns into C or numba code) are evaluated by a
small tree walker over :mod:`jax.numpy` while JAX traces the integrator, so no source is generated and nothing from
a model file is ever executed. The integrator is written in JAX: ``lax.while_loop`` over the batch (each loop runs
while any subject has work left; every subject keeps its own time, step size and events), with the loop-free
pieces (a step, an event, an output row) ``jax.vmap``-ped over the subjects, and ``jax.jit`` once per model, method
and array shapes (cached in the process, and by XLA on disk under ``$PKPD_CACHE_DIR/jax`` or ``~/.cache/pkpd/jax``
unless a JAX compilation cache is already configured). It runs in float64 on whatever device JAX uses by default:
a GPU when a CUDA-enabled jax is installed (``pip install "jax[cuda12]"``), the CPU otherwise. Importing this
module turns on ``jax_enable_x64`` for the process.

It follows the CPU engines (:mod:`pkpd._integrator`, :mod:`pkpd._native_template`) step for step in what matters
for the results:

* the same event table and event semantics (kinds 0-5: bolus, infusion rate change, reset, covariate change with
  the static derived quantities recomputed, state set, output record), applied in table order at their time, with
  integration restarted after them (fresh starting step, derivative re-evaluated);
* the same output semantics: outputs at a dose time are after the dose, except NONMEM rows flagged to come first;
  outputs inside a step come from the method's dense output;
* Tsit5 with the same starting-step rule, PI step control (DOPRI5's, beta = 0.04) and free 4th-order interpolant;
  Rodas4 (the same coefficients) with the Jacobian from ``jax.jacfwd`` and the time derivative from ``jax.jvp``,
  steps landing on output times and cubic Hermite dense output;
* the same failure codes (1 max steps, 2 step underflow, 3 non-finite values, 4 singular iteration matrix), so
  :func:`pkpd.simulate` raises the same :class:`~pkpd.errors.SimulationError`.

``method="auto"`` differs in how stiffness is detected and what happens then. Branches of a vmapped loop are both
computed for every subject, so switching one subject's method inside the loop would make every step pay for
Rodas4. Instead every subject first runs Tsit5 with a stiffness test that costs nothing: Hairer's test of DOPRI5,
``h * |k7 - k6| / |y_new - y6|`` (the last two stages sit at the same time, so this ratio estimates the dominant
eigenvalue), above 2.8 on 15 accepted steps in a row while the next output is more than 5 steps away (the numba
engine uses a power iteration on the Jacobian every 5 steps). The subjects found stiff are then re-run from the
start with Rodas4 in a second batch. Their step count adds both runs.

Use it through :func:`pkpd.simulate` (an example, not run as a doctest since jax is optional)::

    import numpy as np, pkpd
    model = pkpd.load_model("msc_salvadori")
    regimen = pkpd.Regimen.single(pkpd.Dose(2e6, "cell/kg"))
    eta = np.random.default_rng(1).normal(0.0, 0.3, 10_000)
    sim = pkpd.simulate(model, regimen, np.arange(0, 337.0), params={"k_c": 0.0289 * np.exp(eta)},
                        covariates={"WT": 70.0}, backend="jax")   # hours; sim.outputs["IL10"]: (10000, 337) pg/mL

:func:`run_batch_jax` is the private engine behind it (same arguments and result as ``pkpd.simulation.run_batch``).
The first call for a model, method and batch size compiles (seconds); later calls of the same sizes reuse the
compiled program.

Not supported here: the steady-state (SS) pre-runs of :func:`pkpd.simulate_nonmem` still use the CPU engine (they
are short); everything after them runs on JAX.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl
import numpy as np
from jax import lax

from . import expressions as ex
from ._cache import subdir
from ._tableaus import (
    RODAS_A,
    RODAS_ALPHA,
    RODAS_C,
    RODAS_GAMMA,
    RODAS_GAMMAS,
    RODAS_M,
    TSIT5_A,
    TSIT5_C,
    TSIT5_E,
    tsit5_dense_weights,
)
from .compile import CompiledModel, _hoist
from .settings import SolverSettings

jax.config.update("jax_enable_x64", True)
if jax.config.jax_compilation_cache_dir is None:
    # XLA's compiled programs are cached next to the compiled models (unless the user set up a cache already),
    # so a later process loads a model's program instead of compiling it again (seconds -> ~0.1 s)
    # (compiled programs run when loaded: they live only in a verified folder of pkpd's cache, pkpd._cache)
    jax.config.update("jax_compilation_cache_dir", str(subdir("jax")))

_EPS = 2.220446049250313e-16
_STIFF_STEPS = 15  # consecutive accepted Tsit5 steps held at the stability boundary before a subject counts as stiff
_STIFF_RATIO = 2.8  # h * lambda above which a step is held by stability (Tsit5's boundary is about 3.5)

# Tsit5 (Tsitouras 2011) and Rodas4 (Hairer & Wanner): the tables every engine uses
_T_C, _T_A, _T_E = TSIT5_C, TSIT5_A, TSIT5_E
_R_GAMMA, _R_ALPHA, _R_GAMMAS, _R_A, _R_C, _R_M = RODAS_GAMMA, RODAS_ALPHA, RODAS_GAMMAS, RODAS_A, RODAS_C, RODAS_M


# ------------------------------------------------------------------------------------------ expression trees
_CMP = {"<": jnp.less, "<=": jnp.less_equal, ">": jnp.greater, ">=": jnp.greater_equal, "==": jnp.equal,
        "!=": jnp.not_equal}
_UNARY = {"exp": jnp.exp, "log": jnp.log, "log10": jnp.log10, "sqrt": jnp.sqrt, "abs": jnp.abs}


def _eval(e: ex.Expr, env):
    """Value of an expression tree as a JAX expression (traced); ``env[name]`` gives each name's value."""
    if isinstance(e, ex.Num):
        return e.value
    if isinstance(e, ex.Name):
        return env[e.id]
    if isinstance(e, ex.BinOp):
        a = _eval(e.left, env)
        if e.op == "**" and isinstance(e.right, ex.Num) and math.isfinite(e.right.value) \
                and e.right.value == int(e.right.value) and abs(e.right.value) <= 16:
            # integer powers by repeated multiplication (as exact as pow() and much cheaper)
            return lax.integer_pow(jnp.asarray(a, dtype=jnp.float64), int(e.right.value))
        b = _eval(e.right, env)
        if e.op == "+":
            return a + b
        if e.op == "-":
            return a - b
        if e.op == "*":
            return a * b
        if e.op == "/":
            return a / b
        return jnp.power(a, b)
    if isinstance(e, ex.Neg):
        return -_eval(e.operand, env)
    if isinstance(e, ex.Compare):
        return _CMP[e.op](_eval(e.left, env), _eval(e.right, env))
    args = [_eval(a, env) for a in e.args]
    if e.func in _UNARY:
        return _UNARY[e.func](args[0])
    if e.func == "min":
        return jnp.minimum(args[0], args[1])
    if e.func == "max":
        return jnp.maximum(args[0], args[1])
    if e.func in ("hill", "hillc"):
        # negative x (solver noise around zero) counts as 0; hillc's second argument is x50 ** n, precomputed
        xn = jnp.power(jnp.maximum(args[0], 0.0), args[2])
        x50n = jnp.power(args[1], args[2]) if e.func == "hill" else args[1]
        return xn / (x50n + xn)
    if e.func == "ifelse":
        return jnp.where(args[0], args[1], args[2])
    raise ex.ExpressionError(f"function {e.func!r} is not supported by the JAX backend")  # pragma: no cover


class _Env(dict):
    """Names -> traced values for one evaluation point; looked up (and cached) on first use."""

    def __init__(self, t, y, q, s_index: dict[str, int], q_index: dict[str, int], derived: dict[str, ex.Expr]):
        super().__init__()
        self._t, self._y, self._q = t, y, q
        self._s_index, self._q_index, self._derived = s_index, q_index, derived

    def __missing__(self, key: str):
        if key == "t":
            value = self._t
        elif key in self._s_index:
            value = self._y[self._s_index[key]]
        elif key in self._q_index:
            value = self._q[self._q_index[key]]
        elif key in self._derived:
            value = _eval(self._derived[key], self)
        else:  # pragma: no cover - the model's validation guarantees every name is known
            raise ex.ExpressionError(f"no value for name {key!r}")
        self[key] = value
        return value


@dataclass(frozen=True)
class _ModelFunctions:
    """The model as traced functions of one subject (private)."""

    rhs: Callable  # (t, y, q) -> dy/dt, shape (n_states,)
    outputs: Callable  # (t, y, q) -> outputs, shape (n_outputs,)
    static: Callable  # q -> q with the static derived quantities and hoisted constants recomputed
    nonautonomous: bool  # whether dy/dt depends on t explicitly


def _model_functions(cm: CompiledModel) -> _ModelFunctions:
    m = cm.model
    ck = m._checked
    base_q = m.parameter_names + m.covariate_names + tuple(n for n, _ in ck.static_derived)
    q_only = set(base_q)
    # The per-subject constants the CPU engines hoist out of the right-hand side (x50 ** n of a Hill term...)
    # are already columns of q: substitute them the same way, so the traced right-hand side skips those pow()s.
    table = {tree: name for name, tree in cm.hoisted}
    dyn = _hoist([t for _, t in ck.dynamic_derived], q_only, table)
    ddt = _hoist(list(ck.ddt), q_only, table)
    outs = _hoist(list(ck.outputs), q_only, table)
    if len(table) != len(cm.hoisted) or set(table.values()) - set(cm.q_names):  # pragma: no cover - defensive
        dyn, ddt, outs = [t for _, t in ck.dynamic_derived], list(ck.ddt), list(ck.outputs)
    derived = {name: tree for (name, _), tree in zip(ck.dynamic_derived, dyn)}
    s_index = {s: i for i, s in enumerate(m.state_names)}
    q_index = {n: i for i, n in enumerate(cm.q_names)}
    n_base = len(m.parameters) + len(m.covariates)

    inline: dict[str, ex.Expr] = {}
    for name, tree in ck.dynamic_derived:
        inline[name] = ex.substitute(tree, inline)
    nonautonomous = any("t" in ex.names(ex.substitute(tree, inline)) for tree in ck.ddt)

    def rhs(t, y, q):
        env = _Env(t, y, q, s_index, q_index, derived)
        return jnp.stack([jnp.broadcast_to(jnp.asarray(_eval(tree, env), dtype=jnp.float64), ()) for tree in ddt])

    def outputs(t, y, q):
        env = _Env(t, y, q, s_index, q_index, derived)
        return jnp.stack([jnp.broadcast_to(jnp.asarray(_eval(tree, env), dtype=jnp.float64), ()) for tree in outs])

    def static(q):
        env = _Env(0.0, None, q, {}, {n: i for i, n in enumerate(base_q[:n_base])}, {})
        values = []
        for name, tree in ck.static_derived:
            env[name] = _eval(tree, env)
            values.append(env[name])
        values += [_eval(tree, env) for _, tree in cm.hoisted]
        if not values:
            return q
        new = jnp.stack([jnp.broadcast_to(jnp.asarray(v, dtype=jnp.float64), ()) for v in values])
        return jnp.concatenate([q[:n_base], new])

    return _ModelFunctions(rhs, outputs, static, nonautonomous)


# ------------------------------------------------------------------------------------------------ integrator
# Every loop runs over the whole batch (its condition: "any subject still has work"), and only loop-free pieces
# are vmapped over the subjects. A while-loop inside a vmapped function would be batched by JAX into a loop that
# selects between the old and the new value of every carried array on every iteration, including the
# (n_subjects, n_times, n_states) result: that costs O(n_times) per step and subject. Written this way, recording
# an output row is a scatter of one row per subject.


def _wnorm(e, y0, y1, rtol, atol):
    sc = atol + rtol * jnp.maximum(jnp.abs(y0), jnp.abs(y1))
    return jnp.sqrt(jnp.mean((e / sc) ** 2))


def _tsit5_interpolant(th):
    """Weights of Tsitouras' free 4th-order dense output at the fraction th of the step."""
    return tsit5_dense_weights(th)


def _make_batch_solver(fns: _ModelFunctions, method: int, n_states: int, n_outputs: int, keep_states: bool,
                       keep_outputs: bool, q_events: bool, shared_tt: bool):
    """The solver of a batch. method: 0 Tsit5 with the stiffness test, 1 Tsit5, 2 Rodas4.

    The loops record the state at every output time (and q, when events change it); the outputs are computed from
    those rows at the end, so the output expressions are traced once.
    """
    ns = n_states
    wo = keep_outputs and n_outputs > 0
    rec_states = keep_states or wo
    rec_q = wo and q_events
    i32 = jnp.int32
    f64 = jnp.float64

    def f(t, y, q, u):
        return fns.rhs(t, y, q) + u

    def solve(Q, Y0, EV_T, EV_K, EV_I, EV_V, N_EV, TT, PRE, N_OUT, T0, rtol, atol, hmax, max_steps):
        n_times = TT.shape[-1]
        width = EV_T.shape[1]
        nq = Q.shape[1]
        tx = (TT, PRE, N_OUT)

        def vm(fn, *args):
            """fn(tx, *args) for every subject: tx = (its output times, pre flags, n_out), args split along axis 0."""
            return jax.vmap(fn, in_axes=((None if shared_tt else 0),) + (0,) * len(args))(tx, *args)

        def at(a, i, size):
            return a[jnp.clip(i, 0, size - 1)]

        def write(S, Qr, io, y, q, do):
            # one subject: row io gets the state y (and q where events change it) when do
            i = jnp.clip(io, 0, n_times - 1)
            if rec_states:
                S = S.at[i].set(jnp.where(do, y, S[i]))
            if rec_q:
                Qr = Qr.at[i].set(jnp.where(do, q, Qr[i]))
            return S, Qr, io + do.astype(i32)

        def loop(lane_cond, body, carry):
            """while any subject's lane_cond(carry) holds: carry = body(do, carry), do being the per-subject flags."""
            return lax.while_loop(lambda c: jnp.any(lane_cond(c)), lambda c: body(lane_cond(c), c), carry)

        # ------------------------------------------------------------------------------------ output rows
        def record_rows(t, y, q, io, S, Qr, want_pre, active):
            """Every output time <= t (flagged "before events" when want_pre == 1) gets the state y."""

            def lane(x, io, t, active):
                tt, pre, n_out = x
                ok = active & (io < n_out) & (at(tt, io, n_times) <= t)
                if want_pre >= 0:
                    ok = ok & (at(pre, io, n_times) == want_pre)
                return ok

            def body(do, c):
                io, S, Qr = c
                S, Qr, io = vm(lambda x, S, Qr, io, y, q, do: write(S, Qr, io, y, q, do), S, Qr, io, y, q, do)
                return io, S, Qr

            return loop(lambda c: vm(lane, c[0], t, active), body, (io, S, Qr))

        # ------------------------------------------------------------------------------------------ events
        def apply_events(t, y, u, q, io, ie, S, Qr, active):
            def lane_cond(x, ie, t, active, n_ev, ev_t):
                return active & (ie < n_ev) & (at(ev_t, ie, width) <= t)

            def lane_event(x, do, ie, y, u, q, io, S, Qr, t, y_init, ev_t, ev_k, ev_i, ev_v):
                k = at(ev_k, ie, width)
                j = at(ev_i, ie, width)
                v = at(ev_v, ie, width)
                js = jnp.clip(j, 0, ns - 1)
                uj = u[js] + v
                u1 = u.at[js].set(jnp.where(jnp.abs(uj) < 1e-12 * jnp.abs(v), 0.0, uj))  # rounding when one stops
                q3 = fns.static(q.at[jnp.clip(j, 0, nq - 1)].set(v))
                # kind 5: the next output row, here (between the events at this time, in NONMEM record order)
                to = at(x[0], io, n_times)
                S, Qr, io = write(S, Qr, io, y, q, do & (k == 5) & (io < n_times) & (to <= t))
                y_new = jnp.where(k == 0, y.at[js].add(v),
                                  jnp.where(k == 2, y_init, jnp.where(k == 4, y.at[js].set(v), y)))
                u_new = jnp.where(k == 1, u1, jnp.where(k == 2, 0.0, u))
                q_new = jnp.where(k == 3, q3, q)
                return (ie + do.astype(i32), jnp.where(do, y_new, y), jnp.where(do, u_new, u),
                        jnp.where(do, q_new, q), io, S, Qr)

            def body(do, c):
                ie, y, u, q, io, S, Qr = c
                return vm(lane_event, do, ie, y, u, q, io, S, Qr, t, Y0, EV_T, EV_K, EV_I, EV_V)

            return loop(lambda c: vm(lane_cond, c[0], t, active, N_EV, EV_T), body, (ie, y, u, q, io, S, Qr))

        # ------------------------------------------------------------------------------------ segment start
        def lane_start(x, t, tend, y, q, u, run, order):
            # Hairer, Norsett & Wanner (1993) II.4, as the CPU engines; then the same lower/upper clamps
            k1 = f(t, y, q, u)
            sc = atol + rtol * jnp.abs(y)
            d0 = jnp.sqrt(jnp.mean((y / sc) ** 2))
            d1 = jnp.sqrt(jnp.mean((k1 / sc) ** 2))
            h0 = jnp.where((d0 < 1e-5) | (d1 < 1e-5), 1e-6, 0.01 * d0 / jnp.where(d1 > 0, d1, 1.0))
            h0 = jnp.minimum(h0, tend - t)
            f1 = f(t + h0, y + h0 * k1, q, u)
            d2 = jnp.sqrt(jnp.mean(((f1 - k1) / sc) ** 2)) / jnp.where(h0 > 0, h0, 1.0)
            dm = jnp.maximum(d1, d2)
            h1 = jnp.where(dm <= 1e-15, jnp.maximum(1e-6, h0 * 1e-3),
                           (0.01 / jnp.where(dm > 0, dm, 1.0)) ** (1.0 / (order + 1.0)))
            h = jnp.minimum(jnp.minimum(100.0 * h0, h1), tend - t)
            hmin = 16.0 * _EPS * jnp.maximum(jnp.maximum(jnp.abs(t), jnp.abs(tend)), 1.0)
            h = jnp.minimum(jnp.minimum(jnp.maximum(h, 10.0 * hmin), hmax), tend - t)
            status = jnp.where(run & ~jnp.all(jnp.isfinite(k1)), 3, 0).astype(i32)
            return k1, h, hmin, status

        def lane_stepping(x, t, tend, status, run):
            return run & (status == 0) & (t < tend)

        def dense_rows(interp, accept, t, h, tn, last, y, q, io, S, Qr, *data):
            """Rows at the output times inside accepted steps, from the method's interpolant."""

            def lane(x, io, accept, tn, last):
                tt, _, n_out = x
                to = at(tt, io, n_times)
                return accept & (io < n_out) & ((to < tn) | (last & (to <= tn)))

            def lane_write(x, do, io, S, Qr, t, h, y, q, *data):
                th = (at(x[0], io, n_times) - t) / h
                return write(S, Qr, io, interp(th, h, y, *data), q, do)

            def body(do, c):
                io, S, Qr = c
                S, Qr, io = vm(lane_write, do, io, S, Qr, t, h, y, q, *data)
                return io, S, Qr

            return loop(lambda c: vm(lane, c[0], accept, tn, last), body, (io, S, Qr))

        # ------------------------------------------------------------------------------------ Tsit5 segment
        def tsit5_interp(th, h, y, *ks):
            return y + h * sum(b * k for b, k in zip(_tsit5_interpolant(th), ks))

        def lane_tsit5_attempt(x, act, t, tend, y, k1, h, hmin, not_finite, nstep, nfev, status, q, u):
            # a step shrunk below the smallest while its stages were not finite: NaN or inf derivatives beyond t
            st = jnp.where(nstep >= max_steps, 1, jnp.where(h < hmin, jnp.where(not_finite > 0, 3, 2), 0)).astype(i32)
            go = act & (st == 0)
            hit_end = t + 1.01 * h >= tend
            h = jnp.where(act & hit_end, tend - t, h)
            ks = [k1]
            ys = y
            for s in range(5):
                ys = y + h * sum(a * k for a, k in zip(_T_A[s], ks))
                ks.append(f(t + _T_C[s] * h if s < 4 else t + h, ys, q, u))
            ynew = y + h * sum(a * k for a, k in zip(_T_A[5], ks))
            k7 = f(t + h, ynew, q, u)
            ks.append(k7)
            err = h * sum(c_ * k for c_, k in zip(_T_E, ks))
            e = _wnorm(err, y, ynew, rtol, atol)
            finite = jnp.isfinite(e)
            # a NaN/inf anywhere in the stages makes the norm non-finite: reject (the step shrinks) and remember it
            not_finite = jnp.where(go, jnp.where(finite, 0, 1), not_finite).astype(i32)
            e = jnp.where(finite, e, 1e10)
            status = jnp.where(act, st, status)
            accept = go & (e <= 1.0) & (st == 0)
            tn = jnp.where(hit_end, tend, t + h)
            # Hairer's stiffness test (DOPRI5): k6 and k7 are both at t + h, so |k7 - k6| / |y_new - y6| estimates
            # the dominant eigenvalue, at no cost
            num = jnp.sum((k7 - ks[5]) ** 2)
            den = jnp.sum((ynew - ys) ** 2)
            hl = jnp.where(den > 0, h * jnp.sqrt(num / jnp.where(den > 0, den, 1.0)), 0.0)
            return (h, go, accept, status, e, not_finite, nstep + go.astype(i32), nfev + 6 * go.astype(i32), tn, ynew,
                    hl, tuple(ks))

        def lane_tsit5_finish(x, act, go, accept, status, e, e_prev, n_stiff, h, hl, t, tn, tend, y, ynew, k1, k7,
                              io, tfail):
            tt, _, n_out = x
            if method == 0:
                gap = jnp.where(io < n_out, at(tt, io, n_times), tend) - tn
                held = (hl > _STIFF_RATIO) & (gap > 5.0 * h)
                n_stiff = jnp.where(accept, jnp.where(held, n_stiff + 1, 0), n_stiff).astype(i32)
                status = jnp.where(accept & (n_stiff >= _STIFF_STEPS), 5, status).astype(i32)
            # PI step-size control with Lund stabilisation (as DOPRI5: alpha = 0.2 - 0.75 beta, beta = 0.04)
            ec = jnp.maximum(e, 1e-10)
            fac = 0.9 * ec ** (-0.17) * e_prev ** 0.04
            h_acc = jnp.minimum(h * jnp.minimum(10.0, jnp.maximum(0.2, fac)), hmax)
            h_rej = h * jnp.maximum(0.2, 0.9 * e ** (-0.2))
            return (jnp.where(accept, tn, t), jnp.where(accept, ynew, y), jnp.where(accept, k7, k1),
                    jnp.where(accept, h_acc, jnp.where(go, h_rej, h)),
                    jnp.where(accept, jnp.maximum(e, 1e-4), e_prev), n_stiff, status,
                    jnp.where(act & (status != 0), t, tfail))

        def tsit5_segment(t, tend, last, y, q, u, io, S, Qr, nstep, nfev, run):
            k1, h, hmin, status = vm(lambda x, *a: lane_start(x, *a, 4.0), t, tend, y, q, u, run)
            n = t.shape[0]
            zeros = jnp.zeros(n, dtype=i32)
            carry = (t, y, k1, h, jnp.full(n, 1e-4), zeros, zeros, io, S, Qr, nstep, nfev + 2, status, t)

            def body(act, c):
                t, y, k1, h, e_prev, not_finite, n_stiff, io, S, Qr, nstep, nfev, status, tfail = c
                h, go, accept, status, e, not_finite, nstep, nfev, tn, ynew, hl, ks = vm(
                    lane_tsit5_attempt, act, t, tend, y, k1, h, hmin, not_finite, nstep, nfev, status, q, u)
                io, S, Qr = dense_rows(tsit5_interp, accept, t, h, tn, last, y, q, io, S, Qr, *ks)
                t, y, k1, h, e_prev, n_stiff, status, tfail = vm(
                    lane_tsit5_finish, act, go, accept, status, e, e_prev, n_stiff, h, hl, t, tn, tend, y, ynew, k1,
                    ks[6], io, tfail)
                return t, y, k1, h, e_prev, not_finite, n_stiff, io, S, Qr, nstep, nfev, status, tfail

            c = loop(lambda c: vm(lane_stepping, c[0], tend, c[12], run), body, carry)
            return c[12], c[1], c[7], c[8], c[9], c[10], c[11], c[13]

        # ----------------------------------------------------------------------------------- Rodas4 segment
        eye = jnp.eye(ns)

        def hermite(th, h, y, ynew, k1, k2):
            return ((1.0 - th) * y + th * ynew + th * (th - 1.0) * (
                (1.0 - 2.0 * th) * (ynew - y) + (th - 1.0) * h * k1 + th * h * k2))

        def lane_rodas4_attempt(x, act, t, tend, last, y, k1, h, hmin, io, not_finite, nstep, nfev, status, q, u):
            tt, _, n_out = x
            # shrunk below the smallest step while the new state was not finite: NaN or inf beyond t
            st = jnp.where(nstep >= max_steps, 1, jnp.where(h < hmin, jnp.where(not_finite > 0, 3, 2), 0)).astype(i32)
            go = act & (st == 0)
            hit_end = t + 1.01 * h >= tend
            h = jnp.where(act & hit_end, tend - t, h)
            h_proposed = h
            # land exactly on the next output time: the error control covers step ends, a cubic interpolant between
            # long implicit steps would not meet the tolerance; not on one closer to the segment's end than the
            # smallest step (0.3 before a dose at 0.1 + 0.2): the rest could not be stepped, the step to the end
            # interpolates it
            to = at(tt, io, n_times)
            hit_out = act & (io < n_out) & (to > t) & (to < t + h) & ((to < tend) | last) & (tend - to >= hmin)
            h = jnp.where(hit_out, to - t, h)
            hit_end = hit_end & ~hit_out
            J = jax.jacfwd(lambda yy: f(t, yy, q, u))(y)
            lu, piv = jsl.lu_factor(eye / (h * _R_GAMMA) - J)
            singular = jnp.any(jnp.diagonal(lu) == 0.0)
            if fns.nonautonomous:
                dfdt = jax.jvp(lambda tv: f(tv, y, q, u), (t,), (jnp.ones_like(t),))[1]
            Ks = []
            for s in range(6):
                if s == 0:
                    r = k1
                else:
                    r = f(t + _R_ALPHA[s] * h, y + sum(a * k for a, k in zip(_R_A[s], Ks)), q, u)
                    r = r + sum((c_ / h) * k for c_, k in zip(_R_C[s], Ks))
                if fns.nonautonomous:
                    r = r + h * _R_GAMMAS[s] * dfdt
                Ks.append(jsl.lu_solve((lu, piv), r))
            ynew = y + sum(m_ * k for m_, k in zip(_R_M, Ks))
            ok = jnp.all(jnp.isfinite(ynew))
            not_finite = jnp.where(go, ~singular & ~ok, not_finite > 0).astype(i32)
            e = jnp.where(ok, _wnorm(Ks[5], y, jnp.where(ok, ynew, y), rtol, atol), 1e10)
            nstep = nstep + go.astype(i32)
            st = jnp.where(go & singular & (nstep >= max_steps), 4, st).astype(i32)
            status = jnp.where(act, st, status)
            accept = go & ~singular & (e <= 1.0) & (st == 0)
            tn = jnp.where(hit_end, tend, jnp.where(hit_out, to, t + h))
            k2 = f(tn, ynew, q, u)
            fac = jnp.where(e > 0.0, 0.9 * jnp.where(e > 0.0, e, 1.0) ** (-0.25), 6.0)
            h_acc = jnp.minimum(h * jnp.minimum(6.0, jnp.maximum(0.2, fac)), hmax)
            h_acc = jnp.where(hit_out, jnp.maximum(h_acc, jnp.minimum(h_proposed, hmax)), h_acc)
            h_next = jnp.where(accept, h_acc, jnp.where(go, jnp.where(singular, 0.5 * h, h * jnp.maximum(0.2, fac)),
                                                        h))
            return h, h_next, accept, status, not_finite, nstep, nfev + (7 + ns) * go.astype(i32), tn, ynew, k2

        def rodas4_segment(t, tend, last, y, q, u, io, S, Qr, nstep, nfev, run):
            k1, h, hmin, status = vm(lambda x, *a: lane_start(x, *a, 3.0), t, tend, y, q, u, run)
            carry = (t, y, k1, h, io, jnp.zeros(t.shape[0], dtype=i32), S, Qr, nstep, nfev + 2, status, t)

            def body(act, c):
                t, y, k1, h, io, not_finite, S, Qr, nstep, nfev, status, tfail = c
                h, h_next, accept, status, not_finite, nstep, nfev, tn, ynew, k2 = vm(
                    lane_rodas4_attempt, act, t, tend, last, y, k1, h, hmin, io, not_finite, nstep, nfev, status, q,
                    u)
                io, S, Qr = dense_rows(hermite, accept, t, h, tn, last, y, q, io, S, Qr, ynew, k1, k2)
                a2 = accept[:, None]
                tfail = jnp.where(act & (status != 0), t, tfail)
                return (jnp.where(accept, tn, t), jnp.where(a2, ynew, y), jnp.where(a2, k2, k1), h_next, io,
                        not_finite, S, Qr, nstep, nfev, status, tfail)

            c = loop(lambda c: vm(lane_stepping, c[0], tend, c[10], run), body, carry)
            return c[10], c[1], c[4], c[6], c[7], c[8], c[9], c[11]

        segment = rodas4_segment if method == 2 else tsit5_segment

        # --------------------------------------------------------------------------------- events and segments
        def lane_next(x, io, ie, n_ev, ev_t, t0, active):
            tt, _, n_out = x
            t_final = jnp.where(n_out > 0, at(tt, n_out - 1, n_times), t0)
            finished = io >= n_out
            nxt = at(ev_t, ie, width)
            has_next = (ie < n_ev) & (nxt <= t_final)
            return finished, has_next, jnp.where(has_next, nxt, t_final), active & ~finished

        def outer(do, c):
            t, y, u, q, io, ie, done, S, Qr, nstep, nfev, status, tfail = c
            active = do
            # outputs flagged "before events" at this time, then the events, then the remaining outputs
            io, S, Qr = record_rows(t, y, q, io, S, Qr, 1, active)
            ie, y, u, q, io, S, Qr = apply_events(t, y, u, q, io, ie, S, Qr, active)
            io, S, Qr = record_rows(t, y, q, io, S, Qr, -1, active)
            finished, has_next, t_next, run = vm(lane_next, io, ie, N_EV, EV_T, T0, active)
            # a segment shorter than the smallest step (event times a few units of rounding apart, as 0.3 and
            # 0.1 + 0.2) takes one explicit Euler step, whose error is below rounding, as in the CPU engines
            short = run & (t_next - t < 16.0 * _EPS * jnp.maximum(jnp.maximum(jnp.abs(t), jnp.abs(t_next)), 1.0))
            seg_status, y2, io, S, Qr, nstep, nfev, tf = segment(t, t_next, ~has_next, y, q, u, io, S, Qr, nstep,
                                                                 nfev, run & ~short)
            dy = jax.vmap(f)(t, y, q, u)
            bad = short & ~jnp.all(jnp.isfinite(dy), axis=1)
            y2 = jnp.where(short[:, None], y + (t_next - t)[:, None] * dy, y2)
            seg_status = jnp.where(bad, 3, seg_status)
            tf = jnp.where(bad, t, tf)
            nfev = nfev + short.astype(i32)
            io, S, Qr = record_rows(jnp.where(has_next, jnp.nextafter(t_next, -jnp.inf), t_next), y2, q, io, S, Qr,
                                    -1, short & ~bad)
            failed = run & (seg_status != 0)
            status = jnp.where(failed, seg_status, status)
            tfail = jnp.where(failed, tf, tfail)
            y = jnp.where(run[:, None], y2, y)
            t = jnp.where(run & ~failed, t_next, t)
            done = done | finished | failed | ~has_next
            return t, y, u, q, io, ie, done, S, Qr, nstep, nfev, status, tfail

        n = Q.shape[0]
        zeros = jnp.zeros(n, dtype=i32)
        S0 = jnp.full((n, n_times, ns) if rec_states else (n, 1, 1), jnp.nan)
        Q0 = jnp.full((n, n_times, nq) if rec_q else (n, 1, 1), jnp.nan)
        c0 = (T0, Y0, jnp.zeros_like(Y0), Q, zeros, zeros, jnp.zeros(n, dtype=bool), S0, Q0, zeros, zeros, zeros, T0)
        c = loop(lambda c: ~c[6], outer, c0)
        S, Qr, nstep, nfev, status, tfail = c[7], c[8], c[9], c[10], c[11], c[12]
        if wo:
            rows = jax.vmap(fns.outputs, in_axes=(0, 0, 0 if rec_q else None))
            Out = vm(lambda x, S, qr: rows(x[0], S, qr), S, Qr if rec_q else Q)
        else:
            Out = jnp.zeros((n, 1, 1))
        if not keep_states:
            S = jnp.zeros((n, 1, 1))
        counters = jnp.stack([nstep.astype(f64), nfev.astype(f64), jnp.where(status == 5, 1.0, 0.0), tfail], axis=1)
        return S, Out, status, counters

    return solve


@functools.lru_cache(maxsize=32)
def _program(cm: CompiledModel, method: int, shared_tt: bool, keep_states: bool, keep_outputs: bool,
             q_events: bool):
    """The jitted batch solver of a model (compiled by XLA on first call for each set of array shapes)."""
    fns = _model_functions(cm)
    return jax.jit(_make_batch_solver(fns, method, len(cm.model.states), len(cm.model.outputs), keep_states,
                                      keep_outputs, q_events, shared_tt))


def _run(cm, method, q, y0, events, tt, pre, n_out, t0, settings, keep_states, keep_outputs):
    prog, args = _prepare(cm, method, q, y0, events, tt, pre, n_out, t0, settings, keep_states, keep_outputs)
    return jax.device_get(prog(*args))


def _prepare(cm, method, q, y0, events, tt, pre, n_out, t0, settings, keep_states, keep_outputs):
    """The jitted program and its device arguments (benchmarks time ``prog(*args)`` with results left on device)."""
    shared = tt.shape[0] == 1
    q_events = bool(np.any(events.kind == 3))
    prog = _program(cm, method, shared, keep_states, keep_outputs, q_events)
    args = (
        jnp.asarray(q, dtype=jnp.float64), jnp.asarray(y0, dtype=jnp.float64),
        jnp.asarray(events.time, dtype=jnp.float64), jnp.asarray(events.kind, dtype=jnp.int32),
        jnp.asarray(events.index, dtype=jnp.int32), jnp.asarray(events.value, dtype=jnp.float64),
        jnp.asarray(events.count, dtype=jnp.int32),
        jnp.asarray(tt[0] if shared else tt, dtype=jnp.float64),
        jnp.asarray(pre[0] if shared else pre, dtype=jnp.int32),
        jnp.asarray(n_out[0] if shared else n_out, dtype=jnp.int32),
        jnp.asarray(t0, dtype=jnp.float64),
        jnp.float64(settings.rtol), jnp.float64(settings.atol), jnp.float64(settings.max_step),
        jnp.int32(min(settings.max_steps, 2**31 - 1)),
    )
    return prog, args


def _writable(a: np.ndarray) -> np.ndarray:
    return a if a.flags.writeable else np.array(a)


def run_batch_jax(cm: CompiledModel, q: np.ndarray, y0: np.ndarray, events, tt: np.ndarray, pre: np.ndarray,
                  n_out: np.ndarray, t0: np.ndarray, settings: SolverSettings, *, keep_states: bool = True,
                  keep_outputs: bool = True, progress: bool | None = None, desc: str = "",
                  max_bytes: float | None = None) -> dict:
    """Solve a batch on JAX: the drop-in counterpart of ``pkpd.simulation.run_batch`` (private API).

    Parameters
    ----------
    cm : CompiledModel
        The model (its ``q`` layout and hoisted constants; its compiled CPU module is not used).
    q : ndarray (n_subjects, n_q)
        Per-subject parameters, covariates, static derived quantities and hoisted constants.
    y0 : ndarray (n_subjects, n_states)
        Pre-dose states [state units].
    events : EventTable
        Per-subject event table (times [model time unit]; kinds as in :mod:`pkpd._integrator`).
    tt, pre, n_out : ndarray
        Output times (1 or n_subjects rows) [model time unit], their "before events" flags, and how many of each
        row are used.
    t0 : ndarray (n_subjects,)
        Start time of each subject [model time unit].
    settings : SolverSettings
        Method ("auto", "tsit5", "rodas4"), tolerances, max_step [model time unit], max_steps.
    keep_states, keep_outputs : bool
        Whether to return the state and output trajectories.
    progress, desc
        Accepted for the CPU runner's signature; unused (the batch is one device program, without progress).
    max_bytes : float, optional
        Largest result [bytes] (``pkpd.simulation.check_result_size``), refused before anything is allocated.

    Returns
    -------
    dict
        ``states`` (n_subjects, n_times, n_states) or None, ``outputs`` (n_subjects, n_times, n_outputs) or None,
        ``status`` (n_subjects,) int (0 ok, 1 max steps, 2 step underflow, 3 non-finite, 4 singular matrix),
        ``counters`` (n_subjects, 4): steps, right-hand-side evaluations, 1.0 where Rodas4 ran after stiffness
        was detected, time of a failure. numpy arrays in host memory.

    Use it through ``pkpd.simulate(model, regimen, times, backend="jax")``, which builds these arrays.
    """
    from .simulation import check_result_size

    n = q.shape[0]
    n_outputs = len(cm.model.outputs)
    check_result_size(n, tt.shape[1], len(cm.model.states) * bool(keep_states) + n_outputs * bool(keep_outputs),
                      max_bytes)
    wo = keep_outputs and n_outputs > 0
    method = settings.method_code  # 0 auto, 1 tsit5, 2 rodas4
    S, Out, status, counters = _run(cm, method, q, y0, events, tt, pre, n_out, t0, settings, keep_states, wo)
    status, counters = _writable(status).astype(np.int64), _writable(counters)
    stiff = np.flatnonzero(status == 5)
    if stiff.size:
        # S and Out are read-only host copies of device buffers: copied again only when written here (10^6 subjects
        # of the shared job hold 10.8 GB of states)
        S, Out = _writable(S), _writable(Out)
        # auto: the subjects found stiff run again from the start with Rodas4, in batches padded to a power of two
        # (so that at most log2(n) shapes are ever compiled)
        size = 1 << int(math.ceil(math.log2(stiff.size)))
        idx = np.concatenate([stiff, np.full(size - stiff.size, stiff[0])])
        from .simulation import EventTable

        sub_events = EventTable(events.time[idx], events.kind[idx], events.index[idx], events.value[idx],
                                events.count[idx])
        shared = tt.shape[0] == 1
        S2, Out2, st2, c2 = _run(cm, 2, q[idx], y0[idx], sub_events, tt if shared else tt[idx],
                               pre if shared else pre[idx], n_out if shared else n_out[idx], t0[idx], settings,
                               keep_states, wo)
        m = stiff.size
        if keep_states:
            S[stiff] = S2[:m]
        if wo:
            Out[stiff] = Out2[:m]
        status[stiff] = st2[:m]
        steps_tsit5 = counters[stiff, :2].copy()
        counters[stiff] = c2[:m]
        counters[stiff, :2] += steps_tsit5
        counters[stiff, 2] = 1.0
    return {"states": S if keep_states else None,
            "outputs": (Out if wo else np.empty((n, tt.shape[1], 0))) if keep_outputs else None,
            "status": status, "counters": counters}
