"""The front matter: the licences, the citation, the first page's map and verification triangle, CONTRIBUTING.md.

The tests of the built pages read `_build/html` (`make test` builds the book first); the others read the
repository's files and the extensions of `book/_ext` directly.
"""

import json
import re
import tomllib
import warnings
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import jsonschema
import pytest
import torch
import yaml
from bplib.testing import AGAINST, TOLERANCES
from bs4 import BeautifulSoup
from pybtex.database import parse_string

from .conftest import CHAPTERS, HTML, ROOT, TOC_FILES, built

import book_map  # noqa: E402  -- book/_ext, importable through conftest
import citation  # noqa: E402
import measure_notebooks  # noqa: E402
import verification_index  # noqa: E402
import verification_triangle  # noqa: E402

CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
SCHEMA = json.loads((ROOT / "tests" / "schemas" / "citation-file-format-1.2.0.json").read_text())
INTRO = (ROOT / "book" / "intro.md").read_text()
REPOSITORY = CONFIG["repository"]["url"]
MIT_NOTICE = "Permission is hereby granted, free of charge, to any person obtaining a copy of this software"


def directive(name: str) -> tuple[dict[str, str], list[str]]:
    """The options and content lines of the intro's ``{name}`` directive."""
    match = re.search(r"^```\{" + re.escape(name) + r"\}\n(.*?)^```$", INTRO, re.S | re.M)
    assert match, f"book/intro.md has no {{{name}}} directive"
    lines = match.group(1).splitlines()
    options = dict(re.fullmatch(r":([\w-]+):\s*(.*)", line).groups() for line in lines if line.startswith(":"))
    return options, [line for line in lines if not line.startswith(":")]


# --- The licences ---------------------------------------------------------------------------------------

def test_the_code_licence_is_mit_with_its_notice():
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License\n\nCopyright (c) 2026 the authors of Backpropagation, Derived and Verified\n")
    assert MIT_NOTICE in text.replace("\n", " ")
    assert 'THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND' in text


def test_the_text_licence_is_the_full_legal_code_of_cc_by_sa_4():
    text = (ROOT / "LICENSES" / "CC-BY-SA-4.0.txt").read_text()
    assert text.startswith("Creative Commons Attribution-ShareAlike 4.0 International")
    headings = re.findall(r"^Section (\d) – ([^\n]+)\.$", text, re.M)
    assert [number for number, _ in headings] == [str(n) for n in range(1, 9)], headings
    assert dict(headings)["3"] == "License Conditions" and dict(headings)["5"].startswith("Disclaimer of Warranties")
    for term in ("Adapted Material", "BY-SA Compatible License", "ShareAlike", "Sui Generis Database Rights"):
        assert term in text


def test_pyproject_states_the_package_licence_as_a_pep_639_expression():
    project = PYPROJECT["project"]
    assert project["license"] == "MIT" and project["license-files"] == ["LICENSE"]
    assert project["urls"]["Repository"] == REPOSITORY
    assert project["urls"]["Issues"] == REPOSITORY + "/issues"
    assert [author["name"] for author in project["authors"]] == [CONFIG["author"][0].upper() + CONFIG["author"][1:]]


def test_setuptools_reads_the_metadata_without_warnings():
    from setuptools.config.pyprojecttoml import apply_configuration
    from setuptools.dist import Distribution

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a deprecated licence table, an unknown key, ... fail here
        metadata = apply_configuration(Distribution(), ROOT / "pyproject.toml").metadata
    assert metadata.license_expression == "MIT" and metadata.license_files == ["LICENSE"]
    assert metadata.project_urls["Repository"] == REPOSITORY


def test_the_footer_reads_by_the_authors_and_names_both_licences():
    assert CONFIG["author"] == "the authors of Backpropagation, Derived and Verified"
    footer = BeautifulSoup(CONFIG["html"]["extra_footer"], "html.parser")
    links = {a.get_text(): a["href"] for a in footer.find_all("a")}
    assert links == {"CC BY-SA 4.0": "https://creativecommons.org/licenses/by-sa/4.0/",
                     "MIT": "https://opensource.org/license/mit"}


@pytest.mark.parametrize("name", [*TOC_FILES, "search", "genindex"])
def test_every_built_page_names_both_licences_in_its_footer(name):
    page = built(HTML / f"{name}.html")
    footer = BeautifulSoup(page.read_text(), "html.parser").select_one("footer.bd-footer-content")
    assert footer is not None, f"{name}: no footer"
    assert footer.select_one(".component-author").get_text(" ", strip=True) == (
        "By the authors of Backpropagation, Derived and Verified")
    licences = {a.get_text(strip=True): a["href"] for a in footer.select(".extra_footer a[rel=license]")}
    assert licences == {"CC BY-SA 4.0": "https://creativecommons.org/licenses/by-sa/4.0/",
                        "MIT": "https://opensource.org/license/mit"}, f"{name}: {licences}"


