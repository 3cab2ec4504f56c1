"""Affine layer: forward and backward side by side.

Rows are samples.  For a batch ``x`` of shape (m, n_in), weights ``W`` of shape
(n_out, n_in) and bias ``b`` of shape (n_out,)

.. math::

    Z = X W^\\top + \\mathbf{1}_m b^\\top,

the batched form of the book's :math:`z^l = W^l a^{l-1} + b^l`.  With
:math:`\\Delta = \\partial L / \\partial Z` the backward pass is

.. math::

    \\frac{\\partial L}{\\partial X} = \\Delta W, \\qquad
    \\frac{\\partial L}{\\partial W} = \\Delta^\\top X, \\qquad
    \\frac{\\partial L}{\\partial b} = \\Delta^\\top \\mathbf{1}_m.

Each public function checks its arguments and calls a kernel of the same name
with a leading underscore; ``bplib.MLP``, which checks its inputs once and builds
every other tensor itself, calls the kernels directly.

Not done here: no autograd, no in-place updates of the arguments, no support
for inputs of rank other than 2 (flatten them first).
"""

from __future__ import annotations

import torch

from .._checks import check_same_dtype_and_device, check_shape, check_tensor

LinearCache = tuple[torch.Tensor, torch.Tensor]


def _linear_forward(x: torch.Tensor, W: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, LinearCache]:
    z = torch.addmm(b, x, W.T)  # (m, n_out), the bias added inside the matrix product
    return z, (x, W)


def _linear_backward(
    dz: torch.Tensor, cache: LinearCache, input_grad: bool
) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor]:
    x, W = cache
    # forward: z = x @ W.T + b
    dx = dz @ W if input_grad else None  # (m, n_in)
    dW = dz.T @ x  # (n_out, n_in)
    db = dz.sum(dim=0)  # (n_out,)
    return dx, dW, db


def linear_forward(x: torch.Tensor, W: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, LinearCache]:
    """Return ``z = x @ W.T + b`` and the cache ``(x, W)`` the backward pass needs.

    Shapes: ``x`` (m, n_in), ``W`` (n_out, n_in), ``b`` (n_out,) -> ``z`` (m, n_out).
    """
    fn = "linear_forward"
    check_tensor(fn, "x", x, ndim=2, floating=True)
    check_tensor(fn, "W", W, ndim=2, floating=True)
    check_tensor(fn, "b", b, ndim=1, floating=True)
    check_same_dtype_and_device(fn, ("x", x), ("W", W), ("b", b))
    n_out, n_in = W.shape
    check_shape(fn, "x", x, (None, n_in), "batch size, n_in = W.shape[1]")
    check_shape(fn, "b", b, (n_out,), "n_out = W.shape[0]")
    return _linear_forward(x, W, b)


def linear_backward(
    dz: torch.Tensor, cache: LinearCache, *, input_grad: bool = True
) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor]:
    """Return ``(dx, dW, db)`` given ``dz = dL/dz`` of shape (m, n_out).

    ``dx`` is ``None`` when ``input_grad=False``: the first layer of a network
    needs no gradient with respect to the data, and skipping it saves one
    matrix product.
    """
    x, W = cache
    fn = "linear_backward"
    check_tensor(fn, "dz", dz, ndim=2, floating=True)
    check_same_dtype_and_device(fn, ("x (from cache)", x), ("dz", dz))
    check_shape(fn, "dz", dz, (x.shape[0], W.shape[0]), "batch size, n_out of the forward pass")
    return _linear_backward(dz, cache, input_grad)
