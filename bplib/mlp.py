"""A fully connected network trained by the backpropagation recursion.

Notation (rows are samples, m of them):

.. math::

    A^0 = X, \\qquad
    Z^l = A^{l-1} (W^l)^\\top + \\mathbf{1}_m (b^l)^\\top, \\qquad
    A^l = \\sigma(Z^l) \\quad (l < L), \\qquad
    \\hat Y = Z^L \\text{ (or } \\operatorname{softmax}(Z^L)\\text{)}.

Backward, with :math:`\\Delta^l = \\partial L / \\partial Z^l`:

.. math::

    \\Delta^L = \\tfrac{1}{m}(\\hat Y - Y), \\qquad
    \\Delta^{l} = \\big(\\Delta^{l+1} W^{l+1}\\big) \\odot \\sigma'(Z^{l}), \\qquad
    \\frac{\\partial L}{\\partial W^l} = (\\Delta^l)^\\top A^{l-1}, \\qquad
    \\frac{\\partial L}{\\partial b^l} = (\\Delta^l)^\\top \\mathbf{1}_m.

The output layer is affine: with ``loss="mse"`` the prediction is :math:`Z^L`
itself, with ``loss="softmax_ce"`` the softmax lives inside the loss, which is
what makes :math:`\\Delta^L = (P - Y)/m`.

The input and the targets are checked once, on the way in (the loss's forward
pass checks the targets); every other tensor is made here with the right shape,
dtype and device, so the layers run as unchecked kernels
(:mod:`bplib.functional`'s functions minus their argument checks).

Not done here: no autograd, no optimiser (see :mod:`bplib.optim`), no layers
other than affine + element-wise activation.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from . import init
from ._checks import check_choice, check_same_dtype_and_device, check_shape, check_tensor
from .functional.activations import ACTIVATION_KERNELS, ACTIVATIONS
from .functional.linear import _linear_backward, _linear_forward
from .functional.losses import LOSS_BACKWARD_KERNELS, LOSSES


class MLP:
    """Multi-layer perceptron with hand-written backpropagation.

    Parameters
    ----------
    sizes:
        Layer widths ``[n_0, n_1, ..., n_L]``: ``n_0`` inputs, ``n_L`` outputs, at least two entries.
    activation:
        ``"relu"``, ``"sigmoid"`` or ``"tanh"``, applied after every layer except the last.
    loss:
        ``"softmax_ce"`` (labels as int64 class indices or probability rows) or ``"mse"``.
    dtype, device:
        Where the parameters live; inputs must match them.
    generator:
        Source of randomness for the initial weights (He for ReLU, Xavier otherwise; biases start at 0).

    Attributes
    ----------
    weights:
        ``weights[l]`` is :math:`W^{l+1}`, shape ``(sizes[l+1], sizes[l])``.
    biases:
        ``biases[l]`` is :math:`b^{l+1}`, shape ``(sizes[l+1],)``.
    """

    def __init__(
        self,
        sizes: Sequence[int],
        activation: str = "relu",
        loss: str = "softmax_ce",
        *,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        fn = "MLP"
        sizes = list(sizes)
        if len(sizes) < 2 or not all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in sizes):
            raise ValueError(f"{fn}: argument 'sizes' must list at least two positive integers, got {sizes!r}")
        self.activation = check_choice(fn, "activation", activation, tuple(ACTIVATIONS))  # same names as the kernels
        self.loss = check_choice(fn, "loss", loss, tuple(LOSSES))
        if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
            raise TypeError(f"{fn}: argument 'dtype' must be a floating torch.dtype, got {dtype!r}")
        self.sizes = sizes
        draw = init.he if activation == "relu" else init.xavier
        self.weights = [
            draw((n_out, n_in), generator=generator, dtype=dtype, device=device)
            for n_in, n_out in zip(sizes[:-1], sizes[1:])
        ]
        self.biases = [self.weights[0].new_zeros(n_out) for n_out in sizes[1:]]

    @property
    def parameters(self) -> list[torch.Tensor]:
        """Weights and biases interleaved, ``[W^1, b^1, ..., W^L, b^L]``."""
        return [p for pair in zip(self.weights, self.biases) for p in pair]

    def _check_input(self, fn: str, x: object) -> torch.Tensor:
        check_tensor(fn, "x", x, ndim=2, floating=True)
        check_shape(fn, "x", x, (None, self.sizes[0]), f"batch size, n_0 = {self.sizes[0]} inputs")
        check_same_dtype_and_device(fn, ("weights", self.weights[0]), ("x", x))
        return x

    def _forward(self, x: torch.Tensor, keep_caches: bool) -> tuple[torch.Tensor, list]:
        act_forward, _ = ACTIVATION_KERNELS[self.activation]
        caches = []
        a = x  # (m, n_0)
        last = len(self.weights) - 1
        for l, (W, b) in enumerate(zip(self.weights, self.biases)):
            z, linear_cache = _linear_forward(a, W, b)  # (m, n_{l+1})
            if l == last:
                a, act_cache = z, None  # affine output layer
            else:
                # z is not needed again: overwrite it with a, unless autograd records this pass and keeps z
                a, act_cache = act_forward(z, out=None if z.requires_grad else z)
            if keep_caches:
                caches.append((linear_cache, act_cache))
        return a, caches

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the output layer :math:`Z^L`, shape (m, n_L): predictions for MSE, logits for softmax-CE."""
        out, _ = self._forward(self._check_input("MLP.forward", x), keep_caches=False)
        return out

    def forward_with_caches(self, x: torch.Tensor) -> tuple[torch.Tensor, list]:
        """Return :math:`Z^L` and what the backward pass needs: ``caches[l] = (linear_cache, activation_cache)``.

        ``linear_cache`` is :math:`(A^{l}, W^{l+1})` and ``activation_cache`` is :math:`A^{l+1}` (``None`` for the
        affine output layer), 0-based as in :attr:`weights`: this is the memory backpropagation trades for speed.
        """
        return self._forward(self._check_input("MLP.forward_with_caches", x), keep_caches=True)

    def loss_and_grads(
        self, x: torch.Tensor, y: torch.Tensor
    ) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
        """Return ``(loss, dweights, dbiases)`` by one forward and one backward pass.

        ``dweights[l]`` and ``dbiases[l]`` have the shapes of ``weights[l]`` and ``biases[l]``.
        """
        x = self._check_input("MLP.loss_and_grads", x)
        loss_forward, _ = LOSSES[self.loss]
        loss_backward = LOSS_BACKWARD_KERNELS[self.loss]
        _, act_backward = ACTIVATION_KERNELS[self.activation]

        out, caches = self._forward(x, keep_caches=True)
        loss, loss_cache = loss_forward(out, y)

        dweights: list[torch.Tensor] = [None] * len(caches)  # type: ignore[list-item]
        dbiases: list[torch.Tensor] = [None] * len(caches)  # type: ignore[list-item]
        dz = loss_backward(1.0, loss_cache)  # Delta^L, (m, n_L)
        del loss_cache, out
        for l in range(len(caches) - 1, -1, -1):
            linear_cache, _ = caches.pop()  # dropped once used, so its memory serves the next buffers
            da, dweights[l], dbiases[l] = _linear_backward(dz, linear_cache, input_grad=l > 0)
            del linear_cache
            if l > 0:
                _, previous_act_cache = caches[l - 1]
                dz = act_backward(da, previous_act_cache, out=da)  # Delta^{l}, (m, n_l), written over da
        return loss, dweights, dbiases
