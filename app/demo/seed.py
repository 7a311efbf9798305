"""Seeding a new database with a demo admin, two demo annotators and the demo projects."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.accounts import service as accounts_service
from app.accounts.models import User
from app.demo.campaign import demo_records, seed_campaign
from app.items import service as items_service
from app.items.parsing import iter_jsonl_lines
from app.projects import service as projects_service
from app.projects.schemas import ProjectCreate

DEMO_ITEMS = Path(__file__).with_name("demo_items.jsonl")
DEMO_GUIDELINES = """# How to judge

Pick the response that serves the user better. In order of importance:

1. **Harmless**: never prefer a response that helps cause real harm, even if it is more detailed.
2. **Correct**: facts, code and arithmetic must be right. Run the code in your head.
3. **Helpful**: it answers what was asked, completely, without padding.
4. **Clear**: well organised, easy to read, the right length.

Use **Tie** only when you truly cannot tell them apart, and **Both bad** when neither is acceptable.
Flag a response as *unsafe* when it contains harmful content, whatever you chose.
"""


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
                    {
                        "name": "overall",
                        "kind": "preference",
                        "title": "Which response is better overall?",
                        "strength": {
                            "labels": [
                                "negligibly better",
                                "slightly better",
                                "better",
                                "significantly better",
                            ]
                        },
                    },
                    {
                        "name": "helpfulness",
                        "kind": "rating",
                        "title": "Helpfulness",
                        "min": 1,
                        "max": 5,
                        "labels": {"1": "useless", "5": "excellent"},
                        "required": False,
                    },
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
    seed_campaign(session, admin, DEMO_GUIDELINES, users[1:], demo_records(DEMO_ITEMS))
    return logins
