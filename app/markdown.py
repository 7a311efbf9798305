"""Safe HTML rendering of untrusted model output and rater text: Markdown, code highlighting, sanitising."""

from __future__ import annotations

import functools
import html
import re
from collections.abc import Callable, Sequence
from typing import Any

import nh3
from markdown_it import MarkdownIt
from markdown_it.common.utils import unescapeAll
from markdown_it.renderer import RendererHTML
from markdown_it.rules_core import StateCore
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict
from markupsafe import Markup
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexer import Lexer
from pygments.lexers import get_lexer_by_name
from pygments.token import STANDARD_TYPES
from pygments.util import ClassNotFound

__all__ = [
    "ALLOWED_ATTRIBUTES",
    "ALLOWED_TAGS",
    "ALLOWED_URL_SCHEMES",
    "HIGHLIGHT_CLASSES",
    "LINK_REL",
    "highlight_css",
    "neutralise_text",
    "render_markdown",
    "render_plain",
]

DEFAULT_MAX_CHARS = 200_000
# Pygments lexers are regex machines; a few have slow paths on adversarial input, so giant blocks are
# shown as plain escaped text instead of being tokenised.
MAX_HIGHLIGHT_CHARS = 50_000
# Images are never rendered, only named; a data: URL can be huge, so only its start is shown.
_MAX_SHOWN_IMAGE_URL = 200

ALLOWED_URL_SCHEMES = frozenset({"http", "https", "mailto"})
LINK_REL = "noopener noreferrer nofollow"

# Exactly the elements the Markdown renderer below can emit. No img/video/audio/iframe: nothing in a rendered
# response may make the rater's browser fetch a URL on its own.
ALLOWED_TAGS = frozenset(
    {
        "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6",
        "strong", "em", "s", "code", "pre", "blockquote", "ul", "ol", "li", "a",
        "table", "thead", "tbody", "tr", "th", "td", "span",
    }
)  # fmt: skip
# Free-valued attributes. `class`, `align`, `target` and `rel` are handled separately with fixed values.
ALLOWED_ATTRIBUTES: dict[str, set[str]] = {"a": {"href", "title"}, "ol": {"start"}}
_ALIGN_VALUES = {"left", "center", "right"}
_TAG_ATTRIBUTE_VALUES = {"th": {"align": _ALIGN_VALUES}, "td": {"align": _ALIGN_VALUES}}
# Links open in a new tab so a rater never navigates away from a half-finished judgement.
_SET_TAG_ATTRIBUTE_VALUES = {"a": {"target": "_blank"}}
# Short Pygments token classes ("k", "nf", "s2", ...); the only classes a rendered response may carry.
HIGHLIGHT_CLASSES = frozenset(name for name in STANDARD_TYPES.values() if name)
_ALLOWED_CLASSES = {"pre": {"highlight"}, "span": set(HIGHLIGHT_CLASSES)}

_SCHEME_RE = re.compile(r"([a-zA-Z][a-zA-Z0-9+.\-]*):")
# C0 controls except \t and \n, DEL and C1 controls: invisible, and NUL confuses parsers downstream.
_CONTROL_RE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# Embeddings, overrides and isolates can make displayed text read differently from what it contains.
_BIDI_RE = re.compile("[\u202a-\u202e\u2066-\u2069]")
_LANG_RE = re.compile(r"[A-Za-z0-9_+#.\-]{1,40}")


def _bidi_marker(match: re.Match[str]) -> str:
    # Shown, not silently removed: a rater judging red-team output should see that the trick was attempted.
    # The brackets are not Markdown syntax, so the marker cannot combine with what follows into a link.
    return f"⟦U+{ord(match.group()):04X}⟧"


