"""Mutation audit of pkpd's scientific core (issue 20): do the tests catch wrong results?

Each module of the scientific core is mutated (small, realistic bugs put in one at a time: an operator swapped, a
constant changed, a condition negated, an argument dropped) and the tests that cover it are run against every mutant;
a mutant the tests do not detect is a rule nothing guards, unless it is equivalent (it cannot change any result).
Scores and the command that produced them are in docs/testing.md. Slow (minutes to hours per module): not part of
the test suite, run it by hand.

Two mutators:

* Python code: mutmut (``pip install -e ".[mutation]"``), run in a copy of the working tree under ``--workdir``
  (default ``.mutation/``, git-ignored), one copy per module with its own test selection. Each mutant runs in a
  child of a forkserver that has only collected the tests (``process_isolation = "forkserver"``; for ``units``,
  whose unit parser caches results in memory, not even that), so that models compiled or checked by unmutated code
  while collecting statistics cannot hide it; the on-disk cache of checked unit trees is keyed by the mutant too.
  What the collection itself computes with unmutated code (models loaded at module level in a test file) can still
  hide a mutant: the score is a lower bound. Lines that raise an exception are not mutated
  (``do_not_mutate_patterns``): the text of an error message is not a scientific rule; the condition that raises it
  is mutated. Tests of the numba engine are deselected (``-k "not numba"``, a numba compile per mutant is too slow);
  the numba template is audited with the templates.
* The engine templates (the C source of ``_native_template.py``, the numba source of ``_integrator.py``) and the
  coefficient tables of ``_tableaus.py`` are strings and module-level constants, which mutmut does not mutate: a
  small purpose-built mutator swaps operators (``+ -``, ``* /``, ``< <=``, ``> >=``, ``== !=``, ``&& ||``) and
  changes numeric literals (sign, one digit) line by line, and runs the selected tests against each mutant in a copy
  of the tree. ``--sample N`` tests a random sample of N of them (seeded), reported with a Wilson 95 % interval.

A run stopped by its time limit (``--time-limit`` per module) keeps its results: running the same command again
resumes where it stopped (mutmut keeps the result of every mutant tested; the template mutator its JSON file).
After adding tests, ``--retest`` tests the surviving mutants of a module again with the current tests (after
testing those not yet tested, unless ``--survivors-only``: for a partial audit).
``--only PATTERN`` (mutmut modules) tests only the mutants whose names match (fnmatch, e.g. ``'*x__text__*'``):
a partial audit of the functions that changed, reported as such (``tested`` < ``mutants``).
``--sample N`` (every module) tests a seeded random sample (``--seed``) of N mutants: for a mutmut module the mutants
are generated, N names drawn among all of them (kept in the copy's ``sample.json``, so a stopped run resumes the same
sample) and only those passed to ``mutmut run``; the score is detected / tested within the sample, reported with a
Wilson 95 % interval. mutmut tests the fastest mutants first: a sample stopped by its time limit leans to the fast.

Usage::

    python benchmarks/mutation.py --list
    python benchmarks/mutation.py expressions units dosing --time-limit 3600
    python benchmarks/mutation.py templates --sample 120
    python benchmarks/mutation.py simulation nlme --sample 100 --seed 20
    python benchmarks/mutation.py --report          # the score table of what has run, as in docs/testing.md
    python benchmarks/mutation.py --estimate        # one stratified figure for all modules (independent samples)

Results: ``benchmarks/results/mutation/<module>.json`` (counts, score, surviving mutants with their diffs).
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import math
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "mutation"


@dataclass(frozen=True)
class Spec:
    """What to mutate and which tests must detect it."""

    files: tuple[str, ...]
    tests: tuple[str, ...]
    kind: str = "mutmut"             # "mutmut" or "template"
    # mutmut's forkserver warm-up: "collect" imports the test modules once before forking (fast); "none" imports
    # them in every mutant's process, for modules whose results are cached in memory at import (units.unit)
    warmup: str = "collect"
    ranges: dict = field(default_factory=dict)  # template: file -> (first, last) line of the mutated text


ENGINE_TESTS = ("tests/reference/test_analytic.py", "tests/reference/test_time_dependent_rhs.py",
                "tests/reference/test_stiff_tmdd.py", "tests/reference/test_dosing_rules.py",
                "tests/reference/test_nonmem_golden.py")

MODULES: dict[str, Spec] = {
    "expressions": Spec(("pkpd/expressions.py",), (
        "tests/unit/test_expressions.py", "tests/properties/test_expression_allow_list.py",
        "tests/properties/test_expression_properties.py", "tests/unit/test_c_printing.py",
        "tests/unit/test_expression_printing.py", "tests/unit/test_units.py",
        "tests/reference/test_unit_conversion.py", "tests/reference/test_time_dependent_rhs.py",
        "tests/unit/test_expression_rules.py")),
    "units": Spec(("pkpd/units.py",), (
        "tests/unit/test_units.py", "tests/reference/test_unit_conversion.py", "tests/unit/test_expressions.py",
        "tests/unit/test_bad_input.py", "tests/reference/test_analytic.py", "tests/unit/test_metrics.py"),
        warmup="none"),
    "dosing": Spec(("pkpd/dosing.py",), (
        "tests/unit/test_dosing.py", "tests/unit/test_regimen_builders.py",
        "tests/properties/test_regimen_properties.py", "tests/reference/test_dosing_rules.py",
        "tests/reference/test_analytic.py", "tests/unit/test_bad_input.py",
        "tests/unit/test_nonmem.py", "tests/properties/test_nonmem_properties.py", "tests/unit/test_dosing_text.py")),
    "error_models": Spec(("pkpd/error_models.py",), (
        "tests/unit/test_error_models.py", "tests/unit/test_error_model_derivatives.py",
        "tests/reference/test_censored_fits.py", "tests/unit/test_fit.py")),
    "metrics": Spec(("pkpd/metrics.py",), (
        "tests/unit/test_metrics.py", "tests/unit/test_metrics_rules.py", "tests/reference/test_nca_infusion.py",
        "tests/unit/test_targets.py", "tests/unit/test_scenarios.py")),
    "nonmem": Spec(("pkpd/nonmem.py",), (
        "tests/unit/test_nonmem.py", "tests/unit/test_nonmem_rules.py", "tests/reference/test_nonmem_golden.py",
        "tests/properties/test_nonmem_properties.py", "tests/reference/test_dosing_rules.py")),
    "simulation": Spec(("pkpd/simulation.py",), ENGINE_TESTS + (
        "tests/unit/test_dosing.py", "tests/unit/test_bad_input.py", "tests/reference/test_unit_conversion.py",
        "tests/unit/test_simulation_rules.py", "tests/unit/test_tables.py", "tests/unit/test_summaries.py",
        "tests/unit/test_closed_form.py", "tests/unit/test_endpoints.py", "tests/unit/test_native_engine.py")),
    "scenarios": Spec(("pkpd/scenarios.py",), ("tests/unit/test_scenarios.py", "tests/unit/test_targets.py",
                                               "tests/unit/test_cli_scenario.py", "tests/unit/test_scenario_rules.py")),
    "population": Spec(("pkpd/population.py",), (
        "tests/unit/test_population.py", "tests/unit/test_population_rules.py",
        "tests/properties/test_inclusion_criteria.py", "tests/unit/test_nlme.py")),
    # pkpd/fitting.py and pkpd/nlme.py only re-export pkpd.estimation (issue 15): the code under audit lives there
    "fitting": Spec(("pkpd/estimation/individual.py", "pkpd/estimation/data.py", "pkpd/estimation/likelihood.py",
                     "pkpd/estimation/uncertainty.py"), (
        "tests/unit/test_fit.py", "tests/reference/test_censored_fits.py", "tests/recovery/test_recovery.py",
        "tests/unit/test_steady_state_fits.py", "tests/unit/test_uncertainty.py", "tests/unit/test_endpoints.py",
        "tests/unit/test_priors.py", "tests/unit/test_fit_rules.py")),
    "nlme": Spec(("pkpd/estimation/population_fit.py", "pkpd/estimation/population_model.py",
                  "pkpd/estimation/covariance.py", "pkpd/estimation/finite_difference.py",
                  "pkpd/estimation/_objective.py", "pkpd/estimation/_jets.py"), (
        "tests/unit/test_nlme.py", "tests/reference/test_wang2007.py", "tests/reference/test_theophylline_nlme.py",
        "tests/unit/test_nlme_engines.py", "tests/unit/test_nlme_gradients.py", "tests/unit/test_nlme_covariates.py",
        "tests/unit/test_steady_state_fits.py", "tests/unit/test_priors.py", "tests/unit/test_fo_scoring.py",
        "tests/unit/test_saem.py", "tests/unit/test_nlme_rules.py", "tests/unit/test_nlme_gaps.py",
        "tests/unit/test_closed_form_estimation.py")),
    # the rest of the estimation code (issue 20's "and the new estimation code"): SAEM with its importance-sampling
    # objective, FO's Fisher scoring, priors (MAP and the samplers' prior terms), VPC and NPDE
    "saem": Spec(("pkpd/saem.py", "pkpd/importance.py"), (
        "tests/unit/test_saem.py", "tests/unit/test_saem_engine.py", "tests/unit/test_endpoint_saem.py",
        "tests/unit/test_nlme_rules.py", "tests/unit/test_saem_rules.py")),
    "fo_scoring": Spec(("pkpd/estimation/fisher_scoring.py", "pkpd/estimation/_fo_information.py"), (
        "tests/unit/test_fo_scoring.py", "tests/unit/test_nlme_gradients.py", "tests/unit/test_nlme_rules.py",
        "tests/unit/test_fisher_scoring_rules.py")),
    "priors": Spec(("pkpd/priors.py", "pkpd/_prior_part.py"), (
        "tests/unit/test_priors.py", "tests/unit/test_bayes.py", "tests/unit/test_prior_rules.py")),
    "population_checks": Spec(("pkpd/estimation/population_checks.py",), (
        "tests/unit/test_vpc.py", "tests/unit/test_nlme.py", "tests/unit/test_population_checks_rules.py")),
    # scientific modules outside issue 20's first list, audited since: non-compartmental analysis (protocol tables),
    # the closed-form solutions of linear models (simulation and design), clinical endpoints and their simulated
    # outcomes (likelihoods of time-to-event, binary, ordinal and count records)
    "nca": Spec(("pkpd/noncompartmental.py",), (
        "tests/unit/test_nca.py", "tests/reference/test_nca_infusion.py", "tests/unit/test_metrics.py",
        "tests/unit/test_metrics_rules.py", "tests/unit/test_nca_rules.py")),
    "closed_form": Spec(("pkpd/closed_form.py", "pkpd/linear_system.py"), (
        "tests/unit/test_closed_form.py", "tests/reference/test_analytic.py",
        "tests/reference/test_time_dependent_rhs.py", "tests/unit/test_design.py")),
    "endpoints": Spec(("pkpd/endpoints.py", "pkpd/outcomes.py"), (
        "tests/unit/test_endpoints.py", "tests/unit/test_endpoint_saem.py", "tests/unit/test_fit_rules.py",
        "tests/unit/test_nlme_rules.py", "tests/unit/test_population_rules.py", "tests/unit/test_simulation_rules.py",
        "tests/unit/test_endpoint_rules.py")),
    # test_engine_memory.py: the engine under AddressSanitizer sees out-of-bounds accesses no result shows (it
    # skips itself without a compiler or the sanitizer's runtime); added after templates seed 25, whose :536 it caught
    "templates": Spec(("pkpd/_native_template.py", "pkpd/_integrator.py"), ENGINE_TESTS + (
        "tests/unit/test_native_engine.py", "tests/unit/test_engine_memory.py"), kind="template"),
    "_tableaus": Spec(("pkpd/_tableaus.py",), ENGINE_TESTS, kind="template"),
}


# --------------------------------------------------------------------------------------------- the working copy
def _copy_tree(dest: Path) -> None:
    """The working tree's tracked and untracked (not ignored) files, as they are now."""
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           check=True, capture_output=True).stdout.decode().split("\0")
    for rel in filter(None, files):
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


