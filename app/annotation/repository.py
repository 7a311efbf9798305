"""SQL of the assignment engine: reclaiming leases, picking the next item, writing annotations."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.annotation.models import Annotation, Assignment
from app.db import utcnow
from app.items.models import Item, Response
from app.projects.models import ProjectMembership


def lock_membership(session: Session, project_id: uuid.UUID, user_id: uuid.UUID) -> ProjectMembership | None:
    """Serialises one rater's concurrent requests on a project (a double click gets one lease, not two)."""
    return session.scalar(
        sa.select(ProjectMembership)
        .where(ProjectMembership.project_id == project_id, ProjectMembership.user_id == user_id)
        .with_for_update()
    )


def reclaim_expired_leases(session: Session, project_id: uuid.UUID, now: datetime) -> int:
    """Return the items of expired leases to the pool; their rows stay for late submits."""
    expired = session.execute(
        sa.update(Assignment)
        .where(
            Assignment.project_id == project_id, Assignment.status == "leased", Assignment.expires_at < now
        )
        .values(status="expired")
        .returning(Assignment.item_id, Assignment.purpose)
    ).all()
    per_item = Counter(item_id for item_id, purpose in expired if purpose == "live")
    if per_item:
        session.execute(
            sa.update(Item)
            .where(Item.id == sa.bindparam("item_id_"))
            .values(assigned_count=Item.assigned_count - sa.bindparam("n")),
            [{"item_id_": item_id, "n": n} for item_id, n in per_item.items()],
        )
    return len(expired)


def current_lease(
    session: Session, project_id: uuid.UUID, user_id: uuid.UUID, now: datetime
) -> Assignment | None:
    return session.scalar(
        sa.select(Assignment)
        .where(
            Assignment.user_id == user_id,
            Assignment.project_id == project_id,
            Assignment.status == "leased",
            Assignment.expires_at >= now,
        )
        .order_by(Assignment.created_at)
        .limit(1)
    )


def _not_taken_by(user_id: uuid.UUID, attempt: int) -> sa.ColumnElement[bool]:
    return ~sa.exists().where(
        Assignment.item_id == Item.id,
        Assignment.user_id == user_id,
        Assignment.attempt == attempt,
        Assignment.status != "expired",
    )


def pick_live_item(
    session: Session, project_id: uuid.UUID, user_id: uuid.UUID, annotations_per_item: int
) -> uuid.UUID | None:
    """The fullest open item this rater has not had; SKIP LOCKED lets concurrent raters pass each other."""
    return session.scalar(
        sa.select(Item.id)
        .where(
            Item.project_id == project_id,
            Item.purpose == "live",
            sa.not_(Item.is_complete),
            Item.assigned_count < annotations_per_item,
            _not_taken_by(user_id, 0),
        )
        .order_by(Item.annotation_count.desc(), Item.random_key.desc())
        .limit(1)
        .with_for_update(skip_locked=True)
    )


def pick_unseen_item(
    session: Session, project_id: uuid.UUID, user_id: uuid.UUID, purpose: str, attempt: int
) -> uuid.UUID | None:
    """A gold or training item this rater has not answered (in this attempt)."""
    order = Item.seq if purpose == "training" else Item.random_key
    return session.scalar(
        sa.select(Item.id)
        .where(
            Item.project_id == project_id,
            Item.purpose == purpose,
            sa.not_(Item.is_complete),
            _not_taken_by(user_id, attempt),
        )
        .order_by(order)
        .limit(1)
    )


def lease_item(
    session: Session,
    *,
    project_id: uuid.UUID,
    item_id: uuid.UUID,
    user_id: uuid.UUID,
    attempt: int,
    purpose: str,
    display_order: list[str],
    expires_at: datetime,
) -> Assignment:
    """Insert the lease, or renew this rater's own expired lease of the same item."""
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "project_id": project_id,
        "item_id": item_id,
        "user_id": user_id,
        "attempt": attempt,
        "purpose": purpose,
        "status": "leased",
        "display_order": display_order,
        "expires_at": expires_at,
        "created_at": utcnow(),
    }
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = dialect.insert(Assignment).values(**values)
    statement = statement.on_conflict_do_update(
        index_elements=["item_id", "user_id", "attempt"],
        set_={
            "status": "leased",
            "display_order": display_order,
            "expires_at": expires_at,
            "finished_at": None,
        },
    ).returning(Assignment)
    assignment: Assignment = session.scalars(statement, execution_options={"populate_existing": True}).one()
    if purpose == "live":
        session.execute(
            sa.update(Item).where(Item.id == item_id).values(assigned_count=Item.assigned_count + 1)
        )
    return assignment


def load_item_with_responses(session: Session, item_id: uuid.UUID) -> tuple[Item, dict[str, Response]]:
    item = session.get_one(Item, item_id)
    responses = session.scalars(sa.select(Response).where(Response.item_id == item_id)).all()
    return item, {str(r.id): r for r in responses}


def response_ids(session: Session, item_id: uuid.UUID) -> list[str]:
    rows = session.scalars(
        sa.select(Response.id).where(Response.item_id == item_id).order_by(Response.position)
    )
    return [str(r) for r in rows]


def lock_assignment(session: Session, assignment_id: uuid.UUID) -> Assignment | None:
    return session.scalar(sa.select(Assignment).where(Assignment.id == assignment_id).with_for_update())


def lock_item(session: Session, item_id: uuid.UUID) -> Item:
    return session.execute(sa.select(Item).where(Item.id == item_id).with_for_update()).scalar_one()


def annotation_for_assignment(session: Session, assignment_id: uuid.UUID) -> Annotation | None:
    return session.scalar(sa.select(Annotation).where(Annotation.assignment_id == assignment_id))


def annotation_by_key(session: Session, user_id: uuid.UUID, key: str) -> Annotation | None:
    return session.scalar(
        sa.select(Annotation).where(Annotation.user_id == user_id, Annotation.idempotency_key == key)
    )


def count_user_annotations_since(
    session: Session, project_id: uuid.UUID, user_id: uuid.UUID, since: datetime
) -> int:
    return (
        session.scalar(
            sa.select(sa.func.count(Annotation.id)).where(
                Annotation.project_id == project_id,
                Annotation.user_id == user_id,
                Annotation.created_at >= since,
                Annotation.purpose != "training",
            )
        )
        or 0
    )


def count_open_items(session: Session, project_id: uuid.UUID) -> int:
    return (
        session.scalar(
            sa.select(sa.func.count(Item.id)).where(
                Item.project_id == project_id, Item.purpose == "live", sa.not_(Item.is_complete)
            )
        )
        or 0
    )


def recent_annotations(
    session: Session, user_id: uuid.UUID, limit: int = 20, project_id: uuid.UUID | None = None
) -> list[Annotation]:
    query = sa.select(Annotation).where(Annotation.user_id == user_id, Annotation.purpose != "training")
    if project_id is not None:
        query = query.where(Annotation.project_id == project_id)
    return list(session.scalars(query.order_by(Annotation.created_at.desc()).limit(limit)))
