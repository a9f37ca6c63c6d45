"""Untrusted input never hangs, never takes the machine's memory, and is always a clear pkpd error (issue 14).

Unit strings, regimens and simulation sizes are checked before anything is built; every problem in a model file is a
ModelFileError naming the file, section and key; data problems are DataErrors; NaN outputs are never "ok".
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import pkpd
import pkpd.cli
import pkpd.nonmem
from pkpd._native import compiler
from pkpd.compile import generate_source
from pkpd.errors import DataError, DosingError, ModelFileError, OutputWarning, PkpdError, UnitError

BASE = """
[model]
name = "probe"
time_unit = "h"

[parameters.k]
value = {value}
unit = "{punit}"
bounds = [{low}, 1e300]

[parameters.a]
value = 1.0
unit = "mg"

[states.A]
unit = "mg"
initial = "0"
ddt = "{ddt}"

[outputs.out]
expression = "{out}"
unit = "mg"

[doses.iv]
target = "A"
unit = "mg"
"""


def model_text(value="0.1", punit="1/h", ddt="-k * A", out="A", low="0.0"):
    return BASE.format(value=value, punit=punit, ddt=ddt, out=out, low=low)


def load(tmp_path, **kw):
    path = tmp_path / "probe.toml"
    path.write_text(model_text(**kw))
    return pkpd.load_model(path)


# ------------------------------------------------------------------------------------- nothing hangs (subprocess)
HANG_PROBES = r"""
import json, sys, time, tempfile, os
import pkpd, pkpd.cli
out = {}

def timed(name, fn):
    t = time.perf_counter()
    try:
        fn()
        result = "no error"
    except Exception as err:
        result = f"{type(err).__name__}: {err}"
    out[name] = [time.perf_counter() - t, result]

d = tempfile.mkdtemp()
model = open(sys.argv[1]).read()
path = os.path.join(d, "m.toml")
open(path, "w").write(model)
timed("model file unit", lambda: pkpd.load_model(path))
timed("Dose unit", lambda: pkpd.Dose(1, "mg*10**10**10"))
timed("huge exponent", lambda: pkpd.Dose(1, "mg**99999999999"))
timed("Regimen.every", lambda: pkpd.Regimen.every(1, "h", count=10**9, dose=pkpd.Dose(1, "mg")))
timed("Regimen.at", lambda: pkpd.Regimen.at(range(10**9), pkpd.Dose(1, "mg")))
timed("cli dose unit", lambda: pkpd.cli.main(["simulate", "pk_1cmt_iv", "--dose", "1", "--dose-unit",
                                                "mg*10**10**10", "--until", "2", "--out", os.path.join(d, "o.csv")]))
timed("cli count", lambda: pkpd.cli.main(["simulate", "pk_1cmt_iv", "--dose", "1", "--dose-unit", "mg", "--every",
                                           "1", "--count", "1000000000", "--until", "2",
                                           "--out", os.path.join(d, "o.csv")]))
