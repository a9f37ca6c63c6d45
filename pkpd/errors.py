"""Exceptions raised by pkpd.

Every message follows one template::

    <where>: <rule>; got <value>. <how to fix>

``where`` is a file/section/key for model files, a row/column for data, a subject/time for simulations, a
parameter name for fits. The location is also kept on the exception as attributes, so programs can use it.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class PkpdError(Exception):
    """Base class of every error pkpd raises on purpose."""


class ModelFileError(PkpdError):
    """A model file (or an in-Python model declaration) is invalid.

    Attributes
    ----------
    file, section, key : str or None
        Where the problem is, e.g. ``models/msc_salvadori.toml``, ``parameters.k_c``, ``unit``.
    """

    def __init__(self, message: str, *, file: str | None = None, section: str | None = None, key: str | None = None):
        self.file, self.section, self.key = file, section, key
        where = _where(file, section, key)
        super().__init__(f"{where}: {message}" if where else message)


class UnitError(ModelFileError):
    """A unit is unknown, or an equation is not dimensionally consistent."""


class DosingError(PkpdError):
    """A dose or regimen is invalid (negative amount, zero duration, unknown target, missing weight...)."""


class DataError(PkpdError):
    """A dataset is invalid. ``row`` is 1-based as in the file (header excluded); ``column`` is its header name."""

    def __init__(self, message: str, *, row: int | None = None, column: str | None = None, file: str | None = None):
        self.row, self.column, self.file = row, column, file
        parts = [p for p in (file, f"row {row}" if row is not None else None,
                             f"column {column}" if column else None) if p]
        super().__init__(f"{', '.join(parts)}: {message}" if parts else message)


class SimulationError(PkpdError):
    """The ODE solver failed. ``subject`` is the subject index/ID, ``time`` the time reached."""

    def __init__(self, message: str, *, subject: object = None, time: float | None = None):
        self.subject, self.time = subject, time
        parts = [p for p in (f"subject {subject}" if subject is not None else None,
                             f"t = {time:g}" if time is not None else None) if p]
        super().__init__(f"{', '.join(parts)}: {message}" if parts else message)


class FitError(PkpdError):
    """A fit cannot be set up or evaluated (unknown parameter, impossible error model, no data...)."""


class PkpdWarning(UserWarning):
    """Base class of the warnings pkpd gives: something was done as asked, but deserves a second look."""


class BoundsWarning(PkpdWarning):
    """A parameter value lies outside the parameter's bounds.

    Bounds in a model file are *plausible ranges*: a value outside one is allowed everywhere (``with_parameters``,
    ``simulate(params=...)``, ``pkpd simulate --param``, scenarios) with one warning naming the parameter and its
    range; only fitting enforces bounds (estimates stay inside them, and a starting value outside is an error).
    """


class LargeTableWarning(PkpdWarning):
    """A table about to be built is large (see :meth:`pkpd.Simulation.to_dataframe`)."""


class OutputWarning(PkpdWarning):
    """A simulated output is NaN or infinite at a requested time although the solver succeeded (status 5)."""


class CacheWarning(PkpdWarning):
    """The cache folder cannot be used safely (wrong owner or mode, not writable): pkpd works in a private temporary
    cache instead."""


def _where(file: str | None, section: str | None, key: str | None) -> str:
    out = file or ""
    if section:
        out += f" [{section}]"
    if key:
        out += f" {key}"
    return out.strip()


def did_you_mean(name: str, candidates: Iterable[str], *, list_known: bool = True) -> str:
    """A ' Did you mean ...?' suffix naming close matches of ``name``, or a list of what is known (unless
    ``list_known`` is False: for a message that lists the candidates itself)."""
    candidates = sorted(set(candidates))  # each name once: a dose target and a state may share one
    same_case = [c for c in candidates if c.lower() == str(name).lower()]
    close = same_case or difflib.get_close_matches(name, candidates, n=3, cutoff=0.6)
    if close:
        return " Did you mean " + " or ".join(repr(c) for c in close) + "?"
    if list_known and len(candidates) <= 12:
        return " Known names: " + ", ".join(candidates) + "." if candidates else ""
    return ""
