"""Softmax, dropout, batch norm, layer norm and attention against torch.autograd and torch.nn.functional.

The comparisons themselves are in ``tests/layer_checks.py``, shared with ``tests/test_cuda.py``.
"""

import math

import pytest
import sympy as sp
import torch
import torch.nn.functional as F

from bplib import functional as bf
from bplib.symbolic import lambdify_torch, softmax
from bplib.testing import assert_close

from .layer_checks import (
    assert_batch_norm_matches_torch,
    check_attention,
    check_batch_norm,
    check_dropout,
    check_layer_norm,
    check_softmax,
    draw,
)
from .reference import autograd_grads

F64 = torch.float64
F32 = torch.float32


# ----------------------------------------------------------------------------- softmax


@pytest.mark.parametrize(
    "shape, dim", [((1,), 0), ((6,), -1), ((1, 1), -1), ((4, 5), 0), ((4, 5), 1), ((2, 3, 4), 1), ((2, 1, 3, 5), -2)]
)
@pytest.mark.parametrize("dtype", [F64, F32])
def test_softmax_matches_autograd(shape, dim, dtype, generator):
    check_softmax(shape, dim, generator, dtype=dtype)


def test_softmax_backward_is_the_jacobian_product_sympy_derives():
    z = sp.Matrix(sp.symbols("z_1:4", real=True))
    dp = sp.Matrix(sp.symbols("g_1:4", real=True))
    vjp = softmax(z).jacobian(z).T * dp  # (3, 1): J^T dp, the Jacobian formed symbolically
    values = torch.tensor([0.3, -1.2, 2.0, 0.7, -0.4, 1.5], dtype=F64)
    p, cache = bf.softmax_forward(values[:3].reshape(1, 3))
    dz = bf.softmax_backward(values[3:].reshape(1, 3), cache)
    assert_close(dz[0], lambdify_torch([*z, *dp], vjp.T)(values)[0], claim="softmax backward equals SymPy's J^T dp")


def test_softmax_is_stable_at_large_logits():
    z = torch.tensor([[1e4, 1e4 - 1, -1e4]], dtype=F32)
    p, cache = bf.softmax_forward(z)
    dz = bf.softmax_backward(torch.tensor([[1.0, 0.0, 0.0]], dtype=F32), cache)
    p0 = 1 / (1 + math.exp(-1))
    assert_close(p, torch.tensor([[p0, 1 - p0, 0.0]]), claim="softmax of huge logits in float32")
    assert_close(dz, torch.tensor([[p0 * (1 - p0), -p0 * (1 - p0), 0.0]]), claim="its backward: p0 (e0 - p)")


# ----------------------------------------------------------------------------- dropout


@pytest.mark.parametrize("shape", [(1,), (1, 1), (4, 5), (2, 3, 4)])
@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
@pytest.mark.parametrize("dtype", [F64, F32])
def test_dropout_mask_is_reproducible_and_backward_matches_autograd(shape, p, dtype, generator):
    check_dropout(shape, p, 7, generator, dtype=dtype)


def test_dropout_mask_does_not_depend_on_the_dtype(generator):
    (x,) = draw(generator, "cpu", F64, (6, 7))
    out64, _ = bf.dropout_forward(x, 0.4, generator=torch.Generator().manual_seed(5))
    out32, _ = bf.dropout_forward(x.float(), 0.4, generator=torch.Generator().manual_seed(5))
    assert out64.dtype == F64 and out32.dtype == F32
    assert torch.equal(out64 == 0, out32 == 0)


@pytest.mark.parametrize("p", [0.2, 0.5])
def test_dropout_scales_kept_entries_as_torch_does(p, generator):
    # torch draws from its global generator, so the masks differ; where both keep an entry, the values agree
    (x,) = draw(generator, "cpu", F64, (50, 40))
    out, _ = bf.dropout_forward(x, p, generator=torch.Generator().manual_seed(0))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        ref = F.dropout(x, p, training=True)
    both = (out != 0) & (ref != 0)
    assert both.sum() > 0
    assert_close(out[both], ref[both], claim="kept entries equal F.dropout's: x / (1 - p)")


@pytest.mark.parametrize("train, p", [(False, 0.5), (True, 0.0), (False, 0.0)])
def test_dropout_is_the_identity_without_drawing(train, p, generator):
    x, dout = draw(generator, "cpu", F64, (3, 4), (3, 4))
    gen = torch.Generator().manual_seed(3)
    state = gen.get_state()
    out, cache = bf.dropout_forward(x, p, train=train, generator=gen)
    assert out is x and torch.equal(out, F.dropout(x, p, training=train))
    assert bf.dropout_backward(dout, cache) is dout
    assert torch.equal(gen.get_state(), state), "the identity drew random numbers"
    assert bf.dropout_forward(x, p, train=train)[0] is x, "the identity needs no generator"


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_dropout_preserves_the_expectation(p, generator):
    # out_i = x_i xi_i / (1 - p), xi_i ~ Bernoulli(1 - p): E[out_i] = x_i, Var[out_i] = x_i^2 p / (1 - p).  The mean of
    # K independent draws has standard error |x_i| sqrt(p / ((1 - p) K)); 5 standard errors leave a false alarm for
    # one of the 20 entries a probability below 20 * 6e-7 (normal approximation).  A layer without the 1/(1 - p)
    # scale would be off by p |x_i|, 9 or more standard errors at p >= 0.1.
    K = 20_000
    (x,) = draw(generator, "cpu", F64, (4, 5))
    out, _ = bf.dropout_forward(x.expand(K, 4, 5), p, generator=torch.Generator().manual_seed(11))
    standard_error = x.abs() * math.sqrt(p / ((1 - p) * K))
    assert ((out.mean(dim=0) - x).abs() <= 5 * standard_error).all()
    # the fraction kept estimates 1 - p, with standard error sqrt(p (1 - p) / N) over N = 20 K entries
    kept = (out != 0).double().mean()
    assert abs(kept - (1 - p)) <= 5 * math.sqrt(p * (1 - p) / out.numel())


