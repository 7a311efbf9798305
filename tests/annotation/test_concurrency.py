"""Many raters at once over real HTTP on PostgreSQL: every item ends with exactly annotations_per_item."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from app.accounts import service as accounts_service
from app.accounts.models import User
from app.annotation.models import Annotation, AnnotationRevision
from app.items.models import Item
from app.projects import service as projects_service
from app.projects.models import Project
from app.projects.schemas import ProjectUpdate
from tests.conftest import _backend
from tests.factories import PAIRWISE_QUESTIONS, pair_lines
from tests.threads import at_once
from tests.ui_helpers import seed_project

pytestmark = pytest.mark.skipif(
    _backend() != "postgresql", reason="row-locking concurrency runs on PostgreSQL"
)

RATERS = 12
ITEMS = 30
PER_ITEM = 3


def _rater_loop(
    base_url: str, token: str, project_id: str, acknowledged: list[str], failures: list[str]
) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=30) as client:
        for _ in range(ITEMS + 5):
            response = client.post(f"/api/v1/projects/{project_id}/assignments/next")
            if response.status_code == 204:
                return
            if response.status_code != 200:
                failures.append(f"next {response.status_code} {response.text[:200]}")
                return
            assignment = response.json()
            choice = assignment["item"]["responses"][0]["id"]
            submitted = client.post(
                f"/api/v1/assignments/{assignment['assignment_id']}/annotation",
                json={"answers": {"overall": {"choice": choice}}},
            )
            if submitted.status_code != 201:
                failures.append(f"submit {submitted.status_code} {submitted.text[:200]}")
                return
            acknowledged.append(submitted.json()["annotation_id"])


def test_concurrent_raters_complete_every_item_exactly(live_server) -> None:  # type: ignore[no-untyped-def]
    usernames = tuple(f"crowd{i}" for i in range(RATERS))
    project, users = seed_project(
        live_server.sessions,
        pair_lines(ITEMS),
        usernames=usernames,
        questions=PAIRWISE_QUESTIONS,
        annotations_per_item=PER_ITEM,
    )
    with live_server.sessions() as session:
        tokens = [accounts_service.issue_token(session, user, "load")[1] for user in users]
        session.commit()
    acknowledged: list[str] = []
    failures: list[str] = []
    threads = [
        threading.Thread(
            target=_rater_loop, args=(live_server.url, token, str(project.id), acknowledged, failures)
        )
        for token in tokens
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert failures == []
    with live_server.sessions() as session:
        rows = session.execute(
            sa.select(Annotation.id, Annotation.item_id, Annotation.user_id).where(
                Annotation.project_id == project.id
            )
        ).all()
    per_item = Counter(item_id for _, item_id, _ in rows)
    assert len(per_item) == ITEMS and set(per_item.values()) == {PER_ITEM}
    assert len({(item_id, user_id) for _, item_id, user_id in rows}) == len(rows)
    assert sorted(str(annotation_id) for annotation_id, _, _ in rows) == sorted(acknowledged)


CORRECTIONS = 8


def test_simultaneous_corrections_of_one_annotation_all_land_in_its_history(live_server) -> None:  # type: ignore[no-untyped-def]
    """Two tabs saving a correction at once: each save succeeds and each earlier version is kept, in order."""
    project, (user,) = seed_project(
        live_server.sessions, pair_lines(1), usernames=("fixer",), questions=PAIRWISE_QUESTIONS
    )
    with live_server.sessions() as session:
        token = accounts_service.issue_token(session, user, "tabs")[1]
        session.commit()
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=live_server.url, headers=headers, timeout=30) as client:
        assignment = client.post(f"/api/v1/projects/{project.id}/assignments/next").json()
        choice = assignment["item"]["responses"][0]["id"]
        submitted = client.post(
            f"/api/v1/assignments/{assignment['assignment_id']}/annotation",
            json={"answers": {"overall": {"choice": choice}}, "rationale": "first"},
        )
        assert submitted.status_code == 201
    annotation_id = submitted.json()["annotation_id"]

    def correct(n: int) -> int:
        with httpx.Client(base_url=live_server.url, headers=headers, timeout=30) as client:
            return client.patch(
                f"/api/v1/annotations/{annotation_id}",
                json={"answers": {"overall": {"choice": choice}}, "rationale": f"fix {n}"},
            ).status_code

    assert at_once(CORRECTIONS, correct) == [200] * CORRECTIONS
    with httpx.Client(base_url=live_server.url, headers=headers, timeout=30) as client:
        final = client.get(f"/api/v1/annotations/{annotation_id}").json()
    with live_server.sessions() as session:
        history = session.execute(
            sa.select(AnnotationRevision.revision, AnnotationRevision.rationale)
            .where(AnnotationRevision.annotation_id == uuid.UUID(annotation_id))
            .order_by(AnnotationRevision.revision)
        ).all()
    assert final["revision"] == CORRECTIONS + 1
    assert [revision for revision, _ in history] == list(range(1, CORRECTIONS + 1))
    # Each save kept the version it replaced: the first text, then every fix but the last one standing.
    kept = [rationale for _, rationale in history]
    assert kept[0] == "first"
    assert sorted([*kept[1:], final["rationale"]]) == sorted(f"fix {n}" for n in range(CORRECTIONS))


def test_a_submit_during_a_raise_of_raters_per_item_counts_by_the_new_number(live_server) -> None:  # type: ignore[no-untyped-def]
    """An admin raises raters per item from 2 to 3 while the second rater's submit is on its way: the submit
    waits for the save and the item stays open for a third rater, instead of closing by the old number."""
    project, users = seed_project(
        live_server.sessions,
        pair_lines(1),
        usernames=("first", "second", "third"),
        questions=PAIRWISE_QUESTIONS,
        annotations_per_item=2,
    )
    with live_server.sessions() as session:
        tokens = [accounts_service.issue_token(session, user, "raise")[1] for user in users]
        admin = session.scalars(sa.select(User).where(User.username == "boss")).one()
        session.commit()

    def client_for(token: str) -> httpx.Client:
        return httpx.Client(
            base_url=live_server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30
        )

    def take(client: httpx.Client) -> dict[str, Any]:
        leased = client.post(f"/api/v1/projects/{project.id}/assignments/next")
        assert leased.status_code == 200, leased.text
        return dict(leased.json())

    def answer(client: httpx.Client, assignment: dict[str, Any]) -> httpx.Response:
        choice = assignment["item"]["responses"][0]["id"]
        return client.post(
            f"/api/v1/assignments/{assignment['assignment_id']}/annotation",
            json={"answers": {"overall": {"choice": choice}}},
        )

    with client_for(tokens[0]) as first, client_for(tokens[1]) as second, client_for(tokens[2]) as third:
        assert answer(first, take(first)).status_code == 201
        held = take(second)
        submitted: list[httpx.Response] = []
        with live_server.sessions() as admin_session:
            saved = admin_session.get_one(Project, project.id)
            projects_service.update_project(
                admin_session, saved, ProjectUpdate(annotations_per_item=3), admin_session.merge(admin)
            )
            late = threading.Thread(target=lambda: submitted.append(answer(second, held)))
            late.start()
            late.join(timeout=1.5)
            # The submit waits on the project row until the save commits.
            assert late.is_alive() and submitted == []
            admin_session.commit()
        late.join(timeout=30)
        assert [response.status_code for response in submitted] == [201]
        with live_server.sessions() as session:
            item = session.scalars(sa.select(Item).where(Item.project_id == project.id)).one()
            assert (item.annotation_count, item.is_complete) == (2, False)
        # The third rater is given the item and completes it by the new number.
        assert answer(third, take(third)).status_code == 201
    with live_server.sessions() as session:
        item = session.scalars(sa.select(Item).where(Item.project_id == project.id)).one()
        assert (item.annotation_count, item.is_complete) == (3, True)
