"""RMSprop, optionally centred and with momentum: the core :func:`rmsprop` and the class :class:`RMSprop`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from ._checks import check_functional, check_tensor_list
from ._optimizer import Option, Optimizer, check_core_options


def _rmsprop(
    params, grads, square_avgs, grad_avgs, momentum_buffers, *,
    lr, alpha, eps, weight_decay, momentum, centered, maximize,
) -> None:  # fmt: skip
    with torch.no_grad():
        for i, (p, g, square_avg) in enumerate(zip(params, grads, square_avgs)):
            g = -g if maximize else g
            if weight_decay != 0:
                g = g.add(p, alpha=weight_decay)
            square_avg.mul_(alpha).addcmul_(g, g, value=1 - alpha)  # v_t = alpha v_{t-1} + (1 - alpha) g_t^2
            if centered:
                grad_avg = grad_avgs[i]
                grad_avg.lerp_(g, 1 - alpha)  # m_t = alpha m_{t-1} + (1 - alpha) g_t
                avg = square_avg.addcmul(grad_avg, grad_avg, value=-1).sqrt_()  # sqrt(v_t - m_t^2)
            else:
                avg = square_avg.sqrt()
            avg = avg.add_(eps)
            if momentum > 0:
                buf = momentum_buffers[i]
                buf.mul_(momentum).addcdiv_(g, avg)  # b_t = mu b_{t-1} + g_t / (sqrt(.) + eps)
                p.add_(buf, alpha=-lr)
            else:
                p.addcdiv_(g, avg, value=-lr)


def rmsprop(
    params: Sequence[torch.Tensor],
    grads: Sequence[torch.Tensor],
    square_avgs: list[torch.Tensor],
    grad_avgs: list[torch.Tensor] | None,
    momentum_buffers: list[torch.Tensor] | None,
    *,
    lr: float,
    alpha: float,
    eps: float,
    weight_decay: float,
    momentum: float,
    centered: bool,
    maximize: bool = False,
) -> None:
    """One step of RMSprop, optionally centred and with momentum.

    .. math::

        v_t = \\alpha v_{t-1} + (1 - \\alpha) g_t^2, \\qquad
        d_t = \\sqrt{v_t} + \\epsilon, \\quad\\text{or, centred,}\\quad
        m_t = \\alpha m_{t-1} + (1 - \\alpha) g_t, \\quad d_t = \\sqrt{v_t - m_t^2} + \\epsilon,

    .. math::

        \\theta_t = \\theta_{t-1} - \\gamma \\frac{g_t}{d_t}, \\quad\\text{or with momentum } \\mu > 0:\\quad
        b_t = \\mu b_{t-1} + \\frac{g_t}{d_t}, \\quad \\theta_t = \\theta_{t-1} - \\gamma b_t,

    with :math:`g_t` after ``maximize`` and ``weight_decay``.  Conventions, those of
    ``torch.optim.RMSprop``: :math:`v_0 = m_0 = b_0 = 0`, with no bias correction;
    :math:`\\epsilon` is added outside the square root (TensorFlow adds it inside); the
    momentum buffer accumulates the normalised gradient, and the learning rate multiplies it.

    ``square_avgs`` holds :math:`v`, ``grad_avgs`` :math:`m` (only read when ``centered``; may be
    ``None`` otherwise), ``momentum_buffers`` :math:`b` (only read when ``momentum > 0``; may be
    ``None`` otherwise); all, and ``params``, are updated in place.

    References: T. Tieleman, G. Hinton (2012), "Lecture 6.5 -- rmsprop: Divide the gradient by a
    running average of its recent magnitude", COURSERA: Neural Networks for Machine Learning; the
    centred form from A. Graves (2013), "Generating sequences with recurrent neural networks",
    arXiv:1308.0850.
    """
    fn = "rmsprop"
    options = dict(
        lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum, centered=centered, maximize=maximize
    )
    check_core_options(fn, RMSprop.options, options)
    check_functional(fn, params, grads, square_avgs=square_avgs)
    if centered:
        check_tensor_list(fn, "grad_avgs", grad_avgs, params, state=True)
    if momentum > 0:
        check_tensor_list(fn, "momentum_buffers", momentum_buffers, params, state=True)
    _rmsprop(params, grads, square_avgs, grad_avgs, momentum_buffers, **options)


class RMSprop(Optimizer):
    """RMSprop, optionally centred and with momentum; the rule is :func:`rmsprop`.  Defaults are torch's.

    State of each parameter: ``"step"``, ``"square_avg"``, and ``"grad_avg"`` when ``centered``,
    ``"momentum_buffer"`` when ``momentum > 0``, all starting at zero.
    """

    options = (
        Option("lr", 1e-2, r"The learning rate :math:`\gamma`"),
        Option("alpha", 0.99, r"The smoothing constant :math:`\alpha` of the averages", high=1.0),
        Option("eps", 1e-8, r"The :math:`\epsilon` added to the root"),
        Option("weight_decay", 0.0, r"The L2 penalty :math:`\lambda`, added to the gradient"),
        Option("momentum", 0.0, r"The momentum :math:`\mu`"),
        Option("centered", False, "Divide by the root of the centred second moment, an estimate of the variance"),
        Option("maximize", False, "Ascend: the gradient is negated first"),
    )

    def _state_starts(self, group: Mapping[str, object]) -> dict[str, float]:
        starts = {"square_avg": 0.0}
        if group["centered"]:
            starts["grad_avg"] = 0.0
        if group["momentum"] > 0:
            starts["momentum_buffer"] = 0.0
        return starts

    def _update(self, params, grads, states, options) -> None:
        square_avgs = [state["square_avg"] for state in states]
        grad_avgs = [state["grad_avg"] for state in states] if options["centered"] else None
        buffers = [state["momentum_buffer"] for state in states] if options["momentum"] > 0 else None
        _rmsprop(params, grads, square_avgs, grad_avgs, buffers, **options)
