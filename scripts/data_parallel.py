"""Data-parallel training of a small bplib network, by bplib's all-reduced gradients and by PyTorch's DDP.

Start it with ``torchrun``, which starts one process per worker and tells each its rank.  On one
machine, two processes (gloo on the CPU, NCCL when every process can have a GPU of its own)::

    torchrun --standalone --nproc_per_node=2 scripts/data_parallel.py

On several machines, run the same command on each, with ``--node_rank`` 0, 1, ... and the address
of a port on the first machine that all of them can reach::

    torchrun --nnodes=2 --nproc_per_node=2 --node_rank=0 \\
        --rdzv-backend=c10d --rdzv-endpoint=HOST:29500 --rdzv-id=bp-ch17 scripts/data_parallel.py

Every rank builds the same network and batch from the seed and keeps its shard of the rows (shards
of unequal size when the batch does not divide).  It trains for ``--steps`` steps of SGD twice: with
bplib's gradients combined by one size-weighted all-reduce (``data_parallel_sgd``), and with the
same network as a ``torch.nn`` module under ``DistributedDataParallel``, each rank's loss weighted by
k m_r / m (``ddp_sgd``).  Both must end at the parameters of full-batch SGD in one process; the script
checks it on every rank and fails otherwise.  Rank 0 prints the report.
"""

from __future__ import annotations

import argparse
import os

import torch
import torch.distributed as dist

import bplib
from bplib.distributed import backend_for, data_parallel_sgd, full_batch_sgd, shard_sizes
from bplib.distributed.ddp import ddp_sgd
from bplib.testing import assert_close


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=11, help="rows in the batch (default 11)")
    parser.add_argument("--steps", type=int, default=5, help="steps of SGD (default 5)")
    parser.add_argument("--lr", type=float, default=0.5, help="learning rate (default 0.5)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the network and the data (default 0)")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    dist.init_process_group(backend_for(int(os.environ.get("LOCAL_WORLD_SIZE", "1"))))
    try:
        rank, k = dist.get_rank(), dist.get_world_size()
        generator = torch.Generator().manual_seed(args.seed)
        net = bplib.MLP([4, 8, 3], "tanh", "softmax_ce", dtype=torch.float64, generator=generator)
        x = torch.randn(args.batch, 4, generator=generator, dtype=torch.float64)
        y = torch.randint(3, (args.batch,), generator=generator)

        theta_dp, losses = data_parallel_sgd(net, x, y, args.lr, args.steps)
        theta_ddp = ddp_sgd(net, x, y, args.lr, args.steps)
        theta_full, _ = full_batch_sgd(net, x, y, args.lr, args.steps)
        assert_close(theta_dp, theta_full, claim="bplib data-parallel SGD equals full-batch SGD", against="second route")
        assert_close(theta_ddp, theta_full, claim="DDP with losses weighted by k m_r/m equals full-batch SGD", against="torch")
        if rank == 0:
            print(f"{k} processes ({dist.get_backend()}), shards of {shard_sizes(args.batch, k)} rows")
            print(f"loss {losses[0]:.4f} -> {losses[-1]:.4f} in {args.steps} steps")
            print("bplib data-parallel SGD == full-batch SGD == DDP (losses weighted by k m_r/m)")
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
