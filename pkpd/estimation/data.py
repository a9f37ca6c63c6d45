"""Observations and doses of a NONMEM dataset laid out for the estimators (private to the package).

:func:`_observations` is the one adapter between :class:`pkpd.nonmem.NonmemDataset` and the fitters: per-subject
designs (regimens, covariates, observation times with NONMEM record order) and flat observation arrays; datasets
whose doses a Regimen cannot express (steady state, resets) are simulated record by record (:class:`_Records`).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .. import units as un
from ..dosing import Regimen
from ..error_models import M1
from ..errors import DataError, FitError
from ..model import Model


# ====================================================================================================== data
@dataclass(frozen=True, eq=False)
class _Data:
    """Observations ready for fitting (private): per-subject design plus flat observation arrays.

    ``times`` holds each subject's distinct observation times in model time units, padded with the last one;
    ``pre`` flags a time whose observations come before a dose given at that time (NONMEM record order).
    """

    model: Model
    ids: tuple
    regimens: tuple
    covariates: np.ndarray        # (n_subjects, n_covariates), model order
    explicit: frozenset           # covariates that the data give
    outputs: tuple[str, ...]      # fitted outputs, model order
    times: np.ndarray             # (n_subjects, max_times)
    pre: np.ndarray               # (n_subjects, max_times) int64
    n_times: np.ndarray           # (n_subjects,) int64
    subject: np.ndarray           # (n_obs,) subject index
    time_index: np.ndarray        # (n_obs,) column of ``times``
    output: np.ndarray            # (n_obs,) index into ``outputs``
    time: np.ndarray              # (n_obs,) [model time unit]
    dv: np.ndarray                # (n_obs,)
    limit: np.ndarray             # (n_obs,) LLOQ [output unit], NaN when none
    censored: np.ndarray          # (n_obs,) bool
    row: np.ndarray               # (n_obs,) row in the file (1-based), for messages
    time_unit: str                # of the data (TIME column)
    dropped: int = 0              # censored observations dropped (M1)
    covariate_events: object = None  # EventTable (n_subjects, w) of time-varying covariates (kind 3), or None
    records: object = None        # _Records: doses a Regimen cannot express (steady state, resets), else None
    # clinical endpoints (pkpd._endpoint_data): their records, and the rows after the continuous observations that
    # hold the predictions they need (``outputs`` then lists the error outputs first, then engine outputs)
    endpoint_records: object = None
    n_error: int = -1             # outputs with an error model (the first n_error of ``outputs``; -1: all)

    @property
    def n_subjects(self) -> int:
        return len(self.ids)

    @property
    def error_outputs(self) -> tuple[str, ...]:
        return self.outputs if self.n_error < 0 else self.outputs[:self.n_error]

    @property
    def fitted_outputs(self) -> tuple[str, ...]:
        """Outputs with an error model, then the endpoint outputs with records."""
        rec = self.endpoint_records
        return self.error_outputs + (rec.names if rec is not None else ())

    @property
    def continuous(self) -> np.ndarray:
        """Which rows are observations of continuous outputs (the others hold endpoint predictions)."""
        return self.output < len(self.error_outputs)

    @property
    def n_observations(self) -> int:
        """Observations that enter the likelihood: continuous ones plus endpoint records."""
        rec = self.endpoint_records
        return int(np.count_nonzero(self.continuous)) + (rec.size if rec is not None else 0)

    def subset(self, subjects: Sequence[int]) -> _Data:
        """The data of some subjects (by index), in that order."""
        subjects = list(subjects)
        keep = np.isin(self.subject, subjects)
        remap = np.full(self.n_subjects, -1)
        remap[subjects] = np.arange(len(subjects))
        rec = self.endpoint_records
        if rec is not None:
            row_map = np.full(keep.size, -1)
            row_map[keep] = np.arange(int(keep.sum()))
            rec = rec.subset(subjects, row_map)
        return dataclasses.replace(
            self, ids=tuple(self.ids[i] for i in subjects), regimens=tuple(self.regimens[i] for i in subjects),
            covariates=self.covariates[subjects], times=self.times[subjects], pre=self.pre[subjects],
            n_times=self.n_times[subjects], subject=remap[self.subject[keep]], time_index=self.time_index[keep],
            output=self.output[keep], time=self.time[keep], dv=self.dv[keep], limit=self.limit[keep],
            censored=self.censored[keep], row=self.row[keep],
            covariate_events=None if self.covariate_events is None else _subset_events(self.covariate_events,
                                                                                       subjects),
            records=None if self.records is None else self.records.subset(subjects, keep), endpoint_records=rec)

    def with_observations(self, dv: np.ndarray, censored: np.ndarray, endpoint_dv=None) -> _Data:
        """The same design with other observed values (parametric bootstrap)."""
        rec = self.endpoint_records
        if endpoint_dv is not None:
            rec = rec.with_dv(endpoint_dv)
        return dataclasses.replace(self, dv=np.asarray(dv, dtype=float), censored=np.asarray(censored, dtype=bool),
                                   endpoint_records=rec)


def _subset_events(ev, subjects):
    from ..simulation import EventTable

    return EventTable(ev.time[subjects], ev.kind[subjects], ev.index[subjects], ev.value[subjects],
                      ev.count[subjects])


def _read(model: Model, data):
    import pandas as pd

    from ..nonmem import NonmemDataset, read_nonmem

    if isinstance(data, NonmemDataset):
        # read without the model, perhaps: check each dose's CMT as read_nonmem(data, model) does, since doses
        # simulated record by record (steady states, resets) only mark a row as failed on a dose into no state
        _check_dose_targets(data, model)
        return data
    if isinstance(data, pd.DataFrame | str | os.PathLike):
        return read_nonmem(data, model)
    raise FitError(f"data: expected a NonmemDataset (pkpd.nonmem.read_nonmem), a pandas DataFrame or a CSV path in "
                   f"the NONMEM layout; got {type(data).__name__}")


def _check_dose_targets(ds, model: Model) -> None:
    """A DataError naming the first dose record whose CMT is no dose target or dosed state of the model."""
    import pandas as pd

    from ..nonmem import _dose_target_index

    t = ds.table
    dosed = np.flatnonzero(np.isin(t["EVID"].to_numpy(), (1, 4)))
    cmts = t["CMT"].to_numpy()[dosed]
    # each CMT once, at its first record: the first bad value in order of appearance is the first bad record (the
    # columns alone, not the table's rows: every fit checks this, twice for a population fit)
    first = ~pd.Series(cmts, dtype=object).duplicated().to_numpy()
    for cmt, row in zip(cmts[first], t["ROW"].to_numpy()[dosed[first]]):
        _dose_target_index(model, cmt, int(row), ds.source)


def _check_weights(model: Model, ds, explicit) -> None:
    """A DataError naming the first dose when the doses are per kg of body weight, the model declares WT and the data
    give no WT column: every fit refuses them as ``simulate_nonmem`` does, whether the doses become a Regimen or are
    simulated record by record (steady states, resets)."""
    from ..dosing import Dose
    from ..nonmem import _amt_unit, _no_weight_column

    unit = _amt_unit(ds)
    if unit is None or "WT" not in model.covariate_names or "WT" in explicit:
        return
    t = ds.table
    dosed = np.isin(t["EVID"].to_numpy(), (1, 4)) & ((t["AMT"].to_numpy() != 0) | (t["RATE"].to_numpy() > 0))
    if dosed.any() and Dose(1.0, unit).per_kg:
        raise _no_weight_column(unit, int(t["ROW"].to_numpy()[dosed][0]), ds.source)


def _observations(model: Model, data, outputs: Sequence[str], blq) -> _Data:
    """The one adapter between NONMEM datasets and the fitter."""
    import pandas as pd

    ds = _read(model, data)
    table = ds.table
    src = ds.source
    obs = ds.observations(model)
    if obs.empty:
        raise FitError(f"data{' ' + repr(src) if src else ''}: there are no observations (EVID=0 records with MDV=0 "
                       "and a DV)")
    if "DVID" not in table:
        candidates = list(outputs) if outputs else list(model.endpoint_names)
        if len(candidates) != 1:
            raise FitError(f"data: there is no DVID column, so observations cannot be matched to the "
                           f"{len(candidates)} outputs in error ({', '.join(candidates)}); add a DVID column naming "
                           "each record's output")
        obs["output"] = candidates[0]
    # clinical endpoints (their own likelihood) are set apart; the rest are continuous observations
    is_endpoint = np.isin(obs["output"].to_numpy(), list(model.endpoint_names))
    if is_endpoint.any():
        endpoint_obs = obs[is_endpoint].reset_index(drop=True)
        obs = obs[~is_endpoint].reset_index(drop=True)
    else:
        endpoint_obs = obs.iloc[:0]
    for column in ("LIMIT",):
        if column in obs and obs[column].notna().any():
            raise FitError(f"data: column {column} (interval censoring) is not supported by fit(); remove it, and "
                           "use LLOQ (with BLQ or CENS) for values below the limit of quantification")
    names = obs["output"].to_numpy()
    unknown = sorted(set(names) - set(outputs))
    if unknown:
        counts = ", ".join(f"{int((names == u).sum())} of {u!r}" for u in unknown)
        raise FitError(f"data: there are observations ({counts}) of outputs that error gives no error model for; add "
                       f"them to error (e.g. error={{{unknown[0]!r}: pkpd.Proportional(cv=0.2)}}) or remove those "
                       "records")
    rows = obs["ROW"].to_numpy().astype(np.int64)
    dv = obs["DV"].to_numpy(dtype=float)
    bad = ~np.isfinite(dv)
    if bad.any():
        raise DataError(f"DV must be a finite number; got {dv[bad][0]}", row=int(rows[bad][0]), column="DV",
                        file=src)
    # censoring: BLQ=1, CENS=1 (DV holds the limit), or DV < LLOQ
    n = dv.size
    limit = np.full(n, np.nan)
    censored = np.zeros(n, dtype=bool)
    if "LLOQ" in obs:
        lloq = obs["LLOQ"].to_numpy(dtype=float)
        given = np.isfinite(lloq)
        limit[given] = lloq[given]
        censored |= given & (dv < lloq)
    if "BLQ" in obs:
        flag = np.nan_to_num(obs["BLQ"].to_numpy(dtype=float), nan=0.0) == 1
        no_limit = flag & ~np.isfinite(limit)
        if no_limit.any():
            raise DataError("BLQ=1 but this record has no LLOQ; give the limit of quantification in an LLOQ column",
                            row=int(rows[no_limit][0]), column="LLOQ", file=src)
        censored |= flag
    if "CENS" in obs:
        cens = np.nan_to_num(obs["CENS"].to_numpy(dtype=float), nan=0.0)
        if (cens == -1).any():
            raise DataError("CENS=-1 (above the upper limit of quantification) is not supported by fit()",
                            row=int(rows[cens == -1][0]), column="CENS", file=src)
        flag = cens == 1
        limit = np.where(flag & ~np.isfinite(limit), dv, limit)
        censored |= flag
    limit_bad = censored & ~np.isfinite(limit)
    if limit_bad.any():
        raise DataError(f"the limit of quantification must be a finite number; got {limit[limit_bad][0]}",
                        row=int(rows[limit_bad][0]), column="LLOQ", file=src)
    out_index = np.array([outputs.index(o) for o in names], dtype=np.int64)
    for k, name in enumerate(outputs):
        mine = out_index == k
        if not mine.any():
            raise FitError(f"error[{name!r}]: the data have no observations of output {name!r}; check the DVID "
                           "column, or remove this output from error")
        if censored[mine].all():
            raise FitError(f"error[{name!r}]: all {int(mine.sum())} observations of {name!r} are below the limit "
                           "of quantification: there is nothing to estimate from; check LLOQ/BLQ, or remove this "
                           "output from error")
    dropped = 0
    if isinstance(blq, M1) and censored.any():
        keep = ~censored
        dropped = int(censored.sum())
        obs, rows, dv, limit, censored, out_index = (obs[keep].reset_index(drop=True), rows[keep], dv[keep],
                                                     limit[keep], censored[keep], out_index[keep])

    # model-time of each observation, and whether it precedes a dose record at the same time (record order)
    tf = un.convert(ds.time_unit, model.time_unit)
    ep_records, n_error, n_continuous = None, -1, len(obs)
    if len(endpoint_obs):
        n_error = len(outputs)
        ep_records, obs, rows, dv, limit, censored, out_index, outputs = _with_endpoints(
            model, endpoint_obs, obs, rows, dv, limit, censored, out_index, tuple(outputs), tf, src)
    ids_obs = obs["ID"].to_numpy()
    t_obs = obs["TIME"].to_numpy(dtype=float)
    evid = table["EVID"].to_numpy()
    is_dose = np.isin(evid, (1, 4))
    pre = np.zeros(len(obs), dtype=np.int64)
    if is_dose.any():
        last_dose_row: dict = {}
        for key in zip(*(table[c].to_numpy()[is_dose].tolist() for c in ("ID", "TIME", "ROW"))):
            if key[2] > last_dose_row.get(key[:2], -1):
                last_dose_row[key[:2]] = key[2]
        later = np.array([last_dose_row.get(k, -1) for k in zip(ids_obs.tolist(), t_obs.tolist())])
        pre = (later > rows).astype(np.int64)

    # per-subject regimens and covariates; steady-state doses and resets are simulated record by record instead
    records = None
    first = ~pd.Series(table["ID"].to_numpy()).duplicated().to_numpy()
    if (table["SS"].to_numpy() != 0).any() or (evid == 3).any() or ((evid == 4) & ~first).any():
        regimens = {}
        records = _Records(ds)
    else:
        try:
            regimens = ds.to_regimens(model)
        except DataError as err:
            raise FitError(f"data: {err}; fit() needs doses that a Regimen can express") from None
    subj, uniques = pd.factorize(ids_obs, sort=False)       # subjects in order of first observation
    subj = subj.astype(np.int64)
    subject_ids = list(uniques)
    canonical: dict = {}
    regs = []
    for sid in subject_ids:
        r = regimens.get(sid, Regimen.none())
        regs.append(canonical.setdefault(r, r))
    covariates, explicit, changes = _subject_covariates(model, ds, subject_ids, tf)
    _check_weights(model, ds, explicit)

    # distinct (time, pre) per subject, in time order with pre-dose rows first at equal times
    sub_index = {sid: i for i, sid in enumerate(subject_ids)}
    t_model = t_obs * tf
    n_s = len(subject_ids)
    order = np.lexsort((-pre, t_model, subj))
    s_o, t_o, p_o = subj[order], t_model[order], pre[order]
    distinct = np.ones(order.size, dtype=bool)
    distinct[1:] = (s_o[1:] != s_o[:-1]) | (t_o[1:] != t_o[:-1]) | (p_o[1:] != p_o[:-1])
    key = np.cumsum(distinct) - 1                                  # number of each distinct (subject, time, pre)
    first_key = key[np.searchsorted(s_o, np.arange(n_s))]         # each subject's first
    time_index = np.empty(len(obs), dtype=np.int64)
    time_index[order] = key - first_key[s_o]
    n_times = np.bincount(s_o[distinct], minlength=n_s).astype(np.int64)
    width = int(n_times.max())
    at = (s_o[distinct], (key - first_key[s_o])[distinct])
    times = np.zeros((n_s, width))
    times[at] = t_o[distinct]
    pad = np.arange(width)[None, :] >= n_times[:, None]            # after a subject's last time: that time again
    times = np.where(pad, times[np.arange(n_s), n_times - 1][:, None], times)
    pre_flags = np.zeros((n_s, width), dtype=np.int64)
    pre_flags[at] = p_o[distinct]
    if records is not None:
        if list(pd.unique(table["ID"].to_numpy())) != subject_ids:
            raise FitError("data: with steady-state doses or resets, every subject needs an observation")
        records = records.locate(rows, subj)
    if ep_records is not None:
        from .._endpoint_data import attach

        ep_records = attach(ep_records, endpoint_obs["ID"].to_numpy(), sub_index, n_continuous)
    return _Data(model=model, ids=tuple(_plain(s) for s in subject_ids), regimens=tuple(regs),
                 covariates=covariates, explicit=explicit, outputs=tuple(outputs), times=times, pre=pre_flags,
                 n_times=n_times, subject=subj, time_index=time_index, output=out_index, time=t_model, dv=dv,
                 limit=limit, censored=censored, row=rows, time_unit=ds.time_unit, dropped=dropped,
                 covariate_events=changes, records=records, endpoint_records=ep_records, n_error=n_error)


def _with_endpoints(model, endpoint_obs, obs, rows, dv, limit, censored, out_index, outputs, tf, src):
    """Validate the endpoint records and append the rows holding the predictions they need (private).

    Returns the records and the observation arrays extended by those rows (after the continuous observations),
    with ``outputs`` extended by the engine outputs they predict.
    """
    import pandas as pd

    from .._endpoint_data import expand
    from ..compile import compile_model

    records, comp, _ = expand(model, endpoint_obs, tf, src)
    engine_names = compile_model(model).model.output_names
    extra = [o for o in engine_names if o in set(comp["output"])]
    outputs = tuple(outputs) + tuple(extra)
    m = len(comp)
    obs = pd.concat([obs[["ROW", "ID", "TIME"]], comp[["ROW", "ID", "TIME"]]], ignore_index=True)
    rows = np.concatenate([rows, comp["ROW"].to_numpy().astype(np.int64)])
    dv = np.concatenate([dv, np.full(m, np.nan)])
    limit = np.concatenate([limit, np.full(m, np.nan)])
    censored = np.concatenate([censored, np.zeros(m, dtype=bool)])
    out_index = np.concatenate([out_index, np.array([outputs.index(o) for o in comp["output"]], dtype=np.int64)])
    return records, obs, rows, dv, limit, censored, out_index, outputs


@dataclass(frozen=True, eq=False)
class _Records:
    """A dataset whose doses a Regimen cannot express (steady state SS=1/2, resets): predictions are simulated
    record by record with :func:`pkpd.nonmem.simulate_rows`, the machinery of ``simulate_nonmem`` (private)."""

    dataset: object
    position: np.ndarray | None = None   # (n_obs,) each observation's record among its subject's records

    def locate(self, rows: np.ndarray, subject: np.ndarray) -> _Records:
        t = self.dataset.table
        row_col = t["ROW"].to_numpy()
        where = {}
        for positions in _rows_by_subject(t).values():
            for k, r in enumerate(row_col[positions]):
                where[int(r)] = k
        return dataclasses.replace(self, position=np.array([where[int(r)] for r in rows], dtype=np.int64))

    def predictions(self, cm, params: np.ndarray, subjects: np.ndarray, settings) -> tuple[np.ndarray, np.ndarray]:
        """Outputs (R, records, n_outputs) of subject ``subjects[r]`` with parameter row ``params[r]``, and which
        rows were solved."""
        from ..nonmem import simulate_rows

        return simulate_rows(cm, self.dataset, params, subjects, settings)

    def subset(self, subjects, keep_obs) -> _Records:
        """The records of some subjects (distinct, by index), in that order."""
        import pandas as pd

        t = self.dataset.table
        ids = t["ID"].to_numpy()
        unique = pd.unique(ids)
        table = pd.concat([t[ids == unique[i]] for i in subjects], ignore_index=True)
        return _Records(dataclasses.replace(self.dataset, table=table), self.position[keep_obs])


def _plain(x):
    if isinstance(x, float | np.floating) and float(x).is_integer():
        return int(x)
    return x.item() if isinstance(x, np.generic) else x


# A covariate that changes at a record takes its new value just after that record (NONMEM's "next observation
# carried backward"): the change is applied _NOCB_DELAY x max(1, |t|) model time units after the record, so that
# observations at the record's time still see the old value. The delay (3.6 ms for hours) is far below what the
# solution can resolve at the tolerances used for fitting.
_NOCB_DELAY = 1e-9


def _rows_by_subject(table) -> dict:
    """Subject ID -> the positions of its records in ``table`` (in record order)."""
    import pandas as pd

    codes, ids = pd.factorize(table["ID"], sort=False)
    order = np.argsort(codes, kind="stable")
    ends = np.cumsum(np.bincount(codes, minlength=len(ids)))
    return dict(zip(ids, np.split(order, ends[:-1])))


def _subject_covariates(model: Model, ds, subject_ids, time_factor: float = 1.0
                        ) -> tuple[np.ndarray, frozenset, object]:
    """Per-subject covariates (first record's value), the names given by the data, and the events of covariates
    that change within a subject (an EventTable of kind 3, or None)."""
    table = ds.table
    params = {p.upper(): p for p in model.parameter_names}
    for column in ds.covariate_columns:
        if column.upper() in params:
            raise FitError(f"data: column {column!r} has the name of model parameter {params[column.upper()]!r}; "
                           "fit() takes parameters from the model (estimated or fixed), not from data columns; "
                           "rename or remove the column")
    by_upper = {c.upper(): c for c in ds.covariate_columns}
    cov = np.tile([c.value for c in model.covariates], (len(subject_ids), 1)).astype(float)
    explicit = set()
    changes: list[list[tuple[float, int, float]]] = [[] for _ in subject_ids]
    n_params = len(model.parameters)
    code = rows_of = None
    for j, c in enumerate(model.covariates):
        column = c.name if c.name in ds.covariate_columns else by_upper.get(c.name.upper())
        if column is None:
            continue
        explicit.add(c.name)
        if code is None:    # each record's subject (its position in subject_ids; -1 for one without observations)
            position = {sid: i for i, sid in enumerate(subject_ids)}
            code = np.array([position.get(v, -1) for v in table["ID"].to_numpy().tolist()], dtype=np.int64)
            time_all = table["TIME"].to_numpy(dtype=float)
            row_all = table["ROW"].to_numpy()
        column_values = table[column].to_numpy(dtype=float)
        # each subject's first finite value (records in order), and the subjects whose value changes after it
        given = np.flatnonzero(np.isfinite(column_values) & (code >= 0))
        first = given[np.unique(code[given], return_index=True)[1]]
        cov[code[first], j] = column_values[first]
        first_value = np.full(len(subject_ids), np.nan)
        first_value[code[first]] = column_values[first]
        changing = np.unique(code[given][column_values[given] != first_value[code[given]]])
        if changing.size and rows_of is None:
            rows_of = _rows_by_subject(table)
        for i in changing.tolist():
            sid = subject_ids[i]
            rows = rows_of[sid]
            values = column_values[rows]
            finite = np.isfinite(values)
            values = values[finite]
            times = time_all[rows][finite] * time_factor
            if np.any(np.diff(times) < 0):
                raise DataError(f"covariate {c.name!r} changes within subject {_plain(sid)}, whose TIME goes "
                                "back (a new occasion): time-varying covariates are fitted on one clock only",
                                row=int(row_all[rows[0]]), column=column, file=ds.source)
            for k in np.flatnonzero(values[1:] != values[:-1]):
                t = times[k]
                changes[i].append((t + _NOCB_DELAY * max(1.0, abs(t)), n_params + j, float(values[k + 1])))
    events = None
    if any(changes):
        from ..simulation import set_events

        width = max(len(c) for c in changes)
        time = np.full((len(subject_ids), width), np.inf)
        index = np.zeros(time.shape, dtype=np.int64)
        value = np.zeros(time.shape)
        for i, evs in enumerate(changes):
            for k, (t, q_index, v) in enumerate(evs):
                time[i, k], index[i, k], value[i, k] = t, q_index, v
        events = set_events(time, index, value)
    return cov.reshape(len(subject_ids), len(model.covariates)), frozenset(explicit), events
