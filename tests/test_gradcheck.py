"""bplib.gradcheck: batched == loop == analytic, planted mistakes are flagged, every error path is reported."""

import math

import pytest
import torch

import bplib
from bplib.gradcheck import (
    CORRECT_BELOW,
    WRONG_FROM,
    directional_check,
    gradient_check,
    loop_numerical_gradient,
    numerical_gradient,
    relative_error,
)

F64 = torch.float64
EPS = torch.finfo(F64).eps
H = 1e-7


def rounding_bound(value: float, h: float = H, ulps: int = 8) -> float:
    """Largest difference two evaluations of one central difference can show from rounding alone.

    Both routes evaluate f at bit-identical points; f's own reductions may add in another order
    (a batched matrix product against a plain one), which moves each of f(x + h e_i) and
    f(x - h e_i) by a few ulps of |f|, and the quotient divides that by 2h.
    """
    return ulps * EPS * max(1.0, abs(value)) / (2 * h)


def fd_tolerance(value: float, h: float = H) -> float:
    """How far a central difference may lie from the exact derivative, for the functions below.

    Truncation, h^2/6 |f'''|, is below 2e-15 |f'''| at h = 1e-7 (0 for the quadratic); rounding,
    eps |f| / h per evaluation, is about 2e-9 |f|.  A margin of 50 on the rounding term (1e-7 |f|)
    covers the error of a few dozen operations inside f, and stays 100 times below a 1 % error in
    a gradient entry of size 1e-3.
    """
    return 50 * EPS * max(1.0, abs(value)) / h


# ----------------------------------------------------------------------------- the functions checked


def quadratic(generator, shape=(3, 4)):
    """f(x) = 1/2 x^T A x + b^T x on x of the given shape (flattened), with gradient A x + b (A symmetric)."""
    n = math.prod(shape)
    A = torch.randn(n, n, generator=generator, dtype=F64)
    A = A + A.T
    b = torch.randn(n, generator=generator, dtype=F64)
    x = torch.randn(shape, generator=generator, dtype=F64)

    def f(t):
        v = t.reshape(-1)
        return 0.5 * v @ A @ v + b @ v

    return f, x, (A @ x.reshape(-1) + b).view(shape)


def mlp_problem(generator, activation="tanh", loss="softmax_ce", sizes=(4, 5, 5, 3), m=6):
    """A network, a batch, its flat parameter vector, the vector's inverse map and backprop's gradient, flattened."""
    net = bplib.MLP(list(sizes), activation, loss, dtype=F64, generator=generator)
    for b in net.biases:  # biases start at 0; random ones make db a non-trivial check
        b.normal_(0.0, 0.1, generator=generator)
    x = torch.randn(m, sizes[0], generator=generator, dtype=F64)
    if loss == "softmax_ce":
        y = torch.randint(0, sizes[-1], (m,), generator=generator)
    else:
        y = torch.randn(m, sizes[-1], generator=generator, dtype=F64)
    theta, unflatten = bplib.flatten(net.parameters)  # [vec W^1, b^1, ..., vec W^L, b^L]
    _, grads = net.loss_and_grads(x, y)
    return net, x, y, theta, unflatten, bplib.flatten(grads)[0]


def mlp_loss(net, x, y, unflatten):
    """The MLP's loss as a pure function of its flat parameter vector (vmappable)."""
    return lambda theta: net.loss(x, y, params=unflatten(theta))


def with_item(f):
    """f behind a call of .item() on its input: vmap refuses it, so numerical_gradient must use the loop."""

    def g(t):
        return f(t) + 0.0 * t.reshape(-1)[0].item()

    return g


def with_control_flow(f):
    """f behind Python control flow on a value of its input (a branch that is never taken near x)."""

    def g(t):
        if t.abs().sum() > 1e6:
            return f(t) * 2
        return f(t)

    return g


def python_float(f):
    """f returning a Python float."""
    return lambda t: float(f(t))


def counting(f):
    calls = []

    def g(t):
        calls.append(tuple(t.shape))
        return f(t)

    return g, calls


