"""Figures of simulations, fits and scenarios, in one house style, ready for a protocol.

Matplotlib is imported inside the functions only: ``import pkpd.plots`` stays light, and no library code ever
draws. Every figure uses :data:`HOUSE_STYLE` (print-size fonts, no top/right spines, light grid) and colours from
:data:`ARM_COLORS`, the Okabe-Ito colour-blind-safe palette, so a treatment arm keeps its colour from figure to
figure when it is given the same ``color``.

Conventions of every time course (:func:`plot_simulation`, :meth:`pkpd.Simulation.plot`,
:meth:`pkpd.population.PopulationSimulation.plot`, :func:`plot_time_course`, ``pkpd simulate --plot``):

* **Time** in hours, days or weeks: ``time_unit=`` (``--time-unit``), by default from the horizon
  (:func:`time_unit_for`: hours up to 4 days, days up to 8 weeks, weeks beyond), ticks at round steps (6 h, 1 d,
  1 wk...).
* **Labels** ``"label [unit]"``: an output's ``label`` from its model file (falling back to its name), units as
  declared. A dimensionless output whose values are fractions (0 to 1) is drawn in %; another dimensionless
  quantity has no unit. Tick labels carry their own magnitude (``2×10⁸``): no detached offset such as ``1e8``.
* **Scale**, per output: the ``scale`` its model file declares (``"log"`` or ``"linear"``); else linear for a
  dimensionless output, log when its positive values span more than 3 decades. A log axis shows at most
  :data:`LOG_DECADES_SHOWN` decades below the highest value, and never less than 1 for counts (cells): population
  bands stop there instead of running down to 10⁰ or below.
* **Doses** as triangles in a strip along the top of each panel, above the data (infusions also as a bar from
  start to end), in the arm's colour when arms are compared.
* **One legend** per figure, below or right of the panels, never over data; a title says what was simulated.
* Drawing into the caller's axes (``ax=``) applies the same style to them.

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
>>> [t.get_text() for t in fig.legends[0].get_texts()]
['100 mg once', '25 mg every 6 h', 'doses']
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

__all__ = ["ARM_COLORS", "DEFAULT_BANDS", "HOUSE_STYLE", "LOG_DECADES_SHOWN", "MAX_LINES", "TIME_UNITS",
           "plot_categorical_vpc", "plot_dose_response", "plot_exposure", "plot_km_vpc",
           "plot_gof", "plot_individual_fits", "plot_observed_vs_predicted", "plot_profile", "plot_residuals",
           "plot_saem_convergence", "plot_sensitivity_over_time", "plot_simulation", "plot_sobol",
           "plot_target_attainment", "plot_time_course", "plot_tornado", "save_figure", "scenario_colors",
           "time_unit_for", "fix_layout"]

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
                    log_y: bool | None = None, ax=None, color: str | None = None, label: str | None = None,
                    time_unit: str | None = None, doses: bool = True, title: str | None = None):
    """Plot a simulation: one panel per output against time, with units on every axis and the doses marked.

    Up to :data:`MAX_LINES` subjects are drawn as individual lines; a larger population is drawn as its median
    (line) and 5-95 % range (shaded band), and the legend says so. The figure follows the conventions of
    :mod:`pkpd.plots`: time in hours, days or weeks, the outputs' labels and scales from the model file, fractions
    in %, doses as triangles (infusions as bars) along the top, one legend outside the data.

    Main arguments
    --------------
    sim : Simulation
        The result of :func:`pkpd.simulate`.
    names : str or sequence of str, optional
        Outputs or states to plot, one panel each, in this order. Default: every output (every state when the
        simulation kept no outputs).
    ax : Axes or sequence of Axes, optional
        Draw into these axes, one per name, instead of a new figure (they get the house style). Pass ``fig.axes``
        of an earlier ``plot_simulation`` figure (same ``names``) to overlay a second simulation; each axes that
        already has labels must show the same quantity, unit and time unit, or an error says which panel differs.
    label : str, optional
        Legend name of this simulation (e.g. the regimen); one legend lists every arm.
    time_unit : {"min", "h", "d", "wk"}, optional
        Unit of the time axis. Default: from the horizon (:func:`time_unit_for`), or that of the axes overlaid.

    Other arguments
    ---------------
    subjects : subject ID or sequence of subject IDs, optional
        Plot only these subjects (values from ``sim.subject_ids``). Default: all.
    bands : None, False or (lower, middle, upper) percentiles [%]
        ``None`` (default): lines for up to ``MAX_LINES`` subjects, else a band of :data:`DEFAULT_BANDS`.
        ``False``: always individual lines. A tuple such as ``(10, 50, 90)``: always a band between the lower
        and upper percentiles around a line at the middle one.
    log_y : bool, optional
        Logarithmic y axes for every panel. Default: per output, the scale its model file declares, else the
        rule of :mod:`pkpd.plots` (an axes that already holds data keeps its scale).
    color : str, optional
        Colour of this simulation in every panel. Default: the first colour of :data:`ARM_COLORS` not yet used
        in the first panel (so successive overlays get successive arm colours).
    doses : bool
        Mark the doses (default True).
    title : str, optional
        Figure title; default: model, version and regimen (none when drawing into given axes); ``""`` for none.

    Returns
    -------
    matplotlib.figure.Figure
        The figure holding the panels (the figure of ``ax`` when given).

    Raises
    ------
    PkpdError
        An unknown output/state name or subject ID (with close matches), invalid ``bands`` or ``time_unit``, a
        number of axes different from the number of names, or an axes showing another quantity or unit.

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
    >>> [t.get_text() for t in fig2.legends[0].get_texts()]
    ['median of 50 subjects', '5-95 % range', 'dose']
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
        hours = _hours(sim.time_unit)
        unit = _overlay_time_unit(axes[0], time_unit) or time_unit_for((sim.times[-1] - sim.times[0]) * hours)
        t = sim.times * hours / TIME_UNITS[unit]
        time_label = _axis_label("Time", unit)
        shown = {}
        for i, (a, name) in enumerate(zip(axes, names)):
            values = np.asarray(sim[name], dtype=float)[rows]
            shown[name] = _quantity(sim.labels.get(name, name), sim.units[name], values,
                                    " ".join(a.get_ylabel().split()))
            _check_overlay(a, i, shown[name][0], time_label)
        colour = color if color is not None else _next_colour(axes[0])
        for a, name in zip(axes, names):
            ylabel, factor = shown[name]
            values = np.asarray(sim[name], dtype=float)[rows] * factor
            kept_scale = log_y is None and a.has_data()
            use_log = a.get_yscale() == "log" if kept_scale else (
                log_y if log_y is not None else _log_scale(sim.scales.get(name, ""), sim.units[name], values))
            floor = _log_floor(sim.units[name], values) if use_log else None
            if percent is None:
                _draw_lines(a, t, values, colour, label)
            else:
                _draw_band(a, t, values, sim.status[rows], percent, colour, label, name, floor)
            a.set_yscale("log" if use_log else "linear")
            _finish_axes(a, time_label, ylabel, unit, t, floor)
        if doses:
            # an arm's doses in its colour when arms are compared (label given), else in grey
            _mark_doses(axes, [sim.regimens[r] for r in rows] if sim.regimens else [], 1.0 / TIME_UNITS[unit],
                        colour=colour if label is not None else "0.3", label="doses" if label is not None else "dose")
        _legend(axes)
        if ax is None and title != "":
            axes[0].figure.suptitle(title or _simulation_title(sim, rows), fontsize=10)
        elif title:
            axes[0].figure.suptitle(title, fontsize=10)
    matplotlib.interactive(interactive)
    return axes[0].figure


