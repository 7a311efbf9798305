"""The agreement and leaderboard API, fed by raters submitting through the annotation API."""

from __future__ import annotations

import math
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.items import service as items_service
from app.items.parsing import ImportOptions
from app.projects.models import Project
from tests.agreement.test_service import KRIPPENDORFF_ALPHAS, KRIPPENDORFF_EXAMPLE, simulate_battles
from tests.factories import Persona, add_members, create_project, import_lines, make_persona, pair_lines


def _agreement(client: TestClient, persona: Persona, project_id: str, **params: Any) -> Any:
    return client.get(f"/api/v1/projects/{project_id}/agreement", headers=persona.headers, params=params)


def _leaderboard(client: TestClient, persona: Persona, project_id: str, **params: Any) -> Any:
    return client.get(f"/api/v1/projects/{project_id}/leaderboard", headers=persona.headers, params=params)


def _question(body: dict[str, Any], name: str) -> dict[str, Any]:
    return next(q for q in body["questions"] if q["name"] == name)


def _work_through(client: TestClient, persona: Persona, project_id: str, answer: Any) -> int:
    """Take every item the rater is offered; `answer(assignment)` returns the answers or None to skip."""
    done = 0
    while True:
        offered = client.post(f"/api/v1/projects/{project_id}/assignments/next", headers=persona.headers)
        if offered.status_code == 204:
            return done
        assert offered.status_code == 200, offered.text
        assignment = offered.json()
        answers = answer(assignment)
        base = f"/api/v1/assignments/{assignment['assignment_id']}"
        if answers is None:
            response = client.post(f"{base}/skip", json={"reason": "cannot_judge"}, headers=persona.headers)
            assert response.status_code == 200, response.text
            continue
        response = client.post(f"{base}/annotation", json={"answers": answers}, headers=persona.headers)
        assert response.status_code == 201, response.text
        done += 1


class TestPermissions:
    @pytest.mark.parametrize("path", ["agreement", "leaderboard"])
    def test_anonymous_outsider_member_and_admin(
        self, path: str, client: TestClient, admin: Persona, annotator: Persona, outsider: Persona
    ) -> None:
        project = create_project(client, admin)
        add_members(client, admin, project["id"], annotator)
        url = f"/api/v1/projects/{project['id']}/{path}"
        assert client.get(url).status_code == 401
        assert client.get(url, headers=outsider.headers).status_code == 404
        assert client.get(url, headers=annotator.headers).status_code == 403
        assert client.get(url, headers=admin.headers).status_code == 200
        assert client.get(f"/api/v1/projects/{uuid.uuid4()}/{path}", headers=admin.headers).status_code == 404

    def test_resample_count_is_bounded(self, client: TestClient, admin: Persona) -> None:
        project = create_project(client, admin)
        assert _agreement(client, admin, project["id"], n_boot=5001).status_code == 422
        assert _leaderboard(client, admin, project["id"], n_boot=-1).status_code == 422


class TestKrippendorffExample:
    def test_published_alphas_come_back_through_the_api(
        self, client: TestClient, session: Session, admin: Persona
    ) -> None:
        """Krippendorff (2011): 4 observers, 12 units, values 1-5 with gaps; each unit an item with one
        response, each observer a rater who skips the units they left blank."""
        rating = {"name": "value", "kind": "rating", "min": 1, "max": 5}
        project = create_project(client, admin, questions=[rating], annotations_per_item=4, gold_rate=0)
        observers = [make_persona(session, f"observer_{c}", "annotator") for c in "abcd"]
        add_members(client, admin, project["id"], *observers)
        # The import API asks for two responses per line; a one-response rating item is valid, so the
        # items go in through the import service with the minimum lowered.
        lines = [
            {"external_id": f"unit-{u}", "prompt": f"unit {u}", "responses": [f"text {u}"]} for u in range(12)
        ]
        items_service.import_items(
            session,
            session.get(Project, uuid.UUID(project["id"])),
            enumerate(lines, start=1),
            admin.user,
            options=ImportOptions(min_responses=1),
        )
        session.commit()

        for observer, row in zip(observers, KRIPPENDORFF_EXAMPLE, strict=True):

            def answer(assignment: dict[str, Any], row: list[float] = row) -> dict[str, Any] | None:
                value = row[int(assignment["item"]["prompt"].split()[-1])]
                response_id = assignment["item"]["responses"][0]["id"]
                return None if math.isnan(value) else {"value": {response_id: int(value)}}

            _work_through(client, observer, project["id"], answer)

        body = _agreement(client, admin, project["id"], n_boot=200).json()
        figures = _question(body, "value")
        assert {
            level: round(v, 3) for level, v in figures["krippendorff_alpha"].items()
        } == KRIPPENDORFF_ALPHAS
        assert (figures["n_units"], figures["n_annotations"], figures["n_raters"]) == (11, 41, 4)
        assert figures["primary_level"] == "ordinal"
        assert figures["ci"]["alpha"]["low"] < 0.815 < figures["ci"]["alpha"]["high"]


