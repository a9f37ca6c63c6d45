"""The model declaration: frozen parameters, covariates, derived quantities, states, outputs and dose targets.

A :class:`Model` is a plain, immutable value. Its constructor validates everything once (names, expressions through
the allow-list parser, units and the dimensional consistency of every equation) and keeps the checked expression
trees for the compiler; nothing downstream re-checks. A model knows nothing about dosing or data.

Examples
--------
>>> m = Model(
...     name="decay", time_unit="h",
...     parameters=(Parameter("k", 0.1, "1/h", (0.001, 10.0), "rate constant", "textbook"),),
...     states=(State("A", "mg", initial="0", ddt="-k * A"),),
...     outputs=(Output("amount", "A", "mg"),),
...     doses=(DoseTarget("iv", target="A", unit="mg"),),
... )
>>> m.with_parameters(k=0.2).parameter("k").value
0.2
"""

from __future__ import annotations

import keyword
import math
import numbers
import re
import unicodedata
from dataclasses import dataclass, field, replace

from . import _check_cache, endpoints
from . import expressions as ex
from . import units as un
from ._text import printable
from .errors import ModelFileError, PkpdError, UnitError, did_you_mean


@dataclass(frozen=True)
class Parameter:
    """A model parameter.

    Attributes
    ----------
    name : str
    value : float
        Typical value [unit].
    unit : str
        pint unit string (``"1"`` for dimensionless).
    bounds : tuple[float, float]
        Plausible range [unit]. Fitting keeps estimates inside it and sensitivity analyses sample it; a value
        outside is allowed elsewhere, with a :class:`~pkpd.errors.BoundsWarning` (a model *file* whose value lies
        outside its own bounds is an error).
    description, source : str
        What it is; where the value comes from.
    assumption : bool
        True when the value is our assumption rather than a measured or published value.
    prior : prior distribution or None
        What is known about the value before the data (:mod:`pkpd.priors`), used by ``fit(..., priors=True)``,
        ``fit_population(..., priors=True)`` and :func:`pkpd.sample`; it carries its own source.
    """

    name: str
    value: float
    unit: str
    bounds: tuple[float, float] = (-math.inf, math.inf)
    description: str = ""
    source: str = ""
    assumption: bool = False
    prior: object = None

    def __post_init__(self):
        # bounds given as a list or a 1-d numpy array become a tuple, so the declaration stays hashable and
        # immutable (anything else but a tuple of two is refused by the model's checks)
        if isinstance(self.bounds, list):
            object.__setattr__(self, "bounds", tuple(self.bounds))
        elif hasattr(self.bounds, "tolist") and getattr(self.bounds, "ndim", 0) == 1:
            object.__setattr__(self, "bounds", tuple(self.bounds.tolist()))


@dataclass(frozen=True)
class Covariate:
    """A subject-level input (e.g. body weight ``WT`` [kg]) with a default ``value``."""

    name: str
    unit: str
    value: float
    description: str = ""


@dataclass(frozen=True)
class Derived:
    """A named intermediate quantity, evaluated in declaration order."""

    name: str
    expression: str
    unit: str
    description: str = ""


@dataclass(frozen=True)
class State:
    """An ODE state: ``d/dt name = ddt``, starting at ``initial`` (an expression, e.g. a steady state)."""

    name: str
    unit: str
    initial: str
    ddt: str
    description: str = ""


#: Axis scales an output may declare for its figures (``""``: the default rule of :mod:`pkpd.plots`).
SCALES = ("", "log", "linear")


