"""The SymPy side: the backprop recursion equals direct differentiation, exactly."""

import pytest
import sympy as sp

from bplib.symbolic import backprop_gradients, direct_gradients, output_error, softmax, symbolic_mlp
from bplib.testing import assert_identity


def assert_recursion_equals_direct(net):
    direct_w, direct_b = direct_gradients(net)
    recursion_w, recursion_b = backprop_gradients(net)
    for l in range(len(net.weights)):
        assert_identity(direct_w[l], recursion_w[l], claim=f"dL/dW^{l + 1}: recursion equals direct differentiation")
        assert_identity(direct_b[l], recursion_b[l], claim=f"dL/db^{l + 1}: recursion equals direct differentiation")


@pytest.mark.parametrize(
    "sizes, activation, loss",
    [
        ([2, 3, 2, 2], "any", "mse"),  # two hidden layers, any differentiable activation
        ([2, 2, 3], "any", "softmax_ce"),
        ([2, 2, 2], "tanh", "mse"),
        ([2, 2, 2], "relu", "mse"),
        ([1, 2, 2], "sigmoid", "mse"),
    ],
)
def test_backprop_recursion_equals_direct_differentiation(sizes, activation, loss):
    assert_recursion_equals_direct(symbolic_mlp(sizes, activation, loss))


def test_a_wrong_recursion_is_caught():
    net = symbolic_mlp([2, 2, 2], "any", "mse")
    direct_w, _ = direct_gradients(net)
    recursion_w, _ = backprop_gradients(net)
    with pytest.raises(AssertionError):
        assert_identity(direct_w[0], recursion_w[0].T, claim="transposed weight gradient")


def test_softmax_jacobian_and_output_error():
    z = sp.Matrix(sp.symbols("z_1:4", real=True))
    p = softmax(z)
    assert_identity(p.jacobian(z), sp.diag(*p) - p * p.T, claim="softmax Jacobian = diag(p) - p p^T")
    y_1, y_2 = sp.symbols("y_1 y_2", real=True)
    y = sp.Matrix([y_1, y_2, 1 - y_1 - y_2])  # a probability vector
    loss = -sum(y[j] * sp.log(p[j]) for j in range(3))
    delta = sp.Matrix([sp.diff(loss, zj) for zj in z])
    assert_identity(delta, p - y, claim="softmax + cross-entropy output error = p - y")


def test_output_error_is_the_gradient_at_the_output_layer():
    for loss in ("mse", "softmax_ce"):
        net = symbolic_mlp([2, 3], "any", loss)
        # with no hidden layer, dL/db^1 is the output error itself
        _, direct_b = direct_gradients(net)
        assert_identity(direct_b[0], output_error(net), claim=f"{loss}: dL/dz^L equals output_error")


def test_symbols_and_values_line_up():
    import torch

    net = symbolic_mlp([2, 3, 2], "tanh", "softmax_ce")
    assert len(net.symbols) == 2 * 3 + 3 * 2 + 3 + 2 + 2 + 1  # weights, biases, x, y without its last entry
    values = net.values(
        [torch.ones(3, 2), torch.ones(2, 3)], [torch.zeros(3), torch.zeros(2)], torch.ones(2), torch.tensor([0.0, 1.0])
    )
    assert values.shape == (len(net.symbols),) and values.dtype == torch.float64


# ----------------------------------------------------------------------- index notation, every size


from bplib.symbolic import (  # noqa: E402
    at_sizes,
    canonical,
    diff_entry,
    dimensions,
    evaluate_in_range,
    indices,
    replace_entries,
    tensors,
)


def test_dimensions_are_positive_integer_symbols():
    n, k = dimensions("n k")
    assert n.is_integer and n.is_positive and k.is_positive
    assert (n - 1).is_nonnegative  # what the ranges of indices rely on
    assert isinstance(dimensions("m"), sp.Symbol)


def test_indices_know_their_range():
    n, t = dimensions("n t")
    p, q = indices("p q", n)
    assert (p.lower, p.upper) == (0, n - 1) and q.upper == n - 1
    s = indices("s", (2, t))
    assert (s.lower, s.upper) == (2, t)
    assert indices("r", 3).upper == 2
    a = tensors("a")
    assert sp.Sum(a[p], p) == sp.Sum(a[p], (p, 0, n - 1))


def test_tensors_have_real_entries():
    W, a = tensors("W a")
    n = dimensions("n")
    i = indices("i", n)
    assert W[i, i].is_real and a[i].is_real


def test_diff_entry_carries_out_the_kronecker_deltas():
    n, k = dimensions("n k")
    i, p = indices("i p", n)
    j, q = indices("j q", k)
    W, a, b = tensors("W a b")
    z_i = sp.Sum(W[i, j] * a[j], j) + b[i]
    assert diff_entry(z_i, W[p, q]) == sp.KroneckerDelta(i, p) * a[q]  # [i = p] a_q: i is free
    assert diff_entry(sp.Sum(z_i**2, i), b[p]) == 2 * (sp.Sum(W[p, j] * a[j], j) + b[p])
    x = sp.Symbol("x", real=True)
    assert diff_entry(sp.Sum(x * a[j], j), x) == sp.Sum(a[j], j)