# Appended to the copy's tests/conftest.py: the checked unit trees cached on disk are keyed by the source of
# units.py/expressions.py/model.py, which mutmut leaves identical for every mutant (it switches mutants at run time),
# so the key gets the mutant's name too.
_CONFTEST_PATCH = '''

# --- added by benchmarks/mutation.py (mutation copy only) ---
_mutant = os.environ.get("MUTANT_UNDER_TEST")
if _mutant:
    import pkpd._check_cache as _cc

    _digest = _cc._code_digest()
    _cc._code_digest = lambda: _digest + _mutant
'''


def _mutmut_config(spec: Spec, jobs: int) -> str:
    def arr(items):
        return "[" + ", ".join(json.dumps(i) for i in items) + "]"

    return f"""

[tool.mutmut]
source_paths = ["pkpd"]
only_mutate = {arr(spec.files)}
also_copy = ["models", "benchmarks", "tests", "scenarios"]
pytest_add_cli_args_test_selection = {arr(spec.tests)}
pytest_add_cli_args = ["-p", "no:cacheprovider", "-o", "addopts=", "-k", "not numba"]
do_not_mutate_patterns = ["^\\\\s*raise\\\\b", "warnings\\\\.warn\\\\("]
process_isolation = "forkserver"
forkserver_warmup = "{spec.warmup}"
timeout_multiplier = 5.0
timeout_constant = 30.0
use_git_change_detection = false
"""


