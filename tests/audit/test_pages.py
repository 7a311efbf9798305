"""The audit log page: admin actions in words, with names instead of ids and each changed field as before → after."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from tests.factories import PASSWORD, Persona, add_members, create_project, import_lines, pair_lines
from tests.projects.test_pages import _logged_in


def _rows(html: str) -> list[str]:
    body = html.split('class="table audit-log"', 1)[1].split("</table>", 1)[0].split("<tbody>", 1)[1]
    cells = [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row)).strip() for row in body.split("<tr>")[1:]]
    return [cell.replace(" :", ":") for cell in cells]


def test_the_log_names_who_did_what_to_whom_and_what_changed(
    client: TestClient, admin: Persona, annotator: Persona
) -> None:
    project = create_project(client, admin, name="Helpfulness")
    add_members(client, admin, project["id"], annotator)
    base = f"/api/v1/projects/{project['id']}"
    patched = client.patch(base, json={"annotations_per_item": 3, "status": "paused"}, headers=admin.headers)
    assert patched.status_code == 200, patched.text
    excluded = client.post(
        f"{base}/raters/{annotator.id}/exclude",
        json={"reason": "<script>x()</script>"},
        headers=admin.headers,
    )
    assert excluded.status_code == 200, excluded.text
    _logged_in(client, "admin")

    html = client.get("/admin/audit").text
    rows = _rows(html)
    assert rows[:3] == [
        rows[0].split(" admin ")[0] + " admin Excluded a rater Helpfulness annotator"
        " Excluded: no → yes Reason: &lt;script&gt;x()&lt;/script&gt;",
        rows[1].split(" admin ")[0] + " admin Changed project settings Helpfulness"
        " Annotations per item: 2 → 3 Status: active → paused",
        rows[2].split(" admin ")[0] + " admin Added a member Helpfulness annotator Username: annotator",
    ]
    assert "<script>x()" not in html
    # No raw ids or JSON where a name can be shown.
    assert str(annotator.id) not in html and "{&#34;" not in html

    only_updates = _rows(client.get("/admin/audit", params={"action": "project.update"}).text)
    assert len(only_updates) == 1 and "Changed project settings" in only_updates[0]

    # The project page shows the same changes, newest first, and links to the whole log of the project.
    page = client.get(f"/projects/{project['id']}").text
    recent = page.split("Recent changes", 1)[1]
    assert "Excluded a rater: annotator" in recent
    assert re.search(r"Annotations per item</span>: <del[^>]*>2</del> → <ins[^>]*>3</ins>", recent)
    assert f'href="/admin/audit?project_id={project["id"]}"' in recent


def test_the_log_pages_through_older_events_and_keeps_the_filter(
    client: TestClient, admin: Persona, annotator: Persona
) -> None:
    project = create_project(client, admin)
    other = create_project(client, admin, name="Other")
    for lease in range(1, 106):
        response = client.patch(
            f"/api/v1/projects/{project['id']}", json={"lease_minutes": lease + 10}, headers=admin.headers
        )
        assert response.status_code == 200, response.text
    _logged_in(client, "admin")

    first = client.get("/admin/audit", params={"project_id": project["id"]}).text
    assert "(106)" in first and "Page 1 of 2" in first and len(_rows(first)) == 100
    # The newest change comes first: the lease went to 115 last.
    assert "Lease (minutes): 114 → 115" in _rows(first)[0]
    older = re.search(r'href="(/admin/audit\?[^"]*page=2)"', first)
    assert older is not None
    second = client.get(older.group(1).replace("&amp;", "&")).text
    rows = _rows(second)
    assert len(rows) == 6 and "Created the project" in rows[-1]
    assert "Other" not in "".join(rows) and other["id"] not in second.split("<tbody>", 1)[1]


def test_a_gold_answer_reads_as_the_questions_it_answers_and_why(client: TestClient, admin: Persona) -> None:
    project = create_project(client, admin)
    import_lines(client, admin, project["id"], pair_lines(1))
    base = f"/api/v1/projects/{project['id']}"
    item = client.get(f"{base}/items", headers=admin.headers).json()["items"][0]
    chosen = item["responses"][1]["id"]
    gold = client.put(
        f"{base}/items/{item['id']}/gold",
        json={"answers": {"overall": {"choice": chosen}}, "explanation": "B cites its source."},
        headers=admin.headers,
    )
    assert gold.status_code == 200, gold.text
    _logged_in(client, "admin")

    row = _rows(client.get("/admin/audit", params={"action": "item.set_gold"}).text)[0]
    assert f"Set a gold answer {project['name']} item {item['id'][:8]}" in row
    # Set, not replaced: no struck-out "—" before it, and no response ids.
    assert row.endswith("Gold answer: overall · B cites its source. Purpose: live → gold")
    assert chosen not in row


def test_api_tokens_made_and_revoked_are_logged_without_their_secret_and_logins_are_not(
    client: TestClient, admin: Persona, annotator: Persona
) -> None:
    created = client.post(
        "/api/v1/users/me/tokens",
        json={"name": "ci export", "expires_in_days": 30},
        headers=annotator.headers,
    )
    assert created.status_code == 201, created.text
    secret = created.json()["token"]
    revoked = client.delete(f"/api/v1/users/me/tokens/{created.json()['id']}", headers=annotator.headers)
    assert revoked.status_code == 204, revoked.text
    # A password login over the API makes a token as well: that is not an admin action, and is not logged.
    login = client.post("/api/v1/auth/token", data={"username": "annotator", "password": PASSWORD})
    assert login.status_code == 200, login.text
    _logged_in(client, "admin")

    html = client.get("/admin/audit").text
    rows = [row.split(" ", 2)[2] for row in _rows(html)]  # without the date and time
    made = (
        f"annotator Created an API token annotator Name: ci export Token starts with: {secret[:10]} Expires: "
    )
    assert (
        rows[0]
        == f"annotator Revoked an API token annotator Name: ci export Token starts with: {secret[:10]}"
    )
    assert rows[1].startswith(made) and rows[1].endswith(" UTC")
    assert secret not in html and login.json()["access_token"] not in html
    assert not any("Name: login" in row for row in rows)
