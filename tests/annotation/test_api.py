"""The annotation API: leases, submissions, skips, idempotency and blindness."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.annotation import repository
from tests.factories import Persona, add_members, create_project, import_lines, make_persona, pair_lines


def _setup(client: TestClient, admin: Persona, *members: Persona, n: int = 3, **overrides: Any) -> str:
    project = create_project(client, admin, **overrides)
    add_members(client, admin, project["id"], *members)
    import_lines(client, admin, project["id"], pair_lines(n))
    return str(project["id"])


def _next(client: TestClient, persona: Persona, project_id: str) -> Any:
    return client.post(f"/api/v1/projects/{project_id}/assignments/next", headers=persona.headers)


def _prefer_first(assignment: dict[str, Any]) -> dict[str, Any]:
    return {"answers": {"overall": {"choice": assignment["item"]["responses"][0]["id"], "strength": 2}}}


def _judge(client: TestClient, persona: Persona, project_id: str) -> str | None:
    """Take the next item, answer it, and return its id; None when nothing is left."""
    response = _next(client, persona, project_id)
    if response.status_code == 204:
        return None
    assert response.status_code == 200, response.text
    assignment = response.json()
    submitted = client.post(
        f"/api/v1/assignments/{assignment['assignment_id']}/annotation",
        json=_prefer_first(assignment),
        headers=persona.headers,
    )
    assert submitted.status_code == 201, submitted.text
    return str(assignment["item"]["id"])


class TestNextAndSubmit:
    def test_two_annotators_complete_every_item_exactly_twice(
        self, client: TestClient, admin: Persona, annotator: Persona, second_annotator: Persona
    ) -> None:
        project_id = _setup(client, admin, annotator, second_annotator, n=3)
        seen: dict[str, list[str]] = {}
        for persona in (annotator, second_annotator, annotator, second_annotator) * 3:
            item_id = _judge(client, persona, project_id)
            if item_id is not None:
                seen.setdefault(item_id, []).append(persona.user.username)
        assert len(seen) == 3
        assert all(sorted(raters) == ["annotator", "second_annotator"] for raters in seen.values())
        assert _next(client, annotator, project_id).status_code == 204

    def test_items_are_finished_first_and_a_rater_far_ahead_starts_the_emptiest(
        self,
        client: TestClient,
        admin: Persona,
        annotator: Persona,
        second_annotator: Persona,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        # A window of 3 fullest items: the first rater's own half-done items fill it after 3 judgments.
        monkeypatch.setattr(repository, "FULLEST_FIRST_WINDOW", 3)
        repository._lease_live_item_statement.cache_clear()
        try:
            project_id = _setup(client, admin, annotator, second_annotator, n=8, annotations_per_item=2)
            ahead = [_judge(client, annotator, project_id) for _ in range(5)]
            # Ahead of everyone, the first rater got a new item each time, past their own half-done ones.
            assert None not in ahead and len(set(ahead)) == 5
            # The second rater is given the first rater's half-done items, fullest first, before new ones.
            behind = [_judge(client, second_annotator, project_id) for _ in range(5)]
            assert set(behind) == set(ahead)
            rest = {_judge(client, annotator, project_id) for _ in range(3)}
            assert None not in rest and len(rest) == 3 and not rest & set(ahead)
            assert _next(client, annotator, project_id).status_code == 204
        finally:
            repository._lease_live_item_statement.cache_clear()

    def test_payload_never_names_models(self, client: TestClient, admin: Persona, annotator: Persona) -> None:
        project_id = _setup(client, admin, annotator)
        body = _next(client, annotator, project_id).text
        assert "model-a" not in body and "model-b" not in body and "metadata" not in body

    def test_asking_again_returns_the_same_lease(
        self, client: TestClient, admin: Persona, annotator: Persona
    ) -> None:
        project_id = _setup(client, admin, annotator)
        first = _next(client, annotator, project_id).json()
        second = _next(client, annotator, project_id).json()
        assert first["assignment_id"] == second["assignment_id"]
        assert [r["id"] for r in first["item"]["responses"]] == [r["id"] for r in second["item"]["responses"]]

    def test_unknown_response_id_is_rejected_and_nothing_written(
        self, client: TestClient, admin: Persona, annotator: Persona
    ) -> None:
        project_id = _setup(client, admin, annotator)
        assignment = _next(client, annotator, project_id).json()
        bad = {"answers": {"overall": {"choice": "00000000-0000-0000-0000-000000000000"}}}
        response = client.post(
            f"/api/v1/assignments/{assignment['assignment_id']}/annotation",
            json=bad,
            headers=annotator.headers,
        )
        assert response.status_code == 422
        assert "unknown response id" in response.text
        mine = client.get("/api/v1/annotations/mine", headers=annotator.headers).json()
        assert mine == []

    def test_idempotency_key_gives_one_annotation(
        self, client: TestClient, admin: Persona, annotator: Persona
    ) -> None:
        project_id = _setup(client, admin, annotator)
        assignment = _next(client, annotator, project_id).json()
        url = f"/api/v1/assignments/{assignment['assignment_id']}/annotation"
        headers = {**annotator.headers, "Idempotency-Key": "abc-123"}
        first = client.post(url, json=_prefer_first(assignment), headers=headers)
        again = client.post(url, json=_prefer_first(assignment), headers=headers)
        assert first.status_code == again.status_code == 201
        assert first.json()["annotation_id"] == again.json()["annotation_id"]
        other = {"answers": {"overall": {"choice": "tie"}}}
        conflict = client.post(url, json=other, headers=annotator.headers)
        assert conflict.status_code == 409
        assert len(client.get("/api/v1/annotations/mine", headers=annotator.headers).json()) == 1

    def test_skipped_item_is_not_offered_again(
        self, client: TestClient, admin: Persona, annotator: Persona
    ) -> None:
        project_id = _setup(client, admin, annotator, n=2)
        first = _next(client, annotator, project_id).json()
        skipped = client.post(
            f"/api/v1/assignments/{first['assignment_id']}/skip",
            json={"reason": "cannot_judge"},
            headers=annotator.headers,
        )
        assert skipped.status_code == 200
        second = _next(client, annotator, project_id).json()
        assert second["item"]["id"] != first["item"]["id"]

    def test_outsider_gets_404(
        self, client: TestClient, admin: Persona, annotator: Persona, outsider: Persona
    ) -> None:
        project_id = _setup(client, admin, annotator)
        assert _next(client, outsider, project_id).status_code == 404

    def test_paused_project_hands_out_nothing(
        self, client: TestClient, admin: Persona, annotator: Persona
    ) -> None:
        project_id = _setup(client, admin, annotator)
        client.patch(f"/api/v1/projects/{project_id}", json={"status": "paused"}, headers=admin.headers)
        assert _next(client, annotator, project_id).status_code == 204


def _progress(client: TestClient, admin: Persona, project_id: str) -> dict[str, Any]:
    response = client.get(f"/api/v1/projects/{project_id}/progress", headers=admin.headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


def _set_per_item(client: TestClient, admin: Persona, project_id: str, n: int) -> None:
    changed = client.patch(
        f"/api/v1/projects/{project_id}", json={"annotations_per_item": n}, headers=admin.headers
    )
    assert changed.status_code == 200, changed.text


class TestRatersPerItemChanged:
    def test_raising_it_reopens_finished_items_for_more_raters(
        self, client: TestClient, admin: Persona, annotator: Persona, second_annotator: Persona
    ) -> None:
        project_id = _setup(client, admin, annotator, second_annotator, n=2, annotations_per_item=1)
        assert {_judge(client, annotator, project_id) for _ in range(2)} != {None}
        assert _judge(client, second_annotator, project_id) is None
        assert _progress(client, admin, project_id)["items_complete"] == 2

        _set_per_item(client, admin, project_id, 2)

        progress = _progress(client, admin, project_id)
        assert (progress["items_complete"], progress["items_left"]) == (0, 2)
        assert progress["annotations_per_item"] == 2
        # The rater who judged both items is not given them again; the other rater gets both.
        assert _judge(client, annotator, project_id) is None
        second = [_judge(client, second_annotator, project_id) for _ in range(3)]
        assert second[2] is None and len(set(second[:2]) - {None}) == 2
        progress = _progress(client, admin, project_id)
        assert (progress["items_complete"], progress["items_left"], progress["annotations"]) == (2, 0, 4)
        assert progress["percent_complete"] == 100.0

    def test_lowering_it_finishes_items_that_now_have_enough(
        self,
        client: TestClient,
        session: Session,
        admin: Persona,
        annotator: Persona,
        second_annotator: Persona,
    ) -> None:
        third = make_persona(session, "third_annotator", "annotator")
        project_id = _setup(client, admin, annotator, second_annotator, third, n=2, annotations_per_item=3)
        for rater in (annotator, second_annotator):
            assert None not in {_judge(client, rater, project_id) for _ in range(2)}
        # The third rater holds a lease on an item that is about to have enough.
        held = _next(client, third, project_id).json()

        _set_per_item(client, admin, project_id, 2)

        progress = _progress(client, admin, project_id)
        assert (progress["items_complete"], progress["items_left"], progress["annotations"]) == (2, 0, 4)
        late = client.post(
            f"/api/v1/assignments/{held['assignment_id']}/annotation",
            json=_prefer_first(held),
            headers=third.headers,
        )
        assert late.status_code == 409 and "already has" in late.json()["detail"]
        assert _next(client, third, project_id).status_code == 204
        assert _progress(client, admin, project_id)["annotations"] == 4
