"""The ``pkpd`` command: a thin shell over the public API.

Subcommands::

    pkpd models                      list the shipped models, one line each
    pkpd show MODEL                  parameters (values, units, sources), states, outputs and dose targets
    pkpd simulate MODEL [options]    simulate a regimen; write the tidy CSV and/or a figure
    pkpd fit MODEL DATA [options]    fit parameters to NONMEM-layout data; write the parameter table, a summary
                                     and diagnostic plots
    pkpd fit-population MODEL DATA --dose-unit mg --iiv CL=0.1,V=0.1 --error conc=proportional --out DIR
                                     population (mixed-effects) estimation: FO, FOCE, FOCE-I, Laplace; parameters
                                     with units and CIs, GOF and VPC figures
    pkpd nca DATA --out FILE.csv     non-compartmental analysis of NONMEM-layout data, one row per subject and
                                     output
    pkpd scenario FILE --out DIR     run a dose-response scenario (TOML); write a one-page HTML report, figures
                                     (PNG + SVG) and tables (CSV + Markdown)

Every time given on the command line is in hours. Errors raised by pkpd (wrong model name, unknown parameter,
negative dose, missing body weight...) are printed as one line, ``pkpd: error: <message>``, with exit status 2.

Examples
--------
>>> from pkpd.cli import main
>>> main(["models"])  # doctest: +ELLIPSIS
msc_biodistribution  ...
msc_salvadori  ...
...
0
>>> main(["show", "no_such_model"])
2
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import textwrap
import warnings
from collections.abc import Sequence
from pathlib import Path

from . import __version__
from ._text import printable
from .errors import PkpdError, PkpdWarning

__all__ = ["main"]

# Output times above this are almost certainly a wrong --step (and a multi-gigabyte CSV).
_MAX_TIMES = 1_000_000
_SUMMARY_CHARS = 100
_PLOT_TIME_UNITS = ("h", "d", "wk")
# Options of `simulate` that describe the regimen, the subject or the output times: a dataset (--data) gives those,
# so they are refused with --data rather than silently ignored.
_REGIMEN_OPTIONS = (("--dose", "dose"), ("--count", "count"), ("--every", "every"), ("--start", "start"),
                    ("--infusion-hours", "infusion_hours"), ("--target", "target"), ("--weight", "weight"),
                    ("--until", "until"), ("--step", "step"), ("--include-states", "include_states"),
                    ("--time-unit", "time_unit"))

_SIMULATE_EXAMPLE = """\
example (4 doses of 2e6 MSC/kg to a 70 kg patient, every 72 h, infused over 1 h; 2 weeks at 1 h steps):
  pkpd simulate msc_salvadori --dose 2e6 --dose-unit cell/kg --weight 70 --every 72 --count 4 \\
      --infusion-hours 1 --until 336 --out sim.csv --plot sim.png

The CSV has one row per subject, time and output: columns ID, TIME [model time unit, h for every shipped model],
name, value, unit.
"""


# ------------------------------------------------------------------------------------------------------- main
def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``pkpd`` command line.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments after the program name; default ``sys.argv[1:]``.

    Returns
    -------
    int
        Exit status: 0 on success, 2 on a usage error or an error raised by pkpd (printed as one line
        ``pkpd: error: <message>`` on stderr, never a traceback).

    Examples
    --------
    >>> main(["show", "pk_1cmt_iv"])  # doctest: +ELLIPSIS
    Model 'pk_1cmt_iv' v... (time in h)
      states: central [mg]
    ...
    0
    """
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except _UsageError as err:
        return _fail(str(err))
    except SystemExit as exit_:  # --help and --version
        return int(exit_.code or 0)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", PkpdWarning)
            try:
                return args.run(args)
            finally:
                _report_warnings(caught)
    except PkpdError as err:
        return _fail(str(err))
    except BrokenPipeError:  # output piped into e.g. `head`, which stopped reading: not an error of ours
        _silence_stdout()
        return 1
    except OSError as err:  # a file that cannot be written or read: say which, without a traceback
        where = f" {str(err.filename)!r}" if err.filename else ""
        return _fail(f"cannot access{where}: {err.strerror or err}")


def _silence_stdout() -> None:
    # As the Python docs advise for SIGPIPE: point stdout at devnull so the flush at exit does not fail again.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout has no file descriptor (e.g. captured): nothing to silence
        pass


def _report_warnings(caught) -> None:
    """pkpd's warnings as one line each, ``pkpd: warning: <message>``; any other warning as Python shows it."""
    for w in caught:
        if issubclass(w.category, PkpdWarning):
            print("pkpd: warning: " + " ".join(str(w.message).split()), file=sys.stderr)
        else:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)


def _fail(message: str) -> int:
    print("pkpd: error: " + printable(" ".join(message.split())), file=sys.stderr)
    return 2


class _UsageError(Exception):
    """A command-line usage error, reported in the same one-line form as a PkpdError."""


class _Parser(argparse.ArgumentParser):
    """argparse, with usage errors raised (one line, exit 2) rather than printed with the usage text."""

    def error(self, message: str):
        raise _UsageError(f"{message} (see '{self.prog} --help')")


# ------------------------------------------------------------------------------------------------------- parser
def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="pkpd", description="PK-PD modelling of mesenchymal stem/stromal cell (MSC) therapies.",
                     epilog="Run 'pkpd COMMAND --help' for the options of a command.")
    parser.add_argument("--version", action="version", version=f"pkpd {__version__}")
    commands = parser.add_subparsers(title="commands", dest="command", required=True, metavar="COMMAND")

    models = commands.add_parser("models", help="list the shipped models with a one-line description",
                                 description="List the models that 'pkpd show' and 'pkpd simulate' find by name "
                                             "(shipped models, plus those in $PKPD_MODEL_PATH).")
    models.set_defaults(run=_cmd_models)

    show = commands.add_parser("show", help="print a model: parameters with units and sources, states, outputs, "
                                            "doses",
                               description="Print a model: its states, outputs and dose targets with units, the "
                                           "parameter table (value, unit, description, source; * marks our "
                                           "assumptions), its description and references.")
    show.add_argument("model", metavar="MODEL", help=_MODEL_HELP)
    show.set_defaults(run=_cmd_show)

    _add_simulate(commands)
    _add_fit(commands)
    _add_fit_population(commands)
    _add_nca(commands)
    _add_scenario(commands)
    return parser


