"""One BLAS thread while an estimator runs (private).

An estimator makes thousands of calls into BLAS/LAPACK on tiny matrices (the optimiser's updates, per-subject 3x3
solves); OpenBLAS hands each to its thread pool, whose wake-ups and spinning cost more than the arithmetic: on the
project's 2-core machine a theophylline fit spent a third of its CPU time there (L-BFGS-B took 3 ms per iteration
for 10 parameters instead of 0.1 ms). The parallel work of a fit is in the compiled subjects loop, not in BLAS, so
fits run with BLAS on one thread and restore the previous setting afterwards. The OpenBLAS libraries already loaded
by numpy and scipy are found in the process's memory map (Linux); elsewhere this does nothing.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools

_SETTERS = ("openblas_set_num_threads", "openblas_set_num_threads64_", "scipy_openblas_set_num_threads",
            "scipy_openblas_set_num_threads64_")


@functools.lru_cache(maxsize=1)
def _libraries() -> tuple:
    """(get, set) function pairs of every OpenBLAS loaded in this process (numpy's and scipy's, loaded before the
    first call: read once, as reading the memory map costs about a millisecond per fit)."""
    try:
        with open("/proc/self/maps") as fh:
            paths = sorted({line.split()[-1] for line in fh if "openblas" in line.lower() and "/" in line})
    except OSError:
        return ()
    return tuple(pair for pair in (_functions(p) for p in paths) if pair is not None)


@functools.lru_cache(maxsize=16)
def _functions(path: str):
    try:
        lib = ctypes.CDLL(path)   # already mapped: dlopen returns the loaded library
    except OSError:
        return None
    for setter in _SETTERS:
        getter = setter.replace("_set_", "_get_")
        if hasattr(lib, setter) and hasattr(lib, getter):
            get, put = getattr(lib, getter), getattr(lib, setter)
            get.restype, get.argtypes = ctypes.c_int, []
            put.restype, put.argtypes = None, [ctypes.c_int]
            return get, put
    return None


@contextlib.contextmanager
def single_threaded_blas():
    """Run the block with one BLAS thread (see the module docstring)."""
    import numpy  # noqa: F401  (the BLAS libraries of numpy and scipy must be loaded to be found)
    import scipy.linalg  # noqa: F401

    libs = _libraries()
    saved = [get() for get, _ in libs]
    for _, put in libs:
        put(1)
    try:
        yield
    finally:
        for (_, put), n in zip(libs, saved):
            put(n)
