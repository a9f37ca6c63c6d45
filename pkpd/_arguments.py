"""Checks of arguments that several layers take, so that one rule gives one message everywhere."""

from __future__ import annotations

import numbers

from .errors import PkpdError


def check_level(level, where: str, error: type[PkpdError] = PkpdError) -> float:
    """A confidence or prediction level: a real number strictly between 0 and 1, returned as a float.

    A bool, a text, a complex number, a ``Decimal`` or an array is refused (numpy's percentiles and scipy's quantile
    functions take no ``Fraction`` or ``Decimal``, so the level is handed on as a float).

    Parameters
    ----------
    level
        The coverage of an interval, e.g. 0.95 for a 95 % interval (dimensionless).
    where
        The function the level was given to, named in the message.
    error
        The error class the caller's layer raises (``FitError``, ``DataError``, ...).

    Raises
    ------
    PkpdError
        (or ``error``) naming ``where`` and the level given.

    Examples
    --------
    >>> from fractions import Fraction
    >>> check_level(Fraction(9, 10), "predict")
    0.9
    >>> check_level(1.0, "nca_sparse")
    Traceback (most recent call last):
    ...
    pkpd.errors.PkpdError: nca_sparse: level must be a number in (0, 1), e.g. 0.95; got 1.0
    """
    if isinstance(level, bool) or not isinstance(level, numbers.Real) or not 0 < level < 1:
        raise error(f"{where}: level must be a number in (0, 1), e.g. 0.95; got {level!r}")
    return float(level)
