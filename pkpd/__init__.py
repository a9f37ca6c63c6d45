"""pkpd: PK-PD modelling of mesenchymal stem/stromal cell (MSC) therapies.

The data flow (one direction, each arrow a plain function on immutable objects)::

    models/*.toml --load_model--> Model --compile_model--> CompiledModel --+
                                          Regimen (dosing) ----------------+--simulate()--> Simulation --> plots
                                                                           +--simulate_summary()--> PopulationSummary
                                          params / covariates -------------+       ^
    NONMEM-layout data (read_nonmem) --fit(estimate, error models, BLQ)-----------+--> FitResult --> plots

Public API, in pipeline order:

* declare: :func:`load_model`, :func:`models`, :class:`Model` (and its parts)
* dose: :class:`Dose`, :class:`Bolus`, :class:`Infusion`, :class:`Regimen`
* simulate: :class:`SolverSettings`, :func:`simulate`, :class:`Simulation`; for millions of subjects in bounded
  memory :func:`simulate_summary` -> :class:`PopulationSummary` (per-time percentiles, mean, SD; per-subject
  metrics :class:`AUC`, :class:`Cmax`, :class:`Tmax`, :class:`TimeAbove`), with a progress bar
* fit: error models :class:`Additive`, :class:`Proportional`, :class:`Combined`, :class:`LogNormal`; BLQ rules
  :class:`M1`, :class:`M3`, :class:`M4`; :func:`fit` -> :class:`FitResult` (or :class:`SubjectFits`);
  :func:`profile_likelihood`, :func:`bootstrap`, :func:`identifiability`, :func:`likelihood_ratio_test`;
  stochastic simulation and estimation (bias, precision, CI coverage of a design) :func:`simulation_estimation`
* population: between-subject variability :class:`IIV`, :class:`CovariateEffect`; virtual patients
  :func:`virtual_population` (covariate distributions :class:`Normal`, :class:`LogNormalCovariate`,
  :class:`Uniform`, :class:`Categorical`, inclusion criteria) -> :func:`simulate_population` (bands);
  mixed-effects estimation :func:`fit_population` (FO, FOCE, FOCE-I, Laplace; NONMEM's objective; SAEM
  with :class:`SaemSettings` and the likelihood by importance sampling),
  :func:`bootstrap_population` (resampling subjects), inter-occasion variability :class:`IOV`
  -> :class:`PopulationFit`
* prior knowledge: priors in model files (:class:`LogNormalPrior`, :class:`NormalPrior`, :class:`LogitNormalPrior`,
  :class:`UniformPrior`, :class:`HalfNormalPrior`; :class:`InverseWishart` on Omega) for maximum a posteriori fits
  (``priors=True``) and full posteriors :func:`sample` -> :class:`Posterior` (NUTS, extra ``pkpd[bayes]``)
* metrics and scenarios: per-subject metrics in :mod:`pkpd.metrics` (Cmax, Tmax, AUC, time above, nadir, change
  from baseline) named as an :class:`Endpoint`; NCA of observed data :func:`nca` / :func:`nca_profile`;
  :class:`Scenario` (model, :class:`LogNormalPopulation` or :class:`GivenPopulation`, :class:`Arm` s, endpoints,
  :class:`Target` s; or :func:`load_scenario` from TOML) -> :func:`run_scenario` -> :class:`ScenarioResult` (tidy
  table, per-arm summaries, target attainment, ED50/ED90 from :func:`fit_dose_response`); :func:`write_report`
* clinical endpoints: model-file outputs with their own likelihood (time to event, binary, ordinal, count;
  :mod:`pkpd.endpoints`), fitted exactly by :func:`fit` and :func:`fit_population` (Laplace), drawn by
  :func:`simulate` (``Simulation.outcomes``, :mod:`pkpd.outcomes`); :func:`kaplan_meier`, Kaplan-Meier VPC
  :func:`km_vpc` and categorical VPC :func:`categorical_vpc`; scenario metrics ``probability_at``,
  ``survival_at``, ``median_time_to_event``, ``expected_count``
* sensitivity: :func:`local_sensitivity`; :func:`sobol_indices` and :func:`morris_screening` of any function, e.g.
  :func:`endpoint_function` of a model over :func:`parameter_ranges`; notebook sliders: :func:`explore`

Every public submodule is an attribute too, after a plain ``import pkpd`` (``pkpd.nonmem.read_nonmem``,
``pkpd.nlme.vpc``, ``pkpd.plots.save_figure``, ``pkpd.report.write_report``...).

Nothing heavy happens at import: pint, numba (the fallback engine) and matplotlib load on first use, as do the
submodules. The default engine builds generated C with the system C compiler (:mod:`pkpd.compile`).

Scale-out: :func:`simulate_summary`, :func:`run_scenario`, :func:`bootstrap`, :func:`simulation_estimation`,
:func:`pkpd.nlme.vpc`, :func:`sobol_indices` and :func:`morris_screening` take ``client=`` (a ``dask.distributed``
client, cluster or scheduler address; ``pip install -e '.[distributed]'``) and give the same result as locally;
bootstrap and simulation-estimation replicates use all local cores by default (``workers=``).
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_LAZY = {
    # declare
    "load_model": "pkpd.load",
    "models": "pkpd.load",
    "Model": "pkpd.model",
    "Parameter": "pkpd.model",
    "Covariate": "pkpd.model",
    "Derived": "pkpd.model",
    "State": "pkpd.model",
    "Output": "pkpd.model",
    "DoseTarget": "pkpd.model",
    # compile
    "compile_model": "pkpd.compile",
    "CompiledModel": "pkpd.compile",
    # dose
    "Dose": "pkpd.dosing",
    "Bolus": "pkpd.dosing",
    "Infusion": "pkpd.dosing",
    "Regimen": "pkpd.dosing",
    # simulate
    "SolverSettings": "pkpd.settings",
    "simulate": "pkpd.simulation",
    "Simulation": "pkpd.simulation",
    "simulate_summary": "pkpd.summaries",
    "PopulationSummary": "pkpd.summaries",
    "AUC": "pkpd.summaries",
    "Cmax": "pkpd.summaries",
    "Tmax": "pkpd.summaries",
    "TimeAbove": "pkpd.summaries",
    # fit
    "Additive": "pkpd.error_models",
    "Proportional": "pkpd.error_models",
    "Combined": "pkpd.error_models",
    "LogNormal": "pkpd.error_models",
    "M1": "pkpd.error_models",
    "M3": "pkpd.error_models",
    "M4": "pkpd.error_models",
    "fit": "pkpd.estimation.individual",
    "FitResult": "pkpd.estimation.individual",
    "SubjectFits": "pkpd.estimation.individual",
    "profile_likelihood": "pkpd.estimation.uncertainty",
    "ProfileLikelihood": "pkpd.estimation.uncertainty",
    "bootstrap": "pkpd.estimation.uncertainty",
    "Bootstrap": "pkpd.estimation.uncertainty",
    "identifiability": "pkpd.estimation.uncertainty",
    "Identifiability": "pkpd.estimation.uncertainty",
    "likelihood_ratio_test": "pkpd.estimation.uncertainty",
    "LikelihoodRatioTest": "pkpd.estimation.uncertainty",
    "simulation_estimation": "pkpd.sse",
    "SimulationEstimation": "pkpd.sse",
    "load_fit": "pkpd.fit_files",
    "ParameterUncertainty": "pkpd.uncertainty",
    # population
    "IIV": "pkpd.population",
    "IOV": "pkpd.population",
    "CovariateEffect": "pkpd.population",
    "Normal": "pkpd.population",
    "LogNormalCovariate": "pkpd.population",
    "Uniform": "pkpd.population",
    "Categorical": "pkpd.population",
    "virtual_population": "pkpd.population",
    "VirtualPopulation": "pkpd.population",
    "simulate_population": "pkpd.population",
    "PopulationSimulation": "pkpd.population",
    "fit_population": "pkpd.estimation.population_fit",
    "bootstrap_population": "pkpd.estimation.uncertainty",
    "PopulationFit": "pkpd.estimation.population_fit",
    "SaemSettings": "pkpd.saem",
    # prior knowledge and posteriors
    "LogNormalPrior": "pkpd.priors",
    "NormalPrior": "pkpd.priors",
    "LogitNormalPrior": "pkpd.priors",
    "UniformPrior": "pkpd.priors",
    "HalfNormalPrior": "pkpd.priors",
    "InverseWishart": "pkpd.priors",
    "sample": "pkpd.bayes",
    "Posterior": "pkpd.bayes",
    # clinical endpoints
    "kaplan_meier": "pkpd.endpoint_vpc",
    "km_vpc": "pkpd.endpoint_vpc",
    "KaplanMeierVPC": "pkpd.endpoint_vpc",
    "categorical_vpc": "pkpd.endpoint_vpc",
    "CategoricalVPC": "pkpd.endpoint_vpc",
    # metrics
    "Endpoint": "pkpd.metrics",
    "nca": "pkpd.noncompartmental",
    "nca_profile": "pkpd.noncompartmental",
    "NCAResult": "pkpd.noncompartmental",
    "LambdaZ": "pkpd.noncompartmental",
    "nca_sparse": "pkpd.noncompartmental",
    # scenarios
    "Arm": "pkpd.scenarios",
    "dose_ranging_arms": "pkpd.scenarios",
    "LogNormalPopulation": "pkpd.scenarios",
    "GivenPopulation": "pkpd.scenarios",
    "VirtualPatients": "pkpd.scenarios",
    "Target": "pkpd.scenarios",
    "Scenario": "pkpd.scenarios",
    "load_scenario": "pkpd.scenarios",
    "run_scenario": "pkpd.scenarios",
    "ScenarioResult": "pkpd.scenarios",
    "fit_dose_response": "pkpd.scenarios",
    "DoseResponseFit": "pkpd.scenarios",
    # sensitivity
    "local_sensitivity": "pkpd.sensitivity",
    "LocalSensitivity": "pkpd.sensitivity",
    "parameter_ranges": "pkpd.sensitivity",
    "endpoint_function": "pkpd.sensitivity",
    "sobol_indices": "pkpd.sensitivity",
    "SobolResult": "pkpd.sensitivity",
    "morris_screening": "pkpd.sensitivity",
    "MorrisResult": "pkpd.sensitivity",
    # protocol outputs
    "write_report": "pkpd.report",
    "explore": "pkpd.explorer",
    # errors
    "PkpdError": "pkpd.errors",
    "ModelFileError": "pkpd.errors",
    "UnitError": "pkpd.errors",
    "DosingError": "pkpd.errors",
    "DataError": "pkpd.errors",
    "SimulationError": "pkpd.errors",
    "FitError": "pkpd.errors",
    "PkpdWarning": "pkpd.errors",
    "BoundsWarning": "pkpd.errors",
    "LargeTableWarning": "pkpd.errors",
}

__all__ = list(_LAZY)

# Submodules reachable as attributes after a plain `import pkpd` (pkpd.nonmem.read_nonmem, pkpd.nlme.vpc,
# pkpd.plots.plot_gof...), imported on first access like the names above.
_SUBMODULES = ("load", "model", "endpoints", "compile", "dosing", "settings", "simulation", "outcomes", "summaries",
               "nonmem", "error_models", "fitting", "sse", "population", "nlme", "endpoint_vpc", "metrics",
               "scenarios", "sensitivity", "report", "plots", "explorer", "errors", "units", "expressions",
               "jax_backend", "cli", "priors", "saem", "importance", "bayes", "mcmc", "hmc", "closed_form",
               "linear_system",
               "noncompartmental", "uncertainty", "fit_files", "design", "model_selection", "predictive_checks",
               "decision_plots")


def __getattr__(name: str):
    # Lazy re-exports keep `import pkpd` fast; every public name and submodule resolves on first access.
    if name in _SUBMODULES:
        return importlib.import_module(f"pkpd.{name}")  # the import sets it as an attribute of the package
    try:
        module = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'pkpd' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__) | set(_SUBMODULES))
