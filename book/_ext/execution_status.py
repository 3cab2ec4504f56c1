"""The `execution-status` directive: the table of the *Execution status* appendix.

It renders `_build/execution_status.json`, which `book/_ext/measure_notebooks.py` writes (`make book` runs
it before building): one row per notebook, linked to its chapter, with its run time, its peak memory and a
flag where it failed, where its outputs differ from the committed ones or where it is over the budget, then
the totals. The page is rebuilt whenever the JSON changes.

If the JSON is missing, or does not cover every notebook of the build, the directive emits a warning
(an error under `-W`) that says how to produce it; it never renders a table it cannot back.
"""

from __future__ import annotations

import json
from pathlib import Path

from docutils import nodes
from docutils_tables import Row, table
from sphinx import addnodes
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

logger = logging.getLogger(__name__)

MEASURE = "python book/_ext/measure_notebooks.py --out {path}"


def _warn(directive: SphinxDirective, message: str, subtype: str) -> None:
    logger.warning(message, location=directive.get_location(), type="execution_status", subtype=subtype)


def _mib(value: int | None) -> str:
    return "not measured" if value is None else f"{value / 2**20:,.0f}\u00a0MiB"


def _seconds(value: float | None) -> str:
    return "not measured" if value is None else f"{value:.1f}\u00a0s"


def _gb(value: int) -> str:
    return f"{value / 1e9:g} GB"


def flags(notebook: dict, budget: dict) -> list[str]:
    """What is wrong with one notebook's run; empty when it ran and kept within the budget."""
    found = []
    if not notebook["ok"]:
        found.append(f"✗ failed: {notebook['error']}")
    if notebook.get("mismatches"):
        cells = ", ".join(str(m["cell"]) for m in notebook["mismatches"])
        found.append(f"✗ outputs differ from the committed ones in cell{'s' if ',' in cells else ''} {cells}")
    if notebook["seconds"] is not None and notebook["seconds"] > budget["seconds"]:
        found.append(f"⚠ over {budget['seconds']:g} s")
    if notebook["peak_rss_bytes"] is not None and notebook["peak_rss_bytes"] > budget["peak_rss_bytes"]:
        found.append(f"⚠ over {_gb(budget['peak_rss_bytes'])}")
    return found


class ExecutionStatus(SphinxDirective):
    has_content = False
    required_arguments = 0
    optional_arguments = 0

    def run(self) -> list[nodes.Node]:
        setting = self.config.execution_status_file
        path = Path(self.env.srcdir) / setting
        # Re-read this page whenever the measurement changes (or appears).
        self.env.note_dependency(str(path))
        if not path.is_file():
            _warn(self, f"execution status: {setting} not found: measure the notebooks first with "
                        f"`{MEASURE.format(path=setting)}` (`make book` does)", "missing")
            return [nodes.paragraph(text="The notebooks have not been measured for this build.")]
        try:
            report = json.loads(path.read_text())
            budget, notebooks = report["budget"], report["notebooks"]
        except (ValueError, KeyError) as exc:
            _warn(self, f"execution status: {setting} is not a measurement ({exc!r}): rerun "
                        f"`{MEASURE.format(path=setting)}`", "invalid")
            return []

        # Every notebook this build renders must have been measured (a stale JSON misses new chapters).
        built = {d for d in self.env.found_docs if str(self.env.doc2path(d, base=False)).endswith(".ipynb")}
        missing = sorted(built - {n["docname"] for n in notebooks})
        if missing:
            _warn(self, f"execution status: {setting} does not cover {', '.join(missing)}: rerun "
                        f"`{MEASURE.format(path=setting)}`", "stale")

        return [self.table(notebooks, budget), self.provenance(report)]

    def table(self, notebooks: list[dict], budget: dict) -> nodes.table:
        rows = []
        for notebook in notebooks:
            link = addnodes.pending_xref(
                "", nodes.inline(text=notebook["docname"]),
                refdomain="std", reftype="doc", reftarget="/" + notebook["docname"],
                refexplicit=False, refwarn=True, refdoc=self.env.docname,
            )
            problems = flags(notebook, budget)
            rows.append(Row(
                [link, nodes.literal(text=Path(notebook["notebook"]).name), _seconds(notebook["seconds"]),
                 _mib(notebook["peak_rss_bytes"]), "; ".join(problems) if problems else "✓"],
                classes=["execution-status-over"] if problems else [],
            ))

        times = [n["seconds"] for n in notebooks if n["seconds"] is not None]
        peaks = [n["peak_rss_bytes"] for n in notebooks if n["peak_rss_bytes"] is not None]
        flagged = sum(1 for n in notebooks if flags(n, budget))
        rows.append(Row(
            [nodes.strong(text="Total"), f"{len(notebooks)} notebooks", f"{sum(times):.1f}\u00a0s",
             f"max {_mib(max(peaks)) if peaks else 'not measured'}", f"{flagged} flagged" if flagged else "✓"],
            classes=["execution-status-total"],
        ))
        headers = ["Chapter", "Notebook", "Run time", "Peak memory", "Status"]
        return table(headers, rows, [34, 26, 12, 14, 14], ["execution-status"])

    def provenance(self, report: dict) -> nodes.paragraph:
        budget, machine = report["budget"], report.get("machine", {})
        parts = [f"Budget per notebook: {budget['seconds']:g} s and {_gb(budget['peak_rss_bytes'])} "
                 f"({budget['peak_rss_bytes'] / 2**20:,.0f} MiB)."]
        measured = "Measured" + (f" {report['generated']}" if report.get("generated") else "")
        details = [f"{machine['cpu_count']} CPU cores" if machine.get("cpu_count") else None,
                   f"Python {machine['python']}" if machine.get("python") else None,
                   f"PyTorch {machine['torch']}" if machine.get("torch") else None,
                   machine.get("platform")]
        details = [d for d in details if d]
        parts.append(measured + (" on " + ", ".join(details) if details else "") + ".")
        return nodes.paragraph(text=" ".join(parts), classes=["execution-status-provenance"])


def setup(app):
    app.add_config_value("execution_status_file", "_build/execution_status.json", "env", [str])
    app.add_directive("execution-status", ExecutionStatus)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