def test_diff_entry_refuses_an_entry_outside_the_sum_range():
    n, k = dimensions("n k")
    j = indices("j", k)
    p = indices("p", n)  # ranges over n values, the sum over k: p may or may not be in range
    a = tensors("a")
    with pytest.raises(ValueError, match=r"diff_entry: cannot decide whether p lies in \[0, k - 1\]"):
        diff_entry(sp.Sum(a[j] ** 2, j), a[p])


def test_evaluate_in_range_rules():
    n = dimensions("n")
    i, p = indices("i p", n)
    f, c = tensors("f c")
    delta = sp.KroneckerDelta
    assert evaluate_in_range(sp.Sum(delta(i, p) * f[i], i)) == f[p]  # p is in the range of i
    assert evaluate_in_range(sp.Sum(delta(i, n) * f[i], i)) == 0  # n is never in [0, n - 1]
    assert evaluate_in_range(sp.Sum(c[p] * f[i], i)) == c[p] * sp.Sum(f[i], i)  # c_p leaves the sum
    assert evaluate_in_range(sp.Sum(c[p], i)) == n * c[p]
    assert evaluate_in_range(sp.Sum(f[i], (i, 0, 2))) == f[0] + f[1] + f[2]
    assert evaluate_in_range(sp.Piecewise((f[p], p <= n - 1), (0, True))) == f[p]
    assert evaluate_in_range(sp.Piecewise((f[p], p >= n), (c[p], True))) == c[p]
    # nested: the delta on the outer index meets its sum once the inner sum has let it out
    j = indices("j", n)
    assert evaluate_in_range(sp.Sum(sp.Sum(delta(i, p) * f[j] * c[i], j), i)) == c[p] * sp.Sum(f[j], j)


def test_evaluate_in_range_refuses_what_the_ranges_do_not_settle():
    n, k = dimensions("n k")
    p = indices("p", n)
    j = indices("j", k)
    f = tensors("f")
    with pytest.raises(ValueError, match="evaluate_in_range: cannot decide whether p lies in"):
        evaluate_in_range(sp.Sum(sp.KroneckerDelta(j, p) * f[j], j))
    with pytest.raises(ValueError, match="evaluate_in_range: cannot decide the condition"):
        evaluate_in_range(sp.Piecewise((f[p], p <= k), (0, True)))
    t = sp.Symbol("t", integer=True)  # no sign known: the range [0, t] may be reversed
    s = sp.Symbol("s", integer=True)
    with pytest.raises(ValueError, match="evaluate_in_range: cannot decide whether -1 lies in"):
        evaluate_in_range(sp.Sum(sp.KroneckerDelta(s, -1) * f[s], (s, 0, t)))


def test_canonical_normal_form():
    n, t = dimensions("n t")
    i, j = indices("i j", n)
    a, b, g = tensors("a b g")
    c = sp.Symbol("c", real=True)
    assert canonical(sp.Sum(a[i], i)) == canonical(sp.Sum(a[j], j))  # the summation index's name does not matter
    assert canonical(sp.Sum(c * a[i] + b[i], i)) == canonical(c * sp.Sum(a[j], j) + sp.Sum(b[i], i))
    assert canonical(sp.Sum(sp.Sum(a[i] * b[j], j), i)) == canonical(sp.Sum(a[i], i) * sp.Sum(b[j], j))
    s = sp.Symbol("s", integer=True)
    assert canonical(sp.Sum(g[s], (s, 1, t + 1))) == canonical(sp.Sum(g[s], (s, 1, t)) + g[t + 1])
    iota = sp.Symbol("ι0", integer=True)  # the name canonical gives innermost summation indices: never captured
    assert iota in canonical(sp.Sum(b[j] * g[j + iota], j)).free_symbols
    sigma, z = sp.Function("sigma"), tensors("z")
    point = sp.Symbol("point")
    assert canonical(sp.diff(sigma(point), point).subs(point, z[i])) == sp.Derivative(sigma(z[i]), z[i])


def test_canonical_keeps_different_sums_apart():
    n, t = dimensions("n t")
    i, j = indices("i j", n)
    a, b, g = tensors("a b g")
    s = sp.Symbol("s", integer=True)
    for lhs, rhs in [
        (sp.Sum(a[i] * b[i], i), sp.Sum(a[i], i) * sp.Sum(b[j], j)),
        (sp.Sum(g[s], (s, 1, t + 1)), sp.Sum(g[s], (s, 1, t))),
        (sp.Sum(a[i], i), sp.Sum(a[i], (i, 1, n - 1))),
    ]:
        assert canonical(lhs) != canonical(rhs)
        with pytest.raises(AssertionError):
            assert_identity(canonical(lhs), canonical(rhs), claim="different sums", sizes="all")


