"""Rules of rater training: which queue a rater draws from, grading against gold, qualification, pausing."""

from __future__ import annotations

import random
import uuid
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.accounts.models import User
from app.annotation.models import Annotation
from app.audit import service as audit
from app.db import utcnow
from app.items.models import Item
from app.projects import service as projects_service
from app.projects.models import Project, ProjectMembership
from app.projects.questions import score_against_gold
from app.training.models import QualificationAttempt, RaterExclusion

_random = random.SystemRandom()


def _training_set_size(session: Session, project_id: uuid.UUID) -> int:
    return (
        session.scalar(
            sa.select(sa.func.count(Item.id)).where(Item.project_id == project_id, Item.purpose == "training")
        )
        or 0
    )


def _attempt(
    session: Session, project_id: uuid.UUID, user_id: uuid.UUID, number: int
) -> QualificationAttempt | None:
    return session.scalar(
        sa.select(QualificationAttempt).where(
            QualificationAttempt.project_id == project_id,
            QualificationAttempt.user_id == user_id,
            QualificationAttempt.attempt == number,
        )
    )


def next_purpose(session: Session, project: Project, membership: ProjectMembership) -> tuple[str | None, int]:
    """("training", attempt) until qualified; then "gold" at the project's rate, else "live"."""
    if project.require_qualification and membership.qualified_at is None:
        return _training_purpose(session, project, membership)
    if project.gold_rate > 0 and _random.random() < project.gold_rate:
        return "gold", 0
    return "live", 0


def _training_purpose(
    session: Session, project: Project, membership: ProjectMembership
) -> tuple[str | None, int]:
    if _training_set_size(session, project.id) == 0:
        # Nothing to train on: the requirement cannot be met, so it does not block the live queue.
        return "live", 0
    current = _attempt(session, project.id, membership.user_id, membership.qualification_attempt)
    if current is not None and current.finished_at is None:
        return "training", current.attempt
    if current is not None and current.finished_at is not None:
        ready_at = current.finished_at + timedelta(minutes=project.qualification_cooldown_minutes)
        if utcnow() < ready_at:
            return None, current.attempt
    membership.qualification_attempt += 1
    session.add(
        QualificationAttempt(
            project_id=project.id, user_id=membership.user_id, attempt=membership.qualification_attempt
        )
    )
    session.flush()
    return "training", membership.qualification_attempt


def grade(
    session: Session, project: Project, user: User, item: Item, annotation: Annotation
) -> dict[str, Any] | None:
    """Score an answer on a gold or training item; only training answers get feedback shown to the rater."""
    if item.gold is None or annotation.purpose == "live":
        return None
    questions = projects_service.project_questions(project)
    matched, graded, details = score_against_gold(questions, annotation.answers, item.gold.get("answers", {}))
    feedback: dict[str, Any] = {
        "matched": (matched == graded) if graded else None,
        "n_matched": matched,
        "n_graded": graded,
        "details": details,
        "explanation": item.gold.get("explanation"),
    }
    if annotation.purpose == "training":
        feedback["qualification"] = _record_training_answer(
            session, project, user, matched == graded and graded > 0
        )
    else:
        _check_gold_accuracy(session, project, user, extra=(matched == graded and graded > 0))
    annotation.gold_result = {
        "matched": matched,
        "graded": graded,
        "details": details,
        "feedback": feedback if annotation.purpose == "training" else None,
    }
    return feedback if annotation.purpose == "training" else None


def _record_training_answer(session: Session, project: Project, user: User, correct: bool) -> dict[str, Any]:
    membership = projects_service.get_membership(session, project.id, user.id)
    assert membership is not None
    attempt = _attempt(session, project.id, user.id, membership.qualification_attempt)
    assert attempt is not None
    attempt.n_answered += 1
    attempt.n_graded += 1
    attempt.n_matched += int(correct)
    total = _training_set_size(session, project.id)
    state: dict[str, Any] = {
        "attempt": attempt.attempt,
        "answered": attempt.n_answered,
        "total": total,
        "accuracy": attempt.n_matched / attempt.n_graded,
        "threshold": project.qualification_threshold,
        "finished": False,
        "passed": None,
    }
    if attempt.n_answered >= total:
        attempt.finished_at = utcnow()
        attempt.passed = attempt.n_matched / max(attempt.n_graded, 1) >= project.qualification_threshold
        if attempt.passed:
            membership.qualified_at = utcnow()
        state.update(
            finished=True,
            passed=attempt.passed,
            retry_after_minutes=None if attempt.passed else project.qualification_cooldown_minutes,
        )
    return state


