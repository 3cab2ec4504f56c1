"""The notebooks' budget, and the *Execution status* appendix that reports it.

`make book` measures every notebook (`book/_ext/measure_notebooks.py` writes _build/execution_status.json)
and renders the appendix from it; `make test` builds the book first, so both are there when this runs.

The budget is the README's promise: every notebook runs top to bottom in under 60 s on two CPU cores and
in under 1.5 GB of memory. The appendix flags a notebook over either limit; the tests hold the memory
limit only, since run times depend on what else the machine is doing.
"""

import json
import re
from html.parser import HTMLParser

import pytest

from .test_chapter_pattern import ROOT, toc_files

STATUS = ROOT / "_build" / "execution_status.json"
APPENDIX = ROOT / "_build" / "html" / "book" / "appendix_execution.html"

BUDGET_SECONDS = 60
BUDGET_BYTES = 1_500_000_000  # 1.5 GB

NOTEBOOKS = [f for f in toc_files() if (ROOT / f"{f}.ipynb").is_file()]


@pytest.fixture(scope="module")
def status():
    if not STATUS.is_file():
        pytest.fail(f"{STATUS.relative_to(ROOT)} is missing: run `make book` (or `make test`, which builds it "
                    "first), or `python book/_ext/measure_notebooks.py --out _build/execution_status.json`")
    return json.loads(STATUS.read_text())


def by_docname(status):
    return {n["docname"]: n for n in status["notebooks"]}


def test_every_chapter_is_a_notebook_in_the_toc():
    chapters = [f for f in toc_files() if f.rsplit("/", 1)[-1].startswith("ch")]
    assert chapters and set(chapters) <= set(NOTEBOOKS)
    assert "book/appendix_execution" in toc_files(), "the appendix is not in _toc.yml"


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
    if not APPENDIX.is_file():
        pytest.fail(f"{APPENDIX.relative_to(ROOT)} is missing: run `make book` (or `make test`, which builds it first)")
    parser = Rows()
    parser.feed(APPENDIX.read_text())
    assert parser.rows, "the appendix has no execution-status table"
    rows = [cells for classes, cells in parser.rows if "execution-status-total" not in classes]
    totals = [cells for classes, cells in parser.rows if "execution-status-total" in classes]
    assert [cells[1] for cells in rows] == [f"{d.rsplit('/', 1)[-1]}.ipynb" for d in NOTEBOOKS], (
        "one row per notebook, in toc order")
    assert len(totals) == 1 and totals[0][1] == f"{len(NOTEBOOKS)} notebooks"
    for cells, notebook in zip(rows, status["notebooks"]):
        assert cells[2] == f"{notebook['seconds']:.1f} s", cells  # the page shows this measurement
        within = (notebook["ok"] and notebook["seconds"] is not None and notebook["seconds"] <= BUDGET_SECONDS
                  and notebook["peak_rss_bytes"] is not None and notebook["peak_rss_bytes"] <= BUDGET_BYTES)
        assert cells[4] == "✓" if within else cells[4].startswith(("⚠", "✗")), cells


def test_every_row_links_to_its_chapter():
    if not APPENDIX.is_file():
        pytest.fail(f"{APPENDIX.relative_to(ROOT)} is missing: run `make book` (or `make test`, which builds it first)")
    html = APPENDIX.read_text()
    for docname in NOTEBOOKS:
        name = docname.rsplit("/", 1)[-1]
        assert re.search(rf'<a class="reference internal" href="{re.escape(name)}\.html"', html), (
            f"no link to {docname} in the appendix")
