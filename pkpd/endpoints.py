r"""Clinical endpoints: outputs that declare their own likelihood (time-to-event, binary, ordinal, count).

A dose is chosen for what it does to patients. An output of a model file may be a clinical endpoint instead of a
continuous biomarker; it then brings its likelihood with it (no residual error model) and its value in a simulation
is a probability or an expected value (unit ``1``):

==================  ===============================================  ==============================================
``type``            declaration                                      value in a simulation
==================  ===============================================  ==============================================
``time-to-event``   ``hazard`` [1/time_unit]; ``repeated``           survival :math:`S(t) = e^{-H(t)}` from t = 0
``binary``          ``probability`` [1]                              :math:`P(Y = 1)`
``ordinal``         ``categories``, ``intercepts``, ``effect`` [1]   expected category :math:`E[Y]`
``count``           ``mean`` [1 or 1/time_unit], ``dispersion`` [1]  expected count (from t = 0 for a rate)
==================  ===============================================  ==============================================

Likelihoods (per data record; :math:`\Delta H` is the cumulative hazard over the record's risk interval, from the
previous record of the same output, or from t = 0):

* time to event: an event at *t* (DV = 1) :math:`h(t)\,e^{-\Delta H}`; right-censored at *t* (DV = 0)
  :math:`e^{-\Delta H}`; an event known only to lie in the risk interval (DV = 1, CENS = 1)
  :math:`1 - e^{-\Delta H}`. Repeated events are a sequence of such records.
* binary: :math:`p^y (1 - p)^{1-y}`.
* ordinal (proportional odds, cumulative logits): :math:`\mathrm{logit}\,P(Y \ge c_k) = \alpha_k + \mathrm{effect}`
  for :math:`k = 1..K-1` (:math:`\alpha_1 > \alpha_2 > ...`), :math:`P(Y = c_k) = P(Y \ge c_k) - P(Y \ge c_{k+1})`.
* count: Poisson :math:`\mu^y e^{-\mu}/y!`, or negative binomial (NB2) with variance :math:`\mu + \alpha\mu^2`
  (``dispersion`` :math:`\alpha`), :math:`\frac{\Gamma(y + 1/\alpha)}{\Gamma(1/\alpha)\,y!}
  \left(\frac{1}{1+\alpha\mu}\right)^{1/\alpha}\left(\frac{\alpha\mu}{1+\alpha\mu}\right)^y`. A ``mean`` in
  1/time_unit is a rate: the expected count of a record is its integral over the record's interval.

The cumulative hazard (and the integral of a count rate) is integrated exactly by the engine as an extra state of
an *engine model* (:func:`engine_model`) that :func:`pkpd.compile_model` builds from the declaration: the compiled
engines and the JAX backend see an ordinary model and need nothing new. Its expressions are printed by pkpd from the
validated trees of the declaration (never the file's text).

The likelihood functions here are plain numpy (log-pmf / log-density of each record, optionally with its
derivatives with respect to the predictions); the fitters use them.

References
----------
Holford N (2013) A time to event tutorial for pharmacometricians. CPT Pharmacometrics Syst Pharmacol 2:e43.
Plan EL (2014) Modeling and simulation of count data. CPT Pharmacometrics Syst Pharmacol 3:e129.
McCullagh P (1980) Regression models for ordinal data. J R Stat Soc B 42:109-142.

Examples
--------
>>> import numpy as np
>>> float(binary_log_likelihood([1], [0.25])[0]) == float(np.log(0.25))
True
>>> tte_log_likelihood([1, 0], [0.5, 0.5], [2.0, 2.0]).round(4).tolist()   # an event, then a censoring, hazard 2
[0.1931, -0.5]
"""

from __future__ import annotations

import functools
import hashlib
import math
from dataclasses import dataclass

import numpy as np

from . import expressions as ex
from .errors import ModelFileError, UnitError, did_you_mean

__all__ = ["ENDPOINT_TYPES", "TYPES", "EndpointSpec", "binary_log_likelihood", "count_log_likelihood",
           "draw_binary", "draw_count", "draw_ordinal", "endpoint_specs", "engine_model",
           "ordinal_log_likelihood", "ordinal_probabilities", "tte_log_likelihood"]

