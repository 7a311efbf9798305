"""Errors of the projects domain."""

from app.errors import Conflict, NotFound, Unprocessable


class ProjectNotFound(NotFound):
    code = "project_not_found"
    message = "No such project."


class SlugTaken(Conflict):
    code = "slug_taken"
    message = "Another project already uses that slug."


class InvalidQuestions(Unprocessable):
    code = "invalid_questions"


class MemberNotFound(NotFound):
    code = "member_not_found"
    message = "That user is not a member of this project."


class QuestionsLocked(Conflict):
    code = "questions_locked"
    message = "The questions cannot change once annotations exist; create a new project instead."
