"""The two generated appendices: the notation table (book/notation.yml) and the bplib API reference.

Both pages are generated at build time, the notation table from book/notation.yml by the local extension
book/_ext/notation_table.py and the API reference from bplib's docstrings by Sphinx's autodoc. These tests
keep their sources honest:

* every entry of notation.yml is complete, and the book uses every symbol it lists (in the math of the
  chapter that introduces it), so the table lists nothing the book does not use;
* every group of notation.yml is rendered by a directive on the notation page;
* every public name of every public bplib module (found by walking the package, so that a new module is
  included) is documented on the API page (and has a docstring, without which autodoc would silently leave it
  out); where the book has been built, the page has an entry for each.
"""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil
import re
from pathlib import Path

import pytest
import yaml
from sphinx.pycode import ModuleAnalyzer

from .conftest import HTML, NOTEBOOKS, ROOT  # conftest also makes book/_ext importable

import notation_table  # noqa: E402  -- the extension's own loader, the one the build uses

BOOK = ROOT / "book"
NOTATION = BOOK / "notation.yml"
NOTATION_PAGE = BOOK / "appendix_notation.md"
API_PAGE = BOOK / "appendix_api.md"
API_HTML = HTML / "book" / "appendix_api.html"

FIELDS = notation_table.FIELDS
DATA = yaml.safe_load(NOTATION.read_text(encoding="utf-8"))
SYMBOLS = DATA["symbols"]


def chapter_math(docname: str) -> list[str]:
    """The math of one chapter notebook's markdown cells: $$...$$, $...$ and {math}`...`."""
    nb = json.loads((BOOK / f"{docname}.ipynb").read_text(encoding="utf-8"))
    md = "\n".join("".join(cell["source"]) for cell in nb["cells"] if cell["cell_type"] == "markdown")
    display = re.findall(r"\$\$(.+?)\$\$", md, flags=re.S)
    rest = re.sub(r"\$\$(.+?)\$\$", " ", md, flags=re.S)
    return display + re.findall(r"\$([^$\n]+?)\$", rest) + re.findall(r"\{math\}`([^`]+)`", rest)


CHAPTERS = [Path(docname).name for docname in NOTEBOOKS]
MATH = {name: chapter_math(name) for name in CHAPTERS}


def uses(latex: str, formulas: list[str]) -> bool:
    """Whether ``latex`` occurs as a whole symbol: not inside a longer name (``P`` in ``P_1`` counts, in ``\\Pr`` not)."""
    pattern = re.compile(r"(?<![A-Za-z\\])" + re.escape(latex) + r"(?![A-Za-z])")
    return any(pattern.search(formula) for formula in formulas)


# ----------------------------------------------------------------------------- notation


def test_the_loader_accepts_the_file():
    data = notation_table.load(NOTATION)
    assert data["symbols"], "notation.yml lists no symbols"


@pytest.mark.parametrize("entry", SYMBOLS, ids=[e.get("name", "?") for e in SYMBOLS])
def test_every_symbol_has_every_field(entry):
    missing = [field for field in FIELDS if not str(entry.get(field, "")).strip()]
    assert not missing, f"notation.yml: {entry.get('name')!r} lacks {missing}"
    unknown = sorted(set(entry) - set(FIELDS))
    assert not unknown, f"notation.yml: {entry['name']!r} has unknown fields {unknown}"
    assert entry["group"] in DATA["groups"], f"{entry['name']!r}: unknown group {entry['group']!r}"
    assert entry["chapter"] in CHAPTERS, f"{entry['name']!r}: {entry['chapter']!r} is no chapter of _toc.yml"


def test_symbol_names_are_unique():
    names = [e["name"] for e in SYMBOLS]
    assert len(names) == len(set(names)), sorted({n for n in names if names.count(n) > 1})


@pytest.mark.parametrize("entry", SYMBOLS, ids=[e["name"] for e in SYMBOLS])
def test_the_book_uses_every_listed_symbol(entry):
    """The symbol's LaTeX is in the math of the chapter said to introduce it, so the table lists only what the book uses."""
    assert uses(entry["latex"], MATH[entry["chapter"]]), (
        f"notation.yml: {entry['name']!r} ({entry['latex']!r}) does not occur in the math of {entry['chapter']}"
    )


def test_the_key_symbols_are_listed():
    """The symbols of the backpropagation recursion and of its batched form are all in the table."""
    listed = {e["latex"] for e in SYMBOLS}
    key = {"z^l", "a^l", "W^l", "b^l", r"\delta^l", r"\Delta^l", "Z^l", "A^l", "X", "Y", r"\mathcal{L}", "m", "L",
           "n_l", r"\sigma", r"\sigma'", r"\odot", r"\mathbf{1}_m"}  # fmt: skip
    assert key <= listed, f"missing from notation.yml: {sorted(key - listed)}"


def test_the_notation_page_renders_every_group():
    page = NOTATION_PAGE.read_text(encoding="utf-8")
    rendered = re.findall(r"```\{notation-table\}\s*\n:group:\s*(\S+)", page)
    assert sorted(rendered) == sorted(DATA["groups"]), (rendered, list(DATA["groups"]))


# ----------------------------------------------------------------------------- API


def public_modules() -> list[str]:
    """bplib and every module of it whose dotted name has no private (underscored) part, in name order."""
    import bplib

    found = pkgutil.walk_packages(bplib.__path__, "bplib.")
    return ["bplib", *sorted(m.name for m in found if not any(p.startswith("_") for p in m.name.split(".")))]


