"""HTML routes of the projects domain: the home page, and project admin screens."""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import Response
from markupsafe import Markup
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from app.accounts.dependencies import DbSession, OptionalPageUser, PageAdmin, verify_csrf
from app.agreement import plots
from app.annotation import service as annotation_service
from app.audit import service as audit_service
from app.audit.views import describe_events
from app.errors import AppError
from app.items import api as items_api
from app.items import service as items_service
from app.items.parsing import iter_jsonl_lines
from app.projects import history as history_service
from app.projects import service
from app.projects.schemas import ProjectCreate, ProjectUpdate
from app.routing import TransactionalRoute
from app.templating import redirect, render

router = APIRouter(
    route_class=TransactionalRoute, include_in_schema=False, dependencies=[Depends(verify_csrf)]
)

QUESTION_PRESETS = {
    "pairwise": [
        {
            "name": "overall",
            "kind": "preference",
            "title": "Which response is better overall?",
            "strength": {
                "labels": ["negligibly better", "slightly better", "better", "significantly better"]
            },
        },
        {
            "name": "helpfulness",
            "kind": "rating",
            "title": "Helpfulness",
            "min": 1,
            "max": 7,
            "required": False,
        },
        {"name": "rationale", "kind": "text", "title": "Why?", "required": False},
    ],
    "ranking": [
        {
            "name": "ranking",
            "kind": "ranking",
            "title": "Order the responses, best first",
            "allow_ties": True,
        },
    ],
}


@router.get("/")
def home(request: Request, user: OptionalPageUser, session: DbSession) -> Response:
    if user is None:
        return redirect(request, "/login")
    projects = service.list_projects(session, user)
    progress = items_service.progress_by_project(session, [p.id for p in projects])
    working = (
        annotation_service.raters_working_now(session, [p.id for p in projects]) if user.is_admin else {}
    )
    recent = annotation_service.list_recent_annotations(session, user, limit=10)
    names = {p.id: p.name for p in projects}
    return render(
        request,
        "projects/home.html",
        {
            "projects": projects,
            "progress": progress,
            "working": working,
            "recent": recent,
            "project_names": names,
        },
    )


@router.get("/projects", include_in_schema=False)
def projects_page() -> Response:
    # The list of projects is the home page; the address people guess leads there.
    return Response(status_code=307, headers={"Location": "/"})


@router.get("/projects/new")
def new_project_page(request: Request, admin: PageAdmin) -> Response:
    return render(
        request,
        "projects/new.html",
        {
            "error": None,
            "form": {
                "questions": json.dumps(QUESTION_PRESETS["pairwise"], indent=2),
                "annotations_per_item": 3,
            },
        },
    )


@router.post("/projects/new")
def create_project_submit(
    request: Request,
    admin: PageAdmin,
    session: DbSession,
    name: Annotated[str, Form(max_length=200)],
    questions: Annotated[str, Form(max_length=100_000)],
    annotations_per_item: Annotated[int, Form()] = 3,
    description: Annotated[str, Form(max_length=10_000)] = "",
    guidelines: Annotated[str, Form(max_length=200_000)] = "",
) -> Response:
    form = {
        "name": name,
        "questions": questions,
        "annotations_per_item": annotations_per_item,
        "description": description,
        "guidelines": guidelines,
    }
    try:
        data = ProjectCreate.model_validate({**form, "questions": json.loads(questions)})
        project = service.create_project(session, data, admin)
    except (ValueError, ValidationError) as error:
        return render(
            request, "projects/new.html", {"error": _form_error(error), "form": form}, status_code=422
        )
    except AppError as error:
        return render(
            request,
            "projects/new.html",
            {"error": error.message, "form": form},
            status_code=error.status_code,
        )
    return redirect(request, f"/projects/{project.id}")


def _form_error(error: Exception) -> str:
    if isinstance(error, ValidationError):
        return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()[:8])
    return str(error)


@router.get("/projects/{project_id}/progress/history")
def progress_history(
    request: Request, project_id: uuid.UUID, admin: PageAdmin, session: DbSession
) -> Response:
    """The project page's progress over time, fetched after the page has shown."""
    project = service.get_project(session, project_id, admin)
    history = history_service.progress_history(session, project)
    days = [(d.day, d.judgments) for d in history.days]
    chart = Markup(plots.daily_chart(days, history.pace, history_service.PACE_DAYS))
    context = {"history": history, "chart": chart, "pace_days": history_service.PACE_DAYS}
    return render(request, "projects/_history.html", context)


