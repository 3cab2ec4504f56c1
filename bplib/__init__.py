"""bplib: backpropagation by hand on PyTorch tensors, the engine of *Backpropagation, Derived and Verified*.

The engine never calls ``torch.autograd``.  Its rooms, from the ground up (each builds only on those
above it):

* ``bplib._checks``: argument checks with messages that name the function, the argument, what was
  expected and what arrived.
* ``bplib.functional``: the forward/backward pairs (linear, activations, losses, softmax, dropout,
  batch and layer norm, attention), ``<op>_forward(...) -> (out, cache)``, ``<op>_backward(dout, cache)``.
* ``bplib.params``: parameters and gradients in one order (``bplib.Params``, ``bplib.MLPParams``) and the
  pure functional form (``bplib.flatten``).
* The networks: ``bplib.MLP`` (``bplib.mlp``, the reference that reads like the math; ``bplib.mlp_fast``,
  the fast path tested equal to it), and ``bplib.Sequential`` of ``bplib.layers`` (dropout and
  normalisation included).
* Beside the networks, each using them and never the other way round: ``bplib.init`` (initialisers),
  ``bplib.optim`` (optimisers and learning-rate schedules), ``bplib.gradcheck`` (finite differences),
  ``bplib.curvature`` (Hessian-vector products), ``bplib.features`` (random features, minimum-norm fits),
  ``bplib.ntk`` (neural tangent kernels), ``bplib.accumulation`` and ``bplib.checkpoint`` (memory),
  ``bplib.monitor`` (training statistics), ``bplib.distributed`` (data and pipeline parallelism over
  ``torch.distributed``), ``bplib.torch_bridge`` (the pairs as ``torch.autograd.Function``\\ s).
* Standing alone: ``bplib.autodiff`` (two teaching engines, reverse and forward mode), ``bplib.symbolic``
  (the SymPy side of every check, which never borrows the numeric side's answers) and ``bplib.testing``
  (the tolerances and the assertions both sides are compared with).
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
