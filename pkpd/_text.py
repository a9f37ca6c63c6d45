"""Text from files shown on a terminal or in a notebook (private)."""

from __future__ import annotations

import re

# C0 controls other than tab and newline, DEL, C1 controls, and bidirectional overrides/isolates
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def printable(text: object) -> str:
    """``text`` with control characters (terminal escape sequences, bidirectional overrides...) replaced by
    ``\\xNN``/``\\uNNNN`` escapes, so that printing it can never drive the terminal; tabs and newlines are kept.

    Examples
    --------
    >>> printable("IL-10 \\x1b[2J model")
    'IL-10 \\\\x1b[2J model'
    """
    return _UNSAFE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), str(text))
