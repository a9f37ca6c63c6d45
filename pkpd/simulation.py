"""simulate(): the public entry point, and the Simulation result (module named simulation so that it never
shadows the function pkpd.simulate).

One call simulates one subject or a batch: every subject may have its own parameters, covariates (weight...) and
regimen. The batch runs in compiled code across all cores (generated C on POSIX threads, or numba ``prange``), never
as a Python loop over subjects calling a solver. Integration restarts exactly at every dose and at every infusion
start and stop.
"""

from __future__ import annotations

import mmap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from . import expressions as ex
from . import units as un
from ._params import broadcast_named, warn_outside_bounds
from .compile import CompiledModel, compile_model
from .dosing import Bolus, Infusion, Regimen
from .errors import DataError, DosingError, PkpdError, SimulationError
from .model import Model
from .settings import SolverSettings

_STATUS = {
    0: "ok",
    1: "too many steps (max_steps reached)",
    2: "step size became too small (the solution may blow up or be discontinuous)",
    # also where the derivatives turn NaN or inf within a step (e.g. sqrt of a state that crossed 0): each such step
    # is rejected and shrunk until it is below the smallest step, and the engines report this, not status 2
    3: "non-finite values (NaN or inf) in the states or their derivatives",
    4: "singular iteration matrix in the stiff solver",
    5: "an output is NaN or infinite at a requested time (the states are finite)",
}
_REMEDY = {
    1: "Raise SolverSettings(max_steps=...), loosen rtol/atol, or check parameter values for extreme rates.",
    2: "Check the parameters (negative or huge rates?), or try SolverSettings(method='rodas4').",
    3: "Check the parameters (negative or huge rates make the solution overflow), the initial values, and "
       "expressions that give NaN or inf: log(0), x/0, or sqrt, log or a non-integer power of a state that turned "
       "negative.",
    4: "Check the parameters; try SolverSettings(method='tsit5') or tighter tolerances.",
    5: "Check the output expressions for this subject's values (e.g. log() of a value <= 0, or x/0).",
}
#: Status of a subject whose states were solved but one of whose outputs is NaN or infinite at a requested time.
OUTPUT_NOT_FINITE = 5


@dataclass(frozen=True)
class EventTable:
    """Compiled events of a batch (private layout for the integrator; padded per subject)."""

    time: np.ndarray  # (n_subjects, max_events) [model time unit]
    kind: np.ndarray  # int64, see pkpd._integrator
    index: np.ndarray  # int64 state (or q) index
    value: np.ndarray  # amount [state unit] or rate [state unit / time unit]
    count: np.ndarray  # (n_subjects,) int64


