"""The *Cite this book* section of the first page, rendered from `CITATION.cff` when the book is built.

`CITATION.cff` (Citation File Format 1.2.0) at the repository's root is the one place where the book's
citation is written; GitHub's "Cite this repository" reads the same file. Its ``preferred-citation`` is the
book. The ``{cite-this-book}`` directive renders that reference twice: as one line of text and as a BibTeX
entry (:func:`bibtex_entry`, which the tests also use without Sphinx).

Only what a book's citation needs is converted: authors (persons or entities), title, year, version, url and
publisher. A CFF ``book`` without a publisher becomes a BibTeX ``@misc``, since the standard BibTeX styles
require a publisher for ``@book``.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from docutils import nodes
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

logger = logging.getLogger(__name__)

CITATION_FILE = "CITATION.cff"
_BIBTEX_SPECIAL = re.compile(r"([&%$#_{}])")
_KEY_STOP_WORDS = {"a", "an", "and", "of", "the"}


def read_reference(root: Path) -> dict:
    """The reference to cite: ``preferred-citation`` of ``root/CITATION.cff``, or the file's root."""
    cff = yaml.safe_load((Path(root) / CITATION_FILE).read_text(encoding="utf-8"))
    if not isinstance(cff, dict):
        raise ValueError(f"read_reference: {CITATION_FILE} must be a mapping, got {type(cff).__name__}")
    return cff.get("preferred-citation", cff)


def _escape(text: str) -> str:
    return _BIBTEX_SPECIAL.sub(r"\\\1", str(text))


def _bibtex_author(author: dict) -> str:
    """A person as ``Family, Given``; an entity as one braced name, so that BibTeX keeps it whole."""
    if "name" in author:
        return "{" + _escape(author["name"]) + "}"
    family = " ".join(filter(None, [author.get("name-particle"), author.get("family-names")]))
    given = author.get("given-names")
    if not family:
        raise ValueError(f"bibtex_entry: an author needs 'name' or 'family-names', got {sorted(author)}")
    return _escape(f"{family}, {given}" if given else family)


def _text_author(author: dict) -> str:
    if "name" in author:
        return author["name"]
    parts = [author.get("given-names"), author.get("name-particle"), author.get("family-names")]
    return " ".join(filter(None, parts))


def citation_key(reference: dict) -> str:
    """``<the title's words, without articles>_<year>``, lower case: ``backpropagation_derived_verified_2026``."""
    words = [w for w in re.findall(r"[a-z0-9]+", reference["title"].lower()) if w not in _KEY_STOP_WORDS]
    return "_".join([*words, str(reference["year"])])


def bibtex_entry(reference: dict) -> str:
    """The BibTeX entry of a CFF reference of type ``book``."""
    kind = reference.get("type", "book")
    if kind != "book":
        raise ValueError(f"bibtex_entry: argument 'reference' must be a CFF reference of type 'book', got {kind!r}")
    missing = [k for k in ("authors", "title", "year") if k not in reference]
    if missing:
        raise ValueError(f"bibtex_entry: argument 'reference' lacks {', '.join(missing)}")
    publisher = reference.get("publisher", {}).get("name")
    fields = [("author", " and ".join(_bibtex_author(a) for a in reference["authors"])),
              ("title", _escape(reference["title"])),
              ("year", str(reference["year"])),
              ("publisher", publisher and _escape(publisher)),
              ("note", reference.get("version") and f"Version {_escape(reference['version'])}"),
              ("url", reference.get("url"))]
    body = ",\n".join(f"  {name} = {{{value}}}" for name, value in fields if value)
    return f"@{'book' if publisher else 'misc'}{{{citation_key(reference)},\n{body}\n}}"


def text_reference(reference: dict) -> list[nodes.Node]:
    """One line: ``Authors (year). *Title*, version v. url``, as docutils nodes."""
    authors = ", ".join(_text_author(a) for a in reference["authors"])
    result: list[nodes.Node] = [nodes.Text(f"{authors} ({reference['year']}). "),
                                nodes.emphasis(reference["title"], reference["title"])]
    if reference.get("version"):
        result.append(nodes.Text(f", version {reference['version']}"))
    result.append(nodes.Text("."))
    if reference.get("url"):
        result += [nodes.Text(" "), nodes.reference(reference["url"], reference["url"], refuri=reference["url"])]
    return result


class CiteThisBook(SphinxDirective):
    """``{cite-this-book}``: the book's reference from `CITATION.cff`, as a line of text and as BibTeX."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        path = Path(self.env.srcdir) / CITATION_FILE
        self.env.note_dependency(str(path))
        self.env.note_dependency(__file__)
        try:
            reference = read_reference(self.env.srcdir)
            entry = bibtex_entry(reference)
        except (OSError, ValueError, KeyError, yaml.YAMLError) as error:
            logger.warning(f"cite-this-book: cannot render {CITATION_FILE}: {error!r}", location=self.get_location())
            return []
        block = nodes.literal_block(entry, entry, language="bibtex", classes=["cite-this-book"])
        return [nodes.paragraph("", "", *text_reference(reference)), block]


def setup(app):
    app.add_directive("cite-this-book", CiteThisBook)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
