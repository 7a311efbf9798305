"""HTML routes of the exports domain: the export page, its filter-funnel preview and snapshot downloads."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, Response
from pydantic import ValidationError

from app.accounts.dependencies import DbSession, PageAdmin, verify_csrf
from app.errors import AppError
from app.exports import service
from app.exports.schemas import ExportOptions, ExportPreview
from app.projects import service as projects_service
from app.projects.models import Project
from app.routing import TransactionalRoute
from app.templating import redirect, render

router = APIRouter(
    route_class=TransactionalRoute, include_in_schema=False, dependencies=[Depends(verify_csrf)]
)

OPTION_FIELDS = tuple(ExportOptions.model_fields)


def _form_values(source: Any) -> dict[str, str]:
    return {key: str(source[key]) for key in OPTION_FIELDS if key in source}


def _options(values: dict[str, str]) -> tuple[ExportOptions | None, str | None]:
    try:
        return ExportOptions.model_validate(values), None
    except ValidationError as error:
        messages = [
            f"{'.'.join(str(p) for p in e['loc'])}: {str(e['msg']).removeprefix('Value error, ')}"
            for e in error.errors()[:6]
        ]
        return None, "; ".join(messages)


def _page_context(
    session: DbSession, project: Project, values: dict[str, str], error: str | None
) -> dict[str, Any]:
    questions = projects_service.project_questions(project)
    exports = service.list_exports(session, project)
    return {
        "project": project,
        "form": values,
        "error": error,
        "pair_questions": [q for q in questions if q.kind in ("preference", "ranking")],
        "rating_questions": [q for q in questions if q.kind == "rating"],
        "exports": exports,
        "active": any(e.status in ("queued", "running") for e in exports),
    }


@router.get("/projects/{project_id}/export")
def export_page(request: Request, project_id: uuid.UUID, admin: PageAdmin, session: DbSession) -> Response:
    project = projects_service.get_project_for_admin(session, project_id, admin)
    values = _form_values(request.query_params)
    return render(request, "exports/export.html", _page_context(session, project, values, None))


@router.get("/projects/{project_id}/export/preview")
def funnel_preview(request: Request, project_id: uuid.UUID, admin: PageAdmin, session: DbSession) -> Response:
    project = projects_service.get_project_for_admin(session, project_id, admin)
    options, error = _options(_form_values(request.query_params))
    preview: ExportPreview | None = None
    if options is not None:
        try:
            preview = service.preview_export(service.plan_export(session, project, options))
        except AppError as problem:
            error = problem.message
    # A 200 even for bad options: htmx swaps only successful answers, and the message belongs in the panel.
    return render(request, "exports/_funnel.html", {"error": error, "preview": preview})


@router.post("/projects/{project_id}/export")
async def create_snapshot(
    request: Request, project_id: uuid.UUID, admin: PageAdmin, session: DbSession
) -> Response:
    project = projects_service.get_project_for_admin(session, project_id, admin)
    values = _form_values(await request.form())
    options, error = _options(values)
    if options is not None:
        try:
            service.create_export(session, project, options, admin)
            return redirect(request, f"/projects/{project.id}/export#snapshots")
        except AppError as problem:
            error = problem.message
    context = _page_context(session, project, values, error)
    return render(request, "exports/export.html", context, status_code=422)


@router.get("/projects/{project_id}/export/snapshots")
def snapshot_list(request: Request, project_id: uuid.UUID, admin: PageAdmin, session: DbSession) -> Response:
    project = projects_service.get_project_for_admin(session, project_id, admin)
    exports = service.list_exports(session, project)
    active = any(e.status in ("queued", "running") for e in exports)
    return render(
        request, "exports/_snapshots.html", {"project": project, "exports": exports, "active": active}
    )


@router.get("/projects/{project_id}/exports/{export_id}/download")
def download_snapshot(
    project_id: uuid.UUID, export_id: uuid.UUID, admin: PageAdmin, session: DbSession
) -> FileResponse:
    export = service.get_export(session, export_id, admin)
    if export.project_id != project_id:
        raise service.ExportNotFound()
    path = service.download_path(export)
    return FileResponse(path, media_type="application/zip", filename=export.file_name or path.name)
