"""Model -> CompiledModel: generated right-hand side, Jacobian and integrator, compiled once and cached on disk.

The code is generated from the *validated expression trees* of the model (never from the file's text) and named by
the hash of its source. Two engines compile it, with the same integrator and results:

* ``"native"`` (default where a C compiler is found): C, built by the system compiler (:mod:`pkpd._native`) in
  about half a second; a later process maps the cached shared library in milliseconds.
* ``"numba"``: a Python module compiled by numba with ``cache=True`` (12-15 s the first time; later processes
  load the machine code from disk).

Changing the model file, or upgrading pkpd's integrator, changes the hash, so a stale cache is never used.

The cache folder is ``$PKPD_CACHE_DIR`` or ``~/.cache/pkpd``; it is used only when it is safe (owned by the user,
not writable by others) and every entry is verified before use (:mod:`pkpd._cache`, ``docs/security.md``).
"""

from __future__ import annotations

import functools
import hashlib
import os
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import expressions as ex
from ._cache import atomic_write, cache_root, file_stem
from ._integrator import TEMPLATE
from .errors import PkpdError
from .model import Model

_CODEGEN_VERSION = "8"
# above this many states the Jacobian is computed by finite differences (compile time grows as n**2 otherwise)
_SYMBOLIC_JACOBIAN_MAX_STATES = 12
# right-hand sides up to this much generated source are inlined into the integrator
_INLINE_MAX_CHARS = 4000


@dataclass(frozen=True, eq=False)
class CompiledModel:
    """A model ready to simulate: its compiled module plus the layout of the per-subject vector ``q``.

    ``q`` holds, per subject, the parameters (model order), then the covariates, then the static derived
    quantities (those that depend on parameters and covariates only), then the per-subject constants hoisted out
    of the right-hand side (``hoisted``). Obtain one with :func:`compile_model`.

    Attributes
    ----------
    model : Model
        The model the engine solves: the declared model, or for a model with clinical endpoints its engine model
        (:func:`pkpd.endpoints.engine_model`: one more state per cumulative hazard, helper outputs after the
        declared ones).
    declared : Model or None
        The model as declared, when it differs from ``model`` (it has endpoint outputs).
    q_names : tuple[str, ...]
        Names of the entries of ``q``.
    module : module
        The generated module: ``solve_batch`` (and, for numba, the model functions).
    source_path : pathlib.Path
        Where the generated source (C or Python) lives (readable, for the curious).
    engine : {"native", "numba"}
        Which CPU engine compiled it (:func:`compile_model`).
    """

    model: Model
    q_names: tuple[str, ...]
    module: object = field(repr=False)
    source_path: Path = field(repr=False)
    hoisted: tuple = field(default=(), repr=False)
    engine: str = "numba"
    declared: Model | None = field(default=None, repr=False)

    def __reduce__(self):
        # Pickled (to worker processes, Dask workers) as its model: the receiving process compiles it again, which
        # loads the machine code from its on-disk cache when it has one (the generated module cannot be pickled).
        return _restore, (self.declared or self.model, self.engine)

    @property
    def n_params(self) -> int:
        """Number of model parameters (the first entries of ``q``)."""
        return len(self.model.parameters)

    def build_q(self, params: np.ndarray, covariates: np.ndarray) -> np.ndarray:
        """``q`` (n_subjects, n_q) from parameters (n_subjects, n_params) and covariates (n_subjects, n_cov)."""
        n = params.shape[0]
        env = {p: params[:, i] for i, p in enumerate(self.model.parameter_names)}
        env |= {c: covariates[:, i] for i, c in enumerate(self.model.covariate_names)}
        cols = [params, covariates]
        for name, tree in self.model._checked.static_derived + self.hoisted:
            with np.errstate(all="ignore"):  # a bad value shows up as NaN/inf and is reported by the caller
                value = np.broadcast_to(np.asarray(ex.evaluate(tree, env), dtype=float), (n,))
            env[name] = value
            cols.append(value[:, None])
        return np.ascontiguousarray(np.hstack(cols), dtype=float)

    def env(self, q: np.ndarray) -> dict[str, np.ndarray]:
        """Name -> column of ``q`` (for evaluating initial values and dose expressions with numpy)."""
        return {name: q[:, i] for i, name in enumerate(self.q_names)}

    def initial_state(self, q: np.ndarray) -> np.ndarray:
        """Pre-dose state (n_subjects, n_states) from the ``initial`` expressions."""
        env = self.env(q)
        n = q.shape[0]
        cols = [np.broadcast_to(np.asarray(ex.evaluate(tree, env), dtype=float), (n,))
                for tree in self.model._checked.initial]
        return np.ascontiguousarray(np.stack(cols, axis=1))


