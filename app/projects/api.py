"""JSON routes of the projects domain."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, status

from app.accounts.dependencies import CurrentAdmin, CurrentUser, DbSession
from app.accounts.models import User
from app.errors import ERROR_RESPONSES
from app.items import service as items_service
from app.projects import history as history_service
from app.projects import service
from app.projects.models import ProjectMembership
from app.projects.schemas import (
    DayJudgments,
    MemberAdd,
    MemberRead,
    ProjectCreate,
    ProjectList,
    ProjectProgress,
    ProjectRead,
    ProjectUpdate,
)
from app.routing import TransactionalRoute

router = APIRouter(
    prefix="/api/v1", responses=ERROR_RESPONSES, route_class=TransactionalRoute, tags=["projects"]
)


@router.post("/projects", response_model=ProjectRead, status_code=status.HTTP_201_CREATED)
def create_project(body: ProjectCreate, admin: CurrentAdmin, session: DbSession) -> ProjectRead:
    return ProjectRead.model_validate(service.create_project(session, body, admin))


@router.get("/projects", response_model=ProjectList)
def list_projects(user: CurrentUser, session: DbSession, include_archived: bool = False) -> ProjectList:
    projects = service.list_projects(session, user, include_archived=include_archived)
    return ProjectList(items=[ProjectRead.model_validate(p) for p in projects], total=len(projects))


@router.get("/projects/{project_id}", response_model=ProjectRead)
def read_project(project_id: uuid.UUID, user: CurrentUser, session: DbSession) -> ProjectRead:
    return ProjectRead.model_validate(service.get_project(session, project_id, user))


@router.get("/projects/{project_id}/progress", response_model=ProjectProgress)
def read_progress(project_id: uuid.UUID, user: CurrentUser, session: DbSession) -> ProjectProgress:
    project = service.get_project_for_admin(session, project_id, user)
    progress = items_service.progress_by_project(session, [project.id])[project.id]
    history = history_service.progress_history(session, project)
    return ProjectProgress(
        items_total=progress.total,
        items_complete=progress.complete,
        items_in_progress=progress.in_progress,
        items_left=progress.left,
        percent_complete=round(progress.percent_complete, 2),
        annotations=progress.annotations,
        annotations_per_item=project.annotations_per_item,
        judgments_left=history.judgments_left,
        judgments_per_day=[DayJudgments(day=d.day, judgments=d.judgments) for d in history.days],
        pace_per_day=round(history.pace, 3),
        days_left=history.days_left,
    )


@router.patch("/projects/{project_id}", response_model=ProjectRead)
def update_project(
    project_id: uuid.UUID, body: ProjectUpdate, user: CurrentUser, session: DbSession
) -> ProjectRead:
    project = service.get_project_for_admin(session, project_id, user)
    return ProjectRead.model_validate(service.update_project(session, project, body, user))


@router.post("/projects/{project_id}/archive", response_model=ProjectRead)
def archive_project(project_id: uuid.UUID, user: CurrentUser, session: DbSession) -> ProjectRead:
    project = service.get_project_for_admin(session, project_id, user)
    return ProjectRead.model_validate(service.archive_project(session, project, user))


def _member_read(membership: ProjectMembership, member: User) -> MemberRead:
    return MemberRead(
        user_id=member.id,
        username=member.username,
        role=member.role,
        status=membership.status,
        qualified_at=membership.qualified_at,
        excluded=membership.excluded_at is not None,
        joined_at=membership.created_at,
    )


@router.get("/projects/{project_id}/members", response_model=list[MemberRead])
def list_members(project_id: uuid.UUID, user: CurrentUser, session: DbSession) -> list[MemberRead]:
    project = service.get_project_for_admin(session, project_id, user)
    return [_member_read(m, u) for m, u in service.list_members(session, project.id)]


@router.post("/projects/{project_id}/members", response_model=MemberRead, status_code=status.HTTP_201_CREATED)
def add_member(project_id: uuid.UUID, body: MemberAdd, user: CurrentUser, session: DbSession) -> MemberRead:
    project = service.get_project_for_admin(session, project_id, user)
    membership = service.add_member(session, project, user, username=body.username, user_id=body.user_id)
    return _member_read(membership, session.get_one(User, membership.user_id))


@router.delete("/projects/{project_id}/members/{user_id}", status_code=status.HTTP_204_NO_CONTENT)
def remove_member(project_id: uuid.UUID, user_id: uuid.UUID, admin: CurrentUser, session: DbSession) -> None:
    project = service.get_project_for_admin(session, project_id, admin)
    service.remove_member(session, project, user_id, admin)
