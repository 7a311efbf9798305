"""The projects API: create, read, update, archive, members, and who may do each."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.factories import Persona, add_members, create_project


class TestProjects:
    def test_admin_creates_and_reads_a_project(self, client: TestClient, admin: Persona) -> None:
        project = create_project(client, admin, name="Harmlessness 2026")
        assert project["slug"] == "harmlessness-2026"
        assert project["status"] == "active" and project["guidelines_version"] == 1
        read = client.get(f"/api/v1/projects/{project['id']}", headers=admin.headers).json()
        assert [q["kind"] for q in read["questions"]] == ["preference", "rating", "text"]

    def test_invalid_questions_are_422_with_location(self, client: TestClient, admin: Persona) -> None:
        bad = {"name": "x", "questions": [{"name": "q", "kind": "label", "options": ["only one"]}]}
        response = client.post("/api/v1/projects", json=bad, headers=admin.headers)
        assert response.status_code == 422
        assert "options" in response.text

    def test_duplicate_slug_is_409(self, client: TestClient, admin: Persona) -> None:
        create_project(client, admin, slug="same")
        body = {"name": "y", "slug": "same", "questions": [{"name": "q", "kind": "text"}]}
        assert client.post("/api/v1/projects", json=body, headers=admin.headers).status_code == 409

    def test_guidelines_change_makes_a_new_version(self, client: TestClient, admin: Persona) -> None:
        project = create_project(client, admin)
        updated = client.patch(
            f"/api/v1/projects/{project['id']}", json={"guidelines": "# Be careful"}, headers=admin.headers
        ).json()
        assert updated["guidelines_version"] == 2 and updated["guidelines"] == "# Be careful"

    def test_archive(self, client: TestClient, admin: Persona) -> None:
        project = create_project(client, admin)
        archived = client.post(f"/api/v1/projects/{project['id']}/archive", headers=admin.headers).json()
        assert archived["status"] == "archived"
        listed = client.get("/api/v1/projects", headers=admin.headers).json()
        assert project["id"] not in [p["id"] for p in listed["items"]]

    def test_annotator_token_cannot_create_projects(self, client: TestClient, annotator: Persona) -> None:
        body = {"name": "x", "questions": [{"name": "q", "kind": "text"}]}
        assert client.post("/api/v1/projects", json=body, headers=annotator.headers).status_code == 403

    def test_annotator_sees_only_projects_they_belong_to(
        self, client: TestClient, admin: Persona, annotator: Persona, outsider: Persona
    ) -> None:
        mine = create_project(client, admin, name="Mine")
        other = create_project(client, admin, name="Other")
        add_members(client, admin, mine["id"], annotator)
        listed = client.get("/api/v1/projects", headers=annotator.headers).json()
        assert [p["name"] for p in listed["items"]] == ["Mine"]
        assert client.get(f"/api/v1/projects/{other['id']}", headers=annotator.headers).status_code == 404
        assert client.get(f"/api/v1/projects/{mine['id']}", headers=outsider.headers).status_code == 404

    def test_member_annotator_cannot_change_the_project(
        self, client: TestClient, admin: Persona, annotator: Persona
    ) -> None:
        project = create_project(client, admin)
        add_members(client, admin, project["id"], annotator)
        response = client.patch(
            f"/api/v1/projects/{project['id']}", json={"name": "mine now"}, headers=annotator.headers
        )
        assert response.status_code == 403

    def test_members_by_username_and_removal(
        self, client: TestClient, admin: Persona, annotator: Persona
    ) -> None:
        project = create_project(client, admin)
        added = client.post(
            f"/api/v1/projects/{project['id']}/members", json={"username": "annotator"}, headers=admin.headers
        )
        assert added.status_code == 201 and added.json()["username"] == "annotator"
        members = client.get(f"/api/v1/projects/{project['id']}/members", headers=admin.headers).json()
        assert [m["username"] for m in members] == ["annotator"]
        removed = client.delete(
            f"/api/v1/projects/{project['id']}/members/{annotator.id}", headers=admin.headers
        )
        assert removed.status_code == 204
        assert client.get(f"/api/v1/projects/{project['id']}", headers=annotator.headers).status_code == 404

    def test_unknown_member_username_is_404(self, client: TestClient, admin: Persona) -> None:
        project = create_project(client, admin)
        response = client.post(
            f"/api/v1/projects/{project['id']}/members", json={"username": "ghost"}, headers=admin.headers
        )
        assert response.status_code == 404 and "ghost" in response.text

    def test_changes_are_in_the_audit_log(self, client: TestClient, admin: Persona) -> None:
        project = create_project(client, admin)
        client.patch(
            f"/api/v1/projects/{project['id']}", json={"annotations_per_item": 5}, headers=admin.headers
        )
        events = client.get(f"/api/v1/audit?project_id={project['id']}", headers=admin.headers).json()[
            "items"
        ]
        update = next(e for e in events if e["action"] == "project.update")
        assert update["before"] == {"annotations_per_item": 2} and update["after"] == {
            "annotations_per_item": 5
        }
