"""Model files: TOML <-> :class:`~pkpd.model.Model`, and the library of shipped models.

Loading a file never executes code from it: TOML is data, and every expression goes through the allow-list parser
of :mod:`pkpd.expressions`. Every problem is reported as ``file [section] key: what is wrong``.
"""

from __future__ import annotations

import functools
import math
import os
import sys
from pathlib import Path

from .errors import ModelFileError, did_you_mean
from .model import Covariate, Derived, DoseTarget, Model, Output, Parameter, State

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

#: Largest model file read [bytes] (the biggest shipped one is about 20 kB).
MAX_FILE_BYTES = 10_000_000
_SECTIONS = {"model", "parameters", "covariates", "derived", "states", "outputs", "doses"}
_KEYS = {
    "model": ({"name", "time_unit"}, {"description", "version", "references"}),
    "parameters": ({"value", "unit"}, {"bounds", "description", "source", "assumption", "prior"}),
    "covariates": ({"unit", "value"}, {"description"}),
    "derived": ({"expression", "unit"}, {"description"}),
    "states": ({"unit", "initial", "ddt"}, {"description"}),
    # continuous outputs need expression and unit; endpoint outputs (type = ...) their own keys (pkpd.endpoints)
    "outputs": (set(), {"expression", "unit", "description", "label", "scale", "type", "hazard", "repeated",
                        "probability", "categories", "intercepts", "effect", "mean", "dispersion"}),
    "doses": ({"target", "unit"}, {"factor", "lag", "rate", "duration", "description"}),
}


def model_dirs() -> list[Path]:
    """Folders searched for models by name: ``$PKPD_MODEL_PATH`` (os.pathsep-separated), then the shipped ones."""
    dirs = [Path(p) for p in os.environ.get("PKPD_MODEL_PATH", "").split(os.pathsep) if p]
    return dirs + list(_shipped_model_dirs())


@functools.cache
def _shipped_model_dirs() -> tuple[Path, ...]:
    """The shipped model folders: ``models/`` beside the package (a source checkout), then ``pkpd/_models``."""
    here = Path(__file__).resolve().parent
    return tuple(d for d in (here.parent / "models", here / "_models") if d.is_dir())


def models() -> list[str]:
    """Names of the models that :func:`load_model` finds by name.

    Examples
    --------
    >>> import pkpd
    >>> "msc_salvadori" in pkpd.models()
    True
    """
    found = set()
    for d in model_dirs():
        found.update(p.stem for p in d.glob("*.toml"))
    return sorted(found)


def load_model(name_or_path: str | os.PathLike) -> Model:
    """Load a model by shipped name (``"msc_salvadori"``) or from a TOML file path.

    Parameters
    ----------
    name_or_path : str or path
        A name from :func:`models`, or a path to a ``.toml`` file.

    Returns
    -------
    Model
        The validated, immutable model (units checked).

    Raises
    ------
    ModelFileError
        Unknown name (with close matches), unreadable or invalid file; the message names file, section and key.

    Examples
    --------
    >>> import pkpd
    >>> m = pkpd.load_model("msc_salvadori")
    >>> m.time_unit
    'h'
    """
    text = os.fspath(name_or_path)
    path = Path(text)
    if path.suffix != ".toml" and os.sep not in text and "/" not in text:
        for d in model_dirs():
            if (d / f"{text}.toml").is_file():
                path = d / f"{text}.toml"
                break
        else:
            raise ModelFileError(f"no model called {text!r}." + did_you_mean(text, models())
                                 + " Give a path to a .toml file to load any other model.")
    if not path.is_file():
        raise ModelFileError(f"model file {str(path)!r} does not exist")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise ModelFileError(f"the file is {size / 1e6:.1f} MB, more than the {MAX_FILE_BYTES / 1e6:.0f} MB a model "
                             "file may have", file=str(path))
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ModelFileError(f"not UTF-8 text ({err.reason})", file=str(path)) from None
    return _model_from_text(text, str(path))


#: Models parsed in this process: (text, file) -> (model, the key of its unit check in pkpd._check_cache)
_PARSED: dict[tuple[str, str], tuple[Model, str]] = {}
_PARSED_ENTRIES = 64


def _model_from_text(text: str, file: str) -> Model:
    """The model a file's text declares. Kept per text (a Model is immutable): fitting or simulating a model by name
    parses the file once, and an edited file, whatever its time stamp, is parsed again. A kept model is used only
    while its unit check is remembered (:mod:`pkpd._check_cache`): clearing that memory parses the file again."""
    from . import _check_cache

    got = _PARSED.get((text, file))
    if got is not None and _check_cache.remembered(got[1]) is got[0]._checked:
        return got[0]
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ModelFileError(f"invalid TOML: {err}", file=file) from None
    model = model_from_dict(data, file=file)
    if len(_PARSED) >= _PARSED_ENTRIES:
        _PARSED.pop(next(iter(_PARSED)))
    _PARSED[(text, file)] = (model, _check_cache.key(model))
    return model


