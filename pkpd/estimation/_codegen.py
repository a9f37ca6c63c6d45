"""C source of an augmented (forward-sensitivity) system, built and loaded as a native library (private).

The source is printed from the validated expression trees of a :class:`~pkpd.estimation._derivative_system.
DerivativeSystem` with a name table built from *indices*: parameters, covariates and per-subject constants become
``q[i]``, states ``y[i]``, time-dependent derived quantities locals ``d<k>``; numbers are printed by pkpd. No name,
comment or other text of the model file appears in the source (the library's file name holds a hash only).

The generated functions are those the native engine's integrator expects (``rhs``, ``jac``, ``record``,
``static_q``, ``#define N``...: :data:`pkpd._native_template.C_TEMPLATE`, compiled into the same library) plus
``initial_state``; :mod:`pkpd.estimation._inner_template` adds the entry points of the inner problem. Per-subject
constants (sub-expressions of parameters and covariates only, e.g. ``EC50 ** h`` and the many constant factors of
the derivative equations) are hoisted into ``q`` and computed once per subject.

The Jacobian (for Rodas4) is symbolic, its nonzero entries only (derived quantities enter by the chain rule through
locals), or, for very large systems, by finite differences of the right-hand side. The inner problem's driver
chooses the method per subject (Tsit5 first, Rodas4 for a subject whose explicit solve fails), so the engine's
stiffness test, which would evaluate the Jacobian every few steps, is not used on these large systems.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from .. import expressions as ex
from .._native import _HEADER
from ..compile import _hoist as _engine_hoist
from ._derivative_system import DerivativeSystem

CODEGEN_VERSION = "1"
_INLINE_MAX_CHARS = 4000

# the engine's includes and expression helpers (_min, _max, _pw, _hill, _hillc), plus memset/memcpy
_HELPERS = "#include <string.h>\n" + _HEADER


@dataclass(frozen=True)
class Layout:
    """Where things live in the generated library's vectors (private)."""

    n_params: int
    n_covariates: int
    n_scales: int        # one per differentiated parameter (inputs after the covariates)
    n_q: int             # parameters, covariates, scales, static quantities, hoisted constants
    n_states: int
    n_outputs: int


def _hoist(trees, q_only: set[str], table: dict):
    """The engine's hoisting of per-subject constants, named ``#K<n>`` (a name no model can use)."""
    return _engine_hoist(trees, q_only, table, prefix="#K")


def generate(system: DerivativeSystem, template: str, *, linear: bool = False) -> tuple[str, Layout]:
    """C source of ``system`` followed by the integrator and ``template``, and its layout. ``linear``: the system is
    linear with coefficients constant between events, and ``template`` holds the exact linear solution
    (:mod:`pkpd.estimation._linear_template`), which the integrator then offers as method 3."""
    m = system.model
    n_p, n_c = len(m.parameters), len(m.covariates)
    from ._derivative_system import scale_name

    scales = [scale_name(p) for p in range(len(system.parameters))]
    q_names = (list(m.parameter_names) + list(m.covariate_names) + scales + [n for n, _ in system.static])
    q_only = set(q_names)
    table: dict = {}
    dyn_names = [n for n, _ in system.dynamic]
    dyn_trees = _hoist([t for _, t in system.dynamic], q_only, table)
    ddt = _hoist(list(system.ddt), q_only, table)
    outputs = _hoist(list(system.outputs), q_only, table)
    symbolic = _jacobian(system)
    j_index: dict = {}
    if symbolic is not None:
        j_locals, entries = symbolic
        j_trees = _hoist([t for _, t in j_locals] + [t for _, _, t in entries], q_only, table)
        j_index = {name: k for k, (name, _) in enumerate(j_locals)}
        j_used = set().union(*(ex.names(t) for t in j_trees)) if j_trees else set()
    hoisted = [(name, tree) for tree, name in table.items()]
    q_names += [name for name, _ in hoisted]
    q_index = {n: i for i, n in enumerate(q_names)}
    s_index = {n: i for i, n in enumerate(system.states)}
    d_index = {n: k for k, n in enumerate(dyn_names)}

    def name_of(n: str) -> str:
        if n == "t":
            return "t"
        if n in s_index:
            return f"y[{s_index[n]}]"
        if n in q_index:
            return f"q[{q_index[n]}]"
        if n in d_index:
            return f"d{d_index[n]}"
        return f"j{j_index[n]}"

    def src(tree) -> str:
        return ex.to_source(tree, name_of, flavour="c")

    dyn_used = [ex.names(t) for t in dyn_trees]

    def derived(needed: set[str]) -> list[str]:
        wanted = set(needed)
        for k in range(len(dyn_names) - 1, -1, -1):
            if dyn_names[k] in wanted:
                wanted |= dyn_used[k]
        return [f"    double d{k} = {src(dyn_trees[k])};" for k in range(len(dyn_names)) if dyn_names[k] in wanted]

    N = len(system.states)
    used_rhs = set().union(*(ex.names(t) for t in ddt))
    body = derived(used_rhs) + [f"    dy[{i}] = {src(t)};" for i, t in enumerate(ddt)]
    small = sum(len(line) for line in body) <= _INLINE_MAX_CHARS
    inline = "static inline __attribute__((always_inline))" if small else "static"
    rhs = [f"{inline} void rhs(double t, const double *restrict y, const double *restrict q, double *restrict dy) {{",
           *body, "}"]

    if symbolic is not None:
        jac_lines = ["static void jac(double t, const double *y, const double *q, double *J) {",
                     "    memset(J, 0, sizeof(double) * N * N);", *derived(j_used)]
        jac_lines += [f"    double j{k} = {src(t)};" for k, t in enumerate(j_trees[:len(j_locals)])]
        jac_lines += [f"    J[{i * N + j}] = {src(t)};" for (i, j, _), t in zip(entries, j_trees[len(j_locals):])]
        jac_lines.append("}")
    else:
        # finite differences over every state (exact to ~1e-8; Rodas4 needs the true Jacobian of the augmented
        # system, with its diagonal blocks alone it degrades to tiny steps)
        jac_lines = [
            "static void jac(double t, const double *y, const double *q, double *J) {",
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
            "}",
        ]

    used_out = set().union(*(ex.names(t) for t in outputs)) if outputs else set()
    rec = ["static void record(double t, const double *y, const double *q, double *o) {", *derived(used_out)]
    rec += [f"    o[{i}] = {src(t)};" for i, t in enumerate(outputs)]
    rec.append("}")

    static = ["static void static_q(double *q) {"]
    n_base_q = n_p + n_c + len(scales)
    for k, (_, tree) in enumerate(system.static):
        static.append(f"    q[{n_base_q + k}] = {src(tree)};")
    for name, tree in hoisted:
        static.append(f"    q[{q_index[name]}] = {src(tree)};")
    static.append("}")

    init = ["static void initial_state(const double *q, double *y) {"]
    init += [f"    y[{i}] = {src(t)};" for i, t in enumerate(system.initial)]
    init.append("}")

    from .._native_template import C_TEMPLATE

    head = [
        "/* Generated by pkpd (estimation codegen " + CODEGEN_VERSION + "). Do not edit. */",
        f"#define N {N}",
        f"#define N_OUTPUTS {len(outputs)}",
        f"#define NONAUTONOMOUS {int(system.nonautonomous)}",
        f"#define N_Q {len(q_names)}",
        f"#define N_PARAMS {n_p}",
        f"#define N_COVARIATES {n_c}",
        f"#define N_SCALES {len(scales)}",
        *([f"#define N_BASE_STATES {system.n_base}"] if linear else []),
        _HELPERS,
    ]
    source = "\n".join(head + rhs + [""] + jac_lines + [""] + rec + [""] + static + [""] + init) + "\n"
    source += C_TEMPLATE + "\n" + template
    return source, Layout(n_p, n_c, len(scales), len(q_names), N, len(outputs))


