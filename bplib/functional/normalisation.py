r"""Batch normalisation and layer normalisation: forward and backward side by side.

Both standardise and then apply a learned affine map, entry by entry along the normalised axis,

.. math::

    \hat x_i = \frac{x_i - \mu}{\sigma}, \qquad \sigma = \sqrt{s^2 + \epsilon}, \qquad
    y_i = \gamma \hat x_i + \beta,

where :math:`\mu` and :math:`s^2` are the mean and the *biased* variance (divided by the number
of entries) of the group the entry belongs to.  They differ in the group:

* **batch norm**, ``x`` of shape (m, n): a column, the m samples of one feature, so each of the n
  features has its own :math:`\mu_B, \sigma_B` and its own :math:`\gamma, \beta`;
* **layer norm**, ``x`` of shape (..., n): a row, the n features of one sample, so each sample has
  its own :math:`\mu, \sigma`, while :math:`\gamma, \beta \in \mathbb{R}^n` vary along the row.

**Backward, sketched for one group of size** :math:`N` (m for batch norm, n for layer norm).  Write
:math:`g_i = \partial L / \partial y_i` and :math:`\hat g_i = \partial L / \partial \hat x_i = \gamma_i g_i`.
From :math:`\partial \mu / \partial x_j = 1/N` and
:math:`\partial s^2 / \partial x_j = 2 (x_j - \mu) / N`,

.. math::

    \frac{\partial \hat x_i}{\partial x_j}
    = \frac{1}{\sigma}\left(\delta_{ij} - \frac{1}{N} - \frac{\hat x_i \hat x_j}{N}\right),
    \qquad\text{so}\qquad
    \frac{\partial L}{\partial x_j} = \sum_i \hat g_i \frac{\partial \hat x_i}{\partial x_j}
    = \frac{1}{N \sigma}\Big(N \hat g_j - \sum_i \hat g_i - \hat x_j \sum_i \hat g_i \hat x_i\Big).

The :math:`N \times N` Jacobian is never formed: two sums per group suffice.  For batch norm
:math:`\gamma` is constant down a column and comes out of the sums, and the two sums are the
parameter gradients :math:`\partial L/\partial \beta = \sum_i g_i` and
:math:`\partial L/\partial \gamma = \sum_i g_i \hat x_i`; this is the compact form of Ioffe &
Szegedy,

.. math::

    \frac{\partial L}{\partial x} = \frac{\gamma}{m\, \sigma_B}
    \Big(m\, g - \sum_{i=1}^m g_i - \hat x \odot \sum_{i=1}^m g_i \hat x_i\Big), \qquad
    \sigma_B = \sqrt{s_B^2 + \epsilon},

column by column, with :math:`\mu_B` and :math:`s_B^2` the batch mean and biased batch variance.
For layer norm :math:`\gamma` varies along the row and stays inside, as :math:`\hat g = \gamma \odot g`.

**Running statistics** (batch norm).  In train mode, when ``running_mean`` and ``running_var`` are
given, they are updated in place as ``torch.nn.functional.batch_norm`` updates them:

.. math::

    \mu_\text{run} \leftarrow (1 - \alpha)\, \mu_\text{run} + \alpha\, \mu_B, \qquad
    v_\text{run} \leftarrow (1 - \alpha)\, v_\text{run} + \alpha\, \frac{m}{m - 1} s_B^2

with momentum :math:`\alpha`: the running variance takes the *unbiased* batch variance, while the
normalisation uses the biased one.  A batch of one sample is refused in train mode, as torch
refuses it: its mean is the sample itself, so :math:`\hat x = 0` whatever ``x`` is (the output is
:math:`\beta` and no gradient reaches ``x``), and its unbiased variance divides by
:math:`m - 1 = 0`.  In eval mode the running statistics stand for :math:`\mu, s^2`; they are then
constants, and the backward pass is the affine one,
:math:`\partial L / \partial x = g \odot \gamma / \sqrt{v_\text{run} + \epsilon}`.

References: S. Ioffe, C. Szegedy (2015), "Batch normalization: accelerating deep network training
by reducing internal covariate shift", ICML; J. L. Ba, J. R. Kiros, G. E. Hinton (2016), "Layer
normalization", arXiv:1607.06450.

Not done here: no batch norm over inputs of rank other than 2 (move the channels last and flatten
the rest into rows first), no cumulative running average (torch's ``momentum=None``), no layer
norm over more than the last dimension, no optional ``gamma``/``beta`` (pass ones and zeros), no
gradients for the running statistics (they are buffers, not parameters).
"""

from __future__ import annotations

import torch

from .._checks import (
    argument,
    check_flag,
    check_real,
    check_same_dtype_and_device,
    check_shape,
    check_tensor,
    check_upstream,
)

