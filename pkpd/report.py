"""The scenario report: one self-contained HTML page a reviewer can read in a minute, with its figures and tables.

:func:`write_report` writes, into one folder::

    report.html                      the page, complete in one file (figures embedded): first a summary (the
                                     question, model and version, population, arms, and the answer: for each
                                     target and schedule, the lowest dose tested whose probability of target
                                     attainment reaches the goal, with that probability and its interval, or "none
                                     of the doses tested"), the PTA-versus-dose figure, then the details (dose-
                                     response with ED50/ED90 flagged where flat, ill-determined or extrapolated,
                                     endpoints by arm, arms, population, parameters with sources, references)
    report.pdf                       with ``pdf=True``: the page printed by headless Chromium
    figures/*.png, figures/*.svg     each figure at 300 dpi and as vector graphics, for a protocol
    tables/*.csv, tables/*.md        every table (CSV with full precision; Markdown as on the page)

It is what ``pkpd scenario FILE --out DIR [--pdf]`` writes. On the page, every number has 3 significant digits
(:func:`format_number`: ``×10ⁿ`` from 10⁴ on and below 10⁻³), every numeric column a unit, and an endpoint that a
target states in another unit (a target of 12 ng·h/mL on an AUC computed in pg/mL·h) is shown in the target's
unit everywhere. Nothing is drawn by library code elsewhere: this module is a leaf, like the CLI.

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

import base64
import html
import io
import math
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from . import __version__
from .errors import PkpdError

__all__ = ["format_number", "markdown_table", "write_report"]

#: The probability of target attainment the report's answer asks for, unless ``write_report(probability=...)``.
GOAL_PROBABILITY = 0.8
_SCREEN_DPI = 150  # figures embedded in the page; the files in figures/ are at 300 dpi
_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")
_CHROMIUM = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


# ---------------------------------------------------------------------------------------------------- numbers
def format_number(value, digits: int = 3) -> str:
    """A number as every table of the report prints it: ``digits`` significant digits, plain between 10⁻³ and
    10⁴, else ``m×10ⁿ``; ``–`` for a missing value.

    Examples
    --------
    >>> [format_number(v) for v in (3e5, 1.034e4, 8914.82, 0.01884, 69.94, 4.01e10, 1e7, -0.4, float("nan"))]
    ['3×10⁵', '1.03×10⁴', '8910', '0.0188', '69.9', '4.01×10¹⁰', '10⁷', '-0.4', '–']
    """
    if value is None or isinstance(value, str):
        return "–" if value is None else value
    x = float(value)
    if math.isnan(x):
        return "–"
    if math.isinf(x):
        return "∞" if x > 0 else "-∞"
    if x == 0:
        return "0"
    x = float(f"{x:.{digits}g}")  # rounded to the significant digits first: 9999.7 becomes 1×10⁴
    magnitude = abs(x)
    if 1e-3 <= magnitude < 1e4:
        decimals = max(0, digits - 1 - int(math.floor(math.log10(magnitude))))
        text = f"{x:.{decimals}f}"
        return text.rstrip("0").rstrip(".") if "." in text else text
    exponent = int(math.floor(math.log10(magnitude)))
    mantissa = float(f"{x / 10.0 ** exponent:.{digits}g}")
    power = "10" + str(exponent).translate(_SUPERSCRIPT)
    if abs(mantissa) == 1.0:
        return ("-" if mantissa < 0 else "") + power
    return f"{mantissa:g}×{power}"


def _percent(p: float) -> str:
    return "–" if not math.isfinite(p) else f"{format_number(100 * p)} %"


def _unit(u: str) -> str:
    from .plots import _pretty_unit

    return _pretty_unit(u) if u else ""


def _pretty_numbers(text: str) -> str:
    from .plots import _pretty_numbers

    return _pretty_numbers(text)


def markdown_table(frame, *, digits: int = 3) -> str:
    """A pandas DataFrame as a GitHub-flavoured Markdown table (numbers as :func:`format_number`).

    Examples
    --------
    >>> import pandas as pd
    >>> print(markdown_table(pd.DataFrame({"arm": ["a"], "median [mg/L]": [1234.5678]})))
    | arm | median [mg/L] |
    |---|---|
    | a | 1230 |
    """
    cols = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in frame.itertuples(index=False, name=None):  # plain tuples: any column names
        lines.append("| " + " | ".join(_cell(v, digits).replace("|", "\\|") for v in row) + " |")
    return "\n".join(lines)


def _cell(v, digits: int = 3) -> str:
    if isinstance(v, bool | np.bool_):
        return "yes" if v else "no"
    if isinstance(v, int | np.integer):
        return str(int(v))
    if isinstance(v, float | np.floating):
        return format_number(float(v), digits)
    return "" if v is None else str(v)


# ---------------------------------------------------------------------------------------------------- the page model
class _Table:
    """A table of the page: headers (numeric columns carry their unit in brackets) and rows of display text."""

    def __init__(self, name: str, headers: list[str], rows: list[list[str]], caption: str = "",
                 numeric: set[int] | None = None, css: str = ""):
        self.name, self.headers, self.rows, self.caption, self.css = name, headers, rows, caption, css
        self.numeric = numeric or set()

    def html(self) -> str:
        esc = html.escape
        head = "".join(f"<th>{esc(h)}</th>" for h in self.headers)
        body = "".join("<tr>" + "".join(
            f"<td class='num'>{c}</td>" if j in self.numeric else f"<td>{c}</td>" for j, c in enumerate(row))
                       + "</tr>" for row in self.rows)
        caption = f"<caption>{esc(self.caption)}</caption>" if self.caption else ""
        return (f"<table class='{self.css}' data-name='{esc(self.name)}'>{caption}<thead><tr>{head}</tr></thead>"
                f"<tbody>{body}</tbody></table>")

    def markdown(self) -> str:
        import re

        plain = [[html.unescape(re.sub(r"<[^>]+>", "", c)) for c in row] for row in self.rows]
        lines = ["| " + " | ".join(self.headers) + " |", "|" + "---|" * len(self.headers)]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in plain]
        return "\n".join(lines)


def _display_units(result) -> dict[str, tuple[str, float]]:
    """Per endpoint: (unit shown, factor from its own unit). An endpoint a target states in another unit is shown
    in the target's unit (the unit the question was asked in)."""
    from . import units as un

    out = {ep: (u, 1.0) for ep, u in result.units.items()}
    for t in result.scenario.targets:
        own = result.units[t.endpoint]
        if t.unit and t.unit != own:
            try:
                out[t.endpoint] = (t.unit, un.convert(own, t.unit))
            except PkpdError:  # e.g. "%" against a relative change: keep the endpoint's unit
                pass
    return out


