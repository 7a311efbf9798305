"""The hot queries use their indexes on PostgreSQL: a sequential scan of a large table fails this test."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from tests.annotation.test_query_counts import count_statements
from tests.conftest import _backend
from tests.factories import Persona, add_members, create_project, import_lines, pair_lines

pytestmark = pytest.mark.skipif(_backend() != "postgresql", reason="query plans are checked on PostgreSQL")
LARGE_TABLES = ("items", "responses", "assignments", "annotations")
ITEMS = 4000


def _explain(connection: sa.Connection, statement: str, parameters: Any) -> str:
    rows = connection.exec_driver_sql(f"EXPLAIN {statement}", parameters).all()
    return "\n".join(row[0] for row in rows)


def _sequential_scans(connection: sa.Connection, captured: list[tuple[str, Any]]) -> list[str]:
    found = []
    for statement, parameters in captured:
        if not statement.lstrip().upper().startswith(("SELECT", "UPDATE", "DELETE", "WITH")):
            continue
        plan = _explain(connection, statement, parameters)
        for table in LARGE_TABLES:
            if re.search(rf"Seq Scan on {table}\b", plan):
                found.append(f"{table}: {statement[:160]}\n{plan}")
    return found


def _capture(connection: sa.Connection, action: Callable[[], Any]) -> list[tuple[str, Any]]:
    captured: list[tuple[str, Any]] = []

    def record(conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        if not executemany:
            captured.append((statement, parameters))

    sa.event.listen(connection, "before_cursor_execute", record)
    try:
        action()
    finally:
        sa.event.remove(connection, "before_cursor_execute", record)
    return captured


@pytest.fixture
def large_project(
    client: TestClient,
    connection: sa.Connection,
    admin: Persona,
    annotator: Persona,
    second_annotator: Persona,
) -> dict[str, Any]:
    project = create_project(client, admin, gold_rate=0)
    add_members(client, admin, project["id"], annotator, second_annotator)
    import_lines(client, admin, project["id"], pair_lines(ITEMS))
    for persona in (annotator, second_annotator) * 20:
        assignment = client.post(
            f"/api/v1/projects/{project['id']}/assignments/next", headers=persona.headers
        ).json()
        choice = assignment["item"]["responses"][0]["id"]
        client.post(
            f"/api/v1/assignments/{assignment['assignment_id']}/annotation",
            json={"answers": {"overall": {"choice": choice}}},
            headers=persona.headers,
        )
    _bulk_history(connection, project["id"], outsider_id=str(second_annotator.id))
    for table in LARGE_TABLES:
        connection.exec_driver_sql(f"ANALYZE {table}")
    return project


def _bulk_history(connection: sa.Connection, project_id: str, outsider_id: str) -> None:
    """Thousands of earlier assignments and annotations, so that those tables are large too."""
    connection.exec_driver_sql(
        "INSERT INTO assignments (id, project_id, item_id, user_id, attempt, purpose, status, display_order,"
        " expires_at, created_at) SELECT gen_random_uuid(), project_id, id, %(user)s, 7, 'live', 'submitted',"
        " '[]', now(), now() FROM items WHERE project_id = %(project)s",
        {"user": outsider_id, "project": project_id},
    )
    connection.exec_driver_sql(
        "INSERT INTO annotations (id, assignment_id, project_id, item_id, user_id, purpose, answers, flags,"
        " display_order, guidelines_version, revision, created_at) SELECT gen_random_uuid(), id, project_id,"
        " item_id, user_id, 'live', '{}', '[]', '[]', 1, 1, now() FROM assignments WHERE attempt = 7",
    )


def test_next_and_submit_scan_no_large_table(
    client: TestClient, connection: sa.Connection, large_project: dict[str, Any], annotator: Persona
) -> None:
    holder: dict[str, Any] = {}

    def next_item() -> None:
        holder["a"] = client.post(
            f"/api/v1/projects/{large_project['id']}/assignments/next", headers=annotator.headers
        ).json()

    def submit() -> None:
        choice = holder["a"]["item"]["responses"][1]["id"]
        response = client.post(
            f"/api/v1/assignments/{holder['a']['assignment_id']}/annotation",
            json={"answers": {"overall": {"choice": choice}}},
            headers=annotator.headers,
        )
        assert response.status_code == 201

    statements = _capture(connection, next_item) + _capture(connection, submit)
    assert len(statements) >= 8
    scans = _sequential_scans(connection, statements)
    assert not scans, "\n\n".join(scans)


def _submit_votes(client: TestClient, project_id: str, *personas: Persona) -> None:
    for persona in personas:
        while True:
            response = client.post(f"/api/v1/projects/{project_id}/assignments/next", headers=persona.headers)
            if response.status_code != 200:
                break
            assignment = response.json()
            # Each rater sees the responses in their own random order: pick by id so that both raters agree
            # and the cleaned preference export has rows to read.
            choice = min(r["id"] for r in assignment["item"]["responses"])
            submitted = client.post(
                f"/api/v1/assignments/{assignment['assignment_id']}/annotation",
                json={"answers": {"overall": {"choice": choice, "strength": 2}}},
                headers=persona.headers,
            )
            assert submitted.status_code == 201, submitted.text


def _capture_driver(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Any]]:
    """Queries the exports and agreement send through the driver directly (streams and COPY), for EXPLAIN."""
    captured: list[tuple[str, Any]] = []
    stream, copy = psycopg.Cursor.stream, psycopg.Cursor.copy

    def recording_stream(self: psycopg.Cursor[Any], query: Any, params: Any = None, **kwargs: Any) -> Any:
        captured.append((str(query), params))
        return stream(self, query, params, **kwargs)

    def recording_copy(self: psycopg.Cursor[Any], statement: Any, params: Any = None, **kwargs: Any) -> Any:
        inner = re.fullmatch(r"COPY \((.*)\) TO STDOUT.*", str(statement), re.DOTALL)
        if inner is not None:
            captured.append((inner.group(1).replace("%", "%%"), None))
        return copy(self, statement, params, **kwargs)

    monkeypatch.setattr(psycopg.Cursor, "stream", recording_stream)
    monkeypatch.setattr(psycopg.Cursor, "copy", recording_copy)
    return captured


def test_a_small_projects_export_preview_and_agreement_read_only_its_own_rows(
    client: TestClient,
    connection: sa.Connection,
    large_project: dict[str, Any],
    admin: Persona,
    annotator: Persona,
    second_annotator: Persona,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Beside a large project, exporting a small one or reading its agreement must go through the indexes:
    # a sequential scan would read every project's rows, and grow with the whole database.
    small = create_project(client, admin, gold_rate=0)
    add_members(client, admin, small["id"], annotator, second_annotator)
    import_lines(client, admin, small["id"], pair_lines(6, prefix="small"))
    _submit_votes(client, small["id"], annotator, second_annotator)
    for table in LARGE_TABLES:
        connection.exec_driver_sql(f"ANALYZE {table}")
    driver = _capture_driver(monkeypatch)

    def read_everything() -> None:
        base = f"/api/v1/projects/{small['id']}"
        for params in (
            {"format": "preference"},
            {"format": "preference", "aggregation": "dawid-skene"},
            {"format": "ratings"},
            {"format": "raw"},
        ):
            response = client.get(f"{base}/export", params=params, headers=admin.headers)
            assert response.status_code == 200, response.text
            assert response.text.strip(), f"rows to read: {params}"
        preview = client.get(f"{base}/export/preview", headers=admin.headers)
        assert preview.status_code == 200 and preview.json()["raters"] == 2, preview.text
        agreement = client.get(f"{base}/agreement", params={"n_boot": 0}, headers=admin.headers)
        assert agreement.status_code == 200, agreement.text

    statements = _capture(connection, read_everything)
    assert len(driver) >= 2, "the export streams and agreement COPY were seen"
    scans = _sequential_scans(connection, statements + driver)
    assert not scans, "\n\n".join(scans)


def test_the_check_catches_a_sequential_scan(
    connection: sa.Connection, large_project: dict[str, Any]
) -> None:
    # A query on an unindexed column must be reported, or the test above proves nothing.
    statement = "SELECT id FROM items WHERE content_hash = %(h)s"
    assert _sequential_scans(connection, [(statement, {"h": "x"})]) != []


__all__ = ["count_statements"]
