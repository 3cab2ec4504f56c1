"""Adagrad: the core :func:`adagrad` and the class :class:`Adagrad`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from ._checks import check_functional, check_step_number
from ._optimizer import Option, Optimizer, check_core_options


def _adagrad(params, grads, state_sums, *, step, lr, lr_decay, weight_decay, eps, maximize) -> None:
    clr = lr / (1 + (step - 1) * lr_decay)  # gamma_t, the decayed learning rate
    with torch.no_grad():
        for p, g, state_sum in zip(params, grads, state_sums):
            g = -g if maximize else g
            if weight_decay != 0:
                g = g.add(p, alpha=weight_decay)
            state_sum.addcmul_(g, g, value=1)  # s_t = s_{t-1} + g_t^2
            std = state_sum.sqrt().add_(eps)  # sqrt(s_t) + eps
            p.addcdiv_(g, std, value=-clr)


def adagrad(
    params: Sequence[torch.Tensor],
    grads: Sequence[torch.Tensor],
    state_sums: list[torch.Tensor],
    *,
    step: int,
    lr: float,
    lr_decay: float,
    weight_decay: float,
    eps: float,
    maximize: bool = False,
) -> None:
    """Step number ``step`` (1 for the first) of Adagrad.

    .. math::

        s_t = s_{t-1} + g_t^2, \\qquad
        \\gamma_t = \\frac{\\gamma}{1 + (t - 1)\\,\\eta}, \\qquad
        \\theta_t = \\theta_{t-1} - \\gamma_t \\frac{g_t}{\\sqrt{s_t} + \\epsilon}

    with ``lr_decay`` :math:`\\eta` and :math:`g_t` after ``maximize`` and ``weight_decay``.
    Conventions, those of ``torch.optim.Adagrad``: :math:`s_0` is ``initial_accumulator_value``
    in every entry (the class fills ``state_sums`` with it); :math:`\\epsilon` is added outside
    the square root; the learning-rate decay :math:`\\gamma_t` is torch's addition, not in the paper.

    ``state_sums[i]`` holds :math:`s` for ``params[i]``; both are updated in place.

    Reference: J. Duchi, E. Hazan, Y. Singer (2011), "Adaptive subgradient methods for online
    learning and stochastic optimization", JMLR 12.
    """
    options = dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay, eps=eps, maximize=maximize)
    check_core_options("adagrad", Adagrad.options, options)
    check_step_number("adagrad", step)
    check_functional("adagrad", params, grads, state_sums=state_sums)
    _adagrad(params, grads, state_sums, step=step, **options)


class Adagrad(Optimizer):
    """Adagrad; the rule is :func:`adagrad`.  Defaults are torch's.

    State of each parameter: ``"step"`` and ``"sum"``, filled with the ``initial_accumulator_value``
    of its group at the first step.  A deliberate difference: torch fills the sums at construction
    with the constructor's ``initial_accumulator_value`` and ignores a group's own value, which
    only a group that sets one notices.
    """

    options = (
        Option("lr", 1e-2, r"The learning rate :math:`\gamma`"),
        Option("lr_decay", 0.0, r"The learning-rate decay :math:`\eta`"),
        Option("weight_decay", 0.0, r"The L2 penalty :math:`\lambda`, added to the gradient"),
        Option("initial_accumulator_value", 0.0, r"The start :math:`s_0` of the sum of squared gradients"),
        Option("eps", 1e-10, r"The :math:`\epsilon` added to :math:`\sqrt{s_t}`"),
        Option("maximize", False, "Ascend: the gradient is negated first"),
    )

    def _state_starts(self, group: Mapping[str, object]) -> dict[str, float]:
        return {"sum": group["initial_accumulator_value"]}

    def _update(self, params, grads, states, options) -> None:
        del options["initial_accumulator_value"]  # read once, when the sums are made
        for p, g, state in zip(params, grads, states):
            _adagrad([p], [g], [state["sum"]], step=state["step"], **options)