# --------------------------------------------------------------------------------------------- mutmut modules
def _copy_tests(copy: Path) -> None:
    """The working tree's tests (as they are now) into the copy and into mutmut's mutants/ tree, conftest patched."""
    for dest in (copy, copy / "mutants"):
        if dest.exists():
            shutil.rmtree(dest / "tests", ignore_errors=True)
            shutil.copytree(ROOT / "tests", dest / "tests", ignore=shutil.ignore_patterns("__pycache__"))
            with open(dest / "tests" / "conftest.py", "a") as f:
                f.write(_CONFTEST_PATCH)


# Generates the mutants in the copy (as the first step of ``mutmut run`` does, without running any test) and prints
# their names, one a line.
_GENERATE_MUTANTS = """
from mutmut.__main__ import (copy_also_copy_files, copy_src_dir, create_mutants, set_mutant_under_test,
                             setup_source_paths, walk_mutatable_files, SourceFileMutationData)
set_mutant_under_test("mutant_generation")
copy_src_dir()
copy_also_copy_files()
setup_source_paths()
create_mutants(2)
for path in walk_mutatable_files():
    data = SourceFileMutationData(path=path)
    data.load()
    for key in data.exit_code_by_key:
        print("MUTANT", key)
"""

_DETECTED = ("killed", "timeout", "segfault", "suspicious")
_NOT_DETECTED = ("survived", "no tests")


def _all_mutants(copy: Path, env) -> list[str]:
    """Every mutant of the module (generated in the copy if not yet), sorted by name."""
    (copy / "mutants").mkdir(exist_ok=True)
    out = subprocess.run([sys.executable, "-c", _GENERATE_MUTANTS], cwd=copy, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"mutant generation failed in {copy}:\n{out.stderr[-3000:]}")
    return sorted(line.split(" ", 1)[1] for line in out.stdout.splitlines() if line.startswith("MUTANT "))


def _statuses(copy: Path, env) -> dict[str, str]:
    """mutmut's status of every mutant: killed, survived, no tests, timeout, ..., not checked."""
    listing = subprocess.run([sys.executable, "-m", "mutmut", "results", "--all", "true"], cwd=copy, env=env,
                             capture_output=True, text=True).stdout
    return {m.group(1): m.group(2) for line in listing.splitlines() if (m := re.match(r"\s*(\S+): (.+)$", line))}


def _sample(copy: Path, env, size: int, seed: int) -> list[str]:
    """A seeded random sample of the module's mutants, drawn once and kept in the copy (so a run can resume)."""
    kept = copy / "sample.json"
    if kept.exists():
        saved = json.loads(kept.read_text())
        if saved["size"] == size and saved["seed"] == seed:
            return saved["mutants"]
    names = _all_mutants(copy, env)
    chosen = sorted(random.Random(seed).sample(names, min(size, len(names))))
    kept.write_text(json.dumps({"size": size, "seed": seed, "population": len(names), "mutants": chosen}, indent=1))
    return chosen


