"""bplib.optim.lr_scheduler: every schedule and option against torch.optim.lr_scheduler, step for step; errors.

A bplib optimiser and a torch optimiser with two parameter groups run side by side, each driven by
its own schedule, for 200 steps in float64.  At every step the rates (``get_last_lr()`` and
``group["lr"]``) and the step counts must agree, and at the end the parameters, which shows that the
optimisers really used those rates.  The closed forms are checked against torch's and against the
formulas written out here.
"""

import math
import re

import pytest
import torch

from bplib import optim
from bplib.optim import lr_scheduler
from .test_optim import F64, handed_grads, make_problem

# The rates are Python floats computed by the same expressions in the same order as torch's, so they
# agree to the last bit; we ask for 1e-12 relative, with no absolute floor (a rate of 0 must be 0).
RTOL = 1e-12
STEPS = 200
LRS = (0.1, 0.02)  # the two parameter groups start at different rates


def assert_rates(ours, theirs, what):
    assert len(ours) == len(theirs), what
    for i, (a, b) in enumerate(zip(ours, theirs)):
        assert math.isclose(a, b, rel_tol=RTOL, abs_tol=0.0), f"{what}: group {i}: {a!r} != {b!r}"


def optimisers(generator, momentum=0.9):
    """A bplib SGD and a torch SGD on the same problem, each with two parameter groups at the rates LRS."""
    start, terms = make_problem(generator)
    ours, theirs = [p.clone() for p in start], [p.clone() for p in start]

    def groups(params):
        return [{"params": params[:1], "lr": LRS[0]}, {"params": params[1:], "lr": LRS[1]}]

    opt = optim.SGD(groups(ours), lr=LRS[0], momentum=momentum)
    ref = torch.optim.SGD(groups(theirs), lr=LRS[0], momentum=momentum, foreach=False)
    return opt, ref, ours, theirs, terms


def train_step(opt, ref, ours, theirs, terms):
    grads = handed_grads(terms, ours, False)
    for p, g in zip(theirs, grads):
        p.grad = g.clone()
    opt.step(grads)
    ref.step()


def assert_same_schedule(opt, ref, schedule, reference, what):
    assert schedule.last_epoch == reference.last_epoch, f"{what}: last_epoch"
    assert_rates(schedule.get_last_lr(), reference.get_last_lr(), f"{what}: get_last_lr()")
    assert_rates([g["lr"] for g in opt.param_groups], [g["lr"] for g in ref.param_groups], f"{what}: group['lr']")


def run(generator, make_ours, make_theirs, steps=STEPS, metrics=None, before_step=lambda opt, ref, t: None):
    """Drive both optimisers for ``steps`` steps, a schedule step after each; return what the caller checks.

    ``metrics(t)``, when given, is handed to ``step`` (ReduceLROnPlateau).  Returns the optimisers, the
    parameters, both schedules and the rates of group 0 after every step.
    """
    opt, ref, ours, theirs, terms = optimisers(generator)
    schedule, reference = make_ours(opt), make_theirs(ref)
    assert_same_schedule(opt, ref, schedule, reference, "after construction")
    rates = []
    for t in range(1, steps + 1):
        before_step(opt, ref, t)
        train_step(opt, ref, ours, theirs, terms)
        if metrics is None:
            schedule.step()
            reference.step()
        else:
            schedule.step(metrics(t))
            reference.step(metrics(t))
        assert_same_schedule(opt, ref, schedule, reference, f"after step {t}")
        rates.append(schedule.get_last_lr()[0])
    for i, (a, b) in enumerate(zip(ours, theirs)):
        torch.testing.assert_close(a, b, rtol=RTOL, atol=1e-14, msg=lambda m: f"parameter {i} after {steps} steps: {m}")
    return opt, ref, schedule, reference, rates


# ----------------------------------------------------------------------------------------------
# StepLR, LinearLR, CosineAnnealingLR
# ----------------------------------------------------------------------------------------------


