"""The stratified score of the mutation audit (benchmarks/mutation.py --estimate), against a hand computation."""

import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def mutation(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("mutation_tool", ROOT / "benchmarks" / "mutation.py")
    mod = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, mod)   # its dataclasses look their module up there
    spec.loader.exec_module(mod)
    monkeypatch.setattr(mod, "RESULTS", tmp_path)
    monkeypatch.setattr(mod, "MODULES", {"a": mod.MODULES["units"], "b": mod.MODULES["nlme"]})
    return mod


def _write(path: Path, total, tested, detected, finished=True, sample=None, seed=20):
    path.write_text(json.dumps({"tool": "mutmut", "total": total, "tested": tested, "detected": detected,
                                "finished": finished, "sample": sample, "seed": seed}))


def test_the_stratified_estimate_weights_each_module_by_its_mutants(mutation, tmp_path):
    # a: complete audit, 90 of 100 (exact); b: its own file is a written-from sample (ignored), and two independent
    # samples, of which the latest (seed 25: 40 of 50) is the module's figure, not seed 7 (10 of 50); a retest is
    # not an independent sample, whatever its seed
    _write(tmp_path / "a.json", 100, 100, 90)
    _write(tmp_path / "b.json", 300, 60, 60, sample=60)
    _write(tmp_path / "b-seed7.json", 300, 50, 10, sample=50, seed=7)
    _write(tmp_path / "b-seed25.json", 300, 50, 40, sample=50, seed=25)
    _write(tmp_path / "b-seed26-retest.json", 300, 50, 50, sample=50, seed=26)
    est = 0.25 * 0.9 + 0.75 * 0.8
    se = math.sqrt(0.75 ** 2 * 0.8 * 0.2 / 50)           # the complete audit adds no sampling error
    text = mutation.estimate()
    assert "| a | 100 | 25.0 % | complete audit | 90 / 100 | 90.0 % |" in text
    assert "| b | 300 | 75.0 % | independent sample, seed 25, before its own tests | 40 / 50 | 80.0 % |" in text
    latest, pooled, without_equivalent = text.splitlines()[-3:]
    assert latest == (f"| **all** | 400 | 100 % | stratified | | **{100 * est:.1f} %** "
                      f"(95 % CI {100 * (est - 1.96 * se):.1f}-{100 * (est + 1.96 * se):.1f}) |")
    # pooled: b's two independent samples together, 50 of 100 (the retest still left out)
    est = 0.25 * 0.9 + 0.75 * 0.5
    se = math.sqrt(0.75 ** 2 * 0.5 * 0.5 / 100)
    assert pooled == (f"| all, every independent sample pooled per module | 400 | 100 % | stratified | | "
                      f"{100 * est:.1f} % (95 % CI {100 * (est - 1.96 * se):.1f}-{100 * (est + 1.96 * se):.1f}) |")


def test_a_partial_audit_is_flagged_as_biased(mutation, tmp_path):
    _write(tmp_path / "a.json", 100, 40, 39, finished=False)
    _write(tmp_path / "b.json", 300, 300, 270)
    text = mutation.estimate()
    assert "| a | 100 | 25.0 % | partial audit (fastest mutants first: biased upwards) | 39 / 40 | 97.5 % |" in text
    assert "| b | 300 | 75.0 % | complete audit | 270 / 300 | 90.0 % |" in text


def test_survivors_judged_equivalent_by_hand_leave_their_samples_denominator_in_the_last_row(mutation, tmp_path):
    # a: complete audit, 90 of 100 (exact, no equivalents taken out); b: latest sample 40 of 50 with 5 of its 10
    # survivors judged equivalent -> 40 of 45; an older sample's equivalents do not count (not b's latest)
    _write(tmp_path / "a.json", 100, 100, 90)
    _write(tmp_path / "b-seed7.json", 300, 50, 10, sample=50, seed=7)
    _write(tmp_path / "b-seed25.json", 300, 50, 40, sample=50, seed=25)
    (tmp_path / "equivalent_by_hand.json").write_text(json.dumps(
        {"equivalent": {"b-seed25.json": 5, "b-seed7.json": 30}}))
    text = mutation.estimate()
    latest, pooled, without_equivalent = text.splitlines()[-3:]
    est = 0.25 * 0.9 + 0.75 * 0.8
    se = math.sqrt(0.75 ** 2 * 0.8 * 0.2 / 50)
    assert latest.endswith(f"**{100 * est:.1f} %** (95 % CI {100 * (est - 1.96 * se):.1f}-"
                           f"{100 * (est + 1.96 * se):.1f}) |")
    p = 40 / 45
    est = 0.25 * 0.9 + 0.75 * p
    se = math.sqrt(0.75 ** 2 * p * (1 - p) / 45)
    assert without_equivalent == (
        "| all, as the first row but without the 5 survivors of those samples judged equivalent by hand | 400 | "
        f"100 % | stratified | | {100 * est:.1f} % (95 % CI {100 * (est - 1.96 * se):.1f}-"
        f"{100 * (est + 1.96 * se):.1f}) |")
    # without the file, nothing is taken out: the last row is the first row's figure
    (tmp_path / "equivalent_by_hand.json").unlink()
    first, _, last = mutation.estimate().splitlines()[-3:]
    assert last.split("| | ")[1] == first.split("| | ")[1].replace("**", "")
