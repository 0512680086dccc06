"""arena.rendering: markdown as a voter must see it, and nothing in it that runs.

Pure functions: no database, no Django request.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from arena.rendering import latex_to_mathml, pygments_css, render_markdown

CSS = Path(__file__).resolve().parents[2] / "arena" / "static" / "arena" / "pygments.css"


class Elements(HTMLParser):
    """Every start tag with its attributes, as a browser's tokenizer sees them."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def assert_inert(html: str) -> None:
    """No element or attribute that can run script or load a frame."""
    for tag, attrs in Elements(html).tags:
        assert tag not in {"script", "img", "iframe", "svg", "object", "embed", "style", "link", "form", "input"}, html
        for name, value in attrs.items():
            assert not name.startswith("on"), html
            assert name not in {"style", "srcdoc", "formaction"}, html
            if name in {"href", "src", "action"}:
                assert not re.match(r"\s*(javascript|vbscript|data):", value or "", re.I), html


# --- line breaks, lists, tables ------------------------------------------------------


def test_a_single_newline_is_a_line_break():
    html = render_markdown("Books:\nDune\nEmma\nUlysses")
    assert html == "<p>Books:<br />\nDune<br />\nEmma<br />\nUlysses</p>\n"


def test_a_numbered_list_keeps_its_items_and_their_inner_line_breaks():
    html = render_markdown("1. Dune\n2. Emma\n   by Austen\n3. Ulysses")
    assert re.findall(r"<li>(.*?)</li>", html, re.S) == ["Dune", "Emma<br />\nby Austen", "Ulysses"]


def test_gfm_table_and_strikethrough():
    html = render_markdown("| model | score |\n|:--|--:|\n| a | 1 |\n| b | 2 |\n\n~~wrong~~ right")
    assert "<table>" in html and '<th style="text-align:left">model</th>' in html
    assert '<td style="text-align:right">2</td>' in html
    assert "<s>wrong</s> right" in html


# --- code ----------------------------------------------------------------------------


def test_fenced_code_is_highlighted_with_pygments_token_spans():
    html = render_markdown("```python\ndef f(x):\n    return x + 1\n```")
    assert html.startswith('<pre class="highlight"><code class="language-python">')
    assert '<span class="k">def</span><span class="w"> </span><span class="nf">f</span>' in html
    assert '<span class="k">return</span>' in html


def test_unknown_or_missing_language_is_plain_escaped_code():
    assert render_markdown("```nosuchlang\na < b\n```") == (
        '<pre class="highlight"><code class="language-nosuchlang">a &lt; b\n</code></pre>\n'
    )
    assert render_markdown("```\na < b\n```") == '<pre class="highlight"><code>a &lt; b\n</code></pre>\n'


def test_html_inside_a_code_fence_is_text():
    html = render_markdown('```html\n<script>alert(1)</script>\n<img src=x onerror="alert(2)">\n```')
    assert "<script" not in html and "<img" not in html
    assert "&lt;" in html and "script" in html
    assert_inert(html)


def test_a_hostile_language_name_cannot_break_out_of_the_class_attribute():
    html = render_markdown('```"><script>alert(1)</script>\nx\n```')
    assert "<script" not in html
    assert_inert(html)


def test_the_committed_stylesheet_matches_pygments():
    # A Pygments upgrade that renames token classes fails here, not on the page.
    assert CSS.read_text() == pygments_css()


# --- math ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "source, display",
    [
        ("$$\\frac{1}{2}$$", "block"),
        ("\\[\\frac{1}{2}\\]", "block"),
        ("$$\n\\frac{1}{2}\n$$", "block"),
        ("\\[\n\\frac{1}{2}\n\\]", "block"),
        ("half is $\\frac{1}{2}$ here", "inline"),
        ("half is \\(\\frac{1}{2}\\) here", "inline"),
    ],
)
def test_every_math_form_becomes_mathml(source, display):
    html = render_markdown(source)
    assert f'<math display="{display}">' in html
    assert "<mfrac><mrow><mn>1</mn></mrow><mrow><mn>2</mn></mrow></mfrac>" in html
    assert "frac" not in re.sub(r"<[^>]+>", "", html)  # no TeX left as text


def test_inline_math_next_to_prose():
    html = render_markdown("The area is $x^2$, not $2x$.")
    assert html.count("<math ") == 2 and "<msup><mi>x</mi><mn>2</mn></msup>" in html


@pytest.mark.parametrize(
    "prose",
    [
        "It costs $5 and $10.",
        "Between $5 and $ 10 dollars",
        "Pay $20, then $30",
        "A lone $ sign",
        "Escaped \\$x\\$ stays text",
        "$ x$ has a space after the opening sign",
        "price $3.50, $4.00",
    ],
)
def test_dollars_in_prose_are_not_math(prose):
    html = render_markdown(prose)
    assert "<math" not in html and "math-error" not in html, html


@pytest.mark.parametrize(
    "prose, shown",
    [
        # As written in real MT-bench answers: brackets escaped for markdown, not TeX.
        ("Best regards,\n\\[Your Name\\]", "Best regards,<br />\n[Your Name]"),
        ("\\[Opening shot of a busy car wash business\\]", "[Opening shot of a busy car wash business]"),
        (
            '\\[{"release\\_date": "Nov 18, 2019","rating": 1}\\]',
            "[{&quot;release_date&quot;: &quot;Nov 18, 2019&quot;,&quot;rating&quot;: 1}]",
        ),
        ("the order \\[1, 3, 2\\]", "the order [1, 3, 2]"),
    ],
)
def test_escaped_brackets_in_prose_are_brackets_not_math(prose, shown):
    assert render_markdown(prose) == f"<p>{shown}</p>\n"


