"""One training step of an MLP: bplib (hand-written backprop + SGD) against torch.autograd + torch.optim.SGD.

Both steps run in the same process on the same data, interleaved, and each is timed as the median over
repeats; the printed ratio is bplib time / torch time (below 1 means bplib is faster).  Before timing,
the first step of each is checked to produce the same loss and gradients.

    python bench/mlp_step.py                 # the CPU configurations
    python bench/mlp_step.py --device cuda   # the GPU configurations
    python bench/mlp_step.py --json out.json # also write the results as JSON

Targets: CPU ratio <= 1.0 at 784-1024-1024-10, batch 256, float32; CUDA ratio <= 0.6 at small and
medium sizes and <= 1.05 at 4096-wide layers.
"""

from __future__ import annotations

import argparse
import json
import statistics
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

import bplib
from timing import time_it  # bench/timing.py, beside this script
from bplib.testing import assert_close

LEARNING_RATE = 0.01


@dataclass(frozen=True)
class Config:
    name: str
    sizes: tuple[int, ...]
    batch: int
    target: float  # the ratio bplib / torch must not exceed


CONFIGS = {
    "cpu": [
        Config("small", (64, 128, 10), 64, 1.0),
        Config("mnist-like", (784, 1024, 1024, 10), 256, 1.0),
    ],
    "cuda": [
        Config("small", (64, 128, 10), 64, 0.6),
        Config("medium", (784, 1024, 1024, 10), 256, 0.6),
        Config("wide", (4096, 4096, 4096, 4096, 10), 4096, 1.05),
    ],
}


def make_pair(config: Config, device: torch.device, dtype: torch.dtype, generator: torch.Generator):
    """A bplib MLP and a torch.nn MLP with identical parameters, and one batch of data."""
    net = bplib.MLP(config.sizes, "relu", "softmax_ce", dtype=dtype, generator=generator)
    layers = []
    for l, (W, b) in enumerate(zip(net.weights, net.biases)):
        linear = torch.nn.Linear(W.shape[1], W.shape[0], dtype=dtype)
        with torch.no_grad():
            linear.weight.copy_(W)
            linear.bias.copy_(b)
        layers.append(linear)
        if l < len(net.weights) - 1:
            layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*layers).to(device)
    net.weights = [W.to(device) for W in net.weights]
    net.biases = [b.to(device) for b in net.biases]
    x = torch.randn(config.batch, config.sizes[0], generator=generator, dtype=dtype).to(device)
    y = torch.randint(0, config.sizes[-1], (config.batch,), generator=generator).to(device)
    return net, model, x, y


def bplib_step(net: bplib.MLP, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    loss, dweights, dbiases = net.loss_and_grads(x, y)
    # p <- p - lr * dp for every parameter in one multi-tensor kernel, as torch.optim.SGD does by default on CUDA
    torch._foreach_add_(net.weights + net.biases, dweights + dbiases, alpha=-LEARNING_RATE)
    return loss


def torch_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    optimizer.zero_grad(set_to_none=True)
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    optimizer.step()
    return loss


def check_same_first_step(net: bplib.MLP, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> None:
    loss, dweights, _ = net.loss_and_grads(x, y)
    model.zero_grad(set_to_none=True)
    ref = F.cross_entropy(model(x), y)
    ref.backward()
    linears = [m for m in model if isinstance(m, torch.nn.Linear)]
    assert_close(loss, ref.detach(), claim="bplib and torch compute the same loss")
    for l, (dW, linear) in enumerate(zip(dweights, linears)):
        assert_close(dW, linear.weight.grad, claim=f"bplib and torch compute the same dW^{l + 1}")


def run(config: Config, device: torch.device, dtype: torch.dtype, repeats: int, iterations: int) -> dict:
    net, model, x, y = make_pair(config, device, dtype, torch.Generator().manual_seed(0))
    check_same_first_step(net, model, x, y)
    optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE)
    ours = lambda: bplib_step(net, x, y)  # noqa: E731
    theirs = lambda: torch_step(model, optimizer, x, y)  # noqa: E731
    for step in (ours, theirs):  # warm-up: allocator, kernels, thread pools
        time_it(step, device, iterations)
    bplib_times, torch_times = [], []
    for _ in range(repeats):  # interleaved, so that drifts in machine load hit both alike
        bplib_times.append(time_it(ours, device, iterations))
        torch_times.append(time_it(theirs, device, iterations))
    bplib_ms, torch_ms = 1e3 * statistics.median(bplib_times), 1e3 * statistics.median(torch_times)
    return {
        **asdict(config),
        "device": device.type,
        "dtype": str(dtype).removeprefix("torch."),
        "bplib_ms": bplib_ms,
        "torch_ms": torch_ms,
        "ratio": bplib_ms / torch_ms,
        "meets_target": bplib_ms / torch_ms <= config.target,
    }


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
    print(f"{'config':<11} {'sizes':<28} {'batch':>5} {'bplib ms':>9} {'torch ms':>9} {'ratio':>6} {'target':>7}")
    results = []
    for config in CONFIGS[args.device]:
        r = run(config, device, dtype, args.repeats, args.iterations)
        results.append(r)
        verdict = "ok" if r["meets_target"] else "MISSED"
        sizes = "-".join(map(str, config.sizes))
        print(f"{config.name:<11} {sizes:<28} {config.batch:>5} {r['bplib_ms']:>9.3f} {r['torch_ms']:>9.3f} "
              f"{r['ratio']:>6.2f} {'<= ' + str(config.target):>7} {verdict}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"torch": torch.__version__, "results": results}, f, indent=2)


if __name__ == "__main__":
    main()
