"""The import API: formats, deduplication, all-or-nothing rejection, pairs, listing."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from tests.factories import Persona, create_project, import_lines, pair_lines
from tests.shared_data import ALPACA_EVAL, HH_RLHF, require_shared_data

RANKING = [{"name": "ranking", "kind": "ranking"}]


def _post_jsonl(client: TestClient, admin: Persona, project_id: str, body: bytes, **params: object):  # type: ignore[no-untyped-def]
    headers = {**admin.headers, "Content-Type": "application/x-ndjson"}
    return client.post(f"/api/v1/projects/{project_id}/items", content=body, headers=headers, params=params)


def _total(client: TestClient, admin: Persona, project_id: str) -> int:
    return int(
        client.get(f"/api/v1/projects/{project_id}/items?limit=1", headers=admin.headers).json()["total"]
    )


class TestImport:
    def test_json_array_creates_items_and_reimport_creates_nothing(
        self, client: TestClient, admin: Persona
    ) -> None:
        project = create_project(client, admin)
        first = import_lines(client, admin, project["id"], pair_lines(5))
        assert (first["created"], first["duplicates"], first["errors"]) == (5, 0, [])
        again = import_lines(client, admin, project["id"], pair_lines(5))
        assert (again["created"], again["duplicates"]) == (0, 5)

    def test_lines_without_ids_deduplicate_by_content(self, client: TestClient, admin: Persona) -> None:
        project = create_project(client, admin)
        line = {"prompt": "Same?", "responses": ["x", "y"]}
        body = (json.dumps(line) + "\n") * 3
        response = _post_jsonl(client, admin, project["id"], body.encode())
        assert response.json()["created"] == 1 and response.json()["duplicates"] == 2

    def test_broken_line_rejects_everything_with_its_line_number(
        self, client: TestClient, admin: Persona
    ) -> None:
        project = create_project(client, admin)
        good = [json.dumps(line) for line in pair_lines(3)]
        body = "\n".join([good[0], good[1], '{"prompt": "oops", "responses": [', good[2]]).encode()
        response = _post_jsonl(client, admin, project["id"], body)
        assert response.status_code == 422
        errors = response.json()["errors"]
        assert [e["line"] for e in errors] == [3]
        assert "not valid JSON" in errors[0]["error"]
        assert _total(client, admin, project["id"]) == 0

    def test_skip_mode_imports_good_lines_and_reports_bad(self, client: TestClient, admin: Persona) -> None:
        project = create_project(client, admin)
        body = "\n".join([json.dumps(pair_lines(1)[0]), '{"responses": ["a", "b"]}']).encode()
        response = _post_jsonl(client, admin, project["id"], body, on_error="skip")
        assert response.status_code == 201
        assert response.json()["created"] == 1
        assert response.json()["errors"] == [{"line": 2, "error": 'missing "prompt"'}]

    def test_too_many_responses_for_a_pairwise_project_names_the_fix(
        self, client: TestClient, admin: Persona
    ) -> None:
        project = create_project(client, admin)
        line = {"prompt": "p", "responses": ["a", "b", "c"]}
        response = client.post(f"/api/v1/projects/{project['id']}/items", json=[line], headers=admin.headers)
        assert response.status_code == 422
        assert "pairs=all" in response.json()["errors"][0]["error"]

    def test_pairs_all_splits_a_prompt_into_every_pair(self, client: TestClient, admin: Persona) -> None:
        project = create_project(client, admin)
        line = {"external_id": "p1", "prompt": "p", "responses": ["a", "b", "c", "d"]}
        report = import_lines(client, admin, project["id"], [line], pairs="all")
        assert report["created"] == 6
        items = client.get(f"/api/v1/projects/{project['id']}/items", headers=admin.headers).json()["items"]
        assert len({item["source_group"] for item in items}) == 1

    def test_dry_run_counts_without_writing(self, client: TestClient, admin: Persona) -> None:
        project = create_project(client, admin)
        report = import_lines(client, admin, project["id"], pair_lines(4), dry_run="true")
        assert report["created"] == 4 and report["dry_run"] is True
        assert _total(client, admin, project["id"]) == 0

    def test_gold_answers_by_position_are_stored_by_response_id(
        self, client: TestClient, admin: Persona
    ) -> None:
        project = create_project(client, admin)
        line = {
            **pair_lines(1)[0],
            "gold": {"answers": {"overall": {"choice": 1}}, "explanation": "B cites sources"},
        }
        import_lines(client, admin, project["id"], [line])
        item = client.get(f"/api/v1/projects/{project['id']}/items", headers=admin.headers).json()["items"][0]
        assert item["purpose"] == "gold"
        second = next(r for r in item["responses"] if r["source_position"] == 1)
        assert item["gold"]["answers"]["overall"]["choice"] == second["id"]

    def test_listing_pages_with_total(self, client: TestClient, admin: Persona) -> None:
        project = create_project(client, admin)
        import_lines(client, admin, project["id"], pair_lines(7))
        page = client.get(
            f"/api/v1/projects/{project['id']}/items?limit=3&offset=3", headers=admin.headers
        ).json()
        assert page["total"] == 7 and len(page["items"]) == 3
        assert [i["external_id"] for i in page["items"]] == ["item-3", "item-4", "item-5"]

    def test_annotator_cannot_import(self, client: TestClient, admin: Persona, annotator: Persona) -> None:
        project = create_project(client, admin)
        client.post(
            f"/api/v1/projects/{project['id']}/members", json={"username": "annotator"}, headers=admin.headers
        )
        response = client.post(
            f"/api/v1/projects/{project['id']}/items", json=pair_lines(1), headers=annotator.headers
        )
        assert response.status_code == 403


@pytest.mark.shared_data
class TestRealData:
    def test_alpaca_into_ranking_project_then_all_duplicates(
        self, client: TestClient, admin: Persona
    ) -> None:
        body = require_shared_data(ALPACA_EVAL).read_bytes()
        project = create_project(client, admin, questions=RANKING)
        first = _post_jsonl(client, admin, project["id"], body).json()
        assert (first["created"], first["duplicates"]) == (804, 0)
        again = _post_jsonl(client, admin, project["id"], body).json()
        assert (again["created"], again["duplicates"]) == (0, 804)

    def test_alpaca_into_pairwise_project_with_all_pairs(self, client: TestClient, admin: Persona) -> None:
        body = require_shared_data(ALPACA_EVAL).read_bytes()
        project = create_project(client, admin)
        report = _post_jsonl(client, admin, project["id"], body, pairs="all").json()
        assert report["created"] == 4824

    def test_hh_rlhf_pairs_keep_the_conversation_as_prompt(self, client: TestClient, admin: Persona) -> None:
        body = require_shared_data(HH_RLHF).read_bytes()
        project = create_project(client, admin)
        report = _post_jsonl(client, admin, project["id"], body).json()
        assert report["created"] == 2312
        item = client.get(f"/api/v1/projects/{project['id']}/items?limit=1", headers=admin.headers).json()[
            "items"
        ][0]
        assert isinstance(item["prompt"], list) and item["prompt"][-1]["role"] == "user"
        assert len(item["responses"]) == 2
        assert not any(r["text"].startswith("Assistant:") for r in item["responses"])
