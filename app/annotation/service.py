"""Rules of the annotation domain: handing out leases, taking submissions and skips, corrections."""

from __future__ import annotations

import hashlib
import json
import random
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from app.accounts import service as accounts_service
from app.accounts.models import User
from app.accounts.security import hash_token
from app.annotation import exceptions
from app.annotation import repository as repo
from app.annotation.models import Annotation, AnnotationRevision, Assignment
from app.annotation.schemas import AnnotationCorrection, AnnotationSubmit
from app.caching import TtlCache
from app.db import utcnow
from app.errors import AppError
from app.items.models import Item, Response
from app.observability import ANNOTATIONS_SUBMITTED
from app.projects import policies
from app.projects import service as projects_service
from app.projects.models import Project, ProjectMembership
from app.projects.questions import AnswerError, validate_answers
from app.training import service as training_service

CORRECTION_WINDOW = timedelta(days=7)
# Slots of a display order: as many as an item may hold responses (the import refuses more).
DISPLAY_SLOTS = 16
_shuffle = random.SystemRandom().shuffle


@dataclass(frozen=True)
class LeasedItem:
    """What the rater is shown: responses already in this assignment's display order."""

    assignment: Assignment
    item: Item
    responses: list[Response]
    training: bool


@dataclass(frozen=True)
class Submission:
    annotation: Annotation
    feedback: dict[str, Any] | None


def _project_for_work(
    session: Session, project_id: uuid.UUID, user: User
) -> tuple[Project, ProjectMembership]:
    """The project and the rater's locked membership; only members work on a project (404 otherwise)."""
    found = repo.lock_membership(session, project_id, user.id)
    if found is None or not policies.can_view(user, *found):
        raise exceptions.NotAMember()
    return found


def next_assignment(session: Session, project_id: uuid.UUID, user: User) -> LeasedItem | None:
    """The caller's current lease, or a new one; None when there is nothing for this rater."""
    project, membership = _project_for_work(session, project_id, user)
    return _next_for_member(session, project, membership, user)


def next_assignment_for_token(
    session: Session, project_id: uuid.UUID, token: str
) -> tuple[User, LeasedItem | None] | None:
    """next_assignment for an API caller known by their bearer token, found in the statement that locks their
    membership; None when the token lets nobody in (the API answers 401)."""
    found = repo.lock_membership_for_token(session, project_id, hash_token(token))
    user = _token_caller(session, token, found[0] if found else None, exceptions.NotAMember())
    if user is None or found is None:
        return None
    _, project, membership = found
    if not policies.can_view(user, project, membership):
        raise exceptions.NotAMember()
    return user, _next_for_member(session, project, membership, user)


def _token_caller(
    session: Session, token: str, found: repo.TokenUser | None, not_theirs: AppError
) -> User | None:
    """The caller found with their work, if their token still lets them in. None when the token lets nobody
    in; raises not_theirs when it does but nothing was found: the work is someone else's, or does not exist."""
    if found is not None and accounts_service.usable_token(*found):
        return found[0]
    if accounts_service.user_for_token(session, token) is None:
        return None
    raise not_theirs


def _next_for_member(
    session: Session, project: Project, membership: ProjectMembership, user: User
) -> LeasedItem | None:
    if project.status != "active" or membership.status != "active":
        return None
    lease = repo.reclaim_and_find_lease(session, project.id, user.id, utcnow())
    if lease is None:
        lease = _new_lease(session, project, membership, user)
        if lease is None:
            return None
    return _leased_item(session, lease)


def _new_lease(
    session: Session, project: Project, membership: ProjectMembership, user: User
) -> Assignment | None:
    """A lease on the rater's next item: training until qualified, then gold checks at the project's rate
    (live work when none is left), else live work. Every lease gets a fresh random display order."""
    purpose, attempt = training_service.next_purpose(session, project, membership)
    if purpose is None:
        return None
    expires_at = utcnow() + timedelta(minutes=project.lease_minutes)
    permutation = list(range(DISPLAY_SLOTS))
    _shuffle(permutation)
    if purpose != "live":
        item_id = repo.pick_unseen_item(session, project.id, user.id, purpose, attempt)
        if item_id is not None:
            return repo.lease_item(
                session,
                project_id=project.id,
                item_id=item_id,
                user_id=user.id,
                attempt=attempt,
                purpose=purpose,
                display_order=repo.ordered_response_ids(session, item_id, permutation),
                expires_at=expires_at,
            )
        if purpose != "gold":
            return None
    return repo.lease_live_item(
        session,
        project_id=project.id,
        user_id=user.id,
        annotations_per_item=project.annotations_per_item,
        expires_at=expires_at,
        permutation=permutation,
    )