def _hoist(trees, q_only: set[str], table: dict, prefix: str = "_k"):
    """Replace every maximal non-trivial subtree that depends only on ``q`` by a new name (``prefix`` and a number,
    kept in ``table``).

    Such subtrees (``EC50 ** h`` inside a Hill term, ``CL / V``...) are constant for a subject, so they are computed
    once per subject instead of at every right-hand-side evaluation: pow() calls dominate the cost otherwise.
    """

    def visit(e):
        if isinstance(e, ex.Num | ex.Name):
            return e
        used = ex.names(e)
        if used and used <= q_only:
            if e not in table:
                table[e] = f"{prefix}{len(table)}"
            return ex.Name(table[e])
        if isinstance(e, ex.Call) and e.func == "hill":
            x, x50, n = e.args
            if ex.names(x50) | ex.names(n) <= q_only:
                # hill(x, x50, n) = x^n / (x50^n + x^n): x50^n is a per-subject constant
                return ex.Call("hillc", (visit(x), visit(ex.BinOp("**", x50, n)), visit(n)))
        if isinstance(e, ex.BinOp):
            return ex.BinOp(e.op, visit(e.left), visit(e.right))
        if isinstance(e, ex.Compare):
            return ex.Compare(e.op, visit(e.left), visit(e.right))
        if isinstance(e, ex.Neg):
            return ex.Neg(visit(e.operand))
        return ex.Call(e.func, tuple(visit(a) for a in e.args))

    return [visit(t) for t in trees]


@dataclass(frozen=True)
class _Plan:
    """What both code generators (numba here, C in :mod:`pkpd._native`) print: the hoisted trees and the q layout."""

    q_names: tuple[str, ...]
    q_index: dict
    s_index: dict
    dyn_names: list
    dyn_trees: list
    ddt: list
    outputs: list
    jac_trees: list  # row-major, empty when the Jacobian is taken by finite differences
    hoisted: tuple
    nonautonomous: bool
    static: list  # (q index, tree) in evaluation order: static derived quantities, then hoisted constants

    def name_of(self, n: str) -> str:
        """Code for a name: ``t``, ``y[i]``, ``q[i]`` or the local ``_d<i>`` of the i-th dynamic derived quantity.

        Generated code holds no name from the model: every name becomes an index (a model's identifiers never reach
        the source, whatever characters they use)."""
        if n == "t":
            return "t"
        if n in self.s_index:
            return f"y[{self.s_index[n]}]"
        if n in self.q_index:
            return f"q[{self.q_index[n]}]"
        return f"_d{self.dyn_names.index(n)}"

    def needed_derived(self, needed: set[str]) -> list[tuple[str, ex.Expr]]:
        """Dynamic derived quantities (transitively) used by ``needed``, in declaration order."""
        wanted = set(needed)
        for n, tree in reversed(list(zip(self.dyn_names, self.dyn_trees))):
            if n in wanted:
                wanted |= ex.names(tree)
        return [(n, tree) for n, tree in zip(self.dyn_names, self.dyn_trees) if n in wanted]


def plan(model: Model) -> _Plan:
    """Hoist per-subject constants, differentiate the right-hand side and lay out ``q`` (shared by both engines)."""
    ck = model._checked
    base_q = model.parameter_names + model.covariate_names + tuple(n for n, _ in ck.static_derived)
    q_only = set(base_q)
    s_index = {s: i for i, s in enumerate(model.state_names)}
    table: dict = {}

    dyn_names = [n for n, _ in ck.dynamic_derived]
    dyn_trees = _hoist([t for _, t in ck.dynamic_derived], q_only, table)
    ddt = _hoist(list(ck.ddt), q_only, table)
    outputs = _hoist(list(ck.outputs), q_only, table)

    # Jacobian: inline dynamic derived quantities, differentiate symbolically, then hoist constants too.
    inline: dict[str, ex.Expr] = {}
    for n, tree in ck.dynamic_derived:
        inline[n] = ex.substitute(tree, inline)
    full = [ex.substitute(tree, inline) for tree in ck.ddt]
    nonautonomous = any("t" in ex.names(f) for f in full)
    # Large systems (e.g. models augmented with sensitivity equations) get a finite-difference Jacobian: n**2
    # symbolic entries would make the compile time explode, and Rodas4 rarely runs on them.
    symbolic_jac = len(model.states) <= _SYMBOLIC_JACOBIAN_MAX_STATES
    jac_trees = (_hoist([ex.differentiate(f, s) for f in full for s in model.state_names], q_only, table)
                 if symbolic_jac else [])

    hoisted = tuple((name, tree) for tree, name in table.items())
    q_names = base_q + tuple(name for name, _ in hoisted)
    q_index = {n: i for i, n in enumerate(q_names)}
    n_base = len(model.parameters) + len(model.covariates)
    static = [(n_base + k, tree) for k, (_, tree) in enumerate(ck.static_derived)]
    static += [(q_index[name], tree) for name, tree in hoisted]
    return _Plan(q_names, q_index, s_index, dyn_names, dyn_trees, ddt, outputs, jac_trees, hoisted, nonautonomous,
                 static)


