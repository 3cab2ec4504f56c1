"""bplib.monitor: the statistics read from bplib's caches == those torch's forward hooks, tensor hooks and
optimiser hooks record on the same network; rules fire exactly when a statistic stays above its threshold;
every error path is reported."""

import pytest
import torch

import bplib
from bplib.distributed.ddp import torch_sequential
from bplib.monitor import STATISTICS, Rule, StepStatistics, activation_statistics, monitored_step, step_statistics
from bplib.testing import assert_close

from .test_mlp import make_batch

F64 = torch.float64


def hooked(model, optimizer):
    """Statistics of the latest step as torch's hooks record them, with plain torch operations."""
    record = {"activations": {}, "grad_norm": {}, "before": [], "update_ratio": []}
    relus = [m for m in model if isinstance(m, torch.nn.ReLU)]
    linears = [m for m in model if isinstance(m, torch.nn.Linear)]
    for l, relu in enumerate(relus):
        def forward_hook(module, inputs, output, l=l):
            a = output.detach()
            record["activations"][l] = (a.mean(), a.std(correction=0), (a == 0).all(dim=0).double().mean())
        relu.register_forward_hook(forward_hook)
    for l, linear in enumerate(linears):
        linear.weight.register_hook(lambda g, l=l: record["grad_norm"].__setitem__(l, g.norm()))

    def before_step(opt, args, kwargs):
        record["before"] = [m.weight.detach().clone() for m in linears]

    def after_step(opt, args, kwargs):
        record["update_ratio"] = [(m.weight.detach() - w).norm() / w.norm() for m, w in zip(linears, record["before"])]

    optimizer.register_step_pre_hook(before_step)
    optimizer.register_step_post_hook(after_step)
    return record


def test_caches_and_torch_hooks_record_the_same_statistics(generator):
    net = bplib.MLP([6, 8, 8, 7, 3], "relu", "softmax_ce", dtype=F64, generator=generator)
    net.biases[1].fill_(-1.0)  # some dead units in layer 2
    model = torch_sequential(net)
    torch_opt = torch.optim.SGD(model.parameters(), lr=0.2)
    record = hooked(model, torch_opt)
    opt = bplib.optim.SGD(net.parameters, lr=0.2)
    for step in range(6):
        x, y = make_batch(net, 16, generator)
        stats = monitored_step(net, opt, x, y)
        torch_opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        torch_opt.step()
        assert_close(torch.tensor(stats.loss, dtype=F64), loss.detach(), claim="loss")
        expected = {
            "grad_norm": torch.stack([record["grad_norm"][l] for l in range(4)]),
            "update_ratio": torch.stack(record["update_ratio"]),
            "activation_mean": torch.stack([record["activations"][l][0] for l in range(3)]),
            "activation_std": torch.stack([record["activations"][l][1] for l in range(3)]),
            "dead_fraction": torch.stack([record["activations"][l][2] for l in range(3)]),
        }
        for name in STATISTICS:
            assert_close(getattr(stats, name), expected[name], claim=f"{name} at step {step} equals torch's hooks")
    assert stats.dead_fraction[1] > 0, "the planted bias kills some units of layer 2"


def test_activation_statistics_of_a_known_matrix():
    a = torch.tensor([[0.0, 1.0, 0.0, 2.0], [0.0, 0.0, 0.0, 3.0], [0.0, 5.0, 0.0, 1.0]], dtype=F64)
    mean, std, dead = activation_statistics(a)
    assert mean.item() == 1.0
    assert_close(std, torch.tensor(a.numpy().std(), dtype=F64), claim="population standard deviation (numpy)")
    assert dead.item() == 0.5, "columns 1 and 3 are 0 on every row"


def test_update_ratio_of_sgd_is_lr_times_gradient_over_weight(generator):
    net = bplib.MLP([3, 4, 2], "tanh", "mse", dtype=F64, generator=generator)
    x, y = make_batch(net, 5, generator)
    weights = [W.clone() for W in net.weights]
    stats = monitored_step(net, bplib.optim.SGD(net.parameters, lr=0.3), x, y)
    expected = torch.stack([0.3 * g / W.norm() for g, W in zip(stats.grad_norm, weights)])
    assert_close(stats.update_ratio, expected, claim="SGD's update ratio is lr |g| / |W|")


def test_scalars_name_every_layer(generator):
    net = bplib.MLP([3, 4, 4, 2], "relu", dtype=F64, generator=generator)
    stats = monitored_step(net, bplib.optim.SGD(net.parameters, lr=0.1), *make_batch(net, 5, generator))
    tags = stats.scalars()
    assert list(tags)[:4] == ["loss", "grad_norm/layer1", "grad_norm/layer2", "grad_norm/layer3"]
    assert len(tags) == 1 + 2 * 3 + 3 * 2
    assert tags["dead_fraction/layer2"] == stats.dead_fraction[1].item()
    assert tags["loss"] == stats.loss


