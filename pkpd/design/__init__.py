"""Optimal design of population studies: the Fisher information of a design, the precision it predicts, and
D-/ED-optimal sampling times and doses under constraints.

* :class:`Group`, :class:`Design` -- groups of subjects (regimen, sampling times per output, size, covariates);
* :func:`evaluate_design` -> :class:`DesignEvaluation` -- population FIM (FO or PopED's FOCE linearisation, reduced
  or full), predicted SE and RSE of every parameter, ln det FIM (:mod:`pkpd.design.fim`);
* :class:`DesignSpace` and :func:`optimize_design` -> :class:`OptimizedDesign` -- sampling times (and doses) that
  maximise the D or ED criterion while keeping every constraint: samples per subject, windows, minimum spacing,
  dose ranges (:mod:`pkpd.design.optimize`); a design table and a plot of the times on the predicted profiles.

The FIM follows PopED's and PFIM's conventions and reproduces PopED's published warfarin example
(``tests/reference/test_design_poped.py``); predicted RSEs are checked against simulation and re-estimation
(``benchmarks/design_sse.py``).

Examples
--------
>>> import pkpd
>>> from pkpd.design import Design, Group, evaluate_design
>>> g = Group(pkpd.Regimen.single(pkpd.Dose(100, "mg")), [0.5, 2, 8, 24], size=24)
>>> ev = evaluate_design("pk_1cmt_iv", Design([g]), iiv={"CL": 0.09, "V": 0.04}, error=pkpd.Proportional(cv=0.1))
>>> ev.names
('CL', 'V', 'omega2_CL', 'omega2_V', 'cv')
"""

from .designs import Design, DesignSpace, Group, scale_regimen
from .fim import APPROXIMATIONS, FIM_TYPES, DesignEvaluation, evaluate_design
from .optimize import CRITERIA, OptimizedDesign, optimize_design

__all__ = ["APPROXIMATIONS", "CRITERIA", "FIM_TYPES", "Design", "DesignEvaluation", "DesignSpace", "Group",
           "OptimizedDesign", "evaluate_design", "optimize_design", "scale_regimen"]