def save_figure(fig, path: str | os.PathLike) -> Path:
    """Write a figure to ``path``: PNG at 300 dpi, or vector SVG / PDF, chosen by the suffix.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        E.g. the result of :func:`plot_simulation`.
    path : str or path
        Ending in ``.png``, ``.svg`` or ``.pdf`` (any case). The folder must exist. No creation date is written
        and the layout is fixed at the first save (:func:`fix_layout`), so saving the same figure again gives the
        same file.

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
        fix_layout(fig)
        fig.savefig(path, format=fmt, dpi=300, metadata=_NO_DATE[fmt])
    return path


# ---------------------------------------------------------------------------------------------------- conventions
#: Units of figure time axes and their length in hours. Figures choose one from the horizon (:func:`time_unit_for`)
#: unless told (``time_unit=``, ``--time-unit``).
TIME_UNITS: dict[str, float] = {"min": 1 / 60, "h": 1.0, "d": 24.0, "wk": 168.0}

#: A log axis spans at most this many decades below the highest value drawn (counts stop at 1, see _log_floor).
LOG_DECADES_SHOWN = 6.0

_HOURS = {"min": 1 / 60, "minute": 1 / 60, "h": 1.0, "hr": 1.0, "hour": 1.0, "d": 24.0, "day": 24.0,
          "wk": 168.0, "week": 168.0}
_TIME_STEPS = {"min": (1, 2, 5, 10, 15, 30, 60, 120), "h": (1, 2, 3, 6, 12, 24, 48, 72, 168),
               "d": (1, 2, 7, 14, 28), "wk": (1, 2, 4, 8, 13, 26, 52)}
_COUNT_UNITS = ("cell", "cells")


def time_unit_for(span_hours: float) -> str:
    """The unit of a figure's time axis for a horizon: hours up to 4 days, days up to 8 weeks, weeks beyond.

    Examples
    --------
    >>> time_unit_for(96), time_unit_for(1008), time_unit_for(24 * 7 * 26)
    ('h', 'd', 'wk')
    """
    if span_hours <= 96:
        return "h"
    return "d" if span_hours <= 8 * 168 else "wk"


def _hours(unit: str) -> float:
    """Length of a model or regimen time unit in hours."""
    if unit in _HOURS:
        return _HOURS[unit]
    from . import units

    return units.convert(unit, "h")


def _overlay_time_unit(ax, wanted: str | None) -> str | None:
    """The time unit to draw in: ``wanted`` (checked), else that of an axes already drawn, else None."""
    if wanted is not None and wanted not in TIME_UNITS:
        raise PkpdError(f"time_unit must be one of {', '.join(TIME_UNITS)}; got {wanted!r}")
    have = ax.get_xlabel()
    if have.startswith("Time [") and have.endswith("]"):
        existing = have[6:-1]
        if wanted is not None and wanted != existing:
            raise PkpdError(f"plot_simulation: the axes show time in {existing!r}; overlay with time_unit="
                            f"{existing!r} (or None), or start a new figure.")
        return existing
    return wanted


def _pretty_unit(unit: str) -> str:
    """A unit as figures and reports print it: ``*`` as a middle dot, ``**2`` as a superscript."""
    text = str(unit).replace("**", "^").replace(" ", "")
    for power, sup in (("^2", "²"), ("^3", "³"), ("^-1", "⁻¹")):
        text = text.replace(power, sup)
    return {"percent": "%", "cell": "cells"}.get(text, text.replace("*", "·"))


def _quantity(label: str, unit: str, values: np.ndarray, existing: str = "") -> tuple[str, float]:
    """(axis label, factor applied to the values). A dimensionless fraction is shown in %, another dimensionless
    quantity without a unit; an axes that already shows the quantity in % keeps it."""
    if unit == "1":
        finite = values[np.isfinite(values)]
        fraction = existing.endswith("[%]") or (finite.size > 0 and finite.min() >= 0 and finite.max() <= 1.0)
        return (_axis_label(label, "%"), 100.0) if fraction else (label, 1.0)
    return _axis_label(label, _pretty_unit(unit)), 1.0


def _log_scale(declared: str, unit: str, values: np.ndarray) -> bool:
    """The y scale rule: the model file's ``scale`` when declared (log needs some positive value); else linear for
    a dimensionless output, log for positive values spanning more than 3 decades."""
    if declared == "log":
        return bool(np.any(np.isfinite(values) & (values > 0)))
    if declared == "linear" or unit == "1":
        return False
    return _wants_log(values)


def _log_floor(unit: str, values: np.ndarray) -> float | None:
    """Lowest value a log axis shows: 1 for counts (less than one cell is none), else LOG_DECADES_SHOWN decades
    below the highest value."""
    finite = values[np.isfinite(values) & (values > 0)]
    if finite.size == 0:
        return None
    floor = float(finite.max()) * 10.0 ** -LOG_DECADES_SHOWN
    return max(floor, 1.0) if unit in _COUNT_UNITS and finite.max() > 1.0 else floor


def _tick_text(value: float) -> str:
    """A tick label with its own magnitude (no separate offset or '1e8' at the axis end): 3 significant digits,
    ×10ⁿ from 10⁴ on and below 10⁻³."""
    if value == 0:
        return "0"
    magnitude = abs(value)
    if 1e-3 <= magnitude < 1e4:
        return f"{value:.4g}"
    exponent = int(math.floor(math.log10(magnitude)))
    mantissa = value / 10.0 ** exponent
    if round(mantissa, 2) in (1.0, -1.0):
        return ("-" if mantissa < 0 else "") + f"$10^{{{exponent}}}$"
    return f"${mantissa:.3g}\\times10^{{{exponent}}}$"


def _finish_axes(ax, time_label: str, ylabel: str, unit: str, t: np.ndarray, floor: float | None) -> None:
    """Labels, house style (also in axes the caller made), time ticks in round steps, tick labels without
    offsets, and the floor of a log axis."""
    from matplotlib.ticker import FuncFormatter, MultipleLocator

    ax.set_xlabel(time_label)
    ax.set_ylabel(_wrapped(ylabel))
    _house_style(ax)
    span = float(np.nanmax(t) - np.nanmin(t)) if t.size else 0.0
    if span > 0 and not np.isfinite(ax.dataLim.intervalx).all():
        # nothing finite was drawn (every simulation failed): the axis still spans the times simulated, so that the
        # dose marks stay inside it
        ax.set_xlim(float(np.nanmin(t)), float(np.nanmax(t)))
    if span > 0:
        step = next((s for s in _TIME_STEPS[unit] if span / s <= 8), None)
        if step is not None:
            ax.xaxis.set_major_locator(MultipleLocator(step))
    if ax.get_yscale() == "linear":
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: _tick_text(v)))
    elif floor is not None:
        low, high = ax.get_ylim()
        if low < floor < high:
            ax.set_ylim(bottom=floor)


def _wrapped(label: str, width: int = 24) -> str:
    """A y label longer than a panel is high, on two lines (the unit stays with the last word)."""
    import textwrap

    if len(label) <= width:
        return label
    return textwrap.fill(label, max(width // 2, (len(label) + 1) // 2 + 4), break_on_hyphens=False)


def _house_style(ax) -> None:
    """The parts of HOUSE_STYLE that belong to an axes, applied to axes the caller may have made."""
    ax.spines["top"].set_visible(False)
    ax.spines["right"].set_visible(False)
    ax.grid(True, color=HOUSE_STYLE["grid.color"], linewidth=HOUSE_STYLE["grid.linewidth"])
    ax.set_axisbelow(True)
    ax.tick_params(labelsize=HOUSE_STYLE["xtick.labelsize"])
    ax.xaxis.label.set_size(HOUSE_STYLE["axes.labelsize"])
    ax.yaxis.label.set_size(HOUSE_STYLE["axes.labelsize"])


def _administrations(regimens, per_hour: float) -> tuple[list[float], list[tuple[float, float]]]:
    """(bolus times, infusion (start, end)) of the regimens, de-duplicated, in display time units (``per_hour``
    of them in an hour)."""
    from .dosing import Infusion

    boluses, infusions = set(), set()
    for reg in dict.fromkeys(regimens):  # the same Regimen object is shared by many subjects
        if reg is None:
            continue
        scale = _hours(reg.time_unit) * per_hour
        for adm in reg:
            if isinstance(adm, Infusion) and adm.duration is not None:
                infusions.add((round(adm.time * scale, 12), round((adm.time + adm.duration) * scale, 12)))
            else:
                boluses.add(round(adm.time * scale, 12))
    return sorted(boluses), sorted(infusions)


def _mark_doses(axes, regimens, per_hour: float, colour: str = "0.3", label: str = "dose") -> None:
    """Doses along the top edge of every panel: a triangle per bolus, a triangle and a bar per infusion."""
    boluses, infusions = _administrations(regimens, per_hour)
    starts = sorted(set(boluses) | {s for s, _ in infusions})
    if not starts:
        return
    for k, ax in enumerate(axes):
        _headroom(ax)
        top = ax.get_xaxis_transform()  # x in data, y in axes fraction
        low, high = ax.get_xlim()
        ax.plot(starts, np.full(len(starts), 0.975), transform=top, linestyle="none", marker="v", markersize=4.5,
                color=colour, zorder=5, clip_on=False, label=label if k == 0 else None, gid=_DOSES_GID)
        for start, end in infusions:
            ax.axvspan(start, end, ymin=0.955, ymax=0.99, color=colour, alpha=0.45, linewidth=0, zorder=5)
        ax.set_xlim(low, high)


_DOSES_GID = "pkpd-doses"


def _data_top(ax) -> float | None:
    """The highest value drawn in ``ax`` (lines and filled bands; not the dose markers)."""
    tops = []
    for line in ax.get_lines():
        if line.get_gid() != _DOSES_GID:
            y = np.asarray(line.get_ydata(), dtype=float)
            tops.append(y[np.isfinite(y)])
    for coll in ax.collections:
        for path in coll.get_paths():
            y = path.vertices[:, 1]
            tops.append(y[np.isfinite(y)])
    values = np.concatenate(tops) if tops else np.array([])
    return float(values.max()) if values.size else None


def _headroom(ax, fraction: float = 0.09) -> None:
    """Extend the y data limits so that the top ``fraction`` of the panel is free for the dose markers. The axis
    keeps autoscaling (an overlay still fits), and the extension is computed from the data drawn, so that drawing
    again (an overlay, panels sharing an axis) does not add up."""
    high = _data_top(ax)
    low = ax.get_ylim()[0]
    if high is None or not high > low:
        return
    if ax.get_yscale() == "log":
        if not low > 0:
            return
        top = high * (high / low) ** (fraction / (1 - fraction))
    else:
        top = high + (high - low) * fraction / (1 - fraction)
    ax.update_datalim([(ax.get_xlim()[0], top)], updatex=False)
    ax.autoscale_view(scalex=False)


_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def _pretty_numbers(text: str) -> str:
    """Numbers written as ``2e+06`` in a text, as ``2×10⁶``."""
    import re

    def one(match) -> str:
        mantissa, exponent = match.group(1), int(match.group(2))
        power = "10" + str(exponent).translate(_SUPERSCRIPT)
        return power if mantissa in ("1", "1.0") else f"{mantissa}×{power}"

    return re.sub(r"(?<![\w.])(\d+(?:\.\d+)?)e([+-]?\d+)\b", one, text)


def _simulation_title(sim, rows) -> str:
    regimens = list(dict.fromkeys(sim.regimens[r] for r in rows)) if sim.regimens else []
    what = f"{sim.model_name} v{sim.model_version}"
    if len(regimens) == 1 and regimens[0] is not None and len(regimens[0]):
        what += ": " + _pretty_numbers(repr(regimens[0])[len("Regimen("):-1])
    elif len(regimens) > 1:
        what += f": {len(regimens)} regimens"
    n = rows.size
    return what + (f"; {n} subjects" if n > 1 else "")


def fix_layout(fig) -> None:
    """Settle a figure's constrained layout and keep it: every later draw or save uses the same panel positions.

    The constrained layout makes room for legends and titles over successive draws, and each file format's renderer
    would move the panels by a hair: fixing the layout once makes saving the same figure twice give the same file
    (and saves the layout work of every later save). :func:`save_figure` calls it; afterwards the figure no longer
    re-arranges itself when changed.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> fig = plt.figure(layout="constrained"); ax = fig.subplots(); _ = ax.set_title("a title")
    >>> fix_layout(fig); where = ax.get_position().bounds
    >>> _ = ax.set_ylabel("a label"); fig.draw_without_rendering(); ax.get_position().bounds == where
    True
    >>> plt.close(fig)
    """
    import matplotlib
    from matplotlib.layout_engine import ConstrainedLayoutEngine

    if not isinstance(fig.get_layout_engine(), ConstrainedLayoutEngine):
        return
    with matplotlib.rc_context(HOUSE_STYLE):
        before = None
        for _ in range(10):
            fig.draw_without_rendering()
            now = [ax.get_position().bounds for ax in fig.axes]
            if now == before:
                break
            before = now
    fig.set_layout_engine("none")


# ---------------------------------------------------------------------------------------------------- helpers
def _axis_label(name: str, unit: str) -> str:
    """``"NAME [unit]"``: the one label format of every axis (a dimensionless quantity, unit ``"1"``, has none)."""
    return name if unit == "1" else f"{name} [{unit}]"


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
    for what, have, want in (("y", " ".join(ax.get_ylabel().split()), ylabel), ("x", ax.get_xlabel(), time_label)):
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


def _draw_band(ax, times, values, status, percent, colour: str, label: str | None, name: str,
               floor: float | None = None) -> np.ndarray:
    """Median (or middle percentile) line and shaded band over the solved subjects; on a log axis the band stops
    at ``floor``. Returns the drawn values."""
    ok = (status == 0) & np.any(np.isfinite(values), axis=1)
    if not ok.any():
        raise PkpdError(f"plot_simulation: {name!r}: no subject was solved (see Simulation.status); nothing to "
                        "summarise.")
    lo, mid, hi = np.percentile(values[ok], percent, axis=0)
    if floor is not None:
        lo = np.maximum(lo, floor)
        hi = np.where(hi < floor, np.nan, hi)
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
    from .estimation.individual import FitResult, SubjectFits

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
    >>> data = pd.DataFrame({"ID": 1, "TIME": np.r_[0, t], "EVID": [1] + [0] * 6, "AMT": [100] + [0] * 6, "AMTU": "mg",
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
        _legend(list(grid.ravel()))
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
    >>> data = pd.DataFrame({"ID": 1, "TIME": np.r_[0, t], "EVID": [1] + [0] * 6, "AMT": [100] + [0] * 6, "AMTU": "mg",
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
    >>> data = pd.DataFrame({"ID": 1, "TIME": np.r_[0, t], "EVID": [1] + [0] * 6, "AMT": [100] + [0] * 6, "AMTU": "mg",
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
        _legend(list(grid.ravel()))
    return fig


def plot_profile(profiles, *, titles=None):
    """Profile likelihoods: the rise of -2 log-likelihood against each parameter's value, with the 95 % threshold.

    Parameters
    ----------
    profiles : ProfileLikelihood or sequence of them
        From :func:`pkpd.profile_likelihood`; one panel each.
    titles : sequence of str, optional
        A title per panel (e.g. which fit the profile comes from).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np, pandas as pd, pkpd
    >>> from pkpd.plots import plot_profile
    >>> t = np.array([1.0, 2, 4, 8, 12, 24])
    >>> conc = 100 / 32 * np.exp(-2.8 / 32 * t) * np.array([1.02, 0.97, 1.01, 0.99, 1.03, 0.98])
    >>> data = pd.DataFrame({"ID": 1, "TIME": np.r_[0, t], "EVID": [1] + [0] * 6, "AMT": [100] + [0] * 6, "AMTU": "mg",
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

    from .estimation.uncertainty import ProfileLikelihood

    items = [profiles] if isinstance(profiles, ProfileLikelihood) else list(profiles)
    if not items or not all(isinstance(p, ProfileLikelihood) for p in items):
        raise PkpdError("plot_profile: give a ProfileLikelihood (from pkpd.profile_likelihood) or a list of them")
    titles = [None] * len(items) if titles is None else [titles] if isinstance(titles, str) else list(titles)
    if len(titles) != len(items):
        raise PkpdError(f"plot_profile: {len(titles)} titles for {len(items)} profiles; give one per profile")
    with matplotlib.rc_context(HOUSE_STYLE):
        axes = _new_axes(plt, len(items))
        for ax, p, title in zip(axes, items, titles):
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
                ax.set_title((f"{title}: " if title else "") + f"{p.name} not bounded by the data", color="#b00")
            elif title:
                ax.set_title(title)
        _legend(axes)
    return axes[0].figure


# ---------------------------------------------------------------------------------------------------- scenarios
def scenario_colors(result) -> dict[str, str]:
    """The colour of every arm of a scenario, the same in every scenario figure.

    An arm's own ``color`` wins. A regimen comparison (no two arms share a schedule) takes :data:`ARM_COLORS` in
    arm order. A dose-ranging scenario gives each schedule one hue of :data:`ARM_COLORS`, in lighter shades for
    lower doses, and control arms grey; :func:`plot_dose_response` and :func:`plot_target_attainment` draw each
    schedule in its full hue.

    Parameters
    ----------
    result : ScenarioResult or Scenario

    Returns
    -------
    dict[str, str]
        Arm name -> hex colour.

    Examples
    --------
    >>> import pkpd
    >>> from pkpd.scenarios import Arm, Scenario
    >>> from pkpd.metrics import Endpoint
    >>> sc = Scenario(pkpd.load_model("pk_1cmt_iv"), [Arm("a", pkpd.Dose(1, "mg")), Arm("b", pkpd.Dose(2, "mg"),
    ...               start=1)], [Endpoint("conc", "cmax", end=24)])
    >>> scenario_colors(sc)
    {'a': '#0072B2', 'b': '#D55E00'}
    """
    arms, groups = _scenario_arms(result)
    return _arm_colours(arms, groups)[0]


def _scenario_arms(result):
    sc = getattr(result, "scenario", result)
    arms = list(sc.arms)
    return arms, {a.name: a.schedule for a in arms}


def _shade(colour: str, amount: float) -> str:
    """``colour`` mixed with white (amount 0: unchanged, 1: white)."""
    from matplotlib.colors import to_hex, to_rgb

    r, g, b = to_rgb(colour)
    return to_hex((r + (1 - r) * amount, g + (1 - g) * amount, b + (1 - b) * amount))


def _arm_colours(arms, groups) -> tuple[dict[str, str], dict[str, str]]:
    """(arm -> colour, schedule group -> colour)."""
    treated = [a for a in arms if not a.control]
    order = list(dict.fromkeys(groups[a.name] for a in treated))
    hues = [c for c in ARM_COLORS if c != "#000000"]
    group_colour = {g: hues[i % len(hues)] for i, g in enumerate(order)}
    group_colour["untreated"] = "#595959"
    out = {}
    if len(order) == len(treated):  # every arm its own schedule: a regimen comparison
        for i, a in enumerate(arms):
            out[a.name] = ARM_COLORS[i % len(ARM_COLORS)]
        group_colour.update({groups[a.name]: out[a.name] for a in treated})
    else:
        for g in order:
            members = sorted((a for a in treated if groups[a.name] == g), key=lambda a: a.dose_level)
            for k, a in enumerate(members):
                frac = 0.0 if len(members) == 1 else (len(members) - 1 - k) / (len(members) - 1)
                out[a.name] = _shade(group_colour[g], 0.6 * frac)
        for a in arms:
            if a.control:
                out[a.name] = "#595959"
    for a in arms:
        if a.color is not None:
            out[a.name] = a.color
    return out, group_colour


def _endpoint_names(result, endpoints) -> list[str]:
    return _chosen([ep.name for ep in result.scenario.endpoints], endpoints,
                   "no endpoint {!r} in scenario " + repr(result.scenario.name) + ".")


def _chosen(known: list, selection, unknown: str) -> list:
    """What a plot draws: every known name, or the selection (one name or several), each checked against ``known``
    (``unknown``: the error message, ``{!r}`` standing for the name)."""
    if selection is None:
        return list(known)
    names = [selection] if isinstance(selection, str) else list(selection)
    for n in names:
        if n not in known:
            raise PkpdError(unknown.replace("{!r}", repr(n)) + did_you_mean(str(n), known))
    return names


def plot_time_course(result, outputs: str | Sequence[str] | None = None, *, arms: Sequence[str] | None = None,
                     bands: bool | None = None, log_y: bool | None = None, time_unit: str | None = None):
    """Time course of outputs by arm: median line and 5-95 % band across the virtual subjects, doses marked.

    With more than 6 arms over several schedules, each schedule gets its own column of panels (its dose levels
    and the untreated reference), so that every band stays readable. Conventions (time unit, labels, scales,
    legend) as :func:`plot_simulation`.

    Parameters
    ----------
    result : ScenarioResult
    outputs : str or sequence of str, optional
        One panel (row) each; default the outputs the endpoints use.
    arms : sequence of str, optional
        Arms to draw (default all; the untreated reference is drawn dashed when the scenario simulated it).
    bands : bool, optional
        Draw the 5-95 % bands (default: when the population has more than one subject).
    log_y : bool, optional
        Log y axes (default: per output, as :func:`plot_simulation`).
    time_unit : {"min", "h", "d", "wk"}, optional
        Unit of the time axis (default from the horizon).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import pkpd
    >>> from pkpd.scenarios import Arm, Scenario, run_scenario
    >>> from pkpd.metrics import Endpoint
    >>> res = run_scenario(Scenario(pkpd.load_model("pk_1cmt_iv"), [Arm("100 mg", pkpd.Dose(100, "mg"))],
    ...                             [Endpoint("conc", "cmax", end=24)]))
    >>> fig = plot_time_course(res)
    >>> fig.axes[0].get_xlabel(), fig.axes[0].get_ylabel()
    ('Time [h]', 'conc [mg/L]')
    >>> import matplotlib.pyplot as plt; plt.close(fig)
    """
    import matplotlib
    import matplotlib.pyplot as plt

    sc = result.scenario
    model = sc.model
    if outputs is None:
        outputs = list(dict.fromkeys(ep.output for ep in sc.endpoints))
    elif isinstance(outputs, str):
        outputs = [outputs]
    for o in outputs:
        if o not in model.output_names:
            raise PkpdError(f"plot_time_course: model {model.name!r} has no output {o!r}."
                            + did_you_mean(str(o), model.output_names))
    all_arms = [a.name for a in sc.arms]
    chosen = all_arms if arms is None else list(arms)
    for a in chosen:
        if a not in all_arms:
            raise PkpdError(f"plot_time_course: no arm {a!r}." + did_you_mean(str(a), all_arms))
    if time_unit is not None and time_unit not in TIME_UNITS:
        raise PkpdError(f"plot_time_course: time_unit must be one of {', '.join(TIME_UNITS)}; got {time_unit!r}")
    draw_bands = sc.population.n > 1 if bands is None else bool(bands) and sc.population.n > 1
    colours = scenario_colors(result)
    by_name = {a.name: a for a in sc.arms}
    columns = _time_course_columns([by_name[a] for a in chosen])
    hours = _hours(model.time_unit)
    unit = time_unit or time_unit_for((result.times[-1] - result.times[0]) * hours)
    t = result.times * hours / TIME_UNITS[unit]
    ref = result.time_course.get("untreated (reference)")
    outputs_by_name = {o.name: o for o in model.outputs}
    with matplotlib.rc_context(HOUSE_STYLE):
        fig = plt.figure(figsize=(_PANEL_SIZE[0] * len(columns), _PANEL_SIZE[1] * len(outputs)),
                         layout="constrained")
        grid = fig.subplots(len(outputs), len(columns), squeeze=False, sharey="row")
        interactive = matplotlib.is_interactive()
        for r, o in enumerate(outputs):
            decl = outputs_by_name[o]
            every = [np.asarray(result.time_course[a][o]) for a in chosen] + ([np.asarray(ref[o])] if ref else [])
            ylabel, factor = _quantity(decl.label or o, decl.unit, np.concatenate([x.ravel() for x in every]))
            values = np.concatenate([x.ravel() for x in every]) * factor
            use_log = log_y if log_y is not None else _log_scale(decl.scale, decl.unit, values)
            floor = _log_floor(decl.unit, values) if use_log else None
            for c, (group, members) in enumerate(columns):
                ax = grid[r, c]
                if ref is not None and not any(a.control for a in sc.arms):
                    ax.plot(t, np.asarray(ref[o][1]) * factor, color="0.45", linestyle="--", linewidth=1.2,
                            label="untreated (median)")
                for arm in members:
                    lo, mid, hi = (np.asarray(x) * factor for x in result.time_course[arm.name][o])
                    ax.plot(t, mid, color=colours[arm.name], label=arm.name)
                    if draw_bands:
                        if floor is not None:
                            lo = np.maximum(lo, floor)
                        ax.fill_between(t, lo, hi, color=colours[arm.name], alpha=0.15, linewidth=0)
                ax.set_yscale("log" if use_log else "linear")
                _finish_axes(ax, _axis_label("Time", unit), ylabel if c == 0 else "", unit, t, floor)
                if r == 0 and len(columns) > 1:
                    ax.set_title(group, fontsize=9)
                treated = [a for a in members if not a.control]
                for arm in treated:
                    _mark_doses([ax], [arm.regimen], 1.0 / TIME_UNITS[unit], colour=colours[arm.name],
                                label="doses")
        what = "median and 5-95 % range" if draw_bands else "median"
        if sc.population.n == 1:
            what = "typical subject"
        _legend(list(grid.ravel()), title=f"{what} of {sc.population.n} virtual subjects"
                if sc.population.n > 1 else what)
        fig.suptitle(f"{sc.name}: time course by arm", fontsize=10)
    matplotlib.interactive(interactive)
    return fig


def _time_course_columns(arms) -> list[tuple[str, list]]:
    """Panels of a scenario time course: one column for up to 6 arms, else one per schedule (each with the control
    arms), so that bands stay readable."""
    if len(arms) <= 6:
        return [("all arms", list(arms))]
    controls = [a for a in arms if a.control]
    groups: dict[str, list] = {}
    for a in arms:
        if not a.control:
            groups.setdefault(a.schedule, []).append(a)
    if len(groups) <= 1:
        return [("all arms", list(arms))]
    return [(g, controls + sorted(members, key=lambda a: a.dose_level)) for g, members in groups.items()]


def plot_exposure(result, endpoints: str | Sequence[str] | None = None, *, units: dict | None = None):
    """Endpoint values by arm: every virtual subject (dots), the median (bar) and the 5-95 % range (line).

    Parameters
    ----------
    result : ScenarioResult
    endpoints : str or sequence of str, optional
        One panel each (default all).
    units : dict[str, str], optional
        Unit to show an endpoint in (e.g. ``{"IL10_AUC_0_168": "ng*h/mL"}``); default its own.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import pkpd
    >>> from pkpd.scenarios import Arm, Scenario, run_scenario
    >>> from pkpd.metrics import Endpoint
    >>> res = run_scenario(Scenario(pkpd.load_model("pk_1cmt_iv"), [Arm("100 mg", pkpd.Dose(100, "mg"))],
    ...                             [Endpoint("conc", "auc", end=24)]))
    >>> fig = plot_exposure(res)
    >>> fig.axes[0].get_xlabel(), fig.axes[0].get_ylabel()
    ('conc_AUC_to_24 [mg/L·h]', 'Arm')
    >>> import matplotlib.pyplot as plt; plt.close(fig)
    """
    import matplotlib
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    names = _endpoint_names(result, endpoints)
    arms = [a.name for a in result.scenario.arms]
    colours = scenario_colors(result)
    units, scale = _endpoint_units(result, units)
    table = result.table
    height = max(_PANEL_SIZE[1], 0.28 * len(arms) + 0.9)
    label_width = 0.065 * max(len(a) for a in arms)  # inches taken by the arm names, left of each panel
    with matplotlib.rc_context(HOUSE_STYLE):
        ncols = 1 if len(names) == 1 else 2
        nrows = math.ceil(len(names) / ncols)
        fig = plt.figure(figsize=((_PANEL_SIZE[0] + label_width) * ncols, height * nrows), layout="constrained")
        grid = fig.subplots(nrows, ncols, squeeze=False).ravel()
        for extra in grid[len(names):]:
            fig.delaxes(extra)
        rng = np.random.default_rng(0)  # jitter only: fixed, so the figure is reproducible
        for ax, ep in zip(grid, names):
            part = table[table["endpoint"] == ep]
            all_values = []
            for k, arm in enumerate(arms):
                v = part.loc[part["arm"] == arm, "value"].to_numpy(dtype=float) * scale[ep]
                v = v[np.isfinite(v)]
                if not v.size:
                    continue
                all_values.append(v)
                y = len(arms) - 1 - k
                ax.scatter(v, y + rng.uniform(-0.22, 0.22, v.size), s=4, color=colours[arm], alpha=0.35,
                           linewidths=0)
                p5, med, p95 = np.percentile(v, (5, 50, 95))
                ax.plot([p5, p95], [y, y], color=colours[arm], linewidth=2.0, solid_capstyle="butt")
                ax.plot([med, med], [y - 0.32, y + 0.32], color="black", linewidth=1.6)
            ax.set_yticks(range(len(arms)))
            ax.set_yticklabels(arms[::-1], fontsize=7 if len(arms) > 10 else None)
            ax.grid(axis="y", visible=False)
            vals = np.concatenate(all_values) if all_values else np.array([])
            if _wants_log(vals):
                ax.set_xscale("log")
            ax.margins(x=0.04)
            ax.set_axisbelow(True)
            ax.set_xlabel(_axis_label(ep, _pretty_unit(units[ep])))
            ax.set_ylabel("Arm")
            if ax.get_xscale() == "linear":
                ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _pos: _tick_text(value)))
        fig.suptitle(f"{result.scenario.name}: endpoints by arm", fontsize=10)
    return fig


