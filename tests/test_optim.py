"""bplib.optim: every rule and option against torch.optim, parameter groups, the functional cores against the classes, clipping, errors."""

import inspect
import itertools
import math
import re

import pytest
import torch

import bplib
from bplib import optim

F64 = torch.float64

# bplib performs the operations of torch.optim's single-tensor path in the same order, so in float64
# the two agree to rounding after 200 steps; we ask for 1e-12 relative, tighter than bplib.testing's
# 1e-10 (which leaves room for differently ordered sums, and there are none here).
RTOL = 1e-12
# The parameters are O(1); an entry that passes near zero has no meaningful relative error, so an
# absolute floor of 1e-14 (about 100 ulp at magnitude 1) is allowed there.
ATOL = 1e-14

SHAPES = [(5, 4), (5,), (1,)]  # a weight matrix, a bias and a scalar-like (1,) tensor
STEPS, CHECK_EVERY = 200, 50


def _options(**choices):
    """Every combination of the given option values, as a list of keyword dicts."""
    names = list(choices)
    return [dict(zip(names, values)) for values in itertools.product(*choices.values())]


# (bplib class, torch class, options): every switch of every class in combination with the others;
# RMSprop's alpha and Adam's betas, values rather than switches, take two values alongside centered / amsgrad
CONFIGS = (
    [
        (optim.SGD, torch.optim.SGD, dict(lr=0.02, momentum=m, dampening=d, nesterov=n) | o)
        for m, d, n in [(0.0, 0.0, False), (0.9, 0.0, False), (0.9, 0.3, False), (0.9, 0.0, True)]
        for o in _options(weight_decay=[0.0, 1e-2], maximize=[False, True])
    ]
    + [
        (optim.Adagrad, torch.optim.Adagrad, dict(lr=0.1) | o)
        for o in _options(lr_decay=[0.0, 0.05], initial_accumulator_value=[0.0, 0.1], weight_decay=[0.0, 1e-2], maximize=[False, True])
    ]
    + [
        (optim.RMSprop, torch.optim.RMSprop, dict(lr=0.01, alpha=alpha, centered=centered) | o)
        for alpha, centered in [(0.99, False), (0.9, True)]
        for o in _options(momentum=[0.0, 0.9], weight_decay=[0.0, 1e-2], maximize=[False, True])
    ]
    + [
        (optim.Adam, torch.optim.Adam, dict(lr=0.02, betas=betas, amsgrad=amsgrad) | o)
        for betas, amsgrad in [((0.9, 0.999), False), ((0.8, 0.99), True)]
        for o in _options(weight_decay=[0.0, 1e-2], maximize=[False, True])
    ]
    + [
        (optim.AdamW, torch.optim.AdamW, dict(lr=0.02) | o)
        for o in _options(amsgrad=[False, True], weight_decay=[0.0, 0.1], maximize=[False, True])
    ]
)
IDS = [f"{cls.__name__}-" + "-".join(f"{k}={v}" for k, v in o.items()) for cls, _, o in CONFIGS]
CLASSES = [optim.SGD, optim.Adagrad, optim.RMSprop, optim.Adam, optim.AdamW]
# one configuration per class, the last listed: every option of the class switched on
EVERY_OPTION_ON = [[c for c in CONFIGS if c[0] is cls][-1] for cls in CLASSES]


TORCH_STATE_KEYS = {  # the state torch keeps per parameter, for the options that need it
    optim.SGD: ["momentum_buffer"],
    optim.Adagrad: ["step", "sum"],
    optim.RMSprop: ["step", "square_avg", "grad_avg", "momentum_buffer"],
    optim.Adam: ["step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"],
    optim.AdamW: ["step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"],
}


def as_params(tensors):
    """The tensors as a :class:`bplib.Params`, the tuple subclass in which the engine hands out parameters and gradients."""
    return bplib.Params(tensors, ["W", "b", "s"])


def make_problem(generator):
    """Random initial parameters and the loss L(theta) = sum_i 1/2 (theta_i - c_i)^T Q_i (theta_i - c_i) + sum log cosh theta_i."""
    params, terms = [], []
    for shape in SHAPES:
        n = math.prod(shape)
        M = torch.randn(n, n, generator=generator, dtype=F64)
        Q = M @ M.T / n + 0.5 * torch.eye(n, dtype=F64)  # (n, n), symmetric positive definite
        terms.append((Q, torch.randn(n, generator=generator, dtype=F64)))
        params.append(torch.randn(shape, generator=generator, dtype=F64))
    return params, terms


def loss(terms, params):
    return sum(
        0.5 * (p.reshape(-1) - c) @ Q @ (p.reshape(-1) - c) + torch.log(torch.cosh(p)).sum()
        for p, (Q, c) in zip(params, terms)
    )


def loss_grads(terms, params):
    # dL/dtheta_i = Q_i (theta_i - c_i) + tanh(theta_i)
    return [(Q @ (p.reshape(-1) - c)).reshape(p.shape) + torch.tanh(p) for p, (Q, c) in zip(params, terms)]


def handed_grads(terms, params, maximize):
    """The gradients both optimisers get at the current parameters: dL/dtheta, or -dL/dtheta with ``maximize``.

    Ascending on -L minimises L, so every trajectory stays bounded.
    """
    grads = loss_grads(terms, params)
    return [-g for g in grads] if maximize else grads


def assert_same(actual, expected, what):
    torch.testing.assert_close(actual, expected, rtol=RTOL, atol=ATOL, msg=lambda default: f"{what}: {default}")


def run_side_by_side(opt, ref, ours, theirs, terms, maximize, steps, before_step=lambda t: None):
    """``steps`` steps of a bplib and a torch optimiser on the same gradients; ``before_step(t)`` runs before step t."""
    for t in range(1, steps + 1):
        before_step(t)
        grads = handed_grads(terms, ours, maximize)
        for p, g in zip(theirs, grads):
            p.grad = g.clone()
        opt.step(grads)
        ref.step()


