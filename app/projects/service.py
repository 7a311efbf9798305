"""Rules of the projects domain: projects, settings, guidelines versions and members."""

from __future__ import annotations

import re
import unicodedata
import uuid
from datetime import UTC, datetime, time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.accounts import service as accounts_service
from app.accounts.models import User
from app.audit import service as audit
from app.errors import Forbidden
from app.items import service as items_service
from app.projects import exceptions, policies
from app.projects.models import GuidelineVersion, Project, ProjectMembership
from app.projects.questions import Question, parse_questions, questions_to_json
from app.projects.schemas import ProjectCreate, ProjectUpdate

AUDITED_FIELDS = (
    "name",
    "description",
    "annotations_per_item",
    "status",
    "lease_minutes",
    "require_qualification",
    "qualification_threshold",
    "qualification_cooldown_minutes",
    "gold_rate",
    "gold_min_answers",
    "gold_pause_threshold",
    "min_seconds_per_item",
    "guidelines_version",
    "questions",
)


def slugify(name: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:60]
    return slug or "project"


def _unique_slug(session: Session, base: str) -> str:
    slug, n = base, 1
    while session.scalar(sa.select(Project.id).where(Project.slug == slug)):
        n += 1
        slug = f"{base}-{n}"
    return slug


def create_project(session: Session, data: ProjectCreate, actor: User) -> Project:
    if data.slug and session.scalar(sa.select(Project.id).where(Project.slug == data.slug)):
        raise exceptions.SlugTaken()
    settings = data.model_dump(exclude_unset=True, exclude={"questions", "slug", "name"})
    project = Project(
        name=data.name,
        slug=data.slug or _unique_slug(session, slugify(data.name)),
        questions=questions_to_json(data.questions),
        created_by_id=actor.id,
        **{k: v for k, v in settings.items() if v is not None},
    )
    session.add(project)
    session.flush()
    session.add(
        GuidelineVersion(
            project_id=project.id, version=1, body=project.guidelines or "", created_by_id=actor.id
        )
    )
    audit.record(
        session,
        actor.id,
        "project.create",
        "project",
        project.id,
        project_id=project.id,
        after=_snapshot(project),
    )
    return project


def _snapshot(project: Project) -> dict[str, Any]:
    return {field: getattr(project, field) for field in AUDITED_FIELDS}


def project_questions(project: Project) -> list[Question]:
    return parse_questions(project.questions)


def get_membership(session: Session, project_id: uuid.UUID, user_id: uuid.UUID) -> ProjectMembership | None:
    return session.scalar(
        sa.select(ProjectMembership).where(
            ProjectMembership.project_id == project_id, ProjectMembership.user_id == user_id
        )
    )


def get_project(session: Session, project_id: uuid.UUID, user: User) -> Project:
    """The project if the user may see it; 404 otherwise, so outsiders learn nothing."""
    project = session.get(Project, project_id)
    if project is None:
        raise exceptions.ProjectNotFound()
    membership = None if user.is_admin else get_membership(session, project_id, user.id)
    if not policies.can_view(user, project, membership):
        raise exceptions.ProjectNotFound()
    return project


def get_project_for_admin(session: Session, project_id: uuid.UUID, user: User) -> Project:
    project = get_project(session, project_id, user)
    if not policies.can_manage(user):
        raise Forbidden("Only admins can change projects.")
    return project


def list_projects(session: Session, user: User, *, include_archived: bool = False) -> list[Project]:
    query = sa.select(Project).order_by(Project.created_at.desc())
    if not user.is_admin:
        query = query.join(ProjectMembership, ProjectMembership.project_id == Project.id).where(
            ProjectMembership.user_id == user.id, Project.status.in_(policies.VISIBLE_TO_ANNOTATORS)
        )
    elif not include_archived:
        query = query.where(Project.status != "archived")
    return list(session.scalars(query))


