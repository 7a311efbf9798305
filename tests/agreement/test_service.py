"""Agreement figures, the leaderboard and item aggregation on small hand-computed projects."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Session

from app.accounts import service as accounts_service
from app.accounts.models import User
from app.agreement import service
from app.annotation.models import Annotation, Assignment
from app.db import utcnow
from app.errors import NotFound, Unprocessable
from app.items.models import Item, Response
from app.projects import service as projects_service
from app.projects.models import Project
from app.projects.schemas import ProjectCreate
from tests.factories import PASSWORD

PREFERENCE = {
    "name": "overall",
    "kind": "preference",
    "strength": {"labels": ["slightly better", "better", "much better"]},
}
LABEL = {"name": "topic", "kind": "label", "options": ["yes", "no"]}
RATING_1_5 = {"name": "quality", "kind": "rating", "min": 1, "max": 5}
NAN = float("nan")
# Krippendorff (2011), "Computing Krippendorff's alpha-reliability": 4 observers x 12 units, 1-5, gaps.
KRIPPENDORFF_EXAMPLE = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, NAN, NAN, NAN],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, NAN, 3],
    [NAN, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, NAN],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, NAN],
]
KRIPPENDORFF_ALPHAS = {"nominal": 0.743, "ordinal": 0.815, "interval": 0.849, "ratio": 0.797}


# ------------------------------------------------------------------------------------------- builders


def make_raters(session: Session, *names: str) -> list[User]:
    return [accounts_service.create_user(session, name, PASSWORD, "annotator") for name in names]


def make_project(session: Session, admin: User, questions: list[dict[str, Any]], **settings: Any) -> Project:
    body = {
        "name": "Agreement",
        "questions": questions,
        "annotations_per_item": 3,
        "gold_rate": 0,
        **settings,
    }
    return projects_service.create_project(session, ProjectCreate.model_validate(body), admin)


def make_item(
    session: Session, project: Project, models: tuple[str | None, ...] = (None, None), purpose: str = "live"
) -> tuple[Item, list[str]]:
    """An item with one response per entry of `models`; returns the response ids in stored order."""
    item = Item(
        project_id=project.id,
        dedup_key=uuid.uuid4().hex,
        content_hash="0" * 64,
        prompt="Which?",
        purpose=purpose,
    )
    session.add(item)
    session.flush()
    responses = [
        Response(item_id=item.id, position=i, source_position=i, text=f"answer {i}", model=model)
        for i, model in enumerate(models)
    ]
    session.add_all(responses)
    session.flush()
    return item, [str(r.id) for r in responses]


def annotate(
    session: Session,
    item: Item,
    user: User,
    answers: dict[str, Any],
    *,
    order: list[str],
    purpose: str = "live",
    created_at: datetime | None = None,
    attempt: int = 0,
) -> Annotation:
    """An annotation written the way a submit leaves it: a submitted assignment and its answers."""
    assignment = Assignment(
        project_id=item.project_id,
        item_id=item.id,
        user_id=user.id,
        attempt=attempt,
        purpose=purpose,
        status="submitted",
        display_order=order,
        expires_at=utcnow(),
    )
    session.add(assignment)
    session.flush()
    annotation = Annotation(
        assignment_id=assignment.id,
        project_id=item.project_id,
        item_id=item.id,
        user_id=user.id,
        purpose=purpose,
        answers=answers,
        display_order=order,
        created_at=created_at or utcnow(),
    )
    session.add(annotation)
    session.flush()
    return annotation


def question(result: dict[str, Any], name: str) -> dict[str, Any]:
    return next(q for q in result["questions"] if q["name"] == name)


def assert_nulls_explained(figures: dict[str, Any]) -> None:
    """Every None figure of a question carries a non-empty reason."""
    reasons = figures["reasons"]
    for key in ("percent_agreement", "fleiss_kappa", "kendall_w", "mean_kendall_tau_b"):
        if key in figures and figures[key] is None:
            assert reasons.get(key) or reasons.get("krippendorff_alpha"), key
    for level, value in figures["krippendorff_alpha"].items():
        if value is None:
            assert reasons.get(f"krippendorff_alpha.{level}"), level


def label_project(session: Session, admin: User, first: list[str], second: list[str]) -> Project:
    """Two raters labelling len(first) items."""
    project = make_project(session, admin, [LABEL])
    ann, bob = make_raters(session, "ann", "bob")
    for a, b in zip(first, second, strict=True):
        item, ids = make_item(session, project)
        annotate(session, item, ann, {"topic": a}, order=ids)
        annotate(session, item, bob, {"topic": b}, order=ids)
    return project


def rating_example_project(session: Session, admin: User) -> Project:
    """Krippendorff's example as a rating question: each unit an item with one response."""
    project = make_project(session, admin, [RATING_1_5], annotations_per_item=4)
    raters = make_raters(session, "obs_a", "obs_b", "obs_c", "obs_d")
    for unit in range(12):
        item, ids = make_item(session, project, models=(None,))
        for rater, row in zip(raters, KRIPPENDORFF_EXAMPLE, strict=True):
            if not np.isnan(row[unit]):
                annotate(session, item, rater, {"quality": {ids[0]: int(row[unit])}}, order=ids)
    return project


