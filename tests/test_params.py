"""bplib.Params and bplib.flatten: one order for parameters and gradients, and the pure functional form."""

import pickle

import pytest
import torch

import bplib
from bplib.gradcheck import CORRECT_BELOW, gradient_check, numerical_gradient
from bplib.testing import assert_close

F64 = torch.float64


def test_mlp_params_iterate_in_parameter_order_and_name_both_halves():
    W1, b1, W2, b2 = (torch.full(s, float(i), dtype=F64) for i, s in enumerate([(3, 2), (3,), (1, 3), (1,)]))
    params = bplib.MLPParams.from_layers([W1, W2], [b1, b2])
    assert isinstance(params, tuple) and len(params) == 4
    assert [p is q for p, q in zip(params, (W1, b1, W2, b2))] == [True] * 4
    assert params.weights == (W1, W2) and params.biases == (b1, b2)
    assert params.layers == ((W1, b1), (W2, b2))
    assert params.names == ("W1", "b1", "W2", "b2")
    assert repr(params) == "MLPParams(W1: (3, 2), b1: (3,), W2: (1, 3), b2: (1,))"
    like = params.like(torch.zeros_like(p) for p in params)
    assert type(like) is bplib.MLPParams and like.names == params.names and float(like[0].sum()) == 0.0
    again = pickle.loads(pickle.dumps(params))
    assert type(again) is bplib.MLPParams and again.names == params.names
    assert all(torch.equal(a, b) for a, b in zip(again, params))


def test_flatten_round_trip_gives_views_of_the_vector():
    g = torch.Generator().manual_seed(0)
    net = bplib.MLP([4, 5, 3], dtype=F64, generator=g)
    theta, unflatten = bplib.flatten(net.parameters)
    assert theta.shape == (4 * 5 + 5 + 5 * 3 + 3,)
    assert torch.equal(theta, torch.cat([p.reshape(-1) for p in net.parameters]))
    back = unflatten(theta)
    assert type(back) is bplib.MLPParams and back.names == net.parameters.names
    assert all(torch.equal(a, b) for a, b in zip(back, net.parameters))
    back.weights[0][0, 0] = 123.0  # a view: writes into theta, not into the network
    assert float(theta[0]) == 123.0 and float(net.weights[0][0, 0]) != 123.0


def test_flatten_plain_sequences_and_names():
    a, b = torch.ones(2, 2), torch.zeros(3)
    theta, unflatten = bplib.flatten([a, b])
    parts = unflatten(theta)
    assert type(parts) is bplib.Params and parts.names == ("0", "1")
    assert parts[0].shape == (2, 2) and parts[1].shape == (3,)


def test_gradient_check_of_a_network_takes_two_lines():
    g = torch.Generator().manual_seed(1)
    for loss, y in (("softmax_ce", torch.tensor([0, 2, 1, 1, 0])), ("mse", torch.randn(5, 3, dtype=F64, generator=g))):
        net = bplib.MLP([4, 6, 3], "tanh", loss, dtype=F64, generator=g)
        x = torch.randn(5, 4, dtype=F64, generator=g)
        _, grads = net.loss_and_grads(x, y)
        theta, unflatten = bplib.flatten(net.parameters)
        error = gradient_check(lambda t: net.loss(x, y, params=unflatten(t)), theta, bplib.flatten(grads)[0])
        assert error < CORRECT_BELOW


def test_pure_loss_is_vmappable_so_numerical_gradient_batches(monkeypatch):
    # the batched route runs vmap once per chunk; the element loop would call f 2P times
    g = torch.Generator().manual_seed(2)
    net = bplib.MLP([3, 4, 2], "sigmoid", "softmax_ce", dtype=F64, generator=g)
    x, y = torch.randn(6, 3, dtype=F64, generator=g), torch.tensor([0, 1, 1, 0, 1, 0])
    theta, unflatten = bplib.flatten(net.parameters)
    calls = []

    def f(t):
        calls.append(1)
        return net.loss(x, y, params=unflatten(t))

    numerical = numerical_gradient(f, theta, h=1e-6)
    assert len(calls) == 1, "one vmap call evaluated every perturbed point"
    _, grads = net.loss_and_grads(x, y)
    # central differences with h = 1e-6 in float64: truncation ~h^2 |f'''| and rounding ~1e-16 |f| / h, both < 1e-8
    torch.testing.assert_close(numerical, bplib.flatten(grads)[0], rtol=0, atol=1e-8)


@pytest.mark.parametrize(
    "call, error, pattern",
    [
        (lambda: bplib.flatten(torch.zeros(3)), TypeError, r"flatten: argument 'params' must be a sequence of tensors, got Tensor"),
        (lambda: bplib.flatten([]), ValueError, r"flatten: argument 'params' must hold at least one tensor"),
        (lambda: bplib.flatten([torch.zeros(2), "x"]), TypeError, r"flatten: argument 'params\[1\]' must be a torch.Tensor, got str"),
        (lambda: bplib.flatten([torch.zeros(2, dtype=torch.int64)]), TypeError, r"flatten: argument 'params\[0\]' must have a floating dtype"),
        (lambda: bplib.flatten([torch.zeros(2), torch.zeros(2, dtype=F64)]), TypeError, r"flatten: argument 'params\[1\]' has dtype torch.float64 but 'params\[0\]' has dtype torch.float32"),
        (lambda: bplib.flatten([torch.zeros(2)])[1](torch.zeros(3)), ValueError, r"unflatten: argument 'vector' must have shape \(2,\) \(P = 2, the number of parameters\), got \(3,\)"),
        (lambda: bplib.flatten([torch.zeros(2)])[1](torch.zeros(1, 2)), ValueError, r"unflatten: argument 'vector' must be 1-D"),
        (lambda: bplib.Params([torch.zeros(1)], ["a", "b"]), ValueError, r"Params: argument 'names' must hold one name per tensor \(1\), got 2"),
        (lambda: bplib.Params([torch.zeros(1), torch.zeros(1)], ["a", "a"]), ValueError, r"Params: argument 'names' must not repeat a name"),
        (lambda: bplib.MLPParams.from_layers([torch.zeros(1, 1)], []), ValueError, r"MLPParams.from_layers: arguments 'weights' and 'biases' must hold one tensor per layer each, got 1 and 0"),
    ],
)
def test_errors(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()


def test_mlp_rejects_params_that_do_not_fit():
    net = bplib.MLP([3, 4, 2], dtype=F64, generator=torch.Generator().manual_seed(0))
    x = torch.zeros(2, 3, dtype=F64)
    with pytest.raises(TypeError, match=r"MLP.forward: argument .params. must be an MLPParams"):
        net.forward(x, params=list(net.parameters))
    other = bplib.MLP([3, 5, 2], dtype=F64, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match=r"argument 'params \(W1\)' must have shape \(4, 3\) \(the shape of W1\), got \(5, 3\)"):
        net.forward(x, params=other.parameters)
    deeper = bplib.MLP([3, 4, 4, 2], dtype=F64, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match=r"argument 'params' must hold 4 tensors for this network, got 6"):
        net.loss(x, torch.tensor([0, 1]), params=deeper.parameters)
    assert_close(net.forward(x, params=net.parameters), net.forward(x), claim="params=net.parameters is the default")
