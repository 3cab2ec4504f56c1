"""The teaching engines of bplib.autodiff against torch.autograd, torch.func and each other.

Every primitive is checked on its own (forward value, reverse-mode gradient, forward-mode tangent), with
broadcasting and with constants on either side; then random expression trees drawn from a seeded generator,
an MLP with its cross-entropy loss (also against bplib.MLP), the fork rule, gradient accumulation, the
operation counts, and the drawing's layout.
"""

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
from matplotlib.text import Annotation  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import bplib  # noqa: E402
from bplib.autodiff import Dual, Value, count_operations, forward, graph, reverse  # noqa: E402
from bplib.autodiff.reverse import sum_to_shape, topological_order  # noqa: E402
from bplib.testing import assert_close  # noqa: E402

F64 = torch.float64


def randn(generator, *shape):
    return torch.randn(shape, generator=generator, dtype=F64)


# ----------------------------------------------------------------------------- one primitive at a time

# the same primitive written with torch operations: the independent route
TORCH = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "neg": lambda a: -a,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
    "pow": lambda a, exponent: torch.pow(a, exponent),
    "matmul": lambda a, b: a @ b,
    "transpose": lambda a: a.mT,
    "sum": lambda a, dim=None: torch.sum(a) if dim is None else torch.sum(a, dim),
    "mean": lambda a, dim=None: torch.mean(a) if dim is None else torch.mean(a, dim),
    "exp": torch.exp,
    "log": torch.log,
    "tanh": torch.tanh,
    "relu": torch.relu,
    "sigmoid": torch.sigmoid,
    "log_softmax": lambda a, dim=-1: F.log_softmax(a, dim),
}

# (op, operand shapes, parameters, "positive" if the first operand must be > 0)
CASES = [
    ("add", [(3, 4), (3, 4)], {}, None),
    ("add", [(3, 4), (4,)], {}, None),
    ("add", [(2, 1, 4), (3, 1)], {}, None),
    ("sub", [(3, 4), (3, 1)], {}, None),
    ("sub", [(1,), (2, 3)], {}, None),
    ("neg", [(3, 4)], {}, None),
    ("mul", [(3, 4), (3, 4)], {}, None),
    ("mul", [(3, 1), (1, 4)], {}, None),
    ("mul", [(), (2, 3)], {}, None),
    ("div", [(3, 4), (4,)], {}, "positive second"),
    ("div", [(2, 3), (2, 3)], {}, "positive second"),
    ("pow", [(3, 4)], {"exponent": 2}, None),
    ("pow", [(3, 4)], {"exponent": 3}, None),
    ("pow", [(3, 4)], {"exponent": 0.5}, "positive"),
    ("pow", [(3, 4)], {"exponent": -1.5}, "positive"),
    ("matmul", [(3, 4), (4, 2)], {}, None),
    ("matmul", [(1, 5), (5, 1)], {}, None),
    ("transpose", [(3, 4)], {}, None),
    ("transpose", [(2, 3, 4)], {}, None),
    ("sum", [(3, 4)], {}, None),
    ("sum", [(3, 4)], {"dim": 0}, None),
    ("sum", [(2, 3, 4)], {"dim": -2}, None),
    ("mean", [(3, 4)], {}, None),
    ("mean", [(3, 4)], {"dim": 1}, None),
    ("mean", [(2, 3, 4)], {"dim": -3}, None),
    ("exp", [(3, 4)], {}, None),
    ("log", [(3, 4)], {}, "positive"),
    ("tanh", [(3, 4)], {}, None),
    ("relu", [(3, 4)], {}, None),
    ("sigmoid", [(3, 4)], {}, None),
    ("log_softmax", [(3, 4)], {}, None),
    ("log_softmax", [(3, 4)], {"dim": 0}, None),
    ("log_softmax", [(2, 3, 4)], {"dim": 1}, None),
]


