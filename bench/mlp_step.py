"""One training step of an MLP: bplib (hand-written backprop + bplib.optim.SGD) against torch.autograd + torch.optim.SGD.

The step a user runs, ``loss, grads = net.loss_and_grads(x, y); opt.step(grads)``, is timed twice: with the
fast path (``MLP.loss_and_grads``, :mod:`bplib.mlp_fast`) and with the reference the chapters teach from
(``MLP.reference_loss_and_grads``).  All three steps run in the same process on the same data,
interleaved, and each is timed as the median over repeats; the printed ratios are bplib time / torch
time (below 1 means bplib is faster).  Before timing, the first step of each route is checked to produce
torch's loss and gradients.

    python bench/mlp_step.py                 # the CPU configurations
    python bench/mlp_step.py --device cuda   # the GPU configurations
    python bench/mlp_step.py --json out.json # also write the results as JSON

Targets, for the fast path: CPU ratio <= 1.0 at 784-1024-1024-10, batch 256, float32; CUDA ratio <= 0.5
at small and medium sizes and <= 1.05 at 4096-wide layers.  The reference has no target: its ratio shows
what the fast path's buffers and fused kernels buy.
"""

from __future__ import annotations

import argparse
import statistics
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

import bplib
from bplib.distributed.ddp import torch_sequential
from bplib.testing import assert_close
from timing import target, time_it, write_results  # bench/timing.py, beside this script

LEARNING_RATE = 0.01


@dataclass(frozen=True)
class Config:
    name: str
    sizes: tuple[int, ...]
    batch: int
    target: float  # the ratio bplib (fast path) / torch must not exceed


CONFIGS = {
    "cpu": [
        Config("small", (64, 128, 10), 64, 1.0),
        Config("mnist-like", (784, 1024, 1024, 10), 256, 1.0),
    ],
    "cuda": [
        Config("small", (64, 128, 10), 64, 0.5),
        Config("medium", (784, 1024, 1024, 10), 256, 0.5),
        Config("wide", (4096, 4096, 4096, 4096, 10), 4096, 1.05),
    ],
}


def make_pair(config: Config, device: torch.device, dtype: torch.dtype, generator: torch.Generator):
    """A bplib MLP and a torch.nn MLP with identical parameters, and one batch of data."""
    net = bplib.MLP(config.sizes, "relu", "softmax_ce", dtype=dtype, generator=generator)
    model = torch_sequential(net).to(device)
    net.weights = [W.to(device) for W in net.weights]
    net.biases = [b.to(device) for b in net.biases]
    x = torch.randn(config.batch, config.sizes[0], generator=generator, dtype=dtype).to(device)
    y = torch.randint(0, config.sizes[-1], (config.batch,), generator=generator).to(device)
    return net, model, x, y


ROUTES = {"fast": "loss_and_grads", "reference": "reference_loss_and_grads"}


def bplib_step(net: bplib.MLP, optimizer: bplib.optim.SGD, route: str, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    loss, grads = getattr(net, ROUTES[route])(x, y)
    optimizer.step(grads)
    return loss


def torch_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    optimizer.zero_grad(set_to_none=True)
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    optimizer.step()
    return loss


def check_same_first_step(net: bplib.MLP, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> None:
    model.zero_grad(set_to_none=True)
    ref = F.cross_entropy(model(x), y)
    ref.backward()
    linears = [m for m in model if isinstance(m, torch.nn.Linear)]
    for route, method in ROUTES.items():
        loss, grads = getattr(net, method)(x, y)
        assert_close(loss, ref.detach(), claim=f"bplib ({route}) and torch compute the same loss")
        for l, (dW, linear) in enumerate(zip(grads.weights, linears)):
            assert_close(dW, linear.weight.grad, claim=f"bplib ({route}) and torch compute the same dW^{l + 1}")


def run(config: Config, device: torch.device, dtype: torch.dtype, repeats: int, iterations: int) -> dict:
    net, model, x, y = make_pair(config, device, dtype, torch.Generator().manual_seed(0))
    check_same_first_step(net, model, x, y)
    torch_optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE)
    bplib_optimizer = bplib.optim.SGD(net.parameters, lr=LEARNING_RATE)
    steps = {route: (lambda route=route: bplib_step(net, bplib_optimizer, route, x, y)) for route in ROUTES}
    steps["torch"] = lambda: torch_step(model, torch_optimizer, x, y)
    for step in steps.values():  # warm-up: allocator, kernels, thread pools
        time_it(step, device, iterations)
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(repeats):  # interleaved, so that drifts in machine load hit all alike
        for name, step in steps.items():
            times[name].append(time_it(step, device, iterations))
    ms = {name: 1e3 * statistics.median(t) for name, t in times.items()}
    return {
        **asdict(config),
        "device": device.type,
        "dtype": str(dtype).removeprefix("torch."),
        "fast_ms": ms["fast"],
        "reference_ms": ms["reference"],
        "torch_ms": ms["torch"],
        "ratio": ms["fast"] / ms["torch"],
        "reference_ratio": ms["reference"] / ms["torch"],
    }


def verdict(config: Config, result: dict) -> dict:
    """The fast path's target for ``config`` and whether ``result`` meets it."""
    sizes = "-".join(map(str, config.sizes))
    return target(config.name, f"fast path / torch, {config.name} ({sizes}, batch {config.batch})",
                  result["ratio"], "<=", config.target)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=sorted(CONFIGS), default="cpu")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--repeats", type=int, default=21)
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA GPU is present")
    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, device {device}, {args.dtype}")
    print(f"{'config':<11} {'sizes':<28} {'batch':>5} {'fast ms':>8} {'ref. ms':>8} {'torch ms':>9} "
          f"{'fast/torch':>10} {'target':>7} {'':6} {'ref./torch':>10}")
    results, targets = [], []
    for config in CONFIGS[args.device]:
        r = run(config, device, dtype, args.repeats, args.iterations)
        results.append(r)
        targets.append(verdict(config, r))
        met = "ok" if targets[-1]["met"] else "MISSED"
        sizes = "-".join(map(str, config.sizes))
        print(f"{config.name:<11} {sizes:<28} {config.batch:>5} {r['fast_ms']:>8.3f} {r['reference_ms']:>8.3f} "
              f"{r['torch_ms']:>9.3f} {r['ratio']:>10.2f} {'<= ' + str(config.target):>7} {met:6} "
              f"{r['reference_ratio']:>10.2f}")
    if args.json:
        settings = {"dtype": args.dtype, "repeats": args.repeats, "iterations": args.iterations}
        write_results(args.json, "mlp_step", device, settings, {"configs": results}, targets)


if __name__ == "__main__":
    main()
