r"""Full Bayesian posteriors: :func:`sample` draws parameters of an individual (pooled) or a population model by
the No-U-Turn sampler, with convergence diagnostics and posterior predictive simulation.

Samplers:

* ``sampler="pkpd"`` (default): :func:`pkpd.hmc.nuts`, Stan's NUTS (Hoffman & Gelman 2014; multinomial sampling,
  the generalised no-U-turn criterion with the checks across merged subtrees) and Stan's windowed warm-up (dual
  averaging of the step size, a diagonal mass matrix from doubling windows), written in numpy (no optional extra
  needed). Each chain is a generator that asks for one gradient at a time; the driver evaluates the pending
  positions of all chains in one batch solve, and a chain never waits for the others at the end of an iteration.
  ``workers=2`` runs two groups of chains in two forked processes (the cores then share the Python work as well as
  the solves); ``threads=2`` drives two groups from two threads of this process (only the compiled solve runs
  outside the GIL). The draws depend on the seed only, not on either.
* ``sampler="numpyro"`` (the optional extra ``pip install -e ".[bayes]"``: jax and numpyro): numpyro's NUTS (the
  same algorithm and warm-up), its chains vectorised in lock-step (``chain_method="vectorized"``), the likelihood
  reached through one ``jax.pure_callback`` per gradient.

The prior part of the log posterior (priors, transforms, :math:`\Omega`, random effects) is numpy with its gradient
written out for pkpd's sampler (:mod:`pkpd._prior_part`; a compiled loop for a pooled model) and JAX for numpyro's
(:mod:`pkpd._nuts`, differentiated by JAX; a unit test holds the two equal to 1e-10). The log-likelihood of the
data and its gradient come from the host for every chain and subject at once:

* the predictions and their **exact derivatives** by the individual parameters from the model's forward sensitivity
  equations, solved by the compiled estimation library in one batch call (first order only): exact to the solver's
  tolerance, so the leapfrog energy error comes from the step size alone. Where that library cannot serve the
  problem (no C compiler, doses that depend on a sampled parameter, steady-state records, inter-occasion
  variability) central differences of batch solves stand in (``Posterior.derivatives`` says which and why);
* the residual-error likelihood (every error model, M3 for censored values) and its derivatives by the predictions
  and the error parameters, every observation of every output in one pass (a compiled loop for uncensored data,
  vectorised numpy with censored values).

numpyro's JAX programs hold no data: they are built from the problem's *structure* only (priors, bounds,
transforms, sizes, sampler settings), and compiled programs are cached by that structure, so a second call on other
data or with another seed neither retraces nor recompiles.

Where the time goes (one MSC subject, 4 parameters + 2 CVs, 4 chains; ``benchmarks/bayes.py msc``, pkpd's sampler):
about 22-23.5 leapfrog steps per iteration and chain after warm-up (step size ~0.15-0.2 in the prior-standardised
coordinates; the bounded parameters' logit scale gives EC50 and k_c skewed, heavy-tailed marginals) and ~30 during
warm-up, ~150 000 gradients in all. Per gradient of one chain about 0.095 ms of CPU in one process (~0.15 ms with
the prior part in JAX and the likelihood in numpy; ~106-111 min-bulk-ESS per CPU-second, against 61-66): ~64 % in
the compiled solve (~60 us per chain in a 4-chain batch: Tsit5, ~170 steps and ~1000 evaluations of the 25-state
sensitivity system over 168 h at rtol 1e-8; rtol 1e-6 saves ~12 % of the run's CPU with the same posterior within
Monte-Carlo error, but is not the default; Rodas4 costs 12x), ~19 % in the tree building (Python, ~25 us per chain
and step), the rest in the host's Python, the compiled prior-part and likelihood loops (~3 us per call each) and
the driver. ``workers=2`` (two processes of two chains) costs ~20 % more CPU in all, each call's fixed cost shared
by two chains instead of four, but the two groups run on two cores at once: ~170 ESS per second of the busier
group's CPU, about the wall-clock figure on two idle cores (measured on a shared machine; docs/estimation.md).
numpyro's lock-step chains cost 2.6-2.8x the CPU per effective sample of the version before this one (0.8 ms
inside numpyro/XLA per gradient of the 4 chains, and ~1.4x the steps: the longest trajectory of each iteration
sets the pace). Measured and not taken: a dense mass matrix (~16 instead of ~21 steps per iteration, but lower
minimum ESS: 378-419 against 485-690 in 300 + 500-iteration runs); chains in threads for speed (``threads=2``: only
the compiled solve leaves the GIL).

The model: priors from the model file (:mod:`pkpd.priors`) or ``priors={...}`` on every estimated parameter (a
proper prior is required: a parameter without one is an error), truncated to the parameter's bounds; error-model
parameters default to a half-normal prior with scale twice their starting value (say so in ``priors`` to change
it); for a population model, log-normal (or normal, logit-normal) random effects, non-centred
(:math:`\eta_i = L z_i`), and an inverse-Wishart prior on :math:`\Omega` (``omega_prior``, required; on a diagonal
:math:`\Omega` its density restricted to diagonal matrices, i.e. independent inverse-gamma variances). Values
below the LLOQ enter as :math:`P(Y < \mathrm{LLOQ})` (M3).

Diagnostics (:mod:`pkpd.mcmc`): rank-normalised split-:math:`\hat R`, bulk and tail ESS per parameter, the number
of divergent transitions; the result says when :math:`\hat R > 1.01`, an ESS is below 100 per chain... or there
were divergences.

References
----------
Hoffman MD, Gelman A (2014) The No-U-Turn sampler. J Mach Learn Res 15:1593-1623.
Phan D, Pradhan N, Jankowiak M (2019) Composable effects for flexible and accelerated probabilistic programming in
NumPyro. arXiv:1912.11554.
Talts S, Betancourt M, Simpson D, Vehtari A, Gelman A (2018) Validating Bayesian inference algorithms with
simulation-based calibration. arXiv:1804.06788.
"""

from __future__ import annotations

import dataclasses
import math
import os
import threading
import time as _time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from .errors import FitError
from .model import Model
from .settings import SolverSettings

__all__ = ["Posterior", "sample"]

_H_PSI = 1e-3      # central-difference step of the individual parameters (log scale for positive ones)
_LOG_2PI = math.log(2.0 * math.pi)