_MODEL_HELP = "a shipped model name (see 'pkpd models') or the path to a .toml model file"
_DOSE_UNIT_HELP = ("unit of AMT, e.g. mg or cell/kg (per kg: times the WT column), or 'target' when AMT is in each "
                   "dose target's own unit (see 'doses:' in 'pkpd show MODEL'). Needed when the data have doses, "
                   "unless an AMTU column states it: a dose unit is never guessed")


def _add_simulate(commands) -> None:
    sim = commands.add_parser(
        "simulate", help="simulate a dosing regimen; write a CSV table and/or a figure",
        description="Simulate one subject given --count doses of --dose [--dose-unit], one every --every hours,\n"
                    "and write its outputs from 0 to --until hours. All times are in hours.",
        epilog=_SIMULATE_EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    sim.add_argument("model", metavar="MODEL", help=_MODEL_HELP)

    # --- What is simulated: a NONMEM dataset (--data), or a regimen built from the options below. The regimen
    # options are deliberately not `required=True` in argparse: _regimen() checks them, so --data runs omit them.
    sim.add_argument("--data", metavar="FILE.csv",
                     help="simulate every subject of a NONMEM-format dataset (ID, TIME [h], EVID, AMT, CMT, RATE, "
                          "II, ADDL, SS, covariates...) and write one row per input record, in the same order, with "
                          "ID, TIME, EVID and every model output to --out. The unit of AMT must be stated: "
                          "--dose-unit, or an AMTU column. The dataset gives the doses, subjects and times, so "
                          "--dose, --count, --every, --start, --infusion-hours, --target, --weight, --until, --step, "
                          "--plot, --time-unit and --include-states are refused with --data (--param, --rtol and "
                          "--atol apply)")
    sim.add_argument("--dose-unit", metavar="UNIT",
                     help="unit of --dose, or with --data the unit of AMT: e.g. cell, cell/kg, mg, mg/kg, nmol "
                          "('target': each dose target's own unit). A unit ending in /kg is per kg of body weight: "
                          "it needs --weight (with --data, the WT column). It must convert to the unit of the dose "
                          "target (see 'doses:' in 'pkpd show MODEL')")
    dosing = sim.add_argument_group("regimen (all times in hours)")
    dosing.add_argument("--dose", type=float, metavar="AMOUNT",
                        help="amount given at each administration, in --dose-unit (e.g. 2e6)")
    dosing.add_argument("--count", type=int, metavar="N",
                        help="number of doses (default 1; at most 100,000, as NONMEM's ADDL)")
    dosing.add_argument("--every", type=float, metavar="HOURS",
                        help="time between the starts of consecutive doses [h]; needed when --count > 1")
    dosing.add_argument("--start", type=float, metavar="HOURS",
                        help="time of the first dose [h] (default 0)")
    dosing.add_argument("--infusion-hours", type=float, metavar="HOURS",
                        help="give each dose as a constant-rate infusion over this many hours [h] "
                             "(default: an instantaneous bolus)")
    dosing.add_argument("--target", metavar="NAME",
                        help="dose target of the model (default: its first one; see 'pkpd show MODEL')")

    subject = sim.add_argument_group("subject")
    subject.add_argument("--weight", type=float, metavar="KG",
                         help="body weight [kg] (the model's WT covariate); required for a per-kg --dose-unit")
    subject.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                         help="override a model parameter, in the unit 'pkpd show MODEL' lists for it, e.g. "
                              "--param k_c=0.05; repeat it for more parameters")

    times = sim.add_argument_group("output times")
    times.add_argument("--until", type=float, metavar="HOURS",
                       help="last output time [h]; outputs start at 0 (at most 1,000,000 output times, and results "
                            "within $PKPD_MAX_MEMORY_GB or half the memory available)")
    times.add_argument("--step", type=float, metavar="HOURS",
                       help="spacing of the output times [h] (default 1)")

    solver = sim.add_argument_group("solver")
    solver.add_argument("--rtol", type=float, metavar="TOL", help="relative tolerance (default 1e-8)")
    solver.add_argument("--atol", type=float, metavar="TOL",
                        help="absolute tolerance, in each state's own unit (default 1e-12)")

    files = sim.add_argument_group("files written (at least one)")
    files.add_argument("--out", metavar="FILE.csv",
                       help="tidy CSV: columns ID, TIME [model time unit], name, value, unit")
    files.add_argument("--plot", metavar="FILE.png",
                       help="figure of every output against time, with the doses marked: .png (300 dpi), .svg or "
                            ".pdf")
    files.add_argument("--time-unit", choices=_PLOT_TIME_UNITS, metavar="UNIT",
                       help="time axis of --plot: h, d or wk (default: from the horizon: hours up to 4 days, days "
                            "up to 8 weeks, weeks beyond); the CSV keeps the model's time unit")
    files.add_argument("--include-states", action="store_true",
                       help="also write the ODE states (not only the outputs) to the CSV")
    sim.set_defaults(run=_cmd_simulate)


# ------------------------------------------------------------------------------------------------------- commands
def _cmd_models(args: argparse.Namespace) -> int:
    from .load import load_model, models

    names = models()
    width = max((len(n) for n in names), default=0)
    for name in names:
        try:
            summary = _summary(load_model(name).description)
        except PkpdError as err:  # one broken file (e.g. on $PKPD_MODEL_PATH) must not hide the others
            summary = f"(cannot be loaded: {' '.join(str(err).split())})"
        print(printable(f"{name.ljust(width)}  {summary}".rstrip()))
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    from .load import load_model

    model = load_model(args.model)
    lines = [repr(model)]
    if model.file:
        lines.append(f"  file: {model.file}")
    lines.append(_solver_line(model))
    if model.description:
        lines += ["", "description:", *("  " + line if line else "" for line in model.description.splitlines())]
    if model.references:
        lines += ["", "references:", *(f"  - {ref}" for ref in model.references)]
    # what a file says never drives the terminal (escape sequences, bidirectional overrides)
    print(printable("\n".join(lines)))
    return 0


def _solver_line(model) -> str:
    from .linear_system import linearity

    verdict = linearity(model)
    if verdict.is_linear:
        return "  solver: closed form (linear, dy/dt = A y + b; SolverSettings(method='ode') integrates instead)"
    return f"  solver: ODE ({verdict.reason})"


def _cmd_simulate(args: argparse.Namespace) -> int:
    from .load import load_model

    _check_files(args)
    if args.data is not None:
        return _simulate_dataset(args)
    model = load_model(args.model)
    sim = _simulate_regimen(model, args)
    _write(sim, args)
    return 0