def test_bracket_math_that_reads_like_math_is_math():
    assert "<math" in render_markdown("so \\[n = (n/10)10 + 4.\\]")
    assert "<math" in render_markdown("\\[\n\\sum_i a_i\n\\]")


def test_a_paragraph_of_unclosed_openers_is_text():
    # Ten thousand of each (this took 35 s before closers were found once per paragraph).
    for text in ("$a " * 10000, "\\(a " * 10000, "\\[a=" * 10000):
        assert "<math" not in render_markdown(text)


def test_math_inside_code_stays_code():
    html = render_markdown("`$x^2$` and\n```\n$$\\frac{1}{2}$$\n```")
    assert "<math" not in html
    assert "<code>$x^2$</code>" in html


def test_a_formula_that_fails_to_convert_is_shown_as_escaped_source():
    html = render_markdown("broken: $\\frac{<b>}{$")
    assert '<code class="math-error" title="formula not rendered">$\\frac{&lt;b&gt;}{$</code>' in html
    assert_inert(html)


@pytest.mark.parametrize(
    "source",
    [
        "$\\text{<script>alert(1)</script>}$",
        "$$\\text{</math><img src=x onerror=alert(1)>}$$",
        "$a</math><script>alert(1)</script>$",
        '$$\\mathrm{"><svg onload=alert(1)>}$$',
        "$\\href{javascript:alert(1)}{click}$",
        "\\(\\text{<iframe src=javascript:alert(1)>}\\)",
        "$$\\text{&lt;script&gt;alert(1)&lt;/script&gt;}$$",
        "$$\\text{&#60;script&#62;}$$",
    ],
)
def test_html_inside_math_never_becomes_markup(source):
    html = render_markdown(source)
    assert_inert(html)
    assert "<script" not in html and "<img" not in html and "<svg" not in html and "<iframe" not in html
    # A </math> in the source can't close the element early: every <math> has one end.
    assert html.count("<math") == html.count("</math>") <= 1


def test_math_allow_list_drops_nothing_silently():
    # \href makes latex2mathml emit an href attribute: the formula is refused whole.
    assert latex_to_mathml("\\href{https://example.com}{x}", display=False).startswith('<code class="math-error"')
    assert latex_to_mathml("x^2", display=False).startswith('<math display="inline">')


def test_a_macro_bomb_and_deep_nesting_show_as_source():
    bomb = "\\newcommand{\\A}{" + "x" * 60 + "}\\newcommand{\\B}{" + "\\A " * 60 + "}"
    bomb += "\\newcommand{\\C}{" + "\\B " * 60 + "}\\C \\C"
    assert latex_to_mathml(bomb, display=True).startswith('<code class="math-error"')
    assert latex_to_mathml("{" * 1500 + "x" + "}" * 1500, display=True).startswith('<code class="math-error"')


def test_a_huge_formula_is_not_converted():
    html = latex_to_mathml("x+" * 5000 + "1", display=True)
    assert html.startswith('<code class="math-error"')


# --- raw HTML and links ------------------------------------------------------------------


@pytest.mark.parametrize(
    "source",
    [
        "<script>alert(1)</script>",
        '<img src="x" onerror="alert(1)">',
        '<svg onload="alert(1)"></svg>',
        '<iframe src="https://evil.example/"></iframe>',
        '<a href="javascript:alert(1)">x</a>',
        "text <b onmouseover=alert(1)>hover</b>",
        "<style>body{display:none}</style>",
    ],
)
def test_raw_html_is_escaped_text(source):
    html = render_markdown(source)
    assert_inert(html)
    assert "&lt;" in html


@pytest.mark.parametrize(
    "source",
    [
        "[click](javascript:alert(1))",
        "[click](JaVaScRiPt:alert(1))",
        "[click](  javascript:alert(1))",
        "[click](jav&#x09;ascript:alert(1))",
        "[click](vbscript:msgbox(1))",
        "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
        "<javascript:alert(1)>",
        "[ref]\n\n[ref]: javascript:alert(1)",
        "[click](java%73cript:alert(1))",
        "[click](file:///etc/passwd)",
        "[click](intent://x#Intent;end)",
    ],
)
def test_unsafe_links_are_not_links(source):
    html = render_markdown(source)
    assert_inert(html)
    assert not any(tag == "a" for tag, _ in Elements(html).tags), html


def test_relative_and_mail_links_are_kept():
    html = render_markdown("[a](/docs/) [b](#top) [c](mailto:x@example.com) [d](page.html) [e](?q=1)")
    assert [attrs["href"] for tag, attrs in Elements(html).tags if tag == "a"] == [
        "/docs/",
        "#top",
        "mailto:x@example.com",
        "page.html",
        "?q=1",
    ]


def test_safe_links_open_in_a_new_tab_and_send_no_referrer():
    html = render_markdown("[docs](https://example.com/x?a=1&b=2)")
    assert html == (
        '<p><a href="https://example.com/x?a=1&amp;b=2" target="_blank" rel="noopener noreferrer nofollow">'
        "docs</a></p>\n"
    )


def test_empty_and_none_render_to_nothing():
    assert render_markdown("") == "" and render_markdown(None) == ""