def _target_text(t, shown: dict) -> str:
    unit = t.unit or shown[t.endpoint][0]
    return f"{t.endpoint} {t.op} {format_number(t.value)} {_unit(unit)}"


def _dose_text(dose: float, unit: str) -> str:
    return f"{format_number(dose)} {_unit(unit)}"


def _answers(result, probability: float, shown: dict):
    """(sentences, table): for each target, the lowest dose per schedule with PTA >= probability."""
    att = result.attainment
    targets = list(result.scenario.targets)
    sentences, rows = [], []
    for t in targets:
        part = att[(att["target"] == t.name) & (att["group"] != "untreated")]
        label = _target_text(t, shown)
        found = []
        for group, g in part.groupby("group", sort=False):
            g = g.sort_values("dose")
            ok = g[g["probability"] >= probability]
            if len(ok):
                r = ok.iloc[0]
                found.append((float(r["dose"]), float(r["probability"]), group, r))
                rows.append([html.escape(label), html.escape(group), _dose_text(r["dose"], r["dose_unit"]),
                             _pta(r)])
            elif g["probability"].notna().any():
                best = g.loc[g["probability"].idxmax()]
                rows.append([html.escape(label), html.escape(group), "<span class='none'>none of the doses tested"
                             "</span>", "best: " + _pta(best) + " at " + _dose_text(best["dose"], best["dose_unit"])])
            else:
                rows.append([html.escape(label), html.escape(group), "<span class='fail'>no PTA: no simulation of "
                             "these arms succeeded</span>", "–"])
        if found:
            dose, _, group, r = min(found, key=lambda f: (f[0], -f[1]))
            sentences.append(f"<b>{html.escape(label)}</b>: the lowest dose tested reaching "
                             f"{format_number(100 * probability)} % probability is "
                             f"<b>{_dose_text(dose, r['dose_unit'])}</b> ({html.escape(group)}): "
                             f"{_pta(r)}.")
        else:
            best = part.loc[part["probability"].idxmax()] if part["probability"].notna().any() else None
            tail = (f" (best: {_pta(best)} with {_dose_text(best['dose'], best['dose_unit'])}, "
                    f"{html.escape(best['group'])})") if best is not None else ""
            if best is None and len(part):
                sentences.append(f"<b>{html.escape(label)}</b>: <span class='fail'>no PTA</span>: no simulation of "
                                 "the arms succeeded.")
            else:
                sentences.append(f"<b>{html.escape(label)}</b>: <span class='none'>none of the doses tested</span> "
                                 f"reaches {format_number(100 * probability)} % probability{tail}.")
    headers = ["target", "schedule", "lowest dose tested with PTA ≥ " + format_number(100 * probability) + " %",
               "PTA [%] (95 % CI)"]
    return sentences, _Table("answer", headers, rows, css="answer")


