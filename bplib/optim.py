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
implementation (the one torch uses on the CPU), so that bplib and ``torch.optim`` agree to
rounding; the tests check 200 steps of every option against ``torch.optim`` to 1e-12
relative in float64.  Conventions shared by every rule:

* ``maximize=True`` ascends: the gradient is negated first, :math:`g_t \\leftarrow -g_t`.
* ``weight_decay`` is an L2 penalty added to the gradient, :math:`g_t \\leftarrow g_t + \\lambda\\theta_{t-1}`,
  after the negation -- except in AdamW, where it is decoupled from the gradient.
* The gradients handed in are never modified.
* Updates run under :func:`torch.no_grad`, so parameters that ``require_grad`` may be updated.

Hyper-parameters are attributes of the class read at every step: a learning-rate schedule is
``opt.lr = schedule(t)`` between steps.  They are checked by the constructor only.

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


def _check_range(fn: str, name: str, value: object, low: float, high: float | None = None, *, high_open: bool = False) -> float:
    """Check that ``value`` is a finite real number in [low, high] (or [low, high) / [low, inf))."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{fn}: argument '{name}' must be a real number, got {type(value).__name__} {value!r}")
    if high is None:
        bounds, inside = f">= {low:g}", value >= low
    else:
        bounds = f"in [{low:g}, {high:g}{')' if high_open else ']'}"
        inside = low <= value < high if high_open else low <= value <= high
    if not math.isfinite(value) or not inside:  # NaN fails every comparison
        raise ValueError(f"{fn}: argument '{name}' must be {bounds}, got {value!r}")
    return float(value)


def _check_flag(fn: str, name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{fn}: argument '{name}' must be True or False, got {type(value).__name__} {value!r}")
    return value


def _check_params(fn: str, params: object) -> list[torch.Tensor]:
    """Check that ``params`` is a non-empty list (or tuple) of distinct floating tensors."""
    if isinstance(params, torch.Tensor):
        raise TypeError(f"{fn}: argument 'params' must be a list of tensors, got a single tensor; wrap it: [p]")
    if not isinstance(params, (list, tuple)):
        raise TypeError(f"{fn}: argument 'params' must be a list of tensors, got {type(params).__name__}")
    if len(params) == 0:
        raise ValueError(f"{fn}: argument 'params' must hold at least one tensor, got an empty {type(params).__name__}")
    seen: set[int] = set()
    for i, p in enumerate(params):
        check_tensor(fn, f"params[{i}]", p, floating=True)
        if id(p) in seen:
            raise ValueError(f"{fn}: argument 'params' holds the tensor at index {i} twice; it would be updated twice")
        seen.add(id(p))
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
        raise TypeError(f"{fn}: argument '{name}' must be a {kinds} of tensors, one per parameter, got {type(xs).__name__}")
    if len(xs) != len(params):
        raise ValueError(
            f"{fn}: argument '{name}' must hold {len(params)} tensors, one per parameter, got {len(xs)}"
        )
    for i, (x, p) in enumerate(zip(xs, params)):
        if x is None and none_allowed:
            continue
        check_tensor(fn, f"{name}[{i}]", x)
        check_shape(fn, f"{name}[{i}]", x, tuple(p.shape), f"the shape of params[{i}]")
        check_same_dtype_and_device(fn, (f"params[{i}]", p), (f"{name}[{i}]", x))


def _check_step_number(fn: str, step: object) -> int:
    if isinstance(step, bool) or not isinstance(step, int) or step < 1:
        raise ValueError(f"{fn}: argument 'step' must be the number of this step, an integer >= 1, got {step!r}")
    return step


def _check_functional(fn: str, params: object, grads: object, **states: object) -> None:
    """The list checks of a functional core: ``params``, ``grads`` and every state list (``None`` entries = unused)."""
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
    importance of initialization and momentum in deep learning", ICML.
    """
    fn = "sgd"
    _check_sgd_options(
        fn, lr=lr, momentum=momentum, dampening=dampening, nesterov=nesterov, weight_decay=weight_decay, maximize=maximize
    )
    _check_functional(fn, params, grads)
    if momentum != 0 or momentum_buffers is not None:
        _check_tensor_list(fn, "momentum_buffers", momentum_buffers, params, containers=(list,), none_allowed=True)
    _sgd(
        params, grads, momentum_buffers,
        lr=lr, momentum=momentum, dampening=dampening, nesterov=nesterov, weight_decay=weight_decay, maximize=maximize,
    )  # fmt: skip


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
    fn = "adagrad"
    _check_adagrad_options(fn, lr=lr, lr_decay=lr_decay, weight_decay=weight_decay, eps=eps, maximize=maximize)
    _check_step_number(fn, step)
    _check_functional(fn, params, grads, state_sums=state_sums)
    _adagrad(
        params, grads, state_sums,
        step=step, lr=lr, lr_decay=lr_decay, weight_decay=weight_decay, eps=eps, maximize=maximize,
    )  # fmt: skip


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
    params, grads, square_avgs, grad_avgs, momentum_buffers, *, lr, alpha, eps, weight_decay, momentum, centered, maximize
) -> None:
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
        d_t = \\begin{cases}
            \\sqrt{v_t} + \\epsilon & \\\\
            \\sqrt{v_t - m_t^2} + \\epsilon, \\quad m_t = \\alpha m_{t-1} + (1 - \\alpha) g_t & \\text{centred}
        \\end{cases}

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
    _check_rmsprop_options(
        fn, lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum, centered=centered, maximize=maximize
    )
    _check_functional(fn, params, grads, square_avgs=square_avgs)
    if centered:
        _check_tensor_list(fn, "grad_avgs", grad_avgs, params, containers=(list,))
    if momentum > 0:
        _check_tensor_list(fn, "momentum_buffers", momentum_buffers, params, containers=(list,))
    _rmsprop(
        params, grads, square_avgs, grad_avgs, momentum_buffers,
        lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum, centered=centered, maximize=maximize,
    )  # fmt: skip


# --------------------------------------------------------------------------------------------
# Adam and AdamW
# --------------------------------------------------------------------------------------------


def _check_adam_options(fn, *, lr, beta1, beta2, eps, weight_decay, amsgrad, maximize, beta_names=("beta1", "beta2")) -> None:
    _check_range(fn, "lr", lr, 0.0)
    _check_range(fn, beta_names[0], beta1, 0.0, 1.0, high_open=True)
    _check_range(fn, beta_names[1], beta2, 0.0, 1.0, high_open=True)
    _check_range(fn, "eps", eps, 0.0)
    _check_range(fn, "weight_decay", weight_decay, 0.0)
    _check_flag(fn, "amsgrad", amsgrad)
    _check_flag(fn, "maximize", maximize)


def _adam(
    params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, *, step, lr, beta1, beta2, eps, weight_decay, amsgrad, maximize
) -> None:
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
                torch.maximum(max_exp_avg_sqs[i], exp_avg_sq, out=max_exp_avg_sqs[i])  # vmax_t = max(vmax_{t-1}, v_t)
                denom = (max_exp_avg_sqs[i].sqrt() / bias_correction2_sqrt).add_(eps)
            else:
                denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps)  # sqrt(v_t / (1 - beta2^t)) + eps
            p.addcdiv_(exp_avg, denom, value=-step_size)


