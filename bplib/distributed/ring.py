"""Ring all-reduce by hand, with point-to-point messages, counting every value it sends.

An all-reduce leaves on every one of :math:`k` ranks the sum of their vectors of :math:`P` values.
The ring algorithm (P. Patarasuk and X. Yuan (2009), "Bandwidth optimal all-reduce algorithms for
clusters of workstations", J. Parallel Distrib. Comput. 69(2); used by Horovod, A. Sergeev and
M. Del Balso (2018), and by NCCL) cuts each vector into :math:`k` chunks :math:`c_0, \\dots, c_{k-1}` and arranges the ranks in a ring, rank
:math:`r` sending to :math:`r + 1` and receiving from :math:`r - 1` (mod :math:`k`):

* **reduce-scatter**, :math:`k - 1` steps: at step :math:`s` rank :math:`r` sends chunk
  :math:`(r - s) \\bmod k` and adds the chunk :math:`(r - s - 1) \\bmod k` it receives to its own.
  Afterwards rank :math:`r` holds the complete sum of chunk :math:`(r + 1) \\bmod k`;
* **all-gather**, :math:`k - 1` steps: at step :math:`s` rank :math:`r` sends chunk
  :math:`(r + 1 - s) \\bmod k` and overwrites chunk :math:`(r - s) \\bmod k` with the one it receives.

Each rank sends :math:`2(k-1)` chunks; when :math:`k` divides :math:`P`, :math:`2(k-1)P/k` values,
the bandwidth lower bound that Patarasuk and Yuan prove for all-reduce: it tends to :math:`2P`,
independent of :math:`k`.  Chunks follow ``torch.tensor_split``, so :math:`P` need not be a multiple
of :math:`k`.

Not done here: pipelining chunks into smaller pieces, trees, several rings; the reduction is a sum.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist

from .._checks import check_tensor


@dataclass(frozen=True)
class RingTraffic:
    """What one rank's ring all-reduce transferred: values sent and received, and the number of steps."""

    sent: int
    """Values this rank sent."""
    received: int
    """Values this rank received."""
    steps: int
    """Send--receive steps, :math:`2(k - 1)`."""


def ring_all_reduce(tensor: torch.Tensor) -> RingTraffic:
    """Sum ``tensor`` over all ranks, in place, by a ring; return what this rank sent.

    Called on every rank of the process group at once, with tensors of one shape and
    dtype.  The result equals ``torch.distributed.all_reduce(tensor)`` (exactly for
    integers; to rounding for floating point, whose additions come in another order).
    """
    fn = "ring_all_reduce"
    check_tensor(fn, "tensor", tensor)
    if not tensor.is_contiguous():
        raise ValueError(
            f"{fn}: argument 'tensor' must be contiguous (the chunks are views of it), "
            f"got strides {tensor.stride()}"
        )
    k, r = dist.get_world_size(), dist.get_rank()
    chunks = torch.tensor_split(tensor.view(-1), k)  # c_0, ..., c_{k-1}: views
    right, left = (r + 1) % k, (r - 1) % k
    sent = received = 0

    def exchange(send_index: int, receive_index: int) -> torch.Tensor:
        nonlocal sent, received
        outgoing = chunks[send_index]
        incoming = torch.empty_like(chunks[receive_index])
        request = dist.isend(outgoing, right)  # the neighbours send at the same time
        dist.recv(incoming, left)
        request.wait()
        sent, received = sent + outgoing.numel(), received + incoming.numel()
        return incoming

    for s in range(k - 1):  # reduce-scatter: add the chunk that arrives
        chunks[(r - s - 1) % k].add_(exchange((r - s) % k, (r - s - 1) % k))
    for s in range(k - 1):  # all-gather: keep the complete chunk that arrives
        chunks[(r - s) % k].copy_(exchange((r + 1 - s) % k, (r - s) % k))
    return RingTraffic(sent=sent, received=received, steps=2 * (k - 1))


def ring_all_reduce_task(vectors: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, RingTraffic]:
    """Rank :math:`r` reduces ``vectors[r]`` by :func:`ring_all_reduce` and by ``torch.distributed.all_reduce``.

    A task for :meth:`~bplib.distributed.launch.WorkerPool.run` (``vectors`` holds one tensor per
    rank).  Returns both sums and the ring's traffic; neither input is modified.
    """
    fn = "ring_all_reduce_task"
    k = dist.get_world_size()
    if not isinstance(vectors, (list, tuple)) or len(vectors) != k:
        raise ValueError(f"{fn}: argument 'vectors' must hold one tensor per rank ({k}), got {vectors!r:.80}")
    for r, vector in enumerate(vectors):  # every rank checks them all, so that all fail together
        check_tensor(fn, f"vectors[{r}]", vector)
        if (vector.shape, vector.dtype) != (vectors[0].shape, vectors[0].dtype):
            raise ValueError(
                f"{fn}: argument 'vectors' must hold tensors of one shape and dtype, got {tuple(vectors[0].shape)}, "
                f"{vectors[0].dtype} at index 0 and {tuple(vector.shape)}, {vector.dtype} at index {r}"
            )
    mine = vectors[dist.get_rank()]
    by_ring = mine.clone(memory_format=torch.contiguous_format)  # a transposed input's clone would keep its strides
    by_torch = mine.clone()
    traffic = ring_all_reduce(by_ring)
    dist.all_reduce(by_torch)
    return by_ring, by_torch, traffic
