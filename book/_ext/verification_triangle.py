"""The verification triangle on the book's first page: SymPy ⇄ bplib ⇄ torch, with every chapter's checks counted.

    ```{verification-triangle}
    :sympy: SymPy
    :torch: torch.autograd, torch.func, torch.optim, torch
    :other: finite differences, Monte Carlo, closed form, second route
    :name: fig-verification-triangle
    :caption: ...
    ```

The counts come from the extractor of the *Verification index* (:func:`verification_index.extract_book`),
so the figure and the appendix count the same checks: identities SymPy proves (and how many of them for every
size, ``sizes="all"``), and numeric checks by the route they are compared with (``against=``), the
appendix's columns grouped as the options say. A check whose route is in no group is a warning, as in the
appendix. The figure is one inline SVG written at build time (no image file, nothing loaded at read time);
its rows link to the chapters.
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape
from pathlib import Path

from docutils import nodes
from docutils.parsers.rst import directives
from docutils_tables import rich_text
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective
from static_assets import add_stylesheet
from verification_index import ALL_SIZES, IDENTITY, NUMERIC, Claim, ExtractionError, extract_book, read_notebook

logger = logging.getLogger(__name__)

GROUPS = {"sympy": "SymPy", "torch": "torch", "other": "other routes"}  # option name -> label in the figure
PROOFS_ALL, PROOFS_FIXED = "proved for every size", "proved for fixed sizes"
WIDTH, BAR_LEFT, BAR_WIDTH = 640, 330, 270  # the figure's width; where the bars start and how long the longest is
COLOURS = {PROOFS_ALL: "#1b7f3b", PROOFS_FIXED: "#93d3a2", "sympy": "#d9820f", "torch": "#2f6fb3",
           "other": "#9b9b9b"}


def proved_for_all_sizes(claim: Claim) -> bool:
    """An identity checked with ``sizes="all"``: its dimensions are symbols."""
    return claim.kind == IDENTITY and claim.sizes == [(False, ALL_SIZES)]


def count_checks(claims: list[Claim], groups: dict[str, list[str]]) -> dict[str, int]:
    """The identities, those proved for every size, and the numeric checks against each group of routes.

    A numeric check counts once under each route it names (a chapter's helper called with two references
    names two), as in the verification index; a group's count is the sum of its routes' counts."""
    numeric = [c for c in claims if c.kind == NUMERIC]
    counts = {"identities": sum(c.kind == IDENTITY for c in claims),
              "all_sizes": sum(proved_for_all_sizes(c) for c in claims)}
    counts.update({group: sum(route in routes for c in numeric for route in c.against)
                   for group, routes in groups.items()})
    return counts


def _text(x: float, y: float, text: str, *, anchor: str = "middle", classes: str = "", size: int = 13) -> str:
    return (f'<text x="{x:g}" y="{y:g}" text-anchor="{anchor}" font-size="{size}" class="{classes}">'
            f"{escape(text)}</text>")


def _vertex(x: float, y: float, label: str, note: str) -> str:
    """A corner of the triangle: a box with the route's name, a note under it."""
    box = f'<rect x="{x - 58:g}" y="{y - 18:g}" width="116" height="36" rx="8" class="vtri-vertex"/>'
    return box + _text(x, y + 5, label, classes="vtri-vertex-label", size=15) + (
        _text(x, y + 33, note, classes="vtri-muted", size=11) if note else "")


def _edge(start: tuple[float, float], end: tuple[float, float], colour: str | None) -> str:
    """A side of the triangle: a double arrow in ``colour``, or a dashed line when ``colour`` is None."""
    (x1, y1), (x2, y2) = start, end
    if colour is None:
        return f'<line x1="{x1:g}" y1="{y1:g}" x2="{x2:g}" y2="{y2:g}" class="vtri-open" stroke-dasharray="5 5"/>'
    marker = f"url(#vtri-arrow-{colour[1:]})"
    return (f'<line x1="{x1:g}" y1="{y1:g}" x2="{x2:g}" y2="{y2:g}" stroke="{colour}" stroke-width="3" '
            f'marker-start="{marker}" marker-end="{marker}"/>')