def operands(case, generator):
    op, shapes, _, domain = case
    xs = [randn(generator, *shape) for shape in shapes]
    if domain == "positive":
        xs[0] = xs[0].abs() + 0.5
    if domain == "positive second":
        xs[1] = xs[1].abs() + 0.5
    return xs


def case_id(case):
    op, shapes, params, _ = case
    return f"{op}-{'-'.join(map(str, shapes))}-{params}"


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_each_primitive_in_reverse_mode_matches_autograd(case, generator):
    op, _, params, _ = case
    xs = operands(case, generator)
    leaves = [Value(x) for x in xs]
    out = reverse.apply(op, *leaves, **params)
    seed = randn(generator, *out.shape)
    out.backward(seed)
    expected, grads = torch.func.vjp(lambda *a: TORCH[op](*a, **params), *xs)
    assert_close(out.data, expected, claim=f"Value.{op} computes what torch computes", against="torch")
    for leaf, g in zip(leaves, grads(seed)):
        assert leaf.grad.shape == leaf.shape
        assert_close(leaf.grad, g, claim=f"reverse mode: the VJP of {op} equals torch's", against="torch.func")


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_each_primitive_in_forward_mode_matches_torch_func_jvp(case, generator):
    op, _, params, _ = case
    xs = operands(case, generator)
    tangents = [randn(generator, *x.shape) for x in xs]
    out = forward.apply(op, *(Dual(x, t) for x, t in zip(xs, tangents)), **params)
    expected, expected_tangent = torch.func.jvp(lambda *a: TORCH[op](*a, **params), tuple(xs), tuple(tangents))
    assert_close(out.primal, expected, claim=f"Dual.{op} computes what torch computes", against="torch")
    assert out.tangent.shape == out.primal.shape
    assert_close(out.tangent, expected_tangent, claim=f"forward mode: the JVP of {op} equals torch.func.jvp",
                 against="torch.func")


BINARY = [c for c in CASES if c[0] in ("add", "sub", "mul", "div", "matmul")]


@pytest.mark.parametrize("case", BINARY, ids=case_id)
@pytest.mark.parametrize("constant_side", [0, 1])
def test_a_tensor_operand_on_either_side_is_a_constant(case, constant_side, generator):
    op, _, _, _ = case
    xs = operands(case, generator)
    wrap = [Value(x) if i != constant_side else x for i, x in enumerate(xs)]
    out = TORCH[op](*wrap)  # the operator itself: Value's __radd__, __rmatmul__, ... for the tensor on the left
    assert isinstance(out, Value) and out.parents[constant_side].op == "const"
    variable = wrap[1 - constant_side]
    seed = randn(generator, *out.shape)
    out.backward(seed)
    _, grads = torch.func.vjp(lambda x: TORCH[op](*(x if i != constant_side else c for i, c in enumerate(xs))),
                              xs[1 - constant_side])
    assert_close(variable.grad, grads(seed)[0], claim=f"{op} with a constant operand", against="torch.func")
    assert out.parents[constant_side].grad is None, "a constant gets no gradient"
    tangent = randn(generator, *xs[1 - constant_side].shape)
    dual = TORCH[op](*(Dual(x, tangent) if i != constant_side else x for i, x in enumerate(xs)))
    _, expected = torch.func.jvp(lambda x: TORCH[op](*(x if i != constant_side else c for i, c in enumerate(xs))),
                                 (xs[1 - constant_side],), (tangent,))
    assert_close(dual.tangent, expected, claim=f"{op} of a dual with a constant", against="torch.func")


@pytest.mark.parametrize("number", [2, -0.5])
def test_python_numbers_are_constants_of_the_operands_dtype(number):
    x = torch.tensor([0.5, 1.5, 2.5], dtype=F64)
    for engine in (lambda t: Value(t), lambda t: Dual(t, torch.ones_like(t))):
        v = engine(x)
        for result, expected in [
            (number + v, number + x), (v + number, x + number), (number - v, number - x), (v - number, x - number),
            (number * v, number * x), (v * number, x * number), (number / v, number / x), (v / number, x / number),
        ]:
            data = result.data if isinstance(result, Value) else result.primal
            assert data.dtype == F64
            assert_close(data, expected, claim="arithmetic with a Python number", against="torch")