MODULES = public_modules()


def attribute_docs(modname: str) -> dict[tuple[str, str], list[str]]:
    return ModuleAnalyzer.for_module(modname).find_attr_docs()


def defined_here(modname: str) -> dict[str, str]:
    """Public names a module defines, as ``{name: qualified name}``: its functions, classes and documented data."""
    module = importlib.import_module(modname)
    data = {name for (scope, name) in attribute_docs(modname) if scope == ""}
    names = {}
    for name, obj in vars(module).items():
        if name.startswith("_"):
            continue
        if (inspect.isfunction(obj) or inspect.isclass(obj)) and obj.__module__ == modname:
            names[name] = f"{modname}.{name}"
        elif name in data:
            names[name] = f"{modname}.{name}"
    return names


def canonical(modname: str, name: str) -> str:
    """Where a public name (possibly re-exported) is defined: ``module.name``."""
    obj = getattr(importlib.import_module(modname), name)
    if inspect.isfunction(obj) or inspect.isclass(obj):
        return f"{obj.__module__}.{obj.__qualname__}"
    for candidate in MODULES:
        if name in defined_here(candidate) and getattr(importlib.import_module(candidate), name) is obj:
            return f"{candidate}.{name}"
    raise AssertionError(f"{modname}.{name}: found no module that defines and documents it")


def public_api() -> dict[str, set[str]]:
    """Every public name of bplib, qualified where it is defined, with the names it is exported as.

    The public methods and properties of its classes are included, with the class's names as prefixes, where
    bplib defines them (not those a class inherits from PyTorch, such as ``torch.autograd.Function``'s).
    """
    api: dict[str, set[str]] = {}
    for modname in MODULES:
        module = importlib.import_module(modname)
        for name in getattr(module, "__all__", []):
            if not inspect.ismodule(getattr(module, name)):
                api.setdefault(canonical(modname, name), set()).add(f"{modname}.{name}")
        for qualname in defined_here(modname).values():
            api.setdefault(qualname, set()).add(qualname)
    for qualname, aliases in list(api.items()):
        modname, _, name = qualname.rpartition(".")
        obj = getattr(importlib.import_module(modname), name)
        if inspect.isclass(obj):
            for member, value in inspect.getmembers(obj):
                owner = next(k for k in obj.__mro__ if member in vars(k))  # not bplib's if torch's base class has it
                if (not member.startswith("_") and owner.__module__.startswith("bplib")
                        and (inspect.isfunction(value) or isinstance(value, property))):
                    api[f"{qualname}.{member}"] = {f"{alias}.{member}" for alias in aliases}
    return api


def directives_on_page() -> list[tuple[str, str, str]]:
    """The API page's autodoc directives: ``(kind, target, options)``."""
    page = API_PAGE.read_text(encoding="utf-8")
    return re.findall(r"\.\. auto(\w+):: (\S+)\n((?:   :.*\n)*)", page)


def covered(name: str) -> bool:
    """Whether an autodoc directive on the API page documents ``name`` (a module, function, class, datum or member)."""
    for kind, target, options in directives_on_page():
        if name == target:
            return True
        prefix, _, last = name.rpartition(".")
        members = re.search(r":members:(.*)", options)
        if members is None:
            continue
        listed = [m.strip() for m in members.group(1).split(",") if m.strip()]
        if prefix == target:  # a member of the documented module or class
            if listed and last not in listed:
                continue
            return True
        owner_prefix, _, _ = prefix.rpartition(".")
        if kind == "module" and owner_prefix == target and not listed and covered(prefix):  # a class member
            cls = owner(prefix)
            inherited = last not in vars(cls)
            return not inherited or ":inherited-members:" in options
    return False


def owner(qualname: str):
    """The object a qualified name of bplib refers to."""
    modname, _, name = qualname.rpartition(".")
    try:
        return getattr(importlib.import_module(modname), name)
    except ModuleNotFoundError:
        return getattr(owner(modname), name)


def docstring_of(qualname: str) -> str:
    modname, _, name = qualname.rpartition(".")
    try:
        parent = importlib.import_module(modname)
    except ModuleNotFoundError:  # a class member
        owner_module, _, class_name = modname.rpartition(".")
        cls = getattr(importlib.import_module(owner_module), class_name)
        return inspect.getdoc(getattr(cls, name)) or ""
    obj = getattr(parent, name)
    if inspect.isfunction(obj) or inspect.isclass(obj):
        return inspect.getdoc(obj) or ""
    return "\n".join(attribute_docs(modname).get(("", name), []))


API = public_api()


@pytest.mark.parametrize("qualname", sorted(API))
def test_every_public_name_is_on_the_api_page(qualname):
    assert any(covered(alias) for alias in API[qualname]), (
        f"{qualname} (exported as {sorted(API[qualname])}) is public but {API_PAGE.name} has no autodoc directive "
        f"that documents it"
    )
    assert docstring_of(qualname).strip(), f"{qualname} has no docstring: autodoc would leave it out"


def test_every_module_is_on_the_api_page():
    missing = [m for m in MODULES if not covered(m)]
    assert not missing, missing


@pytest.mark.skipif(not API_HTML.exists(), reason="the book is not built (make book)")
def test_the_built_api_page_has_every_public_name():
    html = API_HTML.read_text(encoding="utf-8")
    ids = set(re.findall(r'<dt class="sig sig-object py" id="([^"]+)"', html))
    missing = sorted(qualname for qualname, aliases in API.items() if not aliases & ids)
    assert not missing, f"not on the built page: {missing}"
