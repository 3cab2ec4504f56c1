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

Not done here: no in-place variants, no parametric activations.
"""

from __future__ import annotations

import torch

from .._checks import check_same_dtype_and_device, check_tensor


def _check_pair(fn: str, da: torch.Tensor, a: torch.Tensor) -> None:
    check_tensor(fn, "da", da, floating=True)
    check_same_dtype_and_device(fn, ("a (from cache)", a), ("da", da))
    if da.shape != a.shape:
        raise ValueError(
            f"{fn}: argument 'da' must have the shape of the forward output {tuple(a.shape)}, got {tuple(da.shape)}"
        )


def sigmoid_forward(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Return ``a = 1 / (1 + exp(-z))`` and the cache ``a``."""
    check_tensor("sigmoid_forward", "z", z, floating=True)
    a = torch.sigmoid(z)
    return a, a


def sigmoid_backward(da: torch.Tensor, cache: torch.Tensor) -> torch.Tensor:
    """Return ``dz = da * a * (1 - a)``."""
    a = cache
    _check_pair("sigmoid_backward", da, a)
    # forward: a = sigmoid(z)
    return da * a * (1 - a)


def tanh_forward(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Return ``a = tanh(z)`` and the cache ``a``."""
    check_tensor("tanh_forward", "z", z, floating=True)
    a = torch.tanh(z)
    return a, a


def tanh_backward(da: torch.Tensor, cache: torch.Tensor) -> torch.Tensor:
    """Return ``dz = da * (1 - a**2)``."""
    a = cache
    _check_pair("tanh_backward", da, a)
    # forward: a = tanh(z)
    return da * (1 - a * a)


def relu_forward(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Return ``a = max(0, z)`` and the cache ``a``."""
    check_tensor("relu_forward", "z", z, floating=True)
    a = torch.relu(z)
    return a, a


def relu_backward(da: torch.Tensor, cache: torch.Tensor) -> torch.Tensor:
    """Return ``dz = da * [a > 0]`` (the subgradient 0 is taken at ``z = 0``, as torch does)."""
    a = cache
    _check_pair("relu_backward", da, a)
    # forward: a = max(0, z)
    # threshold_backward(da, a, 0) is the element-wise kernel for "da where a > 0, else 0": one fused
    # pass, several times faster than torch.where(a > 0, da, 0), which first materialises the mask
    return torch.ops.aten.threshold_backward(da, a, 0)


ACTIVATIONS = {
    "sigmoid": (sigmoid_forward, sigmoid_backward),
    "tanh": (tanh_forward, tanh_backward),
    "relu": (relu_forward, relu_backward),
}
"""Forward/backward pairs by name, as ``MLP(activation=...)`` accepts them."""
