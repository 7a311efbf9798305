"""Liveness, readiness, Prometheus metrics, request ids and security headers."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.factories import Persona, add_members, create_project, import_lines, pair_lines


def test_healthz_answers(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}


def test_readyz_reports_database_at_head(client: TestClient) -> None:
    body = client.get("/readyz").json()
    assert body["ready"] is True and body["database"] == "ok" and body["revision"] == body["head"]


def test_metrics_expose_latency_submissions_leases_and_items_left(
    client: TestClient, admin: Persona, annotator: Persona
) -> None:
    project = create_project(client, admin, slug="metrics-demo")
    add_members(client, admin, project["id"], annotator)
    import_lines(client, admin, project["id"], pair_lines(3))
    assignment = client.post(
        f"/api/v1/projects/{project['id']}/assignments/next", headers=annotator.headers
    ).json()
    choice = assignment["item"]["responses"][0]["id"]
    client.post(
        f"/api/v1/assignments/{assignment['assignment_id']}/annotation",
        json={"answers": {"overall": {"choice": choice}}},
        headers=annotator.headers,
    )
    client.post(f"/api/v1/projects/{project['id']}/assignments/next", headers=annotator.headers)
    text = client.get("/metrics").text
    assert "prefhub_request_duration_seconds_bucket{" in text
    assert 'route="/api/v1/projects/{project_id}/assignments/next"' in text
    assert 'prefhub_annotations_submitted_total{purpose="live"}' in text
    assert 'prefhub_active_leases{project="metrics-demo"} 1.0' in text
    assert 'prefhub_items_left{project="metrics-demo"} 3.0' in text


def test_every_response_has_a_request_id_and_security_headers(client: TestClient) -> None:
    response = client.get("/login")
    assert len(response.headers["x-request-id"]) >= 16
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "same-origin"
    echoed = client.get("/healthz", headers={"X-Request-ID": "abc123"})
    assert echoed.headers["x-request-id"] == "abc123"
