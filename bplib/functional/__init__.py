"""Forward/backward pairs, one module per family.

Every forward returns ``(out, cache)``; every backward takes the upstream
gradient first and the cache second.  Nothing here calls ``torch.autograd``.
"""

from .activations import (
    ACTIVATIONS,
    relu_backward,
    relu_forward,
    sigmoid_backward,
    sigmoid_forward,
    tanh_backward,
    tanh_forward,
)
from .linear import linear_backward, linear_forward
from .losses import (
    LOSSES,
    mse_backward,
    mse_forward,
    softmax_cross_entropy_backward,
    softmax_cross_entropy_forward,
)

__all__ = [
    "ACTIVATIONS",
    "LOSSES",
    "linear_backward",
    "linear_forward",
    "mse_backward",
    "mse_forward",
    "relu_backward",
    "relu_forward",
    "sigmoid_backward",
    "sigmoid_forward",
    "softmax_cross_entropy_backward",
    "softmax_cross_entropy_forward",
    "tanh_backward",
    "tanh_forward",
]
