"""The notebooks' run in `make book`: budget, outputs, and the *Execution status* appendix that reports them.

`make book` runs every notebook once (`book/_ext/measure_notebooks.py` writes _build/execution_status.json)
and renders the appendix from it; `make test` builds the book first, so both are there when this runs.

The budget is the README's promise: every notebook runs top to bottom in under 60 s on two CPU cores and
in under 1.5 GB of memory. The appendix flags a notebook over either limit; the tests hold the memory
limit only, since run times depend on what else the machine is doing. The outputs of that run, with this
machine's own numerics, must be the committed ones, as nbval compares them; the nbval pass of the test
suite checks them once more under perturbed numerics (tests/test_portable_outputs.py).
"""

import json
import re
from html.parser import HTMLParser

import nbformat
import pytest

from .conftest import HTML, NOTEBOOKS, ROOT, STATUS, TOC_FILES, built

import measure_notebooks  # noqa: E402  -- book/_ext, importable through conftest

APPENDIX = HTML / "book" / "appendix_execution.html"

BUDGET_SECONDS = 60
BUDGET_BYTES = 1_500_000_000  # 1.5 GB


@pytest.fixture(scope="module")
def status():
    if not STATUS.is_file():
        pytest.fail(f"{STATUS.relative_to(ROOT)} is missing: run `make book` (or `make test`, which builds it "
                    "first), or `python book/_ext/measure_notebooks.py --out _build/execution_status.json`")
    return json.loads(STATUS.read_text())


def by_docname(status):
    return {n["docname"]: n for n in status["notebooks"]}


def test_every_chapter_is_a_notebook_in_the_toc():
    chapters = [f for f in TOC_FILES if f.rsplit("/", 1)[-1].startswith("ch")]
    assert chapters and set(chapters) <= set(NOTEBOOKS)
    assert "book/appendix_execution" in TOC_FILES, "the appendix is not in _toc.yml"


def test_the_measurement_lists_every_notebook_of_the_toc(status):
    measured = [n["docname"] for n in status["notebooks"]]
    assert measured == NOTEBOOKS, (
        "the measurement does not match _toc.yml (stale? rerun `make book`): "
        f"missing {sorted(set(NOTEBOOKS) - set(measured))}, extra {sorted(set(measured) - set(NOTEBOOKS))}")


def test_the_measurement_uses_the_readmes_budget(status):
    assert status["budget"] == {"seconds": BUDGET_SECONDS, "peak_rss_bytes": BUDGET_BYTES}


@pytest.mark.parametrize("docname", NOTEBOOKS)
def test_notebook_runs_without_error(docname, status):
    notebook = by_docname(status).get(docname)
    assert notebook is not None, f"{docname} was not measured: rerun `make book`"
    assert notebook["ok"], f"{docname}.ipynb failed in a fresh kernel: {notebook['error']}"


@pytest.mark.parametrize("docname", NOTEBOOKS)
def test_notebook_outputs_are_the_committed_ones(docname, status):
    notebook = by_docname(status).get(docname)
    assert notebook is not None and "mismatches" in notebook, f"{docname} was not measured: rerun `make book`"
    assert notebook["ok"], f"{docname}.ipynb failed, its outputs were not compared: {notebook['error']}"
    report = "\n\n".join(f"Cell {m['cell']}:\n{m['diff']}" for m in notebook["mismatches"])
    assert not notebook["mismatches"], (
        f"{docname}.ipynb, run by `make book`, printed other outputs than the committed ones "
        f"(re-execute it with `jupyter execute --inplace` if the change is meant):\n{report}")


@pytest.mark.parametrize("docname", NOTEBOOKS)
def test_notebook_keeps_within_the_memory_budget(docname, status):
    # Run times are measured and flagged on the page, not asserted: they depend on what else the machine
    # is doing. Peak memory hardly does, and 1.5 GB is the limit a reader on Binder has.
    notebook = by_docname(status).get(docname)
    assert notebook is not None, f"{docname} was not measured: rerun `make book`"
    assert notebook["seconds"] is not None and notebook["peak_rss_bytes"] is not None, f"{docname}: not measured"
    assert notebook["peak_rss_bytes"] <= BUDGET_BYTES, (
        f"{docname}.ipynb peaked at {notebook['peak_rss_bytes'] / 1e9:.2f} GB, over the 1.5 GB budget")