# ----------------------------------------------------------------------------- batch normalisation


@pytest.mark.parametrize("m, n", [(2, 1), (2, 3), (16, 5), (64, 8)])
@pytest.mark.parametrize("momentum, eps", [(0.1, 1e-5), (0.3, 1e-3), (1.0, 1e-8), (0.0, 1e-5)])
def test_batch_norm_matches_torch_for_five_steps_then_in_eval_mode(m, n, momentum, eps, generator):
    check_batch_norm(m, n, momentum, eps, generator, eval_m=1 if m == 2 else m)


def test_batch_norm_in_float32(generator):
    check_batch_norm(32, 6, 0.1, 1e-5, generator, dtype=F32)


@pytest.mark.parametrize("m, n", [(2, 4), (10, 3)])
def test_batch_norm_without_running_statistics(m, n, generator):
    x, gamma, beta, dout = draw(generator, "cpu", F64, (m, n), (n,), (n,), (m, n))
    out, cache = bf.batch_norm_forward(x, gamma, beta)
    assert_batch_norm_matches_torch(x, gamma, beta, dout, out, cache, train=True, eps=1e-5,
                                    where="(train, no running statistics)")  # fmt: skip


def test_batch_norm_output_is_standardised(generator):
    # with gamma = 1 and beta = 0 every column of the output has mean 0 and biased variance s^2 / (s^2 + eps),
    # s^2 the column's biased variance
    (x,) = draw(generator, "cpu", F64, (20, 4))
    x = 5 * x - 3
    out, _ = bf.batch_norm_forward(x, torch.ones(4, dtype=F64), torch.zeros(4, dtype=F64), eps=0.5)
    var, mean = torch.var_mean(out, dim=0, correction=0)
    s2 = x.var(dim=0, correction=0)
    assert_close(mean, torch.zeros(4, dtype=F64), claim="standardised columns have mean 0")
    assert_close(var, s2 / (s2 + 0.5), claim="standardised columns have variance s^2 / (s^2 + eps)")


# ----------------------------------------------------------------------------- layer normalisation


@pytest.mark.parametrize("shape", [(1,), (6,), (1, 1), (5, 1), (3, 7), (2, 3, 4), (2, 1, 3, 8)])
@pytest.mark.parametrize("eps", [1e-5, 0.1])
def test_layer_norm_matches_autograd(shape, eps, generator):
    check_layer_norm(shape, eps, generator)


def test_layer_norm_in_float32(generator):
    check_layer_norm((4, 6, 32), 1e-5, generator, dtype=F32)


# ----------------------------------------------------------------------------- attention


@pytest.mark.parametrize("lead", [(), (1,), (3,), (2, 4)])
@pytest.mark.parametrize("T_q, T_k", [(1, 1), (4, 4), (3, 6), (6, 3), (1, 5), (5, 1)])
@pytest.mark.parametrize("causal", [False, True])
def test_attention_matches_autograd(lead, T_q, T_k, causal, generator):
    check_attention(lead, T_q, T_k, 4, 3, causal, None, generator)


@pytest.mark.parametrize("scale", [0.37, 2.0, -0.5])
@pytest.mark.parametrize("dtype", [F64, F32])
def test_attention_with_a_given_scale(scale, dtype, generator):
    check_attention((2,), 5, 7, 8, 1, True, scale, generator, dtype=dtype)


@pytest.mark.parametrize("lead", [(), (2,), (1, 2)])
def test_causal_attention_with_a_negative_scale_follows_the_formula(lead, generator):
    # torch 2.13's fused CPU kernel (4-D inputs) returns NaN here, so the reference is the formula itself
    q, k, v, dout = draw(generator, "cpu", F64, (*lead, 4, 3), (*lead, 6, 3), (*lead, 6, 2), (*lead, 4, 2))
    seen = torch.ones(4, 6, dtype=torch.bool).tril()

    def formula(q, k, v):
        return torch.softmax((-0.5 * q @ k.mT).masked_fill(~seen, -math.inf), dim=-1) @ v

    out, cache = bf.attention_forward(q, k, v, causal=True, scale=-0.5)
    _, grads = autograd_grads(lambda q, k, v: (formula(q, k, v) * dout).sum(), q, k, v)
    assert_close(out, formula(q, k, v), claim=f"causal attention with scale -0.5, leading {lead}, equals the formula")
    for name, ours, ref in zip(("dq", "dk", "dv"), bf.attention_backward(dout, cache), grads):
        assert_close(ours, ref, claim=f"its backward {name} equals autograd through the formula")


@pytest.mark.parametrize("T_q, T_k", [(4, 4), (3, 6), (6, 3)])
def test_causal_attention_masks_the_top_left_triangle(T_q, T_k, generator):
    # with v the identity, out = P: query i gives weight exactly 0 to every key j > i, and a positive one to j <= i
    (q, k) = draw(generator, "cpu", F64, (T_q, 5), (T_k, 5))
    P, cache = bf.attention_forward(q, k, torch.eye(T_k, dtype=F64), causal=True)
    seen = torch.ones(T_q, T_k, dtype=torch.bool).tril()
    assert torch.equal(P > 0, seen)
    # keys no query sees (j >= T_q) get no gradient
    dq, dk, dv = bf.attention_backward(torch.ones_like(P), cache)
    assert torch.count_nonzero(dk[T_q:]) == 0 and torch.count_nonzero(dv[T_q:]) == 0
