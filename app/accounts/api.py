"""JSON routes of the accounts domain: tokens, the caller, and user management by admins."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request, status

from app.accounts import service
from app.accounts.dependencies import CurrentAdmin, CurrentUser, DbSession
from app.accounts.schemas import (
    AccessToken,
    PasswordReset,
    TokenCreate,
    TokenCreated,
    TokenRead,
    UserCreate,
    UserList,
    UserRead,
    UserUpdate,
)
from app.errors import ERROR_RESPONSES
from app.routing import TransactionalRoute

router = APIRouter(
    prefix="/api/v1", responses=ERROR_RESPONSES, route_class=TransactionalRoute, tags=["accounts"]
)


@router.post("/auth/token", response_model=AccessToken)
def create_access_token(
    request: Request,
    session: DbSession,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=256)],
) -> AccessToken:
    """OAuth2 password flow: exchange a username and password for a bearer token."""
    address = request.client.host if request.client else None
    user = service.authenticate(session, username, password, address)
    token, raw = service.issue_login_token(session, user)
    return AccessToken(access_token=raw, expires_at=token.expires_at)


@router.get("/users/me", response_model=UserRead)
def read_me(user: CurrentUser) -> UserRead:
    return UserRead.model_validate(user)


@router.get("/users/me/tokens", response_model=list[TokenRead])
def list_my_tokens(user: CurrentUser, session: DbSession) -> list[TokenRead]:
    return [TokenRead.model_validate(t) for t in service.list_tokens(session, user)]


@router.post("/users/me/tokens", response_model=TokenCreated, status_code=status.HTTP_201_CREATED)
def create_my_token(body: TokenCreate, user: CurrentUser, session: DbSession) -> TokenCreated:
    from datetime import timedelta

    expires = timedelta(days=body.expires_in_days) if body.expires_in_days else None
    token, raw = service.issue_token(session, user, body.name, expires_in=expires)
    return TokenCreated(token=raw, **TokenRead.model_validate(token).model_dump())


@router.delete("/users/me/tokens/{token_id}", status_code=status.HTTP_204_NO_CONTENT)
def revoke_my_token(token_id: uuid.UUID, user: CurrentUser, session: DbSession) -> None:
    service.revoke_token(session, user, token_id)


@router.post("/users", response_model=UserRead, status_code=status.HTTP_201_CREATED)
def create_user(body: UserCreate, admin: CurrentAdmin, session: DbSession) -> UserRead:
    user = service.create_user(session, body.username, body.password, body.role, actor=admin)
    return UserRead.model_validate(user)


@router.get("/users", response_model=UserList)
def list_users(
    admin: CurrentAdmin,
    session: DbSession,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> UserList:
    users, total = service.list_users(session, limit=limit, offset=offset)
    return UserList(items=[UserRead.model_validate(u) for u in users], total=total)


@router.patch("/users/{user_id}", response_model=UserRead)
def update_user(user_id: uuid.UUID, body: UserUpdate, admin: CurrentAdmin, session: DbSession) -> UserRead:
    user = service.get_user(session, user_id)
    service.update_user(session, user, actor=admin, **body.model_dump(exclude_unset=True))
    return UserRead.model_validate(user)


@router.post("/users/{user_id}/deactivate", response_model=UserRead)
def deactivate_user(user_id: uuid.UUID, admin: CurrentAdmin, session: DbSession) -> UserRead:
    user = service.get_user(session, user_id)
    service.update_user(session, user, actor=admin, is_active=False)
    return UserRead.model_validate(user)


@router.post("/users/{user_id}/password", status_code=status.HTTP_204_NO_CONTENT)
def reset_password(user_id: uuid.UUID, body: PasswordReset, admin: CurrentAdmin, session: DbSession) -> None:
    service.reset_password(session, service.get_user(session, user_id), body.password, actor=admin)