def generate_source(model: Model) -> tuple[str, tuple[str, ...], tuple[tuple[str, ex.Expr], ...]]:
    """The Python/numba source of a model's module, the names of ``q``'s entries and the hoisted constants."""
    p = plan(model)
    ddt, outputs, jac_trees, hoisted, q_names = p.ddt, p.outputs, p.jac_trees, p.hoisted, p.q_names
    symbolic_jac = bool(jac_trees)
    nonautonomous = p.nonautonomous
    name_of = p.name_of

    def src(tree) -> str:
        return ex.to_source(tree, name_of)

    def derived_lines(needed: set[str]) -> list[str]:
        return [f"    {name_of(n)} = {src(tree)}" for n, tree in p.needed_derived(needed)]

    used_rhs = set().union(*(ex.names(t) for t in ddt))
    body = derived_lines(used_rhs) + [f"    dy[{i}] = {src(tree)}" for i, tree in enumerate(ddt)]
    # inline="always": numba inlines a small right-hand side into every stage of the integrator (measured ~1.5x);
    # a large one is called instead, since inlining it a dozen times would multiply the compile time.
    small = sum(len(line) for line in body) <= _INLINE_MAX_CHARS
    rhs = ["@njit(cache=True, inline=\"always\")" if small else "@njit(cache=True)", "def _rhs(t, y, q, dy):"]
    rhs += body

    n = len(model.states)
    jac = ["@njit(cache=True)", "def _jac(t, y, q, J):"]
    if symbolic_jac:
        jac += [f"    J[{k // n}, {k % n}] = {src(tree)}" for k, tree in enumerate(jac_trees)]
    else:
        jac += [
            "    f0 = np.empty(_N)",
            "    f1 = np.empty(_N)",
            "    yp = y.copy()",
            "    _rhs(t, y, q, f0)",
            "    scale = 0.0",
            "    for i in range(_N):",
            "        scale = max(scale, abs(y[i]))",
            "    for j in range(_N):",
            "        h = 1.4901161193847656e-08 * max(abs(y[j]), 1e-6 * scale, 1e-12)",
            "        yp[j] = y[j] + h",
            "        _rhs(t, yp, q, f1)",
            "        for i in range(_N):",
            "            J[i, j] = (f1[i] - f0[i]) / h",
            "        yp[j] = y[j]",
        ]

    used_out = set().union(*(ex.names(t) for t in outputs)) if outputs else set()
    rec = ["@njit(cache=True)", "def _record(t, y, q, o):"] + derived_lines(used_out)
    rec += [f"    o[{i}] = {src(tree)}" for i, tree in enumerate(outputs)]
    rec.append("    return None")

    static = ["@njit(cache=True)", "def _static(q):"]
    static += [f"    q[{i}] = {src(tree)}" for i, tree in p.static]
    static.append("    return None")

    # Nothing from the model file reaches the source, not even its name or version in a comment: names are indices
    # (_Plan.name_of) and numbers are printed by pkpd (the file name carries the hash of the source).
    header = [
        f"# Generated by pkpd (codegen {_CODEGEN_VERSION}) from a model's validated expression trees.",
        "# Do not edit: regenerated whenever the model or pkpd's integrator changes.",
        "import math",
        "import numpy as np",
        "from numba import njit as _numba_njit, prange",
        "",
        "",
        "def njit(*args, **options):",
        "    # numpy error model: x/0 gives inf/nan (reported as solver status 3) instead of raising inside prange",
        "    options.setdefault('error_model', 'numpy')",
        "    return _numba_njit(*args, **options)",
        "",
        "",
        f"_nonautonomous = {nonautonomous}",
        "# number of states, a compile-time constant so that LLVM unrolls the per-state loops of the integrator",
        f"_N = {len(model.states)}",
        "",
        "@njit(cache=True, inline=\"always\")",
        "def _pow(x, n):",
        "    # Hill exponents are mostly 1, 2, 1.5, 0.5, 3 or 4: multiplications and sqrt are several times",
        "    # cheaper than pow(), which otherwise dominates the cost of a right-hand side",
        "    if n == 1.0:",
        "        return x",
        "    if n == 2.0:",
        "        return x * x",
        "    if n == 1.5:",
        "        return x * math.sqrt(x)",
        "    if n == 0.5:",
        "        return math.sqrt(x)",
        "    if n == 3.0:",
        "        return x * x * x",
        "    if n == 4.0:",
        "        x2 = x * x",
        "        return x2 * x2",
        "    return x ** n",
        "",
        "@njit(cache=True)",
        "def _hill(x, x50, n):",
        "    xn = _pow(x, n)",
        "    return xn / (_pow(x50, n) + xn)",
        "",
        "@njit(cache=True, inline=\"always\")",
        "def _hillc(x, x50n, n):",
        "    xn = _pow(x, n)",
        "    return xn / (x50n + xn)",
        "",
    ]
    body = "\n".join(header + rhs + [""] + jac + [""] + rec + [""] + static) + "\n" + TEMPLATE
    return body, q_names, hoisted


