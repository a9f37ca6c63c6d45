"""Doses and dosing regimens: what is given, when, how fast and where.

A :class:`Regimen` is an immutable, time-sorted tuple of administrations, each a :class:`Bolus` (instantaneous)
or an :class:`Infusion` (zero-order), carrying a :class:`Dose` (an amount with its unit, possibly per kg of body
weight). All times, durations and rates of a regimen are in its ``time_unit``.

This module knows nothing about models: a dose target is only a name (``None`` means the model's default
target); the simulator resolves it, converts units and scales per-kg doses by each subject's weight.

Examples
--------
>>> from pkpd.dosing import Dose, Regimen
>>> Regimen.every(72, "h", count=8, dose=Dose(2e6, "cell/kg"))
Regimen(8 doses of 2e+06 cell/kg every 72 h from t=0 h, bolus)
"""

from __future__ import annotations

import html
import itertools
import math
import numbers
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from pkpd.errors import DosingError, did_you_mean
from pkpd.units import UnitCheckError, check_unit_text

__all__ = ["Bolus", "Dose", "Infusion", "Regimen"]

# Length of each time unit in minutes: integers, so that conversions multiply then divide by exact numbers.
_MINUTES = {"min": 1, "h": 60, "day": 1440, "week": 10080}
_TIME_UNIT_ALIASES = {
    "min": "min", "minutes": "min",
    "h": "h", "hour": "h", "hours": "h",
    "day": "day", "d": "day", "days": "day",
    "week": "week", "weeks": "week",
}
_MODELLED = ("rate", "duration")
# Relative tolerance within which a given duration agrees with amount / rate (see Infusion).
_RATE_DURATION_RTOL = 1e-9
_PER_KG = re.compile(r"\s*/\s*kg\s*$")
#: Most administrations one regimen may hold (as NONMEM's limit on ADDL): a larger one is refused before it is built.
MAX_DOSES = 100_000


# ---------------------------------------------------------------------------------------------------------------
# small helpers (validation and formatting)