# -------------------------------------------------------------------------------------------- tests


class TestLabelAgreement:
    def test_two_raters_match_hand_computed_kappa_alpha_and_agreement(self, session: Session, admin) -> None:
        # 8 of 10 agree, both raters 5 yes / 5 no: kappa = (0.8 - 0.5) / 0.5 = 0.6;
        # alpha = 1 - (20 - 1) * 4 / (2 * 10 * 10) = 0.62; Fleiss' kappa equals Cohen's here.
        first = ["yes"] * 5 + ["no"] * 5
        second = ["yes"] * 4 + ["no"] * 5 + ["yes"]
        project = label_project(session, admin.user, first, second)
        result = service.project_agreement(session, project, n_boot=200, seed=1)
        topic = question(result, "topic")
        assert topic["percent_agreement"] == pytest.approx(0.8)
        assert topic["krippendorff_alpha"] == {"nominal": pytest.approx(0.62)}
        assert topic["fleiss_kappa"] == pytest.approx(0.6)
        assert (topic["n_units"], topic["n_annotations"], topic["n_raters"]) == (10, 20, 2)
        assert result["rater_pairs_question"] == "topic"
        [pair] = result["rater_pairs"]
        assert (pair["rater_a"], pair["rater_b"], pair["n_shared"]) == ("ann", "bob", 10)
        assert pair["kappa"] == pytest.approx(0.6)
        ci = topic["ci"]["alpha"]
        assert ci["low"] <= 0.62 <= ci["high"] and ci["n_boot"] == 200
        assert {d["value"]: d["count"] for d in topic["distribution"]} == {"yes": 10, "no": 10}

    def test_bootstrap_is_seeded_and_zero_resamples_skip_intervals(self, session: Session, admin) -> None:
        first = ["yes", "no", "yes", "no", "yes", "yes", "no", "no"]
        second = ["yes", "no", "no", "no", "yes", "yes", "yes", "no"]
        project = label_project(session, admin.user, first, second)
        one = service.project_agreement(session, project, n_boot=300, seed=7)
        again = service.project_agreement(session, project, n_boot=300, seed=7)
        assert question(one, "topic")["ci"] == question(again, "topic")["ci"]
        none = question(service.project_agreement(session, project, n_boot=0), "topic")["ci"]["alpha"]
        assert none["low"] is None and none["high"] is None and "n_boot is 0" in none["reason"]


