"""Training, gold and quality through the API: qualification, cooldowns, pausing, raters' figures, exclusion."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.annotation import service as annotation_service
from app.db import utcnow
from app.items import service as items_service
from app.training.models import QualificationAttempt, RaterExclusion
from tests.factories import Persona, add_members, create_project, import_lines, make_persona
from tests.training.helpers import (
    always_first,
    good_id,
    honest,
    judged_lines,
    next_assignment,
    random_clicker,
    raters_by_name,
    submit,
    work,
    work_in_turns,
    wrong,
)

TRAINING_ITEMS = 5


@pytest.fixture
def seeded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Screen sides and gold draws from seeded generators, so every run sees the same orders."""
    monkeypatch.setattr("app.annotation.service._shuffle", random.Random(11).shuffle)
    monkeypatch.setattr("app.training.service._random", random.Random(5))


def _training_project(client: TestClient, admin: Persona, *members: Persona, **settings: Any) -> str:
    body = {
        "require_qualification": True,
        "qualification_threshold": 0.8,
        "qualification_cooldown_minutes": 60,
        "gold_rate": 0,
        "annotations_per_item": 3,
        **settings,
    }
    project_id = str(create_project(client, admin, **body)["id"])
    add_members(client, admin, project_id, *members)
    import_lines(
        client, admin, project_id, judged_lines(TRAINING_ITEMS, prefix="train", gold=True), purpose="training"
    )
    import_lines(client, admin, project_id, judged_lines(4, prefix="live"))
    return project_id


def _train(
    client: TestClient, persona: Persona, project_id: str, strategy: Any, count: int = TRAINING_ITEMS
) -> list[dict[str, Any]]:
    feedback = []
    for _ in range(count):
        response = next_assignment(client, persona, project_id)
        assert response.status_code == 200, response.text
        assert response.json()["training"] is True
        feedback.append(submit(client, persona, response.json(), strategy(response.json()))["feedback"])
    return feedback


def _reset(client: TestClient, admin: Persona, project_id: str, persona: Persona) -> Any:
    return client.post(
        f"/api/v1/projects/{project_id}/raters/{persona.id}/reset-qualification", headers=admin.headers
    )


