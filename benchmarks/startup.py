"""Set-up time of pkpd in fresh processes (issue 8): ``import pkpd``, and getting a model ready to simulate.

Each measurement is a new Python process (numpy already imported, as in any user script), timing:

* ``import pkpd`` alone (target <= 0.3 s);
* set-up, as ``benchmarks/peers.py`` counts it: ``import pkpd`` + ``load_model`` + ``compile_model`` + a first
  ``simulate`` of 2 subjects of the shared job, split into those parts.

Three cache states, per engine:

* ``cold``: an empty cache folder (a new machine: nothing compiled, pint's definitions unparsed);
* ``new model``: a changed model (new name, one equation changed) while pkpd has run before: its unit
  registry cache exists, the model's code and unit check do not (target <= 1 s);
* ``later``: the same model again (target <= 0.2 s).

Prints one JSON line per engine, cache state and process, then a summary line per engine and cache state
(median over the processes).

Usage: python benchmarks/startup.py [--engines native,numba] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PROBE = r"""
import json, sys, time
import numpy as np
t0 = time.perf_counter()
import pkpd
t1 = time.perf_counter()
model = pkpd.load_model(sys.argv[1])
t2 = time.perf_counter()
cm = pkpd.compile_model(model, sys.argv[2])
t3 = time.perf_counter()
params = {"k_c": np.array([0.0289, 0.035])}
sim = pkpd.simulate(cm, pkpd.Regimen.single(pkpd.Dose(1.4e8, "cell")), np.arange(0.0, 337.0), params=params,
                    settings=pkpd.SolverSettings(rtol=1e-6, atol=1e-9))
t4 = time.perf_counter()
assert sim.status.tolist() == [0, 0]
print(json.dumps(dict(import_pkpd=t1 - t0, load_model=t2 - t1, compile_model=t3 - t2, first_simulate=t4 - t3,
                      setup=t4 - t0, pint_imported="pint" in sys.modules, numba_imported="numba" in sys.modules)))
"""

IMPORT_ONLY = "import time, numpy; t0 = time.perf_counter(); import pkpd; print(time.perf_counter() - t0)"


def run(code: str, *args: str, cache: Path) -> str:
    env = dict(os.environ, PKPD_CACHE_DIR=str(cache))
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, check=True)
    return done.stdout.strip().splitlines()[-1]


def model_file(folder: Path, variant: int) -> Path:
    """The shared job's model renamed, with one equation changed: new code and a new unit check to compute."""
    text = (ROOT / "benchmarks/models/msc_reference.toml").read_text()
    path = folder / f"msc_reference_v{variant}.toml"
    text = text.replace('name = "msc_reference"', f'name = "msc_reference_v{variant}"')
    marker = "ddt = \""
    i = text.index(marker) + len(marker)
    path.write_text(text[:i] + f"(1 + {variant}e-9) * " + text[i:])
    return path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--engines", default="native,numba")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        imports = [float(run(IMPORT_ONLY, cache=tmp / "import")) for _ in range(args.repeats)]
        print(json.dumps(dict(what="import pkpd", seconds=round(statistics.median(imports), 4),
                              runs=[round(x, 4) for x in imports])))
        for engine in args.engines.split(","):
            rows: dict[str, list[dict]] = {"cold": [], "new model": [], "later": []}
            variant = 0
            for r in range(args.repeats if engine == "native" else 1):  # numba's cold compile takes ~15 s
                cache = tmp / f"{engine}_{r}"
                variant += 1
                rows["cold"].append(json.loads(run(PROBE, str(model_file(tmp, variant)), engine, cache=cache)))
                variant += 1
                path = model_file(tmp, variant)
                rows["new model"].append(json.loads(run(PROBE, str(path), engine, cache=cache)))
                if r == 0:
                    for _ in range(args.repeats):
                        rows["later"].append(json.loads(run(PROBE, str(path), engine, cache=cache)))
            for state, results in rows.items():
                for res in results:
                    print(json.dumps(dict(engine=engine, cache=state, **{k: round(v, 4) if isinstance(v, float)
                                                                           else v for k, v in res.items()})))
            for state, results in rows.items():
                summary = {k: round(statistics.median(r[k] for r in results), 4)
                           for k in ("setup", "import_pkpd", "load_model", "compile_model", "first_simulate")}
                print(json.dumps(dict(summary=True, engine=engine, cache=state, processes=len(results), **summary)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
