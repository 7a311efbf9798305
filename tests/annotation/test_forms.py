"""Reshaping the annotate form into answers, and stored answers back into form fields."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.datastructures import FormData, UploadFile

from app.annotation import forms
from app.projects.questions import parse_questions, validate_answers

A, B, C = (
    "aaaaaaaa-0000-0000-0000-000000000001",
    "bbbbbbbb-0000-0000-0000-000000000002",
    "cccccccc-0003-0000-0000-000000000003",
)

QUESTIONS = parse_questions(
    [
        {"name": "overall", "kind": "preference", "strength": {"labels": ["a bit", "clearly", "much"]}},
        {"name": "helpfulness", "kind": "rating", "min": 1, "max": 7, "required": False},
        {"name": "topic", "kind": "label", "options": ["code", "math", "chat"], "required": False},
        {"name": "issues", "kind": "multi_label", "options": ["verbose", "wrong", "rude"], "required": False},
        {"name": "why", "kind": "text"},
    ]
)
RANKING = parse_questions([{"name": "order", "kind": "ranking", "allow_ties": True}])


def form(*pairs: tuple[str, Any]) -> FormData:
    return FormData(list(pairs))


class TestAnswersFromForm:
    def test_every_kind_is_reshaped(self) -> None:
        submitted = form(
            ("q.overall.choice", A),
            ("q.overall.strength", "2"),
            (f"q.helpfulness.score.{A}", "6"),
            (f"q.helpfulness.score.{B}", "3"),
            ("q.topic", "code"),
            ("q.issues", "verbose"),
            ("q.issues", "rude"),
            ("q.why", "  A shows its work  "),
        )
        assert forms.answers_from_form(submitted, QUESTIONS) == {
            "overall": {"choice": A, "strength": 2},
            "helpfulness": {A: 6, B: 3},
            "topic": "code",
            "issues": ["verbose", "rude"],
            "why": "  A shows its work  ",
        }

    def test_unanswered_questions_are_left_out(self) -> None:
        submitted = form(
            ("q.overall.choice", ""), ("q.why", "   "), ("q.topic", ""), (f"q.helpfulness.score.{A}", "")
        )
        assert forms.answers_from_form(submitted, QUESTIONS) == {}

    def test_tie_without_strength(self) -> None:
        assert forms.answers_from_form(form(("q.overall.choice", "tie")), QUESTIONS) == {
            "overall": {"choice": "tie"}
        }

    def test_values_that_are_not_numbers_pass_through_for_the_service_to_refuse(self) -> None:
        submitted = form(
            ("q.overall.choice", A), ("q.overall.strength", "lots"), (f"q.helpfulness.score.{A}", "7.5")
        )
        answers = forms.answers_from_form(submitted, QUESTIONS)
        assert answers["overall"] == {"choice": A, "strength": "lots"}
        assert answers["helpfulness"] == {A: "7.5"}
        with pytest.raises(Exception) as refused:
            validate_answers(QUESTIONS, answers, [A, B])
        assert "strength must be a whole number" in str(refused.value)

    def test_ids_are_not_checked_here(self) -> None:
        answers = forms.answers_from_form(form(("q.overall.choice", "not-a-response")), QUESTIONS)
        assert answers == {"overall": {"choice": "not-a-response"}}

    def test_fields_of_unknown_questions_and_uploads_are_ignored(self) -> None:
        upload = UploadFile(file=None, filename="x.txt")  # type: ignore[arg-type]
        submitted = form(("q.nosuch", "x"), ("q.why", upload), ("q.topic", "math"))
        assert forms.answers_from_form(submitted, QUESTIONS) == {"topic": "math"}


class TestRanking:
    def test_places_become_an_ordering_best_first(self) -> None:
        submitted = form((f"q.order.rank.{A}", "3"), (f"q.order.rank.{B}", "1"), (f"q.order.rank.{C}", "2"))
        assert forms.answers_from_form(submitted, RANKING) == {"order": [B, C, A]}

    def test_equal_places_form_a_tie_group(self) -> None:
        submitted = form((f"q.order.rank.{A}", "1"), (f"q.order.rank.{B}", "2"), (f"q.order.rank.{C}", "1"))
        assert forms.answers_from_form(submitted, RANKING) == {"order": [[A, C], B]}
        assert validate_answers(RANKING, {"order": [[A, C], B]}, [A, B, C]) == {"order": [[A, C], [B]]}

    def test_unplaced_responses_are_left_for_the_service_to_report(self) -> None:
        submitted = form((f"q.order.rank.{A}", "1"), (f"q.order.rank.{B}", ""))
        assert forms.answers_from_form(submitted, RANKING) == {"order": [A]}

    def test_a_place_that_is_not_a_number_is_a_form_error(self) -> None:
        with pytest.raises(forms.FormErrors) as refused:
            forms.answers_from_form(form((f"q.order.rank.{A}", "first")), RANKING)
        assert refused.value.details == [{"question": "order", "error": "place 'first' is not a number"}]


class TestSubmission:
    def test_common_fields(self) -> None:
        submitted = form(
            ("q.overall.choice", B),
            ("q.why", "because"),
            ("rationale", "  B is shorter  "),
            ("flags", "pii"),
            ("flags", "unsafe"),
            ("flags", "pii"),
            ("time_spent_ms", "12345"),
            ("idempotency_key", " key-1 "),
            ("csrf_token", "ignored"),
        )
        body = forms.submission_from_form(submitted, QUESTIONS)
        assert body.answers == {"overall": {"choice": B}, "why": "because"}
        assert body.rationale == "B is shorter"
        assert body.flags == ["pii", "unsafe"]
        assert body.time_spent_ms == 12345
        assert forms.idempotency_key(submitted) == "key-1"

    @pytest.mark.parametrize("raw", ["", "soon", "-5", str(25 * 3600 * 1000)])
    def test_an_implausible_time_is_dropped_not_refused(self, raw: str) -> None:
        body = forms.submission_from_form(form(("q.why", "x"), ("time_spent_ms", raw)), QUESTIONS)
        assert body.time_spent_ms is None

    def test_an_unknown_flag_is_a_form_error(self) -> None:
        with pytest.raises(forms.FormErrors) as refused:
            forms.submission_from_form(form(("flags", "boring")), QUESTIONS)
        assert refused.value.details[0]["question"] == "flags"

    def test_an_overlong_rationale_is_a_form_error(self) -> None:
        with pytest.raises(forms.FormErrors) as refused:
            forms.submission_from_form(form(("rationale", "x" * 20_001)), QUESTIONS)
        assert refused.value.details[0]["question"] == "rationale"

    def test_correction_has_no_time(self) -> None:
        body = forms.correction_from_form(
            form(("q.overall.choice", "tie"), ("time_spent_ms", "5")), QUESTIONS
        )
        assert body.answers == {"overall": {"choice": "tie"}}
        assert not hasattr(body, "time_spent_ms")

    def test_missing_key_is_none(self) -> None:
        assert forms.idempotency_key(form()) is None
        assert forms.idempotency_key(form(("idempotency_key", "k" * 500))) == "k" * 200


class TestKeptAndStoredFields:
    def test_kept_fields_hold_only_answers(self) -> None:
        submitted = form(
            ("csrf_token", "t"),
            ("q.issues", "wrong"),
            ("q.issues", "rude"),
            ("flags", "pii"),
            ("rationale", "r"),
        )
        assert forms.kept_fields(submitted) == {
            "q.issues": ["wrong", "rude"],
            "flags": ["pii"],
            "rationale": ["r"],
        }

    def test_stored_answers_round_trip_through_the_form(self) -> None:
        stored = validate_answers(
            QUESTIONS,
            {
                "overall": {"choice": A, "strength": 3},
                "helpfulness": {A: 2, B: 5},
                "topic": "chat",
                "issues": ["wrong"],
                "why": "clear",
            },
            [A, B],
        )
        fields = forms.fields_from_answers(QUESTIONS, stored, "note", ["unsafe"])
        assert fields["q.overall.choice"] == [A] and fields["q.overall.strength"] == ["3"]
        assert fields["rationale"] == ["note"] and fields["flags"] == ["unsafe"]
        again = form(*((name, value) for name, values in fields.items() for value in values))
        assert validate_answers(QUESTIONS, forms.answers_from_form(again, QUESTIONS), [A, B]) == stored

    def test_stored_ranking_with_ties_round_trips(self) -> None:
        stored = validate_answers(RANKING, {"order": [[B, C], A]}, [A, B, C])
        fields = forms.fields_from_answers(RANKING, stored, None, [])
        assert fields == {f"q.order.rank.{B}": ["1"], f"q.order.rank.{C}": ["1"], f"q.order.rank.{A}": ["2"]}
        again = form(*((name, values[0]) for name, values in fields.items()))
        assert validate_answers(RANKING, forms.answers_from_form(again, RANKING), [A, B, C]) == stored
