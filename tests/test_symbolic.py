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
