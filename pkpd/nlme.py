"""Population estimation (FO, FOCE, FOCE-I, Laplace), VPC and NPDE: the names of :mod:`pkpd.estimation` under their
old home.

Estimation lives in the package :mod:`pkpd.estimation` (:mod:`~pkpd.estimation.population_fit` for
:func:`fit_population` and the objective functions, :mod:`~pkpd.estimation.population_checks` for :func:`vpc` and
:func:`npde`, :mod:`~pkpd.estimation.uncertainty` for :func:`bootstrap_population`, ...); ``pkpd.nlme`` keeps every
name it had, so ``from pkpd.nlme import vpc`` goes on working.
"""

from __future__ import annotations

from .estimation.population_checks import VPC, npde, vpc
from .estimation.population_fit import METHODS, PopulationFit, fit_population, population_objective
from .estimation.uncertainty import bootstrap_population

__all__ = ["METHODS", "VPC", "PopulationFit", "bootstrap_population", "fit_population", "npde", "population_objective",
           "vpc"]

_HOMES = ("population_fit", "population_model", "finite_difference", "covariance", "population_checks", "uncertainty")


def __getattr__(name: str):
    """The other (private) names of the old module, from their new homes."""
    import importlib

    for home in _HOMES:
        module = importlib.import_module(f"pkpd.estimation.{home}")
        if hasattr(module, name):
            return getattr(module, name)
    raise AttributeError(f"module 'pkpd.nlme' has no attribute {name!r}")
