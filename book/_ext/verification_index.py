"""The book's *Verification index*: every claim the chapters check, generated at build time.

Every chapter states what it checks in words: ``assert_identity(lhs, rhs, claim="...")`` for an
identity SymPy proves, ``assert_close(actual, expected, claim="...")`` for a numeric check, and a few
chapter-local wrappers (``assert_within``, ``assert_within_sampling_error``, ...) that pass a claim on.
This extension reads the notebooks listed in ``_toc.yml``, walks their code cells with :mod:`ast`,
and collects every call with a ``claim=`` keyword (plain ``assert`` statements carry no claim and are
not listed).  The directive ``{verification-index}`` renders a summary table and one section per
chapter; each claim links to the section of the chapter that holds it, resolved through the
chapter's own doctree, so that the anchors are the ones Sphinx wrote.

The extractor (:func:`extract_book`) needs neither Sphinx nor a build; the tests use it directly.
"""

from __future__ import annotations

import ast
import copy
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from docutils import nodes
from sphinx import addnodes
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

__version__ = "1.0"

logger = logging.getLogger(__name__)

IDENTITY = "identity"
NUMERIC = "numeric"

# What a numeric check compares with, recognised in the claim's words and in the source of the call's
# other arguments.  An entry may match several (e.g. autograd's Jacobian against SymPy's).
REFERENCES: list[tuple[str, str]] = [
    ("SymPy", r"sympy|lambdif|symbolic|\bsp\.|series"),
    ("torch.autograd", r"autograd"),
    ("torch.func", r"torch\.func|vmap|\bjvp\b|\bvjp\b|torch's forward mode"),
    ("torch.optim", r"torch\.optim|torch's (?:sgd|adam|adamw|rmsprop|adagrad)\b|lambdalr"),
    ("other PyTorch", r"torch\.nn\.functional|\bF\.linear|plain torch|clip_grad_norm_|flop.?counter|flops counted|as counted|sum_to_size"),
    ("finite differences", r"central.difference|numerical_gradient|finite.difference|element loop"),
    ("Monte Carlo", r"monte carlo|sampling_error|sample variance"),
]
OTHER_REFERENCE = "formula or second route"
"""A numeric check that names none of the above: a formula derived in the text, or a second bplib route."""


# ----------------------------------------------------------------------------------------------------
# The table of contents and the notebooks


@dataclass(frozen=True)
class Chapter:
    docname: str  # "book/ch01_chain_rule"
    path: Path
    number: int | None  # as the book numbers it: continuous over the numbered parts


def toc_chapters(root: Path) -> list[Chapter]:
    """The notebooks of ``_toc.yml`` in reading order, numbered as Jupyter Book numbers them.

    Jupyter Book 1.x numbers the chapters of ``numbered`` parts continuously across parts
    (``use_multitoc_numbering``, on by default).
    """
    toc = yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8"))
    chapters: list[Chapter] = []
    counter = 0

    def add(entry, numbered):
        nonlocal counter
        if isinstance(entry, dict) and "file" in entry:
            docname = str(Path(entry["file"]).with_suffix("")) if entry["file"].endswith(".ipynb") else entry["file"]
            number = None
            if numbered:
                counter += 1
                number = counter
            path = root / f"{docname}.ipynb"
            if path.is_file():
                chapters.append(Chapter(docname, path, number))
            for child in entry.get("sections", []) or []:
                add(child, False)

    for part in toc.get("parts", []) or []:
        for entry in part.get("chapters", []) or []:
            add(entry, bool(part.get("numbered")))
    for entry in toc.get("chapters", []) or []:
        add(entry, bool(toc.get("defaults", {}).get("numbered")))
    return chapters


@dataclass(frozen=True)
class Heading:
    level: int
    text: str  # the Markdown source of the heading, e.g. "The $L$-layer network"
    occurrence: int  # how many earlier headings of the notebook have the same normalised text


