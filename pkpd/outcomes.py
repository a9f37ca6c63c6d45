r"""Simulated clinical outcomes: events, responses, grades and counts drawn for each simulated subject.

:func:`pkpd.simulate` calls :func:`draw_outcomes` for a model with endpoint outputs (:mod:`pkpd.endpoints`); the
records come back as ``Simulation.outcomes`` and, with the doses, in the NONMEM layout from
``Simulation.to_dataframe(layout="nonmem")``, ready to be fitted again.

* **Time to event** (inverse cumulative hazard): with :math:`E_1, E_2, \ldots` independent standard exponentials, the
  k-th event is at the time :math:`t` where :math:`H(t) - H(0) = E_1 + \cdots + E_k` (one event for a single-event
  output; as many as fall before the end of follow-up for a repeated one). The time is found on the solution of the
  model itself: a grid of the cumulative hazard (one batch solve) brackets it, and a safeguarded Newton iteration
  (:math:`t \leftarrow t - (H(t) - E)/h(t)`, bisection when a step leaves the bracket; every subject's trial time
  solved in one batch call) locates it to :math:`10^{-10}` in :math:`H`, i.e. at the solver's accuracy. Follow-up
  ends at ``follow_up`` (default: the last simulated time) or at a subject's ``dropout`` time, whichever comes
  first; a subject still at risk then gets a censoring record (DV = 0).
* **Binary, ordinal, count**: drawn at the assessment times (``observe``; default every simulated time >= 0) from the
  probability, the category probabilities, or the Poisson / negative-binomial distribution of the expected count
  (for a count whose mean is a rate: the count of each interval between consecutive assessments, the first from
  t = 0). Assessments after a subject's dropout are not recorded.

Draws come from one ``numpy.random.Generator`` in a fixed order (endpoints in model order, subjects in order), so a
seed reproduces them exactly.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping

import numpy as np

from . import endpoints as ep
from .errors import PkpdError, SimulationError, did_you_mean

__all__ = ["draw_outcomes", "nonmem_table"]

_GRID = 33             # points of the cumulative-hazard grid that brackets each event time
_TOL = 1e-10           # event time located where |H(t) - target| <= _TOL * max(1, target)
_MAX_ITER = 60
MAX_EVENTS = 10_000    # repeated events per subject and output (a runaway hazard is an error, not a hang)


def _subset(events, rows):
    from .simulation import EventTable

    return EventTable(events.time[rows], events.kind[rows], events.index[rows], events.value[rows],
                      events.count[rows])


def _solve(cm, q, y0, events, t0, tt, settings, rows, *, states: bool = False) -> np.ndarray:
    """Outputs (or, with ``states``, states) (len(rows), width, n) at per-subject times ``tt`` (len(rows), width)."""
    from .simulation import run_batch

    tt = np.ascontiguousarray(tt, dtype=float)
    n = len(rows)
    sol = run_batch(cm, q[rows], y0[rows], _subset(events, rows), tt, np.zeros(tt.shape, dtype=np.int64),
                    np.full(tt.shape[0], tt.shape[1], dtype=np.int64), np.minimum(t0[rows], tt[:, 0]), settings,
                    keep_states=states, keep_outputs=not states)
    if np.any(sol["status"] != 0):
        bad = int(np.flatnonzero(sol["status"])[0])
        raise SimulationError("drawing outcomes: the solver failed while locating an event time",
                              subject=int(rows[bad]) + 1)
    return sol["states" if states else "outputs"].reshape(n, tt.shape[1], -1)


def _check_options(specs, times, observe, follow_up, dropout, n):
    names = [s.name for s in specs]
    observe = dict(observe or {})
    for name, t in observe.items():
        if name not in names:
            raise PkpdError(f"observe: {name!r} is not an endpoint output of the model." + did_you_mean(str(name),
                                                                                                        names))
        kind = next(s.kind for s in specs if s.name == name)
        if kind == "time-to-event":
            raise PkpdError(f"observe[{name!r}]: a time-to-event output is followed until follow_up (or dropout), "
                            "not observed at given times")
        arr = np.asarray(t, dtype=float).reshape(-1)
        if arr.size == 0 or not np.all(np.isfinite(arr)) or np.any(np.diff(arr) <= 0) or arr[0] < 0:
            raise PkpdError(f"observe[{name!r}]: give increasing, finite assessment times >= 0 [model time unit]; "
                            f"got {t!r:.80}")
        observe[name] = arr
    if follow_up is None:
        follow_up = float(times[-1])
    if isinstance(follow_up, bool) or not isinstance(follow_up, numbers.Real) or not follow_up > 0 \
            or not np.isfinite(follow_up):
        raise PkpdError(f"follow_up: the end of follow-up must be a finite time > 0 [model time unit]; got "
                        f"{follow_up!r}")
    end = np.full(n, float(follow_up))
    if dropout is not None:
        d = np.asarray(dropout, dtype=float).reshape(-1)
        if d.size == 1:
            d = np.full(n, d[0])
        if d.size != n or np.any(np.isnan(d)) or np.any(d <= 0):
            raise PkpdError(f"dropout: give one dropout time > 0 per subject ({n}; inf for none) [model time unit]")
        end = np.minimum(end, d)
    return observe, end


def draw_outcomes(cm, q, y0, events, t0, settings, ids, *, times, observe=None, follow_up=None, dropout=None,
                  rng: np.random.Generator, skip=None, only=None):
    """Outcome records of every endpoint output for a batch of subjects (private to :func:`pkpd.simulate`).

    Returns a pandas DataFrame with columns ``ID, TIME, output, DV`` (TIME in the model's time unit), sorted by
    subject then time; subjects flagged in ``skip`` (a failed solve) get none.
    """
    import pandas as pd

    declared = cm.declared or cm.model
    specs = ep.endpoint_specs(declared)
    if only is not None:
        names = [s.name for s in specs]
        if isinstance(only, str) or not all(isinstance(x, str) for x in only):
            raise PkpdError(f"outcomes: give True, False or a list of endpoint outputs; got {only!r:.80}")
        for x in only:
            if x not in names:
                raise PkpdError(f"outcomes: {x!r} is not an endpoint output of the model." + did_you_mean(x, names))
        specs = tuple(s for s in specs if s.name in set(only))
    n = q.shape[0]
    observe, end = _check_options(specs, np.asarray(times, dtype=float), observe, follow_up, dropout, n)
    index = {name: k for k, name in enumerate(cm.model.output_names)}
    ok = np.ones(n, dtype=bool) if skip is None else ~np.asarray(skip, dtype=bool)
    t0 = np.minimum(np.asarray(t0, dtype=float), 0.0)   # every risk starts at t = 0
    # by default every simulated time from t = 0 on, the rule `observe` holds given times to (risk, and the first
    # interval of a count, start at t = 0)
    times = np.asarray(times, dtype=float)
    default = times[times >= 0]
    frames = []
    for spec in specs:
        if spec.kind == "time-to-event":
            sid, t, dv = _draw_events(cm, q, y0, events, t0, settings, spec, index, end, ok, rng)
        else:
            sid, t, dv = _draw_assessments(cm, q, y0, events, t0, settings, spec, index, end, ok, rng,
                                           observe.get(spec.name, default))
        frames.append(pd.DataFrame({"ID": np.asarray(ids)[sid], "TIME": t, "output": spec.name, "DV": dv,
                                    "_subject": sid}))
    if not frames:
        return pd.DataFrame({"ID": [], "TIME": [], "output": [], "DV": []})
    table = pd.concat(frames, ignore_index=True)
    order = np.lexsort((table["TIME"].to_numpy(dtype=float), table["_subject"].to_numpy()))
    return table.iloc[order].drop(columns="_subject").reset_index(drop=True)


def _draw_assessments(cm, q, y0, events, t0, settings, spec, index, end, ok, rng, when):
    times = np.unique(np.concatenate([[0.0], when])) if spec.rate else when
    rows = np.flatnonzero(ok)
    n_all = q.shape[0]
    if rows.size == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros(0)
    out = _solve(cm, q, y0, events, t0, np.broadcast_to(times, (rows.size, times.size)), settings, rows)
    at = np.searchsorted(times, when)
    value = out[:, :, index[spec.value]]
    full = np.full((n_all, when.size), np.nan)
    if spec.kind == "binary":
        p = value[:, at]
        dv = ep.draw_binary(np.clip(p, 0.0, 1.0), rng)
    elif spec.kind == "ordinal":
        logits = np.stack([out[:, at, index[name]] for name in spec.logits], axis=-1)
        if np.any(np.diff(logits, axis=-1) > 0):
            raise SimulationError(f"output {spec.name!r}: the cumulative logits must decrease from one category to "
                                  "the next (intercepts in decreasing order); check its intercepts and effect")
        dv = ep.draw_ordinal(logits, spec.categories, rng)
    else:
        if spec.rate:   # the count of each interval since the previous assessment (the first from t = 0)
            start = value[:, np.searchsorted(times, np.concatenate([[0.0], when[:-1]]))]
            mean = value[:, at] - start
        else:
            mean = value[:, at]
        disp = out[:, at, index[spec.dispersion]] if spec.dispersion else None
        if np.any(~(mean >= -1e-12)):
            raise SimulationError(f"output {spec.name!r}: the expected count is negative; check its mean")
        dv = ep.draw_count(np.maximum(mean, 0.0), rng, disp)
    full[rows] = dv
    sid, k = np.nonzero(np.isfinite(full) & (when[None, :] <= end[:, None]))
    return sid, when[k], full[sid, k]


def _draw_events(cm, q, y0, events, t0, settings, spec, index, end, ok, rng):
    """Event (DV 1) and censoring (DV 0) records of one time-to-event output.

    The cumulative hazard H(t) does not depend on the events (hazards are functions of the states and t), so every
    subject's targets E_1, E_1 + E_2, ... are drawn first, and every (subject, event) pair is located at once: a
    handful of batch solves whatever the number of events.
    """
    iH, ih = index[spec.cumulative], index[spec.hazard]
    rows = np.flatnonzero(ok & (end > 0))
    if rows.size == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros(0)
    grid = end[rows, None] * np.linspace(0.0, 1.0, _GRID)[None, :]
    # the grid needs only the cumulative-hazard state (far less memory than every output at every grid point)
    Hs = _solve(cm, q, y0, events, t0, grid, settings, rows, states=True)[:, :, cm.model.state_names.index(spec.state)]
    H = Hs - Hs[:, :1]                                               # cumulative hazard from t = 0
    falls = np.diff(H, axis=1) < -1e-9 * np.maximum(1.0, np.abs(H[:, 1:]))   # beyond roundoff
    if np.any(falls):
        i = int(np.flatnonzero(np.any(falls, axis=1))[0])
        raise SimulationError(f"output {spec.name!r}: the hazard is negative (the cumulative hazard decreases); a "
                              "hazard must be >= 0", subject=int(rows[i]) + 1)
    H_end = H[:, -1]
    # the targets: one per subject, or (repeated events) cumulative sums until past H at the end of follow-up
    pair_k, pair_target = [], []
    total = rng.standard_exponential(rows.size)
    active = np.flatnonzero(total <= H_end)
    count = 0
    while active.size:
        pair_k.append(active)
        pair_target.append(total[active])
        if not spec.repeated:
            break
        count += 1
        if count >= MAX_EVENTS:
            raise SimulationError(f"output {spec.name!r}: more than {MAX_EVENTS} repeated events before the end of "
                                  "follow-up; check the hazard's value and unit", subject=int(rows[active[0]]) + 1)
        total[active] += rng.standard_exponential(active.size)
        active = active[total[active] <= H_end[active]]
    k = np.concatenate(pair_k) if pair_k else np.zeros(0, dtype=np.int64)
    target = np.concatenate(pair_target) if pair_target else np.zeros(0)
    t_event = np.zeros(0)
    if k.size:
        # first grid point where H reaches the target: H(grid[j - 1]) < target <= H(grid[j])
        j = np.maximum(np.sum(H[k] < target[:, None], axis=1), 1)
        t_event = _locate(cm, q, y0, events, t0, settings, rows[k], iH, ih, Hs[k, 0], target,
                          grid[k, j - 1].copy(), grid[k, j].copy(), H[k, j - 1], H[k, j])
    # every subject is censored at the end of its follow-up unless its (single) event came first
    censor = np.ones(rows.size, dtype=bool)
    if not spec.repeated and k.size:
        censor[k] = False
    sid = np.concatenate([rows[k], rows[censor]])
    t = np.concatenate([t_event, end[rows[censor]]])
    dv = np.concatenate([np.ones(k.size), np.zeros(int(censor.sum()))])
    return sid, t, dv


def _locate(cm, q, y0, events, t0, settings, rows, iH, ih, H0, target, lo, hi, Hlo, Hhi) -> np.ndarray:
    """Times t in [lo, hi] with H(t) - H(0) = target (H(lo) < target <= H(hi)): safeguarded Newton, batched."""
    with np.errstate(all="ignore"):
        w = np.where(Hhi > Hlo, (target - Hlo) / (Hhi - Hlo), 0.5)
    t = lo + np.clip(w, 0.0, 1.0) * (hi - lo)
    done = np.zeros(rows.size, dtype=bool)
    tol = _TOL * np.maximum(1.0, target)
    for _ in range(_MAX_ITER):
        act = np.flatnonzero(~done)
        if act.size == 0:
            break
        sol = _solve(cm, q, y0, events, t0, t[act, None], settings, rows[act])
        f = sol[:, 0, iH] - H0[act] - target[act]
        h = sol[:, 0, ih]
        hit = (np.abs(f) <= tol[act]) | (hi[act] - lo[act] <= 1e-13 * np.maximum(1.0, np.abs(t[act])))
        done[act[hit]] = True
        below = f < 0
        lo[act] = np.where(below, t[act], lo[act])
        hi[act] = np.where(below, hi[act], t[act])
        with np.errstate(all="ignore"):
            newton = t[act] - f / h
        inside = np.isfinite(newton) & (newton > lo[act]) & (newton < hi[act])
        t[act] = np.where(hit, t[act], np.where(inside, newton, 0.5 * (lo[act] + hi[act])))
    return t


# ------------------------------------------------------------------------------------------------ NONMEM layout
def nonmem_table(sim, names=None):
    """The NONMEM records of a simulation (private to ``Simulation.to_dataframe(layout="nonmem")``)."""
    import pandas as pd

    from . import units as un
    from .dosing import Bolus

    model = sim.model
    if model is None:
        raise PkpdError("to_dataframe(layout='nonmem'): this Simulation does not carry its model")
    rows = []
    covs = {c: np.asarray(v, dtype=float) for c, v in sim.covariates.items()}
    for i, sid in enumerate(sim.subject_ids):
        reg = sim.regimens[i]
        tf = un.convert(reg.time_unit, model.time_unit) if len(reg) else 1.0
        for adm in reg:
            target = model.dose_target(adm.target)
            k = un.convert(adm.dose.base_unit, target.unit)
            weight = covs["WT"][i] if adm.dose.per_kg else 1.0
            amount = adm.dose.amount * k * weight
            rec = {"ID": sid, "TIME": adm.time * tf, "EVID": 1, "MDV": 1, "AMT": amount, "AMTU": target.unit,
                   "CMT": target.name, "RATE": 0.0, "DUR": 0.0, "DV": np.nan, "DVID": "."}
            if not isinstance(adm, Bolus):
                if adm.modelled == "rate":
                    rec["RATE"] = -1.0
                elif adm.modelled == "duration":
                    rec["RATE"] = -2.0
                elif adm.rate is not None:
                    rec["RATE"] = adm.rate * k * weight / tf
                else:
                    rec["DUR"] = adm.duration * tf
            rows.append(rec)
    table = pd.DataFrame(rows, columns=["ID", "TIME", "EVID", "MDV", "AMT", "AMTU", "CMT", "RATE", "DUR", "DV",
                                        "DVID"])
    if table["AMTU"].nunique() > 1:   # doses into targets of different units: AMT is each target's own unit
        table["AMTU"] = "target"
    obs = sim.outcomes
    if obs is not None and len(obs):
        if names is not None:
            obs = obs[obs["output"].isin(list(names))]
        o = pd.DataFrame({"ID": obs["ID"].to_numpy(), "TIME": obs["TIME"].to_numpy(dtype=float), "EVID": 0, "MDV": 0,
                          "AMT": 0.0, "AMTU": ".", "CMT": ".", "RATE": 0.0, "DUR": 0.0,
                          "DV": obs["DV"].to_numpy(dtype=float), "DVID": obs["output"].to_numpy()})
        table = pd.concat([table, o], ignore_index=True) if len(table) else o
    if not len(table):
        return table
    position = {sid: k for k, sid in enumerate(sim.subject_ids)}
    table["_s"] = table["ID"].map(position)
    # doses before observations at the same time (an assessment at a dosing time sees the dose)
    table = table.sort_values(["_s", "TIME", "EVID"], ascending=[True, True, False], kind="stable")
    for c, v in covs.items():
        table[c] = v[table["_s"].to_numpy()]
    if not (table["DUR"] > 0).any():
        table = table.drop(columns="DUR")
    return table.drop(columns="_s").reset_index(drop=True)


def _observe_arg(observe):
    if observe is not None and not isinstance(observe, Mapping):
        raise PkpdError(f"observe: expected a dict endpoint output -> assessment times; got {type(observe).__name__}")
    return observe
