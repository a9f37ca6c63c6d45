r"""Population summaries in bounded memory: :func:`simulate_summary` -> :class:`PopulationSummary`.

10**6 subjects x 337 times x 5 outputs is 13 GB of trajectories, and nobody needs all of it. ``simulate_summary``
simulates the population chunk by chunk (each chunk one :func:`~pkpd.simulate` call with ``states=False``) and keeps
only what is asked for:

* per output and time: percentiles, mean and standard deviation across subjects;
* per subject: exposure metrics -- :class:`AUC`, :class:`Cmax`, :class:`Tmax`, :class:`TimeAbove` (or any object
  with the same small protocol, see :class:`AUC`);
* optionally, selected outputs at selected times for every subject (``keep=``).

Memory is set by ``chunk_size`` (one chunk of outputs, about ``chunk_size * n_times * n_outputs * 16`` bytes), plus
the per-subject results asked for (8 bytes per subject per metric or kept value), never by the whole trajectory set.

Exactness
---------
Means, standard deviations, metrics and kept values are exact: the same, up to floating-point rounding, as those
computed from one all-in-memory :func:`~pkpd.simulate` (chunk moments are merged with Chan et al.'s pairwise
update). Percentiles are exact (``np.percentile``, bit for bit) when the population fits in one chunk
(``N <= chunk_size``). Over several chunks they come from a mergeable streaming histogram, one per output and time,
with buckets of constant *relative* width: a value's bucket is its IEEE-754 exponent and leading ``m`` mantissa bits
(the HdrHistogram/DDSketch idea), so that the bucket ``[lo, hi)`` of any value satisfies ``hi / lo <= 1 + 2**-m``.
Each bucket is represented by the value ``2 lo hi / (lo + hi)``, which is within

.. math:: \delta = \frac{2^{-m}}{2 + 2^{-m}}

relative error of everything in it; with the default ``m = 9`` that is :math:`\delta = 0.098\,\%`. The estimate of the
``q``-th percentile interpolates, as ``np.percentile`` does, between the representatives of the two order statistics
``x_(k)``, ``x_(k+1)`` around rank ``(N - 1) q / 100``, each clamped to the exact minimum and maximum (which are
tracked, so the 0th and 100th percentiles are exact). Hence, for every output, time and level::

    |estimate - np.percentile(all values)| <= delta * max(|x_(k)|, |x_(k+1)|)

This bound is reported as :attr:`PopulationSummary.percentile_error` (0.0 when exact). Each histogram's window of
buckets comes from the first chunk and widens as later chunks reach further; only if the buckets of all the windows
together would exceed 2**25 (128 MB) is the resolution halved (``m`` lowered by one, the bound doubled), and the
result says so through ``percentile_error``. Subjects that failed (``on_failure="mark"``) are left out of the
percentiles, means and SDs, and get NaN metrics and kept values.

References
----------
Chan TF, Golub GH, LeVeque RJ 1983, Am Stat 37:242 (merging means and sums of squares of two samples).
Masson C, Rim JE, Lee HK 2019, Proc VLDB Endow 12:2195 (DDSketch: relative-error quantile sketches).
Tene G, HdrHistogram (log-linear buckets from the binary exponent and mantissa bits), hdrhistogram.org.
"""

from __future__ import annotations

import html
import math
import numbers
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from ._params import named_arrays, warn_outside_bounds
from ._progress import ChunkProgress, check_progress
from .compile import CompiledModel, compile_model
from .dosing import Bolus, Infusion, Regimen
from .errors import BoundsWarning, PkpdError, did_you_mean
from .settings import SolverSettings
from .simulation import _as_model, _times, simulate

RESOLUTION = 9  # mantissa bits per bucket: 512 buckets per power of two, delta = 0.098 %
_MAX_BUCKETS = 2**25  # all histograms together (int32 counts: 128 MB); beyond it the resolution is halved
_MIN_RESOLUTION = -10  # a bucket spanning 2**10 binary exponents: the coarsest the bookkeeping allows
_INF_BITS = np.int64(0x7FF0000000000000)


def relative_error(resolution: int) -> float:
    """Bound on the relative error of a histogram percentile at a resolution (mantissa bits per bucket).

    Examples
    --------
    >>> round(relative_error(9) * 100, 4)  # percent
    0.0976
    """
    ratio = 1.0 + 2.0**-resolution if resolution >= 0 else 2.0 ** (2.0**-resolution)
    return (ratio - 1.0) / (ratio + 1.0)


# ------------------------------------------------------------------------------------------------ metrics
def _check_output_name(kind: str, output) -> None:
    if not isinstance(output, str) or not output:
        raise PkpdError(f"{kind}: output must be the name of a model output, e.g. {kind}('IL10'); got {output!r}")


def _time_product(output_unit: str, time_unit: str) -> str:
    return time_unit if output_unit == "1" else f"{output_unit}*{time_unit}"


@dataclass(frozen=True)
class AUC:
    r"""Per-subject area under the curve of one output over the whole time grid (linear trapezoidal rule).

    :math:`\mathrm{AUC} = \sum_j \tfrac12 (t_{j+1} - t_j)(y_j + y_{j+1})` [output unit x time unit], from the
    first to the last output time. A finer time grid gives a closer value of the integral.

    Every metric (these four, or your own object) has the same small protocol: ``output`` (the output's name),
    ``name`` (its key in :attr:`PopulationSummary.metrics`), ``unit(output_unit, time_unit) -> str`` and
    ``compute(times, values) -> ndarray (n_subjects,)`` with ``times`` (n_times,) [model time unit] and ``values``
    (n_subjects, n_times) [output unit]. ``compute`` must treat each subject on its own, so that the result does
    not depend on the chunking.

    Parameters
    ----------
    output : str
        A model output, e.g. ``"IL10"``.

    Examples
    --------
    >>> import numpy as np
    >>> auc = AUC("IL10")
    >>> auc.name, auc.unit("pg/mL", "h")
    ('AUC(IL10)', 'pg/mL*h')
    >>> auc.compute(np.array([0.0, 1.0, 3.0]), np.array([[0.0, 2.0, 2.0]]))
    array([5.])
    """

    output: str

    def __post_init__(self):
        _check_output_name("AUC", self.output)

    @property
    def name(self) -> str:
        """Key of the metric in :attr:`PopulationSummary.metrics`."""
        return f"AUC({self.output})"

    def unit(self, output_unit: str, time_unit: str) -> str:
        """Unit of the metric: output unit x time unit."""
        return _time_product(output_unit, time_unit)

    def compute(self, times: np.ndarray, values: np.ndarray) -> np.ndarray:
        """AUC of each row of ``values`` (n_subjects, n_times) over ``times``."""
        auc = np.zeros(values.shape[0])
        # one column pair at a time, in time order: each subject's sum is the same whatever the chunk holds
        for j in range(times.size - 1):
            auc += (0.5 * (times[j + 1] - times[j])) * (values[:, j] + values[:, j + 1])
        return auc


