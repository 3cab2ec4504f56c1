"""Compare the outputs of a fresh run of a cell with the outputs committed in the notebook, as nbval does.

nbval, which the test suite runs over every notebook, merges the stream outputs of a cell, leaves out what
it never compares (metadata, tracebacks, execution counts, PNG and JPEG images, widget ids), applies the
regular expressions of `tests/nbval_sanitize.cfg` to every string and then requires the rest to be equal,
output field by output field (`stdout`, `text/plain`, `image/svg+xml`, ...). This module does the same with
nbval's own helpers, so that the measurement pass of `make book` (`measure_notebooks.py`) flags the cells
that nbval would fail, with a diff a reader can act on. nbval's comparison itself is a method of its pytest
item and cannot be called without a test session; `difference` follows it step by step.
"""

from __future__ import annotations

import copy
import difflib
import re
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import nbformat
from nbval.plugin import (
    coalesce_streams,
    find_comment_markers,
    find_metadata_tags,
    get_sanitize_patterns,
    transform_streams_for_comparison,
)

SANITIZE = Path(__file__).resolve().parents[2] / "tests" / "nbval_sanitize.cfg"

# The output keys and MIME types nbval does not compare (nbval.plugin.IPyNbFile.skip_compare, without --nbdime).
SKIPPED = ("metadata", "traceback", "prompt_number", "output_type", "name", "execution_count",
           "application/vnd.jupyter.widget-view+json", "image/png", "image/jpeg")


def sanitizer(path: Path = SANITIZE) -> Callable[[str], str]:
    """The function nbval applies to every string it compares, from a sanitize file."""
    patterns = get_sanitize_patterns(Path(path).read_text())

    def sanitize(value):
        if not isinstance(value, str):
            return value
        for regex, replacement in patterns:
            value = re.sub(regex, replacement, value)
        return value

    return sanitize


def compared(cell) -> bool:
    """Whether nbval (run with --nbval) compares this code cell's outputs: it was executed when committed,
    and no NBVAL_IGNORE_OUTPUT / NBVAL_SKIP marker or tag says otherwise."""
    options = dict(find_metadata_tags(cell.get("metadata", {})))
    options.update(find_comment_markers(cell["source"]))
    return cell.get("execution_count") is not None and options.get("check", True) and not options.get("skip")


def _fields(outputs: list, sanitize: Callable[[str], str]) -> dict[str, list]:
    """Output field -> its sanitized values, in order (nbval's flattening of a cell's outputs)."""
    fields = defaultdict(list)
    for output in transform_streams_for_comparison(coalesce_streams(nbformat.from_dict(copy.deepcopy(outputs)))):
        for key, value in output.items():
            if key == "data":
                for mime, data in value.items():
                    if mime not in SKIPPED:
                        fields[mime].append(sanitize(data))
            elif key not in SKIPPED:
                fields[key].append(sanitize(value))
    return fields


def difference(committed: list, fresh: list, sanitize: Callable[[str], str]) -> str | None:
    """None when nbval would accept ``fresh`` for ``committed`` (lists of nbformat outputs), else a diff."""
    old, new = _fields(committed, sanitize), _fields(fresh, sanitize)
    lines = []
    for key in sorted(old.keys() | new.keys()):
        if old.get(key) == new.get(key):
            continue
        before = "\n".join(map(str, old.get(key, []))).splitlines()
        after = "\n".join(map(str, new.get(key, []))).splitlines()
        lines.append(f"{key}:" + ("" if key in old else " (not in the committed outputs)")
                     + ("" if key in new else " (missing from this run)"))
        lines.extend(difflib.unified_diff(before, after, "committed", "this run", lineterm="", n=1))
    return "\n".join(lines) or None