# ----------------------------------------------------------------------------- numerical_gradient


@pytest.mark.parametrize("chunk_size", [None, 1, 5, 12])
def test_batched_quadratic_equals_loop_and_gradient(chunk_size, generator):
    f, x, grad = quadratic(generator)
    batched = numerical_gradient(f, x, chunk_size=chunk_size)  # 5 does not divide 12: a short last chunk
    looped = loop_numerical_gradient(f, x)
    assert batched.shape == x.shape and batched.dtype == x.dtype and batched.device == x.device
    value = float(f(x))
    torch.testing.assert_close(batched, looped, rtol=0, atol=rounding_bound(value))
    torch.testing.assert_close(batched, grad, rtol=0, atol=fd_tolerance(value))


@pytest.mark.parametrize("activation, loss", [("tanh", "softmax_ce"), ("sigmoid", "mse"), ("relu", "softmax_ce")])
def test_batched_mlp_loss_equals_loop_and_backprop(activation, loss, generator):
    net, x, y, theta, unflatten, grad = mlp_problem(generator, activation, loss)
    f, calls = counting(mlp_loss(net, x, y, unflatten))
    batched = numerical_gradient(f, theta, chunk_size=16)
    assert len(calls) == math.ceil(theta.numel() / 16), "the network's pure loss runs under vmap, one call per chunk"
    looped = loop_numerical_gradient(f, theta)
    value = float(f(theta))
    torch.testing.assert_close(batched, looped, rtol=0, atol=rounding_bound(value))
    torch.testing.assert_close(batched, grad, rtol=0, atol=fd_tolerance(value))


@pytest.mark.parametrize("wrap", [with_item, with_control_flow, python_float])
def test_fallback_is_the_loop_bit_for_bit(wrap, generator):
    f, x, grad = quadratic(generator)
    g = wrap(f)
    torch.testing.assert_close(numerical_gradient(g, x), loop_numerical_gradient(g, x), rtol=0, atol=0)
    torch.testing.assert_close(numerical_gradient(g, x), grad, rtol=0, atol=fd_tolerance(float(f(x))))


def test_batched_path_calls_f_once_per_chunk(generator):
    f, x, _ = quadratic(generator)  # 12 entries
    g, calls = counting(f)
    numerical_gradient(g, x, chunk_size=5)
    assert calls == [(3, 4)] * 3  # vmap traces f once per chunk, each row seen in f's own shape


@pytest.mark.parametrize("wrap", [with_item, with_control_flow, python_float])
def test_fallback_calls_f_once_per_point(wrap, generator):
    f, x, _ = quadratic(generator)
    g, calls = counting(wrap(f))
    numerical_gradient(g, x, chunk_size=5)
    assert len(calls) == 1 + 2 * 12  # the refused vmap attempt, then 2 calls per entry


def test_x_is_left_untouched_and_may_require_grad(generator):
    f, x, grad = quadratic(generator)
    x.requires_grad_(True)
    before = x.detach().clone()
    for numerical in (numerical_gradient(f, x), loop_numerical_gradient(f, x)):
        assert not numerical.requires_grad
        torch.testing.assert_close(numerical, grad, rtol=0, atol=fd_tolerance(float(f(before))))
    assert torch.equal(x.detach(), before)


def test_zero_dimensional_and_empty_x():
    x = torch.tensor(0.3, dtype=F64)
    cube = lambda t: t**3  # noqa: E731
    torch.testing.assert_close(numerical_gradient(cube, x), 3 * x**2, rtol=0, atol=1e-8)
    empty = torch.zeros(0, 3, dtype=F64)
    assert numerical_gradient(lambda t: t.sum(), empty).shape == (0, 3)
    assert gradient_check(lambda t: t.sum(), empty, torch.zeros_like(empty)) == 0.0


# ----------------------------------------------------------------------------- gradient_check


@pytest.mark.parametrize("activation, loss", [("tanh", "softmax_ce"), ("sigmoid", "mse"), ("relu", "softmax_ce"), ("tanh", "mse")])
def test_gradient_check_passes_backprop(activation, loss, generator):
    net, x, y, theta, unflatten, grad = mlp_problem(generator, activation, loss)
    assert gradient_check(mlp_loss(net, x, y, unflatten), theta, grad) < CORRECT_BELOW


