"""On-disk cache of a model's dimensional analysis (private).

Checking a model's units needs pint, whose import and registry take about 0.3 s: more than a later process may
spend getting ready. What the check learns from pint is a short list of answers (are these two units compatible?
by what factor does this one convert to that one?), recorded by :class:`pkpd.units.Algebra`. That list, the
*transcript*, is all this cache stores. A later process parses the model's equations afresh and re-runs the very same
check with :class:`pkpd.units.Replay` giving the recorded answers back: the cache can save the dimensional
analysis, but it never replaces the equations (an entry holds none).

Entries are keyed by a hash of what the check depends on (names, units, expressions; not values, bounds or
descriptions, so ``with_parameters`` and fits reuse one entry) and of the source of the modules that define the
check. They are verified cache entries (:mod:`pkpd._cache`: checksum written atomically with the entry); an entry
that is damaged, or whose answers do not fit the check, is discarded and the check is done again with pint.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

from ._cache import discard as _discard
from ._cache import read_json, subdir, write_json

_FORMAT = "2"
#: Entries kept in memory per process (a fit or a scenario builds many variants of one model).
_MEMORY_ENTRIES = 256
_MEMORY: dict[str, object] = {}


@functools.lru_cache(maxsize=1)
def _code_digest() -> str:
    # the check's behaviour is defined by these modules: a change to any of them invalidates every entry
    here = Path(__file__).parent
    h = hashlib.sha256(_FORMAT.encode())
    for name in ("model.py", "endpoints.py", "units.py", "expressions.py", "_check_cache.py"):
        h.update((here / name).read_bytes())
    return h.hexdigest()


def key(m) -> str:
    """Hash of the declarations the check depends on (not values, bounds, descriptions, sources or the name)."""
    decl = (m.time_unit, [(p.name, p.unit) for p in m.parameters], [(c.name, c.unit) for c in m.covariates],
            [(d.name, d.expression, d.unit) for d in m.derived],
            [(s.name, s.unit, s.initial, s.ddt) for s in m.states],
            [(o.name, o.expression, o.unit) + _endpoint(o) for o in m.outputs],
            [(d.name, d.target, d.unit, d.factor, d.lag, d.rate, d.duration) for d in m.doses])
    return hashlib.sha256((_code_digest() + repr(decl)).encode()).hexdigest()[:32]


def _endpoint(o) -> tuple:
    # what the check of an endpoint output depends on (nothing more for a continuous one: old keys stay valid)
    if not o.is_endpoint:
        return ()
    return (o.type, o.hazard, o.probability, tuple(o.categories), tuple(o.intercepts), o.effect, o.mean, o.dispersion)


def _path(k: str) -> Path:
    return subdir("checked") / f"{k}.json"


def remembered(k: str):
    """The checked trees of this process for key ``k``, or None."""
    return _MEMORY.get(k)


def remember(k: str, checked) -> None:
    """Keep the checked trees for key ``k`` in memory (bounded)."""
    if len(_MEMORY) >= _MEMORY_ENTRIES:
        _MEMORY.pop(next(iter(_MEMORY)))
    _MEMORY[k] = checked


def load(k: str) -> list | None:
    """The recorded transcript for key ``k``, or None (missing or damaged: removed)."""
    try:
        path = _path(k)
    except OSError:
        return None
    d = read_json(path)
    if not (isinstance(d, dict) and d.get("format") == _FORMAT and d.get("key") == k
            and isinstance(d.get("transcript"), list)):
        if d is not None:
            _discard(path)
        return None
    return d["transcript"]


def discard(k: str) -> None:
    """Remove the entry for key ``k`` (its answers did not fit the check)."""
    try:
        _discard(_path(k))
    except OSError:
        pass


def store(k: str, transcript: list) -> None:
    """Save the transcript of a successful check; a cache that cannot be written is skipped (it only saves time)."""
    try:
        write_json(_path(k), {"format": _FORMAT, "key": k, "transcript": transcript})
    except (OSError, TypeError, ValueError):
        pass
