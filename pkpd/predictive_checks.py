r"""Summaries of visual predictive checks: binning, prediction correction and stratification.

:func:`pkpd.nlme.vpc` simulates replicates of a study with a fitted model; this module turns observed and
simulated values into the VPC's percentiles:

* **Bins** of observation time: ``bins="quantile"`` -- ``n_bins`` bins holding about equal numbers of observations
  (quantiles of the observation times, the default) -- or explicit edges ``bins=[0, 2, 6, 12, 24, 48]``
  (observations outside them are left out, and counted).
* **Prediction correction** (pcVPC; Bergstrand et al. 2011): each observed and simulated value is scaled by the
  ratio of the median population prediction of its bin to its own population prediction,
  :math:`pcY_{ij} = Y_{ij}\,\widetilde{PRED}_{bin} / PRED_{ij}`, which removes the variability that the design
  (doses, covariates, times within a bin) puts in a bin, so a correct model's percentiles line up even when dose
  groups or covariate-dependent predictions are pooled.
* **Stratification** by a data column (a covariate, a dose group): one VPC per value, every stratum binned on its
  own.

For a correct model, each observed percentile falls inside the simulated 90 % interval of that percentile in 90 % of
the bins on average (the nominal rate); ``tests/unit/test_vpc.py`` checks it for a linear model with a covariate on
clearance.

References
----------
Bergstrand M, Hooker AC, Wallin JE, Karlsson MO (2011) Prediction-corrected visual predictive checks for diagnosing
nonlinear mixed-effects models. AAPS J 13:143-151.
Holford N (2005) The visual predictive check: superiority to standard diagnostic (Rorschach) plots. PAGE 14, abstr
738.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from .errors import PkpdError

__all__ = ["MAX_STRATA", "StratifiedVPC", "bin_edges", "prediction_correct", "vpc_summary"]

#: Most strata a VPC may be split into.
MAX_STRATA = 12


def bin_edges(times: np.ndarray, bins="quantile", n_bins: int = 8) -> np.ndarray:
    """Edges of the time bins: quantiles of ``times`` (``bins="quantile"``) or the given edges.

    Examples
    --------
    >>> bin_edges(np.array([1.0, 2, 3, 4, 5, 6]), n_bins=2).tolist()
    [1.0, 3.5, 6.0]
    >>> bin_edges(np.array([1.0, 2]), bins=[0, 1.5, 3]).tolist()
    [0.0, 1.5, 3.0]
    """
    if isinstance(bins, str):
        if bins != "quantile":
            raise PkpdError(f"vpc: bins must be 'quantile' or a list of bin edges; got {bins!r}")
        if isinstance(n_bins, bool) or not isinstance(n_bins, numbers.Integral) or n_bins < 1:
            raise PkpdError(f"vpc: n_bins must be a positive integer; got {n_bins!r}")
        return np.unique(np.quantile(times, np.linspace(0, 1, n_bins + 1)))
    try:
        edges = np.asarray(bins, dtype=float).reshape(-1)
    except (TypeError, ValueError):
        raise PkpdError(f"vpc: bins must be 'quantile' or a list of increasing edges; got {bins!r}") from None
    if edges.size < 2 or not np.all(np.isfinite(edges)) or np.any(np.diff(edges) <= 0):
        raise PkpdError(f"vpc: bin edges must be at least 2 finite, increasing times; got {list(bins)!r}")
    return edges


def _assign(times: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bin index of every time (the last bin includes its right edge); -1 outside the edges."""
    which = np.searchsorted(edges, times, side="right") - 1
    which = np.where(times == edges[-1], edges.size - 2, which)
    return np.where((times < edges[0]) | (times > edges[-1]), -1, which)


def prediction_correct(values: np.ndarray, pred: np.ndarray, which: np.ndarray, n_bins: int) -> np.ndarray:
    """Bergstrand's correction: ``values * median(pred in bin) / pred`` (values (..., n_obs), pred (n_obs,)).

    Examples
    --------
    >>> prediction_correct(np.array([2.0, 6.0]), np.array([1.0, 3.0]), np.array([0, 0]), 1).tolist()
    [4.0, 4.0]
    """
    if np.any(~(pred > 0)):
        raise PkpdError("vpc: a prediction-corrected VPC needs positive population predictions at every "
                        "observation (an observation where PRED is 0, such as a pre-dose sample, cannot be "
                        "corrected); drop those records or use prediction_corrected=False")
    ratio = np.ones_like(pred)
    for b in range(n_bins):
        k = which == b
        if k.any():
            ratio[k] = np.median(pred[k]) / pred[k]
    return values * ratio


