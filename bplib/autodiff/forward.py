r"""Forward-mode automatic differentiation: dual numbers and a table of JVP rules.

A :class:`Dual` carries a ``primal`` :math:`x` and a ``tangent`` :math:`\dot x`, the direction in
which :math:`x` moves; an operation maps them to :math:`f(x)` and
:math:`\dot y = J_f(x)\, \dot x`, the Jacobian–vector product (JVP).  With scalars this is
arithmetic on dual numbers :math:`x + \dot x \varepsilon` with :math:`\varepsilon^2 = 0`
(W. K. Clifford, 1873): :math:`f(x + \dot x \varepsilon) = f(x) + f'(x) \dot x \varepsilon`.

The rules live in a table keyed by primitive, :data:`JVP_RULES`, as in JAX's Autodidax.  A rule
takes the primals and returns the primal output together with one *linear map per operand*, the
partial JVP :math:`\dot u \mapsto (\partial f / \partial u)\, \dot u`; :func:`apply` sums the
partial JVPs of the operands that carry a tangent,

.. math::

    \dot y = \sum_{u \,:\, \dot u \ne 0} \frac{\partial f}{\partial u}\, \dot u ,

and broadcasts the sum to the output's shape.  A constant (a number, a tensor, or a Dual whose
``tangent`` is ``None``) carries the *symbolic zero* tangent: its partial JVP is never evaluated, so
a constant weight matrix costs no tangent product.  One pass of forward mode gives one column
:math:`J \dot x` of the Jacobian; :func:`jacobian` makes one pass per input entry.

References: R. E. Wengert (1964), the forward mode; A. Griewank, A. Walther (2008), *Evaluating
Derivatives*, SIAM; the JAX authors, "Autodidax: JAX core from scratch".

Not done here: no batched tangents (one direction per pass, where ``torch.func.jvp`` under
``vmap`` pushes many), no nesting (tangents are tensors, not Duals), no in-place operations.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .._checks import check_same_dtype_and_device, check_shape, check_tensor
from ._operands import (
    BINARY,
    PARAMETERS,
    as_data,
    check_dim,
    check_exponent,
    check_operands,
    check_signature,
    check_transpose,
    constant,
)
from .counting import _record

_PartialJVPs = tuple[Callable[[torch.Tensor], torch.Tensor], ...]


# ------------------------------------------------------------------------------ the rules, each beside its forward


def _add(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, _PartialJVPs]:
    return a + b, (lambda a_dot: a_dot, lambda b_dot: b_dot)


def _sub(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, _PartialJVPs]:
    return a - b, (lambda a_dot: a_dot, lambda b_dot: -b_dot)


def _neg(a: torch.Tensor) -> tuple[torch.Tensor, _PartialJVPs]:
    return -a, (lambda a_dot: -a_dot,)


def _mul(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, _PartialJVPs]:
    return a * b, (lambda a_dot: a_dot * b, lambda b_dot: a * b_dot)


def _div(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, _PartialJVPs]:
    out = a / b
    return out, (lambda a_dot: a_dot / b, lambda b_dot: -b_dot * out / b)


def _pow(a: torch.Tensor, *, exponent: float) -> tuple[torch.Tensor, _PartialJVPs]:
    if exponent == 0:  # a constant: tangent 0, even at a = 0 where a^(p - 1) is infinite (as torch takes it)
        return a**exponent, (lambda a_dot: torch.zeros_like(a),)
    return a**exponent, (lambda a_dot: a_dot * exponent * a ** (exponent - 1),)


def _matmul(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, _PartialJVPs]:
    return a @ b, (lambda a_dot: a_dot @ b, lambda b_dot: a @ b_dot)


def _transpose(a: torch.Tensor) -> tuple[torch.Tensor, _PartialJVPs]:
    return a.mT, (lambda a_dot: a_dot.mT,)


def _sum(a: torch.Tensor, *, dim: int | None = None) -> tuple[torch.Tensor, _PartialJVPs]:
    def total(t: torch.Tensor) -> torch.Tensor:  # linear, so its JVP is itself
        return t.sum() if dim is None else t.sum(dim)

    return total(a), (total,)


def _mean(a: torch.Tensor, *, dim: int | None = None) -> tuple[torch.Tensor, _PartialJVPs]:
    def average(t: torch.Tensor) -> torch.Tensor:  # linear, so its JVP is itself
        return t.mean() if dim is None else t.mean(dim)

    return average(a), (average,)


def _exp(a: torch.Tensor) -> tuple[torch.Tensor, _PartialJVPs]:
    out = a.exp()
    return out, (lambda a_dot: a_dot * out,)


def _log(a: torch.Tensor) -> tuple[torch.Tensor, _PartialJVPs]:
    return a.log(), (lambda a_dot: a_dot / a,)


def _tanh(a: torch.Tensor) -> tuple[torch.Tensor, _PartialJVPs]:
    out = a.tanh()
    return out, (lambda a_dot: a_dot * (1 - out * out),)


def _relu(a: torch.Tensor) -> tuple[torch.Tensor, _PartialJVPs]:
    return a.clamp_min(0), (lambda a_dot: a_dot * (a > 0),)  # 0 at a = 0, as torch takes it


def _sigmoid(a: torch.Tensor) -> tuple[torch.Tensor, _PartialJVPs]:
    out = a.sigmoid()
    return out, (lambda a_dot: a_dot * out * (1 - out),)


def _log_softmax(a: torch.Tensor, *, dim: int = -1) -> tuple[torch.Tensor, _PartialJVPs]:
    out = a.log_softmax(dim)
    p = out.exp()
    return out, (lambda a_dot: a_dot - (p * a_dot).sum(dim, keepdim=True),)


JVP_RULES: dict[str, Callable[..., tuple[torch.Tensor, _PartialJVPs]]] = {
    "add": _add,
    "sub": _sub,
    "neg": _neg,
    "mul": _mul,
    "div": _div,
    "pow": _pow,
    "matmul": _matmul,
    "transpose": _transpose,
    "sum": _sum,
    "mean": _mean,
    "exp": _exp,
    "log": _log,
    "tanh": _tanh,
    "relu": _relu,
    "sigmoid": _sigmoid,
    "log_softmax": _log_softmax,
}
"""Each primitive's JVP rule, ``rule(*primals, **params) -> (primal_out, partial JVPs)``."""

