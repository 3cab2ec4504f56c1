"""bplib: backpropagation by hand on PyTorch tensors, the engine of *Backpropagation, Derived and Verified*.

``bplib.functional`` holds the forward/backward pairs, ``bplib.MLP`` chains them (``bplib.mlp`` the
reference that reads like the math, ``bplib.mlp_fast`` the fast path tested equal to it),
``bplib.layers`` wraps them as layers with parameters and a mode, which ``bplib.Sequential`` chains
(dropout and normalisation included),
``bplib.params`` gives parameters and gradients one order (``bplib.Params``, ``bplib.flatten``),
``bplib.init`` and ``bplib.optim`` start and train it, ``bplib.gradcheck`` checks it by finite
differences, ``bplib.symbolic`` holds the SymPy
side of every check and ``bplib.testing`` the tolerances both sides are compared with.
The engine never calls ``torch.autograd``.
"""

import torch

from . import functional, gradcheck, init, layers, optim, symbolic, testing
from .mlp import MLP
from .params import MLPParams, Params, flatten
from .sequential import Sequential


def default_device() -> torch.device:
    """CUDA when a GPU is present, the CPU otherwise."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


__all__ = ["MLP", "MLPParams", "Params", "Sequential", "default_device", "flatten", "functional", "gradcheck", "init", "layers", "optim", "symbolic", "testing"]
