"""Tests for the safe Markdown renderer: hostile payloads stay inert, ordinary Markdown stays readable."""

from __future__ import annotations

import re
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest
from jinja2 import Environment
from markupsafe import Markup

from app.markdown import (
    ALLOWED_TAGS,
    HIGHLIGHT_CLASSES,
    LINK_REL,
    highlight_css,
    neutralise_text,
    render_markdown,
    render_plain,
)
from tests.security.xss_payloads import INJECTED_URL_PREFIX, XSS_PAYLOADS

CSS_PATH = Path(__file__).resolve().parent.parent / "app" / "static" / "css" / "highlight.css"

FORBIDDEN_TAGS = {
    "script", "iframe", "frame", "frameset", "object", "embed", "applet", "style", "link", "meta", "base",
    "form", "input", "button", "textarea", "select", "isindex", "svg", "math", "img", "image", "picture",
    "source", "video", "audio", "track", "template", "noscript", "body", "html", "head", "marquee",
}  # fmt: skip
# Everything the renderer may emit, attribute by attribute; anything else means the sanitiser leaked.
ALLOWED_ATTRS = {"href", "title", "target", "rel", "class", "align", "start"}
ALLOWED_CLASS_NAMES = set(HIGHLIGHT_CLASSES) | {"highlight", "md", "md-truncated"}
# Attributes that make a browser request a URL without a click.
FETCHING_ATTRS = {
    "src", "srcset", "data", "action", "formaction", "poster", "background", "codebase", "manifest",
    "xlink:href", "ping", "lowsrc", "dynsrc", "longdesc", "icon",
}  # fmt: skip
INJECTED_HOST = INJECTED_URL_PREFIX.removeprefix("http:")
SAFE_SCHEME_RE = re.compile(r"(https?|mailto):")
_INVISIBLE_RE = re.compile("[\x00-\x20\x7f-\x9f]")
BIDI_CONTROLS = [chr(c) for c in [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]]


class Parsed(HTMLParser):
    """Elements, text and comments of a rendered fragment, as a browser's tokenizer would see them."""

    def __init__(self, fragment: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.text_parts: list[str] = []
        self.comments: list[str] = []
        self.feed(fragment)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, attrs))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, attrs))

    def handle_data(self, data: str) -> None:
        self.text_parts.append(data)

    def handle_comment(self, data: str) -> None:
        self.comments.append(data)

    @property
    def tags(self) -> list[str]:
        return [tag for tag, _ in self.elements]

    @property
    def text(self) -> str:
        return "".join(self.text_parts)

    def attrs_of(self, tag: str) -> list[dict[str, str]]:
        return [{k: v or "" for k, v in attrs} for t, attrs in self.elements if t == tag]


def _normalised_url(value: str) -> str:
    # What a browser effectively parses: entities already decoded by the parser, whitespace and control
    # characters ignored, scheme case-insensitive.
    return _INVISIBLE_RE.sub("", value).lower()


def assert_inert(rendered: str) -> None:
    parsed = Parsed(rendered)
    assert not FORBIDDEN_TAGS & set(parsed.tags), parsed.tags
    assert set(parsed.tags) <= ALLOWED_TAGS | {"div"}, parsed.tags
    assert not parsed.comments
    for tag, attrs in parsed.elements:
        for name, raw_value in attrs:
            value = raw_value or ""
            assert not name.startswith("on"), (tag, name)
            assert name != "style", tag
            assert name != "src", tag
            assert name in ALLOWED_ATTRS, (tag, name)
            assert not (name in FETCHING_ATTRS and INJECTED_URL_PREFIX in value), (tag, name, value)
            if name == "href":
                assert tag == "a"
                assert SAFE_SCHEME_RE.match(_normalised_url(value)), value
            if name == "class":
                assert set(value.split()) <= ALLOWED_CLASS_NAMES, value
            if name == "target":
                assert value == "_blank"
            if name == "rel":
                assert set(value.split()) >= {"noopener", "noreferrer"}
        if tag != "a":
            assert all(INJECTED_URL_PREFIX not in (v or "") for _, v in attrs), (tag, attrs)


@pytest.mark.parametrize("payload", XSS_PAYLOADS, ids=range(len(XSS_PAYLOADS)))
def test_payload_renders_inert(payload: str) -> None:
    assert_inert(render_markdown(payload))


@pytest.mark.parametrize("payload", XSS_PAYLOADS, ids=range(len(XSS_PAYLOADS)))
def test_payload_inert_as_plain_text(payload: str) -> None:
    rendered = render_plain(payload)
    assert_inert(rendered)
    assert set(Parsed(rendered).tags) <= {"br"}


