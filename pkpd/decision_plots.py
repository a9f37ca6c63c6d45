"""Figures of the decision tools: NCA terminal phases, trial-level uncertainty, sampling designs, covariate search.

Like :mod:`pkpd.plots` (whose house style they share), matplotlib is imported inside each function only, and no
library code calls them: results offer ``.plot()`` through a lazy import.

* :func:`plot_lambda_z` -- the terminal phase of one or several NCA profiles (log scale, the points used, the line);
* :func:`plot_trial_attainment` -- probability of target attainment against dose: median and between-trial interval
  over replicate trials, and the probability of trial success;
* :func:`plot_design` -- a sampling design: predicted profiles with the sampling times marked, per group;
* :func:`plot_eta_covariates` -- empirical Bayes estimates against covariates, with shrinkage flags.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from .errors import PkpdError

__all__ = ["plot_lambda_z"]

#: η shrinkage above this makes EBE-based plots unreliable (Savic & Karlsson 2009 use 20-30 %).
SHRINKAGE_FLAG = 0.3


def _label(name: str, unit: str | None) -> str:
    return f"{name} [{unit}]" if unit else name


def _grid(plt, n: int, width: float = 3.2, height: float = 2.8):
    cols = min(n, 4)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
    flat = list(axes.ravel())
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


# ------------------------------------------------------------------------------------------------ NCA
def plot_lambda_z(results, *, ax=None, time_unit: str = "h", conc_unit: str | None = None, titles=None):
    """Terminal phase of NCA profiles: concentrations on a log scale, the points used for λz filled, the regression
    line over its span, and λz, t½ and adjusted R² in the title.

    Parameters
    ----------
    results : NCAResult or dict[key, NCAResult]
        One profile, or the dict of :func:`pkpd.noncompartmental.nca_profiles` (one panel per subject and output).
    ax : matplotlib Axes, optional
        For one profile only.
    time_unit, conc_unit : str
        Axis units.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np
    >>> from pkpd.noncompartmental import nca_profile
    >>> t = np.array([0.5, 1, 2, 4, 8, 12, 24])
    >>> res = nca_profile(t, 10 * (np.exp(-0.1 * t) - np.exp(-2 * t)), 100)
    >>> fig = plot_lambda_z(res, conc_unit="mg/L")
    >>> len(fig.axes)
    1
    """
    import matplotlib.pyplot as plt

    from .noncompartmental import NCAResult

    if isinstance(results, NCAResult):
        items = [("", results)]
    elif isinstance(results, Mapping) and results and all(isinstance(v, NCAResult) for v in results.values()):
        items = list(results.items())
    else:
        raise PkpdError("plot_lambda_z: give an NCAResult or the dict of nca_profiles(...)")
    if ax is not None:
        if len(items) != 1:
            raise PkpdError("plot_lambda_z: ax= takes one profile; give a single NCAResult")
        fig, axes = ax.figure, [ax]
    else:
        fig, axes = _grid(plt, len(items))
    for k, ((key, res), a) in enumerate(zip(items, axes)):
        t = np.asarray(res.times)
        c = np.asarray(res.conc)
        pos = c > 0
        used = np.isin(np.round(t, 12), np.round(np.asarray(res.lambda_z_times), 12))
        a.semilogy(t[pos & ~used], c[pos & ~used], "o", mfc="white", color="tab:blue", label="not used")
        a.semilogy(t[pos & used], c[pos & used], "o", color="tab:blue", label="used for λz")
        if math.isfinite(res.lambda_z):
            x = np.linspace(res.lambda_z_start, res.tlast, 50)
            a.semilogy(x, np.exp(res.lambda_z_intercept - res.lambda_z * x), "-", color="tab:red", lw=1.2,
                       label="regression")
            info = (f"λz {res.lambda_z:.3g}/{time_unit}, t½ {res.half_life:.3g} {time_unit}, "
                    f"adj R² {res.adj_r_squared:.4f} ({res.lambda_z_n} pts)")
        else:
            info = "no terminal phase (λz not estimable)"
        head = titles[k] if titles is not None else (_key_text(key) if key != "" else "")
        a.set_title((f"{head}\n" if head else "") + info, fontsize=8)
        a.set_xlabel(_label("time after dose", time_unit))
        a.set_ylabel(_label("concentration", conc_unit))
        if k == 0:
            a.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    return fig


def _key_text(key) -> str:
    if isinstance(key, tuple) and len(key) == 2:
        return f"ID {key[0]}" + (f", {key[1]}" if key[1] != "DV" else "")
    return str(key)
