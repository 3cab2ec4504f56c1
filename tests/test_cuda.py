"""On a GPU the engine gives what it gives on the CPU; skipped when no GPU is present."""

import pytest
import torch

import bplib
from bplib.testing import assert_close

from .reference import autograd_grads, mlp_loss
from .layer_checks import check_attention, check_batch_norm, check_dropout, check_layer_norm, check_softmax

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
    n = len(gpu.weights)
    ref_value, ref_grads = autograd_grads(lambda *p: mlp_loss(p[:n], p[n:], x.cuda(), y.cuda(), activation, loss), *gpu.weights, *gpu.biases)
    ref_grads = bplib.MLPParams.from_layers(ref_grads[:n], ref_grads[n:])
    for route in (gpu.loss_and_grads, gpu.reference_loss_and_grads):
        value, grads = route(x.cuda(), y.cuda())
        assert value.device.type == "cuda" and all(g.device.type == "cuda" for g in grads)
        assert_close(value, ref_value, claim="loss on CUDA equals autograd on CUDA")
        for name, got, want in zip(grads.names, grads, ref_grads):
            assert_close(got, want, claim=f"d{name} on CUDA equals autograd")
    cpu_value, cpu_grads = cpu.loss_and_grads(x, y)
    # GPU and CPU sum in different orders; float32 reductions of a few thousand terms differ by ~1e-6 relative
    assert_close(value.cpu(), cpu_value, claim="loss on CUDA equals loss on CPU")
    for name, got, want in zip(grads.names, grads, cpu_grads):
        assert_close(got.cpu(), want, claim=f"d{name} on CUDA equals CPU")


@pytest.mark.parametrize("loss", ["softmax_ce", "mse"])
def test_fast_path_makes_the_host_wait_for_nothing(loss):
    # torch raises on every synchronising CUDA operation (.item(), bool(), a blocking copy, ...) in this mode
    g = torch.Generator().manual_seed(5)
    net = bplib.MLP([8, 16, 4], "relu", loss, device="cuda", generator=g)
    x = torch.randn(32, 8, generator=g).cuda()
    y = torch.randint(0, 4, (32,), generator=g).cuda() if loss == "softmax_ce" else torch.randn(32, 4, generator=g).cuda()
    net.loss_and_grads(x, y)  # warm-up: kernels, the caching allocators
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in range(3):  # the second and third calls also read the previous call's verdict
            net.loss_and_grads(x, y)
    finally:
        torch.cuda.set_sync_debug_mode("default")


def test_bad_labels_on_cuda_are_reported_by_the_next_call_without_a_sync():
    net = bplib.MLP([3, 4, 2], device="cuda", generator=torch.Generator().manual_seed(0))
    x = torch.zeros(3, 3, device="cuda")
    net.loss_and_grads(x, torch.tensor([0, 2, 1], device="cuda"))  # out of range: queued, not yet read
    with pytest.raises(ValueError, match=r"MLP.loss_and_grads: argument 'y' holds class indices outside \[0, 1\].*previous call"):
        net.loss_and_grads(x, torch.tensor([0, 1, 1], device="cuda"))
    net.loss_and_grads(x, torch.tensor([0, 1, 1], device="cuda"))  # the error was reported once
    net.loss_and_grads(x, torch.tensor([0, 1, 1], device="cuda"))


def test_device_mismatch_is_reported():
    net = bplib.MLP([3, 2], device="cuda")
    with pytest.raises(ValueError, match=r"MLP.forward: argument 'x' is on device cpu but 'weights' is on cuda:0"):
        net.forward(torch.zeros(1, 3))
    with pytest.raises(ValueError, match=r"softmax_cross_entropy_forward: argument 'y' is on device cpu but 'logits' is on cuda:0"):
        bplib.functional.softmax_cross_entropy_forward(torch.zeros(2, 3, device="cuda"), torch.tensor([0, 1]))


def test_default_device_is_cuda():
    assert bplib.default_device().type == "cuda"


