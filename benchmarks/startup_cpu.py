"""CPU time of a later process's set-up, this checkout against another one (before/after a change), alternating.

Wall-clock start-up figures (``benchmarks/startup.py``) swing by a factor of several on a loaded machine; the CPU
time a process uses (user + system) barely moves, so two checkouts can be compared fairly even while other work
runs. Each measurement is a new process that imports pkpd, loads ``benchmarks/models/msc_reference.toml``, gets it
compiled (cached: the "later" state) and simulates 2 subjects, as ``benchmarks/startup.py`` does; the runs alternate
between the two checkouts. Prints one JSON line per checkout with the median CPU seconds of the whole process and
of its pkpd parts (process_time inside the process).

Usage: python benchmarks/startup_cpu.py --other /path/to/other/checkout [--runs 15] [--engine native]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "benchmarks/models/msc_reference.toml"

PROBE = r"""
import json, sys, time
c0 = time.process_time()
import numpy as np
c1 = time.process_time()
import pkpd
model = pkpd.load_model(sys.argv[1])
c2 = time.process_time()
cm = pkpd.compile_model(model, sys.argv[2])
c3 = time.process_time()
sim = pkpd.simulate(cm, pkpd.Regimen.single(pkpd.Dose(1.4e8, "cell")), np.arange(0.0, 337.0),
                    params={"k_c": np.array([0.0289, 0.035])}, settings=pkpd.SolverSettings(rtol=1e-6, atol=1e-9))
c4 = time.process_time()
print(json.dumps(dict(numpy=c1 - c0, import_and_load=c2 - c1, compile_model=c3 - c2, first_simulate=c4 - c3)))
"""


def run_once(checkout: Path, cache: Path, engine: str) -> dict:
    env = dict(os.environ, PYTHONPATH=str(checkout), PKPD_CACHE_DIR=str(cache))
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # users' processes read compiled bytecode
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run([sys.executable, "-c", PROBE, str(MODEL), engine], env=env, check=True, capture_output=True,
                         text=True, cwd=tempfile.gettempdir()).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    row = json.loads(out.strip().splitlines()[-1])
    row["process_cpu"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return row


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--other", required=True, type=Path, help="the other checkout (e.g. a git worktree of main)")
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--engine", default="native")
    args = ap.parse_args(argv)
    checkouts = {"this": ROOT, "other": args.other.resolve()}
    with tempfile.TemporaryDirectory() as tmp:
        caches = {k: Path(tmp) / k for k in checkouts}
        for k, path in checkouts.items():  # fill each cache: the later state
            run_once(path, caches[k], args.engine)
        rows: dict[str, list[dict]] = {k: [] for k in checkouts}
        for _ in range(args.runs):
            for k, path in checkouts.items():
                rows[k].append(run_once(path, caches[k], args.engine))
    for k, path in checkouts.items():
        summary = {key: round(statistics.median(r[key] for r in rows[k]), 4) for key in rows[k][0]}
        print(json.dumps(dict(checkout=k, path=str(path), engine=args.engine, runs=args.runs, cpu_seconds=summary)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
