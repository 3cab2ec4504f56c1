"""Losses: forward and backward side by side.

Both losses average over the m rows (samples) of the batch.

Mean squared error, on predictions :math:`\\hat Y` and targets :math:`Y` of shape (m, k):

.. math::

    L = \\frac{1}{2m} \\sum_{i=1}^m \\lVert \\hat y_i - y_i \\rVert^2, \\qquad
    \\frac{\\partial L}{\\partial \\hat Y} = \\frac{1}{m} (\\hat Y - Y).

Softmax cross-entropy, on logits :math:`Z` of shape (m, C) and labels
:math:`y_i \\in \\{0, \\dots, C-1\\}` (or rows of class probabilities :math:`Y`):

.. math::

    p_i = \\operatorname{softmax}(z_i), \\qquad
    L = -\\frac{1}{m} \\sum_{i=1}^m \\log p_{i, y_i}, \\qquad
    \\frac{\\partial L}{\\partial Z} = \\frac{1}{m} (P - Y),

where :math:`Y` is the one-hot (or probability) matrix of the labels.  The
forward pass works with :math:`\\log p = z - \\operatorname{logsumexp}(z)`, so
loss and gradient stay finite for logits of any magnitude.

Each backward takes the upstream gradient of the scalar loss first (1 when the
loss is the final output) and returns the gradient with respect to the
predictions or logits only; targets are data and get no gradient.  A backward
checks its upstream gradient and calls its kernel (the same name with a leading
underscore); the forward passes always check, since their targets come from the
caller.
"""

from __future__ import annotations

import torch

from .._checks import check_same_device, check_same_dtype_and_device, check_shape, check_tensor

SoftmaxCECache = tuple[torch.Tensor, torch.Tensor]


def _check_upstream(fn: str, dloss: object, like: torch.Tensor) -> torch.Tensor | float:
    if isinstance(dloss, (int, float)) and not isinstance(dloss, bool):
        return float(dloss)
    if isinstance(dloss, torch.Tensor) and dloss.dim() == 0 and dloss.is_floating_point():
        check_same_dtype_and_device(fn, ("cache", like), ("dloss", dloss))
        return dloss
    raise TypeError(f"{fn}: argument 'dloss' must be a Python number or a 0-d floating tensor, got {dloss!r}")


def _check_predictions(fn: str, name: str, predictions: object) -> None:
    """Check a loss's first argument: a 2-D floating tensor with at least one row (the mean needs one)."""
    check_tensor(fn, name, predictions, ndim=2, floating=True)
    if predictions.shape[0] == 0:
        raise ValueError(f"{fn}: argument '{name}' must hold at least one row, got shape {tuple(predictions.shape)}")


def check_softmax_cross_entropy_labels(fn: str, logits: torch.Tensor, y: object) -> bool:
    """Check the labels' type, shape, dtype and device against the (m, C) logits; return whether they are indices.

    Reads no values, so it costs no host--device synchronisation; :func:`invalid_labels` checks the values.
    """
    check_tensor(fn, "y", y)
    m, C = logits.shape
    if y.dtype == torch.int64:
        check_shape(fn, "y", y, (m,), "one class index per row of the logits")
        check_same_device(fn, ("logits", logits), ("y", y))
        return True
    if y.is_floating_point():
        check_shape(fn, "y", y, (m, C), "rows of class probabilities, like the logits")
        check_same_dtype_and_device(fn, ("logits", logits), ("y", y))
        return False
    raise TypeError(
        f"{fn}: argument 'y' must be int64 class indices of shape ({m},) or floating probability rows "
        f"of shape ({m}, {C}), got dtype {y.dtype}"
    )


def invalid_labels(fn: str, y: torch.Tensor, num_classes: int) -> tuple[torch.Tensor, str]:
    """A 0-d boolean tensor, on ``y``'s device, that is true when the labels are invalid, and the error to raise then.

    Class indices must lie in ``[0, num_classes - 1]``; probability rows must be non-negative and sum to 1.
    Nothing is read back to the host here: the caller decides when to wait for the verdict.
    """
    if y.dtype == torch.int64:
        message = f"{fn}: argument 'y' holds class indices outside [0, {num_classes - 1}] for logits with C = {num_classes} columns"
        return ((y < 0) | (y >= num_classes)).any(), message
    row_sums = y.sum(dim=1)
    message = f"{fn}: argument 'y' given as probability rows must be non-negative with rows summing to 1"
    return (y < 0).any() | ~torch.isclose(row_sums, torch.ones_like(row_sums)).all(), message


