r"""Learning-rate schedules, step for step those of :mod:`torch.optim.lr_scheduler`.

A schedule writes ``group["lr"]`` of every parameter group of a :mod:`bplib.optim` optimiser; the
optimiser reads it at its next step.  A warm-up followed by cosine annealing, with one schedule
step per epoch::

    opt = bplib.optim.SGD(net.parameters, lr=0.1, momentum=0.9)
    warmup = LinearLR(opt, start_factor=0.1, total_iters=5)
    cosine = CosineAnnealingLR(opt, T_max=95)
    schedule = SequentialLR(opt, [warmup, cosine], milestones=[5])
    for epoch in range(100):
        for x, y in batches:
            loss, grads = net.loss_and_grads(x, y)
            opt.step(grads)
        schedule.step()

Conventions, those of torch:

* :math:`t` is ``last_epoch``, the number of calls of ``step()`` so far; the constructor already
  sets the rate :math:`\eta_0` for :math:`t = 0`, so ``step()`` is called *after* the optimiser's
  steps with the current rate.
* :math:`\eta_0` of a group is its ``group["initial_lr"]``, which the first schedule made for the
  optimiser sets to ``group["lr"]`` (later ones keep it); ``base_lrs`` lists them.
* :class:`StepLR`, :class:`LinearLR` and :class:`CosineAnnealingLR` (the :class:`ChainableLR`
  schedules) have a closed form :math:`\eta_t = f(t, \eta_0)`, but ``step()`` applies torch's
  *recursive* form (torch's ``get_lr``, its "chainable form"): it multiplies the current
  ``group["lr"]`` by :math:`f(t) / f(t-1)`, so a rate set from outside carries over.  While
  nothing else writes the rates, the two forms agree to rounding.  ``closed_form_lr()`` is the
  closed form (torch's ``_get_closed_form_lr``, which torch uses when ``step`` is given an epoch,
  and :class:`SequentialLR` at its milestones).
* One exception: a rate that the recursive form takes below zero is written as 0, since the
  optimisers refuse a negative rate (torch writes it, and its optimiser then ascends).  Rounding
  does it where the exact rate is 0: a :class:`LinearLR` with ``end_factor=0`` from :math:`t = T`
  on (torch's rate is then often of order :math:`-10^{-17}\eta_0`), and a
  :class:`CosineAnnealingLR` of a group with :math:`\eta_0 = 0 < \eta_{\min}` at
  :math:`t = 2kT_{\max}`.  A cosine's rising half does it by more from a rate below ``eta_min``
  that was written from outside or by another schedule; the later rates then differ from torch's too.
* :class:`ReduceLROnPlateau` reads a metric instead of counting: ``step(metrics)``.
* ``get_last_lr()`` is the list of the rates last set, one per group.

Not done here: resuming a schedule (torch's ``last_epoch`` argument), ``step(epoch)``,
``state_dict``, schedules of other optimisers than bplib's, parameter groups added later, and
torch's other schedules (``LambdaLR``, ``MultiStepLR``, ``ExponentialLR``, ``ConstantLR``,
``PolynomialLR``, ``ChainedScheduler``, ``CyclicLR``, ``OneCycleLR``, ``CosineAnnealingWarmRestarts``).
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence

import torch

from .._checks import argument, check_choice, check_integer, check_real
from ._checks import check_sequence
from ._optimizer import Optimizer


class LRScheduler:
    """What every schedule shares: the optimiser whose rates it writes, its step count, the rates last set.

    Every schedule here is one; :class:`ChainableLR` is the base of those with a closed form.
    """

    def __init__(self, optimizer: Optimizer) -> None:
        fn = type(self).__name__
        if not isinstance(optimizer, Optimizer):
            kind = f"{type(optimizer).__module__}.{type(optimizer).__qualname__}"
            torch_optimiser = isinstance(optimizer, torch.optim.Optimizer)
            hint = "; torch's optimisers take the schedules of torch.optim.lr_scheduler" if torch_optimiser else ""
            raise TypeError(
                f"{fn}: argument 'optimizer' must be an optimiser of bplib.optim (SGD, Adagrad, RMSprop, Adam, AdamW), "
                f"got {kind}{hint}"
            )
        self.optimizer = optimizer
        """The optimiser whose ``group["lr"]`` the schedule writes."""
        self.last_epoch = 0
        """:math:`t`, the number of calls of ``step()`` so far."""
        self._last_lr = self._current_lrs()

    def get_last_lr(self) -> list[float]:
        """The learning rate of every parameter group as this schedule last set it (a new list)."""
        return list(self._last_lr)

    def _current_lrs(self) -> list[float]:
        return [group["lr"] for group in self.optimizer.param_groups]

    def _write(self, lrs: list[float]) -> None:
        for group, lr in zip(self.optimizer.param_groups, lrs):
            group["lr"] = lr
        self._last_lr = self._current_lrs()


class ChainableLR(LRScheduler):
    r"""The base of the schedules :math:`\eta_t = \eta_0 f(t)` with a closed form, applied recursively as torch does.

    The constructor sets ``group["initial_lr"]`` where it is missing, and the rate for :math:`t = 0`;
    ``step()`` then advances :math:`t` and sets :math:`\eta_t` from the current ``group["lr"]`` by the
    recursive form of each schedule.
    """

    def __init__(self, optimizer: Optimizer) -> None:
        super().__init__(optimizer)
        for group in self.optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
        self.base_lrs: list[float] = [group["initial_lr"] for group in self.optimizer.param_groups]
        """The initial rates :math:`\\eta_0`, one per group (their ``group["initial_lr"]``)."""
        self._restart()

    def step(self) -> None:
        """Advance :math:`t` by one and set the rate :math:`\\eta_t` of every group: the recursive form, or 0 below 0."""
        self.last_epoch += 1
        self._write([max(lr, 0.0) for lr in self._recursive_lrs()])

    def closed_form_lr(self) -> list[float]:
        """:math:`\\eta_t` of every group at :math:`t` = ``last_epoch``, from ``base_lrs`` by the closed form."""
        raise NotImplementedError(f"{type(self).__name__} does not implement closed_form_lr")

    def _recursive_lrs(self) -> list[float]:
        """:math:`\\eta_t` of every group from the current rates (torch's ``get_lr``); ``last_epoch`` is already t."""
        raise NotImplementedError(f"{type(self).__name__} does not implement _recursive_lrs")

    def _restart(self, closed_form: bool = False) -> None:
        """Go back to :math:`t = 0` and set its rate: torch's initial step, or its closed form (at a milestone)."""
        self.last_epoch = 0
        self._write(self.closed_form_lr() if closed_form else self._recursive_lrs())


class StepLR(ChainableLR):
    r"""Multiply the learning rate by :math:`\gamma` every ``step_size`` steps.

    .. math::

        \eta_t = \eta_0\, \gamma^{\lfloor t / s \rfloor}, \qquad
        \text{recursively}\quad \eta_t = \begin{cases}
            \gamma\, \eta_{t-1} & t > 0 \text{ a multiple of } s \\
            \eta_{t-1} & \text{otherwise}
        \end{cases}

    with :math:`s` = ``step_size`` (an integer >= 1) and :math:`\gamma` = ``gamma`` (>= 0).
    """

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1) -> None:
        check_integer("StepLR", argument("step_size"), step_size, 1)
        check_real("StepLR", argument("gamma"), gamma, 0.0)
        self.step_size = step_size
        self.gamma = gamma
        super().__init__(optimizer)

    def closed_form_lr(self) -> list[float]:
        return [base_lr * self.gamma ** (self.last_epoch // self.step_size) for base_lr in self.base_lrs]

    def _recursive_lrs(self) -> list[float]:
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return self._current_lrs()
        return [lr * self.gamma for lr in self._current_lrs()]


class LinearLR(ChainableLR):
    r"""Change the rate linearly from ``start_factor`` to ``end_factor`` times :math:`\eta_0` in ``total_iters`` steps.

    .. math::

        \eta_t = \eta_0 \Big(s + (e - s)\,\frac{\min(t, T)}{T}\Big), \qquad
        \text{recursively}\quad \eta_0 \leftarrow s\,\eta_0, \quad
        \eta_t = \eta_{t-1} \Big(1 + \frac{e - s}{T s + (t - 1)(e - s)}\Big) \quad (1 \le t \le T),

    and :math:`\eta_t = \eta_{t-1}` for :math:`t > T`, with :math:`s` = ``start_factor`` in
    :math:`(0, 1]`, :math:`e` = ``end_factor`` in :math:`[0, 1]` and :math:`T` = ``total_iters``
    (an integer >= 1); the ratio is :math:`f(t)/f(t-1)` of the closed form's factor.  With
    :math:`s < e = 1` it is a linear warm-up, which reaches :math:`\eta_0` at :math:`t = T`.
    Defaults are torch's.

    Reference: P. Goyal et al. (2017), "Accurate, large minibatch SGD: training ImageNet in 1 hour",
    arXiv:1706.02677 (the gradual warm-up).
    """

    def __init__(
        self, optimizer: Optimizer, start_factor: float = 1.0 / 3, end_factor: float = 1.0, total_iters: int = 5
    ) -> None:
        fn = "LinearLR"
        check_real(fn, argument("start_factor"), start_factor, 0.0, 1.0, low_open=True)
        check_real(fn, argument("end_factor"), end_factor, 0.0, 1.0)
        check_integer(fn, argument("total_iters"), total_iters, 1)
        self.start_factor = start_factor
        self.end_factor = end_factor
        self.total_iters = total_iters
        super().__init__(optimizer)

    def closed_form_lr(self) -> list[float]:
        s, e, T = self.start_factor, self.end_factor, self.total_iters
        return [base_lr * (s + (e - s) * min(T, self.last_epoch) / T) for base_lr in self.base_lrs]

    def _recursive_lrs(self) -> list[float]:
        s, e, T, t = self.start_factor, self.end_factor, self.total_iters, self.last_epoch
        if t == 0:
            return [lr * s for lr in self._current_lrs()]
        if t > T:
            return self._current_lrs()
        return [lr * (1.0 + (e - s) / (T * s + (t - 1) * (e - s))) for lr in self._current_lrs()]


class CosineAnnealingLR(ChainableLR):
    r"""Anneal the learning rate from :math:`\eta_0` to ``eta_min`` along half a cosine in ``T_max`` steps.

    The closed form, of Loshchilov and Hutter (without the restarts):

    .. math::

        \eta_t = \eta_{\min} + \tfrac12 (\eta_0 - \eta_{\min}) \Big(1 + \cos\frac{\pi t}{T_{\max}}\Big).

    ``step()`` applies torch's recursive form, the ratio of consecutive closed forms:

    .. math::

        \eta_t = \eta_{\min} + (\eta_{t-1} - \eta_{\min})\,
            \frac{1 + \cos(\pi t / T_{\max})}{1 + \cos(\pi (t - 1) / T_{\max})},

    except where the denominator vanishes, :math:`t - 1 \equiv T_{\max} \pmod{2 T_{\max}}`
    (:math:`\eta_{t-1} = \eta_{\min}` there), where torch adds the step of the closed form instead,
    :math:`\eta_t = \eta_{t-1} + \tfrac12 (\eta_0 - \eta_{\min})(1 - \cos(\pi / T_{\max}))`.  The two
    forms agree to rounding while nothing else writes the rate; the recursive one follows a
    rate changed from outside (it anneals it towards ``eta_min`` on the same curve's ratios).
    After :math:`T_{\max}` steps neither stops: the rate climbs back to :math:`\eta_0` at
    :math:`2 T_{\max}`, and so on, with period :math:`2 T_{\max}`.

    ``T_max``: an integer >= 1; ``eta_min``: >= 0.

    Reference: I. Loshchilov, F. Hutter (2017), "SGDR: Stochastic gradient descent with warm
    restarts", ICLR.
    """

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0) -> None:
        check_integer("CosineAnnealingLR", argument("T_max"), T_max, 1)
        check_real("CosineAnnealingLR", argument("eta_min"), eta_min, 0.0)
        self.T_max = T_max
        self.eta_min = eta_min
        super().__init__(optimizer)

    def closed_form_lr(self) -> list[float]:
        cosine = 1 + math.cos(math.pi * self.last_epoch / self.T_max)
        return [self.eta_min + (base_lr - self.eta_min) * cosine / 2 for base_lr in self.base_lrs]

    def _recursive_lrs(self) -> list[float]:
        t, T, eta_min = self.last_epoch, self.T_max, self.eta_min
        if t == 0:  # torch's initial step keeps the rate
            return self._current_lrs()
        if (t - 1 - T) % (2 * T) == 0:  # eta_{t-1} = eta_min, where the ratio would be 0/0
            step = (1 - math.cos(math.pi / T)) / 2
            return [lr + (base_lr - eta_min) * step for lr, base_lr in zip(self._current_lrs(), self.base_lrs)]
        ratio = (1 + math.cos(math.pi * t / T)) / (1 + math.cos(math.pi * (t - 1) / T))
        return [ratio * (lr - eta_min) + eta_min for lr in self._current_lrs()]


class SequentialLR(LRScheduler):
    r"""Run ``schedulers[0]`` until step ``milestones[0]``, then ``schedulers[1]``, and so on (warm-up, then cosine).

    With milestones :math:`m_1 < m_2 < \dots`, at :math:`t \in [m_k, m_{k+1})` schedule :math:`k + 1`
    runs on its own count :math:`t - m_k`.  At :math:`t = m_k` it starts at its closed form for
    count 0 (its :math:`\eta_0`, or :math:`s\,\eta_0` for a :class:`LinearLR`), not from the rate the
    schedule before left; then it steps by its recursive form.  The constructor sets every rate back
    to ``group["initial_lr"]`` and restarts ``schedulers[0]`` at count 0; the later schedules wait
    with ``last_epoch = -1`` until their milestone.

    ``schedulers``: a non-empty sequence of :class:`ChainableLR` of this optimiser;
    ``milestones``: increasing integers >= 1, one fewer than the schedules.
    """

    def __init__(self, optimizer: Optimizer, schedulers: Sequence[ChainableLR], milestones: Sequence[int]) -> None:
        fn = "SequentialLR"
        super().__init__(optimizer)
        check_sequence(fn, "schedulers", schedulers, "schedules")
        if len(schedulers) == 0:
            raise ValueError(
                f"{fn}: argument 'schedulers' must hold at least one schedule, got an empty {type(schedulers).__name__}"
            )
        for i, scheduler in enumerate(schedulers):
            if not isinstance(scheduler, ChainableLR):
                raise TypeError(
                    f"{fn}: argument 'schedulers[{i}]' must be a StepLR, LinearLR or CosineAnnealingLR "
                    f"(a ChainableLR), got {type(scheduler).__name__}"
                )
            if scheduler.optimizer is not optimizer:
                raise ValueError(
                    f"{fn}: argument 'schedulers[{i}]' schedules another optimiser than argument 'optimizer'"
                )
        check_sequence(fn, "milestones", milestones, "integers")
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(
                f"{fn}: argument 'milestones' must hold one step number fewer than 'schedulers' "
                f"({len(schedulers) - 1}), got {len(milestones)}"
            )
        for i, milestone in enumerate(milestones):
            check_integer(fn, argument(f"milestones[{i}]"), milestone, 1 if i == 0 else milestones[i - 1] + 1)
        self._schedulers = list(schedulers)
        self._milestones = list(milestones)
        for group in optimizer.param_groups:
            group["lr"] = group["initial_lr"]
        for scheduler in self._schedulers[1:]:
            scheduler.last_epoch = -1
        self._schedulers[0]._restart()
        self._last_lr = self._schedulers[0].get_last_lr()

    def step(self) -> None:
        """Advance :math:`t` by one and step the schedule of :math:`t` (restart it at its milestone)."""
        self.last_epoch += 1
        k = bisect_right(self._milestones, self.last_epoch)
        scheduler = self._schedulers[k]
        if k > 0 and self._milestones[k - 1] == self.last_epoch:
            scheduler._restart(closed_form=True)
        else:
            scheduler.step()
        self._last_lr = scheduler.get_last_lr()


class ReduceLROnPlateau(LRScheduler):
    r"""Divide the learning rate when a metric has stopped improving (``step(metrics)`` once per epoch).

    Let :math:`b` be the best metric so far (:math:`+\infty`, or :math:`-\infty` with ``mode="max"``,
    before the first) and :math:`\theta` the ``threshold``.  A metric :math:`m_t` is *better* when

    .. math::

        m_t < b\,(1 - \theta) \;\; \text{(min, rel)}, \quad
        m_t < b - \theta \;\; \text{(min, abs)}, \quad
        m_t > b\,(1 + \theta) \;\; \text{(max, rel)}, \quad
        m_t > b + \theta \;\; \text{(max, abs)};

    then :math:`b \leftarrow m_t`, else the step is *bad*.  When more than ``patience`` bad steps
    have come in a row, every group's rate becomes

    .. math::

        \eta \leftarrow \max(\phi\, \eta,\; \eta_{\min})

    with :math:`\phi` = ``factor`` in :math:`[0, 1)` and :math:`\eta_{\min}` = ``min_lr`` (one number, or
    one per group), unless that lowers it by ``eps`` or less; the count of bad steps restarts, and
    the ``cooldown`` steps that follow count none.  ``patience`` and ``cooldown`` are integers >= 0,
    ``threshold`` and ``eps`` >= 0.  Defaults are torch's.  Unlike torch, a metric that is not a
    finite number is an error (torch counts a NaN as a bad step).
    """

    def __init__(
        self,
        optimizer: Optimizer,
        mode: str = "min",
        factor: float = 0.1,
        patience: int = 10,
        threshold: float = 1e-4,
        threshold_mode: str = "rel",
        cooldown: int = 0,
        min_lr: float | Sequence[float] = 0.0,
        eps: float = 1e-8,
    ) -> None:
        fn = "ReduceLROnPlateau"
        super().__init__(optimizer)
        check_choice(fn, "mode", mode, ("min", "max"))
        check_real(fn, argument("factor"), factor, 0.0, 1.0, high_open=True)
        check_integer(fn, argument("patience"), patience, 0)
        check_real(fn, argument("threshold"), threshold, 0.0)
        check_choice(fn, "threshold_mode", threshold_mode, ("rel", "abs"))
        check_integer(fn, argument("cooldown"), cooldown, 0)
        check_real(fn, argument("eps"), eps, 0.0)
        groups = len(optimizer.param_groups)
        if isinstance(min_lr, Sequence):
            if len(min_lr) != groups:
                raise ValueError(
                    f"{fn}: argument 'min_lr' must hold one rate per parameter group ({groups}), got {len(min_lr)}"
                )
            for i, lr in enumerate(min_lr):
                check_real(fn, argument(f"min_lr[{i}]"), lr, 0.0)
            self.min_lrs = list(min_lr)
        else:
            check_real(fn, argument("min_lr"), min_lr, 0.0)
            self.min_lrs = [min_lr] * groups
        self.mode, self.factor, self.patience, self.threshold = mode, factor, patience, threshold
        self.threshold_mode, self.cooldown, self.eps = threshold_mode, cooldown, eps
        self.best = math.inf if mode == "min" else -math.inf
        """The best metric so far."""
        self.num_bad_epochs = 0
        """The number of bad steps in a row."""
        self.cooldown_counter = 0
        """The number of steps of cooldown left."""

    def step(self, metrics: float | torch.Tensor) -> None:
        """Count one step with the metric ``metrics`` (a real number or a 0-d tensor), and reduce the rates if due."""
        current = self._metric(metrics)
        self.last_epoch += 1
        if self._is_better(current):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0  # bad steps in cooldown do not count
        if self.num_bad_epochs > self.patience:
            self._reduce()
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        self._last_lr = self._current_lrs()

    def _metric(self, metrics: object) -> float:
        fn = "ReduceLROnPlateau.step"
        if isinstance(metrics, torch.Tensor):
            if metrics.dim() != 0:
                shape = tuple(metrics.shape)
                raise ValueError(
                    f"{fn}: argument 'metrics' must be a number or a 0-d tensor, got a tensor of shape {shape}"
                )
            metrics = metrics.item()
        if isinstance(metrics, bool) or not isinstance(metrics, (int, float)):
            kind = type(metrics).__name__
            raise TypeError(f"{fn}: argument 'metrics' must be a real number or a 0-d tensor, got {kind} {metrics!r}")
        if not math.isfinite(metrics):
            raise ValueError(f"{fn}: argument 'metrics' must be a finite number, got {metrics!r}")
        return float(metrics)

    def _is_better(self, metric: float) -> bool:
        if self.mode == "min" and self.threshold_mode == "rel":
            return metric < self.best * (1.0 - self.threshold)
        if self.mode == "min":
            return metric < self.best - self.threshold
        if self.threshold_mode == "rel":
            return metric > self.best * (self.threshold + 1.0)
        return metric > self.best + self.threshold

    def _reduce(self) -> None:
        for group, min_lr in zip(self.optimizer.param_groups, self.min_lrs):
            old_lr = float(group["lr"])
            new_lr = max(old_lr * self.factor, min_lr)
            if old_lr - new_lr > self.eps:
                group["lr"] = new_lr


__all__ = ["LRScheduler", "ChainableLR", "StepLR", "LinearLR", "CosineAnnealingLR", "SequentialLR", "ReduceLROnPlateau"]
