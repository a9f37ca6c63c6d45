"""A one-page HTML report of a scenario run, with its figures (PNG 300 dpi + SVG) and tables (CSV + Markdown).

:func:`write_report` writes, into one folder::

    report.html                      the page: model and version, parameters with sources, population, arms,
                                     endpoints, targets, results tables and figures
    figures/*.png, figures/*.svg     time course by arm, exposure by arm, dose-response with CI, PTA by dose,
                                     tornado (those that apply)
    tables/*.csv, tables/*.md        summary, attainment, lowest dose, dose-response, arms, parameters, endpoints,
                                     population; endpoint_values.csv (arm x subject x endpoint)

It is what ``pkpd scenario FILE --out DIR`` writes; the page uses relative links only, so the folder can be zipped
and attached to a protocol. Nothing is drawn by library code elsewhere: this module is a leaf, like the CLI.

Examples
--------
>>> import tempfile, pathlib, pkpd
>>> from pkpd.scenarios import Arm, Scenario, run_scenario
>>> from pkpd.metrics import Endpoint
>>> res = run_scenario(Scenario(pkpd.load_model("pk_1cmt_iv"), [Arm("100 mg", pkpd.Dose(100, "mg"))],
...                             [Endpoint("conc", "cmax", end=24)]))
>>> with tempfile.TemporaryDirectory() as tmp:
...     page = write_report(res, tmp)
...     sorted(p.name for p in (pathlib.Path(tmp) / "figures").iterdir())
['exposure.png', 'exposure.svg', 'time_course.png', 'time_course.svg']
"""

from __future__ import annotations

import html
import math
import os
import sys
from pathlib import Path

import numpy as np

from . import __version__
from .errors import PkpdError

__all__ = ["markdown_table", "write_report"]


def markdown_table(frame, *, digits: int = 4) -> str:
    """A pandas DataFrame as a GitHub-flavoured Markdown table (numbers to ``digits`` significant digits).

    Examples
    --------
    >>> import pandas as pd
    >>> print(markdown_table(pd.DataFrame({"arm": ["a"], "median": [1234.5678]})))
    | arm | median |
    |---|---|
    | a | 1235 |
    """
    cols = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(_cell(v, digits).replace("|", "\\|") for v in row) + " |")
    return "\n".join(lines)


def _cell(v, digits: int = 4) -> str:
    if isinstance(v, bool | np.bool_):
        return "yes" if v else "no"
    if isinstance(v, int | np.integer):
        return str(int(v))
    if isinstance(v, float | np.floating):
        if math.isnan(v):
            return "–"
        return f"{v:.{digits}g}"
    return "" if v is None else str(v)


