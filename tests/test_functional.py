"""Every forward/backward pair against torch.autograd (random shapes) and against SymPy (tiny sizes)."""

import math

import pytest
import sympy as sp
import torch
import torch.nn.functional as F

from bplib import functional as bf
from bplib.symbolic import ACTIVATIONS as SYMPY_ACTIVATIONS
from bplib.symbolic import derivative, lambdify_torch, softmax
from bplib.testing import assert_close

from .reference import TORCH_ACTIVATIONS, autograd_grads

F64 = torch.float64
SHAPES = [(1, 1, 1), (1, 4, 3), (5, 3, 7), (16, 10, 2)]  # (m, n_in, n_out): batch 1 included


def randn(*shape, generator, dtype=F64):
    return torch.randn(*shape, generator=generator, dtype=dtype)


@pytest.mark.parametrize("m, n_in, n_out", SHAPES)
def test_linear_matches_autograd(m, n_in, n_out, generator):
    x, W, b = randn(m, n_in, generator=generator), randn(n_out, n_in, generator=generator), randn(n_out, generator=generator)
    dz = randn(m, n_out, generator=generator)
    z, cache = bf.linear_forward(x, W, b)
    dx, dW, db = bf.linear_backward(dz, cache)
    z_ref, grads = autograd_grads(lambda x, W, b: (F.linear(x, W, b) * dz).sum(), x, W, b)
    assert_close(z, F.linear(x, W, b), claim="linear forward equals F.linear")
    for name, ours, ref in zip(("dx", "dW", "db"), (dx, dW, db), grads):
        assert_close(ours, ref, claim=f"linear backward {name} equals autograd")


def test_linear_backward_can_skip_the_input_gradient(generator):
    x, W, b = randn(3, 4, generator=generator), randn(2, 4, generator=generator), randn(2, generator=generator)
    _, cache = bf.linear_forward(x, W, b)
    dz = randn(3, 2, generator=generator)
    dx, dW, db = bf.linear_backward(dz, cache, input_grad=False)
    assert dx is None
    _, dW_full, db_full = bf.linear_backward(dz, cache)
    assert_close(dW, dW_full, claim="skipping dx leaves dW unchanged")
    assert_close(db, db_full, claim="skipping dx leaves db unchanged")


@pytest.mark.parametrize("name", sorted(bf.ACTIVATIONS))
@pytest.mark.parametrize("shape", [(1, 1), (4, 3), (7, 9)])
def test_activation_matches_autograd(name, shape, generator):
    forward, backward = bf.ACTIVATIONS[name]
    z = 3 * randn(*shape, generator=generator)
    da = randn(*shape, generator=generator)
    a, cache = forward(z)
    _, (dz_ref,) = autograd_grads(lambda z: (TORCH_ACTIVATIONS[name](z) * da).sum(), z)
    assert_close(a, TORCH_ACTIVATIONS[name](z), claim=f"{name} forward equals torch")
    assert_close(backward(da, cache), dz_ref, claim=f"{name} backward equals autograd")


@pytest.mark.parametrize("name", sorted(bf.ACTIVATIONS))
def test_activation_derivative_matches_sympy(name, generator):
    t = sp.Symbol("t", real=True)
    forward, backward = bf.ACTIVATIONS[name]
    sympy_value = lambdify_torch([t], SYMPY_ACTIVATIONS[name](t))
    sympy_slope = lambdify_torch([t], derivative(name)(t))
    for value in (-2.5, -0.3, 0.7, 4.0):  # away from relu's kink at 0
        z = torch.tensor([[value]], dtype=F64)
        a, cache = forward(z)
        dz = backward(torch.ones_like(a), cache)
        point = torch.tensor([value], dtype=F64)
        assert_close(a[0, 0], sympy_value(point), claim=f"{name}({value}) equals SymPy")
        assert_close(dz[0, 0], sympy_slope(point), claim=f"{name}'({value}) equals SymPy's derivative")


def test_relu_gradient_at_zero_is_zero_as_in_torch():
    z = torch.zeros(2, 3, dtype=F64)
    a, cache = bf.relu_forward(z)
    assert torch.count_nonzero(bf.relu_backward(torch.ones_like(a), cache)) == 0