def assert_same_params(ours, theirs, what):
    for i, (a, b) in enumerate(zip(ours, theirs)):
        assert_same(a, b, f"parameter {i} {what}")


def assert_state_is_torchs(opt, ref, ours, theirs, steps):
    """``opt.state[p]`` holds torch's keys and values; ``"step"`` counts the steps (torch's SGD keeps none)."""
    for i, (a, b) in enumerate(zip(ours, theirs)):
        state, expected = opt.state[a], ref.state[b]
        assert state["step"] == steps, f"state of parameter {i}: step {state['step']}, expected {steps}"
        assert set(state) == set(expected) | {"step"}, f"state of parameter {i}: keys {sorted(state)}, torch's {sorted(expected)}"
        assert set(expected) <= set(TORCH_STATE_KEYS[type(opt)])
        for key, value in expected.items():
            if key == "step":  # torch keeps a 0-d tensor
                assert int(value) == steps
            else:
                assert_same(state[key], value, f"state[params[{i}]]['{key}'] equals torch's")


@pytest.mark.parametrize("cls, torch_cls, options", CONFIGS, ids=IDS)
def test_matches_torch_optim_for_200_steps(cls, torch_cls, options, generator):
    start, terms = make_problem(generator)
    ours, theirs = [p.clone() for p in start], [p.clone() for p in start]
    opt = cls(ours, **options)
    # foreach=False: torch's single-tensor path, the one it takes on the CPU anyway
    ref = torch_cls(theirs, **options, foreach=False)
    maximize = options.get("maximize", False)
    for done in range(0, STEPS, CHECK_EVERY):
        run_side_by_side(opt, ref, ours, theirs, terms, maximize, CHECK_EVERY)
        assert_same_params(ours, theirs, f"after {done + CHECK_EVERY} steps equals torch.optim.{torch_cls.__name__}'s")
    assert_state_is_torchs(opt, ref, ours, theirs, STEPS)
    # the problem really is optimised: otherwise agreement would prove little
    assert loss(terms, ours) < 0.5 * loss(terms, start)


def functional_stepper(cls, options, params):
    """Return ``step(grads, t)`` that applies the functional core of ``cls``, with state lists made here."""
    defaults = {
        name: p.default for name, p in inspect.signature(cls).parameters.items() if p.default is not inspect.Parameter.empty
    }
    o = defaults | options
    if cls is optim.SGD:
        buffers = [None] * len(params)
        return lambda grads, t: optim.sgd(params, grads, buffers, **o)
    if cls is optim.Adagrad:
        s_0 = o.pop("initial_accumulator_value")
        sums = [torch.full_like(p, s_0) for p in params]
        return lambda grads, t: optim.adagrad(params, grads, sums, step=t, **o)
    if cls is optim.RMSprop:
        square_avgs = [torch.zeros_like(p) for p in params]
        grad_avgs = [torch.zeros_like(p) for p in params] if o["centered"] else None
        buffers = [torch.zeros_like(p) for p in params] if o["momentum"] > 0 else None
        return lambda grads, t: optim.rmsprop(params, grads, square_avgs, grad_avgs, buffers, **o)
    rule = optim.adam if cls is optim.Adam else optim.adamw
    beta1, beta2 = o.pop("betas")
    m, v = [torch.zeros_like(p) for p in params], [torch.zeros_like(p) for p in params]
    v_max = [torch.zeros_like(p) for p in params] if o["amsgrad"] else None
    return lambda grads, t: rule(params, grads, m, v, v_max, step=t, beta1=beta1, beta2=beta2, **o)


@pytest.mark.parametrize("cls, torch_cls, options", CONFIGS, ids=IDS)
def test_functional_core_equals_class(cls, torch_cls, options, generator):
    start, terms = make_problem(generator)
    by_class = [p.clone() for p in start]
    by_function = [p.clone() for p in start]
    opt = cls(by_class, **options)
    step = functional_stepper(cls, options, by_function)
    for t in range(1, 11):
        grads = handed_grads(terms, by_class, options.get("maximize", False))
        handed = [g.clone() for g in grads]
        opt.step(grads)
        step(grads, t)
        # nothing may write into the gradients (the same tensors may serve a second optimiser)
        assert all(torch.equal(g, h) for g, h in zip(grads, handed)), "step modified the gradients"
    for i, (a, b) in enumerate(zip(by_class, by_function)):
        assert_same(b, a, f"params[{i}] from optim.{cls.__name__.lower()} equal {cls.__name__}")


@pytest.mark.parametrize("cls, torch_cls", [(c[0], c[1]) for c in EVERY_OPTION_ON], ids=lambda x: x.__name__)
def test_defaults_are_torchs(cls, torch_cls):
    theirs = inspect.signature(torch_cls).parameters
    for name, p in inspect.signature(cls).parameters.items():
        if cls is optim.SGD and name == "lr":
            assert p.default is inspect.Parameter.empty  # SGD takes no default learning rate here
        else:
            assert p.default == theirs[name].default, f"{cls.__name__}: default of {name}"
    lr = {"lr": 0.1} if cls is optim.SGD else {}
    opt, ref = cls(one_param(), **lr), torch_cls(one_param(), **lr)
    assert list(opt.defaults) == [option.name for option in cls.options]
    assert opt.defaults == {name: ref.defaults[name] for name in opt.defaults}, "opt.defaults equal torch's"
    (group,) = opt.param_groups
    assert group == {"params": group["params"], **opt.defaults}


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_signature_and_documentation_come_from_the_table(cls):
    parameters = list(inspect.signature(cls).parameters.values())
    assert [p.name for p in parameters] == ["params"] + [option.name for option in cls.options]
    assert parameters[1].name == "lr" and parameters[1].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in parameters[2:]), "the options after lr are keyword-only"
    doc = inspect.getdoc(cls)
    for option in cls.options:
        default = "Required" if option.default is inspect.Parameter.empty else f"Default ``{option.default!r}``"
        entry = doc.split(f"\n{option.name} : ")[1].splitlines()
        assert default in entry[1] and option.allowed() in entry[1], f"{cls.__name__}: the documentation of {option.name}"


