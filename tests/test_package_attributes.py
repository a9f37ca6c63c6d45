"""After a plain `import pkpd`, every public submodule is an attribute (issue 19: the README's
pkpd.nonmem.read_nonmem and the docstring's pkpd.nlme.vpc), loaded on first use so `import pkpd` stays light."""

import subprocess
import sys
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "pkpd"
PUBLIC = sorted(p.stem for p in PKG.glob("*.py") if not p.stem.startswith("_"))


@pytest.mark.parametrize("name", ["nonmem", "nlme", "plots", "sensitivity", "metrics", "report"])
def test_submodule_is_an_attribute_after_import_pkpd(name):
    # a fresh interpreter: in this one, other tests have imported the submodules already
    code = f"import pkpd; m = pkpd.{name}; print(m.__name__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == f"pkpd.{name}"


def test_every_public_submodule_is_reachable():
    import pkpd

    assert set(PUBLIC) <= set(pkpd._SUBMODULES), "add new public modules to pkpd._SUBMODULES"
    assert set(PUBLIC) <= set(dir(pkpd))


def test_readme_fitting_call_resolves_without_extra_imports():
    code = "import pkpd; print(pkpd.nonmem.read_nonmem.__module__, pkpd.nlme.vpc.__module__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["pkpd.nonmem", "pkpd.nlme"]


def test_unknown_attribute_is_still_an_attribute_error():
    import pkpd

    with pytest.raises(AttributeError, match="no attribute 'nonmen'"):
        pkpd.nonmen  # noqa: B018
