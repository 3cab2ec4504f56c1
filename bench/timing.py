"""What the benchmarks share: wall-clock timing, the record of the machine, the targets and the JSON they write.

A GPU runs asynchronously, so the clock is read only after the device has finished the work queued
before and during the iterations.

Every benchmark's ``--json`` file is written by :func:`write_results`: which benchmark, the machine it ran
on (:func:`machine`), its settings, its results and its targets with their verdicts (:func:`target`).
`make bench` writes them into bench/results/, and the book's performance appendix renders them.
"""

from __future__ import annotations

import json
import operator
import os
import platform
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

RELATIONS = {"<=": operator.le, "<": operator.lt, ">=": operator.ge, ">": operator.gt}


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


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else ``platform.processor()``."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def machine(device: torch.device) -> dict:
    """Where and when a benchmark ran: CPU, cores, GPU, torch and its threads, the load, the date (UTC)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu": cpu_model(),
        "cpu_count": cores,  # the cores this process may run on
        "device": device.type,
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,  # 1 minute, at the end
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def target(name: str, what: str, measured: float, relation: str, bound: float, unit: str = "") -> dict:
    """One target and its verdict: ``measured relation bound`` (``relation`` one of <=, <, >=, >)."""
    return {"name": name, "what": what, "measured": measured, "relation": relation, "bound": bound,
            "unit": unit, "met": bool(RELATIONS[relation](measured, bound))}


def write_results(
    path: str, benchmark: str, device: torch.device, settings: dict, results: dict, targets: list[dict]
) -> None:
    """Write one benchmark's results as JSON, with the machine it ran on and its targets' verdicts."""
    report = {"benchmark": benchmark, "machine": machine(device), "settings": settings, "results": results,
              "targets": targets}
    Path(path).write_text(json.dumps(report, indent=2) + "\n")
