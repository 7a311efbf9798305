"""HTML routes of rater quality and training: the quality table, a rater's page, the training set."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import Response

from app.accounts.dependencies import DbSession, PageAdmin, verify_csrf
from app.errors import AppError
from app.projects import service as projects_service
from app.projects.models import Project
from app.routing import TransactionalRoute
from app.templating import redirect, render
from app.training import forms, service
from app.training.figures import DEFAULT_SORT, SORT_KEYS
from app.training.signals import p_text

router = APIRouter(
    route_class=TransactionalRoute, include_in_schema=False, dependencies=[Depends(verify_csrf)]
)

# (sort key, header, hint); the hint explains what the column measures when hovered.
COLUMNS = (
    ("rater", "Rater", None),
    ("annotations", "Answers", "Live answers; bars: the last 14 days"),
    ("gold", "Gold", "Live gold items matched"),
    ("agreement", "Agreement", "Share of items where the rater matched the majority of the other raters"),
    ("position", "Position bias", "Share of choices of the response shown first; the band marks 25–75%"),
    ("ties", "Tie · both bad", "Share of preference answers that were a tie, or both bad"),
    ("time", "Time", "Median seconds per item; share faster than the project's floor"),
    ("straight", "Same scores", "Rating answers that gave every response the same score"),
    ("flag", "Flag", None),
)


async def _form(request: Request) -> dict[str, list[str]]:
    form = await request.form()
    return {key: [v for v in form.getlist(key) if isinstance(v, str)] for key in form}


FormFields = Annotated[dict[str, list[str]], Depends(_form)]


def _project(session: DbSession, project_id: uuid.UUID, admin: PageAdmin) -> Project:
    return projects_service.get_project_for_admin(session, project_id, admin)


AdminProject = Annotated[Project, Depends(_project)]


@router.get("/projects/{project_id}/quality")
def quality_page(
    request: Request,
    project: AdminProject,
    session: DbSession,
    sort: Annotated[str, Query(max_length=20)] = DEFAULT_SORT,
    direction: Annotated[Literal["asc", "desc"], Query(alias="dir")] = "desc",
) -> Response:
    sort = sort if sort in SORT_KEYS else DEFAULT_SORT
    report = service.rater_figures(session, project)
    raters = service.sort_raters(report.raters, sort, descending=direction == "desc")
    return render(
        request,
        "training/quality.html",
        {
            "project": project,
            "report": report,
            "raters": raters,
            "columns": COLUMNS,
            "sort": sort,
            "direction": direction,
            "flagged": sum(r.flagged for r in raters),
            "p_text": p_text,
        },
    )


@router.get("/projects/{project_id}/raters/{user_id}")
def rater_page(request: Request, project: AdminProject, user_id: uuid.UUID, session: DbSession) -> Response:
    detail = service.rater_detail(session, project, user_id)
    return render(request, "training/rater.html", {"project": project, "detail": detail, "p_text": p_text})


def _back(project: Project, user_id: uuid.UUID, back: str) -> str:
    # A fixed choice of places, never a URL from the form: no open redirect.
    if back == "rater":
        return f"/projects/{project.id}/raters/{user_id}"
    return f"/projects/{project.id}/quality#rater-{user_id}"


@router.post("/projects/{project_id}/raters/{user_id}/exclude")
def exclude_submit(
    request: Request,
    project: AdminProject,
    user_id: uuid.UUID,
    admin: PageAdmin,
    session: DbSession,
    reason: Annotated[str, Form(max_length=500)] = "",
    back: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    service.set_exclusion(session, project, user_id, admin, exclude=True, reason=reason.strip() or None)
    return redirect(request, _back(project, user_id, back))


@router.post("/projects/{project_id}/raters/{user_id}/include")
def include_submit(
    request: Request,
    project: AdminProject,
    user_id: uuid.UUID,
    admin: PageAdmin,
    session: DbSession,
    back: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    service.set_exclusion(session, project, user_id, admin, exclude=False)
    return redirect(request, _back(project, user_id, back))


@router.post("/projects/{project_id}/raters/{user_id}/reset-qualification")
def reset_submit(
    request: Request,
    project: AdminProject,
    user_id: uuid.UUID,
    admin: PageAdmin,
    session: DbSession,
    back: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    service.reset_qualification(session, project, user_id, admin)
    return redirect(request, _back(project, user_id, back))


def _training_page(
    request: Request,
    project: Project,
    session: DbSession,
    *,
    status_code: int = 200,
    **context: Any,
) -> Response:
    page = {
        "project": project,
        "training": service.training_set(session, project),
        "settings_errors": {},
        "settings_values": None,
        "gold_error": None,
        **context,
    }
    return render(request, "training/training.html", page, status_code=status_code)


@router.get("/projects/{project_id}/training")
def training_page(request: Request, project: AdminProject, session: DbSession) -> Response:
    return _training_page(request, project, session)


@router.post("/projects/{project_id}/training/settings")
def training_settings_submit(
    request: Request, project: AdminProject, admin: PageAdmin, session: DbSession, form: FormFields
) -> Response:
    update, errors = forms.settings_from_form(form)
    if update is None:
        values = {k: v[0] for k, v in form.items() if v}
        return _training_page(
            request, project, session, status_code=422, settings_errors=errors, settings_values=values
        )
    projects_service.update_project(session, project, update, admin)
    return redirect(request, f"/projects/{project.id}/training#settings")


@router.post("/projects/{project_id}/training/items/{item_id}/gold")
def gold_submit(
    request: Request,
    project: AdminProject,
    item_id: uuid.UUID,
    admin: PageAdmin,
    session: DbSession,
    form: FormFields,
    explanation: Annotated[str, Form(max_length=20_000)] = "",
) -> Response:
    try:
        service.set_item_gold(session, project, item_id, form, explanation, admin)
    except AppError as error:
        if error.status_code != 422:
            raise
        # Nothing was written: set_gold checks the answers before it changes the item.
        gold_error = {"item_id": item_id, "details": error.details or [{"error": error.message}]}
        return _training_page(request, project, session, status_code=422, gold_error=gold_error)
    return redirect(request, f"/projects/{project.id}/training#item-{item_id}")
