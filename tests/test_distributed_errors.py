"""Bad input to bplib.distributed gets a TypeError/ValueError naming the function, the argument and what was expected.

Errors raised inside a worker come back from WorkerPool.run as a RuntimeError carrying the worker's message.
"""

import math

import pytest
import torch

import bplib
from bplib.distributed import (
    Event,
    PipelineStage,
    WorkerPool,
    all_reduce_mean,
    backend_for,
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
    ring_all_reduce,
    ring_all_reduce_task,
    shard,
    shard_sizes,
    simulate_schedule,
    slot_table,
    split_stages,
)
from bplib.distributed.ddp import ddp_sgd, torch_sequential

F64 = torch.float64
NET = bplib.MLP([3, 4, 4, 2], "tanh", "softmax_ce", dtype=F64, generator=torch.Generator().manual_seed(0))
NTK = bplib.MLP([3, 4, 2], "tanh", "softmax_ce", dtype=F64, parameterization="ntk", generator=torch.Generator().manual_seed(0))
X, Y = torch.zeros(6, 3, dtype=F64), torch.zeros(6, dtype=torch.int64)


@pytest.mark.parametrize(
    "call, error, pattern",
    [
        (lambda: backend_for(0), ValueError, r"backend_for: argument 'world_size' must be an integer >= 1, got 0"),
        (lambda: backend_for(True), TypeError, r"backend_for: argument 'world_size' must be an integer, got bool True"),
        (lambda: WorkerPool(0), ValueError, r"WorkerPool: argument 'world_size' must be an integer >= 1, got 0"),
        (lambda: WorkerPool(2, backend="mpi"), ValueError, r"WorkerPool: argument 'backend' must be 'gloo' or 'nccl', got 'mpi'"),
        (lambda: WorkerPool(2, timeout_s=0), ValueError, r"WorkerPool: argument 'timeout_s' must be a positive number of seconds, got 0"),
        (lambda: WorkerPool(2, start_method="thread"), ValueError, r"WorkerPool: argument 'start_method' must be one of .* on this platform, got 'thread'"),
        (lambda: shard_sizes(-1, 2), ValueError, r"shard_sizes: argument 'm' must be an integer >= 0, got -1"),
        (lambda: shard_sizes(3, 0), ValueError, r"shard_sizes: argument 'world_size' must be an integer >= 1, got 0"),
        (lambda: shard([1, 2], 0, 2), TypeError, r"shard: argument 'batch' must be a torch.Tensor, got list"),
        (lambda: shard(torch.tensor(1.0), 0, 1), ValueError, r"shard: argument 'batch' must have a first dimension of rows, got a 0-d tensor"),
        (lambda: shard(X, 2, 2), ValueError, r"shard: argument 'rank' must be an integer in \[0, 1\], got 2"),
        (lambda: shard(X, 0, 0), ValueError, r"shard: argument 'world_size' must be an integer >= 1, got 0"),
        (lambda: all_reduce_mean(torch.zeros(2, dtype=F64), NET.parameters, 1), ValueError, r"all_reduce_mean: argument 'loss' must be 0-D"),
        (lambda: all_reduce_mean(torch.zeros((), dtype=F64), NET.parameters, -1), ValueError, r"all_reduce_mean: argument 'count' must be an integer >= 0, got -1"),
        (lambda: data_parallel_loss_and_grads("net", X, Y), TypeError, r"data_parallel_loss_and_grads: argument 'net' must be a bplib.MLP, got str"),
        (lambda: data_parallel_loss_and_grads(NET, X.tolist(), Y), TypeError, r"data_parallel_loss_and_grads: argument 'x' must be a torch.Tensor, got list"),
        (lambda: data_parallel_sgd(NET, X, Y, 0.1, -1), ValueError, r"data_parallel_sgd: argument 'steps' must be an integer >= 0, got -1"),
        (lambda: full_batch_sgd(NET, X, Y, 0.1, 1.5), TypeError, r"full_batch_sgd: argument 'steps' must be an integer, got float 1.5"),
        (lambda: full_batch_sgd(None, X, Y, 0.1, 1), TypeError, r"full_batch_sgd: argument 'net' must be a bplib.MLP, got NoneType"),
        (lambda: torch_sequential("net"), TypeError, r"torch_sequential: argument 'net' must be a bplib.MLP, got str"),
        (lambda: torch_sequential(NTK), ValueError, r"torch_sequential: argument 'net' must use the standard parameterization .* got parameterization='ntk'"),
        (lambda: ddp_sgd(NET, X, Y, 0.1, 1, "yes"), TypeError, r"ddp_sgd: argument 'weight_by_shard' must be a bool, got str"),
        (lambda: ddp_sgd(NET, X, Y, 0.1, -2), ValueError, r"ddp_sgd: argument 'steps' must be an integer >= 0, got -2"),
        (lambda: ring_all_reduce("t"), TypeError, r"ring_all_reduce: argument 'tensor' must be a torch.Tensor, got str"),
        (lambda: ring_all_reduce(torch.zeros(3, 4).T), ValueError, r"ring_all_reduce: argument 'tensor' must be contiguous"),
        (lambda: delay_stability_threshold(-1), ValueError, r"delay_stability_threshold: argument 'delay' must be an integer >= 0, got -1"),
        (lambda: delay_stability_threshold(1.5), TypeError, r"delay_stability_threshold: argument 'delay' must be an integer, got float 1.5"),
    ],
)
def test_errors_in_this_process(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()


def grad(theta, s):
    return theta


@pytest.mark.parametrize(
    "kwargs, error, pattern",
    [
        (dict(grad="g"), TypeError, r"delayed_gradient_descent: argument 'grad' must be callable, got str"),
        (dict(theta0=torch.zeros(2, 2, dtype=F64)), ValueError, r"delayed_gradient_descent: argument 'theta0' must be 1-D"),
        (dict(theta0=torch.zeros(2, dtype=torch.int64)), TypeError, r"delayed_gradient_descent: argument 'theta0' must have a floating dtype"),
        (dict(lr=0.0), ValueError, r"delayed_gradient_descent: argument 'lr' must be a finite number > 0, got 0.0"),
        (dict(lr=math.inf), ValueError, r"delayed_gradient_descent: argument 'lr' must be a finite number > 0, got inf"),
        (dict(lr="0.1"), TypeError, r"delayed_gradient_descent: argument 'lr' must be a Python number, got str"),
        (dict(delay=-1), ValueError, r"delayed_gradient_descent: argument 'delay' must be an integer >= 0, got -1"),
        (dict(steps=2.0), TypeError, r"delayed_gradient_descent: argument 'steps' must be an integer, got float 2.0"),
        (dict(grad=lambda theta, s: theta[:1]), ValueError, r"delayed_gradient_descent: grad\(theta, s\) must return a tensor of shape \(2,\), got \(1,\)"),
        (dict(grad=lambda theta, s: 1.0), TypeError, r"delayed_gradient_descent: argument 'grad\(theta, s\)' must be a torch.Tensor, got float"),
    ],
)
def test_delayed_gradient_descent_errors(kwargs, error, pattern):
    arguments = dict(grad=grad, theta0=torch.zeros(2, dtype=F64), lr=0.1, delay=1, steps=3) | kwargs
    with pytest.raises(error, match=pattern):
        delayed_gradient_descent(arguments.pop("grad"), arguments.pop("theta0"), **arguments)


@pytest.mark.parametrize(
    "call, error, pattern",
    [
        (lambda: gpipe_order(0, 2), ValueError, r"gpipe_order: argument 'stages' must be an integer >= 1, got 0"),
        (lambda: gpipe_order(2, 0), ValueError, r"gpipe_order: argument 'micro_batches' must be an integer >= 1, got 0"),
        (lambda: one_f_one_b_order(2, -1), ValueError, r"one_f_one_b_order: argument 'micro_batches' must be an integer >= 1, got -1"),
        (lambda: simulate_schedule([]), ValueError, r"simulate_schedule: argument 'orders' must be a non-empty list with one order per stage"),
        (lambda: simulate_schedule([[("F", 0), ("B", 0)], [("F", 0), ("F", 0)]]), ValueError, r"simulate_schedule: orders\[1\] must hold \('F', j\) and \('B', j\) once each"),
        (lambda: simulate_schedule([[("F", 0), ("B", 1)]]), ValueError, r"simulate_schedule: orders\[0\] must hold"),
        (lambda: simulate_schedule([[]]), ValueError, r"simulate_schedule: orders\[0\] must hold .* M >= 1"),
        (lambda: simulate_schedule([[1, 2]]), ValueError, r"simulate_schedule: orders\[0\] must hold \('F', j\)"),
        (lambda: pipeline_loss_and_grads(NET, [1], X, Y.double(), 2), ValueError, r"pipeline_loss_and_grads: argument 'y' must have shape \(6, 2\)"),
        (lambda: simulate_schedule(gpipe_order(2, 2), forward_time=0), ValueError, r"simulate_schedule: argument 'forward_time' must be an integer >= 1 \(time slots\), got 0"),
        (lambda: simulate_schedule(gpipe_order(2, 2), backward_time=1.5), ValueError, r"simulate_schedule: argument 'backward_time' must be an integer >= 1"),
        (lambda: slot_table([]), ValueError, r"slot_table: argument 'events' must be a non-empty list of Event"),
        (lambda: slot_table([Event(0, "F", 0, 0, 2), Event(0, "F", 1, 1, 2)]), ValueError, r"slot_table: stage 0 runs two tasks in slot 1"),
        (lambda: peak_in_flight(simulate_schedule(gpipe_order(2, 2)), 2), ValueError, r"peak_in_flight: argument 'stage' must be an integer in \[0, 1\], got 2"),
        (lambda: PipelineStage("net", 0, 1), TypeError, r"PipelineStage: argument 'net' must be a bplib.MLP, got str"),
        (lambda: PipelineStage(NET, 0, 4), ValueError, r"PipelineStage: argument 'last' must be a layer index in \[0, 3\] \(L = 3\), got 4"),
        (lambda: PipelineStage(NET, 2, 2), ValueError, r"PipelineStage: a stage holds layers first \+ 1, ..., last, so 'first' < 'last' is needed, got 2 and 2"),
        (lambda: split_stages(NET, [0]), ValueError, r"split_stages: argument 'boundaries' must lie in \[1, 2\] for a network of L = 3 layers .* got \[0\] with \[0\] outside"),
        (lambda: split_stages(NET, [1, 3]), ValueError, r"split_stages: argument 'boundaries' must lie in \[1, 2\] .* with \[3\] outside"),
        (lambda: split_stages(NET, [2, 1]), ValueError, r"split_stages: argument 'boundaries' must increase strictly, got \[2, 1\]"),
        (lambda: split_stages(NET, "1"), TypeError, r"split_stages: argument 'boundaries' must be a list of layer indices, got '1'"),
        (lambda: split_stages("net", [1]), TypeError, r"split_stages: argument 'net' must be a bplib.MLP, got str"),
        (lambda: even_boundaries(6, 4), ValueError, r"even_boundaries: argument 'stages' must divide layers = 6 \(equal stages\), got 4"),
        (lambda: even_boundaries(0, 1), ValueError, r"even_boundaries: argument 'layers' must be an integer >= 1, got 0"),
        (lambda: micro_batches(X, 0), ValueError, r"micro_batches: argument 'count' must be an integer >= 1 \(micro-batches\), got 0"),
        (lambda: micro_batches(X, 4), ValueError, r"micro_batches: argument 'count' must divide the batch's 6 rows into equal micro-batches, got 4"),
        (lambda: micro_batches("x", 2), TypeError, r"micro_batches: argument 'batch' must be a torch.Tensor, got str"),
        (lambda: pipeline_loss_and_grads(NET, [1], X, Y, 2, schedule="zero-bubble"), ValueError, r"pipeline_loss_and_grads: argument 'schedule' must be one of 'gpipe', '1f1b', got 'zero-bubble'"),
        (lambda: pipeline_loss_and_grads(NET, [1], X, Y[:4], 2), ValueError, r"pipeline_loss_and_grads: arguments 'x' and 'y' must have the same number of rows, got 6 and 4"),
        (lambda: pipeline_loss_and_grads(NET, [1], X, Y, 0), ValueError, r"micro_batches: argument 'count' must be an integer >= 1 \(micro-batches\), got 0"),
        (lambda: pipeline_loss_and_grads(NET, [5], X, Y, 2), ValueError, r"split_stages: argument 'boundaries' must lie in \[1, 2\]"),
        (lambda: pipeline_loss_and_grads(NET, [1], X[:, :2], Y, 2), ValueError, r"pipeline_loss_and_grads: argument 'x' must have shape \(any, 3\) \(batch size, n_0 = 3 inputs\), got \(6, 2\)"),
        (lambda: pipeline_loss_and_grads(NET, [1], X[0], Y, 2), ValueError, r"pipeline_loss_and_grads: argument 'x' must be 2-D"),
    ],
)
def test_schedule_and_pipeline_errors(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()


@pytest.fixture(scope="module")
def pool():
    with WorkerPool(3) as workers:
        yield workers


@pytest.mark.parametrize(
    "task, args, pattern",
    [
        (all_reduce_mean, (torch.zeros((), dtype=F64), NET.parameters, 0), r"ValueError: all_reduce_mean: every rank passed count=0; the batch has no rows"),
        (ddp_sgd, (NET, X[:2], Y[:2], 0.1, 1), r"ValueError: ddp_sgd: argument 'x' must have at least one row per rank \(3\), got 2"),
        (ring_all_reduce_task, ([torch.zeros(2)] * 2,), r"ValueError: ring_all_reduce_task: argument 'vectors' must hold one tensor per rank \(3\)"),
        (pipeline_stage_task, (NET, [1], X, Y, 2), r"ValueError: pipeline_stage_task: the process group must have one rank per stage \(2\), got 3"),
        (pipeline_stage_task, (NET, [1, 2], X, Y, 2, "zero-bubble"), r"ValueError: pipeline_stage_task: argument 'schedule' must be one of 'gpipe', '1f1b', got 'zero-bubble'"),
    ],
)
def test_errors_inside_workers_come_back_with_their_message(pool, task, args, pattern):
    with pytest.raises(RuntimeError, match=r"rank 0 of 3 failed:[\s\S]*" + pattern):
        pool.run(task, *args)


@pytest.mark.parametrize(
    "task, args, pattern",
    [
        (data_parallel_loss_and_grads, (NET, X, torch.tensor([0, 1, 0, 1, 0, 7])),
         r"ValueError: data_parallel_loss_and_grads: argument 'y' holds class indices outside \[0, 1\]"),
        (data_parallel_sgd, (NET, X[:2], torch.tensor([0, 7]), 0.1, 1),  # rank 2's shard is empty
         r"ValueError: data_parallel_sgd: argument 'y' holds class indices outside \[0, 1\]"),
        (ddp_sgd, (NET, X, Y.double(), 0.1, 1), r"ValueError: ddp_sgd: argument 'y' must have shape \(6, 2\)"),
        (pipeline_stage_task, (NET, [1, 2], X, torch.tensor([0, 1, 0, 1, 0, 7]), 2),
         r"ValueError: pipeline_stage_task: argument 'y' holds class indices outside \[0, 1\]"),
        (pipeline_stage_task, (NET, [1, 2], X.float(), Y, 2),
         r"TypeError: pipeline_stage_task: argument 'x' has dtype torch.float32 but 'weights' has dtype torch.float64"),
        (ring_all_reduce_task, ([torch.zeros(4), torch.zeros(5), torch.zeros(4)],),
         r"ValueError: ring_all_reduce_task: argument 'vectors' must hold tensors of one shape and dtype, got \(4,\), "
         r"torch.float32 at index 0 and \(5,\), torch.float32 at index 1"),
    ],
)
def test_bad_rows_fail_on_every_rank_at_once(pool, task, args, pattern):
    """Bad targets met by one rank's shard or stage only, or vectors of different sizes, used to fail on that rank
    alone and leave the others in a collective until the timeout, which then masked the error and broke the group."""
    with pytest.raises(RuntimeError, match=r"rank 0 of 3 failed:[\s\S]*" + pattern):
        pool.run(task, *args)
    assert len(pool.run(data_parallel_loss_and_grads, NET, X, Y)) == 3, "the group still works"


def test_run_needs_a_callable(pool):
    with pytest.raises(TypeError, match=r"WorkerPool.run: argument 'fn' must be callable, got str"):
        pool.run("data_parallel_sgd")
