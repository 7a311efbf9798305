"""A database that cannot serve a request now gets a 503 with Retry-After: a client should come back, not give up."""

from __future__ import annotations

import sqlite3

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from app.annotation import service as annotation_service
from tests.factories import Persona

OUTAGES = {
    # Every pooled connection stayed busy for the pool's whole timeout.
    "pool exhausted": sa.exc.TimeoutError("QueuePool limit of size 10 overflow 10 reached"),
    # The server went away, or SQLite's writer did not get its turn in time.
    "database down": sa.exc.OperationalError(
        "SELECT 1", None, sqlite3.OperationalError("database is locked")
    ),
}


@pytest.mark.parametrize("error", OUTAGES.values(), ids=OUTAGES.keys())
def test_a_database_that_cannot_serve_now_gets_503_and_retry_after(
    client: TestClient, annotator: Persona, monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    def fail(*_: object, **__: object) -> None:
        raise error

    monkeypatch.setattr(annotation_service, "list_recent_annotations", fail)
    response = client.get("/api/v1/annotations/mine", headers=annotator.headers)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "2"
    assert response.json()["code"] == "service_unavailable"
