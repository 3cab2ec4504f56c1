"""The book's *Verification index*: every claim the chapters check, generated at build time.

Every check says what it checks, ``claim=...``: ``assert_identity(lhs, rhs, claim=..., sizes=...)`` for an
identity SymPy proves (``sizes="all"``: for every size), ``assert_close(actual, expected, claim=...,
against=...)`` for a numeric check, ``against`` naming the route compared with, and chapter-local wrappers
that pass both on.  The extractor (:func:`extract_book`, which the tests use without Sphinx) walks the code
cells of the notebooks of ``_toc.yml`` with :mod:`ast` and collects every call with a ``claim=``, the loops
around it and, inside a chapter's helper, the helper's call sites, which fill in its parameters where they
agree.  The ``{verification-index}`` directive renders a summary table and one section per chapter; each
claim links to its section of the chapter, resolved through the chapter's doctree (the anchors Sphinx wrote).
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from book_toc import Page, toc_notebooks
from docutils import nodes
from docutils.parsers.rst import directives
from docutils_tables import Row, rich_text, table
from sphinx import addnodes
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective
from static_assets import add_stylesheet

logger = logging.getLogger(__name__)

IDENTITY, NUMERIC, ALL_SIZES = "identity", "numeric", "all"
_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```+|~~~+|:::+)")


@dataclass(frozen=True)
class Heading:
    level: int
    text: str  # the Markdown source of the heading, e.g. "The $L$-layer network"
    occurrence: int  # how many earlier headings of the notebook have the same normalised text


@dataclass
class Claim:
    docname: str
    cell: int  # index of the cell in the notebook
    line: int  # line of the call in the cell, from 1
    function: str  # the function called: assert_identity, assert_close, assert_within, ...
    kind: str  # IDENTITY or NUMERIC
    parts: list[tuple[bool, str]]  # the claim: (False, literal text) and (True, placeholder source)
    loops: list[str] = field(default_factory=list)  # "for k in range(1, 7)", outermost first
    helper: str | None = None  # the chapter's function the call sits in
    helper_calls: int = 0  # how often the chapter calls that helper
    against: list[str] = field(default_factory=list)  # numeric checks: the routes compared with
    sizes: list[tuple[bool, str]] | None = None  # identities: the sizes, as parts; None: fixed sizes
    heading: Heading | None = None  # the nearest preceding heading of the notebook

    @property
    def text(self) -> str:
        return _joined(self.parts)


class ExtractionError(Exception):
    pass


def _joined(parts) -> str:
    return "".join("{" + s + "}" if placeholder else s for placeholder, s in parts)


def normalise_heading(text: str) -> str:
    """Heading text reduced to lower-case letters and digits: the Markdown source and the rendered
    title (``astext()``, where ``$L$`` becomes ``L`` and ```code``` becomes ``code``) agree on it."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # [link](url) -> link
    text = re.sub(r"\{[a-z:-]+\}`([^`]*)`", r"\1", text)  # {role}`x` -> x
    return re.sub(r"[^0-9a-z]+", "", text.lower())


def markdown_headings(source: str) -> list[tuple[int, str]]:
    """(level, text) of the Markdown headings of a cell, outside fenced blocks and directives."""
    headings, fence = [], None
    for line in source.splitlines():
        if match := _FENCE.match(line):
            marker = match.group(1)[0] * 3
            fence = marker if fence is None else None if fence == marker else fence
        elif fence is None and (heading := _HEADING.match(line)):
            headings.append((len(heading.group(1)), heading.group(2)))
    return headings


