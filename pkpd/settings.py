"""Typed, validated solver options."""

from __future__ import annotations

import math
from dataclasses import dataclass

from .errors import PkpdError, did_you_mean

# "ode" and "closed-form" choose between the ODE solver and the closed form of linear models (pkpd.closed_form);
# the compiled ODE solver runs "ode" as "auto"
_METHODS = {"auto": 0, "tsit5": 1, "rodas4": 2, "ode": 0, "closed-form": 0}
_ON_FAILURE = ("raise", "mark")


@dataclass(frozen=True)
class SolverSettings:
    """Options of the ODE solver, validated at construction.

    Attributes
    ----------
    method : {"auto", "ode", "closed-form", "tsit5", "rodas4"}
        ``"auto"`` (default): a model whose equations are linear with coefficients constant between events
        (:func:`pkpd.linear_system.linearity`: one- to three-compartment models with bolus, infusion or first-order
        absorption...) is solved in closed form (matrix exponentials, exact to rounding; :mod:`pkpd.closed_form`;
        in population estimation the model together with its sensitivities, :mod:`pkpd.estimation._linear_template`);
        any other is integrated with Tsitouras' explicit 5(4) pair, switching a subject to the L-stable Rosenbrock
        method Rodas4 (analytic Jacobian) when it detects stiffness. ``"ode"``: that ODE integration even for a
        linear model. ``"closed-form"``: the closed form, an error for a model that is not linear. ``"tsit5"``,
        ``"rodas4"``: the ODE solver with one method. The tolerances apply to the ODE solver only.
    rtol, atol : float
        Relative and absolute local error tolerances (atol in each state's own unit).
    max_step : float
        Largest step [model time unit]; ``inf`` lets the controller decide.
    max_steps : int
        Step budget per subject; exceeding it is a solver failure.
    on_failure : {"raise", "mark"}
        ``"raise"`` (default) stops with a :class:`~pkpd.errors.SimulationError` naming the subject, time and
        reason; ``"mark"`` returns NaN for failed subjects and their status in ``Simulation.status``.

    Examples
    --------
    >>> SolverSettings(rtol=1e-6, atol=1e-9).method
    'auto'
    """

    method: str = "auto"
    rtol: float = 1e-8
    atol: float = 1e-12
    max_step: float = math.inf
    max_steps: int = 200_000
    on_failure: str = "raise"

    def __post_init__(self):
        if self.method not in _METHODS:
            raise PkpdError(f"SolverSettings.method: unknown method {self.method!r}."
                            + did_you_mean(str(self.method), _METHODS))
        for name in ("rtol", "atol"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float) or not (0 < v < 1) or not math.isfinite(v):
                raise PkpdError(f"SolverSettings.{name}: must be a number in (0, 1); got {v!r}")
        if self.rtol < 1e-14:
            raise PkpdError(f"SolverSettings.rtol: below 1e-14 cannot be met in double precision; got {self.rtol}")
        if isinstance(self.max_step, bool) or not isinstance(self.max_step, int | float) or not self.max_step > 0:
            raise PkpdError(f"SolverSettings.max_step: must be > 0; got {self.max_step!r}")
        if isinstance(self.max_steps, bool) or not isinstance(self.max_steps, int) or self.max_steps < 1:
            raise PkpdError(f"SolverSettings.max_steps: must be a positive integer; got {self.max_steps!r}")
        if self.on_failure not in _ON_FAILURE:
            raise PkpdError(f"SolverSettings.on_failure: must be 'raise' or 'mark'; got {self.on_failure!r}")

    @property
    def method_code(self) -> int:
        """Integer code of the method for the compiled solver."""
        return _METHODS[self.method]
