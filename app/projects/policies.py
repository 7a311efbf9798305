"""Who may see and change a project."""

from __future__ import annotations

from app.accounts.models import User
from app.projects.models import Project, ProjectMembership

VISIBLE_TO_ANNOTATORS = ("active", "paused")


def can_view(user: User, project: Project, membership: ProjectMembership | None) -> bool:
    if user.is_admin:
        return True
    return membership is not None and project.status in VISIBLE_TO_ANNOTATORS


def can_manage(user: User) -> bool:
    return user.is_admin
