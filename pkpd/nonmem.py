"""NONMEM-format datasets: read, validate, convert and simulate event records exactly as NONMEM does.

A NONMEM dataset is a table with one row per *record*: doses (EVID 1), observations (EVID 0), other events (EVID 2),
resets (EVID 3) and reset-and-dose records (EVID 4), with the usual data items ``ID, TIME, DV, MDV, EVID, AMT,
CMT, RATE, DUR, II, ADDL, SS``, censoring items (``LLOQ``/``BLQ``, ``CENS``/``LIMIT``), an output selector
(``DVID``: an output's 1-based number or its name) and any number of covariate columns. :func:`read_nonmem` reads
and validates one; :func:`simulate_nonmem` simulates every subject of it in one compiled batch and returns one row
per record, in the file's order.

Conventions (NONMEM's, PREDPP guide chapter V)
-----------------------------------------------
* The unit of ``AMT`` (and of the amount in ``RATE``) is never guessed: a dataset with doses must state it, with
  ``dose_unit=`` (``"mg"``, ``"cell/kg"``...; ``pkpd ... --dose-unit``), with an ``AMTU`` column holding the unit
  on the dose records, or with ``dose_unit="target"`` when AMT is in each dose target's own unit (``pkpd show
  MODEL`` lists them). A per-kg unit multiplies AMT by the ``WT`` column. Without any of these, reading fails.
* Headers are case-insensitive; ``.`` (or an empty cell) is a missing value, read as 0 in the dose items (``AMT,
  RATE, DUR, II, ADDL, SS, EVID, MDV``), as "no observation" in ``DV``, as "the default dose target" in ``CMT``.
* A ``C`` column marks comment rows (``$DATA ... IGNORE=C``): a row whose ``C`` cell is anything but ``.``, empty
  or 0 is skipped, and listed in :attr:`NonmemDataset.ignored` (nothing is dropped silently).
* ``CMT`` is a state number (1-based, in the model's state order) or the name of a state or dose target.
* The value reported at a record is the one *after* that record's own event (after a bolus, a reset, a steady
  state), and *before* the records that follow it at the same time.
* Implied events (additional doses from ``ADDL``/``II``, doses delayed by a lag time, the end of an infusion) that
  fall at the time of a record happen before that record.
* Bioavailability ``F``, lag time, modelled rate ``R`` (``RATE=-1``) and modelled duration ``D`` (``RATE=-2``) are
  the model's dose-target expressions, evaluated with the dose record's covariates; additional doses copy their
  initiating record. With ``RATE`` given, F scales the duration; with a duration given (``DUR`` or ``RATE=-2``),
  F scales the rate.
* ``EVID 3`` resets the system (states to their initial values, infusions off) and cancels the implied events
  still pending from earlier records; ``EVID 4`` does the same, then doses. ``TIME`` may go back at these records
  (a new occasion): later records are then simulated on a continued clock.
* ``SS=1`` resets the system (as ``EVID 3`` does) to the steady state reached by dosing every ``II`` forever, then
  gives the dose; ``SS=2`` adds that steady state (less the initial state) to the current state. Additional doses
  of a steady-state record are ordinary doses. ``AMT=0, RATE>0`` (or ``-1``), ``II=0`` is a steady-state
  constant infusion, which ends at the record's time (NONMEM: "the infusion terminates at the event time of the SS
  dose record"). Steady states are found by simulating dosing intervals with the compiled engine until the state
  at the start of an interval repeats (relative tolerance 1e-10, at most 1000 intervals); for models whose
  equations are linear in the states, the fixed point of one interval is solved for directly.
* Time-varying covariates follow NONMEM by default: the value on a record applies from the previous record up to
  and including this one (next observation carried backward, ``"nocb"``). Per covariate, ``"locf"`` (a value
  applies from its record on) or ``"linear"`` (interpolated between records; the solver sees 16 constant steps
  per interval at the midpoint values, and the exact value at each record) can be chosen.

Examples
--------
>>> import pandas as pd, pkpd
>>> from pkpd.nonmem import read_nonmem, simulate_nonmem
>>> table = pd.DataFrame({"ID": [1, 1, 1], "TIME": [0, 0, 12], "EVID": [1, 0, 0], "AMT": [100, 0, 0],
...                       "CMT": ["central", ".", "."]})
>>> ds = read_nonmem(table, dose_unit="target")  # AMT in the dose target's unit (mg here)
>>> out = simulate_nonmem(pkpd.load_model("nmtest_1cmt_oral"), ds)
>>> [round(v, 1) for v in out["CP"]]
[5000.0, 5000.0, 2584.3]
"""

from __future__ import annotations

import collections
import functools
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from . import expressions as ex
from . import units as un
from .dosing import Bolus, Dose, Infusion, Regimen
from .errors import DataError, DosingError, PkpdError, SimulationError, did_you_mean

__all__ = ["IgnoredRow", "NonmemDataset", "from_regimen", "read_nonmem", "simulate_nonmem", "simulate_nonmem_file"]

# Data items, as NONMEM names them. Everything else in a file is a covariate (or a text column kept as is).
_NUMERIC = ("ID", "TIME", "EVID", "MDV", "AMT", "RATE", "DUR", "II", "ADDL", "SS", "DV", "LLOQ", "BLQ", "CENS",
            "LIMIT")
_MIXED = ("CMT", "DVID")  # a number or a name
_STANDARD = (*_NUMERIC, *_MIXED, "C")
_DOSE_ITEMS = ("AMT", "RATE", "DUR", "II", "ADDL", "SS")
_MISSING = ("", ".")
_MAX_ADDL = 100_000
# IDs must stay below this (2^53): beyond it a double cannot tell neighbouring integers apart, and IDs would merge
_MAX_EXACT_ID = 2**53
_MAX_SS_INTERVALS = 1000
_SS_RTOL = 1e-10
_MAX_SS_SPAN = 10_000  # a steady-state dose whose lag + duration spans more intervals than this is a data error
_LINEAR_STEPS = 16
_INTERPOLATIONS = ("nocb", "locf", "linear")
#: ``dose_unit=TARGET_UNIT`` states that AMT is in each dose target's own unit, as the model declares it.
TARGET_UNIT = "target"
_UNIT_COLUMN = "AMTU"  # a column naming AMT's unit (CDISC ADaM's *U naming: AVALU is the unit of AVAL)
# Event times closer than this (relative) are one time: the solver cannot step across a gap of a few ulps, and
# such gaps only come from rounding (an infusion of duration AMT*F/RATE ending "at" the next dose).
_SNAP = 1e-12


@dataclass(frozen=True)
class IgnoredRow:
    """A row of the file that is not used as data, and why (``row`` is 1-based as in the file, header excluded)."""

    row: int
    reason: str


@dataclass(frozen=True, eq=False)
class NonmemDataset:
    """A validated NONMEM-format dataset (obtain one with :func:`read_nonmem` or :func:`from_regimen`).

    Attributes
    ----------
    data : pandas.DataFrame
        The cleaned records (comment and blank rows removed), one row per record in file order, with canonical
        upper-case names for the data items (``ID, TIME, EVID, MDV, AMT, CMT, RATE, DUR, II, ADDL, SS, DV`` always;
        ``DVID, LLOQ, BLQ, CENS, LIMIT`` when present), ``ROW`` (the 1-based row in the file), and the covariate
        columns as named in the file. A copy is returned each time (the dataset itself never changes).
    ignored : tuple[IgnoredRow, ...]
        Rows that are not used as observations or not read at all: comment rows, blank lines, observation records
        with ``MDV=1`` or without ``DV``. See :meth:`summary`.
    covariate_columns : tuple[str, ...]
        Numeric columns that are not NONMEM data items (model covariates or parameters, matched by name).
    text_columns : tuple[str, ...]
        Non-numeric columns that are not data items (kept, but they cannot feed the model).
    time_unit : str
        Unit of ``TIME``, ``II``, ``DUR`` (and the time in ``RATE``).
    dose_unit : str or None
        Unit of ``AMT`` (e.g. ``"mg"`` or ``"cell/kg"``, which is multiplied by the ``WT`` covariate), or
        ``"target"``: each dose target's own unit. None only for a dataset without doses.
    source : str or None
        The file it was read from.

    Examples
    --------
    >>> import pandas as pd
    >>> ds = read_nonmem(pd.DataFrame({"ID": [1, 1], "TIME": [0, 1], "AMT": [100, "."], "DV": [".", 3.2]}),
    ...                  dose_unit="mg")
    >>> ds.data[["ID", "TIME", "EVID", "AMT", "DV"]].to_numpy().tolist()
    [[1.0, 0.0, 1.0, 100.0, nan], [1.0, 1.0, 0.0, 0.0, 3.2]]
    """

    table: pd.DataFrame = field(repr=False)
    ignored: tuple[IgnoredRow, ...] = ()
    covariate_columns: tuple[str, ...] = ()
    text_columns: tuple[str, ...] = ()
    time_unit: str = "h"
    dose_unit: str | None = None
    source: str | None = None

    @property
    def data(self) -> pd.DataFrame:
        """The cleaned records (a copy; see the class docstring for the columns)."""
        return self.table.copy()

    @property
    def subject_ids(self) -> tuple:
        """Subject IDs in order of first appearance."""
        return tuple(pd.unique(self.table["ID"]))

    @property
    def n_records(self) -> int:
        """Number of records (rows used)."""
        return int(self.table.shape[0])

    def summary(self) -> str:
        """A short report: records, subjects, doses, observations, and every group of ignored rows with its rows.

        Examples
        --------
        >>> import pandas as pd
        >>> ds = read_nonmem(pd.DataFrame({"C": [".", "C"], "ID": [1, 1], "TIME": [0, 1], "AMT": [5, 0]}),
        ...                  dose_unit="mg")
        >>> print(ds.summary())
        1 records, 1 subjects: 1 dose records, 0 observation records (0 with DV)
        ignored: 1 comment row (C column set) (row 2)
        """
        t = self.table
        n_dose = int(np.isin(t["EVID"], (1, 4)).sum())
        obs = t["EVID"] == 0
        used = obs & (t["MDV"] == 0)
        lines = [f"{self.n_records} records, {len(self.subject_ids)} subjects: {n_dose} dose records, "
                 f"{int(obs.sum())} observation records ({int(used.sum())} with DV)"]
        groups: dict[str, list[int]] = {}
        for item in self.ignored:
            groups.setdefault(item.reason, []).append(item.row)
        for reason, rows in groups.items():
            shown = _row_ranges(rows)
            lines.append(f"ignored: {len(rows)} {reason if len(rows) == 1 else _plural(reason)} ({shown})")
        return "\n".join(lines)

    def __repr__(self) -> str:
        src = f" from {self.source!r}" if self.source else ""
        return (f"NonmemDataset({self.n_records} records, {len(self.subject_ids)} subjects{src}; "
                f"{len(self.ignored)} rows ignored, see .summary())")

    # -- conversions -------------------------------------------------------------------------------------------
    def observations(self, model=None) -> pd.DataFrame:
        """The observations (``EVID=0``, ``MDV=0``, ``DV`` present) as a tidy table.

        Parameters
        ----------
        model : Model, optional
            When given, ``DVID`` is resolved to an output name (column ``output``).

        Returns
        -------
        pandas.DataFrame
            Columns ``ROW, ID, TIME, DV`` plus ``DVID``/``output`` and the censoring columns present
            (``LLOQ, BLQ, CENS, LIMIT``).

        Examples
        --------
        >>> import pandas as pd
        >>> ds = read_nonmem(pd.DataFrame({"ID": [1, 1, 1], "TIME": [0, 1, 2], "AMT": [5, 0, 0],
        ...                                "DV": [".", 2.5, "."]}), dose_unit="mg")
        >>> ds.observations()[["ID", "TIME", "DV"]].to_numpy().tolist()
        [[1.0, 1.0, 2.5]]
        """
        t = self.table
        cols = ["ROW", "ID", "TIME", "DV"] + [c for c in ("DVID", "LLOQ", "BLQ", "CENS", "LIMIT") if c in t]
        columns = {c: t[c].values for c in cols}
        keep = np.flatnonzero((t["EVID"].to_numpy() == 0) & (t["MDV"].to_numpy() == 0) & ~pd.isna(columns["DV"]))
        out = {c: v[keep] for c, v in columns.items()}
        if model is not None:
            names = [o.name for o in model.outputs]
            dvid = out["DVID"].tolist() if "DVID" in out else [None] * keep.size
            out["output"] = [_output_name(v, names, int(r)) for v, r in zip(dvid, out["ROW"].tolist())]
        return pd.DataFrame(out)

    def to_regimens(self, model=None) -> dict:
        """Each subject's doses as a :class:`~pkpd.dosing.Regimen` (additional doses written out).

        Parameters
        ----------
        model : Model, optional
            Needed when ``CMT`` holds state numbers (to find the dose target) or when the dataset's ``dose_unit``
            is ``"target"`` (doses then take each target's unit).

        Returns
        -------
        dict
            ``{ID: Regimen}`` in order of first appearance; subjects without doses get ``Regimen.none()``.

        Raises
        ------
        DataError
            Steady-state doses, resets, or a missing unit: a Regimen cannot express them (use
            :func:`simulate_nonmem` for those datasets).

        Examples
        --------
        >>> import pandas as pd
        >>> ds = read_nonmem(pd.DataFrame({"ID": [1], "TIME": [0], "AMT": [100], "II": [24], "ADDL": [2]}),
        ...                  dose_unit="mg")
        >>> ds.to_regimens()[1]
        Regimen(3 doses of 100 mg every 24 h from t=0 h, bolus)
        """
        t = self.table
        # one pass over the dose and reset records only (itertuples per subject group cost ~10 ms a subject); every
        # subject gets an entry, in order of first appearance
        ids = t["ID"].to_numpy()
        first = ~pd.Series(ids).duplicated().to_numpy()
        first_rows = dict(zip(ids[first].tolist(), t["ROW"].to_numpy()[first].tolist()))
        groups: dict = {sid: [] for sid in ids[first].tolist()}
        picked = np.flatnonzero(np.isin(t["EVID"].to_numpy(), (1, 3, 4)))
        for rec in map(_DoseRecord._make, zip(*(t[f].to_numpy()[picked].tolist() for f in _DoseRecord._fields))):
            groups[rec.ID].append(rec)
        out = {}
        for sid, records in groups.items():
            items = []
            first_row = int(first_rows[sid])
            for rec in records:
                row = int(rec.ROW)
                evid = int(rec.EVID)
                if evid == 3 or (evid == 4 and row != first_row):
                    raise DataError("a reset (EVID 3 or 4 after the first record) cannot be expressed as a Regimen; "
                                    "simulate the dataset with simulate_nonmem instead", row=row, column="EVID",
                                    file=self.source)
                if evid not in (1, 4):
                    continue
                if rec.SS != 0:
                    raise DataError("steady-state doses (SS=1 or 2) cannot be expressed as a Regimen; simulate the "
                                    "dataset with simulate_nonmem instead", row=row, column="SS", file=self.source)
                target = _regimen_target(rec.CMT, model, row, self.source)
                unit = _amt_unit(self)
                if unit is None and model is not None:
                    unit = model.dose_target(target).unit
                if unit is None:
                    raise DataError("AMT is in each dose target's unit (dose_unit='target'): pass the model to "
                                    "to_regimens(model)", row=row, column="AMT", file=self.source)
                try:
                    dose = Dose(float(rec.AMT), unit)
                    for k in range(int(rec.ADDL) + 1):
                        time = float(rec.TIME) + k * float(rec.II)
                        items.append(_administration(time, dose, rec, target))
                except DosingError as err:
                    raise DataError(str(err), row=row, file=self.source) from None
            try:
                out[sid] = Regimen(items, self.time_unit)
            except DosingError as err:
                raise DataError(f"ID {sid}: {err}", file=self.source) from None
        return out