NormCache = tuple[torch.Tensor, torch.Tensor, torch.Tensor]
BatchNormCache = tuple[torch.Tensor, torch.Tensor, torch.Tensor, bool]


# --------------------------------------------------------------------------------------------
# Batch normalisation
# --------------------------------------------------------------------------------------------


def _batch_norm_forward(
    x: torch.Tensor,
    gamma: torch.Tensor,
    beta: torch.Tensor,
    running_mean: torch.Tensor | None,
    running_var: torch.Tensor | None,
    train: bool,
    momentum: float,
    eps: float,
) -> tuple[torch.Tensor, BatchNormCache]:
    if train:
        var, mean = torch.var_mean(x, dim=0, correction=0)  # (n,), (n,): the batch's biased variance
        if running_mean is not None:
            m = x.shape[0]
            running_mean.mul_(1 - momentum).add_(mean, alpha=momentum)  # (n,)
            running_var.mul_(1 - momentum).add_(var, alpha=momentum * m / (m - 1))  # (n,), unbiased
    else:
        mean, var = running_mean, running_var  # (n,), (n,)
    rstd = torch.rsqrt(var + eps)  # (n,) = 1 / sigma_B
    xhat = (x - mean) * rstd  # (m, n)
    out = xhat * gamma + beta  # (m, n)
    return out, (xhat, gamma, rstd, train)