@pytest.mark.parametrize("m, C", [(1, 1), (1, 3), (6, 4), (32, 10)])
def test_softmax_cross_entropy_matches_autograd(m, C, generator):
    logits = randn(m, C, generator=generator)
    labels = torch.randint(0, C, (m,), generator=generator)
    probs = torch.softmax(randn(m, C, generator=generator), dim=1)
    for y in (labels, probs):
        loss, cache = bf.softmax_cross_entropy_forward(logits, y)
        dlogits = bf.softmax_cross_entropy_backward(2.5, cache)
        loss_ref, (dlogits_ref,) = autograd_grads(lambda z: F.cross_entropy(z, y), logits)
        assert_close(loss, loss_ref, claim="softmax cross-entropy equals F.cross_entropy")
        assert_close(dlogits, 2.5 * dlogits_ref, claim="softmax cross-entropy backward equals autograd")


def test_softmax_cross_entropy_matches_sympy():
    z = sp.Matrix(sp.symbols("z_1:4", real=True))
    loss = -sp.log(softmax(z)[1])  # one sample, label 1
    grad = sp.Matrix([sp.diff(loss, zj) for zj in z]).T
    logits = torch.tensor([[0.3, -1.2, 2.0]], dtype=F64)
    ours, cache = bf.softmax_cross_entropy_forward(logits, torch.tensor([1]))
    assert_close(ours, lambdify_torch(z, loss)(logits[0]), claim="cross-entropy equals SymPy")
    assert_close(bf.softmax_cross_entropy_backward(1.0, cache), lambdify_torch(z, grad)(logits[0]),
                 claim="cross-entropy gradient equals SymPy's")


@pytest.mark.parametrize("scale", [1e2, 1e4, 1e6])
def test_softmax_cross_entropy_is_stable_at_large_logits(scale):
    # logits (s, s - 1, -s) with label 1: loss = log(1 + e^-1 + e^{-2s}) + 1, exactly
    logits = torch.tensor([[scale, scale - 1, -scale]], dtype=F64)
    loss, cache = bf.softmax_cross_entropy_forward(logits, torch.tensor([1]))
    dlogits = bf.softmax_cross_entropy_backward(1.0, cache)
    assert torch.isfinite(loss) and torch.isfinite(dlogits).all()
    assert_close(loss, torch.tensor(1 + math.log1p(math.exp(-1)), dtype=F64), claim="loss at huge logits")
    p0 = 1 / (1 + math.exp(-1))
    assert_close(dlogits, torch.tensor([[p0, (1 - p0) - 1, 0.0]], dtype=F64), claim="p - y at huge logits")


def test_softmax_cross_entropy_is_stable_in_float32():
    logits = torch.tensor([[1e4, -1e4, 0.0]], dtype=torch.float32)
    loss, cache = bf.softmax_cross_entropy_forward(logits, torch.tensor([2]))
    assert torch.isfinite(loss) and torch.isfinite(bf.softmax_cross_entropy_backward(1.0, cache)).all()
    assert_close(loss, torch.tensor(1e4), claim="loss = logsumexp - z_y = 1e4 in float32")


@pytest.mark.parametrize("m, k", [(1, 1), (3, 2), (20, 5)])
def test_mse_matches_autograd(m, k, generator):
    y_hat, y = randn(m, k, generator=generator), randn(m, k, generator=generator)
    loss, cache = bf.mse_forward(y_hat, y)
    loss_ref, (dy_hat_ref,) = autograd_grads(lambda p: 0.5 * ((p - y) ** 2).sum() / m, y_hat)
    assert_close(loss, loss_ref, claim="MSE equals its definition")
    upstream = torch.tensor(0.5, dtype=F64)
    assert_close(bf.mse_backward(upstream, cache), 0.5 * dy_hat_ref, claim="MSE backward equals autograd")


def test_mse_matches_sympy():
    p = sp.Matrix(sp.symbols("p_1:3", real=True))
    t = sp.Matrix(sp.symbols("t_1:3", real=True))
    loss = sum((p - t).applyfunc(lambda r: r**2)) / 2
    grad = sp.Matrix([[sp.diff(loss, pj) for pj in p]])
    values = torch.tensor([0.5, -1.5, 2.0, 0.25], dtype=F64)
    ours, cache = bf.mse_forward(values[:2].reshape(1, 2), values[2:].reshape(1, 2))
    symbols = [*p, *t]
    assert_close(ours, lambdify_torch(symbols, loss)(values), claim="MSE equals SymPy")
    assert_close(bf.mse_backward(1.0, cache), lambdify_torch(symbols, grad)(values), claim="MSE gradient equals SymPy's")