timed("nca unit", lambda: pkpd.metrics._units("mg/L", "mg*10**10**10", "h"))
print(json.dumps(out))
"""


def test_bad_unit_strings_and_huge_regimens_fail_at_once(tmp_path):
    import pkpd.metrics  # noqa: F401  (the probe uses it)

    path = tmp_path / "m.toml"
    path.write_text(model_text(punit="1/h*10**10**10"))
    done = subprocess.run([sys.executable, "-c", HANG_PROBES, str(path)], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, MPLBACKEND="Agg"))
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout.strip().splitlines()[-1])
    for name, (seconds, result) in results.items():
        # a hang would run into the subprocess timeout; each check takes milliseconds on an idle machine (the model
        # file includes pint's first import), so a generous bound keeps this robust on a loaded CI machine
        assert seconds < 20.0, f"{name} took {seconds:.2f} s"
        if name.startswith("cli"):
            continue  # main() returns 2 and prints the error (checked below)
        assert result != "no error", name
    assert results["model file unit"][1].startswith("UnitError") and "power of a power" in results["model file unit"][1]
    assert results["Dose unit"][1].startswith("DosingError")
    assert "at most 100,000" in results["Regimen.every"][1]
    assert "power of a power" in done.stderr and "at most 100,000" in done.stderr  # the two CLI runs


def test_cli_help_documents_the_limits(capsys):
    assert pkpd.cli.main(["simulate", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "at most 100,000" in text and "1,000,000 output times" in text and "PKPD_MAX_MEMORY_GB" in text


def test_simulations_too_large_for_memory_are_refused_before_allocating():
    model = pkpd.load_model("pk_1cmt_iv")
    regimen = pkpd.Regimen.single(pkpd.Dose(100, "mg"))
    n = 100_000
    with pytest.raises(PkpdError, match=r"would need .* GB .*100,000 subject\(s\) x 100,000 times.*simulate_summary"):
        pkpd.simulate(model, regimen, np.arange(100_000.0), params={"CL": np.full(n, 2.8)})
    with pytest.raises(PkpdError, match=r"more than the limit of 0.001 GB"):
        pkpd.simulate(model, regimen, np.arange(200_000.0), max_memory_gb=0.001)
    sim = pkpd.simulate(model, regimen, np.arange(1000.0), max_memory_gb=0.001)  # 16 kB: fine
    assert sim.outputs["conc"].shape == (1, 1000)


def test_memory_limit_from_the_environment(monkeypatch):
    from pkpd.simulation import memory_limit

    monkeypatch.setenv("PKPD_MAX_MEMORY_GB", "3")
    assert memory_limit() == 3e9
    monkeypatch.setenv("PKPD_MAX_MEMORY_GB", "lots")
    with pytest.raises(PkpdError, match="PKPD_MAX_MEMORY_GB"):
        memory_limit()
    monkeypatch.delenv("PKPD_MAX_MEMORY_GB")
    assert 0 < memory_limit() < 1e15


# ------------------------------------------------------------------------------------- model files: ModelFileError
@pytest.mark.parametrize("ddt,why", [
    ("-k * A * " + "1" * 400, "not a finite double"),
    ("ifelse(t > 1e999, -k * A, 0)", "not a finite double"),
    ("-1e999 * A", "not a finite double"),
    ("-k * " + " + ".join(["A"] * 1000), "levels deep"),
    ("-" * 2000 + "A", "nested"),
    ("(" * 300 + "A" + ")" * 300, "nested"),
    ("exp(" * 100 + "A" + ")" * 100, "levels deep"),
])
def test_pathological_expressions_are_model_file_errors(tmp_path, ddt, why):
    with pytest.raises(ModelFileError, match=why) as err:
        load(tmp_path, ddt=ddt)
    assert "[states.A] ddt" in str(err.value)


@pytest.mark.parametrize("value", ["1" * 400, "1e999", "-1e999", "nan"])
def test_huge_or_non_finite_parameter_values_are_model_file_errors(tmp_path, value):
    with pytest.raises(ModelFileError, match=r"\[parameters.k\] value.*finite"):
        load(tmp_path, value=value, low="-1e300" if value.startswith("-") else "0.0")


def test_the_depth_limit_leaves_room_for_real_models_and_their_jacobians(tmp_path):
    from pkpd.expressions import MAX_DEPTH

    deep = "-k * A" + " - k * A" * (MAX_DEPTH - 3)
    nested = "-k * A * " + "sqrt(" * (MAX_DEPTH // 3) + "1 + A / a" + ")" * (MAX_DEPTH // 3)
    for ddt in (deep, nested):
        model = load(tmp_path, ddt=ddt)
        compile(generate_source(model)[0], "<generated>", "exec")  # the numba engine's source parses
        sim = pkpd.simulate(model, pkpd.Regimen.single(pkpd.Dose(1, "mg")), [0.0, 0.1],
                            backend="native" if compiler() else "numba")
        assert np.isfinite(sim.outputs["out"]).all()


def test_names_are_never_merged_by_unicode_normalisation(tmp_path):
    text = model_text().replace("[parameters.a]", "[parameters.\"ﬁ\"]")
    path = tmp_path / "probe.toml"
    path.write_text(text)
    with pytest.raises(ModelFileError, match=r"NFKC.*'fi'"):
        pkpd.load_model(path)
    # an expression may not spell a declared name in another Unicode form either
    text = model_text(ddt="-k * A * ﬁ").replace("[parameters.a]", "[parameters.fi]")
    path.write_text(text)
    with pytest.raises(ModelFileError, match=r"\[states.A\] ddt.*NFKC"):
        pkpd.load_model(path)


# ------------------------------------------------------------------------------------- data: DataError
def test_nonmem_ids_that_a_double_cannot_hold_are_refused():
    import pandas as pd

    def data(ids):
        return pd.DataFrame({"ID": ids, "TIME": [0.0, 0.0], "AMT": [1.0, 1.0]})

    fine = pkpd.nonmem.read_nonmem(data([2**53 - 2, 2**53 - 1]), dose_unit="mg")
    assert fine.table["ID"].nunique() == 2
    with pytest.raises(DataError, match=r"row 2, column ID.*2\^53"):
        pkpd.nonmem.read_nonmem(data([2**53 - 1, 2**53 + 1]), dose_unit="mg")


def test_changes_with_times_and_values_of_different_lengths_are_refused():
    model = pkpd.load_model("pk_1cmt_iv")
    with pytest.raises(DataError, match=r"changes\['CL'\].*same length"):
        pkpd.simulate(model, pkpd.Regimen.single(pkpd.Dose(100, "mg")), [0.0, 1.0, 2.0],
                      changes={"CL": ([1.0, 0.5], [1.0])})


# ------------------------------------------------------------------------------------- NaN outputs are reported
@pytest.mark.parametrize("backend", ["native", "numba"])
def test_an_output_that_is_nan_is_reported_not_ok(tmp_path, backend):
    if backend == "native" and compiler() is None:
        pytest.skip("no C compiler")
    model = load(tmp_path, out="A + a * log(A / a - 0.5) * 0")  # NaN while A < 0.5 mg
    regimen = pkpd.Regimen.single(pkpd.Dose(1, "mg"), at=1.0)
    with pytest.warns(OutputWarning, match=r"1 subject\(s\) have NaN or infinite values in output\(s\) out "
                                           r"\(first: subject 1, out at t = 0\); their status is 5"):
        sim = pkpd.simulate(model, regimen, [0.0, 2.0], backend=backend)
    assert sim.status.tolist() == [5]
    assert np.isnan(sim.outputs["out"][0, 0]) and sim.outputs["out"][0, 1] == pytest.approx(np.exp(-0.1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ok = pkpd.simulate(model, regimen, [2.0, 3.0], backend=backend)
    assert ok.status.tolist() == [0]


# ------------------------------------------------------------------------------------- text shown on a terminal
def test_show_and_repr_never_print_control_characters(tmp_path, capsys):
    clean = pkpd.load_model("pk_1cmt_iv")
    evil = replace(clean)
    object.__setattr__(evil, "parameters", (replace(clean.parameters[0], source="\x1b]0;pwned\x07 \x1b[2J"),)
                       + clean.parameters[1:])
    assert "\x1b" not in repr(evil) and "\\x1b" in repr(evil)
    odd = tmp_path / "odd\x1b[2Jname.toml"
    odd.write_text(Path(clean.file).read_text())
    assert pkpd.cli.main(["show", str(odd)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "odd\\x1b[2Jname.toml" in out


def test_unit_text_grammar():
    from pkpd.units import UnitCheckError, check_unit_text

    for ok in ("1/h", "pg/mL/h", "cell/kg", "L/h/kg**0.75", "kg^(1/3)", "mg h / L", "%", "(mg/L)*h", "µg/mL",
               "L/h/kg**-0.25", "1e6*cell"):
        assert check_unit_text(ok) == ok
    for bad, why in (("mg*10**10**10", "power of a power"), ("mg**13", "larger than 12"), ("1e31*mg", "too long"),
                     ("__import__('os')", "not allowed"), ("mg.x", "not allowed"), ("(" * 5 + "mg" + ")" * 5, "nested"),
                     ("m" * 101, "longer than 100"), ("mg/", "expected a unit name"), ("(mg", "unbalanced"),
                     ("kg^(1/0)", "divides by zero"), ("", "empty")):
        with pytest.raises(UnitCheckError, match=why):
            check_unit_text(bad)


def test_a_bad_unit_in_a_model_file_names_its_place(tmp_path):
    with pytest.raises(UnitError, match=r"probe.toml \[parameters.k\] unit: unit '1/h\)': unexpected"):
        load(tmp_path, punit="1/h)")


def test_dose_errors_name_the_unit():
    with pytest.raises(DosingError, match="mg\\*10\\*\\*10\\*\\*10"):
        pkpd.Dose(1, "mg*10**10**10")


@pytest.mark.parametrize("change,why", [
    ("times = {start = 0, stop = 1e12, step = 1}", r"scenario.times\].*output times \(more than 100,000\)"),
    ("n = 1000000000", r"\[population\].*simulated subject-arms"),
    ("doses = [" + ", ".join(["1.0"] * 1001) + "]", r"\[arms.low\].*1,001 dose levels"),
])
def test_scenario_files_cannot_ask_for_unbounded_work(tmp_path, change, why):
    text = """
[scenario]
name = "limits"
model = "pk_1cmt_iv"
times = {start = 0, stop = 24, step = 1}

[population]
n = 10

[arms.low]
doses = [10, 100]
unit = "mg"

[endpoints.cmax]
output = "conc"
metric = "cmax"
"""
    key = change.split(" = ")[0]
    lines = [change if line.startswith(key + " = ") else line for line in text.splitlines()]
    path = tmp_path / "s.toml"
    path.write_text("\n".join(lines))
    with pytest.raises(PkpdError, match=why):
        pkpd.load_scenario(path)


def test_model_size_limits(tmp_path):
    from pkpd.load import MAX_FILE_BYTES

    big = tmp_path / "big.toml"
    big.write_text(model_text() + "\n# " + "x" * MAX_FILE_BYTES + "\n")
    with pytest.raises(ModelFileError, match="more than the 10 MB a model file may have"):
        pkpd.load_model(big)
    states = "".join(f'\n[states.S{i}]\nunit = "mg"\ninitial = "0"\nddt = "-k * S{i}"\n' for i in range(1001))
    many = tmp_path / "many.toml"
    many.write_text(model_text() + states)
    with pytest.raises(ModelFileError, match="1,002 states, more than the 1,000"):
        pkpd.load_model(many)