def gold_accuracy(session: Session, project_id: uuid.UUID, user_id: uuid.UUID) -> tuple[int, int]:
    """(answered, matched) over this rater's live gold answers."""
    rows = session.scalars(
        sa.select(Annotation.gold_result).where(
            Annotation.project_id == project_id, Annotation.user_id == user_id, Annotation.purpose == "gold"
        )
    )
    answered = matched = 0
    for result in rows:
        if result and result.get("graded"):
            answered += 1
            matched += int(result["matched"] == result["graded"])
    return answered, matched


def _check_gold_accuracy(session: Session, project: Project, user: User, extra: bool) -> None:
    answered, matched = gold_accuracy(session, project.id, user.id)
    answered, matched = answered + 1, matched + int(extra)
    if answered >= project.gold_min_answers and matched / answered < project.gold_pause_threshold:
        membership = projects_service.get_membership(session, project.id, user.id)
        if membership is not None and membership.status == "active":
            membership.status = "paused"
            membership.paused_reason = (
                f"gold accuracy {matched}/{answered} is below {project.gold_pause_threshold:.0%}"
            )


def reset_qualification(
    session: Session, project: Project, user_id: uuid.UUID, actor: User
) -> ProjectMembership:
    membership = _member(session, project, user_id)
    before = {"qualified_at": membership.qualified_at, "status": membership.status}
    membership.qualified_at = None
    membership.status = "active"
    membership.paused_reason = None
    attempt = _attempt(session, project.id, user_id, membership.qualification_attempt)
    if attempt is not None and attempt.finished_at is None:
        attempt.finished_at = utcnow()
        attempt.passed = False
    # The next request starts a fresh attempt at once: an admin reset skips the cooldown.
    if attempt is not None:
        attempt.finished_at = utcnow() - timedelta(minutes=project.qualification_cooldown_minutes + 1)
    audit.record(
        session,
        actor.id,
        "rater.reset_qualification",
        "user",
        user_id,
        project_id=project.id,
        before=before,
        after={"qualified_at": None, "status": "active"},
    )
    return membership


def set_exclusion(
    session: Session,
    project: Project,
    user_id: uuid.UUID,
    actor: User,
    *,
    exclude: bool,
    reason: str | None = None,
) -> ProjectMembership:
    membership = _member(session, project, user_id)
    before = {"excluded": membership.excluded_at is not None}
    membership.excluded_at = utcnow() if exclude else None
    membership.excluded_by_id = actor.id if exclude else None
    membership.exclusion_reason = reason if exclude else None
    session.add(
        RaterExclusion(
            project_id=project.id,
            user_id=user_id,
            action="exclude" if exclude else "include",
            reason=reason,
            decided_by_id=actor.id,
        )
    )
    audit.record(
        session,
        actor.id,
        "rater.exclude" if exclude else "rater.include",
        "user",
        user_id,
        project_id=project.id,
        before=before,
        after={"excluded": exclude, "reason": reason},
    )
    return membership


def _member(session: Session, project: Project, user_id: uuid.UUID) -> ProjectMembership:
    from app.projects.exceptions import MemberNotFound

    membership = projects_service.get_membership(session, project.id, user_id)
    if membership is None:
        raise MemberNotFound()
    return membership


def excluded_user_ids(session: Session, project_id: uuid.UUID) -> set[uuid.UUID]:
    rows = session.scalars(
        sa.select(ProjectMembership.user_id).where(
            ProjectMembership.project_id == project_id, ProjectMembership.excluded_at.is_not(None)
        )
    )
    return set(rows)
