"""Liveness, readiness (database reachable, migrations at head) and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool

from app.db import database
from app.migrations_state import migration_status
from app.observability import metrics_registry

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz() -> Response:
    state = await run_in_threadpool(migration_status, database.engine)
    return JSONResponse(state, status_code=200 if state["ready"] else 503)


@router.get("/metrics")
async def metrics() -> Response:
    from app.annotation.metrics import refresh_queue_gauges

    await run_in_threadpool(refresh_queue_gauges)
    return Response(generate_latest(metrics_registry()), media_type=CONTENT_TYPE_LATEST)