# ------------------------------------------------------------------------------------------------------- simulate
def _simulate_dataset(args: argparse.Namespace) -> int:
    """Simulate a NONMEM dataset record by record (``--data``) and write the table to --out."""
    from .nonmem import simulate_nonmem_file
    from .settings import SolverSettings

    if args.out is None:
        raise PkpdError("simulate --data: give --out FILE.csv for the per-record table.")
    if args.plot is not None:
        raise PkpdError("simulate --data: --plot is not available with --data; plot the --out table instead.")
    unused = [option for option, key in _REGIMEN_OPTIONS if getattr(args, key) not in (None, False)]
    if unused:
        raise PkpdError(f"simulate --data: {', '.join(unused)} cannot be used with --data (the dataset gives the "
                        "doses, the subjects and the times); drop them, or drop --data to simulate a regimen.")
    settings = SolverSettings(**{k: v for k, v in (("rtol", args.rtol), ("atol", args.atol)) if v is not None})
    table = simulate_nonmem_file(args.model, args.data, args.out, dose_unit=args.dose_unit,
                                 params=_params(args.param), settings=settings)
    print(f"wrote {args.out}: {len(table)} rows, one per record of {args.data}")
    return 0


def _simulate_regimen(model, args: argparse.Namespace):
    """Simulate one subject under the regimen given by the command-line options."""
    from .settings import SolverSettings
    from .simulation import simulate

    regimen = _regimen(args)
    covariates = _covariates(model, args, regimen)
    params = _params(args.param)
    settings = SolverSettings(**{k: v for k, v in (("rtol", args.rtol), ("atol", args.atol)) if v is not None})
    return simulate(model, regimen, _output_times(model, args), params=params, covariates=covariates,
                    settings=settings)


def _regimen(args: argparse.Namespace):
    """The Regimen described by --dose, --dose-unit, --count, --every, --start, --infusion-hours, --target."""
    from .dosing import Dose, Regimen

    if args.dose is None or args.dose_unit is None:
        missing = " and ".join(o for o, v in (("--dose", args.dose), ("--dose-unit", args.dose_unit)) if v is None)
        raise PkpdError(f"simulate: {missing} missing; give the amount and its unit, e.g. --dose 2e6 --dose-unit "
                        "cell/kg.")
    dose = Dose(args.dose, args.dose_unit)
    count = 1 if args.count is None else args.count
    start = 0.0 if args.start is None else args.start
    if count < 1:
        raise PkpdError(f"simulate: --count must be >= 1; got {count}.")
    if count > 1 and args.every is None:
        raise PkpdError(f"simulate: --count {count} needs --every HOURS, the time between doses.")
    if count == 1 and args.every is not None:
        raise PkpdError(f"simulate: --every {args.every:g} has no effect with a single dose; give --count N for N "
                        "doses, or drop --every.")
    timing = {"duration": args.infusion_hours, "target": args.target}
    if count == 1:
        return Regimen.single(dose, at=start, time_unit="h", **timing)
    return Regimen.every(args.every, "h", count=count, dose=dose, start=start, **timing)


def _covariates(model, args: argparse.Namespace, regimen) -> dict[str, float]:
    """{"WT": --weight}, checked against the model and the dose unit."""
    per_kg = any(adm.dose.per_kg for adm in regimen)
    if args.weight is None:
        if per_kg:
            raise PkpdError(f"simulate: --dose-unit {args.dose_unit!r} is per kg of body weight; give the "
                            "weight with --weight KG (e.g. --weight 70), or an absolute unit such as "
                            f"{args.dose_unit.split('/')[0]!r}.")
        return {}
    if "WT" not in model.covariate_names:
        raise PkpdError(f"simulate: model {model.name!r} has no body-weight covariate WT, so --weight cannot be "
                        "used; drop --weight and give an absolute --dose-unit.")
    if not (math.isfinite(args.weight) and args.weight > 0):
        raise PkpdError(f"simulate: --weight must be a finite number > 0 [kg]; got {args.weight:g}.")
    return {"WT": args.weight}


def _params(items: Sequence[str]) -> dict[str, float]:
    """Parse --param NAME=VALUE items (the names are checked by simulate(), with close matches)."""
    params: dict[str, float] = {}
    for item in items:
        name, sep, value = item.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not name or not value:
            raise PkpdError(f"simulate: --param {item!r} is not NAME=VALUE; write e.g. --param k_c=0.05.")
        try:
            number = float(value)
        except ValueError:
            raise PkpdError(f"simulate: --param {item!r}: {value!r} is not a number; write e.g. --param "
                            f"{name}=0.05.") from None
        if name in params:
            raise PkpdError(f"simulate: --param {name} is given twice ({params[name]:g} and {number:g}); give it "
                            "once.")
        params[name] = number
    return params


def _output_times(model, args: argparse.Namespace):
    """0, step, 2 step, ... up to --until (included) [h], converted to the model's time unit."""
    import numpy as np

    from . import units

    if args.until is None:
        raise PkpdError("simulate: --until HOURS missing; give the last output time, e.g. --until 336 for two "
                        "weeks.")
    until, step = args.until, 1.0 if args.step is None else args.step
    if not (math.isfinite(until) and until > 0):
        raise PkpdError(f"simulate: --until must be a finite number > 0 [h]; got {until:g}.")
    if not (math.isfinite(step) and step > 0):
        raise PkpdError(f"simulate: --step must be a finite number > 0 [h]; got {step:g}.")
    n = math.floor(until / step * (1 + 1e-12))
    if n + 1 > _MAX_TIMES:
        raise PkpdError(f"simulate: --until {until:g} with --step {step:g} gives {n + 1} output times (more than "
                        f"{_MAX_TIMES}); choose a larger --step.")
    hours = step * np.arange(n + 1, dtype=float)
    if until - hours[-1] > 1e-9 * until:  # --until is not a multiple of --step: end exactly at --until
        hours = np.append(hours, until)
    return hours * units.convert("h", model.time_unit)


# ------------------------------------------------------------------------------------------------------- files
def _check_files(args: argparse.Namespace) -> None:
    """Fail before simulating when there is nothing to write, or a file cannot be written."""
    if args.out is None and args.plot is None:
        raise PkpdError("simulate: nothing to write; give --out FILE.csv and/or --plot FILE.png.")
    for option, path in (("--out", args.out), ("--plot", args.plot)):
        if path is not None and not Path(path).parent.is_dir():
            raise PkpdError(f"simulate: {option} {path!r}: folder {str(Path(path).parent)!r} does not exist; "
                            "create it first.")
    if args.plot is not None and Path(args.plot).suffix.lower() not in (".png", ".svg", ".pdf"):
        raise PkpdError(f"simulate: --plot {args.plot!r} must end in .png, .svg or .pdf.")