#: Output types: "continuous" (a biomarker with a residual error model) and the clinical endpoints.
TYPES = ("continuous", "time-to-event", "binary", "ordinal", "count")
ENDPOINT_TYPES = TYPES[1:]
_KEYS = {  # the keys each type takes (beyond name, unit, description)
    "continuous": ("expression",),
    "time-to-event": ("hazard", "repeated"),
    "binary": ("probability",),
    "ordinal": ("categories", "intercepts", "effect"),
    "count": ("mean", "dispersion"),
}
_REQUIRED = {"continuous": ("expression",), "time-to-event": ("hazard",), "binary": ("probability",),
             "ordinal": ("categories", "intercepts"), "count": ("mean",)}
_DEFAULTS = {"expression": "", "hazard": None, "repeated": False, "probability": None, "categories": (),
             "intercepts": (), "effect": None, "mean": None, "dispersion": None}
MAX_CATEGORIES = 50


# ====================================================================================================== declaration
@dataclass(frozen=True)
class EndpointTrees:
    """The checked (unit-converted) trees of an endpoint output (private to the model's check)."""

    kind: str
    hazard: ex.Expr | None = None
    probability: ex.Expr | None = None
    intercepts: tuple = ()
    effect: ex.Expr | None = None
    mean: ex.Expr | None = None
    rate: bool = False          # a count whose mean is a rate [1/time_unit]
    dispersion: ex.Expr | None = None


def check_fields(o, file, section) -> None:
    """Types and presence of the endpoint keys of an output (no expressions parsed, no units)."""
    from .model import _as_float, _check_text

    if not isinstance(o.type, str) or o.type not in TYPES:
        raise ModelFileError(f"type must be one of {', '.join(TYPES)}; got {o.type!r:.60}."
                             + (did_you_mean(o.type, TYPES) if isinstance(o.type, str) else ""), file=file,
                             section=section, key="type")
    allowed = _KEYS[o.type]
    for key, default in _DEFAULTS.items():
        value = getattr(o, key)
        if key not in allowed and value != default and not (key == "categories" and value == ()):
            kind = "continuous outputs (type 'continuous')" if key == "expression" else \
                next(f"{t} outputs" for t, keys in _KEYS.items() if key in keys)
            raise ModelFileError(f"key {key!r} applies to {kind} only; this output has type {o.type!r}", file=file,
                                 section=section, key=key)
    for key in _REQUIRED[o.type]:
        value = getattr(o, key)
        if value is None or (isinstance(value, str) and not value.strip()) or (key != "expression" and not value):
            raise ModelFileError(f"missing required key {key!r} ({'an' if o.type[0] in 'aeiou' else 'a'} {o.type} "
                                 "output needs it)", file=file, section=section, key=key)
    for key in ("hazard", "probability", "effect", "mean", "dispersion"):
        value = getattr(o, key)
        if value is not None:
            _check_text(value, key, file, section, key, max_len=ex.MAX_LENGTH)
    if not isinstance(o.repeated, bool):
        raise ModelFileError(f"repeated must be true or false; got {o.repeated!r:.60}", file=file, section=section,
                             key="repeated")
    if o.type == "ordinal":
        cats = o.categories
        if isinstance(cats, str | bytes) or not hasattr(cats, "__iter__"):
            raise ModelFileError(f"categories must be a list of numbers (the DV codes, increasing); got {cats!r:.60}",
                                 file=file, section=section, key="categories")
        values = [_as_float(c, "a category", file, section, "categories") for c in cats]
        if not 2 <= len(values) <= MAX_CATEGORIES:
            raise ModelFileError(f"an ordinal output needs 2 to {MAX_CATEGORIES} categories; got {len(values)}",
                                 file=file, section=section, key="categories")
        if any(b <= a for a, b in zip(values, values[1:])):
            raise ModelFileError(f"categories must be strictly increasing (ordered grades); got {values}", file=file,
                                 section=section, key="categories")
        ints = o.intercepts
        if not isinstance(ints, tuple):
            raise ModelFileError("intercepts must be a list of expressions, one per category after the first",
                                 file=file, section=section, key="intercepts")
        if len(ints) != len(values) - 1:
            raise ModelFileError(f"intercepts must have one expression per category after the first ({len(values) - 1}"
                                 f" for {len(values)} categories: logit P(Y >= category k) = intercept + effect); got "
                                 f"{len(ints)}", file=file, section=section, key="intercepts")
        for i, text in enumerate(ints):
            _check_text(text, f"intercepts[{i}]", file, section, "intercepts", max_len=ex.MAX_LENGTH)


