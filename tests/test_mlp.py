"""bplib.MLP end to end: the reference and the fast path against autograd, SymPy and each other."""

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
    if net.loss_name == "softmax_ce":
        return x, torch.randint(0, n_out, (m,), generator=generator)
    return x, torch.randn(m, n_out, generator=generator, dtype=net.weights[0].dtype)


def effective_parameters(net):
    """The weights and biases as they act in the forward pass (scaled in the NTK parameterisation)."""
    weights = [c_w * W for W, (c_w, _) in zip(net.weights, net.scales)]
    biases = [c_b * b for b, (_, c_b) in zip(net.biases, net.scales)]
    return weights, biases


def autograd_of_stored_parameters(net, x, y):
    """Loss and gradients with respect to the stored parameters, by torch.autograd on plain torch code."""
    n = len(net.weights)

    def loss_of(*stored):
        weights = [c_w * W for W, (c_w, _) in zip(stored[:n], net.scales)]
        biases = [c_b * b for b, (_, c_b) in zip(stored[n:], net.scales)]
        return mlp_loss(weights, biases, x, y, net.activation, net.loss_name)

    value, grads = autograd_grads(loss_of, *net.weights, *net.biases)
    return value, list(grads[:n]), list(grads[n:])


@pytest.mark.parametrize("activation, loss", CASES)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("sizes, m", [([3, 2], 1), ([4, 5, 3], 1), ([6, 8, 7, 4], 9)])
@pytest.mark.parametrize("route", ["loss_and_grads", "reference_loss_and_grads"])
def test_both_routes_match_autograd(route, activation, loss, dtype, sizes, m, generator):
    net = bplib.MLP(sizes, activation, loss, dtype=dtype, generator=generator)
    for b in net.biases:  # non-zero biases, so that no pre-activation sits exactly at ReLU's kink
        b.normal_(generator=generator)
    x, y = make_batch(net, m, generator)
    value, grads = getattr(net, route)(x, y)
    ref_value, ref_dweights, ref_dbiases = autograd_of_stored_parameters(net, x, y)
    assert isinstance(grads, bplib.MLPParams) and grads.names == net.parameters.names
    assert_close(value, ref_value, claim="MLP loss equals the torch expression")
    for l in range(len(net.weights)):
        assert grads.weights[l].shape == net.weights[l].shape and grads.biases[l].shape == net.biases[l].shape
        assert_close(grads.weights[l], ref_dweights[l], claim=f"dW^{l + 1} equals autograd")
        assert_close(grads.biases[l], ref_dbiases[l], claim=f"db^{l + 1} equals autograd")


@pytest.mark.parametrize("activation, loss", CASES)
@pytest.mark.parametrize("sigma_w2, sigma_b2", [(1.0, 0.0), (2.0, 0.1)])
def test_ntk_parameterization_gradients_are_with_respect_to_stored_variables(
    activation, loss, sigma_w2, sigma_b2, generator
):
    net = bplib.MLP(
        [5, 9, 7, 3], activation, loss, dtype=torch.float64, generator=generator,
        parameterization="ntk", sigma_w2=sigma_w2, sigma_b2=sigma_b2,
    )  # fmt: skip
    x, y = make_batch(net, 6, generator)
    ref_value, ref_dweights, ref_dbiases = autograd_of_stored_parameters(net, x, y)
    for route in (net.loss_and_grads, net.reference_loss_and_grads):
        value, grads = route(x, y)
        assert_close(value, ref_value, claim="NTK-parameterised loss equals the torch expression")
        for l in range(3):
            assert_close(grads.weights[l], ref_dweights[l], claim=f"dW^{l + 1} (stored variable) equals autograd")
            assert_close(grads.biases[l], ref_dbiases[l], claim=f"db^{l + 1} (stored variable) equals autograd")


def test_ntk_parameterization_draws_standard_normals_and_scales_them():
    net = bplib.MLP([400, 300, 1], "relu", "mse", dtype=torch.float64, generator=torch.Generator().manual_seed(0),
                    parameterization="ntk", sigma_w2=2.0, sigma_b2=0.5)  # fmt: skip
    assert net.scales == [(pytest.approx((2.0 / 400) ** 0.5), pytest.approx(0.5**0.5)),
                          (pytest.approx((2.0 / 300) ** 0.5), pytest.approx(0.5**0.5))]  # fmt: skip
    W = net.weights[0]
    # 120,000 standard normal draws: the sample variance has standard error sqrt(2 / 120000) ~ 0.004
    assert abs(float(W.var()) - 1.0) < 5 * (2 / W.numel()) ** 0.5
    assert abs(float(W.mean())) < 5 / W.numel() ** 0.5


