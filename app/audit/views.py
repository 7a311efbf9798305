"""The audit log as admins read it: who did what to whom, and each changed field as before → after."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.accounts.models import User
from app.audit.models import AuditEvent
from app.i18n import gettext as _
from app.projects.models import Project

# A value longer than this is cut in the table; the whole value stays in the cell's tooltip and the API.
SHOWN_CHARS = 120

# Labels are functions so that they are translated in the reader's language at render time.
ACTION_LABELS: dict[str, Callable[[], str]] = {
    "project.create": lambda: _("Created the project"),
    "project.update": lambda: _("Changed project settings"),
    "project.add_member": lambda: _("Added a member"),
    "project.remove_member": lambda: _("Removed a member"),
    "items.import": lambda: _("Imported items"),
    "item.set_gold": lambda: _("Set a gold answer"),
    "rater.exclude": lambda: _("Excluded a rater"),
    "rater.include": lambda: _("Included a rater again"),
    "rater.reset_qualification": lambda: _("Reset a rater's qualification"),
    "export.create": lambda: _("Started an export"),
    "user.create": lambda: _("Created a user"),
    "user.update": lambda: _("Changed a user"),
    "user.reset_password": lambda: _("Reset a password"),
    "token.create": lambda: _("Created an API token"),
    "token.revoke": lambda: _("Revoked an API token"),
}

FIELD_LABELS: dict[str, Callable[[], str]] = {
    "name": lambda: _("Name"),
    "description": lambda: _("Description"),
    "annotations_per_item": lambda: _("Annotations per item"),
    "status": lambda: _("Status"),
    "lease_minutes": lambda: _("Lease (minutes)"),
    "require_qualification": lambda: _("Qualification required"),
    "qualification_threshold": lambda: _("Qualification pass mark"),
    "qualification_cooldown_minutes": lambda: _("Wait before a new attempt (minutes)"),
    "gold_rate": lambda: _("Share of gold checks"),
    "gold_min_answers": lambda: _("Gold answers before pausing"),
    "gold_pause_threshold": lambda: _("Gold accuracy that pauses a rater"),
    "min_seconds_per_item": lambda: _("Fewest seconds per item"),
    "guidelines_version": lambda: _("Guidelines version"),
    "questions": lambda: _("Questions"),
    "username": lambda: _("Username"),
    "role": lambda: _("Role"),
    "is_active": lambda: _("Active"),
    "excluded": lambda: _("Excluded"),
    "reason": lambda: _("Reason"),
    "created": lambda: _("Items created"),
    "duplicates": lambda: _("Duplicates skipped"),
    "errors": lambda: _("Lines with errors"),
    "gold": lambda: _("Gold answer"),
    "purpose": lambda: _("Purpose"),
    "qualified_at": lambda: _("Qualified at"),
    "prefix": lambda: _("Token starts with"),
    "expires_at": lambda: _("Expires"),
}


@dataclass(frozen=True, slots=True)
class Change:
    field: str
    label: str
    before: str | None
    after: str | None
    before_full: str | None
    after_full: str | None


@dataclass(frozen=True, slots=True)
class EventView:
    id: uuid.UUID
    created_at: datetime
    actor: str | None
    action: str
    action_label: str
    target: str
    project_id: uuid.UUID | None
    project_name: str | None
    changes: list[Change]


def describe_events(session: Session, events: Sequence[AuditEvent]) -> list[EventView]:
    """Events in words: names instead of ids, looked up in one query per kind, and only what changed."""
    targets = {_as_uuid(e.target_id) for e in events if e.target_type == "user"}
    actors = {e.actor_id for e in events}
    usernames = _usernames(session, {u for u in targets | actors if u is not None})
    project_names = _project_names(session, {e.project_id for e in events if e.project_id})
    return [
        EventView(
            id=e.id,
            created_at=e.created_at,
            actor=usernames.get(e.actor_id) if e.actor_id else None,
            action=e.action,
            action_label=ACTION_LABELS[e.action]() if e.action in ACTION_LABELS else e.action,
            target=_target(e, usernames),
            project_id=e.project_id,
            project_name=project_names.get(e.project_id) if e.project_id else None,
            changes=_changes(e.before or {}, e.after or {}),
        )
        for e in events
    ]


def _usernames(session: Session, ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    if not ids:
        return {}
    rows = session.execute(sa.select(User.id, User.username).where(User.id.in_(ids)))
    return {row.id: row.username for row in rows}


def _project_names(session: Session, ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    if not ids:
        return {}
    rows = session.execute(sa.select(Project.id, Project.name).where(Project.id.in_(ids)))
    return {row.id: row.name for row in rows}


def _as_uuid(value: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(value) if value else None
    except ValueError:
        return None


def _target(event: AuditEvent, usernames: dict[uuid.UUID, str]) -> str:
    if event.target_type == "user":
        user_id = _as_uuid(event.target_id)
        # A deleted user keeps their id in the log; show the start of it rather than nothing.
        return usernames.get(user_id, (event.target_id or "")[:8]) if user_id else ""
    if event.target_type == "project":
        return ""  # the project has a column of its own
    short_id = (event.target_id or "")[:8]
    kinds = {"item": _("item"), "export": _("export")}
    return f"{kinds.get(event.target_type, event.target_type)} {short_id}".strip()


def _changes(before: dict[str, Any], after: dict[str, Any]) -> list[Change]:
    # PostgreSQL's jsonb keeps no key order: show fields in the order of FIELD_LABELS, the rest by name.
    known = list(FIELD_LABELS)
    fields = sorted({*after, *before}, key=lambda f: (known.index(f) if f in known else len(known), f))
    changes = []
    for field in fields:
        old, new = before.get(field), after.get(field)
        if field in before and field in after and old == new:
            continue
        # Nothing before is a value being set, not one being replaced.
        old_text = _text(field, old) if old is not None or field not in after else None
        new_text = _text(field, new) if field in after else None
        label = FIELD_LABELS[field]() if field in FIELD_LABELS else field
        changes.append(Change(field, label, _cut(old_text), _cut(new_text), old_text, new_text))
    return changes


def _text(field: str, value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if field == "questions" and isinstance(value, list):
        names = [str(q.get("name", "?")) for q in value if isinstance(q, dict)]
        return ", ".join(names) or "—"
    if field == "gold" and isinstance(value, dict):
        # Gold answers name responses by id, which mean nothing here: say which questions it answers, and why.
        answered = ", ".join(str(name) for name in value.get("answers") or {})
        explanation = str(value.get("explanation") or "")
        return " · ".join(part for part in (answered, explanation) if part) or "—"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    if field.endswith("_at") and isinstance(value, str):
        try:
            return datetime.fromisoformat(value).strftime("%Y-%m-%d %H:%M UTC")
        except ValueError:
            return value
    if field == "status" and isinstance(value, str):
        return _(value)
    return str(value)


def _cut(text: str | None) -> str | None:
    if text is None or len(text) <= SHOWN_CHARS:
        return text
    return text[: SHOWN_CHARS - 1] + "…"
