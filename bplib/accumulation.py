"""Gradient accumulation: the gradient of a batch from its micro-batches, each weighted by its size.

A batch :math:`B` of :math:`m` rows that does not fit in memory at once is cut into micro-batches
:math:`B_1, \\dots, B_K` of sizes :math:`m_1, \\dots, m_K` (:math:`\\sum_k m_k = m`), and the gradient of
each micro-batch's mean loss :math:`\\mathcal{L}_{B_k}` is computed in turn.  The batch's mean loss and
its gradient are

.. math::

    \\mathcal{L}_B = \\sum_{k=1}^K \\frac{m_k}{m}\\, \\mathcal{L}_{B_k}, \\qquad
    \\nabla \\mathcal{L}_B = \\sum_{k=1}^K \\frac{m_k}{m}\\, \\nabla \\mathcal{L}_{B_k},

exactly, whatever the sizes.  Dividing every micro-batch's loss by the number :math:`K` of micro-batches
instead gives the same only when all :math:`m_k` are equal; a data loader whose batch size does not
divide the number of rows hands out a smaller last micro-batch, whose rows then weigh more than the
others.  Since :math:`m` is known only at the end, the running sum here is of
:math:`m_k \\nabla \\mathcal{L}_{B_k}` (the gradient of the micro-batch's *summed* loss), divided by
:math:`m` once.

Not done here: no optimiser step (hand the gradients to :mod:`bplib.optim`), no losses that couple the
rows of a batch (batch normalisation: their micro-batch losses are not the batch's).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch

from ._checks import check_tensor
from .params import Params

LossAndGrads = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, Params]]


def accumulated_loss_and_grads(
    loss_and_grads: LossAndGrads, micro_batches: Iterable[tuple[torch.Tensor, torch.Tensor]]
) -> tuple[torch.Tensor, Params]:
    """Return the mean loss and its gradient over all rows of ``micro_batches``, one micro-batch at a time.

    .. math::

        \\mathcal{L}_B = \\frac1m \\sum_k m_k\\, \\mathcal{L}_{B_k}, \\qquad
        \\nabla \\mathcal{L}_B = \\frac1m \\sum_k m_k\\, \\nabla \\mathcal{L}_{B_k}, \\qquad
        m = \\sum_k m_k.

    Parameters
    ----------
    loss_and_grads:
        ``(x_k, y_k) -> (loss, grads)``: the mean loss of a micro-batch and its gradients as a
        :class:`~bplib.params.Params` (``net.loss_and_grads``, ``net.reference_loss_and_grads``, or
        a checkpointed version, :func:`bplib.checkpoint.checkpointed_loss_and_grads`).
    micro_batches:
        ``(x_k, y_k)`` pairs, the rows of each in its first dimension: a list, a generator, or a
        ``torch.utils.data.DataLoader`` (whose last batch may be smaller).

    Returns
    -------
    tuple[torch.Tensor, Params]
        ``(loss, grads)``: the mean loss over the :math:`m` rows and its gradients, a
        :class:`~bplib.params.Params` of the kind ``loss_and_grads`` returns.
    """
    fn = "accumulated_loss_and_grads"
    if not callable(loss_and_grads):
        raise TypeError(f"{fn}: argument 'loss_and_grads' must be callable, (x, y) -> (loss, grads), got {type(loss_and_grads).__name__}")
    if isinstance(micro_batches, torch.Tensor) or not isinstance(micro_batches, Iterable):
        raise TypeError(f"{fn}: argument 'micro_batches' must be an iterable of (x, y) pairs, got {type(micro_batches).__name__}")
    summed_loss, summed_grads, m = None, None, 0
    for k, pair in enumerate(micro_batches):
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise TypeError(f"{fn}: argument 'micro_batches' must yield (x, y) pairs, got {type(pair).__name__} at index {k}")
        x_k, y_k = pair
        check_tensor(fn, f"micro_batches[{k}] (x)", x_k)
        check_tensor(fn, f"micro_batches[{k}] (y)", y_k)
        m_k = len(x_k) if x_k.dim() else 0
        if m_k == 0:
            raise ValueError(f"{fn}: argument 'micro_batches' holds a micro-batch of 0 rows at index {k}")
        if y_k.dim() == 0 or len(y_k) != m_k:
            raise ValueError(
                f"{fn}: argument 'micro_batches' pairs {m_k} rows of x with {len(y_k) if y_k.dim() else 0} "
                f"rows of y at index {k}"
            )
        loss_k, grads_k = loss_and_grads(x_k, y_k)
        if not isinstance(grads_k, Params):
            raise TypeError(f"{fn}: argument 'loss_and_grads' must return (loss, Params), got grads of type {type(grads_k).__name__}")
        if summed_grads is None:
            summed_loss, summed_grads = m_k * loss_k, [m_k * g for g in grads_k]  # m_k grad L_{B_k}
        else:
            summed_loss = summed_loss + m_k * loss_k
            for g_sum, g in zip(summed_grads, grads_k):
                g_sum.add_(g, alpha=m_k)
        m += m_k
    if summed_grads is None:
        raise ValueError(f"{fn}: argument 'micro_batches' must yield at least one (x, y) pair, got none")
    return summed_loss / m, grads_k.like(g / m for g in summed_grads)