def _arrowhead(colour: str) -> str:
    return (f'<marker id="vtri-arrow-{colour[1:]}" viewBox="0 0 10 10" refX="8" refY="5" markerWidth="5" '
            f'markerHeight="5" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="{colour}"/></marker>')


def _checks(chapter: dict) -> int:
    return chapter["identities"] + sum(chapter[group] for group in GROUPS)


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip(" ,:;") + "…"


def _chapter_row(chapter: dict, y: float, scale: float, href: str) -> str:
    """One chapter's bar: its proofs, then its numeric checks by group; the whole row links to the chapter."""
    segments = [(PROOFS_ALL, chapter["all_sizes"]), (PROOFS_FIXED, chapter["identities"] - chapter["all_sizes"]),
                *((group, chapter[group]) for group in GROUPS)]
    bars, x = [], BAR_LEFT
    for key, value in segments:
        if value:
            bars.append(f'<rect x="{x:.1f}" y="{y - 11:g}" width="{value * scale:.1f}" height="13" '
                        f'fill="{COLOURS[key]}"/>')
            x += value * scale
    number = "" if chapter["number"] is None else str(chapter["number"])
    counts = ", ".join([f"{chapter['identities']} identities proved ({chapter['all_sizes']} for every size)",
                        *(f"{chapter[group]} checks vs {name}" for group, name in GROUPS.items())])
    tooltip = f"{number} {chapter['title']}: {counts}".strip()
    return (f'<a href="{escape(href)}" class="vtri-row"><title>{escape(tooltip)}</title>'
            + _text(24, y, number, anchor="end", size=12, classes="vtri-muted")
            + _text(32, y, _short(chapter["title"], 40), anchor="start", size=12) + "".join(bars)
            + _text(x + 5, y, str(_checks(chapter)), anchor="start", size=11, classes="vtri-muted") + "</a>")


def _legend(y: float, heading: str, items: list[tuple[str, str]]) -> str:
    parts, x = [_text(32, y, heading, anchor="start", size=12, classes="vtri-muted")], 32 + 7 * len(heading) + 12
    for key, label in items:
        parts.append(f'<rect x="{x:g}" y="{y - 10}" width="12" height="12" fill="{COLOURS[key]}"/>'
                     + _text(x + 17, y, label, anchor="start", size=12))
        x += 17 + 7 * len(label) + 16
    return "".join(parts)