def _pta(r) -> str:
    if not math.isfinite(float(r["probability"])):
        return "–"   # no subject counted: every simulation of the arm failed
    return (f"{format_number(100 * float(r['probability']))} % ({format_number(100 * float(r['ci_low']))}–"
            f"{format_number(100 * float(r['ci_high']))} %)")


def _ed_cell(est: float, low: float, high: float, flag: str, dose_unit: str, dose_range) -> str:
    unit = _unit(dose_unit)
    if flag == "flat":
        return "<span class='flag'>not determined: flat response</span>"
    text = format_number(est)
    if math.isfinite(low) and math.isfinite(high):
        text += f" ({format_number(low)}–{format_number(high)})"
    if flag == "extrapolated":
        side = "above the highest" if est > dose_range[1] else "below the lowest"
        text += (f" <span class='flag'>extrapolated: {side} dose tested "
                 f"({format_number(dose_range[1] if est > dose_range[1] else dose_range[0])} {unit})</span>")
    elif flag == "ill-determined":
        text += " <span class='flag'>ill-determined: interval wider than 100-fold or not available</span>"
    return text


def _tables(result, probability: float) -> tuple[dict, dict]:
    """(page tables by name, CSV frames by name)."""
    import pandas as pd

    from .metrics import endpoint_table

    sc = result.scenario
    shown = _display_units(result)
    m = sc.typical_model
    omega = getattr(sc.population, "omega", {}) or {}
    page, csv = {}, {}
    esc = html.escape

    # endpoints by arm: one table per endpoint, in the unit it is shown in
    summary = result.summary
    for ep in sc.endpoints:
        unit, k = shown[ep.name]
        u = _unit(unit)
        rows = []
        for r in summary[summary["endpoint"] == ep.name].itertuples(index=False):
            rows.append([esc(r.arm), str(int(r.n)), format_number(r.median * k), format_number(r.p5 * k),
                         format_number(r.p95 * k), format_number(r.mean * k)])
        page[f"endpoint_{ep.name}"] = _Table(
            f"endpoint_{ep.name}", ["arm", "n [subjects]", f"median [{u}]", f"5th percentile [{u}]",
                                    f"95th percentile [{u}]", f"mean [{u}]"], rows, caption=f"{ep.name} [{u}]",
            numeric={1, 2, 3, 4, 5})
    frame = summary[["arm", "endpoint", "unit", "n", "median", "p5", "p95", "mean"]].copy()
    factor = frame["endpoint"].map(lambda e: shown[e][1])
    for col in ("median", "p5", "p95", "mean"):
        frame[col] = frame[col] * factor
    frame["unit"] = frame["endpoint"].map(lambda e: shown[e][0])
    csv["summary"] = frame

    # probability of target attainment, arm by arm
    att = result.attainment
    if len(sc.targets):
        rows = []
        for r in att.itertuples(index=False):
            t = next(t for t in sc.targets if t.name == r.target)
            rows.append([esc(r.arm), _dose_text(r.dose, r.dose_unit) if r.dose_unit else "0",
                         esc(_target_text(t, shown)), f"{int(r.n_met)} of {int(r.n)}",
                         _pta(r._asdict())])
        page["attainment"] = _Table("attainment", ["arm", "dose per administration", "target",
                                                   "subjects reaching it [subjects]", "PTA [%] (95 % CI)"], rows,
                                    numeric={4})
        csv["attainment"] = att.drop(columns=["group"])
        csv["targets"] = pd.DataFrame([{"target": t.name, "endpoint": t.endpoint, "op": t.op, "value": t.value,
                                        "unit": t.unit or sc.endpoint_units[t.endpoint]} for t in sc.targets])
        csv["lowest_dose"] = result.lowest_dose(probability)

    # clinical endpoints: the value for each arm as a whole (expected response rate, survival, count, median time)
    clinical = getattr(result, "clinical", None)
    if clinical is not None and len(clinical):
        rows = []
        metric = {ep.name: ep.metric for ep in sc.endpoints}
        for r in clinical.itertuples(index=False):
            if metric[r.endpoint] in ("probability_at", "survival_at"):   # probabilities, in %
                k, u = 100.0, " %"
            elif metric[r.endpoint] == "expected_count":
                k, u = 1.0, ""
            else:
                unit, k = shown[r.endpoint]
                u = f" {_unit(unit)}"
            interval = (f"{format_number(r.ci_low * k)}-{format_number(r.ci_high * k)}{u}"
                        if np.isfinite(r.ci_low) and np.isfinite(r.ci_high) else "–")   # none for one subject
            rows.append([esc(r.arm), esc(r.endpoint), esc(r.description), f"{format_number(r.value * k)}{u}",
                         interval, str(int(r.n))])
        page["clinical"] = _Table("clinical", ["arm", "endpoint", "definition", "value for the arm",
                                               "95 % interval", "n [subjects]"], rows, numeric={3, 4, 5})
        csv["clinical"] = clinical.drop(columns=["group"])

    # dose-response: one table per endpoint, ED50/ED90 flagged in place
    dr = result.dose_response
    if len(dr):
        for ep in sc.endpoints:
            part = dr[dr["endpoint"] == ep.name]
            if not len(part):
                continue
            unit, k = shown[ep.name]
            u = _unit(unit)
            rows = []
            dose_unit = part["dose_unit"].iloc[0]
            for r in part.itertuples(index=False):
                fit = result.fits[(r.group, r.endpoint)]
                rows.append([esc(r.group), format_number(r.E0 * k), format_number(r.Emax * k),
                             _ed_cell(r.ED50, r.ED50_low, r.ED50_high, r.ED50_flag, r.dose_unit, fit.dose_range),
                             _ed_cell(r.ED90, r.ED90_low, r.ED90_high, r.ED90_flag, r.dose_unit, fit.dose_range)])
            du = _unit(dose_unit)
            page[f"dose_response_{ep.name}"] = _Table(
                f"dose_response_{ep.name}", ["schedule", f"E0 [{u}]", f"Emax [{u}]", f"ED50 [{du}] (95 % CI)",
                                             f"ED90 [{du}] (95 % CI)"], rows, caption=f"{ep.name} [{u}]",
                numeric={1, 2, 3, 4})
        csv["dose_response"] = dr

    # what was simulated
    # interval, first dose and infusion are in each arm's own time unit: the headers name it when the dosed arms
    # share one, else each cell does (an untreated arm has no doses, so its unit does not count)
    time_units = {r.time_unit for r in result.arms.itertuples(index=False) if int(r.count) > 0}
    common = time_units.pop() if len(time_units) == 1 else None
    rows = []
    for r in result.arms.itertuples(index=False):
        times = [format_number(v) for v in (r.interval, r.start, r.infusion)]
        if common is None and int(r.count) > 0:
            times = [t if t == format_number(math.nan) else f"{t} {esc(r.time_unit)}" for t in times]
        rows.append([esc(r.arm), esc(r.schedule), format_number(r.dose), esc(_unit(r.unit)), str(int(r.count)),
                     *times])
    when = f" [{common}]" if common is not None else ""
    page["arms"] = _Table("arms", ["arm", "schedule", "dose per administration", "unit", "doses [n]",
                                   f"interval{when}", f"first dose{when}", f"infusion{when}"], rows,
                          numeric={2, 4, 5, 6, 7})
    csv["arms"] = result.arms
    endpoints = pd.DataFrame(endpoint_table(list(sc.endpoints), sc.model))
    endpoints["unit"] = endpoints["endpoint"].map(lambda e: shown[e][0])  # as on the rest of the page
    page["endpoints"] = _Table("endpoints", ["endpoint", "output", "metric", "definition", "unit"],
                               [[esc(str(r.endpoint)), esc(str(r.output)), esc(str(r.metric)),
                                 esc(str(r.definition)), esc(_unit(r.unit))] for r in endpoints.itertuples()])
    csv["endpoints"] = endpoints
    params = pd.DataFrame([{"parameter": p.name, "value": p.value, "unit": p.unit,
                            "scenario": "set by scenario" if p.name in sc.params else "",
                            "IIV omega": omega.get(p.name, math.nan),
                            "assumption": "yes" if p.assumption else "", "source": p.source}
                           for p in m.parameters])
    page["parameters"] = _Table(
        "parameters", ["parameter", "value", "unit", "scenario", "IIV ω [log scale]", "assumption", "source"],
        [[esc(r.parameter), format_number(r.value), esc(_unit(r.unit)), esc(r.scenario),
          format_number(r._4), esc(r.assumption), esc(r.source)] for r in params.itertuples(index=False)],
        numeric={1, 4}, css="params")
    csv["parameters"] = params
    csv["population"] = result.population
    return page, csv