def _endpoint_units(result, units) -> tuple[dict[str, str], dict[str, float]]:
    """(unit to show each endpoint in, factor from its own unit)."""
    from . import units as un

    shown = dict(result.units)
    scale = dict.fromkeys(shown, 1.0)
    for name, unit in (units or {}).items():
        if name not in shown:
            raise PkpdError(f"units: no endpoint {name!r}." + did_you_mean(str(name), list(shown)))
        scale[name] = 1.0 if unit == shown[name] else un.convert(shown[name], unit)
        shown[name] = unit
    return shown, scale


def plot_dose_response(result, endpoints: str | Sequence[str] | None = None, *, units: dict | None = None):
    """Dose-response per schedule: arm medians with 5-95 % ranges, the Emax fit with its confidence band, ED50.

    The curve's band is the pointwise confidence interval of the fitted typical curve (delta method); the
    horizontal bar at the ED50 marker is its confidence interval. Only schedules with a fit (>= 3 dose levels)
    are drawn. An ED50 the fit does not determine (a flat response, an interval wider than 100-fold, or an
    extrapolation beyond the doses tested: :class:`pkpd.scenarios.DoseResponseFit`) gets no marker; the panel
    says which schedules have one.

    Parameters
    ----------
    result : ScenarioResult
    endpoints : str or sequence of str, optional
        One panel each (default all).
    units : dict[str, str], optional
        Unit to show an endpoint in; default its own.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    PkpdError
        The scenario has no dose-response fit (no schedule with 3 or more dose levels).

    Examples
    --------
    >>> import pkpd
    >>> from pkpd.scenarios import Scenario, dose_ranging_arms, run_scenario
    >>> from pkpd.metrics import Endpoint
    >>> res = run_scenario(Scenario(pkpd.load_model("pk_1cmt_iv"), dose_ranging_arms("iv", [10, 30, 100], "mg"),
    ...                             [Endpoint("conc", "cmax", end=24)]))
    >>> fig = plot_dose_response(res)
    >>> fig.axes[0].get_xlabel(), fig.axes[0].get_ylabel()
    ('Dose per administration [mg]', 'conc_Cmax_to_24 [mg/L]')
    >>> import matplotlib.pyplot as plt; plt.close(fig)
    """
    import matplotlib
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    names = _endpoint_names(result, endpoints)
    if not result.fits:
        raise PkpdError("plot_dose_response: the scenario has no dose-response fit; give a schedule at least 3 dose "
                        "levels (e.g. dose_ranging_arms or doses = [...] in the scenario file)")
    arms, groups = _scenario_arms(result)
    colours, group_colours = _arm_colours(arms, groups)
    summary = result.summary
    units, scale = _endpoint_units(result, units)
    fitted_groups = list(dict.fromkeys(g for g, _ in result.fits))
    with matplotlib.rc_context(HOUSE_STYLE):
        axes = _new_axes(plt, len(names))
        for ax, ep in zip(axes, names):
            dose_unit = None
            lows, highs = [], []
            drawn = [g for g in fitted_groups if (g, ep) in result.fits]
            flagged = []
            for k, g in enumerate(drawn):
                fit = result.fits[(g, ep)]
                colour = group_colours[g]
                members = [a for a in arms if not a.control and groups[a.name] == g]
                dose_unit = members[0].dose_unit
                d = np.array([a.dose_level for a in members])
                rows = summary[summary["endpoint"] == ep].set_index("arm")
                med = np.array([rows.loc[a.name, "median"] for a in members]) * scale[ep]
                lo = np.array([rows.loc[a.name, "p5"] for a in members]) * scale[ep]
                hi = np.array([rows.loc[a.name, "p95"] for a in members]) * scale[ep]
                dodge = 1.0 + 0.07 * (k - (len(drawn) - 1) / 2)  # schedules side by side at the same dose
                with np.errstate(invalid="ignore"):      # a median time to event not reached: inf - inf
                    yerr = [np.maximum(med - lo, 0), np.maximum(hi - med, 0)]
                ax.errorbar(d * dodge, med, yerr=yerr, fmt="o", color=colour, markersize=4, capsize=2, linewidth=0.9,
                            label=g)
                grid = np.geomspace(d.min() / 2, d.max() * 2, 200)
                lows.append(grid[0])
                highs.append(grid[-1])
                band_lo, band_hi = (b * scale[ep] for b in fit.band(grid))
                ax.plot(grid, fit.predict(grid) * scale[ep], color=colour, linewidth=1.4)
                if np.all(np.isfinite(band_lo)):
                    ax.fill_between(grid, band_lo, band_hi, color=colour, alpha=0.18, linewidth=0)
                if fit.ed50_flag:
                    flagged.append(f"{g}: {fit.ed50_flag}")
                elif np.all(np.isfinite(fit.ed50_ci)) and grid[0] <= fit.ed50 <= grid[-1]:
                    y50 = float(fit.predict(fit.ed50)) * scale[ep]
                    ax.errorbar([fit.ed50], [y50], xerr=[[fit.ed50 - fit.ed50_ci[0]], [fit.ed50_ci[1] - fit.ed50]],
                                fmt="D", color=colour, markerfacecolor="white", markersize=5, capsize=3,
                                linewidth=1.2)
            ax.set_xscale("log")
            if lows:
                ax.set_xlim(min(lows), max(highs))
            if flagged:  # said under the panel title: no ED50 marker for these schedules
                kinds = sorted({f.split(": ")[-1] for f in flagged})
                which = "all schedules" if len(flagged) == len(drawn) else f"{len(flagged)} schedule(s)"
                ax.set_title(f"{ep}\nno ED50 ({which}): {', '.join(kinds)}", fontsize=8, color="#8a5a00")
            else:
                ax.set_title(ep, fontsize=9)
            ax.set_xlabel(_axis_label("Dose per administration", _pretty_unit(dose_unit or "dose unit")))
            ax.set_ylabel(_axis_label(ep, _pretty_unit(units[ep])))
            if ax.get_yscale() == "linear":
                ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _pos: _tick_text(value)))
        _legend(axes, title="dots: median and 5-95 % range\nline: Emax fit, 95 % CI band\n◇: ED50, 95 % CI")
        axes[0].figure.suptitle(f"{result.scenario.name}: dose-response", fontsize=10)
    return axes[0].figure