def _leased_item(session: Session, lease: Assignment) -> LeasedItem:
    item, by_id = repo.load_item_with_responses(session, lease.item_id)
    ordered = [by_id[rid] for rid in lease.display_order if rid in by_id]
    return LeasedItem(assignment=lease, item=item, responses=ordered, training=lease.purpose == "training")


def show_own_assignment(session: Session, assignment_id: uuid.UUID, user: User) -> LeasedItem:
    """One of the caller's assignments with its item, to show again (a refused submit, a correction)."""
    assignment = session.get(Assignment, assignment_id)
    if assignment is None or assignment.user_id != user.id:
        raise exceptions.AssignmentNotFound()
    return _leased_item(session, assignment)


def get_own_assignment(session: Session, assignment_id: uuid.UUID, user: User) -> Assignment:
    assignment = repo.lock_assignment(session, assignment_id)
    if assignment is None or assignment.user_id != user.id:
        raise exceptions.AssignmentNotFound()
    return assignment


def _request_hash(body: AnnotationSubmit) -> str:
    canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def submit_annotation(
    session: Session,
    assignment_id: uuid.UUID,
    user: User,
    body: AnnotationSubmit,
    idempotency_key: str | None = None,
) -> Submission:
    assignment, project = _own_assignment_with_project(session, assignment_id, user)
    return _submit(session, assignment, project, user, body, idempotency_key)


def submit_annotation_for_token(
    session: Session,
    assignment_id: uuid.UUID,
    token: str,
    body: AnnotationSubmit,
    idempotency_key: str | None = None,
) -> tuple[User, Submission] | None:
    """submit_annotation for an API caller known by their bearer token, found in the statement that locks
    their assignment; None when the token lets nobody in (the API answers 401)."""
    found = repo.lock_assignment_for_token(session, assignment_id, hash_token(token))
    user = _token_caller(session, token, found[0] if found else None, exceptions.AssignmentNotFound())
    if user is None or found is None:
        return None
    _, assignment, project = found
    return user, _submit(session, assignment, project, user, body, idempotency_key)


def _submit(
    session: Session,
    assignment: Assignment,
    project: Project,
    user: User,
    body: AnnotationSubmit,
    idempotency_key: str | None,
) -> Submission:
    request_hash = _request_hash(body)
    replay = _replayed(session, assignment, user, idempotency_key, request_hash)
    if replay is not None:
        return replay
    if assignment.status == "skipped":
        raise exceptions.AssignmentSkipped()
    if not project.questions:
        raise exceptions.InvalidAnswers("The project has no questions.")
    answers = _validated(project, body.answers, assignment.display_order)
    now = utcnow()
    annotation = Annotation(
        id=uuid.uuid4(),
        assignment_id=assignment.id,
        project_id=project.id,
        item_id=assignment.item_id,
        user_id=user.id,
        purpose=assignment.purpose,
        answers=answers,
        rationale=(body.rationale or None),
        flags=sorted(set(body.flags)),
        time_spent_ms=body.time_spent_ms,
        display_order=assignment.display_order,
        guidelines_version=project.guidelines_version,
        idempotency_key=idempotency_key,
        request_hash=request_hash,
        revision=1,
        created_at=now,
    )
    feedback = None
    if assignment.purpose == "live":
        stored = repo.store_live_annotation(
            session,
            annotation,
            assignment,
            finished_at=now,
        )
        if not stored:
            raise exceptions.ItemCompleted()
    else:
        repo.add_submitted(session, annotation, assignment, now)
        item = session.get_one(Item, assignment.item_id)
        feedback = training_service.grade(session, project, user, item, annotation)
    session.flush()
    ANNOTATIONS_SUBMITTED.labels(assignment.purpose).inc()
    return Submission(annotation=annotation, feedback=feedback)


def _own_assignment_with_project(
    session: Session, assignment_id: uuid.UUID, user: User
) -> tuple[Assignment, Project]:
    found = repo.lock_assignment_with_project(session, assignment_id)
    if found is None or found[0].user_id != user.id:
        raise exceptions.AssignmentNotFound()
    return found


def _validated(project: Project, answers: dict[str, Any], response_ids: list[str]) -> dict[str, Any]:
    try:
        return validate_answers(projects_service.project_questions(project), answers, response_ids)
    except AnswerError as error:
        raise exceptions.InvalidAnswers(details=error.errors) from error


