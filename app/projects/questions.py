"""A project's question schema, and the validation, gold comparison and display of raters' answers."""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Self, TypeAlias

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    RootModel,
    StrictBool,
    StrictInt,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

MAX_QUESTIONS = 20
MAX_RATING_SPAN = 20
MAX_TEXT_LENGTH = 20000
# A gold rating counts as matched when every response is scored within this many points of the gold.
RATING_TOLERANCE = 1
# Reserved preference choices; a response id can never take these values on a preference item.
TIE = "tie"
BOTH_BAD = "both_bad"

_UUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
# Past this many unknown answer names the rest are summarised in one error, so a hostile payload
# cannot make the error list as large as itself.
_MAX_UNKNOWN_REPORTED = 5

Name = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,39}$")]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Options = Annotated[list[ShortText], Field(min_length=2, max_length=50)]


def _require_unique(values: Iterable[str], what: str) -> None:
    seen: set[str] = set()
    repeated: set[str] = set()
    for value in values:
        (repeated if value in seen else seen).add(value)
    if repeated:
        raise ValueError(f"{what} must be unique; repeated: {', '.join(sorted(repeated))}")


class _QuestionBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    kind: str
    title: str = Field(default="", max_length=200)
    help: str | None = Field(default=None, max_length=2000)
    required: StrictBool = True

    @model_validator(mode="after")
    def _fill_display_text(self) -> Self:
        self.title = self.title.strip() or self.name.replace("_", " ").capitalize()
        self.help = (self.help or "").strip() or None
        return self


class StrengthScale(BaseModel):
    """How much better the chosen response is; strength values run 1..len(labels)."""

    model_config = ConfigDict(extra="forbid")

    labels: list[ShortText] = Field(min_length=2, max_length=7)

    @field_validator("labels")
    @classmethod
    def _unique_labels(cls, labels: list[str]) -> list[str]:
        _require_unique(labels, "strength labels")
        return labels


class PreferenceQuestion(_QuestionBase):
    """Which of exactly two responses is better."""

    kind: Literal["preference"] = "preference"
    allow_tie: StrictBool = True
    allow_both_bad: StrictBool = True
    strength: StrengthScale | None = None


class RankingQuestion(_QuestionBase):
    """All responses ordered best first."""

    kind: Literal["ranking"] = "ranking"
    allow_ties: StrictBool = False


class RatingQuestion(_QuestionBase):
    """A Likert score for each response."""

    kind: Literal["rating"] = "rating"
    min: StrictInt = Field(default=1, ge=-100, le=100)
    max: StrictInt = Field(default=7, ge=-100, le=100)
    # A list names every point from min up; a dict may name only some (often just the two ends).
    labels: dict[int, ShortText] | list[ShortText] | None = None
    level: Literal["ordinal", "interval"] = "ordinal"
    criterion: str | None = Field(default=None, max_length=2000)

    @model_validator(mode="after")
    def _check_scale(self) -> Self:
        if self.min >= self.max:
            raise ValueError(f"min ({self.min}) must be below max ({self.max})")
        if self.max - self.min > MAX_RATING_SPAN:
            raise ValueError(f"the scale spans {self.max - self.min}; at most {MAX_RATING_SPAN} is allowed")
        points = self.max - self.min + 1
        if isinstance(self.labels, list) and len(self.labels) != points:
            raise ValueError(f"labels has {len(self.labels)} entries but the scale has {points} points")
        if isinstance(self.labels, dict):
            outside = sorted(k for k in self.labels if not self.min <= k <= self.max)
            if outside:
                raise ValueError(f"labels for points outside {self.min}..{self.max}: {outside}")
        return self

    def label_for(self, value: int) -> str | None:
        """The label of one scale point, if it has one."""
        if isinstance(self.labels, list):
            index = value - self.min
            return self.labels[index] if 0 <= index < len(self.labels) else None
        if isinstance(self.labels, dict):
            return self.labels.get(value)
        return None


