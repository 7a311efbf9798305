"""Quality signals on hand-made answers, the low-quality flag rules, sorting, and the training page's forms."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from scipy.stats import binomtest

from app.projects.questions import parse_questions
from app.training import forms, signals
from app.training.figures import RaterFigures, screen_labels, sort_raters
from app.training.signals import (
    Agreement,
    AnswerRecord,
    ChoiceRates,
    GoldAccuracy,
    PositionBias,
    QualityRules,
    RaterSignals,
    Speed,
    StraightLining,
)

RULES = QualityRules(gold_min_answers=10, gold_threshold=0.7, min_seconds_per_item=4)
NOW = datetime(2025, 3, 14, 12, tzinfo=UTC)
QUESTIONS = parse_questions(
    [
        {"name": "overall", "kind": "preference", "strength": {"labels": ["slightly", "much"]}},
        {"name": "helpful", "kind": "rating", "min": 1, "max": 5, "required": False},
        {"name": "topic", "kind": "label", "options": ["code", "chat"], "required": False},
        {"name": "tags", "kind": "multi_label", "options": ["x", "y", "z"], "required": False},
        {"name": "order", "kind": "ranking", "allow_ties": True, "required": False},
        {"name": "why", "kind": "text"},
    ]
)


def _codes(rater: RaterSignals, reference: float | None = None, rules: QualityRules = RULES) -> list[str]:
    return [r.code for r in signals.quality_reasons(rater, rules, reference)]


class TestPositionBias:
    def test_always_first_is_extreme_and_significant(self) -> None:
        bias = signals.position_bias([("a", "a")] * 20)
        assert (bias.n, bias.first, bias.share) == (20, 20, 1.0)
        assert bias.p_value == pytest.approx(2 * 0.5**20)
        assert bias.ci_low is not None and 0.8 < bias.ci_low < 0.85 and bias.ci_high == 1.0

    def test_ties_both_bad_and_unknown_orders_do_not_count(self) -> None:
        bias = signals.position_bias([("tie", "a"), ("both_bad", "a"), ("a", None), (None, "a"), ("b", "a")])
        assert (bias.n, bias.first, bias.share) == (1, 0, 0.0)

    def test_balanced_choices_are_not_significant(self) -> None:
        bias = signals.position_bias([("a", "a"), ("b", "a")] * 15)
        assert bias.share == 0.5 and bias.p_value == pytest.approx(1.0)

    def test_nothing_to_measure(self) -> None:
        assert signals.position_bias([]) == PositionBias()
        assert PositionBias().share is None


class TestLeaveOneOut:
    def test_each_rater_is_compared_with_the_majority_of_the_rest(self) -> None:
        votes = [
            ("i1", "ann", "x"),
            ("i1", "bob", "x"),
            ("i1", "cat", "y"),
            ("i2", "ann", "x"),
            ("i2", "bob", "y"),
        ]
        # i1: ann and bob each face a split (x against y), which names no majority; cat faces x, x.
        # i2 has only one other rater for each.
        assert signals.leave_one_out_agreement(votes) == {"cat": Agreement(1, 0)}

    def test_a_clear_majority_counts(self) -> None:
        votes = [("i", r, v) for r, v in [("a", "x"), ("b", "x"), ("c", "x"), ("d", "y")]]
        result = signals.leave_one_out_agreement(votes)
        assert result["a"] == Agreement(1, 1)
        assert result["d"] == Agreement(1, 0)

    def test_excluded_raters_do_not_make_the_majority(self) -> None:
        votes = [("i", r, v) for r, v in [("a", "x"), ("b", "x"), ("c", "x"), ("d", "y"), ("e", "y")]]
        everyone = signals.leave_one_out_agreement(votes)
        assert "a" not in everyone  # b, c, d, e split two against two
        trusted = signals.leave_one_out_agreement(votes, reference_raters={"a", "b", "c"})
        assert trusted["a"] == Agreement(1, 1)
        # An excluded rater is still measured, against the trusted raters only.
        assert trusted["d"] == Agreement(1, 0)

    def test_missing_votes_are_ignored(self) -> None:
        votes = [("i", "a", None), ("i", "b", "x"), ("i", "c", "x"), ("i", "d", "x")]
        result = signals.leave_one_out_agreement(votes)
        assert "a" not in result and result["b"] == Agreement(1, 1)

    def test_reference_is_the_median_of_raters_with_enough_items(self) -> None:
        agreements = [Agreement(30, 27), Agreement(30, 24), Agreement(30, 15), Agreement(5, 0)]
        assert signals.reference_agreement(agreements, min_n=20) == pytest.approx(0.8)
        assert signals.reference_agreement(agreements[:2], min_n=20) is None


class TestSimpleSignals:
    def test_choice_rates(self) -> None:
        rates = signals.choice_rates(["a", "tie", "both_bad", "tie", None])
        assert rates == ChoiceRates(4, 2, 1)
        assert rates.tie_rate == 0.5 and rates.both_bad_rate == 0.25

    def test_speed_counts_answers_below_the_floor(self) -> None:
        pace = signals.speed([1000, 2000, 5000, None, 9000], floor_ms=4000)
        assert pace == Speed(4, 3500.0, 2)
        assert pace.fast_share == 0.5
        assert signals.speed([None], floor_ms=4000) == Speed()

    def test_straight_lining_needs_two_scores(self) -> None:
        result = signals.straight_lining([(3, 3), (4, 4), (2, 5), (7,)])
        assert (result.n, result.flat, result.share) == (3, 2, pytest.approx(2 / 3))
        assert result.score_variance == pytest.approx(float(np.var([3, 3, 4, 4, 2, 5, 7])))

    def test_gold_accuracy_skips_ungraded(self) -> None:
        results: list[Any] = [
            {"matched": 1, "graded": 1},
            {"matched": 0, "graded": 1},
            {"matched": 0, "graded": 0},
            None,
        ]
        assert signals.gold_accuracy(results) == GoldAccuracy(2, 1)

    def test_daily_volume_covers_fourteen_days_ending_today(self) -> None:
        stamps = [NOW, NOW - timedelta(hours=1), NOW - timedelta(days=3), NOW - timedelta(days=20)]
        days = signals.daily_volume(stamps, NOW.date())
        assert len(days) == 14 and days[0].day == date(2025, 3, 1) and days[-1].day == date(2025, 3, 14)
        assert [d.count for d in days][-4:] == [1, 0, 0, 2]
        assert sum(d.count for d in days) == 3


class TestAnswerRecord:
    def test_reads_choice_first_shown_and_ratings(self) -> None:
        record = signals.answer_record(
            QUESTIONS,
            rater="r",
            item="i",
            created_at=NOW,
            answers={"overall": {"choice": "b", "strength": 2}, "helpful": {"a": 3, "b": 3}, "topic": "code"},
            display_order=["b", "a"],
            time_ms=5000,
        )
        assert (record.choice, record.first_shown, record.vote) == ("b", "b", "b")
        assert record.ratings == ((3.0, 3.0),)

    def test_label_question_votes_when_there_is_no_preference(self) -> None:
        questions = parse_questions([{"name": "topic", "kind": "label", "options": ["code", "chat"]}])
        record = signals.answer_record(
            questions, rater="r", item="i", created_at=NOW, answers={"topic": "chat"}, display_order=["a"]
        )
        assert record.vote == "chat" and record.choice is None


def _signals(**overrides: Any) -> RaterSignals:
    return RaterSignals(**overrides)


class TestFlagRules:
    def test_a_clean_rater_has_no_reasons(self) -> None:
        clean = _signals(
            gold=GoldAccuracy(20, 19),
            position=signals.position_bias([("a", "a"), ("b", "a")] * 20),
            agreement=Agreement(40, 36),
            speed=Speed(40, 9000, 2),
            straight=StraightLining(40, 4, 1.2),
        )
        assert _codes(clean, reference=0.9) == []

    def test_gold_below_threshold_only_after_enough_answers(self) -> None:
        assert _codes(_signals(gold=GoldAccuracy(10, 6))) == ["gold_accuracy"]
        assert _codes(_signals(gold=GoldAccuracy(9, 0))) == []
        assert _codes(_signals(gold=GoldAccuracy(10, 7))) == []

    def test_position_bias_needs_n_significance_and_a_lopsided_share(self) -> None:
        lopsided = signals.position_bias([("a", "a")] * 19 + [("b", "a")])
        assert _codes(_signals(position=lopsided)) == ["position_bias"]
        too_few = signals.position_bias([("a", "a")] * 19)
        assert _codes(_signals(position=too_few)) == []
        never_first = signals.position_bias([("b", "a")] * 20)
        assert _codes(_signals(position=never_first)) == ["position_bias"]
        # 70% of 1000 is highly significant but inside the 25-75% band: a leaning, not a flag.
        leaning = signals.position_bias([("a", "a")] * 700 + [("b", "a")] * 300)
        assert leaning.p_value is not None and leaning.p_value < 1e-9
        assert _codes(_signals(position=leaning)) == []

    def test_agreement_is_judged_against_the_project_median(self) -> None:
        assert _codes(_signals(agreement=Agreement(30, 15)), reference=0.9) == ["low_agreement"]
        assert _codes(_signals(agreement=Agreement(19, 5)), reference=0.9) == []
        assert _codes(_signals(agreement=Agreement(30, 15)), reference=None) == []
        # Close to the median: within the margin, however many items.
        assert _codes(_signals(agreement=Agreement(3000, 2460)), reference=0.9) == []
        # Below the margin but not significantly so on 20 items.
        p_value = binomtest(15, 20, 0.9, alternative="less").pvalue
        assert p_value > 0.01
        assert _codes(_signals(agreement=Agreement(20, 15)), reference=0.9) == []

    def test_too_fast_over_thirty_percent(self) -> None:
        assert _codes(_signals(speed=Speed(20, 3000, 7))) == ["too_fast"]
        assert _codes(_signals(speed=Speed(20, 3000, 6))) == []
        assert _codes(_signals(speed=Speed(9, 1000, 9))) == []

    def test_straight_lining_over_eighty_percent(self) -> None:
        assert _codes(_signals(straight=StraightLining(10, 9, 0.0))) == ["straight_lining"]
        assert _codes(_signals(straight=StraightLining(10, 8, 0.1))) == []
        assert _codes(_signals(straight=StraightLining(9, 9, 0.0))) == []

    def test_reasons_read_as_sentences(self) -> None:
        reason = signals.quality_reasons(_signals(gold=GoldAccuracy(10, 5)), RULES, None)[0]
        assert reason.message == "gold accuracy 50% (5 of 10) is below 70%"


class TestProjectSignals:
    def _records(self) -> list[AnswerRecord]:
        records = []
        for i in range(30):
            order = ["a", "b"] if i % 2 else ["b", "a"]
            for rater in ("h1", "h2", "h3"):
                records.append(
                    AnswerRecord(rater, i, NOW, choice="a", first_shown=order[0], vote="a", time_ms=9000)
                )
            records.append(
                AnswerRecord(
                    "first", i, NOW, choice=order[0], first_shown=order[0], vote=order[0], time_ms=9000
                )
            )
        return records

    def test_always_first_rater_is_flagged_and_the_others_not(self) -> None:
        result = signals.project_signals(self._records(), RULES, today=NOW.date(), raters=["idle"])
        assert result.reference_agreement == 1.0
        assert not any(result.raters[r].flagged for r in ("h1", "h2", "h3", "idle"))
        codes = [r.code for r in result.raters["first"].reasons]
        assert codes == ["position_bias", "low_agreement"]
        assert result.raters["idle"].n_live == 0

    def test_gold_since_drops_older_gold_answers(self) -> None:
        old = NOW - timedelta(days=2)
        records = [
            AnswerRecord("r", i, old, is_gold=True, gold_result={"matched": 0, "graded": 1})
            for i in range(10)
        ]
        records.append(AnswerRecord("r", 99, NOW, is_gold=True, gold_result={"matched": 1, "graded": 1}))
        all_time = signals.project_signals(records, RULES, today=NOW.date())
        assert all_time.raters["r"].gold == GoldAccuracy(11, 1) and all_time.raters["r"].flagged
        recent = signals.project_signals(
            records, RULES, today=NOW.date(), gold_since={"r": NOW - timedelta(hours=1)}
        )
        assert recent.raters["r"].gold == GoldAccuracy(1, 1) and not recent.raters["r"].flagged


def _figures(name: str, **signal_values: Any) -> RaterFigures:
    return RaterFigures(
        user_id=uuid.uuid4(),
        username=name,
        status="active",
        paused_reason=None,
        qualified_at=None,
        excluded_at=None,
        exclusion_reason=None,
        attempts=[],
        signals=RaterSignals(**signal_values),
    )


class TestSorting:
    def test_missing_figures_go_last_both_ways(self) -> None:
        raters = [
            _figures("cy", gold=GoldAccuracy(10, 5)),
            _figures("al"),
            _figures("bo", gold=GoldAccuracy(10, 9)),
        ]
        assert [r.username for r in sort_raters(raters, "gold", descending=True)] == ["bo", "cy", "al"]
        assert [r.username for r in sort_raters(raters, "gold", descending=False)] == ["cy", "bo", "al"]

    def test_unknown_key_falls_back_to_the_flag(self) -> None:
        reasons = signals.quality_reasons(RaterSignals(gold=GoldAccuracy(10, 0)), RULES, None)
        raters = [_figures("amy"), _figures("zed", reasons=reasons)]
        assert [r.username for r in sort_raters(raters, "nonsense", descending=True)] == ["zed", "amy"]


class TestForms:
    ids = ["id-0", "id-1"]

    def test_gold_answers_round_trip_through_the_form(self) -> None:
        answers = {
            "overall": {"choice": "id-1", "strength": 2},
            "helpful": {"id-0": 2, "id-1": 5},
            "topic": "code",
            "tags": ["x", "z"],
            "order": [["id-1"], ["id-0"]],
        }
        values = forms.gold_form_values(QUESTIONS, answers, self.ids)
        assert values["q.overall"] == "B" and values["q.overall.strength"] == "2"
        assert values["q.order"] == "B > A"
        form = {k: (v if isinstance(v, list) else [v]) for k, v in values.items()}
        assert forms.gold_from_form(QUESTIONS, form, self.ids) == answers

    def test_blank_fields_are_left_out_and_ties_kept(self) -> None:
        form = {"q.overall": ["tie"], "q.helpful.A": [""], "q.order": ["A = B"]}
        assert forms.gold_from_form(QUESTIONS, form, self.ids) == {
            "overall": {"choice": "tie"},
            "order": [["id-0", "id-1"]],
        }

    def test_settings_as_percentages(self) -> None:
        form = {
            "require_qualification": ["1"],
            "qualification_threshold": ["85"],
            "qualification_cooldown_minutes": ["30"],
            "gold_rate": ["10"],
            "gold_min_answers": ["5"],
            "gold_pause_threshold": ["60"],
            "min_seconds_per_item": ["2.5"],
        }
        update, errors = forms.settings_from_form(form)
        assert errors == {} and update is not None
        assert update.model_dump(exclude_unset=True) == {
            "require_qualification": True,
            "qualification_threshold": 0.85,
            "qualification_cooldown_minutes": 30,
            "gold_rate": 0.1,
            "gold_min_answers": 5,
            "gold_pause_threshold": 0.6,
            "min_seconds_per_item": 2.5,
        }

    def test_settings_errors_name_the_field(self) -> None:
        form = {
            "qualification_threshold": ["120"],
            "qualification_cooldown_minutes": ["1.5"],
            "gold_rate": ["x"],
        }
        update, errors = forms.settings_from_form(form)
        assert update is None
        assert errors["qualification_cooldown_minutes"][0] == "Enter a whole number."
        assert errors["gold_rate"][0] == "Enter a number."
        full = {**{k: ["1"] for k in (*forms.PERCENT_FIELDS, *forms.NUMBER_FIELDS)}, "gold_rate": ["60"]}
        _, errors = forms.settings_from_form(full)
        assert errors == {"gold_rate": ("Must be at most %(value)s.", {"value": "50%"})}


def test_screen_labels_follow_the_display_order() -> None:
    assert screen_labels(["z", "y"]) == {"z": "A", "y": "B"}