@dataclass(frozen=True)
class Cmax:
    """Per-subject maximum of one output over the time grid [output unit].

    Parameters
    ----------
    output : str

    Examples
    --------
    >>> import numpy as np
    >>> Cmax("IL10").compute(np.array([0.0, 1.0, 2.0]), np.array([[1.0, 4.0, 2.0]]))
    array([4.])
    """

    output: str

    def __post_init__(self):
        _check_output_name("Cmax", self.output)

    @property
    def name(self) -> str:
        """Key of the metric in :attr:`PopulationSummary.metrics`."""
        return f"Cmax({self.output})"

    def unit(self, output_unit: str, time_unit: str) -> str:
        """Unit of the metric: the output's."""
        return output_unit

    def compute(self, times: np.ndarray, values: np.ndarray) -> np.ndarray:
        """Row maxima of ``values`` (n_subjects, n_times)."""
        return np.max(values, axis=1)


@dataclass(frozen=True)
class Tmax:
    """Per-subject time of the maximum of one output on the time grid [model time unit] (the first, if tied).

    Parameters
    ----------
    output : str

    Examples
    --------
    >>> import numpy as np
    >>> Tmax("IL10").compute(np.array([0.0, 1.0, 2.0]), np.array([[1.0, 4.0, 2.0]]))
    array([1.])
    """

    output: str

    def __post_init__(self):
        _check_output_name("Tmax", self.output)

    @property
    def name(self) -> str:
        """Key of the metric in :attr:`PopulationSummary.metrics`."""
        return f"Tmax({self.output})"

    def unit(self, output_unit: str, time_unit: str) -> str:
        """Unit of the metric: the model's time unit."""
        return time_unit

    def compute(self, times: np.ndarray, values: np.ndarray) -> np.ndarray:
        """Time of the row maxima of ``values`` (n_subjects, n_times)."""
        return np.asarray(times, dtype=float)[np.argmax(values, axis=1)]


@dataclass(frozen=True)
class TimeAbove:
    """Per-subject time during which one output is above a threshold [model time unit].

    Between two output times the output is interpolated linearly, so a crossing inside an interval counts for the
    part of the interval above the threshold (the usual target-attainment convention); a finer time grid gives a
    closer value.

    Parameters
    ----------
    output : str
    threshold : float [output unit]
        E.g. ``TimeAbove("IL10", 10.0)`` for IL-10 above 10 pg/mL.

    Examples
    --------
    >>> import numpy as np
    >>> above = TimeAbove("IL10", 10.0)
    >>> above.name
    'TimeAbove(IL10, 10)'
    >>> above.compute(np.array([0.0, 2.0, 4.0]), np.array([[5.0, 15.0, 15.0]]))  # above from t = 1 to 4
    array([3.])
    """

    output: str
    threshold: float

    def __post_init__(self):
        _check_output_name("TimeAbove", self.output)
        thr = self.threshold
        if isinstance(thr, bool) or not isinstance(thr, numbers.Real) or not math.isfinite(thr):
            raise PkpdError(f"TimeAbove({self.output!r}, ...): threshold must be a finite number in the output's "
                            f"unit, e.g. TimeAbove({self.output!r}, 10.0); got {thr!r}")
        object.__setattr__(self, "threshold", float(thr))

    @property
    def name(self) -> str:
        """Key of the metric in :attr:`PopulationSummary.metrics`."""
        return f"TimeAbove({self.output}, {self.threshold:g})"

    def unit(self, output_unit: str, time_unit: str) -> str:
        """Unit of the metric: the model's time unit."""
        return time_unit

    def compute(self, times: np.ndarray, values: np.ndarray) -> np.ndarray:
        """Time above the threshold of each row of ``values`` (n_subjects, n_times)."""
        thr = self.threshold
        total = np.zeros(values.shape[0])
        for j in range(times.size - 1):
            a, b = values[:, j], values[:, j + 1]
            a_up, b_up = a > thr, b > thr
            part = (a_up & b_up).astype(float)
            cross = a_up != b_up
            if cross.any():
                # fraction of the interval where the linear interpolant is above: (higher - thr) / |b - a| > 0
                ac, bc = a[cross], b[cross]
                part[cross] = (np.maximum(ac, bc) - thr) / np.abs(bc - ac)
            total += (times[j + 1] - times[j]) * part
        return total


