"""bplib.distributed: data-parallel gradients, DDP, the ring all-reduce, delayed gradients and pipelines.

The multi-process tests share one pool of three gloo workers (started once for the module, stopped at
its end); the schedule and staleness tests run in this process.  Every route is checked against one
that does not share its code: full-batch bplib, torch.autograd, torch.optim, torch.distributed.all_reduce,
numpy's polynomial roots, counts from closed forms.
"""

import copy
import math
import os
import re
import shutil
import socket
import subprocess
import sys
from fractions import Fraction

import numpy as np
import pytest
import torch

import bplib
from bplib.distributed import (
    WorkerPool,
    backend_for,
    bubble_fraction,
    data_parallel_loss_and_grads,
    data_parallel_sgd,
    delay_stability_threshold,
    delayed_gradient_descent,
    even_boundaries,
    full_batch_sgd,
    gpipe_order,
    micro_batches,
    one_f_one_b_order,
    peak_in_flight,
    pipeline_loss_and_grads,
    pipeline_stage_task,
    ring_all_reduce_task,
    shard_sizes,
    simulate_schedule,
    slot_table,
    split_stages,
)
from bplib.distributed.ddp import ddp_sgd, torch_sequential
from bplib.testing import assert_close

from .conftest import ROOT
from .reference import autograd_grads, mlp_loss

K = 3  # workers in the pool
F64 = torch.float64


@pytest.fixture(scope="module")
def pool():
    with WorkerPool(K) as workers:
        yield workers


def make_net(sizes, activation="tanh", loss="softmax_ce", seed=0, parameterization="standard"):
    generator = torch.Generator().manual_seed(seed)
    net = bplib.MLP(sizes, activation, loss, dtype=F64, generator=generator, parameterization=parameterization)
    for b in net.biases:  # non-zero biases: no pre-activation exactly at ReLU's kink
        b.normal_(generator=generator)
    return net


def make_batch(net, m, seed=1):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(m, net.sizes[0], generator=generator, dtype=F64)
    if net.loss_name == "softmax_ce":
        return x, torch.randint(net.sizes[-1], (m,), generator=generator)
    return x, torch.randn(m, net.sizes[-1], generator=generator, dtype=F64)


def flat(params):
    return bplib.flatten(params)[0]


# ----------------------------------------------------------------------------- shards and data parallelism


@pytest.mark.parametrize("m, k", [(10, 3), (9, 3), (2, 3), (0, 2), (7, 1), (5, 4)])
def test_shard_sizes_are_those_of_tensor_split(m, k):
    sizes = shard_sizes(m, k)
    assert sizes == [len(part) for part in torch.tensor_split(torch.arange(m), k)]
    assert sum(sizes) == m and max(sizes) - min(sizes) <= 1


@pytest.mark.parametrize("m", [10, 9, 2])
@pytest.mark.parametrize("activation, loss", [("tanh", "softmax_ce"), ("relu", "mse"), ("sigmoid", "softmax_ce")])
def test_all_reduced_gradient_is_the_full_batch_gradient(pool, m, activation, loss):
    """Shards of 4, 3, 3 rows (m = 10), equal shards (9), and an empty shard (m = 2 < k)."""
    net = make_net([4, 6, 5, 3], activation, loss)
    x, y = make_batch(net, m)
    full_loss, full_grads = net.loss_and_grads(x, y)
    auto_loss, auto_grads = autograd_grads(
        lambda *p: mlp_loss(p[0::2], p[1::2], x, y, activation, loss), *net.parameters
    )
    for rank, (dp_loss, dp_grads) in enumerate(pool.run(data_parallel_loss_and_grads, net, x, y)):
        assert dp_grads.names == net.parameters.names
        assert_close(dp_loss, full_loss, claim=f"rank {rank}: all-reduced loss equals the full-batch loss")
        assert_close(flat(dp_grads), flat(full_grads), claim=f"rank {rank}: all-reduced gradient equals full-batch bplib")
        assert_close(flat(dp_grads), flat(auto_grads), claim="... and autograd")
        assert_close(dp_loss, auto_loss, claim="all-reduced loss equals the torch expression")