class TestPreferenceFlow:
    def test_raters_agree_by_response_and_excluding_one_removes_their_answers(
        self,
        client: TestClient,
        session: Session,
        admin: Persona,
        annotator: Persona,
        second_annotator: Persona,
    ) -> None:
        project = create_project(client, admin, gold_rate=0)
        spoiler = make_persona(session, "spoiler", "annotator")
        add_members(client, admin, project["id"], annotator, second_annotator, spoiler)
        client.patch(
            f"/api/v1/projects/{project['id']}", json={"annotations_per_item": 3}, headers=admin.headers
        )
        import_lines(client, admin, project["id"], pair_lines(8))

        def by_text(assignment: dict[str, Any]) -> dict[str, Any]:
            # Odd items: the response written as "Answer A"; even items: "Answer B", whatever the side.
            number = int(assignment["item"]["prompt"].split()[-1].rstrip("?"))
            wanted = "Answer A" if number % 2 else "Answer B"
            chosen = next(r["id"] for r in assignment["item"]["responses"] if r["text"].startswith(wanted))
            return {"overall": {"choice": chosen, "strength": 3}}

        def contrary(assignment: dict[str, Any]) -> dict[str, Any]:
            chosen = by_text(assignment)["overall"]["choice"]
            other = next(r["id"] for r in assignment["item"]["responses"] if r["id"] != chosen)
            return {"overall": {"choice": other}}

        for persona, answer in ((annotator, by_text), (second_annotator, by_text), (spoiler, contrary)):
            assert _work_through(client, persona, project["id"], answer) == 8

        mixed = _question(_agreement(client, admin, project["id"], n_boot=0).json(), "overall")
        assert mixed["percent_agreement"] == pytest.approx(1 / 3)
        excluded = client.post(
            f"/api/v1/projects/{project['id']}/raters/{spoiler.id}/exclude", json={}, headers=admin.headers
        )
        assert excluded.status_code == 200, excluded.text

        body = _agreement(client, admin, project["id"], n_boot=100).json()
        overall = _question(body, "overall")
        assert overall["percent_agreement"] == 1.0
        assert overall["krippendorff_alpha"]["nominal"] == pytest.approx(1.0)
        assert (overall["n_annotations"], body["n_raters"], body["n_excluded_raters"]) == (16, 2, 1)
        assert body["raters"] == ["annotator", "second_annotator"]
        [pair] = body["rater_pairs"]
        assert (pair["n_shared"], pair["kappa"]) == (8, pytest.approx(1.0))
        strength = {d["label"]: d["count"] for d in overall["strength_distribution"]}
        assert strength["better"] == 16
        text = _question(body, "rationale")
        assert text["skipped"] is True and text["percent_agreement"] is None

        board = _leaderboard(client, admin, project["id"], n_boot=50).json()
        assert {(m["model"], m["wins"], m["losses"]) for m in board["models"]} == {
            ("model-a", 8, 8),
            ("model-b", 8, 8),
        }
        assert board["n_battles"] == 16


class TestUndefined:
    def test_empty_project_answers_nulls_with_reasons(self, client: TestClient, admin: Persona) -> None:
        project = create_project(client, admin)
        response = _agreement(client, admin, project["id"])
        assert response.status_code == 200
        body = response.json()
        assert body["n_annotations"] == 0
        for figures in body["questions"]:
            assert figures["percent_agreement"] is None
            assert figures["reasons"]["percent_agreement"]
            for level, value in figures["krippendorff_alpha"].items():
                assert value is None and figures["reasons"][f"krippendorff_alpha.{level}"]
        assert body["reasons"]["rater_pairs"] and body["reasons"]["position_bias"]
        board = _leaderboard(client, admin, project["id"]).json()
        assert board["models"] == [] and board["reason"]

    def test_one_rater_only_gives_reasons_not_errors(
        self, client: TestClient, admin: Persona, annotator: Persona
    ) -> None:
        project = create_project(client, admin, gold_rate=0)
        add_members(client, admin, project["id"], annotator)
        import_lines(client, admin, project["id"], pair_lines(3))
        first = lambda a: {"overall": {"choice": a["item"]["responses"][0]["id"]}}  # noqa: E731
        _work_through(client, annotator, project["id"], first)
        body = _agreement(client, admin, project["id"]).json()
        overall = _question(body, "overall")
        assert overall["krippendorff_alpha"]["nominal"] is None
        assert "fewer than two raters" in overall["reasons"]["krippendorff_alpha.nominal"]
        assert overall["ci"]["alpha"]["low"] is None
        [bias] = body["position_bias"]
        assert (bias["rater"], bias["n"], bias["share_first"]) == ("annotator", 3, 1.0)


class TestLeaderboard:
    def test_simulated_battles_recover_the_true_order(
        self, client: TestClient, session: Session, admin: Persona
    ) -> None:
        project, strengths = simulate_battles(session, admin.user, 400, seed=11)
        session.commit()
        body = _leaderboard(client, admin, str(project.id), n_boot=100, seed=2).json()
        assert [m["model"] for m in body["models"]] == sorted(strengths, key=strengths.get, reverse=True)
        assert body["models"][0]["rank"] == 1
        assert body["n_battles"] == 800 and body["converged"] is True
