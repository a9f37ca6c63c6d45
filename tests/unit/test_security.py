"""A model file is data: nothing in it runs, whatever it holds (issue 14, docs/security.md).

Each injection test uses a sentinel: a file that the payload would create if it ran. The test asserts that the file
does not exist afterwards, not only that an error was raised. The same payloads go through every way a model reaches
the code generators: ``pkpd.simulate`` (both engines), the command line, a scenario file and a sensitivity-gradient
fit (which compiles an augmented model).
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pkpd
import pkpd.compile
import pkpd.nonmem
from pkpd._native import compiler, generate_c_source
from pkpd.compile import generate_source, plan
from pkpd.errors import ModelFileError
from pkpd.load import dump_model, model_from_dict

ENGINES = ["native", "numba"]
CLEAN = pkpd.load_model("pk_1cmt_iv")


def _engines():
    return [e if e == "numba" or compiler() else pytest.param(e, marks=pytest.mark.skip("no C compiler"))
            for e in ENGINES]


def payloads(sentinel: Path) -> dict[str, str]:
    """Text that would run code (and create ``sentinel``) if it were pasted into generated C or Python."""
    s = str(sentinel)
    return {
        "c_constructor": f'*/ __attribute__((constructor)) static void pwn(void) {{ system("touch {s}"); }} /*',
        "python_newline": f'x\nimport os; os.system("touch {s}")\n',
        "python_docstring": f'"""\nimport os; os.system("touch {s}")\n"""',
        "include": '#include "/etc/passwd"',
        "comment_breakout": f"*/\n#define N 0\nint main(void) {{ return system(\"touch {s}\"); }}\n/*",
    }


def _toml_text(value: str) -> str:
    """``value`` as a TOML basic string."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t") + '"'


def malicious_model_file(tmp_path: Path, sentinel: Path, *, name: str = "pk_1cmt_iv") -> Path:
    """pk_1cmt_iv with every free-text field (descriptions, sources, references) holding injection payloads, and a
    version that is short and printable but closes a C comment."""
    pay = payloads(sentinel)
    text = dump_model(CLEAN)
    lines = []
    for line in text.splitlines():
        key = line.split(" = ", 1)[0]
        if key in ("description", "source"):
            lines.append(f"{key} = {_toml_text(pay['c_constructor'] + pay['python_newline'] + pay['include'])}")
        elif key == "references":
            lines.append("references = [" + ", ".join(_toml_text(p) for p in pay.values()) + "]")
        elif key == "version":
            lines.append('version = "1*/int x;/*"')
        elif key == "name":
            lines.append(f'name = "{name}"')
        else:
            lines.append(line)
    path = tmp_path / f"{name}.toml"
    path.write_text("\n".join(lines))
    return path



def _sources(model) -> tuple[str, str]:
    return generate_c_source(model, plan(model)), generate_source(model)[0]


# ----------------------------------------------------------------------------------------- generated source
def test_a_model_whose_text_fields_hold_payloads_generates_the_same_code_as_the_clean_one(tmp_path, sentinel):
    evil = pkpd.load_model(malicious_model_file(tmp_path, sentinel))
    assert evil.references and "system(" in evil.description  # the payloads are in the model...
    assert _sources(evil) == _sources(CLEAN)  # ...and not in the code, not even in comments


@pytest.mark.parametrize("field", ["version", "name", "description"])
@pytest.mark.parametrize("payload", sorted(payloads(Path("/x"))))
def test_no_string_field_reaches_generated_code_even_past_validation(tmp_path, sentinel, field, payload):
    # Bypass the loader's validation on purpose (as a future bug might): the generators still print no field.
    text = payloads(sentinel)[payload]
    evil = replace(CLEAN)
    object.__setattr__(evil, field, text)
    c_src, py_src = _sources(evil)
    assert (c_src, py_src) == _sources(CLEAN)
    assert text not in c_src and text not in py_src


@pytest.mark.parametrize("engine", _engines())
def test_payloads_past_validation_compile_and_run_nothing(tmp_path, sentinel, fresh_cache, engine):
    evil = replace(CLEAN)
    for field, payload in (("version", "c_constructor"), ("description", "python_newline"), ("name", "include")):
        object.__setattr__(evil, field, payloads(sentinel)[payload])
    regimen = pkpd.Regimen.single(pkpd.Dose(100, "mg"))
    got = pkpd.simulate(pkpd.compile_model(evil, engine), regimen, [0.0, 1.0, 5.0])
    want = pkpd.simulate(pkpd.compile_model(CLEAN, engine), regimen, [0.0, 1.0, 5.0])
    np.testing.assert_array_equal(got.outputs["conc"], want.outputs["conc"])


def test_version_with_control_characters_or_too_long_is_refused(tmp_path, sentinel):
    for version in ("1\nimport os", "1\x1b[2J", "1" * 41, "", "1\u202e2"):
        with pytest.raises(ModelFileError, match="version"):
            replace(CLEAN, version=version)
    path = malicious_model_file(tmp_path, sentinel)
    path.write_text(path.read_text().replace('version = "1*/int x;/*"', 'version = "1\\nimport os"'))
    with pytest.raises(ModelFileError, match=r"\[model\] version: must be short printable text"):
        pkpd.load_model(path)


@pytest.mark.parametrize("field,value", [
    ("description", "IL-10 \x1b[31mred\x1b[0m"),
    ("description", "safe \u202e txt.exe"),
    ("description", "NUL \x00 here"),
])
def test_control_characters_in_text_fields_are_refused_at_load(field, value):
    with pytest.raises(ModelFileError, match=r"control character U\+"):
        replace(CLEAN, **{field: value})
    params = (replace(CLEAN.parameters[0], source=value),) + CLEAN.parameters[1:]
    with pytest.raises(ModelFileError, match=r"\[parameters.CL\] source.*control character"):
        replace(CLEAN, parameters=params)