def check_trees(o, units: dict, time_unit, allowed: dict, all_known: dict, alg, file, section):
    """Parse and unit-check the expressions of an endpoint output: (tree for the model's output list, trees)."""
    from . import units as un
    from .model import _parse, _unit, _units_check

    one = alg.one
    declared = _unit(o.unit, file, section, "unit", alg)
    if not alg.compatible(declared, one):
        raise UnitError(f"the value of a {o.type} output is a probability or an expected value: its unit must be "
                        f"'1' (or left out); got {o.unit!r}", file=file, section=section, key="unit")

    def tree(key, text, target, what):
        t = _parse(text, file, section, key, allowed, all_known)
        try:   # the unit check's own message, named once by the error raised here (file, section, key)
            return un.check(t, units, target, bare_number_unit=target, algebra=alg)[0]
        except un.UnitCheckError as err:
            raise UnitError(f"{what}: {err}", file=file, section=section, key=key) from None

    per_time = one / time_unit
    if o.type == "time-to-event":
        h = tree("hazard", o.hazard, per_time, "a hazard is a rate [1/time_unit]")
        return ex.Num(math.nan), EndpointTrees("time-to-event", hazard=h)
    if o.type == "binary":
        p = tree("probability", o.probability, one, "a probability is dimensionless")
        return p, EndpointTrees("binary", probability=p)
    if o.type == "ordinal":
        ints = tuple(tree("intercepts", text, one, "a cumulative logit is dimensionless") for text in o.intercepts)
        eff = tree("effect", o.effect if o.effect is not None else "0", one, "the effect on the logits is "
                   "dimensionless")
        return ex.Num(math.nan), EndpointTrees("ordinal", intercepts=ints, effect=eff)
    # count: the unit of the mean says whether it is the expected count of a record or a rate to integrate
    raw = _parse(o.mean, file, section, "mean", allowed, all_known)
    _, u = _units_check(raw, units, None, file, section, "mean", alg, bare=one)
    if alg.compatible(u, one):
        rate = False
        mean = _units_check(raw, units, one, file, section, "mean", alg, bare=one)[0]
    elif alg.compatible(u, per_time):
        rate = True
        mean = _units_check(raw, units, per_time, file, section, "mean", alg)[0]
    else:
        raise UnitError(f"the mean of a count is the expected count of a record (unit '1') or a rate integrated over "
                        f"the record's interval (unit 1/{time_unit}); got an expression in another unit",
                        file=file, section=section, key="mean")
    disp = None
    if o.dispersion is not None:
        disp = tree("dispersion", o.dispersion, one, "the dispersion of a negative binomial is dimensionless")
    return (ex.Num(math.nan) if rate else mean), EndpointTrees("count", mean=mean, rate=rate, dispersion=disp)


# ====================================================================================================== engine model
@dataclass(frozen=True)
class EndpointSpec:
    """An endpoint output and the outputs of the engine model that hold what its likelihood needs.

    Attributes
    ----------
    name, kind : str
        The output and its type.
    categories : tuple[float, ...]
        Ordinal DV codes, increasing.
    repeated : bool
        Time to event: repeated events (simulation draws events until the end of follow-up).
    rate : bool
        Count: ``mean`` is a rate [1/time_unit] integrated over each interval.
    value : str
        Engine output with the endpoint's value (survival, probability, expected category or count).
    hazard, cumulative : str or None
        Time to event: hazard [1/time_unit] and cumulative hazard [1] outputs. Count with a rate: ``cumulative`` is
        the expected count since t = 0.
    logits : tuple[str, ...]
        Ordinal: the cumulative logits, ``logit P(Y >= categories[k])`` for k = 1..K-1.
    dispersion : str or None
        Count: the negative-binomial dispersion output (None: Poisson).
    state : str or None
        The extra state of the engine model (cumulative hazard, or expected count).
    """

    name: str
    kind: str
    categories: tuple = ()
    repeated: bool = False
    rate: bool = False
    value: str = ""
    hazard: str | None = None
    cumulative: str | None = None
    logits: tuple = ()
    dispersion: str | None = None
    state: str | None = None