# ---------------------------------------------------------------------------------------------------- figures
def _figures(result, folder: Path, shown: dict, probability: float) -> list[tuple[str, str, str]]:
    """Draw every applicable figure into ``folder`` (PNG 300 dpi + SVG); return [(stem, caption, data URI)]."""
    import matplotlib

    if "matplotlib.pyplot" not in sys.modules:
        matplotlib.use("Agg")  # writing files, never opening windows (as the CLI does)
    import matplotlib.pyplot as plt

    from . import plots

    sc = result.scenario
    n = sc.population.n
    units = {ep: u for ep, (u, k) in shown.items() if k != 1.0}
    band = "median and 5-95 % range" if n > 1 else "typical subject"
    jobs = []
    if len(sc.targets):
        jobs.append(("target_attainment", lambda: plots.plot_target_attainment(result, probability=probability),
                     f"Probability of target attainment against dose, one line per schedule, with Wilson 95 % "
                     f"intervals (Monte-Carlo error of {n} virtual subjects); dashed: the "
                     f"{format_number(100 * probability)} % goal."))
    if result.fits:
        jobs.append(("dose_response", lambda: plots.plot_dose_response(result, units=units),
                     "Dose-response per schedule: arm medians with 5-95 % ranges, Emax fit with its 95 % confidence "
                     "band, ED50 with its 95 % confidence interval (not drawn where it is flat, ill-determined or "
                     "extrapolated)."))
    jobs += [("time_course", lambda: plots.plot_time_course(result),
              f"Time course by arm: {band} of {n} virtual subject{'s' if n > 1 else ''}; doses marked at the top"
              + ("; one column per schedule" if len(sc.arms) > 6 else "") + "."),
             ("exposure", lambda: plots.plot_exposure(result, units=units),
              "Endpoints by arm: each virtual subject (dots), median (black bar), 5-95 % range (coloured line).")]
    if result.sensitivity is not None:
        jobs.append(("tornado", lambda: plots.plot_tornado(result.sensitivity),
                     f"Normalised local sensitivity of each endpoint at the typical subject of arm "
                     f"'{sc.sensitivity_arm}' (+1 % in a parameter changes the endpoint by this many %)."))
    done = []
    for stem, draw, caption in jobs:
        fig = draw()
        try:
            for suffix in (".png", ".svg"):
                plots.save_figure(fig, folder / f"{stem}{suffix}")  # fixes the layout once for all three
            buffer = io.BytesIO()
            with matplotlib.rc_context(plots.HOUSE_STYLE):
                fig.savefig(buffer, format="png", dpi=_SCREEN_DPI, metadata={"Software": None})
        finally:
            plt.close(fig)
        done.append((stem, caption, "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")))
    return done


