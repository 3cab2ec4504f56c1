"""On a GPU the engine gives what it gives on the CPU; skipped when no GPU is present."""

import pytest
import torch

import bplib
from bplib.testing import assert_close

from .reference import autograd_grads, mlp_loss

pytestmark = pytest.mark.cuda


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("activation, loss", [("relu", "softmax_ce"), ("tanh", "mse"), ("sigmoid", "softmax_ce")])
def test_mlp_on_cuda_matches_autograd_and_cpu(dtype, activation, loss):
    g = torch.Generator().manual_seed(3)
    cpu = bplib.MLP([20, 32, 16, 5], activation, loss, dtype=dtype, generator=g)
    gpu = bplib.MLP([20, 32, 16, 5], activation, loss, dtype=dtype, device="cuda")
    for p_gpu, p_cpu in zip(gpu.parameters, cpu.parameters):
        p_gpu.copy_(p_cpu)
    x = torch.randn(64, 20, generator=g, dtype=dtype)
    y = torch.randint(0, 5, (64,), generator=g) if loss == "softmax_ce" else torch.randn(64, 5, generator=g, dtype=dtype)
    value, dweights, dbiases = gpu.loss_and_grads(x.cuda(), y.cuda())
    assert value.device.type == "cuda" and all(d.device.type == "cuda" for d in dweights + dbiases)
    n = len(gpu.weights)
    ref_value, ref_grads = autograd_grads(lambda *p: mlp_loss(p[:n], p[n:], x.cuda(), y.cuda(), activation, loss), *gpu.parameters[::2], *gpu.parameters[1::2])
    assert_close(value, ref_value, claim="loss on CUDA equals autograd on CUDA")
    for l in range(n):
        assert_close(dweights[l], ref_grads[l], claim=f"dW^{l + 1} on CUDA equals autograd")
        assert_close(dbiases[l], ref_grads[n + l], claim=f"db^{l + 1} on CUDA equals autograd")
    cpu_value, cpu_dweights, _ = cpu.loss_and_grads(x, y)
    # GPU and CPU sum in different orders; float32 reductions of a few thousand terms differ by ~1e-6 relative
    assert_close(value.cpu(), cpu_value, claim="loss on CUDA equals loss on CPU")
    for l in range(n):
        assert_close(dweights[l].cpu(), cpu_dweights[l], claim=f"dW^{l + 1} on CUDA equals CPU")


def test_device_mismatch_is_reported():
    net = bplib.MLP([3, 2], device="cuda")
    with pytest.raises(ValueError, match=r"MLP.forward: argument 'x' is on device cpu but 'weights' is on cuda:0"):
        net.forward(torch.zeros(1, 3))
    with pytest.raises(ValueError, match=r"softmax_cross_entropy_forward: argument 'y' is on device cpu but 'logits' is on cuda:0"):
        bplib.functional.softmax_cross_entropy_forward(torch.zeros(2, 3, device="cuda"), torch.tensor([0, 1]))


def test_default_device_is_cuda():
    assert bplib.default_device().type == "cuda"