def plot_target_attainment(result, targets: str | Sequence[str] | None = None, *, probability: float | None = 0.8):
    """Probability of target attainment (PTA) against dose, one line per schedule, with Wilson 95 % intervals.

    Parameters
    ----------
    result : ScenarioResult
    targets : str or sequence of str, optional
        Target names, one panel each (default all).
    probability : float, optional
        Draw this PTA as a dashed reference line (default 0.8; None for none).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import pkpd
    >>> from pkpd.scenarios import Scenario, Target, dose_ranging_arms, run_scenario
    >>> from pkpd.metrics import Endpoint
    >>> res = run_scenario(Scenario(pkpd.load_model("pk_1cmt_iv"), dose_ranging_arms("iv", [10, 30, 100], "mg"),
    ...                             [Endpoint("conc", "cmax", end=24)], [Target("conc_Cmax_to_24", ">=", 1)]))
    >>> fig = plot_target_attainment(res)
    >>> fig.axes[0].get_xlabel(), fig.axes[0].get_ylabel()
    ('Dose per administration [mg]', 'Target attainment [%]')
    >>> import matplotlib.pyplot as plt; plt.close(fig)
    """
    import matplotlib
    import matplotlib.pyplot as plt

    att = result.attainment
    known = list(dict.fromkeys(att["target"]))
    if not known:
        raise PkpdError("plot_target_attainment: the scenario has no targets; add Target(...) to it")
    names = _chosen(known, targets, "plot_target_attainment: no target {!r}.")
    arms, groups = _scenario_arms(result)
    _, group_colours = _arm_colours(arms, groups)
    with matplotlib.rc_context(HOUSE_STYLE):
        axes = _new_axes(plt, len(names))
        for ax, target in zip(axes, names):
            part = att[att["target"] == target]
            dose_unit = None
            for g, rows in part.groupby("group", sort=False):
                if g == "untreated":
                    p = 100 * rows["probability"].to_numpy()
                    for k, v in enumerate(p):
                        ax.axhline(v, color=group_colours[g], linewidth=0.9, linestyle=":",
                                   label=f"untreated: {v:.0f} %" if k == 0 else None)
                    continue
                rows = rows.sort_values("dose")
                dose_unit = rows["dose_unit"].iloc[0]
                d = rows["dose"].to_numpy(dtype=float)
                p = 100 * rows["probability"].to_numpy(dtype=float)
                lo = 100 * rows["ci_low"].to_numpy(dtype=float)
                hi = 100 * rows["ci_high"].to_numpy(dtype=float)
                ax.errorbar(d, p, yerr=[np.maximum(p - lo, 0), np.maximum(hi - p, 0)], marker="o", markersize=4,
                            capsize=2, linewidth=1.3,
                            color=group_colours[g], label=g)
            if probability is not None:
                ax.axhline(100 * probability, color="0.3", linestyle="--", linewidth=0.9,
                           label=f"{100 * probability:g} % PTA")
            treated = part[part["group"] != "untreated"]
            drawn = (np.isfinite(treated["probability"].to_numpy(dtype=float))
                     & (treated["dose"].to_numpy(dtype=float) > 0))
            if drawn.any():
                ax.set_xscale("log")
            elif len(treated):
                # a log axis of no finite point cannot be drawn; say why the panel is empty
                ax.text(0.5, 0.5, "no PTA: no simulation of these arms succeeded", transform=ax.transAxes,
                        ha="center", va="center", fontsize=8, color="0.3")
            ax.set_ylim(-3, 103)
            ax.set_title(_pretty_numbers(target).replace("*", "·"), fontsize=9)
            ax.set_xlabel(_axis_label("Dose per administration", _pretty_unit(dose_unit or "dose unit")))
            ax.set_ylabel(_axis_label("Target attainment", "%"))
        _legend(axes, title="probability of target attainment\n(Wilson 95 % CI)")
        axes[0].figure.suptitle(f"{result.scenario.name}: probability of target attainment", fontsize=10)
    return axes[0].figure


