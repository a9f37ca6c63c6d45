r"""Convergence diagnostics of Markov chains: rank-normalised split-:math:`\hat R`, bulk and tail effective sample
sizes (Vehtari, Gelman, Simpson, Carpenter & Bürkner 2021), as Stan, ArviZ and posterior report them.

All functions take draws of one quantity as an array (n_chains, n_draws). Each chain is split in two halves (so a
trend within a chain shows as disagreement between halves); the draws are replaced by the normal scores of their
ranks over all chains (so heavy tails do not hide problems);

* :func:`rhat`: the larger of the split-:math:`\hat R` of the rank-normalised draws and of their folded
  (:math:`|x - \mathrm{median}|`) version; below 1.01 is the usual criterion;
* :func:`ess_bulk`: the effective sample size of the rank-normalised draws (the precision of means and
  medians);
* :func:`ess_tail`: the smaller of the effective sample sizes of the indicators :math:`x \le q_{5\%}` and
  :math:`x \ge q_{95\%}` (the precision of the 5 % and 95 % quantiles).

Effective sample sizes use the autocorrelations over all chains (Geyer's initial monotone sequence, as Stan).

References
----------
Vehtari A, Gelman A, Simpson D, Carpenter B, Bürkner PC (2021) Rank-normalization, folding, and localization: an
improved R-hat for assessing convergence of MCMC. Bayesian Anal 16:667-718.
Geyer CJ (1992) Practical Markov chain Monte Carlo. Stat Sci 7:473-483.

Examples
--------
>>> import numpy as np
>>> x = np.random.default_rng(0).standard_normal((4, 1000))
>>> bool(rhat(x) < 1.01), bool(3000 < ess_bulk(x) < 5000)
(True, True)
"""

from __future__ import annotations

import numpy as np

__all__ = ["ess_bulk", "ess_tail", "rhat"]


def _draws(x) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    if x.ndim != 2 or x.shape[1] < 4:
        raise ValueError(f"draws must be an array (n_chains, n_draws) with at least 4 draws; got shape {x.shape}")
    return x


def _split(x: np.ndarray) -> np.ndarray:
    half = x.shape[1] // 2
    return np.concatenate([x[:, :half], x[:, x.shape[1] - half:]], axis=0)


def _rank_normalise(x: np.ndarray) -> np.ndarray:
    from scipy.special import ndtri
    from scipy.stats import rankdata

    r = rankdata(x, method="average").reshape(x.shape)
    return ndtri((r - 0.375) / (x.size + 0.25))     # Blom's offsets, as in the paper


def rhat(x) -> float:
    """Rank-normalised split-:math:`\\hat R` (the larger of the bulk and the folded value)."""
    x = _draws(x)
    if np.all(x == x.flat[0]):
        return float("nan")
    bulk = _split_rhat_ranked(x)
    folded = _split_rhat_ranked(np.abs(x - np.median(x)))
    return float(max(bulk, folded))


def _split_rhat_ranked(x: np.ndarray) -> float:
    s = _split(x)
    return _rhat_of_split(_rank_normalise(s))


def _rhat_of_split(s: np.ndarray) -> float:
    m, n = s.shape
    means = s.mean(axis=1)
    w = s.var(axis=1, ddof=1).mean()
    b = n * means.var(ddof=1)
    if not w > 0:
        return float("nan")
    return float(np.sqrt(((n - 1) / n * w + b / n) / w))


def _ess_of_split(s: np.ndarray) -> float:
    """Effective sample size of split chains s (m, n): Geyer's initial monotone sequence over all chains."""
    m, n = s.shape
    if np.all(s == s.flat[0]):
        return float("nan")
    centred = s - s.mean(axis=1, keepdims=True)
    size = 1 << int(np.ceil(np.log2(2 * n)))
    f = np.fft.rfft(centred, n=size, axis=1)
    acov = np.fft.irfft(f * np.conj(f), n=size, axis=1)[:, :n] / n          # biased autocovariance per chain
    mean_var = acov[:, 0].mean() * n / (n - 1)
    var_plus = mean_var * (n - 1) / n
    if m > 1:
        var_plus += s.mean(axis=1).var(ddof=1)
    rho = 1.0 - (mean_var - acov.mean(axis=0)) / var_plus
    # Geyer's initial positive sequence (pairs of autocorrelations while their sum is positive), then made
    # monotone; the last even term is kept (Stan's estimator)
    out = np.zeros(n)
    out[0], out[1] = 1.0, rho[1]
    even, odd = 1.0, rho[1]
    t = 1
    while t < n - 3 and even + odd > 0.0:
        even, odd = rho[t + 1], rho[t + 2]
        if even + odd >= 0:
            out[t + 1], out[t + 2] = even, odd
        t += 2
    max_t = t - 2
    if even > 0:
        out[max_t + 1] = even
    t = 1
    while t <= max_t - 2:
        if out[t + 1] + out[t + 2] > out[t - 1] + out[t]:
            out[t + 1] = out[t + 2] = (out[t - 1] + out[t]) / 2.0
        t += 2
    tau = -1.0 + 2.0 * out[:max_t + 1].sum() + out[max_t + 1:max_t + 2].sum()
    tau = max(tau, 1.0 / np.log10(m * n))
    return float(m * n / tau)


def ess_bulk(x) -> float:
    """Bulk effective sample size: of the rank-normalised split chains."""
    x = _draws(x)
    return _ess_of_split(_rank_normalise(_split(x)))


def ess_tail(x) -> float:
    """Tail effective sample size: the smaller of those of the 5 % and 95 % quantile indicators."""
    x = _draws(x)
    q05, q95 = np.quantile(x, [0.05, 0.95])
    lo = _ess_of_split(_split((x <= q05).astype(float)))
    hi = _ess_of_split(_split((x >= q95).astype(float)))
    return float(min(lo, hi))
