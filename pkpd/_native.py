"""The native engine: the model and integrator as C, built by the system C compiler, loaded with ctypes (private).

Why: numba needs 0.2 s just to import and 12-15 s to compile a model, so a fresh process could not be ready in
under a second. A C compiler builds the same integrator (:mod:`pkpd._native_template`, a port of the numba
template) with the model's generated functions in about half a second, and a later process only maps the cached
shared library (milliseconds). The results equal the numba engine's to rounding (tested on every shipped model).

The C text is printed from the model's *validated expression trees* (never from the file's text), like the numba
source. Libraries are cached as ``pkpd_c_<model>_<hash>.so`` in the cache folder (``$PKPD_CACHE_DIR`` or
``~/.cache/pkpd``), the hash covering the C source and the compiler flags; they are written atomically, so
concurrent processes may build the same model.

The compiler is ``$CC`` or the first of ``cc``, ``gcc``, ``clang`` on ``PATH``; without one, pkpd uses the numba
engine (``PKPD_ENGINE=numba`` forces that).
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from . import expressions as ex
from ._cache import atomic_write, file_stem, install, read_entry
from ._native_template import C_TEMPLATE
from .errors import PkpdError

_C_CODEGEN_VERSION = "2"
# -O2 (the Tsit5 loop is marked O3 in the template: as fast as all-O3, 0.15 s less to compile); -fno-math-errno lets
# sqrt() compile to one instruction, IEEE results unchanged (no -ffast-math: the solver relies on NaN/inf checks; no
# -march=native: the cache may be shared by machines of different CPUs, and it measured no faster)
CFLAGS = ("-O2", "-std=gnu11", "-fPIC", "-shared", "-pthread", "-fno-math-errno")
# right-hand sides up to this much generated source are inlined into every stage of the integrator
_INLINE_MAX_CHARS = 4000

_HEADER = r"""
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

/* Python's min/max (the first argument unless the second is strictly smaller/larger) */
static inline double _min(double a, double b) { return b < a ? b : a; }
static inline double _max(double a, double b) { return b > a ? b : a; }

/* x ** n: Hill exponents are mostly 1, 2, 1.5, 0.5, 3 or 4; multiplications and sqrt are several times cheaper
   than pow(), which otherwise dominates a right-hand side (a constant n folds the branches away) */
static inline double _pw(double x, double n) {
    if (n == 1.0) return x;
    if (n == 2.0) return x * x;
    if (n == 1.5) return x * sqrt(x);
    if (n == 0.5) return sqrt(x);
    if (n == 3.0) return x * x * x;
    if (n == 4.0) {
        double x2 = x * x;
        return x2 * x2;
    }
    return pow(x, n);
}

static inline double _hill(double x, double x50, double n) {
    double xn = _pw(x, n);
    return xn / (_pw(x50, n) + xn);
}

