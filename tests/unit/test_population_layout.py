"""The internal parameters of a population fit (pkpd.estimation.population_model._Layout) and the reported ones:
log typical values, Omega's Cholesky factor (log-diagonal) and log error parameters, worked out by hand."""

import numpy as np

import pkpd
import pkpd.estimation.population_fit as pf
from pkpd.estimation.covariance import _natural_jacobian
from pkpd.nonmem import read_nonmem
from pkpd.population import IIV


def _layout():
    iiv = IIV.from_matrix(("CL", "V"), np.array([[0.09, 0.02], [0.02, 0.04]]))
    data = read_nonmem("tests/data/theoph.csv", dose_unit="mg")
    return pf._setup("pk_1cmt_iv", data, iiv, pkpd.Additive(sd=0.5), "focei", ["CL", "V"], None, None, None)[3]


def _by_hand(x):
    l00, l10, l11 = np.exp(x[2]), x[3], np.exp(x[4])
    return [np.exp(x[0]), np.exp(x[1]), l00**2, l00 * l10, l10**2 + l11**2, np.exp(x[5])]


def test_natural_parameters_of_internal_rows_are_worked_out_by_hand():
    """x = (log CL, log V, log L00, L10, log L11, log sd): natural(x) = (CL, V, omega 00, 10, 11, sd) with
    Omega = L L'; several rows at once give each row's."""
    layout = _layout()
    assert layout.names() == ["CL", "V", "omega(0,0)", "omega(1,0)", "omega(1,1)", "conc.sd"]
    X = layout.x0 + 0.1 * np.random.default_rng(3).standard_normal((4, layout.x0.size))
    for x in X:
        np.testing.assert_allclose(layout.natural(x), _by_hand(x), rtol=1e-14)
    np.testing.assert_allclose(layout.natural(X), [_by_hand(x) for x in X], rtol=1e-14)


def test_the_jacobian_of_the_natural_parameters_is_the_derivative_by_hand():
    """d natural / dx (the covariance step's delta method): exp(x) on the diagonal for CL, V and sd; for Omega
    d L00^2 = 2 L00^2 dx2, d (L00 L10) = L00 L10 dx2 + L00 dx3, d (L10^2 + L11^2) = 2 L10 dx3 + 2 L11^2 dx4."""
    layout = _layout()
    x = layout.x0 + np.array([0.1, -0.2, 0.05, 0.3, -0.1, 0.2])
    l00, l10, l11 = np.exp(x[2]), x[3], np.exp(x[4])
    want = np.zeros((6, 6))
    want[0, 0], want[1, 1], want[5, 5] = np.exp(x[0]), np.exp(x[1]), np.exp(x[5])
    want[2, 2] = 2 * l00**2
    want[3, 2], want[3, 3] = l00 * l10, l00
    want[4, 3], want[4, 4] = 2 * l10, 2 * l11**2
    np.testing.assert_allclose(_natural_jacobian(layout, x), want, rtol=1e-7, atol=1e-9)
