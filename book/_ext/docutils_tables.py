"""Docutils tables for the book's generated appendices, built in one place.

    table(["Symbol", "Meaning"], [Row([math_node, "the loss"])], widths=[10, 40], classes=["notation-table"])

A cell is a string, one node or a list of nodes: text and inline nodes are wrapped in a paragraph, block
nodes (paragraphs, lists) are placed in the cell as they are. A row may carry classes and ids.
`rich_text` turns the ``$math$`` and ```code``` of a short text (a heading, a cell of a data file) into nodes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from docutils import nodes

Cell = str | nodes.Node | list[nodes.Node]
_INLINE = re.compile(r"\$([^$]+)\$|`([^`]+)`")


@dataclass
class Row:
    """The cells of one body row, with the row's HTML classes and ids."""

    cells: list[Cell]
    classes: list[str] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)


def rich_text(text: str) -> list[nodes.Node]:
    """Plain text with its ``$...$`` spans as inline math and its ```...``` spans as inline code."""
    result: list[nodes.Node] = []
    position = 0
    for match in _INLINE.finditer(text):
        if match.start() > position:
            result.append(nodes.Text(text[position : match.start()]))
        math, code = match.groups()
        result.append(nodes.math(math, math) if math is not None else nodes.literal(code, code))
        position = match.end()
    if position < len(text):
        result.append(nodes.Text(text[position:]))
    return result


def entry(cell: Cell) -> nodes.entry:
    """One table cell holding ``cell``."""
    children = [nodes.Text(cell)] if isinstance(cell, str) else cell if isinstance(cell, list) else [cell]
    result = nodes.entry()
    inline: list[nodes.Node] = []
    for child in children:
        if isinstance(child, (nodes.Text, nodes.Inline)):
            inline.append(child)
            continue
        if inline:
            result += nodes.paragraph("", "", *inline)
            inline = []
        result += child
    if inline or not children:
        result += nodes.paragraph("", "", *inline)
    return result


def table(headers: list[str], rows: list[Row], widths: list[int], classes: list[str] = ()) -> nodes.table:
    """A table with one header row and ``rows``; ``widths`` are the relative widths of the columns."""
    lengths = sorted({len(row.cells) for row in rows} | {len(headers), len(widths)})
    if len(lengths) > 1:
        raise ValueError(f"table: headers, widths and rows must have as many entries, got {lengths}")
    result = nodes.table(classes=list(classes))
    group = nodes.tgroup(cols=len(headers))
    result += group
    group.extend(nodes.colspec(colwidth=width) for width in widths)
    group += nodes.thead("", nodes.row("", *(entry(header) for header in headers)))
    body = nodes.tbody()
    for row in rows:
        body += nodes.row("", *(entry(cell) for cell in row.cells), classes=list(row.classes), ids=list(row.ids))
    group += body
    return result
