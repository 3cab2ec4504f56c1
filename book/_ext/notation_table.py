"""The ``notation-table`` directive: the book's notation table, rendered from ``book/notation.yml``.

The YAML file is the one source of the notation appendix; this directive turns it into docutils tables at
build time, so the page cannot drift from the data.  Usage, in a MyST page::

    ```{notation-table}
    :group: network
    ```

renders the entries of one group (every entry without ``:group:``) as a table with the columns symbol,
shape, meaning, name in ``bplib`` and the chapter that introduces it.  Symbols and shapes are math nodes;
in the meaning and code cells ``$...$`` is inline math and ```...``` is inline code.  The chapter cell is a
``{doc}`` cross-reference, so a chapter that is renamed or removed fails the (nitpicky) build.

The data file is registered as a dependency of every page that uses the directive: editing it rebuilds them.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from docutils import nodes
from docutils.parsers.rst import directives
from docutils_tables import Row, rich_text, table
from sphinx import addnodes
from sphinx.util.docutils import SphinxDirective

DATA = Path(__file__).resolve().parent.parent / "notation.yml"
FIELDS = ("name", "latex", "shape", "meaning", "code", "chapter", "group")
COLUMNS = (("Symbol", 12), ("Shape", 14), ("Meaning", 44), ("In bplib", 26), ("From", 14))


def load(path: Path = DATA) -> dict:
    """Read the notation file: ``{"groups": {key: title}, "symbols": [entry, ...]}``."""
    with open(path, encoding="utf-8") as f:
        data = yaml.safe_load(f)
    for i, entry in enumerate(data["symbols"]):
        missing = [k for k in FIELDS if not str(entry.get(k, "")).strip()]
        if missing:
            raise ValueError(f"{path.name}: symbol {i} ({entry.get('name')!r}) lacks {', '.join(missing)}")
        if entry["group"] not in data["groups"]:
            raise ValueError(f"{path.name}: symbol {entry['name']!r} has unknown group {entry['group']!r}")
    return data


def _math(latex: str) -> nodes.Node:
    return nodes.math(latex, latex)


class NotationTable(SphinxDirective):
    """Render the entries of ``notation.yml`` (optionally one group) as a table."""

    has_content = False
    option_spec = {"group": directives.unchanged_required}

    def run(self) -> list[nodes.Node]:
        self.env.note_dependency(str(DATA))
        try:
            data = load()
        except (OSError, ValueError, KeyError, yaml.YAMLError) as error:
            raise self.error(f"notation-table: {error}") from error
        group = self.options.get("group")
        if group is not None and group not in data["groups"]:
            raise self.error(f"notation-table: unknown group {group!r}; known: {', '.join(data['groups'])}")
        entries = [e for e in data["symbols"] if group is None or e["group"] == group]

        rows = []
        for e in entries:
            target = f"/book/{e['chapter']}"
            xref = addnodes.pending_xref(
                "", nodes.inline(target, target), refdomain="std", reftype="doc", reftarget=target,
                refexplicit=False, refwarn=True,
            )
            shape = str(e["shape"])
            cells = [_math(e["latex"]), _math(shape) if shape not in ("scalar", "—") else shape,
                     rich_text(e["meaning"]), rich_text(e["code"]), xref]
            rows.append(Row(cells, ids=[nodes.make_id(f"notation-{e['name']}")]))
        headers, widths = zip(*COLUMNS)
        return [table(list(headers), rows, list(widths), ["notation-table"])]


def setup(app):
    app.add_directive("notation-table", NotationTable)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
