r"""Layers: the pairs of :mod:`bplib.functional` as objects that hold their parameters, statistics and mode.

A layer is one step of a network, :math:`a \mapsto f(a; \theta)`, with rows as samples.  Each layer
here wraps one forward/backward pair and adds only what the pair does not keep:

* its **parameters** :math:`\theta` (``parameters``, named by ``parameter_names``: ``("W", "b")`` for
  :class:`Linear`, ``("gamma", "beta")`` for :class:`BatchNorm` and :class:`LayerNorm`, none for
  :class:`Activation` and :class:`Dropout`);
* its **mode**, ``"train"`` or ``"eval"`` (``train()``, ``eval()``): dropout drops entries and batch
  norm normalises by the batch's statistics in train mode only;
* batch norm's **running statistics**, the buffers ``running_mean`` and ``running_var``.

Every layer has the same two methods::

    out, cache = layer.forward(x)               # params=None: the layer's own parameters
    dx, dparams = layer.backward(dout, cache)   # dparams: one gradient per parameter, in order

``backward`` takes :math:`\partial \mathcal{L} / \partial\, \text{out}` and returns
:math:`\partial \mathcal{L} / \partial x` and the tuple of
:math:`\partial \mathcal{L} / \partial \theta_k` (empty for a layer without parameters).
``forward(x, params=...)`` evaluates the layer at other parameters, a pure function of them (see
:class:`bplib.Sequential`, which chains layers, and :func:`~bplib.params.flatten`).  ``generator`` is where a
random layer (:class:`Dropout`) draws its mask; the deterministic layers take the keyword too, so that a
network calls every layer alike, and draw nothing.

**Running statistics.**  A :class:`BatchNorm` in train mode, evaluated at its own parameters
(``params=None``), updates its running statistics in place as ``torch.nn.BatchNorm1d`` does: that is a
training step.  Evaluated at given parameters it updates nothing, so that the loss stays a pure function
of the parameters (a gradient check evaluates it thousands of times).

Not done here: no convolutions, no layers other than these five, no autograd (the gradients are the
pairs' own), no inputs of rank other than 2.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from . import init
from ._checks import argument, check_choice, check_floating_dtype, check_generator, check_real, check_shape, check_tensor
from .functional.activations import ACTIVATIONS
from .functional.dropout import _P_RANGE_REASON, dropout_backward, dropout_forward
from .functional.linear import linear_backward, linear_forward
from .functional.normalisation import (
    batch_norm_backward,
    batch_norm_forward,
    layer_norm_backward,
    layer_norm_forward,
)

MODES = ("train", "eval")
"""The two modes of a layer or a network, ``"train"`` (dropout drops, batch norm uses the batch's
statistics) and ``"eval"`` (dropout is the identity, batch norm uses its running statistics)."""

INITIALISERS = {"he": init.he, "xavier": init.xavier}
"""How :class:`Linear` draws its weights, by name: :func:`bplib.init.he` (for ReLU) or
:func:`bplib.init.xavier` (for sigmoid and tanh), each with its default distribution, as
:class:`bplib.MLP` draws them."""


def _check_width(fn: str, name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{fn}: argument '{name}' must be a positive integer, got {value!r}")
    return value


class Layer:
    """What every layer shares: its parameters by name, its mode, and the two methods.

    Subclasses set ``parameter_names`` (the attributes that hold the parameters, in order),
    ``in_features`` and ``out_features`` (the widths the layer takes and gives; ``None`` for a layer
    that keeps whatever width it is given), and implement ``forward`` and ``backward``.
    """

    parameter_names: tuple[str, ...] = ()
    """The names of the layer's parameters, in the order of :attr:`parameters` and of the gradients."""

    in_features: int | None = None
    """The width :math:`n_\\text{in}` of the input the layer takes (``None``: any)."""

    out_features: int | None = None
    """The width :math:`n_\\text{out}` of the output it gives (``None``: the width of its input)."""

    def __init__(self) -> None:
        self._mode = "train"

    @property
    def mode(self) -> str:
        """``"train"`` or ``"eval"``; a new layer is in train mode, as torch's are."""
        return self._mode

    @mode.setter
    def mode(self, value: str) -> None:
        self._mode = check_choice(f"{type(self).__name__}.mode", "mode", value, MODES)

    def train(self) -> Layer:
        """Put the layer in train mode; return it."""
        self.mode = "train"
        return self

    def eval(self) -> Layer:
        """Put the layer in eval mode; return it."""
        self.mode = "eval"
        return self

    @property
    def parameters(self) -> tuple[torch.Tensor, ...]:
        """The layer's own parameter tensors, in the order of :attr:`parameter_names` (an optimiser that
        updates them in place trains the layer)."""
        return tuple(getattr(self, name) for name in self.parameter_names)

    @property
    def buffers(self) -> dict[str, torch.Tensor]:
        """The tensors the layer keeps that are no parameters, by name (batch norm's running statistics)."""
        return {}

    def forward(
        self,
        x: torch.Tensor,
        *,
        params: Sequence[torch.Tensor] | None = None,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, object]:
        """Return the layer's output for ``x`` (shape (m, n_in)) and what its backward pass needs."""
        raise NotImplementedError(f"{type(self).__name__} does not implement forward")

    def backward(self, dout: torch.Tensor, cache: object) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """Return :math:`\\partial \\mathcal{L}/\\partial x` and the gradients of the parameters, given ``dout``."""
        raise NotImplementedError(f"{type(self).__name__} does not implement backward")

    def _params(self, fn: str, params: Sequence[torch.Tensor] | None) -> tuple[torch.Tensor, ...]:
        """The layer's own parameters, or ``params`` after checking that they fit this layer."""
        if params is None:
            return self.parameters
        names = self.parameter_names
        expected = f"{len(names)} tensors ({', '.join(names) or 'none'})"
        if isinstance(params, (str, torch.Tensor)) or not isinstance(params, Sequence):
            raise TypeError(f"{fn}: argument 'params' must be a sequence of {expected}, got {type(params).__name__}")
        if len(params) != len(names):
            raise ValueError(f"{fn}: argument 'params' must hold {expected}, got {len(params)}")
        for name, p, own in zip(names, params, self.parameters):
            check_tensor(fn, f"params ({name})", p, floating=True)
            check_shape(fn, f"params ({name})", p, tuple(own.shape), f"the shape of {name}")
        return tuple(params)