@dataclass(frozen=True)
class Output:
    """An observable quantity (what data measure), with its unit; or a clinical endpoint that declares its likelihood.

    ``label`` is the human name figures and reports show (e.g. ``"Plasma IL-10"``; default: the name) and
    ``scale`` the y axis of its figures: ``"log"``, ``"linear"`` or ``""`` for the default rule of
    :mod:`pkpd.plots` (linear for dimensionless outputs, log when the values span more than 3 decades).

    A continuous output (``type="continuous"``, the default) is ``expression`` in ``unit``; data of it scatter around
    it by a residual error model given to the fit. The other types are clinical endpoints (:mod:`pkpd.endpoints`):
    their value is a probability or an expected value (unit ``"1"``) and they bring their own likelihood:

    * ``"time-to-event"``: ``hazard`` [1/time_unit] (may depend on states); single events, or ``repeated`` ones;
    * ``"binary"``: ``probability`` [1] of DV = 1;
    * ``"ordinal"``: ordered ``categories`` (the DV codes) with cumulative logits
      ``logit P(Y >= categories[k]) = intercepts[k - 1] + effect`` (proportional odds);
    * ``"count"``: ``mean`` (Poisson) and optional ``dispersion`` (negative binomial, variance ``mean + dispersion
      * mean**2``); a ``mean`` in 1/time_unit is a rate, integrated over each observation interval.

    Examples
    --------
    >>> Output("death", type="time-to-event", hazard="h0 * exp(-beta * R)").unit
    '1'
    """

    name: str
    expression: str = ""
    unit: str = "1"
    description: str = ""
    label: str = ""
    scale: str = ""
    type: str = "continuous"
    hazard: str | None = None
    repeated: bool = False
    probability: str | None = None
    categories: tuple[float, ...] = ()
    intercepts: tuple[str, ...] = ()
    effect: str | None = None
    mean: str | None = None
    dispersion: str | None = None

    def __post_init__(self):
        # lists (from TOML or Python) become tuples, so the declaration stays hashable and immutable
        for key in ("categories", "intercepts"):
            value = getattr(self, key)
            if isinstance(value, list):
                object.__setattr__(self, key, tuple(value))
        if self.intercepts and isinstance(self.intercepts, tuple):
            object.__setattr__(self, "intercepts", tuple(
                repr(float(v)) if isinstance(v, int | float) and not isinstance(v, bool) else v
                for v in self.intercepts))

    @property
    def is_endpoint(self) -> bool:
        """True for a clinical endpoint (time-to-event, binary, ordinal or count), False for a continuous output."""
        return self.type != "continuous"


@dataclass(frozen=True)
class DoseTarget:
    """Where a dose goes.

    The amount entering ``target`` is ``dose x factor`` (bioavailability, trapped fraction, ...), converted to the
    state's unit. ``lag`` [time], ``rate`` [unit/time] and ``duration`` [time] are optional expressions (NONMEM's
    ALAG, R and D); ``rate``/``duration`` apply to infusions whose rate or duration is *modelled*.
    """

    name: str
    target: str
    unit: str
    factor: str = "1"
    lag: str = "0"
    rate: str | None = None
    duration: str | None = None
    description: str = ""


@dataclass(frozen=True)
class _Checked:
    """The validated, unit-converted expression trees the compiler uses (private)."""

    static_derived: tuple[tuple[str, ex.Expr], ...]
    dynamic_derived: tuple[tuple[str, ex.Expr], ...]
    initial: tuple[ex.Expr, ...]
    ddt: tuple[ex.Expr, ...]
    outputs: tuple[ex.Expr, ...]
    dose_factor: tuple[ex.Expr, ...]
    dose_conversion: tuple[float, ...]
    dose_factor_dimensionless: tuple[bool, ...]
    dose_lag: tuple[ex.Expr, ...]
    dose_rate: tuple[ex.Expr | None, ...]
    dose_duration: tuple[ex.Expr | None, ...]
    endpoints: tuple = ()   # per output: None (continuous) or pkpd.endpoints.EndpointTrees