class TestPreferenceAgreement:
    def test_agreement_is_on_the_chosen_response_whatever_side_it_was_shown(
        self, session: Session, admin
    ) -> None:
        # ann always sees the response she picks on the left, bob always on the right: by screen side
        # they never agree, by response id they always do.
        project = make_project(session, admin.user, [PREFERENCE])
        ann, bob = make_raters(session, "ann", "bob")
        for i in range(6):
            item, ids = make_item(session, project)
            chosen, other = (ids[0], ids[1]) if i % 2 else (ids[1], ids[0])
            annotate(session, item, ann, {"overall": {"choice": chosen}}, order=[chosen, other])
            annotate(session, item, bob, {"overall": {"choice": chosen}}, order=[other, chosen])
        result = service.project_agreement(session, project, n_boot=0)
        overall = question(result, "overall")
        assert overall["percent_agreement"] == 1.0
        assert overall["krippendorff_alpha"]["nominal"] == pytest.approx(1.0)
        assert overall["preference"]["without_ties"]["value"] == 1.0
        bias = {row["rater"]: row for row in result["position_bias"]}
        assert (bias["ann"]["n"], bias["ann"]["share_first"]) == (6, 1.0)
        assert bias["ann"]["p_value"] == pytest.approx(2 / 64)
        assert bias["bob"]["share_first"] == 0.0

    def test_ties_count_as_answers_in_one_figure_and_drop_out_of_the_other(
        self, session: Session, admin
    ) -> None:
        project = make_project(session, admin.user, [PREFERENCE])
        ann, bob = make_raters(session, "ann", "bob")
        plan = [("A", "A"), ("A", "A"), ("tie", "A"), ("tie", "tie"), ("both_bad", "B")]
        for a, b in plan:
            item, ids = make_item(session, project)
            pick = {"A": ids[0], "B": ids[1], "tie": "tie", "both_bad": "both_bad"}
            for rater, choice in ((ann, a), (bob, b)):
                answer = {"choice": pick[choice]} | ({"strength": 2} if choice in "AB" else {})
                annotate(session, item, rater, {"overall": answer}, order=ids)
        overall = question(service.project_agreement(session, project, n_boot=0), "overall")
        # With ties: items 1, 2 and 4 agree out of 5. Without: only items 1 and 2 keep two answers.
        assert overall["preference"]["with_ties"]["value"] == pytest.approx(3 / 5)
        assert overall["preference"]["without_ties"] == {"value": 1.0, "reason": None, "n_units": 2}
        assert overall["preference"]["n_tie_answers"] == 4
        counts = {d["value"]: d["count"] for d in overall["distribution"]}
        assert counts == {"response": 6, "tie": 3, "both_bad": 1}
        strengths = {d["label"]: d["count"] for d in overall["strength_distribution"]}
        assert strengths == {"slightly better": 0, "better": 6, "much better": 0}


class TestWhatCounts:
    def test_excluded_rater_gold_and_training_answers_are_left_out(self, session: Session, admin) -> None:
        first = ["yes"] * 5 + ["no"] * 5
        second = ["yes"] * 4 + ["no"] * 5 + ["yes"]
        project = label_project(session, admin.user, first, second)
        [carl] = make_raters(session, "carl")
        membership = projects_service.add_member(session, project, admin.user, user_id=carl.id)
        membership.excluded_at = utcnow()
        ann, bob = (session.get(User, u) for u in _user_ids(session, "ann", "bob"))
        for item in session.scalars(sa.select(Item).where(Item.project_id == project.id)).all():
            annotate(session, item, carl, {"topic": "no"}, order=_response_ids(session, item))
        for purpose in ("gold", "training"):
            item, ids = make_item(session, project, purpose=purpose)
            annotate(session, item, ann, {"topic": "yes"}, order=ids, purpose=purpose)
            annotate(session, item, bob, {"topic": "no"}, order=ids, purpose=purpose)
        result = service.project_agreement(session, project, n_boot=0)
        topic = question(result, "topic")
        assert topic["krippendorff_alpha"]["nominal"] == pytest.approx(0.62)
        assert (result["n_annotations"], result["n_raters"], result["n_excluded_raters"]) == (20, 2, 1)
        assert result["raters"] == ["ann", "bob"]


def _user_ids(session: Session, *names: str) -> list[uuid.UUID]:
    return [session.scalar(sa.select(User.id).where(User.username == name)) for name in names]  # type: ignore[misc]