# ------------------------------------------------------------------------------ dual numbers


class Dual:
    """A primal tensor and its tangent, for forward-mode differentiation.

    Parameters
    ----------
    primal:
        A floating tensor, or a Python real number (made a 0-d float64 tensor).
    tangent:
        A tensor of the primal's shape, dtype and device; ``None`` (the default) for a constant,
        whose tangent is zero.
    """

    def __init__(self, primal: torch.Tensor | float, tangent: torch.Tensor | None = None) -> None:
        self.primal = as_data("Dual", "primal", primal)
        if tangent is not None:
            check_tensor("Dual", "tangent", tangent, floating=True)
            check_same_dtype_and_device("Dual", ("primal", self.primal), ("tangent", tangent))
            check_shape("Dual", "tangent", tangent, tuple(self.primal.shape), "the shape of the primal")
        self.tangent = tangent

    @property
    def shape(self) -> torch.Size:
        """The shape of ``primal``."""
        return self.primal.shape

    def __repr__(self) -> str:
        return f"Dual(shape={tuple(self.shape)}, tangent={'zero' if self.tangent is None else 'given'})"

    def __add__(self, other: Dual | torch.Tensor | float) -> Dual:
        return apply("add", self, other)

    def __radd__(self, other: torch.Tensor | float) -> Dual:
        return apply("add", _constant("add", other, self), self)

    def __sub__(self, other: Dual | torch.Tensor | float) -> Dual:
        return apply("sub", self, other)

    def __rsub__(self, other: torch.Tensor | float) -> Dual:
        return apply("sub", _constant("sub", other, self), self)

    def __neg__(self) -> Dual:
        return apply("neg", self)

    def __mul__(self, other: Dual | torch.Tensor | float) -> Dual:
        return apply("mul", self, other)

    def __rmul__(self, other: torch.Tensor | float) -> Dual:
        return apply("mul", _constant("mul", other, self), self)

    def __truediv__(self, other: Dual | torch.Tensor | float) -> Dual:
        return apply("div", self, other)

    def __rtruediv__(self, other: torch.Tensor | float) -> Dual:
        return apply("div", _constant("div", other, self), self)

    def __pow__(self, exponent: float) -> Dual:
        return apply("pow", self, exponent=exponent)

    def __matmul__(self, other: Dual | torch.Tensor) -> Dual:
        return apply("matmul", self, other)

    def __rmatmul__(self, other: torch.Tensor) -> Dual:
        return apply("matmul", _constant("matmul", other, self), self)

    @property
    def mT(self) -> Dual:  # noqa: N802 -- torch's name
        """The transpose of the last two dimensions (``x.mT`` in torch)."""
        return apply("transpose", self)

    def sum(self, dim: int | None = None) -> Dual:
        """The sum of all entries (``dim=None``) or along ``dim``."""
        return apply("sum", self, dim=dim)

    def mean(self, dim: int | None = None) -> Dual:
        """The mean of all entries (``dim=None``) or along ``dim``."""
        return apply("mean", self, dim=dim)

    def exp(self) -> Dual:
        """:math:`e^x`."""
        return apply("exp", self)

    def log(self) -> Dual:
        """:math:`\\log x`."""
        return apply("log", self)

    def tanh(self) -> Dual:
        """:math:`\\tanh x`."""
        return apply("tanh", self)

    def relu(self) -> Dual:
        """:math:`\\max(0, x)`."""
        return apply("relu", self)

    def sigmoid(self) -> Dual:
        """:math:`1/(1 + e^{-x})`."""
        return apply("sigmoid", self)

    def log_softmax(self, dim: int = -1) -> Dual:
        """:math:`x - \\log \\sum e^{x}` along ``dim``."""
        return apply("log_softmax", self, dim=dim)


