"""First-order optimisers: SGD with momentum, Adagrad, RMSprop, Adam and AdamW, plus gradient-norm clipping.

bplib has no autograd, so an optimiser here is handed its gradients: ``opt.step(grads)``
with ``grads[i]`` the gradient of the loss with respect to ``params[i]`` (for an
:class:`bplib.MLP`, ``dweights`` and ``dbiases`` interleaved as in ``MLP.parameters``).

Each rule comes twice, as in :mod:`torch.optim`:

* a functional core (:func:`sgd`, :func:`adagrad`, :func:`rmsprop`, :func:`adam`, :func:`adamw`)
  with keyword-only hyper-parameters, which updates the parameters and the state tensors
  handed to it in place;
* a thin class (:class:`SGD`, :class:`Adagrad`, :class:`RMSprop`, :class:`Adam`, :class:`AdamW`)
  that checks the hyper-parameters once, keeps the state of every parameter and the step
  count, checks ``grads`` at every step and calls the same core.

Notation, for one parameter tensor :math:`\\theta`: :math:`g_t` is the gradient handed to
step :math:`t = 1, 2, \\dots`, :math:`\\gamma` the learning rate ``lr``, :math:`\\lambda` the
weight decay, products and powers of tensors are element-wise.  Every rule follows the
update and the order of floating-point operations of torch 2.x's single-tensor
implementation (the one torch picks on the CPU; on a GPU it picks ``foreach`` kernels, which
may round differently), so that bplib and ``torch.optim`` agree to rounding; the tests
check 200 steps of every option against ``torch.optim`` to 1e-12 relative in float64.
Conventions shared by every rule:

* ``maximize=True`` ascends: the gradient is negated first, :math:`g_t \\leftarrow -g_t`.
* ``weight_decay`` is an L2 penalty added to the gradient after the negation,
  :math:`g_t \\leftarrow g_t + \\lambda\\theta_{t-1}` -- except in AdamW, where it is decoupled.
* The gradients handed in are never modified.
* Updates run under :func:`torch.no_grad`, so parameters that ``require_grad`` may be updated.

The classes take torch's defaults; the hyper-parameters after ``lr`` are keyword-only (torch
takes them positionally, in an order that differs between classes).  They are attributes read at
every step: a learning-rate schedule is ``opt.lr = schedule(t)`` between steps.  They are checked
by the constructor only.

Not done here: no parameter groups (one set of hyper-parameters per optimiser), no
closures that re-evaluate the loss, no scheduler classes, no ``state_dict``, no sparse or
complex parameters, no tensor-valued hyper-parameters, no fused or ``_foreach`` kernels
(one loop over the parameters, written to be read).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from ._checks import check_same_dtype_and_device, check_shape, check_tensor

# --------------------------------------------------------------------------------------------
# Checks shared by the functional cores and the classes
# --------------------------------------------------------------------------------------------


def _check_range(
    fn: str, name: str, value: object, low: float, high: float | None = None, *, high_open: bool = False
) -> None:
    """Check that ``value`` is a finite real number in [low, inf), [low, high], or [low, high) with ``high_open``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{fn}: argument '{name}' must be a real number, got {type(value).__name__} {value!r}")
    if high is None:
        bounds, inside = f">= {low:g}", value >= low
    else:
        bounds = f"in [{low:g}, {high:g}{')' if high_open else ']'}"
        inside = low <= value < high if high_open else low <= value <= high
    if not math.isfinite(value) or not inside:  # NaN fails every comparison
        raise ValueError(f"{fn}: argument '{name}' must be {bounds}, got {value!r}")


def _check_flag(fn: str, name: str, value: object) -> None:
    if not isinstance(value, bool):
        raise TypeError(f"{fn}: argument '{name}' must be True or False, got {type(value).__name__} {value!r}")


def _check_params(fn: str, params: object) -> list[torch.Tensor]:
    """Check that ``params`` is a non-empty list (or tuple) of distinct floating tensors."""
    if isinstance(params, torch.Tensor):
        raise TypeError(f"{fn}: argument 'params' must be a list of tensors, got a single tensor; wrap it: [p]")
    if not isinstance(params, (list, tuple)):
        raise TypeError(f"{fn}: argument 'params' must be a list of tensors, got {type(params).__name__}")
    if len(params) == 0:
        raise ValueError(f"{fn}: argument 'params' must hold at least one tensor, got an empty {type(params).__name__}")
    index_of: dict[int, int] = {}
    for i, p in enumerate(params):
        check_tensor(fn, f"params[{i}]", p, floating=True)
        if id(p) in index_of:
            raise ValueError(
                f"{fn}: argument 'params' holds the same tensor at indices {index_of[id(p)]} and {i}; "
                f"it would be updated twice per step"
            )
        index_of[id(p)] = i
    return list(params)


