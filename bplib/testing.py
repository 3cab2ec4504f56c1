"""Tolerances and assertion helpers used by the tests and by every chapter.

One tolerance per dtype, chosen from its unit round-off :math:`u`
(float64: :math:`1.1\\times10^{-16}`, float32: :math:`6.0\\times10^{-8}`).  Two
routes to the same gradient differ by rounding in sums of a few thousand
terms; the relative tolerance leaves room for that (:math:`\\sim 10^{6} u`),
and no more, so that a wrong formula -- off by a term, a factor or a
transpose -- cannot pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp
import torch


@dataclass(frozen=True)
class Tolerance:
    """Relative and absolute tolerance: ``|actual - expected| <= atol + rtol * |expected|``."""

    rtol: float
    atol: float


TOLERANCES: dict[torch.dtype, Tolerance] = {
    torch.float64: Tolerance(rtol=1e-10, atol=1e-12),
    torch.float32: Tolerance(rtol=1e-5, atol=1e-6),
}
"""The one tolerance table, per dtype, for identities that hold exactly in real arithmetic."""


def tolerance(dtype: torch.dtype) -> Tolerance:
    """Return the tolerance for ``dtype``; a ``ValueError`` for dtypes the book does not check in."""
    if dtype not in TOLERANCES:
        raise ValueError(f"tolerance: argument 'dtype' must be one of {list(TOLERANCES)}, got {dtype}")
    return TOLERANCES[dtype]


AGAINST: dict[str, str] = {
    "SymPy": "a SymPy expression of the chapter, lambdified or evaluated exactly",
    "torch.autograd": "torch.autograd: grad, backward, functional.jacobian or functional.hessian",
    "torch.func": "torch.func: grad, vmap or jvp",
    "torch.optim": "torch.optim's optimisers and learning-rate schedulers",
    "torch": "another PyTorch routine for the same quantity (torch.nn.functional, clip_grad_norm_, the FLOP counter)",
    "finite differences": "central differences of the loss",
    "Monte Carlo": "a sampling estimate, within a multiple of its standard error",
    "closed form": "a formula derived in the text, evaluated with tensor operations",
    "second route": "a second computation of the same quantity: another bplib function, a loop, another order",
}
"""The routes a numeric check can be compared with, the values of ``assert_close``'s ``against``.

``against`` names the independent route that the claim is checked against -- usually where
``expected`` comes from; when neither side is bplib, the route other than the chapter's own
derivation.  The book's verification index groups and counts the checks by it.
"""


def assert_close(actual: torch.Tensor, expected: torch.Tensor, *, claim: str, against: str | None = None) -> None:
    """Assert ``actual`` equals ``expected`` within the tolerance of ``actual``'s dtype.

    ``expected`` (from SymPy, autograd, ...) is converted to ``actual``'s dtype and
    device first.  ``claim`` says in words what is being checked; it heads the
    failure message and the book's verification index.  ``against`` names the route
    the check compares with, one of :data:`AGAINST` (``"torch.autograd"``, ``"SymPy"``,
    ...); every check in the book says it, the index shows it.
    """
    if not isinstance(actual, torch.Tensor) or not isinstance(expected, torch.Tensor):
        raise TypeError(
            f"assert_close: arguments 'actual' and 'expected' must be tensors, "
            f"got {type(actual).__name__} and {type(expected).__name__}"
        )
    if against is not None and against not in AGAINST:
        raise ValueError(f"assert_close: argument 'against' must be one of {list(AGAINST)}, got {against!r}")
    tol = tolerance(actual.dtype)
    expected = expected.to(dtype=actual.dtype, device=actual.device)
    heading = claim if against is None else f"{claim} (against {against})"
    torch.testing.assert_close(
        actual, expected, rtol=tol.rtol, atol=tol.atol, msg=lambda default: f"{heading}: {default}"
    )


def _is_zero(expr: sp.Expr) -> bool:
    # Cheap canonical forms first: expanding settles identities between polynomials in the same
    # atoms, and expanding the numerator over a common denominator settles rational ones (softmax).
    # simplify alone would spend minutes on the exponentials of a small network.
    return (
        expr == 0
        or sp.expand(expr) == 0
        or sp.expand(sp.numer(sp.together(expr))) == 0
        or sp.simplify(expr) == 0
    )


def assert_identity(
    lhs: sp.Expr | sp.MatrixBase, rhs: sp.Expr | sp.MatrixBase, *, claim: str, sizes: str | None = None
) -> None:
    """Assert that SymPy proves ``lhs == rhs``: the difference reduces to exactly zero.

    Works for scalars and for matrices (entry by entry).  ``claim`` says in words
    what is being proved.  ``sizes`` says for which sizes: ``"all"`` when the dimensions
    are symbols (the identity is proved for every size at once), otherwise the sizes
    the proof used, in words (``"widths [2, 3, 2, 2]"``); ``None`` means the fixed
    shapes of the expressions compared.  The verification index shows it.
    """
    if sizes is not None and not isinstance(sizes, str):
        raise TypeError(f"assert_identity: argument 'sizes' must be a string or None, got {type(sizes).__name__}")
    if sizes is not None and not sizes.strip():
        raise ValueError("assert_identity: argument 'sizes' must be 'all' or a description of the sizes, got ''")
    difference = sp.Matrix(lhs) - sp.Matrix(rhs) if isinstance(lhs, sp.MatrixBase) else sp.Matrix([lhs - rhs])
    residual = [e for e in difference if not _is_zero(e)]
    if residual:
        raise AssertionError(f"{claim}: SymPy could not reduce lhs - rhs to zero; a residual entry is {residual[0]}")