@dataclass(frozen=True, eq=False)
class Posterior:
    """Draws from a posterior (result of :func:`sample`).

    Attributes
    ----------
    names : tuple[str, ...]
        The parameters: estimated typical values (model names), ``omega2_<name>`` (and ``omega_<a>_<b>``) for a
        population model, error parameters ``<output>.<name>``.
    draws : dict[str, ndarray (n_chains, n_draws)]
        Posterior draws on the natural scale [parameter unit].
    eta : ndarray (n_chains, n_draws, n_subjects, q) or None
        Random effects of the subjects (population models).
    summary : pandas.DataFrame
        Per parameter: mean, sd, q2.5, median, q97.5, rhat, ess_bulk, ess_tail, prior_sd_ratio (posterior SD /
        prior SD on the prior's scale: near 1, what the prior said; near 0, learnt from the data).
    divergences : int
        Divergent transitions after warm-up (should be 0).
    priors : dict
        The prior of each parameter (``"omega"``: the inverse-Wishart).
    n_chains, n_draws, n_warmup : int
    seconds : float
        Wall time of the sampling run (warm-up included; with numpyro the first call of a problem structure also
        traces and compiles the JAX program, later calls reuse it) [s].
    ess_per_second : float
        The smallest bulk ESS over the parameters, per second of ``seconds``.
    message : str
        Convergence warnings ("" when R-hat <= 1.01, every ESS >= 100 and no divergences).
    cpu_seconds : float
        CPU time of this process and of its worker processes during the sampling run (all threads) [s]; on a
        shared machine the comparable figure.
    leapfrog_steps : int
        Leapfrog steps after warm-up, summed over chains.
    warmup_leapfrog_steps : int
        Leapfrog steps during warm-up, summed over chains (pkpd's sampler; 0 with numpyro, which does not report
        them).
    sampler : str
        "pkpd" (:func:`pkpd.hmc.nuts`) or "numpyro".
    derivatives : str
        How the likelihood's gradient was computed: "forward sensitivities", or "central differences: <why>".

    Examples
    --------
    See :func:`sample`.
    """

    names: tuple
    draws: dict
    eta: np.ndarray | None
    summary: object
    divergences: int
    priors: dict
    n_chains: int
    n_draws: int
    n_warmup: int
    seconds: float
    ess_per_second: float
    message: str
    model: Model = field(repr=False)
    iiv_names: tuple = ()
    iiv_distributions: tuple = ()
    error: dict = field(default_factory=dict, repr=False)
    cpu_seconds: float = float("nan")
    leapfrog_steps: int = 0
    warmup_leapfrog_steps: int = 0
    sampler: str = "pkpd"
    derivatives: str = ""

    def array(self, name: str) -> np.ndarray:
        """The draws of one parameter, all chains together (n_chains * n_draws,)."""
        if name not in self.draws:
            from .errors import did_you_mean

            raise FitError(f"no parameter {name!r} in the posterior." + did_you_mean(name, self.names))
        return self.draws[name].reshape(-1)

    def to_inference_data(self):
        """An ``arviz.InferenceData`` (posterior, sample_stats with diverging); needs arviz installed."""
        try:
            import arviz
        except ImportError:
            raise FitError("to_inference_data needs arviz: pip install arviz") from None
        posterior = {n.replace(".", "_"): v for n, v in self.draws.items()}
        if self.eta is not None:
            posterior["eta"] = self.eta
        return arviz.from_dict(posterior=posterior, sample_stats={"diverging": self._diverging})

    def predict(self, regimen, times, *, n_samples: int = 200, new_subjects: bool = True, noise: bool = False,
                covariates: Mapping | None = None, seed=None, settings: SolverSettings | None = None):
        """Posterior predictive simulation with pkpd's simulation engine.

        ``n_samples`` posterior draws (spread evenly over the chains) each give one virtual subject: its typical
        values, and for a population model new random effects drawn from that draw's :math:`\\Omega`
        (``new_subjects=True``: a new patient; False: the typical patient). ``noise`` adds residual error from
        that draw's error model to the outputs. Returns a :class:`pkpd.Simulation` of ``n_samples`` subjects.
        """
        from .simulation import simulate

        rng = np.random.default_rng(seed)
        total = self.n_chains * self.n_draws
        pick = np.linspace(0, total - 1, int(n_samples)).round().astype(int)
        params = {}
        estimated = [n for n in self.names if n in self.model.parameter_names]
        for n in estimated:
            params[n] = self.array(n)[pick]
        if self.iiv_names and new_subjects:
            q = len(self.iiv_names)
            omega = np.zeros((pick.size, q, q))
            for a, na in enumerate(self.iiv_names):
                for b, nb in enumerate(self.iiv_names):
                    key = f"omega2_{na}" if a == b else (f"omega_{nb}_{na}" if a > b else f"omega_{na}_{nb}")
                    if key in self.draws:
                        omega[:, a, b] = self.array(key)[pick]
            L = np.linalg.cholesky(omega)
            eta = np.einsum("sqr,sr->sq", L, rng.standard_normal((pick.size, q)))
            from .population import transform

            for j, (name, dist) in enumerate(zip(self.iiv_names, self.iiv_distributions)):
                typical = params.get(name, np.full(pick.size, self.model.parameter(name).value))
                params[name] = transform(dist, typical, eta[:, j])
        sim = simulate(self.model, regimen, times, params=params, covariates=covariates,
                       settings=settings or SolverSettings())
        if not noise:
            return sim
        outputs = dict(sim.outputs)
        for out, em in self.error.items():
            values = {p: self.array(f"{out}.{p}")[pick] if f"{out}.{p}" in self.draws else getattr(em, p)
                      for p in em.parameter_names}
            noisy = np.empty_like(outputs[out])
            for s in range(pick.size):
                noisy[s] = dataclasses.replace(em, **{p: float(np.asarray(v).reshape(-1)[s if np.ndim(v) else 0])
                                                      for p, v in values.items()}).sample(outputs[out][s], rng)
            outputs[out] = noisy
        return dataclasses.replace(sim, outputs=outputs)

    def __repr__(self) -> str:
        head = (f"Posterior of {self.model.name!r}: {self.n_chains} chains x {self.n_draws} draws (warm-up "
                f"{self.n_warmup}), {self.divergences} divergences, {self.seconds:.1f} s, min bulk ESS/s "
                f"{self.ess_per_second:.0f}")
        lines = [head]
        for _, r in self.summary.iterrows():
            ratio = "" if not np.isfinite(r["prior_sd_ratio"]) else f"  prior/post SD ratio {r['prior_sd_ratio']:.2f}"
            lines.append(f"  {r['name']:<18} mean {r['mean']:.4g}  sd {r['sd']:.3g}  95 % [{r['q2.5']:.4g}, "
                         f"{r['q97.5']:.4g}]  R-hat {r['rhat']:.3f}  ESS {r['ess_bulk']:.0f}/{r['ess_tail']:.0f}"
                         f"{ratio}")
        if self.message:
            lines.append(f"note: {self.message}")
        return "\n".join(lines)

    _diverging: np.ndarray = field(default=None, repr=False)