def read_notebook(path: Path) -> tuple[list[tuple[int, Heading]], list[tuple[int, str, ast.Module]]]:
    """(cell index, heading) of every heading, and (cell index, source, syntax tree) of every code cell,
    with IPython magics and shell lines made `pass`; both in reading order."""
    headings, seen, code = [], {}, []
    for index, cell in enumerate(json.loads(path.read_text(encoding="utf-8"))["cells"]):
        source = "".join(cell["source"])
        for level, text in markdown_headings(source) if cell["cell_type"] == "markdown" else []:
            key = normalise_heading(text)
            headings.append((index, Heading(level, text, seen.get(key, 0))))
            seen[key] = seen.get(key, 0) + 1
        if cell["cell_type"] == "code" and not source.lstrip().startswith("%%"):
            source = "\n".join(re.sub(r"^(\s*)[%!].*$", r"\1pass", line) for line in source.splitlines())
            try:
                code.append((index, source, ast.parse(source)))
            except SyntaxError as error:
                raise ExtractionError(f"{path.name}, cell {index}: cannot parse: {error}") from error
    return headings, code


def _surroundings(call: ast.Call, parents: dict) -> tuple[list, list]:
    """The loops around a call inside its innermost function (outermost first), and the functions around it."""
    loops, functions, child = [], [], call
    while child in parents:
        parent = parents[child]
        if isinstance(parent, (ast.FunctionDef, ast.AsyncFunctionDef)):
            functions.insert(0, parent)  # loops outside it do not repeat the check: its call sites do
        elif not functions and isinstance(parent, (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)):
            loops[:0] = parent.generators
        elif not functions and (isinstance(parent, ast.While) or isinstance(parent, ast.For) and child in parent.body):
            loops.insert(0, parent)
        child = parent
    return loops, functions


def _keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _parameters(function) -> list[str]:
    return [a.arg for a in [*function.args.posonlyargs, *function.args.args, *function.args.kwonlyargs]]


def _arguments(helper, call: ast.Call) -> dict[str, ast.expr]:
    """The expressions a call passes for the helper's parameters, by name."""
    given = dict(zip(_parameters(helper), call.args))
    given.update({k.arg: k.value for k in call.keywords if k.arg})
    return given


def _loop_text(node) -> str:
    if isinstance(node, ast.While):
        return f"while {ast.unparse(node.test)}"
    target = ast.unparse(node.target)
    if isinstance(node.target, ast.Tuple) and target.startswith("(") and target.endswith(")"):
        target = target[1:-1]
    return f"for {target} in {ast.unparse(node.iter)}"


def _parts(value: ast.expr) -> list[tuple[bool, str]]:
    """A string expression as literal text and placeholders; f-string fields keep their source."""
    if isinstance(value, ast.Constant) and isinstance(value.value, str):
        return [(False, value.value)]
    if isinstance(value, ast.JoinedStr):
        return [(False, str(p.value)) if isinstance(p, ast.Constant) else (True, ast.unparse(p.value))
                for p in value.values]
    if isinstance(value, ast.BinOp) and isinstance(value.op, ast.Add):
        return _parts(value.left) + _parts(value.right)
    return [(True, ast.unparse(value))]


def _substitute(parts, helper, sites):
    """Fill the helper's parameters into a text with the arguments its call sites pass, where they agree."""
    filled = []
    for placeholder, text in parts:
        values = [_arguments(helper, call).get(text) for call, _ in sites] if placeholder else []
        sources = {None if v is None else ast.unparse(v) for v in values}
        filled.extend(_parts(values[0]) if values and len(sources) == 1 and None not in sources
                      else [(placeholder, text)])
    return filled


def _routes(value: ast.expr | None, helper=None, sites=()) -> list[str] | None:
    """The strings a value can take: a literal, either branch of `a if c else b`, or a parameter of the
    helper the check sits in, as every call site passes it.  None when that cannot be read from the code."""
    if isinstance(value, ast.Constant) and isinstance(value.value, str):
        return [value.value]
    if isinstance(value, ast.IfExp):
        branches = [_routes(value.body), _routes(value.orelse)]
        return None if None in branches else list(dict.fromkeys(branches[0] + branches[1]))
    if isinstance(value, ast.Name) and helper is not None and sites and value.id in _parameters(helper):
        found = [_routes(_arguments(helper, call).get(value.id)) for call, _ in sites]
        return None if None in found else list(dict.fromkeys(r for routes in found for r in routes))
    return None


