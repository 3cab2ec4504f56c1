"""A fully connected network trained by the backpropagation recursion: the reference that reads like the math.

Notation (rows are samples, m of them):

.. math::

    A^0 = X, \\qquad
    Z^l = A^{l-1} (W^l)^\\top + \\mathbf{1}_m (b^l)^\\top, \\qquad
    A^l = \\sigma(Z^l) \\quad (l < L), \\qquad
    \\hat Y = Z^L \\text{ (or } \\operatorname{softmax}(Z^L)\\text{)}.

Backward, with :math:`\\Delta^l = \\partial \\mathcal{L} / \\partial Z^l`:

.. math::

    \\Delta^L = \\tfrac{1}{m}(\\hat Y - Y), \\qquad
    \\Delta^{l} = \\big(\\Delta^{l+1} W^{l+1}\\big) \\odot \\sigma'(Z^{l}), \\qquad
    \\frac{\\partial \\mathcal{L}}{\\partial W^l} = (\\Delta^l)^\\top A^{l-1}, \\qquad
    \\frac{\\partial \\mathcal{L}}{\\partial b^l} = (\\Delta^l)^\\top \\mathbf{1}_m.

The output layer is affine: with ``loss="mse"`` the prediction is :math:`Z^L` itself, with
``loss="softmax_ce"`` the softmax lives inside the loss, which is what makes
:math:`\\Delta^L = (P - Y)/m`.

Two routes compute the same gradients:

* the **reference**, in this module: :meth:`bplib.MLP.forward_with_caches` and :meth:`bplib.MLP.backward` chain the
  public pairs of :mod:`bplib.functional` layer by layer -- in the backward pass, each layer's activation
  backward and then its linear backward, on that layer's own caches -- and allocate every result.  The
  chapters teach from it, and it is a pure function of the parameters: pass ``params=`` to evaluate the
  network at other parameters without touching its own (:meth:`bplib.MLP.loss`, for gradient checking);
* the **fast path**, :meth:`bplib.MLP.loss_and_grads`, in :mod:`bplib.mlp_fast`: the same arithmetic with
  the argument checks done once, activations written into buffers the step owns, fused kernels, and no
  device synchronisation on a GPU.  It is tested equal to the reference to rounding.

Parameterisations: ``"standard"`` stores :math:`W^l, b^l` as they act; ``"ntk"`` (Jacot, Gabriel &
Hongler, 2018) stores standard normal variables and scales them in the forward pass,

.. math::

    Z^l = A^{l-1} \\Big(\\sqrt{\\sigma_w^2 / n_{l-1}}\\; W^l\\Big)^\\top + \\mathbf{1}_m \\big(\\sigma_b\\, b^l\\big)^\\top,

so that the gradients are with respect to the stored variables (the chain rule multiplies them by
the same factors).

Not done here: no autograd, no optimiser (see :mod:`bplib.optim`), no layers other than affine and
an element-wise activation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from . import init
from ._checks import (
    argument,
    check_choice,
    check_floating_dtype,
    check_generator,
    check_real,
    check_same_dtype_and_device,
    check_shape,
    check_tensor,
)
from .functional.activations import ACTIVATIONS
from .functional.linear import linear_backward, linear_forward
from .functional.losses import _FORWARDS_NAMED_BY_CALLER, LOSSES
from .mlp_fast import DeferredCheck
from .mlp_fast import loss_and_grads as fast_loss_and_grads
from .params import MLPParams

PARAMETERIZATIONS = ("standard", "ntk")

LayerCache = tuple[tuple[torch.Tensor, torch.Tensor], torch.Tensor | None]
"""What one layer keeps for the backward pass, as the pair ``(linear_cache, activation_cache)``.