def test_all_payloads_together_render_inert() -> None:
    # Payloads in one document can interact (an unclosed tag from one swallowing the next).
    assert_inert(render_markdown("\n\n".join(XSS_PAYLOADS)))
    assert_inert(render_markdown("".join(XSS_PAYLOADS)))


def test_checker_rejects_dangerous_html() -> None:
    # Guards the guard: if assert_inert passed everything, the payload tests above would mean nothing.
    for bad in [
        "<script>alert(1)</script>",
        '<a href="jav&#x09;ascript:alert(1)">x</a>',
        '<a href=" JAVASCRIPT:alert(1)">x</a>',
        '<a href="/relative">x</a>',
        '<img src="http://127.0.0.1:9/xss-1">',
        '<p style="color:red">x</p>',
        '<p onclick="x">x</p>',
        '<span class="evil">x</span>',
        "<!-- hidden -->",
        '<a href="https://ok.example" target="_top">x</a>',
    ]:
        with pytest.raises(AssertionError):
            assert_inert(bad)


# The payload corpus itself.


def test_payload_corpus_is_large_and_distinct() -> None:
    assert len(XSS_PAYLOADS) >= 60
    assert len(set(XSS_PAYLOADS)) == len(XSS_PAYLOADS)


def test_payloads_carry_a_detectable_marker() -> None:
    markers = ("__xss", "alert(1)", "msgbox(1)", INJECTED_HOST, "7*7")
    for payload in XSS_PAYLOADS:
        assert any(marker in payload.lower() for marker in markers), payload


def test_injected_urls_are_numbered_uniquely() -> None:
    owner: dict[str, int] = {}
    for index, payload in enumerate(XSS_PAYLOADS):
        # By host, not full prefix, so protocol-relative payloads are numbered too.
        for match in re.finditer(re.escape(INJECTED_HOST) + r"(\S*)", payload):
            number = re.match(r"xss-(\d+)(?!\d)", match.group(1))
            assert number, payload
            assert owner.setdefault(number.group(1), index) == index, f"xss-{number.group(1)} reused"
    assert len(owner) >= 20


# Specific security behaviour.


@pytest.mark.parametrize(
    "source",
    [
        "[click me](javascript:alert(1))",
        "[click me](JaVaScRiPt:alert(1))",
        "[click me](jav&#x09;ascript:alert(1))",
        "[click me](data:text/html,hi)",
        "[click me](vbscript:MsgBox(1))",
        "[click me](/logout)",
        "[click me](//evil.example/x)",
        "[click me][r]\n\n[r]: javascript:alert(1)",
    ],
)
def test_refused_link_keeps_its_text(source: str) -> None:
    parsed = Parsed(render_markdown(source))
    assert "a" not in parsed.tags
    assert "click me" in parsed.text


def test_dangerous_autolink_is_plain_text() -> None:
    parsed = Parsed(render_markdown("<javascript:alert(1)>"))
    assert "a" not in parsed.tags
    assert "javascript:alert(1)" in parsed.text


def test_remote_image_becomes_placeholder_showing_url() -> None:
    url = INJECTED_URL_PREFIX + "xss-leak"
    rendered = render_markdown(f"![a **cat**]({url})")
    parsed = Parsed(rendered)
    assert "img" not in parsed.tags
    assert "[image: a cat]" in parsed.text
    assert url in parsed.text
    assert f'href="{url}"' not in rendered


def test_image_without_alt_and_huge_data_url() -> None:
    rendered = render_markdown("![](data:image/png;base64," + "A" * 10_000 + ")")
    parsed = Parsed(rendered)
    assert "[image]" in parsed.text
    assert "img" not in parsed.tags
    assert len(rendered) < 1_000


def test_raw_script_is_visible_as_text() -> None:
    rendered = render_markdown("<script>window.__xss=1</script>")
    assert "&lt;script&gt;window.__xss=1&lt;/script&gt;" in rendered
    assert "<script" not in rendered


def test_raw_html_block_is_visible_as_text() -> None:
    parsed = Parsed(render_markdown('<div onclick="x">\nhello\n</div>'))
    assert parsed.tags == ["div", "p"]  # only the wrapper div and the paragraph around the literal text
    assert '<div onclick="x">' in parsed.text


