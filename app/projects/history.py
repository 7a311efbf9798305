"""Progress over time: judgments per day, and how many days the judgments still needed take at the recent pace."""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.annotation.models import Annotation
from app.caching import TtlCache
from app.db import utcnow
from app.items.models import Item
from app.projects.models import Project

DAYS_SHOWN = 30
PACE_DAYS = 7
# Counting a month of a large project's judgments reads every one of them; admins reload the project page
# often and the counts move slowly, so each process keeps them for a minute. What is left is always fresh.
DAY_COUNTS: TtlCache[tuple[uuid.UUID, date], dict[date, int]] = TtlCache(60.0)


@dataclass(frozen=True, slots=True)
class DayCount:
    day: date
    judgments: int


@dataclass(frozen=True, slots=True)
class ProgressHistory:
    days: list[DayCount]  # the last DAYS_SHOWN UTC days, oldest first, today last; days without work are 0
    judgments_left: int  # judgments the live items still need to reach the project's raters per item
    pace: float  # judgments per day over the last PACE_DAYS days, today included

    @property
    def days_left(self) -> int | None:
        """Whole days until every live item is finished at the recent pace; None when nothing moves."""
        if self.judgments_left == 0:
            return 0
        if self.pace <= 0:
            return None
        return math.ceil(self.judgments_left / self.pace)


def progress_history(session: Session, project: Project, *, today: date | None = None) -> ProgressHistory:
    today = today or utcnow().date()
    first = today - timedelta(days=DAYS_SHOWN - 1)
    counts = DAY_COUNTS.get((project.id, today), lambda: _judgments_per_day(session, project.id, first))
    days = [DayCount(d, counts.get(d, 0)) for d in (first + timedelta(days=i) for i in range(DAYS_SHOWN))]
    return ProgressHistory(
        days=days,
        judgments_left=_judgments_left(session, project),
        pace=sum(d.judgments for d in days[-PACE_DAYS:]) / PACE_DAYS,
    )


def _judgments_per_day(session: Session, project_id: uuid.UUID, first: date) -> dict[date, int]:
    if session.get_bind().dialect.name == "postgresql":
        day: sa.ColumnElement[object] = sa.cast(sa.func.timezone("UTC", Annotation.created_at), sa.Date)
    else:  # SQLite stores UTC datetimes as text
        day = sa.func.date(Annotation.created_at)
    since = datetime(first.year, first.month, first.day, tzinfo=utcnow().tzinfo)
    rows = session.execute(
        sa.select(day, sa.func.count())
        .where(
            Annotation.project_id == project_id, Annotation.purpose == "live", Annotation.created_at >= since
        )
        .group_by(day)
    ).all()
    return {(d if isinstance(d, date) else date.fromisoformat(str(d))): int(n) for d, n in rows}


def _judgments_left(session: Session, project: Project) -> int:
    wanted = project.annotations_per_item
    missing = sa.case((Item.annotation_count < wanted, wanted - Item.annotation_count), else_=0)
    left = session.scalar(
        sa.select(sa.func.sum(missing)).where(
            Item.project_id == project.id, Item.purpose == "live", sa.not_(Item.is_complete)
        )
    )
    return int(left or 0)
