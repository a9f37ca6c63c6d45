"""The objects of a study design: groups of subjects with a regimen and sampling times, the design, and the
design space (windows, limits, spacing) that an optimisation must respect."""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from ..dosing import Bolus, Dose, Infusion, Regimen
from ..errors import PkpdError, did_you_mean

__all__ = ["Design", "DesignSpace", "Group", "scale_regimen"]


def _positive_int(where: str, name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise PkpdError(f"{where}: {name} must be an integer >= 1; got {value!r}")
    return int(value)


def _times(where: str, values) -> tuple[float, ...]:
    try:
        t = np.asarray(values, dtype=float).reshape(-1)
    except (TypeError, ValueError):
        raise PkpdError(f"{where}: sampling times must be numbers; got {values!r}") from None
    if t.size == 0:
        raise PkpdError(f"{where}: no sampling times; give at least one")
    if not np.all(np.isfinite(t)) or np.any(t < 0):
        raise PkpdError(f"{where}: sampling times must be finite and >= 0; got {t.tolist()}")
    return tuple(float(x) for x in np.sort(t))


@dataclass(frozen=True, eq=False)
class Group:
    """Subjects with the same regimen, covariates and sampling times (an "elementary design").

    Parameters
    ----------
    regimen : Regimen
        The doses; ``Dose(..., "mg/kg")`` needs ``WT`` in ``covariates``.
    times : sequence of float, or dict[str, sequence of float]
        Sampling times [model time unit], of the model's observed output when the error model has one output, or
        per output (``{"PGE2": [1, 24], "IL10": [4, 48]}``). A time may repeat (two samples at one time).
    size : int
        Number of subjects.
    covariates : dict[str, float], optional
        Covariates of the group, e.g. ``{"WT": 70}``.
    name : str, optional
        Default ``"group 1"``, ``"group 2"``... (given by :class:`Design`).

    Examples
    --------
    >>> import pkpd
    >>> g = Group(pkpd.Regimen.single(pkpd.Dose(100, "mg")), [0.5, 2, 8, 24], size=20)
    >>> g.n_samples, g.samples[:2]
    (4, (('*', 0.5), ('*', 2.0)))
    """

    regimen: Regimen
    times: object
    size: int
    covariates: Mapping[str, float] = field(default_factory=dict)
    name: str | None = None

    def __post_init__(self):
        where = f"group {self.name!r}" if self.name else "group"
        if not isinstance(self.regimen, Regimen):
            raise PkpdError(f"{where}: regimen must be a pkpd.Regimen (e.g. Regimen.single(Dose(100, 'mg'))); got "
                            f"{type(self.regimen).__name__}")
        object.__setattr__(self, "size", _positive_int(where, "size", self.size))
        if isinstance(self.times, Mapping):
            if not self.times:
                raise PkpdError(f"{where}: times is an empty dict; give output -> sampling times")
            times = {str(k): _times(f"{where} output {k!r}", v) for k, v in self.times.items()}
        else:
            times = {"*": _times(where, self.times)}
        object.__setattr__(self, "times", times)
        covs = {}
        for k, v in dict(self.covariates or {}).items():
            if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v):
                raise PkpdError(f"{where}: covariate {k!r} must be a finite number; got {v!r}")
            covs[str(k)] = float(v)
        object.__setattr__(self, "covariates", covs)

    @property
    def samples(self) -> tuple[tuple[str, float], ...]:
        """``(output, time)`` of every sample, outputs in the order given, times increasing (``"*"``: the single
        observed output)."""
        return tuple((o, t) for o, ts in self.times.items() for t in ts)

    @property
    def n_samples(self) -> int:
        """Samples per subject (all outputs)."""
        return sum(len(ts) for ts in self.times.values())

    def with_times(self, times) -> Group:
        """The same group with other sampling times (same layout as ``times``)."""
        return replace(self, times=times)

    def describe(self) -> str:
        """One line: size, doses, samples."""
        parts = [f"{self.size} subjects", repr(self.regimen).removeprefix("Regimen(").removesuffix(")")]
        for o, ts in self.times.items():
            parts.append(("" if o == "*" else f"{o} ") + "at " + ", ".join(f"{t:g}" for t in ts))
        if self.covariates:
            parts.append(", ".join(f"{k} = {v:g}" for k, v in self.covariates.items()))
        return "; ".join(parts)


