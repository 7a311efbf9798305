"""Errors of the annotation domain."""

from app.errors import Conflict, Forbidden, NotFound, Unprocessable


class AssignmentNotFound(NotFound):
    code = "assignment_not_found"
    message = "No such assignment."


class AnnotationNotFound(NotFound):
    code = "annotation_not_found"
    message = "No such annotation."


class ItemAlreadyAnnotated(Conflict):
    code = "item_already_annotated"
    message = "You already submitted a different annotation for this item."


class ItemCompleted(Conflict):
    code = "item_completed"
    message = (
        "This item already has all the annotations it needs: your lease had expired, or the project now asks"
        " for fewer per item. Ask for the next item."
    )


class AssignmentSkipped(Conflict):
    code = "assignment_skipped"
    message = "This assignment was skipped."


class IdempotencyKeyReused(Conflict):
    code = "idempotency_key_reused"
    message = "This Idempotency-Key was already used for a different request."


class InvalidAnswers(Unprocessable):
    code = "invalid_answers"
    message = "Some answers are not valid."


class NotAMember(NotFound):
    code = "project_not_found"
    message = "No such project."


class RaterPaused(Forbidden):
    code = "rater_paused"


class CorrectionWindowClosed(Conflict):
    code = "correction_window_closed"
    message = "This annotation is too old to correct."
