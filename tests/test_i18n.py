"""The Chinese catalogue covers every string in the current templates and code, and the UI speaks it."""

from __future__ import annotations

import contextvars
import re
from collections import Counter

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.i18n import CATALOGUE_DIR, gettext, negotiate, set_locale
from tests.conftest import ROOT
from tests.factories import PASSWORD, Persona

CATALOGUE = CATALOGUE_DIR / "zh" / "LC_MESSAGES" / "messages.po"

# Every %-sequence the runtime formatting sees: %(name)s fields, escaped %% and any lone percent sign.
PERCENT = re.compile(r"%\(\w+\)[#0 +-]*\d*(?:\.\d+)?[diouxXeEfFgGcrs]|%%|%")
FIELD = re.compile(r"%\((\w+)\)")
# Text that must reach the reader as written: key names and the brand.
VERBATIM = re.compile(r"\b(?:Ctrl|Shift|Alt)\+(?:\w+|[↑↓←→])|\bEsc\b|\bEnter\b|\bPrefHub\b")

ZH_BROWSER = {"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"}
EN_BROWSER = {"Accept-Language": "en-US,en;q=0.9"}


@pytest.fixture(scope="module")
def source_messages() -> dict[str, list[str]]:
    """msgid -> where it occurs, extracted from the working tree with the project's babel.cfg."""
    with (ROOT / "babel.cfg").open(encoding="utf-8") as handle:
        method_map, options_map = parse_mapping_cfg(handle, "babel.cfg")
    found: dict[str, list[str]] = {}
    for filename, lineno, message, _comments, _context in extract_from_dir(
        ROOT, method_map, options_map, keywords=DEFAULT_KEYWORDS
    ):
        for msgid in [message] if isinstance(message, str) else [m for m in message if m]:
            found.setdefault(msgid, []).append(f"{filename}:{lineno}")
    assert found, "extraction found no strings: is babel.cfg pointing at the templates?"
    return found


@pytest.fixture(scope="module")
def catalogue() -> Catalog:
    assert CATALOGUE.exists(), "run `make messages` and translate the new entries"
    with CATALOGUE.open("rb") as handle:
        return read_po(handle, locale="zh")


def _translations(catalogue: Catalog) -> dict[str, str]:
    return {str(m.id): str(m.string) for m in catalogue if m.id and isinstance(m.id, str)}


def test_the_extraction_sees_templates_and_python_code(source_messages: dict[str, list[str]]) -> None:
    places = {where.split(":")[0].split("/")[0] for found in source_messages.values() for where in found}
    assert {"templates", "app"} <= places
    assert "Both bad" in source_messages


def test_every_source_string_has_a_chinese_translation(
    source_messages: dict[str, list[str]], catalogue: Catalog
) -> None:
    missing = []
    for msgid, where in sorted(source_messages.items()):
        entry = catalogue.get(msgid)
        if entry is None or not entry.string or entry.fuzzy:
            missing.append(f"{msgid!r} ({where[0]})")
    assert not missing, "untranslated (run `make messages`, then translate):\n" + "\n".join(missing)


def test_no_fuzzy_or_empty_entries(catalogue: Catalog) -> None:
    assert [m.id for m in catalogue if m.id and (m.fuzzy or not m.string)] == []


def test_translations_are_not_the_english_copied(catalogue: Catalog) -> None:
    # Only strings without words (a symbol, a field, a formula) may read the same in both languages.
    copied = [
        m.id
        for m in catalogue
        if m.id and m.string == m.id and re.search(r"[A-Za-z]{3,}", FIELD.sub("", str(m.id)))
    ]
    assert copied == []


def test_placeholders_match(catalogue: Catalog) -> None:
    wrong = []
    for msgid, text in _translations(catalogue).items():
        if Counter(PERCENT.findall(msgid)) != Counter(PERCENT.findall(text)):
            wrong.append(f"{msgid!r} -> {text!r}")
            continue
        fields = set(FIELD.findall(msgid))
        if fields:
            try:
                text % dict.fromkeys(fields, "x")
            except (KeyError, ValueError, TypeError) as error:
                wrong.append(f"{msgid!r} -> {text!r}: {error}")
    assert not wrong, "\n".join(wrong)