def plot_tornado(sensitivity, endpoints: str | Sequence[str] | None = None, *, top: int = 10):
    """Tornado plot of normalised local sensitivities: bars sorted by size, the largest on top.

    Parameters
    ----------
    sensitivity : LocalSensitivity
        From :func:`pkpd.sensitivity.local_sensitivity` (or ``ScenarioResult.sensitivity``).
    endpoints : str or sequence of str, optional
        One panel each (default all).
    top : int
        Most parameters shown per panel.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import pkpd
    >>> from pkpd.metrics import Endpoint
    >>> from pkpd.sensitivity import local_sensitivity
    >>> s = local_sensitivity(pkpd.load_model("pk_1cmt_iv"), pkpd.Regimen.single(pkpd.Dose(100, "mg")),
    ...                       Endpoint("conc", "auc", end=48))
    >>> fig = plot_tornado(s)
    >>> fig.axes[0].get_xlabel()
    'Normalised sensitivity ∂ln Y/∂ln θ'
    >>> import matplotlib.pyplot as plt; plt.close(fig)
    """
    import matplotlib
    import matplotlib.pyplot as plt

    table = sensitivity.table
    names = _chosen(list(dict.fromkeys(table["endpoint"])), endpoints, "plot_tornado: no endpoint {!r}.")
    with matplotlib.rc_context(HOUSE_STYLE):
        axes = _new_axes(plt, len(names))
        for ax, ep in zip(axes, names):
            part = table[table["endpoint"] == ep].copy()
            part["size"] = part["sensitivity"].abs()
            part = part.sort_values("size", ascending=False).head(top).iloc[::-1]
            s = part["sensitivity"].to_numpy(dtype=float)
            colour = np.where(s >= 0, ARM_COLORS[0], ARM_COLORS[1])
            ax.barh(range(len(part)), s, color=colour, height=0.65)
            ax.set_yticks(range(len(part)))
            ax.set_yticklabels(part["parameter"].tolist())
            ax.axvline(0, color="0.3", linewidth=0.8)
            ax.grid(axis="y", visible=False)
            ax.set_axisbelow(True)
            ax.margins(x=0.08)
            ax.set_title(ep, fontsize=9)
            ax.set_xlabel(_axis_label("Normalised sensitivity ∂ln Y/∂ln θ", "1"))
            ax.set_ylabel("Parameter")
    return axes[0].figure


