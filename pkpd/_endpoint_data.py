"""Endpoint records in estimation (private; used by :mod:`pkpd.estimation`).

The fitters predict engine outputs at (subject, time) rows. An endpoint record needs several such predictions: a
time-to-event record the cumulative hazard at its time and at the start of its risk interval (the previous record of
that output, or t = 0) and the hazard at its time; an ordinal record its cumulative logits; a count its expected
count (or the cumulative expected count at both ends of its interval) and its dispersion. :func:`expand` validates the
records (errors name the row) and lists those *component* rows; :class:`EndpointRecords` keeps where each record's
components sit among the fitter's rows and evaluates -2 log L of every record from the predictions, with its
derivatives (:mod:`pkpd.endpoints` holds the likelihoods themselves).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from . import endpoints as ep
from .errors import DataError

# component slots per record: TTE (H at t, H at the start of the interval, hazard at t); binary (p); ordinal (the
# K-1 logits); count (mean at t or cumulative mean at t, cumulative mean at the start, dispersion)
_TTE = ("H", "H0", "h")
_COUNT = ("mu", "mu0", "disp")


@dataclass(frozen=True, eq=False)
class EndpointRecords:
    """The endpoint records of a dataset and the rows (``components``) holding the predictions they need."""

    specs: tuple                 # EndpointSpec of each fitted endpoint output
    output: np.ndarray           # (n,) index into specs
    subject: np.ndarray          # (n,) subject index
    time: np.ndarray             # (n,) [model time unit]
    dv: np.ndarray               # (n,)
    interval: np.ndarray         # (n,) bool: TTE event known only to lie in the risk interval (CENS = 1)
    row: np.ndarray              # (n,) row of the file
    category: np.ndarray         # (n,) ordinal: index of the observed category (else 0)
    components: np.ndarray       # (n, C) index of each component among the fitter's rows (-1: none)

    @property
    def size(self) -> int:
        return int(self.dv.size)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.specs)

    def subset(self, subjects, row_map: np.ndarray) -> EndpointRecords:
        """The records of some subjects (in that order), with component rows renumbered by ``row_map`` (old -> new,
        -1 for rows dropped)."""
        subjects = list(subjects)
        keep = np.isin(self.subject, subjects)
        remap = np.full(int(self.subject.max(initial=-1)) + 1, -1)
        remap[subjects] = np.arange(len(subjects))
        comp = self.components[keep]
        comp = np.where(comp >= 0, row_map[np.maximum(comp, 0)], -1)
        return dataclasses.replace(self, output=self.output[keep], subject=remap[self.subject[keep]],
                                   time=self.time[keep], dv=self.dv[keep], interval=self.interval[keep],
                                   row=self.row[keep], category=self.category[keep], components=comp)

    def with_dv(self, dv: np.ndarray) -> EndpointRecords:
        dv = np.asarray(dv, dtype=float)
        cat = self.category.copy()
        for k, s in enumerate(self.specs):
            if s.kind == "ordinal":
                sel = self.output == k
                cat[sel] = np.searchsorted(np.asarray(s.categories), dv[sel])
        return dataclasses.replace(self, dv=dv, category=cat)

    # -- likelihood -------------------------------------------------------------------------------------------
    def _gather(self, F: np.ndarray) -> np.ndarray:
        """Predictions of every component (..., n, C) from row predictions F (..., n_rows); NaN for none."""
        pad = np.concatenate([F, np.full(F.shape[:-1] + (1,), np.nan)], axis=-1)
        idx = np.where(self.components >= 0, self.components, F.shape[-1])
        return pad[..., idx]

    def minus2ll(self, F: np.ndarray, *, gradient: bool = False):
        """-2 log L of every record (..., n) from row predictions F (..., n_rows); with ``gradient`` also its
        derivatives with respect to the components (..., n, C) (0 for unused slots). NaN where impossible."""
        P = self._gather(np.asarray(F, dtype=float))
        c = np.full(P.shape[:-1], np.nan)
        g = np.zeros(P.shape) if gradient else None
        for k, s in enumerate(self.specs):
            sel = self.output == k
            if not sel.any():
                continue
            p = P[..., sel, :]
            y = self.dv[sel]
            if s.kind == "time-to-event":
                out = ep.tte_log_likelihood(y, p[..., 0] - p[..., 1], p[..., 2], self.interval[sel], gradient=gradient)
                if gradient:
                    ll, gdH, gh = out
                    gk = np.zeros(p.shape)
                    gk[..., 0], gk[..., 1], gk[..., 2] = gdH, -gdH, gh
            elif s.kind == "binary":
                out = ep.binary_log_likelihood(y, p[..., 0], gradient=gradient)
                if gradient:
                    ll, gp = out
                    gk = np.zeros(p.shape)
                    gk[..., 0] = gp
            elif s.kind == "ordinal":
                m = len(s.categories) - 1
                L = p[..., :m]
                shape = L.shape
                out = ep.ordinal_log_likelihood(np.broadcast_to(self.category[sel], shape[:-1]).reshape(-1),
                                                L.reshape(-1, m), gradient=gradient)
                if gradient:
                    ll, gl = out
                    gk = np.zeros(p.shape)
                    gk[..., :m] = gl.reshape(shape)
                    ll = ll.reshape(shape[:-1])
                else:   # (the flat values of a batch of parameter sets back into its shape)
                    out = out.reshape(shape[:-1])
            else:  # count
                mu = p[..., 0] - p[..., 1] if s.rate else p[..., 0]
                disp = p[..., 2] if s.dispersion else None
                out = ep.count_log_likelihood(y, mu, disp, gradient=gradient)
                if gradient:
                    ll, gmu, ga = out
                    gk = np.zeros(p.shape)
                    gk[..., 0] = gmu
                    if s.rate:
                        gk[..., 1] = -gmu
                    if s.dispersion:
                        gk[..., 2] = ga
            if not gradient:
                ll = out
            c[..., sel] = -2.0 * ll
            if gradient:
                g[..., sel, :] = -2.0 * gk
        if gradient:
            g = np.where(self.components >= 0, g, 0.0)
            return c, g
        return c

    def empty_category_note(self, model) -> str:
        """Why a fit of these records cannot be trusted to reach its optimum, when an ordinal output has a category
        between two others that no record has and whose two intercepts ``model`` writes differently ('' otherwise;
        intercepts written the same give it probability 0 by design).

        The maximum-likelihood probability of such a category is 0 (shrinking it gives its mass to a neighbour,
        raising the likelihood of every record of that neighbour): the optimum lies on the edge where its two
        intercepts are equal, beyond which the likelihood is undefined. An optimiser moving the intercepts one by one
        stops on or near that edge, short of the optimum along it (a fit of grades 0, 2 and 3 stopped at -2LL 87.4,
        the optimum is 77.9).
        """
        from . import expressions as ex

        outputs = {o.name: o for o in model.outputs}
        for k_out, s in enumerate(self.specs):
            if s.kind != "ordinal":
                continue
            o = outputs[s.name]
            seen = np.bincount(self.category[self.output == k_out], minlength=len(s.categories))
            for k in range(1, len(s.categories) - 1):
                low, high = o.intercepts[k - 1], o.intercepts[k]
                if seen[k] or ex.parse(low) == ex.parse(high):
                    continue
                return (f"ordinal output {s.name!r}: no record has category {o.categories[k]!r}, so its "
                        "maximum-likelihood probability is 0, on the edge where its intercepts "
                        f"{low} and {high} are equal, beyond which the likelihood is undefined; an optimiser moving "
                        "the intercepts one by one stops on or near that edge short of the optimum, so the "
                        "objective may not be at its minimum; leave the category out of the output's categories, "
                        f'or write its two intercepts as one (intercepts = [..., "{low}", "{low}", ...])')
        return ""

    def information_weights(self, F: np.ndarray) -> np.ndarray:
        r"""Weights W (..., n, M, C): the expected information of record r's log-likelihood with respect to
        anything its predictions depend on is sum_m (W_m . dP)(W_m . dP)^T, dP the derivatives of its components.

        Binary, ordinal and Poisson records get their exact expected (Fisher) information, negative-binomial ones
        that of the mean, :math:`\partial\mu\,\partial\mu^T / (\mu(1 + \alpha\mu))`. A time-to-event record
        gets that of a Poisson count of mean :math:`\Delta H` (the number of events over its interval),
        :math:`\partial\Delta H\,\partial\Delta H^T / \Delta H`: for a hazard proportional to
        :math:`e^{\eta}` it is exactly the observed information :math:`\Delta H`.
        """
        from scipy.special import expit

        P = self._gather(np.asarray(F, dtype=float))
        M = max([len(s.categories) for s in self.specs if s.kind == "ordinal"] + [1])
        W = np.zeros(P.shape[:-1] + (M, P.shape[-1]))
        with np.errstate(all="ignore"):
            for k, s in enumerate(self.specs):
                sel = self.output == k
                if not sel.any():
                    continue
                p = P[..., sel, :]
                if s.kind == "binary":
                    pr = p[..., 0]
                    W[..., sel, 0, 0] = 1.0 / np.sqrt(pr * (1.0 - pr))
                elif s.kind == "ordinal":
                    m = len(s.categories) - 1
                    L = p[..., :m]
                    pi = ep.ordinal_probabilities(L)                            # (..., n_sel, K)
                    dG = expit(L) * expit(-L)                                   # d sigma(l_j) / d l_j
                    for cat in range(m + 1):
                        root = np.sqrt(pi[..., cat])
                        if cat >= 1:
                            W[..., sel, cat, cat - 1] = dG[..., cat - 1] / root
                        if cat < m:
                            W[..., sel, cat, cat] = -dG[..., cat] / root
                elif s.kind == "count":
                    mu = p[..., 0] - p[..., 1] if s.rate else p[..., 0]
                    root = np.sqrt(mu * (1.0 + p[..., 2] * mu)) if s.dispersion else np.sqrt(mu)
                    W[..., sel, 0, 0] = 1.0 / root
                    if s.rate:
                        W[..., sel, 0, 1] = -1.0 / root
                else:  # time to event
                    root = np.sqrt(p[..., 0] - p[..., 1])
                    W[..., sel, 0, 0] = 1.0 / root
                    W[..., sel, 0, 1] = -1.0 / root
        W = np.where(np.isfinite(W), W, 0.0)
        return np.where((self.components >= 0)[..., None, :], W, 0.0)

    def predictions(self, F: np.ndarray) -> np.ndarray:
        """The endpoint's prediction of each record (n,): P(DV = 1) (binary), expected category (ordinal), expected
        count of the interval (count), probability of no event over the risk interval (time to event)."""
        P = self._gather(np.asarray(F, dtype=float))
        out = np.full(self.size, np.nan)
        with np.errstate(all="ignore"):
            for k, s in enumerate(self.specs):
                sel = self.output == k
                p = P[sel]
                if s.kind == "time-to-event":
                    out[sel] = np.exp(-(p[:, 0] - p[:, 1]))
                elif s.kind == "binary":
                    out[sel] = p[:, 0]
                elif s.kind == "ordinal":
                    m = len(s.categories) - 1
                    out[sel] = ep.ordinal_probabilities(p[:, :m]) @ np.asarray(s.categories, dtype=float)
                else:
                    out[sel] = p[:, 0] - p[:, 1] if s.rate else p[:, 0]
        return out


def expand(model, obs, time_factor: float, source=None):
    """Validate the endpoint records of ``obs`` (the rows of ``model``'s endpoint outputs, with ``ROW, ID, TIME,
    DV, output`` and the optional censoring columns) and list the component rows they need.

    Returns ``(records, components)``: the records without component indices (filled in by :func:`attach`), and a
    DataFrame of component rows ``ROW, ID, TIME, output`` (``output`` an engine output; ``TIME`` in the data's unit,
    0 for the start of a first risk interval), one per distinct (ID, TIME, output) needed.
    """
    import pandas as pd

    specs_all = {s.name: s for s in ep.endpoint_specs(model)}
    names = [n for n in specs_all if n in set(obs["output"])]
    specs = tuple(specs_all[n] for n in names)
    rows = obs["ROW"].to_numpy().astype(np.int64)
    dv = obs["DV"].to_numpy(dtype=float)
    out_name = obs["output"].to_numpy()
    ids = obs["ID"].to_numpy()
    t_data = obs["TIME"].to_numpy(dtype=float)
    n = len(obs)
    for column, what in (("LLOQ", "a limit of quantification"), ("BLQ", "a BLQ flag")):
        if column in obs:
            v = obs[column].to_numpy(dtype=float)
            bad = np.isfinite(v) & ((v != 0) if column == "BLQ" else np.ones(n, dtype=bool))
            if bad.any():
                k = int(np.flatnonzero(bad)[0])
                raise DataError(f"output {out_name[k]!r} is a {specs_all[out_name[k]].kind} endpoint: {what} applies "
                                "to continuous outputs only; leave it empty on this record", row=int(rows[k]),
                                column=column, file=source)
    cens = (np.nan_to_num(obs["CENS"].to_numpy(dtype=float), nan=0.0) if "CENS" in obs else np.zeros(n))
    if "LIMIT" in obs and obs["LIMIT"].notna().any():
        k = int(np.flatnonzero(obs["LIMIT"].notna().to_numpy())[0])
        raise DataError("LIMIT applies to continuous outputs only", row=int(rows[k]), column="LIMIT", file=source)
    bad = ~np.isfinite(dv)
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise DataError(f"DV must be a finite number; got {dv[k]}", row=int(rows[k]), column="DV", file=source)
    category = np.zeros(n, dtype=np.int64)
    interval = np.zeros(n, dtype=bool)
    for s in specs:
        sel = np.flatnonzero(out_name == s.name)
        y = dv[sel]
        where = f"output {s.name!r} is {'an' if s.kind == 'ordinal' else 'a'} {s.kind} endpoint"
        if s.kind in ("time-to-event", "binary"):
            badv = ~np.isin(y, (0.0, 1.0))
            if badv.any():
                k = sel[np.flatnonzero(badv)[0]]
                meaning = ("1 for an event at TIME, 0 for censoring at TIME" if s.kind == "time-to-event"
                           else "1 for a response, 0 for none")
                raise DataError(f"{where}: DV must be 0 or 1 ({meaning}); got {dv[k]:g}", row=int(rows[k]),
                                column="DV", file=source)
        if s.kind == "ordinal":
            cats = np.asarray(s.categories, dtype=float)
            badv = ~np.isin(y, cats)
            if badv.any():
                k = sel[np.flatnonzero(badv)[0]]
                raise DataError(f"{where}: DV {dv[k]:g} is not one of its declared categories "
                                f"({', '.join(f'{c:g}' for c in cats)})", row=int(rows[k]), column="DV", file=source)
            category[sel] = np.searchsorted(cats, y)
        if s.kind == "count":
            badv = (y < 0) | (y != np.round(y))
            if badv.any():
                k = sel[np.flatnonzero(badv)[0]]
                why = "a count cannot be negative" if dv[k] < 0 else "a count is a whole number"
                raise DataError(f"{where}: {why}; got DV = {dv[k]:g}", row=int(rows[k]), column="DV", file=source)
        c = cens[sel]
        badc = c != 0
        if badc.any() and s.kind != "time-to-event":
            k = sel[np.flatnonzero(badc)[0]]
            raise DataError(f"{where}: CENS applies to continuous and time-to-event outputs only", row=int(rows[k]),
                            column="CENS", file=source)
        if s.kind == "time-to-event":
            badc = ~np.isin(c, (0.0, 1.0)) | ((c == 1) & (y != 1))
            if badc.any():
                k = sel[np.flatnonzero(badc)[0]]
                raise DataError(f"{where}: CENS = 1 marks an event (DV = 1) known only to lie in the interval since "
                                f"the previous record of {s.name!r} (interval censoring); got CENS = {cens[k]:g} with "
                                f"DV = {dv[k]:g}", row=int(rows[k]), column="CENS", file=source)
            interval[sel] = c == 1
        if s.kind == "time-to-event" or (s.kind == "count" and s.rate):
            # risk / counting intervals: each from the previous record of this output (or t = 0), in time order
            last: dict = {}
            for k in sel:
                prev = last.get(ids[k], 0.0)
                if not t_data[k] > prev:
                    first = ids[k] not in last
                    raise DataError(f"{where}: its records must be in time order within each subject, each after "
                                    f"the previous one of {s.name!r}" + (" and after t = 0, where the first interval "
                                                                        "starts" if first else "")
                                    + f"; got TIME {t_data[k]:g} after {prev:g}", row=int(rows[k]), column="TIME",
                                    file=source)
                last[ids[k]] = t_data[k]
    # the component rows, one per distinct (ID, TIME, engine output)
    comp_rows: dict = {}
    comp_list = []

    def need(i, t, name, row):
        key = (ids[i], float(t), name)
        if key not in comp_rows:
            comp_rows[key] = len(comp_list)
            comp_list.append((row, ids[i], float(t), name))
        return comp_rows[key]

    width = max([3] + [len(s.categories) - 1 for s in specs if s.kind == "ordinal"])
    comps = np.full((n, width), -1, dtype=np.int64)
    out_index = np.zeros(n, dtype=np.int64)
    last_time: dict = {}
    for j, s in enumerate(specs):
        sel = np.flatnonzero(out_name == s.name)
        out_index[sel] = j
        for k in sel:
            t = t_data[k]
            if s.kind == "time-to-event":
                prev = last_time.get((s.name, ids[k]), 0.0)
                comps[k, 0] = need(k, t, s.cumulative, rows[k])
                comps[k, 1] = need(k, prev, s.cumulative, rows[k])
                comps[k, 2] = need(k, t, s.hazard, rows[k])
                last_time[(s.name, ids[k])] = t
            elif s.kind == "binary":
                comps[k, 0] = need(k, t, s.value, rows[k])
            elif s.kind == "ordinal":
                for m, name in enumerate(s.logits):
                    comps[k, m] = need(k, t, name, rows[k])
            else:
                comps[k, 0] = need(k, t, s.value, rows[k])
                if s.rate:
                    prev = last_time.get((s.name, ids[k]), 0.0)
                    comps[k, 1] = need(k, prev, s.value, rows[k])
                    last_time[(s.name, ids[k])] = t
                if s.dispersion:
                    comps[k, 2] = need(k, t, s.dispersion, rows[k])
    components = pd.DataFrame(comp_list, columns=["ROW", "ID", "TIME", "output"])
    records = EndpointRecords(specs=specs, output=out_index, subject=np.zeros(n, dtype=np.int64),
                              time=t_data * time_factor, dv=dv, interval=interval, row=rows, category=category,
                              components=comps)
    return records, components, ids


def attach(records: EndpointRecords, ids, subject_index: dict, first_component: int) -> EndpointRecords:
    """The records with their subject indices and component rows (offset by where the component rows start)."""
    subj = np.array([subject_index[s] for s in ids], dtype=np.int64)
    comps = np.where(records.components >= 0, records.components + first_component, -1)
    return dataclasses.replace(records, subject=subj, components=comps)
