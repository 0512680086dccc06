"""Markdown to HTML that is safe to put in a page: raw HTML in the source is
escaped, not rendered, and links keep only safe schemes."""

from __future__ import annotations

from markdown_it import MarkdownIt

_md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False}).enable("table")


def render_markdown(text: str) -> str:
    return _md.render(text or "")
