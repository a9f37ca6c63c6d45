"""Estimation: fitting models to data, and how sure the estimates are.

One module per concept, imported in one direction (engine and simulation never import this package; plots are
imported only inside the plotting methods):

=====================================  ============================================================================
module                                 concept
=====================================  ============================================================================
:mod:`~pkpd.estimation.data`           NONMEM datasets laid out for the estimators (designs, observations, censoring;
                                       steady-state doses and resets simulated record by record)
:mod:`~pkpd.estimation.likelihood`     residual-error likelihood of individual and pooled fits (M1/M3/M4)
:mod:`~pkpd.estimation.individual`     :func:`pkpd.fit`: individual and pooled maximum likelihood, ``FitResult``
:mod:`~pkpd.estimation.uncertainty`    profile likelihood, bootstrap (individual and population), identifiability,
                                       likelihood-ratio tests
:mod:`~pkpd.estimation.population_model`  the population parameters as one internal vector; covariate effects
:mod:`~pkpd.estimation.population_fit` :func:`pkpd.fit_population`, the objective functions (FO, FOCE, FOCE-I,
                                       Laplace), the outer optimisation, ``PopulationFit``
:mod:`~pkpd.estimation.covariance`     the covariance step (R, S, sandwich) of a population fit
:mod:`~pkpd.estimation.population_checks`  VPC and NPDE
:mod:`~pkpd.estimation.finite_difference`  the finite-difference population objective (the fallback engine)
``_objective``, ``_compiled``,         the compiled engine: forward sensitivities of any order generated from the
``_codegen``, ``_derivative_system``,  model's expression trees, C printed from indices, the parallel inner problem
``_inner_template``,                   (EBEs), the parallel per-subject assembly of the objective and its exact
``_assembly_template``, ``_jets``      gradient (``_jets``: the same in numpy, the reference)
=====================================  ============================================================================

The public names are re-exported by :mod:`pkpd` (``pkpd.fit``, ``pkpd.fit_population``...) and, as before, by
:mod:`pkpd.fitting` and :mod:`pkpd.nlme`.
"""
