"""Comparisons of the layer pairs (softmax, dropout, batch norm, layer norm, attention) with torch, on any device.

Each ``check_*`` runs one comparison on a given device and dtype: ``tests/test_functional_layers.py`` calls
them on the CPU, ``tests/test_cuda.py`` on a GPU.
"""

import torch
import torch.nn.functional as F

from bplib import functional as bf
from bplib.testing import assert_close

from .reference import autograd_grads

F64 = torch.float64


def draw(generator, device, dtype, *shapes):
    """Standard normal tensors of the given shapes, drawn in float64 on the CPU, then moved to device and dtype."""
    return [torch.randn(*shape, generator=generator, dtype=F64).to(device=device, dtype=dtype) for shape in shapes]


def check_softmax(shape, dim, generator, device="cpu", dtype=F64):
    z, dp = draw(generator, device, dtype, shape, shape)
    z = 3 * z
    p, cache = bf.softmax_forward(z, dim)
    _, (dz_ref,) = autograd_grads(lambda z: (torch.softmax(z, dim) * dp).sum(), z)
    assert_close(p, torch.softmax(z, dim), claim=f"softmax forward along dim {dim} of {shape} equals torch.softmax")
    dz = bf.softmax_backward(dp, cache)
    assert_close(dz, dz_ref, claim=f"softmax backward along dim {dim} of {shape} equals autograd")


def documented_keep(shape, p, seed, generator_device):
    """The mask as dropout's module docstring says it is drawn, from a fresh generator with the same seed."""
    generator = torch.Generator(device=generator_device).manual_seed(seed)
    keep = torch.rand(shape, generator=generator, dtype=torch.float32, device=generator_device) >= p
    return keep, generator


def check_dropout(shape, p, seed, generator, device="cpu", dtype=F64, generator_device="cpu"):
    x, dout = draw(generator, device, dtype, shape, shape)
    ours = torch.Generator(device=generator_device).manual_seed(seed)
    out, cache = bf.dropout_forward(x, p, generator=ours)
    keep, reference = documented_keep(x.shape, p, seed, generator_device)
    keep = keep.to(device)
    assert torch.equal(ours.get_state(), reference.get_state()), "dropout drew other numbers than the documented draw"

    def dropout(x):  # inverted dropout with the reproduced mask, as its definition reads
        return torch.where(keep, x / (1 - p), 0)

    _, (dx_ref,) = autograd_grads(lambda x: (dropout(x) * dout).sum(), x)
    assert_close(out, dropout(x), claim=f"dropout forward (p = {p}) equals x / (1 - p) on the reproduced mask")
    assert_close(bf.dropout_backward(dout, cache), dx_ref, claim=f"dropout backward (p = {p}) equals autograd")


def assert_batch_norm_matches_torch(x, gamma, beta, dout, out, cache, *, train, eps, where, stats=(None, None)):
    """``out`` equals F.batch_norm and ``batch_norm_backward(dout, cache)`` equals autograd through it.

    ``stats``: the running statistics torch normalises by in eval mode; none in train mode, where it uses the
    batch's (and would update the buffers it is given).
    """
    running_mean, running_var = stats

    def batch_norm(x, g, b):
        return F.batch_norm(x, running_mean, running_var, g, b, training=train, eps=eps)

    _, grads = autograd_grads(lambda x, g, b: (batch_norm(x, g, b) * dout).sum(), x, gamma, beta)
    assert_close(out, batch_norm(x, gamma, beta), claim=f"batch norm forward {where} equals F.batch_norm")
    for name, ours, ref in zip(("dx", "dgamma", "dbeta"), bf.batch_norm_backward(dout, cache), grads):
        assert_close(ours, ref, claim=f"batch norm backward {name} {where} equals autograd")


