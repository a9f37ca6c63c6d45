"""The newcomer path, run as a newcomer would (issue 19): every code block of README.md, docs/*.md and
notebooks/README.md, and the example of every command's --help, from a fresh folder that holds the repository.

How blocks run
--------------
* Each test runs in a temporary folder holding links to the repository's folders (``notebooks/``, ``scenarios/``,
  ``models/``, ``tests/``, ``docs/``...), so that relative paths resolve as in a fresh clone and files written
  (``demo.csv``, ``report/``...) land in the temporary folder.
* ``python`` blocks of one file run in order in one namespace (a reader pastes them into one session).
* ``sh`` blocks run line by line (continuation lines joined) with ``bash``, with the test environment's ``bin`` folder
  first on ``PATH``. The steps that build that environment are what this test already runs in, so in a command
  chained with ``&&`` the steps ``python3 -m venv ...`` and ``.../pip install ...`` are skipped, ``.venv/bin/X`` is the
  test environment's ``X``, and ``python -m pytest`` (this very suite) is not started again.
* ``toml`` blocks are model files: they must load (``pkpd.load_model``).
* A command that already ran in this session (the README shows the examples of the commands' --help) is not run
  again.
* A block that cannot run here is preceded by the marker ``<!-- not-run: REASON -->``; :data:`NOT_RUN_REASONS` lists
  the only reasons accepted, so that the list stays short and justified.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", ROOT / "notebooks" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BIN = Path(sys.executable).parent
FENCE = re.compile(r"(?P<marker><!-- not-run: (?P<reason>[^>]*?) -->\s*\n)?```(?P<lang>\w*)\n(?P<body>.*?)```", re.S)
#: Why a documented block may not run in the test suite. Each is about the machine, never about the code being wrong.
NOT_RUN_REASONS = {
    "extra dependencies and minutes of benchmarks",   # docs/performance.md: pip install .[bench] (gfortran), peers
    "needs a Slurm cluster",                          # docs/performance.md: dask_jobqueue.SLURMCluster
    "needs a GPU",                                    # docs/performance.md: jax[cuda12]
    "illustrative fragment",                          # docs/performance.md: a call with "..." in place of arguments
    "starts Jupyter",                                 # notebooks/README.md: jupyter lab is interactive
    "the mutation audit (hours of CPU)",              # docs/testing.md: benchmarks/mutation.py
}


def blocks(path: Path) -> list[tuple[str, str, str | None]]:
    """(language, code, not-run reason) of every fenced block of a Markdown file."""
    text = path.read_text(encoding="utf-8")
    return [(m["lang"], m["body"], m["reason"]) for m in FENCE.finditer(text)]


@pytest.fixture
def clone(tmp_path, monkeypatch):
    """A folder that looks like a fresh clone: links to the repository's folders and files, nothing built."""
    for item in ROOT.iterdir():
        if item.name.startswith(".") or item.name in ("build", "dist") or item.name.endswith(".egg-info"):
            continue
        (tmp_path / item.name).symlink_to(item, target_is_directory=item.is_dir())
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", f"{BIN}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    return tmp_path


def shell_commands(code: str) -> list[str]:
    """The commands of an ``sh`` block, as this test runs them (see the module docstring)."""
    joined = re.sub(r"\\\n\s*", " ", code)
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        steps = []
        for step in (s.strip() for s in line.split("&&")):
            words = shlex.split(step, comments=True)
            if not words:
                continue
            if words[:3] == ["python3", "-m", "venv"] or (words[0].endswith("pip") and "install" in words[1:]):
                continue  # building the environment this test already runs in
            if "pytest" in words:
                continue  # the test suite itself
            step = re.sub(r"\s+#.*$", "", step)  # a trailing comment
            steps.append(re.sub(r"(^|\s)\.venv/bin/", rf"\g<1>{BIN}/", step))
        if steps:
            out.append(" && ".join(steps))
    return out


_RAN: set[str] = set()  # commands that already ran cleanly in this session (README and --help share examples)