@dataclass(frozen=True)
class Model:
    """A PK-PD model: the immutable declaration. Build it in Python or with :func:`pkpd.load_model`.

    Attributes
    ----------
    name, version, description : str
    time_unit : str
        Unit of ``t`` and of every ``d/dt`` (hours for the shipped MSC models).
    parameters, covariates, derived, states, outputs, doses : tuple
        The declarations, in file order (states in solver order; the first dose target is the default).
    references : tuple[str, ...]
    file : str or None
        The file it was loaded from (for messages).

    Examples
    --------
    >>> import pkpd
    >>> m = pkpd.load_model("msc_salvadori")
    >>> [s.name for s in m.states]
    ['C', 'P', 'R', 'I']
    """

    name: str
    time_unit: str
    parameters: tuple[Parameter, ...]
    states: tuple[State, ...]
    outputs: tuple[Output, ...] = ()
    doses: tuple[DoseTarget, ...] = ()
    covariates: tuple[Covariate, ...] = ()
    derived: tuple[Derived, ...] = ()
    description: str = ""
    version: str = "1.0"
    references: tuple[str, ...] = ()
    file: str | None = field(default=None, compare=False)
    _checked: _Checked = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        for name in ("parameters", "states", "outputs", "doses", "covariates", "derived", "references"):
            value = getattr(self, name)
            if isinstance(value, str | bytes) or not hasattr(value, "__iter__"):
                raise ModelFileError(f"{name} must be a sequence; got {type(value).__name__}",
                                     file=self.file or _safe_name(self.name), section=name)
            object.__setattr__(self, name, tuple(value))
        object.__setattr__(self, "_checked", _checked_trees(self))

    # ------------------------------------------------------------------ lookups
    @property
    def parameter_names(self) -> tuple[str, ...]:
        """Parameter names in declaration order."""
        return tuple(p.name for p in self.parameters)

    @property
    def state_names(self) -> tuple[str, ...]:
        """State names in solver order."""
        return tuple(s.name for s in self.states)

    @property
    def output_names(self) -> tuple[str, ...]:
        """Output names in declaration order."""
        return tuple(o.name for o in self.outputs)

    @property
    def endpoint_names(self) -> tuple[str, ...]:
        """Names of the outputs that are clinical endpoints (time-to-event, binary, ordinal, count)."""
        return tuple(o.name for o in self.outputs if o.is_endpoint)

    @property
    def covariate_names(self) -> tuple[str, ...]:
        """Covariate names in declaration order."""
        return tuple(c.name for c in self.covariates)

    def parameter(self, name: str) -> Parameter:
        """The parameter called ``name`` (error with close matches otherwise)."""
        for p in self.parameters:
            if p.name == name:
                return p
        raise ModelFileError(f"unknown parameter {name!r}." + did_you_mean(name, self.parameter_names),
                             file=self.name, section="parameters")

    def dose_target(self, name: str | None) -> DoseTarget:
        """The dose target called ``name``; ``None`` gives the default (first) one."""
        if not self.doses:
            raise ModelFileError("the model declares no dose targets, so it cannot be dosed", file=self.name,
                                 section="doses")
        if name is None:
            return self.doses[0]
        for d in self.doses:
            if d.name == name:
                return d
        raise ModelFileError(f"unknown dose target {name!r}." + did_you_mean(name, [d.name for d in self.doses]),
                             file=self.name, section="doses")

    def unit_of(self, name: str) -> str:
        """Declared unit of any state, output, parameter, covariate or derived quantity."""
        for group in (self.states, self.outputs, self.parameters, self.covariates, self.derived):
            for item in group:
                if item.name == name:
                    return item.unit
        if name == "t":
            return self.time_unit
        raise ModelFileError(f"unknown name {name!r}." + did_you_mean(name, _all_names(self)), file=self.name)

    @property
    def is_linear(self) -> bool:
        """Whether the equations are linear with coefficients constant between events (``dy/dt = A y + b``), so
        that simulations use the exact closed form (:mod:`pkpd.closed_form`); the reason when not:
        ``pkpd.linear_system.linearity(model).reason``.

        Examples
        --------
        >>> import pkpd
        >>> pkpd.load_model("pk_2cmt_oral").is_linear, pkpd.load_model("msc_salvadori").is_linear
        (True, False)
        """
        from .linear_system import linearity

        return linearity(self).is_linear

    # ------------------------------------------------------------------ variants
    def with_parameters(self, **values: float) -> Model:
        """A copy with some parameter values changed; unknown names are errors.

        A value outside the parameter's bounds (its plausible range) is used, with one
        :class:`~pkpd.errors.BoundsWarning` naming the parameter and its range; only fitting enforces bounds.

        Examples
        --------
        >>> import pkpd
        >>> pkpd.load_model("msc_salvadori").with_parameters(k_c=0.05).parameter("k_c").value
        0.05
        """
        from ._params import warn_outside_bounds

        known = {p.name: p for p in self.parameters}
        for name, value in values.items():
            if name not in known:
                raise ModelFileError(f"unknown parameter {name!r}." + did_you_mean(name, known), file=self.name,
                                     section="parameters")
            _as_float(value, f"value of parameter {name!r}", self.name)
        warn_outside_bounds(self, values)
        params = tuple(replace(p, value=float(values[p.name])) if p.name in values else p for p in self.parameters)
        return replace(self, parameters=params)

    def with_bounds(self, **bounds: tuple[float, float]) -> Model:
        """A copy with new bounds for some parameters (``k_c=(0.001, 1.0)``)."""
        known = set(self.parameter_names)
        for name in bounds:
            if name not in known:
                raise ModelFileError(f"unknown parameter {name!r}." + did_you_mean(name, known), file=self.name,
                                     section="parameters")
        params = tuple(_rebound(p, tuple(map(float, bounds[p.name]))) if p.name in bounds else p
                       for p in self.parameters)
        return replace(self, parameters=params)

    def with_priors(self, **priors) -> Model:
        """A copy with other priors for some parameters (a :mod:`pkpd.priors` distribution, or None to drop one).

        Examples
        --------
        >>> import pkpd
        >>> m = pkpd.load_model("pk_1cmt_iv").with_priors(CL=pkpd.LogNormalPrior(2.0, 0.5))
        >>> m.parameter("CL").prior.median
        2.0
        """
        known = set(self.parameter_names)
        for name in priors:
            if name not in known:
                raise ModelFileError(f"unknown parameter {name!r}." + did_you_mean(name, known), file=self.name,
                                     section="parameters")
        params = tuple(replace(p, prior=priors[p.name]) if p.name in priors else p for p in self.parameters)
        return replace(self, parameters=params)

    # ------------------------------------------------------------------ display
    def table(self) -> list[dict[str, object]]:
        """Parameter table rows: name, value, unit, bounds, description, source, assumption."""
        return [dict(name=p.name, value=p.value, unit=p.unit, lower=p.bounds[0], upper=p.bounds[1],
                     description=p.description, source=p.source, assumption=p.assumption) for p in self.parameters]

    def __repr__(self) -> str:
        head = f"Model {self.name!r} v{self.version} (time in {self.time_unit})"
        lines = [head, "  states: " + ", ".join(f"{s.name} [{s.unit}]" for s in self.states)]
        if self.outputs:
            lines.append("  outputs: " + ", ".join(f"{o.name} [{o.unit}]" for o in self.outputs))
        if self.doses:
            lines.append("  doses: " + ", ".join(f"{d.name} -> {d.target} [{d.unit}]" for d in self.doses))
        if self.covariates:
            lines.append("  covariates: " + ", ".join(f"{c.name} [{c.unit}] = {c.value:g}" for c in self.covariates))
        lines.append("  parameters (* = assumption):")
        lines += _parameter_table(self.parameters)
        return printable("\n".join(lines))

    def _repr_html_(self) -> str:
        import html

        esc = html.escape
        rows = "".join(
            f"<tr><td><b>{esc(p.name)}</b></td><td>{p.value:.4g}{' <i>(assumption)</i>' if p.assumption else ''}"
            f"</td><td>{esc(p.unit)}</td><td>[{p.bounds[0]:g}, {p.bounds[1]:g}]</td><td>{esc(p.description)}</td>"
            f"<td>{esc(p.source)}</td></tr>" for p in self.parameters)
        states = ", ".join(f"{esc(s.name)} [{esc(s.unit)}]" for s in self.states)
        outputs = ", ".join(f"{esc(o.name)} [{esc(o.unit)}]" for o in self.outputs)
        return (f"<div><b>Model {esc(self.name)}</b> v{esc(self.version)} (time in {esc(self.time_unit)})<br>"
                f"states: {states}<br>outputs: {outputs}<table><tr><th>name</th><th>value</th><th>unit</th>"
                f"<th>bounds</th><th>description</th><th>source</th></tr>{rows}</table></div>")