# ----------------------------------------------------------------------------- the layer pairs


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_softmax_on_cuda_matches_autograd(dtype):
    g = torch.Generator().manual_seed(4)
    for shape, dim in [((1,), 0), ((4, 5), 0), ((2, 3, 17), -1)]:
        check_softmax(shape, dim, g, device="cuda", dtype=dtype)


@pytest.mark.parametrize("generator_device", ["cuda", "cpu"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_dropout_on_cuda_matches_autograd(generator_device, dtype):
    g = torch.Generator().manual_seed(5)
    for shape, p in [((1,), 0.5), ((64, 33), 0.1), ((2, 3, 40), 0.9)]:
        check_dropout(shape, p, 13, g, device="cuda", dtype=dtype, generator_device=generator_device)


def test_dropout_with_a_cpu_generator_gives_a_cuda_tensor_the_cpu_mask():
    x = torch.randn(30, 20, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    on_cpu, _ = bplib.functional.dropout_forward(x, 0.3, generator=torch.Generator().manual_seed(8))
    on_cuda, _ = bplib.functional.dropout_forward(x.cuda(), 0.3, generator=torch.Generator().manual_seed(8))
    assert on_cuda.device.type == "cuda"
    assert torch.equal(on_cuda.cpu() == 0, on_cpu == 0)
    assert_close(on_cuda.cpu(), on_cpu, claim="dropout on CUDA with a CPU generator equals dropout on the CPU")


# Normalising a group of one or two entries is ill-conditioned: the exact dx is 0 (layer norm, n = 1) or of the
# order of eps / variance (batch norm, m = 2), and the rounding of any float32 route exceeds the float32 tolerance
# there.  Those sizes are checked in float64 only.


@pytest.mark.parametrize("dtype, m, n", [(torch.float64, 2, 3), (torch.float64, 64, 17), (torch.float32, 64, 17)])
def test_batch_norm_on_cuda_matches_torch_for_five_steps_then_in_eval_mode(dtype, m, n):
    check_batch_norm(m, n, 0.1, 1e-5, torch.Generator().manual_seed(9), device="cuda", dtype=dtype)


@pytest.mark.parametrize("dtype, shape", [(torch.float64, (1,)), (torch.float64, (5, 1)), (torch.float64, (2, 3, 64)), (torch.float32, (2, 3, 64))])  # fmt: skip
def test_layer_norm_on_cuda_matches_autograd(dtype, shape):
    check_layer_norm(shape, 1e-5, torch.Generator().manual_seed(10), device="cuda", dtype=dtype)


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("T_q, T_k", [(1, 1), (8, 8), (5, 12), (12, 5)])
def test_attention_on_cuda_matches_autograd(causal, T_q, T_k):
    # float64: torch's only CUDA route for it is the math kernel, the formula bplib follows
    check_attention((2, 3), T_q, T_k, 16, 8, causal, None, torch.Generator().manual_seed(12), device="cuda")


def test_layer_pairs_report_a_device_mismatch():
    cpu, gpu = torch.zeros(2, 3), torch.zeros(2, 3, device="cuda")
    f = bplib.functional
    with pytest.raises(ValueError, match=r"batch_norm_forward: argument 'gamma' is on device cpu but 'x' is on cuda:0"):
        f.batch_norm_forward(gpu, torch.ones(3), torch.zeros(3, device="cuda"))
    with pytest.raises(ValueError, match=r"layer_norm_forward: argument 'beta' is on device cpu but 'x' is on cuda:0"):
        f.layer_norm_forward(gpu, torch.ones(3, device="cuda"), torch.zeros(3))
    with pytest.raises(ValueError, match=r"attention_forward: argument 'k' is on device cpu but 'q' is on cuda:0"):
        f.attention_forward(gpu, cpu, gpu)
    with pytest.raises(ValueError, match=r"softmax_backward: argument 'dp' is on device cpu but 'p \(from cache\)' is on cuda:0"):
        f.softmax_backward(cpu, f.softmax_forward(gpu)[1])
    with pytest.raises(ValueError, match=r"dropout_backward: argument 'dout' is on device cpu but 'x \(from cache\)' is on cuda:0"):
        f.dropout_backward(cpu, f.dropout_forward(gpu, 0.5, generator=torch.Generator(device="cuda"))[1])
