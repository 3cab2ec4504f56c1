"""bplib.checkpoint: checkpointed gradients == the reference bit for bit and == torch.autograd; the activations
held and the recomputed FLOPs == the schedule's formulas; every error path is reported."""

import math

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import bplib
from bplib.checkpoint import CacheMeter, cached_activations, checkpointed_loss_and_grads, segment_lengths
from bplib.testing import assert_close

from .reference import autograd_grads, mlp_loss
from .test_mlp import make_batch

F64 = torch.float64


def deep_net(L, n, generator, activation="relu", loss="softmax_ce", **options):
    """L layers of width n from an input of width n; the output has 3 units."""
    net = bplib.MLP([n] * L + [3], activation, loss, dtype=F64, generator=generator, **options)
    for b in net.biases:  # non-zero biases, so that no pre-activation sits at ReLU's kink
        b.normal_(generator=generator)
    return net


def flops(fn):
    with FlopCounterMode(display=False) as counter:
        result = fn()
    return result, counter.get_total_flops()


# ----------------------------------------------------------------------------- gradients


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh"])
@pytest.mark.parametrize("loss", ["softmax_ce", "mse"])
@pytest.mark.parametrize("parameterization", ["standard", "ntk"])
def test_gradients_equal_the_reference_bit_for_bit(activation, loss, parameterization, generator):
    net = deep_net(7, 5, generator, activation, loss, parameterization=parameterization, sigma_b2=0.5)
    x, y = make_batch(net, 6, generator)
    ref_loss, ref_grads = net.reference_loss_and_grads(x, y)
    for segments in [1, 2, 3, 4, 7, [1, 6], [6, 1], [2, 1, 3, 1]]:
        value, grads = checkpointed_loss_and_grads(net, x, y, segments)
        assert isinstance(grads, bplib.MLPParams) and grads.names == net.parameters.names
        assert torch.equal(value, ref_loss), segments
        for name, g, r in zip(grads.names, grads, ref_grads):
            # the recomputation repeats the reference's operations on the same numbers: no rounding difference
            assert torch.equal(g, r), f"{name} differs from the reference with segments {segments}"


@pytest.mark.parametrize("segments", [1, 2, 3, 5])
def test_gradients_equal_autograd(segments, generator):
    net = deep_net(5, 4, generator, "tanh", "softmax_ce")
    x, y = make_batch(net, 7, generator)
    value, grads = checkpointed_loss_and_grads(net, x, y, segments)
    n = len(net.weights)
    ref_value, ref = autograd_grads(
        lambda *p: mlp_loss(p[:n], p[n:], x, y, net.activation, net.loss_name), *net.weights, *net.biases
    )
    assert_close(value, ref_value, claim="checkpointed loss equals autograd's")
    for l in range(n):
        assert_close(grads.weights[l], ref[l], claim=f"checkpointed dW^{l + 1} equals autograd")
        assert_close(grads.biases[l], ref[n + l], claim=f"checkpointed db^{l + 1} equals autograd")


def test_the_network_is_left_unchanged(generator):
    net = deep_net(4, 3, generator)
    before = [p.clone() for p in net.parameters]
    checkpointed_loss_and_grads(net, *make_batch(net, 2, generator), 2)
    assert all(torch.equal(p, q) for p, q in zip(net.parameters, before))


# ----------------------------------------------------------------------------- memory and FLOPs


def expected_peak(lengths):
    """Activations held at the peak: k boundaries + the last segment's inner activations, or, while
    segment j < k is recomputed, the j + 1 boundaries up to its output and its s_j - 1 inner activations."""
    k = len(lengths)
    return max([k + lengths[-1] - 1] + [(j + 1) + (s - 1) for j, s in enumerate(lengths[:-1], start=1)])


@pytest.mark.parametrize("L", [1, 2, 5, 9, 12, 16])
def test_peak_activations_follow_the_formula(L, generator):
    n, m = 4, 3
    net = deep_net(L, n, generator)
    x, y = make_batch(net, m, generator)
    unit = m * n * x.element_size()  # every activation A^0, ..., A^{L-1} is (m, n)
    _, caches = net.forward_with_caches(x)
    plain = CacheMeter().record(cached_activations(caches))
    assert plain == L * unit, "plain backpropagation holds A^0, ..., A^{L-1}"
    for s in range(1, L + 1):
        meter = CacheMeter()
        checkpointed_loss_and_grads(net, x, y, s, meter=meter)
        assert meter.peak_bytes == (math.ceil(L / s) + s - 1) * unit, (L, s)
        assert meter.peak_bytes == expected_peak(segment_lengths(L, s)) * unit
        assert meter.trace[-1] == unit, "at the end only the input is held"
    if math.isqrt(L) ** 2 == L:
        meter = CacheMeter()
        checkpointed_loss_and_grads(net, x, y, math.isqrt(L), meter=meter)
        assert meter.peak_bytes == (2 * math.isqrt(L) - 1) * unit


@pytest.mark.parametrize("lengths", [[1, 6], [6, 1], [2, 1, 3, 1], [3, 4], [1, 1, 5]])
def test_peak_of_unequal_segments(lengths, generator):
    net = deep_net(7, 3, generator)
    x, y = make_batch(net, 2, generator)
    meter = CacheMeter()
    checkpointed_loss_and_grads(net, x, y, lengths, meter=meter)
    assert meter.peak_bytes == expected_peak(lengths) * 2 * 3 * 8


def test_one_segment_and_unit_segments_are_plain_backpropagation(generator):
    net = deep_net(6, 4, generator)
    x, y = make_batch(net, 5, generator)
    _, reference_flops = flops(lambda: net.reference_loss_and_grads(x, y))
    for segments in (1, 6):
        meter = CacheMeter()
        _, counted = flops(lambda: checkpointed_loss_and_grads(net, x, y, segments, meter=meter))
        assert counted == reference_flops, segments
        assert meter.peak_bytes == 6 * 5 * 4 * 8