def test_code_fence_with_script_shows_as_code() -> None:
    rendered = render_markdown("```html\n<script>window.__xss=1</script>\n```")
    parsed = Parsed(rendered)
    assert "script" not in parsed.tags
    assert "<script>window.__xss=1</script>" in parsed.text
    assert "pre" in parsed.tags and "code" in parsed.tags


def test_fence_info_string_never_reaches_an_attribute() -> None:
    rendered = render_markdown('```python" onmouseover="window.__xss=1\nprint(1)\n```')
    assert "onmouseover" not in rendered
    assert Parsed(rendered).attrs_of("code") == [{}]


def test_comments_are_not_emitted() -> None:
    rendered = render_markdown("before <!--<img src=x onerror=alert(1)>--> after")
    assert "<!--" not in rendered
    assert "before" in rendered and "after" in rendered


def test_template_syntax_stays_literal() -> None:
    for source in ("{{7*7}}", "${7*7}", "{{constructor.constructor('alert(1)')()}}"):
        text = Parsed(render_markdown(source)).text
        assert source in text
        assert "49" not in text


def test_fullwidth_and_double_encoded_stay_text() -> None:
    text = Parsed(render_markdown("＜script＞ &amp;lt;b&amp;gt;")).text
    assert "＜script＞" in text
    assert "&lt;b&gt;" in text


def test_control_characters_are_removed() -> None:
    rendered = render_markdown("a\x00b\x07c\x1bd\x7fe\x85f\tg\nh")
    assert re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f]", rendered) is None
    text = Parsed(rendered).text
    assert "abcdef\tg\nh" in text


def test_carriage_returns_become_newlines() -> None:
    assert neutralise_text("a\r\nb\rc") == "a\nb\nc"


@pytest.mark.parametrize("control", BIDI_CONTROLS, ids=[f"U+{ord(c):04X}" for c in BIDI_CONTROLS])
def test_bidi_controls_are_neutralised(control: str) -> None:
    source = f"invoice{control}fdp.exe"
    for rendered in (render_markdown(source), render_plain(source)):
        assert control not in rendered
        assert f"U+{ord(control):04X}" in rendered
        assert "fdp.exe" in rendered


def test_bidi_marker_cannot_form_a_link() -> None:
    parsed = Parsed(render_markdown("\u202e(https://example.com)"))
    assert "a" not in parsed.tags


def test_relative_urls_are_dropped_by_sanitiser_alone() -> None:
    from app.markdown import _CLEAN

    cleaned = _CLEAN('<a href="/admin/delete">x</a><a href="https://ok.example/">y</a>')
    assert "/admin/delete" not in cleaned
    assert 'href="https://ok.example/"' in cleaned


# What a rater must still see.


def test_returns_markup_that_jinja_does_not_escape_again() -> None:
    env = Environment(autoescape=True)
    env.filters["markdown"] = render_markdown
    out = env.from_string("{{ body|markdown }}|{{ body }}").render(body="**hi** <b>")
    rendered, escaped = out.split("|")
    assert isinstance(render_markdown("x"), Markup)
    assert "<strong>hi</strong> &lt;b&gt;" in rendered
    assert escaped == "**hi** &lt;b&gt;"


def test_empty_input() -> None:
    assert render_markdown("") == Markup("")
    assert render_markdown(None) == Markup("")
    assert render_plain(None) == Markup("")


def test_output_is_wrapped_in_md_div() -> None:
    rendered = render_markdown("hello")
    assert rendered.startswith('<div class="md">')
    assert rendered.endswith("</div>")


def test_headings_and_emphasis() -> None:
    rendered = render_markdown("# Title\n\n## Sub\n\n**bold** *it* ~~gone~~")
    assert "<h1>Title</h1>" in rendered
    assert "<h2>Sub</h2>" in rendered
    assert "<strong>bold</strong>" in rendered
    assert "<em>it</em>" in rendered
    assert "<s>gone</s>" in rendered


def test_lists_and_blockquote() -> None:
    rendered = render_markdown("- a\n- b\n\n3. c\n4. d\n\n> quoted")
    parsed = Parsed(rendered)
    assert parsed.tags.count("li") == 4
    assert "ul" in parsed.tags and "blockquote" in parsed.tags
    assert parsed.attrs_of("ol") == [{"start": "3"}]


def test_table_with_alignment() -> None:
    rendered = render_markdown("| l | c | r |\n|:--|:-:|--:|\n| 1 | 2 | 3 |")
    parsed = Parsed(rendered)
    assert {"table", "thead", "tbody", "tr", "th", "td"} <= set(parsed.tags)
    assert [a.get("align") for a in parsed.attrs_of("th")] == ["left", "center", "right"]
    assert "style" not in rendered


