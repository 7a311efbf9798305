"""Tests for the question schema, answer validation, gold comparison and answer display."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from app.projects.questions import (
    AnswerError,
    LabelQuestion,
    MultiLabelQuestion,
    PreferenceQuestion,
    Question,
    QuestionSchemaError,
    RankingQuestion,
    RatingQuestion,
    StrengthScale,
    TextQuestion,
    answer_matches_gold,
    describe_answer,
    max_responses_allowed,
    min_responses_required,
    normalize_response_id,
    parse_questions,
    questions_to_json,
    score_against_gold,
    validate_answers,
)

A = "6f1c2a9e-0b7d-4c1e-9a51-2f3b4c5d6e7f"
B = "0a9b8c7d-6e5f-4a3b-8c1d-0e9f8a7b6c5d"
C = "c0ffee00-1234-4abc-8def-0123456789ab"
PAIR = [A, B]
TRIO = [A, B, C]
SCREEN = {A: "A", B: "B", C: "C"}
LLAMA_STRENGTH = ["negligibly better", "slightly better", "better", "significantly better"]


def schema_errors(raw: Any) -> list[dict[str, str]]:
    with pytest.raises(QuestionSchemaError) as info:
        parse_questions(raw)
    return info.value.errors


def answer_errors(questions: list[Question], answers: Any, response_ids: list[str]) -> dict[str | None, str]:
    with pytest.raises(AnswerError) as info:
        validate_answers(questions, answers, response_ids)
    return {e["question"]: e["error"] for e in info.value.errors}


def preference(**extra: Any) -> PreferenceQuestion:
    return PreferenceQuestion(name="overall", **extra)


class TestParseQuestions:
    def test_full_project_parses_into_typed_questions_with_defaults(self) -> None:
        questions = parse_questions(
            [
                {"name": "overall", "kind": "preference", "strength": {"labels": LLAMA_STRENGTH}},
                {"name": "helpfulness", "kind": "rating", "labels": {"1": "awful", "7": "great"}},
                {"name": "topic", "kind": "label", "options": ["code", "chat"]},
                {"name": "issues", "kind": "multi_label", "options": ["unsafe", "wrong"], "max_selected": 2},
                {"name": "ordering", "kind": "ranking", "allow_ties": True},
                {"name": "comment", "kind": "text"},
            ]
        )
        assert [type(q) for q in questions] == [
            PreferenceQuestion,
            RatingQuestion,
            LabelQuestion,
            MultiLabelQuestion,
            RankingQuestion,
            TextQuestion,
        ]
        pref, rating, _, _, _, comment = questions
        assert isinstance(pref, PreferenceQuestion) and pref.strength is not None
        assert pref.strength.labels == LLAMA_STRENGTH
        assert pref.title == "Overall" and pref.required is True and pref.allow_tie is True
        assert isinstance(rating, RatingQuestion)
        assert rating.labels == {1: "awful", 7: "great"} and (rating.min, rating.max) == (1, 7)
        assert rating.level == "ordinal"
        assert isinstance(comment, TextQuestion)
        assert comment.required is False and comment.max_length == 5000

    def test_title_defaults_from_name_and_blank_help_becomes_none(self) -> None:
        (question,) = parse_questions(
            [{"name": "factual_accuracy", "kind": "text", "title": "  ", "help": " "}]
        )
        assert question.title == "Factual accuracy"
        assert question.help is None

    def test_json_text_is_accepted(self) -> None:
        (question,) = parse_questions(json.dumps([{"name": "topic", "kind": "label", "options": ["a", "b"]}]))
        assert isinstance(question, LabelQuestion) and question.options == ["a", "b"]

    def test_options_are_stripped(self) -> None:
        (question,) = parse_questions([{"name": "topic", "kind": "label", "options": [" a ", "b"]}])
        assert isinstance(question, LabelQuestion) and question.options == ["a", "b"]

    def test_duplicate_names_rejected(self) -> None:
        errors = schema_errors(
            [{"name": "q", "kind": "text"}, {"name": "q", "kind": "label", "options": ["a", "b"]}]
        )
        assert errors == [{"location": "questions", "error": "question names must be unique; repeated: q"}]

    def test_strength_scale_with_one_label_rejected(self) -> None:
        errors = schema_errors([{"name": "q", "kind": "preference", "strength": {"labels": ["better"]}}])
        assert errors[0]["location"] == "questions[0].strength.labels"
        assert "at least 2 items" in errors[0]["error"]

    def test_strength_scale_with_eight_labels_rejected(self) -> None:
        labels = [f"level {i}" for i in range(8)]
        errors = schema_errors([{"name": "q", "kind": "preference", "strength": {"labels": labels}}])
        assert "at most 7 items" in errors[0]["error"]

    def test_strength_scale_with_repeated_label_rejected(self) -> None:
        errors = schema_errors([{"name": "q", "kind": "preference", "strength": {"labels": ["x", "x"]}}])
        assert errors[0]["error"] == "strength labels must be unique; repeated: x"

    @pytest.mark.parametrize(("low", "high"), [(5, 5), (7, 1)])
    def test_rating_min_not_below_max_rejected(self, low: int, high: int) -> None:
        errors = schema_errors([{"name": "q", "kind": "rating", "min": low, "max": high}])
        assert errors == [{"location": "questions[0]", "error": f"min ({low}) must be below max ({high})"}]

    def test_rating_span_over_twenty_rejected(self) -> None:
        errors = schema_errors([{"name": "q", "kind": "rating", "min": 0, "max": 21}])
        assert errors[0]["error"] == "the scale spans 21; at most 20 is allowed"

    def test_rating_span_of_twenty_accepted(self) -> None:
        (question,) = parse_questions([{"name": "q", "kind": "rating", "min": -10, "max": 10}])
        assert isinstance(question, RatingQuestion) and question.max - question.min == 20

    def test_rating_label_list_must_cover_every_point(self) -> None:
        errors = schema_errors(
            [{"name": "q", "kind": "rating", "min": 1, "max": 5, "labels": ["a", "b", "c"]}]
        )
        assert errors[0]["error"] == "labels has 3 entries but the scale has 5 points"

    def test_rating_label_dict_outside_scale_rejected(self) -> None:
        errors = schema_errors(
            [{"name": "q", "kind": "rating", "max": 5, "labels": {"0": "zero", "9": "nine"}}]
        )
        assert errors[0]["error"] == "labels for points outside 1..5: [0, 9]"

    def test_rating_bool_bound_rejected(self) -> None:
        errors = schema_errors([{"name": "q", "kind": "rating", "min": True}])
        assert errors[0]["location"] == "questions[0].min"

    def test_label_duplicate_options_rejected_after_stripping(self) -> None:
        errors = schema_errors([{"name": "q", "kind": "label", "options": ["yes", "no", "yes "]}])
        assert errors[0] == {
            "location": "questions[0].options",
            "error": "options must be unique; repeated: yes",
        }

    def test_label_needs_two_options(self) -> None:
        errors = schema_errors([{"name": "q", "kind": "label", "options": ["only"]}])
        assert "at least 2 items" in errors[0]["error"]

    def test_label_blank_or_long_option_rejected(self) -> None:
        errors = schema_errors([{"name": "q", "kind": "label", "options": ["  ", "x" * 101]}])
        assert {e["location"] for e in errors} == {"questions[0].options[0]", "questions[0].options[1]"}

    def test_multi_label_bounds_checked(self) -> None:
        errors = schema_errors(
            [
                {
                    "name": "q",
                    "kind": "multi_label",
                    "options": ["a", "b"],
                    "min_selected": 2,
                    "max_selected": 1,
                }
            ]
        )
        assert errors[0]["error"] == "max_selected (1) is below min_selected"
        errors = schema_errors(
            [{"name": "q", "kind": "multi_label", "options": ["a", "b"], "min_selected": 3}]
        )
        assert errors[0]["error"] == "min_selected (3) exceeds the 2 options"

    def test_text_limits_checked(self) -> None:
        errors = schema_errors([{"name": "q", "kind": "text", "max_length": 20001}])
        assert errors[0]["location"] == "questions[0].max_length"
        errors = schema_errors([{"name": "q", "kind": "text", "min_length": 10, "max_length": 5}])
        assert errors[0]["error"] == "min_length (10) exceeds max_length (5)"

    def test_twenty_one_questions_rejected(self) -> None:
        errors = schema_errors([{"name": f"q{i}", "kind": "text"} for i in range(21)])
        assert errors == [
            {"location": "questions", "error": "List should have at most 20 items after validation, not 21"}
        ]

    def test_twenty_questions_accepted(self) -> None:
        assert len(parse_questions([{"name": f"q{i}", "kind": "text"} for i in range(20)])) == 20

    def test_empty_list_rejected(self) -> None:
        assert "at least 1 item" in schema_errors([])[0]["error"]

    def test_unknown_kind_rejected(self) -> None:
        errors = schema_errors([{"name": "q", "kind": "essay"}])
        assert errors[0]["location"] == "questions[0]"
        assert (
            "'essay'" in errors[0]["error"]
            and "does not match any of the expected tags" in errors[0]["error"]
        )

    def test_missing_kind_rejected(self) -> None:
        assert "discriminator 'kind'" in schema_errors([{"name": "q"}])[0]["error"]

    def test_extra_keys_rejected_at_every_level(self) -> None:
        errors = schema_errors(
            [
                {"name": "q", "kind": "text", "placeholder": "x"},
                {"name": "p", "kind": "preference", "strength": {"labels": ["a", "b"], "colour": "red"}},
            ]
        )
        assert {e["location"] for e in errors} == {"questions[0].placeholder", "questions[1].strength.colour"}
        assert all(e["error"] == "Extra inputs are not permitted" for e in errors)

    @pytest.mark.parametrize("name", ["Overall", "1st", "has space", "_x", "x" * 41, "", "q\n"])
    def test_bad_names_rejected(self, name: str) -> None:
        errors = schema_errors([{"name": name, "kind": "text"}])
        assert errors[0]["location"] == "questions[0].name"
        assert errors[0]["error"].startswith("must start with a lowercase letter")

    def test_string_bool_for_required_rejected(self) -> None:
        errors = schema_errors([{"name": "q", "kind": "text", "required": "yes"}])
        assert errors[0]["location"] == "questions[0].required"

    def test_too_long_title_and_help_rejected(self) -> None:
        errors = schema_errors([{"name": "q", "kind": "text", "title": "t" * 201, "help": "h" * 2001}])
        assert {e["location"] for e in errors} == {"questions[0].title", "questions[0].help"}

    def test_every_problem_is_reported(self) -> None:
        errors = schema_errors([{"name": "Bad", "kind": "text"}, {"name": "q", "kind": "rating", "min": 9}])
        assert [e["location"] for e in errors] == ["questions[0].name", "questions[1]"]

    def test_invalid_json_text_rejected_cleanly(self) -> None:
        assert schema_errors("[{")[0]["error"].startswith("Invalid JSON")

    def test_error_is_a_value_error_with_readable_message(self) -> None:
        with pytest.raises(ValueError, match=r"questions\[0\]\.options: options must be unique"):
            parse_questions([{"name": "q", "kind": "label", "options": ["a", "a"]}])


class TestQuestionsToJson:
    def test_round_trips_through_json_text(self) -> None:
        questions = parse_questions(
            [
                {"name": "overall", "kind": "preference", "strength": {"labels": LLAMA_STRENGTH}},
                {
                    "name": "quality",
                    "kind": "rating",
                    "min": 0,
                    "max": 4,
                    "labels": {"0": "bad", "4": "good"},
                },
                {"name": "quality_named", "kind": "rating", "max": 3, "labels": ["low", "mid", "high"]},
                {"name": "comment", "kind": "text", "required": True},
            ]
        )
        stored = json.loads(json.dumps(questions_to_json(questions)))
        assert parse_questions(stored) == questions
        assert stored[1]["labels"] == {"0": "bad", "4": "good"}
        assert stored[0]["kind"] == "preference" and stored[3]["required"] is True


class TestMinResponsesRequired:
    def test_preference_needs_two(self) -> None:
        assert min_responses_required([preference(), TextQuestion(name="c")]) == 2

    def test_ranking_needs_two(self) -> None:
        assert min_responses_required([RankingQuestion(name="r")]) == 2

    def test_rating_label_and_text_need_one(self) -> None:
        questions: list[Question] = [
            RatingQuestion(name="r"),
            LabelQuestion(name="l", options=["a", "b"]),
            TextQuestion(name="t"),
        ]
        assert min_responses_required(questions) == 1


class TestMaxResponsesAllowed:
    def test_preference_caps_at_two(self) -> None:
        assert max_responses_allowed([RatingQuestion(name="r"), preference()]) == 2

    def test_without_preference_there_is_no_cap(self) -> None:
        assert max_responses_allowed([RankingQuestion(name="r"), RatingQuestion(name="s")]) is None


class TestNormalizeResponseId:
    def test_uuid_is_lower_cased(self) -> None:
        assert normalize_response_id(A.upper()) == A

    def test_other_ids_are_opaque(self) -> None:
        assert normalize_response_id("Resp-A") == "Resp-A"
        assert normalize_response_id(uuid.UUID(A).hex.upper()) == uuid.UUID(A).hex.upper()


class TestValidateAnswers:
    def test_valid_answers_are_normalised(self) -> None:
        questions: list[Question] = [preference(), TextQuestion(name="comment")]
        result = validate_answers(questions, {"overall": {"choice": B.upper()}, "comment": "  fine  "}, PAIR)
        assert result == {"overall": {"choice": B}, "comment": "fine"}
        json.dumps(result)

    def test_uuid_objects_accepted_as_response_ids(self) -> None:
        result = validate_answers([preference()], {"overall": {"choice": A}}, [uuid.UUID(A), uuid.UUID(B)])
        assert result == {"overall": {"choice": A}}

    def test_unknown_question_names_rejected(self) -> None:
        errors = answer_errors([preference()], {"overall": {"choice": A}, "extra": 1}, PAIR)
        assert errors == {"extra": "no such question"}

    def test_flood_of_unknown_names_is_summarised(self) -> None:
        answers: dict[str, Any] = {f"junk{i}": 1 for i in range(1000)}
        answers["overall"] = {"choice": A}
        with pytest.raises(AnswerError) as info:
            validate_answers([preference()], answers, PAIR)
        assert len(info.value.errors) == 6
        assert info.value.errors[-1] == {
            "question": None,
            "error": "and 995 more answers to no such question",
        }

    def test_required_missing_and_null_rejected(self) -> None:
        questions: list[Question] = [preference(), RatingQuestion(name="quality")]
        errors = answer_errors(questions, {"quality": None}, PAIR)
        assert errors == {"overall": "an answer is required", "quality": "an answer is required"}

    def test_optional_questions_may_be_absent_null_or_blank(self) -> None:
        questions: list[Question] = [
            preference(),
            RatingQuestion(name="quality", required=False),
            TextQuestion(name="comment"),
        ]
        result = validate_answers(
            questions, {"overall": {"choice": "tie"}, "quality": None, "comment": "  "}, PAIR
        )
        assert result == {"overall": {"choice": "tie"}}

    def test_all_errors_collected(self) -> None:
        questions: list[Question] = [
            preference(),
            LabelQuestion(name="topic", options=["code", "chat"]),
            TextQuestion(name="comment", required=True),
        ]
        errors = answer_errors(questions, {"overall": {"choice": C}, "topic": "poem", "comment": ""}, PAIR)
        assert errors == {
            "overall": f"unknown response id {C!r}",
            "topic": "'poem' is not one of the options",
            "comment": "an answer is required",
        }

    def test_answers_not_an_object_rejected(self) -> None:
        errors = answer_errors([preference()], ["overall"], PAIR)
        assert errors == {None: "answers must be an object keyed by question name"}

    def test_error_message_joins_problems(self) -> None:
        with pytest.raises(ValueError, match="overall: an answer is required"):
            validate_answers([preference()], {}, PAIR)

    def test_item_with_wrong_response_count_is_a_caller_error(self) -> None:
        with pytest.raises(ValueError, match="exactly 2 responses per item, got 3"):
            validate_answers([preference()], {}, TRIO)
        with pytest.raises(ValueError, match="at least 2 responses per item, got 1"):
            validate_answers([RankingQuestion(name="r")], {}, [A])

    def test_duplicate_response_ids_are_a_caller_error(self) -> None:
        with pytest.raises(ValueError, match="response ids must be unique"):
            validate_answers([RatingQuestion(name="r")], {}, [A, A.upper()])

    def test_reserved_ids_on_preference_items_are_a_caller_error(self) -> None:
        with pytest.raises(ValueError, match="reserved"):
            validate_answers([preference()], {}, ["tie", "b"])


class TestValidateAnswersPreference:
    def test_response_choice_with_strength(self) -> None:
        question = preference(strength=StrengthScale(labels=LLAMA_STRENGTH))
        result = validate_answers([question], {"overall": {"choice": A, "strength": 4}}, PAIR)
        assert result == {"overall": {"choice": A, "strength": 4}}

    def test_strength_is_optional_even_with_a_scale(self) -> None:
        question = preference(strength=StrengthScale(labels=LLAMA_STRENGTH))
        assert validate_answers([question], {"overall": {"choice": A, "strength": None}}, PAIR) == {
            "overall": {"choice": A}
        }

    def test_integral_float_strength_accepted(self) -> None:
        question = preference(strength=StrengthScale(labels=LLAMA_STRENGTH))
        assert validate_answers([question], {"overall": {"choice": A, "strength": 2.0}}, PAIR) == {
            "overall": {"choice": A, "strength": 2}
        }

    def test_opaque_ids_compared_exactly(self) -> None:
        errors = answer_errors([preference()], {"overall": {"choice": "resp-a"}}, ["Resp-A", "Resp-B"])
        assert errors == {"overall": "unknown response id 'resp-a'"}

    @pytest.mark.parametrize(
        ("answer", "message"),
        [
            ({"choice": C}, f"unknown response id {C!r}"),
            ({"choice": 1}, "response ids must be strings, got 1"),
            ({}, "a choice is required"),
            ("A", 'expected an object like {"choice": RESPONSE_ID}'),
            ({"choice": A, "confidence": 3}, "unexpected keys: 'confidence'"),
            ({"choice": A, "strength": 2}, "this question has no strength scale"),
        ],
    )
    def test_malformed_choice_rejected(self, answer: Any, message: str) -> None:
        assert answer_errors([preference()], {"overall": answer}, PAIR) == {"overall": message}

    def test_tie_rejected_when_not_allowed(self) -> None:
        errors = answer_errors([preference(allow_tie=False)], {"overall": {"choice": "tie"}}, PAIR)
        assert errors == {"overall": "a tie is not allowed for this question"}

    def test_both_bad_rejected_when_not_allowed(self) -> None:
        errors = answer_errors([preference(allow_both_bad=False)], {"overall": {"choice": "both_bad"}}, PAIR)
        assert errors == {"overall": "'both bad' is not allowed for this question"}

    def test_both_bad_accepted_by_default(self) -> None:
        assert validate_answers([preference()], {"overall": {"choice": "both_bad"}}, PAIR) == {
            "overall": {"choice": "both_bad"}
        }

    @pytest.mark.parametrize(
        ("strength", "message"),
        [
            (0, "strength must be between 1 and 4, got 0"),
            (5, "strength must be between 1 and 4, got 5"),
            (True, "strength must be a whole number, not true"),
            (2.5, "strength must be a whole number, got 2.5"),
            ("3", "strength must be a whole number, got '3'"),
            (float("nan"), "strength must be a whole number, got nan"),
        ],
    )
    def test_bad_strength_rejected(self, strength: Any, message: str) -> None:
        question = preference(strength=StrengthScale(labels=LLAMA_STRENGTH))
        errors = answer_errors([question], {"overall": {"choice": A, "strength": strength}}, PAIR)
        assert errors == {"overall": message}

    def test_strength_with_tie_rejected(self) -> None:
        question = preference(strength=StrengthScale(labels=LLAMA_STRENGTH))
        errors = answer_errors([question], {"overall": {"choice": "tie", "strength": 1}}, PAIR)
        assert errors == {"overall": "strength can only be given when one response is chosen"}


class TestValidateAnswersRanking:
    def test_flat_ranking_normalised_to_groups(self) -> None:
        result = validate_answers([RankingQuestion(name="rank")], {"rank": [C.upper(), A, B]}, TRIO)
        assert result == {"rank": [[C], [A], [B]]}

    def test_tie_groups_accepted_when_allowed(self) -> None:
        question = RankingQuestion(name="rank", allow_ties=True)
        assert validate_answers([question], {"rank": [A, [B, C]]}, TRIO) == {"rank": [[A], [B, C]]}

    def test_normalised_ranking_validates_again_unchanged(self) -> None:
        normalised = [[B], [A], [C]]
        assert validate_answers([RankingQuestion(name="rank")], {"rank": normalised}, TRIO) == {
            "rank": normalised
        }

    @pytest.mark.parametrize(
        ("answer", "message"),
        [
            ([A, [B, C]], "ties are not allowed for this question"),
            ([A, B], f"every response must be ranked; missing {C!r}"),
            ([A, B, A], f"response {A!r} is ranked more than once"),
            ([A, B, "nope"], "unknown response id 'nope'"),
            ([A, B, C, A], "expected at most 3 entries, got 4"),
            (f"{A},{B},{C}", "expected a list of response ids, best first"),
            ([A, B, 3], "each entry must be a response id or a list of tied response ids"),
            ([A, [], B], "a group of tied responses cannot be empty"),
        ],
    )
    def test_bad_rankings_rejected(self, answer: Any, message: str) -> None:
        assert answer_errors([RankingQuestion(name="rank")], {"rank": answer}, TRIO) == {"rank": message}

    def test_duplicate_inside_tie_group_rejected(self) -> None:
        question = RankingQuestion(name="rank", allow_ties=True)
        errors = answer_errors([question], {"rank": [[A, A.upper()], B, C]}, TRIO)
        assert errors == {"rank": f"response {A!r} is ranked more than once"}

    def test_huge_list_rejected_before_looking_inside(self) -> None:
        errors = answer_errors([RankingQuestion(name="rank")], {"rank": [A] * 100_000}, TRIO)
        assert errors == {"rank": "expected at most 3 entries, got 100000"}

    def test_oversized_tie_group_rejected(self) -> None:
        question = RankingQuestion(name="rank", allow_ties=True)
        errors = answer_errors([question], {"rank": [[A, B, C, A]]}, TRIO)
        assert errors == {"rank": "a group cannot hold more than the 3 responses"}


class TestValidateAnswersRating:
    def test_scores_normalised_in_response_order(self) -> None:
        question = RatingQuestion(name="quality")
        result = validate_answers([question], {"quality": {B: 7, A.upper(): 3.0}}, PAIR)
        assert result == {"quality": {A: 3, B: 7}}
        assert list(result["quality"]) == [A, B]
        assert type(result["quality"][A]) is int

    @pytest.mark.parametrize(
        ("answer", "message"),
        [
            ({A: 3.5, B: 1}, f"the score for {A!r} must be a whole number, got 3.5"),
            ({A: True, B: 1}, f"the score for {A!r} must be a whole number, not true"),
            ({A: "3", B: 1}, f"the score for {A!r} must be a whole number, got '3'"),
            ({A: None, B: 1}, f"the score for {A!r} must be a whole number, got None"),
            ({A: 0, B: 1}, f"the score for {A!r} must be between 1 and 7"),
            ({A: 8, B: 1}, f"the score for {A!r} must be between 1 and 7"),
            ({A: 3}, f"every response must be scored; missing {B!r}"),
            ({A: 3, C: 3}, f"unknown response id {C!r}"),
            ({A: 3, B: 3, C: 3}, "expected a score for each of the 2 responses, got 3"),
            ({A: 3, A.upper(): 4}, f"response {A!r} is scored more than once"),
            ([3, 4], "expected an object mapping each response id to a score"),
        ],
    )
    def test_bad_ratings_rejected(self, answer: Any, message: str) -> None:
        assert answer_errors([RatingQuestion(name="quality")], {"quality": answer}, PAIR) == {
            "quality": message
        }

    def test_negative_scale(self) -> None:
        question = RatingQuestion(name="quality", min=-3, max=3)
        assert validate_answers([question], {"quality": {A: -3, B: 0}}, PAIR) == {"quality": {A: -3, B: 0}}


class TestValidateAnswersLabel:
    def test_option_accepted(self) -> None:
        question = LabelQuestion(name="topic", options=["code", "chat"])
        assert validate_answers([question], {"topic": "chat"}, [A]) == {"topic": "chat"}

    @pytest.mark.parametrize(
        ("answer", "message"),
        [
            ("Chat", "'Chat' is not one of the options"),
            (["chat"], "expected one of the options as text, got ['chat']"),
            (1, "expected one of the options as text, got 1"),
        ],
    )
    def test_bad_labels_rejected(self, answer: Any, message: str) -> None:
        question = LabelQuestion(name="topic", options=["code", "chat"])
        assert answer_errors([question], {"topic": answer}, [A]) == {"topic": message}


class TestValidateAnswersMultiLabel:
    def question(self, **bounds: Any) -> MultiLabelQuestion:
        return MultiLabelQuestion(name="issues", options=["unsafe", "wrong", "rude"], **bounds)

    def test_selection_normalised_to_option_order(self) -> None:
        assert validate_answers([self.question()], {"issues": ["rude", "unsafe"]}, [A]) == {
            "issues": ["unsafe", "rude"]
        }

    def test_empty_selection_is_an_answer_when_min_is_zero(self) -> None:
        assert validate_answers([self.question()], {"issues": []}, [A]) == {"issues": []}

    @pytest.mark.parametrize(
        ("bounds", "answer", "message"),
        [
            ({}, ["rude", "rude"], "'rude' is selected more than once"),
            ({}, ["rude", "late"], "'late' is not one of the options"),
            ({"min_selected": 1}, [], "select at least 1 option"),
            ({"max_selected": 2}, ["rude", "wrong", "unsafe"], "select at most 2 options"),
            ({}, ["rude"] * 4, "expected at most 3 options, got 4"),
            ({}, "rude", "expected a list of options"),
        ],
    )
    def test_bad_selections_rejected(self, bounds: dict[str, int], answer: Any, message: str) -> None:
        assert answer_errors([self.question(**bounds)], {"issues": answer}, [A]) == {"issues": message}


class TestValidateAnswersText:
    def test_length_limits_apply_after_strip(self) -> None:
        question = TextQuestion(name="why", min_length=3, max_length=5)
        assert validate_answers([question], {"why": "   abcde   "}, [A]) == {"why": "abcde"}
        assert answer_errors([question], {"why": " ab "}, [A]) == {
            "why": "must be at least 3 characters, got 2"
        }
        assert answer_errors([question], {"why": "abcdef"}, [A]) == {
            "why": "must be at most 5 characters, got 6"
        }

    def test_non_text_rejected(self) -> None:
        assert answer_errors([TextQuestion(name="why")], {"why": 5}, [A]) == {"why": "expected text, got 5"}

    def test_nul_rejected(self) -> None:
        errors = answer_errors([TextQuestion(name="why")], {"why": "a\x00b"}, [A])
        assert errors == {"why": "text cannot contain NUL characters"}


class TestAnswerMatchesGold:
    def test_preference_compares_choice_and_ignores_strength(self) -> None:
        question = preference(strength=StrengthScale(labels=LLAMA_STRENGTH))
        assert (
            answer_matches_gold(question, {"choice": A, "strength": 1}, {"choice": A, "strength": 4}) is True
        )
        assert answer_matches_gold(question, {"choice": B}, {"choice": A}) is False
        assert answer_matches_gold(question, {"choice": "tie"}, {"choice": A}) is False

    def test_ranking_needs_exact_order_with_tie_groups_as_sets(self) -> None:
        question = RankingQuestion(name="rank", allow_ties=True)
        assert answer_matches_gold(question, [[A], [C, B]], [[A], [B, C]]) is True
        assert answer_matches_gold(question, [[A], [B], [C]], [[A], [C], [B]]) is False
        assert answer_matches_gold(question, [[A], [B], [C]], [[A], [B, C]]) is False

    def test_rating_within_one_point_for_every_response(self) -> None:
        question = RatingQuestion(name="quality")
        assert answer_matches_gold(question, {A: 4, B: 2}, {A: 5, B: 1}) is True
        assert answer_matches_gold(question, {A: 3, B: 2}, {A: 5, B: 2}) is False
        assert answer_matches_gold(question, {A: 5}, {A: 5, B: 1}) is False

    def test_label_and_multi_label(self) -> None:
        label = LabelQuestion(name="topic", options=["code", "chat"])
        assert answer_matches_gold(label, "code", "code") is True
        assert answer_matches_gold(label, "chat", "code") is False
        multi = MultiLabelQuestion(name="issues", options=["a", "b", "c"])
        assert answer_matches_gold(multi, ["b", "a"], ["a", "b"]) is True
        assert answer_matches_gold(multi, ["a"], ["a", "b"]) is False

    def test_text_and_missing_gold_are_not_gradable(self) -> None:
        assert answer_matches_gold(TextQuestion(name="why"), "same", "same") is None
        assert answer_matches_gold(preference(), {"choice": A}, None) is None

    def test_missing_given_answer_is_wrong(self) -> None:
        assert answer_matches_gold(preference(), None, {"choice": A}) is False


class TestScoreAgainstGold:
    def test_counts_only_gradable_questions_present_in_gold(self) -> None:
        questions: list[Question] = [
            preference(),
            RatingQuestion(name="quality"),
            LabelQuestion(name="topic", options=["code", "chat"]),
            TextQuestion(name="why"),
        ]
        given = {"overall": {"choice": A}, "quality": {A: 7, B: 1}, "topic": "chat", "why": "x"}
        gold = {"overall": {"choice": A}, "quality": {A: 4, B: 1}, "why": "x", "retired": "ignored"}
        matched, graded, details = score_against_gold(questions, given, gold)
        assert (matched, graded) == (1, 2)
        assert [(d["question"], d["matched"]) for d in details] == [
            ("overall", True),
            ("quality", False),
            ("why", None),
        ]
        assert details[1]["expected"] == {A: 4, B: 1} and details[1]["given"] == {A: 7, B: 1}

    def test_unanswered_gold_question_counts_as_a_miss(self) -> None:
        assert score_against_gold([preference()], {}, {"overall": {"choice": B}})[:2] == (0, 1)


class TestDescribeAnswer:
    def test_preference_with_strength(self) -> None:
        question = preference(strength=StrengthScale(labels=LLAMA_STRENGTH))
        text = describe_answer(question, {"choice": B, "strength": 4}, SCREEN)
        assert text == "B is better (significantly better)"

    def test_preference_tie_both_bad_and_no_answer(self) -> None:
        assert describe_answer(preference(), {"choice": "tie"}, SCREEN) == "tie: neither is better"
        assert describe_answer(preference(), {"choice": "both_bad"}, SCREEN) == "both are bad"
        assert describe_answer(preference(), None, SCREEN) == "no answer"

    def test_ranking_with_tie(self) -> None:
        question = RankingQuestion(name="rank", allow_ties=True)
        assert describe_answer(question, [[C], [B, A]], SCREEN) == "C > A = B"

    def test_rating_in_screen_order_with_point_labels(self) -> None:
        question = RatingQuestion(name="quality", labels={1: "awful", 7: "great"})
        assert describe_answer(question, {B: 1, A: 4}, SCREEN) == "A: 4, B: 1 (awful)"
        listed = RatingQuestion(name="quality", min=0, max=2, labels=["bad", "ok", "good"])
        assert describe_answer(listed, {A: 2}, SCREEN) == "A: 2 (good)"

    def test_labels_and_text(self) -> None:
        assert describe_answer(LabelQuestion(name="t", options=["a", "b"]), "b", SCREEN) == "b"
        multi = MultiLabelQuestion(name="m", options=["a", "b"])
        assert describe_answer(multi, ["a", "b"], SCREEN) == "a, b"
        assert describe_answer(multi, [], SCREEN) == "none selected"
        long_text = describe_answer(TextQuestion(name="why"), "w " * 300, SCREEN)
        assert len(long_text) <= 200 and long_text.endswith("…")