def _html_table(frame, *, digits: int = 4, cls: str = "") -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = []
    for row in frame.itertuples(index=False):
        cells = []
        for v in row:
            text = html.escape(_cell(v, digits))
            num = isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool)
            cells.append(f"<td class='num'>{text}</td>" if num else f"<td>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table class='{cls}'><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _tables(result) -> dict:
    import pandas as pd

    from .metrics import endpoint_table

    sc = result.scenario
    m = sc.typical_model
    omega = getattr(sc.population, "omega", {}) or {}
    params = pd.DataFrame([{"parameter": p.name, "value": p.value, "unit": p.unit,
                            "scenario": "set by scenario" if p.name in sc.params else "",
                            "IIV omega": omega.get(p.name, math.nan),
                            "assumption": "yes" if p.assumption else "", "source": p.source}
                           for p in m.parameters])
    summary = result.summary[["arm", "endpoint", "unit", "n", "median", "p5", "p95", "mean"]]
    attainment = result.attainment.drop(columns=["group"])
    tables = {"summary": summary, "arms": result.arms, "parameters": params,
              "endpoints": pd.DataFrame(endpoint_table(list(sc.endpoints), sc.model)),
              "population": result.population}
    if len(sc.targets):
        tables["attainment"] = attainment
        tables["targets"] = pd.DataFrame([{"target": t.name, "endpoint": t.endpoint, "op": t.op, "value": t.value,
                                           "unit": t.unit or sc.endpoint_units[t.endpoint]} for t in sc.targets])
        tables["lowest_dose_80"] = result.lowest_dose(0.8)
    if len(result.dose_response):
        tables["dose_response"] = result.dose_response
    clinical = getattr(result, "clinical", None)
    if clinical is not None and len(clinical):
        tables["clinical"] = clinical.drop(columns=["group"])
    return tables


def _figures(result, folder: Path) -> list[tuple[str, str]]:
    """Draw every applicable figure; return [(file stem, caption)]."""
    import matplotlib

    if "matplotlib.pyplot" not in sys.modules:
        matplotlib.use("Agg")  # writing files, never opening windows (as the CLI does)
    import matplotlib.pyplot as plt

    from . import plots

    sc = result.scenario
    jobs = [("time_course", lambda: plots.plot_time_course(result),
             "Time course of the endpoint outputs by arm: median" + (" and 5-95 % range" if sc.population.n > 1
                                                                    else "") + " across virtual subjects."),
            ("exposure", lambda: plots.plot_exposure(result),
             "Endpoints by arm: each virtual subject (dots), median (black bar), 5-95 % range (coloured line).")]
    if result.fits:
        jobs.append(("dose_response", lambda: plots.plot_dose_response(result),
                     "Dose-response per schedule: arm medians with 5-95 % ranges, Emax fit with its 95 % confidence "
                     "band, ED50 with its 95 % confidence interval."))
    if len(sc.targets):
        jobs.append(("target_attainment", lambda: plots.plot_target_attainment(result),
                     "Probability of target attainment by dose and schedule, with Wilson 95 % intervals (Monte-Carlo "
                     "error of the virtual population)."))
    if result.sensitivity is not None:
        jobs.append(("tornado", lambda: plots.plot_tornado(result.sensitivity),
                     f"Normalised local sensitivity of each endpoint at the typical subject of arm "
                     f"'{sc.sensitivity_arm}' (+1 % in a parameter changes the endpoint by this many %)."))
    done = []
    for stem, draw, caption in jobs:
        fig = draw()
        try:
            for suffix in (".png", ".svg"):
                plots.save_figure(fig, folder / f"{stem}{suffix}")
        finally:
            plt.close(fig)
        done.append((stem, caption))
    return done


_CSS = """
body{font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;font-size:13px;color:#222;max-width:1100px;
margin:24px auto;padding:0 16px;line-height:1.4}
h1{font-size:21px;margin-bottom:2px}h2{font-size:16px;border-bottom:1px solid #ccc;padding-bottom:2px;margin-top:22px}
.meta{color:#555;margin-top:0}table{border-collapse:collapse;margin:6px 0 10px 0;font-size:12px}
th,td{border:1px solid #ddd;padding:2px 6px;vertical-align:top}th{background:#f3f3f3;text-align:left}
td.num{text-align:right;font-variant-numeric:tabular-nums}table.params td:last-child{font-size:11px;color:#444}
figure{margin:8px 0 16px 0}figure img{max-width:100%;border:1px solid #eee}figcaption{color:#444;font-size:12px}
.note{color:#8a5a00}.fail{color:#b00;font-weight:bold}
"""


def write_report(result, out_dir: str | os.PathLike) -> Path:
    """Write the scenario report (HTML page, figures, tables) into ``out_dir`` (created if missing).

    Parameters
    ----------
    result : ScenarioResult
        From :func:`pkpd.scenarios.run_scenario`.
    out_dir : str or path

    Returns
    -------
    pathlib.Path
        The path of ``report.html``.

    Raises
    ------
    PkpdError
        ``out_dir`` exists and is not a folder.
    """
    from .scenarios import ScenarioResult

    if not isinstance(result, ScenarioResult):
        raise PkpdError(f"write_report: expected a ScenarioResult (from run_scenario); got {type(result).__name__}")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise PkpdError(f"write_report: {str(out)!r} exists and is not a folder; choose another --out")
    figs, tabs = out / "figures", out / "tables"
    figs.mkdir(parents=True, exist_ok=True)
    tabs.mkdir(parents=True, exist_ok=True)
    tables = _tables(result)
    for name, frame in tables.items():
        frame.to_csv(tabs / f"{name}.csv", index=False)
        (tabs / f"{name}.md").write_text(markdown_table(frame) + "\n", encoding="utf-8")
    result.table.to_csv(tabs / "endpoint_values.csv", index=False)
    figures = _figures(result, figs)
    page = out / "report.html"
    page.write_text(_page(result, tables, figures), encoding="utf-8")
    return page


def _dose_response_display(frame):
    """The dose-response table condensed for the page (the CSV keeps every column)."""
    import pandas as pd

    def ci(est, lo, hi):
        if not math.isfinite(est):
            return "–"
        if not (math.isfinite(lo) and math.isfinite(hi)):
            return f"{est:.3g} (no CI)"
        return f"{est:.3g} ({lo:.3g}-{hi:.3g})"

    rows = []
    for r in frame.itertuples(index=False):
        row = {"schedule": r.group, "endpoint": r.endpoint, "unit": r.unit, "E0": r.E0, "Emax": r.Emax,
               f"ED50 (95 % CI) [{r.dose_unit}]": ci(r.ED50, r.ED50_low, r.ED50_high),
               f"ED90 (95 % CI) [{r.dose_unit}]": ci(r.ED90, r.ED90_low, r.ED90_high)}
        if r.model != "Emax":
            row["hill"] = r.hill
        row["note"] = r.note
        rows.append(row)
    return pd.DataFrame(rows)


def _page(result, tables: dict, figures) -> str:
    sc = result.scenario
    m = sc.model
    esc = html.escape
    first_para = (m.description or "").strip().split("\n\n")[0]
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{esc(sc.name)}</title>"
             f"<style>{_CSS}</style></head><body>",
             f"<h1>{esc(sc.name)}</h1>",
             f"<p class='meta'>Model <b>{esc(m.name)}</b> version {esc(m.version)}"
             + (f" ({esc(str(m.file))})" if m.file else "") + f" &middot; pkpd {esc(__version__)} &middot; seed "
             f"{result.seed}" + (f" &middot; scenario file {esc(str(sc.source))}" if sc.source else "") + "</p>"]
    if sc.description:
        parts.append(f"<p>{esc(sc.description)}</p>")
    if result.n_failed:
        parts.append(f"<p class='fail'>{result.n_failed} simulations failed and are excluded.</p>")
    parts.append(f"<h2>Model</h2><p>{esc(' '.join(first_para.split()))}</p>")
    parts.append("<p>Parameter values used (typical values; 'set by scenario' marks values that differ from the model "
                 "file) and their sources:</p>")
    parts.append(_html_table(tables["parameters"], cls="params"))
    parts.append("<h2>Population</h2>")
    parts.append(f"<p>{esc(sc.population.describe())}. Every arm is simulated for the same virtual subjects.</p>")
    parts.append("<h2>Arms</h2>" + _html_table(tables["arms"]))
    parts.append("<h2>Endpoints</h2>" + _html_table(tables["endpoints"]))
    if "targets" in tables:
        parts.append("<h2>Targets and probability of target attainment</h2>" + _html_table(tables["targets"]))
        parts.append(_html_table(tables["attainment"]))
        parts.append("<p>Lowest dose of each schedule reaching at least 80 % probability of target attainment "
                     "(dose '–': none of the doses tested; the best probability reached is shown):</p>")
        parts.append(_html_table(tables["lowest_dose_80"]))
    if "clinical" in tables:
        parts.append("<h2>Clinical endpoints by arm</h2><p>For each arm as a whole: the expected response rate, "
                     "survival or count (the mean over its virtual subjects), and the median of the arm's survival "
                     "curve; 95 % intervals of the Monte-Carlo error of the simulated subjects.</p>")
        parts.append(_html_table(tables["clinical"]))
    parts.append("<h2>Endpoints by arm</h2>" + _html_table(tables["summary"]))
    if "dose_response" in tables:
        parts.append("<h2>Dose-response</h2><p>Emax fits to every virtual subject's value (controls at dose 0); "
                     "ED50/ED90 with 95 % confidence intervals of the typical curve.</p>")
        parts.append(_html_table(_dose_response_display(tables["dose_response"])))
        notes = [n for n in tables["dose_response"]["note"] if n]
        for n in dict.fromkeys(notes):
            parts.append(f"<p class='note'>Note: {esc(n)}</p>")
    parts.append("<h2>Figures</h2>")
    for stem, caption in figures:
        parts.append(f"<figure><img src='figures/{stem}.png' alt='{esc(caption)}'><figcaption>{esc(caption)} "
                     f"(<a href='figures/{stem}.svg'>SVG</a>, <a href='figures/{stem}.png'>PNG 300 dpi</a>)"
                     "</figcaption></figure>")
    links = ", ".join(f"<a href='tables/{n}.csv'>{n}</a>" for n in [*tables, "endpoint_values"])
    parts.append(f"<h2>Tables</h2><p>CSV (and Markdown, same name .md): {links}.</p>")
    if m.references:
        parts.append("<h2>References</h2><ul>" + "".join(f"<li>{esc(r)}</li>" for r in m.references) + "</ul>")
    parts.append("</body></html>")
    return "\n".join(parts)
