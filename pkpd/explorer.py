"""An interactive explorer for the notebook: sliders for dose, interval, number of doses and key parameters.

:func:`explore` returns an ipywidgets panel (install the optional extra: ``pip install -e ".[widgets]"``) whose
biomarker time courses redraw on every slider move; each redraw is one simulation of one subject (a few
milliseconds once the model is compiled) plus one figure, well within a fraction of a second. Without ipywidgets,
or with ``interactive=False``, it returns the same figure, static, for the values given (the notebook still runs
and shows something useful everywhere, e.g. in CI or a PDF export).

Examples
--------
>>> import pkpd
>>> from pkpd.explorer import explore
>>> fig = explore(pkpd.load_model("msc_salvadori"), outputs=["IL10"], interactive=False)
>>> fig.axes[0].get_ylabel()
'IL10 [pg/mL]'
>>> import matplotlib.pyplot as plt; plt.close(fig)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from .errors import PkpdError, did_you_mean

__all__ = ["explore", "explorer_curves"]


def _check(model, outputs, parameters):
    for o in outputs:
        if o not in model.output_names:
            raise PkpdError(f"explore: model {model.name!r} has no output {o!r}." + did_you_mean(str(o),
                                                                                                model.output_names))
    for p in parameters:
        if p not in model.parameter_names:
            raise PkpdError(f"explore: model {model.name!r} has no parameter {p!r}."
                            + did_you_mean(str(p), model.parameter_names))


def explorer_curves(model, *, dose: float, dose_unit: str, interval: float, count: int, until: float,
                    params: Mapping[str, float] | None = None, covariates: Mapping[str, float] | None = None,
                    outputs: Sequence[str] | None = None, step: float | None = None):
    """The explorer's time courses for one set of slider values (one simulation of one subject).

    Parameters
    ----------
    model : Model or CompiledModel
    dose : float [dose_unit]
        Amount per administration.
    dose_unit : str
    interval : float [model time unit]
    count : int
    until : float [model time unit]
    params, covariates : dict, optional
    outputs : sequence of str, optional
    step : float, optional
        Output spacing [model time unit]; default ``until / 400``.

    Returns
    -------
    (times, dict[str, ndarray])

    Examples
    --------
    >>> import pkpd
    >>> t, y = explorer_curves(pkpd.load_model("pk_1cmt_iv"), dose=100, dose_unit="mg", interval=12, count=2,
    ...                        until=24, outputs=["conc"])
    >>> round(float(y["conc"][0]), 3)
    3.125
    """
    from .dosing import Dose, Regimen
    from .simulation import simulate

    t = np.linspace(0.0, until, 401) if step is None else np.arange(0.0, until + 0.5 * step, step)
    d = Dose(dose, dose_unit)
    reg = Regimen.every(interval, "h", count=int(count), dose=d) if count > 1 else Regimen.single(d)
    sim = simulate(model, reg, t, params=dict(params or {}) or None, covariates=dict(covariates or {}) or None,
                   states=False)
    names = list(outputs) if outputs is not None else list(sim.outputs)
    return sim.times, {o: sim[o][0] for o in names}


def _figure(model, times, curves, title: str):
    import matplotlib
    import matplotlib.pyplot as plt

    from .plots import ARM_COLORS, HOUSE_STYLE, _axis_label, _new_axes, _wants_log

    with matplotlib.rc_context(HOUSE_STYLE):
        axes = _new_axes(plt, len(curves))
        for k, (ax, (name, y)) in enumerate(zip(axes, curves.items())):
            ax.plot(times, y, color=ARM_COLORS[k % len(ARM_COLORS)])
            if _wants_log(y):
                ax.set_yscale("log")
            ax.set_xlabel(_axis_label("Time", model.time_unit))
            ax.set_ylabel(_axis_label(name, model.unit_of(name)))
        axes[0].figure.suptitle(title, fontsize=9)
    return axes[0].figure


def explore(model, *, outputs: Sequence[str] | None = None, parameters: Sequence[str] = (), dose: float = 2e6,
            dose_unit: str = "cell/kg", interval: float = 84.0, count: int = 8, until: float = 1008.0,
            covariates: Mapping[str, float] | None = None, interactive: bool = True):
    """Sliders for dose, interval, number of doses and key parameters, redrawing the biomarker time courses.

    Parameters
    ----------
    model : Model
        E.g. ``pkpd.load_model("msc_salvadori")``.
    outputs : sequence of str, optional
        Outputs drawn (default: every output).
    parameters : sequence of str
        Model parameters with a slider each (log-scaled over the model file's bounds when they are positive).
    dose : float [dose_unit]
        Starting dose per administration; its slider spans 1/30 to 30 times it (log scale).
    dose_unit : str
        E.g. ``"cell/kg"`` (then ``covariates`` gives WT, default 70 kg) or ``"cell"``.
    interval : float [h]
        Starting interval between doses (slider 6 h to 4 weeks).
    count : int
        Starting number of doses (slider 1 to 16).
    until : float [h]
        Simulated time.
    covariates : dict, optional
        Default ``{"WT": 70}`` for a per-kg dose.
    interactive : bool
        ``False`` returns the static figure even where ipywidgets is installed.

    Returns
    -------
    ipywidgets.VBox or matplotlib.figure.Figure
        The panel (display it as the last expression of a cell), or, without ipywidgets, the static figure at the
        starting values, titled so that the reader knows how to get the sliders.

    Raises
    ------
    PkpdError
        An unknown output or parameter (close matches suggested).

    Examples
    --------
    See the module docstring; ``notebooks/04_dose_selection.ipynb`` uses it on ``msc_salvadori``.
    """
    from .compile import compile_model

    outs = list(outputs) if outputs is not None else list(model.output_names)
    params = list(parameters)
    _check(model, outs, params)
    covs = dict(covariates) if covariates is not None else ({"WT": 70.0} if dose_unit.endswith("/kg") else {})
    cm = compile_model(model)
    start = {p: model.parameter(p).value for p in params}
    try:
        if not interactive:
            raise ImportError
        import ipywidgets as widgets
    except ImportError:
        t, y = explorer_curves(cm, dose=dose, dose_unit=dose_unit, interval=interval, count=count, until=until,
                               params=start, covariates=covs, outputs=outs)
        note = "" if not interactive else " - static view: pip install -e '.[widgets]' for sliders"
        return _figure(model, t, y, f"{count} x {dose:g} {dose_unit} every {interval:g} h{note}")

    style = {"description_width": "120px"}
    layout = widgets.Layout(width="460px")
    controls = {
        "dose": widgets.FloatLogSlider(value=dose, base=10, min=math.log10(dose / 30), max=math.log10(dose * 30),
                                       step=0.05, description=f"dose [{dose_unit}]", readout_format=".2e",
                                       style=style, layout=layout, continuous_update=False),
        "interval": widgets.FloatSlider(value=interval, min=6, max=672, step=6, description="interval [h]",
                                        style=style, layout=layout, continuous_update=False),
        "count": widgets.IntSlider(value=count, min=1, max=16, description="number of doses", style=style,
                                   layout=layout, continuous_update=False),
    }
    for p in params:
        par = model.parameter(p)
        lo, hi = par.bounds
        label = f"{p} [{par.unit}]"
        if lo > 0 and math.isfinite(hi):
            controls[p] = widgets.FloatLogSlider(value=par.value, base=10, min=math.log10(lo), max=math.log10(hi),
                                                 step=0.02, description=label, readout_format=".3g", style=style,
                                                 layout=layout, continuous_update=False)
        else:
            lo = lo if math.isfinite(lo) else par.value - 10 * abs(par.value or 1)
            hi = hi if math.isfinite(hi) else par.value + 10 * abs(par.value or 1)
            controls[p] = widgets.FloatSlider(value=par.value, min=lo, max=hi, step=(hi - lo) / 200,
                                              description=label, style=style, layout=layout,
                                              continuous_update=False)

    def redraw(**values):
        import matplotlib.pyplot as plt
        from IPython.display import display

        t, y = explorer_curves(cm, dose=values["dose"], dose_unit=dose_unit, interval=values["interval"],
                               count=values["count"], until=until, params={p: values[p] for p in params},
                               covariates=covs, outputs=outs)
        fig = _figure(model, t, y, f"{values['count']} x {values['dose']:.3g} {dose_unit} every "
                                   f"{values['interval']:g} h")
        display(fig)  # into the Output widget; closing it keeps pyplot from drawing it a second time
        plt.close(fig)

    out = widgets.interactive_output(redraw, controls)
    return widgets.VBox([widgets.VBox(list(controls.values())), out])