def _not_detected(copy: Path, env) -> list[str]:
    listing = subprocess.run([sys.executable, "-m", "mutmut", "results"], cwd=copy, env=env, capture_output=True,
                             text=True).stdout
    return [m.group(1) for line in listing.splitlines() if (m := re.match(r"\s*(\S+): (survived|no tests)$", line))]


def run_mutmut(name: str, spec: Spec, workdir: Path, time_limit: float, jobs: int, retest: bool = False,
               only: tuple[str, ...] = (), survivors_only: bool = False, collect_only: bool = False,
               sample: int | None = None, seed: int = 20) -> dict:
    copy = workdir / name
    if collect_only and not (copy / "pyproject.toml").exists():
        raise SystemExit(f"{name}: no working copy in {workdir} to collect results from")
    env = dict(os.environ, PKPD_CACHE_DIR=str(workdir / "cache"), MPLBACKEND="Agg")
    if not (copy / "pyproject.toml").exists():
        copy.mkdir(parents=True, exist_ok=True)
        _copy_tree(copy)
        with open(copy / "pyproject.toml", "a") as f:
            f.write(_mutmut_config(spec, jobs))
        _copy_tests(copy)
    again = []
    if retest and not collect_only:
        # tests changed since the survivors were found: new coverage statistics, then those mutants once more
        again = _not_detected(copy, env)
        _copy_tests(copy)
        for dest in (copy, copy / "mutants"):  # the test selection may have grown too
            if dest.exists():
                (dest / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text() + _mutmut_config(spec, jobs))
        (copy / "mutants" / "mutmut-stats.json").unlink(missing_ok=True)
    start = time.perf_counter()
    with open(copy / "mutmut.log", "a") as log:
        if collect_only:
            retest, survivors_only, again = True, True, []
        # --survivors-only: the mutants not yet tested wait for a later run (they are the slowest: mutmut tests the
        # fastest first), so that a partial audit's survivors can be tested again with new tests in little time
        if sample and not collect_only:
            # only the sampled mutants, those without a result first (resumes a stopped run); named mutants are
            # tested whatever their earlier result, so an empty list must not reach mutmut (it would test them all)
            chosen = _sample(copy, env, sample, seed)
            status = _statuses(copy, env)
            todo = [m for m in chosen if status.get(m, "not checked") not in _DETECTED + _NOT_DETECTED]
            again = [m for m in again if m in chosen]
            code = 0 if not todo or (retest and survivors_only) else _run_group(
                [sys.executable, "-m", "mutmut", "run", "--max-children", str(jobs), *todo], copy, env, log,
                time_limit)
        else:
            code = 0 if retest and survivors_only else _run_group(
                [sys.executable, "-m", "mutmut", "run", "--max-children", str(jobs), *only], copy, env, log,
                time_limit)
        left = time_limit - (time.perf_counter() - start)
        if only:
            again = [m for m in again if any(fnmatch.fnmatch(m, pat) for pat in only)]
        if code == 0 and again and left > 0:
            code = _run_group([sys.executable, "-m", "mutmut", "run", "--max-children", str(jobs), *again], copy,
                              env, log, left)
    seconds = time.perf_counter() - start
    subprocess.run([sys.executable, "-m", "mutmut", "export-cicd-stats"], cwd=copy, env=env, capture_output=True)
    stats_file = copy / "mutants" / "mutmut-cicd-stats.json"
    stats = json.loads(stats_file.read_text()) if stats_file.exists() else {}
    survivors = []
    names = _not_detected(copy, env)
    if sample:
        return _sample_result(name, spec, copy, env, sample, seed, seconds, names)
    diffs = _diffs(copy, env, names)
    for mutant in names:
        diff = _short_diff(diffs.get(mutant, ""))
        survivors.append({"mutant": mutant, "kind": classify(mutant, diff), "diff": diff})
    detected = sum(stats.get(k, 0) for k in ("killed", "timeout", "segfault", "suspicious"))
    tested = detected + stats.get("survived", 0) + stats.get("no_tests", 0)
    text_only = sum(s["kind"] != "result" for s in survivors)
    return {"module": name, "tool": "mutmut", "files": list(spec.files), "tests": list(spec.tests),
            "finished": tested == stats.get("total", -1) - stats.get("skipped", 0),
            "total": stats.get("total", 0), "tested": tested, "detected": detected,
            "survived": stats.get("survived", 0), "no_tests": stats.get("no_tests", 0),
            "score": detected / tested if tested else math.nan, "text_only_survivors": text_only,
            "score_results": detected / (tested - text_only) if tested > text_only else math.nan,
            "seconds_this_run": round(seconds), "only": list(only), "survivors": survivors}


def _sample_result(name: str, spec: Spec, copy: Path, env, sample: int, seed: int, seconds: float,
                   not_detected: list[str]) -> dict:
    """The score of a sampled audit: detected / tested among the sampled mutants, with a Wilson 95 % interval."""
    saved = json.loads((copy / "sample.json").read_text())
    chosen = saved["mutants"]
    status = _statuses(copy, env)
    tested = [m for m in chosen if status.get(m) in _DETECTED + _NOT_DETECTED]
    detected = sum(status[m] in _DETECTED for m in tested)
    names = [m for m in not_detected if m in set(chosen)]
    diffs = _diffs(copy, env, names)
    survivors = []
    for mutant in names:
        diff = _short_diff(diffs.get(mutant, ""))
        survivors.append({"mutant": mutant, "kind": classify(mutant, diff), "status": status[mutant], "diff": diff})
    text_only = sum(s["kind"] != "result" for s in survivors)
    lo, hi = _wilson(detected, len(tested))
    return {"module": name, "tool": "mutmut", "files": list(spec.files), "tests": list(spec.tests),
            "sample": len(chosen), "seed": seed, "finished": len(tested) == len(chosen),
            "total": saved["population"], "tested": len(tested), "detected": detected,
            "survived": sum(status[m] == "survived" for m in tested),
            "no_tests": sum(status[m] == "no tests" for m in tested),
            "score": detected / len(tested) if tested else math.nan, "score_ci95": [lo, hi],
            "text_only_survivors": text_only,
            "score_results": detected / (len(tested) - text_only) if len(tested) > text_only else math.nan,
            "seconds_this_run": round(seconds), "only": [], "survivors": survivors}


