"""JSON routes of the annotation domain: next item, submit, skip, corrections."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, status
from fastapi.responses import Response
from sqlalchemy.orm import Session

from app.accounts.dependencies import BEARER_CHALLENGE, CurrentUser, DbSession, bearer_token
from app.annotation import service
from app.annotation.schemas import (
    AnnotationCorrection,
    AnnotationRead,
    AnnotationSubmit,
    AssignmentRead,
    ItemForRater,
    ResponseForRater,
    SkipRequest,
    SkipResult,
    SubmitResult,
)
from app.errors import ERROR_RESPONSES, NotAuthenticated
from app.routing import TransactionalRoute, run_in_transaction

router = APIRouter(
    prefix="/api/v1", responses=ERROR_RESPONSES, route_class=TransactionalRoute, tags=["annotation"]
)


def to_assignment_read(leased: service.LeasedItem) -> AssignmentRead:
    return AssignmentRead(
        assignment_id=leased.assignment.id,
        expires_at=leased.assignment.expires_at,
        training=leased.training,
        item=ItemForRater(
            id=leased.item.id,
            prompt=leased.item.prompt,
            responses=[ResponseForRater(id=r.id, text=r.text) for r in leased.responses],
        ),
    )


# The two calls a rater makes per item run as one transaction in one worker thread (see run_in_transaction).
@router.post(
    "/projects/{project_id}/assignments/next",
    response_model=AssignmentRead,
    responses={204: {"description": "Nothing left for this rater"}},
)
async def next_assignment(project_id: uuid.UUID, request: Request) -> AssignmentRead | Response:
    token = bearer_token(request)

    def work(session: Session) -> AssignmentRead | None:
        found = service.next_assignment_for_token(session, project_id, token)
        if found is None:
            raise NotAuthenticated(headers=BEARER_CHALLENGE)
        request.state.user, leased = found
        return None if leased is None else to_assignment_read(leased)

    assignment = await run_in_transaction(request, work)
    if assignment is None:
        return Response(status_code=status.HTTP_204_NO_CONTENT)
    return assignment


@router.post("/assignments/{assignment_id}/annotation", response_model=SubmitResult, status_code=201)
async def submit_annotation(
    assignment_id: uuid.UUID,
    body: AnnotationSubmit,
    request: Request,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> SubmitResult:
    token = bearer_token(request)

    def work(session: Session) -> SubmitResult:
        found = service.submit_annotation_for_token(session, assignment_id, token, body, idempotency_key)
        if found is None:
            raise NotAuthenticated(headers=BEARER_CHALLENGE)
        request.state.user, result = found
        annotation = result.annotation
        return SubmitResult(
            annotation_id=annotation.id,
            assignment_id=annotation.assignment_id,
            item_id=annotation.item_id,
            revision=annotation.revision,
            created_at=annotation.created_at,
            feedback=result.feedback,
        )

    return await run_in_transaction(request, work)


@router.post("/assignments/{assignment_id}/skip", response_model=SkipResult)
def skip_assignment(
    assignment_id: uuid.UUID, body: SkipRequest, user: CurrentUser, session: DbSession
) -> SkipResult:
    assignment = service.skip_assignment(session, assignment_id, user, body.reason, body.note)
    return SkipResult(assignment_id=assignment.id)


@router.get("/annotations/mine", response_model=list[AnnotationRead])
def list_my_annotations(
    user: CurrentUser,
    session: DbSession,
    project_id: uuid.UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
) -> list[AnnotationRead]:
    rows = service.list_recent_annotations(session, user, project_id=project_id, limit=limit)
    return [AnnotationRead.model_validate(a) for a in rows]


@router.get("/annotations/{annotation_id}", response_model=AnnotationRead)
def read_annotation(annotation_id: uuid.UUID, user: CurrentUser, session: DbSession) -> AnnotationRead:
    return AnnotationRead.model_validate(service.get_own_annotation(session, annotation_id, user))


@router.patch("/annotations/{annotation_id}", response_model=AnnotationRead)
def correct_annotation(
    annotation_id: uuid.UUID, body: AnnotationCorrection, user: CurrentUser, session: DbSession
) -> AnnotationRead:
    return AnnotationRead.model_validate(service.correct_annotation(session, annotation_id, user, body))