class Linear(Layer):
    """The affine layer :math:`Z = X W^\\top + \\mathbf{1}_m b^\\top` (:mod:`bplib.functional.linear`).

    Parameters ``W`` of shape ``(n_out, n_in)``, drawn by ``init`` (``"he"`` or ``"xavier"``, see
    :data:`INITIALISERS`) from ``generator``, and ``b`` of shape ``(n_out,)``, zeros.  Gradients
    :math:`(\\Delta^\\top X, \\Delta^\\top \\mathbf{1}_m)`.
    """

    parameter_names = ("W", "b")

    def __init__(
        self,
        n_in: int,
        n_out: int,
        *,
        init: str = "he",
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        fn = "Linear"
        super().__init__()
        self.in_features = _check_width(fn, "n_in", n_in)
        self.out_features = _check_width(fn, "n_out", n_out)
        draw = INITIALISERS[check_choice(fn, "init", init, tuple(INITIALISERS))]
        self.W = draw((n_out, n_in), generator=check_generator(fn, generator), dtype=check_floating_dtype(fn, dtype), device=device)
        """:math:`W`, shape ``(n_out, n_in)``."""
        self.b = self.W.new_zeros(n_out)
        """:math:`b`, shape ``(n_out,)``."""

    def forward(self, x, *, params=None, generator=None):
        """Return ``z = x @ W.T + b`` and the cache of :func:`~bplib.functional.linear.linear_forward`."""
        W, b = self._params("Linear.forward", params)
        return linear_forward(x, W, b)

    def backward(self, dout, cache):
        """Return ``(dx, (dW, db))`` by :func:`~bplib.functional.linear.linear_backward`."""
        dx, dW, db = linear_backward(dout, cache)
        return dx, (dW, db)

    def __repr__(self) -> str:
        return f"Linear({self.in_features}, {self.out_features})"


class Activation(Layer):
    """An element-wise activation :math:`A = \\sigma(Z)`: ``"relu"``, ``"sigmoid"`` or ``"tanh"``, no parameters."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = check_choice("Activation", "name", name, tuple(ACTIVATIONS))
        """The activation's name."""

    def forward(self, x, *, params=None, generator=None):
        """Return ``sigma(x)`` and its cache (the output)."""
        self._params("Activation.forward", params)
        forward, _ = ACTIVATIONS[self.name]
        return forward(x)

    def backward(self, dout, cache):
        """Return ``(dout * sigma'(x), ())``."""
        _, backward = ACTIVATIONS[self.name]
        return backward(dout, cache), ()

    def __repr__(self) -> str:
        return f"Activation({self.name!r})"


class Dropout(Layer):
    """Inverted dropout (:mod:`bplib.functional.dropout`): in train mode each entry is kept with probability
    :math:`1 - p` and scaled by :math:`1/(1 - p)`; in eval mode the identity.  No parameters.

    The mask is drawn from the ``generator`` handed to :meth:`forward`, which a network passes on from its
    own (:class:`bplib.Sequential`).  ``p`` in :math:`[0, 1)`.
    """

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        self.p = check_real("Dropout", argument("p"), p, 0.0, 1.0, high_open=True, why=_P_RANGE_REASON)
        """The probability :math:`p` of dropping an entry."""

    @property
    def draws(self) -> bool:
        """Whether :meth:`forward` draws a mask now: in train mode with :math:`p > 0`."""
        return self.mode == "train" and self.p > 0

    def forward(self, x, *, params=None, generator=None):
        """Return ``x * mask`` (train mode) or ``x`` (eval mode) and the cache of the pair."""
        self._params("Dropout.forward", params)
        return dropout_forward(x, self.p, train=self.mode == "train", generator=generator)

    def backward(self, dout, cache):
        """Return ``(dout * mask, ())`` (``dout`` itself in eval mode)."""
        return dropout_backward(dout, cache), ()

    def __repr__(self) -> str:
        return f"Dropout(p={self.p:g})"


class BatchNorm(Layer):
    """Batch normalisation over the m rows of a batch (:mod:`bplib.functional.normalisation`).

    Parameters ``gamma`` (ones) and ``beta`` (zeros), shape ``(n,)``; buffers ``running_mean`` (zeros)
    and ``running_var`` (ones), torch's starting values.  Train mode normalises by the batch's mean and
    biased variance and, at the layer's own parameters, updates the buffers with ``momentum``
    (module docstring); eval mode normalises by the buffers.  Defaults are ``torch.nn.BatchNorm1d``'s.
    """

    parameter_names = ("gamma", "beta")

    def __init__(
        self,
        n: int,
        *,
        momentum: float = 0.1,
        eps: float = 1e-5,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
    ) -> None:
        fn = "BatchNorm"
        super().__init__()
        self.in_features = self.out_features = _check_width(fn, "n", n)
        self.momentum = check_real(fn, argument("momentum"), momentum, 0.0, 1.0)
        """The weight :math:`\\alpha` of the batch in the running statistics."""
        self.eps = check_real(fn, argument("eps"), eps, 0.0)
        """:math:`\\epsilon`, added to the variance."""
        if self.eps == 0:
            raise ValueError(f"{fn}: argument 'eps' must be > 0, got {eps!r}: a feature constant over a batch has variance 0")
        self.gamma = torch.ones(n, dtype=check_floating_dtype(fn, dtype), device=device)
        """:math:`\\gamma`, the scale, shape ``(n,)``."""
        self.beta = torch.zeros_like(self.gamma)
        """:math:`\\beta`, the shift, shape ``(n,)``."""
        self.running_mean = torch.zeros_like(self.gamma)
        """The running mean :math:`\\mu_\\text{run}`, shape ``(n,)``."""
        self.running_var = torch.ones_like(self.gamma)
        """The running (unbiased) variance :math:`v_\\text{run}`, shape ``(n,)``."""

    @property
    def buffers(self) -> dict[str, torch.Tensor]:
        """``running_mean`` and ``running_var``."""
        return {"running_mean": self.running_mean, "running_var": self.running_var}

    def forward(self, x, *, params=None, generator=None):
        """Return the normalised ``x`` and the cache of :func:`~bplib.functional.normalisation.batch_norm_forward`."""
        gamma, beta = self._params("BatchNorm.forward", params)
        train = self.mode == "train"
        # eval mode reads the buffers; a training step (own parameters) updates them; a pure call leaves them
        stats = self.buffers if not train or params is None else {}
        return batch_norm_forward(x, gamma, beta, **stats, train=train, momentum=self.momentum, eps=self.eps)

    def backward(self, dout, cache):
        """Return ``(dx, (dgamma, dbeta))`` by :func:`~bplib.functional.normalisation.batch_norm_backward`."""
        dx, dgamma, dbeta = batch_norm_backward(dout, cache)
        return dx, (dgamma, dbeta)

    def __repr__(self) -> str:
        return f"BatchNorm({self.in_features})"


class LayerNorm(Layer):
    """Layer normalisation over the n features of each row (:mod:`bplib.functional.normalisation`).

    Parameters ``gamma`` (ones) and ``beta`` (zeros), shape ``(n,)``; the same in both modes, since each
    sample is normalised by its own statistics.  Defaults are ``torch.nn.LayerNorm``'s.
    """

    parameter_names = ("gamma", "beta")

    def __init__(
        self,
        n: int,
        *,
        eps: float = 1e-5,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
    ) -> None:
        fn = "LayerNorm"
        super().__init__()
        self.in_features = self.out_features = _check_width(fn, "n", n)
        self.eps = check_real(fn, argument("eps"), eps, 0.0)
        """:math:`\\epsilon`, added to the variance."""
        self.gamma = torch.ones(n, dtype=check_floating_dtype(fn, dtype), device=device)
        """:math:`\\gamma`, the scale, shape ``(n,)``."""
        self.beta = torch.zeros_like(self.gamma)
        """:math:`\\beta`, the shift, shape ``(n,)``."""

    def forward(self, x, *, params=None, generator=None):
        """Return the normalised ``x`` and the cache of :func:`~bplib.functional.normalisation.layer_norm_forward`."""
        check_tensor("LayerNorm.forward", "x", x, ndim=2, floating=True)
        gamma, beta = self._params("LayerNorm.forward", params)
        return layer_norm_forward(x, gamma, beta, eps=self.eps)

    def backward(self, dout, cache):
        """Return ``(dx, (dgamma, dbeta))`` by :func:`~bplib.functional.normalisation.layer_norm_backward`."""
        dx, dgamma, dbeta = layer_norm_backward(dout, cache)
        return dx, (dgamma, dbeta)

    def __repr__(self) -> str:
        return f"LayerNorm({self.in_features})"


__all__ = ["MODES", "INITIALISERS", "Layer", "Linear", "Activation", "Dropout", "BatchNorm", "LayerNorm"]
