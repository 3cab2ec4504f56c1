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

**Every size at once.**  :func:`dimensions`, :func:`indices` and :func:`tensors` write the same
formulas in index notation with the sizes as symbols, :math:`z_i = \\sum_{j=0}^{k-1} W_{ij} a_j + b_i`
for :math:`0 \\le i \\le n - 1`; :func:`diff_entry` differentiates with respect to one entry, and
:func:`canonical` brings the two sides of an identity to one normal form, so that
:func:`bplib.testing.assert_identity` proves it for every size (``sizes="all"``).  :func:`at_sizes` and
:func:`replace_entries` write a result out at concrete sizes, to compare it with the fixed-size expressions.
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


# --------------------------------------------------------------------------------------------------
# Every size at once: index notation with symbolic dimensions


def _names(fn: str, names: object) -> str:
    if not isinstance(names, str):
        raise TypeError(f"{fn}: argument 'names' must be a string of names such as 'n k', got {type(names).__name__}")
    if not names.strip(" ,"):
        raise ValueError(f"{fn}: argument 'names' must name at least one symbol, got {names!r}")
    return names


def _check_expr(fn: str, name: str, value: object) -> sp.Basic:
    if not isinstance(value, sp.Basic):
        raise TypeError(f"{fn}: argument '{name}' must be a SymPy expression, got {type(value).__name__}")
    return value


def dimensions(names: str) -> sp.Symbol | tuple[sp.Symbol, ...]:
    """Symbols for sizes, positive integers: ``n, k = dimensions("n k")``.

    Names are read as by :func:`sympy.symbols` (one name gives one symbol).  An identity that SymPy
    proves for expressions whose sizes are these symbols holds for every size at once.
    """
    return sp.symbols(_names("dimensions", names), integer=True, positive=True)


def _bound(fn: str, size: object, value: object) -> sp.Expr:
    if isinstance(value, bool) or not isinstance(value, (int, sp.Expr)) or not sp.sympify(value).is_integer:
        raise ValueError(
            f"{fn}: argument 'size' must be a positive integer, an integer SymPy expression such as a symbol of "
            f"dimensions(), or a pair (lower, upper) of integer bounds, got {size!r}"
        )
    return sp.sympify(value)


def indices(names: str, size: int | sp.Expr | tuple[int | sp.Expr, int | sp.Expr]) -> sp.Idx | tuple[sp.Idx, ...]:
    """Index symbols that know their range: ``p, q = indices("p q", n)`` run over :math:`0 \\le p \\le n - 1`.

    ``size`` is the number of values (a symbol of :func:`dimensions` or an integer), or a pair
    ``(lower, upper)`` of inclusive bounds, as in ``indices("s", (2, t))``.  The indices are
    :class:`sympy.Idx` objects: ``sympy.Sum(expr, j)`` sums over the range of ``j``, and
    :func:`evaluate_in_range` reads the range of a free index from it.
    """
    fn = "indices"
    names = _names(fn, names)
    if isinstance(size, tuple):
        if len(size) != 2:
            raise ValueError(f"{fn}: argument 'size' must be a pair (lower, upper) when it is a tuple, got {size!r}")
        bounds = (_bound(fn, size, size[0]), _bound(fn, size, size[1]))
    else:
        count = _bound(fn, size, size)
        if count.is_positive is not True:
            raise ValueError(f"{fn}: argument 'size' must be positive (an index needs a value), got {size!r}")
        bounds = (sp.Integer(0), count - 1)
    return sp.symbols(names, cls=sp.Idx, range=bounds)


def tensors(names: str) -> sp.IndexedBase | tuple[sp.IndexedBase, ...]:
    """Real tensors of symbolic shape, written by their entries: ``W, a = tensors("W a")``, then ``W[i, j] * a[j]``.

    They are :class:`sympy.IndexedBase` objects with real entries; their sizes come from the ranges
    of the indices they are used with.
    """
    return sp.symbols(_names("tensors", names), cls=sp.IndexedBase, real=True)


_Ranges = dict[sp.Expr, tuple[sp.Expr, sp.Expr]]


def _range_of(x: sp.Expr, ranges: _Ranges) -> tuple[sp.Expr, sp.Expr] | None:
    """The bounds of an index: those of the sum that binds it, else those of its :class:`sympy.Idx`."""
    if x in ranges:
        return ranges[x]
    if isinstance(x, sp.Idx) and x.lower is not None:
        return x.lower, x.upper
    return None


def _indices_in(expr: sp.Basic, ranges: _Ranges) -> set[sp.Expr]:
    return {x for x in expr.free_symbols if _range_of(x, ranges) is not None}


