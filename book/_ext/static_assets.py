"""The stylesheets of the book's extensions: `book/_ext/static/`, served with the book.

    add_stylesheet(app, "book_map.css")   # in an extension's setup()
"""

from __future__ import annotations

from pathlib import Path

STATIC = str(Path(__file__).parent / "static")


def _add_static_path(app, config) -> None:
    if STATIC not in config.html_static_path:
        config.html_static_path.append(STATIC)


def add_stylesheet(app, filename: str) -> None:
    """Serve `book/_ext/static/` with the book and link ``filename`` from it on every page."""
    app.connect("config-inited", _add_static_path)
    app.add_css_file(filename)