def _show(value: object) -> str:
    """Show a value in an error message: numbers without a trailing '.0', anything else as repr with its type."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        x = float(value)
        if math.isfinite(x) and x.is_integer() and abs(x) < 1e15:
            return str(int(x))
        return repr(x)
    return f"{value!r} ({type(value).__name__})"


def _g(x: float) -> str:
    """Concise number for reprs (6 significant digits)."""
    return f"{x:g}"


def _number(where: str, name: str, value: object, *, positive: bool, fix: str) -> float:
    """Return ``value`` as a float, or raise DosingError if it is not a finite number >= 0 (> 0 if positive)."""
    rule = f"{name} must be a finite number {'> 0' if positive else '>= 0'}"
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise DosingError(f"{where}: {rule}; got {_show(value)}. {fix}")
    x = float(value)
    if not math.isfinite(x) or x < 0 or (positive and x == 0):
        raise DosingError(f"{where}: {rule}; got {_show(value)}. {fix}")
    return x


def _check_target(where: str, target: object) -> None:
    if target is None:
        return
    if not isinstance(target, str) or not target.strip():
        raise DosingError(f"{where}: target must be None (the model's default target) or a dose-target name; "
                          f"got {target!r}. Give the name of a dose target declared in the model, e.g. 'iv'.")
    if target != target.strip():
        raise DosingError(f"{where}: target must not have surrounding spaces; got {target!r}. "
                          f"Write {target.strip()!r}.")


def _check_dose(where: str, dose: object) -> None:
    if not isinstance(dose, Dose):
        raise DosingError(f"{where}: dose must be a Dose; got {dose!r} ({type(dose).__name__}). "
                          "Give an amount with its unit, e.g. Dose(2e6, 'cell/kg') or Dose(100, 'mg').")


def _canonical_time_unit(where: str, unit: object) -> str:
    if isinstance(unit, str) and unit in _TIME_UNIT_ALIASES:
        return _TIME_UNIT_ALIASES[unit]
    known = ", ".join(repr(u) for u in _MINUTES)
    hint = did_you_mean(unit, _TIME_UNIT_ALIASES) if isinstance(unit, str) else ""
    raise DosingError(f"{where}: time unit must be one of {known}; got {unit!r}.{hint or ' Use one of those.'}")


def _where(kind: str, time: float, time_unit: str | None) -> str:
    return f"{kind} at t={_show(time)}" + (f" {time_unit}" if time_unit else "")


def _start_time(where: str, name: str, time: object, time_unit: str | None) -> float:
    in_unit = f"in {time_unit}" if time_unit else "in the regimen's time unit"
    return _number(where, name, time, positive=False, fix=f"Give the time from t=0 {in_unit}.")


def _infusion_duration(where: str, dose: Dose, duration: object, rate: object, modelled: object,
                       time_unit: str | None) -> float | None:
    """Check the timing options of an infusion; return its duration (None when the model decides).

    The single place where infusion rules live: Infusion uses it, and so do the Regimen constructors, which know
    the time unit and can therefore name it in the message.
    """
    in_unit = f" in {time_unit}" if time_unit else " (in the regimen's time unit)"
    rate_unit = f"{dose.unit}/{time_unit}" if time_unit else f"{dose.unit} per time unit"
    if modelled is not None:
        if modelled not in _MODELLED:
            hint = did_you_mean(modelled, _MODELLED) if isinstance(modelled, str) else ""
            hint = hint or " Use modelled='rate' or modelled='duration' (NONMEM RATE=-1 / RATE=-2)."
            raise DosingError(f"{where}: modelled must be None, 'rate' or 'duration'; got {modelled!r}.{hint}")
        given = [f"{name}={_show(v)}" for name, v in (("duration", duration), ("rate", rate)) if v is not None]
        if given:
            raise DosingError(f"{where}: with modelled={modelled!r} the model's dose target sets the {modelled}, "
                              f"so duration and rate must be None; got {' and '.join(given)}. "
                              "Remove them, or drop modelled to give the timing here.")
        return None
    if duration is None and rate is None:
        raise DosingError(f"{where}: an infusion needs exactly one of duration, rate or modelled; got none of them. "
                          f"Give duration=...{in_unit} or rate=... [{rate_unit}], "
                          "or use Bolus for an instantaneous dose.")
    if duration is not None:
        duration = _number(where, "duration", duration, positive=True,
                           fix=f"Give a positive duration{in_unit}, or use Bolus for an instantaneous dose.")
    if rate is None:
        return duration
    rate = _number(where, "rate", rate, positive=True,
                   fix=f"Give a positive rate [{rate_unit}], or use Bolus for an instantaneous dose.")
    if dose.amount == 0:
        raise DosingError(f"{where}: rate cannot set the duration of a zero dose (duration = amount / rate "
                          f"is 0); got amount 0 {dose.unit} with rate={_show(rate)}. "
                          "Give duration instead of rate for a zero-amount infusion.")
    from_rate = dose.amount / rate
    if not math.isfinite(from_rate) or from_rate <= 0:
        raise DosingError(f"{where}: duration = amount / rate must be a finite number > 0; got "
                          f"{_show(dose.amount)} / {_show(rate)} = {_show(from_rate)}. "
                          "Give a rate of a similar scale to the amount, or give duration instead.")
    # Both may be given only when they agree: this is what dataclasses.replace passes back for a rate infusion.
    if duration is not None and not math.isclose(duration, from_rate, rel_tol=_RATE_DURATION_RTOL):
        raise DosingError(f"{where}: give only one of duration or rate; got duration={_show(duration)} and "
                          f"rate={_show(rate)} (which implies duration {_show(from_rate)}). "
                          "Drop one of them: duration = amount / rate.")
    return from_rate


# ---------------------------------------------------------------------------------------------------------------
# public classes


@dataclass(frozen=True)
class Dose:
    """An amount with its unit, e.g. ``Dose(2e6, "cell/kg")``, ``Dose(100, "mg")`` or ``Dose(65e6, "cells")``.

    Parameters
    ----------
    amount : float [unit]
        How much is given; finite and >= 0 (0 is a zero dose, e.g. a placebo arm).
    unit : str
        The amount's unit, as the model's dose target expects it (the simulator converts and checks it). A unit
        ending in ``/kg`` (spaces ignored, e.g. ``"mg / kg"``) is a per-kg dose: it is multiplied by each
        subject's body weight. Surrounding spaces are removed.

    Attributes
    ----------
    per_kg : bool
        Whether the dose is per kg of body weight.
    base_unit : str
        The unit without its ``/kg`` part (``"cell"`` for ``"cell/kg"``); the unit itself when not per kg.

    Raises
    ------
    DosingError
        If the amount is negative, NaN, infinite or not a number, or the unit is empty.

    See Also
    --------
    Bolus, Infusion, Regimen

    Examples
    --------
    >>> dose = Dose(2e6, "cell/kg")
    >>> dose.per_kg, dose.base_unit
    (True, 'cell')
    >>> dose.amount_for(70.0)
    140000000.0
    >>> Dose(100, "mg").amount_for(70.0)
    100.0
    """

    amount: float
    unit: str

    def __post_init__(self) -> None:
        amount = _number("Dose", "amount", self.amount, positive=False,
                         fix="Give the amount as a finite number >= 0 in the dose unit.")
        if not isinstance(self.unit, str) or not self.unit.strip():
            raise DosingError(f"Dose: unit must be a non-empty string; got {self.unit!r}. "
                              "Give the unit of the amount, e.g. 'mg', 'cells' or 'cell/kg'.")
        unit = self.unit.strip()
        if not _PER_KG.sub("", unit):
            raise DosingError(f"Dose: unit must name what is dosed per kg; got {unit!r}. "
                              "Write e.g. 'mg/kg' or 'cell/kg'.")
        try:
            check_unit_text(unit)  # before any of it reaches pint (a huge power in a unit hangs it)
        except UnitCheckError as err:
            raise DosingError(f"Dose: {err}. Give the unit of the amount, e.g. 'mg', 'cells' or 'cell/kg'.") from None
        object.__setattr__(self, "amount", amount)
        object.__setattr__(self, "unit", unit)

    @property
    def per_kg(self) -> bool:
        """Whether the amount is per kg of body weight (the unit ends in ``/kg``)."""
        return "".join(self.unit.split()).endswith("/kg")

    @property
    def base_unit(self) -> str:
        """The unit without its ``/kg`` part (``"mg"`` for ``"mg/kg"``); the unit itself when not per kg."""
        return _PER_KG.sub("", self.unit) if self.per_kg else self.unit

    def amount_for(self, weight_kg: float | None = None) -> float:
        """The amount given to one subject, in :attr:`base_unit`.

        Parameters
        ----------
        weight_kg : float [kg], optional
            The subject's body weight, finite and > 0. Required for per-kg doses; checked (and otherwise
            unused) for absolute doses.

        Returns
        -------
        float [base_unit]
            ``amount * weight_kg`` for a per-kg dose, else ``amount``.

        Raises
        ------
        DosingError
            If the weight is given but is not a finite number > 0, or is missing for a per-kg dose.

        Examples
        --------
        >>> Dose(1e6, "cell/kg").amount_for(80)
        80000000.0
        """
        where = f"Dose {_g(self.amount)} {self.unit}"
        if weight_kg is None:
            if self.per_kg:
                raise DosingError(f"{where}: a per-kg dose needs a body weight; got weight_kg=None. "
                                  "Give the subject's weight in kg, or use an absolute unit such as "
                                  f"{self.base_unit!r}.")
            return self.amount
        weight = _number(where, "weight_kg", weight_kg, positive=True,
                         fix="Give the subject's body weight in kg.")
        return self.amount * weight if self.per_kg else self.amount


@dataclass(frozen=True)
class Bolus:
    """An instantaneous dose.

    Parameters
    ----------
    time : float [regimen time unit]
        When the dose is given; finite and >= 0.
    dose : Dose
        What is given.
    target : str or None
        Name of the model's dose target; None means the model's default target.

    Raises
    ------
    DosingError
        If the time is negative or not finite, ``dose`` is not a :class:`Dose`, or the target is not a name.

    See Also
    --------
    Infusion, Regimen

    Examples
    --------
    >>> Bolus(24, Dose(100, "mg"))
    Bolus(time=24.0, dose=Dose(amount=100.0, unit='mg'), target=None)
    """

    time: float
    dose: Dose
    target: str | None = None

    def __post_init__(self) -> None:
        time = _start_time("Bolus", "time", self.time, None)
        where = _where("Bolus", time, None)
        _check_dose(where, self.dose)
        _check_target(where, self.target)
        object.__setattr__(self, "time", time)


@dataclass(frozen=True)
class Infusion:
    """A zero-order infusion: the dose enters at a constant rate from ``time`` to ``time + duration``.

    Give exactly one of ``duration``, ``rate`` or ``modelled``. After construction ``duration`` is always set,
    computed as ``amount / rate`` when a rate was given, except for a modelled infusion (then it is None).

    Parameters
    ----------
    time : float [regimen time unit]
        Start of the infusion; finite and >= 0.
    dose : Dose
        The total amount infused.
    duration : float [regimen time unit], optional
        Length of the infusion; finite and > 0.
    rate : float [dose unit / regimen time unit], optional
        Infusion rate; finite and > 0 (per kg and time unit for a per-kg dose). A zero dose cannot be given by
        rate (its duration would be undefined). ``duration`` may be given with ``rate`` only when it equals
        ``amount / rate`` (as ``dataclasses.replace`` does).
    target : str or None
        Name of the model's dose target; None means the model's default target.
    modelled : {None, "rate", "duration"}
        The model's dose-target expression sets the rate or the duration (NONMEM ``RATE=-1`` / ``RATE=-2``).

    Raises
    ------
    DosingError
        If a time, duration or rate is out of range, both or none of the timing options are given, ``modelled``
        is not one of the allowed values, or ``dose`` is not a :class:`Dose`.

    See Also
    --------
    Bolus, Regimen

    Examples
    --------
    >>> Infusion(0, Dose(100, "mg"), rate=50).duration
    2.0
    >>> Infusion(0, Dose(65e6, "cells"), modelled="duration").duration is None
    True
    """

    time: float
    dose: Dose
    duration: float | None = None
    rate: float | None = None
    target: str | None = None
    modelled: str | None = None

    def __post_init__(self) -> None:
        time = _start_time("Infusion", "time", self.time, None)
        where = _where("Infusion", time, None)
        _check_dose(where, self.dose)
        _check_target(where, self.target)
        duration = _infusion_duration(where, self.dose, self.duration, self.rate, self.modelled, None)
        object.__setattr__(self, "time", time)
        object.__setattr__(self, "duration", duration)
        if self.rate is not None:
            object.__setattr__(self, "rate", float(self.rate))


def _administration(where: str, name: str, time: object, dose: Dose, duration: object, rate: object, target: object,
                    time_unit: str) -> Bolus | Infusion:
    """Build a Bolus (no duration or rate) or an Infusion, with messages that name the time unit."""
    kind = "Bolus" if duration is None and rate is None else "Infusion"
    time = _start_time(where, name, time, time_unit)
    _check_target(_where(kind, time, time_unit), target)
    if kind == "Bolus":
        return Bolus(time, dose, target)
    _infusion_duration(_where(kind, time, time_unit), dose, duration, rate, None, time_unit)
    return Infusion(time, dose, duration=duration, rate=rate, target=target)


def _converted(adm: Bolus | Infusion, minutes_from: int, minutes_to: int) -> Bolus | Infusion:
    """The administration with its times in another unit (multiply, then divide, by exact integers)."""
    time = adm.time * minutes_from / minutes_to
    if isinstance(adm, Bolus):
        return Bolus(time, adm.dose, adm.target)
    if adm.modelled is not None:
        return Infusion(time, adm.dose, target=adm.target, modelled=adm.modelled)
    if adm.rate is not None:  # a rate infusion: convert the rate and let the duration follow from it
        return Infusion(time, adm.dose, rate=adm.rate * minutes_to / minutes_from, target=adm.target)
    return Infusion(time, adm.dose, duration=adm.duration * minutes_from / minutes_to, target=adm.target)


@dataclass(frozen=True)
class Regimen:
    """A dosing regimen: administrations sorted by time, all in one time unit.

    Build one with :meth:`single`, :meth:`every`, :meth:`at` or :meth:`none`, combine regimens with ``+``, or
    pass any iterable of :class:`Bolus` and :class:`Infusion`.

    Parameters
    ----------
    administrations : iterable of Bolus or Infusion
        The doses. Stored as a tuple sorted by time; administrations at the same time keep their given order.
    time_unit : {"min", "h", "day", "week"}
        The unit of every time, duration and rate in the regimen. ``"minutes"``, ``"hour"``, ``"hours"``,
        ``"d"``, ``"days"`` and ``"weeks"`` are accepted and stored in the canonical spelling.

    Attributes
    ----------
    times : ndarray, shape (n_administrations,) [time_unit]
        Start time of each administration.

    Raises
    ------
    DosingError
        If an administration is not a Bolus or Infusion, or the time unit is unknown.

    See Also
    --------
    Dose, Bolus, Infusion

    Examples
    --------
    >>> regimen = Regimen([Bolus(24, Dose(100, "mg")), Bolus(0, Dose(50, "mg"))], time_unit="hours")
    >>> regimen.times.tolist(), regimen.time_unit
    ([0.0, 24.0], 'h')
    >>> regimen.total_amount()
    {'mg': 150.0}
    >>> (regimen + Regimen.single(Dose(1, "mg"), at=2, time_unit="day")).times.tolist()
    [0.0, 24.0, 48.0]
    """

    administrations: tuple[Bolus | Infusion, ...]
    time_unit: str = "h"

    def __post_init__(self) -> None:
        time_unit = _canonical_time_unit("Regimen", self.time_unit)
        items = self.administrations
        if isinstance(items, (Bolus, Infusion, str, bytes)) or not isinstance(items, Iterable):
            raise DosingError(f"Regimen: administrations must be an iterable of Bolus or Infusion; got "
                              f"{_show(items)}. Wrap a single administration in a list, or use Regimen.single.")
        items = tuple(itertools.islice(items, MAX_DOSES + 1))
        if len(items) > MAX_DOSES:
            raise DosingError(f"Regimen: more than {MAX_DOSES:,} administrations; a regimen holds at most "
                              f"{MAX_DOSES:,} doses (as NONMEM's ADDL). Shorten the regimen or simulate in pieces.")
        for i, adm in enumerate(items):
            if not isinstance(adm, (Bolus, Infusion)):
                raise DosingError(f"Regimen: administrations[{i}] must be a Bolus or an Infusion; got {_show(adm)}. "
                                  "Build it with Bolus(time, dose) or Infusion(time, dose, duration=...).")
        object.__setattr__(self, "administrations", tuple(sorted(items, key=lambda a: a.time)))
        object.__setattr__(self, "time_unit", time_unit)

    # -- constructors -------------------------------------------------------------------------------------------

    @classmethod
    def single(cls, dose: Dose, at: float = 0.0, *, duration: float | None = None, rate: float | None = None,
               target: str | None = None, time_unit: str = "h") -> Regimen:
        """One dose: a bolus, or an infusion when ``duration`` or ``rate`` is given.

        Parameters
        ----------
        dose : Dose
            What is given.
        at : float [time_unit]
            When it is given; >= 0.
        duration : float [time_unit], optional
            Infusion duration, > 0.
        rate : float [dose unit / time_unit], optional
            Infusion rate, > 0 (give duration or rate, not both).
        target : str or None
            Dose-target name; None for the model's default.
        time_unit : {"min", "h", "day", "week"}
            Unit of ``at``, ``duration`` and ``rate``.

        Returns
        -------
        Regimen

        Examples
        --------
        >>> Regimen.single(Dose(100, "mg"), at=1, duration=0.5)
        Regimen(1 dose of 100 mg at t=1 h, infusion over 0.5 h)
        """
        unit = _canonical_time_unit("Regimen.single", time_unit)
        _check_dose("Regimen.single", dose)
        return cls((_administration("Regimen.single", "at", at, dose, duration, rate, target, unit),), unit)

    @classmethod
    def every(cls, interval: float, unit: str = "h", *, count: int, dose: Dose, start: float = 0.0,
              duration: float | None = None, rate: float | None = None, target: str | None = None) -> Regimen:
        """``count`` equal doses, one every ``interval``, from ``start``.

        Parameters
        ----------
        interval : float [unit]
            Time between the starts of consecutive doses; > 0 when ``count`` > 1.
        unit : {"min", "h", "day", "week"}
            Time unit of ``interval``, ``start``, ``duration`` and ``rate``, and of the regimen.
        count : int
            Number of doses, >= 1.
        dose : Dose
            What each administration gives.
        start : float [unit]
            Time of the first dose; >= 0.
        duration, rate : float, optional
            Make each dose an infusion of this duration [unit] or rate [dose unit / unit].
        target : str or None
            Dose-target name; None for the model's default.

        Returns
        -------
        Regimen
            Doses at ``start + k * interval`` for ``k = 0 .. count - 1``.

        Examples
        --------
        >>> regimen = Regimen.every(1, "week", count=3, dose=Dose(1e6, "cell/kg"), start=2)
        >>> regimen.times.tolist()
        [2.0, 3.0, 4.0]
        >>> regimen
        Regimen(3 doses of 1e+06 cell/kg every 1 week from t=2 week, bolus)
        """
        where = "Regimen.every"
        time_unit = _canonical_time_unit(where, unit)
        if not isinstance(count, numbers.Integral) or isinstance(count, bool) or count < 1:
            raise DosingError(f"{where}: count must be an integer >= 1; got {count!r:.40} ({type(count).__name__}). "
                              "Give the number of doses, e.g. count=8.")
        if count > MAX_DOSES:
            raise DosingError(f"{where}: count must be at most {MAX_DOSES:,} (the most doses a regimen holds, as "
                              f"NONMEM's ADDL); got {count:,}. Shorten the regimen or simulate in pieces.")
        if not isinstance(interval, numbers.Real) or isinstance(interval, bool) or not math.isfinite(interval):
            raise DosingError(f"{where}: interval must be a finite number; got {_show(interval)}. "
                              f"Give the time between doses in {time_unit}.")
        if count > 1 and interval <= 0:
            raise DosingError(f"{where}: interval must be > 0 when count > 1; got {_show(interval)}. "
                              f"Give the time between doses in {time_unit}, or use Regimen.at for doses "
                              "given together.")
        start = _start_time(where, "start", start, time_unit)
        _check_dose(where, dose)
        with np.errstate(over="ignore"):  # a time past the float range is refused below, naming its formula
            times = start + np.arange(int(count)) * float(interval)
        return cls(tuple(_administration(where, "start + k * interval", float(t), dose, duration, rate, target,
                                         time_unit) for t in times), time_unit)

    @classmethod
    def at(cls, times: Iterable[float], dose: Dose, *, duration: float | None = None, rate: float | None = None,
           target: str | None = None, time_unit: str = "h") -> Regimen:
        """The same dose at each of the given times.

        Parameters
        ----------
        times : iterable of float [time_unit]
            Start times, each >= 0, in any order; at least one.
        dose : Dose
            What each administration gives.
        duration, rate : float, optional
            Make each dose an infusion of this duration [time_unit] or rate [dose unit / time_unit].
        target : str or None
            Dose-target name; None for the model's default.
        time_unit : {"min", "h", "day", "week"}
            Unit of the times, duration and rate.

        Returns
        -------
        Regimen

        Examples
        --------
        >>> Regimen.at([0, 4, 24], Dose(65e6, "cells"), time_unit="day")
        Regimen(3 doses, day: t=0: 6.5e+07 cells bolus; t=4: 6.5e+07 cells bolus; t=24: 6.5e+07 cells bolus)
        """
        where = "Regimen.at"
        unit = _canonical_time_unit(where, time_unit)
        if isinstance(times, (str, bytes)) or not isinstance(times, Iterable):
            raise DosingError(f"{where}: times must be a list of numbers; got {_show(times)}. "
                              "Write times=[t] for one dose, or use Regimen.single.")
        if isinstance(times, np.ndarray):
            if times.ndim != 1:
                raise DosingError(f"{where}: times must be one-dimensional; got an array of shape {times.shape}. "
                                  "Give a flat list of start times.")
            times = times[: MAX_DOSES + 1].tolist()
        times = list(itertools.islice(times, MAX_DOSES + 1))
        if len(times) > MAX_DOSES:
            raise DosingError(f"{where}: more than {MAX_DOSES:,} times; a regimen holds at most {MAX_DOSES:,} doses "
                              "(as NONMEM's ADDL). Shorten the regimen or simulate in pieces.")
        if not times:
            raise DosingError(f"{where}: times must contain at least one time; got []. "
                              "Use Regimen.none() for a regimen without doses.")
        _check_dose(where, dose)
        return cls(tuple(_administration(where, f"times[{i}]", t, dose, duration, rate, target, unit)
                         for i, t in enumerate(times)), unit)

    @classmethod
    def none(cls, time_unit: str = "h") -> Regimen:
        """A regimen without doses, to simulate the untreated baseline.

        Examples
        --------
        >>> Regimen.none()
        Regimen(no doses, time unit h)
        >>> len(Regimen.none())
        0
        """
        return cls((), time_unit)

    # -- combining and converting -------------------------------------------------------------------------------

    def __add__(self, other: object) -> Regimen:
        """All administrations of both regimens, in this regimen's time unit."""
        if not isinstance(other, Regimen):
            return NotImplemented
        return Regimen(self.administrations + other.in_time_unit(self.time_unit).administrations, self.time_unit)

    def in_time_unit(self, unit: str) -> Regimen:
        """The same regimen with every time, duration and rate converted to ``unit``.

        Parameters
        ----------
        unit : {"min", "h", "day", "week"}

        Returns
        -------
        Regimen

        Examples
        --------
        >>> Regimen.single(Dose(100, "mg"), at=2, rate=50).in_time_unit("min")
        Regimen(1 dose of 100 mg at t=120 min, infusion at 0.833333 mg/min (over 120 min))
        """
        unit = _canonical_time_unit("Regimen.in_time_unit", unit)
        if unit == self.time_unit:
            return self
        m_from, m_to = _MINUTES[self.time_unit], _MINUTES[unit]
        return Regimen(tuple(_converted(a, m_from, m_to) for a in self.administrations), unit)

    # -- reading --------------------------------------------------------------------------------------------------

    @property
    def times(self) -> np.ndarray:
        """Start time of each administration, shape (n_administrations,) [time_unit] (a new array)."""
        return np.array([a.time for a in self.administrations], dtype=float)

    def __len__(self) -> int:
        return len(self.administrations)

    def __iter__(self) -> Iterator[Bolus | Infusion]:
        return iter(self.administrations)

    def total_amount(self) -> dict[str, float]:
        """Summed amounts per dose unit, in order of first appearance; per-kg units are kept separate.

        Returns
        -------
        dict of str to float
            ``{unit: total amount [unit]}``; empty for a regimen without doses.

        Examples
        --------
        >>> (Regimen.every(24, count=3, dose=Dose(1e6, "cell/kg")) + Regimen.single(Dose(5, "mg"))).total_amount()
        {'cell/kg': 3000000.0, 'mg': 5.0}
        """
        amounts: dict[str, list[float]] = {}
        for adm in self.administrations:
            amounts.setdefault(adm.dose.unit, []).append(adm.dose.amount)
        return {unit: math.fsum(values) for unit, values in amounts.items()}

    # -- display --------------------------------------------------------------------------------------------------

    def _how(self, adm: Bolus | Infusion) -> str:
        """How one administration is given, e.g. 'bolus' or 'infusion over 2 h'."""
        if isinstance(adm, Bolus):
            text = "bolus"
        elif adm.modelled is not None:
            text = f"infusion, modelled {adm.modelled}"
        elif adm.rate is not None:
            text = f"infusion at {_g(adm.rate)} {adm.dose.unit}/{self.time_unit} (over {_g(adm.duration)} " \
                   f"{self.time_unit})"
        else:
            text = f"infusion over {_g(adm.duration)} {self.time_unit}"
        return text + (f" into {adm.target!r}" if adm.target is not None else "")

    def _interval(self) -> float | None:
        """The common interval when all administrations are alike and evenly spaced (>= 2 of them), else None."""
        items = self.administrations
        if len(items) < 2:
            return None
        first = items[0]
        same = (type(first), first.dose, getattr(first, "duration", None), getattr(first, "rate", None),
                getattr(first, "modelled", None), first.target)
        for adm in items[1:]:
            if (type(adm), adm.dose, getattr(adm, "duration", None), getattr(adm, "rate", None),
                    getattr(adm, "modelled", None), adm.target) != same:
                return None
        steps = np.diff(self.times)
        if steps[0] <= 0 or not np.allclose(steps, steps[0], rtol=1e-9, atol=1e-12 * abs(self.times[-1])):
            return None
        return float(steps[0])

    def __repr__(self) -> str:
        items = self.administrations
        unit = self.time_unit
        if not items:
            return f"Regimen(no doses, time unit {unit})"
        first = items[0]
        amount = f"{_g(first.dose.amount)} {first.dose.unit}"
        if len(items) == 1:
            return f"Regimen(1 dose of {amount} at t={_g(first.time)} {unit}, {self._how(first)})"
        interval = self._interval()
        if interval is not None:
            return (f"Regimen({len(items)} doses of {amount} every {_g(interval)} {unit} "
                    f"from t={_g(first.time)} {unit}, {self._how(first)})")

        def one(adm: Bolus | Infusion) -> str:
            return f"t={_g(adm.time)}: {_g(adm.dose.amount)} {adm.dose.unit} {self._how(adm)}"

        shown = [one(a) for a in items] if len(items) <= 6 else [*map(one, items[:3]), "...", *map(one, items[-2:])]
        return f"Regimen({len(items)} doses, {unit}: " + "; ".join(shown) + ")"

    def _repr_html_(self) -> str:
        unit = html.escape(self.time_unit)
        head = (f"<tr><th>time [{unit}]</th><th>type</th><th>amount</th><th>unit</th>"
                f"<th>duration [{unit}]</th><th>target</th></tr>")
        rows = []
        for adm in self.administrations:
            if isinstance(adm, Bolus):
                kind, duration = "bolus", ""
            elif adm.modelled is not None:
                kind, duration = "infusion", f"modelled {adm.modelled}"
            else:
                kind = "infusion"
                # the rate's unit, as in __repr__: a bare number would not say it is per hour (or per kg)
                rate = f" (rate {_g(adm.rate)} {adm.dose.unit}/{self.time_unit})" if adm.rate is not None else ""
                duration = _g(adm.duration) + rate
            target = "default" if adm.target is None else adm.target
            cells = (_g(adm.time), kind, _g(adm.dose.amount), adm.dose.unit, duration, target)
            rows.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
        caption = f"Regimen: {len(self)} dose{'s' if len(self) != 1 else ''}, time unit {unit}"
        return (f"<table><caption>{html.escape(caption)}</caption><thead>{head}</thead>"
                f"<tbody>{''.join(rows)}</tbody></table>")
