"""SQL of the training domain: the answers, attempts and exclusions that rater quality is computed from."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, aliased

from app.accounts.models import User
from app.annotation.models import Annotation, Assignment
from app.items.models import Item, Response
from app.training.models import QualificationAttempt, RaterExclusion


def quality_answers(session: Session, project_id: uuid.UUID) -> list[sa.Row[Any]]:
    """Every non-training annotation of the project, only the columns the signals read."""
    return list(
        session.execute(
            sa.select(
                Annotation.user_id,
                Annotation.item_id,
                Annotation.purpose,
                Annotation.answers,
                Annotation.display_order,
                Annotation.time_spent_ms,
                Annotation.created_at,
                Annotation.gold_result,
            ).where(Annotation.project_id == project_id, Annotation.purpose != "training")
        ).all()
    )


def attempts(
    session: Session, project_id: uuid.UUID, user_id: uuid.UUID | None = None
) -> list[QualificationAttempt]:
    query = sa.select(QualificationAttempt).where(QualificationAttempt.project_id == project_id)
    if user_id is not None:
        query = query.where(QualificationAttempt.user_id == user_id)
    return list(session.scalars(query.order_by(QualificationAttempt.user_id, QualificationAttempt.attempt)))


def attempt_progress(
    session: Session, project_id: uuid.UUID, user_id: uuid.UUID, attempt: int
) -> tuple[int, int]:
    """(training items done, of which skipped) in one attempt: an item counts once, however often leased."""
    done = sa.select(
        sa.func.count(sa.distinct(Assignment.item_id)),
        sa.func.count(sa.distinct(sa.case((Assignment.status == "skipped", Assignment.item_id)))),
    ).where(
        Assignment.project_id == project_id,
        Assignment.user_id == user_id,
        Assignment.attempt == attempt,
        Assignment.purpose == "training",
        Assignment.status.in_(("submitted", "skipped")),
    )
    taken, skipped = session.execute(done).one()
    return int(taken or 0), int(skipped or 0)


def assignment_attempt(session: Session, assignment_id: uuid.UUID) -> int | None:
    return session.scalar(sa.select(Assignment.attempt).where(Assignment.id == assignment_id))


def rater_annotations(
    session: Session, project_id: uuid.UUID, user_id: uuid.UUID, *, limit: int, graded_only: bool = False
) -> list[tuple[Annotation, Item]]:
    """A rater's latest annotations with their items; with graded_only, only answers scored against gold."""
    query = (
        sa.select(Annotation, Item)
        .join(Item, Item.id == Annotation.item_id)
        .where(Annotation.project_id == project_id, Annotation.user_id == user_id)
    )
    if graded_only:
        query = query.where(Annotation.gold_result.is_not(None), Annotation.purpose != "live")
    rows = session.execute(query.order_by(Annotation.created_at.desc()).limit(limit)).all()
    return [(annotation, item) for annotation, item in rows]


def exclusions(
    session: Session, project_id: uuid.UUID, user_id: uuid.UUID
) -> list[tuple[RaterExclusion, str | None]]:
    """A rater's exclusion history, newest first, with the username of whoever decided."""
    decider = aliased(User)
    rows = session.execute(
        sa.select(RaterExclusion, decider.username)
        .outerjoin(decider, decider.id == RaterExclusion.decided_by_id)
        .where(RaterExclusion.project_id == project_id, RaterExclusion.user_id == user_id)
        .order_by(RaterExclusion.created_at.desc())
    ).all()
    return [(row, name) for row, name in rows]


def gold_results_since(
    session: Session, project_id: uuid.UUID, user_id: uuid.UUID, since: datetime | None
) -> list[dict[str, Any] | None]:
    query = sa.select(Annotation.gold_result).where(
        Annotation.project_id == project_id, Annotation.user_id == user_id, Annotation.purpose == "gold"
    )
    if since is not None:
        query = query.where(Annotation.created_at >= since)
    return list(session.scalars(query))


def response_ids(session: Session, item_id: uuid.UUID) -> list[str]:
    rows = session.scalars(
        sa.select(Response.id).where(Response.item_id == item_id).order_by(Response.position)
    )
    return [str(r) for r in rows]


def graded_results_by_item(
    session: Session, project_id: uuid.UUID
) -> dict[uuid.UUID, list[dict[str, Any] | None]]:
    """The gold results of every gold and training answer, by item."""
    rows = session.execute(
        sa.select(Annotation.item_id, Annotation.gold_result).where(
            Annotation.project_id == project_id, Annotation.purpose.in_(("gold", "training"))
        )
    ).all()
    results: dict[uuid.UUID, list[dict[str, Any] | None]] = {}
    for item_id, result in rows:
        results.setdefault(item_id, []).append(result)
    return results
