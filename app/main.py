"""create_app(settings): routers, error handlers, middleware and /static. No business logic."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from app import health
from app.accounts import api as accounts_api
from app.accounts import pages as accounts_pages
from app.config import Settings, get_settings
from app.db import database
from app.errors import install_error_handlers
from app.middleware import AppMiddleware, PageSessions
from app.observability import configure_logging

STATIC_DIR = Path(__file__).resolve().parent / "static"


def _routers() -> list:
    from app.agreement import api as agreement_api
    from app.agreement import pages as agreement_pages
    from app.annotation import api as annotation_api
    from app.annotation import pages as annotation_pages
    from app.audit import api as audit_api
    from app.audit import pages as audit_pages
    from app.exports import api as exports_api
    from app.exports import pages as exports_pages
    from app.items import api as items_api
    from app.projects import api as projects_api
    from app.projects import pages as projects_pages
    from app.training import api as training_api
    from app.training import pages as training_pages

    # Routes match in this order: the raters' hot path first, so its requests skip every other route.
    return [
        annotation_api.router,
        health.router,
        accounts_api.router,
        projects_api.router,
        items_api.router,
        training_api.router,
        agreement_api.router,
        exports_api.router,
        audit_api.router,
        accounts_pages.router,
        projects_pages.router,
        annotation_pages.router,
        training_pages.router,
        agreement_pages.router,
        exports_pages.router,
        audit_pages.router,
    ]


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    from app.exports import jobs

    jobs.start_worker()
    try:
        yield
    finally:
        jobs.stop_worker()


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.log_level, settings.log_json)
    database.configure(settings.database_url, settings)
    app = FastAPI(
        title="PrefHub",
        version="0.1.0",
        docs_url="/api/docs",
        openapi_url="/api/openapi.json",
        redoc_url=None,
        lifespan=_lifespan,
    )
    install_error_handlers(app)
    for router in _routers():
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    _install_middleware(app, settings)
    return app


def _install_middleware(app: FastAPI, settings: Settings) -> None:
    secure = settings.cookie_secure if settings.cookie_secure is not None else settings.env == "production"
    # Added first, so it runs inside the session middleware and can read the user's language from the session.
    app.add_middleware(AppMiddleware, max_body_bytes=settings.max_body_bytes, hsts=secure)
    app.add_middleware(
        PageSessions,
        secret_key=settings.secret_key,
        session_cookie="prefhub_session",
        max_age=settings.session_max_age_s,
        same_site="lax",
        https_only=secure,
    )
