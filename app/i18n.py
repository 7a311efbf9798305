"""UI languages: English and Simplified Chinese, from gettext catalogues read at start-up."""

from __future__ import annotations

import contextvars
from functools import lru_cache
from pathlib import Path

from babel.messages.pofile import read_po

LOCALES = ("en", "zh")
LOCALE_NAMES = {"en": "English", "zh": "中文"}
CATALOGUE_DIR = Path(__file__).resolve().parent / "locale"
_locale: contextvars.ContextVar[str] = contextvars.ContextVar("locale", default="en")


@lru_cache
def _catalogue(locale: str) -> dict[str, str]:
    path = CATALOGUE_DIR / locale / "LC_MESSAGES" / "messages.po"
    if not path.exists():
        return {}
    with path.open("rb") as handle:
        catalog = read_po(handle)
    return {str(m.id): str(m.string) for m in catalog if m.id and m.string and not m.fuzzy}


def negotiate(preferred: str | None, accept_language: str | None) -> str:
    """The user's own setting wins; otherwise the browser's Accept-Language, else English."""
    if preferred in LOCALES:
        return str(preferred)
    for part in (accept_language or "").split(","):
        tag = part.split(";")[0].strip().lower()
        if tag.startswith("zh"):
            return "zh"
        if tag.startswith("en"):
            return "en"
    return "en"


def set_locale(locale: str) -> None:
    _locale.set(locale if locale in LOCALES else "en")


def get_locale() -> str:
    return _locale.get()


def gettext(message: str, **params: object) -> str:
    text = _catalogue(_locale.get()).get(message, message) if _locale.get() != "en" else message
    return text % params if params else text
