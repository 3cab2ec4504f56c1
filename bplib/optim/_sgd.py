"""Stochastic gradient descent with heavy-ball or Nesterov momentum: the core :func:`sgd` and the class :class:`SGD`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from ._checks import check_functional, check_tensor_list
from ._optimizer import NO_DEFAULT, Option, Optimizer, check_core_options


def _sgd(params, grads, momentum_buffers, *, lr, momentum, dampening, nesterov, weight_decay, maximize) -> None:
    with torch.no_grad():
        for i, (p, g) in enumerate(zip(params, grads)):
            g = -g if maximize else g
            if weight_decay != 0:
                g = g.add(p, alpha=weight_decay)  # g + lambda * theta
            if momentum != 0:
                buf = momentum_buffers[i]
                if buf is None:
                    buf = momentum_buffers[i] = g.clone()  # b_1 = g_1: no dampening on the first step
                else:
                    buf.mul_(momentum).add_(g, alpha=1 - dampening)  # b_t = mu b_{t-1} + (1 - tau) g_t
                g = g.add(buf, alpha=momentum) if nesterov else buf
            p.add_(g, alpha=-lr)


def _check_nesterov(fn: str, options: Mapping[str, object], where: str | None = None) -> None:
    if options["nesterov"] and (options["momentum"] <= 0 or options["dampening"] != 0):
        raise ValueError(
            f"{fn}: {'' if where is None else f'in {where}, '}nesterov=True requires momentum > 0 and dampening = 0, "
            f"got momentum={options['momentum']!r} and dampening={options['dampening']!r}"
        )


def sgd(
    params: Sequence[torch.Tensor],
    grads: Sequence[torch.Tensor],
    momentum_buffers: list[torch.Tensor | None] | None,
    *,
    lr: float,
    momentum: float,
    dampening: float,
    nesterov: bool,
    weight_decay: float,
    maximize: bool = False,
) -> None:
    """One step of stochastic gradient descent, with heavy-ball or Nesterov momentum.

    .. math::

        b_1 = g_1, \\qquad b_t = \\mu\\, b_{t-1} + (1 - \\tau)\\, g_t \\quad (t > 1), \\qquad
        \\theta_t = \\theta_{t-1} - \\gamma \\,\\begin{cases}
            g_t & \\mu = 0 \\\\
            b_t & \\text{heavy ball} \\\\
            g_t + \\mu\\, b_t & \\text{Nesterov}
        \\end{cases}

    with momentum :math:`\\mu`, dampening :math:`\\tau` and :math:`g_t` after ``maximize`` and
    ``weight_decay`` (module docstring).  Conventions, those of ``torch.optim.SGD``:

    * the momentum buffer starts at the first gradient (no zero start, no dampening on step 1);
    * the learning rate multiplies the buffer, :math:`\\theta \\leftarrow \\theta - \\gamma b`, rather
      than entering it (:math:`v \\leftarrow \\mu v - \\gamma g`, :math:`\\theta \\leftarrow \\theta + v`,
      Sutskever et al.); the two agree while :math:`\\gamma` is constant;
    * Nesterov momentum in the form of Sutskever et al. (2013), rewritten in the variable
      that is evaluated (Bengio et al., 2013): the step is :math:`g_t + \\mu b_t`.

    ``momentum_buffers[i]`` holds the buffer of ``params[i]``; an entry ``None`` means "no step
    with momentum yet", and is replaced by a new buffer on this step.  It may be ``None`` as a
    whole when ``momentum == 0``.  ``params`` and ``momentum_buffers`` are updated in place.

    References: B. T. Polyak (1964), "Some methods of speeding up the convergence of iteration
    methods"; Y. Nesterov (1983), "A method for solving the convex programming problem with
    convergence rate O(1/k^2)"; I. Sutskever, J. Martens, G. Dahl, G. Hinton (2013), "On the
    importance of initialization and momentum in deep learning", ICML; Y. Bengio,
    N. Boulanger-Lewandowski, R. Pascanu (2013), "Advances in optimizing recurrent networks", ICASSP.
    """
    options = dict(
        lr=lr, momentum=momentum, dampening=dampening, nesterov=nesterov, weight_decay=weight_decay, maximize=maximize
    )
    check_core_options("sgd", SGD.options, options)
    _check_nesterov("sgd", options)
    check_functional("sgd", params, grads)
    if momentum != 0:
        check_tensor_list("sgd", "momentum_buffers", momentum_buffers, params, state=True, none_allowed=True)
    _sgd(params, grads, momentum_buffers, **options)


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum (heavy ball or Nesterov); the rule is :func:`sgd`.

    Unlike torch's, the learning rate has no default.  State of each parameter: ``"step"``, and
    ``"momentum_buffer"`` from the first step with momentum (torch's SGD keeps only the buffer).
    """

    options = (
        Option("lr", NO_DEFAULT, r"The learning rate :math:`\gamma`"),
        Option("momentum", 0.0, r"The momentum :math:`\mu`"),
        Option("dampening", 0.0, r"The dampening :math:`\tau`", high=1.0),
        Option("nesterov", False, "Nesterov momentum instead of the heavy ball; needs momentum > 0 and dampening = 0"),
        Option("weight_decay", 0.0, r"The L2 penalty :math:`\lambda`, added to the gradient"),
        Option("maximize", False, "Ascend: the gradient is negated first"),
    )

    def _check_combination(self, fn: str, options: Mapping[str, object], where: str | None) -> None:
        _check_nesterov(fn, options, where)

    def _update(self, params, grads, states, options) -> None:
        buffers = [state.get("momentum_buffer") for state in states]  # None: no step with momentum yet
        _sgd(params, grads, buffers, **options)
        if options["momentum"] != 0:
            for state, buffer in zip(states, buffers):
                state["momentum_buffer"] = buffer
