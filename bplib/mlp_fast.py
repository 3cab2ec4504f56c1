"""The fast path of :meth:`bplib.MLP.loss_and_grads`: the reference's arithmetic, organised for speed.

:mod:`bplib.mlp` is the reference: public pairs, chained layer by layer, every result freshly
allocated.  This module computes the same loss and gradients (tested equal to rounding) with what
makes a training step fast:

* **checks once**: the input and the labels are checked on the way in; everything after runs the
  unchecked kernels of :mod:`bplib.functional` (the public functions minus their checks);
* **no new memory for activations**: each activation is written over its pre-activation
  (``out=``), and each :math:`\\partial \\mathcal{L} / \\partial A` over itself when it becomes
  :math:`\\Delta`; a cache is dropped as soon as the backward pass has used it;
* **fused kernels**: the bias enters the matrix product (``addmm``), ReLU's backward is one pass
  (``threshold_backward``), the softmax cross-entropy and its gradient come from one ``log_softmax``;
* **no host--device synchronisation**: checking that labels lie in range means reading a value
  computed on the device, which on a GPU makes the host wait for everything queued before it.  Here the
  verdict is copied to pinned host memory without waiting and read at the start of the *next* call,
  long after it has arrived; bad labels are reported then, with the same message, and the step that
  saw them used labels clamped into range.  On the CPU the verdict is read at once.

The loop pairs layer :math:`l`'s linear backward with layer :math:`l-1`'s activation backward (the
product :math:`\\Delta^l W^l` is written over by :math:`\\Delta^{l-1}` at once), where the reference
keeps each layer's two backward steps together.

Not done here: nothing the reference does not do; no autograd support (the in-place writes would
break a recorded graph: differentiate :meth:`bplib.MLP.forward` instead).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from .functional.activations import ACTIVATION_KERNELS
from .functional.losses import check_mse_targets, check_softmax_cross_entropy_labels, invalid_labels
from .params import MLPParams

if TYPE_CHECKING:  # pragma: no cover
    from .mlp import MLP


class DeferredCheck:
    """A verdict computed on the device, raised as a ``ValueError`` without making the host wait for it.

    :meth:`submit` takes a 0-d boolean tensor (true: the check failed) and the message to raise.
    On the CPU the verdict is read at once.  On a GPU it is copied to pinned host memory
    asynchronously, an event marks the copy, and :meth:`raise_pending` -- called at the start of the next
    step -- waits for that event only (by then long complete) and raises if the check failed.
    """

    def __init__(self) -> None:
        self._pending: tuple[torch.Tensor, torch.cuda.Event, str] | None = None

    def submit(self, failed: torch.Tensor, message: str) -> None:
        """Raise now (CPU) or next time (GPU) if ``failed`` is true."""
        if failed.device.type != "cuda":
            if bool(failed):
                raise ValueError(message)
            return
        verdict = torch.empty((), dtype=torch.bool, pin_memory=True)
        verdict.copy_(failed, non_blocking=True)
        done = torch.cuda.Event()
        done.record()
        self._pending = (verdict, done, message)

    def raise_pending(self) -> None:
        """Raise the error a previous :meth:`submit` left on a GPU, if its check failed."""
        if self._pending is None:
            return
        verdict, done, message = self._pending
        self._pending = None
        done.synchronize()
        if bool(verdict):
            raise ValueError(f"{message} (in the previous call: on a GPU labels are checked without waiting for it)")


def _softmax_cross_entropy(logits: torch.Tensor, y: torch.Tensor, indices: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Loss and :math:`\\Delta^L = (P - Y)/m`, both from one ``log_softmax``, the gradient written over it."""
    m, C = logits.shape
    log_p = torch.log_softmax(logits, dim=1)  # (m, C)
    if indices:
        y = y.clamp(0, C - 1).unsqueeze(1)  # (m, 1); in range already unless the deferred check will say otherwise
        loss = log_p.gather(1, y).sum().mul_(-1.0 / m)  # () = -(1/m) sum_i log p_{i, y_i}
        dz = log_p.exp_().scatter_add_(1, y, y.new_full(y.shape, -1, dtype=log_p.dtype))  # P - Y
    else:
        loss = (y * log_p).sum().mul_(-1.0 / m)  # () = -(1/m) sum_ij Y_ij log p_ij
        dz = log_p.exp_().sub_(y)  # P - Y
    return loss, dz.mul_(1.0 / m)


