"""Every notebook runs in the environment notebooks/README.md names (issue 19: notebook 05 failed with "No module
named 'distributed'" after pip install -e ".[notebooks]"). What the notebooks import must be installed by pkpd's core
dependencies and its ``notebooks`` extra (directly or through them); only the parts notebooks/README.md calls optional
(JAX in notebook 05, which is then skipped with a note) may be missing."""

from __future__ import annotations

import ast
import re
import sys
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
#: Imports notebooks/README.md declares optional: the notebook checks for them and skips that part with a note.
OPTIONAL = {"jax"}


def _name(requirement: str) -> tuple[str, set[str]]:
    """('dask', {'distributed'}) from 'dask[distributed]>=2024.1'."""
    m = re.match(r"\s*([A-Za-z0-9_.-]+)\s*(?:\[([^\]]*)\])?", requirement)
    extras = {e.strip() for e in (m.group(2) or "").split(",") if e.strip()}
    return _norm(m.group(1)), extras


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _installed_by(requirements: list[str]) -> set[str]:
    """Distributions installed by these requirements, with everything they require (in this environment)."""
    seen: set[str] = set()
    todo = list(requirements)
    while todo:
        name, extras = _name(todo.pop())
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        for req in requires:
            marker = req.split(";", 1)[1] if ";" in req else ""
            wanted = re.findall(r"extra\s*==\s*['\"]([^'\"]+)['\"]", marker)
            if wanted and not set(wanted) & extras:
                continue
            todo.append(req.split(";", 1)[0])
    return seen


def _project() -> dict:
    import tomllib

    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def notebook_imports(path: Path) -> set[str]:
    """Top-level modules a notebook imports (in any cell, guarded or not)."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    out = set()
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        code = "\n".join(line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!")))
        for node in ast.walk(ast.parse(code)):
            if isinstance(node, ast.Import):
                out |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                out.add(node.module.split(".")[0])
        out |= set(re.findall(r"find_spec\(\"(\w+)\"\)", code))
    return out


def test_the_notebooks_readme_installs_the_notebooks_extra():
    readme = (ROOT / "notebooks" / "README.md").read_text(encoding="utf-8")
    assert 'pip install -e ".[notebooks]"' in readme


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_what_a_notebook_imports_is_installed_by_the_notebooks_extra(path):
    pytest.importorskip("nbformat")
    project = _project()
    installed = _installed_by(project["dependencies"] + project["optional-dependencies"]["notebooks"])
    distributions = metadata.packages_distributions()
    missing = []
    for module in sorted(notebook_imports(path)):
        if module in sys.stdlib_module_names or module == "pkpd" or module in OPTIONAL:
            continue
        providers = {_norm(d) for d in distributions.get(module, [module])}
        if not providers & installed:
            missing.append(f"{module} (from {', '.join(sorted(providers))})")
    assert not missing, f"{path.name} imports what pip install -e '.[notebooks]' does not install: {missing}"


def test_optional_parts_are_declared_optional_in_the_readme():
    readme = (ROOT / "notebooks" / "README.md").read_text(encoding="utf-8")
    for module in OPTIONAL:
        assert "JAX" in readme if module == "jax" else module in readme
