"""The `benchmark-results` directive: the tables of the *Performance* appendix, from the committed benchmark results.

    ```{benchmark-results} mlp_step
    ```

renders every `bench/results/mlp_step-<device>.json` (the CPU first, then a GPU), which `make bench` writes
(`bench/timing.py`'s `write_results`): for each device, the benchmark's configurations with their times and
ratios, its targets with their verdicts, and a line saying on which machine, with which PyTorch and when the
numbers were measured. Nothing is measured at build time.

A benchmark with no result file gets a sentence saying it has not been measured (not a warning: a fresh
checkout may not have measured it yet). A file that cannot be rendered — not JSON, a field missing, a name
that does not match its contents — and an unknown benchmark emit a warning, an error under `-W`.
`load` and `render` work without Sphinx; the tests use them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from docutils import nodes
from docutils_tables import Row, rich_text, table
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

logger = logging.getLogger(__name__)

DEVICES = ("cpu", "cuda")  # the order of the tables; a file for another device comes after them
DEVICE_TITLES = {"cpu": "On the CPU", "cuda": "On a GPU"}
RELATIONS = {"<=": "≤", "<": "<", ">=": "≥", ">": ">"}
MACHINE = ["cpu", "cpu_count", "device", "gpu", "torch", "threads", "python", "load_average", "date"]
TARGET = ["name", "what", "measured", "relation", "bound", "unit", "met"]
COMMON = ["benchmark", "settings", *(f"machine.{key}" for key in MACHINE), *(f"targets[].{key}" for key in TARGET)]


# Numbers, as the tables print them.

def significant(value: float, digits: int = 3) -> str:
    """``value`` to ``digits`` significant digits, without an exponent: 0.0121, 5.95, 60.8, 5,012."""
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(value))))
    return f"{value:,.{decimals}f}"


SUPERSCRIPTS = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def small(value: float, exact: bool = False) -> str:
    """A relative error to two significant digits, 6.3 × 10⁻⁹, or a tolerance as set (``exact``): 1 × 10⁻⁷."""
    mantissa, exponent = f"{value:.1e}".split("e")
    if exact:
        mantissa = mantissa.removesuffix(".0")
    return f"{mantissa}\u00a0×\u00a010{str(int(exponent)).translate(SUPERSCRIPTS)}"


def quantity(value: float, unit: str) -> str:
    """A measured value or a bound of a target, in its unit: a speed-up (``x``), seconds (``s``) or a number."""
    if unit == "x":
        return f"{significant(value)}×"
    if unit == "s":
        return f"{significant(value)}\u00a0s"
    return small(value) if 0 < abs(value) < 1e-3 else significant(value)


def bound(target: dict) -> str:
    """A target's bound as it was set: ≥ 2×, ≤ 1.2 s, < 1 × 10⁻⁷."""
    if not target["unit"] and 0 < abs(target["bound"]) < 1e-3:
        shown = small(target["bound"], exact=True)
    else:
        shown = f"{target['bound']:g}" + {"x": "×", "s": "\u00a0s"}.get(target["unit"], target["unit"])
    return f"{RELATIONS[target['relation']]}\u00a0{shown}"


def measured(target: dict) -> str:
    """A target's measured value, in its unit; in the notation of its bound when that is a small tolerance."""
    if not target["unit"] and 0 < abs(target["bound"]) < 1e-3:
        return small(target["measured"])
    return quantity(target["measured"], target["unit"])


def sizes(widths: list[int]) -> str:
    return "-".join(map(str, widths))


def row_id(report: dict, row: str) -> str:
    """The HTML id of one row of a benchmark's table: mlp-step-cpu-small, ntk-cpu-empirical-1024."""
    return nodes.make_id(f"{report['benchmark']}-{report['machine']['device']}-{row}")


# One benchmark: the fields its page needs, and its tables.