def plot_sensitivity_over_time(sensitivity, output: str, *, top: int = 6):
    """Normalised sensitivity of an output to each parameter over time (the ``top`` largest by peak size).

    Examples
    --------
    >>> import pkpd
    >>> from pkpd.metrics import Endpoint
    >>> from pkpd.sensitivity import local_sensitivity
    >>> s = local_sensitivity(pkpd.load_model("pk_1cmt_iv"), pkpd.Regimen.single(pkpd.Dose(100, "mg")),
    ...                       Endpoint("conc", "auc", end=48))
    >>> fig = plot_sensitivity_over_time(s, "conc")
    >>> fig.axes[0].get_xlabel(), fig.axes[0].get_ylabel()
    ('Time [h]', 'Normalised sensitivity of conc')
    >>> import matplotlib.pyplot as plt; plt.close(fig)
    """
    import matplotlib
    import matplotlib.pyplot as plt

    if output not in sensitivity.over_time:
        raise PkpdError(f"plot_sensitivity_over_time: no output {output!r} in the sensitivities."
                        + did_you_mean(str(output), sensitivity.over_time))
    s = sensitivity.over_time[output]
    with np.errstate(invalid="ignore"):
        peak = np.nan_to_num(np.nanmax(np.abs(s), axis=1, initial=0.0))
    order = np.argsort(-peak)[:top]
    with matplotlib.rc_context(HOUSE_STYLE):
        axes = _new_axes(plt, 1)
        ax = axes[0]
        for k, i in enumerate(order):
            ax.plot(sensitivity.times, s[i], color=ARM_COLORS[k % len(ARM_COLORS)],
                    label=sensitivity.parameters[i])
        ax.axhline(0, color="0.3", linewidth=0.8)
        ax.set_xlabel(_axis_label("Time", sensitivity.time_unit))
        ax.set_ylabel(_axis_label(f"Normalised sensitivity of {output}", "1"))
        _legend(axes)
    return ax.figure


def plot_sobol(result, outputs: str | Sequence[str] | None = None):
    """Sobol indices as bars: first order (S1) and total (ST) per input, with their confidence intervals.

    Parameters
    ----------
    result : SobolResult
        From :func:`pkpd.sensitivity.sobol_indices`.
    outputs : str or sequence of str, optional
        One panel each (default all).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> from pkpd.sensitivity import sobol_indices
    >>> res = sobol_indices(lambda v: v["a"] + 2 * v["b"], {"a": (0, 1), "b": (0, 1)}, n=128, seed=0)
    >>> fig = plot_sobol(res)
    >>> fig.axes[0].get_ylabel()
    'Sobol index'
    >>> import matplotlib.pyplot as plt; plt.close(fig)
    """
    import matplotlib
    import matplotlib.pyplot as plt

    table = result.table
    names = _chosen(list(dict.fromkeys(table["output"])), outputs, "plot_sobol: no output {!r}.")
    with matplotlib.rc_context(HOUSE_STYLE):
        axes = _new_axes(plt, len(names))
        for ax, out in zip(axes, names):
            part = table[table["output"] == out]
            x = np.arange(len(part))
            for offset, key, colour, label in ((-0.2, "S1", ARM_COLORS[0], "first order S1"),
                                               (0.2, "ST", ARM_COLORS[1], "total ST")):
                v = part[key].to_numpy(dtype=float)
                lo = part[f"{key}_low"].to_numpy(dtype=float)
                hi = part[f"{key}_high"].to_numpy(dtype=float)
                err = None
                if np.all(np.isfinite(lo)):
                    err = [np.maximum(v - lo, 0), np.maximum(hi - v, 0)]
                ax.bar(x + offset, v, width=0.38, color=colour, yerr=err, capsize=2, label=label,
                       error_kw={"linewidth": 0.8})
            ax.set_xticks(x)
            ax.set_xticklabels(part["parameter"].tolist(), rotation=30 if len(part) > 5 else 0, ha="right"
                               if len(part) > 5 else "center")
            ax.axhline(0, color="0.3", linewidth=0.8)
            ax.grid(axis="x", visible=False)
            ax.set_axisbelow(True)
            ax.margins(x=0.04)
            ax.set_title(out, fontsize=9)
            ax.set_xlabel("Parameter")
            ax.set_ylabel(_axis_label("Sobol index", "1"))
        _legend(axes)
    return axes[0].figure


