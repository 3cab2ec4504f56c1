"""Synchronous data parallelism with bplib's gradients: shards, one all-reduce, the full-batch gradient.

Each of :math:`k` workers (ranks :math:`r = 0, \\dots, k-1`) holds a replica of the network and a shard
:math:`B_r` of the batch, :math:`m_r = |B_r|` rows, :math:`\\sum_r m_r = m`.  It computes the mean
gradient of its shard, :math:`g_r = \\nabla \\mathcal{L}_{B_r}`, by bplib's backward pass.  The gradient of
the whole batch is the size-weighted mean (the micro-batch identity of chapter 5)

.. math::

    \\nabla \\mathcal{L}_B = \\frac{1}{m} \\sum_{r=0}^{k-1} m_r\\, g_r,

so every rank sends :math:`m_r g_r` and :math:`m_r` into one all-reduce (sum) and divides the two
sums: with shards of unequal size this is the full-batch gradient, where the plain mean
:math:`\\frac1k \\sum_r g_r` (what ``DistributedDataParallel`` computes) is not.

Every rank is handed the whole batch and keeps its own rows (:func:`shard`), which keeps the pool's
tasks simple; a real job loads only its shard.

Not done here: overlapping communication with the backward pass (``DistributedDataParallel`` does it,
bucket by bucket, :mod:`bplib.distributed.ddp`), gradient compression.
"""

from __future__ import annotations

import copy

import torch
import torch.distributed as dist

from .._checks import argument, check_integer, check_tensor
from ..mlp import MLP
from ..optim import SGD
from ..params import Params, flatten
from .launch import worker_device


