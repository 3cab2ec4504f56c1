"""Run every notebook of the book once: run time, peak memory and outputs, for the *Execution status* appendix.

    python book/_ext/measure_notebooks.py --out _build/execution_status.json

`make book` runs this before `jupyter-book build`. Each notebook listed in `_toc.yml` is executed top to
bottom in a fresh `python3` kernel with nbclient, one after the other (never in parallel, so that the
timings are those of a notebook that has the machine to itself). The notebook file is not written back:
the book renders the committed outputs, which nbval checks.

- run time: wall-clock seconds from the start of the first cell to the end of the last one (the kernel's
  start-up is recorded separately, not counted);
- peak memory: the kernel's own maximum resident set size, `resource.getrusage(RUSAGE_SELF).ru_maxrss`,
  read by one more cell executed in the same kernel after the notebook's last cell (it is not added to
  the notebook). Child processes the notebook starts, if any, are reported apart (`RUSAGE_CHILDREN`);
- ok: whether every cell ran without error, and if not, the first error;
- mismatches: the code cells whose outputs differ from the committed ones, each with a diff, compared as
  nbval compares them (`committed_outputs.py`: sanitized with tests/nbval_sanitize.cfg, images left out).
  This run uses the machine's own numerics, one notebook at a time; the test suite's nbval pass runs the
  notebooks once more under perturbed numerics (see the Makefile), so every notebook is checked in both.

The budget every notebook is held to (README: "under a minute on two CPU cores and under 1.5 GB of
memory") is defined here and written into the JSON, which `book/_ext/execution_status.py` renders.
The script exits with status 0 when notebooks fail, differ from their committed outputs or run over
budget: the appendix flags them and `tests/test_execution_status.py` fails on them. It exits with status 1
only when it cannot measure.
"""

from __future__ import annotations

import argparse
import copy
import datetime
import importlib.metadata
import json
import os
import platform
import sys
import time
from pathlib import Path

from book_toc import ROOT, toc_notebooks
from committed_outputs import compared, difference, sanitizer

BUDGET_SECONDS = 60.0
BUDGET_BYTES = 1_500_000_000  # 1.5 GB
KERNEL = "python3"

# The probe: one more cell, run in the notebook's kernel after its last cell. ru_maxrss is in
# kilobytes on Linux and in bytes on macOS.
MARKER = "__execution_status__"
PROBE = f"""\
import json as _json, resource as _resource, sys as _sys
_unit = 1 if _sys.platform == "darwin" else 1024
print({MARKER!r}, _json.dumps({{
    "self": _resource.getrusage(_resource.RUSAGE_SELF).ru_maxrss * _unit,
    "children": _resource.getrusage(_resource.RUSAGE_CHILDREN).ru_maxrss * _unit,
}}))
"""


def error_summary(exc: BaseException) -> str:
    from nbclient.exceptions import CellExecutionError

    if isinstance(exc, CellExecutionError):
        return f"{exc.ename}: {exc.evalue}".strip()[:300]
    first = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {first[0] if first else ''}".strip()[:300]