@dataclass(frozen=True, eq=False)
class Simulation:
    """The result of :func:`simulate`: arrays of shape (n_subjects, n_times), one per state and output.

    Attributes
    ----------
    times : ndarray, shape (n_times,)
        Output times [``time_unit``]. Values at a dose time are *after* the dose (right-continuous).
    time_unit : str
    subject_ids : ndarray, shape (n_subjects,)
    states, outputs : dict[str, ndarray (n_subjects, n_times)]
        Trajectories in the declared units (``units``).
    units : dict[str, str]
        Unit of every state and output.
    params : dict[str, ndarray (n_subjects,)]
        Parameter values used, per subject.
    covariates : dict[str, ndarray (n_subjects,)]
    regimens : tuple[Regimen, ...]
        One per subject (the same object repeated when shared).
    status : ndarray (n_subjects,) of int
        0 = solved; 1-4 = the solver failure code (only with ``on_failure="mark"``): 1 too many steps, 2 the step
        became too small with finite values (a blow-up or a discontinuity), 3 NaN or inf in the states or their
        derivatives (an overflow, log(0), x/0, sqrt of a state gone negative...), 4 a singular Rodas4 iteration
        matrix; 5 = solved, but an output is NaN or infinite at a requested time (a warning says which; the values
        are kept as computed).
    model_name, model_version : str
    settings : SolverSettings
    n_steps : ndarray (n_subjects,)
        Accepted plus rejected steps per subject (work count); with the closed form of a linear model
        (:mod:`pkpd.closed_form`), the exact steps from output to output and event to event.
    labels, scales : dict[str, str]
        Per output, the human label and the declared axis scale of the model file (``Output.label``,
        ``Output.scale``), which figures use.
    outcomes : pandas.DataFrame or None
        For a model with clinical endpoints (:mod:`pkpd.endpoints`): the drawn records ``ID, TIME, output, DV``
        (events and censorings, responses, grades, counts; see :mod:`pkpd.outcomes`); None otherwise.
    seed : int or None
        The seed the outcomes were drawn with (drawn from the operating system and recorded when none was given).
    model : Model or None
        The model as declared (for the NONMEM layout of :meth:`to_dataframe`).

    Examples
    --------
    >>> import numpy as np, pkpd
    >>> m = pkpd.load_model("pk_1cmt_iv")
    >>> sim = pkpd.simulate(m, pkpd.Regimen.single(pkpd.Dose(100, "mg")), np.linspace(0, 24, 25))
    >>> sim.outputs["conc"].shape
    (1, 25)
    """

    times: np.ndarray
    time_unit: str
    subject_ids: np.ndarray
    states: dict[str, np.ndarray]
    outputs: dict[str, np.ndarray]
    units: dict[str, str]
    params: dict[str, np.ndarray]
    covariates: dict[str, np.ndarray]
    regimens: tuple
    status: np.ndarray
    model_name: str
    model_version: str
    settings: SolverSettings
    n_steps: np.ndarray = field(repr=False)
    labels: dict = field(default_factory=dict, repr=False)
    scales: dict = field(default_factory=dict, repr=False)
    outcomes: object = field(default=None, repr=False)
    seed: int | None = field(default=None, repr=False)
    model: object = field(default=None, repr=False)

    @property
    def n_subjects(self) -> int:
        """Number of subjects."""
        return int(self.subject_ids.shape[0])

    def __getitem__(self, name: str) -> np.ndarray:
        """The (n_subjects, n_times) array of an output or state."""
        if name in self.outputs:
            return self.outputs[name]
        if name in self.states:
            return self.states[name]
        from .errors import did_you_mean

        raise KeyError(f"no output or state {name!r}." + did_you_mean(name, list(self.outputs) + list(self.states)))

    def percentiles(self, name: str, q: Sequence[float] = (5, 50, 95)) -> np.ndarray:
        """Percentiles across subjects at each time, shape (len(q), n_times) (failed subjects ignored)."""
        return np.nanpercentile(self[name], q, axis=0)

    def to_dataframe(self, outputs: str | Sequence[str] | None = None, *, times=None, layout: str = "long",
                     include_states: bool = False):
        """The trajectories as a table (pandas DataFrame): tidy long (default) or wide.

        Parameters
        ----------
        outputs : str or sequence of str, optional
            Outputs (or states) to include, in this order. Default: every output, plus the states when
            ``include_states``.
        times : array_like, optional
            Keep only these output times [``time_unit``]; each must be one of :attr:`times`.
        layout : {"long", "wide", "nonmem"}
            ``"long"``: columns ``ID, TIME, name, value, unit``, one row per subject, time and output.
            ``"wide"``: columns ``ID, TIME`` and one column per output, named ``"NAME [unit]"``, one row per
            subject and time (a fifth of the memory for five outputs).
            ``"nonmem"``: for a model with clinical endpoints, a NONMEM dataset of the doses (``EVID=1``, ``AMT``
            in the dose target's unit, which ``AMTU`` states, per-kg doses multiplied by ``WT``, ``CMT`` the dose
            target, ``RATE``/``DUR`` for infusions) and the drawn endpoint records (``EVID=0``, ``DV``, ``DVID``
            the output; ``outputs`` selects which endpoints), ``TIME`` in the model's time unit, plus one column per
            covariate: ready for :func:`pkpd.fit` / :func:`pkpd.fit_population`.
        include_states : bool
            Add the ODE states to the default selection.

        Returns
        -------
        pandas.DataFrame

        Warns
        -----
        LargeTableWarning
            Before building a table of more than :data:`LARGE_TABLE_ROWS` rows (5 million: about 0.2 GB of
            numbers, 0.75 GB with pandas' per-row text in the long layout); the message says the size and how to
            make it smaller.

        Examples
        --------
        >>> import numpy as np, pkpd
        >>> m = pkpd.load_model("pk_1cmt_iv")
        >>> sim = pkpd.simulate(m, pkpd.Regimen.single(pkpd.Dose(100, "mg")), np.arange(0, 25.0))
        >>> sim.to_dataframe(times=[0, 12]).values.tolist()  # conc = 100/32 exp(-2.8/32 t)
        [[1, 0.0, 'conc', 3.125, 'mg/L'], [1, 12.0, 'conc', 1.0935..., 'mg/L']]
        >>> list(sim.to_dataframe(layout="wide").columns)
        ['ID', 'TIME', 'conc [mg/L]']
        >>> sim.to_dataframe(layout="nonmem")[["ID", "TIME", "EVID", "AMT", "CMT"]].values.tolist()
        [[1, 0.0, 1, 100.0, 'iv']]
        """
        import warnings

        import pandas as pd

        if layout == "nonmem":
            from .outcomes import nonmem_table

            return nonmem_table(self, [outputs] if isinstance(outputs, str) else outputs)
        from .errors import LargeTableWarning, did_you_mean

        if outputs is None:
            names = list(self.outputs) + (list(self.states) if include_states else [])
        else:
            names = [outputs] if isinstance(outputs, str) else list(outputs)
        known = list(self.outputs) + list(self.states)
        for name in names:
            if name not in known:
                raise PkpdError(f"to_dataframe: no output or state {name!r}." + did_you_mean(str(name), known))
        if layout not in ("long", "wide"):
            raise PkpdError(f"to_dataframe: layout must be 'long', 'wide' or 'nonmem'; got {layout!r}")
        columns = _time_columns(self.times, times)
        t = self.times[columns]
        n = self.n_subjects
        rows = n * t.size * (len(names) if layout == "long" else 1)
        if rows > LARGE_TABLE_ROWS:
            what = f"{n} subjects x {t.size} times" + (f" x {len(names)} outputs" if layout == "long" else "")
            warnings.warn(f"to_dataframe: the table will have {rows:,} rows ({what}); select outputs=[...] and/or "
                          "times=[...], use layout='wide' (one column per output), or summarise first "
                          "(Simulation.percentiles, pkpd.simulate_summary)", LargeTableWarning, stacklevel=2)
        ids, tt = np.repeat(self.subject_ids, t.size), np.tile(t, n)
        if layout == "wide":
            frame = {"ID": ids, "TIME": tt}
            frame.update({f"{name} [{self.units[name]}]": self[name][:, columns].reshape(-1) for name in names})
            return pd.DataFrame(frame)
        frames = [pd.DataFrame({"ID": ids, "TIME": tt, "name": name, "value": self[name][:, columns].reshape(-1),
                                "unit": self.units[name]}) for name in names]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
            columns=["ID", "TIME", "name", "value", "unit"])

    def plot(self, names: Sequence[str] | None = None, **kwargs):
        """One panel per output against time, units on the axes, doses marked; a population as median and band.

        Options (``bands=``, ``time_unit=``, ``subjects=``, ``ax=``, ``label=``...) as
        :func:`pkpd.plots.plot_simulation`.
        """
        from .plots import plot_simulation

        return plot_simulation(self, names, **kwargs)

    def __repr__(self) -> str:
        failed = int(np.count_nonzero(self.status))
        outs = ", ".join(f"{k} [{self.units[k]}]" for k in self.outputs)
        return (f"Simulation of {self.model_name!r}: {self.n_subjects} subject(s) x {self.times.size} times "
                f"({self.times[0]:g}-{self.times[-1]:g} {self.time_unit}); outputs: {outs}"
                + (f"; {failed} FAILED (see .status)" if failed else ""))

    def _repr_html_(self) -> str:
        import html

        rows = []
        for k, v in self.outputs.items():
            med = np.nanmedian(v, axis=0)
            rows.append(f"<tr><td>{html.escape(k)}</td><td>{html.escape(self.units[k])}</td>"
                        f"<td>{med[0]:.4g}</td><td>{np.nanmax(med):.4g}</td><td>{med[-1]:.4g}</td></tr>")
        failed = int(np.count_nonzero(self.status))
        warn = f"<p style='color:#b00'><b>{failed} subject(s) failed</b> (see .status)</p>" if failed else ""
        return (f"<div><b>Simulation</b> of {html.escape(self.model_name)} v{html.escape(self.model_version)}: "
                f"{self.n_subjects} subject(s), {self.times.size} times from {self.times[0]:g} to "
                f"{self.times[-1]:g} {html.escape(self.time_unit)}{warn}<table><tr><th>output</th><th>unit</th>"
                f"<th>median at {self.times[0]:g} {html.escape(self.time_unit)}</th><th>peak of the median</th>"
                f"<th>median at {self.times[-1]:g} {html.escape(self.time_unit)}</th></tr>{''.join(rows)}</table>"
                "</div>")