def _write(sim, args: argparse.Namespace) -> None:
    """Write the CSV and/or the figure, and say what was written."""
    what = (f"{sim.n_subjects} subject(s) x {sim.times.size} times ({sim.times[0]:g}-{sim.times[-1]:g} "
            f"{sim.time_unit})")
    if args.out is not None:
        table = sim.to_dataframe(include_states=args.include_states)
        table.to_csv(args.out, index=False)
        print(f"wrote {args.out}: {len(table)} rows, {what}")
    if args.plot is not None:
        _plot(sim, args.plot, args.time_unit)
        print(f"wrote {args.plot}: {len(sim.outputs)} panel(s), {what}")


def _plot(sim, path: str, time_unit: str | None = None) -> None:
    import matplotlib

    from .plots import plot_simulation, save_figure

    if "matplotlib.pyplot" not in sys.modules:
        # A command writes files and never opens windows. Only chosen when pyplot is not loaded yet, so that
        # calling main() from a notebook does not switch (and close) the notebook's figures.
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plot_simulation(sim, time_unit=time_unit)
    try:
        save_figure(fig, path)
    finally:
        plt.close(fig)


def _summary(description: str) -> str:
    """The first sentence of a model description, on one line, at most _SUMMARY_CHARS characters."""
    first = " ".join(description.strip().split("\n\n")[0].split())
    end = first.find(". ")
    if end >= 0:
        first = first[: end + 1]
    return textwrap.shorten(first.rstrip(":;, "), _SUMMARY_CHARS, placeholder=" ...")


# ------------------------------------------------------------------------------------------------------- fit
_ERROR_KINDS = ("additive", "proportional", "combined-variance", "combined-sd", "lognormal")

_FIT_EXAMPLE = """\
example (fit three parameters of the MSC model to the example dataset: viable cells, PGE2 and IL-10, with doses
in cells/kg; from the repository's root folder):
  pkpd fit msc_salvadori notebooks/data/msc_example.csv --dose-unit cell/kg --estimate k_c,s_p,EC50 \\
      --error IL10=proportional --error PGE2=combined-variance:2,0.1 --error cells=lognormal --out fit_results

error models (starting values after ':' are optional; defaults in brackets):
  additive[:sd]                 sd = a                    [a: 10 % of the median observation]
  proportional[:cv]             sd = b * f                [b: 0.2]
  combined-variance[:sd,cv]     sd**2 = a**2 + (b*f)**2   [as above]
  combined-sd[:sd,cv]           sd = a + b * f            [as above]
  lognormal[:sigma]             log y ~ N(log f, sigma)   [sigma: 0.3]

Writes DIR/parameters.csv (name, estimate, unit, se, rse_percent, ci_low, ci_high), DIR/summary.json (objective
= -2 log-likelihood, AIC, BIC, n_obs, converged, ...) and the diagnostic plots DIR/observed_vs_predicted.png,
DIR/residuals.png and DIR/individual_fits.png.
"""