def test_replace_entries_by_a_function_or_a_matrix():
    n = dimensions("n")
    i = indices("i", n)
    u, x = tensors("u x")
    sigma = sp.Function("sigma")
    expr = sp.Sum(u[i], i) + sp.diff(sigma(u[0]), u[0])
    replaced = replace_entries(expr, u, lambda i: sp.sin(x[i]))
    assert replaced.has(sp.Sum(sp.sin(x[i]), i)) and not replaced.has(u)
    assert replaced.has(sp.Subs) and sp.diff(sigma(sp.sin(x[0])), x[0]) == sp.cos(x[0]) * replaced.atoms(sp.Subs).pop()
    W = sp.Matrix(2, 2, sp.symbols("w_11 w_12 w_21 w_22"))
    v = sp.Matrix(sp.symbols("v_1 v_2"))
    assert replace_entries(u[1, 0] + x[1], u, W) == W[1, 0] + x[1]
    assert replace_entries(u[1], u, v) == v[1]


def test_at_sizes_writes_the_sums_out():
    n, k = dimensions("n k")
    i, p = indices("i p", n)
    j = indices("j", k)
    W, a = tensors("W a")
    expr = sp.Sum(W[p, j] * a[j], j) * sp.Sum(a[j], j)
    assert at_sizes(expr, {n: 2, k: 2, p: 1}) == (W[1, 0] * a[0] + W[1, 1] * a[1]) * (a[0] + a[1])
    W_fixed, a_fixed = sp.Matrix([[1, 2], [3, 4]]), sp.Matrix([5, 6])
    assert at_sizes(expr, {n: 2, k: 2, p: 1}, {W: W_fixed, a: a_fixed}) == (3 * 5 + 4 * 6) * (5 + 6)
    with pytest.raises(ValueError, match=r"at_sizes: argument 'values' gives p = 2, outside its range \[0, 1\]"):
        at_sizes(expr, {n: 2, k: 2, p: 2})


def test_index_notation_helpers_reject_bad_arguments():
    n = dimensions("n")
    p = indices("p", n)
    W = tensors("W")
    with pytest.raises(TypeError, match="dimensions: argument 'names' must be a string of names"):
        dimensions(["n"])
    with pytest.raises(ValueError, match="tensors: argument 'names' must name at least one symbol, got ' '"):
        tensors(" ")
    with pytest.raises(ValueError, match="indices: argument 'size' must be a positive integer, an integer SymPy"):
        indices("q", sp.Symbol("m"))  # not known to be an integer
    with pytest.raises(ValueError, match="indices: argument 'size' must be positive"):
        indices("q", 0)
    with pytest.raises(ValueError, match=r"indices: argument 'size' must be a pair \(lower, upper\)"):
        indices("q", (0, 1, 2))
    with pytest.raises(TypeError, match="diff_entry: argument 'entry' must be an entry such as W\\[p, q\\]"):
        diff_entry(W[p, p], W)
    with pytest.raises(TypeError, match="evaluate_in_range: argument 'expr' must be a SymPy expression, got list"):
        evaluate_in_range([W[p, p]])
    with pytest.raises(TypeError, match="canonical: argument 'expr' must be a SymPy expression, got str"):
        canonical("W[p, p]")
    with pytest.raises(TypeError, match="replace_entries: argument 'tensor' must be a sympy.IndexedBase"):
        replace_entries(W[p, p], W[p, p], lambda i, j: 0)
    with pytest.raises(TypeError, match="replace_entries: argument 'entry' must be a function of the indices"):
        replace_entries(W[p, p], W, 0)
    with pytest.raises(ValueError, match=r"replace_entries: argument 'entry' is a \(2, 2\) matrix"):
        replace_entries(W[0], W, sp.eye(2))
    with pytest.raises(TypeError, match="at_sizes: argument 'values' must be a dict"):
        at_sizes(W[p, p], [(n, 2)])
    with pytest.raises(TypeError, match="at_sizes: argument 'values' must give integers, got 2.0 for n"):
        at_sizes(W[p, p], {n: 2.0})
    with pytest.raises(TypeError, match="at_sizes: argument 'values' must have symbols or indices as keys"):
        at_sizes(W[p, p], {"n": 2})
    with pytest.raises(TypeError, match="at_sizes: argument 'matrices' must be a dict from tensors to matrices"):
        at_sizes(W[p, p], {n: 2}, [W])
    with pytest.raises(TypeError, match="at_sizes: argument 'matrices' must give sympy matrices, got list for W"):
        at_sizes(W[p, p], {n: 2}, {W: [[1, 2], [3, 4]]})
