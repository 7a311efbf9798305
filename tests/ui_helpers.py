"""Builders for browser tests: users and projects written straight to the live server's database."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from app.accounts import service as accounts_service
from app.accounts.models import User
from app.items import service as items_service
from app.projects import service as projects_service
from app.projects.models import Project
from app.projects.schemas import ProjectCreate
from tests.factories import PAIRWISE_QUESTIONS, PASSWORD


def seed_project(
    sessions: sessionmaker[Session],
    lines: list[dict[str, Any]],
    *,
    usernames: tuple[str, ...] = ("rater",),
    questions: list[dict[str, Any]] | None = None,
    **settings: Any,
) -> tuple[Project, list[User]]:
    """An admin, the given annotators as members, and a project holding the lines (committed)."""
    with sessions() as session:
        admin = _user(session, "boss", "admin")
        users = [_user(session, name, "annotator") for name in usernames]
        body = {
            "name": "Browser project",
            "questions": questions or PAIRWISE_QUESTIONS,
            "annotations_per_item": 1,
            "gold_rate": 0,
            **settings,
        }
        project = projects_service.create_project(session, ProjectCreate.model_validate(body), admin)
        for user in users:
            projects_service.add_member(session, project, admin, user_id=user.id)
        items_service.import_items(
            session, project, enumerate(lines, start=1), admin, options=items_service.import_options(project)
        )
        session.commit()
        return project, users


def _user(session: Session, username: str, role: str) -> User:
    from sqlalchemy import select

    existing = session.scalar(select(User).where(User.username == username))
    return existing or accounts_service.create_user(session, username, PASSWORD, role)


def log_in(page: Any, base_url: str, username: str, password: str = PASSWORD) -> None:
    page.goto(f"{base_url}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit].primary")
    page.wait_for_url(lambda url: "/login" not in url)