def run_shell(command: str, cwd: Path, *, reuse: bool = True) -> None:
    key = " ".join(command.split())
    if reuse and key in _RAN:
        return
    done = subprocess.run(["bash", "-c", command], cwd=cwd, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"{command}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    assert "pkpd: warning" not in done.stderr, f"{command} warned:\n{done.stderr[-2000:]}"
    _RAN.add(key)


def run_python(code: str, namespace: dict) -> None:
    import matplotlib.pyplot as plt

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a documented snippet runs without a warning
        exec(compile(code, "<documented block>", "exec"), namespace)  # noqa: S102 - the repository's own docs
    plt.close("all")


# --- the documents --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", DOCS, ids=[str(p.relative_to(ROOT)) for p in DOCS])
def test_every_code_block_runs(path, clone, capsys):
    import pkpd

    namespace: dict = {"__name__": "__documented__"}
    ran = 0
    for lang, code, reason in blocks(path):
        if reason is not None:
            assert reason in NOT_RUN_REASONS, f"{path.name}: unexplained not-run block ({reason!r})"
            continue
        if lang == "python":
            run_python(code, namespace)
        elif lang == "sh":
            for command in shell_commands(code):
                run_shell(command, clone)
        elif lang == "toml":
            (clone / "block.toml").write_text(code, encoding="utf-8")
            model = pkpd.load_model(clone / "block.toml")
            assert model.parameters and model.states
        else:
            pytest.fail(f"{path.name}: a ```{lang} block: mark its language (python, sh, toml)")
        ran += 1
    assert ran or all(reason for _, _, reason in blocks(path)), f"{path.name}: no block ran"


def test_not_run_blocks_are_few():
    marked = [(p.name, reason) for p in DOCS for _, _, reason in blocks(p) if reason is not None]
    assert len(marked) <= 6, marked


def test_the_readme_demo_writes_its_outputs(clone):
    (setup,) = [code for lang, code, _ in blocks(ROOT / "README.md") if "demo.png" in code]
    for command in shell_commands(setup):
        run_shell(command, clone, reuse=False)
    assert (clone / "demo.png").read_bytes()[:4] == b"\x89PNG"
    assert (clone / "demo.csv").read_text().startswith("ID,TIME,name,value,unit")
    ignored = subprocess.run(["git", "check-ignore", "demo.png", "demo.csv"], cwd=ROOT, capture_output=True,
                             text=True)
    if ignored.returncode != 128:  # 128: not a git checkout (e.g. an sdist)
        assert ignored.stdout.split() == ["demo.png", "demo.csv"], "add the demo's outputs to .gitignore"


# --- the examples of every --help --------------------------------------------------------------------------------
def help_examples() -> list[tuple[str, str]]:
    """(command, example) for every example line of every subcommand's --help."""
    from pkpd.cli import _parser

    parser = _parser()
    subcommands = next(a for a in parser._actions if a.dest == "command").choices
    out = []
    for name, sub in subcommands.items():
        text = re.sub(r"\\\n\s*", " ", sub.epilog or "")
        out += [(name, line.strip()) for line in text.splitlines() if line.strip().startswith("pkpd ")]
    return out


def test_every_command_with_options_has_an_example_in_its_help():
    commands = {name for name, _ in help_examples()}
    assert commands == {"simulate", "fit", "fit-population", "nca", "scenario"}


@pytest.mark.parametrize("command, example", help_examples(), ids=[e for _, e in help_examples()])
def test_help_example_runs(command, example, clone):
    run_shell(example, clone)


def test_help_is_printed_for_every_command():
    from pkpd.cli import main

    for name in ("models", "show", "simulate", "fit", "fit-population", "nca", "scenario"):
        assert main([name, "--help"]) == 0


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_outputs_of_documented_commands_are_ignored_by_git():
    names = ["demo.csv", "demo.png", "sim.csv", "sim.png"]
    done = subprocess.run(["git", "check-ignore", *names], cwd=ROOT, capture_output=True, text=True)
    if done.returncode == 128:
        pytest.skip("not a git checkout")
    assert done.stdout.split() == names
