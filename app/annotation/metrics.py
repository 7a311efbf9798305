"""Gauges that need a database read, refreshed when /metrics is scraped."""

from __future__ import annotations

import sqlalchemy as sa

from app.annotation.models import Assignment
from app.db import database, utcnow
from app.items.models import OPEN_ITEM, Item
from app.observability import ACTIVE_LEASES, ITEMS_LEFT
from app.projects.models import Project


def refresh_queue_gauges() -> None:
    with database.new_session() as session:
        projects = dict(
            session.execute(sa.select(Project.id, Project.slug).where(Project.status != "archived")).all()
        )
        leases = dict(
            session.execute(
                sa.select(Assignment.project_id, sa.func.count(Assignment.id))
                .where(Assignment.status == "leased", Assignment.expires_at >= utcnow())
                .group_by(Assignment.project_id)
            ).all()
        )
        left = dict(
            session.execute(
                sa.select(Item.project_id, sa.func.count(Item.id))
                .where(Item.purpose == "live", OPEN_ITEM)
                .group_by(Item.project_id)
            ).all()
        )
    for project_id, slug in projects.items():
        ACTIVE_LEASES.labels(slug).set(leases.get(project_id, 0))
        ITEMS_LEFT.labels(slug).set(left.get(project_id, 0))