@dataclass(frozen=True, eq=False)
class Design:
    """A study design: one or more :class:`Group` s (their Fisher information adds up).

    Examples
    --------
    >>> import pkpd
    >>> reg = pkpd.Regimen.single(pkpd.Dose(100, "mg"))
    >>> d = Design([Group(reg, [1, 4, 12], 10), Group(reg, [2, 8, 24], 10)])
    >>> [g.name for g in d.groups], d.n_subjects
    (['group 1', 'group 2'], 20)
    """

    groups: Sequence[Group]

    def __post_init__(self):
        groups = tuple(self.groups) if not isinstance(self.groups, Group) else (self.groups,)
        if not groups:
            raise PkpdError("design: no groups; give at least one Group(regimen, times, size)")
        named = []
        for i, g in enumerate(groups):
            if not isinstance(g, Group):
                raise PkpdError(f"design: groups[{i}] must be a Group; got {type(g).__name__}")
            named.append(g if g.name else replace(g, name=f"group {i + 1}"))
        names = [g.name for g in named]
        if len(set(names)) != len(names):
            raise PkpdError(f"design: group names must be unique; got {names}")
        object.__setattr__(self, "groups", tuple(named))

    @property
    def n_subjects(self) -> int:
        """Subjects in all groups."""
        return sum(g.size for g in self.groups)

    def table(self):
        """One row per group and sample: ``group, size, output, sample, time, doses``."""
        import pandas as pd

        rows = []
        for g in self.groups:
            doses = ", ".join(f"{a.dose.amount:g} {a.dose.unit} at {a.time:g}" for a in g.regimen.administrations)
            for k, (o, t) in enumerate(g.samples):
                rows.append({"group": g.name, "size": g.size, "output": o, "sample": k + 1, "time": t,
                             "doses": doses})
        return pd.DataFrame(rows)

    def __repr__(self) -> str:
        return "Design(" + " | ".join(f"{g.name}: {g.describe()}" for g in self.groups) + ")"