def _extremes(expr: sp.Expr, ranges: _Ranges) -> tuple[sp.Expr, sp.Expr] | None:
    """The least and the greatest value of ``expr`` over the box of its indices' ranges; None if not linear in them.

    For ``expr`` linear in the indices with numeric coefficients, each extreme is at a corner: the minimum
    takes every index with a positive coefficient at its lower bound and the others at their upper one.
    """
    found = sorted(_indices_in(expr, ranges), key=str)
    low = high = sp.expand(expr)
    if not found:
        return low, high
    poly = sp.Poly(low, *found)
    slopes = [poly.coeff_monomial(x) for x in found]
    if poly.total_degree() > 1 or not all(slope.is_number for slope in slopes):
        return None
    for x, slope in zip(found, slopes):
        lower, upper = _range_of(x, ranges)
        at_low, at_high = (lower, upper) if slope >= 0 else (upper, lower)
        low, high = low.xreplace({x: at_low}), high.xreplace({x: at_high})
    return sp.expand(low), sp.expand(high)


def _decide(relation: sp.Basic, ranges: _Ranges) -> bool | None:
    """Whether ``relation`` holds for every value of its indices (True), for none (False), or None: undecided."""
    if relation in (sp.true, sp.false):
        return bool(relation)
    extremes = _extremes(relation.lhs - relation.rhs, ranges)
    if extremes is None:
        return None
    low, high = extremes  # of lhs - rhs
    verdicts = {  # (holds everywhere, fails everywhere)
        sp.GreaterThan: (low.is_nonnegative, high.is_negative),
        sp.StrictGreaterThan: (low.is_positive, high.is_nonpositive),
        sp.LessThan: (high.is_nonpositive, low.is_positive),
        sp.StrictLessThan: (high.is_negative, low.is_nonnegative),
        sp.Eq: (low == 0 and high == 0, low.is_positive or high.is_negative),
        sp.Ne: (low.is_positive or high.is_negative, low == 0 and high == 0),
    }
    always, never = verdicts.get(type(relation), (None, None))
    return True if always else False if never else None


def _in_range(fn: str, value: sp.Expr, lower: sp.Expr, upper: sp.Expr, ranges: _Ranges) -> bool:
    """Whether ``lower <= value <= upper`` for every value of the indices; a ValueError when it depends on them.

    "Never" also needs ``upper >= lower - 1``: SymPy's sums over a reversed range count negatively (Karr's
    convention), so a value outside a reversed range may still meet the sum.
    """
    verdicts = [_decide(relation, ranges) for relation in (sp.Ge(value, lower), sp.Le(value, upper))]
    if all(verdicts):
        return True
    if False in verdicts and _decide(sp.Ge(upper - lower + 1, 0), ranges):
        return False
    raise ValueError(
        f"{fn}: cannot decide whether {value} lies in [{lower}, {upper}] from the ranges of the indices; "
        f"give every index its range with indices() and sum over limits that those ranges settle"
    )


def _delta_point(factor: sp.Expr, x: sp.Expr) -> sp.Expr | None:
    """``e`` when ``factor`` is the Kronecker delta :math:`[x = e]` with ``e`` free of ``x``, else None."""
    if not isinstance(factor, sp.KroneckerDelta) or x not in factor.args:
        return None
    (point,) = [arg for arg in factor.args if arg != x]
    return None if x in point.free_symbols else point


def _sum_over(fn: str, summand: sp.Expr, limits: tuple, ranges: _Ranges) -> sp.Expr:
    """One sum, by the rules of :func:`evaluate_in_range`; what they cannot settle stays a ``Sum``."""
    x, lower, upper = limits
    if lower.is_number and upper.is_number:
        return sp.Sum(summand, limits).doit(deep=False)
    if any(_delta_point(delta, x) is not None for delta in summand.atoms(sp.KroneckerDelta)):
        summand = sp.expand_mul(summand)  # bring every delta on x up to a factor of a term
    total = []
    for term in sp.Add.make_args(summand):
        factors = sp.Mul.make_args(term)
        delta = next((f for f in factors if _delta_point(f, x) is not None), None)
        if delta is not None:  # sum over x of [x = e] f(x) = f(e) if e is in the range of x, else 0
            point = _delta_point(delta, x)
            if _in_range(fn, point, lower, upper, ranges):
                total.append(sp.Mul(*(f for f in factors if f is not delta)).subs(x, point))
        else:  # what does not depend on x leaves the sum, so that a delta on an outer index can meet its sum
            total.append(_factor_out(term, limits))
    return sp.Add(*total)