# --- The citation ---------------------------------------------------------------------------------------

def cff_document(path: Path = ROOT / "CITATION.cff"):
    """CITATION.cff as the schema sees it: YAML dates as strings, as the schema's own comment asks."""
    return json.loads(json.dumps(yaml.safe_load(path.read_text()), default=str))


def cff_errors(document) -> list[str]:
    validator = jsonschema.Draft7Validator(SCHEMA, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)
    return [error.message for error in validator.iter_errors(document)]


def test_the_vendored_schema_is_cff_1_2_0():
    assert SCHEMA["$id"] == "https://citation-file-format.github.io/1.2.0/schema.json"
    jsonschema.Draft7Validator.check_schema(SCHEMA)


def test_citation_cff_is_valid_cff_1_2_0():
    document = cff_document()
    assert document["cff-version"] == "1.2.0"
    assert cff_errors(document) == []


@pytest.mark.parametrize("fault", [
    lambda d: d.pop("authors"),
    lambda d: d.update({"cff-version": "1.2"}),
    lambda d: d.update({"licence": "MIT"}),  # a misspelt key
    lambda d: d["preferred-citation"].update({"year": 2026.5}),  # a year is an integer or a string
    lambda d: d["preferred-citation"].update({"license": "CC-BY-SA"}),  # not an SPDX identifier
    lambda d: d.update({"repository-code": "github.com/no-scheme"}),
])
def test_the_schema_check_fails_on_a_planted_fault(fault):
    document = cff_document()
    fault(document)
    assert cff_errors(document)


def test_citation_cff_agrees_with_the_config_and_the_package():
    document, reference = cff_document(), citation.read_reference(ROOT)
    assert document["title"] == reference["title"] == CONFIG["title"]
    assert document["version"] == reference["version"] == PYPROJECT["project"]["version"]
    assert document["repository-code"] == reference["url"] == REPOSITORY
    author = CONFIG["author"][0].upper() + CONFIG["author"][1:]
    assert document["authors"] == reference["authors"] == [{"name": author}]
    assert reference["type"] == "book" and reference["license"] == "CC-BY-SA-4.0"
    assert "license" not in document, "CFF reads a list of licences as alternatives; here both apply"


def test_the_bibtex_entry_says_what_citation_cff_says():
    reference = citation.read_reference(ROOT)
    database = parse_string(citation.bibtex_entry(reference), "bibtex")
    (key, entry), = database.entries.items()
    assert key == "backpropagation_derived_verified_2026"
    assert entry.type == "misc", "a book without a publisher is a @misc for the standard BibTeX styles"
    assert entry.fields["title"] == reference["title"]
    assert entry.fields["year"] == str(reference["year"])
    assert entry.fields["url"] == reference["url"]
    assert entry.fields["note"] == f"Version {reference['version']}"
    assert [str(person) for person in entry.persons["author"]] == ["{" + reference["authors"][0]["name"] + "}"]


def test_bibtex_entry_writes_persons_publishers_and_escapes():
    reference = {"type": "book", "title": "Nets & Gradients", "year": 2020, "publisher": {"name": "A Press"},
                 "authors": [{"family-names": "Rumelhart", "given-names": "David E."},
                             {"family-names": "Hinton", "given-names": "Geoffrey", "name-particle": None}]}
    entry = parse_string(citation.bibtex_entry(reference), "bibtex").entries["nets_gradients_2020"]
    assert entry.type == "book" and entry.fields["publisher"] == "A Press"
    assert entry.fields["title"] == r"Nets \& Gradients"
    assert [str(p) for p in entry.persons["author"]] == ["Rumelhart, David E.", "Hinton, Geoffrey"]


