"""HTML helpers: sanitising for display, plain text for matching, absolute URLs."""

from __future__ import annotations

import pytest

from sigwatch.sources.text import absolutize_urls, html_to_text, sanitize_html, text_to_html


@pytest.mark.parametrize(
    ("fragment", "text"),
    [
        ("<p>Token <b>launch</b></p><p>next&nbsp;week</p>", "Token launch next week"),
        ("one<br>two<li>three</li>", "one two three"),
        ("AT&amp;T &lt;3 &#8217; &hellip;", "AT&T <3 \u2019 \u2026"),
        ("<script>var x = 1;</script><style>p{}</style>visible", "visible"),
        ("  plain\n\ttext  ", "plain text"),
        ("", ""),
    ],
)
def test_html_to_text_keeps_visible_words_apart_and_decoded(fragment, text):
    assert html_to_text(fragment) == text


def test_sanitize_html_removes_scripts_handlers_and_unsafe_urls():
    dirty = (
        '<p onclick="x()">Hi <a href="javascript:alert(1)">a</a> <a href="https://ok.example/">b</a>'
        '<img src="https://ok.example/i.png" onerror="x()"><script>steal()</script>'
        "<iframe src=https://evil.example></iframe></p>"
    )

    clean = sanitize_html(dirty)

    assert "onclick" not in clean and "onerror" not in clean
    assert "javascript:" not in clean and "steal" not in clean and "iframe" not in clean
    assert '<a href="https://ok.example/" rel="noopener noreferrer nofollow">b</a>' in clean
    assert '<img src="https://ok.example/i.png">' in clean


def test_absolutize_urls_resolves_relative_links_and_images():
    fragment = '<p><a href="/a">a</a> <img src="img/b.png"> <a href="https://x.example/">x</a></p>'

    result = absolutize_urls(fragment, "https://site.example/blog/post")

    assert result == (
        '<p><a href="https://site.example/a">a</a> <img src="https://site.example/blog/img/b.png">'
        ' <a href="https://x.example/">x</a></p>'
    )


def test_text_to_html_escapes_and_keeps_paragraphs():
    assert text_to_html("a < b\nc\n\nnext") == "<p>a &lt; b<br>c</p><p>next</p>"
