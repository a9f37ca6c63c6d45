"""Fits saved as plain JSON, and loaded back without running anything from the file.

:func:`save_fit` writes a :class:`~pkpd.FitResult` or :class:`~pkpd.PopulationFit` (estimates, covariance matrix,
objective, status, the variability and error models, and for population fits the EBEs and the diagnostics table)
to a JSON file; :func:`load_fit` reads it back. ``fit.save(path)`` and ``FitResult.load(path)`` /
``PopulationFit.load(path)`` do the same. A saved fit is what scenarios take as parameter uncertainty
(``[uncertainty] from = "fit.json"``, :mod:`pkpd.uncertainty`).

Security: the file is data (docs/security.md). It is parsed by :func:`json.loads` (no pickles, no code), its size is
limited (:data:`MAX_BYTES`), and every field is checked -- type, shape, finiteness, allowed values -- before it is
used, with a :class:`~pkpd.FitError` naming the file and the field. Error and censoring models are chosen from an
allow-list by name; the model of an individual fit travels as TOML text that goes through the same validating loader
as a model file (:func:`pkpd.load.model_from_dict`), never through ``eval``.

A loaded :class:`~pkpd.FitResult` holds the estimates and their uncertainty but not the data: what needs the data
(diagnostics, predictions, profiles, bootstrap, likelihood-ratio tests) says so and asks for the fit to be redone.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np

from .errors import FitError, PkpdError

__all__ = ["FORMAT", "MAX_BYTES", "load_fit", "save_fit"]

FORMAT = "pkpd-fit"
VERSION = 1
#: Largest fit file read [bytes].
MAX_BYTES = 200 * 2**20
_MAX_TEXT = 100_000


# ------------------------------------------------------------------------------------------------ encoding
def _enc(x):
    """JSON-safe value: non-finite floats as strings ("nan", "inf", "-inf"); arrays as nested lists."""
    if isinstance(x, dict):
        return {str(k): _enc(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_enc(v) for v in x]
    if isinstance(x, np.ndarray):
        return _enc(x.tolist())
    if isinstance(x, bool | np.bool_):
        return bool(x)
    if isinstance(x, int | np.integer):
        return int(x)
    if isinstance(x, float | np.floating):
        v = float(x)
        if math.isfinite(v):
            return v
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
    if x is None or isinstance(x, str):
        return x
    raise FitError(f"save_fit: cannot write a value of type {type(x).__name__}")


def _error_model(em) -> dict:
    out = {"kind": type(em).__name__, **{p: getattr(em, p) for p in em.parameter_names},
           "fixed": list(em.fixed)}
    if hasattr(em, "convention"):
        out["convention"] = em.convention
    return out


def _effect(e) -> dict:
    value = e.value
    if isinstance(value, dict):
        value = [[k, v] for k, v in value.items()]
    out = {"parameter": e.parameter, "covariate": e.covariate, "kind": e.kind, "value": value, "ref": e.ref}
    if e.kind == "indicator":
        out["condition"] = e.condition
    return out


def _table(frame) -> dict:
    return {"columns": [str(c) for c in frame.columns],
            "data": {str(c): frame[c].tolist() for c in frame.columns}}


def save_fit(fit, path: str | os.PathLike) -> Path:
    """Write a fit to a JSON file (see :mod:`pkpd.fit_files`).

    Parameters
    ----------
    fit : FitResult or PopulationFit
    path : str or path
        The file to write (``.json``).

    Returns
    -------
    Path

    Examples
    --------
    >>> import tempfile, pathlib, pkpd
    >>> fit = pkpd.fit_population("wang2007", "tests/data/wang2007/wang2007.csv", iiv={"ke": 0.04},
    ...                           error=pkpd.Additive(sd=0.3), maxeval=0)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     back = load_fit(save_fit(fit, pathlib.Path(tmp) / "fit.json"))
    >>> back.objective == fit.objective, back.theta == fit.theta
    (True, True)
    """
    from .fitting import FitResult
    from .load import dump_model
    from .nlme import PopulationFit

    if isinstance(fit, PopulationFit):
        body = {
            "kind": "population", "model_name": fit.model_name, "method": fit.method, "objective": fit.objective,
            "minus2ll": fit.minus2ll, "aic": fit.aic, "bic": fit.bic, "theta": fit.theta,
            "iiv": {"names": list(fit.iiv.names), "omega": fit.iiv.omega, "distributions": list(fit.iiv.distributions)},
            "error": {o: _error_model(em) for o, em in fit.error.items()},
            "parameters": _table(fit.parameters), "covariance": fit.covariance,
            "covariance_message": fit.covariance_message, "eta": fit.eta, "shrinkage": fit.shrinkage,
            "table": _table(fit.table), "n_subjects": fit.n_subjects, "n_obs": fit.n_obs, "converged": fit.converged,
            "message": fit.message, "n_evaluations": fit.n_evaluations, "seconds": fit.seconds,
            "output_units": fit.output_units, "time_unit": fit.time_unit, "units": fit.units,
            "covariate_effects": [_effect(e) for e in fit.covariate_effects],
            "iov": None if fit.iov is None else {"names": list(fit.iov.names), "variances": np.diag(fit.iov.omega),
                                                 "distributions": list(fit.iov.distributions)},
            "kappa": fit.kappa,
        }
    elif isinstance(fit, FitResult):
        body = {
            "kind": "individual", "model_name": fit.model_name, "model_toml": dump_model(fit.model),
            "names": list(fit.names), "estimates": fit.estimates, "se": fit.se, "rse_percent": fit.rse_percent,
            "ci_low": fit.ci_low, "ci_high": fit.ci_high, "units": fit.units, "scale": fit.scale,
            "covariance": fit.covariance, "correlation": fit.correlation,
            "error": {o: _error_model(em) for o, em in fit.error.items()}, "blq": type(fit.blq).__name__,
            "objective": fit.objective, "aic": fit.aic, "bic": fit.bic, "n_obs": fit.n_obs,
            "n_censored": fit.n_censored, "n_dropped": fit.n_dropped, "n_subjects": fit.n_subjects,
            "n_parameters": fit.n_parameters, "converged": fit.converged, "message": fit.message,
            "covariance_method": fit.covariance_method, "method": fit.method, "gradient": fit.gradient,
            "n_evaluations": fit.n_evaluations, "n_solver_failures": fit.n_solver_failures,
            "starts": [list(s) for s in fit.starts],
        }
    else:
        raise FitError(f"save_fit: expected a FitResult or a PopulationFit; got {type(fit).__name__}")
    doc = {"format": FORMAT, "version": VERSION, **body}
    path = Path(path)
    try:
        path.write_text(json.dumps(_enc(doc), allow_nan=False), encoding="utf-8")
    except OSError as err:
        raise FitError(f"{path}: cannot write the fit ({err.strerror or err})") from None
    return path


# ------------------------------------------------------------------------------------------------ decoding
class _Reader:
    """Field-by-field validation of a parsed fit file (private); every error names the file and field."""

    def __init__(self, doc: dict, file: str):
        self.doc, self.file = doc, file

    def fail(self, field: str, rule: str, got=None) -> FitError:
        shown = "" if got is None else f"; got {_short(got)}"
        return FitError(f"{self.file}: field {field!r}: {rule}{shown}")

    def get(self, field: str, *, optional: bool = False):
        if field not in self.doc:
            if optional:
                return None
            raise self.fail(field, "is missing (this is not a complete pkpd fit file)")
        return self.doc[field]

    def number(self, value, field: str, *, finite: bool = False) -> float:
        if isinstance(value, str) and value in ("nan", "inf", "-inf") and not finite:
            return float(value)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(field, "must be a number", value)
        v = float(value)
        if finite and not math.isfinite(v):
            raise self.fail(field, "must be finite", value)
        return v

    def integer(self, field: str) -> int:
        v = self.get(field)
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise self.fail(field, "must be a non-negative integer", v)
        return v

    def boolean(self, field: str) -> bool:
        v = self.get(field)
        if not isinstance(v, bool):
            raise self.fail(field, "must be true or false", v)
        return v

    def text(self, value, field: str, *, limit: int = 1000) -> str:
        if not isinstance(value, str) or len(value) > limit:
            raise self.fail(field, f"must be text of at most {limit} characters", value)
        if any(ord(ch) < 32 and ch not in "\t\n" for ch in value):
            raise self.fail(field, "must not contain control characters")
        return value

    def name(self, value, field: str) -> str:
        v = self.text(value, field, limit=200)
        if not v or not all(ch.isalnum() or ch in "_.[]-" for ch in v):
            raise self.fail(field, "must be a parameter or output name (letters, digits, _ . [ ] -)", value)
        return v

    def choice(self, value, field: str, allowed) -> str:
        if value not in allowed:
            raise self.fail(field, f"must be one of {', '.join(map(str, allowed))}", value)
        return value

    def numbers(self, field: str, value=None, *, optional: bool = False) -> dict[str, float]:
        v = self.get(field, optional=optional) if value is None else value
        if v is None and optional:
            return {}
        if not isinstance(v, dict):
            raise self.fail(field, "must be a table name -> number", v)
        return {self.name(k, f"{field}.{k}"): self.number(x, f"{field}.{k}") for k, x in v.items()}

    def matrix(self, field: str, value=None, *, shape=None, optional: bool = False, ndim: int = 2):
        v = self.get(field, optional=optional) if value is None else value
        if v is None:
            if optional:
                return None
            raise self.fail(field, "is missing")
        try:
            arr = np.array(_decode_numbers(v), dtype=float)
        except (TypeError, ValueError):
            raise self.fail(field, f"must be a {ndim}-D array of numbers") from None
        if arr.ndim != ndim and not (arr.size == 0 and ndim > 1):
            raise self.fail(field, f"must be a {ndim}-D array; got shape {arr.shape}")
        if shape is not None and arr.shape != tuple(shape):
            raise self.fail(field, f"must have shape {tuple(shape)}; got {arr.shape}")
        return arr

    def error_models(self, field: str) -> dict:
        from .error_models import ERROR_MODELS

        kinds = {cls.__name__: cls for cls in ERROR_MODELS}
        v = self.get(field)
        if not isinstance(v, dict) or not v:
            raise self.fail(field, "must be a table output -> error model", v)
        out = {}
        for o, body in v.items():
            where = f"{field}.{o}"
            self.name(o, where)
            if not isinstance(body, dict):
                raise self.fail(where, "must be a table with kind and parameters", body)
            cls = kinds.get(body.get("kind"))
            if cls is None:
                raise self.fail(f"{where}.kind", f"must be one of {', '.join(kinds)}", body.get("kind"))
            allowed = {"kind", "fixed", "convention", *cls.parameter_names}
            for key in body:
                if key not in allowed:
                    raise self.fail(f"{where}.{key}", f"is not a field of {cls.__name__}")
            args = {p: self.number(body.get(p), f"{where}.{p}", finite=True) for p in cls.parameter_names}
            fixed = body.get("fixed", [])
            if not isinstance(fixed, list) or any(f not in cls.parameter_names for f in fixed):
                raise self.fail(f"{where}.fixed", f"must list parameters of {cls.__name__}", fixed)
            if "convention" in body:
                args["convention"] = self.choice(body["convention"], f"{where}.convention", ("variance", "sd"))
            elif "convention" in getattr(cls, "__dataclass_fields__", {}):
                raise self.fail(f"{where}.convention", "is missing")
            try:
                out[o] = cls(**args, fixed=tuple(fixed))
            except Exception as err:      # the error model's own checks (FitError)
                raise self.fail(where, str(err)) from None
        return out

    def frame(self, field: str):
        import pandas as pd

        v = self.get(field)
        if not isinstance(v, dict) or not isinstance(v.get("columns"), list) or not isinstance(v.get("data"), dict):
            raise self.fail(field, "must be a table {columns: [...], data: {column: [...]}}", v)
        cols = [self.text(c, f"{field}.columns", limit=200) for c in v["columns"]]
        data, n = {}, None
        for c in cols:
            values = v["data"].get(c)
            if not isinstance(values, list):
                raise self.fail(f"{field}.data.{c}", "must be a list", values)
            if n is not None and len(values) != n:
                raise self.fail(f"{field}.data.{c}", f"has {len(values)} values, other columns {n}")
            n = len(values)
            clean = []
            for x in values:
                if isinstance(x, str) and x not in ("nan", "inf", "-inf"):
                    clean.append(self.text(x, f"{field}.data.{c}", limit=200))
                elif x is None:
                    clean.append(math.nan)
                elif isinstance(x, int) and not isinstance(x, bool):
                    clean.append(x)
                else:
                    clean.append(self.number(x, f"{field}.data.{c}"))
            data[c] = clean
        return pd.DataFrame(data, columns=cols)


def _decode_numbers(v):
    if isinstance(v, list):
        return [_decode_numbers(x) for x in v]
    if isinstance(v, str) and v in ("nan", "inf", "-inf"):
        return float(v)
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise TypeError
    return v


def _short(v) -> str:
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


def load_fit(path: str | os.PathLike, *, model=None):
    """Read a fit written by :func:`save_fit`: a :class:`~pkpd.FitResult` or :class:`~pkpd.PopulationFit`.

    Parameters
    ----------
    path : str or path
    model : Model, optional
        For an individual fit: the model to attach instead of the one stored in the file (same name and
        parameters).

    Raises
    ------
    FitError
        Not a pkpd fit file, a newer format version, a file too large, or any field of the wrong type, shape or
        value (naming the file and the field).

    Examples
    --------
    See :func:`save_fit`.
    """
    path = Path(path)
    if not path.is_file():
        raise FitError(f"fit file {str(path)!r} not found")
    if path.stat().st_size > MAX_BYTES:
        raise FitError(f"{path}: {path.stat().st_size:,} bytes, more than a fit file may have ({MAX_BYTES:,})")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise FitError(f"{path}: not a JSON fit file ({err})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise FitError(f"{path}: not a pkpd fit file (no \"format\": \"{FORMAT}\")")
    r = _Reader(doc, str(path))
    version = r.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version > VERSION:
        raise r.fail("version", f"this pkpd reads fit files up to version {VERSION}; upgrade pkpd", version)
    kind = r.choice(r.get("kind"), "kind", ("population", "individual"))
    return _population(r) if kind == "population" else _individual(r, model)


def _population(r: _Reader):
    from .nlme import METHODS, PopulationFit
    from .population import DISTRIBUTIONS, IIV, IOV, CovariateEffect

    iiv_doc = r.get("iiv")
    if not isinstance(iiv_doc, dict):
        raise r.fail("iiv", "must be a table {names, omega, distributions}", iiv_doc)
    names = iiv_doc.get("names")
    if not isinstance(names, list) or not names:
        raise r.fail("iiv.names", "must be a non-empty list of parameter names", names)
    names = [r.name(n, "iiv.names") for n in names]
    q = len(names)
    omega = r.matrix("iiv.omega", iiv_doc.get("omega"), shape=(q, q))
    dists = iiv_doc.get("distributions")
    if not isinstance(dists, list) or len(dists) != q:
        raise r.fail("iiv.distributions", f"must list {q} distributions", dists)
    dists = [r.choice(d, "iiv.distributions", DISTRIBUTIONS) for d in dists]
    try:
        iiv = IIV.from_matrix(names, omega, distribution=dict(zip(names, dists)))
    except Exception as err:
        raise r.fail("iiv.omega", str(err)) from None
    params = r.frame("parameters")
    k = len(params)
    units = {}
    if r.get("units", optional=True) is not None:     # files written before the units were saved have none
        units = {r.text(n, "units", limit=200): r.text(v, f"units.{n}", limit=100)
                 for n, v in _table_or_fail(r, "units").items()}
        if "name" in params and set(units) != set(params["name"]):
            raise r.fail("units", f"must have one entry for each parameter, {list(params['name'])}")
    cov = r.matrix("covariance", shape=(k, k), optional=True)
    if cov is not None and not np.allclose(cov, cov.T, equal_nan=True):
        raise r.fail("covariance", "must be symmetric")
    effects = []
    raw = r.get("covariate_effects")
    if not isinstance(raw, list):
        raise r.fail("covariate_effects", "must be a list", raw)
    for i, e in enumerate(raw):
        where = f"covariate_effects[{i}]"
        if not isinstance(e, dict):
            raise r.fail(where, "must be a table", e)
        kind = r.choice(e.get("kind"), f"{where}.kind", ("power", "linear", "categorical", "indicator"))
        value = e.get("value")
        if kind == "indicator":    # the condition is parsed by the expression language's allow-list, never run
            fields = (r.name(e.get("parameter"), f"{where}.parameter"),
                      r.name(e.get("covariate"), f"{where}.covariate"), kind,
                      r.number(value, f"{where}.value", finite=True))
            condition = r.text(e.get("condition"), f"{where}.condition", limit=200)
            try:
                effects.append(CovariateEffect(*fields, condition=condition))
            except PkpdError as err:
                raise r.fail(f"{where}.condition", str(err)) from None
            continue
        if kind == "categorical":
            if not isinstance(value, list) or not all(isinstance(p, list) and len(p) == 2 for p in value):
                raise r.fail(f"{where}.value", "must list [category, factor] pairs", value)
            value = {r.number(c, f"{where}.value"): r.number(f, f"{where}.value", finite=True) for c, f in value}
        else:
            value = r.number(value, f"{where}.value", finite=True)
        effects.append(CovariateEffect(r.name(e.get("parameter"), f"{where}.parameter"),
                                       r.name(e.get("covariate"), f"{where}.covariate"), kind, value,
                                       ref=r.number(e.get("ref"), f"{where}.ref", finite=True)))
    iov = None
    iov_doc = r.get("iov", optional=True)
    if iov_doc is not None:
        if not isinstance(iov_doc, dict) or not isinstance(iov_doc.get("names"), list):
            raise r.fail("iov", "must be a table {names, variances, distributions}", iov_doc)
        inames = [r.name(n, "iov.names") for n in iov_doc["names"]]
        var = r.matrix("iov.variances", iov_doc.get("variances"), shape=(len(inames),), ndim=1)
        idist = [r.choice(d, "iov.distributions", DISTRIBUTIONS) for d in iov_doc.get("distributions", [])]
        if len(idist) != len(inames):
            raise r.fail("iov.distributions", f"must list {len(inames)} distributions")
        try:
            iov = IOV(dict(zip(inames, var.tolist())), distribution=dict(zip(inames, idist)))
        except Exception as err:
            raise r.fail("iov", str(err)) from None
    n_subjects = r.integer("n_subjects")
    eta = r.matrix("eta", shape=(n_subjects, q))
    kappa = r.matrix("kappa", optional=True, ndim=3)
    shrink = r.numbers("shrinkage")
    return PopulationFit(
        method=r.choice(r.get("method"), "method", METHODS), objective=r.number(r.get("objective"), "objective"),
        minus2ll=r.number(r.get("minus2ll"), "minus2ll"), aic=r.number(r.get("aic"), "aic"),
        bic=r.number(r.get("bic"), "bic"), theta=r.numbers("theta"), omega=iiv.omega, iiv=iiv,
        error=r.error_models("error"), parameters=params, covariance=cov,
        covariance_message=r.text(r.get("covariance_message"), "covariance_message", limit=_MAX_TEXT), eta=eta,
        shrinkage=shrink, table=r.frame("table"), n_subjects=n_subjects, n_obs=r.integer("n_obs"),
        converged=r.boolean("converged"), message=r.text(r.get("message"), "message", limit=_MAX_TEXT),
        n_evaluations=r.integer("n_evaluations"), seconds=r.number(r.get("seconds"), "seconds"),
        model_name=r.name(r.get("model_name"), "model_name"),
        output_units={r.name(k, "output_units"): r.text(v, f"output_units.{k}", limit=100)
                      for k, v in _table_or_fail(r, "output_units").items()},
        time_unit=r.text(r.get("time_unit"), "time_unit", limit=40), covariate_effects=tuple(effects), iov=iov,
        kappa=kappa, units=units)


def _table_or_fail(r: _Reader, field: str) -> dict:
    v = r.get(field)
    if not isinstance(v, dict):
        raise r.fail(field, "must be a table", v)
    return v


def _individual(r: _Reader, model):
    import sys

    from .error_models import M1, M3, M4
    from .fitting import FitResult
    from .load import model_from_dict
    from .model import Model

    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib

    names = r.get("names")
    if not isinstance(names, list) or not names:
        raise r.fail("names", "must be a non-empty list of parameter names", names)
    names = tuple(r.name(n, "names") for n in names)
    k = len(names)
    per = {}
    for field in ("estimates", "se", "rse_percent", "ci_low", "ci_high"):
        table = r.numbers(field)
        if set(table) != set(names):
            raise r.fail(field, f"must have one value for each of {list(names)}")
        per[field] = {n: table[n] for n in names}
    units = {n: r.text(v, f"units.{n}", limit=100) for n, v in _table_or_fail(r, "units").items()}
    scale = {n: r.choice(v, f"scale.{n}", ("log", "linear")) for n, v in _table_or_fail(r, "scale").items()}
    for field, table in (("units", units), ("scale", scale)):
        if set(table) != set(names):
            raise r.fail(field, f"must have one entry for each of {list(names)}")
    cov = r.matrix("covariance", shape=(k, k))
    corr = r.matrix("correlation", shape=(k, k))
    if model is None:
        text = r.text(r.get("model_toml"), "model_toml", limit=5_000_000)
        try:
            model = model_from_dict(tomllib.loads(text), file=f"{r.file} [model_toml]")
        except tomllib.TOMLDecodeError as err:
            raise r.fail("model_toml", f"is not valid TOML ({err})") from None
    elif not isinstance(model, Model):
        raise FitError(f"load_fit: model must be a pkpd Model; got {type(model).__name__}")
    struct = [n for n in names if n in model.parameter_names]
    try:
        model = model.with_parameters(**{n: per["estimates"][n] for n in struct})
    except Exception as err:
        raise r.fail("estimates", f"do not fit the model ({err})") from None
    blq = {"M1": M1, "M3": M3, "M4": M4}[r.choice(r.get("blq"), "blq", ("M1", "M3", "M4"))]()
    starts_raw = r.get("starts")
    if not isinstance(starts_raw, list):
        raise r.fail("starts", "must be a list of [objective, converged]", starts_raw)
    starts = []
    for s in starts_raw:
        if not isinstance(s, list) or len(s) != 2 or not isinstance(s[1], bool):
            raise r.fail("starts", "must be a list of [objective, converged]", s)
        starts.append((r.number(s[0], "starts"), s[1]))
    return FitResult(
        model_name=r.name(r.get("model_name"), "model_name"), model=model, names=names,
        estimates=per["estimates"], se=per["se"], rse_percent=per["rse_percent"], ci_low=per["ci_low"],
        ci_high=per["ci_high"], units=units, scale=scale, covariance=cov, correlation=corr,
        error=r.error_models("error"), blq=blq, objective=r.number(r.get("objective"), "objective"),
        aic=r.number(r.get("aic"), "aic"), bic=r.number(r.get("bic"), "bic"), n_obs=r.integer("n_obs"),
        n_censored=r.integer("n_censored"), n_dropped=r.integer("n_dropped"), n_subjects=r.integer("n_subjects"),
        n_parameters=r.integer("n_parameters"), converged=r.boolean("converged"),
        message=r.text(r.get("message"), "message", limit=_MAX_TEXT),
        covariance_method=r.choice(r.get("covariance_method"), "covariance_method", ("hessian", "fisher", "none")),
        method=r.text(r.get("method"), "method", limit=40), gradient=r.text(r.get("gradient"), "gradient", limit=40),
        n_evaluations=r.integer("n_evaluations"), n_solver_failures=r.integer("n_solver_failures"),
        starts=tuple(starts))