# ------------------------------------------------------------------------------------------------ result
@dataclass(frozen=True, eq=False)
class PopulationSummary:
    """The result of :func:`simulate_summary`: per-time statistics and per-subject metrics of a population.

    Attributes
    ----------
    times : ndarray, shape (n_times,)
        Output times [``time_unit``].
    time_unit : str
    outputs : tuple[str, ...]
        The summarised outputs, in the order of the first axis of ``percentiles``, ``mean`` and ``sd``.
    units : dict[str, str]
        Unit of every summarised output.
    percentile_levels : tuple[float, ...]
        The percentiles computed, in [0, 100].
    percentiles : ndarray, shape (n_outputs, n_levels, n_times)
        Percentiles across subjects at each time [output unit].
    mean, sd : ndarray, shape (n_outputs, n_times)
        Mean and sample standard deviation (``ddof=1``; NaN with fewer than 2 subjects) across subjects [output
        unit]. Exact whatever the chunking.
    metrics : dict[str, ndarray (n_subjects,)]
        Per-subject metrics, keyed by the metric's ``name`` (e.g. ``"AUC(IL10)"``); exact.
    metric_units : dict[str, str]
    kept : dict[str, ndarray (n_subjects, n_kept_times)]
        Values of the kept outputs at ``kept_times[name]`` for every subject [output unit].
    kept_times : dict[str, ndarray (n_kept_times,)]
    status : ndarray (n_subjects,) of int
        0 = solved; otherwise the solver's failure code (only with ``on_failure="mark"``; see
        :attr:`pkpd.Simulation.status`). Subject ``i`` (0-based) is the ``i``-th entry of the input arrays.
    percentile_error : float
        Bound on the relative error of ``percentiles`` against ``np.percentile`` of all values (see
        :mod:`pkpd.summaries`); 0.0 when they are exact (one chunk).
    chunk_size, n_chunks : int
    model_name, model_version : str
    settings : SolverSettings
    trials : SummaryTrials or None
        With ``uncertainty=``: the replicate trials' percentiles, means and metric medians
        (:class:`pkpd.uncertainty.SummaryTrials`); the other attributes are the run at the estimates.

    Examples
    --------
    >>> import numpy as np, pkpd
    >>> m = pkpd.load_model("pk_1cmt_iv")
    >>> s = pkpd.simulate_summary(m, pkpd.Regimen.single(pkpd.Dose(100, "mg")), [0, 12, 24],
    ...                           params={"CL": [2.0, 3.0, 4.0]}, metrics=[pkpd.AUC("conc")], progress=False)
    >>> s.n_subjects, s.n_chunks, s.percentile_error, s.metric_units
    (3, 1, 0.0, {'AUC(conc)': 'mg/L*h'})
    >>> s.percentile("conc", 50).round(3)  # median at 0, 12 and 24 h [mg/L]
    array([3.125, 1.015, 0.329])
    >>> s.metrics["AUC(conc)"].round(2)  # trapezoids on the coarse 0/12/24 h grid [mg/L*h]
    array([40.65, 32.9 , 28.05])
    """

    times: np.ndarray
    time_unit: str
    outputs: tuple[str, ...]
    units: dict[str, str]
    percentile_levels: tuple[float, ...]
    percentiles: np.ndarray
    mean: np.ndarray
    sd: np.ndarray
    metrics: dict[str, np.ndarray]
    metric_units: dict[str, str]
    kept: dict[str, np.ndarray]
    kept_times: dict[str, np.ndarray]
    status: np.ndarray
    percentile_error: float
    chunk_size: int
    n_chunks: int
    model_name: str
    model_version: str
    settings: SolverSettings = field(repr=False)
    trials: object = field(repr=False, default=None)

    @property
    def n_subjects(self) -> int:
        """Number of subjects simulated."""
        return int(self.status.shape[0])

    @property
    def n_failed(self) -> int:
        """Number of subjects whose simulation failed (``on_failure="mark"``)."""
        return int(np.count_nonzero(self.status))

    def _index(self, name: str) -> int:
        try:
            return self.outputs.index(name)
        except ValueError:
            raise KeyError(f"output {name!r} was not summarised." + did_you_mean(name, self.outputs)) from None

    def percentile(self, name: str, level: float) -> np.ndarray:
        """The ``level``-th percentile of output ``name`` at each time, shape (n_times,) [output unit]."""
        i = self._index(name)
        if level not in self.percentile_levels:
            raise KeyError(f"percentile {level!r} was not computed; computed: {list(self.percentile_levels)}. "
                           "Pass it in simulate_summary(percentiles=...)")
        return self.percentiles[i, self.percentile_levels.index(level)]

    def to_dataframe(self):
        """Per-time table (pandas DataFrame): output, unit, TIME, mean, sd and one column per percentile (p5...)."""
        import pandas as pd

        frames = []
        for i, name in enumerate(self.outputs):
            cols = {"output": name, "unit": self.units[name], "TIME": self.times, "mean": self.mean[i],
                    "sd": self.sd[i]}
            cols |= {_level_column(q): self.percentiles[i, j] for j, q in enumerate(self.percentile_levels)}
            frames.append(pd.DataFrame(cols))
        if not frames:
            return pd.DataFrame(columns=["output", "unit", "TIME", "mean", "sd"]
                                + [_level_column(q) for q in self.percentile_levels])
        return pd.concat(frames, ignore_index=True)

    def metrics_to_dataframe(self):
        """Per-subject table (pandas DataFrame): ID (1-based), status, one column per metric and kept value.

        Kept values are named ``"<output>@<time>"``, e.g. ``IL10@24``.
        """
        import pandas as pd

        cols = {"ID": np.arange(1, self.n_subjects + 1), "status": self.status}
        cols |= dict(self.metrics)
        for name, values in self.kept.items():
            cols |= {f"{name}@{t:g}": values[:, j] for j, t in enumerate(self.kept_times[name])}
        return pd.DataFrame(cols)

    def _accuracy(self) -> str:
        if self.percentile_error == 0.0:
            return "exact percentiles"
        return f"percentiles within {self.percentile_error * 100:.2g} % (streaming histogram)"

    def __repr__(self) -> str:
        outs = ", ".join(f"{k} [{self.units[k]}]" for k in self.outputs)
        mets = ", ".join(f"{k} [{u}]" for k, u in self.metric_units.items())
        return (f"PopulationSummary of {self.model_name!r}: {self.n_subjects} subject(s) in {self.n_chunks} "
                f"chunk(s) x {self.times.size} times ({self.times[0]:g}-{self.times[-1]:g} {self.time_unit})"
                + (f"; outputs: {outs}; {self._accuracy()}" if outs else "") + (f"; metrics: {mets}" if mets else "")
                + (f"; {self.n_failed} FAILED (see .status)" if self.n_failed else ""))

    def _repr_html_(self) -> str:
        esc = html.escape
        levels = self.percentile_levels
        mid = levels.index(50) if 50 in levels else None
        rows = []
        for i, k in enumerate(self.outputs):
            centre = self.percentiles[i, mid] if mid is not None else self.mean[i]
            rows.append(f"<tr><td>{esc(k)}</td><td>{esc(self.units[k])}</td><td>{centre[0]:.4g}</td>"
                        f"<td>{np.nanmax(centre) if np.any(np.isfinite(centre)) else np.nan:.4g}</td>"
                        f"<td>{centre[-1]:.4g}</td></tr>")
        what = "median" if mid is not None else "mean"
        table = (f"<table><tr><th>output</th><th>unit</th><th>{what} at start</th><th>peak {what}</th>"
                 f"<th>{what} at end</th></tr>{''.join(rows)}</table>")
        met_rows = []
        for k, v in self.metrics.items():
            ok = v[np.isfinite(v)]
            p = np.percentile(ok, [5, 50, 95]) if ok.size else [np.nan] * 3
            met_rows.append(f"<tr><td>{esc(k)}</td><td>{esc(self.metric_units[k])}</td><td>{p[1]:.4g}</td>"
                            f"<td>{p[0]:.4g} - {p[2]:.4g}</td></tr>")
        met = ("<table><tr><th>metric</th><th>unit</th><th>median</th><th>5th - 95th percentile</th></tr>"
               f"{''.join(met_rows)}</table>") if met_rows else ""
        warn = (f"<p style='color:#b00'><b>{self.n_failed} subject(s) failed</b> (see .status)</p>"
                if self.n_failed else "")
        return (f"<div><b>PopulationSummary</b> of {esc(self.model_name)} v{esc(self.model_version)}: "
                f"{self.n_subjects} subject(s) in {self.n_chunks} chunk(s), {self.times.size} times from "
                f"{self.times[0]:g} to {self.times[-1]:g} {esc(self.time_unit)}; {esc(self._accuracy())}{warn}"
                f"{table}{met}</div>")


