"""Truncated Taylor jets: values with their first, second and third derivatives, in numpy (private).

A :class:`Jet` holds a batch of values ``v`` (any shape ``S``) and their derivatives with respect to ``d``
coordinates: ``d1`` (S + (d,)), ``d2`` (S + (d, d)) and, at order 3, ``d3`` (S + (d, d, d)). Sums, products,
quotients and smooth scalar functions of jets follow the (multivariate) chain rule exactly, so the derivatives of
an objective built from them are exact up to the order carried. Entries of the inputs that are unknown (e.g. a
second derivative the sensitivity system does not compute) may be left at zero: entry ``(a, b, c)`` of a result
depends only on the entries of the inputs whose indices are sub-multisets of ``{a, b, c}``, so such entries only
spoil results that are never read.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class Jet:
    __array_ufunc__ = None  # numpy defers to the jet's own operators (array - jet is a jet, not an object array)

    v: np.ndarray
    d1: np.ndarray
    d2: np.ndarray
    d3: np.ndarray | None = None

    @property
    def order(self) -> int:
        return 3 if self.d3 is not None else 2

    def __add__(self, other):
        if isinstance(other, Jet):
            return Jet(self.v + other.v, self.d1 + other.d1, self.d2 + other.d2,
                       None if self.d3 is None or other.d3 is None else self.d3 + other.d3)
        return Jet(self.v + other, self.d1, self.d2, self.d3)

    def __radd__(self, other):
        return self.__add__(other)

    def __neg__(self):
        return Jet(-self.v, -self.d1, -self.d2, None if self.d3 is None else -self.d3)

    def __sub__(self, other):
        return self + (-other)

    def __rsub__(self, other):
        return (-self) + other

    def __mul__(self, other):
        if not isinstance(other, Jet):
            c = np.asarray(other, dtype=float)
            return Jet(self.v * c, self.d1 * c[..., None], self.d2 * c[..., None, None],
                       None if self.d3 is None else self.d3 * c[..., None, None, None])
        return product(self, other)

    def __rmul__(self, other):
        return self.__mul__(other)

    def __truediv__(self, other):
        if isinstance(other, Jet):
            return product(self, reciprocal(other))
        return self * (1.0 / np.asarray(other, dtype=float))


def constant(v: np.ndarray, d: int, order: int = 2) -> Jet:
    """A jet without derivatives."""
    v = np.asarray(v, dtype=float)
    return Jet(v, np.zeros(v.shape + (d,)), np.zeros(v.shape + (d, d)),
               np.zeros(v.shape + (d, d, d)) if order >= 3 else None)


def variable(v: np.ndarray, d: int, index: int, order: int = 2) -> Jet:
    """Coordinate ``index`` itself (derivative 1 in its own direction)."""
    j = constant(v, d, order)
    j.d1[..., index] = 1.0
    return j


def _sym3(a2: np.ndarray, b1: np.ndarray) -> np.ndarray:
    """a_ab b_c + a_ac b_b + a_bc b_a."""
    return (a2[..., :, :, None] * b1[..., None, None, :] + a2[..., :, None, :] * b1[..., None, :, None]
            + a2[..., None, :, :] * b1[..., :, None, None])


def product(x: Jet, y: Jet) -> Jet:
    """x * y with all derivatives (Leibniz)."""
    xv, yv = x.v[..., None], y.v[..., None]
    d1 = x.d1 * yv + xv * y.d1
    outer = x.d1[..., :, None] * y.d1[..., None, :]
    d2 = x.d2 * yv[..., None] + outer + np.swapaxes(outer, -1, -2) + xv[..., None] * y.d2
    d3 = None
    if x.d3 is not None and y.d3 is not None:
        d3 = (x.d3 * yv[..., None, None] + _sym3(x.d2, y.d1) + _sym3(y.d2, x.d1) + xv[..., None, None] * y.d3)
    return Jet(x.v * y.v, d1, d2, d3)


def apply(x: Jet, f0, f1, f2, f3=None) -> Jet:
    """g(x) for a scalar function g with derivatives f1, f2, f3 at x.v (arrays shaped like x.v)."""
    f1e, f2e = np.asarray(f1)[..., None], np.asarray(f2)[..., None]
    d1 = f1e * x.d1
    outer = x.d1[..., :, None] * x.d1[..., None, :]
    d2 = f1e[..., None] * x.d2 + f2e[..., None] * outer
    d3 = None
    if x.d3 is not None:
        f3e = np.asarray(f3)[..., None, None, None]
        d3 = (f1e[..., None, None] * x.d3 + f2e[..., None, None] * _sym3(x.d2, x.d1)
              + f3e * outer[..., :, :, None] * x.d1[..., None, None, :])
    return Jet(np.asarray(f0, dtype=float) * np.ones_like(x.v), d1, d2, d3)


def reciprocal(x: Jet) -> Jet:
    with np.errstate(all="ignore"):
        r = 1.0 / x.v
        return apply(x, r, -r * r, 2 * r ** 3, -6 * r ** 4)


def log(x: Jet) -> Jet:
    with np.errstate(all="ignore"):
        r = 1.0 / x.v
        return apply(x, np.log(x.v), r, -r * r, 2 * r ** 3)


def sqrt(x: Jet) -> Jet:
    with np.errstate(all="ignore"):
        s = np.sqrt(x.v)
        return apply(x, s, 0.5 / s, -0.25 / (s * x.v), 0.375 / (s * x.v * x.v))


def power(x: Jet, p: float) -> Jet:
    with np.errstate(all="ignore"):
        v = x.v
        return apply(x, v ** p, p * v ** (p - 1), p * (p - 1) * v ** (p - 2), p * (p - 1) * (p - 2) * v ** (p - 3))


def exp(x: Jet) -> Jet:
    with np.errstate(all="ignore"):
        e = np.exp(x.v)
        return apply(x, e, e, e, e)


def log_ndtr(x: Jet) -> Jet:
    """log Phi(x) with its derivatives: lambda = phi/Phi, lambda' = -lambda (x + lambda),
    lambda'' = -lambda' (x + lambda) - lambda (1 + lambda')."""
    from ..error_models import _ndtr_log as lnd

    z = x.v
    with np.errstate(all="ignore"):
        lp = lnd(z)
        lam = np.exp(-0.5 * z * z - 0.5 * np.log(2 * np.pi) - lp)
        lam1 = -lam * (z + lam)
        lam2 = -lam1 * (z + lam) - lam * (1.0 + lam1)
    return apply(x, lp, lam, lam1, lam2)


def compose(F: Jet, P: Jet) -> Jet:
    """The jet of f(P(phi)) from the jet ``F`` of f in the coordinates P (derivatives over the last axis, shape
    S + (k,)) and the jets ``P`` of the k coordinates in phi (values S' + (k,), derivatives S' + (k, d)...), S'
    broadcasting against S."""
    P1, P2 = P.d1, P.d2
    d1 = np.einsum("...i,...ia->...a", F.d1, P1)
    d2 = (np.einsum("...ij,...ia,...jb->...ab", F.d2, P1, P1, optimize=True)
          + np.einsum("...i,...iab->...ab", F.d1, P2))
    d3 = None
    if F.d3 is not None and P.d3 is not None:
        t = np.einsum("...ij,...iab,...jc->...abc", F.d2, P2, P1, optimize=True)
        d3 = (np.einsum("...ijk,...ia,...jb,...kc->...abc", F.d3, P1, P1, P1, optimize=True)
              + t + np.swapaxes(t, -1, -2) + np.moveaxis(t, -1, -3)
              + np.einsum("...i,...iabc->...abc", F.d1, P.d3))
    return Jet(F.v, d1, d2, d3)