/* hill() with x50 ** n precomputed per subject */
static inline double _hillc(double x, double x50n, double n) {
    double xn = _pw(x, n);
    return xn / (x50n + xn);
}
"""


def compiler() -> str | None:
    """The C compiler the native engine uses (``$CC``, else ``cc``, ``gcc`` or ``clang`` on ``PATH``), or None."""
    return _compiler(os.environ.get("CC", ""))


@functools.lru_cache(maxsize=4)
def _compiler(cc_env: str) -> str | None:
    if cc_env.strip():
        return shutil.which(cc_env.split()[0]) and cc_env
    for name in ("cc", "gcc", "clang"):
        if shutil.which(name):
            return name
    return None


def compiler_version() -> str:
    """First line of ``<compiler> --version``, or ``"no C compiler"``."""
    cc = compiler()
    if cc is None:
        return "no C compiler"
    try:
        out = subprocess.run([*cc.split(), "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return cc
    return out.splitlines()[0].strip() if out.strip() else cc


def generate_c_source(model, plan) -> str:
    """The C source of a model's native library (``plan``: :func:`pkpd.compile.plan`)."""
    n = len(model.states)
    n_o = len(model.outputs)

    def src(tree) -> str:
        return ex.to_source(tree, plan.name_of, flavour="c")

    def derived(needed: set[str]) -> list[str]:
        return [f"    double {plan.name_of(name)} = {src(tree)};" for name, tree in plan.needed_derived(needed)]

    used_rhs = set().union(*(ex.names(t) for t in plan.ddt))
    body = derived(used_rhs) + [f"    dy[{i}] = {src(tree)};" for i, tree in enumerate(plan.ddt)]
    small = sum(len(line) for line in body) <= _INLINE_MAX_CHARS
    inline = "static inline __attribute__((always_inline))" if small else "static"
    # restrict: the states, constants and derivatives never overlap, so values stay in registers across stores
    signature = "void rhs(double t, const double *restrict y, const double *restrict q, double *restrict dy)"
    rhs = [f"{inline} {signature} {{", *body, "}"]

    jac = ["static void jac(double t, const double *y, const double *q, double *J) {"]
    if plan.jac_trees:
        jac += [f"    J[{k}] = {src(tree)};" for k, tree in enumerate(plan.jac_trees)]
    else:  # finite differences, as the numba engine
        jac += [
            "    double f0[N], f1[N], yp[N], scale = 0.0;",
            "    rhs(t, y, q, f0);",
            "    for (int i = 0; i < N; i++) { scale = fmax(scale, fabs(y[i])); yp[i] = y[i]; }",
            "    for (int j = 0; j < N; j++) {",
            "        double h = 1.4901161193847656e-08 * _max(_max(fabs(y[j]), 1e-6 * scale), 1e-12);",
            "        yp[j] = y[j] + h;",
            "        rhs(t, yp, q, f1);",
            "        for (int i = 0; i < N; i++) J[i * N + j] = (f1[i] - f0[i]) / h;",
            "        yp[j] = y[j];",
            "    }",
        ]
    jac.append("}")

    used_out = set().union(*(ex.names(t) for t in plan.outputs)) if plan.outputs else set()
    rec = ["static void record(double t, const double *y, const double *q, double *o) {", *derived(used_out)]
    rec += [f"    o[{i}] = {src(tree)};" for i, tree in enumerate(plan.outputs)]
    rec.append("}")

    static = ["static void static_q(double *q) {"]
    static += [f"    q[{i}] = {src(tree)};" for i, tree in plan.static]
    static.append("}")

    head = [
        # nothing from the model file reaches the source (names are indices, numbers are printed by pkpd)
        f"/* Generated by pkpd (native codegen {_C_CODEGEN_VERSION}) from a model's validated expression trees.",
        "   Do not edit: regenerated whenever the model or pkpd's integrator changes. */",
        f"#define N {n}",
        f"#define N_OUTPUTS {n_o}",
        f"#define NONAUTONOMOUS {int(plan.nonautonomous)}",
        _HEADER,
    ]
    return "\n".join(head + rhs + [""] + jac + [""] + rec + [""] + static) + "\n" + C_TEMPLATE


def build(model, plan, cache: Path) -> NativeModule:
    """Compile (or load from ``cache``) the native library of a model."""
    if compiler() is None:
        raise PkpdError("the native engine needs a C compiler (cc, gcc or clang on PATH, or $CC); none was found. "
                        "Install one, or use the numba engine (PKPD_ENGINE=numba)")
    source = generate_c_source(model, plan)
    digest = hashlib.sha256((source + " ".join(CFLAGS) + compiler()).encode()).hexdigest()[:20]
    lib, image = compile_c(source, cache, file_stem("pkpd_c", model.name, digest), f"model {model.name!r}")
    return NativeModule(lib, len(model.states), len(model.outputs), image)