def _add_fit(commands) -> None:
    cmd = commands.add_parser(
        "fit", help="fit model parameters to data in the NONMEM layout; write estimates, summary and plots",
        description="Estimate parameters of MODEL from the observations in DATA (NONMEM layout: ID, TIME, DV, "
                    "EVID, AMT, CMT, MDV, DVID naming the output, LLOQ/BLQ, covariates such as WT) by maximum "
                    "likelihood, with one residual error model per observed output.",
        epilog=_FIT_EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    cmd.add_argument("model", metavar="MODEL", help=_MODEL_HELP)
    cmd.add_argument("data", metavar="DATA.csv", help="the dataset, NONMEM layout")
    cmd.add_argument("--estimate", required=True, metavar="NAMES",
                     help="comma-separated parameters to estimate, e.g. k_c,s_p,EC50 (the others stay at the model "
                          "values)")
    cmd.add_argument("--error", action="append", default=[], metavar="OUTPUT=MODEL[:VALUES]",
                     help="error model of an observed output, e.g. IL10=proportional or IL10=combined-sd:0.5,0.1; "
                          "repeat for each continuous output in the data (clinical endpoint outputs - time-to-event, "
                          "binary, ordinal, count - declare their likelihood in the model file and need none)")
    cmd.add_argument("--out", required=True, metavar="DIR", help="folder for the results (created if missing)")
    cmd.add_argument("--blq", default="M3", choices=("M3", "M4", "M1"),
                     help="observations below LLOQ: M3 (likelihood of being below, default), M4, or M1 (dropped)")
    cmd.add_argument("--time-unit", default="h", metavar="UNIT", help="unit of TIME in the data (default h)")
    cmd.add_argument("--dose-unit", metavar="UNIT", help=_DOSE_UNIT_HELP)
    cmd.add_argument("--method", default="least_squares", metavar="NAME",
                     help="optimiser: least_squares (default) or an lmfit method (nelder, powell, lbfgsb, ...)")
    cmd.add_argument("--n-starts", type=int, default=1, metavar="N",
                     help="number of starting points (the model values, then random points in the bounds)")
    cmd.add_argument("--seed", type=int, metavar="INT", help="seed of the random starting points")
    cmd.set_defaults(run=_cmd_fit)


def _cmd_fit(args: argparse.Namespace) -> int:
    import json

    from .estimation.individual import fit
    from .load import load_model
    from .nonmem import read_nonmem

    model = load_model(args.model)
    estimate = [n.strip() for n in args.estimate.split(",") if n.strip()]
    if not estimate:
        raise PkpdError("fit: --estimate is empty; give comma-separated parameter names, e.g. --estimate k_c,EC50")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise PkpdError(f"fit: --out {args.out!r} exists and is not a folder")
    if not Path(args.data).is_file():
        raise PkpdError(f"fit: data file {args.data!r} not found")
    ds = read_nonmem(args.data, model, time_unit=args.time_unit, dose_unit=args.dose_unit)
    if not args.error and not model.endpoint_names:
        raise _UsageError("fit: give --error OUTPUT=MODEL for each observed output, e.g. --error IL10=proportional")
    error = _error_models(args.error, model, ds)
    result = fit(model, ds, estimate=estimate, error=error, blq=args.blq, method=args.method,
                 n_starts=args.n_starts, seed=args.seed)
    out.mkdir(parents=True, exist_ok=True)
    result.to_csv(out / "parameters.csv")
    with open(out / "summary.json", "w", encoding="utf-8") as fh:
        json.dump(result.summary(), fh, indent=2)
        fh.write("\n")
    written = _fit_plots(result, out, ds)
    print(repr(result))
    print(f"wrote {out / 'parameters.csv'}, {out / 'summary.json'}" + "".join(f", {p}" for p in written))
    return 0


def _error_models(items, model, ds, command: str = "fit") -> dict:
    """``OUTPUT=KIND[:v1,v2]`` options -> error model objects (starting values from the data when not given)."""
    import numpy as np

    from .error_models import Additive, Combined, LogNormal, Proportional
    from .errors import did_you_mean

    obs = ds.observations(model)
    if "DVID" not in obs:
        obs["output"] = None
    out = {}
    for item in items:
        name, sep, spec = item.partition("=")
        name = name.strip()
        if not sep or not name or not spec.strip():
            raise PkpdError(f"{command}: --error {item!r}: write OUTPUT=MODEL, e.g. IL10=proportional")
        if name not in model.output_names:
            raise PkpdError(f"{command}: --error {item!r}: unknown output {name!r} of model {model.name!r}."
                            + did_you_mean(name, model.output_names))
        if name in out:
            raise PkpdError(f"{command}: --error: output {name!r} is given twice")
        kind, _, values = spec.partition(":")
        kind = kind.strip().lower()
        if kind not in _ERROR_KINDS:
            hint = (" Name the convention: combined-variance (sd**2 = a**2 + (b*f)**2) or combined-sd "
                    "(sd = a + b*f)." if kind == "combined" else
                    " NONMEM's exponential error model is 'lognormal' here." if kind == "exponential" else
                    did_you_mean(kind, _ERROR_KINDS))
            raise PkpdError(f"{command}: --error {item!r}: unknown error model {kind!r}; choose one of "
                            f"{', '.join(_ERROR_KINDS)}.{hint}")
        try:
            given = [float(v) for v in values.split(",")] if values.strip() else []
        except ValueError:
            raise PkpdError(f"{command}: --error {item!r}: starting values must be numbers, e.g. "
                            f"{name}={kind}:0.2") from None
        mine = obs[(obs["output"] == name) | obs["output"].isna()]["DV"].to_numpy(dtype=float)
        mine = np.abs(mine[np.isfinite(mine) & (mine != 0)])
        sd0 = 0.1 * float(np.median(mine)) if mine.size else 1.0
        n_values = {"additive": 1, "proportional": 1, "lognormal": 1}.get(kind, 2)
        if given and len(given) != n_values:
            raise PkpdError(f"{command}: --error {item!r}: {kind} takes {n_values} starting value(s); got "
                            f"{len(given)}")
        if kind == "additive":
            out[name] = Additive(sd=given[0] if given else sd0)
        elif kind == "proportional":
            out[name] = Proportional(cv=given[0] if given else 0.2)
        elif kind == "lognormal":
            out[name] = LogNormal(sigma=given[0] if given else 0.3)
        else:
            sd, cv = given if given else (sd0, 0.2)
            out[name] = Combined(sd=sd, cv=cv, convention=kind.split("-")[1])
    return out


def _fit_plots(result, out: Path, data=None) -> list:
    import matplotlib

    from .plots import plot_individual_fits, plot_observed_vs_predicted, plot_residuals, save_figure

    if "matplotlib.pyplot" not in sys.modules:
        matplotlib.use("Agg")  # a command writes files and never opens windows (see _plot)
    import matplotlib.pyplot as plt

    written = []
    n_samples = 100 if result.covariance_method != "none" else 0
    jobs = []
    endpoints = set(result.model.endpoint_names)
    if any(o not in endpoints for o in result.outputs):
        jobs += [("observed_vs_predicted.png", lambda: plot_observed_vs_predicted(result)),
                 ("residuals.png", lambda: plot_residuals(result)),
                 ("individual_fits.png", lambda: plot_individual_fits(result, n_samples=n_samples, seed=1))]
    if data is not None:
        from .endpoint_vpc import categorical_vpc, km_vpc

        for o in result.model.outputs:   # clinical endpoints: Kaplan-Meier or categorical VPC (100 replicates)
            if o.name not in result.outputs:
                continue
            if o.type == "time-to-event":
                jobs.append((f"km_vpc_{o.name}.png", lambda o=o: km_vpc(result, data, output=o.name,
                                                                          n_replicates=100, seed=1).plot()))
            elif o.type in ("binary", "ordinal"):
                jobs.append((f"vpc_{o.name}.png", lambda o=o: categorical_vpc(result, data, output=o.name,
                                                                             n_replicates=100, seed=1).plot()))
    for name, draw in jobs:
        fig = draw()
        try:
            written.append(save_figure(fig, out / name))
        finally:
            plt.close(fig)
    return written


# ------------------------------------------------------------------------------------------------------- nca
_NCA_EXAMPLE = """\
examples (the theophylline data: oral doses in mg, concentrations in mg/L, times in h; a dose unit is never guessed):
  pkpd nca notebooks/data/theoph.csv --out nca.csv --dose-unit mg --conc-unit mg/L --partial 0-4 --partial 4-24
 pkpd nca notebooks/data/theoph.csv --out lz.csv --dose-unit mg --lambda-z 1=9-25 --exclude 2=12 --plot-lambda-z lz.png
more: --route iv-bolus --lambda-z-rule winnonlin (WinNonlin's IV-bolus rule); --tau 12 --steady-state (the last dose
of each subject starts the interval); --sparse (a serial-sacrifice design: Bailer's AUC with its SE).

One row per subject and output (DVID): Cmax, Tmax, AUClast, AUCinf, % extrapolated, lambda_z (and the points and
adjusted R^2 of its best-fit terminal phase), t1/2, MRT, CL (CL/F), Vz (Vz/F), Vss (IV); with --tau: AUCtau, Cmin,
Cavg, fluctuation, swing, accumulation index; with --partial: one column per partial area. The header gives each
column's unit when --dose-unit and --conc-unit are given. The conventions are those of PKNCA and WinNonlin (see
'pydoc pkpd.noncompartmental').
"""


def _add_nca(commands) -> None:
    from .metrics import AUC_METHODS
    from .noncompartmental import LAMBDA_Z_RULES, ROUTES

    cmd = commands.add_parser(
        "nca", help="non-compartmental analysis of NONMEM-layout data; one row per subject and output",
        description="Non-compartmental analysis of the observations in DATA (NONMEM layout: ID, TIME, DV, AMT, "
                    "EVID; optional MDV, DVID naming the output, RATE/DUR for infusions, BLQ/LLOQ, ADDL/II).",
        epilog=_NCA_EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    cmd.add_argument("data", metavar="DATA.csv", help="the dataset, NONMEM layout")
    cmd.add_argument("--out", required=True, metavar="FILE.csv", help="the NCA table to write")
    cmd.add_argument("--route", default="extravascular", choices=ROUTES,
                     help="how the doses were given (default extravascular; infusions are recognised from RATE/DUR)")
    cmd.add_argument("--auc-method", default="log-down", choices=AUC_METHODS,
                     help="trapezoids: log-down = linear-up/log-down (default), or linear")
    cmd.add_argument("--time-unit", default="h", metavar="UNIT", help="unit of TIME (default h)")
    cmd.add_argument("--dose-unit", metavar="UNIT",
                     help="unit of AMT, e.g. mg (gives CL and V their units); needed unless an AMTU column states "
                          "it: a dose unit is never guessed")
    cmd.add_argument("--conc-unit", metavar="UNIT", help="unit of DV, e.g. mg/L")
    cmd.add_argument("--tau", type=float, metavar="TIME",
                     help="dosing interval [TIME unit]: AUCtau, Cmin, Cavg, fluctuation, swing, accumulation index")
    cmd.add_argument("--steady-state", action="store_true",
                     help="the profiles are a dosing interval at steady state (needs --tau): CL = dose/AUCtau")
    cmd.add_argument("--partial", action="append", default=[], metavar="START-END",
                     help="a partial area, e.g. --partial 0-4 (repeatable); beyond Tlast it is extrapolated with "
                          "lambda_z")
    cmd.add_argument("--lambda-z-rule", default="pknca", choices=LAMBDA_Z_RULES,
                     help="best-fit terminal phase: pknca (default; Cmax never used) or winnonlin (Cmax may be used "
                          "for an IV bolus)")
    cmd.add_argument("--lambda-z", action="append", default=[], metavar="ID=START-END",
                     help="manual terminal phase of one subject: every positive point from START to END (repeatable)")
    cmd.add_argument("--exclude", action="append", default=[], metavar="ID=TIME",
                     help="leave one sampling time of one subject out of its terminal phase (repeatable)")
    cmd.add_argument("--plot-lambda-z", metavar="FILE.png",
                     help="also draw every subject's terminal phase (log scale, points used, regression line)")
    cmd.add_argument("--sparse", action="store_true",
                     help="serial-sacrifice design (one sample per animal): Bailer's AUC of the mean profile with its "
                          "standard error, one row per output and dose")
    cmd.set_defaults(run=_cmd_nca)


def _interval(text: str, option: str) -> tuple[float, float]:
    parts = text.replace(":", "-").split("-")
    try:
        if len(parts) != 2:
            raise ValueError
        lo, hi = float(parts[0]), float(parts[1])
    except ValueError:
        raise PkpdError(f"{option} {text!r}: write START-END, e.g. 0-4") from None
    return lo, hi


def _lambda_z_choices(args) -> dict:
    from .noncompartmental import LambdaZ

    ranges, excluded = {}, {}
    for text in args.lambda_z:
        sid, sep, span = text.partition("=")
        if not sep or not sid.strip():
            raise PkpdError(f"--lambda-z {text!r}: write ID=START-END, e.g. --lambda-z 3=4-24")
        ranges[sid.strip()] = _interval(span, "--lambda-z")
    for text in args.exclude:
        sid, sep, when = text.partition("=")
        try:
            if not sep or not sid.strip():
                raise ValueError
            excluded.setdefault(sid.strip(), []).append(float(when))
        except ValueError:
            raise PkpdError(f"--exclude {text!r}: write ID=TIME, e.g. --exclude 3=6") from None
    out = {}
    for sid in dict.fromkeys([*ranges, *excluded]):
        lo, hi = ranges.get(sid, (None, None))
        out[sid] = LambdaZ(start=lo, end=hi, exclude=excluded.get(sid, ()))
    return out


def _cmd_nca(args: argparse.Namespace) -> int:
    from .noncompartmental import nca, nca_profiles, nca_sparse_table

    if not Path(args.data).is_file():
        raise PkpdError(f"nca: data file {args.data!r} not found")
    for path in (args.out, args.plot_lambda_z):
        if path and not Path(path).parent.is_dir():
            raise PkpdError(f"nca: {path!r}: folder {str(Path(path).parent)!r} does not exist; create it first.")
    if args.sparse:
        table = nca_sparse_table(args.data, time_unit=args.time_unit, dose_unit=args.dose_unit,
                                 conc_unit=args.conc_unit)
        what = "output x dose"
    else:
        options = dict(route=args.route, auc_method=args.auc_method, time_unit=args.time_unit,
                       dose_unit=args.dose_unit, tau=args.tau,
                       steady_state=args.steady_state, partial=[_interval(p, "--partial") for p in args.partial],
                       lambda_z=_lambda_z_choices(args) or None, lambda_z_rule=args.lambda_z_rule)
        table = nca(args.data, conc_unit=args.conc_unit, **options)
        what = "subject x output"
        if args.plot_lambda_z:
            import matplotlib.pyplot as plt

            from .decision_plots import plot_lambda_z

            fig = plot_lambda_z(nca_profiles(args.data, **options), time_unit=args.time_unit,
                                conc_unit=args.conc_unit)
            try:
                fig.savefig(args.plot_lambda_z, dpi=120)
            finally:
                plt.close(fig)
            print(f"wrote {args.plot_lambda_z}")
    units = table.attrs.get("units", {})
    table.rename(columns={c: f"{c} [{units[c]}]" for c in table.columns if c in units}).to_csv(args.out, index=False)
    print(f"wrote {args.out}: {len(table)} rows ({what})")
    return 0


# ------------------------------------------------------------------------------------------------------- scenario
_SCENARIO_EXAMPLE = """\
example (the shipped sepsis dose-ranging scenario, 13 arms x 200 virtual patients):
  pkpd scenario scenarios/msc_sepsis_dose_ranging.toml --out sepsis_report

The scenario file (TOML) declares the model, the population, the arms, the endpoints and the targets; see
'pydoc pkpd.scenarios' for the format. DIR receives report.html (one self-contained page: the answer first, then
the details; open it in a browser), with --pdf report.pdf (printed by headless Chromium), figures/ (PNG at 300 dpi
and SVG) and tables/ (CSV and Markdown).
"""


def _add_scenario(commands) -> None:
    cmd = commands.add_parser(
        "scenario", help="run a dose-response scenario (TOML); write a one-page report, figures and tables",
        description="Run a scenario file: every arm for the same virtual subjects, endpoints per subject, "
                    "probability of target attainment per arm, Emax fits (ED50/ED90 with CIs) per schedule.",
        epilog=_SCENARIO_EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    cmd.add_argument("file", metavar="FILE.toml", help="the scenario file")
    cmd.add_argument("--out", required=True, metavar="DIR", help="folder for the report (created if missing)")
    cmd.add_argument("--seed", type=int, metavar="INT", help="seed of the virtual population (overrides the file's)")
    cmd.add_argument("--probability", type=float, default=0.8, metavar="P",
                     help="probability of target attainment the answer asks for (default 0.8)")
    cmd.add_argument("--pdf", action="store_true",
                     help="also write report.pdf (needs Chromium or Google Chrome, run headless)")
    cmd.set_defaults(run=_cmd_scenario)


def _cmd_scenario(args: argparse.Namespace) -> int:
    from .report import write_report
    from .scenarios import load_scenario, run_scenario

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise PkpdError(f"scenario: --out {args.out!r} exists and is not a folder")
    scenario = load_scenario(args.file)
    result = run_scenario(scenario, seed=args.seed)
    page = write_report(result, out, probability=args.probability, pdf=args.pdf)
    print(repr(result))
    print(f"wrote {page}" + (f" and {out / 'report.pdf'}" if args.pdf else "")
          + f" (figures in {out / 'figures'}, tables in {out / 'tables'})")
    return 0


# ------------------------------------------------------------------------------------------------ fit-population
_FIT_POPULATION_EXAMPLE = """\
example (the MSC model, doses in cells/kg, one error model per observed output, OUTPUT=MODEL[:VALUES]; from the
repository's root folder):
    pkpd fit-population msc_salvadori notebooks/data/msc_example.csv --dose-unit cell/kg --estimate k_c,s_p \\
        --iiv k_c=0.1 --error IL10=proportional --error PGE2=proportional --error cells=proportional --out msc_fit

error models (starting values after ':' are optional; defaults in brackets):
  additive[:sd]                 sd = a                    [a: 10 % of the median observation]
  proportional[:cv]             sd = b * f                [b: 0.2]
  combined-variance[:sd,cv]     sd**2 = a**2 + (b*f)**2   [as above]
  combined-sd[:sd,cv]           sd = a + b * f            [as above]
  lognormal[:sigma]             log y ~ N(log f, sigma)   [sigma: 0.3]
A one-output model also takes one --error KIND=VALUES: additive=SD, proportional=CV or combined=SD,CV (variances
add), e.g. for the theophylline data (notebooks/data/theoph.csv, doses in mg): --method focei --iiv ka=0.6,CL=0.3,V=0.1
--error additive=0.7.

--maxeval 0 evaluates the objective at the initial values without estimating (NONMEM's MAXEVAL=0). Writes
DIR/parameters.csv (name, estimate, unit, se, rse_percent, 95 % ci_low and ci_high, cv_percent of each variance,
shrinkage_percent), DIR/summary.json (objective [NONMEM OFV, no n log 2pi], aic, bic, n_subjects, n_obs,
converged, seconds), DIR/individual.csv (ID, TIME, DV, PRED, IPRED, CWRES, EBEs), the goodness-of-fit panel
DIR/gof.png and one visual predictive check per observed output, DIR/vpc_OUTPUT.png.
"""


def _add_fit_population(commands) -> None:
    cmd = commands.add_parser(
        "fit-population", help="population (mixed-effects) estimation: FO, FOCE, FOCE-I, Laplace, SAEM",
        description="Estimate typical values, between-subject variances (log-normal IIV) and the residual error of "
                    "MODEL from the observations in DATA (NONMEM layout); initial values from the model file and "
                    "these options.",
        epilog=_FIT_POPULATION_EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    cmd.add_argument("model", metavar="MODEL", help=_MODEL_HELP)
    cmd.add_argument("data", metavar="DATA.csv", help="the dataset, NONMEM layout")
    cmd.add_argument("--method", default="focei", choices=("focei", "foce", "fo", "laplace", "saem"),
                     help="objective function (default focei); saem: stochastic approximation EM with -2LL by "
                          "importance sampling (also writes saem_trace.csv)")
    cmd.add_argument("--priors", action="store_true",
                     help="maximum a posteriori with the priors of the model file on the typical values")
    cmd.add_argument("--iiv", required=True, action="append", metavar="NAME=VARIANCE[,NAME=VARIANCE...]",
                     help="parameters with log-normal IIV and their initial variances, e.g. CL=0.1,V=0.1 "
                          "(or --iiv CL=0.1 --iiv V=0.1)")
    cmd.add_argument("--error", action="append", default=[], metavar="OUTPUT=MODEL[:VALUES]",
                     help="error model of an observed output, e.g. IL10=proportional or IL10=combined-sd:0.5,0.1; "
                          "repeat for each continuous output in the data. A one-output model also takes KIND=VALUES: "
                          "additive=SD, proportional=CV or combined=SD,CV. Clinical endpoint outputs (time-to-event, "
                          "binary, ordinal, count) declare their likelihood in the model file and need none")
    cmd.add_argument("--estimate", metavar="NAMES",
                     help="comma-separated typical values to estimate (default: those with IIV); the others stay at "
                          "the model values")
    cmd.add_argument("--out", required=True, metavar="DIR", help="folder for the results (created if missing)")
    cmd.add_argument("--dose-unit", metavar="UNIT", help=_DOSE_UNIT_HELP)
    cmd.add_argument("--time-unit", default="h", metavar="UNIT", help="unit of TIME in the data (default h)")
    cmd.add_argument("--maxeval", type=int, metavar="N",
                     help="maximum iterations; 0 evaluates the objective at the initial values")
    cmd.add_argument("--vpc-replicates", type=int, default=200, metavar="N",
                     help="simulated replicates of the study in each VPC (default 200; 0: no VPC)")
    cmd.add_argument("--seed", type=int, default=1, metavar="INT",
                     help="seed of SAEM, of importance sampling and of the VPC simulations (default 1)")
    cmd.set_defaults(run=_cmd_fit_population)


def _parse_assignments(text: str, option: str) -> dict[str, float]:
    out = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        try:
            if not sep or not name.strip():
                raise ValueError
            number = float(value)
        except ValueError:
            raise _UsageError(f"{option}: expected NAME=NUMBER[,NAME=NUMBER...]; got {text!r}") from None
        if name.strip() in out:
            raise _UsageError(f"{option}: {name.strip()!r} is given twice ({text!r}); give each name once")
        out[name.strip()] = number
    return out


_POPULATION_KINDS = ("additive", "proportional", "combined")


def _population_error(items: Sequence[str], model, ds):
    """--error options of fit-population: one OUTPUT=MODEL[:VALUES] per output, or one KIND=VALUES."""
    from .error_models import Additive, Combined, Proportional

    first = items[0].partition("=")[0].strip()
    if first in model.output_names:
        return _error_models(items, model, ds, command="fit-population")
    if first.lower() not in _POPULATION_KINDS:
        raise PkpdError(f"fit-population: --error {items[0]!r}: {first!r} is neither an output of model "
                        f"{model.name!r} ({', '.join(model.output_names)}) nor additive, proportional or combined; "
                        f"write OUTPUT=MODEL[:VALUES] per observed output (e.g. {model.output_names[0]}=proportional)"
                        " or, for a one-output model, additive=SD, proportional=CV or combined=SD,CV")
    if len(items) > 1:
        raise PkpdError(f"fit-population: --error {items[0]!r} (KIND=VALUES) is the form for a one-output model; "
                        "give one --error OUTPUT=MODEL[:VALUES] per observed output instead, e.g. --error "
                        f"{model.output_names[0]}=proportional")
    text = items[0]
    kind, _, values = text.partition("=")
    kind = kind.strip().lower()
    try:
        numbers = [float(v) for v in values.split(",")]
    except ValueError:
        numbers = []
    wanted = {"additive": 1, "proportional": 1, "combined": 2}[kind]
    if len(numbers) != wanted:
        raise PkpdError(f"fit-population: --error {text!r}: {kind} takes {wanted} number(s): additive=SD, "
                        "proportional=CV or combined=SD,CV (or OUTPUT=MODEL[:VALUES] per output)")
    if len(model.outputs) != 1:
        raise PkpdError(f"fit-population: --error {text!r}: model {model.name!r} has {len(model.outputs)} outputs "
                        f"({', '.join(model.output_names)}); give one --error OUTPUT=MODEL[:VALUES] per observed "
                        f"output, e.g. --error {model.output_names[0]}={kind}")
    if kind == "proportional":
        return Proportional(cv=numbers[0])
    if kind == "additive":
        return Additive(sd=numbers[0])
    return Combined(sd=numbers[0], cv=numbers[1], convention="variance")


def _cmd_fit_population(args: argparse.Namespace) -> int:
    import json

    from .estimation.population_fit import fit_population
    from .load import load_model
    from .nonmem import read_nonmem

    try:
        iiv = _parse_assignments(",".join(args.iiv), "--iiv")
    except _UsageError as err:
        return _fail(str(err))
    model = load_model(args.model)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise PkpdError(f"fit-population: --out {args.out!r} exists and is not a folder")
    if not Path(args.data).is_file():
        raise PkpdError(f"fit-population: data file {args.data!r} not found")
    if args.vpc_replicates < 0:
        raise PkpdError(f"fit-population: --vpc-replicates must be >= 0; got {args.vpc_replicates}")
    estimate = None
    if args.estimate is not None:
        estimate = [n.strip() for n in args.estimate.split(",") if n.strip()]
        if not estimate:
            raise PkpdError("fit-population: --estimate is empty; give comma-separated parameter names, e.g. "
                            "--estimate k_c,s_p")
    ds = read_nonmem(args.data, model, time_unit=args.time_unit, dose_unit=args.dose_unit)
    if not args.error and not model.endpoint_names:
        raise _UsageError("fit-population: give --error OUTPUT=MODEL for each observed output, e.g. "
                          "--error IL10=proportional")
    error = _population_error(args.error, model, ds) if args.error else None
    result = fit_population(model, ds, iiv=iiv, error=error, method=args.method, maxeval=args.maxeval,
                            estimate=estimate, seed=args.seed, priors=bool(args.priors))
    out.mkdir(parents=True, exist_ok=True)
    result.parameter_table().to_csv(out / "parameters.csv", index=False)
    if result.trace is not None:
        result.trace.to_csv(out / "saem_trace.csv", index=False)
    summary = {"objective": result.objective, "objective_method": result.objective_method,
               "objective_se": None if not result.objective_se == result.objective_se else result.objective_se,
               "aic": result.aic, "bic": result.bic,
               "n_subjects": result.n_subjects, "n_obs": result.n_obs, "converged": result.converged,
               "seconds": result.seconds, "method": result.method, "minus2ll": result.minus2ll,
               "message": result.message, "covariance": result.covariance_message,
               "shrinkage_percent": {k: 100 * v for k, v in result.shrinkage.items()}}
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    cols = ["ID", "TIME", "DV", "PRED", "IPRED", "CWRES"] + [c for c in result.table.columns if c.startswith("ETA_")]
    result.table[cols].to_csv(out / "individual.csv", index=False)
    written = _population_plots(result, model, ds, out, args.vpc_replicates, args.seed)
    print(result)
    print(f"wrote {out / 'parameters.csv'}, {out / 'summary.json'}, {out / 'individual.csv'}"
          + "".join(f", {p}" for p in written))
    return 0


def _population_plots(result, model, ds, out: Path, n_replicates: int, seed: int) -> list:
    """gof.png, and vpc_OUTPUT.png per observed output (unless n_replicates is 0)."""
    import matplotlib

    from .nlme import vpc
    from .plots import plot_gof, plot_vpc, save_figure

    if "matplotlib.pyplot" not in sys.modules:
        matplotlib.use("Agg")  # a command writes files and never opens windows (see _plot)
    import matplotlib.pyplot as plt

    jobs = [("gof.png", lambda: plot_gof(result))]
    if n_replicates:
        for output in result.error:
            jobs.append((f"vpc_{output}.png", lambda o=output: plot_vpc(
                vpc(result, model, ds, n_replicates=n_replicates, seed=seed, output=o), log=None)))
    written = []
    for name, draw in jobs:
        fig = draw()
        try:
            written.append(save_figure(fig, out / name))
        finally:
            plt.close(fig)
    return written