_RIGHT_LEGEND = "pkpd-legend-right"


def _legend(axes, *, title: str | None = None, above_max: int = 4) -> None:
    """One legend for all panels, never over data (nor over the title): a figure legend below the panels when short,
    right of them when long or titled (the figure is widened so that the panels keep their size). In a figure
    without constrained layout (the caller's), right of the last panel."""
    from matplotlib.layout_engine import ConstrainedLayoutEngine

    seen: dict[str, object] = {}
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab and not lab.startswith("_"):
                seen.setdefault(lab, h)
    if not seen:
        return
    seen = dict(sorted(seen.items(), key=lambda item: item[0] in ("dose", "doses")))  # markers' key last
    fig = axes[0].figure
    widened = any(lg.get_gid() == _RIGHT_LEGEND for lg in fig.legends)
    for old in list(fig.legends) + [a.get_legend() for a in fig.axes if a.get_legend() is not None]:
        old.remove()
    handles, labels = list(seen.values()), list(seen)
    style = dict(title=title, title_fontsize=7.5, fontsize=7.5, alignment="left")
    if not isinstance(fig.get_layout_engine(), ConstrainedLayoutEngine):
        axes[-1].legend(handles, labels, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, **style)
        return
    if len(seen) <= above_max and title is None:
        longest = max(len(lab) for lab in seen)
        ncols = len(seen) if longest * len(seen) <= 70 else 2 if longest <= 35 else 1
        fig.legend(handles, labels, loc="outside lower center", ncols=ncols, **style)
        return
    longest = max([len(lab) for lab in seen] + [0.85 * len(line) for line in (title or "").splitlines()])
    if not widened:
        w, h = fig.get_size_inches()
        fig.set_size_inches(w + 0.5 + 0.062 * longest, h)
    legend = fig.legend(handles, labels, loc="outside right upper", **style)
    legend.set_gid(_RIGHT_LEGEND)  # an overlay redraws it without widening the figure again


def plot_vpc(v, *, log: bool | None = None):
    """Visual predictive check: observed percentiles per time bin over simulated 90 % prediction intervals, with
    a panel of the fraction below the LLOQ when there is any.

    Parameters
    ----------
    v : pkpd.nlme.VPC
        From :func:`pkpd.nlme.vpc`.
    log : bool, optional
        Logarithmic concentration axis; default when the values are positive and span more than 3 decades.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import pkpd
    >>> from pkpd.nlme import vpc
    >>> f = pkpd.fit_population("wang2007", "tests/data/wang2007/wang2007.csv", iiv={"ke": 0.04},
    ...                         error=pkpd.Additive(sd=0.3), maxeval=0)
    >>> fig = plot_vpc(vpc(f, "wang2007", "tests/data/wang2007/wang2007.csv", n_replicates=50, n_bins=2, seed=1))
    >>> len(fig.axes), fig.axes[0].get_ylabel()  # no panel of the fraction below the LLOQ: the data have none
    (1, 'f [mg/L]')
    >>> import matplotlib.pyplot as plt; plt.close(fig)
    """
    import matplotlib
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, PercentFormatter

    colours = (ARM_COLORS[0], ARM_COLORS[1], ARM_COLORS[0])
    with matplotlib.rc_context(HOUSE_STYLE):
        blq = bool(np.any(v.blq_observed > 0) or np.any(v.blq_simulated > 0))  # no BLQ panel without any BLQ
        fig = plt.figure(figsize=(_PANEL_SIZE[0] * 1.8, _PANEL_SIZE[1] * (1.6 if blq else 1.2)), layout="constrained")
        if blq:
            ax, ax_blq = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
        else:
            ax, ax_blq = fig.subplots(1, 1), None
        middle = len(v.percentiles) // 2
        outer = " and ".join(f"{p:g}th" for k, p in enumerate(v.percentiles) if k != middle)
        for k in range(len(v.percentiles)):
            what = "median" if k == middle else f"{outer} percentiles"
            ax.fill_between(v.centres, v.simulated[k, 0], v.simulated[k, 2], color=colours[k % 3], alpha=0.2,
                            linewidth=0, label=f"simulated: 90 % PI of the {what}")
            ax.plot(v.centres, v.simulated[k, 1], color=colours[k % 3], ls="--", lw=1)
            ax.plot(v.centres, v.observed[k], color=colours[k % 3], marker="o", markersize=3.5, lw=1.5,
                    label=f"observed {what}")
        drawn = np.concatenate([v.simulated.ravel(), v.observed.ravel()])
        if log if log is not None else _wants_log(drawn):
            ax.set_yscale("log")
        else:
            ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _pos: _tick_text(value)))
        ax.set_ylabel(_axis_label(v.output, _pretty_unit(v.unit)))
        ax.set_title(f"Visual predictive check of {v.output}", fontsize=9)
        axes = [ax]
        if ax_blq is not None:
            ax_blq.fill_between(v.centres, v.blq_simulated[0], v.blq_simulated[2], color="0.6", alpha=0.35,
                                linewidth=0, label="fraction below LLOQ: simulated 90 % PI")
            ax_blq.plot(v.centres, v.blq_observed, color="black", marker="o", markersize=3.5,
                        label="fraction below LLOQ: observed")
            ax_blq.set_ylabel("below LLOQ [%]")
            ax_blq.yaxis.set_major_formatter(PercentFormatter(1.0))
            ax_blq.set_ylim(-0.02, 1.02)
            axes.append(ax_blq)
        axes[-1].set_xlabel(_axis_label("Time", v.time_unit))
        for a in axes:
            _house_style(a)
        _legend(axes)
    return fig


def plot_gof(fit):
    """Goodness-of-fit panel of a population fit: observed against population and individual predictions (with
    the line of identity), and conditional weighted residuals against time and against the population prediction
    (with lines at 0 and +/-1.96).

    Observations below the LLOQ (``CENS = 1``) are left out (they have no CWRES, and their DV is a limit). A fit of
    several outputs gets one row of four panels per output, each in that output's unit.

    Parameters
    ----------
    fit : pkpd.PopulationFit
        From :func:`pkpd.fit_population` (its ``table``: DV, PRED, IPRED, CWRES, TIME, OUTPUT).

    Returns
    -------
    matplotlib.figure.Figure
        One output: four panels in a 2 x 2 grid, DV vs PRED, DV vs IPRED, CWRES vs TIME, CWRES vs PRED. Several:
        these four in a row per output.

    Examples
    --------
    >>> import pkpd
    >>> from pkpd.plots import plot_gof
    >>> f = pkpd.fit_population("wang2007", "tests/data/wang2007/wang2007.csv", iiv={"ke": 0.04},
    ...                         error=pkpd.Additive(sd=0.3), maxeval=0)
    >>> fig = plot_gof(f)
    >>> [ax.get_xlabel() for ax in fig.axes]
    ['PRED [mg/L]', 'IPRED [mg/L]', 'TIME [h]', 'PRED [mg/L]']
    >>> import matplotlib.pyplot as plt; plt.close(fig)
    """
    import matplotlib
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    table = fit.table
    if "CENS" in table.columns:
        table = table[table["CENS"] == 0]
    units = dict(getattr(fit, "output_units", {}))
    outputs = list(dict.fromkeys(table["OUTPUT"])) if "OUTPUT" in table.columns else [None]
    time_unit = getattr(fit, "time_unit", "") or "time unit"
    with matplotlib.rc_context(HOUSE_STYLE):
        if len(outputs) == 1:
            fig = plt.figure(figsize=(_PANEL_SIZE[0] * 2, _PANEL_SIZE[1] * 2.1), layout="constrained")
            rows = [fig.subplots(2, 2).ravel()]
        else:
            fig = plt.figure(figsize=(_PANEL_SIZE[0] * 4, _PANEL_SIZE[1] * len(outputs)), layout="constrained")
            rows = list(fig.subplots(len(outputs), 4, squeeze=False))
        for axes, out in zip(rows, outputs):
            part = table if out is None else table[table["OUTPUT"] == out]
            unit = _pretty_unit(units.get(out, "")) if out is not None else (
                " | ".join(sorted(_pretty_unit(u) for u in set(units.values()))) or "output unit")
            prefix = "" if out is None or len(outputs) == 1 else f"{out}: "
            dv, pred, ipred = (part[c].to_numpy(dtype=float) for c in ("DV", "PRED", "IPRED"))
            cwres, t = part["CWRES"].to_numpy(dtype=float), part["TIME"].to_numpy(dtype=float)
            both = np.concatenate([pred, ipred, dv])
            log = _wants_log(both)
            for ax, x, name in ((axes[0], pred, "PRED"), (axes[1], ipred, "IPRED")):
                ax.scatter(x, dv, s=12, color=ARM_COLORS[0], alpha=0.7, label="observation")
                finite = both[np.isfinite(both)]
                lo, hi = (finite.min(), finite.max()) if finite.size else (0.0, 1.0)
                ax.plot([lo, hi], [lo, hi], color="0.4", linewidth=0.9, linestyle="--", label="identity")
                if log:
                    ax.set_xscale("log")
                    ax.set_yscale("log")
                ax.set_xlabel(_axis_label(f"{prefix}{name}", unit))
                ax.set_ylabel(_axis_label(f"{prefix}DV", unit))
                ax.set_title(f"observed vs {'population' if name == 'PRED' else 'individual'} prediction",
                             fontsize=9)
            for ax, x, label in ((axes[2], t, _axis_label("TIME", time_unit)),
                                 (axes[3], pred, _axis_label(f"{prefix}PRED", unit))):
                ax.scatter(x, cwres, s=12, color=ARM_COLORS[0], alpha=0.7)
                ax.axhline(0.0, color="0.4", linewidth=0.9)
                for level in (-1.96, 1.96):
                    ax.axhline(level, color="0.4", linewidth=0.8, linestyle="--")
                if x is pred and log:
                    ax.set_xscale("log")
                ax.set_xlabel(label)
                ax.set_ylabel(_axis_label(f"{prefix}CWRES", "1"))
                ax.set_title(f"CWRES vs {'time' if x is t else 'population prediction'}", fontsize=9)
            for ax in axes:
                for axis in (ax.xaxis, ax.yaxis):
                    if axis.get_scale() == "linear":
                        axis.set_major_formatter(FuncFormatter(lambda v, _pos: _tick_text(v)))
        _legend([ax for axes in rows for ax in axes])
        fig.suptitle(f"Goodness of fit: {getattr(fit, 'model_name', '')} ({fit.method.upper()})", fontsize=10)
    return fig


