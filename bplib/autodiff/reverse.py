r"""Reverse-mode automatic differentiation, in one class: :class:`Value`.

A :class:`Value` wraps a tensor ``data`` and remembers how it was made: the primitive ``op``, the
``parents`` it was computed from, and a closure that knows the primitive's vector–Jacobian
product.  Every operation below computes its result and, right beside it, defines that closure.
:meth:`Value.backward` then visits the graph in reverse topological order, so that each node's
*adjoint* :math:`\bar v = \partial y / \partial v` (its ``grad``) is complete before its closure
passes it on to the parents:

.. math::

    \bar u \mathrel{+}= \Big(\frac{\partial v}{\partial u}\Big)^{\!\top} \bar v
    \qquad \text{for every parent } u \text{ of } v .

The ``+=`` is the *fork rule*: a value used by several operations receives one contribution from
each, and the contributions add (the sum over paths of the chain rule).  The same holds for an
operand stretched by broadcasting, whose entries are each used many times: the closure sums the
gradient back to the operand's shape (:func:`sum_to_shape`).

Conventions, those of ``torch.autograd``: a Value made by the user is a *leaf* and, by default,
requires a gradient; numbers and tensors mixed into an expression are constants (no gradient, no
closure call); a leaf's ``grad`` accumulates over calls of :meth:`~Value.backward` (set it to ``None``
to start afresh).  Unlike torch, every intermediate Value keeps its ``grad`` after the sweep (reset
at the start of the next), so that the graph can be drawn with its gradients
(:func:`bplib.autodiff.graph.draw_graph`).

References: S. Linnainmaa (1970), the reverse mode; A. Griewank, A. Walther (2008), *Evaluating
Derivatives*, SIAM; A. Karpathy (2020), micrograd, whose shape this module follows with tensors in
place of scalars.

Not done here: no in-place operations and no views, no indexing, no higher derivatives (the
closures compute with tensors, so a backward sweep builds no graph of its own), no freeing of the
graph after a sweep.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .._checks import check_same_dtype_and_device, check_tensor
from ._operands import (
    as_data,
    check_dim,
    check_exponent,
    check_operands,
    check_signature,
    check_transpose,
    constant,
)
from .counting import _record


def sum_to_shape(grad: torch.Tensor, shape: torch.Size | tuple[int, ...]) -> torch.Tensor:
    r"""Sum ``grad`` down to ``shape``: the adjoint of broadcasting an operand of that shape.

    Broadcasting prepends dimensions of size 1 and stretches every dimension of size 1; each entry of
    the operand is then used once per copy, so its gradient is the sum over the copies.  For a bias
    :math:`b` broadcast to the rows of a batch, :math:`\mathbf{1}_m b^\top`, this is
    :math:`\bar b = \bar Z^\top \mathbf{1}_m` (:doc:`ch05_batching`).
    """
    extra = grad.dim() - len(shape)
    if extra:
        grad = grad.sum(dim=tuple(range(extra)))  # the prepended dimensions
    stretched = tuple(i for i, size in enumerate(shape) if size == 1 and grad.shape[i] != 1)
    return grad.sum(dim=stretched, keepdim=True) if stretched else grad


def topological_order(root: Value) -> list[Value]:
    """Every Value ``root`` was computed from, ``root`` last, each after all of its parents.

    A depth-first search that appends a node once all its parents are appended; iterative, so
    that long chains do not hit Python's recursion limit.
    """
    if not isinstance(root, Value):
        raise TypeError(f"topological_order: argument 'root' must be a Value, got {type(root).__name__}")
    order: list[Value] = []
    seen: set[int] = set()
    stack: list[tuple[Value, bool]] = [(root, False)]
    while stack:
        node, parents_done = stack.pop()
        if parents_done:
            order.append(node)
        elif id(node) not in seen:
            seen.add(id(node))
            stack.append((node, True))
            stack.extend((parent, False) for parent in reversed(node.parents))
    return order


class Value:
    """A tensor that remembers how it was computed, for reverse-mode differentiation.

    Parameters
    ----------
    data:
        A floating tensor, or a Python real number (made a 0-d float64 tensor).
    requires_grad:
        Whether :meth:`backward` computes this leaf's gradient (default ``True``).
    name:
        A label for drawings (:func:`bplib.autodiff.graph.draw_graph`).

    Attributes
    ----------
    data:
        The tensor.
    grad:
        :math:`\\partial y / \\partial v` for the output ``y`` of the last :meth:`backward` call,
        shaped like ``data``; ``None`` before it.
    op:
        The primitive that computed the Value, ``"leaf"`` for a leaf, ``"const"`` for a constant.
    parents:
        The operands of ``op``, as Values (constants included).
    """

    def __init__(self, data: torch.Tensor | float, *, requires_grad: bool = True, name: str | None = None) -> None:
        if not isinstance(requires_grad, bool):
            raise TypeError(f"Value: argument 'requires_grad' must be True or False, got {type(requires_grad).__name__}")
        self.data = as_data("Value", "data", data)
        self.requires_grad = requires_grad
        self.name = name
        self.grad: torch.Tensor | None = None
        self.op = "leaf" if requires_grad else "const"
        self.parents: tuple[Value, ...] = ()
        self._backward: Callable[[], None] | None = None

    # -------------------------------------------------------------------------- plumbing

    @property
    def shape(self) -> torch.Size:
        """The shape of ``data``."""
        return self.data.shape

    def __repr__(self) -> str:
        label = f"{self.name!r}, " if self.name else ""
        return f"Value({label}op={self.op!r}, shape={tuple(self.shape)}, requires_grad={self.requires_grad})"

    def _operand(self, op: str, other: object) -> Value:
        """``other`` as a Value: itself, or a constant; checked against ``self`` for ``op``."""
        fn = f"Value.{op}"
        if not isinstance(other, Value):
            other = Value(constant(fn, "other", other, self.data), requires_grad=False)
        check_operands(fn, op, self.data, other.data)
        return other

    def _result(self, data: torch.Tensor, parents: tuple[Value, ...], op: str) -> Value:
        """A new node: one forward evaluation of ``op``."""
        _record("primal", op)
        out = Value(data, requires_grad=any(p.requires_grad for p in parents))
        out.op, out.parents = op, parents
        return out

    def _accumulate(self, grad: Callable[[], torch.Tensor]) -> None:
        """Add a contribution to ``self.grad`` (the fork rule); computed only if a gradient is required.

        The first contribution is copied, so that no two nodes share a gradient tensor (after ``x + y``
        both would hold the output's own) and a reader may edit one in place, as in torch.
        """
        if self.requires_grad:
            g = sum_to_shape(grad(), self.shape)
            self.grad = g.clone() if self.grad is None else self.grad + g

    # -------------------------------------------------------------------------- arithmetic

    def __add__(self, other: Value | torch.Tensor | float) -> Value:
        b = self._operand("add", other)
        out = self._result(self.data + b.data, (self, b), "add")

        def backward() -> None:
            self._accumulate(lambda: out.grad)
            b._accumulate(lambda: out.grad)

        out._backward = backward
        return out

    def __sub__(self, other: Value | torch.Tensor | float) -> Value:
        b = self._operand("sub", other)
        out = self._result(self.data - b.data, (self, b), "sub")

        def backward() -> None:
            self._accumulate(lambda: out.grad)
            b._accumulate(lambda: -out.grad)

        out._backward = backward
        return out

    def __neg__(self) -> Value:
        out = self._result(-self.data, (self,), "neg")
        out._backward = lambda: self._accumulate(lambda: -out.grad)
        return out

    def __mul__(self, other: Value | torch.Tensor | float) -> Value:
        b = self._operand("mul", other)
        out = self._result(self.data * b.data, (self, b), "mul")

        def backward() -> None:
            self._accumulate(lambda: out.grad * b.data)
            b._accumulate(lambda: out.grad * self.data)

        out._backward = backward
        return out

    def __truediv__(self, other: Value | torch.Tensor | float) -> Value:
        b = self._operand("div", other)
        out = self._result(self.data / b.data, (self, b), "div")

        def backward() -> None:
            self._accumulate(lambda: out.grad / b.data)
            b._accumulate(lambda: -out.grad * out.data / b.data)  # d(a/b)/db = -a/b^2 = -out/b

        out._backward = backward
        return out

    def __pow__(self, exponent: float) -> Value:
        """:math:`x^p` for a constant :math:`p`, derivative :math:`p x^{p-1}`.

        For :math:`p = 0` the derivative is 0, even at :math:`x = 0` where :math:`x^{-1}` is infinite (as torch takes it).
        """
        p = check_exponent("Value.pow", exponent)
        out = self._result(self.data**p, (self,), "pow")
        out._backward = lambda: self._accumulate(
            lambda: torch.zeros_like(self.data) if p == 0 else out.grad * p * self.data ** (p - 1)
        )
        return out

    def __matmul__(self, other: Value | torch.Tensor) -> Value:
        b = self._operand("matmul", other)
        out = self._result(self.data @ b.data, (self, b), "matmul")  # (m, k) @ (k, n) -> (m, n)

        def backward() -> None:
            self._accumulate(lambda: out.grad @ b.data.mT)  # (m, n) @ (n, k)
            b._accumulate(lambda: self.data.mT @ out.grad)  # (k, m) @ (m, n)

        out._backward = backward
        return out

    # the same operations with a constant on the left: 2 - x, t @ x, ...
    def __radd__(self, other: torch.Tensor | float) -> Value:
        return Value(constant("Value.add", "other", other, self.data), requires_grad=False) + self

    def __rsub__(self, other: torch.Tensor | float) -> Value:
        return Value(constant("Value.sub", "other", other, self.data), requires_grad=False) - self

    def __rmul__(self, other: torch.Tensor | float) -> Value:
        return Value(constant("Value.mul", "other", other, self.data), requires_grad=False) * self

    def __rtruediv__(self, other: torch.Tensor | float) -> Value:
        return Value(constant("Value.div", "other", other, self.data), requires_grad=False) / self

    def __rmatmul__(self, other: torch.Tensor) -> Value:
        return Value(constant("Value.matmul", "other", other, self.data), requires_grad=False) @ self

    @property
    def mT(self) -> Value:  # noqa: N802 -- torch's name
        """The transpose of the last two dimensions (``x.mT`` in torch)."""
        check_transpose("Value.transpose", self.data)
        out = self._result(self.data.mT, (self,), "transpose")
        out._backward = lambda: self._accumulate(lambda: out.grad.mT)
        return out

    # -------------------------------------------------------------------------- reductions

    def sum(self, dim: int | None = None) -> Value:
        """The sum of all entries (``dim=None``) or along ``dim``; every entry receives the adjoint of its sum."""
        check_dim("Value.sum", dim, self.data.dim(), optional=True)
        out = self._result(self.data.sum() if dim is None else self.data.sum(dim), (self,), "sum")

        def backward() -> None:
            g = out.grad if dim is None else out.grad.unsqueeze(dim % self.data.dim())
            self._accumulate(lambda: g.expand(self.shape))

        out._backward = backward
        return out

    def mean(self, dim: int | None = None) -> Value:
        """The mean of all entries (``dim=None``) or along ``dim``: the sum's adjoint divided by the count."""
        check_dim("Value.mean", dim, self.data.dim(), optional=True)
        out = self._result(self.data.mean() if dim is None else self.data.mean(dim), (self,), "mean")

        def backward() -> None:
            count = self.data.numel() if dim is None else self.shape[dim]
            g = out.grad if dim is None else out.grad.unsqueeze(dim % self.data.dim())
            self._accumulate(lambda: (g / count).expand(self.shape))

        out._backward = backward
        return out

    # -------------------------------------------------------------------------- element-wise functions

    def exp(self) -> Value:
        """:math:`e^x`, whose derivative is the output itself."""
        out = self._result(self.data.exp(), (self,), "exp")
        out._backward = lambda: self._accumulate(lambda: out.grad * out.data)
        return out

    def log(self) -> Value:
        """:math:`\\log x`, derivative :math:`1/x`."""
        out = self._result(self.data.log(), (self,), "log")
        out._backward = lambda: self._accumulate(lambda: out.grad / self.data)
        return out

    def tanh(self) -> Value:
        """:math:`\\tanh x`, derivative :math:`1 - \\tanh^2 x` (through the output)."""
        out = self._result(self.data.tanh(), (self,), "tanh")
        out._backward = lambda: self._accumulate(lambda: out.grad * (1 - out.data * out.data))
        return out

    def relu(self) -> Value:
        """:math:`\\max(0, x)`, derivative :math:`[x > 0]` (0 at :math:`x = 0`, as torch takes it)."""
        out = self._result(self.data.clamp_min(0), (self,), "relu")
        out._backward = lambda: self._accumulate(lambda: out.grad * (self.data > 0))
        return out

    def sigmoid(self) -> Value:
        """:math:`\\sigma(x) = 1/(1 + e^{-x})`, derivative :math:`\\sigma(x)(1 - \\sigma(x))`."""
        out = self._result(self.data.sigmoid(), (self,), "sigmoid")
        out._backward = lambda: self._accumulate(lambda: out.grad * out.data * (1 - out.data))
        return out

    def log_softmax(self, dim: int = -1) -> Value:
        """:math:`x - \\log \\sum e^{x}` along ``dim``; adjoint :math:`\\bar y - p \\sum \\bar y` with :math:`p = e^y`."""
        check_dim("Value.log_softmax", dim, self.data.dim(), optional=False)
        out = self._result(self.data.log_softmax(dim), (self,), "log_softmax")
        out._backward = lambda: self._accumulate(
            lambda: out.grad - out.data.exp() * out.grad.sum(dim, keepdim=True)
        )
        return out

    # -------------------------------------------------------------------------- the sweep

    def _checked_seed(self, seed: torch.Tensor | None) -> torch.Tensor:
        """The starting adjoint of :meth:`backward`: ``seed`` checked, or 1 for a single number."""
        fn = "Value.backward"
        if not self.requires_grad:
            raise ValueError(
                f"{fn}: this Value depends on no Value with requires_grad=True, so it has no gradient to compute"
            )
        if seed is None:
            if self.data.numel() != 1:
                raise ValueError(
                    f"{fn}: argument 'seed' is required for an output of shape {tuple(self.shape)}: pass the "
                    f"gradient of the final scalar with respect to this output, a tensor of that shape"
                )
            return torch.ones_like(self.data)
        check_tensor(fn, "seed", seed, floating=True)
        check_same_dtype_and_device(fn, ("self", self.data), ("seed", seed))
        if seed.shape != self.shape:
            raise ValueError(
                f"{fn}: argument 'seed' must have the output's shape {tuple(self.shape)}, got {tuple(seed.shape)}"
            )
        return seed

    def backward(self, seed: torch.Tensor | None = None) -> None:
        """Compute the ``grad`` of every Value this one depends on, from ``seed``.

        ``seed`` is :math:`\\bar y`, the gradient of some final scalar with respect to
        this Value, of its shape; it may be left out when this Value holds a single
        number (it is then 1).
        """
        seed = self._checked_seed(seed)
        order = [node for node in topological_order(self) if node.requires_grad]
        for node in order:
            if node.parents:
                node.grad = None  # intermediates start afresh; leaves accumulate
        self._accumulate(lambda: seed)
        for node in reversed(order):  # after all its uses: its adjoint is complete
            if node._backward is not None:
                _record("adjoint", node.op)
                node._backward()


OPERATIONS: dict[str, Callable[..., Value]] = {
    "add": Value.__add__,
    "sub": Value.__sub__,
    "neg": Value.__neg__,
    "mul": Value.__mul__,
    "div": Value.__truediv__,
    "pow": lambda x, exponent: x**exponent,
    "matmul": Value.__matmul__,
    "transpose": lambda x: x.mT,
    "sum": Value.sum,
    "mean": Value.mean,
    "exp": Value.exp,
    "log": Value.log,
    "tanh": Value.tanh,
    "relu": Value.relu,
    "sigmoid": Value.sigmoid,
    "log_softmax": Value.log_softmax,
}
"""The primitives, by name, as :func:`apply` calls them."""


def apply(op: str, *operands: Value | torch.Tensor | float, **params: object) -> Value:
    """Apply the primitive named ``op`` to Values: ``apply("mul", x, y)`` is ``x * y``.

    Parameters (``dim``, ``exponent``) are passed by keyword.  The first operand must be a Value.
    """
    if op not in OPERATIONS:
        raise ValueError(f"apply: argument 'op' must be one of {', '.join(map(repr, OPERATIONS))}, got {op!r}")
    if not operands or not isinstance(operands[0], Value):
        got = type(operands[0]).__name__ if operands else "no operand"
        raise TypeError(f"apply: the first operand of {op!r} must be a Value, got {got}")
    check_signature(op, len(operands), params)
    return OPERATIONS[op](*operands, **params)


def vjp(f: Callable[..., Value], *primals: torch.Tensor) -> tuple[torch.Tensor, Callable[[torch.Tensor], tuple[torch.Tensor, ...]]]:
    """Evaluate ``f`` on Values made from ``primals``; return its output and its vector–Jacobian product.

    As ``torch.func.vjp``: ``out, vjp_fn = vjp(f, x, y)``; ``vjp_fn(v)`` returns
    :math:`(J_x^\\top v, J_y^\\top v)`.  The graph is built once; each call of ``vjp_fn`` is one
    backward sweep over it.
    """
    leaves = tuple(Value(check_tensor("vjp", "primals", p, floating=True)) for p in primals)
    out = f(*leaves)
    if not isinstance(out, Value):
        raise TypeError(f"vjp: argument 'f' must return a Value computed from its arguments, got {type(out).__name__}")

    def vjp_fn(cotangent: torch.Tensor) -> tuple[torch.Tensor, ...]:
        for leaf in leaves:
            leaf.grad = None
        out.backward(cotangent)
        return tuple(torch.zeros_like(leaf.data) if leaf.grad is None else leaf.grad for leaf in leaves)

    return out.data, vjp_fn


def jacobian(f: Callable[[Value], Value], x: torch.Tensor) -> torch.Tensor:
    """The Jacobian of ``f`` at ``x``, one row per output entry: one backward sweep per output (m of them).

    Shape ``out.shape + x.shape``, as ``torch.autograd.functional.jacobian`` returns it.
    """
    out, vjp_fn = vjp(f, x)
    if out.numel() == 0:
        raise ValueError(f"jacobian: the output of 'f' must hold at least one entry, got shape {tuple(out.shape)}")
    seeds = torch.eye(out.numel(), dtype=out.dtype, device=out.device).reshape(-1, *out.shape)
    rows = [vjp_fn(seed)[0] for seed in seeds]  # row i: e_i^T J
    return torch.stack(rows).reshape(*out.shape, *x.shape)