def extract_chapter(page: Page, root: Path) -> list[Claim]:
    """Every claim of one chapter notebook, in reading order."""
    path = root / f"{page.docname}.ipynb"
    headings, code = read_notebook(path)
    parsed = []  # (cell index, tree, every call of the cell in reading order with its surroundings)
    for index, _, tree in code:
        parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
        calls = sorted((n for n in ast.walk(tree) if isinstance(n, ast.Call)), key=lambda n: (n.lineno, n.col_offset))
        parsed.append((index, tree, [(call, *_surroundings(call, parents)) for call in calls]))

    # The chapter's functions; a wrapper takes a claim and passes it on (as `claim=claim`).
    functions = {node.name: node for _, tree, _ in parsed for node in ast.walk(tree)
                 if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}
    forwards = {name: [ast.unparse(call.func) for call in ast.walk(node) if isinstance(call, ast.Call)
                       and isinstance(_keyword(call, "claim"), ast.Name) and _keyword(call, "claim").id == "claim"]
                for name, node in functions.items() if "claim" in _parameters(node)}
    sites: dict[str, list] = {}  # helper name -> (call, loops) of every call of it
    for call, loops, _ in (entry for _, _, cell_calls in parsed for entry in cell_calls):
        if isinstance(call.func, ast.Name) and call.func.id in functions:
            sites.setdefault(call.func.id, []).append((call, loops))

    def kind(function: str, seen=()) -> str:  # a wrapper is what it wraps
        name = function.rsplit(".", 1)[-1]
        if forwards.get(name) and name not in seen:
            return kind(forwards[name][0], (*seen, name))
        return IDENTITY if name == "assert_identity" else NUMERIC

    claims = []
    for index, _, cell_calls in parsed:
        for call, loops, enclosing in cell_calls:
            if (value := _keyword(call, "claim")) is None:
                continue
            if isinstance(value, ast.Name) and enclosing and value.id in _parameters(enclosing[-1]):
                continue  # a wrapper's own body: its callers' claims are the entries
            helper = enclosing[0] if enclosing else None
            calls = sites.get(helper.name, []) if helper else []
            parts, loop_texts = _parts(value), [_loop_text(loop) for loop in loops]
            sizes = None if _keyword(call, "sizes") is None else _parts(_keyword(call, "sizes"))
            if calls and len(enclosing) == 1:
                parts = _substitute(parts, helper, calls)
                sizes = sizes and _substitute(sizes, helper, calls)
            if len(calls) == 1:
                loop_texts = [_loop_text(loop) for loop in calls[0][1]] + loop_texts
            function = ast.unparse(call.func)
            claim = Claim(page.docname, index, call.lineno, function, kind(function), parts, loop_texts,
                          helper.name if helper else None, len(calls),
                          heading=next((h for i, h in reversed(headings) if i < index), None))
            if claim.kind == NUMERIC:
                claim.against = _routes(_keyword(call, "against"), helper if len(enclosing) == 1 else None, calls) or []
            else:
                claim.sizes = sizes
            claims.append(claim)
    return claims


def extract_book(root: Path) -> list[tuple[Page, list[Claim]]]:
    """The claims of every chapter notebook of `_toc.yml`, in reading order."""
    return [(page, extract_chapter(page, Path(root))) for page in toc_notebooks(Path(root))]


class verification_section_ref(nodes.Inline, nodes.Element):
    """A link to a heading of a chapter, resolved once every chapter has been read."""


def _words(parts) -> list[nodes.Node]:
    return [nodes.emphasis(s, s, classes=["vix-placeholder"]) if hole else nodes.Text(s) for hole, s in parts]


def _code(text: str, limit: int = 70) -> nodes.literal:
    text = text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
    return nodes.literal(text, text)


