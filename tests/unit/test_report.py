"""The scenario report a reviewer reads in one minute (issue 19): one self-contained HTML file whose first section
states the question, the model, the population, the arms and the answer; PTA against dose; flat, ill-determined and
extrapolated ED50/ED90 flagged in place; one unit per endpoint (the target's) and 3-significant-digit numbers; every
figure loads and every table has units, checked on the HTML itself and, where Chromium is installed, in the
browser."""

from __future__ import annotations

import base64
import html.parser
import io
import json
import re
import shutil
import subprocess
import tempfile

import numpy as np
import pandas as pd
import pytest

import pkpd
from pkpd.errors import PkpdError
from pkpd.metrics import Endpoint
from pkpd.report import format_number, write_report
from pkpd.scenarios import LogNormalPopulation, Scenario, Target, dose_ranging_arms, fit_dose_response, run_scenario

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
# a formatted number of the report: 3 significant digits, x10^n with superscripts, optional sign and percent
NUMBER = re.compile(r"^[-−]?(\d+(\.\d+)?(×10[⁻⁰¹²³⁴⁵⁶⁷⁸⁹]+)?|10[⁻⁰¹²³⁴⁵⁶⁷⁸⁹]+)( %)?$")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """A small dose-ranging scenario: AUC (target stated in ng*h/mL, computed in mg/L*h), the time of the peak (a
    flat response: an IV bolus peaks at t = 0 whatever the dose), 30 virtual subjects, a control arm."""
    model = pkpd.load_model("pk_1cmt_iv")
    arms = [*dose_ranging_arms("iv", [25, 50, 100, 200], "mg")]
    arms.insert(0, pkpd.Arm("control", control=True))
    endpoints = [Endpoint("conc", "auc", name="AUC", end=48), Endpoint("conc", "tmax", name="Tmax", end=48)]
    targets = [Target("AUC", ">=", 20000, unit="ng*h/mL")]
    sc = Scenario(model, arms, endpoints, targets, population=LogNormalPopulation(30, {"CL": 0.3, "V": 0.2}),
                  times=np.arange(0, 48.5, 0.5), name="1-cmt dose ranging", description="Which dose gives an AUC "
                  "of at least 20 mg*h/L in 80 % of patients?")
    result = run_scenario(sc, seed=3)
    out = tmp_path_factory.mktemp("report")
    page = write_report(result, out)
    return result, out, page.read_text(encoding="utf-8")


class _Page(html.parser.HTMLParser):
    """Tables (headers and cell texts), images and every referenced URL of a page."""

    def __init__(self):
        super().__init__()
        self.tables, self.images, self.urls, self.sections, self._cell, self._in = [], [], [], [], None, []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for key in ("src", "href"):
            if key in attrs:
                self.urls.append(attrs[key])
        if tag == "img":
            self.images.append(attrs.get("src", ""))
        elif tag == "table":
            self.tables.append({"headers": [], "rows": []})
        elif tag == "tr" and self.tables:
            self.tables[-1]["rows"].append([])
        elif tag in ("th", "td"):
            self._cell = [tag, ""]
        elif tag == "section":
            self.sections.append(attrs.get("id"))
        self._in.append(tag)

    def handle_endtag(self, tag):
        if tag in ("th", "td") and self._cell is not None:
            kind, text = self._cell
            text = " ".join(text.split())
            if kind == "th":
                self.tables[-1]["headers"].append(text)
            else:
                self.tables[-1]["rows"][-1].append(text)
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell[1] += data


def _parse(page: str) -> _Page:
    parser = _Page()
    parser.feed(page)
    return parser


def _columns_without_units(table: dict) -> list[str]:
    """Headers of numeric columns that carry no unit (none, when the table has a 'unit' column)."""
    headers = table["headers"]
    if "unit" in headers:
        return []
    rows = [r for r in table["rows"] if r]
    missing = []
    for j, head in enumerate(headers):
        cells = [r[j] for r in rows if j < len(r) and r[j] not in ("", "–")]
        numeric = cells and all(NUMBER.match(c.split(" (")[0]) for c in cells)
        if numeric and not re.search(r"\[[^\]]+\]", head):
            missing.append(head)
    return missing


