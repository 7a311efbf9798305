"""JSON routes of the items domain: streamed import, listing, gold answers."""

from __future__ import annotations

import json
import tempfile
import uuid
from collections.abc import Iterator
from typing import IO, Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from app.accounts.dependencies import CurrentUser, DbSession
from app.errors import ERROR_RESPONSES, PayloadTooLarge, Unprocessable
from app.items import service
from app.items.parsing import LineError, iter_jsonl_lines, sniff_format
from app.items.schemas import GoldUpdate, ImportReport, ItemList, ItemRead, LineErrorRead, ResponseRead
from app.projects import service as projects_service
from app.routing import TransactionalRoute

router = APIRouter(
    prefix="/api/v1", responses=ERROR_RESPONSES, route_class=TransactionalRoute, tags=["items"]
)

MAX_IMPORT_BYTES = 4 * 1024**3
MAX_JSON_ARRAY_BYTES = 256 * 1024**2
SPOOL_IN_MEMORY = 4 * 1024**2


async def spool_body(request: Request) -> IO[bytes]:
    """Copy the body to a temporary file as it arrives: a large import never sits in memory whole."""
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115 - closed by the caller
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_IMPORT_BYTES:
            spool.close()
            raise PayloadTooLarge(f"The import is over {MAX_IMPORT_BYTES} bytes; split the file.")
        spool.write(chunk)
    spool.seek(0)
    return spool


def numbered_lines(spool: IO[bytes], content_type: str) -> Iterator[tuple[int, Any] | LineError]:
    head = spool.read(64)
    spool.seek(0)
    is_array = "ndjson" not in content_type and "jsonl" not in content_type and sniff_format(head) == "json"
    if not is_array:
        yield from iter_jsonl_lines(iter(lambda: spool.read(1 << 16), b""))
        return
    data = spool.read(MAX_JSON_ARRAY_BYTES + 1)
    if len(data) > MAX_JSON_ARRAY_BYTES:
        raise PayloadTooLarge("JSON arrays are limited to 256 MiB; send large imports as JSON Lines.")
    try:
        records = json.loads(data)
    except ValueError as error:
        raise Unprocessable(f"The body is not valid JSON: {error}") from error
    if not isinstance(records, list):
        raise Unprocessable("The body must be a JSON array of items, or JSON Lines.")
    yield from enumerate(records, start=1)


def parse_pairs(value: str) -> Literal["none", "all"] | int:
    if value in ("none", "all"):
        return value  # type: ignore[return-value]
    if value.isdigit() and 1 <= int(value) <= 100:
        return int(value)
    raise Unprocessable('pairs must be "none", "all" or a number of pairs per prompt from 1 to 100.')


@router.post(
    "/projects/{project_id}/items",
    response_model=ImportReport,
    status_code=201,
    openapi_extra={
        "requestBody": {
            "content": {
                "application/json": {"schema": {"type": "array", "items": {"type": "object"}}},
                "application/x-ndjson": {"schema": {"type": "string"}},
            },
            "required": True,
        }
    },
)
async def import_items(
    project_id: uuid.UUID,
    request: Request,
    user: CurrentUser,
    session: DbSession,
    pairs: Annotated[
        str, Query(max_length=8, description='"none", "all", or N random pairs per prompt')
    ] = "none",
    seed: Annotated[int, Query(ge=0, le=2**31)] = 0,
    on_error: Literal["reject", "skip"] = "reject",
    purpose: Literal["live", "training"] = "live",
    dry_run: bool = False,
) -> ImportReport:
    """Import items from a JSON array or JSON Lines (Content-Type: application/x-ndjson)."""
    project = await run_in_threadpool(projects_service.get_project_for_admin, session, project_id, user)
    options = service.import_options(project, parse_pairs(pairs), seed)
    spool = await spool_body(request)
    try:
        tally = await run_in_threadpool(
            lambda: service.import_items(
                session,
                project,
                numbered_lines(spool, request.headers.get("content-type", "")),
                user,
                options=options,
                skip_bad_lines=on_error == "skip",
                purpose=purpose,
                dry_run=dry_run,
            )
        )
    finally:
        spool.close()
    return ImportReport(
        created=tally.created,
        duplicates=tally.duplicates,
        errors=[LineErrorRead(line=e.line, error=e.error) for e in tally.errors],
        errors_total=tally.errors_total,
        dry_run=dry_run,
    )


@router.get("/projects/{project_id}/items", response_model=ItemList)
def list_items(
    project_id: uuid.UUID,
    user: CurrentUser,
    session: DbSession,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
    purpose: Literal["live", "gold", "training"] | None = None,
) -> ItemList:
    project = projects_service.get_project_for_admin(session, project_id, user)
    rows, total = service.list_items(session, project.id, limit=limit, offset=offset, purpose=purpose)
    items = [
        ItemRead.model_validate(item).model_copy(
            update={"responses": [ResponseRead.model_validate(r) for r in responses]}
        )
        for item, responses in rows
    ]
    return ItemList(items=items, total=total, limit=limit, offset=offset)


@router.put("/projects/{project_id}/items/{item_id}/gold", response_model=ItemRead)
def set_gold(
    project_id: uuid.UUID, item_id: uuid.UUID, body: GoldUpdate, user: CurrentUser, session: DbSession
) -> ItemRead:
    project = projects_service.get_project_for_admin(session, project_id, user)
    item = service.get_item(session, project.id, item_id)
    service.set_gold(session, project, item, body.answers, body.explanation, user, body.purpose)
    return ItemRead.model_validate(item)
