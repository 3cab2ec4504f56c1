"""The neural tangent kernel: bplib's layer-by-layer empirical NTK against torch.func's Jacobian contraction,
and the analytic kernels at N = 4096.

Empirical NTK of a 32-512-512-512-1 ReLU network (NTK parameterisation) on N inputs, two routes:

* ``bplib.ntk.empirical_ntk``: one forward pass, the backward recursion for the per-sample errors, and per
  layer :math:`(\\Delta \\Delta^\\top) \\odot (c^2 A A^\\top + c_b^2)`: memory :math:`O(N^2 + N \\cdot \\text{width})`;
* torch.func: the per-sample Jacobian ``vmap(jacrev(f))`` over the flattened parameters, an N x P matrix
  (P = 542,721), then :math:`J J^\\top`.

Before timing, the two are checked equal (float64, N = 64).  Times: both routes in the same process,
interleaved, median over repeats; the ratio printed is torch.func time / bplib time (above 1: bplib faster).
Peak memory: each route runs once in a fresh subprocess, which reports its peak resident set size
(``ru_maxrss``) minus its resident set size just before the call; PyTorch's CPU tensors live in that
process's memory, so this counts every byte the route allocated at its peak (tracemalloc would not see them).

Then ``bplib.ntk.analytic_kernels`` on N = 4096 inputs of dimension 32, depth 3, float64, both kernels,
median over repeats.

    python bench/ntk.py                # float32 network, N = 256 and 1024
    python bench/ntk.py --dtype float64
    python bench/ntk.py --json out.json
    python bench/ntk.py --threads 1      # torch.set_num_threads(1) first (on a busy machine, fewer
                                         # threads can be faster: a parallel region waits for its slowest)

Targets (CPU, 2 cores): the empirical NTK at least 50x faster than torch.func at N = 1024; the analytic
kernels at N = 4096, depth 3, in at most 1.2 s.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
from pathlib import Path

import torch

import bplib
from bplib.ntk import analytic_kernels, empirical_ntk
from bplib.testing import assert_close
from timing import target, time_it, write_results  # bench/timing.py, beside this script

SIZES = (32, 512, 512, 512, 1)
SAMPLES = (256, 1024)
EMPIRICAL_TARGET = 50.0  # torch.func time / bplib time at N = 1024, at least
ANALYTIC = dict(n=4096, d=32, depth=3)
ANALYTIC_TARGET_S = 1.2
CPU = torch.device("cpu")


def make(n: int, dtype: torch.dtype, seed: int = 0) -> tuple[bplib.MLP, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    net = bplib.MLP(SIZES, "relu", "mse", dtype=dtype, generator=generator, parameterization="ntk", sigma_b2=0.1)
    return net, torch.randn(n, SIZES[0], generator=generator, dtype=dtype)


def torch_func_ntk(net: bplib.MLP, x: torch.Tensor) -> torch.Tensor:
    """J J^T with J = vmap(jacrev(f)) the (N, P) per-sample Jacobian in the flattened parameters."""
    theta, unflatten = bplib.flatten(net.parameters)
    jacobian = torch.func.vmap(
        torch.func.jacrev(lambda t, sample: net.forward(sample[None], params=unflatten(t))[0, 0]), in_dims=(None, 0)
    )(theta, x)  # (N, P)
    return jacobian @ jacobian.T


ROUTES = {"bplib": empirical_ntk, "torch.func": torch_func_ntk}


def rss_bytes() -> int:
    """The resident set size of this process now (Linux)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * resource.getpagesize()


