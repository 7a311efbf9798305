"""Admins saving a project at the same moment, over real HTTP on PostgreSQL."""

from __future__ import annotations

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy import select

from app.accounts import service as accounts_service
from app.accounts.models import User
from app.projects.models import GuidelineVersion
from tests.conftest import _backend
from tests.factories import PAIRWISE_QUESTIONS, pair_lines
from tests.threads import at_once
from tests.ui_helpers import seed_project

pytestmark = pytest.mark.skipif(
    _backend() != "postgresql", reason="row-locking concurrency runs on PostgreSQL"
)

SAVES = 6


def test_simultaneous_guideline_saves_each_get_their_own_version(live_server) -> None:  # type: ignore[no-untyped-def]
    project, _ = seed_project(live_server.sessions, pair_lines(1), questions=PAIRWISE_QUESTIONS)
    with live_server.sessions() as session:
        admin = session.scalars(select(User).where(User.username == "boss")).one()
        token = accounts_service.issue_token(session, admin, "editor")[1]
        session.commit()
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=live_server.url, headers=headers, timeout=30) as client:
        version_before = client.get(f"/api/v1/projects/{project.id}").json()["guidelines_version"]

    def save(n: int) -> int:
        with httpx.Client(base_url=live_server.url, headers=headers, timeout=30) as client:
            return client.patch(
                f"/api/v1/projects/{project.id}", json={"guidelines": f"Rule {n}."}
            ).status_code

    assert at_once(SAVES, save) == [200] * SAVES
    with httpx.Client(base_url=live_server.url, headers=headers, timeout=30) as client:
        final = client.get(f"/api/v1/projects/{project.id}").json()
    with live_server.sessions() as session:
        versions = session.execute(
            sa.select(GuidelineVersion.version, GuidelineVersion.body)
            .where(GuidelineVersion.project_id == project.id)
            .order_by(GuidelineVersion.version)
        ).all()
    saved = versions[-SAVES:]
    assert final["guidelines_version"] == version_before + SAVES
    assert [version for version, _ in saved] == list(range(version_before + 1, version_before + SAVES + 1))
    assert sorted(body for _, body in saved) == sorted(f"Rule {n}." for n in range(SAVES))
    # The project shows the text of its newest version.
    assert final["guidelines"] == saved[-1][1]