def test_scalar_dual_numbers_carry_the_derivative():
    """f(x + eps) = f(x) + f'(x) eps for f(x) = x^3 + exp(x) at x = 0.5: f'(x) = 3x^2 + e^x."""
    x = 0.5
    y = (lambda d: d**3 + d.exp())(Dual(torch.tensor(x, dtype=F64), torch.tensor(1.0, dtype=F64)))
    expected = torch.tensor(3 * x**2, dtype=F64) + torch.tensor(x, dtype=F64).exp()
    assert_close(y.tangent, expected, claim="the tangent of a dual number is f'(x)", against="closed form")


def test_relu_takes_the_subgradient_zero_at_zero_as_torch_does():
    x = torch.tensor([-1.0, 0.0, 2.0], dtype=F64)
    v = Value(x)
    v.relu().backward(torch.ones(3, dtype=F64))
    d = Dual(x, torch.ones(3, dtype=F64)).relu()
    x_leaf = x.clone().requires_grad_()
    (expected,) = torch.autograd.grad(torch.relu(x_leaf).sum(), x_leaf)
    assert v.grad.tolist() == expected.tolist() == d.tangent.tolist() == [0.0, 0.0, 1.0]


def test_the_zeroth_power_is_a_constant_even_at_zero_as_torch_takes_it():
    """d(x^0)/dx = 0 everywhere, where the rule p x^(p-1) alone gives 0 * inf = nan at x = 0."""
    x = torch.tensor([0.0, -2.0, 3.0], dtype=F64)
    v = Value(x)
    (v**0).backward(torch.ones(3, dtype=F64))
    d = Dual(x, torch.ones(3, dtype=F64)) ** 0
    x_leaf = x.clone().requires_grad_()
    (expected,) = torch.autograd.grad((x_leaf**0).sum(), x_leaf)
    assert v.grad.tolist() == expected.tolist() == d.tangent.tolist() == [0.0, 0.0, 0.0]


# ----------------------------------------------------------------------------- sum_to_shape


@pytest.mark.parametrize(
    "shape, target", [((3, 4), (4,)), ((3, 4), (3, 1)), ((2, 3, 4), (3, 1)), ((2, 3, 4), ()), ((3, 4), (3, 4)), ((2, 1, 4), (1, 1))]
)
def test_sum_to_shape_is_the_adjoint_of_broadcasting(shape, target, generator):
    b, g = randn(generator, *target), randn(generator, *shape)
    _, vjp_fn = torch.func.vjp(lambda b: b.expand(shape), b)
    assert_close(sum_to_shape(g, target), vjp_fn(g)[0], claim=f"sum_to_shape to {target} is the VJP of expand to {shape}",
                 against="torch.func")
    assert sum_to_shape(g, target).shape == torch.Size(target)


# ----------------------------------------------------------------------------- random expression trees

UNARY = ("neg", "exp_tanh", "log_square", "tanh", "relu", "sigmoid", "pow2", "pow3", "sqrt_square", "log_softmax0", "log_softmax1")
BINARY_NODES = ("add", "sub", "mul", "div_square", "matmul", "add_sum0", "mul_mean0")


def random_tree(generator, depth, n_leaves):
    """A random expression: nested tuples (node, children...) with leaf indices at the bottom."""
    if depth == 0 or torch.rand((), generator=generator) < 0.2:
        return int(torch.randint(n_leaves, (), generator=generator))
    if torch.rand((), generator=generator) < 0.45:
        node = UNARY[int(torch.randint(len(UNARY), (), generator=generator))]
        return (node, random_tree(generator, depth - 1, n_leaves))
    node = BINARY_NODES[int(torch.randint(len(BINARY_NODES), (), generator=generator))]
    return (node, random_tree(generator, depth - 1, n_leaves), random_tree(generator, depth - 1, n_leaves))