def plot_saem_convergence(fit, *, columns: int = 4):
    """SAEM's convergence: each estimated parameter against the iteration, with the end of the exploratory phase.

    Parameters
    ----------
    fit : pkpd.nlme.PopulationFit
        A fit with ``method="saem"`` (its ``trace``).
    columns : int
        Panels per row.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import pkpd
    >>> from pkpd.saem import SaemSettings
    >>> f = pkpd.fit_population("wang2007", "tests/data/wang2007/wang2007.csv", iiv={"ke": 0.04},
    ...                         error=pkpd.Additive(sd=0.3), method="saem", covariance=None, seed=1, is_samples=200,
    ...                         saem=SaemSettings(exploratory=20, smoothing=10))
    >>> len(plot_saem_convergence(f).axes) >= 3
    True
    """
    import matplotlib.pyplot as plt

    from .errors import PkpdError

    trace = getattr(fit, "trace", None)
    if trace is None:
        raise PkpdError("plot_saem_convergence: this fit has no SAEM trace (fit_population(..., method='saem'))")
    names = [c for c in trace.columns if c != "iteration"]
    rows = -(-len(names) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 2.4 * rows), squeeze=False)
    it = trace["iteration"].to_numpy()
    explore = None
    if "SAEM:" in fit.message:
        try:
            explore = int(fit.message.split("(")[1].split(" exploratory")[0])
        except (IndexError, ValueError):
            explore = None
    for k, ax in enumerate(axes.ravel()):
        if k >= len(names):
            ax.set_visible(False)
            continue
        ax.plot(it, trace[names[k]].to_numpy(), lw=1.2, color="tab:blue")
        if explore:
            ax.axvline(explore, color="grey", ls=":", lw=1)
        ax.set_title(names[k], fontsize=9)
        ax.set_xlabel("iteration")
    fig.suptitle(f"SAEM convergence: {fit.model_name} (dotted: end of the exploratory phase)", fontsize=10)
    fig.tight_layout()
    return fig


def plot_km_vpc(v, *, ax=None):
    """Kaplan-Meier VPC: the observed Kaplan-Meier curve (steps, with tick marks at censorings) over the simulated
    prediction interval and median of the Kaplan-Meier curves.

    Parameters
    ----------
    v : pkpd.endpoint_vpc.KaplanMeierVPC
        From :func:`pkpd.endpoint_vpc.km_vpc`.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np, pkpd
    >>> from pkpd.endpoint_vpc import km_vpc
    >>> m = pkpd.load_model("tests/data/models/endpoints_exposure.toml")
    >>> sim = pkpd.simulate(m, None, [0.0, 200.0], params={"h0": np.full(30, 0.01)}, seed=1, outcomes=["event"])
    >>> fig = plot_km_vpc(km_vpc(m, sim.to_dataframe(layout="nonmem"), output="event", n_replicates=20, seed=2))
    >>> fig.axes[0].get_ylabel()
    'P(no event)'
    >>> import matplotlib.pyplot as plt; plt.close(fig)
    """
    import matplotlib
    import matplotlib.pyplot as plt

    with matplotlib.rc_context(HOUSE_STYLE):
        if ax is None:
            fig, ax = plt.subplots(figsize=(_PANEL_SIZE[0] * 1.4, _PANEL_SIZE[1] * 1.3))
        else:
            fig = ax.figure
        ax.fill_between(v.times, v.simulated[0], v.simulated[2], step="post", color=ARM_COLORS[0], alpha=0.25,
                        lw=0, label=f"simulated {100 * v.level:g} % interval")
        ax.step(v.times, v.simulated[1], where="post", color=ARM_COLORS[0], ls="--", lw=1.2, label="simulated median")
        ax.step(v.times, v.observed, where="post", color="black", lw=1.6, label="observed (Kaplan-Meier)")
        if v.censor_times.size:
            k = np.clip(np.searchsorted(v.times, v.censor_times, side="right") - 1, 0, v.times.size - 1)
            ax.plot(v.censor_times, v.observed[k], "|", color="black", ms=6, label="censored")
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel(_axis_label("time", v.time_unit))
        ax.set_ylabel(_axis_label(f"P(no {v.output})", "1"))
        ax.set_title(f"Kaplan-Meier VPC of {v.output} ({v.n_subjects} subjects, {v.n_events} events)")
        ax.legend(loc="best")
        fig.tight_layout()
    return fig


def plot_categorical_vpc(v, *, axes=None):
    """Categorical VPC: per category, the observed proportion per bin (points) over the simulated prediction
    interval (band) and median (dashed), against time or the exposure that binned the records.

    Parameters
    ----------
    v : pkpd.endpoint_vpc.CategoricalVPC
        From :func:`pkpd.endpoint_vpc.categorical_vpc`.
    axes : sequence of matplotlib Axes, optional
        One per category.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np, pkpd
    >>> from pkpd.endpoint_vpc import categorical_vpc
    >>> m = pkpd.load_model("tests/data/models/endpoints_exposure.toml")
    >>> sim = pkpd.simulate(m, None, [0.0, 50.0], params={"b0": np.full(40, 0.0)}, seed=1, outcomes=["resp"],
    ...                     observe={"resp": [10.0, 50.0]})
    >>> v = categorical_vpc(m.with_parameters(b0=0.0), sim.to_dataframe(layout="nonmem"), output="resp",
    ...                     n_bins=2, n_replicates=20, seed=1)
    >>> len(plot_categorical_vpc(v).axes)
    2
    >>> import matplotlib.pyplot as plt; plt.close("all")
    """
    import matplotlib
    import matplotlib.pyplot as plt

    k = len(v.categories)
    with matplotlib.rc_context(HOUSE_STYLE):
        if axes is None:
            fig, axes = plt.subplots(1, k, figsize=(_PANEL_SIZE[0] * min(k, 4) * 0.85, _PANEL_SIZE[1]), sharey=True,
                                     squeeze=False)
            axes = axes[0]
        fig = axes[0].figure
        for j, (ax, c) in enumerate(zip(axes, v.categories)):
            ax.fill_between(v.centres, v.simulated[j, 0], v.simulated[j, 2], color=ARM_COLORS[j % len(ARM_COLORS)],
                            alpha=0.25, lw=0, label=f"simulated {100 * v.level:g} % interval")
            ax.plot(v.centres, v.simulated[j, 1], color=ARM_COLORS[j % len(ARM_COLORS)], ls="--", lw=1.2,
                    label="simulated median")
            ax.plot(v.centres, v.observed[j], "o-", color="black", lw=1.2, ms=4, label="observed")
            ax.set_title(f"{v.output} = {c:g}")
            ax.set_xlabel(_axis_label(v.by, v.unit))
            ax.set_ylim(-0.02, 1.02)
        axes[0].set_ylabel(_axis_label("proportion", "1"))
        axes[0].legend(loc="best")
        fig.tight_layout()
    return fig