# ---------------------------------------------------------------------------------------------------- the page
_CSS = """
body{font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;font-size:13px;color:#222;max-width:1100px;
margin:24px auto;padding:0 16px;line-height:1.4}
h1{font-size:21px;margin-bottom:2px}h2{font-size:16px;border-bottom:1px solid #ccc;padding-bottom:2px;margin-top:22px}
h3{font-size:14px;margin:14px 0 4px 0}
.meta{color:#555;margin-top:0}table{border-collapse:collapse;margin:6px 0 12px 0;font-size:12px}
caption{text-align:left;font-weight:bold;padding:2px 0}
th,td{border:1px solid #ddd;padding:2px 6px;vertical-align:top}th{background:#f3f3f3;text-align:left}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
table.params td:last-child{font-size:11px;color:#444}
figure{margin:8px 0 16px 0}figure img{max-width:100%;border:1px solid #eee}figcaption{color:#444;font-size:12px}
.summary{background:#f7f9fc;border:1px solid #d5dde8;padding:8px 14px 4px 14px;border-radius:4px}
.summary dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 12px;margin:4px 0 8px 0}
.summary dt{font-weight:bold}.summary dd{margin:0}
.answer-text{font-size:14px}.answer-text li{margin:3px 0}
.flag{color:#8a5a00;font-weight:bold}.none{color:#b00;font-weight:bold}.fail{color:#b00;font-weight:bold}
@media print{body{max-width:none;margin:0}figure,table{break-inside:avoid}h2{break-after:avoid}}
@page{size:A4;margin:14mm}
"""