# --- the HTML itself (always runs) ----------------------------------------------------------------------------------
def test_the_page_is_one_self_contained_file(report):
    _, _, page = report
    parsed = _parse(page)
    assert parsed.images, "no figure on the page"
    for url in parsed.urls:
        assert url.startswith(("data:image/png;base64,", "#")), f"the page depends on {url[:60]!r}"
    assert "<script" not in page and "<link" not in page


def test_every_embedded_figure_is_a_readable_image(report):
    import matplotlib.pyplot as plt

    for src in _parse(report[2]).images:
        data = base64.b64decode(src.split(",", 1)[1], validate=True)
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        height, width = plt.imread(io.BytesIO(data)).shape[:2]
        assert width > 300 and height > 200


def test_every_table_has_units(report):
    tables = _parse(report[2]).tables
    assert len(tables) >= 6
    for table in tables:
        assert not _columns_without_units(table), (table["headers"], _columns_without_units(table))


def test_the_first_section_states_question_model_population_arms_and_answer(report):
    result, _, page = report
    first = page.split("<section", 1)[1].split("</section>", 1)[0]
    assert "id='summary'" in first
    for words in ("Question", "Which dose gives an AUC", "pk_1cmt_iv</b> v1.0", "Population", "30 virtual subjects",
                  "Arms", "5 arms: 1 control arm", "Answer", "id='fig-target_attainment'"):
        assert words in first, words
    # the answer: the lowest dose whose PTA reaches 80 %, with its probability and interval, from the attainment table
    att = result.attainment[result.attainment["group"] != "untreated"].sort_values("dose")
    meets = att[att["probability"] >= 0.8]
    if len(meets):
        r = meets.iloc[0]
        assert (f"<b>{format_number(r['dose'])} mg</b>" in first
                and f"{format_number(100 * r['probability'])} % ({format_number(100 * r['ci_low'])}–" in first)
    else:
        assert "none of the doses tested" in first


def test_a_target_stated_in_another_unit_sets_the_unit_of_its_endpoint_everywhere(report):
    result, out, page = report
    assert "AUC [ng·h/mL]" in page and "mg/L·h" not in page
    table = next(t for t in _parse(page).tables if "median [ng·h/mL]" in t["headers"])
    median = result.summary.set_index(["arm", "endpoint"]).loc[("iv: 100 mg", "AUC"), "median"]  # in mg/L*h
    row = next(r for r in table["rows"] if r and r[0] == "iv: 100 mg")
    assert row[table["headers"].index("median [ng·h/mL]")] == format_number(1000 * median)
    csv = pd.read_csv(out / "tables" / "summary.csv")
    assert set(csv.loc[csv["endpoint"] == "AUC", "unit"]) == {"ng*h/mL"}


def test_flat_dose_responses_are_flagged_not_given_a_number(report):
    result, _, page = report
    fit = next(f for (_, ep), f in result.fits.items() if ep == "Tmax")
    assert fit.ed50_flag == fit.ed90_flag == "flat"  # an IV bolus peaks at t = 0 whatever the dose
    tmax = page.split("<caption>Tmax [h]</caption>", 1)[1].split("</table>", 1)[0]
    assert tmax.count("not determined: flat response") == 2  # ED50 and ED90 of the one schedule
    auc = page.split("<caption>AUC [ng·h/mL]</caption>", 1)[1].split("</table>", 1)[0]
    assert "not determined" not in auc


def test_numbers_have_three_significant_digits_and_one_style(report):
    text = re.sub(r"<[^>]+>", " ", report[2].split("<img", 1)[0])
    assert not re.search(r"\d[eE][+-]?\d", text), "a number in e-notation"
    for table in _parse(report[2]).tables:
        for row in table["rows"]:
            for cell in row:
                for token in re.findall(r"\d+\.\d+", cell):
                    assert len(token.replace(".", "").lstrip("0")) <= 3, (cell, table["headers"])


