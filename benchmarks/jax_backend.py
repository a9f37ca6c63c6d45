"""pkpd's JAX backend on the shared population job (issue 9): ``pkpd.simulate(..., backend="jax")``.

The job is the one of ``benchmarks/peers.py`` (set up by its ``MscJob``, so the subjects are the same draws):
``benchmarks/models/msc_reference.toml``, N subjects with log-normal IIV (omega 0.3) on k_c, s_p, EC50, k_i (subject 0
typical), one IV bolus of 1.4e8 cells at t = 0, 0-336 h hourly (337 points), all 4 states returned in host memory
(outputs dropped, as in peers.py), rtol 1e-6 / atol 1e-9, method "auto".

Prints one JSON line per N: tool, device (what jax.devices()[0] is), N, seconds (median of 5 calls after the first),
setup_seconds (the first call of that N, including XLA's compilation or its load from the disk cache),
max_rel_err_typical (subject 0 against ``tests/data/peers/typical_subject.csv``, Radau at rtol 1e-12), runs,
mean_steps, seconds_on_device (the solve alone, results left on the device, as JAX peers are usually timed).
``--with-numba`` adds pkpd's default CPU engine on the same machine for comparison.

Usage::

    python benchmarks/jax_backend.py                 # N = 1000 and 10000 on the default JAX device
    python benchmarks/jax_backend.py --n 1000000     # the issue's GPU target: 10^6 subjects in <= 0.5 s
    python benchmarks/jax_backend.py --with-numba 1000 10000

On a machine with an NVIDIA GPU, install a CUDA build of jax first (``pip install -e ".[gpu]" "jax[cuda12]"``).
10^6 subjects hold 10.8 GB of states (float64) on the device and in host memory.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peers import ATOL, RTOL, MscJob, max_rel, run_pkpd, timed  # noqa: E402


def device_name() -> str:
    import jax

    d = jax.devices()[0]
    kind = getattr(d, "device_kind", "") or ""
    if d.platform == "cpu":
        return f"cpu ({kind or 'host'}, {os.cpu_count()} cores)"
    return f"{d.platform}: {kind} ({len(jax.devices())} device(s))"


def run_jax(job: MscJob, sizes: list[int]) -> None:
    import jax

    import pkpd

    model = pkpd.load_model(job.model_path())
    compiled = pkpd.compile_model(model)
    settings = pkpd.SolverSettings(rtol=RTOL, atol=ATOL)
    regimen = job.regimen(pkpd)
    for n in sizes:
        params, covs = job.pkpd_inputs(model, n)

        def call():
            return pkpd.simulate(compiled, regimen, job.t_out, params=params, covariates=covs, settings=settings,
                                 outputs=False, backend="jax")

        t0 = time.perf_counter()
        call()
        setup = time.perf_counter() - t0
        sec, runs, sim = timed(call)
        y = np.stack([sim.states[s][0] for s in job.states], axis=1)
        on_device = on_device_seconds(call)
        print(json.dumps(dict(
            tool=f"pkpd {pkpd.__version__} backend=jax (jax {jax.__version__})", job=job.name,
            device=device_name(), N=n, seconds=round(sec, 4), setup_seconds=round(setup, 3),
            subjects_per_s=round(n / sec, 1), max_rel_err_typical=float(f"{max_rel(y, job.ref):.3g}"),
            runs=[round(r, 4) for r in runs], mean_steps=round(float(sim.n_steps.mean()), 1),
            failed=int(np.count_nonzero(sim.status)), seconds_on_device=round(on_device, 4))), flush=True)


def on_device_seconds(call) -> float:
    """Median seconds of the jitted solve alone, its results left on the device (no copy to host memory): the
    figure JAX peers usually quote (``block_until_ready``)."""
    import jax

    import pkpd.jax_backend as jb

    seen = {}
    prepare = jb._prepare

    def spy(*args, **kwargs):
        seen["program"] = prepare(*args, **kwargs)
        return seen["program"]

    jb._prepare = spy
    try:
        call()
    finally:
        jb._prepare = prepare
    prog, args = seen["program"]
    sec, _, _ = timed(lambda: jax.block_until_ready(prog(*args)))
    return sec


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sizes", nargs="*", type=int, help="numbers of subjects (default 1000 10000)")
    parser.add_argument("--n", type=int, action="append", default=[], help="another number of subjects")
    parser.add_argument("--with-numba", action="store_true", help="also time pkpd's default CPU engine")
    args = parser.parse_args(argv)
    sizes = args.sizes + args.n or [1000, 10000]
    job = MscJob()
    run_jax(job, sizes)
    if args.with_numba:
        run_pkpd(job, sizes)


if __name__ == "__main__":
    main()
