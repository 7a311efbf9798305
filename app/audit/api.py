"""JSON route of the audit log, for admins."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict

from app.accounts.dependencies import CurrentAdmin, DbSession
from app.audit import service
from app.errors import ERROR_RESPONSES
from app.routing import TransactionalRoute

router = APIRouter(
    prefix="/api/v1", responses=ERROR_RESPONSES, route_class=TransactionalRoute, tags=["audit"]
)


class AuditEventRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    actor_id: uuid.UUID | None
    action: str
    target_type: str
    target_id: str | None
    project_id: uuid.UUID | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    request_id: str | None
    created_at: datetime


class AuditEventList(BaseModel):
    items: list[AuditEventRead]
    total: int


@router.get("/audit", response_model=AuditEventList)
def list_audit_events(
    admin: CurrentAdmin,
    session: DbSession,
    project_id: uuid.UUID | None = None,
    action: Annotated[str | None, Query(max_length=80, description="only events of this action")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> AuditEventList:
    events, total = service.list_events(
        session, project_id=project_id, action=action, limit=limit, offset=offset
    )
    return AuditEventList(items=[AuditEventRead.model_validate(e) for e in events], total=total)