def _batch_norm_backward(
    dout: torch.Tensor, cache: BatchNormCache
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    xhat, gamma, rstd, train = cache
    # forward: out = xhat * gamma + beta
    dbeta = dout.sum(dim=0)  # (n,)
    dgamma = (dout * xhat).sum(dim=0)  # (n,)
    if train:
        # forward: xhat = (x - mean(x)) * rsqrt(var(x) + eps), mean and var over the batch (dim 0)
        m = dout.shape[0]
        dx = (gamma * rstd / m) * (m * dout - dbeta - xhat * dgamma)  # (m, n)
    else:
        # forward: xhat = (x - running_mean) * rsqrt(running_var + eps), the statistics constants
        dx = dout * (gamma * rstd)  # (m, n)
    return dx, dgamma, dbeta


def batch_norm_forward(
    x: torch.Tensor,
    gamma: torch.Tensor,
    beta: torch.Tensor,
    *,
    running_mean: torch.Tensor | None = None,
    running_var: torch.Tensor | None = None,
    train: bool = True,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> tuple[torch.Tensor, BatchNormCache]:
    """Return ``out = gamma * (x - mean) / sqrt(var + eps) + beta`` and the cache ``(xhat, gamma, rstd, train)``.

    Shapes: ``x`` (m, n), ``gamma``, ``beta``, ``running_mean``, ``running_var`` (n,) -> ``out`` (m, n).
    With ``train=True`` the statistics are those of the batch (``m >= 2``), and the running
    statistics, if given (both or neither, neither requiring a gradient), are updated in place; with
    ``train=False`` they are the running statistics, which are then required.  ``momentum`` in [0, 1]; ``eps > 0`` in train
    mode and ``eps >= 0`` in eval mode, as in ``torch.nn.functional.batch_norm``.
    """
    fn = "batch_norm_forward"
    check_tensor(fn, "x", x, ndim=2, floating=True)
    check_tensor(fn, "gamma", gamma, ndim=1, floating=True)
    check_tensor(fn, "beta", beta, ndim=1, floating=True)
    check_same_dtype_and_device(fn, ("x", x), ("gamma", gamma), ("beta", beta))
    m, n = x.shape
    check_shape(fn, "gamma", gamma, (n,), "one scale per feature, n = x.shape[1]")
    check_shape(fn, "beta", beta, (n,), "one shift per feature, n = x.shape[1]")
    check_flag(fn, argument("train"), train)
    momentum = check_real(fn, argument("momentum"), momentum, 0.0, 1.0)
    eps = check_real(fn, argument("eps"), eps, 0.0)
    if train and eps == 0:
        raise ValueError(
            f"{fn}: argument 'eps' must be > 0 when train=True, as in torch, got {eps!r}: a feature that is "
            f"constant over the batch has variance 0, and 1/sqrt(0 + eps) would be infinite"
        )
    if (running_mean is None) != (running_var is None):
        raise ValueError(
            f"{fn}: arguments 'running_mean' and 'running_var' must be given together or not at all, "
            f"got {'running_var' if running_mean is None else 'running_mean'} alone"
        )
    if running_mean is not None:
        for name, stat in (("running_mean", running_mean), ("running_var", running_var)):
            check_tensor(fn, name, stat, ndim=1, floating=True)
            check_same_dtype_and_device(fn, ("x", x), (name, stat))
            check_shape(fn, name, stat, (n,), "one statistic per feature, n = x.shape[1]")
            if stat.requires_grad:
                raise ValueError(
                    f"{fn}: argument '{name}' must not require a gradient, as in torch: the running statistics are "
                    f"buffers, updated in place and given no gradient, not parameters"
                )
    elif not train:
        raise ValueError(
            f"{fn}: train=False normalises by the running statistics, so arguments 'running_mean' and "
            f"'running_var' are required, got None"
        )
    if train and m < 2:
        raise ValueError(
            f"{fn}: argument 'x' must hold at least 2 rows when train=True, got shape {tuple(x.shape)}: the batch "
            f"statistics of one sample make xhat = 0 whatever x is, and its unbiased variance divides by m - 1 = 0"
        )
    return _batch_norm_forward(x, gamma, beta, running_mean, running_var, train, momentum, eps)


def batch_norm_backward(
    dout: torch.Tensor, cache: BatchNormCache
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Return ``(dx, dgamma, dbeta)`` given ``dout = dL/dout`` of shape (m, n).

    Train mode: the compact form of the module docstring; eval mode: ``dx = dout * gamma * rstd``.
    """
    xhat = cache[0]
    fn = "batch_norm_backward"
    check_tensor(fn, "dout", dout, ndim=2, floating=True)
    check_same_dtype_and_device(fn, ("xhat (from cache)", xhat), ("dout", dout))
    check_shape(fn, "dout", dout, tuple(xhat.shape), "the shape (m, n) of the forward output")
    return _batch_norm_backward(dout, cache)


# --------------------------------------------------------------------------------------------
# Layer normalisation
# --------------------------------------------------------------------------------------------


def _layer_norm_forward(
    x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, eps: float
) -> tuple[torch.Tensor, NormCache]:
    var, mean = torch.var_mean(x, dim=-1, keepdim=True, correction=0)  # (..., 1), (..., 1): biased variance
    rstd = torch.rsqrt(var + eps)  # (..., 1) = 1 / sigma
    xhat = (x - mean) * rstd  # (..., n)
    out = xhat * gamma + beta  # (..., n)
    return out, (xhat, gamma, rstd)


def _layer_norm_backward(dout: torch.Tensor, cache: NormCache) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    xhat, gamma, rstd = cache
    n = xhat.shape[-1]
    # forward: out = xhat * gamma + beta
    dbeta = dout.reshape(-1, n).sum(dim=0)  # (n,), summed over every leading dimension
    dgamma = (dout * xhat).reshape(-1, n).sum(dim=0)  # (n,)
    dxhat = dout * gamma  # (..., n)
    # forward: xhat = (x - mean(x)) * rsqrt(var(x) + eps), mean and var over the last dimension
    dx = rstd * (
        dxhat - dxhat.mean(dim=-1, keepdim=True) - xhat * (dxhat * xhat).mean(dim=-1, keepdim=True)
    )  # (..., n)
    return dx, dgamma, dbeta


def layer_norm_forward(
    x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, *, eps: float = 1e-5
) -> tuple[torch.Tensor, NormCache]:
    """Return ``out = gamma * (x - mean) / sqrt(var + eps) + beta`` and the cache ``(xhat, gamma, rstd)``.

    The statistics are over the last dimension.  Shapes: ``x`` (..., n) with any leading dimensions, ``gamma`` and ``beta`` (n,) -> ``out`` (..., n).
    ``eps >= 0``.  Equal to ``torch.nn.functional.layer_norm(x, (n,), gamma, beta, eps)``.
    """
    fn = "layer_norm_forward"
    check_tensor(fn, "x", x, floating=True)
    if x.dim() == 0:
        raise ValueError(f"{fn}: argument 'x' must have at least one dimension to normalise over, got a 0-d tensor")
    check_tensor(fn, "gamma", gamma, ndim=1, floating=True)
    check_tensor(fn, "beta", beta, ndim=1, floating=True)
    check_same_dtype_and_device(fn, ("x", x), ("gamma", gamma), ("beta", beta))
    n = x.shape[-1]
    check_shape(fn, "gamma", gamma, (n,), "one scale per feature, n = x.shape[-1]")
    check_shape(fn, "beta", beta, (n,), "one shift per feature, n = x.shape[-1]")
    eps = check_real(fn, argument("eps"), eps, 0.0)
    return _layer_norm_forward(x, gamma, beta, eps)


def layer_norm_backward(dout: torch.Tensor, cache: NormCache) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Return ``(dx, dgamma, dbeta)`` given ``dout = dL/dout`` of the shape (..., n) of the forward output."""
    xhat = cache[0]
    fn = "layer_norm_backward"
    check_upstream(fn, "dout", dout, ("xhat (from cache)", xhat))
    return _layer_norm_backward(dout, cache)