class TestQualification:
    def test_new_rater_trains_with_feedback_then_gets_live_items(
        self, client: TestClient, admin: Persona, annotator: Persona
    ) -> None:
        project_id = _training_project(client, admin, annotator)
        first = next_assignment(client, annotator, project_id).json()
        assert first["training"] is True
        answer = submit(client, annotator, first, honest(first))["feedback"]
        assert answer["matched"] is True
        assert answer["explanation"] == "B is correct"
        assert answer["details"][0]["expected"] == {"choice": good_id(first)}
        assert answer["details"][0]["expected_text"] in ("A is better", "B is better")
        assert answer["qualification"]["answered"] == 1 and answer["qualification"]["total"] == TRAINING_ITEMS
        rest = _train(client, annotator, project_id, honest, count=TRAINING_ITEMS - 1)
        last = rest[-1]["qualification"]
        assert last["finished"] is True and last["passed"] is True and last["accuracy"] == 1.0
        live = next_assignment(client, annotator, project_id).json()
        assert live["training"] is False
        assert live["item"]["responses"][0]["text"].split(" to ")[1].startswith("live")

    def test_failing_rater_waits_for_the_cooldown_then_gets_a_fresh_attempt(
        self, client: TestClient, session: Session, admin: Persona, annotator: Persona
    ) -> None:
        project_id = _training_project(client, admin, annotator)
        feedback = _train(client, annotator, project_id, wrong)
        assert feedback[0]["matched"] is False and feedback[0]["explanation"] == "B is correct"
        verdict = feedback[-1]["qualification"]
        assert verdict["finished"] is True and verdict["passed"] is False
        assert verdict["retry_after_minutes"] == 60
        assert next_assignment(client, annotator, project_id).status_code == 204
        session.execute(
            sa.update(QualificationAttempt)
            .where(QualificationAttempt.user_id == annotator.id)
            .values(finished_at=utcnow() - timedelta(minutes=61))
        )
        session.commit()
        again = next_assignment(client, annotator, project_id).json()
        assert again["training"] is True
        assert submit(client, annotator, again, honest(again))["feedback"]["qualification"]["attempt"] == 2

    def test_admin_reset_skips_the_cooldown(
        self, client: TestClient, admin: Persona, annotator: Persona
    ) -> None:
        project_id = _training_project(client, admin, annotator)
        _train(client, annotator, project_id, wrong)
        assert next_assignment(client, annotator, project_id).status_code == 204
        assert _reset(client, admin, project_id, annotator).status_code == 200
        feedback = _train(client, annotator, project_id, honest)
        assert feedback[0]["qualification"]["attempt"] == 2
        assert feedback[-1]["qualification"]["passed"] is True
        assert next_assignment(client, annotator, project_id).json()["training"] is False
        attempts = raters_by_name(client, admin, project_id)["annotator"]["attempts"]
        assert [(a["attempt"], a["passed"], a["accuracy"]) for a in attempts] == [
            (1, False, 0.0),
            (2, True, 1.0),
        ]

    def test_skipped_training_items_end_the_attempt_as_misses(
        self, client: TestClient, admin: Persona, annotator: Persona
    ) -> None:
        project_id = _training_project(client, admin, annotator)
        for _ in range(TRAINING_ITEMS - 1):
            assignment = next_assignment(client, annotator, project_id).json()
            submit(client, annotator, assignment, honest(assignment))
        last = next_assignment(client, annotator, project_id).json()
        skipped = client.post(
            f"/api/v1/assignments/{last['assignment_id']}/skip", json={}, headers=annotator.headers
        )
        assert skipped.status_code == 200
        # 4 of 5 with the skip counted as a miss is exactly the 0.8 threshold: a pass, not a stuck rater.
        assert next_assignment(client, annotator, project_id).json()["training"] is False
        attempt = raters_by_name(client, admin, project_id)["annotator"]["attempts"][0]
        assert attempt["passed"] is True and attempt["finished_at"] is not None

    def test_skipping_two_training_items_fails_the_attempt(
        self, client: TestClient, admin: Persona, annotator: Persona
    ) -> None:
        project_id = _training_project(client, admin, annotator)
        for index in range(TRAINING_ITEMS):
            assignment = next_assignment(client, annotator, project_id).json()
            if index < 2:
                client.post(
                    f"/api/v1/assignments/{assignment['assignment_id']}/skip",
                    json={},
                    headers=annotator.headers,
                )
            else:
                submit(client, annotator, assignment, honest(assignment))
        assert next_assignment(client, annotator, project_id).status_code == 204
        attempt = raters_by_name(client, admin, project_id)["annotator"]["attempts"][0]
        assert attempt["passed"] is False

    def test_answer_on_a_lease_from_before_a_reset_does_not_qualify(
        self, client: TestClient, admin: Persona, annotator: Persona
    ) -> None:
        project_id = _training_project(client, admin, annotator)
        for _ in range(TRAINING_ITEMS - 1):
            assignment = next_assignment(client, annotator, project_id).json()
            submit(client, annotator, assignment, honest(assignment))
        stale = next_assignment(client, annotator, project_id).json()
        assert _reset(client, admin, project_id, annotator).status_code == 200
        submit(client, annotator, stale, honest(stale))
        figures = raters_by_name(client, admin, project_id)["annotator"]
        assert figures["qualified"] is False
        assert [a["answered"] for a in figures["attempts"]] == [TRAINING_ITEMS - 1]
        assert next_assignment(client, annotator, project_id).json()["training"] is True

    def test_training_answers_never_count_in_rater_figures(
        self,
        client: TestClient,
        admin: Persona,
        annotator: Persona,
        second_annotator: Persona,
        outsider: Persona,
    ) -> None:
        project_id = _training_project(client, admin, annotator, second_annotator, outsider)
        team = [annotator, second_annotator, outsider]
        for persona in team:
            _train(client, persona, project_id, honest)
        work_in_turns(client, project_id, [(persona, honest) for persona in team])
        figures = raters_by_name(client, admin, project_id)
        for persona in team:
            mine = figures[persona.user.username]
            assert mine["qualified"] is True
            assert mine["annotations"] == 4
            assert mine["agreement"] == {"n": 4, "matched": 4, "share": 1.0}
            assert mine["position_bias"]["n"] == 4
            assert sum(day["count"] for day in mine["volume"]) == 4