def test_a_network_without_hidden_layers(generator):
    net = bplib.MLP([3, 2], dtype=F64, generator=generator)
    stats = monitored_step(net, bplib.optim.SGD(net.parameters, lr=0.1), *make_batch(net, 4, generator))
    assert stats.grad_norm.shape == (1,) and stats.activation_mean.shape == (0,)


def history(statistic, rows):
    """StepStatistics whose `statistic` takes the given per-layer values step by step (the rest zero)."""
    steps = []
    for values in rows:
        fields = {name: torch.zeros(len(values), dtype=F64) for name in STATISTICS}
        fields[statistic] = torch.tensor(values, dtype=F64)
        steps.append(StepStatistics(loss=0.0, **fields))
    return steps


def test_a_rule_fires_after_patience_consecutive_steps():
    rows = [[0.2, 0.0], [0.2, 0.5], [0.05, 0.5], [0.2, 0.5], [0.2, 0.0], [0.2, 0.0]]
    steps = history("update_ratio", rows)
    assert Rule("update_ratio", 0.1, 3).fired(steps) == {1: 5, 2: 3}
    assert Rule("update_ratio", 0.1, 4).fired(steps) == {}
    assert Rule("update_ratio", 0.1, 1).fired(steps) == {1: 0, 2: 1}
    assert Rule("update_ratio", 0.2, 1).fired(steps) == {2: 1}, "above means strictly above"
    assert Rule("dead_fraction", 0.1, 1).fired(steps) == {}
    assert Rule("update_ratio", 0.1, 2).fired([]) == {}


def test_errors(generator):
    net = bplib.MLP([3, 4, 2], dtype=F64, generator=generator)
    x, y = make_batch(net, 5, generator)
    out, caches = net.forward_with_caches(x)
    _, grads = net.reference_loss_and_grads(x, y)
    W = list(net.weights)
    fn = "step_statistics"
    with pytest.raises(TypeError, match=rf"{fn}: argument 'grads' must be an MLPParams, got list"):
        step_statistics(0.0, caches, list(grads), W, W)
    with pytest.raises(ValueError, match=rf"{fn}: argument 'caches' must be the 2 layer caches of MLP.forward_with_caches, got 1"):
        step_statistics(0.0, caches[:1], grads, W, W)
    with pytest.raises(ValueError, match=rf"{fn}: argument 'caches' must be the 2 layer caches of MLP.forward_with_caches, got NoneType"):
        step_statistics(0.0, None, grads, W, W)
    with pytest.raises(TypeError, match=rf"{fn}: argument 'before' must be a sequence of weight tensors, got Tensor"):
        step_statistics(0.0, caches, grads, W[0], W)
    with pytest.raises(ValueError, match=rf"{fn}: argument 'after' must hold one weight matrix per layer \(2\), got 1"):
        step_statistics(0.0, caches, grads, W, W[:1])
    with pytest.raises(TypeError, match=rf"{fn}: argument 'after\[1\]' must be a torch.Tensor, got str"):
        step_statistics(0.0, caches, grads, W, [W[0], "W2"])
    with pytest.raises(ValueError, match=rf"{fn}: arguments 'before' and 'after' must match layer by layer, got shapes \(4, 3\) and \(2, 4\) for layer 1"):
        step_statistics(0.0, caches, grads, W, W[::-1])
    with pytest.raises(ValueError, match=r"activation_statistics: argument 'activation' must be 2-D"):
        activation_statistics(torch.zeros(3, dtype=F64))
    with pytest.raises(ValueError, match=r"activation_statistics: argument 'activation' must hold at least one entry, got shape \(0, 3\)"):
        activation_statistics(torch.zeros(0, 3, dtype=F64))
    with pytest.raises(TypeError, match=r"monitored_step: argument 'net' must be a bplib.MLP, got str"):
        monitored_step("net", None, x, y)
    with pytest.raises(TypeError, match=r"monitored_step: argument 'optimizer' must be a bplib.optim optimiser, got NoneType"):
        monitored_step(bplib.MLP([2, 3], "relu", "mse", dtype=F64), None, x, y)
    with pytest.raises(ValueError, match=r"Rule: argument 'statistic' must be one of 'grad_norm', .* got 'loss'"):
        Rule("loss", 1.0, 2)
    with pytest.raises(TypeError, match=r"Rule: argument 'threshold' must be a real number, got str"):
        Rule("update_ratio", "0.1", 2)
    with pytest.raises(ValueError, match=r"Rule: argument 'threshold' must be finite, got nan"):
        Rule("update_ratio", float("nan"), 2)
    with pytest.raises(ValueError, match=r"Rule: argument 'patience' must be a positive integer number of steps, got 0"):
        Rule("update_ratio", 0.1, 0)
    with pytest.raises(TypeError, match=r"Rule.fired: argument 'history' must be a sequence of StepStatistics, got StepStatistics"):
        Rule("update_ratio", 0.1, 1).fired(history("update_ratio", [[1.0]])[0])
    with pytest.raises(TypeError, match=r"Rule.fired: argument 'history' must hold StepStatistics, got dict at step 0"):
        Rule("update_ratio", 0.1, 1).fired([{}])