def test_learning_rate_set_between_steps_acts_as_a_schedule(generator):
    start, terms = make_problem(generator)
    for cls, torch_cls, options in [(optim.Adam, torch.optim.Adam, {}), (optim.SGD, torch.optim.SGD, {"momentum": 0.9})]:
        ours, theirs = [p.clone() for p in start], [p.clone() for p in start]
        groups = lambda ps: [{"params": ps[:1]}, {"params": ps[1:], "lr": 0.01}]  # noqa: E731
        opt, ref = cls(groups(ours), lr=0.05, **options), torch_cls(groups(theirs), lr=0.05, **options, foreach=False)

        def decay(t):  # each group on its own schedule, written into the groups as a scheduler does
            for ours_group, their_group, rate in zip(opt.param_groups, ref.param_groups, [0.05 / (1 + t / 10), 0.01 * 0.97**t]):
                ours_group["lr"] = their_group["lr"] = rate

        run_side_by_side(opt, ref, ours, theirs, terms, False, 30, decay)
        assert_same_params(ours, theirs, f"of {cls.__name__} under decaying per-group learning rates equals torch's")


@pytest.mark.parametrize("cls, torch_cls, options", EVERY_OPTION_ON, ids=[c[0].__name__ for c in EVERY_OPTION_ON])
def test_parameter_groups_match_torch(cls, torch_cls, options, generator):
    start, terms = make_problem(generator)
    ours, theirs = [p.clone() for p in start], [p.clone() for p in start]
    second = {"lr": options["lr"] / 2, "weight_decay": 0.05}  # the second group: half the rate, another decay
    opt = cls([{"params": ours[:1]}, {"params": ours[1:], **second}], **options)
    ref = torch_cls([{"params": theirs[:1]}, {"params": theirs[1:], **second}], **options, foreach=False)
    for group, their_group, tensors in zip(opt.param_groups, ref.param_groups, [ours[:1], ours[1:]]):
        assert len(group["params"]) == len(tensors) and all(a is b for a, b in zip(group["params"], tensors))
        assert {name: value for name, value in group.items() if name != "params"} == {
            name: their_group[name] for name in group if name != "params"
        }, "the groups hold torch's values"
    run_side_by_side(opt, ref, ours, theirs, terms, options.get("maximize", False), STEPS)
    assert_same_params(ours, theirs, f"in two groups after {STEPS} steps equals torch.optim.{torch_cls.__name__}'s")
    assert_state_is_torchs(opt, ref, ours, theirs, STEPS)


def test_groups_with_and_without_momentum_match_torch(generator):
    start, terms = make_problem(generator)
    ours, theirs = [p.clone() for p in start], [p.clone() for p in start]
    groups = lambda ps: [{"params": ps[:2], "momentum": 0.0, "nesterov": False}, {"params": ps[2:]}]  # noqa: E731
    opt = optim.SGD(groups(ours), lr=0.02, momentum=0.9, nesterov=True)
    ref = torch.optim.SGD(groups(theirs), lr=0.02, momentum=0.9, nesterov=True, foreach=False)
    run_side_by_side(opt, ref, ours, theirs, terms, False, STEPS)
    assert_same_params(ours, theirs, "of SGD, one group plain and one with Nesterov momentum, equals torch's")
    assert_state_is_torchs(opt, ref, ours, theirs, STEPS)
    assert "momentum_buffer" not in opt.state[ours[0]] and "momentum_buffer" in opt.state[ours[2]]


def test_adagrad_starts_the_sums_of_a_group_at_the_groups_initial_accumulator_value(generator):
    """A documented difference: torch fills every sum with the constructor's value, ignoring the group's."""
    start, terms = make_problem(generator)
    ours, theirs = [p.clone() for p in start], [p.clone() for p in start]
    groups = lambda ps: [{"params": ps[:1], "initial_accumulator_value": 0.5}, {"params": ps[1:]}]  # noqa: E731
    opt = optim.Adagrad(groups(ours), lr=0.1, initial_accumulator_value=0.1)
    ref = torch.optim.Adagrad(groups(theirs), lr=0.1, initial_accumulator_value=0.1, foreach=False)
    assert ref.param_groups[0]["initial_accumulator_value"] == 0.5
    assert torch.equal(ref.state[theirs[0]]["sum"], torch.full_like(start[0], 0.1)), "torch ignores the group's value"
    ref.state[theirs[0]]["sum"].fill_(0.5)  # the start the group asks for
    run_side_by_side(opt, ref, ours, theirs, terms, False, STEPS)
    assert_same_params(ours, theirs, "of Adagrad with a group's own initial_accumulator_value equals torch's, so started")
    assert_state_is_torchs(opt, ref, ours, theirs, STEPS)


def test_momentum_switched_on_between_steps_matches_torch(generator):
    start, terms = make_problem(generator)
    ours, theirs = [p.clone() for p in start], [p.clone() for p in start]
    opt, ref = optim.SGD(ours, lr=0.02), torch.optim.SGD(theirs, lr=0.02, foreach=False)

    def switch(t):  # at step 20 the buffer starts, as on a first step, from the gradient of that step
        if t == 20:
            opt.param_groups[0]["momentum"] = ref.param_groups[0]["momentum"] = 0.9

    run_side_by_side(opt, ref, ours, theirs, terms, False, 60, switch)
    assert_same_params(ours, theirs, "of SGD with momentum switched on at step 20 equals torch's")
    assert_state_is_torchs(opt, ref, ours, theirs, 60)