The linear cache is :math:`(A^{l-1}, W^l)`, with the weights as they act (scaled in the NTK
parameterisation); the activation cache is the activation's output, ``None`` for the affine output layer.
"""


def _scaled(factor: float, t: torch.Tensor) -> torch.Tensor:
    """``factor * t``, and ``t`` itself when the factor is 1 (the standard parameterisation copies nothing)."""
    return t if factor == 1.0 else factor * t




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
        Source of randomness for the initial parameters.
    parameterization:
        ``"standard"``: weights drawn by He's rule for ReLU and Xavier's otherwise, biases 0.
        ``"ntk"``: every weight and bias drawn from :math:`N(0, 1)` and scaled in the forward pass
        by :math:`\\sqrt{\\sigma_w^2 / n_{l-1}}` and :math:`\\sigma_b` (module docstring).
    sigma_w2, sigma_b2:
        :math:`\\sigma_w^2` and :math:`\\sigma_b^2` of the NTK parameterisation (not used by the standard one).

    Attributes
    ----------
    weights:
        ``weights[l]`` is :math:`W^{l+1}` as stored, shape ``(sizes[l+1], sizes[l])``.
    biases:
        ``biases[l]`` is :math:`b^{l+1}` as stored, shape ``(sizes[l+1],)``.
    loss_name:
        The loss, ``"softmax_ce"`` or ``"mse"`` (the method :meth:`loss` computes it).
    scales:
        ``scales[l]`` is the pair of factors :math:`(c_w, c_b)` layer :math:`l + 1` applies to its stored
        weights and bias: :math:`(\\sqrt{\\sigma_w^2/n_l}, \\sigma_b)` in the NTK parameterisation, ``(1, 1)``
        in the standard one.
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
        parameterization: str = "standard",
        sigma_w2: float = 1.0,
        sigma_b2: float = 0.0,
    ) -> None:
        fn = "MLP"
        sizes = list(sizes)
        if len(sizes) < 2 or not all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in sizes):
            raise ValueError(f"{fn}: argument 'sizes' must list at least two positive integers, got {sizes!r}")
        self.activation = check_choice(fn, "activation", activation, tuple(ACTIVATIONS))
        self.loss_name = check_choice(fn, "loss", loss, tuple(LOSSES))
        self.parameterization = check_choice(fn, "parameterization", parameterization, PARAMETERIZATIONS)
        self.sigma_w2 = check_real(fn, argument("sigma_w2"), sigma_w2, 0.0, why="a variance")
        self.sigma_b2 = check_real(fn, argument("sigma_b2"), sigma_b2, 0.0, why="a variance")
        check_floating_dtype(fn, dtype)
        check_generator(fn, generator)
        self.sizes = sizes
        self._deferred_check = DeferredCheck()  # the fast path's label check on a GPU
        shapes = list(zip(sizes[1:], sizes[:-1]))  # (n_l, n_{l-1})
        if parameterization == "ntk":
            self.weights = [
                torch.empty(shape, dtype=dtype, device=device).normal_(generator=generator) for shape in shapes
            ]
            self.biases = [torch.empty(n, dtype=dtype, device=device).normal_(generator=generator) for n in sizes[1:]]
            self.scales = [(math.sqrt(self.sigma_w2 / n_in), math.sqrt(self.sigma_b2)) for _, n_in in shapes]
        else:
            draw = init.he if activation == "relu" else init.xavier
            self.weights = [draw(shape, generator=generator, dtype=dtype, device=device) for shape in shapes]
            self.biases = [self.weights[0].new_zeros(n) for n in sizes[1:]]
            self.scales = [(1.0, 1.0)] * len(shapes)

    # ------------------------------------------------------------------------------------------ parameters

    @property
    def parameters(self) -> MLPParams:
        """The stored parameters, :math:`W^1, b^1, \\dots, W^L, b^L`, as an :class:`~bplib.params.MLPParams`.

        These are the network's own tensors: an optimiser that updates them in place trains the network.
        """
        return MLPParams.from_layers(self.weights, self.biases)

    def _params(self, fn: str, params: MLPParams | None) -> MLPParams:
        """The network's own parameters, or ``params`` after checking that they fit this network."""
        if params is None:
            return self.parameters
        if not isinstance(params, MLPParams):
            raise TypeError(
                f"{fn}: argument 'params' must be an MLPParams (e.g. net.parameters, or unflatten(theta) "
                f"from bplib.flatten(net.parameters)), got {type(params).__name__}"
            )
        own = self.parameters
        if len(params) != len(own):
            raise ValueError(f"{fn}: argument 'params' must hold {len(own)} tensors for this network, got {len(params)}")
        for name, p, q in zip(own.names, params, own):
            check_shape(fn, f"params ({name})", p, tuple(q.shape), f"the shape of {name}")
            check_same_dtype_and_device(fn, ("params (W1)", params[0]), (f"params ({name})", p))
        return params

    def _check_input(self, fn: str, x: object, params: MLPParams | None = None) -> torch.Tensor:
        """Check the input against the network's widths and the dtype and device of its (or the given) parameters."""
        check_tensor(fn, "x", x, ndim=2, floating=True)
        check_shape(fn, "x", x, (None, self.sizes[0]), f"batch size, n_0 = {self.sizes[0]} inputs")
        where = ("weights", self.weights[0]) if params is None else ("params (W1)", params[0])
        check_same_dtype_and_device(fn, where, ("x", x))
        return x

    def _loss_forward(self, fn: str, out: torch.Tensor, y: object) -> tuple[torch.Tensor, object]:
        """The loss's forward function on the network's output ``out``, its errors named after the method ``fn``."""
        if out.shape[0] == 0:
            raise ValueError(f"{fn}: argument 'x' must hold at least one row, got shape {(0, self.sizes[0])}")
        return _FORWARDS_NAMED_BY_CALLER[self.loss_name](fn, out, y)

    # ------------------------------------------------------------------------------------- the reference

    def forward_with_caches(
        self, x: torch.Tensor, *, params: MLPParams | None = None
    ) -> tuple[torch.Tensor, list[LayerCache]]:
        """Return :math:`Z^L` and, for every layer, what its backward pass needs.

        ``caches[l - 1] = (linear_cache, activation_cache)`` belongs to layer :math:`l`: the linear cache
        :math:`(A^{l-1}, W^l)` and the activation cache (the activation's output :math:`A^l`; ``None``
        for the affine output layer).  This is the memory backpropagation trades for speed.
        """
        return self._forward_with_caches("MLP.forward_with_caches", x, params)

    def _forward_with_caches(
        self, fn: str, x: torch.Tensor, params: MLPParams | None
    ) -> tuple[torch.Tensor, list[LayerCache]]:
        checked = self._params(fn, params)
        x = self._check_input(fn, x, params)
        params = checked
        activation_forward, _ = ACTIVATIONS[self.activation]
        last = len(params.layers) - 1
        a, caches = x, []  # A^0 = X, (m, n_0)
        for l, ((W, b), (c_w, c_b)) in enumerate(zip(params.layers, self.scales)):
            z, linear_cache = linear_forward(a, _scaled(c_w, W), _scaled(c_b, b))  # Z^l, (m, n_l)
            if l == last:
                a, activation_cache = z, None  # affine output layer
            else:
                a, activation_cache = activation_forward(z)  # A^l = sigma(Z^l)
            caches.append((linear_cache, activation_cache))
        return a, caches

    def backward(self, dout: torch.Tensor, caches: Sequence[LayerCache]) -> MLPParams:
        r"""Return the gradients, backpropagating ``dout``, which is :math:`\Delta^L`.

        For :math:`l = L, \dots, 1`, on layer :math:`l`'s own caches: the activation
        backward turns :math:`\partial L/\partial A^l` into
        :math:`\Delta^l = \partial L/\partial A^l \odot \sigma'(Z^l)` (for the output
        layer :math:`\Delta^L` is ``dout`` itself), and the linear backward turns
        :math:`\Delta^l` into :math:`\partial L/\partial A^{l-1} = \Delta^l W^l` and
        the gradients of :math:`W^l` and :math:`b^l`.  Returns them as an
        :class:`~bplib.params.MLPParams`, in the order of :attr:`parameters`.
        """
        _, activation_backward = ACTIVATIONS[self.activation]
        dweights, dbiases = [], []
        da = dout  # dL/dA^L = dL/dZ^L: the output layer is affine
        layers = zip(reversed(caches), reversed(self.scales))
        for (linear_cache, activation_cache), (c_w, c_b) in layers:
            if activation_cache is None:  # the output layer: Delta^L = dL/dZ^L
                dz = da
            else:  # Delta^l = dL/dA^l * sigma'(Z^l)
                dz = activation_backward(da, activation_cache)
            # Delta^l W^l, (Delta^l)^T A^{l-1}, (Delta^l)^T 1
            da, dW, db = linear_backward(dz, linear_cache)
            dweights.append(_scaled(c_w, dW))  # the scales of the NTK parameterisation
            dbiases.append(_scaled(c_b, db))
        return MLPParams.from_layers(dweights[::-1], dbiases[::-1])

    def forward(self, x: torch.Tensor, *, params: MLPParams | None = None) -> torch.Tensor:
        """Return the output layer :math:`Z^L`, shape (m, n_L): predictions for MSE, logits for softmax-CE."""
        out, _ = self._forward_with_caches("MLP.forward", x, params)
        return out

    def loss(self, x: torch.Tensor, y: torch.Tensor, *, params: MLPParams | None = None) -> torch.Tensor:
        """Return the loss of the batch ``(x, y)``, a 0-d tensor, at the network's parameters or at ``params``.

        A pure function of ``params``: with ``theta, unflatten = bplib.flatten(net.parameters)``,
        ``lambda t: net.loss(x, y, params=unflatten(t))`` is the loss as a function of one vector,
        which :mod:`bplib.gradcheck` differentiates numerically (in batches, by ``torch.func.vmap``).
        """
        out, _ = self._forward_with_caches("MLP.loss", x, params)
        value, _ = self._loss_forward("MLP.loss", out, y)
        return value

    def reference_loss_and_grads(
        self, x: torch.Tensor, y: torch.Tensor, *, params: MLPParams | None = None
    ) -> tuple[torch.Tensor, MLPParams]:
        """Return ``(loss, grads)`` by the reference: one forward pass, the loss's pair, one backward pass.

        ``grads`` is an :class:`~bplib.params.MLPParams` in the order of :attr:`parameters`:
        ``grads.weights[l - 1]`` is :math:`\\partial \\mathcal{L}/\\partial W^l`.
        """
        fn = "MLP.reference_loss_and_grads"
        _, loss_backward = LOSSES[self.loss_name]
        out, caches = self._forward_with_caches(fn, x, params)  # step 1: forward
        loss, loss_cache = self._loss_forward(fn, out, y)
        dout = loss_backward(1.0, loss_cache)  # step 2: Delta^L
        return loss, self.backward(dout, caches)  # steps 3 and 4: the recursion and the gradients

    # ------------------------------------------------------------------------------------- the fast path

    def loss_and_grads(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, MLPParams]:
        """Return ``(loss, grads)`` as :meth:`reference_loss_and_grads` does, by the fast path.

        The same arithmetic, organised for speed (:mod:`bplib.mlp_fast`): inputs checked once, activations
        written into buffers the step owns, no host--device synchronisation on a GPU (labels out of range
        are reported by the next call on a GPU, by this one on the CPU).  ``grads`` goes straight into an
        optimiser: ``opt.step(grads)`` with ``opt`` built on :attr:`parameters`.
        """
        return fast_loss_and_grads(self, self._check_input("MLP.loss_and_grads", x), y)