def compile_c(source: str, cache: Path, stem: str, what: str) -> tuple[Path, bytes]:
    """``cache/<stem>.so`` built from ``source`` unless a verified copy exists; returns its path and its verified
    bytes (load those: :func:`load_library`). The library and its checksum are written atomically (concurrent
    processes may build the same library); a damaged copy (empty, truncated, edited) is rebuilt. ``what`` names it
    in errors."""
    lib = cache / f"{stem}.so"
    image = read_entry(lib)
    if image is not None:
        return lib, image
    cc = compiler()
    cache.mkdir(mode=0o700, parents=True, exist_ok=True)
    c_file = cache / f"{stem}.c"
    atomic_write(c_file, source.encode())  # for the curious (and the compiler's messages); never read back
    fd, tmp_so = tempfile.mkstemp(dir=cache, prefix=".", suffix=".so.tmp")
    os.close(fd)
    cmd = [*cc.split(), *CFLAGS, "-o", tmp_so, str(c_file), "-lm"]
    try:
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        except (OSError, subprocess.TimeoutExpired) as err:
            raise PkpdError(f"the C compiler could not be run for {what}: {err}") from None
        if done.returncode != 0:
            raise PkpdError(f"the C compiler failed on {what} (source: {c_file}):\n" + done.stderr[-2000:])
        return lib, install(Path(tmp_so), lib)
    finally:
        Path(tmp_so).unlink(missing_ok=True)


def load_library(path: Path, image: bytes) -> ctypes.CDLL:
    """Load a shared library from its verified bytes ``image``.

    On Linux the bytes go into a sealed anonymous file (memfd) that is loaded, so what runs is exactly what was
    verified, whatever happens to ``path`` meanwhile; elsewhere ``path`` itself is loaded. The memfd stays open for
    the life of the process: its ``/proc/self/fd/N`` name must never be reused for another library (the dynamic
    loader recognises already loaded libraries by name).
    """
    if hasattr(os, "memfd_create") and Path("/proc/self/fd").is_dir():
        fd = os.memfd_create("pkpd-" + path.stem[:40], os.MFD_CLOEXEC | getattr(os, "MFD_ALLOW_SEALING", 0))
        try:
            view = memoryview(image)
            written = 0
            while written < len(image):
                written += os.write(fd, view[written:])
            _seal(fd)
            lib = ctypes.CDLL(f"/proc/self/fd/{fd}")
        except OSError:
            os.close(fd)
            return ctypes.CDLL(str(path))
        _OPEN_IMAGES.append(fd)
        return lib
    return ctypes.CDLL(str(path))  # pragma: no cover - not Linux


_OPEN_IMAGES: list[int] = []


def _seal(fd: int) -> None:
    import fcntl

    seals = sum(getattr(fcntl, n, 0) for n in ("F_SEAL_WRITE", "F_SEAL_GROW", "F_SEAL_SHRINK", "F_SEAL_SEAL"))
    if seals and hasattr(fcntl, "F_ADD_SEALS"):
        try:
            fcntl.fcntl(fd, fcntl.F_ADD_SEALS, seals)
        except OSError:
            pass


# ------------------------------------------------------------------------------------------------ threads
_THREADS: list[int] = []


def threads() -> int:
    """Threads a native batch uses: :func:`set_threads`, else ``$PKPD_NUM_THREADS``/``$NUMBA_NUM_THREADS``, else
    the cores this process may run on."""
    if _THREADS:
        return _THREADS[0]
    for var in ("PKPD_NUM_THREADS", "NUMBA_NUM_THREADS"):
        value = os.environ.get(var, "").strip()
        if value.isdigit() and int(value) > 0:
            return int(value)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def set_threads(n: int) -> None:
    """Use ``n`` threads in later native batches (worker processes set 1: their parallelism is the workers)."""
    _THREADS[:] = [max(1, int(n))]


# ------------------------------------------------------------------------------------------------ the library
_P = ctypes.c_void_p
_I = ctypes.c_int64
_D = ctypes.c_double
_ARGTYPES = [_I, _I, _P, _P, _I, _P, _P, _P, _P, _P, _I, _P, _P, _P, _P, _P, _D, _D, _D, _I, _I, _P, _P, _I, _I,
             _I, _I, _P, _P, _I]