class TestLiveGold:
    def test_rater_wrong_on_gold_is_paused_and_gets_nothing(
        self, client: TestClient, admin: Persona, annotator: Persona, seeded: None
    ) -> None:
        project_id = str(
            create_project(
                client,
                admin,
                gold_rate=0.5,
                gold_min_answers=3,
                gold_pause_threshold=0.7,
                annotations_per_item=1,
            )["id"]
        )
        add_members(client, admin, project_id, annotator)
        import_lines(client, admin, project_id, judged_lines(20, prefix="live"))
        import_lines(client, admin, project_id, judged_lines(6, prefix="gold", gold=True))
        gold_feedback = []
        for _ in range(40):
            response = next_assignment(client, annotator, project_id)
            if response.status_code == 204:
                break
            result = submit(client, annotator, response.json(), wrong(response.json()))
            gold_feedback.append(result["feedback"])
        mine = raters_by_name(client, admin, project_id)["annotator"]
        assert mine["status"] == "paused"
        assert mine["gold"] == {"answered": 3, "matched": 0, "share": 0.0}
        assert "gold_accuracy" in [r["code"] for r in mine["reasons"]]
        assert mine["annotations"] < 20
        # Live gold stays blind: the rater is never told which items were gold.
        assert all(feedback is None for feedback in gold_feedback)
        assert next_assignment(client, annotator, project_id).status_code == 204

    def test_requalified_rater_is_not_paused_again_by_old_gold_answers(
        self, client: TestClient, admin: Persona, annotator: Persona, seeded: None
    ) -> None:
        project_id = _training_project(
            client,
            admin,
            annotator,
            gold_rate=0.5,
            gold_min_answers=3,
            gold_pause_threshold=0.7,
            annotations_per_item=1,
        )
        import_lines(client, admin, project_id, judged_lines(30, prefix="more"))
        import_lines(client, admin, project_id, judged_lines(8, prefix="gold", gold=True))
        _train(client, annotator, project_id, honest)
        work(client, annotator, project_id, wrong, limit=40)
        assert raters_by_name(client, admin, project_id)["annotator"]["status"] == "paused"
        assert _reset(client, admin, project_id, annotator).status_code == 200
        _train(client, annotator, project_id, honest)
        work(client, annotator, project_id, honest, limit=6)
        mine = raters_by_name(client, admin, project_id)["annotator"]
        assert mine["status"] == "active" and mine["qualified"] is True
        assert mine["gold"]["matched"] == mine["gold"]["answered"]


