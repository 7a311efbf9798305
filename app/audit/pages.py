"""HTML route of the audit log: every admin action in words, filtered by project and action, a page at a time."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from app.accounts.dependencies import DbSession, PageAdmin, verify_csrf
from app.audit import service
from app.audit.views import ACTION_LABELS, describe_events
from app.projects import service as projects_service
from app.routing import TransactionalRoute
from app.templating import render

router = APIRouter(
    route_class=TransactionalRoute, include_in_schema=False, dependencies=[Depends(verify_csrf)]
)

PAGE_SIZE = 100


@router.get("/admin/audit")
def audit_page(
    request: Request,
    admin: PageAdmin,
    session: DbSession,
    project_id: uuid.UUID | None = None,
    action: Annotated[str | None, Query(max_length=80)] = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> Response:
    events, total = service.list_events(
        session, project_id=project_id, action=action or None, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE
    )
    return render(
        request,
        "audit/log.html",
        {
            "events": describe_events(session, events),
            "total": total,
            "page": page,
            "pages": max(1, -(-total // PAGE_SIZE)),
            "projects": projects_service.list_projects(session, admin, include_archived=True),
            "actions": {name: label() for name, label in ACTION_LABELS.items()},
            "chosen_project": project_id,
            "chosen_action": action or "",
        },
    )
