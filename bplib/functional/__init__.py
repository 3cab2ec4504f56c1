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
from .attention import attention_backward, attention_forward
from .dropout import dropout_backward, dropout_forward
from .linear import linear_backward, linear_forward
from .losses import (
    LOSSES,
    mse_backward,
    mse_forward,
    softmax_cross_entropy_backward,
    softmax_cross_entropy_forward,
)
from .normalisation import batch_norm_backward, batch_norm_forward, layer_norm_backward, layer_norm_forward
from .softmax import softmax_backward, softmax_forward

__all__ = [
    "ACTIVATIONS",
    "LOSSES",
    "attention_backward",
    "attention_forward",
    "batch_norm_backward",
    "batch_norm_forward",
    "dropout_backward",
    "dropout_forward",
    "layer_norm_backward",
    "layer_norm_forward",
    "linear_backward",
    "linear_forward",
    "mse_backward",
    "mse_forward",
    "relu_backward",
    "relu_forward",
    "sigmoid_backward",
    "sigmoid_forward",
    "softmax_backward",
    "softmax_cross_entropy_backward",
    "softmax_cross_entropy_forward",
    "softmax_forward",
    "tanh_backward",
    "tanh_forward",
]