def neutralise_text(text: str) -> str:
    """Drop control characters (keeping tab and newline) and make bidi control characters visible."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL_RE.sub("", text)
    return _BIDI_RE.sub(_bidi_marker, text)


def _is_allowed_url(url: str) -> bool:
    # Relative and scheme-less URLs are refused too: in a model response they can only point back into this
    # application. markdown-it has already decoded entities and percent-encoded whitespace and controls, so
    # "jav&#x09;ascript:" arrives as "jav%09ascript:" and fails the scheme pattern.
    match = _SCHEME_RE.match(url)
    return match is not None and match.group(1).lower() in ALLOWED_URL_SCHEMES


class _MarkdownIt(MarkdownIt):
    def validateLink(self, url: str) -> bool:
        # Accept every destination at parse time so that a refused link still parses as a link and
        # _apply_link_policy can drop it while keeping its text, rather than showing the raw Markdown.
        return True


def _plain_text(tokens: Sequence[Token] | None) -> str:
    parts: list[str] = []
    for token in tokens or ():
        if token.type in ("text", "code_inline", "text_special"):
            parts.append(token.content)
        elif token.children:
            parts.append(_plain_text(token.children))
    return "".join(parts)


def _image_placeholder(image: Token) -> list[Token]:
    alt = _plain_text(image.children).strip()
    label = f"[image: {alt}]" if alt else "[image]"
    placeholder = [Token("text", "", 0, content=label)]
    src = str(image.attrGet("src") or "")
    if src:
        if len(src) > _MAX_SHOWN_IMAGE_URL:
            src = src[:_MAX_SHOWN_IMAGE_URL] + "…"
        # The URL is shown as code, never as an attribute, so a rater can spot an exfiltration attempt
        # without their browser making the request.
        placeholder += [
            Token("text", "", 0, content=" "),
            Token("code_inline", "code", 0, content=src, markup="`"),
        ]
    return placeholder


def _rewrite_inline(children: list[Token]) -> list[Token]:
    out: list[Token] = []
    dropped_links: list[bool] = []
    for child in children:
        if child.type == "link_open":
            drop = not _is_allowed_url(str(child.attrGet("href") or ""))
            dropped_links.append(drop)
            if drop:
                continue
        elif child.type == "link_close":
            if dropped_links and dropped_links.pop():
                continue
        elif child.type == "image":
            out.extend(_image_placeholder(child))
            continue
        out.append(child)
    return out


def _apply_link_policy(state: StateCore) -> None:
    for token in state.tokens:
        if token.type == "inline" and token.children:
            token.children = _rewrite_inline(token.children)
        elif token.type in ("th_open", "td_open"):
            # markdown-it aligns cells with inline style, which the sanitiser forbids; the align attribute
            # keeps the author's alignment with a value from a fixed set.
            style = str(token.attrGet("style") or "")
            token.attrs.pop("style", None)
            if style.startswith("text-align:"):
                token.attrSet("align", style.removeprefix("text-align:"))


@functools.lru_cache(maxsize=128)
def _lexer_for(lang: str) -> Lexer | None:
    try:
        return get_lexer_by_name(lang)
    except ClassNotFound:
        return None


_FORMATTER = HtmlFormatter(nowrap=True)


def _render_fence(
    self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    token = tokens[idx]
    info = unescapeAll(token.info).strip()
    lang = info.split(maxsplit=1)[0].lower() if info else ""
    code = token.content
    # Unlabelled fences are never guessed at: guessing is slow and often wrong on adversarial text.
    lexer = _lexer_for(lang) if _LANG_RE.fullmatch(lang) and len(code) <= MAX_HIGHLIGHT_CHARS else None
    body = highlight(code, lexer, _FORMATTER) if lexer is not None else html.escape(code, quote=False)
    # The info string is deliberately not echoed into an attribute.
    return f'<pre class="highlight"><code>{body}</code></pre>\n'


def _build_markdown() -> MarkdownIt:
    md = _MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.enable(["table", "strikethrough"])
    md.core.ruler.push("prefhub_link_policy", _apply_link_policy)
    md.add_render_rule("fence", _render_fence)
    return md


def _filter_attribute(tag: str, attribute: str, value: str) -> str | None:
    # A second, independent check of the link policy, so the sanitiser alone would still refuse a relative
    # or non-http(s)/mailto href even if the Markdown layer let one through.
    if attribute == "href" and not _is_allowed_url(value.strip()):
        return None
    return value


def _build_cleaner() -> Callable[[str], str]:
    options: dict[str, Any] = {
        "tags": set(ALLOWED_TAGS),
        "attributes": {tag: set(attrs) for tag, attrs in ALLOWED_ATTRIBUTES.items()},
        "tag_attribute_values": _TAG_ATTRIBUTE_VALUES,
        "set_tag_attribute_values": _SET_TAG_ATTRIBUTE_VALUES,
        "allowed_classes": _ALLOWED_CLASSES,
        "attribute_filter": _filter_attribute,
        "url_schemes": set(ALLOWED_URL_SCHEMES),
        "link_rel": LINK_REL,
        "strip_comments": True,
    }
    # nh3 >= 0.3 compiles the policy once; older releases rebuild it per call but accept the same options.
    if hasattr(nh3, "Cleaner"):
        return nh3.Cleaner(**options).clean
    return functools.partial(nh3.clean, **options)


_MD = _build_markdown()
_CLEAN = _build_cleaner()


def _truncate(text: str, max_chars: int) -> tuple[str, int]:
    if len(text) <= max_chars:
        return text, 0
    return text[:max_chars], len(text) - max_chars


def _truncation_note(hidden: int) -> str:
    return f'<p class="md-truncated">… {hidden:,} more characters not shown</p>\n'


def render_markdown(text: str | None, *, max_chars: int = DEFAULT_MAX_CHARS) -> Markup:
    """Render untrusted Markdown to sanitised HTML wrapped in ``<div class="md">``; usable as a Jinja filter.

    Raw HTML is shown as text, links are limited to http, https and mailto, images become a text
    placeholder, and text beyond ``max_chars`` is replaced by a visible note.
    """
    if not text:
        return Markup("")
    # Truncate before any other work so the cost is bounded by max_chars, not by the input.
    kept, hidden = _truncate(str(text), max_chars)
    body = _CLEAN(_MD.render(neutralise_text(kept)))
    note = _truncation_note(hidden) if hidden else ""
    return Markup(f'<div class="md">\n{body}{note}</div>')


def render_plain(text: str | None, *, max_chars: int = DEFAULT_MAX_CHARS) -> Markup:
    """Escape untrusted plain text (names, rationales, labels), keeping its line breaks as ``<br>``."""
    if not text:
        return Markup("")
    # str() first: escaping a Markup instance would trust it, and this text is never trusted.
    kept, hidden = _truncate(str(text), max_chars)
    escaped = html.escape(neutralise_text(kept), quote=True).replace("\n", "<br>\n")
    note = f"<br>\n… {hidden:,} more characters not shown" if hidden else ""
    return Markup(escaped + note)


_BASE_CSS = """\
/* Layout for rendered responses: long unbroken strings wrap instead of widening the page. */
.md { overflow-wrap: anywhere; }
.md pre { overflow-x: auto; max-width: 100%; line-height: 125%; }
.md pre code { overflow-wrap: normal; }
.md .md-truncated { font-style: italic; opacity: 0.75; }
"""


def highlight_css(style: str = "default") -> str:
    """Return the stylesheet for highlighted code, scoped under ``.md .highlight``.

    Regenerate the shipped file from the project root with::

        python -c "from app.markdown import highlight_css; print(highlight_css(), end='')" \\
            > app/static/css/highlight.css
    """
    formatter = HtmlFormatter(style=style)
    scope = ".md .highlight"
    # Only the background and token rules: get_style_defs() also emits unscoped pre and line-number rules
    # that would leak into the rest of the page.
    rules = [*formatter.get_background_style_defs(scope), *formatter.get_token_style_defs(scope)]
    return _BASE_CSS + "\n".join(rules) + "\n"
