"""The closed-form solver of linear models: matrix exponentials instead of an ODE integrator.

When :func:`pkpd.linear_system.linearity` finds a model's equations linear with coefficients constant between
events (``dy/dt = A y + b``, the one- to three-compartment models with bolus, infusion or first-order absorption
and any other linear compartmental model), every batch solve of the CPU engines (:func:`pkpd.simulate`,
:func:`pkpd.simulate_nonmem` and its steady states, the fitters' predictions) uses the exact solution between
events instead of the ODE solver: ``y(t + h) = exp(A h) y(t) + int_0^h exp(A s) ds (b + infusion rates)``
(:mod:`pkpd._linear_kernels`). The events are those the ODE solver gets, walked in the same order (doses, infusion
starts and stops, lag times and bioavailability as built by the regimen and NONMEM machinery, resets, parameter or
covariate changes, which start a new set of coefficients), so both give the same results to the solver's tolerance
and the closed form has no tolerance of its own: it is exact to rounding.

Which solver runs is :attr:`pkpd.SolverSettings.method`: ``"auto"`` (default) takes the closed form for linear
models and the ODE solver otherwise; ``"ode"`` (or ``"tsit5"``/``"rodas4"``) always integrates;
``"closed-form"`` insists on the closed form and is an error for a model that is not linear.

Examples
--------
>>> import numpy as np, pkpd
>>> m = pkpd.load_model("pk_1cmt_iv")
>>> dose = pkpd.Regimen.single(pkpd.Dose(100, "mg"))
>>> exact = pkpd.simulate(m, dose, [0.0, 2.0, 24.0])                     # closed form (the model is linear)
>>> ode = pkpd.simulate(m, dose, [0.0, 2.0, 24.0], settings=pkpd.SolverSettings(method="ode"))
>>> bool(np.allclose(exact["conc"], ode["conc"], rtol=1e-6))
True
"""

from __future__ import annotations

import numpy as np

from . import expressions as ex
from .errors import PkpdError
from .linear_system import linearity


def uses_closed_form(model, settings) -> bool:
    """Whether a batch solve of ``model`` under ``settings`` takes the closed form (an error when
    ``method="closed-form"`` is asked of a model that is not linear).

    Examples
    --------
    >>> import pkpd
    >>> uses_closed_form(pkpd.load_model("pk_2cmt_oral"), pkpd.SolverSettings())
    True
    >>> uses_closed_form(pkpd.load_model("pk_2cmt_oral"), pkpd.SolverSettings(method="ode"))
    False
    """
    if settings.method == "closed-form":
        verdict = linearity(model)
        if not verdict.is_linear:
            raise PkpdError(f"SolverSettings(method='closed-form'): model {model.name!r} is not a linear system "
                            f"with coefficients constant between events ({verdict.reason}); use method='auto' or "
                            "'ode' (the ODE solver)")
        return True
    return settings.method == "auto" and linearity(model).is_linear


def run_closed_form(cm, q, y0, events, tt, pre, n_out, t0, *, keep_states: bool = True, keep_outputs: bool = True,
                    progress: bool | None = False, desc: str = "simulate", max_bytes: float | None = None) -> dict:
    """The closed-form counterpart of :func:`pkpd.simulation.run_batch` (same arguments and result; private API).

    ``counters[:, 0]`` counts the propagation steps and ``counters[:, 1]`` the matrix exponentials computed; the
    status is 0, or 3 where a state is not finite (a parameter value made the coefficients NaN or infinite).
    """
    from . import simulation
    from ._native_linear import kernels
    from ._progress import ChunkProgress
    from .simulation import check_result_size, result_array

    m = cm.model
    system = linearity(m).system
    n = q.shape[0]
    n_times = tt.shape[1]
    ns, no = len(m.states), len(m.outputs)
    check_result_size(n, n_times, ns + no * bool(keep_outputs), max_bytes)
    q = np.ascontiguousarray(q, dtype=float)
    y0 = np.ascontiguousarray(y0, dtype=float)
    tt = np.ascontiguousarray(tt, dtype=float)
    pre = np.ascontiguousarray(pre, dtype=np.int64)
    n_out = np.ascontiguousarray(n_out, dtype=np.int64)
    t0 = np.ascontiguousarray(t0, dtype=float)
    shared_times = tt.shape[0] == 1
    row = np.zeros(n, dtype=np.int64) if shared_times else np.arange(n, dtype=np.int64)

    q_epochs = _epochs(cm, q, events)                       # (n, n_epochs, n_q)
    env = {name: q_epochs[:, :, i] for i, name in enumerate(cm.q_names)}
    shape = q_epochs.shape[:2]
    with np.errstate(all="ignore"):  # a bad value becomes a non-finite state, reported as status 3
        A = np.empty(shape + (ns, ns))
        for i, entries in enumerate(system.matrix):
            for j, tree in enumerate(entries):
                A[:, :, i, j] = np.broadcast_to(np.asarray(ex.evaluate(tree, env), dtype=float), shape)
        C = np.empty(shape + (ns,))
        for i, tree in enumerate(system.constant):
            C[:, :, i] = np.broadcast_to(np.asarray(ex.evaluate(tree, env), dtype=float), shape)

    states = result_array((n, n_times, ns))
    epoch_out = np.zeros((n, n_times), dtype=np.int64)
    status = np.zeros(n, dtype=np.int64)
    counters = np.zeros((n, 4))
    ev_t = np.ascontiguousarray(events.time, dtype=float)
    ev_kind = np.ascontiguousarray(events.kind, dtype=np.int64)
    ev_idx = np.ascontiguousarray(events.index, dtype=np.int64)
    ev_val = np.ascontiguousarray(events.value, dtype=float)
    count = np.ascontiguousarray(events.count, dtype=np.int64)
    solve_batch = kernels(cm.engine).solve_batch
    chunk = simulation._BATCH_CHUNK  # as the ODE solver: between chunks the bar moves and Ctrl-C is honoured
    done = 0
    try:
        with ChunkProgress(n, progress=progress if n > chunk else False, desc=desc) as bar:
            for a in range(0, max(n, 1), chunk):
                b = min(a + chunk, n)
                solve_batch(A[a:b], C[a:b], y0[a:b], ev_t[a:b], ev_kind[a:b], ev_idx[a:b], ev_val[a:b], count[a:b],
                            tt, pre, n_out, row[a:b], t0[a:b], states[a:b], epoch_out[a:b], status[a:b],
                            counters[a:b])
                done = b
                bar.advance(b - a)
    except KeyboardInterrupt:
        raise KeyboardInterrupt(f"{desc} interrupted: {done} of {n} subjects had been solved; no result was returned. "
                                "Run again (fewer subjects, or simulate_summary for large populations).") from None
    written = np.arange(n_times)[None, :] < n_out[row][:, None]
    if not written.all():
        states[~written] = 0.0  # rows past a subject's last output time are padding
    outputs = None
    if keep_outputs:
        outputs = _outputs(cm, q_epochs, states, epoch_out, tt, row, no)
    return {"states": states if keep_states else None, "outputs": outputs, "status": status, "counters": counters}