ENGINES = ("native", "numba")


def default_engine() -> str:
    """The CPU engine used when none is named: ``$PKPD_ENGINE`` if set, else ``"native"`` (generated C, built by
    the system C compiler) where a C compiler is found, else ``"numba"``.

    Examples
    --------
    >>> default_engine() in ("native", "numba")
    True
    """
    from ._native import compiler

    chosen = os.environ.get("PKPD_ENGINE", "").strip().lower()
    if chosen:
        if chosen not in ENGINES:
            raise PkpdError(f"PKPD_ENGINE={chosen!r} is not an engine; choose one of {', '.join(ENGINES)}")
        return chosen
    return "native" if compiler() else "numba"


def _restore(model: Model, engine: str) -> CompiledModel:
    # A worker without a C compiler (another machine of a cluster) runs the numba engine instead: same algorithm,
    # same results to rounding.
    from ._native import compiler

    return compile_model(model, "numba" if engine == "native" and compiler() is None else engine)


def native_compiler_version() -> str:
    """First line of the C compiler's ``--version`` (for benchmark reports), or ``"no C compiler"``.

    Examples
    --------
    >>> isinstance(native_compiler_version(), str)
    True
    """
    from ._native import compiler_version

    return compiler_version()


def compile_model(model: Model, engine: str | None = None) -> CompiledModel:
    """Compile a model for the CPU engine (generated code, cached on disk and per process).

    Parameters
    ----------
    model : Model
    engine : {"native", "numba"}, optional
        ``"native"``: the model and integrator as generated C, built by the system C compiler (about 0.5 s the
        first time, milliseconds in later processes). ``"numba"``: the same integrator compiled by numba (12-15 s
        the first time, 0.4 s in later processes). Default: :func:`default_engine`. Both give the same results
        to rounding.

    Returns
    -------
    CompiledModel

    Examples
    --------
    >>> import pkpd
    >>> cm = pkpd.compile_model(pkpd.load_model("pk_1cmt_iv"))
    >>> cm.q_names[:2]
    ('CL', 'V')
    """
    if engine is None:
        engine = default_engine()
    if engine not in ENGINES:
        raise PkpdError(f"engine: unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    return _compile(model, engine)


@functools.lru_cache(maxsize=64)
def _compile(model: Model, engine: str) -> CompiledModel:
    from .endpoints import engine_model

    declared = model if model.endpoint_names else None
    model = engine_model(model)   # the model itself unless it has clinical endpoints (extra states, outputs)
    cache = cache_root()
    if engine == "native":
        from ._native import build

        p = plan(model)
        module = build(model, p, cache)
        return CompiledModel(model=model, q_names=p.q_names, module=module, source_path=module.path.with_suffix(".c"),
                             hoisted=p.hoisted, engine="native", declared=declared)
    source, q_names, hoisted = generate_source(model)
    digest = hashlib.sha256(source.encode()).hexdigest()[:20]
    modname = file_stem("pkpd_gen", model.name, digest)
    path = cache / f"{modname}.py"
    # numba's cache needs the source on disk (its index is stamped with the file's time and size), but the module
    # is compiled from the source in memory: never from the file, never from a .pyc that Python's import system
    # would take from __pycache__.
    try:
        on_disk = path.read_text()
    except (OSError, UnicodeDecodeError):
        on_disk = None
    if on_disk != source:
        atomic_write(path, source.encode())
    from . import _numba_cache

    module = sys.modules.get(modname)
    if module is None:
        module = types.ModuleType(modname)
        module.__file__ = str(path)
        sys.modules[modname] = module
        try:
            exec(compile(source, str(path), "exec"), module.__dict__)  # our generated source, from memory
        except BaseException:
            del sys.modules[modname]
            raise
        _numba_cache.verify(module, modname, cache)
    return CompiledModel(model=model, q_names=q_names, module=_numba_cache.Module(module, modname, cache),
                         source_path=path, hoisted=hoisted, engine="numba", declared=declared)
