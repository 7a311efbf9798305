"""Rules of the accounts domain: users, logins with throttling, API tokens."""

from __future__ import annotations

import functools
import uuid
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.accounts import exceptions
from app.accounts.models import ApiToken, LoginFailure, User
from app.accounts.schemas import MIN_PASSWORD_LENGTH
from app.accounts.security import hash_password, hash_token, new_token, verify_password
from app.audit import service as audit
from app.config import get_settings
from app.db import utcnow

LOGIN_TOKEN_DAYS = 30


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise exceptions.WeakPassword(f"Passwords need at least {MIN_PASSWORD_LENGTH} characters.")


def create_user(
    session: Session, username: str, password: str, role: str = "annotator", *, actor: User | None = None
) -> User:
    _check_password(password)
    if session.scalar(sa.select(User.id).where(sa.func.lower(User.username) == username.lower())):
        raise exceptions.UsernameTaken()
    user = User(username=username, password_hash=hash_password(password), role=role, is_active=True)
    session.add(user)
    session.flush()
    audit.record(
        session,
        actor.id if actor else None,
        "user.create",
        "user",
        user.id,
        after={"username": username, "role": role},
    )
    return user


def get_user(session: Session, user_id: uuid.UUID) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise exceptions.UserNotFound()
    return user


def find_user(session: Session, username: str) -> User:
    user = session.scalar(sa.select(User).where(User.username == username))
    if user is None:
        raise exceptions.UserNotFound(f"No user named {username!r}.")
    return user


def list_users(session: Session, *, limit: int = 100, offset: int = 0) -> tuple[list[User], int]:
    total = session.scalar(sa.select(sa.func.count(User.id))) or 0
    users = session.scalars(sa.select(User).order_by(User.username).limit(limit).offset(offset)).all()
    return list(users), total


def update_user(
    session: Session,
    user: User,
    *,
    actor: User,
    role: str | None = None,
    is_active: bool | None = None,
    locale: str | None = None,
) -> User:
    before = {"role": user.role, "is_active": user.is_active}
    if role is not None:
        user.role = role
    if is_active is not None and is_active != user.is_active:
        user.is_active = is_active
        if not is_active:
            _cut_access(session, user)
    if locale is not None:
        user.locale = locale
    after = {"role": user.role, "is_active": user.is_active}
    if before != after:
        audit.record(session, actor.id, "user.update", "user", user.id, before=before, after=after)
    return user


def set_locale(session: Session, user: User, locale: str) -> None:
    user.locale = locale


def reset_password(session: Session, user: User, password: str, *, actor: User) -> None:
    _check_password(password)
    user.password_hash = hash_password(password)
    _cut_access(session, user)
    audit.record(session, actor.id, "user.reset_password", "user", user.id)


def _cut_access(session: Session, user: User) -> None:
    """End every session and token of the user at once."""
    user.session_epoch += 1
    session.execute(
        sa.update(ApiToken)
        .where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )


def authenticate(session: Session, username: str, password: str, address: str | None) -> User:
    """Check a login; throttled per account and per address, one answer for unknown user and bad password."""
    if "\x00" in username or "\x00" in password:
        # No stored name or password holds NUL; refusing here keeps it out of the throttling table too.
        raise exceptions.InvalidCredentials()
    settings = get_settings()
    keys = [f"user:{username.lower()}"] + ([f"addr:{address}"] if address else [])
    _enforce_throttle(
        session,
        keys,
        settings.login_window_s,
        [settings.login_attempts_per_account, settings.login_attempts_per_address],
    )
    user = session.scalar(sa.select(User).where(User.username == username))
    ok = verify_password(user.password_hash if user else None, password)
    if not ok or user is None or not user.is_active:
        for key in keys:
            session.add(LoginFailure(key=key))
        # The failure must be recorded even though the request fails.
        session.commit()
        raise exceptions.InvalidCredentials()
    session.execute(sa.delete(LoginFailure).where(LoginFailure.key == keys[0]))
    user.last_login_at = utcnow()
    return user


def _enforce_throttle(session: Session, keys: list[str], window_s: int, limits: list[int]) -> None:
    since = utcnow() - timedelta(seconds=window_s)
    for key, limit in zip(keys, limits, strict=False):
        failures = session.execute(
            sa.select(sa.func.count(LoginFailure.id), sa.func.min(LoginFailure.created_at)).where(
                LoginFailure.key == key, LoginFailure.created_at > since
            )
        ).one()
        if failures[0] >= limit:
            oldest = failures[1]
            retry_after = max(1, int((oldest + timedelta(seconds=window_s) - utcnow()).total_seconds()))
            raise exceptions.LoginThrottled(headers={"Retry-After": str(retry_after)})


def issue_token(
    session: Session, user: User, name: str, *, expires_in: timedelta | None = None
) -> tuple[ApiToken, str]:
    """A token the user asked for by name; the audit log keeps its name and prefix, never the secret."""
    token, raw = _new_token(session, user, name, expires_in)
    audit.record(
        session,
        user.id,
        "token.create",
        "user",
        user.id,
        after={"name": name, "prefix": token.prefix, "expires_at": token.expires_at},
    )
    return token, raw


def _new_token(session: Session, user: User, name: str, expires_in: timedelta | None) -> tuple[ApiToken, str]:
    raw = new_token()
    token = ApiToken(
        user_id=user.id,
        name=name,
        token_hash=hash_token(raw),
        prefix=raw[:10],
        expires_at=utcnow() + expires_in if expires_in else None,
    )
    session.add(token)
    session.flush()
    return token, raw


def issue_login_token(session: Session, user: User) -> tuple[ApiToken, str]:
    # Every login makes one: logins are not admin actions, so the audit log leaves them out.
    return _new_token(session, user, "login", timedelta(days=LOGIN_TOKEN_DAYS))


def user_for_token(session: Session, raw: str) -> User | None:
    row = session.execute(_user_for_token_statement(), {"token_hash": hash_token(raw)}).first()
    if row is None:
        return None
    user, expires_at = row
    return user if usable_token(user, expires_at) else None


def usable_token(user: User, expires_at: datetime | None) -> bool:
    """Whether a found, unrevoked token still lets its user in; other domains' lookups that join the token
    (see the annotation repository) check it here too."""
    return user.is_active and (expires_at is None or expires_at >= utcnow())


@functools.cache
def _user_for_token_statement() -> sa.Select[User, datetime | None]:
    # Every API call runs this: built once, so SQLAlchemy skips building it again (see the annotation repository).
    return (
        sa.select(User, ApiToken.expires_at)
        .join(ApiToken, ApiToken.user_id == User.id)
        .where(ApiToken.token_hash == sa.bindparam("token_hash"), ApiToken.revoked_at.is_(None))
    )


def list_tokens(session: Session, user: User) -> list[ApiToken]:
    rows = session.scalars(
        sa.select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.created_at.desc())
    )
    return list(rows)


def revoke_token(session: Session, user: User, token_id: uuid.UUID) -> None:
    token = session.get(ApiToken, token_id)
    if token is None or token.user_id != user.id:
        raise exceptions.TokenNotFound()
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        audit.record(
            session,
            user.id,
            "token.revoke",
            "user",
            user.id,
            before={"name": token.name, "prefix": token.prefix},
        )