def engine_model(model):
    """The model the engines compile: ``model`` itself when it has no endpoint outputs; otherwise a copy with one
    extra state per time-to-event output (its cumulative hazard, ``d/dt = hazard``, from 0) and per count whose mean
    is a rate, its endpoint outputs turned into ordinary outputs (their values), and helper outputs after the
    declared ones (hazard, cumulative hazard, cumulative logits, dispersion).

    Examples
    --------
    >>> import dataclasses, pkpd
    >>> m = pkpd.load_model("pk_1cmt_iv")
    >>> m = dataclasses.replace(m, outputs=m.outputs + (pkpd.Output("event", type="time-to-event", hazard="0.1 * ke"),))
    >>> engine_model(m).state_names, engine_model(m).output_names
    (('central', 'event_cumhaz'), ('conc', 'event', 'event_hazard', 'event_cumulative_hazard'))
    """
    # (the cache is keyed by equality: a model without endpoints is returned as the very object given)
    return _engine(model)[0] if model.endpoint_names else model


def endpoint_specs(model) -> tuple[EndpointSpec, ...]:
    """The :class:`EndpointSpec` of every endpoint output of ``model`` (declaration order)."""
    return _engine(model)[1] if model.endpoint_names else ()


def _canonical(text: str) -> str:
    # the engine model's expressions are printed by pkpd from the validated tree, wrapped so they compose safely
    return "(" + ex.to_text(ex.parse(text)) + ")"


def _num(v: float) -> str:
    return repr(float(v))


@functools.lru_cache(maxsize=64)
def _engine(model):
    from .model import Output, State

    if not model.endpoint_names:
        return model, ()
    taken = {x.name for g in (model.parameters, model.covariates, model.derived, model.states, model.outputs)
             for x in g} | {"t"}

    def fresh(base: str) -> str:
        name = base if len(base) <= 120 else "endpoint_" + hashlib.sha256(base.encode()).hexdigest()[:24]
        k = 1
        out = name
        while out in taken:
            out = f"{name}_{k}"
            k += 1
        taken.add(out)
        return out

    states = list(model.states)
    outputs, helpers, specs = [], [], []
    per_time = f"1/{model.time_unit}"
    for o, trees in zip(model.outputs, model._checked.endpoints or (None,) * len(model.outputs)):
        if not o.is_endpoint:
            outputs.append(o)
            continue
        if o.type == "time-to-event":
            H = fresh(f"{o.name}_cumhaz")
            states.append(State(H, "1", "0", _canonical(o.hazard), f"cumulative hazard of {o.name}"))
            outputs.append(Output(o.name, f"exp(-{H})", "1", o.description, o.label, o.scale))
            h_out, H_out = fresh(f"{o.name}_hazard"), fresh(f"{o.name}_cumulative_hazard")
            helpers += [Output(h_out, _canonical(o.hazard), per_time, f"hazard of {o.name}"),
                        Output(H_out, H, "1", f"cumulative hazard of {o.name} from the start")]
            specs.append(EndpointSpec(o.name, o.type, repeated=o.repeated, value=o.name, hazard=h_out,
                                      cumulative=H_out, state=H))
        elif o.type == "binary":
            outputs.append(Output(o.name, _canonical(o.probability), "1", o.description, o.label, o.scale))
            specs.append(EndpointSpec(o.name, o.type, value=o.name))
        elif o.type == "ordinal":
            effect = _canonical(o.effect) if o.effect is not None else "0"
            logit_text = [f"{_canonical(a)} + {effect}" for a in o.intercepts]
            cats = o.categories
            terms = [_num(cats[0])] + [f"{_num(cats[k] - cats[k - 1])} / (1 + exp(-({logit_text[k - 1]})))"
                                       for k in range(1, len(cats))]
            outputs.append(Output(o.name, " + ".join(terms), "1", o.description, o.label, o.scale))
            names = tuple(fresh(f"{o.name}_logit{k}") for k in range(1, len(cats)))
            helpers += [Output(n, text, "1", f"logit P({o.name} >= {cats[k + 1]:g})")
                        for k, (n, text) in enumerate(zip(names, logit_text))]
            specs.append(EndpointSpec(o.name, o.type, categories=tuple(cats), value=o.name, logits=names))
        else:  # count
            rate = bool(trees.rate)
            state = None
            if rate:
                state = fresh(f"{o.name}_expected")
                states.append(State(state, "1", "0", _canonical(o.mean), f"expected count of {o.name} from the "
                                                                          "start"))
                outputs.append(Output(o.name, state, "1", o.description, o.label, o.scale))
                r = fresh(f"{o.name}_rate")
                helpers.append(Output(r, _canonical(o.mean), per_time, f"event rate of {o.name}"))
            else:
                outputs.append(Output(o.name, _canonical(o.mean), "1", o.description, o.label, o.scale))
            disp = None
            if o.dispersion is not None:
                disp = fresh(f"{o.name}_dispersion")
                helpers.append(Output(disp, _canonical(o.dispersion), "1", f"dispersion of {o.name}"))
            specs.append(EndpointSpec(o.name, o.type, rate=rate, value=o.name, cumulative=o.name if rate else None,
                                      dispersion=disp, state=state))
    from dataclasses import replace

    engine = replace(model, states=tuple(states), outputs=tuple(outputs) + tuple(helpers))
    return engine, tuple(specs)