def evaluate(tree, leaves):
    """The expression on torch tensors, Values or Duals alike (they share torch's method names).

    Every node keeps the leaves' shape (3, 4); log, div and fractional powers are applied to positive
    quantities, exp to bounded ones, so that every value stays finite.
    """
    if isinstance(tree, int):
        return leaves[tree]
    node, *children = tree
    a, *rest = [evaluate(child, leaves) for child in children]
    b = rest[0] if rest else None
    return {
        "neg": lambda: -a,
        "exp_tanh": lambda: a.tanh().exp(),
        "log_square": lambda: (a * a + 1).log(),
        "tanh": lambda: a.tanh(),
        "relu": lambda: a.relu(),
        "sigmoid": lambda: a.sigmoid(),
        "pow2": lambda: a**2,
        "pow3": lambda: a.tanh() ** 3,
        "sqrt_square": lambda: (a * a + 0.5) ** 0.5,
        "log_softmax0": lambda: a.log_softmax(0),
        "log_softmax1": lambda: a.log_softmax(dim=1),
        "add": lambda: a + b,
        "sub": lambda: a - b,
        "mul": lambda: a * b,
        "div_square": lambda: a / (b * b + 1),
        "matmul": lambda: a @ (b.mT @ a).tanh() / 4,  # (3, 4) @ (4, 4): the shape is kept
        "add_sum0": lambda: a + b.sum(0) / 3,  # (4,) broadcast over the rows
        "mul_mean0": lambda: a * b.mean(dim=0),
    }[node]()


def leaf_indices(tree):
    return [tree] if isinstance(tree, int) else [i for child in tree[1:] for i in leaf_indices(child)]


def random_expression(seed):
    generator = torch.Generator().manual_seed(seed)
    tree = random_tree(generator, depth=5, n_leaves=3)
    while isinstance(tree, int):
        tree = random_tree(generator, depth=5, n_leaves=3)
    leaves = [randn(generator, 3, 4) for _ in range(3)]
    return tree, leaves, generator


@pytest.mark.parametrize("seed", range(30))
def test_random_expressions_reverse_and_forward_match_torch_func(seed):
    tree, xs, generator = random_expression(seed)

    def f(*leaves):
        return evaluate(tree, leaves)

    expected, torch_vjp = torch.func.vjp(f, *xs)
    cotangent = randn(generator, *expected.shape)
    tangents = tuple(randn(generator, 3, 4) for _ in xs)
    out, vjp_fn = reverse.vjp(f, *xs)
    assert_close(out, expected, claim=f"random expression {seed}: the reverse engine's value", against="torch")
    for mine, theirs in zip(vjp_fn(cotangent), torch_vjp(cotangent)):
        assert_close(mine, theirs, claim=f"random expression {seed}: reverse-mode VJP", against="torch.func")
    primal, tangent = forward.jvp(f, tuple(xs), tangents)
    _, expected_tangent = torch.func.jvp(f, tuple(xs), tangents)
    assert_close(primal, expected, claim=f"random expression {seed}: the forward engine's value", against="torch")
    assert_close(tangent, expected_tangent, claim=f"random expression {seed}: forward-mode JVP", against="torch.func")
    # the two engines against each other: <v, J t> = <J^T v, t>
    vjps = vjp_fn(cotangent)
    assert_close((cotangent * tangent).sum(), sum((g * t).sum() for g, t in zip(vjps, tangents)),
                 claim=f"random expression {seed}: dot-product test between the engines", against="second route")


