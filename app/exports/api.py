"""JSON routes of the exports domain: the streamed dataset, snapshots, their status and their download."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status
from fastapi.responses import FileResponse, StreamingResponse

from app.accounts.dependencies import CurrentUser, DbSession
from app.errors import ERROR_RESPONSES
from app.exports import service
from app.exports.schemas import ExportList, ExportOptions, ExportPreview, ExportRead, StreamOptions
from app.projects import service as projects_service
from app.routing import TransactionalRoute

router = APIRouter(
    prefix="/api/v1", responses=ERROR_RESPONSES, route_class=TransactionalRoute, tags=["exports"]
)


@router.get("/projects/{project_id}/export", response_class=StreamingResponse)
def stream_export(
    project_id: uuid.UUID, options: Annotated[StreamOptions, Query()], user: CurrentUser, session: DbSession
) -> StreamingResponse:
    project = projects_service.get_project_for_admin(session, project_id, user)
    plan = service.plan_export(session, project, options, streamed=True)
    return StreamingResponse(
        service.stream_export(plan),
        media_type=service.stream_media_type(plan),
        headers={"Content-Disposition": f'attachment; filename="{service.stream_file_name(plan)}"'},
    )


@router.get("/projects/{project_id}/export/preview", response_model=ExportPreview)
def preview_export(
    project_id: uuid.UUID, options: Annotated[ExportOptions, Query()], user: CurrentUser, session: DbSession
) -> ExportPreview:
    """How many items and rows survive each cleaning filter with these options; nothing is written."""
    project = projects_service.get_project_for_admin(session, project_id, user)
    return service.preview_export(service.plan_export(session, project, options))


@router.post(
    "/projects/{project_id}/exports", response_model=ExportRead, status_code=status.HTTP_202_ACCEPTED
)
def create_export(
    project_id: uuid.UUID, body: ExportOptions, user: CurrentUser, session: DbSession
) -> ExportRead:
    project = projects_service.get_project_for_admin(session, project_id, user)
    return ExportRead.model_validate(service.create_export(session, project, body, user))


@router.get("/projects/{project_id}/exports", response_model=ExportList)
def list_exports(project_id: uuid.UUID, user: CurrentUser, session: DbSession) -> ExportList:
    project = projects_service.get_project_for_admin(session, project_id, user)
    exports = service.list_exports(session, project)
    return ExportList(items=[ExportRead.model_validate(e) for e in exports], total=len(exports))


@router.get("/exports/{export_id}", response_model=ExportRead)
def read_export(export_id: uuid.UUID, user: CurrentUser, session: DbSession) -> ExportRead:
    return ExportRead.model_validate(service.get_export(session, export_id, user))


@router.get("/exports/{export_id}/download", response_class=FileResponse)
def download_export(export_id: uuid.UUID, user: CurrentUser, session: DbSession) -> FileResponse:
    export = service.get_export(session, export_id, user)
    path = service.download_path(export)
    return FileResponse(path, media_type="application/zip", filename=export.file_name or path.name)