def _response_ids(session: Session, item: Item) -> list[str]:
    query = sa.select(Response.id).where(Response.item_id == item.id).order_by(Response.position)
    return [str(rid) for rid in session.scalars(query)]


class TestRatingAgreement:
    def test_krippendorff_published_example_at_four_levels(self, session: Session, admin) -> None:
        project = rating_example_project(session, admin.user)
        quality = question(service.project_agreement(session, project, n_boot=100), "quality")
        assert {k: round(v, 3) for k, v in quality["krippendorff_alpha"].items()} == KRIPPENDORFF_ALPHAS
        assert quality["primary_level"] == "ordinal"
        assert quality["n_units"] == 11 and quality["n_raters"] == 4
        assert quality["ci"]["alpha"]["value"] == pytest.approx(0.8154, abs=1e-4)
        assert {d["value"]: d["count"] for d in quality["distribution"]} == {
            "1": 9,
            "2": 13,
            "3": 11,
            "4": 5,
            "5": 3,
        }

    def test_ratio_level_is_null_with_a_reason_on_a_scale_with_negative_points(
        self, session: Session, admin
    ) -> None:
        signed = {"name": "score", "kind": "rating", "min": -2, "max": 2, "level": "interval"}
        project = make_project(session, admin.user, [signed])
        ann, bob = make_raters(session, "ann", "bob")
        for a, b in ((-2, -1), (0, 0), (2, 1), (1, 1)):
            item, ids = make_item(session, project, models=(None,))
            annotate(session, item, ann, {"score": {ids[0]: a}}, order=ids)
            annotate(session, item, bob, {"score": {ids[0]: b}}, order=ids)
        score = question(service.project_agreement(session, project, n_boot=0), "score")
        assert score["primary_level"] == "interval"
        assert score["krippendorff_alpha"]["ratio"] is None
        assert "negative" in score["reasons"]["krippendorff_alpha.ratio"]
        assert score["krippendorff_alpha"]["interval"] is not None


class TestUndefined:
    def test_empty_project_has_every_figure_null_with_a_reason(self, session: Session, admin) -> None:
        questions = [
            PREFERENCE,
            LABEL,
            RATING_1_5,
            {"name": "flags", "kind": "multi_label", "options": ["unsafe", "wrong"]},
            {"name": "order", "kind": "ranking"},
            {"name": "why", "kind": "text", "required": False},
        ]
        project = make_project(session, admin.user, questions)
        result = service.project_agreement(session, project)
        json.dumps(result, allow_nan=False)
        for figures in result["questions"]:
            assert figures["percent_agreement"] is None and figures["n_units"] == 0
            assert_nulls_explained(figures)
        assert question(result, "why")["skipped"] is True
        assert "not graded" in question(result, "why")["reasons"]["percent_agreement"]
        assert set(result["reasons"]) == {"rater_pairs", "position_bias", "by_week"}
        assert result["rater_pairs"] == result["by_week"] == result["position_bias"] == []

    def test_fleiss_kappa_is_null_when_items_have_different_numbers_of_raters(
        self, session: Session, admin
    ) -> None:
        project = make_project(session, admin.user, [LABEL])
        ann, bob, cy = make_raters(session, "ann", "bob", "cy")
        for raters in ((ann, bob), (ann, bob, cy), (ann, bob)):
            item, ids = make_item(session, project)
            for i, rater in enumerate(raters):
                annotate(session, item, rater, {"topic": "yes" if i < 2 else "no"}, order=ids)
        topic = question(service.project_agreement(session, project, n_boot=0), "topic")
        assert topic["fleiss_kappa"] is None
        assert "different numbers of ratings" in topic["reasons"]["fleiss_kappa"]
        assert topic["percent_agreement"] == pytest.approx((1 + 1 / 3 + 1) / 3)

    def test_everyone_giving_one_answer_leaves_alpha_null_not_nan(self, session: Session, admin) -> None:
        project = label_project(session, admin.user, ["yes"] * 4, ["yes"] * 4)
        result = service.project_agreement(session, project, n_boot=50)
        json.dumps(result, allow_nan=False)
        topic = question(result, "topic")
        assert topic["percent_agreement"] == 1.0
        assert topic["krippendorff_alpha"]["nominal"] is None
        assert "no variation" in topic["reasons"]["krippendorff_alpha.nominal"]
        assert topic["ci"]["alpha"]["low"] is None and topic["ci"]["alpha"]["reason"]
        assert result["rater_pairs"][0]["kappa"] is None and result["rater_pairs"][0]["reason"]


