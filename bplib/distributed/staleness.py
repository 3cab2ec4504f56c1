"""Asynchronous SGD in one process: gradients applied :math:`\\tau` steps after the parameters they were computed at.

In asynchronous data parallelism (a parameter server: J. Dean et al. (2012), "Large scale distributed
deep networks", NIPS 25; lock-free shared memory: B. Recht, C. Ré, S. Wright and F. Niu (2011),
"Hogwild!", NIPS 24) a worker reads the parameters, computes a gradient and applies it
while other workers have already updated them.  With a fixed delay :math:`\\tau` (with :math:`k`
workers taking turns, :math:`\\tau = k - 1`) the iteration is

.. math::

    \\theta_{t+1} = \\theta_t - \\eta\\, \\nabla \\mathcal{L}(\\theta_{t-\\tau}), \\qquad
    \\theta_s = \\theta_0 \\ \\text{for}\\ s < 0,

which is what :func:`delayed_gradient_descent` computes, in one process, deterministically.  On a
quadratic with curvature :math:`\\lambda` it is the linear recurrence
:math:`e_{t+1} = e_t - \\eta\\lambda\\, e_{t-\\tau}`, which converges if and only if
:math:`0 < \\eta\\lambda < 2 \\sin\\big(\\pi / (2(2\\tau + 1))\\big)` (S. A. Levin and R. M. May (1976), "A note on
difference-delay equations", Theoretical Population Biology 9(2);
:func:`delay_stability_threshold`): about :math:`\\pi / (2\\tau)` for large :math:`\\tau`, where plain
gradient descent (:math:`\\tau = 0`) allows 2.

Not done here: random delays, sparse updates, the races of real shared memory.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from .._checks import argument, check_integer, check_positive, check_tensor


def delay_stability_threshold(delay: int) -> float:
    """The largest :math:`\\eta\\lambda` for which gradient descent delayed by ``delay`` steps converges on a quadratic.

    :math:`2 \\sin\\big(\\pi / (2(2\\tau + 1))\\big)` for delay :math:`\\tau \\ge 0` (Levin and May, 1976):
    2 for :math:`\\tau = 0`, 1 for :math:`\\tau = 1`.
    """
    check_integer("delay_stability_threshold", argument("delay"), delay, 0)
    return 2 * math.sin(math.pi / (2 * (2 * delay + 1)))


def delayed_gradient_descent(
    grad: Callable[[torch.Tensor, int], torch.Tensor],
    theta0: torch.Tensor,
    *,
    lr: float,
    delay: int,
    steps: int,
) -> torch.Tensor:
    """Iterate :math:`\\theta_{t+1} = \\theta_t - \\eta\\, g(\\theta_{t-\\tau}, t - \\tau)` and return every iterate.

    ``grad(theta, s)`` is the gradient at the iterate :math:`\\theta_s` (``s`` lets a stochastic
    gradient draw the mini-batch of the step at which the worker read the parameters; before the
    start, :math:`s < 0`, it is the gradient at :math:`\\theta_0` with ``s = 0``).  Returns a tensor of
    shape ``(steps + 1, P)``: row :math:`t` is :math:`\\theta_t`.  ``delay=0`` is plain gradient descent.
    """
    fn = "delayed_gradient_descent"
    if not callable(grad):
        raise TypeError(f"{fn}: argument 'grad' must be callable, got {type(grad).__name__}")
    check_tensor(fn, "theta0", theta0, ndim=1, floating=True)
    check_positive(fn, argument("lr"), lr)
    for name, value in (("delay", delay), ("steps", steps)):
        check_integer(fn, argument(name), value, 0)
    thetas = theta0.new_empty(steps + 1, theta0.numel())  # (steps + 1, P)
    thetas[0] = theta0
    for t in range(steps):
        read = max(t - delay, 0)  # the iterate the worker read
        g = grad(thetas[read].clone(), read)
        check_tensor(fn, "grad(theta, s)", g)
        if g.shape != theta0.shape:
            raise ValueError(f"{fn}: grad(theta, s) must return a tensor of shape {tuple(theta0.shape)}, got {tuple(g.shape)}")
        thetas[t + 1] = thetas[t] - lr * g
    return thetas
