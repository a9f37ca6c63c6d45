"""Unit tests for pkpd.plots (public API only; one behaviour per test)."""

from __future__ import annotations

import subprocess
import sys

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import PolyCollection  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402

import pkpd  # noqa: E402
from pkpd.errors import PkpdError  # noqa: E402
from pkpd.plots import ARM_COLORS, HOUSE_STYLE, MAX_LINES, plot_simulation, save_figure  # noqa: E402

MG = pkpd.Dose(100, "mg")


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


# Simulations are frozen results; module scope only saves compile and solve time.
@pytest.fixture(scope="module")
def msc():
    """One subject of msc_salvadori (5 outputs), 0-48 h."""
    reg = pkpd.Regimen.single(pkpd.Dose(2e6, "cell/kg"))
    return pkpd.simulate(pkpd.load_model("msc_salvadori"), reg, np.arange(0, 49.0), covariates={"WT": 70})


def _pk(n_subjects: int, until: float = 24.0):
    """pk_1cmt_iv, 100 mg bolus, ``n_subjects`` subjects with clearances from 2.8 (the typical value) to 4 L/h."""
    cl = np.linspace(2.8, 4.0, n_subjects)
    return pkpd.simulate(pkpd.load_model("pk_1cmt_iv"), pkpd.Regimen.single(MG), np.linspace(0, until, 49),
                         params={"CL": cl})


@pytest.fixture(scope="module")
def few():
    return _pk(3)


@pytest.fixture(scope="module")
def many():
    return _pk(MAX_LINES + 10)


def _ylabel(ax) -> str:
    """The y label on one line (figures wrap long labels onto two)."""
    return " ".join(ax.get_ylabel().split())


def _legend(fig) -> list[str]:
    # one legend per figure, outside the panels (issue 19: legends never cover data)
    legend = fig.legends[0] if fig.legends else fig.axes[-1].get_legend()
    return [t.get_text() for t in legend.get_texts()] if legend is not None else []


# --- import ------------------------------------------------------------------------------------------------------


def test_importing_pkpd_plots_does_not_import_matplotlib():
    code = "import pkpd.plots, sys; print('matplotlib' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


# --- panels and labels ---------------------------------------------------------------------------------------------


def test_one_panel_per_output_by_default(msc):
    fig = plot_simulation(msc)
    assert len(fig.axes) == len(msc.outputs) == 5


def test_every_axis_names_its_quantity_and_unit(msc):
    # labels from the model file (issue 19); fractions in %
    labels = {"cells": "Viable MSCs in the lung [cells]", "PGE2": "Effect-site PGE2 [pg/mL]",
              "reprogrammed": "Reprogrammed macrophages [%]", "IL10": "Plasma IL-10 [pg/mL]",
              "stimulus": "PGE2 stimulus [%]"}
    fig = plot_simulation(msc)
    for ax, name in zip(fig.axes, msc.outputs):
        assert ax.get_xlabel() == "Time [h]"
        assert _ylabel(ax) == labels[name]


def test_names_choose_the_panels_and_their_order_including_states(msc):
    fig = plot_simulation(msc, ["IL10", "C"])
    assert [_ylabel(ax) for ax in fig.axes] == ["Plasma IL-10 [pg/mL]", "C [cells]"]


def test_a_single_name_may_be_given_as_a_string(msc):
    assert len(plot_simulation(msc, "PGE2").axes) == 1


def test_unknown_name_is_an_error_with_close_matches(msc):
    with pytest.raises(PkpdError, match="'IL-10'.*Did you mean 'IL10'"):
        plot_simulation(msc, ["IL-10"])


def test_the_method_on_simulation_draws_the_same_panels(msc):
    fig = msc.plot(["cells", "IL10"])
    assert [_ylabel(ax) for ax in fig.axes] == ["Viable MSCs in the lung [cells]", "Plasma IL-10 [pg/mL]"]


# --- lines versus bands --------------------------------------------------------------------------------------------


def test_few_subjects_are_drawn_as_one_line_each(few):
    ax = plot_simulation(few, doses=False).axes[0]
    assert len(ax.get_lines()) == 3
    assert not [c for c in ax.collections if isinstance(c, PolyCollection)]
    np.testing.assert_array_equal(ax.get_lines()[2].get_ydata(), few.outputs["conc"][2])


def test_many_subjects_are_drawn_as_median_and_5_95_band(many):
    fig = plot_simulation(many, doses=False)
    ax = fig.axes[0]
    assert len(ax.get_lines()) == 1
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), np.percentile(many.outputs["conc"], 50, axis=0))
    bands = [c for c in ax.collections if isinstance(c, PolyCollection)]
    assert len(bands) == 1
    y = bands[0].get_paths()[0].vertices[:, 1]
    p5, p95 = np.percentile(many.outputs["conc"], [5, 95], axis=0)
    np.testing.assert_allclose([y.min(), y.max()], [p5.min(), p95.max()])
    assert _legend(fig) == [f"median of {MAX_LINES + 10} subjects", "5-95 % range"]


def test_bands_draws_a_band_with_the_given_percentiles_even_for_few_subjects(few):
    fig = plot_simulation(few, bands=(10, 50, 90))
    assert len(fig.axes[0].get_lines()) == 2  # the median and the dose marker
    assert _legend(fig) == ["median of 3 subjects", "10-90 % range", "dose"]


def test_bands_false_draws_lines_even_for_many_subjects(many):
    ax = plot_simulation(many, bands=False, doses=False).axes[0]
    assert len(ax.get_lines()) == many.n_subjects