def model_from_dict(data: dict, *, file: str | None = None) -> Model:
    """Build a :class:`Model` from the parsed TOML structure (used by :func:`load_model`)."""
    if not isinstance(data, dict):
        raise ModelFileError("a model file must be a TOML table", file=file)
    for section in data:
        if section not in _SECTIONS:
            raise ModelFileError(f"unknown section [{section}]." + did_you_mean(section, _SECTIONS), file=file,
                                 section=section)
    head = data.get("model")
    if not isinstance(head, dict):
        raise ModelFileError("missing [model] section (name, time_unit, description)", file=file, section="model")
    _keys(head, "model", file, "model")

    def entries(section):
        table = data.get(section, {})
        if not isinstance(table, dict):
            raise ModelFileError("must be a table of named entries", file=file, section=section)
        out = []
        for name, body in table.items():
            where = f"{section}.{name}"
            if not isinstance(body, dict):
                raise ModelFileError(f"must be a table (e.g. {name} = {{ ... }}); got {body!r}", file=file,
                                     section=where)
            _keys(body, section, file, where)
            out.append((name, body))
        return out

    params = []
    for name, b in entries("parameters"):
        bounds = b.get("bounds", [-float("inf"), float("inf")])
        if not isinstance(bounds, list) or len(bounds) != 2:
            raise ModelFileError(f"bounds must be a list [low, high]; got {bounds!r}", file=file,
                                 section=f"parameters.{name}", key="bounds")
        bounds = [_float_if_int(x) for x in bounds]
        value = _float_if_int(b["value"])
        if (all(isinstance(x, int | float) and not isinstance(x, bool) for x in (value, *bounds))
                and _finite(value) and not bounds[0] <= value <= bounds[1]):
            # the file contradicts itself: its default is outside the range it calls plausible
            raise ModelFileError(f"value {value:g} is outside the bounds [{bounds[0]:g}, {bounds[1]:g}]", file=file,
                                 section=f"parameters.{name}", key="value")
        assumption = b.get("assumption", False)
        if not isinstance(assumption, bool):
            raise ModelFileError(f"assumption must be true or false; got {assumption!r:.60}", file=file,
                                 section=f"parameters.{name}", key="assumption")
        prior = None
        numeric = all(isinstance(x, int | float) and not isinstance(x, bool) and not math.isnan(x) for x in bounds)
        if "prior" in b and numeric:   # (bad bounds are reported by the Model's own check)
            from .priors import prior_from_dict

            prior = prior_from_dict(b["prior"], tuple(float(x) for x in bounds), file=file,
                                    section=f"parameters.{name}")
        params.append(Parameter(name, value, b["unit"], tuple(bounds), b.get("description", ""),
                                b.get("source", ""), assumption, prior))
    covs = [Covariate(n, b["unit"], _float_if_int(b["value"]), b.get("description", ""))
            for n, b in entries("covariates")]
    derived = [Derived(n, _expr(b["expression"], file, f"derived.{n}", "expression"), b["unit"],
                       b.get("description", "")) for n, b in entries("derived")]
    states = [State(n, b["unit"], _expr(b["initial"], file, f"states.{n}", "initial"),
                    _expr(b["ddt"], file, f"states.{n}", "ddt"), b.get("description", ""))
              for n, b in entries("states")]
    outputs = [_output(n, b, file) for n, b in entries("outputs")]
    doses = [DoseTarget(n, b["target"], b["unit"], _expr(b.get("factor", "1"), file, f"doses.{n}", "factor"),
                        _expr(b.get("lag", "0"), file, f"doses.{n}", "lag"), _opt(b.get("rate")),
                        _opt(b.get("duration")), b.get("description", "")) for n, b in entries("doses")]
    refs = head.get("references", [])
    if isinstance(refs, str):
        refs = [refs]
    return Model(name=head["name"], time_unit=head["time_unit"], parameters=tuple(params), states=tuple(states),
                 outputs=tuple(outputs), doses=tuple(doses), covariates=tuple(covs), derived=tuple(derived),
                 description=str(head.get("description", "")).strip(), version=str(head.get("version", "1.0")),
                 references=tuple(refs), file=file)


def _expr(value, file, section, key) -> str:
    # TOML numbers are accepted for expressions (initial = 0) and turned into text.
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ModelFileError(f"must be an expression string; got {value!r}", file=file, section=section, key=key)
    return value if isinstance(value, str) else repr(value)


def _output(name: str, b: dict, file) -> Output:
    where = f"outputs.{name}"
    kind = b.get("type", "continuous")
    if kind == "continuous":
        for key in ("expression", "unit"):
            if key not in b:
                raise ModelFileError(f"missing required key {key!r}", file=file, section=where, key=key)
    expressions = {k: _expr(b[k], file, where, k) for k in ("hazard", "probability", "effect", "mean", "dispersion")
                   if k in b}
    intercepts = b.get("intercepts", ())
    if isinstance(intercepts, list):
        intercepts = tuple(_expr(v, file, where, "intercepts") for v in intercepts)
    categories = b.get("categories", ())
    return Output(name, _expr(b["expression"], file, where, "expression") if "expression" in b else "",
                  b.get("unit", "1"), b.get("description", ""), b.get("label", ""), b.get("scale", ""), type=kind,
                  repeated=b.get("repeated", False),
                  categories=categories, intercepts=intercepts, **expressions)