# A mutant's diff, read from mutmut's mutated module directly: each mutant is a function ``x..__mutmut_N`` next to
# ``x..__mutmut_orig``. (``mutmut show`` parses the whole mutated module with libcst once per mutant: seconds of
# CPU each for nonmem.py, half an hour for a few hundred survivors on a busy machine.)
_MUTANT_DEF = re.compile(r"^(\s*)def (x\S+?__mutmut_(?:\d+|orig))\(")


def _mutant_functions(path: Path) -> dict[str, list[str]]:
    lines = path.read_text().splitlines()
    out, i = {}, 0
    while i < len(lines):
        m = _MUTANT_DEF.match(lines[i])
        if not m:
            i += 1
            continue
        indent, name = len(m.group(1)), m.group(2)
        j = i + 1
        # the body: blank or deeper lines, and the closing ``) -> T:`` of a signature written over several lines
        while j < len(lines) and (not lines[j].strip() or len(lines[j]) - len(lines[j].lstrip()) > indent
                                  or lines[j][indent:].startswith(")")):
            j += 1
        real = _function_of(re.sub(r"__mutmut_orig$", "", name))
        body = [(ln.replace(name, real, 1) if k == 0 else ln)[indent:] for k, ln in enumerate(lines[i:j])]
        while body and not body[-1].strip():
            body.pop()
        out[name] = body
        i = j
    return out


def _diffs(copy: Path, env, names: list[str]) -> dict:
    import difflib

    functions: dict[Path, dict] = {}
    out = {}
    for name in names:
        module, function = name.rsplit(".", 1)
        path = copy / "mutants" / (module.replace(".", "/") + ".py")
        if path not in functions:
            functions[path] = _mutant_functions(path) if path.exists() else {}
        found = functions[path]
        orig = found.get(re.sub(r"__mutmut_\d+$", "__mutmut_orig", function))
        if orig is None or function not in found:
            continue
        out[name] = "\n".join(difflib.unified_diff(orig, found[function], "a", "b", lineterm=""))
    return out


def collect_mutmut(name: str, spec: Spec, workdir: Path, sample: int | None = None, seed: int = 20) -> dict:
    """The results of a module's working copy as they stand (after a run was stopped), without running mutmut."""
    return run_mutmut(name, spec, workdir, 0.0, 1, collect_only=True, sample=sample, seed=seed)


def _run_group(cmd, cwd, env, log, time_limit) -> int | None:
    """Run ``cmd`` in its own process group; at the time limit stop the whole group (mutmut's workers too)."""
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        return proc.wait(timeout=time_limit)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        return None


# Functions that only format text for people (reprs, descriptions, the "where" of a message): a mutant there cannot
# change a number, so it is counted apart from the results score (and listed).
_DISPLAY = re.compile(r"^(__repr__|_repr_html_|__str__|describe|_how|_interval|_show|_g|_where|_fmt|fmt)$")
_MESSAGE_NAMES = re.compile(r"^(where|fix|hint|what|msg|message|rule|_where\(.*\))$")
_STRING = re.compile(r"""(?:[rRbBfF]{1,2})?(?:"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')""")
_TOKEN = re.compile(_STRING.pattern + r"""|\w+|\S""")
# message-building calls and arguments (dosing's validators take the message's location as first argument)
_MESSAGE_CONTEXT = re.compile(r"raise|Error\(|where|fix=|hint|did_you_mean|message|warn|f\"|notes\.append|"
                              r"_canonical_time_unit\(|_number\(|_start_time\(|_check_\w+\(|_administration\(")


def _function_of(mutant: str) -> str:
    last = re.sub(r"__mutmut_\d+$", "", mutant.split(".")[-1])
    return last.split("ǁ")[-1] if "ǁ" in last else last[2:]


def classify(mutant: str, diff: str) -> str:
    """'display' (a text-formatting function), 'message' (only the wording or location of a message changes) or
    'result' (anything else: it may change a number)."""
    if _DISPLAY.match(_function_of(mutant)):
        return "display"
    old = [ln[1:] for ln in diff.splitlines() if ln.startswith("-")]
    new = [ln[1:] for ln in diff.splitlines() if ln.startswith("+")]
    if len(old) != len(new) or not old:
        return "result"
    for a, b in zip(old, new):
        if a == b:
            continue
        ta, tb = _TOKEN.findall(a), _TOKEN.findall(b)
        k = 0
        while k < min(len(ta), len(tb)) and ta[k] == tb[k]:
            k += 1
        j = 0
        while j < min(len(ta), len(tb)) - k and ta[-1 - j] == tb[-1 - j]:
            j += 1
        removed, added = "".join(ta[k:len(ta) - j]), "".join(tb[k:len(tb) - j])
        strings_only = _STRING.sub('""', a) == _STRING.sub('""', b)
        if strings_only and _MESSAGE_CONTEXT.search(a):
            continue
        if added == "None" and (_MESSAGE_NAMES.match(removed) or (_STRING.fullmatch(removed)
                                                                 and _MESSAGE_CONTEXT.search(a))):
            continue
        if re.match(r"\s*(where|hint|fix|msg|message|in_unit|rate_unit)\s*=", a):  # a message's pieces
            continue
        return "result"
    return "message"


