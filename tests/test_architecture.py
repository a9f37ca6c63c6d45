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


def test_only_the_jax_backend_imports_jax():
    # jax is an optional extra (pkpd[gpu]): the core never imports it, pkpd.simulate(backend="jax") loads the backend
    users = set()
    for path in PKG.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else [])
            if any(n == "jax" or n.startswith("jax.") for n in names):
                users.add(path.name)
    assert users == {"jax_backend.py"}


# --- estimation (issue 15): a package of its own, imported by nothing below it ------------------------------------
ENGINE_AND_SIMULATION = ("model", "load", "expressions", "units", "compile", "_native", "_native_template",
                         "_native_summaries", "_integrator", "_tableaus", "_cache", "_check_cache", "_numba_cache",
                         "_sensitivity", "_params", "dosing", "settings", "simulation", "summaries", "nonmem",
                         "population", "error_models", "jax_backend")


def _package_imports(path: Path) -> list[tuple[str, ast.AST | None]]:
    """(imported pkpd module, enclosing function or None) of every pkpd import in a module of pkpd/ or a subpackage."""
    tree = ast.parse(path.read_text())
    depth = len(path.relative_to(PKG).parts) - 1       # 0 for pkpd/x.py, 1 for pkpd/estimation/x.py
    out = []

    def visit(node, func):
        for child in ast.iter_child_nodes(node):
            here = child if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef) else func
            if isinstance(child, ast.ImportFrom):
                name = None
                if child.level == 1 + depth:
                    name = (child.module or "").split(".")[0]
                elif child.level == 1 and depth == 1:
                    name = "estimation"
                elif (child.module or "").startswith("pkpd."):
                    name = child.module.split(".")[1]
                if name is not None:
                    out.append((name, func))
            elif isinstance(child, ast.Import):
                out.extend((a.name.split(".")[1], func) for a in child.names if a.name.startswith("pkpd."))
            visit(child, here)

    visit(tree, None)
    return out


def test_engine_and_simulation_never_import_estimation():
    for module in ENGINE_AND_SIMULATION:
        path = PKG / f"{module}.py"
        assert path.exists(), module
        used = {name for name, _ in _package_imports(path)}
        assert not used & {"estimation", "fitting", "nlme", "sse"}, (module, used & {"estimation", "fitting", "nlme"})


def test_estimation_imports_plots_only_lazily_in_plotting_methods():
    for path in (PKG / "estimation").glob("*.py"):
        for name, func in _package_imports(path):
            assert name not in ("cli", "report", "explorer", "scenarios"), (path.name, name)
            if name == "plots":
                assert func is not None and "plot" in func.name, (path.name, getattr(func, "name", None))


def test_the_old_estimation_modules_keep_their_names():
    import pkpd
    import pkpd.fitting
    import pkpd.nlme

    for module in (pkpd.fitting, pkpd.nlme):
        for name in module.__all__:
            assert getattr(module, name) is not None
    assert pkpd.fit is pkpd.fitting.fit and pkpd.fit_population is pkpd.nlme.fit_population
    # the public functions live in pkpd.estimation and report their documented home
    from pkpd.estimation import population_checks

    assert pkpd.nlme.vpc is population_checks.vpc and pkpd.nlme.vpc.__module__ == "pkpd.nlme"
