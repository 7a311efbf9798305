"""HTML routes of the annotation domain: the annotate page and its htmx fragments, and past annotations."""

from __future__ import annotations

import secrets
import string
import uuid
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from app.accounts.dependencies import DbSession, PageUser, verify_csrf
from app.accounts.models import User
from app.annotation import exceptions, forms
from app.annotation import service as annotation_service
from app.annotation.models import Annotation
from app.errors import AppError, Conflict
from app.items.models import Response as ItemResponse
from app.projects import service as projects_service
from app.projects.models import Project
from app.projects.questions import Question, describe_answer
from app.routing import TransactionalRoute, writes_on_read
from app.templating import is_htmx, redirect, render

router = APIRouter(
    route_class=TransactionalRoute, include_in_schema=False, dependencies=[Depends(verify_csrf)]
)

SkipReason = Literal["cannot_judge", "needs_expertise", "broken", "offensive", "other"]


async def submitted_form(request: Request) -> FormData:
    # verify_csrf has already read the body; Starlette caches the parsed form on the request.
    return await request.form()


SubmittedForm = Annotated[FormData, Depends(submitted_form)]


def annotate_url(project_id: uuid.UUID) -> str:
    return f"/projects/{project_id}/annotate"


def screen_labels(response_ids: Sequence[Any]) -> dict[str, str]:
    """Response id -> "A", "B", ... in display order: the only names a rater ever sees."""
    return {
        str(rid): string.ascii_uppercase[i] if i < 26 else f"R{i + 1}" for i, rid in enumerate(response_ids)
    }


def _labelled(responses: Sequence[ItemResponse]) -> list[tuple[str, ItemResponse]]:
    labels = screen_labels([r.id for r in responses])
    return [(labels[str(r.id)], r) for r in responses]


def _error_context(error: AppError | forms.FormErrors | None) -> dict[str, Any]:
    """Errors shown next to their question; those of no question (or a bare message) above the form."""
    by_question: dict[str, list[str]] = {}
    general: list[str] = []
    details = getattr(error, "details", None)
    for detail in details if isinstance(details, list) else []:
        name, message = detail.get("question"), str(detail.get("error", ""))
        if name:
            by_question.setdefault(str(name), []).append(message)
        else:
            general.append(message)
    if error is not None and not by_question and not general:
        general = [str(getattr(error, "message", error))]
    return {"errors": by_question, "general_errors": general}


def _item_context(
    project: Project, leased: annotation_service.LeasedItem, questions: Sequence[Question]
) -> dict[str, Any]:
    return {
        "project": project,
        "leased": leased,
        "responses": _labelled(leased.responses),
        "questions": questions,
        "show_rationale": all(q.name != "rationale" for q in questions),
    }


def _workspace(
    session: Session,
    project: Project,
    user: User,
    leased: annotation_service.LeasedItem | None,
    *,
    completed: uuid.UUID | None = None,
    kept: dict[str, list[str]] | None = None,
    error: AppError | forms.FormErrors | None = None,
) -> dict[str, Any]:
    """What the workspace fragment shows: the item and its form, or why there is nothing to do."""
    questions = projects_service.project_questions(project)
    context: dict[str, Any] = {
        **_error_context(error),
        "project": project,
        "progress": annotation_service.rater_progress(session, project, user),
        "completed": completed,
        "kept": kept or {},
        "idempotency_key": secrets.token_urlsafe(18),
        "idle": None if leased else _idle_reason(session, project, user),
    }
    if leased is not None:
        context.update(_item_context(project, leased, questions))
    return context


def _idle_reason(session: Session, project: Project, user: User) -> dict[str, Any]:
    membership = projects_service.get_membership(session, project.id, user.id)
    if membership is None:
        return {"kind": "not_member"}
    if project.status != "active":
        return {"kind": "project_paused"}
    if membership.status != "active":
        return {"kind": "rater_paused", "reason": membership.paused_reason}
    if project.require_qualification and membership.qualified_at is None:
        return {"kind": "training_wait"}
    return {"kind": "all_done"}


def _next_workspace(
    session: Session, project: Project, user: User, completed: uuid.UUID | None = None
) -> dict[str, Any]:
    try:
        leased = annotation_service.next_assignment(session, project.id, user)
    except exceptions.NotAMember:
        # An admin may open a project they are not rating: show why instead of a bare 404.
        leased = None
    return _workspace(session, project, user, leased, completed=completed)


def _guidelines(session: Session, project: Project, user: User) -> dict[str, Any]:
    seen, older = projects_service.guidelines_news(session, project, user)
    return {"seen_version": seen, "older_guidelines": older}


def _respond(
    request: Request,
    session: Session,
    project: Project,
    user: User,
    fragment: str,
    context: dict[str, Any],
    status_code: int = 200,
) -> Response:
    """The fragment alone for htmx; otherwise the whole annotate page around it, so plain forms work too."""
    if is_htmx(request):
        return render(request, fragment, context, status_code=status_code)
    page = {**context, **_guidelines(session, project, user), "fragment": fragment}
    return render(request, "annotation/annotate.html", page, status_code=status_code)


def _conflict(
    request: Request,
    session: Session,
    project: Project,
    user: User,
    error: AppError,
    assignment_id: uuid.UUID,
) -> Response:
    context = {
        "project": project,
        "progress": annotation_service.rater_progress(session, project, user),
        "completed": assignment_id,
        "code": error.code,
        "message": error.message,
    }
    return _respond(request, session, project, user, "annotation/_conflict.html", context, error.status_code)