def peak_rss_bytes() -> int:
    """The peak resident set size of this process (VmHWM; Linux).

    Not ``getrusage``'s ``ru_maxrss``, which a child inherits from its parent across fork and exec.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024  # kB
    raise RuntimeError("no VmHWM in /proc/self/status")


def probe(route: str, n: int, dtype: torch.dtype) -> int:
    """In this (fresh) process: peak RSS during one call of the route, minus RSS just before it, in bytes."""
    net, x = make(n, dtype)
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak to the current RSS (Linux >= 4.0)
    before = rss_bytes()
    ROUTES[route](net, x)
    return max(0, peak_rss_bytes() - before)


def peak_memory(route: str, n: int, dtype: str) -> int:
    out = subprocess.run(
        [sys.executable, __file__, "--probe", route, str(n), "--dtype", dtype,
         "--threads", str(torch.get_num_threads())],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return int(out.stdout.strip().splitlines()[-1])


def check_routes_agree() -> None:
    net, x = make(64, torch.float64)
    assert_close(empirical_ntk(net, x), torch_func_ntk(net, x), claim="bplib's empirical NTK equals J J^T",
                 against="torch.func")  # fmt: skip


def run_empirical(n: int, dtype: str, repeats: int) -> dict:
    net, x = make(n, getattr(torch, dtype))
    steps = {name: (lambda route=route: route(net, x)) for name, route in ROUTES.items()}
    for step in steps.values():  # warm-up
        time_it(step, CPU, 1)
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(repeats):  # interleaved, so that drifts in machine load hit both alike
        for name, step in steps.items():
            times[name].append(time_it(step, CPU, 1))
    seconds = {name: statistics.median(t) for name, t in times.items()}
    memory = {name: peak_memory(name, n, dtype) for name in ROUTES}
    return {
        "n": n,
        "dtype": dtype,
        "bplib_s": seconds["bplib"],
        "torch_func_s": seconds["torch.func"],
        "speedup": seconds["torch.func"] / seconds["bplib"],
        "bplib_peak_mib": memory["bplib"] / 2**20,
        "torch_func_peak_mib": memory["torch.func"] / 2**20,
        "memory_ratio": memory["torch.func"] / max(memory["bplib"], 1),
    }


def run_analytic(repeats: int) -> dict:
    x = torch.randn(ANALYTIC["n"], ANALYTIC["d"], generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    step = lambda: analytic_kernels(x, depth=ANALYTIC["depth"], sigma_b2=0.1)  # noqa: E731
    time_it(step, CPU, 1)
    seconds = statistics.median(time_it(step, CPU, 1) for _ in range(repeats))
    return {**ANALYTIC, "seconds": seconds}


def verdicts(empirical: list[dict], analytic: dict) -> list[dict]:
    """The two targets and whether the results meet them."""
    largest = empirical[-1]
    return [
        target("empirical", f"empirical NTK, N = {largest['n']}: `torch.func` time / `bplib` time", largest["speedup"],
               ">=", EMPIRICAL_TARGET, "x"),
        target("analytic", f"`analytic_kernels`, N = {analytic['n']}, depth {analytic['depth']}: time",
               analytic["seconds"], "<=", ANALYTIC_TARGET_S, "s"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads(THREADS) before anything runs")
    parser.add_argument("--probe", nargs=2, metavar=("ROUTE", "N"), help=argparse.SUPPRESS)  # the subprocess
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.probe:
        print(probe(args.probe[0], int(args.probe[1]), getattr(torch, args.dtype)))
        return
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads; network {'-'.join(map(str, SIZES))} ReLU, "
          f"{args.dtype}")  # fmt: skip
    check_routes_agree()
    print(f"{'N':>5} {'bplib s':>9} {'torch.func s':>13} {'speed-up':>9} {'bplib MiB':>10} {'torch.func MiB':>15} "
          f"{'memory x':>9}")  # fmt: skip
    results = []
    for n in SAMPLES:
        r = run_empirical(n, args.dtype, args.repeats)
        results.append(r)
        print(f"{n:>5} {r['bplib_s']:>9.3f} {r['torch_func_s']:>13.3f} {r['speedup']:>8.1f}x {r['bplib_peak_mib']:>10.1f} "
              f"{r['torch_func_peak_mib']:>15.1f} {r['memory_ratio']:>8.1f}x")  # fmt: skip
    analytic = run_analytic(args.repeats)
    targets = {t["name"]: t for t in verdicts(results, analytic)}
    verdict = "ok" if targets["empirical"]["met"] else "MISSED"
    print(f"target: speed-up >= {EMPIRICAL_TARGET:g}x at N = {SAMPLES[-1]}: {verdict}")
    print(f"analytic_kernels, N = {analytic['n']}, d = {analytic['d']}, depth {analytic['depth']}, float64: "
          f"{analytic['seconds']:.3f} s (target <= {ANALYTIC_TARGET_S} s: {'ok' if targets['analytic']['met'] else 'MISSED'})")  # fmt: skip
    if args.json:
        settings = {"dtype": args.dtype, "repeats": args.repeats}
        parameters = bplib.flatten(make(1, torch.float32)[0].parameters)[0].numel()
        write_results(args.json, "ntk", CPU, settings, {"sizes": list(SIZES), "P": parameters, "empirical": results,
                                                         "analytic": analytic}, list(targets.values()))  # fmt: skip


if __name__ == "__main__":
    main()
