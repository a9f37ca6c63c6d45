"""The interactive explorer (issue 6, item 5): ipywidgets when installed, a static figure otherwise."""

from __future__ import annotations

import sys

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import pkpd  # noqa: E402
from pkpd.errors import PkpdError  # noqa: E402
from pkpd.explorer import explore, explorer_curves  # noqa: E402


def test_without_ipywidgets_explore_returns_a_static_figure(monkeypatch):
    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # import ipywidgets now raises ImportError
    fig = explore(pkpd.load_model("msc_salvadori"), outputs=["IL10", "PGE2"], parameters=["k_c"])
    try:
        assert isinstance(fig, matplotlib.figure.Figure)
        assert [ax.get_ylabel() for ax in fig.axes] == ["IL10 [pg/mL]", "PGE2 [pg/mL]"]
        assert all(ax.get_xlabel() == "Time [h]" for ax in fig.axes)
        assert "pip install -e '.[widgets]'" in fig._suptitle.get_text()
    finally:
        plt.close(fig)


def test_static_figure_shows_the_regimen_given():
    model = pkpd.load_model("msc_salvadori")
    t, y = explorer_curves(model, dose=2e6, dose_unit="cell/kg", interval=84, count=8, until=1008,
                           covariates={"WT": 70}, outputs=["IL10"])
    sim = pkpd.simulate(model, pkpd.Regimen.every(84, count=8, dose=pkpd.Dose(2e6, "cell/kg")), t,
                        covariates={"WT": 70})
    np.testing.assert_allclose(y["IL10"], sim["IL10"][0])


def test_unknown_parameter_is_named():
    with pytest.raises(PkpdError, match="has no parameter 'kc'. Did you mean 'k_c'"):
        explore(pkpd.load_model("msc_salvadori"), parameters=["kc"], interactive=False)


def test_with_ipywidgets_explore_returns_sliders():
    widgets = pytest.importorskip("ipywidgets")
    panel = explore(pkpd.load_model("msc_salvadori"), outputs=["IL10"], parameters=["k_c", "e_max"])
    try:
        assert isinstance(panel, widgets.VBox)
        sliders = panel.children[0].children
        assert [s.description for s in sliders] == ["dose [cell/kg]", "interval [h]", "number of doses",
                                                    "k_c [1/h]", "e_max [1]"]
        sliders[2].value = 3  # a slider move redraws without error
    finally:
        plt.close("all")