@pytest.mark.parametrize("reference, message", [
    ({"type": "article", "title": "T", "year": 1, "authors": [{"name": "A"}]},
     "bibtex_entry: argument 'reference' must be a CFF reference of type 'book', got 'article'"),
    ({"type": "book", "title": "T"}, "bibtex_entry: argument 'reference' lacks authors, year"),
    ({"type": "book", "title": "T", "year": 1, "authors": [{"given-names": "A"}]},
     "bibtex_entry: an author needs 'name' or 'family-names', got ['given-names']"),
])
def test_bibtex_entry_rejects_what_it_cannot_write(reference, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        citation.bibtex_entry(reference)


def test_read_reference_rejects_a_file_that_is_not_a_mapping(tmp_path):
    (tmp_path / "CITATION.cff").write_text("- a list\n")
    with pytest.raises(ValueError, match="read_reference: CITATION.cff must be a mapping, got list"):
        citation.read_reference(tmp_path)


def test_the_built_intro_cites_the_book_from_citation_cff():
    soup = BeautifulSoup(built(HTML / "book" / "intro.html").read_text(), "html.parser")
    block = soup.select_one("div.cite-this-book pre, pre.cite-this-book, .cite-this-book pre")
    assert block is not None, "no BibTeX block on the first page"
    assert block.get_text() == citation.bibtex_entry(citation.read_reference(ROOT)) + "\n"


# --- The map of the book ----------------------------------------------------------------------------------

def test_part_summaries_reads_captions_and_their_indented_sentences():
    lines = ["Part I: Foundations", "  The chain rule,", "  counted.", "", "Appendices", "  Tables."]
    assert book_map.part_summaries(lines) == {"Part I: Foundations": "The chain rule, counted.",
                                              "Appendices": "Tables."}


@pytest.mark.parametrize("lines, message", [
    (["  a sentence first"], "line 1 is indented, but no part's caption comes before it: 'a sentence first'"),
    (["Part I", "Part II", "  words"], "no sentence under ['Part I']: indent it under the part's caption"),
])
def test_part_summaries_rejects_sentences_without_a_part(lines, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        book_map.part_summaries(lines)


def test_toc_parts_follow_the_table_of_contents():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    parts = book_map.toc_parts(ROOT)
    assert [part.caption for part in parts] == [part["caption"] for part in toc["parts"]]
    chapters = [page for part in parts for page in part.chapters]
    assert [page.docname for page in chapters] == TOC_FILES[1:], "every page but the root, in reading order"
    numbered = [page.number for page in chapters if page.number is not None]
    assert numbered == list(range(1, len(CHAPTERS) + 1))


def test_the_intro_map_has_a_sentence_for_every_part_and_no_other():
    _, content = directive("book-map")
    captions = [part.caption for part in book_map.toc_parts(ROOT) if part.chapters]
    assert list(book_map.part_summaries(content)) == captions


def test_the_built_map_links_every_page_of_the_book_and_nothing_else():
    page = built(HTML / "book" / "intro.html")
    figure = BeautifulSoup(page.read_text(), "html.parser").select_one("figure.book-map-figure")
    assert figure is not None and figure.select_one("figcaption"), "the map is a figure with a caption"
    cards = figure.select(".book-map-part")
    assert [card.select_one(".book-map-caption").get_text(strip=True) for card in cards] == [
        part.caption for part in book_map.toc_parts(ROOT) if part.chapters]
    targets = [(page.parent / a["href"].split("#")[0]).resolve() for a in figure.select(".book-map-chapters a")]
    assert targets == [(HTML / f"{docname}.html").resolve() for docname in TOC_FILES[1:]]
    assert all(target.is_file() for target in targets)


# --- What "verified" means, and the triangle ---------------------------------------------------------------

def test_the_intro_states_the_tolerances_of_bplib_testing():
    tolerance = TOLERANCES[torch.float64]
    stated = [int(e) for e in re.findall(r"\{math\}`10\^\{(-\d+)\}`", INTRO)]
    assert 10.0 ** stated[0] == tolerance.rtol, "the relative tolerance, where the chapter pattern is described"
    assert {10.0 ** e for e in stated} == {tolerance.rtol, tolerance.atol}


def test_the_triangle_groups_every_route_a_check_may_name():
    groups = list(triangle_groups().values())
    flat = [route for routes in groups for route in routes]
    assert sorted(flat) == sorted(AGAINST), "each route of bplib.testing.AGAINST in exactly one group"
    assert groups[0] == ["SymPy"] and set(groups[1]) == {r for r in AGAINST if r.startswith("torch")}


def triangle_groups() -> dict[str, list[str]]:
    """The routes of each group, as the intro's ``{verification-triangle}`` lists them."""
    options, _ = directive("verification-triangle")
    return {group: [route.strip() for route in options[group].split(",")] for group in verification_triangle.GROUPS}


def book_counts() -> list[tuple]:
    groups = triangle_groups()
    return [(page, verification_triangle.count_checks(claims, groups))
            for page, claims in verification_index.extract_book(ROOT)]


def test_the_triangle_counts_what_the_verification_index_counts():
    groups = triangle_groups()
    routes = [route for group in verification_triangle.GROUPS for route in groups[group]]
    for page, claims in verification_index.extract_book(ROOT):
        identities, all_sizes, _, *per_route = verification_index._tally(claims, routes)
        counts = verification_triangle.count_checks(claims, groups)
        by_route = dict(zip(routes, per_route))
        assert counts["identities"] == identities and counts["all_sizes"] == all_sizes, page.docname
        for group in verification_triangle.GROUPS:
            assert counts[group] == sum(by_route[route] for route in groups[group]), (page.docname, group)


def test_triangle_svg_is_one_svg_with_a_linked_bar_per_chapter():
    chapters = [{"docname": f"book/ch0{n}", "number": n, "title": f"Chapter & {n}", "identities": 3 * n,
                 "all_sizes": n, "sympy": 2, "torch": 5 * n, "other": 0} for n in (1, 2)]
    svg = ElementTree.fromstring(verification_triangle.triangle_svg(chapters, lambda d: d + ".html"))
    ns = {"svg": "http://www.w3.org/2000/svg"}
    rows = svg.findall("svg:a", ns)
    assert [row.get("href") for row in rows] == ["book/ch01.html", "book/ch02.html"]
    assert rows[1].find("svg:title", ns).text.startswith("2 Chapter & 2: 6 identities proved (2 for every size)")
    texts = ["".join(t.itertext()) for t in svg.iter("{http://www.w3.org/2000/svg}text")]
    assert "9 identities proved exactly" in texts and "3 of them for every size" in texts
    assert "4 checks" in texts and "15 checks" in texts and "0 checks vs other routes" in texts
    assert [t for t in texts if t in ("10", "18")] == ["10", "18"], "each bar ends in the chapter's number of checks"


def test_the_built_triangle_shows_the_counts_of_the_notebooks():
    soup = BeautifulSoup(built(HTML / "book" / "intro.html").read_text(), "html.parser")
    figure = soup.select_one("figure.vtri-figure")
    assert figure is not None and figure.select_one("figcaption"), "the triangle is a figure with a caption"
    svg = figure.select_one("svg.vtri")
    counts = book_counts()
    total = {key: sum(c[key] for _, c in counts) for key in ("identities", "all_sizes", *verification_triangle.GROUPS)}
    texts = [t.get_text() for t in svg.find_all("text")]
    assert f"{total['identities']} identities proved exactly" in texts
    assert f"{total['all_sizes']} of them for every size" in texts
    assert f"{total['sympy']} checks" in texts and f"{total['torch']} checks" in texts
    assert f"{total['other']} checks vs other routes" in texts
    rows = svg.find_all("a", class_="vtri-row")
    assert len(rows) == len(counts)
    for row, (page, count) in zip(rows, counts):
        assert (HTML / "book" / row["href"]).resolve() == (HTML / f"{page.docname}.html").resolve()
        checks = count["identities"] + sum(count[g] for g in verification_triangle.GROUPS)
        assert row.find_all("text")[-1].get_text() == str(checks), page.docname


# --- CONTRIBUTING.md ----------------------------------------------------------------------------------------

CONTRIBUTING = (ROOT / "CONTRIBUTING.md").read_text()


def test_contributing_names_only_paths_that_exist():
    paths = set(re.findall(r"(?<![\w./-])((?:book|bplib|tests|LICENSES|scripts|bench)/[\w./-]*\w/?)", CONTRIBUTING))
    paths |= set(re.findall(r"`(LICENSE|README\.md|CONTRIBUTING\.md|_toc\.yml)`", CONTRIBUTING))
    paths = {path for path in paths if "chNN" not in path}  # book/chNN_topic.ipynb stands for any chapter
    assert {"tests/nbval_sanitize.cfg", "LICENSES/CC-BY-SA-4.0.txt", "LICENSE", "book/_ext/"} <= paths
    assert [p for p in sorted(paths) if not (ROOT / p).exists()] == []


def test_contributing_lists_exactly_the_routes_against_may_name():
    section = CONTRIBUTING.split("`against=` names", 1)[1].split("\n\n", 1)[0]
    assert re.findall(r'`"([^"`]+)"`', section) == list(AGAINST)


def test_contributing_states_the_tolerances_and_budget_the_tests_use():
    tolerance = TOLERANCES[torch.float64]
    assert f"relative {tolerance.rtol:.0e}, absolute {tolerance.atol:.0e}" in CONTRIBUTING
    assert f"({measure_notebooks.BUDGET_SECONDS:.0f} seconds is the hard limit)" in CONTRIBUTING
    assert f"less than {measure_notebooks.BUDGET_BYTES / 1e9:g} GB of memory" in CONTRIBUTING
    assert "PYTHONHASHSEED=0 ../.venv/bin/jupyter execute --inplace" in CONTRIBUTING
