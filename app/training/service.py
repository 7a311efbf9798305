"""Rules of rater training: which queue a rater draws from, grading against gold, qualification, pausing."""

from __future__ import annotations

import random
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.accounts.models import User
from app.annotation.models import Annotation
from app.audit import service as audit
from app.db import utcnow
from app.items import service as items_service
from app.items.models import Item
from app.projects import service as projects_service
from app.projects.models import Project, ProjectMembership
from app.projects.questions import Question, describe_answer, score_against_gold
from app.training import forms, signals
from app.training import repository as repo
from app.training.figures import (
    RaterDetail,
    RaterFigures,
    RaterReport,
    TrainingSet,
    rater_detail,
    rater_figures,
    screen_labels,
    sort_raters,
    training_set,
)
from app.training.models import QualificationAttempt, RaterExclusion

# Figures are computed in their own module; other domains and the routes reach them through this one.
__all__ = [
    "RaterDetail",
    "RaterFigures",
    "RaterReport",
    "TrainingSet",
    "excluded_user_ids",
    "gold_accuracy",
    "grade",
    "next_purpose",
    "rater_detail",
    "rater_figures",
    "reset_qualification",
    "set_exclusion",
    "set_item_gold",
    "sort_raters",
    "training_set",
]

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
        training = _training_purpose(session, project, membership)
        if training is not None:
            return training
    if project.gold_rate > 0 and _random.random() < project.gold_rate:
        return "gold", 0
    return "live", 0


def _training_purpose(
    session: Session, project: Project, membership: ProjectMembership
) -> tuple[str | None, int] | None:
    """The training step, or None when the rater may go on to the live queue."""
    if _training_set_size(session, project.id) == 0:
        # Nothing to train on: the requirement cannot be met, so it does not block the live queue.
        return None
    current = _attempt(session, project.id, membership.user_id, membership.qualification_attempt)
    if current is not None and current.finished_at is None:
        # Skipped or ungraded training items never reach grade(): the attempt ends here once every item
        # was dealt with, instead of leaving the rater with no item and no verdict.
        _finish_if_done(session, project, membership, current)
        if membership.qualified_at is not None:
            return None
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
    _describe_details(questions, details, annotation.display_order)
    if annotation.purpose == "training":
        feedback["qualification"] = _record_training_answer(
            session, project, user, annotation, matched == graded and graded > 0
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


def _describe_details(questions: list[Question], details: list[dict[str, Any]], order: list[Any]) -> None:
    """Add the expected and given answers in the rater's screen terms (A, B, ...) to each graded detail."""
    labels = screen_labels(order)
    by_name = {q.name: q for q in questions}
    for detail in details:
        question = by_name.get(detail["question"])
        if question is not None:
            detail["title"] = question.title
            detail["expected_text"] = describe_answer(question, detail["expected"], labels)
            detail["given_text"] = describe_answer(question, detail["given"], labels)


def _record_training_answer(
    session: Session, project: Project, user: User, annotation: Annotation, correct: bool
) -> dict[str, Any]:
    membership = projects_service.get_membership(session, project.id, user.id)
    assert membership is not None
    number = repo.assignment_attempt(session, annotation.assignment_id)
    attempt = _attempt(session, project.id, user.id, number if number is not None else -1)
    total = _training_set_size(session, project.id)
    if attempt is None or attempt.finished_at is not None or number != membership.qualification_attempt:
        # A lease from an attempt that already ended (an admin reset it meanwhile) gets its feedback but
        # must not change any verdict.
        return _attempt_state(project, attempt, total)
    attempt.n_answered += 1
    attempt.n_graded += 1
    attempt.n_matched += int(correct)
    _finish_if_done(session, project, membership, attempt)
    return _attempt_state(project, attempt, total)


def _finish_if_done(
    session: Session, project: Project, membership: ProjectMembership, attempt: QualificationAttempt
) -> bool:
    """Close the attempt once every training item was answered or skipped; skips count as misses."""
    total = _training_set_size(session, project.id)
    done, skipped = repo.attempt_progress(session, project.id, membership.user_id, attempt.attempt)
    if done < total:
        return False
    graded = attempt.n_graded + skipped
    attempt.finished_at = utcnow()
    # With no gold in the training set there is nothing to fail: the set then only shows the task.
    attempt.passed = graded == 0 or attempt.n_matched / graded >= project.qualification_threshold
    if attempt.passed:
        membership.qualified_at = utcnow()
    return True


def _attempt_state(project: Project, attempt: QualificationAttempt | None, total: int) -> dict[str, Any]:
    if attempt is None:
        return {
            "attempt": None,
            "answered": 0,
            "total": total,
            "accuracy": 0.0,
            "threshold": project.qualification_threshold,
            "finished": True,
            "passed": None,
        }
    state: dict[str, Any] = {
        "attempt": attempt.attempt,
        "answered": attempt.n_answered,
        "total": total,
        "accuracy": attempt.n_matched / attempt.n_graded if attempt.n_graded else 0.0,
        "threshold": project.qualification_threshold,
        "finished": attempt.finished_at is not None,
        "passed": attempt.passed,
    }
    if attempt.finished_at is not None:
        state["retry_after_minutes"] = None if attempt.passed else project.qualification_cooldown_minutes
    return state


def gold_accuracy(
    session: Session, project_id: uuid.UUID, user_id: uuid.UUID, since: datetime | None = None
) -> tuple[int, int]:
    """(answered, matched) over this rater's live gold answers, from `since` on when given."""
    result = signals.gold_accuracy(repo.gold_results_since(session, project_id, user_id, since))
    return result.answered, result.matched


def _check_gold_accuracy(session: Session, project: Project, user: User, extra: bool) -> None:
    membership = projects_service.get_membership(session, project.id, user.id)
    # Counted from the rater's latest qualification: a rater an admin sent back to training and who passed
    # again starts afresh, instead of being paused by the same old answers on the first gold item.
    since = membership.qualified_at if membership is not None else None
    answered, matched = gold_accuracy(session, project.id, user.id, since)
    answered, matched = answered + 1, matched + int(extra)
    below = answered >= project.gold_min_answers and matched / answered < project.gold_pause_threshold
    if below and membership is not None and membership.status == "active":
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


def set_item_gold(
    session: Session,
    project: Project,
    item_id: uuid.UUID,
    form: Mapping[str, list[str]],
    explanation: str | None,
    actor: User,
) -> Item:
    """Gold answers entered on the training page, responses named by letter in stored order."""
    item = items_service.get_item(session, project.id, item_id)
    questions = projects_service.project_questions(project)
    answers = forms.gold_from_form(questions, form, repo.response_ids(session, item.id))
    return items_service.set_gold(session, project, item, answers, (explanation or "").strip() or None, actor)


def excluded_user_ids(session: Session, project_id: uuid.UUID) -> set[uuid.UUID]:
    rows = session.scalars(
        sa.select(ProjectMembership.user_id).where(
            ProjectMembership.project_id == project_id, ProjectMembership.excluded_at.is_not(None)
        )
    )
    return set(rows)