def test_inline_code_is_escaped() -> None:
    assert "<code>&lt;b&gt; x</code>" in render_markdown("`<b> x`")


def test_python_fence_is_highlighted() -> None:
    rendered = render_markdown("```python\ndef f():\n    return 1\n```")
    assert '<pre class="highlight"><code>' in rendered
    assert '<span class="k">def</span>' in rendered
    assert '<span class="nf">f</span>' in rendered


def test_unknown_language_is_plain_escaped() -> None:
    rendered = render_markdown("```no-such-language\nif x < 1: pass\n```")
    assert "<span" not in rendered
    assert "if x &lt; 1: pass" in rendered


def test_unlabelled_fence_is_not_guessed() -> None:
    rendered = render_markdown("```\ndef f():\n    return 1\n```")
    assert "<span" not in rendered
    assert "def f():" in rendered


def test_raw_inline_html_is_literal() -> None:
    assert "&lt;b&gt;bold&lt;/b&gt;" in render_markdown("<b>bold</b>")


def test_cjk_and_rtl_text_survive() -> None:
    source = "你好，世界。こんにちは 안녕하세요 مرحبا שלום"
    assert source in Parsed(render_markdown(source)).text


def test_plain_link_gets_rel_and_new_tab() -> None:
    parsed = Parsed(render_markdown("[docs](https://example.com/a?b=1&c=2) <mailto:x@example.com>"))
    links = parsed.attrs_of("a")
    assert [link["href"] for link in links] == ["https://example.com/a?b=1&c=2", "mailto:x@example.com"]
    for link in links:
        assert link["rel"] == LINK_REL
        assert link["target"] == "_blank"


def test_long_unbroken_string_is_kept() -> None:
    word = "a" * 50_000
    assert word in render_markdown(word)


def test_one_megabyte_is_truncated_with_note() -> None:
    source = "x" * 1_000_000
    rendered = render_markdown(source)
    assert "… 800,000 more characters not shown" in rendered
    assert len(rendered) < 201_000
    assert "x" * 200_000 in rendered


def test_custom_max_chars() -> None:
    rendered = render_markdown("abcdefghij", max_chars=4)
    assert "abcd" in rendered and "abcde" not in rendered
    assert "6 more characters not shown" in rendered
    assert "more characters" not in render_markdown("abcd", max_chars=4)


def test_render_plain_escapes_and_keeps_lines() -> None:
    rendered = render_plain('line <b>one</b> & "two"\nline\x00 two')
    assert rendered == "line &lt;b&gt;one&lt;/b&gt; &amp; &quot;two&quot;<br>\nline two"
    assert isinstance(rendered, Markup)


def test_render_plain_does_not_trust_markup_input() -> None:
    assert render_plain(Markup("<b>x</b>")) == "&lt;b&gt;x&lt;/b&gt;"


def test_render_plain_truncates() -> None:
    rendered = render_plain("y" * 30, max_chars=10)
    assert "y" * 10 in rendered and "y" * 11 not in rendered
    assert "20 more characters not shown" in rendered


# Stylesheet and speed.


def test_highlight_css_is_scoped() -> None:
    css = highlight_css()
    rules = [line for line in css.splitlines() if line and not line.startswith("/*")]
    assert rules
    assert all(rule.startswith(".md") for rule in rules), [r for r in rules if not r.startswith(".md")]
    assert ".md .highlight .k " in css


def test_shipped_stylesheet_is_generated() -> None:
    shipped = CSS_PATH.read_text(encoding="utf-8")
    assert ".md .highlight .k " in shipped
    assert all(line.startswith((".md", "/*")) for line in shipped.splitlines() if line)


def test_typical_response_renders_quickly() -> None:
    body = (
        "## Answer\n\nUse **slicing**: `xs[::-1]`, see [docs](https://docs.python.org/).\n\n"
        "```python\ndef rev(xs: list[int]) -> list[int]:\n    return xs[::-1]\n```\n\n"
        "| a | b |\n|---|---|\n| 1 | 2 |\n\n- one\n- two\n\n" + "Plain prose sentence here. " * 50
    )
    render_markdown(body)
    runs = 50
    start = time.perf_counter()
    for _ in range(runs):
        render_markdown(body)
    # Generous bound so a busy machine does not fail it; a lost cache or pathological regression still will.
    assert (time.perf_counter() - start) / runs < 0.02