def _context(claim: Claim) -> nodes.paragraph | None:
    """Where a claim is repeated: the helper it sits in and the loops around it."""
    pieces = []
    if claim.helper:
        calls = "" if claim.helper_calls == 1 else f", called {claim.helper_calls}×"
        pieces.append([nodes.Text("checked inside "), _code(claim.helper + "()"), nodes.Text(calls)])
    for loop in claim.loops:
        if loop.startswith("while "):
            pieces.append([nodes.Text("while "), _code(loop[6:])])
        else:
            target, iterable = re.match(r"for (.*?) in (.*)", loop, re.S).groups()
            pieces.append([nodes.Text("for each "), _code(target), nodes.Text(" in "), _code(iterable)])
    if not pieces:
        return None
    para = nodes.paragraph("", "(", classes=["vix-context"])
    for i, piece in enumerate(pieces):
        para.extend(([nodes.Text(", ")] if i else []) + piece)
    para += nodes.Text(")")
    return para


def _checked_by(claim: Claim) -> nodes.paragraph:
    """A badge (SymPy proof or numeric) and the sizes proved for, or the routes compared with."""
    label, colour = ("numeric", "info") if claim.kind == NUMERIC else ("SymPy proof", "success")
    badge = nodes.inline(label, label, classes=["sd-badge", f"sd-bg-{colour}", f"sd-bg-text-{colour}"])
    if claim.kind == NUMERIC:
        return nodes.paragraph("", "", badge, nodes.Text(" vs " + ", ".join(claim.against)))
    sizes = [(False, "sizes as written")] if claim.sizes is None else claim.sizes
    sizes = [(False, "all sizes")] if _joined(sizes) == ALL_SIZES else sizes
    return nodes.paragraph("", "", badge, nodes.Text(", "), *_words(sizes))


def _tally(claims: list[Claim], routes: list[str]) -> list[int]:
    """Identities, those proved for all sizes, numeric checks, and the numeric checks against each route."""
    identities = [c for c in claims if c.kind == IDENTITY]
    return [len(identities), sum(c.sizes is not None and _joined(c.sizes) == ALL_SIZES for c in identities),
            len(claims) - len(identities), *(sum(r in c.against for c in claims) for r in routes)]


class VerificationIndexDirective(SphinxDirective):
    """``{verification-index}``: the summary table and one section per chapter.  Its option ``:routes:`` lists
    the values ``against`` may take, comma-separated, in the order of the summary's columns."""

    option_spec = {"routes": directives.unchanged_required}

    def run(self) -> list[nodes.Node]:
        root = Path(self.env.srcdir)
        self.env.note_dependency(str(root / "_toc.yml"))
        self.env.note_dependency(__file__)  # a new version of this extension renders the page anew
        try:
            book = extract_book(root)
        except ExtractionError as error:
            logger.warning(f"verification index: {error}", location=self.get_location())
            return []
        routes = [route.strip() for route in self.options.get("routes", "").split(",") if route.strip()]
        for page, claims in book:
            self.env.note_dependency(str(root / f"{page.docname}.ipynb"))
            for claim in (c for c in claims if c.kind == NUMERIC and not (c.against and set(c.against) <= set(routes))):
                logger.warning(f"verification index: {page.docname}.ipynb, cell {claim.cell}, line {claim.line}: "
                               f"the check {claim.text!r} must say against= one of {routes}, not {claim.against}",
                               location=self.get_location())
        return [self._summary(book, routes), *(self._chapter(page, claims, routes) for page, claims in book)]

    def _doc_link(self, page: Page) -> addnodes.pending_xref:
        return addnodes.pending_xref("", nodes.inline("", ""), refdomain="std", reftype="doc", refwarn=True,
                                     reftarget="/" + page.docname, refexplicit=False, refdoc=self.env.docname)

    def _summary(self, book, routes) -> nodes.container:
        rows = [Row([[nodes.Text(f"{page.number}. " if page.number else ""), self._doc_link(page)],
                     *map(str, _tally(claims, routes))]) for page, claims in book]
        total = _tally([c for _, claims in book for c in claims], routes)
        rows.append(Row([nodes.strong("Total", "Total"), *(nodes.strong(str(n), str(n)) for n in total)]))
        headers = ["Chapter", "SymPy proofs", "for all sizes", "Numeric checks", *(f"vs {r}" for r in routes)]
        words = (f"{len(book)} chapters, {total[0]} identities proved by SymPy ({total[1]} of them for all sizes) "
                 f"and {total[2]} numeric checks. An entry of a chapter's helper that is called with different "
                 "references counts under each.")
        return nodes.container("", nodes.paragraph(words, words),
                               table(headers, rows, [30, 9, 9, 9, *[8] * len(routes)], ["vix-table", "vix-summary"]),
                               classes=["vix-summary-wrapper"])

    def _chapter(self, page: Page, claims: list[Claim], routes: list[str]) -> nodes.section:
        headings, _ = read_notebook(Path(self.env.srcdir) / f"{page.docname}.ipynb")
        title = nodes.title("", f"Chapter {page.number}: " if page.number else "",
                            *rich_text(headings[0][1].text if headings else page.docname))
        section = nodes.section("", title, names=[nodes.fully_normalize_name(title.astext())])
        self.state.document.note_implicit_target(section, section)
        identities, _, numeric, *against = _tally(claims, routes)
        counts = ", ".join(f"{n} against {r}" for r, n in zip(routes, against) if n)
        section += nodes.paragraph("", "", nodes.strong(str(identities), str(identities)))
        section[-1] += [nodes.Text(" identities proved by SymPy, "), nodes.strong(str(numeric), str(numeric)),
                        nodes.Text(f" numeric checks{f' ({counts})' if counts else ''}. Read the chapter: "),
                        self._doc_link(page), nodes.Text(".")]
        rows = [Row([f"{page.number}.{i}" if page.number else str(i),
                     [p for p in (nodes.paragraph("", "", *_words(claim.parts)), _context(claim)) if p is not None],
                     _checked_by(claim),
                     [] if claim.heading is None else verification_section_ref(
                         "", docname=page.docname, heading=claim.heading.text, occurrence=claim.heading.occurrence)])
                for i, claim in enumerate(claims, start=1)]
        if rows:
            section += table(["#", "Claim", "Checked by", "Where"], rows, [6, 58, 18, 18], ["vix-table", "vix-chapter"])
        return section