def triangle_svg(chapters: list[dict], href: Callable[[str], str]) -> str:
    """The figure as inline SVG: the triangle with the book's totals, and under it one bar per chapter.

    Each item of ``chapters`` has ``docname``, ``number``, ``title`` and the counts of :func:`count_checks`;
    ``href(docname)`` is the link to a chapter from the page that shows the figure."""
    total = {key: sum(c[key] for c in chapters) for key in ("identities", "all_sizes", *GROUPS)}
    bars_top, row = 445, 19
    height = bars_top + row * len(chapters) + 10
    desc = (f"{total['identities']} identities proved by SymPy, {total['all_sizes']} of them for every size; "
            f"numeric checks of bplib: {total['sympy']} against SymPy, {total['torch']} against torch, "
            f"{total['other']} against other routes. The bars count the same per chapter.")
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" class="vtri" role="img" '
             'aria-labelledby="vtri-title vtri-desc"><title id="vtri-title">The verification triangle</title>'
             f'<desc id="vtri-desc">{escape(desc)}</desc>'
             f'<defs>{_arrowhead(COLOURS["sympy"])}{_arrowhead(COLOURS["torch"])}</defs>']

    # The triangle: SymPy at the top, bplib and torch at the base; the totals on the sides.
    (sx, sy), (bx, by), (tx, ty) = (320, 80), (185, 262), (455, 262)
    parts += [_edge((sx - 14, sy + 22), (bx + 8, by - 22), COLOURS["sympy"]),
              _edge((bx + 62, by), (tx - 62, ty), COLOURS["torch"]),
              _edge((sx + 14, sy + 22), (tx - 8, ty - 22), None),
              _vertex(sx, sy, "SymPy", ""), _vertex(bx, by, "bplib", "backpropagation by hand"),
              _vertex(tx, ty, "torch", "autograd, func, optim")]
    parts += [_text(sx, sy - 48, f"{total['identities']} identities proved exactly", classes="vtri-proofs", size=14),
              _text(sx, sy - 30, f"{total['all_sizes']} of them for every size", size=12, classes="vtri-muted"),
              _text(sx - 80, 160, f"{total['sympy']} checks", anchor="end", classes="vtri-sympy", size=14),
              _text(sx - 80, 177, "vs SymPy, lambdified", anchor="end", size=12, classes="vtri-muted"),
              _text(sx, 236, "vs torch", size=12, classes="vtri-muted"),
              _text(sx, 252, f"{total['torch']} checks", classes="vtri-torch", size=14),
              _text(bx - 58, by + 60, f"{total['other']} checks vs other routes", anchor="start", classes="vtri-other",
                    size=14),
              _text(bx - 58, by + 77, "closed forms, second routes, finite differences, Monte Carlo", anchor="start",
                    size=12, classes="vtri-muted")]

    # One bar per chapter, all on one scale, and what the colours mean.
    scale = BAR_WIDTH / max([1, *map(_checks, chapters)])
    parts += [_text(32, bars_top - 62, "Checks per chapter", anchor="start", classes="vtri-heading", size=14),
              _legend(bars_top - 40, "SymPy proofs:",
                      [(PROOFS_ALL, "for every size"), (PROOFS_FIXED, "for fixed sizes")]),
              _legend(bars_top - 20, "numeric checks:", [(g, f"vs {name}") for g, name in GROUPS.items()])]
    parts += [_chapter_row(chapter, bars_top + i * row, scale, href(chapter["docname"]))
              for i, chapter in enumerate(chapters)]
    parts.append("</svg>")
    return "".join(parts)


class verification_triangle(nodes.General, nodes.Element):
    """The figure's data (``chapters``); written as SVG by the HTML builder, where links resolve."""


def visit_triangle_html(self, node: verification_triangle) -> None:
    fromdoc = self.builder.current_docname
    self.body.append(triangle_svg(node["chapters"], lambda docname: self.builder.get_relative_uri(fromdoc, docname)))
    raise nodes.SkipNode


class VerificationTriangle(SphinxDirective):
    """``{verification-triangle}``: the figure, with the routes of each group in the options."""

    option_spec = {**{group: directives.unchanged_required for group in GROUPS},
                   "name": directives.unchanged, "caption": directives.unchanged}

    def run(self) -> list[nodes.Node]:
        root = Path(self.env.srcdir)
        self.env.note_dependency(str(root / "_toc.yml"))
        self.env.note_dependency(__file__)
        groups = {group: [r.strip() for r in self.options.get(group, "").split(",") if r.strip()] for group in GROUPS}
        try:
            book = extract_book(root)
        except ExtractionError as error:
            logger.warning(f"verification triangle: {error}", location=self.get_location())
            return []
        known = {route for routes in groups.values() for route in routes}
        chapters = []
        for page, claims in book:
            self.env.note_dependency(str(root / f"{page.docname}.ipynb"))
            for claim in claims:
                if claim.kind == NUMERIC and not (claim.against and set(claim.against) <= known):
                    logger.warning(f"verification triangle: {page.docname}.ipynb, cell {claim.cell}: the check "
                                   f"{claim.text!r} is against {claim.against}, in none of the groups {groups}",
                                   location=self.get_location())
            headings, _ = read_notebook(root / f"{page.docname}.ipynb")
            title = headings[0][1].text if headings else page.docname
            chapters.append({"docname": page.docname, "number": page.number, "title": title,
                             **count_checks(claims, groups)})
        figure = nodes.figure("", verification_triangle(chapters=chapters), classes=["vtri-figure"])
        if "caption" in self.options:
            figure += nodes.caption("", "", *rich_text(self.options["caption"]))
        self.add_name(figure)
        return [figure]


def setup(app):
    app.add_node(verification_triangle, html=(visit_triangle_html, None))
    app.add_directive("verification-triangle", VerificationTriangle)
    add_stylesheet(app, "verification_triangle.css")
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