@dataclass(frozen=True)
class Benchmark:
    script: str  # the script that measures it, from the repository's root
    gpu: bool  # whether it has a `--device cuda` mode
    fields: list[str]  # the fields its tables read ("a.b", "a[].b" for every item of a list), besides COMMON
    tables: Callable[[dict], list[nodes.Node]]  # its results, as tables (and the line that says what was run)


def problem_line(text: str) -> nodes.paragraph:
    """The line above a benchmark's tables that says what was measured (Markdown code and math allowed)."""
    return nodes.paragraph("", "", *rich_text(text), classes=["benchmark-problem"])


def mlp_step_tables(report: dict) -> list[nodes.Node]:
    rows = [Row([[nodes.paragraph("", "", nodes.strong(text=c["name"])),
                  nodes.paragraph(text=f"{sizes(c['sizes'])}, batch {c['batch']}")],
                 significant(c["fast_ms"]), significant(c["reference_ms"]), significant(c["torch_ms"]),
                 significant(c["ratio"]), significant(c["reference_ratio"])], ids=[row_id(report, c["name"])])
            for c in report["results"]["configs"]]
    headers = ["Network, batch", "bplib fast path (ms)", "bplib reference (ms)", "torch (ms)", "fast / torch",
               "reference / torch"]
    return [table(headers, rows, [30, 14, 14, 12, 12, 14], ["benchmark-results", "benchmark-mlp-step"])]


def gradcheck_tables(report: dict) -> list[nodes.Node]:
    r = report["results"]
    checks, seconds, speedup = r["checks"], r["seconds"], r["speedup_vs_loop"]
    problem = problem_line(
        f"The loss of an MLP {sizes(r['sizes'])} ({r['activation']}, softmax cross-entropy, batch {r['batch']}, "
        f"float64) as a function of its P = {r['P']:,} parameters; h = {small(r['h'], exact=True)} for the loop and "
        f"`gradient_check`. The batched central differences equal the loop's to "
        f"{small(checks['max_abs_difference_batched_vs_loop'])} (rounding bound {small(checks['rounding_bound'])})."
    )
    methods = [
        ("loop", "element loop: `loop_numerical_gradient` + `relative_error`", 2 * r["P"], checks["loop_error"]),
        ("gradient_check", "`gradient_check`: the same points, batched", 2 * r["P"], checks["gradient_check_error"]),
        ("directional_check", f"`directional_check`: k = {r['directions']} random directions", 2 * r["directions"],
         checks["directional_error"]["correct"]),
    ]
    rows = [Row([rich_text(label), f"{evaluations:,}", significant(seconds[name]), quantity(speedup[name], "x"),
                 small(error)], ids=[row_id(report, name)])
            for name, label, evaluations, error in methods]
    headers = ["Method", "Evaluations of f", "Median time (s)", "Speed-up over the loop",
               "Relative error against backprop"]
    return [problem, table(headers, rows, [40, 14, 14, 14, 14], ["benchmark-results", "benchmark-gradcheck"])]


def ntk_tables(report: dict) -> list[nodes.Node]:
    r = report["results"]
    dtypes = sorted({e["dtype"] for e in r["empirical"]})
    problem = problem_line(
        f"The empirical NTK of a {sizes(r['sizes'])} ReLU network (NTK parameterisation, {', '.join(dtypes)}, "
        f"P = {r['P']:,} parameters) on $N$ inputs: `bplib.ntk.empirical_ntk` against `torch.func`'s per-sample "
        f"Jacobian $J$ ($N \\times P$) and $J J^\\top$. Peak memory: each route once in a fresh process, its peak resident "
        f"set size above its size before the call."
    )
    rows = [Row([f"{e['n']:,}", significant(e["bplib_s"]), significant(e["torch_func_s"]),
                 quantity(e["speedup"], "x"), f"{e['bplib_peak_mib']:,.0f}", f"{e['torch_func_peak_mib']:,.0f}",
                 quantity(e["memory_ratio"], "x")], ids=[row_id(report, f"empirical-{e['n']}")])
            for e in r["empirical"]]
    headers = ["N", "bplib (s)", "torch.func (s)", "Speed-up", "bplib peak (MiB)", "torch.func peak (MiB)",
               "torch.func / bplib memory"]
    empirical = table(headers, rows, [8, 12, 14, 12, 16, 18, 14], ["benchmark-results", "benchmark-ntk"])
    a = r["analytic"]
    analytic = table(
        ["Analytic kernels", "N", "Input dimension d", "Depth", "Median time (s)"],
        [Row([rich_text("`analytic_kernels`, NNGP and NTK, float64"), f"{a['n']:,}", str(a["d"]), str(a["depth"]),
              significant(a["seconds"])], ids=[row_id(report, "analytic")])],
        [40, 10, 16, 10, 16], ["benchmark-results", "benchmark-ntk-analytic"],
    )
    return [problem, empirical, analytic]


