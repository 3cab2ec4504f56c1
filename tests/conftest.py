"""What the tests share: the repository's paths, the book's table of contents, the built book, the CUDA marker.

The table of contents is read by `book/_ext/book_toc.py`, the reader the build and `make book` use, so the
tests see the pages the book has. Test modules import these names from here (`from .conftest import ROOT`).
"""

import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
EXTENSIONS = ROOT / "book" / "_ext"
HTML = ROOT / "_build" / "html"
STATUS = ROOT / "_build" / "execution_status.json"

sys.path.insert(0, str(EXTENSIONS))  # the extensions' modules, importable by name: book_toc, verification_index, ...
import book_toc  # noqa: E402

TOC_FILES = book_toc.toc_files(ROOT)  # every page, in reading order: "book/intro", "book/ch01_chain_rule", ...
NOTEBOOKS = [page.docname for page in book_toc.toc_notebooks(ROOT)]
CHAPTERS = [docname for docname in TOC_FILES if Path(docname).name.startswith("ch")]  # each must be a notebook


def built(page: Path) -> Path:
    """A page of the built book; the test fails, saying how to build it, when it is missing."""
    if not (HTML / "index.html").is_file():
        pytest.fail("the book is not built: run `make book` (or `make test`, which builds it first)")
    if not page.is_file():
        pytest.fail(f"{page.relative_to(ROOT)} is missing from the build: is it in _toc.yml?")
    return page


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU; none is present")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def generator():
    return torch.Generator().manual_seed(1234)