# ---------------------------------------------------------------------------------------------------------- reading
def read_nonmem(data, model=None, *, time_unit: str = "h", dose_unit: str | None = None) -> NonmemDataset:
    """Read and validate a NONMEM-format dataset.

    Main arguments
    --------------
    data : str, path or pandas.DataFrame
        A comma-separated file with a header row, or a table (cells may be numbers or text; ``.``, NaN, None and
        pandas' ``pd.NA`` are missing).
    model : Model, optional
        When given, ``CMT`` values, ``DVID`` values and the covariate columns the model needs are checked too.

    Other arguments
    ---------------
    time_unit : {"min", "h", "day", "week"}
        Unit of ``TIME``, ``II`` and ``DUR``.
    dose_unit : str, optional
        Unit of ``AMT`` (and of the amount in ``RATE``), e.g. ``"mg"`` or ``"cell/kg"`` (per kg: multiplied by
        the ``WT`` column), or ``"target"`` when AMT is in each dose target's own unit (as ``pkpd show MODEL``
        lists them). Needed when the data have doses, unless an ``AMTU`` column states the unit on every dose
        record: a dose unit is never guessed.

    Returns
    -------
    NonmemDataset

    Raises
    ------
    DataError
        The first problem found, naming the row (1-based, header excluded), the column and the rule: doses
        whose unit is not stated (no ``dose_unit``, no ``AMTU`` column), times
        decreasing within an ID, non-contiguous IDs, ``II>0`` without ``ADDL`` (or the reverse) outside steady
        state, ``RATE`` and ``DUR`` both set, ``RATE`` or ``AMT`` on an observation record, ``SS`` with ``II=0`` that
        is not an infusion, an unknown ``CMT`` name, a non-numeric value, and a few more.

    Examples
    --------
    >>> import pandas as pd
    >>> read_nonmem(pd.DataFrame({"id": [1, 1], "time": [0, 2], "amt": [10, 0], "evid": [1, 0]}), dose_unit="mg")
    NonmemDataset(2 records, 1 subjects; 1 rows ignored, see .summary())
    >>> read_nonmem(pd.DataFrame({"ID": [1, 1], "TIME": [0, 2], "AMT": [10, 5], "EVID": [1, 0]}), dose_unit="mg")
    Traceback (most recent call last):
    pkpd.errors.DataError: row 2, column AMT: an observation record (EVID=0) must have AMT = 0 ...

    The unit of AMT is never guessed:

    >>> read_nonmem(pd.DataFrame({"ID": [1, 1], "TIME": [0, 2], "AMT": [2e6, 0], "DV": [".", 12.5]}))
    Traceback (most recent call last):
    pkpd.errors.DataError: row 1, column AMT: the unit of AMT is not stated, and pkpd never guesses a dose unit ...
    >>> read_nonmem(pd.DataFrame({"ID": [1, 1], "TIME": [0, 2], "AMT": [2e6, 0], "AMTU": ["cell/kg", "."],
    ...                           "DV": [".", 12.5]})).dose_unit
    'cell/kg'
    """
    from .dosing import _canonical_time_unit

    try:
        time_unit = _canonical_time_unit("read_nonmem", time_unit)
    except DosingError as err:
        raise DataError(str(err)) from None
    if dose_unit is not None:
        _check_dose_unit(dose_unit, "dose_unit")
    header, cells, source = _raw_table(data)
    ds = _clean(header, cells, source, time_unit, dose_unit)
    ds = _stated_dose_unit(ds, model)
    if model is not None:
        _check_model(ds, model)
    return ds


def _check_dose_unit(dose_unit, where: str, row=None, column=None, source=None) -> None:
    if dose_unit == TARGET_UNIT:
        return
    try:
        un.unit(Dose(1.0, dose_unit).base_unit)
    except (DosingError, un.UnitCheckError) as err:
        raise DataError(f"{where}: {err}", row=row, column=column, file=source) from None


def _no_weight_column(unit: str, row: int, file: str | None) -> DataError:
    """The one error for doses per kg in data without a WT column, from the simulator and every fit alike: the
    model's default weight would otherwise stand in for each subject's, and a dose is never guessed."""
    return DataError(f"AMT is per kg ({unit!r}), but the data have no WT column; add each subject's weight [kg] as a "
                     "WT column", row=row, column="AMT", file=file)


def _amt_unit(ds: NonmemDataset) -> str | None:
    """The unit of AMT, or None when it is each dose target's own unit (or there are no doses)."""
    return None if ds.dose_unit in (None, TARGET_UNIT) else ds.dose_unit


def _stated_dose_unit(ds: NonmemDataset, model=None) -> NonmemDataset:
    """The dataset with the unit of AMT from ``dose_unit=`` or the AMTU column; an error when doses have none."""
    t = ds.table
    dosed = np.isin(t["EVID"], (1, 4)) & ((t["AMT"] != 0) | (t["RATE"] > 0))
    rows = t["ROW"].to_numpy()
    column = next((c for c in (*ds.text_columns, *ds.covariate_columns) if c.upper() == _UNIT_COLUMN), None)
    unit = ds.dose_unit
    if column is not None and dosed.any():
        cells = np.array([_cell_text(v) for v in t[column].to_numpy()], dtype=object)
        missing = dosed.to_numpy() & np.isin(cells, _MISSING)
        if missing.any():
            raise DataError(f"{column} (the unit of AMT) is missing on a dose record; give it on every dose record",
                            row=int(rows[missing][0]), column=column, file=ds.source)
        named = list(dict.fromkeys(cells[dosed.to_numpy()]))
        if len(named) > 1:
            raise DataError(f"{column} names several units ({', '.join(named)}); AMT has one unit per dataset: "
                            "convert the amounts to one unit", column=column, file=ds.source)
        first = int(rows[dosed.to_numpy()][0])
        if unit is not None and unit != named[0]:
            raise DataError(f"dose_unit={unit!r} contradicts column {column} ({named[0]!r}); give one of them",
                            row=first, column=column, file=ds.source)
        _check_dose_unit(named[0], f"{column} {named[0]!r}", first, column, ds.source)
        unit = named[0]
    if unit is None and dosed.any():
        targets = ""
        if model is not None and model.doses:
            targets = (f" (model {model.name!r} doses: "
                       + ", ".join(f"{d.name} [{d.unit}]" for d in model.doses) + ")")
        raise DataError("the unit of AMT is not stated, and pkpd never guesses a dose unit (cells and cells/kg "
                        "differ some 70-fold). State it when reading the data: pkpd.nonmem.read_nonmem(data, model, "
                        "dose_unit='cell/kg') (or 'mg', 'mg/kg'...; on the command line --dose-unit cell/kg), an "
                        "AMTU column holding the unit on the dose records, or dose_unit='target' when AMT is in "
                        f"each dose target's own unit{targets}",
                        row=int(rows[dosed.to_numpy()][0]), column="AMT", file=ds.source)
    return ds if unit == ds.dose_unit else replace(ds, dose_unit=unit)