@pytest.mark.parametrize("activation, loss", CASES)
@pytest.mark.parametrize("parameterization", ["standard", "ntk"])
def test_fast_path_equals_reference_on_random_networks(activation, loss, parameterization):
    for trial in range(5):
        g = torch.Generator().manual_seed(100 + trial)
        depth = int(torch.randint(1, 5, (), generator=g))
        sizes = [int(n) for n in torch.randint(1, 12, (depth + 1,), generator=g)]
        net = bplib.MLP(sizes, activation, loss, dtype=torch.float64, generator=g,
                        parameterization=parameterization, sigma_b2=0.2)  # fmt: skip
        x, y = make_batch(net, int(torch.randint(1, 10, (), generator=g)), g)
        fast_value, fast = net.loss_and_grads(x, y)
        ref_value, ref = net.reference_loss_and_grads(x, y)
        assert_close(fast_value, ref_value, claim="the fast path's loss equals the reference's")
        for name, a, b in zip(ref.names, fast, ref):
            assert_close(a, b, claim=f"the fast path's gradient of {name} equals the reference's")


def test_probability_row_targets_on_both_routes(generator):
    net = bplib.MLP([4, 6, 3], "tanh", "softmax_ce", dtype=torch.float64, generator=generator)
    x = torch.randn(5, 4, dtype=torch.float64, generator=generator)
    y = torch.softmax(torch.randn(5, 3, dtype=torch.float64, generator=generator), dim=1)
    ref_value, ref_grads = autograd_grads(
        lambda *p: mlp_loss(p[:2], p[2:], x, y, "tanh", "softmax_ce"), *net.weights, *net.biases
    )
    for value, grads in (net.loss_and_grads(x, y), net.reference_loss_and_grads(x, y)):
        assert_close(value, ref_value, claim="soft-label cross-entropy equals torch's")
        for got, want in zip([*grads.weights, *grads.biases], ref_grads):
            assert_close(got, want, claim="soft-label gradients equal autograd")


@pytest.mark.parametrize("loss", ["mse", "softmax_ce"])
def test_reference_matches_sympy_for_one_sample(loss, generator):
    sizes = [2, 3, 2, 2]
    net = bplib.MLP(sizes, "tanh", loss, dtype=torch.float64, generator=generator)
    for b in net.biases:
        b.normal_(generator=generator)
    sym = symbolic_mlp(sizes, "tanh", loss)
    x = torch.randn(1, 2, generator=generator, dtype=torch.float64)
    y = torch.tensor([1]) if loss == "softmax_ce" else torch.randn(1, 2, generator=generator, dtype=torch.float64)
    y_row = torch.nn.functional.one_hot(y, 2).double()[0] if loss == "softmax_ce" else y[0]
    values = sym.values(net.weights, net.biases, x[0], y_row)
    value, grads = net.reference_loss_and_grads(x, y)
    assert_close(value, lambdify_torch(sym.symbols, sym.loss)(values), claim="MLP loss equals SymPy")
    sym_dweights, sym_dbiases = backprop_gradients(sym)
    for l in range(3):
        assert_close(grads.weights[l], lambdify_torch(sym.symbols, sym_dweights[l])(values), claim=f"dW^{l + 1} = SymPy")
        assert_close(grads.biases[l], lambdify_torch(sym.symbols, sym_dbiases[l])(values)[:, 0], claim=f"db^{l + 1} = SymPy")


def test_shapes_dtype_names_and_defaults():
    net = bplib.MLP([5, 4, 3], generator=torch.Generator().manual_seed(0))
    assert [tuple(W.shape) for W in net.weights] == [(4, 5), (3, 4)]
    assert [tuple(b.shape) for b in net.biases] == [(4,), (3,)]
    params = net.parameters
    assert params.names == ("W1", "b1", "W2", "b2")
    assert params[0] is net.weights[0] and params[3] is net.biases[1]  # the network's own tensors
    assert all(p.dtype == torch.float32 and p.device.type == "cpu" for p in params)
    assert net.activation == "relu" and net.loss_name == "softmax_ce" and net.parameterization == "standard"
    assert net.forward(torch.zeros(7, 5)).shape == (7, 3)


def test_same_generator_seed_gives_the_same_network():
    a = bplib.MLP([4, 6, 2], generator=torch.Generator().manual_seed(7))
    b = bplib.MLP([4, 6, 2], generator=torch.Generator().manual_seed(7))
    c = bplib.MLP([4, 6, 2], generator=torch.Generator().manual_seed(8))
    assert all(torch.equal(p, q) for p, q in zip(a.parameters, b.parameters))
    assert not torch.equal(a.weights[0], c.weights[0])


def test_loss_is_a_pure_function_of_params(generator):
    net = bplib.MLP([3, 4, 2], "sigmoid", "mse", dtype=torch.float64, generator=generator)
    x, y = make_batch(net, 5, generator)
    value, _ = net.loss_and_grads(x, y)
    assert_close(net.loss(x, y), value, claim="loss() at the network's parameters equals loss_and_grads's loss")
    assert_close(net.loss(x, y), 0.5 * ((net.forward(x) - y) ** 2).sum() / 5, claim="loss of forward(x)")
    shifted = net.parameters.like(p + 0.1 for p in net.parameters)
    before = [p.clone() for p in net.parameters]
    weights, biases = shifted.weights, shifted.biases
    expected = mlp_loss(weights, biases, x, y, "sigmoid", "mse")
    assert_close(net.loss(x, y, params=shifted), expected, claim="loss() at other parameters")
    assert all(torch.equal(p, q) for p, q in zip(before, net.parameters)), "the network's parameters are untouched"