class LabelQuestion(_QuestionBase):
    """One option per item."""

    kind: Literal["label"] = "label"
    options: Options

    @field_validator("options")
    @classmethod
    def _unique_options(cls, options: list[str]) -> list[str]:
        _require_unique(options, "options")
        return options


class MultiLabelQuestion(_QuestionBase):
    """Any number of options per item, within min_selected..max_selected."""

    kind: Literal["multi_label"] = "multi_label"
    options: Options
    min_selected: StrictInt = Field(default=0, ge=0)
    max_selected: StrictInt | None = Field(default=None, ge=1)

    @field_validator("options")
    @classmethod
    def _unique_options(cls, options: list[str]) -> list[str]:
        _require_unique(options, "options")
        return options

    @model_validator(mode="after")
    def _check_bounds(self) -> Self:
        count = len(self.options)
        if self.min_selected > count:
            raise ValueError(f"min_selected ({self.min_selected}) exceeds the {count} options")
        if self.max_selected is not None:
            if self.max_selected > count:
                raise ValueError(f"max_selected ({self.max_selected}) exceeds the {count} options")
            if self.max_selected < self.min_selected:
                raise ValueError(f"max_selected ({self.max_selected}) is below min_selected")
        return self


class TextQuestion(_QuestionBase):
    """Free text; optional unless stated, since most raters skip comments."""

    kind: Literal["text"] = "text"
    required: StrictBool = False
    max_length: StrictInt = Field(default=5000, ge=1, le=MAX_TEXT_LENGTH)
    min_length: StrictInt = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _check_lengths(self) -> Self:
        if self.min_length > self.max_length:
            raise ValueError(f"min_length ({self.min_length}) exceeds max_length ({self.max_length})")
        return self


Question: TypeAlias = Annotated[
    PreferenceQuestion | RankingQuestion | RatingQuestion | LabelQuestion | MultiLabelQuestion | TextQuestion,
    Field(discriminator="kind"),
]

_MIN_RESPONSES = {"preference": 2, "ranking": 2, "rating": 1, "label": 1, "multi_label": 1, "text": 1}


class QuestionSchema(RootModel[Annotated[list[Question], Field(min_length=1, max_length=MAX_QUESTIONS)]]):
    """The ordered questions of one project."""

    @model_validator(mode="after")
    def _unique_names(self) -> Self:
        _require_unique((q.name for q in self.root), "question names")
        return self


class QuestionSchemaError(ValueError):
    """A question schema that failed validation; `errors` lists {"location", "error"} per problem."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        self.errors = errors
        super().__init__("invalid questions: " + "; ".join(f"{e['location']}: {e['error']}" for e in errors))


def _error_location(loc: tuple[int | str, ...]) -> str:
    # Pydantic puts union member names ("rating", "dict[int,str]", "[key]") into locations; a
    # project admin only needs the question index and the field.
    parts = ["questions"]
    for position, part in enumerate(loc):
        if isinstance(part, int):
            parts.append(f"[{part}]")
        elif not (position == 1 and part in _MIN_RESPONSES) and "[" not in part:
            parts.append(f".{part}")
    return "".join(parts)


_NAME_RULE = "must start with a lowercase letter and hold only a-z, 0-9 and _ (at most 40 characters)"


def _schema_errors(exc: ValidationError) -> list[dict[str, str]]:
    errors: list[dict[str, str]] = []
    for error in exc.errors():
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "string_pattern_mismatch" and error["loc"][-1] == "name":
            message = _NAME_RULE
        entry = {"location": _error_location(error["loc"]), "error": message}
        if entry not in errors:
            errors.append(entry)
    return errors


def parse_questions(raw: Any) -> list[Question]:
    """Validate questions (Python data or JSON text); raise QuestionSchemaError listing every problem."""
    try:
        if isinstance(raw, str | bytes):
            schema = QuestionSchema.model_validate_json(raw)
        else:
            schema = QuestionSchema.model_validate(raw)
    except ValidationError as exc:
        raise QuestionSchemaError(_schema_errors(exc)) from None
    return list(schema.root)


def questions_to_json(questions: Sequence[Question]) -> list[dict[str, Any]]:
    """The JSON form stored on the project; parse_questions reads it back unchanged."""
    return [question.model_dump(mode="json") for question in questions]


def min_responses_required(questions: Sequence[Question]) -> int:
    """The fewest responses an item needs for every question to make sense."""
    return max((_MIN_RESPONSES[q.kind] for q in questions), default=1)


def max_responses_allowed(questions: Sequence[Question]) -> int | None:
    """The most responses an item may have: 2 with a preference question, otherwise unbounded."""
    return 2 if any(isinstance(q, PreferenceQuestion) for q in questions) else None


# ---------------------------------------------------------------------------------------------------
# Answer validation


class AnswerError(ValueError):
    """Answers that failed validation; `errors` lists {"question", "error"} for every problem found."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{e['question']}: {e['error']}" for e in errors))