def _arms_sentence(result) -> str:
    arms = result.scenario.arms
    controls = [a for a in arms if a.control]
    treated = [a for a in arms if not a.control]
    schedules = list(dict.fromkeys(a.schedule for a in treated))
    levels = sorted({a.dose_level for a in treated})
    unit = treated[0].dose_unit if treated else ""
    parts = []
    if controls:
        parts.append(f"{len(controls)} control arm{'s' if len(controls) > 1 else ''} (untreated)")
    if treated:
        doses = ", ".join(format_number(v) for v in levels) + f" {_unit(unit)}"
        parts.append(f"{len(schedules)} schedule{'s' if len(schedules) > 1 else ''} ("
                     + "; ".join(schedules) + f") × {len(levels)} dose level{'s' if len(levels) > 1 else ''} "
                     f"({doses})")
    return f"{len(arms)} arms: " + ", ".join(parts) + ". Every arm is simulated for the same virtual subjects."


def _page(result, tables: dict, figures, probability: float) -> str:
    sc = result.scenario
    m = sc.model
    esc = html.escape
    shown = _display_units(result)
    figs = {stem: (caption, uri) for stem, caption, uri in figures}

    def figure(stem: str) -> str:
        caption, uri = figs[stem]
        return (f"<figure id='fig-{stem}'><img src='{uri}' alt='{esc(caption)}'><figcaption>{esc(caption)}"
                "</figcaption></figure>")

    first_para = " ".join((m.description or "").strip().split("\n\n")[0].split())
    question = sc.description.strip() if sc.description else "(the scenario file states no question)"
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{esc(sc.name)}</title>"
             f"<style>{_CSS}</style></head><body>",
             f"<h1>{esc(sc.name)}</h1>",
             f"<p class='meta'>Model <b>{esc(m.name)}</b> version {esc(m.version)} &middot; pkpd {esc(__version__)} "
             f"&middot; seed {result.seed}" + (f" &middot; scenario file {esc(Path(str(sc.source)).name)}"
                                               if sc.source else "") + "</p>"]
    if result.n_failed:
        parts.append(f"<p class='fail'>{result.n_failed} simulations failed and are excluded.</p>")

    # -- summary: what was asked, of what, and the answer
    parts.append("<section class='summary' id='summary'><h2>Summary</h2><dl>"
                 f"<dt>Question</dt><dd>{esc(question)}</dd>"
                 f"<dt>Model</dt><dd><b>{esc(m.name)}</b> v{esc(m.version)}: {esc(first_para)}</dd>"
                 f"<dt>Population</dt><dd>{esc(_pretty_numbers(sc.population.describe()))}.</dd>"
                 f"<dt>Arms</dt><dd>{esc(_arms_sentence(result))}</dd></dl>")
    if len(sc.targets):
        sentences, table = _answers(result, probability, shown)
        parts.append("<h3>Answer</h3><ul class='answer-text'>" + "".join(f"<li>{s}</li>" for s in sentences)
                     + "</ul>")
        parts.append(table.html())
        parts.append(f"<p class='meta'>PTA: probability of target attainment among the {sc.population.n} virtual "
                     "subjects, with its Wilson 95 % interval; a dose meets the goal when its PTA (point estimate) "
                     "does.</p>")
        if "target_attainment" in figs:
            parts.append(figure("target_attainment"))
    else:
        parts.append("<p>The scenario states no target, so there is no dose to recommend; the endpoints are "
                     "summarised below.</p>")
    parts.append("</section>")

    # -- details
    if "dose_response" in figs:
        parts.append("<h2 id='dose-response'>Dose-response</h2><p>Emax fits to every virtual subject's value "
                     "(controls at dose 0); ED50 and ED90 with 95 % confidence intervals of the typical curve. "
                     "<span class='flag'>Flagged</span> values are not to be used as found: a flat response "
                     "determines no ED, an interval wider than 100-fold barely constrains it, and an ED outside the "
                     "doses tested is an extrapolation.</p>")
        parts += [t.html() for name, t in tables.items() if name.startswith("dose_response_")]
        parts.append(figure("dose_response"))
    if "clinical" in tables:
        parts.append("<h2 id='clinical'>Clinical endpoints by arm</h2><p>For each arm as a whole: the expected "
                     "response rate, survival or count (the mean over its virtual subjects), and the median of the "
                     "arm's survival curve; 95 % intervals of the Monte-Carlo error of the simulated subjects.</p>"
                     + tables["clinical"].html())
    parts.append("<h2 id='endpoints-by-arm'>Endpoints by arm</h2>")
    parts += [t.html() for name, t in tables.items() if name.startswith("endpoint_")]
    parts.append(figure("time_course"))
    parts.append(figure("exposure"))
    if "attainment" in tables:
        parts.append("<h2 id='attainment'>Target attainment by arm</h2>" + tables["attainment"].html())
    parts.append("<h2 id='definitions'>Endpoints</h2>" + tables["endpoints"].html())
    parts.append("<h2 id='arms'>Arms</h2>" + tables["arms"].html())
    parts.append(f"<h2 id='population'>Population</h2><p>{esc(_pretty_numbers(sc.population.describe()))}. The "
                 "values of every virtual subject are in tables/population.csv next to this page.</p>")
    if "tornado" in figs:
        parts.append("<h2 id='sensitivity'>Sensitivity</h2>" + figure("tornado"))
    parts.append("<h2 id='model'>Model and parameters</h2>"
                 f"<p>{esc(first_para)}</p><p>Typical values ('set by scenario' marks values that differ from the "
                 "model file), between-subject variability and sources:</p>" + tables["parameters"].html())
    if m.references:
        parts.append("<h2 id='references'>References</h2><ul>"
                     + "".join(f"<li>{esc(r)}</li>" for r in m.references) + "</ul>")
    parts.append("<p class='meta'>This page is complete in itself (figures embedded). Next to it: figures/ (PNG at "
                 "300 dpi and SVG) and tables/ (CSV with full precision, Markdown).</p></body></html>")
    return "\n".join(parts)


