"""Gradient checks of an MLP loss with P ~ 10^4 parameters: the element-by-element loop against the batched and directional checks.

One function f -- the loss of a 32-128-64-10 tanh network with softmax cross-entropy, as a function of
its flat float64 parameter vector (``net.loss(x, y, params=unflatten(theta))``, a pure function that
torch.func.vmap can batch) -- is checked three ways against the gradient bplib's backpropagation computes:

* the textbook loop: ``relative_error(loop_numerical_gradient(f, theta, h), grad)``, 2P calls of f;
* ``gradient_check(f, theta, grad, h)``: the same 2P points, evaluated in vmapped chunks;
* ``directional_check(f, theta, grad)``: 2k evaluations along k = 8 random directions (its own h = 1e-6).

The loop and gradient_check use the same f, the same h and float64.  All three run in the same process,
interleaved, and each is timed as the median over repeats; the printed speed-up is loop time / method
time (above 1 means faster than the loop).  The gradient the first timed loop returns is then checked:
the batched gradient equals it up to the rounding of f, and both pass against backpropagation;
directional_check is run on the correct gradient and on two gradients 1 % off (1.01 g, and g plus noise
of 1 % of its norm).  A check that fails raises.

    python bench/gradcheck.py                 # CPU
    python bench/gradcheck.py --device cuda   # GPU
    python bench/gradcheck.py --json out.json # also write the results as JSON

Targets: gradient_check >= 2x faster than the loop on the CPU, >= 50x on a GPU; directional_check >= 100x
faster than the loop on both, while its error stays below CORRECT_BELOW (1e-7) for the correct gradient
and reaches WRONG_FROM (1e-5) for both 1 %-wrong ones.

Batching removes the loop's per-call cost (Python, argument checks, kernel dispatch), not the arithmetic
of 2P forward passes; the speed-up on a CPU therefore shrinks as each evaluation does more arithmetic
(a larger --batch).  A gradient check needs only a few samples; the default batch is 16.
"""

from __future__ import annotations

import argparse
import statistics

import torch

import bplib
from timing import target, time_it, write_results  # bench/timing.py, beside this script
from bplib.gradcheck import (
    CORRECT_BELOW,
    WRONG_FROM,
    directional_check,
    gradient_check,
    loop_numerical_gradient,
    numerical_gradient,
    relative_error,
)

SIZES = (32, 128, 64, 10)
ACTIVATION = "tanh"  # smooth: no ReLU kinks for a finite difference to straddle
H = 1e-7  # the textbook loop's step, for the loop and gradient_check alike
DIRECTIONS = 8
TARGETS = {"cpu": {"gradient_check": 2.0, "directional_check": 100.0}, "cuda": {"gradient_check": 50.0, "directional_check": 100.0}}


def make_problem(batch: int, device: torch.device, generator: torch.Generator):
    """f(theta), the flat parameters theta (P,) and backprop's gradient (P,), all float64 on ``device``."""
    # drawn on the CPU, so that every device checks the same network at the same point
    net = bplib.MLP(SIZES, ACTIVATION, "softmax_ce", dtype=torch.float64, generator=generator)
    x = torch.randn(batch, SIZES[0], generator=generator, dtype=torch.float64)  # (m, n_0)
    y = torch.randint(0, SIZES[-1], (batch,), generator=generator)  # (m,)
    _, grads = net.loss_and_grads(x, y)
    grad = bplib.flatten(grads)[0].to(device)  # (P,), in the order of net.parameters
    theta, unflatten = bplib.flatten(net.parameters)  # (P,): [vec W^1, b^1, ..., vec W^L, b^L]
    x, y = x.to(device), y.to(device)  # the parameters reach the loss through theta, on its device
    return (lambda theta: net.loss(x, y, params=unflatten(theta))), theta.to(device), grad


def verify(f, theta: torch.Tensor, grad: torch.Tensor, looped: torch.Tensor, draw: int) -> dict:
    """The numbers the timings are about: both routes agree, pass the right gradient and flag the wrong ones."""
    batched = numerical_gradient(f, theta, H)
    # same points, bit for bit; f's reductions may round differently when batched: a few ulps of |f| over 2h
    bound = 8 * torch.finfo(torch.float64).eps * max(1.0, abs(float(f(theta)))) / (2 * H)
    difference = float((batched - looped).abs().max())
    if difference > bound:
        raise AssertionError(f"batched and looped central differences differ by {difference:.2e} > {bound:.2e}")
    # noise from a generator of its own: drawn from the directions' generator, it would be one of the directions
    noise = torch.randn(grad.shape, generator=torch.Generator().manual_seed(draw + 1), dtype=grad.dtype)
    noisy = grad + 0.01 * torch.linalg.vector_norm(grad) * noise.to(grad.device) / torch.linalg.vector_norm(noise)
    directional = {
        name: directional_check(f, theta, g, directions=DIRECTIONS, generator=torch.Generator().manual_seed(draw))
        for name, g in (("correct", grad), ("scaled_1pct", 1.01 * grad), ("noise_1pct", noisy))
    }
    return {
        "max_abs_difference_batched_vs_loop": difference,
        "rounding_bound": bound,
        "loop_error": relative_error(looped, grad),
        "gradient_check_error": relative_error(batched, grad),
        "directional_error": directional,
    }