_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```+|~~~+|:::+)")


def normalise_heading(text: str) -> str:
    """Heading text reduced to lower-case letters and digits: the Markdown source and the rendered
    title (``astext()``, where ``$L$`` becomes ``L`` and ```code``` becomes ``code``) agree on it."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # [link](url) -> link
    text = re.sub(r"\{[a-z:-]+\}`([^`]*)`", r"\1", text)  # {role}`x` -> x
    return re.sub(r"[^0-9a-z]+", "", text.lower())


def markdown_headings(source: str) -> list[tuple[int, str]]:
    headings, fence = [], None
    for line in source.splitlines():
        match = _FENCE.match(line)
        if match:
            marker = match.group(1)[0] * 3
            if fence is None:
                fence = marker
            elif fence == marker:
                fence = None
            continue
        if fence is None and (heading := _HEADING.match(line)):
            headings.append((len(heading.group(1)), heading.group(2)))
    return headings


def code_cells(notebook: dict):
    """(cell index, source) of every code cell, with IPython magics and shell lines blanked out."""
    for index, cell in enumerate(notebook["cells"]):
        if cell["cell_type"] != "code":
            continue
        source = "".join(cell["source"])
        if source.lstrip().startswith("%%"):
            continue
        lines = [re.sub(r"^(\s*)[%!].*$", r"\1pass", line) for line in source.splitlines()]
        yield index, "\n".join(lines)


# ----------------------------------------------------------------------------------------------------
# The claims


@dataclass
class Claim:
    docname: str
    cell: int  # index of the code cell in the notebook
    line: int  # line of the call in the cell, from 1
    function: str  # the function called: assert_identity, assert_close, assert_within, ...
    kind: str  # IDENTITY or NUMERIC
    parts: list[tuple[bool, str]]  # the claim: (False, literal text) and (True, placeholder source)
    loops: list[str] = field(default_factory=list)  # "for k in range(1, 7)", outermost first
    helper: str | None = None  # the function the call sits in, when it is a helper of the chapter
    helper_calls: int = 0  # how often the chapter calls that helper
    references: list[str] = field(default_factory=list)  # for numeric checks: what it is compared with
    heading: Heading | None = None  # the nearest preceding heading of the notebook

    @property
    def text(self) -> str:
        return "".join("{" + s + "}" if placeholder else s for placeholder, s in self.parts)


def _source(node: ast.AST, cell_source: str) -> str:
    return ast.get_source_segment(cell_source, node) or ast.unparse(node)


def _claim_parts(value: ast.expr, cell_source: str) -> list[tuple[bool, str]]:
    """The claim string as literal text and placeholders; f-string fields keep their source."""
    if isinstance(value, ast.Constant) and isinstance(value.value, str):
        return [(False, value.value)]
    if isinstance(value, ast.JoinedStr):
        parts: list[tuple[bool, str]] = []
        for piece in value.values:
            if isinstance(piece, ast.Constant):
                parts.append((False, str(piece.value)))
            elif isinstance(piece, ast.FormattedValue):
                parts.append((True, ast.unparse(piece.value)))
        return parts
    if isinstance(value, ast.BinOp) and isinstance(value.op, ast.Add):
        return _claim_parts(value.left, cell_source) + _claim_parts(value.right, cell_source)
    return [(True, _source(value, cell_source))]


def _loop_text(node: ast.AST) -> str:
    if isinstance(node, (ast.For, ast.comprehension)):
        target = ast.unparse(node.target)
        if isinstance(node.target, ast.Tuple) and target.startswith("(") and target.endswith(")"):
            target = target[1:-1]
        return f"for {target} in {ast.unparse(node.iter)}"
    if isinstance(node, ast.While):
        return f"while {ast.unparse(node.test)}"
    raise TypeError(node)


class _Walker(ast.NodeVisitor):
    """Visits every call with a ``claim=`` keyword, knowing the loops and the function around it."""

    def __init__(self, source: str):
        self.source = source
        self.loops: list[ast.AST] = []
        self.functions: list[ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda] = []
        self.found: list[tuple[ast.Call, list[ast.AST], list]] = []
        self.calls: list[tuple[ast.Call, list[ast.AST]]] = []  # every call, with its loops

    def _scoped(self, node, stack):
        stack.append(node)
        self.generic_visit(node)
        stack.pop()

    def visit_For(self, node):
        self.visit(node.iter)
        self.loops.append(node)
        for child in [node.target, *node.body]:
            self.visit(child)
        self.loops.pop()
        for child in node.orelse:
            self.visit(child)

    visit_AsyncFor = visit_For

    def visit_While(self, node):
        self._scoped(node, self.loops)

    def _comprehension(self, node):
        generators = list(node.generators)
        self.loops.extend(generators)
        self.generic_visit(node)
        del self.loops[len(self.loops) - len(generators) :]

    visit_ListComp = visit_SetComp = visit_GeneratorExp = visit_DictComp = _comprehension

    def visit_FunctionDef(self, node):
        saved, self.loops = self.loops, []
        self._scoped(node, self.functions)
        self.loops = saved

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Call(self, node):
        self.calls.append((node, list(self.loops)))
        if any(k.arg == "claim" for k in node.keywords):
            self.found.append((node, list(self.loops), list(self.functions)))
        self.generic_visit(node)


def _parameters(function) -> set[str]:
    args = function.args
    return {a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs]}


def _called_name(call: ast.Call) -> str:
    return ast.unparse(call.func)


def _forwards_claim(call: ast.Call, functions) -> bool:
    """``claim=claim`` inside a function with a ``claim`` parameter: a wrapper passing its claim on."""
    value = next(k.value for k in call.keywords if k.arg == "claim")
    return (
        bool(functions)
        and isinstance(value, ast.Name)
        and value.id in _parameters(functions[-1])
    )


def _classify(function: str, wrappers: dict[str, str]) -> str:
    name = function.rsplit(".", 1)[-1]
    seen = set()
    while name in wrappers and name not in seen:  # a wrapper is what it wraps
        seen.add(name)
        name = wrappers[name].rsplit(".", 1)[-1]
    return IDENTITY if name == "assert_identity" else NUMERIC


def _references(text: str) -> list[str]:
    found = [label for label, pattern in REFERENCES if re.search(pattern, text, re.IGNORECASE)]
    return found or [OTHER_REFERENCE]


def _arguments(helper, call: ast.Call) -> dict[str, ast.expr]:
    params = [a.arg for a in [*helper.args.posonlyargs, *helper.args.args]]
    given = {p: a for p, a in zip(params, call.args)}
    given.update({k.arg: k.value for k in call.keywords if k.arg})
    return given


def _substitute(parts, helper, sites):
    """Fill a helper's parameters into the claim with the arguments its call sites pass (when they agree)."""
    filled: list[tuple[bool, str]] = []
    for placeholder, text in parts:
        values = [_arguments(helper, call).get(text) for call, _, _ in sites] if placeholder else []
        sources = {_source(v, src) if v is not None else None for v, (_, _, src) in zip(values, sites)}
        if placeholder and values and None not in sources and len(sources) == 1:
            filled.extend(_claim_parts(values[0], sites[0][2]))
        else:
            filled.append((placeholder, text))
    merged: list[tuple[bool, str]] = []
    for placeholder, text in filled:  # join neighbouring literal pieces
        if merged and not placeholder and not merged[-1][0]:
            merged[-1] = (False, merged[-1][1] + text)
        else:
            merged.append((placeholder, text))
    return merged


def _assignments(trees) -> dict[str, list[str]]:
    """name -> source of every statement that assigns it (or an item of it), in reading order."""
    found: dict[str, list[str]] = {}
    for tree, source in trees:
        for node in ast.walk(tree):
            if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    while isinstance(target, (ast.Subscript, ast.Attribute)):
                        target = target.value
                    if isinstance(target, ast.Name):
                        found.setdefault(target.id, []).append(_source(node, source))
    return found


def _ranges(loops, assignments) -> list[str]:
    """What the loops range over: the source of the values bound to the names in their iterables."""
    texts = []
    for loop in loops:
        iterable = getattr(loop, "iter", None)
        if iterable is None:
            continue
        for name in {n.id for n in ast.walk(iterable) if isinstance(n, ast.Name)}:
            texts.extend(assignments.get(name, []))
    return texts


class ExtractionError(Exception):
    pass


def extract_chapter(chapter: Chapter) -> list[Claim]:
    """Every claim of one chapter notebook, in reading order."""
    notebook = json.loads(chapter.path.read_text(encoding="utf-8"))
    headings: dict[int, Heading] = {}  # cell index -> the heading in force at the start of the cell
    current, seen = None, {}
    for index, cell in enumerate(notebook["cells"]):
        headings[index] = current
        if cell["cell_type"] == "markdown":
            for level, text in markdown_headings("".join(cell["source"])):
                key = normalise_heading(text)
                current = Heading(level, text, seen.get(key, 0))
                seen[key] = seen.get(key, 0) + 1

    parsed = []
    for index, source in code_cells(notebook):
        try:
            tree = ast.parse(source)
        except SyntaxError as error:
            raise ExtractionError(f"{chapter.path.name}, cell {index}: cannot parse: {error}") from error
        walker = _Walker(source)
        walker.visit(tree)
        parsed.append((index, source, tree, walker))

    # Chapter-local wrappers: functions with a `claim` parameter, and what they call with it.
    wrappers: dict[str, str] = {}
    helpers: dict[str, ast.FunctionDef] = {}
    for _, _, tree, walker in parsed:
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                helpers[node.name] = node
                if "claim" in _parameters(node):
                    forwarded = [
                        _called_name(c)
                        for c in ast.walk(node)
                        if isinstance(c, ast.Call)
                        and any(k.arg == "claim" and isinstance(k.value, ast.Name) and k.value.id == "claim" for k in c.keywords)
                    ]
                    wrappers[node.name] = forwarded[0] if forwarded else "assert_close"

    # Where each helper is called from (its loops), for claims made inside a helper.
    call_sites: dict[str, list[tuple[ast.Call, list[ast.AST], str]]] = {}
    for _, source, _, walker in parsed:
        for call, loops in walker.calls:
            if isinstance(call.func, ast.Name) and call.func.id in helpers:
                call_sites.setdefault(call.func.id, []).append((call, loops, source))

    assignments = _assignments([(tree, source) for _, source, tree, _ in parsed])
    cell_assignments = {index: _assignments([(tree, source)]) for index, source, tree, _ in parsed}
    claims: list[Claim] = []
    for index, source, _, walker in parsed:
        for call, loops, functions in walker.found:
            if _forwards_claim(call, functions):
                continue  # a wrapper's own body: its callers' claims are the entries
            claim_value = next(k.value for k in call.keywords if k.arg == "claim")
            parts = _claim_parts(claim_value, source)
            others = [_source(a, source) for a in call.args] + [
                _source(k.value, source) for k in call.keywords if k.arg != "claim"
            ]
            loop_texts = [_loop_text(loop) for loop in loops]
            helper = None
            helper_calls = 0
            ranges = _ranges(loops, cell_assignments[index])
            outer = [f for f in functions if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))]
            if outer:
                helper = outer[0].name
                sites = call_sites.get(helper, [])
                helper_calls = len(sites)
                if sites and len(outer) == 1:
                    parts = _substitute(parts, outer[0], sites)
                if len(sites) == 1:
                    loop_texts = [_loop_text(loop) for loop in sites[0][1]] + loop_texts
                for site, site_loops, site_source in sites:
                    others.append(_source(site, site_source))
                    ranges.extend(_ranges(site_loops, assignments))
            others.extend(ranges)
            function = _called_name(call)
            kind = _classify(function, wrappers)
            text = "".join(s for _, s in parts)
            claims.append(
                Claim(
                    docname=chapter.docname,
                    cell=index,
                    line=call.lineno,
                    function=function,
                    kind=kind,
                    parts=parts,
                    loops=loop_texts,
                    helper=helper,
                    helper_calls=helper_calls,
                    references=[] if kind == IDENTITY else _references(" ".join([text, function, *others])),
                    heading=headings[index],
                )
            )
    return claims