@dataclass(frozen=True)
class DesignSpace:
    """What an optimisation may change, and the constraints it must respect.

    Parameters
    ----------
    max_samples : int, optional
        Most samples per subject (all outputs together); a design with more is an error.
    windows : (low, high) or sequence of (low, high) or dict[group name, sequence of (low, high)], optional
        Where each sample may be taken [model time unit]: one window for every sample, one per sample (in the
        order of :attr:`Group.samples`), or per group. Default: from the first to the last time of the initial
        design.
    min_spacing : float
        Smallest time between two samples of the same subject and output [model time unit].
    grid_step : float, optional
        Resolution of the candidate times [model time unit]; default 1/400 of the widest window (the search is
        refined around the best times at 1/10 of this step).
    doses : (low, high) or dict[group name, (low, high)], optional
        Range of the amount of each dose (all administrations of a group scaled together) [the regimen's dose
        unit]; default: doses are not optimised.
    optimize_times : bool
        Optimise the sampling times (default True).

    Examples
    --------
    >>> DesignSpace(max_samples=4, windows=(0.25, 72), min_spacing=1.0).windows
    ((0.25, 72.0),)
    """

    max_samples: int | None = None
    windows: object = None
    min_spacing: float = 0.0
    grid_step: float | None = None
    doses: object = None
    optimize_times: bool = True

    def __post_init__(self):
        if self.max_samples is not None:
            object.__setattr__(self, "max_samples", _positive_int("DesignSpace", "max_samples", self.max_samples))
        if not (isinstance(self.min_spacing, numbers.Real) and math.isfinite(self.min_spacing)
                and self.min_spacing >= 0):
            raise PkpdError(f"DesignSpace: min_spacing must be a finite number >= 0; got {self.min_spacing!r}")
        if self.grid_step is not None and not (isinstance(self.grid_step, numbers.Real) and self.grid_step > 0):
            raise PkpdError(f"DesignSpace: grid_step must be > 0; got {self.grid_step!r}")
        if self.windows is not None and not isinstance(self.windows, Mapping):
            object.__setattr__(self, "windows", _window_list(self.windows, "DesignSpace: windows"))
        if self.doses is not None and not isinstance(self.doses, Mapping):
            object.__setattr__(self, "doses", _pair(self.doses, "DesignSpace: doses", positive=True))

    def check(self, design: Design) -> None:
        """Raise PkpdError when the design breaks a constraint (too many samples, a time outside its window,
        samples closer than ``min_spacing``, an unknown group)."""
        for g in design.groups:
            if self.max_samples is not None and g.n_samples > self.max_samples:
                raise PkpdError(f"design {g.name!r}: {g.n_samples} samples per subject, more than the "
                                f"{self.max_samples} allowed (max_samples); drop samples or allow more")
            windows = self.windows_of(g)
            for (o, t), (lo, hi) in zip(g.samples, windows):
                if not lo - 1e-9 <= t <= hi + 1e-9:
                    raise PkpdError(f"design {g.name!r}: sample at {t:g}" + ("" if o == "*" else f" ({o})")
                                    + f" is outside its window [{lo:g}, {hi:g}]")
            if self.min_spacing > 0:
                for o, ts in g.times.items():
                    gaps = np.diff(ts)
                    if gaps.size and gaps.min() < self.min_spacing - 1e-9:
                        raise PkpdError(f"design {g.name!r}: samples" + ("" if o == "*" else f" of {o}")
                                        + f" {gaps.min():g} apart, closer than min_spacing = {self.min_spacing:g}")
        if isinstance(self.windows, Mapping) or isinstance(self.doses, Mapping):
            names = [g.name for g in design.groups]
            for what in ("windows", "doses"):
                value = getattr(self, what)
                if isinstance(value, Mapping):
                    for k in value:
                        if k not in names:
                            raise PkpdError(f"DesignSpace {what}: no group {k!r} in the design."
                                            + did_you_mean(str(k), names))

    def windows_of(self, group: Group) -> list[tuple[float, float]]:
        """The window of every sample of a group (in :attr:`Group.samples` order)."""
        n = group.n_samples
        w = self.windows
        if isinstance(w, Mapping):
            w = w.get(group.name)
            w = None if w is None else _window_list(w, f"DesignSpace windows[{group.name!r}]")
        if w is None:
            times = [t for _, t in group.samples]
            return [(min(times), max(times))] * n
        if len(w) == 1:
            return list(w) * n
        if len(w) != n:
            raise PkpdError(f"DesignSpace windows of {group.name!r}: {len(w)} windows for {n} samples; give one "
                            "window for all samples or one per sample")
        return list(w)

    def dose_range(self, group: Group) -> tuple[float, float] | None:
        """The dose range of a group, or None when its doses are not optimised."""
        d = self.doses
        if isinstance(d, Mapping):
            d = d.get(group.name)
            return None if d is None else _pair(d, f"DesignSpace doses[{group.name!r}]", positive=True)
        return d


def _pair(value, where: str, positive: bool = False) -> tuple[float, float]:
    try:
        lo, hi = (float(x) for x in value)
    except (TypeError, ValueError):
        raise PkpdError(f"{where}: give (low, high); got {value!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi) or (positive and lo <= 0) or lo < 0:
        raise PkpdError(f"{where}: need finite {'0 < ' if positive else '0 <= '}low < high; got ({lo:g}, {hi:g})")
    return lo, hi


def _window_list(value, where: str) -> tuple[tuple[float, float], ...]:
    seq = list(value) if isinstance(value, Sequence | np.ndarray) else None
    if seq is not None and len(seq) == 2 and all(isinstance(x, numbers.Real) for x in seq):
        return (_pair(seq, where),)
    if not seq:
        raise PkpdError(f"{where}: give (low, high) or a list of (low, high); got {value!r}")
    return tuple(_pair(x, f"{where}[{i}]") for i, x in enumerate(seq))


def scale_regimen(regimen: Regimen, factor: float) -> Regimen:
    """The regimen with every amount multiplied by ``factor`` (infusions keep their duration).

    Examples
    --------
    >>> import pkpd
    >>> scale_regimen(pkpd.Regimen.single(pkpd.Dose(100, "mg")), 0.5)
    Regimen(1 dose of 50 mg at t=0 h, bolus)
    """
    items = []
    for a in regimen.administrations:
        dose = Dose(a.dose.amount * factor, a.dose.unit)
        if isinstance(a, Bolus):
            items.append(replace(a, dose=dose))
        elif isinstance(a, Infusion):
            items.append(replace(a, dose=dose, rate=None) if a.modelled is None else replace(a, dose=dose))
    return Regimen(items, time_unit=regimen.time_unit)
