"""Next and submit find the caller by their token in the statement that locks their work: every way a token
can stop letting its user in still answers 401, and someone else's work still answers 404."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.accounts.models import ApiToken, User
from app.db import utcnow
from tests.factories import Persona, add_members, create_project, import_lines, pair_lines


def _expire(session: Session, persona: Persona) -> None:
    session.execute(
        sa.update(ApiToken)
        .where(ApiToken.user_id == persona.id)
        .values(expires_at=utcnow() - timedelta(seconds=1))
    )


def _revoke(session: Session, persona: Persona) -> None:
    session.execute(sa.update(ApiToken).where(ApiToken.user_id == persona.id).values(revoked_at=utcnow()))


def _deactivate(session: Session, persona: Persona) -> None:
    session.execute(sa.update(User).where(User.id == persona.id).values(is_active=False))


LOCKOUTS: dict[str, Callable[[Session, Persona], None]] = {
    "expired": _expire,
    "revoked": _revoke,
    "deactivated user": _deactivate,
}


@pytest.fixture
def leased(
    client: TestClient, admin: Persona, annotator: Persona, second_annotator: Persona
) -> dict[str, Any]:
    project = create_project(client, admin, gold_rate=0)
    add_members(client, admin, project["id"], annotator, second_annotator)
    import_lines(client, admin, project["id"], pair_lines(3))
    assignment = client.post(f"/api/v1/projects/{project['id']}/assignments/next", headers=annotator.headers)
    assert assignment.status_code == 200
    return {"project_id": project["id"], **assignment.json()}


def _next(client: TestClient, leased: dict[str, Any], headers: dict[str, str]) -> Any:
    return client.post(f"/api/v1/projects/{leased['project_id']}/assignments/next", headers=headers)


def _submit(client: TestClient, leased: dict[str, Any], headers: dict[str, str]) -> Any:
    choice = leased["item"]["responses"][0]["id"]
    return client.post(
        f"/api/v1/assignments/{leased['assignment_id']}/annotation",
        json={"answers": {"overall": {"choice": choice}}},
        headers=headers,
    )


CALLS = {"next": _next, "submit": _submit}


@pytest.mark.parametrize("call", CALLS)
@pytest.mark.parametrize("lockout", LOCKOUTS)
def test_a_token_that_no_longer_lets_its_user_in_gets_401(
    call: str, lockout: str, client: TestClient, session: Session, leased: dict[str, Any], annotator: Persona
) -> None:
    LOCKOUTS[lockout](session, annotator)
    session.commit()
    response = CALLS[call](client, leased, annotator.headers)
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("call", CALLS)
@pytest.mark.parametrize(
    "headers", [{"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic abc"}, {}], ids=str
)
def test_an_unknown_or_missing_token_gets_401(
    call: str, headers: dict[str, str], client: TestClient, leased: dict[str, Any]
) -> None:
    assert CALLS[call](client, leased, headers).status_code == 401


def test_another_raters_assignment_is_not_found_and_left_untouched(
    client: TestClient, leased: dict[str, Any], second_annotator: Persona, annotator: Persona
) -> None:
    response = _submit(client, leased, second_annotator.headers)
    assert response.status_code == 404 and response.json()["code"] == "assignment_not_found"
    assert _submit(client, leased, annotator.headers).status_code == 201


def test_a_valid_token_outside_the_project_is_not_found(
    client: TestClient, leased: dict[str, Any], outsider: Persona
) -> None:
    response = _next(client, leased, outsider.headers)
    assert response.status_code == 404, response.text
