"""Bad input gets a TypeError/ValueError naming the function, the argument and what was expected."""

import pytest
import torch

import bplib
from bplib import functional as bf
from bplib import init
from bplib.symbolic import lambdify_torch, symbolic_mlp
from bplib.testing import assert_close, assert_identity, tolerance

F64 = torch.float64


def t(*shape, dtype=F64):
    return torch.zeros(*shape, dtype=dtype)


@pytest.mark.parametrize(
    "call, error, pattern",
    [
        (lambda: bf.linear_forward([[1.0]], t(1, 1), t(1)), TypeError, r"linear_forward: argument 'x' must be a torch.Tensor, got list"),
        (lambda: bf.linear_forward(t(2, 3), t(4, 5), t(4)), ValueError, r"linear_forward: argument 'x' must have shape \(any, 5\).*got \(2, 3\)"),
        (lambda: bf.linear_forward(t(2, 3), t(4, 3), t(5)), ValueError, r"linear_forward: argument 'b' must have shape \(4,\)"),
        (lambda: bf.linear_forward(t(3), t(4, 3), t(4)), ValueError, r"linear_forward: argument 'x' must be 2-D"),
        (lambda: bf.linear_forward(t(2, 3, dtype=torch.float32), t(4, 3), t(4)), TypeError, r"linear_forward: argument 'W' has dtype torch.float64 but 'x' has dtype torch.float32"),
        (lambda: bf.linear_forward(torch.zeros(2, 3, dtype=torch.int64), t(4, 3), t(4)), TypeError, r"linear_forward: argument 'x' must have a floating dtype.*int64"),
        (lambda: bf.linear_backward(t(2, 5), bf.linear_forward(t(2, 3), t(4, 3), t(4))[1]), ValueError, r"linear_backward: argument 'dz' must have shape \(2, 4\)"),
        (lambda: bf.sigmoid_forward(torch.ones(3, dtype=torch.int32)), TypeError, r"sigmoid_forward: argument 'z' must have a floating dtype"),
        (lambda: bf.relu_backward(t(2, 2), bf.relu_forward(t(2, 3))[1]), ValueError, r"relu_backward: argument 'da' must have the shape of the forward output \(2, 3\)"),
        (lambda: bf.tanh_backward(t(2, 2, dtype=torch.float32), bf.tanh_forward(t(2, 2))[1]), TypeError, r"tanh_backward: argument 'da' has dtype torch.float32"),
        (lambda: bf.softmax_cross_entropy_forward(t(2, 3), torch.tensor([0, 3])), ValueError, r"softmax_cross_entropy_forward: argument 'y' holds class indices outside \[0, 2\].*max 3"),
        (lambda: bf.softmax_cross_entropy_forward(t(2, 3), torch.tensor([0, -1])), ValueError, r"argument 'y' holds class indices outside"),
        (lambda: bf.softmax_cross_entropy_forward(t(2, 3), torch.tensor([0, 1, 2])), ValueError, r"softmax_cross_entropy_forward: argument 'y' must have shape \(2,\) \(one class index per row"),
        (lambda: bf.softmax_cross_entropy_forward(t(2, 3), torch.tensor([0, 1], dtype=torch.int32)), TypeError, r"argument 'y' must be int64 class indices of shape \(2,\) or floating probability rows of shape \(2, 3\), got dtype torch.int32"),
        (lambda: bf.softmax_cross_entropy_forward(t(2, 3), t(2, 3)), ValueError, r"argument 'y' given as probability rows must be non-negative with rows summing to 1"),
        (lambda: bf.softmax_cross_entropy_forward(t(0, 3), torch.zeros(0, dtype=torch.int64)), ValueError, r"argument 'logits' must hold at least one row"),
        (lambda: bf.softmax_cross_entropy_backward("1", bf.softmax_cross_entropy_forward(t(1, 2), torch.tensor([0]))[1]), TypeError, r"softmax_cross_entropy_backward: argument 'dloss' must be a Python number or a 0-d floating tensor"),
        (lambda: bf.mse_forward(t(2, 3), t(2, 2)), ValueError, r"mse_forward: argument 'y' must have shape \(2, 3\)"),
        (lambda: bf.mse_forward(t(2, 3), torch.zeros(2, 3, dtype=torch.int64)), TypeError, r"mse_forward: argument 'y' must have a floating dtype"),
        (lambda: bf.mse_backward(t(2), bf.mse_forward(t(1, 2), t(1, 2))[1]), TypeError, r"mse_backward: argument 'dloss' must be a Python number or a 0-d floating tensor"),
    ],
)
def test_functional_errors(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()


@pytest.fixture
def net():
    return bplib.MLP([3, 4, 2], dtype=F64, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize(
    "call, error, pattern",
    [
        (lambda net: bplib.MLP([3]), ValueError, r"MLP: argument 'sizes' must list at least two positive integers, got \[3\]"),
        (lambda net: bplib.MLP([3, 0, 2]), ValueError, r"MLP: argument 'sizes'"),
        (lambda net: bplib.MLP([3, 2.5]), ValueError, r"MLP: argument 'sizes'"),
        (lambda net: bplib.MLP([3, 2], activation="gelu"), ValueError, r"MLP: argument 'activation' must be one of 'sigmoid', 'tanh', 'relu', got 'gelu'"),
        (lambda net: bplib.MLP([3, 2], loss="hinge"), ValueError, r"MLP: argument 'loss' must be one of 'softmax_ce', 'mse', got 'hinge'"),
        (lambda net: bplib.MLP([3, 2], dtype=torch.int64), TypeError, r"MLP: argument 'dtype' must be a floating torch.dtype"),
        (lambda net: bplib.MLP([3, 2], parameterization="mup"), ValueError, r"MLP: argument 'parameterization' must be one of 'standard', 'ntk', got 'mup'"),
        (lambda net: bplib.MLP([3, 2], parameterization="ntk", sigma_w2=-1.0), ValueError, r"MLP: argument 'sigma_w2' must be >= 0, got -1.0 \(a variance\)"),
        (lambda net: bplib.MLP([3, 2], parameterization="ntk", sigma_b2=float("nan")), ValueError, r"MLP: argument 'sigma_b2' must be >= 0, got nan"),
        (lambda net: bplib.MLP([3, 2], sigma_w2="2"), TypeError, r"MLP: argument 'sigma_w2' must be a real number, got str '2'"),
        (lambda net: net.forward(t(5, 4)), ValueError, r"MLP.forward: argument 'x' must have shape \(any, 3\) \(batch size, n_0 = 3 inputs\), got \(5, 4\)"),
        (lambda net: net.forward(t(5, 3, dtype=torch.float32)), TypeError, r"MLP.forward: argument 'x' has dtype torch.float32 but 'weights' has dtype torch.float64"),
        (lambda net: net.forward(torch.zeros(5, 3, dtype=torch.int64)), TypeError, r"MLP.forward: argument 'x' must have a floating dtype"),
        (lambda net: net.loss_and_grads(t(5, 3), torch.tensor([0, 1, 2, 0, 1])), ValueError, r"argument 'y' holds class indices outside \[0, 1\]"),
        (lambda net: net.loss_and_grads(t(5, 3), torch.tensor([0, 1, 1])), ValueError, r"argument 'y' must have shape \(5,\)"),
        (lambda net: net.loss_and_grads(t(5, 3), "labels"), TypeError, r"argument 'y' must be a torch.Tensor, got str"),
    ],
)
def test_mlp_errors(net, call, error, pattern):
    with pytest.raises(error, match=pattern):
        call(net)


def test_helper_errors():
    with pytest.raises(ValueError, match=r"he: argument 'shape' must be \(n_out, n_in\)"):
        init.he((3,))
    with pytest.raises(ValueError, match=r"xavier: argument 'distribution' must be one of 'normal', 'uniform', got 'cauchy'"):
        init.xavier((2, 2), distribution="cauchy")
    with pytest.raises(ValueError, match=r"tolerance: argument 'dtype' must be one of"):
        tolerance(torch.int64)
    with pytest.raises(ValueError, match=r"symbolic_mlp: argument 'activation' must be one of"):
        symbolic_mlp([2, 1], "gelu")
    with pytest.raises(ValueError, match=r"lambdify_torch: argument 'v' must have shape \(2,\)"):
        lambdify_torch(symbolic_mlp([1, 1]).x.free_symbols | {symbolic_mlp([1, 1]).y[0]}, 0)(t(3))


def test_assertion_helpers_fail_on_wrong_claims():
    with pytest.raises(AssertionError, match="a wrong gradient"):
        assert_close(torch.tensor([1.0], dtype=F64), torch.tensor([1.0 + 1e-8], dtype=F64), claim="a wrong gradient")
    import sympy as sp

    x = sp.Symbol("x")
    with pytest.raises(AssertionError, match="a wrong identity: SymPy could not reduce lhs - rhs to zero"):
        assert_identity(sp.sin(x) ** 2, 1 - sp.cos(x) ** 2 + x / 10**9, claim="a wrong identity")
    assert_identity(sp.sin(x) ** 2, 1 - sp.cos(x) ** 2, claim="Pythagoras")
