"""bplib.optim: every rule and option against torch.optim, the functional cores against the classes, clipping, errors."""

import inspect
import itertools
import math
import re

import pytest
import torch

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

# bplib's state lists and the torch.optim state keys that hold the same tensors
STATE_NAMES = {
    optim.SGD: {"momentum_buffers": "momentum_buffer"},
    optim.Adagrad: {"state_sums": "sum"},
    optim.RMSprop: {"square_avgs": "square_avg", "grad_avgs": "grad_avg", "momentum_buffers": "momentum_buffer"},
    optim.Adam: {"exp_avgs": "exp_avg", "exp_avg_sqs": "exp_avg_sq", "max_exp_avg_sqs": "max_exp_avg_sq"},
}
STATE_NAMES[optim.AdamW] = STATE_NAMES[optim.Adam]


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


@pytest.mark.parametrize("cls, torch_cls, options", CONFIGS, ids=IDS)
def test_matches_torch_optim_for_200_steps(cls, torch_cls, options, generator):
    start, terms = make_problem(generator)
    ours = [p.clone() for p in start]
    theirs = [p.clone() for p in start]
    opt = cls(ours, **options)
    # foreach=False: torch's single-tensor path, the one it takes on the CPU anyway
    ref = torch_cls(theirs, **options, foreach=False)
    for t in range(1, STEPS + 1):
        grads = handed_grads(terms, ours, options.get("maximize", False))
        for p, g in zip(theirs, grads):
            p.grad = g.clone()
        opt.step(grads)
        ref.step()
        if t % CHECK_EVERY == 0:
            for i, (a, b) in enumerate(zip(ours, theirs)):
                assert_same(a, b, f"params[{i}] after {t} steps equal torch.optim.{torch_cls.__name__}")
    assert opt.steps == STEPS
    for ours_name, torch_key in STATE_NAMES[cls].items():
        states = getattr(opt, ours_name)
        for i, p in enumerate(theirs):
            expected = ref.state[p].get(torch_key)
            if expected is None:  # state that this option set does not use
                assert states is None or states[i] is None, f"{ours_name}[{i}] should be unused"
            else:
                assert_same(states[i], expected, f"{ours_name}[{i}] equals torch's state '{torch_key}'")
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


