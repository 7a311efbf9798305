"""The background worker, against a real server whose requests commit: a queued export gets built."""

from __future__ import annotations

import json
import threading
import time
import uuid
from datetime import timedelta
from typing import Any

import httpx
import sqlalchemy as sa

from app.accounts import service as accounts_service
from app.accounts.models import User
from app.db import utcnow
from app.exports import jobs
from app.exports.models import Export
from app.items.models import Item, Response
from tests.exports.helpers import insert_vote, zip_members
from tests.ui_helpers import seed_project

WAIT_SECONDS = 30


def _seeded(live_server: Any) -> tuple[str, str]:
    """A committed project of three items, each judged by one rater, and an admin token."""
    lines = [
        {"external_id": f"w{i}", "prompt": f"Prompt {i}?", "responses": [f"good {i}", f"bad {i}"]}
        for i in range(3)
    ]
    project, (rater,) = seed_project(live_server.sessions, lines, usernames=("worker_rater",))
    with live_server.sessions() as session:
        items = session.scalars(sa.select(Item).where(Item.project_id == project.id).order_by(Item.seq)).all()
        for item in items:
            ids = [
                str(r)
                for r in session.scalars(
                    sa.select(Response.id).where(Response.item_id == item.id).order_by(Response.position)
                )
            ]
            insert_vote(session, project.id, item.id, rater.id, ids, {"overall": {"choice": ids[0]}})
        admin = session.scalar(sa.select(User).where(User.username == "boss"))
        assert admin is not None
        _, token = accounts_service.issue_token(session, admin, "worker test")
        session.commit()
    return str(project.id), token


def test_the_worker_builds_a_queued_export(live_server: Any) -> None:
    project_id, token = _seeded(live_server)
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=live_server.url, headers=headers, timeout=10) as http:
        created = http.post(f"/api/v1/projects/{project_id}/exports", json={"format": "preference"})
        assert created.status_code == 202, created.text
        export_id = created.json()["id"]
        deadline = time.monotonic() + WAIT_SECONDS
        status: dict[str, Any] = created.json()
        while status["status"] in ("queued", "running") and time.monotonic() < deadline:
            time.sleep(0.2)
            status = http.get(f"/api/v1/exports/{export_id}").json()
        assert status["status"] == "done", status
        assert status["counts"]["rows_total"] == 3
        download = http.get(f"/api/v1/exports/{export_id}/download")
        assert download.status_code == 200
    files = zip_members(download.content)
    rows = [json.loads(line) for line in files["train.jsonl"].decode().splitlines()]
    assert sorted((r["chosen"], r["rejected"]) for r in rows) == [(f"good {i}", f"bad {i}") for i in range(3)]
    assert "# Browser project" in files["README.md"].decode()


def test_a_failing_build_is_marked_failed_with_its_reason(live_server: Any) -> None:
    project_id, _ = _seeded(live_server)
    with live_server.sessions() as session:
        # Options that were valid when recorded but no longer fit the project, e.g. a question since renamed.
        export = Export(project_id=uuid.UUID(project_id), params={"question": "renamed"}, status="queued")
        session.add(export)
        session.commit()
        export_id = export.id
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        with live_server.sessions() as session:
            stored = session.get_one(Export, export_id)
        if stored.status == "failed":
            break
        time.sleep(0.2)
    assert stored.status == "failed"
    assert stored.error == "The project has no question named 'renamed'."
    assert stored.finished_at is not None


def _stuck_export(live_server: Any, project_id: str, *, silent_for: timedelta, attempts: int) -> uuid.UUID:
    """An export left "running" by a worker whose last heartbeat was `silent_for` ago."""
    beat = utcnow() - silent_for
    with live_server.sessions() as session:
        export = Export(
            project_id=uuid.UUID(project_id),
            params={"format": "preference"},
            status="running",
            started_at=beat,
            heartbeat_at=beat,
            attempts=attempts,
        )
        session.add(export)
        session.commit()
        return export.id


def _wait_for(live_server: Any, export_id: uuid.UUID, status: str) -> Export:
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        with live_server.sessions() as session:
            stored = session.get_one(Export, export_id)
        if stored.status == status or time.monotonic() > deadline:
            return stored
        time.sleep(0.2)


def test_an_export_whose_worker_died_is_claimed_again_and_built(live_server: Any) -> None:
    project_id, _ = _seeded(live_server)
    silent = timedelta(seconds=jobs.LEASE_SECONDS + 60)
    export_id = _stuck_export(live_server, project_id, silent_for=silent, attempts=1)
    stored = _wait_for(live_server, export_id, "done")
    assert stored.status == "done", stored.error
    assert stored.attempts == 2
    assert stored.counts["rows_total"] == 3


def test_a_running_export_whose_worker_is_alive_is_left_alone(live_server: Any) -> None:
    project_id, _ = _seeded(live_server)
    export_id = _stuck_export(live_server, project_id, silent_for=timedelta(seconds=5), attempts=1)
    try:
        claimed = jobs.claim_next()
        assert claimed is None or claimed[0] != export_id
        # Once its lease runs out, the next claim takes it.
        later = utcnow() + timedelta(seconds=jobs.LEASE_SECONDS)
        assert jobs.claim_next(later) == (export_id, 2)
    finally:
        with live_server.sessions() as session:
            session.execute(sa.update(Export).where(Export.id == export_id).values(status="failed"))
            session.commit()


def test_an_export_that_keeps_stopping_its_worker_is_given_up(live_server: Any) -> None:
    project_id, _ = _seeded(live_server)
    silent = timedelta(seconds=jobs.LEASE_SECONDS + 60)
    export_id = _stuck_export(live_server, project_id, silent_for=silent, attempts=jobs.MAX_ATTEMPTS)
    stored = _wait_for(live_server, export_id, "failed")
    assert stored.status == "failed"
    assert stored.error is not None and "given up" in stored.error


def test_exports_finish_while_other_requests_keep_writing(live_server: Any) -> None:
    """On SQLite a job that read before writing could not write once a request had committed meanwhile."""
    project_id, token = _seeded(live_server)
    headers = {"Authorization": f"Bearer {token}"}
    stop = threading.Event()
    edits: list[int] = []

    def keep_writing() -> None:
        with httpx.Client(base_url=live_server.url, headers=headers, timeout=30) as http:
            while not stop.is_set():
                edited = http.patch(
                    f"/api/v1/projects/{project_id}", json={"guidelines": f"Rule {len(edits)}."}
                )
                edits.append(edited.status_code)

    writer = threading.Thread(target=keep_writing)
    writer.start()
    try:
        with httpx.Client(base_url=live_server.url, headers=headers, timeout=30) as http:
            exports = [
                http.post(
                    f"/api/v1/projects/{project_id}/exports", json={"format": "preference", "seed": n}
                ).json()
                for n in range(4)
            ]
            deadline = time.monotonic() + WAIT_SECONDS
            states = {}
            while time.monotonic() < deadline:
                states = {e["id"]: http.get(f"/api/v1/exports/{e['id']}").json() for e in exports}
                if all(s["status"] not in ("queued", "running") for s in states.values()):
                    break
                time.sleep(0.2)
    finally:
        stop.set()
        writer.join()
    assert [s["status"] for s in states.values()] == ["done"] * 4, [s.get("error") for s in states.values()]
    assert edits and set(edits) == {200}