def step_lr(t, base, step_size, gamma=0.1):
    return base * gamma ** (t // step_size)


def linear_lr(t, base, start_factor=1 / 3, end_factor=1.0, total_iters=5):
    return base * (start_factor + (end_factor - start_factor) * min(t, total_iters) / total_iters)


def cosine_lr(t, base, T_max, eta_min=0.0):
    return eta_min + 0.5 * (base - eta_min) * (1 + math.cos(math.pi * t / T_max))


# (name, keyword arguments, the closed form written out here)
CHAINABLE = [
    ("StepLR", dict(step_size=1, gamma=0.97), step_lr),
    ("StepLR", dict(step_size=7), step_lr),
    ("StepLR", dict(step_size=30, gamma=0.5), step_lr),
    ("StepLR", dict(step_size=250, gamma=0.5), step_lr),
    ("LinearLR", dict(), linear_lr),
    ("LinearLR", dict(start_factor=0.1, total_iters=10), linear_lr),
    ("LinearLR", dict(start_factor=1.0, end_factor=0.1, total_iters=50), linear_lr),
    ("LinearLR", dict(start_factor=0.5, end_factor=0.0, total_iters=20), linear_lr),
    ("LinearLR", dict(start_factor=0.25, end_factor=0.75, total_iters=300), linear_lr),
    ("CosineAnnealingLR", dict(T_max=1), cosine_lr),
    ("CosineAnnealingLR", dict(T_max=10), cosine_lr),
    ("CosineAnnealingLR", dict(T_max=37, eta_min=1e-3), cosine_lr),
    ("CosineAnnealingLR", dict(T_max=200), cosine_lr),
    ("CosineAnnealingLR", dict(T_max=500, eta_min=0.05), cosine_lr),
]
CHAINABLE_IDS = [f"{name}-" + "-".join(f"{k}={v}" for k, v in kwargs.items()) for name, kwargs, _ in CHAINABLE]


@pytest.mark.parametrize("name, kwargs, formula", CHAINABLE, ids=CHAINABLE_IDS)
def test_schedule_matches_torch_for_200_steps(name, kwargs, formula, generator):
    ours, theirs = getattr(lr_scheduler, name), getattr(torch.optim.lr_scheduler, name)
    opt, ref, schedule, reference, rates = run(generator, lambda o: ours(o, **kwargs), lambda o: theirs(o, **kwargs))
    assert schedule.base_lrs == list(LRS) == reference.base_lrs
    assert [g["initial_lr"] for g in opt.param_groups] == [g["initial_lr"] for g in ref.param_groups]
    # the schedule changed the rate, or agreement would prove little
    assert len(set(rates)) > 1 or name == "StepLR" and kwargs["step_size"] > STEPS


@pytest.mark.parametrize("name, kwargs, formula", CHAINABLE, ids=CHAINABLE_IDS)
def test_schedule_follows_its_closed_form(name, kwargs, formula, generator):
    opt, _, _, _, _ = optimisers(generator)
    schedule = getattr(lr_scheduler, name)(opt, **kwargs)
    reference = getattr(torch.optim.lr_scheduler, name)(torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=LRS[0]), **kwargs)
    for t in range(STEPS + 1):
        if t > 0:
            schedule.step()
            reference.optimizer.step()
            reference.step()
        expected = [formula(t, base, **kwargs) for base in LRS]
        assert_rates(schedule.closed_form_lr(), expected, f"{name}: closed_form_lr() at t = {t}")
        assert_rates(schedule.closed_form_lr()[:1], reference._get_closed_form_lr(), f"{name}: torch's closed form at t = {t}")
        # the recursive form, what step() applies, agrees with the closed form to rounding
        assert_rates(schedule.get_last_lr(), expected, f"{name}: the recursive rates at t = {t}")