class TestSimulatedRaters:
    def test_random_and_always_first_raters_are_flagged_and_the_honest_are_not(
        self,
        client: TestClient,
        session: Session,
        admin: Persona,
        seeded: None,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        # The queue's order and the screen order are random; seeded here, so that an honest rater's share of
        # first-shown choices (0.5 expected, 40 answers) cannot land outside 0.25–0.75 by chance (about 1 run
        # in 450 unseeded).
        monkeypatch.setattr(items_service, "_random", random.Random(20261207))
        monkeypatch.setattr(annotation_service, "_shuffle", random.Random(20261207).shuffle)
        names = ["honest_1", "honest_2", "honest_3", "clicker", "first_picker"]
        people = {name: make_persona(session, name, "annotator") for name in names}
        project_id = str(create_project(client, admin, annotations_per_item=5, gold_rate=0)["id"])
        add_members(client, admin, project_id, *people.values())
        # Enough items that the honest raters clear the minimum sample on the items where the others
        # agree among themselves, whatever the random clicker does, so the median rater is an honest one.
        lines = judged_lines(20, prefix="left", good_position=0) + judged_lines(
            20, prefix="right", good_position=1
        )
        import_lines(client, admin, project_id, lines)
        strategies = {"clicker": random_clicker(3), "first_picker": always_first}
        work_in_turns(client, project_id, [(people[n], strategies.get(n, honest)) for n in names])
        figures = raters_by_name(client, admin, project_id)
        for name in ("honest_1", "honest_2", "honest_3"):
            assert figures[name]["flagged"] is False, figures[name]["reasons"]
            assert figures[name]["agreement"]["share"] == 1.0
        clicker = [r["code"] for r in figures["clicker"]["reasons"]]
        assert figures["clicker"]["flagged"] is True and "low_agreement" in clicker
        first = figures["first_picker"]
        assert first["flagged"] is True and "position_bias" in [r["code"] for r in first["reasons"]]
        assert first["position_bias"]["share"] == 1.0 and first["position_bias"]["n"] == 40
        assert first["position_bias"]["p_value"] < 1e-6
        assert abs(figures["honest_1"]["position_bias"]["share"] - 0.5) < 0.25

    def test_sorting_puts_the_flagged_first_and_names_in_order(
        self, client: TestClient, admin: Persona, annotator: Persona, second_annotator: Persona
    ) -> None:
        project_id = _training_project(
            client, admin, annotator, second_annotator, require_qualification=False
        )
        work(client, annotator, project_id, honest)
        url = f"/api/v1/projects/{project_id}/raters"
        by_name = client.get(url, params={"sort": "rater", "dir": "asc"}, headers=admin.headers).json()
        assert [r["username"] for r in by_name["raters"]] == ["annotator", "second_annotator"]
        by_count = client.get(url, params={"sort": "annotations", "dir": "asc"}, headers=admin.headers).json()
        assert [r["annotations"] for r in by_count["raters"]] == [0, 4]
        bad = client.get(url, params={"sort": "shoe_size"}, headers=admin.headers)
        assert bad.status_code == 422


class TestRatersPermissions:
    def test_admin_member_outsider_and_anonymous(
        self, client: TestClient, admin: Persona, annotator: Persona, outsider: Persona
    ) -> None:
        project_id = _training_project(client, admin, annotator)
        url = f"/api/v1/projects/{project_id}/raters"
        assert client.get(url).status_code == 401
        assert client.get(url, headers=outsider.headers).status_code == 404
        assert client.get(url, headers=annotator.headers).status_code == 403
        body = client.get(url, headers=admin.headers)
        assert body.status_code == 200
        assert "model-alpha" not in body.text

    def test_unknown_project_is_404_for_admin(self, client: TestClient, admin: Persona) -> None:
        url = "/api/v1/projects/00000000-0000-0000-0000-000000000000/raters"
        assert client.get(url, headers=admin.headers).status_code == 404

    @pytest.mark.parametrize("action", ["exclude", "include", "reset-qualification"])
    def test_member_cannot_change_raters(
        self, client: TestClient, admin: Persona, annotator: Persona, outsider: Persona, action: str
    ) -> None:
        project_id = _training_project(client, admin, annotator)
        url = f"/api/v1/projects/{project_id}/raters/{annotator.id}/{action}"
        body = {} if action == "exclude" else None
        assert client.post(url, json=body, headers=annotator.headers).status_code == 403
        assert client.post(url, json=body, headers=outsider.headers).status_code == 404
        assert raters_by_name(client, admin, project_id)["annotator"]["excluded"] is False


class TestExclusion:
    def test_exclude_then_include_keeps_everything_and_records_both(
        self, client: TestClient, session: Session, admin: Persona, annotator: Persona
    ) -> None:
        project_id = _training_project(client, admin, annotator, require_qualification=False)
        work(client, annotator, project_id, honest)
        base = f"/api/v1/projects/{project_id}/raters/{annotator.id}"
        excluded = client.post(f"{base}/exclude", json={"reason": "random clicking"}, headers=admin.headers)
        assert excluded.status_code == 200 and excluded.json()["excluded"] is True
        mine = raters_by_name(client, admin, project_id)["annotator"]
        assert mine["excluded"] is True and mine["exclusion_reason"] == "random clicking"
        assert mine["annotations"] == 4
        included = client.post(f"{base}/include", headers=admin.headers)
        assert included.json()["excluded"] is False
        assert raters_by_name(client, admin, project_id)["annotator"]["excluded"] is False
        rows = session.scalars(
            sa.select(RaterExclusion.action)
            .where(RaterExclusion.user_id == annotator.id)
            .order_by(RaterExclusion.created_at)
        ).all()
        assert rows == ["exclude", "include"]
        audit = client.get("/api/v1/audit", params={"project_id": project_id}, headers=admin.headers).json()
        actions = [e["action"] for e in audit["items"]]
        assert "rater.exclude" in actions and "rater.include" in actions
        mine = client.get("/api/v1/annotations/mine", headers=annotator.headers).json()
        assert len(mine) == 4

    def test_excluding_a_non_member_is_404(
        self, client: TestClient, admin: Persona, annotator: Persona, outsider: Persona
    ) -> None:
        project_id = _training_project(client, admin, annotator)
        url = f"/api/v1/projects/{project_id}/raters/{outsider.id}/exclude"
        assert client.post(url, json={}, headers=admin.headers).status_code == 404


class TestRatersQueryCount:
    def test_statements_do_not_grow_with_raters_or_answers(
        self,
        client: TestClient,
        session: Session,
        connection: sa.Connection,
        admin: Persona,
        annotator: Persona,
        second_annotator: Persona,
    ) -> None:
        from tests.annotation.test_query_counts import count_statements

        small = _training_project(client, admin, annotator, require_qualification=False)
        work(client, annotator, small, honest)
        team = [make_persona(session, f"rater_{i}", "annotator") for i in range(4)]
        large = _training_project(client, admin, *team, second_annotator, require_qualification=False)
        import_lines(client, admin, large, judged_lines(10, prefix="extra"))
        work_in_turns(client, large, [(persona, honest) for persona in [*team, second_annotator]])
        counts = []
        for project_id in (small, large):
            with count_statements(connection) as statements:
                assert (
                    client.get(f"/api/v1/projects/{project_id}/raters", headers=admin.headers).status_code
                    == 200
                )
            counts.append(len(statements))
        assert counts[0] == counts[1], counts
