"""Forward sensitivities without the terms that are identically zero (issue 16, SAEM speed): a state that does not
depend on a parameter has a derivative 0 by it along every trajectory, so the generated system leaves out the
chain-rule terms through that derivative. Checked against the dependence read off the model by hand and against
central differences of the predictions."""

import numpy as np
import pandas as pd
import pytest

import pkpd
from pkpd import expressions as ex
from pkpd.estimation._compiled import available
from pkpd.estimation._derivative_system import (
    ROOT,
    closed,
    derivative_system,
    parameter_dependence,
    state_name,
)

needs_compiler = pytest.mark.skipif(not available(), reason="no C compiler")
MSC = pkpd.load_model("msc_salvadori")


def test_the_dependence_follows_the_states_derived_quantities_and_doses():
    names = MSC.parameter_names
    dep = parameter_dependence(MSC, names)
    by_name = {s: {names[k] for k in dep[s]} for s in MSC.state_names}
    # the lung cells: their loss rate, and the trapped fraction through the dose factor
    assert by_name["C"] == {"k_c", "f_lung"}
    # effect-site PGE2: the cells, their secretion and its own turnover (baseline through k_in_p = P_base k_p)
    assert by_name["P"] == {"k_c", "f_lung", "s_p", "V_p", "k_p", "P_base"}
    # the reprogrammed fraction and IL-10 add the PD parameters; nothing upstream depends on them
    assert {"EC50", "h", "k_on", "k_off"} <= by_name["R"] and "e_max" not in by_name["P"]
    assert {"e_max", "k_i", "EC50"} <= by_name["I"]


def test_the_sensitivities_of_states_that_do_not_depend_on_a_parameter_have_a_zero_equation():
    names = MSC.parameter_names
    params = (names.index("EC50"), names.index("e_max"))
    system = derivative_system(MSC, params, closed([(0,), (1,)]), ())
    states = MSC.state_names
    for m in ((0,), (1,)):
        for s in ("C", "P"):
            k = system.states.index(state_name(states.index(s), m))
            assert system.ddt[k] == ex.Num(0.0) and system.initial[k] == ex.Num(0.0)
        k = system.states.index(state_name(states.index("I"), m))
        assert system.ddt[k] != ex.Num(0.0)
    # and the equations of R's and I's derivatives no longer mention the zero ones
    used = set().union(*(ex.names(t) for t in system.ddt))
    assert not {state_name(states.index(s), m) for s in ("C", "P") for m in ((0,), (1,))} & used


def _study():
    rows = []
    for i, wt in enumerate((55.0, 70.0, 90.0)):
        rows.append(dict(ID=i + 1, TIME=0.0, DV=np.nan, AMT=2e6, EVID=1, MDV=1, DVID=".", WT=wt))
        rows += [dict(ID=i + 1, TIME=t, DV=10.0, AMT=0.0, EVID=0, MDV=0, DVID=o, WT=wt)
                 for t in (6.0, 24.0, 72.0) for o in ("PGE2", "IL10")]
    from pkpd.nonmem import read_nonmem

    return read_nonmem(pd.DataFrame(rows), MSC, dose_unit="cell/kg")


@needs_compiler
def test_compiled_sensitivities_through_the_whole_chain_equal_central_differences():
    from pkpd.estimation._batch_predict import CompiledPredictor
    from pkpd.estimation.population_fit import _setup

    names = MSC.parameter_names
    which = ("k_c", "s_p", "EC50", "e_max", "k_i")   # upstream of every state, mid-chain, and PD-only parameters
    _, _, _, layout, prob = _setup(MSC, _study(), pkpd.IIV({"k_c": 0.1}),
                                   {"PGE2": pkpd.Proportional(cv=0.2), "IL10": pkpd.Proportional(cv=0.2)},
                                   "focei", list(which), None, pkpd.SolverSettings(rtol=1e-10, atol=1e-12), None)
    cols = tuple(names.index(p) for p in which)
    fast = CompiledPredictor(prob, layout, cols)
    P = np.repeat(prob.base[None, None, :prob.n_params], prob.n, axis=1).copy()
    P[0, :, cols[0]] *= (0.8, 1.0, 1.3)                # subjects that differ
    F, dF = fast.predict_sensitivities(P)
    assert np.all(np.isfinite(F[:, prob.mask]))
    for a, c in enumerate(cols):
        h = 1e-4 * P[0, 0, c]
        up, down = P.copy(), P.copy()
        up[..., c] += h
        down[..., c] -= h
        fd = (fast.predict(up) - fast.predict(down)) / (2 * h)
        np.testing.assert_allclose(dF[..., a][:, prob.mask], fd[:, prob.mask], rtol=2e-5,
                                   atol=1e-7 * np.abs(fd[:, prob.mask]).max(), err_msg=names[c])
    # e_max acts on IL-10 only: PGE2's derivative by it is exactly 0
    pge2 = prob.mask & (prob.which == 0)
    assert np.all(dF[..., which.index("e_max")][:, pge2] == 0.0)


def test_the_root_system_is_unchanged():
    system = derivative_system(MSC, (), (ROOT,), ())
    assert len(system.states) == len(MSC.state_names)