def test_keys_and_brand_stay_as_written(catalogue: Catalog) -> None:
    wrong = [
        f"{msgid!r} -> {text!r}"
        for msgid, text in _translations(catalogue).items()
        if Counter(VERBATIM.findall(msgid)) != Counter(VERBATIM.findall(text))
    ]
    assert not wrong, "\n".join(wrong)


def test_gettext_formats_the_chinese_text() -> None:
    def in_chinese() -> tuple[str, str]:
        set_locale("zh")
        return gettext("Both bad"), gettext("%(count)s left", count=3)

    assert contextvars.copy_context().run(in_chinese) == ("都不好", "剩余 3")
    assert gettext("%(count)s left", count=3) == "3 left"


@pytest.mark.parametrize(
    ("preferred", "accept_language", "expected"),
    [
        (None, "zh-CN,zh;q=0.9", "zh"),
        (None, "zh-TW", "zh"),
        (None, "fr-FR,en;q=0.5", "en"),
        (None, None, "en"),
        ("en", "zh-CN", "en"),
        ("zh", "en-US", "zh"),
        ("xx", "zh-CN", "zh"),
    ],
)
def test_negotiate(preferred: str | None, accept_language: str | None, expected: str) -> None:
    assert negotiate(preferred, accept_language) == expected


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found is not None
    return found.group(1)


def _zh(catalogue: Catalog, msgid: str) -> str:
    entry = catalogue.get(msgid)
    assert entry is not None and entry.string
    return str(entry.string)


def test_a_chinese_browser_gets_the_chinese_login_page(client: TestClient, catalogue: Catalog) -> None:
    page = client.get("/login", headers=ZH_BROWSER)
    assert page.status_code == 200
    assert '<html lang="zh-CN">' in page.text
    assert f"<h1>{_zh(catalogue, 'Log in')}</h1>" in page.text
    assert _zh(catalogue, "Username") in page.text
    assert "Log in" not in page.text


def test_an_english_browser_gets_english(client: TestClient) -> None:
    page = client.get("/login", headers=EN_BROWSER)
    assert '<html lang="en">' in page.text
    assert "<h1>Log in</h1>" in page.text


def test_the_users_choice_overrides_the_browser(client: TestClient, catalogue: Catalog) -> None:
    page = client.get("/login", headers=ZH_BROWSER)
    chosen = client.post(
        "/language",
        data={"locale": "en", "next": "/login", "csrf_token": _csrf(page.text)},
        headers=ZH_BROWSER,
        follow_redirects=False,
    )
    assert chosen.status_code == 303
    assert chosen.headers["location"] == "/login"
    page = client.get("/login", headers=ZH_BROWSER)
    assert '<html lang="en">' in page.text
    assert "<h1>Log in</h1>" in page.text

    client.post(
        "/language",
        data={"locale": "zh", "next": "/login", "csrf_token": _csrf(page.text)},
        headers=EN_BROWSER,
    )
    page = client.get("/login", headers=EN_BROWSER)
    assert '<html lang="zh-CN">' in page.text
    assert f"<h1>{_zh(catalogue, 'Log in')}</h1>" in page.text


def test_an_unknown_language_changes_nothing(client: TestClient) -> None:
    page = client.get("/login", headers=ZH_BROWSER)
    client.post("/language", data={"locale": "xx", "csrf_token": _csrf(page.text)}, headers=ZH_BROWSER)
    assert '<html lang="zh-CN">' in client.get("/login", headers=ZH_BROWSER).text


def test_a_signed_in_users_choice_follows_them_to_the_next_sign_in(
    client: TestClient, annotator: Persona, app: FastAPI
) -> None:
    page = client.get("/login", headers=EN_BROWSER)
    client.post(
        "/login",
        data={"username": "annotator", "password": PASSWORD, "csrf_token": _csrf(page.text)},
        headers=EN_BROWSER,
    )
    home = client.get("/", headers=EN_BROWSER)
    client.post("/language", data={"locale": "zh", "next": "/", "csrf_token": _csrf(home.text)})

    with TestClient(app, base_url="http://testserver") as fresh:
        page = fresh.get("/login", headers=EN_BROWSER)
        fresh.post(
            "/login",
            data={"username": "annotator", "password": PASSWORD, "csrf_token": _csrf(page.text)},
            headers=EN_BROWSER,
        )
        home = fresh.get("/", headers=EN_BROWSER)
    assert '<html lang="zh-CN">' in home.text