def _float_if_int(value):
    """A TOML integer (``value = 1``) as the float the model declares (numbers stay floats however they are
    written, so no caller meets integer arithmetic such as ``2 ** -1``); anything else, including an integer too
    large for a float, as it is, for the model's own check to name."""
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return float(value)
        except OverflowError:
            return value
    return value


def _finite(value) -> bool:
    try:
        return math.isfinite(float(value))
    except OverflowError:  # a 400-digit literal: the model's own check names it
        return False


def _opt(value):
    if value is None:
        return None
    return value if isinstance(value, str) else repr(value)


def _keys(body: dict, section: str, file, where):
    required, optional = _KEYS[section]
    # unknown keys first: a typo ("valu") is the likelier cause of a missing key
    for k in body:
        if k not in required | optional:
            raise ModelFileError(f"unknown key {k!r}." + did_you_mean(k, required | optional), file=file,
                                 section=where, key=k)
    for k in required:
        if k not in body:
            raise ModelFileError(f"missing required key {k!r}", file=file, section=where, key=k)


# ---------------------------------------------------------------------------------------------------------- dump
def dump_model(model: Model) -> str:
    """The TOML text of a model; ``model_from_dict(tomllib.loads(dump_model(m)))`` equals ``m``.

    Examples
    --------
    >>> import pkpd, tomllib
    >>> m = pkpd.load_model("pk_1cmt_iv")
    >>> model_from_dict(tomllib.loads(dump_model(m))) == m
    True
    """
    out = ["[model]", f"name = {_q(model.name)}", f"version = {_q(model.version)}",
           f"time_unit = {_q(model.time_unit)}", f"description = {_q(model.description)}",
           "references = [" + ", ".join(_q(r) for r in model.references) + "]", ""]
    for p in model.parameters:
        out += [f"[parameters.{p.name}]", f"value = {_num(p.value)}", f"unit = {_q(p.unit)}",
                f"bounds = [{_num(p.bounds[0])}, {_num(p.bounds[1])}]", f"description = {_q(p.description)}",
                f"source = {_q(p.source)}", f"assumption = {'true' if p.assumption else 'false'}"]
        if p.prior is not None:
            from .priors import prior_to_dict

            items = ", ".join(f"{k} = {_q(v) if isinstance(v, str) else _num(v)}"
                              for k, v in prior_to_dict(p.prior).items())
            out.append(f"prior = {{ {items} }}")
        out.append("")
    for c in model.covariates:
        out += [f"[covariates.{c.name}]", f"unit = {_q(c.unit)}", f"value = {_num(c.value)}",
                f"description = {_q(c.description)}", ""]
    if model.derived:
        out.append("[derived]")
        for d in model.derived:
            out.append(f"{d.name} = {{ expression = {_q(d.expression)}, unit = {_q(d.unit)}, "
                       f"description = {_q(d.description)} }}")
        out.append("")
    for s in model.states:
        out += [f"[states.{s.name}]", f"unit = {_q(s.unit)}", f"initial = {_q(s.initial)}", f"ddt = {_q(s.ddt)}",
                f"description = {_q(s.description)}", ""]
    for o in model.outputs:
        out.append(f"[outputs.{o.name}]")
        if o.is_endpoint:
            out.append(f"type = {_q(o.type)}")
            for key in ("hazard", "probability", "effect", "mean", "dispersion"):
                if getattr(o, key) is not None:
                    out.append(f"{key} = {_q(getattr(o, key))}")
            if o.repeated:
                out.append("repeated = true")
            if o.categories:
                out.append("categories = [" + ", ".join(_num(c) for c in o.categories) + "]")
                out.append("intercepts = [" + ", ".join(_q(a) for a in o.intercepts) + "]")
        else:
            out.append(f"expression = {_q(o.expression)}")
        out += [f"unit = {_q(o.unit)}", f"description = {_q(o.description)}"]
        out += [f"label = {_q(o.label)}"] if o.label else []
        out += [f"scale = {_q(o.scale)}"] if o.scale else []
        out.append("")
    for d in model.doses:
        out += [f"[doses.{d.name}]", f"target = {_q(d.target)}", f"unit = {_q(d.unit)}", f"factor = {_q(d.factor)}",
                f"lag = {_q(d.lag)}"]
        if d.rate is not None:
            out.append(f"rate = {_q(d.rate)}")
        if d.duration is not None:
            out.append(f"duration = {_q(d.duration)}")
        out += [f"description = {_q(d.description)}", ""]
    return "\n".join(out)


def _q(s: str) -> str:
    s = str(s).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    return f'"{s}"'


def _num(v: float) -> str:
    if v == float("inf"):
        return "inf"
    if v == -float("inf"):
        return "-inf"
    return repr(float(v))