def test_loss_and_grads_leaves_inputs_and_parameters_untouched(generator):
    for loss in ("mse", "softmax_ce"):
        net = bplib.MLP([4, 6, 3], "relu", loss, dtype=torch.float64, generator=generator)
        x, y = make_batch(net, 5, generator)
        copies = [t.clone() for t in (x, y, *net.parameters)]
        net.loss_and_grads(x, y)
        assert all(torch.equal(a, b) for a, b in zip(copies, (x, y, *net.parameters)))


def test_gradients_go_straight_into_an_optimiser_and_learn_xor():
    g = torch.Generator().manual_seed(0)
    net = bplib.MLP([2, 8, 2], "tanh", "softmax_ce", dtype=torch.float64, generator=g)
    x = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]], dtype=torch.float64)
    y = torch.tensor([0, 1, 1, 0])
    opt = bplib.optim.SGD(net.parameters, lr=0.5)
    first = net.loss(x, y)
    for _ in range(500):
        loss, grads = net.loss_and_grads(x, y)
        opt.step(grads)
    assert loss < 0.05 * first
    assert torch.equal(net.forward(x).argmax(dim=1), y)


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh"])
def test_forward_can_be_recorded_by_autograd(activation, generator):
    # the chapters differentiate bplib's forward pass with autograd to compare routes
    net = bplib.MLP([3, 5, 4, 2], activation, "mse", dtype=torch.float64, generator=generator)
    for b in net.biases:
        b.normal_(generator=generator)
    x, y = make_batch(net, 6, generator)
    _, grads = net.loss_and_grads(x, y)
    net.weights = [W.requires_grad_() for W in net.weights]
    loss = 0.5 * ((net.forward(x) - y) ** 2).sum() / 6
    for W, dW in zip(net.weights, grads.weights):
        assert_close(dW, torch.autograd.grad(loss, W, retain_graph=True)[0], claim="autograd through bplib's forward")


def test_bad_labels_are_reported_by_the_call_that_sees_them_on_the_cpu(generator):
    net = bplib.MLP([3, 4, 2], dtype=torch.float64, generator=generator)
    x = torch.zeros(3, 3, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"MLP.loss_and_grads: argument 'y' holds class indices outside \[0, 1\]"):
        net.loss_and_grads(x, torch.tensor([0, 2, 1]))
    net.loss_and_grads(x, torch.tensor([0, 1, 1]))  # nothing left pending


@pytest.mark.parametrize("parameterization", ["standard", "ntk"])
def test_a_generator_that_is_not_one_is_reported_by_the_constructor(parameterization):
    with pytest.raises(TypeError, match=r"^MLP: argument 'generator' must be a torch.Generator or None, got int"):
        bplib.MLP([3, 2], generator=0, parameterization=parameterization)


@pytest.mark.parametrize("route", ["loss", "reference_loss_and_grads", "loss_and_grads"])
@pytest.mark.parametrize(
    "loss, x_rows, y, error, pattern",
    [
        ("softmax_ce", 3, torch.tensor([0, 2, 1]), ValueError, r"argument 'y' holds class indices outside \[0, 1\]"),
        ("softmax_ce", 3, torch.tensor([0, 1]), ValueError, r"argument 'y' must have shape \(3,\) \(one class index per row"),
        ("softmax_ce", 3, torch.full((3, 2), 0.3, dtype=torch.float64), ValueError, r"argument 'y' given as probability rows"),
        ("softmax_ce", 3, torch.tensor([0, 1, 1], dtype=torch.int32), TypeError, r"argument 'y' must be int64 class indices"),
        ("mse", 3, torch.zeros(3, 2), TypeError, r"argument 'y' has dtype torch.float32 but 'y_hat' has dtype torch.float64"),
        ("mse", 3, torch.zeros(3, 3, dtype=torch.float64), ValueError, r"argument 'y' must have shape \(3, 2\)"),
        ("mse", 0, torch.zeros(0, 2, dtype=torch.float64), ValueError, r"argument 'x' must hold at least one row, got shape \(0, 3\)"),
    ],
)
def test_bad_targets_are_reported_under_the_method_called(route, loss, x_rows, y, error, pattern, generator):
    # every route names itself, not the loss function of bplib.functional that the reference chains
    net = bplib.MLP([3, 4, 2], "tanh", loss, dtype=torch.float64, generator=generator)
    with pytest.raises(error, match=rf"^MLP.{route}: {pattern}"):
        getattr(net, route)(torch.zeros(x_rows, 3, dtype=torch.float64), y)


def test_meta_device_runs_shapes_only():
    net = bplib.MLP([784, 32, 10], "relu", "mse", device="meta")
    loss, grads = net.loss_and_grads(torch.empty(16, 784, device="meta"), torch.empty(16, 10, device="meta"))
    assert loss.device.type == "meta" and [tuple(g.shape) for g in grads] == [tuple(p.shape) for p in net.parameters]