def _short_diff(diff: str) -> str:
    lines = [ln for ln in diff.splitlines() if ln.startswith(("+", "-")) and not ln.startswith(("+++", "---"))]
    return "\n".join(lines[:6])


# --------------------------------------------------------------------------------------------- template mutator
_C_SWAPS = [(" + ", " - "), (" - ", " + "), (" * ", " / "), (" / ", " * "), (" < ", " <= "), (" <= ", " < "),
            (" > ", " >= "), (" >= ", " > "), (" == ", " != "), (" != ", " == "), (" && ", " || "), (" || ", " && "),
            (" and ", " or "), (" or ", " and "), ("+= ", "-= "), ("-= ", "+= ")]
_NUMBER = re.compile(r"(?<![\w.])(\d+\.\d*(?:[eE][-+]?\d+)?|\d+[eE][-+]?\d+)(?![\w.])")


def template_mutants(spec: Spec) -> list[dict]:
    """Every operator swap and numeric change on the mutated lines (comments and blank lines skipped)."""
    out = []
    for rel in spec.files:
        lines = (ROOT / rel).read_text().splitlines(keepends=True)
        first, last = spec.ranges.get(rel) or _string_or_constant_lines(rel, lines)
        for i in range(first, last + 1):
            line = lines[i - 1]
            code = line.split("//")[0].split("#")[0] if not rel.endswith("_tableaus.py") else line.split("#")[0]
            if not code.strip() or code.strip().startswith(('"""', "r'''", "'''", "/*", "*")):
                continue
            for old, new in _C_SWAPS:
                start = 0
                while (k := code.find(old, start)) >= 0:
                    out.append({"file": rel, "line": i, "old": line, "new": line[:k] + new + line[k + len(old):]})
                    start = k + 1
            for m in _NUMBER.finditer(code):
                text = m.group(1)
                for changed in _number_variants(text):
                    out.append({"file": rel, "line": i, "old": line,
                                "new": line[:m.start(1)] + changed + line[m.end(1):]})
    for k, mutant in enumerate(out):
        mutant["id"] = k
    return out


def _number_variants(text: str) -> list[str]:
    """A realistic typo in a coefficient: its first significant digit changed by one."""
    digits = [j for j, c in enumerate(text) if c.isdigit() and c != "0"]
    if not digits or float(text) == 0.0:
        return []
    j = digits[0]
    d = int(text[j])
    return [text[:j] + str(d + 1 if d < 9 else d - 1) + text[j + 1:]]


def _string_or_constant_lines(rel: str, lines: list[str]) -> tuple[int, int]:
    if rel.endswith("_tableaus.py"):
        first = next(i for i, ln in enumerate(lines, 1) if ln.startswith("TSIT5_C"))
        last = next(i for i, ln in enumerate(lines, 1) if ln.startswith("RODAS_M"))
        return first, last
    opens = [i for i, ln in enumerate(lines, 1) if re.match(r"^[A-Z_]+ = r('''|\"\"\")", ln)]
    first = opens[0]
    quote = "'''" if "'''" in lines[first - 1] else '"""'
    last = next(i for i in range(first + 1, len(lines) + 1) if lines[i - 1].startswith(quote))
    return first + 1, last - 1


def run_templates(name: str, spec: Spec, workdir: Path, time_limit: float, sample: int | None, seed: int) -> dict:
    copy = workdir / name
    if not (copy / "pyproject.toml").exists():
        copy.mkdir(parents=True, exist_ok=True)
        _copy_tree(copy)
    state_file = copy / "template-results.json"
    done = json.loads(state_file.read_text()) if state_file.exists() else {}
    mutants = template_mutants(spec)
    chosen = mutants if not sample else random.Random(seed).sample(mutants, min(sample, len(mutants)))
    env = dict(os.environ, PKPD_CACHE_DIR=str(workdir / "cache"), MPLBACKEND="Agg")
    deadline = time.perf_counter() + time_limit
    per_mutant_limit = 900
    for mutant in chosen:
        key = f"{mutant['file']}:{mutant['line']}:{mutant['new'].strip()}"
        if key in done or time.perf_counter() > deadline:
            continue
        path = copy / mutant["file"]
        original = path.read_text()
        lines = original.splitlines(keepends=True)
        assert lines[mutant["line"] - 1] == mutant["old"]
        lines[mutant["line"] - 1] = mutant["new"]
        path.write_text("".join(lines))
        try:
            proc = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-o",
                                   "addopts=", *spec.tests], cwd=copy, env=env, capture_output=True, text=True,
                                  timeout=per_mutant_limit)
            status = "killed" if proc.returncode != 0 else "survived"
        except subprocess.TimeoutExpired:
            status = "timeout"
        finally:
            path.write_text(original)
        done[key] = {"status": status, "file": mutant["file"], "line": mutant["line"],
                     "old": mutant["old"].strip(), "new": mutant["new"].strip()}
        state_file.write_text(json.dumps(done, indent=1))
    tested = [done[k] for k in done]
    detected = sum(r["status"] != "survived" for r in tested)
    lo, hi = _wilson(detected, len(tested))
    return {"module": name, "tool": "benchmarks/mutation.py template mutator", "files": list(spec.files),
            "tests": list(spec.tests), "total": len(mutants), "sample": sample, "seed": seed,
            "finished": all(f"{m['file']}:{m['line']}:{m['new'].strip()}" in done for m in chosen),
            "tested": len(tested), "detected": detected, "survived": len(tested) - detected, "no_tests": 0,
            "score": detected / len(tested) if tested else math.nan, "score_ci95": [lo, hi],
            "survivors": [{"mutant": f"{r['file']}:{r['line']}", "status": "survived",
                           "diff": f"- {r['old']}\n+ {r['new']}"} for r in tested if r["status"] == "survived"]}