def test_data_parallel_sgd_follows_full_batch_sgd_and_torch_optim(pool):
    net = make_net([4, 6, 3])
    x, y = make_batch(net, 10)
    theta_full, losses_full = full_batch_sgd(net, x, y, 0.3, 4)
    model = torch_sequential(net)
    optimiser = torch.optim.SGD(model.parameters(), lr=0.3)
    for _ in range(4):
        optimiser.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimiser.step()
    assert_close(theta_full, flat(list(model.parameters())),
                 claim="full-batch bplib SGD equals torch.optim.SGD on the torch module", against="torch.optim")
    for theta, losses in pool.run(data_parallel_sgd, net, x, y, 0.3, 4):
        assert_close(theta, theta_full, claim="data-parallel SGD equals full-batch SGD")
        assert losses == pytest.approx(losses_full, rel=1e-12)
    assert torch.equal(flat(net.parameters), flat(make_net([4, 6, 3]).parameters)), "the parent's net is untouched"


def equal_weight_sgd(net, x, y, lr, steps, k):
    """SGD on the equal-weight mean of the shard gradients, (1/k) sum_r g_r: what unweighted DDP computes."""
    net = copy.deepcopy(net)
    optimiser = bplib.optim.SGD(net.parameters, lr=lr)
    for _ in range(steps):
        shard_grads = [flat(net.loss_and_grads(xr, yr)[1]) for xr, yr in zip(torch.tensor_split(x, k), torch.tensor_split(y, k))]
        _, unflatten = bplib.flatten(net.parameters)
        optimiser.step(unflatten(sum(shard_grads) / k))
    return flat(net.parameters)


def test_ddp_equals_full_batch_only_when_losses_are_weighted_by_shard_size(pool):
    net = make_net([4, 6, 3])
    x, y = make_batch(net, 10)  # shards of 4, 3, 3
    theta_full, _ = full_batch_sgd(net, x, y, 0.3, 3)
    for theta in pool.run(ddp_sgd, net, x, y, 0.3, 3):
        assert_close(theta, theta_full, claim="DDP with losses weighted by k m_r / m equals full-batch SGD", against="torch")
    theta_equal = equal_weight_sgd(net, x, y, 0.3, 3, K)
    for theta in pool.run(ddp_sgd, net, x, y, 0.3, 3, False):
        assert_close(theta, theta_equal, claim="unweighted DDP follows the equal-weight mean of the shard gradients")
        assert (theta - theta_full).abs().max() > 1e-4, "with unequal shards, unweighted DDP is not full-batch SGD"


def test_unweighted_ddp_is_full_batch_sgd_for_equal_shards(pool):
    net = make_net([4, 6, 3])
    x, y = make_batch(net, 9)  # shards of 3, 3, 3
    theta_full, _ = full_batch_sgd(net, x, y, 0.3, 3)
    for theta in pool.run(ddp_sgd, net, x, y, 0.3, 3, False):
        assert_close(theta, theta_full, claim="with equal shards DDP's mean is the full-batch gradient")


# ----------------------------------------------------------------------------- ring all-reduce