def notebook_headings(chapter: Chapter) -> list[Heading]:
    notebook = json.loads(chapter.path.read_text(encoding="utf-8"))
    result, seen = [], {}
    for cell in notebook["cells"]:
        if cell["cell_type"] == "markdown":
            for level, text in markdown_headings("".join(cell["source"])):
                key = normalise_heading(text)
                result.append(Heading(level, text, seen.get(key, 0)))
                seen[key] = seen.get(key, 0) + 1
    return result


def extract_book(root: Path) -> list[tuple[Chapter, list[Claim]]]:
    return [(chapter, extract_chapter(chapter)) for chapter in toc_chapters(Path(root))]


def chapter_title(chapter: Chapter) -> str:
    headings = notebook_headings(chapter)
    return headings[0].text if headings else chapter.docname


# ----------------------------------------------------------------------------------------------------
# Rendering


class verification_section_ref(nodes.Inline, nodes.Element):
    """Placeholder for a link to a heading of a chapter; resolved once every chapter has been read."""


def _visit_unresolved(self, node):  # never reached: every placeholder is replaced at doctree-resolved
    raise nodes.SkipNode


def _text_with_math(text: str) -> list[nodes.Node]:
    """A heading's Markdown source as text, code and inline math (enough for headings)."""
    result: list[nodes.Node] = []
    for piece in re.split(r"(\$[^$]+\$|`[^`]+`)", text):
        if not piece:
            continue
        if piece.startswith("$") and piece.endswith("$") and len(piece) > 1:
            result.append(nodes.math(piece[1:-1], piece[1:-1]))
        elif piece.startswith("`") and piece.endswith("`") and len(piece) > 1:
            result.append(nodes.literal(piece[1:-1], piece[1:-1]))
        else:
            result.append(nodes.Text(piece))
    return result


