"""JSON routes of rater training and quality: raters' figures, qualification resets, exclusions."""

from __future__ import annotations

import uuid

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from app.accounts.dependencies import CurrentUser, DbSession
from app.projects import service as projects_service
from app.routing import TransactionalRoute
from app.training import service

router = APIRouter(prefix="/api/v1", route_class=TransactionalRoute, tags=["training"])


class ExclusionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str | None = Field(default=None, max_length=500)


class RaterState(BaseModel):
    user_id: uuid.UUID
    status: str
    qualified: bool
    excluded: bool


def _state(membership) -> RaterState:  # type: ignore[no-untyped-def]
    return RaterState(
        user_id=membership.user_id,
        status=membership.status,
        qualified=membership.qualified_at is not None,
        excluded=membership.excluded_at is not None,
    )


@router.post("/projects/{project_id}/raters/{user_id}/reset-qualification", response_model=RaterState)
def reset_qualification(
    project_id: uuid.UUID, user_id: uuid.UUID, user: CurrentUser, session: DbSession
) -> RaterState:
    project = projects_service.get_project_for_admin(session, project_id, user)
    return _state(service.reset_qualification(session, project, user_id, user))


@router.post("/projects/{project_id}/raters/{user_id}/exclude", response_model=RaterState)
def exclude_rater(
    project_id: uuid.UUID, user_id: uuid.UUID, body: ExclusionRequest, user: CurrentUser, session: DbSession
) -> RaterState:
    project = projects_service.get_project_for_admin(session, project_id, user)
    return _state(service.set_exclusion(session, project, user_id, user, exclude=True, reason=body.reason))


@router.post("/projects/{project_id}/raters/{user_id}/include", response_model=RaterState)
def include_rater(
    project_id: uuid.UUID, user_id: uuid.UUID, user: CurrentUser, session: DbSession
) -> RaterState:
    project = projects_service.get_project_for_admin(session, project_id, user)
    return _state(service.set_exclusion(session, project, user_id, user, exclude=False))
