"""Tables of the projects domain: projects, memberships and versioned guidelines."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, Timestamps, TZDateTime, UUIDPrimaryKey, utcnow

PROJECT_STATUSES = ("draft", "active", "paused", "archived")


class Project(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "projects"
    __table_args__ = (
        sa.CheckConstraint("status IN ('draft', 'active', 'paused', 'archived')", name="status"),
        sa.CheckConstraint("annotations_per_item BETWEEN 1 AND 50", name="annotations_per_item"),
    )

    name: Mapped[str] = mapped_column(sa.String(200))
    slug: Mapped[str] = mapped_column(sa.String(80), unique=True)
    description: Mapped[str] = mapped_column(sa.Text, default="")
    guidelines: Mapped[str] = mapped_column(sa.Text, default="")
    guidelines_version: Mapped[int] = mapped_column(sa.Integer, default=1)
    questions: Mapped[list[Any]] = mapped_column(default=list)
    annotations_per_item: Mapped[int] = mapped_column(sa.Integer, default=3)
    status: Mapped[str] = mapped_column(sa.String(16), default="active")
    lease_minutes: Mapped[int] = mapped_column(sa.Integer, default=30)
    # Rater training and quality control.
    require_qualification: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    qualification_threshold: Mapped[float] = mapped_column(sa.Float, default=0.8)
    qualification_cooldown_minutes: Mapped[int] = mapped_column(sa.Integer, default=60)
    gold_rate: Mapped[float] = mapped_column(sa.Float, default=0.05)
    gold_min_answers: Mapped[int] = mapped_column(sa.Integer, default=10)
    gold_pause_threshold: Mapped[float] = mapped_column(sa.Float, default=0.7)
    min_seconds_per_item: Mapped[float] = mapped_column(sa.Float, default=4.0)
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    updated_at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow, onupdate=utcnow)


class ProjectMembership(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "project_memberships"
    __table_args__ = (
        sa.UniqueConstraint("project_id", "user_id"),
        sa.CheckConstraint("status IN ('active', 'paused')", name="status"),
    )

    project_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("projects.id", ondelete="CASCADE"))
    user_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # "paused" when live gold accuracy falls below the project's threshold.
    status: Mapped[str] = mapped_column(sa.String(16), default="active")
    paused_reason: Mapped[str | None] = mapped_column(sa.String(300))
    qualified_at: Mapped[datetime | None] = mapped_column(TZDateTime)
    qualification_attempt: Mapped[int] = mapped_column(sa.Integer, default=0)
    excluded_at: Mapped[datetime | None] = mapped_column(TZDateTime)
    excluded_by_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    exclusion_reason: Mapped[str | None] = mapped_column(sa.String(500))
    last_seen_guidelines_version: Mapped[int] = mapped_column(sa.Integer, default=0)


class GuidelineVersion(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "guideline_versions"
    __table_args__ = (sa.UniqueConstraint("project_id", "version"),)

    project_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("projects.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(sa.Integer)
    body: Mapped[str] = mapped_column(sa.Text)
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
