"""Seeding a new database with a demo admin, two demo annotators and the demo projects."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.accounts import service as accounts_service
from app.accounts.models import User
from app.demo.campaign import seed_campaign
from app.demo.content import DEMO_GUIDELINES, DEMO_ITEMS, HELPFULNESS_QUESTION, OVERALL_QUESTION, demo_records
from app.items import service as items_service
from app.items.parsing import iter_jsonl_lines
from app.projects import service as projects_service
from app.projects.schemas import ProjectCreate


@dataclass(frozen=True)
class DemoLogin:
    username: str
    password: str
    role: str


def database_is_new(session: Session) -> bool:
    return session.scalar(sa.select(sa.func.count(User.id))) == 0


def seed_demo(session: Session) -> list[DemoLogin]:
    """Create the demo accounts and projects; the passwords are returned once and stored only hashed."""
    logins = [
        DemoLogin("admin", secrets.token_urlsafe(9), "admin"),
        DemoLogin("rater1", secrets.token_urlsafe(9), "annotator"),
        DemoLogin("rater2", secrets.token_urlsafe(9), "annotator"),
    ]
    users = [accounts_service.create_user(session, x.username, x.password, x.role) for x in logins]
    admin = users[0]
    project = projects_service.create_project(
        session,
        ProjectCreate.model_validate(
            {
                "name": "Demo: which answer is better?",
                "slug": "demo",
                "description": "Compare two assistant answers to the same prompt.",
                "guidelines": DEMO_GUIDELINES,
                "annotations_per_item": 2,
                "gold_rate": 0,
                "questions": [
                    OVERALL_QUESTION,
                    HELPFULNESS_QUESTION,
                    {"name": "rationale", "kind": "text", "title": "Why?", "required": False},
                ],
            }
        ),
        admin,
    )
    ranking = projects_service.create_project(
        session,
        ProjectCreate.model_validate(
            {
                "name": "Demo: rank the answers",
                "slug": "demo-ranking",
                "description": "Order several answers from best to worst and rate each one.",
                "guidelines": DEMO_GUIDELINES,
                "annotations_per_item": 2,
                "gold_rate": 0,
                "questions": [
                    {
                        "name": "ranking",
                        "kind": "ranking",
                        "title": "Order the responses, best first",
                        "allow_ties": True,
                    },
                    {
                        "name": "correctness",
                        "kind": "rating",
                        "title": "Correctness",
                        "min": 1,
                        "max": 5,
                        "labels": {"1": "wrong", "5": "fully correct"},
                    },
                    {
                        "name": "topic",
                        "kind": "label",
                        "title": "Topic",
                        "required": False,
                        "options": ["coding", "writing", "knowledge", "advice", "other"],
                    },
                ],
            }
        ),
        admin,
    )
    for demo_project, pairs in ((project, "all"), (ranking, "none")):
        for user in users:
            projects_service.add_member(session, demo_project, admin, user_id=user.id)
        with DEMO_ITEMS.open("rb") as handle:
            items_service.import_items(
                session,
                demo_project,
                iter_jsonl_lines(handle),
                admin,
                options=items_service.import_options(demo_project, pairs),
            )
    seed_campaign(session, admin, users[1:], demo_records())
    return logins
