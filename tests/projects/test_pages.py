"""Admin project pages: create from the form, change settings, import a file with a dry run first."""

from __future__ import annotations

import json
import re

from fastapi.testclient import TestClient

from tests.factories import PASSWORD, Persona, create_project, pair_lines


def _logged_in(client: TestClient, username: str) -> str:
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
    assert token is not None
    client.post("/login", data={"username": username, "password": PASSWORD, "csrf_token": token.group(1)})
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/account").text)
    assert found is not None
    return found.group(1)


def _count(client: TestClient, admin: Persona, project_id: str) -> int:
    return int(
        client.get(f"/api/v1/projects/{project_id}/items?limit=1", headers=admin.headers).json()["total"]
    )


def test_dry_run_then_import_from_the_project_page(client: TestClient, admin: Persona) -> None:
    project = create_project(client, admin)
    csrf = _logged_in(client, "admin")
    body = "\n".join(json.dumps(line) for line in pair_lines(4)) + "\n{broken"
    files = {"file": ("items.jsonl", body.encode(), "application/x-ndjson")}
    dry = client.post(
        f"/projects/{project['id']}/import",
        data={"csrf_token": csrf, "pairs": "none", "dry_run": "1"},
        files=files,
        headers={"HX-Request": "true"},
    )
    assert dry.status_code == 200
    assert "Dry run" in dry.text and "<strong>4</strong>" in dry.text and "line 5" in dry.text
    assert "Question number 0?" in dry.text  # the preview of the first lines
    assert _count(client, admin, project["id"]) == 0
    real = client.post(
        f"/projects/{project['id']}/import",
        data={"csrf_token": csrf, "pairs": "none"},
        files=files,
        headers={"HX-Request": "true"},
    )
    assert "Created" in real.text and _count(client, admin, project["id"]) == 4


def test_create_project_from_the_form_and_show_errors(client: TestClient, admin: Persona) -> None:
    csrf = _logged_in(client, "admin")
    bad = client.post(
        "/projects/new",
        data={
            "csrf_token": csrf,
            "name": "X",
            "questions": '[{"kind": "nope"}]',
            "annotations_per_item": "2",
        },
    )
    assert bad.status_code == 422 and "questions" in bad.text
    good = client.post(
        "/projects/new",
        data={
            "csrf_token": csrf,
            "name": "From the form",
            "questions": json.dumps([{"name": "q", "kind": "text"}]),
            "annotations_per_item": "2",
        },
        follow_redirects=False,
    )
    assert good.status_code == 303
    page = client.get(good.headers["location"])
    assert page.status_code == 200 and "From the form" in page.text


def test_guidelines_saved_from_the_page_make_a_new_version(client: TestClient, admin: Persona) -> None:
    project = create_project(client, admin)
    csrf = _logged_in(client, "admin")
    client.post(f"/projects/{project['id']}/guidelines", data={"csrf_token": csrf, "guidelines": "# Be kind"})
    page = client.get(f"/projects/{project['id']}")
    assert "v2" in page.text and "Be kind" in page.text


def test_an_unknown_address_keeps_the_logged_in_navigation_and_projects_leads_home(
    client: TestClient, admin: Persona
) -> None:
    anonymous = client.get("/no-such-page")
    assert anonymous.status_code == 404
    assert 'href="/account"' not in anonymous.text

    _logged_in(client, "admin")
    missing = client.get("/no-such-page")
    assert missing.status_code == 404
    assert "There is no page at this address." in missing.text and "Back to projects" in missing.text
    # The header a logged-in admin sees everywhere else: their account, the admin links, log out.
    assert '<a href="/account">admin</a>' in missing.text
    assert 'href="/admin/users"' in missing.text

    listed = client.get("/projects", follow_redirects=False)
    assert listed.status_code == 307 and listed.headers["location"] == "/"


def test_the_project_page_lists_its_questions_as_raters_answer_them(
    client: TestClient, admin: Persona
) -> None:
    questions = [
        {
            "name": "overall",
            "kind": "preference",
            "title": "Which is <b>better</b>?",
            "allow_both_bad": False,
            "strength": {"labels": ["a little", "a lot"]},
        },
        {
            "name": "helpful",
            "kind": "rating",
            "min": 1,
            "max": 5,
            "labels": {"1": "useless", "5": "excellent"},
        },
        {"name": "topic", "kind": "label", "options": ["code", "prose"], "required": False},
        {"name": "why", "kind": "text", "max_length": 800},
    ]
    project = create_project(client, admin, questions=questions)
    _logged_in(client, "admin")
    html = client.get(f"/projects/{project['id']}").text
    table = html.split('class="table questions-table"', 1)[1].split("</table>", 1)[0]
    rows = [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row)).strip() for row in table.split("<tr>")[2:]]
    assert rows == [
        "overall Which is &lt;b&gt;better&lt;/b&gt;? The better of two responses · tie allowed"
        " Strength: a little · a lot",
        "helpful Helpful A score for each response from 1 to 5 (ordinal scale) · 1 useless · 5 excellent",
        "topic Topic (optional) One of: code · prose",
        "why Why (optional) Free text, up to 800 characters",
    ]
    # The JSON stays on the page for copying into an API call.
    assert "As JSON (for the API)" in html and "&#34;max_length&#34;: 800" in html
