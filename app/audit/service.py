"""Recording and listing admin actions; the log is append-only (no update or delete here)."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.audit.models import AuditEvent
from app.observability import current_request_id


def record(
    session: Session,
    actor_id: uuid.UUID | None,
    action: str,
    target_type: str,
    target_id: object | None = None,
    *,
    project_id: uuid.UUID | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEvent:
    event = AuditEvent(
        actor_id=actor_id,
        action=action,
        target_type=target_type,
        target_id=str(target_id) if target_id is not None else None,
        project_id=project_id,
        before=_jsonable(before),
        after=_jsonable(after),
        request_id=current_request_id(),
    )
    session.add(event)
    return event


def list_events(
    session: Session,
    *,
    project_id: uuid.UUID | None = None,
    action: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[AuditEvent], int]:
    query = sa.select(AuditEvent)
    if project_id is not None:
        query = query.where(AuditEvent.project_id == project_id)
    if action:
        query = query.where(AuditEvent.action == action)
    total = session.scalar(sa.select(sa.func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(
        query.order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc()).limit(limit).offset(offset)
    ).all()
    return list(rows), total


def _jsonable(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, str | int | float | bool):
        return value
    return str(value)