#: :meth:`Simulation.to_dataframe` warns before building a table with more rows than this.
LARGE_TABLE_ROWS = 5_000_000


def _time_columns(all_times: np.ndarray, times) -> np.ndarray:
    """Indices of the requested output times (all by default); each must be one of the simulated times."""
    if times is None:
        return np.arange(all_times.size)
    wanted = np.atleast_1d(np.asarray(times, dtype=float))
    index = np.clip(np.searchsorted(all_times, wanted), 0, all_times.size - 1)
    scale = max(1.0, float(np.max(np.abs(all_times)))) if all_times.size else 1.0
    for k, want in enumerate(wanted):
        nearest = min((index[k], max(index[k] - 1, 0)), key=lambda i: abs(all_times[i] - want))
        if abs(all_times[nearest] - want) > 1e-9 * scale:
            raise PkpdError(f"to_dataframe: time {want:g} is not one of the simulated times (nearest "
                            f"{all_times[nearest]:g}); simulate at the times you want in the table")
        index[k] = nearest
    return index


# ------------------------------------------------------------------------------------------------------ simulate
def simulate(
    model: Model | CompiledModel,
    regimen: Regimen | Sequence[Regimen] | None,
    times,
    *,
    params: Mapping[str, object] | None = None,
    covariates: Mapping[str, object] | None = None,
    settings: SolverSettings | None = None,
    subject_ids: Sequence | None = None,
    outputs: bool = True,
    states: bool = True,
    changes: Mapping[str, tuple] | None = None,
    backend: str = "cpu",
    progress: bool | None = None,
    max_memory_gb: float | None = None,
    seed=None,
    observe: Mapping[str, object] | None = None,
    follow_up: float | None = None,
    dropout=None,
    outcomes: bool | Sequence[str] = True,
) -> Simulation:
    """Simulate one subject or a batch of subjects under a dosing regimen.

    Main arguments
    --------------
    model : Model or CompiledModel
        E.g. ``pkpd.load_model("msc_salvadori")``.
    regimen : Regimen, sequence of Regimen (one per subject), or None
        Doses; ``None`` simulates without doses.
    times : array_like, shape (n_times,)
        Increasing output times [model time unit]; integration starts at ``min(times[0], first dose)``.
    params : dict[str, float or array (n_subjects,)], optional
        Parameter values overriding the model's; arrays give one value per subject. A value outside the
        parameter's bounds (for an array: its median) is used, with a :class:`~pkpd.errors.BoundsWarning`.
    covariates : dict[str, float or array (n_subjects,)], optional
        Covariates, e.g. ``{"WT": 70}`` [kg]. Per-kg doses need ``WT`` given explicitly.

    Other arguments
    ---------------
    settings : SolverSettings, optional
        Method, tolerances, failure handling.
    subject_ids : sequence, optional
        IDs for the result (default 1..n).
    outputs, states : bool
        Keep outputs / states (dropping one saves memory for large batches).
    changes : dict[str, (times, values)], optional
        Parameters or covariates that change during the run, e.g. occasion-to-occasion values:
        ``{"CL": (starts, values)}`` with ``starts`` [model time unit] and ``values`` [parameter unit] arrays of
        shape (k,) or (n_subjects, k); each value applies from its start time on (``inf`` start: unused). Derived
        quantities follow; dose amounts keep the values at the start.
    backend : {"cpu", "native", "numba", "jax"}
        ``"cpu"`` (default): the compiled CPU engine, all cores; that of a CompiledModel given, else
        :func:`pkpd.compile.default_engine` (``"native"``, generated C, where a C compiler is found, else
        ``"numba"``). ``"native"`` or ``"numba"`` name that engine. ``"jax"``: the same model and events on JAX in
        float64 (optional extra ``pip install -e ".[gpu]"``), on a GPU when JAX sees one, else on the CPU; the
        first call per model and batch size compiles (seconds). See :mod:`pkpd.jax_backend`.
    progress : bool or None
        Progress bar for batches of more than 20,000 subjects, which run in chunks (Ctrl-C stops between chunks
        with a clear message): None (default) shows one when the run looks longer than ~2 s and someone can see it
        (terminal or Jupyter); True always; False never.
    max_memory_gb : float, optional
        Largest result the call may allocate [GB]; default ``$PKPD_MAX_MEMORY_GB``, else half the memory available
        when the call starts. A larger run is refused before anything is allocated (use
        :func:`pkpd.simulate_summary` for huge populations: it summarises them in bounded memory).

    Clinical endpoints (models with time-to-event, binary, ordinal or count outputs; see :mod:`pkpd.outcomes`)
    ----------------------------------------------------------------------------------------------------------
    seed : int or numpy SeedSequence, optional
        Seed of the drawn outcomes (``Simulation.outcomes``); without one a seed is drawn and recorded in
        ``Simulation.seed``.
    observe : dict[str, array_like], optional
        Assessment times [model time unit] of binary, ordinal and count outputs (default: every output time >= 0).
    follow_up : float, optional
        End of follow-up of time-to-event outputs [model time unit] (default: the last output time).
    dropout : float or array (n_subjects,), optional
        Dropout times [model time unit]: events are censored there, and later assessments are not made.
    outcomes : bool or sequence of str
        Draw the outcomes (default True), only those of the endpoint outputs named, or none (False: only the
        expected values in ``outputs``).

    Returns
    -------
    Simulation
        Arrays (n_subjects, n_times) per state and output.

    Raises
    ------
    PkpdError
        Unknown parameter or covariate (with close matches), inconsistent batch sizes, times not increasing, a
        result larger than ``max_memory_gb``.
    DosingError
        Unknown dose target, per-kg dose without a weight, non-positive modelled duration.
    SimulationError
        The solver failed: names the subject, the time reached, the reason and a remedy.

    Examples
    --------
    >>> import numpy as np, pkpd
    >>> m = pkpd.load_model("msc_salvadori")
    >>> reg = pkpd.Regimen.every(72, "h", count=8, dose=pkpd.Dose(2e6, "cell/kg"))
    >>> sim = pkpd.simulate(m, reg, np.arange(0, 1009.0), covariates={"WT": 70})
    >>> sim.outputs["IL10"].shape
    (1, 1009)
    """
    from ._progress import check_progress

    check_progress(progress)
    settings = settings or SolverSettings()
    if not isinstance(settings, SolverSettings):
        raise PkpdError(f"settings must be a SolverSettings; got {type(settings).__name__}")
    solve = batch_runner(backend)
    cm = compiled_for(model, backend)
    m = cm.model

    t = _times(times)
    regimens = _regimens(regimen)
    param_values, cov_values, n = _subject_inputs(m, params, covariates, len(regimens) if len(regimens) > 1 else None)
    warn_outside_bounds(m, params or {})
    if len(regimens) == 1:
        regimens = regimens * n
    limit = memory_limit(max_memory_gb)
    check_result_size(n, t.size, len(m.states) * bool(states) + len(m.outputs) * bool(outputs), limit)
    explicit_covs = set(covariates or {})
    q = cm.build_q(param_values, cov_values)
    with np.errstate(all="ignore"):  # a non-finite initial value is checked below, naming its subject
        y0 = cm.initial_state(q)
    if not np.all(np.isfinite(y0)):
        bad = int(np.argwhere(~np.isfinite(y0))[0][0])
        raise SimulationError("initial values are not finite; check the parameters of this subject",
                              subject=_sid(subject_ids, bad))
    events = build_events(cm, regimens, q, explicit_covs)
    if changes:
        events = merge_events(events, _change_events(cm, changes, n))

    ids = np.arange(1, n + 1) if subject_ids is None else np.asarray(subject_ids)
    if ids.shape[0] != n:
        raise PkpdError(f"subject_ids has {ids.shape[0]} entries for {n} subjects")
    tt = t[None, :]
    pre = np.zeros_like(tt, dtype=np.int64)
    n_out = np.array([t.size], dtype=np.int64)
    t0 = np.minimum(t[0], np.where(events.count > 0, events.time[:, 0], np.inf))
    sol = solve(cm, q, y0, events, tt, pre, n_out, t0, settings, keep_states=states, keep_outputs=outputs,
                progress=progress, desc=f"{m.name}: simulate", max_bytes=limit)
    status = sol["status"]
    if np.any(status != 0):
        bad = np.flatnonzero(status)
        if settings.on_failure == "raise":
            i = int(bad[0])
            code = int(status[i])
            more = f" ({bad.size} subjects failed in all)" if bad.size > 1 else ""
            raise SimulationError(f"the solver failed: {_STATUS.get(code, code)}{more}. {_REMEDY.get(code, '')}",
                                  subject=ids[i], time=float(sol["counters"][i, 3]))
        for key in ("states", "outputs"):
            if sol[key] is not None:
                if not sol[key].flags.writeable:  # the JAX backend hands over its host buffers as they came
                    sol[key] = np.array(sol[key])
                sol[key][bad] = np.nan
    if outputs and m.outputs:
        _flag_non_finite_outputs(sol["outputs"], status, m.output_names, t, ids)
    st = {s: sol["states"][:, :, i] for i, s in enumerate(m.state_names)} if states else {}
    out = {o: sol["outputs"][:, :, i] for i, o in enumerate(m.output_names)} if outputs else {}
    drawn, used_seed = None, None
    if cm.declared is not None and outcomes:
        from .outcomes import _observe_arg, draw_outcomes

        if seed is None:
            seed = int(np.random.SeedSequence().entropy % (2**63))
        used_seed = seed if isinstance(seed, int | np.integer) else None
        drawn = draw_outcomes(cm, q, y0, events, t0, settings, ids, times=t, observe=_observe_arg(observe),
                              follow_up=follow_up, dropout=dropout, rng=np.random.default_rng(seed),
                              skip=status != 0, only=None if outcomes is True else outcomes)
    unit_map = {s.name: s.unit for s in m.states} | {o.name: o.unit for o in m.outputs}
    return Simulation(
        times=_readonly(t), time_unit=m.time_unit, subject_ids=ids, states=st, outputs=out, units=unit_map,
        params={p: param_values[:, i] for i, p in enumerate(m.parameter_names)},
        covariates={c: cov_values[:, i] for i, c in enumerate(m.covariate_names)}, regimens=tuple(regimens),
        status=status, model_name=m.name, model_version=m.version, settings=settings,
        n_steps=sol["counters"][:, 0].astype(np.int64), labels={o.name: o.label for o in m.outputs if o.label},
        scales={o.name: o.scale for o in m.outputs if o.scale}, outcomes=drawn, seed=used_seed,
        model=cm.declared or m)


