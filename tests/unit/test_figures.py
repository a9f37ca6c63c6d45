"""Protocol-quality figures (issue 19): time in h/d/wk, doses marked, titles, labels and scales from the model file,
fractions in %, no detached offset labels, population bands with a floor, PopulationSimulation.plot, the house
style in the caller's axes, and legends that never cover data."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

import pkpd  # noqa: E402
from pkpd import plots  # noqa: E402
from pkpd.cli import main  # noqa: E402
from pkpd.errors import ModelFileError, PkpdError  # noqa: E402
from pkpd.plots import plot_simulation  # noqa: E402

REMESTEMCEL = pkpd.Regimen.every(84, "h", count=8, dose=pkpd.Dose(2e6, "cell/kg"))


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def msc():
    return pkpd.load_model("msc_salvadori")


@pytest.fixture(scope="module")
def six_weeks(msc):
    return pkpd.simulate(msc, REMESTEMCEL, np.arange(0, 1009.0), covariates={"WT": 70})


@pytest.fixture(scope="module")
def population(msc):
    rng = np.random.default_rng(3)
    n = 60
    return pkpd.simulate(msc, REMESTEMCEL, np.arange(0, 1009.0, 4.0),
                         params={"k_c": 0.0289 * np.exp(0.4 * rng.standard_normal(n))},
                         covariates={"WT": rng.uniform(50, 100, n)})


def _ylabel(ax) -> str:
    """The y label on one line (figures wrap long labels onto two)."""
    return " ".join(ax.get_ylabel().split())


def _curve(ax):
    """The first drawn curve (not the dose markers)."""
    return next(line for line in ax.get_lines() if line.get_marker() != "v")


def _markers(ax):
    return next(line for line in ax.get_lines() if line.get_marker() == "v")


def _overlaps(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def _legend_clear_of_data(fig) -> None:
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    legends = list(fig.legends) + [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    assert legends, "the figure has no legend"
    for legend in legends:
        box = legend.get_window_extent(renderer)
        for ax in fig.axes:
            assert not _overlaps(box, ax.get_window_extent(renderer)), f"the legend covers panel {_ylabel(ax)!r}"


# --- time axis -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("hours, unit", [(24, "h"), (96, "h"), (97, "d"), (1008, "d"), (8 * 168, "d"),
                                         (8 * 168 + 1, "wk")])
def test_the_time_unit_follows_the_horizon(hours, unit):
    assert plots.time_unit_for(hours) == unit


def test_a_six_week_course_is_drawn_in_days_with_weekly_ticks(six_weeks):
    fig = plot_simulation(six_weeks, "IL10")
    ax = fig.axes[0]
    assert ax.get_xlabel() == "Time [d]"
    np.testing.assert_allclose(_curve(ax).get_xdata(), six_weeks.times / 24.0)
    ticks = ax.get_xticks()
    assert np.allclose(np.diff(ticks), 7.0)


def test_time_unit_can_be_chosen(six_weeks):
    ax = plot_simulation(six_weeks, "IL10", time_unit="wk").axes[0]
    assert ax.get_xlabel() == "Time [wk]"
    assert _curve(ax).get_xdata()[-1] == pytest.approx(6.0)
    with pytest.raises(PkpdError, match="time_unit must be one of min, h, d, wk; got 'days'"):
        plot_simulation(six_weeks, "IL10", time_unit="days")


def test_an_overlay_keeps_the_time_unit_of_the_axes(six_weeks, msc):
    fig = plot_simulation(six_weeks, "IL10", label="6 weeks")
    short = pkpd.simulate(msc, REMESTEMCEL, np.arange(0, 97.0), covariates={"WT": 70})  # alone: hours
    plot_simulation(short, "IL10", ax=fig.axes, label="4 days")
    assert fig.axes[0].get_xlabel() == "Time [d]"
    assert max(line.get_xdata()[-1] for line in fig.axes[0].get_lines() if line.get_marker() != "v") == 42.0


# --- doses, titles, labels -------------------------------------------------------------------------------------------
def test_doses_are_marked_at_their_times_in_every_panel(six_weeks):
    fig = plot_simulation(six_weeks, ["cells", "IL10"])
    for ax in fig.axes:
        np.testing.assert_allclose(_markers(ax).get_xdata(), np.arange(8) * 84 / 24.0)


def test_infusions_are_marked_from_start_to_end(msc):
    regimen = pkpd.Regimen.every(24, "h", count=2, dose=pkpd.Dose(1e6, "cell/kg"), duration=6)
    sim = pkpd.simulate(msc, regimen, np.arange(0, 73.0), covariates={"WT": 70})
    ax = plot_simulation(sim, "cells").axes[0]
    np.testing.assert_allclose(_markers(ax).get_xdata(), [0.0, 24.0])
    spans = sorted((round(p.get_path().get_extents(p.get_patch_transform()).x0, 9),
                    round(p.get_path().get_extents(p.get_patch_transform()).x1, 9)) for p in ax.patches)
    assert spans == [(0.0, 6.0), (24.0, 30.0)]


def test_the_figure_has_a_title_naming_model_and_regimen(six_weeks):
    fig = plot_simulation(six_weeks)
    assert fig.get_suptitle() == "msc_salvadori v1.0: 8 doses of 2×10⁶ cell/kg every 84 h from t=0 h, bolus"


def test_labels_come_from_the_model_file_and_fractions_are_in_percent(six_weeks):
    fig = plot_simulation(six_weeks, ["reprogrammed", "IL10"])
    frac, il10 = fig.axes
    assert _ylabel(frac) == "Reprogrammed macrophages [%]"
    np.testing.assert_allclose(_curve(frac).get_ydata(), 100 * six_weeks["reprogrammed"][0])
    assert _ylabel(il10) == "Plasma IL-10 [pg/mL]"


def test_a_dimensionless_quantity_that_is_not_a_fraction_has_no_unit():
    sim = pkpd.simulate(pkpd.load_model("msc_sepsis"), None, np.arange(0, 49.0))
    ax = plot_simulation(sim, "licensing_fold").axes[0]
    assert _ylabel(ax) == "MSC licensing (fold PGE2 secretion)"


def test_no_detached_offset_or_exponent_labels(msc):
    sim = pkpd.simulate(msc, pkpd.Regimen.single(pkpd.Dose(2e6, "cell/kg")), np.arange(0, 49.0),
                        covariates={"WT": 70})
    fig = plot_simulation(sim, ["cells", "PGE2"], log_y=False)  # cells on a linear axis: values up to 1.2e8
    fig.canvas.draw()
    for ax in fig.axes:
        assert ax.yaxis.get_offset_text().get_text() == ""
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert any("10^{8}" in text for text in labels), labels


@pytest.mark.parametrize("value, text", [(0.0, "0"), (25.0, "25"), (0.0125, "0.0125"), (1.2e8, r"$1.2\times10^{8}$"),
                                         (1e8, "$10^{8}$"), (-3e-5, r"$-3\times10^{-5}$")])
def test_tick_labels_carry_their_own_magnitude(value, text):
    assert plots._tick_text(value) == text


# --- scales ---------------------------------------------------------------------------------------------------------
def test_the_scale_declared_in_the_model_file_wins(six_weeks):
    fig = plot_simulation(six_weeks, ["cells", "PGE2", "stimulus"])
    assert [ax.get_yscale() for ax in fig.axes] == ["log", "linear", "linear"]  # cells starts at 0 yet is log


def test_without_a_declaration_dimensionless_is_linear_and_wide_ranges_are_log():
    tmdd = pkpd.load_model("tmdd")
    assert [o.scale for o in tmdd.outputs[:2]] == ["", ""]
    assert not plots._log_scale("", "1", np.array([1e-6, 1.0]))
    assert plots._log_scale("", "nmol/L", np.array([1e-3, 10.0]))
    assert not plots._log_scale("", "nmol/L", np.array([1.0, 10.0]))


def test_population_bands_stop_at_one_cell(population):
    ax = population.plot("cells").axes[0]
    assert ax.get_yscale() == "log"
    assert ax.get_ylim()[0] >= 1.0
    band = next(c for c in ax.collections if c.get_paths())
    assert band.get_paths()[0].vertices[:, 1].min() >= 1.0 - 1e-9
    # below the floor there is no cell: the 5th percentile really does fall below 1 cell here
    assert np.percentile(population["cells"], 5, axis=0).min() < 1.0


def test_model_file_label_and_scale_are_checked_and_round_trip(tmp_path):
    text = pkpd.load.dump_model(pkpd.load_model("msc_salvadori"))
    assert 'label = "Plasma IL-10"' in text and 'scale = "log"' in text
    path = tmp_path / "m.toml"
    path.write_text(text)
    assert pkpd.load_model(path) == pkpd.load_model("msc_salvadori")
    path.write_text(text.replace('scale = "log"', 'scale = "logarithmic"', 1))
    with pytest.raises(ModelFileError, match=r"\[outputs.cells\] scale: scale must be 'log' or 'linear'"):
        pkpd.load_model(path)


# --- population plot, style, legends ------------------------------------------------------------------------------
def test_population_simulation_plot_draws_its_bands():
    people = pd.DataFrame({"WT": np.linspace(50.0, 100.0, 30)})
    pop = pkpd.simulate_population("pk_1cmt_iv", pkpd.Regimen.single(pkpd.Dose(1.4, "mg/kg")), np.arange(0, 25.0),
                                   people, iiv=pkpd.IIV({"CL": 0.09}), seed=2, percentiles=(10, 50, 90))
    fig = pop.plot()
    ax = fig.axes[0]
    np.testing.assert_allclose(_curve(ax).get_ydata(), pop.bands["conc"][1])
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["median of 30 subjects", "10-90 % range", "dose"]


def test_the_callers_axes_get_the_house_style(six_weeks):
    with matplotlib.rc_context({"axes.spines.top": True, "axes.spines.right": True, "axes.grid": False}):
        fig, ax = plt.subplots()
    plot_simulation(six_weeks, "IL10", ax=ax)
    assert not ax.spines["top"].get_visible() and not ax.spines["right"].get_visible()
    assert any(line.get_visible() for line in ax.get_xgridlines())


def test_legends_never_cover_data(six_weeks, population, msc):
    _legend_clear_of_data(plot_simulation(six_weeks, label="remestemcel-L"))
    _legend_clear_of_data(population.plot(["cells", "IL10"]))
    fig, axes = plt.subplots(1, 2, figsize=(7, 3), layout="constrained")
    plot_simulation(six_weeks, ["cells", "IL10"], ax=axes, label="twice weekly")
    _legend_clear_of_data(fig)
    fig, ax = plt.subplots()  # the caller's figure, without constrained layout
    plot_simulation(six_weeks, "IL10", ax=ax, label="twice weekly")
    _legend_clear_of_data(fig)


def test_cli_time_unit_reaches_the_figure(tmp_path, monkeypatch):
    seen = []
    real = plots.save_figure
    monkeypatch.setattr(plots, "save_figure", lambda fig, path: seen.append(fig.axes[0].get_xlabel())
                        or real(fig, path))
    assert main(["simulate", "msc_salvadori", "--dose", "2e6", "--dose-unit", "cell/kg", "--weight", "70",
                 "--until", "168", "--time-unit", "wk", "--plot", str(tmp_path / "s.png")]) == 0
    assert seen == ["Time [wk]"]