def _level_column(q: float) -> str:
    return f"p{q:g}"


# ------------------------------------------------------------------------------------------------ simulate_summary
def simulate_summary(
    model,
    regimen,
    times,
    *,
    params: Mapping[str, object] | None = None,
    covariates: Mapping[str, object] | None = None,
    outputs: Sequence[str] | None = None,
    percentiles: Sequence[float] = (5, 50, 95),
    metrics: Sequence = (),
    keep: Mapping[str, object] | None = None,
    chunk_size: int = 20_000,
    settings: SolverSettings | None = None,
    progress: bool | None = None,
    client=None,
    uncertainty=None,
    n_trials: int | None = None,
    seed: int | None = None,
    same_population: bool = False,
) -> PopulationSummary:
    """Simulate a large population chunk by chunk and keep only summaries, in bounded memory.

    Each chunk of ``chunk_size`` subjects is one :func:`~pkpd.simulate` call (``states=False``); its outputs are
    reduced to running per-time statistics and per-subject metrics, then dropped. Means, SDs, metrics and kept
    values are exact; percentiles are exact for one chunk and within a stated relative error otherwise (see
    :mod:`pkpd.summaries` and :attr:`PopulationSummary.percentile_error`).

    Main arguments
    --------------
    model : Model or CompiledModel
    regimen : Regimen, sequence of Regimen (one per subject), or None
    times : array_like, shape (n_times,)
        Increasing output times [model time unit]; metrics are computed on this grid.
    params, covariates : dict[str, float or array (n_subjects,)], optional
        As in :func:`~pkpd.simulate`; arrays give one value per subject and set the population size.
    outputs : sequence of str, optional
        Outputs to summarise per time (default: every output of the model).
    percentiles : sequence of float
        Levels in [0, 100] (default 5, 50, 95).
    metrics : sequence of metric objects
        Per-subject metrics, e.g. ``[AUC("IL10"), Cmax("IL10"), TimeAbove("IL10", 10.0)]``.
    keep : dict[str, array_like or None], optional
        Output name -> times (each one of ``times``; None for all) whose values are kept for every subject.

    Other arguments
    ---------------
    chunk_size : int
        Subjects per chunk (default 20,000: about 0.3 GB of outputs for a 5-output model at 337 times). Memory
        grows with it; a smaller one also updates the progress bar more often.
    settings : SolverSettings, optional
        Solver options; with ``on_failure="mark"`` failed subjects are counted in ``status`` and left out.
    progress : bool or None
        ``None`` shows a progress bar (tqdm; a widget in Jupyter) when the run is expected to take more than
        about 2 s and stderr is a terminal or a notebook; ``True`` always shows one, ``False`` never.
    client : dask.distributed Client, Dask cluster or scheduler address (str), optional
        Simulate the chunks on a Dask cluster (``pkpd[distributed]``): the model and the population go to each
        worker once, each chunk is one task, and the chunks' outputs are merged here in chunk order with the
        same code as a local run, so the result is identical to the local one (bit for bit) whatever the number
        of workers, and still complete if a worker dies (the scheduler re-runs its chunks). Each task sends its
        chunk's summarised outputs back (``chunk_size * n_times * n_outputs * 8`` bytes). Without a client, the
        chunks run here, each across all cores.
    uncertainty : FitResult, PopulationFit, Bootstrap, fit file, draws or ParameterUncertainty, optional
        Parameter uncertainty (:mod:`pkpd.uncertainty`): the typical values (and, for a population fit, the
        random effects drawn with ``seed``, and its covariate effects on ``covariates``) come from the fit; the
        result is the run at the estimates and ``result.trials`` holds ``n_trials`` replicate trials (default 200),
        each summarised in bounded memory. ``params`` may not give parameters the fit estimates.
    n_trials, seed, same_population
        Trials, their seed, and whether they share the random effects (see :mod:`pkpd.uncertainty`).

    Returns
    -------
    PopulationSummary

    Raises
    ------
    PkpdError
        Unknown output, parameter or covariate (with close matches), something that is not a metric, a duplicate
        metric, keep times not on the grid, percentiles outside [0, 100], ``chunk_size < 1``, an empty population
        or inconsistent sizes, non-finite parameter values (naming the subject).
    SimulationError
        A subject failed with ``on_failure="raise"`` (the default); names the subject (1-based over the whole
        population).
    KeyboardInterrupt
        Ctrl-C: re-raised with a message saying how many chunks had finished. No partial result is returned.

    Examples
    --------
    >>> import numpy as np, pkpd
    >>> m = pkpd.load_model("msc_salvadori")
    >>> rng = np.random.default_rng(1)
    >>> k_c = m.parameter("k_c").value * np.exp(0.3 * rng.standard_normal(500))
    >>> s = pkpd.simulate_summary(m, pkpd.Regimen.single(pkpd.Dose(2e6, "cell/kg")), np.arange(0, 169.0),
    ...                           params={"k_c": k_c}, covariates={"WT": 70.0}, outputs=["IL10"],
    ...                           metrics=[pkpd.AUC("IL10"), pkpd.TimeAbove("IL10", 10.0)], chunk_size=200,
    ...                           progress=False)
    >>> s.n_chunks, s.percentiles.shape, s.metrics["AUC(IL10)"].shape
    (3, (1, 3, 169), (500,))
    >>> s.percentile_error < 0.001
    True

    See also
    --------
    pkpd.simulate : all trajectories of a (smaller) population in memory.
    """
    from ._parallel import check_client

    if uncertainty is not None:
        from .uncertainty import summary_trials

        return summary_trials(model, regimen, times, uncertainty=uncertainty, n_trials=n_trials, seed=seed,
                              same_population=same_population, params=params, covariates=covariates,
                              outputs=outputs, percentiles=percentiles, metrics=metrics, keep=keep,
                              chunk_size=chunk_size, settings=settings,
                              progress=False if progress is None else progress, client=client)
    if seed is not None or n_trials is not None or same_population:
        raise PkpdError("simulate_summary: seed, n_trials and same_population go with uncertainty= (parameter "
                        "uncertainty); without it the simulation has no random draws")
    check_progress(progress)
    check_client(client)
    settings = settings or SolverSettings()
    if not isinstance(settings, SolverSettings):
        raise PkpdError(f"settings must be a SolverSettings; got {type(settings).__name__}")
    cm = model if isinstance(model, CompiledModel) else compile_model(_as_model(model))
    m = cm.model
    t = _times(times)
    names = _outputs(m, outputs)
    levels = _levels(percentiles)
    metric_list = _metrics(metrics, m)
    kept_idx = _keep(keep, m, t)
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, numbers.Integral) or chunk_size < 1:
        raise PkpdError(f"chunk_size: must be a positive integer (subjects per chunk); got {chunk_size!r}")
    chunk_size = int(chunk_size)
    n, params, covariates, regimens = _population(m, params, covariates, regimen)
    warn_outside_bounds(m, params or {})  # once, for the whole population (the chunks are not checked again)

    # rows of the per-chunk buffer: the summarised outputs first, then any other output a metric or keep needs
    needed = list(names) + [o for o in dict.fromkeys([mt.output for mt in metric_list] + list(kept_idx))
                            if o not in names]
    if not needed:
        raise PkpdError(f"outputs: nothing to summarise (model {m.name!r}); name at least one output, metric or kept "
                        "output")
    n_chunks = -(-n // chunk_size)
    exact = n_chunks == 1
    stats = _Statistics(len(names), t.size, histogram=not exact, n_subjects=n)
    exact_percentiles = None
    metric_values = {mt.name: np.full(n, np.nan) for mt in metric_list}
    kept = {o: np.full((n, idx.size), np.nan) for o, idx in kept_idx.items()}
    status = np.zeros(n, dtype=np.int64)
    job = _ChunkJob(cm=cm, regimens=regimens, times=t, params=params, covariates=covariates, settings=settings,
                    needed=tuple(needed), n_summarised=len(names), metrics=tuple(metric_list), kept_idx=kept_idx)

    def merge(start, stop, chunk_status, chunk_rows, chunk_metrics, chunk_kept):
        nonlocal exact_percentiles
        status[start:stop] = chunk_status
        stats.add(chunk_rows, stop - start, cm.engine)
        if exact:
            exact_percentiles = _exact_percentiles(chunk_rows, levels, chunk_status)
        for name, values in chunk_metrics.items():
            metric_values[name][start:stop] = values
        for o, values in chunk_kept.items():
            kept[o][start:stop] = values

    bounds = [(k * chunk_size, min((k + 1) * chunk_size, n)) for k in range(n_chunks)]
    if client is not None:
        from ._parallel import iter_tasks

        for k, (chunk_status, chunk_rows, chunk_metrics, chunk_kept) in iter_tasks(
                _summary_task, bounds, shared=job, client=client, progress=progress,
                description=f"{m.name}: simulate_summary", unit="subject", weights=[b - a for a, b in bounds]):
            merge(*bounds[k], chunk_status, chunk_rows, chunk_metrics, chunk_kept)
    else:
        # one buffer for every chunk, (output, time, subject): each (output, time) row is contiguous for the kernels
        rows = np.empty((len(needed), t.size, min(chunk_size, n)))
        finished = 0
        try:
            with ChunkProgress(n, progress=progress, desc=f"{m.name}: simulate_summary") as bar:
                for k, (start, stop) in enumerate(bounds):
                    chunk_status, chunk_metrics, chunk_kept = _summary_chunk(job, start, stop, rows)
                    merge(start, stop, chunk_status, rows[:len(names)], chunk_metrics, chunk_kept)
                    finished = k + 1
                    bar.advance(stop - start)
        except KeyboardInterrupt:
            raise KeyboardInterrupt(
                f"simulate_summary interrupted: {finished} of {n_chunks} chunk(s) had finished "
                f"({min(finished * chunk_size, n)} of {n} subjects); no result was returned (a summary of part of the "
                "population would be silently biased). Run again, with fewer subjects if needed.") from None
        del rows

    mean, sd = stats.mean_sd()
    if exact:
        pct, error = exact_percentiles, 0.0
    else:
        pct, error = stats.percentiles(levels), relative_error(stats.resolution)
    out_units = {o.name: o.unit for o in m.outputs}
    return PopulationSummary(
        times=_frozen(t.copy()), time_unit=m.time_unit, outputs=tuple(names), units={o: out_units[o] for o in names},
        percentile_levels=levels, percentiles=_frozen(pct), mean=_frozen(mean), sd=_frozen(sd),
        metrics={k: _frozen(v) for k, v in metric_values.items()},
        metric_units={mt.name: mt.unit(out_units[mt.output], m.time_unit) for mt in metric_list},
        kept={k: _frozen(v) for k, v in kept.items()},
        kept_times={k: _frozen(t[idx]) for k, idx in kept_idx.items()}, status=_frozen(status),
        percentile_error=float(error), chunk_size=chunk_size, n_chunks=n_chunks, model_name=m.name,
        model_version=m.version, settings=settings)


# ------------------------------------------------------------------------------------------------ input checks
def _frozen(a: np.ndarray) -> np.ndarray:
    # arrays made here and owned by the result alone: made read-only in place (no copy of a 10**6-row array)
    a.setflags(write=False)
    return a


def _metric_values(metric, times, values) -> np.ndarray:
    try:
        got = np.asarray(metric.compute(times, values), dtype=float)
    except (TypeError, ValueError) as err:
        raise PkpdError(f"metric {metric.name}: compute() must return numbers; {err}") from None
    if got.shape != (values.shape[0],):
        raise PkpdError(f"metric {metric.name}: compute(times, values) must return one value per subject, shape "
                        f"({values.shape[0]},); got shape {got.shape}")
    return got


def _output_error(m, name, where: str) -> PkpdError:
    hint = did_you_mean(str(name), m.output_names)
    if name in m.state_names:
        hint = f" {name!r} is a state: declare an output for it in the model file." + hint
    return PkpdError(f"{where}: model {m.name!r} has no output {name!r}." + hint)


def _outputs(m, outputs) -> list[str]:
    if outputs is None:
        return list(m.output_names)
    if isinstance(outputs, str) or not isinstance(outputs, Sequence | np.ndarray):
        raise PkpdError(f"outputs: give a list of output names, e.g. outputs=['IL10']; got {outputs!r}")
    names = list(outputs)
    for name in names:
        if name not in m.output_names:
            raise _output_error(m, name, "outputs")
    if len(set(names)) != len(names):
        raise PkpdError(f"outputs: each output may be named once; got {names}")
    return names


def _levels(percentiles) -> tuple[float, ...]:
    if isinstance(percentiles, str) or not isinstance(percentiles, Sequence | np.ndarray):
        raise PkpdError(f"percentiles: give a list of levels in [0, 100], e.g. (5, 50, 95); got {percentiles!r}")
    levels = []
    for q in percentiles:
        if isinstance(q, bool) or not isinstance(q, numbers.Real) or not 0 <= q <= 100:
            raise PkpdError(f"percentiles: each level must be a number in [0, 100]; got {q!r}")
        levels.append(float(q))
    return tuple(levels)


def _metrics(metrics, m) -> list:
    if isinstance(metrics, str) or not isinstance(metrics, Sequence):
        raise PkpdError(f"metrics: give a list of metric objects, e.g. metrics=[AUC('IL10')]; got {metrics!r}")
    out, seen = [], set()
    for i, mt in enumerate(metrics):
        if isinstance(mt, str) or not all(hasattr(mt, a) for a in ("output", "name", "unit", "compute")):
            kind = str(mt).split("(")[0] if isinstance(mt, str) else type(mt).__name__
            raise PkpdError(f"metrics[{i}]: expected a metric object such as AUC('IL10'), Cmax('IL10'), "
                            f"Tmax('IL10') or TimeAbove('IL10', 10.0); got {mt!r}."
                            + did_you_mean(kind, ["AUC", "Cmax", "Tmax", "TimeAbove"]))
        if mt.output not in m.output_names:
            raise _output_error(m, mt.output, f"metrics[{i}] {mt.name}")
        if mt.name in seen:
            raise PkpdError(f"metrics[{i}]: {mt.name} is asked for twice; give each metric once")
        seen.add(mt.name)
        out.append(mt)
    return out


def _keep(keep, m, t) -> dict[str, np.ndarray]:
    if keep is None:
        return {}
    if not isinstance(keep, Mapping):
        raise PkpdError("keep: give a mapping output -> times (None for every time), e.g. keep={'IL10': [24, 72]};"
                        f" got {keep!r}")
    out = {}
    for name, when in keep.items():
        if name not in m.output_names:
            raise _output_error(m, name, "keep")
        if when is None:
            out[name] = np.arange(t.size)
            continue
        try:
            want = np.asarray(when, dtype=float).reshape(-1)
        except (TypeError, ValueError):
            raise PkpdError(f"keep[{name!r}]: times must be numbers [model time unit]; got {when!r}") from None
        idx = np.clip(np.searchsorted(t, want), 0, t.size - 1)
        for w, i in zip(want, idx):
            if t[i] != w:
                near = t[max(i - 1, 0):i + 1]
                raise PkpdError(f"keep[{name!r}]: time {w:g} is not one of the output times (nearest: "
                                f"{', '.join(f'{x:g}' for x in near)}); add it to `times`")
        out[name] = idx
    return out


def _population(m, params, covariates, regimen):
    """Validate the per-subject inputs and find the number of subjects (arrays are sliced per chunk later)."""
    sizes: dict[str, int] = {}
    checked = []
    for kind, given, known in (("parameter", params, m.parameter_names),
                               ("covariate", covariates, m.covariate_names)):
        if given is None:
            checked.append(None)
            continue
        values = named_arrays(given, known, kind, m.name)
        for name, arr in values.items():
            if arr.ndim == 1:
                sizes[f"{kind} {name!r}"] = arr.shape[0]
        checked.append(values)
    regimens = regimen
    if not (regimen is None or isinstance(regimen, Regimen | Bolus | Infusion)):
        try:
            regimens = list(regimen)
        except TypeError:
            raise PkpdError(f"regimen: expected a Regimen or a list of Regimens (one per subject); got "
                            f"{type(regimen).__name__}") from None
        sizes["regimen list"] = len(regimens)
    elif isinstance(regimen, Bolus | Infusion):
        regimens = Regimen((regimen,))
    if len(set(sizes.values())) > 1:
        raise PkpdError("inconsistent number of subjects: " + ", ".join(f"{k} gives {v}" for k, v in sizes.items()))
    n = next(iter(sizes.values()), 1)
    if n == 0:
        raise PkpdError(f"the population is empty: {next(iter(sizes))} has no values; give at least one subject")
    return n, checked[0], checked[1], regimens


def _slice(values: dict | None, start: int, stop: int) -> dict | None:
    if values is None:
        return None
    return {k: (v[start:stop] if v.ndim == 1 else v) for k, v in values.items()}


@dataclass(frozen=True, eq=False)
class _ChunkJob:
    """What every chunk of one simulate_summary call shares (sent once to each Dask worker). Private."""

    cm: CompiledModel
    regimens: object
    times: np.ndarray
    params: dict | None
    covariates: dict | None
    settings: SolverSettings
    needed: tuple[str, ...]  # outputs simulated into rows: the summarised ones first
    n_summarised: int
    metrics: tuple
    kept_idx: dict


def _summary_chunk(job: _ChunkJob, start: int, stop: int, rows: np.ndarray):
    """Simulate subjects ``start:stop`` into ``rows[:, :, :size]``; return (status, metrics, kept values)."""
    from ._native_summaries import kernels as kernels_for

    kernels = kernels_for(job.cm.engine)
    t, size = job.times, stop - start
    regimens = job.regimens
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BoundsWarning)  # checked once for the population by simulate_summary
        sim = simulate(job.cm, regimens if isinstance(regimens, Regimen | None) else regimens[start:stop], t,
                       params=_slice(job.params, start, stop), covariates=_slice(job.covariates, start, stop),
                       settings=job.settings, subject_ids=np.arange(start + 1, stop + 1), outputs=True,
                       states=False, outcomes=False)
    status = sim.status
    kernels.transpose(tuple(sim.outputs[o] for o in job.needed), rows)
    del sim  # the solver's buffer: only the rows are needed from here on
    ok = status == 0
    row_of = {o: i for i, o in enumerate(job.needed)}
    metrics = {}
    for mt in job.metrics:
        values = rows[row_of[mt.output], :, :size].T  # (n_chunk, n_times), a view
        metrics[mt.name] = np.full(size, np.nan)
        metrics[mt.name][ok] = _metric_values(mt, t, values if ok.all() else values[ok])
    kept = {o: rows[row_of[o]][idx, :size].T.copy() for o, idx in job.kept_idx.items()}
    return status, metrics, kept