def _claim_nodes(claim: Claim) -> list[nodes.Node]:
    result: list[nodes.Node] = []
    for placeholder, text in claim.parts:
        if placeholder:
            result.append(nodes.emphasis(text, text, classes=["vix-placeholder"]))
        else:
            result.append(nodes.Text(text))
    return result


def _code(text: str, limit: int = 70) -> nodes.literal:
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return nodes.literal(text, text)


def _loops_paragraph(claim: Claim) -> nodes.paragraph | None:
    if not claim.loops and not claim.helper:
        return None
    para = nodes.paragraph(classes=["vix-context"])
    para += nodes.Text("(")
    pieces: list[list[nodes.Node]] = []
    if claim.helper:
        if claim.helper_calls == 1:
            pieces.append([nodes.Text("checked inside "), _code(claim.helper + "()")])
        else:
            pieces.append(
                [nodes.Text("checked inside "), _code(claim.helper + "()"), nodes.Text(f", called {claim.helper_calls}×")]
            )
    for loop in claim.loops:
        match = re.match(r"^(for (.*?) in (.*)|while (.*))$", loop, re.S)
        if match and match.group(2) is not None:
            pieces.append([nodes.Text("for each "), _code(match.group(2)), nodes.Text(" in "), _code(match.group(3))])
        else:
            pieces.append([nodes.Text("while "), _code(match.group(4) if match else loop)])
    for i, piece in enumerate(pieces):
        if i:
            para += nodes.Text(", ")
        para.extend(piece)
    para += nodes.Text(")")
    return para