def measure(path: Path, timeout: int) -> dict:
    """Execute one notebook in a fresh kernel; its run time, peak memory and outcome."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        kernel_name=KERNEL,
        timeout=timeout,
        resources={"metadata": {"path": str(path.parent)}},  # the kernel starts in the notebook's folder
    )
    result = {"ok": True, "error": None, "seconds": None, "kernel_start_seconds": None,
              "peak_rss_bytes": None, "children_peak_rss_bytes": None, "mismatches": []}
    committed = copy.deepcopy(nb.cells)  # the cells as committed: execute_cell replaces their outputs
    started = time.perf_counter()
    try:
        with client.setup_kernel():
            ran = time.perf_counter()
            result["kernel_start_seconds"] = round(ran - started, 3)
            try:
                for index, cell in enumerate(nb.cells):
                    client.execute_cell(cell, index)
            except Exception as exc:  # a cell raised, timed out, or the kernel died
                result.update(ok=False, error=error_summary(exc))
            result["seconds"] = round(time.perf_counter() - ran, 3)
            if result["ok"]:
                result["mismatches"] = mismatches(committed, nb.cells)
            probe = nbformat.v4.new_code_cell(PROBE)
            nb.cells.append(probe)
            try:
                client.execute_cell(probe, len(nb.cells) - 1)
                text = "".join(o.get("text", "") for o in probe.outputs if o.get("output_type") == "stream")
                line = next(ln for ln in text.splitlines() if ln.startswith(MARKER))
                usage = json.loads(line[len(MARKER):])
                result["peak_rss_bytes"] = usage["self"]
                result["children_peak_rss_bytes"] = usage["children"]
            except Exception as exc:  # the kernel is gone (e.g. killed for memory): peak unknown
                if result["ok"]:
                    result.update(ok=False, error="peak memory not measured: " + error_summary(exc))
    except Exception as exc:  # the kernel did not start
        result.update(ok=False, error="kernel did not start: " + error_summary(exc))
    return result


def mismatches(committed: list, fresh: list) -> list[dict]:
    """The code cells whose fresh outputs nbval would not accept for the committed ones: their number as
    nbval counts them (code cells only, from 0, as in `ch01_chain_rule.ipynb::Cell 3`) and a diff."""
    sanitize, found = sanitizer(), []
    code = [(before, after) for before, after in zip(committed, fresh) if before.cell_type == "code"]
    for number, (before, after) in enumerate(code):
        if compared(before) and (diff := difference(before.outputs, after.outputs, sanitize)) is not None:
            found.append({"cell": number, "diff": diff})
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "_build" / "execution_status.json",
                        help="where to write the JSON (default: _build/execution_status.json)")
    parser.add_argument("--timeout", type=int, default=600,
                        help="seconds a single cell may run before it counts as failed (default: 600)")
    args = parser.parse_args(argv)

    # As in the Makefile: the kernels inherit it, so hash-ordered output prints as committed.
    os.environ["PYTHONHASHSEED"] = "0"

    docnames = [page.docname for page in toc_notebooks()]
    if not docnames:
        print("measure_notebooks: no notebook in _toc.yml", file=sys.stderr)
        return 1

    notebooks = []
    for docname in docnames:
        path = ROOT / f"{docname}.ipynb"
        entry = {"docname": docname, "notebook": f"{docname}.ipynb", **measure(path, args.timeout)}
        mib = "?" if entry["peak_rss_bytes"] is None else f"{entry['peak_rss_bytes'] / 2**20:.0f} MiB"
        outcome = "" if entry["ok"] else f", FAILED: {entry['error']}"
        if entry["mismatches"]:
            outcome += f", outputs differ in cells {', '.join(str(m['cell']) for m in entry['mismatches'])}"
        print(f"measure_notebooks: {entry['notebook']}: {entry['seconds']} s, {mib}{outcome}", flush=True)
        notebooks.append(entry)

    try:
        torch_version = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        torch_version = None
    report = {
        "generated": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "budget": {"seconds": BUDGET_SECONDS, "peak_rss_bytes": BUDGET_BYTES},
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "torch": torch_version,
        },
        "kernel": KERNEL,
        "notebooks": notebooks,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    partial = args.out.with_name(args.out.name + ".partial")
    partial.write_text(json.dumps(report, indent=2) + "\n")
    partial.replace(args.out)  # never leave a half-written file for the build to read
    total = sum(n["seconds"] or 0 for n in notebooks)
    failed = [n["notebook"] for n in notebooks if not n["ok"]]
    differ = [n["notebook"] for n in notebooks if n["mismatches"]]
    print(f"measure_notebooks: {len(notebooks)} notebooks, {total:.1f} s in all"
          + (f"; FAILED: {', '.join(failed)}" if failed else "")
          + (f"; outputs differ: {', '.join(differ)}" if differ else "") + f" -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