class TestRobustness:
    def test_a_duplicate_answer_counts_once_instead_of_failing(self, session: Session, admin) -> None:
        project = label_project(session, admin.user, ["yes", "no"], ["yes", "no"])
        [ann] = _user_ids(session, "ann")
        items = session.scalars(sa.select(Item).where(Item.project_id == project.id)).all()
        # A second live answer by ann to every item (a retried attempt), contradicting her first.
        for item, answer in zip(items, ("no", "yes"), strict=True):
            order = _response_ids(session, item)
            annotate(session, item, session.get(User, ann), {"topic": answer}, order=order, attempt=1)
        topic = question(service.project_agreement(session, project, n_boot=20), "topic")
        # Counted three times an item would agree on 1 of its 3 pairs; once, on all or none.
        assert topic["percent_agreement"] in (0.0, 0.5, 1.0)
        assert (topic["n_units"], topic["n_raters"]) == (2, 2)

    def test_statements_do_not_grow_with_the_project(self, session: Session, connection, admin) -> None:
        counts = []
        for size in (3, 30):
            project = label_project(session, admin.user, ["yes", "no"] * size, ["no", "no"] * size)
            session.flush()
            statements: list[str] = []
            listener = lambda *args, seen=statements: seen.append(args[2])  # noqa: E731
            event.listen(connection, "before_cursor_execute", listener)
            try:
                service.project_agreement(session, project, n_boot=10)
                service.leaderboard(session, project, n_boot=10)
            finally:
                event.remove(connection, "before_cursor_execute", listener)
            counts.append(
                len([s for s in statements if not s.lstrip().upper().startswith(("SAVEPOINT", "RELEASE"))])
            )
            session.execute(sa.delete(User).where(User.username.in_(["ann", "bob"])))
        assert counts[0] == counts[1] <= 8


class TestOtherKinds:
    def test_multi_label_reports_alpha_per_option(self, session: Session, admin) -> None:
        flags = {"name": "flags", "kind": "multi_label", "options": ["unsafe", "wrong"]}
        project = make_project(session, admin.user, [flags])
        ann, bob = make_raters(session, "ann", "bob")
        # "unsafe": both raters mark it on the same 2 of 4 items (alpha 1); "wrong": they never agree.
        plan = [
            (["unsafe"], ["unsafe", "wrong"]),
            (["unsafe", "wrong"], ["unsafe"]),
            ([], ["wrong"]),
            (["wrong"], []),
        ]
        for a, b in plan:
            item, ids = make_item(session, project)
            annotate(session, item, ann, {"flags": a}, order=ids)
            annotate(session, item, bob, {"flags": b}, order=ids)
        figures = question(service.project_agreement(session, project, n_boot=0), "flags")
        per_option = {row["option"]: row for row in figures["per_option"]}
        assert per_option["unsafe"]["alpha"] == pytest.approx(1.0)
        assert per_option["unsafe"]["percent_agreement"] == 1.0
        assert per_option["wrong"]["percent_agreement"] == 0.0
        assert per_option["wrong"]["alpha"] < 0
        assert figures["n_units"] == 4
        assert {d["value"]: d["count"] for d in figures["distribution"]} == {"unsafe": 4, "wrong": 4}

    def test_ranking_reports_kendalls_w_and_tau_b(self, session: Session, admin) -> None:
        project = make_project(session, admin.user, [{"name": "order", "kind": "ranking"}])
        ann, bob = make_raters(session, "ann", "bob")
        same, reversed_ = (
            make_item(session, project, models=(None, None, None)),
            make_item(session, project, models=(None, None, None)),
        )
        for rater in (ann, bob):
            item, ids = same
            annotate(session, item, rater, {"order": [[ids[2]], [ids[0]], [ids[1]]]}, order=ids)
        item, ids = reversed_
        annotate(session, item, ann, {"order": [[i] for i in ids]}, order=ids)
        annotate(session, item, bob, {"order": [[i] for i in reversed(ids)]}, order=list(reversed(ids)))
        figures = question(service.project_agreement(session, project, n_boot=100), "order")
        # One item in full agreement (W = 1, tau = 1), one reversed (W = 0, tau = -1).
        assert figures["kendall_w"] == pytest.approx(0.5)
        assert figures["mean_kendall_tau_b"] == pytest.approx(0.0)
        assert figures["percent_agreement"] == pytest.approx(0.5)
        assert figures["n_units"] == 2
        assert figures["ci"]["kendall_w"]["low"] == pytest.approx(0.0)
        assert figures["ci"]["kendall_w"]["high"] == pytest.approx(1.0)