def _feedback(
    session: Session,
    project: Project,
    user: User,
    submission: annotation_service.Submission,
) -> dict[str, Any]:
    """Training feedback in screen terms: "B is better", never response ids."""
    annotation = submission.annotation
    questions = projects_service.project_questions(project)
    leased = annotation_service.show_own_assignment(session, annotation.assignment_id, user)
    labels = screen_labels(annotation.display_order)
    by_name = {q.name: q for q in questions}
    feedback = submission.feedback or {}
    rows = [
        {
            "title": by_name[d["question"]].title,
            "matched": d.get("matched"),
            "given": describe_answer(by_name[d["question"]], d.get("given"), labels),
            "expected": describe_answer(by_name[d["question"]], d.get("expected"), labels),
        }
        for d in feedback.get("details", [])
        if d.get("question") in by_name
    ]
    return {
        **_item_context(project, leased, questions),
        "progress": annotation_service.rater_progress(session, project, user),
        "completed": annotation.assignment_id,
        "feedback": feedback,
        "rows": rows,
    }


@router.get("/projects/{project_id}/annotate")
@writes_on_read
def annotate_page(request: Request, project_id: uuid.UUID, user: PageUser, session: DbSession) -> Response:
    project = projects_service.get_project(session, project_id, user)
    context = _next_workspace(session, project, user)
    return _respond(request, session, project, user, "annotation/_next.html", context)


@router.post("/projects/{project_id}/annotate/guidelines-seen")
def guidelines_seen(project_id: uuid.UUID, user: PageUser, session: DbSession) -> Response:
    project = projects_service.get_project(session, project_id, user)
    projects_service.mark_guidelines_seen(session, project, user)
    return Response(status_code=204)


@router.post("/projects/{project_id}/annotate/{assignment_id}")
def submit_answers(
    request: Request,
    project_id: uuid.UUID,
    assignment_id: uuid.UUID,
    user: PageUser,
    session: DbSession,
    form: SubmittedForm,
) -> Response:
    project = projects_service.get_project(session, project_id, user)
    questions = projects_service.project_questions(project)
    try:
        body = forms.submission_from_form(form, questions)
        key = forms.idempotency_key(form)
        submission = annotation_service.submit_annotation(session, assignment_id, user, body, key)
    except (forms.FormErrors, exceptions.InvalidAnswers) as error:
        leased = annotation_service.show_own_assignment(session, assignment_id, user)
        context = _workspace(session, project, user, leased, kept=forms.kept_fields(form), error=error)
        return _respond(request, session, project, user, "annotation/_next.html", context, 422)
    except Conflict as error:
        return _conflict(request, session, project, user, error, assignment_id)
    if submission.feedback is not None:
        context = _feedback(session, project, user, submission)
        return _respond(request, session, project, user, "annotation/_feedback.html", context)
    if not is_htmx(request):
        return redirect(request, annotate_url(project.id))
    context = _next_workspace(session, project, user, completed=assignment_id)
    return _respond(request, session, project, user, "annotation/_next.html", context)


@router.post("/projects/{project_id}/annotate/{assignment_id}/skip")
def skip_item(
    request: Request,
    project_id: uuid.UUID,
    assignment_id: uuid.UUID,
    user: PageUser,
    session: DbSession,
    reason: Annotated[SkipReason, Form()] = "other",
) -> Response:
    project = projects_service.get_project(session, project_id, user)
    try:
        annotation_service.skip_assignment(session, assignment_id, user, reason)
    except Conflict as error:
        return _conflict(request, session, project, user, error, assignment_id)
    if not is_htmx(request):
        return redirect(request, annotate_url(project.id))
    context = _next_workspace(session, project, user, completed=assignment_id)
    return _respond(request, session, project, user, "annotation/_next.html", context)


def _annotation_context(
    session: Session,
    annotation: Annotation,
    user: User,
    *,
    kept: dict[str, list[str]] | None = None,
    error: AppError | forms.FormErrors | None = None,
) -> dict[str, Any]:
    project = projects_service.get_project(session, annotation.project_id, user)
    questions = projects_service.project_questions(project)
    leased = annotation_service.show_own_assignment(session, annotation.assignment_id, user)
    labels = screen_labels(annotation.display_order)
    stored = forms.fields_from_answers(questions, annotation.answers, annotation.rationale, annotation.flags)
    return {
        **_item_context(project, leased, questions),
        **_error_context(error),
        "annotation": annotation,
        "described": [
            (q.title, describe_answer(q, annotation.answers.get(q.name), labels)) for q in questions
        ],
        "correctable": annotation_service.is_correctable(annotation),
        "kept": stored if kept is None else kept,
    }


@router.get("/annotations/{annotation_id}")
def annotation_page(
    request: Request, annotation_id: uuid.UUID, user: PageUser, session: DbSession, saved: bool = False
) -> Response:
    annotation = annotation_service.get_own_annotation(session, annotation_id, user)
    context = {**_annotation_context(session, annotation, user), "saved": saved}
    return render(request, "annotation/annotation.html", context)


@router.post("/annotations/{annotation_id}")
def correct_annotation(
    request: Request, annotation_id: uuid.UUID, user: PageUser, session: DbSession, form: SubmittedForm
) -> Response:
    annotation = annotation_service.get_own_annotation(session, annotation_id, user)
    project = projects_service.get_project(session, annotation.project_id, user)
    try:
        body = forms.correction_from_form(form, projects_service.project_questions(project))
        annotation_service.correct_annotation(session, annotation_id, user, body)
    except (forms.FormErrors, exceptions.InvalidAnswers, exceptions.CorrectionWindowClosed) as error:
        status = error.status_code if isinstance(error, AppError) else 422
        context = _annotation_context(session, annotation, user, kept=forms.kept_fields(form), error=error)
        return render(request, "annotation/annotation.html", context, status_code=status)
    return redirect(request, f"/annotations/{annotation_id}?saved=true")