def _table(headers: list[str], rows: list[list[nodes.Node | str]], widths: list[int], classes=()) -> nodes.table:
    table = nodes.table(classes=["vix-table", *classes])
    group = nodes.tgroup(cols=len(headers))
    table += group
    for width in widths:
        group += nodes.colspec(colwidth=width)
    thead = nodes.thead()
    group += thead
    row = nodes.row()
    for header in headers:
        row += nodes.entry("", nodes.paragraph(header, header))
    thead += row
    tbody = nodes.tbody()
    group += tbody
    for cells in rows:
        row = nodes.row()
        for cell in cells:
            entry = nodes.entry()
            if isinstance(cell, str):
                entry += nodes.paragraph(cell, cell)
            elif isinstance(cell, list):
                entry.extend(cell)
            else:
                entry += cell
            row += entry
        tbody += row
    return table


def _count(claims: list[Claim], reference: str) -> int:
    return sum(1 for c in claims if c.kind == NUMERIC and reference in c.references)


SHORT = {"torch.autograd": "autograd", OTHER_REFERENCE: "formula, 2nd route", "finite differences": "finite diff."}
REFERENCE_COLUMNS = [label for label, _ in REFERENCES] + [OTHER_REFERENCE]


def _chapter_label(chapter: Chapter, title: str) -> str:
    return f"Chapter {chapter.number}: {title}" if chapter.number is not None else title