class TestByWeek:
    def test_units_count_in_the_iso_week_of_their_last_answer(self, session: Session, admin) -> None:
        project = make_project(session, admin.user, [LABEL])
        ann, bob = make_raters(session, "ann", "bob")
        monday = datetime(2025, 1, 6, 9, tzinfo=UTC)  # ISO week 2025-W02
        plan = [
            (monday, monday, "yes", "yes"),
            (monday, monday, "no", "no"),
            (monday, monday + timedelta(days=7), "yes", "no"),
            (monday + timedelta(days=8), monday + timedelta(days=9), "no", "yes"),
        ]
        for first, second, a, b in plan:
            item, ids = make_item(session, project)
            annotate(session, item, ann, {"topic": a}, order=ids, created_at=first)
            annotate(session, item, bob, {"topic": b}, order=ids, created_at=second)
        rows = service.project_agreement(session, project, n_boot=0)["by_week"]
        assert [(r["week"], r["week_start"], r["n_units"], r["percent_agreement"]) for r in rows] == [
            ("2025-W02", "2025-01-06", 2, 1.0),
            ("2025-W03", "2025-01-13", 2, 0.0),
        ]


def simulate_battles(
    session: Session, admin: User, n_items: int, seed: int
) -> tuple[Project, dict[str, float]]:
    """Four models with known Elo strengths; each item is judged by two of five raters."""
    strengths = {"model-w": 1200.0, "model-x": 1100.0, "model-y": 1000.0, "model-z": 850.0}
    names = list(strengths)
    rng = np.random.default_rng(seed)
    project = make_project(session, admin, [PREFERENCE], annotations_per_item=2)
    raters = make_raters(session, *(f"judge{i}" for i in range(5)))
    for _ in range(n_items):
        a, b = rng.choice(4, size=2, replace=False)
        item, ids = make_item(session, project, models=(names[a], names[b]))
        p_a = 1 / (1 + 10 ** ((strengths[names[b]] - strengths[names[a]]) / 400))
        for rater in rng.choice(raters, size=2, replace=False):
            draw = rng.random()
            choice = (
                "tie"
                if draw < 0.08
                else "both_bad"
                if draw < 0.1
                else (ids[0] if rng.random() < p_a else ids[1])
            )
            order = ids if rng.random() < 0.5 else ids[::-1]
            annotate(session, item, rater, {"overall": {"choice": choice}}, order=order)
    return project, strengths