@pytest.mark.parametrize(
    "name, kwargs",
    [("StepLR", dict(step_size=30)), ("LinearLR", dict(total_iters=80)), ("CosineAnnealingLR", dict(T_max=250))],
)
def test_a_rate_written_from_outside_carries_over_as_in_torch(name, kwargs, generator):
    def halve_at_50(opt, ref, t):  # the recursive form goes on from the halved rate; the closed form would not
        if t == 50:
            for group in opt.param_groups + ref.param_groups:
                group["lr"] = group["lr"] / 2

    ours, theirs = getattr(lr_scheduler, name), getattr(torch.optim.lr_scheduler, name)
    _, _, schedule, _, _ = run(generator, lambda o: ours(o, **kwargs), lambda o: theirs(o, **kwargs), before_step=halve_at_50)
    assert_rates(schedule.get_last_lr(), [lr / 2 for lr in schedule.closed_form_lr()], f"{name}: the halving carried over")


def test_a_second_schedule_keeps_the_initial_rates_of_the_first(generator):
    opt, ref, _, _, _ = optimisers(generator)
    lr_scheduler.LinearLR(opt, start_factor=0.5)
    torch.optim.lr_scheduler.LinearLR(ref, start_factor=0.5)
    second = lr_scheduler.StepLR(opt, step_size=3)
    reference = torch.optim.lr_scheduler.StepLR(ref, step_size=3)
    assert second.base_lrs == list(LRS) == reference.base_lrs
    assert_same_schedule(opt, ref, second, reference, "a second schedule")


@pytest.mark.parametrize(
    "lrs, name, kwargs, negative_at",
    [
        # a linear decay to 0: torch's ratio f(T)/f(T-1) rounds below 0, and its rate to -1.85e-18
        ((0.1,), "LinearLR", dict(start_factor=1 / 3, end_factor=0.0, total_iters=4), 4),
        # a frozen group (rate 0) under a cosine with eta_min > 0: back at 0 at t = 4 T_max, as -3.4e-21
        ((0.0, 0.02), "CosineAnnealingLR", dict(T_max=2, eta_min=1e-5), 8),
    ],
    ids=["LinearLR-to-zero", "CosineAnnealingLR-frozen-group"],
)
def test_a_rate_rounded_below_zero_is_written_as_zero(lrs, name, kwargs, negative_at):
    """Where torch's recursive form rounds an exact 0 below 0, bplib writes 0 and its optimiser steps on; else torch's rates."""
    ours, theirs = [torch.zeros(2, dtype=F64) for _ in lrs], [torch.zeros(2, dtype=F64) for _ in lrs]
    opt = optim.SGD([{"params": [p], "lr": lr} for p, lr in zip(ours, lrs)], lr=0.1)
    ref = torch.optim.SGD([{"params": [p], "lr": lr} for p, lr in zip(theirs, lrs)], lr=0.1, foreach=False)
    schedule, reference = getattr(lr_scheduler, name)(opt, **kwargs), getattr(torch.optim.lr_scheduler, name)(ref, **kwargs)
    for t in range(1, 2 * negative_at + 1):
        opt.step([torch.ones(2, dtype=F64) for _ in lrs])  # refuses a negative rate
        for p in theirs:
            p.grad = torch.ones(2, dtype=F64)
        ref.step()
        schedule.step()
        reference.step()
        if t == negative_at:
            assert reference.get_last_lr()[0] < 0, "torch's rate rounds below 0 here (or this test proves nothing)"
        assert_rates(schedule.get_last_lr(), [max(lr, 0.0) for lr in reference.get_last_lr()], f"{name} at t = {t}")
    for i, (a, b) in enumerate(zip(ours, theirs)):
        torch.testing.assert_close(a, b, rtol=RTOL, atol=1e-14, msg=lambda m: f"parameter {i}: {m}")


# ----------------------------------------------------------------------------------------------
# SequentialLR
# ----------------------------------------------------------------------------------------------


def warmup_then_cosine(module):
    def make(opt):
        warmup = module.LinearLR(opt, start_factor=0.1, total_iters=10)
        cosine = module.CosineAnnealingLR(opt, T_max=190, eta_min=1e-4)
        return module.SequentialLR(opt, [warmup, cosine], milestones=[10])

    return make