@pytest.mark.parametrize("L, s", [(4, 2), (9, 3), (12, 4), (10, 3), (16, 5)])
def test_extra_flops_are_the_forward_of_the_layers_not_stored(L, s, generator):
    n, m = 6, 5
    net = deep_net(L, n, generator)
    x, y = make_batch(net, m, generator)
    _, plain = flops(lambda: net.reference_loss_and_grads(x, y))
    _, counted = flops(lambda: checkpointed_loss_and_grads(net, x, y, s))
    lengths = segment_lengths(L, s)
    recomputed = sum(length - 1 for length in lengths[:-1])  # all but the last layer of all but the last segment
    assert counted - plain == recomputed * 2 * m * n * n  # one n x n affine map per recomputed layer


def test_the_meter_counts_a_tensor_once():
    a = torch.zeros(3, 4, dtype=F64)
    meter = CacheMeter()
    assert meter.peak_bytes == 0
    assert meter.record([a, a, torch.zeros(2, dtype=torch.float32)]) == 3 * 4 * 8 + 2 * 4
    assert meter.record([]) == 0
    assert meter.trace == [104, 0] and meter.peak_bytes == 104


def test_segment_lengths():
    assert segment_lengths(10, 3) == (3, 3, 3, 1)
    assert segment_lengths(9, 3) == (3, 3, 3)
    assert segment_lengths(4, 4) == (4,)
    assert segment_lengths(4, 1) == (1, 1, 1, 1)


# ----------------------------------------------------------------------------- errors


@pytest.fixture
def net4(generator):
    return deep_net(4, 3, generator)


@pytest.mark.parametrize(
    "segments, error, pattern",
    [
        (0, ValueError, r"checkpointed_loss_and_grads: argument 'segments' must be at least 1 layer \(a segment of 0 layers holds nothing\)"),
        (-2, ValueError, r"argument 'segments' must be at least 1 layer"),
        (5, ValueError, r"checkpointed_loss_and_grads: argument 'segments' must be at most the network's 4 layers, got 5: a segment would reach outside the network"),
        ([2, 0, 2], ValueError, r"argument 'segments' must hold lengths >= 1, got a segment of 0 layers at index 1"),
        ([3, 3], ValueError, r"argument 'segments' covers 6 layers, but the network has 4: segments \[3, 3\] reach outside the network"),
        ([1, 1], ValueError, r"argument 'segments' must cover all 4 layers of the network, got \[1, 1\], which covers 2"),
        ([], TypeError, r"argument 'segments' must be a segment length \(int\) or a non-empty sequence of segment lengths, got list"),
        (2.0, TypeError, r"argument 'segments' must be a segment length \(int\) or a non-empty sequence.*got 2.0"),
        (True, TypeError, r"argument 'segments' must be a segment length"),
        ("2", TypeError, r"argument 'segments' must be a segment length"),
        ([2, 2.0], TypeError, r"argument 'segments' must hold integers, got 2.0 at index 1"),
    ],
)
def test_bad_segments(net4, segments, error, pattern, generator):
    x, y = make_batch(net4, 2, generator)
    with pytest.raises(error, match=pattern):
        checkpointed_loss_and_grads(net4, x, y, segments)


def test_bad_arguments(net4, generator):
    x, y = make_batch(net4, 2, generator)
    with pytest.raises(TypeError, match=r"checkpointed_loss_and_grads: argument 'net' must be a bplib.MLP, got list"):
        checkpointed_loss_and_grads([net4], x, y, 2)
    with pytest.raises(TypeError, match=r"checkpointed_loss_and_grads: argument 'meter' must be a CacheMeter or None, got list"):
        checkpointed_loss_and_grads(net4, x, y, 2, meter=[])
    with pytest.raises(ValueError, match=r"checkpointed_loss_and_grads: argument 'x' must have shape \(any, 3\)"):
        checkpointed_loss_and_grads(net4, torch.zeros(2, 5, dtype=F64), y, 2)
    with pytest.raises(TypeError, match=r"checkpointed_loss_and_grads: argument 'x' has dtype torch.float32"):
        checkpointed_loss_and_grads(net4, x.float(), y, 2)
    with pytest.raises(ValueError, match=r"checkpointed_loss_and_grads: argument 'y' must have shape \(2,\)"):
        checkpointed_loss_and_grads(net4, x, y[:1], 2)
    with pytest.raises(ValueError, match=r"checkpointed_loss_and_grads: argument 'y' holds class indices outside \[0, 2\]"):
        checkpointed_loss_and_grads(net4, x, y + 3, 2)
    with pytest.raises(TypeError, match=r"CacheMeter.record: argument 'tensors' must hold tensors, got list"):
        CacheMeter().record([[1.0]])


@pytest.mark.parametrize(
    "args, error, pattern",
    [
        ((10, 0), ValueError, r"segment_lengths: argument 'segment_length' must be at least 1 layer"),
        ((10, 11), ValueError, r"segment_lengths: argument 'segment_length' must be at most the network's 10 layers, got 11"),
        ((10, 2.5), TypeError, r"segment_lengths: argument 'segment_length' must be an integer number of layers, got 2.5"),
        ((0, 1), ValueError, r"segment_lengths: argument 'num_layers' must be a positive integer, got 0"),
        ((None, 1), ValueError, r"segment_lengths: argument 'num_layers' must be a positive integer, got NoneType"),
    ],
)
def test_bad_segment_lengths(args, error, pattern):
    with pytest.raises(error, match=pattern):
        segment_lengths(*args)
