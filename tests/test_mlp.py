"""bplib.MLP end to end: gradients against autograd and SymPy, shapes, dtypes, determinism, training."""

import pytest
import torch

import bplib
from bplib.symbolic import backprop_gradients, lambdify_torch, symbolic_mlp
from bplib.testing import assert_close

from .reference import autograd_grads, mlp_loss

CASES = [(act, loss) for act in ("relu", "sigmoid", "tanh") for loss in ("softmax_ce", "mse")]


def make_batch(net, m, generator):
    x = torch.randn(m, net.sizes[0], generator=generator, dtype=net.weights[0].dtype)
    n_out = net.sizes[-1]
    if net.loss == "softmax_ce":
        return x, torch.randint(0, n_out, (m,), generator=generator)
    return x, torch.randn(m, n_out, generator=generator, dtype=net.weights[0].dtype)


@pytest.mark.parametrize("activation, loss", CASES)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("sizes, m", [([3, 2], 1), ([4, 5, 3], 1), ([6, 8, 7, 4], 9)])
def test_loss_and_grads_match_autograd(activation, loss, dtype, sizes, m, generator):
    net = bplib.MLP(sizes, activation, loss, dtype=dtype, generator=generator)
    x, y = make_batch(net, m, generator)
    value, dweights, dbiases = net.loss_and_grads(x, y)
    n = len(net.weights)
    ref_value, ref_grads = autograd_grads(
        lambda *p: mlp_loss(p[:n], p[n:], x, y, activation, loss), *net.weights, *net.biases
    )
    assert_close(value, ref_value, claim="MLP loss equals the torch expression")
    for l in range(n):
        assert dweights[l].shape == net.weights[l].shape and dbiases[l].shape == net.biases[l].shape
        assert_close(dweights[l], ref_grads[l], claim=f"dW^{l + 1} equals autograd")
        assert_close(dbiases[l], ref_grads[n + l], claim=f"db^{l + 1} equals autograd")


@pytest.mark.parametrize("loss", ["mse", "softmax_ce"])
def test_loss_and_grads_match_sympy_for_one_sample(loss, generator):
    sizes = [2, 3, 2, 2]
    net = bplib.MLP(sizes, "tanh", loss, dtype=torch.float64, generator=generator)
    for b in net.biases:
        b.normal_(generator=generator)
    sym = symbolic_mlp(sizes, "tanh", loss)
    x = torch.randn(1, 2, generator=generator, dtype=torch.float64)
    y = torch.tensor([1]) if loss == "softmax_ce" else torch.randn(1, 2, generator=generator, dtype=torch.float64)
    y_row = torch.nn.functional.one_hot(y, 2).double()[0] if loss == "softmax_ce" else y[0]
    values = sym.values(net.weights, net.biases, x[0], y_row)
    value, dweights, dbiases = net.loss_and_grads(x, y)
    assert_close(value, lambdify_torch(sym.symbols, sym.loss)(values), claim="MLP loss equals SymPy")
    sym_dweights, sym_dbiases = backprop_gradients(sym)
    for l in range(3):
        assert_close(dweights[l], lambdify_torch(sym.symbols, sym_dweights[l])(values), claim=f"dW^{l + 1} = SymPy")
        assert_close(dbiases[l], lambdify_torch(sym.symbols, sym_dbiases[l])(values)[:, 0], claim=f"db^{l + 1} = SymPy")


def test_shapes_dtype_and_defaults():
    net = bplib.MLP([5, 4, 3], generator=torch.Generator().manual_seed(0))
    assert [tuple(W.shape) for W in net.weights] == [(4, 5), (3, 4)]
    assert [tuple(b.shape) for b in net.biases] == [(4,), (3,)]
    assert all(p.dtype == torch.float32 and p.device.type == "cpu" for p in net.parameters)
    assert net.activation == "relu" and net.loss == "softmax_ce"
    assert net.forward(torch.zeros(7, 5)).shape == (7, 3)


def test_same_generator_seed_gives_the_same_network():
    a = bplib.MLP([4, 6, 2], generator=torch.Generator().manual_seed(7))
    b = bplib.MLP([4, 6, 2], generator=torch.Generator().manual_seed(7))
    c = bplib.MLP([4, 6, 2], generator=torch.Generator().manual_seed(8))
    assert all(torch.equal(p, q) for p, q in zip(a.parameters, b.parameters))
    assert not torch.equal(a.weights[0], c.weights[0])


def test_forward_is_the_output_the_loss_sees(generator):
    net = bplib.MLP([3, 4, 2], "sigmoid", "mse", dtype=torch.float64, generator=generator)
    x, y = make_batch(net, 5, generator)
    value, _, _ = net.loss_and_grads(x, y)
    assert_close(value, 0.5 * ((net.forward(x) - y) ** 2).sum() / 5, claim="loss of forward(x)")


def test_gradient_descent_with_backprop_learns_xor():
    g = torch.Generator().manual_seed(0)
    net = bplib.MLP([2, 8, 2], "tanh", "softmax_ce", dtype=torch.float64, generator=g)
    x = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]], dtype=torch.float64)
    y = torch.tensor([0, 1, 1, 0])
    first, _, _ = net.loss_and_grads(x, y)
    for _ in range(500):
        loss, dweights, dbiases = net.loss_and_grads(x, y)
        for p, d in zip(net.weights + net.biases, dweights + dbiases):
            p.sub_(0.5 * d)
    assert loss < 0.05 * first
    assert torch.equal(net.forward(x).argmax(dim=1), y)


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh"])
def test_forward_can_be_recorded_by_autograd(activation, generator):
    # the chapters differentiate bplib's forward pass with autograd to compare routes;
    # the in-place activation buffers must step aside when autograd records
    net = bplib.MLP([3, 5, 4, 2], activation, "mse", dtype=torch.float64, generator=generator)
    x, y = make_batch(net, 6, generator)
    _, dweights, _ = net.loss_and_grads(x, y)
    net.weights = [W.requires_grad_() for W in net.weights]
    loss = 0.5 * ((net.forward(x) - y) ** 2).sum() / 6
    for W, dW in zip(net.weights, dweights):
        assert_close(dW, torch.autograd.grad(loss, W, retain_graph=True)[0], claim="autograd through bplib's forward")
