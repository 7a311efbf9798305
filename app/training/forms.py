"""The gold-answer and qualification-settings forms of the training page: form fields to answers and back."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from app.projects.questions import (
    LabelQuestion,
    MultiLabelQuestion,
    PreferenceQuestion,
    Question,
    RankingQuestion,
    RatingQuestion,
)
from app.projects.schemas import ProjectUpdate

# Shares are edited as percentages, which is how admins talk about them; the project stores fractions.
PERCENT_FIELDS = ("qualification_threshold", "gold_rate", "gold_pause_threshold")
NUMBER_FIELDS = ("qualification_cooldown_minutes", "gold_min_answers", "min_seconds_per_item")
MAX_FIELD_CHARS = 200


def letters(count: int) -> list[str]:
    return [chr(ord("A") + i) for i in range(count)]


def field_name(question: Question, part: str | None = None) -> str:
    return f"q.{question.name}" + (f".{part}" if part else "")


def gold_form_values(
    questions: Sequence[Question], answers: Mapping[str, Any], response_ids: Sequence[str]
) -> dict[str, Any]:
    """The current gold answers as the form shows them: responses by letter, in stored order."""
    letter = dict(zip(response_ids, letters(len(response_ids)), strict=True))
    values: dict[str, Any] = {}
    for question in questions:
        value = answers.get(question.name)
        if value is None:
            continue
        match question:
            case PreferenceQuestion():
                choice = value.get("choice")
                values[field_name(question)] = letter.get(choice, choice)
                if value.get("strength") is not None:
                    values[field_name(question, "strength")] = str(value["strength"])
            case RatingQuestion():
                for rid, score in value.items():
                    values[field_name(question, letter.get(rid, rid))] = str(score)
            case RankingQuestion():
                groups = [g if isinstance(g, list) else [g] for g in value]
                values[field_name(question)] = " > ".join(
                    " = ".join(letter.get(str(r), str(r)) for r in group) for group in groups
                )
            case LabelQuestion():
                values[field_name(question)] = value
            case MultiLabelQuestion():
                values[field_name(question)] = list(value)
    return values


def _ranking(text: str, by_letter: Mapping[str, str]) -> list[list[str]]:
    groups = [g for g in (part.strip() for part in text.split(">")) if g]
    return [[by_letter.get(r.strip().upper(), r.strip()) for r in group.split("=")] for group in groups]


def _rating(question: RatingQuestion, form: Mapping[str, list[str]], by_letter: Mapping[str, str]) -> Any:
    scores: dict[str, Any] = {}
    for name, rid in by_letter.items():
        raw = (form.get(field_name(question, name)) or [""])[0].strip()[:MAX_FIELD_CHARS]
        if raw:
            # Left as text when it is not a number, so the answer check names the bad value.
            scores[rid] = int(raw) if raw.lstrip("-").isdigit() else raw
    return scores or None


def gold_from_form(
    questions: Sequence[Question], form: Mapping[str, list[str]], response_ids: Sequence[str]
) -> dict[str, Any]:
    """Gold answers from the form; blank questions are left out, and the answer check judges the rest."""
    by_letter = dict(zip(letters(len(response_ids)), response_ids, strict=True))
    answers: dict[str, Any] = {}
    for question in questions:
        first = (form.get(field_name(question)) or [""])[0].strip()[:MAX_FIELD_CHARS]
        value: Any = None
        match question:
            case PreferenceQuestion() if first:
                value = {"choice": by_letter.get(first, first)}
                strength = (form.get(field_name(question, "strength")) or [""])[0].strip()
                if strength.isdigit():
                    value["strength"] = int(strength)
            case RatingQuestion():
                value = _rating(question, form, by_letter)
            case RankingQuestion() if first:
                value = _ranking(first, by_letter)
            case LabelQuestion() if first:
                value = first
            case MultiLabelQuestion():
                picked = [v for v in form.get(field_name(question), []) if v]
                value = picked or None
        if value is not None:
            answers[question.name] = value
    return answers


# A field's error: an English sentence with %(name)s fields and its values, translated where it is shown.
FieldError = tuple[str, dict[str, str]]


def settings_from_form(form: Mapping[str, list[str]]) -> tuple[ProjectUpdate | None, dict[str, FieldError]]:
    """The qualification settings as a ProjectUpdate, or the errors by field name."""
    # An unticked checkbox sends nothing; an empty value counts as unticked too.
    data: dict[str, Any] = {"require_qualification": any(form.get("require_qualification", []))}
    errors: dict[str, FieldError] = {}
    for name in (*PERCENT_FIELDS, *NUMBER_FIELDS):
        raw = (form.get(name) or [""])[0].strip()[:MAX_FIELD_CHARS]
        try:
            number = float(raw)
        except ValueError:
            errors[name] = ("Enter a number.", {})
            continue
        if name in PERCENT_FIELDS:
            data[name] = number / 100
        elif name == "min_seconds_per_item":
            data[name] = number
        elif number.is_integer():
            data[name] = int(number)
        else:
            errors[name] = ("Enter a whole number.", {})
    if errors:
        return None, errors
    try:
        return ProjectUpdate.model_validate(data), {}
    except ValidationError as error:
        return None, {str(e["loc"][0]): _bound_message(str(e["loc"][0]), e) for e in error.errors()}


def _bound_message(name: str, error: Any) -> FieldError:
    context = error.get("ctx") or {}
    scale = 100 if name in PERCENT_FIELDS else 1
    unit = "%" if name in PERCENT_FIELDS else ""
    if "ge" in context:
        return "Must be at least %(value)s.", {"value": f"{context['ge'] * scale:g}{unit}"}
    if "le" in context:
        return "Must be at most %(value)s.", {"value": f"{context['le'] * scale:g}{unit}"}
    return "Invalid value.", {}