def vpc_summary(t_obs, y_obs, y_sim, lloq, censored, *, percentiles=(5, 50, 95), bins="quantile", n_bins: int = 8,
                pred=None):
    """Observed and simulated percentiles per bin (private helper of :func:`pkpd.nlme.vpc`).

    Returns a dict of the :class:`pkpd.nlme.VPC` fields: bins, centres, observed, simulated, blq_observed,
    blq_simulated, n_outside.
    """
    edges = bin_edges(t_obs, bins, n_bins)
    which = _assign(t_obs, edges)
    inside = which >= 0
    nb = edges.size - 1
    has_limit = np.isfinite(lloq)
    # observed: censored values count as the LLOQ; simulated values below the LLOQ are BLQ and count as it too
    y_o = np.where(censored, lloq, y_obs)
    sim_blq = has_limit[None, :] & (y_sim < np.nan_to_num(lloq, nan=-np.inf)[None, :])
    y_s = np.where(sim_blq, lloq[None, :], y_sim)
    if pred is not None:
        y_o = prediction_correct(y_o, pred, which, nb)
        y_s = prediction_correct(y_s, pred, which, nb)
    obs_p = np.full((len(percentiles), nb), np.nan)
    sim_p = np.full((len(percentiles), 3, nb), np.nan)
    blq_o = np.full(nb, np.nan)
    blq_s = np.full((3, nb), np.nan)
    centres = np.full(nb, np.nan)
    for b in range(nb):
        k = which == b
        if not k.any():
            continue
        centres[b] = np.median(t_obs[k])
        obs_p[:, b] = np.percentile(y_o[k], percentiles)
        rep = np.percentile(y_s[:, k], percentiles, axis=1)            # (n_pct, R)
        # (3, n_pct) -> (n_pct, 3): each percentile's own interval (before issue 18 this was transposed, so every
        # percentile but the middle one got another's interval; the coverage test caught it)
        sim_p[:, :, b] = np.percentile(rep, (5, 50, 95), axis=1).T
        blq_o[b] = np.mean(censored[k])
        blq_s[:, b] = np.percentile(sim_blq[:, k].mean(axis=1), (5, 50, 95))
    return {"bins": edges, "centres": centres, "observed": obs_p, "simulated": sim_p, "blq_observed": blq_o,
            "blq_simulated": blq_s, "n_outside": int(np.count_nonzero(~inside))}


@dataclass(frozen=True, eq=False)
class StratifiedVPC:
    """One :class:`pkpd.nlme.VPC` per stratum (result of :func:`pkpd.nlme.vpc` with ``stratify=``).

    Attributes
    ----------
    by : str
        The data column that defines the strata.
    strata : dict[value, VPC]
        In increasing order of the value; last, under the key ``None`` (shown "missing"), the observations whose
        value is missing (an empty cell), if any.

    Examples
    --------
    See :func:`pkpd.nlme.vpc`.
    """

    by: str
    strata: Mapping

    def __getitem__(self, value):
        return self.strata[value]

    def __len__(self) -> int:
        return len(self.strata)

    def plot(self, **kwargs):
        """One VPC panel per stratum; see :func:`pkpd.plots.plot_vpc`."""
        import matplotlib.pyplot as plt

        from .plots import plot_vpc

        figs = []
        for value, v in self.strata.items():
            fig = plot_vpc(v, **kwargs)
            fig.axes[0].set_title(f"{fig.axes[0].get_title()} ({self.by} = {_show(value)})")
            figs.append(fig)
        if len(figs) == 1:
            return figs[0]
        # one figure: the strata side by side (each VPC drawn on its own figure first, then moved)
        n = len(figs)
        out, axes = plt.subplots(2, n, figsize=(5 * n, 6), sharex="col", gridspec_kw={"height_ratios": [3, 1]},
                                 squeeze=False)
        for c, (value, v) in enumerate(self.strata.items()):
            _draw_vpc(axes[0][c], axes[1][c], v, title=f"{self.by} = {_show(value)}", **kwargs)
        for f in figs:
            plt.close(f)
        out.tight_layout()
        return out

    def __repr__(self) -> str:
        return f"StratifiedVPC(by {self.by!r}: {', '.join(_show(v) for v in self.strata)})"


def _show(value) -> str:
    if value is None:
        return "missing"
    return f"{value:g}" if isinstance(value, float | np.floating) else str(value)


def _draw_vpc(ax, ax_blq, v, *, title: str = "", log: bool = False):
    colours = ("tab:blue", "tab:red", "tab:blue")
    for k, p in enumerate(v.percentiles):
        ax.fill_between(v.centres, v.simulated[k, 0], v.simulated[k, 2], color=colours[k % 3], alpha=0.2)
        ax.plot(v.centres, v.simulated[k, 1], color=colours[k % 3], ls="--", lw=1)
        ax.plot(v.centres, v.observed[k], color=colours[k % 3], marker="o", lw=1.5, label=f"observed {p:g}th")
    if log:
        ax.set_yscale("log")
    what = "prediction-corrected " if getattr(v, "prediction_corrected", False) else ""
    ax.set_ylabel(f"{what}{v.output} [{v.unit}]")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    ax_blq.fill_between(v.centres, v.blq_simulated[0], v.blq_simulated[2], color="grey", alpha=0.3)
    ax_blq.plot(v.centres, v.blq_observed, "ko-")
    ax_blq.set_ylabel("fraction BLQ [1]")
    ax_blq.set_xlabel(f"time [{v.time_unit}]")
    ax_blq.set_ylim(-0.02, 1.02)


def _missing(value) -> bool:
    # a numeric column's empty cell reads as NaN, a text column's as ''
    return (value is None or (isinstance(value, str) and not value.strip())
            or (isinstance(value, float | np.floating) and math.isnan(value)))


def strata_of(values: np.ndarray, by: str) -> list:
    """The strata of a stratification column: its distinct values (at most :data:`MAX_STRATA`) in increasing order,
    then ``None`` if some observations have no value (NaN, None or blank text), so that none is left out."""
    ok = [v for v in values if not _missing(v)]
    levels = sorted(set(ok), key=lambda v: (isinstance(v, str), v))
    if len(levels) > MAX_STRATA:
        raise PkpdError(f"vpc: stratify={by!r} has {len(levels)} distinct values, more than {MAX_STRATA}; stratify "
                        "by a grouped column (e.g. a dose group or a binned covariate)")
    return levels + [None] * (len(ok) < len(values))


def in_stratum(values: np.ndarray, level) -> np.ndarray:
    """Which of ``values`` belong to the stratum ``level`` of :func:`strata_of` (``None``: those with no value)."""
    if level is None:
        return np.array([_missing(v) for v in values], dtype=bool)
    return np.array([not _missing(v) and v == level for v in values], dtype=bool)