def _wilson(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    if n == 0:
        return math.nan, math.nan
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return max(0.0, c - h), min(1.0, c + h)


# --------------------------------------------------------------------------------------------- report
def _all_tested(r: dict) -> bool:
    """Whether a result file covers every mutant of its module (finished, or mutmut tested them all)."""
    return bool(r["finished"] or (r.get("tool") == "mutmut" and r["tested"] == r["total"]))


def report() -> str:
    rows = ["| module | mutants | tested | detected | not detected (no test reaches it) | of which text only | "
            "score, all mutants | score, result mutants | complete |",
            "|---|--:|--:|--:|--:|--:|--:|--:|---|"]
    for name in MODULES:
        f = RESULTS / f"{name}.json"
        if not f.exists():
            rows.append(f"| {name} | | | | | | not run yet | | |")
            continue
        r = json.loads(f.read_text())
        if r.get("tool") == "mutmut":  # classify with the current rules (older result files have no kinds)
            for sv in r["survivors"]:
                sv["kind"] = classify(sv["mutant"], sv["diff"])
            r["text_only_survivors"] = sum(sv["kind"] != "result" for sv in r["survivors"])
            tested = r["tested"] - r["text_only_survivors"]
            r["score_results"] = r["detected"] / tested if tested else math.nan
        score = f"{100 * r['score']:.1f} %"
        if r.get("score_ci95"):
            score += f" (95 % CI {100 * r['score_ci95'][0]:.0f}-{100 * r['score_ci95'][1]:.0f})"
        results = r.get("score_results", r["score"])
        complete = _all_tested(r)
        partial = f"no (only `{' '.join(r['only'])}`)" if r.get("only") else "no (time limit)"
        if r.get("sample"):  # a seeded random sample: say so, whether or not all of it was tested
            complete = False
            partial = f"sample of {r['sample']} (seed {r['seed']}){'' if r['finished'] else ', not all tested'}"
        rows.append(f"| {name} | {r['total']} | {r['tested']} | {r['detected']} | "
                    f"{r['survived'] + r['no_tests']} ({r['no_tests']}) | {r.get('text_only_survivors', 0)} | "
                    f"{score} | {100 * results:.1f} % | {'yes' if complete else partial} |")
    return "\n".join(rows)


_SEED_FILE = re.compile(r"^(?P<module>.+)-seed(?P<seed>\d+)\.json$")


def _module_basis(name: str, pooled: bool = False) -> dict:
    """The best independent figure of a module's score: its latest independent sample (a ``<module>-seed<S>.json``
    saved before any test was written from it; with ``pooled``, all of them added up, the older ones measured with
    weaker tests), else the module's own result file (a complete audit is exact; a partial one tested the fastest
    mutants first and is flagged)."""
    seeds = sorted((int(m["seed"]), f) for f in RESULTS.glob(f"{name}-seed*.json")
                   if (m := _SEED_FILE.match(f.name)) and m["module"] == name)
    own = RESULTS / f"{name}.json"
    if seeds:
        chosen = seeds if pooled else seeds[-1:]
        runs = [json.loads(f.read_text()) for _, f in chosen]
        used = [seed for seed, _ in chosen]
        what = (f"{len(runs)} independent samples pooled (seeds {', '.join(map(str, used))})" if pooled
                else f"independent sample, seed {used[0]}")
        equivalent = _equivalent_by_hand()
        return {"total": runs[-1]["total"], "detected": sum(r["detected"] for r in runs),
                "tested": sum(r["tested"] for r in runs), "exact": False,
                "equivalent": sum(equivalent.get(f.name, 0) for _, f in chosen),
                "basis": what + ", before its own tests"
                + ("" if all(r.get("finished", True) for r in runs) else " (not all tested)")}
    if not own.exists():
        return {}
    r = json.loads(own.read_text())
    complete = _all_tested(r) and not r.get("sample")
    if complete:
        return {"total": r["total"], "detected": r["detected"], "tested": r["tested"], "exact": True,
                "basis": "complete audit"}
    how = f"sample of {r['sample']} (seed {r['seed']}) after its own tests" if r.get("sample") else \
        "partial audit (fastest mutants first: biased upwards)"
    return {"total": r["total"], "detected": r["detected"], "tested": r["tested"], "exact": False, "basis": how}


def _equivalent_by_hand() -> dict:
    """{sample file name: survivors judged equivalent by hand} (``equivalent_by_hand.json``; none if absent)."""
    path = RESULTS / "equivalent_by_hand.json"
    return json.loads(path.read_text())["equivalent"] if path.exists() else {}


def _stratified(bases: dict, without_equivalent: bool = False) -> tuple[float, float, float]:
    """(estimate, lower, upper) of the score of all modules: each weighted by its share of the mutants. With
    ``without_equivalent``, a sample's survivors judged equivalent by hand leave its denominator (the usual mutation
    score, killed / non-equivalent mutants)."""
    total = sum(b["total"] for b in bases.values())
    est = var = 0.0
    for b in bases.values():
        n = b["tested"] - (b.get("equivalent", 0) if without_equivalent else 0)
        w, p = b["total"] / total, b["detected"] / n
        est += w * p
        if not b["exact"]:
            var += w * w * p * (1 - p) / n
    se = math.sqrt(var)
    return est, est - 1.96 * se, est + 1.96 * se


def estimate() -> str:
    r"""The score of all audited modules together, as one figure (issue 20's ">= 90 % of mutants killed").

    Stratified by module: :math:`\hat p = \sum_m w_m \hat p_m` with :math:`w_m` the module's share of all mutants
    and :math:`\hat p_m` its best independent figure (:func:`_module_basis`: the latest independent sample);
    standard error :math:`\sqrt{\sum_m w_m^2 \hat p_m(1-\hat p_m)/n_m}` over the sampled modules (a complete audit
    is exact). Each sample is scored before the tests written from its own survivors, so the figure is a conservative
    one; the next row pools every independent sample of a module instead (older samples measured weaker tests: lower
    still, and with a narrower interval). The last row is the usual mutation score of the first row's samples:
    killed / non-equivalent, the survivors judged equivalent by hand (``equivalent_by_hand.json``, the evidence in
    docs/testing.md) left out of their sample's denominator.
    """
    rows = ["| module | mutants | weight | basis | detected / tested | score |", "|---|--:|--:|---|--:|--:|"]
    bases = {name: b for name in MODULES if (b := _module_basis(name))}
    total = sum(b["total"] for b in bases.values())
    for name, b in bases.items():
        rows.append(f"| {name} | {b['total']} | {100 * b['total'] / total:.1f} % | {b['basis']} | "
                    f"{b['detected']} / {b['tested']} | {100 * b['detected'] / b['tested']:.1f} % |")
    est, lo, hi = _stratified(bases)
    rows.append(f"| **all** | {total} | 100 % | stratified | | **{100 * est:.1f} %** (95 % CI {100 * lo:.1f}-"
                f"{100 * hi:.1f}) |")
    pooled = {name: b for name in MODULES if (b := _module_basis(name, pooled=True))}
    est, lo, hi = _stratified(pooled)
    rows.append(f"| all, every independent sample pooled per module | {total} | 100 % | stratified | | "
                f"{100 * est:.1f} % (95 % CI {100 * lo:.1f}-{100 * hi:.1f}) |")
    n_eq = sum(b.get("equivalent", 0) for b in bases.values())
    est, lo, hi = _stratified(bases, without_equivalent=True)
    rows.append(f"| all, as the first row but without the {n_eq} survivors of those samples judged equivalent by "
                f"hand | {total} | 100 % | stratified | | {100 * est:.1f} % (95 % CI {100 * lo:.1f}-{100 * hi:.1f}) |")
    return "\n".join(rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("modules", nargs="*", help=f"modules to audit ({', '.join(MODULES)})")
    ap.add_argument("--time-limit", type=float, default=3600.0, help="seconds per module (default 3600)")
    ap.add_argument("--jobs", type=int, default=2, help="mutants tested in parallel (mutmut modules)")
    ap.add_argument("--sample", type=int, default=None,
                    help="test a seeded random sample of N mutants, scored with a Wilson 95 %% interval")
    ap.add_argument("--seed", type=int, default=20, help="seed of the sample")
    ap.add_argument("--workdir", type=Path, default=ROOT / ".mutation", help="working copies (resumable)")
    ap.add_argument("--list", action="store_true", help="list the modules, their files and tests")
    ap.add_argument("--report", action="store_true", help="print the score table of the results so far")
    ap.add_argument("--estimate", action="store_true",
                    help="print the stratified estimate of the score of all modules together (independent samples)")
    ap.add_argument("--retest", action="store_true",
                    help="mutmut modules: take the current tests and test the surviving mutants again")
    ap.add_argument("--collect", action="store_true",
                    help="mutmut modules: write the results of the working copy as they stand (a run was stopped)")
    ap.add_argument("--survivors-only", action="store_true",
                    help="with --retest: test only the surviving mutants again, not the mutants not yet tested")
    ap.add_argument("--only", nargs="+", default=(), metavar="PATTERN",
                    help="mutmut modules: test only the mutants whose names match these fnmatch patterns")
    args = ap.parse_args(argv)
    if args.list:
        for name, spec in MODULES.items():
            print(f"{name}: {', '.join(spec.files)} <- {', '.join(spec.tests)}")
        return 0
    if args.estimate:
        print(estimate())
        return 0
    if args.report or not args.modules:
        print(report())
        return 0
    unknown = [m for m in args.modules if m not in MODULES]
    if unknown:
        ap.error(f"unknown module(s) {unknown}; choose from {', '.join(MODULES)}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    args.workdir.mkdir(parents=True, exist_ok=True)
    for name in args.modules:
        spec = MODULES[name]
        if spec.kind == "template":
            result = run_templates(name, spec, args.workdir, args.time_limit, args.sample, args.seed)
        elif args.collect:
            result = collect_mutmut(name, spec, args.workdir, args.sample, args.seed)
        else:
            result = run_mutmut(name, spec, args.workdir, args.time_limit, args.jobs, args.retest, tuple(args.only),
                                args.survivors_only, sample=args.sample, seed=args.seed)
        (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=1))
        print(json.dumps({k: v for k, v in result.items() if k != "survivors"}), flush=True)
    print(report())
    return 0


if __name__ == "__main__":
    sys.exit(main())