def _evaluate(fn: str, expr: sp.Basic, ranges: _Ranges) -> sp.Basic:
    if isinstance(expr, sp.Sum):  # limits innermost first; SymPy merges nested sums into one with several
        inner = {**ranges, **{x: (lower, upper) for x, lower, upper in expr.limits}}
        result = _evaluate(fn, expr.function, inner)
        for depth, limits in enumerate(expr.limits):
            outer = {**ranges, **{x: (lower, upper) for x, lower, upper in expr.limits[depth + 1 :]}}
            result = _sum_over(fn, result, limits, outer)
        return result
    if isinstance(expr, sp.Piecewise):
        branches = []
        for value, condition in expr.args:
            decided = {}
            for relation in condition.atoms(sp.Rel):
                verdict = _decide(relation, ranges)
                if verdict is None and _indices_in(relation, ranges):
                    raise ValueError(f"{fn}: cannot decide the condition {relation} from the ranges of its indices")
                if verdict is not None:
                    decided[relation] = sp.true if verdict else sp.false
            branches.append((_evaluate(fn, value, ranges), condition.xreplace(decided)))
        return sp.Piecewise(*branches)
    if not expr.args or isinstance(expr, (sp.Indexed, sp.Idx)):
        return expr
    return expr.func(*(_evaluate(fn, arg, ranges) for arg in expr.args))


def evaluate_in_range(expr: sp.Expr) -> sp.Expr:
    """Carry out the sums that index notation settles, and take the branches that the index ranges select.

    Three rules, applied from the innermost sum outwards; what they do not settle stays a sum:

    - :math:`\\sum_{j=a}^{b} [j = e]\\, f(j) = f(e)` when :math:`a \\le e \\le b` for every value of the indices
      in :math:`e`, and 0 when never (``KroneckerDelta``, which differentiating an entry produces, see
      :func:`diff_entry`);
    - what does not depend on :math:`j` leaves the sum, :math:`\\sum_{j=a}^{b} c\\, f(j) = c \\sum_{j=a}^{b} f(j)`
      and :math:`\\sum_{j=a}^{b} c = (b - a + 1)\\, c`;
    - a sum with numeric limits is written out term by term.

    The condition of every ``Piecewise`` that involves an index is decided the same way.  A free index
    ranges over its :func:`indices` range, a summation index over its sum's limits; conditions must be
    linear in the indices, and a relation holds when it holds at the worst corner of their ranges.

    Raises
    ------
    ValueError
        When a condition on an index holds for some of its values and not for others, or is not linear in
        the indices; the expression then depends on more than the ranges say, and nothing is guessed.
    """
    fn = "evaluate_in_range"
    return _evaluate(fn, _check_expr(fn, "expr", expr), {})


def diff_entry(expr: sp.Expr, entry: sp.Indexed | sp.Symbol) -> sp.Expr:
    """The partial derivative of ``expr`` with respect to one entry, such as ``W[p, q]``, for every size.

    SymPy differentiates a sum entry by entry (:math:`\\partial W_{ij} / \\partial W_{pq} = [i = p][j = q]`);
    :func:`evaluate_in_range` then carries out the sums over those Kronecker deltas, using the ranges of
    the indices ``p, q`` of ``entry`` (from :func:`indices`).
    """
    fn = "diff_entry"
    if not isinstance(entry, (sp.Indexed, sp.Symbol)):
        raise TypeError(
            f"{fn}: argument 'entry' must be an entry such as W[p, q] or a symbol, got {type(entry).__name__}"
        )
    return _evaluate(fn, sp.diff(_check_expr(fn, "expr", expr), entry), {})


def _peel(summand: sp.Expr, limits: tuple) -> tuple[tuple, sp.Expr]:
    """A sum to ``b + c``, ``c`` a positive integer, as the sum to ``b`` and ``c`` terms: (new limits, the terms)."""
    x, lower, upper = limits
    offset, base = upper.as_coeff_Add()
    if base == 0 or not offset.is_Integer or offset <= 0:
        return limits, sp.Integer(0)
    # Karr's convention, which SymPy follows, makes this split hold even for an empty or reversed range
    return (x, lower, base), sp.Add(*(summand.subs(x, base + d) for d in range(1, offset + 1)))


def _factor_out(term: sp.Expr, limits: tuple) -> sp.Expr:
    """The sum of one product, with the factors free of the summation index taken out: sum_x c f(x) = c sum_x f(x)."""
    x, lower, upper = limits
    factors = sp.Mul.make_args(term)
    inside = sp.Mul(*(f for f in factors if x in f.free_symbols))
    outside = sp.Mul(*(f for f in factors if x not in f.free_symbols))
    return outside * (sp.Sum(inside, limits) if inside != 1 else upper - lower + 1)