def _check_tensor_list(
    fn: str,
    name: str,
    xs: object,
    params: Sequence[torch.Tensor],
    *,
    containers: tuple[type, ...] = (list, tuple),
    none_allowed: bool = False,
) -> None:
    """Check that ``xs`` holds one tensor per parameter, each with the shape, dtype and device of its parameter."""
    if not isinstance(xs, containers):
        kinds = " or ".join(c.__name__ for c in containers)
        raise TypeError(
            f"{fn}: argument '{name}' must be a {kinds} of tensors, one per parameter, got {type(xs).__name__}"
        )
    if len(xs) != len(params):
        raise ValueError(f"{fn}: argument '{name}' must hold {len(params)} tensors, one per parameter, got {len(xs)}")
    for i, (x, p) in enumerate(zip(xs, params)):
        if x is None and none_allowed:
            continue
        check_tensor(fn, f"{name}[{i}]", x)
        check_shape(fn, f"{name}[{i}]", x, tuple(p.shape), f"the shape of params[{i}]")
        check_same_dtype_and_device(fn, (f"params[{i}]", p), (f"{name}[{i}]", x))


def _check_step_number(fn: str, step: object) -> None:
    if isinstance(step, bool) or not isinstance(step, int) or step < 1:
        raise ValueError(f"{fn}: argument 'step' must be the number of this step, an integer >= 1, got {step!r}")


def _check_functional(fn: str, params: object, grads: object, **states: object) -> None:
    """The list checks of a functional core: ``params``, ``grads``, and the state lists it always reads."""
    params = _check_params(fn, params)
    _check_tensor_list(fn, "grads", grads, params)
    for name, xs in states.items():
        _check_tensor_list(fn, name, xs, params, containers=(list,))


# --------------------------------------------------------------------------------------------
# SGD with momentum
# --------------------------------------------------------------------------------------------


def _check_sgd_options(fn, *, lr, momentum, dampening, nesterov, weight_decay, maximize) -> None:
    _check_range(fn, "lr", lr, 0.0)
    _check_range(fn, "momentum", momentum, 0.0)
    _check_range(fn, "dampening", dampening, 0.0, 1.0)
    _check_range(fn, "weight_decay", weight_decay, 0.0)
    _check_flag(fn, "nesterov", nesterov)
    _check_flag(fn, "maximize", maximize)
    if nesterov and (momentum <= 0 or dampening != 0):
        raise ValueError(
            f"{fn}: nesterov=True requires momentum > 0 and dampening = 0, "
            f"got momentum={momentum!r} and dampening={dampening!r}"
        )


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