def _flag_non_finite_outputs(values: np.ndarray, status: np.ndarray, names, times, ids) -> None:
    """Status 5 and a warning for solved subjects with a NaN or infinite output (values (n, n_times, n_outputs))."""
    import warnings

    from .errors import OutputWarning

    n = values.shape[0]
    with np.errstate(all="ignore"):  # a cheap screen: a sum is finite when every term is (or overflows: checked)
        suspect = ~np.isfinite(np.add.reduce(values.reshape(n, -1), axis=1))
    suspect &= status == 0
    if not suspect.any():
        return
    rows = np.flatnonzero(suspect)
    bad = ~np.isfinite(values[rows])  # (k, n_times, n_outputs)
    hit = bad.any(axis=(1, 2))
    if not hit.any():
        return
    rows, bad = rows[hit], bad[hit]
    status[rows] = OUTPUT_NOT_FINITE
    _, t_i, o_i = np.argwhere(bad[:1])[0]
    names_hit = [names[k] for k in range(len(names)) if bad[:, :, k].any()]
    warnings.warn(f"{rows.size} subject(s) have NaN or infinite values in output(s) {', '.join(names_hit)} "
                  f"(first: subject {ids[rows[0]]}, {names[o_i]} at t = {times[t_i]:g}); their status is "
                  f"{OUTPUT_NOT_FINITE}. {_REMEDY[OUTPUT_NOT_FINITE]}", OutputWarning, stacklevel=3)