def _replayed(
    session: Session, assignment: Assignment, user: User, key: str | None, request_hash: str
) -> Submission | None:
    """The same request again gives the same result; a different one for the same item is a conflict."""
    if key:
        earlier = repo.annotation_by_key(session, user.id, key)
        if earlier is not None:
            if earlier.assignment_id != assignment.id or earlier.request_hash != request_hash:
                raise exceptions.IdempotencyKeyReused()
            return Submission(annotation=earlier, feedback=(earlier.gold_result or {}).get("feedback"))
    # An assignment is marked submitted in the transaction that stores its annotation.
    if assignment.status != "submitted":
        return None
    existing = repo.annotation_for_assignment(session, assignment.id)
    if existing is not None and existing.request_hash == request_hash and existing.revision == 1:
        return Submission(annotation=existing, feedback=(existing.gold_result or {}).get("feedback"))
    raise exceptions.ItemAlreadyAnnotated()


def skip_assignment(
    session: Session, assignment_id: uuid.UUID, user: User, reason: str, note: str | None = None
) -> Assignment:
    assignment = get_own_assignment(session, assignment_id, user)
    if assignment.status == "submitted":
        raise exceptions.ItemAlreadyAnnotated("This assignment was already submitted.")
    if assignment.status == "skipped":
        return assignment
    if assignment.status == "leased" and assignment.purpose == "live":
        item = repo.lock_item(session, assignment.item_id)
        item.assigned_count -= 1
    assignment.status = "skipped"
    assignment.finished_at = utcnow()
    assignment.skip_reason = f"{reason}: {note}" if note else reason
    return assignment


def get_own_annotation(
    session: Session, annotation_id: uuid.UUID, user: User, *, for_update: bool = False
) -> Annotation:
    """for_update locks the row and reads it afresh, even when this session has loaded it already."""
    annotation = session.get(
        Annotation, annotation_id, with_for_update=for_update or None, populate_existing=for_update
    )
    if annotation is None or annotation.user_id != user.id:
        raise exceptions.AnnotationNotFound()
    return annotation


def is_correctable(annotation: Annotation) -> bool:
    """Training answers are graded as given; anything else may be fixed within the correction window."""
    return annotation.purpose != "training" and utcnow() - annotation.created_at <= CORRECTION_WINDOW


def correct_annotation(
    session: Session, annotation_id: uuid.UUID, user: User, body: AnnotationCorrection
) -> Annotation:
    """A rater fixes their own recent annotation; the earlier content is kept as a revision.

    The row is locked: two saves at once (two tabs) would otherwise both number their revision N+1.
    """
    annotation = get_own_annotation(session, annotation_id, user, for_update=True)
    if not is_correctable(annotation):
        raise exceptions.CorrectionWindowClosed()
    project = session.get_one(Project, annotation.project_id)
    answers = _validated(project, body.answers, annotation.display_order)
    session.add(
        AnnotationRevision(
            annotation_id=annotation.id,
            revision=annotation.revision,
            answers=annotation.answers,
            rationale=annotation.rationale,
            flags=annotation.flags,
        )
    )
    annotation.answers = answers
    annotation.rationale = body.rationale or None
    annotation.flags = sorted(set(body.flags))
    annotation.revision += 1
    annotation.updated_at = utcnow()
    return annotation


def list_recent_annotations(
    session: Session, user: User, project_id: uuid.UUID | None = None, limit: int = 20
) -> list[Annotation]:
    return repo.recent_annotations(session, user.id, limit=limit, project_id=project_id)


def raters_working_now(session: Session, project_ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
    """Per project, the raters on an item now (holding an unexpired lease); projects with none are left out."""
    if not project_ids:
        return {}
    return repo.count_raters_holding_leases(session, project_ids, utcnow())


# Counting a large project's open items costs a scan of its queue index; raters see the figure after every
# submit, so each process reuses it for a few seconds. A stale count by a few items is harmless here.
OPEN_ITEMS: TtlCache[uuid.UUID, int] = TtlCache(10.0)


def _open_items(session: Session, project_id: uuid.UUID) -> int:
    return OPEN_ITEMS.get(project_id, lambda: repo.count_open_items(session, project_id))


def rater_progress(session: Session, project: Project, user: User) -> dict[str, int]:
    return {
        "done_today": repo.count_user_annotations_since(
            session, project.id, user.id, projects_service.start_of_today()
        ),
        "left": _open_items(session, project.id),
    }
