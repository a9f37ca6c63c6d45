r"""D- and ED-optimal sampling times and doses under constraints.

The criterion is maximised over the sampling times of every group (each in its window, at least ``min_spacing``
apart within a subject and output, never more than ``max_samples`` per subject) and, when the design space gives a
dose range, over each group's dose:

* ``"D"``: :math:`\ln\det F(\xi)` at the nominal parameter values (PopED's lnD);
* ``"ED"``: :math:`\ln E_\theta[\det F(\xi; \theta)]` over a log-normal prior of the typical values (``prior``:
  the SD of each log typical value), estimated with ``n_prior`` seeded draws shared by every candidate design
  (common random numbers), so designs are compared on the same draws.

Search (an exchange algorithm, as in Fedorov's and PopED's line search): the model is linearised once on a grid of
candidate times (every time a sample may take), so the FIM of any candidate design is a selection of rows; each
sample in turn moves to the feasible candidate time that most increases the criterion, until a whole sweep brings
no improvement; the grid is then refined tenfold around the chosen times and the sweeps repeated. Doses are
searched on a geometric grid in their range (times re-optimised for each), then refined between the best dose's
neighbours. Every step keeps every constraint, and a move is accepted only if it increases the criterion, so the
optimised design is never worse than the start (and the start is checked against the constraints first).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import numpy as np

from ..errors import PkpdError, did_you_mean
from .designs import Design, DesignSpace, Group, scale_regimen
from .fim import (
    DesignEvaluation,
    _check_options,
    _check_outputs_sampled,
    _draws,
    _sample_indices,
    _spec,
    linearise,
    subject_fim,
    subject_fims,
    summarise,
)

__all__ = ["CRITERIA", "OptimizedDesign", "optimize_design"]

CRITERIA = ("D", "ED")
_N_DOSES = 9        # geometric grid of doses in their range
_REFINE = 10        # the second pass uses grid_step / _REFINE around the chosen times
_GRID_POINTS = 400  # default candidate times per window span


@dataclass(frozen=True, eq=False)
class OptimizedDesign:
    """The result of :func:`optimize_design`.

    Attributes
    ----------
    design : Design
        The optimised design (same groups, sizes and number of samples; new times and doses).
    initial, optimal : DesignEvaluation
        The FIM and predicted RSEs of the starting and the optimised design (nominal parameter values).
    criterion : str
        ``"D"`` or ``"ED"``.
    initial_value, optimal_value : float
        The criterion of both designs (ln det FIM, or ln E[det FIM] for ED).
    efficiency : float
        :math:`\\exp((\\text{optimal} - \\text{initial}) / p)`: the relative size of a study with the starting design
        needed to match the optimised one (D-efficiency).
    space : DesignSpace
    n_evaluations : int
        Candidate designs evaluated.
    """

    design: Design
    initial: DesignEvaluation
    optimal: DesignEvaluation
    criterion: str
    initial_value: float
    optimal_value: float
    efficiency: float
    space: DesignSpace = field(repr=False)
    n_evaluations: int = 0

    def table(self):
        """The design table: ``group, size, dose, dose_unit, output, sample, initial_time, optimal_time,
        window_low, window_high`` (pandas DataFrame)."""
        import pandas as pd

        rows = []
        for g0, g1 in zip(self.initial.design.groups, self.design.groups):
            windows = self.space.windows_of(g0)
            first = g1.regimen.administrations[0].dose if g1.regimen.administrations else None
            for k, ((o, t0), (_, t1), (lo, hi)) in enumerate(zip(g0.samples, g1.samples, windows)):
                rows.append({"group": g1.name, "size": g1.size, "dose": first.amount if first else math.nan,
                             "dose_unit": first.unit if first else "", "output": o, "sample": k + 1,
                             "initial_time": t0, "optimal_time": t1, "window_low": lo, "window_high": hi})
        return pd.DataFrame(rows)

    def plot(self, **kwargs):
        """Predicted typical profiles with the initial (open) and optimised (filled) sampling times; see
        :func:`pkpd.decision_plots.plot_design`."""
        from ..decision_plots import plot_design

        return plot_design(self, **kwargs)

    def __repr__(self) -> str:
        return (f"OptimizedDesign({self.criterion}: {self.initial_value:.4f} -> {self.optimal_value:.4f}, "
                f"efficiency {self.efficiency:.3f}; {self.design!r})")


def _prior_specs(spec, criterion: str, prior, n_prior: int, seed) -> list:
    if criterion == "D":
        if prior is not None:
            raise PkpdError("optimize_design: prior is used by the ED criterion only; give criterion='ED'")
        return [spec]
    if not isinstance(prior, Mapping) or not prior:
        raise PkpdError("optimize_design: the ED criterion needs prior={parameter: SD of its log}, e.g. "
                        "{'CL': 0.3, 'V': 0.2} (log-normal uncertainty of the typical values)")
    sd = np.zeros(spec.n_beta)
    for k, v in prior.items():
        if k not in spec.beta_names:
            raise PkpdError(f"optimize_design prior: {k!r} is not an estimated typical value."
                            + did_you_mean(str(k), spec.beta_names))
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v) or v < 0:
            raise PkpdError(f"optimize_design prior[{k!r}]: must be an SD >= 0; got {v!r}")
        sd[spec.beta_names.index(k)] = float(v)
    if isinstance(n_prior, bool) or not isinstance(n_prior, numbers.Integral) or n_prior < 2:
        raise PkpdError(f"optimize_design: n_prior must be an integer >= 2; got {n_prior!r}")
    rng = np.random.default_rng(np.random.SeedSequence([0 if seed is None else int(seed), 1]))
    z = rng.standard_normal((int(n_prior), spec.n_beta))
    return [spec.with_beta(spec.beta * np.exp(sd * zk)) for zk in z]


def _grid(windows, step: float, times) -> np.ndarray:
    parts = [np.asarray(times, dtype=float)]
    for lo, hi in windows:
        n = max(1, int(round((hi - lo) / step)))
        parts.append(np.linspace(lo, hi, n + 1))
    return np.unique(np.round(np.concatenate(parts), 10))


class _Search:
    """State of one optimisation (private): linearisations per group, dose and prior draw; current choice."""

    def __init__(self, nominal, specs, design, space, approximation, fim_type, draws, criterion):
        self.nominal, self.specs, self.space = nominal, specs, space
        self.approx, self.fim_type, self.draws, self.criterion = approximation, fim_type, draws, criterion
        self.groups = list(design.groups)
        self.n_eval = 0
        self.need_mixed = fim_type == "full" or approximation == "foce"
        self.windows = [space.windows_of(g) for g in self.groups]
        spans = [hi - lo for w in self.windows for lo, hi in w]
        self.step = space.grid_step or max(max(spans) / _GRID_POINTS, 1e-9)
        self.grids = [_grid(w, self.step, [t for _, t in g.samples]) for g, w in zip(self.groups, self.windows)]
        self.doses = [1.0] * len(self.groups)   # factor applied to each group's regimen
        self.lin = {}
        self.contrib = [None] * len(self.groups)
        # the output of every sample (checked once through the public path)
        self.outputs = [[o for o, _ in _sample_indices(nominal, grp, np.unique([t for _, t in grp.samples]))]
                        for grp in self.groups]

    # -- linearisation cache
    def linearisation(self, g: int, factor: float):
        key = (g, round(factor, 14), self.grids[g].size, float(self.grids[g][0]), float(self.grids[g][-1]))
        if key not in self.lin:
            grp = self.groups[g]
            reg = scale_regimen(grp.regimen, factor) if factor != 1.0 else grp.regimen
            self.lin[key] = [linearise(s, grp, self.grids[g], reg, self.draws, self.need_mixed) for s in self.specs]
        return self.lin[key]

    def group_fims(self, g: int, samples, factor: float) -> np.ndarray:
        """(n_prior, p, p) contribution of group g."""
        self.n_eval += 1
        lins = self.linearisation(g, factor)
        size = self.groups[g].size
        return np.stack([size * subject_fim(s, lin, samples, self.fim_type) for s, lin in zip(self.specs, lins)])

    def value(self, fims: np.ndarray) -> float:
        sign, logdet = np.linalg.slogdet(fims)
        logdet = np.where(sign > 0, logdet, -np.inf)
        if self.criterion == "D":
            return float(logdet[0])
        top = np.max(logdet)
        if not np.isfinite(top):
            return -math.inf
        return float(top + math.log(np.mean(np.exp(logdet - top))))

    def total(self, replace_g: int | None = None, fims: np.ndarray | None = None) -> np.ndarray:
        parts = [fims if k == replace_g else c for k, c in enumerate(self.contrib)]
        return np.sum(parts, axis=0)

    # -- samples as grid indices
    def indices(self, g: int, times) -> list[tuple[str, int]]:
        idx = np.searchsorted(self.grids[g], np.round(np.asarray(times, dtype=float), 10))
        return list(zip(self.outputs[g], idx.tolist()))

    def feasible(self, g: int, times: list[float], i: int) -> np.ndarray:
        """Candidate grid times for sample i of group g that keep every constraint."""
        grid = self.grids[g]
        lo, hi = self.windows[g][i]
        ok = (grid >= lo - 1e-12) & (grid <= hi + 1e-12)
        # samples of one output keep their order (so each keeps its window) and their spacing
        spacing = self.space.min_spacing
        outs = self.outputs[g]
        for j, t in enumerate(times):
            if j != i and outs[j] == outs[i]:
                if j < i:
                    ok &= grid >= t + spacing - 1e-9
                else:
                    ok &= grid <= t - spacing + 1e-9
        return grid[ok]

    def sweep_times(self, g: int, times: list[float], current: float) -> tuple[list[float], float]:
        """Exchange sweeps over the samples of group g until no move improves the criterion."""
        factor = self.doses[g]
        lins = self.linearisation(g, factor)
        size = self.groups[g].size
        others = self.total(g, np.zeros_like(self.contrib[g]))          # (n_prior, p, p) of the other groups
        for _ in range(50):
            improved = False
            for i in range(len(times)):
                cand = self.feasible(g, times, i)
                cand = cand[cand != times[i]]
                if cand.size == 0:
                    continue
                base = np.array([j for _, j in self.indices(g, times)], dtype=np.intp)
                idx = np.tile(base, (cand.size, 1))
                idx[:, i] = np.searchsorted(self.grids[g], np.round(cand, 10))
                fims = np.stack([size * subject_fims(s, lin, self.outputs[g], idx, self.fim_type)
                                 for s, lin in zip(self.specs, lins)], axis=1)          # (C, n_prior, p, p)
                self.n_eval += cand.size
                values = self.values(others[None] + fims)
                k = int(np.argmax(values))
                if values[k] > current + 1e-10:
                    times[i], current = float(cand[k]), float(values[k])
                    self.contrib[g] = fims[k]
                    improved = True
            if not improved:
                break
        return times, current

    def values(self, fims: np.ndarray) -> np.ndarray:
        """Criterion of candidate totals (C, n_prior, p, p)."""
        sign, logdet = np.linalg.slogdet(fims)
        logdet = np.where(sign > 0, logdet, -np.inf)
        if self.criterion == "D":
            return logdet[:, 0]
        top = np.max(logdet, axis=1, keepdims=True)
        with np.errstate(invalid="ignore"):
            out = top[:, 0] + np.log(np.mean(np.exp(logdet - top), axis=1))
        return np.where(np.isfinite(top[:, 0]), out, -np.inf)


def _layout(group: Group, times: list[float]):
    """Times of a group's samples (in Group.samples order) back into the group's times layout."""
    out, k = {}, 0
    for o, ts in group.times.items():
        out[o] = sorted(times[k:k + len(ts)])
        k += len(ts)
    return out["*"] if list(out) == ["*"] else out


def optimize_design(model, design: Design | Group, *, error, iiv=None, estimate=None,
                    space: DesignSpace | None = None, criterion: str = "D", prior: Mapping | None = None,
                    n_prior: int = 20, approximation: str = "fo", fim: str = "reduced", n_draws: int = 100,
                    seed: int | None = 0, settings=None) -> OptimizedDesign:
    r"""D- or ED-optimal sampling times (and doses) of a design under constraints.

    Main arguments
    --------------
    model, design, error, iiv, estimate
        As :func:`evaluate_design`; ``design`` is the starting design: its groups, sizes, outputs and number of
        samples are kept.
    space : DesignSpace
        Constraints: ``max_samples`` per subject, sampling ``windows``, ``min_spacing``, dose ranges (``doses``).
    criterion : {"D", "ED"}
        ln det FIM at the nominal values, or ln E[det FIM] over the ``prior``.
    prior : dict[str, float], optional
        For ED: SD of the log of each typical value (log-normal uncertainty), e.g. ``{"CL": 0.3}``.

    Other arguments
    ---------------
    n_prior : int
        Prior draws of ED (seeded).
    approximation, fim, n_draws, seed, settings
        As :func:`evaluate_design`.

    Returns
    -------
    OptimizedDesign

    Raises
    ------
    PkpdError
        The starting design breaks a constraint (more samples than ``max_samples``, a time outside its window,
        samples closer than ``min_spacing``), a window that cannot hold the samples, a prior on an unknown
        parameter, or anything :func:`evaluate_design` refuses.

    Examples
    --------
    >>> import pkpd
    >>> from pkpd.design import Design, DesignSpace, Group, optimize_design
    >>> g = Group(pkpd.Regimen.single(pkpd.Dose(100, "mg")), [1, 2, 3], size=20)
    >>> opt = optimize_design("pk_1cmt_iv", Design([g]), iiv={"CL": 0.09}, estimate=["CL", "V"],
    ...                       error=pkpd.Proportional(cv=0.1), space=DesignSpace(max_samples=3, windows=(0.5, 24),
    ...                                                                          min_spacing=1.0, grid_step=0.5))
    >>> opt.optimal_value > opt.initial_value, opt.design.groups[0].n_samples
    (True, 3)
    """
    _check_options(approximation, fim, n_draws)
    if criterion not in CRITERIA:
        raise PkpdError(f"optimize_design: criterion must be one of {CRITERIA}; got {criterion!r}."
                        + did_you_mean(str(criterion), CRITERIA))
    if isinstance(design, Group):
        design = Design([design])
    if not isinstance(design, Design):
        raise PkpdError(f"optimize_design: expected a Design or a Group; got {type(design).__name__}")
    space = space or DesignSpace()
    if not isinstance(space, DesignSpace):
        raise PkpdError(f"optimize_design: space must be a DesignSpace; got {type(space).__name__}")
    space.check(design)
    spec = _spec(model, iiv=iiv, error=error, estimate=estimate, settings=settings)
    _check_outputs_sampled(spec, design)
    specs = _prior_specs(spec, criterion, prior, n_prior, seed)
    draws = _draws(spec, approximation, n_draws, seed)
    search = _Search(spec, specs, design, space, approximation, fim, draws, criterion)
    times = [[t for _, t in g.samples] for g in design.groups]
    for g in range(len(design.groups)):
        search.contrib[g] = search.group_fims(g, search.indices(g, times[g]), 1.0)
    start_value = search.value(search.total())
    if not math.isfinite(start_value):
        raise PkpdError("optimize_design: the starting design's FIM is singular (some parameters are not estimable "
                        "from it); start from a design with enough samples to estimate every parameter")
    current = start_value
    for _ in range(3):                     # coordinate rounds over groups (times, then doses)
        before = current
        for g in range(len(design.groups)):
            if space.optimize_times:
                times[g], current = search.sweep_times(g, times[g], current)
            rng_d = space.dose_range(design.groups[g])
            if rng_d is not None:
                current = _search_dose(search, g, times, rng_d, current)
        if current <= before + 1e-10:
            break
    if space.optimize_times:                # refine the grid around the chosen times
        for g in range(len(design.groups)):
            fine = search.step / _REFINE
            extra = [np.clip(t + fine * np.arange(-_REFINE, _REFINE + 1), *search.windows[g][i])
                     for i, t in enumerate(times[g])]
            search.grids[g] = np.unique(np.round(np.concatenate([search.grids[g], *extra]), 10))
            search.contrib[g] = search.group_fims(g, search.indices(g, times[g]), search.doses[g])
            times[g], current = search.sweep_times(g, times[g], current)
    groups = []
    for g, grp in enumerate(design.groups):
        reg = scale_regimen(grp.regimen, search.doses[g]) if search.doses[g] != 1.0 else grp.regimen
        groups.append(replace(grp, times=_layout(grp, times[g]), regimen=reg))
    best = Design(groups)
    space.check(best)
    p = len(spec.names)
    initial = summarise(spec, design, np.sum([_nominal(search, g, grp, 1.0) for g, grp in
                                              enumerate(design.groups)], axis=0), approximation, fim)
    optimal = summarise(spec, best, np.sum([_nominal(search, g, grp, search.doses[g]) for g, grp in
                                            enumerate(best.groups)], axis=0), approximation, fim)
    return OptimizedDesign(design=best, initial=initial, optimal=optimal, criterion=criterion,
                           initial_value=start_value, optimal_value=current,
                           efficiency=float(math.exp((current - start_value) / p)), space=space,
                           n_evaluations=search.n_eval)


def _nominal(search: _Search, g: int, grp: Group, factor: float) -> np.ndarray:
    """Group g's FIM at the nominal parameter values (the first spec is the nominal one only for D)."""
    spec = search.nominal
    reg = scale_regimen(search.groups[g].regimen, factor) if factor != 1.0 else search.groups[g].regimen
    grid = np.unique([t for _, t in grp.samples])
    lin = linearise(spec, grp, grid, reg, search.draws, search.need_mixed)
    return grp.size * subject_fim(spec, lin, _sample_indices(spec, grp, grid), search.fim_type)