#: Fraction of the memory available when a call starts that its results may take by default.
MEMORY_FRACTION = 0.5


def memory_limit(max_memory_gb: float | None = None) -> float:
    """Largest result a simulation may allocate [bytes]: ``max_memory_gb``, else ``$PKPD_MAX_MEMORY_GB``, else
    :data:`MEMORY_FRACTION` of the memory available now (``/proc/meminfo``; physical memory elsewhere).

    Either limit is a number of gigabytes > 0 (``inf``: no limit); anything else is refused (PkpdError).

    Examples
    --------
    >>> memory_limit(2.0)
    2000000000.0
    """
    import os

    if max_memory_gb is None:
        env = os.environ.get("PKPD_MAX_MEMORY_GB", "").strip()
        if env:
            try:
                max_memory_gb = float(env)
            except ValueError:
                max_memory_gb = None
            if max_memory_gb is None or not max_memory_gb > 0:
                raise PkpdError(f"PKPD_MAX_MEMORY_GB must be a number of gigabytes > 0; got {env!r}")
    if max_memory_gb is not None:
        if isinstance(max_memory_gb, bool) or not isinstance(max_memory_gb, int | float | np.integer | np.floating) \
                or not max_memory_gb > 0:
            raise PkpdError(f"max_memory_gb must be a number > 0; got {max_memory_gb!r}")
        return float(max_memory_gb) * 1e9
    return MEMORY_FRACTION * _available_bytes()


