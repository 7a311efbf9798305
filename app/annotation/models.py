"""Tables of the annotation domain: leases on items, submitted annotations and their corrections."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, Timestamps, TZDateTime, UUIDPrimaryKey

ASSIGNMENT_STATUSES = ("leased", "submitted", "skipped", "expired")


class Assignment(UUIDPrimaryKey, Timestamps, Base):
    """A lease of one item to one rater; its display order is decided here, server-side."""

    __tablename__ = "assignments"
    __table_args__ = (
        # Nobody gets an item twice (training retries are new attempts).
        sa.UniqueConstraint("item_id", "user_id", "attempt"),
        sa.CheckConstraint("status IN ('leased', 'submitted', 'skipped', 'expired')", name="status"),
        sa.Index("ix_assignments_user_open", "user_id", "project_id", "status"),
        sa.Index(
            "ix_assignments_leases",
            "project_id",
            "expires_at",
            postgresql_where=sa.text("status = 'leased'"),
            sqlite_where=sa.text("status = 'leased'"),
        ),
    )

    project_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("projects.id", ondelete="CASCADE"))
    item_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("items.id", ondelete="CASCADE"))
    user_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    attempt: Mapped[int] = mapped_column(sa.Integer, default=0)
    purpose: Mapped[str] = mapped_column(sa.String(16), default="live")
    status: Mapped[str] = mapped_column(sa.String(16), default="leased")
    display_order: Mapped[list[Any]] = mapped_column(default=list)
    expires_at: Mapped[datetime] = mapped_column(TZDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(TZDateTime)
    skip_reason: Mapped[str | None] = mapped_column(sa.String(500))


class Annotation(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "annotations"
    __table_args__ = (
        sa.UniqueConstraint("user_id", "idempotency_key"),
        sa.Index("ix_annotations_project_purpose", "project_id", "purpose", "item_id"),
        sa.Index("ix_annotations_user_created", "user_id", "created_at"),
        sa.Index("ix_annotations_item", "item_id"),
    )

    assignment_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("assignments.id", ondelete="CASCADE"), unique=True
    )
    project_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("projects.id", ondelete="CASCADE"))
    item_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("items.id", ondelete="CASCADE"))
    user_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    purpose: Mapped[str] = mapped_column(sa.String(16), default="live")
    answers: Mapped[dict[str, Any]] = mapped_column(default=dict)
    rationale: Mapped[str | None] = mapped_column(sa.Text)
    flags: Mapped[list[Any]] = mapped_column(default=list)
    time_spent_ms: Mapped[int | None] = mapped_column(sa.Integer)
    display_order: Mapped[list[Any]] = mapped_column(default=list)
    guidelines_version: Mapped[int] = mapped_column(sa.Integer, default=1)
    idempotency_key: Mapped[str | None] = mapped_column(sa.String(200))
    request_hash: Mapped[str | None] = mapped_column(sa.String(64))
    # For gold and training items: {"matched": n, "graded": n, "details": [...]}.
    gold_result: Mapped[dict[str, Any] | None] = mapped_column()
    revision: Mapped[int] = mapped_column(sa.Integer, default=1)
    updated_at: Mapped[datetime | None] = mapped_column(TZDateTime)


class AnnotationRevision(UUIDPrimaryKey, Timestamps, Base):
    """The earlier content of an annotation a rater corrected: corrections keep history."""

    __tablename__ = "annotation_revisions"
    __table_args__ = (sa.UniqueConstraint("annotation_id", "revision"),)

    annotation_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("annotations.id", ondelete="CASCADE"))
    revision: Mapped[int] = mapped_column(sa.Integer)
    answers: Mapped[dict[str, Any]] = mapped_column(default=dict)
    rationale: Mapped[str | None] = mapped_column(sa.Text)
    flags: Mapped[list[Any]] = mapped_column(default=list)