def _raw_table(data) -> tuple[list[str], np.ndarray, str | None]:
    """The header (stripped texts) and the cells (2-D object array of stripped texts) of a file or table."""
    if isinstance(data, pd.DataFrame):
        header = [_cell_text(c) for c in data.columns]
        cells = np.array([[_cell_text(v) for v in row] for row in data.itertuples(index=False, name=None)],
                         dtype=object).reshape(len(data), len(header))
        return header, cells, None
    if not isinstance(data, str | os.PathLike):
        raise DataError(f"read_nonmem: expected a file path or a pandas DataFrame; got {type(data).__name__}")
    path = os.fspath(data)
    try:
        raw = pd.read_csv(path, header=None, dtype=str, keep_default_na=False, skip_blank_lines=False,
                          skipinitialspace=True)
    except FileNotFoundError:
        raise DataError("file not found", file=path) from None
    except pd.errors.EmptyDataError:
        if _has_text(path):      # pandas takes the columns from the first line: a blank one reads as no columns
            raise DataError("the first line is blank; the header row with the column names must be the first line",
                            file=path) from None
        raise DataError("the file is empty; a header row with the column names is needed", file=path) from None
    except pd.errors.ParserError as err:
        raise DataError(f"not a valid comma-separated table: {str(err).strip()}", file=path) from None
    except UnicodeDecodeError as err:
        raise DataError(f"not UTF-8 text ({err.reason})", file=path) from None
    except (OSError, ValueError) as err:
        raise DataError(f"cannot read the file: {err}", file=path) from None
    raw = raw.fillna("")
    values = raw.to_numpy(dtype=object)
    header = [str(v).strip() for v in values[0]]
    cells = np.array([[str(v).strip() for v in row] for row in values[1:]], dtype=object).reshape(-1, len(header))
    return header, cells, path


def _has_text(path: str) -> bool:
    """Whether a file holds anything but white space."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return any(line.strip() for line in f)
    except OSError:
        return False


def _cell_text(value) -> str:
    # a missing cell: None, NaN, or pandas' missing values (pd.NA in the nullable dtypes of convert_dtypes(), NaT)
    if value is None or value is pd.NA or value is pd.NaT:
        return ""
    if isinstance(value, float | np.floating) and math.isnan(value):
        return ""
    if isinstance(value, bool | np.bool_):
        return str(value)
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        return repr(float(value))
    return str(value).strip()


def _clean(header: list[str], cells: np.ndarray, source: str | None, time_unit: str,
           dose_unit: str | None) -> NonmemDataset:
    def fail(message, row=None, column=None):
        raise DataError(message, row=row, column=column, file=source)

    # -- columns: canonical names, duplicates, unnamed columns
    names: list[str] = []
    keep_cols: list[int] = []
    seen: dict[str, str] = {}
    for j, name in enumerate(header):
        if name == "" or name.startswith("Unnamed:"):
            if all(c == "" for c in cells[:, j]):
                continue  # a trailing separator on every line
            fail(f"column {j + 1} has no name; give every column a header")
        canon = name.upper() if name.upper() in _STANDARD else name
        if name.upper() in seen:
            fail(f"column {name!r} appears twice (as {seen[name.upper()]!r} too; headers are case-insensitive); "
                 "remove or rename one", column=name)
        seen[name.upper()] = name
        names.append(canon)
        keep_cols.append(j)
    cells = cells[:, keep_cols]
    col = {n: j for j, n in enumerate(names)}
    for required in ("ID", "TIME"):
        if required not in col:
            fail(f"the required column {required} is missing; columns found: {', '.join(names) or 'none'}",
                 column=required)
    n_rows = cells.shape[0]
    rows = np.arange(1, n_rows + 1)

    # -- comment and blank rows
    ignored: list[IgnoredRow] = []
    use = np.ones(n_rows, dtype=bool)
    blank = np.array([all(c == "" for c in cells[i]) for i in range(n_rows)], dtype=bool)
    for i in np.flatnonzero(blank):
        ignored.append(IgnoredRow(int(rows[i]), "blank line"))
    use &= ~blank
    if "C" in col:
        c = cells[:, col["C"]]
        comment = use & ~np.isin(c, ("", ".", "0"))
        for i in np.flatnonzero(comment):
            ignored.append(IgnoredRow(int(rows[i]), "comment row (C column set)"))
        use &= ~comment
    cells = cells[use]
    rows = rows[use]
    if cells.shape[0] == 0:
        fail("the dataset has no records (every row is blank or a comment)")

    # -- numbers
    numeric: dict[str, np.ndarray] = {}
    for name in _NUMERIC:
        if name in col:
            numeric[name] = _numbers(cells[:, col[name]], name, rows, fail)
    n = cells.shape[0]
    zeros = np.zeros(n)
    for name, article in (("ID", "an"), ("TIME", "a")):
        missing = np.isnan(numeric[name])
        if missing.any():
            i = int(np.flatnonzero(missing)[0])
            fail(f"{name} is missing; every record needs {article} {name}", row=int(rows[i]), column=name)
    inexact = np.abs(numeric["ID"]) >= _MAX_EXACT_ID
    if inexact.any():
        i = int(np.flatnonzero(inexact)[0])
        fail(f"ID {cells[i, col['ID']][:40]!r} is not below {_MAX_EXACT_ID} (2^53): it cannot be held exactly as a "
             "number, and neighbouring IDs would merge; renumber the subjects (e.g. 1, 2, 3...)", row=int(rows[i]),
             column="ID")
    for name in ("AMT", "RATE", "DUR", "II", "ADDL", "SS"):
        numeric[name] = np.nan_to_num(numeric.get(name, zeros), nan=0.0)
    dv = numeric.get("DV", np.full(n, np.nan))
    mixed = {name: _mixed(cells[:, col[name]]) for name in _MIXED if name in col}

    # -- EVID and MDV (derived the way NM-TRAN does when absent)
    amt, rate, ss = numeric["AMT"], numeric["RATE"], numeric["SS"]
    mdv_given = "MDV" in numeric
    mdv = np.nan_to_num(numeric["MDV"], nan=0.0) if mdv_given else None
    if "EVID" in numeric:
        evid = np.nan_to_num(numeric["EVID"], nan=0.0)
    else:
        dose_like = (amt != 0) | ((ss != 0) & (rate != 0))
        evid = np.where(dose_like, 1.0, np.where((mdv if mdv is not None else zeros) == 1, 2.0, 0.0))
    _check_set(evid, (0, 1, 2, 3, 4), "EVID", rows, fail, "0 (observation), 1 (dose), 2 (other), 3 (reset) or "
                                                           "4 (reset and dose)")
    _check_set(ss, (0, 1, 2), "SS", rows, fail, "0, 1 (reset to steady state) or 2 (add the steady state)")
    if mdv is not None:
        _check_set(mdv, (0, 1), "MDV", rows, fail, "0 or 1")
        bad = (evid != 0) & (mdv == 0)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            fail(f"MDV must be 1 on a non-observation record (EVID={int(evid[i])}); got 0", row=int(rows[i]),
                 column="MDV")
    else:
        mdv = np.where((evid != 0) | np.isnan(dv), 1.0, 0.0)
        # a censoring flag says the record is an observation (below the limit): without a DV, MDV's derivation would
        # drop it silently, and an M3 fit would lose exactly the records it is there to use
        for flag in ("BLQ", "CENS"):
            flagged = (evid == 0) & np.isnan(dv) & (np.nan_to_num(numeric.get(flag, zeros), nan=0.0) != 0)
            if flagged.any():
                i = int(np.flatnonzero(flagged)[0])
                fail(f"{flag}={_num(numeric[flag][i])} marks this record as a censored observation, but it has no "
                     "DV, so it would be left out; give DV a value (e.g. the LLOQ: M3 and M4 use the limit, not DV), "
                     "or set MDV=1 to leave the record out", row=int(rows[i]), column="DV")
    for i in np.flatnonzero(evid == 0):
        if mdv[i] == 1:
            reason = "observation with MDV=1" if mdv_given and not np.isnan(dv[i]) else "observation without DV"
            ignored.append(IgnoredRow(int(rows[i]), reason))
        elif np.isnan(dv[i]):
            fail("DV is missing on an observation record with MDV=0; give DV, or set MDV=1", row=int(rows[i]),
                 column="DV")

    # -- value rules
    ids, time = numeric["ID"], numeric["TIME"]
    dur, ii, addl = numeric["DUR"], numeric["II"], numeric["ADDL"]
    for name, values, rule in (("AMT", amt, "AMT must be >= 0"), ("DUR", dur, "DUR must be >= 0"),
                               ("II", ii, "II must be >= 0"), ("ADDL", addl, "ADDL must be >= 0")):
        bad = values < 0
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            fail(f"{rule}; got {_num(values[i])}", row=int(rows[i]), column=name)
    bad = (addl != np.round(addl)) | (addl > _MAX_ADDL)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        fail(f"ADDL must be a whole number of additional doses, at most {_MAX_ADDL}; got {_num(addl[i])}",
             row=int(rows[i]), column="ADDL")
    bad = (rate < 0) & (rate != -1) & (rate != -2)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        fail(f"RATE must be > 0 (an infusion rate), 0 (a bolus), -1 (rate from the model) or -2 (duration from the "
             f"model); got {_num(rate[i])}", row=int(rows[i]), column="RATE")
    non_dose = ~np.isin(evid, (1, 4))
    for name in _DOSE_ITEMS:
        bad = non_dose & (numeric[name] != 0)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            kind = {0: "an observation record", 2: "an other-type record", 3: "a reset record"}[int(evid[i])]
            fail(f"{kind} (EVID={int(evid[i])}) must have {name} = 0 (dose items belong on dose records); got "
                 f"{_num(numeric[name][i])}", row=int(rows[i]), column=name)
    dose = ~non_dose
    checks = [
        (dose & (rate != 0) & (dur != 0), "DUR",
         "RATE and DUR are both set; give the rate (RATE) or the duration (DUR), not both"),
        (dose & (ss == 0) & (ii > 0) & (addl == 0), "II",
         "II > 0 needs ADDL > 0 outside steady state (II is the interval of the additional doses)"),
        (dose & (ss == 0) & (addl > 0) & (ii == 0), "ADDL",
         "ADDL > 0 needs II > 0 (the interval between the additional doses)"),
        (dose & (ss != 0) & (ii == 0) & (amt > 0), "II",
         "SS with II = 0 must be a steady-state infusion (AMT = 0 with RATE > 0 or -1); give II (the dosing "
         "interval) for steady-state doses"),
        (dose & (ss != 0) & (ii == 0) & ((rate == -2) | (dur != 0)), "RATE",
         "a steady-state constant infusion (SS with II = 0) is given by its rate (RATE > 0 or -1), not a duration"),
        # NONMEM: AMT must be positive on every dose record but a steady-state constant infusion, which has a rate
        (dose & (ss != 0) & (ii == 0) & (rate == 0), "RATE",
         "SS with II = 0 and AMT = 0 is a steady-state constant infusion: it needs RATE > 0 or -1; got RATE = 0"),
        (dose & (ss != 0) & (ii == 0) & (addl != 0), "ADDL",
         "ADDL must be 0 for a steady-state constant infusion (SS with II = 0)"),
        (dose & (ss != 0) & (ii > 0) & (amt == 0), "AMT",
         "a steady-state dose (SS with II > 0) needs AMT > 0"),
        (dose & (ss == 0) & (amt == 0) & ((rate != 0) | (dur != 0)), "AMT",
         "an infusion needs AMT > 0 (AMT = 0 with a rate is allowed only for a steady-state infusion, SS with II = 0)"),
    ]
    for bad, name, rule in checks:
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            fail(rule, row=int(rows[i]), column=name)

    # -- IDs contiguous, time increasing within an ID (resets may restart the clock)
    first_seen: dict[float, int] = {}
    for i in range(n):
        sid = ids[i]
        if i > 0 and sid != ids[i - 1]:
            if sid in first_seen:
                fail(f"ID {_num(sid)} appears again after other IDs (its records start at row "
                     f"{first_seen[sid]}); the records of a subject must be contiguous", row=int(rows[i]), column="ID")
        first_seen.setdefault(sid, int(rows[i]))
        if i > 0 and sid == ids[i - 1] and time[i] < time[i - 1] and evid[i] not in (3, 4):
            fail(f"TIME decreases within ID {_num(sid)} ({_num(time[i])} after {_num(time[i - 1])} on row "
                 f"{int(rows[i - 1])}); sort the records by time (only a reset, EVID 3 or 4, may restart the clock)",
                 row=int(rows[i]), column="TIME")

    # -- censoring items
    if "CENS" in numeric:
        _check_set(np.nan_to_num(numeric["CENS"], nan=0.0), (-1, 0, 1), "CENS", rows, fail,
                   "-1 (right-censored), 0 or 1 (below the limit)")
    if "BLQ" in numeric:
        _check_set(np.nan_to_num(numeric["BLQ"], nan=0.0), (0, 1), "BLQ", rows, fail, "0 or 1")

    # -- the table
    frame: dict[str, np.ndarray] = {"ROW": rows.astype(np.int64), "ID": ids, "TIME": time, "EVID": evid,
                                    "MDV": mdv, "AMT": amt, "CMT": mixed.get("CMT", np.full(n, None, dtype=object)),
                                    "RATE": rate, "DUR": dur, "II": ii, "ADDL": addl, "SS": ss, "DV": dv}
    if "DVID" in mixed:
        frame["DVID"] = mixed["DVID"]
    for name in ("LLOQ", "BLQ", "CENS", "LIMIT"):
        if name in numeric:
            frame[name] = numeric[name]
    covariates, texts = [], []
    for name in names:
        if name in _STANDARD:
            continue
        raw = cells[:, col[name]]
        values = _numbers(raw, name, rows, None)
        if values is None:
            frame[name] = raw.copy()
            texts.append(name)
        else:
            frame[name] = _fill_within_subjects(values, ids)
            covariates.append(name)
    for values in frame.values():
        values.setflags(write=False)
    table = pd.DataFrame(frame, copy=False)
    return NonmemDataset(table=table, ignored=tuple(sorted(ignored, key=lambda r: r.row)),
                         covariate_columns=tuple(covariates), text_columns=tuple(texts), time_unit=time_unit,
                         dose_unit=dose_unit, source=source)


def _parse(texts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A column of texts as numbers (missing -> NaN), and where a cell is neither missing nor a finite number."""
    s = pd.Series(texts, dtype=object)
    missing = s.isin(_MISSING).to_numpy()
    with np.errstate(all="ignore"):
        values = pd.to_numeric(s.mask(missing), errors="coerce").to_numpy(dtype=float)
    return values, ~missing & ~np.isfinite(values)


