"""NCA of IV infusions against the one-compartment closed form (issue 20, rule 8).

For a one-compartment model the mean residence time is V/CL whatever the input, and Vss = V; the AUMC/AUC of an
infusion of duration T is V/CL + T/2, so the MRT must subtract T/2. Profile: CL 2 L/h, V 20 L, 100 mg over 2 h,
sampled every 0.05 h during the infusion and hourly to 24 h (the extrapolation to infinity is 10 % of the AUC
and 31 % of the AUMC, so it is tested too).
"""

import numpy as np
import pandas as pd
import pytest

from pkpd.metrics import nca, nca_profile

CL, V, DOSE, T = 2.0, 20.0, 100.0, 2.0
K = CL / V


def infusion_profile():
    t = np.concatenate([np.arange(0.0, T, 0.05), np.arange(T, 25.0, 1.0)])
    rate = DOSE / T
    c = rate / CL * (1 - np.exp(-K * np.minimum(t, T))) * np.exp(-K * np.clip(t - T, 0, None))
    return t, c


def test_nca_profile_of_an_infusion_gives_the_closed_form_mrt_and_vss():
    t, c = infusion_profile()
    res = nca_profile(t, c, DOSE, route="iv-infusion", duration=T)
    assert res.auc_inf == pytest.approx(DOSE / CL, rel=1e-3)
    assert res.cl == pytest.approx(CL, rel=1e-3)
    assert res.mrt == pytest.approx(V / CL, rel=1e-3)
    assert res.vss == pytest.approx(V, rel=1e-3)
    assert res.vz == pytest.approx(V, rel=1e-3)
    assert res.lambda_z == pytest.approx(K, rel=1e-9)


@pytest.mark.parametrize("timing", ["RATE", "DUR"])
def test_nca_of_a_dataset_reads_the_infusion_duration_from_rate_or_dur(timing):
    # a dose record with RATE (duration = AMT/RATE) or DUR is an infusion, whatever route says
    t, c = infusion_profile()
    n = t.size
    data = pd.DataFrame({"ID": 1, "TIME": np.r_[0.0, t], "EVID": [1] + [0] * n, "AMT": [DOSE] + [0.0] * n,
                         "DV": np.r_[np.nan, c], timing: [DOSE / T if timing == "RATE" else T] + [0.0] * n})
    row = nca(data, route="iv-bolus", dose_unit="mg", conc_unit="mg/L").iloc[0]
    assert row["route"] == "iv-infusion"
    assert row["mrt"] == pytest.approx(V / CL, rel=1e-3)
    assert row["vss"] == pytest.approx(V, rel=1e-3)