BENCHMARKS = {
    "mlp_step": Benchmark("bench/mlp_step.py", True, [
        f"results.configs[].{key}" for key in
        ("name", "sizes", "batch", "dtype", "fast_ms", "reference_ms", "torch_ms", "ratio", "reference_ratio")
    ], mlp_step_tables),
    "gradcheck": Benchmark("bench/gradcheck.py", True, [
        "results.device", "results.sizes", "results.activation", "results.batch", "results.P", "results.h",
        "results.directions", "results.checks.max_abs_difference_batched_vs_loop", "results.checks.rounding_bound",
        "results.checks.loop_error", "results.checks.gradient_check_error",
        "results.checks.directional_error.correct",
        *(f"results.{group}.{method}" for group in ("seconds", "speedup_vs_loop")
          for method in ("loop", "gradient_check", "directional_check")),
    ], gradcheck_tables),
    "ntk": Benchmark("bench/ntk.py", False, [
        "results.sizes", "results.P",
        *(f"results.empirical[].{key}" for key in ("n", "dtype", "bplib_s", "torch_func_s", "speedup",
                                                   "bplib_peak_mib", "torch_func_peak_mib", "memory_ratio")),
        *(f"results.analytic.{key}" for key in ("n", "d", "depth", "seconds")),
    ], ntk_tables),
}


# Reading the files.

def result_files(directory: Path, benchmark: str) -> dict[str, Path]:
    """The result files of ``benchmark`` in ``directory``, by device, the CPU first."""
    found = {path.stem.removeprefix(f"{benchmark}-"): path for path in directory.glob(f"{benchmark}-*.json")}
    order = [d for d in DEVICES if d in found] + sorted(d for d in found if d not in DEVICES)
    return {device: found[device] for device in order}


def missing_fields(value, path: str) -> list[str]:
    """The parts of ``path`` ("a.b", "a[].b") that ``value`` lacks, as "a.b" or "a[2].b"; empty if it has them."""
    head, _, rest = path.partition(".")
    key, each = head.removesuffix("[]"), head.endswith("[]")
    if not isinstance(value, dict) or key not in value:
        return [key]
    child = value[key]
    if each and not (isinstance(child, list) and child):
        return [f"{key}[]"]
    if not rest:
        return []
    items = enumerate(child) if each else [(None, child)]
    return [f"{key}{'' if i is None else f'[{i}]'}.{m}" for i, item in items for m in missing_fields(item, rest)]


def load(path: Path) -> dict:
    """One result file, checked to have every field its tables need; ValueError says what is wrong."""
    benchmark, _, device = path.stem.rpartition("-")
    if benchmark not in BENCHMARKS:
        raise ValueError(f"{path.name}: no benchmark {benchmark!r} (expected <benchmark>-<device>.json with "
                         f"<benchmark> one of {', '.join(BENCHMARKS)})")
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ValueError(f"{path.name}: not JSON ({exc})") from None
    missing = [m for field in COMMON + BENCHMARKS[benchmark].fields for m in missing_fields(report, field)]
    if missing:
        raise ValueError(f"{path.name}: missing {', '.join(dict.fromkeys(missing))}")
    if (report["benchmark"], report["machine"]["device"]) != (benchmark, device):
        raise ValueError(f"{path.name}: holds benchmark {report['benchmark']!r} on device "
                         f"{report['machine']['device']!r}, not what its name says")
    return report