def expected_sent(P, k):
    """Values rank r sends: every chunk but c_{r+1} in the reduce-scatter, every chunk but c_{r+2} in the all-gather."""
    c = [P // k + (i < P % k) for i in range(k)]
    return [2 * P - c[(r + 1) % k] - c[(r + 2) % k] for r in range(k)]


@pytest.mark.parametrize("P", [12, 10, 2, 1])
def test_ring_all_reduce_sums_exactly_and_counts_its_traffic(pool, P):
    generator = torch.Generator().manual_seed(P)
    vectors = [torch.randint(-1000, 1000, (P,), generator=generator) for _ in range(K)]
    results = pool.run(ring_all_reduce_task, vectors)
    for by_ring, by_torch, _ in results:
        assert torch.equal(by_ring, by_torch) and torch.equal(by_ring, sum(vectors))
    assert [traffic.sent for *_, traffic in results] == expected_sent(P, K)
    assert sum(traffic.sent for *_, traffic in results) == sum(traffic.received for *_, traffic in results)
    assert sum(traffic.sent for *_, traffic in results) == 2 * (K - 1) * P
    assert all(traffic.steps == 2 * (K - 1) for *_, traffic in results)
    if P % K == 0:
        assert all(traffic.sent == 2 * (K - 1) * P // K for *_, traffic in results)


def test_ring_all_reduce_of_matrices_in_float64(pool):
    generator = torch.Generator().manual_seed(0)
    matrices = [torch.randn(4, 5, generator=generator, dtype=F64) for _ in range(K)]
    for by_ring, by_torch, traffic in pool.run(ring_all_reduce_task, matrices):
        assert by_ring.shape == (4, 5)
        assert_close(by_ring, by_torch, claim="ring all-reduce equals torch.distributed.all_reduce", against="torch")
        assert_close(by_ring, sum(matrices), claim="ring all-reduce is the sum")


def test_ring_all_reduce_of_a_transposed_matrix(pool):
    """The task's working copy is contiguous (the ring's chunks are views of it), whatever the input's strides."""
    generator = torch.Generator().manual_seed(1)
    matrices = [torch.randn(4, 5, generator=generator, dtype=F64).T for _ in range(K)]
    for by_ring, by_torch, traffic in pool.run(ring_all_reduce_task, matrices):
        assert by_ring.shape == (5, 4) and traffic.steps == 2 * (K - 1)
        assert_close(by_ring, sum(matrices), claim="ring all-reduce of transposed matrices is the sum")
        assert_close(by_torch, sum(matrices), claim="torch's all-reduce of them too", against="torch")


# ----------------------------------------------------------------------------- the pool


def test_pool_reports_a_workers_error_and_stays_usable(pool):
    net = make_net([4, 6, 3])
    x, y = make_batch(net, 6)
    with pytest.raises(RuntimeError, match=r"rank 0 of 3 failed:[\s\S]*ValueError: ddp_sgd: argument 'steps'"):
        pool.run(ddp_sgd, net, x, y, 0.1, -1)
    assert len(pool.run(data_parallel_loss_and_grads, net, x, y)) == K


def fail_on_the_last_rank():
    """A task whose last rank raises at once while the others wait for it in an all-reduce."""
    if torch.distributed.get_rank() == torch.distributed.get_world_size() - 1:
        raise ValueError("the last rank's own error")
    torch.distributed.all_reduce(torch.zeros(1))


def test_an_error_on_one_rank_is_reported_beside_the_others_timeouts():
    with WorkerPool(3, timeout_s=2) as broken:
        with pytest.raises(RuntimeError) as raised:
            broken.run(fail_on_the_last_rank)
    message = str(raised.value)
    # ranks 0 and 1 fail in the all-reduce (gloo's message differs from run to run), rank 2 with its own error
    assert message.startswith("WorkerPool.run(fail_on_the_last_rank): rank 0 of 3 failed:"), message
    assert re.search(r"rank 2 of 3 failed:[\s\S]*ValueError: the last rank's own error", message), message


def test_a_closed_pool_leaves_no_process_and_no_port():
    with WorkerPool(2) as small:
        processes, port = small.processes, small._store.port
        assert small.run(backend_for, 2) == ["gloo", "gloo"]
    assert all(not p.is_alive() and p.exitcode == 0 for p in processes)
    with socket.socket() as probe, pytest.raises(ConnectionRefusedError):
        probe.connect(("127.0.0.1", port))
    with pytest.raises(ValueError, match=r"WorkerPool.run: the pool is closed"):
        small.run(backend_for, 2)


def test_a_spawned_pool_gives_what_the_default_one_gives():
    """Spawned workers start fresh interpreters (the portable start method); the tasks are the same."""
    net = make_net([4, 6, 3])
    x, y = make_batch(net, 7)
    with WorkerPool(2, start_method="spawn", timeout_s=240) as spawned:
        assert spawned.start_method == "spawn"
        (loss_0, grads_0), (loss_1, grads_1) = spawned.run(data_parallel_loss_and_grads, net, x, y)
    full_loss, full_grads = net.loss_and_grads(x, y)
    for loss, grads in ((loss_0, grads_0), (loss_1, grads_1)):
        assert_close(loss, full_loss, claim="spawned workers: the all-reduced loss is the batch loss")
        assert_close(flat(grads), flat(full_grads), claim="spawned workers: the full-batch gradient")
    assert all(not p.is_alive() for p in spawned.processes)


@pytest.mark.cuda
def test_nccl_workers_on_gpus_train_to_the_full_batch_parameters():
    """One rank per GPU under NCCL (spawned: CUDA cannot be forked); results come back on the CPU."""
    world_size = min(torch.cuda.device_count(), 2)
    net = make_net([4, 6, 3])
    x, y = make_batch(net, 7)
    theta_full, _ = full_batch_sgd(net, x, y, 0.3, 3)
    with WorkerPool(world_size, backend="nccl", timeout_s=240) as gpus:
        assert gpus.start_method == "spawn"
        for theta, _ in gpus.run(data_parallel_sgd, net, x, y, 0.3, 3):
            assert theta.device.type == "cpu"
            assert_close(theta, theta_full, claim="NCCL data-parallel SGD equals full-batch SGD on the CPU")
        for theta in gpus.run(ddp_sgd, net, x, y, 0.3, 3):
            assert_close(theta, theta_full, claim="DDP under NCCL equals full-batch SGD on the CPU")


def test_backend_is_gloo_without_a_gpu_per_rank():
    assert backend_for(2) == ("nccl" if torch.cuda.device_count() >= 2 else "gloo")


# ----------------------------------------------------------------------------- delayed gradients


@pytest.mark.parametrize("tau", range(8))
def test_the_delay_threshold_is_where_a_root_reaches_the_unit_circle(tau):
    """Roots of z^{tau+1} - z^tau + a, the characteristic polynomial of e_{t+1} = e_t - a e_{t-tau}."""
    a_star = delay_stability_threshold(tau)

    def spectral_radius(a):
        coefficients = [1.0, -1.0] + [0.0] * (tau - 1) + [a] if tau > 0 else [1.0, a - 1.0]
        return max(abs(np.roots(coefficients)))

    assert spectral_radius(a_star) == pytest.approx(1.0, abs=1e-9)
    assert spectral_radius(0.99 * a_star) < 1 < spectral_radius(1.01 * a_star)
    assert all(spectral_radius(a) < 1 for a in np.linspace(0.01, 0.99, 25) * a_star)


def test_delay_threshold_values():
    assert delay_stability_threshold(0) == pytest.approx(2.0, rel=1e-15)
    assert delay_stability_threshold(1) == pytest.approx(1.0, rel=1e-15)
    assert delay_stability_threshold(50) * 101 / math.pi == pytest.approx(1.0, rel=1e-4)


def test_delayed_gradient_descent_is_the_recurrence():
    h = torch.tensor([1.0, 0.25], dtype=F64)  # a diagonal quadratic, gradient h * theta
    calls = []

    def grad(theta, s):
        calls.append(s)
        return h * theta

    thetas = delayed_gradient_descent(grad, torch.tensor([1.0, -2.0], dtype=F64), lr=0.3, delay=2, steps=6)
    expected = [torch.tensor([1.0, -2.0], dtype=F64)]
    for t in range(6):
        expected.append(expected[t] - 0.3 * h * expected[max(t - 2, 0)])
    assert_close(thetas, torch.stack(expected), claim="delayed GD is theta_{t+1} = theta_t - lr g(theta_{t-tau})")
    assert calls == [0, 0, 0, 1, 2, 3]
    plain = delayed_gradient_descent(grad, expected[0], lr=0.3, delay=0, steps=3)
    assert_close(plain[-1], expected[0] * (1 - 0.3 * h) ** 3, claim="delay 0 is gradient descent")


@pytest.mark.parametrize("tau", [1, 3, 6])
def test_delayed_descent_converges_below_the_threshold_and_diverges_above(tau):
    L = 4.0
    lr_star = delay_stability_threshold(tau) / L
    final = {}
    for factor in (0.9, 1.1):
        thetas = delayed_gradient_descent(lambda th, s: L * th, torch.ones(1, dtype=F64), lr=factor * lr_star, delay=tau, steps=3000)
        final[factor] = thetas[-1].abs().item()
    assert final[0.9] < 1e-6 and final[1.1] > 1e6


# ----------------------------------------------------------------------------- schedules


@pytest.mark.parametrize("p", range(1, 6))
@pytest.mark.parametrize("M", range(1, 7))
@pytest.mark.parametrize("times", [(1, 1), (1, 2), (2, 3)])
def test_gpipe_bubble_is_p_minus_1_over_M_plus_p_minus_1(p, M, times):
    forward_time, backward_time = times
    for order in (gpipe_order(p, M), one_f_one_b_order(p, M)):
        events = simulate_schedule(order, forward_time=forward_time, backward_time=backward_time)
        assert bubble_fraction(events) == Fraction(p - 1, M + p - 1)
        assert max(e.end for e in events) == (M + p - 1) * (forward_time + backward_time)
        assert len(events) == 2 * p * M


@pytest.mark.parametrize("p, M", [(3, 4), (4, 8), (4, 2), (1, 3)])
def test_in_flight_activations(p, M):
    gpipe = simulate_schedule(gpipe_order(p, M))
    one_f_one_b = simulate_schedule(one_f_one_b_order(p, M))
    for s in range(p):
        assert peak_in_flight(gpipe, s) == M
        assert peak_in_flight(one_f_one_b, s) == min(p - s, M)


def test_slot_table_shows_the_gpipe_staircase():
    table = slot_table(simulate_schedule(gpipe_order(2, 2)))
    assert table == [
        [("F", 0), ("F", 1), None, None, ("B", 1), ("B", 0)],
        [None, ("F", 0), ("F", 1), ("B", 1), ("B", 0), None],
    ]


def test_an_order_that_waits_on_itself_is_refused():
    order = gpipe_order(2, 2)
    order[0] = [("F", 0), ("B", 0), ("F", 1), ("B", 1)]
    order[1] = [("F", 1), ("F", 0), ("B", 0), ("B", 1)]  # waits for F1 from stage 0, which waits for B0
    with pytest.raises(ValueError, match=r"simulate_schedule: the orders wait on each other forever"):
        simulate_schedule(order)


# ----------------------------------------------------------------------------- pipelines


CASES = [("relu", "softmax_ce", "standard"), ("sigmoid", "mse", "standard"), ("tanh", "softmax_ce", "ntk")]


@pytest.mark.parametrize("activation, loss, parameterization", CASES)
@pytest.mark.parametrize("boundaries", [[1], [2], [1, 3], [1, 2, 3]])
@pytest.mark.parametrize("schedule", ["gpipe", "1f1b"])
@pytest.mark.parametrize("count", [1, 3, 6])
def test_pipeline_gradients_equal_the_unsplit_network(activation, loss, parameterization, boundaries, schedule, count):
    net = make_net([4, 5, 6, 5, 3], activation, loss, parameterization=parameterization)
    x, y = make_batch(net, 6)
    full_loss, full_grads = net.loss_and_grads(x, y)
    pipe_loss, pipe_grads, results = pipeline_loss_and_grads(net, boundaries, x, y, count, schedule=schedule)
    assert pipe_grads.names == full_grads.names
    assert_close(pipe_loss, full_loss, claim="pipelined loss equals the unsplit network's")
    assert_close(flat(pipe_grads), flat(full_grads), claim="pipelined gradients equal the unsplit network's")
    assert len(results) == len(boundaries) + 1


def test_the_message_between_stages_is_the_error_delta():
    net = make_net([4, 5, 6, 3], "tanh", "softmax_ce")
    x, y = make_batch(net, 6)
    _, _, results = pipeline_loss_and_grads(net, [1, 2], x, y, 3)
    # Z^1 and Z^2 by plain torch, differentiated by autograd
    W1, b1, W2, b2, W3, b3 = (p.clone().requires_grad_() for p in net.parameters)
    z1 = x @ W1.T + b1
    z2 = torch.tanh(z1) @ W2.T + b2
    z1.retain_grad(), z2.retain_grad()
    torch.nn.functional.cross_entropy(torch.tanh(z2) @ W3.T + b3, y).backward()
    for stage, z in ((0, z1), (1, z2)):
        received = torch.cat([results[stage].deltas[j] for j in range(3)])
        assert_close(received, z.grad, claim=f"stage {stage} receives Delta = dL/dZ at its cut", against="torch.autograd")


def test_stages_compose_to_the_network():
    net = make_net([4, 5, 6, 3], "relu", "mse")
    x, _ = make_batch(net, 5)
    z = x
    for stage in split_stages(net, [2]):
        z, _ = stage.forward(z)
    assert_close(z, net.forward(x), claim="the stages' forwards compose to the network's forward")
    assert [s.params.names for s in split_stages(net, [2])] == [("W1", "b1", "W2", "b2"), ("W3", "b3")]


def test_even_boundaries():
    assert even_boundaries(6, 3) == [2, 4]
    assert even_boundaries(4, 1) == []


def test_micro_batches_are_equal_views():
    x = torch.arange(12.0).reshape(6, 2)
    parts = micro_batches(x, 3)
    assert [p.shape for p in parts] == [(2, 2)] * 3 and parts[1].data_ptr() == x[2:].data_ptr()


@pytest.mark.parametrize("schedule", ["gpipe", "1f1b"])
def test_stages_in_separate_processes_give_the_unsplit_gradients(pool, schedule):
    net = make_net([4, 5, 6, 5, 3], "tanh", "softmax_ce")
    x, y = make_batch(net, 8)
    full_loss, full_grads = net.loss_and_grads(x, y)
    results = pool.run(pipeline_stage_task, net, [1, 3], x, y, 4, schedule)
    grads = [g for result in results for g in result.grads]
    assert [n for result in results for n in result.grads.names] == list(full_grads.names)
    assert_close(flat(grads), flat(full_grads),
                 claim="stages in three processes give the unsplit network's gradients")
    assert_close(results[-1].loss, full_loss, claim="the last stage's loss is the batch loss")
    assert results[0].loss is None and results[1].loss is None
    order = gpipe_order(3, 4) if schedule == "gpipe" else one_f_one_b_order(3, 4)
    assert [result.log for result in results] == order
    _, _, in_process = pipeline_loss_and_grads(net, [1, 3], x, y, 4, schedule=schedule)
    for s in (0, 1):
        for j in range(4):
            assert_close(results[s].deltas[j], in_process[s].deltas[j], claim="sent errors equal the in-process ones")


# ----------------------------------------------------------------------------- torchrun


@pytest.mark.skipif(shutil.which("torchrun", path=os.path.dirname(sys.executable)) is None, reason="torchrun is not installed")
def test_the_torchrun_script_trains_two_processes_to_the_full_batch_parameters():
    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable))
    completed = subprocess.run(
        [torchrun, "--standalone", "--nproc_per_node=2", str(ROOT / "scripts" / "data_parallel.py"), "--steps", "3"],
        capture_output=True, text=True, timeout=240, cwd=ROOT,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert re.search(r"2 processes \((gloo|nccl)\), shards of \[6, 5\] rows", completed.stdout)
    assert "bplib data-parallel SGD == full-batch SGD == DDP" in completed.stdout