@router.get("/projects/{project_id}")
def project_page(request: Request, project_id: uuid.UUID, admin: PageAdmin, session: DbSession) -> Response:
    project = service.get_project(session, project_id, admin)
    progress = items_service.progress_by_project(session, [project.id])[project.id]
    events, _ = audit_service.list_events(session, project_id=project.id, limit=20)
    return render(
        request,
        "projects/detail.html",
        {
            "project": project,
            "progress": progress,
            "members": service.list_members(session, project.id),
            "versions": service.list_guideline_versions(session, project.id),
            "events": describe_events(session, events),
            "error": None,
            "questions": service.project_questions(project),
            "questions_json": json.dumps(project.questions, indent=2, ensure_ascii=False),
        },
    )


@router.post("/projects/{project_id}/settings")
def update_settings_submit(
    request: Request,
    project_id: uuid.UUID,
    admin: PageAdmin,
    session: DbSession,
    name: Annotated[str, Form(max_length=200)],
    status: Annotated[str, Form(max_length=16)],
    annotations_per_item: Annotated[int, Form()],
    lease_minutes: Annotated[int, Form()],
    description: Annotated[str, Form(max_length=10_000)] = "",
) -> Response:
    project = service.get_project(session, project_id, admin)
    try:
        data = ProjectUpdate.model_validate(
            {
                "name": name,
                "status": status,
                "description": description,
                "annotations_per_item": annotations_per_item,
                "lease_minutes": lease_minutes,
            }
        )
    except ValidationError as error:
        raise AppError(_form_error(error)) from error
    service.update_project(session, project, data, admin)
    return redirect(request, f"/projects/{project.id}")


@router.post("/projects/{project_id}/guidelines")
def update_guidelines_submit(
    request: Request,
    project_id: uuid.UUID,
    admin: PageAdmin,
    session: DbSession,
    guidelines: Annotated[str, Form(max_length=200_000)],
) -> Response:
    project = service.get_project(session, project_id, admin)
    service.update_project(session, project, ProjectUpdate(guidelines=guidelines), admin)
    return redirect(request, f"/projects/{project.id}#guidelines")


@router.post("/projects/{project_id}/members")
def add_member_submit(
    request: Request,
    project_id: uuid.UUID,
    admin: PageAdmin,
    session: DbSession,
    username: Annotated[str, Form(max_length=64)],
) -> Response:
    project = service.get_project(session, project_id, admin)
    service.add_member(session, project, admin, username=username.strip())
    return redirect(request, f"/projects/{project.id}#members")


@router.post("/projects/{project_id}/members/{user_id}/remove")
def remove_member_submit(
    request: Request, project_id: uuid.UUID, user_id: uuid.UUID, admin: PageAdmin, session: DbSession
) -> Response:
    project = service.get_project(session, project_id, admin)
    service.remove_member(session, project, user_id, admin)
    return redirect(request, f"/projects/{project.id}#members")


@router.post("/projects/{project_id}/import")
async def import_submit(
    request: Request,
    project_id: uuid.UUID,
    admin: PageAdmin,
    session: DbSession,
    file: Annotated[UploadFile, File()],
    pairs: Annotated[str, Form(max_length=8)] = "none",
    dry_run: Annotated[str | None, Form(max_length=4)] = None,
    purpose: Annotated[Literal["live", "training"], Form()] = "live",
) -> Response:
    """Upload a file from the project page, or a training set from the training page; a dry run shows what
    would be created, duplicated or rejected."""
    project = await run_in_threadpool(service.get_project, session, project_id, admin)
    preview = await run_in_threadpool(items_service.preview_lines, file.file)
    try:
        options = items_service.import_options(project, items_api.parse_pairs(pairs))
        tally = await run_in_threadpool(
            lambda: items_service.import_items(
                session,
                project,
                iter_jsonl_lines(iter(lambda: file.file.read(1 << 16), b"")),
                admin,
                options=options,
                purpose=purpose,
                skip_bad_lines=True,
                dry_run=dry_run is not None,
            )
        )
    except AppError as error:
        return render(
            request,
            "projects/_import_result.html",
            {"error": error.message, "tally": None, "preview": preview},
            status_code=error.status_code,
        )
    return render(
        request,
        "projects/_import_result.html",
        {"error": None, "tally": tally, "preview": preview, "dry_run": dry_run is not None},
    )