def test_learning_rate_set_between_steps_acts_as_a_schedule(generator):
    start, terms = make_problem(generator)
    ours, theirs = [p.clone() for p in start], [p.clone() for p in start]
    opt, ref = optim.Adam(ours, lr=0.05), torch.optim.Adam(theirs, lr=0.05, foreach=False)
    for t in range(30):
        opt.lr = ref.param_groups[0]["lr"] = 0.05 / (1 + t / 10)
        grads = loss_grads(terms, ours)
        for p, g in zip(theirs, grads):
            p.grad = g.clone()
        opt.step(grads)
        ref.step()
    for i, (a, b) in enumerate(zip(ours, theirs)):
        assert_same(a, b, f"params[{i}] under a decaying learning rate")


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
        (lambda: optim.SGD(torch.zeros(3), lr=0.1), TypeError, r"SGD: argument 'params' must be a list of tensors, got a single tensor; wrap it: \[p\]"),
        (lambda: optim.Adam(p for p in one_param()), TypeError, r"Adam: argument 'params' must be a list of tensors, got generator"),
        (lambda: optim.Adam([]), ValueError, r"Adam: argument 'params' must hold at least one tensor, got an empty list"),
        (lambda: optim.Adagrad([torch.zeros(3, dtype=torch.int64)]), TypeError, r"Adagrad: argument 'params\[0\]' must have a floating dtype .*int64"),
        (lambda: optim.RMSprop([torch.zeros(3), 1.0]), TypeError, r"RMSprop: argument 'params\[1\]' must be a torch.Tensor, got float"),
        (lambda: optim.AdamW([p := torch.zeros(3), p]), ValueError, r"AdamW: argument 'params' holds the same tensor at indices 0 and 1"),
    ],
)
def test_constructor_errors(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()


BAD_GRADS = [
    (lambda: [torch.zeros(2, 3, dtype=F64)], ValueError, r"argument 'grads' must hold 2 tensors, one per parameter, got 1"),
    (lambda: [torch.zeros(2, 3, dtype=F64), torch.zeros(4, dtype=F64)], ValueError, r"argument 'grads\[1\]' must have shape \(3,\) \(the shape of params\[1\]\), got \(4,\)"),
    (lambda: [torch.zeros(3, 2, dtype=F64), torch.zeros(3, dtype=F64)], ValueError, r"argument 'grads\[0\]' must have shape \(2, 3\) \(the shape of params\[0\]\), got \(3, 2\)"),
    (lambda: [torch.zeros(2, 3, dtype=F64), torch.zeros(3)], TypeError, r"argument 'grads\[1\]' has dtype torch.float32 but 'params\[1\]' has dtype torch.float64"),
    (lambda: [torch.zeros(2, 3, dtype=F64), [0.0, 0.0, 0.0]], TypeError, r"argument 'grads\[1\]' must be a torch.Tensor, got list"),
    (lambda: [torch.zeros(2, 3, dtype=F64), torch.zeros(3, dtype=F64, device="meta")], ValueError, r"argument 'grads\[1\]' is on device meta but 'params\[1\]' is on cpu"),
    (lambda: torch.zeros(2, 3, dtype=F64), TypeError, r"argument 'grads' must be a list or tuple of tensors, one per parameter, got Tensor"),
]


@pytest.mark.parametrize("cls, _torch_cls, options", EVERY_OPTION_ON, ids=[c[0].__name__ for c in EVERY_OPTION_ON])
@pytest.mark.parametrize("grads, error, pattern", BAD_GRADS)
def test_step_rejects_mismatched_grads_before_updating(cls, _torch_cls, options, grads, error, pattern):
    params = [torch.ones(2, 3, dtype=F64), torch.ones(3, dtype=F64)]
    opt = cls(params, **options)
    with pytest.raises(error, match=rf"^{cls.__name__}.step: {pattern}"):
        opt.step(grads())
    assert opt.steps == 0 and all(bool((p == 1).all()) for p in params), "a rejected step changed the parameters"


def zeros_like_all(params):
    return [torch.zeros_like(p) for p in params]


@pytest.mark.parametrize(
    "call, error, pattern",
    [
        (lambda p, g: optim.sgd(p, g, (None, None), lr=0.1, momentum=0.9, dampening=0.0, nesterov=False, weight_decay=0.0), TypeError, r"^sgd: argument 'momentum_buffers' must be a list of tensors, one per parameter, got tuple"),
        (lambda p, g: optim.sgd(p, g, None, lr=-1, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0), ValueError, r"^sgd: argument 'lr' must be >= 0, got -1$"),
        (lambda p, g: optim.sgd(p, g[:1], None, lr=0.1, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0), ValueError, r"^sgd: argument 'grads' must hold 2 tensors"),
        (lambda p, g: optim.adagrad(p, g, zeros_like_all(p), step=0, lr=0.1, lr_decay=0.0, weight_decay=0.0, eps=1e-10), ValueError, r"^adagrad: argument 'step' must be the number of this step, an integer >= 1, got 0"),
        (lambda p, g: optim.rmsprop(p, g, zeros_like_all(p), None, None, lr=0.1, alpha=0.9, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=True), TypeError, r"^rmsprop: argument 'grad_avgs' must be a list of tensors, one per parameter, got NoneType"),
        (lambda p, g: optim.adam(p, g, zeros_like_all(p), zeros_like_all(p), None, step=1, lr=0.1, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, amsgrad=True), TypeError, r"^adam: argument 'max_exp_avg_sqs' must be a list"),
        (lambda p, g: optim.adam(p, g, zeros_like_all(p), zeros_like_all(p), None, step=1, lr=0.1, beta1=1.0, beta2=0.999, eps=1e-8, weight_decay=0.0, amsgrad=False), ValueError, r"^adam: argument 'beta1' must be in \[0, 1\), got 1.0$"),
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
        (lambda: optim.clip_grad_norm(torch.zeros(3), 1.0), TypeError, r"^clip_grad_norm: argument 'grads' must be a list of tensors, got Tensor"),
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
    for _ in range(50):
        grads = handed_grads(terms, ours, options.get("maximize", False))
        for p, g in zip(theirs, grads):
            p.grad = g.clone()
        opt.step(grads)
        ref.step()
    for i, (a, b) in enumerate(zip(ours, theirs)):
        assert a.device.type == "cuda"
        assert_same(a, b, f"params[{i}] on CUDA equal torch.optim.{torch_cls.__name__} on CUDA")
