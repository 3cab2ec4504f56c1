"""Element-wise activations: forward and backward side by side.

Each forward returns ``(a, cache)``; each backward takes the upstream gradient
``da = dL/da`` first and returns ``dz = dL/dz = da * sigma'(z)``.  Every
derivative is written through the *output* ``a``, which is what the forward
pass already holds:

=========  ==========================  =====================================
name       :math:`a = \\sigma(z)`       :math:`\\sigma'(z)`
=========  ==========================  =====================================
sigmoid    :math:`1/(1+e^{-z})`        :math:`a(1-a)`
tanh       :math:`\\tanh z`             :math:`1-a^2`
relu       :math:`\\max(0, z)`          :math:`[a > 0]` (0 at :math:`z = 0`)
=========  ==========================  =====================================

Each public function checks its arguments and calls its kernel (the same name
with a leading underscore), as in :mod:`bplib.functional.linear`.  A kernel
writes its result into ``out`` when given one: ``bplib.MLP`` passes the
pre-activation (forward) or the upstream gradient (backward), buffers it owns
and no longer needs, and so allocates no new memory for activations.

Not done here: no in-place variants, no parametric activations.
"""

from __future__ import annotations

import torch

from .._checks import check_tensor, check_upstream


def _sigmoid_forward(z: torch.Tensor, out: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    a = torch.sigmoid(z, out=out)
    return a, a


def _sigmoid_backward(da: torch.Tensor, a: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    # forward: a = sigmoid(z)
    return torch.mul(da, a * (1 - a), out=out)


def _tanh_forward(z: torch.Tensor, out: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    a = torch.tanh(z, out=out)
    return a, a


def _tanh_backward(da: torch.Tensor, a: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    # forward: a = tanh(z)
    return torch.mul(da, 1 - a * a, out=out)


def _relu_forward(z: torch.Tensor, out: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    a = torch.clamp_min(z, 0, out=out)  # max(0, z), as torch.relu computes it
    return a, a


def _relu_backward(da: torch.Tensor, a: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    # forward: a = max(0, z)
    # threshold_backward is the element-wise kernel for "da where a > 0, else 0": one fused pass, several
    # times faster than torch.where(a > 0, da, 0), which first materialises the mask
    if out is None:
        return torch.ops.aten.threshold_backward(da, a, 0)
    return torch.ops.aten.threshold_backward.grad_input(da, a, 0, grad_input=out)


def _check_forward(fn: str, z: object) -> None:
    check_tensor(fn, "z", z, floating=True)


def _check_backward(fn: str, da: object, a: torch.Tensor) -> None:
    check_upstream(fn, "da", da, ("a (from cache)", a))


def sigmoid_forward(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Return ``a = 1 / (1 + exp(-z))`` and the cache ``a``."""
    _check_forward("sigmoid_forward", z)
    return _sigmoid_forward(z)


def sigmoid_backward(da: torch.Tensor, cache: torch.Tensor) -> torch.Tensor:
    """Return ``dz = da * a * (1 - a)``."""
    _check_backward("sigmoid_backward", da, cache)
    return _sigmoid_backward(da, cache)


def tanh_forward(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Return ``a = tanh(z)`` and the cache ``a``."""
    _check_forward("tanh_forward", z)
    return _tanh_forward(z)


def tanh_backward(da: torch.Tensor, cache: torch.Tensor) -> torch.Tensor:
    """Return ``dz = da * (1 - a**2)``."""
    _check_backward("tanh_backward", da, cache)
    return _tanh_backward(da, cache)


def relu_forward(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Return ``a = max(0, z)`` and the cache ``a``."""
    _check_forward("relu_forward", z)
    return _relu_forward(z)


def relu_backward(da: torch.Tensor, cache: torch.Tensor) -> torch.Tensor:
    """Return ``dz = da * [a > 0]`` (the subgradient 0 is taken at ``z = 0``, as torch does)."""
    _check_backward("relu_backward", da, cache)
    return _relu_backward(da, cache)


ACTIVATIONS = {
    "sigmoid": (sigmoid_forward, sigmoid_backward),
    "tanh": (tanh_forward, tanh_backward),
    "relu": (relu_forward, relu_backward),
}
"""Forward/backward pairs by name, as ``MLP(activation=...)`` accepts them."""

ACTIVATION_KERNELS = {
    "sigmoid": (_sigmoid_forward, _sigmoid_backward),
    "tanh": (_tanh_forward, _tanh_backward),
    "relu": (_relu_forward, _relu_backward),
}
"""The same pairs without argument checks, for callers whose tensors are correct by construction;
each takes an optional ``out`` buffer to write its result into."""
