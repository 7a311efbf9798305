"""Tables of the training domain: qualification attempts and the history of rater exclusions."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, Timestamps, TZDateTime, UUIDPrimaryKey


class QualificationAttempt(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "qualification_attempts"
    __table_args__ = (sa.UniqueConstraint("project_id", "user_id", "attempt"),)

    project_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("projects.id", ondelete="CASCADE"))
    user_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    attempt: Mapped[int] = mapped_column(sa.Integer)
    n_answered: Mapped[int] = mapped_column(sa.Integer, default=0)
    n_matched: Mapped[int] = mapped_column(sa.Integer, default=0)
    n_graded: Mapped[int] = mapped_column(sa.Integer, default=0)
    passed: Mapped[bool | None] = mapped_column(sa.Boolean)
    finished_at: Mapped[datetime | None] = mapped_column(TZDateTime)


class RaterExclusion(UUIDPrimaryKey, Timestamps, Base):
    """An admin's decision to leave a rater out of agreement and exports, or to take them back."""

    __tablename__ = "rater_exclusions"
    __table_args__ = (sa.CheckConstraint("action IN ('exclude', 'include')", name="action"),)

    project_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("projects.id", ondelete="CASCADE"))
    user_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    action: Mapped[str] = mapped_column(sa.String(16))
    reason: Mapped[str | None] = mapped_column(sa.String(500))
    decided_by_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
