"""Tables of the items domain: prompts to judge and the model responses of each."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, JSONType, Timestamps, UUIDPrimaryKey

# live: the queue; gold: known answers mixed into the live queue; training: the qualification set.
ITEM_PURPOSES = ("live", "gold", "training")


# "The item is open", written exactly as the queue index's predicate: SQLite uses a partial index only for a
# query that repeats the predicate, and SQLAlchemy would write `not_(Item.is_complete)` as `is_complete = 0`.
OPEN_ITEM = sa.text("NOT items.is_complete")


class Item(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "items"
    __table_args__ = (
        sa.UniqueConstraint("project_id", "dedup_key"),
        sa.UniqueConstraint("project_id", "external_id"),
        sa.CheckConstraint("purpose IN ('live', 'gold', 'training')", name="purpose"),
        # The assignment engine walks this index: open items of a project, fullest first, random within.
        sa.Index(
            "ix_items_queue",
            "project_id",
            "purpose",
            "annotation_count",
            "random_key",
            postgresql_where=sa.text("NOT is_complete"),
            sqlite_where=sa.text("NOT is_complete"),
        ),
        sa.Index("ix_items_project_seq", "project_id", "seq"),
    )

    project_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("projects.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    external_id: Mapped[str | None] = mapped_column(sa.String(200))
    # external_id when given, else a hash of the content: re-imports create nothing new.
    dedup_key: Mapped[str] = mapped_column(sa.String(220))
    content_hash: Mapped[str] = mapped_column(sa.String(64))
    source_group: Mapped[str | None] = mapped_column(sa.String(64))
    prompt: Mapped[Any] = mapped_column(JSONType)
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", default=dict)
    purpose: Mapped[str] = mapped_column(sa.String(16), default="live")
    gold: Mapped[dict[str, Any] | None] = mapped_column()
    random_key: Mapped[int] = mapped_column(sa.Integer, default=0)
    annotation_count: Mapped[int] = mapped_column(sa.Integer, default=0)
    # Submitted annotations plus live leases: the engine never hands out more than annotations_per_item.
    assigned_count: Mapped[int] = mapped_column(sa.Integer, default=0)
    is_complete: Mapped[bool] = mapped_column(sa.Boolean, default=False)


class Response(UUIDPrimaryKey, Base):
    __tablename__ = "responses"
    __table_args__ = (sa.UniqueConstraint("item_id", "position"),)

    item_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("items.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(sa.Integer)
    source_position: Mapped[int] = mapped_column(sa.Integer)
    text: Mapped[str] = mapped_column(sa.Text)
    model: Mapped[str | None] = mapped_column(sa.String(200))
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", default=dict)
