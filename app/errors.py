"""AppError and its status-coded kinds, and the one renderer: JSON under /api, an HTML page elsewhere."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from sqlalchemy.exc import DataError, DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

logger = logging.getLogger("prefhub.errors")


class AppError(Exception):
    status_code = 400
    code = "bad_request"
    message = "The request could not be processed."

    def __init__(
        self, message: str | None = None, *, details: Any = None, headers: dict[str, str] | None = None
    ):
        super().__init__(message or self.message)
        self.message = message or self.message
        self.details = details
        self.headers = headers


class BadRequest(AppError):
    pass


class NotAuthenticated(AppError):
    status_code = 401
    code = "not_authenticated"
    message = "Log in or send a valid bearer token."


class Forbidden(AppError):
    status_code = 403
    code = "forbidden"
    message = "You are not allowed to do this."


class NotFound(AppError):
    status_code = 404
    code = "not_found"
    message = "Not found."


class Conflict(AppError):
    status_code = 409
    code = "conflict"
    message = "The request conflicts with the current state."


class PayloadTooLarge(AppError):
    status_code = 413
    code = "payload_too_large"
    message = "The request body is too large."


class Unprocessable(AppError):
    status_code = 422
    code = "invalid_input"
    message = "The input is not valid."


class TooManyRequests(AppError):
    status_code = 429
    code = "too_many_requests"
    message = "Too many attempts; try again later."


class ServiceUnavailable(AppError):
    status_code = 503
    code = "service_unavailable"
    message = "The database is unavailable; try again shortly."


class ErrorResponse(BaseModel):
    """Every API error: a sentence for people, a stable code for programs, and per-field details when useful."""

    detail: str
    code: str
    errors: list[Any] | None = None


# Declared on every API router, so the OpenAPI schema describes the errors the API really answers with.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": description}
    for status, description in (
        (400, "Bad request"),
        (401, "Not authenticated"),
        (403, "Not allowed"),
        (404, "Not found"),
        (409, "Conflict with the current state"),
        (413, "Request body too large"),
        (422, "Invalid input"),
        (429, "Too many attempts"),
        (503, "Database unavailable"),
    )
}


def wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/") or request.url.path in ("/healthz", "/readyz", "/metrics")


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    body: dict[str, Any] = {"detail": message, "code": code}
    if details is not None:
        body["errors"] = details
    return body


def render_error(
    request: Request,
    status: int,
    code: str,
    message: str,
    details: Any = None,
    headers: dict[str, str] | None = None,
) -> Response:
    if wants_json(request):
        return JSONResponse(error_body(code, message, details), status_code=status, headers=headers)
    from app.templating import render_error_page

    return render_error_page(request, status, message, details, headers=headers)


def _validation_details(exc: RequestValidationError) -> list[dict[str, Any]]:
    details = []
    for error in exc.errors():
        location = ".".join(str(part) for part in error.get("loc", ()))
        details.append(
            {
                "loc": list(error.get("loc", ())),
                "field": location,
                "msg": error.get("msg", ""),
                "type": error.get("type", ""),
            }
        )
    return details


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def _app_error(request: Request, exc: AppError) -> Response:
        return render_error(request, exc.status_code, exc.code, exc.message, exc.details, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        details = _validation_details(exc)
        summary = "; ".join(f"{d['field']}: {d['msg']}" for d in details[:5])
        return render_error(request, 422, "invalid_input", f"Invalid input: {summary}", details)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        message = str(exc.detail)
        if not wants_json(request):
            from app.accounts.dependencies import recognise_page_user
            from app.i18n import gettext

            if getattr(request.state, "user", None) is None:
                # No route ran, so nobody looked up the logged-in user the page's navigation shows.
                await run_in_threadpool(recognise_page_user, request)
            if exc.status_code == 404 and message == "Not Found":
                message = gettext("There is no page at this address.")
        return render_error(
            request,
            exc.status_code,
            code,
            message,
            headers=dict(exc.headers) if exc.headers else None,
        )

    def unavailable(request: Request) -> Response:
        return render_error(
            request, 503, "service_unavailable", ServiceUnavailable.message, headers={"Retry-After": "2"}
        )

    # Down, or (PoolTimeout) every pooled connection busy for the pool's whole timeout: come back shortly.
    @app.exception_handler(OperationalError)
    @app.exception_handler(PoolTimeout)
    async def _database_down(request: Request, exc: Exception) -> Response:
        logger.warning("database unavailable: %s", exc.__class__.__name__)
        return unavailable(request)

    @app.exception_handler(DataError)
    async def _unstorable_value(request: Request, exc: DataError) -> Response:
        # Input the schemas let through but the database refuses (a NUL character, an out-of-range number).
        logger.warning("database refused a value: %s", exc.orig.__class__.__name__ if exc.orig else "")
        return render_error(
            request,
            422,
            "invalid_input",
            "The input holds a character or value that cannot be stored (for example a NUL character).",
        )

    @app.exception_handler(DBAPIError)
    async def _database_error(request: Request, exc: DBAPIError) -> Response:
        if exc.connection_invalidated:
            return unavailable(request)
        logger.exception("database error")
        return render_error(request, 500, "internal_error", "Internal error.")

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> Response:
        # Never echo the exception to the client: it may hold data or internals.
        logger.exception("unhandled error")
        return render_error(request, 500, "internal_error", "Internal error.")