@pytest.mark.parametrize("value, text", [(3e5, "3×10⁵"), (1.034e4, "1.03×10⁴"), (9999.7, "10⁴"), (8914.8, "8910"),
                                         (0.0188, "0.0188"), (4.008e10, "4.01×10¹⁰"), (-2.5e-4, "-2.5×10⁻⁴"),
                                         (0.0, "0"), (float("nan"), "–")])
def test_format_number(value, text):
    assert format_number(value) == text


@pytest.mark.parametrize("responses, flag", [
    (lambda d: np.full(d.size, 3.0), "flat"),
    (lambda d: 5 + 40 * d / (8 + d), ""),
    (lambda d: 5 + 40 * d / (300 + d), "extrapolated"),
])
def test_dose_response_flags(responses, flag):
    d = np.repeat([1.0, 3, 10, 30, 100], 8)
    y = responses(d) + np.random.default_rng(0).normal(0, 0.5, d.size)
    fit = fit_dose_response(d, y)
    assert fit.ed50_flag == flag, fit
    if flag == "":  # ED50 8, ED90 9 x 8 = 72: both inside the doses tested (1-100)
        assert fit.ed90_flag == "" and not fit.message


def test_pdf_needs_a_browser_and_says_so(report, tmp_path, monkeypatch):
    import pkpd.report as rep

    monkeypatch.setattr(rep, "_chromium", lambda: None)
    with pytest.raises(PkpdError, match="headless Chromium or Google Chrome.*apt-get install chromium"):
        write_report(report[0], tmp_path, pdf=True)


# --- in a browser (Chromium, where installed) -----------------------------------------------------------------------
_CHECK = """<script>
window.addEventListener('load', () => {
  const images = [...document.images].map(i => ({ok: i.complete && i.naturalWidth > 0, w: i.naturalWidth}));
  const tables = [...document.querySelectorAll('table')].map(t => ({
    headers: [...t.querySelectorAll('thead th')].map(h => h.textContent.trim()),
    rows: [...t.querySelectorAll('tbody tr')].map(r => [...r.children].map(c => c.textContent.trim()))}));
  const out = document.createElement('pre');
  out.id = 'pkpd-check';
  out.textContent = JSON.stringify({images, tables});
  document.body.appendChild(out);
});
</script></body>"""


def _chromium(*args, timeout=120):
    with tempfile.TemporaryDirectory() as profile:
        command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                   "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}"]
        return subprocess.run([*command, *args], capture_output=True, text=True, timeout=timeout)


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian package 'chromium')")
def test_in_chromium_every_figure_loads_and_every_table_has_units(report, tmp_path):
    _, out, page = report
    probe = tmp_path / "report_probe.html"
    probe.write_text(page.replace("</body>", _CHECK), encoding="utf-8")
    done = _chromium("--virtual-time-budget=10000", "--dump-dom", probe.as_uri())
    found = re.search(r"<pre id=\"pkpd-check\">(.*?)</pre>", done.stdout, re.S)
    assert found, done.stderr[-500:]
    check = json.loads(html.unescape(found.group(1)))
    assert check["images"] and all(i["ok"] for i in check["images"]), check["images"]
    assert len(check["images"]) == len(_parse(page).images)
    for table in check["tables"]:
        assert not _columns_without_units(table), table["headers"]
    shot = tmp_path / "first_screen.png"
    _chromium("--window-size=1280,1000", f"--screenshot={shot}", (out / "report.html").as_uri())
    assert shot.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian package 'chromium')")
def test_the_report_prints_to_pdf(report, tmp_path):
    write_report(report[0], tmp_path, pdf=True)
    assert (tmp_path / "report.pdf").read_bytes()[:5] == b"%PDF-"


