"""The annotate form's field names, and reshaping a submitted form into answers (and answers back into fields).

Field names, one family per question kind (``<name>`` is the question's name, ``<rid>`` a response id):

    q.<name>.choice         preference: a response id, "tie" or "both_bad"
    q.<name>.strength       preference: 1..len(strength labels)
    q.<name>.rank.<rid>     ranking: the response's place, 1 = best; equal places form a tie group
    q.<name>.score.<rid>    rating: the response's score
    q.<name>                label: the option; multi_label: one value per option; text: the text
    rationale               free-text reasons, kept beside the answers
    flags                   one value per flag (unsafe, pii, broken_prompt)
    time_spent_ms           measured in the browser
    idempotency_key         one per rendered form, so a double submit gives one annotation

Nothing here decides whether an answer is valid: ids, ranges and required answers are checked by the
service. This module only turns strings into the shapes the service expects, passing through anything
it cannot convert so that the service reports it next to the right question.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Protocol

from pydantic import ValidationError

from app.annotation.schemas import AnnotationCorrection, AnnotationSubmit
from app.projects.questions import (
    LabelQuestion,
    MultiLabelQuestion,
    PreferenceQuestion,
    Question,
    RankingQuestion,
    RatingQuestion,
    TextQuestion,
)

FLAG_CHOICES = ("unsafe", "pii", "broken_prompt")
# Far beyond any real item; stops a crafted form from making the reshaping itself expensive.
MAX_FIELDS_PER_QUESTION = 200
MAX_IDEMPOTENCY_KEY = 200
MAX_TIME_SPENT_MS = 24 * 3600 * 1000


class FormLike(Protocol):
    """The part of Starlette's FormData used here: all values of a field, and the field names."""

    def getlist(self, key: str) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class FormErrors(ValueError):
    """A form that could not be reshaped; `details` lists {"question", "error"} like the service's errors."""

    def __init__(self, details: list[dict[str, Any]]) -> None:
        self.details = details
        super().__init__("; ".join(f"{d['question']}: {d['error']}" for d in details))


def field(question_name: str, *parts: str) -> str:
    return ".".join(("q", question_name, *parts))


def _texts(form: FormLike, key: str) -> list[str]:
    # File uploads and other non-text parts are not answers.
    return [value for value in form.getlist(key) if isinstance(value, str)]


def _first(form: FormLike, key: str) -> str | None:
    values = [value for value in _texts(form, key) if value.strip()]
    return values[0] if values else None


def _number(raw: str) -> int | str:
    """An int when the text is one, else the text itself, for the service to refuse with its own words."""
    try:
        return int(raw.strip())
    except ValueError:
        return raw