class _Invalid(Exception):
    """The problem with one answer, reported as that question's error."""


@dataclass(frozen=True)
class _Responses:
    ids: tuple[str, ...]
    id_set: frozenset[str]


def normalize_response_id(value: str) -> str:
    """Canonical UUID text is compared lower-case; any other id is opaque and kept exactly."""
    return value.lower() if _UUID_RE.fullmatch(value) else value


def _show(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _prepare_responses(questions: Sequence[Question], response_ids: Sequence[str | uuid.UUID]) -> _Responses:
    # These are faults of the item or the caller, not of the rater, hence ValueError.
    ids = tuple(normalize_response_id(str(rid)) for rid in response_ids)
    if len(set(ids)) != len(ids):
        raise ValueError("response ids must be unique")
    low, high = min_responses_required(questions), max_responses_allowed(questions)
    if len(ids) < low or (high is not None and len(ids) > high):
        bound = f"exactly {low}" if low == high else f"at least {low}"
        raise ValueError(f"these questions need {bound} responses per item, got {len(ids)}")
    if high == 2 and {TIE, BOTH_BAD} & set(ids):
        raise ValueError(f"response ids {TIE!r} and {BOTH_BAD!r} are reserved on preference items")
    return _Responses(ids, frozenset(ids))


def _resolve_id(responses: _Responses, raw: Any) -> str:
    if not isinstance(raw, str):
        raise _Invalid(f"response ids must be strings, got {_show(raw)}")
    rid = normalize_response_id(raw)
    if rid not in responses.id_set:
        raise _Invalid(f"unknown response id {_show(raw)}")
    return rid


def _whole_number(value: Any, what: str) -> int:
    # bool is an int subclass, so it must be turned away before the int check.
    if isinstance(value, bool):
        raise _Invalid(f"{what} must be a whole number, not {str(value).lower()}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    raise _Invalid(f"{what} must be a whole number, got {_show(value)}")


def _check_preference(question: PreferenceQuestion, value: Any, responses: _Responses) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise _Invalid('expected an object like {"choice": RESPONSE_ID}')
    extra = [str(key) for key in value if key not in ("choice", "strength")]
    if extra:
        raise _Invalid(f"unexpected keys: {', '.join(_show(k) for k in extra[:5])}")
    choice = value.get("choice")
    if choice is None:
        raise _Invalid("a choice is required")
    if choice == TIE and not question.allow_tie:
        raise _Invalid("a tie is not allowed for this question")
    if choice == BOTH_BAD and not question.allow_both_bad:
        raise _Invalid("'both bad' is not allowed for this question")
    picked = choice if choice in (TIE, BOTH_BAD) else _resolve_id(responses, choice)
    result: dict[str, Any] = {"choice": picked}
    # Strength is optional even where a scale exists: a rater may pick a side without grading it.
    if value.get("strength") is not None:
        result["strength"] = _check_strength(question, result["choice"], value["strength"])
    return result


def _check_strength(question: PreferenceQuestion, choice: str, value: Any) -> int:
    if choice in (TIE, BOTH_BAD):
        raise _Invalid("strength can only be given when one response is chosen")
    if question.strength is None:
        raise _Invalid("this question has no strength scale")
    strength = _whole_number(value, "strength")
    top = len(question.strength.labels)
    if not 1 <= strength <= top:
        raise _Invalid(f"strength must be between 1 and {top}, got {strength}")
    return strength


def _ranking_group(question: RankingQuestion, entry: Any, responses: _Responses) -> list[str]:
    if isinstance(entry, str):
        return [_resolve_id(responses, entry)]
    if not isinstance(entry, list | tuple):
        raise _Invalid("each entry must be a response id or a list of tied response ids")
    if not entry:
        raise _Invalid("a group of tied responses cannot be empty")
    # A one-id group is accepted even without ties, so normalised rankings validate again unchanged.
    if len(entry) > 1 and not question.allow_ties:
        raise _Invalid("ties are not allowed for this question")
    if len(entry) > len(responses.ids):
        raise _Invalid(f"a group cannot hold more than the {len(responses.ids)} responses")
    return [_resolve_id(responses, rid) for rid in entry]


def _check_ranking(question: RankingQuestion, value: Any, responses: _Responses) -> list[list[str]]:
    if not isinstance(value, list | tuple):
        raise _Invalid("expected a list of response ids, best first")
    if len(value) > len(responses.ids):
        raise _Invalid(f"expected at most {len(responses.ids)} entries, got {len(value)}")
    groups = [_ranking_group(question, entry, responses) for entry in value]
    seen: set[str] = set()
    for rid in (rid for group in groups for rid in group):
        if rid in seen:
            raise _Invalid(f"response {_show(rid)} is ranked more than once")
        seen.add(rid)
    missing = [rid for rid in responses.ids if rid not in seen]
    if missing:
        raise _Invalid(f"every response must be ranked; missing {', '.join(_show(r) for r in missing[:5])}")
    return groups


def _check_rating(question: RatingQuestion, value: Any, responses: _Responses) -> dict[str, int]:
    if not isinstance(value, Mapping):
        raise _Invalid("expected an object mapping each response id to a score")
    if len(value) > len(responses.ids):
        raise _Invalid(f"expected a score for each of the {len(responses.ids)} responses, got {len(value)}")
    scores: dict[str, int] = {}
    for raw_id, raw_score in value.items():
        rid = _resolve_id(responses, raw_id)
        if rid in scores:
            raise _Invalid(f"response {_show(rid)} is scored more than once")
        score = _whole_number(raw_score, f"the score for {_show(raw_id)}")
        if not question.min <= score <= question.max:
            raise _Invalid(f"the score for {_show(raw_id)} must be between {question.min} and {question.max}")
        scores[rid] = score
    missing = [rid for rid in responses.ids if rid not in scores]
    if missing:
        raise _Invalid(f"every response must be scored; missing {', '.join(_show(r) for r in missing[:5])}")
    return {rid: scores[rid] for rid in responses.ids}


def _check_option(options: Sequence[str], value: Any) -> str:
    if not isinstance(value, str):
        raise _Invalid(f"expected one of the options as text, got {_show(value)}")
    option = value.strip()
    if option not in options:
        raise _Invalid(f"{_show(value)} is not one of the options")
    return option


def _check_multi_label(question: MultiLabelQuestion, value: Any) -> list[str]:
    if not isinstance(value, list | tuple):
        raise _Invalid("expected a list of options")
    if len(value) > len(question.options):
        raise _Invalid(f"expected at most {len(question.options)} options, got {len(value)}")
    chosen: set[str] = set()
    for entry in value:
        option = _check_option(question.options, entry)
        if option in chosen:
            raise _Invalid(f"{_show(option)} is selected more than once")
        chosen.add(option)
    if len(chosen) < question.min_selected:
        raise _Invalid(f"select at least {_plural(question.min_selected, 'option')}")
    if question.max_selected is not None and len(chosen) > question.max_selected:
        raise _Invalid(f"select at most {_plural(question.max_selected, 'option')}")
    # Options come back in the schema's order, so equal selections store identically.
    return [option for option in question.options if option in chosen]


def _check_text(question: TextQuestion, value: Any) -> str | None:
    if not isinstance(value, str):
        raise _Invalid(f"expected text, got {_show(value)}")
    # PostgreSQL text and JSON columns cannot store NUL.
    if "\x00" in value:
        raise _Invalid("text cannot contain NUL characters")
    text = value.strip()
    if not text:
        if question.required:
            raise _Invalid("an answer is required")
        return None
    if len(text) < question.min_length:
        raise _Invalid(f"must be at least {_plural(question.min_length, 'character')}, got {len(text)}")
    if len(text) > question.max_length:
        raise _Invalid(f"must be at most {_plural(question.max_length, 'character')}, got {len(text)}")
    return text


def _check_answer(question: Question, value: Any, responses: _Responses) -> Any:
    """The normalised answer, or None where an optional text answer is blank."""
    match question:
        case PreferenceQuestion():
            return _check_preference(question, value, responses)
        case RankingQuestion():
            return _check_ranking(question, value, responses)
        case RatingQuestion():
            return _check_rating(question, value, responses)
        case LabelQuestion():
            return _check_option(question.options, value)
        case MultiLabelQuestion():
            return _check_multi_label(question, value)
        case TextQuestion():
            return _check_text(question, value)


def _unknown_name_errors(questions: Sequence[Question], answers: Mapping[Any, Any]) -> list[dict[str, Any]]:
    known = {q.name for q in questions}
    unknown = [key for key in answers if key not in known]
    errors: list[dict[str, Any]] = [
        {"question": str(key)[:60], "error": "no such question"} for key in unknown
    ]
    if len(errors) > _MAX_UNKNOWN_REPORTED:
        rest = len(errors) - _MAX_UNKNOWN_REPORTED
        errors = errors[:_MAX_UNKNOWN_REPORTED]
        errors.append({"question": None, "error": f"and {rest} more answers to no such question"})
    return errors


def validate_answers(
    questions: Sequence[Question], answers: Mapping[str, Any], response_ids: Sequence[str | uuid.UUID]
) -> dict[str, Any]:
    """Check one rater's answers to one item and return them normalised and JSON-ready.

    Optional questions that are absent, null or (for text) blank are left out of the result.
    Raises AnswerError listing every problem; raises ValueError when the item itself does not fit
    the questions (wrong number of responses, duplicate ids).
    """
    responses = _prepare_responses(questions, response_ids)
    if not isinstance(answers, Mapping):
        raise AnswerError([{"question": None, "error": "answers must be an object keyed by question name"}])
    errors = _unknown_name_errors(questions, answers)
    normalised: dict[str, Any] = {}
    for question in questions:
        value = answers.get(question.name)
        try:
            if value is None:
                if question.required:
                    raise _Invalid("an answer is required")
                continue
            result = _check_answer(question, value, responses)
        except _Invalid as exc:
            errors.append({"question": question.name, "error": str(exc)})
            continue
        if result is not None:
            normalised[question.name] = result
    if errors:
        raise AnswerError(errors)
    return normalised


# ---------------------------------------------------------------------------------------------------
# Gold comparison


def _ranking_key(value: Any) -> list[frozenset[str]] | None:
    # Order inside a tie group carries no meaning, so groups compare as sets.
    if not isinstance(value, list | tuple):
        return None
    groups = [list(g) if isinstance(g, list | tuple) else [g] for g in value]
    if not all(isinstance(rid, str) for group in groups for rid in group):
        return None
    return [frozenset(group) for group in groups]


def _ratings_close(given: Any, expected: Any) -> bool:
    if not isinstance(given, Mapping) or not isinstance(expected, Mapping) or given.keys() != expected.keys():
        return False
    for rid, gold in expected.items():
        score = given[rid]
        numbers = (score, gold)
        if any(isinstance(n, bool) or not isinstance(n, int | float) for n in numbers):
            return False
        if abs(score - gold) > RATING_TOLERANCE:
            return False
    return True


def _choice(value: Any) -> Any:
    return value.get("choice") if isinstance(value, Mapping) else None


def answer_matches_gold(question: Question, given: Any, expected: Any) -> bool | None:
    """Whether a normalised answer agrees with the gold one; None where the question is not gradable.

    preference: same choice, strength ignored. ranking: the same ordering exactly, tie groups compared
    as sets (partial credit belongs to agreement statistics, not to a pass/fail gold check).
    rating: every response within RATING_TOLERANCE. label: equal. multi_label: the same set.
    text, or a gold value of None: not gradable.
    """
    if isinstance(question, TextQuestion) or expected is None:
        return None
    if given is None:
        return False
    match question:
        case PreferenceQuestion():
            return _choice(expected) is not None and _choice(given) == _choice(expected)
        case RankingQuestion():
            key = _ranking_key(expected)
            return key is not None and _ranking_key(given) == key
        case RatingQuestion():
            return _ratings_close(given, expected)
        case LabelQuestion():
            return bool(given == expected)
        case MultiLabelQuestion():
            both_lists = isinstance(given, list | tuple) and isinstance(expected, list | tuple)
            return both_lists and set(given) == set(expected)
    return None


def score_against_gold(
    questions: Sequence[Question], given_answers: Mapping[str, Any], gold_answers: Mapping[str, Any]
) -> tuple[int, int, list[dict[str, Any]]]:
    """(matched, graded, details) over the questions the gold answers; details keep question order.

    Each detail is {"question", "matched", "expected", "given"}; "matched" is None for questions that
    are not gradable (text), which count in neither total. Gold entries for unknown questions are ignored.
    """
    matched = graded = 0
    details: list[dict[str, Any]] = []
    for question in questions:
        expected = gold_answers.get(question.name)
        if expected is None:
            continue
        given = given_answers.get(question.name)
        result = answer_matches_gold(question, given, expected)
        details.append({"question": question.name, "matched": result, "expected": expected, "given": given})
        if result is not None:
            graded += 1
            matched += int(result)
    return matched, graded, details


# ---------------------------------------------------------------------------------------------------
# Display


def _shorten(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _describe_preference(question: PreferenceQuestion, value: Any, labels: Mapping[str, str]) -> str:
    choice = _choice(value)
    if choice == TIE:
        return "tie: neither is better"
    if choice == BOTH_BAD:
        return "both are bad"
    text = f"{labels.get(str(choice), str(choice))} is better"
    strength = value.get("strength") if isinstance(value, Mapping) else None
    scale = question.strength
    if scale is not None and isinstance(strength, int) and 1 <= strength <= len(scale.labels):
        text += f" ({scale.labels[strength - 1]})"
    return text


def _describe_rating(question: RatingQuestion, value: Mapping[str, Any], labels: Mapping[str, str]) -> str:
    order = {rid: position for position, rid in enumerate(labels)}
    parts = []
    for rid in sorted(value, key=lambda r: order.get(r, len(order))):
        score = value[rid]
        point = question.label_for(score) if isinstance(score, int) else None
        parts.append(f"{labels.get(rid, rid)}: {score}" + (f" ({point})" if point else ""))
    return ", ".join(parts)


def describe_answer(question: Question, value: Any, response_labels: Mapping[str, str]) -> str:
    """A normalised answer in the rater's screen terms, e.g. "B is better (significantly better)"."""
    if value is None:
        return "no answer"
    match question:
        case PreferenceQuestion():
            return _describe_preference(question, value, response_labels)
        case RankingQuestion():
            groups = _ranking_key(value) or []
            ordered = [sorted(response_labels.get(r, r) for r in group) for group in groups]
            return " > ".join(" = ".join(group) for group in ordered)
        case RatingQuestion():
            return _describe_rating(question, value, response_labels)
        case LabelQuestion():
            return str(value)
        case MultiLabelQuestion():
            return ", ".join(value) if value else "none selected"
        case TextQuestion():
            return _shorten(str(value))
