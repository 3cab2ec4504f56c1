r"""A network built from layers, chained: :class:`bplib.Sequential`, the layered companion of :class:`bplib.MLP`.

``Sequential(layers, loss)`` applies the layers of :mod:`bplib.layers` in order and ends in a loss of
:mod:`bplib.functional.losses`.  With :math:`f_k` the :math:`k`-th layer and :math:`\theta_k` its
parameters,

.. math::

    A_0 = X, \qquad A_{k+1} = f_k(A_k; \theta_k), \qquad \mathcal{L} = \ell(A_K, Y),

and the backward pass runs the layers' backward methods in reverse,
:math:`\partial \mathcal{L}/\partial A_k = \text{backward}_k(\partial \mathcal{L}/\partial A_{k+1})`,
each also returning :math:`\partial \mathcal{L}/\partial \theta_k`.  A Sequential of :class:`~bplib.layers.Linear`
and :class:`~bplib.layers.Activation` layers computes what :class:`bplib.MLP` computes; dropout and
normalisation layers are what it adds.

**Parameters and gradients have one order** (:mod:`bplib.params`): :attr:`~bplib.Sequential.parameters` is a
:class:`~bplib.params.Params` named ``"<layer index>.<name>"`` (``"0.W"``, ``"0.b"``, ``"2.gamma"``, ...), layer
by layer; :meth:`~bplib.Sequential.loss_and_grads` returns the gradients as a :class:`~bplib.params.Params` of the same
names, straight into an optimiser of :mod:`bplib.optim`::

    net = bplib.Sequential([Linear(64, 32, generator=g), BatchNorm(32), Activation("relu"),
                            Dropout(0.2), Linear(32, 10, generator=g)], generator=g)
    opt = bplib.optim.SGD(net.parameters, lr=0.1)
    loss, grads = net.loss_and_grads(x, y)
    opt.step(grads)

**Modes.** ``net.train()`` and ``net.eval()`` set the mode of every layer (``net.mode``).

**Where dropout draws.** From the ``generator`` handed to the call, else from the network's own
(``Sequential(..., generator=g)``, kept as ``net.generator``); in train mode a network with dropout
refuses to run without one.  Each dropout layer draws its mask in turn, in the order of the layers, so a
freshly seeded generator gives the same masks in every call with the same shapes.

**Two kinds of call.**  A *training step*, :meth:`~bplib.Sequential.forward_with_caches` (at the network's own
parameters) and :meth:`~bplib.Sequential.loss_and_grads`, updates batch norm's running statistics in train mode, as
a forward pass of ``torch.nn.BatchNorm1d`` does.  The *pure* calls, :meth:`~bplib.Sequential.forward` and
:meth:`~bplib.Sequential.loss`, update nothing and read only their arguments: with
``theta, unflatten = bplib.flatten(net.parameters)``, ``lambda t: net.loss(x, y, params=unflatten(t))``
is a function of one vector for :mod:`bplib.gradcheck`.

**Gradient checks with dropout.**  In train mode the loss is random: every call draws new masks, so a
finite difference :math:`(\mathcal{L}(\theta + h e_i) - \mathcal{L}(\theta - h e_i))/2h` would mostly
measure the change of mask.  Check one of two deterministic functions instead:

* *eval mode*, ``net.eval()``: dropout is the identity and batch norm uses its running statistics;
* *a fixed mask*: hand every evaluation a generator seeded alike,
  ``net.loss(x, y, params=unflatten(t), generator=torch.Generator().manual_seed(s))``, and compare with
  ``net.loss_and_grads(x, y, generator=torch.Generator().manual_seed(s))``, which draws the same masks.
  (Random draws cannot run under :func:`torch.func.vmap`, so :func:`bplib.gradcheck.numerical_gradient`
  then falls back to its element loop.)

Not done here: no branching or residual graphs (a chain only), no layers shared between positions, no
fast path (the reference pairs, checked at every call), no autograd.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ._checks import check_choice, check_generator, check_same_dtype_and_device, check_shape, check_tensor
from .functional.losses import LOSSES
from .layers import MODES, Dropout, Layer
from .params import Params

_LAYER_KINDS = "Linear, Activation, Dropout, BatchNorm or LayerNorm"


class Sequential:
    """A chain of layers ending in a loss, with hand-written backpropagation.

    A new network is in train mode, and puts its layers in it.

    Parameters
    ----------
    layers:
        A non-empty sequence of layers of :mod:`bplib.layers`, each appearing once, whose widths fit:
        every layer with a fixed input width takes the width the layers before it give.  Their parameters
        and buffers share one dtype and device.
    loss:
        ``"softmax_ce"`` (the last layer's output are logits; labels as int64 class indices or
        probability rows) or ``"mse"``.
    generator:
        Where the dropout layers draw their masks when a call is handed none.

    Attributes
    ----------
    layers:
        The layers, a tuple, in order.
    loss_name:
        The loss, ``"softmax_ce"`` or ``"mse"``.
    generator:
        The network's own :class:`torch.Generator`, or ``None``.
    in_features:
        The input width :math:`n_0` the first layer with a fixed width takes (``None`` if no layer has one).
    """

    def __init__(self, layers: Sequence[Layer], loss: str = "softmax_ce", *, generator: torch.Generator | None = None) -> None:
        fn = "Sequential"
        if isinstance(layers, (str, torch.Tensor, Layer)) or not isinstance(layers, Sequence):
            raise TypeError(f"{fn}: argument 'layers' must be a sequence of layers, got {type(layers).__name__}")
        if len(layers) == 0:
            raise ValueError(f"{fn}: argument 'layers' must hold at least one layer, got an empty {type(layers).__name__}")
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                kind = f"{type(layer).__module__}.{type(layer).__qualname__}"
                raise TypeError(f"{fn}: argument 'layers[{i}]' must be a layer of bplib.layers ({_LAYER_KINDS}), got {kind}")
            for j in range(i):
                if layers[j] is layer:
                    raise ValueError(
                        f"{fn}: argument 'layers[{i}]' is the same object as 'layers[{j}]' ({layer!r}); "
                        f"a layer appears once (make a new one for each position)"
                    )
        self.layers: tuple[Layer, ...] = tuple(layers)
        self.in_features = self._check_widths(fn)
        self._check_tensors(fn)
        self.loss_name = check_choice(fn, "loss", loss, tuple(LOSSES))
        self.generator = check_generator(fn, generator)
        names = [f"{k}.{name}" for k, layer in enumerate(self.layers) for name in layer.parameter_names]
        self._names = tuple(names)
        counts = [len(layer.parameter_names) for layer in self.layers]
        self._slices = [slice(sum(counts[:k]), sum(counts[: k + 1])) for k in range(len(counts))]
        self.mode = "train"

    def _check_widths(self, fn: str) -> int | None:
        """Check that every layer takes the width the layers before it give; return the input width."""
        width, source, first = None, None, None
        for k, layer in enumerate(self.layers):
            if layer.in_features is not None:
                if width is not None and layer.in_features != width:
                    raise ValueError(
                        f"{fn}: argument 'layers[{k}]' ({layer!r}) takes {layer.in_features} features, but "
                        f"'layers[{source}]' ({self.layers[source]!r}) gives {width}"
                    )
                if first is None and width is None:
                    first = layer.in_features
            if layer.out_features is not None:
                width, source = layer.out_features, k
        return first

    def _check_tensors(self, fn: str) -> None:
        named = [
            (f"layers[{k}].{name}", t)
            for k, layer in enumerate(self.layers)
            for name, t in [*zip(layer.parameter_names, layer.parameters), *layer.buffers.items()]
        ]
        if named:
            check_same_dtype_and_device(fn, named[0], *named[1:])

    # ----------------------------------------------------------------------------------------- state

    @property
    def mode(self) -> str:
        """``"train"`` or ``"eval"``; setting it sets the mode of every layer."""
        return self._mode

    @mode.setter
    def mode(self, value: str) -> None:
        self._mode = check_choice("Sequential.mode", "mode", value, MODES)
        for layer in self.layers:
            layer.mode = value

    def train(self) -> Sequential:
        """Put every layer in train mode; return the network."""
        self.mode = "train"
        return self

    def eval(self) -> Sequential:
        """Put every layer in eval mode; return the network."""
        self.mode = "eval"
        return self

    @property
    def parameters(self) -> Params:
        """The layers' own parameters, layer by layer, as a :class:`~bplib.params.Params` named ``"<k>.<name>"``.

        These are the layers' tensors: an optimiser that updates them in place trains the network.
        """
        return Params([p for layer in self.layers for p in layer.parameters], self._names)

    # ---------------------------------------------------------------------------------- checks

    def _params(self, fn: str, params: Params | None) -> Params | None:
        """``None``, or ``params`` after checking that they fit this network."""
        if params is None:
            return None
        if not isinstance(params, Params):
            raise TypeError(
                f"{fn}: argument 'params' must be a bplib.Params (e.g. net.parameters, or unflatten(theta) from "
                f"bplib.flatten(net.parameters)), got {type(params).__name__}"
            )
        if params.names != self._names:
            raise ValueError(f"{fn}: argument 'params' must be named {list(self._names)}, got {list(params.names)}")
        own = self.parameters
        for name, p, q in zip(own.names, params, own):
            check_shape(fn, f"params ({name})", p, tuple(q.shape), f"the shape of {name}")
            check_same_dtype_and_device(fn, (f"params ({own.names[0]})", params[0]), (f"params ({name})", p))
        return params

    def _check_call(self, fn: str, x: object, params: Params | None, generator: object) -> torch.Generator | None:
        """Check the input and the generator of a call; return the generator dropout draws from."""
        check_tensor(fn, "x", x, ndim=2, floating=True)
        if self.in_features is not None:
            check_shape(fn, "x", x, (None, self.in_features), f"batch size, n_0 = {self.in_features} inputs")
        reference = self.parameters if params is None else params
        if reference:
            where = ("parameters" if params is None else "params") + f" ({reference.names[0]})"
            check_same_dtype_and_device(fn, (where, reference[0]), ("x", x))
        generator = check_generator(fn, generator) or self.generator
        if generator is None and any(isinstance(layer, Dropout) and layer.draws for layer in self.layers):
            raise TypeError(
                f"{fn}: argument 'generator' must be a torch.Generator when a dropout layer is in train mode with "
                f"p > 0 and the network holds none (pass generator= here or to Sequential, or call eval()), got None"
            )
        return generator

    # ----------------------------------------------------------------------------------- passes

    def _forward(
        self, x: torch.Tensor, params: Params | None, generator: torch.Generator | None
    ) -> tuple[torch.Tensor, list[object]]:
        a, caches = x, []  # A_0 = X, (m, n_0)
        for layer, part in zip(self.layers, self._slices):
            a, cache = layer.forward(a, params=None if params is None else params[part], generator=generator)
            caches.append(cache)  # A_{k+1} = f_k(A_k; theta_k)
        return a, caches

    def forward_with_caches(
        self, x: torch.Tensor, *, params: Params | None = None, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, list[object]]:
        """Return the last layer's output, shape (m, n_out), and every layer's cache, in order.

        At the network's own parameters (``params=None``) this is a training step's forward pass: in
        train mode batch norm's running statistics take this batch in.  At given ``params`` it updates
        nothing.  ``generator``: where dropout draws (default: the network's own).
        """
        fn = "Sequential.forward_with_caches"
        params = self._params(fn, params)
        generator = self._check_call(fn, x, params, generator)
        return self._forward(x, params, generator)

    def backward(self, dout: torch.Tensor, caches: Sequence[object]) -> Params:
        """Backpropagate ``dout`` :math:`= \\partial \\mathcal{L}/\\partial A_K` through the layers; return the gradients.

        For :math:`k = K - 1, \\dots, 0` layer :math:`k`'s backward turns
        :math:`\\partial \\mathcal{L}/\\partial A_{k+1}` into :math:`\\partial \\mathcal{L}/\\partial A_k` and
        :math:`\\partial \\mathcal{L}/\\partial \\theta_k`, on its own cache.  Returns a :class:`~bplib.params.Params`
        with the names and order of :attr:`parameters`.
        """
        fn = "Sequential.backward"
        expected = f"one cache per layer ({len(self.layers)}), as forward_with_caches returns them"
        if isinstance(caches, (str, torch.Tensor)) or not isinstance(caches, Sequence):
            raise TypeError(f"{fn}: argument 'caches' must be a sequence of {expected}, got {type(caches).__name__}")
        if len(caches) != len(self.layers):
            raise ValueError(f"{fn}: argument 'caches' must hold {expected}, got {len(caches)}")
        grads: list[tuple[torch.Tensor, ...]] = []
        da = dout  # dL/dA_K
        for layer, cache in zip(reversed(self.layers), reversed(caches)):
            da, dparams = layer.backward(da, cache)  # dL/dA_k and dL/dtheta_k
            grads.append(dparams)
        return Params([g for dparams in reversed(grads) for g in dparams], self._names)

    def forward(
        self, x: torch.Tensor, *, params: Params | None = None, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Return the last layer's output, shape (m, n_out): a pure function of the parameters.

        Evaluated at the network's own parameters, or at ``params``; updates no running statistics.
        """
        fn = "Sequential.forward"
        params = self._params(fn, params)
        generator = self._check_call(fn, x, params, generator)
        out, _ = self._forward(x, self.parameters if params is None else params, generator)
        return out

    def loss(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        *,
        params: Params | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Return the loss of the batch ``(x, y)``, a 0-d tensor: a pure function of the parameters.

        ``lambda t: net.loss(x, y, params=unflatten(t))`` is the loss as a function of one vector
        (:func:`~bplib.params.flatten`); updates no running statistics.  In train mode with dropout, pass a
        generator seeded alike to every call to fix the masks (module docstring).
        """
        loss_forward, _ = LOSSES[self.loss_name]
        out = self.forward(x, params=params, generator=generator)
        value, _ = loss_forward(out, y)
        return value

    def loss_and_grads(
        self, x: torch.Tensor, y: torch.Tensor, *, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, Params]:
        """Return ``(loss, grads)``: one training step's forward pass, the loss's pair, one backward pass.

        ``grads`` is a :class:`~bplib.params.Params` in the order and with the names of :attr:`parameters`, for
        ``opt.step(grads)``.  In train mode batch norm's running statistics take this batch in.
        """
        loss_forward, loss_backward = LOSSES[self.loss_name]
        generator = self._check_call("Sequential.loss_and_grads", x, None, generator)
        out, caches = self._forward(x, None, generator)
        loss, loss_cache = loss_forward(out, y)
        return loss, self.backward(loss_backward(1.0, loss_cache), caches)

    def __repr__(self) -> str:
        inner = ", ".join(repr(layer) for layer in self.layers)
        return f"Sequential([{inner}], loss={self.loss_name!r}, mode={self.mode!r})"


__all__ = ["Sequential"]