# ---------------------------------------------------------------------------------------------------- entry point
def write_report(result, out_dir: str | os.PathLike, *, probability: float = GOAL_PROBABILITY,
                 pdf: bool = False) -> Path:
    """Write the scenario report (one self-contained HTML page, figures, tables) into ``out_dir``.

    Parameters
    ----------
    result : ScenarioResult
        From :func:`pkpd.scenarios.run_scenario`.
    out_dir : str or path
        Created if missing.
    probability : float
        The probability of target attainment the answer asks for (default 0.8).
    pdf : bool
        Also print the page to ``report.pdf`` with headless Chromium (or Google Chrome), which must be installed.

    Returns
    -------
    pathlib.Path
        The path of ``report.html``.

    Raises
    ------
    PkpdError
        ``out_dir`` exists and is not a folder, ``probability`` is not in (0, 1), or ``pdf=True`` without a
        Chromium to print with.
    """
    from .scenarios import ScenarioResult

    if not isinstance(result, ScenarioResult):
        raise PkpdError(f"write_report: expected a ScenarioResult (from run_scenario); got {type(result).__name__}")
    if not 0 < probability < 1:
        raise PkpdError(f"write_report: probability must be in (0, 1), e.g. 0.8; got {probability!r}")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise PkpdError(f"write_report: {str(out)!r} exists and is not a folder; choose another --out")
    browser = _chromium() if pdf else None
    if pdf and browser is None:
        raise PkpdError("write_report: pdf=True prints the page with headless Chromium or Google Chrome, and none "
                        "was found (looked for chromium, chromium-browser, google-chrome); install one (e.g. "
                        "'apt-get install chromium'), or open report.html and print it from a browser")
    figs, tabs = out / "figures", out / "tables"
    figs.mkdir(parents=True, exist_ok=True)
    tabs.mkdir(parents=True, exist_ok=True)
    page_tables, frames = _tables(result, probability)
    for name, frame in frames.items():
        frame.to_csv(tabs / f"{name}.csv", index=False)
        (tabs / f"{name}.md").write_text(markdown_table(frame) + "\n", encoding="utf-8")
    result.table.to_csv(tabs / "endpoint_values.csv", index=False)
    figures = _figures(result, figs, _display_units(result), probability)
    page = out / "report.html"
    page.write_text(_page(result, page_tables, figures, probability), encoding="utf-8")
    if pdf:
        _print_pdf(browser, page, out / "report.pdf")
    return page


def _chromium() -> str | None:
    for name in (os.environ.get("PKPD_CHROMIUM"), *_CHROMIUM):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def _print_pdf(browser: str, page: Path, pdf: Path) -> None:
    """Print ``page`` to ``pdf`` with headless Chromium (a fresh profile; no network, no sandbox as root)."""
    with tempfile.TemporaryDirectory() as profile:
        command = [browser, "--headless", "--disable-gpu", "--disable-background-networking",
                   "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
                   "--no-pdf-header-footer", f"--print-to-pdf={pdf}", page.resolve().as_uri()]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            command.insert(2, "--no-sandbox")  # Chromium refuses to run as root with its sandbox
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=180)
        except (OSError, subprocess.TimeoutExpired) as err:
            raise PkpdError(f"write_report: printing the PDF with {browser} failed: {err}") from None
    if done.returncode != 0 or not pdf.is_file():
        raise PkpdError(f"write_report: printing the PDF with {browser} failed (exit {done.returncode}): "
                        f"{done.stderr.strip()[-300:]}")