def _parameter_table(parameters, width: int | None = None) -> list[str]:
    """The parameter table as text lines, as wide as the terminal (at least 100 characters); descriptions and
    sources are wrapped onto more lines, never cut."""
    import shutil
    import textwrap

    if width is None:
        width = max(100, shutil.get_terminal_size((120, 24)).columns)
    head = ("name", "value", "unit", "description", "source")
    rows = [(p.name, f"{p.value:.4g}" + ("*" if p.assumption else ""), p.unit, p.description, p.source)
            for p in parameters]
    fixed = [max(len(r[i]) for r in [head, *rows]) for i in range(3)]
    room = width - 4 - sum(fixed) - 2 * 4  # indent, three fixed columns, four gaps
    longest_desc = max(len(r[3]) for r in [head, *rows])
    desc_w = max(16, min(longest_desc, room * 2 // 5))
    src_w = max(20, room - desc_w)
    out = []
    for r in [head, *rows]:
        desc = textwrap.wrap(r[3], desc_w, break_on_hyphens=False) or [""]
        src = textwrap.wrap(r[4], src_w, break_on_hyphens=False) or [""]
        for k in range(max(len(desc), len(src))):
            cells = [c if k == 0 else "" for c in r[:3]] + [desc[k] if k < len(desc) else "",
                                                             src[k] if k < len(src) else ""]
            out.append("    " + "  ".join(c.ljust(w) for c, w in zip(cells, [*fixed, desc_w, src_w])).rstrip())
    return out


# ---------------------------------------------------------------------------------------------------------- validation
def _rebound(p: Parameter, bounds: tuple[float, float]) -> Parameter:
    """The parameter with new bounds; a uniform prior (which is on the bounds) follows them."""
    from .priors import UniformPrior

    prior = p.prior
    if isinstance(prior, UniformPrior) and all(math.isfinite(b) for b in bounds) and bounds[0] < bounds[1]:
        prior = replace(prior, lower=bounds[0], upper=bounds[1])
    return replace(p, bounds=bounds, prior=prior)


def _all_names(m: Model) -> list[str]:
    return [x.name for g in (m.parameters, m.covariates, m.derived, m.states, m.outputs) for x in g]


def _as_float(value, what: str, file: str | None, section: str | None = None, key: str | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):   # numpy's real scalars are Real, complex not
        raise ModelFileError(f"{what} must be a number; got {value!r}", file=file, section=section, key=key)
    try:
        v = float(value)
    except OverflowError:
        v = math.inf
    if not math.isfinite(v):
        shown = f"{str(value)[:20]}... ({len(str(value))} digits)" if isinstance(value, int) else str(v)
        raise ModelFileError(f"{what} must be a finite number; got {shown}", file=file, section=section, key=key)
    return v


def _check_name(name, kind: str, file, section):
    if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name) or name.startswith("_"):
        raise ModelFileError(f"{kind} name {name!r:.80} is not a valid identifier (letters, digits and '_', not "
                             "starting with a digit or '_', not a Python keyword)", file=file, section=section)
    if len(name) > MAX_NAME:
        raise ModelFileError(f"{kind} name {name[:40]!r}... is longer than {MAX_NAME} characters", file=file,
                             section=section)
    if unicodedata.normalize("NFKC", name) != name:
        raise ModelFileError(f"{kind} name {name!r} is not in Unicode normal form NFKC (Python would read it as "
                             f"{unicodedata.normalize('NFKC', name)!r}, merging it with any name spelled that way); "
                             "write it in that form", file=file, section=section)
    if name == "t" or name in ex.FUNCTIONS:
        raise ModelFileError(f"{kind} name {name!r} is reserved ('t' is time; functions: "
                             f"{', '.join(sorted(ex.FUNCTIONS))})", file=file, section=section)


def _unit(text, file, section, key, alg):
    try:
        return alg.unit(text)
    except un.UnitCheckError as err:
        raise UnitError(str(err), file=file, section=section, key=key) from None


def _parse(text, file, section, key, allowed: dict[str, str], all_known):
    """Parse and check that every name is allowed here (``allowed`` maps name -> kind)."""
    if not isinstance(text, str):
        raise ModelFileError(f"expression must be a string; got {text!r}", file=file, section=section, key=key)
    try:
        tree = ex.parse(text)
    except ex.ExpressionError as err:
        raise ModelFileError(str(err), file=file, section=section, key=key) from None
    for n in sorted(ex.names(tree)):
        if n not in allowed:
            if n in all_known:
                raise ModelFileError(f"{n!r} cannot be used here ({all_known[n]}s are not available in this "
                                     f"expression: {text!r})", file=file, section=section, key=key)
            raise ModelFileError(f"unknown name {n!r} in {text!r}." + did_you_mean(n, allowed), file=file,
                                 section=section, key=key)
    return tree


def _units_check(tree, units, target, file, section, key, alg, bare=None):
    try:
        return un.check(tree, units, target, bare_number_unit=bare, algebra=alg)
    except un.UnitCheckError as err:
        raise UnitError(str(err), file=file, section=section, key=key) from None


def _checked_trees(m: Model) -> _Checked:
    """Validate ``m`` and build the trees the compiler uses.

    The fields (names, text, numbers) are checked every time; the dimensional analysis, which needs pint (0.3 s to
    import), is done once per declaration: later models with the same declarations (``with_parameters``, a later
    process) re-run the same check on freshly parsed equations with the recorded answers (:mod:`pkpd._check_cache`).
    """
    _check_fields(m)
    k = _check_cache.key(m)
    checked = _check_cache.remembered(k)
    if checked is not None:
        return checked
    transcript = _check_cache.load(k)
    if transcript is not None:
        replay = un.Replay(transcript)
        try:
            checked = _trees(m, replay)
            replay.finish()
        except (PkpdError, un.UnitCheckError, un.TranscriptError):
            checked = None  # answers that do not fit this check: not trusted, checked again with pint
            _check_cache.discard(k)
    if checked is None:
        algebra = un.Algebra()
        checked = _trees(m, algebra)
        _check_cache.store(k, algebra.transcript)
    _check_cache.remember(k, checked)
    return checked


def _validate(m: Model, algebra=None) -> _Checked:
    """The full check of a model (fields, names, equations, units) with pint or the given unit ``algebra``."""
    _check_fields(m)
    return _trees(m, un.Algebra() if algebra is None else algebra)


#: Longest model description, and longest other text field (descriptions, sources, references) [characters].
MAX_DESCRIPTION = 50_000
MAX_TEXT = 5_000
MAX_VERSION = 40
MAX_LABEL = 200
MAX_NAME = 128
#: Most states, and most declarations in all (parameters, covariates, derived, states, outputs, doses), of a model
#: (its compiled code grows with them; forward-sensitivity models of the shipped ones have up to ~150 states).
MAX_STATES = 1_000
MAX_DECLARATIONS = 10_000
# control characters other than tab/newline/carriage return, DEL and C1 controls, and the bidirectional overrides
# and isolates that can make text display differently from what it is ("Trojan source")
_BAD_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _safe_name(name) -> str | None:
    return name if isinstance(name, str) and not _BAD_TEXT.search(name) and len(name) <= MAX_NAME else None


def _check_text(value, what: str, file, section, key, *, max_len: int = MAX_TEXT) -> None:
    if not isinstance(value, str):
        raise ModelFileError(f"{what} must be text; got {type(value).__name__} {value!r:.60}", file=file,
                             section=section, key=key)
    if len(value) > max_len:
        raise ModelFileError(f"{what} is longer than {max_len} characters ({len(value)})", file=file,
                             section=section, key=key)
    bad = _BAD_TEXT.search(value)
    if bad:
        raise ModelFileError(f"{what} contains the control character U+{ord(bad.group()):04X} at position "
                             f"{bad.start()}; only printable text, tabs and line breaks are allowed", file=file,
                             section=section, key=key)


def _check_fields(m: Model) -> None:
    """Every field of the declaration: types, names, text, numbers and bounds (no expressions, no units)."""
    f = m.file or _safe_name(m.name)
    _check_name(m.name, "model", f, "model")
    _check_text(m.version, "version", f, "model", "version", max_len=MAX_VERSION)
    if not m.version or not m.version.isprintable():
        raise ModelFileError(f"must be short printable text (e.g. '1.2'); got {m.version!r}", file=f,
                             section="model", key="version")
    _check_text(m.description, "description", f, "model", "description", max_len=MAX_DESCRIPTION)
    for i, ref in enumerate(m.references):
        _check_text(ref, f"references[{i}]", f, "model", "references")
    if not isinstance(m.time_unit, str):
        raise ModelFileError(f"time_unit must be a unit string; got {m.time_unit!r:.60}", file=f, section="model",
                             key="time_unit")
    if len(m.states) > MAX_STATES:
        raise ModelFileError(f"{len(m.states):,} states, more than the {MAX_STATES:,} a model may declare", file=f,
                             section="states")
    total = sum(len(getattr(m, sec)) for sec in ("parameters", "covariates", "derived", "states", "outputs", "doses"))
    if total > MAX_DECLARATIONS:
        raise ModelFileError(f"{total:,} declarations, more than the {MAX_DECLARATIONS:,} a model may hold", file=f)
    expected = {"parameters": Parameter, "covariates": Covariate, "derived": Derived, "states": State,
                "outputs": Output, "doses": DoseTarget}
    for sec, cls in expected.items():
        for item in getattr(m, sec):
            if not isinstance(item, cls):
                raise ModelFileError(f"expected a {cls.__name__}; got {type(item).__name__}", file=f, section=sec)
            where = f"{sec}.{_safe_name(item.name) or '?'}"
            _check_name(item.name, {"parameters": "parameter", "covariates": "covariate", "derived": "derived",
                                    "states": "state", "outputs": "output", "doses": "dose target"}[sec], f, where)
            _check_text(item.description, "description", f, where, "description")
            for attr in ("unit", "expression", "initial", "ddt", "target", "factor", "lag"):
                if hasattr(item, attr):
                    _check_text(getattr(item, attr), attr, f, where, attr, max_len=ex.MAX_LENGTH)
            for attr in ("rate", "duration"):
                if getattr(item, attr, None) is not None:
                    _check_text(getattr(item, attr), attr, f, where, attr, max_len=ex.MAX_LENGTH)
    for p in m.parameters:
        sec = f"parameters.{p.name}"
        _check_text(p.source, "source", f, sec, "source")
        if not isinstance(p.assumption, bool):
            raise ModelFileError(f"assumption must be true or false; got {p.assumption!r:.60}", file=f, section=sec,
                                 key="assumption")
        _as_float(p.value, "value", f, sec, "value")
        try:
            if not isinstance(p.bounds, tuple):     # a string, a set, a dict or a generator would iterate here
                raise TypeError
            lo, hi = (float(b) for b in p.bounds)
        except (TypeError, ValueError, OverflowError):
            raise ModelFileError(f"bounds must be two numbers [low, high]; got {p.bounds!r:.80}", file=f,
                                 section=sec, key="bounds") from None
        if math.isnan(lo) or math.isnan(hi) or not lo < hi:
            raise ModelFileError(f"bounds must satisfy low < high; got [{lo}, {hi}]", file=f, section=sec,
                                 key="bounds")
        # the value may lie outside the bounds (plausible ranges: see Parameter.bounds); a file whose own value
        # does is refused by the loader
        if p.prior is not None:
            _check_prior(p.prior, (lo, hi), f, sec)
    for o in m.outputs:
        sec = f"outputs.{o.name}"
        if o.scale not in SCALES:
            raise ModelFileError(f"scale must be 'log' or 'linear' (or absent for the default rule); got "
                                 f"{o.scale!r:.40}", file=f, section=sec, key="scale")
        _check_text(o.label, "label", f, sec, "label", max_len=MAX_LABEL)
    for c in m.covariates:
        _as_float(c.value, "default value", f, f"covariates.{c.name}", "value")
    for o in m.outputs:
        endpoints.check_fields(o, f, f"outputs.{o.name}")


def _check_prior(prior, bounds, f, sec) -> None:
    from .priors import PRIORS, check_prior_fits

    if not isinstance(prior, PRIORS):
        raise ModelFileError(f"prior must be a pkpd prior ({', '.join(c.__name__ for c in PRIORS)}); got "
                             f"{type(prior).__name__}", file=f, section=sec, key="prior")
    _check_text(prior.source, "prior source", f, sec, "prior")

    def fail(message):
        raise ModelFileError(message, file=f, section=sec, key="prior")

    check_prior_fits(prior, bounds, fail)


def _trees(m: Model, alg) -> _Checked:
    """Names, equations and units: the validated, unit-converted trees (``alg`` answers the unit questions)."""
    f = m.file or m.name
    time_unit = _unit(m.time_unit, f, "model", "time_unit", alg)
    if not alg.compatible(time_unit, alg.unit("h")):
        raise UnitError(f"time_unit must be a time; got {m.time_unit!r}", file=f, section="model", key="time_unit")
    if not m.states:
        raise ModelFileError("a model needs at least one state", file=f, section="states")

    kinds: dict[str, str] = {}
    for group, kind, sec in ((m.parameters, "parameter", "parameters"), (m.covariates, "covariate", "covariates"),
                             (m.derived, "derived quantity", "derived"), (m.states, "state", "states"),
                             (m.outputs, "output", "outputs"), (m.doses, "dose target", "doses")):
        for item in group:
            namespace = "dose target" if kind == "dose target" else "name"
            key = (namespace, item.name)
            if key in kinds:
                raise ModelFileError(f"{item.name!r} is declared twice (as {kinds[key]} and {kind}); names must be "
                                     "unique", file=f, section=f"{sec}.{item.name}")
            kinds[key] = kind
    all_known = {n: k for (ns, n), k in kinds.items() if ns == "name"}

    units: dict[str, object] = {"t": time_unit}
    for p in m.parameters:
        units[p.name] = _unit(p.unit, f, f"parameters.{p.name}", "unit", alg)
    for c in m.covariates:
        units[c.name] = _unit(c.unit, f, f"covariates.{c.name}", "unit", alg)

    base = {p.name: "parameter" for p in m.parameters} | {c.name: "covariate" for c in m.covariates}
    state_names = {s.name: "state" for s in m.states}
    for s in m.states:
        units[s.name] = _unit(s.unit, f, f"states.{s.name}", "unit", alg)

    # Derived quantities, in order; "static" ones depend on parameters/covariates only (computed once per subject).
    static, dynamic = [], []
    static_names: dict[str, str] = {}
    derived_so_far: dict[str, str] = {}
    for d in m.derived:
        sec = f"derived.{d.name}"
        allowed = base | state_names | derived_so_far | {"t": "time"}
        tree = _parse(d.expression, f, sec, "expression", allowed, all_known)
        declared = _unit(d.unit, f, sec, "unit", alg)
        tree, _ = _units_check(tree, units, declared, f, sec, "expression", alg)
        units[d.name] = declared
        derived_so_far[d.name] = "derived quantity"
        used = ex.names(tree)
        if used <= (set(base) | set(static_names)):
            static.append((d.name, tree))
            static_names[d.name] = "derived quantity"
        else:
            dynamic.append((d.name, tree))

    init_allowed = base | static_names
    everything = base | state_names | derived_so_far | {"t": "time"}
    initial, ddt = [], []
    for s in m.states:
        sec = f"states.{s.name}"
        tree = _parse(s.initial, f, sec, "initial", init_allowed, all_known | state_names | {"t": "time"})
        tree, _ = _units_check(tree, units, units[s.name], f, sec, "initial", alg, bare=units[s.name])
        initial.append(tree)
        rate_unit = units[s.name] / time_unit
        tree = _parse(s.ddt, f, sec, "ddt", everything, all_known)
        tree, _ = _units_check(tree, units, rate_unit, f, sec, "ddt", alg)
        ddt.append(tree)

    outputs, endpoint_trees = [], []
    for o in m.outputs:
        sec = f"outputs.{o.name}"
        if o.is_endpoint:
            tree, trees = endpoints.check_trees(o, units, time_unit, everything, all_known, alg, f, sec)
            outputs.append(tree)
            endpoint_trees.append(trees)
            continue
        endpoint_trees.append(None)
        declared = _unit(o.unit, f, sec, "unit", alg)
        tree = _parse(o.expression, f, sec, "expression", everything, all_known)
        tree, _ = _units_check(tree, units, declared, f, sec, "expression", alg, bare=declared)
        outputs.append(tree)

    factors, lags, rates, durations, conversions, dimless = [], [], [], [], [], []
    dose_allowed = base | static_names
    for d in m.doses:
        sec = f"doses.{d.name}"
        if d.target not in state_names:
            raise ModelFileError(f"target {d.target!r} is not a state." + did_you_mean(str(d.target), state_names),
                                 file=f, section=sec, key="target")
        dose_unit = _unit(d.unit, f, sec, "unit", alg)
        if str(d.unit).replace(" ", "").endswith("/kg"):
            raise UnitError(f"a dose target's unit is the absolute amount (e.g. 'cell', 'mg'); got {d.unit!r}. "
                            "Per-kg doses are given as Dose(2e6, 'cell/kg') and multiplied by the WT covariate",
                            file=f, section=sec, key="unit")
        tree = _parse(d.factor, f, sec, "factor", dose_allowed, all_known | state_names)
        tree, fu = _units_check(tree, units, None, f, sec, "factor", alg)
        if not alg.compatible(dose_unit * fu, units[d.target]):
            raise UnitError(f"dose unit {d.unit!r} times factor unit {un.fmt(fu)} must convert to the unit of state "
                            f"{d.target!r} ({un.fmt(units[d.target])})", file=f, section=sec, key="factor")
        factors.append(tree)
        conversions.append(alg.factor(dose_unit * fu, units[d.target]))
        dimless.append(alg.compatible(fu, alg.one))
        tree = _parse(d.lag, f, sec, "lag", dose_allowed, all_known | state_names)
        lags.append(_units_check(tree, units, time_unit, f, sec, "lag", alg, bare=time_unit)[0])
        if d.rate is not None and str(d.rate).strip():
            tree = _parse(d.rate, f, sec, "rate", dose_allowed, all_known | state_names)
            rates.append(_units_check(tree, units, dose_unit / time_unit, f, sec, "rate", alg)[0])
        else:
            rates.append(None)
        if d.duration is not None and str(d.duration).strip():
            tree = _parse(d.duration, f, sec, "duration", dose_allowed, all_known | state_names)
            durations.append(_units_check(tree, units, time_unit, f, sec, "duration", alg, bare=time_unit)[0])
        else:
            durations.append(None)

    return _Checked(tuple(static), tuple(dynamic), tuple(initial), tuple(ddt), tuple(outputs), tuple(factors),
                    tuple(conversions), tuple(dimless), tuple(lags), tuple(rates), tuple(durations),
                    tuple(endpoint_trees) if any(t is not None for t in endpoint_trees) else ())
