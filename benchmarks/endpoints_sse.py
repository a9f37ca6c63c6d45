"""Simulation-re-estimation of clinical endpoints (issue 17): bias and CI coverage of the exact likelihood.

Model ``benchmarks/models/endpoints_sse.toml``: a Weibull time to event whose hazard the drug concentration (a model
state) lowers, a binary response logistic in the AUC (an integrator state) and a proportional-odds graded score in
the AUC; the nine endpoint parameters are estimated jointly by :func:`pkpd.fit` (exact likelihood, no
linearisation).

Design of each simulated study (replicate ``i`` draws from ``numpy.random.SeedSequence(seed).spawn(n)[i]``):
``--subjects`` subjects (default 200) in four dose groups (0, 10, 30, 100 mg IV bolus), followed up to 168 h for the
event (censored there), response and grade assessed at 48 h; the study is drawn by :func:`pkpd.simulate` (inverse
cumulative hazard) and written with ``Simulation.to_dataframe(layout="nonmem")``, the dataset the fit reads.

Prints one JSON line per parameter (truth, mean estimate, relative bias [%] with its Monte-Carlo SE, empirical SE,
mean model SE, 95 % CI coverage with its Monte-Carlo SE) and a summary line (replicates, failures, seconds). With
``--out PREFIX`` it also writes ``PREFIX_replicates.jsonl`` (one line per replicate as it finishes, so an interrupted
run keeps what it did), ``PREFIX.jsonl`` (the printed lines) and the figure ``PREFIX.png`` (relative estimation
error per parameter, and the coverage of the 95 % intervals with its Monte-Carlo error). ``--replot PREFIX`` redraws
the summary and the figure from ``PREFIX_replicates.jsonl``.

Usage: python benchmarks/endpoints_sse.py [--n 100] [--subjects 200] [--seed 17] [--workers N] [--out PREFIX]
       python benchmarks/endpoints_sse.py --replot PREFIX
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np

MODEL = Path(__file__).resolve().parent / "models" / "endpoints_sse.toml"
ESTIMATE = ("scale", "shape", "beta", "b0", "b1", "a1", "a2", "a3", "g")
DOSES = (0.0, 10.0, 30.0, 100.0)
FOLLOW_UP = 168.0
VISIT = 48.0


def study(model, n_subjects: int, seed):
    """One simulated study in the NONMEM layout (pandas DataFrame)."""
    import pkpd

    doses = np.repeat(DOSES, -(-n_subjects // len(DOSES)))[:n_subjects]
    regimens = [pkpd.Regimen.single(pkpd.Dose(d, "mg")) if d > 0 else pkpd.Regimen.none() for d in doses]
    sim = pkpd.simulate(model, regimens, [0.0, VISIT, FOLLOW_UP], seed=seed, follow_up=FOLLOW_UP,
                        observe={"response": [VISIT], "grade": [VISIT]}, states=False)
    return sim.to_dataframe(layout="nonmem")


def replicate(job, seed):
    """Simulate and refit one study: (True, (estimates, ci_low, ci_high, se)) or (False, reason)."""
    import pkpd
    from pkpd.errors import PkpdError

    n_subjects, estimate = job
    model = pkpd.load_model(MODEL)
    data = study(model, n_subjects, seed)
    try:
        res = pkpd.fit(model, data, estimate=list(estimate))
    except (PkpdError, np.linalg.LinAlgError, ValueError, FloatingPointError) as err:
        return False, f"{type(err).__name__}: {err}"
    if not res.converged:
        return False, f"did not converge: {res.message}"
    get = lambda d: np.array([d[p] for p in estimate])   # noqa: E731
    return True, (get(res.estimates), get(res.ci_low), get(res.ci_high), get(res.se))


def summarise(outcomes, truth: dict) -> list[dict]:
    """Per parameter (``truth`` order): truth, mean, relative bias [%] and its Monte-Carlo SE, empirical and mean
    model SE, coverage of the 95 % CIs and its Monte-Carlo SE, over the replicates that converged."""
    ok = [x for good, x in outcomes if good]
    est, lo, hi, se = (np.array([o[k] for o in ok]) for k in range(4))
    rows = []
    for j, p in enumerate(truth):
        t = truth[p]
        rel = 100 * (est[:, j] / t - 1)
        covered = (lo[:, j] <= t) & (t <= hi[:, j])
        cov = float(np.mean(covered))
        n = est.shape[0]
        rows.append({"parameter": p, "truth": t, "mean": float(est[:, j].mean()),
                     "relative_bias_percent": float(rel.mean()),
                     "relative_bias_mcse_percent": float(rel.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan,
                     "empirical_se": float(est[:, j].std(ddof=1)) if n > 1 else math.nan,
                     "mean_model_se": float(np.nanmean(se[:, j])),
                     "coverage_95": cov, "coverage_mcse": math.sqrt(cov * (1 - cov) / n), "n": n})
    return rows


def run(n: int, n_subjects: int, seed, workers=None, progress=False, estimate=ESTIMATE, record=None):
    """``n`` replicates: (outcomes in replicate order, truth of the estimated parameters). ``record`` (a text file)
    receives one JSON line per replicate as it finishes."""
    import pkpd
    from pkpd._parallel import iter_tasks, spawn_seeds

    model = pkpd.load_model(MODEL)
    truth = {p: model.parameter(p).value for p in estimate}
    outcomes = []
    for i, outcome in iter_tasks(replicate, spawn_seeds(seed, n), shared=(n_subjects, tuple(estimate)),
                                 workers=workers, progress=progress, description="endpoints SSE", unit="replicate"):
        outcomes.append(outcome)
        if record is not None:
            good, x = outcome
            line = {"replicate": i, "converged": good}
            if good:
                line.update({k: dict(zip(estimate, map(float, v)))
                             for k, v in zip(("estimate", "ci_low", "ci_high", "se"), x)})
            else:
                line["reason"] = x
            record.write(json.dumps(line) + "\n")
            record.flush()
    return outcomes, truth


def read_replicates(path: Path):
    """(outcomes, truth, design) from a ``*_replicates.jsonl`` written by :func:`main` (its first line holds the
    truth and the design: subjects, seed)."""
    lines = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    truth = lines[0]["truth"]
    outcomes = []
    for line in lines[1:]:
        if line["converged"]:
            outcomes.append((True, tuple(np.array([line[k][p] for p in truth])
                                         for k in ("estimate", "ci_low", "ci_high", "se"))))
        else:
            outcomes.append((False, line["reason"]))
    return outcomes, truth, {k: v for k, v in lines[0].items() if k != "truth"}


def plot(outcomes, truth: dict, path: Path, title: str):
    """The figure: relative estimation error per parameter (box: quartiles, whiskers 5-95 %) and the coverage of
    the 95 % intervals with +- 2 Monte-Carlo standard errors, against the nominal 95 %."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = summarise(outcomes, truth)
    ok = [x for good, x in outcomes if good]
    est = np.array([o[0] for o in ok])
    rel = 100 * (est / np.array(list(truth.values())) - 1)
    names = list(truth)
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    a.boxplot(rel, whis=(5, 95), showmeans=True, showfliers=False)
    a.set_xticks(range(1, len(names) + 1), names)
    a.axhline(0.0, color="k", lw=0.8)
    a.set_ylabel("estimate / truth - 1 [%]")
    a.set_title("relative estimation error (mean: triangle)")
    cov = 100 * np.array([r["coverage_95"] for r in rows])
    x = np.arange(1, len(names) + 1)
    band = 200 * np.sqrt(0.95 * 0.05 / max(len(ok), 1))   # +- 2 Monte-Carlo SE of a coverage of 95 %
    b.axhspan(95.0 - band, min(95.0 + band, 100.0), color="0.85", label="95 % +- 2 Monte-Carlo SE")
    b.axhline(95.0, color="k", lw=0.8, ls="--", label="nominal 95 %")
    b.plot(x, cov, "o", label="observed")
    b.set_xticks(x, names)
    b.set_ylim(min(80.0, float(np.min(cov)) - 5.0), 100.5)
    b.set_ylabel("95 % CI coverage [%]")
    b.set_title("coverage of the Wald 95 % intervals")
    b.legend(loc="lower left")
    fig.suptitle(title)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--subjects", type=int, default=200)
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--out", type=Path, default=None,
                        help="write PREFIX_replicates.jsonl, PREFIX.jsonl and PREFIX.png")
    parser.add_argument("--replot", type=Path, default=None, help="summary and figure from PREFIX_replicates.jsonl")
    args = parser.parse_args()
    prefix = args.replot or args.out
    if args.replot is not None:
        outcomes, truth, design = read_replicates(Path(f"{prefix}_replicates.jsonl"))
        head = {"benchmark": "endpoints_sse", "replicates": len(outcomes), **design, "replotted": True}
    else:
        start = time.perf_counter()
        record = None
        if args.out is not None:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            record = open(f"{args.out}_replicates.jsonl", "w")
            record.write(json.dumps({"truth": _truth(), "subjects": args.subjects, "seed": args.seed}) + "\n")
        try:
            outcomes, truth = run(args.n, args.subjects, args.seed, args.workers, progress=True, record=record)
        finally:
            if record is not None:
                record.close()
        head = {"benchmark": "endpoints_sse", "replicates": args.n, "subjects": args.subjects, "seed": args.seed,
                "seconds": round(time.perf_counter() - start, 1)}
    failed = [x for good, x in outcomes if not good]
    lines = [json.dumps(row) for row in summarise(outcomes, truth)]
    lines.append(json.dumps({**head, "failed": len(failed), "failures": failed[:5]}))
    print("\n".join(lines))
    if prefix is not None:
        Path(f"{prefix}.jsonl").write_text("\n".join(lines) + "\n")
        n_ok = len(outcomes) - len(failed)
        plot(outcomes, truth, Path(f"{prefix}.png"), f"clinical endpoints, simulation-re-estimation: {n_ok} "
             f"converged replicates of {len(outcomes)}, {head['subjects']} subjects each")


def _truth() -> dict:
    import pkpd

    model = pkpd.load_model(MODEL)
    return {p: model.parameter(p).value for p in ESTIMATE}


if __name__ == "__main__":
    main()
