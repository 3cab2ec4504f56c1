"""Gradient clipping by the global norm: :func:`clip_grad_norm`."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .._checks import argument, check_real, check_same_dtype_and_device, check_tensor
from ._checks import check_sequence


def clip_grad_norm(grads: Sequence[torch.Tensor], max_norm: float) -> torch.Tensor:
    """Scale ``grads`` in place so that their global L2 norm is at most ``max_norm``; return the norm before.

    .. math::

        \\lVert g \\rVert = \\Big(\\sum_i \\lVert g_i \\rVert_2^2\\Big)^{1/2}, \\qquad
        c = \\min\\Big(1, \\frac{\\text{max\\_norm}}{\\lVert g \\rVert + 10^{-6}}\\Big), \\qquad
        g_i \\leftarrow c\\, g_i,

    the convention of ``torch.nn.utils.clip_grad_norm_`` (the :math:`10^{-6}` keeps :math:`c`
    finite for zero gradients, and leaves the clipped norm a hair below ``max_norm``).  All
    tensors are scaled by the same :math:`c`, so the direction of the whole gradient is kept;
    gradients already within the bound are multiplied by exactly 1.  The norm is the norm of
    the tensors concatenated into one vector, computed as the norm of the per-tensor norms.
    A non-finite norm is returned as is, and makes the gradients non-finite (as torch's default).

    ``grads``: a non-empty sequence (list, tuple, :class:`~bplib.params.Params`) of floating
    tensors of one dtype and device.  Returns a 0-d tensor of that dtype and device.
    """
    fn = "clip_grad_norm"
    check_sequence(fn, "grads", grads, "tensors")
    if len(grads) == 0:
        raise ValueError(f"{fn}: argument 'grads' must hold at least one tensor, got an empty {type(grads).__name__}")
    for i, g in enumerate(grads):
        check_tensor(fn, f"grads[{i}]", g, floating=True)
    check_same_dtype_and_device(fn, ("grads[0]", grads[0]), *((f"grads[{i}]", g) for i, g in enumerate(grads)))
    check_real(fn, argument("max_norm"), max_norm, 0.0)
    with torch.no_grad():
        norms = torch.stack([torch.linalg.vector_norm(g) for g in grads])  # (n,) = ||g_i||_2
        total_norm = torch.linalg.vector_norm(norms)  # ()
        clip_coef = torch.clamp(max_norm / (total_norm + 1e-6), max=1.0)  # () = c, no host sync
        for g in grads:
            g.mul_(clip_coef)
    return total_norm