# ====================================================================================================== likelihoods
def _log_expit(x):
    from scipy.special import log_expit

    return log_expit(x)


def tte_log_likelihood(event, delta_H, hazard, interval=None, *, gradient: bool = False):
    r"""Log-likelihood of time-to-event records.

    Parameters
    ----------
    event : array_like of {0, 1}
        DV: 1 for an event, 0 for right censoring at the record's time.
    delta_H : array_like
        Cumulative hazard over the record's risk interval [1] (>= 0).
    hazard : array_like
        Hazard at the record's time [1/time unit] (used by exact events only).
    interval : array_like of bool, optional
        True where the event is only known to lie in the risk interval (interval censoring).
    gradient : bool
        Also return the derivatives with respect to ``delta_H`` and ``hazard``.

    Returns
    -------
    ndarray, or (ndarray, ndarray, ndarray) with ``gradient``
        :math:`\log h - \Delta H` (event), :math:`-\Delta H` (censored), :math:`\log(1 - e^{-\Delta H})`
        (interval); NaN where the values are impossible (a negative hazard or cumulative hazard, or a hazard of 0 at
        an exact event, which then has probability density 0).

    Examples
    --------
    >>> tte_log_likelihood([1], [0.2], [0.5], [True]).round(5)   # log(1 - exp(-0.2))
    array([-1.70777])
    """
    ev = np.asarray(event, dtype=float) == 1
    dH = np.asarray(delta_H, dtype=float)
    h = np.asarray(hazard, dtype=float)
    iv = np.zeros(ev.shape, dtype=bool) if interval is None else np.asarray(interval, dtype=bool) & ev
    exact = ev & ~iv
    # the integrated hazard can come out a few ulps below 0 where the hazard is 0
    dH = np.where((dH < 0) & (dH > -1e-10), 0.0, dH)
    with np.errstate(all="ignore"):
        ll = -dH + np.where(exact, np.log(np.where(exact, h, 1.0)), 0.0)
        ll = np.where(iv, np.log(-np.expm1(-dH)), ll)
        bad = ~(dH >= 0) | (exact & ~(h > 0))
        ll = np.where(bad, np.nan, ll)
        if not gradient:
            return ll
        g_dH = np.where(iv, 1.0 / np.expm1(dH), -1.0)
        g_h = np.where(exact, 1.0 / np.where(exact, h, 1.0), 0.0)
    return ll, g_dH, g_h


def binary_log_likelihood(observed, probability, *, gradient: bool = False):
    """Log-likelihood of binary records: ``log p`` where DV = 1, ``log(1 - p)`` where DV = 0 (NaN for p outside
    [0, 1]); with ``gradient``, also d/dp.

    Examples
    --------
    >>> binary_log_likelihood([0, 1], [0.2, 0.2]).round(4)
    array([-0.2231, -1.6094])
    """
    y = np.asarray(observed, dtype=float)
    p = np.asarray(probability, dtype=float)
    with np.errstate(all="ignore"):
        ll = np.where(y == 1, np.log(p), np.log1p(-p))
        ll = np.where((p >= 0) & (p <= 1), ll, np.nan)
        if not gradient:
            return ll
        g = np.where(y == 1, 1.0 / p, -1.0 / (1.0 - p))
    return ll, g


