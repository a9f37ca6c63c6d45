"""Shared test configuration: strict floating point in tests, Agg backend for plots."""

import os

import numpy as np
import pytest

os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(autouse=True)
def _strict_numpy():
    # Overflow or invalid operations in a test are bugs, not noise (style.md, practice 15).
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        yield