def resolve_section_refs(app, doctree: nodes.document, fromdocname: str) -> None:
    """Replace each placeholder by a link to the section of the chapter, with the section's title."""
    sections: dict[str, list[tuple[str, nodes.section]]] = {}  # docname -> (normalised title, section)
    for node in list(doctree.findall(verification_section_ref)):
        docname, key = node["docname"], normalise_heading(node["heading"])
        if docname not in sections:
            found = app.env.get_doctree(docname).findall(nodes.section)
            sections[docname] = [(normalise_heading(s[0].astext()), s) for s in found if isinstance(s[0], nodes.title)]
        same = [s for title, s in sections[docname] if title == key]
        section = same[node["occurrence"]] if node["occurrence"] < len(same) else None
        if section is None or not section["ids"]:
            logger.warning(f"verification index: no section {node['heading']!r} in {docname}", location=node)
            node.replace_self(nodes.Text(node["heading"]))
            continue
        title = section[0].deepcopy()  # the section's title, inline math included, with links made text
        for link in list(title.findall(lambda n: isinstance(n, (addnodes.pending_xref, nodes.reference)))):
            link.replace_self(nodes.Text(link.astext()))
        uri = app.builder.get_relative_uri(fromdocname, docname) + "#" + section["ids"][0]
        node.replace_self(nodes.reference("", "", *title.children, internal=True, refuri=uri, classes=["vix-where"]))


def setup(app):
    app.add_node(verification_section_ref)  # never written: every one is replaced at doctree-resolved
    app.add_directive("verification-index", VerificationIndexDirective)
    app.connect("doctree-resolved", resolve_section_refs)
    add_stylesheet(app, "verification_index.css")
    # The section links get their titles, inline math included, only once every page is read, after
    # Sphinx decided which pages need MathJax: load it on every page.
    app.set_html_assets_policy("always")
    return {"version": "2.0", "parallel_read_safe": True, "parallel_write_safe": True}
