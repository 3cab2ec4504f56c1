"""The built book, opened page by page in headless Chromium with the network cut.

`make test` builds the book first (`make book`); screenshots land in _build/screenshots/.
"""

from concurrent.futures import ThreadPoolExecutor

import pytest

from ..conftest import CHAPTERS, HTML, ROOT, TOC_FILES, built
from .render_check import CHROMIUM, network_cut_prefix, render

SCREENSHOTS = ROOT / "_build" / "screenshots"
PAGES = [*TOC_FILES, "search", "genindex"]


@pytest.fixture(scope="module")
def reports():
    built(HTML / "index.html")
    if CHROMIUM is None:
        pytest.fail("chromium is not installed: `make install` installs it")
    pages = [HTML / f"{name}.html" for name in PAGES]
    existing = [p for p in pages if p.is_file()]
    with ThreadPoolExecutor(max_workers=2) as pool:
        rendered = pool.map(lambda p: render(p, SCREENSHOTS / f"{p.stem}.png"), existing)
        return {p: r for p, r in zip(existing, rendered)}


def test_the_network_is_cut_for_the_browser():
    assert network_cut_prefix(), "cannot start chromium without network (unshare -n / -rn refused)"


@pytest.mark.parametrize("name", PAGES)
def test_page_renders_completely_offline(name, reports):
    page = HTML / f"{name}.html"
    assert page.is_file(), f"{name}: page missing from the build"
    report = reports[page]
    assert not report.problems, f"{name}: " + "; ".join(report.problems)
    assert (SCREENSHOTS / f"{page.stem}.png").is_file()


def test_every_chapter_has_typeset_math(reports):
    for page in (HTML / f"{chapter}.html" for chapter in CHAPTERS):
        assert reports[page].math_typeset > 10, f"{page.name}: only {reports[page].math_typeset} formulas typeset"


# The checker must fail on what it exists to catch: planted faults in a copy of a real page.

@pytest.fixture
def planted():
    page = built(HTML / "book" / "intro.html")
    copy = page.with_name("planted-fault.html")  # beside the real pages, so that MathJax and styles load

    def plant(html_fragment):
        copy.write_text(page.read_text().replace("</article>", html_fragment + "</article>", 1))
        return copy

    yield plant
    copy.unlink(missing_ok=True)


@pytest.mark.parametrize(
    "fragment, problem",
    [
        # dollar math that the Markdown parser did not turn into math: MathJax leaves it as it is
        ("<p>The loss $\\mathcal{L}(W)$ falls.</p>", "untypeset math"),
        ("<p>where $z^l_j$ is the input of unit $j$</p>", "untypeset math"),
        # a display formula that never became math
        ('<div class="math notranslate nohighlight">\\[ \\frac{1}{ \\]</div>', "untypeset math"),
        ('<img src="../_images/no-such-figure.png">', "does not exist"),
        ('<div class="cell_output docutils container"><div class="output traceback highlight-ipythontb">'
         "<pre>Traceback (most recent call last)</pre></div></div>", "traceback"),
    ],
)
def test_checker_catches_planted_faults(planted, fragment, problem, tmp_path):
    report = render(planted(fragment), tmp_path / "planted.png")
    assert any(problem in p for p in report.problems), report.problems
