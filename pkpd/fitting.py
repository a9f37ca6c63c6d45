"""Individual and pooled fits, and the uncertainty tools: the names of :mod:`pkpd.estimation` under their old home.

Estimation lives in the package :mod:`pkpd.estimation` (one module per concept: :mod:`~pkpd.estimation.data`,
:mod:`~pkpd.estimation.likelihood`, :mod:`~pkpd.estimation.individual`, :mod:`~pkpd.estimation.uncertainty`, ...);
``pkpd.fitting`` keeps every name it had, so ``from pkpd.fitting import Bootstrap`` goes on working.
"""

from __future__ import annotations

from .estimation.individual import FitResult, SubjectFits, fit
from .estimation.uncertainty import (
    Bootstrap,
    Identifiability,
    LikelihoodRatioTest,
    ProfileLikelihood,
    bootstrap,
    identifiability,
    likelihood_ratio_test,
    profile_likelihood,
)

__all__ = ["Bootstrap", "FitResult", "Identifiability", "LikelihoodRatioTest", "ProfileLikelihood", "SubjectFits",
           "bootstrap", "fit", "identifiability", "likelihood_ratio_test", "profile_likelihood"]

_HOMES = ("individual", "data", "likelihood", "uncertainty")


def __getattr__(name: str):
    """The other (private) names of the old module, from their new homes."""
    import importlib

    for home in _HOMES:
        module = importlib.import_module(f"pkpd.estimation.{home}")
        if hasattr(module, name):
            return getattr(module, name)
    raise AttributeError(f"module 'pkpd.fitting' has no attribute {name!r}")
