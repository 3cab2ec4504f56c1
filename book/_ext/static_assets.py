"""The book's stylesheets: `book/_ext/static/`, served with the book.

    add_stylesheet(app, "book_map.css")   # in an extension's setup()

As an extension of its own, it links `book.css`, the rules for every page.
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


def setup(app):
    add_stylesheet(app, "book.css")
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