class TestLeaderboard:
    def test_simulated_battles_recover_the_true_order(self, session: Session, admin) -> None:
        project, strengths = simulate_battles(session, admin.user, 500, seed=3)
        item, ids = make_item(session, project, models=(None, "model-w"))
        [judge] = _user_ids(session, "judge0")
        annotate(session, item, session.get(User, judge), {"overall": {"choice": ids[1]}}, order=ids)
        board = service.leaderboard(session, project, n_boot=50, seed=0)
        assert [m["model"] for m in board["models"]] == sorted(strengths, key=strengths.get, reverse=True)
        assert board["n_battles"] == 1000 and board["n_items_ignored"] == 1
        assert board["n_annotations_ignored"] == 1
        for model in board["models"]:
            assert model["lower"] <= model["score"] <= model["upper"]
            assert model["wins"] + model["ties"] + model["losses"] == model["battles"]
        assert sum(m["battles"] for m in board["models"]) == 2 * board["n_battles"]

    def test_tie_and_both_bad_are_half_a_win_each(self, session: Session, admin) -> None:
        project = make_project(session, admin.user, [PREFERENCE])
        [ann] = make_raters(session, "ann")
        for choice in ("tie", "both_bad"):
            item, ids = make_item(session, project, models=("m1", "m2"))
            annotate(session, item, ann, {"overall": {"choice": choice}}, order=ids)
        board = service.leaderboard(session, project, n_boot=0)
        assert {(m["model"], m["ties"], m["wins"]) for m in board["models"]} == {("m1", 2, 0), ("m2", 2, 0)}
        assert board["models"][0]["score"] == pytest.approx(board["models"][1]["score"])

    def test_project_without_named_models_has_an_empty_board_with_a_reason(
        self, session: Session, admin
    ) -> None:
        project = make_project(session, admin.user, [PREFERENCE])
        [ann] = make_raters(session, "ann")
        item, ids = make_item(session, project)
        annotate(session, item, ann, {"overall": {"choice": ids[0]}}, order=ids)
        board = service.leaderboard(session, project)
        assert board["models"] == [] and board["n_items_ignored"] == 1 and "models" in board["reason"]


class TestAggregatePreferences:
    def _project(self, session: Session, admin: User) -> tuple[Project, list[tuple[Item, list[str]]]]:
        project = make_project(session, admin, [PREFERENCE])
        raters = make_raters(session, "ann", "bob", "cy")
        items = [make_item(session, project) for _ in range(3)]
        plans = [
            [(0, 3), (0, 1), (1, None)],  # two of three pick the first stored response
            [("tie", None), ("tie", None), (1, 2)],
            [(0, None), (1, None)],  # split
        ]
        for (item, ids), plan in zip(items, plans, strict=True):
            for rater, (choice, strength) in zip(raters, plan, strict=False):
                picked = ids[choice] if isinstance(choice, int) else choice
                answer = {"choice": picked} | ({"strength": strength} if strength else {})
                # Screens differ per rater; the stored order must decide the classes.
                annotate(
                    session,
                    item,
                    rater,
                    {"overall": answer},
                    order=ids[::-1] if rater.username == "bob" else ids,
                )
        return project, items

    def test_majority_names_the_response_by_id(self, session: Session, admin) -> None:
        project, items = self._project(session, admin.user)
        results = {r["item_id"]: r for r in service.aggregate_preferences(session, project, "overall")}
        first, second, third = (results[item.id] for item, _ in items)
        assert first["chosen_response_id"] == items[0][1][0]
        assert first["confidence"] == pytest.approx(2 / 3) and first["agreement"] == pytest.approx(1 / 3)
        assert first["mean_strength"] == pytest.approx(2.0) and first["n_annotations"] == 3
        assert second["chosen_response_id"] == "tie" and second["mean_strength"] == 2.0
        assert third["chosen_response_id"] is None and third["agreement"] == 0.0

    def test_dawid_skene_gives_a_posterior_per_item(self, session: Session, admin) -> None:
        project, items = self._project(session, admin.user)
        results = {
            r["item_id"]: r for r in service.aggregate_preferences(session, project, "overall", "dawid-skene")
        }
        assert results[items[0][0].id]["chosen_response_id"] == items[0][1][0]
        assert all(0.0 <= r["confidence"] <= 1.0 for r in results.values())
        assert all(r["chosen_response_id"] is not None for r in results.values())

    def test_unknown_or_non_preference_question_is_refused(self, session: Session, admin) -> None:
        project = make_project(session, admin.user, [PREFERENCE, LABEL])
        with pytest.raises(NotFound):
            service.aggregate_preferences(session, project, "nope")
        with pytest.raises(Unprocessable):
            service.aggregate_preferences(session, project, "topic")