def softmax_cross_entropy_targets(fn: str, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Return the (m, C) target matrix Y for labels given as indices or probability rows, after checking them."""
    indices = check_softmax_cross_entropy_labels(fn, logits, y)
    C = logits.shape[1]
    if indices and y.numel() > 0:
        lowest, highest = (int(v) for v in torch.aminmax(y))  # one pass, and one wait for a GPU
        if lowest < 0 or highest >= C:
            raise ValueError(
                f"{fn}: argument 'y' holds class indices outside [0, {C - 1}] "
                f"(min {lowest}, max {highest}) for logits with C = {C} columns"
            )
    elif not indices:
        failed, message = invalid_labels(fn, y, C)
        if bool(failed):
            raise ValueError(message)
    # one-hot rows made from the labels alone: under torch.func.vmap over the logits they stay unbatched
    return torch.nn.functional.one_hot(y, C).to(logits.dtype) if indices else y


def softmax_cross_entropy_forward(logits: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, SoftmaxCECache]:
    """Return the mean cross-entropy of ``softmax(logits)`` against ``y`` and the cache ``(p, Y)``.

    ``logits`` (m, C); ``y`` int64 (m,) class indices, or floating (m, C) probability rows.
    """
    fn = "softmax_cross_entropy_forward"
    _check_predictions(fn, "logits", logits)
    return _softmax_cross_entropy_forward(fn, logits, y)


def _softmax_cross_entropy_forward(fn: str, logits: torch.Tensor, y: object) -> tuple[torch.Tensor, SoftmaxCECache]:
    """:func:`softmax_cross_entropy_forward` for checked logits; errors in ``y`` are reported under the name ``fn``."""
    m = logits.shape[0]
    Y = softmax_cross_entropy_targets(fn, logits, y)  # (m, C)
    # log p = z - logsumexp(z), row by row: torch.log_softmax subtracts the row maximum first, so
    # nothing overflows, and does it in one fused kernel
    log_p = torch.log_softmax(logits, dim=1)  # (m, C)
    loss = (Y * log_p).sum().mul_(-1.0 / m)  # () = -(1/m) sum_i sum_j Y_ij log p_ij
    return loss, (log_p.exp(), Y)


def _softmax_cross_entropy_backward(dloss: torch.Tensor | float, cache: SoftmaxCECache) -> torch.Tensor:
    p, Y = cache
    # forward: loss = -(1/m) sum(Y * log softmax(logits))
    return (p - Y) * (dloss / p.shape[0])


def softmax_cross_entropy_backward(dloss: torch.Tensor | float, cache: SoftmaxCECache) -> torch.Tensor:
    """Return ``dlogits = dloss * (p - Y) / m``."""
    dloss = _check_upstream("softmax_cross_entropy_backward", dloss, cache[0])
    return _softmax_cross_entropy_backward(dloss, cache)


def check_mse_targets(fn: str, y_hat: torch.Tensor, y: object) -> None:
    """Check that the targets ``y`` are floating, of the predictions' shape, dtype and device."""
    check_tensor(fn, "y", y, floating=True)
    check_same_dtype_and_device(fn, ("y_hat", y_hat), ("y", y))
    check_shape(fn, "y", y, tuple(y_hat.shape), "the shape of the predictions y_hat")


def mse_forward(y_hat: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Return ``L = sum((y_hat - y)**2) / (2m)`` and the cache ``y_hat - y``.

    ``y_hat`` and ``y`` have the same shape (m, k).
    """
    fn = "mse_forward"
    _check_predictions(fn, "y_hat", y_hat)
    return _mse_forward(fn, y_hat, y)


def _mse_forward(fn: str, y_hat: torch.Tensor, y: object) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`mse_forward` for checked predictions; errors in ``y`` are reported under the name ``fn``."""
    check_mse_targets(fn, y_hat, y)
    residual = y_hat - y  # (m, k)
    loss = (residual * residual).sum() / (2 * y_hat.shape[0])  # ()
    return loss, residual


def _mse_backward(dloss: torch.Tensor | float, residual: torch.Tensor) -> torch.Tensor:
    # forward: loss = sum(residual**2) / (2m)
    return residual * (dloss / residual.shape[0])


def mse_backward(dloss: torch.Tensor | float, cache: torch.Tensor) -> torch.Tensor:
    """Return ``dy_hat = dloss * (y_hat - y) / m``."""
    dloss = _check_upstream("mse_backward", dloss, cache)
    return _mse_backward(dloss, cache)


LOSSES = {
    "softmax_ce": (softmax_cross_entropy_forward, softmax_cross_entropy_backward),
    "mse": (mse_forward, mse_backward),
}
"""Forward/backward pairs by name, as ``MLP(loss=...)`` accepts them."""

_FORWARDS_NAMED_BY_CALLER = {"softmax_ce": _softmax_cross_entropy_forward, "mse": _mse_forward}
"""The forward functions of :data:`LOSSES` for checked predictions, ``forward(fn, predictions, y)``: a
model that calls them reports errors in its targets ``y`` under its own name ``fn``."""
