"""The expression allow-list over generated expressions (issue 20, rule 13).

A keyword argument is rejected in a call of every allowed function (``exp(x, base=2)`` must not be read as
``exp(x)``), and a comparison is allowed only as the first argument of ``ifelse``: anywhere else (another argument
of ``ifelse``, inside a comparison, an argument of another function, an operand) it is rejected.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pkpd import expressions as ex

names = st.sampled_from(["a", "b", "CL", "V", "x1", "t"])
comparisons = st.builds(lambda l, op, r: f"{l} {op} {r}", names, st.sampled_from(["<", "<=", ">", ">=", "==", "!="]),
                        names)
functions = st.sampled_from(sorted(ex.FUNCTIONS))


def call(func: str, args: list[str]) -> str:
    return f"{func}({', '.join(args)})"


def valid_args(func: str, draw) -> list[str]:
    args = [draw(names) for _ in range(ex.FUNCTIONS[func])]
    if func == "ifelse":
        args[0] = draw(comparisons)
    return args


@given(functions, st.data())
def test_every_function_rejects_keyword_arguments(func, data):
    args = valid_args(func, data.draw)
    keyword = data.draw(st.sampled_from(["base", "out", "n", "where", "x"]))
    text = call(func, [*args, f"{keyword}={data.draw(names)}"])
    with pytest.raises(ex.ExpressionError, match="keyword arguments are not allowed"):
        ex.parse(text)
    ex.parse(call(func, args))  # the same call without the keyword is allowed


@given(functions, st.data())
def test_a_comparison_anywhere_but_the_condition_of_ifelse_is_rejected(func, data):
    args = valid_args(func, data.draw)
    positions = [i for i in range(len(args)) if not (func == "ifelse" and i == 0)]
    i = data.draw(st.sampled_from(positions))
    args[i] = data.draw(comparisons)
    with pytest.raises(ex.ExpressionError, match="comparisons are allowed only"):
        ex.parse(call(func, args))


@given(comparisons, names, st.sampled_from(["+", "-", "*", "/", "**"]))
def test_a_comparison_as_an_operand_is_rejected(comparison, other, op):
    for text in (f"({comparison}) {op} {other}", f"{other} {op} ({comparison})", f"-({comparison})"):
        with pytest.raises(ex.ExpressionError, match="comparisons are allowed only"):
            ex.parse(text)


@given(comparisons, names, st.sampled_from(["<", ">=", "+", "*", "-"]))
def test_a_comparison_nested_inside_the_condition_is_rejected(comparison, other, op):
    # the condition itself may be one comparison; a comparison inside it (of comparisons, or in arithmetic) may not
    for text in (f"ifelse(({comparison}) {op} {other}, 1, 2)", f"ifelse({other} {op} ({comparison}), 1, 2)",
                 f"ifelse(-({comparison}), 1, 2)"):
        with pytest.raises(ex.ExpressionError, match="comparisons are allowed only"):
            ex.parse(text)


def test_the_examples_of_the_issue():
    with pytest.raises(ex.ExpressionError, match="keyword"):
        ex.parse("exp(x, base=2)")
    with pytest.raises(ex.ExpressionError, match="comparisons are allowed only"):
        ex.parse("ifelse(a < b, c < d, 1)")
