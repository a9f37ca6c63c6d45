"""The integrators' coefficients, the one copy every engine uses (private).

The numba template (:mod:`pkpd._integrator`), the C template (:mod:`pkpd._native_template`) and the JAX backend
(:mod:`pkpd.jax_backend`) all take their Tsit5 and Rodas4 coefficients from here: the two templates have them printed
into their source (:func:`numba_constants`, :func:`c_constants`, :func:`dense_lines`).

* Tsit5: Tsitouras (2011), Comput Math Appl 62:770, with its free 4th-order dense output.
* Rodas4: Hairer & Wanner (1996), Solving ODEs II, IV.7 (RODAS, METH=1), in the KPP form of Sandu et al. (1997).
"""

from __future__ import annotations

TSIT5_C = (0.161, 0.327, 0.9, 0.9800255409045097)  # c2..c5 (c6 = c7 = 1)
TSIT5_A = (  # rows a2., ..., a7. (row 7 gives the solution: FSAL)
    (0.161,),
    (-0.008480655492356989, 0.335480655492357),
    (2.897153057105493, -6.359448489975075, 4.3622954328695815),
    (5.325864828439257, -11.748883564062828, 7.4955393428898365, -0.09249506636175525),
    (5.86145544294642, -12.92096931784711, 8.159367898576159, -0.071584973281401, -0.028269050394068383),
    (0.09646076681806523, 0.01, 0.4798896504144996, 1.379008574103742, -3.290069515436081, 2.324710524099774),
)
TSIT5_E = (-0.00178001105222577714, -0.0008164344596567469, 0.007880878010261995, -0.1447110071732629,
           0.5823571654525552, -0.45808210592918697, 0.015151515151515152)  # error estimate weights
# Weights b1..b7 of the dense output at the fraction th of the step, as expressions valid in Python and in C.
TSIT5_DENSE = (
    "-1.0530884977290216 * th * (th - 1.3299890189751412) * (th * th - 1.4364028541716351 * th + 0.7139816917074209)",
    "0.1017 * th * th * (th * th - 2.1966568338249754 * th + 1.2949852507374631)",
    "2.490627285651252793 * th * th * (th * th - 2.38535645472061657 * th + 1.57803468208092486)",
    "-16.54810288924490272 * (th - 1.21712927295533244) * (th - 0.61620406037800089) * th * th",
    "47.37952196281928122 * (th - 1.203071208372362603) * (th - 0.658047292653547382) * th * th",
    "-34.87065786149660974 * (th - 1.2) * (th - 0.666666666666666667) * th * th",
    "2.5 * (th - 1.0) * (th - 0.6) * th * th",
)

RODAS_GAMMA = 0.25
RODAS_ALPHA = (0.0, 0.386, 0.21, 0.63, 1.0, 1.0)
RODAS_GAMMAS = (0.25, -0.1043, 0.1035, -0.0362, 0.0, 0.0)
RODAS_A = (
    (),
    (1.544,),
    (0.9466785280815826, 0.2557011698983284),
    (3.314825187068521, 2.896124015972201, 0.9986419139977817),
    (1.221224509226641, 6.019134481288629, 12.53708332932087, -0.6878860361058950),
    (1.221224509226641, 6.019134481288629, 12.53708332932087, -0.6878860361058950, 1.0),
)
RODAS_C = (
    (),
    (-5.6688,),
    (-2.430093356833875, -0.2063599157091915),
    (-0.1073529058151375, -9.594562251023355, -20.47028614809616),
    (7.496443313967647, -10.24680431464352, -33.99990352819905, 11.70890893206160),
    (8.083246795921522, -7.981132988064893, -31.52159432874371, 16.31930543123136, -6.058818238834054),
)
RODAS_M = (1.221224509226641, 6.019134481288629, 12.53708332932087, -0.6878860361058950, 1.0, 1.0)

# our own constant expressions above, compiled once (never text from a model or data file)
_DENSE_CODE = compile("(" + ", ".join(TSIT5_DENSE) + ")", "<pkpd tsit5 dense output>", "eval")


def tsit5_dense_weights(th):
    """(b1, ..., b7) at the fraction ``th`` of the step (a float or an array, numpy or JAX)."""
    return eval(_DENSE_CODE, {"__builtins__": {}}, {"th": th})


def _square(rows, width: int = 5) -> list[list[float]]:
    return [list(r) + [0.0] * (width - len(r)) for r in rows]


def _tsit5_names() -> list[tuple[str, float]]:
    """(name, value) of the Tsit5 scalars as the templates call them: C2..C5, A21..A76, E1..E7."""
    pairs = [(f"C{i + 2}", c) for i, c in enumerate(TSIT5_C)]
    pairs += [(f"A{s + 2}{j + 1}", a) for s, row in enumerate(TSIT5_A) for j, a in enumerate(row)]
    return pairs + [(f"E{i + 1}", e) for i, e in enumerate(TSIT5_E)]


def numba_constants() -> str:
    """Module-level constants of the numba template (``_T_A21 = ...``, ``_R_A = np.array(...)``)."""
    lines = [f"_T_{name} = {value!r}" for name, value in _tsit5_names()]
    lines += ["", f"_R_GAMMA = {RODAS_GAMMA!r}", f"_R_ALPHA = np.array({list(RODAS_ALPHA)!r})",
              f"_R_GAMMAS = np.array({list(RODAS_GAMMAS)!r})", f"_R_A = np.array({_square(RODAS_A)!r})",
              f"_R_C = np.array({_square(RODAS_C)!r})", f"_R_M = np.array({list(RODAS_M)!r})"]
    return "\n".join(lines)


def c_constants() -> str:
    """Constants of the C template (``#define T_A21 ...``, ``static const double R_A[6][5] = ...``)."""

    def c_array(values) -> str:
        return "{" + ", ".join(repr(float(v)) for v in values) + "}"

    lines = [f"#define T_{name} {value!r}" for name, value in _tsit5_names()]
    lines += [f"static const double R_GAMMA = {RODAS_GAMMA!r};",
              f"static const double R_ALPHA[6] = {c_array(RODAS_ALPHA)};",
              f"static const double R_GAMMAS[6] = {c_array(RODAS_GAMMAS)};",
              "static const double R_A[6][5] = {" + ", ".join(c_array(r) for r in _square(RODAS_A)) + "};",
              "static const double R_C[6][5] = {" + ", ".join(c_array(r) for r in _square(RODAS_C)) + "};",
              f"static const double R_M[6] = {c_array(RODAS_M)};"]
    return "\n".join(lines)


def dense_lines(indent: str, declare: str = "", end: str = "") -> str:
    """The statements ``b1 = ...`` .. ``b7 = ...`` of the dense output (``declare="double "``, ``end=";"`` for C)."""
    return "\n".join(f"{indent}{declare}b{i + 1} = {expr}{end}" for i, expr in enumerate(TSIT5_DENSE))