def _ptr(a: np.ndarray, dtype, name: str) -> int:
    if a.dtype != dtype or not a.flags.c_contiguous:
        raise PkpdError(f"internal: native batch argument {name} must be C-contiguous {np.dtype(dtype)}; "
                        f"got {a.dtype}")
    return a.ctypes.data


class NativeModule:
    """A loaded native library, called like the numba module's ``solve_batch`` (same arguments, same results)."""

    def __init__(self, path: Path, n_states: int, n_outputs: int, image: bytes):
        self.path = path
        self.n_states = n_states
        self.n_outputs = n_outputs
        self._lib = load_library(path, image)
        self._fn = self._lib.pkpd_solve_batch
        self._fn.argtypes = _ARGTYPES
        self._fn.restype = ctypes.c_int

    def solve_batch(self, Q, Y0, ev_t, ev_kind, ev_idx, ev_val, n_ev, TT, PRE, n_out, row, t0, rtol, atol, hmax,
                    max_steps, method, states_out, outputs_out, ws, wo, status, counters):
        """Solve every subject (arguments as the numba template's ``solve_batch``); results written in place."""
        n, n_q = Q.shape
        N = self.n_states
        ev_t, ev_val = (np.ascontiguousarray(a, dtype=float) for a in (ev_t, ev_val))
        ev_kind, ev_idx, n_ev = (np.ascontiguousarray(a, dtype=np.int64) for a in (ev_kind, ev_idx, n_ev))
        max_ev = ev_t.shape[1]
        n_rows, max_out = TT.shape
        n_o = outputs_out.shape[2]
        # The C code trusts its indices: check them here, where a mistake is an error instead of a crash.
        ok = (Y0.shape == (n, N) and ev_t.shape == ev_kind.shape == ev_idx.shape == ev_val.shape
              and ev_t.shape[0] == n and n_ev.shape == (n,) and PRE.shape == TT.shape and n_out.shape == (n_rows,)
              and row.shape == (n,) and t0.shape == (n,) and status.shape == (n,) and counters.shape == (n, 4)
              and (not ws or states_out.shape == (n, max_out, N)) and (not wo or outputs_out.shape[:2] == (n, max_out))
              and (not wo or n_o >= self.n_outputs))
        if ok and n:
            ok = (int(row.min()) >= 0 and int(row.max()) < n_rows and int(n_out.min()) >= 0
                  and int(n_out.max()) <= max_out and int(n_ev.min()) >= 0 and int(n_ev.max()) <= max_ev)
        if ok and n and max_ev:
            live = np.arange(max_ev)[None, :] < n_ev[:, None]
            kind, idx = ev_kind[live], ev_idx[live]
            bound = np.where(kind == 3, n_q, np.where((kind == 2) | (kind == 5), 1 << 62, N))
            ok = bool(np.all((idx >= 0) & (idx < bound)) and np.all((kind >= 0) & (kind <= 5)))
        if not ok:
            raise PkpdError("internal: inconsistent arrays passed to the native batch solver")
        rc = self._fn(n, n_q, _ptr(Q, float, "Q"), _ptr(Y0, float, "Y0"), max_ev, _ptr(ev_t, float, "ev_t"),
                      _ptr(ev_kind, np.int64, "ev_kind"), _ptr(ev_idx, np.int64, "ev_idx"),
                      _ptr(ev_val, float, "ev_val"), _ptr(n_ev, np.int64, "n_ev"), max_out, _ptr(TT, float, "TT"),
                      _ptr(PRE, np.int64, "PRE"), _ptr(n_out, np.int64, "n_out"), _ptr(row, np.int64, "row"),
                      _ptr(t0, float, "t0"), float(rtol), float(atol), float(hmax), int(max_steps), int(method),
                      _ptr(states_out, float, "states_out"), _ptr(outputs_out, float, "outputs_out"), max_out, n_o,
                      int(bool(ws)), int(bool(wo)), _ptr(status, np.int64, "status"),
                      _ptr(counters, float, "counters"), threads())
        if rc != 0:
            raise MemoryError("the native solver could not allocate its work memory")