def plant_entry_one_percent_off(unflatten, grad):
    wrong = grad.clone()
    i = int(grad.abs().argmax())
    wrong[i] *= 1.01
    return wrong


def plant_transposed_weight_gradient(unflatten, grad):
    # dW^2 (square, 5 x 5) returned transposed: the shape is right, the entries are not
    grads = unflatten(grad)
    return bplib.flatten(grads.like(g.T if name == "W2" else g for name, g in zip(grads.names, grads)))[0]


def plant_sign_error(unflatten, grad):
    grads = unflatten(grad)
    return bplib.flatten(grads.like(-g if name == "b3" else g for name, g in zip(grads.names, grads)))[0]  # db^L


@pytest.mark.parametrize("plant", [plant_entry_one_percent_off, plant_transposed_weight_gradient, plant_sign_error])
def test_gradient_check_flags_planted_mistakes(plant, generator):
    net, x, y, theta, unflatten, grad = mlp_problem(generator)
    wrong = plant(unflatten, grad)
    assert not torch.equal(wrong, grad)
    f = mlp_loss(net, x, y, unflatten)
    assert gradient_check(f, theta, wrong) > WRONG_FROM
    assert gradient_check(f, theta, grad) < CORRECT_BELOW


def test_relative_error_conventions():
    zero = torch.zeros(3, dtype=F64)
    g = torch.tensor([1.0, -2.0, 2.0], dtype=F64)
    assert relative_error(zero, zero) == 0.0
    assert relative_error(g, zero) == 1.0 and relative_error(g, -g) == 1.0
    assert relative_error(g, g) == 0.0
    assert math.isclose(relative_error(1.01 * g, g), 0.01 / 2.01, rel_tol=1e-12)
    constant = lambda t: (0.0 * t).sum() + 1.0  # noqa: E731
    assert gradient_check(constant, g, zero) == 0.0


# ----------------------------------------------------------------------------- directional_check


def larger_mlp(generator):
    # P = 12*16 + 16 + 16*16 + 16 + 16*4 + 4 = 548: enough directions of the parameter space to be random in
    return mlp_problem(generator, "tanh", "softmax_ce", sizes=(12, 16, 16, 4), m=8)


def test_directional_check_passes_backprop_and_flags_one_percent(generator):
    net, x, y, theta, unflatten, grad = larger_mlp(generator)
    f = mlp_loss(net, x, y, unflatten)
    noise = torch.randn(grad.shape, generator=generator, dtype=F64)
    noisy = grad + 0.01 * torch.linalg.vector_norm(grad) * noise / torch.linalg.vector_norm(noise)
    correct = directional_check(f, theta, grad, generator=torch.Generator().manual_seed(0))
    scaled = directional_check(f, theta, 1.01 * grad, generator=torch.Generator().manual_seed(0))
    noised = directional_check(f, theta, noisy, generator=torch.Generator().manual_seed(0))
    # correct: finite-difference noise, eps |f| / (h |g . d|) ~ 1e-10 / 1e-2; wrong: about ||e|| / (2 ||g||) = 5e-3
    assert correct < CORRECT_BELOW
    assert math.isclose(scaled, 0.01 / 2.01, rel_tol=1e-4)  # g' = 1.01 g is off by 1 % along every direction
    assert noised > 100 * WRONG_FROM
    assert min(scaled, noised) > 1e4 * correct


def test_directional_check_is_deterministic_and_leaves_global_rng_alone(generator):
    net, x, y, theta, unflatten, grad = larger_mlp(generator)
    f = mlp_loss(net, x, y, unflatten)
    wrong = 1.01 * grad
    state = torch.random.get_rng_state()
    a = directional_check(f, theta, wrong, directions=4, generator=torch.Generator().manual_seed(5))
    b = directional_check(f, theta, wrong, directions=4, generator=torch.Generator().manual_seed(5))
    c = directional_check(f, theta, wrong, directions=4)  # default: its own generator, seeded with 0
    d = directional_check(f, theta, wrong, directions=4)
    assert a == b and c == d
    assert torch.equal(torch.random.get_rng_state(), state)