def _constant(op: str, x: object, like: Dual) -> Dual:
    return Dual(constant(f"Dual.{op}", "other", x, like.primal))


def _operands(op: str, operands: tuple[object, ...], params: dict[str, object]) -> list[Dual]:
    """The operands of :func:`apply` as Duals (constants without tangent), after checking them."""
    if op not in JVP_RULES:
        raise ValueError(f"apply: argument 'op' must be one of {', '.join(map(repr, JVP_RULES))}, got {op!r}")
    if not operands or not isinstance(operands[0], Dual):
        got = type(operands[0]).__name__ if operands else "no operand"
        raise TypeError(f"apply: the first operand of {op!r} must be a Dual, got {got}")
    check_signature(op, len(operands), params)
    duals = [x if isinstance(x, Dual) else _constant(op, x, operands[0]) for x in operands]
    fn, a = f"Dual.{op}", duals[0].primal
    if op in BINARY:
        check_operands(fn, op, a, duals[1].primal)
    elif op == "transpose":
        check_transpose(fn, a)
    elif op == "pow":
        check_exponent(fn, params["exponent"])
    elif op in PARAMETERS:  # sum, mean, log_softmax: a dimension
        default = -1 if op == "log_softmax" else None
        check_dim(fn, params.get("dim", default), a.dim(), optional=op != "log_softmax")
    return duals


def apply(op: str, *operands: Dual | torch.Tensor | float, **params: object) -> Dual:
    """Apply the primitive ``op``: its rule, then the sum of the tangents' partial JVPs.

    Parameters (``dim``, ``exponent``) are passed by keyword.  The first operand must
    be a Dual; the others may be Duals, tensors or numbers.
    """
    duals = _operands(op, operands, params)
    primal, partial_jvps = JVP_RULES[op](*(d.primal for d in duals), **params)
    _record("primal", op)
    terms = [partial(d.tangent) for partial, d in zip(partial_jvps, duals)
             if d.tangent is not None]
    if not terms:  # only constants: no tangent to compute
        return Dual(primal)
    _record("tangent", op)
    tangent = terms[0] if len(terms) == 1 else terms[0] + terms[1]
    return Dual(primal, tangent.expand(primal.shape))  # broadcast, as the primal was


def jvp(
    f: Callable[..., Dual], primals: tuple[torch.Tensor, ...], tangents: tuple[torch.Tensor, ...]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Evaluate ``f`` on Duals; return its output and the Jacobian–vector product :math:`J \\dot x`.

    As ``torch.func.jvp``: ``primals`` and ``tangents`` are tuples of tensors, one pair per argument
    of ``f``.  An output that does not depend on the inputs gets a zero tangent.
    """
    if not isinstance(primals, tuple) or not isinstance(tangents, tuple) or len(primals) != len(tangents):
        lengths = f" of lengths {len(primals)} and {len(tangents)}" if isinstance(primals, tuple) and isinstance(
            tangents, tuple
        ) else ""
        raise TypeError(
            f"jvp: arguments 'primals' and 'tangents' must be tuples of tensors of the same length, got "
            f"{type(primals).__name__} and {type(tangents).__name__}{lengths}"
        )
    out = f(*(Dual(p, t) for p, t in zip(primals, tangents)))
    if not isinstance(out, Dual):
        raise TypeError(f"jvp: argument 'f' must return a Dual computed from its arguments, got {type(out).__name__}")
    return out.primal, torch.zeros_like(out.primal) if out.tangent is None else out.tangent


def jacobian(f: Callable[[Dual], Dual], x: torch.Tensor) -> torch.Tensor:
    """The Jacobian of ``f`` at ``x``, one column per input entry: one forward pass per input (n of them).

    Shape ``out.shape + x.shape``, as ``torch.autograd.functional.jacobian`` returns it.
    """
    check_tensor("jacobian", "x", x, floating=True)
    if x.numel() == 0:
        raise ValueError(f"jacobian: argument 'x' must hold at least one entry, got shape {tuple(x.shape)}")
    directions = torch.eye(x.numel(), dtype=x.dtype, device=x.device).reshape(-1, *x.shape)
    columns = [jvp(f, (x,), (direction,))[1] for direction in directions]  # column j: J e_j
    return torch.stack(columns, dim=-1).reshape(*columns[0].shape, *x.shape)