def three_phases(module):
    def make(opt):
        schedules = [
            module.LinearLR(opt, start_factor=0.2, total_iters=5),
            module.StepLR(opt, step_size=20, gamma=0.5),
            module.CosineAnnealingLR(opt, T_max=50, eta_min=1e-3),
        ]
        return module.SequentialLR(opt, schedules, milestones=[5, 60])

    return make


def one_phase(module):
    return lambda opt: module.SequentialLR(opt, [module.StepLR(opt, step_size=10)], milestones=[])


@pytest.mark.parametrize("make", [warmup_then_cosine, three_phases, one_phase], ids=lambda f: f.__name__)
def test_sequential_matches_torch_for_200_steps(make, generator):
    _, _, _, _, rates = run(generator, make(lr_scheduler), make(torch.optim.lr_scheduler))
    assert len(set(rates)) > 10


def test_warmup_then_cosine_follows_the_formulas(generator):
    opt, _, _, _, _ = optimisers(generator)
    schedule = warmup_then_cosine(lr_scheduler)(opt)
    for t in range(STEPS + 1):
        if t > 0:
            schedule.step()
        expected = [
            linear_lr(t, base, start_factor=0.1, total_iters=10) if t < 10 else cosine_lr(t - 10, base, T_max=190, eta_min=1e-4)
            for base in LRS
        ]
        assert_rates(schedule.get_last_lr(), expected, f"warm-up then cosine at t = {t}")


def test_sequential_keeps_the_step_counts_of_its_schedules_as_torch(generator):
    opt, ref, ours, theirs, terms = optimisers(generator)
    mine = [lr_scheduler.LinearLR(opt, total_iters=4), lr_scheduler.CosineAnnealingLR(opt, T_max=30)]
    their = [torch.optim.lr_scheduler.LinearLR(ref, total_iters=4), torch.optim.lr_scheduler.CosineAnnealingLR(ref, T_max=30)]
    schedule = lr_scheduler.SequentialLR(opt, mine, milestones=[8])
    reference = torch.optim.lr_scheduler.SequentialLR(ref, their, milestones=[8])
    for t in range(1, 20):
        assert [s.last_epoch for s in mine] == [s.last_epoch for s in their], f"the schedules' counts before step {t}"
        train_step(opt, ref, ours, theirs, terms)
        schedule.step()
        reference.step()


# ----------------------------------------------------------------------------------------------
# ReduceLROnPlateau
# ----------------------------------------------------------------------------------------------


