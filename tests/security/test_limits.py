"""Oversized input is refused with a clear 413 or 422 and nothing is written."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.factories import Persona, add_members, create_project, import_lines, pair_lines


def test_declared_body_over_the_limit_is_413(client: TestClient, admin: Persona) -> None:
    response = client.post(
        "/api/v1/projects", content=b"{}", headers={**admin.headers, "Content-Length": str(10**9)}
    )
    assert response.status_code == 413
    assert "limit" in response.json()["detail"]


def test_huge_rationale_is_422_naming_the_field(
    client: TestClient, admin: Persona, annotator: Persona
) -> None:
    project = create_project(client, admin)
    add_members(client, admin, project["id"], annotator)
    import_lines(client, admin, project["id"], pair_lines(1))
    assignment = client.post(
        f"/api/v1/projects/{project['id']}/assignments/next", headers=annotator.headers
    ).json()
    body = {"answers": {"overall": {"choice": "tie"}}, "rationale": "x" * 20_001}
    response = client.post(
        f"/api/v1/assignments/{assignment['assignment_id']}/annotation", json=body, headers=annotator.headers
    )
    assert response.status_code == 422
    assert "rationale" in response.json()["detail"]
    assert client.get("/api/v1/annotations/mine", headers=annotator.headers).json() == []


def test_response_text_over_the_limit_is_reported_by_line(client: TestClient, admin: Persona) -> None:
    project = create_project(client, admin)
    line = {"prompt": "p", "responses": ["fine", "y" * 100_001]}
    response = client.post(f"/api/v1/projects/{project['id']}/items", json=[line], headers=admin.headers)
    assert response.status_code == 422
    error = response.json()["errors"][0]
    assert error["line"] == 1 and "100001 characters" in error["error"] and "limit" in error["error"]


def test_too_many_responses_per_item_is_refused(client: TestClient, admin: Persona) -> None:
    project = create_project(client, admin, questions=[{"name": "ranking", "kind": "ranking"}])
    line = {"prompt": "p", "responses": [f"answer {i}" for i in range(17)]}
    response = client.post(f"/api/v1/projects/{project['id']}/items", json=[line], headers=admin.headers)
    assert response.status_code == 422
    assert "16" in response.json()["errors"][0]["error"]


def test_project_name_over_the_limit_is_422(client: TestClient, admin: Persona) -> None:
    body = {"name": "n" * 201, "questions": [{"name": "q", "kind": "text"}]}
    response = client.post("/api/v1/projects", json=body, headers=admin.headers)
    assert response.status_code == 422 and "name" in response.json()["detail"]
