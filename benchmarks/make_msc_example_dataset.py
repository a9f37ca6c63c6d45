"""Write a SIMULATED example NONMEM dataset for msc_salvadori: MSC doses in cells/kg; cells, PGE2, IL-10 observed.

Four subjects (weights 58-92 kg) get one or two IV doses of 1e6 or 2e6 cells/kg (AMT in cell/kg, multiplied by
each record's WT). Observations of viable cells (qPCR-like), PGE2 and IL-10 (DVID = output name) at 1, 4, 8, 24,
48, 72, 96 and 168 h after the first dose are the model's predictions with 15 % log-normal noise (seeded), so the
file is synthetic: its first row is a comment row (C column) saying so, and read_nonmem lists it among the ignored
rows. The notebooks use the copy in notebooks/data/msc_example.csv.

Usage: python benchmarks/make_msc_example_dataset.py OUT.csv
Read it back with ``pkpd.nonmem.read_nonmem(OUT.csv, model, dose_unit="cell/kg")``.
"""

import sys

import numpy as np
import pandas as pd

import pkpd
from pkpd.nonmem import read_nonmem, simulate_nonmem

SEED = 20261125
CV = 0.15
TIMES = (1.0, 4.0, 8.0, 24.0, 48.0, 72.0, 96.0, 168.0)
SUBJECTS = (  # ID, WT [kg], dose [cell/kg], dose times [h]
    (1, 58.0, 1e6, (0.0,)),
    (2, 71.5, 2e6, (0.0,)),
    (3, 80.0, 1e6, (0.0, 72.0)),
    (4, 92.0, 2e6, (0.0, 72.0)),
)
OUTPUTS = ("cells", "PGE2", "IL10")


def records() -> pd.DataFrame:
    rows = []
    for sid, wt, dose, dose_times in SUBJECTS:
        events = [(t, 0, dict(EVID=1, AMT=dose, CMT="iv", MDV=1)) for t in dose_times]
        events += [(t, 1 + k, dict(EVID=0, AMT=0, CMT=".", MDV=0, DVID=name))
                   for t in TIMES for k, name in enumerate(OUTPUTS)]
        for t, _, items in sorted(events, key=lambda e: e[:2]):
            rows.append(dict(C=".", ID=sid, TIME=t, DV=".", DVID=".", WT=wt) | items)
    return pd.DataFrame(rows, dtype=object)


def main(path: str) -> None:
    model = pkpd.load_model("msc_salvadori")
    table = records()
    truth = simulate_nonmem(model, read_nonmem(table.assign(MDV=1), model, dose_unit="cell/kg"))
    rng = np.random.default_rng(SEED)
    dv = []
    for (_, rec), (_, sim) in zip(table.iterrows(), truth.iterrows()):
        if rec["EVID"] == 0:
            value = sim[rec["DVID"]] * np.exp(CV * rng.standard_normal())
            dv.append(f"{value:.5g}")
        else:
            dv.append(".")
    table["DV"] = dv
    note = pd.DataFrame([dict(C="C", ID="SIMULATED data from pkpd model msc_salvadori (not measurements)")],
                        dtype=object)
    out = pd.concat([note, table], ignore_index=True).fillna(".")
    out.to_csv(path, index=False)
    check = read_nonmem(path, model, dose_unit="cell/kg")
    print(check.summary())


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