def sgd(
    params: list[torch.Tensor],
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
    _check_sgd_options("sgd", **options)
    _check_functional("sgd", params, grads)
    if momentum != 0:
        _check_tensor_list("sgd", "momentum_buffers", momentum_buffers, params, containers=(list,), none_allowed=True)
    _sgd(params, grads, momentum_buffers, **options)


# --------------------------------------------------------------------------------------------
# Adagrad
# --------------------------------------------------------------------------------------------


def _check_adagrad_options(fn, *, lr, lr_decay, weight_decay, eps, maximize) -> None:
    _check_range(fn, "lr", lr, 0.0)
    _check_range(fn, "lr_decay", lr_decay, 0.0)
    _check_range(fn, "weight_decay", weight_decay, 0.0)
    _check_range(fn, "eps", eps, 0.0)
    _check_flag(fn, "maximize", maximize)


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
    params: list[torch.Tensor],
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
    _check_adagrad_options("adagrad", **options)
    _check_step_number("adagrad", step)
    _check_functional("adagrad", params, grads, state_sums=state_sums)
    _adagrad(params, grads, state_sums, step=step, **options)


# --------------------------------------------------------------------------------------------
# RMSprop
# --------------------------------------------------------------------------------------------


def _check_rmsprop_options(fn, *, lr, alpha, eps, weight_decay, momentum, centered, maximize) -> None:
    _check_range(fn, "lr", lr, 0.0)
    _check_range(fn, "alpha", alpha, 0.0, 1.0)
    _check_range(fn, "eps", eps, 0.0)
    _check_range(fn, "weight_decay", weight_decay, 0.0)
    _check_range(fn, "momentum", momentum, 0.0)
    _check_flag(fn, "centered", centered)
    _check_flag(fn, "maximize", maximize)


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
    params: list[torch.Tensor],
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
    _check_rmsprop_options(fn, **options)
    _check_functional(fn, params, grads, square_avgs=square_avgs)
    if centered:
        _check_tensor_list(fn, "grad_avgs", grad_avgs, params, containers=(list,))
    if momentum > 0:
        _check_tensor_list(fn, "momentum_buffers", momentum_buffers, params, containers=(list,))
    _rmsprop(params, grads, square_avgs, grad_avgs, momentum_buffers, **options)


# --------------------------------------------------------------------------------------------
# Adam and AdamW
# --------------------------------------------------------------------------------------------


def _check_adam_options(
    fn, *, lr, beta1, beta2, eps, weight_decay, amsgrad, maximize, beta_names=("beta1", "beta2")
) -> None:
    _check_range(fn, "lr", lr, 0.0)
    _check_range(fn, beta_names[0], beta1, 0.0, 1.0, high_open=True)
    _check_range(fn, beta_names[1], beta2, 0.0, 1.0, high_open=True)
    _check_range(fn, "eps", eps, 0.0)
    _check_range(fn, "weight_decay", weight_decay, 0.0)
    _check_flag(fn, "amsgrad", amsgrad)
    _check_flag(fn, "maximize", maximize)


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


def _check_adam_call(fn, params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, *, step, amsgrad, **options) -> None:
    _check_adam_options(fn, amsgrad=amsgrad, **options)
    _check_step_number(fn, step)
    _check_functional(fn, params, grads, exp_avgs=exp_avgs, exp_avg_sqs=exp_avg_sqs)
    if amsgrad:
        _check_tensor_list(fn, "max_exp_avg_sqs", max_exp_avg_sqs, params, containers=(list,))


def adam(
    params: list[torch.Tensor],
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
    _check_adam_call("adam", params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, **options)
    _adam(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, **options)


def adamw(
    params: list[torch.Tensor],
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
    _check_adam_call("adamw", params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, **options)
    _adamw(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, **options)


# --------------------------------------------------------------------------------------------
# The classes: checked hyper-parameters, per-parameter state, checked gradients
# --------------------------------------------------------------------------------------------


class _Optimizer:
    """What the five optimisers share: the parameter list, the step count and the checks of ``step``.

    A subclass checks its hyper-parameters, builds its state lists (one entry per parameter,
    named as the arguments of its functional core) and implements ``_update(grads)``.
    """

    def __init__(self, params: Sequence[torch.Tensor]) -> None:
        self.params: list[torch.Tensor] = _check_params(type(self).__name__, params)
        self.steps = 0
        """Number of steps taken."""

    def step(self, grads: Sequence[torch.Tensor]) -> None:
        """Update ``params`` in place, given ``grads[i]``, the gradient of the loss with respect to ``params[i]``.

        ``grads`` is checked before anything is updated: a list (or tuple) with one tensor per
        parameter, of its shape, dtype and device.  It is not modified.
        """
        _check_tensor_list(f"{type(self).__name__}.step", "grads", grads, self.params)
        self.steps += 1
        self._update(list(grads))

    def _update(self, grads: list[torch.Tensor]) -> None:
        raise NotImplementedError  # every subclass has one


class SGD(_Optimizer):
    """Stochastic gradient descent with optional momentum (heavy ball or Nesterov); the rule is :func:`sgd`.

    Unlike torch's, the learning rate has no default.

    State: ``momentum_buffers[i]`` for ``params[i]``, ``None`` until the first step with momentum.
    """

    def __init__(
        self,
        params: Sequence[torch.Tensor],
        lr: float,
        *,
        momentum: float = 0.0,
        dampening: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
        maximize: bool = False,
    ) -> None:
        _check_sgd_options(
            "SGD", lr=lr, momentum=momentum, dampening=dampening, nesterov=nesterov,
            weight_decay=weight_decay, maximize=maximize,
        )  # fmt: skip
        super().__init__(params)
        self.lr, self.momentum, self.dampening, self.nesterov = lr, momentum, dampening, nesterov
        self.weight_decay, self.maximize = weight_decay, maximize
        self.momentum_buffers: list[torch.Tensor | None] = [None] * len(self.params)

    def _update(self, grads: list[torch.Tensor]) -> None:
        _sgd(
            self.params, grads, self.momentum_buffers,
            lr=self.lr, momentum=self.momentum, dampening=self.dampening, nesterov=self.nesterov,
            weight_decay=self.weight_decay, maximize=self.maximize,
        )  # fmt: skip


class Adagrad(_Optimizer):
    """Adagrad; the rule is :func:`adagrad`.  Defaults are torch's.

    State: ``state_sums[i]`` for ``params[i]``, filled with ``initial_accumulator_value`` at construction.
    """

    def __init__(
        self,
        params: Sequence[torch.Tensor],
        lr: float = 1e-2,
        *,
        lr_decay: float = 0.0,
        weight_decay: float = 0.0,
        initial_accumulator_value: float = 0.0,
        eps: float = 1e-10,
        maximize: bool = False,
    ) -> None:
        _check_adagrad_options(
            "Adagrad", lr=lr, lr_decay=lr_decay, weight_decay=weight_decay, eps=eps, maximize=maximize
        )
        _check_range("Adagrad", "initial_accumulator_value", initial_accumulator_value, 0.0)
        super().__init__(params)
        self.lr, self.lr_decay, self.weight_decay, self.eps, self.maximize = lr, lr_decay, weight_decay, eps, maximize
        self.state_sums = [torch.full_like(p, initial_accumulator_value) for p in self.params]  # s_0

    def _update(self, grads: list[torch.Tensor]) -> None:
        _adagrad(
            self.params, grads, self.state_sums,
            step=self.steps, lr=self.lr, lr_decay=self.lr_decay, weight_decay=self.weight_decay,
            eps=self.eps, maximize=self.maximize,
        )  # fmt: skip


class RMSprop(_Optimizer):
    """RMSprop, optionally centred and with momentum; the rule is :func:`rmsprop`.  Defaults are torch's.

    State: ``square_avgs[i]``, and ``grad_avgs[i]`` when ``centered``, ``momentum_buffers[i]`` when
    ``momentum > 0`` (otherwise these lists are ``None``), all starting at zero.
    """

    def __init__(
        self,
        params: Sequence[torch.Tensor],
        lr: float = 1e-2,
        *,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
        maximize: bool = False,
    ) -> None:
        _check_rmsprop_options(
            "RMSprop", lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
            centered=centered, maximize=maximize,
        )  # fmt: skip
        super().__init__(params)
        self.lr, self.alpha, self.eps, self.weight_decay = lr, alpha, eps, weight_decay
        self.momentum, self.centered, self.maximize = momentum, centered, maximize
        self.square_avgs = [torch.zeros_like(p) for p in self.params]
        self.grad_avgs = [torch.zeros_like(p) for p in self.params] if centered else None
        self.momentum_buffers = [torch.zeros_like(p) for p in self.params] if momentum > 0 else None

    def _update(self, grads: list[torch.Tensor]) -> None:
        _rmsprop(
            self.params, grads, self.square_avgs, self.grad_avgs, self.momentum_buffers,
            lr=self.lr, alpha=self.alpha, eps=self.eps, weight_decay=self.weight_decay,
            momentum=self.momentum, centered=self.centered, maximize=self.maximize,
        )  # fmt: skip


class Adam(_Optimizer):
    """Adam, optionally AMSGrad, with L2 weight decay; the rule is :func:`adam`.  Defaults are torch's.

    State: ``exp_avgs[i]``, ``exp_avg_sqs[i]``, and ``max_exp_avg_sqs[i]`` when ``amsgrad``
    (otherwise that list is ``None``), all starting at zero.
    """

    _rule = staticmethod(_adam)

    def __init__(
        self,
        params: Sequence[torch.Tensor],
        lr: float = 1e-3,
        *,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
        maximize: bool = False,
    ) -> None:
        fn = type(self).__name__
        if not (isinstance(betas, (tuple, list)) and len(betas) == 2):
            raise ValueError(f"{fn}: argument 'betas' must be a pair (beta1, beta2), got {betas!r}")
        _check_adam_options(
            fn, lr=lr, beta1=betas[0], beta2=betas[1], eps=eps, weight_decay=weight_decay,
            amsgrad=amsgrad, maximize=maximize, beta_names=("betas[0]", "betas[1]"),
        )  # fmt: skip
        super().__init__(params)
        self.lr, self.betas, self.eps, self.weight_decay = lr, tuple(betas), eps, weight_decay
        self.amsgrad, self.maximize = amsgrad, maximize
        self.exp_avgs = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sqs = [torch.zeros_like(p) for p in self.params]
        self.max_exp_avg_sqs = [torch.zeros_like(p) for p in self.params] if amsgrad else None

    def _update(self, grads: list[torch.Tensor]) -> None:
        beta1, beta2 = self.betas
        self._rule(
            self.params, grads, self.exp_avgs, self.exp_avg_sqs, self.max_exp_avg_sqs,
            step=self.steps, lr=self.lr, beta1=beta1, beta2=beta2, eps=self.eps,
            weight_decay=self.weight_decay, amsgrad=self.amsgrad, maximize=self.maximize,
        )  # fmt: skip


class AdamW(Adam):
    """AdamW, Adam with decoupled weight decay; the rule is :func:`adamw`.  Defaults are torch's
    (note ``weight_decay=1e-2``, where Adam's is 0).  State as for :class:`Adam`.
    """

    _rule = staticmethod(_adamw)

    def __init__(
        self,
        params: Sequence[torch.Tensor],
        lr: float = 1e-3,
        *,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        maximize: bool = False,
    ) -> None:
        super().__init__(
            params, lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad, maximize=maximize
        )


# --------------------------------------------------------------------------------------------
# Gradient clipping
# --------------------------------------------------------------------------------------------


def clip_grad_norm(grads: Sequence[torch.Tensor], max_norm: float) -> torch.Tensor:
    """Scale ``grads`` in place so that their global L2 norm is at most ``max_norm``; return the norm before.

    .. math::

        \\lVert g \\rVert = \\Big(\\sum_i \\lVert g_i \\rVert_2^2\\Big)^{1/2}, \\qquad
        c = \\min\\Big(1, \\frac{\\text{max\\_norm}}{\\lVert g \\rVert + 10^{-6}}\\Big), \\qquad
        g_i \\leftarrow c\\, g_i,

    the convention of ``torch.nn.utils.clip_grad_norm_`` (the :math:`10^{-6}` keeps :math:`c`
    finite for zero gradients, and leaves the clipped norm a hair below ``max_norm``).  All
    tensors are scaled by the same :math:`c`, so the direction of the whole gradient is kept;
    gradients already within the bound are multiplied by exactly 1.  The norm is the norm of
    the tensors concatenated into one vector, computed as the norm of the per-tensor norms.
    A non-finite norm is returned as is, and makes the gradients non-finite (as torch's default).

    ``grads``: a non-empty list (or tuple) of floating tensors of one dtype and device.
    Returns a 0-d tensor of that dtype and device.
    """
    fn = "clip_grad_norm"
    if not isinstance(grads, (list, tuple)):
        raise TypeError(f"{fn}: argument 'grads' must be a list of tensors, got {type(grads).__name__}")
    if len(grads) == 0:
        raise ValueError(f"{fn}: argument 'grads' must hold at least one tensor, got an empty {type(grads).__name__}")
    for i, g in enumerate(grads):
        check_tensor(fn, f"grads[{i}]", g, floating=True)
    check_same_dtype_and_device(fn, ("grads[0]", grads[0]), *((f"grads[{i}]", g) for i, g in enumerate(grads)))
    _check_range(fn, "max_norm", max_norm, 0.0)
    with torch.no_grad():
        norms = torch.stack([torch.linalg.vector_norm(g) for g in grads])  # (n,) = ||g_i||_2
        total_norm = torch.linalg.vector_norm(norms)  # ()
        clip_coef = torch.clamp(max_norm / (total_norm + 1e-6), max=1.0)  # () = c, no host sync
        for g in grads:
            g.mul_(clip_coef)
    return total_norm


__all__ = ["SGD", "Adagrad", "Adam", "AdamW", "RMSprop", "adagrad", "adam", "adamw", "clip_grad_norm", "rmsprop", "sgd"]
