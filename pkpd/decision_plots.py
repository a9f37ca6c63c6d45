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

__all__ = ["SHRINKAGE_FLAG", "plot_design", "plot_eta_covariates", "plot_lambda_z", "plot_trial_attainment"]

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


# ------------------------------------------------------------------------------------------------ designs
def plot_design(result, *, log: bool = False, n_points: int = 300):
    """Predicted typical profile of every group and sampled output, with the sampling times marked: for an
    optimised design the initial times (open) and the optimised ones (filled) with their windows shaded.

    Parameters
    ----------
    result : DesignEvaluation or OptimizedDesign
        From :func:`pkpd.design.evaluate_design` or :func:`pkpd.design.optimize_design`.
    log : bool
        Logarithmic concentration axis.
    n_points : int
        Points of the predicted curves.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import pkpd
    >>> from pkpd.design import Design, Group, evaluate_design
    >>> g = Group(pkpd.Regimen.single(pkpd.Dose(100, "mg")), [0.5, 2, 8, 24], size=24)
    >>> ev = evaluate_design("pk_1cmt_iv", Design([g]), iiv={"CL": 0.09}, estimate=["CL", "V"],
    ...                      error=pkpd.Proportional(cv=0.1))
    >>> len(plot_design(ev).axes)
    1
    """
    import matplotlib.pyplot as plt

    from .simulation import simulate

    optimised = hasattr(result, "optimal")
    evaluation = result.optimal if optimised else result
    model = evaluation.model
    if model is None:
        raise PkpdError("plot_design: the result holds no model; evaluate the design with pkpd.design")
    outputs = list(evaluation.outputs)
    final = result.design if optimised else evaluation.design
    start = result.initial.design if optimised else None
    n_rows, n_cols = len(final.groups), len(outputs)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(4.2 * n_cols, 3.0 * n_rows), squeeze=False)
    for r, group in enumerate(final.groups):
        windows = result.space.windows_of(start.groups[r]) if optimised else None
        times_all = [t for _, t in group.samples] + ([t for _, t in start.groups[r].samples] if optimised else [])
        t_end = max(times_all + ([hi for _, hi in windows] if windows else []))
        grid = np.linspace(0.0, t_end * 1.02, n_points)
        sim = simulate(model, group.regimen, grid, covariates=group.covariates or None, states=False)
        start_sim = (simulate(model, start.groups[r].regimen, grid, covariates=start.groups[r].covariates or None,
                              states=False) if optimised else None)
        for c, out in enumerate(outputs):
            ax = axes[r][c]
            unit = model.unit_of(out)
            y = np.asarray(sim[out])[0]
            ax.plot(grid, y, color="tab:blue", lw=1.3, label="typical profile")
            if optimised and start.groups[r].regimen != group.regimen:
                ax.plot(grid, np.asarray(start_sim[out])[0], color="grey", lw=1, ls="--",
                        label="typical profile, initial dose")
            samples = [(o, t) for o, t in group.samples if o in (out, "*")]
            if optimised:
                for (o, _), (lo, hi) in zip(start.groups[r].samples, windows):
                    if o in (out, "*"):
                        ax.axvspan(lo, hi, color="tab:orange", alpha=0.06, lw=0)
                init = [t for o, t in start.groups[r].samples if o in (out, "*")]
                y0 = np.interp(init, grid, np.asarray(start_sim[out])[0])
                ax.plot(init, y0, "o", mfc="white", color="grey", label="initial times")
            ts = [t for _, t in samples]
            ax.plot(ts, np.interp(ts, grid, y), "o", color="tab:red",
                    label="optimised times" if optimised else "sampling times")
            if log:
                ax.set_yscale("log")
            ax.set_xlabel(_label("time", model.time_unit))
            ax.set_ylabel(_label(out, unit))
            dose = group.regimen.administrations[0].dose if group.regimen.administrations else None
            what = f"{group.name}: {group.size} subjects" + (f", {dose.amount:.4g} {dose.unit}" if dose else "")
            ax.set_title(what, fontsize=9)
            if r == 0 and c == 0:
                ax.legend(fontsize=7)
    head = (f"{result.criterion}-optimal design (efficiency {result.efficiency:.2f})" if optimised else
            "sampling design")
    fig.suptitle(head, fontsize=10)
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------------------------------------ trials
def plot_trial_attainment(trials, *, log_dose: bool = True):
    """Probability of target attainment against dose under parameter uncertainty: per schedule group and target,
    the median PTA over replicate trials with its between-trial interval (band), and the probability of trial
    success (PTA >= the success threshold) with its Monte-Carlo interval.

    Parameters
    ----------
    trials : TrialSummary
        ``ScenarioResult.trials`` of :func:`pkpd.run_scenario` with ``uncertainty=``.
    log_dose : bool
        Logarithmic dose axis.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np, pkpd
    >>> from pkpd.metrics import Endpoint
    >>> from pkpd.uncertainty import ParameterUncertainty
    >>> sc = pkpd.Scenario(pkpd.load_model("pk_1cmt_iv"), arms=pkpd.dose_ranging_arms("d", [50, 100, 200], "mg"),
    ...                    endpoints=[Endpoint("conc", "cmax", end=24)],
    ...                    targets=[pkpd.Target("conc_Cmax_to_24", ">=", 3.0)],
    ...                    population=pkpd.LogNormalPopulation(20, omega={"V": 0.3}), times=[0, 24], seed=5)
    >>> res = pkpd.run_scenario(sc, uncertainty=ParameterUncertainty.from_covariance({"V": 32.0}, [[0.04]]),
    ...                         n_trials=5)
    >>> len(plot_trial_attainment(res.trials).axes)
    2
    """
    import matplotlib.pyplot as plt

    table = trials.pta
    table = table[table["group"] != "untreated"]
    keys = list(dict.fromkeys(zip(table["group"], table["target"])))
    if not keys:
        raise PkpdError("plot_trial_attainment: no treated arm with a target to plot")
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    low = 100 * (1 - trials.level) / 2
    for k, (group, target) in enumerate(keys):
        part = table[(table["group"] == group) & (table["target"] == target)].sort_values("dose")
        colour = f"C{k % 10}"
        label = f"{target} ({group})" if len(keys) > 1 else target
        d = part["dose"].to_numpy(dtype=float)
        axes[0].fill_between(d, part["pta_low"], part["pta_high"], color=colour, alpha=0.2,
                             label=f"{trials.level:.0%} between-trial interval")
        axes[0].plot(d, part["pta_median"], "o-", color=colour, label=f"median PTA: {label}")
        err = np.vstack([part["p_success"] - part["p_success_low"], part["p_success_high"] - part["p_success"]])
        axes[1].errorbar(d, part["p_success"], yerr=err, fmt="o-", color=colour, capsize=3, label=label)
    unit = table["dose_unit"].iloc[0]
    for ax in axes:
        if log_dose:
            ax.set_xscale("log")
        ax.set_xlabel(_label("dose", unit))
        ax.set_ylim(-0.02, 1.02)
    axes[0].axhline(trials.trial_success, color="grey", ls=":", lw=1)
    axes[0].set_ylabel("probability of target attainment [1]")
    axes[0].set_title(f"PTA over {trials.n_trials} trials (band: {low:g}th-{100 - low:g}th percentile)", fontsize=9)
    axes[1].set_ylabel("probability of trial success [1]")
    axes[1].set_title(f"P(trial PTA >= {trials.trial_success:g}), Wilson 95 % interval", fontsize=9)
    axes[0].legend(fontsize=7)
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------------------------------------ covariates
def plot_eta_covariates(fit, data, covariates=None, *, categorical=None):
    """Empirical Bayes estimates against covariates: one panel per random effect and covariate (a scatter with a
    least-squares line, or a box per category), the η shrinkage of each random effect in its panels' titles, and
    shrinkage above :data:`SHRINKAGE_FLAG` flagged in red (the EBEs then shrink towards 0 and hide or distort
    relations; Savic & Karlsson 2009).

    Parameters
    ----------
    fit : PopulationFit
    data : DataFrame, path or NonmemDataset
        The data the fit used.
    covariates : sequence of str, optional
        Default: every non-NONMEM column of the data.
    categorical : sequence of str, optional
        Covariates to draw as categories (default: those with at most 5 distinct values).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import pkpd
    >>> theoph = pkpd.nonmem.read_nonmem("tests/data/theoph.csv", dose_unit="mg")
    >>> f = pkpd.fit_population("pk_1cmt_oral", theoph, iiv={"CL": 0.1, "ka": 0.3},
    ...                         estimate=["ka", "CL", "V"], error=pkpd.Additive(sd=0.7), maxeval=0)
    >>> len(plot_eta_covariates(f, theoph, ["WT"]).axes)
    2
    """
    import matplotlib.pyplot as plt

    from .model_selection import eta_covariate_table

    table = eta_covariate_table(fit, data, covariates)
    etas = [c for c in table.columns if c.startswith("ETA_")]
    covs = [c for c in table.columns if c != "ID" and not c.startswith("ETA_")]
    if not covs:
        raise PkpdError("plot_eta_covariates: no covariate columns to plot")
    fo = fit.method == "fo"
    fig, axes = plt.subplots(len(etas), len(covs), figsize=(3.2 * len(covs), 2.8 * len(etas)), squeeze=False)
    for r, eta in enumerate(etas):
        name = eta[len("ETA_"):]
        shrink = fit.shrinkage.get(name, math.nan)
        flagged = fo or not (shrink <= SHRINKAGE_FLAG)
        for c, cov in enumerate(covs):
            ax = axes[r][c]
            x = table[cov].to_numpy(dtype=float)
            y = table[eta].to_numpy(dtype=float)
            is_cat = (cov in (categorical or ())) or (categorical is None and np.unique(x[np.isfinite(x)]).size <= 5)
            if is_cat:
                levels = np.unique(x[np.isfinite(x)])
                ax.boxplot([y[x == v] for v in levels], positions=np.arange(levels.size))
                ax.set_xticks(np.arange(levels.size), [f"{v:g}" for v in levels])
            else:
                ax.plot(x, y, "o", ms=3.5, alpha=0.7, color="tab:blue")
                ok = np.isfinite(x) & np.isfinite(y)
                if ok.sum() > 2 and np.ptp(x[ok]) > 0:
                    slope, icept = np.polyfit(x[ok], y[ok], 1)
                    xs = np.linspace(x[ok].min(), x[ok].max(), 20)
                    ax.plot(xs, icept + slope * xs, color="tab:red", lw=1)
            ax.axhline(0, color="grey", lw=0.8, ls=":")
            ax.set_xlabel(cov)
            ax.set_ylabel(f"η {name}")
            if fo:
                note = "FO: no EBEs (η = 0)"
            else:
                note = f"shrinkage {100 * shrink:.0f} %" + (" > 30 %: unreliable" if flagged else "")
            ax.set_title(note, fontsize=8, color="#b00" if flagged else "black")
    fig.tight_layout()
    return fig
