"""pkpd against the tools users would otherwise pick, on the shared population job (issue 8).

The job (``benchmarks/models/msc_reference.toml``, equations and values exactly as in the peers'
``docs/reference_model.md``): N subjects, log-normal IIV (omega 0.3) on k_c, s_p, EC50, k_i (subject 0 typical), one IV
bolus of 1.4e8 cells at t = 0, 0-336 h hourly (337 points), all 4 states kept in memory, rtol 1e-6 / atol 1e-9.
Accuracy: max relative error of subject 0 against ``tests/data/peers/typical_subject.csv`` (Radau, rtol 1e-12).

A second job (``--job tmdd``) is the stiff one: ``models/tmdd.toml`` (full TMDD, Mager & Jusko 2001), N subjects with
log-normal IIV (omega 0.3) on kel, kon, ksyn, kint, one 700 mg IV bolus, 0-672 h every 2 h (337 points), all 3
states, rtol 1e-6 / atol 1e-9; accuracy of subject 0 against scipy Radau at rtol 1e-12. Peers: JAX + diffrax
Kvaerno5 (implicit, the stiff choice) and Tsit5.

Each tool prints one JSON line per N: seconds (median of 5 timed runs after a warm-up call), setup_seconds (model
load + compilation or cache load + the warm-up call), subjects_per_s, max_rel_err_typical. The peers are our own
code written the way an expert would (same subjects, tolerances and outputs); they run only when installed
(``pip install -e .[bench]``: jax, diffrax, numbalsoda).

Tool ``pkpd`` is the default engine (native C where a C compiler is found); ``pkpd-numba`` is the numba engine.
Set-up figures depend on the on-disk cache: run once with an empty ``PKPD_CACHE_DIR`` for the first-process figure,
then again for later processes (``benchmarks/startup.py`` measures both in fresh processes).

Usage: python benchmarks/peers.py [--job msc|tmdd] [--tools pkpd,pkpd-numba,diffrax-tsit5,diffrax-kvaerno5,numbalsoda]
       [N ...]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SEED = 20261123
OMEGA = 0.3
RTOL, ATOL = 1e-6, 1e-9

MSC_NAMES = ["k_c", "f_lung", "s_p", "V_p", "k_p", "k_in_p", "EC50", "h", "k_on", "k_off", "k_in_i", "k_i", "e_max"]
MSC_TYPICAL = dict(k_c=np.log(2) / 24, f_lung=0.85, s_p=2.0e-3, V_p=1000.0, k_p=2.0, k_in_p=20.0, EC50=350.0, h=1.5,
                   k_on=0.2, k_off=0.05, k_in_i=1.4, k_i=0.28, e_max=20.0)
MSC_IIV = ("k_c", "s_p", "EC50", "k_i")
MSC_DOSE = 2e6 * 70
TMDD_IIV = ("kel", "kon", "ksyn", "kint")
TMDD_DOSE_MG = 700.0


def report(tool, job, n, seconds, setup, err, **extra):
    print(json.dumps(dict(tool=tool, job=job, N=n, seconds=round(seconds, 4), setup_seconds=round(setup, 3),
                          subjects_per_s=round(n / seconds, 1), max_rel_err_typical=float(f"{err:.3g}"), **extra)),
          flush=True)


def _reason(err: Exception) -> str:
    lines = [ln.strip() for ln in str(err).splitlines() if ln.strip() and not ln.strip().startswith("---")]
    useful = [ln for ln in lines if "step" in ln.lower()] or lines or [type(err).__name__]
    return useful[-1][:200]


def timed(fn, repeats=5):
    runs = []
    out = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        runs.append(time.perf_counter() - t0)
    return statistics.median(runs), runs, out


def max_rel(y, ref):
    mask = np.abs(ref) > 1e-12 * np.max(np.abs(ref))
    return float(np.max(np.abs(y - ref)[mask] / np.abs(ref)[mask]))


# ---------------------------------------------------------------------------------------------------------- jobs
class MscJob:
    name = "msc"
    t_out = np.arange(0.0, 337.0)
    states = ("C", "P", "R", "I")

    def __init__(self):
        self.ref = np.loadtxt(ROOT / "tests/data/peers/typical_subject.csv", delimiter=",", skiprows=1)[:, 1:]

    def subjects(self, n):
        """(n, 13) parameters in MSC_NAMES order; the same draws as the shared peers' common.subjects()."""
        p = np.tile([MSC_TYPICAL[k] for k in MSC_NAMES], (n, 1))
        eta = np.random.default_rng(SEED).standard_normal((n, len(MSC_IIV))) * OMEGA
        eta[0] = 0.0
        for j, k in enumerate(MSC_IIV):
            p[:, MSC_NAMES.index(k)] *= np.exp(eta[:, j])
        return p

    def y0(self, P):
        k_c, f_lung, s_p, V_p, k_p, k_in_p, EC50, h, k_on, k_off, k_in_i, k_i, e_max = P.T
        P0 = k_in_p / k_p
        E0 = P0**h / (EC50**h + P0**h)
        R0 = k_on * E0 / (k_on * E0 + k_off)
        return np.stack([f_lung * MSC_DOSE, P0, R0, k_in_i * (1 + e_max * R0) / k_i], axis=1)

    def pkpd_inputs(self, model, n):
        P = self.subjects(n)
        return {k: P[:, MSC_NAMES.index(k)] for k in MSC_IIV}, {}

    def model_path(self):
        return ROOT / "benchmarks/models/msc_reference.toml"

    def regimen(self, pkpd):
        return pkpd.Regimen.single(pkpd.Dose(MSC_DOSE, "cell"))

    def jax_rhs(self):
        import jax.numpy as jnp

        def rhs(t, y, p):
            C, P, R, I = y
            k_c, f_lung, s_p, V_p, k_p, k_in_p, EC50, h, k_on, k_off, k_in_i, k_i, e_max = p
            E = P**h / (EC50**h + P**h)
            return jnp.stack([-k_c * C, k_in_p + s_p * C / V_p - k_p * P, k_on * E * (1 - R) - k_off * R,
                              k_in_i * (1 + e_max * R) - k_i * I])

        return rhs

    def jax_inputs(self, n):
        P = self.subjects(n)
        return P, self.y0(P)


