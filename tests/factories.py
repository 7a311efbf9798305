"""Named personas and builders of projects and items for tests."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.accounts import service as accounts_service
from app.accounts.models import User

PASSWORD = "correct horse battery staple"

PAIRWISE_QUESTIONS: list[dict[str, Any]] = [
    {
        "name": "overall",
        "kind": "preference",
        "strength": {"labels": ["negligibly better", "slightly better", "better", "significantly better"]},
    },
    {"name": "helpfulness", "kind": "rating", "min": 1, "max": 7, "required": False},
    {"name": "rationale", "kind": "text", "required": False},
]


@dataclass
class Persona:
    user: User
    token: str

    @property
    def id(self) -> uuid.UUID:
        return self.user.id

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def make_persona(session: Session, username: str, role: str) -> Persona:
    user = accounts_service.create_user(session, username, PASSWORD, role)
    _, token = accounts_service.issue_token(session, user, "test")
    session.commit()
    return Persona(user=user, token=token)


def create_project(client: TestClient, admin: Persona, **overrides: Any) -> dict[str, Any]:
    body = {"name": "Helpfulness pairs", "questions": PAIRWISE_QUESTIONS, "annotations_per_item": 2}
    body.update(overrides)
    response = client.post("/api/v1/projects", json=body, headers=admin.headers)
    assert response.status_code == 201, response.text
    return response.json()


def add_members(client: TestClient, admin: Persona, project_id: str, *members: Persona) -> None:
    for member in members:
        response = client.post(
            f"/api/v1/projects/{project_id}/members", json={"user_id": str(member.id)}, headers=admin.headers
        )
        assert response.status_code == 201, response.text


def pair_lines(n: int, *, prefix: str = "item") -> list[dict[str, Any]]:
    return [
        {
            "external_id": f"{prefix}-{i}",
            "prompt": f"Question number {i}?",
            "responses": [
                {"text": f"Answer A to {i}", "model": "model-a"},
                {"text": f"Answer B to {i}", "model": "model-b"},
            ],
        }
        for i in range(n)
    ]


def import_lines(
    client: TestClient, admin: Persona, project_id: str, lines: list[dict[str, Any]], **params: Any
) -> dict[str, Any]:
    response = client.post(
        f"/api/v1/projects/{project_id}/items", json=lines, headers=admin.headers, params=params
    )
    assert response.status_code == 201, response.text
    return response.json()
