"""Names at the boundary, vectors inside: the one place where named values become per-subject arrays."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import numpy as np

from .errors import BoundsWarning, PkpdError, did_you_mean


def named_arrays(given: Mapping[str, object] | None, known: Sequence[str], kind: str,
                 owner: str) -> dict[str, np.ndarray]:
    """Validate named per-subject values: known names, numbers, scalars or 1-D arrays, all finite.

    Raises
    ------
    PkpdError
        Not a mapping, unknown names (with close matches), non-numeric, more than 1-D or non-finite values (the
        message names the subject, 1-based).
    """
    if given is None:
        return {}
    if not isinstance(given, Mapping):
        raise PkpdError(f"{kind}s must be a mapping of name -> value; got {type(given).__name__}")
    out = {}
    for name, value in given.items():
        if name not in known:
            raise PkpdError(f"unknown {kind} {name!r} for model {owner!r}." + did_you_mean(str(name), known))
        try:
            arr = np.asarray(value, dtype=float)
        except (TypeError, ValueError):
            raise PkpdError(f"{kind} {name!r}: values must be numbers; got {value!r}") from None
        if arr.ndim > 1:
            raise PkpdError(f"{kind} {name!r}: give a number or a 1-D array (one value per subject); got shape "
                            f"{arr.shape}")
        bad = ~np.isfinite(arr.reshape(-1))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise PkpdError(f"{kind} {name!r}: values must be finite; subject {i + 1} has {arr.reshape(-1)[i]}")
        out[name] = arr
    return out


def broadcast_named(defaults: Mapping[str, float], given: Mapping[str, object] | None, kind: str,
                    owner: str) -> tuple[np.ndarray, int | None]:
    """Pack ``given`` values over ``defaults`` into an array (n, len(defaults)).

    Scalars apply to every subject; 1-D arrays give one value per subject. Returns the array (with n = 1 when
    every value is scalar) and the number of subjects implied by the arrays (None when all are scalar).

    Raises
    ------
    PkpdError
        As :func:`named_arrays`, plus arrays of different lengths and empty arrays.
    """
    names = list(defaults)
    columns = named_arrays(given, names, kind, owner)
    n = None
    for name, arr in columns.items():
        if arr.ndim == 1:
            if n is not None and arr.shape[0] != n:
                raise PkpdError(f"{kind} {name!r} has {arr.shape[0]} values but other inputs give {n} subjects")
            n = arr.shape[0]
            if n == 0:
                raise PkpdError(f"{kind} {name!r}: the array is empty (no subjects)")
    rows = n or 1
    out = np.empty((rows, len(names)))
    for j, name in enumerate(names):
        out[:, j] = columns.get(name, defaults[name])
    return out, n


def warn_outside_bounds(model, values: Mapping[str, object], *, stacklevel: int = 3) -> None:
    """One :class:`~pkpd.errors.BoundsWarning` naming every parameter whose value lies outside its bounds.

    Bounds are plausible ranges of a parameter's value (used as limits by fitting only). A scalar is checked as
    is; per-subject values (an array, e.g. a population drawn with variability) by their median, the population's
    typical value: individual values of a population are expected to spread beyond a range of typical values.
    """
    problems = []
    for name, value in values.items():
        try:
            p = model.parameter(name)
        except PkpdError:
            continue  # unknown names are reported by whoever uses them
        arr = np.asarray(value, dtype=float).reshape(-1)
        if arr.size == 0 or not np.all(np.isfinite(arr)):
            continue
        typical = float(arr[0]) if arr.size == 1 else float(np.median(arr))
        lo, hi = p.bounds
        if not lo <= typical <= hi:
            what = f"{name} = {typical:.4g}" if arr.size == 1 else f"{name} (median of {arr.size} values {typical:.4g})"
            unit = "" if p.unit == "1" else f" {p.unit}"
            problems.append(f"{what}{unit} is outside its plausible range [{lo:.4g}, {hi:.4g}]{unit}")
    if problems:
        warnings.warn(f"model {model.name!r}: " + "; ".join(problems) + ". Used as given: bounds are plausible "
                      "ranges, which only fitting enforces (widen them with model.with_bounds(...) to silence this).",
                      BoundsWarning, stacklevel=stacklevel)
