"""The compiled C code reads and writes only its own memory: the engine and estimation libraries built with
AddressSanitizer run a set of simulations and fits without a report.

A read one element past an array (a loop bound ``i <= N`` for ``i < N``) changes no result that a value test can
see when the memory past the array holds something harmless, so the mutation audit of the engine templates could
only list such mutants as open (issue 20; ``docs/testing.md``). Built with ``-fsanitize=address`` every heap and
stack array gets poisoned guard zones, and the first access to one stops the process with a report: the test fails
on such a bug whatever the numbers. Mutants seen to fail it, applied by hand: the LU pivot search reading one row
past the Rodas4 matrix (``pkpd/_native_template.py``, ``i <= N`` in the pivot loop: a heap-buffer-overflow in
``seg_rodas4``) and the jet sum of the compiled assembly writing one element past its output
(``pkpd/estimation/_assembly_template.py``, ``i <= D->S``: in ``assemble_worker``). Not seen: a write one past the
EBE search's Hessian (``l <= q``), whose array has room after it, and accesses inside one C struct, which the
sanitizer does not split.

The libraries are built in a fresh cache with ``CC="<compiler> -fsanitize=address"`` (the compiler string is part
of every library's cache key) and loaded into a Python process that preloads the sanitizer's runtime. Skipped
where there is no C compiler or no AddressSanitizer runtime (it comes with gcc and clang on Linux).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pkpd import _native

DATA = Path(__file__).resolve().parents[1] / "data"

SCRIPT = r'''
import sys
import numpy as np
import pandas as pd

import pkpd
from pkpd.dosing import Dose, Regimen
from pkpd.nonmem import read_nonmem, simulate_nonmem

oral = pkpd.load_model("pk_1cmt_oral")
reg = Regimen.every(12, count=3, dose=Dose(100, "mg"))
for method in ("tsit5", "rodas4"):
    pkpd.simulate(oral, reg, np.linspace(0, 48, 7), params={"CL": np.array([2.0, 3.0, 4.0])},
                  settings=pkpd.SolverSettings(method=method))
tmdd = pkpd.load_model("tmdd")    # stiff: Rodas4's LU on a 3 x 3 system
pkpd.simulate(tmdd, Regimen.single(Dose(100, tmdd.doses[0].unit)), [0.0, 1.0, 10.0, 100.0],
              settings=pkpd.SolverSettings(method="rodas4"))
# per-subject output times: subject 1 has none, subject 3 the most
rows = [dict(ID=1, TIME=0.0, EVID=1, AMT=100.0, DV=np.nan), dict(ID=1, TIME=24.0, EVID=2, AMT=0.0, DV=np.nan)]
for sid, times in ((2, [1.0, 6.0]), (3, [0.5, 2.0, 8.0, 24.0])):
    rows.append(dict(ID=sid, TIME=0.0, EVID=1, AMT=100.0, DV=np.nan))
    rows += [dict(ID=sid, TIME=t, EVID=0, AMT=0.0, DV=1.0) for t in times]
data = read_nonmem(pd.DataFrame(rows).assign(MDV=lambda d: d["DV"].isna().astype(int)), oral, dose_unit="mg")
for method in ("tsit5", "rodas4"):
    simulate_nonmem(oral, data, settings=pkpd.SolverSettings(method=method))
# the estimation library: EBE search, compiled assembly, FO's expected information
theo = read_nonmem(sys.argv[1], dose_unit="mg")
for method in ("focei", "fo"):
    fit = pkpd.fit_population("pk_1cmt_oral", theo, iiv={"ka": 0.6, "CL": 0.3, "V": 0.1},
                              error=pkpd.Additive(sd=0.7), method=method, maxeval=3, covariance=None)
    assert fit.engine == "compiled", fit.engine
print("memory checks done")
'''


def _asan_runtime(cc: str) -> str | None:
    try:
        out = subprocess.run([*cc.split(), "-print-file-name=libasan.so"], capture_output=True, text=True,
                             timeout=60).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out if os.path.isabs(out) and os.path.exists(out) else None


def test_the_compiled_libraries_stay_within_their_memory(tmp_path):
    cc = _native.compiler()
    if not sys.platform.startswith("linux") or cc is None:
        pytest.skip("needs a C compiler on Linux")
    runtime = _asan_runtime(cc)
    if runtime is None:
        pytest.skip(f"no AddressSanitizer runtime for {cc!r}")
    env = {k: v for k, v in os.environ.items() if k not in ("PKPD_ENGINE", "PKPD_THREADS")}
    env.update(CC=f"{cc} -fsanitize=address -fno-omit-frame-pointer", LD_PRELOAD=runtime,
               ASAN_OPTIONS="detect_leaks=0", PKPD_CACHE_DIR=str(tmp_path / "cache"), MPLBACKEND="Agg")
    (tmp_path / "check.py").write_text(SCRIPT)
    done = subprocess.run([sys.executable, str(tmp_path / "check.py"), str(DATA / "theoph.csv")], env=env,
                          capture_output=True, text=True, timeout=900, cwd=tmp_path)
    report = done.stderr[-4000:]
    assert "AddressSanitizer" not in done.stderr, report
    assert done.returncode == 0, report
    assert done.stdout.strip().endswith("memory checks done"), done.stdout[-2000:]
    built = sorted(p.name.split("_")[1] for p in (tmp_path / "cache").rglob("*.so"))
    assert "c" in built and "est" in built, built          # the engine and estimation libraries were built here
