"""The design's one-way data flow, enforced over the import graph (style.md, practice 15)."""

import ast
import subprocess
import sys
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "pkpd"


def imports_of(module: str) -> set[str]:
    tree = ast.parse((PKG / f"{module}.py").read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            out.add((node.module or "").split(".")[0])
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("pkpd."):
            out.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            out |= {a.name.split(".")[1] for a in node.names if a.name.startswith("pkpd.")}
    return out


def test_model_knows_nothing_about_dosing_data_or_simulation():
    assert not imports_of("model") & {"dosing", "simulate", "compile", "plots", "cli"}


def test_dosing_knows_nothing_about_models():
    assert not imports_of("dosing") & {"model", "load", "compile", "simulate", "plots", "cli"}


def test_nothing_in_the_library_imports_the_cli():
    for path in PKG.glob("*.py"):
        if path.stem not in ("cli", "__main__"):
            assert "cli" not in imports_of(path.stem), path.name


def test_import_is_light():
    code = ("import sys, pkpd; heavy = [m for m in ('numba', 'matplotlib', 'pint', 'pandas', 'scipy', 'jax', 'dask') "
            "if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def test_every_public_name_is_documented():
    import pkpd

    for name in pkpd.__all__:
        obj = getattr(pkpd, name)
        assert obj.__doc__ and obj.__doc__.strip(), f"pkpd.{name} has no docstring"


def test_no_module_shadows_a_public_function():
    # importing a submodule sets it as an attribute of the package: a module named like a public function
    # (pkpd/simulate.py vs pkpd.simulate) would replace the function once anything imports the module
    import pkpd

    modules = {p.stem for p in PKG.glob("*.py")}
    assert not modules & set(pkpd.__all__)


def test_only_the_jax_backend_and_the_sampler_import_jax():
    # jax is an optional extra (pkpd[gpu], pkpd[bayes]): the core never imports it; pkpd.simulate(backend="jax")
    # loads the backend, pkpd.sample loads the NUTS module
    users = set()
    for path in PKG.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else [])
            if any(n == "jax" or n.startswith("jax.") for n in names):
                users.add(path.name)
    assert users == {"jax_backend.py", "_nuts.py"}