def ordinal_log_likelihood(category_index, logits, *, gradient: bool = False):
    r"""Log-likelihood of ordinal records under cumulative logits.

    Parameters
    ----------
    category_index : array_like of int, shape (n,)
        Index of the observed category (0 .. K-1).
    logits : array_like, shape (n, K - 1)
        :math:`\mathrm{logit}\,P(Y \ge c_k)`, k = 1..K-1, decreasing along the last axis.
    gradient : bool
        Also return the derivatives with respect to ``logits`` (n, K-1).

    Returns
    -------
    ndarray (n,)
        :math:`\log P(Y = c_k)`, computed stably (differences of logistic functions in log space); NaN where the
        logits are not decreasing (a negative probability): in a row where any logit exceeds the one before it,
        whichever category was observed (the model is not a distribution there), and where the observed category
        has probability 0 (its two logits equal).

    Examples
    --------
    >>> import numpy as np
    >>> ll = ordinal_log_likelihood([0, 1, 2], [[1.0, -1.0]] * 3)
    >>> np.exp(ll).round(4).tolist(), round(float(np.exp(ll).sum()), 12)
    ([0.2689, 0.4621, 0.2689], 1.0)
    """
    k = np.asarray(category_index, dtype=np.int64)
    L = np.atleast_2d(np.asarray(logits, dtype=float))
    n, m = L.shape
    inf = np.full((n, 1), np.inf)
    ext = np.concatenate([inf, L, -inf], axis=1)          # l_0 = +inf (P(Y >= c_0) = 1), l_K = -inf
    rows = np.arange(n)
    a = ext[rows, k]                                       # logit P(Y >= c_k)
    b = ext[rows, k + 1]                                   # logit P(Y >= c_{k+1})
    with np.errstate(all="ignore"):
        # sigma(a) - sigma(b) = sigma(a) sigma(-b) (1 - exp(-(a - b)))
        gap = a - b
        ll = _log_expit(a) + _log_expit(-b) + np.log(-np.expm1(-gap))
        ll = np.where(np.isinf(a) & np.isinf(b), 0.0, ll)
        ll = np.where(gap > 0, ll, np.nan)
        # a category that was not observed can still have a negative probability: the whole row is then invalid
        ll = np.where(np.any(np.diff(L, axis=1) > 0, axis=1), np.nan, ll)
        if not gradient:
            return ll
        from scipy.special import expit

        inv = np.where(np.isfinite(gap), 1.0 / np.expm1(gap), 0.0)
        ga = np.where(np.isfinite(a), expit(-a) + inv, 0.0)
        gb = np.where(np.isfinite(b), -expit(b) - inv, 0.0)
    grad = np.zeros((n, m))
    has_a = (k >= 1) & (k <= m)
    grad[rows[has_a], k[has_a] - 1] += ga[has_a]
    has_b = k + 1 <= m
    grad[rows[has_b], k[has_b]] += gb[has_b]
    return ll, grad


def ordinal_probabilities(logits) -> np.ndarray:
    """Category probabilities (..., K) from cumulative logits (..., K-1) (:func:`ordinal_log_likelihood`).

    Examples
    --------
    >>> ordinal_probabilities([[2.0, 0.0, -2.0]]).round(4)
    array([[0.1192, 0.3808, 0.3808, 0.1192]])
    """
    L = np.asarray(logits, dtype=float)
    shape = L.shape
    flat = L.reshape(-1, shape[-1])
    K = shape[-1] + 1
    out = np.stack([np.exp(ordinal_log_likelihood(np.full(flat.shape[0], k), flat)) for k in range(K)], axis=-1)
    return out.reshape(shape[:-1] + (K,))