class VerificationIndexDirective(SphinxDirective):
    """``{verification-index}``: the summary table and one section per chapter."""

    has_content = False
    required_arguments = 0
    optional_arguments = 0

    def run(self) -> list[nodes.Node]:
        root = Path(self.env.srcdir)
        self.env.note_dependency(str(root / "_toc.yml"))
        try:
            book = extract_book(root)
        except ExtractionError as error:
            logger.warning(f"verification index: {error}", location=(self.env.docname, self.lineno))
            return []
        for chapter, _ in book:
            self.env.note_dependency(str(chapter.path))
        if not hasattr(self.env, "verification_index_docs"):
            self.env.verification_index_docs = set()
        self.env.verification_index_docs.add(self.env.docname)

        result: list[nodes.Node] = [self._summary(book)]
        for chapter, claims in book:
            result.append(self._chapter_section(chapter, claims))
        return result

    def _doc_link(self, chapter: Chapter, text: str | None = None) -> nodes.Node:
        ref = addnodes.pending_xref(
            "",
            refdomain="std",
            reftype="doc",
            reftarget="/" + chapter.docname,
            refexplicit=text is not None,
            refdoc=self.env.docname,
            refwarn=True,
        )
        ref += nodes.inline(text or "", text or "")
        return ref

    def _summary(self, book) -> nodes.Node:
        used = [r for r in REFERENCE_COLUMNS if any(_count(claims, r) for _, claims in book)]
        headers = ["Chapter", "SymPy proofs", "Numeric checks", *[f"vs {SHORT.get(r, r)}" for r in used]]
        rows = []
        for chapter, claims in book:
            label = nodes.paragraph()
            if chapter.number is not None:
                label += nodes.Text(f"{chapter.number}. ")
            label += self._doc_link(chapter)
            identities = sum(1 for c in claims if c.kind == IDENTITY)
            rows.append([label, str(identities), str(len(claims) - identities), *[str(_count(claims, r)) for r in used]])
        everything = [c for _, claims in book for c in claims]
        identities = sum(1 for c in everything if c.kind == IDENTITY)
        total = [str(identities), str(len(everything) - identities), *[str(_count(everything, r)) for r in used]]
        rows.append([nodes.paragraph("", "", nodes.strong("Total", "Total"))] + [
            nodes.paragraph("", "", nodes.strong(t, t)) for t in total
        ])
        table = _table(headers, rows, [30, 10, 10, *[8] * len(used)], classes=["vix-summary"])
        container = nodes.container(classes=["vix-summary-wrapper"])
        container += nodes.paragraph(
            "",
            f"{len(book)} chapters, {identities} identities proved by SymPy and {len(everything) - identities} "
            "numeric checks. A numeric check may compare with more than one reference; "
            f"“{OTHER_REFERENCE}” counts the checks against a formula derived in the text "
            "or against a second computation of the same quantity.",
        )
        container += table
        return container

    def _chapter_section(self, chapter: Chapter, claims: list[Claim]) -> nodes.section:
        title_text = chapter_title(chapter)
        label = _chapter_label(chapter, "")
        section = nodes.section()
        title = nodes.title()
        title += nodes.Text(label)
        title.extend(_text_with_math(title_text))
        section += title
        section["names"].append(nodes.fully_normalize_name(title.astext()))
        self.state.document.note_implicit_target(section, section)

        identities = [c for c in claims if c.kind == IDENTITY]
        numeric = [c for c in claims if c.kind == NUMERIC]
        summary = nodes.paragraph()
        summary += nodes.strong(str(len(identities)), str(len(identities)))
        summary += nodes.Text(" identities proved by SymPy, ")
        summary += nodes.strong(str(len(numeric)), str(len(numeric)))
        summary += nodes.Text(" numeric checks")
        counts = [(r, _count(claims, r)) for r in REFERENCE_COLUMNS]
        counts = [(r, n) for r, n in counts if n]
        if counts:
            summary += nodes.Text(" (" + ", ".join(f"{n} against {r}" for r, n in counts) + ")")
        summary += nodes.Text(". Read the chapter: ")
        summary += self._doc_link(chapter)
        summary += nodes.Text(".")
        section += summary

        rows = []
        for i, claim in enumerate(claims, start=1):
            number = f"{chapter.number}.{i}" if chapter.number is not None else str(i)
            claim_cell = [nodes.paragraph("", "", *_claim_nodes(claim))]
            context = _loops_paragraph(claim)
            if context is not None:
                claim_cell.append(context)
            if claim.kind == IDENTITY:
                kind = nodes.paragraph("", "", nodes.inline("SymPy proof", "SymPy proof", classes=["sd-badge", "sd-bg-success", "sd-bg-text-success"]))
            else:
                kind = nodes.paragraph()
                kind += nodes.inline("numeric", "numeric", classes=["sd-badge", "sd-bg-info", "sd-bg-text-info"])
                kind += nodes.Text(" vs " + ", ".join(claim.references))
            where = nodes.paragraph()
            if claim.heading is not None:
                where += verification_section_ref(
                    "",
                    docname=chapter.docname,
                    heading=claim.heading.text,
                    occurrence=claim.heading.occurrence,
                )
            rows.append([number, claim_cell, kind, where])
        if rows:
            section += _table(["#", "Claim", "Checked by", "Where"], rows, [6, 58, 18, 18], classes=["vix-chapter"])
        return section


