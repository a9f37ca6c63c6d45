"""The population FIM of pkpd.design against PopED's published numbers (issue 18).

Sources (PopED's own printed output, quoted there):

* Warfarin, one-compartment oral (Nyberg et al. 2015 Br J Clin Pharmacol 79:6; PopED example
  ``ex.2.a.warfarin.evaluate.R``): CL 0.15, V 8, KA 1, F 1 (fixed); omega2 CL 0.07, V 0.02, KA 0.6; proportional
  error variance 0.01; 32 subjects, 70 mg, samples at 0.5, 1, 2, 6, 24, 36, 72, 120 h. PopED's ``evaluate_design``
  RSE [%] with the reduced FO FIM, as printed in babelmixr2's ``inst/poped/ex.2.a.warfarin.evaluate.babelmixr2.R``
  ("Original: $rse"): CL 4.738266, V 2.756206, KA 13.925829, d_CL 25.627205, d_V 30.344316, d_KA 25.777327,
  SIGMA[1,1] 11.170784. With the full FIM, PopED's test ``tests/testthat/test_evaluate.fim.R`` expects (to 0.1):
  3.6, 2.6, 4.8, 26.3, 30.9, 26.5, 12.4.
* PopED's introduction example (multiple oral doses every 24 h to 240 h, two groups of 20 subjects given 20 and
  40 mg, samples at 1, 2, 8, 240, 245 h; V 72.8, KA 0.25, CL 3.75, F 0.9 fixed; omega2 V 0.09, KA 0.09, CL 0.0625;
  proportional error variance 0.04, additive variance 5e-6 fixed), as printed by ``evaluate_design`` in
  babelmixr2's ``tests/testthat/test-poped.R`` ("poped intro"): ofv (ln det FIM) 39.3090057657525,
  RSE V 8.21533739750444, KA 10.0909508715706, CL 4.40030409644082, d_KA 60.6550666795227, d_CL 27.562540815783,
  d_V 39.8447671522606, sig_prop 13.8653576106817, and the FIM's lower triangles (below).

PopED parameterises residual errors by their variances; pkpd by standard deviations (as it estimates them): the
RSE of a variance is exactly twice that of its SD, and FIM entries convert with d(sigma^2)/d(sigma) = 2 sigma.
"""

import math

import numpy as np
import pytest

import pkpd
from pkpd.design import Design, Group, evaluate_design

WARFARIN_REDUCED = {"CL": 4.738266, "V": 2.756206, "ka": 13.925829, "omega2_CL": 25.627205, "omega2_V": 30.344316,
                    "omega2_ka": 25.777327, "sigma2": 11.170784}
WARFARIN_FULL = {"CL": 3.6, "V": 2.6, "ka": 4.8, "omega2_CL": 26.3, "omega2_V": 30.9, "omega2_ka": 26.5,
                 "sigma2": 12.4}


def _warfarin(fim: str):
    m = pkpd.load_model("pk_1cmt_oral").with_parameters(CL=0.15, V=8.0, ka=1.0)
    g = Group(pkpd.Regimen.single(pkpd.Dose(70, "mg"), target="oral"), [0.5, 1, 2, 6, 24, 36, 72, 120], 32)
    ev = evaluate_design(m, Design([g]), iiv={"CL": 0.07, "V": 0.02, "ka": 0.6}, estimate=["CL", "V", "ka"],
                         error=pkpd.Proportional(cv=0.1), fim=fim)
    rse = dict(ev.rse_percent)
    rse["sigma2"] = 2 * rse.pop("cv")
    return rse


def test_warfarin_reduced_fim_rse_match_poped_within_1_percent():
    rse = _warfarin("reduced")
    for name, value in WARFARIN_REDUCED.items():
        assert rse[name] == pytest.approx(value, rel=0.01), name
        assert rse[name] == pytest.approx(value, rel=1e-5), name    # in fact to PopED's printed digits


def test_warfarin_full_fim_rse_match_poped_to_its_rounding():
    rse = _warfarin("full")
    for name, value in WARFARIN_FULL.items():
        assert abs(rse[name] - value) <= 0.05 + 1e-9, name


def test_poped_intro_multiple_dose_two_groups_fim_and_rse():
    m = pkpd.load_model("pk_1cmt_oral").with_parameters(CL=3.75, V=72.8, ka=0.25, F=0.9)
    groups = [Group(pkpd.Regimen.every(24, "h", count=11, dose=pkpd.Dose(d, "mg"), target="oral"),
                    [1, 2, 8, 240, 245], 20) for d in (20, 40)]
    cv = 0.2
    err = pkpd.Combined(sd=math.sqrt(5e-6), cv=cv, convention="variance", fixed=("sd",))
    ev = evaluate_design(m, Design(groups), iiv={"V": 0.09, "ka": 0.09, "CL": 0.0625}, estimate=["V", "ka", "CL"],
                         error=err)
    # ln det in PopED's parameterisation: the variance's FIM row and column are divided by 2 sigma
    assert ev.log_det - 2 * math.log(2 * cv) == pytest.approx(39.3090057657525, rel=1e-6)
    expected = {"V": 8.21533739750444, "ka": 10.0909508715706, "CL": 4.40030409644082,
                "omega2_ka": 60.6550666795227, "omega2_CL": 27.562540815783, "omega2_V": 39.8447671522606}
    for name, value in expected.items():
        assert ev.rse_percent[name] == pytest.approx(value, rel=1e-4), name
    assert 2 * ev.rse_percent["cv"] == pytest.approx(13.8653576106817, rel=1e-4)
    # the FIM itself (babelmixr2's lower triangles: tV, tKA, tCL; then d_eta.ka, d_eta.cl, d_eta.v, sig_prop.var)
    F = ev.fim
    fixed = [[0.0533669124790745], [-8.68396393002656, 2999.85286248872],
             [-0.058634133188746, -14.4306063906335, 37.1524325291608]]
    for i, row in enumerate(fixed):
        for j, v in enumerate(row):
            assert F[i, j] == pytest.approx(v, rel=1e-4), (i, j)
    order = [4, 5, 3, 6]    # ours: omega2_V (3), omega2_ka (4), omega2_CL (5), cv (6)
    scale = [1.0, 1.0, 1.0, 1 / (2 * cv)]
    random = [[439.413101383167], [2.2878439908508, 3412.00514559432],
              [312.24028527664, 3.20285380277308, 999.953201635217],
              [638.582017761863, 1182.32547832173, 575.347350448117, 33864.3205676804]]
    for i, row in enumerate(random):
        for j, v in enumerate(row):
            ours = F[order[i], order[j]] * scale[i] * scale[j]
            assert ours == pytest.approx(v, rel=1e-4), (i, j)
    assert np.all(F[:3, 3:] == 0)   # the reduced FIM is block-diagonal
