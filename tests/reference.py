"""The same computations written with plain torch operations, differentiated by torch.autograd.

These are the independent route every bplib backward is compared with.
"""

import torch
import torch.nn.functional as F

TORCH_ACTIVATIONS = {"relu": torch.relu, "sigmoid": torch.sigmoid, "tanh": torch.tanh}


def mlp_loss(weights, biases, x, y, activation, loss):
    """Loss of the MLP in bplib's conventions, as a differentiable torch expression."""
    a = x
    for l, (W, b) in enumerate(zip(weights, biases)):
        a = F.linear(a, W, b)
        if l < len(weights) - 1:
            a = TORCH_ACTIVATIONS[activation](a)
    if loss == "mse":
        return 0.5 * ((a - y) ** 2).sum() / x.shape[0]
    return F.cross_entropy(a, y)


def autograd_grads(f, *inputs):
    """Return f(*inputs) and its gradients with respect to every input, by torch.autograd."""
    leaves = [t.detach().clone().requires_grad_(True) for t in inputs]
    out = f(*leaves)
    return out.detach(), torch.autograd.grad(out, leaves)
