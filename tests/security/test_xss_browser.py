"""Hostile text in every field that a page shows, rendered in real Chromium: no script runs, nothing is fetched."""

from __future__ import annotations

from typing import Any

import pytest

from app.accounts import service as accounts_service
from app.annotation import service as annotation_service
from app.annotation.schemas import AnnotationSubmit
from app.projects import service as projects_service
from app.projects.schemas import ProjectUpdate
from tests.security.xss_payloads import INJECTED_URL_PREFIX, XSS_PAYLOADS
from tests.ui_helpers import log_in, seed_project

pytestmark = pytest.mark.browser

# NUL characters cannot be stored: imports refuse them with a line error (tested with the import).
PAYLOADS = [p for p in XSS_PAYLOADS if "\x00" not in p]
SHORT = [p for p in PAYLOADS if len(p) <= 95]
HALF = len(PAYLOADS) // 2


def _hostile_lines() -> list[dict[str, Any]]:
    lines = []
    for start in range(0, len(PAYLOADS), 10):
        chunk = PAYLOADS[start : start + 10]
        lines.append(
            {
                "external_id": f"xss-{start}",
                "prompt": "\n\n".join(chunk),
                "responses": [
                    {"text": "\n\n".join(chunk), "model": "<script>window.__xss=1</script>"},
                    {"text": "\n\n".join(reversed(chunk)), "model": "m"},
                ],
            }
        )
    lines.append(
        {
            "external_id": "xss-chat",
            "prompt": [{"role": "user", "content": p} for p in PAYLOADS[:HALF]],
            "responses": ["\n".join(PAYLOADS[HALF:]), "plain"],
        }
    )
    return lines


QUESTIONS = [
    {"name": "overall", "kind": "preference", "title": SHORT[0][:200], "help": SHORT[1]},
    {"name": "topic", "kind": "label", "options": SHORT[2:8], "required": False},
    {"name": "rationale", "kind": "text", "required": False},
]


@pytest.fixture(scope="module")
def hostile_world(live_server: Any) -> dict[str, Any]:
    project, (rater,) = seed_project(
        live_server.sessions,
        _hostile_lines(),
        usernames=("xssrater",),
        questions=QUESTIONS,
        annotations_per_item=1,
    )
    with live_server.sessions() as session:
        admin = accounts_service.find_user(session, "boss")
        stored = projects_service.get_project(session, project.id, admin)
        projects_service.update_project(
            session,
            stored,
            ProjectUpdate(
                name=SHORT[9][:200], description="\n".join(PAYLOADS[:20]), guidelines="\n\n".join(PAYLOADS)
            ),
            admin,
        )
        user = accounts_service.find_user(session, "xssrater")
        leased = annotation_service.next_assignment(session, project.id, user)
        assert leased is not None
        submission = annotation_service.submit_annotation(
            session,
            leased.assignment.id,
            user,
            AnnotationSubmit(
                answers={
                    "overall": {"choice": str(leased.responses[0].id)},
                    "topic": SHORT[2],
                    "rationale": "\n".join(PAYLOADS[:30]),
                },
                rationale="\n".join(PAYLOADS[30:60]),
            ),
        )
        session.commit()
        return {
            "project_id": str(project.id),
            "annotation_id": str(submission.annotation.id),
            "rater_id": str(rater.id),
        }


def _watch(page: Any) -> dict[str, list[str]]:
    seen: dict[str, list[str]] = {"requests": [], "dialogs": [], "violations": []}
    page.on(
        "request",
        lambda request: (
            seen["requests"].append(request.url)
            if request.url.startswith(INJECTED_URL_PREFIX) or request.url.startswith("data:")
            else None
        ),
    )
    page.on("dialog", lambda dialog: (seen["dialogs"].append(dialog.message), dialog.dismiss()))
    page.on(
        "console",
        lambda message: (
            seen["violations"].append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    return seen


def _assert_inert(page: Any, seen: dict[str, list[str]], where: str) -> None:
    page.wait_for_timeout(300)
    assert page.evaluate("() => window.__xss") is None, f"script ran on {where}"
    assert seen["dialogs"] == [], f"dialog opened on {where}"
    assert seen["requests"] == [], f"injected URL fetched on {where}"
    # A CSP report means hostile markup reached the DOM as markup: escaping must stop it before the CSP has to.
    assert seen["violations"] == [], f"CSP had to block something on {where}: {seen['violations'][:3]}"


def test_rater_pages_keep_hostile_text_inert(
    live_server: Any, page: Any, hostile_world: dict[str, Any]
) -> None:
    seen = _watch(page)
    log_in(page, live_server.url, "xssrater")
    pid = hostile_world["project_id"]
    for path in ("/", f"/projects/{pid}/annotate", f"/annotations/{hostile_world['annotation_id']}"):
        page.goto(live_server.url + path)
        _assert_inert(page, seen, path)
    page.goto(f"{live_server.url}/projects/{pid}/annotate")
    assert "<script>" in page.content().replace("&lt;script&gt;", "<script>")  # shown, as text


def test_admin_pages_keep_hostile_text_inert(
    live_server: Any, page: Any, hostile_world: dict[str, Any]
) -> None:
    seen = _watch(page)
    log_in(page, live_server.url, "boss")
    pid = hostile_world["project_id"]
    paths = [
        "/",
        f"/projects/{pid}",
        "/admin/audit",
        "/admin/users",
        f"/projects/{pid}/quality",
        f"/projects/{pid}/raters/{hostile_world['rater_id']}",
        f"/projects/{pid}/training",
        f"/projects/{pid}/agreement",
        f"/projects/{pid}/export",
    ]
    for path in paths:
        response = page.goto(live_server.url + path)
        if response is not None and response.status == 404:
            continue  # a page another part of the app has not built yet
        _assert_inert(page, seen, path)
