"""SymPy building blocks shared by the chapters and the tests.

A :class:`SymbolicMLP` is the book's network for one sample, written with
column vectors exactly as on the page,

.. math::

    a^0 = x, \\qquad z^l = W^l a^{l-1} + b^l, \\qquad a^l = \\sigma(z^l),

with every weight, bias, input and target a SymPy symbol.  Its loss can be
differentiated directly (:func:`direct_gradients`) or by the backpropagation
recursion (:func:`backprop_gradients`); the book proves the two equal.
:func:`lambdify_torch` turns any of these expressions into a function of a
torch tensor, so that the engine can be checked against them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import sympy as sp
import torch

from ._checks import check_choice, check_shape, check_tensor


def sigmoid(z: sp.Expr) -> sp.Expr:
    """:math:`\\sigma(z) = 1 / (1 + e^{-z})`."""
    return 1 / (1 + sp.exp(-z))


def relu(z: sp.Expr) -> sp.Expr:
    """:math:`\\max(0, z)`; SymPy differentiates it to ``Heaviside(z)``."""
    return sp.Max(0, z)


ACTIVATIONS: dict[str, Callable[[sp.Expr], sp.Expr]] = {
    "sigmoid": sigmoid,
    "tanh": sp.tanh,
    "relu": relu,
    "any": sp.Function("sigma"),
}
"""SymPy versions of the activations ``bplib.MLP`` accepts, and ``"any"``: an undefined function
:math:`\\sigma`, for which SymPy keeps :math:`\\sigma'` symbolic -- an identity proved with it holds
for every differentiable activation (and is proved much faster than with a concrete one)."""


def softmax(z: sp.Matrix) -> sp.Matrix:
    """:math:`p_j = e^{z_j} / \\sum_k e^{z_k}` for a column vector ``z``."""
    e = z.applyfunc(sp.exp)
    return e / sum(e)


def derivative(activation: str) -> Callable[[sp.Expr], sp.Expr]:
    """Return :math:`\\sigma'` for a named activation, as a function of the pre-activation."""
    check_choice("derivative", "activation", activation, tuple(ACTIVATIONS))
    t = sp.Symbol("t", real=True)
    d = sp.diff(ACTIVATIONS[activation](t), t)
    return lambda z: d.subs(t, z)


@dataclass(frozen=True)
class SymbolicMLP:
    """An L-layer network for one sample with symbolic parameters (see :func:`symbolic_mlp`)."""

    sizes: tuple[int, ...]
    activation: str
    loss_name: str
    x: sp.Matrix  #: input :math:`x = a^0`, shape (n_0, 1)
    y: sp.Matrix  #: target, shape (n_L, 1); values for MSE, class probabilities for softmax-CE (the last being 1 - the others)
    weights: tuple[sp.Matrix, ...]  #: :math:`W^l`, shape (n_l, n_{l-1}), entries ``w^l_{jk}``
    biases: tuple[sp.Matrix, ...]  #: :math:`b^l`, shape (n_l, 1)
    z: tuple[sp.Matrix, ...]  #: pre-activations :math:`z^1, \dots, z^L`
    a: tuple[sp.Matrix, ...]  #: activations :math:`a^0 = x, a^1, \dots, a^{L-1}`
    output: sp.Matrix  #: :math:`\hat y`: :math:`z^L` for MSE, :math:`\operatorname{softmax}(z^L)` for softmax-CE
    loss: sp.Expr  #: the scalar loss for this sample

    @property
    def symbols(self) -> tuple[sp.Symbol, ...]:
        """Every free symbol, in a fixed order (weights, biases layer by layer and row-major, input, target).

        For softmax-CE the target contributes its first n_L - 1 entries (the last is determined by them).
        """
        blocks = [*self.weights, *self.biases, self.x, self.y]
        return tuple(s for block in blocks for s in block if isinstance(s, sp.Symbol))

    def values(
        self, weights: Sequence[torch.Tensor], biases: Sequence[torch.Tensor], x: torch.Tensor, y: torch.Tensor
    ) -> torch.Tensor:
        """Stack numeric values in the order of :attr:`symbols`, as one float64 vector.

        ``weights``/``biases`` as ``bplib.MLP`` holds them, ``x`` of shape (n_0,), ``y`` of shape (n_L,).
        """
        fn = "SymbolicMLP.values"
        parts = []
        for name, tensors, blocks, shape_of in (
            ("weights", weights, self.weights, lambda block: block.shape),
            ("biases", biases, self.biases, lambda block: (block.rows,)),
        ):
            if len(tensors) != len(blocks):
                raise ValueError(f"{fn}: argument '{name}' must hold {len(blocks)} tensors, got {len(tensors)}")
            for l, (t, block) in enumerate(zip(tensors, blocks)):
                check_tensor(fn, f"{name}[{l}]", t)
                check_shape(fn, f"{name}[{l}]", t, shape_of(block), f"layer {l + 1}")
                parts.append(t.reshape(-1))
        for name, t, block in (("x", x, self.x), ("y", y, self.y)):
            check_tensor(fn, name, t)
            check_shape(fn, name, t, (len(block),), "one sample")
        parts.append(x)
        parts.append(y if self.loss_name == "mse" else y[:-1])
        return torch.cat([p.detach().to(device="cpu", dtype=torch.float64) for p in parts])


def symbolic_mlp(sizes: Sequence[int], activation: str = "sigmoid", loss: str = "mse") -> SymbolicMLP:
    """Build the book's L-layer network for one sample with symbolic weights.

    ``sizes = [n_0, ..., n_L]``; ``activation`` is applied to layers 1..L-1; the output
    layer is affine and ``loss`` is ``"mse"`` (:math:`\\tfrac12\\lVert z^L - y\\rVert^2`) or
    ``"softmax_ce"`` (:math:`-\\sum_j y_j \\log \\operatorname{softmax}(z^L)_j`).  These are
    the per-sample versions of ``bplib.MLP``'s losses (which average over the batch).
    """
    fn = "symbolic_mlp"
    sizes = tuple(sizes)
    if len(sizes) < 2 or not all(isinstance(n, int) and n > 0 for n in sizes):
        raise ValueError(f"{fn}: argument 'sizes' must list at least two positive integers, got {sizes!r}")
    check_choice(fn, "activation", activation, tuple(ACTIVATIONS))
    check_choice(fn, "loss", loss, ("mse", "softmax_ce"))
    sigma = ACTIVATIONS[activation]
    L = len(sizes) - 1
    x = sp.Matrix(sp.symbols(f"x_1:{sizes[0] + 1}", real=True))
    if loss == "mse":
        y = sp.Matrix(sp.symbols(f"y_1:{sizes[L] + 1}", real=True))
    else:  # a probability vector: the last entry is 1 minus the others, so sum(y) = 1 holds exactly
        free = sp.symbols(f"y_1:{sizes[L]}", real=True)
        y = sp.Matrix([*free, 1 - sum(free)])
    weights = tuple(
        sp.Matrix(sizes[l], sizes[l - 1], lambda j, k: sp.Symbol(f"w^{l}_{j + 1}{k + 1}", real=True))
        for l in range(1, L + 1)
    )
    biases = tuple(
        sp.Matrix(sizes[l], 1, lambda j, _: sp.Symbol(f"b^{l}_{j + 1}", real=True)) for l in range(1, L + 1)
    )
    a, z = [x], []
    for l in range(L):
        z.append(weights[l] * a[-1] + biases[l])
        if l < L - 1:
            a.append(z[-1].applyfunc(sigma))
    if loss == "mse":
        output = z[-1]
        loss_expr = sum((output - y).applyfunc(lambda r: r**2)) / 2
    else:
        output = softmax(z[-1])
        loss_expr = -sum(y[j] * sp.log(output[j]) for j in range(sizes[L]))
    return SymbolicMLP(sizes, activation, loss, x, y, weights, biases, tuple(z), tuple(a), output, loss_expr)


def direct_gradients(net: SymbolicMLP) -> tuple[list[sp.Matrix], list[sp.Matrix]]:
    """Differentiate the loss with respect to every weight and bias, one entry at a time."""
    dweights = [W.applyfunc(lambda w: sp.diff(net.loss, w)) for W in net.weights]
    dbiases = [b.applyfunc(lambda c: sp.diff(net.loss, c)) for b in net.biases]
    return dweights, dbiases


def output_error(net: SymbolicMLP) -> sp.Matrix:
    """:math:`\\delta^L = \\partial L / \\partial z^L`: :math:`z^L - y` for MSE and :math:`p - y` for softmax-CE.

    The softmax-CE form uses :math:`\\sum_j y_j = 1`, built into :attr:`SymbolicMLP.y`; the book derives it from the
    softmax Jacobian :math:`\\operatorname{diag}(p) - p p^\\top`.
    """
    return net.output - net.y


def backprop_gradients(net: SymbolicMLP) -> tuple[list[sp.Matrix], list[sp.Matrix]]:
    """Gradients by the recursion :math:`\\delta^l = (W^{l+1})^\\top \\delta^{l+1} \\odot \\sigma'(z^l)`.

    Then :math:`\\partial L/\\partial W^l = \\delta^l (a^{l-1})^\\top` and :math:`\\partial L/\\partial b^l = \\delta^l`.
    """
    sigma_prime = derivative(net.activation)
    L = len(net.weights)
    deltas = [None] * L
    deltas[L - 1] = output_error(net)
    for l in range(L - 2, -1, -1):
        back = net.weights[l + 1].T * deltas[l + 1]
        deltas[l] = back.multiply_elementwise(net.z[l].applyfunc(sigma_prime))
    dweights = [deltas[l] * net.a[l].T for l in range(L)]
    return dweights, list(deltas)


def _heaviside(x: object, at_zero: float = 0.5) -> np.ndarray:
    return np.heaviside(x, at_zero)


def _as_tensor(value: object) -> torch.Tensor:
    return torch.as_tensor(np.asarray(value, dtype=np.float64))


def lambdify_torch(symbols: Sequence[sp.Symbol], expr: sp.Expr | sp.Matrix) -> Callable[[torch.Tensor], torch.Tensor]:
    """Compile ``expr`` into a function of one vector of values, one per symbol, returning float64 torch.

    The returned function takes a 1-D tensor ``v`` with ``v[i]`` the value of
    ``symbols[i]`` and returns a tensor shaped like ``expr`` (``()`` for a scalar,
    ``(rows, cols)`` for a matrix) on ``v``'s device.  Evaluation goes through
    NumPy in float64, so it is independent of the engine it checks.
    """
    symbols = tuple(symbols)
    # lambdify gives every symbol whose name is no Python identifier (w^1_11, ...) a dummy in a pass of its
    # own over the whole expression; renaming them all in one pass first compiles a network several times faster
    plain = sp.symbols(f"v0:{len(symbols)}")
    renamed = sp.sympify(expr).xreplace(dict(zip(symbols, plain)))
    # NumPy's printer would rewrite Heaviside (the derivative of relu) as a Piecewise and spend minutes on its logic
    compiled = sp.lambdify(plain, renamed, modules=[{"Heaviside": _heaviside}, "numpy"])

    def evaluate(v: torch.Tensor) -> torch.Tensor:
        check_tensor("lambdify_torch", "v", v, ndim=1)
        check_shape("lambdify_torch", "v", v, (len(symbols),), "one value per symbol")
        out = _as_tensor(compiled(*v.detach().to("cpu", torch.float64).tolist()))
        return out.to(v.device)

    return evaluate