# above this many nonzero entries the Jacobian is taken by finite differences (the code would grow too large)
_SYMBOLIC_JACOBIAN_MAX_ENTRIES = 4000
_SYMBOLIC_JACOBIAN_MAX_RATIO = 4.0


def _jacobian(system: DerivativeSystem):
    """The Jacobian of the augmented right-hand side, symbolically: (locals, entries) where each local ``#J<k>`` is
    the derivative of a time-dependent derived quantity by a state (chain rule through earlier ones) and each entry
    (row, column, tree) a nonzero element; None when it has too many entries."""
    s_index = {n: i for i, n in enumerate(system.states)}
    dyn_names = {n for n, _ in system.dynamic}
    local: dict = {}          # (derived name, state name) -> local name
    locals_: list = []
    depends: dict = {}        # derived name -> states it depends on

    def derivatives(tree):
        used = ex.names(tree)
        through = [(n, ex.differentiate(tree, n)) for n in sorted(used & dyn_names)]
        deps = {n for n in used if n in s_index}
        for n, _ in through:
            deps |= depends[n]
        out = {}
        for sname in sorted(deps, key=s_index.get):
            expr = ex.differentiate(tree, sname) if sname in used else ex.Num(0.0)
            for n, dn in through:
                if (n, sname) in local and dn != ex.Num(0.0):
                    expr = ex.add(expr, ex.mul(dn, ex.Name(local[(n, sname)])))
            if expr != ex.Num(0.0):
                out[sname] = expr
        return deps, out

    for name, tree in system.dynamic:
        deps, out = derivatives(tree)
        depends[name] = deps
        for sname, expr in out.items():
            local[(name, sname)] = f"#J{len(locals_)}"
            locals_.append((local[(name, sname)], expr))
    entries = []
    for i, tree in enumerate(system.ddt):
        _, out = derivatives(tree)
        entries += [(i, s_index[sname], expr) for sname, expr in out.items()]
        if len(entries) > _SYMBOLIC_JACOBIAN_MAX_ENTRIES:
            return None
    # a Jacobian much larger than the right-hand side (third-order systems of nonlinear models) costs more to
    # compile than finite differences cost to run
    size = sum(_size(t) for _, t in locals_) + sum(_size(t) for _, _, t in entries)
    if size > _SYMBOLIC_JACOBIAN_MAX_RATIO * sum(_size(t) for t in system.ddt + tuple(t for _, t in system.dynamic)):
        return None
    return locals_, entries


def _size(tree) -> int:
    """Number of nodes of an expression tree."""
    if isinstance(tree, ex.Num | ex.Name):
        return 1
    if isinstance(tree, ex.BinOp | ex.Compare):
        return 1 + _size(tree.left) + _size(tree.right)
    if isinstance(tree, ex.Neg):
        return 1 + _size(tree.operand)
    return 1 + sum(_size(a) for a in tree.args)


def library_stem(source: str) -> str:
    """File name (without suffix) of a library: a hash of its source and the compiler's flags only."""
    from .._native import CFLAGS, compiler

    return "pkpd_est_" + hashlib.sha256((source + " ".join(CFLAGS) + (compiler() or "")).encode()).hexdigest()[:24]
