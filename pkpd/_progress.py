"""Progress bars for long work (private): tqdm, notebook-aware, shown only when they help.

``progress=None`` (the default of every long-running entry point) shows a bar only when the work is expected to
take more than about two seconds *and* someone can see it: stderr is a terminal, or the code runs in a Jupyter
kernel. The expectation comes from the first unit of work (a chunk), so short runs never print anything.
``progress=True`` always shows one (on stderr, or as a notebook widget); ``progress=False`` never does.
"""

from __future__ import annotations

import sys
import time
import warnings

from .errors import PkpdError

MIN_SECONDS = 2.0


def check_progress(progress) -> None:
    """Raise :class:`PkpdError` unless ``progress`` is None, True or False."""
    if progress is not None and not isinstance(progress, bool):
        raise PkpdError(f"progress: must be None (a bar only for long interactive runs), True or False; got "
                        f"{progress!r}")


def interactive() -> bool:
    """True in a Jupyter kernel or when stderr is a terminal."""
    ipython = sys.modules.get("IPython")
    if ipython is not None:
        try:
            shell = ipython.get_ipython()
            if shell is not None and "IPKernelApp" in shell.config:
                return True
        except Exception:  # an odd IPython state must never break a simulation
            pass
    isatty = getattr(sys.stderr, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # closed stream
        return False


def _new_bar(**kwargs):
    # tqdm.auto picks the notebook widget in Jupyter and the text bar elsewhere. In a notebook without ipywidgets,
    # or the first time it chooses, tqdm warns (TqdmWarning, TqdmExperimentalWarning): a progress bar must never
    # turn into an error under `filterwarnings = error`, so those warnings are silenced here.
    from tqdm import TqdmWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TqdmWarning)
        from tqdm.auto import tqdm

        return tqdm(**kwargs)


class ChunkProgress:
    """A progress bar over ``total`` items done in chunks; a context manager that closes the bar on exit.

    Call :meth:`advance` after each chunk with the number of items it did.
    """

    def __init__(self, total: int, *, progress: bool | None, desc: str, unit: str = "subject",
                 min_seconds: float = MIN_SECONDS):
        self.total, self.desc, self.unit, self.min_seconds = int(total), desc, unit, min_seconds
        self.done = 0
        self._start = time.perf_counter()
        self._decided = progress is not None
        self._bar = self._open(0) if progress is True else None

    def _open(self, initial: int):
        return _new_bar(total=self.total, initial=initial, desc=self.desc, unit=self.unit,
                        unit_scale=self.total >= 10_000,  # "1.00M/1.00M", but "30/30" rather than "30.0/30.0"
                        dynamic_ncols=True, file=sys.stderr)

    def advance(self, n: int) -> None:
        """Record ``n`` more items done; decide after the first chunk whether a bar is worth showing."""
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
            return
        if not self._decided:
            self._decided = True
            expected = (time.perf_counter() - self._start) * self.total / max(self.done, 1)
            if self.done < self.total and expected > self.min_seconds and interactive():
                self._bar = self._open(self.done)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
