"""Names at the boundary, vectors inside: the one place where named values become per-subject arrays."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .errors import PkpdError, did_you_mean


def broadcast_named(defaults: Mapping[str, float], given: Mapping[str, object] | None, kind: str,
                    owner: str) -> tuple[np.ndarray, int | None]:
    """Pack ``given`` values over ``defaults`` into an array (n, len(defaults)).

    Scalars apply to every subject; 1-D arrays give one value per subject. Returns the array (with n = 1 when
    every value is scalar) and the number of subjects implied by the arrays (None when all are scalar).

    Raises
    ------
    PkpdError
        Unknown names (with close matches), non-numeric values, arrays of different lengths.
    """
    names = list(defaults)
    given = dict(given or {})
    if not isinstance(given, dict):
        raise PkpdError(f"{kind}s must be a mapping of name -> value; got {type(given).__name__}")
    n = None
    columns = {}
    for name, value in given.items():
        if name not in defaults:
            raise PkpdError(f"unknown {kind} {name!r} for model {owner!r}." + did_you_mean(str(name), names))
        try:
            arr = np.asarray(value, dtype=float)
        except (TypeError, ValueError):
            raise PkpdError(f"{kind} {name!r}: values must be numbers; got {value!r}") from None
        if arr.ndim > 1:
            raise PkpdError(f"{kind} {name!r}: give a number or a 1-D array (one value per subject); got shape "
                            f"{arr.shape}")
        if arr.ndim == 1:
            if n is not None and arr.shape[0] != n:
                raise PkpdError(f"{kind} {name!r} has {arr.shape[0]} values but other inputs give {n} subjects")
            n = arr.shape[0]
            if n == 0:
                raise PkpdError(f"{kind} {name!r}: the array is empty (no subjects)")
        columns[name] = arr
    rows = n or 1
    out = np.empty((rows, len(names)))
    for j, name in enumerate(names):
        out[:, j] = columns.get(name, defaults[name])
    return out, n