def _epochs(cm, q: np.ndarray, events) -> np.ndarray:
    """``q`` of every subject in force after each of its parameter or covariate changes (event kind 3):
    (n, 1 + most changes of a subject, n_q), padded with the last one."""
    n = q.shape[0]
    columns = np.arange(events.kind.shape[1])[None, :] < np.asarray(events.count)[:, None]
    changes = (np.asarray(events.kind) == 3) & columns
    per_subject = changes.sum(axis=1)
    n_epochs = 1 + int(per_subject.max(initial=0))
    out = np.empty((n, n_epochs, q.shape[1]))
    out[:] = q[:, None, :]
    if n_epochs == 1:
        return out
    current = q.copy()
    epoch = np.zeros(n, dtype=np.int64)
    for k in np.flatnonzero(changes.any(axis=0)):
        hit = np.flatnonzero(changes[:, k])
        current[hit, events.index[hit, k]] = events.value[hit, k]
        epoch[hit] += 1
        out[hit, epoch[hit]] = current[hit]
    for e in range(1, n_epochs):  # padding: a subject with fewer changes keeps its last values
        short = per_subject < e
        out[short, e] = out[short, e - 1]
    # the static derived quantities (and hoisted constants) follow the parameters and covariates, as in the engine
    n_base = cm.n_params + len(cm.model.covariates)
    flat = out.reshape(n * n_epochs, -1)
    with np.errstate(all="ignore"):
        rebuilt = cm.build_q(flat[:, :cm.n_params], flat[:, cm.n_params:n_base])
    return rebuilt.reshape(n, n_epochs, -1)


def _outputs(cm, q_epochs, states, epoch_out, tt, row, n_outputs: int) -> np.ndarray:
    """The outputs (n, n_times, n_outputs) from the states, evaluated with numpy as the engine's ``_record`` does."""
    m = cm.model
    ck = m._checked
    n, n_times = states.shape[:2]
    out = np.empty((n, n_times, max(n_outputs, 1)))
    if n_outputs == 0:
        return out[:, :, :0]
    env: dict[str, object] = {}
    single = q_epochs.shape[1] == 1
    for i, name in enumerate(cm.q_names[:cm.n_params + len(m.covariates) + len(ck.static_derived)]):
        column = q_epochs[:, :, i]
        env[name] = column[:, :1] if single else np.take_along_axis(column, epoch_out, axis=1)
    for i, name in enumerate(m.state_names):
        env[name] = states[:, :, i]
    env["t"] = tt[row] if tt.shape[0] > 1 else tt
    used = set().union(*(ex.names(t) for t in ck.outputs))
    wanted = set(used)
    for name, tree in reversed(ck.dynamic_derived):
        if name in wanted:
            wanted |= ex.names(tree)
    with np.errstate(all="ignore"):  # NaN or infinite outputs are flagged by the caller (status 5)
        for name, tree in ck.dynamic_derived:
            if name in wanted:
                env[name] = ex.evaluate(tree, env)
        for k, tree in enumerate(ck.outputs):
            out[:, :, k] = np.broadcast_to(np.asarray(ex.evaluate(tree, env), dtype=float), (n, n_times))
    return out
