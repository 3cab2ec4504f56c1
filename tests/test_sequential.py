"""bplib.Sequential and bplib.layers against torch.nn.Sequential (autograd), bplib.MLP and finite differences."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import bplib
from bplib import optim
from bplib.gradcheck import CORRECT_BELOW, gradient_check
from bplib.layers import Activation, BatchNorm, Dropout, LayerNorm, Linear
from bplib.testing import assert_close

F64 = torch.float64
TORCH_ACTIVATIONS = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}


class DocumentedDropout(nn.Module):
    """Inverted dropout whose mask is drawn as bplib.functional.dropout documents it, from a given generator."""

    def __init__(self, p, generator):
        super().__init__()
        self.p, self.generator = p, generator

    def forward(self, x):
        if not self.training or self.p == 0:
            return x
        keep = torch.rand(x.shape, generator=self.generator, dtype=torch.float32) >= self.p
        return x * keep.to(x.dtype) / (1 - self.p)


def torch_twin(net, generator=None):
    """A torch.nn.Sequential that computes what ``net`` does, with copies of its parameters and buffers.

    Its dropout layers draw their masks, in turn, from ``generator`` as bplib's documented draw does.
    """
    modules = []
    for layer in net.layers:
        if isinstance(layer, Linear):
            module = nn.Linear(layer.in_features, layer.out_features, dtype=F64)
            module.weight.data.copy_(layer.W)
            module.bias.data.copy_(layer.b)
        elif isinstance(layer, Activation):
            module = TORCH_ACTIVATIONS[layer.name]()
        elif isinstance(layer, Dropout):
            module = DocumentedDropout(layer.p, generator)
        elif isinstance(layer, BatchNorm):
            module = nn.BatchNorm1d(layer.in_features, eps=layer.eps, momentum=layer.momentum, dtype=F64)
            for ours, theirs in ((layer.gamma, module.weight), (layer.beta, module.bias),
                                 (layer.running_mean, module.running_mean), (layer.running_var, module.running_var)):
                theirs.data.copy_(ours)  # fmt: skip
        else:
            module = nn.LayerNorm(layer.in_features, eps=layer.eps, dtype=F64)
            module.weight.data.copy_(layer.gamma)
            module.bias.data.copy_(layer.beta)
        modules.append(module)
    twin = nn.Sequential(*modules)
    return twin.train(net.mode == "train")


def torch_loss(twin, x, y, loss):
    out = twin(x)
    if loss == "mse":
        return 0.5 * ((out - y) ** 2).sum() / x.shape[0]
    return F.cross_entropy(out, y)


def batch(n_in, n_out, m, loss, generator):
    x = 2 * torch.randn(m, n_in, generator=generator, dtype=F64) + 0.5
    if loss == "softmax_ce":
        return x, torch.randint(0, n_out, (m,), generator=generator)
    return x, torch.randn(m, n_out, generator=generator, dtype=F64)


def shuffled(params, generator):
    """Parameters moved off their starting values (gamma = 1, beta = 0, b = 0 would hide transposes and scales)."""
    for p in params:
        p.add_(0.3 * torch.randn(p.shape, generator=generator, dtype=p.dtype))


ARCHITECTURES = {
    "linear-tanh": lambda g: [Linear(5, 7, init="xavier", dtype=F64, generator=g), Activation("tanh"),
                              Linear(7, 3, init="xavier", dtype=F64, generator=g)],
    "batch norm": lambda g: [Linear(5, 8, dtype=F64, generator=g), BatchNorm(8, dtype=F64), Activation("relu"),
                             Linear(8, 3, dtype=F64, generator=g)],
    "layer norm": lambda g: [Linear(5, 8, dtype=F64, generator=g), LayerNorm(8, dtype=F64), Activation("sigmoid"),
                             Linear(8, 3, dtype=F64, generator=g)],
    "dropout": lambda g: [Linear(5, 8, dtype=F64, generator=g), Activation("relu"), Dropout(0.4),
                          Linear(8, 6, dtype=F64, generator=g), Activation("tanh"), Dropout(0.2),
                          Linear(6, 3, dtype=F64, generator=g)],
    "all": lambda g: [Linear(5, 8, dtype=F64, generator=g), BatchNorm(8, momentum=0.3, eps=1e-3, dtype=F64),
                      Activation("relu"), Dropout(0.3), Linear(8, 6, dtype=F64, generator=g),
                      LayerNorm(6, eps=1e-4, dtype=F64), Activation("tanh"), Linear(6, 3, dtype=F64, generator=g)],
}  # fmt: skip


def make(name, loss, generator):
    net = bplib.Sequential(ARCHITECTURES[name](generator), loss)
    shuffled(net.parameters, generator)
    return net


# ----------------------------------------------------------------------------- against torch.nn.Sequential


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
@pytest.mark.parametrize("loss", ["softmax_ce", "mse"])
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_loss_and_grads_match_autograd_on_torch_nn_sequential(name, loss, mode, generator):
    net = make(name, loss, generator)
    for layer in net.layers:  # running statistics away from (0, 1), so that eval mode is not the identity
        if isinstance(layer, BatchNorm):
            layer.running_mean.normal_(generator=generator)
            layer.running_var.uniform_(0.5, 2.0, generator=generator)
    net.mode = mode
    twin = torch_twin(net, torch.Generator().manual_seed(21))
    x, y = batch(5, 3, 6, loss, generator)
    value, grads = net.loss_and_grads(x, y, generator=torch.Generator().manual_seed(21))
    expected = torch_loss(twin, x, y, loss)
    reference = torch.autograd.grad(expected, list(twin.parameters()))
    assert isinstance(grads, bplib.Params) and grads.names == net.parameters.names
    assert_close(value, expected.detach(), claim=f"Sequential loss ({name}, {loss}, {mode}) equals torch.nn's")
    for param_name, ours, theirs in zip(grads.names, grads, reference):
        assert_close(ours, theirs, claim=f"gradient of {param_name} ({name}, {loss}, {mode}) equals autograd")


@pytest.mark.parametrize("name", ["batch norm", "all"])
def test_training_steps_follow_torch_and_running_statistics_agree(name, generator):
    """Five SGD steps, each with new dropout masks, against torch.nn + torch.optim; then eval mode."""
    net = make(name, "softmax_ce", generator)
    net.generator = torch.Generator().manual_seed(4)  # the network's own: the steps pass none
    twin = torch_twin(net, torch.Generator().manual_seed(4))
    ours_opt = optim.SGD(net.parameters, lr=0.1, momentum=0.9)
    torch_opt = torch.optim.SGD(twin.parameters(), lr=0.1, momentum=0.9, foreach=False)
    norms = [(layer, module) for layer, module in zip(net.layers, twin) if isinstance(layer, BatchNorm)]
    for step in range(5):
        x, y = batch(5, 3, 8, "softmax_ce", generator)
        value, grads = net.loss_and_grads(x, y)
        ours_opt.step(grads)
        torch_opt.zero_grad()
        expected = torch_loss(twin, x, y, "softmax_ce")
        expected.backward()
        torch_opt.step()
        assert_close(value, expected.detach(), claim=f"loss at step {step + 1} ({name}) equals torch.nn's")
        for param_name, ours, theirs in zip(net.parameters.names, net.parameters, twin.parameters()):
            assert_close(ours, theirs.detach(), claim=f"{param_name} after step {step + 1} ({name}) equals torch's")
        for layer, module in norms:
            assert_close(layer.running_mean, module.running_mean, claim=f"running mean after step {step + 1} equals torch's")
            assert_close(layer.running_var, module.running_var, claim=f"running var after step {step + 1} equals torch's")
    net.eval()
    twin.eval()
    x, y = batch(5, 3, 4, "softmax_ce", generator)
    value, grads = net.loss_and_grads(x, y)
    expected = torch_loss(twin, x, y, "softmax_ce")
    assert_close(value, expected.detach(), claim=f"eval-mode loss after training ({name}) equals torch.nn's")
    for param_name, ours, theirs in zip(grads.names, grads, torch.autograd.grad(expected, list(twin.parameters()))):
        assert_close(ours, theirs, claim=f"eval-mode gradient of {param_name} ({name}) equals autograd")


# ----------------------------------------------------------------------------- against bplib.MLP


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh"])
@pytest.mark.parametrize("loss", ["softmax_ce", "mse"])
def test_linear_and_activation_layers_equal_the_mlp(activation, loss):
    sizes = [4, 6, 5, 3]
    mlp = bplib.MLP(sizes, activation, loss, dtype=F64, generator=torch.Generator().manual_seed(8))
    g = torch.Generator().manual_seed(8)
    init = "he" if activation == "relu" else "xavier"  # the MLP's rule
    layers = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        layers += [Linear(n_in, n_out, init=init, dtype=F64, generator=g), Activation(activation)]
    net = bplib.Sequential(layers[:-1], loss)
    for W, layer in zip(mlp.weights, net.layers[::2]):
        assert torch.equal(W, layer.W), "drawn from the same generator in the same order, the weights are the same"
    data = torch.Generator().manual_seed(2)
    for b_mlp, layer in zip(mlp.biases, net.layers[::2]):
        b_mlp.normal_(generator=data)  # non-zero biases, the same in both networks
        layer.b.copy_(b_mlp)
    x, y = batch(4, 3, 7, loss, data)
    value, grads = net.loss_and_grads(x, y)
    ref_value, ref_grads = mlp.reference_loss_and_grads(x, y)
    assert grads.names == ("0.W", "0.b", "2.W", "2.b", "4.W", "4.b")
    assert_close(value, ref_value, claim="Sequential loss equals bplib.MLP's", against="second route")
    for ours, theirs, name in zip(grads, ref_grads, ref_grads.names):
        assert_close(ours, theirs, claim=f"Sequential gradient equals bplib.MLP's {name}", against="second route")
    assert_close(net.forward(x), mlp.forward(x), claim="Sequential forward equals bplib.MLP's", against="second route")


# ----------------------------------------------------------------------------- the pure form and gradient checks


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_gradient_check_in_eval_mode(name, generator):
    net = make(name, "softmax_ce", generator).eval()
    x, y = batch(5, 3, 6, "softmax_ce", generator)
    _, grads = net.loss_and_grads(x, y)
    theta, unflatten = bplib.flatten(net.parameters)
    error = gradient_check(lambda t: net.loss(x, y, params=unflatten(t)), theta, bplib.flatten(grads)[0])
    assert error < CORRECT_BELOW, f"{name}, eval mode: relative error {error:.2e}"


@pytest.mark.parametrize("name", ["dropout", "all"])
def test_gradient_check_in_train_mode_with_a_fixed_mask(name, generator):
    net = make(name, "mse", generator)
    x, y = batch(5, 3, 6, "mse", generator)
    _, grads = net.loss_and_grads(x, y, generator=torch.Generator().manual_seed(13))
    theta, unflatten = bplib.flatten(net.parameters)

    def loss_with_the_same_masks(t):
        return net.loss(x, y, params=unflatten(t), generator=torch.Generator().manual_seed(13))

    error = gradient_check(loss_with_the_same_masks, theta, bplib.flatten(grads)[0])
    assert error < CORRECT_BELOW, f"{name}, train mode, fixed masks: relative error {error:.2e}"
    # with another mask the gradient is another one: the check is not blind to the mask
    other = gradient_check(lambda t: net.loss(x, y, params=unflatten(t), generator=torch.Generator().manual_seed(14)),
                           theta, bplib.flatten(grads)[0])  # fmt: skip
    assert other > 1e-3


def test_pure_calls_update_nothing_and_training_steps_update_the_statistics(generator):
    net = make("all", "softmax_ce", generator)
    norm = net.layers[1]
    x, y = batch(5, 3, 6, "softmax_ce", generator)
    mask_source = torch.Generator().manual_seed(3)
    before = [t.clone() for t in norm.buffers.values()]
    net.loss(x, y, generator=mask_source)
    net.forward(x, generator=mask_source)
    net.forward_with_caches(x, params=net.parameters, generator=mask_source)
    for old, new in zip(before, norm.buffers.values()):
        assert torch.equal(old, new), "a pure call changed batch norm's running statistics"
    net.loss_and_grads(x, y, generator=mask_source)
    assert not torch.equal(before[0], norm.running_mean) and not torch.equal(before[1], norm.running_var)
    updated = [t.clone() for t in norm.buffers.values()]
    net.eval().loss_and_grads(x, y)
    for old, new in zip(updated, norm.buffers.values()):
        assert torch.equal(old, new), "eval mode changed batch norm's running statistics"


def test_the_masks_come_from_the_call_or_the_network(generator):
    net = make("dropout", "mse", generator)
    x, y = batch(5, 3, 6, "mse", generator)
    own = torch.Generator().manual_seed(5)
    net.generator = own
    first = net.loss(x, y)
    assert not torch.equal(own.get_state(), torch.Generator().manual_seed(5).get_state()), "drew from its own"
    again = net.loss(x, y, generator=torch.Generator().manual_seed(5))
    assert torch.equal(first, again), "a generator seeded alike gives the same masks"
    state = own.get_state()
    net.eval()
    assert torch.equal(net.loss(x, y), net.loss(x, y)) and torch.equal(own.get_state(), state), "eval mode draws nothing"
    out, caches = net.forward_with_caches(x)
    assert out.shape == (6, 3) and caches[2][0] is None, "eval-mode dropout keeps no mask"


def test_modes_are_set_for_every_layer_and_change_what_the_layers_do(generator):
    net = make("all", "softmax_ce", generator)
    assert net.mode == "train" and all(layer.mode == "train" for layer in net.layers)
    assert net.eval() is net and all(layer.mode == "eval" for layer in net.layers)
    x = torch.randn(4, 8, generator=generator, dtype=F64)
    dropout, norm = net.layers[3], net.layers[1]
    assert dropout.forward(x)[0] is x, "eval-mode dropout is the identity"
    out, _ = norm.forward(x)
    expected = (x - norm.running_mean) / torch.sqrt(norm.running_var + norm.eps) * norm.gamma + norm.beta
    assert_close(out, expected, claim="eval-mode batch norm uses the running statistics", against="closed form")
    net.train()
    assert all(layer.mode == "train" for layer in net.layers)


def test_parameters_are_the_layers_tensors_and_an_optimiser_trains_them(generator):
    net = make("all", "softmax_ce", generator)
    params = net.parameters
    assert params.names == ("0.W", "0.b", "1.gamma", "1.beta", "4.W", "4.b", "5.gamma", "5.beta", "7.W", "7.b")
    assert params[2] is net.layers[1].gamma and params[8] is net.layers[7].W
    x, y = batch(5, 3, 16, "softmax_ce", generator)
    opt = optim.Adam(net.parameters, lr=0.01)
    masks = torch.Generator().manual_seed(0)
    start = net.eval().loss(x, y)
    net.train()
    for _ in range(30):
        opt.step(net.loss_and_grads(x, y, generator=masks)[1])
    assert net.eval().loss(x, y) < start


def test_backward_of_a_batch_norm_layer_takes_the_batch_statistics_into_account(generator):
    # gradient of a sum of squared outputs: through the batch statistics it is not (dout * gamma / sigma)
    layer = BatchNorm(3, dtype=F64)
    x = torch.randn(5, 3, generator=generator, dtype=F64)
    out, cache = layer.forward(x, params=(layer.gamma + 0.5, layer.beta))
    dx, (dgamma, dbeta) = layer.backward(2 * out, cache)
    xx = x.clone().requires_grad_()
    g = (layer.gamma + 0.5).requires_grad_()
    b = layer.beta.clone().requires_grad_()
    loss = (F.batch_norm(xx, None, None, g, b, training=True, eps=layer.eps) ** 2).sum()
    for ours, theirs, name in zip((dx, dgamma, dbeta), torch.autograd.grad(loss, (xx, g, b)), ("dx", "dgamma", "dbeta")):
        assert_close(ours, theirs, claim=f"BatchNorm layer {name} equals autograd", against="torch.autograd")