def test_amsgrad_switched_on_between_steps_starts_its_maximum_at_zero(generator):
    start, terms = make_problem(generator)
    by_class, by_function = [p.clone() for p in start], [p.clone() for p in start]
    opt = optim.Adam(by_class, lr=0.02)
    m, v = [torch.zeros_like(p) for p in start], [torch.zeros_like(p) for p in start]
    v_max = None
    for t in range(1, 31):
        if t == 11:
            opt.param_groups[0]["amsgrad"] = True
            v_max = [torch.zeros_like(p) for p in start]
        grads = loss_grads(terms, by_class)
        opt.step(grads)
        optim.adam(by_function, grads, m, v, v_max, step=t, lr=0.02, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, amsgrad=t > 10)
    assert_same_params(by_class, by_function, "of Adam with amsgrad from step 11 equals the functional core's")
    for i, p in enumerate(by_class):
        assert_same(opt.state[p]["max_exp_avg_sq"], v_max[i], f"the maximum of parameter {i}, started at step 11")


@pytest.mark.parametrize("cls, torch_cls, options", EVERY_OPTION_ON, ids=[c[0].__name__ for c in EVERY_OPTION_ON])
def test_a_tuple_subclass_serves_as_params_and_grads(cls, torch_cls, options, generator):
    start, terms = make_problem(generator)
    as_lists, as_tuples = [p.clone() for p in start], as_params(p.clone() for p in start)
    opt_lists, opt_tuples = cls(as_lists, **options), cls(as_tuples, **options)
    assert all(a is b for a, b in zip(opt_tuples.param_groups[0]["params"], as_tuples))
    maximize = options.get("maximize", False)
    for _ in range(20):
        opt_lists.step(handed_grads(terms, as_lists, maximize))
        grads = as_params(handed_grads(terms, as_tuples, maximize))
        assert isinstance(grads, tuple) and type(grads) is not tuple
        opt_tuples.step(grads)
    # the same operations on the same numbers: bit for bit the same
    assert all(torch.equal(a, b) for a, b in zip(as_lists, as_tuples)), "a tuple subclass changed the result"
    # and the functional core takes them too
    by_function = as_params(p.clone() for p in start)
    functional_stepper(cls, options, by_function)(as_params(handed_grads(terms, start, maximize)), 1)
    assert not any(torch.equal(a, b) for a, b in zip(by_function, start)), "the functional core updated the Params"


def test_weights_and_biases_of_an_mlp_in_two_groups_match_torch():
    """Decay on the weights only, the usual recipe: the gradients come in the order of the groups."""
    nets = [bplib.MLP([6, 8, 3], "tanh", "softmax_ce", dtype=F64, generator=torch.Generator().manual_seed(3)) for _ in range(2)]
    x = torch.randn(32, 6, generator=torch.Generator().manual_seed(4), dtype=F64)
    y = torch.randint(3, (32,), generator=torch.Generator().manual_seed(5))
    groups = [[{"params": net.parameters.weights, "weight_decay": 0.1}, {"params": net.parameters.biases, "weight_decay": 0.0}] for net in nets]
    opt, ref = optim.AdamW(groups[0], lr=0.01), torch.optim.AdamW(groups[1], lr=0.01, foreach=False)
    for _ in range(50):
        _, grads = nets[0].loss_and_grads(x, y)
        opt.step(grads.weights + grads.biases)
        _, grads = nets[1].loss_and_grads(x, y)
        for p, g in zip(nets[1].parameters, grads):
            p.grad = g
        ref.step()
    for i, (a, b) in enumerate(zip(nets[0].parameters, nets[1].parameters)):
        assert_same(a, b, f"MLP parameter {i} ({nets[0].parameters.names[i]}) after 50 steps of AdamW in two groups")
    assert opt.state[nets[0].parameters.biases[0]]["step"] == 50


def test_parameters_that_require_grad_are_updated():
    p = torch.zeros(3, dtype=F64, requires_grad=True)
    optim.Adam([p], lr=0.1).step([torch.ones(3, dtype=F64)])
    assert p.requires_grad and p.grad_fn is None
    # the first step is lr * g / (|g| + eps) in every entry
    assert_same(p.detach(), torch.full((3,), -0.1 / (1 + 1e-8), dtype=F64), "the first Adam step")


# ----------------------------------------------------------------------------------------------
# clip_grad_norm
# ----------------------------------------------------------------------------------------------


def random_grads(generator, scale=1.0):
    return [scale * torch.randn(s, generator=generator, dtype=F64) for s in SHAPES]


@pytest.mark.parametrize("scale, max_norm", [(3.0, 1.0), (3.0, 0.0), (1e-3, 1.0), (0.0, 1.0), (1.0, 5.0)])
def test_clip_grad_norm_equals_torch(scale, max_norm, generator):
    grads = random_grads(generator, scale)
    holders = [torch.zeros_like(g) for g in grads]
    for h, g in zip(holders, grads):
        h.grad = g.clone()
    expected = torch.nn.utils.clip_grad_norm_(holders, max_norm)
    total = optim.clip_grad_norm(grads, max_norm)
    assert total.shape == () and total.dtype == F64
    assert_same(total, expected, "the returned norm equals torch's")
    for i, (g, h) in enumerate(zip(grads, holders)):
        assert_same(g, h.grad, f"grads[{i}] scaled as torch scales it")