def _summary_task(job: _ChunkJob, bounds: tuple[int, int]):
    """One chunk as a pure task (Dask): status, the summarised outputs' rows, metrics and kept values."""
    start, stop = bounds
    rows = np.empty((len(job.needed), job.times.size, stop - start))
    status, metrics, kept = _summary_chunk(job, start, stop, rows)
    return status, np.ascontiguousarray(rows[:job.n_summarised]), metrics, kept


def _exact_percentiles(rows: np.ndarray, levels, status) -> np.ndarray:
    """np.percentile over subjects of rows (n_outputs, n_times, n): the in-memory result, bit for bit."""
    n_out, n_times, _ = rows.shape
    if not levels or not n_out:
        return np.empty((n_out, len(levels), n_times))
    ok = status == 0
    data = rows if ok.all() else rows[:, :, ok]
    if data.shape[2] == 0:
        return np.full((n_out, len(levels), n_times), np.nan)
    if np.isnan(data).any():
        out = np.empty((n_out, len(levels), n_times))
        for i in range(n_out):  # as Simulation.percentiles: NaN ignored (an all-NaN time gives NaN, not a warning)
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                out[i] = np.nanpercentile(data[i], levels, axis=1)
        return out
    return np.stack([np.percentile(data[i], levels, axis=1) for i in range(n_out)])