def check_batch_norm(m, n, momentum, eps, generator, device="cpu", dtype=F64, steps=5, eval_m=3):
    """``steps`` training steps with running statistics, each against torch, then one eval-mode step."""
    gamma, beta, running_mean, running_var = draw(generator, device, dtype, (n,), (n,), (n,), (n,))
    running_var = running_var.abs() + 0.5
    ref_mean, ref_var = running_mean.clone(), running_var.clone()  # torch's own running buffers
    stats = {"running_mean": running_mean, "running_var": running_var}
    for step in range(steps):
        x, dout = draw(generator, device, dtype, (m, n), (m, n))
        x = 2 * x + 1
        out, cache = bf.batch_norm_forward(x, gamma, beta, **stats, momentum=momentum, eps=eps)
        # torch updates its buffers in place, as bplib does
        ref = F.batch_norm(x, ref_mean, ref_var, gamma, beta, training=True, momentum=momentum, eps=eps)
        assert_close(out, ref, claim=f"batch norm forward (train, m = {m}) equals F.batch_norm with running buffers")
        assert_batch_norm_matches_torch(x, gamma, beta, dout, out, cache, train=True, eps=eps,
                                        where=f"(train, m = {m}, step {step + 1})")  # fmt: skip
        assert_close(running_mean, ref_mean, claim=f"running mean after step {step + 1} equals torch's")
        assert_close(running_var, ref_var, claim=f"running variance after step {step + 1} equals torch's")
    x, dout = draw(generator, device, dtype, (eval_m, n), (eval_m, n))
    out, cache = bf.batch_norm_forward(x, gamma, beta, **stats, train=False, eps=eps)
    assert_batch_norm_matches_torch(x, gamma, beta, dout, out, cache, stats=(ref_mean, ref_var), train=False, eps=eps,
                                    where=f"(eval, m = {eval_m}, torch's running statistics)")  # fmt: skip
    assert_close(running_mean, ref_mean, claim="eval mode leaves the running mean alone")
    assert_close(running_var, ref_var, claim="eval mode leaves the running variance alone")


def check_layer_norm(shape, eps, generator, device="cpu", dtype=F64):
    n = shape[-1]
    x, dout, gamma, beta = draw(generator, device, dtype, shape, shape, (n,), (n,))
    x = 3 * x - 1
    out, cache = bf.layer_norm_forward(x, gamma, beta, eps=eps)
    _, grads = autograd_grads(lambda x, g, b: (F.layer_norm(x, (n,), g, b, eps) * dout).sum(), x, gamma, beta)
    ref = F.layer_norm(x, (n,), gamma, beta, eps)
    assert_close(out, ref, claim=f"layer norm forward on {shape} equals F.layer_norm")
    for name, ours, r in zip(("dx", "dgamma", "dbeta"), bf.layer_norm_backward(dout, cache), grads):
        assert_close(ours, r, claim=f"layer norm backward {name} on {shape} equals autograd")


def check_attention(lead, T_q, T_k, d, d_v, causal, scale, generator, device="cpu", dtype=F64):
    shapes = (*lead, T_q, d), (*lead, T_k, d), (*lead, T_k, d_v), (*lead, T_q, d_v)
    q, k, v, dout = draw(generator, device, dtype, *shapes)
    out, cache = bf.attention_forward(q, k, v, causal=causal, scale=scale)

    def sdpa(q, k, v):
        return F.scaled_dot_product_attention(q, k, v, is_causal=causal, scale=scale)

    _, grads = autograd_grads(lambda q, k, v: (sdpa(q, k, v) * dout).sum(), q, k, v)
    where = f"(leading {lead}, T_q = {T_q}, T_k = {T_k}, causal = {causal}, scale = {scale})"
    assert_close(out, sdpa(q, k, v), claim=f"attention forward {where} equals scaled_dot_product_attention")
    for name, ours, r in zip(("dq", "dk", "dv"), bf.attention_backward(dout, cache), grads):
        assert_close(ours, r, claim=f"attention backward {name} {where} equals autograd")