def test_clip_grad_norm_returns_the_norm_before_and_keeps_the_direction(generator):
    grads = random_grads(generator, scale=3.0)
    before = [g.clone() for g in grads]
    norm_before = torch.cat([g.reshape(-1) for g in before]).norm()
    total = optim.clip_grad_norm(grads, 1.0)
    assert_same(total, norm_before, "the returned norm is the norm of all gradients as one vector, before clipping")
    norm_after = torch.cat([g.reshape(-1) for g in grads]).norm()
    assert 1.0 - 1e-5 < norm_after <= 1.0  # max_norm, less the 1e-6 guard in the denominator
    for i, (g, b) in enumerate(zip(grads, before)):
        assert_same(g, b * (norm_after / norm_before), f"grads[{i}] is scaled by the common factor")


def test_clip_grad_norm_takes_a_tuple_subclass(generator):
    grads = as_params(random_grads(generator, scale=3.0))
    copies = [g.clone() for g in grads]
    assert_same(optim.clip_grad_norm(grads, 1.0), optim.clip_grad_norm(copies, 1.0), "the norm of a Params")
    assert all(torch.equal(g, c) for g, c in zip(grads, copies))


def test_clip_grad_norm_leaves_small_gradients_alone(generator):
    grads = random_grads(generator)
    before = [g.clone() for g in grads]
    total = optim.clip_grad_norm(grads, 2 * float(torch.cat([g.reshape(-1) for g in grads]).norm()))
    # within the bound the factor is clamped to exactly 1, and multiplying by 1 is exact
    assert all(torch.equal(g, b) for g, b in zip(grads, before))
    zeros = [torch.zeros(s, dtype=F64) for s in SHAPES]
    assert optim.clip_grad_norm(zeros, 1.0) == 0 and all(not z.any() for z in zeros)
    assert total > 0


# ----------------------------------------------------------------------------------------------
# Errors
# ----------------------------------------------------------------------------------------------


def one_param():
    return [torch.zeros(2, 3, dtype=F64), torch.zeros(3, dtype=F64)]


# (class, keyword arguments, the argument named in the message, its bad value)
BAD_HYPERPARAMETERS = [
    (optim.SGD, dict(lr=-0.1), "lr", -0.1),
    (optim.SGD, dict(lr=float("nan")), "lr", float("nan")),
    (optim.SGD, dict(lr=float("inf")), "lr", float("inf")),
    (optim.SGD, dict(lr=0.1, momentum=-0.5), "momentum", -0.5),
    (optim.SGD, dict(lr=0.1, momentum=0.9, dampening=1.5), "dampening", 1.5),
    (optim.SGD, dict(lr=0.1, weight_decay=-1e-4), "weight_decay", -1e-4),
    (optim.Adagrad, dict(lr=-0.01), "lr", -0.01),
    (optim.Adagrad, dict(lr_decay=-0.1), "lr_decay", -0.1),
    (optim.Adagrad, dict(weight_decay=-0.2), "weight_decay", -0.2),
    (optim.Adagrad, dict(initial_accumulator_value=-0.5), "initial_accumulator_value", -0.5),
    (optim.Adagrad, dict(eps=-1e-10), "eps", -1e-10),
    (optim.RMSprop, dict(lr=-0.01), "lr", -0.01),
    (optim.RMSprop, dict(alpha=1.5), "alpha", 1.5),
    (optim.RMSprop, dict(alpha=-0.1), "alpha", -0.1),
    (optim.RMSprop, dict(eps=-1e-8), "eps", -1e-8),
    (optim.RMSprop, dict(weight_decay=-0.3), "weight_decay", -0.3),
    (optim.RMSprop, dict(momentum=-0.9), "momentum", -0.9),
    (optim.Adam, dict(lr=-1e-3), "lr", -1e-3),
    (optim.Adam, dict(betas=(1.0, 0.999)), "betas[0]", 1.0),
    (optim.Adam, dict(betas=(0.9, -0.1)), "betas[1]", -0.1),
    (optim.Adam, dict(eps=-1e-8), "eps", -1e-8),
    (optim.Adam, dict(weight_decay=-0.01), "weight_decay", -0.01),
    (optim.AdamW, dict(lr=-2e-3), "lr", -2e-3),
    (optim.AdamW, dict(betas=(0.9, 1.5)), "betas[1]", 1.5),
    (optim.AdamW, dict(weight_decay=-0.02), "weight_decay", -0.02),
]


@pytest.mark.parametrize(
    "cls, kwargs, name, value", BAD_HYPERPARAMETERS, ids=[f"{c.__name__}-{n}={v}" for c, _, n, v in BAD_HYPERPARAMETERS]
)
def test_bad_hyperparameter_is_named_with_its_value(cls, kwargs, name, value):
    pattern = rf"^{cls.__name__}: argument '{re.escape(name)}' must be (>= 0|in \[0, 1[)\]]), got {re.escape(repr(value))}$"
    with pytest.raises(ValueError, match=pattern):
        cls(one_param(), **kwargs)


@pytest.mark.parametrize(
    "cls, kwargs, name, value", BAD_HYPERPARAMETERS, ids=[f"{c.__name__}-{n}={v}" for c, _, n, v in BAD_HYPERPARAMETERS]
)
def test_bad_hyperparameter_in_a_group_is_named_with_its_group(cls, kwargs, name, value):
    key, _, index = name.partition("[")
    group = {"params": one_param()[1:], key: kwargs[key]}
    lr = {"lr": 0.1} if cls is optim.SGD else {}
    where = re.escape(f"params[1]['{key}']" + (f"[{index}" if index else ""))
    with pytest.raises(ValueError, match=rf"^{cls.__name__}: {where} must be (>= 0|in \[0, 1[)\]]), got {re.escape(repr(value))}$"):
        cls([{"params": one_param()[:1]}, group], **lr)


