r"""Inverted dropout: forward and backward side by side.

In training, every entry of ``x`` is kept with probability :math:`1 - p` and dropped (set to 0)
otherwise, independently, and the kept entries are scaled by :math:`1/(1 - p)`:

.. math::

    y = x \odot \frac{\xi}{1 - p}, \qquad \xi_i \sim \operatorname{Bernoulli}(1 - p), \qquad
    \frac{\partial L}{\partial x} = \frac{\partial L}{\partial y} \odot \frac{\xi}{1 - p}.

The scaling makes the layer unbiased, :math:`\mathbb{E}[y] = x` (because
:math:`\mathbb{E}[\xi_i] = 1 - p`), so at evaluation time the layer is the identity and the
weights need no rescaling: this is the *inverted* form.  The variance it adds is
:math:`\operatorname{Var}[y_i] = x_i^2\, p/(1 - p)`.  The backward pass multiplies by the same mask:
a dropped entry gets no gradient.

The mask is drawn on the generator's device, in float32 whatever the dtype of ``x``, and then
moved to ``x``'s device and dtype::

    keep = torch.rand(x.shape, generator=generator, dtype=torch.float32, device=generator.device) >= p

so the same generator state gives the same mask for every dtype, and a CPU generator gives the
same mask to a tensor on a GPU.  With ``train=False`` or ``p == 0`` the layer is the identity and
no random number is drawn (the generator's state is left as it was).

Reference: N. Srivastava, G. Hinton, A. Krizhevsky, I. Sutskever, R. Salakhutdinov (2014),
"Dropout: a simple way to prevent neural networks from overfitting", JMLR 15.  The paper scales
the weights by :math:`1 - p` at test time instead; the inverted form moves that factor into
training and is what ``torch.nn.functional.dropout`` computes.

Not done here: no ``p = 1`` (every entry dropped and the scale :math:`1/(1 - p)` infinite), no
structured variants (channel-wise dropout, DropConnect, stochastic depth), no global random state:
a training-mode draw needs an explicit ``torch.Generator``.
"""

from __future__ import annotations

import torch

from .._checks import argument, check_flag, check_generator, check_real, check_tensor, check_upstream

_P_RANGE_REASON = "the probability of dropping an entry; p = 1 would drop them all and scale by 1/(1 - p) = inf"
"""Why a dropout probability must lie in [0, 1): the reason the error message gives."""

DropoutCache = tuple[torch.Tensor | None, torch.Tensor]


def _dropout_forward(
    x: torch.Tensor, p: float, train: bool, generator: torch.Generator | None
) -> tuple[torch.Tensor, DropoutCache]:
    if not train or p == 0:
        return x, (None, x)  # the identity: x itself, no copy and no draw
    keep = torch.rand(x.shape, generator=generator, dtype=torch.float32, device=generator.device) >= p
    mask = keep.to(device=x.device, dtype=x.dtype).div_(1 - p)  # xi / (1 - p), like x
    return x * mask, (mask, x)


def _dropout_backward(dout: torch.Tensor, cache: DropoutCache) -> torch.Tensor:
    mask, _ = cache
    # forward: out = x * mask
    return dout if mask is None else dout * mask  # like x


def dropout_forward(
    x: torch.Tensor, p: float, *, train: bool = True, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, DropoutCache]:
    """Return ``out = x * keep / (1 - p)`` and the cache ``(mask, x)`` with ``mask = keep / (1 - p)``.

    ``x`` has any shape; ``p`` is the probability of dropping an entry, a real number in [0, 1).
    ``generator`` is required when ``train=True`` and ``p > 0``, and the mask is drawn from it as
    the module docstring says.  Otherwise the layer is the identity: ``out`` is ``x`` itself (not a
    copy, as in ``torch.nn.functional.dropout``) and the cache's mask is ``None``.
    """
    fn = "dropout_forward"
    check_tensor(fn, "x", x, floating=True)
    p = check_real(fn, argument("p"), p, 0.0, 1.0, high_open=True, why=_P_RANGE_REASON)
    check_flag(fn, argument("train"), train)
    check_generator(fn, generator)
    if train and p > 0 and generator is None:
        raise TypeError(
            f"{fn}: argument 'generator' must be a torch.Generator when train=True and p > 0 "
            f"(the mask is random, and bplib draws only from an explicit generator), got None"
        )
    return _dropout_forward(x, p, train, generator)


def dropout_backward(dout: torch.Tensor, cache: DropoutCache) -> torch.Tensor:
    """Return ``dx = dout * mask`` (``dout`` itself when the forward pass was the identity)."""
    _, x = cache
    fn = "dropout_backward"
    check_upstream(fn, "dout", dout, ("x (from cache)", x))
    return _dropout_backward(dout, cache)