def run(device: torch.device, batch: int, repeats: int, directional_iterations: int) -> dict:
    f, theta, grad = make_problem(batch, device, torch.Generator().manual_seed(0))
    generator = torch.Generator().manual_seed(1)
    looped: list[torch.Tensor] = []

    def loop() -> float:  # the textbook check: the element loop, then the normalised difference
        looped.append(loop_numerical_gradient(f, theta, H))
        return relative_error(looped[-1], grad)

    methods = {
        "loop": (loop, 1),
        "gradient_check": (lambda: gradient_check(f, theta, grad, H), 1),
        "directional_check": (
            lambda: directional_check(f, theta, grad, directions=DIRECTIONS, generator=generator),
            directional_iterations,
        ),
    }
    for name in ("gradient_check", "directional_check"):  # warm-up: allocator, thread pools, vmap's first call
        methods[name][0]()  # (the loop warms itself up in its first of 2P calls)
    times: dict[str, list[float]] = {name: [] for name in methods}
    for _ in range(repeats):  # interleaved, so that drifts in machine load hit every method alike
        for name, (step, iterations) in methods.items():
            times[name].append(time_it(step, device, iterations))
    checks = verify(f, theta, grad, looped[0], draw=1)
    seconds = {name: statistics.median(t) for name, t in times.items()}
    speedups = {name: seconds["loop"] / s for name, s in seconds.items()}
    return {
        "device": device.type,
        "sizes": list(SIZES),
        "activation": ACTIVATION,
        "batch": batch,
        "P": theta.numel(),
        "h": H,
        "directions": DIRECTIONS,
        "checks": checks,
        "seconds": seconds,
        "all_seconds": times,
        "speedup_vs_loop": speedups,
    }


def verdicts(r: dict) -> list[dict]:
    """The targets and whether ``r`` meets them: the two speed-ups, and directional_check's three errors."""
    speedups = [target(name, f"`{name}`: speed-up over the element loop", r["speedup_vs_loop"][name], ">=", bound, "x")
                for name, bound in TARGETS[r["device"]].items()]
    d = r["checks"]["directional_error"]
    errors = [
        target("directional_correct", "`directional_check` error, correct gradient g", d["correct"], "<", CORRECT_BELOW),
        target("directional_scaled_1pct", "`directional_check` error, 1.01 g", d["scaled_1pct"], ">=", WRONG_FROM),
        target("directional_noise_1pct", "`directional_check` error, g + 1 % noise", d["noise_1pct"], ">=", WRONG_FROM),
    ]
    return speedups + errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--batch", type=int, default=16, help="samples in the loss (default 16)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--directional-iterations", type=int, default=10, help="calls per timing of directional_check")
    parser.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's choice)")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA GPU is present")
    device = torch.device(args.device)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, device {device}, float64")
    r = run(device, args.batch, args.repeats, args.directional_iterations)
    targets = {t["name"]: t for t in verdicts(r)}
    c, d = r["checks"], r["checks"]["directional_error"]
    sizes = "-".join(map(str, SIZES))
    print(f"MLP {sizes} ({ACTIVATION}, softmax cross-entropy), batch {args.batch}: P = {r['P']} parameters, "
          f"{2 * r['P']} evaluations of f per full gradient, h = {H:g}")
    print(f"batched central differences equal the loop's to {c['max_abs_difference_batched_vs_loop']:.1e} "
          f"(rounding bound {c['rounding_bound']:.1e}); relative error vs backprop: "
          f"loop {c['loop_error']:.1e}, gradient_check {c['gradient_check_error']:.1e}")
    flags = "ok" if all(targets[name]["met"] for name in targets if name.startswith("directional_")) else "MISSED"
    print(f"directional_check ({DIRECTIONS} directions, h = 1e-6): correct gradient {d['correct']:.1e} "
          f"(< {CORRECT_BELOW:g}), 1.01 g {d['scaled_1pct']:.1e}, g + 1 % noise {d['noise_1pct']:.1e} "
          f"(>= {WRONG_FROM:g}) {flags}")
    print(f"{'method':<26} {'median s':>9} {'speed-up':>9} {'target':>8}")
    for name, label in (("loop", "element loop + rel. error"), ("gradient_check", "gradient_check (batched)"),
                        ("directional_check", f"directional_check (k={DIRECTIONS})")):
        line = f"{label:<26} {r['seconds'][name]:>9.4f} {r['speedup_vs_loop'][name]:>8.1f}x"
        if name in targets:
            verdict = "ok" if targets[name]["met"] else "MISSED"
            line += f" {'>= ' + format(targets[name]['bound'], 'g') + 'x':>8} {verdict}"
        print(line)
    if args.json:
        settings = {"batch": args.batch, "repeats": args.repeats, "directional_iterations": args.directional_iterations}
        write_results(args.json, "gradcheck", device, settings, r, list(targets.values()))


if __name__ == "__main__":
    main()