class Rows(HTMLParser):
    """The body rows of the table with class `execution-status`: each a list of its cells' text."""

    def __init__(self):
        super().__init__()
        self.depth = 0  # >0 inside the table
        self.in_body = False
        self.rows: list[tuple[list[str], list[str]]] = []  # (row classes, cells)
        self.cell = None

    def handle_starttag(self, tag, attrs):
        classes = (dict(attrs).get("class") or "").split()
        if tag == "table" and (self.depth or "execution-status" in classes):
            self.depth += 1
        elif self.depth and tag == "tbody":
            self.in_body = True
        elif self.depth and self.in_body and tag == "tr":
            self.rows.append((classes, []))
        elif self.depth and self.in_body and tag == "td":
            self.cell = []

    def handle_endtag(self, tag):
        if tag == "table" and self.depth:
            self.depth -= 1
        elif tag == "tbody":
            self.in_body = False
        elif tag == "td" and self.cell is not None:
            self.rows[-1][1].append(re.sub(r"\s+", " ", "".join(self.cell)).strip())
            self.cell = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell.append(data)


def test_the_appendix_shows_one_row_per_notebook(status):
    parser = Rows()
    parser.feed(built(APPENDIX).read_text())
    assert parser.rows, "the appendix has no execution-status table"
    rows = [cells for classes, cells in parser.rows if "execution-status-total" not in classes]
    totals = [cells for classes, cells in parser.rows if "execution-status-total" in classes]
    assert [cells[1] for cells in rows] == [f"{d.rsplit('/', 1)[-1]}.ipynb" for d in NOTEBOOKS], (
        "one row per notebook, in toc order")
    assert len(totals) == 1 and totals[0][1] == f"{len(NOTEBOOKS)} notebooks"
    for cells, notebook in zip(rows, status["notebooks"]):
        assert cells[2] == f"{notebook['seconds']:.1f} s", cells  # the page shows this measurement
        within = (notebook["ok"] and not notebook["mismatches"]
                  and notebook["seconds"] is not None and notebook["seconds"] <= BUDGET_SECONDS
                  and notebook["peak_rss_bytes"] is not None and notebook["peak_rss_bytes"] <= BUDGET_BYTES)
        assert cells[4] == "✓" if within else cells[4].startswith(("⚠", "✗")), cells
        for mismatch in notebook["mismatches"]:
            assert "outputs differ" in cells[4] and str(mismatch["cell"]) in cells[4], cells


def test_every_row_links_to_its_chapter():
    html = built(APPENDIX).read_text()
    for docname in NOTEBOOKS:
        name = docname.rsplit("/", 1)[-1]
        assert re.search(rf'<a class="reference internal" href="{re.escape(name)}\.html"', html), (
            f"no link to {docname} in the appendix")


# The comparison must catch what nbval catches, and accept what nbval accepts: a notebook made for the test.

PLANTED = [  # (source, committed output): stdout as committed, or None for a cell nbval does not compare
    ("print(2 + 2)", "5\n"),  # wrong: the run prints 4
    ("print(object())", "<object object at 0x7f00deadbeef>\n"),  # another address: sanitized, accepted
    ("print(sorted({3, 1, 2}))", "[1, 2, 3]\n"),  # right
    ("# NBVAL_IGNORE_OUTPUT\nprint(3 * 3)", "10\n"),  # wrong, but marked as not compared
    ("print('a'); print('b')", "a\nc\n"),  # wrong in its second line
]


def test_the_measurement_flags_exactly_the_cells_nbval_fails(tmp_path):
    cells = []
    for count, (source, stdout) in enumerate(PLANTED, start=1):
        cell = nbformat.v4.new_code_cell(source, execution_count=count)
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=stdout)]
        cells.append(cell)
    path = tmp_path / "planted.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)
    result = measure_notebooks.measure(path, timeout=60)
    assert result["ok"], result["error"]
    assert [m["cell"] for m in result["mismatches"]] == [0, 4], result["mismatches"]
    assert "-5\n+4" in result["mismatches"][0]["diff"] and "stdout" in result["mismatches"][0]["diff"]
    assert "-c\n+b" in result["mismatches"][1]["diff"]