# hypothesis: arbitrary text in every free-text field
_TEXT = st.text(st.characters(codec="utf-8"), max_size=80) | st.sampled_from(
    ["*/", '"""', "\n", "#include <stdio.h>", "\x00", "\x1b[2J", "\\", "'''", "}{", "\u202e", "*/\n#define N 0\n/*"])


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(description=_TEXT, source=_TEXT, reference=_TEXT, version=_TEXT, state_description=_TEXT,
       output_description=_TEXT, dose_description=_TEXT, covariate_description=_TEXT, derived_description=_TEXT)
def test_arbitrary_text_fields_never_change_the_generated_code(tmp_path, description, source, reference, version,
                                                               state_description, output_description,
                                                               dose_description, covariate_description,
                                                               derived_description):
    import tomllib

    data = tomllib.loads(dump_model(CLEAN))
    data["model"].update(description=description, version=version, references=[reference, description])
    for p in data["parameters"].values():
        p["source"] = source
        p["description"] = description
    data["states"]["central"]["description"] = state_description
    data["outputs"]["conc"]["description"] = output_description
    data["outputs"]["conc"]["label"] = output_description[:200]
    data["doses"]["iv"]["description"] = dose_description
    data["covariates"]["WT"]["description"] = covariate_description
    data["derived"]["ke"]["description"] = derived_description
    try:
        model = model_from_dict(data)
    except ModelFileError as err:
        assert "control character" in str(err) or "version" in str(err)
        return
    assert _sources(model) == _sources(CLEAN)


# ----------------------------------------------------------------------------------------- every entry point
@pytest.mark.parametrize("engine", _engines())
def test_a_malicious_model_file_simulates_like_the_clean_one_through_the_api(tmp_path, sentinel, fresh_cache,
                                                                             engine):
    evil = pkpd.load_model(malicious_model_file(tmp_path, sentinel))
    regimen = pkpd.Regimen.every(12, "h", count=3, dose=pkpd.Dose(100, "mg"))
    times = np.linspace(0, 48, 49)
    got = pkpd.simulate(evil, regimen, times, backend=engine)
    want = pkpd.simulate(CLEAN, regimen, times, backend=engine)
    np.testing.assert_array_equal(got.outputs["conc"], want.outputs["conc"])
    assert pkpd.compile_model(evil, engine).source_path == pkpd.compile_model(CLEAN, engine).source_path


@pytest.mark.parametrize("engine", _engines())
def test_a_malicious_model_file_runs_nothing_through_the_command_line(tmp_path, sentinel, engine):
    path = malicious_model_file(tmp_path, sentinel)
    env = dict(os.environ, PKPD_CACHE_DIR=str(tmp_path / "cache"), PKPD_ENGINE=engine, MPLBACKEND="Agg")
    out = tmp_path / "sim.csv"
    for args in (["show", str(path)], ["simulate", str(path), "--dose", "100", "--dose-unit", "mg", "--until", "24",
                                       "--out", str(out)]):
        done = subprocess.run([sys.executable, "-m", "pkpd", *args], capture_output=True, text=True, env=env,
                              timeout=300)
        assert done.returncode == 0, done.stderr
        assert "\x1b" not in done.stdout
    table = pd.read_csv(out)
    assert table["value"].iloc[0] == pytest.approx(100 / 32.0)


@pytest.fixture(params=_engines())
def engine(request, monkeypatch):
    monkeypatch.setenv("PKPD_ENGINE", request.param)
    return request.param


def test_a_malicious_model_file_runs_nothing_through_a_scenario(tmp_path, sentinel, fresh_cache, engine):
    import pkpd.cli

    path = malicious_model_file(tmp_path, sentinel)
    scenario = tmp_path / "s.toml"
    scenario.write_text(f"""
[scenario]
name = "security probe"
model = {_toml_text(str(path))}
seed = 1
times = {{start = 0, stop = 24, step = 1}}

[population]
n = 5
omega = {{CL = 0.2}}

[arms.low]
doses = [10, 100]
unit = "mg"

[endpoints.cmax]
output = "conc"
metric = "cmax"
""")
    result = pkpd.run_scenario(pkpd.load_scenario(scenario))
    assert len(result.table) == 2 * 5 and np.isfinite(result.table["value"]).all()
    assert pkpd.cli.main(["scenario", str(scenario), "--out", str(tmp_path / "report")]) == 0
    assert (tmp_path / "report" / "report.html").is_file()


def test_a_malicious_model_file_runs_nothing_through_a_sensitivity_fit(tmp_path, sentinel, fresh_cache, engine):
    evil = pkpd.load_model(malicious_model_file(tmp_path, sentinel))
    times = np.array([0.5, 1, 2, 4, 8, 12, 24.0])
    conc = 100 / 32.0 * np.exp(-2.8 / 32.0 * times) * (1 + 0.05 * np.sin(times))
    data = pd.DataFrame({"ID": 1, "TIME": np.r_[0.0, times], "AMT": np.r_[100.0, np.zeros(times.size)],
                         "DV": np.r_[np.nan, conc], "EVID": np.r_[1, np.zeros(times.size, int)]})
    fit = pkpd.fit(evil, pkpd.nonmem.read_nonmem(data, evil, dose_unit="mg"), estimate=["CL", "V"],
                   error={"conc": pkpd.Proportional(cv=0.1)}, gradient="sensitivity")
    assert fit.estimates["CL"] == pytest.approx(2.8, rel=0.05)
