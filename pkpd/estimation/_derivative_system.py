"""Forward sensitivities of any order, as expression trees over index-built names (private).

For a model ``dy/dt = f(t, y, p)`` with outputs ``g(t, y, p)``, the derivative of a trajectory with respect to a
multiset ``M`` of parameters (``M = (a,)``: first order; ``(a, b)``: second order, ...) obeys

    d/dt S_M = D_M f,      S_M(t0) = D_M y0(p),

where ``D_p`` is the total derivative along the trajectory: the partial derivative in ``p`` plus, for every
trajectory-dependent name ``n`` in the expression, ``(d expr / d n) * (the derivative of n by p)``, with
``D_p S_K = S_{K+p}`` (and likewise for derived quantities). Each derivative is built from the one of its multiset
without the last parameter, so the set of multisets must contain every sub-multiset of its members; the system
then closes on itself. Only the multisets the estimator needs are built (first order in every parameter; second
order only with a random-effect parameter; third order, for Laplace, only with two of them), which keeps the
system small: ``n_states * (1 + #multisets)`` states.

Derivatives are *scaled*: the system carries ``s_M * d^|M| y / dp_M`` with ``s_M`` the product of the scales
``s_p`` of the parameters in ``M`` (per-subject inputs, e.g. the typical values). Unscaled, a derivative by a
parameter of value 0.003 is of order 1e4 and crosses zero somewhere: the absolute tolerance there forces the solver
into tiny steps (a first-order TMDD system took 2-5 times the model's steps; scaled, about as many). Only the
explicit partial derivative by ``p`` carries ``s_p``: ``D_p S_K = S_{K+p} / s_p``, so the recursion is otherwise
unchanged; the caller divides the results by the scales.

The result is a :class:`DerivativeSystem`: trees for the static quantities (per-subject constants), the dynamic
derived quantities, the initial state, the right-hand side and the recorded outputs, in terms of names that are
either the model's (parameters, covariates, states, derived quantities) or new ones whose text holds only indices
(``#S<state>|<multiset>``, ``#D<derived>|<multiset>``, scales ``#P<position>``).
:mod:`pkpd.estimation._codegen` prints it as C from indices alone, so no text of the model file ever reaches
generated source.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from .. import expressions as ex
from ..model import Model

ROOT = ()  # the empty multiset: the model's own states and outputs


def state_name(s: int, multiset: tuple[int, ...]) -> str:
    """Name of the derivative state of state ``s`` by ``multiset`` (positions in the parameter list)."""
    return f"#S{s}|{','.join(map(str, multiset))}"


def derived_name(k: int, multiset: tuple[int, ...]) -> str:
    """Name of the derivative of derived quantity ``k`` (declaration order) by ``multiset``."""
    return f"#D{k}|{','.join(map(str, multiset))}"


def scale_name(p: int) -> str:
    """Name of the scale of parameter position ``p`` (a per-subject input, see the module docstring)."""
    return f"#P{p}"


def _parse_name(name: str):
    """(kind, index, multiset) of a derivative name, or None for a model name."""
    if not name.startswith("#"):
        return None
    head, _, tail = name[1:].partition("|")
    return head[0], int(head[1:]), tuple(int(v) for v in tail.split(",") if v)


def closed(multisets) -> tuple[tuple[int, ...], ...]:
    """The multisets (sorted tuples) plus all their sub-multisets, ordered by size then lexically, root first."""
    out = {ROOT}
    for m in multisets:
        m = tuple(sorted(m))
        stack = [m]
        while stack:
            k = stack.pop()
            if k in out:
                continue
            out.add(k)
            for i in range(len(k)):
                stack.append(k[:i] + k[i + 1:])
    return tuple(sorted(out, key=lambda k: (len(k), k)))


def estimation_multisets(n_parameters: int, random: tuple[int, ...], order: int) -> tuple[tuple[int, ...], ...]:
    """Multisets the estimator needs: every parameter at first order; pairs with at least one random-effect
    parameter (``random``: positions) at order >= 2; triples with at least two at order 3 (Laplace)."""
    import itertools

    sets = [(p,) for p in range(n_parameters)]
    rand = set(random)
    if order >= 2:
        sets += [m for m in itertools.combinations_with_replacement(range(n_parameters), 2) if set(m) & rand]
    if order >= 3:
        sets += [m for m in itertools.combinations_with_replacement(range(n_parameters), 3)
                 if sum(1 for v in m if v in rand) >= 2]
    return closed(sets)


def parameter_dependence(model: Model, parameters: tuple[str, ...]) -> dict[str, set[int]]:
    """For every state and derived quantity of ``model``, the positions in ``parameters`` (names) it depends on.

    A state depends on a parameter that appears in its right-hand side, its initial value or the factor, lag, rate
    or duration of a dose into it, directly or through the derived quantities and the other states these use (the
    fixed point of that relation); a derived quantity on those of its expression. The derivative of a state by a
    parameter it does not depend on is identically 0 along every trajectory (it starts at 0 and its equation is
    homogeneous in the derivatives that are 0).

    Examples
    --------
    >>> import pkpd
    >>> dep = parameter_dependence(pkpd.load_model("msc_salvadori"), ("k_c", "EC50"))
    >>> sorted(dep["C"]), sorted(dep["I"])
    ([0], [0, 1])
    """
    ck = model._checked
    position = {p: k for k, p in enumerate(parameters)}
    trees: dict[str, list[ex.Expr]] = {}
    for name, tree in ck.static_derived + ck.dynamic_derived:
        trees[name] = [tree]
    for s, name in enumerate(model.state_names):
        trees[name] = [ck.ddt[s], ck.initial[s]]
    for k, dose in enumerate(model.doses):
        extra = [ck.dose_factor[k], ck.dose_lag[k], ck.dose_rate[k], ck.dose_duration[k]]
        trees[dose.target] = trees[dose.target] + [t for t in extra if t is not None]
    refs = {name: set().union(*(ex.names(t) for t in ts)) for name, ts in trees.items()}
    out = {name: {position[n] for n in r if n in position} for name, r in refs.items()}
    changed = True
    while changed:
        changed = False
        for name, r in refs.items():
            grown = out[name].union(*(out[n] for n in r if n in out and n != name))
            if grown != out[name]:
                out[name] = grown
                changed = True
    return out


@dataclass(frozen=True, eq=False)
class DerivativeSystem:
    """The augmented model (private). Names are the model's or :func:`state_name`/:func:`derived_name`.

    ``states[i]`` is the name of augmented state ``i``: multiset block ``b`` holds states ``b * n .. b * n + n - 1``
    (``b = 0``: the model's states). ``outputs[j]`` is (fitted output position, multiset) of recorded output ``j``:
    block ``b`` holds the fitted outputs' derivatives by ``multisets[b]``.
    """

    model: Model
    parameters: tuple[int, ...]            # model parameter indices differentiated against
    multisets: tuple[tuple[int, ...], ...]  # ROOT first; positions in ``parameters``
    fitted: tuple[int, ...]                # model output indices recorded
    states: tuple[str, ...]
    static: tuple[tuple[str, ex.Expr], ...]    # per-subject constants in evaluation order (model's, then derivatives)
    dynamic: tuple[tuple[str, ex.Expr], ...]   # time-dependent derived quantities in evaluation order
    initial: tuple[ex.Expr, ...]
    ddt: tuple[ex.Expr, ...]
    outputs: tuple[ex.Expr, ...]
    nonautonomous: bool

    @property
    def n_base(self) -> int:
        return len(self.model.states)

    def block(self, multiset: tuple[int, ...]) -> int:
        return self.multisets.index(multiset)


@functools.lru_cache(maxsize=32)
def derivative_system(model: Model, parameters: tuple[int, ...], multisets: tuple[tuple[int, ...], ...],
                      fitted: tuple[int, ...]) -> DerivativeSystem:
    """Build the forward-sensitivity system of ``model`` for ``parameters`` (model indices) and ``multisets``
    (closed, as from :func:`closed`), recording the outputs ``fitted`` (model indices) and their derivatives."""
    ck = model._checked
    if multisets[0] != ROOT or closed(multisets) != tuple(multisets):
        raise ValueError("internal: the multisets must be closed under taking sub-multisets, root first")
    pnames = [model.parameter_names[i] for i in parameters]
    base_states = {s: i for i, s in enumerate(model.state_names)}
    derived_order = [n for n, _ in ck.static_derived] + [n for n, _ in ck.dynamic_derived]
    derived_index = {n: k for k, n in enumerate(derived_order)}
    static_names = {n for n, _ in ck.static_derived}
    member = set(multisets)

    def grow(multiset, p):
        m = tuple(sorted(multiset + (p,)))
        if m not in member:  # pragma: no cover - excluded by the closure check above
            raise ValueError(f"internal: multiset {m} is not in the system")
        return m

    depends = parameter_dependence(model, tuple(pnames))
    state_of = dict(enumerate(model.state_names))

    def zero(name: str, m: tuple[int, ...]) -> bool:
        """Whether the derivative of the model's state or derived quantity ``name`` by ``m`` is identically 0."""
        return not set(m) <= depends[name]

    def total(tree: ex.Expr, p: int) -> ex.Expr:
        """Total derivative of ``tree`` by parameter position ``p`` along the trajectory, times the scale of p.
        Terms through a derivative that is identically zero (a state or derived quantity that does not depend on
        one of the parameters of its multiset) are left out: they would only add 0 times an expression."""
        out = ex.mul(ex.Name(scale_name(p)), ex.differentiate(tree, pnames[p]))
        for n in sorted(ex.names(tree)):
            parsed = _parse_name(n)
            if parsed is not None and parsed[0] == "P":
                continue  # a scale: a constant
            if parsed is not None:
                kind, idx, m = parsed
                m = grow(m, p)
                if zero(state_of[idx] if kind == "S" else derived_order[idx], m):
                    continue
                target = ex.Name(state_name(idx, m) if kind == "S" else derived_name(idx, m))
            elif n in base_states:
                if zero(n, (p,)):
                    continue
                target = ex.Name(state_name(base_states[n], (p,)))
            elif n in derived_index:
                if zero(n, (p,)):
                    continue
                target = ex.Name(derived_name(derived_index[n], (p,)))
            else:
                continue  # parameters (done above), covariates, t
            d = ex.differentiate(tree, n)
            if d != ex.Num(0.0):
                out = ex.add(out, ex.mul(d, target))
        return out

    @functools.cache
    def derivative(key: tuple, multiset: tuple[int, ...]) -> ex.Expr:
        """Tree of ``key`` (a (kind, index) of the model) differentiated by ``multiset``."""
        if not multiset:
            return base_tree[key]
        return total(derivative(key, multiset[:-1]), multiset[-1])

    base_tree = {}
    for k, (_, tree) in enumerate(ck.static_derived + ck.dynamic_derived):
        base_tree[("D", k)] = tree
    for s, tree in enumerate(ck.ddt):
        base_tree[("f", s)] = tree
    for s, tree in enumerate(ck.initial):
        base_tree[("y0", s)] = tree
    for o in fitted:
        base_tree[("g", o)] = ck.outputs[o]

    static, dynamic = [], []
    for m in multisets:
        for k, n in enumerate(derived_order):
            name = n if not m else derived_name(k, m)
            (static if n in static_names else dynamic).append((name, derivative(("D", k), m)))
    n = len(model.states)
    states, initial, ddt = [], [], []
    for m in multisets:
        for s in range(n):
            states.append(model.state_names[s] if not m else state_name(s, m))
            initial.append(derivative(("y0", s), m))
            ddt.append(derivative(("f", s), m))
    outputs = [derivative(("g", o), m) for m in multisets for o in fitted]

    inline: dict[str, ex.Expr] = {}
    for name, tree in ck.dynamic_derived:
        inline[name] = ex.substitute(tree, inline)
    full = [ex.substitute(tree, inline) for tree in ck.ddt]
    nonautonomous = any("t" in ex.names(f) for f in full)
    return DerivativeSystem(model, tuple(parameters), tuple(multisets), tuple(fitted), tuple(states), tuple(static),
                            tuple(dynamic), tuple(initial), tuple(ddt), tuple(outputs), nonautonomous)