def _split(summand: sp.Expr, limits: tuple) -> sp.Expr:
    """A sum as a sum of sums of products, each with the factors free of the summation index taken out."""
    return sp.Add(*(_factor_out(term, limits) for term in sp.Add.make_args(sp.expand(summand))))


def _normalise(expr: sp.Basic) -> sp.Basic:
    if isinstance(expr, sp.Sum):
        result = _normalise(expr.function)
        for limits in expr.limits:  # innermost first
            limits, edge = _peel(result, limits)
            result = _split(result, limits) + edge
        return result
    if isinstance(expr, sp.Subs) and all(isinstance(p, (sp.Symbol, sp.Indexed)) for p in expr.point):
        return expr.doit()  # sigma'(z_p) written one way, as Derivative(sigma(z_p), z_p)
    if not expr.args or isinstance(expr, (sp.Indexed, sp.Idx)):
        return expr
    return expr.func(*(_normalise(arg) for arg in expr.args))


def _summation_index(height: int) -> sp.Symbol:
    """The canonical summation index of a sum of the given height: ι0, ι1, ..."""
    return sp.Symbol(f"ι{height}", integer=True)


def _rename(expr: sp.Basic) -> tuple[sp.Basic, int]:
    """``expr`` with every summation index renamed after its height: 1 + the greatest height of the sums inside."""
    if isinstance(expr, sp.Sum):
        summand, height = _rename(expr.function)
        limits = []
        for x, lower, upper in expr.limits:  # innermost first
            index = _summation_index(height)
            while index != x and index in summand.free_symbols:  # bound outside by an earlier normal form: no capture
                height += 1
                index = _summation_index(height)
            summand, height = summand.xreplace({x: index}), height + 1
            limits.append((index, lower, upper))
        return sp.Sum(summand, *limits), height
    if not expr.args or isinstance(expr, (sp.Indexed, sp.Idx)):
        return expr, 0
    renamed = [_rename(arg) for arg in expr.args]
    return expr.func(*(arg for arg, _ in renamed)), max(height for _, height in renamed)


def canonical(expr: sp.Expr) -> sp.Expr:
    """A normal form for expressions with sums, so that two ways of writing the same sum compare equal.

    Compare ``canonical(lhs)`` with ``canonical(rhs)`` in :func:`bplib.testing.assert_identity` when the two
    sides hold sums.  The normal form

    - splits every sum over the terms of its expanded summand (linearity) and takes the factors free of the
      summation index out of it: :math:`\\sum_j c\\, f_j = c \\sum_j f_j`;
    - writes a sum to :math:`b + c`, for a positive integer :math:`c`, as the sum to :math:`b` and :math:`c` terms
      (:math:`\\sum_{s=a}^{t+1} f_s = \\sum_{s=a}^{t} f_s + f_{t+1}`, the step of a proof by induction; SymPy's
      sums follow the convention of M. Karr (1981), "Summation in finite terms", *J. ACM* 28(2), under
      which this holds for every :math:`t`);
    - renames every summation index after the nesting height of its sum, so that :math:`\\sum_j f_j` and
      :math:`\\sum_k f_k` coincide;
    - writes :math:`\\sigma'(z_p)` one way (``Derivative(sigma(z[p]), z[p])``) and expands the result.

    Every step rewrites the expression into an equal one; nothing is assumed about the sizes.  Nested sums are
    not reordered: :math:`\\sum_i \\sum_j W_{ij} a_j` and :math:`\\sum_j \\sum_i W_{ij} a_j` keep different normal
    forms (a true identity may fail to compare equal, a false one never does).
    """
    fn = "canonical"
    normal = _normalise(sp.expand(_check_expr(fn, "expr", expr)))
    return sp.expand(_rename(normal)[0])


def _entry_of(fn: str, matrix: sp.MatrixBase) -> Callable[..., sp.Expr]:
    """The entries of a fixed-size matrix as a function of integer indices: two, or one for a vector."""

    def entry(*index: sp.Expr) -> sp.Expr:
        if len(index) == 1 and 1 in matrix.shape:
            return matrix[index[0]]
        if len(index) == 2:
            return matrix[index]
        raise ValueError(f"{fn}: argument 'entry' is a {matrix.shape} matrix, which cannot give the entry {index}")

    return entry


