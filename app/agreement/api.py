"""JSON routes of the agreement domain: a project's agreement figures and its model leaderboard."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from app.accounts.dependencies import CurrentUser, DbSession
from app.agreement import service
from app.agreement.schemas import AgreementRead, LeaderboardRead
from app.errors import ERROR_RESPONSES
from app.projects import service as projects_service
from app.routing import TransactionalRoute

router = APIRouter(
    prefix="/api/v1", responses=ERROR_RESPONSES, route_class=TransactionalRoute, tags=["agreement"]
)

NBoot = Annotated[int, Query(ge=0, le=5000, description="Bootstrap resamples; 0 skips the intervals.")]
Seed = Annotated[int, Query(ge=0, le=2**32 - 1)]


@router.get("/projects/{project_id}/agreement", response_model=AgreementRead)
def read_agreement(
    project_id: uuid.UUID, user: CurrentUser, session: DbSession, n_boot: NBoot = 1000, seed: Seed = 0
) -> AgreementRead:
    project = projects_service.get_project_for_admin(session, project_id, user)
    return AgreementRead.model_validate(service.project_agreement(session, project, n_boot=n_boot, seed=seed))


@router.get("/projects/{project_id}/leaderboard", response_model=LeaderboardRead)
def read_leaderboard(
    project_id: uuid.UUID, user: CurrentUser, session: DbSession, n_boot: NBoot = 200, seed: Seed = 0
) -> LeaderboardRead:
    project = projects_service.get_project_for_admin(session, project_id, user)
    return LeaderboardRead.model_validate(service.leaderboard(session, project, n_boot=n_boot, seed=seed))