# ====================================================================================================== the host
class _SensitivityHost:
    """Predictions at the observations and their exact derivatives (:meth:`observed`) at individual parameters psi
    (B, n, p) (log of the positive ones), from the model solved with its forward sensitivity equations: one batch
    call of the compiled estimation library (:mod:`pkpd.estimation._compiled`) for every chain and subject
    (private)."""

    def __init__(self, prob, index: Sequence[int], log: Sequence[bool], base: np.ndarray):
        from .estimation._objective import OdePredictor, design_of

        self._bind(prob, index, log, base)
        design = design_of(prob, base)
        self.predictor = OdePredictor(prob.model, design, tuple(int(i) for i in index), (),
                                      tuple(int(i) for i in prob.out_index), 1, prob.settings)

    def _bind(self, prob, index: Sequence[int], log: Sequence[bool], base: np.ndarray) -> None:
        """The problem, the sampled parameters' columns and scales, and the base parameter row."""
        self.prob = prob
        self.index = np.asarray(index, dtype=np.int64)
        self.log = np.asarray(log, dtype=bool)
        self.base = base
        self.n, self.J, self.p = prob.n, prob.J, len(index)
        self.n_calls = 0
        self._layouts = {}
        self._observed = {}
        self.all_log = bool(self.log.all())

    def select(self, pos: np.ndarray) -> None:
        """The flat positions in (n, J) of the observations :meth:`observed` returns (in this order)."""
        self.pos = np.asarray(pos, dtype=np.int64)
        self._observed = {}

    def observed(self, psi: np.ndarray):
        """Predictions (B, n_obs) at the selected observations and their derivatives by psi (B, n_obs, p), at psi
        (B, n, p): the compiled batch solve, each row on its own (the same values whatever else is in the batch)."""
        B = psi.shape[0]
        count = B * self.n
        flat = psi.reshape(count, self.p)
        call, gather, subject, flat_out = self._buffers(count)
        rows, status, methods = call.rows, call.status, call.methods
        with np.errstate(over="ignore", invalid="ignore"):
            values = np.exp(flat) if self.all_log else np.where(self.log, np.exp(flat), flat)
        good = np.isfinite(np.add.reduce(values, axis=1))
        if not good.all():
            values = np.where(good[:, None], values, self.base[self.index])
        rows[:, self.index] = values    # the row buffer is this thread's own: several may drive chains
        scales = np.abs(values)
        unit = self.all_log             # d/d(log v) = v d/dv = the library's scaled derivative when the scale is v
        if not (scales > 0).all():      # as OdePredictor.outputs scales the derivatives
            scales = np.where(np.isfinite(scales) & (scales > 0), scales, 1.0)
            unit = False
        rows[:, -self.p:] = scales
        self.n_calls += 1
        pr = self.predictor
        methods.reshape(B, -1)[:] = pr.methods
        call.run(_native_threads())
        from .estimation._compiled import merged_methods

        pr.methods[:] = merged_methods(methods.reshape(B, pr.design.n))
        jet = flat_out[gather]                              # (B, n_obs, 1 + p): value, d/d parameter
        f = jet[..., 0]
        if unit:
            df = jet[..., 1:]
        else:
            # d/d(log v) = v d/dv; the library's derivatives carry the scales
            factor = (np.where(self.log, values, 1.0) / scales).reshape(B, self.n, self.p)
            df = jet[..., 1:] * factor[:, subject, :]
        ok = good & (status == 0)
        if not ok.all():
            f = np.where(ok.reshape(B, self.n)[:, subject], f, np.nan)
        return f, df

    def _buffers(self, count: int):
        """Per row count and thread: the library's call on this thread's own input rows (the sampled columns and
        scales overwritten per call), the positions of the selected observations' values and first derivatives in
        its output, their subjects, and the output flat (cached)."""
        key = (count, threading.get_ident())
        hit = self._observed.get(key)
        if hit is not None:
            return hit
        from .estimation._compiled import PredictCall

        template, gather_all, _ = self._layout(count)
        pr = self.predictor
        B = count // self.n
        # gather_all (count, J, 1 + p) in (chain, subject) row order: the chain b's observation at flat position
        # pos of (n, J) is row b * n + pos // J, output pos % J
        g = gather_all.reshape(B, self.n * self.J, -1)[:, self.pos, :]
        call = PredictCall(pr.lib, template.copy(), pr.design, pr.settings)
        hit = (call, np.ascontiguousarray(g), self.pos // self.J, call.outputs.reshape(-1))
        self._observed[key] = hit
        return hit

    def _layout(self, count: int):
        """For ``count`` parameter rows (copies of the design's subjects): the compiled library's input rows
        (parameters, covariates, derivative scales; the sampled columns overwritten per call), the flat positions
        of the predictions and their first derivatives in its output, and the observation mask (cached)."""
        hit = self._layouts.get(count)
        if hit is not None:
            return hit
        pr = self.predictor
        d = pr.design
        reps = count // d.n
        rows = np.hstack([np.tile(self.base, (count, 1)), np.tile(d.covariates, (reps, 1)), np.ones((count, self.p))])
        rows = np.ascontiguousarray(rows)
        n_times, n_out = d.tt.shape[1], pr.lib.layout.n_outputs
        blocks = np.array([pr.multisets.index(())] + [pr.multisets.index((k,)) for k in range(self.p)])
        ti = np.tile(d.ti, (reps, 1))[:, :, None]
        col = blocks[None, None, :] * pr.n_fit + np.tile(d.which, (reps, 1))[:, :, None]
        gather = (np.arange(count)[:, None, None] * n_times + ti) * n_out + col
        mask = np.tile(self.prob.mask, (reps, 1))
        self._layouts[count] = (rows, gather, mask)
        return rows, gather, mask


class _DifferenceHost(_SensitivityHost):
    """As :class:`_SensitivityHost`, the derivatives by central differences of batch solves of the model (private;
    where the compiled estimation library cannot serve the problem: no C compiler, doses that depend on a sampled
    parameter, steady-state records, inter-occasion variability)."""

    def __init__(self, prob, index: Sequence[int], log: Sequence[bool], base: np.ndarray):
        self._bind(prob, index, log, base)

    def observed(self, psi: np.ndarray):
        F, dF = self(psi)
        B = psi.shape[0]
        return F.reshape(B, -1)[:, self.pos], dF.reshape(B, self.n * self.J, self.p)[:, self.pos]

    def __call__(self, psi: np.ndarray):
        psi = np.asarray(psi, dtype=float)
        lead = psi.shape[:-2]
        flat = psi.reshape(-1, self.n, self.p)
        B = flat.shape[0]
        steps = np.concatenate([np.zeros((1, self.p)), _H_PSI * np.eye(self.p), -_H_PSI * np.eye(self.p)])
        rows = flat[:, None] + steps[None, :, None, :]                          # (B, 1 + 2p, n, p)
        with np.errstate(over="ignore"):
            values = np.where(self.log, np.exp(rows), rows)
        P = np.broadcast_to(self.base, rows.shape[:3] + (self.base.size,)).copy()
        P[..., self.index] = values
        self.n_calls += 1
        with np.errstate(all="ignore"):
            F = self.prob.predict(P.reshape(-1, self.n, self.base.size)).reshape(B, 1 + 2 * self.p, self.n, self.J)
        F = np.where(self.prob.mask[None, None], F, 1.0)
        f0 = F[:, 0]
        dF = (F[:, 1:1 + self.p] - F[:, 1 + self.p:]) / (2 * _H_PSI)            # (B, p, n, J)
        dF = np.moveaxis(dF, 1, -1)
        return f0.reshape(lead + (self.n, self.J)), dF.reshape(lead + (self.n, self.J, self.p))


def _native_threads() -> int:
    from ._native import threads

    return threads()


def _exact_derivatives_unsupported(prob, names: Sequence[str]) -> str:
    """Why the compiled sensitivity system cannot give the derivatives ('' when it can): the compiled estimation
    library's own conditions, with the sampled parameters as the ones that vary."""
    from .estimation.population_fit import _compiled_unsupported_for

    return _compiled_unsupported_for(prob, names)


class _Likelihood:
    r"""log p(y | psi, e) of every chain and its gradient by the individual parameters psi (B, n, p) and the
    sampled residual-error parameters e (B, n_e) (natural scale), in numpy from the host's predictions and their
    derivatives at the observations: normal residuals on the error model's scale, M3 (log P(Y < LLOQ)) for censored
    values (private). Non-finite values (a failed solve, parameters out of reach) give -inf and a zero gradient: a
    rejected move.

    Every observation of every output is handled in one vectorised pass (the sampler calls this once per leapfrog
    step, with a few chains, so the count of numpy operations per call is what costs): the residual SD of an
    observation is :math:`a + b f` (additive: a = sd; proportional: b = cv; log-normal on the log scale: a = sigma;
    combined, ``convention="sd"``: both) or :math:`\sqrt{a^2 + b^2 f^2}` (combined, ``convention="variance"``), its
    a and b read from the sampled or the fixed error parameters."""

    use_kernel = True       # uncensored data: the compiled loop; False: the numpy formulas (a test compares them)

    def __init__(self, host, errors, fixed_errors, sel, u, jac, cens):
        self.host, self.errors, self.fixed_errors = host, errors, fixed_errors
        J = host.J
        constants = [0.0]                   # slot 0 of the constants: a term that is absent
        a_src, b_src, root, logs, positions = [], [], [], [], []
        k = 0
        n_e = sum(1 for o, (_, _, _, params) in enumerate(errors) for name in params if name not in fixed_errors[o])
        for o, (kind, convention, log_scale, params) in enumerate(errors):
            source = {}
            for name in params:
                if name in fixed_errors[o]:
                    constants.append(float(fixed_errors[o][name]))
                    source[name] = n_e + len(constants) - 1
                else:
                    source[name] = k
                    k += 1
            zero = n_e
            a = source.get("sd", source.get("sigma", zero))
            b = source.get("cv", zero)
            pos = np.flatnonzero(np.asarray(sel[o]).reshape(-1))
            positions.append(pos)
            a_src += [a] * pos.size
            b_src += [b] * pos.size
            root += [kind == "Combined" and convention != "sd"] * pos.size
            logs += [bool(log_scale)] * pos.size
        self.n_e = n_e
        self.constants = np.array(constants)
        pos = np.concatenate(positions) if positions else np.zeros(0, dtype=np.int64)
        self.pos = pos
        self.subject = pos // J
        self.a_src, self.b_src = np.array(a_src, dtype=np.int64), np.array(b_src, dtype=np.int64)
        self.root = np.array(root, dtype=bool)
        self.any_root, self.all_root = bool(self.root.any()), bool(self.root.all())
        self.linear = not self.any_root
        self.logs = np.array(logs, dtype=bool)
        self.any_log, self.all_log = bool(self.logs.any()), bool(self.logs.all())
        self.no_log = not self.any_log
        self.u = np.asarray(u, dtype=float).reshape(-1)[pos]
        c = np.asarray(cens).reshape(-1)[pos].astype(bool)
        self.cens, self.any_cens = c, bool(c.any())
        self.const = float(np.asarray(jac, dtype=float).reshape(-1)[pos][~c].sum()) - 0.5 * _LOG_2PI * float((~c).sum())
        # the gradient by e: each observation's d/da and d/db terms, gathered by the parameter they belong to and
        # summed with one reduceat (a fixed order of summation: the same sums whatever the number of chains)
        terms = np.concatenate([self.a_src, self.b_src])
        keep = np.flatnonzero(terms < n_e)
        order = keep[np.argsort(terms[keep], kind="stable")]
        self.e_order = order
        counts = np.bincount(terms[order], minlength=n_e)
        self.e_with = np.flatnonzero(counts > 0)
        self.e_starts = np.concatenate([[0], np.cumsum(counts[self.e_with])[:-1]]).astype(np.int64)
        if hasattr(host, "select"):
            host.select(pos)
        from ._prior_part import _normal_likelihood

        self._kernel = _normal_likelihood

    def __call__(self, psi: np.ndarray, e: np.ndarray):
        from .error_models import _ndtr_log as log_ndtr

        psi = np.asarray(psi, dtype=float)
        e = np.asarray(e, dtype=float)
        if psi.ndim == 3 and e.ndim == 2 and psi.shape[0] == e.shape[0]:
            lead = psi.shape[:1]
        else:
            lead = np.broadcast_shapes(psi.shape[:-2], e.shape[:-1])
            psi = np.broadcast_to(psi, lead + psi.shape[-2:])
            e = np.broadcast_to(e, lead + e.shape[-1:])
        B = math.prod(lead)
        n, p = psi.shape[-2:]
        psi = psi.reshape(B, n, p)
        e = e.reshape(B, e.shape[-1])
        f, df = self.host.observed(psi)                             # (B, n_obs), (B, n_obs, p)
        if self.use_kernel and not self.any_cens:
            ll, g_psi, g_e = np.empty(B), np.zeros((B, n, p)), np.zeros((B, self.n_e))
            self._kernel(f, df, np.ascontiguousarray(e), self.constants, self.a_src, self.b_src, self.root,
                               self.logs, self.u, self.const, self.subject, ll, g_psi, g_e)
            return ll.reshape(lead), g_psi.reshape(lead + (n, p)), g_e.reshape(lead + (self.n_e,))
        ext = np.empty((B, self.n_e + self.constants.size))
        ext[:, :self.n_e] = e
        ext[:, self.n_e:] = self.constants
        a, b = ext[:, self.a_src], ext[:, self.b_src]
        with np.errstate(all="ignore"):
            if not self.any_root:
                s, ds_df, ds_da, ds_db = a + b * f, b, 1.0, f
            else:
                s = a + b * f
                r = np.sqrt(a * a + (b * f) ** 2)
                s = r if self.all_root else np.where(self.root, r, s)
                ds_df = np.where(self.root, b * b * f / r, b)
                ds_da = np.where(self.root, a / r, 1.0)
                ds_db = np.where(self.root, b * f * f / r, f)
            if self.all_log:
                m, dm_df = np.log(f), 1.0 / f
            elif self.any_log:
                m = np.where(self.logs, np.log(f), f)
                dm_df = np.where(self.logs, 1.0 / f, 1.0)
            else:
                m, dm_df = f, 1.0
            z = (self.u - m) / s
            if self.any_cens:
                quant = -0.5 * z * z - np.log(s)
                censored = log_ndtr(z)              # u holds the (transformed) limit for a censored value
                ll = np.add.reduce(np.where(self.cens, censored, quant), axis=1) + self.const
                ratio = np.exp(-0.5 * z * z - 0.5 * _LOG_2PI - censored)        # phi(z) / Phi(z)
                dll_dm = np.where(self.cens, -ratio / s, z / s)
                dll_ds = np.where(self.cens, -ratio * z / s, (z * z - 1.0) / s)
            else:
                ll = np.add.reduce(-0.5 * z * z - np.log(s), axis=1) + self.const
                dll_dm = z / s
                dll_ds = (z * z - 1.0) / s
            g_f = (dll_dm if self.no_log else dll_dm * dm_df) + dll_ds * ds_df
            w = g_f[:, :, None] * df
            g_psi = np.add.reduce(w, axis=1)[:, None, :] if n == 1 else self._by_subject(w, n)
            g_e = np.zeros((B, self.n_e))
            if self.e_with.size:
                terms = np.concatenate([dll_ds if self.linear else dll_ds * ds_da, dll_ds * ds_db], axis=1)
                g_e[:, self.e_with] = np.add.reduceat(terms[:, self.e_order], self.e_starts, axis=1)
        ok = np.isfinite(ll + np.add.reduce(g_psi.reshape(B, -1), axis=1) + np.add.reduce(g_e, axis=1))
        if not ok.all():
            ll = np.where(ok, ll, -np.inf)
            g_psi = np.where(ok[:, None, None], g_psi, 0.0)
            g_e = np.where(ok[:, None], g_e, 0.0)
        return ll.reshape(lead), g_psi.reshape(lead + (n, p)), g_e.reshape(lead + (self.n_e,))

    def _by_subject(self, w, n):
        """Per-observation terms (B, n_obs, p) summed per subject (B, n, p)."""
        out = np.zeros((w.shape[0], n, w.shape[2]))
        np.add.at(out, (slice(None), self.subject), w)
        return out


@dataclass(frozen=True)
class _Structure:
    """What the JAX log density is built from: priors, bounds, transforms and sizes, never data (private; its repr,
    with the sampler's settings, keys the cache of compiled programs in :mod:`pkpd._nuts`)."""

    n: int
    error_priors: tuple
    struct: tuple = ()
    thetas: tuple = ()
    fixed_theta: tuple = ()
    individual: tuple = ()
    q: int = 0
    full_omega: bool = False
    iw_df: float = 0.0
    iw_omega: tuple = ()
    centre: tuple = ()
    scale: tuple = ()

    def __post_init__(self):
        object.__setattr__(self, "fixed_theta", tuple(self.fixed_theta))


def _import_nuts():
    """The JAX bridge to numpyro (``sampler="numpyro"`` only; pkpd's sampler is numpy throughout)."""
    try:
        import numpyro  # noqa: F401

        from . import _nuts
    except ImportError as err:
        raise FitError(f"pkpd.sample(sampler='numpyro') needs the optional extra 'bayes' (jax and numpyro): "
                       f"pip install -e '.[bayes]' from a pkpd checkout ({err})") from None
    return _nuts


def _cpu_time() -> float:
    """CPU seconds of this process and of its waited-for children (the sampler's worker processes)."""
    t = os.times()
    return _time.process_time() + t.children_user + t.children_system


# ====================================================================================================== sample
def sample(model: Model, data, *, estimate: Sequence[str], error, iiv=None, priors=True, omega_prior=None,
           blq="M3", n_chains: int = 4, n_warmup: int = 500, n_draws: int = 500, seed=None,
           settings: SolverSettings | None = None, target_accept: float = 0.8,
           max_tree_depth: int = 8, sampler: str = "pkpd", threads: int = 1, workers: int = 1) -> Posterior:
    """Sample the posterior of a model's parameters given data, by NUTS.

    Main arguments
    --------------
    model : Model
        With priors on the parameters to estimate (or give them in ``priors``).
    data : NonmemDataset, DataFrame or CSV path
        NONMEM layout, as :func:`pkpd.fit` and :func:`pkpd.fit_population`.
    estimate : sequence of str
        Parameters to sample: typical values; the others stay at the model's values.
    error : error model or dict[str, error model]
        Residual error per output; parameters not ``fixed`` are sampled too (starting values = the given ones).
    iiv : dict[str, float] or IIV, optional
        Random effects (a population model; their initial variances start the chains); None: one parameter set
        for every subject.
    priors : True or dict
        True: the model file's priors; a dict name -> prior adds or replaces priors (error parameters as
        ``"<output>.<name>"``).
    omega_prior : InverseWishart
        Prior of :math:`\\Omega` (required with ``iiv``).

    Other arguments
    ---------------
    blq : "M3" or "M1"
        Values below the LLOQ: probability of being below (M3) or dropped (M1).
    n_chains, n_warmup, n_draws : int
        Chains (run in parallel, vectorised), warm-up (adaptation) and kept iterations per chain.
    seed : int, optional
        Reproducible draws (the same seed gives the same draws).
    settings : SolverSettings, optional
        ODE solver; default ``rtol=1e-8, atol=1e-10``.
    target_accept, max_tree_depth
        NUTS's target acceptance probability (raise to 0.9-0.95 against divergences) and tree depth limit.
    sampler : {"pkpd", "numpyro"}
        ``"pkpd"`` (default): pkpd's NUTS in numpy (:func:`pkpd.hmc.nuts`, Stan's algorithm and warm-up), the
        chains' gradients in one batch solve per leapfrog step, a chain never waiting for another; about 2-3x
        fewer CPU-seconds per effective sample on one MSC subject. ``"numpyro"``: numpyro's NUTS, its chains
        vectorised in lock-step (the longest trajectory of each iteration sets the pace).
    threads : int
        pkpd's sampler: the chains split into this many groups, each driven by its own thread with its own batch
        solves (the engine then solves on one thread per group; the draws are the same for any value). On the
        shared 2-core test machine 2 cost ~40 % more CPU for no wall-clock gain (``benchmarks/bayes.py msc``); a
        machine with idle cores may gain. With 1, a batch of fewer than 16 rows (chains x subjects) is solved on
        one engine thread, a larger one on the engine's threads (``$PKPD_NUM_THREADS``, else the cores).
    workers : int
        pkpd's sampler: the chains split into this many groups, each run in its own process forked from this one
        (Linux; elsewhere one process runs them all), its batch solves on one engine thread; the draws are the
        same for any value. Use it with idle cores: each process's batches are smaller, so the CPU per gradient
        rises (~20 % with 2 workers of 2 chains on one MSC subject) while the wall time falls with the cores
        working in parallel. ``Posterior.cpu_seconds`` counts the workers' CPU.

    Returns
    -------
    Posterior

    Raises
    ------
    FitError
        sampler="numpyro" without jax and numpyro installed, an unknown sampler, an estimated parameter without
        a proper prior, no ``omega_prior`` with ``iiv``, a prior on an unknown or not estimated parameter, a
        uniform prior on an error-model parameter, M4 censoring.

    Examples
    --------
    Not run here (a few seconds of sampling)::

        import pkpd
        m = pkpd.load_model("pk_1cmt_iv").with_priors(CL=pkpd.LogNormalPrior(3.0, 0.5),
                                                     V=pkpd.LogNormalPrior(30.0, 0.5))
        post = pkpd.sample(m, "data.csv", estimate=["CL", "V"], error={"conc": pkpd.Proportional(cv=0.1)}, seed=1)
        post.summary; post.predict(pkpd.Regimen.single(pkpd.Dose(100, "mg")), range(25))
    """
    from .error_models import M1, M3
    from .estimation.individual import _censoring
    from .estimation.population_fit import _setup
    from .population import IIV
    from .priors import HalfNormalPrior, InverseWishart, UniformPrior, resolve_priors

    if not isinstance(model, Model):
        raise FitError(f"model must be a pkpd Model (from pkpd.load_model); got {type(model).__name__}")
    if sampler not in ("pkpd", "numpyro"):
        raise FitError(f"sampler: 'pkpd' (pkpd.hmc.nuts) or 'numpyro'; got {sampler!r}")
    for name, v, lo in (("n_chains", n_chains, 1), ("n_warmup", n_warmup, 1), ("n_draws", n_draws, 4)):
        if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < lo:
            raise FitError(f"{name}: must be an integer >= {lo}; got {v!r}")
    blq_obj = _censoring(blq)
    if not isinstance(blq_obj, M1 | M3):
        raise FitError(f"blq: sample supports 'M3' and 'M1'; got {blq!r}")
    if isinstance(estimate, str):
        estimate = [estimate]
    estimate = list(estimate)
    for n in estimate:
        if n not in model.parameter_names:
            from .errors import did_you_mean

            raise FitError(f"estimate: model {model.name!r} has no parameter {n!r}."
                           + did_you_mean(str(n), model.parameter_names))
    population = iiv is not None
    if population:
        iiv = IIV(dict(iiv)) if isinstance(iiv, Mapping) else iiv
        if not isinstance(iiv, IIV):
            raise FitError(f"iiv: expected a dict name -> variance or a pkpd.IIV; got {type(iiv).__name__}")
        if not isinstance(omega_prior, InverseWishart):
            raise FitError("omega_prior: a population model needs a proper prior on Omega, e.g. "
                           "pkpd.InverseWishart({'CL': 0.1}, df=5); got " + repr(omega_prior))
        dummy = iiv
    else:
        if omega_prior is not None:
            raise FitError("omega_prior: only with iiv= (a population model)")
        dummy = IIV({estimate[0] if estimate else model.parameter_names[0]: 1.0})
    settings = settings or SolverSettings(rtol=1e-8, atol=1e-10)
    _, _, error_d, layout, prob = _setup(model, data, dummy, error, "laplace", estimate or None,
                                         blq_obj if isinstance(blq_obj, M3) else None, settings, None)
    if isinstance(blq_obj, M1) and prob.cens.any():
        raise FitError("blq='M1' drops censored values, but sample reads them with M3 here; give blq='M3'")
    error_names = [f"{layout.outputs[o]}.{p}" for o, p in layout.error_slots]
    chosen = resolve_priors(model, priors, list(estimate) + error_names, error_names)
    for name in error_names:
        # an error parameter is sampled on (0, inf) (its log is unbounded): nothing would keep it inside a uniform
        # prior's [lower, upper], whose density is flat (a model parameter's uniform prior is on its bounds)
        if isinstance(chosen.get(name), UniformPrior):
            p = chosen[name]
            raise FitError(f"priors[{name!r}]: sample draws an error-model parameter on (0, inf) and cannot keep it "
                           f"inside a uniform prior's [{p.lower}, {p.upper}]; use a HalfNormalPrior or a "
                           "LogNormalPrior")
    for n in estimate:
        if n not in chosen:
            raise FitError(f"priors: {n!r} has no prior, and sampling needs a proper prior on every estimated "
                           f"parameter; add prior = {{ ... }} to the model file or priors={{{n!r}: ...}}")
    for o, p in layout.error_slots:
        name = f"{layout.outputs[o]}.{p}"
        if name not in chosen:
            chosen[name] = HalfNormalPrior(2.0 * getattr(error_d[layout.outputs[o]], p),
                                           source="default: half-normal, scale twice the starting value")
    # observations as the JAX likelihood reads them
    from .estimation.finite_difference import _transform_limit

    errs0 = [error_d[o] for o in layout.outputs]
    with np.errstate(all="ignore"):
        lim = _transform_limit(prob, [errs0], prob.limit)
        u = np.where(prob.cens, lim, np.array(prob.y))
        jac = np.zeros_like(u)
        for o, em in enumerate(errs0):
            if em.log_scale:
                sel = (prob.which == o) & prob.mask
                u = np.where(sel & ~prob.cens, np.log(np.where(sel, prob.y, 1.0)), u)
                jac = np.where(sel & ~prob.cens, -np.log(np.where(sel, prob.y, 1.0)), jac)
    spec_errors, fixed_errors, error_priors = [], [], {}
    for o, out in enumerate(layout.outputs):
        em = error_d[out]
        spec_errors.append((type(em).__name__, getattr(em, "convention", ""), bool(em.log_scale),
                            em.parameter_names))
        fixed_errors.append({p: float(getattr(em, p)) for p in em.fixed})
        for p in em.parameter_names:
            if p not in em.fixed:
                error_priors[(o, p)] = chosen[f"{out}.{p}"]
    sel = [prob.mask & (prob.which == o) for o in range(len(layout.outputs))]
    names_model = model.parameter_names
    base = np.array([p.value for p in model.parameters], dtype=float)

    def is_log(name):
        p = model.parameter(name)
        return p.bounds[0] >= 0 and p.value > 0

    from ._prior_part import PriorPart, run_pkpd_nuts, unconstrain

    _nuts = _import_nuts() if sampler == "numpyro" else None
    rng = np.random.default_rng(seed)
    init_rows = []
    error_priors = tuple(chosen[f"{layout.outputs[o]}.{p}"] for o, out in enumerate(layout.outputs)
                         for p in error_d[out].parameter_names if p not in error_d[out].fixed)
    if not population:
        sampled = list(estimate)
        individual = None
    else:
        q = iiv.n_eta
        individual = [(n, d, is_log(n)) for n, d in zip(iiv.names, iiv.distributions)]
        individual += [(n, None, is_log(n)) for n in estimate if n not in iiv.names]
        sampled = [n for n, _, _ in individual]
    index, logs = [names_model.index(n) for n in sampled], [is_log(n) for n in sampled]
    why_not = _exact_derivatives_unsupported(prob, sampled)
    host = (_DifferenceHost if why_not else _SensitivityHost)(prob, index, logs, base)
    likelihood = _Likelihood(host, spec_errors, fixed_errors, sel, u, jac, np.array(prob.cens))
    start = [unconstrain(model.parameter(n).value, *model.parameter(n).bounds) for n in estimate]
    if not population:
        structure = _Structure(n=prob.n, error_priors=error_priors,
                               struct=tuple((*model.parameter(n).bounds, chosen[n], is_log(n)) for n in estimate))
        build = "individual_log_density"
    else:
        full = bool(np.any(iiv.omega != np.diag(np.diag(iiv.omega))))
        structure = _Structure(
            n=prob.n, error_priors=error_priors, thetas=tuple((n, *model.parameter(n).bounds, chosen[n])
                                                              for n in estimate),
            fixed_theta=tuple((n, float(model.parameter(n).value)) for n, _, _ in individual if n not in estimate),
            individual=tuple(individual), q=q, full_omega=full, iw_df=float(omega_prior.df),
            iw_omega=tuple(map(tuple, np.asarray(omega_prior.matrix_for(iiv.names), dtype=float).tolist())))
        build = "population_log_density"
        L0 = np.linalg.cholesky(iiv.omega)
        if full:
            start += [math.log(L0[a, b]) if a == b else L0[a, b] for a in range(q) for b in range(a + 1)]
        else:
            start += list(np.log(np.diag(L0)))
    start += [math.log(getattr(error_d[layout.outputs[o]], p)) for o, p in layout.error_slots]
    start = np.array(start, dtype=float)
    for _ in range(n_chains):
        row = start + 0.1 * rng.standard_normal(start.size)
        if population:
            row = np.concatenate([row, 0.1 * rng.standard_normal(prob.n * iiv.n_eta)])
        init_rows.append(row)
    init = np.array(init_rows)
    # the sampler moves z = (u - centre) / scale, each typical value standardised by its prior on the unconstrained
    # scale (a parameter bounded to (-100, 100) has an unconstrained prior SD ~1/50): the warm-up then starts near
    # the right step size and mass matrix instead of spending its windows finding them
    centre, scale = np.zeros(init.shape[1]), np.ones(init.shape[1])
    for k, n in enumerate(estimate):
        centre[k], scale[k] = _unconstrained_prior_scale(chosen[n], *model.parameter(n).bounds)
    init = (init - centre) / scale
    structure = dataclasses.replace(structure, centre=tuple(centre.tolist()), scale=tuple(scale.tolist()))

    settings_key = dict(n_chains=int(n_chains), n_warmup=int(n_warmup), n_draws=int(n_draws),
                        target_accept=float(target_accept), max_tree_depth=int(max_tree_depth))
    run_seed = int(rng.integers(0, 2 ** 31 - 1))
    if sampler == "numpyro":
        def standardised(loglik):
            log_density = getattr(_nuts, build)(structure, loglik)
            c, s = np.asarray(structure.centre), np.asarray(structure.scale)
            return lambda z: log_density(c + s * z)

        slot, mcmc = _nuts.program(repr((population, structure, sorted(settings_key.items()))), standardised,
                                   **settings_key)
        t0, c0 = _time.perf_counter(), _cpu_time()
        Z, diverging, steps = _nuts.run_nuts(slot, mcmc, likelihood, init, seed=run_seed)
        warmup_steps = 0
    else:
        t0, c0 = _time.perf_counter(), _cpu_time()
        Z, diverging, steps, run = run_pkpd_nuts(PriorPart(structure, population), likelihood, init, run_seed,
                                                 n_warmup=int(n_warmup), n_draws=int(n_draws),
                                                 target_accept=float(target_accept),
                                                 max_tree_depth=int(max_tree_depth), threads=int(threads),
                                                 workers=int(workers))
        warmup_steps = run.warmup_steps
    seconds, cpu_seconds = _time.perf_counter() - t0, _cpu_time() - c0
    U = centre + scale * Z
    draws, eta, prior_of = _natural_draws(structure, U, estimate, layout, population, iiv, chosen, omega_prior,
                                          spec_errors, fixed_errors)
    summary, message, ess_min = _summarise(draws, prior_of, int(diverging.sum()))
    iiv_names = iiv.names if population else ()
    return Posterior(names=tuple(draws), draws=draws, eta=eta, summary=summary, divergences=int(diverging.sum()),
                     priors=prior_of, n_chains=int(n_chains), n_draws=int(n_draws), n_warmup=int(n_warmup),
                     seconds=seconds, ess_per_second=ess_min / seconds, message=message, model=model,
                     iiv_names=iiv_names, iiv_distributions=iiv.distributions if population else (),
                     error=dict(error_d), _diverging=diverging, cpu_seconds=cpu_seconds,
                     leapfrog_steps=int(steps.sum()), warmup_leapfrog_steps=int(warmup_steps), sampler=sampler,
                     derivatives="central differences: " + why_not if why_not
                     else "forward sensitivities")


def _unconstrained_prior_scale(prior, lo: float, hi: float) -> tuple[float, float]:
    """Median and spread (half the central 68 % range) of a prior on the sampler's unconstrained scale of a
    parameter with bounds (lo, hi), from 4000 fixed-seed prior draws kept strictly inside the bounds."""
    from ._prior_part import unconstrain

    draws = prior.sample(4000, np.random.default_rng(0))
    width = hi - lo if math.isfinite(hi - lo) else max(1.0, abs(lo if math.isfinite(lo) else hi))
    eps = 1e-9 * width
    inside = draws[(draws > lo + eps) & (draws < hi - eps)]
    if inside.size < 100:
        return 0.0, 1.0
    u = np.array([unconstrain(float(v), lo, hi) for v in inside])
    q16, q50, q84 = np.quantile(u, [0.16, 0.5, 0.84])
    spread = 0.5 * (q84 - q16)
    if not (np.isfinite(spread) and spread > 0):
        return 0.0, 1.0
    return float(q50), float(spread)


def _constrain_np(u, lo, hi):
    if math.isfinite(lo) and math.isfinite(hi):
        return lo + (hi - lo) / (1.0 + np.exp(-u))
    if math.isfinite(lo):
        return lo + np.exp(u)
    if math.isfinite(hi):
        return hi - np.exp(u)
    return u


def _natural_draws(structure, U, estimate, layout, population, iiv, chosen, omega_prior, errors,
                  fixed_errors):
    """Named natural-scale draws (n_chains, n_draws) from the unconstrained ones."""
    draws, prior_of = {}, {}
    k = 0
    items = structure.struct if not population else [(lo, hi, pr, None) for _, lo, hi, pr in structure.thetas]
    for n, (lo, hi, pr, _) in zip(estimate, items):
        draws[n] = _constrain_np(U[..., k], lo, hi)
        prior_of[n] = pr
        k += 1
    eta = None
    if population:
        q = structure.q
        C, S = U.shape[:2]
        L = np.zeros((C, S, q, q))
        if structure.full_omega:
            for a in range(q):
                for b in range(a + 1):
                    L[..., a, b] = np.exp(U[..., k]) if a == b else U[..., k]
                    k += 1
        else:
            for a in range(q):
                L[..., a, a] = np.exp(U[..., k])
                k += 1
        omega = L @ np.swapaxes(L, -1, -2)
        for a in range(q):
            for b in range(a + 1):
                if a == b:
                    draws[f"omega2_{iiv.names[a]}"] = omega[..., a, a]
                elif structure.full_omega:
                    draws[f"omega_{iiv.names[b]}_{iiv.names[a]}"] = omega[..., a, b]
        prior_of["omega"] = omega_prior
        k_err = k
        z = U[..., k_err + len(structure.error_priors):].reshape(C, S, structure.n, q)
        eta = np.einsum("csqr,csnr->csnq", L, z)
    for o, (_, _, _, params) in enumerate(errors):
        for p in params:
            if p in fixed_errors[o]:
                continue
            name = f"{layout.outputs[o]}.{p}"
            draws[name] = np.exp(U[..., k])
            prior_of[name] = chosen[name]
            k += 1
    return draws, eta, prior_of


def _summarise(draws: dict, priors: dict, divergences: int):
    import pandas as pd

    from .mcmc import ess_bulk, ess_tail, rhat

    rows = []
    for name, x in draws.items():
        flat = x.reshape(-1)
        prior = priors.get(name)
        ratio = float("nan")
        if prior is not None and hasattr(prior, "scale_sd"):
            if prior.scale == "log":
                post_sd = float(np.std(np.log(flat), ddof=1))
            elif prior.scale == "logit":
                post_sd = float(np.std(np.log(flat / (1 - flat)), ddof=1))
            else:
                post_sd = float(np.std(flat, ddof=1))
            ratio = post_sd / prior.scale_sd()
        rows.append({"name": name, "mean": float(flat.mean()), "sd": float(flat.std(ddof=1)),
                     "q2.5": float(np.quantile(flat, 0.025)), "median": float(np.median(flat)),
                     "q97.5": float(np.quantile(flat, 0.975)), "rhat": rhat(x), "ess_bulk": ess_bulk(x),
                     "ess_tail": ess_tail(x), "prior_sd_ratio": ratio})
    table = pd.DataFrame(rows)
    notes = []
    bad = table[table["rhat"] > 1.01]["name"].tolist()
    if bad:
        notes.append(f"R-hat > 1.01 for {', '.join(bad)}: the chains disagree; run longer (n_warmup, n_draws)")
    low = table[(table["ess_bulk"] < 100) | (table["ess_tail"] < 100)]["name"].tolist()
    if low:
        notes.append(f"ESS < 100 for {', '.join(low)}: too few effective draws for reliable intervals")
    if divergences:
        notes.append(f"{divergences} divergent transitions: the posterior has regions NUTS cannot explore "
                     "reliably; raise target_accept (0.9-0.99) or reparameterise")
    ess_min = float(np.nanmin(table["ess_bulk"])) if len(table) else float("nan")
    return table, "; ".join(notes), ess_min