def _title_copy(section: nodes.section) -> list[nodes.Node]:
    title = section[0] if len(section) and isinstance(section[0], nodes.title) else None
    if title is None:
        return [nodes.Text("(untitled)")]
    children = []
    for child in title.children:
        child = child.deepcopy()
        for xref in list(child.findall(addnodes.pending_xref)) if isinstance(child, nodes.Element) else []:
            xref.replace_self(nodes.Text(xref.astext()))
        if isinstance(child, (addnodes.pending_xref, nodes.reference)):
            child = nodes.Text(child.astext())
        children.append(child)
    return children


def resolve_section_refs(app, doctree: nodes.document, fromdocname: str) -> None:
    """Replace each placeholder by a link to the section of the chapter, with the section's title."""
    placeholders = list(doctree.findall(verification_section_ref))
    if not placeholders:
        return
    sections_by_doc: dict[str, dict[tuple[str, int], nodes.section]] = {}
    for node in placeholders:
        docname = node["docname"]
        if docname not in sections_by_doc:
            table: dict[tuple[str, int], nodes.section] = {}
            counts: dict[str, int] = {}
            for section in app.env.get_doctree(docname).findall(nodes.section):
                title = section[0].astext() if len(section) and isinstance(section[0], nodes.title) else ""
                key = normalise_heading(title)
                table[(key, counts.get(key, 0))] = section
                counts[key] = counts.get(key, 0) + 1
            sections_by_doc[docname] = table
        section = sections_by_doc[docname].get((normalise_heading(node["heading"]), node["occurrence"]))
        if section is None or not section["ids"]:
            logger.warning(
                f"verification index: no section {node['heading']!r} in {docname}",
                location=node,
            )
            node.replace_self(nodes.Text(node["heading"]))
            continue
        uri = app.builder.get_relative_uri(fromdocname, docname) + "#" + section["ids"][0]
        reference = nodes.reference("", "", internal=True, refuri=uri, classes=["vix-where"])
        reference.extend(_title_copy(section))
        node.replace_self(reference)


CSS = """
.vix-table td, .vix-table th { vertical-align: top; }
.vix-table p { margin-bottom: 0.2rem; }
.vix-chapter td:first-child { white-space: nowrap; color: var(--pst-color-text-muted); }
.vix-summary { font-size: 0.85em; }
.vix-summary td:not(:first-child), .vix-summary th:not(:first-child) { text-align: right; }
.vix-context { font-size: 0.85em; color: var(--pst-color-text-muted); }
.vix-context code { font-size: 0.95em; }
.vix-placeholder { color: var(--pst-color-primary); }
.vix-placeholder::before { content: "⟨"; font-style: normal; }
.vix-placeholder::after { content: "⟩"; font-style: normal; }
"""


def _write_css(app, exception) -> None:
    if exception is None and app.builder.format == "html":
        static = Path(app.outdir) / "_static"
        static.mkdir(parents=True, exist_ok=True)
        (static / "verification_index.css").write_text(CSS.lstrip(), encoding="utf-8")


def _always_reread(app, env, added, changed, removed):
    """The index is cheap to regenerate: re-read its page on every build, so that it never goes stale."""
    return sorted(getattr(env, "verification_index_docs", set()) - set(removed))


def _purge(app, env, docname):
    getattr(env, "verification_index_docs", set()).discard(docname)


def _merge(app, env, docnames, other):
    env.verification_index_docs = getattr(env, "verification_index_docs", set()) | (
        getattr(other, "verification_index_docs", set()) & set(docnames)
    )


def setup(app):
    app.connect("env-get-outdated", _always_reread)
    app.connect("env-purge-doc", _purge)
    app.connect("env-merge-info", _merge)
    app.add_node(
        verification_section_ref,
        html=(_visit_unresolved, None),
        latex=(_visit_unresolved, None),
        text=(_visit_unresolved, None),
    )
    app.add_directive("verification-index", VerificationIndexDirective)
    app.connect("doctree-resolved", resolve_section_refs)
    app.add_css_file("verification_index.css")
    # The section links get their titles, inline math included, only once every page is read, after
    # Sphinx decided which pages need MathJax: load it on every page.
    app.set_html_assets_policy("always")
    app.connect("build-finished", _write_css)
    return {"version": __version__, "parallel_read_safe": True, "parallel_write_safe": True}