# Rendering.

def targets_table(report: dict) -> nodes.table:
    rows = [Row([rich_text(t["what"]), bound(t), measured(t), "✓ met" if t["met"] else "✗ missed"],
                classes=[] if t["met"] else ["benchmark-missed"])
            for t in report["targets"]]
    return table(["Target", "Bound", "Measured", "Verdict"], rows, [50, 14, 14, 12],
                 ["benchmark-results", "benchmark-targets"])


def provenance(report: dict) -> nodes.paragraph:
    """On which machine, with which PyTorch and when the numbers were measured, and with which settings."""
    m = report["machine"]
    when = datetime.fromisoformat(m["date"])
    where = [m["cpu"], f"{m['cpu_count']} cores"] + ([m["gpu"]] if m.get("gpu") else [])
    settings = ", ".join(f"{key.replace('_', ' ')} {value}" for key, value in report["settings"].items())
    text = (f"Measured by `make bench` on {when:%Y-%m-%d} at {when:%H:%M} UTC, not when this page was built: "
            f"{', '.join(where)}; PyTorch {m['torch']} with {m['threads']} threads, Python {m['python']}"
            + (f"; load average {m['load_average']:.1f} over the run's last minute" if m.get("load_average") else "")
            + f". Settings: {settings}.")
    return nodes.paragraph("", "", *rich_text(text), classes=["benchmark-provenance"])


def render(report: dict) -> list[nodes.Node]:
    """One result file: a heading for its device, its tables, its targets and where it was measured."""
    m = report["machine"]
    title = DEVICE_TITLES.get(m["device"], f"On {m['device']}") + (f" ({m['gpu']})" if m.get("gpu") else "")
    return [nodes.rubric(text=title), *BENCHMARKS[report["benchmark"]].tables(report), targets_table(report),
            provenance(report)]


def not_measured(benchmark: str, device: str, directory: str) -> nodes.paragraph:
    command = "make bench" if device == "cpu" else f"make bench BENCH_DEVICE={device}"
    where = "This benchmark has not been measured yet" if device == "cpu" else "It has not been measured on a GPU"
    text = (f"{where}: `{command}` measures it and writes `{directory}/{benchmark}-{device}.json`; commit that file "
            f"and its table appears here.")
    return nodes.paragraph("", "", *rich_text(text), classes=["benchmark-not-measured"])


class BenchmarkResults(SphinxDirective):
    has_content = False
    required_arguments = 1  # the benchmark: mlp_step, gradcheck, ntk
    optional_arguments = 0

    def run(self) -> list[nodes.Node]:
        benchmark, setting = self.arguments[0], self.config.benchmark_results_dir
        if benchmark not in BENCHMARKS:
            logger.warning(f"benchmark results: no benchmark {benchmark!r}; known: {', '.join(BENCHMARKS)}",
                           location=self.get_location(), type="benchmark_results", subtype="unknown")
            return []
        directory = Path(self.env.srcdir) / setting
        self.env.note_dependency(str(directory))  # a file added or removed
        self.env.note_dependency(__file__)
        files = result_files(directory, benchmark)
        if not files:
            return [not_measured(benchmark, "cpu", setting)]
        result: list[nodes.Node] = []
        for path in files.values():
            self.env.note_dependency(str(path))
            try:
                result += render(load(path))
            except ValueError as exc:
                logger.warning(f"benchmark results: {exc}: rerun `make bench`", location=self.get_location(),
                               type="benchmark_results", subtype="invalid")
        if BENCHMARKS[benchmark].gpu and "cuda" not in files:
            result.append(not_measured(benchmark, "cuda", setting))
        return result


def setup(app):
    app.add_config_value("benchmark_results_dir", "bench/results", "env", [str])
    app.add_directive("benchmark-results", BenchmarkResults)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