def plateau_metrics(seed, sign=1.0):
    """A metric on a staircase, 1/(1 + floor(t/40)), plus noise of size 0.01: five plateaus with drops between."""
    noise = torch.rand(STEPS + 1, generator=torch.Generator().manual_seed(seed), dtype=F64)
    values = [sign * (1 / (1 + t // 40) + 0.01 * noise[t].item()) for t in range(STEPS + 1)]
    return lambda t: values[t] if t % 3 else torch.tensor(values[t], dtype=F64)  # a 0-d tensor every third step


PLATEAU = [
    dict(),
    dict(mode="max", factor=0.5, patience=3),
    dict(mode="min", threshold_mode="abs", threshold=1e-3, patience=2, cooldown=3),
    dict(mode="max", threshold_mode="abs", threshold=5e-3, patience=0, factor=0.7),
    dict(threshold=0.05, patience=4, cooldown=1, factor=0.5, min_lr=[1e-3, 1e-4]),
    dict(patience=1, factor=0.3, min_lr=2e-3, eps=1e-4),
]


@pytest.mark.parametrize("kwargs", PLATEAU, ids=[str(k) for k in PLATEAU])
def test_reduce_on_plateau_matches_torch_for_200_steps(kwargs, generator):
    metrics = plateau_metrics(seed=7, sign=-1.0 if kwargs.get("mode") == "max" else 1.0)
    opt, ref, schedule, reference, rates = run(
        generator,
        lambda o: lr_scheduler.ReduceLROnPlateau(o, **kwargs),
        lambda o: torch.optim.lr_scheduler.ReduceLROnPlateau(o, **kwargs),
        metrics=metrics,
    )
    assert (schedule.best, schedule.num_bad_epochs, schedule.cooldown_counter) == (
        reference.best, reference.num_bad_epochs, reference.cooldown_counter,
    )  # fmt: skip
    assert len(set(rates)) >= 2, "the rate was never reduced: agreement would prove little"
    if "min_lr" in kwargs:  # the floor is reached, and held
        floors = kwargs["min_lr"] if isinstance(kwargs["min_lr"], list) else [kwargs["min_lr"]] * 2
        assert schedule.get_last_lr() == floors


def test_reduce_on_plateau_waits_patience_then_cools_down(generator):
    opt, _, _, _, _ = optimisers(generator)
    schedule = lr_scheduler.ReduceLROnPlateau(opt, patience=2, cooldown=2, factor=0.5)
    # better, then bad steps: the third bad step in a row (more than patience) halves the rate; the two
    # cooldown steps count no bad step, so the next reduction comes three bad steps after them
    history = []
    for metric in [1.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0]:
        schedule.step(metric)
        history.append(schedule.get_last_lr()[0])
    assert history == [0.1] * 3 + [0.05] * 5 + [0.025] * 2


# ----------------------------------------------------------------------------------------------
# Errors
# ----------------------------------------------------------------------------------------------


def bplib_sgd(groups=1):
    return optim.SGD([{"params": [torch.zeros(2, dtype=F64)]} for _ in range(groups)], lr=0.1)


@pytest.mark.parametrize(
    "call, error, pattern",
    [
        (lambda: lr_scheduler.StepLR(torch.optim.SGD([torch.zeros(2, requires_grad=True)], lr=0.1), step_size=3), TypeError,
         r"^StepLR: argument 'optimizer' must be an optimiser of bplib.optim \(SGD, Adagrad, RMSprop, Adam, AdamW\), got torch.optim.sgd.SGD; "
         r"torch's optimisers take the schedules of torch.optim.lr_scheduler$"),
        (lambda: lr_scheduler.ReduceLROnPlateau([torch.zeros(2)]), TypeError, r"^ReduceLROnPlateau: argument 'optimizer' must be an optimiser of bplib.optim .*got builtins.list$"),
        (lambda: lr_scheduler.StepLR(bplib_sgd(), step_size=0), ValueError, r"^StepLR: argument 'step_size' must be an integer >= 1, got 0$"),
        (lambda: lr_scheduler.StepLR(bplib_sgd(), step_size=-3), ValueError, r"^StepLR: argument 'step_size' must be an integer >= 1, got -3$"),
        (lambda: lr_scheduler.StepLR(bplib_sgd(), step_size=2.5), TypeError, r"^StepLR: argument 'step_size' must be an integer, got float 2.5$"),
        (lambda: lr_scheduler.StepLR(bplib_sgd(), step_size=3, gamma=-0.1), ValueError, r"^StepLR: argument 'gamma' must be >= 0, got -0.1$"),
        (lambda: lr_scheduler.StepLR(bplib_sgd(), step_size=3, gamma=float("nan")), ValueError, r"^StepLR: argument 'gamma' must be >= 0, got nan$"),
        (lambda: lr_scheduler.CosineAnnealingLR(bplib_sgd(), T_max=0), ValueError, r"^CosineAnnealingLR: argument 'T_max' must be an integer >= 1, got 0$"),
        (lambda: lr_scheduler.CosineAnnealingLR(bplib_sgd(), T_max=10.0), TypeError, r"^CosineAnnealingLR: argument 'T_max' must be an integer, got float 10.0$"),
        (lambda: lr_scheduler.CosineAnnealingLR(bplib_sgd(), T_max=10, eta_min=-1e-3), ValueError, r"^CosineAnnealingLR: argument 'eta_min' must be >= 0, got -0.001$"),
        (lambda: lr_scheduler.LinearLR(bplib_sgd(), start_factor=0.0), ValueError, r"^LinearLR: argument 'start_factor' must be in \(0, 1\], got 0.0$"),
        (lambda: lr_scheduler.LinearLR(bplib_sgd(), start_factor=1.5), ValueError, r"^LinearLR: argument 'start_factor' must be in \(0, 1\], got 1.5$"),
        (lambda: lr_scheduler.LinearLR(bplib_sgd(), end_factor=-0.1), ValueError, r"^LinearLR: argument 'end_factor' must be in \[0, 1\], got -0.1$"),
        (lambda: lr_scheduler.LinearLR(bplib_sgd(), total_iters=0), ValueError, r"^LinearLR: argument 'total_iters' must be an integer >= 1, got 0$"),
        (lambda: lr_scheduler.ReduceLROnPlateau(bplib_sgd(), factor=1.0), ValueError, r"^ReduceLROnPlateau: argument 'factor' must be in \[0, 1\), got 1.0$"),
        (lambda: lr_scheduler.ReduceLROnPlateau(bplib_sgd(), factor=2.0), ValueError, r"^ReduceLROnPlateau: argument 'factor' must be in \[0, 1\), got 2.0$"),
        (lambda: lr_scheduler.ReduceLROnPlateau(bplib_sgd(), mode="minimum"), ValueError, r"^ReduceLROnPlateau: argument 'mode' must be one of 'min', 'max', got 'minimum'$"),
        (lambda: lr_scheduler.ReduceLROnPlateau(bplib_sgd(), threshold_mode="relative"), ValueError, r"^ReduceLROnPlateau: argument 'threshold_mode' must be one of 'rel', 'abs', got 'relative'$"),
        (lambda: lr_scheduler.ReduceLROnPlateau(bplib_sgd(), patience=-1), ValueError, r"^ReduceLROnPlateau: argument 'patience' must be an integer >= 0, got -1$"),
        (lambda: lr_scheduler.ReduceLROnPlateau(bplib_sgd(), cooldown=-2), ValueError, r"^ReduceLROnPlateau: argument 'cooldown' must be an integer >= 0, got -2$"),
        (lambda: lr_scheduler.ReduceLROnPlateau(bplib_sgd(), threshold=-1e-4), ValueError, r"^ReduceLROnPlateau: argument 'threshold' must be >= 0, got -0.0001$"),
        (lambda: lr_scheduler.ReduceLROnPlateau(bplib_sgd(), eps=-1.0), ValueError, r"^ReduceLROnPlateau: argument 'eps' must be >= 0, got -1.0$"),
        (lambda: lr_scheduler.ReduceLROnPlateau(bplib_sgd(), min_lr=-1e-3), ValueError, r"^ReduceLROnPlateau: argument 'min_lr' must be >= 0, got -0.001$"),
        (lambda: lr_scheduler.ReduceLROnPlateau(bplib_sgd(2), min_lr=[1e-3]), ValueError, r"^ReduceLROnPlateau: argument 'min_lr' must hold one rate per parameter group \(2\), got 1$"),
        (lambda: lr_scheduler.ReduceLROnPlateau(bplib_sgd(2), min_lr=[1e-3, "0"]), TypeError, r"^ReduceLROnPlateau: argument 'min_lr\[1\]' must be a real number, got str '0'$"),
    ],
)
def test_constructor_errors(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()


@pytest.mark.parametrize(
    "metric, error, pattern",
    [
        (float("nan"), ValueError, r"must be a finite number, got nan$"),
        (float("inf"), ValueError, r"must be a finite number, got inf$"),
        (torch.tensor(float("nan")), ValueError, r"must be a finite number, got nan$"),
        (torch.tensor([1.0, 2.0]), ValueError, r"must be a number or a 0-d tensor, got a tensor of shape \(2,\)$"),
        ("0.5", TypeError, r"must be a real number or a 0-d tensor, got str '0.5'$"),
        (None, TypeError, r"must be a real number or a 0-d tensor, got NoneType None$"),
    ],
)
def test_reduce_on_plateau_rejects_a_bad_metric(metric, error, pattern):
    schedule = lr_scheduler.ReduceLROnPlateau(bplib_sgd(), patience=0)
    schedule.step(1.0)
    with pytest.raises(error, match=r"^ReduceLROnPlateau.step: argument 'metrics' " + pattern):
        schedule.step(metric)
    assert schedule.last_epoch == 1 and schedule.num_bad_epochs == 0 and schedule.get_last_lr() == [0.1]


def sequential(schedulers=None, milestones=(5,), optimizer=None):
    opt = optimizer or bplib_sgd()
    if schedulers is None:
        schedulers = [lr_scheduler.LinearLR(opt), lr_scheduler.StepLR(opt, step_size=2)]
    return lr_scheduler.SequentialLR(opt, schedulers(opt) if callable(schedulers) else schedulers, list(milestones))


@pytest.mark.parametrize(
    "call, error, pattern",
    [
        (lambda: sequential(schedulers=[]), ValueError, r"^SequentialLR: argument 'schedulers' must hold at least one schedule, got an empty list$"),
        (lambda: sequential(schedulers=lambda o: [lr_scheduler.LinearLR(o), lr_scheduler.ReduceLROnPlateau(o)]), TypeError,
         r"^SequentialLR: argument 'schedulers\[1\]' must be a StepLR, LinearLR or CosineAnnealingLR \(a ChainableLR\), got ReduceLROnPlateau$"),
        (lambda: sequential(schedulers=lambda o: [sequential(optimizer=o), lr_scheduler.LinearLR(o)]), TypeError,
         r"^SequentialLR: argument 'schedulers\[0\]' must be a StepLR, LinearLR or CosineAnnealingLR \(a ChainableLR\), got SequentialLR$"),
        (lambda: sequential(schedulers=lambda o: [lr_scheduler.LinearLR(o), lr_scheduler.StepLR(bplib_sgd(), step_size=2)]), ValueError,
         r"^SequentialLR: argument 'schedulers\[1\]' schedules another optimiser than argument 'optimizer'$"),
        (lambda: sequential(milestones=()), ValueError, r"^SequentialLR: argument 'milestones' must hold one step number fewer than 'schedulers' \(1\), got 0$"),
        (lambda: sequential(milestones=(0,)), ValueError, r"^SequentialLR: argument 'milestones\[0\]' must be an integer >= 1, got 0$"),
        (lambda: sequential(schedulers=lambda o: [lr_scheduler.LinearLR(o)] * 3, milestones=(10, 10)), ValueError,
         r"^SequentialLR: argument 'milestones\[1\]' must be an integer >= 11, got 10$"),
        (lambda: sequential(milestones=(2.5,)), TypeError, r"^SequentialLR: argument 'milestones\[0\]' must be an integer, got float 2.5$"),
        (lambda: lr_scheduler.SequentialLR(bplib_sgd(), lr_scheduler.LinearLR(bplib_sgd()), [5]), TypeError,
         r"^SequentialLR: argument 'schedulers' must be a sequence \(list or tuple\) of schedules, got LinearLR$"),
    ],
)
def test_sequential_errors(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()


def test_the_optimiser_checks_the_rate_a_schedule_or_a_reader_writes():
    opt = bplib_sgd()
    schedule = lr_scheduler.StepLR(opt, step_size=1)
    opt.param_groups[0]["lr"] = -schedule.get_last_lr()[0]
    with pytest.raises(ValueError, match=re.escape("SGD.step: param_groups[0]['lr'] must be >= 0, got -0.1")):
        opt.step([torch.ones(2, dtype=F64)])
