"""bplib's pairs as torch.autograd.Functions: gradcheck in float64, agreement with torch's own operations,
needs_input_grad, saved tensors, first-order only, dropout's generator, and modules trained by torch.optim
step for step like their pure-torch twins."""

import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

import bplib
from bplib import torch_bridge as tb
from bplib.testing import assert_close

F64 = torch.float64


def randn(generator, *shape, scale=1.0):
    return (scale * torch.randn(shape, generator=generator, dtype=F64)).requires_grad_()


def seeded(seed):
    return torch.Generator().manual_seed(seed)


def gradchecked(f, *inputs):
    assert torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-8, rtol=1e-6)


# ----------------------------------------------------------------------------- each Function against torch


def bridge_and_torch_cases(g):
    """(name, bridged function, torch function, inputs): the same map computed by bplib and by torch."""
    x, W, b = randn(g, 5, 4), randn(g, 3, 4), randn(g, 3)
    labels = torch.randint(3, (5,), generator=g)
    probs = torch.softmax(torch.randn(5, 3, generator=g, dtype=F64), dim=1)
    target = torch.randn(5, 3, generator=g, dtype=F64)
    gamma, beta = randn(g, 4).detach().add(1.5).requires_grad_(), randn(g, 4)
    q, k, v = randn(g, 2, 3, 4), randn(g, 2, 5, 4), randn(g, 2, 5, 2)
    x3 = randn(g, 2, 3, 4)
    return [
        ("linear", tb.linear, F.linear, (x, W, b)),
        *[(name, lambda z, n=name: tb.activation(z, n), fn, (x,)) for name, fn in
          (("relu", torch.relu), ("sigmoid", torch.sigmoid), ("tanh", torch.tanh))],
        ("softmax dim 0", lambda z: tb.softmax(z, 0), lambda z: torch.softmax(z, 0), (x,)),
        ("softmax dim -1 of 3-D", lambda z: tb.softmax(z), lambda z: torch.softmax(z, -1), (x3,)),
        ("cross-entropy, indices", lambda z: tb.softmax_cross_entropy(z, labels), lambda z: F.cross_entropy(z, labels),
         (randn(g, 5, 3),)),
        ("cross-entropy, probabilities", lambda z: tb.softmax_cross_entropy(z, probs), lambda z: F.cross_entropy(z, probs),
         (randn(g, 5, 3),)),
        ("mse", lambda z: tb.mse(z, target), lambda z: 0.5 * ((z - target) ** 2).sum() / z.shape[0], (randn(g, 5, 3),)),
        ("dropout, eval", lambda z: tb.dropout(z, 0.3, train=False), lambda z: F.dropout(z, 0.3, training=False), (x,)),
        ("batch norm, train", lambda z, c, d: tb.batch_norm(z, c, d),
         lambda z, c, d: F.batch_norm(z, None, None, c, d, training=True), (x, gamma, beta)),
        ("batch norm, eval", lambda z, c, d: tb.batch_norm(z, c, d, running_mean=torch.full((4,), 0.2, dtype=F64),
                                                          running_var=torch.full((4,), 1.7, dtype=F64), train=False),
         lambda z, c, d: F.batch_norm(z, torch.full((4,), 0.2, dtype=F64), torch.full((4,), 1.7, dtype=F64), c, d,
                                      training=False), (x, gamma, beta)),
        ("layer norm", lambda z, c, d: tb.layer_norm(z, c, d), lambda z, c, d: F.layer_norm(z, (4,), c, d), (x3, gamma, beta)),
        ("attention", lambda a, c, d: tb.attention(a, c, d), F.scaled_dot_product_attention, (q, k, v)),
        ("attention, causal", lambda a, c, d: tb.attention(a, c, d, causal=True, scale=0.7),
         lambda a, c, d: F.scaled_dot_product_attention(a, c, d, is_causal=True, scale=0.7), (q, k, v)),
    ]


CASE_NAMES = [case[0] for case in bridge_and_torch_cases(seeded(0))]


@pytest.mark.parametrize("index", range(len(CASE_NAMES)), ids=CASE_NAMES)
def test_each_function_passes_gradcheck(index):
    name, bridged, _, inputs = bridge_and_torch_cases(seeded(index))[index]
    gradchecked(bridged, *inputs)


@pytest.mark.parametrize("index", range(len(CASE_NAMES)), ids=CASE_NAMES)
def test_each_function_equals_torch_in_value_and_gradient(index):
    g = seeded(100 + index)
    name, bridged, reference, inputs = bridge_and_torch_cases(g)[index]
    out = bridged(*inputs)
    expected = reference(*inputs)
    upstream = torch.randn(out.shape, generator=g, dtype=F64)
    grads = torch.autograd.grad(out, inputs, upstream)
    expected_grads = torch.autograd.grad(expected, inputs, upstream)
    assert_close(out, expected, claim=f"{name}: the bridged forward equals torch's", against="torch")
    for mine, theirs in zip(grads, expected_grads):
        assert_close(mine, theirs, claim=f"{name}: the bridged backward equals torch.autograd's", against="torch.autograd")


