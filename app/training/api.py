"""JSON routes of rater training and quality: raters' figures, qualification resets, exclusions."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query

from app.accounts.dependencies import CurrentUser, DbSession
from app.errors import ERROR_RESPONSES
from app.projects import service as projects_service
from app.projects.models import ProjectMembership
from app.routing import TransactionalRoute
from app.training import service
from app.training.schemas import (
    AgreementFigures,
    AttemptRead,
    ChoiceFigures,
    DayVolume,
    ExclusionRequest,
    GoldFigures,
    PositionBiasFigures,
    RaterList,
    RaterRead,
    RaterState,
    ReasonRead,
    SortKey,
    SpeedFigures,
    StraightLiningFigures,
)

router = APIRouter(
    prefix="/api/v1", responses=ERROR_RESPONSES, route_class=TransactionalRoute, tags=["training"]
)


def _state(membership: ProjectMembership) -> RaterState:
    return RaterState(
        user_id=membership.user_id,
        status=membership.status,
        qualified=membership.qualified_at is not None,
        excluded=membership.excluded_at is not None,
    )


def to_rater_read(rater: service.RaterFigures, floor_seconds: float) -> RaterRead:
    s = rater.signals
    median = s.speed.median_ms
    return RaterRead(
        user_id=rater.user_id,
        username=rater.username,
        status=rater.status,
        paused_reason=rater.paused_reason,
        excluded=rater.excluded,
        excluded_at=rater.excluded_at,
        exclusion_reason=rater.exclusion_reason,
        qualified=rater.qualified_at is not None,
        qualified_at=rater.qualified_at,
        attempts=[AttemptRead(**{**a.__dict__, "accuracy": a.accuracy}) for a in rater.attempts],
        annotations=s.n_live,
        gold_annotations=s.n_gold,
        gold=GoldFigures(answered=s.gold.answered, matched=s.gold.matched, share=s.gold.share),
        agreement=AgreementFigures(n=s.agreement.n, matched=s.agreement.matched, share=s.agreement.share),
        position_bias=PositionBiasFigures(**s.position.__dict__, share=s.position.share),
        choices=ChoiceFigures(
            **s.choices.__dict__, tie_rate=s.choices.tie_rate, both_bad_rate=s.choices.both_bad_rate
        ),
        speed=SpeedFigures(
            n=s.speed.n,
            median_seconds=None if median is None else median / 1000,
            fast=s.speed.fast,
            fast_share=s.speed.fast_share,
            floor_seconds=floor_seconds,
        ),
        straight_lining=StraightLiningFigures(**s.straight.__dict__, share=s.straight.share),
        volume=[DayVolume(day=d.day, count=d.count) for d in s.volume],
        flagged=rater.flagged,
        reasons=[ReasonRead(code=r.code, message=r.message) for r in rater.reasons],
    )


@router.get("/projects/{project_id}/raters", response_model=RaterList)
def list_raters(
    project_id: uuid.UUID,
    user: CurrentUser,
    session: DbSession,
    sort: SortKey = "flag",
    direction: Annotated[Literal["asc", "desc"], Query(alias="dir")] = "desc",
) -> RaterList:
    """Every member's quality figures and low-quality flag; training answers never count."""
    project = projects_service.get_project_for_admin(session, project_id, user)
    report = service.rater_figures(session, project)
    raters = service.sort_raters(report.raters, sort, descending=direction == "desc")
    return RaterList(
        project_id=project.id,
        reference_agreement=report.reference_agreement,
        raters=[to_rater_read(r, project.min_seconds_per_item) for r in raters],
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