@pytest.mark.parametrize("seed", range(0, 30, 3))
def test_random_expressions_full_jacobians_agree(seed):
    tree, xs, _ = random_expression(seed)
    used = min(set(leaf_indices(tree)))  # differentiate with respect to a leaf the expression uses

    def f(x):
        return evaluate(tree, [x if i == used else leaf for i, leaf in enumerate(xs)])

    J_torch = torch.autograd.functional.jacobian(f, xs[used])
    J_fwd, J_rev = forward.jacobian(f, xs[used]), reverse.jacobian(f, xs[used])
    assert J_fwd.shape == J_rev.shape == J_torch.shape == (3, 4, 3, 4)
    assert_close(J_fwd, J_torch, claim=f"random expression {seed}: forward-mode Jacobian", against="torch.autograd")
    assert_close(J_rev, J_torch, claim=f"random expression {seed}: reverse-mode Jacobian", against="torch.autograd")


def test_jacobians_of_scalar_and_vector_functions():
    x = torch.tensor([0.3, -1.2, 2.0], dtype=F64)
    for f in (lambda v: (v * v).sum(), lambda v: v.exp() * v.sum()):
        expected = torch.autograd.functional.jacobian(f, x)
        assert_close(forward.jacobian(f, x), expected, claim="forward-mode Jacobian", against="torch.autograd")
        assert_close(reverse.jacobian(f, x), expected, claim="reverse-mode Jacobian", against="torch.autograd")


def test_an_output_that_ignores_an_input_gets_zero_gradient_and_tangent():
    x, y = torch.ones(2, dtype=F64), torch.full((2,), 3.0, dtype=F64)
    out, vjp_fn = reverse.vjp(lambda a, b: (a * 2).sum(), x, y)
    assert vjp_fn(torch.tensor(1.0, dtype=F64))[1].tolist() == [0.0, 0.0]
    _, tangent = forward.jvp(lambda a, b: b * 2, (x, y), (torch.ones(2, dtype=F64), torch.zeros(2, dtype=F64)))
    assert tangent.tolist() == [0.0, 0.0]
    _, tangent = forward.jvp(lambda a: Dual(torch.ones(2, dtype=F64)) * 2, (x,), (torch.ones(2, dtype=F64),))
    assert tangent.tolist() == [0.0, 0.0], "a constant output gets a zero tangent"


# ----------------------------------------------------------------------------- an MLP and its loss


def mlp_loss(W1, b1, W2, b2, x, Y):
    """Mean cross-entropy of a tanh MLP, rows are samples: the same code for Values, Duals and tensors."""
    logits = (x @ W1.mT + b1).tanh() @ W2.mT + b2  # (m, C)
    return -(Y * logits.log_softmax(dim=1)).sum() / x.shape[0]


def test_mlp_loss_gradients_match_autograd_and_bplib(generator):
    sizes, m = [5, 7, 3], 6
    net = bplib.MLP(sizes, activation="tanh", loss="softmax_ce", dtype=F64, generator=generator)
    x, labels = randn(generator, m, sizes[0]), torch.randint(sizes[-1], (m,), generator=generator)
    Y = F.one_hot(labels, sizes[-1]).to(F64)
    params = [net.weights[0], net.biases[0], net.weights[1], net.biases[1]]
    leaves = [Value(p) for p in params]
    loss = mlp_loss(*leaves, x, Y)
    loss.backward()

    ref_loss, ref_grads = net.reference_loss_and_grads(x, labels)
    assert_close(loss.data, ref_loss, claim="the reverse engine's MLP loss equals bplib.MLP's", against="second route")
    for leaf, g in zip(leaves, ref_grads):
        assert_close(leaf.grad, g, claim="the reverse engine's MLP gradients equal bplib.MLP's", against="second route")
    leaf_tensors = [p.clone().requires_grad_() for p in params]
    W1, b1, W2, b2 = leaf_tensors
    autograd = torch.autograd.grad(F.cross_entropy(F.linear(torch.tanh(F.linear(x, W1, b1)), W2, b2), labels), leaf_tensors)
    for leaf, g in zip(leaves, autograd):
        assert_close(leaf.grad, g, claim="the reverse engine's MLP gradients equal torch.autograd's", against="torch.autograd")

    directions = tuple(randn(generator, *p.shape) for p in params)
    _, directional = forward.jvp(lambda *p: mlp_loss(*p, x, Y), tuple(params), directions)
    assert_close(directional, sum((leaf.grad * d).sum() for leaf, d in zip(leaves, directions)),
                 claim="forward mode's directional derivative of the MLP loss equals <gradient, direction>",
                 against="second route")
    _, expected = torch.func.jvp(lambda *p: mlp_loss(*p, x, Y), tuple(params), directions)
    assert_close(directional, expected, claim="forward mode's MLP directional derivative", against="torch.func")


