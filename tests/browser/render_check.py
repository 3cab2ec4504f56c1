"""Open pages of the built book in headless Chromium and report what a reader would see go wrong.

Chromium runs with the network cut (a fresh network namespace, where the system allows one), so a page
that needs anything from the internet shows it.  For each page the checker reads the DOM after scripts ran
(MathJax included) and reports: math left untypeset, MathJax errors, images that do not load, and
notebook outputs that show a traceback.  It also saves a screenshot of the page.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from urllib.parse import unquote, urlparse
from xml.etree import ElementTree

from bs4 import BeautifulSoup
from PIL import Image

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars", "--virtual-time-budget=10000",  # lets MathJax finish typesetting first
]
RAW_MATH = re.compile(
    r"\$\$|\\[()\[\]]|\\(begin|frac|mathcal|partial|sum)\b"  # delimiters and commands left as text
    r"|\$[^$\s][^$]*?[\\^_{}][^$]*?\$"  # $...$ holding TeX
)
TRACEBACK_MARKERS = ("Traceback (most recent call last)",)


@cache
def network_cut_prefix() -> tuple[str, ...]:
    """The command prefix that runs a program without network: ``unshare -n`` as root, ``-rn`` otherwise."""
    for prefix in (("unshare", "-n"), ("unshare", "-rn")):
        if shutil.which(prefix[0]) and subprocess.run([*prefix, "true"], capture_output=True).returncode == 0:
            return prefix
    return ()


def chromium(url: str, *extra: str, timeout: float = 60) -> subprocess.CompletedProcess:
    if CHROMIUM is None:
        raise RuntimeError("chromium is not installed: `make install` installs the Debian package")
    with tempfile.TemporaryDirectory() as profile:
        command = [*network_cut_prefix(), CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *extra, url]
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


@dataclass
class PageReport:
    page: Path
    problems: list[str] = field(default_factory=list)
    math_typeset: int = 0


def visible_text_outside_code(soup: BeautifulSoup) -> str:
    soup = BeautifulSoup(str(soup), "html.parser")  # a copy we can cut up
    for tag in soup(["pre", "code", "script", "style", "mjx-container", "mjx-assistive-mml", "noscript", "title"]):
        tag.decompose()
    return soup.get_text(" ")


def check_dom(page: Path, dom: str) -> PageReport:
    """Everything the reader would see go wrong in the rendered DOM of ``page``."""
    report = PageReport(page)
    soup = BeautifulSoup(dom, "html.parser")
    source = BeautifulSoup(page.read_text(encoding="utf-8"), "html.parser")
    report.math_typeset = len(soup.find_all("mjx-container"))
    expects_math = bool(source.select(".math, div.math, span.math"))
    if expects_math and report.math_typeset == 0:
        report.problems.append("the page has math but MathJax typeset none of it")
    if soup.find_all("mjx-merror"):
        report.problems.append(f"MathJax reports {len(soup.find_all('mjx-merror'))} formula error(s)")
    text = visible_text_outside_code(soup)
    raw = RAW_MATH.search(text)
    if raw:
        at = raw.start()
        report.problems.append(f"untypeset math {raw.group()!r} in the text: ...{text[max(0, at - 40):at + 60]!r}...")
    for img in soup.find_all("img"):
        problem = image_problem(page, img.get("src", ""))
        if problem:
            report.problems.append(problem)
    if soup.select(".output.traceback, .output.error, .traceback") or any(m in text for m in TRACEBACK_MARKERS):
        report.problems.append("a notebook output shows a traceback")
    return report


def image_problem(page: Path, src: str) -> str | None:
    """Why the image at ``src`` would not load from ``page``, or None when it would."""
    if not src:
        return "an <img> without src"
    parsed = urlparse(src)
    if parsed.scheme in ("http", "https"):
        return f"image {src} needs the network"
    if parsed.scheme == "data":
        return None
    path = (page.parent / unquote(parsed.path)).resolve()
    if not path.is_file():
        return f"image {src} does not exist"
    try:
        if path.suffix == ".svg":
            if not ElementTree.parse(path).getroot().tag.endswith("svg"):
                return f"image {src} is not an SVG document"
        else:
            with Image.open(path) as im:
                im.verify()
    except Exception as e:  # any decoding failure means the browser shows a broken image
        return f"image {src} cannot be decoded: {e}"
    return None


def render(page: Path, screenshot: Path) -> PageReport:
    """Render ``page`` offline, check its DOM and save a screenshot."""
    url = page.resolve().as_uri()
    dumped = chromium(url, "--dump-dom")
    if dumped.returncode != 0 or "<html" not in dumped.stdout:
        return PageReport(page, [f"chromium could not render the page: {dumped.stderr[-500:]}"])
    report = check_dom(page, dumped.stdout)
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    shot = chromium(url, f"--screenshot={screenshot}", "--window-size=1280,2400")
    if shot.returncode != 0 or not screenshot.is_file():
        report.problems.append(f"no screenshot: {shot.stderr[-300:]}")
    return report