def shard_sizes(m: int, world_size: int) -> list[int]:
    """The shard sizes :math:`m_0, \\dots, m_{k-1}` of a batch of :math:`m` rows over :math:`k` ranks.

    As ``torch.tensor_split``: the first :math:`m \\bmod k` shards hold :math:`\\lceil m/k \\rceil`
    rows, the others :math:`\\lfloor m/k \\rfloor` (zero when :math:`m < k`).
    """
    fn = "shard_sizes"
    check_integer(fn, argument("m"), m, 0)
    check_integer(fn, argument("world_size"), world_size, 1)
    return [m // world_size + (r < m % world_size) for r in range(world_size)]


def shard(batch: torch.Tensor, rank: int, world_size: int) -> torch.Tensor:
    """Rank ``rank``'s rows of ``batch``: the ``rank``-th of ``torch.tensor_split(batch, world_size)`` (a view)."""
    fn = "shard"
    check_tensor(fn, "batch", batch)
    if batch.dim() == 0:
        raise ValueError(f"{fn}: argument 'batch' must have a first dimension of rows, got a 0-d tensor")
    check_integer(fn, argument("world_size"), world_size, 1)
    if isinstance(rank, bool) or not isinstance(rank, int) or not 0 <= rank < world_size:
        raise ValueError(f"{fn}: argument 'rank' must be an integer in [0, {world_size - 1}], got {rank!r}")
    return torch.tensor_split(batch, world_size)[rank]


def all_reduce_mean(
    loss: torch.Tensor, grads: Params, count: int
) -> tuple[torch.Tensor, Params]:
    """Combine every rank's mean loss and gradient over ``count`` rows into the batch's.

    Called on every rank of the process group at once.  One all-reduce sums
    :math:`(m_r g_r, m_r \\mathcal{L}_r, m_r)` over the ranks; dividing by
    :math:`\\sum_r m_r` gives :math:`\\nabla \\mathcal{L}_B` and :math:`\\mathcal{L}_B`,
    the same on every rank.  A rank with an empty shard passes zeros and ``count=0``.
    Returns ``(loss, grads)`` shaped like the input.
    """
    fn = "all_reduce_mean"
    check_tensor(fn, "loss", loss, ndim=0, floating=True)
    check_integer(fn, argument("count"), count, 0)
    theta, unflatten = flatten(grads)  # (P,), a new tensor
    m_r = theta.new_tensor([count])
    message = torch.cat([theta * count, (loss * count).reshape(1), m_r])  # (P + 2,)
    dist.all_reduce(message)  # summed over the ranks
    total = message[-1]
    if total == 0:
        raise ValueError(f"{fn}: every rank passed count=0; the batch has no rows")
    return message[-2] / total, unflatten(message[:-2] / total)


def _zero_loss_and_grads(net: MLP) -> tuple[torch.Tensor, Params]:
    params = net.parameters
    return params[0].new_zeros(()), params.like(torch.zeros_like(p) for p in params)


def local_loss_and_grads(net: MLP, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, Params, int]:
    """This rank's mean loss and gradient on its shard of ``(x, y)``, and the shard's size :math:`m_r`.

    ``x`` and ``y`` are the whole batch; the rank keeps its rows (:func:`shard`).  An empty shard
    (:math:`m < k`) gives zeros.
    """
    rank, world_size = dist.get_rank(), dist.get_world_size()
    x_r, y_r = shard(x, rank, world_size), shard(y, rank, world_size)
    if len(x_r) == 0:
        return *_zero_loss_and_grads(net), 0
    loss, grads = net.loss_and_grads(x_r, y_r)
    return loss, grads, len(x_r)


def data_parallel_loss_and_grads(net: MLP, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, Params]:
    """The loss and gradient of the whole batch ``(x, y)``, computed by every rank on its shard and all-reduced.

    Called on every rank at once (a task for :meth:`~bplib.distributed.launch.WorkerPool.run`, or
    the body of a ``torchrun`` script).  Equals ``net.loss_and_grads(x, y)`` up to rounding, for
    shards of any sizes.
    """
    local = _on_worker_device("data_parallel_loss_and_grads", net, x, y)
    return all_reduce_mean(*local_loss_and_grads(*local))


def broadcast_parameters(params: Params, src: int = 0) -> None:
    """Overwrite every rank's ``params`` with rank ``src``'s, in place: the replicas start equal.

    ``DistributedDataParallel`` does the same when it wraps a module.
    """
    theta, unflatten = flatten(params)
    dist.broadcast(theta, src)
    for p, q in zip(params, unflatten(theta)):
        p.copy_(q)


def data_parallel_sgd(
    net: MLP, x: torch.Tensor, y: torch.Tensor, lr: float, steps: int
) -> tuple[torch.Tensor, list[float]]:
    """Train a replica of ``net`` for ``steps`` steps of SGD on the all-reduced gradient of ``(x, y)``.

    Called on every rank at once.  The replica is a copy (``net`` is not modified); rank 0's
    parameters are broadcast first.  Each step: the shard's gradient, :func:`all_reduce_mean`,
    one step of :class:`bplib.optim.SGD`.  Returns the final parameters, flattened
    (:func:`bplib.params.flatten`), and the full-batch loss before each step.
    """
    fn = "data_parallel_sgd"
    check_integer(fn, argument("steps"), steps, 0)
    replica, x, y = _on_worker_device(fn, net, x, y)
    broadcast_parameters(replica.parameters)
    optimiser = SGD(replica.parameters, lr=lr)
    losses = []
    for _ in range(steps):
        loss, grads = all_reduce_mean(*local_loss_and_grads(replica, x, y))
        optimiser.step(grads)
        losses.append(loss.item())
    return flatten(replica.parameters)[0].cpu(), losses


def full_batch_sgd(net: MLP, x: torch.Tensor, y: torch.Tensor, lr: float, steps: int) -> tuple[torch.Tensor, list[float]]:
    """The reference in one process: ``steps`` steps of :class:`bplib.optim.SGD` on the whole batch, on a copy of ``net``.

    Returns what :func:`data_parallel_sgd` returns, which must equal it up to rounding.
    """
    fn = "full_batch_sgd"
    check_integer(fn, argument("steps"), steps, 0)
    if not isinstance(net, MLP):
        raise TypeError(f"{fn}: argument 'net' must be a bplib.MLP, got {type(net).__name__}")
    replica = copy.deepcopy(net)
    optimiser = SGD(replica.parameters, lr=lr)
    losses = []
    for _ in range(steps):
        loss, grads = replica.loss_and_grads(x, y)
        optimiser.step(grads)
        losses.append(loss.item())
    return flatten(replica.parameters)[0], losses


def _check_batch(fn: str, net: MLP, x: object, y: object) -> None:
    """Check the whole batch ``(x, y)`` against ``net`` as its loss would, before any message is exchanged.

    Every rank is handed the whole batch and checks all of it, so that bad input fails on every rank
    at once: a check left to the rank whose shard or stage meets the bad rows would fail there only,
    and leave the other ranks waiting for it in a collective until the pool's timeout.
    """
    if not isinstance(net, MLP):
        raise TypeError(f"{fn}: argument 'net' must be a bplib.MLP, got {type(net).__name__}")
    net._check_input(fn, x)  # (m, n_0), floating, the weights' dtype and device
    check_tensor(fn, "y", y)
    if y.dim() == 0 or len(y) != len(x):
        rows = len(y) if y.dim() else 0
        raise ValueError(f"{fn}: arguments 'x' and 'y' must have the same number of rows, got {len(x)} and {rows}")
    net._loss_forward(fn, x.new_zeros(len(x), net.sizes[-1]), y)  # the targets, checked by the loss itself


def _on_worker_device(fn: str, net: MLP, x: torch.Tensor, y: torch.Tensor) -> tuple[MLP, torch.Tensor, torch.Tensor]:
    """The batch checked (:func:`_check_batch`), then a private copy of ``net`` and the batch on this rank's device
    (:func:`~bplib.distributed.launch.worker_device`)."""
    _check_batch(fn, net, x, y)
    device = worker_device()
    replica = copy.deepcopy(net)  # the pool shares tensors with the parent: never update them in place
    replica.weights = [w.to(device) for w in replica.weights]
    replica.biases = [b.to(device) for b in replica.biases]
    return replica, x.to(device), y.to(device)

