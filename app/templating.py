"""Jinja2 environment, render helpers, htmx helpers and the one safe-Markdown filter."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from app.config import PROJECT_ROOT
from app.i18n import LOCALE_NAMES, get_locale, gettext
from app.markdown import render_markdown, render_plain

TEMPLATE_DIR = PROJECT_ROOT / "templates"

env = Environment(
    loader=FileSystemLoader(str(TEMPLATE_DIR)),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
env.filters["markdown"] = render_markdown
env.filters["plain"] = render_plain
env.globals["_"] = gettext
env.globals["locale_names"] = LOCALE_NAMES


def _datetime(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else "—"


def _tojson_attr(value: Any) -> Markup:
    """JSON for an HTML attribute: autoescaping turns quotes and angle brackets into entities."""
    return Markup.escape(json.dumps(value, ensure_ascii=False))


env.filters["datetime"] = _datetime
env.filters["json_attr"] = _tojson_attr


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    from app.accounts.dependencies import csrf_token

    user = getattr(request.state, "user", None)
    page = {
        "request": request,
        "user": user,
        "csrf_token": csrf_token(request) if "session" in request.scope else "",
        "locale": get_locale(),
        "htmx": is_htmx(request),
    }
    page.update(context or {})
    html = env.get_template(template).render(page)
    return HTMLResponse(html, status_code=status_code, headers=headers)


def redirect(request: Request, url: str) -> Response:
    """After a successful POST: 303 for plain forms, HX-Redirect for htmx."""
    if is_htmx(request):
        return Response(status_code=204, headers={"HX-Redirect": url})
    return Response(status_code=303, headers={"Location": url})


def render_error_page(
    request: Request, status: int, message: str, details: Any = None, headers: dict[str, str] | None = None
) -> Response:
    if status == 401:
        return redirect(request, f"/login?next={request.url.path}")
    template = "_error.html" if is_htmx(request) else "error.html"
    return render(
        request,
        template,
        {"status": status, "message": message, "details": details},
        status_code=status,
        headers=headers,
    )
