r"""Softmax along one dimension: forward and backward side by side.

For a vector :math:`z \in \mathbb{R}^C` (one slice of the tensor along ``dim``)

.. math::

    p = \operatorname{softmax}(z), \qquad p_j = \frac{e^{z_j}}{\sum_k e^{z_k}}, \qquad
    \frac{\partial p}{\partial z} = \operatorname{diag}(p) - p p^\top .

The Jacobian is symmetric, so with :math:`\bar p = \partial L / \partial p` the backward pass is

.. math::

    \frac{\partial L}{\partial z} = \left(\operatorname{diag}(p) - p p^\top\right) \bar p
    = p \odot \left(\bar p - \langle \bar p, p \rangle \mathbf{1}\right),

one inner product and two element-wise operations per slice: :math:`O(C)` work and memory where
forming the :math:`C \times C` Jacobian would take :math:`O(C^2)`.  Every slice along ``dim`` is
independent, so the tensor may have any rank.

Softmax has a module of its own rather than a row in :mod:`bplib.functional.activations`: those are
element-wise, with a diagonal Jacobian; this one couples the entries of a slice.  The loss
:func:`~bplib.functional.losses.softmax_cross_entropy_forward` fuses it with the cross-entropy, and
:func:`~bplib.functional.attention.attention_backward` reuses the backward below.

Reference: J. S. Bridle (1990), "Probabilistic interpretation of feedforward classification network
outputs, with relationships to statistical pattern recognition", in *Neurocomputing*, Springer.

Not done here: no temperature argument (scale ``z`` first), no masking (set masked entries of ``z``
to :math:`-\infty` first, as :func:`~bplib.functional.attention.attention_forward` does), no
log-softmax.
"""

from __future__ import annotations

import torch

from .._checks import check_tensor, check_upstream

SoftmaxCache = tuple[torch.Tensor, int]


def _softmax_forward(z: torch.Tensor, dim: int) -> tuple[torch.Tensor, SoftmaxCache]:
    # torch.softmax subtracts the maximum of each slice first, so nothing overflows
    p = torch.softmax(z, dim=dim)  # (..., C, ...), like z
    return p, (p, dim)


def _softmax_backward(dp: torch.Tensor, cache: SoftmaxCache) -> torch.Tensor:
    p, dim = cache
    # forward: p = softmax(z, dim)
    inner = (dp * p).sum(dim=dim, keepdim=True)  # <dp, p> per slice, size 1 along dim
    return p * (dp - inner)  # like z


def softmax_forward(z: torch.Tensor, dim: int = -1) -> tuple[torch.Tensor, SoftmaxCache]:
    """Return ``p = softmax(z)`` along ``dim`` and the cache ``(p, dim)``.

    ``z`` has any shape with at least one dimension; ``p`` has the same shape, and its slices along
    ``dim`` are probability vectors.
    """
    fn = "softmax_forward"
    check_tensor(fn, "z", z, floating=True)
    if z.dim() == 0:
        raise ValueError(f"{fn}: argument 'z' must have at least one dimension to normalise over, got a 0-d tensor")
    if isinstance(dim, bool) or not isinstance(dim, int):
        raise TypeError(f"{fn}: argument 'dim' must be an int, got {type(dim).__name__} {dim!r}")
    if not -z.dim() <= dim < z.dim():
        raise ValueError(
            f"{fn}: argument 'dim' must be an integer in [{-z.dim()}, {z.dim() - 1}] for a {z.dim()}-D 'z', got {dim!r}"
        )
    return _softmax_forward(z, dim)


def softmax_backward(dp: torch.Tensor, cache: SoftmaxCache) -> torch.Tensor:
    """Return ``dz = p * (dp - sum(dp * p, dim))``, the vector–Jacobian product with ``diag(p) - p p^T``."""
    p, _ = cache
    fn = "softmax_backward"
    check_upstream(fn, "dp", dp, ("p (from cache)", p))
    return _softmax_backward(dp, cache)