@pytest.mark.parametrize(
    "call, error, pattern",
    [
        (lambda: optim.SGD(one_param(), lr=0.1, nesterov=True), ValueError, r"^SGD: nesterov=True requires momentum > 0 and dampening = 0, got momentum=0.0 and dampening=0.0$"),
        (lambda: optim.SGD(one_param(), lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), ValueError, r"SGD: nesterov=True requires .* got momentum=0.9 and dampening=0.1"),
        (lambda: optim.SGD(one_param(), lr="0.1"), TypeError, r"SGD: argument 'lr' must be a real number, got str '0.1'"),
        (lambda: optim.SGD(one_param(), lr=0.1, momentum=0.9, nesterov=1), TypeError, r"SGD: argument 'nesterov' must be True or False, got int 1"),
        (lambda: optim.Adam(one_param(), amsgrad="yes"), TypeError, r"Adam: argument 'amsgrad' must be True or False, got str 'yes'"),
        (lambda: optim.RMSprop(one_param(), centered=None), TypeError, r"RMSprop: argument 'centered' must be True or False, got NoneType None"),
        (lambda: optim.Adam(one_param(), betas=(0.9,)), ValueError, r"Adam: argument 'betas' must be a pair \(beta1, beta2\), got \(0.9,\)"),
        (lambda: optim.AdamW(one_param(), betas=0.9), ValueError, r"AdamW: argument 'betas' must be a pair \(beta1, beta2\), got 0.9"),
        (lambda: optim.Optimizer(one_param()), TypeError, r"^Optimizer: the base class has no update rule; use SGD, Adagrad, RMSprop, Adam or AdamW, or subclass it$"),
        (lambda: optim.SGD(one_param()), TypeError, r"^SGD: missing a required argument: 'lr'; the signature is SGD\(params, lr, \*, momentum=0.0, "),
        (lambda: optim.SGD(one_param(), 0.1, 0.9), TypeError, r"^SGD: too many positional arguments; the signature is SGD\(params, lr, \*, momentum"),
        (lambda: optim.Adam(one_param(), lr=0.1, momentun=0.9), TypeError, r"^Adam: got an unexpected keyword argument 'momentun'; the signature is Adam\(params, lr=0.001, \*, betas"),
        (lambda: optim.SGD(torch.zeros(3), lr=0.1), TypeError, r"^SGD: argument 'params' must be a sequence of tensors or of parameter groups \(dicts\), got a single tensor; wrap it in a list$"),
        (lambda: optim.Adam(p for p in one_param()), TypeError, r"^Adam: argument 'params' must be a sequence \(list or tuple\) of tensors or of parameter groups \(dicts\), got generator$"),
        (lambda: optim.Adam({"params": one_param()}), TypeError, r"^Adam: argument 'params' must be a sequence \(list or tuple\) .* got dict$"),
        (lambda: optim.Adam([]), ValueError, r"^Adam: argument 'params' must hold at least one tensor, got an empty list"),
        (lambda: optim.Adagrad([torch.zeros(3, dtype=torch.int64)]), TypeError, r"Adagrad: argument 'params\[0\]' must have a floating dtype .*int64"),
        (lambda: optim.RMSprop([torch.zeros(3), 1.0]), TypeError, r"RMSprop: argument 'params\[1\]' must be a torch.Tensor, got float"),
        (lambda: optim.RMSprop([torch.zeros(3), {"params": [torch.zeros(3)]}]), TypeError, r"RMSprop: argument 'params\[1\]' must be a torch.Tensor, got dict"),
        (lambda: optim.AdamW([p := torch.zeros(3), p]), ValueError, r"^AdamW: argument 'params' holds the same tensor at params\[0\] and params\[1\]; it would be updated twice per step$"),
        # parameter groups
        (lambda: optim.SGD([{"params": one_param()}, torch.zeros(3)], lr=0.1), TypeError, r"^SGD: params\[1\] must be a parameter group \(a dict with the key 'params'\), like params\[0\], got Tensor$"),
        (lambda: optim.SGD([{"lr": 0.1}], lr=0.1), ValueError, r"^SGD: params\[0\] has no key 'params'; a parameter group is \{'params': \[tensors\], option: value, ...\}$"),
        (lambda: optim.Adam([{"params": one_param(), "momentum": 0.9}]), ValueError, r"^Adam: params\[0\] has the key 'momentum', which is no option of Adam; its options are lr, betas, eps, weight_decay, amsgrad, maximize$"),
        (lambda: optim.SGD([{"params": []}], lr=0.1), ValueError, r"^SGD: argument 'params\[0\]\['params'\]' must hold at least one tensor, got an empty list$"),
        (lambda: optim.SGD([{"params": torch.zeros(3)}], lr=0.1), TypeError, r"^SGD: argument 'params\[0\]\['params'\]' must be a sequence of tensors, got a single tensor"),
        (lambda: optim.SGD([{"params": [torch.zeros(3, dtype=torch.int64)]}], lr=0.1), TypeError, r"^SGD: argument 'params\[0\]\['params'\]\[0\]' must have a floating dtype"),
        (lambda: optim.SGD([{"params": one_param(), "nesterov": 1}], lr=0.1), TypeError, r"^SGD: params\[0\]\['nesterov'\] must be True or False, got int 1$"),
        (lambda: optim.Adam([{"params": one_param(), "betas": [0.9]}]), ValueError, r"^Adam: params\[0\]\['betas'\] must be a pair \(beta1, beta2\), got \[0.9\]$"),
        (lambda: optim.SGD([{"params": one_param()}, {"params": [torch.zeros(1)], "momentum": 0.0}], lr=0.1, momentum=0.9, nesterov=True), ValueError, r"^SGD: in params\[1\], nesterov=True requires momentum > 0 and dampening = 0, got momentum=0.0 and dampening=0.0$"),
        (lambda: optim.SGD([{"params": [p := torch.zeros(3)]}, {"params": [torch.zeros(2), p]}], lr=0.1), ValueError, r"^SGD: argument 'params' holds the same tensor at params\[0\]\['params'\]\[0\] and params\[1\]\['params'\]\[1\]; it would be updated twice per step$"),
    ],
)
def test_constructor_errors(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()


@pytest.mark.parametrize("cls, name", [(optim.Adam, "lr"), (optim.SGD, "momentum"), (optim.RMSprop, "alpha")])
def test_setting_a_hyperparameter_as_an_attribute_is_refused(cls, name):
    opt = cls(one_param(), lr=0.1)
    pattern = rf"^{cls.__name__}: '{name}' is a hyper-parameter of every parameter group; set group\['{name}'\] = \.\.\. for each group"
    with pytest.raises(AttributeError, match=pattern):
        setattr(opt, name, 0.5)
    assert opt.param_groups[0][name] == opt.defaults[name] != 0.5


def test_betas_given_as_a_list_are_stored_as_a_pair():
    opt = optim.Adam([{"params": one_param(), "betas": [0.8, 0.9]}], betas=[0.7, 0.99])
    assert opt.defaults["betas"] == (0.7, 0.99) and opt.param_groups[0]["betas"] == (0.8, 0.9)


BAD_GRADS = [
    (lambda: [torch.zeros(2, 3, dtype=F64)], ValueError, r"argument 'grads' must hold 2 tensors, one per parameter, got 1"),
    (lambda: [torch.zeros(2, 3, dtype=F64), torch.zeros(4, dtype=F64)], ValueError, r"argument 'grads\[1\]' must have shape \(3,\) \(the shape of params\[1\]\), got \(4,\)"),
    (lambda: [torch.zeros(3, 2, dtype=F64), torch.zeros(3, dtype=F64)], ValueError, r"argument 'grads\[0\]' must have shape \(2, 3\) \(the shape of params\[0\]\), got \(3, 2\)"),
    (lambda: [torch.zeros(2, 3, dtype=F64), torch.zeros(3)], TypeError, r"argument 'grads\[1\]' has dtype torch.float32 but 'params\[1\]' has dtype torch.float64"),
    (lambda: [torch.zeros(2, 3, dtype=F64), [0.0, 0.0, 0.0]], TypeError, r"argument 'grads\[1\]' must be a torch.Tensor, got list"),
    (lambda: [torch.zeros(2, 3, dtype=F64), torch.zeros(3, dtype=F64, device="meta")], ValueError, r"argument 'grads\[1\]' is on device meta but 'params\[1\]' is on cpu"),
    (lambda: torch.zeros(2, 3, dtype=F64), TypeError, r"argument 'grads' must be a sequence of tensors, one per parameter, got a single tensor; wrap it in a list$"),
    (lambda: (g for g in one_param()), TypeError, r"argument 'grads' must be a sequence \(list or tuple\) of tensors, one per parameter, got generator$"),
]


def assert_nothing_changed(opt, params):
    assert all(bool((p == 1).all()) for p in params), "a rejected step changed the parameters"
    assert all(opt.state[p] == {} for p in params), "a rejected step changed the state"


@pytest.mark.parametrize("cls, _torch_cls, options", EVERY_OPTION_ON, ids=[c[0].__name__ for c in EVERY_OPTION_ON])
@pytest.mark.parametrize("grads, error, pattern", BAD_GRADS)
def test_step_rejects_mismatched_grads_before_updating(cls, _torch_cls, options, grads, error, pattern):
    params = [torch.ones(2, 3, dtype=F64), torch.ones(3, dtype=F64)]
    opt = cls(params, **options)
    with pytest.raises(error, match=rf"^{cls.__name__}.step: {pattern}"):
        opt.step(grads())
    assert_nothing_changed(opt, params)


def test_step_names_the_parameter_of_a_group():
    params = [torch.ones(2, 3, dtype=F64), torch.ones(3, dtype=F64)]
    opt = optim.SGD([{"params": params[:1]}, {"params": params[1:]}], lr=0.1)
    pattern = r"^SGD.step: argument 'grads\[1\]' must have shape \(3,\) \(the shape of param_groups\[1\]\['params'\]\[0\]\), got \(4,\)$"
    with pytest.raises(ValueError, match=pattern):
        opt.step([torch.zeros(2, 3, dtype=F64), torch.zeros(4, dtype=F64)])
    assert_nothing_changed(opt, params)


@pytest.mark.parametrize(
    "cls, options, key, value, error, pattern",
    [
        (optim.SGD, dict(lr=0.1), "lr", -0.1, ValueError, r"^SGD.step: param_groups\[1\]\['lr'\] must be >= 0, got -0.1$"),
        (optim.Adam, {}, "lr", torch.tensor(0.1), TypeError, r"^Adam.step: param_groups\[1\]\['lr'\] must be a real number, got Tensor"),
        (optim.Adam, {}, "betas", (0.9,), ValueError, r"^Adam.step: param_groups\[1\]\['betas'\] must be a pair \(beta1, beta2\), got \(0.9,\)$"),
        (optim.RMSprop, {}, "centered", 1, TypeError, r"^RMSprop.step: param_groups\[1\]\['centered'\] must be True or False, got int 1$"),
        (optim.SGD, dict(lr=0.1, momentum=0.9, nesterov=True), "momentum", 0.0, ValueError, r"^SGD.step: in param_groups\[1\], nesterov=True requires momentum > 0 and dampening = 0, got momentum=0.0"),
    ],
)
def test_step_checks_hyperparameters_changed_in_a_group_before_updating(cls, options, key, value, error, pattern):
    params = [torch.ones(2, 3, dtype=F64), torch.ones(3, dtype=F64)]
    opt = cls([{"params": params[:1]}, {"params": params[1:]}], **options)
    opt.param_groups[1][key] = value
    with pytest.raises(error, match=pattern):
        opt.step([torch.ones_like(p) for p in params])
    assert_nothing_changed(opt, params)


def zeros_like_all(params):
    return [torch.zeros_like(p) for p in params]


@pytest.mark.parametrize(
    "call, error, pattern",
    [
        (lambda p, g: optim.sgd(p, g, (None, None), lr=0.1, momentum=0.9, dampening=0.0, nesterov=False, weight_decay=0.0), TypeError, r"^sgd: argument 'momentum_buffers' must be a list of tensors, one per parameter, got tuple"),
        (lambda p, g: optim.sgd(p, g, None, lr=-1, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0), ValueError, r"^sgd: argument 'lr' must be >= 0, got -1$"),
        (lambda p, g: optim.sgd(p, g, None, lr=0.1, momentum=0.0, dampening=0.0, nesterov=True, weight_decay=0.0), ValueError, r"^sgd: nesterov=True requires momentum > 0 and dampening = 0"),
        (lambda p, g: optim.sgd(p, g[:1], None, lr=0.1, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0), ValueError, r"^sgd: argument 'grads' must hold 2 tensors"),
        (lambda p, g: optim.sgd(p[0], g, None, lr=0.1, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0), TypeError, r"^sgd: argument 'params' must be a sequence of tensors, got a single tensor"),
        (lambda p, g: optim.adagrad(p, g, zeros_like_all(p), step=0, lr=0.1, lr_decay=0.0, weight_decay=0.0, eps=1e-10), ValueError, r"^adagrad: argument 'step' must be the number of this step, an integer >= 1, got 0"),
        (lambda p, g: optim.adagrad(p, g, zeros_like_all(p), step=1, lr=0.1, lr_decay=0.0, weight_decay=0.0, eps=1e-10, maximize=None), TypeError, r"^adagrad: argument 'maximize' must be True or False, got NoneType None$"),
        (lambda p, g: optim.rmsprop(p, g, zeros_like_all(p), None, None, lr=0.1, alpha=0.9, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=True), TypeError, r"^rmsprop: argument 'grad_avgs' must be a list of tensors, one per parameter, got NoneType"),
        (lambda p, g: optim.rmsprop(p, g, zeros_like_all(p), None, None, lr=0.1, alpha=1.1, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False), ValueError, r"^rmsprop: argument 'alpha' must be in \[0, 1\], got 1.1$"),
        (lambda p, g: optim.adam(p, g, zeros_like_all(p), zeros_like_all(p), None, step=1, lr=0.1, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, amsgrad=True), TypeError, r"^adam: argument 'max_exp_avg_sqs' must be a list"),
        (lambda p, g: optim.adam(p, g, zeros_like_all(p), zeros_like_all(p), None, step=1, lr=0.1, beta1=1.0, beta2=0.999, eps=1e-8, weight_decay=0.0, amsgrad=False), ValueError, r"^adam: argument 'beta1' must be in \[0, 1\), got 1.0$"),
        (lambda p, g: optim.adam(p, g, zeros_like_all(p), zeros_like_all(p), None, step=1, lr=0.1, beta1=0.9, beta2="0.999", eps=1e-8, weight_decay=0.0, amsgrad=False), TypeError, r"^adam: argument 'beta2' must be a real number, got str '0.999'$"),
        (lambda p, g: optim.adamw(p, g, zeros_like_all(p)[::-1], zeros_like_all(p), None, step=1, lr=0.1, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, amsgrad=False), ValueError, r"^adamw: argument 'exp_avgs\[0\]' must have shape \(2, 3\) \(the shape of params\[0\]\), got \(3,\)"),
    ],
)
def test_functional_errors(call, error, pattern):
    params = one_param()
    with pytest.raises(error, match=pattern):
        call(params, [torch.ones_like(p) for p in params])
    assert all(not p.any() for p in params), "a rejected call changed the parameters"


@pytest.mark.parametrize(
    "call, error, pattern",
    [
        (lambda: optim.clip_grad_norm(one_param(), -1.0), ValueError, r"^clip_grad_norm: argument 'max_norm' must be >= 0, got -1.0$"),
        (lambda: optim.clip_grad_norm([], 1.0), ValueError, r"^clip_grad_norm: argument 'grads' must hold at least one tensor"),
        (lambda: optim.clip_grad_norm(torch.zeros(3), 1.0), TypeError, r"^clip_grad_norm: argument 'grads' must be a sequence of tensors, got a single tensor; wrap it in a list$"),
        (lambda: optim.clip_grad_norm([torch.zeros(3, dtype=F64), torch.zeros(3)], 1.0), TypeError, r"^clip_grad_norm: argument 'grads\[1\]' has dtype torch.float32 but 'grads\[0\]' has dtype torch.float64"),
        (lambda: optim.clip_grad_norm([torch.zeros(3, dtype=torch.int64)], 1.0), TypeError, r"^clip_grad_norm: argument 'grads\[0\]' must have a floating dtype"),
    ],
)
def test_clip_grad_norm_errors(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()


# ----------------------------------------------------------------------------------------------
# CUDA
# ----------------------------------------------------------------------------------------------


@pytest.mark.cuda
@pytest.mark.parametrize("cls, torch_cls, options", EVERY_OPTION_ON, ids=[c[0].__name__ for c in EVERY_OPTION_ON])
def test_matches_torch_optim_on_cuda(cls, torch_cls, options, generator):
    start, terms = make_problem(generator)
    start = [p.cuda() for p in start]
    terms = [(Q.cuda(), c.cuda()) for Q, c in terms]
    ours, theirs = [p.clone() for p in start], [p.clone() for p in start]
    opt, ref = cls(ours, **options), torch_cls(theirs, **options, foreach=False)
    run_side_by_side(opt, ref, ours, theirs, terms, options.get("maximize", False), 50)
    assert all(a.device.type == "cuda" for a in ours)
    assert_same_params(ours, theirs, "on CUDA equals torch.optim's on CUDA")
    assert all(opt.state[p]["step"] == 50 for p in ours)
