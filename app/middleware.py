"""One pure-ASGI middleware for every request: request id, body limit, language, security headers, metrics, logs."""

from __future__ import annotations

import time
import uuid
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import render_error
from app.i18n import negotiate, set_locale
from app.observability import REQUEST_LATENCY, access_log, bind_request_id, reset_request_id

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; font-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
    "cross-origin-opener-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=()",
}
# Imports stream to disk, so they may be far larger than any other request.
IMPORT_BODY_LIMIT = 4 * 1024**3


class AppMiddleware:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int, hsts: bool) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.hsts = hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        request_id = _request_id(request.headers.get("x-request-id", ""))
        token = bind_request_id(request_id)
        started = time.perf_counter()
        status = 500
        user_locale = scope["session"].get("locale") if "session" in scope else None
        set_locale(negotiate(user_locale, request.headers.get("accept-language")))

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = MutableHeaders(scope=message)
                headers["x-request-id"] = request_id
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
                if self.hsts:
                    headers.setdefault("strict-transport-security", "max-age=31536000")
                if "text/html" in headers.get("content-type", "") or scope["path"].startswith("/api/"):
                    headers.setdefault("cache-control", "no-store")
            await send(message)

        try:
            too_large = self._too_large(request)
            if too_large is not None:
                await too_large(scope, receive, send_with_headers)
            else:
                await self.app(scope, receive, send_with_headers)
        finally:
            elapsed = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", "unmatched")
            REQUEST_LATENCY.labels(scope["method"], route, str(status)).observe(elapsed)
            if access_log.isEnabledFor(20):
                access_log.info(
                    "request",
                    extra={
                        "method": scope["method"],
                        "path": scope["path"],
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 2),
                    },
                )
            reset_request_id(token)

    def _too_large(self, request: Request) -> Any:
        declared = request.headers.get("content-length", "")
        limit = IMPORT_BODY_LIMIT if request.url.path.endswith("/items") else self.max_body_bytes
        if declared.isdigit() and int(declared) > limit:
            return render_error(
                request,
                413,
                "payload_too_large",
                f"The request body is {declared} bytes; the limit is {limit} bytes.",
            )
        return None


class PageSessions:
    """The signed-cookie session, for pages only: the API authenticates with bearer tokens, so its
    requests skip reading and re-signing the cookie."""

    def __init__(self, app: ASGIApp, *args: Any, **session_options: Any) -> None:
        self.app = app
        self.with_session = SessionMiddleware(app, *args, **session_options)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/api/"):
            await self.app(scope, receive, send)
        else:
            await self.with_session(scope, receive, send)


def _request_id(incoming: str) -> str:
    if 0 < len(incoming) <= 64 and incoming.isascii() and incoming.isprintable():
        return incoming
    return uuid.uuid4().hex
