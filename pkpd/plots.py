"""Figures of simulations, in one house style, with units on every axis.

Matplotlib is imported inside the functions only: ``import pkpd.plots`` stays light, and no library code ever
draws. Every figure uses :data:`HOUSE_STYLE` (print-size fonts, no top/right spines, light grid) and colours from
:data:`ARM_COLORS`, the Okabe-Ito colour-blind-safe palette, so a treatment arm keeps its colour from figure to
figure when it is given the same ``color``.

Overlaying simulations (comparing regimens) is done by drawing the second one into the axes of the first::

    fig = plot_simulation(sim_a, label="1 dose")
    plot_simulation(sim_b, ax=fig.axes, label="4 doses")   # next colour, one shared legend

Examples
--------
>>> import numpy as np, pkpd
>>> from pkpd.plots import plot_simulation
>>> m = pkpd.load_model("pk_1cmt_iv")
>>> times = np.linspace(0, 24, 49)
>>> one = pkpd.simulate(m, pkpd.Regimen.single(pkpd.Dose(100, "mg")), times)
>>> four = pkpd.simulate(m, pkpd.Regimen.every(6, count=4, dose=pkpd.Dose(25, "mg")), times)
>>> fig = plot_simulation(one, label="100 mg once")
>>> fig = plot_simulation(four, ax=fig.axes, label="25 mg every 6 h")
>>> [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
['100 mg once', '25 mg every 6 h']
>>> import matplotlib.pyplot as plt; plt.close(fig)
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .errors import PkpdError, did_you_mean

__all__ = ["ARM_COLORS", "DEFAULT_BANDS", "HOUSE_STYLE", "MAX_LINES", "plot_individual_fits",
           "plot_observed_vs_predicted", "plot_profile", "plot_residuals", "plot_simulation", "save_figure"]

#: Okabe & Ito (2008) colour-blind-safe palette, in the order arms receive them (yellow last: weak on white).
ARM_COLORS: tuple[str, ...] = (
    "#0072B2",  # blue
    "#D55E00",  # vermillion
    "#009E73",  # bluish green
    "#CC79A7",  # reddish purple
    "#E69F00",  # orange
    "#56B4E9",  # sky blue
    "#000000",  # black
    "#F0E442",  # yellow
)

#: rcParams applied (through ``matplotlib.rc_context``) to every figure pkpd draws or saves.
#: Sizes are chosen for a 3.6 x 2.7 inch panel printed at 100 %: 9-10 pt text, 1.6 pt lines.
HOUSE_STYLE: dict[str, object] = {
    "font.size": 10,
    "axes.labelsize": 10,
    "axes.titlesize": 10,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.fontsize": 8.5,
    "legend.frameon": False,
    "lines.linewidth": 1.6,
    "axes.linewidth": 0.8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "0.88",
    "grid.linewidth": 0.6,
    "axes.xmargin": 0.0,
    "savefig.dpi": 300,
    "pdf.fonttype": 42,  # embed TrueType: text stays editable in journal figure tools
    "svg.fonttype": "none",  # keep text as text in SVG
    "svg.hashsalt": "pkpd",  # fixed element ids: the same figure gives the same SVG file
}

#: Percentiles (lower, middle, upper) drawn as band and line when a simulation has too many subjects for lines.
DEFAULT_BANDS: tuple[float, float, float] = (5.0, 50.0, 95.0)

#: Most subjects drawn as individual lines; more are summarised as a median line and a percentile band.
MAX_LINES = 20

# Auto log scale: positive data spanning more than this many decades.
_LOG_DECADES = 3.0
_PANEL_SIZE = (3.6, 2.7)  # inches per panel
_SUFFIXES = {".png": "png", ".svg": "svg", ".pdf": "pdf"}
# Strip creation dates so that saving the same figure twice gives the same file (diffable in version control).
_NO_DATE = {"png": None, "svg": {"Date": None}, "pdf": {"CreationDate": None}}


# ---------------------------------------------------------------------------------------------------- public API
def plot_simulation(sim, names: str | Sequence[str] | None = None, *, subjects=None, bands=None,
                    log_y: bool | None = None, ax=None, color: str | None = None, label: str | None = None):
    """Plot a simulation: one panel per output against time, with units on every axis.

    Up to :data:`MAX_LINES` subjects are drawn as individual lines; a larger population is drawn as its median
    (line) and 5-95 % range (shaded band), and the legend says so.

    Main arguments
    --------------
    sim : Simulation
        The result of :func:`pkpd.simulate`.
    names : str or sequence of str, optional
        Outputs or states to plot, one panel each, in this order. Default: every output (every state when the
        simulation kept no outputs).
    ax : Axes or sequence of Axes, optional
        Draw into these axes, one per name, instead of a new figure. Pass ``fig.axes`` of an earlier
        ``plot_simulation`` figure (same ``names``) to overlay a second simulation; each axes that already has a
        y label must show the same quantity and unit, or an error says which panel differs.
    label : str, optional
        Legend name of this simulation (e.g. the regimen); one legend, on the first panel, lists every arm.

    Other arguments
    ---------------
    subjects : subject ID or sequence of subject IDs, optional
        Plot only these subjects (values from ``sim.subject_ids``). Default: all.
    bands : None, False or (lower, middle, upper) percentiles [%]
        ``None`` (default): lines for up to ``MAX_LINES`` subjects, else a band of :data:`DEFAULT_BANDS`.
        ``False``: always individual lines. A tuple such as ``(10, 50, 90)``: always a band between the lower
        and upper percentiles around a line at the middle one.
    log_y : bool, optional
        Logarithmic y axes. Default: per panel, log scale when the plotted values are all positive and span more
        than 3 decades (an axes that already holds data keeps its scale).
    color : str, optional
        Colour of this simulation in every panel. Default: the first colour of :data:`ARM_COLORS` not yet used
        in the first panel (so successive overlays get successive arm colours).

    Returns
    -------
    matplotlib.figure.Figure
        The figure holding the panels (the figure of ``ax`` when given).

    Raises
    ------
    PkpdError
        An unknown output/state name or subject ID (with close matches), invalid ``bands``, a number of axes
        different from the number of names, or an axes showing another quantity or unit.

    See Also
    --------
    save_figure : write the figure to PNG (300 dpi), SVG or PDF.
    pkpd.Simulation.plot : the same, as a method.

    Examples
    --------
    >>> import numpy as np, pkpd
    >>> m = pkpd.load_model("pk_1cmt_iv")
    >>> sim = pkpd.simulate(m, pkpd.Regimen.single(pkpd.Dose(100, "mg")), np.linspace(0, 24, 25))
    >>> fig = plot_simulation(sim)
    >>> ax = fig.axes[0]
    >>> ax.get_xlabel(), ax.get_ylabel()
    ('Time [h]', 'conc [mg/L]')

    A population of 50 subjects is drawn as a median and a 5-95 % band:

    >>> pop = pkpd.simulate(m, pkpd.Regimen.single(pkpd.Dose(100, "mg")), np.linspace(0, 24, 25),
    ...                     params={"CL": np.linspace(1.0, 4.0, 50)})
    >>> fig2 = plot_simulation(pop)
    >>> [t.get_text() for t in fig2.axes[0].get_legend().get_texts()]
    ['median of 50 subjects', '5-95 % range']
    >>> import matplotlib.pyplot as plt; plt.close(fig); plt.close(fig2)
    """
    import matplotlib
    import matplotlib.pyplot as plt

    names = _names(sim, names)
    rows = _subject_rows(sim, subjects)
    percent = _bands(bands, rows.size)
    with matplotlib.rc_context(HOUSE_STYLE):
        axes = _new_axes(plt, len(names)) if ax is None else _given_axes(ax, len(names))
        # The first figure of a Jupyter session resolves the inline backend, which switches interactive mode on;
        # leaving rc_context would restore the old (off) value and stop every later figure from displaying.
        interactive = matplotlib.is_interactive()
        labels = [_axis_label(name, sim.units[name]) for name in names]
        time_label = _axis_label("Time", sim.time_unit)
        for i, (a, ylabel) in enumerate(zip(axes, labels)):
            _check_overlay(a, i, ylabel, time_label)
        colour = color if color is not None else _next_colour(axes[0])
        for a, name, ylabel in zip(axes, names, labels):
            values = np.asarray(sim[name], dtype=float)[rows]
            kept_scale = log_y is None and a.has_data()
            if percent is None:
                drawn = _draw_lines(a, sim.times, values, colour, label)
            else:
                drawn = _draw_band(a, sim.times, values, sim.status[rows], percent, colour, label, name)
            if not kept_scale:
                a.set_yscale("log" if (log_y if log_y is not None else _wants_log(drawn)) else "linear")
            a.set_xlabel(time_label)
            a.set_ylabel(ylabel)
        handles, texts = axes[0].get_legend_handles_labels()
        if handles:
            axes[0].legend(handles, texts, loc="best")
    matplotlib.interactive(interactive)
    return axes[0].figure


def save_figure(fig, path: str | os.PathLike) -> Path:
    """Write a figure to ``path``: PNG at 300 dpi, or vector SVG / PDF, chosen by the suffix.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        E.g. the result of :func:`plot_simulation`.
    path : str or path
        Ending in ``.png``, ``.svg`` or ``.pdf`` (any case). The folder must exist. No creation date is written,
        so saving the same figure again gives the same file.

    Returns
    -------
    pathlib.Path
        The path written.

    Raises
    ------
    PkpdError
        Unknown suffix, or the folder does not exist.

    Examples
    --------
    >>> import numpy as np, pkpd, tempfile, pathlib
    >>> sim = pkpd.simulate(pkpd.load_model("pk_1cmt_iv"), pkpd.Regimen.single(pkpd.Dose(100, "mg")),
    ...                     np.linspace(0, 24, 25))
    >>> fig = plot_simulation(sim)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     out = save_figure(fig, pathlib.Path(tmp) / "conc.png")
    ...     out.read_bytes()[:4]
    b'\\x89PNG'
    >>> import matplotlib.pyplot as plt; plt.close(fig)
    """
    import matplotlib

    path = Path(path)
    fmt = _SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise PkpdError(f"save_figure: the file name must end in .png, .svg or .pdf; got {str(path)!r}. "
                        "Use .png for slides and documents (300 dpi) or .svg/.pdf for vector graphics.")
    folder = path.parent
    if not folder.is_dir():
        raise PkpdError(f"save_figure: folder {str(folder)!r} does not exist; create it first or choose another "
                        "path.")
    with matplotlib.rc_context(HOUSE_STYLE):
        fig.savefig(path, format=fmt, dpi=300, metadata=_NO_DATE[fmt])
    return path


# ---------------------------------------------------------------------------------------------------- helpers
def _axis_label(name: str, unit: str) -> str:
    """``"NAME [unit]"``: the one label format of every axis."""
    return f"{name} [{unit}]"


def _names(sim, names) -> list[str]:
    """The quantities to plot, checked against the simulation (close matches suggested)."""
    if names is None:
        names = list(sim.outputs) or list(sim.states)
    elif isinstance(names, str):
        names = [names]
    else:
        names = list(names)
    if not names:
        raise PkpdError("plot_simulation: nothing to plot; the simulation kept no outputs or states (names is "
                        "empty). Give names=[...] or simulate with outputs=True.")
    known = list(sim.outputs) + list(sim.states)
    for name in names:
        if name not in known:
            raise PkpdError(f"plot_simulation: no output or state {name!r} in the simulation of "
                            f"{sim.model_name!r}." + did_you_mean(str(name), known))
    if len(set(names)) != len(names):
        raise PkpdError(f"plot_simulation: names must not repeat; got {names}.")
    return names


def _subject_rows(sim, subjects) -> np.ndarray:
    """Row indices of the selected subjects (all by default)."""
    ids = sim.subject_ids.tolist()
    if subjects is None:
        return np.arange(len(ids))
    if isinstance(subjects, (str, numbers.Number)):
        subjects = [subjects]
    subjects = list(subjects)
    if not subjects:
        raise PkpdError("plot_simulation: subjects is empty; give at least one subject ID, or None for all.")
    where = {sid: i for i, sid in enumerate(ids)}
    rows = []
    for sid in subjects:
        if sid not in where:
            shown = ", ".join(map(str, ids[:10])) + (", ..." if len(ids) > 10 else "")
            raise PkpdError(f"plot_simulation: no subject with ID {sid!r}; the simulation has IDs {shown}.")
        rows.append(where[sid])
    return np.asarray(rows)


def _bands(bands, n_subjects: int) -> tuple[float, float, float] | None:
    """The (lower, middle, upper) percentiles to draw, or None for individual lines."""
    if bands is None:
        return DEFAULT_BANDS if n_subjects > MAX_LINES else None
    if bands is False:
        return None
    fix = "Give three increasing percentiles in [0, 100], e.g. bands=(5, 50, 95), or None / False."
    if isinstance(bands, (str, bool, numbers.Number)) or not isinstance(bands, Sequence) or len(bands) != 3:
        raise PkpdError(f"plot_simulation: bands must be None, False or (lower, middle, upper); got {bands!r}. "
                        + fix)
    try:
        lo, mid, hi = (float(b) for b in bands)
    except (TypeError, ValueError):
        raise PkpdError(f"plot_simulation: bands must be numbers; got {bands!r}. " + fix) from None
    if not 0 <= lo < mid < hi <= 100:
        raise PkpdError(f"plot_simulation: bands must satisfy 0 <= lower < middle < upper <= 100; got {bands!r}. "
                        + fix)
    return lo, mid, hi


def _new_axes(plt, n: int) -> list:
    """A new figure with ``n`` panels on a grid (unused grid cells removed, so ``fig.axes`` are the panels)."""
    ncols = 1 if n == 1 else 2 if n <= 4 else 3
    nrows = math.ceil(n / ncols)
    fig = plt.figure(figsize=(_PANEL_SIZE[0] * ncols, _PANEL_SIZE[1] * nrows), layout="constrained")
    grid = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for extra in grid[n:]:
        fig.delaxes(extra)
    return list(grid[:n])


def _given_axes(ax, n: int) -> list:
    """The axes passed by the caller, one per plotted name."""
    from matplotlib.axes import Axes

    axes = [ax] if isinstance(ax, Axes) else list(np.ravel(np.asarray(ax, dtype=object)))
    for i, a in enumerate(axes):
        if not isinstance(a, Axes):
            raise PkpdError(f"plot_simulation: ax must be a matplotlib Axes or a sequence of them; item {i} is "
                            f"{type(a).__name__}. Pass fig.axes of an earlier figure.")
    if len(axes) != n:
        raise PkpdError(f"plot_simulation: got {len(axes)} axes for {n} quantities to plot; give one axes per "
                        "name (pass the same names as for the figure you overlay, e.g. names=[...], ax=fig.axes).")
    return axes


def _check_overlay(ax, i: int, ylabel: str, time_label: str) -> None:
    """Refuse to draw into an axes that shows another quantity, unit or time unit."""
    for what, have, want in (("y", ax.get_ylabel(), ylabel), ("x", ax.get_xlabel(), time_label)):
        if have and have != want:
            raise PkpdError(f"plot_simulation: ax[{i}] shows {have!r} on its {what} axis, but this panel would "
                            f"draw {want!r}. Overlay the same names in the same order (and the same units), or "
                            "start a new figure.")


def _next_colour(ax) -> str:
    """The first arm colour not used by a line or band already in ``ax``."""
    from matplotlib.colors import to_hex

    used = {to_hex(line.get_color()).lower() for line in ax.get_lines()}
    for coll in ax.collections:
        used.update(to_hex(c).lower() for c in coll.get_facecolor())
    for colour in ARM_COLORS:
        if colour.lower() not in used:
            return colour
    return ARM_COLORS[len(ax.get_lines()) % len(ARM_COLORS)]


def _draw_lines(ax, times, values, colour: str, label: str | None) -> np.ndarray:
    """One line per subject, all in the arm colour; one legend entry for the arm. Returns the drawn values."""
    n = values.shape[0]
    if label is not None:
        text = label if n == 1 else f"{label} ({n} subjects)"
    else:
        text = None if n == 1 else f"{n} subjects"
    alpha = 1.0 if n == 1 else 0.85 if n <= 3 else 0.55
    for k in range(n):
        ax.plot(times, values[k], color=colour, alpha=alpha, linewidth=1.6 if n <= 3 else 1.1,
                label=text if k == 0 else None)
    return values


def _draw_band(ax, times, values, status, percent, colour: str, label: str | None, name: str) -> np.ndarray:
    """Median (or middle percentile) line and shaded band over the solved subjects. Returns the drawn values."""
    ok = (status == 0) & np.any(np.isfinite(values), axis=1)
    if not ok.any():
        raise PkpdError(f"plot_simulation: {name!r}: no subject was solved (see Simulation.status); nothing to "
                        "summarise.")
    lo, mid, hi = np.percentile(values[ok], percent, axis=0)
    n = int(ok.sum())
    middle = "median" if percent[1] == 50 else f"{percent[1]:g}th percentile"
    prefix = f"{label}: " if label is not None else ""
    # The line is added first so that the legend lists it first; lines are drawn above bands (zorder) anyway.
    ax.plot(times, mid, color=colour, label=f"{prefix}{middle} of {n} subjects")
    ax.fill_between(times, lo, hi, color=colour, alpha=0.25, linewidth=0,
                    label=f"{prefix}{percent[0]:g}-{percent[2]:g} % range")
    return np.vstack([lo, mid, hi])


def _wants_log(values: np.ndarray) -> bool:
    """Log scale for finite, all-positive values spanning more than ``_LOG_DECADES`` decades."""
    finite = values[np.isfinite(values)]
    if finite.size == 0 or np.any(finite <= 0):
        return False
    return bool(np.log10(finite.max() / finite.min()) > _LOG_DECADES)


# ---------------------------------------------------------------------------------------------------- fit diagnostics
_OBS = dict(marker="o", s=16, linewidths=0.6, zorder=3)
_BLQ = dict(marker="v", s=22, facecolors="none", linewidths=0.9, zorder=3)


def _fit_parts(result):
    """(representative FitResult, per-subject results or None) of a FitResult or SubjectFits."""
    from .fitting import FitResult, SubjectFits

    if isinstance(result, FitResult):
        return result, None
    if isinstance(result, SubjectFits):
        if not result.results:
            raise PkpdError("no subject could be fitted (see SubjectFits.failures): nothing to plot")
        return next(iter(result.results.values())), result
    raise PkpdError(f"expected a FitResult or SubjectFits (from pkpd.fit); got {type(result).__name__}")


def _diag_table(result):
    first, subjects = _fit_parts(result)
    return (subjects.diagnostics() if subjects is not None else first.diagnostics()), first


def _scatter_obs(ax, x, y, blq, colour, label_obs, label_blq):
    ax.scatter(x[~blq], y[~blq], color=colour, label=label_obs, **_OBS)
    if blq.any():
        ax.scatter(x[blq], y[blq], edgecolors=colour, label=label_blq, **_BLQ)


def plot_observed_vs_predicted(result, *, individual=None, log: bool | None = None):
    """Observed against predicted values, one panel per output, with the line of identity.

    Observations below the LLOQ are drawn at the LLOQ as open triangles.

    Parameters
    ----------
    result : FitResult or SubjectFits
        A pooled fit (population predictions, ``PRED``) or per-subject fits (individual predictions, ``IPRED``).
    individual : SubjectFits, optional
        With a pooled ``result``, adds a second row of panels with these individual predictions.
    log : bool, optional
        Log axes; default when the values are positive and span more than 3 decades.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np, pandas as pd, pkpd
    >>> from pkpd.plots import plot_observed_vs_predicted
    >>> t = np.array([1.0, 2, 4, 8, 12, 24])
    >>> conc = 100 / 32 * np.exp(-2.8 / 32 * t) * np.array([1.02, 0.97, 1.01, 0.99, 1.03, 0.98])
    >>> data = pd.DataFrame({"ID": 1, "TIME": np.r_[0, t], "EVID": [1] + [0] * 6, "AMT": [100] + [0] * 6,
    ...                      "DV": np.r_[np.nan, conc]})
    >>> res = pkpd.fit(pkpd.load_model("pk_1cmt_iv"), data, estimate=["CL", "V"],
    ...                error={"conc": pkpd.Proportional(cv=0.1)})
    >>> fig = plot_observed_vs_predicted(res)
    >>> fig.axes[0].get_xlabel(), fig.axes[0].get_ylabel()
    ('conc, population prediction [mg/L]', 'conc, observed [mg/L]')
    >>> import matplotlib.pyplot as plt; plt.close(fig)
    """
    import matplotlib
    import matplotlib.pyplot as plt

    table, first = _diag_table(result)
    _, subjects = _fit_parts(result)
    rows = [("PRED" if subjects is None else "IPRED", table)]
    if individual is not None:
        if subjects is not None:
            raise PkpdError("individual: give it only with a pooled FitResult as result")
        ind_table, _ = _diag_table(individual)
        rows.append(("IPRED", ind_table))
    units = first.outputs
    outputs = list(units)
    with matplotlib.rc_context(HOUSE_STYLE):
        ncols = len(outputs)
        fig = plt.figure(figsize=(_PANEL_SIZE[0] * ncols, _PANEL_SIZE[1] * len(rows) * 1.1), layout="constrained")
        grid = fig.subplots(len(rows), ncols, squeeze=False)
        for r, (column, tab) in enumerate(rows):
            kind = "population prediction" if column == "PRED" else "individual prediction"
            for c, out in enumerate(outputs):
                ax = grid[r, c]
                sub = tab[tab["output"] == out]
                x = sub[column].to_numpy(dtype=float)
                blq = sub["BLQ"].to_numpy(dtype=bool)
                y = np.where(blq, sub["LLOQ"].to_numpy(dtype=float), sub["DV"].to_numpy(dtype=float))
                _scatter_obs(ax, x, y, blq, ARM_COLORS[0], "observed", "below LLOQ (at LLOQ)")
                both = np.concatenate([x, y])
                both = both[np.isfinite(both)]
                use_log = _wants_log(both) if log is None else log
                lo, hi = (both.min(), both.max()) if both.size else (0.0, 1.0)
                ax.plot([lo, hi], [lo, hi], color="0.4", linewidth=0.9, linestyle="--", label="identity")
                if use_log and lo > 0:
                    ax.set_xscale("log")
                    ax.set_yscale("log")
                ax.set_xlabel(_axis_label(f"{out}, {kind}", units[out]))
                ax.set_ylabel(_axis_label(f"{out}, observed", units[out]))
        grid[0, 0].legend(loc="best")
    return fig


def plot_residuals(result):
    """Weighted residuals against time (top row) and against the prediction (bottom row), one column per output.

    Dashed lines at 0 and +/-1.96: about 95 % of weighted residuals of a good fit lie between them, with no trend.
    Censored observations have no residual and are not drawn.

    Parameters
    ----------
    result : FitResult or SubjectFits

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np, pandas as pd, pkpd
    >>> from pkpd.plots import plot_residuals
    >>> t = np.array([1.0, 2, 4, 8, 12, 24])
    >>> conc = 100 / 32 * np.exp(-2.8 / 32 * t) * np.array([1.02, 0.97, 1.01, 0.99, 1.03, 0.98])
    >>> data = pd.DataFrame({"ID": 1, "TIME": np.r_[0, t], "EVID": [1] + [0] * 6, "AMT": [100] + [0] * 6,
    ...                      "DV": np.r_[np.nan, conc]})
    >>> res = pkpd.fit(pkpd.load_model("pk_1cmt_iv"), data, estimate=["CL", "V"],
    ...                error={"conc": pkpd.Proportional(cv=0.1)})
    >>> fig = plot_residuals(res)
    >>> [ax.get_xlabel() for ax in fig.axes]
    ['Time [h]', 'conc, population prediction [mg/L]']
    >>> import matplotlib.pyplot as plt; plt.close(fig)
    """
    import matplotlib
    import matplotlib.pyplot as plt

    table, first = _diag_table(result)
    _, subjects = _fit_parts(result)
    column = "PRED" if subjects is None else "IPRED"
    kind = "population prediction" if column == "PRED" else "individual prediction"
    units = first.outputs
    outputs = list(units)
    with matplotlib.rc_context(HOUSE_STYLE):
        fig = plt.figure(figsize=(_PANEL_SIZE[0] * len(outputs), _PANEL_SIZE[1] * 2), layout="constrained")
        grid = fig.subplots(2, len(outputs), squeeze=False)
        for c, out in enumerate(outputs):
            sub = table[(table["output"] == out) & ~table["BLQ"].astype(bool)]
            w = sub["WRES"].to_numpy(dtype=float)
            for r, (xcol, xlabel) in enumerate((("TIME", _axis_label("Time", first.time_unit)),
                                                (column, _axis_label(f"{out}, {kind}", units[out])))):
                ax = grid[r, c]
                x = sub[xcol].to_numpy(dtype=float)
                ax.scatter(x, w, color=ARM_COLORS[0], **_OBS)
                for level, style in ((0.0, "-"), (1.96, "--"), (-1.96, "--")):
                    ax.axhline(level, color="0.4", linewidth=0.9, linestyle=style)
                if r == 1 and _wants_log(x):
                    ax.set_xscale("log")
                ax.set_xlabel(xlabel)
                ax.set_ylabel(_axis_label(f"{out}, weighted residual", "1"))
    return fig


def plot_individual_fits(result, *, subjects=None, n_samples: int = 200, seed=0, level: float = 0.95,
                         max_subjects: int = 12, log_y: bool | None = None):
    """Each subject's observations with its fitted curve and a band from parameter uncertainty.

    One row per subject, one column per output. Quantified observations are filled circles; observations below
    the LLOQ are open triangles drawn at the LLOQ, with the LLOQ as a dotted line. The band spans the central
    ``level`` of curves simulated with parameters drawn from the estimates' approximate normal distribution (on
    the estimation scale); it is left out when the fit has no covariance.

    Parameters
    ----------
    result : FitResult or SubjectFits
    subjects : sequence of IDs, optional
        Default: the first ``max_subjects`` subjects.
    n_samples : int
        Parameter draws for the band (0 for none).
    seed : int, optional
    level : float
    max_subjects : int
    log_y : bool, optional
        Log y axes; default per output when the values span more than 3 decades.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np, pandas as pd, pkpd
    >>> from pkpd.plots import plot_individual_fits
    >>> t = np.array([1.0, 2, 4, 8, 12, 24])
    >>> conc = 100 / 32 * np.exp(-2.8 / 32 * t) * np.array([1.02, 0.97, 1.01, 0.99, 1.03, 0.98])
    >>> data = pd.DataFrame({"ID": 1, "TIME": np.r_[0, t], "EVID": [1] + [0] * 6, "AMT": [100] + [0] * 6,
    ...                      "DV": np.r_[np.nan, conc]})
    >>> res = pkpd.fit(pkpd.load_model("pk_1cmt_iv"), data, estimate=["CL", "V"],
    ...                error={"conc": pkpd.Proportional(cv=0.1)})
    >>> fig = plot_individual_fits(res, n_samples=50)
    >>> fig.axes[0].get_title(), fig.axes[0].get_ylabel()
    ('subject 1', 'conc [mg/L]')
    >>> import matplotlib.pyplot as plt; plt.close(fig)
    """
    import matplotlib
    import matplotlib.pyplot as plt

    first, per_subject = _fit_parts(result)
    if per_subject is not None:
        parts = {sid: r for sid, r in per_subject.results.items()}
    else:
        parts = None
    table = per_subject.diagnostics() if per_subject is not None else first.diagnostics()
    ids = list(dict.fromkeys(table["ID"].tolist()))
    if subjects is None:
        chosen = ids[:max_subjects]
    else:
        chosen = [subjects] if isinstance(subjects, str | numbers.Number) else list(subjects)
        for sid in chosen:
            if sid not in ids:
                shown = ", ".join(map(str, ids[:10])) + (", ..." if len(ids) > 10 else "")
                raise PkpdError(f"plot_individual_fits: no subject with ID {sid!r}; the fit has IDs {shown}.")
    units = first.outputs
    outputs = list(units)

    def curves(res):
        n = n_samples if res._context.cov_x is not None else 0
        return res.predict(n_samples=n, seed=seed, level=level)

    if parts is None:
        pred = curves(first)
    else:
        import pandas as pd

        pred = pd.concat([curves(parts[sid]) for sid in chosen], ignore_index=True)
    with matplotlib.rc_context(HOUSE_STYLE):
        fig = plt.figure(figsize=(_PANEL_SIZE[0] * len(outputs), _PANEL_SIZE[1] * len(chosen)),
                         layout="constrained")
        grid = fig.subplots(len(chosen), len(outputs), squeeze=False)
        for r, sid in enumerate(chosen):
            for c, out in enumerate(outputs):
                ax = grid[r, c]
                p = pred[(pred["ID"] == sid) & (pred["output"] == out)]
                o = table[(table["ID"] == sid) & (table["output"] == out)]
                t = p["TIME"].to_numpy(dtype=float)
                if "lower" in p:
                    ax.fill_between(t, p["lower"].to_numpy(dtype=float), p["upper"].to_numpy(dtype=float),
                                    color=ARM_COLORS[0], alpha=0.22, linewidth=0,
                                    label=f"{100 * level:g} % band (parameter uncertainty)")
                ax.plot(t, p["PRED"].to_numpy(dtype=float), color=ARM_COLORS[0], label="fit")
                blq = o["BLQ"].to_numpy(dtype=bool)
                y = np.where(blq, o["LLOQ"].to_numpy(dtype=float), o["DV"].to_numpy(dtype=float))
                _scatter_obs(ax, o["TIME"].to_numpy(dtype=float), y, blq, ARM_COLORS[1], "observed",
                             "below LLOQ (at LLOQ)")
                lloq = o["LLOQ"].to_numpy(dtype=float)
                if np.isfinite(lloq).any():
                    ax.axhline(float(np.nanmax(lloq)), color="0.5", linewidth=0.8, linestyle=":", label="LLOQ")
                # decided on the observations: the curve starts at 0 before the first dose
                if log_y if log_y is not None else _wants_log(y[np.isfinite(y)]):
                    ax.set_yscale("log")
                ax.set_title(f"subject {sid}")
                ax.set_xlabel(_axis_label("Time", first.time_unit))
                ax.set_ylabel(_axis_label(out, units[out]))
        grid[0, 0].legend(loc="best")
    return fig


def plot_profile(profiles):
    """Profile likelihoods: the rise of -2 log-likelihood against each parameter's value, with the 95 % threshold.

    Parameters
    ----------
    profiles : ProfileLikelihood or sequence of them
        From :func:`pkpd.profile_likelihood`; one panel each.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np, pandas as pd, pkpd
    >>> from pkpd.plots import plot_profile
    >>> t = np.array([1.0, 2, 4, 8, 12, 24])
    >>> conc = 100 / 32 * np.exp(-2.8 / 32 * t) * np.array([1.02, 0.97, 1.01, 0.99, 1.03, 0.98])
    >>> data = pd.DataFrame({"ID": 1, "TIME": np.r_[0, t], "EVID": [1] + [0] * 6, "AMT": [100] + [0] * 6,
    ...                      "DV": np.r_[np.nan, conc]})
    >>> res = pkpd.fit(pkpd.load_model("pk_1cmt_iv"), data, estimate=["CL", "V"],
    ...                error={"conc": pkpd.Proportional(cv=0.1)})
    >>> fig = plot_profile(pkpd.profile_likelihood(res, "CL"))
    >>> fig.axes[0].get_xlabel()
    'CL [L/h]'
    >>> import matplotlib.pyplot as plt; plt.close(fig)
    """
    import matplotlib
    import matplotlib.pyplot as plt

    from .fitting import ProfileLikelihood

    items = [profiles] if isinstance(profiles, ProfileLikelihood) else list(profiles)
    if not items or not all(isinstance(p, ProfileLikelihood) for p in items):
        raise PkpdError("plot_profile: give a ProfileLikelihood (from pkpd.profile_likelihood) or a list of them")
    with matplotlib.rc_context(HOUSE_STYLE):
        axes = _new_axes(plt, len(items))
        for ax, p in zip(axes, items):
            ax.plot(p.values, p.delta, color=ARM_COLORS[0], marker="o", markersize=3, label="profile")
            ax.axhline(p.threshold, color=ARM_COLORS[1], linestyle="--", linewidth=0.9,
                       label=f"95 % threshold ({p.threshold:.2f})")
            ax.axvline(p.estimate, color="0.4", linewidth=0.8, label="estimate")
            for v in (p.ci_low, p.ci_high):
                if np.isfinite(v):
                    ax.axvline(v, color=ARM_COLORS[1], linewidth=0.8, linestyle=":")
            if p.values.size and np.all(p.values > 0) and p.values.max() / p.values.min() > 20:
                ax.set_xscale("log")
            ax.set_xlabel(_axis_label(p.name, p.unit))
            ax.set_ylabel(_axis_label("Δ(-2 log-likelihood)", "1"))
            if not p.identifiable:
                ax.set_title(f"{p.name}: not bounded by the data", color="#b00")
        axes[0].legend(loc="best")
    return axes[0].figure
