"""Requests that write take turns on SQLite, on the event loop: more writers than worker threads all get through."""

from __future__ import annotations

import re
import threading

import httpx
import pytest
import sqlalchemy as sa
from fastapi.routing import APIRoute

from app import db
from app.accounts import service as accounts_service
from app.accounts.models import User
from app.annotation.models import Assignment
from app.routing import TransactionalRoute
from tests.conftest import _backend
from tests.factories import PAIRWISE_QUESTIONS, PASSWORD, pair_lines
from tests.threads import at_once
from tests.ui_helpers import seed_project


def test_every_route_that_reaches_the_database_takes_write_turns(app) -> None:  # type: ignore[no-untyped-def]
    probes = {"/healthz", "/readyz", "/metrics"}
    plain = [
        route.path
        for route in app.routes
        if isinstance(route, APIRoute)
        and not isinstance(route, TransactionalRoute)
        and route.path not in probes
    ]
    assert plain == []


# More than the server's 40 worker threads, so waiting writers could take every thread.
WRITERS = 60
CORRECTIONS = 4


@pytest.mark.skipif(_backend() != "sqlite", reason="the app's writers take turns on SQLite only")
def test_more_writers_than_worker_threads_all_get_through_over_http(live_server, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # A writer that waits longer than this is turned away; a stall shows up as failures, not as a slow test.
    monkeypatch.setattr(db, "SQLITE_WRITE_WAIT_SECONDS", 5)
    usernames = tuple(f"writer{i}" for i in range(WRITERS))
    project, users = seed_project(
        live_server.sessions, pair_lines(WRITERS), usernames=usernames, questions=PAIRWISE_QUESTIONS
    )
    with live_server.sessions() as session:
        tokens = [accounts_service.issue_token(session, user, "load")[1] for user in users]
        session.commit()

    def write(n: int) -> str | int:
        """The revision the writer's annotation ends at, or the first call that failed."""
        headers = {"Authorization": f"Bearer {tokens[n]}"}
        with httpx.Client(base_url=live_server.url, headers=headers, timeout=60) as client:
            leased = client.post(f"/api/v1/projects/{project.id}/assignments/next")
            if leased.status_code != 200:
                return f"next {leased.status_code} {leased.text[:100]}"
            assignment = leased.json()
            choice = assignment["item"]["responses"][0]["id"]
            submitted = client.post(
                f"/api/v1/assignments/{assignment['assignment_id']}/annotation",
                json={"answers": {"overall": {"choice": choice}}},
            )
            if submitted.status_code != 201:
                return f"submit {submitted.status_code} {submitted.text[:100]}"
            annotation_id = submitted.json()["annotation_id"]
            for fix in range(CORRECTIONS):
                # A correction commits in another worker thread than the one that ran it.
                response = client.patch(
                    f"/api/v1/annotations/{annotation_id}",
                    json={"answers": {"overall": {"choice": choice}}, "rationale": f"fix {fix}"},
                )
                if response.status_code != 200:
                    return f"correct {response.status_code} {response.text[:100]}"
            return int(client.get(f"/api/v1/annotations/{annotation_id}").json()["revision"])

    assert at_once(WRITERS, write) == [CORRECTIONS + 1] * WRITERS


PAGE_RATERS = 20


def _page_client(base_url: str, username: str) -> httpx.Client:
    client = httpx.Client(base_url=base_url, timeout=60)
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
    assert token is not None
    client.post("/login", data={"username": username, "password": PASSWORD, "csrf_token": token.group(1)})
    return client


def test_opening_the_annotate_page_leases_an_item_while_others_write(live_server) -> None:  # type: ignore[no-untyped-def]
    """The annotate page is a GET that writes (it leases the next item). On SQLite a read transaction that
    then writes fails at once if anyone committed meanwhile, so the page must begin as a writer."""
    usernames = tuple(f"opener{i}" for i in range(PAGE_RATERS))
    project, _ = seed_project(
        live_server.sessions, pair_lines(PAGE_RATERS), usernames=usernames, questions=PAIRWISE_QUESTIONS
    )
    with live_server.sessions() as session:
        admin = session.scalars(sa.select(User).where(User.username == "boss")).one()
        token = accounts_service.issue_token(session, admin, "editor")[1]
        session.commit()
    clients = [_page_client(live_server.url, name) for name in usernames]
    stop = threading.Event()
    edits: list[int] = []

    def keep_writing() -> None:
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=live_server.url, headers=headers, timeout=30) as http:
            while not stop.is_set():
                edits.append(
                    http.patch(
                        f"/api/v1/projects/{project.id}", json={"description": str(len(edits))}
                    ).status_code
                )

    writer = threading.Thread(target=keep_writing)
    writer.start()
    try:
        statuses = at_once(
            PAGE_RATERS, lambda n: clients[n].get(f"/projects/{project.id}/annotate").status_code
        )
    finally:
        stop.set()
        writer.join()
        for client in clients:
            client.close()
    assert statuses == [200] * PAGE_RATERS
    assert edits and set(edits) == {200}
    with live_server.sessions() as session:
        leased = session.scalar(
            sa.select(sa.func.count()).select_from(Assignment).where(Assignment.project_id == project.id)
        )
    assert leased == PAGE_RATERS
