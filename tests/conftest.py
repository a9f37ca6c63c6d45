"""Shared test configuration: strict floating point in tests, Agg backend for plots; the representative regimen the
engine-equivalence tests (native, numba, JAX) run on every model."""

import os
import subprocess
import sys

import numpy as np
import pytest

os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(autouse=True)
def _strict_numpy():
    # Overflow or invalid operations in a test are bugs, not noise (style.md, practice 15).
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        yield


def _representative_case(name: str):
    """A model and its representative regimen: a bolus, an infusion and repeated doses into its first dose target
    (per kg where the model has a weight, three weights), an infusion into a second target that takes one, and
    three subjects with their own values of the first two parameters. Returns (model, regimen, params, covariates)."""
    import pkpd

    model = pkpd.load_model(name)
    covariates, regimen = {}, None
    if model.doses:
        first = model.doses[0]
        per_kg = "WT" in model.covariate_names
        amount = {"cell": 2e6, "mg": 1.5}.get(first.unit, 1.0) * (1 if per_kg else 70)
        dose = pkpd.Dose(amount, f"{first.unit}/kg" if per_kg else first.unit)
        if per_kg:
            covariates = {"WT": np.array([70.0, 55.0, 90.0])}
        regimen = (pkpd.Regimen.single(dose, target=first.name)
                   + pkpd.Regimen.single(dose, at=6, duration=2.5, target=first.name)
                   + pkpd.Regimen.every(24, "h", count=3, start=24, dose=dose, target=first.name))
        if len(model.doses) > 1 and model.doses[1].rate is None and model.doses[1].duration is None:
            second = model.doses[1]
            other = pkpd.Dose(amount, f"{second.unit}/kg" if per_kg else second.unit)
            regimen = regimen + pkpd.Regimen.single(other, at=30, duration=1.0, target=second.name)
    params = {p.name: p.value * np.array([1.0, 0.8, 1.25]) for p in model.parameters[:2]}
    return model, regimen, params, covariates


@pytest.fixture
def representative_case():
    """:func:`_representative_case`, for the engine-equivalence tests."""
    return _representative_case


@pytest.fixture
def sentinel(tmp_path):
    """A file that an injection payload would create if it ran: the test fails if it exists afterwards (security tests
    prove that nothing ran, not only that an error was raised)."""
    path = tmp_path / "SENTINEL_payload_ran"
    yield path
    assert not path.exists(), f"a payload ran: {path} was created"


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    """An empty cache folder for this test, with pkpd's in-process caches (compiled models, unit checks) cleared
    before and after."""
    import pkpd.compile
    from pkpd import _check_cache

    cache = tmp_path / "cache"
    monkeypatch.setenv("PKPD_CACHE_DIR", str(cache))
    pkpd.compile._compile.cache_clear()
    _check_cache._MEMORY.clear()
    yield cache
    pkpd.compile._compile.cache_clear()
    _check_cache._MEMORY.clear()


@pytest.fixture
def run_in_c_locale():
    """A function that runs Python ``code`` (with ``args`` as sys.argv[1:]) in a child process whose locale is C
    (ASCII text on Linux; UTF-8 mode and locale coercion off) and returns its second printed line; the code's first
    line must print ``locale.getpreferredencoding(False)``. The test is skipped where the C locale is UTF-8."""

    def run(code: str, *args: str) -> str:
        env = {**os.environ, "LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0"}
        done = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True,
                              encoding="utf-8", timeout=120)
        assert done.returncode == 0, done.stderr
        encoding, said = done.stdout.splitlines()
        if encoding.replace("-", "").lower() in ("utf8", "utf_8"):
            pytest.skip("this platform's C locale encodes text as UTF-8")
        return said

    return run


class _NumpyBefore23:
    """numpy as a pkpd module sees it under numpy < 2.3 (1.24 to 2.2: pkpd's numpy>=1.24 allows them, and 2.2 is the
    newest numpy for Python 3.10, which pkpd supports), where ``take_along_axis`` has no default axis; everything
    else is numpy itself."""

    def __getattr__(self, name):
        return getattr(np, name)

    @staticmethod
    def take_along_axis(arr, indices, axis):
        return np.take_along_axis(arr, indices, axis=axis)


@pytest.fixture
def numpy_before_2_3(monkeypatch):
    """A function that makes a pkpd module see numpy before 2.3 (``take_along_axis`` without a default axis) for
    the rest of the test: ``numpy_before_2_3(pkpd.closed_form)``."""

    def install(module) -> None:
        monkeypatch.setattr(module, "np", _NumpyBefore23())
        with pytest.raises(TypeError):
            module.np.take_along_axis(np.zeros((1, 2)), np.zeros((1, 2), dtype=np.int64))

    return install