def _available_bytes() -> float:
    import os

    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return float(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - neither Linux nor POSIX
        return 8e9


def check_result_size(n_subjects: int, n_times: int, n_columns: int, limit: float | None = None) -> None:
    """Refuse, before any allocation, a result of ``n_subjects x n_times x n_columns`` doubles above ``limit``
    [bytes] (default :func:`memory_limit`, consulted only for results of 2**28 bytes (256 MiB) or more)."""
    need = 8.0 * n_subjects * n_times * max(n_columns, 1) + 16.0 * n_times
    if limit is None:
        if need < (1 << 28):
            return
        limit = memory_limit()
    if need > limit:
        raise PkpdError(f"this simulation would need {need / 1e9:.3g} GB for its results ({n_subjects:,} subject(s) "
                        f"x {n_times:,} times x {n_columns} states/outputs), more than the limit of "
                        f"{limit / 1e9:.3g} GB (max_memory_gb=, $PKPD_MAX_MEMORY_GB, default half the memory "
                        "available). Keep fewer times or subjects, drop what you don't need (states=False), or use "
                        "pkpd.simulate_summary, which summarises huge populations chunk by chunk in bounded memory.")


# A batch larger than this many subjects runs in chunks of it: between chunks the progress bar moves and Ctrl-C is
# honoured (a compiled call cannot be interrupted; 20,000 subjects of the shared job take ~0.4 s on 2 cores).
_BATCH_CHUNK = 20_000


def run_batch(cm: CompiledModel, q, y0, events: EventTable, tt, pre, n_out, t0, settings: SolverSettings, *,
              keep_states: bool = True, keep_outputs: bool = True, progress: bool | None = False,
              desc: str = "simulate", max_bytes: float | None = None) -> dict:
    """Run the compiled solver (private API shared by simulate, the NONMEM runner and the fitter); a linear model
    is solved in closed form instead unless ``settings.method`` asks for the ODE solver (:mod:`pkpd.closed_form`).

    Batches of more than :data:`_BATCH_CHUNK` subjects run chunk by chunk into the same result arrays, with a
    progress bar (``progress``: as :class:`pkpd._progress.ChunkProgress`) and a clear KeyboardInterrupt. Results
    larger than ``max_bytes`` (default :func:`memory_limit`) are refused before anything is allocated.
    """
    from ._progress import ChunkProgress
    from .closed_form import run_closed_form, uses_closed_form

    if uses_closed_form(cm.model, settings):
        return run_closed_form(cm, q, y0, events, tt, pre, n_out, t0, keep_states=keep_states,
                               keep_outputs=keep_outputs, progress=progress, desc=desc, max_bytes=max_bytes)
    n = q.shape[0]
    n_times = tt.shape[1]
    ns, no = len(cm.model.states), len(cm.model.outputs)
    check_result_size(n, n_times, ns * bool(keep_states) + no * bool(keep_outputs), max_bytes)
    states_out = result_array((n, n_times, ns)) if keep_states else np.empty((1, 1, ns))
    outputs_out = result_array((n, n_times, max(no, 1))) if keep_outputs else np.empty((1, 1, max(no, 1)))
    status = np.zeros(n, dtype=np.int64)
    counters = np.zeros((n, 4))
    q = np.ascontiguousarray(q, dtype=float)
    y0 = np.ascontiguousarray(y0, dtype=float)
    tt = np.ascontiguousarray(tt, dtype=float)
    pre = np.ascontiguousarray(pre, dtype=np.int64)
    n_out = np.ascontiguousarray(n_out, dtype=np.int64)
    t0 = np.ascontiguousarray(t0, dtype=float)
    shared_times = tt.shape[0] == 1
    wo = keep_outputs and no > 0
    done = 0
    try:
        with ChunkProgress(n, progress=progress if n > _BATCH_CHUNK else False, desc=desc) as bar:
            for a in range(0, max(n, 1), _BATCH_CHUNK):
                b = min(a + _BATCH_CHUNK, n)
                rows = slice(0, 1) if shared_times else slice(a, b)
                cm.module.solve_batch(
                    q[a:b], y0[a:b], events.time[a:b], events.kind[a:b], events.index[a:b], events.value[a:b],
                    events.count[a:b], tt[rows], pre[rows], n_out[rows],
                    np.zeros(b - a, dtype=np.int64) if shared_times else np.arange(b - a, dtype=np.int64), t0[a:b],
                    float(settings.rtol), float(settings.atol), float(settings.max_step), int(settings.max_steps),
                    settings.method_code, states_out[a:b] if keep_states else states_out,
                    outputs_out[a:b] if wo else outputs_out, keep_states, wo, status[a:b], counters[a:b])
                done = b
                bar.advance(b - a)
    except KeyboardInterrupt:
        raise KeyboardInterrupt(f"{desc} interrupted: {done} of {n} subjects had been solved; no result was returned. "
                                "Run again (fewer subjects, or simulate_summary for large populations).") from None
    return {"states": states_out if keep_states else None,
            "outputs": outputs_out[:, :, :no] if keep_outputs else None, "status": status, "counters": counters}


# Result arrays at least this large [bytes] are allocated with their pages populated up front.
_POPULATE_BYTES = 1 << 20


def result_array(shape: tuple[int, ...]) -> np.ndarray:
    """An uninitialised float array for results, its memory mapped in at once where the OS allows it.

    A fresh ``np.empty`` of 100 MB is mapped in page by page when the solver first writes it: tens of thousands of
    page faults, taken inside the parallel batch, cost a quarter of a 10,000-subject run on a virtual machine.
    ``MAP_POPULATE`` maps all of it in one system call (about 7x faster); the memory is released with the array.
    """
    n_bytes = 8 * int(np.prod(shape))
    flag = getattr(mmap, "MAP_POPULATE", None)
    if flag is None or n_bytes < _POPULATE_BYTES:
        return np.empty(shape)
    try:
        buf = mmap.mmap(-1, n_bytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | flag)
    except (OSError, ValueError):
        return np.empty(shape)
    return np.frombuffer(buf, dtype=float).reshape(shape)


def compiled_for(model, backend: str = "cpu") -> CompiledModel:
    """The CompiledModel a backend runs: ``model`` itself if compiled (for the engine named, if one is), else the
    model compiled for the named engine or the default one."""
    engine = backend if backend in ("native", "numba") else None
    if isinstance(model, CompiledModel):
        return (model if engine is None or model.engine == engine
                else compile_model(model.declared or model.model, engine))
    return compile_model(_as_model(model), engine)


def batch_runner(backend: str):
    """The batch solver of a backend: ``run_batch`` (the CPU engines) or ``pkpd.jax_backend.run_batch_jax``."""
    if backend in ("cpu", "native", "numba"):
        return run_batch
    if backend == "jax":
        try:
            from .jax_backend import run_batch_jax
        except ImportError as err:
            raise PkpdError(f'backend="jax" needs JAX, which is not installed ({err}); install it from the pkpd '
                            'folder with pip install -e ".[gpu]" (for NVIDIA GPUs also pip install '
                            '"jax[cuda12]")') from None
        return run_batch_jax
    raise PkpdError(f"backend: unknown backend {backend!r}; choose 'cpu' (the default compiled engine), 'native', "
                    "'numba' or 'jax'")


def merge_events(events: EventTable, extra: EventTable | None) -> EventTable:
    """Merge two event tables in time order (``extra`` after ``events`` at equal times). ``extra`` has a row per
    subject of ``events`` or of one of its repeated copies (it is then tiled)."""
    if extra is None:
        return events
    reps = events.time.shape[0] // extra.time.shape[0]
    time = np.concatenate([events.time, np.tile(extra.time, (reps, 1))], axis=1)
    order = np.argsort(time, axis=1, kind="stable")

    def take(a, b):
        return np.take_along_axis(np.concatenate([a, np.tile(b, (reps, 1))], axis=1), order, 1)

    return EventTable(np.take_along_axis(time, order, 1), take(events.kind, extra.kind),
                      take(events.index, extra.index), take(events.value, extra.value),
                      events.count + np.tile(extra.count, reps))


def _change_events(cm: CompiledModel, changes: Mapping[str, tuple], n: int) -> EventTable:
    """Kind-3 events (set an entry of q) from ``simulate(changes=...)``."""
    from .errors import did_you_mean

    m = cm.model
    settable = m.parameter_names + m.covariate_names
    if not isinstance(changes, Mapping):
        raise PkpdError(f"changes must be a dict name -> (times, values); got {type(changes).__name__}")
    cols_t, cols_i, cols_v = [], [], []
    for name, spec in changes.items():
        if name not in settable:
            raise PkpdError(f"changes: {name!r} is not a parameter or covariate of model {m.name!r}."
                            + did_you_mean(str(name), settable))
        try:
            times, values = spec
            times = np.asarray(times, dtype=float)
            values = np.asarray(values, dtype=float)
        except (TypeError, ValueError):
            raise DataError(f"changes[{name!r}]: expected (times, values) arrays; got {spec!r:.80}") from None
        if times.ndim not in (1, 2) or values.ndim not in (1, 2) or times.shape[-1] != values.shape[-1]:
            raise DataError(f"changes[{name!r}]: times {times.shape} and values {values.shape} must have the same "
                            f"length: one value per start time, as shape (k,) or ({n}, k)")
        try:
            times, values = np.broadcast_arrays(np.atleast_2d(times), np.atleast_2d(values))
            times, values = np.broadcast_to(times, (n, times.shape[1])), np.broadcast_to(values, (n, times.shape[1]))
        except ValueError:
            raise PkpdError(f"changes[{name!r}]: times {np.shape(times)} and values {np.shape(values)} must have "
                            f"shape (k,) or ({n}, k)") from None
        if np.any(np.isnan(times) | (times == -np.inf)) or np.any(~np.isfinite(values) & np.isfinite(times)):
            raise PkpdError(f"changes[{name!r}]: times must be numbers (inf for unused) and values finite")
        cols_t.append(times)
        cols_i.append(np.full(times.shape, cm.q_names.index(name), dtype=np.int64))
        cols_v.append(np.where(np.isfinite(times), values, 0.0))
    return set_events(np.concatenate(cols_t, axis=1), np.concatenate(cols_i, axis=1),
                      np.concatenate(cols_v, axis=1))


def set_events(time: np.ndarray, index: np.ndarray, value: np.ndarray) -> EventTable:
    """Kind-3 events (``q[index] = value`` from ``time`` on: a parameter or covariate changes), arrays (n, w) with
    ``inf`` times for unused entries; each row is sorted by time (stable)."""
    order = np.argsort(time, axis=1, kind="stable")
    time = np.take_along_axis(time, order, 1)
    present = np.isfinite(time)
    return EventTable(time, np.full(time.shape, 3, dtype=np.int64),
                      np.ascontiguousarray(np.take_along_axis(np.broadcast_to(index, time.shape), order, 1),
                                           dtype=np.int64),
                      np.where(present, np.take_along_axis(value, order, 1), 0.0),
                      present.sum(axis=1).astype(np.int64))


# ------------------------------------------------------------------------------------------------------ helpers
def _as_model(model) -> Model:
    if not isinstance(model, Model):
        raise PkpdError(f"model must be a pkpd Model (from pkpd.load_model) or CompiledModel; got "
                        f"{type(model).__name__}")
    return model


def _sid(ids, i):
    return i + 1 if ids is None else ids[i]


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.array(a, dtype=float)
    a.setflags(write=False)
    return a


def _times(times) -> np.ndarray:
    if times is None:
        raise PkpdError("times: give the output times, e.g. np.arange(0, 337) [model time unit]")
    try:
        t = np.asarray(times, dtype=float).reshape(-1)
    except (TypeError, ValueError):
        raise PkpdError(f"times: must be numbers; got {times!r}") from None
    if t.size == 0:
        raise PkpdError("times: at least one output time is needed")
    if not np.all(np.isfinite(t)):
        raise PkpdError(f"times: must be finite; got {t[~np.isfinite(t)][0]}")
    if t.size > 1 and np.any(np.diff(t) <= 0):
        i = int(np.flatnonzero(np.diff(t) <= 0)[0])
        raise PkpdError(f"times: must be strictly increasing; times[{i}] = {t[i]:g} is followed by "
                        f"times[{i + 1}] = {t[i + 1]:g}. Sort them and remove duplicates (np.unique)")
    return t


def _regimens(regimen) -> list[Regimen]:
    if regimen is None:
        return [Regimen.none()]
    if isinstance(regimen, Regimen):
        return [regimen]
    if isinstance(regimen, Bolus | Infusion):
        return [Regimen((regimen,))]
    try:
        items = list(regimen)
    except TypeError:
        raise DosingError(f"regimen: expected a Regimen or a list of Regimens; got {type(regimen).__name__}") from None
    for i, r in enumerate(items):
        if not isinstance(r, Regimen):
            raise DosingError(f"regimen[{i}]: expected a Regimen; got {type(r).__name__}")
    if not items:
        raise DosingError("regimen: the list of regimens is empty")
    return items


def _subject_inputs(m: Model, params, covariates, n_hint):
    pv, n1 = broadcast_named({p.name: p.value for p in m.parameters}, params, "parameter", m.name)
    cv, n2 = broadcast_named({c.name: c.value for c in m.covariates}, covariates, "covariate", m.name)
    sizes = {k: v for k, v in (("params", n1), ("covariates", n2), ("regimens", n_hint)) if v is not None}
    if len(set(sizes.values())) > 1:
        raise PkpdError("inconsistent number of subjects: " + ", ".join(f"{k} give {v}" for k, v in sizes.items()))
    n = next(iter(sizes.values()), 1)
    # values were checked (names, numbers, finite) by broadcast_named
    pv = np.broadcast_to(pv, (n, pv.shape[1])).copy()
    cv = np.broadcast_to(cv, (n, cv.shape[1])).copy()
    return pv, cv, n


def _time_factor(regimen: Regimen, m: Model) -> float:
    return un.convert(regimen.time_unit, m.time_unit)


def build_events(cm: CompiledModel, regimens: Sequence[Regimen], q: np.ndarray, explicit_covariates=()) -> EventTable:
    """Turn per-subject regimens into the compiled event table (amounts in state units, times in model units)."""
    m = cm.model
    n = q.shape[0]
    env = cm.env(q)
    # Subjects whose regimens differ at most in their dose amounts (a dataset's weight-based doses) are handled
    # together: each administration is evaluated for the whole group at once (numpy), and each subject's events
    # are sorted by time with one stable argsort per group.
    groups: dict = {}
    shapes: dict[int, tuple] = {}
    for i, r in enumerate(regimens):
        if id(r) not in shapes:
            shapes[id(r)] = (r.time_unit, tuple(_administration_shape(adm) for adm in r))
        groups.setdefault(shapes[id(r)], []).append(i)
    state_index = {s: i for i, s in enumerate(m.state_names)}
    blocks = []
    for members in groups.values():
        reg = regimens[members[0]]
        if len(reg) == 0:
            continue
        idx = np.asarray(members)
        sub_env = {k: v[idx] for k, v in env.items()}
        tf = _time_factor(reg, m)
        cols_t, cols_k, cols_i, cols_v = [], [], [], []
        for a, adm in enumerate(reg):
            amounts = np.array([regimens[i].administrations[a].dose.amount for i in members], dtype=float)
            times, kinds, values, state = _administration_events(m, adm, tf, sub_env, idx, explicit_covariates,
                                                                 state_index, amounts, n)
            for tk, kk, vk in zip(times, kinds, values):
                cols_t.append(np.broadcast_to(tk, idx.shape))
                cols_k.append(kk)
                cols_i.append(state)
                cols_v.append(np.broadcast_to(vk, idx.shape))
        t_block = np.stack(cols_t, axis=1)
        order = np.argsort(t_block, axis=1, kind="stable")  # at equal times the regimen's order is kept
        blocks.append((idx, np.take_along_axis(t_block, order, 1), np.asarray(cols_k, dtype=np.int64)[order],
                       np.asarray(cols_i, dtype=np.int64)[order],
                       np.take_along_axis(np.stack(cols_v, axis=1), order, 1)))
    width = max([b[1].shape[1] for b in blocks], default=1)
    time = np.full((n, width), np.inf)
    kind = np.zeros((n, width), dtype=np.int64)
    index = np.zeros((n, width), dtype=np.int64)
    value = np.zeros((n, width))
    count = np.zeros(n, dtype=np.int64)
    for idx, bt, bk, bi, bv in blocks:
        w = bt.shape[1]
        time[idx, :w], kind[idx, :w], index[idx, :w], value[idx, :w] = bt, bk, bi, bv
        count[idx] = w
    return EventTable(time, kind, index, value, count)


def _administration_shape(adm) -> tuple:
    """What an administration is, but for its dose amount (subjects whose regimens have the same shapes are
    evaluated together)."""
    return (type(adm), adm.time, adm.target, adm.dose.unit, getattr(adm, "duration", None),
            getattr(adm, "rate", None), getattr(adm, "modelled", None))


def _administration_events(m: Model, adm, time_factor, env, idx, explicit_covariates, state_index, amounts,
                           n_subjects):
    """The events of one administration for the subjects ``idx`` of the batch's ``n_subjects`` (``amounts``: each
    one's dose amount [the dose's unit])."""
    target = _target(m, adm.target)
    k = m.doses.index(target)
    ck = m._checked
    n = idx.size
    dose = adm.dose
    try:
        dose_to_target = un.convert(dose.base_unit, target.unit)
    except un.UnitCheckError:
        raise DosingError(f"dose of {dose.amount:g} {dose.unit} at t={adm.time:g}: its unit does not match dose "
                          f"target {target.name!r}, which takes {target.unit!r}"
                          + (" (per kg)" if dose.per_kg else "")) from None
    amount = amounts * dose_to_target
    if dose.per_kg:
        if "WT" not in m.covariate_names:
            raise DosingError(f"dose {dose.amount:g} {dose.unit}: a per-kg dose needs body weight, but model "
                              f"{m.name!r} declares no WT covariate; give an absolute dose instead")
        if "WT" not in explicit_covariates:
            raise DosingError(f"dose {dose.amount:g} {dose.unit}: a per-kg dose needs each subject's weight; pass "
                              "covariates={'WT': weight_in_kg} to simulate()")
        wt = env["WT"]
        if np.any(wt <= 0):
            raise DosingError(f"dose {dose.amount:g} {dose.unit}: body weight WT must be > 0 kg; got "
                              f"{wt[wt <= 0][0]:g}")
        amount = amount * wt
    with np.errstate(all="ignore"):  # a factor or lag that overflows (or is NaN) is refused below, naming it
        F = np.broadcast_to(np.asarray(ex.evaluate(ck.dose_factor[k], env), dtype=float), (n,))
        lag = np.broadcast_to(np.asarray(ex.evaluate(ck.dose_lag[k], env), dtype=float), (n,))
    conv = ck.dose_conversion[k]
    for what, value in (("bioavailability (factor)", F), ("lag time", lag)):
        if (i := _first_not_finite(value)) >= 0:
            raise DosingError(f"dose target {target.name!r}: the {what} is not finite ({value[i]:g}) for subject "
                              f"number {idx[i] + 1} of {n_subjects}; check the parameter values and covariates it uses")
    if np.any(lag < 0):
        raise DosingError(f"dose target {target.name!r}: lag time must be >= 0; got {lag[lag < 0][0]:g}")
    start = adm.time * time_factor + lag
    with np.errstate(all="ignore"):  # an amount that overflows is refused below, naming it
        into_state = amount * F * conv
    if (i := _first_not_finite(into_state)) >= 0:
        raise DosingError(f"dose of {amounts[i]:g} {dose.unit} at t={adm.time:g} into {target.name!r}: the amount "
                          f"entering the model (amount x bioavailability factor {F[i]:g}) overflows for subject number "
                          f"{idx[i] + 1} of {n_subjects}; check the dose and the parameter values and covariates of "
                          "the factor")
    s = state_index[target.target]
    if isinstance(adm, Bolus):
        return [start], [0], [into_state], s
    # Infusions follow NONMEM: with the rate given, F scales the duration; with the duration given (or
    # modelled), F scales the rate.
    f_dimless = F if ck.dose_factor_dimensionless[k] else np.ones(n)
    if adm.modelled == "duration":
        tree = ck.dose_duration[k]
        if tree is None:
            raise DosingError(f"infusion at t={adm.time:g} has a modelled duration, but dose target "
                              f"{target.name!r} declares no 'duration' expression")
        with np.errstate(all="ignore"):  # a duration that overflows is refused below
            duration = np.broadcast_to(np.asarray(ex.evaluate(tree, env), dtype=float), (n,))
    elif adm.modelled == "rate":
        tree = ck.dose_rate[k]
        if tree is None:
            raise DosingError(f"infusion at t={adm.time:g} has a modelled rate, but dose target {target.name!r} "
                              "declares no 'rate' expression")
        with np.errstate(all="ignore"):  # a rate that is NaN is refused below
            rate = np.broadcast_to(np.asarray(ex.evaluate(tree, env), dtype=float), (n,))
        if np.any(~(rate > 0)):
            raise DosingError(f"dose target {target.name!r}: modelled rate must be > 0; got {rate[~(rate > 0)][0]:g}")
        duration = amount * f_dimless / rate
    elif adm.rate is not None:
        rate_model = adm.rate * dose_to_target / time_factor  # target dose unit per model time unit
        if dose.per_kg:
            rate_model = rate_model * env["WT"]
        duration = amount * f_dimless / rate_model
    else:
        duration = np.full(n, adm.duration * time_factor)
    if np.any(~np.isfinite(duration)) or np.any(duration <= 0):
        bad = duration[~(np.isfinite(duration) & (duration > 0))][0]
        raise DosingError(f"infusion at t={adm.time:g} into {target.name!r}: duration must be > 0 and finite; got "
                          f"{bad:g}")
    with np.errstate(all="ignore"):  # a rate that overflows is refused below, naming it
        rate_state = into_state / duration
    if (i := _first_not_finite(rate_state)) >= 0:
        raise DosingError(f"infusion of {amounts[i]:g} {dose.unit} at t={adm.time:g} into {target.name!r}: its "
                          f"rate (the amount entering the model over a duration of {duration[i]:g} {m.time_unit}) "
                          f"overflows for subject number {idx[i] + 1} of {n_subjects}; give a longer infusion, or a "
                          "bolus")
    return [start, start + duration], [1, 1], [rate_state, -rate_state], s


def _first_not_finite(values: np.ndarray) -> int:
    """Index of the first value that is NaN or infinite; -1 if there is none."""
    bad = np.flatnonzero(~np.isfinite(values))
    return int(bad[0]) if bad.size else -1


def _target(m: Model, name):
    from .errors import ModelFileError

    try:
        return m.dose_target(name)
    except ModelFileError as err:
        raise DosingError(str(err)) from None


