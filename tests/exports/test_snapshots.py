"""Export snapshots: recording, building, byte-identical zips, the dataset card, status and download."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import krippendorff
import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.exports import service
from app.exports.card import size_category
from tests.exports.conftest import PLAN, Judged
from tests.exports.helpers import zip_members
from tests.factories import Persona

SPLIT = {"split": "train=0.5,test=0.5", "seed": 4}


def _start(client: TestClient, admin: Persona, project_id: str, **options: Any) -> dict[str, Any]:
    response = client.post(f"/api/v1/projects/{project_id}/exports", json=options, headers=admin.headers)
    assert response.status_code == 202, response.text
    return dict(response.json())


def _built(
    client: TestClient, session: Session, admin: Persona, project_id: str, **options: Any
) -> dict[str, Any]:
    """Record an export through the API and build it as the worker would (the test transaction is not
    committed, so the worker thread cannot see it)."""
    export = _start(client, admin, project_id, **options)
    service.build_export(session, uuid.UUID(export["id"]))
    session.commit()
    status = client.get(f"/api/v1/exports/{export['id']}", headers=admin.headers)
    assert status.status_code == 200
    return dict(status.json())


def _download(client: TestClient, admin: Persona, export_id: str) -> bytes:
    response = client.get(f"/api/v1/exports/{export_id}/download", headers=admin.headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    return response.content


class TestCreate:
    def test_request_is_recorded_as_queued(self, client: TestClient, admin: Persona, judged: Judged) -> None:
        export = _start(client, admin, judged.project_id, format="kto", file="parquet")
        assert export["status"] == "queued" and export["progress"] == 0.0
        assert export["params"]["format"] == "kto" and export["params"]["file"] == "parquet"
        listed = client.get(f"/api/v1/projects/{judged.project_id}/exports", headers=admin.headers).json()
        assert [e["id"] for e in listed["items"]] == [export["id"]]

    def test_download_before_it_is_built_is_a_409(
        self, client: TestClient, admin: Persona, judged: Judged
    ) -> None:
        export = _start(client, admin, judged.project_id)
        response = client.get(f"/api/v1/exports/{export['id']}/download", headers=admin.headers)
        assert response.status_code == 409
        assert "queued" in response.json()["detail"]

    def test_bad_options_are_refused_and_nothing_is_recorded(
        self, client: TestClient, admin: Persona, judged: Judged
    ) -> None:
        response = client.post(
            f"/api/v1/projects/{judged.project_id}/exports",
            json={"question": "helpfulness"},
            headers=admin.headers,
        )
        assert response.status_code == 422
        assert "rating question" in response.json()["detail"]
        bad_split = client.post(
            f"/api/v1/projects/{judged.project_id}/exports", json={"split": "a=2"}, headers=admin.headers
        )
        assert bad_split.status_code == 422
        assert (
            client.get(f"/api/v1/projects/{judged.project_id}/exports", headers=admin.headers).json()["total"]
            == 0
        )

    def test_stream_only_options_are_not_accepted(
        self, client: TestClient, admin: Persona, judged: Judged
    ) -> None:
        response = client.post(
            f"/api/v1/projects/{judged.project_id}/exports",
            json={"split_name": "train"},
            headers=admin.headers,
        )
        assert response.status_code == 422


class TestBuild:
    def test_zip_holds_one_file_per_split_and_the_card(
        self, client: TestClient, session: Session, admin: Persona, judged: Judged
    ) -> None:
        export = _built(client, session, admin, judged.project_id, **SPLIT)
        assert export["status"] == "done" and export["progress"] == 1.0
        assert export["finished_at"] and export["started_at"]
        files = zip_members(_download(client, admin, export["id"]))
        assert list(files) == ["README.md", "train.jsonl", "test.jsonl"]
        rows = {
            name: [json.loads(line) for line in files[name].decode().splitlines()]
            for name in ("train.jsonl", "test.jsonl")
        }
        assert sorted(r["external_id"] for rs in rows.values() for r in rs) == [
            "item-0",
            "item-1",
            "item-5",
            "item-6",
        ]
        assert all("split" not in r for rs in rows.values() for r in rs)
        assert export["counts"]["rows"] == {
            "train": len(rows["train.jsonl"]),
            "test": len(rows["test.jsonl"]),
        }
        assert export["counts"]["dropped"] == {"flagged": 1, "ties": 2, "unresolved": 1}
        assert export["size_bytes"] > 0 and len(export["content_hash"]) == 64

    def test_the_same_request_gives_the_same_bytes(
        self, client: TestClient, session: Session, admin: Persona, judged: Judged
    ) -> None:
        for options in (SPLIT, {"file": "parquet", **SPLIT}):
            first = _built(client, session, admin, judged.project_id, **options)
            second = _built(client, session, admin, judged.project_id, **options)
            assert first["id"] != second["id"]
            assert _download(client, admin, first["id"]) == _download(client, admin, second["id"])
            assert first["content_hash"] == second["content_hash"]
        other_seed = _built(client, session, admin, judged.project_id, split="train=0.5,test=0.5", seed=99)
        assert other_seed["content_hash"] != first["content_hash"]

    def test_parquet_snapshot_holds_parquet_files(
        self, client: TestClient, session: Session, admin: Persona, judged: Judged
    ) -> None:
        export = _built(client, session, admin, judged.project_id, file="parquet", format="kto")
        files = zip_members(_download(client, admin, export["id"]))
        assert list(files) == ["README.md", "train.parquet"]
        assert files["train.parquet"][:4] == b"PAR1"
        assert export["file_name"].startswith("helpfulness-pairs-kto-") and export["file_name"].endswith(
            ".zip"
        )


class TestDatasetCard:
    @pytest.fixture
    def card(self, client: TestClient, session: Session, admin: Persona, judged: Judged) -> str:
        client.patch(
            f"/api/v1/projects/{judged.project_id}",
            json={"description": "Which answer helps more."},
            headers=admin.headers,
        )
        export = _built(client, session, admin, judged.project_id, **SPLIT)
        return zip_members(_download(client, admin, export["id"]))["README.md"].decode()

    def test_front_matter_names_the_files_and_license(self, card: str) -> None:
        front = card.split("---")[1]
        assert "license: other" in front
        assert "task_categories:\n- text-generation" in front
        assert "tags:\n- rlhf\n- preference\n- dpo" in front
        assert "size_categories:\n- n<1K" in front
        assert "  - split: train\n    path: train.jsonl\n  - split: test\n    path: test.jsonl" in front

    def test_body_tells_what_how_many_and_how(self, card: str) -> None:
        assert "# Helpfulness pairs" in card and "Which answer helps more." in card
        assert "guidelines version(s): v1 (24 annotations)" in card
        assert "| items with counted annotations | 8 |" in card
        assert "| counted annotations | 24 |" in card
        assert "| raters | 3 |" in card
        assert "| dropped: items judged a tie or both bad | 2 |" in card
        assert "majority vote" in card
        assert 'load_dataset("json", data_files={"train": "train.jsonl", "test": "test.jsonl"})' in card
        assert "generated" not in card.lower()

    def test_agreement_figures_match_a_reference_implementation(self, card: str) -> None:
        # The counted raters' preference classes per item (A, B, tie, both bad), spoiler left out.
        codes = {"A": 0, "B": 1, "tie": 2, "both_bad": 3}
        matrix = np.array(
            [
                [codes[PLAN[i][name][0]] for i in sorted(PLAN)]
                for name in ("annotator", "second_annotator", "third")
            ],
            dtype=float,
        )
        alpha = krippendorff.alpha(reliability_data=matrix, level_of_measurement="nominal")
        found = re.search(r"Krippendorff's alpha \(nominal\): (-?[0-9.]+)", card)
        assert found is not None and float(found.group(1)) == pytest.approx(alpha, abs=5e-4)
        agreeing_pairs = [
            sum(a == b for k, a in enumerate(column) for b in column[k + 1 :]) / 3 for column in matrix.T
        ]
        share = re.search(r"Percent agreement: ([0-9.]+)", card)
        assert share is not None and float(share.group(1)) == pytest.approx(np.mean(agreeing_pairs), abs=5e-4)

    @pytest.mark.parametrize(
        ("rows", "bucket"), [(0, "n<1K"), (999, "n<1K"), (1000, "1K<n<10K"), (250_000, "100K<n<1M")]
    )
    def test_size_category_buckets(self, rows: int, bucket: str) -> None:
        assert size_category(rows) == bucket


class TestPermissions:
    def test_roles(
        self,
        client: TestClient,
        session: Session,
        admin: Persona,
        annotator: Persona,
        outsider: Persona,
        judged: Judged,
    ) -> None:
        export = _built(client, session, admin, judged.project_id)
        for path in (f"/api/v1/exports/{export['id']}", f"/api/v1/exports/{export['id']}/download"):
            assert client.get(path).status_code == 401
            assert client.get(path, headers=outsider.headers).status_code == 404
            assert client.get(path, headers=annotator.headers).status_code == 403
        url = f"/api/v1/projects/{judged.project_id}/exports"
        assert client.post(url, json={}).status_code == 401
        assert client.post(url, json={}, headers=outsider.headers).status_code == 404
        assert client.post(url, json={}, headers=annotator.headers).status_code == 403
        assert client.get(url, headers=annotator.headers).status_code == 403
        missing = client.get(f"/api/v1/exports/{uuid.uuid4()}", headers=admin.headers)
        assert missing.status_code == 404