def _numbers(texts: np.ndarray, name: str, rows: np.ndarray, fail):
    """Parse a column of texts; missing -> NaN. With ``fail=None`` return None instead of raising."""
    values, bad = _parse(texts)
    if bad.any():
        if fail is None:
            return None
        i = int(np.flatnonzero(bad)[0])
        fail(f"must be a finite number (or '.' for missing); got {texts[i]!r}", row=int(rows[i]), column=name)
    return values


def _mixed(texts: np.ndarray) -> np.ndarray:
    """A column holding numbers or names (CMT, DVID): None when missing, float for numbers, else the text."""
    out = np.empty(len(texts), dtype=object)
    for i, text in enumerate(texts):
        if text in _MISSING:
            out[i] = None
            continue
        try:
            value = float(text)
        except ValueError:
            out[i] = text
            continue
        out[i] = value if math.isfinite(value) else text
    return out


def _check_set(values, allowed, name, rows, fail, meaning):
    bad = ~np.isin(values, allowed)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        fail(f"{name} must be {meaning}; got {_num(values[i])}", row=int(rows[i]), column=name)


def _fill_within_subjects(values: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Missing covariate values: carried forward within the subject, then backward for leading ones."""
    s = pd.Series(values)
    groups = pd.Series(ids)
    filled = s.groupby(groups, sort=False).ffill()
    filled = filled.groupby(groups, sort=False).bfill()
    return filled.to_numpy(dtype=float)


def _num(x) -> str:
    x = float(x)
    if math.isfinite(x) and x.is_integer() and abs(x) < 1e15:
        return str(int(x))
    return repr(x)


# reasons whose noun is not their first word ("2 comment rows", not "2 comments row")
_PLURALS = {"blank line": "blank lines", "comment row (C column set)": "comment rows (C column set)"}


def _plural(reason: str) -> str:
    if reason in _PLURALS:
        return _PLURALS[reason]
    head, _, tail = reason.partition(" ")
    return (head + "s " + tail) if not head.endswith("s") else reason


def _row_ranges(rows: list[int]) -> str:
    rows = sorted(rows)
    parts = []
    start = prev = rows[0]
    for r in rows[1:] + [None]:
        if r is not None and r == prev + 1:
            prev = r
            continue
        parts.append(f"{start}-{prev}" if prev > start else str(start))
        if r is not None:
            start = prev = r
    label = "row " if len(rows) == 1 else "rows "
    if len(parts) > 8:
        parts = parts[:8] + ["..."]
    return label + ", ".join(parts)


# ---------------------------------------------------------------------------------------------------------- the model
def _check_model(ds: NonmemDataset, model) -> None:
    """Checks that need the model: CMT values of dose records, DVID values, covariate columns it uses."""
    t = ds.table
    dose = np.isin(t["EVID"].to_numpy(), (1, 4))
    for cmt, row in zip(t["CMT"].to_numpy()[dose], t["ROW"].to_numpy()[dose]):
        _dose_target_index(model, cmt, int(row), ds.source)
    if "DVID" in t:
        names = [o.name for o in model.outputs]
        obs = t["EVID"].to_numpy() == 0
        for v, row in zip(t["DVID"].to_numpy()[obs], t["ROW"].to_numpy()[obs]):
            _output_name(v, names, int(row), ds.source)
    _column_map(ds, model)


def _dose_target_index(model, cmt, row: int, source=None) -> int:
    """Index (in model.doses) of the dose target a CMT value names."""
    doses = model.doses
    if not doses:
        raise DataError(f"model {model.name!r} declares no dose targets, so it cannot be dosed", row=row,
                        column="CMT", file=source)
    if _absent(cmt) or cmt == 0:
        return 0
    states = model.state_names
    if isinstance(cmt, float):
        if not cmt.is_integer() or not 1 <= cmt <= len(states):
            raise DataError(f"CMT must be a state number from 1 to {len(states)} (states: {', '.join(states)}), or "
                            f"a state or dose-target name; got {_num(cmt)}", row=row, column="CMT", file=source)
        state = states[int(cmt) - 1]
    else:
        for k, d in enumerate(doses):
            if d.name == cmt:
                return k
        if cmt not in states:
            known = [d.name for d in doses] + list(states)
            raise DataError(f"unknown CMT name {cmt!r}: not a dose target or state of model {model.name!r}."
                            + did_you_mean(cmt, known), row=row, column="CMT", file=source)
        state = cmt
    into = [k for k, d in enumerate(doses) if d.target == state]
    if not into:
        raise DataError(f"CMT {cmt!r} is state {state!r}, which no dose target of model {model.name!r} doses; "
                        f"dose targets: {', '.join(d.name for d in doses)}", row=row, column="CMT", file=source)
    named = [k for k in into if doses[k].name == state]
    return named[0] if named else into[0]


def _output_name(value, names: list[str], row: int, source=None) -> str:
    if not names:
        raise DataError("the model declares no outputs", row=row, column="DVID", file=source)
    if _absent(value):
        return names[0]
    if isinstance(value, float):
        if value.is_integer() and 1 <= value <= len(names):
            return names[int(value) - 1]
        raise DataError(f"DVID must be an output number from 1 to {len(names)} ({', '.join(names)}) or an output "
                        f"name; got {_num(value)}", row=row, column="DVID", file=source)
    if value in names:
        return value
    raise DataError(f"unknown output {value!r} in DVID." + did_you_mean(value, names), row=row, column="DVID",
                    file=source)


def _column_map(ds: NonmemDataset, model) -> dict[int, str]:
    """Which data column feeds each parameter/covariate of the model (index in q -> column name)."""
    base = list(model.parameter_names) + list(model.covariate_names)
    available = {c: c for c in ds.covariate_columns}
    folded: dict[str, list[str]] = {}
    for c in (*ds.covariate_columns, *ds.text_columns):
        folded.setdefault(c.upper(), []).append(c)
    out = {}
    for j, name in enumerate(base):
        column = available.get(name)
        if column is None and name in ds.text_columns:
            column = name
        if column is None:
            candidates = folded.get(name.upper(), [])
            if len(candidates) == 1:
                column = candidates[0]
        if column is None:
            continue
        if column in ds.text_columns:
            values = ds.table[column].to_numpy()
            i = int(np.flatnonzero(_parse(values)[1])[0])  # the reader's rule made it a text column
            raise DataError(f"model {model.name!r} uses {name!r}, so each value must be a finite number (or '.' "
                            f"for missing); got {values[i]!r}", row=int(ds.table["ROW"].iloc[i]), column=column,
                            file=ds.source)
        out[j] = column
    return out


def _absent(value) -> bool:
    """A missing CMT/DVID cell (None, or NaN once pandas has copied the column)."""
    return value is None or (isinstance(value, float) and math.isnan(value))


# ---------------------------------------------------------------------------------------------------------- regimens
def _regimen_target(cmt, model, row: int, source):
    if _absent(cmt) or cmt == 0:
        return None
    if model is not None:
        return model.doses[_dose_target_index(model, cmt, row, source)].name
    if isinstance(cmt, float):
        raise DataError(f"CMT {_num(cmt)} is a state number: pass the model to map it to a dose target", row=row,
                        column="CMT", file=source)
    return cmt


# the fields of a dose record that a Regimen's administration is built from
_DoseRecord = collections.namedtuple("_DoseRecord", ["ID", "ROW", "EVID", "SS", "CMT", "AMT", "ADDL", "II", "TIME",
                                                     "RATE", "DUR"])


def _administration(time: float, dose: Dose, rec, target):
    rate = float(rec.RATE)
    if rate == -1:
        return Infusion(time, dose, target=target, modelled="rate")
    if rate == -2:
        return Infusion(time, dose, target=target, modelled="duration")
    if rate > 0:
        return Infusion(time, dose, rate=rate, target=target)
    if float(rec.DUR) > 0:
        return Infusion(time, dose, duration=float(rec.DUR), target=target)
    return Bolus(time, dose, target)


def from_regimen(regimens, *, times=None, observations: pd.DataFrame | None = None) -> NonmemDataset:
    """A NONMEM dataset holding regimens (one per subject) and, optionally, observation records.

    Parameters
    ----------
    regimens : Regimen, sequence of Regimen or mapping {ID: Regimen}
        The doses; a sequence gets IDs 1, 2, ... All doses must share one unit (the dataset's ``dose_unit``);
        times are converted to the first regimen's time unit.
    times : array_like, optional
        Observation times (finite numbers) [time unit of the regimens] added to every subject as records without
        DV (to simulate).
    observations : pandas.DataFrame, optional
        Observations with columns ``ID, TIME, DV`` (TIME a finite number; optionally ``DVID``, ``LLOQ``, ``BLQ``,
        ``CENS``, ``LIMIT``).

    Returns
    -------
    NonmemDataset
        Records sorted by time within each subject; at equal times doses come first. ``CMT`` holds the dose-target
        name (``.`` for the model's default target); infusions are written with ``RATE`` (rate given), ``DUR``
        (duration given) or ``RATE=-1``/``-2`` (modelled).

    Examples
    --------
    >>> from pkpd.dosing import Dose, Regimen
    >>> ds = from_regimen(Regimen.every(24, count=2, dose=Dose(100, "mg")), times=[1, 25])
    >>> ds.data[["ID", "TIME", "EVID", "AMT"]].to_numpy().tolist()
    [[1.0, 0.0, 1.0, 100.0], [1.0, 1.0, 0.0, 0.0], [1.0, 24.0, 1.0, 100.0], [1.0, 25.0, 0.0, 0.0]]
    >>> ds.to_regimens()[1] == Regimen.every(24, count=2, dose=Dose(100, "mg"))
    True
    """
    if isinstance(regimens, Regimen):
        items = {1: regimens}
    elif isinstance(regimens, Mapping):
        items = dict(regimens)
    else:
        try:
            items = {i + 1: r for i, r in enumerate(regimens)}
        except TypeError:
            raise DataError(f"from_regimen: expected a Regimen, a list or a mapping of them; got "
                            f"{type(regimens).__name__}") from None
    if not items:
        raise DataError("from_regimen: no regimens given")
    for sid, r in items.items():
        if not isinstance(r, Regimen):
            raise DataError(f"from_regimen: subject {sid!r} has {type(r).__name__}, not a Regimen")
    time_unit = next(iter(items.values())).time_unit
    units = {a.dose.unit for r in items.values() for a in r}
    if len(units) > 1:
        raise DataError(f"from_regimen: all doses must share one unit (AMT has one unit); got {sorted(units)}")
    dose_unit = units.pop() if units else None
    grid = None
    if times is not None:
        try:
            grid = np.asarray(times, dtype=float).reshape(-1)
        except (TypeError, ValueError):
            raise DataError(f"from_regimen: times must be numbers; got {str(times)[:80]}") from None
        if not np.isfinite(grid).all():
            raise DataError(f"from_regimen: times must be finite numbers; got {grid[~np.isfinite(grid)][0]:g}")
    records = []  # (ID, TIME, order, fields)
    for sid, reg in items.items():
        reg = reg.in_time_unit(time_unit)
        for adm in reg:
            rec = {"ID": sid, "TIME": adm.time, "EVID": 1, "AMT": adm.dose.amount,
                   "CMT": adm.target if adm.target is not None else ".", "RATE": 0.0, "DUR": 0.0}
            if isinstance(adm, Infusion):
                if adm.modelled == "rate":
                    rec["RATE"] = -1.0
                elif adm.modelled == "duration":
                    rec["RATE"] = -2.0
                elif adm.rate is not None:
                    rec["RATE"] = adm.rate
                else:
                    rec["DUR"] = adm.duration
            records.append((sid, adm.time, 0, rec))
        if grid is not None:
            for t in grid:
                records.append((sid, float(t), 1, {"ID": sid, "TIME": float(t), "EVID": 0, "DV": "."}))
    if observations is not None:
        if not isinstance(observations, pd.DataFrame) or not {"ID", "TIME", "DV"} <= set(observations.columns):
            raise DataError("from_regimen: observations must be a DataFrame with columns ID, TIME and DV")
        extra = [c for c in ("DVID", "LLOQ", "BLQ", "CENS", "LIMIT") if c in observations.columns]
        # plain tuples read by position (the first column of each name): a namedtuple of the column names fails on
        # names that differ as text but not as identifiers after NFKC normalisation (DV and a full-width ＤＶ)
        at = {c: list(observations.columns).index(c) for c in ("ID", "TIME", "DV", *extra)}
        for k, obs in enumerate(observations.itertuples(index=False, name=None)):
            sid = obs[at["ID"]]
            try:
                time = float(obs[at["TIME"]])
            except (TypeError, ValueError):
                time = math.nan
            if not math.isfinite(time):
                raise DataError(f"from_regimen: observation {k + 1} (ID {_cell_text(sid)[:40]}) has TIME "
                                f"{str(obs[at['TIME']])[:40]!r}; an observation time must be a finite number")
            rec = {"ID": sid, "TIME": time, "EVID": 0, "DV": obs[at["DV"]]}
            rec |= {c: obs[at[c]] for c in extra}
            records.append((sid, time, 1, rec))
    order: dict = {}
    for sid, *_ in records:
        order.setdefault(sid, len(order))
    records.sort(key=lambda r: (order[r[0]], r[1], r[2]))
    columns = ["ID", "TIME", "EVID", "AMT", "CMT", "RATE", "DUR", "DV", "DVID", "LLOQ", "BLQ", "CENS", "LIMIT"]
    present = [c for c in columns if any(c in rec for *_, rec in records)]
    table = pd.DataFrame([[rec.get(c, ".") for c in present] for *_, rec in records], columns=present,
                         dtype=object)
    return read_nonmem(table, time_unit=time_unit, dose_unit=dose_unit)


# ---------------------------------------------------------------------------------------------------------- simulate
def simulate_nonmem(model, dataset: NonmemDataset, *, settings=None, params: Mapping[str, float] | None = None,
                    interpolation: Mapping[str, str] | None = None, backend: str = "cpu") -> pd.DataFrame:
    """Simulate every subject of a NONMEM dataset; one row per record, in the dataset's order.

    Main arguments
    --------------
    model : Model or CompiledModel
        E.g. ``pkpd.load_model("nmtest_1cmt_oral")``. Data columns named like a parameter or covariate of the
        model (exactly, or else case-insensitively) set its value record by record.
    dataset : NonmemDataset
        From :func:`read_nonmem`.

    Other arguments
    ---------------
    settings : SolverSettings, optional
    params : dict[str, float], optional
        Parameter values for every subject (data columns still take precedence).
    interpolation : dict[str, {"nocb", "locf", "linear"}], optional
        How a time-varying column is applied between records, per parameter/covariate name (default ``"nocb"``,
        NONMEM's convention; see the module docstring).
    backend : {"cpu", "native", "numba", "jax"}
        Engine of the main run, as in :func:`pkpd.simulate` (steady-state pre-runs always use a CPU engine).

    Returns
    -------
    pandas.DataFrame
        Columns ``ID, TIME, EVID`` and every model output [its unit], one row per record.

    Raises
    ------
    DataError
        Problems only the model reveals (unknown CMT, a non-positive infusion duration from ``F``, ``D`` or
        ``R``, ...), naming the row and column.
    SimulationError
        The solver failed, or a steady state did not converge (naming the subject and time).

    Examples
    --------
    >>> import pandas as pd, pkpd
    >>> ds = read_nonmem(pd.DataFrame({"ID": [1, 1], "TIME": [0, 12], "EVID": [1, 0], "AMT": [100, 0],
    ...                                "CMT": [2, "."], "SS": [1, 0], "II": [12, 0]}), dose_unit="target")
    >>> out = simulate_nonmem(pkpd.load_model("nmtest_1cmt_oral"), ds)
    >>> peak, trough = out["CP"]  # at steady state the dose (5000 ng/mL) is what the interval eliminates
    >>> round(float(peak - trough), 3), round(float(trough / peak), 4)  # trough/peak = exp(-CL/V x 12 h)
    (5000.0, 0.5169)
    """
    from .compile import CompiledModel
    from .model import Model
    from .settings import SolverSettings
    from .simulation import batch_runner, compiled_for

    settings = settings or SolverSettings()
    if not isinstance(settings, SolverSettings):
        raise PkpdError(f"settings must be a SolverSettings; got {type(settings).__name__}")
    solve = batch_runner(backend)
    if isinstance(model, CompiledModel | Model):
        cm = compiled_for(model, backend)
    else:
        raise PkpdError(f"model must be a pkpd Model (from pkpd.load_model) or CompiledModel; got "
                        f"{type(model).__name__}")
    if not isinstance(dataset, NonmemDataset):
        raise DataError(f"dataset must be a NonmemDataset (from read_nonmem); got {type(dataset).__name__}")
    m = cm.model
    _check_model(dataset, m)
    if params:
        from ._params import warn_outside_bounds

        warn_outside_bounds(m, {k: v for k, v in params.items() if k in m.parameter_names})
    # Non-finite intermediate values are checked explicitly (and reported with their row); numpy stays quiet.
    with np.errstate(all="ignore"):
        return _Plan(cm, dataset, settings, params, interpolation).run(solve)


def simulate_nonmem_file(model_name_or_path, data_path, out_path, *, time_unit: str = "h",
                         dose_unit: str | None = None, params: Mapping[str, float] | None = None,
                         settings=None) -> pd.DataFrame:
    """Read a NONMEM dataset, simulate it and write one row per record to a CSV file (``pkpd simulate --data``).

    Parameters
    ----------
    model_name_or_path : str, path or Model
        A shipped model name (``"nmtest_1cmt_oral"``) or a ``.toml`` file.
    data_path : str or path
        The NONMEM-format CSV.
    out_path : str or path
        Where to write the result: columns ``ID, TIME, EVID`` and every model output, 10 significant digits.
    time_unit, dose_unit : str, optional
        As in :func:`read_nonmem`.
    params, settings : optional
        As in :func:`simulate_nonmem`.

    Returns
    -------
    pandas.DataFrame
        What was written.

    Raises
    ------
    PkpdError
        Any problem with the model, the data (row and column named), the simulation, or writing the file.
    """
    from .load import load_model
    from .model import Model

    model = model_name_or_path if isinstance(model_name_or_path, Model) else load_model(model_name_or_path)
    ds = read_nonmem(data_path, model, time_unit=time_unit, dose_unit=dose_unit)
    out = simulate_nonmem(model, ds, settings=settings, params=params)
    try:
        out.to_csv(out_path, index=False, float_format="%.10g")
    except OSError as err:
        raise PkpdError(f"{os.fspath(out_path)}: cannot write the result ({err.strerror or err})") from None
    return out


# ---------------------------------------------------------------------------------------------------------- engine
@functools.lru_cache(maxsize=64)
def _is_affine(model) -> bool:
    """Whether every d/dt is affine in the states (then a dosing interval maps states affinely)."""
    ck = model._checked
    inline: dict[str, ex.Expr] = {}
    for name, tree in ck.dynamic_derived:
        inline[name] = ex.substitute(tree, inline)
    states = set(model.state_names)
    for tree in ck.ddt:
        full = ex.substitute(tree, inline)
        for s in states:
            if ex.names(ex.differentiate(full, s)) & states:
                return False
    return True


@dataclass
class _SteadyState:
    """One steady-state problem: the state at time ``start`` (just before events there) under periodic input."""

    subject: object
    row: int
    q: np.ndarray
    y_start: np.ndarray
    start: float
    period: float
    u0: np.ndarray
    events: list  # (offset in [0, period), kind, state index, value)
    constant: bool = False


class _Events:
    """The events of one subject, collected in record order (keys and sorting come later)."""

    def __init__(self):
        self.time: list[float] = []
        self.record: list[int] = []
        self.slot: list[bool] = []
        self.cancel: list[bool] = []
        self.kind: list[int] = []
        self.index: list[int] = []
        self.value: list[float] = []

    def add(self, time, record, kind, index=0, value=0.0, *, slot=False, cancel=True):
        self.time.append(float(time))
        self.record.append(record)
        self.slot.append(slot)
        self.cancel.append(cancel)
        self.kind.append(kind)
        self.index.append(int(index))
        self.value.append(float(value))


class _Plan:
    """Turns a dataset into per-subject event tables and runs them in one compiled batch (private)."""

    def __init__(self, cm, ds: NonmemDataset, settings, params, interpolation, param_rows=None):
        from .dosing import _MINUTES

        self.cm, self.ds, self.settings = cm, ds, settings
        m = cm.model
        self.m = m
        t = ds.table
        self.t = t
        self.rows = t["ROW"].to_numpy()
        self.src = ds.source
        self.tf = _MINUTES[ds.time_unit] / _minutes(m.time_unit)
        self.n = t.shape[0]
        self.ids = t["ID"].to_numpy()
        self.evid = t["EVID"].to_numpy().astype(np.int64)
        self.ss = t["SS"].to_numpy().astype(np.int64)
        self.amt = t["AMT"].to_numpy()
        self.rate = t["RATE"].to_numpy()
        self.dur = t["DUR"].to_numpy() * self.tf
        self.ii = t["II"].to_numpy() * self.tf
        self.addl = t["ADDL"].to_numpy().astype(np.int64)
        self.base = list(m.parameter_names) + list(m.covariate_names)
        self.columns = _column_map(ds, m)
        self.modes = self._modes(interpolation)
        self._q(params, param_rows)
        self.y_init = cm.initial_state(self.q)  # the state a reset returns to, with each record's covariates
        bad = ~np.isfinite(self.y_init)
        if bad.any():
            i = int(np.argwhere(bad)[0][0])
            raise DataError("the initial state of the model is not finite with this record's values; check the "
                            "covariates and parameters", row=int(self.rows[i]), file=self.src)
        self._times()
        self._doses()

    # -- inputs
    def _modes(self, interpolation) -> dict[int, str]:
        modes = {j: "nocb" for j in self.columns}
        if interpolation is None:
            return modes
        if not isinstance(interpolation, Mapping):
            raise PkpdError(f"interpolation must be a mapping of name -> 'nocb', 'locf' or 'linear'; got "
                            f"{type(interpolation).__name__}")
        for name, mode in interpolation.items():
            if name not in self.base:
                raise PkpdError(f"interpolation: {name!r} is not a parameter or covariate of model {self.m.name!r}."
                                + did_you_mean(str(name), self.base))
            if mode not in _INTERPOLATIONS:
                raise PkpdError(f"interpolation[{name!r}]: must be 'nocb', 'locf' or 'linear'; got {mode!r}")
            j = self.base.index(name)
            if j in modes:
                modes[j] = mode
        return modes

    def _q(self, params, param_rows=None):
        from ._params import broadcast_named

        m = self.m
        pv, n = broadcast_named({p.name: p.value for p in m.parameters}, params, "parameter", m.name)
        if n not in (None, 1):
            raise PkpdError("params: give one value per parameter (data columns vary them by record)")
        cv = np.array([[c.value for c in m.covariates]], dtype=float).reshape(1, len(m.covariates))
        base = np.hstack([pv, cv])
        values = np.repeat(base, self.n, axis=0)
        for j, column in self.columns.items():
            data = np.asarray(self.t[column].to_numpy(), dtype=float)
            values[:, j] = np.where(np.isnan(data), base[0, j], data)
        npar = len(m.parameters)
        if param_rows is not None:  # an estimator's values, record by record
            values[:, :npar] = param_rows
        with np.errstate(all="ignore"):
            q = self.cm.build_q(values[:, :npar], values[:, npar:])
        bad = ~np.isfinite(q)
        if bad.any():
            i, j = (int(v) for v in np.argwhere(bad)[0])
            name = self.cm.q_names[j]
            raise DataError(f"{name!r} is not finite on this record (check the covariate values)",
                            row=int(self.rows[i]), column=self.columns.get(j), file=self.src)
        self.q = q

    def _times(self):
        """Model-time of each record: data time converted, continued across clock restarts at resets."""
        time = self.t["TIME"].to_numpy() * self.tf
        out = np.empty(self.n)
        offset = 0.0
        for i in range(self.n):
            if i > 0 and self.ids[i] == self.ids[i - 1]:
                if time[i] + offset < out[i - 1]:
                    offset = out[i - 1] - time[i]
            else:
                offset = 0.0
            out[i] = time[i] + offset
        self.time = out

    def _doses(self):
        """Per record: target, amount into its state, bolus or infusion rate and duration, F, lag (vectorised)."""
        m, ck = self.m, self.m._checked
        n = self.n
        dosing = np.isin(self.evid, (1, 4))
        self.target = np.full(n, -1, dtype=np.int64)
        cmt = self.t["CMT"].to_numpy()
        for i in np.flatnonzero(dosing):
            self.target[i] = _dose_target_index(m, cmt[i], int(self.rows[i]), self.src)
        env = self.cm.env(self.q)
        self.state = np.zeros(n, dtype=np.int64)
        self.into = np.zeros(n)       # amount entering the state [state unit]
        self.rate_state = np.zeros(n)  # infusion rate into the state [state unit / model time]
        self.duration = np.zeros(n)    # [model time]
        self.lag = np.zeros(n)
        self.infusion = np.zeros(n, dtype=bool)
        state_index = {s: i for i, s in enumerate(m.state_names)}
        for k, target in enumerate(m.doses):
            sel = np.flatnonzero(self.target == k)
            if sel.size == 0:
                continue
            sub = {name: values[sel] for name, values in env.items()}
            rows = self.rows[sel]
            conv_dose = 1.0
            per_kg = False
            if _amt_unit(self.ds) is not None:
                dose = Dose(1.0, self.ds.dose_unit)
                per_kg = dose.per_kg
                try:
                    conv_dose = un.convert(dose.base_unit, target.unit)
                except un.UnitCheckError:
                    raise DataError(f"AMT is in {self.ds.dose_unit!r}, which does not convert to the unit of dose "
                                    f"target {target.name!r} ({target.unit!r})", row=int(rows[0]), column="AMT",
                                    file=self.src) from None
            amount = self.amt[sel] * conv_dose
            rate_given = self.rate[sel] * conv_dose / self.tf
            if per_kg:
                if "WT" not in env:
                    raise DataError(f"AMT is per kg ({self.ds.dose_unit!r}) but model {m.name!r} has no WT covariate",
                                    row=int(rows[0]), column="AMT", file=self.src)
                if len(m.parameters) + m.covariate_names.index("WT") not in self.columns:
                    raise _no_weight_column(self.ds.dose_unit, int(rows[0]), self.src)
                weight = sub["WT"]
                if np.any(~(weight > 0)):
                    i = int(np.flatnonzero(~(weight > 0))[0])
                    raise DataError(f"per-kg doses need WT > 0; got {_num(weight[i])}", row=int(rows[i]),
                                    column="WT", file=self.src)
                amount = amount * weight
                rate_given = rate_given * weight
            F = self._expression(ck.dose_factor[k], sub, rows, f"bioavailability (factor) of dose target "
                                 f"{target.name!r}", "CMT")
            lag = self._expression(ck.dose_lag[k], sub, rows, f"lag time of dose target {target.name!r}", "CMT")
            if np.any(lag < 0):
                i = int(np.flatnonzero(lag < 0)[0])
                raise DataError(f"the lag time of dose target {target.name!r} must be >= 0; got {lag[i]:g}",
                                row=int(rows[i]), column="CMT", file=self.src)
            conv = ck.dose_conversion[k]
            f_scale = F if ck.dose_factor_dimensionless[k] else np.ones(sel.size)
            into = amount * F * conv
            rate = self.rate[sel]
            dur = self.dur[sel]
            ss_const = (self.ss[sel] != 0) & (self.ii[sel] == 0)
            infusion = (rate != 0) | (dur > 0)
            duration = np.zeros(sel.size)
            rate_state = np.zeros(sel.size)
            with np.errstate(all="ignore"):
                given = rate > 0
                duration[given] = amount[given] * f_scale[given] / rate_given[given]
                rate_state[given] = rate_given[given] * conv * np.where(
                    ck.dose_factor_dimensionless[k], 1.0, F[given])
                by_dur = (rate == 0) & (dur > 0)
                duration[by_dur] = dur[by_dur]
                modelled_rate = rate == -1
                if modelled_rate.any():
                    if ck.dose_rate[k] is None:
                        i = int(np.flatnonzero(modelled_rate)[0])
                        raise DataError(f"RATE=-1 asks the model for the rate, but dose target {target.name!r} "
                                        "declares no 'rate' expression", row=int(rows[i]), column="RATE",
                                        file=self.src)
                    # R is in the dose target's unit per model time unit (checked when the model loads)
                    R = self._expression(ck.dose_rate[k], sub, rows, f"modelled rate of dose target "
                                         f"{target.name!r}", "RATE")
                    bad = modelled_rate & ~(R > 0)
                    if bad.any():
                        i = int(np.flatnonzero(bad)[0])
                        raise DataError(f"the modelled rate of dose target {target.name!r} must be > 0 for RATE=-1; "
                                        f"got {R[i]:g}", row=int(rows[i]), column="RATE", file=self.src)
                    duration[modelled_rate] = amount[modelled_rate] * f_scale[modelled_rate] / R[modelled_rate]
                    rate_state[modelled_rate] = R[modelled_rate] * conv * np.where(
                        ck.dose_factor_dimensionless[k], 1.0, F[modelled_rate])
                modelled_dur = rate == -2
                if modelled_dur.any():
                    if ck.dose_duration[k] is None:
                        i = int(np.flatnonzero(modelled_dur)[0])
                        raise DataError(f"RATE=-2 asks the model for the duration, but dose target {target.name!r} "
                                        "declares no 'duration' expression", row=int(rows[i]), column="RATE",
                                        file=self.src)
                    D = self._expression(ck.dose_duration[k], sub, rows, f"modelled duration of dose target "
                                         f"{target.name!r}", "RATE")
                    duration[modelled_dur] = D[modelled_dur]
                timed = infusion & ~ss_const
                bad = timed & ~((duration > 0) & np.isfinite(duration))
                if bad.any():
                    i = int(np.flatnonzero(bad)[0])
                    column = "DUR" if rate[i] == 0 else "RATE"
                    raise DataError(f"the infusion duration must be > 0 and finite; got {duration[i]:g} (duration "
                                    f"= AMT x F / rate with RATE given, DUR or the model's D otherwise)",
                                    row=int(rows[i]), column=column, file=self.src)
                by_duration = timed & ((rate == -2) | by_dur)
                rate_state[by_duration] = into[by_duration] / duration[by_duration]
                # an infusion shorter than the time axis resolves (times within a relative _SNAP are one time, see
                # _snap and _phase) would stop at its own start and give nothing: it is a bolus to that precision
                t_sel = self.time[sel]
                reach = np.maximum.reduce([np.ones(sel.size), np.abs(t_sel), self.ii[sel],
                                           np.abs(t_sel + lag + self.addl[sel] * self.ii[sel] + duration)])
                instant = timed & (duration <= _SNAP * reach)
                infusion = infusion & ~instant
                rate_state[instant] = 0.0
                duration[instant] = 0.0
            bad = ~np.isfinite(into) | ~np.isfinite(rate_state)
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise DataError("the amount or rate entering the model is not finite; check AMT, RATE and the "
                                "covariates of the dose target's factor", row=int(rows[i]), column="AMT",
                                file=self.src)
            self.state[sel] = state_index[target.target]
            self.into[sel] = into
            self.rate_state[sel] = rate_state
            self.duration[sel] = duration
            self.lag[sel] = lag
            self.infusion[sel] = infusion

    def _expression(self, tree, env, rows, what, column):
        with np.errstate(all="ignore"):
            value = np.broadcast_to(np.asarray(ex.evaluate(tree, env), dtype=float), rows.shape).copy()
        bad = ~np.isfinite(value)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataError(f"the {what} is not finite on this record; check the covariates it uses "
                            f"({', '.join(sorted(ex.names(tree))) or 'none'})", row=int(rows[i]), column=column,
                            file=self.src)
        return value

    # -- steady states
    def _steady_state_problems(self) -> dict[int, _SteadyState]:
        problems = {}
        ns = len(self.m.states)
        for i in np.flatnonzero(np.isin(self.evid, (1, 4)) & (self.ss != 0)):
            j = int(self.state[i])
            q = self.q[i]
            y_start = self.y_init[i]
            u0 = np.zeros(ns)
            if self.ii[i] == 0:  # constant infusion at steady state
                if self.rate[i] == 0:
                    rate = 0.0
                else:
                    rate = self.rate_state[i]
                u0[j] = rate
                problems[i] = _SteadyState(self.ids[i], int(self.rows[i]), q, y_start, float(self.time[i]), 10.0,
                                           u0, [], constant=True)
                continue
            period = float(self.ii[i])
            span = (self.lag[i] + (self.duration[i] if self.infusion[i] else 0.0)) / period
            if not span <= _MAX_SS_SPAN:
                raise DataError(f"the lag time plus the infusion duration of this steady-state dose span "
                                f"{span:.3g} dosing intervals (at most {_MAX_SS_SPAN}); check II, the lag time and "
                                "the rate", row=int(self.rows[i]), column="II", file=self.src)
            _, a = _phase(self.lag[i], period)
            if self.infusion[i]:
                n_act, b = _phase(a + self.duration[i], period)
                u0[j] = n_act * self.rate_state[i]
                events = [(a, 1, j, self.rate_state[i]), (b, 1, j, -self.rate_state[i])]
            else:
                events = [(a, 0, j, self.into[i])]
            problems[i] = _SteadyState(self.ids[i], int(self.rows[i]), q, y_start, float(self.time[i]), period, u0,
                                       events)
        return problems

    # -- events
    def _subject_events(self, records: np.ndarray, ss: dict[int, tuple]) -> _Events:
        ev = _Events()
        ns = len(self.m.states)
        q = self.q
        n_rec = records.size
        cur = q[records[0]].copy()
        nocb = [j for j, mode in self.modes.items() if mode == "nocb"]
        early = [j for j, mode in self.modes.items() if mode in ("locf", "linear")]
        linear = [j for j, mode in self.modes.items() if mode == "linear"]
        for r_pos, i in enumerate(records):
            T = self.time[i]
            for j in early:
                if q[i, j] != cur[j]:
                    ev.add(T, r_pos, 3, j, q[i, j], slot=True)
                    cur[j] = q[i, j]
            evid = self.evid[i]
            if evid in (3, 4) or (evid == 1 and self.ss[i] == 1):
                ev.add(T, r_pos, 2, slot=True)
                # kind 2 restores the subject's first initial state; initial values may depend on covariates
                for s, (now, first) in enumerate(zip(self.y_init[i], self.y_init[records[0]])):
                    if now != first:
                        ev.add(T, r_pos, 4, s, now, slot=True)
            if evid in (1, 4):
                self._dose_events(ev, i, r_pos, ss.get(i), ns)
            ev.add(T, r_pos, 5, slot=True)  # the record's output
            if r_pos + 1 < n_rec:
                nxt = records[r_pos + 1]
                for j in nocb:
                    if q[nxt, j] != cur[j]:
                        ev.add(T, r_pos, 3, j, q[nxt, j], slot=True)
                        cur[j] = q[nxt, j]
                T1 = self.time[nxt]
                for j in linear:
                    v0, v1 = q[i, j], q[nxt, j]
                    if v0 == v1 or not T1 > T:
                        continue
                    h = (T1 - T) / _LINEAR_STEPS
                    for k in range(_LINEAR_STEPS):
                        value = v0 + (k + 0.5) / _LINEAR_STEPS * (v1 - v0)
                        ev.add(T + k * h, r_pos, 3, j, value, slot=(k == 0), cancel=False)
                    cur[j] = value
        return ev

    def _dose_events(self, ev: _Events, i: int, r_pos: int, y_ss, ns: int):
        T = self.time[i]
        j = int(self.state[i])
        ss = self.ss[i]
        if ss != 0:
            problem_y, y_start = y_ss
            if ss == 1:
                for s in range(ns):
                    ev.add(T, r_pos, 4, s, problem_y[s], slot=True)
            else:
                for s in range(ns):
                    delta = problem_y[s] - y_start[s]
                    if delta != 0:
                        ev.add(T, r_pos, 0, s, delta, slot=True)
            if self.ii[i] == 0:
                return  # a steady-state constant infusion ends at the record's time
        lag = self.lag[i]
        if ss != 0:
            period = float(self.ii[i])
            m_pending, a = _phase(lag, period)
            if self.infusion[i]:
                n_act, b = _phase(a + self.duration[i], period)
                running = [b + k * period for k in range(n_act) if not (k == 0 and b == 0)]
                if running:
                    ev.add(T, r_pos, 1, j, len(running) * self.rate_state[i], slot=True)
                for stop in running:
                    ev.add(T + stop, r_pos, 1, j, -self.rate_state[i])
            # doses of the steady-state history still delayed by their lag; one arriving at the record's time exactly
            # (a lag of whole intervals) is a dose of an earlier time, in the record's value as written-out doses are
            for k in range(m_pending):
                self._one_dose(ev, i, r_pos, T + a + k * period, j, slot=(k == 0 and a == 0))
        self._one_dose(ev, i, r_pos, T + lag, j, slot=(lag == 0))
        for k in range(1, int(self.addl[i]) + 1):
            self._one_dose(ev, i, r_pos, T + k * self.ii[i] + lag, j, slot=False)

    def _one_dose(self, ev: _Events, i: int, r_pos: int, start: float, j: int, *, slot: bool):
        if self.infusion[i]:
            ev.add(start, r_pos, 1, j, self.rate_state[i], slot=slot)
            ev.add(start + self.duration[i], r_pos, 1, j, -self.rate_state[i])
        elif self.into[i] != 0:
            ev.add(start, r_pos, 0, j, self.into[i], slot=slot)

    def _table(self, ev: _Events, record_times: np.ndarray):
        """Snap near-equal times, order the events NONMEM's way, drop those cancelled by resets."""
        time = np.asarray(ev.time)
        snapped = _snap(np.concatenate([time, record_times]))
        time, rec_t = snapped[:time.size], snapped[time.size:]
        record = np.asarray(ev.record)
        slot = np.asarray(ev.slot, dtype=bool)
        own = time == rec_t[record]
        # at one time: implied events from earlier records, then each record's slot, then its own implied events
        major = np.where(slot, record, np.where(own, record + 0.5, -1.0))
        order = np.lexsort((np.arange(time.size), major, time))
        kind = np.asarray(ev.kind, dtype=np.int64)
        cancel = np.asarray(ev.cancel, dtype=bool)
        keep = np.ones(time.size, dtype=bool)
        reset_at = -1
        for e in order:
            if slot[e] and kind[e] == 2:
                reset_at = max(reset_at, record[e])
            elif not slot[e] and cancel[e] and record[e] < reset_at:
                keep[e] = False
        order = order[keep[order]]
        return (time[order], kind[order], np.asarray(ev.index, dtype=np.int64)[order],
                np.asarray(ev.value)[order], rec_t)

    # -- run
    def run(self, solve=None) -> pd.DataFrame:
        from .simulation import _STATUS, EventTable, run_batch

        cm, m = self.cm, self.m
        problems = self._steady_state_problems()
        solved = _solve_steady_states(cm, problems, self.settings, self.tf)
        subjects = []
        start = 0
        for k in range(1, self.n + 1):
            if k == self.n or self.ids[k] != self.ids[k - 1]:
                subjects.append(np.arange(start, k))
                start = k
        tables = []
        for records in subjects:
            ev = self._subject_events(records, solved)
            tables.append(self._table(ev, self.time[records]))
        n_sub = len(subjects)
        width = max(1, max(t[0].size for t in tables))
        n_rec = max(r.size for r in subjects)
        e_time = np.full((n_sub, width), np.inf)
        e_kind = np.zeros((n_sub, width), dtype=np.int64)
        e_idx = np.zeros((n_sub, width), dtype=np.int64)
        e_val = np.zeros((n_sub, width))
        count = np.zeros(n_sub, dtype=np.int64)
        tt = np.zeros((n_sub, n_rec))
        n_out = np.zeros(n_sub, dtype=np.int64)
        q0 = np.empty((n_sub, self.q.shape[1]))
        for s, (records, (et, ek, ei, evl, rec_t)) in enumerate(zip(subjects, tables)):
            count[s] = et.size
            e_time[s, :et.size], e_kind[s, :et.size], e_idx[s, :et.size], e_val[s, :et.size] = et, ek, ei, evl
            tt[s, :records.size] = rec_t
            tt[s, records.size:] = rec_t[-1]
            n_out[s] = records.size
            q0[s] = self.q[records[0]]
        y0 = self.y_init[[records[0] for records in subjects]]
        t0 = tt[:, 0].copy()
        events = EventTable(e_time, e_kind, e_idx, e_val, count)
        pre = np.zeros(tt.shape, dtype=np.int64)
        sol = (solve or run_batch)(cm, q0, y0, events, tt, pre, n_out, t0, self.settings, keep_states=False)
        status = sol["status"]
        outputs = sol["outputs"]
        if np.any(status != 0):
            bad = np.flatnonzero(status)
            if self.settings.on_failure == "raise":
                s = int(bad[0])
                code = int(status[s])
                raise SimulationError(f"the solver failed: {_STATUS.get(code, code)}",
                                      subject=_id(self.ids[subjects[s][0]]),
                                      time=float(sol["counters"][s, 3]) / self.tf)
            outputs = outputs.copy()
            outputs[bad] = np.nan
        result = {"ID": self.t["ID"].to_numpy().copy(), "TIME": self.t["TIME"].to_numpy().copy(),
                  "EVID": self.evid.copy()}
        flat = np.concatenate([outputs[s, :records.size, :] for s, records in enumerate(subjects)], axis=0)
        for k, name in enumerate(m.output_names):
            result[name] = flat[:, k]
        return pd.DataFrame(result)


def simulate_rows(cm, dataset: NonmemDataset, params: np.ndarray, subjects: np.ndarray, settings
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Outputs at every record of subject ``subjects[r]`` simulated with the parameter row ``params[r]``, for many
    rows in one batch, with the machinery of :func:`simulate_nonmem` (steady states, resets...); private, for the
    estimators' predictions of datasets a Regimen cannot express.

    Returns (R, most records of a subject, n_outputs) values (NaN where a row failed or past a subject's records)
    and whether each row was solved. Subjects are numbered in order of first appearance.
    """
    t = dataset.table
    ids = pd.unique(t["ID"].to_numpy())
    id_col = t["ID"].to_numpy()
    groups = [np.flatnonzero(id_col == sid) for sid in ids]
    subjects = np.asarray(subjects, dtype=np.int64)
    R = subjects.size
    lengths = np.array([groups[s].size for s in subjects], dtype=np.int64)
    width = int(max(g.size for g in groups)) if groups else 0
    n_o = len(cm.model.outputs)
    out = np.full((R, width, n_o), np.nan)
    ok = np.zeros(R, dtype=bool)
    if R == 0:
        return out, ok
    idx = np.concatenate([groups[s] for s in subjects])
    big = t.iloc[idx].reset_index(drop=True)
    big["ID"] = np.repeat(np.arange(1, R + 1, dtype=float), lengths)
    ds = replace(dataset, table=big)
    rows = np.repeat(np.asarray(params, dtype=float), lengths, axis=0)
    mark = replace(settings, on_failure="mark")
    try:
        with np.errstate(all="ignore"):
            result = _Plan(cm, ds, mark, None, None, param_rows=rows).run()
    except (SimulationError, DataError):
        if R == 1:
            return out, ok
        # one row that cannot be solved at all (an initial state that is not finite, a steady state that does not
        # converge) stops the whole batch: solve the rows one by one so that only that row fails
        params = np.asarray(params, dtype=float)
        for r in range(R):
            one, solved = simulate_rows(cm, dataset, params[r:r + 1], subjects[r:r + 1], settings)
            out[r], ok[r] = one[0], solved[0]
        return out, ok
    values = result[list(cm.model.output_names)].to_numpy(dtype=float)
    pos = np.concatenate([np.arange(n) for n in lengths])
    row_of = np.repeat(np.arange(R), lengths)
    out[row_of, pos] = values
    ok = np.array([np.any(np.isfinite(out[r, :lengths[r]])) for r in range(R)])  # a failed row is all NaN
    return out, ok


def _minutes(time_unit: str) -> float:
    from .dosing import _MINUTES

    return float(_MINUTES.get(time_unit) or un.convert(time_unit, "min"))


def _id(x):
    x = float(x)
    return int(x) if x.is_integer() else x


def _phase(offset: float, period: float) -> tuple[int, float]:
    """``offset = whole * period + rest`` with ``0 <= rest < period``, rounding ulp-level remainders to 0."""
    whole = math.floor(offset / period)
    rest = offset - whole * period
    if rest >= period * (1.0 - _SNAP):
        whole += 1
        rest = 0.0
    elif rest <= period * _SNAP:
        rest = 0.0
    return int(whole), float(rest)


def _snap(times: np.ndarray) -> np.ndarray:
    """Map times that differ by rounding only (relative 1e-12) onto the first of them."""
    if times.size == 0:
        return times
    uniq = np.unique(times)
    rep = uniq.copy()
    for k in range(1, uniq.size):
        anchor = rep[k - 1]
        if math.isfinite(uniq[k]) and uniq[k] - anchor <= _SNAP * max(1.0, abs(uniq[k])):
            rep[k] = anchor
    return rep[np.searchsorted(uniq, times)]


def _solve_steady_states(cm, problems: dict[int, _SteadyState], settings, tf) -> dict[int, tuple]:
    """Steady states for all problems at once: {record index: (state at start, initial state)}."""
    from .simulation import _STATUS

    if not problems:
        return {}
    ss_settings = replace(settings, rtol=min(settings.rtol, _SS_RTOL), atol=min(settings.atol, 1e-12),
                          on_failure="mark")
    keys = list(problems)
    todo = {k: problems[k].y_start.copy() for k in keys}
    done: dict[int, np.ndarray] = {}
    if _is_affine(cm.model):
        guess = _affine_fixed_points(cm, [problems[k] for k in keys], ss_settings)
        check = _period_maps(cm, [problems[k] for k in keys], [guess[n] for n in range(len(keys))], ss_settings, 1)
        for n, k in enumerate(keys):
            y, y1 = guess[n], check[n][0]
            if np.all(np.isfinite(y)) and np.all(np.isfinite(y1)) and np.all(
                    np.abs(y1 - y) <= 1e-6 * np.maximum(np.abs(y), np.abs(y1)) + 1e3 * ss_settings.atol):
                done[k] = y
            else:
                todo[k] = y1 if np.all(np.isfinite(y1)) else problems[k].y_start.copy()
        todo = {k: v for k, v in todo.items() if k not in done}
    used = dict.fromkeys(todo, 0)
    growth = dict.fromkeys(todo, 1.0)
    batch = 20
    while todo:
        ks = list(todo)
        probs = []
        for k in ks:
            p = problems[k]
            probs.append(replace(p, period=p.period * growth[k]) if p.constant else p)
        failed: dict[int, int] = {}
        maps = _period_maps(cm, probs, [todo[k] for k in ks], ss_settings, batch, failed)
        for i, (k, path) in enumerate(zip(ks, maps)):
            prev = todo[k]
            converged = None
            for y in path:
                if not np.all(np.isfinite(y)):
                    break
                if np.all(np.abs(y - prev) <= _SS_RTOL * np.maximum(np.abs(y), np.abs(prev)) + ss_settings.atol):
                    converged = y
                    break
                prev = y
            used[k] += batch
            p = problems[k]
            if converged is not None:
                done[k] = converged
                del todo[k]
            elif failed.get(i) == 1:
                # out of steps: the model may well have a steady state, which a larger budget finds
                raise SimulationError(f"steady state of the dose on row {p.row}: the solver failed: {_STATUS[1]} in "
                                      f"the search, which solves {batch} intervals at a time at relative tolerance "
                                      f"{_SS_RTOL:g}. Raise SolverSettings(max_steps=...) (now {settings.max_steps}), "
                                      "or give the doses explicitly (ADDL) instead of SS", subject=_id(p.subject),
                                      time=p.start / tf)
            elif not np.all(np.isfinite(path[-1])) or used[k] >= _MAX_SS_INTERVALS:
                what = ("the state is not finite" if not np.all(np.isfinite(path[-1])) else
                        f"no convergence within {_MAX_SS_INTERVALS} dosing intervals")
                raise SimulationError(f"steady state of the dose on row {p.row}: {what} (relative tolerance "
                                      f"{_SS_RTOL:g}). The model may have no steady state under this regimen (a "
                                      "state without elimination), or approach it too slowly; give the doses "
                                      "explicitly (ADDL) instead of SS", subject=_id(p.subject),
                                      time=p.start / tf)
            else:
                todo[k] = path[-1]
                if p.constant:
                    growth[k] *= 2.0
    return {k: (done[k], problems[k].y_start) for k in keys}


def _period_maps(cm, problems: list[_SteadyState], starts: list[np.ndarray], settings, n_periods: int,
                 failed: dict[int, int] | None = None):
    """States at the end of each of ``n_periods`` dosing intervals (just before the events there), per problem; NaN
    where the solve failed, and then ``failed`` (when given) maps the problem's index to the solver's status."""
    from .simulation import EventTable, run_batch

    n = len(problems)
    ns = len(cm.model.states)
    per, bounds = [], []
    for p in problems:
        evs = [(p.start, 1, s, p.u0[s]) for s in range(ns) if p.u0[s] != 0]
        for k in range(n_periods):
            base = p.start + k * p.period
            evs.extend((base + off, kind, idx, val) for off, kind, idx, val in p.events)
        ends = np.array([p.start + (k + 1) * p.period for k in range(n_periods)])
        # the ends are not snapped onto the events: _snap's tolerance grows with the time (a dose record at 720 h),
        # and an event merged into an end would fall out of its interval (the output is taken before it)
        times = np.concatenate([_snap(np.array([e[0] for e in evs], dtype=float)), ends])
        evs = sorted(((t, *e[1:]) for t, e in zip(times, evs)), key=lambda e: e[0])
        per.append(evs)
        bounds.append(times[len(evs):])
    width = max(1, max(len(e) for e in per))
    e_time = np.full((n, width), np.inf)
    e_kind = np.zeros((n, width), dtype=np.int64)
    e_idx = np.zeros((n, width), dtype=np.int64)
    e_val = np.zeros((n, width))
    count = np.zeros(n, dtype=np.int64)
    tt = np.zeros((n, n_periods))
    for s, evs in enumerate(per):
        count[s] = len(evs)
        for k, (t, kind, idx, val) in enumerate(evs):
            e_time[s, k], e_kind[s, k], e_idx[s, k], e_val[s, k] = t, kind, idx, val
        tt[s] = bounds[s]
    if n == 1:
        tt = tt[:1]
    q = np.stack([p.q for p in problems])
    y0 = np.stack(starts)
    pre = np.ones(tt.shape, dtype=np.int64)
    n_out = np.full(n if tt.shape[0] > 1 else 1, n_periods, dtype=np.int64)
    t0 = np.array([p.start for p in problems])
    sol = run_batch(cm, q, y0, EventTable(e_time, e_kind, e_idx, e_val, count), tt, pre, n_out, t0, settings,
                    keep_outputs=False)
    states = sol["states"]
    states[sol["status"] != 0] = np.nan
    if failed is not None:
        failed.update((int(s), int(sol["status"][s])) for s in np.flatnonzero(sol["status"]))
    return [[states[s, k] for k in range(n_periods)] for s in range(n)]


def _affine_fixed_points(cm, problems: list[_SteadyState], settings) -> list[np.ndarray]:
    """Fixed point of each one-interval map y -> M y + c, with M and c from n+1 simulations (linear models)."""
    ns = len(cm.model.states)
    expanded, starts, scales = [], [], []
    for p in problems:
        base = p.y_start
        scale = np.where(np.abs(base) > 0, np.abs(base), 1.0)
        expanded.append(p)
        starts.append(base.copy())
        for s in range(ns):
            y = base.copy()
            y[s] += scale[s]
            expanded.append(p)
            starts.append(y)
        scales.append(scale)
    maps = _period_maps(cm, expanded, starts, settings, 1)
    out = []
    for n, p in enumerate(problems):
        block = maps[n * (ns + 1):(n + 1) * (ns + 1)]
        f0 = block[0][0]
        M = np.column_stack([(block[s + 1][0] - f0) / scales[n][s] for s in range(ns)])
        A = np.eye(ns) - M
        with np.errstate(all="ignore"):
            try:
                if not np.all(np.isfinite(A)) or np.linalg.cond(A) > 1e12:
                    raise np.linalg.LinAlgError
                # the fixed point is the steady state only if repeated dosing approaches it: a growing mode
                # (eigenvalue of the interval map >= 1, e.g. dA/dt = +k A) has an unstable fixed point, often
                # negative, that no dosing history reaches; the interval-by-interval path then reports why
                if np.max(np.abs(np.linalg.eigvals(M))) >= 1.0:
                    raise np.linalg.LinAlgError
                y = p.y_start + np.linalg.solve(A, f0 - p.y_start)
            except np.linalg.LinAlgError:
                y = np.full(ns, np.nan)
        out.append(y)
    return out
