"""The hot path issues a fixed, small number of SQL statements, whatever the project's size."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy import event

from tests.factories import Persona, add_members, create_project, import_lines, pair_lines

# (next with a new lease, next holding a lease, submit). Over the API, the statement that locks the rater's
# membership or assignment also finds them by their token. PostgreSQL folds reclaiming expired leases into
# the lookup of the rater's lease, and picking, slot-taking and leasing into one statement; SQLite runs them
# one by one.
EXPECTED = {"postgresql": (4, 3, 2), "sqlite": (8, 4, 4)}


@contextmanager
def count_statements(connection: sa.Connection) -> Iterator[list[str]]:
    statements: list[str] = []

    def _record(conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        if not statement.lstrip().upper().startswith(("SAVEPOINT", "RELEASE", "ROLLBACK TO")):
            statements.append(statement)

    event.listen(connection, "before_cursor_execute", _record)
    try:
        yield statements
    finally:
        event.remove(connection, "before_cursor_execute", _record)


@pytest.mark.parametrize("size", [5, 300])
def test_statements_per_next_and_submit_do_not_grow(
    size: int, client: TestClient, connection: sa.Connection, admin: Persona, annotator: Persona
) -> None:
    project = create_project(client, admin, gold_rate=0)
    add_members(client, admin, project["id"], annotator)
    import_lines(client, admin, project["id"], pair_lines(size))
    url = f"/api/v1/projects/{project['id']}/assignments/next"
    with count_statements(connection) as new_lease:
        assignment = client.post(url, headers=annotator.headers).json()
    with count_statements(connection) as held_lease:
        client.post(url, headers=annotator.headers)
    body = {"answers": {"overall": {"choice": assignment["item"]["responses"][1]["id"]}}}
    with count_statements(connection) as submit:
        response = client.post(
            f"/api/v1/assignments/{assignment['assignment_id']}/annotation",
            json=body,
            headers=annotator.headers,
        )
    assert response.status_code == 201
    assert (len(new_lease), len(held_lease), len(submit)) == EXPECTED[connection.dialect.name], "\n".join(
        s[:90] for s in [*new_lease, "--", *held_lease, "--", *submit]
    )
    # A project's guidelines can run to pages; the hot path has no use for them.
    assert not [s for s in [*new_lease, *held_lease, *submit] if "guidelines," in s or "description," in s]