class TmddJob:
    name = "tmdd"
    t_out = np.arange(0.0, 673.0, 2.0)
    states = ("L", "R", "RL")

    def __init__(self):
        import pkpd

        self.model = pkpd.load_model("tmdd")
        self.p = {q.name: q.value for q in self.model.parameters}
        self.ref = self._reference()

    def _dose_conc(self):
        return TMDD_DOSE_MG * 1e-3 / self.p["MW"] * 1e9 / self.p["V"]  # nmol/L

    def _reference(self):
        from scipy.integrate import solve_ivp

        p = self.p

        def rhs(t, y):
            L, R, RL = y
            bind = p["kon"] * L * R - p["koff"] * RL
            return [-p["kel"] * L - bind, p["ksyn"] - p["kdeg"] * R - bind, bind - p["kint"] * RL]

        sol = solve_ivp(rhs, (0, self.t_out[-1]), [self._dose_conc(), p["ksyn"] / p["kdeg"], 0.0], method="Radau",
                        t_eval=self.t_out, rtol=1e-12, atol=1e-14)
        return sol.y.T

    def subjects(self, n):
        names = ["kel", "kon", "koff", "kint", "ksyn", "kdeg"]
        P = np.tile([self.p[k] for k in names], (n, 1))
        eta = np.random.default_rng(SEED).standard_normal((n, len(TMDD_IIV))) * OMEGA
        eta[0] = 0.0
        for j, k in enumerate(TMDD_IIV):
            P[:, names.index(k)] *= np.exp(eta[:, j])
        return P

    def pkpd_inputs(self, model, n):
        P = self.subjects(n)
        names = ["kel", "kon", "koff", "kint", "ksyn", "kdeg"]
        return {k: P[:, names.index(k)] for k in TMDD_IIV}, {}

    def model_path(self):
        return "tmdd"

    def regimen(self, pkpd):
        return pkpd.Regimen.single(pkpd.Dose(TMDD_DOSE_MG, "mg"))

    def jax_rhs(self):
        import jax.numpy as jnp

        def rhs(t, y, p):
            L, R, RL = y
            kel, kon, koff, kint, ksyn, kdeg = p
            bind = kon * L * R - koff * RL
            return jnp.stack([-kel * L - bind, ksyn - kdeg * R - bind, bind - kint * RL])

        return rhs

    def jax_inputs(self, n):
        P = self.subjects(n)
        y0 = np.stack([np.full(n, self._dose_conc()), P[:, 4] / P[:, 5], np.zeros(n)], axis=1)
        return P, y0


# ---------------------------------------------------------------------------------------------------------- tools
def run_pkpd(job, sizes, engine=None):
    t0 = time.perf_counter()
    import pkpd

    model = pkpd.load_model(job.model_path())
    compiled = pkpd.compile_model(model, engine)
    settings = pkpd.SolverSettings(rtol=RTOL, atol=ATOL)
    regimen = job.regimen(pkpd)
    params, covs = job.pkpd_inputs(model, 2)
    pkpd.simulate(compiled, regimen, job.t_out, params=params, covariates=covs, settings=settings, outputs=False)
    setup = time.perf_counter() - t0
    for n in sizes:
        params, covs = job.pkpd_inputs(model, n)
        sim = pkpd.simulate(compiled, regimen, job.t_out, params=params, covariates=covs, settings=settings,
                            outputs=False)
        sec, runs, sim = timed(lambda: pkpd.simulate(compiled, regimen, job.t_out, params=params,
                                                     covariates=covs, settings=settings, outputs=False))
        y = np.stack([sim.states[s][0] for s in job.states], axis=1)
        from pkpd.compile import native_compiler_version

        if compiled.engine == "numba":
            engine_name = f"numba {__import__('numba').__version__}"
        else:
            engine_name = f"native C, {native_compiler_version()}"
        report(f"pkpd {pkpd.__version__} ({engine_name}, {os.cpu_count()} cores)", job.name,
               n, sec, setup, max_rel(y, job.ref), runs=[round(r, 4) for r in runs],
               mean_steps=round(float(sim.n_steps.mean()), 1), all_states_in_memory=True)