def test_dropout_in_training_passes_gradcheck_with_its_generator_reset_on_every_call():
    x = randn(seeded(1), 6, 5)
    gradchecked(lambda z: tb.dropout(z, 0.4, generator=seeded(7)), x)


def test_dropout_backward_uses_the_saved_mask_and_draws_nothing():
    x = randn(seeded(2), 50, 8)
    generator = seeded(3)
    out = tb.dropout(x, 0.5, generator=generator)
    state_after_forward = generator.get_state()
    (dx,) = torch.autograd.grad(out, x, torch.ones_like(out))
    assert torch.equal(generator.get_state(), state_after_forward), "backward draws no random number"
    keep = torch.rand((50, 8), generator=seeded(3), dtype=torch.float32) >= 0.5  # the documented draw
    assert torch.equal(dx, keep.to(F64) / 0.5), "the gradient is the mask xi / (1 - p)"
    assert torch.equal(out, x.detach() * dx)
    again = tb.dropout(x, 0.5, generator=generator)
    assert not torch.equal(again, out), "a second forward pass continues the generator's stream: a new mask"


def test_batch_norm_updates_running_statistics_like_torch():
    g = seeded(4)
    x, gamma, beta = randn(g, 6, 3), randn(g, 3), randn(g, 3)
    ours = [torch.zeros(3, dtype=F64), torch.ones(3, dtype=F64)]
    theirs = [torch.zeros(3, dtype=F64), torch.ones(3, dtype=F64)]
    for _ in range(3):
        tb.batch_norm(x, gamma, beta, running_mean=ours[0], running_var=ours[1], momentum=0.2).sum().backward()
        F.batch_norm(x, theirs[0], theirs[1], gamma, beta, training=True, momentum=0.2)
    for mine, expected in zip(ours, theirs):
        assert_close(mine, expected, claim="running statistics through the bridge", against="torch")


# ----------------------------------------------------------------------------- needs_input_grad and saved tensors


def test_linear_skips_the_input_gradient_when_the_input_needs_none():
    g = seeded(5)
    x, W, b = randn(g, 8, 6).detach(), randn(g, 4, 6), randn(g, 4)
    z = tb.linear(x, W, b)
    with FlopCounterMode(display=False) as counter:
        dW, db = torch.autograd.grad(z, (W, b), torch.ones_like(z))
    assert counter.get_total_flops() == 2 * 8 * 4 * 6, "one matrix product, dW = dz^T x; none for dx"
    x.requires_grad_()
    z = tb.linear(x, W, b)
    with FlopCounterMode(display=False) as counter:
        torch.autograd.grad(z, (x, W, b), torch.ones_like(z))
    assert counter.get_total_flops() == 2 * 2 * 8 * 4 * 6, "two matrix products with dx"


def test_inputs_that_need_no_gradient_get_none():
    g = seeded(6)
    x, gamma, beta = randn(g, 5, 3), randn(g, 3).detach(), randn(g, 3)
    tb.batch_norm(x, gamma, beta).pow(2).sum().backward()
    assert gamma.grad is None and x.grad is not None and beta.grad is not None
    q, k, v = randn(g, 3, 2), randn(g, 4, 2).detach(), randn(g, 4, 2)
    tb.attention(q, k, v).sum().backward()
    assert k.grad is None and q.grad is not None and v.grad is not None