def replace_entries(
    expr: sp.Expr, tensor: sp.IndexedBase, entry: Callable[..., sp.Expr] | sp.MatrixBase
) -> sp.Expr:
    """``expr`` with every entry ``tensor[i, ...]`` replaced by ``entry(i, ...)``, or by the entry of a matrix.

    Two uses: evaluating at a point given entry by entry (``replace_entries(J_f, u, g)`` puts
    :math:`u_j = g_j(x)` into a Jacobian), and, after :func:`at_sizes`, naming the entries as a
    fixed-size matrix names them (``replace_entries(expr, W, net.weights[0])``; a tensor with one index
    takes the entries of a column vector).  A derivative with respect to a replaced entry becomes a
    derivative at the new value.
    """
    fn = "replace_entries"
    _check_expr(fn, "expr", expr)
    if not isinstance(tensor, sp.IndexedBase):
        raise TypeError(
            f"{fn}: argument 'tensor' must be a sympy.IndexedBase (see tensors()), got {type(tensor).__name__}"
        )
    if isinstance(entry, sp.MatrixBase):
        entry = _entry_of(fn, entry)
    elif not callable(entry):
        raise TypeError(
            f"{fn}: argument 'entry' must be a function of the indices or a sympy.Matrix, got {type(entry).__name__}"
        )

    def ours(e: sp.Basic) -> bool:
        return isinstance(e, sp.Indexed) and e.base == tensor

    def by_ours(e: sp.Basic) -> bool:
        return isinstance(e, sp.Derivative) and any(ours(v) for v, _ in e.variable_count)

    def at_new_values(d: sp.Derivative) -> sp.Expr:  # Derivative(f(u_1), u_1) -> Subs(Derivative(f(t), t), t, g_1)
        return d.subs({v: entry(*v.indices) for v, _ in d.variable_count if ours(v)})

    return expr.replace(by_ours, at_new_values).replace(ours, lambda e: entry(*e.indices))


def at_sizes(
    expr: sp.Expr, values: dict[sp.Expr, int], matrices: dict[sp.IndexedBase, sp.MatrixBase] | None = None
) -> sp.Expr:
    """``expr`` at given sizes and index values, with every sum written out term by term.

    ``values`` maps symbols of :func:`dimensions` and free indices of :func:`indices` to integers, e.g.
    ``{n: 2, k: 3, p: 1, q: 0}``.  ``matrices`` names the entries of tensors as fixed-size matrices name
    them, ``{W: net.weights[0], a: net.x}`` (see :func:`replace_entries`), so that the result can be
    compared with the book's fixed-size expressions (:func:`symbolic_mlp`): the bookkeeping check of a
    proof for every size.
    """
    fn = "at_sizes"
    _check_expr(fn, "expr", expr)
    if not isinstance(values, dict):
        raise TypeError(f"{fn}: argument 'values' must be a dict from symbols to integers, got {type(values).__name__}")
    if matrices is not None and not isinstance(matrices, dict):
        raise TypeError(
            f"{fn}: argument 'matrices' must be a dict from tensors to matrices, got {type(matrices).__name__}"
        )
    for key, value in values.items():
        if not isinstance(key, (sp.Symbol, sp.Idx)):
            raise TypeError(f"{fn}: argument 'values' must have symbols or indices as keys, got {key!r}")
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{fn}: argument 'values' must give integers, got {value!r} for {key}")
    values = {key: sp.Integer(value) for key, value in values.items()}
    for index in (key for key in values if isinstance(key, sp.Idx) and key.lower is not None):
        lower, upper = (bound.xreplace(values) for bound in (index.lower, index.upper))
        if not (lower.is_number and upper.is_number and lower <= values[index] <= upper):
            raise ValueError(
                f"{fn}: argument 'values' gives {index} = {values[index]}, outside its range [{lower}, {upper}]"
            )
    # xreplace, not subs: it replaces a size inside every index and every sum's limits alike
    result = _evaluate(fn, expr.xreplace(values), {})
    for tensor, matrix in (matrices or {}).items():
        if not isinstance(matrix, sp.MatrixBase):
            raise TypeError(
                f"{fn}: argument 'matrices' must give sympy matrices, got {type(matrix).__name__} for {tensor}"
            )
        result = replace_entries(result, tensor, matrix)
    return result


def plain_indices(expr: sp.Basic) -> sp.Basic:
    """``expr`` for display: every index of :func:`indices` written by its name alone.

    SymPy prints an index with a range (``Idx``) in LaTeX together with that range, which MathJax
    renders as an error inside sums; replacing each index by an integer symbol of the same name
    prints :math:`\\sum_{j} W_{ij} a_j` as written on the page.  For display only: the result has lost
    the ranges that :func:`evaluate_in_range` and :func:`canonical` need.
    """
    _check_expr("plain_indices", "expr", expr)
    return expr.xreplace({index: sp.Symbol(index.name, integer=True) for index in expr.atoms(sp.Idx)})
