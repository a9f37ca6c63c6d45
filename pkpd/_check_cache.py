"""On-disk cache of a model's unit check (private).

Checking a model's units needs pint, whose import and registry take about 0.3 s: more than a later process may
spend getting ready. The check is a pure function of the model's declarations, so its result (the unit-converted
expression trees of :class:`pkpd.model._Checked`) is stored as JSON under the cache folder, keyed by a hash of the
declarations and of the source of the modules that define the check. A later process with the same model reads it
back instead of importing pint.

Safe to read: the JSON is decoded into expression nodes by :func:`_decode`, which accepts only the node types,
operators, functions and names of the expression language (nothing is evaluated or imported), and any entry that
does not decode is ignored and recomputed. Only models that passed the check are stored.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import tempfile
from pathlib import Path

from . import expressions as ex

_FORMAT = "1"
_OPS = {"+", "-", "*", "/", "**"}
_CMP = {"<", "<=", ">", ">=", "==", "!="}


class _Bad(ValueError):
    """A cache entry that is not what this module writes."""


@functools.lru_cache(maxsize=1)
def _code_digest() -> str:
    # the check's behaviour is defined by these modules: a change to any of them invalidates every entry
    here = Path(__file__).parent
    h = hashlib.sha256(_FORMAT.encode())
    for name in ("model.py", "units.py", "expressions.py", "_check_cache.py"):
        h.update((here / name).read_bytes())
    return h.hexdigest()


def _key(m) -> str:
    decl = repr((m.name, m.time_unit, m.parameters, m.covariates, m.derived, m.states, m.outputs, m.doses))
    return hashlib.sha256((_code_digest() + decl).encode()).hexdigest()[:32]


def _path(m) -> Path:
    from .compile import _cache_dir

    return _cache_dir() / "checked" / f"{m.name}_{_key(m)}.json"


# -------------------------------------------------------------------------------------------- encode / decode
def _encode(e):
    if e is None:
        return None
    if isinstance(e, ex.Num):
        return ["n", float(e.value)]
    if isinstance(e, ex.Name):
        return ["v", e.id]
    if isinstance(e, ex.Neg):
        return ["-", _encode(e.operand)]
    if isinstance(e, ex.BinOp):
        return ["b", e.op, _encode(e.left), _encode(e.right)]
    if isinstance(e, ex.Compare):
        return ["c", e.op, _encode(e.left), _encode(e.right)]
    return ["f", e.func, [_encode(a) for a in e.args]]


def _decode(d, depth: int = 0):
    if d is None:
        return None
    if depth > 500 or not isinstance(d, list) or not d:
        raise _Bad
    tag = d[0]
    if tag == "n" and len(d) == 2 and isinstance(d[1], float) and math.isfinite(d[1]):
        return ex.Num(d[1])
    if tag == "v" and len(d) == 2 and isinstance(d[1], str) and d[1].isidentifier():
        return ex.Name(d[1])
    if tag == "-" and len(d) == 2:
        return ex.Neg(_decode(d[1], depth + 1))
    if tag in ("b", "c") and len(d) == 4 and d[1] in (_OPS if tag == "b" else _CMP):
        cls = ex.BinOp if tag == "b" else ex.Compare
        return cls(d[1], _decode(d[2], depth + 1), _decode(d[3], depth + 1))
    if (tag == "f" and len(d) == 3 and d[1] in ex.FUNCTIONS and isinstance(d[2], list)
            and len(d[2]) == ex.FUNCTIONS[d[1]]):
        return ex.Call(d[1], tuple(_decode(a, depth + 1) for a in d[2]))
    raise _Bad


def _to_json(checked) -> dict:
    return {
        "static_derived": [[n, _encode(t)] for n, t in checked.static_derived],
        "dynamic_derived": [[n, _encode(t)] for n, t in checked.dynamic_derived],
        **{k: [_encode(t) for t in getattr(checked, k)]
           for k in ("initial", "ddt", "outputs", "dose_factor", "dose_lag", "dose_rate", "dose_duration")},
        "dose_conversion": list(checked.dose_conversion),
        "dose_factor_dimensionless": list(checked.dose_factor_dimensionless),
    }


def _from_json(d: dict, m, cls):
    def named(rows):
        if not isinstance(rows, list) or not all(isinstance(r, list) and len(r) == 2 and isinstance(r[0], str)
                                                 for r in rows):
            raise _Bad
        return tuple((r[0], _decode(r[1])) for r in rows)

    def trees(key, n, optional=False):
        rows = d[key]
        if not isinstance(rows, list) or len(rows) != n:
            raise _Bad
        out = tuple(_decode(r) for r in rows)
        if not optional and any(t is None for t in out):
            raise _Bad
        return out

    n_doses = len(m.doses)
    conv, dimless = d["dose_conversion"], d["dose_factor_dimensionless"]
    if (not isinstance(conv, list) or len(conv) != n_doses or not all(isinstance(c, float) for c in conv)
            or not isinstance(dimless, list) or len(dimless) != n_doses
            or not all(isinstance(b, bool) for b in dimless)):
        raise _Bad
    static, dynamic = named(d["static_derived"]), named(d["dynamic_derived"])
    if len(static) + len(dynamic) != len(m.derived):
        raise _Bad
    return cls(static, dynamic, trees("initial", len(m.states)), trees("ddt", len(m.states)),
               trees("outputs", len(m.outputs)), trees("dose_factor", n_doses), tuple(conv), tuple(dimless),
               trees("dose_lag", n_doses), trees("dose_rate", n_doses, True), trees("dose_duration", n_doses, True))


# -------------------------------------------------------------------------------------------- get / put
def load(m, cls):
    """The cached check of model ``m`` (an instance of ``cls``), or None."""
    try:
        path = _path(m)
        if not path.is_file():
            return None
        return _from_json(json.loads(path.read_text()), m, cls)
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        return None


def store(m, checked) -> None:
    """Save the check of model ``m``; a cache that cannot be written is skipped (it only saves time)."""
    try:
        path = _path(m)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "w") as fh:
            json.dump(_to_json(checked), fh)
        os.replace(tmp, path)
    except (OSError, TypeError, ValueError):
        pass