def test_the_cache_is_saved_for_backward_so_in_place_changes_are_caught():
    g = seeded(8)
    x, W, b = randn(g, 3, 2), randn(g, 4, 2), randn(g, 4)
    z = tb.linear(x, W, b)
    with torch.no_grad():
        W.mul_(2.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        z.sum().backward()


@pytest.mark.parametrize("index", [0, 2, 10, 13], ids=[CASE_NAMES[i] for i in (0, 2, 10, 13)])
def test_double_backward_is_refused(index):
    _, bridged, _, inputs = bridge_and_torch_cases(seeded(index))[index]
    with pytest.raises(NotImplementedError, match="Backward: bplib's backward passes are first-order only"):
        torch.autograd.gradgradcheck(bridged, inputs)


def test_a_gradient_penalty_through_a_bplib_layer_is_refused_rather_than_wrong():
    """With upstream gradients that need no gradient, once_differentiable alone would return a constant."""
    x = randn(seeded(9), 4, 3)
    y = tb.activation(x, "tanh").sum()
    with pytest.raises(NotImplementedError, match="create_graph=True"):
        torch.autograd.grad(y, x, create_graph=True)


# ----------------------------------------------------------------------------- modules and torch.optim


def test_bplib_mlp_starts_where_bplib_MLP_starts():
    for activation in ("relu", "tanh"):
        module = tb.BplibMLP([4, 6, 3], activation, generator=seeded(10), dtype=F64)
        net = bplib.MLP([4, 6, 3], activation, dtype=F64, generator=seeded(10))
        for layer, W, b in zip(module.layers, net.weights, net.biases):
            assert torch.equal(layer.weight.detach(), W) and torch.equal(layer.bias.detach(), b)


def torch_twin(module, activation):
    """nn.Sequential of nn.Linear and the torch activation, with the bridged module's parameters."""
    act = {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh, "sigmoid": torch.nn.Sigmoid}[activation]
    layers = []
    for i, layer in enumerate(module.layers):
        linear = torch.nn.Linear(layer.weight.shape[1], layer.weight.shape[0], dtype=F64)
        with torch.no_grad():
            linear.weight.copy_(layer.weight)
            linear.bias.copy_(layer.bias)
        layers += [linear] if i == len(module.layers) - 1 else [linear, act()]
    return torch.nn.Sequential(*layers)


@pytest.mark.parametrize(
    "activation, loss, optimiser",
    [
        ("tanh", "softmax_ce", lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9)),
        ("relu", "softmax_ce", lambda p: torch.optim.Adam(p, lr=0.01)),
        ("sigmoid", "mse", lambda p: torch.optim.AdamW(p, lr=0.02, weight_decay=0.1)),
    ],
)
def test_training_the_bridged_mlp_equals_training_its_torch_twin_step_for_step(activation, loss, optimiser):
    g = seeded(11)
    module = tb.BplibMLP([4, 8, 8, 3], activation, generator=g, dtype=F64)
    twin = torch_twin(module, activation)
    x = torch.randn(16, 4, generator=g, dtype=F64)
    labels = torch.randint(3, (16,), generator=g)
    targets = torch.randn(16, 3, generator=g, dtype=F64)
    ours, theirs = optimiser(module.parameters()), optimiser(twin.parameters())
    for step in range(15):
        for net, opt, bridged in ((module, ours, True), (twin, theirs, False)):
            opt.zero_grad()
            out = net(x)
            if loss == "softmax_ce":
                value = tb.softmax_cross_entropy(out, labels) if bridged else F.cross_entropy(out, labels)
            else:
                value = tb.mse(out, targets) if bridged else 0.5 * ((out - targets) ** 2).sum() / 16
            value.backward()
            opt.step()
        for p, q in zip(module.parameters(), twin.parameters()):
            assert_close(p.detach(), q.detach(), claim=f"step {step}: bridged and pure-torch parameters", against="torch.optim")


def test_a_bplib_linear_layer_mixes_with_torch_layers():
    g = seeded(12)
    model = torch.nn.Sequential(tb.BplibLinear(3, 5, generator=g, init="he", dtype=F64), torch.nn.GELU(),
                                torch.nn.Linear(5, 2, dtype=F64))
    x = torch.randn(7, 3, generator=g, dtype=F64)
    model(x).square().sum().backward()
    bridged = model[0]
    W, b = bridged.weight.detach().clone().requires_grad_(), bridged.bias.detach().clone().requires_grad_()
    reference = model[2](F.gelu(F.linear(x, W, b))).square().sum()
    dW, db = torch.autograd.grad(reference, (W, b))
    assert_close(bridged.weight.grad, dW, claim="a BplibLinear inside nn.Sequential: weight gradient", against="torch.autograd")
    assert_close(bridged.bias.grad, db, claim="a BplibLinear inside nn.Sequential: bias gradient", against="torch.autograd")
    assert [name for name, _ in bridged.named_parameters()] == ["weight", "bias"]


# ----------------------------------------------------------------------------- on a GPU


@pytest.mark.cuda
@pytest.mark.parametrize("index", range(len(CASE_NAMES)), ids=CASE_NAMES)
def test_each_function_on_a_gpu_equals_torch(index):
    g = seeded(200 + index)
    name, bridged, reference, inputs = bridge_and_torch_cases(g)[index]
    if name == "batch norm, eval":
        pytest.skip("its running statistics are made on the CPU inside the case")
    inputs = [x.detach().cuda().requires_grad_() for x in inputs]
    out = bridged(*inputs)
    upstream = torch.randn(out.shape, generator=g, dtype=F64).cuda()
    grads = torch.autograd.grad(out, inputs, upstream)
    expected_grads = torch.autograd.grad(reference(*inputs), inputs, upstream)
    assert out.device.type == "cuda"
    for mine, theirs in zip(grads, expected_grads):
        assert_close(mine, theirs, claim=f"{name} on a GPU: the bridged backward", against="torch.autograd")


@pytest.mark.cuda
def test_training_the_bridged_mlp_on_a_gpu_equals_its_torch_twin():
    g = seeded(13)
    module = tb.BplibMLP([4, 8, 3], "tanh", generator=g, dtype=F64)
    twin = torch_twin(module, "tanh").cuda()
    module = module.cuda()
    x = torch.randn(16, 4, generator=g, dtype=F64).cuda()
    labels = torch.randint(3, (16,), generator=g).cuda()
    ours = torch.optim.SGD(module.parameters(), lr=0.1, momentum=0.9)
    theirs = torch.optim.SGD(twin.parameters(), lr=0.1, momentum=0.9)
    for _ in range(5):
        for net, opt, loss in ((module, ours, tb.softmax_cross_entropy), (twin, theirs, F.cross_entropy)):
            opt.zero_grad()
            loss(net(x), labels).backward()
            opt.step()
    for p, q in zip(module.parameters(), twin.parameters()):
        assert_close(p.detach(), q.detach(), claim="bridged and pure-torch training on a GPU", against="torch.optim")
