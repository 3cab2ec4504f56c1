"""Parameters and gradients of one shape: one order for both, and the pure functional form.

A bplib model hands out its parameters as a :class:`Params`: a tuple of tensors in the model's one
order, each with a name.  Its backward pass returns the gradients as a :class:`Params` of the same
kind, in the same order, so the two go together with no re-arranging::

    loss, grads = net.loss_and_grads(x, y)          # grads[i] is dL/d(net.parameters[i])
    bplib.optim.SGD(net.parameters, lr=0.1).step(grads)

For the fully connected :class:`bplib.MLP` the order is :math:`W^1, b^1, W^2, b^2, \\dots, W^L, b^L`
(:class:`MLPParams`), and ``params.weights`` / ``params.biases`` name the two halves as the book does:
``grads.weights[l - 1]`` is :math:`\\partial \\mathcal{L} / \\partial W^l`.

:func:`flatten` turns any such tuple into one vector :math:`\\theta \\in \\mathbb{R}^P` and back, which
is the form gradient checking and every other routine on :math:`f: \\mathbb{R}^P \\to \\mathbb{R}`
needs.  With a model whose loss is a pure function of its parameters
(``net.loss(x, y, params=...)``), checking a network's gradient takes two lines::

    theta, unflatten = bplib.flatten(net.parameters)
    error = gradient_check(lambda t: net.loss(x, y, params=unflatten(t)), theta, bplib.flatten(grads)[0])

``unflatten`` returns views into the vector it is given (no copy), so it also runs under
:func:`torch.func.vmap`, which is how :func:`bplib.gradcheck.numerical_gradient` evaluates
many perturbed vectors at once.

Not done here: no nested structures (a model's parameters are one flat tuple), no copying of
the tensors (a :class:`Params` holds the very tensors the model updates).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import torch

from ._checks import check_same_dtype_and_device, check_shape, check_tensor

class Params(tuple):
    """A model's parameters, or the gradients with respect to them: a tuple of tensors with names.

    It is a :class:`tuple`, so it iterates, indexes and unpacks in the model's order, and goes
    wherever a sequence of tensors is expected (the optimisers of :mod:`bplib.optim`, ``torch.cat``,
    ``zip``).  ``names[i]`` names entry ``i`` (``"W1"``, ``"b1"``, ...).
    """

    def __new__(cls, tensors: Iterable[torch.Tensor], names: Sequence[str]) -> Params:
        tensors = tuple(tensors)
        names = tuple(names)
        fn = cls.__name__
        if len(names) != len(tensors):
            raise ValueError(f"{fn}: argument 'names' must hold one name per tensor ({len(tensors)}), got {len(names)}")
        if len(set(names)) != len(names):
            raise ValueError(f"{fn}: argument 'names' must not repeat a name, got {names!r}")
        for name, t in zip(names, tensors):
            check_tensor(fn, f"tensors ({name})", t)
        self = super().__new__(cls, tensors)
        self._names = names
        return self

    @property
    def names(self) -> tuple[str, ...]:
        """The name of every entry, in order."""
        return self._names

    def like(self, tensors: Iterable[torch.Tensor]) -> Params:
        """A structure of the same kind and names holding ``tensors`` (e.g. the gradients of these parameters)."""
        return type(self)(tensors, self._names)

    def __getnewargs__(self):  # copy and pickle: rebuild from the tensors and the names
        return tuple(self), self._names

    def __repr__(self) -> str:
        entries = ", ".join(f"{n}: {tuple(t.shape)}" for n, t in zip(self._names, self))
        return f"{type(self).__name__}({entries})"


class MLPParams(Params):
    """Parameters of an affine network, :math:`W^1, b^1, \\dots, W^L, b^L` interleaved, with both halves named.

    ``weights[l - 1]`` is :math:`W^l` (or :math:`\\partial \\mathcal{L}/\\partial W^l`), shape
    :math:`(n_l, n_{l-1})`; ``biases[l - 1]`` is :math:`b^l`, shape :math:`(n_l,)`.
    """

    @classmethod
    def from_layers(cls, weights: Sequence[torch.Tensor], biases: Sequence[torch.Tensor]) -> MLPParams:
        """Interleave ``weights`` and ``biases`` (one of each per layer) into the network's order."""
        if len(weights) != len(biases):
            raise ValueError(
                f"MLPParams.from_layers: arguments 'weights' and 'biases' must hold one tensor per layer each, "
                f"got {len(weights)} and {len(biases)}"
            )
        tensors = [t for pair in zip(weights, biases) for t in pair]
        names = [name for l in range(1, len(weights) + 1) for name in (f"W{l}", f"b{l}")]
        return cls(tensors, names)

    @property
    def weights(self) -> tuple[torch.Tensor, ...]:
        """:math:`W^1, \\dots, W^L` (or their gradients)."""
        return tuple(self[0::2])

    @property
    def biases(self) -> tuple[torch.Tensor, ...]:
        """:math:`b^1, \\dots, b^L` (or their gradients)."""
        return tuple(self[1::2])

    @property
    def layers(self) -> tuple[tuple[torch.Tensor, torch.Tensor], ...]:
        """``(W^l, b^l)`` for ``l = 1, ..., L``."""
        return tuple(zip(self[0::2], self[1::2]))


def flatten(params: Sequence[torch.Tensor]) -> tuple[torch.Tensor, Callable[[torch.Tensor], Params]]:
    """Concatenate ``params`` into one vector and return it with the inverse map.

    .. math::

        \\theta = \\big(\\operatorname{vec}(p_1), \\dots, \\operatorname{vec}(p_k)\\big) \\in \\mathbb{R}^P,
        \\qquad P = \\textstyle\\sum_i |p_i|,

    each tensor flattened in row-major order.  ``unflatten(theta)`` cuts a vector of length
    :math:`P` back into tensors of the original shapes, as a :class:`Params` of the same kind
    and names (a plain sequence comes back as a :class:`Params` named ``"0"``, ``"1"``, ...).
    The pieces are views of ``theta``: writing into them writes into ``theta``.  ``theta`` itself
    is a new tensor (writing into it leaves ``params`` alone).

    ``params``: a non-empty sequence of floating tensors of one dtype and device.
    """
    fn = "flatten"
    if isinstance(params, torch.Tensor) or not isinstance(params, Sequence):
        raise TypeError(f"{fn}: argument 'params' must be a sequence of tensors, got {type(params).__name__}")
    if len(params) == 0:
        raise ValueError(f"{fn}: argument 'params' must hold at least one tensor, got an empty {type(params).__name__}")
    for i, p in enumerate(params):
        check_tensor(fn, f"params[{i}]", p, floating=True)
    check_same_dtype_and_device(fn, ("params[0]", params[0]), *((f"params[{i}]", p) for i, p in enumerate(params)))
    template = params if isinstance(params, Params) else Params(params, [str(i) for i in range(len(params))])
    shapes = [p.shape for p in params]
    sizes = [p.numel() for p in params]
    total = sum(sizes)
    theta = torch.cat([p.detach().reshape(-1) for p in params])  # (P,)

    def unflatten(vector: torch.Tensor) -> Params:
        """Cut ``vector`` (shape (P,)) into views shaped like the parameters."""
        check_tensor("unflatten", "vector", vector, ndim=1, floating=True)
        check_shape("unflatten", "vector", vector, (total,), f"P = {total}, the number of parameters")
        pieces = torch.split(vector, sizes)  # views, one per parameter
        return template.like(piece.view(shape) for piece, shape in zip(pieces, shapes))

    return theta, unflatten