def count_log_likelihood(observed, mean, dispersion=None, *, gradient: bool = False):
    r"""Log-pmf of count records: Poisson, or negative binomial (NB2, variance :math:`\mu + \alpha\mu^2`).

    Parameters
    ----------
    observed : array_like
        Counts (integers >= 0).
    mean : array_like
        Expected counts :math:`\mu \ge 0`.
    dispersion : array_like, optional
        :math:`\alpha > 0` (None: Poisson).
    gradient : bool
        Also return d/d mean and d/d dispersion (zeros for Poisson).

    Examples
    --------
    >>> count_log_likelihood([0, 3], [2.0, 2.0]).round(4)     # Poisson(2)
    array([-2.    , -1.7123])
    >>> count_log_likelihood([3], [2.0], [0.5]).round(4)       # scipy.stats.nbinom(2, 0.5).logpmf(3) = log(4/32)
    array([-2.0794])
    """
    from scipy.special import gammaln, xlogy

    y = np.asarray(observed, dtype=float)
    mu = np.asarray(mean, dtype=float)
    with np.errstate(all="ignore"):
        if dispersion is None:
            ll = xlogy(y, mu) - mu - gammaln(y + 1.0)
            ll = np.where(mu >= 0, ll, np.nan)
            if not gradient:
                return ll
            g_mu = np.where(y > 0, y / mu, 0.0) - 1.0
            return ll, g_mu, np.zeros_like(ll)
        a = np.asarray(dispersion, dtype=float)
        r = 1.0 / a
        am = a * mu
        ll = (gammaln(y + r) - gammaln(r) - gammaln(y + 1.0) - r * np.log1p(am) + xlogy(y, am) - xlogy(y, 1.0 + am))
        ll = np.where((mu >= 0) & (a > 0), ll, np.nan)
        if not gradient:
            return ll
        from scipy.special import digamma

        g_mu = np.where(y > 0, y / mu, 0.0) - (y + r) * a / (1.0 + am)
        g_a = -(digamma(y + r) - digamma(r)) / a**2 + np.log1p(am) / a**2 + (y - mu) / (a * (1.0 + am))
    return ll, g_mu, g_a


# ====================================================================================================== draws
def _rng(rng):
    if not isinstance(rng, np.random.Generator):
        from .errors import PkpdError

        raise PkpdError(f"rng must be a numpy Generator (np.random.default_rng(seed)); got {type(rng).__name__}")
    return rng


def draw_binary(probability, rng: np.random.Generator) -> np.ndarray:
    """Bernoulli draws (0.0 / 1.0) with the given probabilities.

    Examples
    --------
    >>> draw_binary([0.0, 1.0], np.random.default_rng(0))
    array([0., 1.])
    """
    p = np.asarray(probability, dtype=float)
    return (_rng(rng).random(p.shape) < p).astype(float)


def draw_ordinal(logits, categories, rng: np.random.Generator) -> np.ndarray:
    """Categories drawn from cumulative logits (..., K-1): the DV codes in ``categories`` (K,).

    Examples
    --------
    >>> draw_ordinal([[50.0, -50.0]], [0, 1, 2], np.random.default_rng(0))
    array([1.])
    """
    P = ordinal_probabilities(logits)
    cum = np.cumsum(P, axis=-1)
    u = _rng(rng).random(P.shape[:-1])[..., None]
    index = np.minimum(np.sum(cum < u, axis=-1), P.shape[-1] - 1)
    return np.asarray(categories, dtype=float)[index]


def draw_count(mean, rng: np.random.Generator, dispersion=None) -> np.ndarray:
    """Poisson draws, or negative binomial ones (a gamma-Poisson mixture: rate ~ Gamma(1/alpha, alpha mean)).

    Examples
    --------
    >>> draw_count([0.0, 0.0], np.random.default_rng(0))
    array([0., 0.])
    >>> draw_count(0.0, np.random.default_rng(0))   # a scalar mean: a numpy float, as draw_binary gives
    np.float64(0.0)
    """
    mu = np.asarray(mean, dtype=float)
    rng = _rng(rng)
    # size=mu.shape: an array for a scalar mean too (the Generator gives a Python int there), the same draws;
    # [()] then gives a scalar mean its numpy float
    if dispersion is None:
        return rng.poisson(mu, size=mu.shape).astype(float)[()]
    a = np.broadcast_to(np.asarray(dispersion, dtype=float), mu.shape)
    lam = rng.gamma(1.0 / a, a * mu)
    return rng.poisson(lam, size=mu.shape).astype(float)[()]