def test_directional_check_falls_back_for_unvmappable_f(generator):
    net, x, y, theta, unflatten, grad = larger_mlp(generator)
    wrong = grad.clone()
    wrong[:16] *= -1  # a sign error in the first row of dW^1
    directions = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    f_batched, calls = counting(mlp_loss(net, x, y, unflatten))
    batched = directional_check(f_batched, theta, wrong, directions=6, generator=directions())
    assert len(calls) == 1
    f_looped, calls = counting(with_item(mlp_loss(net, x, y, unflatten)))  # .item(): not vmappable
    looped = directional_check(f_looped, theta, wrong, directions=6, generator=directions())
    assert len(calls) == 1 + 2 * 6
    assert batched > WRONG_FROM
    assert math.isclose(batched, looped, rel_tol=1e-6)  # same directions, same points, rounding apart
    assert directional_check(f_looped, theta, grad, generator=directions()) < CORRECT_BELOW


# ----------------------------------------------------------------------------- errors


X = torch.zeros(3, 4, dtype=F64)
total = lambda t: t.sum()  # noqa: E731


@pytest.mark.parametrize("check", [numerical_gradient, loop_numerical_gradient])
@pytest.mark.parametrize(
    "args, error, pattern",
    [
        ((total, [1.0, 2.0]), TypeError, r"{fn}: argument 'x' must be a torch.Tensor, got list"),
        ((total, torch.zeros(3, dtype=torch.int64)), TypeError, r"{fn}: argument 'x' must have a floating dtype .*int64"),
        ((total, X, 0.0), ValueError, r"{fn}: argument 'h' must be a finite number > 0, got 0.0"),
        ((total, X, -1e-7), ValueError, r"{fn}: argument 'h' must be a finite number > 0, got -1e-07"),
        ((total, X, float("nan")), ValueError, r"{fn}: argument 'h' must be a finite number > 0, got nan"),
        ((total, X, "1e-7"), TypeError, r"{fn}: argument 'h' must be a Python number, got str"),
        (("sum", X), TypeError, r"{fn}: argument 'f' must be callable \(a tensor -> scalar function\), got str"),
        ((lambda t: t.sum(dim=0), X), ValueError, r"{fn}: argument 'f' must return a scalar \(a 0-d tensor or a Python float\), got a tensor of shape \(4,\)"),
        ((lambda t: float(t.sum()) * torch.ones(2), X), ValueError, r"{fn}: argument 'f' must return a scalar .*got a tensor of shape \(2,\)"),
        ((lambda t: (t > 0).sum(), X), TypeError, r"{fn}: argument 'f' must return a floating scalar, got a tensor of dtype torch.int64"),
        ((lambda t: (t.sum(), t.sum()), X), TypeError, r"{fn}: argument 'f' must return a scalar \(a 0-d tensor or a Python float\), got tuple"),
        ((lambda t: str(float(t.sum())), X), TypeError, r"{fn}: argument 'f' must return a scalar .*got str"),
    ],
)
def test_numerical_gradient_errors(check, args, error, pattern):
    with pytest.raises(error, match=pattern.format(fn=check.__name__)):
        check(*args)


