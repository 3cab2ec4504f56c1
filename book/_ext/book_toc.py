"""The book's table of contents, `_toc.yml`, read in one place.

The Sphinx extensions of `book/_ext`, `measure_notebooks.py` and the tests all take the book's pages from
here, in reading order and numbered as Jupyter Book 1.x numbers them: the chapters of the `numbered` parts
continuously across parts (`use_multitoc_numbering`, on by default); the root page, the chapters of the
other parts and every `sections:` entry carry no number of their own here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
SUFFIXES = (".ipynb", ".md")


@dataclass(frozen=True)
class Page:
    """One entry of the table of contents."""

    docname: str  # "book/ch01_chain_rule": the path from the book's root, without suffix
    number: int | None  # the chapter number the book prints, None for unnumbered pages


def _docname(file: str) -> str:
    for suffix in SUFFIXES:
        if file.endswith(suffix):
            return file[: -len(suffix)]
    return file


def toc_pages(root: Path = ROOT) -> list[Page]:
    """Every page of `_toc.yml` (the root, the parts' chapters and their sections), in reading order."""
    toc = yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8"))
    pages = [Page(_docname(toc["root"]), None)]
    numbered = 0

    def add(entry: dict, number: int | None) -> None:
        pages.append(Page(_docname(entry["file"]), number))
        for section in entry.get("sections") or []:
            add(section, None)

    parts = toc.get("parts") or [{"chapters": toc.get("chapters") or [],
                                  "numbered": (toc.get("defaults") or {}).get("numbered", False)}]
    for part in parts:
        for chapter in part.get("chapters") or []:
            if part.get("numbered"):
                numbered += 1
            add(chapter, numbered if part.get("numbered") else None)
    return pages


def toc_files(root: Path = ROOT) -> list[str]:
    """The docnames of every page of `_toc.yml`, in reading order."""
    return [page.docname for page in toc_pages(root)]


def toc_notebooks(root: Path = ROOT) -> list[Page]:
    """The pages of `_toc.yml` that are notebooks (`<docname>.ipynb` exists), in reading order."""
    return [page for page in toc_pages(root) if (root / f"{page.docname}.ipynb").is_file()]