# ----------------------------------------------------------------------------- the graph and the sweep


def test_the_fork_rule_adds_the_gradients_of_every_use():
    """y = x * x + exp(x) uses x three times: dy/dx = 2x + exp(x)."""
    x = Value(torch.tensor([0.5, -1.0], dtype=F64))
    y = (x * x + x.exp()).sum()
    y.backward()
    assert_close(x.grad, 2 * x.data + x.data.exp(), claim="the three uses of x add up", against="closed form")


def test_leaves_accumulate_over_sweeps_and_intermediates_start_afresh():
    x = Value(torch.tensor([1.0, 2.0], dtype=F64))
    h = x * 3.0
    y = h.sum()
    y.backward()
    y.backward()
    assert x.grad.tolist() == [6.0, 6.0], "a leaf's gradient accumulates, as in torch"
    assert h.grad.tolist() == [1.0, 1.0], "an intermediate's gradient is that of the last sweep"
    x.grad = None
    y.backward()
    assert x.grad.tolist() == [3.0, 3.0]


def test_no_two_nodes_share_a_gradient_tensor():
    """After x + y both inputs receive the output's gradient; each holds its own copy, as in torch."""
    x, y = Value(torch.tensor([1.0, 2.0], dtype=F64)), Value(torch.tensor([3.0, 4.0], dtype=F64))
    z = x + y
    z.sum().backward()
    x.grad.zero_()
    assert y.grad.tolist() == [1.0, 1.0] and z.grad.tolist() == [1.0, 1.0], "zeroing x.grad leaves the others"
    assert x.grad.is_contiguous() and y.grad.is_contiguous(), "not a stride-0 view of the sum's gradient"


def test_constants_get_no_gradient_and_no_closure_call():
    c = Value(torch.tensor([1.0, 2.0], dtype=F64), requires_grad=False)
    x = Value(torch.tensor([3.0, 4.0], dtype=F64))
    with count_operations() as counts:
        y = (c.exp() * x).sum()  # exp(c) is a constant: no closure call for it
        y.backward()
    assert c.grad is None and not c.parents
    assert counts.by_primitive["adjoint", "exp"] == 0 and counts.by_primitive["adjoint", "mul"] == 1
    assert counts.total("primal") == 3 and counts.total("adjoint") == 2 and counts.total() == 5


def test_topological_order_puts_every_node_after_its_parents():
    tree, xs, _ = random_expression(7)
    root = evaluate(tree, [Value(x) for x in xs])
    order = topological_order(root)
    position = {id(node): i for i, node in enumerate(order)}
    assert order[-1] is root and len(position) == len(order), "the root last, every node once"
    assert all(position[id(p)] < position[id(node)] for node in order for p in node.parents)


def test_a_long_chain_does_not_hit_the_recursion_limit():
    x = Value(torch.tensor(0.1, dtype=F64))
    y = x
    for _ in range(3000):
        y = y * 1.0001
    y.backward()
    assert_close(x.grad, torch.tensor(1.0001, dtype=F64) ** 3000, claim="d/dx of x * c^3000", against="closed form")


# ----------------------------------------------------------------------------- counting