# ------------------------------------------------------------------------------------------------ streaming state
class _Statistics:
    """Running moments (count, mean, sum of squared deviations), exact min/max and bucket histograms per
    (output, time) row. Private and mutable: it lives only inside one simulate_summary call."""

    def __init__(self, n_outputs: int, n_times: int, *, histogram: bool, n_subjects: int):
        shape = (n_outputs, n_times)
        self.shape, self.histogram = shape, histogram
        self.count = np.zeros(shape, dtype=np.int64)
        self.mean = np.zeros(shape)
        self.m2 = np.zeros(shape)
        self.lower = np.full(shape, np.inf)
        self.upper = np.full(shape, -np.inf)
        n_rows = n_outputs * n_times
        self.resolution = RESOLUTION
        self.base = np.zeros(n_rows, dtype=np.int64)  # first key of each row's window
        self.width = np.zeros(n_rows, dtype=np.int64)  # number of buckets of each row (0: no value seen yet)
        self.offset = np.zeros(n_rows + 1, dtype=np.int64)  # row r owns counts[offset[r]:offset[r + 1]]
        # a bucket holds at most n_subjects values: 4-byte counts unless the population is over 2**31 - 1
        self.dtype = np.int32 if n_subjects < 2**31 else np.int64
        self.counts = np.zeros(0, dtype=self.dtype)

    @property
    def shift(self) -> int:
        return 52 - self.resolution

    def add(self, rows: np.ndarray, n: int, engine: str) -> None:
        from ._native_summaries import kernels as kernels_for

        kernels = kernels_for(engine)

        shape = self.shape
        count, klo, khi = (np.empty(shape, dtype=np.int64) for _ in range(3))
        total, lower, upper, sq_dev = (np.empty(shape) for _ in range(4))
        kernels.scan(rows, n, self.shift, count, total, lower, upper, klo, khi)
        has = count > 0
        mean = np.divide(total, count, out=np.zeros(shape), where=has)
        if self.histogram:
            self._fit(klo.reshape(-1), khi.reshape(-1), has.reshape(-1))
        kernels.accumulate(rows, n, self.shift, mean, sq_dev, self.counts, self.base, self.offset, self.histogram)
        # Chan et al. 1983: merge (count, mean, M2) of the chunk into the running totals
        n_a, n_b = self.count, count
        n = n_a + n_b
        w = np.divide(n_b, n, out=np.zeros(shape), where=n > 0)  # exactly 1.0 for the first chunk
        delta = mean - self.mean
        self.mean = np.where(has, self.mean + delta * w, self.mean)
        self.m2 = np.where(has, self.m2 + sq_dev + delta * delta * (n_a * w), self.m2)
        self.count = n
        self.lower = np.where(has, np.minimum(self.lower, lower), self.lower)
        self.upper = np.where(has, np.maximum(self.upper, upper), self.upper)

    def mean_sd(self) -> tuple[np.ndarray, np.ndarray]:
        mean = np.where(self.count > 0, self.mean, np.nan)
        several = self.count > 1
        var = np.divide(self.m2, self.count - 1, out=np.full(self.shape, np.nan), where=several)
        return mean, np.sqrt(var, out=var, where=several)

    # ---------------------------------------------------------------------------------------- histograms
    def _fit(self, klo, khi, has) -> None:
        """Make every row's window hold this chunk's keys: widen where needed, coarsen if too many buckets."""
        while True:
            top = self.base + self.width - 1
            need = has & ((self.width == 0) | (klo < self.base) | (khi > top))
            if not need.any():
                return
            idx = np.flatnonzero(need)
            fresh = self.width[idx] == 0
            lo = np.where(fresh, klo[idx], np.minimum(self.base[idx], klo[idx]))
            hi = np.where(fresh, khi[idx], np.maximum(top[idx], khi[idx]))
            span = hi - lo + 1
            pad = span // 4 + 1  # room for the tails of later chunks: widening is then rare
            new_base, new_width = self.base.copy(), self.width.copy()
            new_base[idx], new_width[idx] = lo - pad, span + 2 * pad
            if new_width.sum() <= _MAX_BUCKETS or self.resolution <= _MIN_RESOLUTION:
                self._relayout(new_base, new_width, 0)
                return
            # Too many buckets for the memory budget: halve the resolution of every histogram and try again.
            top_coarse = (self.base + self.width - 1) >> 1
            base_coarse = self.base >> 1
            self._relayout(base_coarse, np.where(self.width > 0, top_coarse - base_coarse + 1, 0), 1)
            self.resolution -= 1
            klo, khi = klo >> 1, khi >> 1

    def _relayout(self, new_base, new_width, coarsen: int) -> None:
        new_offset = np.zeros_like(self.offset)
        np.cumsum(new_width, out=new_offset[1:])
        new_counts = np.zeros(int(new_offset[-1]), dtype=self.dtype)
        nz = np.flatnonzero(self.counts)
        if nz.size:
            row = np.searchsorted(self.offset, nz, side="right") - 1
            key = (self.base[row] + (nz - self.offset[row])) >> coarsen
            pos = new_offset[row] + key - new_base[row]
            if coarsen:  # several buckets merge into one (float weights are exact below 2**53)
                new_counts += np.bincount(pos, weights=self.counts[nz], minlength=new_counts.size).astype(self.dtype)
            else:
                new_counts[pos] = self.counts[nz]
        self.base, self.width, self.offset, self.counts = new_base, new_width, new_offset, new_counts

    def percentiles(self, levels) -> np.ndarray:
        """Percentiles (n_outputs, n_levels, n_times) from the histograms (see the module docstring)."""
        n_out, n_times = self.shape
        n = self.count.reshape(-1)
        lower, upper = self.lower.reshape(-1), self.upper.reshape(-1)
        cum = np.cumsum(self.counts, dtype=np.int64)
        before = np.concatenate(([0], cum))[self.offset[:-1]]  # values in the rows before each row
        has = n > 0
        out = np.full((n.size, len(levels)), np.nan)

        def order_statistic(k):  # value of the k-th smallest (0-based) of each row with values
            flat = np.searchsorted(cum, before[has] + k, side="right")
            key = self.base[has] + flat - self.offset[:-1][has]
            value = np.clip(_bucket_value(key, self.shift), lower[has], upper[has])
            value = np.where(k == 0, lower[has], value)
            return np.where(k == n[has] - 1, upper[has], value)

        for j, q in enumerate(levels):
            h = (n[has] - 1) * (q / 100.0)
            lo = np.floor(h).astype(np.int64)
            frac = h - lo
            hi = np.minimum(lo + 1, n[has] - 1)
            a, b = order_statistic(lo), order_statistic(hi)
            out[has, j] = a + frac * (b - a)
        return out.reshape(n_out, n_times, len(levels)).transpose(0, 2, 1).copy()


def _bucket_value(key: np.ndarray, shift: int) -> np.ndarray:
    """Representative value 2 lo hi / (lo + hi) of each bucket [lo, hi) (minimises the worst relative error)."""
    neg = key < 0
    k = np.where(neg, ~key, key)
    lo = (k << shift).view(np.float64)
    hi = np.minimum((k + 1) << shift, _INF_BITS).view(np.float64)
    with np.errstate(all="ignore"):
        rep = np.where(np.isinf(hi), lo, lo * (2.0 / (1.0 + lo / hi)))
    return np.where(neg, -rep, rep)
