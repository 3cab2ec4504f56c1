"""Wall-clock timing shared by the benchmarks: the mean time of a step over a few iterations.

A GPU runs asynchronously, so the clock is read only after the device has finished the work queued
before and during the iterations.
"""

from __future__ import annotations

import time

import torch


def synchronize(device: torch.device) -> None:
    """Wait until the device has finished all queued work (a no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_it(step, device: torch.device, iterations: int) -> float:
    """Mean seconds per call of ``step()`` over ``iterations`` calls."""
    synchronize(device)
    start = time.perf_counter()
    for _ in range(iterations):
        step()
    synchronize(device)
    return (time.perf_counter() - start) / iterations