def _search_dose(search: _Search, g: int, times, dose_range, current: float) -> float:
    """Geometric grid of doses for group g (times re-optimised at each), then refinement between neighbours."""
    grp = search.groups[g]
    amount = grp.regimen.administrations[0].dose.amount if grp.regimen.administrations else 0.0
    if not amount > 0:
        raise PkpdError(f"optimize_design {grp.name!r}: doses can be optimised only for a regimen with a positive "
                        "dose")
    lo, hi = dose_range
    levels = list(np.geomspace(lo, hi, _N_DOSES))
    best = (current, search.doses[g], list(times[g]), search.contrib[g])

    def trial(level: float):
        nonlocal best
        factor = level / amount
        saved = (search.doses[g], list(times[g]), search.contrib[g])
        search.doses[g] = factor
        search.contrib[g] = search.group_fims(g, search.indices(g, times[g]), factor)
        v = search.value(search.total())
        t_new, v = search.sweep_times(g, list(times[g]), v) if search.space.optimize_times else (times[g], v)
        if v > best[0] + 1e-10:
            best = (v, factor, list(t_new), search.contrib[g])
        search.doses[g], times[g], search.contrib[g] = saved

    for level in levels:
        trial(level)
    k = int(np.argmin(np.abs(np.log(np.array(levels)) - math.log(best[1] * amount))))
    if best[1] != search.doses[g]:
        left, right = levels[max(k - 1, 0)], levels[min(k + 1, len(levels) - 1)]
        for level in np.geomspace(left, right, 7)[1:-1]:
            trial(float(level))
    value, search.doses[g], times[g], search.contrib[g] = best
    return value