def test_markdown_table_keeps_columns_whose_names_are_one_identifier_after_unicode_normalisation():
    """Column names are texts: WT and a full-width ＷＴ (U+FF37 U+FF34) are two columns, though Python's NFKC
    normalisation of identifiers makes them one name; the table has both, numbers to three significant digits. (It
    failed with "SyntaxError: duplicate argument 'WT' in function definition" from the namedtuple that pandas'
    ``itertuples`` builds of the column names; found with the nonmem seed-43 mutant ``x__raw_table__mutmut_15``.)"""
    from pkpd.report import markdown_table

    frame = pd.DataFrame({"WT": [70.0, 55.55], "ＷＴ": [81.24, 1234.5678]})
    assert markdown_table(frame) == "| WT | ＷＴ |\n|---|---|\n| 70 | 81.2 |\n| 55.5 | 1230 |"


def test_the_report_of_a_run_whose_simulations_all_failed_says_so_and_draws_every_figure(tmp_path):
    """V = 0 for both subjects makes conc = A/V non-finite, so all 4 simulations fail (marked, not raised): every
    arm's PTA is NaN with 0 subjects counted. The report is still written: its answer says "no PTA: no simulation of
    the arms succeeded" (no PTA is shown as "–", not "nan %"), and the PTA figure, which has no finite point to put
    on its log dose axis, keeps a linear axis with that note in the panel; the time course, whose lines are all NaN,
    keeps a time axis over the simulated 0-24 h (it shrank to the default -0.05-0.05, its dose marks far outside,
    and the layout collapsed: matplotlib's "axes sizes collapsed to zero"). Before, write_report stopped in the
    figures with matplotlib's "Data cannot be log-scaled because all values are <= 0" (after an earlier stop in
    ScenarioResult.lowest_dose, fixed by the scenarios seed-48 round), and the answer table took pandas' "Encountered
    all NA values" from idxmax of NaNs."""
    import matplotlib.pyplot as plt

    from pkpd.errors import BoundsWarning
    from pkpd.plots import plot_target_attainment
    from pkpd.scenarios import Arm, GivenPopulation

    ep = Endpoint("conc", "cmax", end=24)
    sc = Scenario(pkpd.load_model("pk_1cmt_iv"),
                  arms=[Arm("once", pkpd.Dose(10, "mg")), Arm("twice", pkpd.Dose(10, "mg"), count=2, interval=12)],
                  endpoints=[ep], targets=[Target(ep.name, ">=", 0.2, "mg/L", name="t")],
                  population=GivenPopulation(params={"V": [0.0, 0.0]}), times=np.linspace(0, 24, 25),
                  settings=pkpd.SolverSettings(on_failure="mark"), seed=1)
    with pytest.warns(BoundsWarning):
        res = run_scenario(sc)
    assert res.n_failed == 4 and res.attainment["probability"].isna().all()
    fig = plot_target_attainment(res)
    try:
        ax = fig.axes[0]
        assert ax.get_xscale() == "linear"
        assert [t.get_text() for t in ax.texts] == ["no PTA: no simulation of these arms succeeded"]
        fig.savefig(io.BytesIO(), format="png")
    finally:
        plt.close(fig)
    from pkpd.plots import plot_time_course

    fig = plot_time_course(res)    # every line NaN: the time axis still spans the 0-24 h simulated
    try:
        assert fig.axes[0].get_xlim() == (0.0, 24.0)
        fig.savefig(io.BytesIO(), format="png")   # its dose marks fit: no "axes sizes collapsed to zero"
    finally:
        plt.close(fig)
    page = write_report(res, tmp_path).read_text(encoding="utf-8")
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", re.sub(r"<img[^>]*>", "", page)))
    assert "0.2 mg/L : no PTA : no simulation of the arms succeeded." in text
    assert text.count("no PTA: no simulation of these arms succeeded –") == 2    # one row per schedule
    assert "nan" not in text.lower().replace("nanogram", "")
    for stem in ("target_attainment", "time_course", "exposure"):
        assert (tmp_path / "figures" / f"{stem}.png").read_bytes()[:4] == b"\x89PNG"