def update_project(session: Session, project: Project, data: ProjectUpdate, actor: User) -> Project:
    # Saves of one project take turns, each on the row as the last one left it: two at once would both number
    # their guidelines version N+1 and audit a stale "before". NO KEY UPDATE leaves annotations' foreign-key
    # checks on the project unblocked.
    session.refresh(project, with_for_update={"key_share": True})
    before = _snapshot(project)
    changes = data.model_dump(exclude_unset=True)
    if "questions" in changes and data.questions is not None:
        new_questions = questions_to_json(data.questions)
        if new_questions != project.questions and _has_annotations(session, project.id):
            raise exceptions.QuestionsLocked()
        project.questions = new_questions
        changes.pop("questions")
    guidelines = changes.pop("guidelines", None)
    if guidelines is not None and guidelines != project.guidelines:
        set_guidelines(session, project, guidelines, actor)
    for field, value in changes.items():
        if value is not None:
            setattr(project, field, value)
    session.flush()
    if project.annotations_per_item != before["annotations_per_item"]:
        items_service.mark_complete_by(session, project.id, project.annotations_per_item)
    after = _snapshot(project)
    if before != after:
        changed = [k for k in AUDITED_FIELDS if before[k] != after[k]]
        audit.record(
            session,
            actor.id,
            "project.update",
            "project",
            project.id,
            project_id=project.id,
            before={k: before[k] for k in changed},
            after={k: after[k] for k in changed},
        )
    return project


def set_guidelines(session: Session, project: Project, body: str, actor: User) -> GuidelineVersion:
    project.guidelines = body
    project.guidelines_version += 1
    version = GuidelineVersion(
        project_id=project.id, version=project.guidelines_version, body=body, created_by_id=actor.id
    )
    session.add(version)
    return version


def list_guideline_versions(session: Session, project_id: uuid.UUID) -> list[GuidelineVersion]:
    return list(
        session.scalars(
            sa.select(GuidelineVersion)
            .where(GuidelineVersion.project_id == project_id)
            .order_by(GuidelineVersion.version.desc())
        )
    )


def guideline_version(session: Session, project_id: uuid.UUID, version: int) -> GuidelineVersion | None:
    return session.scalar(
        sa.select(GuidelineVersion).where(
            GuidelineVersion.project_id == project_id, GuidelineVersion.version == version
        )
    )


def archive_project(session: Session, project: Project, actor: User) -> Project:
    return update_project(session, project, ProjectUpdate(status="archived"), actor)


def _has_annotations(session: Session, project_id: uuid.UUID) -> bool:
    from app.annotation.models import Annotation

    return (
        session.scalar(sa.select(Annotation.id).where(Annotation.project_id == project_id).limit(1))
        is not None
    )


def add_member(
    session: Session,
    project: Project,
    actor: User,
    *,
    username: str | None = None,
    user_id: uuid.UUID | None = None,
) -> ProjectMembership:
    user = (
        accounts_service.find_user(session, username)
        if username
        else accounts_service.get_user(
            session,
            user_id,  # type: ignore[arg-type]
        )
    )
    existing = get_membership(session, project.id, user.id)
    if existing is not None:
        return existing
    membership = ProjectMembership(project_id=project.id, user_id=user.id)
    session.add(membership)
    session.flush()
    audit.record(
        session,
        actor.id,
        "project.add_member",
        "user",
        user.id,
        project_id=project.id,
        after={"username": user.username},
    )
    return membership


def remove_member(session: Session, project: Project, user_id: uuid.UUID, actor: User) -> None:
    membership = get_membership(session, project.id, user_id)
    if membership is None:
        raise exceptions.MemberNotFound()
    session.delete(membership)
    audit.record(session, actor.id, "project.remove_member", "user", user_id, project_id=project.id)


def list_members(session: Session, project_id: uuid.UUID) -> list[tuple[ProjectMembership, User]]:
    rows = session.execute(
        sa.select(ProjectMembership, User)
        .join(User, User.id == ProjectMembership.user_id)
        .where(ProjectMembership.project_id == project_id)
        .order_by(User.username)
    )
    return [(m, u) for m, u in rows.all()]


def start_of_today() -> datetime:
    return datetime.combine(datetime.now(UTC).date(), time.min, tzinfo=UTC)


def guidelines_news(session: Session, project: Project, user: User) -> tuple[int, GuidelineVersion | None]:
    """The version the rater last saw and, when it is older than the current one, that older version."""
    membership = get_membership(session, project.id, user.id)
    seen = membership.last_seen_guidelines_version if membership else project.guidelines_version
    if seen and seen < project.guidelines_version:
        return seen, guideline_version(session, project.id, seen)
    return seen, None


def mark_guidelines_seen(session: Session, project: Project, user: User) -> None:
    membership = get_membership(session, project.id, user.id)
    if membership is not None:
        membership.last_seen_guidelines_version = project.guidelines_version


def find_project(session: Session, ref: str) -> Project:
    """A project by its id or its slug, for the command line."""
    try:
        project = session.get(Project, uuid.UUID(ref))
    except ValueError:
        project = session.scalar(sa.select(Project).where(Project.slug == ref))
    if project is None:
        raise exceptions.ProjectNotFound(f"No project {ref!r}: give its slug or id.")
    return project