def _per_response(form: FormLike, prefix: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for key in form:
        if isinstance(key, str) and key.startswith(prefix) and len(values) < MAX_FIELDS_PER_QUESTION:
            value = _first(form, key)
            if value is not None:
                values[key.removeprefix(prefix)] = value
    return values


def _preference(form: FormLike, question: PreferenceQuestion) -> dict[str, Any] | None:
    choice = _first(form, field(question.name, "choice"))
    if choice is None:
        return None
    answer: dict[str, Any] = {"choice": choice}
    strength = _first(form, field(question.name, "strength"))
    if strength is not None:
        answer["strength"] = _number(strength)
    return answer


def _ranking(form: FormLike, question: RankingQuestion) -> list[Any] | None:
    places = _per_response(form, field(question.name, "rank") + ".")
    if not places:
        return None
    groups: dict[int, list[str]] = {}
    for response_id, raw in places.items():
        place = _number(raw)
        if not isinstance(place, int):
            raise FormErrors([{"question": question.name, "error": f"place {raw[:20]!r} is not a number"}])
        groups.setdefault(place, []).append(response_id)
    # A group of one is written as a bare id: the shape of a ranking without ties.
    return [group[0] if len(group) == 1 else group for _, group in sorted(groups.items())]


def _rating(form: FormLike, question: RatingQuestion) -> dict[str, Any] | None:
    scores = _per_response(form, field(question.name, "score") + ".")
    return {response_id: _number(raw) for response_id, raw in scores.items()} or None


def _answer(form: FormLike, question: Question) -> Any:
    match question:
        case PreferenceQuestion():
            return _preference(form, question)
        case RankingQuestion():
            return _ranking(form, question)
        case RatingQuestion():
            return _rating(form, question)
        case LabelQuestion():
            return _first(form, field(question.name))
        case MultiLabelQuestion():
            chosen = _texts(form, field(question.name))[:MAX_FIELDS_PER_QUESTION]
            return chosen or None
        case TextQuestion():
            texts = _texts(form, field(question.name))
            return texts[0] if texts and texts[0].strip() else None
    return None


def answers_from_form(form: FormLike, questions: Sequence[Question]) -> dict[str, Any]:
    """Answers keyed by question name; unanswered questions are left out for the service to judge."""
    answers = {question.name: _answer(form, question) for question in questions}
    return {name: value for name, value in answers.items() if value is not None}


def _time_spent(form: FormLike) -> int | None:
    # A measurement, not an answer: a broken clock must never cost the rater their judgement.
    raw = _first(form, "time_spent_ms")
    value = _number(raw) if raw is not None else None
    return value if isinstance(value, int) and 0 <= value <= MAX_TIME_SPENT_MS else None


def _common_fields(form: FormLike, questions: Sequence[Question]) -> dict[str, Any]:
    rationale = _first(form, "rationale")
    return {
        "answers": answers_from_form(form, questions),
        "rationale": rationale.strip() if rationale else None,
        "flags": list(dict.fromkeys(_texts(form, "flags")))[:10],
    }


def _schema_errors(error: ValidationError) -> list[dict[str, Any]]:
    return [
        {"question": str(problem["loc"][0]) if problem["loc"] else None, "error": problem["msg"]}
        for problem in error.errors()[:10]
    ]


def submission_from_form(form: FormLike, questions: Sequence[Question]) -> AnnotationSubmit:
    try:
        return AnnotationSubmit(**_common_fields(form, questions), time_spent_ms=_time_spent(form))
    except ValidationError as error:
        raise FormErrors(_schema_errors(error)) from None


def correction_from_form(form: FormLike, questions: Sequence[Question]) -> AnnotationCorrection:
    try:
        return AnnotationCorrection(**_common_fields(form, questions))
    except ValidationError as error:
        raise FormErrors(_schema_errors(error)) from None


def idempotency_key(form: FormLike) -> str | None:
    key = _first(form, "idempotency_key")
    return key.strip()[:MAX_IDEMPOTENCY_KEY] if key else None


def kept_fields(form: FormLike) -> dict[str, list[str]]:
    """The submitted values by field name, to show a refused form again exactly as the rater left it."""
    kept: dict[str, list[str]] = {}
    for key in form:
        if isinstance(key, str) and (key.startswith("q.") or key in ("rationale", "flags")):
            kept[key] = _texts(form, key)[:MAX_FIELDS_PER_QUESTION]
    return kept


def _ranking_fields(name: str, groups: Sequence[Any]) -> dict[str, list[str]]:
    fields: dict[str, list[str]] = {}
    for place, group in enumerate(groups, start=1):
        for response_id in group if isinstance(group, list | tuple) else [group]:
            fields[field(name, "rank", str(response_id))] = [str(place)]
    return fields


def _answer_fields(question: Question, value: Any) -> dict[str, list[str]]:
    name = question.name
    match question:
        case PreferenceQuestion() if isinstance(value, Mapping):
            fields = {field(name, "choice"): [str(value.get("choice"))]}
            if value.get("strength") is not None:
                fields[field(name, "strength")] = [str(value["strength"])]
            return fields
        case RankingQuestion() if isinstance(value, list | tuple):
            return _ranking_fields(name, value)
        case RatingQuestion() if isinstance(value, Mapping):
            return {field(name, "score", str(rid)): [str(score)] for rid, score in value.items()}
        case MultiLabelQuestion() if isinstance(value, list | tuple):
            return {field(name): [str(option) for option in value]}
        case LabelQuestion() | TextQuestion():
            return {field(name): [str(value)]}
    return {}


def fields_from_answers(
    questions: Sequence[Question], answers: Mapping[str, Any], rationale: str | None, flags: Sequence[str]
) -> dict[str, list[str]]:
    """The form fields that would submit these stored answers: how a correction form starts out."""
    fields: dict[str, list[str]] = {}
    for question in questions:
        if answers.get(question.name) is not None:
            fields.update(_answer_fields(question, answers[question.name]))
    if rationale:
        fields["rationale"] = [rationale]
    if flags:
        fields["flags"] = [str(flag) for flag in flags]
    return fields
