"""Tables of the accounts domain: users, their API tokens and failed logins."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, Timestamps, TZDateTime, UUIDPrimaryKey

USER_ROLES = ("admin", "annotator")


class User(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "users"
    __table_args__ = (sa.CheckConstraint("role IN ('admin', 'annotator')", name="role"),)

    username: Mapped[str] = mapped_column(sa.String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    role: Mapped[str] = mapped_column(sa.String(16), default="annotator")
    is_active: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    locale: Mapped[str | None] = mapped_column(sa.String(16))
    # Bumped on password reset or deactivation; sessions carry it, so old cookies stop working.
    session_epoch: Mapped[int] = mapped_column(sa.Integer, default=0)
    last_login_at: Mapped[datetime | None] = mapped_column(TZDateTime)

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


class ApiToken(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "api_tokens"

    user_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    prefix: Mapped[str] = mapped_column(sa.String(16))
    expires_at: Mapped[datetime | None] = mapped_column(TZDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(TZDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(TZDateTime)


class LoginFailure(UUIDPrimaryKey, Timestamps, Base):
    """One failed login, counted per account and per address within a window (shared by all workers)."""

    __tablename__ = "login_failures"
    __table_args__ = (sa.Index(None, "key", "created_at"),)

    key: Mapped[str] = mapped_column(sa.String(200))
