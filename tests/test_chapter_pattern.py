"""Every chapter in the table of contents holds the book's pattern (see STYLE.md).

State (display math), derive (SymPy, ending in an identity SymPy proves), compute (bplib),
assert (numeric against symbolic or autograd), show (a figure), and exercises with solutions.
"""

import json
import re

import pytest

from .conftest import CHAPTERS, ROOT


def load(chapter):
    path = ROOT / f"{chapter}.ipynb"
    assert path.exists(), f"{chapter} is in _toc.yml but {path.name} does not exist"
    return json.loads(path.read_text())


def sources(nb, cell_type):
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == cell_type]


def test_every_chapter_is_a_notebook():
    assert CHAPTERS, "no chapter in _toc.yml"
    for chapter in CHAPTERS:
        load(chapter)


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_holds_the_pattern(chapter):
    nb = load(chapter)
    markdown = "\n".join(sources(nb, "markdown"))
    code = "\n".join(sources(nb, "code"))
    code_cells = [c for c in nb["cells"] if c["cell_type"] == "code"]

    assert re.search(r"^\$\$", markdown, re.M), "states its mathematics in display math"
    assert re.search(r"^import sympy|^from sympy", code, re.M), "derives with SymPy"
    assert re.search(r"^import bplib|^from bplib", code, re.M), "computes with bplib"
    assert "assert_identity(" in code, "ends a derivation in an identity SymPy proves"
    assert "assert_close(" in code, "asserts numeric results against symbolic or autograd ones"
    assert any(
        "image/png" in out.get("data", {}) or "image/svg+xml" in out.get("data", {})
        for cell in code_cells
        for out in cell.get("outputs", [])
    ), "shows a figure"
    exercises = re.findall(r"\{exercise\}", markdown)
    solutions = re.findall(r"\{solution(?:-start)?\}", markdown)
    assert len(exercises) >= 2 and len(solutions) >= len(exercises), "has two exercises, each with a solution"
    assert "{solution-start}" in markdown, "has a computational exercise whose solution is code the tests run"


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_is_committed_executed_and_clean(chapter):
    nb = load(chapter)
    code_cells = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(c.get("execution_count") for c in code_cells), "every code cell was executed"
    counts = [c["execution_count"] for c in code_cells]
    assert counts == sorted(counts), "cells were executed top to bottom in one run"
    for cell in code_cells:
        for out in cell.get("outputs", []):
            assert out["output_type"] != "error", "no error outputs"
            assert out.get("name") != "stderr", f"no warnings in outputs: {''.join(out.get('text', ''))[:200]}"