def _mse(out: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Loss :math:`\\lVert \\hat Y - Y \\rVert^2 / (2m)` and :math:`\\Delta^L = (\\hat Y - Y)/m`, written over the output."""
    m = out.shape[0]
    residual = out.sub_(y)  # (m, n_L)
    loss = torch.linalg.vector_norm(residual).square_().div_(2 * m)  # ()
    return loss, residual.mul_(1.0 / m)


def loss_and_grads(
    net: MLP, x: torch.Tensor, y: torch.Tensor
) -> tuple[torch.Tensor, MLPParams]:
    """One forward and one backward pass of ``net`` on the batch ``(x, y)``.

    ``x`` has been checked by the caller.

    Returns what :meth:`bplib.MLP.reference_loss_and_grads` returns, computed as the
    module docstring says.
    """
    fn = "MLP.loss_and_grads"
    net._deferred_check.raise_pending()
    m = x.shape[0]
    if m == 0:
        raise ValueError(
            f"{fn}: argument 'x' must hold at least one row, got shape {tuple(x.shape)}"
        )
    activation_forward, activation_backward = ACTIVATION_KERNELS[net.activation]
    weights, biases, scales = net.weights, net.biases, net.scales
    L = len(weights)

    # forward: Z^l = c_b b^l + c_w A^{l-1} (W^l)^T in one addmm,
    # then A^l = sigma(Z^l) written over Z^l
    caches = []  # caches[l] = (A^{l-1}, A^l), layer l's input and activation (or None)
    a = x
    for l, (W, b, (c_w, c_b)) in enumerate(zip(weights, biases, scales)):
        z = torch.addmm(b, a, W.T, beta=c_b, alpha=c_w)  # (m, n_l)
        activation = None if l == L - 1 else activation_forward(z, out=z)[0]
        caches.append((a, activation))
        a = z

    # the targets: shapes and types against the output now,
    # values by the deferred check (no wait for a GPU)
    if net.loss_name == "softmax_ce":
        indices = check_softmax_cross_entropy_labels(fn, a, y)
        net._deferred_check.submit(*invalid_labels(fn, y, net.sizes[-1]))
        loss, dz = _softmax_cross_entropy(a, y, indices)  # Delta^L, written over Z^L
    else:
        check_mse_targets(fn, a, y)
        loss, dz = _mse(a, y)
    del a

    # backward: dW^l = c_w (Delta^l)^T A^{l-1}, db^l = c_b (Delta^l)^T 1,
    # Delta^{l-1} = (c_w Delta^l W^l) * sigma'
    dweights, dbiases = [None] * L, [None] * L
    for l in range(L - 1, -1, -1):
        a_prev, _ = caches.pop()  # dropped once used: its memory serves the next ones
        W, (c_w, c_b) = weights[l], scales[l]
        dweights[l] = torch.mm(dz.T, a_prev)  # (n_l, n_{l-1})
        dbiases[l] = dz.sum(dim=0)  # (n_l,)
        if c_w != 1.0:
            dweights[l].mul_(c_w)
        if c_b != 1.0:
            dbiases[l].mul_(c_b)
        if l > 0:
            da = torch.mm(dz, W)  # (m, n_{l-1}) = dL/dA^{l-1} / c_w
            if c_w != 1.0:
                da.mul_(c_w)
            # Delta^{l-1}, written over da
            dz = activation_backward(da, caches[l - 1][1], out=da)
        del a_prev
    return loss, MLPParams.from_layers(dweights, dbiases)