@pytest.mark.parametrize("bands", [(95, 50, 5), (5, 95), (0, 50, 101), True, "5-95"])
def test_invalid_bands_are_an_error(few, bands):
    with pytest.raises(PkpdError, match="bands"):
        plot_simulation(few, bands=bands)


def test_subjects_selects_subjects_by_id(few):
    ax = plot_simulation(few, subjects=[3, 1], doses=False).axes[0]
    assert len(ax.get_lines()) == 2
    np.testing.assert_array_equal(ax.get_lines()[0].get_ydata(), few.outputs["conc"][2])


def test_unknown_subject_id_is_an_error(few):
    with pytest.raises(PkpdError, match="no subject with ID 7"):
        plot_simulation(few, subjects=[7])


# --- log scale -----------------------------------------------------------------------------------------------------


def test_positive_output_spanning_more_than_3_decades_gets_a_log_axis():
    sim = _pk(1, until=200.0)  # exp(-2.8/32 * 200) ~ 1e-8 of the peak
    assert plot_simulation(sim).axes[0].get_yscale() == "log"


def test_output_spanning_less_than_3_decades_keeps_a_linear_axis(few, msc):
    assert plot_simulation(few).axes[0].get_yscale() == "linear"
    assert plot_simulation(msc, "PGE2").axes[0].get_yscale() == "linear"


def test_log_y_overrides_the_automatic_choice(few):
    assert plot_simulation(few, log_y=True).axes[0].get_yscale() == "log"
    assert plot_simulation(_pk(1, until=200.0), log_y=False).axes[0].get_yscale() == "linear"


# --- overlaying ----------------------------------------------------------------------------------------------------


def test_overlay_draws_into_the_same_axes_with_the_next_arm_colour_and_one_legend(few, many):
    fig = plot_simulation(few, label="arm A")
    again = plot_simulation(many, ax=fig.axes, label="arm B")
    assert again is fig and len(fig.axes) == 1
    colours = {to_hex(line.get_color()) for line in fig.axes[0].get_lines()}
    assert colours == {ARM_COLORS[0].lower(), ARM_COLORS[1].lower()}  # the doses too, in their arm's colour
    assert _legend(fig) == ["arm A (3 subjects)", f"arm B: median of {many.n_subjects} subjects",
                            "arm B: 5-95 % range", "doses"]


def test_overlay_keeps_the_scale_of_the_first_plot(few):
    fig = plot_simulation(_pk(1, until=200.0))
    plot_simulation(_pk(1, until=200.0), ax=fig.axes, label="again")
    assert fig.axes[0].get_yscale() == "log"


def test_overlay_onto_a_panel_of_another_quantity_is_an_error(msc):
    fig = plot_simulation(msc, ["IL10", "PGE2"])
    with pytest.raises(PkpdError, match=r"ax\[0\] shows 'Plasma IL-10 \[pg/mL\]'.*'Effect-site PGE2 \[pg/mL\]'"):
        plot_simulation(msc, ["PGE2", "IL10"], ax=fig.axes)


def test_overlay_with_a_different_number_of_axes_is_an_error(msc):
    fig = plot_simulation(msc, ["IL10", "PGE2"])
    with pytest.raises(PkpdError, match="got 2 axes for 5 quantities"):
        plot_simulation(msc, ax=fig.axes)


def test_a_single_axes_of_the_callers_figure_is_accepted(few):
    fig, ax = plt.subplots()
    assert plot_simulation(few, ax=ax) is fig
    assert _ylabel(ax) == "conc [mg/L]"


def test_color_sets_the_colour_of_the_simulation(few):
    ax = plot_simulation(few, color="#000000", doses=False).axes[0]
    assert {to_hex(line.get_color()) for line in ax.get_lines()} == {"#000000"}


def test_arm_colours_are_distinct_hex_colours():
    assert len(set(ARM_COLORS)) == len(ARM_COLORS) >= 6
    assert all(to_hex(c) == c.lower() for c in ARM_COLORS)


def test_house_style_is_valid_for_matplotlib():
    with matplotlib.rc_context(HOUSE_STYLE):
        assert matplotlib.rcParams["savefig.dpi"] == 300


# --- saving --------------------------------------------------------------------------------------------------------


def test_save_figure_writes_png_at_300_dpi(few, tmp_path):
    fig = plot_simulation(few)
    path = save_figure(fig, tmp_path / "conc.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = fig.get_size_inches()
    assert plt.imread(path).shape[:2] == (round(height * 300), round(width * 300))


@pytest.mark.parametrize(("suffix", "magic"), [(".svg", b"<?xml"), (".pdf", b"%PDF"), (".PNG", b"\x89PNG")])
def test_save_figure_chooses_the_format_from_the_suffix(few, tmp_path, suffix, magic):
    path = save_figure(plot_simulation(few), tmp_path / f"conc{suffix}")
    assert path.read_bytes().startswith(magic)


def test_saving_the_same_figure_twice_gives_the_same_svg(few, tmp_path):
    fig = plot_simulation(few)
    first = save_figure(fig, tmp_path / "a.svg").read_bytes()
    assert save_figure(fig, tmp_path / "b.svg").read_bytes() == first


def test_save_figure_rejects_an_unknown_suffix(few, tmp_path):
    with pytest.raises(PkpdError, match=r"\.png, \.svg or \.pdf; got .*conc\.jpg"):
        save_figure(plot_simulation(few), tmp_path / "conc.jpg")


def test_save_figure_names_a_missing_folder(few, tmp_path):
    with pytest.raises(PkpdError, match="does not exist"):
        save_figure(plot_simulation(few), tmp_path / "missing" / "conc.png")
