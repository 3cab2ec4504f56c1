"""Adam and AdamW: the cores :func:`adam` and :func:`adamw` and the classes :class:`Adam` and :class:`AdamW`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from ._checks import check_functional, check_step_number, check_tensor_list
from ._optimizer import Option, Optimizer, check_core_options


def _adam(
    params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, *,
    step, lr, beta1, beta2, eps, weight_decay, amsgrad, maximize,
) -> None:  # fmt: skip
    bias_correction1 = 1 - beta1**step  # 1 - beta1^t
    bias_correction2_sqrt = (1 - beta2**step) ** 0.5  # sqrt(1 - beta2^t)
    step_size = lr / bias_correction1
    with torch.no_grad():
        for i, (p, g, exp_avg, exp_avg_sq) in enumerate(zip(params, grads, exp_avgs, exp_avg_sqs)):
            g = -g if maximize else g
            if weight_decay != 0:
                g = g.add(p, alpha=weight_decay)  # L2 penalty, coupled with the adaptive scaling
            exp_avg.lerp_(g, 1 - beta1)  # m_t = beta1 m_{t-1} + (1 - beta1) g_t
            exp_avg_sq.mul_(beta2).addcmul_(g, g, value=1 - beta2)  # v_t = beta2 v_{t-1} + (1 - beta2) g_t^2
            if amsgrad:
                # vmax_t = max(vmax_{t-1}, v_t), written over vmax_{t-1}
                torch.maximum(max_exp_avg_sqs[i], exp_avg_sq, out=max_exp_avg_sqs[i])
                denom = (max_exp_avg_sqs[i].sqrt() / bias_correction2_sqrt).add_(eps)
            else:
                denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps)  # sqrt(v_t / (1 - beta2^t)) + eps
            p.addcdiv_(exp_avg, denom, value=-step_size)


def _adamw(
    params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, *,
    step, lr, beta1, beta2, eps, weight_decay, amsgrad, maximize,
) -> None:  # fmt: skip
    if weight_decay != 0:
        with torch.no_grad():
            for p in params:
                p.mul_(1 - lr * weight_decay)  # theta <- (1 - gamma lambda) theta
    # the moments do not depend on theta, so decaying every tensor before the Adam step changes no rounding
    _adam(
        params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs,
        step=step, lr=lr, beta1=beta1, beta2=beta2, eps=eps, weight_decay=0.0, amsgrad=amsgrad, maximize=maximize,
    )  # fmt: skip


def _check_adam_call(fn, options, params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, *, step, **values) -> None:
    check_core_options(fn, options, values)
    check_step_number(fn, step)
    check_functional(fn, params, grads, exp_avgs=exp_avgs, exp_avg_sqs=exp_avg_sqs)
    if values["amsgrad"]:
        check_tensor_list(fn, "max_exp_avg_sqs", max_exp_avg_sqs, params, state=True)


def adam(
    params: Sequence[torch.Tensor],
    grads: Sequence[torch.Tensor],
    exp_avgs: list[torch.Tensor],
    exp_avg_sqs: list[torch.Tensor],
    max_exp_avg_sqs: list[torch.Tensor] | None,
    *,
    step: int,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    amsgrad: bool,
    maximize: bool = False,
) -> None:
    """Step number ``step`` (1 for the first) of Adam, optionally AMSGrad.

    .. math::

        m_t = \\beta_1 m_{t-1} + (1 - \\beta_1) g_t, \\qquad
        v_t = \\beta_2 v_{t-1} + (1 - \\beta_2) g_t^2, \\qquad
        \\theta_t = \\theta_{t-1} - \\frac{\\gamma}{1 - \\beta_1^t}\\,
            \\frac{m_t}{\\sqrt{\\hat v_t} / \\sqrt{1 - \\beta_2^t} + \\epsilon}

    with :math:`\\hat v_t = v_t`, or :math:`\\hat v_t = \\max(\\hat v_{t-1}, v_t)` with ``amsgrad``,
    and :math:`g_t` after ``maximize`` and ``weight_decay``.  Conventions, those of
    ``torch.optim.Adam``: :math:`m_0 = v_0 = \\hat v_0 = 0`; both bias corrections as in the
    paper, with :math:`\\epsilon` added after the second one (the paper's
    :math:`\\hat m_t / (\\sqrt{\\hat v_t} + \\epsilon)`); ``weight_decay`` is an L2 penalty added
    to the gradient, so it is rescaled by the adaptive denominator like the gradient (see
    :func:`adamw` for the decoupled form); AMSGrad keeps the running maximum of the uncorrected
    :math:`v_t` and bias-corrects it like :math:`v_t` (the paper's AMSGrad has no bias correction).

    ``exp_avgs`` holds :math:`m`, ``exp_avg_sqs`` :math:`v` and ``max_exp_avg_sqs``
    :math:`\\hat v` (only read with ``amsgrad``; may be ``None`` otherwise); all, and
    ``params``, are updated in place.

    References: D. P. Kingma, J. Ba (2015), "Adam: A method for stochastic optimization", ICLR;
    S. J. Reddi, S. Kale, S. Kumar (2018), "On the convergence of Adam and beyond", ICLR (AMSGrad).
    """
    options = dict(
        step=step, lr=lr, beta1=beta1, beta2=beta2, eps=eps,
        weight_decay=weight_decay, amsgrad=amsgrad, maximize=maximize,
    )  # fmt: skip
    _check_adam_call("adam", Adam.options, params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, **options)
    _adam(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, **options)


def adamw(
    params: Sequence[torch.Tensor],
    grads: Sequence[torch.Tensor],
    exp_avgs: list[torch.Tensor],
    exp_avg_sqs: list[torch.Tensor],
    max_exp_avg_sqs: list[torch.Tensor] | None,
    *,
    step: int,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    amsgrad: bool,
    maximize: bool = False,
) -> None:
    """Step number ``step`` (1 for the first) of AdamW: Adam with decoupled weight decay.

    .. math::

        \\theta_{t-1} \\leftarrow (1 - \\gamma\\lambda)\\,\\theta_{t-1},
        \\quad \\text{then the step of } \\texttt{adam} \\text{ with } \\lambda = 0.

    The decay shrinks the weights directly instead of entering the gradient, so the adaptive
    denominator does not rescale it.  Convention, that of ``torch.optim.AdamW``: the decay is
    multiplied by the learning rate :math:`\\gamma` (the paper multiplies it by the schedule
    multiplier :math:`\\eta_t` alone).  Arguments as for :func:`adam`.

    Reference: I. Loshchilov, F. Hutter (2019), "Decoupled weight decay regularization", ICLR.
    """
    options = dict(
        step=step, lr=lr, beta1=beta1, beta2=beta2, eps=eps,
        weight_decay=weight_decay, amsgrad=amsgrad, maximize=maximize,
    )  # fmt: skip
    _check_adam_call("adamw", AdamW.options, params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, **options)
    _adamw(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, **options)


def _adam_options(weight_decay: Option) -> tuple[Option, ...]:
    return (
        Option("lr", 1e-3, r"The learning rate :math:`\gamma`"),
        Option(
            "betas", (0.9, 0.999), r"The decay rates :math:`\beta_1, \beta_2` of the two moments",
            high=1.0, high_open=True, elements=("beta1", "beta2"),
        ),  # fmt: skip
        Option("eps", 1e-8, r"The :math:`\epsilon` added to the corrected root"),
        weight_decay,
        Option("amsgrad", False, "Divide by the running maximum of the second moment (AMSGrad)"),
        Option("maximize", False, "Ascend: the gradient is negated first"),
    )


class Adam(Optimizer):
    """Adam, optionally AMSGrad, with L2 weight decay; the rule is :func:`adam`.  Defaults are torch's.

    State of each parameter: ``"step"``, ``"exp_avg"``, ``"exp_avg_sq"``, and ``"max_exp_avg_sq"``
    when ``amsgrad``, all starting at zero.
    """

    options = _adam_options(Option("weight_decay", 0.0, r"The L2 penalty :math:`\lambda`, added to the gradient"))
    _rule = staticmethod(_adam)

    def _state_starts(self, group: Mapping[str, object]) -> dict[str, float]:
        starts = {"exp_avg": 0.0, "exp_avg_sq": 0.0}
        if group["amsgrad"]:
            starts["max_exp_avg_sq"] = 0.0
        return starts

    def _update(self, params, grads, states, options) -> None:
        beta1, beta2 = options.pop("betas")
        for p, g, state in zip(params, grads, states):
            max_exp_avg_sqs = [state["max_exp_avg_sq"]] if options["amsgrad"] else None
            self._rule(
                [p], [g], [state["exp_avg"]], [state["exp_avg_sq"]], max_exp_avg_sqs,
                step=state["step"], beta1=beta1, beta2=beta2, **options,
            )  # fmt: skip


class AdamW(Adam):
    """AdamW, Adam with decoupled weight decay; the rule is :func:`adamw`.  Defaults are torch's
    (note ``weight_decay=1e-2``, where Adam's is 0).  State as for :class:`Adam`.
    """

    options = _adam_options(
        Option("weight_decay", 1e-2, r"The decoupled decay :math:`\lambda`: weights shrink by :math:`\gamma\lambda`")
    )
    _rule = staticmethod(_adamw)
