"""Names at the boundary, vectors inside: the one place where named values become per-subject arrays."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .errors import PkpdError, did_you_mean


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