def test_full_jacobian_costs_n_forward_passes_or_m_backward_sweeps(generator):
    """f(x) = tanh(x W1^T) W2^T: three primitives; n JVPs or one forward pass and m VJPs."""
    n, h, m = 6, 5, 4
    W1, W2 = randn(generator, h, n), randn(generator, m, h)
    x = randn(generator, 1, n)

    def f(x):
        return (x @ W1.mT).tanh() @ W2.mT

    with count_operations() as fwd:
        J_fwd = forward.jacobian(f, x)
    with count_operations() as rev:
        J_rev = reverse.jacobian(f, x)
    assert (fwd.total("primal"), fwd.total("tangent"), fwd.total("adjoint")) == (3 * n, 3 * n, 0)
    assert (rev.total("primal"), rev.total("tangent"), rev.total("adjoint")) == (3, 0, 3 * m)
    assert_close(J_fwd, J_rev, claim="forward and reverse Jacobians agree", against="second route")


def test_nested_counting_blocks_each_count_what_runs_inside():
    x = Dual(torch.tensor(1.0, dtype=F64), torch.tensor(1.0, dtype=F64))
    with count_operations() as outer:
        x.exp()
        with count_operations() as inner:
            x.tanh()
    assert inner.total() == 2 and outer.total() == 4
    assert repr(inner) == "OperationCounts(primal=1, tangent=1, adjoint=0)"


# ----------------------------------------------------------------------------- drawing


def test_layered_layout_and_drawing():
    x = Value(torch.tensor(2.0, dtype=F64), name="x")
    w = Value(torch.tensor(-3.0, dtype=F64), requires_grad=False, name="w")
    a = x * x
    y = (a * w + a.exp()).tanh()
    y.backward()
    positions = graph.layered_layout(y)
    assert sorted(x_pos for x_pos, _ in positions.values()) == [0, 0, 1, 2, 2, 3, 4]
    assert positions[x][0] == 0 and positions[w][0] == 0 and positions[a][0] == 1 and positions[y][0] == 4
    assert sorted(y_pos for x_pos, y_pos in positions.values() if x_pos == 0) == [-0.5, 0.5], "a layer is centred"
    label = graph.node_label(x)
    assert label.splitlines()[0] == "x" and label.splitlines()[1] == "value 2"
    assert label.splitlines()[2].startswith("grad ")
    assert graph.node_label(w) == "w\nvalue -3", "a constant shows no gradient"
    ax = graph.draw_graph(y)
    edges = [t for t in ax.texts if isinstance(t, Annotation)]
    assert len(ax.texts) - len(edges) == 7, "one box per node"
    assert len(edges) == 8, "one arrow per operand: x * x and a * w have two each"
    assert "(2×3 tensor)" in graph.node_label(Value(torch.zeros(2, 3, dtype=F64)))
    matplotlib.pyplot.close("all")


# ----------------------------------------------------------------------------- on a GPU


@pytest.mark.cuda
@pytest.mark.parametrize("seed", range(0, 30, 5))
def test_random_expressions_on_a_gpu_match_torch_func(seed):
    tree, xs, generator = random_expression(seed)
    xs = [x.cuda() for x in xs]
    cotangent, tangent = randn(generator, 3, 4).cuda(), randn(generator, 3, 4).cuda()

    def f(*leaves):
        return evaluate(tree, leaves)

    expected, torch_vjp = torch.func.vjp(f, *xs)
    out, vjp_fn = reverse.vjp(f, *xs)
    assert out.device.type == "cuda"
    for mine, theirs in zip(vjp_fn(cotangent), torch_vjp(cotangent)):
        assert mine.device.type == "cuda"
        assert_close(mine, theirs, claim=f"random expression {seed} on a GPU: reverse-mode VJP", against="torch.func")
    tangents = (tangent, torch.zeros_like(tangent), tangent)
    _, mine = forward.jvp(f, tuple(xs), tangents)
    _, theirs = torch.func.jvp(f, tuple(xs), tangents)
    assert_close(mine, theirs, claim=f"random expression {seed} on a GPU: forward-mode JVP", against="torch.func")
