"""pkpd: PK-PD modelling of mesenchymal stem/stromal cell (MSC) therapies.

The data flow (one direction, each arrow a plain function on immutable objects)::

    models/*.toml --load_model--> Model --compile_model--> CompiledModel --+
                                          Regimen (dosing) ----------------+--simulate()--> Simulation --> plots
                                          params / covariates -------------+

Public API, in pipeline order:

* declare: :func:`load_model`, :func:`models`, :class:`Model` (and its parts)
* dose: :class:`Dose`, :class:`Bolus`, :class:`Infusion`, :class:`Regimen`
* simulate: :class:`SolverSettings`, :func:`simulate`, :class:`Simulation`

Nothing heavy happens at import: numba, pint and matplotlib load on first use.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_LAZY = {
    # declare
    "load_model": "pkpd.load",
    "models": "pkpd.load",
    "Model": "pkpd.model",
    "Parameter": "pkpd.model",
    "Covariate": "pkpd.model",
    "Derived": "pkpd.model",
    "State": "pkpd.model",
    "Output": "pkpd.model",
    "DoseTarget": "pkpd.model",
    # compile
    "compile_model": "pkpd.compile",
    "CompiledModel": "pkpd.compile",
    # dose
    "Dose": "pkpd.dosing",
    "Bolus": "pkpd.dosing",
    "Infusion": "pkpd.dosing",
    "Regimen": "pkpd.dosing",
    # simulate
    "SolverSettings": "pkpd.settings",
    "simulate": "pkpd.simulation",
    "Simulation": "pkpd.simulation",
    # errors
    "PkpdError": "pkpd.errors",
    "ModelFileError": "pkpd.errors",
    "UnitError": "pkpd.errors",
    "DosingError": "pkpd.errors",
    "DataError": "pkpd.errors",
    "SimulationError": "pkpd.errors",
    "FitError": "pkpd.errors",
}

__all__ = list(_LAZY)


def __getattr__(name: str):
    # Lazy re-exports keep `import pkpd` fast; every public name resolves on first access.
    try:
        module = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'pkpd' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
