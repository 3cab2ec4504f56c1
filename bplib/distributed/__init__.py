"""Training on several processes: data parallelism, ring all-reduce, asynchronous staleness, pipelines.

The rooms, each on :mod:`bplib.mlp`, :mod:`bplib.functional`, :mod:`bplib.params` and
:mod:`bplib.optim`, never the other way round:

* :mod:`~bplib.distributed.launch`: a pool of worker processes in one ``torch.distributed`` group
  (gloo on the CPU, NCCL with one GPU per rank), started once and reused;
* :mod:`~bplib.distributed.data_parallel`: shards, the size-weighted all-reduce that makes the
  full-batch gradient, data-parallel SGD with bplib's gradients;
* :mod:`~bplib.distributed.ddp`: the same step by ``DistributedDataParallel`` on the network as a
  ``torch.nn`` module (imported on its own, ``from bplib.distributed.ddp import ddp_sgd``: it brings
  in ``torch._dynamo``, which takes seconds);
* :mod:`~bplib.distributed.ring`: ring all-reduce by ``send``/``recv``, counting what it transfers;
* :mod:`~bplib.distributed.staleness`: gradient descent with delayed gradients, in one process;
* :mod:`~bplib.distributed.schedule` and :mod:`~bplib.distributed.pipeline`: pipeline schedules as
  data (GPipe, one-forward-one-backward), their simulation and bubble, and an MLP cut into stages
  that exchange activations and errors.

Tasks for a :class:`~bplib.distributed.launch.WorkerPool` are module-level functions here, called on every rank at once; a
script started by ``torchrun`` (``scripts/data_parallel.py``) calls the same functions.
"""

from .data_parallel import (
    all_reduce_mean,
    broadcast_parameters,
    data_parallel_loss_and_grads,
    data_parallel_sgd,
    full_batch_sgd,
    local_loss_and_grads,
    shard,
    shard_sizes,
)
from .launch import WorkerPool, backend_for, worker_device
from .pipeline import (
    PipelineStage,
    StageResult,
    even_boundaries,
    micro_batches,
    pipeline_loss_and_grads,
    pipeline_stage_task,
    split_stages,
)
from .ring import RingTraffic, ring_all_reduce, ring_all_reduce_task
from .schedule import (
    Event,
    bubble_fraction,
    gpipe_order,
    one_f_one_b_order,
    peak_in_flight,
    simulate_schedule,
    slot_table,
)
from .staleness import delay_stability_threshold, delayed_gradient_descent

__all__ = [
    "Event",
    "PipelineStage",
    "RingTraffic",
    "StageResult",
    "WorkerPool",
    "all_reduce_mean",
    "backend_for",
    "broadcast_parameters",
    "bubble_fraction",
    "data_parallel_loss_and_grads",
    "data_parallel_sgd",
    "delay_stability_threshold",
    "delayed_gradient_descent",
    "full_batch_sgd",
    "even_boundaries",
    "gpipe_order",
    "local_loss_and_grads",
    "micro_batches",
    "one_f_one_b_order",
    "peak_in_flight",
    "pipeline_loss_and_grads",
    "pipeline_stage_task",
    "ring_all_reduce",
    "ring_all_reduce_task",
    "shard",
    "shard_sizes",
    "simulate_schedule",
    "slot_table",
    "split_stages",
    "worker_device",
]
