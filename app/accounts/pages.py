"""HTML routes of the accounts domain: login, logout, language, and user management for admins."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response

from app.accounts import exceptions, service
from app.accounts.dependencies import DbSession, OptionalPageUser, PageAdmin, PageUser, log_in, verify_csrf
from app.errors import AppError
from app.i18n import LOCALES
from app.routing import TransactionalRoute
from app.templating import redirect, render

router = APIRouter(
    route_class=TransactionalRoute, include_in_schema=False, dependencies=[Depends(verify_csrf)]
)


def _safe_next(target: str | None) -> str:
    # Only same-site paths: never an open redirect.
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


@router.get("/login")
def login_page(request: Request, user: OptionalPageUser, next: str | None = None) -> Response:
    if user is not None:
        return redirect(request, _safe_next(next))
    return render(request, "accounts/login.html", {"next": _safe_next(next), "error": None})


@router.post("/login")
def login_submit(
    request: Request,
    session: DbSession,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=256)],
    next: Annotated[str, Form(max_length=500)] = "/",
) -> Response:
    address = request.client.host if request.client else None
    try:
        user = service.authenticate(session, username, password, address)
    except (exceptions.InvalidCredentials, exceptions.LoginThrottled) as error:
        return render(
            request,
            "accounts/login.html",
            {"next": _safe_next(next), "error": error.message, "username": username},
            status_code=error.status_code,
            headers=error.headers,
        )
    log_in(request, user)
    if user.locale:
        request.session["locale"] = user.locale
    return redirect(request, _safe_next(next))


@router.post("/logout")
def logout(request: Request) -> Response:
    request.session.clear()
    return redirect(request, "/login")


@router.post("/language")
def choose_language(
    request: Request,
    session: DbSession,
    user: OptionalPageUser,
    locale: Annotated[str, Form(max_length=8)],
    next: Annotated[str, Form(max_length=500)] = "/",
) -> Response:
    if locale in LOCALES:
        request.session["locale"] = locale
        if user is not None:
            service.set_locale(session, user, locale)
    return redirect(request, _safe_next(next))


@router.get("/admin/users")
def users_page(request: Request, admin: PageAdmin, session: DbSession) -> Response:
    users, total = service.list_users(session, limit=500)
    return render(request, "accounts/users.html", {"users": users, "total": total, "error": None})


@router.post("/admin/users")
def create_user_submit(
    request: Request,
    admin: PageAdmin,
    session: DbSession,
    username: Annotated[str, Form(min_length=2, max_length=64, pattern=r"^[A-Za-z0-9_.@-]+$")],
    password: Annotated[str, Form(max_length=256)],
    role: Annotated[str, Form(pattern="^(admin|annotator)$")] = "annotator",
) -> Response:
    try:
        service.create_user(session, username, password, role, actor=admin)
    except AppError as error:
        users, total = service.list_users(session, limit=500)
        return render(
            request,
            "accounts/users.html",
            {"users": users, "total": total, "error": error.message},
            status_code=error.status_code,
        )
    return redirect(request, "/admin/users")


@router.post("/admin/users/{user_id}")
def update_user_submit(
    request: Request,
    user_id: uuid.UUID,
    admin: PageAdmin,
    session: DbSession,
    action: Annotated[str, Form(pattern="^(deactivate|activate|make_admin|make_annotator)$")],
) -> Response:
    user = service.get_user(session, user_id)
    changes = {
        "deactivate": {"is_active": False},
        "activate": {"is_active": True},
        "make_admin": {"role": "admin"},
        "make_annotator": {"role": "annotator"},
    }[action]
    service.update_user(session, user, actor=admin, **changes)  # type: ignore[arg-type]
    return redirect(request, "/admin/users")


@router.get("/account")
def account_page(request: Request, user: PageUser, session: DbSession) -> Response:
    return render(
        request, "accounts/account.html", {"tokens": service.list_tokens(session, user), "new_token": None}
    )


@router.post("/account/tokens")
def create_token_submit(
    request: Request,
    user: PageUser,
    session: DbSession,
    name: Annotated[str, Form(min_length=1, max_length=100)],
) -> Response:
    _, raw = service.issue_token(session, user, name)
    return render(
        request, "accounts/account.html", {"tokens": service.list_tokens(session, user), "new_token": raw}
    )


@router.post("/account/tokens/{token_id}/revoke")
def revoke_token_submit(
    request: Request, token_id: uuid.UUID, user: PageUser, session: DbSession
) -> Response:
    service.revoke_token(session, user, token_id)
    return redirect(request, "/account")
