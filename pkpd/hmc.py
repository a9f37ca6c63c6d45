r"""The No-U-Turn sampler in numpy, for log densities whose gradient comes from pkpd's compiled engine.

:func:`nuts` runs several chains of Stan's NUTS (Hoffman & Gelman 2014; Betancourt 2017): multinomial sampling of
the trajectory's states, biased progressive sampling between subtrees, the generalised no-U-turn criterion with
the extra checks across merged subtrees, divergences where the energy error exceeds 1000, and Stan's windowed
warm-up (dual averaging of the step size towards ``target_accept``; a diagonal inverse mass matrix from the
regularised variances of the draws in doubling windows, the step size re-initialised after each window).

The chains are independent Markov chains, but their gradient evaluations are served together: each chain is a
Python generator that asks for the log density at one position at a time, and the driver evaluates the pending
positions of every chain in **one batch call** of ``log_density`` (one batch solve of the ODE system for all chains).
A chain does not wait for the others at the end of an iteration (unlike chains vectorised in lock-step, where the
longest trajectory of each iteration sets the pace of all), so the number of batch calls is about the number of
leapfrog steps of the busiest chain.

Examples
--------
A correlated normal distribution (its log density and gradient written out):

>>> import numpy as np
>>> cov = np.array([[1.0, 0.8], [0.8, 1.0]])
>>> prec = np.linalg.inv(cov)
>>> def log_density(x):               # x: (batch, 2)
...     g = -x @ prec
...     return 0.5 * np.sum(g * x, axis=1), g
>>> run = nuts(log_density, np.zeros((4, 2)), n_warmup=300, n_draws=500, seed=1)
>>> run.draws.shape
(4, 500, 2)
>>> bool(np.allclose(np.cov(run.draws.reshape(-1, 2).T), cov, atol=0.15))
True

References
----------
Hoffman MD, Gelman A (2014) The No-U-Turn sampler. J Mach Learn Res 15:1593-1623.
Betancourt M (2017) A conceptual introduction to Hamiltonian Monte Carlo. arXiv:1701.02434.
Stan Development Team, Stan Reference Manual: "MCMC sampling" (windowed adaptation, NUTS).
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["NutsRun", "nuts"]

_MAX_DELTA_H = 1000.0       # an energy error above this is a divergence (Stan's threshold)


@dataclass(frozen=True)
class NutsRun:
    """Result of :func:`nuts`.

    Attributes
    ----------
    draws : ndarray (n_chains, n_draws, d)
        Positions after warm-up.
    diverging : ndarray of bool (n_chains, n_draws)
        Whether the trajectory of each kept iteration diverged.
    num_steps : ndarray of int (n_chains, n_draws)
        Leapfrog steps (gradient evaluations) of each kept iteration.
    accept_stat : ndarray (n_chains, n_draws)
        Mean Metropolis acceptance probability over each kept trajectory.
    step_size : ndarray (n_chains,)
        Adapted step size per chain.
    inv_metric : ndarray (n_chains, d) or (n_chains, d, d)
        Adapted inverse mass matrix per chain, diagonal or dense (the posterior variances or covariance as warm-up
        estimated them).
    warmup_steps : int
        Leapfrog steps during warm-up (all chains).
    warmup_num_steps : ndarray of int (n_chains, n_warmup)
        Leapfrog steps of each warm-up iteration.
    batch_calls : int
        Calls of ``log_density`` (each with the positions of every chain then running).
    """

    draws: np.ndarray
    diverging: np.ndarray
    num_steps: np.ndarray
    accept_stat: np.ndarray
    step_size: np.ndarray
    inv_metric: np.ndarray
    warmup_steps: int
    batch_calls: int
    warmup_num_steps: np.ndarray = None


def nuts(log_density: Callable, init, *, n_warmup: int = 500, n_draws: int = 500, seed=None,
         target_accept: float = 0.8, max_tree_depth: int = 10, step_size: float = 1.0,
         dense_metric: bool = False, threads: int = 1, workers: int = 1) -> NutsRun:
    """Sample a density by NUTS with Stan's windowed adaptation, several chains served by batched evaluations.

    Parameters
    ----------
    log_density : callable
        ``log_density(x)`` with positions x (batch, d) returns the log density (batch,) and its gradient
        (batch, d); a non-finite value (outside the support, a failed solve) rejects the move. Called with the
        positions of the chains still running (batch <= n_chains).
    init : array (n_chains, d)
        Starting position of each chain (the log density must be finite there).
    n_warmup, n_draws : int
        Warm-up (adaptation) and kept iterations per chain.
    seed : int or numpy Generator, optional
        Reproducible runs (the same seed gives the same draws).
    target_accept : float
        Target mean acceptance probability of the step-size adaptation (0.8 as Stan; raise against divergences).
    max_tree_depth : int
        At most 2**max_tree_depth leapfrog steps per iteration.
    step_size : float
        First step size tried (then tuned by Stan's heuristic and the adaptation).
    dense_metric : bool
        Adapt a dense inverse mass matrix (the posterior covariance) instead of a diagonal one.
    threads : int
        The chains split into this many groups, each driven by its own thread (``log_density`` must then be
        thread-safe; it runs in parallel where it releases the GIL, as a compiled solve does). The draws do not
        depend on it when ``log_density`` evaluates each row on its own (each chain has its own random stream and
        sees only its own evaluations).
    workers : int
        The chains split into this many groups, each run in its own process (forked from this one on Linux, so
        ``log_density`` and what it holds are neither pickled nor rebuilt; elsewhere, where a fork without exec is
        unsafe or missing, one process runs them all): the cores work in parallel on the whole iteration, Python
        included, which threads cannot do. Each group is run as with ``threads=1``; the draws are the same for any
        number of workers under the same condition as for ``threads``. ``log_density`` must not rely on threads
        started before the fork (a JAX or XLA program, for one).

    Returns
    -------
    NutsRun

    Examples
    --------
    See the module.
    """
    init = np.atleast_2d(np.asarray(init, dtype=float))
    n_chains, d = init.shape
    if not (0.0 < target_accept < 1.0):
        raise ValueError(f"target_accept must lie in (0, 1); got {target_accept}")
    entropy = int(seed.integers(2 ** 63)) if isinstance(seed, np.random.Generator) else seed
    rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(entropy).spawn(n_chains)]
    out = _Output(n_chains, n_draws, int(n_warmup), d)
    chains = [_chain(c, init[c], rngs[c], int(n_warmup), int(n_draws), float(target_accept), int(max_tree_depth),
                     float(step_size), bool(dense_metric), out) for c in range(n_chains)]
    workers = max(1, int(workers))
    if workers > 1 and n_chains > 1 and sys.platform.startswith("linux"):
        groups = [list(range(n_chains))[k::workers] for k in range(min(workers, n_chains))]
        calls = _run_forked(log_density, chains, groups, d, out)
        return NutsRun(draws=out.draws, diverging=out.diverging, num_steps=out.num_steps, accept_stat=out.accept,
                       step_size=out.step_size, inv_metric=np.array(out.inv_metric),
                       warmup_steps=int(out.warmup_steps.sum()), batch_calls=int(sum(calls)),
                       warmup_num_steps=out.warmup_num_steps)
    groups = [list(range(n_chains))[k::max(1, int(threads))] for k in range(min(max(1, int(threads)), n_chains))]
    if len(groups) == 1:
        calls = [_drive(log_density, chains, groups[0], d)]
    else:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(len(groups)) as pool:
            calls = list(pool.map(lambda g: _drive(log_density, chains, g, d), groups))
    return NutsRun(draws=out.draws, diverging=out.diverging, num_steps=out.num_steps, accept_stat=out.accept,
                   step_size=out.step_size, inv_metric=np.array(out.inv_metric),
                   warmup_steps=int(out.warmup_steps.sum()), batch_calls=int(sum(calls)),
                   warmup_num_steps=out.warmup_num_steps)


def _drive(log_density, chains, members, d: int) -> int:
    """Run the chains ``members`` to the end, each batch call serving every one of them still running; returns the
    number of calls."""
    # the sampler's own arithmetic may overflow on a diverging trajectory (which it then rejects): quiet there,
    # not in log_density
    with np.errstate(over="ignore", invalid="ignore"):
        pending = {c: next(chains[c]) for c in members}
    calls = 0
    while pending:
        order = list(pending)
        x = np.stack([pending[c] for c in order])
        lp, grad = log_density(x)
        calls += 1
        lp = np.asarray(lp, dtype=float).reshape(len(order))
        grad = np.asarray(grad, dtype=float).reshape(len(order), d)
        with np.errstate(over="ignore", invalid="ignore"):
            for j, c in enumerate(order):
                try:
                    pending[c] = chains[c].send((float(lp[j]), grad[j]))
                except StopIteration:
                    del pending[c]
    return calls


def _run_forked(log_density, chains, groups, d: int, out: _Output) -> list[int]:
    """Run each group of chains after the first in a forked child process and the first here; the children send
    their chains' part of ``out`` back through a pipe. Returns the batch calls of each group."""
    import pickle
    import signal
    import warnings

    for stream in (sys.stdout, sys.stderr):     # nothing buffered before the fork is written twice
        try:
            stream.flush()
        except (AttributeError, ValueError, OSError):
            pass
    children = []
    try:
        for members in groups[1:]:
            r, w = os.pipe()
            with warnings.catch_warnings():
                # JAX warns at every fork once imported (its threads do not survive one); the child runs only
                # log_density, which must not use them (see ``workers``)
                warnings.filterwarnings("ignore", message=r"os\.fork\(\) was called", category=RuntimeWarning)
                pid = os.fork()
            if pid == 0:                                                    # the child
                status = 0
                try:
                    os.close(r)
                    try:
                        payload = ("ok", _drive(log_density, chains, members, d), out.part(members))
                    except BaseException as err:                            # handed to the parent, raised there
                        payload = ("error", err)
                    try:
                        data = pickle.dumps(payload)
                    except Exception:
                        data = pickle.dumps(("error", RuntimeError(repr(payload[1]))))
                    with os.fdopen(w, "wb") as f:
                        f.write(data)
                except BaseException:
                    status = 1
                finally:
                    os._exit(status)
            os.close(w)
            children.append((pid, r, members))
        calls = [_drive(log_density, chains, groups[0], d)]
    except BaseException:
        for pid, r, _ in children:
            os.kill(pid, signal.SIGKILL)
            os.close(r)
            os.waitpid(pid, 0)
        raise
    error = None
    for pid, r, members in children:
        with os.fdopen(r, "rb") as f:
            data = f.read()
        os.waitpid(pid, 0)
        payload = pickle.loads(data) if data else ("error", RuntimeError("a NUTS worker process died"))
        if payload[0] == "ok":
            calls.append(payload[1])
            out.fill(members, payload[2])
        elif error is None:
            error = payload[1]
    if error is not None:
        raise error
    return calls


class _Output:
    _FIELDS = ("draws", "diverging", "num_steps", "accept", "step_size", "warmup_steps", "warmup_num_steps")

    def part(self, members) -> dict:
        """The outputs of the chains ``members``."""
        out = {name: getattr(self, name)[members] for name in self._FIELDS}
        out["inv_metric"] = [self.inv_metric[c] for c in members]
        return out

    def fill(self, members, part: dict) -> None:
        for name in self._FIELDS:
            getattr(self, name)[members] = part[name]
        for c, m in zip(members, part["inv_metric"]):
            self.inv_metric[c] = m

    def __init__(self, n_chains, n_draws, n_warmup, d):
        self.draws = np.zeros((n_chains, n_draws, d))
        self.diverging = np.zeros((n_chains, n_draws), dtype=bool)
        self.num_steps = np.zeros((n_chains, n_draws), dtype=np.int64)
        self.accept = np.zeros((n_chains, n_draws))
        self.step_size = np.zeros(n_chains)
        self.inv_metric = [None] * n_chains
        self.warmup_steps = np.zeros(n_chains, dtype=np.int64)
        self.warmup_num_steps = np.zeros((n_chains, n_warmup), dtype=np.int64)


@dataclass
class _State:
    """A point of phase space: position, momentum, log density and its gradient."""

    q: np.ndarray
    p: np.ndarray
    lp: float
    grad: np.ndarray


def _windows(n_warmup: int) -> tuple[int, int, list[int]]:
    """Stan's warm-up plan: (initial buffer, terminal buffer, ends of the metric windows)."""
    init, term, base = 75, 50, 25
    if n_warmup < 20:
        return n_warmup, 0, []
    if init + term + base > n_warmup:
        init, term = int(0.15 * n_warmup), int(0.1 * n_warmup)
        base = n_warmup - init - term
    ends, start, size = [], init, base
    last = n_warmup - term
    while True:
        end = start + size
        if end + 2 * size > last:
            ends.append(last)
            return init, term, ends
        ends.append(end)
        start, size = end, 2 * size


class _DualAveraging:
    """Stan's step-size adaptation (Nesterov dual averaging; gamma 0.05, t0 10, kappa 0.75)."""

    def __init__(self, step: float, target: float):
        self.target = target
        self.restart(step)

    def restart(self, step: float):
        self.mu = math.log(10.0 * step)
        self.s_bar = self.x_bar = 0.0
        self.counter = 0

    def update(self, accept: float) -> float:
        self.counter += 1
        accept = min(1.0, accept)
        eta = 1.0 / (self.counter + 10.0)
        self.s_bar = (1.0 - eta) * self.s_bar + eta * (self.target - accept)
        x = self.mu - self.s_bar * math.sqrt(self.counter) / 0.05
        w = self.counter ** -0.75
        self.x_bar = (1.0 - w) * self.x_bar + w * x
        return math.exp(x)

    def final(self) -> float:
        return math.exp(self.x_bar)


def _chain(c, q0, rng, n_warmup, n_draws, target, max_depth, step, dense, out):
    """One chain (a generator: yields positions, receives (log density, gradient))."""
    lp, grad = yield q0.copy()
    if not math.isfinite(lp):
        raise FloatingPointError(f"chain {c}: the log density is not finite at the starting position")
    metric = _Metric(np.eye(q0.size) if dense else np.ones(q0.size))
    z = _State(q0.copy(), np.zeros(q0.size), lp, grad)
    step = yield from _initial_step(z, step, metric, rng)
    adapt = _DualAveraging(step, target)
    init_buffer, _, ends = _windows(n_warmup)
    window = []
    starts = [init_buffer] + ends[:-1]
    for it in range(n_warmup + n_draws):
        z, accept, n_steps, diverged = yield from _transition(z, step, metric, max_depth, rng)
        if it < n_warmup:
            out.warmup_steps[c] += n_steps
            out.warmup_num_steps[c, it] = n_steps
            step = adapt.update(accept)
            if ends and starts[0] <= it < ends[0]:
                window.append(z.q.copy())
            if ends and it == ends[0] - 1:
                metric = _Metric.from_window(np.array(window).reshape(-1, q0.size), dense)
                window = []
                starts.pop(0)
                ends.pop(0)
                step = yield from _initial_step(z, step, metric, rng)
                adapt.restart(step)
            if it == n_warmup - 1:
                step = adapt.final()
        else:
            k = it - n_warmup
            out.draws[c, k] = z.q
            out.diverging[c, k] = diverged
            out.num_steps[c, k] = n_steps
            out.accept[c, k] = accept
    out.step_size[c] = step
    out.inv_metric[c] = metric.inv


class _Metric:
    """The inverse mass matrix: a vector (diagonal) or a matrix (dense); momenta are drawn from N(0, its inverse)."""

    def __init__(self, inv: np.ndarray):
        self.inv = inv
        self.dense = inv.ndim == 2
        if self.dense:      # inv = L L': p = L^-T xi has covariance (L L')^-1
            self.draw_matrix = np.linalg.inv(np.linalg.cholesky(inv)).T
        else:
            self.root = np.sqrt(inv)

    def sharp(self, p: np.ndarray) -> np.ndarray:
        return self.inv @ p if self.dense else self.inv * p

    def draw(self, rng, d: int) -> np.ndarray:
        xi = rng.standard_normal(d)
        return self.draw_matrix @ xi if self.dense else xi / self.root

    @staticmethod
    def from_window(draws: np.ndarray, dense: bool) -> _Metric:
        """Stan's regularised estimate from the draws of one adaptation window."""
        n, d = draws.shape
        if dense:
            cov = np.cov(draws.T).reshape(d, d) if n > 1 else np.eye(d)
            return _Metric((n / (n + 5.0)) * cov + 1e-3 * (5.0 / (n + 5.0)) * np.eye(d))
        var = draws.var(axis=0, ddof=1) if n > 1 else np.ones(d)
        return _Metric((n / (n + 5.0)) * var + 1e-3 * (5.0 / (n + 5.0)))


def _leapfrog(z: _State, eps: float, metric: _Metric):
    p = z.p + 0.5 * eps * z.grad
    q = z.q + eps * metric.sharp(p)
    lp, grad = yield q
    p = p + 0.5 * eps * grad
    return _State(q, p, lp, grad)


def _hamiltonian(z: _State, metric: _Metric) -> float:
    h = -z.lp + 0.5 * float(np.dot(z.p, metric.sharp(z.p)))
    return h if math.isfinite(h) else math.inf


def _initial_step(z: _State, step: float, metric: _Metric, rng):
    """Stan's heuristic: double or halve the step until one leapfrog step's acceptance crosses 0.8."""
    z = _State(z.q, z.p, z.lp, z.grad)
    direction = 0
    for _ in range(100):
        z.p = metric.draw(rng, z.q.size)
        h0 = _hamiltonian(z, metric)
        z1 = yield from _leapfrog(z, step, metric)
        delta = h0 - _hamiltonian(z1, metric)
        here = 1 if delta > math.log(0.8) else -1
        if direction == 0:
            direction = here
        if here != direction:
            break
        step = step * 2.0 if direction == 1 else step * 0.5
        if step > 1e7 or step < 1e-12:
            break
    return step


def _uturn_free(p_sharp_minus, p_sharp_plus, rho) -> bool:
    return float(np.dot(p_sharp_plus, rho)) > 0.0 and float(np.dot(p_sharp_minus, rho)) > 0.0


def _logaddexp(a: float, b: float) -> float:
    if a == -math.inf:
        return b
    if b == -math.inf:
        return a
    m = max(a, b)
    return m + math.log1p(math.exp(-abs(a - b)))


class _Tree:
    """A built subtree: its far end (to extend from), the state proposed from it, and its bookkeeping."""

    __slots__ = ("end", "propose", "p_sharp_beg", "p_sharp_end", "p_beg", "p_end", "rho", "log_weight",
                 "n_steps", "sum_accept", "valid", "diverged")


def _build(z: _State, depth: int, eps: float, metric: _Metric, h0: float, rng):
    """Stan's recursive tree building from z (eps carries the direction): a generator returning a _Tree."""
    t = _Tree()
    if depth == 0:
        z1 = yield from _leapfrog(z, eps, metric)
        p_sharp = metric.sharp(z1.p)
        h = -z1.lp + 0.5 * float(np.dot(z1.p, p_sharp))       # _hamiltonian, the sharp momentum kept
        if not math.isfinite(h):
            h = math.inf
        t.end = t.propose = z1
        t.n_steps = 1
        t.diverged = h - h0 > _MAX_DELTA_H
        t.valid = not t.diverged
        t.log_weight = h0 - h if math.isfinite(h) else -math.inf
        t.sum_accept = 1.0 if h0 - h > 0 else (math.exp(h0 - h) if math.isfinite(h) else 0.0)
        t.p_sharp_beg = t.p_sharp_end = p_sharp
        t.rho = z1.p
        t.p_beg = t.p_end = z1.p
        return t
    first = yield from _build(z, depth - 1, eps, metric, h0, rng)
    if not first.valid:
        return first
    second = yield from _build(first.end, depth - 1, eps, metric, h0, rng)
    t.end = second.end
    t.n_steps = first.n_steps + second.n_steps
    t.sum_accept = first.sum_accept + second.sum_accept
    t.diverged = second.diverged
    if not second.valid:
        t.valid = False
        return t
    t.log_weight = _logaddexp(first.log_weight, second.log_weight)
    # multinomial choice within the subtree: the second half with probability its share of the weight
    t.propose = second.propose if rng.random() < math.exp(second.log_weight - t.log_weight) else first.propose
    t.rho = first.rho + second.rho
    t.p_sharp_beg, t.p_sharp_end = first.p_sharp_beg, second.p_sharp_end
    t.p_beg, t.p_end = first.p_beg, second.p_end
    t.valid = (_uturn_free(first.p_sharp_beg, second.p_sharp_end, t.rho)
               and _uturn_free(first.p_sharp_beg, second.p_sharp_beg, first.rho + second.p_beg)
               and _uturn_free(first.p_sharp_end, second.p_sharp_end, second.rho + first.p_end))
    return t


def _transition(z: _State, step: float, metric: _Metric, max_depth: int, rng):
    """One NUTS iteration from z: (next state, mean acceptance, leapfrog steps, diverged)."""
    p = metric.draw(rng, z.q.size)
    z = _State(z.q, p, z.lp, z.grad)
    h0 = _hamiltonian(z, metric)
    fwd = bck = z
    p_sharp = metric.sharp(p)
    # the trajectory's ends: momenta and sharp momenta at the backward and forward ends, the sum of momenta
    p_sharp_bck_bck = p_sharp_fwd_fwd = p_sharp
    p_bck_bck = p_fwd_fwd = p
    rho = p.copy()
    log_weight = 0.0
    sample = z
    n_steps, sum_accept, diverged = 0, 0.0, False
    for depth in range(max_depth):
        if rng.random() < 0.5:
            t = yield from _build(fwd, depth, step, metric, h0, rng)
            fwd = t.end
            forward = True
        else:
            t = yield from _build(bck, depth, -step, metric, h0, rng)
            bck = t.end
            forward = False
        n_steps += t.n_steps
        sum_accept += t.sum_accept
        if not t.valid:
            diverged = t.diverged
            break
        # biased progressive sampling: move to the new subtree with probability min(1, its weight / the old one's)
        if t.log_weight > log_weight or rng.random() < math.exp(t.log_weight - log_weight):
            sample = t.propose
        log_weight = _logaddexp(log_weight, t.log_weight)
        if forward:
            # left: the old trajectory, right: the new subtree (built forwards, its beginning next to the old end)
            rho_bck, rho_fwd = rho, t.rho
            inner_left_sharp, inner_left_p = p_sharp_fwd_fwd, p_fwd_fwd
            inner_right_sharp, inner_right_p = t.p_sharp_beg, t.p_beg
            p_sharp_fwd_fwd, p_fwd_fwd = t.p_sharp_end, t.p_end
        else:
            # left: the new subtree (built backwards, its beginning next to the old trajectory), right: the old one
            rho_bck, rho_fwd = t.rho, rho
            inner_left_sharp, inner_left_p = t.p_sharp_beg, t.p_beg
            inner_right_sharp, inner_right_p = p_sharp_bck_bck, p_bck_bck
            p_sharp_bck_bck, p_bck_bck = t.p_sharp_end, t.p_end
        # no U-turn over the whole trajectory, nor over each part extended by the nearest state of the other
        ok = (_uturn_free(p_sharp_bck_bck, p_sharp_fwd_fwd, rho_bck + rho_fwd)
              and _uturn_free(p_sharp_bck_bck, inner_right_sharp, rho_bck + inner_right_p)
              and _uturn_free(inner_left_sharp, p_sharp_fwd_fwd, rho_fwd + inner_left_p))
        rho = rho_bck + rho_fwd
        if not ok:
            break
    return sample, sum_accept / max(n_steps, 1), n_steps, diverged
