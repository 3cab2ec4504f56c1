"""The same data-parallel step by PyTorch's ``DistributedDataParallel``, on the same network as a ``torch.nn`` module.

``DistributedDataParallel`` (DDP; S. Li et al. (2020), "PyTorch Distributed: Experiences on
Accelerating Data Parallel Training", PVLDB 13(12)) wraps a module; during ``loss.backward()`` it
all-reduces the gradients, bucket by bucket while the backward pass is still running, and divides
them by the world size :math:`k`.  Every rank therefore ends with

.. math::

    \\frac{1}{k} \\sum_{r=0}^{k-1} \\nabla (s_r \\mathcal{L}_{B_r}) = \\frac{1}{k} \\sum_r s_r\\, g_r,

where :math:`s_r` is whatever factor the rank multiplied its loss by.  With :math:`s_r = 1` this is
the equal-weight mean of the shard gradients, which is the full-batch gradient only when every shard
has :math:`m/k` rows.  With :math:`s_r = k\\, m_r / m` it is :math:`\\frac1m \\sum_r m_r g_r`, the
full-batch gradient for shards of any size (:mod:`bplib.distributed.data_parallel`).

This module imports ``torch._dynamo``, which DDP's constructor needs and which takes seconds to import;
a :class:`~bplib.distributed.launch.WorkerPool`'s fork server imports this module once
(:data:`~bplib.distributed.launch.FORK_SERVER_PRELOAD`), so that its workers find it imported.

Not done here: the bucketing and overlap are DDP's own; this module only builds the module, the loss
and the training loop around it.
"""

from __future__ import annotations

import torch
import torch._dynamo  # noqa: F401 -- DDP's constructor imports it; imported here, once per fork server
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

from .._checks import argument, check_integer
from ..mlp import MLP
from .data_parallel import _on_worker_device, shard

_TORCH_ACTIVATIONS = {"relu": torch.nn.ReLU, "sigmoid": torch.nn.Sigmoid, "tanh": torch.nn.Tanh}


def torch_sequential(net: MLP) -> torch.nn.Sequential:
    """``net`` as a ``torch.nn.Sequential`` of ``Linear`` layers and activations, holding copies of its parameters.

    Its ``parameters()`` come in bplib's order :math:`W^1, b^1, \\dots, W^L, b^L`.  Only the standard
    parameterisation has a ``Linear`` layer that stores the weights as they act.
    """
    fn = "torch_sequential"
    if not isinstance(net, MLP):
        raise TypeError(f"{fn}: argument 'net' must be a bplib.MLP, got {type(net).__name__}")
    if net.parameterization != "standard":
        raise ValueError(
            f"{fn}: argument 'net' must use the standard parameterization (torch.nn.Linear stores the weights "
            f"as they act), got parameterization={net.parameterization!r}"
        )
    layers: list[torch.nn.Module] = []
    for l, (W, b) in enumerate(zip(net.weights, net.biases)):
        linear = torch.nn.Linear(W.shape[1], W.shape[0], dtype=W.dtype, device=W.device)
        with torch.no_grad():
            linear.weight.copy_(W)
            linear.bias.copy_(b)
        layers.append(linear)
        if l < len(net.weights) - 1:
            layers.append(_TORCH_ACTIVATIONS[net.activation]())
    return torch.nn.Sequential(*layers)


def torch_loss(net: MLP, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``net``'s loss written with torch operations: ``F.cross_entropy`` (mean) or :math:`\\lVert \\hat Y - Y \\rVert^2/(2m)`."""
    if net.loss_name == "softmax_ce":
        return F.cross_entropy(out, y)
    return 0.5 * (out - y).square().sum() / out.shape[0]


def ddp_sgd(
    net: MLP, x: torch.Tensor, y: torch.Tensor, lr: float, steps: int, weight_by_shard: bool = True
) -> torch.Tensor:
    """Train ``net`` (as :func:`torch_sequential`) for ``steps`` steps of ``torch.optim.SGD`` under DDP.

    Called on every rank at once; each rank trains on its shard of ``(x, y)``
    (:func:`~bplib.distributed.data_parallel.shard`).  With ``weight_by_shard=True`` each rank's loss is
    multiplied by :math:`k\\, m_r / m`, so that DDP's equal-weight mean is the full-batch gradient;
    with ``False`` it is not multiplied (the common mistake when shards differ in size).  Returns the
    final parameters, flattened in bplib's order.
    """
    fn = "ddp_sgd"
    check_integer(fn, argument("steps"), steps, 0)
    if not isinstance(weight_by_shard, bool):
        raise TypeError(f"{fn}: argument 'weight_by_shard' must be a bool, got {type(weight_by_shard).__name__}")
    local, x, y = _on_worker_device(fn, net, x, y)
    rank, world_size = dist.get_rank(), dist.get_world_size()
    if len(x) < world_size:
        raise ValueError(f"{fn}: argument 'x' must have at least one row per rank ({world_size}), got {len(x)}")
    x_r, y_r = shard(x, rank, world_size), shard(y, rank, world_size)
    model = torch_sequential(local)
    device_ids = [x.device.index] if x.device.type == "cuda" else None
    ddp = DistributedDataParallel(model, device_ids=device_ids)  # broadcasts rank 0's parameters
    scale = world_size * len(x_r) / len(x) if weight_by_shard else 1.0  # s_r
    optimiser = torch.optim.SGD(ddp.parameters(), lr=lr)
    for _ in range(steps):
        optimiser.zero_grad()
        (scale * torch_loss(local, ddp(x_r), y_r)).backward()  # DDP all-reduces and divides by k in here
        optimiser.step()
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()]).cpu()
