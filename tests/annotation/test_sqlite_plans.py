"""On SQLite too, handing out the next item walks the queue index instead of scanning and sorting the project."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from tests.conftest import _backend
from tests.factories import Persona, add_members, create_project, import_lines, pair_lines
from tests.test_query_plans import _capture

pytestmark = pytest.mark.skipif(_backend() != "sqlite", reason="SQLite's planner is checked on SQLite")


def test_next_uses_the_queue_index_without_a_sort(
    client: TestClient, connection: sa.Connection, admin: Persona, annotator: Persona
) -> None:
    project = create_project(client, admin, gold_rate=0)
    add_members(client, admin, project["id"], annotator)
    import_lines(client, admin, project["id"], pair_lines(50))
    url = f"/api/v1/projects/{project['id']}/assignments/next"
    captured = _capture(connection, lambda: client.post(url, headers=annotator.headers))
    picks = [(s, p) for s, p in captured if s.lstrip().startswith("SELECT items.id") and "ORDER BY" in s]
    assert len(picks) == 1, [s[:80] for s, _ in captured]
    statement, parameters = picks[0]
    plan = [row[-1] for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)]
    assert any("USING INDEX ix_items_queue" in step for step in plan), plan
    assert not any(step.startswith("SCAN items") for step in plan), plan
    # SQLite sorts the window of the fullest items again (at most FULLEST_FIRST_WINDOW rows), never the project.
    assert all("TEMP B-TREE" not in step for step in plan) or "MATERIALIZE window" in plan, plan