def run_diffrax(job, sizes, solver_name):
    try:
        import diffrax as dfx
        import jax
    except ImportError:
        print(json.dumps({"tool": f"diffrax {solver_name}", "skipped": "jax/diffrax not installed"}), flush=True)
        return
    jax.config.update("jax_enable_x64", True)
    rhs = job.jax_rhs()
    ts = jax.numpy.asarray(job.t_out)
    solver = {"Tsit5": dfx.Tsit5, "Kvaerno5": dfx.Kvaerno5}[solver_name]()

    def one(p, y_init):
        sol = dfx.diffeqsolve(dfx.ODETerm(rhs), solver, float(job.t_out[0]), float(job.t_out[-1]), None, y_init,
                              args=p, saveat=dfx.SaveAt(ts=ts),
                              stepsize_controller=dfx.PIDController(rtol=RTOL, atol=ATOL), max_steps=200_000)
        return sol.ys

    for n in sizes:
        P, Y0 = job.jax_inputs(n)
        t0 = time.perf_counter()
        f = jax.jit(jax.vmap(one))
        Pd, Yd = jax.device_put(P), jax.device_put(Y0)
        try:
            f(Pd, Yd).block_until_ready()
        except Exception as err:  # e.g. an explicit method on a stiff job runs out of steps
            print(json.dumps({"tool": f"jax {jax.__version__} + diffrax {dfx.__version__} vmap {solver_name}",
                              "job": job.name, "N": n, "failed": _reason(err)}),
                  flush=True)
            return
        setup = time.perf_counter() - t0
        # like pkpd, the result is delivered as a numpy array in host memory
        sec, runs, out = timed(lambda: np.asarray(f(Pd, Yd)))
        # also the solve alone, results left on the device (how JAX is usually timed; a GPU's figure differs most)
        on_device, _, _ = timed(lambda: f(Pd, Yd).block_until_ready())
        report(f"jax {jax.__version__} + diffrax {dfx.__version__} vmap {solver_name} "
               f"({jax.devices()[0].platform})", job.name, n, sec, setup, max_rel(out[0], job.ref),
               runs=[round(r, 4) for r in runs], seconds_on_device=round(on_device, 4))


def run_numbalsoda(job, sizes):
    if job.name != "msc":
        return
    try:
        from numba import cfunc, njit
        from numbalsoda import lsoda, lsoda_sig
    except ImportError:
        print(json.dumps({"tool": "numbalsoda", "skipped": "numbalsoda not installed"}), flush=True)
        return
    t0 = time.perf_counter()

    @cfunc(lsoda_sig)
    def rhs(t, y, dy, p):
        E = y[1] ** p[7] / (p[6] ** p[7] + y[1] ** p[7])
        dy[0] = -p[0] * y[0]
        dy[1] = p[5] + p[2] * y[0] / p[3] - p[4] * y[1]
        dy[2] = p[8] * E * (1.0 - y[2]) - p[9] * y[2]
        dy[3] = p[10] * (1.0 + p[12] * y[2]) - p[11] * y[3]

    @njit
    def run(fptr, P, Y0, t_eval, out):
        ok = True
        for i in range(P.shape[0]):
            sol, success = lsoda(fptr, Y0[i], t_eval, data=P[i], rtol=RTOL, atol=ATOL)
            out[i] = sol
            ok &= success
        return ok

    P, Y0 = job.jax_inputs(2)
    run(rhs.address, P, Y0, job.t_out, np.empty((2, job.t_out.size, 4)))
    setup = time.perf_counter() - t0
    for n in sizes:
        P, Y0 = job.jax_inputs(n)

        def go():
            out = np.empty((n, job.t_out.size, 4))
            run(rhs.address, P, Y0, job.t_out, out)
            return out

        sec, runs, out = timed(go)
        report("numbalsoda LSODA + numba njit loop (1 core)", job.name, n, sec, setup, max_rel(out[0], job.ref),
               runs=[round(r, 4) for r in runs])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--job", choices=("msc", "tmdd"), default="msc")
    ap.add_argument("--tools", default="pkpd,diffrax-tsit5,diffrax-kvaerno5,numbalsoda")
    ap.add_argument("sizes", nargs="*", type=int)
    args = ap.parse_args(argv)
    sizes = args.sizes or [1000, 10000]
    job = MscJob() if args.job == "msc" else TmddJob()
    tools = args.tools.split(",")
    if "pkpd" in tools:
        run_pkpd(job, sizes)
    if "pkpd-numba" in tools:
        run_pkpd(job, sizes, "numba")
    if "numbalsoda" in tools:
        run_numbalsoda(job, sizes)
    if "diffrax-tsit5" in tools:
        run_diffrax(job, sizes, "Tsit5")
    if "diffrax-kvaerno5" in tools:
        run_diffrax(job, sizes, "Kvaerno5")


if __name__ == "__main__":
    sys.exit(main())
