"""The map of the book on its first page: every part of `_toc.yml` with its chapters, drawn when the book is built.

    ```{book-map}
    :name: fig-book-map
    :caption: The parts of the book ...
    Part I: Mathematical foundations
      The chain rule, built up into the backpropagation algorithm ...
    ```

The directive's content names each part of the table of contents by its caption, on a line of its own, and
says in a sentence, on the indented lines under it, what the part is about. The figure shows each part as a
card with that sentence and its chapters, numbered as the book numbers them and linked to their pages (the
links resolve like ``{doc}``, so the nitpicky build checks them). A part of the table of contents without a
sentence, or a sentence for a part the table of contents does not have, is a warning: the map never names a
part that is not there.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml
from book_toc import Page, _docname, toc_pages
from docutils import nodes
from docutils.parsers.rst import directives
from docutils_tables import rich_text
from sphinx import addnodes
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective
from static_assets import add_stylesheet

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Part:
    """One part of the table of contents: its caption and its chapters (their sections are not listed)."""

    caption: str
    chapters: list[Page]


def toc_parts(root: Path) -> list[Part]:
    """The parts of `_toc.yml` in reading order, each chapter numbered as :func:`book_toc.toc_pages` numbers it."""
    toc = yaml.safe_load((Path(root) / "_toc.yml").read_text(encoding="utf-8"))
    pages = {page.docname: page for page in toc_pages(Path(root))}
    return [Part(part.get("caption", ""), [pages[_docname(chapter["file"])] for chapter in part.get("chapters") or []])
            for part in toc.get("parts") or []]


def part_summaries(lines: list[str]) -> dict[str, str]:
    """{caption: sentence}, from each part's caption on a line of its own and its sentence indented under it."""
    summaries: dict[str, list[str]] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        if not line[0].isspace():
            summaries.setdefault(line.strip(), [])
        elif not summaries:
            raise ValueError(f"line {number} is indented, but no part's caption comes before it: {line.strip()!r}")
        else:
            summaries[list(summaries)[-1]].append(line.strip())
    empty = [caption for caption, words in summaries.items() if not words]
    if empty:
        raise ValueError(f"no sentence under {empty}: indent it under the part's caption")
    return {caption: " ".join(words) for caption, words in summaries.items()}


def doc_link(page: Page, fromdoc: str) -> addnodes.pending_xref:
    """A link to ``page`` titled with the page's own title, resolved (and checked) as ``{doc}`` resolves."""
    return addnodes.pending_xref("", nodes.inline("", ""), refdomain="std", reftype="doc", refwarn=True,
                                 reftarget="/" + page.docname, refexplicit=False, refdoc=fromdoc)


class BookMap(SphinxDirective):
    """``{book-map}``: the parts of the book as cards, each with its sentence and its linked chapters."""

    has_content = True
    option_spec = {"name": directives.unchanged, "caption": directives.unchanged}

    def _warn(self, message: str) -> None:
        logger.warning(f"book map: {message}", location=self.get_location())

    def run(self) -> list[nodes.Node]:
        root = Path(self.env.srcdir)
        self.env.note_dependency(str(root / "_toc.yml"))
        self.env.note_dependency(__file__)
        try:
            summaries = part_summaries(list(self.content))
        except ValueError as error:
            self._warn(str(error))
            return []
        parts = [part for part in toc_parts(root) if part.chapters]
        captions = [part.caption for part in parts]
        for caption in captions:
            if caption not in summaries:
                self._warn(f"no sentence for the part {caption!r} of _toc.yml")
        for caption in summaries:
            if caption not in captions:
                self._warn(f"a sentence for {caption!r}, which is not a part of _toc.yml (its parts: {captions})")

        grid = nodes.container(classes=["book-map"])
        for part in parts:
            card = nodes.container(classes=["book-map-part"])
            card += nodes.paragraph("", "", nodes.strong(part.caption, part.caption), classes=["book-map-caption"])
            if part.caption in summaries:
                card += nodes.paragraph("", "", *rich_text(str(summaries[part.caption])), classes=["book-map-summary"])
            chapters = nodes.bullet_list(classes=["book-map-chapters"])
            for page in part.chapters:
                number = [nodes.inline(f"{page.number}", f"{page.number}", classes=["book-map-number"])]
                chapters += nodes.list_item("", nodes.paragraph("", "", *(number if page.number else []),
                                                                doc_link(page, self.env.docname)))
            card += chapters
            grid += card
        figure = nodes.figure("", grid, classes=["book-map-figure"])
        if "caption" in self.options:
            figure += nodes.caption("", "", *rich_text(self.options["caption"]))
        self.add_name(figure)
        return [figure]


def setup(app):
    app.add_directive("book-map", BookMap)
    add_stylesheet(app, "book_map.css")
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
