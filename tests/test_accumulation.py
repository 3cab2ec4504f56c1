"""bplib.accumulation: micro-batches weighted by their sizes give the full batch's loss and gradients, whatever
the sizes, with any loss_and_grads (the fast path, the reference, checkpointed); every error path is reported."""

import functools

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import bplib
from bplib.accumulation import accumulated_loss_and_grads
from bplib.checkpoint import checkpointed_loss_and_grads
from bplib.testing import assert_close

from .test_mlp import make_batch

F64 = torch.float64


@pytest.fixture
def problem(generator):
    net = bplib.MLP([4, 6, 5, 3], "tanh", "softmax_ce", dtype=F64, generator=generator)
    x, y = make_batch(net, 10, generator)
    return net, x, y


@pytest.mark.parametrize("sizes", [[10], [5, 5], [4, 4, 2], [1, 9], [3, 3, 3, 1], [1] * 10])
@pytest.mark.parametrize("route", ["loss_and_grads", "reference_loss_and_grads", "checkpointed"])
def test_weighted_micro_batches_give_the_batch_gradient(problem, sizes, route):
    net, x, y = problem
    if route == "checkpointed":
        loss_and_grads = functools.partial(checkpointed_loss_and_grads, net, segments=2)
    else:
        loss_and_grads = getattr(net, route)
    loss, grads = accumulated_loss_and_grads(loss_and_grads, zip(torch.split(x, sizes), torch.split(y, sizes)))
    ref_loss, ref_grads = net.reference_loss_and_grads(x, y)
    assert type(grads) is type(ref_grads) and grads.names == ref_grads.names
    assert_close(loss, ref_loss, claim=f"accumulated loss equals the batch loss (sizes {sizes})")
    for name, g, r in zip(grads.names, grads, ref_grads):
        assert_close(g, r, claim=f"accumulated {name} equals the batch gradient (sizes {sizes})")


def test_a_data_loader_with_a_smaller_last_batch(problem):
    net, x, y = problem
    loader = DataLoader(TensorDataset(x, y), batch_size=4)  # 4, 4, 2
    assert [len(xb) for xb, _ in loader] == [4, 4, 2]
    _, grads = accumulated_loss_and_grads(net.reference_loss_and_grads, loader)
    _, ref_grads = net.reference_loss_and_grads(x, y)
    for name, g, r in zip(grads.names, grads, ref_grads):
        assert_close(g, r, claim=f"accumulated {name} over a DataLoader equals the batch gradient")


def test_the_micro_batch_gradients_are_left_unchanged(problem):
    net, x, y = problem
    seen = []

    def recording(xb, yb):
        loss, grads = net.reference_loss_and_grads(xb, yb)
        seen.append([g.clone() for g in grads])
        seen[-1].append(grads)
        return loss, grads

    accumulated_loss_and_grads(recording, zip(torch.split(x, 3), torch.split(y, 3)))
    for record in seen:
        *copies, grads = record
        assert all(torch.equal(c, g) for c, g in zip(copies, grads)), "the running sum must not write into them"


# ----------------------------------------------------------------------------- errors


def test_errors(problem):
    net, x, y = problem
    fn = "accumulated_loss_and_grads"
    with pytest.raises(TypeError, match=rf"{fn}: argument 'loss_and_grads' must be callable, \(x, y\) -> \(loss, grads\), got MLP"):
        accumulated_loss_and_grads(net, [(x, y)])
    with pytest.raises(TypeError, match=rf"{fn}: argument 'micro_batches' must be an iterable of \(x, y\) pairs, got Tensor"):
        accumulated_loss_and_grads(net.loss_and_grads, x)
    with pytest.raises(TypeError, match=rf"{fn}: argument 'micro_batches' must be an iterable of \(x, y\) pairs, got int"):
        accumulated_loss_and_grads(net.loss_and_grads, 3)
    with pytest.raises(TypeError, match=rf"{fn}: argument 'micro_batches' must yield \(x, y\) pairs, got Tensor at index 0"):
        accumulated_loss_and_grads(net.loss_and_grads, [x])
    with pytest.raises(TypeError, match=rf"{fn}: argument 'micro_batches\[1\] \(y\)' must be a torch.Tensor, got list"):
        accumulated_loss_and_grads(net.loss_and_grads, [(x[:2], y[:2]), (x[2:], [0])])
    with pytest.raises(ValueError, match=rf"{fn}: argument 'micro_batches' holds a micro-batch of 0 rows at index 1"):
        accumulated_loss_and_grads(net.loss_and_grads, [(x[:2], y[:2]), (x[:0], y[:0])])
    with pytest.raises(ValueError, match=rf"{fn}: argument 'micro_batches' pairs 4 rows of x with 3 rows of y at index 0"):
        accumulated_loss_and_grads(net.loss_and_grads, [(x[:4], y[:3])])
    with pytest.raises(ValueError, match=rf"{fn}: argument 'micro_batches' must yield at least one \(x, y\) pair, got none"):
        accumulated_loss_and_grads(net.loss_and_grads, [])
    with pytest.raises(TypeError, match=rf"{fn}: argument 'loss_and_grads' must return \(loss, Params\), got grads of type list"):
        accumulated_loss_and_grads(lambda xb, yb: (torch.zeros(()), [torch.zeros(1)]), [(x, y)])
