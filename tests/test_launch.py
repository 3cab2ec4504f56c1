"""Launching the notebooks: the Binder environment and the buttons on every chapter page."""

import re
from urllib.parse import unquote

import pytest
import yaml

from .conftest import CHAPTERS, HTML, ROOT, built

CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())


def pins(path):
    """{package: version} for every `name==version` line of a requirements file."""
    found = {}
    for line in (ROOT / path).read_text().splitlines():
        match = re.fullmatch(r"([A-Za-z0-9_.\-\[\]]+)==(\S+)", line.strip())
        if match:
            found[match.group(1).lower()] = match.group(2)
    return found


def test_binder_pins_match_requirements_except_the_cpu_torch():
    main, binder = pins("requirements.txt"), pins("binder/requirements.txt")
    assert main["torch"] == "2.13.0"
    assert binder.pop("torch") == main.pop("torch") + "+cpu", "Binder installs the CPU-only build of the same torch"
    assert binder == main, "binder/requirements.txt and requirements.txt pin different packages or versions"
    assert "whl/cpu" in (ROOT / "binder/requirements.txt").read_text(), "the CPU-only torch needs its package index"


def test_binder_installs_the_engine():
    post_build = ROOT / "binder" / "postBuild"
    assert post_build.stat().st_mode & 0o111, "postBuild must be executable"
    assert "pip install --no-deps --editable ." in post_build.read_text()


def test_repository_is_set_in_the_config():
    repository = CONFIG["repository"]
    assert re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", repository["url"])
    assert repository["branch"] == "main"
    assert CONFIG["launch_buttons"]["binderhub_url"] and CONFIG["launch_buttons"]["colab_url"]


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_page_launches_and_downloads_its_own_notebook(chapter):
    page = built(HTML / f"{chapter}.html")
    html = page.read_text()
    notebook = f"{chapter}.ipynb"  # the book's root is the repository's root
    assert (ROOT / notebook).is_file()
    repo = CONFIG["repository"]["url"].removeprefix("https://github.com/")
    binder = re.search(r'href="(https://mybinder\.org/v2/gh/[^"]+)"', html)
    colab = re.search(r'href="(https://colab\.research\.google\.com/github/[^"]+)"', html)
    assert binder and colab, f"{chapter}: no Binder or Colab button"
    assert repo in binder.group(1) and unquote(binder.group(1)).endswith(notebook), binder.group(1)
    assert colab.group(1).endswith(f"{repo}/blob/main/{notebook}"), colab.group(1)
    download = re.search(r'href="([^"]*_sources/{}\.ipynb)"'.format(re.escape(chapter)), html)
    assert download, f"{chapter}: no download button for the .ipynb"
    assert (page.parent / download.group(1)).resolve().is_file(), "the downloaded notebook is in the build"
