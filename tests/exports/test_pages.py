"""The export page: options form, the filter funnel preview, starting a snapshot and downloading it."""

from __future__ import annotations

import re
import uuid

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.exports import service
from tests.exports.conftest import Judged
from tests.exports.helpers import zip_members
from tests.factories import PASSWORD, Persona


def _log_in(client: TestClient, username: str) -> str:
    """Log the client in and return the session's CSRF token."""
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None
    client.post(
        "/login",
        data={"username": username, "password": PASSWORD, "csrf_token": token.group(1)},
        follow_redirects=False,
    )
    account = client.get("/account")
    found = re.search(r'name="csrf_token" value="([^"]+)"', account.text)
    assert found is not None
    return found.group(1)


def _counts(html: str) -> dict[str, int]:
    return {
        step: int(count) for step, count in re.findall(r'data-step="(\w+)">.*?data-count="(\d+)"', html, re.S)
    }


class TestExportPage:
    def test_page_offers_the_options_and_no_inline_script_or_style(
        self, client: TestClient, admin: Persona, judged: Judged
    ) -> None:
        _log_in(client, "admin")
        page = client.get(f"/projects/{judged.project_id}/export")
        assert page.status_code == 200
        for name in (
            "format",
            "file",
            "aggregation",
            "min_annotations",
            "min_agreement",
            "include_ties",
            "include_flagged",
            "margin_map",
            "split",
            "seed",
            "question",
            "score_question",
        ):
            assert f'name="{name}"' in page.text
        assert 'name="csrf_token"' in page.text
        assert "style=" not in page.text and "<script>" not in page.text

    def test_funnel_counts_what_survives_each_filter(
        self, client: TestClient, admin: Persona, judged: Judged
    ) -> None:
        _log_in(client, "admin")
        preview = client.get(f"/projects/{judged.project_id}/export/preview", headers={"HX-Request": "true"})
        assert preview.status_code == 200
        # 8 items; 1 unresolved; 2 ties or both bad; 1 flagged; 4 rows.
        assert _counts(preview.text) == {
            "annotated": 8,
            "enough_annotations": 8,
            "agreement": 7,
            "ties": 5,
            "flags": 4,
            "rows_before_dedup": 4,
            "rows": 4,
        }
        # The spoiler is excluded: three raters and their 24 annotations count, on either database.
        assert "Annotations 24 · raters 3" in preview.text
        loose = client.get(
            f"/projects/{judged.project_id}/export/preview",
            params={"include_ties": "true", "include_flagged": "true"},
        )
        assert _counts(loose.text)["rows"] == 7

    def test_bad_option_shows_its_reason_in_the_panel(
        self, client: TestClient, admin: Persona, judged: Judged
    ) -> None:
        _log_in(client, "admin")
        preview = client.get(f"/projects/{judged.project_id}/export/preview", params={"split": "train=2"})
        assert preview.status_code == 200
        assert "is not NAME=FRACTION" in preview.text and 'role="alert"' in preview.text

    def test_snapshot_is_started_listed_and_downloaded(
        self, client: TestClient, session: Session, admin: Persona, judged: Judged
    ) -> None:
        csrf = _log_in(client, "admin")
        created = client.post(
            f"/projects/{judged.project_id}/export",
            data={"csrf_token": csrf, "format": "preference", "file": "jsonl", "split": "train=0.5,test=0.5"},
            follow_redirects=False,
        )
        assert created.status_code == 303
        listing = client.get(f"/projects/{judged.project_id}/export/snapshots")
        assert "queued" in listing.text and "every 2s" in listing.text
        export_id = re.search(r'data-export="([0-9a-f-]+)"', listing.text)
        assert export_id is not None
        service.build_export(session, uuid.UUID(export_id.group(1)))
        session.commit()
        listing = client.get(f"/projects/{judged.project_id}/export/snapshots")
        assert "every 2s" not in listing.text
        link = f"/projects/{judged.project_id}/exports/{export_id.group(1)}/download"
        assert link in listing.text
        download = client.get(link)
        assert download.status_code == 200
        assert set(zip_members(download.content)) == {"README.md", "train.jsonl", "test.jsonl"}

    def test_snapshot_form_without_csrf_is_refused(
        self, client: TestClient, admin: Persona, judged: Judged
    ) -> None:
        _log_in(client, "admin")
        response = client.post(
            f"/projects/{judged.project_id}/export", data={"format": "kto"}, follow_redirects=False
        )
        assert response.status_code == 403

    def test_snapshot_with_bad_options_rerenders_the_form_with_422(
        self, client: TestClient, admin: Persona, judged: Judged
    ) -> None:
        csrf = _log_in(client, "admin")
        response = client.post(
            f"/projects/{judged.project_id}/export",
            data={"csrf_token": csrf, "margin_map": "x", "split": "train=1"},
            follow_redirects=False,
        )
        assert response.status_code == 422
        assert "is not STRENGTH:MARGIN" in response.text
        assert 'value="train=1"' in response.text

    def test_annotator_gets_403(self, client: TestClient, annotator: Persona, judged: Judged) -> None:
        _log_in(client, "annotator")
        assert client.get(f"/projects/{judged.project_id}/export").status_code == 403
        assert client.get(f"/projects/{judged.project_id}/export/preview").status_code == 403
