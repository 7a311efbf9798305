"""Who is calling: bearer tokens for the API, the signed cookie session for pages, and CSRF for page forms."""

from __future__ import annotations

import hmac
import uuid
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from app.accounts import service
from app.accounts.models import User
from app.accounts.security import new_csrf_token
from app.db import database
from app.errors import AppError, Forbidden, NotAuthenticated
from app.routing import SAFE_METHODS, get_session

DbSession = Annotated[Session, Depends(get_session)]


class LoginRequired(AppError):
    """Raised by page routes; the page error handler turns it into a redirect to the login page."""

    status_code = 401
    code = "login_required"
    message = "Please log in."


class CsrfFailed(Forbidden):
    code = "csrf_failed"
    message = "The form expired or came from another site; reload the page and try again."


BEARER_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def bearer_token(request: Request) -> str:
    """The request's bearer token, unchecked; 401 without one."""
    raw = _bearer(request)
    if raw is None:
        raise NotAuthenticated(headers=BEARER_CHALLENGE)
    return raw


def api_user(request: Request, session: DbSession) -> User:
    return authenticate_bearer(request, session)


def authenticate_bearer(request: Request, session: Session) -> User:
    """The user of the request's bearer token; 401 without a valid one."""
    raw = _bearer(request)
    user = service.user_for_token(session, raw) if raw else None
    if user is None:
        raise NotAuthenticated(headers=BEARER_CHALLENGE)
    request.state.user = user
    return user


def api_admin(user: Annotated[User, Depends(api_user)]) -> User:
    if not user.is_admin:
        raise Forbidden("Only admins can do this.")
    return user


def session_user_optional(request: Request, session: DbSession) -> User | None:
    data = request.session
    user_id, epoch = data.get("user_id"), data.get("epoch")
    if not user_id:
        return None
    try:
        user = session.get(User, uuid.UUID(user_id))
    except ValueError:
        user = None
    if user is None or not user.is_active or user.session_epoch != epoch:
        request.session.clear()
        return None
    request.state.user = user
    return user


def recognise_page_user(request: Request) -> None:
    """For a page no route matched: find the logged-in user, so the error page keeps its navigation.

    Runs in a worker thread. A database that cannot answer leaves the page without it, never an error.
    """
    if "session" not in request.scope or not request.session.get("user_id"):
        return
    try:
        # Closing the session detaches the user with the columns the page reads already loaded.
        with database.new_session() as session:
            session_user_optional(request, session)
    except SQLAlchemyError:
        request.state.user = None


def page_user(user: Annotated[User | None, Depends(session_user_optional)]) -> User:
    if user is None:
        raise LoginRequired()
    return user


def page_admin(user: Annotated[User, Depends(page_user)]) -> User:
    if not user.is_admin:
        raise Forbidden("Only admins can see this page.")
    return user


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not token:
        token = new_csrf_token()
        request.session["csrf"] = token
    return str(token)


async def verify_csrf(request: Request) -> None:
    """Every state-changing page request carries the session's token, as a header (htmx) or a form field."""
    if request.method in SAFE_METHODS:
        return
    expected = request.session.get("csrf")
    sent = request.headers.get("x-csrf-token")
    if not sent and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        value = form.get("csrf_token")
        sent = value if isinstance(value, str) else None
    if not expected or not sent or not hmac.compare_digest(str(expected), sent):
        raise CsrfFailed()


def log_in(request: Request, user: User) -> None:
    request.session.clear()
    request.session.update({"user_id": str(user.id), "epoch": user.session_epoch, "csrf": new_csrf_token()})


CurrentUser = Annotated[User, Depends(api_user)]
CurrentAdmin = Annotated[User, Depends(api_admin)]
PageUser = Annotated[User, Depends(page_user)]
PageAdmin = Annotated[User, Depends(page_admin)]
OptionalPageUser = Annotated[User | None, Depends(session_user_optional)]
