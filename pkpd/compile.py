"""Model -> CompiledModel: generated, numba-compiled right-hand side, Jacobian and integrator, cached on disk.

The code is generated from the *validated expression trees* of the model (never from the file's text), written
to a module in the cache folder named by the hash of its source, and compiled by numba with ``cache=True``: the
first use of a model compiles it (seconds), later processes load the machine code from disk (well under a
second). Changing the model file, or upgrading pkpd's integrator, changes the hash, so a stale cache is never used.

The cache folder is ``$PKPD_CACHE_DIR`` or ``~/.cache/pkpd``.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import expressions as ex
from ._integrator import TEMPLATE
from .model import Model

_CODEGEN_VERSION = "1"


@dataclass(frozen=True, eq=False)
class CompiledModel:
    """A model ready to simulate: its compiled module plus the layout of the per-subject vector ``q``.

    ``q`` holds, per subject, the parameters (model order), then the covariates, then the static derived
    quantities (those that depend on parameters and covariates only). Obtain one with :func:`compile_model`.

    Attributes
    ----------
    model : Model
    q_names : tuple[str, ...]
        Names of the entries of ``q``.
    module : module
        The generated module (``solve_batch`` and the model functions).
    source_path : pathlib.Path
        Where the generated source lives (readable, for the curious).
    """

    model: Model
    q_names: tuple[str, ...]
    module: object = field(repr=False)
    source_path: Path = field(repr=False)

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
        for name, tree in self.model._checked.static_derived:
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


def _cache_dir() -> Path:
    d = os.environ.get("PKPD_CACHE_DIR")
    return Path(d) if d else Path.home() / ".cache" / "pkpd"


def generate_source(model: Model) -> tuple[str, tuple[str, ...]]:
    """The Python/numba source of a model's module, and the names of ``q``'s entries."""
    ck = model._checked
    q_names = model.parameter_names + model.covariate_names + tuple(n for n, _ in ck.static_derived)
    q_index = {n: i for i, n in enumerate(q_names)}
    s_index = {s: i for i, s in enumerate(model.state_names)}
    dynamic = [n for n, _ in ck.dynamic_derived]

    def name_of(n: str) -> str:
        if n == "t":
            return "t"
        if n in s_index:
            return f"y[{s_index[n]}]"
        if n in q_index:
            return f"q[{q_index[n]}]"
        return f"d_{n}"

    def src(tree) -> str:
        return ex.to_source(tree, name_of)

    def derived_lines(needed: set[str]) -> list[str]:
        # dynamic derived quantities in declaration order, only those (transitively) needed
        lines = []
        wanted = set(needed)
        for n, tree in reversed(ck.dynamic_derived):
            if n in wanted:
                wanted |= ex.names(tree)
        for n, tree in ck.dynamic_derived:
            if n in wanted:
                lines.append(f"    d_{n} = {src(tree)}")
        return lines

    used_rhs = set().union(*(ex.names(t) for t in ck.ddt))
    rhs = ["@njit(cache=True)", "def _rhs(t, y, q, dy):"] + derived_lines(used_rhs)
    rhs += [f"    dy[{i}] = {src(tree)}" for i, tree in enumerate(ck.ddt)]

    # Jacobian: inline dynamic derived quantities, then differentiate symbolically.
    inline: dict[str, ex.Expr] = {}
    for n, tree in ck.dynamic_derived:
        inline[n] = ex.substitute(tree, inline)
    jac = ["@njit(cache=True)", "def _jac(t, y, q, J):"]
    nonautonomous = False
    for i, tree in enumerate(ck.ddt):
        full = ex.substitute(tree, inline)
        nonautonomous |= "t" in ex.names(full)
        for j, s in enumerate(model.state_names):
            jac.append(f"    J[{i}, {j}] = {src(ex.differentiate(full, s))}")

    used_out = set().union(*(ex.names(t) for t in ck.outputs)) if ck.outputs else set()
    rec = ["@njit(cache=True)", "def _record(t, y, q, o):"] + derived_lines(used_out)
    rec += [f"    o[{i}] = {src(tree)}" for i, tree in enumerate(ck.outputs)]
    rec.append("    return None")

    n_base = len(model.parameters) + len(model.covariates)
    static = ["@njit(cache=True)", "def _static(q):"]
    static += [f"    q[{n_base + k}] = {src(tree)}" for k, (_, tree) in enumerate(ck.static_derived)]
    static.append("    return None")

    header = [
        f"# Generated by pkpd from model {model.name!r} v{model.version} (codegen {_CODEGEN_VERSION}).",
        "# Do not edit: regenerated whenever the model or pkpd's integrator changes.",
        "import math",
        "import numpy as np",
        "from numba import njit, prange",
        "",
        f"_nonautonomous = {nonautonomous}",
        "",
        "@njit(cache=True)",
        "def _hill(x, x50, n):",
        "    xn = x ** n",
        "    return xn / (x50 ** n + xn)",
        "",
    ]
    del dynamic
    body = "\n".join(header + rhs + [""] + jac + [""] + rec + [""] + static) + "\n" + TEMPLATE
    return body, q_names


@functools.lru_cache(maxsize=64)
def compile_model(model: Model) -> CompiledModel:
    """Compile a model (generated code, numba, cached on disk and per process).

    Parameters
    ----------
    model : Model

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
    source, q_names = generate_source(model)
    digest = hashlib.sha256(source.encode()).hexdigest()[:20]
    modname = f"pkpd_gen_{model.name}_{digest}"
    cache = _cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"{modname}.py"
    if not path.exists() or path.read_text() != source:
        # atomic write: concurrent processes may compile the same model
        fd, tmp = tempfile.mkstemp(dir=cache, suffix=".tmp")
        with os.fdopen(fd, "w") as fh:
            fh.write(source)
        os.replace(tmp, path)
    if modname in sys.modules:
        module = sys.modules[modname]
    else:
        spec = importlib.util.spec_from_file_location(modname, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[modname] = module
        spec.loader.exec_module(module)
    return CompiledModel(model=model, q_names=q_names, module=module, source_path=path)