@pytest.mark.parametrize(
    "call, error, pattern",
    [
        (lambda: numerical_gradient(total, X, chunk_size=0), ValueError, r"numerical_gradient: argument 'chunk_size' must be an int >= 1, got 0"),
        (lambda: numerical_gradient(total, X, chunk_size=2.0), TypeError, r"numerical_gradient: argument 'chunk_size' must be an int, got float"),
        (lambda: gradient_check(total, X, X.reshape(-1)), ValueError, r"gradient_check: argument 'analytic_grad' must have shape \(3, 4\) \(the shape of x\), got \(12,\)"),
        (lambda: gradient_check(total, X, X.float()), TypeError, r"gradient_check: argument 'analytic_grad' has dtype torch.float32 but 'x' has dtype torch.float64"),
        (lambda: gradient_check(total, X, X.to("meta")), ValueError, r"gradient_check: argument 'analytic_grad' is on device meta but 'x' is on cpu"),
        (lambda: gradient_check(total, X, X.tolist()), TypeError, r"gradient_check: argument 'analytic_grad' must be a torch.Tensor, got list"),
        (lambda: gradient_check(total, X, X.long()), TypeError, r"gradient_check: argument 'analytic_grad' must have a floating dtype"),
        (lambda: gradient_check(total, X.long(), X), TypeError, r"gradient_check: argument 'x' must have a floating dtype"),
        (lambda: gradient_check(total, X, X, h=0), ValueError, r"gradient_check: argument 'h' must be a finite number > 0, got 0"),
        (lambda: gradient_check(lambda t: t, X, X), ValueError, r"gradient_check: argument 'f' must return a scalar .*got a tensor of shape \(3, 4\)"),
        (lambda: directional_check(total, X, X, directions=0), ValueError, r"directional_check: argument 'directions' must be an int >= 1, got 0"),
        (lambda: directional_check(total, X, X, directions=2.5), TypeError, r"directional_check: argument 'directions' must be an int, got float"),
        (lambda: directional_check(total, X, X, directions=True), TypeError, r"directional_check: argument 'directions' must be an int, got bool"),
        (lambda: directional_check(total, X, X, h=-1.0), ValueError, r"directional_check: argument 'h' must be a finite number > 0, got -1.0"),
        (lambda: directional_check(total, X, X, generator=0), TypeError, r"directional_check: argument 'generator' must be a torch.Generator or None, got int"),
        (lambda: directional_check(total, X, X[0]), ValueError, r"directional_check: argument 'analytic_grad' must have shape \(3, 4\)"),
        (lambda: directional_check(total, X, X.float()), TypeError, r"directional_check: argument 'analytic_grad' has dtype torch.float32"),
        (lambda: directional_check(lambda t: t[0], X, X), ValueError, r"directional_check: argument 'f' must return a scalar .*got a tensor of shape \(4,\)"),
        (lambda: directional_check(lambda t: [float(t.sum())], X, X), TypeError, r"directional_check: argument 'f' must return a scalar .*got list"),
        (lambda: directional_check(None, X, X), TypeError, r"directional_check: argument 'f' must be callable"),
        (lambda: relative_error(X, X[0]), ValueError, r"relative_error: argument 'analytic' must have shape \(3, 4\) \(the shape of numerical\), got \(4,\)"),
        (lambda: relative_error(X, X.float()), TypeError, r"relative_error: argument 'analytic' has dtype torch.float32"),
    ],
)
def test_check_errors(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()


def test_genuine_error_in_f_surfaces_from_the_loop():
    def broken(t):
        raise KeyError("a bug inside f")

    with pytest.raises(KeyError, match="a bug inside f"):
        numerical_gradient(broken, X)


# ----------------------------------------------------------------------------- CUDA


@pytest.mark.cuda
def test_on_cuda_results_follow_x_and_match_cpu(generator):
    net, x, y, theta, unflatten, grad = larger_mlp(generator)
    f_cpu = mlp_loss(net, x, y, unflatten)
    f_gpu = mlp_loss(net, x.cuda(), y.cuda(), unflatten)  # the parameters come from theta, on the GPU
    numerical = numerical_gradient(f_gpu, theta.cuda())
    assert numerical.device.type == "cuda" and numerical.dtype == F64
    torch.testing.assert_close(numerical.cpu(), numerical_gradient(f_cpu, theta), rtol=0, atol=rounding_bound(float(f_cpu(theta))))
    on_gpu = directional_check(f_gpu, theta.cuda(), 1.01 * grad.cuda(), generator=torch.Generator().manual_seed(0))
    on_cpu = directional_check(f_cpu, theta, 1.01 * grad, generator=torch.Generator().manual_seed(0))
    assert math.isclose(on_gpu, on_cpu, rel_tol=1e-6)
